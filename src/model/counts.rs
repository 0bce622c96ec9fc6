//! The sufficient statistics of naive Bayes: additive counts.
//!
//! Everything a model learns from its examples is a sum over documents, so training on A and then
//! on B adds exactly the same numbers, in the same order, as training on A∪B: incremental training is
//! exact. Counts are kept sparse per term (most terms occur under few labels).

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::features::SparseVector;
use super::vocabulary::Vocabulary;

/// Additive training statistics over a vocabulary and a label set.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    /// Label names, in the order they were first seen.
    pub labels: Vec<String>,
    /// Terms, in the order they were first seen.
    pub vocabulary: Vocabulary,
    /// Documents seen.
    pub documents: f64,
    /// Documents per label (a multi-label document counts once for each of its labels).
    pub label_documents: Vec<f64>,
    /// Sum of all term weights per label.
    pub label_weight: Vec<f64>,
    /// Per term: the documents containing it.
    pub document_frequency: Vec<f64>,
    /// Per term: the sum of its weights over all documents (each document once).
    pub term_weight: Vec<f64>,
    /// Per term: `(label index, sum of the term's weights in documents with that label)`, sorted by
    /// label index.
    pub term_label_weight: Vec<LabelRow>,
    /// Sum of all term weights over all documents (each document once).
    pub total_weight: f64,
}

/// The serialised form of [`Counts`]: the vocabulary as a term list, the rest as is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CountsFile {
    labels: Vec<String>,
    documents: f64,
    label_documents: Vec<f64>,
    label_weight: Vec<f64>,
    total_weight: f64,
    terms: Vec<TermRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TermRecord {
    term: String,
    df: f64,
    weight: f64,
    by_label: Vec<(u32, f64)>,
}

/// [`Counts`] serialised exactly as its [`CountsFile`] would be, but borrowed: writing a model file
/// through it copies nothing (a copy of the counts in file form costs as much memory again as the
/// counts themselves, at the moment a serving process already holds two models).
pub struct CountsFileView<'a>(&'a Counts);

/// One term of a [`CountsFileView`], serialised as a [`TermRecord`].
#[derive(Serialize)]
struct TermRecordView<'a> {
    term: &'a str,
    df: f64,
    weight: f64,
    by_label: &'a [(u32, f64)],
}

/// The terms of a [`CountsFileView`], serialised as the `terms` list of a [`CountsFile`].
struct TermsView<'a>(&'a Counts);

impl Serialize for TermsView<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let counts = self.0;
        let n = counts.vocabulary.len();
        let mut seq = serializer.serialize_seq(Some(n))?;
        for t in 0..n {
            seq.serialize_element(&TermRecordView {
                term: counts.vocabulary.term(t as u32),
                df: counts.document_frequency[t],
                weight: counts.term_weight[t],
                by_label: counts.term_label_weight[t].as_slice(),
            })?;
        }
        seq.end()
    }
}

impl Serialize for CountsFileView<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let counts = self.0;
        // The fields of `CountsFile`, in its order.
        let mut file = serializer.serialize_struct("CountsFile", 6)?;
        file.serialize_field("labels", &counts.labels)?;
        file.serialize_field("documents", &counts.documents)?;
        file.serialize_field("label_documents", &counts.label_documents)?;
        file.serialize_field("label_weight", &counts.label_weight)?;
        file.serialize_field("total_weight", &counts.total_weight)?;
        file.serialize_field("terms", &TermsView(counts))?;
        file.end()
    }
}

impl Counts {
    /// The index of `label`, adding it if new.
    pub fn label_index(&mut self, label: &str) -> u32 {
        if let Some(i) = self.labels.iter().position(|l| l == label) {
            return i as u32;
        }
        self.labels.push(label.to_owned());
        self.label_documents.push(0.0);
        self.label_weight.push(0.0);
        (self.labels.len() - 1) as u32
    }

    /// Makes room for terms the vocabulary gained since the last call.
    pub fn grow_to_vocabulary(&mut self) {
        let n = self.vocabulary.len();
        // Exactly: a model built on a serving model's counts (a copy, no spare capacity) would
        // otherwise double three vocabulary-sized arrays to add a few terms.
        let added = n.saturating_sub(self.document_frequency.len());
        self.document_frequency.reserve_exact(added);
        self.term_weight.reserve_exact(added);
        self.term_label_weight.reserve_exact(added);
        self.document_frequency.resize(n, 0.0);
        self.term_weight.resize(n, 0.0);
        self.term_label_weight.resize(n, LabelRow::default());
    }

