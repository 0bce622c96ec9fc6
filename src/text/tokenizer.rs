//! Unicode word segmentation without regular expressions.
//!
//! A token is a maximal run of alphanumeric characters (any script), with three joins inside it:
//! an apostrophe between letters ("didn't" becomes "didnt"; a possessive "'s" is dropped), and a
//! `.` or `,` between digits ("3.5", "1,200"). CJK ideographs, which are written without spaces,
//! are one token each. Everything else separates tokens. Output is lower-cased.
//!
//! Most tokens of English text are plain runs of ASCII letters and digits. The text is read in
//! blocks of 64 bytes, each summed up in two bit masks (which bytes are ASCII letters or digits,
//! which are not ASCII), sixteen bytes per instruction with SSE2; a plain token's start and end
//! are then found by counting zero bits, a few instructions per token and no branch per byte. It
//! is handed over in place ([`Token::Ascii`]), so that a caller that only needs the token's packed
//! form (the key-only analysis behind scoring) never copies it. Everything else (joiners,
//! non-ASCII letters) is decoded and written out a character at a time, out of line.

/// Iterates over the lower-cased tokens of a text, writing each into a caller-owned buffer.
pub struct Tokenizer<'a> {
    text: &'a str,
    position: usize,
    /// Start of the 64-byte block of `text` that `word` and `high` describe (a multiple of
    /// [`BLOCK`]; `usize::MAX` before the first).
    block_start: usize,
    /// Bit `k`: byte `block_start + k` is an ASCII letter or digit.
    word: u64,
    /// Bit `k`: byte `block_start + k` is not ASCII. (Past the end of the text, neither.)
    high: u64,
}

/// A token found by [`Tokenizer::next_token`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Token<'a> {
    /// A token made of ASCII letters and digits only, still in the text (not lower-cased): most
    /// tokens of English text, handed over without being copied.
    Ascii(AsciiRun<'a>),
    /// Any other token, written lower-cased into the caller's buffer.
    Written,
}

/// A run of ASCII letters and digits: `text[start..end]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AsciiRun<'a> {
    text: &'a [u8],
    start: usize,
    end: usize,
}

impl<'a> AsciiRun<'a> {
    /// The run's length when it is made of digits only (a number as [`super::filters::is_number`]
    /// sees it: a run has no `.` or `,`), else `None`.
    #[inline(always)]
    pub fn digits(&self) -> Option<usize> {
        let run = &self.text[self.start..self.end];
        // Most runs are words: their first byte decides.
        match run.first() {
            Some(first) if first.is_ascii_digit() => {
                run.iter().all(u8::is_ascii_digit).then_some(run.len())
            }
            _ => None,
        }
    }

    /// Appends the run to `out`, lower-cased.
    pub fn push_lower_to(&self, out: &mut String) {
        // One table lookup per byte lower-cases it (no copy call, whose length dispatch
        // mispredicts on short words).
        for &b in &self.text[self.start..self.end] {
            out.push(char::from(ASCII_WORD_BYTE[usize::from(b)]));
        }
    }

    /// What `filters::pack` makes of the lower-cased run (its bytes zero-padded to 16,
    /// big-endian), computed from the text in one or two 8-byte words instead of being written
    /// out; `None` past 16 bytes.
    #[inline(always)]
    pub fn packed_lower(&self) -> Option<u128> {
        let len = self.end - self.start;
        // In a run of letters and digits, the letters are the bytes with bit 0x40 set; setting
        // their bit 0x20 lower-cases them. The first byte of the run is the lowest of a
        // little-endian word and must be the highest of the key.
        let key_half = |word: u64, bytes: usize| {
            u128::from((word | ((word & (ONES * 0x40)) >> 1)) & low_bytes(bytes)).swap_bytes()
        };
        if len <= 8 {
            if let Some(first) = load_word(self.text, self.start) {
                return Some(key_half(first, len));
            }
        } else if len <= 16 {
            if let (Some(first), Some(second)) = (
                load_word(self.text, self.start),
                load_word(self.text, self.start + 8),
            ) {
                return Some(key_half(first, 8) | key_half(second, len - 8) >> 64);
            }
        } else {
            return None;
        }
        // Near the end of the text: a byte at a time.
        let mut bytes = [0u8; 16];
        for (packed, &b) in bytes.iter_mut().zip(&self.text[self.start..self.end]) {
            *packed = ASCII_WORD_BYTE[usize::from(b)];
        }
        Some(u128::from_be_bytes(bytes))
    }
}

