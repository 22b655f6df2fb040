//! Reading one chunk of an OpenAI-compatible stream, cheaply.
//!
//! The measurement needs four things of a chunk: its `id`, its first choice
//! (the content and `finish_reason`), its `usage` and whether it carries an
//! `error`. A chunk also carries fields nobody reads (`object`, `created`,
//! `model`, `index`, `role`, `logprobs`...), and a full serde parse of every
//! one of them costs more than everything else the client does per chunk.
//!
//! [`parse`] therefore first tries a scan that reads only the wanted fields
//! and checks the rest is well-formed JSON without building anything. The scan
//! is deliberately narrow: whenever it meets anything it is not certain serde
//! would read the same way (an escape in a key, a non-ASCII byte outside the
//! wanted strings, a number where a count should be, a duplicate field, an
//! `error` object, deep nesting), it gives up and the chunk goes through the
//! full serde parse. So the result, and any error message, are exactly those
//! of serde; the scan only makes the common chunk cheap. Strings the output
//! text is made of are decoded by serde_json itself when they hold escapes.

use std::borrow::Cow;

use serde::Deserialize;

/// `usage` of a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct UsageMsg {
    /// Tokens of the prompt, as the server counted them.
    pub prompt_tokens: Option<u32>,
    /// Tokens generated so far (per chunk with continuous usage, else at the end).
    pub completion_tokens: Option<u32>,
}

/// One choice of a chunk: chat (`delta`) or completions (`text`).
#[derive(Debug, Default, PartialEq, Eq, Deserialize)]
pub struct ChoiceMsg<'a> {
    /// The chat API's increment.
    #[serde(borrow, default)]
    pub delta: Option<DeltaMsg<'a>>,
    /// The completions API's text.
    #[serde(borrow, default)]
    pub text: Option<Cow<'a, str>>,
    /// Why generation stopped, on the last choice-bearing chunk.
    #[serde(borrow, default)]
    pub finish_reason: Option<Cow<'a, str>>,
}

/// The `delta` of a chat choice.
#[derive(Debug, Default, PartialEq, Eq, Deserialize)]
pub struct DeltaMsg<'a> {
    /// Output text.
    #[serde(borrow, default)]
    pub content: Option<Cow<'a, str>>,
    /// A reasoning model's thinking text (vLLM, SGLang, llama.cpp).
    #[serde(borrow, default)]
    pub reasoning_content: Option<Cow<'a, str>>,
}

/// The whole chunk as serde reads it (the fallback).
#[derive(Deserialize)]
struct ChunkMsg<'a> {
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    choices: Option<Vec<ChoiceMsg<'a>>>,
    #[serde(default)]
    usage: Option<UsageMsg>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

/// What the measurement reads of one chunk.
#[derive(Debug, Default, PartialEq)]
pub struct Chunk<'a> {
    /// The response id.
    pub id: Option<Cow<'a, str>>,
    /// The first element of `choices`, when there is one.
    pub choice: Option<ChoiceMsg<'a>>,
    /// `usage`, when present and not null.
    pub usage: Option<UsageMsg>,
    /// A non-null `error` member.
    pub error: Option<serde_json::Value>,
}

/// Reads one chunk: the scan when it is sure, serde otherwise.
pub fn parse(data: &[u8]) -> Result<Chunk<'_>, serde_json::Error> {
    if let Some(chunk) = scan(data) {
        return Ok(chunk);
    }
    parse_full(data)
}

/// The full serde parse (what [`scan`] must agree with).
pub fn parse_full(data: &[u8]) -> Result<Chunk<'_>, serde_json::Error> {
    let msg: ChunkMsg<'_> = serde_json::from_slice(data)?;
    Ok(Chunk { id: msg.id, choice: msg.choices.and_then(|c| c.into_iter().next()), usage: msg.usage, error: msg.error })
}

