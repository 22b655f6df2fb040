//! End-to-end tests of the `infergate` binary against the built-in simulator.
//!
//! The simulator runs in-process on its own runtime, so the tests can read its
//! ground truth; the binary under test is a separate process, exactly as a
//! user runs it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap here is a failed test, not a crash.

mod support;

use std::path::Path;
use std::process::{Command as StdCommand, Stdio};
use std::time::Duration;

use assert_cmd::Command;
use infergate::exit;
use infergate::results::{PhaseName, Results};
use infergate::sim::SimConfig;
use predicates::prelude::*;
use support::Sim;

/// A simulator that streams without pauses, for tests about structure, not timing.
fn fast_sim() -> Sim {
    Sim::start(SimConfig { itl_ms: 0.0, ttft_base_ms: 1.0, cold_penalty_ms: 1.0, ..SimConfig::default() })
}

fn infergate() -> Command {
    let mut cmd = Command::cargo_bin("infergate").unwrap();
    cmd.env_remove("RUST_LOG").timeout(Duration::from_secs(300));
    cmd
}

/// `infergate -q run` against `sim` with extra `args`; asserts success and
/// returns the results it wrote.
fn run_sim(sim: &Sim, args: &[&str]) -> Results {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results.json");
    infergate()
        .args(["-q", "run", "--base-url", &sim.url(), "--model", "sim"])
        .args(args)
        .arg("--out")
        .arg(&out)
        .assert()
        .code(exit::PASS);
    load(&out)
}

fn load(path: &Path) -> Results {
    infergate::results::load(path).unwrap_or_else(|e| panic!("{e:#}"))
}

#[test]
fn coder_suite_writes_sixteen_cases_with_prompts_within_one_percent() {
    let sim = fast_sim();
    let r = run_sim(&sim, &["--suite", "coder", "--repetitions", "2", "--warmup", "0"]);
    assert_eq!(r.schema, "infergate.results.v1");
    assert!(r.complete);
    assert_eq!(r.cases.len(), 16);
    assert_eq!(r.suite.name, "coder");
    assert_eq!(r.environment.server.prompt_sizing, "tokenize");
    for case in &r.cases {
        assert_eq!(case.phases.len(), 2, "{}", case.id);
        let cold = &case.phases[&PhaseName::Cold];
        let warm = &case.phases[&PhaseName::Warm];
        assert_eq!(cold.requests.len(), 1);
        assert_eq!(warm.requests.len(), 2);
        assert_eq!(case.prompt.template_fingerprint.len(), 64);
        for req in cold.requests.iter().chain(&warm.requests) {
            assert!(req.ok, "{}: {:?}", case.id, req.error);
            let got = f64::from(req.prompt_tokens.unwrap());
            let target = f64::from(case.context_tokens);
            assert!((got - target).abs() / target <= 0.01, "{}: {got} tokens for target {target}", case.id);
            assert_eq!(req.output_tokens, Some(case.output_tokens), "{}", case.id);
        }
    }
    // Fingerprints differ between cases and stay equal across runs.
    let fps: std::collections::HashSet<_> = r.cases.iter().map(|c| &c.prompt.template_fingerprint).collect();
    assert_eq!(fps.len(), 16);
}

#[test]
fn cases_filter_and_prompt_fingerprints_are_stable_across_runs() {
    let sim = fast_sim();
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str| {
        let out = dir.path().join(name);
        infergate()
            .args([
                "-q",
                "run",
                "--base-url",
                &sim.url(),
                "--model",
                "sim",
                "--suite",
                "quick",
                "--cases",
                "code-review/*",
            ])
            .args(["--repetitions", "1"])
            .arg("--out")
            .arg(&out)
            .assert()
            .code(exit::PASS);
        load(&out)
    };
    let a = run("a.json");
    let b = run("b.json");
    assert_eq!(a.cases.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ["code-review/256", "code-review/1024"]);
    assert_ne!(a.run_id, b.run_id);
    for (x, y) in a.cases.iter().zip(&b.cases) {
        assert_eq!(x.prompt.template_fingerprint, y.prompt.template_fingerprint);
        assert_eq!(x.prompt.text_fingerprint, y.prompt.text_fingerprint);
    }
    assert_eq!(a.suite.fingerprint, b.suite.fingerprint);
}

