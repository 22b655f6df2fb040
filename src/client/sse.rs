//! An incremental Server-Sent Events parser.
//!
//! Bytes arrive in arbitrary pieces from the socket; events may be split
//! anywhere, even between the `\r` and `\n` of one line ending. The parser
//! keeps only the unfinished line and the unfinished event between calls and
//! hands each complete event to a callback as a borrowed slice, so the hot
//! path allocates nothing per event. It follows the WHATWG rules: lines end in
//! `\n`, `\r\n` or `\r`; lines starting with `:` are comments; `data:` lines
//! of one event are joined with `\n`; a blank line dispatches the event.

/// One dispatched event, borrowed from the parser's buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event<'a> {
    /// The `event:` field, when the server named the event type.
    pub event: Option<&'a [u8]>,
    /// The event's data: its `data:` lines joined with `\n`.
    pub data: &'a [u8],
}

/// The stream broke a limit; the rest of it cannot be trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    /// One event (or one line) grew past the configured limit.
    #[error("an SSE event exceeded {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
}

/// Default bound on one event: real chunks are a few hundred bytes (a few KB
/// with per-chunk usage), so 1 MiB is far above any of them, and low enough
/// that a server streaming garbage without line breaks cannot exhaust memory
/// (a `huge-event` fault of 1 MiB breaks it).
pub const DEFAULT_MAX_EVENT_BYTES: usize = 1024 * 1024;

/// Incremental SSE parser; feed it with [`SseParser::push`], end with [`SseParser::finish`].
#[derive(Debug)]
pub struct SseParser {
    /// The current line, when it spans several pushes.
    line: Vec<u8>,
    /// Data of the event being built.
    data: Vec<u8>,
    /// Whether the event being built has at least one `data` line.
    has_data: bool,
    /// The `event:` field of the event being built.
    event: Vec<u8>,
    has_event: bool,
    /// The previous push ended in `\r`: a leading `\n` belongs to that line end.
    skip_lf: bool,
    max_event_bytes: usize,
}

impl Default for SseParser {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_EVENT_BYTES)
    }
}

impl SseParser {
    /// A parser that rejects events larger than `max_event_bytes`.
    pub fn new(max_event_bytes: usize) -> Self {
        Self {
            line: Vec::new(),
            data: Vec::new(),
            has_data: false,
            event: Vec::new(),
            has_event: false,
            skip_lf: false,
            max_event_bytes,
        }
    }

    /// Feeds bytes; calls `on_event` for every event they complete.
    pub fn push<F: FnMut(Event<'_>)>(&mut self, mut bytes: &[u8], mut on_event: F) -> Result<(), SseError> {
        // An empty push says nothing yet; any other consumes the pending `\n`
        // (or shows there is none), so a second `\n` is a line end of its own.
        if self.skip_lf && !bytes.is_empty() {
            self.skip_lf = false;
            if let Some(rest) = bytes.strip_prefix(b"\n") {
                bytes = rest;
            }
        }
        // The data of an event's first `data:` line, borrowed from `bytes`
        // while the event has no other: an event that arrives whole in one
        // push (nearly all of them) is handed out without being copied.
        let mut first_data: Option<&[u8]> = None;
        while let Some(pos) = memchr::memchr2(b'\n', b'\r', bytes) {
            let ending = bytes[pos];
            let mut next = pos + 1;
            if ending == b'\r' {
                match bytes.get(next) {
                    Some(b'\n') => next += 1,
                    Some(_) => {}
                    // The matching `\n` may arrive with the next push.
                    None => self.skip_lf = true,
                }
            }
            if self.line.is_empty() {
                self.process_borrowed_line(&bytes[..pos], &mut first_data, &mut on_event)?;
            } else {
                self.check_size(self.line.len() + pos)?;
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(&bytes[..pos]);
                let result = self.process_line(&line, &mut on_event);
                line.clear();
                self.line = line;
                result?;
            }
            bytes = &bytes[next..];
        }
        self.keep(&mut first_data);
        if !bytes.is_empty() {
            self.check_size(self.line.len() + bytes.len())?;
            self.line.extend_from_slice(bytes);
        }
        Ok(())
    }

