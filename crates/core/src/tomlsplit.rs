//! Deserializing a large TOML document one top-level sub-table at a time.
//!
//! The `toml` crate holds a whole document's tokens, parser events and tree
//! in memory before it deserializes anything: about thirty times the text
//! (a 50 MB baseline took 1.6 GB). A baseline is almost all of one shape:
//! a short head (`schema`, `[suite]`, `[environment]`), then one group of
//! tables per case, `[cases."ID"]`, `[cases."ID".warm]`, `[[cases."ID".warm.runs]]`.
//! [`SplitDoc`] finds those groups with the lexer alone (no tree) and parses
//! each group as a document of its own only when the deserializer reaches
//! it, so one case's tree is alive at a time: loading then takes the text
//! and the finished structs, about twice the file.
//!
//! Each group is a verbatim slice of the text, so `toml` reads it exactly as
//! it reads the whole, and an error's position is the slice's plus its
//! offset: the messages name the same line, column and key path. (In a file
//! with several errors, another one than the whole-document parse would
//! name may be reported first: a syntax error in a later case does not
//! stop the deserializing of an earlier one.) A document of any other shape
//! (the groups interleaved, the table split also written in the head, keys
//! that cannot be read from the lexer) gets no [`SplitDoc`] and is parsed
//! whole, as are documents under [`SPLIT_MIN_BYTES`].

use std::ops::Range;

use serde::de::value::StrDeserializer;
use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml_parser::lexer::TokenKind;

/// Documents smaller than this are parsed whole: their tree is small, and
/// the whole-document parse stays the one path for every ordinary file.
pub const SPLIT_MIN_BYTES: usize = 1 << 20;

/// A document cut into its head and the groups of one top-level table.
#[derive(Debug)]
pub struct SplitDoc<'a> {
    text: &'a str,
    /// The head (everything before the first group), parsed.
    head: Spanned<DeTable<'a>>,
    /// The top-level key whose sub-tables are the groups (`cases`).
    key: String,
    /// Byte ranges of the groups in `text`, in document order.
    groups: Vec<Range<usize>>,
}

/// An error of a split document, its span in the whole text.
#[derive(Debug, Clone, PartialEq)]
pub struct SplitError {
    /// What went wrong.
    pub message: String,
    /// Where, as byte offsets in the whole text.
    pub span: Option<Range<usize>>,
    /// A syntax error (found parsing a group), which names no key path.
    pub syntax: bool,
}

impl SplitError {
    fn from_toml(e: &toml::de::Error, offset: usize, syntax: bool) -> SplitError {
        SplitError {
            message: e.message().to_string(),
            span: e.span().map(|s| s.start + offset..s.end + offset),
            syntax,
        }
    }

    fn or_span(mut self, span: &Range<usize>) -> SplitError {
        if self.span.is_none() {
            self.span = Some(span.clone());
        }
        self
    }
}

impl std::fmt::Display for SplitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SplitError {}

impl de::Error for SplitError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        SplitError { message: msg.to_string(), span: None, syntax: false }
    }
}

