//! Build script: the commit `infergate --version` names.
//!
//! Sets `INFERGATE_BUILD_COMMIT` for the crate to `HASH DATE` (short hash and
//! commit date), `HASH` alone, or `unknown commit`. The source, in order:
//! 1. `INFERGATE_GIT_COMMIT` (and optionally `INFERGATE_GIT_DATE`), set by the
//!    release workflow and the container build, which has no `.git`;
//! 2. `git`, but only when this crate is the top of its repository: a copy
//!    vendored inside another project must not claim that project's commit;
//! 3. `.cargo_vcs_info.json`, which `cargo package` writes into the crate
//!    published to crates.io (the commit it was packaged from).
//!
//! Nothing here may fail the build: without git the version says
//! `unknown commit`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=INFERGATE_GIT_COMMIT");
    println!("cargo:rerun-if-env-changed=INFERGATE_GIT_DATE");
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let commit = from_env()
        .or_else(|| from_git(&manifest_dir))
        .or_else(|| from_vcs_info(&manifest_dir))
        .unwrap_or_else(|| "unknown commit".to_owned());
    println!("cargo:rustc-env=INFERGATE_BUILD_COMMIT={commit}");
}

/// A commit hash as the version shows it: hexadecimal, cut to 7 digits.
fn short_hash(s: &str) -> Option<String> {
    let s = s.trim();
    let ok = (7..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit());
    ok.then(|| s[..7].to_ascii_lowercase())
}

/// A `YYYY-MM-DD` date, or nothing.
fn date(s: &str) -> Option<String> {
    let s = s.trim();
    let b = s.as_bytes();
    let ok = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| if i == 4 || i == 7 { *c == b'-' } else { c.is_ascii_digit() });
    ok.then(|| s.to_owned())
}

fn with_date(hash: String, day: Option<String>) -> String {
    match day {
        Some(day) => format!("{hash} {day}"),
        None => hash,
    }
}

fn from_env() -> Option<String> {
    // Empty is unset: the container build passes an empty build argument.
    let value = std::env::var("INFERGATE_GIT_COMMIT").ok().filter(|v| !v.trim().is_empty())?;
    let Some(hash) = short_hash(&value) else {
        println!("cargo:warning=INFERGATE_GIT_COMMIT is not a commit hash (7 to 64 hex digits): ignored");
        return None;
    };
    Some(with_date(hash, std::env::var("INFERGATE_GIT_DATE").ok().as_deref().and_then(date)))
}

/// `git` run in `dir`; its trimmed stdout when it succeeds.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git").arg("-C").arg(dir).args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8(out.stdout).ok()?.trim().to_owned())
}

fn from_git(dir: &Path) -> Option<String> {
    let top = git(dir, &["rev-parse", "--show-toplevel"])?;
    if std::fs::canonicalize(&top).ok()? != std::fs::canonicalize(dir).ok()? {
        return None;
    }
    // Rebuild when HEAD moves: HEAD itself (a branch switch or a detached
    // checkout), the branch's ref file (a commit) and packed-refs (a gc).
    // `--git-path` finds them in a worktree too. Only files that exist are
    // named: cargo reruns a script every build for a missing one.
    let mut watched = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    if let Some(branch) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
        watched.push(branch);
    }
    for name in watched {
        if let Some(path) = git(dir, &["rev-parse", "--git-path", &name]) {
            let path = if Path::new(&path).is_absolute() { PathBuf::from(path) } else { dir.join(path) };
            if path.is_file() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
    let hash = short_hash(&git(dir, &["rev-parse", "HEAD"])?)?;
    Some(with_date(hash, git(dir, &["log", "-1", "--format=%cs", "HEAD"]).as_deref().and_then(date)))
}

/// The `"sha1"` of `.cargo_vcs_info.json`, found without a JSON parser (a
/// build dependency would cost every build more than this saves).
fn from_vcs_info(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join(".cargo_vcs_info.json")).ok()?;
    let after = &text[text.find("\"sha1\"")? + "\"sha1\"".len()..];
    let value = after.trim_start().strip_prefix(':')?.trim_start().strip_prefix('"')?;
    short_hash(&value[..value.find('"')?])
}
