//! The fault matrix: every misbehaviour the simulator can inject, run through
//! the real binary (`infergate check` against a baseline of the same,
//! healthy simulator), ends in the right error class, case verdict, run
//! verdict and exit code, within the run's deadline: never a hang, a panic,
//! or a pass on numbers that cannot be trusted.
//!
//! Faults use `@case=*` so they hit the measured requests (which name their
//! case in a header) and leave the capability probes alone, unless a test is
//! about what the probes see.
#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap here is a failed test, not a crash.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use infergate::exit;
use infergate::gate::{CaseVerdict, Comparison, Verdict};
use infergate::results::{ErrorClass, PhaseName, RequestRecord, Results};
use infergate::sim::SimConfig;
use support::Sim;

/// Every run gets this deadline (`--deadline`) and must end well within it.
const DEADLINE: Duration = Duration::from_secs(60);
/// The case every test runs.
const CASE: &str = "debugging/256";

/// A simulator that streams quickly, with `faults`.
fn sim(faults: &[&str]) -> Sim {
    Sim::start(SimConfig {
        itl_ms: 1.0,
        itl_jitter: 0.0,
        ttft_base_ms: 1.0,
        cold_penalty_ms: 1.0,
        faults: faults.iter().map(|f| f.parse().unwrap_or_else(|e| panic!("{e}"))).collect(),
        ..SimConfig::default()
    })
}

fn infergate(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("infergate").unwrap();
    cmd.current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("GITHUB_OUTPUT")
        // A hang fails the test instead of stalling the suite.
        .timeout(DEADLINE * 2);
    cmd
}

/// The arguments of a small run against `sim`, then `extra`, then the
/// defaults of the flags `extra` does not set: a deadline and short timeouts.
fn run_args(sim: &Sim, extra: &[&str]) -> Vec<String> {
    let args = ["--model", "sim", "--suite", "quick", "--cases", CASE, "--warmup", "0"];
    let mut v: Vec<String> = vec!["--base-url".into(), sim.url()];
    v.extend(args.iter().map(|s| s.to_string()));
    v.extend(extra.iter().map(|s| s.to_string()));
    let deadline = format!("{}s", DEADLINE.as_secs());
    let defaults = [
        ("--repetitions", "2"),
        ("--deadline", deadline.as_str()),
        ("--idle-timeout", "2s"),
        ("--request-timeout", "20s"),
    ];
    for (flag, value) in defaults {
        if !extra.contains(&flag) {
            v.extend([flag.to_string(), value.to_string()]);
        }
    }
    v
}

/// A baseline of the healthy simulator, recorded once per test process.
fn baseline() -> &'static Path {
    static BASELINE: OnceLock<PathBuf> = OnceLock::new();
    BASELINE.get_or_init(|| {
        // Kept for the whole test process, under cargo's scratch folder.
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap().keep();
        let healthy = sim(&[]);
        infergate(&dir)
            .args(["-q", "run"])
            .args(run_args(&healthy, &["--out", "clean.json"]))
            .assert()
            .code(exit::PASS);
        infergate(&dir)
            .args(["baseline", "update", "--results", "clean.json", "--baseline", "faults"])
            .assert()
            .code(exit::PASS);
        dir.join("baselines/faults.toml")
    })
}

/// What a checked run left behind.
struct Outcome {
    code: i32,
    stderr: String,
    elapsed: Duration,
    results: Results,
    comparison: Comparison,
}

impl Outcome {
    /// Every measured request (cold, then warm).
    fn requests(&self) -> Vec<&RequestRecord> {
        self.results.cases.iter().flat_map(|c| c.phases.values()).flat_map(|p| &p.requests).collect()
    }

    /// The error classes of the failed requests.
    fn classes(&self) -> Vec<ErrorClass> {
        self.requests().iter().filter_map(|r| r.error.as_ref().filter(|_| !r.ok).map(|e| e.class)).collect()
    }

    fn case_verdict(&self) -> CaseVerdict {
        self.comparison.cases.iter().find(|c| c.id == CASE).map(|c| c.verdict).expect("the case is compared")
    }

