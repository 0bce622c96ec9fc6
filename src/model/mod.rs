//! Naive Bayes topic models: training, scoring, calibration, tags, paragraphs and explanations.
//!
//! A [`Model`] owns its analyzer settings, its additive [`counts::Counts`] (so training can always
//! continue), the derived scoring [`weights::Weights`], and what was fitted on held-out data: the
//! softmax temperature, the per-label biases and the per-label tag thresholds. Classification is
//! sparse: a document's score for each label is the label bias plus, over its distinct known terms,
//! term weight × the label's weight for that term, with the weights stored sparse (see [`weights`]).

pub mod calibration;
pub mod counts;
pub mod features;
pub mod kernels;
pub mod tokenized;
pub mod training;
pub mod vocabulary;
pub mod weights;

use std::borrow::Cow;
use std::cmp::Reverse;

use serde::{Deserialize, Serialize};

use crate::text::{Analyzer, AnalyzerSettings, TextKind};
use counts::Counts;
use features::{term_frequencies, Transforms};
pub use training::{CvMetrics, TrainError};
pub use weights::{NbKind, Smoothing};
use weights::{RawScores, Weights};

/// One labeled training example.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Example {
    /// The text.
    pub text: String,
    /// Its labels, dominant first (at least one).
    pub labels: Vec<String>,
}

/// Everything that decides how a model is trained and how it scores; stored in the model file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSettings {
    /// How text becomes terms.
    pub analyzer: AnalyzerSettings,
    /// Which naive Bayes variant picks the top label.
    pub kind: NbKind,
    /// Lidstone smoothing α. When `alpha_grid` is not empty, training replaces it by the grid value
    /// with the best cross-validated score.
    pub alpha: f64,
    /// Smoothing α of the one-vs-rest (tag) weights; chosen from `alpha_grid` like `alpha`.
    pub tag_alpha: f64,
    /// Smoothing of the one-vs-rest (tag) weights. Dirichlet by default (chosen by
    /// cross-validation); a model file written before this setting existed means Lidstone.
    #[serde(default)]
    pub tag_smoothing: Smoothing,
    /// Candidate values of α chosen from by cross-validation (empty: keep `alpha` and `tag_alpha`).
    pub alpha_grid: Vec<f64>,
    /// Per-document term weight transforms.
    pub transforms: Transforms,
    /// Complement NB only: scale each label's weights to unit L1 norm (Rennie et al.'s WCNB).
    pub weight_norm: bool,
    /// Folds of the internal cross-validation that fits the temperature and the tag thresholds
    /// (below 2: no cross-validation; temperature 1 and a fixed threshold).
    pub folds: usize,
    /// Also tag a label when it is the top label of a paragraph of at least `min_paragraph_terms`
    /// known terms and passes its tag threshold on that paragraph alone.
    pub paragraph_tags: bool,
    /// Smallest paragraph (in known terms) that can add a tag.
    pub min_paragraph_terms: usize,
}

impl Default for ModelSettings {
    fn default() -> Self {
        Self {
            analyzer: AnalyzerSettings::default(),
            kind: NbKind::Complement,
            alpha: 0.1,
            tag_alpha: 0.1,
            tag_smoothing: Smoothing::Dirichlet,
            alpha_grid: vec![0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0],
            transforms: Transforms {
                sublinear_tf: true,
                length_norm: true,
                idf: true,
            },
            weight_norm: true,
            folds: 10,
            paragraph_tags: true,
            min_paragraph_terms: 12,
        }
    }
}

