//! Writes never replace what is not theirs, end to end through the binary:
//! an output at a symbolic link, a FIFO or a folder is refused (exit 2) and
//! left as it was; stdout that cannot take the report is an error (exit 3);
//! an output folder that cannot take files is found before the first request
//! (exit 2); two writers of one baseline or one output folder never lose
//! each other's work; a dead writer's temporary file goes with the next
//! attempt, even one that writes nothing.
//!
//! Baselines and results come from the simulator's synthetic model (no
//! server); the runs that must not start go to the built-in simulator, whose
//! ground truth says whether any request reached it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap here is a failed test, not a crash.
#![cfg(unix)]

mod support;

use std::os::unix::fs::FileTypeExt as _;
use std::os::unix::io::AsRawFd as _;
use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Output, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use infergate::exit;
use infergate::sim::SimConfig;
use support::Sim;

/// Every command must end well within this.
const LIMIT: Duration = Duration::from_secs(120);

fn infergate(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("infergate").unwrap();
    cmd.current_dir(dir).env("NO_COLOR", "1").env_remove("RUST_LOG").timeout(LIMIT);
    for var in ["GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY", "GITHUB_OUTPUT", "GITHUB_EVENT_PATH", "GITHUB_TOKEN"] {
        cmd.env_remove(var);
    }
    cmd
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Writes the synthetic results of run `run` of the quick suite to `dir/name`.
fn results(dir: &Path, name: &str, run: u64) -> PathBuf {
    let suite = infergate::suite::load("quick").unwrap();
    let path = dir.join(name);
    infergate::results::save(&infergate::sim::synthetic::run(&SimConfig::default(), &suite, 3, run), &path).unwrap();
    path
}

/// `r.json` and baseline `p` recorded from it, in `dir`.
fn recorded(dir: &Path) {
    results(dir, "r.json", 1);
    let out =
        infergate(dir).args(["-q", "baseline", "update", "--results", "r.json", "--baseline", "p"]).output().unwrap();
    assert_eq!(out.status.code(), Some(exit::PASS), "{}", text(&out));
}

/// A simulator that streams without pauses.
fn fast_sim() -> Sim {
    Sim::start(SimConfig { itl_ms: 0.0, ttft_base_ms: 1.0, cold_penalty_ms: 1.0, ..SimConfig::default() })
}

/// `run` of one small case against `sim`, results to `out`.
fn run_cmd(dir: &Path, sim: &Sim, out: &str) -> Command {
    let mut cmd = infergate(dir);
    cmd.args(["-q", "run", "--base-url", &sim.url(), "--model", "sim", "--suite", "quick"]).args([
        "--cases",
        "debugging/256",
        "--repetitions",
        "2",
        "--warmup",
        "0",
        "--gpu",
        "off",
        "--out",
        out,
    ]);
    cmd
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: mkfifo(3) with a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo {}", path.display());
}

fn is_root() -> bool {
    // SAFETY: geteuid(2) has no failure mode and touches no memory.
    unsafe { libc::geteuid() == 0 }
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

// ---------------------------------------------------------------------------
// Outputs that are not regular files

#[test]
fn an_output_at_a_symbolic_link_is_refused_and_the_link_and_its_target_are_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    recorded(d);
    std::fs::write(d.join("precious.txt"), "keep me").unwrap();
    std::os::unix::fs::symlink("precious.txt", d.join("link.json")).unwrap();
    for flag in ["--comparison", "--markdown"] {
        let out = infergate(d)
            .args(["compare", "--results", "r.json", "--baseline", "p", flag, "link.json"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(exit::INVALID_INPUT), "{flag}: {}", text(&out));
        assert!(stderr(&out).contains("link.json is a symbolic link"), "{flag}: {}", text(&out));
        assert!(std::fs::symlink_metadata(d.join("link.json")).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read_to_string(d.join("precious.txt")).unwrap(), "keep me");
    }
    // A run refuses it before sending anything.
    let sim = fast_sim();
    let out = run_cmd(d, &sim, "link.json").output().unwrap();
    assert_eq!(out.status.code(), Some(exit::INVALID_INPUT), "{}", text(&out));
    assert!(stderr(&out).contains("is a symbolic link"), "{}", text(&out));
    assert!(sim.truth().is_empty(), "no request was sent");
    assert_eq!(std::fs::read_to_string(d.join("precious.txt")).unwrap(), "keep me");
    assert!(!names(d).iter().any(|n| n.contains(".tmp-")), "no temporary file left: {:?}", names(d));
}

#[test]
fn an_output_at_a_fifo_is_refused_without_opening_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    recorded(d);
    mkfifo(&d.join("pipe"));
    // Opening a FIFO for writing with no reader would block: a hang fails through the timeout.
    let out = infergate(d)
        .args(["compare", "--results", "r.json", "--baseline", "p", "--comparison", "pipe"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(exit::INVALID_INPUT), "{}", text(&out));
    assert!(stderr(&out).contains("pipe is a FIFO"), "{}", text(&out));
    let sim = fast_sim();
    let out = run_cmd(d, &sim, "pipe").output().unwrap();
    assert_eq!(out.status.code(), Some(exit::INVALID_INPUT), "{}", text(&out));
    assert!(stderr(&out).contains("is a FIFO"), "{}", text(&out));
    assert!(sim.truth().is_empty(), "no request was sent");
    assert!(std::fs::symlink_metadata(d.join("pipe")).unwrap().file_type().is_fifo());
}

#[test]
fn comparison_or_markdown_at_a_directory_is_invalid_input_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    recorded(d);
    std::fs::create_dir(d.join("somewhere")).unwrap();
    for flag in ["--comparison", "--markdown"] {
        let out = infergate(d)
            .args(["compare", "--results", "r.json", "--baseline", "p", flag, "somewhere"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(exit::INVALID_INPUT), "{flag}: {}", text(&out));
        assert!(stderr(&out).contains("somewhere is a directory"), "{flag}: {}", text(&out));
        assert!(names(&d.join("somewhere")).is_empty());
    }
}

// ---------------------------------------------------------------------------
// Stdout

/// Runs `args` in `dir` with stdout on /dev/full (every write fails with ENOSPC).
fn to_dev_full(dir: &Path, args: &[&str]) -> Output {
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let child = StdCommand::new(assert_cmd::cargo::cargo_bin("infergate"))
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_OUTPUT")
        .env_remove("GITHUB_STEP_SUMMARY")
        .args(args)
        .stdout(Stdio::from(full))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.wait_with_output().unwrap()
}

#[cfg(target_os = "linux")]
#[test]
fn a_report_that_stdout_cannot_take_is_a_failed_run_and_the_files_stay() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    recorded(d);
    let out = to_dev_full(d, &["compare", "--results", "r.json", "--baseline", "p", "--format", "json"]);
    assert_eq!(out.status.code(), Some(exit::RUN_FAILED), "{}", text(&out));
    assert!(stderr(&out).contains("cannot write to stdout"), "{}", text(&out));
    assert!(d.join("comparison.json").is_file(), "the comparison written before stays");
    let out = to_dev_full(d, &["baseline", "show", "p"]);
    assert_eq!(out.status.code(), Some(exit::RUN_FAILED), "{}", text(&out));
    assert!(stderr(&out).contains("cannot write to stdout"), "{}", text(&out));
    // check: the run's results and comparison are kept.
    let sim = fast_sim();
    let url = sim.url();
    let out = to_dev_full(
        d,
        &[
            "check",
            "--base-url",
            &url,
            "--model",
            "sim",
            "--suite",
            "quick",
            "--cases",
            "debugging/256",
            "--repetitions",
            "2",
            "--warmup",
            "0",
            "--gpu",
            "off",
            "--baseline",
            "p",
            "--allow-mismatch",
            "--out",
            "out/results.json",
        ],
    );
    assert_eq!(out.status.code(), Some(exit::RUN_FAILED), "{}", text(&out));
    assert!(stderr(&out).contains("cannot write to stdout"), "{}", text(&out));
    assert!(d.join("out/results.json").is_file() && d.join("out/comparison.json").is_file(), "{:?}", names(d));
}

#[test]
fn a_closed_pipe_on_stdout_stays_quiet() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    recorded(d);
    let mut child = StdCommand::new(assert_cmd::cargo::cargo_bin("infergate"))
        .current_dir(d)
        .args(["baseline", "show", "p"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(exit::PASS), "{}", text(&out));
}

// ---------------------------------------------------------------------------
// The output folder, checked before the first request

#[test]
fn a_read_only_output_folder_fails_before_any_request() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ro = d.join("ro");
    std::fs::create_dir(&ro).unwrap();
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
    let sim = fast_sim();
    let out = run_cmd(d, &sim, "ro/results.json").output().unwrap();
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
    if is_root() {
        eprintln!("running as root, which writes into read-only folders: the refusal is not checked here");
        return;
    }
    assert_eq!(out.status.code(), Some(exit::INVALID_INPUT), "{}", text(&out));
    assert!(stderr(&out).contains("ro is not writable"), "{}", text(&out));
    assert!(sim.truth().is_empty(), "no request was sent");
}

