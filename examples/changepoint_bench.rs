//! Speed and accuracy of the change-point search (`infergate::stats::changepoint`)
//! on seeded synthetic histories.
//!
//! `cargo run --release --example changepoint_bench [-- --csv DIR] [--block B] [--quick]`
//!
//! Prints: the time to analyse 112 series of 1,000 runs (16 cases x 7
//! metrics, the permutation tests included); false change points per 100
//! noise-only series at 2% and 5% run-to-run noise; the share of 5% steps
//! found and how many runs after the step they are found when the history is
//! re-analysed after every new run; the same for a slow creep.
//! `--only time,noise,delay,finished,creep` picks sections. Rates carry 95% Wilson intervals; the
//! seeds are fixed, so a run reproduces every figure but the times.
//!
//! `--csv DIR` also writes the series of the Otava comparison
//! (`DIR/series.csv`, the true steps in `DIR/truth.csv`) and our change
//! points on them (`DIR/ours.csv`), for
//! `scripts/otava-compare.py`. `--block B` shuffles blocks of B runs in the
//! noise and step sections (default 1, the classic test).
#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap here is a failed test or run, not a crash.

use std::time::Instant;

use infergate::rng::Rng;
use infergate::stats::changepoint::{ChangePoint, ChangePointConfig, detect};

/// Run-to-run noise: lognormal around a level, optionally t3 in the log
/// (heavy tails) and AR(1) from one run to the next.
#[derive(Clone, Copy)]
struct Noise {
    cv: f64,
    heavy: bool,
    rho: f64,
}

impl Noise {
    fn name(&self) -> String {
        let shape = if self.heavy { "t3 tails" } else { "lognormal" };
        let ar = if self.rho > 0.0 { format!(", AR(1) {}", self.rho) } else { String::new() };
        format!("cv {:.0}%, {shape}{ar}", self.cv * 100.0)
    }
}

struct Gen(Rng);

impl Gen {
    fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.0.unit();
        let u2 = self.0.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Student's t with 3 degrees of freedom, unit variance.
    fn student3(&mut self) -> f64 {
        let chi2: f64 = (0..3).map(|_| self.normal().powi(2)).sum();
        self.normal() / (chi2 / 3.0).sqrt() / 3f64.sqrt()
    }

    /// `levels[i] * noise` for each run.
    fn series(&mut self, levels: &[f64], noise: Noise) -> Vec<f64> {
        let mut e = 0.0;
        levels
            .iter()
            .enumerate()
            .map(|(i, level)| {
                let z = if noise.heavy { self.student3() } else { self.normal() };
                e = if i == 0 { z } else { noise.rho * e + (1.0 - noise.rho * noise.rho).sqrt() * z };
                level * (noise.cv * e).exp()
            })
            .collect()
    }
}

/// `hits / n` as a percentage with its 95% Wilson interval.
fn rate(hits: usize, n: usize) -> String {
    let (z, nf) = (1.959_963_984_540_054, n as f64);
    let p = hits as f64 / nf;
    let centre = (p + z * z / (2.0 * nf)) / (1.0 + z * z / nf);
    let half = z / (1.0 + z * z / nf) * (p * (1.0 - p) / nf + z * z / (4.0 * nf * nf)).sqrt();
    format!("{:5.1}% [{:.1}, {:.1}]", 100.0 * p, 100.0 * (centre - half).max(0.0), 100.0 * (centre + half).min(1.0))
}

fn run(series: &[f64], cfg: &ChangePointConfig) -> Vec<ChangePoint> {
    match detect(series, cfg) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    }
}

/// Levels of a history with steps `(at, factor)` applied from `at` on.
fn stepped(len: usize, steps: &[(usize, f64)]) -> Vec<f64> {
    (0..len).map(|i| steps.iter().filter(|s| i >= s.0).fold(100.0, |l, s| l * s.1)).collect()
}

