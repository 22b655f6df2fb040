//! The baseline loader (`infergate::baseline::load`) on arbitrary
//! file contents, through a scratch file so the code under test is exactly
//! what `compare` and `check` run.
//!
//! Checks: nothing panics; an error names the file; an accepted baseline can
//! be written back (`to_toml`, what `baseline update` writes), that text loads
//! again, and writing it once more gives the same text (a version 1 file is
//! written as version 2 the first time); every series it holds can be read.

#![no_main]

use infergate::gate::metrics::Series;
use infergate::results::PhaseName;
use infergate_fuzz::{remove, scratch_file};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = scratch_file("baseline.toml", data);
    let loaded = infergate::baseline::load(&path);
    let baseline = match loaded {
        Ok(b) => b,
        Err(e) => {
            let message = format!("{e:#}");
            assert!(message.contains(&path.display().to_string()), "error does not name the file: {message}");
            remove(&path);
            return;
        }
    };
    for case in baseline.cases.values() {
        for phase in [PhaseName::Cold, PhaseName::Warm] {
            if let Some(p) = case.phase(phase) {
                for s in Series::ALL {
                    assert!(p.series(s).iter().flat_map(|run| run.iter()).all(|v| v.is_finite() && *v >= 0.0));
                }
            }
        }
    }

    let text = baseline.to_toml().expect("a loaded baseline serializes");
    let again_path = scratch_file("baseline-again.toml", text.as_bytes());
    let again = infergate::baseline::load(&again_path)
        .unwrap_or_else(|e| panic!("written baseline does not load: {e:#}\n{text}"));
    let text_again = again.to_toml().expect("a reloaded baseline serializes");
    assert_eq!(text, text_again, "writing the baseline is not stable");
    remove(&path);
    remove(&again_path);
});
