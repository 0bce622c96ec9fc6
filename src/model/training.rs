//! Training: counting, incremental updates, and the internal cross-validation that chooses α and
//! fits the calibration temperature and the tag thresholds on held-out scores.
//!
//! Cross-validation is cheap because counts are additive: the model for fold `f` is the full counts
//! minus the fold's own documents, so no fold re-reads the text.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::calibration::{
    expected_calibration_error, fit_temperature, fit_temperature_and_bias, softmax,
};
use super::counts::Counts;
use super::features::{transformed_counts, SparseVector};
use super::tokenized::for_each_tokenized;
use super::weights::{RawScores, Weights};
use super::{argmax, Calibration, Example, Metadata, Model, ModelSettings};
use crate::text::Analyzer;

/// Why training was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TrainError {
    /// No examples and no labels left: there is nothing to build a model from.
    #[error("no training examples: give at least one example with a text and a label")]
    NoExamples,
    /// An example is unusable.
    #[error("example {index}: {reason}")]
    InvalidExample {
        /// Position of the example in the input (0-based).
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A label to remove does not exist.
    #[error("cannot remove label {0:?}: the model has no such label")]
    UnknownLabel(String),
    /// Removing labels would leave the model without any.
    #[error("removing these labels would leave the model with no label at all")]
    NoLabelsLeft,
}

/// Cross-validated quality of a training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CvMetrics {
    /// Number of folds.
    pub folds: usize,
    /// The α chosen (or fixed).
    pub alpha: f64,
    /// Top-1 accuracy (right when the top label is among the example's labels).
    pub accuracy: f64,
    /// Macro-averaged F1 of the top label against the dominant (first) label.
    pub macro_f1: f64,
    /// Micro-averaged F1 of the tags against all labels, with cross-fitted thresholds (each fold
    /// tagged with thresholds fitted on the other folds' held-out scores).
    pub tag_micro_f1: f64,
    /// Macro-averaged F1 of the tags over the labels, cross-fitted like `tag_micro_f1` (absent
    /// from models written before it was measured).
    #[serde(default)]
    pub tag_macro_f1: f64,
    /// Expected calibration error of the top-1 probability, after calibration.
    pub ece: f64,
}

/// One analysed training document.
struct Document {
    /// Raw term frequencies (for scoring it as held-out text); empty when no cross-validation will
    /// score it.
    tf: SparseVector,
    /// Transformed training vector (what the counts add).
    vector: SparseVector,
    labels: Vec<u32>,
}

/// Held-out scores of every training document, from the fold that did not train on it.
struct HeldOut {
    top: Vec<Vec<f64>>,
    ovr: Vec<Vec<f64>>,
}

fn validate(examples: &[Example]) -> Result<(), TrainError> {
    for (index, example) in examples.iter().enumerate() {
        let reason = if example.text.trim().is_empty() {
            "text is empty"
        } else if example.labels.is_empty() {
            "no label: give at least one"
        } else if example.labels.iter().any(|l| l.trim().is_empty()) {
            "a label is empty"
        } else {
            continue;
        };
        return Err(TrainError::InvalidExample {
            index,
            reason: reason.to_owned(),
        });
    }
    Ok(())
}

/// Bytes of training text per term it adds to the vocabulary, a little under what news gives
/// with the default settings (17 for R8's training text, 19 for ModApte-90's, words and bigrams):
/// [`analyse`] sizes the vocabulary's table for the terms this predicts before it adds any. The
/// estimate only saves work: a larger vocabulary grows the table as usual, and a smaller one
/// (fewer bigrams, or a text that repeats itself) gets it shrunk back once counted.
const TEXT_BYTES_PER_NEW_TERM: usize = 16;

/// The most terms [`analyse`] reserves for (a 16 MB table): past that the table grows by doubling
/// as before, so that a corpus whose vocabulary grows more slowly than its text (most do: ever
/// fewer of its words are new) never makes training allocate far more than it needs up front.
const MAX_RESERVED_TERMS: usize = 1 << 20;

