//! Security, end to end through the binary: the API key and the GitHub token
//! never leave the process (output, logs, files); text from servers and
//! results files is escaped in every report and never rendered as a
//! template; baselines stay inside their folder; the workflows never run a
//! fork's code with a write token.
//!
//! The servers are local: the built-in simulator, and a tiny HTTP server
//! (below) that echoes the `Authorization` header back, as careless servers
//! and proxies do in their error bodies.
#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap here is a failed test, not a crash.
#![cfg(unix)]

mod support;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use assert_cmd::Command;
use infergate::exit;
use infergate::sim::SimConfig;
use serde_json::{Value, json};
use support::Sim;

/// The API key: distinctive, so any trace of it is found.
const KEY: &str = "igk_Zq8LeakCanary_4f2d9b7e31c5";
/// The variable that holds it.
const KEY_ENV: &str = "INFERGATE_SECURITY_TEST_KEY";
/// The GitHub token.
const TOKEN: &str = "ghp_TokenLeakCanary_0a9b8c7d6e5f4a3b";

// ---------------------------------------------------------------------------
// Helpers

fn infergate(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_infergate"));
    cmd.current_dir(dir).timeout(Duration::from_secs(180)).env_remove("RUST_LOG").env("NO_COLOR", "1");
    // Tests may themselves run inside GitHub Actions: none of its files or tokens apply here.
    for var in [
        "GITHUB_ACTIONS",
        "GITHUB_STEP_SUMMARY",
        "GITHUB_OUTPUT",
        "GITHUB_EVENT_PATH",
        "GITHUB_EVENT_NAME",
        "GITHUB_TOKEN",
        "GITHUB_REPOSITORY",
        "GITHUB_API_URL",
        "GITHUB_SERVER_URL",
        "GITHUB_RUN_ID",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

fn text(out: &Output) -> String {
    format!(
        "--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Every file under `dir`, recursively (links are not followed).
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                todo.push(entry.path());
            } else if kind.is_file() {
                out.push(entry.path());
            }
        }
    }
    out
}

/// Asserts that neither `secret` nor its first eight characters (what an
/// excerpt cut short would show) appear in the outputs or in any file under `dir`.
fn assert_no_trace(secret: &str, outputs: &[&Output], dir: &Path) {
    let needles = [secret, &secret[..8]];
    for out in outputs {
        for needle in needles {
            for (name, stream) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
                assert!(!contains(stream, needle.as_bytes()), "{needle} in {name}:\n{}", text(out));
            }
        }
    }
    let written = files(dir);
    assert!(!written.is_empty());
    for path in written {
        let bytes = std::fs::read(&path).unwrap();
        for needle in needles {
            assert!(
                !contains(&bytes, needle.as_bytes()),
                "{needle} in {}:\n{}",
                path.display(),
                String::from_utf8_lossy(&bytes)
            );
        }
    }
}

/// One request as the local HTTP server saw it.
#[derive(Debug, Clone)]
struct Request {
    method: String,
    path: String,
    authorization: Option<String>,
    body: Vec<u8>,
}

/// A local HTTP/1.1 server: every request gets the status and JSON body that
/// `route` makes of it, and `Connection: close`. It runs until the test process ends.
struct Http {
    url: String,
    seen: Arc<Mutex<Vec<Request>>>,
}

impl Http {
    fn start(route: impl Fn(&Request) -> (u16, String) + Send + Sync + 'static) -> Http {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (log, route) = (seen.clone(), Arc::new(route));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (log, route) = (log.clone(), route.clone());
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut line = String::new();
                    if reader.read_line(&mut line).is_err() {
                        return;
                    }
                    let mut parts = line.split_whitespace();
                    let (method, path) =
                        (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
                    let (mut authorization, mut length) = (None, 0);
                    loop {
                        let mut header = String::new();
                        if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
                            break;
                        }
                        if let Some((name, value)) = header.split_once(':') {
                            match name.trim().to_ascii_lowercase().as_str() {
                                "authorization" => authorization = Some(value.trim().to_string()),
                                "content-length" => length = value.trim().parse().unwrap_or(0),
                                _ => {}
                            }
                        }
                    }
                    let mut body = vec![0; length];
                    let _ = reader.read_exact(&mut body);
                    let request = Request { method, path, authorization, body };
                    let (status, reply) = route(&request);
                    log.lock().unwrap().push(request);
                    let mut stream = stream;
                    let _ = write!(
                        stream,
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{reply}",
                        reply.len()
                    );
                });
            }
        });
        Http { url, seen }
    }

    fn requests(&self) -> Vec<Request> {
        self.seen.lock().unwrap().clone()
    }
}

/// An error body that echoes the `Authorization` header twice: whole, and
/// again where a 200-byte excerpt cuts it after ten characters of the key.
fn echo_body(auth: &str) -> String {
    let head = format!("{{\"error\":{{\"message\":\"invalid API key: you sent {auth}\",\"pad\":\"");
    let pad = "x".repeat(200 - 10 - head.len() - "Bearer ".len());
    format!("{head}{pad}{auth}\"}}}}")
}

/// An OpenAI-compatible server that refuses with 401, echoing the key. When
/// `refuse_all` is false it lists model `m` and counts tokens (a token per
/// four characters), so prompts can be sized and the run goes on to fail
/// every request; otherwise it refuses from the first request on.
fn refusing_server(refuse_all: bool) -> Http {
    Http::start(move |r| {
        let auth = r.authorization.clone().unwrap_or_default();
        match r.path.as_str() {
            "/health" => (200, "{}".into()),
            "/v1/models" if !refuse_all => (
                200,
                json!({"object": "list", "data": [{"id": "m", "object": "model", "owned_by": "echo"}]}).to_string(),
            ),
            "/tokenize" if !refuse_all => {
                let body: Value = serde_json::from_slice(&r.body).unwrap_or_default();
                let chars = body["prompt"].as_str().map_or(0, |p| p.chars().count());
                (200, json!({ "count": chars / 4 }).to_string())
            }
            _ => (401, echo_body(&auth)),
        }
    })
}

/// A GitHub REST API: the token cannot read `/user`, the PR has no comment,
/// a new one is created.
fn github_ok() -> Http {
    Http::start(|r| match (r.method.as_str(), r.path.split('?').next().unwrap_or("")) {
        ("GET", "/user") => (403, json!({"message": "Resource not accessible by integration"}).to_string()),
        ("GET", "/repos/org/repo/issues/5/comments") => (200, "[]".into()),
        ("POST", "/repos/org/repo/issues/5/comments") => {
            (201, json!({"id": 9, "html_url": "https://github.com/org/repo/pull/5#issuecomment-9"}).to_string())
        }
        _ => (404, json!({"message": "Not Found"}).to_string()),
    })
}

/// A GitHub that answers everything with `status` and echoes the token in its message.
fn github_echoing(status: u16) -> Http {
    Http::start(move |r| {
        let auth = r.authorization.clone().unwrap_or_default();
        (
            status,
            json!({"message": format!("Bad credentials: {auth} {}", echo_body(&auth)), "documentation_url": "x"})
                .to_string(),
        )
    })
}

