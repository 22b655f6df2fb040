//! `compare --history` and `check --history` end to end through the binary:
//! main's history gives a one-run baseline its run-to-run spread (a noisy
//! main makes a drop noise, a quiet main makes the same drop a regression),
//! a history of another environment is said and not used, a profile with no
//! runs yet still gets a verdict, and bad flags and keys are named.
#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap here is a failed test or run, not a crash.

mod support;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use assert_cmd::Command;
use infergate::exit;
use infergate::gate::Comparison;
use infergate::rng::Rng;
use infergate::sim::SimConfig;
use predicates::prelude::*;
use serde_json::Value;
use support::Sim;

fn infergate(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("infergate").unwrap();
    cmd.current_dir(dir).env("NO_COLOR", "1").timeout(Duration::from_secs(300));
    cmd
}

fn run(dir: &Path, sim: &Sim, name: &str) {
    infergate(dir)
        .args(["-q", "run", "--base-url", &sim.url(), "--model", "sim", "--suite", "quick", "--cases", "debugging/*"])
        .args(["--repetitions", "8", "--out", name])
        .assert()
        .code(exit::PASS);
}

/// Made once: `base.json` and `same.json` from one simulator, `slow.json`
/// from one whose decoding is 20% slower (about 16% fewer tokens per
/// second), the baseline `baselines/main.toml` from `base.json`, and
/// `line.json`: the history line `history append` writes for `base.json`.
fn fixtures() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("gate-history-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let fast = Sim::start(SimConfig { itl_ms: 2.0, ..SimConfig::default() });
        run(&dir, &fast, "base.json");
        run(&dir, &fast, "same.json");
        let slow = Sim::start(SimConfig { itl_ms: 2.4, ..SimConfig::default() });
        run(&dir, &slow, "slow.json");
        infergate(&dir)
            .args(["-q", "baseline", "update", "--results", "base.json", "--baseline", "main"])
            .assert()
            .code(exit::PASS);
        infergate(&dir)
            .args(["-q", "history", "append", "--results", "base.json", "--store", "scratch", "--profile", "main"])
            .assert()
            .code(exit::PASS);
        let line = std::fs::read_to_string(dir.join("scratch/main.jsonl")).unwrap();
        std::fs::write(dir.join("line.json"), line.trim()).unwrap();
        dir
    })
}

/// A workdir with the fixtures and a history `store/PROFILE.jsonl` of `runs`
/// runs of main: the real line of `base.json` with every value moved by one
/// run factor `exp(drift z)` per run (the runner's drift between launches).
fn workdir(profile: &str, runs: usize, drift: f64, environment: Option<&str>) -> tempfile::TempDir {
    workdir_with_step(profile, runs, drift, environment, None)
}

/// The same, with main slower by `step.1` (0.12: 12% fewer tokens per
/// second, times 1/0.88 longer) from run `step.0` on.
fn workdir_with_step(
    profile: &str,
    runs: usize,
    drift: f64,
    environment: Option<&str>,
    step: Option<(usize, f64)>,
) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for name in ["base.json", "same.json", "slow.json"] {
        std::fs::copy(fixtures().join(name), d.join(name)).unwrap();
    }
    std::fs::create_dir_all(d.join("baselines")).unwrap();
    std::fs::copy(fixtures().join("baselines/main.toml"), d.join("baselines/main.toml")).unwrap();
    std::fs::create_dir_all(d.join("store")).unwrap();
    let line: Value = serde_json::from_str(&std::fs::read_to_string(fixtures().join("line.json")).unwrap()).unwrap();
    let mut rng = Rng::new(31);
    let mut out = String::new();
    for i in 0..runs {
        let mut rec = line.clone();
        let slower = step.filter(|(at, _)| i >= *at).map_or(1.0, |(_, drop)| 1.0 / (1.0 - drop));
        let factor = (drift * rng.normal()).exp();
        rec["run_id"] = Value::from(format!("main-{i:03}"));
        rec["commit"] = Value::from(format!("{:07x}{:033x}", 0xabc0000 + i, 0));
        rec["profile"] = Value::from(profile);
        if let Some(env) = environment {
            rec["environment"] = Value::from(env);
        }
        for phases in rec["cases"].as_object_mut().unwrap().values_mut() {
            for metrics in phases.as_object_mut().unwrap().values_mut() {
                for (name, point) in metrics.as_object_mut().unwrap().iter_mut() {
                    let v = point["value"].as_f64().unwrap();
                    let moved = if name.contains("tokens_per_second") { v / slower } else { v * slower };
                    point["value"] = Value::from(moved * factor);
                }
            }
        }
        out.push_str(&serde_json::to_string(&rec).unwrap());
        out.push('\n');
    }
    std::fs::write(d.join(format!("store/{profile}.jsonl")), out).unwrap();
    dir
}

