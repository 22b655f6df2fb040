//! `infergate history dashboard`: the history store as one static page
//! (see [`crate::report::dashboard`]), for a browser, from disk or from
//! GitHub Pages.
//!
//! It reads the store itself ([`read_store`]): a folder of one JSON Lines
//! file per profile (`<store>/<profile>.jsonl`), one
//! [`HistoryRecord`] a line, oldest first. Every file is read within a size
//! limit; a last line cut short (a write that did not finish) is skipped
//! with a warning, never an earlier one: any other line that is not a
//! record of the file's profile is an error naming the file and line.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow};

use crate::cli::DashboardArgs;
use crate::exit::{self, Failure};
use crate::history::{HistoryRecord, SCHEMA};
use crate::report::dashboard::{self, ProfileInput, Settings};

/// Largest history file read: a run of 16 cases with two phases of 12
/// metrics is about 25 KB a line, so this is some 20,000 runs.
pub const MAX_STORE_FILE_BYTES: u64 = 512 << 20;

/// One profile's records, as read from its file.
#[derive(Debug, Clone)]
pub struct ProfileHistory {
    /// The profile (the file's name without `.jsonl`).
    pub profile: String,
    /// The file.
    pub path: PathBuf,
    /// Its records, in file order (oldest first).
    pub records: Vec<HistoryRecord>,
}

/// `infergate history dashboard`.
pub fn dashboard(args: &DashboardArgs) -> Result<i32, Failure> {
    let lang = super::gate::load_config(args.lang.config.as_deref())?.config.report_lang(args.lang.lang);
    let repo_url = repo_url(args.repo_url.as_deref(), |name| std::env::var(name).ok())?;
    let mut warnings = Vec::new();
    let histories = read_store(&args.store, &mut |w| warnings.push(w)).map_err(Failure::invalid)?;
    for w in &warnings {
        eprintln!("warning: {}", crate::text::for_log(w));
    }
    let mut profiles = Vec::new();
    for h in histories {
        let path = args.baseline_dir.join(format!("{}.toml", h.profile));
        let baseline = if path.is_file() {
            let b = crate::baseline::load(&path)
                .with_context(|| format!("the baseline of profile {} (from --baseline-dir)", h.profile))
                .map_err(Failure::invalid)?;
            Some((path.display().to_string(), b))
        } else {
            None
        };
        profiles.push(ProfileInput { name: h.profile, records: h.records, baseline });
    }
    let settings =
        Settings { lang, repo_url, detection: dashboard::detection(), tool_version: crate::cli::VERSION.to_string() };
    let page = dashboard::build(&profiles, &settings).map_err(|e| Failure::run(anyhow!("change points: {e}")))?;
    let html = dashboard::render(&page).context("cannot serialize the dashboard's data").map_err(Failure::run)?;
    crate::fsutil::probe_folder(&args.out)
        .with_context(|| format!("the dashboard folder {} (from --out) is not writable", args.out.display()))
        .map_err(Failure::invalid)?;
    let Some(_lock) = crate::fsutil::try_lock_folder(&args.out).map_err(Failure::invalid)? else {
        return Err(Failure::invalid(anyhow!(
            "another infergate is writing to {}; wait for it to finish, or give another --out",
            args.out.display()
        )));
    };
    let target = args.out.join("index.html");
    crate::fsutil::write_atomic_with(&target, |file| {
        file.write_all(html.as_bytes()).with_context(|| format!("cannot write {}", target.display()))?;
        // A page to publish: readable by whoever serves it (a page written before keeps its mode).
        file.set_permissions(std::fs::Permissions::from_mode(0o644))
            .with_context(|| format!("cannot write {}", target.display()))
    })
    .map_err(crate::fsutil::failure)?;
    let counts = page.counts();
    eprintln!(
        "dashboard: {} profile(s), {} run(s), {} chart(s), {} change point(s), {} KiB",
        counts.profiles,
        counts.runs,
        counts.series,
        counts.change_points,
        html.len().div_ceil(1024)
    );
    super::print_stdout(&format!("{}\n", target.display()))?;
    Ok(exit::PASS)
}