/// The scan; `None` whenever serde has to decide.
pub fn scan(data: &[u8]) -> Option<Chunk<'_>> {
    let mut s = Scanner { b: data, i: 0 };
    let mut chunk = Chunk::default();
    let (mut seen_id, mut seen_choices, mut seen_usage, mut seen_error) = (false, false, false, false);
    s.object(|s, key| {
        match key {
            b"id" => {
                once(&mut seen_id)?;
                chunk.id = s.opt_string()?;
            }
            b"choices" => {
                once(&mut seen_choices)?;
                if !s.null() {
                    s.array(|s, index| {
                        let choice = s.choice()?;
                        if index == 0 {
                            chunk.choice = Some(choice);
                        }
                        Some(())
                    })?;
                }
            }
            b"usage" => {
                once(&mut seen_usage)?;
                if !s.null() {
                    chunk.usage = Some(s.usage()?);
                }
            }
            b"error" => {
                once(&mut seen_error)?;
                // An error object is rare and its text matters: serde reads it.
                if !s.null() {
                    return None;
                }
            }
            _ => s.skip(0)?,
        }
        Some(())
    })?;
    s.ws();
    (s.i == data.len()).then_some(chunk)
}

/// Marks a known field seen; a second one is serde's "duplicate field" error.
fn once(seen: &mut bool) -> Option<()> {
    if *seen {
        return None;
    }
    *seen = true;
    Some(())
}