/// Analyses and counts `examples`. Their raw term frequencies are kept only with `keep_raw` (for the
/// cross-validation that scores them as held-out text).
fn analyse(
    analyzer: &Analyzer,
    settings: &ModelSettings,
    counts: &mut Counts,
    examples: &[Example],
    keep_raw: bool,
    progress: &mut dyn FnMut(usize),
) -> Vec<Document> {
    let mut documents = Vec::with_capacity(examples.len());
    let texts: Vec<&str> = examples.iter().map(|e| e.text.as_str()).collect();
    let text_bytes: usize = texts.iter().map(|t| t.len()).sum();
    counts
        .vocabulary
        .reserve((text_bytes / TEXT_BYTES_PER_NEW_TERM).min(MAX_RESERVED_TERMS));
    let mut ids: Vec<u32> = Vec::new();
    // Label index by name, as the examples spell it (a model can have a hundred labels).
    let mut label_indices: HashMap<&str, u32> = HashMap::new();
    for_each_tokenized(analyzer, &texts, |first, chunk| {
        counts
            .vocabulary
            .insert_all(chunk.keys(), |local| chunk.term(local), &mut ids);
        for (offset, terms) in chunk.documents().enumerate() {
            let i = first + offset;
            let global = terms.iter().map(|&(local, n)| (ids[local as usize], n));
            // The document's terms in the order of their first occurrence in it (as its chunk
            // lists them), whatever batch or chunk it comes in: no sum depends on that order but
            // the document's own (its length and total weight), the same in every batch.
            let vector = transformed_counts(global.clone(), settings.transforms);
            let tf = if keep_raw {
                global.map(|(id, n)| (id, f64::from(n))).collect()
            } else {
                SparseVector::new()
            };
            let mut labels: Vec<u32> = Vec::with_capacity(examples[i].labels.len());
            for label in &examples[i].labels {
                let index = *label_indices
                    .entry(label.as_str())
                    .or_insert_with(|| counts.label_index(label.trim()));
                if !labels.contains(&index) {
                    labels.push(index);
                }
            }
            documents.push(Document { tf, vector, labels });
            if i % 256 == 255 {
                progress(i + 1);
            }
        }
    });
    let added: Vec<(&SparseVector, &[u32])> = documents
        .iter()
        .map(|d| (&d.vector, d.labels.as_slice()))
        .collect();
    counts.add_documents(&added);
    progress(examples.len());
    documents
}

/// The model creation time: `SOURCE_DATE_EPOCH` when set (reproducible builds), else now.
fn created_at() -> String {
    let seconds = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0)
        });
    crate::store::rfc3339(seconds)
}

impl Model {
    /// Trains a fresh model from `examples`: counts, then (with `settings.folds >= 2`) internal
    /// cross-validation to choose α from the grid and to fit the temperature and tag thresholds.
    /// `progress` is called with the number of examples analysed so far.
    pub fn train(
        settings: &ModelSettings,
        examples: &[Example],
        progress: &mut dyn FnMut(usize),
    ) -> Result<Model, TrainError> {
        if examples.is_empty() {
            return Err(TrainError::NoExamples);
        }
        validate(examples)?;
        let mut settings = settings.clone();
        let analyzer = Analyzer::new(settings.analyzer.clone());
        let mut counts = Counts::default();
        let cross_validate = settings.folds >= 2 && examples.len() >= settings.folds;
        let documents = analyse(
            &analyzer,
            &settings,
            &mut counts,
            examples,
            cross_validate,
            progress,
        );
        counts.grow_to_vocabulary();
        counts.shrink_to_fit();

        let choice = if cross_validate {
            choose_alpha(&settings, &counts, &documents)
        } else {
            None
        };
        let (calibration, cv) = match choice {
            Some(choice) => {
                settings.alpha = choice.alpha;
                settings.tag_alpha = choice.tag_alpha;
                let (calibration, cv) = fit_calibration(&settings, &counts, &documents, choice);
                (calibration, Some(cv))
            }
            None => (uncalibrated(counts.labels.len()), None),
        };
        let metadata = Metadata {
            created_at: created_at(),
            parent_version: None,
            examples_trained: examples.len() as u64,
            cv,
        };
        // The end of a full training run builds the weights on two threads. Loading a model and
        // incremental training (`from_parts`) stay on one, so a serving process does not start a
        // thread for every Train call.
        let weights = Weights::compute_concurrently(&counts, &settings);
        Ok(Model::with_weights(
            settings,
            counts,
            weights,
            calibration,
            metadata,
        ))
    }

