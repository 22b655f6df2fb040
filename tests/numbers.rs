//! Absurd numbers: every duration, request rate and count a user can write
//! (flags, `infergate.toml` keys, suite keys, `sim --fault` parameters),
//! swept through boundary values with the real binary. A value out of range
//! is exit 2 naming its flag or key (and the file and line), before any
//! request is sent; a value in range is accepted; nothing ever panics
//! (exit 101), and no number is echoed as hundreds of digits.
//!
//! `run` points at a closed port, so a value that passes validation ends in
//! exit 3 (server unreachable) at once: an exit 2 there proves that the
//! check came before the first request. `sim` is given a port the test
//! holds, so a valid fault ends in exit 3 (cannot bind) instead of serving.
#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap here is a failed test, not a crash.

mod support;

use std::path::Path;
use std::time::Duration;

use assert_cmd::Command;
use infergate::exit;

/// Nothing listens here (port 1 needs root to bind, and nobody does).
const CLOSED: &str = "http://127.0.0.1:1";

/// Duration flag values out of range or not durations.
const BAD_DURATIONS: &[&str] = &[
    "0",
    "-0",
    "-1",
    "0s",
    "1e-300",
    "0.0000001",
    "999us",
    "1e19",
    "1e20",
    "1e308",
    "NaN",
    "inf",
    "-inf",
    "1e19s",
    "366days",
    "99999999999999999999s",
    "18446744073709551616",
    "soon",
    "",
];
/// Duration flag values in range, the boundaries included.
const GOOD_DURATIONS: &[&str] = &["1ms", "0.001", "1", "1.5", "10m", "1m 30s", "365days", "31536000"];

/// Duration TOML values out of range (TOML literals).
const BAD_TOML_DURATIONS: &[&str] = &[
    "0",
    "-1",
    "0.0",
    "-0.0",
    "1e-300",
    "5e-20",
    "1e19",
    "1e308",
    "nan",
    "inf",
    "-inf",
    "\"1e19s\"",
    "\"0s\"",
    "\"366days\"",
    "\"-5s\"",
    "\"\"",
    "true",
];
/// Duration TOML values in range.
const GOOD_TOML_DURATIONS: &[&str] = &["\"1ms\"", "0.001", "1", "\"10m\"", "\"365days\"", "31536000"];

/// Rate values out of range (flag text and TOML literal alike).
const BAD_RATES: &[&str] = &["0", "-1", "5e-20", "1e-300", "0.0009", "1000001", "1e308", "nan", "inf", "-inf"];
/// Rate values in range.
const GOOD_RATES: &[&str] = &["0.001", "2.5", "1000000"];

/// The binary, from a fresh folder (no `./infergate.toml`), with a deadline.
fn infergate(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("infergate").unwrap();
    cmd.current_dir(dir).timeout(Duration::from_secs(60)).env_remove("RUST_BACKTRACE");
    cmd
}

