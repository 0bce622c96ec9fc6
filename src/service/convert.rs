//! Engine types to protocol messages and back.

use crate::model::{Classification, ClassifyOptions, Example, LabelScore, ModelSummary};
use crate::proto;

/// Options of a Classify-type request.
pub fn options(top_k: u32, explain: bool, paragraphs: bool) -> ClassifyOptions {
    ClassifyOptions {
        top_k: top_k as usize,
        explain,
        paragraphs,
    }
}

fn scores(list: Vec<LabelScore>) -> Vec<proto::LabelScore> {
    list.into_iter()
        .map(|s| proto::LabelScore {
            label: s.label.to_string(),
            probability: s.probability,
        })
        .collect()
}

/// A classification as a response.
pub fn classify_response(c: Classification, version: &str) -> proto::ClassifyResponse {
    proto::ClassifyResponse {
        label: c.label.to_string(),
        scores: scores(c.scores),
        tags: c.tags.iter().map(|t| t.to_string()).collect(),
        model_version: version.to_owned(),
        explanation: c
            .explanation
            .into_iter()
            .map(|t| proto::TermWeight {
                term: t.term,
                weight: t.weight,
            })
            .collect(),
        paragraphs: c
            .paragraphs
            .into_iter()
            .map(|p| proto::ParagraphResult {
                start: u32::try_from(p.start).unwrap_or(u32::MAX),
                end: u32::try_from(p.end).unwrap_or(u32::MAX),
                label: p.label.to_string(),
                tags: p.tags.iter().map(|t| t.to_string()).collect(),
                scores: scores(p.scores),
                known_terms: u32::try_from(p.known_terms).unwrap_or(u32::MAX),
            })
            .collect(),
        known_terms: u32::try_from(c.known_terms).unwrap_or(u32::MAX),
    }
}

/// Protocol examples as engine examples (labels trimmed).
pub fn examples(list: Vec<proto::Example>) -> Vec<Example> {
    list.into_iter()
        .map(|e| Example {
            text: e.text,
            labels: e.labels.into_iter().map(|l| l.trim().to_owned()).collect(),
        })
        .collect()
}

/// Examples per label.
pub fn label_counts(labels: Vec<(String, u64)>) -> Vec<proto::LabelCount> {
    labels
        .into_iter()
        .map(|(label, examples)| proto::LabelCount { label, examples })
        .collect()
}

/// A model's description.
pub fn model_info(version: &str, summary: ModelSummary, active: bool) -> proto::ModelInfo {
    proto::ModelInfo {
        model_version: version.to_owned(),
        active,
        labels: label_counts(summary.labels),
        vocabulary_size: summary.vocabulary_size,
        total_examples: summary.total_examples,
        created_at: summary.created_at,
        parent_version: summary.parent_version.unwrap_or_default(),
        settings: summary.settings,
    }
}