/// `0x01` in every byte of a word.
const ONES: u64 = 0x0101_0101_0101_0101;
/// `0x80` in every byte of a word.
#[cfg(any(not(target_arch = "x86_64"), test))]
const HIGHS: u64 = ONES * 0x80;

/// The 8 bytes of `text` from `i`, as a little-endian word (the first byte lowest); `None` when
/// fewer remain.
#[inline]
fn load_word(text: &[u8], i: usize) -> Option<u64> {
    let bytes: [u8; 8] = text.get(i..i.checked_add(8)?)?.try_into().ok()?;
    Some(u64::from_le_bytes(bytes))
}

/// A mask of the lowest `n` bytes of a word, for `n` in `1..=8`.
#[inline]
fn low_bytes(n: usize) -> u64 {
    u64::MAX >> (64 - 8 * n)
}

/// `0x80` in the place of every byte of `word` that is an ASCII letter or digit, 0 elsewhere
/// (eight bytes tested at once; the same answer as [`ASCII_WORD_BYTE`] being non-zero).
#[cfg(any(not(target_arch = "x86_64"), test))]
#[inline]
fn word_bytes(word: u64) -> u64 {
    // With each byte's top bit cleared, adding a constant below 0x80 to every byte never carries
    // into the next byte, and sets the top bit exactly when the byte reaches a bound.
    let low = word & !HIGHS;
    let at_least = |bound: u8| low_at_least(low, bound);
    let digit = at_least(b'0') & !at_least(b'9' + 1);
    // `| 0x20` maps A–Z onto a–z and nothing else onto a–z.
    let folded = low | (ONES * 0x20);
    let letter = low_at_least(folded, b'a') & !low_at_least(folded, b'z' + 1);
    (digit | letter) & !word & HIGHS
}

/// `0x80` in every byte of `low` (top bits clear) that is at least `bound` (at most 0x80).
#[cfg(any(not(target_arch = "x86_64"), test))]
#[inline]
fn low_at_least(low: u64, bound: u8) -> u64 {
    (low + ONES * u64::from(0x80 - bound)) & HIGHS
}

/// Bit `k` of the first mask is set where byte `k` of `block` is an ASCII letter or digit (where
/// [`ASCII_WORD_BYTE`] is non-zero), bit `k` of the second where it is not ASCII (0x80 or more).
#[cfg(target_arch = "x86_64")]
#[inline]
fn block_masks(block: &[u8; BLOCK]) -> (u64, u64) {
    crate::model::kernels::ascii_word_masks(block)
}

/// [`block_masks`] without SSE2.
#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn block_masks(block: &[u8; BLOCK]) -> (u64, u64) {
    block_masks_by_words(block)
}

/// [`block_masks`] eight bytes at a time in a 64-bit word, for processors without SSE2 (and
/// compared with the SSE2 version by a test).
#[cfg(any(not(target_arch = "x86_64"), test))]
#[inline]
fn block_masks_by_words(block: &[u8; BLOCK]) -> (u64, u64) {
    // Moves the top bit of each byte of `flags` (0x80 or 0) to bit `k` for byte `k`.
    let gather = |flags: u64| ((flags >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56) & 0xff;
    let (mut word, mut high) = (0u64, 0u64);
    for (k, lanes) in block.chunks_exact(8).enumerate() {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(lanes);
        let x = u64::from_le_bytes(bytes);
        word |= gather(word_bytes(x)) << (8 * k);
        high |= gather(x & HIGHS) << (8 * k);
    }
    (word, high)
}

/// Bytes per block of [`block_masks`].
const BLOCK: usize = crate::model::kernels::MASK_BLOCK;

/// Whether a byte is an ASCII letter or digit.
#[cfg(test)]
fn is_word_byte(b: u8) -> bool {
    ASCII_WORD_BYTE[usize::from(b)] != 0
}

/// For each byte: its lower-case form when it is an ASCII letter or digit, else 0.
static ASCII_WORD_BYTE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 128 {
        let byte = b as u8;
        if byte.is_ascii_alphanumeric() {
            table[b] = byte.to_ascii_lowercase();
        }
        b += 1;
    }
    table
};

fn is_apostrophe(c: char) -> bool {
    matches!(c, '\'' | '\u{2019}' | '\u{02BC}')
}

