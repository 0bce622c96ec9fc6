//! The term vocabulary: a dense id for every term seen in training, in first-seen order.
//!
//! Terms are looked up by their 64-bit fingerprint ([`crate::text::TermKey`]), which the analyzer
//! computes while it tokenizes, so the scoring path neither builds bigram strings nor hashes or
//! compares term text. The term strings themselves live in one arena, for explanations and the model
//! file. Two different terms with the same fingerprint would share an id; for a vocabulary of a
//! million terms the chance of any such pair is about 3 in 10¹⁴, and a model file that contains two
//! is refused on load.
//!
//! The lookup table keeps 32 bits of each fingerprint beside the id (8-byte slots, half the memory
//! of whole fingerprints, so more of the table stays in the caches), and the whole fingerprints in
//! a separate array by id. Adding terms (training, loading) compares whole fingerprints, so ids are
//! exact. Classification compares the 32 bits only, unless two terms of the vocabulary share them
//! where one lookup would meet both (the table notices when it adds the second, about once in
//! 10⁴ vocabularies of 300,000 terms) and then it compares whole fingerprints too. So a known term
//! always gets its own id, and a term the vocabulary does not know is taken for a known one only if
//! its lookup meets a slot with the same 32 bits: at most about twice in 10⁹ unknown terms. (Both
//! odds count the occupied slots a probe passes, one or two on average and at most about eight at
//! three quarters full, each with the same 32 bits by a chance of 2⁻³².)

use crate::text::{Term, TermKey};

/// Maps terms to dense ids (`0..len`) and back. Ids are assigned in first-seen order, so training on
/// the same examples in the same order always gives the same ids.
#[derive(Debug, Clone, Default)]
pub struct Vocabulary {
    /// Every term's text, concatenated in id order.
    text: String,
    /// End of each term's text in `text` (its start is the previous end).
    ends: Vec<u32>,
    ids: KeyTable,
}

/// Fingerprint → id, as open addressing with linear probing over one array of `(tag, id)` slots,
/// the tag being the key's low 32 bits (see the module docs).
///
/// A lookup costs one cache miss where a general-purpose map costs two (control bytes, then the
/// bucket): the table is far larger than the CPU caches, and every term of every classified
/// document is looked up in it. Fingerprints are already well mixed, so the slot is taken from the
/// key's top bits. The table is at most three quarters full, so every probe sequence ends at an
/// empty slot; at that load a lookup still reads about two slots on average (eight to a cache line).
#[derive(Debug, Clone)]
struct KeyTable {
    slots: Vec<Slot>,
    /// `64 − log2(slots.len())`: the shift that turns a key into its home slot.
    shift: u32,
    /// Every key by id (so also how many the table holds): what exact lookups compare, and where
    /// growing finds each key's new home.
    keys: Vec<TermKey>,
    /// Whether two keys with the same tag sit where one probe sequence meets both: then a lookup
    /// by tag alone could stop at the wrong one, so every lookup compares whole keys.
    tag_clash: bool,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    /// The key's low 32 bits (its top bits choose the home slot).
    tag: u32,
    /// `EMPTY` for a free slot.
    id: u32,
}

/// The tag a slot keeps of `key`.
#[inline]
fn tag(key: TermKey) -> u32 {
    key as u32
}

const EMPTY: u32 = u32::MAX;

/// How many lookups ahead [`Vocabulary::insert_all`] starts loading a key's home slot.
const KEYS_AHEAD: usize = 16;

/// How many additions ahead [`Vocabulary::insert_all`] loads the slot of an unknown key again.
const STOPS_AHEAD: usize = 8;
const MIN_SLOTS_LOG2: u32 = 4;

/// Whether `keys` keys fit in a table of `slots` slots: at most three quarters full.
fn fits(keys: usize, slots: usize) -> bool {
    keys * 4 <= slots * 3
}

impl Default for KeyTable {
    fn default() -> Self {
        Self::with_slots_log2(MIN_SLOTS_LOG2)
    }
}

impl KeyTable {
    fn with_slots_log2(log2: u32) -> Self {
        Self {
            slots: vec![Slot { tag: 0, id: EMPTY }; 1 << log2],
            shift: 64 - log2,
            keys: Vec::new(),
            tag_clash: false,
        }
    }

