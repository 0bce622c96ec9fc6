//! From counts to scoring weights: the multinomial or complement log-probabilities for the top label,
//! the one-vs-rest log-odds for tags, and IDF. Weights are derived data: they are recomputed from the
//! counts whenever the counts change and are never stored.
//!
//! ## Why the weights are sparse
//!
//! With Lidstone smoothing, the weight of a term under a label where it was never counted is
//! *separable*: `ln θ_tc = ln α − ln(N_c + αV)` depends on the label only, and the complement's
//! `ln θ_t¬c = ln(T_t + α) − ln(N_¬c + αV)` is a label part plus a term part. With Dirichlet
//! smoothing (pseudo-count `a_t` per term, the default for the tag weights) `ln θ_tc = ln a_t −
//! ln(N_c + αV)` is a term part plus a label part, separable just the same. So every family of
//! weights is stored as
//!
//! ```text
//! w(t, c) = label_base[c] + label_scale[c] · term_base[t] + δ(t, c)
//! ```
//!
//! with `δ` non-zero only where the term was counted under the label. Scoring a document then costs
//! `O(terms + non-zeros + labels)` instead of `O(terms × labels)`, and building weights costs one
//! logarithm per term and per non-zero instead of one per (term, label) pair — the difference between
//! 2 and 300 MB, and between milliseconds and seconds, on a 90-label, 300k-term model.
//!
//! ## Memory layout
//!
//! Scoring is bound by memory latency, not arithmetic: a document's terms sit at random places of
//! vocabulary-sized tables. So everything scoring needs per term (both term parts, the IDF, where its
//! `δ` are) is one 32-byte [`TermEntry`], a single cache line read; a term's `δ` for both families
//! sit together in its row. Most rows are sparse (`(label, δ_top, δ_ovr)` for the counted labels
//! only, 20 bytes each: see [`Correction`]); the rows of terms counted under a quarter of the labels
//! or more (numbers, "pct", "mln" on a 90-label model) are stored densely, one value per label, and
//! added with a vectorised loop. The sums are the same in both forms, bit for bit (a test checks
//! it).

use ndarray::Array1;
use serde::{Deserialize, Serialize};

use super::counts::{Counts, LabelRow};
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

/// How the term probabilities of a label (and of its complement) are smoothed. `Default` is
/// Lidstone, what every model file written before this setting existed used; new models use
/// Dirichlet for their tag weights (see [`ModelSettings`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Smoothing {
    /// Lidstone: the same pseudo-count α for every term, `θ_tc = (n_tc + α) / (N_c + αV)`.
    #[default]
    Lidstone,
    /// Dirichlet prior with the collection model as its mean (Zhai & Lafferty 2001): term `t` gets
    /// the pseudo-count `αV · T_t / W` (its share of all term weight), so the pseudo-counts still
    /// add up to `αV` but follow how common the term is. A term with no weight (possible only
    /// inside a cross-validation fold) gets `α`.
    Dirichlet,
}

/// One family of weights in separable-plus-sparse form (see the module docs); its sparse
/// corrections `δ` live in the [`Weights`] rows it shares with the other family.
#[derive(Debug, Clone)]
pub struct SparseWeights {
    /// Per label: constant added to the score.
    pub bias: Array1<f64>,
    /// Per label: weight of a term never counted under the label, before the term part.
    pub label_base: Array1<f64>,
    /// Per label: multiplier of the term part (the term part itself is in [`TermEntry`]).
    pub label_scale: Array1<f64>,
}

impl SparseWeights {
    /// The weight for label `c` of a term with term part `term_base` and correction `delta`.
    fn weight(&self, term_base: f64, c: usize, delta: f64) -> f64 {
        self.label_base[c] + self.label_scale[c] * term_base + delta
    }

    /// Adds the separable part of the scores to `out`, given `Σ q` and `Σ q · term_base`.
    #[inline(always)]
    fn finish(&self, sum_q: f64, sum_qb: f64, out: &mut [f64]) {
        for (c, s) in out.iter_mut().enumerate() {
            *s += self.bias[c] + self.label_base[c] * sum_q + self.label_scale[c] * sum_qb;
        }
    }
}

/// The part of the scoring layout one block of [`Weights::build`] fills: its terms (from term
/// `first` on), and the corrections and dense rows they own, with where those start in the whole.
struct Packed<'a> {
    first: usize,
    terms: &'a mut [TermEntry],
    corrections: &'a mut [Correction],
    correction_base: usize,
    dense: &'a mut [f64],
    dense_base: usize,
}

