//! Text analysis: turns raw text into the terms the model counts.
//!
//! Like tantivy's analyzers, an [`Analyzer`] is a tokenizer followed by a chain of small filters, each
//! its own type: [`tokenizer`] segments Unicode text into lower-cased word tokens, [`filters`] holds
//! the number normaliser, the English stop-word list and the light English stemmer, and the analyzer
//! optionally joins neighbouring words into bigrams. The settings ([`AnalyzerSettings`]) are stored in
//! every model, so a model always tokenizes the way it was trained.
//!
//! The hot path allocates nothing per token: tokens are written into reusable buffers and handed to
//! a callback as `&str`.

pub mod filters;
pub mod fingerprint;
pub mod tokenizer;

use std::cell::Cell;

use serde::{Deserialize, Serialize};

use filters::{is_stop_word, light_stem, NumberFilter};
use fingerprint::{bigram_key, word_key};
pub use fingerprint::{Term, TermKey};
use tokenizer::{Token, Tokenizer};

/// How tokens made of digits are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum NumberMode {
    /// Keep numbers as they are ("1987", "3.5").
    Keep,
    /// Replace each number by its shape: `#` followed by its digit count ("1987" becomes "#4").
    #[default]
    Shape,
    /// Drop numbers entirely.
    Drop,
}

/// Which stemmer the analyzer runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Stemming {
    /// No stemming.
    None,
    /// A light English suffix stripper (plurals, -ing, -ed, -ly); see [`filters::light_stem`].
    #[default]
    Light,
}

/// Settings of the analyzer; part of every model file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnalyzerSettings {
    /// Drop English stop words ("the", "of", …).
    pub stop_words: bool,
    /// Stemmer to apply after stop-word removal.
    pub stemming: Stemming,
    /// How numbers are normalised.
    pub numbers: NumberMode,
    /// Also emit word bigrams ("interest rates" as one term), joined by a space.
    pub bigrams: bool,
    /// Tokens shorter than this many characters are dropped (after stemming).
    pub min_token_chars: usize,
}

impl Default for AnalyzerSettings {
    fn default() -> Self {
        Self {
            stop_words: true,
            stemming: Stemming::Light,
            numbers: NumberMode::Shape,
            bigrams: true,
            min_token_chars: 2,
        }
    }
}

thread_local! {
    /// The two word buffers of [`Analyzer::for_each_term_key`], kept between calls so that
    /// analysing a text allocates nothing once its thread has analysed one before. (A call nested
    /// in another's callback finds them taken and starts with empty ones.)
    static WORD_BUFFERS: Cell<(String, String)> = const { Cell::new((String::new(), String::new())) };
}

/// Word buffers that grew past this (a text with a giant token) are freed rather than kept.
const MAX_KEPT_WORD_BYTES: usize = 1024;

/// Entries of the per-thread token cache of [`Analyzer::for_each_key`] (32 bytes each).
const TOKEN_CACHE_SLOTS: usize = 4096;

/// One remembered token: its bytes packed (see `filters::pack`; never 0 for a real token, which
/// has at least one letter or digit) and what the filter chain made of it.
#[derive(Debug, Clone, Copy, Default)]
struct CachedToken {
    token: u128,
    key: Option<TermKey>,
}

/// A direct-mapped cache from tokens to filter results, valid for one set of analyzer settings.
#[derive(Default)]
struct TokenCache {
    settings: Option<AnalyzerSettings>,
    entries: Vec<CachedToken>,
}

impl TokenCache {
    /// Empties the cache unless it was filled with these settings.
    fn use_settings(&mut self, settings: &AnalyzerSettings) {
        if self.settings.as_ref() != Some(settings) || self.entries.len() != TOKEN_CACHE_SLOTS {
            self.entries.clear();
            self.entries
                .resize(TOKEN_CACHE_SLOTS, CachedToken::default());
            self.settings = Some(settings.clone());
        }
    }

