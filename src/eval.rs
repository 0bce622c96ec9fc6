//! Evaluation metrics for `topicd eval`: top-1 accuracy and macro-F1, tag micro/macro-F1 with
//! precision and recall, per-label figures, the confusion matrix and the expected calibration error.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::Serialize;

use crate::data::LabeledText;
use crate::model::calibration::expected_calibration_error;
use crate::model::{Classification, ClassifyOptions, Example, Model, ModelSettings, TrainError};

/// Tag quality against the full label sets.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TagMetrics {
    /// Micro-averaged F1.
    pub micro_f1: f64,
    /// Macro-averaged F1 over labels present in the gold data or the predictions.
    pub macro_f1: f64,
    /// Micro-averaged precision.
    pub precision: f64,
    /// Micro-averaged recall.
    pub recall: f64,
}

/// Per-label figures.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LabelMetrics {
    /// Top-1 precision (single-label view).
    pub precision: f64,
    /// Top-1 recall.
    pub recall: f64,
    /// Top-1 F1.
    pub f1: f64,
    /// Gold examples whose top label is this one.
    pub support: usize,
    /// Tag F1 for this label.
    pub tag_f1: f64,
    /// Examples that carry this label (tag view).
    pub tag_support: usize,
    /// Examples tagged with this label.
    pub tagged: usize,
}

/// Everything `topicd eval` reports.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    /// Examples evaluated.
    pub n: usize,
    /// Top-1 accuracy.
    pub accuracy: f64,
    /// Single-label macro-F1 (gold: `"label"`, else the first of `"labels"`).
    pub macro_f1: f64,
    /// Tag metrics against the full label sets.
    pub tags: TagMetrics,
    /// Per-label figures.
    pub per_label: BTreeMap<String, LabelMetrics>,
    /// Confusion matrix: gold label → predicted label → count.
    pub confusion: BTreeMap<String, BTreeMap<String, usize>>,
    /// Expected calibration error of the top-1 probability (10 bins).
    pub ece: f64,
    /// Classification throughput of this run.
    pub docs_per_second: f64,
}

#[derive(Default, Clone, Copy)]
struct Tally {
    tp: usize,
    fp: usize,
    fn_: usize,
}

