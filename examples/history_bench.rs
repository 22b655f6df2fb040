//! Speed and accuracy of `infergate history analyze` on histories made of
//! the simulator's synthetic runs (the coder suite: 16 cases, cold and warm
//! phases, 8 request metrics each: 256 series), turned into history records
//! exactly as `history append` does.
//!
//! `cargo build --release && cargo run --release --example history_bench [-- --only time,noise,power]`
//! `[--histories N] [--runs L] [--store DIR]`
//!
//! - `time`: writes a store of 1,000 runs (`--store DIR` keeps it; default a
//!   temporary folder; a quarter of the cases with one step, a quarter with
//!   two, the rest flat) and times reading and analysing it in-process and
//!   through the release binary (`target/release/infergate history
//!   analyze`, when built), with the defaults, all 256 series and the 7
//!   metrics x 16 cases of the goal.
//! - `noise`: false change points per analysis (256 series) on noise-only
//!   histories of L runs (default 200) for several settings, under a harsh
//!   runner (3% lognormal per-request noise, 1% outliers up to 3x, warm-up
//!   after launch) with 2% or 5% run-to-run drift, independent or AR(1)
//!   from one run to the next.
//! - `power`: the same settings on histories with a 5% slowdown of every
//!   time (tokens_per_second -4.8%) after run L/2 and after run L-10: the
//!   share of cases whose warm tokens_per_second shows it (a change point
//!   within 5 runs of it, downwards).
//!
//! The seeds are fixed: a run reproduces every figure but the times.
#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap here is a failed test or run, not a crash.

use std::path::PathBuf;
use std::time::Instant;

use infergate::history::analyze::{self, Options};
use infergate::history::{self, HistoryRecord};
use infergate::results::{PhaseName, Results};
use infergate::rng::Rng;
use infergate::sim::SimConfig;
use infergate::sim::montecarlo::Noise;
use infergate::sim::synthetic;
use infergate::stats::changepoint::ChangePointConfig;
use infergate::suite::Suite;

/// Run-to-run drift of a history: the synthetic run factor (independent
/// per launch), or an AR(1) factor applied through the simulator's slowdown.
#[derive(Clone, Copy)]
struct Drift {
    cv: f64,
    rho: f64,
}

impl Drift {
    fn name(&self) -> String {
        if self.rho > 0.0 {
            format!("{:.0}% drift, AR(1) {}", self.cv * 100.0, self.rho)
        } else {
            format!("{:.0}% drift, independent", self.cv * 100.0)
        }
    }
}

struct Gen(Rng);

