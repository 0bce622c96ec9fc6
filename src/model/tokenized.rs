//! Tokenizing training text on worker threads while the caller counts.
//!
//! Tokenizing, stemming and fingerprinting are per-document work; assigning term ids and adding to
//! the counts must happen in document order (ids are first-seen order, so models are reproducible).
//! So worker threads turn chunks of documents into term fingerprints, each chunk with the spelling
//! of the terms it contains, and the calling thread consumes the chunks strictly in order. With one
//! core, or a handful of documents, everything runs on the calling thread with the same result.

use std::sync::mpsc;

use rustc_hash::FxHashMap;

use crate::text::{Analyzer, Term, TermKey};

/// Documents per chunk handed from a worker to the consumer.
const CHUNK_DOCUMENTS: usize = 128;

/// The spelling of every term of one chunk, by fingerprint.
#[derive(Default)]
pub struct Spellings {
    arena: String,
    spans: FxHashMap<TermKey, (u32, u32)>,
}

impl Spellings {
    /// The term with fingerprint `key`, if it occurs in this chunk.
    pub fn get(&self, key: TermKey) -> Option<Term<'_>> {
        let &(start, end) = self.spans.get(&key)?;
        Some(Term::parse(self.arena.get(start as usize..end as usize)?))
    }

    fn record(&mut self, key: TermKey, term: Term<'_>) {
        if !self.spans.contains_key(&key) {
            let start = self.arena.len() as u32;
            term.write_to(&mut self.arena);
            self.spans.insert(key, (start, self.arena.len() as u32));
        }
    }
}

/// One chunk: the fingerprints of each document's terms, in text order, and their spellings.
struct Chunk {
    keys: Vec<Vec<TermKey>>,
    spellings: Spellings,
}

fn tokenize_chunk(analyzer: &Analyzer, texts: &[&str]) -> Chunk {
    let mut spellings = Spellings::default();
    let keys = texts
        .iter()
        .map(|text| {
            let mut keys = Vec::with_capacity(text.len() / 6 + 1);
            analyzer.for_each_term_key(text, |key, term| {
                spellings.record(key, term);
                keys.push(key);
            });
            keys
        })
        .collect();
    Chunk { keys, spellings }
}

/// Calls `consume(index, keys, spellings)` for every text, in order, with the fingerprints of its
/// terms in text order; tokenizing runs on up to `available_parallelism − 1` worker threads.
pub fn for_each_tokenized(
    analyzer: &Analyzer,
    texts: &[&str],
    mut consume: impl FnMut(usize, &[TermKey], &Spellings),
) {
    let chunks: Vec<&[&str]> = texts.chunks(CHUNK_DOCUMENTS).collect();
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .saturating_sub(1)
        .min(chunks.len().saturating_sub(1));
    let mut consume_chunk = |first: usize, chunk: Chunk| {
        for (offset, keys) in chunk.keys.iter().enumerate() {
            consume(first + offset, keys, &chunk.spellings);
        }
    };
    if workers == 0 {
        for (c, texts) in chunks.iter().enumerate() {
            consume_chunk(c * CHUNK_DOCUMENTS, tokenize_chunk(analyzer, texts));
        }
        return;
    }
    std::thread::scope(|scope| {
        let receivers: Vec<mpsc::Receiver<Chunk>> = (0..workers)
            .map(|w| {
                let (sender, receiver) = mpsc::sync_channel(2);
                let chunks = &chunks;
                scope.spawn(move || {
                    for texts in chunks.iter().skip(w).step_by(workers) {
                        if sender.send(tokenize_chunk(analyzer, texts)).is_err() {
                            return;
                        }
                    }
                });
                receiver
            })
            .collect();
        // Worker w produces chunks w, w + workers, …: receiving round-robin restores the order.
        for c in 0..chunks.len() {
            match receivers[c % workers].recv() {
                Ok(chunk) => consume_chunk(c * CHUNK_DOCUMENTS, chunk),
                // A worker ended early (it panicked): tokenize its chunk here instead.
                Err(_) => consume_chunk(c * CHUNK_DOCUMENTS, tokenize_chunk(analyzer, chunks[c])),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::AnalyzerSettings;

    #[test]
    fn chunks_arrive_in_order_with_their_spellings() {
        let analyzer = Analyzer::new(AnalyzerSettings::default());
        let texts: Vec<String> = (0..1000)
            .map(|i| format!("missile test number{i}"))
            .collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let mut seen = 0;
        for_each_tokenized(&analyzer, &refs, |i, keys, spellings| {
            assert_eq!(i, seen);
            seen += 1;
            let spelled: Vec<String> = keys
                .iter()
                .map(|k| spellings.get(*k).map(|t| t.to_string()).unwrap_or_default())
                .collect();
            assert_eq!(spelled, analyzer.terms(&texts[i]));
        });
        assert_eq!(seen, texts.len());
    }
}