impl ModelSettings {
    /// A one-line description, e.g. `complement-nb alpha=0.1 tf=log idf norm bigrams`.
    pub fn describe(&self) -> String {
        let mut parts = vec![
            match self.kind {
                NbKind::Multinomial => "multinomial-nb".to_owned(),
                NbKind::Complement => "complement-nb".to_owned(),
                NbKind::OneVsRest => "one-vs-rest-nb".to_owned(),
            },
            format!("alpha={}", self.alpha),
            format!("tag-alpha={}", self.tag_alpha),
        ];
        parts.push(
            match self.tag_smoothing {
                Smoothing::Lidstone => "tag-smoothing=lidstone",
                Smoothing::Dirichlet => "tag-smoothing=dirichlet",
            }
            .into(),
        );
        if self.transforms.sublinear_tf {
            parts.push("tf=log".into());
        }
        if self.transforms.idf {
            parts.push("idf".into());
        }
        if self.transforms.length_norm {
            parts.push("norm".into());
        }
        if self.analyzer.bigrams {
            parts.push("bigrams".into());
        }
        if self.analyzer.stop_words {
            parts.push("stop-words".into());
        }
        if self.analyzer.stemming == crate::text::Stemming::Light {
            parts.push("stem=light".into());
        }
        if self.analyzer.headline {
            parts.push("headline".into());
        }
        parts.join(" ")
    }
}

/// What was fitted on held-out data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Softmax temperature for the top-label scores.
    pub temperature: f64,
    /// Per label (aligned with the label list): one-vs-rest log-odds at or above which it is a tag.
    pub thresholds: Vec<f64>,
    /// Threshold for labels without one of their own (new labels, rare labels).
    pub default_threshold: f64,
    /// Per label (aligned with the label list): a bias added to the tempered top-label scores, fitted
    /// with the temperature on held-out scores; labels without one (new labels) get 0.
    #[serde(default)]
    pub label_bias: Vec<f64>,
}

impl Calibration {
    /// The calibrated logits `score / T + bias` of raw top-label scores.
    pub fn logits(&self, raw_top: &[f64]) -> Vec<f64> {
        let t = if self.temperature > 0.0 && self.temperature.is_finite() {
            self.temperature
        } else {
            1.0
        };
        raw_top
            .iter()
            .enumerate()
            .map(|(c, s)| s / t + self.label_bias.get(c).copied().unwrap_or(0.0))
            .collect()
    }
}

/// Facts about how a model came to be.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    /// When it was trained (RFC 3339, UTC); `SOURCE_DATE_EPOCH` fixes it for reproducible builds.
    pub created_at: String,
    /// The version it was trained on top of, for incremental training.
    pub parent_version: Option<String>,
    /// Examples added in the training run that made this model.
    pub examples_trained: u64,
    /// Cross-validated metrics from the last full training (absent for incremental updates).
    pub cv: Option<CvMetrics>,
}

/// What listing a model shows: its settings, provenance and size, without the model (so that
/// listing many saved versions never holds more than one file's worth of memory).
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSummary {
    /// The settings, as [`ModelSettings::describe`] puts them.
    pub settings: String,
    /// When it was trained.
    pub created_at: String,
    /// The version it was trained on top of, if any.
    pub parent_version: Option<String>,
    /// Every label with the number of training examples that carried it.
    pub labels: Vec<(String, u64)>,
    /// Terms in the vocabulary.
    pub vocabulary_size: u64,
    /// Training examples counted.
    pub total_examples: u64,
}

/// A label name in a classification: borrowed from the model that classified (no copy, no
/// reference count to touch for each of the labels a response lists), or owned when it came from
/// elsewhere (a gRPC response read by the client).
pub type LabelName<'a> = Cow<'a, str>;

/// A label and its probability.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LabelScore<'a> {
    /// Label name.
    pub label: LabelName<'a>,
    /// Calibrated probability.
    pub probability: f64,
}

/// A term and how much it pushed the top label ahead of the runner-up, in calibrated log-odds
/// (nats of `ln(p_top / p_runner_up)`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TermWeight {
    /// The term as the analyzer produced it (stemmed, lower-case; bigrams joined by a space).
    pub term: String,
    /// Its contribution to the score margin.
    pub weight: f64,
}