    /// Trains on top of this model: adds `examples` to its counts (new labels welcome) and removes
    /// `remove_labels`. The result equals training on all the examples at once, except that the
    /// temperature and thresholds are kept (new labels use the default threshold).
    pub fn train_incremental(
        &self,
        examples: &[Example],
        remove_labels: &[String],
        parent_version: Option<String>,
    ) -> Result<Model, TrainError> {
        validate(examples)?;
        let mut counts = self.counts.clone();
        let mut calibration = self.calibration.clone();
        for label in remove_labels {
            let Some(index) = counts.labels.iter().position(|l| l == label) else {
                return Err(TrainError::UnknownLabel(label.clone()));
            };
            counts.remove_label(label);
            if index < calibration.thresholds.len() {
                calibration.thresholds.remove(index);
            }
            if index < calibration.label_bias.len() {
                calibration.label_bias.remove(index);
            }
        }
        analyse(
            &self.analyzer,
            &self.settings,
            &mut counts,
            examples,
            false,
            &mut |_| {},
        );
        counts.grow_to_vocabulary();
        counts.shrink_to_fit();
        if counts.labels.is_empty() {
            return Err(TrainError::NoLabelsLeft);
        }
        calibration
            .thresholds
            .resize(counts.labels.len(), calibration.default_threshold);
        if !calibration.label_bias.is_empty() {
            calibration.label_bias.resize(counts.labels.len(), 0.0);
        }
        let metadata = Metadata {
            created_at: created_at(),
            parent_version,
            examples_trained: examples.len() as u64,
            cv: None,
        };
        Ok(Model::from_parts(
            self.settings.clone(),
            counts,
            calibration,
            metadata,
        ))
    }
}

fn uncalibrated(n_labels: usize) -> Calibration {
    Calibration {
        temperature: 1.0,
        thresholds: vec![0.0; n_labels],
        default_threshold: 0.0,
        label_bias: Vec::new(),
    }
}

/// How many α candidates (those with the best raw held-out accuracy) are calibrated and compared
/// again when choosing the top-label α.
const CALIBRATED_ALPHA_CANDIDATES: usize = 3;

/// What [`choose_alpha`] picked, and what it measured and fitted on the way.
struct AlphaChoice {
    /// α of the top-label weights.
    alpha: f64,
    /// α of the one-vs-rest (tag) weights.
    tag_alpha: f64,
    /// Raw held-out top-label scores at `alpha` and one-vs-rest scores at `tag_alpha`.
    held_out: HeldOut,
    /// Temperature and label biases fitted on `held_out.top` (thresholds empty).
    calibration: Calibration,
}

fn fold_of(index: usize, folds: usize) -> usize {
    index % folds
}