/// `run` against the closed port with `extra` arguments.
fn run(dir: &Path, extra: &[&str]) -> (i32, String) {
    let out = infergate(dir)
        .args(["run", "--base-url", CLOSED, "--model", "m", "--suite", "quick", "--gpu", "off"])
        .args(extra)
        .output()
        .unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// No panic, no number printed as a long run of digits.
fn sane(what: &str, code: i32, stderr: &str) {
    assert_ne!(code, 101, "{what}: panicked\n{stderr}");
    assert!(!stderr.contains("panicked"), "{what}: panicked\n{stderr}");
    let longest = stderr.split(|c: char| !c.is_ascii_digit()).map(str::len).max().unwrap_or(0);
    assert!(longest <= 24, "{what}: a number echoed with {longest} digits\n{stderr}");
}

/// Out of range: exit 2, naming `names`.
fn refused(what: &str, (code, stderr): (i32, String), names: &[&str]) {
    sane(what, code, &stderr);
    assert_eq!(code, exit::INVALID_INPUT, "{what}: expected exit 2\n{stderr}");
    for name in names {
        assert!(stderr.contains(name), "{what}: the message does not name {name}\n{stderr}");
    }
}

/// In range: past validation, so the closed port (or a 1 ms deadline)
/// ends the run with exit 3.
fn accepted(what: &str, (code, stderr): (i32, String)) {
    sane(what, code, &stderr);
    assert_eq!(code, exit::RUN_FAILED, "{what}: expected the value to be accepted\n{stderr}");
}

#[test]
fn duration_flags_are_checked_up_front() {
    let dir = tempfile::tempdir().unwrap();
    for flag in ["--request-timeout", "--idle-timeout", "--ready-timeout", "--deadline", "--grace"] {
        for v in BAD_DURATIONS {
            let what = format!("{flag}={v}");
            refused(&what, run(dir.path(), &[&what]), &[flag]);
        }
        for v in GOOD_DURATIONS {
            let what = format!("{flag}={v}");
            accepted(&what, run(dir.path(), &[&what]));
        }
    }
    // The message says what the range is, and shows the value as written.
    let (_, stderr) = run(dir.path(), &["--deadline=1e19"]);
    assert!(stderr.contains("--deadline: `1e19` is too long: durations are from 1ms to 365days"), "{stderr}");
}

/// `run --config` with `[section] key = value` on line 2. The file is kept
/// out of `dir` itself, where `run` would read it by default.
fn run_with_key(dir: &Path, section: &str, key: &str, value: &str) -> (i32, String) {
    std::fs::create_dir_all(dir.join("cfg")).unwrap();
    let cfg = dir.join("cfg/infergate.toml");
    std::fs::write(&cfg, format!("[{section}]\n{key} = {value}\n")).unwrap();
    run(dir, &["--config", cfg.to_str().unwrap()])
}

#[test]
fn duration_keys_are_checked_with_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let keys = [
        ("server", "request_timeout"),
        ("server", "idle_timeout"),
        ("server", "ready_timeout"),
        ("server", "stop_grace"),
        ("run", "deadline"),
        ("run", "grace"),
        ("gpu", "interval"),
    ];
    for (section, key) in keys {
        let path = format!("key `{section}.{key}`");
        for v in BAD_TOML_DURATIONS {
            let what = format!("[{section}] {key} = {v}");
            refused(&what, run_with_key(dir.path(), section, key, v), &["infergate.toml:2", &path]);
        }
        for v in GOOD_TOML_DURATIONS {
            let what = format!("[{section}] {key} = {v}");
            accepted(&what, run_with_key(dir.path(), section, key, v));
        }
    }
    // A float is shown in scientific notation, not as 300 digits.
    let (_, stderr) = run_with_key(dir.path(), "run", "deadline", "1e-300");
    assert!(stderr.contains("`1e-300` is too short"), "{stderr}");
}

#[test]
fn request_rates_are_checked_in_flags_config_and_suites() {
    let dir = tempfile::tempdir().unwrap();
    for v in BAD_RATES {
        let what = format!("--request-rate={v}");
        refused(&what, run(dir.path(), &[&what]), &["--request-rate", "from 0.001 to 1000000"]);
        let what = format!("[run] request_rate = {v}");
        refused(&what, run_with_key(dir.path(), "run", "request_rate", v), &["infergate.toml:2", "run.request_rate"]);
    }
    let (_, stderr) = run(dir.path(), &["--request-rate=1e-300"]);
    assert!(stderr.contains("got 1e-300"), "{stderr}");
    for v in GOOD_RATES {
        let what = format!("--request-rate={v}");
        accepted(&what, run(dir.path(), &[&what]));
        let what = format!("[run] request_rate = {v}");
        accepted(&what, run_with_key(dir.path(), "run", "request_rate", v));
    }
    let not_a_number = run(dir.path(), &["--request-rate=fast"]);
    refused("--request-rate=fast", not_a_number, &["--request-rate"]);
}

/// A suite file with `top` at the top and `scenario` in its one scenario.
fn run_suite(dir: &Path, top: &str, scenario: &str) -> (i32, String) {
    let suite = dir.join("suite.toml");
    let text = format!(
        "name = \"s\"\ncontexts = [64]\noutput_tokens = 8\n{top}\n[[scenarios]]\nname = \"a\"\ninstruction = \"x\"\n{scenario}\n"
    );
    std::fs::write(&suite, text).unwrap();
    let out = infergate(dir)
        .args(["run", "--base-url", CLOSED, "--model", "m", "--gpu", "off", "--suite", suite.to_str().unwrap()])
        .output()
        .unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn suite_rates_and_counts_are_checked_with_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let table: &[(&str, &[&str], &[&str])] = &[
        ("request_rate", BAD_RATES, GOOD_RATES),
        ("repetitions", &["0", "-1", "1000001", "4294967296", "1.5", "1e19", "\"3\""], &["1", "1000000"]),
        ("concurrency", &["0", "-1", "1000001", "4294967297", "nan"], &["1", "1000000"]),
        ("warmup", &["-1", "1000001", "4294967296", "inf"], &["0", "1000000"]),
    ];
    for (key, bad, good) in table {
        for v in *bad {
            let line = format!("{key} = {v}");
            refused(&format!("suite top {line}"), run_suite(dir.path(), &line, ""), &["suite.toml:4", key]);
            let path = format!("scenarios[0].{key}");
            refused(&format!("scenario {line}"), run_suite(dir.path(), "", &line), &["suite.toml:8", &path]);
        }
        for v in *good {
            let line = format!("{key} = {v}");
            accepted(&format!("suite top {line}"), run_suite(dir.path(), &line, ""));
            accepted(&format!("scenario {line}"), run_suite(dir.path(), "", &line));
        }
    }
    // Token counts, set in the scenario over the suite's.
    for line in ["output_tokens = 0", "output_tokens = 10000001", "output_tokens = 1e308", "contexts = [-1]"] {
        refused(&format!("scenario {line}"), run_suite(dir.path(), "", line), &["suite.toml:8", "token count"]);
    }
    accepted("scenario output_tokens = 1", run_suite(dir.path(), "", "output_tokens = 1"));
}