impl Gen {
    fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.0.unit();
        let u2 = self.0.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// `runs` records of profile `p`: run `i` is slowed by `step(i, case index)`.
fn make_history(
    suite: &Suite,
    drift: Drift,
    runs: usize,
    seed: u64,
    step: impl Fn(usize, usize) -> f64,
) -> Vec<HistoryRecord> {
    let independent = if drift.rho > 0.0 { 0.0 } else { drift.cv };
    let base = SimConfig { seed, ..Noise::runner(0.03, independent).sim_config() };
    let mut g = Gen(Rng::new(seed ^ 0xa5a5));
    let mut e = 0.0;
    (0..runs)
        .map(|i| {
            let ar = if drift.rho > 0.0 {
                e = if i == 0 { g.normal() } else { drift.rho * e + (1.0 - drift.rho * drift.rho).sqrt() * g.normal() };
                (drift.cv * e).exp()
            } else {
                1.0
            };
            // One synthetic run per distinct slowdown of this run's cases.
            let mut made: Vec<(f64, Results)> = Vec::new();
            let mut cases = Vec::new();
            for c in 0..suite.cases.len() {
                let slow = ar * step(i, c);
                let at = made.iter().position(|(s, _)| *s == slow).unwrap_or_else(|| {
                    made.push((
                        slow,
                        synthetic::run(&SimConfig { slowdown: slow, ..base.clone() }, suite, 5, i as u64),
                    ));
                    made.len() - 1
                });
                cases.push(made[at].1.cases[c].clone());
            }
            let mut r = made.swap_remove(0).1;
            r.cases = cases;
            r.run_id = format!("run-{seed}-{i}");
            r.finished_at = format!("2026-12-01T{:02}:{:02}:00Z", (i / 60) % 24, i % 60);
            history::record_of(&r, "bench", Some(&sha(seed, i)), None)
        })
        .collect()
}

/// Generates synthetic runs once per distinct slowdown only (the common case: one per run).
fn make_history_fast(
    suite: &Suite,
    drift: Drift,
    runs: usize,
    seed: u64,
    step: impl Fn(usize) -> f64,
) -> Vec<HistoryRecord> {
    let independent = if drift.rho > 0.0 { 0.0 } else { drift.cv };
    let base = SimConfig { seed, ..Noise::runner(0.03, independent).sim_config() };
    let mut g = Gen(Rng::new(seed ^ 0xa5a5));
    let mut e = 0.0;
    (0..runs)
        .map(|i| {
            let ar = if drift.rho > 0.0 {
                e = if i == 0 { g.normal() } else { drift.rho * e + (1.0 - drift.rho * drift.rho).sqrt() * g.normal() };
                (drift.cv * e).exp()
            } else {
                1.0
            };
            let mut r = synthetic::run(&SimConfig { slowdown: ar * step(i), ..base.clone() }, suite, 5, i as u64);
            r.run_id = format!("run-{seed}-{i}");
            history::record_of(&r, "bench", Some(&sha(seed, i)), None)
        })
        .collect()
}

/// A commit SHA for run `i` (40 hex digits, made up).
fn sha(seed: u64, i: usize) -> String {
    let mut rng = Rng::from_parts(&[&seed.to_le_bytes(), &i.to_le_bytes()]);
    format!("{:016x}{:016x}{:08x}", rng.next_u64(), rng.next_u64(), rng.next_u64() as u32)
}

fn settings() -> Vec<(&'static str, Options)> {
    let with = |significance: f64, permutations: usize, block: usize, min_step: f64| Options {
        search: ChangePointConfig { significance, permutations, block, ..ChangePointConfig::default() },
        min_step,
        ..Options::default()
    };
    vec![
        ("5%, 199 perm., block 1, min step 0", with(0.05, 199, 1, 0.0)),
        ("0.1%, 999 perm., block 1, min step 0", with(0.001, 999, 1, 0.0)),
        ("0.1%, 999 perm., block 3, min step 1%", with(0.001, 999, 3, 0.01)),
        ("0.5%, 199 perm., block 1, min step 0", with(0.005, 199, 1, 0.0)),
        ("0.5%, 199 perm., block 1, min step 1%", with(0.005, 199, 1, 0.01)),
        ("0.5%, 199 perm., block 3, min step 1%", with(0.005, 199, 3, 0.01)),
        ("0.5%, 199 perm., block 5, min step 1%", with(0.005, 199, 5, 0.01)),
        ("0.5%, 199 perm., block 3, min step 2%", with(0.005, 199, 3, 0.02)),
        ("1%, 99 perm., block 3, min step 1%", with(0.01, 99, 3, 0.01)),
    ]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let only = flag("--only");
    let want = |s: &str| only.as_deref().is_none_or(|o| o.split(',').any(|x| x.trim() == s));
    let histories: usize = flag("--histories").and_then(|v| v.parse().ok()).unwrap_or(20);
    let runs: usize = flag("--runs").and_then(|v| v.parse().ok()).unwrap_or(200);
    let suite = match Suite::builtin("coder") {
        Some(Ok(s)) => s,
        _ => {
            eprintln!("error: the built-in coder suite is missing");
            std::process::exit(2);
        }
    };
    let d = Options::default();
    println!(
        "defaults: significance {}, {} permutations, blocks of {}, min segment {}, min step {}%, {} thread(s)\n",
        d.search.significance,
        d.search.permutations,
        d.search.block,
        d.search.min_segment,
        d.min_step * 100.0,
        d.threads
    );
    if want("time") {
        time(&suite, flag("--store").map(PathBuf::from));
    }
    if want("noise") {
        noise(&suite, histories, runs);
    }
    if want("power") {
        power(&suite, histories, runs);
    }
}

/// 1. Time for 1,000 runs x 16 cases.
fn time(suite: &Suite, keep: Option<PathBuf>) {
    let tmp = tempfile::tempdir().expect("a temporary folder");
    let reuse = keep.is_some();
    let store = keep.unwrap_or_else(|| tmp.path().to_path_buf());
    let file = store.join("bench.jsonl");
    println!("## Time: 1,000 runs x 16 cases (coder suite, synthetic runs)");
    if reuse && history::read(&store, "bench").is_ok_and(|h| h.records.len() == 1000) {
        println!("reusing {}", file.display());
    } else {
        let t = Instant::now();
        // A quarter of the cases step down 5% at run 400, a quarter 4% from 300 to 700.
        let records = make_history(suite, Drift { cv: 0.02, rho: 0.0 }, 1000, 2026, |i, c| match c % 4 {
            0 if i >= 400 => 1.05,
            1 if (300..700).contains(&i) => 1.04,
            _ => 1.0,
        });
        let made = t.elapsed().as_secs_f64();
        let _ = std::fs::remove_file(&file);
        let t = Instant::now();
        // Appended one by one: what 1,000 CI runs do.
        for r in &records {
            if let Err(e) = history::append(&store, r) {
                eprintln!("error: {e}");
                std::process::exit(3);
            }
        }
        let appended = t.elapsed().as_secs_f64();
        println!(
            "made in {made:.1} s; appended one by one through `history::append` in {appended:.1} s \
             ({:.1} ms per append, the file re-read each time)",
            1000.0 * appended / records.len() as f64
        );
    }
    let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    println!("{}: {:.1} MB ({:.1} KB per run)", file.display(), size as f64 / 1e6, size as f64 / 1000.0 / 1000.0);
    let seven = "tokens_per_second,decode_tokens_per_second,ttft_median,ttft_p99,tpot_median,e2e_median,e2e_p99";
    for (label, metrics) in
        [("all 256 series", None), ("the goal's 16 cases x 7 metrics (warm phase): 112 series", Some(seven))]
    {
        let opts = Options {
            metrics: metrics.map(|m| m.split(',').map(str::to_string).collect()),
            phase: metrics.map(|_| PhaseName::Warm),
            ..Options::default()
        };
        let mut read_s = Vec::new();
        let mut analyse_s = Vec::new();
        let mut analyse_cpu = Vec::new();
        let mut found = 0;
        for _ in 0..3 {
            let c = cpu(false);
            let h = history::read(&store, "bench").unwrap_or_else(|e| {
                eprintln!("error: {e}");
                std::process::exit(3)
            });
            read_s.push(cpu(false) - c);
            let (t2, c) = (Instant::now(), cpu(false));
            let a = analyze::analyze(&h.records, &opts).expect("valid settings");
            analyse_s.push(t2.elapsed().as_secs_f64());
            analyse_cpu.push(cpu(false) - c);
            found = a.change_points.len();
        }
        println!(
            "in-process, {label}: read {:.3} CPU s; analyse {:.3} s wall on {} threads, {:.3} CPU s (best of 3); \
             {found} change points",
            best(&read_s),
            best(&analyse_s),
            opts.threads,
            best(&analyse_cpu)
        );
        let one = Options { threads: 1, ..opts.clone() };
        let c = cpu(false);
        if let Ok(h) = history::read(&store, "bench") {
            let _ = analyze::analyze(&h.records, &one);
        }
        println!("  one thread: read + analyse {:.3} CPU s (= wall on an idle core)", cpu(false) - c);
        let binary = std::env::current_exe().ok().and_then(|e| Some(e.parent()?.parent()?.join("infergate")));
        match binary.filter(|b| b.is_file()) {
            Some(bin) => {
                let mut times = Vec::new();
                let mut cpus = Vec::new();
                for _ in 0..3 {
                    let mut cmd = std::process::Command::new(&bin);
                    cmd.args(["history", "analyze", "--store"]).arg(&store).args(["--format", "json"]);
                    if let Some(m) = metrics {
                        cmd.args(["--metric", m, "--phase", "warm"]);
                    }
                    let (t, c) = (Instant::now(), cpu(true));
                    let out = cmd.output().expect("the binary runs");
                    times.push(t.elapsed().as_secs_f64());
                    cpus.push(cpu(true) - c);
                    if !out.status.success() {
                        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
                    }
                }
                println!(
                    "  `{} history analyze`: {:.3} s wall, {:.3} CPU s (best of 3)",
                    bin.display(),
                    best(&times),
                    best(&cpus)
                );
            }
            None => println!("  (build target/release/infergate to time the binary: cargo build --release)"),
        }
    }
    println!();
}

/// CPU seconds (user + system) of this process (`children`: of its waited-for children).
fn cpu(children: bool) -> f64 {
    // SAFETY: getrusage(2) fills the struct we own; no other memory is touched.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    let who = if children { libc::RUSAGE_CHILDREN } else { libc::RUSAGE_SELF };
    if unsafe { libc::getrusage(who, &mut u) } != 0 {
        return f64::NAN;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(u.ru_utime) + secs(u.ru_stime)
}

fn best(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

const DRIFTS: [Drift; 4] = [
    Drift { cv: 0.02, rho: 0.0 },
    Drift { cv: 0.05, rho: 0.0 },
    Drift { cv: 0.02, rho: 0.3 },
    Drift { cv: 0.02, rho: 0.6 },
];

/// 2. False change points per analysis on noise-only histories.
fn noise(suite: &Suite, histories: usize, runs: usize) {
    println!(
        "## False change points per analysis: noise-only histories of {runs} runs, 256 series each, {histories} per row"
    );
    let settings = settings();
    println!(
        "(events: change points of one case at one run, give or take 2 runs, counted once: one odd run moves several metrics)"
    );
    println!("{:<40} {:<28} {:>14} {:>12} {:>22}", "settings", "noise", "per analysis", "events", "analyses with any");
    for drift in DRIFTS {
        let all: Vec<Vec<HistoryRecord>> =
            (0..histories).map(|h| make_history_fast(suite, drift, runs, 100 + h as u64, |_| 1.0)).collect();
        for (label, opts) in &settings {
            let (mut total, mut events, mut any) = (0usize, 0usize, 0usize);
            for records in &all {
                let a = analyze::analyze(records, opts).expect("valid settings");
                total += a.change_points.len();
                any += usize::from(!a.change_points.is_empty());
                let mut seen: Vec<(&str, usize)> = Vec::new();
                for c in &a.change_points {
                    if !seen.iter().any(|(case, at)| *case == c.case && at.abs_diff(c.index) <= 2) {
                        seen.push((&c.case, c.index));
                    }
                }
                events += seen.len();
            }
            println!(
                "{label:<40} {:<28} {:>14.2} {:>12.2} {:>15}/{histories}",
                drift.name(),
                total as f64 / histories as f64,
                events as f64 / histories as f64,
                any
            );
        }
    }
    println!();
}

/// 3. A 5% slowdown: found in the warm tokens_per_second of how many cases.
fn power(suite: &Suite, histories: usize, runs: usize) {
    println!(
        "## A 5% slowdown (tokens_per_second -4.8%) after run {} and after run {} of {runs}: share of the 16 cases \
         whose warm tokens_per_second has a change point within 5 runs of it, downwards ({histories} histories per row)",
        runs / 2,
        runs - 10
    );
    let settings = settings();
    println!("{:<40} {:<28} {:>16} {:>16}", "settings", "noise", "100+ runs after", "10 runs after");
    for drift in [DRIFTS[0], DRIFTS[1], DRIFTS[2]] {
        let at = [runs / 2, runs - 10];
        let all: Vec<[Vec<HistoryRecord>; 2]> = (0..histories)
            .map(|h| {
                at.map(|s| make_history_fast(suite, drift, runs, 500 + h as u64, |i| if i >= s { 1.05 } else { 1.0 }))
            })
            .collect();
        for (label, opts) in &settings {
            let opts = Options { metrics: Some(vec!["tokens_per_second".into()]), ..opts.clone() };
            let mut hits = [0usize; 2];
            let mut total = 0usize;
            for pair in &all {
                for (k, records) in pair.iter().enumerate() {
                    let a = analyze::analyze(records, &opts).expect("valid settings");
                    for case in &suite.cases {
                        let found = a.change_points.iter().any(|c| {
                            c.case == case.id
                                && c.phase == PhaseName::Warm
                                && c.index.abs_diff(at[k]) <= 5
                                && c.relative_step.is_some_and(|s| s < 0.0)
                        });
                        hits[k] += usize::from(found);
                    }
                }
                total += suite.cases.len();
            }
            let pct = |h: usize| format!("{:.0}%", 100.0 * h as f64 / total as f64);
            println!("{label:<40} {:<28} {:>16} {:>16}", drift.name(), pct(hits[0]), pct(hits[1]));
        }
    }
    println!();
}
