//! The environment fingerprint: facts about the machine and checkout that
//! ran infergate (tool version, git commit and whether the tree is dirty,
//! OS, kernel, CPUs), recorded with every run so that a baseline says what
//! produced it. The server's and the GPU's facts are filled in by the run.
//!
//! The commit comes from the `git` command; a repository that makes git slow
//! (a huge tree, a stale lock, a network file system) must not hold the run,
//! so each git command gets [`GIT_TIME_LIMIT`] and is killed after it, leaving
//! the field unknown.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::results::{Environment, ServerInfo};

/// How long one git command may take before its answer is given up as unknown.
pub const GIT_TIME_LIMIT: Duration = Duration::from_secs(5);

/// Bytes of a command's output kept; the rest is read and dropped so the
/// command never blocks on a full pipe.
const OUTPUT_LIMIT: usize = 4096;

/// Facts about the machine running infergate.
pub fn environment() -> Environment {
    let git = |args: &[&str]| -> Option<String> {
        let mut cmd = Command::new("git");
        // `git status` may refresh the index and take its lock; a gate run
        // beside the user's own git commands must not make theirs fail.
        cmd.args(args).env("GIT_OPTIONAL_LOCKS", "0");
        output_within(cmd, GIT_TIME_LIMIT)
    };
    let git_commit = git(&["rev-parse", "HEAD"]).filter(|s| !s.is_empty());
    let git_dirty = git_commit
        .as_ref()
        .and_then(|_| git(&["status", "--porcelain", "--untracked-files=no"]))
        .map(|s| !s.is_empty());
    Environment {
        tool_version: env!("CARGO_PKG_VERSION").into(),
        git_commit,
        git_dirty,
        os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease").ok().map(|s| s.trim().to_string()),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        server: ServerInfo::default(),
        gpu: crate::telemetry::GpuInfo::default(),
    }
}

/// The trimmed standard output of `cmd` (its first [`OUTPUT_LIMIT`] bytes)
/// when it runs successfully within `limit`; `None` when it cannot start,
/// fails, or is still running at `limit` (then it is killed).
fn output_within(mut cmd: Command, limit: Duration) -> Option<String> {
    // Its own process group, so that a timeout kills whatever it started too.
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null()).process_group(0);
    let mut child = cmd.spawn().ok()?;
    let mut stdout = child.stdout.take()?;
    // Reads to the end: the pipe closes when the command and its children exit.
    let reader = std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            match stdout.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let room = OUTPUT_LIMIT.saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                }
            }
        }
        kept
    });
    let end = crate::limits::after(Instant::now(), limit);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) if reader.is_finished() => break Some(status),
            Ok(_) if Instant::now() < end => std::thread::sleep(Duration::from_millis(5)),
            Ok(_) | Err(_) => break None,
        }
    };
    let Some(status) = status else {
        if let Ok(pgid) = i32::try_from(child.id()) {
            // SAFETY: kill(2) with a negative pid signals the process group
            // this function created; no memory is involved.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
        }
        // Reaps it; the reader thread ends once the pipe closes.
        let _ = child.kill();
        let _ = child.wait();
        return None;
    };
    let kept = reader.join().ok()?;
    status.success().then(|| String::from_utf8_lossy(&kept).trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script]);
        cmd
    }

    #[test]
    fn a_command_within_its_limit_gives_its_trimmed_output() {
        assert_eq!(output_within(sh("echo ' abc '"), Duration::from_secs(60)).as_deref(), Some("abc"));
        assert_eq!(output_within(sh("printf ''"), Duration::from_secs(60)).as_deref(), Some(""));
    }

    #[test]
    fn a_failing_or_missing_command_gives_nothing() {
        assert_eq!(output_within(sh("echo out; exit 3"), Duration::from_secs(60)), None);
        assert_eq!(output_within(Command::new("/nonexistent/infergate-test-command"), Duration::from_secs(60)), None);
    }

    #[test]
    fn a_command_past_its_limit_is_killed_and_gives_nothing() {
        // Had it been waited for, it would answer `late`; the `sleep` it
        // started is killed with it (else it would hold the pipe for 30 s).
        assert_eq!(output_within(sh("sleep 30; echo late"), Duration::from_millis(50)), None);
    }

    #[test]
    fn a_large_output_neither_blocks_the_command_nor_is_kept_whole() {
        let out = output_within(sh("head -c 1000000 /dev/zero | tr '\\0' x"), Duration::from_secs(60));
        assert_eq!(out.map(|s| s.len()), Some(OUTPUT_LIMIT));
    }

    #[test]
    fn the_fingerprint_names_this_build() {
        let env = environment();
        assert_eq!(env.tool_version, env!("CARGO_PKG_VERSION"));
        assert!(env.cpus >= 1);
        // Built from a checkout with git on the path: the commit is a hash.
        if let Some(commit) = &env.git_commit {
            assert!(commit.len() >= 40 && commit.chars().all(|c| c.is_ascii_hexdigit()), "{commit}");
        }
    }
}