    /// The slot holding `key`, or the empty slot where it would go, and whether the probe passed a
    /// slot with the same tag and another key. `EXACT` compares whole keys where the tags agree;
    /// without it the first slot with the key's tag is taken (the right one while the table has no
    /// tag clash, for a key it holds), and the probe reads nothing but the slots.
    #[inline]
    fn position<const EXACT: bool>(&self, key: TermKey) -> (usize, bool) {
        self.position_from::<EXACT>(key, (key >> self.shift) as usize)
    }

    /// [`KeyTable::position`], the probe starting at slot `start` of the key's probe sequence
    /// instead of at its home: where an earlier probe of the same key stopped at an empty slot,
    /// if the table has not been rehashed since (slots only fill up in between, so the probe
    /// would pass the same slots up to there).
    #[inline]
    fn position_from<const EXACT: bool>(&self, key: TermKey, start: usize) -> (usize, bool) {
        let mask = self.slots.len() - 1;
        let mut i = start & mask;
        let mut clash = false;
        // Bounded: the table always has an empty slot (it is at most three quarters full).
        loop {
            let slot = self.slots[i];
            if slot.id == EMPTY {
                return (i, clash);
            }
            if slot.tag == tag(key) {
                if !EXACT || self.keys[slot.id as usize] == key {
                    return (i, clash);
                }
                clash = true;
            }
            i = (i + 1) & mask;
        }
    }

    /// Starts loading slot `i` (if there is one).
    #[inline]
    fn prefetch_slot(&self, i: usize) {
        if let Some(slot) = self.slots.get(i) {
            crate::model::kernels::prefetch(slot);
        }
    }

    /// Starts loading the home slot of `key`.
    #[inline]
    fn prefetch(&self, key: TermKey) {
        self.prefetch_slot((key >> self.shift) as usize);
    }

    /// The id of `key`, comparing whole keys.
    #[inline]
    fn get_exact(&self, key: TermKey) -> Option<u32> {
        let slot = self.slots[self.position::<true>(key).0];
        (slot.id != EMPTY).then_some(slot.id)
    }

    /// The id of `key` as classification looks it up (see the module docs).
    #[inline]
    fn get(&self, key: TermKey) -> Option<u32> {
        if self.tag_clash {
            return self.get_exact(key);
        }
        let slot = self.slots[self.position::<false>(key).0];
        (slot.id != EMPTY).then_some(slot.id)
    }

    /// Grows the table (if needed) so that it holds `total` keys without growing again.
    fn reserve(&mut self, total: usize) {
        let mut log2 = 64 - self.shift;
        while !fits(total, 1 << log2) {
            log2 += 1;
        }
        if log2 != 64 - self.shift {
            self.rehash(log2);
        }
    }

    /// Shrinks the table to the size growing one doubling at a time would have given it, when a
    /// [`Vocabulary::reserve`] made it larger than its keys need.
    fn shrink_to_fit(&mut self) {
        let mut log2 = MIN_SLOTS_LOG2;
        while !fits(self.keys.len(), 1 << log2) {
            log2 += 1;
        }
        if log2 < 64 - self.shift {
            self.rehash(log2);
        }
    }

    /// Moves every key into a table of `2^log2` slots.
    fn rehash(&mut self, log2: u32) {
        let mut resized = Self::with_slots_log2(log2);
        resized.keys = std::mem::take(&mut self.keys);
        for slot in self.slots.iter().filter(|s| s.id != EMPTY) {
            let key = resized.keys[slot.id as usize];
            resized.place(key, slot.id);
        }
        *self = resized;
    }

    /// Inserts a key that is not in the table, with the next id (`id` is the number of keys).
    fn insert_new(&mut self, key: TermKey, id: u32) {
        debug_assert_eq!(id as usize, self.keys.len());
        if !fits(self.keys.len() + 1, self.slots.len()) {
            self.rehash(64 - self.shift + 1);
        }
        self.keys.push(key);
        self.place(key, id);
    }

    /// Puts `key` (already in `keys` under `id`) into its slot.
    fn place(&mut self, key: TermKey, id: u32) {
        let (i, clash) = self.position::<true>(key);
        self.slots[i] = Slot { tag: tag(key), id };
        self.tag_clash |= clash;
    }
}

/// Why a list of terms cannot be a vocabulary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VocabularyError {
    /// The same term is listed twice.
    #[error("term {0:?} appears twice")]
    Duplicate(String),
    /// Two different terms have the same fingerprint.
    #[error("terms {0:?} and {1:?} have the same 64-bit fingerprint")]
    Collision(String, String),
}