/// A simulator that streams without pauses.
fn fast_sim() -> Sim {
    Sim::start(SimConfig { itl_ms: 0.0, ttft_base_ms: 1.0, cold_penalty_ms: 1.0, ..SimConfig::default() })
}

/// Results of four quick-suite cases from the simulator, measured once per
/// test process (the JSON text), for the tests that only need a results file.
fn measured() -> &'static str {
    static RESULTS: OnceLock<String> = OnceLock::new();
    RESULTS.get_or_init(|| {
        let sim = fast_sim();
        let dir = tempfile::tempdir().unwrap();
        let out = infergate(dir.path())
            .args(["-q", "run", "--base-url", &sim.url(), "--model", "sim", "--suite", "quick"])
            .args(["--cases", "code-review/*,debugging/*", "--repetitions", "6", "--gpu", "off", "--out", "r.json"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(exit::PASS), "{}", text(&out));
        std::fs::read_to_string(dir.path().join("r.json")).unwrap()
    })
}

fn write_json(path: &Path, v: &Value) {
    std::fs::write(path, serde_json::to_string_pretty(v).unwrap()).unwrap();
}

/// Records baseline `p` from `results` (a file in `dir`).
fn record(dir: &Path, results: &str) {
    let out =
        infergate(dir).args(["-q", "baseline", "update", "--results", results, "--baseline", "p"]).output().unwrap();
    assert_eq!(out.status.code(), Some(exit::PASS), "{}", text(&out));
}

/// Sets the Actions environment of a pull request (#5 of org/repo) on `cmd`.
fn actions_env(cmd: &mut Command, dir: &Path, api: &str) {
    support::actions_pr_env(cmd, dir, api, "org/repo", TOKEN);
}

// ---------------------------------------------------------------------------
// 1. Secrets

#[test]
fn the_api_key_and_the_token_never_leave_the_process_on_a_good_run() {
    let sim = fast_sim();
    let github = github_ok();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let run = |cmd: &mut Command| {
        cmd.args(["--base-url", &sim.url(), "--model", "sim", "--suite", "quick", "--cases", "debugging/*"])
            .args(["--repetitions", "4", "--gpu", "off", "--api-key-env", KEY_ENV])
            .env(KEY_ENV, KEY);
    };
    let mut first = infergate(d);
    first.args(["-vv", "run", "--out", "out/base.json"]);
    run(&mut first);
    let first = first.output().unwrap();
    assert_eq!(first.status.code(), Some(exit::PASS), "{}", text(&first));
    record(d, "out/base.json");

    let mut check = infergate(d);
    check.args(["-vv", "check", "--baseline", "p", "--comment", "--out", "out/cur.json", "--markdown", "out/cmp.md"]);
    run(&mut check);
    actions_env(&mut check, d, &github.url);
    let check = check.output().unwrap();
    assert!([exit::PASS, exit::REGRESSION].contains(&check.status.code().unwrap()), "{}", text(&check));
    assert!(String::from_utf8_lossy(&check.stderr).contains("issuecomment-9"), "{}", text(&check));

    let report =
        infergate(d).args(["-v", "report", "--results", "out/cur.json", "--out", "out/report"]).output().unwrap();
    assert_eq!(report.status.code(), Some(exit::PASS), "{}", text(&report));

    // The token went to GitHub, as a header only.
    let sent = github.requests();
    assert!(sent.iter().all(|r| r.authorization.as_deref() == Some(&format!("Bearer {TOKEN}"))), "{sent:?}");
    assert!(sent.iter().all(|r| !contains(&r.body, TOKEN.as_bytes()) && !contains(&r.body, KEY.as_bytes())));
    assert!(sent.iter().any(|r| r.method == "POST"));
    for secret in [KEY, TOKEN] {
        assert_no_trace(secret, &[&first, &check, &report], d);
    }
}

#[test]
fn a_server_that_echoes_the_key_in_its_errors_gets_it_blanked_out() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut outputs = Vec::new();
    let mut seen = Vec::new();

    // Models listed, every generation and probe refused with the key echoed.
    let server = refusing_server(false);
    let out = infergate(d)
        .args(["-vv", "run", "--base-url", &server.url, "--model", "m", "--suite", "quick", "--cases", "debugging/256"])
        .args(["--repetitions", "2", "--warmup", "1", "--gpu", "off", "--api-key-env", KEY_ENV, "--out", "out/r.json"])
        .env(KEY_ENV, KEY)
        .output()
        .unwrap();
    let results = std::fs::read_to_string(d.join("out/r.json")).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    // The echoed key came back in every error; what was kept is blanked.
    assert!(results.contains("invalid API key: you sent Bearer <redacted>"), "{results}");
    assert!(results.contains("xBearer <redacted>..."), "{results}");
    assert_eq!(out.status.code(), Some(exit::RUN_FAILED), "{}", text(&out));
    outputs.push(out);
    seen.extend(server.requests());

    // Refused from the first request on: the probe's error, and doctor's.
    let server = refusing_server(true);
    for args in [&["run", "--suite", "quick", "--gpu", "off", "--out", "out/r2.json"][..], &["doctor"][..]] {
        let out = infergate(d)
            .arg("-vv")
            .args(args)
            .args(["--base-url", &server.url, "--model", "m", "--api-key-env", KEY_ENV])
            .env(KEY_ENV, KEY)
            .output()
            .unwrap();
        assert_ne!(out.status.code(), Some(exit::PASS), "{}", text(&out));
        outputs.push(out);
    }
    seen.extend(server.requests());

    // A wrong URL: nothing listens there.
    let closed = format!("http://127.0.0.1:{}", TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port());
    let out = infergate(d)
        .args(["-vv", "run", "--base-url", &closed, "--model", "m", "--gpu", "off", "--api-key-env", KEY_ENV])
        .args(["--out", "out/r3.json"])
        .env(KEY_ENV, KEY)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(exit::RUN_FAILED), "{}", text(&out));
    outputs.push(out);

    // The key was really sent; the errors shown carry the echo, blanked.
    assert!(seen.len() > 3 && seen.iter().all(|r| r.authorization.as_deref() == Some(&format!("Bearer {KEY}"))));
    for out in &outputs[1..3] {
        assert!(text(out).contains("you sent Bearer <redacted>"), "{}", text(out));
    }
    assert_no_trace(KEY, &outputs.iter().collect::<Vec<_>>(), d);
}

