//! The `infergate.toml` loader (`infergate::config::parse_toml::<Config>`, what
//! `LoadedConfig::load` runs on the file's text), then the resolution of its
//! `[gate]` table into rules, as `check` and `compare` do.
//!
//! Checks: nothing panics; an error names the file and a line that exists; an
//! accepted config resolves to rules whose numbers are within the ranges the
//! validated types promise.

#![no_main]

use infergate::config::{Config, parse_toml};
use infergate::gate::metrics::CATALOGUE;
use infergate::gate::rules::Rules;
use libfuzzer_sys::fuzz_target;

const ORIGIN: &str = "infergate.toml";

fuzz_target!(|data: &[u8]| {
    // `LoadedConfig::load` reads the file with `read_to_string`: only UTF-8 gets this far.
    let Ok(text) = std::str::from_utf8(data) else { return };
    let config = match parse_toml::<Config>(text, ORIGIN) {
        Ok(c) => c,
        Err(message) => {
            check_error(text, &message);
            return;
        }
    };
    let rules = Rules::from_config(&config.gate);
    assert!(rules.significance > 0.0 && rules.significance <= 0.5, "{rules:?}");
    assert!((0.0..=1.0).contains(&rules.max_error_rate), "{rules:?}");
    assert!((0.0..=1.0).contains(&rules.drift_min_similarity), "{rules:?}");
    for case_id in ["code-review/1024", "a/1", ""] {
        for metric in CATALOGUE {
            let rule = rules.rule_for(case_id, metric);
            assert!((0.0..=10.0).contains(&rule.tolerance), "{}: {rule:?}", metric.name);
            assert!(rule.floor.is_finite() && rule.floor >= 0.0, "{}: {rule:?}", metric.name);
        }
    }
});

/// Errors read `infergate.toml:LINE:COL: ...` (or `infergate.toml: ...`);
/// the line must be one of the file's.
fn check_error(text: &str, message: &str) {
    let rest = message.strip_prefix(ORIGIN).unwrap_or_else(|| panic!("error does not name the file: {message}"));
    if let Some(location) = rest.strip_prefix(':') {
        let mut parts = location.splitn(3, ':');
        if let (Some(line), Some(col)) = (parts.next(), parts.next()) {
            if let (Ok(line), Ok(_)) = (line.parse::<usize>(), col.parse::<usize>()) {
                let lines = text.split('\n').count();
                assert!(line >= 1 && line <= lines, "error names line {line} of {lines}: {message}");
            }
        }
    }
}
