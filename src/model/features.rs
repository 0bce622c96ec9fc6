//! From text to a sparse document vector: term frequencies and the per-document transforms
//! (sublinear TF, length normalisation) of Rennie et al. (2003).

use serde::{Deserialize, Serialize};

use super::vocabulary::Vocabulary;
use crate::text::{Analyzer, TermKey};

/// Per-document transforms applied to term frequencies, on both the training and the scoring side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transforms {
    /// Use `ln(1 + tf)` instead of the raw count.
    pub sublinear_tf: bool,
    /// Scale each document vector to unit Euclidean length.
    pub length_norm: bool,
    /// Multiply scoring-side term weights by `ln(N / df)`. (IDF is applied when scoring, not to the
    /// stored counts, so that counts stay additive and incremental training stays exact.)
    pub idf: bool,
}

impl Transforms {
    /// No transform at all: raw counts, as in textbook multinomial naive Bayes.
    pub const NONE: Transforms = Transforms {
        sublinear_tf: false,
        length_norm: false,
        idf: false,
    };
}

/// A sparse document vector: `(term id, weight)` pairs sorted by term id, ids distinct.
pub type SparseVector = Vec<(u32, f64)>;

/// Counts the known terms of `text` (unknown terms are skipped) into a sorted sparse vector of
/// raw term frequencies.
///
/// The terms' fingerprints are collected first and looked up afterwards, in a tight loop of
/// independent lookups: the vocabulary table is far larger than the CPU caches, and a loop with
/// nothing but lookups lets the CPU wait for several of its cache misses at once.
pub fn term_frequencies(analyzer: &Analyzer, vocabulary: &Vocabulary, text: &str) -> SparseVector {
    let mut keys: Vec<TermKey> = Vec::with_capacity(text.len() / 6 + 1);
    analyzer.for_each_term_key(text, |key, _| keys.push(key));
    // Every id is written and only known ones are kept (the count advances by 0 or 1), so the
    // loop has no branch on whether a term is known, which no predictor can guess.
    let mut ids: Vec<u32> = vec![0; keys.len()];
    let mut known = 0;
    for &key in &keys {
        let id = vocabulary.get(key);
        ids[known] = id.unwrap_or_default();
        known += usize::from(id.is_some());
    }
    ids.truncate(known);
    sparse_counts(&mut ids)
}

/// Turns term ids (in any order, repeats allowed) into a sorted sparse vector of raw term
/// frequencies; `ids` is left sorted.
pub fn sparse_counts(ids: &mut [u32]) -> SparseVector {
    ids.sort_unstable();
    // Without a branch on whether an id repeats the previous one: each id moves the write
    // position by 0 (a repeat) or 1 (a new id) and adds one to the count there.
    let mut out: SparseVector = vec![(0, 0.0); ids.len()];
    let mut distinct = 0;
    for (i, &id) in ids.iter().enumerate() {
        distinct += usize::from(i == 0 || ids[i - 1] != id);
        let entry = &mut out[distinct - 1];
        entry.0 = id;
        entry.1 += 1.0;
    }
    out.truncate(distinct);
    out
}

/// Applies the sublinear-TF and length-normalisation transforms in place.
pub fn apply_document_transforms(vector: &mut SparseVector, transforms: Transforms) {
    if transforms.sublinear_tf {
        for (_, w) in vector.iter_mut() {
            *w = w.ln_1p();
        }
    }
    if transforms.length_norm {
        normalize_l2(vector);
    }
}

/// Scales a vector to unit Euclidean length (no-op for an empty vector).
pub fn normalize_l2(vector: &mut SparseVector) {
    let norm = vector.iter().map(|(_, w)| w * w).sum::<f64>().sqrt();
    if norm > 0.0 {
        for (_, w) in vector.iter_mut() {
            *w /= norm;
        }
    }
}