/// The 112 series of the timing: 16 cases x 7 metrics of 1,000 runs, a
/// quarter flat, a quarter with one step, a quarter with three, a quarter
/// creeping -10% over 300 runs; noise 2% or 5%, some heavy-tailed, some AR(1).
fn history(g: &mut Gen) -> Vec<Vec<f64>> {
    (0..112)
        .map(|s| {
            let at = |g: &mut Gen| 100 + g.0.below(800) as usize;
            let levels = match s % 4 {
                0 => stepped(1000, &[]),
                1 => stepped(1000, &[(at(g), 0.95)]),
                2 => stepped(1000, &[(at(g), 0.96), (at(g), 0.93), (at(g), 1.05)]),
                _ => (0..1000).map(|i| 100.0 * (1.0 - 0.1 * (i.clamp(500, 800) - 500) as f64 / 300.0)).collect(),
            };
            let noise = Noise {
                cv: if s % 2 == 0 { 0.02 } else { 0.05 },
                heavy: s % 3 == 0,
                rho: if s % 5 == 0 { 0.3 } else { 0.0 },
            };
            g.series(&levels, noise)
        })
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let quick = args.iter().any(|a| a == "--quick");
    let only = flag("--only");
    let want = |s: &str| only.as_deref().is_none_or(|o| o.split(',').any(|x| x.trim() == s));
    let block: usize = flag("--block").and_then(|b| b.parse().ok()).unwrap_or(1);
    let base = ChangePointConfig::default();
    let cfg = ChangePointConfig { block, ..base };
    println!(
        "change points: E-divisive means, alpha {}, significance {}, {} permutations, min segment {}, block {}\n",
        cfg.alpha, cfg.significance, cfg.permutations, cfg.min_segment, cfg.block
    );

    if want("time") {
        time_history(&base, quick);
    }
    if want("noise") {
        false_alarms(&cfg, quick);
    }
    if want("delay") {
        delays(&cfg, quick);
    }
    if want("finished") {
        finished(&cfg, quick);
    }
    if want("creep") {
        creep(&cfg, quick);
    }
    if let Some(dir) = flag("--csv") {
        if let Err(e) = write_csv(std::path::Path::new(&dir)) {
            eprintln!("error: writing {dir}: {e}");
            std::process::exit(2);
        }
        println!("\nwrote {dir}/series.csv, truth.csv and ours.csv (for scripts/otava-compare.py)");
    }
}

/// 1. Time for a whole history.
fn time_history(base: &ChangePointConfig, quick: bool) {
    let mut g = Gen(Rng::new(2026));
    let series = history(&mut g);
    println!(
        "## Time: 112 series x 1,000 runs (16 cases x 7 metrics), permutation tests included\n\
         (wall clock, and the CPU time of the analysing threads: on a busy machine the wall clock also counts other processes)"
    );
    let mut wall = Vec::new();
    let mut cpu = Vec::new();
    let mut found = 0;
    for _ in 0..if quick { 1 } else { 5 } {
        let (t, c) = (Instant::now(), thread_cpu());
        found = series.iter().map(|s| run(s, base).len()).sum::<usize>();
        wall.push(t.elapsed().as_secs_f64());
        cpu.extend(c.zip(thread_cpu()).map(|(a, b)| b - a));
    }
    let summary = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        match (v.first(), v.get(v.len() / 2), v.last()) {
            (Some(lo), Some(mid), Some(hi)) => format!("median {mid:.3} s (fastest {lo:.3}, slowest {hi:.3})"),
            _ => "unavailable".into(),
        }
    };
    println!("one thread, {} repeats: wall {}, CPU {}", wall.len(), summary(&mut wall), summary(&mut cpu));
    println!("{found} change points found");
    let t = Instant::now();
    let (halves, cpus) = std::thread::scope(|s| {
        let (a, b) = series.split_at(series.len() / 2);
        let h = [a, b].map(|part| {
            s.spawn(move || {
                let c = thread_cpu();
                let n = part.iter().map(|x| run(x, base).len()).sum::<usize>();
                (n, c.zip(thread_cpu()).map(|(a, b)| b - a))
            })
        });
        h.into_iter().fold((0, Vec::new()), |(n, mut c), h| {
            let (k, t) = h.join().unwrap_or((0, None));
            c.extend(t);
            (n + k, c)
        })
    });
    let cpus: Vec<String> = cpus.iter().map(|c| format!("{c:.3} s")).collect();
    println!(
        "two threads (series split in halves): wall {:.3} s, CPU per thread {} ({halves} change points)\n",
        t.elapsed().as_secs_f64(),
        cpus.join(" + ")
    );
}

/// CPU time of the calling thread in seconds (Linux; `None` elsewhere).
fn thread_cpu() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: f64 = text.split_whitespace().next()?.parse().ok()?;
    Some(ns / 1e9)
}