/// The repository commits link to: `--repo-url`, else GitHub Actions'
/// `GITHUB_SERVER_URL`/`GITHUB_REPOSITORY`, else none. Only an http(s)
/// address without spaces or quotes is taken.
fn repo_url(flag: Option<&str>, env: impl Fn(&str) -> Option<String>) -> Result<Option<String>, Failure> {
    let valid = |url: &str| {
        (url.starts_with("https://") || url.starts_with("http://"))
            && url.len() > "https://".len()
            && !url.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '\'' | '<' | '>' | '\\'))
    };
    if let Some(url) = flag {
        if !valid(url) {
            return Err(Failure::invalid(anyhow!(
                "--repo-url must be an http(s) address such as https://github.com/OWNER/REPO; got {:?}",
                crate::text::for_log(url)
            )));
        }
        return Ok(Some(url.trim_end_matches('/').to_string()));
    }
    let server = env("GITHUB_SERVER_URL").filter(|s| !s.is_empty());
    let repository = env("GITHUB_REPOSITORY").filter(|s| !s.is_empty());
    Ok(match (server, repository) {
        (Some(server), Some(repository)) => {
            let url = format!("{}/{}", server.trim_end_matches('/'), repository);
            valid(&url).then_some(url)
        }
        _ => None,
    })
}

/// Reads every `PROFILE.jsonl` of the store, profiles by name. Other files
/// are left alone (a README on the history branch); a `.jsonl` file whose
/// name is no profile name is skipped with a warning.
pub fn read_store(dir: &Path, warn: &mut dyn FnMut(String)) -> anyhow::Result<Vec<ProfileHistory>> {
    let entries = std::fs::read_dir(dir).with_context(|| {
        format!(
            "cannot read the history store {} (from --store): it should be the folder of PROFILE.jsonl files the \
             history is appended to",
            dir.display()
        )
    })?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read the history store {}", dir.display()))?;
        let path = entry.path();
        let Some(profile) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".jsonl")) else {
            continue;
        };
        let profile = profile.to_string();
        if !crate::baseline::is_profile_name(&profile) {
            warn(format!(
                "{}: not a profile's history (a profile name is letters, digits, . _ -); skipped",
                path.display()
            ));
            continue;
        }
        // A link or a folder is not read: the store is files the history writer made.
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            warn(format!("{}: not a regular file; skipped", path.display()));
            continue;
        }
        files.push((profile, path));
    }
    files.sort();
    let mut out = Vec::new();
    for (profile, path) in files {
        let text = crate::input::read_capped(&path, MAX_STORE_FILE_BYTES, "history file")?;
        let records = parse_history(&text, &profile, &path, warn)?;
        out.push(ProfileHistory { profile, path, records });
    }
    Ok(out)
}

