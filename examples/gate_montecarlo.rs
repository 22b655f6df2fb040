//! The full Monte Carlo check of the gate's verdict on a runner as harsh as
//! a real GPU runner (see `infergate::sim::montecarlo` for the noise model).
//!
//! `cargo run --release --example gate_montecarlo [SCALE]` (SCALE multiplies
//! the trial counts, default 1; `INFERGATE_MC_ONLY=aa,curve,mdc,calibrate`
//! picks sections). Every figure is a rate over seeded trials with its 95%
//! Wilson interval; the seed is fixed, so a run reproduces them exactly.
#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap here is a failed test, not a crash.

use infergate::gate::rules::Rules;
use infergate::sim::montecarlo::{self, Noise, Setup};

/// The A/A runners: per-request spread, run-to-run drift, heavy-tailed drift.
const RUNNERS: [(f64, f64, bool); 6] = [
    (0.02, 0.0, false),
    (0.05, 0.0, false),
    (0.02, 0.02, false),
    (0.05, 0.02, false),
    (0.05, 0.02, true),
    (0.05, 0.04, false),
];

fn main() {
    let scale: f64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1.0);
    let only = std::env::var("INFERGATE_MC_ONLY").ok();
    let want = |s: &str| only.as_deref().is_none_or(|o| o.split(',').any(|x| x.trim() == s));
    let n = |base: usize| ((base as f64 * scale).round() as usize).max(2);
    let suite = match infergate::suite::load("coder") {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    // INFERGATE_MC_SIGNIFICANCE: another false-alarm budget than the default 0.01.
    let rules = match std::env::var("INFERGATE_MC_SIGNIFICANCE").ok().and_then(|v| v.parse::<f64>().ok()) {
        Some(a) => match infergate::config::parse_toml::<infergate::config::Config>(
            &format!("[gate]\nsignificance = {a}\n"),
            "env",
        ) {
            Ok(c) => Rules::from_config(&c.gate),
            Err(e) => {
                eprintln!("error: INFERGATE_MC_SIGNIFICANCE: {e}");
                std::process::exit(2);
            }
        },
        None => Rules::default(),
    };
    let setup = |request_cv: f64, run_drift: f64, baseline_runs: usize| Setup {
        noise: Noise::runner(request_cv, run_drift),
        suite: suite.clone(),
        repetitions: 10,
        baseline_runs,
        rules: rules.clone(),
        seed: 2026,
        threads,
    };
    println!(
        "gate Monte Carlo: suite coder ({} cases), default rules (tokens/s tolerance 5%), 10 repetitions; \
         lognormal requests, 1% outliers up to 3x, autocorrelation 0.3, 20% warm-up after launch\n",
        suite.cases.len()
    );
    let timed = |name: &str| {
        println!("## {name}");
        std::time::Instant::now()
    };

    if want("aa") {
        let t = timed("A/A: how often an unchanged system fails (exit 1)");
        println!(
            "{:<46} {:>6}  {:<24} {:<24} {:<24} {:<24}",
            "runner", "base", "after", "fastest quarter", "slowest quarter", "before (today's gate)"
        );
        for (cv, drift, heavy) in RUNNERS {
            for k in [1, 5] {
                let mut s = setup(cv, drift, k);
                s.noise.heavy = heavy;
                let r = montecarlo::aa(&s, n(if k == 1 { 80 } else { 40 }), n(50));
                println!(
                    "{:<46} {:>6}  {:<24} {:<24} {:<24} {:<24}",
                    format!(
                        "request cv {:.0}%, drift {:.0}%{}",
                        cv * 100.0,
                        drift * 100.0,
                        if heavy { " (heavy-tailed)" } else { "" }
                    ),
                    format!("{k} run{}", if k == 1 { "" } else { "s" }),
                    r.all.text(),
                    r.fastest_quarter.text(),
                    r.slowest_quarter.text(),
                    r.before.map_or_else(|| "-".into(), |b| b.text())
                );
            }
        }
        println!("({:.0} s)\n", t.elapsed().as_secs_f64());
    }

    if want("history") {
        let t = timed("History: one-run baselines with the run-to-run spread from main's last runs (--history)");
        println!(
            "{:<46} {:<24} {:<24} {:<24} {:<24} {:<24} {:>9}  {:<24}",
            "runner",
            "main's history",
            "A/A after",
            "fastest quarter",
            "slowest quarter",
            "caught at 2x tol.",
            "tps cv",
            "A/A, run_to_run_cv = drift"
        );
        let steps: [(&str, Vec<(usize, f64)>); 2] =
            [("30 runs, unchanged", vec![]), ("30 runs, 3 steps of -4%", vec![(8, 0.96), (15, 0.96), (22, 0.96)])];
        for (cv, drift, heavy) in RUNNERS {
            for (label, moves) in &steps {
                if !moves.is_empty()
                    && (cv, drift, heavy) != (0.05, 0.02, false)
                    && (cv, drift, heavy) != (0.05, 0.02, true)
                {
                    continue;
                }
                let mut s = setup(cv, drift, 1);
                s.noise.heavy = heavy;
                let r = montecarlo::with_history(&s, n(80), n(50), 30, moves);
                // The same runner with the true drift configured instead: what a perfect A/A calibration gives.
                let configured = (drift > 0.0 && moves.is_empty()).then(|| {
                    let text = format!(
                        "[gate]\nsignificance = {}\nrun_to_run_cv = \"{}%\"\n",
                        rules.significance,
                        drift * 100.0
                    );
                    let c = infergate::config::parse_toml::<infergate::config::Config>(&text, "mc")
                        .map_err(|e| e.to_string());
                    c.map(|c| {
                        let cs = Setup { rules: Rules::from_config(&c.gate), ..s.clone() };
                        let caught = montecarlo::operating_curve(&cs, &[2.0], n(80), n(50));
                        format!(
                            "{}; caught {}",
                            montecarlo::aa(&cs, n(80), n(50)).all.text(),
                            caught.first().map_or_else(|| "-".into(), |p| p.failed.text())
                        )
                    })
                });
                println!(
                    "{:<46} {:<24} {:<24} {:<24} {:<24} {:<24} {:>8.2}%  {:<24}",
                    format!(
                        "request cv {:.0}%, drift {:.0}%{}",
                        cv * 100.0,
                        drift * 100.0,
                        if heavy { " (heavy-tailed)" } else { "" }
                    ),
                    label,
                    r.aa.all.text(),
                    r.aa.fastest_quarter.text(),
                    r.aa.slowest_quarter.text(),
                    r.caught.text(),
                    100.0 * r.median_cv,
                    match configured {
                        Some(Ok(t)) => t,
                        Some(Err(e)) => e,
                        None => "-".into(),
                    }
                );
            }
        }
        println!("({:.0} s)\n", t.elapsed().as_secs_f64());
    }

    if want("curve") {
        let t =
            timed("Operating curve: P(gate fails) against the true tokens/s drop, in multiples of the 5% tolerance");
        let multiples = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0];
        for k in [5, 1] {
            println!("baseline of {k} run{}, one check run:", if k == 1 { "" } else { "s" });
            print!("{:<30}", "request cv, drift");
            for m in multiples {
                print!(" {:>22}", format!("{m}x ({:.1}%)", m * 5.0));
            }
            println!();
            for cv in [0.02, 0.05] {
                for drift in [0.0, 0.01, 0.02, 0.04] {
                    let s = setup(cv, drift, k);
                    let curve = montecarlo::operating_curve(&s, &multiples, n(20), n(25));
                    print!("{:<30}", format!("{:.0}%, {:.0}%", cv * 100.0, drift * 100.0));
                    for p in &curve {
                        print!(" {:>22}", p.failed.text());
                    }
                    println!();
                }
            }
            println!();
        }
        println!("({:.0} s)\n", t.elapsed().as_secs_f64());
    }

    if want("mdc") {
        let t = timed(
            "Printed minimum detectable change: a case's tokens/s slowed by exactly it, how often flagged (promised 95%)",
        );
        for (cv, drift) in [(0.02, 0.0), (0.05, 0.0), (0.02, 0.02), (0.05, 0.02), (0.05, 0.04)] {
            for k in [5, 1] {
                let r = montecarlo::mdc_check(&setup(cv, drift, k), n(20), n(20));
                println!(
                    "request cv {:.0}%, drift {:.0}%, baseline of {k} run{}: caught {} (median printed change {:.1}%)",
                    cv * 100.0,
                    drift * 100.0,
                    if k == 1 { "" } else { "s" },
                    r.caught.text(),
                    r.median_mdc * 100.0
                );
            }
        }
        println!("({:.0} s)\n", t.elapsed().as_secs_f64());
    }

    if want("calibrate") {
        let count = n(50).max(10);
        let t =
            timed(&format!("calibrate with 5 relaunched runs, {count} seeded calibrations; request cv 5%, drift 2%"));
        let s = setup(0.05, 0.02, 5);
        let outcomes = montecarlo::calibrations(&s, count, 5);
        let mut tol: Vec<f64> = outcomes.iter().map(|o| o.tolerance).collect();
        tol.sort_by(f64::total_cmp);
        let q = |p: f64| tol[((tol.len() - 1) as f64 * p).round() as usize] * 100.0;
        println!(
            "suggested tokens/s tolerance: min {:.1}%, quartiles {:.1} / {:.1} / {:.1}%, max {:.1}%",
            q(0.0),
            q(0.25),
            q(0.5),
            q(0.75),
            q(1.0)
        );
        let mut cvs: Vec<f64> = outcomes.iter().map(|o| o.run_to_run_cv.1).collect();
        cvs.sort_by(f64::total_cmp);
        println!(
            "its run_to_run_cv (95% upper bound): median {:.1}%, {} of {} at or above the true 2%",
            cvs[cvs.len() / 2] * 100.0,
            cvs.iter().filter(|c| **c >= 0.02).count(),
            cvs.len()
        );
        let mut designs: Vec<(usize, u32)> = outcomes.iter().map(|o| (o.baseline_runs, o.repetitions)).collect();
        designs.sort_unstable();
        designs.dedup();
        println!("recommended designs (baseline runs, repetitions): {designs:?}");
        // Each calibration's settings: A/A false alarms and 2x-tolerance detection with its own design.
        let mut met = 0;
        let mut aa_all = montecarlo::Rate { hits: 0, trials: 0 };
        let mut caught = montecarlo::Rate { hits: 0, trials: 0 };
        let mut caught_cases = montecarlo::Rate { hits: 0, trials: 0 };
        let mut one_run_met = 0;
        let mut above = 0;
        let mut one_run_above = 0;
        for (i, o) in outcomes.iter().enumerate() {
            let Ok(rules) = montecarlo::suggested_rules(&Rules::default(), o) else { continue };
            let mine = |k: usize| Setup {
                repetitions: o.repetitions,
                baseline_runs: k,
                rules: rules.clone(),
                seed: 9000 + i as u64,
                ..setup(0.05, 0.02, k)
            };
            let aa = montecarlo::aa(&mine(o.baseline_runs), n(12), n(50));
            met += usize::from(aa.all.value() <= 0.01);
            above += usize::from(aa.all.interval().0 > 0.01);
            let add = |r: &mut montecarlo::Rate, x: montecarlo::Rate| {
                r.hits += x.hits;
                r.trials += x.trials;
            };
            add(&mut aa_all, aa.all);
            let one = montecarlo::aa(&mine(1), n(24), n(50));
            one_run_met += usize::from(one.all.value() <= 0.01);
            one_run_above += usize::from(one.all.interval().0 > 0.01);
            let curve = montecarlo::operating_curve(&mine(o.baseline_runs), &[2.0], n(3), n(10));
            add(&mut caught, curve[0].failed);
            add(&mut caught_cases, curve[0].cases_flagged);
        }
        println!(
            "with its settings and design: A/A false alarms {} over all calibrations; {} of {} calibrations at or \
             under 1% (each over {} pairs; one-run baselines with its run_to_run_cv: {} of {})",
            aa_all.text(),
            met,
            outcomes.len(),
            n(12) * n(50),
            one_run_met,
            outcomes.len()
        );
        println!(
            "calibrations whose rate is above 1% beyond doubt (95% interval above 1%): {above} of {} \
             (one-run baselines: {one_run_above})",
            outcomes.len()
        );
        println!(
            "twice its tolerance (exact tokens/s drop): runs failed {}, cases flagged {}",
            caught.text(),
            caught_cases.text()
        );
        println!("({:.0} s)\n", t.elapsed().as_secs_f64());
    }
}