/// The sparse corrections of one counted (term, label) pair, for both families.
///
/// Packed to 4-byte alignment: 20 bytes instead of the 24 that aligning the `f64` would take, so a
/// row of corrections spans fewer cache lines and the whole array is a sixth smaller. (Scoring
/// prefetches a row's first and last correction, so a row across two lines has both on their way
/// before it is read; the fields are only ever copied out, never borrowed.)
#[derive(Debug, Clone, Copy, PartialEq)]
#[repr(C, packed(4))]
pub struct Correction {
    /// The label.
    pub label: u32,
    /// `δ` of the top-label family.
    pub top: f64,
    /// `δ` of the one-vs-rest family.
    pub ovr: f64,
}

// The packing above holds: the label and the two `f64` with no padding.
const _: () = assert!(std::mem::size_of::<Correction>() == 20);

/// Everything scoring needs to know about one term, packed so that it costs one cache line read
/// (the struct is 32 bytes and 32-byte aligned, two to a line): a document's terms are looked up at
/// random places of a vocabulary-sized table, so four parallel arrays would cost four cache misses
/// per term.
#[derive(Debug, Clone, Copy, PartialEq)]
#[repr(C, align(32))]
pub struct TermEntry {
    /// The term part of the top-label family.
    pub top_base: f64,
    /// The term part of the one-vs-rest family.
    pub ovr_base: f64,
    /// Scoring-side IDF multiplier (1 when IDF is off).
    pub idf: f64,
    /// Start of the term's row in [`Weights::corrections`], or for a dense row (`row_end ==
    /// DENSE_ROW`) the index of its block in [`Weights::dense`].
    pub row_start: u32,
    /// End (exclusive) of the term's row in [`Weights::corrections`], or [`DENSE_ROW`].
    pub row_end: u32,
}

/// `TermEntry::row_end` of a term whose corrections are stored densely.
pub const DENSE_ROW: u32 = u32::MAX;

/// Models with at least this many labels store the rows of their most widespread terms densely.
const DENSE_MIN_LABELS: usize = 16;

/// A row is stored densely when it has corrections for at least one label in this many: a sparse
/// row costs a scattered load and store per correction, a dense one a vectorised pass over all
/// labels. (On ModApte-90, most of a short document's corrections are in such rows: numbers, "pct",
/// "mln", "year"… are counted under nearly every label.)
const DENSE_ROW_SHARE: usize = 4;

/// The corrections of one term, in whichever form it is stored.
enum Row<'a> {
    /// The counted labels only, sorted by label.
    Sparse(&'a [Correction]),
    /// One value per label (zero where the term was not counted), for each family.
    Dense { top: &'a [f64], ovr: &'a [f64] },
}

/// Scoring weights for one model.
#[derive(Debug, Clone)]
pub struct Weights {
    /// Weights of the top-label score.
    pub top: SparseWeights,
    /// One-vs-rest log-odds of each label against all others (tags).
    pub ovr: SparseWeights,
    /// Per term (indexed by term id): term parts, IDF and where its corrections are.
    pub terms: Vec<TermEntry>,
    /// Sparse rows: corrections for the counted (term, label) pairs, sorted by label within a row.
    pub corrections: Vec<Correction>,
    /// Dense rows: per block, the top-label corrections of every label, then the one-vs-rest ones.
    pub dense: Vec<f64>,
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

/// How one family of weights is computed from the counts: its smoothing, α and function, with
/// the few numbers every term needs.
#[derive(Clone, Copy)]
struct Recipe {
    alpha: f64,
    ln_alpha: f64,
    smoothing: Smoothing,
    family: Family,
    /// Vocabulary size.
    v: f64,
    /// Sum of all term weights (what Dirichlet pseudo-counts are shares of).
    total_weight: f64,
    /// With Dirichlet smoothing, `a_t = T_t · αV / W`, so `ln a_t = ln T_t + ln(αV / W)` and
    /// `ln(T_t + a_t) = ln T_t + ln(1 + αV / W)`: the two constants.
    ln_share: f64,
    ln_one_plus_share: f64,
}

/// What a family needs of one term: its pseudo-count `a_t`, `ln a_t`, and `ln(T_t + a_t)` (the
/// complement's numerator for a label the term was not counted under).
#[derive(Clone, Copy)]
struct TermPart {
    a: f64,
    ln_a: f64,
    ln_total: f64,
}

impl Recipe {
    fn new(counts: &Counts, alpha: f64, smoothing: Smoothing, family: Family) -> Self {
        let v = counts.vocabulary.len() as f64;
        let share = alpha * v / counts.total_weight;
        Self {
            alpha,
            ln_alpha: alpha.ln(),
            smoothing,
            family,
            v,
            total_weight: counts.total_weight,
            ln_share: share.ln(),
            ln_one_plus_share: share.ln_1p(),
        }
    }