#[test]
fn count_flags_and_keys_have_ranges() {
    let dir = tempfile::tempdir().unwrap();
    // (flag, out of range, in range)
    let flags: &[(&str, &[&str], &[&str])] = &[
        ("--repetitions", &["0", "-1", "1000001", "4294967296", "1e3", "nan"], &["1", "1000000"]),
        ("--warmup", &["-1", "1000001", "4294967296"], &["0", "1000000"]),
        ("--concurrency", &["0", "1000001", "4294967295"], &["1", "1000000"]),
        ("--retries", &["-1", "101", "4294967295", "1e2"], &["0", "100"]),
        ("--runs", &["0", "101", "-3"], &["1"]),
    ];
    for (flag, bad, good) in flags {
        for v in *bad {
            let what = format!("{flag}={v}");
            refused(&what, run(dir.path(), &[&what]), &[flag]);
        }
        for v in *good {
            let what = format!("{flag}={v}");
            accepted(&what, run(dir.path(), &[&what]));
        }
    }
    let keys: &[(&str, &[&str], &[&str])] = &[
        ("repetitions", &["0", "-1", "1000001", "1e19", "2.5"], &["1", "1000000"]),
        ("warmup", &["-1", "1000001", "4294967296", "1e308"], &["0", "1000000"]),
        ("concurrency", &["0", "1000001", "-inf"], &["1", "1000000"]),
        ("retries", &["-1", "101", "4294967295", "nan"], &["0", "100"]),
    ];
    for (key, bad, good) in keys {
        let path = format!("run.{key}");
        for v in *bad {
            let what = format!("[run] {key} = {v}");
            refused(&what, run_with_key(dir.path(), "run", key, v), &["infergate.toml:2", &path]);
        }
        for v in *good {
            accepted(&format!("[run] {key} = {v}"), run_with_key(dir.path(), "run", key, v));
        }
    }
}

#[test]
fn counts_of_other_commands_have_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["check", "--baseline", "b", "--confirm=101"], "--confirm"),
        (&["check", "--baseline", "b", "--confirm=4294967295"], "--confirm"),
        (&["check", "--baseline", "b", "--confirm=-1"], "--confirm"),
        (&["check", "--baseline", "b", "--runs=0"], "--runs"),
        (&["calibrate", "--runs=2"], "--runs"),
        (&["calibrate", "--runs=51"], "--runs"),
        (&["demo", "--repetitions=0"], "--repetitions"),
        (&["demo", "--repetitions=1000001"], "--repetitions"),
        (&["demo", "--slowdown=0"], "--slowdown"),
        (&["demo", "--slowdown=-1"], "--slowdown"),
        (&["demo", "--slowdown=1e-300"], "--slowdown"),
        (&["demo", "--slowdown=1e308"], "--slowdown"),
        (&["demo", "--slowdown=nan"], "--slowdown"),
        (&["demo", "--slowdown=inf"], "--slowdown"),
    ];
    for (args, flag) in cases {
        let out = infergate(dir.path()).args(*args).output().unwrap();
        let what = args.join(" ");
        refused(&what, (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned()), &[flag]);
    }
}