    fn case_notes(&self) -> String {
        self.comparison
            .cases
            .iter()
            .filter(|c| c.id == CASE)
            .flat_map(|c| &c.notes)
            .map(|n| infergate::report::findings::case_note(n, infergate::report::full::Lang::En))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The run ended, with `code`, well within its deadline.
    fn assert_ended(&self, code: i32) {
        assert_eq!(self.code, code, "exit code; stderr:\n{}", self.stderr);
        assert!(self.elapsed < DEADLINE, "took {:?}, past the {DEADLINE:?} deadline", self.elapsed);
        assert!(!self.stderr.contains("panicked"), "{}", self.stderr);
    }

    /// Every measured request failed with `class`; the case and the run are invalid (exit 3).
    fn assert_invalid_with(&self, class: ErrorClass) {
        self.assert_ended(exit::RUN_FAILED);
        let classes = self.classes();
        assert_eq!(classes.len(), self.requests().len(), "every request fails: {:?}", self.requests());
        assert!(classes.iter().all(|c| *c == class), "{classes:?}");
        assert_eq!(self.case_verdict(), CaseVerdict::Invalid, "{}", self.case_notes());
        assert_eq!(self.comparison.verdict, Verdict::Invalid);
        assert!(self.case_notes().contains("requests failed"), "{}", self.case_notes());
    }

    /// Nothing failed and the gate judged the case on its numbers (exit 0).
    fn assert_judged(&self) {
        self.assert_ended(exit::PASS);
        assert!(self.classes().is_empty(), "{:?}", self.requests());
        assert!(self.results.complete);
        assert!(matches!(self.case_verdict(), CaseVerdict::Pass | CaseVerdict::Warn), "{:?}", self.case_verdict());
        assert!(matches!(self.comparison.verdict, Verdict::Pass | Verdict::Warn));
    }
}

/// `infergate check` against the healthy baseline, with `extra` arguments.
fn check(sim: &Sim, extra: &[&str]) -> Outcome {
    let baseline = baseline();
    let dir = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let out = infergate(dir.path())
        .arg("check")
        .args(run_args(sim, extra))
        .args(["--out", "results.json"])
        .arg("--baseline")
        .arg(baseline)
        .output()
        .unwrap();
    let elapsed = start.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let results =
        infergate::results::load(&dir.path().join("results.json")).unwrap_or_else(|e| panic!("{e:#}\n{stderr}"));
    let text = std::fs::read_to_string(dir.path().join("comparison.json")).unwrap();
    let comparison = serde_json::from_str(&text).unwrap();
    Outcome { code: out.status.code().unwrap_or(-1), stderr, elapsed, results, comparison }
}

#[test]
fn http_500_is_an_http_status_error_not_retried() {
    let o = check(&sim(&["http500@case=*"]), &[]);
    o.assert_invalid_with(ErrorClass::HttpStatus);
    for r in o.requests() {
        assert_eq!(r.error.as_ref().unwrap().status, Some(500));
        assert!(r.error.as_ref().unwrap().message.contains("fault http500"), "{:?}", r.error);
        assert_eq!(r.attempts, 1, "a 500 is never retried");
    }
}

#[test]
fn http_429_that_persists_is_retried_within_the_bound_then_recorded() {
    let o = check(&sim(&["http429:1@case=*"]), &["--retries", "1"]);
    o.assert_invalid_with(ErrorClass::HttpStatus);
    for r in o.requests() {
        assert_eq!(r.error.as_ref().unwrap().status, Some(429));
        assert_eq!(r.attempts, 2, "one retry, as --retries says");
        assert_eq!(r.retries.len(), 1);
        assert_eq!((r.retries[0].class, r.retries[0].status), (ErrorClass::HttpStatus, Some(429)));
        assert_eq!(r.retries[0].wait_ms, 1000.0, "waits what Retry-After says");
        assert!(r.error.as_ref().unwrap().message.contains("gave up after 2 attempts"), "{:?}", r.error);
    }
}

#[test]
fn http_429_that_passes_is_retried_recorded_and_warned_about() {
    // Every second measured request is refused once: its retry succeeds.
    let o = check(&sim(&["http429:1@case=*@every=2"]), &[]);
    o.assert_judged();
    let retried: Vec<_> = o.requests().into_iter().filter(|r| r.attempts > 1).collect();
    assert_eq!(retried.len(), 2, "{:?}", o.requests());
    assert!(retried.iter().all(|r| r.ok && r.retries[0].status == Some(429)));
    assert_eq!(o.case_verdict(), CaseVerdict::Warn, "a retried request is worth a look");
    assert!(o.case_notes().contains("needed a retry"), "{}", o.case_notes());
    assert!(o.results.warnings.iter().any(|w| w.contains("more than one attempt")), "{:?}", o.results.warnings);
}

#[test]
fn http_429_asking_for_too_long_a_wait_is_not_retried() {
    let o = check(&sim(&["http429:3600@case=*"]), &[]);
    o.assert_invalid_with(ErrorClass::HttpStatus);
    for r in o.requests() {
        assert_eq!(r.attempts, 1);
        assert!(r.error.as_ref().unwrap().message.contains("longer than the 30 s"), "{:?}", r.error);
    }
}

#[test]
fn a_connection_closed_before_any_answer_is_a_connect_error_retried_then_abandoned() {
    let s = sim(&["refuse@case=*"]);
    let o = check(&s, &[]);
    o.assert_invalid_with(ErrorClass::Connect);
    for r in o.requests() {
        assert_eq!(r.attempts, 3, "two retries by default");
        assert!(r.retries.iter().all(|x| x.class == ErrorClass::Connect));
    }
    // Three requests in a row could not connect: the server is taken for gone.
    assert!(!o.results.complete);
    assert!(o.results.warnings.iter().any(|w| w.contains("abandoned")), "{:?}", o.results.warnings);
    assert_eq!(s.faults_injected(), 9);
}

#[test]
fn a_connection_closed_once_is_retried_and_the_run_is_judged() {
    let o = check(&sim(&["refuse@case=*@every=2"]), &[]);
    o.assert_judged();
    let retried: Vec<_> = o.requests().into_iter().filter(|r| r.attempts == 2).collect();
    assert_eq!(retried.len(), 2, "{:?}", o.requests());
    assert!(retried.iter().all(|r| r.retries[0].class == ErrorClass::Connect));
}

#[test]
fn a_reset_mid_stream_is_a_stream_cut_never_retried() {
    let o = check(&sim(&["reset:2@case=*"]), &[]);
    o.assert_invalid_with(ErrorClass::StreamCut);
    for r in o.requests() {
        // The answer had begun (a TCP reset may discard what was still unread).
        assert_eq!(r.attempts, 1, "never retried: the server had answered");
        assert!(r.error.as_ref().unwrap().message.contains("broke"), "{:?}", r.error);
    }
}

#[test]
fn a_stall_mid_stream_ends_at_the_idle_timeout() {
    let o = check(&sim(&["stall:30s@case=*"]), &["--idle-timeout", "500ms"]);
    o.assert_invalid_with(ErrorClass::IdleTimeout);
    assert!(o.requests().iter().all(|r| r.ttft_ms.is_some()));
}

#[test]
fn a_slow_first_byte_ends_at_the_idle_timeout() {
    let o = check(&sim(&["slow-first-byte:30s@case=*"]), &["--idle-timeout", "500ms"]);
    o.assert_invalid_with(ErrorClass::IdleTimeout);
    assert!(o.requests().iter().all(|r| r.ttft_ms.is_none()));
}

#[test]
fn a_slow_first_byte_within_the_limits_is_only_slow() {
    let o = check(&sim(&["slow-first-byte:300ms@case=*"]), &[]);
    assert!(o.classes().is_empty(), "{:?}", o.requests());
    assert!(o.requests().iter().all(|r| r.ttft_ms.unwrap() >= 300.0));
    // Judged on its numbers: slower, never invalid (two samples may be too few to call it).
    assert_ne!(o.case_verdict(), CaseVerdict::Invalid, "{}", o.case_notes());
    assert!([exit::PASS, exit::REGRESSION].contains(&o.code), "{}", o.stderr);
    assert!(o.elapsed < DEADLINE);
}

#[test]
fn a_malformed_event_is_a_malformed_event() {
    let o = check(&sim(&["malformed@case=*"]), &[]);
    o.assert_invalid_with(ErrorClass::MalformedEvent);
}

#[test]
fn a_missing_done_after_the_finish_is_complete_and_noted() {
    let o = check(&sim(&["no-done@case=*"]), &[]);
    o.assert_judged();
    assert!(o.requests().iter().all(|r| !r.done_received));
    assert!(o.results.warnings.iter().any(|w| w.contains("without data: [DONE]")), "{:?}", o.results.warnings);
}

#[test]
fn a_missing_done_on_a_connection_held_open_is_complete_after_a_short_grace() {
    let o = check(&sim(&["no-done:hold@case=*"]), &["--idle-timeout", "30s"]);
    o.assert_judged();
    assert!(o.requests().iter().all(|r| !r.done_received && r.finish_reason.as_deref() == Some("length")));
    // Three requests, each waiting at most the one-second grace, not the idle timeout.
    assert!(o.elapsed < Duration::from_secs(25), "{:?}", o.elapsed);
}

#[test]
fn a_one_mebibyte_event_breaks_the_event_size_limit() {
    let o = check(&sim(&["huge-event@case=*"]), &[]);
    o.assert_invalid_with(ErrorClass::MalformedEvent);
    assert!(o.requests().iter().all(|r| r.error.as_ref().unwrap().message.contains("exceeded 1048576 bytes")));
}

#[test]
fn a_wrong_content_type_is_a_bad_response() {
    let o = check(&sim(&["content-type@case=*"]), &[]);
    o.assert_invalid_with(ErrorClass::BadResponse);
    assert!(o.requests().iter().all(|r| r.error.as_ref().unwrap().message.contains("got `text/html`")));
}

#[test]
fn a_server_that_ignores_max_tokens_is_stopped_early() {
    let o = check(&sim(&["endless@case=*"]), &[]);
    o.assert_invalid_with(ErrorClass::BadResponse);
    assert!(o.requests().iter().all(|r| r.error.as_ref().unwrap().message.contains("does not honour max_tokens")));
}

#[test]
fn a_server_that_streams_forever_ends_at_the_request_timeout() {
    // Past the probes the stream never ends; the request timeout stops it.
    let o = check(&sim(&["endless@case=*"]), &["--request-timeout", "300ms"]);
    // Whichever comes first ends it: the token limit or the clock. Both fail the request.
    o.assert_ended(exit::RUN_FAILED);
    assert_eq!(o.case_verdict(), CaseVerdict::Invalid);
    assert!(
        o.classes().iter().all(|c| matches!(c, ErrorClass::Timeout | ErrorClass::BadResponse)),
        "{:?}",
        o.classes()
    );
}

#[test]
fn missing_usage_from_a_server_that_streams_usage_is_a_bad_response() {
    let o = check(&sim(&["no-usage@case=*"]), &[]);
    o.assert_invalid_with(ErrorClass::BadResponse);
    assert!(o.requests().iter().all(|r| r.error.as_ref().unwrap().message.contains("no usage")));
}

#[test]
fn a_server_that_never_streams_usage_is_measured_by_chunks_and_warned_about() {
    // The probes see no usage either: the server does not have it.
    let o = check(&sim(&["no-usage"]), &[]);
    o.assert_judged();
    assert_eq!(o.case_verdict(), CaseVerdict::Warn);
    assert!(o.case_notes().contains("counted chunks"), "{}", o.case_notes());
    assert!(o.results.warnings.iter().any(|w| w.contains("sent no usage")), "{:?}", o.results.warnings);
}

#[test]
fn a_short_answer_despite_ignore_eos_makes_the_case_invalid_not_faster() {
    let o = check(&sim(&["short@case=*"]), &[]);
    o.assert_ended(exit::RUN_FAILED);
    assert!(o.classes().is_empty(), "short answers are answers: {:?}", o.classes());
    assert!(o.requests().iter().all(|r| r.output_tokens == Some(16) && r.finish_reason.as_deref() == Some("stop")));
    assert_eq!(o.case_verdict(), CaseVerdict::Invalid);
    assert_eq!(o.comparison.verdict, Verdict::Invalid);
    assert!(o.case_notes().contains("output length not enforced by the server"), "{}", o.case_notes());
    assert!(
        !o.comparison
            .cases
            .iter()
            .flat_map(|c| &c.metrics)
            .any(|m| m.status == infergate::gate::MetricStatus::Improved)
            || o.case_verdict() == CaseVerdict::Invalid,
        "never reported as faster"
    );
}

#[test]
fn an_allowed_error_rate_lets_a_case_with_a_failure_be_judged() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("infergate.toml");
    std::fs::write(&config, "[gate]\nmax_error_rate = 0.5\n").unwrap();
    // The second measured request fails; one of three is within 50%.
    let o = check(&sim(&["http500@case=*@requests=2"]), &["--config", config.to_str().unwrap()]);
    o.assert_ended(exit::PASS);
    assert_eq!(o.classes(), [ErrorClass::HttpStatus]);
    assert_ne!(o.case_verdict(), CaseVerdict::Invalid, "{}", o.case_notes());
    // Without the allowance the same run is invalid.
    let o = check(&sim(&["http500@case=*@requests=2"]), &[]);
    o.assert_ended(exit::RUN_FAILED);
    assert_eq!(o.case_verdict(), CaseVerdict::Invalid);
}