/// Scores every document with the fold model that did not see it, for each α of the grid. The
/// top-label α is, among the few with the best raw held-out accuracy, the one with the best accuracy
/// once its temperature and label biases are fitted (judged as it would be deployed); the tag α the
/// one with the best held-out tag micro-F1 once thresholds are fitted. Returns both and the held-out
/// scores they give, with the temperature and biases already fitted for the top-label α.
/// `None` only when there is nothing to choose from (no documents or folds).
fn choose_alpha(
    settings: &ModelSettings,
    counts: &Counts,
    documents: &[Document],
) -> Option<AlphaChoice> {
    let grid: Vec<f64> = if settings.alpha_grid.is_empty() {
        vec![settings.alpha]
    } else {
        settings.alpha_grid.clone()
    };
    let fold_settings: Vec<ModelSettings> = grid
        .iter()
        .map(|&alpha| {
            let mut fold_settings = settings.clone();
            fold_settings.alpha = alpha;
            fold_settings.tag_alpha = if settings.alpha_grid.is_empty() {
                settings.tag_alpha
            } else {
                alpha
            };
            fold_settings
        })
        .collect();
    let held_out = held_out_scores(&fold_settings, counts, documents);
    let mut per_alpha: Vec<(f64, HeldOut)> = grid.iter().copied().zip(held_out).collect();
    let n_labels = counts.labels.len();
    // The α candidates with the best raw held-out accuracy are each judged as deployed: after the
    // temperature and label biases fitted for them (the fit is the costly part, so only the
    // front-runners get it).
    let raw_accuracy: Vec<f64> = per_alpha
        .iter()
        .map(|(_, held_out)| top_accuracy(&held_out.top, documents))
        .collect();
    let mut candidates: Vec<usize> = (0..per_alpha.len()).collect();
    candidates.sort_by(|&a, &b| raw_accuracy[b].total_cmp(&raw_accuracy[a]).then(a.cmp(&b)));
    candidates.truncate(CALIBRATED_ALPHA_CANDIDATES);
    candidates.sort_unstable();
    let calibrated = crate::parallel::map(&candidates, crate::parallel::cores(), |&i| {
        let top = &per_alpha[i].1.top;
        let calibration = calibrate_top(top, documents, n_labels);
        let logits: Vec<Vec<f64>> = top.iter().map(|t| calibration.logits(t)).collect();
        let top_label: Vec<usize> = logits.iter().map(|t| argmax(t)).collect();
        (i, top_accuracy(&logits, documents), top_label, calibration)
    });
    // The first of the best (the smallest α on ties).
    let (best_top, _, top_label, calibration) =
        calibrated
            .into_iter()
            .reduce(|best, c| if c.1 > best.1 { c } else { best })?;
    let top_label = &top_label;
    let tag_f1 = crate::parallel::map(&per_alpha, crate::parallel::cores(), |(_, held_out)| {
        let thresholds = fit_thresholds(top_label, &held_out.ovr, documents, n_labels);
        tag_micro_f1(top_label, &held_out.ovr, documents, &thresholds)
    });
    let mut best_tag = 0;
    for (i, &f1) in tag_f1.iter().enumerate() {
        if f1 > tag_f1[best_tag] {
            best_tag = i;
        }
    }
    let alpha = per_alpha[best_top].0;
    let tag_alpha = if settings.alpha_grid.is_empty() {
        settings.tag_alpha
    } else {
        per_alpha[best_tag].0
    };
    let ovr = std::mem::take(&mut per_alpha[best_tag].1.ovr);
    let top = std::mem::take(&mut per_alpha[best_top].1.top);
    Some(AlphaChoice {
        alpha,
        tag_alpha,
        held_out: HeldOut { top, ovr },
        calibration,
    })
}