#[test]
fn cold_request_misses_the_prefix_cache_and_warm_requests_hit_it() {
    let sim = fast_sim();
    let r = run_sim(&sim, &["--suite", "quick", "--cases", "debugging/1024", "--repetitions", "3", "--warmup", "1"]);
    let case = &r.cases[0];
    let truth = sim.truth();
    let by_id = |id: &str| truth.iter().find(|t| t.id == id).unwrap_or_else(|| panic!("no truth for {id}"));
    let cold = &case.phases[&PhaseName::Cold].requests[0];
    assert_eq!(by_id(cold.response_id.as_deref().unwrap()).cached_tokens, 0);
    for w in &case.phases[&PhaseName::Warm].requests {
        let t = by_id(w.response_id.as_deref().unwrap());
        assert!(t.cached_tokens >= t.prompt_tokens - 64, "warm request not cached: {t:?}");
    }
    assert_eq!(r.environment.server.cache_reset.as_deref(), Some("/reset_prefix_cache"));
}

#[test]
fn measurement_matches_the_simulators_ground_truth() {
    // Real pauses between tokens, jitter, several tokens in some chunks.
    let sim = Sim::start(SimConfig {
        itl_ms: 4.0,
        itl_jitter: 0.5,
        ttft_base_ms: 15.0,
        cold_penalty_ms: 30.0,
        ..SimConfig::default()
    });
    let r = run_sim(
        &sim,
        &[
            "--suite",
            "quick",
            "--cases",
            "code-completion/*",
            "--repetitions",
            "4",
            "--warmup",
            "0",
            "--continuous-usage",
            "true",
        ],
    );
    let truth = sim.truth();
    let (mut ttft_diff, mut e2e_diff, mut itl_err) = (Vec::new(), Vec::new(), Vec::new());
    for case in &r.cases {
        for phase in case.phases.values() {
            for req in &phase.requests {
                let t =
                    truth.iter().find(|t| Some(&t.id) == req.response_id.as_ref()).expect("truth for every request");
                // Counts: exact.
                assert_eq!(req.output_tokens, Some(t.output_tokens));
                assert_eq!(req.prompt_tokens, Some(t.prompt_tokens));
                assert_eq!(req.chunk_tokens.as_ref(), Some(&t.chunk_tokens));
                assert_eq!(req.itl_ms.len() + 1, t.emit_ms.len(), "one gap per pair of choice-bearing events");
                let (ttft, e2e) = (req.ttft_ms.unwrap(), req.e2e_ms.unwrap());
                // Causality: the client's clock starts before the server's and
                // bytes arrive after they are sent, so measured >= truth.
                assert!(ttft >= t.ttft_ms - 0.5, "TTFT {ttft} before truth {}", t.ttft_ms);
                assert!(e2e >= t.e2e_ms - 0.5, "E2E {e2e} before truth {}", t.e2e_ms);
                ttft_diff.push(ttft - t.ttft_ms);
                e2e_diff.push(e2e - t.e2e_ms);
                // TPOT spreads the arrival delay over all tokens.
                let truth_tpot = (t.e2e_ms - t.ttft_ms) / f64::from(t.output_tokens - 1);
                let tpot = req.tpot_ms.unwrap();
                assert!((tpot - truth_tpot).abs() < 0.5, "TPOT {tpot} vs truth {truth_tpot}");
                itl_err.extend(req.itl_ms.iter().zip(t.emit_ms.windows(2)).map(|(m, w)| (m - (w[1] - w[0])).abs()));
            }
        }
    }
    assert_eq!(ttft_diff.len(), 2 * (1 + 4));
    // Typical error: loopback transit and a wake-up, a few ms even when the
    // machine is busy; a single request may be delayed by a preempted thread.
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (ttft_med, e2e_med, itl_med) = (median(&mut ttft_diff), median(&mut e2e_diff), median(&mut itl_err));
    assert!(ttft_med < 3.0, "median TTFT error {ttft_med} ms: {ttft_diff:?}");
    assert!(e2e_med < 3.0, "median E2E error {e2e_med} ms: {e2e_diff:?}");
    assert!(itl_med < 0.5, "median ITL error {itl_med} ms");
    assert!(ttft_diff.iter().chain(&e2e_diff).all(|d| *d < 25.0), "an error beyond 25 ms: {ttft_diff:?} {e2e_diff:?}");
}

