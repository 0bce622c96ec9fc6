//! From counts to scoring weights: the multinomial or complement log-probabilities for the top label,
//! the one-vs-rest log-odds for tags, and IDF. Weights are derived data: they are recomputed from the
//! counts whenever the counts change and are never stored.
//!
//! ## Why the weights are sparse
//!
//! With Lidstone smoothing, the weight of a term under a label where it was never counted is
//! *separable*: `ln θ_tc = ln α − ln(N_c + αV)` depends on the label only, and the complement's
//! `ln θ_t¬c = ln(T_t + α) − ln(N_¬c + αV)` is a label part plus a term part. So every family of
//! weights is stored as
//!
//! ```text
//! w(t, c) = label_base[c] + label_scale[c] · term_base[t] + δ(t, c)
//! ```
//!
//! with `δ` non-zero only where the term was counted under the label (CSR rows, usually a handful of
//! labels per term). Scoring a document then costs `O(terms + non-zeros + labels)` instead of
//! `O(terms × labels)`, and building weights costs one logarithm per term and per non-zero instead
//! of one per (term, label) pair — the difference between 2 and 300 MB, and between milliseconds and
//! seconds, on a 90-label, 300k-term model.

use ndarray::Array1;
use serde::{Deserialize, Serialize};

use super::counts::Counts;
use super::features::{SparseVector, Transforms};
use super::ModelSettings;

/// Which naive Bayes variant decides the top label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NbKind {
    /// Multinomial naive Bayes: `ln P(c) + Σ q_t ln θ_tc`, with Lidstone-smoothed `θ_tc`.
    Multinomial,
    /// Complement naive Bayes (Rennie et al. 2003): each label is scored by how badly its complement
    /// explains the text (optionally with per-label weight normalisation).
    Complement,
    /// One-vs-rest naive Bayes: each label's log-odds against all the others (Rennie et al.'s
    /// "one-versus-all-but-one"); the same scores that decide tags also pick the top label.
    OneVsRest,
}

/// One family of weights in separable-plus-sparse form (see the module docs); its sparse
/// corrections `δ` live in the [`Weights`] rows it shares with the other family.
#[derive(Debug, Clone)]
pub struct SparseWeights {
    /// Per label: constant added to the score.
    pub bias: Array1<f64>,
    /// Per label: weight of a term never counted under the label, before the term part.
    pub label_base: Array1<f64>,
    /// Per label: multiplier of the term part.
    pub label_scale: Array1<f64>,
    /// Per term: the term part.
    pub term_base: Vec<f64>,
}

impl SparseWeights {
    /// The weight of term `t` for label `c`, given the term's correction `delta` for that label.
    fn weight(&self, t: usize, c: usize, delta: f64) -> f64 {
        self.label_base[c] + self.label_scale[c] * self.term_base[t] + delta
    }

    /// Adds the separable part of the scores to `out`, given `Σ q` and `Σ q · term_base`.
    #[inline]
    fn finish(&self, sum_q: f64, sum_qb: f64, out: &mut [f64]) {
        for (c, s) in out.iter_mut().enumerate() {
            *s += self.bias[c] + self.label_base[c] * sum_q + self.label_scale[c] * sum_qb;
        }
    }
}

/// The sparse corrections of one counted (term, label) pair, for both families.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Correction {
    /// The label.
    pub label: u32,
    /// `δ` of the top-label family.
    pub top: f64,
    /// `δ` of the one-vs-rest family.
    pub ovr: f64,
}