/// For each of `settings` (one per α of the grid), the held-out scores of every document from the
/// fold model that did not train on it. Folds are independent, so they are spread over the available
/// cores; each worker holds one fold's counts at a time. The result does not depend on the number of
/// workers.
fn held_out_scores(
    settings: &[ModelSettings],
    counts: &Counts,
    documents: &[Document],
) -> Vec<HeldOut> {
    let folds = settings.first().map_or(0, |s| s.folds);
    // One fold: its counts, then for each α its weights and the scores of its own documents.
    let score_fold = |f: usize| -> Vec<Vec<(usize, RawScores)>> {
        let mut fold_counts = counts.clone();
        let members: Vec<usize> = (0..documents.len())
            .filter(|&i| fold_of(i, folds) == f)
            .collect();
        for &i in &members {
            fold_counts.subtract_document(&documents[i].vector, &documents[i].labels);
        }
        // Terms only the held-out fold has are unknown to the fold model, exactly as unseen terms
        // are at serving time.
        let known: Vec<SparseVector> = members
            .iter()
            .map(|&i| {
                documents[i]
                    .tf
                    .iter()
                    .copied()
                    .filter(|&(t, _)| fold_counts.document_frequency[t as usize] > 0.5)
                    .collect()
            })
            .collect();
        settings
            .iter()
            .map(|s| {
                let weights = Weights::compute(&fold_counts, s);
                members
                    .iter()
                    .zip(&known)
                    .map(|(&i, tf)| {
                        let q = weights.query_vector(tf.clone(), s.transforms);
                        (i, weights.score(&q))
                    })
                    .collect()
            })
            .collect()
    };
    let fold_indices: Vec<usize> = (0..folds).collect();
    let fold_results =
        crate::parallel::map(&fold_indices, crate::parallel::cores(), |&f| score_fold(f));
    let mut held_out: Vec<HeldOut> = settings
        .iter()
        .map(|_| HeldOut {
            top: vec![Vec::new(); documents.len()],
            ovr: vec![Vec::new(); documents.len()],
        })
        .collect();
    for per_alpha in fold_results {
        for (target, scored) in held_out.iter_mut().zip(per_alpha) {
            for (i, raw) in scored {
                target.top[i] = raw.top;
                target.ovr[i] = raw.ovr;
            }
        }
    }
    held_out
}

/// Share of documents whose best-scoring label is one of their labels.
fn top_accuracy(top: &[Vec<f64>], documents: &[Document]) -> f64 {
    let right = documents
        .iter()
        .zip(top)
        .filter(|(d, top)| d.labels.contains(&(argmax(top) as u32)))
        .count();
    right as f64 / documents.len().max(1) as f64
}

fn tag_micro_f1(
    top_label: &[usize],
    ovr: &[Vec<f64>],
    documents: &[Document],
    thresholds: &[f64],
) -> f64 {
    let (mut tp, mut fp, mut fn_) = (0usize, 0usize, 0usize);
    for (i, d) in documents.iter().enumerate() {
        for (c, &threshold) in thresholds.iter().enumerate() {
            // The top label is always a tag.
            let predicted = top_label[i] == c || ovr[i][c] >= threshold;
            let gold = d.labels.contains(&(c as u32));
            match (predicted, gold) {
                (true, true) => tp += 1,
                (true, false) => fp += 1,
                (false, true) => fn_ += 1,
                _ => {}
            }
        }
    }
    f1(tp, fp, fn_)
}

/// Micro- and macro-averaged tag F1 with thresholds *cross-fitted*: each fold's documents are tagged
/// with thresholds fitted on the other folds' held-out scores only, so the figures are not inflated
/// by thresholds chosen on the very scores they are judged on. The macro average is over the labels
/// with at least one gold or predicted tag.
fn cross_fitted_tag_f1(
    top_label: &[usize],
    ovr: &[Vec<f64>],
    documents: &[Document],
    n_labels: usize,
    folds: usize,
) -> (f64, f64) {
    // Per label: (true positives, false positives, false negatives).
    let mut tally = vec![(0usize, 0usize, 0usize); n_labels];
    for f in 0..folds {
        let thresholds = fit_thresholds_on(top_label, ovr, documents, n_labels, &|i| {
            fold_of(i, folds) != f
        });
        for (i, d) in documents.iter().enumerate() {
            if fold_of(i, folds) != f {
                continue;
            }
            for (c, &threshold) in thresholds.iter().enumerate() {
                let predicted = top_label[i] == c || ovr[i][c] >= threshold;
                match (predicted, d.labels.contains(&(c as u32))) {
                    (true, true) => tally[c].0 += 1,
                    (true, false) => tally[c].1 += 1,
                    (false, true) => tally[c].2 += 1,
                    (false, false) => {}
                }
            }
        }
    }
    let (tp, fp, fn_) = tally
        .iter()
        .fold((0, 0, 0), |a, t| (a.0 + t.0, a.1 + t.1, a.2 + t.2));
    let present: Vec<f64> = tally
        .iter()
        .filter(|(tp, fp, fn_)| tp + fp + fn_ > 0)
        .map(|&(tp, fp, fn_)| f1(tp, fp, fn_))
        .collect();
    let macro_f1 = present.iter().sum::<f64>() / present.len().max(1) as f64;
    (f1(tp, fp, fn_), macro_f1)
}

