//! End-to-end tests of the gate: baselines, compare, check, demo.
#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap here is a failed test, not a crash.

mod support;

use std::path::Path;
use std::time::Duration;

use assert_cmd::Command;
use infergate::exit;
use infergate::gate::{Comparison, Verdict};
use infergate::sim::SimConfig;
use predicates::prelude::*;
use support::Sim;

fn infergate(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("infergate").unwrap();
    cmd.current_dir(dir).env("NO_COLOR", "1").timeout(Duration::from_secs(300));
    cmd
}

/// Runs two quick-suite cases against `sim` into `dir/name`.
fn run(dir: &Path, sim: &Sim, name: &str, extra: &[&str]) {
    infergate(dir)
        .args(["-q", "run", "--base-url", &sim.url(), "--model", "sim", "--suite", "quick", "--cases", "debugging/*"])
        .args(["--repetitions", "8", "--out", name])
        .args(extra)
        .assert()
        .code(exit::PASS);
}

fn comparison(path: &Path) -> Comparison {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn results_against_their_own_baseline_pass_and_a_rerecord_changes_nothing() {
    let sim = Sim::start(SimConfig { itl_ms: 2.0, ..SimConfig::default() });
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run(d, &sim, "r1.json", &[]);
    infergate(d)
        .args(["baseline", "update", "--results", "r1.json", "--baseline", "local"])
        .assert()
        .code(exit::PASS)
        .stdout(predicate::str::contains("+++ b/baselines/local.toml"));
    assert!(d.join("baselines/local.toml").exists());
    infergate(d)
        .args(["compare", "--results", "r1.json", "--baseline", "local"])
        .assert()
        .code(exit::PASS)
        .stdout(predicate::str::contains("PASS"));
    let c = comparison(&d.join("comparison.json"));
    assert_eq!(c.verdict, Verdict::Pass);
    assert_eq!(c.counts.unchanged, 2);
    // Recording the same results again is a no-op.
    infergate(d)
        .args(["baseline", "update", "--results", "r1.json", "--baseline", "local", "--only-changed"])
        .assert()
        .code(exit::PASS)
        .stderr(predicate::str::contains("unchanged"));
    infergate(d)
        .args(["baseline", "show", "local"])
        .assert()
        .code(exit::PASS)
        .stdout(predicate::str::contains("debugging/1024").and(predicate::str::contains("tok/s p50")));
}

#[test]
fn only_changed_rerecord_of_an_unchanged_simulator_is_tiny() {
    // Slow enough tokens that a busy test machine's scheduling jitter (a few
    // ms) stays well inside the tolerances: the cold phase is one request a
    // run, so nothing averages the jitter out.
    let sim = Sim::start(SimConfig { itl_ms: 8.0, ..SimConfig::default() });
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run(d, &sim, "r1.json", &[]);
    run(d, &sim, "r2.json", &[]);
    infergate(d).args(["baseline", "update", "--results", "r1.json", "--baseline", "p"]).assert().code(exit::PASS);
    let out = infergate(d)
        .args(["baseline", "update", "--results", "r2.json", "--baseline", "p", "--only-changed"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(exit::PASS));
    let diff = String::from_utf8(out.stdout).unwrap();
    let changed =
        diff.lines().filter(|l| l.starts_with(['+', '-']) && !l.starts_with("+++") && !l.starts_with("---")).count();
    // Noise keeps the old values: at most the header and a stray series move.
    assert!(changed <= 12, "{changed} lines changed:\n{diff}");
    // Without --only-changed every series is rewritten.
    let out = infergate(d).args(["baseline", "update", "--results", "r2.json", "--baseline", "p"]).output().unwrap();
    let full = String::from_utf8(out.stdout).unwrap().lines().filter(|l| l.starts_with('+')).count();
    assert!(full > changed, "{full} vs {changed}");
}

#[test]
fn corrupted_baseline_exits_2_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("baselines")).unwrap();
    let text = infergate::app::DEMO_BASELINE.replacen("requests = 50", "requests = \"ten\"", 1);
    let line = text.lines().position(|l| l.contains("\"ten\"")).unwrap() + 1;
    std::fs::write(d.join("baselines/bad.toml"), text).unwrap();
    std::fs::write(d.join("r.json"), "{}").unwrap();
    infergate(d).args(["compare", "--results", "r.json", "--baseline", "bad"]).assert().code(exit::INVALID_INPUT);
    // The results file is also checked; give a valid one through the demo baseline's own suite.
    let sim = Sim::start(SimConfig { itl_ms: 1.0, ..SimConfig::default() });
    run(d, &sim, "r.json", &[]);
    infergate(d)
        .args(["compare", "--results", "r.json", "--baseline", "bad"])
        .assert()
        .code(exit::INVALID_INPUT)
        .stderr(
            predicate::str::contains(format!("baselines/bad.toml:{line}")).and(predicate::str::contains("requests")),
        );
    infergate(d)
        .args(["compare", "--results", "r.json", "--baseline", "absent"])
        .assert()
        .code(exit::INVALID_INPUT)
        .stderr(predicate::str::contains("baseline update"));
}

