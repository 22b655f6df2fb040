//! Bounded everywhere: whatever a server sends before the measured stream
//! (an endless model list, a giant response head, an endless error body,
//! nothing at all), the real binary ends with a clear message naming the
//! request and the limit, exit 3, in bounded memory and within
//! `--request-timeout`; and an input file over its size limit is refused
//! with exit 2, not read.
#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap here is a failed test, not a crash.

mod support;

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use infergate::exit;
use infergate::results::ErrorClass;
use infergate::sim::SimConfig;
use support::Sim;

/// Longest any run here may take before the test kills it and fails.
const HANG: Duration = Duration::from_secs(120);

/// Peak memory a bounded run stays under: the debug binary's own footprint
/// is about 30 MiB; reading an endless body without a limit passes this in
/// well under a second.
const MAX_RSS_KIB: u64 = 200 << 10;

/// How one run of the binary ended.
#[derive(Debug)]
struct Ended {
    code: i32,
    stderr: String,
    /// Peak resident memory of the process as last seen (`VmHWM`), KiB.
    max_rss_kib: u64,
    elapsed: Duration,
}

/// Runs `infergate ARGS` in `dir` and watches its peak memory.
///
/// The peak is `VmHWM` of `/proc/PID/status`, read every few milliseconds
/// until the process exits: a lower bound, but a run that reads without a
/// limit grows for long and is seen. (`wait4`'s `ru_maxrss` cannot serve: it
/// counts the test process's memory, shared by the child before its exec.)
fn run_measured(dir: &Path, args: &[&str]) -> Ended {
    let stderr_path = dir.join("stderr.txt");
    let mut child = Command::new(env!("CARGO_BIN_EXE_infergate"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("GITHUB_OUTPUT")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    let pid = child.id();
    let start = Instant::now();
    let mut killed = false;
    let mut max_rss_kib = 0;
    let status = loop {
        max_rss_kib = max_rss_kib.max(vm_hwm_kib(pid).unwrap_or(0));
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if !killed && start.elapsed() > HANG {
            child.kill().unwrap();
            killed = true;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let stderr = std::fs::read_to_string(&stderr_path).unwrap();
    assert!(!killed, "the run hung and was killed after {HANG:?}:\n{stderr}");
    let code = status.code().unwrap_or(-1);
    Ended { code, stderr, max_rss_kib, elapsed: start.elapsed() }
}

/// `VmHWM` of a running process, KiB.
fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?;
    line.trim().trim_end_matches("kB").trim().parse().ok()
}

/// `infergate run` of one small case against `url`, then `extra`.
fn run_args<'a>(url: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["run", "--base-url", url, "--model", "sim", "--suite", "quick", "--cases", "debugging/256"];
    v.extend(["--warmup", "0", "--repetitions", "2", "--gpu", "off", "--out", "results.json"]);
    v.extend(extra);
    v
}

impl Ended {
    /// Exit 3 with `fragment` in the message, in bounded memory.
    fn assert_failed_with(&self, fragment: &str) {
        assert_eq!(self.code, exit::RUN_FAILED, "{self:?}");
        assert!(self.stderr.contains(fragment), "expected `{fragment}` in:\n{}", self.stderr);
        assert!(!self.stderr.contains("panicked"), "{}", self.stderr);
        assert!(self.max_rss_kib < MAX_RSS_KIB, "peak memory {} KiB:\n{}", self.max_rss_kib, self.stderr);
        assert!(self.max_rss_kib > 0, "the peak was never seen");
    }
}

/// A hand-written HTTP server that reads each request's head and answers
/// with `head`, then `body_chunk` until the client goes away (or once when
/// `endless` is false); the connection then closes.
struct RawServer {
    url: String,
}

impl RawServer {
    fn start(head: String, body_chunk: &'static [u8], endless: bool) -> RawServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let head = head.clone();
                std::thread::spawn(move || answer(stream, &head, body_chunk, endless));
            }
        });
        RawServer { url }
    }

    /// A server that accepts connections and never answers.
    fn silent() -> RawServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming().flatten() {
                held.push(stream);
            }
        });
        RawServer { url }
    }
}

fn answer(stream: TcpStream, head: &str, body_chunk: &[u8], endless: bool) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
    }
    let mut stream = stream;
    if stream.write_all(head.as_bytes()).is_err() {
        return;
    }
    while stream.write_all(body_chunk).is_ok() && endless {}
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn an_endless_model_list_is_cut_at_its_limit() {
    let sim = Sim::start(SimConfig { faults: vec!["huge-models".parse().unwrap()], ..SimConfig::default() });
    let dir = tempdir();
    let url = sim.url();
    let ended = run_measured(dir.path(), &run_args(&url, &["--request-timeout", "30s"]));
    ended.assert_failed_with("did not answer properly: GET /v1/models: body over 4 MiB");
    assert!(!ended.stderr.contains("cannot reach"), "{}", ended.stderr);
    assert!(sim.faults_injected() >= 1);
}