    /// The per-term numbers of a term whose weights add up to `total` (its `T_t`) and that was
    /// counted under the labels `row` (`(label, weight)`).
    #[inline]
    fn term(&self, total: f64, row: &[(u32, f64)]) -> TermPart {
        match self.smoothing {
            Smoothing::Dirichlet if total > 0.0 && self.total_weight > 0.0 => {
                // Log-odds use `ln a_t` and `ln(T_t + a_t)` only through their difference (a
                // constant) for a term counted under one label with all its weight, which most
                // terms are: `ln T_t` is then left out of both (taken as 0), a logarithm saved.
                let only_their_difference = matches!(self.family, Family::LogOdds)
                    && matches!(row, [(_, n)] if *n == total);
                let ln_total_weight = if only_their_difference {
                    0.0
                } else {
                    total.ln()
                };
                TermPart {
                    a: self.alpha * self.v * total / self.total_weight,
                    ln_a: ln_total_weight + self.ln_share,
                    ln_total: ln_total_weight + self.ln_one_plus_share,
                }
            }
            // Lidstone, and Dirichlet's pseudo-count for a term with no weight: α.
            _ => TermPart {
                a: self.alpha,
                ln_a: self.ln_alpha,
                ln_total: (total.max(0.0) + self.alpha).ln(),
            },
        }
    }

    /// The term part of the weights: `ln(T_t + a_t)` (complement), and for Dirichlet smoothing,
    /// where the pseudo-count of the in-label probability depends on the term, `ln a_t`
    /// (multinomial) or `ln a_t − ln(T_t + a_t)` (log-odds).
    #[inline]
    fn term_base(&self, part: TermPart) -> f64 {
        match (self.family, self.smoothing) {
            (Family::In, Smoothing::Dirichlet) => part.ln_a,
            (Family::LogOdds, Smoothing::Dirichlet) => part.ln_a - part.ln_total,
            _ => part.ln_total,
        }
    }

    /// The correction `δ` of a term (total `total`, numbers `part`) for a label it was counted
    /// under with weight `n`: with `δ_in = ln(n + a) − ln a` and `δ_out = ln(T − n + a) − ln(T +
    /// a)`, `δ_in` (multinomial), `−δ_out` (complement) or `δ_in − δ_out` (log-odds).
    #[inline]
    fn delta(&self, part: TermPart, total: f64, n: f64) -> f64 {
        let n = n.max(0.0);
        // Only the logarithms the family uses are taken (they are most of the build's time), and
        // none that is already known: for a term counted under this label only (most terms),
        // n = T, so ln(n + a) is ln(T + a) and ln(T − n + a) is ln a — the same operations on
        // the same numbers, so the same bits.
        let delta_in = || {
            let ln_in = if n == total.max(0.0) {
                part.ln_total
            } else {
                (n + part.a).ln()
            };
            ln_in - part.ln_a
        };
        let delta_out = || {
            let out = (total - n).max(0.0);
            let ln_out = if out == 0.0 {
                part.ln_a
            } else {
                (out + part.a).ln()
            };
            ln_out - part.ln_total
        };
        match self.family {
            Family::In => delta_in(),
            Family::NegatedOut { .. } => -delta_out(),
            Family::LogOdds => delta_in() - delta_out(),
        }
    }

