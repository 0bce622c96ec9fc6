//! Unicode word segmentation without regular expressions.
//!
//! A token is a maximal run of alphanumeric characters (any script), with three joins inside it:
//! an apostrophe between letters ("didn't" becomes "didnt"; a possessive "'s" is dropped), and a
//! `.` or `,` between digits ("3.5", "1,200"). CJK ideographs, which are written without spaces,
//! are one token each. Everything else separates tokens. Output is lower-cased.

/// Iterates over the lower-cased tokens of a text, writing each into a caller-owned buffer.
pub struct Tokenizer<'a> {
    text: &'a str,
    position: usize,
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
        Self { text, position: 0 }
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
        out.clear();
        let bytes = self.text.as_bytes();
        let mut i = self.position;
        // ASCII separators (spaces, punctuation) are skipped a byte at a time, without decoding.
        while let Some(&b) = bytes.get(i) {
            if b >= 0x80 || ASCII_WORD_BYTE[usize::from(b)] != 0 {
                break;
            }
            i += 1;
        }
        // The common case: a run of ASCII letters and digits. One table lookup per byte both tests
        // and lower-cases it (no per-run copy call, whose length dispatch mispredicts on short
        // words). When an ASCII separator that joins nothing ends it, the token is complete.
        if bytes
            .get(i)
            .is_some_and(|&b| ASCII_WORD_BYTE[usize::from(b)] != 0)
        {
            let end = self.push_ascii_run(i, out);
            return match bytes.get(end) {
                Some(&b) if b >= 0x80 || matches!(b, b'\'' | b'.' | b',') => {
                    self.continue_token(out, char::from(bytes[end - 1]), end)
                }
                _ => {
                    self.position = end;
                    true
                }
            };
        }
        let first = loop {
            match self.char_at(i) {
                None => {
                    self.position = self.text.len();
                    return false;
                }
                Some(c) if c.is_alphanumeric() => break c,
                Some(c) => i += c.len_utf8(),
            }
        };
        if is_ideograph(first) {
            out.push(first);
            self.position = i + first.len_utf8();
            return true;
        }
        push_lower(out, first);
        self.continue_token(out, first, i + first.len_utf8())
    }

    /// Appends the lower-cased run of ASCII letters and digits starting at byte `start` (which is
    /// one) and returns where it ends.
    #[inline]
    fn push_ascii_run(&self, start: usize, out: &mut String) -> usize {
        let bytes = self.text.as_bytes();
        let mut k = start;
        while let Some(&b) = bytes.get(k) {
            let lower = ASCII_WORD_BYTE[usize::from(b)];
            if lower == 0 {
                break;
            }
            out.push(char::from(lower));
            k += 1;
        }
        k
    }

    /// Continues the token in `out`, whose last character `previous` ends at byte `j`: appends
    /// the characters and joins that belong to it, moves past it and returns true.
    fn continue_token(&mut self, out: &mut String, mut previous: char, mut j: usize) -> bool {
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
        true
    }
}

fn push_lower(out: &mut String, c: char) {
    if c.is_ascii() {
        out.push(c.to_ascii_lowercase());
    } else {
        out.extend(c.to_lowercase());
    }
}