impl<'a> SplitDoc<'a> {
    /// Splits `text` when it is at least [`SPLIT_MIN_BYTES`] long and of the
    /// shape this module reads; `None` means: parse it whole.
    pub fn new(text: &'a str) -> Option<SplitDoc<'a>> {
        if text.len() < SPLIT_MIN_BYTES {
            return None;
        }
        SplitDoc::split(text)
    }

    /// [`SplitDoc::new`] at any size.
    pub fn split(text: &'a str) -> Option<SplitDoc<'a>> {
        let (head_end, key, groups) = find_groups(text)?;
        let head = DeTable::parse(&text[..head_end]).ok()?;
        // The head must not write to the split table itself (`[cases]`,
        // `cases.x = ...`): the whole-document parse merges those.
        if head.get_ref().contains_key(key.as_str()) {
            return None;
        }
        Some(SplitDoc { text, head, key, groups })
    }

    /// Deserializes the document, group by group.
    pub fn deserialize<T: de::DeserializeOwned>(self) -> Result<T, serde_path_to_error::Error<SplitError>> {
        serde_path_to_error::deserialize(self)
    }
}

/// Finds the groups: the end of the head, the split key, and each group's
/// range. `None` when the document is not of that shape.
fn find_groups(text: &str) -> Option<(usize, String, Vec<Range<usize>>)> {
    let source = toml_parser::Source::new(text);
    let mut tokens = source.lex().peekable();
    // Nesting of arrays and inline tables inside a value, where `[` at the
    // start of a line is not a header.
    let mut depth: usize = 0;
    let mut line_start = true;
    let mut split: Option<(usize, String)> = None;
    let mut groups: Vec<Range<usize>> = Vec::new();
    let mut group_ids: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut current: Option<String> = None;
    while let Some(token) = tokens.next() {
        match token.kind() {
            TokenKind::Newline => {
                line_start = depth == 0;
                continue;
            }
            TokenKind::Whitespace | TokenKind::Comment => continue,
            TokenKind::LeftSquareBracket if line_start && depth == 0 => {
                let start = token.span().start();
                let array = tokens.next_if(|t| t.kind() == TokenKind::LeftSquareBracket).is_some();
                let path = header_path(&source, &mut tokens)?;
                if array && tokens.next_if(|t| t.kind() == TokenKind::RightSquareBracket).is_none() {
                    return None;
                }
                match &split {
                    None if path.len() >= 2 => {
                        split = Some((start, path[0].clone()));
                    }
                    None => {}
                    Some((_, key)) if path.len() < 2 || &path[0] != key => return None,
                    Some(_) => {}
                }
                if split.is_some() {
                    let id = &path[1];
                    if current.as_ref() != Some(id) {
                        if !group_ids.insert(id.clone()) {
                            // The group was interrupted and goes on here.
                            return None;
                        }
                        if let Some(last) = groups.last_mut() {
                            last.end = start;
                        }
                        groups.push(start..text.len());
                        current = Some(id.clone());
                    }
                }
            }
            TokenKind::LeftSquareBracket | TokenKind::LeftCurlyBracket => depth += 1,
            TokenKind::RightSquareBracket | TokenKind::RightCurlyBracket => depth = depth.checked_sub(1)?,
            TokenKind::Eof => break,
            _ => {}
        }
        line_start = false;
    }
    let (head_end, key) = split?;
    (depth == 0).then_some((head_end, key, groups))
}

/// The keys of a table header, read up to its closing bracket(s).
fn header_path<'i>(
    source: &toml_parser::Source<'i>,
    tokens: &mut impl Iterator<Item = toml_parser::lexer::Token>,
) -> Option<Vec<String>> {
    let mut path = Vec::new();
    let mut want_key = true;
    for token in tokens.by_ref() {
        match token.kind() {
            TokenKind::Whitespace => {}
            TokenKind::Dot if !want_key => want_key = true,
            TokenKind::RightSquareBracket if !want_key => return Some(path),
            TokenKind::Atom | TokenKind::BasicString | TokenKind::LiteralString if want_key => {
                let raw = source.get(token)?;
                let mut key = String::new();
                let mut error: Option<toml_parser::ParseError> = None;
                raw.decode_key(&mut key, &mut error);
                if error.is_some() {
                    return None;
                }
                path.push(key);
                want_key = false;
            }
            _ => return None,
        }
    }
    None
}

impl<'de> de::Deserializer<'de> for SplitDoc<'de> {
    type Error = SplitError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SplitError> {
        let whole = 0..self.text.len();
        let (text, key, groups) = (self.text, self.key, self.groups);
        let head = self.head.into_inner().into_iter().collect::<Vec<_>>().into_iter();
        let access = RootAccess { head, pending: None, split: Some(Groups { text, key, groups }), value: None };
        visitor.visit_map(access).map_err(|e| e.or_span(&whole))
    }

    serde::forward_to_deserialize_any! {
        bool u8 u16 u32 u64 i8 i16 i32 i64 i128 u128 f32 f64 char str string seq bytes byte_buf map unit
        option newtype_struct struct enum ignored_any unit_struct tuple_struct tuple identifier
    }
}

/// The split table's groups, not parsed yet.
struct Groups<'a> {
    text: &'a str,
    key: String,
    groups: Vec<Range<usize>>,
}