/// The classification of one paragraph.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParagraphClassification<'a> {
    /// Byte offset of the paragraph start in the text.
    pub start: usize,
    /// Byte offset one past its end.
    pub end: usize,
    /// Its top label.
    pub label: LabelName<'a>,
    /// Its tags; none when it has no term the model knows (its scores are then the label priors
    /// alone, and nothing in it is about any label).
    pub tags: Vec<LabelName<'a>>,
    /// Its probabilities, highest first.
    pub scores: Vec<LabelScore<'a>>,
    /// How many of its terms (words and bigrams, repeats counted) the model knows.
    pub known_terms: usize,
}

/// What [`Model::classify`] returns; its label names borrow from the model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Classification<'a> {
    /// The top label.
    pub label: LabelName<'a>,
    /// Calibrated probabilities, highest first (all labels unless `top_k` cut them).
    pub scores: Vec<LabelScore<'a>>,
    /// Every label the text is substantially about; the top label first.
    pub tags: Vec<LabelName<'a>>,
    /// How many of the text's terms (words and bigrams, repeats counted) the model knows; 0 means
    /// the scores are the label priors alone (an empty text, another language, a topic the model
    /// never saw).
    pub known_terms: usize,
    /// Terms behind the top label (only when asked).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub explanation: Vec<TermWeight>,
    /// Per-paragraph breakdown (only when asked).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub paragraphs: Vec<ParagraphClassification<'a>>,
}

impl LabelScore<'_> {
    /// The same score with its label name copied out of the model.
    pub fn into_owned(self) -> LabelScore<'static> {
        LabelScore {
            label: Cow::Owned(self.label.into_owned()),
            probability: self.probability,
        }
    }
}

/// Label names copied out of the model.
fn owned_names(names: Vec<LabelName<'_>>) -> Vec<LabelName<'static>> {
    names
        .into_iter()
        .map(|n| Cow::Owned(n.into_owned()))
        .collect()
}

impl ParagraphClassification<'_> {
    /// The same breakdown with its label names copied out of the model.
    pub fn into_owned(self) -> ParagraphClassification<'static> {
        ParagraphClassification {
            start: self.start,
            end: self.end,
            label: Cow::Owned(self.label.into_owned()),
            tags: owned_names(self.tags),
            scores: self
                .scores
                .into_iter()
                .map(LabelScore::into_owned)
                .collect(),
            known_terms: self.known_terms,
        }
    }
}

impl Classification<'_> {
    /// The same classification with its label names copied out of the model, so that it can
    /// outlive it.
    pub fn into_owned(self) -> Classification<'static> {
        Classification {
            label: Cow::Owned(self.label.into_owned()),
            scores: self
                .scores
                .into_iter()
                .map(LabelScore::into_owned)
                .collect(),
            tags: owned_names(self.tags),
            known_terms: self.known_terms,
            explanation: self.explanation,
            paragraphs: self
                .paragraphs
                .into_iter()
                .map(ParagraphClassification::into_owned)
                .collect(),
        }
    }
}

/// Options of one classification.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClassifyOptions {
    /// Number of scores to return, best first; 0 means all.
    pub top_k: usize,
    /// Include the explanation.
    pub explain: bool,
    /// Include the per-paragraph breakdown.
    pub paragraphs: bool,
}

/// Number of terms an explanation lists.
const EXPLANATION_TERMS: usize = 10;

/// A trained naive Bayes topic model.
#[derive(Debug, Clone)]
pub struct Model {
    settings: ModelSettings,
    analyzer: Analyzer,
    counts: Counts,
    weights: Weights,
    calibration: Calibration,
    metadata: Metadata,
}

/// Scores and decisions for one piece of text, before they are turned into strings.
struct Scored {
    raw: RawScores,
    /// Calibrated logits of the top-label scores (`raw.top / T + bias`).
    logits: Vec<f64>,
    probabilities: Vec<f64>,
    top: usize,
    known_terms: usize,
    query: features::SparseVector,
}