#[test]
fn the_deadline_stops_the_run_with_partial_results() {
    let s = sim(&["stall:60s@case=*"]);
    let dir = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let out = infergate(dir.path())
        .arg("run")
        .args(run_args(&s, &["--idle-timeout", "120s", "--deadline", "3s", "--out", "results.json"]))
        .output()
        .unwrap();
    let elapsed = start.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(exit::RUN_FAILED), "{stderr}");
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
    assert!(stderr.contains("deadline of 3s"), "{stderr}");
    let r = infergate::results::load(&dir.path().join("results.json")).unwrap();
    assert!(!r.complete);
    assert_eq!(r.settings.deadline_s, Some(3.0));
    assert!(r.warnings.iter().any(|w| w.contains("deadline of 3s") && w.contains("partial")), "{:?}", r.warnings);
    let cold = &r.cases[0].phases[&PhaseName::Cold].requests[0];
    assert_eq!(cold.error.as_ref().unwrap().class, ErrorClass::Cancelled);
    assert!(cold.error.as_ref().unwrap().message.contains("deadline"), "{:?}", cold.error);
    assert_eq!(r.cases[0].phases[&PhaseName::Cold].summary.errors, 0, "cancelled is not a server error");
}

#[test]
fn a_bad_fault_spec_is_exit_2_naming_the_flag_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    for (spec, problem) in [
        ("explode", "unknown fault `explode`"),
        ("stall", "needs a duration"),
        ("http500@rate=2", "above 0 and at most 1"),
    ] {
        let out = infergate(dir.path()).args(["sim", "--port", "0", "--fault", spec]).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(exit::INVALID_INPUT), "{stderr}");
        assert!(stderr.contains(&format!("--fault `{spec}`")) && stderr.contains(problem), "{stderr}");
    }
}

