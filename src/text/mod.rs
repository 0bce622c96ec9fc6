//! Text analysis: turns raw text into the terms the model counts.
//!
//! Like tantivy's analyzers, an [`Analyzer`] is a tokenizer followed by a chain of small filters, each
//! its own type: [`tokenizer`] segments Unicode text into lower-cased word tokens, [`filters`] holds
//! the number normaliser, the English stop-word list and the light English stemmer, and the analyzer
//! optionally joins neighbouring words into bigrams. A document's short first line, its [`headline`],
//! is then read once more as headline terms of their own ("^rate"). The settings
//! ([`AnalyzerSettings`]) are stored in every model, so a model always tokenizes the way it was
//! trained.
//!
//! The hot path allocates nothing per token: tokens are written into reusable buffers and handed to
//! a callback as `&str`.

pub mod filters;
pub mod fingerprint;
pub mod tokenizer;

use std::cell::Cell;
use std::thread::LocalKey;

use serde::{Deserialize, Serialize};

use filters::{is_number, is_stop_word, light_stem, NumberFilter, MAX_SHAPE_DIGITS};
use fingerprint::{bigram_key, headline_key, word_key};
pub use fingerprint::{Term, TermKey, HEADLINE_MARKER};
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
    /// Also read a document's headline ([`headline`]) a second time, as headline terms of their
    /// own ("^rates"), with its stop words kept and its numbers dropped: a word in a headline says
    /// more about the topic than the same word in the body. (Off in models written before this
    /// setting existed.)
    #[serde(default)]
    pub headline: bool,
}

impl Default for AnalyzerSettings {
    fn default() -> Self {
        Self {
            stop_words: true,
            stemming: Stemming::Light,
            numbers: NumberMode::Shape,
            bigrams: true,
            min_token_chars: 2,
            headline: true,
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

/// Entries of the per-thread token cache of [`Analyzer::for_each_key`], what classification reads
/// (32 bytes each: half a megabyte per classifying thread, half of a core's second-level cache
/// here). A news collection has tens of thousands of different words; with a quarter as many
/// entries, R8 `eval` was 3–4% slower in alternating runs (README, "What was done": d8b220d).
const CLASSIFYING_CACHE_SLOTS: usize = 16384;

/// Entries of the per-thread token cache of [`Analyzer::for_each_cached_term`], what training
/// reads: there the cache shares the second-level cache with training's own large tables, and the
/// size above made ModApte-90 training about 3% slower.
const TRAINING_CACHE_SLOTS: usize = 4096;

/// One remembered token: its bytes packed (see `filters::pack`; never 0 for a real token, which
/// has at least one letter or digit) and what the filter chain made of it.
#[derive(Debug, Clone, Copy, Default)]
struct CachedToken {
    token: u128,
    filtered: Filtered,
}

/// What the filter chain makes of one token: the key of what is left of it, and whether the body
/// and a headline keep it (a headline keeps stop words and drops numbers).
#[derive(Debug, Clone, Copy, Default)]
struct Filtered {
    key: TermKey,
    in_body: bool,
    in_headline: bool,
}

impl Filtered {
    /// The term key for `pass`, `None` when the pass drops the token.
    #[inline(always)]
    fn key(self, pass: Pass) -> Option<TermKey> {
        match pass {
            Pass::Body => self.in_body.then_some(self.key),
            Pass::Headline => self.in_headline.then(|| headline_key(self.key)),
        }
    }
}

/// What a text handed to the analyzer is, which decides whether it can have a headline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextKind {
    /// A whole document: its short first line, if it has one, is its headline.
    Document,
    /// A part of a document (a paragraph): read without a headline.
    Paragraph,
}

/// Which part of a text one analysis pass reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// The whole text, as plain terms.
    Body,
    /// The headline, as headline terms.
    Headline,
}

/// The longest first line, in bytes, that is read as a headline. News headlines (those of the
/// Reuters-21578 training files) are well under it, while a first line this long is a lead
/// paragraph (the seed articles' first lines are nearly all longer).
pub const HEADLINE_MAX_BYTES: usize = 128;

/// The headline of a document: its first line (after any leading white space) when that line is
/// at most [`HEADLINE_MAX_BYTES`] long, the whole text when it is one line that short; `None`
/// when the first line is longer (a paragraph, not a headline).
pub fn headline(text: &str) -> Option<&str> {
    let rest = text.trim_start();
    let window = &rest.as_bytes()[..rest.len().min(HEADLINE_MAX_BYTES + 1)];
    match window.iter().position(|&b| b == b'\n') {
        Some(end) => Some(&rest[..end]),
        None if rest.len() <= HEADLINE_MAX_BYTES => Some(rest),
        None => None,
    }
}

/// A direct-mapped cache from tokens to filter results, valid for one set of analyzer settings.
#[derive(Default)]
struct TokenCache {
    settings: Option<AnalyzerSettings>,
    entries: Vec<CachedToken>,
    /// What the filter chain makes of a number, by its digit count before any `.` (capped at
    /// [`MAX_SHAPE_DIGITS`]; index 0 is never used): with numbers shaped or dropped that count is
    /// all that decides it. Numbers take this table instead of the entries: news has many
    /// different ones, each of which would cost a miss and could push a word out. `None` when
    /// numbers are kept as they are.
    number_shapes: Option<[Filtered; MAX_SHAPE_DIGITS + 1]>,
}

impl TokenCache {
    /// Empties the cache (and gives it `SLOTS` entries) unless it was filled with `analyzer`'s
    /// settings.
    fn use_settings<const SLOTS: usize>(&mut self, analyzer: &Analyzer) {
        let settings = &analyzer.settings;
        if self.settings.as_ref() != Some(settings) || self.entries.len() != SLOTS {
            self.entries.clear();
            self.entries.resize(SLOTS, CachedToken::default());
            self.number_shapes = analyzer.number_shapes();
            self.settings = Some(settings.clone());
        }
    }