    /// Ends the stream. An event cut off before its blank line (or a last line
    /// without a line ending) is still dispatched, since some servers end the
    /// stream without the final blank line; returns whether that happened, so
    /// the caller can treat a broken tail as a cut stream rather than a
    /// malformed event.
    pub fn finish<F: FnMut(Event<'_>)>(&mut self, mut on_event: F) -> Result<bool, SseError> {
        let mut flushed = false;
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.process_line(&line, &mut on_event)?;
            flushed = true;
        }
        if self.has_data {
            self.dispatch(&mut on_event);
            flushed = true;
        }
        self.reset_event();
        Ok(flushed)
    }

    /// Whether bytes of an unfinished event or line are buffered.
    pub fn has_pending(&self) -> bool {
        !self.line.is_empty() || self.has_data
    }

    fn check_size(&self, line_len: usize) -> Result<(), SseError> {
        if self.data.len() + line_len > self.max_event_bytes {
            Err(SseError::TooLarge { limit: self.max_event_bytes })
        } else {
            Ok(())
        }
    }

    /// Copies borrowed first-line data into the event buffer, before anything
    /// that needs the buffer whole (a second data line, a size check, the end
    /// of the push).
    fn keep(&mut self, first_data: &mut Option<&[u8]>) {
        if let Some(d) = first_data.take() {
            self.data.extend_from_slice(d);
        }
    }

    /// [`SseParser::process_line`] for a line that lies whole in the pushed
    /// bytes: the event's first data line is borrowed rather than copied.
    fn process_borrowed_line<'b, F: FnMut(Event<'_>)>(
        &mut self,
        line: &'b [u8],
        first_data: &mut Option<&'b [u8]>,
        on_event: &mut F,
    ) -> Result<(), SseError> {
        match line {
            [] => {
                if let Some(data) = first_data.take() {
                    on_event(Event { event: self.has_event.then_some(&self.event[..]), data });
                    self.reset_event();
                    return Ok(());
                }
            }
            [b'd', b'a', b't', b'a', b':', rest @ ..] if !self.has_data => {
                let value = rest.strip_prefix(b" ").unwrap_or(rest);
                self.check_size(value.len() + 1)?;
                *first_data = Some(value);
                self.has_data = true;
                return Ok(());
            }
            _ => {}
        }
        self.keep(first_data);
        self.process_line(line, on_event)
    }

    fn process_line<F: FnMut(Event<'_>)>(&mut self, line: &[u8], on_event: &mut F) -> Result<(), SseError> {
        if line.is_empty() {
            if self.has_data {
                self.dispatch(on_event);
            }
            self.reset_event();
            return Ok(());
        }
        if line[0] == b':' {
            return Ok(());
        }
        let (field, value) = match memchr::memchr(b':', line) {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"data" => {
                self.check_size(value.len() + 1)?;
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
            }
            b"event" => {
                self.event.clear();
                self.event.extend_from_slice(value);
                self.has_event = true;
            }
            // `id`, `retry` and unknown fields do not matter for a one-shot POST.
            _ => {}
        }
        Ok(())
    }

    fn dispatch<F: FnMut(Event<'_>)>(&mut self, on_event: &mut F) {
        on_event(Event { event: self.has_event.then_some(&self.event[..]), data: &self.data });
    }

    fn reset_event(&mut self) {
        self.data.clear();
        self.has_data = false;
        self.event.clear();
        self.has_event = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `pieces` one push each and collects (event, data) as strings.
    fn parse(pieces: &[&[u8]]) -> (Vec<(Option<String>, String)>, bool) {
        let mut p = SseParser::default();
        let mut out = Vec::new();
        let mut collect = |e: Event<'_>| {
            out.push((
                e.event.map(|b| String::from_utf8_lossy(b).into_owned()),
                String::from_utf8_lossy(e.data).into_owned(),
            ))
        };
        for piece in pieces {
            p.push(piece, &mut collect).unwrap();
        }
        let flushed = p.finish(&mut collect).unwrap();
        (out, flushed)
    }

    fn datas(pieces: &[&[u8]]) -> Vec<String> {
        parse(pieces).0.into_iter().map(|(_, d)| d).collect()
    }

    #[test]
    fn whole_events_in_one_read() {
        let d = datas(&[b"data: {\"a\":1}\n\ndata: {\"a\":2}\n\ndata: [DONE]\n\n"]);
        assert_eq!(d, ["{\"a\":1}", "{\"a\":2}", "[DONE]"]);
    }

    #[test]
    fn events_split_at_every_byte() {
        let stream = b"data: {\"x\":\"hello\"}\r\n\r\n: keep-alive\r\ndata: two\r\n\r\ndata: [DONE]\r\n\r\n";
        let expected = ["{\"x\":\"hello\"}", "two", "[DONE]"];
        // Every possible split point, and byte-by-byte.
        for cut in 0..=stream.len() {
            let (a, b) = stream.split_at(cut);
            assert_eq!(datas(&[a, b]), expected, "split at {cut}");
        }
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(datas(&bytes), expected);
    }

    #[test]
    fn crlf_split_between_cr_and_lf_is_one_line_end() {
        // "data: x\r" | "\ndata: y\r\n\r\n": one event "x\ny", not two.
        assert_eq!(datas(&[b"data: x\r", b"\ndata: y\r\n\r\n"]), ["x\ny"]);
    }

    #[test]
    fn lf_alone_after_a_split_crlf_leaves_the_next_lf_a_line_end() {
        // Found by the `sse` fuzz target: "\r" | "\n" | "\n" is a CRLF line
        // end and then a blank line. The blank line was swallowed as if it
        // were the CRLF's `\n`, and the two events merged into "a\nb".
        assert_eq!(datas(&[b"data: a\r", b"\n", b"\ndata: b\n\n"]), ["a", "b"]);
        // Empty pushes between the `\r` and its `\n` still wait for it.
        assert_eq!(datas(&[b"data: a\r", b"", b"\n", b"", b"\ndata: b\n\n"]), ["a", "b"]);
    }

    #[test]
    fn whole_events_are_borrowed_and_split_ones_copied_alike() {
        // Borrowed (whole in one push), then copied (split), then a second
        // data line after a borrowed first one, then an event name.
        let stream: &[&[u8]] = &[b"data: a\n\ndata: b", b"c\n\ndata: d\ndata: e\n\nevent: x\ndata: f\n\n"];
        let (events, _) = parse(stream);
        let expected = [(None, "a"), (None, "bc"), (None, "d\ne"), (Some("x"), "f")];
        let expected: Vec<_> = expected.iter().map(|(e, d)| (e.map(String::from), d.to_string())).collect();
        assert_eq!(events, expected);
        // A borrowed first line still counts towards the limit of its event.
        let mut p = SseParser::new(8);
        assert!(p.push(b"data: 0123\ndata: 4567\n\n", |_| {}).is_err());
    }

    #[test]
    fn bare_cr_line_endings() {
        assert_eq!(datas(&[b"data: a\r\rdata: b\r\r"]), ["a", "b"]);
    }

    #[test]
    fn comments_are_ignored() {
        assert_eq!(datas(&[b": ping\n\n:another\ndata: x\n\n"]), ["x"]);
    }

    #[test]
    fn multi_line_data_is_joined() {
        assert_eq!(datas(&[b"data: line1\ndata: line2\ndata:line3\n\n"]), ["line1\nline2\nline3"]);
    }

    #[test]
    fn event_field_and_other_fields() {
        let (events, _) = parse(&[b"event: error\nid: 7\nretry: 10\ndata: {}\n\ndata: plain\n\n"]);
        assert_eq!(events[0], (Some("error".into()), "{}".into()));
        assert_eq!(events[1], (None, "plain".into()));
    }

    #[test]
    fn blank_lines_without_data_dispatch_nothing() {
        assert!(datas(&[b"\n\n\r\n: c\n\n"]).is_empty());
    }

    #[test]
    fn missing_done_and_missing_final_blank_line_are_flushed() {
        let (events, flushed) = parse(&[b"data: a\n\ndata: b\n"]);
        assert_eq!(events.len(), 2);
        assert!(flushed);
        let (events, flushed) = parse(&[b"data: a\n\ndata: b"]);
        assert_eq!(events[1].1, "b");
        assert!(flushed);
        let (events, flushed) = parse(&[b"data: a\n\n"]);
        assert_eq!(events.len(), 1);
        assert!(!flushed);
    }

    #[test]
    fn data_without_space_and_field_without_colon() {
        assert_eq!(datas(&[b"data:x\n\ndata\n\n"]), ["x", ""]);
    }

    #[test]
    fn oversized_event_is_an_error_not_a_crash() {
        let mut p = SseParser::new(64);
        let big = vec![b'a'; 100];
        let mut line = b"data: ".to_vec();
        line.extend_from_slice(&big);
        assert_eq!(p.push(&line, |_| {}), Err(SseError::TooLarge { limit: 64 }));
        // Many small data lines also count towards the limit.
        let mut p = SseParser::new(64);
        let r = (0..20).try_for_each(|_| p.push(b"data: 0123456789\n", |_| {}));
        assert!(r.is_err());
    }

    #[test]
    fn empty_choices_event_is_passed_through() {
        let d = datas(&[b"data: {\"choices\":[],\"usage\":{\"completion_tokens\":3}}\n\n"]);
        assert_eq!(d.len(), 1);
        assert!(d[0].contains("\"choices\":[]"));
    }
}