/// What the root map yields next as a value.
enum RootValue<'a> {
    Head(Spanned<DeValue<'a>>),
    Split(Groups<'a>),
}

/// The root table: the head's entries with the split table among them, in
/// key order (that of the whole-document parse).
struct RootAccess<'a> {
    head: std::vec::IntoIter<(Spanned<toml::de::DeString<'a>>, Spanned<DeValue<'a>>)>,
    /// A head entry read ahead while looking for the split table's place.
    pending: Option<(Spanned<toml::de::DeString<'a>>, Spanned<DeValue<'a>>)>,
    split: Option<Groups<'a>>,
    value: Option<(String, RootValue<'a>)>,
}

impl<'de> MapAccess<'de> for RootAccess<'de> {
    type Error = SplitError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, SplitError> {
        let next = self.pending.take().or_else(|| self.head.next());
        let (name, span, value) = match (next, self.split.take()) {
            (Some((k, v)), Some(split)) if split.key.as_str() < k.get_ref().as_ref() => {
                self.pending = Some((k, v));
                (split.key.clone(), None, RootValue::Split(split))
            }
            (Some((k, v)), split) => {
                self.split = split;
                let span = k.span();
                (k.into_inner().into_owned(), Some(span), RootValue::Head(v))
            }
            (None, Some(split)) => (split.key.clone(), None, RootValue::Split(split)),
            (None, None) => return Ok(None),
        };
        let key = seed.deserialize(StrDeserializer::<SplitError>::new(&name)).map(Some);
        self.value = Some((name, value));
        key.map_err(|e| match span {
            Some(span) => e.or_span(&span),
            None => e,
        })
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, SplitError> {
        match self.value.take() {
            Some((_, RootValue::Head(v))) => {
                let span = v.span();
                seed.deserialize(ValueDeserializer::from(v))
                    .map_err(|e| SplitError::from_toml(&e, 0, false).or_span(&span))
            }
            Some((_, RootValue::Split(groups))) => seed.deserialize(groups),
            None => Err(de::Error::custom("a value was asked for before its key")),
        }
    }
}

impl<'de> de::Deserializer<'de> for Groups<'de> {
    type Error = SplitError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SplitError> {
        let first = self.groups.first().map_or(0..0, |g| g.start..g.start);
        let access = GroupAccess {
            groups: self.groups.into_iter(),
            text: self.text,
            key: self.key,
            entries: Vec::new().into_iter(),
            offset: 0,
            value: None,
        };
        visitor.visit_map(access).map_err(|e| e.or_span(&first))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, SplitError> {
        // Skipped without parsing a group (a reader of the head only).
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool u8 u16 u32 u64 i8 i16 i32 i64 i128 u128 f32 f64 char str string seq bytes byte_buf map unit
        option newtype_struct struct enum unit_struct tuple_struct tuple identifier
    }
}

type Entry<'a> = (Spanned<toml::de::DeString<'a>>, Spanned<DeValue<'a>>);

/// The split table's entries, one group parsed at a time.
struct GroupAccess<'a> {
    groups: std::vec::IntoIter<Range<usize>>,
    text: &'a str,
    key: String,
    /// The entries of the group parsed last.
    entries: std::vec::IntoIter<Entry<'a>>,
    /// Where that group starts in the text.
    offset: usize,
    value: Option<Spanned<DeValue<'a>>>,
}

impl<'a> GroupAccess<'a> {
    /// Parses the next group; false when none is left.
    fn next_group(&mut self) -> Result<bool, SplitError> {
        let Some(range) = self.groups.next() else { return Ok(false) };
        let offset = range.start;
        let mut root = DeTable::parse(&self.text[range]).map_err(|e| SplitError::from_toml(&e, offset, true))?;
        let entries = match root.get_mut().remove(self.key.as_str()).map(Spanned::into_inner) {
            Some(DeValue::Table(table)) => table.into_iter().collect::<Vec<_>>(),
            _ => Vec::new(),
        };
        self.entries = entries.into_iter();
        self.offset = offset;
        Ok(true)
    }
}