impl Model {
    /// Assembles a model from its parts, recomputing the weights.
    pub fn from_parts(
        settings: ModelSettings,
        counts: Counts,
        calibration: Calibration,
        metadata: Metadata,
    ) -> Self {
        let weights = Weights::compute(&counts, &settings);
        Self::with_weights(settings, counts, weights, calibration, metadata)
    }

    /// Assembles a model from its parts and weights already computed from `counts` and
    /// `settings`.
    fn with_weights(
        settings: ModelSettings,
        counts: Counts,
        weights: Weights,
        calibration: Calibration,
        metadata: Metadata,
    ) -> Self {
        Self {
            analyzer: Analyzer::new(settings.analyzer.clone()),
            settings,
            counts,
            weights,
            calibration,
            metadata,
        }
    }

    /// The settings.
    pub fn settings(&self) -> &ModelSettings {
        &self.settings
    }

    /// The additive counts.
    pub fn counts(&self) -> &Counts {
        &self.counts
    }

    /// The scoring weights.
    pub fn weights(&self) -> &Weights {
        &self.weights
    }

    /// The calibration.
    pub fn calibration(&self) -> &Calibration {
        &self.calibration
    }

    /// The metadata.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The label names.
    pub fn labels(&self) -> &[String] {
        &self.counts.labels
    }

    /// Examples per label.
    pub fn label_examples(&self) -> Vec<(String, u64)> {
        self.counts
            .labels
            .iter()
            .zip(&self.counts.label_documents)
            .map(|(l, d)| (l.clone(), d.round() as u64))
            .collect()
    }

    /// The model's [`ModelSummary`].
    pub fn summary(&self) -> ModelSummary {
        ModelSummary {
            settings: self.settings.describe(),
            created_at: self.metadata.created_at.clone(),
            parent_version: self.metadata.parent_version.clone(),
            labels: self.label_examples(),
            vocabulary_size: self.counts.vocabulary.len() as u64,
            total_examples: self.counts.documents.round() as u64,
        }
    }

    /// The analyzer this model tokenizes with.
    pub fn analyzer(&self) -> &Analyzer {
        &self.analyzer
    }

    /// Raw (uncalibrated) scores of a text.
    pub fn raw_scores(&self, text: &str) -> RawScores {
        self.score_text(text, TextKind::Document).raw
    }

    fn score_text(&self, text: &str, kind: TextKind) -> Scored {
        let (tf, known_terms) =
            term_frequencies(&self.analyzer, &self.counts.vocabulary, text, kind, |id| {
                self.weights.prefetch_term(id)
            });
        let query = self.weights.query_vector(tf, self.settings.transforms);
        let raw = self.weights.score(&query);
        let logits = self.calibration.logits(&raw.top);
        let probabilities = kernels::run_wide(kernels::Softmax(&logits));
        let top = argmax(&logits);
        Scored {
            raw,
            logits,
            probabilities,
            top,
            known_terms,
            query,
        }
    }

    /// The labels tagged by one-vs-rest thresholds (the top label always), best first.
    fn threshold_tags(&self, scored: &Scored) -> Vec<usize> {
        // Without a single known term there is no evidence for any label but the top one.
        if scored.known_terms == 0 {
            return vec![scored.top];
        }
        // Labels past the end of the fitted thresholds (new labels) use the default one. Two
        // plain loops: a chained iterator would test which half it is in at every label.
        let ovr = &scored.raw.ovr;
        let thresholds = &self.calibration.thresholds;
        let fitted = thresholds.len().min(ovr.len());
        let mut tags: Vec<usize> = Vec::new();
        for (c, (&log_odds, &threshold)) in ovr[..fitted].iter().zip(thresholds).enumerate() {
            if log_odds >= threshold || c == scored.top {
                tags.push(c);
            }
        }
        let default = self.calibration.default_threshold;
        for (c, &log_odds) in ovr.iter().enumerate().skip(fitted) {
            if log_odds >= default || c == scored.top {
                tags.push(c);
            }
        }
        tags.sort_by(|&a, &b| scored.probabilities[b].total_cmp(&scored.probabilities[a]));
        tags
    }