    /// The entry a packed token lives in.
    #[inline]
    fn slot(token: u128) -> usize {
        let folded = (token as u64) ^ ((token >> 64) as u64).rotate_left(23);
        (folded.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - TOKEN_CACHE_SLOTS.trailing_zeros()))
            as usize
    }
}

thread_local! {
    /// The token cache of [`Analyzer::for_each_key`], one per thread (a nested call finds it taken
    /// and starts with an empty one).
    static TOKEN_CACHE: Cell<TokenCache> = Cell::new(TokenCache::default());
}

/// A term handed over by [`Analyzer::for_each_cached_term`].
pub enum CachedTerm<'s, 't> {
    /// A word: its key, and its spelling on request.
    Word(TermKey, Spelling<'s, 't>),
    /// The bigram of the last two words handed over (their keys combined).
    Bigram(TermKey),
}

/// The spelling of a word of [`Analyzer::for_each_cached_term`], worked out on request: a word the
/// token cache knew was never written out or filtered.
pub struct Spelling<'s, 't> {
    analyzer: &'s Analyzer,
    numbers: NumberFilter,
    /// The token's buffer: the filtered word once `filtered`; before that, empty for an ASCII token
    /// still in the text, else the token as the tokenizer wrote it.
    word: &'s mut String,
    ascii: Option<tokenizer::AsciiRun<'t>>,
    filtered: bool,
}

impl Spelling<'_, '_> {
    /// What the filter chain left of the token: the word [`Analyzer::for_each_term_key`] spells.
    pub fn get(&mut self) -> &str {
        if !self.filtered {
            if let Some(run) = self.ascii {
                run.push_lower_to(self.word);
            }
            // The cache said the chain keeps this token, so it does so again.
            let _ = self.analyzer.filter(self.numbers, self.word);
            self.filtered = true;
        }
        self.word
    }
}

/// A tokenizer plus its filter chain, configured by [`AnalyzerSettings`].
#[derive(Debug, Clone)]
pub struct Analyzer {
    settings: AnalyzerSettings,
}

impl Analyzer {
    /// Builds an analyzer with the given settings.
    pub fn new(settings: AnalyzerSettings) -> Self {
        Self { settings }
    }

    /// The settings this analyzer was built with.
    pub fn settings(&self) -> &AnalyzerSettings {
        &self.settings
    }

