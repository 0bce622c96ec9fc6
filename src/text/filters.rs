//! The token filters of the analyzer chain: number normalisation, English stop words and a light
//! English stemmer. Each works in place on a token buffer.

use super::NumberMode;

/// Normalises number tokens according to a [`NumberMode`].
#[derive(Debug, Clone, Copy)]
pub struct NumberFilter {
    mode: NumberMode,
}

impl NumberFilter {
    /// A filter for the given mode.
    pub fn new(mode: NumberMode) -> Self {
        Self { mode }
    }

    /// Rewrites `token` in place; returns false when the token is to be dropped.
    pub fn apply(&self, token: &mut String) -> bool {
        if self.mode == NumberMode::Keep || !is_number(token) {
            return true;
        }
        match self.mode {
            NumberMode::Drop => false,
            NumberMode::Shape => {
                let digits = shape_digits(token);
                token.clear();
                token.push('#');
                token.push(char::from(b'0' + digits as u8));
                true
            }
            NumberMode::Keep => true,
        }
    }
}

/// The digits before the first `.` of a number (see [`is_number`]), at most [`MAX_SHAPE_DIGITS`]:
/// what the number becomes in [`NumberMode::Shape`] (`#` and that count); `None` for a token that
/// is not a number.
pub fn number_digits(token: &str) -> Option<usize> {
    is_number(token).then(|| shape_digits(token))
}

/// The digits of a number before its first `.`, at most [`MAX_SHAPE_DIGITS`].
fn shape_digits(number: &str) -> usize {
    number
        .bytes()
        .take_while(|&b| b != b'.')
        .filter(u8::is_ascii_digit)
        .count()
        .min(MAX_SHAPE_DIGITS)
}

/// The largest digit count a number shape spells (`#9` stands for nine digits or more).
pub const MAX_SHAPE_DIGITS: usize = 9;

/// Whether a token is a number: digits, with `.` or `,` inside. (Mixed tokens such as "2nd" or
/// "f16" are words.)
pub fn is_number(token: &str) -> bool {
    token.starts_with(|c: char| c.is_ascii_digit())
        && token
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b',')
}

/// English stop words, plus the calendar words and one- and two-digit number shapes of news
/// datelines ("WASHINGTON, Jan 21 —"), which say when a story was filed, not what it is about.
/// Sorted for binary search.
const STOP_WORDS: &[&str] = &[
    "#1",
    "#2",
    "a",
    "about",
    "above",
    "after",
    "again",
    "against",
    "all",
    "also",
    "am",
    "an",
    "and",
    "any",
    "apr",
    "april",
    "are",
    "as",
    "at",
    "aug",
    "august",
    "be",
    "because",
    "been",
    "before",
    "being",
    "below",
    "between",
    "both",
    "but",
    "by",
    "can",
    "could",
    "dec",
    "december",
    "did",
    "didnt",
    "do",
    "does",
    "doing",
    "dont",
    "down",
    "during",
    "each",
    "feb",
    "february",
    "few",
    "for",
    "fri",
    "friday",
    "from",
    "further",
    "had",
    "has",
    "have",
    "having",
    "he",
    "her",
    "here",
    "hers",
    "herself",
    "him",
    "himself",
    "his",
    "how",
    "i",
    "if",
    "in",
    "into",
    "is",
    "it",
    "its",
    "itself",
    "jan",
    "january",
    "jul",
    "july",
    "jun",
    "june",
    "just",
    "mar",
    "march",
    "me",
    "mon",
    "monday",
    "more",
    "most",
    "my",
    "myself",
    "no",
    "nor",
    "not",
    "nov",
    "november",
    "now",
    "oct",
    "october",
    "of",
    "off",
    "on",
    "once",
    "only",
    "or",
    "other",
    "our",
    "ours",
    "ourselves",
    "out",
    "over",
    "own",
    "said",
    "same",
    "sat",
    "saturday",
    "says",
    "sep",
    "sept",
    "september",
    "she",
    "should",
    "so",
    "some",
    "such",
    "sunday",
    "than",
    "that",
    "the",
    "their",
    "theirs",
    "them",
    "themselves",
    "then",
    "there",
    "these",
    "they",
    "this",
    "those",
    "through",
    "thu",
    "thursday",
    "to",
    "too",
    "tue",
    "tuesday",
    "under",
    "until",
    "up",
    "very",
    "was",
    "we",
    "wed",
    "wednesday",
    "were",
    "what",
    "when",
    "where",
    "which",
    "while",
    "who",
    "whom",
    "why",
    "will",
    "with",
    "would",
    "you",
    "your",
    "yours",
    "yourself",
    "yourselves",
];

