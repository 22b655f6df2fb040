//! The history store and its CLI, end to end through the binary on results
//! the simulator produced: appends, refusals, torn lines, links, the
//! analysis; and two CI jobs appending at once to one git branch through
//! scripts/history-push.sh.
#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap here is a failed test or run, not a crash.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command as Process, Output};
use std::sync::OnceLock;
use std::time::Duration;

use assert_cmd::Command;
use infergate::exit;
use infergate::sim::SimConfig;
use predicates::prelude::*;
use serde_json::Value;
use support::Sim;

fn infergate(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("infergate").unwrap();
    cmd.current_dir(dir).env("NO_COLOR", "1").timeout(Duration::from_secs(300));
    cmd
}

/// Three runs of two quick-suite cases against one simulator, made once per
/// test process: `run1.json`, `run2.json`, `run3.json`.
fn runs() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("history-runs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let sim = Sim::start(SimConfig { itl_ms: 1.0, ..SimConfig::default() });
        for name in ["run1.json", "run2.json", "run3.json"] {
            infergate(&dir)
                .args(["-q", "run", "--base-url", &sim.url(), "--model", "sim", "--suite", "quick"])
                .args(["--cases", "debugging/*", "--repetitions", "4", "--out", name])
                .assert()
                .code(exit::PASS);
        }
        dir
    })
}

/// A fresh folder holding copies of the three runs.
fn workdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in ["run1.json", "run2.json", "run3.json"] {
        std::fs::copy(runs().join(name), dir.path().join(name)).unwrap();
    }
    dir
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn write_json(path: &Path, v: &Value) {
    std::fs::write(path, serde_json::to_vec_pretty(v).unwrap()).unwrap();
}

fn append(dir: &Path, results: &str, extra: &[&str]) -> assert_cmd::assert::Assert {
    infergate(dir).args(["history", "append", "--results", results, "--profile", "p"]).args(extra).assert()
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path).unwrap().lines().map(str::to_string).collect()
}

#[test]
fn appends_one_line_per_run_and_analyze_reads_them() {
    let dir = workdir();
    let d = dir.path();
    append(d, "run1.json", &["--commit", "1111111aaaa", "--ref", "refs/heads/main"])
        .code(exit::PASS)
        .stderr(predicate::str::contains("appended run").and(predicate::str::contains(".infergate-history/p.jsonl")));
    append(d, "run2.json", &["--commit", "2222222bbbb"]).code(exit::PASS).stderr(predicate::str::contains("2 run(s)"));
    let file = d.join(".infergate-history/p.jsonl");
    let got = lines(&file);
    assert_eq!(got.len(), 2);
    let first: Value = serde_json::from_str(&got[0]).unwrap();
    assert_eq!(first["schema"], "infergate.history.v1");
    assert_eq!(first["profile"], "p");
    assert_eq!(first["commit"], "1111111aaaa");
    assert_eq!(first["ref"], "refs/heads/main");
    assert_eq!(first["run_id"], read_json(&d.join("run1.json"))["run_id"]);
    assert!(first["cases"]["debugging/256"]["warm"]["tokens_per_second"]["value"].as_f64().unwrap() > 0.0);

    // Too few runs for a change point: the analysis says so and exits 0.
    infergate(d)
        .args(["history", "analyze"])
        .assert()
        .code(exit::PASS)
        .stdout(predicate::str::contains("profile p: 2 run(s)").and(predicate::str::contains("no change point")));
    let out = infergate(d).args(["history", "analyze", "--profile", "p", "--format", "json"]).output().unwrap();
    assert!(out.status.success());
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["schema"], "infergate.history-analysis.v1");
    assert_eq!(json["settings"]["permutations"], 999);
    assert_eq!(json["profiles"][0]["runs"], 2);
    assert_eq!(json["profiles"][0]["change_points"], serde_json::json!([]));

    // `[history] store` of the config moves the store; --store wins over it.
    std::fs::write(d.join("infergate.toml"), "[history]\nstore = \"hist\"\n").unwrap();
    append(d, "run3.json", &[]).code(exit::PASS);
    assert!(d.join("hist/p.jsonl").is_file());
    infergate(d)
        .args(["history", "analyze", "--store", ".infergate-history"])
        .assert()
        .code(exit::PASS)
        .stdout(predicate::str::contains("2 run(s)"));
}