#[test]
fn suite_mismatch_exits_3_unless_allowed() {
    let sim = Sim::start(SimConfig { itl_ms: 1.0, ..SimConfig::default() });
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run(d, &sim, "r.json", &[]);
    std::fs::create_dir_all(d.join("baselines")).unwrap();
    std::fs::write(
        d.join("baselines/other.toml"),
        infergate::app::DEMO_BASELINE.replace("name = \"quick\"", "name = \"coder\""),
    )
    .unwrap();
    infergate(d)
        .args(["compare", "--results", "r.json", "--baseline", "other", "--format", "markdown"])
        .assert()
        .code(exit::RUN_FAILED)
        .stdout(predicate::str::contains("suite").and(predicate::str::contains("--allow-mismatch")));
    assert_eq!(comparison(&d.join("comparison.json")).verdict, Verdict::Refused);
    let out = infergate(d)
        .args(["compare", "--results", "r.json", "--baseline", "other", "--allow-mismatch", "--format", "json"])
        .output()
        .unwrap();
    let c: Comparison = serde_json::from_slice(&out.stdout).unwrap();
    assert!(c.mismatch_allowed);
    assert_ne!(c.verdict, Verdict::Refused);
    // check refuses before running anything.
    infergate(d)
        .args(["check", "--base-url", &sim.url(), "--model", "sim", "--suite", "quick", "--baseline", "other"])
        .args(["--out", "never.json"])
        .assert()
        .code(exit::RUN_FAILED)
        .stderr(predicate::str::contains("different setup"));
    assert!(!d.join("never.json").exists());
}

#[test]
fn baseline_update_never_writes_outside_the_baselines_folder() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sim = Sim::start(SimConfig { itl_ms: 1.0, ..SimConfig::default() });
    run(d, &sim, "r.json", &[]);
    for bad in ["../escape", "../escape.toml", "/tmp/escape.toml", "baselines/../escape.toml", "elsewhere/x.toml"] {
        infergate(d)
            .args(["baseline", "update", "--results", "r.json", "--baseline", bad])
            .assert()
            .code(exit::INVALID_INPUT)
            .stderr(predicate::str::contains("baselines"));
    }
    assert!(!d.join("escape.toml").exists() && !d.parent().unwrap().join("escape.toml").exists());
}

#[test]
fn partial_or_failed_results_are_never_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sim = Sim::start(SimConfig { ttft_base_ms: 300.0, ..SimConfig::default() });
    infergate(d)
        .args(["-q", "run", "--base-url", &sim.url(), "--model", "sim", "--suite", "quick", "--cases", "debugging/256"])
        .args(["--repetitions", "2", "--request-timeout", "100ms", "--out", "bad.json"])
        .assert()
        .code(exit::RUN_FAILED);
    infergate(d)
        .args(["baseline", "update", "--results", "bad.json", "--baseline", "p"])
        .assert()
        .code(exit::RUN_FAILED)
        .stderr(predicate::str::contains("failed request"));
    assert!(!d.join("baselines/p.toml").exists());
}

#[test]
fn demo_passes_and_a_ten_percent_slowdown_fails_with_throughput_regressed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    infergate(d).args(["demo"]).assert().code(exit::PASS).stdout(predicate::str::contains("PASS"));
    infergate(d)
        .args(["demo", "--slowdown", "1.10"])
        .assert()
        .code(exit::REGRESSION)
        .stdout(predicate::str::contains("REGRESSED").and(predicate::str::contains("tokens_per_second")));
    let c = comparison(&d.join("infergate-out/comparison.json"));
    assert_eq!(c.verdict, Verdict::Regressed);
    let regressed: Vec<&str> = c
        .cases
        .iter()
        .flat_map(|k| &k.metrics)
        .filter(|m| m.status == infergate::gate::MetricStatus::Regressed)
        .map(|m| m.metric.as_str())
        .collect();
    assert!(regressed.iter().filter(|m| **m == "tokens_per_second").count() == 8, "{regressed:?}");
    let md = std::fs::read_to_string(d.join("infergate-out/comparison.md")).unwrap();
    assert!(md.contains("infergate baseline update --results"), "{md}");
    assert!(md.contains("Preview of the baseline change") && md.contains("+++ b/baselines/sim-demo.toml"), "{md}");
    // The demo also writes the full report with its plots.
    let full = std::fs::read_to_string(d.join("infergate-out/report.md")).unwrap();
    assert!(full.contains("## 1. Test environment") && full.contains("plots/tokens_per_second_comparison.png"));
    assert!(d.join("infergate-out/plots/response_time_comparison.svg").exists());
}