impl Tally {
    fn precision(self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }
    fn recall(self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }
    fn f1(self) -> f64 {
        ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn_)
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// Gold top label of an example: its `"label"`, else its first label.
fn gold_top(example: &LabeledText) -> &str {
    example.label.as_deref().unwrap_or(&example.labels[0])
}

/// Evaluation needs the top label, its probability and the tags: one score, not all of them.
const EVAL_OPTIONS: ClassifyOptions = ClassifyOptions {
    top_k: 1,
    explain: false,
    paragraphs: false,
};

/// Number of examples a thread of [`evaluate_with`] classifies per claim: enough to make claiming
/// cost nothing, few enough that the threads finish within a fraction of a millisecond of each other.
const EVAL_PART: usize = 32;

/// Classifies every example, on all available cores, and computes the report (`docs_per_second` is
/// wall-clock throughput).
pub fn evaluate(model: &Model, examples: &[LabeledText]) -> Report {
    evaluate_with(model, examples, crate::parallel::cores())
}

/// [`evaluate`] with a given number of worker threads (1: on the calling thread only).
pub fn evaluate_with(model: &Model, examples: &[LabeledText], workers: usize) -> Report {
    let started = Instant::now();
    let classify_all = |part: &[LabeledText]| -> Vec<Classification> {
        part.iter()
            .map(|e| model.classify(&e.text, EVAL_OPTIONS))
            .collect()
    };
    // Small parts, claimed one at a time, so that a thread whose texts happen to be longer does
    // not keep the others waiting at the end.
    let parts: Vec<&[LabeledText]> = examples.chunks(EVAL_PART).collect();
    let results: Vec<Classification> =
        crate::parallel::map(&parts, workers, |part| classify_all(part))
            .into_iter()
            .flatten()
            .collect();
    let seconds = started.elapsed().as_secs_f64();
    report(examples, &results, seconds)
}

/// k-fold cross-validation: for each fold, trains a model (with its own internal calibration) on
/// the other folds and classifies the fold's examples; the report covers every example once.
/// Example `i` is in fold `i % folds`.
pub fn cross_validate(
    settings: &ModelSettings,
    examples: &[LabeledText],
    folds: usize,
) -> Result<Report, TrainError> {
    let folds = folds.max(2);
    let mut results: Vec<Option<Classification<'static>>> = vec![None; examples.len()];
    let mut seconds = 0.0;
    for fold in 0..folds {
        let training: Vec<Example> = examples
            .iter()
            .enumerate()
            .filter(|(i, _)| i % folds != fold)
            .map(|(_, e)| e.to_example())
            .collect();
        let model = Model::train(settings, &training, &mut |_| {})?;
        let started = Instant::now();
        for (i, e) in examples
            .iter()
            .enumerate()
            .filter(|(i, _)| i % folds == fold)
        {
            results[i] = Some(model.classify(&e.text, EVAL_OPTIONS).into_owned());
        }
        seconds += started.elapsed().as_secs_f64();
    }
    let results: Vec<Classification<'static>> = results.into_iter().flatten().collect();
    Ok(report(examples, &results, seconds))
}

/// Computes the report from classifications aligned with `examples`.
fn report(examples: &[LabeledText], results: &[Classification], seconds: f64) -> Report {
    let mut right = 0usize;
    let mut top_tally: BTreeMap<String, Tally> = BTreeMap::new();
    let mut tag_tally: BTreeMap<String, Tally> = BTreeMap::new();
    let mut confusion: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    let mut support: BTreeMap<String, usize> = BTreeMap::new();
    let mut confidences = Vec::with_capacity(examples.len());
    for (example, result) in examples.iter().zip(results) {
        let gold = gold_top(example);
        let correct = match &example.label {
            Some(l) => **l == *result.label,
            None => example.labels.iter().any(|l| **l == *result.label),
        };
        if correct {
            right += 1;
        }
        confidences.push((
            result.scores.first().map_or(0.0, |s| s.probability),
            correct,
        ));
        *support.entry(gold.to_owned()).or_default() += 1;
        *confusion
            .entry(gold.to_owned())
            .or_default()
            .entry(result.label.to_string())
            .or_default() += 1;
        if *result.label == *gold {
            top_tally.entry(gold.to_owned()).or_default().tp += 1;
        } else {
            top_tally.entry(result.label.to_string()).or_default().fp += 1;
            top_tally.entry(gold.to_owned()).or_default().fn_ += 1;
        }
        for tag in &result.tags {
            let t = tag_tally.entry(tag.to_string()).or_default();
            if example.labels.iter().any(|l| **l == **tag) {
                t.tp += 1;
            } else {
                t.fp += 1;
            }
        }
        for label in &example.labels {
            if !result.tags.iter().any(|t| **t == **label) {
                tag_tally.entry(label.clone()).or_default().fn_ += 1;
            }
        }
    }

    let micro = tag_tally.values().fold(Tally::default(), |a, t| Tally {
        tp: a.tp + t.tp,
        fp: a.fp + t.fp,
        fn_: a.fn_ + t.fn_,
    });
    let mean = |values: Vec<f64>| values.iter().sum::<f64>() / values.len().max(1) as f64;
    let labels: Vec<String> = top_tally.keys().chain(tag_tally.keys()).cloned().collect();
    let per_label = labels
        .into_iter()
        .map(|label| {
            let top = top_tally.get(&label).copied().unwrap_or_default();
            let tag = tag_tally.get(&label).copied().unwrap_or_default();
            let metrics = LabelMetrics {
                precision: top.precision(),
                recall: top.recall(),
                f1: top.f1(),
                support: support.get(&label).copied().unwrap_or(0),
                tag_f1: tag.f1(),
                tag_support: tag.tp + tag.fn_,
                tagged: tag.tp + tag.fp,
            };
            (label, metrics)
        })
        .collect();
    Report {
        n: examples.len(),
        accuracy: ratio(right, examples.len()),
        macro_f1: mean(top_tally.values().map(|t| t.f1()).collect()),
        tags: TagMetrics {
            micro_f1: micro.f1(),
            macro_f1: mean(tag_tally.values().map(|t| t.f1()).collect()),
            precision: micro.precision(),
            recall: micro.recall(),
        },
        per_label,
        confusion,
        ece: expected_calibration_error(&confidences, 10),
        docs_per_second: if seconds > 0.0 {
            examples.len() as f64 / seconds
        } else {
            0.0
        },
    }
}