#[test]
fn a_run_that_is_already_in_the_history_is_refused() {
    let dir = workdir();
    let d = dir.path();
    append(d, "run1.json", &[]).code(exit::PASS);
    append(d, "run1.json", &[])
        .code(exit::INVALID_INPUT)
        .stderr(predicate::str::contains("is already in").and(predicate::str::contains("p.jsonl")));
    assert_eq!(lines(&d.join(".infergate-history/p.jsonl")).len(), 1);
}

#[test]
fn a_run_of_another_setup_is_refused_naming_what_differs() {
    let dir = workdir();
    let d = dir.path();
    append(d, "run1.json", &[]).code(exit::PASS);
    let mut other = read_json(&d.join("run2.json"));
    other["environment"]["server"]["model"] = "bigger-model".into();
    write_json(&d.join("other.json"), &other);
    append(d, "other.json", &[]).code(exit::RUN_FAILED).stderr(
        predicate::str::contains("model `sim` -> `bigger-model`")
            .and(predicate::str::contains("start a new profile"))
            .and(predicate::str::contains("--profile")),
    );
    let mut suite = read_json(&d.join("run2.json"));
    suite["suite"]["fingerprint"] = "0000000000000000".into();
    write_json(&d.join("suite.json"), &suite);
    append(d, "suite.json", &[]).code(exit::RUN_FAILED).stderr(predicate::str::contains("suite fingerprint"));
    // Under a new profile both are welcome.
    infergate(d)
        .args(["history", "append", "--results", "other.json", "--profile", "bigger"])
        .assert()
        .code(exit::PASS);
    assert_eq!(lines(&d.join(".infergate-history/p.jsonl")).len(), 1);
}

#[test]
fn partial_and_failed_runs_are_refused() {
    let dir = workdir();
    let d = dir.path();
    let mut partial = read_json(&d.join("run1.json"));
    partial["complete"] = false.into();
    write_json(&d.join("partial.json"), &partial);
    append(d, "partial.json", &[]).code(exit::RUN_FAILED).stderr(predicate::str::contains("did not complete"));
    // A run whose requests timed out: failed requests, exit 3 from `run` and from `history append`.
    let sim = Sim::start(SimConfig { ttft_base_ms: 300.0, ..SimConfig::default() });
    infergate(d)
        .args(["-q", "run", "--base-url", &sim.url(), "--model", "sim", "--suite", "quick", "--cases", "debugging/256"])
        .args(["--repetitions", "2", "--request-timeout", "100ms", "--out", "failed.json"])
        .assert()
        .code(exit::RUN_FAILED);
    append(d, "failed.json", &[])
        .code(exit::RUN_FAILED)
        .stderr(predicate::str::contains("cannot be trusted").and(predicate::str::contains("failed")));
    // A case with its requests cut out.
    let mut cut = read_json(&d.join("run1.json"));
    cut["cases"][0]["phases"]["warm"]["requests"] = serde_json::json!([]);
    write_json(&d.join("cut.json"), &cut);
    append(d, "cut.json", &[]).code(exit::RUN_FAILED);
    assert!(!d.join(".infergate-history/p.jsonl").exists(), "nothing was appended");
}