    /// The entry a packed token lives in, in a cache of `SLOTS` entries (a power of two).
    #[inline]
    fn slot<const SLOTS: usize>(token: u128) -> usize {
        let folded = (token as u64) ^ ((token >> 64) as u64).rotate_left(23);
        (folded.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - SLOTS.trailing_zeros())) as usize
    }
}

thread_local! {
    /// The token caches of [`Analyzer::for_each_key`] and [`Analyzer::for_each_cached_term`], one
    /// of each per thread (a nested call finds its cache taken and starts with an empty one).
    static CLASSIFYING_CACHE: Cell<TokenCache> = Cell::new(TokenCache::default());
    static TRAINING_CACHE: Cell<TokenCache> = Cell::new(TokenCache::default());
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
    /// A headline word: spelled with [`HEADLINE_MARKER`] in front.
    headline: bool,
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
            if self.headline {
                self.word.insert(0, HEADLINE_MARKER);
            }
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

    /// Calls `emit` with the fingerprint and the spelling of every term of the document `text`, in
    /// order: each word, followed (when bigrams are on) by the bigram it forms with the previous
    /// word; then, when headlines are on and the text has one ([`headline`]), the same for the
    /// headline's words as headline terms. This is the hot path: nothing is allocated per term and
    /// no bigram is spelled out.
    pub fn for_each_term_key(&self, text: &str, mut emit: impl FnMut(TermKey, Term<'_>)) {
        let (mut word, mut previous) = WORD_BUFFERS.with(Cell::take);
        self.spelled_pass(text, Pass::Body, &mut word, &mut previous, &mut emit);
        if let Some(headline) = self.headline_of(text, TextKind::Document) {
            self.spelled_pass(
                headline,
                Pass::Headline,
                &mut word,
                &mut previous,
                &mut emit,
            );
        }
        if word.capacity().max(previous.capacity()) <= MAX_KEPT_WORD_BYTES {
            WORD_BUFFERS.with(|buffers| buffers.set((word, previous)));
        }
    }

    /// The headline the analysis reads after the body of `text`: none for a paragraph or with
    /// headlines off.
    fn headline_of<'t>(&self, text: &'t str, kind: TextKind) -> Option<&'t str> {
        match kind {
            TextKind::Document if self.settings.headline => headline(text),
            _ => None,
        }
    }

    /// One pass of [`Analyzer::for_each_term_key`] over `text`.
    fn spelled_pass(
        &self,
        text: &str,
        pass: Pass,
        word: &mut String,
        previous: &mut String,
        emit: &mut impl FnMut(TermKey, Term<'_>),
    ) {
        let numbers = NumberFilter::new(self.settings.numbers);
        let mut tokens = Tokenizer::new(text);
        let mut previous_key: Option<TermKey> = None;
        while tokens.next_into(word) {
            let Some(key) = self.filter(numbers, word).key(pass) else {
                continue;
            };
            if pass == Pass::Headline {
                word.insert(0, HEADLINE_MARKER);
            }
            emit(key, Term::Word(word));
            if self.settings.bigrams {
                if let Some(first) = previous_key {
                    emit(bigram_key(first, key), Term::Bigram(previous, word));
                }
                std::mem::swap(previous, word);
                previous_key = Some(key);
            }
        }
    }

    /// Calls `emit` with the fingerprint of every term of `text`, the same keys in the same order
    /// as [`Analyzer::for_each_term_key`], without their spellings: what scoring needs. A
    /// [`TextKind::Paragraph`] is read without a headline.
    ///
    /// Most tokens of a text are words seen many times before, so what the filter chain (numbers,
    /// stop words, stemmer, minimum length, fingerprint) makes of a token of up to 16 bytes is
    /// remembered in a small per-thread cache, keyed by the token's exact bytes. A repeated word
    /// then costs one table probe instead of the chain's data-dependent branches. A number, when
    /// numbers are shaped or dropped, is decided by its digit count alone and skips the cache.
    #[inline]
    pub fn for_each_key(&self, text: &str, kind: TextKind, mut emit: impl FnMut(TermKey)) {
        self.cached_terms::<CLASSIFYING_CACHE_SLOTS>(&CLASSIFYING_CACHE, text, kind, |term| {
            match term {
                CachedTerm::Word(key, _) | CachedTerm::Bigram(key) => emit(key),
            }
        });
    }

    /// The terms of [`Analyzer::for_each_term_key`], in the same order and with the same keys,
    /// through the token cache of [`Analyzer::for_each_key`]: a word's spelling is worked out only
    /// when the caller asks for it ([`Spelling::get`]), and a bigram comes without one (it is
    /// spelled by the two words handed over just before it). What training needs: every term's
    /// key, and the spelling of the few that are new to it.
    pub fn for_each_cached_term(&self, text: &str, emit: impl FnMut(CachedTerm<'_, '_>)) {
        self.cached_terms::<TRAINING_CACHE_SLOTS>(&TRAINING_CACHE, text, TextKind::Document, emit);
    }

    /// [`Analyzer::for_each_cached_term`] on a text of either kind, through the `SLOTS`-entry
    /// token cache kept in `cache_key`.
    #[inline]
    fn cached_terms<const SLOTS: usize>(
        &self,
        cache_key: &'static LocalKey<Cell<TokenCache>>,
        text: &str,
        kind: TextKind,
        mut emit: impl FnMut(CachedTerm<'_, '_>),
    ) {
        let (mut word, previous) = WORD_BUFFERS.with(Cell::take);
        let mut cache = cache_key.with(Cell::take);
        cache.use_settings::<SLOTS>(self);
        // Two inlined calls, so that each is compiled for its own pass.
        self.cached_pass::<SLOTS>(text, Pass::Body, &mut cache, &mut word, &mut emit);
        if let Some(headline) = self.headline_of(text, kind) {
            self.cached_pass::<SLOTS>(headline, Pass::Headline, &mut cache, &mut word, &mut emit);
        }
        cache_key.with(|slot| slot.set(cache));
        if word.capacity() <= MAX_KEPT_WORD_BYTES {
            WORD_BUFFERS.with(|buffers| buffers.set((word, previous)));
        }
    }

    /// One pass of [`Analyzer::cached_terms`] over `text`.
    #[inline(always)]
    fn cached_pass<const SLOTS: usize>(
        &self,
        text: &str,
        pass: Pass,
        cache: &mut TokenCache,
        word: &mut String,
        emit: &mut impl FnMut(CachedTerm<'_, '_>),
    ) {
        let numbers = NumberFilter::new(self.settings.numbers);
        let mut tokens = Tokenizer::new(text);
        let mut previous_key: Option<TermKey> = None;
        while let Some(token) = tokens.next_token(word) {
            // A plain ASCII token is packed straight from the text and written out only when the
            // cache does not know it (or its spelling is asked for).
            let ascii = match token {
                Token::Ascii(run) => Some(run),
                Token::Written => None,
            };
            // A number is decided by its digit count alone (see `TokenCache::number_shapes`).
            // (By reference: the table is 160 bytes, which a copy per token would move.)
            let number = cache.number_shapes.as_ref().and_then(|shapes| {
                let digits = match ascii {
                    Some(run) => run.digits().map(|n| n.min(MAX_SHAPE_DIGITS)),
                    None => filters::number_digits(word),
                };
                digits.map(|d| shapes[d])
            });
            let mut filtered = true;
            let outcome = if let Some(shaped) = number {
                // Like a cache hit: the spelling is worked out only on request.
                filtered = false;
                shaped
            } else {
                let packed = match ascii {
                    Some(run) => run.packed_lower(),
                    None => filters::pack(word.as_bytes()),
                };
                match packed {
                    Some(packed) => {
                        let entry = &mut cache.entries[TokenCache::slot::<SLOTS>(packed)];
                        if entry.token == packed {
                            filtered = false;
                        } else {
                            if let Some(run) = ascii {
                                run.push_lower_to(word);
                            }
                            *entry = CachedToken {
                                token: packed,
                                filtered: self.filter_packed(numbers, word, Some(packed)),
                            };
                        }
                        entry.filtered
                    }
                    None => {
                        if let Some(run) = ascii {
                            run.push_lower_to(word);
                        }
                        self.filter(numbers, word)
                    }
                }
            };
            let Some(key) = outcome.key(pass) else {
                continue;
            };
            if pass == Pass::Headline && filtered {
                word.insert(0, HEADLINE_MARKER);
            }
            emit(CachedTerm::Word(
                key,
                Spelling {
                    analyzer: self,
                    numbers,
                    word: &mut *word,
                    ascii,
                    filtered,
                    headline: pass == Pass::Headline,
                },
            ));
            if self.settings.bigrams {
                if let Some(first) = previous_key {
                    emit(CachedTerm::Bigram(bigram_key(first, key)));
                }
                previous_key = Some(key);
            }
        }
    }

    /// The filter chain on one token: numbers, stop words, stemmer, minimum length, fingerprint.
    /// What is left of the token stays in `word`. The body drops stop words; a headline keeps them
    /// (in "X to buy Y", "to" says a lot) but drops numbers (amounts and dates, not what the story
    /// is about). Neither keeps a number in drop mode or a token too short once stemmed.
    #[inline]
    fn filter(&self, numbers: NumberFilter, word: &mut String) -> Filtered {
        self.filter_packed(numbers, word, None)
    }

    /// [`Analyzer::filter`] of a token whose packed form (`filters::pack` of `word`) the caller
    /// already has, which the stop-word check then takes instead of packing the word again.
    #[inline]
    fn filter_packed(
        &self,
        numbers: NumberFilter,
        word: &mut String,
        packed: Option<u128>,
    ) -> Filtered {
        let number = is_number(word);
        if !numbers.apply(word) {
            return Filtered::default();
        }
        // Only a number can have been rewritten (into its shape) since it was packed.
        let stop_word = self.settings.stop_words
            && match packed {
                Some(packed) if !number => filters::is_packed_stop_word(packed),
                _ => is_stop_word(word),
            };
        if stop_word && !self.settings.headline {
            return Filtered::default();
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
            return Filtered::default();
        }
        Filtered {
            key: word_key(word),
            in_body: !stop_word,
            in_headline: !number,
        }
    }

    /// What [`Analyzer::filter`] makes of a number of each digit count (see
    /// `TokenCache::number_shapes`); `None` when numbers are kept as they are (each its own term).
    fn number_shapes(&self) -> Option<[Filtered; MAX_SHAPE_DIGITS + 1]> {
        if self.settings.numbers == NumberMode::Keep {
            return None;
        }
        let numbers = NumberFilter::new(self.settings.numbers);
        let mut word = String::new();
        Some(std::array::from_fn(|digits| {
            // Every number with this many digits before its `.` is shaped alike, so "1…1" stands
            // for them all (index 0, which no number has, gets the one-digit outcome).
            word.clear();
            word.extend(std::iter::repeat_n('1', digits.max(1)));
            self.filter(numbers, &mut word)
        }))
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
            headline: false,
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
        let a = Analyzer::new(AnalyzerSettings {
            headline: false,
            ..AnalyzerSettings::default()
        });
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
            "CENTRAL BANKS Raise Rates; Zürich didn't sell 3.5 pct\nZürich, ÉTÉ! Москва—Київ; naïve café. 東京 tokyo. Biden’s plan; Russia's army didn't \
             sell 3.5 pct of 1,200 mln in 1987. The central banks raised interest rates, rates \
             rose; RATES ROSE. stopping hopped ponies classes quickly x86ARM a b c ",
        );
        // Pseudo-random words (bounded loop): repeats, long words past the cache's 16 bytes, and
        // more different words than the classifying cache has entries, so that words evict others.
        let syllables = [
            "ra", "te", "s", "ing", "ed", "ly", "ies", "#", "1", "0.5", "the", "of",
        ];
        let mut state: u64 = 7;
        for i in 0..40_000 {
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
                analyzer.for_each_key(&text, TextKind::Document, |key| got.push(key));
                assert!(expected.len() > 1000, "{s:?}");
                assert_eq!(got, expected, "round {round}, {s:?}");
            }
        }
    }

    #[test]
    fn numbers_skip_the_cache_with_the_outcome_of_the_filter_chain() {
        // Every kind of number the tokenizer hands over (plain digit runs, decimals, thousands,
        // leading zeros, more than nine digits, more than the cache's 16 bytes), words that start
        // with a digit, in a headline (which drops numbers) and in the body, repeated so that the
        // second reading finds the cache warm.
        let numbers = "1 7 42 007 0.5 3.5 1,200 1,200.75 12345678 123456789 1234567890 \
                       98765432109876543210 2nd 3d f16 1987 10.0.1 5,5 0 00";
        let text = format!("Q3 profit 1,200 mln vs 987 in 1987\n{numbers}. {numbers}\n\n{numbers}");
        for numbers_mode in [NumberMode::Shape, NumberMode::Drop, NumberMode::Keep] {
            let settings = AnalyzerSettings {
                numbers: numbers_mode,
                ..AnalyzerSettings::default()
            };
            let analyzer = Analyzer::new(settings.clone());
            let mut expected = Vec::new();
            analyzer.for_each_term_key(&text, |key, term| expected.push((key, term.to_string())));
            assert!(expected.len() > 20, "{settings:?}");
            for round in 0..2 {
                let mut keys = Vec::new();
                analyzer.for_each_key(&text, TextKind::Document, |key| keys.push(key));
                let expected_keys: Vec<TermKey> = expected.iter().map(|(k, _)| *k).collect();
                assert_eq!(keys, expected_keys, "round {round}, {settings:?}");
                let mut spelled = Vec::new();
                let mut words: Vec<String> = Vec::new();
                analyzer.for_each_cached_term(&text, |term| match term {
                    CachedTerm::Word(key, mut spelling) => {
                        let word = spelling.get().to_owned();
                        spelled.push((key, word.clone()));
                        words.push(word);
                    }
                    CachedTerm::Bigram(key) => {
                        let n = words.len();
                        spelled.push((key, format!("{} {}", words[n - 2], words[n - 1])));
                    }
                });
                assert_eq!(spelled, expected, "round {round}, {settings:?}");
            }
        }
    }

    #[test]
    fn cached_terms_have_the_keys_and_spellings_of_the_plain_analysis() {
        let mut text = String::from(
            "  RATES ROSE in Zürich; the bank's x86ARM 1,200 mln\nZürich, ÉTÉ! Москва—Київ; naïve café. 東京 tokyo. Biden’s plan; Russia's army didn't \
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

    #[test]
    fn a_headline_is_a_short_first_line() {
        assert_eq!(
            headline("BANKS RAISE RATES\nThe central banks..."),
            Some("BANKS RAISE RATES")
        );
        assert_eq!(headline("\n  Short text only"), Some("Short text only"));
        assert_eq!(headline(""), Some(""));
        let long_line = "word ".repeat(30);
        assert_eq!(headline(&format!("{long_line}\nbody")), None);
        assert_eq!(headline(&long_line), None);
        let limit = "x".repeat(HEADLINE_MAX_BYTES);
        assert_eq!(headline(&format!("{limit}\nbody")), Some(limit.as_str()));
        assert_eq!(headline(&format!("{limit}x\nbody")), None);
    }

    #[test]
    fn headline_words_come_again_as_headline_terms_after_the_body() {
        let a = Analyzer::new(AnalyzerSettings::default());
        assert_eq!(
            a.terms("Banks raise rates\nCentral banks raised rates."),
            [
                "bank",
                "raise",
                "bank raise",
                "rate",
                "raise rate",
                "central",
                "rate central",
                "bank",
                "central bank",
                "raise",
                "bank raise",
                "rate",
                "raise rate",
                "^bank",
                "^raise",
                "^bank ^raise",
                "^rate",
                "^raise ^rate",
            ]
        );
        // A paragraph has no headline; neither has a document whose first line is long.
        let body_only = Analyzer::new(AnalyzerSettings {
            headline: false,
            ..AnalyzerSettings::default()
        });
        let mut keys = Vec::new();
        a.for_each_key("Banks raise rates\nbody", TextKind::Paragraph, |k| {
            keys.push(k)
        });
        let mut body_keys = Vec::new();
        body_only.for_each_term_key("Banks raise rates\nbody", |k, _| body_keys.push(k));
        assert_eq!(keys, body_keys);
        let long = format!("{}\nbody", "banks raise rates ".repeat(10));
        assert!(a.terms(&long).iter().all(|t| !t.contains(HEADLINE_MARKER)));
        // A headline keeps its stop words and drops its numbers.
        assert_eq!(
            a.terms("Rates up 5 pct\n"),
            [
                "rate",
                "pct",
                "rate pct",
                "^rate",
                "^up",
                "^rate ^up",
                "^pct",
                "^up ^pct"
            ]
        );
        // Without the setting (models written before it existed) nothing changes.
        let old: AnalyzerSettings = serde_json::from_str(
            r#"{"stop_words":true,"stemming":"light","numbers":"shape","bigrams":true,"min_token_chars":2}"#,
        )
        .expect("settings without the headline field");
        assert!(!old.headline);
        assert_eq!(
            Analyzer::new(old).terms("Banks raise rates"),
            ["bank", "raise", "bank raise", "rate", "raise rate"]
        );
    }
}