fn f1(tp: usize, fp: usize, fn_: usize) -> f64 {
    if tp == 0 {
        return 0.0;
    }
    2.0 * tp as f64 / (2 * tp + fp + fn_) as f64
}

/// Labels with fewer held-out positives than this get the fallback threshold instead of their own.
const MIN_POSITIVES_FOR_OWN_THRESHOLD: usize = 5;

/// A label whose best held-out tag F1 is below this gets the fallback threshold: its scores do not
/// separate it well enough for an F1-optimal threshold.
const MIN_TAG_F1: f64 = 0.1;

/// The fallback threshold never goes below these one-vs-rest log-odds (even odds): a label is not
/// tagged on a text its own model finds less likely to have it than not.
const FALLBACK_FLOOR: f64 = 0.0;

/// How far above the highest held-out negative score the fallback threshold of an untrusted label
/// lies, in log-odds.
const FALLBACK_MARGIN: f64 = 0.5;

/// A threshold no score reaches (finite, so that model files stay plain JSON).
pub const NEVER_TAG: f64 = 1e300;

/// The threshold on one-vs-rest log-odds that maximises F1 for the `(score, gold, forced)` points,
/// where `forced` points (the top label) are tagged whatever their score.
fn best_threshold(points: &mut [(f64, bool, bool)]) -> (f64, f64) {
    // Ties are taken together below, so their order does not matter.
    points.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
    let forced_tp = points.iter().filter(|p| p.2 && p.1).count();
    let forced_fp = points.iter().filter(|p| p.2 && !p.1).count();
    let positives = points.iter().filter(|p| p.1).count();
    let (mut tp, mut fp) = (forced_tp, forced_fp);
    // Threshold above every score: only forced tags.
    let mut best = (
        f1(tp, fp, positives - tp),
        points.first().map_or(0.0, |p| p.0 + 1.0),
    );
    let mut i = 0;
    while i < points.len() {
        let score = points[i].0;
        // Take every point with this score together.
        while i < points.len() && points[i].0 == score {
            if !points[i].2 {
                if points[i].1 {
                    tp += 1;
                } else {
                    fp += 1;
                }
            }
            i += 1;
        }
        let value = f1(tp, fp, positives - tp);
        if value > best.0 {
            let next = points.get(i).map_or(score - 1.0, |p| p.0);
            best = (value, (score + next) / 2.0);
        }
    }
    (best.1, best.0)
}

/// The threshold of a label whose own F1-optimal threshold cannot be trusted, from the highest
/// held-out score of a text without it and the lowest of a text with it (infinite when there is
/// none): the lower of FBR (just above every negative) and the lowest positive, but not below
/// [`FALLBACK_FLOOR`]; [`NEVER_TAG`] when neither rule gives a finite threshold.
fn fallback_threshold(above_every_negative: f64, lowest_positive: f64) -> f64 {
    let fbr = if above_every_negative.is_finite() {
        above_every_negative + FALLBACK_MARGIN
    } else {
        NEVER_TAG
    };
    if lowest_positive.is_finite() {
        fbr.min(lowest_positive.max(FALLBACK_FLOOR))
    } else {
        fbr
    }
}