#[test]
fn a_started_server_that_prints_the_key_has_it_blanked_out_of_its_log_and_the_results() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let bin = env!("CARGO_BIN_EXE_infergate");
    // The key both written into the command and read from the variable, as servers log their arguments.
    let command = format!(
        "echo 'args: --api-key {KEY}'; echo \"env: ${KEY_ENV}\"; exec {bin} sim --port {port} --itl-ms 0 --ttft-base-ms 1"
    );
    let start = |command: &str, out: &str| {
        infergate(d)
            .args(["-v", "run", "--base-url", &format!("http://127.0.0.1:{port}"), "--model", "sim"])
            .args(["--suite", "quick", "--cases", "debugging/256", "--repetitions", "2", "--gpu", "off"])
            .args(["--api-key-env", KEY_ENV, "--ready-timeout", "60s", "--server-command", command, "--out", out])
            .env(KEY_ENV, KEY)
            .output()
            .unwrap()
    };
    let good = start(&command, "good/results.json");
    assert_eq!(good.status.code(), Some(exit::PASS), "{}", text(&good));
    let log = std::fs::read_to_string(d.join("good/server.log")).unwrap();
    assert!(log.contains("args: --api-key <redacted>") && log.contains("env: <redacted>"), "{log}");
    let results: Value = serde_json::from_str(&std::fs::read_to_string(d.join("good/results.json")).unwrap()).unwrap();
    let launched = results["environment"]["server"]["launched"]["command"].as_str().unwrap();
    assert!(launched.contains("--api-key <redacted>"), "{launched}");

    // A server that dies at once: its log tail is in the error message.
    let dying = format!("echo 'fatal: bad --api-key {KEY}'; echo \"env: ${KEY_ENV}\"; exit 1");
    let bad = start(&dying, "bad/results.json");
    assert_eq!(bad.status.code(), Some(exit::RUN_FAILED), "{}", text(&bad));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("fatal: bad --api-key <redacted>"), "{stderr}");
    assert!(std::fs::read_to_string(d.join("bad/server.log")).unwrap().contains("env: <redacted>"));
    assert_no_trace(KEY, &[&good, &bad], d);
}

#[test]
fn the_github_token_is_blanked_out_of_every_failure() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("r.json"), measured()).unwrap();
    record(d, "r.json");
    let out = infergate(d).args(["-q", "compare", "--results", "r.json", "--baseline", "p"]).output().unwrap();
    assert!(d.join("comparison.json").exists(), "{}", text(&out));
    let mut outputs = Vec::new();
    for status in [401, 403, 404, 422] {
        let github = github_echoing(status);
        let out = infergate(d)
            .args(["-vv", "comment", "--comparison", "comparison.json", "--repo", "org/repo", "--pr", "5"])
            .env("GITHUB_API_URL", &github.url)
            .env("GITHUB_TOKEN", TOKEN)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(exit::RUN_FAILED), "{status}: {}", text(&out));
        assert!(String::from_utf8_lossy(&out.stderr).contains("<redacted>"), "{status}: {}", text(&out));
        assert!(github.requests().iter().all(|r| r.authorization.as_deref() == Some(&format!("Bearer {TOKEN}"))));
        outputs.push(out);
    }
    assert_no_trace(TOKEN, &outputs.iter().collect::<Vec<_>>(), d);
}

// ---------------------------------------------------------------------------
// 2 and 3. Hostile text renders as text, never as a template

const EVIL_MODEL: &str = "</details><img src=x onerror=alert(1)> @everyone #1 | pipe | {{ 7*7 }}";
const EVIL_IDS: [&str; 4] = [
    "</details><img src=x onerror=alert(2)>{{ 7*7 }}",
    "@everyone #1 | pipe | `tick` ```{% for x in [1] %}loop{% endfor %}",
    "<!-- infergate:profile=p -->\nline two\r\n::error::owned",
    "x\n```\n</details>\n\"]\n<img src=y> {{ config }}",
];
const EVIL_SCENARIO: &str = "{% raw %}scenario{{ 7*7 }} @everyone </details>";
const EVIL_VERSION: &str = "0.1 </details><img src=v> @everyone\n::warning::v {{ 7*7 }}";
const EVIL_GPU: [&str; 2] = ["GPU | <b>one</b> @everyone {{ 7*7 }}", "GPU | <b>two</b> #1\n::error::gpu"];
const EVIL_NOTE: &str =
    "a warm-up request failed (http_status: HTTP 500: </details><img src=n> @everyone #1 `x` | {{ 7*7 }})";
const EVIL_PROFILE: &str = "p --><img src=m><!-- infergate:profile=p -->";

/// The measured results with hostile text in every field a report shows.
fn hostile(gpu: &str) -> Value {
    let mut r: Value = serde_json::from_str(measured()).unwrap();
    let server = &mut r["environment"]["server"];
    server["model"] = json!(EVIL_MODEL);
    server["reported_version"] = json!(EVIL_VERSION);
    server["owned_by"] = json!(EVIL_VERSION);
    if server["capabilities"].is_object() {
        let caps = &mut server["capabilities"];
        caps["version"] = json!(EVIL_VERSION);
        caps["version_source"] = json!(EVIL_VERSION);
        caps["notes"] = json!([EVIL_NOTE]);
    }
    r["environment"]["gpu"] = json!({
        "status": "ok", "reason": null, "driver_version": "550.1 <b>drv</b> @everyone", "cuda_driver_version": null,
        "interval_ms": 100.0,
        "devices": [{"index": 0, "name": gpu, "memory_total_mib": 81559.0, "readable": []}],
    });
    r["settings"]["cases_filter"] = Value::Null;
    for (case, id) in r["cases"].as_array_mut().unwrap().iter_mut().zip(EVIL_IDS) {
        case["id"] = json!(id);
        case["scenario"] = json!(EVIL_SCENARIO);
    }
    r
}

/// Makes the first case three times slower in its warm phase.
fn slow_down(r: &mut Value) {
    for req in r["cases"][0]["phases"]["warm"]["requests"].as_array_mut().unwrap() {
        for key in ["ttft_ms", "e2e_ms", "tpot_ms"] {
            if let Some(v) = req[key].as_f64() {
                req[key] = json!(v * 3.0);
            }
        }
        for key in ["tokens_per_second", "decode_tokens_per_second"] {
            if let Some(v) = req[key].as_f64() {
                req[key] = json!(v / 3.0);
            }
        }
        if let Some(itl) = req["itl_ms"].as_array_mut() {
            for v in itl {
                *v = json!(v.as_f64().unwrap() * 3.0);
            }
        }
    }
}

/// Markdown with code blocks and code spans removed: what GitHub renders as
/// Markdown and HTML rather than as literal code.
fn outside_code(md: &str) -> String {
    let mut out = String::new();
    let mut fence: Option<(char, usize)> = None;
    for line in md.lines() {
        let t = line.trim_start_matches(' ');
        let indent = line.len() - t.len();
        let first = t.chars().next().filter(|c| *c == '`' || *c == '~');
        let run = first.map_or(0, |c| t.chars().take_while(|x| *x == c).count());
        match fence {
            Some((c, n)) => {
                if indent <= 3 && first == Some(c) && run >= n && t[run..].trim().is_empty() {
                    fence = None;
                }
            }
            None if indent <= 3 && run >= 3 && !(first == Some('`') && t[run..].contains('`')) => {
                fence = Some((first.unwrap(), run));
            }
            None => {
                out.push_str(&without_code_spans(line));
                out.push('\n');
            }
        }
    }
    out
}