fn is_ideograph(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF      // hiragana, katakana
        | 0x3400..=0x4DBF    // CJK extension A
        | 0x4E00..=0x9FFF    // CJK unified ideographs
        | 0xAC00..=0xD7AF    // Hangul syllables
        | 0xF900..=0xFAFF    // CJK compatibility ideographs
        | 0x20000..=0x2FFFF) // CJK extensions B..
}

impl<'a> Tokenizer<'a> {
    /// Starts tokenizing `text`.
    pub fn new(text: &'a str) -> Self {
        Self {
            text,
            position: 0,
            block_start: usize::MAX,
            word: 0,
            high: 0,
        }
    }

    /// The first position from `from` whose bit is set in `flags(word, high)` (see the fields),
    /// or the end of the text. The masks of one block serve every token in it, so finding a
    /// token's start and end costs a few bit operations.
    #[inline(always)]
    fn find(&mut self, mut from: usize, flags: impl Fn(u64, u64) -> u64) -> usize {
        let len = self.text.len();
        // Bounded: each pass moves on to the next block, and the loop ends at the text's end.
        while from < len {
            let start = from & !(BLOCK - 1);
            if start != self.block_start {
                self.load_block(start);
            }
            let found = flags(self.word, self.high) & (u64::MAX << (from - start));
            if found != 0 {
                return (start + found.trailing_zeros() as usize).min(len);
            }
            from = start + BLOCK;
        }
        len
    }

    /// Computes the masks of the block that starts at `start` (the text's last block is padded
    /// with zero bytes, which are neither letters, digits nor non-ASCII).
    #[inline(never)]
    fn load_block(&mut self, start: usize) {
        let rest = self.text.as_bytes().get(start..).unwrap_or_default();
        (self.word, self.high) = match rest.first_chunk::<BLOCK>() {
            // Every block but the text's last: read in place, no copy.
            Some(block) => block_masks(block),
            None => {
                let mut block = [0u8; BLOCK];
                block[..rest.len()].copy_from_slice(rest);
                block_masks(&block)
            }
        };
        self.block_start = start;
    }