#[test]
fn check_with_confirm_reruns_only_flagged_cases() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fast = Sim::start(SimConfig { itl_ms: 4.0, ..SimConfig::default() });
    run(d, &fast, "base.json", &[]);
    infergate(d).args(["baseline", "update", "--results", "base.json", "--baseline", "p"]).assert().code(exit::PASS);
    let slow = Sim::start(SimConfig { itl_ms: 4.0, slowdown: 1.3, ..SimConfig::default() });
    infergate(d)
        .args([
            "-q",
            "check",
            "--base-url",
            &slow.url(),
            "--model",
            "sim",
            "--suite",
            "quick",
            "--cases",
            "debugging/*",
        ])
        .args(["--repetitions", "8", "--baseline", "p", "--confirm", "1", "--out", "cur.json"])
        .assert()
        .code(exit::REGRESSION);
    // The confirmation is a run of its own, of the flagged cases only, judged with the first.
    let r = infergate::results::load(&d.join("cur.json")).unwrap();
    assert!(r.warnings.iter().any(|w| w.contains("confirmation")));
    let again = infergate::results::load(&d.join("cur.confirm1.json")).unwrap();
    assert_eq!(again.cases.len(), 2);
    assert_ne!(again.run_id, r.run_id);
    let c = comparison(&d.join("comparison.json"));
    assert_eq!(c.run_ids.len(), 2);
    assert!(c.accept_command.contains("--results cur.json cur.confirm1.json"), "{}", c.accept_command);
    for case in &c.cases {
        let tps = case.metrics.iter().find(|m| m.metric == "tokens_per_second").unwrap();
        assert_eq!((tps.runs, tps.samples, tps.status), ([1, 2], [8, 16], infergate::gate::MetricStatus::Regressed));
    }
}

#[test]
fn user_template_overrides_the_report_and_a_broken_one_is_exit_2() {
    let sim = Sim::start(SimConfig { itl_ms: 1.0, ..SimConfig::default() });
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run(d, &sim, "r.json", &[]);
    infergate(d).args(["baseline", "update", "--results", "r.json", "--baseline", "p"]).assert().code(exit::PASS);
    std::fs::write(d.join("t.j2"), "verdict={{ comparison.verdict }} cases={{ comparison.cases | length }}\n").unwrap();
    std::fs::write(d.join("bad.j2"), "line one\n{{ comparison.verdict \n").unwrap();
    infergate(d)
        .args(["compare", "--results", "r.json", "--baseline", "p", "--format", "markdown", "--template", "t.j2"])
        .args(["--markdown", "out.md"])
        .assert()
        .code(exit::PASS)
        .stdout(predicate::str::contains("verdict=pass cases=2"));
    assert!(std::fs::read_to_string(d.join("out.md")).unwrap().contains("verdict=pass"));
    infergate(d)
        .args(["compare", "--results", "r.json", "--baseline", "p", "--template", "bad.j2"])
        .assert()
        .code(exit::INVALID_INPUT)
        .stderr(predicate::str::contains("line 2"));
}

#[test]
fn calibrate_suggests_settings_from_aa_runs() {
    let sim = Sim::start(SimConfig { itl_ms: 1.0, request_cv: 0.03, ..SimConfig::default() });
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    infergate(d)
        .args([
            "-q",
            "calibrate",
            "--base-url",
            &sim.url(),
            "--model",
            "sim",
            "--suite",
            "quick",
            "--cases",
            "debugging/256",
        ])
        .args(["--repetitions", "8", "--runs", "3", "--out", "cal/results.json"])
        .assert()
        .code(exit::PASS)
        .stdout(
            predicate::str::contains("tokens_per_second")
                .and(predicate::str::contains("[run]\nrepetitions = "))
                .and(predicate::str::contains("A/A check: "))
                .and(predicate::str::contains("run_to_run_cv = "))
                .and(predicate::str::contains("WARNING: the runs shared one server launch"))
                .and(predicate::str::contains(
                    "--results cal/results.run1.json cal/results.run2.json cal/results.run3.json",
                )),
        )
        .stderr(predicate::str::contains("WARNING: no --server-command"));
    // Every run is kept, ready to be recorded as the baseline.
    infergate(d)
        .args(["baseline", "update", "--baseline", "cal", "--results"])
        .args(["cal/results.run1.json", "cal/results.run2.json", "cal/results.run3.json"])
        .assert()
        .code(exit::PASS)
        .stderr(predicate::str::contains("3 run(s)"));
    let cal: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("cal/calibration.json")).unwrap()).unwrap();
    assert_eq!(cal["runs"], 3);
    assert_eq!(cal["relaunched"], false);
    let tps = cal["metrics"].as_array().unwrap().iter().find(|m| m["metric"] == "tokens_per_second").unwrap();
    let cv = tps["within_run_cv"].as_f64().unwrap();
    assert!(cv > 0.01 && cv < 0.1, "within-run CV {cv} for a 3% per-request variation");
}