fn without_code_spans(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    let run_at = |i: usize| chars[i..].iter().take_while(|c| **c == '`').count();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '`' && (i == 0 || chars[i - 1] != '\\') {
            let n = run_at(i);
            let mut j = i + n;
            let mut close = None;
            while j < chars.len() {
                if chars[j] == '`' {
                    let m = run_at(j);
                    if m == n {
                        close = Some(j);
                        break;
                    }
                    j += m;
                } else {
                    j += 1;
                }
            }
            match close {
                Some(j) => {
                    out.push_str("CODE");
                    i = j + n;
                }
                None => {
                    out.extend(&chars[i..i + n]);
                    i += n;
                }
            }
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

/// Pipes that split a table cell: not escaped with a backslash.
fn cell_pipes(line: &str) -> usize {
    let b = line.as_bytes();
    (0..b.len()).filter(|&i| b[i] == b'|' && (i == 0 || b[i - 1] != b'\\')).count()
}

/// Asserts that `md` (named `what`) shows the hostile text as text: no tag,
/// no live mention or issue link, no broken table, no early `</details>`, no
/// workflow command, no line started by data.
fn assert_inert(what: &str, md: &str) {
    let live = outside_code(md);
    for bad in ["<img", "<b>", "@everyone", "#1", "<!--"] {
        assert!(!live.contains(bad), "{what}: `{bad}` is live in\n{md}");
    }
    let mut tags: Vec<(usize, i32)> = live.match_indices("<details").map(|(i, _)| (i, 1)).collect();
    tags.extend(live.match_indices("</details>").map(|(i, _)| (i, -1)));
    tags.sort_unstable();
    let mut depth = 0;
    for (_, step) in tags {
        depth += step;
        assert!(depth >= 0, "{what}: </details> closes what is not open in\n{md}");
    }
    assert_eq!(depth, 0, "{what}: unbalanced <details> in\n{md}");
    for line in md.lines() {
        let t = line.trim_start();
        assert!(!t.starts_with("::"), "{what}: a workflow command line: {line}");
        assert!(!t.starts_with("line two"), "{what}: data started a line: {line}");
    }
    // Every row of a table has the header's number of cells.
    let mut table: Option<usize> = None;
    for line in md.lines() {
        if line.starts_with('|') {
            let n = cell_pipes(line);
            assert_eq!(*table.get_or_insert(n), n, "{what}: a row with other cells than its header: {line}\n{md}");
        } else {
            table = None;
        }
    }
}

/// The literal template syntax, as Markdown escaping shows it.
const LITERAL_MD: &str = r"{{ 7\*7 }}";

#[test]
fn hostile_text_from_results_and_servers_renders_as_text_in_every_report() {
    let github = github_ok();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let base = hostile(EVIL_GPU[0]);
    write_json(&d.join("base.json"), &base);
    record(d, "base.json");

    // A regression, with another GPU (a mismatch, compared anyway) and a warning.
    let mut regressed = hostile(EVIL_GPU[1]);
    slow_down(&mut regressed);
    regressed["warnings"] = json!([EVIL_NOTE]);
    write_json(&d.join("regressed.json"), &regressed);
    // An invalid run: a case with a failed request whose class and message are hostile.
    let mut invalid = regressed.clone();
    let warm = &mut invalid["cases"][1]["phases"]["warm"];
    warm["summary"]["errors"] = json!(2);
    warm["summary"]["error_rate"] = json!(0.34);
    warm["summary"]["errors_by_class"] = json!({ "<img src=c> @everyone #1 | {{ 7*7 }}": 2 });
    warm["requests"][0]["ok"] = json!(false);
    warm["requests"][0]["error"] = json!({"class": "http_status", "status": 500, "message": EVIL_NOTE});
    write_json(&d.join("invalid.json"), &invalid);

    let compare = |results: &str, format: &str, name: &str| {
        let out = infergate(d)
            .args(["compare", "--results", results, "--baseline", "p", "--allow-mismatch", "--format", format])
            .args([
                "--color",
                "never",
                "--comparison",
                &format!("cmp-{name}.json"),
                "--markdown",
                &format!("cmp-{name}.md"),
            ])
            .output()
            .unwrap();
        assert!(d.join(format!("cmp-{name}.json")).exists(), "{}", text(&out));
        out
    };
    let regressed_md = compare("regressed.json", "markdown", "regressed");
    assert_eq!(regressed_md.status.code(), Some(exit::REGRESSION), "{}", text(&regressed_md));
    let terminal = compare("regressed.json", "terminal", "terminal");
    let invalid_md = compare("invalid.json", "markdown", "invalid");
    assert_eq!(invalid_md.status.code(), Some(exit::RUN_FAILED), "{}", text(&invalid_md));

    // A comparison made by someone else's run (a fork's artifact), with a hostile profile.
    let mut fork: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("cmp-regressed.json")).unwrap()).unwrap();
    fork["profile"] = json!(EVIL_PROFILE);
    write_json(&d.join("cmp-fork.json"), &fork);
    let merge = infergate(d)
        .args(["merge", "--comparison", "cmp-fork.json", "--comparison", "cmp-invalid.json", "--markdown", "merged.md"])
        .output()
        .unwrap();
    assert_eq!(merge.status.code(), Some(exit::RUN_FAILED), "{}", text(&merge));
    let comment = infergate(d)
        .args(["comment", "--comparison", "cmp-fork.json", "--repo", "org/repo", "--pr", "5"])
        .env("GITHUB_API_URL", &github.url)
        .env("GITHUB_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert_eq!(comment.status.code(), Some(exit::PASS), "{}", text(&comment));
    let posted: Vec<Value> = github
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/comments"))
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!(posted.len(), 1);
    let body = posted[0]["body"].as_str().unwrap().to_string();

    // The full report, in both languages.
    let mut full = Vec::new();
    for lang in ["en", "ko"] {
        let out = infergate(d)
            .args(["report", "--results", "regressed.json", "--results", "base.json", "--lang", lang])
            .args(["--out", &format!("report-{lang}")])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(exit::PASS), "{}", text(&out));
        full.push((lang, std::fs::read_to_string(d.join(format!("report-{lang}/report.md"))).unwrap()));
    }

    // The sticky marker: once, first, and the hostile profile cannot leave it.
    let (marker, rest) = body.split_once('\n').unwrap();
    assert!(marker.starts_with("<!-- infergate:profile=p%20--%3E%3Cimg") && marker.ends_with(" -->"), "{marker}");
    assert_eq!((marker.matches("<!--").count(), marker.matches("-->").count()), (1, 1), "{marker}");
    assert_inert("the comment", rest);

    let stdout = |out: &Output| String::from_utf8_lossy(&out.stdout).into_owned();
    let read = |name: &str| std::fs::read_to_string(d.join(name)).unwrap();
    let mut reports = vec![
        ("compare (regression) stdout", stdout(&regressed_md)),
        ("compare (regression) --markdown", read("cmp-regressed.md")),
        ("compare (invalid) stdout", stdout(&invalid_md)),
        ("compare (invalid) --markdown", read("cmp-invalid.md")),
        ("merge stdout", stdout(&merge)),
        ("merge --markdown", read("merged.md")),
    ];
    reports.extend(full.iter().map(|(lang, md)| (if *lang == "en" { "report en" } else { "report ko" }, md.clone())));
    for (what, md) in &reports {
        assert_inert(what, md);
    }
    // Each hostile value is there, as text.
    let regression = read("cmp-regressed.md");
    for shown in [
        r"&lt;/details&gt;&lt;img src=x onerror=alert(2)&gt;{{ 7\*7 }}",
        r"@&#8203;everyone \#&#8203;1 \| pipe \| \`tick\` \`\`\`{% for x in \[1\] %}loop{% endfor %}",
        r"&lt;!-- infergate:profile=p --&gt; line two \::error\::owned",
        r"GPU \| &lt;b&gt;one&lt;/b&gt; @&#8203;everyone {{ 7\*7 }}",
        r"a warm-up request failed (http\_status: HTTP 500: &lt;/details&gt;&lt;img src=n&gt;",
    ] {
        assert!(
            regression.contains(shown),
            "`{shown}` not in
{regression}"
        );
    }
    assert!(read("cmp-invalid.md").contains(r"2 &lt;img src=c&gt; @&#8203;everyone \#&#8203;1 \| {{ 7\*7 }}"));
    for (lang, md) in &full {
        for shown in [
            r"&lt;/details&gt;&lt;img src=x onerror=alert(1)&gt; @&#8203;everyone \#&#8203;1 \| pipe \| {{ 7\*7 }}",
            r"{% raw %}scenario{{ 7\*7 }} @&#8203;everyone &lt;/details&gt;",
            r"GPU \| &lt;b&gt;two&lt;/b&gt; \#&#8203;1 \::error\::gpu",
        ] {
            assert!(
                md.contains(shown),
                "{lang}: `{shown}` not in
{md}"
            );
        }
    }
    assert!(rest.contains(LITERAL_MD) && regression.contains(LITERAL_MD));

    // The terminal: one line per row, no escape sequence, the template syntax as it is.
    let shown = stdout(&terminal);
    assert!(!shown.contains('\u{1b}'), "{shown}");
    assert!(shown.contains("</details><img src=x onerror=alert(2)>{{ 7*7 }}"), "{shown}");
    for line in shown.lines() {
        let t = line.trim_start();
        assert!(!t.starts_with("::") && !t.starts_with("line two") && !t.starts_with("```"), "{line}\n{shown}");
    }
}