    /// The end of the run of ASCII letters and digits that starts at byte `start` (which is one).
    #[inline(always)]
    fn ascii_run(&mut self, start: usize) -> AsciiRun<'a> {
        let end = self.find(start + 1, |word, _| !word);
        AsciiRun {
            text: self.text.as_bytes(),
            start,
            end,
        }
    }

    /// The character starting at byte `i`, if any (ASCII without decoding).
    #[inline]
    fn char_at(&self, i: usize) -> Option<char> {
        let b = *self.text.as_bytes().get(i)?;
        if b < 0x80 {
            Some(char::from(b))
        } else {
            self.text.get(i..)?.chars().next()
        }
    }

    /// Writes the next token into `out` (cleared first) and returns true, or returns false at the end.
    pub fn next_into(&mut self, out: &mut String) -> bool {
        match self.next_token(out) {
            Some(Token::Ascii(run)) => {
                run.push_lower_to(out);
                true
            }
            Some(Token::Written) => true,
            None => false,
        }
    }

    /// Finds the next token; `None` at the end. `out` is cleared first, and holds the token when
    /// the answer is [`Token::Written`].
    #[inline(always)]
    pub fn next_token(&mut self, out: &mut String) -> Option<Token<'a>> {
        out.clear();
        let bytes: &'a [u8] = self.text.as_bytes();
        // ASCII separators (spaces, punctuation) are skipped by the block masks, without
        // decoding; what stops the skip is a letter or digit or a non-ASCII byte.
        let i = self.find(self.position, |word, high| word | high);
        // The common case: a run of ASCII letters and digits, found by the masks too. (Below the
        // text's end, `find` leaves the block of `i` loaded.) When what ends it joins nothing (a
        // space, a full stop after a letter, …), the run is the whole token and is handed over
        // as it stands, without being copied.
        if i < bytes.len() && (self.word >> (i - self.block_start)) & 1 == 1 {
            let run = self.ascii_run(i);
            let end = run.end;
            return match bytes.get(end) {
                // An apostrophe may join letters, `.` and `,` may join digits, and a non-ASCII
                // letter continues the word.
                Some(&b)
                    if b >= 0x80
                        || b == b'\''
                        || (matches!(b, b'.' | b',') && bytes[end - 1].is_ascii_digit()) =>
                {
                    self.continue_run(run, out);
                    Some(Token::Written)
                }
                _ => {
                    self.position = end;
                    Some(Token::Ascii(run))
                }
            };
        }
        self.next_other(i, out)
    }

    /// The rest of a token that starts with the ASCII `run` but goes on past it (a joiner or a
    /// non-ASCII letter follows), written into `out`. Out of line: most tokens never get here.
    #[inline(never)]
    fn continue_run(&mut self, run: AsciiRun<'a>, out: &mut String) {
        run.push_lower_to(out);
        let last = self.text.as_bytes()[run.end - 1];
        self.continue_token(out, char::from(last), run.end);
    }

    /// The token that starts with the first alphanumeric character from byte `i` (which is not
    /// ASCII, or the text's end), written into `out`; `None` at the end. Out of line, like
    /// [`Tokenizer::continue_run`].
    #[inline(never)]
    fn next_other(&mut self, mut i: usize, out: &mut String) -> Option<Token<'a>> {
        let first = loop {
            match self.char_at(i) {
                None => {
                    self.position = self.text.len();
                    return None;
                }
                Some(c) if c.is_alphanumeric() => break c,
                Some(c) => i += c.len_utf8(),
            }
        };
        if is_ideograph(first) {
            out.push(first);
            self.position = i + first.len_utf8();
            return Some(Token::Written);
        }
        push_lower(out, first);
        self.continue_token(out, first, i + first.len_utf8());
        Some(Token::Written)
    }

    /// Appends the lower-cased run of ASCII letters and digits starting at byte `start` (which is
    /// one) and returns where it ends.
    fn push_ascii_run(&mut self, start: usize, out: &mut String) -> usize {
        let run = self.ascii_run(start);
        run.push_lower_to(out);
        run.end
    }

    /// Continues the token in `out`, whose last character `previous` ends at byte `j`: appends
    /// the characters and joins that belong to it and moves past it.
    fn continue_token(&mut self, out: &mut String, mut previous: char, mut j: usize) {
        let bytes = self.text.as_bytes();
        let mut end = j;
        while let Some(c) = self.char_at(j) {
            if c.is_ascii_alphanumeric() {
                let k = self.push_ascii_run(j, out);
                previous = char::from(bytes[k - 1]);
                j = k;
                end = k;
                continue;
            }
            if c.is_alphanumeric() && !is_ideograph(c) {
                push_lower(out, c);
                previous = c;
                j += c.len_utf8();
                end = j;
                continue;
            }
            // A joiner needs an alphanumeric character on both sides.
            let joins_letters = is_apostrophe(c) && previous.is_alphabetic();
            let joins_digits = matches!(c, '.' | ',') && previous.is_ascii_digit();
            if !(joins_letters || joins_digits) {
                break;
            }
            let after = j + c.len_utf8();
            match self.char_at(after) {
                Some(next) if joins_letters && next.is_alphabetic() && !is_ideograph(next) => {
                    // Possessive "'s" at the end of a word: drop it.
                    let ends_word = !self.char_at(after + 1).is_some_and(|c| c.is_alphanumeric());
                    if (next == 's' || next == 'S') && ends_word {
                        end = after + 1;
                        break;
                    }
                    j = after;
                }
                Some(next) if joins_digits && next.is_ascii_digit() => {
                    out.push(c);
                    j = after;
                }
                _ => break,
            }
        }
        self.position = end;
    }
}

