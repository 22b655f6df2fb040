//! The SSE parser (`infergate::client::sse`) on arbitrary bytes, split into
//! arbitrary pieces as a socket would deliver them.
//!
//! Input layout: byte 0 is `k`, the number of piece-length bytes that follow
//! (`k % 16`); the rest is the stream. The stream is cut into pieces whose
//! lengths cycle through those bytes (a 0 makes an empty push; when all are 0,
//! those empty pushes come first and then the whole stream); with `k == 0` it
//! is fed one byte at a time. Checks:
//! - nothing panics;
//! - differential: with the default limit, the split stream gives the same
//!   events, the same `has_pending` and the same `finish` result as the whole
//!   stream in one push;
//! - with a small limit (the stream's first byte, 0 to 255), splitting can only make the
//!   parser stricter: the split run's events are a prefix of the whole run's,
//!   and a split run that succeeds means the whole run succeeded with the same
//!   events as without a limit.

#![no_main]

use infergate::client::sse::{DEFAULT_MAX_EVENT_BYTES, Event, SseError, SseParser};
use infergate_fuzz::{lengths_and_stream, split};
use libfuzzer_sys::fuzz_target;

type Owned = (Option<Vec<u8>>, Vec<u8>);

/// What one parse produced: the events, `has_pending` before `finish`, and
/// the outcome (`finish`'s flag, or the first error).
#[derive(Debug, PartialEq)]
struct Outcome {
    events: Vec<Owned>,
    pending: bool,
    end: Result<bool, SseError>,
}

fn run(pieces: &[&[u8]], limit: usize) -> Outcome {
    let mut parser = SseParser::new(limit);
    let mut events: Vec<Owned> = Vec::new();
    let mut collect = |e: Event<'_>| {
        // Lines are split at every `\r` and `\n`; only the join adds `\n`.
        assert!(!e.data.contains(&b'\r'), "CR in event data: {e:?}");
        assert!(e.event.is_none_or(|n| !n.contains(&b'\r') && !n.contains(&b'\n')), "line break in event name: {e:?}");
        events.push((e.event.map(<[u8]>::to_vec), e.data.to_vec()));
    };
    for piece in pieces {
        if let Err(e) = parser.push(piece, &mut collect) {
            return Outcome { events, pending: parser.has_pending(), end: Err(e) };
        }
    }
    let pending = parser.has_pending();
    let end = parser.finish(&mut collect);
    Outcome { events, pending, end }
}

fuzz_target!(|data: &[u8]| {
    let Some((lengths, stream)) = lengths_and_stream(data) else { return };
    let pieces = split(stream, lengths);

    let whole = run(&[stream], DEFAULT_MAX_EVENT_BYTES);
    let parts = run(&pieces, DEFAULT_MAX_EVENT_BYTES);
    // Fuzz inputs are far below the default limit.
    assert!(whole.end.is_ok(), "whole stream failed: {whole:?}");
    assert_eq!(whole, parts, "splitting changed the parse; pieces: {pieces:?}");

    let limit = usize::from(stream.first().copied().unwrap_or(0));
    let whole_limited = run(&[stream], limit);
    let parts_limited = run(&pieces, limit);
    assert!(
        whole_limited.events.starts_with(&parts_limited.events),
        "split run with limit {limit} gave events the whole run did not: {whole_limited:?} vs {parts_limited:?}"
    );
    if whole_limited.end.is_ok() {
        assert_eq!(whole_limited, whole, "limit {limit} changed a successful parse");
    }
    if parts_limited.end.is_ok() {
        assert_eq!(parts_limited, whole, "split run with limit {limit} succeeded with other events");
    }
});