    /// Gives back the spare capacity of the per-term arrays and the vocabulary: they double as
    /// terms are added, and a model that serves keeps them for its lifetime (a serving process
    /// holds two models while it trains, so the slack would count twice).
    pub fn shrink_to_fit(&mut self) {
        self.vocabulary.shrink_to_fit();
        self.document_frequency.shrink_to_fit();
        self.term_weight.shrink_to_fit();
        self.term_label_weight.shrink_to_fit();
    }

    /// Adds one document (already transformed) with its label indices.
    pub fn add_document(&mut self, vector: &SparseVector, labels: &[u32]) {
        self.accumulate(vector, labels, 1.0);
    }

    /// Adds documents (already transformed) with their label indices: the same counts, to the last
    /// bit, as [`Counts::add_document`] called on each in turn.
    ///
    /// One document at a time, every term costs scattered reads and writes in four per-term arrays
    /// far larger than the CPU caches. Here the documents' pairs are first regrouped by term (a
    /// counting sort that keeps document order), then each term's sums are made in one go, in
    /// document order, so every sum adds the same numbers in the same order as before.
    pub fn add_documents(&mut self, documents: &[(&SparseVector, &[u32])]) {
        self.add_documents_on_two_threads_from(documents, CONCURRENT_MIN_PAIRS);
    }

    /// [`Counts::add_documents`], on two threads from `min_pairs` (document, term) pairs on.
    ///
    /// On two threads, each regroups the pairs of one half of the documents (the earlier half's
    /// pairs of a term going before the later half's, so each term's pairs stay in document
    /// order), then each sums one of two ranges of terms with about as much work.
    fn add_documents_on_two_threads_from(
        &mut self,
        documents: &[(&SparseVector, &[u32])],
        min_pairs: u32,
    ) {
        let n_terms = self.vocabulary.len();
        let listed: usize = documents.iter().map(|(vector, _)| vector.len()).sum();
        let concurrently = crate::parallel::cores() >= 2 && listed >= min_pairs as usize;
        let mut totals = DocumentTotals {
            documents: self.documents,
            total_weight: self.total_weight,
            label_documents: std::mem::take(&mut self.label_documents),
            label_weight: std::mem::take(&mut self.label_weight),
        };
        let cut = if concurrently {
            pairs_cut(documents, listed / 2)
        } else {
            documents.len()
        };
        let (earlier, later) = documents.split_at(cut);
        // Each half's pair count per term, the later half's on a second thread while this one
        // also grows the per-term arrays (vocabulary-sized, so mostly fresh memory the kernel
        // has to map) and adds the per-document totals (on from the current ones, in document
        // order as always).
        let (earlier_counts, later_counts) = crate::parallel::both(
            concurrently,
            || {
                self.grow_to_vocabulary();
                totals.add(documents);
                pair_counts(earlier, n_terms)
            },
            || pair_counts(later, n_terms),
        );
        self.documents = totals.documents;
        self.total_weight = totals.total_weight;
        self.label_documents = totals.label_documents;
        self.label_weight = totals.label_weight;
        // `first[t]..first[t + 1]` will hold term t's pairs, the earlier half's first.
        let mut first = vec![0u32; n_terms + 1];
        for t in 0..n_terms {
            first[t + 1] = first[t] + earlier_counts[t] + later_counts[t];
        }
        let pairs = first[n_terms];
        // Two ranges of terms with about as much work each, summed on two threads when it pays.
        let split = if concurrently {
            split_by_work(&first, pairs)
        } else {
            n_terms
        };
        // Each range's pairs, in a region of its own; a pair's place in it.
        let base = |t: usize| {
            if t < split {
                first[t]
            } else {
                first[t] - first[split]
            }
        };
        let mut earlier_next: Vec<u32> = (0..n_terms).map(base).collect();
        let mut later_next: Vec<u32> = earlier_next
            .iter()
            .zip(&earlier_counts)
            .map(|(start, count)| start + count)
            .collect();
        drop((earlier_counts, later_counts));
        let region = |len: u32| -> Vec<PairSlot> {
            std::iter::repeat_with(PairSlot::default)
                .take(len as usize)
                .collect()
        };
        let (low_pairs, high_pairs) = crate::parallel::both(
            concurrently,
            || region(first[split]),
            || region(pairs - first[split]),
        );
        let regions = [low_pairs.as_slice(), high_pairs.as_slice()];
        crate::parallel::both(
            concurrently,
            || regroup(earlier, 0, split, &mut earlier_next, regions),
            || regroup(later, cut, split, &mut later_next, regions),
        );
        let labels = FlatLabels::new(documents);
        let (df_low, df_high) = self.document_frequency.split_at_mut(split);
        let (weight_low, weight_high) = self.term_weight.split_at_mut(split);
        let (rows_low, rows_high) = self.term_label_weight.split_at_mut(split);
        let n_labels = self.labels.len();
        let low = TermRange {
            n_labels,
            first: &first[..=split],
            pairs: &low_pairs,
            document_frequency: df_low,
            term_weight: weight_low,
            term_label_weight: rows_low,
        };
        let high = TermRange {
            n_labels,
            first: &first[split..],
            pairs: &high_pairs,
            document_frequency: df_high,
            term_weight: weight_high,
            term_label_weight: rows_high,
        };
        crate::parallel::both(concurrently, || low.add(&labels), || high.add(&labels));
    }