/// 2. False change points on noise only.
fn false_alarms(cfg: &ChangePointConfig, quick: bool) {
    let count = if quick { 100 } else { 500 };
    println!("## False change points on noise-only series ({count} series per row)");
    println!("{:<34} {:>5}  {:>14}  {:<28}", "noise", "runs", "per 100 series", "series with any");
    let mut g = Gen(Rng::new(7));
    for len in [200, 1000] {
        for noise in [
            Noise { cv: 0.02, heavy: false, rho: 0.0 },
            Noise { cv: 0.05, heavy: false, rho: 0.0 },
            Noise { cv: 0.02, heavy: true, rho: 0.0 },
            Noise { cv: 0.05, heavy: true, rho: 0.0 },
            Noise { cv: 0.02, heavy: true, rho: 0.3 },
            Noise { cv: 0.05, heavy: true, rho: 0.3 },
        ] {
            let (mut any, mut total) = (0, 0);
            for _ in 0..count {
                let cps = run(&g.series(&vec![100.0; len], noise), cfg);
                any += usize::from(!cps.is_empty());
                total += cps.len();
            }
            println!(
                "{:<34} {:>5}  {:>14.1}  {:<28}",
                noise.name(),
                len,
                100.0 * total as f64 / count as f64,
                rate(any, count)
            );
        }
    }
    println!();
}

/// 3. A 5% step, found as the history grows.
fn delays(cfg: &ChangePointConfig, quick: bool) {
    let count = if quick { 60 } else { 200 };
    let (history_len, horizon) = (100, 60);
    println!(
        "## A 5% drop after {history_len} flat runs, re-analysed after every new run ({count} series per row)\n\
         found: a change point within 10 runs of the step, by N runs after it (delay: runs after the step, \
         the first changed run counted); located: the change point {horizon} runs after the step is within 3 runs of it"
    );
    println!(
        "{:<30} {:<21} {:<21} {:<21} {:>8}  {:<21} {:<21}",
        "noise",
        "found by 10 runs",
        "by 20 runs",
        format!("by {horizon} runs"),
        "p50/p90",
        "located",
        "false before the step"
    );
    let mut g = Gen(Rng::new(11));
    for noise in [
        Noise { cv: 0.02, heavy: false, rho: 0.0 },
        Noise { cv: 0.05, heavy: false, rho: 0.0 },
        Noise { cv: 0.02, heavy: true, rho: 0.0 },
        Noise { cv: 0.05, heavy: true, rho: 0.0 },
        Noise { cv: 0.02, heavy: true, rho: 0.3 },
        Noise { cv: 0.05, heavy: true, rho: 0.3 },
    ] {
        let mut delays = Vec::new();
        let (mut false_early, mut located) = (0, 0);
        for _ in 0..count {
            let x = g.series(&stepped(history_len + horizon, &[(history_len, 0.95)]), noise);
            // A change point in the history as it stood before the step.
            false_early += usize::from(!run(&x[..history_len], cfg).is_empty());
            let near = |cps: &[ChangePoint], within: usize| cps.iter().any(|c| c.index.abs_diff(history_len) <= within);
            delays.extend((1..=horizon).find(|&d| near(&run(&x[..history_len + d], cfg), 10)));
            located += usize::from(near(&run(&x, cfg), 3));
        }
        delays.sort_unstable();
        let by = |d: usize| rate(delays.iter().filter(|&&x| x <= d).count(), count);
        let pct = |q: f64| {
            delays.get(((delays.len() as f64 - 1.0) * q).round() as usize).map_or("-".into(), |d| d.to_string())
        };
        println!(
            "{:<30} {:<21} {:<21} {:<21} {:>8}  {:<21} {:<21}",
            noise.name(),
            by(10),
            by(20),
            by(horizon),
            format!("{}/{}", pct(0.5), pct(0.9)),
            rate(located, count),
            rate(false_early, count)
        );
    }
    println!();
}

/// 4. A 5% step in the middle of a finished 1,000-run history.
fn finished(cfg: &ChangePointConfig, quick: bool) {
    let count = if quick { 60 } else { 200 };
    println!("## A 5% drop at run 500 of a finished 1,000-run history ({count} series per row)");
    println!("{:<30} {:<21} {:<21} {:>20}", "noise", "within 3 runs", "within 10 runs", "other change points");
    let mut g = Gen(Rng::new(13));
    for noise in [
        Noise { cv: 0.02, heavy: true, rho: 0.0 },
        Noise { cv: 0.05, heavy: true, rho: 0.0 },
        Noise { cv: 0.05, heavy: true, rho: 0.3 },
    ] {
        let (mut hit3, mut hit10, mut other) = (0, 0, 0);
        for _ in 0..count {
            let cps = run(&g.series(&stepped(1000, &[(500, 0.95)]), noise), cfg);
            let within = |w: usize| cps.iter().filter(|c| c.index.abs_diff(500) <= w).count();
            hit3 += usize::from(within(3) > 0);
            hit10 += usize::from(within(10) > 0);
            other += cps.len() - within(10);
        }
        println!("{:<30} {:<21} {:<21} {:>20}", noise.name(), rate(hit3, count), rate(hit10, count), other);
    }
    println!();
}

