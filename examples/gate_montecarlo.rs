//! The full Monte Carlo check of the gate's verdict (see `infergate::gate::montecarlo`).
//!
//! `cargo run --release --example gate_montecarlo [TRIALS]` (default 1000):
//! for per-request noise of 2% and 5%, the false-alarm rate on unchanged
//! (A/A) comparisons with the default rules, the share of 10% throughput
//! regressions caught with the repetitions calibration suggests, and whether
//! the minimum detectable change the tool reports matches the simulation.

use infergate::gate::montecarlo::{McConfig, run};
use infergate::suite::Suite;

fn main() {
    let trials: u32 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1000);
    let suite = match Suite::load("coder") {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    println!(
        "gate Monte Carlo: suite coder ({} cases), default rules, {trials} trials per experiment\n",
        suite.cases.len()
    );
    for cv in [0.02, 0.05] {
        let start = std::time::Instant::now();
        let r = run(&McConfig { cv, repetitions: 10, trials, suite: suite.clone(), seed: 2026 });
        println!("per-request CV {:.0}%  ({:.1} s)", cv * 100.0, start.elapsed().as_secs_f64());
        println!(
            "  A/A false alarms (exit 1) at {} repetitions: {} of {} = {:.2}%  (false 'improved': {:.2}%)",
            r.repetitions,
            r.aa_false_alarms,
            r.aa_trials,
            100.0 * f64::from(r.aa_false_alarms) / f64::from(r.aa_trials),
            100.0 * f64::from(r.aa_false_improvements) / f64::from(r.aa_trials)
        );
        println!(
            "  calibrate suggests {} repetitions; A/A false alarms there: {} of {} = {:.2}%",
            r.calibrated_repetitions,
            r.aa_false_alarms_calibrated,
            r.aa_trials,
            100.0 * f64::from(r.aa_false_alarms_calibrated) / f64::from(r.aa_trials)
        );
        println!(
            "  10% throughput regression at {} repetitions: caught in {:.1}% of cases, {:.1}% of runs fail",
            r.calibrated_repetitions,
            100.0 * r.detect_case_rate,
            100.0 * r.detect_run_rate
        );
        println!(
            "  reported minimum detectable change of tokens_per_second: {:.2}%; a change of that size was significant in {:.1}% of cases (promised 95%)\n",
            100.0 * r.reported_mdc,
            100.0 * r.mdc_power
        );
    }
}