    /// Takes back a document added before (used to build cross-validation fold models).
    pub fn subtract_document(&mut self, vector: &SparseVector, labels: &[u32]) {
        self.accumulate(vector, labels, -1.0);
    }

    fn accumulate(&mut self, vector: &SparseVector, labels: &[u32], sign: f64) {
        self.grow_to_vocabulary();
        self.documents += sign;
        let mut weight_sum = 0.0;
        for &(term, w) in vector {
            let t = term as usize;
            let w = sign * w;
            self.document_frequency[t] += sign;
            self.term_weight[t] += w;
            weight_sum += w;
            for &label in labels {
                self.term_label_weight[t].add(label, w);
            }
        }
        self.total_weight += weight_sum;
        for &label in labels {
            self.label_documents[label as usize] += sign;
            self.label_weight[label as usize] += weight_sum;
        }
    }

    /// Forgets a label and everything counted under it. Documents that carried it stay in the
    /// label-independent totals: they become examples of "none of the remaining labels".
    pub fn remove_label(&mut self, label: &str) -> bool {
        let Some(index) = self.labels.iter().position(|l| l == label) else {
            return false;
        };
        let index = index as u32;
        self.labels.remove(index as usize);
        self.label_documents.remove(index as usize);
        self.label_weight.remove(index as usize);
        for row in &mut self.term_label_weight {
            row.remove_label(index);
        }
        true
    }

    /// The serialisable form, borrowed (the same serialisation as [`Counts::to_file`]).
    pub fn file_view(&self) -> CountsFileView<'_> {
        CountsFileView(self)
    }

    /// The serialisable form.
    pub fn to_file(&self) -> CountsFile {
        CountsFile {
            labels: self.labels.clone(),
            documents: self.documents,
            label_documents: self.label_documents.clone(),
            label_weight: self.label_weight.clone(),
            total_weight: self.total_weight,
            terms: (0..self.vocabulary.len())
                .map(|t| TermRecord {
                    term: self.vocabulary.term(t as u32).to_owned(),
                    df: self.document_frequency[t],
                    weight: self.term_weight[t],
                    by_label: self.term_label_weight[t].as_slice().to_vec(),
                })
                .collect(),
        }
    }

    /// Rebuilds counts from their serialised form, checking that the pieces fit together.
    pub fn from_file(file: CountsFile) -> Result<Self, String> {
        let n_labels = file.labels.len();
        if file.label_documents.len() != n_labels || file.label_weight.len() != n_labels {
            return Err("per-label count arrays do not match the label list".into());
        }
        let n_terms = file.terms.len();
        let text_bytes = file.terms.iter().map(|r| r.term.len()).sum();
        let mut counts = Counts {
            document_frequency: Vec::with_capacity(n_terms),
            term_weight: Vec::with_capacity(n_terms),
            term_label_weight: Vec::with_capacity(n_terms),
            labels: file.labels,
            documents: file.documents,
            label_documents: file.label_documents,
            label_weight: file.label_weight,
            total_weight: file.total_weight,
            ..Counts::default()
        };
        counts.vocabulary.reserve_exact(n_terms, text_bytes);
        for record in file.terms {
            if record.by_label.iter().any(|(l, _)| *l as usize >= n_labels) {
                return Err(format!(
                    "term {:?} refers to a label that does not exist",
                    record.term
                ));
            }
            counts
                .vocabulary
                .push_stored(&record.term)
                .map_err(|e| e.to_string())?;
            counts.document_frequency.push(record.df);
            counts.term_weight.push(record.weight);
            counts
                .term_label_weight
                .push(LabelRow::from_entries(record.by_label));
        }
        Ok(counts)
    }
}

