//! The history store: main's runs, one JSON Lines file per profile in a
//! folder (`.infergate-history/PROFILE.jsonl` by default), one
//! [`HistoryRecord`] per line, append-only. The record type is the core
//! crate's; this module reads and appends the files; [`analyze`] finds the
//! change points in their series.
//!
//! # Appending
//!
//! An append is one `write(2)` of one complete line to a file opened with
//! `O_APPEND` (and `O_NOFOLLOW`: a link is refused, as is anything that is
//! not a regular file), under the store folder's lock ([`lock_folder`]),
//! then `fsync`. Readers never see half a line from a live writer, and
//! appends from two processes never interleave. A crash can still leave a
//! torn last line (the kernel wrote part of the buffer): the next append
//! starts its line on a fresh line, so the torn one is never merged into a
//! record, and readers skip it with a warning. A short write (a full disk)
//! is undone by truncating the file back to its length before the append.
//!
//! Because the files only grow, line by line, two appends made on two
//! copies merge as text: the history can live on a git branch
//! (`merge=union` for `*.jsonl`, see `scripts/history-push.sh`).
//!
//! # Reading
//!
//! Bounded: a file over [`MAX_FILE_BYTES`] is refused with its name and the
//! cap. Blank lines are ignored. A line cut short (truncated JSON or UTF-8:
//! an interrupted append) is skipped with a warning wherever it is; any
//! other line that does not parse is skipped with a warning when it is the
//! last line, and is an error naming `file:line` anywhere else: earlier
//! lines are never dropped silently.
//!
//! [`lock_folder`]: crate::fsutil::lock_folder

pub mod analyze;

pub use infergate_core::history::*;

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow};

use crate::exit::Failure;
use crate::fsutil::NotAFile;
use crate::gate::rules::Rules;
use crate::report::{Lang, findings};
use crate::results::Results;

/// The store folder when neither `--store` nor `[history] store` names one.
pub const DEFAULT_STORE: &str = ".infergate-history";

/// The profile when `--profile` is not given.
pub const DEFAULT_PROFILE: &str = "default";

/// Extension of a profile's file in the store.
pub const EXTENSION: &str = "jsonl";

/// Largest history file read (and appended to): 256 MiB, about 13,000 runs
/// of the 16-case coder suite (a line is about 19 KB). Past it, start a
/// new profile or move the old file aside.
pub const MAX_FILE_BYTES: u64 = 256 << 20;

/// A profile's history as read.
#[derive(Debug, Clone)]
pub struct History {
    /// The profile.
    pub profile: String,
    /// Its file.
    pub path: PathBuf,
    /// The runs, in file order (the order they were appended).
    pub records: Vec<HistoryRecord>,
    /// Lines skipped (torn, or an unparsable last line), each naming `file:line`.
    pub warnings: Vec<String>,
}

/// The file of `profile` in `store`; the profile must be a plain name.
pub fn file_of(store: &Path, profile: &str) -> anyhow::Result<PathBuf> {
    if !crate::baseline::is_profile_name(profile) || profile.len() > crate::baseline::MAX_NAME_BYTES {
        return Err(anyhow!(
            "--profile {}: a profile is a name of letters, digits, `.`, `_` and `-` (not starting with `.`, \
             at most {} bytes), e.g. `h200-qwen-vllm`",
            profile.escape_debug(),
            crate::baseline::MAX_NAME_BYTES
        ));
    }
    Ok(store.join(format!("{profile}.{EXTENSION}")))
}

/// The profiles that have a file in `store`, sorted. Only regular files
/// named `PROFILE.jsonl` count; anything else in the folder is left alone.
pub fn profiles(store: &Path) -> anyhow::Result<Vec<String>> {
    let entries =
        std::fs::read_dir(store).with_context(|| format!("cannot read the history store {}", store.display()))?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read the history store {}", store.display()))?;
        let name = entry.file_name();
        let Some(profile) = name.to_str().and_then(|n| n.strip_suffix(&format!(".{EXTENSION}"))) else { continue };
        if crate::baseline::is_profile_name(profile) && entry.file_type().is_ok_and(|t| t.is_file()) {
            out.push(profile.to_string());
        }
    }
    out.sort();
    Ok(out)
}