fn push_lower(out: &mut String, c: char) {
    if c.is_ascii() {
        out.push(c.to_ascii_lowercase());
    } else {
        out.extend(c.to_lowercase());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The segmentation rules of the module documentation, applied one character at a time.
    fn reference_tokens(text: &str) -> Vec<String> {
        let chars: Vec<char> = text.chars().collect();
        let is_word_char = |c: char| c.is_alphanumeric() && !is_ideograph(c);
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            i += 1;
            if !c.is_alphanumeric() {
                continue;
            }
            if is_ideograph(c) {
                tokens.push(c.to_string());
                continue;
            }
            let mut token: String = c.to_lowercase().collect();
            let mut previous = c;
            while let Some(&c) = chars.get(i) {
                if is_word_char(c) {
                    token.extend(c.to_lowercase());
                    previous = c;
                    i += 1;
                    continue;
                }
                let joins_letters = is_apostrophe(c) && previous.is_alphabetic();
                let joins_digits = matches!(c, '.' | ',') && previous.is_ascii_digit();
                let next = chars.get(i + 1).copied();
                if joins_letters && next.is_some_and(|n| n.is_alphabetic() && !is_ideograph(n)) {
                    let ends_word = !chars.get(i + 2).is_some_and(|c| c.is_alphanumeric());
                    if matches!(next, Some('s' | 'S')) && ends_word {
                        i += 2;
                        break;
                    }
                    i += 1;
                } else if joins_digits && next.is_some_and(|n| n.is_ascii_digit()) {
                    token.push(c);
                    i += 1;
                } else {
                    break;
                }
            }
            tokens.push(token);
        }
        tokens
    }

    fn tokens(text: &str) -> Vec<String> {
        let mut tokenizer = Tokenizer::new(text);
        let mut word = String::new();
        let mut out = Vec::new();
        while tokenizer.next_into(&mut word) {
            out.push(word.clone());
        }
        out
    }

    #[test]
    fn block_scans_agree_with_the_rules_at_every_alignment() {
        // Random texts of up to 255 bytes over letters of both cases, digits, joiners, separators,
        // non-ASCII letters and an ideograph: runs start and end at every place of a 64-byte
        // block, cross from one block into the next and end near the end of the text (bounded
        // loop).
        let alphabet: Vec<char> = "aZk09 .,'-é\u{c9}東\n\u{2019}sS".chars().collect();
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let len = (state >> 56) as usize;
            let mut text = String::new();
            let mut bits = state;
            for k in 0..len {
                if k % 12 == 11 {
                    bits = bits
                        .wrapping_mul(0x2545_f491_4f6c_dd1d)
                        .wrapping_add(k as u64);
                }
                // Mostly ASCII letters, so that long runs occur.
                let pick = (bits >> (5 * (k % 12))) & 31;
                text.push(match pick {
                    0..=13 => alphabet[(pick % 3) as usize],
                    14..=17 => 'x',
                    p => alphabet[(p as usize - 18 + 3) % alphabet.len()],
                });
            }
            assert_eq!(tokens(&text), reference_tokens(&text), "{text:?}");
        }
    }

    #[test]
    fn word_byte_flags_match_the_table_in_every_lane() {
        let mut state: u64 = 1;
        for byte in 0..=255u8 {
            for lane in 0..8 {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                let mask = 0xffu64 << (8 * lane);
                let word = (state & !mask) | (u64::from(byte) << (8 * lane));
                let flags = word_bytes(word);
                for k in 0..8 {
                    let b = (word >> (8 * k)) as u8;
                    let flagged = (flags >> (8 * k)) & 0xff == 0x80;
                    assert_eq!(flagged, ASCII_WORD_BYTE[usize::from(b)] != 0, "byte {b:#x}");
                }
            }
        }
    }

    #[test]
    fn block_masks_match_the_table_at_every_position() {
        let mut state: u64 = 7;
        for byte in 0..=255u8 {
            for position in 0..BLOCK {
                let mut block = [0u8; BLOCK];
                for b in block.iter_mut() {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    *b = (state >> 56) as u8;
                }
                block[position] = byte;
                let masks = block_masks(&block);
                assert_eq!(
                    masks,
                    block_masks_by_words(&block),
                    "byte {byte:#x} at {position}"
                );
                for (k, &b) in block.iter().enumerate() {
                    assert_eq!(masks.0 >> k & 1 == 1, is_word_byte(b), "byte {b:#x} at {k}");
                    assert_eq!(masks.1 >> k & 1 == 1, b >= 0x80, "byte {b:#x} at {k}");
                }
            }
        }
    }

    #[test]
    fn packed_runs_equal_the_packed_lower_cased_words() {
        let text = b"AbCdEfGhIjKlMnOpQrStUvWxYz0123456789aBcDeFgHiJkLmNoPqRsT";
        for start in 0..text.len() {
            for end in start + 1..=text.len() {
                let run = AsciiRun { text, start, end };
                let lower = text[start..end].to_ascii_lowercase();
                assert_eq!(
                    run.packed_lower(),
                    crate::text::filters::pack(&lower),
                    "{start}..{end}"
                );
                let mut written = String::new();
                run.push_lower_to(&mut written);
                assert_eq!(written.as_bytes(), lower.as_slice());
            }
        }
    }
}