/// Scoring weights for one model.
#[derive(Debug, Clone)]
pub struct Weights {
    /// Weights of the top-label score.
    pub top: SparseWeights,
    /// One-vs-rest log-odds of each label against all others (tags).
    pub ovr: SparseWeights,
    /// CSR row starts into `corrections` (one more than the number of terms).
    pub row_start: Vec<u32>,
    /// Corrections for the counted (term, label) pairs, sorted by label within a term's row.
    pub corrections: Vec<Correction>,
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

/// Which function of the two smoothed log-probabilities a family computes.
#[derive(Clone, Copy)]
enum Family {
    /// `ln θ_tc` (multinomial).
    In,
    /// `−ln θ_t¬c`, optionally divided by the label's L1 norm (complement).
    NegatedOut { weight_norm: bool },
    /// `ln θ_tc − ln θ_t¬c` (one-vs-rest log-odds).
    LogOdds,
}

/// One family's separable part and its corrections, row by row (rows as in `counts`).
fn build(
    counts: &Counts,
    alpha: f64,
    family: Family,
    bias: Vec<f64>,
) -> (SparseWeights, Vec<u32>, Vec<(u32, f64)>) {
    let n_terms = counts.vocabulary.len();
    let n_labels = counts.labels.len();
    let v = n_terms as f64;
    let ln_alpha = alpha.ln();
    let in_den: Vec<f64> = counts
        .label_weight
        .iter()
        .map(|w| (w.max(0.0) + alpha * v).ln())
        .collect();
    let out_den: Vec<f64> = counts
        .label_weight
        .iter()
        .map(|w| ((counts.total_weight - w).max(0.0) + alpha * v).ln())
        .collect();
    // ln(T_t + α): the complement's numerator for a term not counted under the label.
    let term_out: Vec<f64> = counts
        .term_weight
        .iter()
        .map(|t| (t.max(0.0) + alpha).ln())
        .collect();

    let mut row_start = Vec::with_capacity(n_terms + 1);
    let mut entries = Vec::new();
    // Raw corrections first: δ_in = ln(n + α) − ln α, δ_out = ln(T − n + α) − ln(T + α).
    row_start.push(0u32);
    let rows = counts
        .term_label_weight
        .iter()
        .zip(&counts.term_weight)
        .zip(&term_out);
    for ((row, &total), &ln_total) in rows {
        for &(c, n) in row {
            let n = n.max(0.0);
            let delta_in = (n + alpha).ln() - ln_alpha;
            let delta_out = ((total - n).max(0.0) + alpha).ln() - ln_total;
            let delta = match family {
                Family::In => delta_in,
                Family::NegatedOut { .. } => -delta_out,
                Family::LogOdds => delta_in - delta_out,
            };
            entries.push((c, delta));
        }
        row_start.push(entries.len() as u32);
    }

    let (mut label_base, mut label_scale): (Vec<f64>, Vec<f64>) = match family {
        Family::In => (
            in_den.iter().map(|d| ln_alpha - d).collect(),
            vec![0.0; n_labels],
        ),
        Family::NegatedOut { .. } => (out_den.clone(), vec![-1.0; n_labels]),
        Family::LogOdds => (
            in_den
                .iter()
                .zip(&out_den)
                .map(|(i, o)| ln_alpha - i + o)
                .collect(),
            vec![-1.0; n_labels],
        ),
    };
    if let Family::NegatedOut { weight_norm: true } = family {
        // Σ_t |ln θ_t¬c| = −Σ_t ln θ_t¬c, in closed form over the separable part plus the rows.
        let sum_term_out: f64 = term_out.iter().sum();
        let mut norm: Vec<f64> = out_den.iter().map(|o| -(sum_term_out - v * o)).collect();
        for &(c, delta) in &entries {
            // entries hold −δ_out here
            norm[c as usize] += delta;
        }
        for c in 0..n_labels {
            if norm[c] > 0.0 {
                label_base[c] /= norm[c];
                label_scale[c] /= norm[c];
            }
        }
        for (c, delta) in entries.iter_mut() {
            let n = norm[*c as usize];
            if n > 0.0 {
                *delta /= n;
            }
        }
    }
    let weights = SparseWeights {
        bias: Array1::from(bias),
        label_base: Array1::from(label_base),
        label_scale: Array1::from(label_scale),
        term_base: term_out,
    };
    (weights, row_start, entries)
}

impl Weights {
    /// Computes the weights for `counts`: the top-label weights with smoothing `settings.alpha`, the
    /// one-vs-rest weights with `settings.tag_alpha`.
    pub fn compute(counts: &Counts, settings: &ModelSettings) -> Self {
        let n_labels = counts.labels.len();
        let label_total: f64 = counts.label_documents.iter().sum();
        let top = match settings.kind {
            NbKind::Multinomial => {
                // A label with no document left (possible inside a cross-validation fold) gets
                // half a document, so that its score stays finite.
                let prior = counts
                    .label_documents
                    .iter()
                    .map(|d| (d.max(0.5) / label_total).ln())
                    .collect();
                build(counts, settings.alpha, Family::In, prior)
            }
            NbKind::Complement => build(
                counts,
                settings.alpha,
                Family::NegatedOut {
                    weight_norm: settings.weight_norm,
                },
                vec![0.0; n_labels],
            ),
            NbKind::OneVsRest => build(
                counts,
                settings.alpha,
                Family::LogOdds,
                prior_log_odds(counts),
            ),
        };
        let (ovr, _, ovr_entries) = build(
            counts,
            settings.tag_alpha,
            Family::LogOdds,
            prior_log_odds(counts),
        );
        let (top, row_start, top_entries) = top;
        // Both families have a correction for exactly the counted pairs, in the same order.
        let corrections = top_entries
            .iter()
            .zip(&ovr_entries)
            .map(|(&(label, top), &(_, ovr))| Correction { label, top, ovr })
            .collect();
        let idf = if settings.transforms.idf {
            counts
                .document_frequency
                .iter()
                .map(|df| ((1.0 + counts.documents) / (1.0 + df.max(0.0))).ln() + 1.0)
                .collect()
        } else {
            vec![1.0; counts.vocabulary.len()]
        };
        Weights {
            top,
            ovr,
            row_start,
            corrections,
            idf,
        }
    }

    /// The corrections of term `t`.
    #[inline]
    fn row(&self, t: usize) -> &[Correction] {
        &self.corrections[self.row_start[t] as usize..self.row_start[t + 1] as usize]
    }

    /// The top-label weight of term `t` for label `c`.
    pub fn top_weight(&self, t: usize, c: usize) -> f64 {
        let row = self.row(t);
        let delta = row
            .binary_search_by_key(&(c as u32), |e| e.label)
            .map_or(0.0, |i| row[i].top);
        self.top.weight(t, c, delta)
    }

    /// Scores a query vector that already carries its transforms (see [`Weights::query_vector`]).
    pub fn score(&self, query: &SparseVector) -> RawScores {
        let n_labels = self.top.bias.len();
        let mut top = vec![0.0; n_labels];
        let mut ovr = vec![0.0; n_labels];
        let (mut sum_q, mut sum_qb_top, mut sum_qb_ovr) = (0.0, 0.0, 0.0);
        for &(t, q) in query {
            let t = t as usize;
            sum_q += q;
            sum_qb_top += q * self.top.term_base[t];
            sum_qb_ovr += q * self.ovr.term_base[t];
            for e in self.row(t) {
                top[e.label as usize] += q * e.top;
                ovr[e.label as usize] += q * e.ovr;
            }
        }
        self.top.finish(sum_q, sum_qb_top, &mut top);
        self.ovr.finish(sum_q, sum_qb_ovr, &mut ovr);
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

/// Per label: smoothed prior log-odds of the label against all others.
fn prior_log_odds(counts: &Counts) -> Vec<f64> {
    counts
        .label_documents
        .iter()
        .map(|d| ((d + 1.0) / (counts.documents - d + 1.0).max(1.0)).ln())
        .collect()
}
