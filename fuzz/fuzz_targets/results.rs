//! The results loader (`infergate::results::load`, schema
//! `infergate.results.v1`) on arbitrary file contents, through a scratch file
//! so the code under test is exactly what `compare`, `report` and
//! `baseline update` run.
//!
//! Checks: nothing panics; an error names the file; an accepted file can be
//! saved (`results::save`) and loaded again to the same JSON; the totals the
//! gate reads can be computed; a baseline can be recorded from it and written.

#![no_main]

use infergate::baseline::Baseline;
use infergate_fuzz::{remove, scratch_file};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = scratch_file("results.json", data);
    let results = match infergate::results::load(&path) {
        Ok(r) => r,
        Err(e) => {
            let message = format!("{e:#}");
            assert!(message.contains(&path.display().to_string()), "error does not name the file: {message}");
            remove(&path);
            return;
        }
    };
    let _ = (results.total_errors(), results.total_requests());

    let again_path = scratch_file("results-again.json", b"");
    infergate::results::save(&results, &again_path).expect("a loaded results file saves");
    let again = infergate::results::load(&again_path).unwrap_or_else(|e| panic!("saved results do not load: {e:#}"));
    let (a, b) = (serde_json::to_string(&results).unwrap(), serde_json::to_string(&again).unwrap());
    assert_eq!(a, b, "save and load changed the results");

    let baseline = Baseline::from_results(&results, "fuzz");
    baseline.to_toml().expect("a baseline recorded from loaded results serializes");
    remove(&path);
    remove(&again_path);
});