// ---------------------------------------------------------------------------
// 4. Baselines stay in their folder

#[test]
fn baseline_update_cannot_write_outside_the_baselines_folder() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("r.json"), measured()).unwrap();
    std::fs::create_dir_all(d.join("baselines")).unwrap();
    let victim = outside.path().join("victim.toml");
    std::fs::write(&victim, "keep me").unwrap();
    std::os::unix::fs::symlink(outside.path(), d.join("baselines/out")).unwrap();
    std::os::unix::fs::symlink(&victim, d.join("baselines/linked.toml")).unwrap();
    let update = |dir: &Path, arg: &str| {
        infergate(dir).args(["baseline", "update", "--results", "r.json", "--baseline", arg]).output().unwrap()
    };
    let absolute = outside.path().join("abs.toml");
    for arg in [
        "../escape",
        "../escape.toml",
        "baselines/../escape.toml",
        absolute.to_str().unwrap(),
        "baselines/out/x.toml",
        "baselines/out/new/x.toml",
        "linked",
        "baselines/linked.toml",
        "a\\b",
        "p/q",
        "..",
        "/",
    ] {
        let out = update(d, arg);
        assert_eq!(out.status.code(), Some(exit::INVALID_INPUT), "{arg}: {}", text(&out));
    }
    // The baselines folder itself a link to elsewhere.
    let other = tempfile::tempdir().unwrap();
    std::fs::write(other.path().join("r.json"), measured()).unwrap();
    std::os::unix::fs::symlink(outside.path(), other.path().join("baselines")).unwrap();
    for arg in ["p", "baselines/p.toml"] {
        let out = update(other.path(), arg);
        assert_eq!(out.status.code(), Some(exit::INVALID_INPUT), "{arg}: {}", text(&out));
        assert!(String::from_utf8_lossy(&out.stderr).contains("symbolic link"), "{}", text(&out));
    }
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
    let left: Vec<_> = std::fs::read_dir(outside.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, ["victim.toml"], "something was written outside");
    assert!(!d.join("escape.toml").exists() && !d.parent().unwrap().join("escape.toml").exists());
    // A proper name still works, and lands where it should.
    let out = update(d, "good");
    assert_eq!(out.status.code(), Some(exit::PASS), "{}", text(&out));
    assert!(d.join("baselines/good.toml").is_file());
}

// ---------------------------------------------------------------------------
// 5. Workflows

/// Expressions that carry text anyone can write (a PR's title, a branch
/// name, a comment) or that a caller passes in: never pasted into a script.
const UNTRUSTED: [&str; 4] = ["github.event.", "github.head_ref", "inputs.", "steps."];

/// Lines of YAML without comments (a `#` that starts a line or follows a blank).
fn without_comments(yaml: &str) -> Vec<String> {
    yaml.lines()
        .map(|line| {
            let mut cut = line.len();
            let b = line.as_bytes();
            let (mut single, mut double) = (false, false);
            for (i, &c) in b.iter().enumerate() {
                match c {
                    b'\'' if !double => single = !single,
                    b'"' if !single => double = !double,
                    b'#' if !single && !double && (i == 0 || b[i - 1] == b' ' || b[i - 1] == b'\t') => {
                        cut = i;
                        break;
                    }
                    _ => {}
                }
            }
            line[..cut].trim_end().to_string()
        })
        .collect()
}