impl Vocabulary {
    /// Builds a vocabulary from terms in id order (as written by [`Vocabulary::terms`]).
    pub fn from_terms<'a>(
        terms: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, VocabularyError> {
        let mut vocabulary = Self::default();
        for term in terms {
            vocabulary.push_stored(term)?;
        }
        Ok(vocabulary)
    }

    /// Appends a stored term (a word, or two words joined by one space) under a new id.
    pub fn push_stored(&mut self, term: &str) -> Result<u32, VocabularyError> {
        let parsed = Term::parse(term);
        let key = parsed.key();
        if let Some(id) = self.ids.get_exact(key) {
            let existing = self.term(id).to_owned();
            return Err(if existing == term {
                VocabularyError::Duplicate(existing)
            } else {
                VocabularyError::Collision(existing, term.to_owned())
            });
        }
        Ok(self.push(key, parsed))
    }

    /// The id of the term with fingerprint `key`, if known: a known term always gets its own id; an
    /// unknown one is taken for a known one at most about twice in 10⁹ (see the module docs).
    #[inline]
    pub fn get(&self, key: TermKey) -> Option<u32> {
        self.ids.get(key)
    }

    /// Starts loading the table slot where a lookup of `key` begins into the caches (see
    /// [`crate::model::kernels::prefetch`]), so that a later [`Vocabulary::get`] finds it there.
    #[inline]
    pub fn prefetch(&self, key: TermKey) {
        self.ids.prefetch(key);
    }

    /// Makes room for `terms` more terms with `text_bytes` bytes of text in all, exactly (a model
    /// being loaded knows both), so that loading neither overshoots nor rehashes.
    pub fn reserve_exact(&mut self, terms: usize, text_bytes: usize) {
        self.text.reserve_exact(text_bytes);
        self.ends.reserve_exact(terms);
        self.ids.keys.reserve_exact(terms);
        self.ids.reserve(self.ends.len() + terms);
    }

    /// Grows the lookup table so that about `terms` more terms fit without growing it again.
    /// Training reserves for the terms it expects before it adds any: the table then never moves
    /// its keys, and its probes stay short while it fills (a table grown one doubling at a time
    /// spends half its time between half and three quarters full). [`Vocabulary::shrink_to_fit`]
    /// gives back what the estimate overshot.
    pub fn reserve(&mut self, terms: usize) {
        self.ids.reserve(self.ends.len().saturating_add(terms));
    }

    /// Gives back the spare capacity of the term text and offsets (their buffers double as terms
    /// are added, and a model lives long), and shrinks the lookup table to the size it would have
    /// had without a [`Vocabulary::reserve`].
    pub fn shrink_to_fit(&mut self) {
        self.text.shrink_to_fit();
        self.ends.shrink_to_fit();
        self.ids.keys.shrink_to_fit();
        self.ids.shrink_to_fit();
    }

    /// The id of `term` (fingerprint `key`), adding it if new. Its text is copied only when new.
    #[inline]
    pub fn insert(&mut self, key: TermKey, term: Term<'_>) -> u32 {
        match self.ids.get_exact(key) {
            Some(id) => id,
            None => self.push(key, term),
        }
    }