/// The rows of the issue "a gate that cannot be fooled": a baseline or a
/// results file that lacks what the rules need is never a silent pass.
#[test]
fn a_mutilated_baseline_or_results_file_never_passes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fast = Sim::start(SimConfig { itl_ms: 2.0, ..SimConfig::default() });
    run(d, &fast, "r1.json", &[]);
    infergate(d).args(["baseline", "update", "--results", "r1.json", "--baseline", "p"]).assert().code(exit::PASS);
    let slow = Sim::start(SimConfig { itl_ms: 8.0, ..SimConfig::default() });
    run(d, &slow, "slow.json", &[]);
    let good = std::fs::read_to_string(d.join("baselines/p.toml")).unwrap();
    let compare = |baseline: &str, results: &str| {
        infergate(d).args(["compare", "--results", results, "--baseline", baseline, "--comparison", "c.json"]).assert()
    };
    compare("p", "slow.json").code(exit::REGRESSION);

    // Emptied or deleted sample arrays, and a baseline without cases: refused on load, naming the key.
    let emptied: String = good
        .lines()
        .map(|l| if l.starts_with("ttft_ms = ") { "ttft_ms = []" } else { l })
        .collect::<Vec<_>>()
        .join("\n");
    let deleted: String = good.lines().filter(|l| !l.starts_with("e2e_ms = ")).collect::<Vec<_>>().join("\n");
    let no_cases = good[..good.find("[cases.").unwrap()].to_string();
    for (name, text, key) in
        [("emptied", emptied, "ttft_ms"), ("deleted", deleted, "e2e_ms"), ("nocases", no_cases, "`cases`")]
    {
        std::fs::write(d.join(format!("baselines/{name}.toml")), text).unwrap();
        compare(name, "slow.json").code(exit::INVALID_INPUT).stderr(predicate::str::contains(key));
    }

    // A run that shares no case with the baseline judged nothing: invalid, never a pass.
    infergate(d)
        .args([
            "-q",
            "run",
            "--base-url",
            &slow.url(),
            "--model",
            "sim",
            "--suite",
            "quick",
            "--cases",
            "code-review/*",
        ])
        .args(["--repetitions", "3", "--out", "other.json"])
        .assert()
        .code(exit::PASS);
    compare("p", "other.json")
        .code(exit::RUN_FAILED)
        .stdout(predicate::str::contains("no case of the results is in the baseline"));

    // A results case whose requests were cut out: invalid, and never recorded.
    let mut cut: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("slow.json")).unwrap()).unwrap();
    cut["cases"][0]["phases"]["warm"]["requests"] = serde_json::json!([]);
    std::fs::write(d.join("cut.json"), cut.to_string()).unwrap();
    compare("p", "cut.json").code(exit::RUN_FAILED).stdout(predicate::str::contains("requests[] is empty"));
    infergate(d)
        .args(["baseline", "update", "--results", "cut.json", "--baseline", "cut"])
        .assert()
        .code(exit::RUN_FAILED)
        .stderr(predicate::str::contains("requests[] is empty"));

    // Negative samples and zero cases are not recorded either: a baseline every later compare would refuse.
    let mut negative: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("r1.json")).unwrap()).unwrap();
    negative["cases"][0]["phases"]["warm"]["requests"][0]["e2e_ms"] = serde_json::json!(-5.0);
    std::fs::write(d.join("negative.json"), negative.to_string()).unwrap();
    let mut empty = negative.clone();
    empty["cases"] = serde_json::json!([]);
    std::fs::write(d.join("empty.json"), empty.to_string()).unwrap();
    for (file, says) in [("negative.json", "e2e_ms is -5"), ("empty.json", "holds no cases")] {
        infergate(d)
            .args(["baseline", "update", "--results", file, "--baseline", "q"])
            .assert()
            .code(exit::RUN_FAILED)
            .stderr(predicate::str::contains(says));
    }
    assert!(!d.join("baselines/q.toml").exists() && !d.join("baselines/cut.toml").exists());
}