    /// The per-label part of the family with the constant `bias`, and each label's
    /// `ln(N_¬c + αV)` (what the complement's weight normalisation needs).
    fn label_parts(&self, counts: &Counts, bias: Vec<f64>) -> (SparseWeights, Vec<f64>) {
        let (alpha, v, ln_alpha) = (self.alpha, self.v, self.ln_alpha);
        let n_labels = counts.labels.len();
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
        let dirichlet = self.smoothing == Smoothing::Dirichlet;
        let (label_base, label_scale): (Vec<f64>, Vec<f64>) = match self.family {
            Family::In if dirichlet => (in_den.iter().map(|d| -d).collect(), vec![1.0; n_labels]),
            Family::LogOdds if dirichlet => (
                in_den.iter().zip(&out_den).map(|(i, o)| o - i).collect(),
                vec![1.0; n_labels],
            ),
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
        let weights = SparseWeights {
            bias: Array1::from(bias),
            label_base: Array1::from(label_base),
            label_scale: Array1::from(label_scale),
        };
        (weights, out_den)
    }
}

/// Document frequencies below this get their IDF from a table (see [`Weights::build`]).
const IDF_TABLE_SIZE: usize = 1024;

/// Vocabulary size from which [`Weights::compute_concurrently`] uses a second thread.
const CONCURRENT_MIN_TERMS: usize = 20_000;

/// The fewest corrections a row needs to be stored densely (see [`DENSE_ROW_SHARE`]).
fn dense_min_row(counts: &Counts) -> usize {
    let n_labels = counts.labels.len();
    if n_labels >= DENSE_MIN_LABELS {
        n_labels.div_ceil(DENSE_ROW_SHARE)
    } else {
        usize::MAX
    }
}

/// The top-label family of `settings.kind` (Lidstone smoothing with `settings.alpha`) and its
/// per-label constant.
fn top_recipe(counts: &Counts, settings: &ModelSettings) -> (Recipe, Vec<f64>) {
    let n_labels = counts.labels.len();
    let recipe = |family| Recipe::new(counts, settings.alpha, Smoothing::Lidstone, family);
    match settings.kind {
        NbKind::Multinomial => {
            // A label with no document left (possible inside a cross-validation fold) gets
            // half a document, so that its score stays finite.
            let label_total: f64 = counts.label_documents.iter().sum();
            let prior = counts
                .label_documents
                .iter()
                .map(|d| (d.max(0.5) / label_total).ln())
                .collect();
            (recipe(Family::In), prior)
        }
        NbKind::Complement => (
            recipe(Family::NegatedOut {
                weight_norm: settings.weight_norm,
            }),
            vec![0.0; n_labels],
        ),
        NbKind::OneVsRest => (recipe(Family::LogOdds), prior_log_odds(counts)),
    }
}

/// The one-vs-rest family that decides tags (`settings.tag_smoothing`, `settings.tag_alpha`).
fn ovr_recipe(counts: &Counts, settings: &ModelSettings) -> Recipe {
    Recipe::new(
        counts,
        settings.tag_alpha,
        settings.tag_smoothing,
        Family::LogOdds,
    )
}

/// Terms per block of [`Weights::build`]: blocks are claimed by whichever thread is free, so
/// that the common terms (early ids, long rows) and the rare ones (late ids, one correction) keep
/// both threads busy alike.
const BUILD_BLOCK_TERMS: usize = 4096;

/// How many corrections and dense rows the terms of one block of [`Weights::build`] have.
#[derive(Clone, Copy, Default)]
struct BlockSize {
    sparse: usize,
    dense: usize,
}

impl BlockSize {
    /// The size of the terms with these label rows, dense from `dense_min_row` corrections on.
    fn of(rows: &[LabelRow], dense_min_row: usize) -> Self {
        let mut size = Self::default();
        for row in rows {
            let len = row.as_slice().len();
            if len >= dense_min_row {
                size.dense += 1;
            } else {
                size.sparse += len;
            }
        }
        size
    }
}

/// Divides the complement's weights of every label by its norm (Rennie et al.'s weight
/// normalisation, where the norm is positive): the label part, and the corrections and dense rows
/// (halves of each on two threads with `concurrently`).
fn divide_by_norm(
    top: &mut SparseWeights,
    corrections: &mut [Correction],
    dense: &mut [f64],
    norm: &[f64],
    concurrently: bool,
) {
    let n_labels = norm.len();
    if n_labels == 0 {
        // No label, so no weight either.
        return;
    }
    for (c, &n) in norm.iter().enumerate() {
        if n > 0.0 {
            top.label_base[c] /= n;
            top.label_scale[c] /= n;
        }
    }
    let half = corrections.len() / 2;
    let (corrections_low, corrections_high) = corrections.split_at_mut(half);
    let dense_half = dense.len() / (2 * n_labels) / 2 * (2 * n_labels);
    let (dense_low, dense_high) = dense.split_at_mut(dense_half);
    let divide = |corrections: &mut [Correction], dense: &mut [f64]| {
        for correction in corrections.iter_mut() {
            let n = norm[correction.label as usize];
            if n > 0.0 {
                correction.top /= n;
            }
        }
        // A dense row is zero where the term was not counted, which dividing leaves zero.
        for block in dense.chunks_exact_mut(2 * n_labels) {
            for (value, &n) in block[..n_labels].iter_mut().zip(norm) {
                if n > 0.0 {
                    *value /= n;
                }
            }
        }
    };
    crate::parallel::both(
        concurrently,
        || divide(corrections_low, dense_low),
        || divide(corrections_high, dense_high),
    );
}

impl Weights {
    /// Computes the weights for `counts`: the top-label weights with Lidstone smoothing
    /// `settings.alpha`, the one-vs-rest weights with `settings.tag_smoothing` and
    /// `settings.tag_alpha`.
    pub fn compute(counts: &Counts, settings: &ModelSettings) -> Self {
        Self::compute_with_dense_rows_from(counts, settings, dense_min_row(counts))
    }

    /// [`Weights::compute`] with the terms split between two threads, when the machine has two
    /// cores and the vocabulary is large enough to repay a thread (the end of a full training
    /// run; cross-validation folds already keep every core busy and use [`Weights::compute`]).
    /// The result is the same bit for bit.
    pub fn compute_concurrently(counts: &Counts, settings: &ModelSettings) -> Self {
        let concurrently =
            crate::parallel::cores() >= 2 && counts.vocabulary.len() >= CONCURRENT_MIN_TERMS;
        Self::build(counts, settings, dense_min_row(counts), concurrently)
    }

    /// [`Weights::compute`], storing densely the rows with at least `dense_min_row` corrections.
    fn compute_with_dense_rows_from(
        counts: &Counts,
        settings: &ModelSettings,
        dense_min_row: usize,
    ) -> Self {
        Self::build(counts, settings, dense_min_row, false)
    }