/// The problems of one workflow or action file: fork code checked out under
/// a privileged trigger, and untrusted expressions inside `run:` scripts.
fn workflow_problems(yaml: &str) -> Vec<String> {
    let lines = without_comments(yaml);
    let text = lines.join("\n");
    let word = |w: &str| {
        text.match_indices(w).any(|(i, _)| {
            let after = text[i + w.len()..].chars().next();
            !after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        })
    };
    let mut problems = Vec::new();
    // Privileged triggers run with the base repository's secrets and a write token.
    let privileged = [
        ("pull_request_target", word("pull_request_target")),
        ("workflow_run", word("workflow_run")),
        ("issue_comment", word("issue_comment")),
    ];
    for (trigger, on) in privileged {
        if !on {
            continue;
        }
        for line in &lines {
            let t = line.trim_start().trim_start_matches("- ");
            let head = [
                "head.sha",
                "head.ref",
                "head_ref",
                "head.repo",
                "head_sha",
                "head_branch",
                "head_repository",
                "merge_commit_sha",
            ];
            let checks_out =
                (t.starts_with("ref:") || t.starts_with("repository:")) && head.iter().any(|h| t.contains(h));
            if checks_out || t.contains("refs/pull/") {
                problems.push(format!("{trigger} checks out the pull request's code: {}", line.trim()));
            }
        }
    }
    // Expressions in `run:` scripts (inline or block).
    let mut i = 0;
    while i < lines.len() {
        let line = &lines[i];
        let t = line.trim_start();
        let key = t.trim_start_matches("- ");
        if let Some(rest) = key.strip_prefix("run:") {
            let indent = line.len() - key.len();
            let mut script = vec![rest.to_string()];
            let mut j = i + 1;
            while j < lines.len() {
                let next = &lines[j];
                let next_indent = next.len() - next.trim_start().len();
                if !next.trim().is_empty() && next_indent <= indent {
                    break;
                }
                script.push(next.clone());
                j += 1;
            }
            for s in &script {
                for (at, _) in s.match_indices("${{") {
                    let expr = &s[at..s[at..].find("}}").map_or(s.len(), |e| at + e)];
                    if UNTRUSTED.iter().any(|u| expr.contains(u)) {
                        problems
                            .push(format!("`run:` interpolates untrusted data (pass it through `env:`): {}", s.trim()));
                    }
                }
            }
            i = j;
        } else {
            i += 1;
        }
    }
    problems
}

#[test]
fn the_workflow_scanner_finds_what_it_looks_for() {
    let bad = [
        "on: pull_request_target\njobs:\n  a:\n    steps:\n      - uses: actions/checkout@v5\n        with:\n          ref: ${{ github.event.pull_request.head.sha }}\n",
        "on:\n  pull_request_target:\n    types: [opened]\njobs:\n  a:\n    steps:\n      - uses: actions/checkout@v5\n        with:\n          ref: ${{ github.head_ref }}\n",
        "on: [pull_request_target]\njobs:\n  a:\n    steps:\n      - run: git fetch origin refs/pull/1/head\n",
        "on:\n  workflow_run:\n    workflows: [x]\njobs:\n  a:\n    steps:\n      - uses: actions/checkout@v5\n        with:\n          ref: ${{ github.event.workflow_run.head_sha }}\n",
        "on: issue_comment\njobs:\n  a:\n    steps:\n      - run: echo \"${{ github.event.comment.body }}\"\n",
        "on: pull_request\njobs:\n  a:\n    steps:\n      - name: x\n        run: |\n          echo hi\n          echo ${{ github.event.pull_request.title }}\n",
        "on: pull_request\njobs:\n  a:\n    steps:\n      - run: >-\n          echo ${{ github.head_ref }}\n",
        "runs:\n  using: composite\n  steps:\n    - shell: bash\n      run: infergate ${{ inputs.args }}\n",
    ];
    for yaml in bad {
        assert!(!workflow_problems(yaml).is_empty(), "not caught:\n{yaml}");
    }
    let good = [
        "on: pull_request\njobs:\n  a:\n    steps:\n      - uses: actions/checkout@v5\n      - env:\n          TITLE: ${{ github.event.pull_request.title }}\n        run: echo \"$TITLE\"\n",
        "on:\n  workflow_run:\n    workflows: [x]\njobs:\n  a:\n    if: github.event.workflow_run.head_repository.full_name != github.repository\n    steps:\n      - run: echo ok # not ${{ github.event.comment.body }}\n",
        "# on: pull_request_target with ref: ${{ github.event.pull_request.head.sha }} would be wrong\non: push\njobs:\n  a:\n    steps:\n      - run: echo \"${{ matrix.x }}\"\n",
    ];
    for yaml in good {
        assert_eq!(workflow_problems(yaml), Vec::<String>::new(), "false alarm:\n{yaml}");
    }
}

/// The jobs of a workflow: (name, the job's lines without comments).
fn jobs(yaml: &str) -> Vec<(String, String)> {
    let lines = without_comments(yaml);
    let Some(start) = lines.iter().position(|l| l == "jobs:") else { return Vec::new() };
    let mut out: Vec<(String, String)> = Vec::new();
    for line in &lines[start + 1..] {
        let indent = line.len() - line.trim_start().len();
        if indent == 0 && !line.trim().is_empty() {
            break;
        }
        match out.last_mut() {
            Some(job) if indent > 2 || line.trim().is_empty() => {
                job.1.push_str(line);
                job.1.push('\n');
            }
            _ if indent == 2 => out.push((line.trim().trim_end_matches(':').to_string(), String::new())),
            _ => {}
        }
    }
    out
}

/// A job's own `if:` (inline or folded), on one line; empty when it has none.
fn job_condition(job: &str) -> String {
    let lines: Vec<&str> = job.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let job_indent = lines.iter().filter(|l| !l.trim().is_empty()).map(|l| indent(l)).min().unwrap_or(0);
    let Some(at) = lines.iter().position(|l| indent(l) == job_indent && l.trim_start().starts_with("if:")) else {
        return String::new();
    };
    let first = lines[at].trim_start().trim_start_matches("if:").trim();
    let mut parts: Vec<&str> = Vec::new();
    if !matches!(first, ">-" | ">" | "|" | "|-") {
        parts.push(first);
    }
    parts
        .extend(lines[at + 1..].iter().take_while(|l| l.trim().is_empty() || indent(l) > job_indent).map(|l| l.trim()));
    parts.join(" ").trim().to_string()
}

/// What makes a workflow unsafe on a self-hosted GPU runner: a job there
/// that a fork's pull request reaches without a maintainer's approval, a
/// checkout that leaves its token in `.git/config`, a third-party action not
/// pinned to a commit, no top-level `permissions`.
fn runner_problems(yaml: &str) -> Vec<String> {
    let text = without_comments(yaml).join("\n");
    let mut problems = Vec::new();
    let on_pull_request = text.contains("pull_request:") || text.contains("on: pull_request");
    for (name, job) in jobs(yaml) {
        if on_pull_request && job.contains("self-hosted") {
            // A job whose condition starts with `github.event_name == 'push' &&` never runs for a pull request.
            let condition = job_condition(&job);
            let push_only = condition
                .strip_prefix("github.event_name == 'push'")
                .is_some_and(|rest| rest.trim().is_empty() || rest.trim_start().starts_with("&&"));
            let gated = push_only
                || job.contains("github.event.pull_request.head.repo.full_name == github.repository")
                    && (!job.contains("labeled") || job.contains("github.event.label.name == 'perf-gate:approved'"));
            if !gated {
                problems.push(format!("job `{name}` runs pull requests from forks on the self-hosted runner"));
            }
        }
    }
    let lines = without_comments(yaml);
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim_start().trim_start_matches("- ");
        let Some(action) = t.strip_prefix("uses:").map(str::trim) else { continue };
        if action.starts_with("./") || action.starts_with("your-org/infergate@") {
            continue;
        }
        let pinned =
            action.split_once('@').is_some_and(|(_, r)| r.len() == 40 && r.bytes().all(|b| b.is_ascii_hexdigit()));
        if !pinned {
            problems.push(format!("`{action}` is not pinned to a commit SHA"));
        }
        if action.starts_with("actions/checkout@") {
            let step: Vec<&String> = lines[i + 1..].iter().take_while(|l| !l.trim_start().starts_with("- ")).collect();
            if !step.iter().any(|l| l.trim() == "persist-credentials: false") {
                problems.push("a checkout keeps its token in .git/config (set persist-credentials: false)".into());
            }
        }
    }
    if text.contains("jobs:") && !lines.iter().any(|l| l.starts_with("permissions:")) {
        problems.push("no top-level `permissions:` (the token would get the repository's defaults)".into());
    }
    problems
}