/// Deepest nesting the scan follows (serde's own limit is 128).
const MAX_DEPTH: usize = 64;

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Scanner<'a> {
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    /// Skips whitespace and takes `c` if it comes next.
    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        self.ws();
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            Some(())
        } else {
            None
        }
    }

    /// Takes `null` if it comes next.
    fn null(&mut self) -> bool {
        self.ws();
        self.b[self.i..].starts_with(b"null") && {
            self.i += 4;
            true
        }
    }

    /// A string's bytes between the quotes, and whether it holds an escape.
    /// Control characters and invalid escapes give `None`.
    fn raw_string(&mut self) -> Option<(&'a [u8], bool)> {
        if !self.eat(b'"') {
            return None;
        }
        let start = self.i;
        let mut escaped = false;
        loop {
            let at = self.i + memchr::memchr2(b'"', b'\\', &self.b[self.i..])?;
            if self.b[self.i..at].iter().any(|&c| c < 0x20) {
                return None;
            }
            if self.b[at] == b'"' {
                self.i = at + 1;
                return Some((&self.b[start..at], escaped));
            }
            escaped = true;
            match self.b.get(at + 1)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.i = at + 2,
                b'u' => {
                    let hex = self.b.get(at + 2..at + 6)?;
                    if !hex.iter().all(u8::is_ascii_hexdigit) {
                        return None;
                    }
                    self.i = at + 6;
                }
                _ => return None,
            }
        }
    }

    /// A string whose value matters, decoded as serde decodes it.
    fn string(&mut self) -> Option<Cow<'a, str>> {
        let (raw, escaped) = self.raw_string()?;
        if escaped {
            // The quotes are the bytes around `raw`.
            let quoted = &self.b[self.i - raw.len() - 2..self.i];
            serde_json::from_slice::<String>(quoted).ok().map(Cow::Owned)
        } else {
            std::str::from_utf8(raw).ok().map(Cow::Borrowed)
        }
    }

    fn opt_string(&mut self) -> Option<Option<Cow<'a, str>>> {
        if self.null() { Some(None) } else { self.string().map(Some) }
    }

    /// A string nobody reads: plain ASCII only, no `\u` escape (serde's
    /// checks of those are left to serde).
    fn skip_string(&mut self) -> Option<()> {
        let (raw, escaped) = self.raw_string()?;
        if !raw.is_ascii() || (escaped && memchr::memmem::find(raw, b"\\u").is_some()) {
            return None;
        }
        Some(())
    }

    /// An object, calling `member` with the scanner at each value; keys with
    /// escapes or non-ASCII bytes give up.
    fn object(&mut self, mut member: impl FnMut(&mut Self, &[u8]) -> Option<()>) -> Option<()> {
        if !self.eat(b'{') {
            return None;
        }
        if self.eat(b'}') {
            return Some(());
        }
        loop {
            let (key, escaped) = self.raw_string()?;
            if escaped || !key.is_ascii() || !self.eat(b':') {
                return None;
            }
            member(self, key)?;
            if self.eat(b',') {
                continue;
            }
            return self.eat(b'}').then_some(());
        }
    }

    /// An array, calling `element` with the scanner at each element and its index.
    fn array(&mut self, mut element: impl FnMut(&mut Self, usize) -> Option<()>) -> Option<()> {
        if !self.eat(b'[') {
            return None;
        }
        if self.eat(b']') {
            return Some(());
        }
        let mut index = 0;
        loop {
            element(self, index)?;
            index += 1;
            if self.eat(b',') {
                continue;
            }
            return self.eat(b']').then_some(());
        }
    }

    /// Any value, checked and skipped.
    fn skip(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.ws();
        match *self.b.get(self.i)? {
            b'"' => self.skip_string(),
            b'{' => self.object(|s, _| s.skip(depth + 1)),
            b'[' => self.array(|s, _| s.skip(depth + 1)),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    /// A JSON number: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    fn number(&mut self) -> Option<()> {
        if self.b.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        match self.b.get(self.i)? {
            b'0' => self.i += 1,
            b'1'..=b'9' => {
                self.digits();
            }
            _ => return None,
        }
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return None;
            }
        }
        if let Some(b'e' | b'E') = self.b.get(self.i) {
            self.i += 1;
            if let Some(b'+' | b'-') = self.b.get(self.i) {
                self.i += 1;
            }
            if self.digits() == 0 {
                return None;
            }
        }
        Some(())
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
        self.i - start
    }

    /// A token count: `null` or a plain non-negative integer that fits a u32.
    fn count(&mut self) -> Option<Option<u32>> {
        if self.null() {
            return Some(None);
        }
        let start = self.i;
        let n = self.digits();
        let digits = &self.b[start..self.i];
        if n == 0 || n > 10 || (n > 1 && digits[0] == b'0') {
            return None;
        }
        // A fraction or exponent makes it a float: serde's type error.
        if let Some(b'.' | b'e' | b'E') = self.b.get(self.i) {
            return None;
        }
        let v = digits.iter().try_fold(0u64, |v, &d| Some(v * 10 + u64::from(d - b'0')))?;
        u32::try_from(v).ok().map(Some)
    }

    fn usage(&mut self) -> Option<UsageMsg> {
        let mut usage = UsageMsg { prompt_tokens: None, completion_tokens: None };
        let (mut seen_prompt, mut seen_completion) = (false, false);
        self.object(|s, key| {
            match key {
                b"prompt_tokens" => {
                    once(&mut seen_prompt)?;
                    usage.prompt_tokens = s.count()?;
                }
                b"completion_tokens" => {
                    once(&mut seen_completion)?;
                    usage.completion_tokens = s.count()?;
                }
                _ => s.skip(1)?,
            }
            Some(())
        })?;
        Some(usage)
    }

    fn choice(&mut self) -> Option<ChoiceMsg<'a>> {
        let mut choice = ChoiceMsg::default();
        let (mut seen_delta, mut seen_text, mut seen_finish) = (false, false, false);
        self.object(|s, key| {
            match key {
                b"delta" => {
                    once(&mut seen_delta)?;
                    if !s.null() {
                        choice.delta = Some(s.delta()?);
                    }
                }
                b"text" => {
                    once(&mut seen_text)?;
                    choice.text = s.opt_string()?;
                }
                b"finish_reason" => {
                    once(&mut seen_finish)?;
                    choice.finish_reason = s.opt_string()?;
                }
                _ => s.skip(2)?,
            }
            Some(())
        })?;
        Some(choice)
    }

    fn delta(&mut self) -> Option<DeltaMsg<'a>> {
        let mut delta = DeltaMsg::default();
        let (mut seen_content, mut seen_reasoning) = (false, false);
        self.object(|s, key| {
            match key {
                b"content" => {
                    once(&mut seen_content)?;
                    delta.content = s.opt_string()?;
                }
                b"reasoning_content" => {
                    once(&mut seen_reasoning)?;
                    delta.reasoning_content = s.opt_string()?;
                }
                _ => s.skip(3)?,
            }
            Some(())
        })?;
        Some(delta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scan either gives up or agrees with serde, on chunks real servers
    /// send and on the awkward cases around them.
    #[test]
    fn scan_agrees_with_serde_or_gives_up() {
        let cases: &[&str] = &[
            r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}"#,
            r#"{"id":"c","choices":[{"index":0,"delta":{"content":"a\nb \"q\" \u00e9 \ud83d\ude00"},"finish_reason":"length"}],"usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}}"#,
            r#"{"id":"c","choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3}}"#,
            r#"{"choices":[{"text":"ab"},{"text":"cd"}],"usage":{"completion_tokens":2}}"#,
            r#"{"choices":[{"delta":{"reasoning_content":"think","content":null}}]}"#,
            r#"{"choices":[{"delta":null,"text":null,"finish_reason":null}],"usage":null,"error":null,"id":null}"#,
            r#"  { "id" : "x" , "choices" : [ { "delta" : { "content" : "é" } } ] }  "#,
            r#"{"x":[1,-2.5e+3,0.0,true,false,null,{"y":[[]]},"s\\t"],"choices":null}"#,
            r#"{"model":"modèle","choices":[]}"#,
            r#"{"error":{"message":"out of memory","code":500}}"#,
            r#"{"id":"a","id":"b"}"#,
            r#"{"choices":"nope"}"#,
            r#"{"choices":[null]}"#,
            r#"{"choices":[[null,"t","stop"]]}"#,
            r#"{"usage":[1,2]}"#,
            r#"{"usage":{"completion_tokens":3.0}}"#,
            r#"{"usage":{"completion_tokens":-1}}"#,
            r#"{"usage":{"completion_tokens":4294967296}}"#,
            r#"{"usage":{"completion_tokens":4294967295}}"#,
            r#"{"usage":{"completion_tokens":01}}"#,
            r#"{"usage":{"completion_tokens":1e2}}"#,
            r#"{"x":01}"#,
            r#"{"x":1.}"#,
            r#"{"x":-}"#,
            r#"{"x":"\ud800"}"#,
            r#"{"\u0069d":"x"}"#,
            r#"{"id":"x"} trailing"#,
            r#"{"id":"x",}"#,
            r#"{"choices":[{"delta":{"content":"a"}},]}"#,
            r#"{"choices":[{"delta":{"content":5}}]}"#,
            r#"{"id":"bad \x"}"#,
            "{\"id\":\"ctl\u{1}\"}",
            r#"{not json"#,
            r#"[1,2]"#,
            r#""#,
            r#"{"#,
            r#"{"choices":[{"delta":{"content":"a"}}"#,
            r#"{"x":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}"#,
        ];
        for case in cases {
            let data = case.as_bytes();
            let full = parse_full(data).map_err(|e| e.to_string());
            if let Some(fast) = scan(data) {
                assert_eq!(Ok(&fast), full.as_ref(), "scan and serde differ on {case}");
            }
            assert_eq!(parse(data).map_err(|e| e.to_string()), full, "{case}");
        }
    }

    #[test]
    fn common_chunks_take_the_scan() {
        for case in [
            r#"{"id":"chatcmpl-sim-1","object":"chat.completion.chunk","created":1,"model":"sim","choices":[{"index":0,"delta":{"content":"tok "},"logprobs":null,"finish_reason":null}]}"#,
            r#"{"id":"c","choices":[{"index":0,"delta":{"content":"line\n"},"finish_reason":"stop"}]}"#,
            r#"{"id":"c","choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}}"#,
        ] {
            assert!(scan(case.as_bytes()).is_some(), "{case}");
        }
        let c = scan(br#"{"choices":[{"delta":{"content":"a\"b"}}]}"#).unwrap();
        assert_eq!(c.choice.unwrap().delta.unwrap().content.as_deref(), Some("a\"b"));
    }
}