fn comparison(path: &Path) -> Comparison {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn compare(d: &Path, results: &str, extra: &[&str]) -> assert_cmd::assert::Assert {
    infergate(d).args(["compare", "--results", results, "--baseline", "main"]).args(extra).assert()
}

#[test]
fn a_noisy_main_makes_a_drop_noise_and_a_quiet_main_makes_it_a_regression() {
    let noisy = workdir("main", 20, 0.25, None);
    compare(noisy.path(), "slow.json", &["--history", "store"])
        .code(exit::PASS)
        .stdout(predicate::str::contains("drift: run-to-run spread from main's history (the last 20 runs of main"));
    let c = comparison(&noisy.path().join("comparison.json"));
    assert_eq!(c.run_to_run.source.map(|s| s.as_str()), Some("history"), "{:?}", c.run_to_run);
    assert_eq!(c.run_to_run.history_runs, Some(20));
    let tps = c.cases.iter().flat_map(|k| &k.metrics).find(|m| m.metric == "tokens_per_second").unwrap();
    assert!(tps.change < -0.05, "the slow server is slower beyond the tolerance: {}", tps.change);
    assert!(c.run_to_run.median_cv.unwrap() > 0.05, "{:?}", c.run_to_run);

    let quiet = workdir("main", 20, 0.003, None);
    compare(quiet.path(), "slow.json", &["--history", "store"]).code(exit::REGRESSION);
    let c = comparison(&quiet.path().join("comparison.json"));
    assert_eq!(c.run_to_run.source.map(|s| s.as_str()), Some("history"));
    assert!(c.run_to_run.median_cv.unwrap() < 0.01, "{:?}", c.run_to_run);
    // The same history, an unchanged server: no alarm.
    compare(quiet.path(), "same.json", &["--history", "store"]).code(exit::PASS);
    // The Markdown says where the spread came from, in both languages.
    compare(quiet.path(), "same.json", &["--history", "store", "--markdown", "c.md"]).code(exit::PASS);
    let md = std::fs::read_to_string(quiet.path().join("c.md")).unwrap();
    assert!(md.contains("as main's history measured it (the last 20 runs of main"), "{md}");
    compare(quiet.path(), "same.json", &["--history", "store", "--markdown", "c.md", "--lang", "ko"]).code(exit::PASS);
    let md = std::fs::read_to_string(quiet.path().join("c.md")).unwrap();
    assert!(md.contains("main 이력에서 측정한 값으로 판정에 반영했습니다(main의 최근 실행 20회"), "{md}");
}

#[test]
fn the_report_says_how_main_moved() {
    // Main lost 12% of its tokens per second 14 runs ago, at commit abc0010.
    let w = workdir_with_step("main", 30, 0.003, None, Some((16, 0.12)));
    compare(w.path(), "same.json", &["--history", "store", "--markdown", "c.md"])
        .stdout(predicate::str::contains("main over time (last 30 runs of main):"))
        .stdout(
            predicate::str::is_match(
                r"tokens_per_second on main: -1[12]\.\d% since commit abc0010, 14 runs ago, in one step",
            )
            .unwrap(),
        );
    let md = std::fs::read_to_string(w.path().join("c.md")).unwrap();
    assert!(md.contains("**Main over time** (last 30 runs of main):"), "{md}");
    let c = comparison(&w.path().join("comparison.json"));
    let m = c.main_over_time.unwrap();
    let tps = m.trends.iter().find(|t| t.metric == "tokens_per_second").unwrap();
    assert!(tps.worse && (tps.change + 0.12).abs() < 0.01 && tps.runs_ago == 14 && tps.steps == 1, "{tps:?}");
    assert!(tps.since_commit.as_deref().unwrap().starts_with("abc0010"));
    // A flat main: no line.
    let flat = workdir("main", 30, 0.003, None);
    compare(flat.path(), "same.json", &["--history", "store"])
        .code(exit::PASS)
        .stdout(predicate::str::contains("main over time").not());
    assert_eq!(comparison(&flat.path().join("comparison.json")).main_over_time.unwrap().trends, vec![]);
}

#[test]
fn the_window_reads_only_the_last_runs() {
    let w = workdir("main", 40, 0.003, None);
    compare(w.path(), "same.json", &["--history", "store", "--history-window", "12"]).code(exit::PASS);
    assert_eq!(comparison(&w.path().join("comparison.json")).run_to_run.history_runs, Some(12));
    std::fs::write(w.path().join("infergate.toml"), "[history]\nwindow = 25\n").unwrap();
    compare(w.path(), "same.json", &["--history", "store"]).code(exit::PASS);
    assert_eq!(comparison(&w.path().join("comparison.json")).run_to_run.history_runs, Some(25));
}

#[test]
fn a_history_of_another_environment_is_said_and_not_used() {
    let w = workdir("main", 20, 0.003, Some("another GPU"));
    compare(w.path(), "slow.json", &["--history", "store"])
        .stdout(predicate::str::contains("0 of its 20 run(s) are on this environment"));
    let c = comparison(&w.path().join("comparison.json"));
    assert_ne!(c.run_to_run.source.map(|s| s.as_str()), Some("history"));
    assert_eq!(c.run_to_run.history_runs, None);
    let v: Value = serde_json::from_str(&std::fs::read_to_string(w.path().join("comparison.json")).unwrap()).unwrap();
    let note = v["notes"].as_array().unwrap().iter().find(|n| n["kind"] == "history_unused").unwrap();
    assert_eq!((note["records"].as_u64(), note["same_environment"].as_u64()), (Some(20), Some(0)));
}

#[test]
fn a_profile_with_no_runs_yet_still_gets_a_verdict() {
    let w = workdir("other", 20, 0.003, None);
    compare(w.path(), "same.json", &["--history", "store"])
        .code(exit::PASS)
        .stderr(predicate::str::contains("profile main has no runs yet"));
    compare(w.path(), "same.json", &["--history", "store", "--history-profile", "other"]).code(exit::PASS);
    assert_eq!(comparison(&w.path().join("comparison.json")).run_to_run.history_runs, Some(20));
}

#[test]
fn bad_history_flags_and_keys_are_named() {
    let w = workdir("main", 20, 0.003, None);
    let d = w.path();
    compare(d, "same.json", &["--history", "nowhere"])
        .code(exit::INVALID_INPUT)
        .stderr(predicate::str::contains("--history nowhere: not a folder"));
    compare(d, "same.json", &["--history", "store", "--history-window", "5"])
        .code(exit::INVALID_INPUT)
        .stderr(predicate::str::contains("--history-window"));
    compare(d, "same.json", &["--history-window", "20"])
        .code(exit::INVALID_INPUT)
        .stderr(predicate::str::contains("--history"));
    compare(d, "same.json", &["--history", "store", "--history-profile", "../x"])
        .code(exit::INVALID_INPUT)
        .stderr(predicate::str::contains("--history-profile"));
    std::fs::write(d.join("infergate.toml"), "[history]\nwindow = 3\n").unwrap();
    compare(d, "same.json", &["--history", "store"])
        .code(exit::INVALID_INPUT)
        .stderr(predicate::str::contains("infergate.toml: [history] window = 3"));
    assert!(!d.join("comparison.json").exists(), "nothing written on bad input");
    // A bad history line is an error naming file and line, not a silent pass.
    std::fs::write(d.join("infergate.toml"), "").unwrap();
    let mut text = std::fs::read_to_string(d.join("store/main.jsonl")).unwrap();
    text.insert_str(0, "{\"schema\": \"infergate.history.v1\"}\n");
    std::fs::write(d.join("store/main.jsonl"), text).unwrap();
    compare(d, "same.json", &["--history", "store"])
        .code(exit::INVALID_INPUT)
        .stderr(predicate::str::contains("main.jsonl:1"));
}

#[test]
fn calibrate_takes_the_run_to_run_spread_from_main() {
    let w = workdir("main", 20, 0.06, None);
    let d = w.path();
    let sim = Sim::start(SimConfig { itl_ms: 2.0, ..SimConfig::default() });
    let calibrate = |extra: &[&str]| {
        let mut cmd = infergate(d);
        cmd.args(["-q", "calibrate", "--base-url", &sim.url(), "--model", "sim", "--suite", "quick"])
            .args(["--cases", "debugging/*", "--repetitions", "8", "--runs", "3", "--out", "cal/results.json"])
            .args(extra);
        cmd.assert()
    };
    calibrate(&["--history", "store"])
        .code(exit::INVALID_INPUT)
        .stderr(predicate::str::contains("needs --history-profile NAME"));
    calibrate(&["--history", "store", "--history-profile", "main"])
        .code(exit::PASS)
        .stdout(predicate::str::contains("from the last 20 runs of main (--history)"));
    let cal: Value = serde_json::from_str(&std::fs::read_to_string(d.join("cal/calibration.json")).unwrap()).unwrap();
    assert_eq!(cal["history_runs"], 20);
    let tps = cal["metrics"].as_array().unwrap().iter().find(|m| m["metric"] == "tokens_per_second").unwrap();
    assert_eq!(tps["spread_source"], "history");
    let cv = tps["run_to_run_cv"].as_f64().unwrap();
    assert!(cv > 0.04 && cv < 0.15, "main's 6% drift, not the simulator's none: {cv}");
}
