//! The chunk reader (`infergate::client::chunk`) on arbitrary bytes: as the
//! `data` of the events of a stream cut into arbitrary pieces, and as one
//! chunk, the stream's bytes whole.
//!
//! Input layout as in `sse`: byte 0 is `k`, the number of piece-length bytes
//! that follow (`k % 16`); the rest is the stream (and the whole chunk). Checks:
//! - nothing panics (the scan indexes bytes and recurses into nesting);
//! - the scan agrees with serde: where `scan` reads a chunk, `parse_full`
//!   reads the same one, and `parse` gives exactly `parse_full`'s result,
//!   error message included;
//! - bounded: the text a chunk holds (id, content, reasoning, text,
//!   finish_reason) is never longer than its data, so a reader never holds
//!   more than the bytes it was sent (a decoded escape is never longer than
//!   the escape);
//! - the chunks a stream's events give are the same whether the stream comes
//!   whole or in pieces.

#![no_main]

use infergate::client::chunk::{self, Chunk};
use infergate::client::sse::{DEFAULT_MAX_EVENT_BYTES, Event, SseParser};
use infergate_fuzz::{lengths_and_stream, split};
use libfuzzer_sys::fuzz_target;

/// Bytes of text a chunk holds.
fn held(c: &Chunk<'_>) -> usize {
    let choice = c.choice.as_ref().map_or(0, |ch| {
        let delta = ch.delta.as_ref().map_or(0, |d| {
            d.content.as_ref().map_or(0, |s| s.len()) + d.reasoning_content.as_ref().map_or(0, |s| s.len())
        });
        delta + ch.text.as_ref().map_or(0, |s| s.len()) + ch.finish_reason.as_ref().map_or(0, |s| s.len())
    });
    c.id.as_ref().map_or(0, |s| s.len()) + choice
}

/// Reads one chunk all three ways, checks they agree, and returns what was
/// read as text (the same for a borrowed and an owned string).
fn read(data: &[u8]) -> String {
    let full = chunk::parse_full(data).map_err(|e| e.to_string());
    if let Some(fast) = chunk::scan(data) {
        assert_eq!(Ok(&fast), full.as_ref(), "scan and serde differ on {:?}", String::from_utf8_lossy(data));
    }
    let got = chunk::parse(data).map_err(|e| e.to_string());
    assert_eq!(got, full, "parse is not serde's parse on {:?}", String::from_utf8_lossy(data));
    if let Ok(c) = &got {
        assert!(held(c) <= data.len(), "a chunk of {} bytes holds {} bytes of text: {c:?}", data.len(), held(c));
    }
    format!("{got:?}")
}

/// What the events of a stream read as, in order, until the stream ends or breaks.
fn stream_chunks(pieces: &[&[u8]]) -> Vec<String> {
    let mut parser = SseParser::new(DEFAULT_MAX_EVENT_BYTES);
    let mut chunks = Vec::new();
    let mut on_event = |e: Event<'_>| chunks.push(read(e.data));
    for piece in pieces {
        if parser.push(piece, &mut on_event).is_err() {
            return chunks;
        }
    }
    let _ = parser.finish(&mut on_event);
    chunks
}

fuzz_target!(|data: &[u8]| {
    let Some((lengths, stream)) = lengths_and_stream(data) else { return };
    read(stream);
    let whole = stream_chunks(&[stream]);
    let parts = stream_chunks(&split(stream, lengths));
    assert_eq!(whole, parts, "cutting the stream changed its chunks");
});