    fn threshold(&self, label: usize) -> f64 {
        self.calibration
            .thresholds
            .get(label)
            .copied()
            .unwrap_or(self.calibration.default_threshold)
    }

    fn label_scores(&self, probabilities: &[f64], top_k: usize) -> Vec<LabelScore<'_>> {
        let order = descending_order(probabilities, top_k);
        order
            .into_iter()
            .map(|c| LabelScore {
                label: self.label_name(c as usize),
                probability: probabilities[c as usize],
            })
            .collect()
    }

    /// Classifies `text`: top label, calibrated probabilities, tags, and on request an explanation
    /// and a per-paragraph breakdown.
    pub fn classify(&self, text: &str, options: ClassifyOptions) -> Classification<'_> {
        let scored = self.score_text(text, TextKind::Document);
        let mut tag_ids = self.threshold_tags(&scored);
        // Paragraphs matter only for a text with several of them, and only when they can add
        // tags or were asked for; a cheap scan rules out most texts before they are split.
        let spans = if (options.paragraphs || self.settings.paragraph_tags)
            && may_have_several_paragraphs(text)
        {
            paragraph_spans(text)
        } else {
            Vec::new()
        };
        let mut paragraphs = Vec::new();
        if spans.len() > 1 {
            for span in spans {
                let part = self.score_text(&text[span.0..span.1], TextKind::Paragraph);
                if self.settings.paragraph_tags
                    && part.known_terms >= self.settings.min_paragraph_terms
                {
                    // The label a substantial paragraph is clearly about is a tag of the text.
                    // (Only its top label: adding every label a paragraph passes costs more
                    // precision than it gains recall, measured on the seeds' dev split.)
                    let c = part.top;
                    if part.raw.ovr[c] >= self.threshold(c) && !tag_ids.contains(&c) {
                        tag_ids.push(c);
                    }
                }
                if options.paragraphs {
                    let part_tags = self.threshold_tags(&part);
                    paragraphs.push(self.paragraph_result(span, &part, &part_tags, options.top_k));
                }
            }
        } else if options.paragraphs {
            paragraphs.push(self.paragraph_result(
                (0, text.len()),
                &scored,
                &tag_ids,
                options.top_k,
            ));
        }
        let explanation = if options.explain {
            self.explain(&scored)
        } else {
            Vec::new()
        };
        Classification {
            label: self.label_name(scored.top),
            scores: self.label_scores(&scored.probabilities, options.top_k),
            tags: self.label_names(&tag_ids),
            known_terms: scored.known_terms,
            explanation,
            paragraphs,
        }
    }

    fn label_name(&self, label: usize) -> LabelName<'_> {
        Cow::Borrowed(&self.counts.labels[label])
    }

    fn label_names(&self, ids: &[usize]) -> Vec<LabelName<'_>> {
        ids.iter().map(|&c| self.label_name(c)).collect()
    }

    fn paragraph_result(
        &self,
        (start, end): (usize, usize),
        scored: &Scored,
        tags: &[usize],
        top_k: usize,
    ) -> ParagraphClassification<'_> {
        ParagraphClassification {
            start,
            end,
            label: self.label_name(scored.top),
            // A paragraph without a known term is about nothing the model knows (a byline, an
            // "Advertisement" line): it gets no tag, not its prior's favourite label.
            tags: if scored.known_terms > 0 {
                self.label_names(tags)
            } else {
                Vec::new()
            },
            scores: self.label_scores(&scored.probabilities, top_k),
            known_terms: scored.known_terms,
        }
    }

    /// The terms that pushed the top label furthest ahead of the runner-up.
    fn explain(&self, scored: &Scored) -> Vec<TermWeight> {
        let top = scored.top;
        let runner_up = (0..scored.logits.len())
            .filter(|&c| c != top)
            .max_by(|&a, &b| scored.logits[a].total_cmp(&scored.logits[b]));
        let mut contributions: Vec<(u32, f64)> = scored
            .query
            .iter()
            .map(|&(t, q)| {
                let weights = &self.weights;
                let t_index = t as usize;
                let margin = match runner_up {
                    Some(r) => weights.top_weight(t_index, top) - weights.top_weight(t_index, r),
                    None => weights.top_weight(t_index, top),
                };
                // In calibrated log-odds units: how much the term moved ln(p_top / p_runner_up).
                (t, q * margin / self.calibration.temperature)
            })
            .filter(|(_, w)| *w > 0.0)
            .collect();
        contributions.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        contributions.truncate(EXPLANATION_TERMS);
        contributions
            .into_iter()
            .map(|(t, weight)| TermWeight {
                term: self.counts.vocabulary.term(t).to_owned(),
                weight,
            })
            .collect()
    }
}