/// 5. A slow creep, found as the history grows.
fn creep(cfg: &ChangePointConfig, quick: bool) {
    let count = if quick { 30 } else { 100 };
    let (flat, slope, runs, every) = (100, 0.0005, 200, 5);
    println!(
        "## A creep of -{:.2}% a run (-{:.0}% over {runs} runs) after {flat} flat runs, re-analysed every {every} runs \
         ({count} series per row)\nfound: a change point after the creep began (index >= {flat})",
        slope * 100.0,
        slope * runs as f64 * 100.0
    );
    println!(
        "{:<30} {:<21} {:>22}  {:>16}  {:>22}",
        "noise", "found by the end", "runs into it p50/p90", "drift by then", "change points at end"
    );
    let mut g = Gen(Rng::new(17));
    for noise in [Noise { cv: 0.02, heavy: true, rho: 0.0 }, Noise { cv: 0.05, heavy: true, rho: 0.0 }] {
        let levels: Vec<f64> =
            (0..flat + runs).map(|i: usize| 100.0 * (1.0 - slope * i.saturating_sub(flat) as f64)).collect();
        let (mut at, mut at_end) = (Vec::new(), 0);
        for _ in 0..count {
            let x = g.series(&levels, noise);
            at.extend(
                (every..=runs).step_by(every).find(|&d| run(&x[..flat + d], cfg).iter().any(|c| c.index >= flat)),
            );
            at_end += run(&x, cfg).len();
        }
        at.sort_unstable();
        let pct = |q: f64| at.get(((at.len() as f64 - 1.0) * q).round() as usize).copied();
        let show = |v: Option<usize>| v.map_or("-".to_string(), |v| v.to_string());
        println!(
            "{:<30} {:<21} {:>22}  {:>16}  {:>22.1}",
            noise.name(),
            rate(at.len(), count),
            format!("{}/{}", show(pct(0.5)), show(pct(0.9))),
            pct(0.5).map_or("-".into(), |d| format!("-{:.1}% (p50)", slope * d as f64 * 100.0)),
            at_end as f64 / count as f64
        );
    }
    println!();
}

/// The series of the Otava comparison, and our change points on them with the
/// default settings and with `min_segment = 1` (Otava has no minimum).
fn write_csv(dir: &std::path::Path) -> std::io::Result<()> {
    use std::fmt::Write as _;
    std::fs::create_dir_all(dir)?;
    let mut g = Gen(Rng::new(31));
    let mut series_csv = String::from("series,kind,index,value\n");
    let mut ours_csv = String::from("series,config,index,p_value\n");
    let mut truth_csv = String::from("series,index\n");
    let configs = [
        ("default", ChangePointConfig::default()),
        ("min_segment_1", ChangePointConfig { min_segment: 1, ..ChangePointConfig::default() }),
    ];
    for id in 0..60 {
        let noise = Noise { cv: if id % 2 == 0 { 0.02 } else { 0.05 }, heavy: id % 3 == 0, rho: 0.0 };
        let len = 200;
        let at = |g: &mut Gen| 30 + g.0.below(140) as usize;
        let (kind, steps) = match id % 3 {
            0 => ("noise", vec![]),
            1 => ("one-step", vec![(at(&mut g), 0.92)]),
            _ => {
                let a = 20 + g.0.below(50) as usize;
                let b = a + 40 + g.0.below(50) as usize;
                ("two-steps", vec![(a, 0.93), (b, 1.1)])
            }
        };
        for (at, _) in &steps {
            let _ = writeln!(truth_csv, "{id},{at}");
        }
        let x = g.series(&stepped(len, &steps), noise);
        for (i, v) in x.iter().enumerate() {
            let _ = writeln!(series_csv, "{id},{kind},{i},{v}");
        }
        for (name, cfg) in &configs {
            for c in run(&x, cfg) {
                let _ = writeln!(ours_csv, "{id},{name},{},{}", c.index, c.p_value);
            }
        }
    }
    std::fs::write(dir.join("series.csv"), series_csv)?;
    std::fs::write(dir.join("truth.csv"), truth_csv)?;
    std::fs::write(dir.join("ours.csv"), ours_csv)
}