/// The `(score, gold, forced)` points of label `c`: its held-out one-vs-rest log-odds on every
/// document, whether the document has the label, and whether the label is its top label.
fn label_points(
    c: usize,
    top_label: &[usize],
    ovr: &[Vec<f64>],
    documents: &[Document],
    member: &dyn Fn(usize) -> bool,
) -> Vec<(f64, bool, bool)> {
    documents
        .iter()
        .enumerate()
        .filter(|&(i, _)| member(i))
        .map(|(i, d)| (ovr[i][c], d.labels.contains(&(c as u32)), top_label[i] == c))
        .collect()
}

/// Every document.
fn all(_: usize) -> bool {
    true
}

/// The shared threshold (best pooled F1 over all labels), for labels trained later.
fn pooled_threshold(
    top_label: &[usize],
    ovr: &[Vec<f64>],
    documents: &[Document],
    n_labels: usize,
) -> f64 {
    let mut pooled: Vec<(f64, bool, bool)> = (0..n_labels)
        .flat_map(|c| label_points(c, top_label, ovr, documents, &all))
        .collect();
    best_threshold(&mut pooled).0
}

/// Per-label thresholds on one-vs-rest log-odds that maximise each label's held-out F1.
fn fit_thresholds(
    top_label: &[usize],
    ovr: &[Vec<f64>],
    documents: &[Document],
    n_labels: usize,
) -> Vec<f64> {
    fit_thresholds_on(top_label, ovr, documents, n_labels, &all)
}

/// [`fit_thresholds`] on the documents for which `member` is true.
fn fit_thresholds_on(
    top_label: &[usize],
    ovr: &[Vec<f64>],
    documents: &[Document],
    n_labels: usize,
    member: &dyn Fn(usize) -> bool,
) -> Vec<f64> {
    (0..n_labels)
        .map(|c| {
            let mut points = label_points(c, top_label, ovr, documents, member);
            // Labels whose threshold cannot be trusted are tagged beside another label when they
            // score above every held-out text without them (Yang's SCut.FBR fallback), or as high
            // as their lowest-scoring held-out text with them, if that is at least even odds —
            // whichever is lower. (The second rule recovers rare labels that FBR never tags.)
            let above_every_negative = points
                .iter()
                .filter(|p| !p.1)
                .map(|p| p.0)
                .fold(f64::NEG_INFINITY, f64::max);
            let lowest_positive = points
                .iter()
                .filter(|p| p.1)
                .map(|p| p.0)
                .fold(f64::INFINITY, f64::min);
            let fallback = fallback_threshold(above_every_negative, lowest_positive);
            if points.iter().filter(|p| p.1).count() < MIN_POSITIVES_FOR_OWN_THRESHOLD {
                return fallback;
            }
            match best_threshold(&mut points) {
                (threshold, f1) if f1 >= MIN_TAG_F1 => threshold,
                _ => fallback,
            }
        })
        .collect()
}

/// The temperature and label biases fitted on held-out top-label scores, where each document's gold
/// label is its own label that scored best (thresholds are left empty).
fn calibrate_top(top: &[Vec<f64>], documents: &[Document], n_labels: usize) -> Calibration {
    let samples: Vec<(Vec<f64>, usize)> = documents
        .iter()
        .zip(top)
        .map(|(d, top)| {
            let gold = d
                .labels
                .iter()
                .map(|&l| l as usize)
                .max_by(|&a, &b| top[a].total_cmp(&top[b]))
                .unwrap_or(0);
            (top.clone(), gold)
        })
        .collect();
    let temperature = fit_temperature(&samples);
    let (temperature, label_bias) = fit_temperature_and_bias(&samples, temperature)
        .unwrap_or_else(|| (temperature, vec![0.0; n_labels]));
    Calibration {
        temperature,
        thresholds: Vec::new(),
        default_threshold: 0.0,
        label_bias,
    }
}