/// Reads the history of `profile` from `store`.
pub fn read(store: &Path, profile: &str) -> Result<History, Failure> {
    let path = file_of(store, profile).map_err(Failure::invalid)?;
    let mut file = open_existing(&path)?;
    let bytes = read_all(&mut file, &path)?;
    let Parsed { records, warnings, .. } =
        parse(&bytes, &path.display().to_string(), profile).map_err(Failure::invalid)?;
    Ok(History { profile: profile.to_string(), path, records, warnings })
}

/// Opens a history file for reading: a regular file, never through a link.
fn open_existing(path: &Path) -> Result<File, Failure> {
    crate::fsutil::check_target(path).map_err(Failure::invalid)?;
    let file =
        OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(path).map_err(|e| {
            let missing = e.kind() == std::io::ErrorKind::NotFound;
            let e = anyhow!(e).context(format!("cannot read the history file {}", path.display()));
            if missing {
                Failure::invalid(e.context("no runs were appended to this profile yet"))
            } else {
                open_failure(e)
            }
        })?;
    ensure_regular(&file, path)?;
    Ok(file)
}

/// A refused link (`ELOOP` under `O_NOFOLLOW`) is the user's to fix; other errors are failed runs.
fn open_failure(e: anyhow::Error) -> Failure {
    let is_link =
        e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.raw_os_error() == Some(libc::ELOOP)));
    if is_link { Failure::invalid(e) } else { Failure::run(e) }
}

/// Refuses an open file that is not a regular file (swapped in after the check).
fn ensure_regular(file: &File, path: &Path) -> Result<(), Failure> {
    let meta = file.metadata().with_context(|| format!("cannot read {}", path.display())).map_err(Failure::run)?;
    if !meta.is_file() {
        return Err(Failure::invalid(NotAFile { path: path.to_path_buf(), what: "is a special file" }));
    }
    Ok(())
}

/// The whole file, from its start, up to [`MAX_FILE_BYTES`].
fn read_all(file: &mut File, path: &Path) -> Result<Vec<u8>, Failure> {
    let context = || format!("cannot read the history file {}", path.display());
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let too_large = |len: Option<u64>| {
        let size = len.map(|n| format!(" ({})", crate::input::size_text(n))).unwrap_or_default();
        Failure::invalid(anyhow!(
            "the history file {} is over the {} limit{size}; move it aside (it stays valid history) and \
             append to a new profile, or keep fewer runs in it",
            path.display(),
            crate::input::size_text(MAX_FILE_BYTES)
        ))
    };
    if len > MAX_FILE_BYTES {
        return Err(too_large(Some(len)));
    }
    file.seek(SeekFrom::Start(0)).with_context(context).map_err(Failure::run)?;
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0).saturating_add(1));
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes).with_context(context).map_err(Failure::run)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_large(None));
    }
    Ok(bytes)
}

/// Why one line is not a record.
enum LineError {
    /// Cut short: truncated JSON or UTF-8 (an interrupted append).
    Torn(String),
    /// Something else: not JSON, another schema, another profile.
    Bad(String),
}

fn parse_line(line: &[u8], profile: &str) -> Result<HistoryRecord, LineError> {
    let text = std::str::from_utf8(line).map_err(|e| {
        if e.error_len().is_none() {
            LineError::Torn("it ends inside a UTF-8 character".into())
        } else {
            LineError::Bad(format!("not UTF-8 text (byte {})", e.valid_up_to() + 1))
        }
    })?;
    let record: HistoryRecord = serde_json::from_str(text).map_err(|e| {
        if e.is_eof() {
            return LineError::Torn(format!("it ends before the record does ({e})"));
        }
        // Name a schema this version cannot read rather than its first unknown field.
        #[derive(serde::Deserialize)]
        struct Probe {
            schema: Option<String>,
        }
        match serde_json::from_str::<Probe>(text) {
            Ok(Probe { schema: Some(s) }) if s != SCHEMA => {
                LineError::Bad(format!("schema `{}`: this infergate reads {SCHEMA}", s.escape_debug()))
            }
            _ => LineError::Bad(e.to_string()),
        }
    })?;
    if record.schema != SCHEMA {
        return Err(LineError::Bad(format!(
            "schema `{}`: this infergate reads {SCHEMA}",
            record.schema.escape_debug()
        )));
    }
    if record.profile != profile {
        return Err(LineError::Bad(format!(
            "a run of profile `{}` in the file of profile `{profile}`",
            record.profile.escape_debug()
        )));
    }
    Ok(record)
}

