//! Writes a large baseline and a large results file for measuring how much
//! memory loading them takes (`docs/src/failures.md`, the size limits).
//!
//! `cargo run --example big_files -- RESULTS BASELINE_MB RESULTS_MB OUT_DIR`
//! writes `OUT_DIR/big-baseline.toml` and `OUT_DIR/big-results.json`: the
//! cases of the built-in demo baseline and of `RESULTS` (a results file, e.g.
//! `infergate-out/results.json` from `infergate demo`) copied under new ids
//! until each file reaches its size. Then, e.g.:
//!
//! ```text
//! /usr/bin/time -v infergate baseline show OUT_DIR/big-baseline.toml > /dev/null
//! /usr/bin/time -v infergate compare --results OUT_DIR/big-results.json --baseline sim-demo \
//!     --comparison OUT_DIR/c.json > /dev/null
//! ```
//!
//! and read "Maximum resident set size".
#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap here is a failed test, not a crash.

use std::path::PathBuf;

use infergate::baseline::Baseline;

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e:#}");
        std::process::exit(2);
    }
}

fn run() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let source = PathBuf::from(args.next().ok_or_else(|| {
        anyhow::anyhow!("usage: big_files RESULTS [BASELINE_MB] [RESULTS_MB] [OUT_DIR]; RESULTS from `infergate demo`")
    })?);
    let mut size = |default: u64| -> u64 { args.next().and_then(|a| a.parse().ok()).unwrap_or(default) << 20 };
    let (baseline_bytes, results_bytes) = (size(50), size(500));
    let out = PathBuf::from(args.next().unwrap_or_else(|| ".".into()));
    std::fs::create_dir_all(&out)?;

    let demo = Baseline::parse(include_str!("../baselines/sim-demo.toml"), "sim-demo.toml")?;
    let per_copy = demo.to_toml()?.len() as u64;
    let copies = baseline_bytes.div_ceil(per_copy).max(1);
    let mut big = demo.clone();
    big.cases.clear();
    for copy in 0..copies {
        for (id, case) in &demo.cases {
            big.cases.insert(format!("{id}-{copy}"), case.clone());
        }
    }
    let path = out.join("big-baseline.toml");
    std::fs::write(&path, big.to_toml()?)?;
    println!("{} ({} cases, {} bytes)", path.display(), big.cases.len(), std::fs::metadata(&path)?.len());

    let demo = infergate::results::load(&source)?;
    let per_copy = std::fs::metadata(&source)?.len();
    let copies = results_bytes.div_ceil(per_copy).max(1);
    let mut big = demo.clone();
    big.cases = (0..copies)
        .flat_map(|copy| {
            demo.cases.iter().map(move |c| {
                let mut c = c.clone();
                c.id = format!("{}-{copy}", c.id);
                c
            })
        })
        .collect();
    let path = out.join("big-results.json");
    infergate::results::save(&big, &path)?;
    println!("{} ({} cases, {} bytes)", path.display(), big.cases.len(), std::fs::metadata(&path)?.len());
    Ok(())
}