    /// Calls `emit` with the fingerprint and the spelling of every term of `text`, in order: each
    /// word, followed (when bigrams are on) by the bigram it forms with the previous word. This is
    /// the hot path: nothing is allocated per term and no bigram is spelled out.
    pub fn for_each_term_key(&self, text: &str, mut emit: impl FnMut(TermKey, Term<'_>)) {
        let numbers = NumberFilter::new(self.settings.numbers);
        let mut tokens = Tokenizer::new(text);
        let (mut word, mut previous) = WORD_BUFFERS.with(Cell::take);
        let mut previous_key: Option<TermKey> = None;
        while tokens.next_into(&mut word) {
            let Some(key) = self.filter(numbers, &mut word) else {
                continue;
            };
            emit(key, Term::Word(&word));
            if self.settings.bigrams {
                if let Some(first) = previous_key {
                    emit(bigram_key(first, key), Term::Bigram(&previous, &word));
                }
                std::mem::swap(&mut previous, &mut word);
                previous_key = Some(key);
            }
        }
        if word.capacity().max(previous.capacity()) <= MAX_KEPT_WORD_BYTES {
            WORD_BUFFERS.with(|buffers| buffers.set((word, previous)));
        }
    }

    /// Calls `emit` with the fingerprint of every term of `text`, the same keys in the same order
    /// as [`Analyzer::for_each_term_key`], without their spellings: what scoring needs.
    ///
    /// Most tokens of a text are words seen many times before, so what the filter chain (numbers,
    /// stop words, stemmer, minimum length, fingerprint) makes of a token of up to 16 bytes is
    /// remembered in a small per-thread cache, keyed by the token's exact bytes. A repeated word
    /// then costs one table probe instead of the chain's data-dependent branches.
    #[inline]
    pub fn for_each_key(&self, text: &str, mut emit: impl FnMut(TermKey)) {
        self.for_each_cached_term(text, |term| match term {
            CachedTerm::Word(key, _) | CachedTerm::Bigram(key) => emit(key),
        });
    }

    /// The terms of [`Analyzer::for_each_term_key`], in the same order and with the same keys,
    /// through the token cache of [`Analyzer::for_each_key`]: a word's spelling is worked out only
    /// when the caller asks for it ([`Spelling::get`]), and a bigram comes without one (it is
    /// spelled by the two words handed over just before it). What training needs: every term's
    /// key, and the spelling of the few that are new to it.
    pub fn for_each_cached_term(&self, text: &str, mut emit: impl FnMut(CachedTerm<'_, '_>)) {
        let numbers = NumberFilter::new(self.settings.numbers);
        let mut tokens = Tokenizer::new(text);
        let (mut word, previous) = WORD_BUFFERS.with(Cell::take);
        let mut cache = TOKEN_CACHE.with(Cell::take);
        cache.use_settings(&self.settings);
        let mut previous_key: Option<TermKey> = None;
        while let Some(token) = tokens.next_token(&mut word) {
            // A plain ASCII token is packed straight from the text and written out only when the
            // cache does not know it (or its spelling is asked for).
            let ascii = match token {
                Token::Ascii(run) => Some(run),
                Token::Written => None,
            };
            let packed = match ascii {
                Some(run) => run.packed_lower(),
                None => filters::pack(word.as_bytes()),
            };
            let mut filtered = true;
            let key = match packed {
                Some(packed) => {
                    let entry = &mut cache.entries[TokenCache::slot(packed)];
                    if entry.token == packed {
                        filtered = false;
                    } else {
                        if let Some(run) = ascii {
                            run.push_lower_to(&mut word);
                        }
                        *entry = CachedToken {
                            token: packed,
                            key: self.filter(numbers, &mut word),
                        };
                    }
                    entry.key
                }
                None => {
                    if let Some(run) = ascii {
                        run.push_lower_to(&mut word);
                    }
                    self.filter(numbers, &mut word)
                }
            };
            let Some(key) = key else {
                continue;
            };
            emit(CachedTerm::Word(
                key,
                Spelling {
                    analyzer: self,
                    numbers,
                    word: &mut word,
                    ascii,
                    filtered,
                },
            ));
            if self.settings.bigrams {
                if let Some(first) = previous_key {
                    emit(CachedTerm::Bigram(bigram_key(first, key)));
                }
                previous_key = Some(key);
            }
        }
        TOKEN_CACHE.with(|slot| slot.set(cache));
        if word.capacity() <= MAX_KEPT_WORD_BYTES {
            WORD_BUFFERS.with(|buffers| buffers.set((word, previous)));
        }
    }

    /// The filter chain on one token: `None` when it is dropped (a number in drop mode, a stop
    /// word, too short once stemmed), else the fingerprint of what is left of it (left in `word`).
    #[inline]
    fn filter(&self, numbers: NumberFilter, word: &mut String) -> Option<TermKey> {
        if !numbers.apply(word) {
            return None;
        }
        if self.settings.stop_words && is_stop_word(word) {
            return None;
        }
        if self.settings.stemming == Stemming::Light {
            light_stem(word);
        }
        let chars = if word.is_ascii() {
            word.len()
        } else {
            word.chars().count()
        };
        if chars < self.settings.min_token_chars {
            return None;
        }
        Some(word_key(word))
    }

    /// Calls `emit` with the spelling of every term of `text`, in the order of
    /// [`Analyzer::for_each_term_key`] (bigrams joined by one space).
    pub fn for_each_term(&self, text: &str, mut emit: impl FnMut(&str)) {
        let mut spelled = String::with_capacity(64);
        self.for_each_term_key(text, |_, term| match term {
            Term::Word(word) => emit(word),
            Term::Bigram(..) => {
                spelled.clear();
                term.write_to(&mut spelled);
                emit(&spelled);
            }
        });
    }

    /// Collects every term of `text` into owned strings (convenient for tests and tools; the
    /// scoring path uses [`Analyzer::for_each_term`]).
    pub fn terms(&self, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        self.for_each_term(text, |t| out.push(t.to_owned()));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain() -> AnalyzerSettings {
        AnalyzerSettings {
            stop_words: false,
            stemming: Stemming::None,
            numbers: NumberMode::Keep,
            bigrams: false,
            min_token_chars: 1,
        }
    }

    /// Settings the token-cache tests run under: the default, no filters at all, and numbers
    /// dropped with a larger minimum length (a cache filled under one must not answer for another).
    fn cache_test_settings() -> [AnalyzerSettings; 3] {
        [
            AnalyzerSettings::default(),
            plain(),
            AnalyzerSettings {
                numbers: NumberMode::Drop,
                min_token_chars: 3,
                ..AnalyzerSettings::default()
            },
        ]
    }

    #[test]
    fn unicode_words_are_lower_cased_and_split_on_punctuation() {
        let a = Analyzer::new(plain());
        assert_eq!(
            a.terms("Zürich, ÉTÉ! Москва—Київ; naïve café."),
            vec!["zürich", "été", "москва", "київ", "naïve", "café"]
        );
    }

    #[test]
    fn ascii_capitals_inside_words_are_lower_cased() {
        let a = Analyzer::new(plain());
        assert_eq!(
            a.terms("NATO allies met McDonald's CEO in G7-talks, x86ARM"),
            vec!["nato", "allies", "met", "mcdonald", "ceo", "in", "g7", "talks", "x86arm"]
        );
    }

    #[test]
    fn cjk_ideographs_become_single_character_terms() {
        let a = Analyzer::new(plain());
        assert_eq!(a.terms("東京 tokyo"), vec!["東", "京", "tokyo"]);
    }

    #[test]
    fn possessives_and_contractions() {
        let a = Analyzer::new(plain());
        assert_eq!(
            a.terms("Biden’s plan; Russia's army didn't"),
            vec!["biden", "plan", "russia", "army", "didnt"]
        );
    }

    #[test]
    fn numbers_keep_decimals_and_thousands_or_become_shapes() {
        let a = Analyzer::new(plain());
        assert_eq!(
            a.terms("3.5 pct of 1,200 mln."),
            vec!["3.5", "pct", "of", "1,200", "mln"]
        );
        let shaped = Analyzer::new(AnalyzerSettings {
            numbers: NumberMode::Shape,
            ..plain()
        });
        assert_eq!(
            shaped.terms("in 1987 rose 3.5 pct"),
            vec!["in", "#4", "rose", "#1", "pct"]
        );
        let dropped = Analyzer::new(AnalyzerSettings {
            numbers: NumberMode::Drop,
            ..plain()
        });
        assert_eq!(
            dropped.terms("in 1987 rose 3.5 pct"),
            vec!["in", "rose", "pct"]
        );
    }

    #[test]
    fn stop_words_stemming_and_bigrams() {
        let a = Analyzer::new(AnalyzerSettings::default());
        assert_eq!(
            a.terms("The central banks raised interest rates"),
            vec![
                "central",
                "bank",
                "central bank",
                "raise",
                "bank raise",
                "interest",
                "raise interest",
                "rate",
                "interest rate"
            ]
        );
    }

    #[test]
    fn empty_and_punctuation_only_input_give_no_terms() {
        let a = Analyzer::new(AnalyzerSettings::default());
        assert!(a.terms("").is_empty());
        assert!(a.terms(" \n\t—!?… ").is_empty());
    }

    #[test]
    fn huge_input_is_handled_in_one_pass() {
        let a = Analyzer::new(AnalyzerSettings::default());
        let text = "missile launch condemned. ".repeat(200_000);
        let mut n = 0usize;
        a.for_each_term(&text, |_| n += 1);
        // three unigrams and two bigrams per sentence, plus the bigrams across sentences
        assert_eq!(n, 200_000 * 6 - 1);
    }

    #[test]
    fn key_only_analysis_gives_the_same_keys_with_a_warm_or_stale_cache() {
        let mut text = String::from(
            "Zürich, ÉTÉ! Москва—Київ; naïve café. 東京 tokyo. Biden’s plan; Russia's army didn't \
             sell 3.5 pct of 1,200 mln in 1987. The central banks raised interest rates, rates \
             rose; RATES ROSE. stopping hopped ponies classes quickly x86ARM a b c ",
        );
        // Pseudo-random words (bounded loop): repeats, long words past the cache's 16 bytes.
        let syllables = [
            "ra", "te", "s", "ing", "ed", "ly", "ies", "#", "1", "0.5", "the", "of",
        ];
        let mut state: u64 = 7;
        for i in 0..3000 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            for k in 0..(1 + (state >> 61)) {
                text.push_str(syllables[((state >> (8 * k + 3)) % 12) as usize]);
            }
            text.push(if i % 7 == 0 { '.' } else { ' ' });
        }
        let settings = cache_test_settings();
        // Twice over every settings in turn: cold, warm, and filled under other settings.
        for round in 0..2 {
            for s in &settings {
                let analyzer = Analyzer::new(s.clone());
                let mut expected = Vec::new();
                analyzer.for_each_term_key(&text, |key, _| expected.push(key));
                let mut got = Vec::new();
                analyzer.for_each_key(&text, |key| got.push(key));
                assert!(expected.len() > 1000, "{s:?}");
                assert_eq!(got, expected, "round {round}, {s:?}");
            }
        }
    }

    #[test]
    fn cached_terms_have_the_keys_and_spellings_of_the_plain_analysis() {
        let mut text = String::from(
            "Zürich, ÉTÉ! Москва—Київ; naïve café. 東京 tokyo. Biden’s plan; Russia's army didn't \
             sell 3.5 pct of 1,200 mln in 1987. The central banks raised interest rates, rates \
             rose; RATES ROSE. stopping hopped ponies classes quickly x86ARM a b c \
             internationalisation internationalisations ",
        );
        let mut state: u64 = 11;
        for i in 0..2000 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let words = [
                "rates", "Rising", "the", "1987", "ponies", "MISSILES", "naïve", "x",
            ];
            text.push_str(words[(state >> 60) as usize % words.len()]);
            text.push(if i % 5 == 0 { '.' } else { ' ' });
        }
        for s in cache_test_settings() {
            let analyzer = Analyzer::new(s.clone());
            let mut expected = Vec::new();
            analyzer.for_each_term_key(text.as_str(), |key, term| {
                expected.push((key, term.to_string()))
            });
            // Twice: a cold cache, then a warm one; the second time only every third word's
            // spelling is asked for, so hits and misses both skip the chain at times.
            for round in 0..2 {
                let mut got = Vec::new();
                let mut words: Vec<String> = Vec::new();
                let mut n = 0usize;
                analyzer.for_each_cached_term(text.as_str(), |term| match term {
                    CachedTerm::Word(key, mut spelling) => {
                        n += 1;
                        let word = if round == 0 || n.is_multiple_of(3) {
                            spelling.get().to_owned()
                        } else {
                            expected[got.len()].1.clone()
                        };
                        words.push(word.clone());
                        got.push((key, word));
                    }
                    CachedTerm::Bigram(key) => {
                        let bigram =
                            format!("{} {}", words[words.len() - 2], words[words.len() - 1]);
                        got.push((key, bigram));
                    }
                });
                assert!(expected.len() > 1000, "{s:?}");
                assert_eq!(got, expected, "round {round}, {s:?}");
            }
        }
    }
}