/// A history file's lines, parsed.
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    /// The records, in file order.
    pub records: Vec<HistoryRecord>,
    /// One per skipped line, naming `file:line`.
    pub warnings: Vec<String>,
    /// The last line (its number and why), when it was skipped as not a
    /// record rather than as torn: a line appended after it would make it an error.
    pub bad_last_line: Option<(usize, String)>,
}

/// Parses a history file's bytes (`name` for messages): the records and the
/// warnings for skipped lines, or the error of a bad line before the last.
pub fn parse(bytes: &[u8], name: &str, profile: &str) -> anyhow::Result<Parsed> {
    let lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    let last = lines.iter().rposition(|l| !l.trim_ascii().is_empty());
    let mut records = Vec::with_capacity(lines.len());
    let mut warnings = Vec::new();
    let mut bad_last_line = None;
    for (i, line) in lines.iter().enumerate() {
        if line.trim_ascii().is_empty() {
            continue;
        }
        match parse_line(line, profile) {
            Ok(r) => records.push(r),
            Err(LineError::Torn(why)) => {
                warnings.push(format!("{name}:{}: skipped a torn line (an append that was interrupted): {why}", i + 1));
            }
            Err(LineError::Bad(why)) if Some(i) == last => {
                warnings.push(format!("{name}:{}: skipped the last line, which is not a history record: {why}", i + 1));
                bad_last_line = Some((i + 1, why));
            }
            Err(LineError::Bad(why)) => {
                return Err(anyhow!(
                    "{name}:{}: not a history record: {why}; fix or remove that line (the file is append-only \
                     text: every other line is one run)",
                    i + 1
                ));
            }
        }
    }
    Ok(Parsed { records, warnings, bad_last_line })
}

/// Refuses results that must not enter a history: a run that did not
/// complete (exit 3), a case that cannot be trusted under `rules` (failed
/// requests, output length not held, a cut record; exit 3), nothing to record.
pub fn check_recordable(results: &Results, path: &Path, rules: &Rules) -> Result<(), Failure> {
    if !results.complete {
        return Err(Failure::run(anyhow!(
            "{} is from a run that did not complete (partial results); only complete runs enter the history",
            path.display()
        )));
    }
    if results.cases.is_empty() {
        return Err(Failure::run(anyhow!("{} holds no cases: nothing to append", path.display())));
    }
    for case in &results.cases {
        if let Some(problem) = crate::gate::validity::problems(case, rules).first() {
            return Err(Failure::run(anyhow!(
                "{}: case {} cannot be trusted: {}; a failed run does not enter the history",
                path.display(),
                case.id,
                findings::problem(problem, Lang::En)
            )));
        }
    }
    Ok(())
}

/// What an append did.
#[derive(Debug, Clone)]
pub struct Appended {
    /// The profile's file.
    pub path: PathBuf,
    /// Runs in the file now (this one included; skipped lines not counted).
    pub runs: usize,
    /// Warnings about the file as it was (a torn last line left by a crash).
    pub warnings: Vec<String>,
}

/// The names of the fields of [`environment_fingerprint`], in its order.
const ENVIRONMENT_FIELDS: [&str; 8] =
    ["GPU", "driver", "GPU memory (MiB)", "power limit (W)", "GPU count", "engine", "model", "API"];