#[test]
fn version_names_the_commit_it_was_built_from() {
    let out = infergate().arg("--version").assert().code(exit::PASS).get_output().stdout.clone();
    let line = String::from_utf8(out).unwrap();
    let rest =
        line.strip_prefix(concat!("infergate ", env!("CARGO_PKG_VERSION"), " (")).unwrap_or_else(|| panic!("{line:?}"));
    let commit = rest.strip_suffix(")\n").unwrap_or_else(|| panic!("{line:?}"));
    // Built from this checkout, it names HEAD (build.rs reruns when HEAD moves);
    // built from the crates.io package or a bare copy, it says so.
    let git = |args: &[&str]| {
        StdCommand::new("git")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let top = git(&["rev-parse", "--show-toplevel"]).map(|t| Path::new(&t).canonicalize().unwrap());
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).canonicalize().unwrap();
    if std::env::var_os("INFERGATE_GIT_COMMIT").is_none() && top.as_deref() == Some(here.as_path()) {
        let head = git(&["rev-parse", "--short=7", "HEAD"]).unwrap();
        let day = git(&["log", "-1", "--format=%cs", "HEAD"]).unwrap();
        assert_eq!(commit, format!("{head} {day}"));
    } else {
        let (hash, day) = commit.split_once(' ').unwrap_or((commit, ""));
        let hash_ok = hash.len() == 7 && hash.bytes().all(|b| b.is_ascii_hexdigit());
        assert!(commit == "unknown commit" || (hash_ok && (day.is_empty() || day.len() == 10)), "{line:?}");
    }
}

#[test]
fn server_down_exits_3_naming_the_url() {
    let dir = tempfile::tempdir().unwrap();
    infergate()
        .current_dir(dir.path())
        .args(["run", "--base-url", "http://127.0.0.1:9/", "--model", "m", "--suite", "quick"])
        .assert()
        .code(exit::RUN_FAILED)
        .stderr(predicate::str::contains("http://127.0.0.1:9").and(predicate::str::contains("cannot reach")));
}

#[test]
fn broken_config_exits_2_naming_file_line_and_key() {
    infergate()
        .args(["run", "--config", "tests/fixtures/broken.toml"])
        .assert()
        .code(exit::INVALID_INPUT)
        .stderr(predicate::str::contains("tests/fixtures/broken.toml:7").and(predicate::str::contains("repetitons")));
}