    /// Builds both families straight into the scoring layout (see the module docs), term by term:
    /// each term's entry, and its corrections for both families side by side.
    ///
    /// The terms are built in blocks of consecutive terms, on every core with `concurrently`, else
    /// one after the other: the result is the same bit for bit either way, since every sum over
    /// terms (the complement's weight normalisation) is made per block and the blocks' sums are
    /// then added in block order.
    fn build(
        counts: &Counts,
        settings: &ModelSettings,
        dense_min_row: usize,
        concurrently: bool,
    ) -> Self {
        let n_labels = counts.labels.len();
        let (top_recipe, top_bias) = top_recipe(counts, settings);
        let ovr_recipe = ovr_recipe(counts, settings);
        let (mut top, top_out_den) = top_recipe.label_parts(counts, top_bias);
        let (ovr, _) = ovr_recipe.label_parts(counts, prior_log_odds(counts));
        let normalize = matches!(top_recipe.family, Family::NegatedOut { weight_norm: true });
        let idf_of = |df: f64| ((1.0 + counts.documents) / (1.0 + df)).ln() + 1.0;
        // Document frequencies are small whole numbers nearly always: their IDF comes from a
        // table made by the same expression (the same bits), not from a logarithm per term.
        let idf_table: Vec<f64> = if settings.transforms.idf {
            (0..IDF_TABLE_SIZE).map(|df| idf_of(df as f64)).collect()
        } else {
            Vec::new()
        };
        let idf = |t: usize| {
            if settings.transforms.idf {
                let df = counts.document_frequency[t].max(0.0);
                let whole = df as usize;
                if whole as f64 == df && whole < IDF_TABLE_SIZE {
                    idf_table[whole]
                } else {
                    idf_of(df)
                }
            } else {
                1.0
            }
        };
        let n_terms = counts.vocabulary.len();
        let workers = if concurrently {
            crate::parallel::cores()
        } else {
            1
        };
        let empty_entry = TermEntry {
            top_base: 0.0,
            ovr_base: 0.0,
            idf: 0.0,
            row_start: 0,
            row_end: 0,
        };
        // The term entries are allocated while the blocks are sized.
        let blocks: Vec<std::ops::Range<usize>> = (0..n_terms)
            .step_by(BUILD_BLOCK_TERMS)
            .map(|start| start..(start + BUILD_BLOCK_TERMS).min(n_terms))
            .collect();
        let (mut terms, sizes) = crate::parallel::both(
            concurrently,
            || vec![empty_entry; n_terms],
            || -> Vec<BlockSize> {
                blocks
                    .iter()
                    .map(|block| {
                        BlockSize::of(&counts.term_label_weight[block.clone()], dense_min_row)
                    })
                    .collect()
            },
        );
        let sparse_total = sizes.iter().map(|size| size.sparse).sum();
        let dense_total: usize = sizes.iter().map(|size| size.dense).sum();
        let empty_correction = Correction {
            label: 0,
            top: 0.0,
            ovr: 0.0,
        };
        let mut corrections = vec![empty_correction; sparse_total];
        let mut dense = vec![0.0; dense_total * 2 * n_labels];
        // Every block's part of the layout, claimed by one thread each.
        let parts: Vec<std::sync::Mutex<Option<Packed<'_>>>> = {
            let (mut terms_rest, mut corrections_rest, mut dense_rest) =
                (&mut terms[..], &mut corrections[..], &mut dense[..]);
            let (mut correction_base, mut dense_base) = (0, 0);
            blocks
                .iter()
                .zip(&sizes)
                .map(|(block, size)| {
                    let (own_terms, rest) =
                        std::mem::take(&mut terms_rest).split_at_mut(block.len());
                    terms_rest = rest;
                    let (own_corrections, rest) =
                        std::mem::take(&mut corrections_rest).split_at_mut(size.sparse);
                    corrections_rest = rest;
                    let (own_dense, rest) =
                        std::mem::take(&mut dense_rest).split_at_mut(size.dense * 2 * n_labels);
                    dense_rest = rest;
                    let part = Packed {
                        first: block.start,
                        terms: own_terms,
                        corrections: own_corrections,
                        correction_base,
                        dense: own_dense,
                        dense_base,
                    };
                    correction_base += size.sparse;
                    dense_base += size.dense;
                    std::sync::Mutex::new(Some(part))
                })
                .collect()
        };
        // Fills one block; with `normalize`, returns the block's sum of the complement's term
        // parts and its sum of corrections per label (what the weight normalisation needs), each
        // in term order.
        let fill = |part: Packed<'_>| -> (f64, Vec<f64>) {
            let Packed {
                first,
                terms,
                corrections,
                correction_base,
                dense,
                dense_base,
            } = part;
            let mut sum_term_out = 0.0;
            let mut norm = vec![0.0; if normalize { n_labels } else { 0 }];
            let (mut sparse_used, mut dense_used) = (0, 0);
            for (i, entry) in terms.iter_mut().enumerate() {
                let t = first + i;
                let total = counts.term_weight[t];
                let labels = counts.term_label_weight[t].as_slice();
                let (top_part, ovr_part) = (
                    top_recipe.term(total, labels),
                    ovr_recipe.term(total, labels),
                );
                let (row_start, row_end) = if labels.len() >= dense_min_row {
                    let block = &mut dense[dense_used * 2 * n_labels..][..2 * n_labels];
                    for &(c, n) in labels {
                        let c = c as usize;
                        let delta = top_recipe.delta(top_part, total, n);
                        if normalize {
                            norm[c] += delta;
                        }
                        block[c] = delta;
                        block[n_labels + c] = ovr_recipe.delta(ovr_part, total, n);
                    }
                    dense_used += 1;
                    ((dense_base + dense_used - 1) as u32, DENSE_ROW)
                } else {
                    let start = correction_base + sparse_used;
                    for &(label, n) in labels {
                        let delta = top_recipe.delta(top_part, total, n);
                        if normalize {
                            norm[label as usize] += delta;
                        }
                        corrections[sparse_used] = Correction {
                            label,
                            top: delta,
                            ovr: ovr_recipe.delta(ovr_part, total, n),
                        };
                        sparse_used += 1;
                    }
                    (start as u32, (correction_base + sparse_used) as u32)
                };
                let top_base = top_recipe.term_base(top_part);
                sum_term_out += top_base;
                *entry = TermEntry {
                    top_base,
                    ovr_base: ovr_recipe.term_base(ovr_part),
                    idf: idf(t),
                    row_start,
                    row_end,
                };
            }
            (sum_term_out, norm)
        };
        let sums = crate::parallel::map(&parts, workers, |part| {
            let part = part
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            part.map(fill)
        });
        drop(parts);
        if normalize {
            // Σ_t |ln θ_t¬c| = −Σ_t ln θ_t¬c, in closed form over the separable part plus the
            // corrections (which hold −δ_out here), the blocks' sums added in block order.
            let v = n_terms as f64;
            let mut sum_term_out = 0.0;
            let mut corrections_sum = vec![0.0; n_labels];
            for (block_sum, block_norm) in sums.iter().flatten() {
                sum_term_out += block_sum;
                for (sum, add) in corrections_sum.iter_mut().zip(block_norm) {
                    *sum += add;
                }
            }
            let norm: Vec<f64> = top_out_den
                .iter()
                .zip(&corrections_sum)
                .map(|(o, sum)| -(sum_term_out - v * o) + sum)
                .collect();
            divide_by_norm(&mut top, &mut corrections, &mut dense, &norm, concurrently);
        }
        Weights {
            top,
            ovr,
            terms,
            corrections,
            dense,
        }
    }