/// One term's sums per label: `(label index, sum of the term's weights in documents with that
/// label)`, sorted by label index. Most terms are counted under one label only (a 90-label
/// Reuters model has 290k terms), so a single entry is kept inline instead of in an allocation of
/// its own.
#[derive(Clone, Default, PartialEq)]
pub enum LabelRow {
    /// Not counted under any label.
    #[default]
    Empty,
    /// Counted under one label.
    One([(u32, f64); 1]),
    /// Counted under several labels (or stored so in a model file).
    Many(Vec<(u32, f64)>),
}

impl LabelRow {
    /// A row with these entries (as written by [`LabelRow::as_slice`]).
    pub fn from_entries(entries: Vec<(u32, f64)>) -> Self {
        match entries.as_slice() {
            [] => LabelRow::Empty,
            [entry] => LabelRow::One([*entry]),
            _ => LabelRow::Many(entries),
        }
    }

    /// The entries, sorted by label index.
    pub fn as_slice(&self) -> &[(u32, f64)] {
        match self {
            LabelRow::Empty => &[],
            LabelRow::One(entry) => entry,
            LabelRow::Many(entries) => entries,
        }
    }

    /// Adds `w` to the sum of `label`, creating its entry (with the sum `w`) if needed.
    pub fn add(&mut self, label: u32, w: f64) {
        match self {
            LabelRow::Empty => *self = LabelRow::One([(label, w)]),
            LabelRow::One([(own, sum)]) if *own == label => *sum += w,
            LabelRow::One([entry]) => {
                let (entry, new) = (*entry, (label, w));
                *self = LabelRow::Many(if entry.0 < label {
                    vec![entry, new]
                } else {
                    vec![new, entry]
                });
            }
            LabelRow::Many(entries) => add_sparse(entries, label, w),
        }
    }

    /// Drops the entry of label `index` and moves the later labels' indices down by one.
    fn remove_label(&mut self, index: u32) {
        let mut entries = std::mem::take(self).as_slice().to_vec();
        entries.retain(|(l, _)| *l != index);
        for (l, _) in entries.iter_mut() {
            if *l > index {
                *l -= 1;
            }
        }
        *self = LabelRow::from_entries(entries);
    }
}

impl std::fmt::Debug for LabelRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

/// Every document's labels in one array, so that looking them up for each of a document's terms
/// reads a small contiguous table instead of one allocation per document.
struct FlatLabels {
    labels: Vec<u32>,
    /// End of each document's labels in `labels`.
    ends: Vec<u32>,
}

impl FlatLabels {
    fn new(documents: &[(&SparseVector, &[u32])]) -> Self {
        let mut flat = FlatLabels {
            labels: Vec::new(),
            ends: Vec::with_capacity(documents.len()),
        };
        for (_, labels) in documents {
            flat.labels.extend_from_slice(labels);
            flat.ends.push(flat.labels.len() as u32);
        }
        flat
    }

    fn of(&self, d: usize) -> &[u32] {
        let start = d.checked_sub(1).map_or(0, |p| self.ends[p] as usize);
        &self.labels[start..self.ends[d] as usize]
    }
}

/// The totals [`Counts::add_documents`] keeps per document and per label.
struct DocumentTotals {
    documents: f64,
    total_weight: f64,
    label_documents: Vec<f64>,
    label_weight: Vec<f64>,
}

impl DocumentTotals {
    /// Adds the documents, in order.
    fn add(&mut self, documents: &[(&SparseVector, &[u32])]) {
        for (vector, labels) in documents {
            self.documents += 1.0;
            let weight_sum = vector.iter().fold(0.0, |sum, (_, w)| sum + w);
            self.total_weight += weight_sum;
            for &label in labels.iter() {
                self.label_documents[label as usize] += 1.0;
                self.label_weight[label as usize] += weight_sum;
            }
        }
    }
}

/// How many of the documents' pairs each term has.
fn pair_counts(documents: &[(&SparseVector, &[u32])], n_terms: usize) -> Vec<u32> {
    let mut counts = vec![0u32; n_terms];
    for (vector, _) in documents {
        for &(term, _) in vector.iter() {
            counts[term as usize] += 1;
        }
    }
    counts
}