/// Starts `infergate run` in the background against `sim`.
#[cfg(unix)]
fn spawn_run(sim: &Sim, dir: &Path, extra: &[&str]) -> std::process::Child {
    StdCommand::new(assert_cmd::cargo::cargo_bin("infergate"))
        .current_dir(dir)
        .arg("run")
        .args(run_args(sim, extra))
        .args(["--out", "results.json"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until `active` says the run got far enough.
#[cfg(unix)]
fn wait_for_streams(child: &mut std::process::Child, sim: &Sim, active: impl Fn(&Sim) -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !active(sim) {
        if let Ok(Some(status)) = child.try_wait() {
            let mut stderr = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
            panic!("the run ended early ({status}):\n{stderr}");
        }
        assert!(Instant::now() < deadline, "the run never got going");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(unix)]
fn signal(child: &std::process::Child, sig: i32) {
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, sig) };
}

#[cfg(unix)]
#[test]
fn an_interruption_lets_requests_in_flight_finish_within_the_grace() {
    // Each measured request pauses for a second after its first token.
    let s = sim(&["stall:1s@case=*"]);
    let dir = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let extra = ["--repetitions", "20", "--concurrency", "2", "--grace", "30s", "--idle-timeout", "10s"];
    let mut child = spawn_run(&s, dir.path(), &extra);
    // The cold request and two warm ones have started: two are in flight.
    wait_for_streams(&mut child, &s, |s| s.faults_injected() >= 3);
    signal(&child, libc::SIGTERM);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(exit::RUN_FAILED));
    assert!(start.elapsed() < DEADLINE);
    let r = infergate::results::load(&dir.path().join("results.json")).unwrap();
    assert!(!r.complete);
    let warm = &r.cases[0].phases[&PhaseName::Warm];
    assert!(warm.summary.requests >= 2 && warm.summary.requests < 20, "{:?}", warm.summary);
    // The requests in flight at the signal finished and were recorded.
    assert!(warm.requests.iter().all(|q| q.ok), "{:?}", warm.requests);
    assert_eq!(warm.summary.cancelled, 0);
    assert!(r.warnings.iter().any(|w| w.contains("interrupted")));
}

#[cfg(unix)]
#[test]
fn requests_still_in_flight_after_the_grace_are_recorded_as_cancelled() {
    let s = sim(&["stall:60s@case=*"]);
    let dir = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let mut child = spawn_run(&s, dir.path(), &["--idle-timeout", "120s", "--grace", "500ms"]);
    wait_for_streams(&mut child, &s, |s| s.faults_injected() >= 1);
    signal(&child, libc::SIGINT);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(exit::RUN_FAILED));
    assert!(start.elapsed() < Duration::from_secs(30), "{:?}", start.elapsed());
    let r = infergate::results::load(&dir.path().join("results.json")).unwrap();
    assert!(!r.complete);
    let cold = &r.cases[0].phases[&PhaseName::Cold];
    assert_eq!(cold.requests[0].error.as_ref().unwrap().class, ErrorClass::Cancelled);
    assert_eq!((cold.summary.cancelled, cold.summary.errors), (1, 0));
}

