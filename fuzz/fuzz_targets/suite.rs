//! The custom suite loader (`infergate::suite::Suite::parse`, what
//! `Suite::load` runs on a suite file's text), then case selection with a
//! `--cases` pattern.
//!
//! Input layout: suite TOML, optionally followed by a NUL byte and a `--cases`
//! pattern (TOML text cannot hold a raw NUL, so the split is unambiguous).
//! Checks: nothing panics; an accepted suite has cases with unique ids of the
//! form `scenario/context`; `*` selects every case; a case's own id selects
//! it; a pattern either parses into a filter whose patterns are all
//! non-empty and shows as the text it was read from, or is refused; a
//! selection that succeeds keeps only cases one of its globs matches.

#![no_main]

use infergate::suite::{CaseFilter, Suite, glob_match};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (toml, pattern) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };
    let Ok(text) = std::str::from_utf8(toml) else { return };
    let Ok(suite) = Suite::parse(text, "suite.toml", "suite.toml") else { return };

    assert!(!suite.cases.is_empty(), "a suite without cases was accepted");
    let mut ids = std::collections::HashSet::new();
    for case in &suite.cases {
        assert!(ids.insert(case.id.as_str()), "case id {} twice", case.id);
        assert_eq!(case.id, format!("{}/{}", case.scenario, case.context_tokens));
    }

    let mut all = suite.clone();
    all.select(&CaseFilter::parse("*").expect("`*` is a filter")).expect("`*` selects every case");
    assert_eq!(all.cases.len(), suite.cases.len());

    let first = &suite.cases[0].id;
    let mut one = suite.clone();
    let own = CaseFilter::parse(first).unwrap_or_else(|e| panic!("case id {first} is not a filter: {e}"));
    one.select(&own).unwrap_or_else(|e| panic!("case id {first} does not select itself: {e}"));
    assert!(one.cases.iter().any(|c| &c.id == first));

    if let Some(Ok(pattern)) = pattern.map(std::str::from_utf8) {
        let Ok(filter) = CaseFilter::parse(pattern) else { return };
        assert_eq!(filter.to_string(), pattern.trim());
        assert!(filter.globs().all(|g| !g.is_empty() && g == g.trim()), "{filter:?}");
        let mut some = suite.clone();
        if some.select(&filter).is_ok() {
            assert!(!some.cases.is_empty());
            for case in &some.cases {
                assert!(filter.globs().any(|g| glob_match(g, &case.id)), "{} kept by {pattern:?}", case.id);
            }
        }
    }
});