/// The number of leading documents that hold about `pairs` (document, term) pairs.
fn pairs_cut(documents: &[(&SparseVector, &[u32])], pairs: usize) -> usize {
    let mut seen = 0;
    documents
        .iter()
        .position(|(vector, _)| {
            seen += vector.len();
            seen > pairs
        })
        .unwrap_or(documents.len())
}

/// One (document, weight) pair in its term's place, written by whichever thread regroups its
/// document (the two threads write disjoint places of the same regions, so with atomic stores;
/// relaxed ones, plain stores on common processors: the threads are joined before any is read).
#[derive(Default)]
struct PairSlot {
    document: AtomicU64,
    weight: AtomicU64,
}

/// Writes the pairs of `documents` (the first of which is document `offset` of the batch) into
/// their terms' places: term `t`'s next place is `next[t]` in the region of its range (the first
/// for terms below `split`, else the second).
fn regroup(
    documents: &[(&SparseVector, &[u32])],
    offset: usize,
    split: usize,
    next: &mut [u32],
    regions: [&[PairSlot]; 2],
) {
    for (i, (vector, _)) in documents.iter().enumerate() {
        let document = (offset + i) as u64;
        for &(term, w) in vector.iter() {
            let t = term as usize;
            // The region is picked by index, not by a branch: a document lists its terms in no
            // particular order, so the branch would be mispredicted half the time.
            let region = regions[usize::from(t >= split)];
            let place = &mut next[t];
            let slot = &region[*place as usize];
            slot.document.store(document, Ordering::Relaxed);
            slot.weight.store(w.to_bits(), Ordering::Relaxed);
            *place += 1;
        }
    }
}

/// The first term of the upper of two term ranges with about as much work each for
/// [`TermRange::add`], from where each term's pairs start (`first`, one more entry than terms) and
/// how many pairs there are. Besides its pairs, every term costs the rebuilding of its row, about
/// two thirds of a pair (measured on ModApte-90); most terms are rare ones with late ids, so
/// halving the pairs alone would leave the upper range with most of the terms and the longer
/// part of the work.
fn split_by_work(first: &[u32], pairs: u32) -> usize {
    let n_terms = first.len() - 1;
    let half = (3 * pairs as usize + 2 * n_terms) / 2;
    first
        .iter()
        .enumerate()
        .position(|(t, &f)| 3 * f as usize + 2 * t >= half)
        .unwrap_or(n_terms)
}

/// Below this many (document, term) pairs, [`Counts::add_documents`] stays on one thread.
const CONCURRENT_MIN_PAIRS: u32 = 200_000;

/// The per-term counts of a range of consecutive terms.
struct TermRange<'a> {
    /// How many labels there are (every label index is below it).
    n_labels: usize,
    /// Where each term's pairs start, counting over all terms (one more entry than terms).
    first: &'a [u32],
    /// The range's pairs, regrouped by term (from `first[0]` on).
    pairs: &'a [PairSlot],
    document_frequency: &'a mut [f64],
    term_weight: &'a mut [f64],
    term_label_weight: &'a mut [LabelRow],
}

impl TermRange<'_> {
    /// Sums the range's pairs term by term, in document order.
    fn add(self, labels: &FlatLabels) {
        let n = self.term_weight.len();
        let base = self.first[0];
        // One term's sums per label, in a label-indexed scratch array: the sum of a label starts
        // as its row's sum, or as the label's first weight when the row has none (as
        // `LabelRow::add` would start it), and adds the rest in document order. The row is then
        // rebuilt once, at its exact size, instead of growing entry by entry.
        let mut sums = vec![0.0f64; self.n_labels];
        let mut seen = vec![false; self.n_labels];
        let mut touched: Vec<u32> = Vec::new();
        for local in 0..n {
            let pairs = &self.pairs
                [(self.first[local] - base) as usize..(self.first[local + 1] - base) as usize];
            if pairs.is_empty() {
                continue;
            }
            let row = &mut self.term_label_weight[local];
            touched.clear();
            for &(label, sum) in row.as_slice() {
                sums[label as usize] = sum;
                seen[label as usize] = true;
                touched.push(label);
            }
            for pair in pairs {
                let d = pair.document.load(Ordering::Relaxed) as usize;
                let w = f64::from_bits(pair.weight.load(Ordering::Relaxed));
                self.document_frequency[local] += 1.0;
                self.term_weight[local] += w;
                for &label in labels.of(d) {
                    let l = label as usize;
                    if seen[l] {
                        sums[l] += w;
                    } else {
                        sums[l] = w;
                        seen[l] = true;
                        touched.push(label);
                    }
                }
            }
            for &label in &touched {
                seen[label as usize] = false;
            }
            *row = match touched.as_slice() {
                [] => LabelRow::Empty,
                &[label] => LabelRow::One([(label, sums[label as usize])]),
                _ => {
                    touched.sort_unstable();
                    LabelRow::Many(touched.iter().map(|&l| (l, sums[l as usize])).collect())
                }
            };
        }
    }
}