/// Label indices ordered by probability, best first, ties by index; only the best `top_k` when
/// `0 < top_k < len`.
///
/// Probabilities lie in [0, 1], whose bit patterns order like the values and leave the top two
/// bits zero, so each label packs into one `u64`: the reversed probability bits shifted left, with
/// the label index in the low bits that the shift frees. Sorting those plain integers is much
/// faster than sorting pairs. The shift drops the lowest mantissa bits, so two probabilities equal
/// in all the kept bits sort by index; when two neighbours are equal in those bits, one insertion
/// pass over the result restores the exact order. Anything else (NaN, more labels than the
/// free bits can number) takes the general path.
fn descending_order(probabilities: &[f64], top_k: usize) -> Vec<u32> {
    let n = probabilities.len();
    if top_k == 1 {
        // The first of the exact order below, found in one pass: the highest probability by
        // `total_order_key`, the lowest index among equals.
        return (0..n as u32)
            .min_by_key(|&c| (Reverse(total_order_key(probabilities[c as usize])), c))
            .into_iter()
            .collect();
    }
    let index_bits = usize::BITS - n.leading_zeros();
    let packable = index_bits <= 20 && probabilities.iter().all(|p| (0.0..=1.0).contains(p));
    let exact_key = |c: u32| Reverse(total_order_key(probabilities[c as usize]));
    let (mut order, exact) = if packable {
        let mask = (1u64 << index_bits) - 1;
        let mut packed: Vec<u64> = probabilities
            .iter()
            .zip(0u64..)
            .map(|(p, c)| (!(p.to_bits() << 2) & !mask) | c)
            .collect();
        if top_k > 0 && top_k < n {
            packed.select_nth_unstable(top_k - 1);
            // A label past the k-th can be exactly better than one before it only if the two agree
            // in every packed bit but the index; keep those too until the exact pass has ordered
            // them.
            let boundary = packed[top_k - 1] & !mask;
            let mut kept = top_k;
            for i in top_k..n {
                if packed[i] & !mask == boundary {
                    packed.swap(kept, i);
                    kept += 1;
                }
            }
            packed.truncate(kept);
        }
        packed.sort_unstable();
        // Sorted keys that differ in their probability bits are already in the exact order; only
        // neighbours equal in all of those bits (a tie or a near-tie) need the exact pass below.
        let exact = packed.windows(2).all(|w| (w[0] ^ w[1]) & !mask != 0);
        let order: Vec<u32> = packed.iter().map(|&k| (k & mask) as u32).collect();
        (order, exact)
    } else {
        let mut order: Vec<u32> = (0..n as u32).collect();
        if top_k > 0 && top_k < n {
            order.select_nth_unstable_by_key(top_k - 1, |&c| (exact_key(c), c));
            order.truncate(top_k);
        }
        order.sort_unstable_by_key(|&c| (exact_key(c), c));
        (order, true)
    };
    // Insertion pass on the exact key, where a tie or near-tie may have left the order inexact.
    if !exact {
        for i in 1..order.len() {
            let mut j = i;
            while j > 0 && (exact_key(order[j]), order[j]) < (exact_key(order[j - 1]), order[j - 1])
            {
                order.swap(j, j - 1);
                j -= 1;
            }
        }
    }
    if top_k > 0 {
        order.truncate(top_k);
    }
    order
}