#[cfg(unix)]
#[test]
fn a_second_interruption_cancels_at_once() {
    let s = sim(&["stall:60s@case=*"]);
    let dir = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let mut child = spawn_run(&s, dir.path(), &["--idle-timeout", "120s", "--grace", "120s"]);
    wait_for_streams(&mut child, &s, |s| s.faults_injected() >= 1);
    signal(&child, libc::SIGINT);
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, libc::SIGINT);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(exit::RUN_FAILED));
    assert!(start.elapsed() < Duration::from_secs(30), "not the 120 s grace: {:?}", start.elapsed());
    let r = infergate::results::load(&dir.path().join("results.json")).unwrap();
    let cold = &r.cases[0].phases[&PhaseName::Cold].requests[0];
    assert_eq!(cold.error.as_ref().unwrap().class, ErrorClass::Cancelled);
    assert!(cold.error.as_ref().unwrap().message.contains("interrupted"), "{:?}", cold.error);
}

#[cfg(target_os = "linux")]
#[test]
fn a_kill_in_the_middle_of_writing_a_baseline_leaves_the_old_one_intact() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A big results file: the coder suite with many repetitions, from the simulator's model.
    let suite = infergate::suite::load("coder").unwrap();
    let big = infergate::sim::synthetic::run(&SimConfig::default(), &suite, 400, 1);
    infergate::results::save(&big, &d.join("big.json")).unwrap();
    let small = infergate::sim::synthetic::run(&SimConfig::default(), &suite, 3, 2);
    infergate::results::save(&small, &d.join("small.json")).unwrap();
    infergate(d).args(["baseline", "update", "--results", "small.json", "--baseline", "p"]).assert().code(exit::PASS);
    let target = d.join("baselines/p.toml");
    let old = std::fs::read(&target).unwrap();
    let mut child = StdCommand::new(assert_cmd::cargo::cargo_bin("infergate"))
        .current_dir(d)
        .env(infergate::fsutil::TEST_PAUSE_BEFORE_RENAME_ENV, "60000")
        .args(["baseline", "update", "--results", "big.json", "--baseline", "p", "--allow-mismatch"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The new file is written in full beside the target, then the writer is killed before the rename.
    // Named after the writer's pid and a counter.
    let prefix = format!(".p.toml.tmp-{}-", child.id());
    let find_temp = || {
        std::fs::read_dir(d.join("baselines"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(&prefix))
    };
    let deadline = Instant::now() + DEADLINE;
    let temp = loop {
        if let Some(t) = find_temp().filter(|t| std::fs::metadata(t).map_or(0, |m| m.len()) > old.len() as u64) {
            break t;
        }
        assert!(Instant::now() < deadline, "the writer never wrote its temporary file");
        std::thread::sleep(Duration::from_millis(20));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), old, "the old baseline is intact");
    infergate::baseline::load(&target).unwrap();
    // The next write replaces the target and clears the dead writer's leftover.
    infergate(d)
        .args(["baseline", "update", "--results", "big.json", "--baseline", "p", "--allow-mismatch"])
        .assert()
        .code(exit::PASS);
    assert!(!temp.exists());
    let names: Vec<_> = std::fs::read_dir(d.join("baselines")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["p.toml"]);
}

/// `vllm:num_requests_running` of the simulator on `port`, 0 when it does not answer.
#[cfg(target_os = "linux")]
fn requests_running(port: u16) -> u64 {
    use std::io::{Read as _, Write as _};
    let Ok(mut sock) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return 0 };
    let _ = sock.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = sock.write_all(b"GET /metrics HTTP/1.1\r\nHost: sim\r\nConnection: close\r\n\r\n");
    let mut text = String::new();
    let _ = sock.read_to_string(&mut text);
    text.lines()
        .find(|l| l.starts_with("vllm:num_requests_running"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[cfg(target_os = "linux")]
#[test]
fn an_interruption_stops_the_server_infergate_started() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let truth = dir.path().join("truth.jsonl");
    let bin = assert_cmd::cargo::cargo_bin("infergate");
    let command = format!(
        "{} sim --port {port} --itl-ms 1 --truth-log {} --fault 'stall:60s@case=*'",
        bin.display(),
        truth.display()
    );
    let url = format!("http://127.0.0.1:{port}");
    let mut child = StdCommand::new(&bin)
        .current_dir(dir.path())
        .args(["run", "--base-url", &url, "--model", "sim", "--suite", "quick", "--cases", CASE, "--gpu", "off"])
        .args(["--repetitions", "2", "--warmup", "0", "--idle-timeout", "120s", "--grace", "500ms"])
        .args(["--deadline", "60s", "--out", "results.json", "--server-command", &command])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The three streamed capability probes and the non-streamed sizing probe
    // have finished: the request in flight is the cold one, hanging in its stall.
    let finished = |stream: bool| {
        let needle = format!("\"stream\":{stream}");
        std::fs::read_to_string(&truth).map_or(0, |t| t.lines().filter(|l| l.contains(&needle)).count())
    };
    let start = Instant::now();
    while !(finished(true) >= 3 && finished(false) >= 1 && requests_running(port) >= 1) {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the run ended early: {status}");
        }
        assert!(start.elapsed() < DEADLINE, "the cold request never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    signal(&child, libc::SIGTERM);
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(exit::RUN_FAILED), "{stderr}");
    assert!(start.elapsed() < Duration::from_secs(40), "{:?}", start.elapsed());
    // The server is gone with the run.
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "the simulator still answers");
    let r = infergate::results::load(&dir.path().join("results.json")).unwrap();
    assert!(!r.complete);
    assert!(r.environment.server.launched.is_some());
    let cold = &r.cases[0].phases[&PhaseName::Cold].requests[0];
    assert_eq!(cold.error.as_ref().unwrap().class, ErrorClass::Cancelled, "{stderr}");
}
