//! Writes a synthetic history store for `infergate history dashboard`: one
//! profile, RUNS runs of 16 cases (the coder suite's ids) with 7 metrics of
//! the continuous-response phase, 2% run-to-run noise, a quarter of the
//! series flat and the rest with one to three steps of 3-12% or a slow creep
//! (seeded: the same store every time). What the dashboard's size and load
//! time are measured on (docs/src/history-dashboard.md, "Size and speed").
//!
//! `cargo run --example dashboard_store -- DIR [RUNS]` (RUNS defaults to 1,000)
//! writes `DIR/bench.jsonl`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap here is a failed test or run, not a crash.

use std::collections::BTreeMap;
use std::io::Write as _;

use infergate::history::{HistoryRecord, Point, SCHEMA};
use infergate::results::PhaseName;
use infergate::rng::Rng;

const METRICS: [(&str, f64); 7] = [
    ("tokens_per_second", 40.0),
    ("decode_tokens_per_second", 42.0),
    ("ttft_median", 900.0),
    ("ttft_p99", 1400.0),
    ("tpot_median", 24.0),
    ("e2e_median", 13_000.0),
    ("e2e_p99", 15_000.0),
];

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next() else {
        eprintln!("usage: dashboard_store DIR [RUNS]");
        std::process::exit(2);
    };
    let runs: usize = args.next().map_or(Ok(1000), |r| r.parse()).unwrap_or_else(|_| {
        eprintln!("RUNS must be a whole number");
        std::process::exit(2);
    });
    let cases: Vec<String> = ["architecture-design", "code-completion", "code-review", "debugging"]
        .iter()
        .flat_map(|s| [12800, 41200, 51200, 76800].map(|c| format!("{s}/{c}")))
        .collect();
    let mut rng = Rng::new(20261201);
    // Per series: the level of each run (steps at seeded places, or a creep).
    let mut levels: BTreeMap<(usize, usize), Vec<f64>> = BTreeMap::new();
    for c in 0..cases.len() {
        for (m, (_, base)) in METRICS.iter().enumerate() {
            let kind = rng.below(4) as usize;
            let mut level = vec![*base; runs];
            match kind {
                0 => {}
                1 | 2 => {
                    for _ in 0..kind {
                        let at = 50 + rng.below(runs.saturating_sub(100).max(1) as u64) as usize;
                        let step = 1.0 + (0.03 + 0.09 * rng.unit()) * if rng.unit() < 0.5 { -1.0 } else { 1.0 };
                        level[at.min(runs)..].iter_mut().for_each(|v| *v *= step);
                    }
                }
                _ => {
                    let start = runs / 2;
                    for (i, v) in level.iter_mut().enumerate().skip(start) {
                        *v *= 1.0 + 0.08 * (i - start) as f64 / (runs - start).max(1) as f64;
                    }
                }
            }
            levels.insert((c, m), level);
        }
    }
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {dir}: {e}"));
    let path = std::path::Path::new(&dir).join("bench.jsonl");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap_or_else(|e| panic!("{e}")));
    for run in 0..runs {
        let mut record_cases = BTreeMap::new();
        for (c, case) in cases.iter().enumerate() {
            let mut metrics = BTreeMap::new();
            for (m, (name, _)) in METRICS.iter().enumerate() {
                // Lognormal noise of 2%: exp(0.02 z), z from Box-Muller.
                let z = (-2.0 * (1.0 - rng.unit()).ln()).sqrt() * (std::f64::consts::TAU * rng.unit()).cos();
                let level = levels.get(&(c, m)).and_then(|l| l.get(run)).copied().unwrap_or(f64::NAN);
                let value = level * (0.02 * z).exp();
                metrics.insert(name.to_string(), Point { value, n: 20, spread: Some(0.01) });
            }
            record_cases.insert(case.clone(), BTreeMap::from([(PhaseName::Warm, metrics)]));
        }
        let day = run / 4;
        let record = HistoryRecord {
            schema: SCHEMA.into(),
            profile: "bench".into(),
            run_id: format!("run-{run:04}"),
            commit: Some(format!("{:016x}{:016x}{:08x}", rng.next_u64(), rng.next_u64(), rng.next_u64() >> 32)),
            git_ref: Some("refs/heads/main".into()),
            time: format!("2026-{:02}-{:02}T{:02}:00:00Z", 1 + (day / 28) % 12, 1 + day % 28, (run % 4) * 6),
            tool_version: "0.1.0".into(),
            environment: "NVIDIA H100|550|81559|700|1|vllm|Qwen2.5-Coder-32B|chat".into(),
            suite: "coder".into(),
            cases: record_cases,
        };
        let line = serde_json::to_string(&record).unwrap_or_else(|e| panic!("{e}"));
        writeln!(out, "{line}").unwrap_or_else(|e| panic!("{e}"));
    }
    out.flush().unwrap_or_else(|e| panic!("{e}"));
    println!("{}", path.display());
}
