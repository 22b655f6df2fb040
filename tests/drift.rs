//! The run is the unit, end to end: the real binary, a simulator launched
//! afresh for every run (`--server-command`, seeded by `INFERGATE_RUN`) with
//! a run-level drift factor, a baseline of several runs, and the verdict.
//!
//! A runner that drifts 4% between launches: an unchanged system whose
//! current launch landed 7-12% slower than the fastest baseline run passes
//! against the five-run baseline (its drift is within what the runs show),
//! while against a one-run baseline the verdict cannot see that drift and
//! every report says so; a real 60% slowdown still fails against the five.
#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap here is a failed test, not a crash.

use std::path::Path;
use std::time::Duration;

use assert_cmd::Command;
use infergate::exit;
use infergate::gate::{Comparison, Verdict};
use infergate::sim::SimConfig;
use infergate::stats::runlevel::SpreadSource;
use predicates::prelude::*;

const DRIFT: f64 = 0.04;

fn infergate(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("infergate").unwrap();
    cmd.current_dir(dir).env("NO_COLOR", "1").timeout(Duration::from_secs(300));
    cmd
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The simulator command line, seeded per launch by `seed`, a shell expression.
fn sim_command(port: u16, seed: &str, slowdown: f64) -> String {
    let bin = assert_cmd::cargo::cargo_bin("infergate");
    format!(
        "exec {} sim --port {port} --itl-ms 4 --request-cv 0.01 --run-drift {DRIFT} --slowdown {slowdown} --seed {seed}",
        bin.display()
    )
}

/// The run factor a launch with `seed` draws.
fn factor(seed: u64) -> f64 {
    infergate::sim::model::run_factor(&SimConfig { seed, run_drift: DRIFT, ..SimConfig::default() })
}

fn run_args(port: u16) -> Vec<String> {
    ["--base-url", &format!("http://127.0.0.1:{port}"), "--model", "sim", "--suite", "quick"]
        .iter()
        .map(|s| s.to_string())
        .chain(["--cases", "code-review/*", "--repetitions", "8", "--ready-timeout", "60s"].map(String::from))
        .collect()
}

fn comparison(path: &Path) -> Comparison {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn a_baseline_of_several_launches_tells_drift_from_regression() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let port = free_port();
    // Five baseline launches seeded OFFSET+1..OFFSET+5 (INFERGATE_RUN is 1..5),
    // the offset chosen so that their factors spread as the drift says (a
    // sample sd of 4-6%: five draws can by chance spread far less).
    let spread = |seeds: &[u64]| {
        let f: Vec<f64> = seeds.iter().map(|s| factor(*s)).collect();
        let m = f.iter().sum::<f64>() / f.len() as f64;
        (f.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (f.len() - 1) as f64).sqrt()
    };
    let offset = (100..10_000u64)
        .find(|o| (0.04..0.06).contains(&spread(&(o + 1..=o + 5).collect::<Vec<_>>())))
        .expect("an offset whose five launches spread 4-6%");
    let baseline_seeds: Vec<u64> = (offset + 1..=offset + 5).collect();
    infergate(d)
        .args([
            "run",
            "--runs",
            "5",
            "--server-command",
            &sim_command(port, &format!("$((INFERGATE_RUN + {offset}))"), 1.0),
        ])
        .args(["--out", "base/results.json"])
        .args(run_args(port))
        .assert()
        .code(exit::PASS)
        .stderr(predicate::str::contains("infergate baseline update --results base/results.run1.json"));
    let files: Vec<String> = (1..=5).map(|i| format!("base/results.run{i}.json")).collect();
    for (i, f) in files.iter().enumerate() {
        let r = infergate::results::load(&d.join(f)).unwrap();
        let launched = r.environment.server.launched.as_ref().expect("launched by infergate");
        assert!(launched.log.ends_with(&format!("server.run{}.log", i + 1)), "{launched:?}");
    }
    infergate(d)
        .args(["baseline", "update", "--baseline", "five", "--results"])
        .args(&files)
        .assert()
        .code(exit::PASS)
        .stderr(predicate::str::contains("5 run(s)"));
    // The launches' factors are known from their seeds; the one-run baseline
    // is the fastest of the five (a baseline recorded on a good day).
    let factors: Vec<f64> = baseline_seeds.iter().map(|s| factor(*s)).collect();
    let (fastest, f_min) =
        factors.iter().copied().enumerate().min_by(|a, b| a.1.total_cmp(&b.1)).expect("five factors");
    infergate(d)
        .args(["baseline", "update", "--baseline", "one", "--results", &files[fastest]])
        .assert()
        .code(exit::PASS)
        .stderr(predicate::str::contains("cannot see drift between runs"));

    // An unchanged launch 7-12% slower than that run, yet inside the spread of the five.
    let mean = factors.iter().sum::<f64>() / 5.0;
    let sd = (factors.iter().map(|f| (f - mean).powi(2)).sum::<f64>() / 4.0).sqrt();
    let seed = (1000..20_000)
        .find(|s| {
            let f = factor(*s);
            (1.07..1.12).contains(&(f / f_min)) && (f - mean).abs() < 1.2 * sd
        })
        .unwrap_or_else(|| panic!("no seed drifts within the baseline's spread: factors {factors:?}"));
    let check = |baseline: &str, slowdown: f64, out: &str| {
        infergate(d)
            .args([
                "check",
                "--baseline",
                baseline,
                "--server-command",
                &sim_command(port, &seed.to_string(), slowdown),
            ])
            .args(["--out", out])
            .args(run_args(port))
            .assert()
    };
    check("five", 1.0, "aa5/results.json")
        .code(exit::PASS)
        .stdout(predicate::str::contains("measured from 5 baseline runs"));
    let c = comparison(&d.join("aa5/comparison.json"));
    assert_eq!(c.verdict, Verdict::Pass, "{:?}", c.headline);
    assert_eq!(c.run_to_run.source, Some(SpreadSource::Runs));
    assert_eq!((c.run_to_run.baseline_runs, c.run_to_run.current_runs), (5, 1));

    // Against the one-run baseline the same drift is invisible, and every report says so.
    check("one", 1.0, "aa1/results.json")
        .code(predicate::in_iter([exit::PASS, exit::REGRESSION]))
        .stdout(predicate::str::contains("drift: NOT SEEN"));
    let c = comparison(&d.join("aa1/comparison.json"));
    assert_eq!(c.run_to_run.source, Some(SpreadSource::None));
    assert!(c.notes.contains(&infergate::gate::RunNote::DriftNotSeen), "{:?}", c.notes);

    // A real slowdown is caught through the drift.
    check("five", 1.6, "slow/results.json").code(exit::REGRESSION);
    let c = comparison(&d.join("slow/comparison.json"));
    assert_eq!(c.verdict, Verdict::Regressed, "{:?}", c.headline);
}