/// An integer that orders like [`f64::total_cmp`] orders the float (the transform the standard
/// library documents for it: flip the magnitude bits of negative numbers).
fn total_order_key(x: f64) -> i64 {
    let bits = x.to_bits() as i64;
    bits ^ (((bits >> 63) as u64) >> 1) as i64
}

fn argmax(values: &[f64]) -> usize {
    let mut best = 0;
    for (i, v) in values.iter().enumerate() {
        if *v > values[best] {
            best = i;
        }
    }
    best
}

/// False only when `text` certainly has at most one paragraph: no line after a line break is blank
/// (made of ASCII whitespace only) before another line. A line whose first character after its
/// ASCII blanks is not ASCII counts as possibly blank, so that Unicode whitespace is left to
/// [`paragraph_spans`], which decides exactly.
fn may_have_several_paragraphs(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut i = 0;
    // Bounded: every pass moves `i` past one more line break.
    while let Some(line_break) = find_line_break(bytes, i) {
        let mut j = line_break + 1;
        while j < bytes.len() && matches!(bytes[j], b' ' | b'\t' | b'\r' | 0x0b | 0x0c) {
            j += 1;
        }
        match bytes.get(j) {
            // Blanks up to the end: trailing blank lines end the last paragraph.
            None => return false,
            Some(&b) if b == b'\n' || b >= 0x80 => return true,
            Some(_) => i = j,
        }
    }
    false
}

/// The position of the first `\n` of `bytes` from `from` on: eight bytes at a time (a byte of a
/// 64-bit word is a line break exactly when it is zero once xor-ed with `\n`, and subtracting one
/// from every byte borrows out of exactly the zero ones, up to the first of them), then one at a
/// time.
fn find_line_break(bytes: &[u8], mut from: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    while let Some(eight) = bytes.get(from..from + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(eight);
        let x = u64::from_le_bytes(word) ^ (ONES * u64::from(b'\n'));
        let zeros = x.wrapping_sub(ONES) & !x & (ONES * 0x80);
        if zeros != 0 {
            return Some(from + (zeros.trailing_zeros() / 8) as usize);
        }
        from += 8;
    }
    let rest = bytes.get(from..)?;
    rest.iter().position(|&b| b == b'\n').map(|k| from + k)
}

