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

/// A sparse document vector: `(term id, weight)` pairs, ids distinct. Training builds them sorted by
/// term id (its counting then writes in ascending order); classification keeps the order in which
/// the terms first occur (see [`sparse_counts`]).
pub type SparseVector = Vec<(u32, f64)>;

/// Counts the known terms of `text`, a document or a part of one (see [`TextKind`]; unknown terms
/// are skipped), into a sparse vector of raw term frequencies (in first-occurrence order), and
/// returns it with the number of known terms (repeats counted: the sum of the frequencies).
///
/// The terms' fingerprints are collected first and looked up afterwards, in a tight loop of
/// independent lookups: the vocabulary table is far larger than the CPU caches, and a loop with
/// nothing but lookups lets the CPU wait for several of its cache misses at once. `will_read` is
/// called with each looked-up term's id as soon as it is found, 0 for an unknown term (no branch on
/// which: that is as unpredictable as the text): classification starts loading the term's weights
/// there, so that they arrive while the repeats are being counted.
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
    let counts = sparse_counts(&ids);
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

/// Lookup buffers that grew past this many terms (a text of about 100 KB), and counting tables past
/// this many slots, are freed rather than kept, so that an idle thread holds at most about 300 KB of
/// them.
const MAX_KEPT_TERMS: usize = 1 << 14;

/// Turns term ids (in any order, repeats allowed) into a sparse vector of raw term frequencies,
/// ids distinct and in the order of their first occurrence.
///
/// Repeats are found with a small per-thread hash table of twice as many slots as there are ids
/// (cleared per call: a few wide stores), not by sorting: a document's hundred-odd ids cost about
/// one probe each instead of a sort's several comparisons, and scoring does not need them in order
/// (each term's weights are prefetched as soon as its id is known).
pub fn sparse_counts(ids: &[u32]) -> SparseVector {
    // A slot holds `id << 32 | (position in the output + 1)`, 0 when empty. Positions plus one
    // fit in 32 bits for every text the engine takes (more would need over 4 billion terms, more
    // than 8 GB of text).
    let Ok(len) = u32::try_from(ids.len()) else {
        return sorted_counts(ids);
    };
    let size = (2 * len as usize).next_power_of_two().max(16);
    let mask = size - 1;
    let shift = 64 - size.trailing_zeros();
    let mut table = DEDUP_TABLE.with(Cell::take);
    table.clear();
    table.resize(size, 0);
    let mut out: SparseVector = Vec::with_capacity(ids.len());
    for &id in ids {
        let mut slot = (u64::from(id).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> shift) as usize;
        // Bounded: the table is at most half full, so an empty slot comes within `size` steps.
        for _ in 0..size {
            let held = table[slot];
            if held == 0 {
                out.push((id, 1.0));
                table[slot] = u64::from(id) << 32 | out.len() as u64;
                break;
            }
            if held >> 32 == u64::from(id) {
                out[(held as u32 - 1) as usize].1 += 1.0;
                break;
            }
            slot = (slot + 1) & mask;
        }
    }
    if table.capacity() <= MAX_KEPT_TERMS {
        DEDUP_TABLE.with(|kept| kept.set(table));
    }
    out
}

thread_local! {
    /// The hash table of [`sparse_counts`], kept between calls (a nested call starts with an
    /// empty one).
    static DEDUP_TABLE: Cell<Vec<u64>> = const { Cell::new(Vec::new()) };
}

/// [`sparse_counts`] by sorting: ids ascending. The reference its tests compare against, and the
/// path for a list of ids too long for 32-bit positions.
pub fn sorted_counts(ids: &[u32]) -> SparseVector {
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    let mut out: SparseVector = Vec::new();
    for id in sorted {
        match out.last_mut() {
            Some((last, n)) if *last == id => *n += 1.0,
            _ => out.push((id, 1.0)),
        }
    }
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
    for (_, w) in vector.iter_mut() {
        let n = *w as u32;
        *w = if f64::from(n) == *w {
            sublinear_count(n)
        } else {
            w.ln_1p()
        };
    }
}