#[test]
fn a_torn_last_line_is_skipped_and_the_next_append_starts_afresh() {
    let dir = workdir();
    let d = dir.path();
    append(d, "run1.json", &[]).code(exit::PASS);
    append(d, "run2.json", &[]).code(exit::PASS);
    let file = d.join(".infergate-history/p.jsonl");
    // A crash in the middle of the second append: half its line left behind.
    let text = std::fs::read_to_string(&file).unwrap();
    let second = text.lines().nth(1).unwrap().to_string();
    std::fs::write(&file, format!("{}\n{}", text.lines().next().unwrap(), &second[..second.len() / 2])).unwrap();
    infergate(d)
        .args(["history", "analyze"])
        .assert()
        .code(exit::PASS)
        .stdout(predicate::str::contains("1 run(s)"))
        .stderr(predicate::str::contains("p.jsonl:2: skipped a torn line"));
    // The next append does not glue its line to the torn one.
    append(d, "run3.json", &[]).code(exit::PASS).stderr(predicate::str::contains("torn line"));
    let got = lines(&file);
    assert_eq!(got.len(), 3);
    assert_eq!(got[1], second[..second.len() / 2]);
    let third: Value = serde_json::from_str(&got[2]).unwrap();
    assert_eq!(third["run_id"], read_json(&d.join("run3.json"))["run_id"]);
    // Reading keeps both whole runs and skips the torn one, wherever it now is.
    infergate(d)
        .args(["history", "analyze"])
        .assert()
        .code(exit::PASS)
        .stdout(predicate::str::contains("2 run(s)"))
        .stderr(predicate::str::contains("p.jsonl:2: skipped a torn line"));
    // The run that was torn can be appended again: it is not in the history.
    append(d, "run2.json", &[]).code(exit::PASS).stderr(predicate::str::contains("3 run(s)"));
}

#[test]
fn a_bad_line_before_the_last_is_an_error_naming_file_and_line() {
    let dir = workdir();
    let d = dir.path();
    append(d, "run1.json", &[]).code(exit::PASS);
    append(d, "run2.json", &[]).code(exit::PASS);
    let file = d.join(".infergate-history/p.jsonl");
    let text = std::fs::read_to_string(&file).unwrap();
    let mut l: Vec<&str> = text.lines().collect();
    // Garbage as the last line: skipped with a warning; appending after it is refused.
    std::fs::write(&file, format!("{}\n{}\n{{\"oops\": 1}}\n", l[0], l[1])).unwrap();
    infergate(d)
        .args(["history", "analyze"])
        .assert()
        .code(exit::PASS)
        .stderr(predicate::str::contains("p.jsonl:3: skipped the last line"));
    append(d, "run3.json", &[])
        .code(exit::INVALID_INPUT)
        .stderr(predicate::str::contains("p.jsonl:3: the last line is not a history record"));
    // Garbage in the middle: an error naming the line, never a silent loss.
    l.insert(1, "{\"oops\": 1}");
    std::fs::write(&file, l.join("\n") + "\n").unwrap();
    infergate(d)
        .args(["history", "analyze"])
        .assert()
        .code(exit::INVALID_INPUT)
        .stderr(predicate::str::contains("p.jsonl:2: not a history record"));
    append(d, "run3.json", &[]).code(exit::INVALID_INPUT).stderr(predicate::str::contains("p.jsonl:2"));
}

#[test]
fn a_history_file_that_is_a_link_is_neither_followed_nor_replaced() {
    let dir = workdir();
    let d = dir.path();
    let store = d.join(".infergate-history");
    std::fs::create_dir_all(&store).unwrap();
    std::fs::write(d.join("precious"), "keep\n").unwrap();
    std::os::unix::fs::symlink(d.join("precious"), store.join("p.jsonl")).unwrap();
    append(d, "run1.json", &[])
        .code(exit::INVALID_INPUT)
        .stderr(predicate::str::contains("p.jsonl").and(predicate::str::contains("symbolic link")));
    infergate(d)
        .args(["history", "analyze", "--profile", "p"])
        .assert()
        .code(exit::INVALID_INPUT)
        .stderr(predicate::str::contains("symbolic link"));
    assert_eq!(std::fs::read_to_string(d.join("precious")).unwrap(), "keep\n");
    assert!(std::fs::symlink_metadata(store.join("p.jsonl")).unwrap().file_type().is_symlink());
    // A FIFO is refused by name too, and nothing blocks on it.
    let fifo = store.join("q.jsonl");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: mkfifo(3) with a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    infergate(d)
        .args(["history", "append", "--results", "run1.json", "--profile", "q"])
        .assert()
        .code(exit::INVALID_INPUT)
        .stderr(predicate::str::contains("is a FIFO"));
}

