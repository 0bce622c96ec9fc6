//! The sufficient statistics of naive Bayes: additive counts.
//!
//! Everything a model learns from its examples is a sum over documents, so training on A and then
//! on B adds exactly the same numbers, in the same order, as training on A∪B: incremental training is
//! exact. Counts are kept sparse per term (most terms occur under few labels).

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
    pub term_label_weight: Vec<Vec<(u32, f64)>>,
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
        self.document_frequency.resize(n, 0.0);
        self.term_weight.resize(n, 0.0);
        self.term_label_weight.resize(n, Vec::new());
    }

    /// Adds one document (already transformed) with its label indices.
    pub fn add_document(&mut self, vector: &SparseVector, labels: &[u32]) {
        self.accumulate(vector, labels, 1.0);
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
                add_sparse(&mut self.term_label_weight[t], label, w);
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
        for entries in &mut self.term_label_weight {
            entries.retain(|(l, _)| *l != index);
            for (l, _) in entries.iter_mut() {
                if *l > index {
                    *l -= 1;
                }
            }
        }
        true
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
                    by_label: self.term_label_weight[t].clone(),
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
        let mut counts = Counts {
            labels: file.labels,
            documents: file.documents,
            label_documents: file.label_documents,
            label_weight: file.label_weight,
            total_weight: file.total_weight,
            ..Counts::default()
        };
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
            counts.term_label_weight.push(record.by_label);
        }
        Ok(counts)
    }
}

fn add_sparse(entries: &mut Vec<(u32, f64)>, label: u32, w: f64) {
    match entries.binary_search_by_key(&label, |(l, _)| *l) {
        Ok(i) => entries[i].1 += w,
        Err(i) => entries.insert(i, (label, w)),
    }
}