fn fit_calibration(
    settings: &ModelSettings,
    counts: &Counts,
    documents: &[Document],
    choice: AlphaChoice,
) -> (Calibration, CvMetrics) {
    let n_labels = counts.labels.len();
    let calibrated = choice.calibration;
    let held_out = &HeldOut {
        top: choice
            .held_out
            .top
            .iter()
            .map(|t| calibrated.logits(t))
            .collect(),
        ovr: choice.held_out.ovr,
    };

    let top_label: Vec<usize> = held_out.top.iter().map(|t| argmax(t)).collect();
    let thresholds = fit_thresholds(&top_label, &held_out.ovr, documents, n_labels);
    let default_threshold = pooled_threshold(&top_label, &held_out.ovr, documents, n_labels);

    let accuracy = top_accuracy(&held_out.top, documents);
    let (tag_micro_f1, tag_macro_f1) = cross_fitted_tag_f1(
        &top_label,
        &held_out.ovr,
        documents,
        n_labels,
        settings.folds,
    );
    let confidences: Vec<(f64, bool)> = documents
        .iter()
        .zip(&held_out.top)
        .map(|(d, top)| {
            let p = softmax(top, 1.0);
            let best = argmax(top);
            (p[best], d.labels.contains(&(best as u32)))
        })
        .collect();
    let ece = expected_calibration_error(&confidences, 10);
    let macro_f1 = {
        let mut per_label = vec![(0usize, 0usize, 0usize); n_labels];
        for (d, top) in documents.iter().zip(&held_out.top) {
            let predicted = argmax(top);
            let gold = d.labels[0] as usize;
            if predicted == gold {
                per_label[gold].0 += 1;
            } else {
                per_label[predicted].1 += 1;
                per_label[gold].2 += 1;
            }
        }
        let present: Vec<f64> = per_label
            .iter()
            .filter(|(tp, fp, fn_)| tp + fp + fn_ > 0)
            .map(|&(tp, fp, fn_)| f1(tp, fp, fn_))
            .collect();
        present.iter().sum::<f64>() / present.len().max(1) as f64
    };
    (
        Calibration {
            thresholds,
            default_threshold,
            ..calibrated
        },
        CvMetrics {
            folds: settings.folds,
            alpha: settings.alpha,
            accuracy,
            macro_f1,
            tag_micro_f1,
            tag_macro_f1,
            ece,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_threshold_separates_clean_scores() {
        let mut points = vec![
            (3.0, true, false),
            (2.0, true, false),
            (-1.0, false, false),
            (-2.0, false, false),
        ];
        let (t, f1) = best_threshold(&mut points);
        assert!(t > -1.0 && t < 2.0, "{t}");
        assert_eq!(f1, 1.0);
    }

    #[test]
    fn fallback_threshold_is_the_lower_rule_above_even_odds() {
        // FBR is lower: just above the highest negative.
        assert_eq!(fallback_threshold(1.0, 4.0), 1.0 + FALLBACK_MARGIN);
        // The lowest positive is lower than FBR.
        assert_eq!(fallback_threshold(6.0, 2.5), 2.5);
        // ... but never below even odds.
        assert_eq!(fallback_threshold(6.0, -3.0), FALLBACK_FLOOR);
        // No negative held out: the positive rule alone.
        assert_eq!(fallback_threshold(f64::NEG_INFINITY, 3.0), 3.0);
        // No positive held out: FBR alone.
        assert_eq!(
            fallback_threshold(2.0, f64::INFINITY),
            2.0 + FALLBACK_MARGIN
        );
        // Neither: never tagged.
        assert_eq!(
            fallback_threshold(f64::NEG_INFINITY, f64::INFINITY),
            NEVER_TAG
        );
    }

    #[test]
    fn best_threshold_counts_forced_tags() {
        // The only positive is forced; any threshold that admits others only adds false positives.
        let mut points = vec![(5.0, false, false), (1.0, true, true), (0.5, false, false)];
        let (t, _) = best_threshold(&mut points);
        assert!(t > 5.0, "{t}");
    }
}
