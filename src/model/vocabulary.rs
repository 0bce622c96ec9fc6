//! The term vocabulary: a dense id for every term seen in training, in first-seen order.

use std::sync::Arc;

use rustc_hash::FxHashMap;

/// Maps terms to dense ids (`0..len`) and back. Ids are assigned in first-seen order, so training on
/// the same examples in the same order always gives the same ids.
#[derive(Debug, Clone, Default)]
pub struct Vocabulary {
    terms: Vec<Arc<str>>,
    ids: FxHashMap<Arc<str>, u32>,
}

impl Vocabulary {
    /// Builds a vocabulary from terms in id order.
    pub fn from_terms(terms: Vec<String>) -> Self {
        let mut vocabulary = Self::default();
        for term in terms {
            vocabulary.insert(&term);
        }
        vocabulary
    }

    /// The id of `term`, if known.
    #[inline]
    pub fn get(&self, term: &str) -> Option<u32> {
        self.ids.get(term).copied()
    }

    /// The id of `term`, adding it if new.
    pub fn insert(&mut self, term: &str) -> u32 {
        if let Some(id) = self.ids.get(term) {
            return *id;
        }
        let id = self.terms.len() as u32;
        let shared: Arc<str> = Arc::from(term);
        self.terms.push(Arc::clone(&shared));
        self.ids.insert(shared, id);
        id
    }

    /// The term with id `id`.
    pub fn term(&self, id: u32) -> &str {
        &self.terms[id as usize]
    }

    /// Number of terms.
    pub fn len(&self) -> usize {
        self.terms.len()
    }

    /// True when no term is known.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// All terms in id order.
    pub fn terms(&self) -> impl Iterator<Item = &str> {
        self.terms.iter().map(|t| &**t)
    }
}
