//! From counts to scoring weights: the multinomial or complement log-probabilities for the top label,
//! the one-vs-rest log-odds for tags, and IDF. Weights are derived data: they are recomputed from the
//! counts whenever the counts change and are never stored.

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use super::counts::Counts;
use super::features::{SparseVector, Transforms};

/// Which naive Bayes variant decides the top label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NbKind {
    /// Multinomial naive Bayes: `ln P(c) + Σ q_t ln θ_tc`, with Lidstone-smoothed `θ_tc`.
    Multinomial,
    /// Complement naive Bayes (Rennie et al. 2003): each label is scored by how badly its complement
    /// explains the text, with per-label weight normalisation.
    Complement,
}

/// Scoring weights for one model: one contiguous row per term.
#[derive(Debug, Clone)]
pub struct Weights {
    /// `[term, label]`: weight of the term for the top-label score.
    pub top: Array2<f64>,
    /// Per label: bias of the top-label score (log prior for multinomial NB, 0 for complement NB).
    pub top_bias: Vec<f64>,
    /// `[term, label]`: one-vs-rest log-odds of the term for label against all other labels.
    pub ovr: Array2<f64>,
    /// Per label: prior log-odds of the label against all others.
    pub ovr_bias: Vec<f64>,
    /// Per term: scoring-side IDF multiplier (all 1 when IDF is off).
    pub idf: Vec<f64>,
}

/// Raw scores of one document before calibration.
#[derive(Debug, Clone, PartialEq)]
pub struct RawScores {
    /// Top-label scores, one per label (higher is better).
    pub top: Vec<f64>,
    /// One-vs-rest log-odds, one per label.
    pub ovr: Vec<f64>,
}

impl Weights {
    /// Computes the weights for `counts` with smoothing `alpha`.
    pub fn compute(counts: &Counts, kind: NbKind, alpha: f64, transforms: Transforms) -> Self {
        let n_terms = counts.vocabulary.len();
        let n_labels = counts.labels.len();
        let v = n_terms as f64;
        let mut top = Array2::<f64>::zeros((n_terms, n_labels));
        let mut ovr = Array2::<f64>::zeros((n_terms, n_labels));

        // ln θ for "label" and "not label", per label; zero counts share one value per label.
        let in_denominator: Vec<f64> = counts
            .label_weight
            .iter()
            .map(|w| (w + alpha * v).ln())
            .collect();
        let out_denominator: Vec<f64> = counts
            .label_weight
            .iter()
            .map(|w| (counts.total_weight - w).max(0.0) + alpha * v)
            .map(f64::ln)
            .collect();
        let ln_alpha = alpha.ln();
        let mut in_count = vec![0.0; n_labels];
        for t in 0..n_terms {
            in_count.iter_mut().for_each(|x| *x = 0.0);
            for &(label, w) in &counts.term_label_weight[t] {
                in_count[label as usize] = w;
            }
            let total = counts.term_weight[t];
            let mut top_row = top.row_mut(t);
            let mut ovr_row = ovr.row_mut(t);
            for c in 0..n_labels {
                let ln_in = if in_count[c] == 0.0 {
                    ln_alpha - in_denominator[c]
                } else {
                    (in_count[c] + alpha).ln() - in_denominator[c]
                };
                let ln_out = ((total - in_count[c]).max(0.0) + alpha).ln() - out_denominator[c];
                ovr_row[c] = ln_in - ln_out;
                top_row[c] = match kind {
                    NbKind::Multinomial => ln_in,
                    NbKind::Complement => ln_out,
                };
            }
        }

        let label_total: f64 = counts.label_documents.iter().sum();
        let top_bias = match kind {
            NbKind::Multinomial => counts
                .label_documents
                .iter()
                // A label with no document left (possible inside a cross-validation fold) gets
                // half a document, so that its score stays finite.
                .map(|d| (d.max(0.5) / label_total).ln())
                .collect(),
            NbKind::Complement => {
                // Weight normalisation: each label's weights scaled to unit L1 norm, then negated so
                // that a higher score is better.
                for c in 0..n_labels {
                    let mut column = top.column_mut(c);
                    let norm: f64 = column.iter().map(|w| w.abs()).sum();
                    if norm > 0.0 {
                        column.mapv_inplace(|w| -w / norm);
                    }
                }
                vec![0.0; n_labels]
            }
        };
        let ovr_bias = counts
            .label_documents
            .iter()
            .map(|d| ((d + 1.0) / (counts.documents - d + 1.0).max(1.0)).ln())
            .collect();
        let idf = if transforms.idf {
            counts
                .document_frequency
                .iter()
                .map(|df| ((1.0 + counts.documents) / (1.0 + df)).ln() + 1.0)
                .collect()
        } else {
            vec![1.0; n_terms]
        };
        Weights {
            top,
            top_bias,
            ovr,
            ovr_bias,
            idf,
        }
    }

    /// Scores a query vector that already carries its transforms (see [`Weights::query_vector`]).
    pub fn score(&self, query: &SparseVector) -> RawScores {
        let mut top = self.top_bias.clone();
        let mut ovr = self.ovr_bias.clone();
        for &(t, q) in query {
            let t = t as usize;
            for (s, w) in top.iter_mut().zip(self.top.row(t)) {
                *s += q * w;
            }
            for (s, w) in ovr.iter_mut().zip(self.ovr.row(t)) {
                *s += q * w;
            }
        }
        RawScores { top, ovr }
    }

    /// Turns raw term frequencies into the scoring-side vector: sublinear TF, IDF, length norm.
    pub fn query_vector(&self, mut tf: SparseVector, transforms: Transforms) -> SparseVector {
        if transforms.sublinear_tf {
            for (_, w) in tf.iter_mut() {
                *w = w.ln_1p();
            }
        }
        if transforms.idf {
            for (t, w) in tf.iter_mut() {
                *w *= self.idf[*t as usize];
            }
        }
        if transforms.length_norm {
            super::features::normalize_l2(&mut tf);
        }
        tf
    }
}