#[test]
fn invalid_inputs_exit_2_with_the_fix() {
    let sim = fast_sim();
    let cases: &[(&[&str], &str)] = &[
        (&["run", "--base-url", "http://127.0.0.1:9"], "--model"),
        (&["run", "--model", "m"], "--base-url"),
        (&["run", "--base-url", "localhost", "--model", "m"], "http://"),
        (&["run", "--base-url", "http://127.0.0.1:9", "--model", "m", "--suite", "nope"], "unknown suite"),
        (
            &["run", "--base-url", "http://127.0.0.1:9", "--model", "m", "--suite", "quick", "--cases", "x/*"],
            "matches no case",
        ),
        (
            &["run", "--base-url", "http://127.0.0.1:9", "--model", "m", "--suite", "quick", "--cases", "debugging/*,"],
            "'--cases <GLOB>': `debugging/*,` has an empty pattern",
        ),
        (&["baseline", "update", "--results", "r.json", "--baseline", "b", "--cases", " , "], "no case pattern"),
        (&["run", "--base-url", "http://127.0.0.1:9", "--model", "m", "--idle-timeout", "soon"], "--idle-timeout"),
        (&["run", "--base-url", "http://127.0.0.1:9", "--model", "m", "--config", "missing.toml"], "missing.toml"),
        (&["run", "--base-url", "http://127.0.0.1:9", "--model", "m", "--repetitions", "0"], "repetitions"),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (args, needle) in cases {
        infergate()
            .current_dir(dir.path())
            .args(*args)
            .assert()
            .code(exit::INVALID_INPUT)
            .stderr(predicate::str::contains(*needle));
    }
    // A model the server does not serve: the message lists what it serves.
    infergate()
        .current_dir(dir.path())
        .args(["run", "--base-url", &sim.url(), "--model", "gpt-9", "--suite", "quick"])
        .assert()
        .code(exit::INVALID_INPUT)
        .stderr(predicate::str::contains("gpt-9").and(predicate::str::contains("it serves: sim")));
}

#[test]
fn failed_requests_exit_3_and_keep_the_results() {
    // Every request outlives the request timeout.
    let sim = Sim::start(SimConfig { ttft_base_ms: 300.0, ..SimConfig::default() });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    infergate()
        .args(["run", "--base-url", &sim.url(), "--model", "sim", "--suite", "quick", "--cases", "debugging/256"])
        .args(["--repetitions", "2", "--warmup", "0", "--request-timeout", "100ms"])
        .arg("--out")
        .arg(&out)
        .assert()
        .code(exit::RUN_FAILED)
        .stderr(predicate::str::contains("3 of 3 requests failed"));
    let r = load(&out);
    let warm = &r.cases[0].phases[&PhaseName::Warm];
    assert_eq!(warm.summary.errors, 2);
    assert_eq!(warm.summary.errors_by_class.get("timeout"), Some(&2));
    assert!(warm.summary.ttft_ms.is_none(), "failed requests never enter the statistics");
}

#[test]
fn missing_output_length_control_is_reported() {
    // Without ignore_eos/min_tokens the simulator stops at its natural length,
    // here always below the 32 tokens the quick suite asks for.
    let sim = Sim::start(SimConfig { itl_ms: 0.0, natural_len_min: 8, natural_len_max: 20, ..SimConfig::default() });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    infergate()
        .args(["run", "--base-url", &sim.url(), "--model", "sim", "--suite", "quick", "--cases", "debugging/256"])
        .args(["--repetitions", "2", "--ignore-eos", "false", "--min-tokens", "false", "--api", "completions"])
        .arg("--out")
        .arg(&out)
        .assert()
        .stderr(predicate::str::contains("did not hold the output length"));
    let r = load(&out);
    assert!(r.warnings.iter().any(|w| w.contains("did not hold the output length")));
    assert_eq!(r.environment.server.api, "completions");
}

#[cfg(unix)]
#[test]
fn sigterm_writes_partial_results_and_exits_3() {
    let sim = Sim::start(SimConfig { itl_ms: 50.0, ..SimConfig::default() });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let mut child = StdCommand::new(assert_cmd::cargo::cargo_bin("infergate"))
        .args(["run", "--base-url", &sim.url(), "--model", "sim", "--suite", "quick", "--repetitions", "20"])
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the first case is in its warm phase (three capability
    // probes, cold, warm-up and one warm request streamed), then stop the run.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while sim.truth().iter().filter(|t| t.stream).count() < 6 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(exit::RUN_FAILED));
    let r = load(&out);
    assert!(!r.complete);
    assert_eq!(r.cases.len(), 1, "the case in progress is kept");
    let warm = &r.cases[0].phases[&PhaseName::Warm];
    assert!(warm.summary.requests >= 1 && warm.summary.requests < 20, "{:?}", warm.summary);
    assert!(r.warnings.iter().any(|w| w.contains("interrupted")));
}

#[test]
fn sim_command_prints_its_address_first() {
    use std::io::{BufRead as _, BufReader, Read as _, Write as _};
    let mut child = StdCommand::new(assert_cmd::cargo::cargo_bin("infergate"))
        .args(["sim", "--port", "0", "--model", "m2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    let addr = first.trim().strip_prefix("listening on http://").unwrap_or_else(|| panic!("first line: {first:?}"));
    let mut tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.write_all(b"GET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut body = String::new();
    tcp.read_to_string(&mut body).unwrap();
    assert!(body.contains("\"id\":\"m2\""), "{body}");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn doctor_reports_what_works() {
    let sim = fast_sim();
    let dir = tempfile::tempdir().unwrap();
    infergate()
        .current_dir(dir.path())
        .args(["doctor", "--base-url", &sim.url(), "--model", "sim"])
        .assert()
        .code(exit::PASS)
        .stdout(predicate::str::contains("ok    model: sim").and(predicate::str::contains("POST /tokenize works")));
    infergate()
        .current_dir(dir.path())
        .args(["doctor", "--base-url", "http://127.0.0.1:9", "--model", "sim"])
        .assert()
        .code(exit::RUN_FAILED)
        .stdout(predicate::str::contains("FAIL  server"));
}

#[test]
fn results_to_stdout_with_dash() {
    let sim = fast_sim();
    let output = infergate()
        .args(["-q", "run", "--base-url", &sim.url(), "--model", "sim", "--suite", "quick", "--cases", "debugging/256"])
        .args(["--repetitions", "1", "--out", "-"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(exit::PASS));
    let r: Results = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(r.cases.len(), 1);
}

#[test]
fn concurrency_and_poisson_rate_shape_the_warm_phase() {
    let sim = Sim::start(SimConfig { itl_ms: 3.0, ..SimConfig::default() });
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("c.json");
    infergate()
        .args(["-q", "run", "--base-url", &sim.url(), "--model", "sim", "--suite", "quick", "--cases", "debugging/256"])
        .args(["--repetitions", "8", "--concurrency", "4", "--warmup", "0"])
        .arg("--out")
        .arg(&out)
        .assert()
        .code(exit::PASS);
    let r = load(&out);
    let warm = &r.cases[0].phases[&PhaseName::Warm];
    assert_eq!(r.cases[0].concurrency, 4);
    // Most requests in flight at any start: exactly the concurrency.
    let in_flight_at =
        |t: f64| warm.requests.iter().filter(|q| q.start_ms <= t && t < q.start_ms + q.e2e_ms.unwrap()).count();
    let max_in_flight = warm.requests.iter().map(|q| in_flight_at(q.start_ms)).max().unwrap();
    assert_eq!(max_in_flight, 4);
    assert!(warm.summary.request_throughput > 0.0 && warm.summary.output_throughput > 0.0);

    let out = dir.path().join("p.json");
    infergate()
        .args(["-q", "run", "--base-url", &sim.url(), "--model", "sim", "--suite", "quick", "--cases", "debugging/256"])
        .args(["--repetitions", "6", "--concurrency", "6", "--request-rate", "20", "--warmup", "0"])
        .arg("--out")
        .arg(&out)
        .assert()
        .code(exit::PASS);
    let r = load(&out);
    let warm = &r.cases[0].phases[&PhaseName::Warm];
    assert_eq!(r.cases[0].request_rate, Some(20.0));
    let starts: Vec<f64> = warm.requests.iter().map(|q| q.start_ms).collect();
    // Arrival order, give or take the scheduling of the spawned requests.
    assert!(starts.windows(2).all(|w| w[1] >= w[0] - 2.0), "{starts:?}");
    // Poisson arrivals at 20/s: the six starts spread over tens of ms, not all at once.
    assert!(starts[5] - starts[0] > 20.0, "{starts:?}");
}

#[test]
fn custom_suite_file_runs_with_its_own_settings() {
    let sim = fast_sim();
    let r = run_sim(&sim, &["--suite", "tests/fixtures/suite.toml", "--warmup", "0"]);
    assert_eq!(r.suite.name, "fixture");
    assert_eq!(r.suite.source, "tests/fixtures/suite.toml");
    let ids: Vec<_> = r.cases.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["summarise/300", "explain/200", "explain/400"]);
    let explain = &r.cases[1];
    assert_eq!((explain.output_tokens, explain.concurrency, explain.repetitions), (8, 2, 2));
    assert_eq!(explain.phases[&PhaseName::Warm].requests.len(), 2);
    assert_eq!(explain.phases[&PhaseName::Warm].requests[0].output_tokens, Some(8));
}

#[test]
fn config_file_supplies_server_and_run_settings() {
    let sim = fast_sim();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("infergate.toml"),
        format!(
            "[server]\nbase_url = \"{}/v1\"\nmodel = \"sim\"\napi = \"completions\"\n\n[run]\nsuite = \"quick\"\ncases = \"debugging/256\"\nrepetitions = 3\nwarmup = 0\noutput = \"out/results.json\"\n",
            sim.url()
        ),
    )
    .unwrap();
    // No flags: everything comes from ./infergate.toml.
    infergate().current_dir(dir.path()).args(["-q", "run"]).assert().code(exit::PASS);
    let r = load(&dir.path().join("out/results.json"));
    assert_eq!(r.environment.server.api, "completions");
    assert_eq!(r.cases.len(), 1);
    assert_eq!(r.cases[0].phases[&PhaseName::Warm].requests.len(), 3);
    // A flag beats the file.
    infergate().current_dir(dir.path()).args(["-q", "run", "--repetitions", "1"]).assert().code(exit::PASS);
    let r = load(&dir.path().join("out/results.json"));
    assert_eq!(r.cases[0].phases[&PhaseName::Warm].requests.len(), 1);
}