/// Byte spans of the paragraphs of `text`: runs of non-blank lines separated by blank lines.
/// Leading and trailing whitespace of each paragraph is excluded from its span.
pub fn paragraph_spans(text: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut current: Option<(usize, usize)> = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let line_start = offset;
        offset += line.len();
        let trimmed = line.trim();
        if trimmed.is_empty() {
            if let Some(span) = current.take() {
                spans.push(span);
            }
            continue;
        }
        let lead = line.len() - line.trim_start().len();
        let start = line_start + lead;
        let end = line_start + lead + trimmed.len();
        current = Some(match current {
            Some((s, _)) => (s, end),
            None => (start, end),
        });
    }
    if let Some(span) = current {
        spans.push(span);
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_split_on_blank_lines_with_exact_offsets() {
        let text = "  First line\nstill first.\n\n \nSecond one.\n";
        assert!(may_have_several_paragraphs(text));
        let spans = paragraph_spans(text);
        assert_eq!(spans.len(), 2);
        assert_eq!(&text[spans[0].0..spans[0].1], "First line\nstill first.");
        assert_eq!(&text[spans[1].0..spans[1].1], "Second one.");
        assert!(paragraph_spans(" \n\n").is_empty());
    }

    #[test]
    fn the_quick_paragraph_scan_never_misses_a_second_paragraph() {
        // Every text of up to 6 characters from an alphabet of letters, ASCII and Unicode blanks
        // and line breaks.
        let alphabet = ['a', ' ', '\n', '\r', '\t', '\u{3000}', '\u{85}'];
        let mut text = String::new();
        for length in 0..=6u32 {
            for mut code in 0..alphabet.len().pow(length) {
                text.clear();
                for _ in 0..length {
                    text.push(alphabet[code % alphabet.len()]);
                    code /= alphabet.len();
                }
                if paragraph_spans(&text).len() > 1 {
                    assert!(may_have_several_paragraphs(&text), "{text:?}");
                }
            }
        }
        assert!(!may_have_several_paragraphs(
            "one\n    indented line\nand more\n"
        ));
        assert!(!may_have_several_paragraphs("no line break"));
    }

    /// The reference order: exact probability, best first, ties by label index.
    fn reference_order(probabilities: &[f64], top_k: usize) -> Vec<u32> {
        let mut order: Vec<u32> = (0..probabilities.len() as u32).collect();
        order.sort_by(|&a, &b| {
            probabilities[b as usize]
                .total_cmp(&probabilities[a as usize])
                .then(a.cmp(&b))
        });
        if top_k > 0 {
            order.truncate(top_k);
        }
        order
    }

    #[test]
    fn line_breaks_are_found_where_a_byte_search_finds_them() {
        // Random bytes (line breaks, bytes next to them in value, high bytes) at every offset of
        // the 8-byte words and near the end.
        let alphabet = [b'\n', b'\n' ^ 1, 0x0b, 0x8a, 0xff, 0x00, b'a', b' '];
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..5_000 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let len = (state >> 59) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|k| {
                    let pick = (state >> (3 * (k % 16))) as usize & 7;
                    // Line breaks rare enough that long stretches have none.
                    if pick == 0 && k % 3 != 0 {
                        b'a'
                    } else {
                        alphabet[pick]
                    }
                })
                .collect();
            for from in 0..=len {
                let expected = bytes[from..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map(|k| from + k);
                assert_eq!(
                    find_line_break(&bytes, from),
                    expected,
                    "{bytes:?} from {from}"
                );
            }
        }
    }

    #[test]
    fn descending_order_is_exact_with_ties_near_ties_and_top_k() {
        // Exact ties, values that differ only in the mantissa bits the packing drops, zeros, ones,
        // subnormals, and enough labels that the index needs several bits.
        let base = 0.123_456_789_f64;
        let next = f64::from_bits(base.to_bits() + 1);
        let mut probabilities = vec![0.0, base, next, base, 1.0, 5e-324, 1e-300, next, 0.0];
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..300 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            probabilities.push(match state % 4 {
                0 => base,
                1 => f64::from_bits(base.to_bits() + state % 64),
                _ => (state >> 11) as f64 / (1u64 << 53) as f64,
            });
        }
        for n in [0, 1, 2, 9, 90, probabilities.len()] {
            let slice = &probabilities[..n];
            for top_k in [0, 1, 3, n] {
                assert_eq!(
                    descending_order(slice, top_k),
                    reference_order(slice, top_k),
                    "n={n} top_k={top_k}"
                );
            }
        }
        // The best label differs from another only in a dropped mantissa bit and has the higher
        // index, so the packed keys rank it second: it must still be the one top-1 returns.
        // (0.0625 has a zero mantissa, so adding one to its bits changes the lowest bit only.)
        let mut near_tie = vec![0.0; 90];
        near_tie[10] = 0.0625;
        near_tie[50] = f64::from_bits(0.0625_f64.to_bits() + 1);
        assert_eq!(descending_order(&near_tie, 1), vec![50]);
        assert_eq!(descending_order(&near_tie, 2), vec![50, 10]);
        // Outside [0, 1] (never a probability, but never a wrong order either): the general path.
        let odd = [0.5, f64::NAN, 2.0, -1.0, 0.5];
        for top_k in [0, 1, 2] {
            assert_eq!(descending_order(&odd, top_k), reference_order(&odd, top_k));
        }
    }
}
