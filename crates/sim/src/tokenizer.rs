//! The simulator's tokenizer: a fixed, BPE-like splitting rule.
//!
//! The simulator needs token counts that behave like a real tokenizer's
//! (roughly 3.5 to 4.5 characters per token on code-like English text) without
//! shipping a vocabulary or reaching the network. The rule is frozen, because
//! prompt lengths recorded in baselines depend on it:
//!
//! - a run of horizontal whitespace (space, tab, vertical tab, form feed)
//!   attaches to the piece that follows it; at the end of the text it is a
//!   piece of its own;
//! - a run of ASCII letters is split into pieces of at most 6 letters, so it
//!   costs `ceil(len / 6)` tokens;
//! - a run of ASCII digits is split into pieces of at most 3 digits, so it
//!   costs `ceil(len / 3)` tokens;
//! - a run of line breaks (`\n`, `\r`) is one token;
//! - every other ASCII character (punctuation, control) is one token;
//! - every non-ASCII character is one token.
//!
//! Concatenating the pieces gives back the text exactly.

/// Letters carried by one piece at most.
const LETTERS_PER_PIECE: usize = 6;
/// Digits carried by one piece at most.
const DIGITS_PER_PIECE: usize = 3;

/// The number of tokens in `text` under the rule in the module docs.
pub fn count(text: &str) -> usize {
    pieces(text).count()
}

/// The pieces (tokens) of `text`, in order; they concatenate back to `text`.
pub fn pieces(text: &str) -> Pieces<'_> {
    Pieces { text, pos: 0 }
}

/// Iterator over the pieces of a text; see [`pieces`].
#[derive(Debug, Clone)]
pub struct Pieces<'a> {
    text: &'a str,
    pos: usize,
}

fn is_hspace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | 0x0b | 0x0c)
}

fn is_newline(b: u8) -> bool {
    matches!(b, b'\n' | b'\r')
}

/// Byte length of the UTF-8 sequence that starts with `lead`.
fn utf8_len(lead: u8) -> usize {
    match lead {
        0xf0.. => 4,
        0xe0.. => 3,
        0xc0.. => 2,
        _ => 1,
    }
}

impl<'a> Iterator for Pieces<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let bytes = self.text.as_bytes();
        let len = bytes.len();
        let start = self.pos;
        if start >= len {
            return None;
        }
        let mut pos = start;
        while pos < len && is_hspace(bytes[pos]) {
            pos += 1;
        }
        if pos < len {
            let b = bytes[pos];
            if is_newline(b) {
                while pos < len && is_newline(bytes[pos]) {
                    pos += 1;
                }
            } else if b.is_ascii_alphabetic() {
                let run = pos;
                while pos < len && pos - run < LETTERS_PER_PIECE && bytes[pos].is_ascii_alphabetic() {
                    pos += 1;
                }
            } else if b.is_ascii_digit() {
                let run = pos;
                while pos < len && pos - run < DIGITS_PER_PIECE && bytes[pos].is_ascii_digit() {
                    pos += 1;
                }
            } else {
                // One ASCII character or one whole UTF-8 sequence; the text is
                // valid UTF-8, so the sequence ends on a char boundary.
                pos = (pos + utf8_len(b)).min(len);
            }
        }
        self.pos = pos;
        // `start` and `pos` are char boundaries by construction; `get` keeps a
        // logic slip from ever panicking.
        self.text.get(start..pos)
    }
}

/// A deterministic token id for a piece (FNV-1a, folded into a
/// 120,000-entry range above the 256 reserved ids).
pub fn piece_id(piece: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for &b in piece.as_bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    256 + h % 120_000
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &str) -> Vec<&str> {
        pieces(text).collect()
    }

    #[test]
    fn examples_follow_the_rule() {
        assert_eq!(count(""), 0);
        assert_eq!(split("hello world"), vec!["hello", " world"]);
        // 13 letters: ceil(13 / 6) = 3 pieces.
        assert_eq!(split("abcdefghijklm"), vec!["abcdef", "ghijkl", "m"]);
        // 7 digits: ceil(7 / 3) = 3 pieces.
        assert_eq!(split("1234567"), vec!["123", "456", "7"]);
        assert_eq!(split("fn f(x) {"), vec!["fn", " f", "(", "x", ")", " {"]);
        // A newline run is one piece; indentation attaches to the next word.
        assert_eq!(split("a\n\n    b"), vec!["a", "\n\n", "    b"]);
        assert_eq!(split("a  \r\nb"), vec!["a", "  \r\n", "b"]);
        // Trailing whitespace is a piece of its own.
        assert_eq!(split("a  "), vec!["a", "  "]);
        // Non-ASCII: one token per char, even multi-byte ones.
        assert_eq!(split("é→😀"), vec!["é", "→", "😀"]);
        assert_eq!(split(" héllo"), vec![" h", "é", "llo"]);
        assert_eq!(count("x1y"), 3);
    }

    #[test]
    fn pieces_concatenate_back() {
        let text = "  fn main() {\n\tlet x = 12345;\r\n    println!(\"héllo {x}\"); // ünïcødé 😀\n}\n  ";
        let joined: String = pieces(text).collect();
        assert_eq!(joined, text);
        assert!(pieces(text).all(|p| !p.is_empty()));
    }

    #[test]
    fn code_like_text_is_about_four_chars_per_token() {
        let text = "impl Iterator for Pieces { type Item = String; fn next(&mut self) -> \
                    Option<Self::Item> { let value = self.inner.next()?; Some(value.to_string()) } }\n\
                    The quick brown fox jumps over the lazy dog, then returns 42 results.\n";
        let ratio = text.len() as f64 / count(text) as f64;
        assert!((3.0..5.0).contains(&ratio), "ratio {ratio}");
    }

    #[test]
    fn large_prompt_is_counted() {
        let text = "let value = compute(input, 1024);\n".repeat(10_000);
        // "let", " value", " =", " comput", "e", "(", "input", ",", " 102", "4", ")", ";", "\n"
        assert_eq!(count(&text), 13 * 10_000);
    }

    #[test]
    fn ids_are_deterministic() {
        assert_eq!(piece_id(" value"), piece_id(" value"));
        assert_ne!(piece_id(" value"), piece_id(" valuf"));
        assert!(piece_id("x") >= 256);
    }
}