    /// The corrections of `term`.
    #[inline(always)]
    fn row(&self, term: &TermEntry) -> Row<'_> {
        if term.row_end == DENSE_ROW {
            let n_labels = self.top.bias.len();
            let start = term.row_start as usize * 2 * n_labels;
            let (top, ovr) = self.dense[start..start + 2 * n_labels].split_at(n_labels);
            Row::Dense { top, ovr }
        } else {
            Row::Sparse(&self.corrections[term.row_start as usize..term.row_end as usize])
        }
    }

    /// Starts loading the scoring entry of term `t` into the caches (see
    /// [`super::kernels::prefetch`]).
    #[inline]
    pub fn prefetch_term(&self, t: u32) {
        if let Some(term) = self.terms.get(t as usize) {
            super::kernels::prefetch(term);
        }
    }

    /// Starts loading the corrections of `term` into the caches: a sparse row's first and last
    /// (a row of a few corrections can straddle two cache lines), a dense row's first.
    #[inline]
    fn prefetch_row(&self, term: &TermEntry) {
        match self.row(term) {
            Row::Sparse(row) => {
                row.first().map(super::kernels::prefetch);
                row.last().map(super::kernels::prefetch);
            }
            Row::Dense { top, .. } => {
                top.first().map(super::kernels::prefetch);
            }
        };
    }

    /// The top-label weight of term `t` for label `c`.
    pub fn top_weight(&self, t: usize, c: usize) -> f64 {
        let term = &self.terms[t];
        let delta = match self.row(term) {
            Row::Sparse(row) => row
                .binary_search_by_key(&(c as u32), |e| e.label)
                .map_or(0.0, |i| row[i].top),
            Row::Dense { top, .. } => top[c],
        };
        self.top.weight(term.top_base, c, delta)
    }

    /// Scores a query vector that already carries its transforms (see [`Weights::query_vector`]).
    pub fn score(&self, query: &SparseVector) -> RawScores {
        super::kernels::run_wide(Scoring {
            weights: self,
            query,
        })
    }

    /// [`Weights::score`]'s work, inlined into each instruction set's compilation.
    #[inline(always)]
    fn score_inline(&self, query: &SparseVector) -> RawScores {
        let n_labels = self.top.bias.len();
        let mut top = vec![0.0; n_labels];
        let mut ovr = vec![0.0; n_labels];
        let (mut sum_q, mut sum_qb_top, mut sum_qb_ovr) = (0.0, 0.0, 0.0);
        for &(t, q) in query {
            let term = &self.terms[t as usize];
            sum_q += q;
            sum_qb_top += q * term.top_base;
            sum_qb_ovr += q * term.ovr_base;
            match self.row(term) {
                Row::Sparse(row) => {
                    for e in row {
                        top[e.label as usize] += q * e.top;
                        ovr[e.label as usize] += q * e.ovr;
                    }
                }
                // The same sums as the sparse form (adding q · 0 changes nothing), vectorised.
                Row::Dense {
                    top: row_top,
                    ovr: row_ovr,
                } => super::kernels::add_dense_row(&mut top, &mut ovr, q, row_top, row_ovr),
            }
        }
        self.top.finish(sum_q, sum_qb_top, &mut top);
        self.ovr.finish(sum_q, sum_qb_ovr, &mut ovr);
        RawScores { top, ovr }
    }

    /// Turns raw term frequencies into the scoring-side vector: sublinear TF, IDF, length norm.
    pub fn query_vector(&self, mut tf: SparseVector, transforms: Transforms) -> SparseVector {
        if transforms.sublinear_tf {
            super::features::sublinear_tf(&mut tf);
        }
        for (t, w) in tf.iter_mut() {
            let term = &self.terms[*t as usize];
            // Scoring reads the term's corrections next: start loading them now.
            self.prefetch_row(term);
            if transforms.idf {
                *w *= term.idf;
            }
        }
        if transforms.length_norm {
            super::features::normalize_l2(&mut tf);
        }
        tf
    }
}

