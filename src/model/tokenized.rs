//! Tokenizing training text on worker threads while the caller counts.
//!
//! Tokenizing, stemming, fingerprinting and counting each document's terms are per-document work;
//! assigning term ids must happen in document order (ids are first-seen order, so models are
//! reproducible). So worker threads turn chunks of documents into a [`Chunk`]: the chunk's distinct
//! terms in order of first occurrence, with their spellings, and every document's term frequencies
//! over them. The calling thread consumes the chunks strictly in order and looks each distinct term
//! of a chunk up once, instead of once per occurrence. With one core, or a handful of documents,
//! everything runs on the calling thread with the same result.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use crate::text::{Analyzer, CachedTerm, Term, TermKey};

/// Documents per chunk handed from a worker to the consumer.
const CHUNK_DOCUMENTS: usize = 128;

/// Consecutive documents, analysed: their distinct terms (local ids `0..keys().len()`, in order of
/// first occurrence in the chunk) and each document's `(local id, frequency)` pairs.
#[derive(Default)]
pub struct Chunk {
    keys: Vec<TermKey>,
    /// Every distinct word's spelling, concatenated in local-id order.
    spellings: String,
    /// Per term (by local id), how it is spelled.
    spelled: Vec<Spelled>,
    /// Every document's distinct terms with their frequencies, in order of first occurrence in it.
    terms: Vec<(u32, u32)>,
    /// End of each document's pairs in `terms`.
    document_ends: Vec<u32>,
}

/// How a chunk term is spelled.
#[derive(Clone, Copy)]
enum Spelled {
    /// A word: `spellings[start..end]`.
    Word { start: u32, end: u32 },
    /// A bigram: the local ids of its two words (words of the same chunk, always added first).
    Bigram { first: u32, second: u32 },
}

impl Chunk {
    /// The fingerprints of the chunk's distinct terms, by local id.
    pub fn keys(&self) -> &[TermKey] {
        &self.keys
    }

    /// The spelling of the term with local id `local`.
    pub fn term(&self, local: usize) -> Term<'_> {
        match self.spelled[local] {
            Spelled::Word { .. } => Term::Word(self.word(local as u32)),
            Spelled::Bigram { first, second } => Term::Bigram(self.word(first), self.word(second)),
        }
    }

    /// The spelling of the word with local id `local` (empty for a bigram, which no caller asks).
    fn word(&self, local: u32) -> &str {
        match self.spelled.get(local as usize) {
            Some(&Spelled::Word { start, end }) => self
                .spellings
                .get(start as usize..end as usize)
                .unwrap_or_default(),
            _ => "",
        }
    }

    /// Every document's `(local id, frequency)` pairs, in document order.
    pub fn documents(&self) -> impl Iterator<Item = &[(u32, u32)]> {
        let starts = std::iter::once(0).chain(self.document_ends.iter().copied());
        starts
            .zip(&self.document_ends)
            .map(|(start, &end)| &self.terms[start as usize..end as usize])
    }
}

/// A chunk's terms while it is tokenized: fingerprint → local id, and the last document each
/// occurred in. Open addressing with linear probing over one array of 16-byte slots, kept by a
/// tokenizing thread from one chunk to the next: a slot belongs to the current chunk when its
/// document stamp is at least the chunk's first, so starting a chunk clears nothing. Every token of
/// the training text is looked up here, so a lookup is one probe of a table a few hundred KB large
/// (fingerprints are well mixed: the home slot is taken from the key's top bits).
struct ChunkTerms {
    slots: Vec<ChunkSlot>,
    /// `64 − log2(slots.len())`.
    shift: u32,
    /// Slots of the current chunk.
    len: usize,
    /// Stamp of the current chunk's first document; documents are stamped 1, 2, 3, … across chunks.
    chunk_start: u32,
    /// Per local id: where its pair sits in the current document's part of `Chunk::terms`.
    pair_of: Vec<u32>,
}

#[derive(Clone, Copy, Default)]
struct ChunkSlot {
    key: TermKey,
    local: u32,
    /// The last document the term occurred in (0: never).
    document: u32,
}

/// Initial `log2` of the slot count: 16k slots (256 KB). A chunk with more than 8k distinct terms
/// (Reuters chunks have more) doubles it once; the thread keeps the larger table for later
/// chunks.
const CHUNK_SLOTS_LOG2: u32 = 14;

impl Default for ChunkTerms {
    fn default() -> Self {
        Self {
            slots: vec![ChunkSlot::default(); 1 << CHUNK_SLOTS_LOG2],
            shift: 64 - CHUNK_SLOTS_LOG2,
            len: 0,
            chunk_start: 1,
            pair_of: Vec::new(),
        }
    }
}

impl ChunkTerms {
    /// Forgets the previous chunk; its first document will be stamped `first_document`.
    fn start_chunk(&mut self, first_document: u32) {
        self.chunk_start = first_document;
        self.len = 0;
        self.pair_of.clear();
    }