/// `sim` on a port the test holds, with `args`.
fn sim(dir: &Path, port: u16, args: &[&str]) -> (i32, String) {
    let out = infergate(dir).args(["sim", "--port", &port.to_string()]).args(args).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn sim_fault_parameters_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let mut bad: Vec<String> = Vec::new();
    for kind in ["stall", "slow-first-byte"] {
        bad.extend(BAD_DURATIONS.iter().map(|v| format!("{kind}:{v}")));
    }
    for spec in [
        "http429:-1",
        "http429:1e19",
        "http429:31536001",
        "http429:18446744073709551616",
        "reset:-1",
        "reset:4294967296",
        "huge-event:0",
        "huge-event:1e9",
        "huge-event:18446744073709551616",
        "short:0",
        "short:4294967296",
        "http500@rate=0",
        "http500@rate=-1",
        "http500@rate=1.5",
        "http500@rate=NaN",
        "http500@rate=inf",
        "http500@every=0",
        "http500@every=-1",
        "http500@every=1e19",
        "http500@every=18446744073709551616",
        "http500@requests=0",
        "http500@requests=3..2",
        "http500@requests=1..18446744073709551616",
    ] {
        bad.push(spec.into());
    }
    for spec in &bad {
        let what = format!("sim --fault {spec}");
        let arg = format!("--fault={spec}");
        refused(&what, sim(dir.path(), port, &[&arg]), &["--fault", &format!("`{spec}`")]);
    }
    let mut good: Vec<String> = Vec::new();
    for kind in ["stall", "slow-first-byte"] {
        good.extend(GOOD_DURATIONS.iter().map(|v| format!("{kind}:{v}")));
    }
    for spec in [
        "http429:0",
        "http429:31536000",
        "reset:0",
        "reset:4294967295",
        "huge-event:268435456",
        "short:4294967295",
        "http500@rate=1e-300",
        "http500@rate=1",
        "http500@every=18446744073709551615",
        "http500@requests=1..18446744073709551615",
    ] {
        good.push(spec.into());
    }
    for spec in &good {
        let what = format!("sim --fault {spec}");
        let (code, stderr) = sim(dir.path(), port, &[&format!("--fault={spec}")]);
        sane(&what, code, &stderr);
        // Accepted: the simulator got as far as binding the port the test holds.
        assert_eq!(code, exit::RUN_FAILED, "{what}: {stderr}");
        assert!(stderr.contains("could not serve"), "{what}: {stderr}");
    }
}

#[test]
fn sim_model_flags_never_panic_and_name_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let flags = [
        "--ttft-base-ms",
        "--prefill-tps",
        "--cached-prefill-factor",
        "--cold-penalty-ms",
        "--itl-ms",
        "--itl-jitter",
        "--concurrency-slowdown",
        "--request-cv",
        "--autocorrelation",
        "--outlier-rate",
        "--outlier-factor",
        "--warmup-slowdown",
        "--warmup-requests",
        "--run-drift",
        "--slowdown",
    ];
    for flag in flags {
        for v in ["nan", "inf", "-inf", "-1", "1e-300", "1e308"] {
            let what = format!("{flag}={v}");
            let (code, stderr) = sim(dir.path(), port, &[&what]);
            sane(&what, code, &stderr);
            match code {
                exit::INVALID_INPUT => assert!(stderr.contains(flag), "{what}: {stderr}"),
                exit::RUN_FAILED => assert!(stderr.contains("could not serve"), "{what}: {stderr}"),
                other => panic!("{what}: exit {other}\n{stderr}"),
            }
        }
    }
    let (_, stderr) = sim(dir.path(), port, &["--outlier-factor=1e-300"]);
    assert!(stderr.contains("got 1e-300"), "{stderr}");
}

#[test]
fn the_extremes_of_every_range_run_to_the_end() {
    // The longest durations, the highest rate and the most retries: the
    // clock arithmetic of a whole run (deadline, timeouts, arrivals, grace)
    // holds them.
    let sim = support::Sim::start(infergate::sim::SimConfig { itl_ms: 0.0, ..Default::default() });
    let dir = tempfile::tempdir().unwrap();
    let max = "365days";
    infergate(dir.path())
        .args(["run", "--base-url", &sim.url(), "--model", "sim", "--suite", "quick", "--gpu", "off"])
        .args(["--cases", "debugging/256", "--repetitions", "3", "--concurrency", "2", "--request-rate", "1000000"])
        .args(["--retries", "100", "--warmup", "0"])
        .args(["--request-timeout", max, "--idle-timeout", max, "--deadline", max, "--grace", max])
        .args(["--out", "r.json"])
        .assert()
        .code(exit::PASS);
}

#[test]
fn numbers_in_any_key_are_echoed_short() {
    let dir = tempfile::tempdir().unwrap();
    for (section, key, value) in
        [("gate", "max_error_rate", "1e308"), ("gate", "max_error_rate", "-1e-300"), ("run", "warmup", "1e308")]
    {
        let what = format!("[{section}] {key} = {value}");
        let path = format!("{section}.{key}");
        refused(&what, run_with_key(dir.path(), section, key, value), &["infergate.toml:2", &path]);
    }
}