impl<'de> MapAccess<'de> for GroupAccess<'de> {
    type Error = SplitError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, SplitError> {
        loop {
            if let Some((k, v)) = self.entries.next() {
                let span = k.span();
                let offset = self.offset;
                let key = seed
                    .deserialize(StrDeserializer::<SplitError>::new(k.get_ref()))
                    .map_err(|e| e.or_span(&(span.start + offset..span.end + offset)))?;
                self.value = Some(v);
                return Ok(Some(key));
            }
            if !self.next_group()? {
                return Ok(None);
            }
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, SplitError> {
        let Some(v) = self.value.take() else { return Err(de::Error::custom("a value was asked for before its key")) };
        let span = v.span();
        let offset = self.offset;
        seed.deserialize(ValueDeserializer::from(v))
            .map_err(|e| SplitError::from_toml(&e, offset, false).or_span(&(span.start + offset..span.end + offset)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::Baseline;
    use crate::tomldoc::{parse_toml_split, parse_toml_whole};

    const V2: &str = include_str!("../../../baselines/sim-demo.toml");
    const V1: &str = include_str!("../../../fuzz/corpus/baseline/sim-demo.toml");

    /// `text` with its cases copied `copies` times under new ids.
    fn grow(text: &str, copies: usize) -> String {
        let at = text.find("\n[cases.").expect("a baseline with cases") + 1;
        let (head, cases) = text.split_at(at);
        let mut out = head.to_string();
        for i in 0..copies {
            out.push_str(&cases.replace("[cases.\"", &format!("[cases.\"r{i}-")));
        }
        out
    }

    /// Both parses of `text`, as `Baseline::parse` runs them (messages included).
    fn both(text: &str) -> (Result<Baseline, String>, Result<Baseline, String>) {
        let split =
            SplitDoc::split(text).unwrap_or_else(|| panic!("not splittable: {}", &text[text.len() / 2..][..300]));
        let whole = parse_toml_whole::<Baseline>(text, "b.toml");
        (parse_toml_split::<Baseline>(split, text, "b.toml"), whole)
    }

    #[test]
    fn a_large_baseline_is_split_and_reads_as_the_whole() {
        let text = grow(V2, 40);
        assert!(text.len() >= SPLIT_MIN_BYTES, "{}", text.len());
        assert!(SplitDoc::new(&text).is_some());
        assert!(SplitDoc::new(V2).is_none(), "a small file is parsed whole");
        let (split, whole) = both(&text);
        let (split, whole) = (split.unwrap(), whole.unwrap());
        assert_eq!(split.cases.len(), 8 * 40);
        assert_eq!(split, whole);
        // Through the public path too, version 1 included.
        assert_eq!(Baseline::parse(&text, "b.toml").unwrap(), whole);
        let v1 = grow(V1, 100);
        assert!(v1.len() >= SPLIT_MIN_BYTES);
        let small = Baseline::parse(V1, "v1.toml").unwrap();
        let big = Baseline::parse(&v1, "v1.toml").unwrap();
        assert_eq!(big.cases.len(), small.cases.len() * 100);
        assert_eq!(big.cases.values().next(), small.cases.values().next());
    }

    #[test]
    fn errors_name_the_same_line_column_and_key_as_the_whole_parse() {
        let text = grow(V2, 3);
        let middle = text.len() / 2;
        let at = |needle: &str| middle + text[middle..].find(needle).unwrap();
        let edits: Vec<(usize, usize, &str)> = vec![
            // A wrong type inside a case.
            (at("ttft_ms = [") + 11, 0, "\"x\", "),
            // A syntax error inside a case.
            (at("ttft_ms = [") + 11, 0, ",,"),
            // An unknown key in a case.
            (at("\nscenario = "), 0, "\nsenario = 1"),
            // A missing field in a case.
            (at("\nscenario = "), text[at("\nscenario = ") + 1..].find('\n').unwrap() + 1, ""),
            // A wrong type in the head, a missing field of the root.
            (text.find("seed = ").unwrap() + 7, 0, "\"x\" # "),
            (text.find("profile = ").unwrap(), text[text.find("profile = ").unwrap()..].find('\n').unwrap(), ""),
            // A table defined twice.
            (at("\n[cases.") + 1, 0, "[cases.\"new\"]\nscenario = \"x\"\n[cases.\"new\"]\n"),
        ];
        for (pos, cut, insert) in edits {
            let mut bad = text.clone();
            bad.replace_range(pos..pos + cut, insert);
            let (split, whole) = both(&bad);
            let (split, whole) = (split.unwrap_err(), whole.unwrap_err());
            assert_eq!(split, whole, "edit `{insert}` at {pos}");
            assert!(whole.starts_with("b.toml:"), "{whole}");
        }
    }

    #[test]
    fn one_edit_anywhere_gives_the_same_result_and_message_as_the_whole_parse() {
        let text = grow(V2, 2);
        let chars = ['[', ']', '"', '\'', '\n', '=', '.', '#', '{', '}', ',', 'x', '1', ' '];
        let mut rng = crate::rng::Rng::new(7);
        let mut split_n = 0;
        for _ in 0..400 {
            let mut bad = text.clone();
            let at = rng.below(bad.len() as u64) as usize;
            let at = (0..=at).rev().find(|&i| bad.is_char_boundary(i)).unwrap_or(0);
            bad.insert(at, *rng.pick(&chars));
            // Many edits unbalance a bracket or break the head: parsed whole.
            let Some(split) = SplitDoc::split(&bad) else { continue };
            split_n += 1;
            let split = parse_toml_split::<Baseline>(split, &bad, "b.toml");
            assert_eq!(split, parse_toml_whole::<Baseline>(&bad, "b.toml"), "{:?} at {at}", &bad[at..at + 1]);
        }
        assert!(split_n > 100, "{split_n}");
    }

    #[test]
    fn headers_inside_strings_and_arrays_are_not_headers() {
        let mut text = grow(V2, 2);
        let line = "output_text = \"";
        let at = text.find(line).unwrap() + line.len();
        text.replace_range(at..at, "\\n[cases.\\\"fake\\\"]\\n");
        let at = text.rfind("\noutput_text = ").unwrap();
        text.replace_range(at..at, "\nnotes = '''\n[cases.\"fake\"]\n'''");
        let (split, whole) = both(&text);
        assert_eq!(split, whole);
        let doc = "a = 1\n[t.x]\nv = [\n  [1],\n  [2],\n]\n[[t.y.z]]\nv = 1\n[[t.y.z]]\nv = { w = [3] }\n";
        let split = SplitDoc::split(doc).unwrap();
        assert_eq!(split.groups.len(), 2);
        let value: toml::Value = parse_toml_split(split, doc, "d").unwrap();
        assert_eq!(value, parse_toml_whole::<toml::Value>(doc, "d").unwrap());
    }

    #[test]
    fn other_shapes_are_parsed_whole() {
        for doc in [
            // Interleaved groups.
            "[t.a]\nx = 1\n[t.b]\nx = 1\n[t.a.c]\nx = 1\n",
            // The split table written in the head.
            "[t]\ny = 1\n[t.a]\nx = 1\n",
            "t.z = 1\n[t.a]\nx = 1\n",
            // Another top-level table after the groups.
            "[t.a]\nx = 1\n[u]\nx = 1\n",
            // No groups at all.
            "a = 1\n[b]\nc = 2\n",
            // Unbalanced brackets.
            "a = [1\n[t.a]\nx = 1\n",
        ] {
            assert!(SplitDoc::split(doc).is_none(), "{doc}");
        }
        let quoted = "[t.\"a\"]\nx = 1\n[t.'a'.b]\nx = 2\n[t.a.c]\nx = 3\n";
        assert_eq!(SplitDoc::split(quoted).unwrap().groups.len(), 1, "one key however it is quoted");
    }

    #[test]
    fn a_reader_of_the_head_only_parses_no_group() {
        #[derive(serde::Deserialize)]
        struct Header {
            schema: Option<String>,
        }
        let mut text = grow(V2, 2);
        text.push_str("[cases.\"zz\"]\nbroken = = 1\n");
        let header: Header = parse_toml_split(SplitDoc::split(&text).unwrap(), &text, "b").unwrap();
        assert_eq!(header.schema.as_deref(), Some("infergate.baseline.v2"));
    }
}
