//! From text to a sparse document vector: term frequencies and the per-document transforms
//! (sublinear TF, length normalisation) of Rennie et al. (2003).

use std::cell::Cell;

use serde::{Deserialize, Serialize};

use super::vocabulary::Vocabulary;
use crate::text::{Analyzer, TermKey, TextKind};

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

/// Counts the known terms of `text`, a document or a part of one (see [`TextKind`]; unknown terms
/// are skipped), into a sorted sparse vector of raw term frequencies, and returns it with the
/// number of known terms (repeats counted: the sum of the frequencies).
///
/// The terms' fingerprints are collected first and looked up afterwards, in a tight loop of
/// independent lookups: the vocabulary table is far larger than the CPU caches, and a loop with
/// nothing but lookups lets the CPU wait for several of its cache misses at once. `will_read` is
/// called with each looked-up term's id as soon as it is found, 0 for an unknown term (no branch on
/// which: that is as unpredictable as the text): classification starts loading the term's weights
/// there, so that they arrive while the ids are being sorted.
pub fn term_frequencies(
    analyzer: &Analyzer,
    vocabulary: &Vocabulary,
    text: &str,
    kind: TextKind,
    mut will_read: impl FnMut(u32),
) -> (SparseVector, usize) {
    let (mut keys, mut ids) = LOOKUP_BUFFERS.with(Cell::take);
    keys.clear();
    analyzer.for_each_key(text, kind, |key| {
        // The lookups come after the whole text is analysed: start loading their slots now.
        vocabulary.prefetch(key);
        keys.push(key);
    });
    // Every id is written and only known ones are kept (the count advances by 0 or 1), so the
    // loop has no branch on whether a term is known, which no predictor can guess.
    ids.clear();
    ids.resize(keys.len(), 0);
    let mut known = 0;
    for &key in &keys {
        let id = vocabulary.get(key);
        let found = id.unwrap_or_default();
        will_read(found);
        ids[known] = found;
        known += usize::from(id.is_some());
    }
    ids.truncate(known);
    let counts = sparse_counts(&mut ids);
    if keys.capacity() <= MAX_KEPT_TERMS {
        LOOKUP_BUFFERS.with(|buffers| buffers.set((keys, ids)));
    }
    (counts, known)
}

thread_local! {
    /// The fingerprint and id buffers of [`term_frequencies`], kept between calls so that a
    /// thread's later texts allocate only their result. (A nested call starts with empty ones.)
    static LOOKUP_BUFFERS: Cell<(Vec<TermKey>, Vec<u32>)> = const { Cell::new((Vec::new(), Vec::new())) };
}

/// Lookup buffers that grew past this many terms (a text of about 100 KB) are freed rather than
/// kept, so that an idle thread holds at most about 200 KB of them.
const MAX_KEPT_TERMS: usize = 1 << 14;

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

/// Term frequencies below this are turned into `ln(1 + tf)` by a table lookup.
const SUBLINEAR_TABLE_SIZE: usize = 64;

/// `ln(1 + n)` for `n = 0 .. SUBLINEAR_TABLE_SIZE`, computed by `f64::ln_1p` itself, so a lookup
/// gives the same bits as the call.
static SUBLINEAR_TABLE: std::sync::LazyLock<[f64; SUBLINEAR_TABLE_SIZE]> =
    std::sync::LazyLock::new(|| std::array::from_fn(|n| (n as f64).ln_1p()));

/// Replaces every weight `w` by `ln(1 + w)` (sublinear TF). Term frequencies are small whole
/// numbers nearly always; those come from a table (a logarithm costs more than the rest of a
/// term's scoring), anything else from `f64::ln_1p`. The result is the same either way.
pub fn sublinear_tf(vector: &mut SparseVector) {
    let table: &[f64; SUBLINEAR_TABLE_SIZE] = &SUBLINEAR_TABLE;
    for (_, w) in vector.iter_mut() {
        let n = *w as usize;
        *w = if n as f64 == *w && n < SUBLINEAR_TABLE_SIZE {
            table[n]
        } else {
            w.ln_1p()
        };
    }
}

/// Applies the sublinear-TF and length-normalisation transforms in place.
pub fn apply_document_transforms(vector: &mut SparseVector, transforms: Transforms) {
    if transforms.sublinear_tf {
        sublinear_tf(vector);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sublinear_tf_table_gives_the_bits_of_ln_1p() {
        let weights = [
            0.0, 1.0, 2.0, 3.0, 17.0, 63.0, 64.0, 65.0, 1000.0, 0.5, 2.25, 1e-300,
        ];
        let mut vector: SparseVector = weights.iter().map(|&w| (0, w)).collect();
        sublinear_tf(&mut vector);
        for (&w, &(_, got)) in weights.iter().zip(&vector) {
            assert_eq!(got.to_bits(), w.ln_1p().to_bits(), "tf {w}");
        }
    }

    #[test]
    fn sparse_counts_sorts_and_counts_repeats() {
        let mut ids = vec![7, 3, 7, 1, 3, 7];
        assert_eq!(sparse_counts(&mut ids), vec![(1, 1.0), (3, 2.0), (7, 3.0)]);
        assert!(sparse_counts(&mut []).is_empty());
    }
}