    /// The slot of `key` in the current chunk, or the free slot where it would go.
    #[inline]
    fn position(&self, key: TermKey) -> usize {
        let mask = self.slots.len() - 1;
        let mut i = (key >> self.shift) as usize;
        // Bounded: the table is at most half full, so some slot is free.
        loop {
            let slot = self.slots[i];
            if slot.document < self.chunk_start || slot.key == key {
                return i;
            }
            i = (i + 1) & mask;
        }
    }

    /// Doubles the table, keeping the current chunk's slots.
    fn grow(&mut self) {
        let log2 = 64 - self.shift + 1;
        let old = std::mem::replace(&mut self.slots, vec![ChunkSlot::default(); 1 << log2]);
        self.shift = 64 - log2;
        for slot in old.into_iter().filter(|s| s.document >= self.chunk_start) {
            let i = self.position(slot.key);
            self.slots[i] = slot;
        }
    }
}

fn tokenize_chunk(
    analyzer: &Analyzer,
    texts: &[&str],
    first_document: u32,
    table: &mut ChunkTerms,
) -> Chunk {
    let mut chunk = Chunk::default();
    table.start_chunk(first_document);
    // About one term per 7 bytes of text, fewer distinct ones.
    let bytes: usize = texts.iter().map(|t| t.len()).sum();
    chunk.terms.reserve(bytes / 8);
    chunk.keys.reserve(bytes / 16);
    chunk.spelled.reserve(bytes / 16);
    chunk.spellings.reserve(bytes / 4);
    for (d, text) in texts.iter().enumerate() {
        let document = first_document + d as u32;
        // Local ids of the last two words, which spell a bigram.
        let (mut before_last, mut last) = (0u32, 0u32);
        analyzer.for_each_cached_term(text, |term| {
            let (key, is_word) = match &term {
                CachedTerm::Word(key, _) => (*key, true),
                CachedTerm::Bigram(key) => (*key, false),
            };
            let mut i = table.position(key);
            if table.slots[i].document < table.chunk_start {
                if (table.len + 1) * 2 > table.slots.len() {
                    table.grow();
                    i = table.position(key);
                }
                table.len += 1;
                table.slots[i] = ChunkSlot {
                    key,
                    local: chunk.keys.len() as u32,
                    document: 0,
                };
                table.pair_of.push(0);
                chunk.keys.push(key);
                chunk.spelled.push(match term {
                    CachedTerm::Word(_, mut spelling) => {
                        let start = chunk.spellings.len() as u32;
                        chunk.spellings.push_str(spelling.get());
                        Spelled::Word {
                            start,
                            end: chunk.spellings.len() as u32,
                        }
                    }
                    CachedTerm::Bigram(_) => Spelled::Bigram {
                        first: before_last,
                        second: last,
                    },
                });
            }
            let slot = &mut table.slots[i];
            let local = slot.local;
            if slot.document == document {
                chunk.terms[table.pair_of[local as usize] as usize].1 += 1;
            } else {
                slot.document = document;
                table.pair_of[local as usize] = chunk.terms.len() as u32;
                chunk.terms.push((local, 1));
            }
            if is_word {
                before_last = last;
                last = local;
            }
        });
        chunk.document_ends.push(chunk.terms.len() as u32);
    }
    chunk
}

/// The document stamp of the text with index `index`: its number from 1.
fn stamp(index: usize) -> u32 {
    u32::try_from(index + 1).unwrap_or(u32::MAX)
}

/// How many chunks tokenizing may run ahead of consuming (bounds the memory held in between).
const CHUNKS_AHEAD: usize = 4;

/// A chunk's place in the hand-over between tokenizing threads and the consumer.
enum Slot {
    /// Not tokenized yet (or being tokenized).
    Pending,
    Ready(Chunk),
    /// The thread that claimed it ended without delivering it (it panicked): the consumer
    /// tokenizes it itself.
    Abandoned,
}

/// What the tokenizing threads and the consumer share.
struct Handover {
    /// The next chunk nobody has claimed.
    next_claim: usize,
    /// Chunks consumed so far.
    consumed: usize,
    slots: Vec<Slot>,
}

/// Marks a claimed chunk abandoned if its thread unwinds before delivering it, so the consumer
/// never waits for it.
struct Claim<'a> {
    handover: &'a (Mutex<Handover>, Condvar),
    chunk: usize,
    delivered: bool,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        if !self.delivered {
            let (state, changed) = self.handover;
            lock(state).slots[self.chunk] = Slot::Abandoned;
            changed.notify_all();
        }
    }
}