/// A folder nobody can create files in, root included: procfs.
#[cfg(target_os = "linux")]
#[test]
fn an_output_folder_that_takes_no_files_fails_before_any_request() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sim = fast_sim();
    let started = Instant::now();
    let out = run_cmd(d, &sim, "/proc/1/infergate-results.json").output().unwrap();
    assert_eq!(out.status.code(), Some(exit::INVALID_INPUT), "{}", text(&out));
    assert!(stderr(&out).contains("the output folder /proc/1 is not writable"), "{}", text(&out));
    assert!(sim.truth().is_empty(), "no request was sent");
    assert!(started.elapsed() < LIMIT);
}

#[test]
fn check_refuses_an_output_folder_another_infergate_holds() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    recorded(d);
    std::fs::create_dir(d.join("out")).unwrap();
    // Held the way a running check holds it: flock on the folder.
    let held = std::fs::File::open(d.join("out")).unwrap();
    // SAFETY: flock(2) on a descriptor we own.
    assert_eq!(unsafe { libc::flock(held.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) }, 0);
    let sim = fast_sim();
    let out = infergate(d)
        .args(["check", "--base-url", &sim.url(), "--model", "sim", "--suite", "quick", "--cases", "debugging/256"])
        .args(["--repetitions", "2", "--warmup", "0", "--gpu", "off", "--baseline", "p", "--allow-mismatch"])
        .args(["--out", "out/results.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(exit::INVALID_INPUT), "{}", text(&out));
    assert!(stderr(&out).contains("another infergate is writing to the output folder out"), "{}", text(&out));
    assert!(sim.truth().is_empty(), "no request was sent");
    assert!(names(&d.join("out")).is_empty(), "nothing written: {:?}", names(&d.join("out")));
    drop(held);
}

// ---------------------------------------------------------------------------
// Baselines: concurrent updates, leftovers

/// The run ids the cases of `baselines/p.toml` matching `prefix` were recorded from.
fn case_runs(d: &Path, prefix: &str) -> Vec<String> {
    let b = infergate::baseline::load(&d.join("baselines/p.toml")).unwrap();
    let mut runs: Vec<String> = b
        .cases
        .iter()
        .filter(|(id, _)| id.starts_with(prefix))
        .flat_map(|(_, c)| c.warm.iter().chain(&c.cold).flat_map(|p| p.runs.iter().map(|r| r.run.clone())))
        .collect();
    runs.sort();
    runs.dedup();
    runs
}

fn run_id(path: &Path) -> String {
    infergate::results::load(path).unwrap().run_id
}

#[cfg(target_os = "linux")]
#[test]
fn two_baseline_updates_at_once_both_end_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    recorded(d);
    let a = results(d, "a.json", 2);
    let b = results(d, "b.json", 3);
    // A pauses between writing its file and renaming it, holding the baselines folder.
    let first = StdCommand::new(assert_cmd::cargo::cargo_bin("infergate"))
        .current_dir(d)
        .env(infergate::fsutil::TEST_PAUSE_BEFORE_RENAME_ENV, "1500")
        .args(["baseline", "update", "--results", "a.json", "--baseline", "p", "--cases", "code-review/*"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let prefix = format!(".p.toml.tmp-{}", first.id());
    let deadline = Instant::now() + LIMIT;
    while !names(&d.join("baselines")).iter().any(|n| n.starts_with(&prefix)) {
        assert!(Instant::now() < deadline, "the first update never wrote its temporary file");
        std::thread::sleep(Duration::from_millis(10));
    }
    // B starts while A is mid-write: it must not read the old file and then replace A's result.
    let second = infergate(d)
        .args(["baseline", "update", "--results", "b.json", "--baseline", "p", "--cases", "debugging/*"])
        .output()
        .unwrap();
    let first = first.wait_with_output().unwrap();
    assert_eq!(first.status.code(), Some(exit::PASS), "{}", text(&first));
    assert_eq!(second.status.code(), Some(exit::PASS), "{}", text(&second));
    assert_eq!(case_runs(d, "code-review/"), [run_id(&a)], "the first update is in the file");
    assert_eq!(case_runs(d, "debugging/"), [run_id(&b)], "the second update is in the file");
    assert_eq!(case_runs(d, "architecture-design/"), [run_id(&d.join("r.json"))], "the rest is as recorded");
    assert_eq!(names(&d.join("baselines")), ["p.toml"]);
}

#[cfg(target_os = "linux")]
#[test]
fn an_unchanged_update_removes_a_dead_writers_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    recorded(d);
    let mut gone = StdCommand::new("true").spawn().unwrap();
    let dead = gone.id();
    gone.wait().unwrap();
    let stale = d.join(format!("baselines/.p.toml.tmp-{dead}-0"));
    std::fs::write(&stale, "half a baseline").unwrap();
    let before = std::fs::read(d.join("baselines/p.toml")).unwrap();
    let out = infergate(d).args(["baseline", "update", "--results", "r.json", "--baseline", "p"]).output().unwrap();
    assert_eq!(out.status.code(), Some(exit::PASS), "{}", text(&out));
    assert!(stderr(&out).contains("is unchanged"), "{}", text(&out));
    assert_eq!(std::fs::read(d.join("baselines/p.toml")).unwrap(), before);
    assert!(!stale.exists(), "the dead writer's temporary file is removed");
    assert_eq!(names(&d.join("baselines")), ["p.toml"]);
}