/// [`Weights::score`] as a [`super::kernels::WideKernel`], so that its dense rows are added with
/// the widest vectors the processor has.
struct Scoring<'a> {
    weights: &'a Weights,
    query: &'a SparseVector,
}

impl super::kernels::WideKernel for Scoring<'_> {
    type Output = RawScores;
    fn labels(&self) -> usize {
        self.weights.top.bias.len()
    }
    #[inline(always)]
    fn run(self) -> RawScores {
        self.weights.score_inline(self.query)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts over 20 labels: "common" is counted under every label, "rare" under two, and each
    /// label has a word of its own.
    fn counts_with_common_and_rare_terms() -> Counts {
        let mut counts = Counts::default();
        let id = |counts: &mut Counts, word: &str| {
            let key = crate::text::fingerprint::word_key(word);
            counts.vocabulary.insert(key, crate::text::Term::Word(word))
        };
        let common = id(&mut counts, "common");
        let rare = id(&mut counts, "rare");
        for c in 0..20u32 {
            let own = id(&mut counts, &format!("own{c}"));
            let label = counts.label_index(&format!("label{c}"));
            let mut vector = vec![(common, 1.0 + f64::from(c) / 7.0), (own, 2.0)];
            if c % 10 == 3 {
                vector.push((rare, 0.5));
            }
            vector.sort_by_key(|&(t, _)| t);
            counts.add_document(&vector, &[label]);
        }
        counts
    }

    #[test]
    fn dense_and_sparse_rows_give_bit_identical_scores() {
        let counts = counts_with_common_and_rare_terms();
        for kind in [NbKind::Multinomial, NbKind::Complement, NbKind::OneVsRest] {
            let settings = ModelSettings {
                kind,
                ..ModelSettings::default()
            };
            let all_sparse = Weights::compute_with_dense_rows_from(&counts, &settings, usize::MAX);
            let all_dense = Weights::compute_with_dense_rows_from(&counts, &settings, 1);
            let default = Weights::compute(&counts, &settings);
            assert!(all_sparse.dense.is_empty());
            assert!(all_dense.corrections.is_empty());
            // 20 labels: "common" (20 corrections) is dense by default, "rare" (2) is not.
            assert_eq!(default.dense.len(), 2 * 20, "{kind:?}");
            let n_terms = counts.vocabulary.len() as u32;
            let query: SparseVector = (0..n_terms).map(|t| (t, 0.25 + f64::from(t))).collect();
            let reference = all_sparse.score(&query);
            assert_eq!(all_dense.score(&query), reference, "{kind:?}");
            assert_eq!(default.score(&query), reference, "{kind:?}");
            for t in 0..n_terms as usize {
                for c in 0..20 {
                    let w = all_sparse.top_weight(t, c);
                    assert_eq!(all_dense.top_weight(t, c).to_bits(), w.to_bits());
                }
            }
        }
    }

    #[test]
    fn dirichlet_tag_weights_match_the_direct_formula() {
        let counts = counts_with_common_and_rare_terms();
        let alpha = 0.3;
        let settings = ModelSettings {
            tag_alpha: alpha,
            tag_smoothing: Smoothing::Dirichlet,
            ..ModelSettings::default()
        };
        let n_terms = counts.vocabulary.len();
        let v = n_terms as f64;
        let total = counts.total_weight;
        // The pseudo-counts follow the term weights and add up to αV, as Lidstone's do.
        let pseudo = |t: usize| alpha * v * counts.term_weight[t] / total;
        let sum: f64 = (0..n_terms).map(pseudo).sum();
        assert!((sum - alpha * v).abs() < 1e-9, "{sum}");
        for dense_min_row in [usize::MAX, 1] {
            let weights = Weights::compute_with_dense_rows_from(&counts, &settings, dense_min_row);
            for t in 0..n_terms {
                // One unit of term t: the one-vs-rest score is the label's bias plus w(t, c).
                let scores = weights.score(&vec![(t as u32, 1.0)]);
                for c in 0..counts.labels.len() {
                    let n = counts.term_label_weight[t]
                        .as_slice()
                        .iter()
                        .find(|(l, _)| *l as usize == c)
                        .map_or(0.0, |(_, n)| *n);
                    let label = counts.label_weight[c];
                    let theta_in = (n + pseudo(t)) / (label + alpha * v);
                    let theta_out =
                        (counts.term_weight[t] - n + pseudo(t)) / (total - label + alpha * v);
                    let expected = theta_in.ln() - theta_out.ln();
                    let got = scores.ovr[c] - weights.ovr.bias[c];
                    assert!(
                        (got - expected).abs() < 1e-9,
                        "t={t} c={c}: {got} vs {expected}"
                    );
                }
            }
        }
    }

    #[test]
    fn counts_without_labels_give_weights_that_score_no_label() {
        let mut counts = Counts::default();
        for word in ["alpha", "beta"] {
            let key = crate::text::fingerprint::word_key(word);
            counts.vocabulary.insert(key, crate::text::Term::Word(word));
        }
        counts.grow_to_vocabulary();
        for concurrently in [false, true] {
            let weights =
                Weights::build(&counts, &ModelSettings::default(), usize::MAX, concurrently);
            let scores = weights.score(&vec![(0, 1.0), (1, 2.0)]);
            assert!(scores.top.is_empty() && scores.ovr.is_empty());
        }
    }

    #[test]
    fn concurrent_build_equals_the_sequential_one() {
        let mut counts = counts_with_common_and_rare_terms();
        // Enough terms for the second thread (on a machine with two cores or more).
        let label = counts.label_index("label0");
        let mut vector: SparseVector = (0..CONCURRENT_MIN_TERMS)
            .map(|i| {
                let word = format!("filler{i}");
                let key = crate::text::fingerprint::word_key(&word);
                let id = counts
                    .vocabulary
                    .insert(key, crate::text::Term::Word(&word));
                (id, 1.0 + (i % 5) as f64)
            })
            .collect();
        vector.sort_by_key(|&(t, _)| t);
        counts.add_document(&vector, &[label]);
        // A dense row and a multi-label sparse row in the second half of the terms as well.
        let late_common = crate::text::fingerprint::word_key("latecommon");
        let late_common = counts
            .vocabulary
            .insert(late_common, crate::text::Term::Word("latecommon"));
        let late_rare = crate::text::fingerprint::word_key("laterare");
        let late_rare = counts
            .vocabulary
            .insert(late_rare, crate::text::Term::Word("laterare"));
        for c in 0..20u32 {
            let mut vector = vec![(late_common, 1.0 + f64::from(c) / 3.0)];
            if c % 10 == 4 {
                vector.push((late_rare, 0.25));
            }
            counts.add_document(&vector, &[c]);
        }
        for kind in [NbKind::Multinomial, NbKind::Complement, NbKind::OneVsRest] {
            let settings = ModelSettings {
                kind,
                ..ModelSettings::default()
            };
            let sequential = Weights::compute(&counts, &settings);
            let concurrent = Weights::compute_concurrently(&counts, &settings);
            assert_eq!(concurrent.terms, sequential.terms, "{kind:?}");
            assert_eq!(concurrent.corrections, sequential.corrections, "{kind:?}");
            assert_eq!(concurrent.dense, sequential.dense, "{kind:?}");
            for (a, b) in [
                (&concurrent.top, &sequential.top),
                (&concurrent.ovr, &sequential.ovr),
            ] {
                assert_eq!(a.bias, b.bias);
                assert_eq!(a.label_base, b.label_base);
                assert_eq!(a.label_scale, b.label_scale);
            }
        }
    }
}