#[test]
fn an_endless_body_without_length_is_cut_too() {
    let server = RawServer::start("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n".into(), b"[1,", true);
    let dir = tempdir();
    let ended = run_measured(dir.path(), &run_args(&server.url, &[]));
    ended.assert_failed_with("GET /v1/models: body over 4 MiB");
}

#[test]
fn a_server_that_never_answers_ends_within_the_request_timeout() {
    let server = RawServer::silent();
    let dir = tempdir();
    // The idle timeout alone would wait a minute: the total limit ends it first.
    let ended = run_measured(dir.path(), &run_args(&server.url, &["--request-timeout", "2s", "--idle-timeout", "60s"]));
    ended.assert_failed_with("did not answer in time: GET /v1/models: request took longer than 2s (request timeout)");
    assert!(ended.elapsed < Duration::from_secs(60), "took {:?}", ended.elapsed);
}

#[test]
fn a_giant_response_head_is_a_bad_answer_not_an_unreachable_server() {
    let head = format!("HTTP/1.1 200 OK\r\nX-Padding: {}\r\nContent-Length: 2\r\n\r\n", "p".repeat(1 << 20));
    let server = RawServer::start(head, b"{}", false);
    let dir = tempdir();
    let ended = run_measured(dir.path(), &run_args(&server.url, &[]));
    ended.assert_failed_with("did not answer properly: GET /v1/models: the answer is not valid HTTP");
    assert!(ended.stderr.contains("message head is too large"), "{}", ended.stderr);
    assert!(!ended.stderr.contains("cannot reach"), "{}", ended.stderr);
}

#[test]
fn giant_response_heads_on_measured_requests_are_bad_responses_never_retried() {
    let sim = Sim::start(SimConfig { faults: vec!["huge-headers@case=*".parse().unwrap()], ..SimConfig::default() });
    let dir = tempdir();
    let url = sim.url();
    let ended = run_measured(dir.path(), &run_args(&url, &["--retries", "2"]));
    ended.assert_failed_with("requests failed");
    let results = infergate::results::load(&dir.path().join("results.json")).unwrap();
    let requests: Vec<_> = results.cases.iter().flat_map(|c| c.phases.values()).flat_map(|p| &p.requests).collect();
    assert!(!requests.is_empty());
    for r in requests {
        let e = r.error.as_ref().expect("every request failed");
        assert_eq!(e.class, ErrorClass::BadResponse, "{e:?}");
        assert!(e.message.contains("message head is too large"), "{e:?}");
        assert_eq!(r.attempts, 1, "a bad answer is not sent again: {r:?}");
    }
}

#[test]
fn an_endless_error_body_is_cut_in_the_message() {
    let head = "HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\n\r\n".to_string();
    let server = RawServer::start(head, b"overloaded ", true);
    let dir = tempdir();
    let ended = run_measured(dir.path(), &run_args(&server.url, &[]));
    ended.assert_failed_with("GET /v1/models: HTTP 500 Internal Server Error: overloaded overloaded");
    let line = ended.stderr.lines().find(|l| l.contains("HTTP 500")).unwrap();
    assert!(line.len() < 600 && line.ends_with("..."), "{line}");
}

/// A file `len` bytes long that is not read: only its length counts.
fn sparse_file(dir: &Path, name: &str, len: u64) -> PathBuf {
    let path = dir.join(name);
    std::fs::File::create(&path).unwrap().set_len(len).unwrap();
    path
}

#[test]
fn input_files_over_their_limit_are_refused_with_exit_2() {
    let dir = tempdir();
    let results = sparse_file(dir.path(), "huge.json", infergate::results::MAX_FILE_BYTES + 1);
    let baseline = sparse_file(dir.path(), "huge.toml", infergate::baseline::MAX_FILE_BYTES + 1);
    let results = results.to_str().unwrap();
    let baseline = baseline.to_str().unwrap();

    let ended = run_measured(dir.path(), &["baseline", "show", baseline]);
    assert_eq!(ended.code, exit::INVALID_INPUT, "{ended:?}");
    assert!(ended.stderr.contains("huge.toml: the file is over the 256 MiB limit for a baseline"), "{}", ended.stderr);

    let ended = run_measured(dir.path(), &["report", "--results", results]);
    assert_eq!(ended.code, exit::INVALID_INPUT, "{ended:?}");
    assert!(
        ended.stderr.contains("huge.json: the file is over the 2 GiB limit for a results file"),
        "{}",
        ended.stderr
    );
    assert!(ended.max_rss_kib < MAX_RSS_KIB, "{ended:?}");
}