#[test]
fn bad_flags_are_named() {
    let dir = workdir();
    let d = dir.path();
    let bad = |args: &[&str], says: &str| {
        infergate(d).args(args).assert().code(exit::INVALID_INPUT).stderr(predicate::str::contains(says.to_string()));
    };
    bad(&["history", "append", "--results", "run1.json", "--profile", "../x"], "--profile");
    bad(&["history", "append", "--results", "run1.json", "--commit", "a b"], "--commit");
    bad(&["history", "analyze", "--store", "nosuch"], "no history store at nosuch");
    append(d, "run1.json", &[]).code(exit::PASS);
    bad(&["history", "analyze", "--metric", "tokens_per_sec"], "--metric tokens_per_sec: not a metric; known:");
    bad(&["history", "analyze", "--significance", "0.001", "--permutations", "99"], "use at least 999");
    bad(&["history", "analyze", "--min-step=-1"], "--min-step");
    bad(&["history", "analyze", "--profile", "nosuch"], "no runs were appended to this profile yet");
}

// Keeping the history on a git branch: scripts/history-push.sh.

fn git(args: &[&str], dir: &Path) -> Output {
    let out = Process::new("git").args(args).current_dir(dir).envs(git_env()).output().unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// No system or user git config: the test sees only what the script sets.
fn git_env() -> Vec<(&'static str, String)> {
    vec![
        ("GIT_CONFIG_NOSYSTEM", "1".into()),
        ("GIT_CONFIG_GLOBAL", "/dev/null".into()),
        ("GIT_TERMINAL_PROMPT", "0".into()),
    ]
}

/// Starts scripts/history-push.sh appending `results` as `id`; before each
/// push it waits (up to 60 s) until every id in `barrier` is ready, so that
/// the pushes happen at the same time.
fn push_job(work: &Path, remote: &Path, id: &str, results: &str, barrier: &[&str]) -> std::process::Child {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/history-push.sh");
    let ready = |x: &str| work.join(format!("ready-{x}")).display().to_string();
    let wait_all: Vec<String> = barrier.iter().map(|x| format!("[ -e '{}' ]", ready(x))).collect();
    let hook = format!(
        "touch '{}'; for _ in $(seq 1200); do {} && exit 0; sleep 0.05; done",
        ready(id),
        if wait_all.is_empty() { "true".to_string() } else { wait_all.join(" && ") }
    );
    Process::new("bash")
        .arg(script)
        .arg(remote)
        .arg("infergate-history")
        .arg(work.join(format!("clone-{id}")))
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_infergate"))
        .args(["history", "append", "--results"])
        .arg(work.join(results))
        .args(["--profile", "p", "--commit", &format!("{id}{id}{id}{id}{id}{id}{id}"), "--store", "."])
        .envs(git_env())
        .env("HISTORY_PUSH_DELAY", "0")
        .env("HISTORY_COMMIT_MESSAGE", format!("append {id}"))
        .env("INFERGATE_TEST_BEFORE_PUSH", hook)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Runs two push jobs at once; returns their outputs, `a` first.
fn race(work: &Path, remote: &Path, a: (&str, &str), b: (&str, &str)) -> [String; 2] {
    let jobs = [push_job(work, remote, a.0, a.1, &[a.0, b.0]), push_job(work, remote, b.0, b.1, &[a.0, b.0])];
    jobs.map(|j| {
        let out = j.wait_with_output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{text}");
        text
    })
}

/// The branch as the remote has it: commit subjects, oldest first, and the history file's run ids.
fn branch(remote: &Path) -> (Vec<String>, Vec<String>) {
    let log = git(
        &["--git-dir", &remote.display().to_string(), "log", "--reverse", "--format=%s", "infergate-history"],
        remote,
    );
    let subjects = String::from_utf8_lossy(&log.stdout).lines().map(str::to_string).collect();
    let show = git(&["--git-dir", &remote.display().to_string(), "show", "infergate-history:p.jsonl"], remote);
    let ids = String::from_utf8_lossy(&show.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["run_id"].as_str().unwrap().to_string())
        .collect();
    (subjects, ids)
}

/// Checks that both racers landed, one after the other, in the order they pushed.
fn check_race(outputs: &[String; 2], ids: &[&str; 2], subjects: &[String], files: &[String], before: usize) {
    // Exactly one pushed at its first attempt; the other was refused, rebased and pushed after it.
    let attempt = |o: &String| {
        o.lines()
            .find(|l| l.starts_with("history-push: pushed "))
            .and_then(|l| l.rsplit_once("(attempt ").and_then(|(_, n)| n.split(' ').next()?.parse::<u32>().ok()))
    };
    let first = outputs.iter().position(|o| attempt(o) == Some(1)).expect("one push went through first");
    let second = 1 - first;
    assert!(outputs[second].contains("the push was refused") && attempt(&outputs[second]) == Some(2), "{outputs:?}");
    let names = ["a", "b"];
    assert_eq!(subjects[before..], [format!("append {}", names[first]), format!("append {}", names[second])]);
    assert_eq!(files[before..], [ids[first].to_string(), ids[second].to_string()], "in the order of the pushes");
}

fn run_id(dir: &Path, name: &str) -> String {
    read_json(&dir.join(name))["run_id"].as_str().unwrap().to_string()
}

#[test]
fn two_jobs_appending_at_once_both_land_on_the_branch_in_push_order() {
    let dir = workdir();
    let d = dir.path();
    let remote = d.join("remote.git");
    git(&["init", "--quiet", "--bare", &remote.display().to_string()], d);
    // The first append starts the branch; a second job then finds it.
    let seed = push_job(d, &remote, "s", "run1.json", &[]).wait_with_output().unwrap();
    assert!(seed.status.success(), "{}", String::from_utf8_lossy(&seed.stderr));
    assert!(String::from_utf8_lossy(&seed.stdout).contains("starting it as an orphan branch"));
    let outputs = race(d, &remote, ("a", "run2.json"), ("b", "run3.json"));
    let (subjects, files) = branch(&remote);
    assert_eq!(subjects.len(), 3, "{subjects:?}");
    assert_eq!(files[0], run_id(d, "run1.json"));
    check_race(&outputs, &[&run_id(d, "run2.json"), &run_id(d, "run3.json")], &subjects, &files, 1);
    // The branch carries the merge rule for later clones.
    let attributes = git(&["--git-dir", &remote.display().to_string(), "show", "infergate-history:.gitattributes"], d);
    assert!(String::from_utf8_lossy(&attributes.stdout).contains("*.jsonl merge=union"));
    // What landed reads back as a history.
    git(&["clone", "--quiet", "--branch", "infergate-history", &remote.display().to_string(), "read"], d);
    infergate(d)
        .args(["history", "analyze", "--store", "read"])
        .assert()
        .code(exit::PASS)
        .stdout(predicate::str::contains("3 run(s)"));
}

#[test]
fn two_first_appends_at_once_both_land_on_a_branch_neither_found() {
    let dir = workdir();
    let d = dir.path();
    let remote = d.join("remote.git");
    git(&["init", "--quiet", "--bare", &remote.display().to_string()], d);
    let outputs = race(d, &remote, ("a", "run1.json"), ("b", "run2.json"));
    assert!(outputs.iter().all(|o| o.contains("starting it as an orphan branch")), "{outputs:?}");
    let (subjects, files) = branch(&remote);
    assert_eq!(subjects.len(), 2, "{subjects:?}");
    check_race(&outputs, &[&run_id(d, "run1.json"), &run_id(d, "run2.json")], &subjects, &files, 0);
}

#[test]
fn a_failing_append_pushes_nothing() {
    let dir = workdir();
    let d = dir.path();
    let remote = d.join("remote.git");
    git(&["init", "--quiet", "--bare", &remote.display().to_string()], d);
    let mut partial = read_json(&d.join("run1.json"));
    partial["complete"] = false.into();
    write_json(&d.join("partial.json"), &partial);
    let out = push_job(d, &remote, "a", "partial.json", &[]).wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(exit::RUN_FAILED), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing was pushed"));
    let heads = git(&["--git-dir", &remote.display().to_string(), "for-each-ref", "refs/heads"], d);
    assert!(heads.stdout.is_empty(), "the branch was not created");
}

#[test]
fn the_history_workflow_writes_only_on_pushes_to_the_default_branch() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let yaml = std::fs::read_to_string(root.join("examples/workflows/history.yml")).unwrap();
    // The record job: pushes to the default branch only, queued per profile, may write.
    let record = section(&yaml, "  record:");
    assert!(record.contains(
        "if: github.event_name == 'push' && github.ref == format('refs/heads/{0}', github.event.repository.default_branch)"
    ));
    assert!(record.contains("concurrency:") && record.contains("cancel-in-progress: false"));
    assert!(record.contains("contents: write") && record.contains("mode: history"));
    // The pull-request job reads only.
    let trend = section(&yaml, "  main-trend:");
    assert!(trend.contains("if: github.event_name == 'pull_request'"));
    assert!(trend.contains("contents: read") && !trend.contains("contents: write"));
    assert!(yaml.contains("permissions: {}"));
    // The action appends only on a push to the default branch, through the script.
    let action = std::fs::read_to_string(root.join("action.yml")).unwrap();
    let step = section(&action, "    - name: History");
    assert!(step.contains(
        "if [ \"$GITHUB_EVENT_NAME\" = \"push\" ] && [ -n \"$DEFAULT_BRANCH\" ] && [ \"$GITHUB_REF\" = \"refs/heads/$DEFAULT_BRANCH\" ]; then"
    ));
    assert!(step.contains("scripts/history-push.sh") && step.contains("infergate history append"));
    assert!(!step.contains("x-access-token:${"), "the token is never put in a URL");
}

/// The lines of `text` from `start` up to the next line indented as much or less.
fn section(text: &str, start: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let at = lines.iter().position(|l| *l == start || l.starts_with(&format!("{start} "))).expect(start);
    let indent = start.len() - start.trim_start().len();
    let mut out = vec![lines[at]];
    for l in &lines[at + 1..] {
        if !l.trim().is_empty() && l.len() - l.trim_start().len() <= indent {
            break;
        }
        out.push(l);
    }
    out.join("\n")
}

#[test]
fn the_books_example_line_is_a_record() {
    let book = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/src/history.md")).unwrap();
    let start = book.find("<!-- history-example: begin -->").expect("the example's markers");
    let end = book.find("<!-- history-example: end -->").expect("the example's end");
    let block = &book[start..end];
    let line = block.lines().find(|l| l.starts_with('{')).expect("one JSON line");
    let parsed =
        infergate::history::parse(format!("{line}\n").as_bytes(), "docs/src/history.md", "h200-qwen-vllm").unwrap();
    assert_eq!((parsed.records.len(), parsed.warnings.len()), (1, 0));
    let r = &parsed.records[0];
    assert_eq!(r.schema, infergate::history::SCHEMA);
    // Keys in the order infergate writes them.
    assert_eq!(serde_json::to_string(r).unwrap(), line);
}
