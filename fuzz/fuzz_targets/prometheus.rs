//! The Prometheus text parser (`infergate::telemetry::prometheus::parse`) on
//! arbitrary bytes, decoded as the client decodes a `/metrics` body (lossy
//! UTF-8). Checks: nothing panics; the scrape and the phase summary built from
//! it (as the runner does) can be written into a results file and read back,
//! which JSON cannot do for NaN or infinities.

#![no_main]

use infergate::telemetry::prometheus::{self, ServerPhase, ServerSample};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let sample = prometheus::parse(&text);
    let json = serde_json::to_string(&sample).expect("a scrape serializes");
    let back: ServerSample =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("scrape {json} does not read back: {e}"));
    assert_eq!(back, sample);

    // A phase of a few scrapes of this server, as the runner summarises them.
    let mut later = sample.clone();
    later.t_ms = 100.0;
    if let Some(phase) = prometheus::summarize(&[sample, later]) {
        let json = serde_json::to_string(&phase).expect("a phase serializes");
        let _: ServerPhase =
            serde_json::from_str(&json).unwrap_or_else(|e| panic!("phase {json} does not read back: {e}"));
    }
});
