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

    /// Writes the next token into `out` (cleared first) and returns true, or returns false at the end.
    pub fn next_into(&mut self, out: &mut String) -> bool {
        out.clear();
        let rest = &self.text[self.position..];
        let mut chars = rest.char_indices().peekable();
        // Skip separators.
        let start = loop {
            match chars.next() {
                None => {
                    self.position = self.text.len();
                    return false;
                }
                Some((i, c)) if c.is_alphanumeric() => break (i, c),
                Some(_) => {}
            }
        };
        let (start_index, first) = start;
        if is_ideograph(first) {
            out.push(first);
            self.position += start_index + first.len_utf8();
            return true;
        }
        push_lower(out, first);
        let mut previous = first;
        let mut end = start_index + first.len_utf8();
        while let Some(&(i, c)) = chars.peek() {
            if c.is_alphanumeric() && !is_ideograph(c) {
                push_lower(out, c);
                previous = c;
                end = i + c.len_utf8();
                chars.next();
                continue;
            }
            // A joiner needs an alphanumeric character on both sides.
            let joins_letters = is_apostrophe(c) && previous.is_alphabetic();
            let joins_digits = matches!(c, '.' | ',') && previous.is_ascii_digit();
            if !(joins_letters || joins_digits) {
                break;
            }
            let mut lookahead = chars.clone();
            lookahead.next();
            match lookahead.peek() {
                Some(&(_, next)) if joins_letters && next.is_alphabetic() && !is_ideograph(next) => {
                    chars.next();
                    // Possessive "'s" at the end of a word: drop it.
                    let after_s = lookahead.clone().nth(1).map(|(_, c)| c);
                    if (next == 's' || next == 'S') && !after_s.is_some_and(|c| c.is_alphanumeric()) {
                        chars.next();
                        end = i + c.len_utf8() + 1;
                        break;
                    }
                }
                Some(&(_, next)) if joins_digits && next.is_ascii_digit() => {
                    out.push(c);
                    chars.next();
                }
                _ => break,
            }
        }
        self.position += end;
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
