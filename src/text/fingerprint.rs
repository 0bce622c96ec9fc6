//! 64-bit term fingerprints, so that the vocabulary is looked up by an integer rather than by text.
//!
//! A word's key hashes its bytes eight at a time and finishes with a strong 64-bit mixer; a bigram's
//! key mixes the keys of its two words, so a bigram never has to be spelled out to be looked up.
//! A headline word (see [`super::headline`]) is a term of its own, spelled with
//! [`HEADLINE_MARKER`] in front and keyed by mixing its plain key once more.
//! Keys are stable across platforms and releases of topicd (models store terms as text and recompute
//! the keys on load, so changing this function only changes speed, never a model's meaning).

use std::fmt;

/// The fingerprint of a term.
pub type TermKey = u64;

const WORD_SEED: u64 = 0x9E37_79B9_7F4A_7C15;
const BIGRAM_SEED: u64 = 0xD6E8_FEB8_6659_FD93;
const MULTIPLIER: u64 = 0xFF51_AFD7_ED55_8CCD;
const HEADLINE_SEED: u64 = 0x8CB9_2BA7_2F3D_8DD7;

/// The character in front of a headline word's spelling ("^rates"). The tokenizer never puts it
/// in a word (it is neither a letter nor a digit), so no plain word is spelled like a headline word.
pub const HEADLINE_MARKER: char = '^';

/// The finaliser of MurmurHash3: every input bit affects every output bit.
#[inline]
fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    x ^= x >> 33;
    x = x.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
    x ^ (x >> 33)
}

/// The key of one word.
#[inline]
pub fn word_key(word: &str) -> TermKey {
    let bytes = word.as_bytes();
    let mut h = WORD_SEED ^ (bytes.len() as u64).wrapping_mul(MULTIPLIER);
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut block = [0u8; 8];
        block.copy_from_slice(chunk);
        h = (h ^ u64::from_le_bytes(block))
            .wrapping_mul(MULTIPLIER)
            .rotate_left(29);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut block = [0u8; 8];
        block[..rest.len()].copy_from_slice(rest);
        h = (h ^ u64::from_le_bytes(block))
            .wrapping_mul(MULTIPLIER)
            .rotate_left(29);
    }
    mix(h)
}

/// The key of a headline word, from the key of the same word in the body.
#[inline]
pub fn headline_key(word: TermKey) -> TermKey {
    mix(word ^ HEADLINE_SEED)
}

/// The key of a stored word spelling: a headline word's when it starts with [`HEADLINE_MARKER`].
fn stored_word_key(word: &str) -> TermKey {
    match word.strip_prefix(HEADLINE_MARKER) {
        Some(plain) => headline_key(word_key(plain)),
        None => word_key(word),
    }
}

/// The key of the bigram `first second`, from the keys of its words.
#[inline]
pub fn bigram_key(first: TermKey, second: TermKey) -> TermKey {
    mix(first.rotate_left(17).wrapping_mul(MULTIPLIER) ^ second ^ BIGRAM_SEED)
}

/// A term as the analyzer produces it: a word, or two neighbouring words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Term<'a> {
    /// One word.
    Word(&'a str),
    /// Two neighbouring words; spelled with one space between them.
    Bigram(&'a str, &'a str),
}

impl<'a> Term<'a> {
    /// Reads a term as stored in a model file: words never contain a space, so a space marks a
    /// bigram.
    pub fn parse(stored: &'a str) -> Self {
        match stored.split_once(' ') {
            Some((first, second)) => Term::Bigram(first, second),
            None => Term::Word(stored),
        }
    }

    /// Its fingerprint.
    pub fn key(&self) -> TermKey {
        match *self {
            Term::Word(word) => stored_word_key(word),
            Term::Bigram(first, second) => {
                bigram_key(stored_word_key(first), stored_word_key(second))
            }
        }
    }

    /// Appends its spelling to `out`.
    pub fn write_to(&self, out: &mut String) {
        match *self {
            Term::Word(word) => out.push_str(word),
            Term::Bigram(first, second) => {
                out.push_str(first);
                out.push(' ');
                out.push_str(second);
            }
        }
    }
}

impl fmt::Display for Term<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Term::Word(word) => f.write_str(word),
            Term::Bigram(first, second) => write!(f, "{first} {second}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_depend_on_every_byte_and_on_order() {
        let words = [
            "rate",
            "rates",
            "rat",
            "tare",
            "interest",
            "interests",
            "a",
            "b",
            "ab",
            "ba",
        ];
        let mut keys: Vec<TermKey> = words.iter().map(|w| word_key(w)).collect();
        keys.push(bigram_key(word_key("a"), word_key("b")));
        keys.push(bigram_key(word_key("b"), word_key("a")));
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), keys.len());
    }

    #[test]
    fn parsing_a_stored_term_gives_the_same_key() {
        let bigram = Term::Bigram("interest", "rate");
        assert_eq!(Term::parse(&bigram.to_string()).key(), bigram.key());
        assert_eq!(Term::parse("rate").key(), word_key("rate"));
        let headline = Term::Bigram("^interest", "^rate");
        assert_eq!(
            Term::parse(&headline.to_string()).key(),
            bigram_key(
                headline_key(word_key("interest")),
                headline_key(word_key("rate"))
            )
        );
        assert_eq!(Term::parse("^rate").key(), headline_key(word_key("rate")));
        assert_ne!(headline_key(word_key("rate")), word_key("rate"));
        assert_ne!(headline_key(word_key("rate")), word_key("^rate"));
    }

    #[test]
    fn no_collisions_among_many_generated_terms() {
        let mut keys = std::collections::HashSet::new();
        for i in 0..200_000u32 {
            assert!(keys.insert(word_key(&format!("w{i}"))));
        }
        for i in 0..200u32 {
            for j in 0..200u32 {
                let k = bigram_key(word_key(&format!("w{i}")), word_key(&format!("w{j}")));
                assert!(keys.insert(k), "{i} {j}");
            }
        }
    }
}
