//! Server lifecycle: infergate starts the server, waits until it is ready,
//! records the time that took, and leaves no process behind, whatever the
//! server does.
#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap here is a failed test, not a crash.
#![cfg(unix)]

use std::path::Path;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use infergate::exit;
use predicates::prelude::*;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn bin() -> String {
    assert_cmd::cargo::cargo_bin("infergate").display().to_string()
}

/// Processes whose command line contains `marker`.
fn processes_with(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(raw) = std::fs::read(entry.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&raw).replace('\0', " ");
            if cmd.contains(marker) && !cmd.contains("cargo") && !cmd.contains("lifecycle-") {
                found.push(cmd);
            }
        }
    }
    found
}

/// Waits (bounded) until no process carries `marker`.
fn assert_gone(marker: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !processes_with(marker).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(processes_with(marker).is_empty(), "left behind: {:?}", processes_with(marker));
}

fn run(dir: &Path, port: u16, command: &str, extra: &[&str]) -> Command {
    let mut cmd = Command::cargo_bin("infergate").unwrap();
    cmd.current_dir(dir)
        .timeout(Duration::from_secs(60))
        .args(["run", "--base-url", &format!("http://127.0.0.1:{port}"), "--model", "sim", "--suite", "quick"])
        .args(["--cases", "debugging/256", "--repetitions", "2", "--gpu", "off", "--server-command", command])
        .args(extra);
    cmd
}

#[test]
fn started_server_is_timed_and_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let command = format!("{} sim --port {port} --itl-ms 1", bin());
    run(dir.path(), port, &command, &["--out", "out/r.json"]).assert().code(exit::PASS);
    let r = infergate::results::load(&dir.path().join("out/r.json")).unwrap();
    let launched = r.environment.server.launched.expect("the launch is recorded");
    assert_eq!(launched.command, command);
    assert!(launched.time_to_ready_s > 0.0 && launched.time_to_ready_s < 30.0, "{launched:?}");
    assert!(launched.log.ends_with("out/server.log"));
    assert!(std::fs::read_to_string(dir.path().join("out/server.log")).unwrap().contains("listening on"));
    // The capability probe's findings are recorded.
    let caps = r.environment.server.capabilities.expect("the capabilities are recorded");
    assert_eq!(caps.engine.as_deref(), Some("infergate-sim"));
    assert_eq!(caps.version_source.as_deref(), Some("GET /version"));
    assert_eq!((caps.ignore_eos_holds_length, caps.min_tokens_holds_length), (Some(true), Some(true)));
    assert_eq!(caps.usage_streamed, Some(true));
    assert!(caps.natural_length.unwrap() < infergate::runner::capabilities::PROBE_TOKENS);
    assert!(caps.tokenize);
    assert_eq!(caps.cache_reset.as_deref(), Some("/reset_prefix_cache"));
    assert_eq!(caps.context_length, Some(131_072));
    assert_gone(&format!("--port {port}"));
}

#[test]
fn a_server_serving_another_model_is_exit_2_naming_what_it_serves() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let command = format!("{} sim --port {port} --model other-model", bin());
    run(dir.path(), port, &command, &[])
        .assert()
        .code(exit::INVALID_INPUT)
        .stderr(predicate::str::contains("serves other-model but not `sim`"));
    assert_gone(&format!("--port {port}"));
}

#[test]
fn a_server_that_exits_at_once_is_exit_3_with_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    run(dir.path(), port, "echo model file not found: boom-marker >&2; exit 7", &[])
        .assert()
        .code(exit::RUN_FAILED)
        .stderr(predicate::str::contains("exited").and(predicate::str::contains("boom-marker")));
}

#[test]
fn a_server_that_never_becomes_ready_is_stopped_and_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    run(dir.path(), port, "echo loading weights; sleep 4242.5", &["--ready-timeout", "2s"])
        .assert()
        .code(exit::RUN_FAILED)
        .stderr(predicate::str::contains("not ready within").and(predicate::str::contains("loading weights")));
    assert_gone("sleep 4242.5");
}

#[test]
fn a_server_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("infergate.toml"), "[server]\nstop_grace = \"1s\"\n").unwrap();
    let port = free_port();
    // The shell and its `sleep` ignore SIGTERM; only SIGKILL ends them.
    let command = format!("trap '' TERM; {} sim --port {port} --itl-ms 1 & sleep 4343.5", bin());
    let started = Instant::now();
    run(dir.path(), port, &command, &[]).assert().code(exit::PASS);
    assert!(started.elapsed() >= Duration::from_secs(1), "the grace period was honoured");
    assert_gone("sleep 4343.5");
    assert_gone(&format!("--port {port}"));
}

/// A port that answers: a listener that records the first line of every
/// request it gets and answers each as a stale server would.
fn stale_listener() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut line = String::new();
            let _ = std::io::BufReader::new(&stream).read_line(&mut line);
            log.lock().unwrap().push(line);
            let _ = (&stream).write_all(b"HTTP/1.0 200 OK\r\nServer: stale-marker/1.0\r\nContent-Length: 2\r\n\r\nok");
        }
    });
    (port, seen)
}

#[test]
fn a_stale_server_on_the_port_is_exit_3_naming_it_and_is_never_measured() {
    let dir = tempfile::tempdir().unwrap();
    let (port, seen) = stale_listener();
    let command = format!("touch launched; {} sim --port {port}", bin());
    run(dir.path(), port, &command, &[]).assert().code(exit::RUN_FAILED).stderr(
        predicate::str::contains(format!("port {port} is already in use"))
            .and(predicate::str::contains("Server: stale-marker/1.0"))
            .and(predicate::str::contains("200 OK")),
    );
    assert!(!dir.path().join("launched").exists(), "the command must not start while the port is taken");
    let seen = seen.lock().unwrap().clone();
    assert!(seen.iter().all(|l| l.starts_with("GET /health ") || l.is_empty()), "{seen:?}");
    assert!(!dir.path().join("infergate-out/results.json").exists());
}

#[test]
fn a_stale_simulator_on_the_port_gets_no_request_measured() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let truth = dir.path().join("stale-truth.jsonl");
    let mut stale = std::process::Command::new(bin())
        .args(["sim", "--port", &port.to_string(), "--truth-log", truth.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let up = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() && Instant::now() < up {
        std::thread::sleep(Duration::from_millis(50));
    }
    let command = format!("{} sim --port {port}", bin());
    let assert = run(dir.path(), port, &command, &[]).assert();
    let _ = stale.kill();
    let _ = stale.wait();
    assert.code(exit::RUN_FAILED).stderr(predicate::str::contains(format!("127.0.0.1:{port} answers GET /health")));
    let generated = std::fs::read_to_string(&truth).unwrap_or_default();
    assert!(generated.trim().is_empty(), "the stale server was measured: {generated}");
}

#[test]
fn sigkill_of_infergate_takes_the_server_it_started_along() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // `cd . &&` makes the shell fork the server rather than exec it: a
    // grandchild of infergate, which only the group's watchdog reaches.
    let command = format!("cd . && {} sim --port {port} --itl-ms 20", bin());
    let mut infergate = std::process::Command::new(bin())
        .current_dir(dir.path())
        .args(["run", "--base-url", &format!("http://127.0.0.1:{port}"), "--model", "sim", "--suite", "quick"])
        .args(["--repetitions", "100000", "--gpu", "off", "--server-command", &command])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Up: the server answers (the run is measuring or about to).
    let up = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < up, "the server never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    infergate.kill().unwrap(); // SIGKILL: no handler of infergate runs.
    infergate.wait().unwrap();
    assert_gone(&format!("--port {port} --itl-ms"));
}