/// The records of one history file. A last line without its newline that
/// is not a whole record is a write cut short: skipped with a warning.
fn parse_history(
    text: &str,
    profile: &str,
    path: &Path,
    warn: &mut dyn FnMut(String),
) -> anyhow::Result<Vec<HistoryRecord>> {
    let mut records = Vec::new();
    let complete = text.ends_with('\n');
    let lines: Vec<&str> = text.split('\n').collect();
    let last = lines.iter().rposition(|l| !l.trim().is_empty());
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = || format!("{} line {}", path.display(), i + 1);
        let record: HistoryRecord = match serde_json::from_str(line) {
            Ok(r) => r,
            Err(_) if Some(i) == last && !complete => {
                warn(format!(
                    "{}: the last line is incomplete (a write cut short?); skipped, the {} line(s) before it are read",
                    at(),
                    records.len()
                ));
                break;
            }
            Err(e) => return Err(anyhow!("{}: not a history record ({SCHEMA}): {e}", at())),
        };
        if record.schema != SCHEMA {
            return Err(anyhow!("{}: schema {:?}, expected {SCHEMA}", at(), crate::text::for_log(&record.schema)));
        }
        if record.profile != profile {
            return Err(anyhow!(
                "{}: a record of profile {:?} in the history of {profile}; each profile has its own file",
                at(),
                crate::text::for_log(&record.profile)
            ));
        }
        records.push(record);
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(profile: &str, run: u32) -> String {
        let r = infergate_core::testing::results(&["a/1"], u64::from(run), 5, 1.0, 0.02);
        serde_json::to_string(&crate::history::record_of(&r, profile, Some("abc1234"), None)).unwrap()
    }

    #[test]
    fn a_torn_last_line_is_skipped_and_nothing_before_it_is_lost() {
        let dir = tempfile::tempdir().unwrap();
        let full = format!("{}\n{}\n", line("p", 1), line("p", 2));
        let torn = &line("p", 3)[..40];
        std::fs::write(dir.path().join("p.jsonl"), format!("{full}{torn}")).unwrap();
        std::fs::write(dir.path().join("README.md"), "not a history").unwrap();
        std::fs::write(dir.path().join("q.jsonl"), format!("{}\n", line("q", 1))).unwrap();
        let mut warnings = Vec::new();
        let store = read_store(dir.path(), &mut |w| warnings.push(w)).unwrap();
        assert_eq!(
            store.iter().map(|h| (h.profile.as_str(), h.records.len())).collect::<Vec<_>>(),
            [("p", 2), ("q", 1)]
        );
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("p.jsonl line 3: the last line is incomplete"), "{warnings:?}");
    }

    #[test]
    fn a_broken_line_before_the_last_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("p.jsonl"), format!("{}\n{{oops\n{}\n", line("p", 1), line("p", 2))).unwrap();
        let e = format!("{:#}", read_store(dir.path(), &mut |_| {}).unwrap_err());
        assert!(e.contains("p.jsonl line 2: not a history record"), "{e}");
        // A whole last line that is no record is not a torn write either.
        std::fs::write(dir.path().join("p.jsonl"), format!("{}\n{{oops\n", line("p", 1))).unwrap();
        let e = format!("{:#}", read_store(dir.path(), &mut |_| {}).unwrap_err());
        assert!(e.contains("p.jsonl line 2"), "{e}");
        std::fs::write(dir.path().join("p.jsonl"), format!("{}\n", line("other", 1))).unwrap();
        let e = format!("{:#}", read_store(dir.path(), &mut |_| {}).unwrap_err());
        assert!(e.contains("a record of profile \"other\" in the history of p"), "{e}");
        let e = format!("{:#}", read_store(&dir.path().join("none"), &mut |_| {}).unwrap_err());
        assert!(e.contains("cannot read the history store") && e.contains("(from --store)"), "{e}");
    }

    #[test]
    fn commits_link_to_the_flag_or_the_actions_repository() {
        let none = |_: &str| None;
        assert_eq!(repo_url(None, none).unwrap(), None);
        let actions = |name: &str| match name {
            "GITHUB_SERVER_URL" => Some("https://github.example.com/".to_string()),
            "GITHUB_REPOSITORY" => Some("org/repo".to_string()),
            _ => None,
        };
        assert_eq!(repo_url(None, actions).unwrap().as_deref(), Some("https://github.example.com/org/repo"));
        assert_eq!(repo_url(Some("https://x.org/a/b/"), actions).unwrap().as_deref(), Some("https://x.org/a/b"));
        for bad in ["javascript:alert(1)", "https://x.org/a\"b", "ftp://x", "https://"] {
            let e = repo_url(Some(bad), none).err().map(|e| format!("{e}")).unwrap_or_default();
            assert!(e.contains("--repo-url must be an http(s) address"), "{bad}: {e}");
        }
    }
}