/// Packs a token of at most 16 bytes into an integer that orders like the bytes (zero-padded).
#[inline]
pub(crate) fn pack(token: &[u8]) -> Option<u128> {
    if token.len() > 16 {
        return None;
    }
    let mut bytes = [0u8; 16];
    bytes[..token.len()].copy_from_slice(token);
    Some(u128::from_be_bytes(bytes))
}

/// Slots of [`StopWordSet`]: a power of two, at least four times the number of stop words, so that
/// a lookup almost always ends at its first slot.
const STOP_WORD_SLOTS: usize = 1024;

/// The stop words packed by [`pack`], in an open-addressing hash table (linear probing; 0 marks an
/// empty slot, which no packed word equals). One multiply and usually one 16-byte compare per
/// token, where a binary search took about eight unpredictable branches.
struct StopWordSet {
    slots: Vec<u128>,
}

impl StopWordSet {
    fn new(words: &[&str]) -> Self {
        let mut set = StopWordSet {
            slots: vec![0; STOP_WORD_SLOTS],
        };
        for key in words.iter().filter_map(|w| pack(w.as_bytes())) {
            let mut slot = Self::home(key);
            while set.slots[slot] != 0 && set.slots[slot] != key {
                slot = (slot + 1) % STOP_WORD_SLOTS;
            }
            set.slots[slot] = key;
        }
        set
    }

    #[inline]
    fn home(key: u128) -> usize {
        let folded = (key as u64) ^ ((key >> 64) as u64);
        // The top bits of a Fibonacci hash, as many as index the table.
        (folded.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - STOP_WORD_SLOTS.trailing_zeros()))
            as usize
    }

    #[inline]
    fn contains(&self, key: u128) -> bool {
        let mut slot = Self::home(key);
        // The table is at most a quarter full, so an empty slot ends every probe sequence.
        loop {
            match self.slots[slot] {
                0 => return false,
                k if k == key => return true,
                _ => slot = (slot + 1) % STOP_WORD_SLOTS,
            }
        }
    }
}

fn stop_word_set() -> &'static StopWordSet {
    static SET: std::sync::OnceLock<StopWordSet> = std::sync::OnceLock::new();
    SET.get_or_init(|| StopWordSet::new(STOP_WORDS))
}

/// [`is_stop_word`] of a token already packed by [`pack`] (or the tokenizer's equivalent).
#[inline]
pub fn is_packed_stop_word(packed: u128) -> bool {
    stop_word_set().contains(packed)
}

/// True when `token` (lower-case) is an English stop word. Compares packed integers, not strings.
#[inline]
pub fn is_stop_word(token: &str) -> bool {
    // Longer than any stop word: the common case for content words, decided without a lookup.
    if token.len() > 10 {
        return false;
    }
    pack(token.as_bytes()).is_some_and(|key| stop_word_set().contains(key))
}

/// `word.ends_with(suffix)` for short suffixes, as an inlined byte loop (no `memcmp` call).
#[inline]
fn ends(word: &[u8], suffix: &[u8]) -> bool {
    word.len() >= suffix.len()
        && word[word.len() - suffix.len()..]
            .iter()
            .zip(suffix)
            .all(|(a, b)| a == b)
}

fn ends_with_consonant_cluster_needing_e(stem: &[u8]) -> bool {
    // "rais" -> "raise", "pric" -> "price": restore a final e after these endings.
    let [.., a, b] = stem else {
        return false;
    };
    matches!(a, b'a' | b'i' | b'o' | b'u')
        && matches!(
            (a, b),
            (b'a' | b'i' | b'o' | b'u', b's')
                | (b'i', b'z')
                | (b'a' | b'i' | b'u', b'c')
                | (b'a' | b'i' | b'u', b't')
                | (b'a' | b'u', b'g')
                | (b'i' | b'a' | b'o', b'v')
        )
}