/// `ln(1 + n)` of a whole term frequency: from the table below [`SUBLINEAR_TABLE_SIZE`], else from
/// `f64::ln_1p` (the same bits either way).
#[inline]
fn sublinear_count(n: u32) -> f64 {
    let table: &[f64; SUBLINEAR_TABLE_SIZE] = &SUBLINEAR_TABLE;
    match table.get(n as usize) {
        Some(&w) => w,
        None => f64::from(n).ln_1p(),
    }
}

/// The training weights of a document's `(term, frequency)` pairs: [`apply_document_transforms`]
/// of the frequencies as `f64`, to the same bits, without writing them out first.
pub fn transformed_counts(
    counts: impl Iterator<Item = (u32, u32)>,
    transforms: Transforms,
) -> SparseVector {
    let mut vector: SparseVector = if transforms.sublinear_tf {
        counts.map(|(term, n)| (term, sublinear_count(n))).collect()
    } else {
        counts.map(|(term, n)| (term, f64::from(n))).collect()
    };
    if transforms.length_norm {
        normalize_l2(&mut vector);
    }
    vector
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
    fn transformed_counts_are_the_transforms_of_the_counts_to_the_bit() {
        let counts = [(4, 1), (9, 2), (1, 63), (7, 64), (3, 1000), (8, 1)];
        for sublinear_tf in [false, true] {
            for length_norm in [false, true] {
                let transforms = Transforms {
                    sublinear_tf,
                    length_norm,
                    idf: false,
                };
                let mut expected: SparseVector =
                    counts.iter().map(|&(t, n)| (t, f64::from(n))).collect();
                apply_document_transforms(&mut expected, transforms);
                let got = transformed_counts(counts.iter().copied(), transforms);
                let bits = |v: &SparseVector| -> Vec<(u32, u64)> {
                    v.iter().map(|&(t, w)| (t, w.to_bits())).collect()
                };
                assert_eq!(bits(&got), bits(&expected), "{transforms:?}");
            }
        }
    }

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
    fn sparse_counts_counts_repeats_in_first_occurrence_order() {
        let ids = vec![7, 3, 7, 1, 3, 7];
        assert_eq!(sparse_counts(&ids), vec![(7, 3.0), (3, 2.0), (1, 1.0)]);
        assert_eq!(sorted_counts(&ids), vec![(1, 1.0), (3, 2.0), (7, 3.0)]);
        assert!(sparse_counts(&[]).is_empty());
        assert_eq!(
            sparse_counts(&[u32::MAX, 0, u32::MAX]),
            vec![(u32::MAX, 2.0), (0, 1.0)]
        );
    }

    #[test]
    fn sparse_counts_agree_with_sorting_on_long_lists_with_colliding_ids() {
        // Ids that share their low bits and ids drawn from a small range (many repeats), in lists
        // long enough to wrap the probe sequence around the table's end; one call after another,
        // so that each starts from the previous call's table.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for len in [1usize, 2, 15, 16, 17, 100, 1000, 5000] {
            for spread in [3u32, 64, 1 << 20] {
                let ids: Vec<u32> = (0..len)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        ((state >> 11) as u32 % spread) << 12
                    })
                    .collect();
                let mut hashed = sparse_counts(&ids);
                let first_seen: Vec<u32> = hashed.iter().map(|&(t, _)| t).collect();
                let mut expected_order = Vec::new();
                for &id in &ids {
                    if !expected_order.contains(&id) {
                        expected_order.push(id);
                    }
                }
                assert_eq!(first_seen, expected_order, "len {len} spread {spread}");
                hashed.sort_by_key(|&(t, _)| t);
                assert_eq!(hashed, sorted_counts(&ids), "len {len} spread {spread}");
            }
        }
    }
}