#[test]
fn the_runner_scanner_finds_what_it_looks_for() {
    let unguarded = "on:\n  pull_request:\npermissions: {}\njobs:\n  gate:\n    runs-on: [self-hosted, gpu]\n    steps:\n      - run: echo\n";
    let label_only = "on:\n  pull_request:\n    types: [labeled]\npermissions: {}\njobs:\n  gate:\n    if: github.event.action == 'labeled'\n    runs-on: [self-hosted, gpu]\n";
    let unpinned = "on: push\npermissions: {}\njobs:\n  a:\n    steps:\n      - uses: actions/cache@v5\n";
    let token_left = "on: push\npermissions: {}\njobs:\n  a:\n    steps:\n      - uses: actions/checkout@fbc6f3992d24b796d5a048ff273f7fcc4a7b6c09\n      - run: make\n";
    let no_permissions = "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n";
    let push_or_pr = "on:\n  push:\n  pull_request:\npermissions: {}\njobs:\n  record:\n    if: github.event_name == 'push' || github.event_name == 'pull_request'\n    runs-on: [self-hosted, gpu]\n";
    for yaml in [unguarded, label_only, unpinned, token_left, no_permissions, push_or_pr] {
        assert!(!runner_problems(yaml).is_empty(), "not caught:\n{yaml}");
    }
    let push_only = "on:\n  push:\n  pull_request:\npermissions: {}\njobs:\n  record:\n    if: >-\n      github.event_name == 'push' &&\n      github.ref == 'refs/heads/main'\n    runs-on: [self-hosted, gpu]\n";
    assert_eq!(runner_problems(push_only), Vec::<String>::new());
    let good = "on:\n  pull_request:\npermissions: {}\njobs:\n  gate:\n    if: github.event.pull_request.head.repo.full_name == github.repository\n    runs-on: [self-hosted, gpu]\n    steps:\n      - uses: actions/checkout@fbc6f3992d24b796d5a048ff273f7fcc4a7b6c09 # v5.1.0\n        with:\n          persist-credentials: false\n";
    assert_eq!(runner_problems(good), Vec::<String>::new());
}

#[test]
fn the_examples_keep_forks_off_the_gpu_runner_and_the_action_trusts_no_leftover_binary() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut problems = Vec::new();
    for dir in ["examples/workflows", ".github/workflows"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            let yaml = std::fs::read_to_string(&path).unwrap();
            problems.extend(runner_problems(&yaml).into_iter().map(|p| format!("{}: {p}", path.display())));
        }
    }
    let action = std::fs::read_to_string(root.join("action.yml")).unwrap();
    problems.extend(runner_problems(&action).into_iter().map(|p| format!("action.yml: {p}")));
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // The gate: a new push to a fork's pull request withdraws the approval.
    let gate = std::fs::read_to_string(root.join("examples/workflows/perf-gate.yml")).unwrap();
    let withdraw = jobs(&gate).into_iter().find(|(_, j)| j.contains("labels/perf-gate:approved")).map(|(_, j)| j);
    assert!(withdraw.is_some_and(|j| j.contains("'synchronize'") && j.contains("-X DELETE")), "{gate}");
    // The action installs into this job's RUNNER_TEMP, never a shared cache folder it would trust.
    let install = without_comments(&action).join("\n");
    assert!(install.contains("root=${RUNNER_TEMP}/infergate"), "{action}");
    assert!(!install.contains("RUNNER_TOOL_CACHE") && !install.contains("$HOME/.cache"), "{action}");
    // accept-baseline asks the API for the commenter's permission and measures the head it read.
    let accept =
        without_comments(&std::fs::read_to_string(root.join("examples/workflows/accept-baseline.yml")).unwrap())
            .join("\n");
    for needle in [
        "/collaborators/$COMMENTER/permission",
        "admin|write)",
        "ref: ${{ steps.pr.outputs.sha }}",
        "git status --porcelain -- baselines/",
        "concurrency:",
        "issues/$NUMBER/comments",
    ] {
        assert!(accept.contains(needle), "accept-baseline lacks {needle}");
    }
    assert!(!accept.contains("author_association"), "an author association is not a permission");
    // The fork-comment workflow trusts no number the fork wrote.
    let fork =
        without_comments(&std::fs::read_to_string(root.join("examples/workflows/perf-gate-fork-comment.yml")).unwrap())
            .join("\n");
    assert!(!fork.contains("pr-number") && !fork.contains("pr:"), "{fork}");
}