fn add_sparse(entries: &mut Vec<(u32, f64)>, label: u32, w: f64) {
    match entries.binary_search_by_key(&label, |(l, _)| *l) {
        Ok(i) => entries[i].1 += w,
        Err(i) => entries.insert(i, (label, w)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Empty counts over a vocabulary of `n_terms` made-up terms.
    fn with_vocabulary(n_terms: usize) -> Counts {
        let mut counts = Counts::default();
        for t in 0..n_terms {
            let id = counts.vocabulary.push_stored(&format!("term{t}"));
            assert_eq!(id, Ok(t as u32));
        }
        counts
    }

    #[test]
    fn adding_a_batch_equals_adding_one_by_one_to_the_last_bit() {
        // A small deterministic generator: weights with many significant bits, so that a change in
        // the order of any sum would show.
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        let n_terms = 300;
        let mut documents: Vec<(SparseVector, Vec<u32>)> = Vec::new();
        for _ in 0..400 {
            let mut ids: Vec<u32> = (0..1 + next(40)).map(|_| next(n_terms) as u32).collect();
            ids.sort_unstable();
            ids.dedup();
            let vector = ids
                .into_iter()
                .map(|t| (t, 1.0 / (1.0 + next(1000) as f64)))
                .collect();
            let mut labels: Vec<u32> = (0..1 + next(3)).map(|_| next(5) as u32).collect();
            labels.dedup();
            documents.push((vector, labels));
        }
        let refs: Vec<(&SparseVector, &[u32])> =
            documents.iter().map(|(v, l)| (v, l.as_slice())).collect();
        let fresh = || {
            let mut counts = with_vocabulary(n_terms as usize);
            for label in ["a", "b", "c", "d", "e"] {
                counts.label_index(label);
            }
            counts
        };
        let mut one_by_one = fresh();
        for (vector, labels) in &refs {
            one_by_one.add_document(vector, labels);
        }
        // On one thread and on two; rows already filled, and terms seen for the first time, in a
        // later batch; an empty batch.
        for min_pairs in [0, u32::MAX] {
            let mut batch = fresh();
            batch.add_documents_on_two_threads_from(&refs[..150], min_pairs);
            batch.add_documents_on_two_threads_from(&refs[150..], min_pairs);
            assert_eq!(format!("{batch:?}"), format!("{one_by_one:?}"));
            batch.add_documents_on_two_threads_from(&[], min_pairs);
            assert_eq!(format!("{batch:?}"), format!("{one_by_one:?}"));
        }
    }

    #[test]
    fn the_borrowed_file_view_serialises_like_the_file_form_and_loads_back() {
        let mut counts = with_vocabulary(5);
        let (a, b) = (counts.label_index("a"), counts.label_index("b"));
        counts
            .vocabulary
            .push_stored("two words")
            .expect("new term");
        counts.add_document(&vec![(0, 1.5), (2, 0.25), (5, 1.0)], &[a]);
        counts.add_document(&vec![(2, 2.0), (3, 0.1)], &[a, b]);
        let view = serde_json::to_string(&counts.file_view()).expect("serialises");
        let owned = serde_json::to_string(&counts.to_file()).expect("serialises");
        assert_eq!(view, owned);
        let file: CountsFile = serde_json::from_str(&view).expect("parses");
        let back = Counts::from_file(file).expect("consistent");
        assert_eq!(format!("{back:?}"), format!("{counts:?}"));
    }

    #[test]
    fn shrinking_keeps_the_counts_and_the_vocabulary() {
        let mut counts = with_vocabulary(100);
        counts.label_index("a");
        counts.add_document(&vec![(7, 1.0), (99, 2.0)], &[0]);
        let before = format!("{counts:?}");
        counts.shrink_to_fit();
        assert_eq!(format!("{counts:?}"), before);
        assert_eq!(counts.term_weight.capacity(), 100);
        assert_eq!(counts.vocabulary.term(99), "term99");
    }
}