/// Locks the hand-over; the state stays consistent even if a thread panicked while holding it
/// (every change is a single assignment).
fn lock(state: &Mutex<Handover>) -> MutexGuard<'_, Handover> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Calls `consume(index of its first text, chunk)` for consecutive chunks of `texts`, in order.
///
/// Chunks are tokenized by `cores − 1` helper threads and by the consumer itself: whenever the
/// next chunk to consume is not ready, the consuming thread claims the next unclaimed chunk and
/// tokenizes it, so both cores stay busy whichever side is slower. Each chunk's result depends on
/// its texts only, so it is the same whichever thread tokenized it.
pub fn for_each_tokenized(
    analyzer: &Analyzer,
    texts: &[&str],
    mut consume: impl FnMut(usize, &Chunk),
) {
    let chunks: Vec<&[&str]> = texts.chunks(CHUNK_DOCUMENTS).collect();
    let tokenize = |c: usize, table: &mut ChunkTerms| {
        tokenize_chunk(analyzer, chunks[c], stamp(c * CHUNK_DOCUMENTS), table)
    };
    let helpers = (crate::parallel::cores() - 1).min(chunks.len().saturating_sub(1));
    let mut table = ChunkTerms::default();
    if helpers == 0 {
        for c in 0..chunks.len() {
            consume(c * CHUNK_DOCUMENTS, &tokenize(c, &mut table));
        }
        return;
    }
    let handover = (
        Mutex::new(Handover {
            next_claim: 0,
            consumed: 0,
            slots: chunks.iter().map(|_| Slot::Pending).collect(),
        }),
        Condvar::new(),
    );
    let (state, changed) = &handover;
    std::thread::scope(|scope| {
        for _ in 0..helpers {
            scope.spawn(|| {
                let mut table = ChunkTerms::default();
                loop {
                    let c = {
                        let mut shared = lock(state);
                        while shared.next_claim < chunks.len()
                            && shared.next_claim >= shared.consumed + CHUNKS_AHEAD
                        {
                            shared = changed.wait(shared).unwrap_or_else(PoisonError::into_inner);
                        }
                        if shared.next_claim == chunks.len() {
                            return;
                        }
                        shared.next_claim += 1;
                        shared.next_claim - 1
                    };
                    let mut claim = Claim {
                        handover: &handover,
                        chunk: c,
                        delivered: false,
                    };
                    let chunk = tokenize(c, &mut table);
                    lock(state).slots[c] = Slot::Ready(chunk);
                    claim.delivered = true;
                    changed.notify_all();
                }
            });
        }
        for c in 0..chunks.len() {
            let chunk = loop {
                let mut shared = lock(state);
                match std::mem::replace(&mut shared.slots[c], Slot::Pending) {
                    Slot::Ready(chunk) => {
                        shared.consumed = c + 1;
                        break chunk;
                    }
                    Slot::Abandoned => break tokenize(c, &mut ChunkTerms::default()),
                    Slot::Pending => {}
                }
                if shared.next_claim < chunks.len() {
                    // Not ready: tokenize the next unclaimed chunk meanwhile (or this one).
                    let claimed = shared.next_claim;
                    shared.next_claim += 1;
                    drop(shared);
                    let chunk = tokenize(claimed, &mut table);
                    lock(state).slots[claimed] = Slot::Ready(chunk);
                } else {
                    drop(changed.wait(shared).unwrap_or_else(PoisonError::into_inner));
                }
            };
            changed.notify_all();
            consume(c * CHUNK_DOCUMENTS, &chunk);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::AnalyzerSettings;

    #[test]
    fn chunks_arrive_in_order_with_every_term_counted_and_spelled() {
        let analyzer = Analyzer::new(AnalyzerSettings::default());
        let texts: Vec<String> = (0..1000)
            .map(|i| format!("missile test number{i}, missile tests again{}", i % 7))
            .collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let mut seen = 0;
        for_each_tokenized(&analyzer, &refs, |first, chunk| {
            assert_eq!(first, seen);
            for terms in chunk.documents() {
                let mut counted: Vec<(String, u32)> = terms
                    .iter()
                    .map(|&(local, n)| (chunk.term(local as usize).to_string(), n))
                    .collect();
                counted.sort();
                let mut expected: Vec<(String, u32)> = Vec::new();
                let mut all = analyzer.terms(&texts[seen]);
                all.sort();
                for term in all {
                    match expected.last_mut() {
                        Some((last, n)) if *last == term => *n += 1,
                        _ => expected.push((term, 1)),
                    }
                }
                assert_eq!(counted, expected, "document {seen}");
                seen += 1;
            }
            for (local, &key) in chunk.keys().iter().enumerate() {
                assert_eq!(chunk.term(local).key(), key);
            }
            let mut keys = chunk.keys().to_vec();
            keys.sort_unstable();
            keys.dedup();
            assert_eq!(
                keys.len(),
                chunk.keys().len(),
                "a chunk's keys are distinct"
            );
        });
        assert_eq!(seen, texts.len());
    }
}