#[test]
fn workflows_never_run_fork_code_with_a_write_token_nor_paste_untrusted_text_into_scripts() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("action.yml")];
    for dir in ["examples/workflows", ".github/workflows"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yml" || e == "yaml") {
                files.push(path);
            }
        }
    }
    assert!(files.len() >= 6, "{files:?}");
    let mut problems = Vec::new();
    for path in &files {
        let yaml = std::fs::read_to_string(path).unwrap();
        problems.extend(workflow_problems(&yaml).into_iter().map(|p| format!("{}: {p}", path.display())));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Every line of `out` that the GitHub runner would read as a workflow
/// command, or that carries a terminal control character.
fn unsafe_lines(out: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(out)
        .lines()
        .filter(|l| l.trim_start().starts_with("::") || l.chars().any(|c| c.is_control() && c != '\t'))
        .map(str::to_string)
        .collect()
}

#[test]
fn server_text_is_inert_in_stderr_and_stdout_and_userinfo_never_printed() {
    const FORGED: &str = "m2\n::error file=x::forged\r\u{1b}[2J\u{1b}[31m";
    let server = Http::start(|r| match r.path.as_str() {
        "/health" => (200, "{}".into()),
        "/v1/models" => {
            (200, json!({"object": "list", "data": [{"id": FORGED, "object": "model", "owned_by": "x"}]}).to_string())
        }
        "/version" => (200, json!({"version": "1.0\n::warning::forged\u{1b}]8;;x"}).to_string()),
        _ => (404, json!({"error": {"message": format!("no\n::error::{FORGED}")}}).to_string()),
    });
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let with_password = server.url.replacen("http://", "http://alice:S3cretPw@", 1);

    // The model is not served: the error quotes what the server lists.
    let out = infergate(d)
        .args(["run", "--base-url", &with_password, "--model", "m", "--suite", "quick", "--out", "r.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(exit::INVALID_INPUT), "{}", text(&out));
    assert!(contains(&out.stderr, b"is not served"), "{}", text(&out));
    assert!(contains(&out.stderr, b"\\n::error file=x::forged\\r\\u{1b}[2J"), "{}", text(&out));
    assert_eq!(unsafe_lines(&out.stderr), Vec::<String>::new(), "{}", text(&out));
    assert_eq!(unsafe_lines(&out.stdout), Vec::<String>::new(), "{}", text(&out));
    assert!(!contains(&out.stderr, b"S3cretPw") && !contains(&out.stdout, b"S3cretPw"), "{}", text(&out));

    // doctor quotes the server's version line and its errors.
    let out = infergate(d).args(["doctor", "--base-url", &with_password, "--model", FORGED]).output().unwrap();
    assert!(contains(&out.stdout, b"version: 1.0\\n::warning::forged"), "{}", text(&out));
    assert_eq!(unsafe_lines(&out.stdout), Vec::<String>::new(), "{}", text(&out));
    assert_eq!(unsafe_lines(&out.stderr), Vec::<String>::new(), "{}", text(&out));
    assert!(!contains(&out.stderr, b"S3cretPw") && !contains(&out.stdout, b"S3cretPw"), "{}", text(&out));

    // An unreachable server named by a URL with a password: the password is not in the error.
    let dead = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = dead.local_addr().unwrap().port();
    drop(dead);
    let out = infergate(d)
        .args(["run", "--base-url", &format!("http://bob:Hunter2Pw@127.0.0.1:{port}"), "--model", "m"])
        .args(["--suite", "quick", "--out", "r2.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(exit::RUN_FAILED), "{}", text(&out));
    assert!(contains(&out.stderr, b"<redacted>@127.0.0.1"), "{}", text(&out));
    assert!(!contains(&out.stderr, b"Hunter2Pw") && !contains(&out.stdout, b"Hunter2Pw"), "{}", text(&out));
}

#[test]
fn the_server_infergate_starts_never_sees_the_github_token() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let bin = env!("CARGO_BIN_EXE_infergate");
    let command = format!("env > server-env.txt; exec {bin} sim --port {port} --itl-ms 1");
    let base = format!("http://127.0.0.1:{port}");
    let run = |out: &str, extra: &[&str]| {
        let mut cmd = infergate(d);
        cmd.env("GITHUB_TOKEN", TOKEN)
            .env("MY_PAT", "ghp_SecondCanary_77aa")
            .env("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "oidc_Canary_31")
            .env("INFERGATE_HARMLESS", "kept")
            .args(extra)
            .args(["--base-url", &base, "--model", "sim", "--suite", "quick", "--cases", "debugging/256"])
            .args(["--repetitions", "6", "--gpu", "off", "--server-command", &command, "--out", out]);
        cmd.output().unwrap()
    };
    let out = run("base/results.json", &["run"]);
    assert_eq!(out.status.code(), Some(exit::PASS), "{}", text(&out));
    let env = std::fs::read_to_string(d.join("server-env.txt")).unwrap();
    assert!(env.contains("INFERGATE_HARMLESS=kept"), "{env}");
    assert!(!env.contains(TOKEN) && !env.contains("oidc_Canary_31"), "{env}");
    std::fs::remove_file(d.join("server-env.txt")).unwrap();
    let update =
        infergate(d).args(["baseline", "update", "--results", "base/results.json", "--baseline", "p"]).output();
    assert_eq!(update.unwrap().status.code(), Some(exit::PASS));
    // check with the token in another variable: that one is withheld too.
    let out = run("check/results.json", &["check", "--baseline", "p", "--no-comment", "--token-env", "MY_PAT"]);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", text(&out));
    let env = std::fs::read_to_string(d.join("server-env.txt")).unwrap();
    assert!(env.contains("INFERGATE_HARMLESS=kept"), "{env}");
    for secret in [TOKEN, "ghp_SecondCanary_77aa", "oidc_Canary_31"] {
        assert!(!env.contains(secret), "{secret} reached the server: {env}");
    }
}

/// The lines of action.yml from the first one starting with `from` through the next one starting with `to`.
fn action_lines(from: &str, to: &str) -> String {
    let action = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("action.yml")).unwrap();
    let lines: Vec<&str> = action.lines().map(str::trim).collect();
    let start = lines.iter().position(|l| l.starts_with(from)).unwrap_or_else(|| panic!("no `{from}` in action.yml"));
    let end = start + lines[start..].iter().position(|l| l.starts_with(to)).unwrap();
    lines[start..=end].join("\n")
}

#[test]
fn the_action_splits_args_without_globbing_and_names_artifacts_safely() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("planted.txt"), "").unwrap();
    let bash = |script: &str, env: &[(&str, &str)]| {
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(script)
            .current_dir(dir.path())
            .envs(env.iter().copied())
            .env("GITHUB_OUTPUT", dir.path().join("out.txt"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    // Quotes are honoured, a `*` stays a `*`, `$(...)` stays text.
    let split = action_lines("extra=()", "fi");
    let words = bash(
        &format!("{split}\nprintf '<%s>' \"${{extra[@]}}\""),
        &[("EXTRA_ARGS", "--confirm 2 --note \"a b\" * $(touch pwned)")],
    );
    assert_eq!(words, "<--confirm><2><--note><a b><*><$(touch><pwned)>");
    assert!(!dir.path().join("pwned").exists());
    // An artifact name from a baseline path has no `/` or other character upload-artifact refuses.
    let name = action_lines("name=$(printf", "echo \"artifact=");
    for (profile, artifact) in [
        ("baselines/h100 vllm.toml", "artifact=infergate-baselines-h100-vllm"),
        ("h200-qwen2.5", "artifact=infergate-h200-qwen2.5"),
        ("a:b*c?\"<>|\\", "artifact=infergate-a-b-c------"),
    ] {
        std::fs::remove_file(dir.path().join("out.txt")).ok();
        bash(&name, &[("PROFILE", profile)]);
        assert_eq!(std::fs::read_to_string(dir.path().join("out.txt")).unwrap().trim(), artifact);
    }
    // The cache holds the dependencies only, keyed by what builds them; the
    // binary itself is rebuilt from the action's checkout, never taken from the cache.
    let key = action_lines("key=$(cd", "echo \"key=");
    for input in ["Cargo.lock", "rustc -V", "RUNNER_OS", "RUNNER_ARCH"] {
        assert!(key.contains(input), "{key}");
    }
    let cached = action_lines("~/.cargo/registry", "${{ steps.key.outputs.target }}");
    assert!(!cached.contains("root"), "the install root is never restored from a cache: {cached}");
    let build = action_lines("cargo clean", "cargo install");
    assert!(build.contains("--package infergate") && build.contains("--path \"$ACTION_PATH\""), "{build}");
}