    /// Writes into `ids` the id of every term in `keys` (the term with fingerprint `keys[i]` is
    /// spelled `term(i)`), adding unknown ones in the order they are listed: the same ids as
    /// [`Vocabulary::insert`] called on each in turn.
    ///
    /// All keys are looked up first, in a loop of independent lookups (the table is far larger than
    /// the CPU caches, and such a loop lets the CPU wait for several misses at once); only the
    /// unknown ones are then added, one after another, each from the empty slot where its lookup
    /// stopped (unless the table has grown since) instead of from its home slot again.
    pub fn insert_all<'a>(
        &mut self,
        keys: &[TermKey],
        term: impl Fn(usize) -> Term<'a>,
        ids: &mut Vec<u32>,
    ) {
        ids.clear();
        // Per unknown key, in order: where its lookup stopped and whether it met a tag clash.
        let mut stops: Vec<(usize, bool)> = Vec::new();
        for &key in keys.iter().take(KEYS_AHEAD) {
            self.ids.prefetch(key);
        }
        ids.extend(keys.iter().enumerate().map(|(k, &key)| {
            if let Some(&later) = keys.get(k + KEYS_AHEAD) {
                self.ids.prefetch(later);
            }
            let (i, clash) = self.ids.position::<true>(key);
            let id = self.ids.slots[i].id;
            if id == EMPTY {
                stops.push((i, clash));
            }
            id
        }));
        let slots = self.ids.slots.len();
        // The lookups' slots have left the caches by the time their keys are added: each is
        // loaded again a few additions ahead.
        for &(stop, _) in stops.iter().take(STOPS_AHEAD) {
            self.ids.prefetch_slot(stop);
        }
        let mut added = 0;
        for (i, id) in ids.iter_mut().enumerate() {
            if *id != EMPTY {
                continue;
            }
            if let Some(&(later, _)) = stops.get(added + STOPS_AHEAD) {
                self.ids.prefetch_slot(later);
            }
            let stop = stops.get(added).copied();
            added += 1;
            *id = match stop {
                Some((stop, clash)) if self.ids.slots.len() == slots => {
                    let (at, more) = self.ids.position_from::<true>(keys[i], stop);
                    match self.ids.slots[at].id {
                        EMPTY => self.push_at(keys[i], term(i), at, clash || more),
                        // Listed twice: added at its first listing.
                        known => known,
                    }
                }
                _ => self.insert(keys[i], term(i)),
            };
        }
    }

    /// Adds a term the table does not hold under the next id, into the empty slot `at` where a
    /// lookup of it stopped (`clash`: whether that lookup passed a slot with its tag), unless the
    /// table must grow first.
    fn push_at(&mut self, key: TermKey, term: Term<'_>, at: usize, clash: bool) -> u32 {
        if !fits(self.ids.keys.len() + 1, self.ids.slots.len()) {
            return self.push(key, term);
        }
        let id = self.ends.len() as u32;
        term.write_to(&mut self.text);
        self.ends.push(self.text.len() as u32);
        self.ids.keys.push(key);
        self.ids.slots[at] = Slot { tag: tag(key), id };
        self.ids.tag_clash |= clash;
        id
    }

    fn push(&mut self, key: TermKey, term: Term<'_>) -> u32 {
        let id = self.ends.len() as u32;
        term.write_to(&mut self.text);
        self.ends.push(self.text.len() as u32);
        self.ids.insert_new(key, id);
        id
    }

    /// The term with id `id`.
    pub fn term(&self, id: u32) -> &str {
        let id = id as usize;
        let start = if id == 0 {
            0
        } else {
            self.ends[id - 1] as usize
        };
        &self.text[start..self.ends[id] as usize]
    }

    /// Number of terms.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// True when no term is known.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// All terms in id order.
    pub fn terms(&self) -> impl Iterator<Item = &str> {
        (0..self.ends.len() as u32).map(|id| self.term(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::{Analyzer, AnalyzerSettings};

    #[test]
    fn stored_terms_get_the_keys_the_analyzer_computes() {
        let analyzer = Analyzer::new(AnalyzerSettings::default());
        let mut vocabulary = Vocabulary::default();
        analyzer.for_each_term_key("Central banks raised interest rates", |key, term| {
            vocabulary.insert(key, term);
        });
        let stored: Vec<String> = vocabulary.terms().map(str::to_owned).collect();
        assert!(stored.contains(&"interest rate".to_owned()), "{stored:?}");
        // The text is one short line, so it is its own headline too.
        assert!(stored.contains(&"^interest ^rate".to_owned()), "{stored:?}");
        let reloaded = Vocabulary::from_terms(stored.iter().map(String::as_str)).expect("valid");
        analyzer.for_each_term_key("CENTRAL BANKS RAISED INTEREST RATES", |key, term| {
            let id = reloaded.get(key).expect("known term");
            assert_eq!(reloaded.term(id), term.to_string());
        });
    }

    #[test]
    fn the_key_table_finds_every_key_across_growth_and_no_other() {
        let mut table = KeyTable::default();
        // Keys that share their top bits (same home slot) as well as spread ones.
        let keys: Vec<TermKey> = (0..5000u64)
            .map(|i| {
                if i % 2 == 0 {
                    i.wrapping_mul(0x9E37_79B9_7F4A_7C15)
                } else {
                    i
                }
            })
            .collect();
        for (id, &key) in keys.iter().enumerate() {
            assert_eq!(table.get(key), None);
            table.insert_new(key, id as u32);
        }
        assert!(fits(table.keys.len(), table.slots.len()));
        assert!(
            !fits(table.keys.len(), table.slots.len() / 2),
            "grown only when needed"
        );
        for (id, &key) in keys.iter().enumerate() {
            assert_eq!(table.get(key), Some(id as u32));
        }
        assert_eq!(table.get(u64::MAX), None);
    }

    #[test]
    fn keys_sharing_a_tag_and_a_probe_sequence_switch_lookups_to_whole_keys() {
        // Same top bits (the same home slot) and the same low 32 bits (the same tag).
        let first: TermKey = 0x1000_0000_0000_0005;
        let second: TermKey = 0x1000_0001_0000_0005;
        let unknown: TermKey = 0x1000_0002_0000_0005;
        let mut table = KeyTable::default();
        table.insert_new(first, 0);
        assert!(!table.tag_clash);
        // Before the clash, a lookup by tag takes any key with that tag for the one it meets.
        assert_eq!(table.get(second), Some(0));
        assert_eq!(table.get_exact(second), None);
        table.insert_new(second, 1);
        assert!(table.tag_clash);
        assert_eq!(table.get(first), Some(0));
        assert_eq!(table.get(second), Some(1));
        assert_eq!(table.get(unknown), None);
        // Growing keeps every key and finds the clash again.
        for id in 2..100u32 {
            table.insert_new(u64::from(id).wrapping_mul(0x9E37_79B9_7F4A_7C15), id);
        }
        assert!(table.tag_clash);
        assert_eq!(table.get(first), Some(0));
        assert_eq!(table.get(second), Some(1));
        assert_eq!(table.get(unknown), None);
    }

    #[test]
    fn insert_all_gives_the_ids_of_insert_one_by_one() {
        let analyzer = Analyzer::new(AnalyzerSettings::default());
        let mut one_by_one = Vocabulary::default();
        let mut all_at_once = Vocabulary::default();
        let mut ids = Vec::new();
        // Repeated keys in one call, and calls that make the table grow while their unknown
        // keys are added (it starts with 16 slots).
        for text in [
            "oil prices rose",
            "prices of crude oil fell",
            "oil oil oil",
            "rose fell",
            "wheat corn barley sorghum rice oats rye soybeans cotton sugar cocoa coffee tea \
             rubber copper zinc tin lead nickel gold silver platinum wheat corn",
        ] {
            let mut keys = Vec::new();
            let mut spellings = Vec::new();
            let mut expected = Vec::new();
            analyzer.for_each_term_key(text, |key, term| {
                expected.push(one_by_one.insert(key, term));
                keys.push(key);
                spellings.push(term.to_string());
            });
            all_at_once.insert_all(&keys, |i| Term::parse(&spellings[i]), &mut ids);
            assert_eq!(ids, expected, "{text}");
        }
        assert!(one_by_one.terms().eq(all_at_once.terms()));
        // The same table too, slot for slot.
        assert_eq!(format!("{all_at_once:?}"), format!("{one_by_one:?}"));
    }

    #[test]
    fn a_reservation_changes_no_id_and_shrinking_gives_the_grown_size_back() {
        let terms: Vec<String> = (0..3000).map(|i| format!("term{i}")).collect();
        let grown = Vocabulary::from_terms(terms.iter().map(String::as_str)).unwrap();
        // Reserved for far more terms than come, for exactly as many, and for too few.
        for reserved in [100_000, 3000, 10] {
            let mut reserving = Vocabulary::default();
            reserving.reserve(reserved);
            let before = reserving.ids.slots.len();
            assert!(fits(reserved, before), "reserved {reserved}");
            for term in &terms {
                reserving.push_stored(term).unwrap();
            }
            if reserved >= terms.len() {
                assert_eq!(reserving.ids.slots.len(), before, "never grown");
            }
            reserving.shrink_to_fit();
            assert_eq!(reserving.ids.slots.len(), grown.ids.slots.len());
            for (id, term) in terms.iter().enumerate() {
                let key = Term::parse(term).key();
                assert_eq!(reserving.get(key), Some(id as u32), "{term}");
                assert_eq!(reserving.get(key), grown.get(key));
            }
            assert_eq!(reserving.get(Term::parse("unseen").key()), None);
        }
    }

    #[test]
    fn duplicates_are_refused() {
        let err = Vocabulary::from_terms(["rate", "bank", "rate"]).unwrap_err();
        assert_eq!(err, VocabularyError::Duplicate("rate".into()));
    }
}