/// What differs between two environment fingerprints, field by field.
fn environment_difference(old: &str, new: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (old.split('|').collect(), new.split('|').collect());
    if a.len() != ENVIRONMENT_FIELDS.len() || b.len() != a.len() {
        return format!("`{}` -> `{}`", old.escape_debug(), new.escape_debug());
    }
    ENVIRONMENT_FIELDS
        .iter()
        .zip(a.iter().zip(&b))
        .filter(|(_, (x, y))| x != y)
        .map(|(field, (x, y))| format!("{field} `{}` -> `{}`", x.escape_debug(), y.escape_debug()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Appends `record` to its profile's file in `store` (see the module's
/// documentation for how). Refuses a run id already in the file (exit 2), a
/// run of another environment or suite than the file's last run (exit 3),
/// a file that is a link or not a regular file (exit 2).
pub fn append(store: &Path, record: &HistoryRecord) -> Result<Appended, Failure> {
    let path = file_of(store, &record.profile).map_err(Failure::invalid)?;
    std::fs::create_dir_all(store)
        .with_context(|| format!("cannot create the history store {}", store.display()))
        .map_err(Failure::invalid)?;
    let _lock = crate::fsutil::lock_folder(store).map_err(Failure::run)?;
    crate::fsutil::check_target(&path).map_err(Failure::invalid)?;
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&path)
        .map_err(|e| open_failure(anyhow!(e).context(format!("cannot open the history file {}", path.display()))))?;
    ensure_regular(&file, &path)?;
    let bytes = read_all(&mut file, &path)?;
    let Parsed { records, mut warnings, bad_last_line } =
        parse(&bytes, &path.display().to_string(), &record.profile)
            .map_err(|e| Failure::invalid(e.context("refusing to append to a history file that does not read back")))?;
    if let Some((n, why)) = bad_last_line {
        // Appended after, it would be a bad line before the last: an error for every later read.
        return Err(Failure::invalid(anyhow!(
            "{}:{n}: the last line is not a history record ({why}); fix or remove it before appending",
            path.display()
        )));
    }
    if let Some(at) = records.iter().position(|r| r.run_id == record.run_id) {
        return Err(Failure::invalid(anyhow!(
            "run {} is already in {} (run {} of {}): each run is appended once",
            record.run_id.escape_debug(),
            path.display(),
            at + 1,
            records.len()
        )));
    }
    if let Some(last) = records.last() {
        let mut differ = Vec::new();
        if last.environment != record.environment {
            differ.push(format!("environment: {}", environment_difference(&last.environment, &record.environment)));
        }
        if last.suite != record.suite {
            differ.push(format!(
                "suite fingerprint `{}` -> `{}` (other cases or prompts)",
                last.suite.escape_debug(),
                record.suite.escape_debug()
            ));
        }
        if !differ.is_empty() {
            return Err(Failure::run(anyhow!(
                "these results are not of the setup of {} (its last run {}: {}); a history is one series of one \
                 setup: start a new profile for the new setup (--profile NEW-NAME)",
                path.display(),
                last.run_id.escape_debug(),
                differ.join("; ")
            )));
        }
    }
    let json = serde_json::to_string(record).context("cannot serialize the history record").map_err(Failure::run)?;
    // One write of one whole line; after a torn last line, start afresh.
    let torn = !bytes.is_empty() && bytes.last() != Some(&b'\n');
    let mut line = Vec::with_capacity(json.len() + 2);
    if torn {
        line.push(b'\n');
        warnings.push(format!(
            "{} ended in a torn line (an interrupted append); the new run starts on a line of its own",
            path.display()
        ));
    }
    line.extend_from_slice(json.as_bytes());
    line.push(b'\n');
    if bytes.len() as u64 + line.len() as u64 > MAX_FILE_BYTES {
        return Err(Failure::invalid(anyhow!(
            "appending to {} would take it over the {} limit of a history file; move it aside and append \
             to a new profile",
            path.display(),
            crate::input::size_text(MAX_FILE_BYTES)
        )));
    }
    let written = file.write(&line);
    let whole = matches!(written, Ok(n) if n == line.len());
    let synced = if whole { file.sync_all() } else { Ok(()) };
    if !whole || synced.is_err() {
        // Undo a partial line (a full disk) so that no half record stays behind.
        let _ = file.set_len(bytes.len() as u64);
        let _ = file.sync_all();
        let why = match (written, synced) {
            (Err(e), _) | (_, Err(e)) => e.to_string(),
            (Ok(n), _) => format!("only {n} of {} bytes were written", line.len()),
        };
        return Err(Failure::run(anyhow!("cannot append to {}: {why}", path.display())));
    }
    if bytes.is_empty() {
        // A new file: make its name durable too.
        if let Ok(dir) = File::open(store) {
            let _ = dir.sync_all();
        }
    }
    let _ = file.flush();
    Ok(Appended { path, runs: records.len() + 1, warnings })
}

#[cfg(test)]
mod tests {
    use super::*;
    use infergate_core::testing::results;

    fn rec(seed: u64) -> HistoryRecord {
        record_of(&results(&["a/1", "b/2"], seed, 6, 1.0, 0.02), "p", Some("abc1234"), Some("refs/heads/main"))
    }

    fn line(r: &HistoryRecord) -> String {
        serde_json::to_string(r).unwrap() + "\n"
    }

    #[test]
    fn torn_lines_are_skipped_and_bad_lines_named() {
        let (a, b) = (line(&rec(1)), line(&rec(2)));
        // A torn last line, cut anywhere, keeps the runs before it.
        for cut in [1, 10, b.len() / 2, b.len() - 2] {
            let text = format!("{a}{}", &b[..cut]);
            let Parsed { records, warnings, bad_last_line } = parse(text.as_bytes(), "h.jsonl", "p").unwrap();
            assert_eq!((records.len(), bad_last_line), (1, None), "cut {cut}");
            assert!(warnings.len() == 1 && warnings[0].starts_with("h.jsonl:2: skipped"), "{warnings:?}");
        }
        // A whole last line without its newline is a run.
        let p = parse(format!("{a}{}", b.trim_end()).as_bytes(), "h", "p").unwrap();
        assert_eq!((p.records.len(), p.warnings.len()), (2, 0));
        // A torn line the next append wrote past: skipped wherever it is.
        let text = format!("{a}{}\n{b}", &b[..40]);
        let p = parse(text.as_bytes(), "h", "p").unwrap();
        assert_eq!((p.records.len(), p.warnings.len()), (2, 1));
        // A cut inside a UTF-8 character is torn too.
        let mut bytes = a.clone().into_bytes();
        bytes.extend_from_slice(&"{\"schema\":\"é".as_bytes()[..13]);
        assert_eq!(parse(&bytes, "h", "p").unwrap().warnings.len(), 1);
        // Garbage as the last line: skipped with a warning; before the last: an error naming the line.
        let p = parse(format!("{a}not json\n\n").as_bytes(), "h", "p").unwrap();
        assert_eq!((p.records.len(), p.bad_last_line.map(|b| b.0)), (1, Some(2)));
        let e = parse(format!("{a}not json\n{b}").as_bytes(), "h.jsonl", "p").unwrap_err().to_string();
        assert!(e.starts_with("h.jsonl:2: not a history record"), "{e}");
        // Another schema, another profile: named.
        let other = a.replace(SCHEMA, "infergate.history.v9");
        let e = parse(format!("{other}{b}").as_bytes(), "h", "p").unwrap_err().to_string();
        assert!(e.contains("schema `infergate.history.v9`"), "{e}");
        let e = parse(format!("{a}{b}").as_bytes(), "h", "q").unwrap_err().to_string();
        assert!(e.contains("profile `p` in the file of profile `q`"), "{e}");
    }

    #[test]
    fn environment_differences_name_the_field() {
        let d = environment_difference("H200|550|1|2|1|vllm|m|chat", "H200|560|1|2|1|vllm|m2|chat");
        assert_eq!(d, "driver `550` -> `560`, model `m` -> `m2`");
        assert_eq!(environment_difference("a", "b"), "`a` -> `b`");
    }

    #[test]
    fn profiles_are_plain_names() {
        let store = Path::new("s");
        assert_eq!(file_of(store, "h200-q.1").unwrap(), Path::new("s/h200-q.1.jsonl"));
        for bad in ["", "../x", ".hidden", "a/b", "a b"] {
            assert!(file_of(store, bad).is_err(), "{bad}");
        }
    }
}