/// A light English stemmer in the spirit of Harman's S-stemmer, extended to -ing, -ed and -ly.
/// It only shortens ASCII-lower-case words of four letters or more and never allocates.
pub fn light_stem(token: &mut String) {
    let t = token.as_bytes();
    let n = t.len();
    // Every rule ends in s, g, d or y: dispatch on the last byte first, so that most words are
    // decided by one branch, before the loop that checks the whole word is lower-case ASCII.
    let last = match t {
        [_, _, _, .., last] => *last,
        _ => return,
    };
    if !matches!(last, b's' | b'g' | b'd' | b'y') || !t.iter().all(u8::is_ascii_lowercase) {
        return;
    }
    match last {
        b's' => {
            if ends(t, b"ies") && !ends(t, b"eies") && !ends(t, b"aies") {
                token.truncate(n - 3);
                token.push('y');
            } else if ends(t, b"sses") || ends(t, b"shes") || ends(t, b"ches") || ends(t, b"xes") {
                token.truncate(n - 2);
            } else if !matches!(t[n - 2], b's' | b'u' | b'i') {
                token.truncate(n - 1);
            }
        }
        b'g' if n >= 6 && ends(t, b"ing") => strip_verb_suffix(token, 3),
        b'd' if n >= 5 && ends(t, b"ed") && !ends(t, b"eed") => strip_verb_suffix(token, 2),
        b'y' if n >= 6 && ends(t, b"ly") => token.truncate(n - 2),
        _ => {}
    }
}

fn strip_verb_suffix(token: &mut String, suffix_len: usize) {
    token.truncate(token.len() - suffix_len);
    let bytes = token.as_bytes();
    let n = bytes.len();
    if n >= 2 && bytes[n - 1] == bytes[n - 2] && !matches!(bytes[n - 1], b'l' | b's' | b'z') {
        // "planned" -> "plan", "hitting" -> "hit"
        token.truncate(n - 1);
    } else if ends_with_consonant_cluster_needing_e(token.as_bytes()) {
        token.push('e');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_words_are_sorted_and_found() {
        assert!(STOP_WORDS.windows(2).all(|w| w[0] < w[1]));
        assert!(
            STOP_WORDS.iter().all(|w| w.len() <= 10),
            "is_stop_word skips longer tokens"
        );
        assert!(
            STOP_WORDS.len() * 4 <= STOP_WORD_SLOTS,
            "the stop-word table must stay at most a quarter full"
        );
        assert!(STOP_WORDS.iter().all(|w| is_stop_word(w)));
        for word in [
            "tariff",
            "thee",
            "th",
            "a1",
            "",
            "yourselve",
            "ourselvess",
            "été",
        ] {
            assert!(!is_stop_word(word), "{word:?} is not a stop word");
        }
    }

    #[test]
    fn packing_equals_the_zero_padded_big_endian_bytes_at_every_length() {
        let source: Vec<u8> = (1..=17).collect();
        for len in 0..=16 {
            let token = &source[..len];
            let mut padded = [0u8; 16];
            padded[..len].copy_from_slice(token);
            assert_eq!(
                pack(token),
                Some(u128::from_be_bytes(padded)),
                "length {len}"
            );
        }
        assert_eq!(pack(&source), None);
    }

    fn stem(word: &str) -> String {
        let mut s = word.to_owned();
        light_stem(&mut s);
        s
    }

    #[test]
    fn light_stemmer_conflates_common_inflections() {
        assert_eq!(stem("sanctions"), "sanction");
        assert_eq!(stem("sanctioned"), "sanction");
        assert_eq!(stem("policies"), "policy");
        assert_eq!(stem("taxes"), "tax");
        assert_eq!(stem("raised"), "raise");
        assert_eq!(stem("raising"), "raise");
        assert_eq!(stem("planned"), "plan");
        assert_eq!(stem("crisis"), "crisis");
        assert_eq!(stem("bonus"), "bonus");
        assert_eq!(stem("gas"), "gas");
        assert_eq!(stem("sharply"), "sharp");
    }

    #[test]
    fn numbers_become_shapes() {
        let f = NumberFilter::new(NumberMode::Shape);
        let mut t = String::from("1,200.50");
        assert!(f.apply(&mut t));
        assert_eq!(t, "#4");
        let mut w = String::from("2nd");
        assert!(f.apply(&mut w));
        assert_eq!(w, "2nd");
    }
}
