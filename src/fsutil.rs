//! Atomic file output.
//!
//! A results or baseline file is either the old one or the complete new one,
//! never half of each: a crash or a kill mid-write leaves the previous file in
//! place. Writes go to a temporary file in the same directory, are flushed to
//! disk, then renamed over the target. A temporary file a killed process left
//! behind is removed by the next successful write of the same target.

use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;

/// Test-only hook, not for users: milliseconds to pause between writing the
/// temporary file and renaming it over the target, so that a test can kill
/// the process in the middle of a write deterministically.
pub const TEST_PAUSE_BEFORE_RENAME_ENV: &str = "INFERGATE_TEST_PAUSE_BEFORE_RENAME_MS";

/// Writes `bytes` to `path` atomically, creating parent directories; `-` means stdout.
pub fn write_output(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if path.as_os_str() == "-" {
        let mut out = std::io::stdout().lock();
        return match out.write_all(bytes).and_then(|()| out.flush()) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            other => other.context("cannot write to stdout"),
        };
    }
    write_atomic(path, bytes)
}

/// Writes `bytes` to `path` through a temporary file and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create directory {}", dir.display()))?;
    let name = path.file_name().with_context(|| format!("{} is not a file path", path.display()))?.to_string_lossy();
    let prefix = format!(".{name}.tmp-");
    let tmp = dir.join(format!("{prefix}{}", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        if let Some(ms) = std::env::var(TEST_PAUSE_BEFORE_RENAME_ENV).ok().and_then(|v| v.parse::<u64>().ok()) {
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
        std::fs::rename(&tmp, path)?;
        // Make the rename itself durable.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    remove_stale_temps(dir, &prefix);
    Ok(())
}

/// Removes the temporary files of earlier writes whose process is gone
/// (killed between writing and renaming).
fn remove_stale_temps(dir: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name.to_str().and_then(|n| n.strip_prefix(prefix)).and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|p| p != std::process::id() && !process_alive(p)) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(target_os = "linux")]
fn process_alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

/// Without /proc, assume it is alive: a leftover temporary file is harmless.
#[cfg(not(target_os = "linux"))]
fn process_alive(_pid: u32) -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_existing_file_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/out.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(p.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_dead_writers_temporary_file_is_removed_by_the_next_write() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.json");
        // PID 0 is never a process that could still be writing.
        let stale = dir.path().join(".out.json.tmp-0");
        std::fs::write(&stale, b"half").unwrap();
        let other = dir.path().join(".other.json.tmp-0");
        std::fs::write(&other, b"x").unwrap();
        write_atomic(&p, b"whole").unwrap();
        assert!(!stale.exists());
        assert!(other.exists(), "another target's temporary file is left alone");
        assert_eq!(std::fs::read(&p).unwrap(), b"whole");
    }

    #[test]
    fn unwritable_target_is_an_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"x").unwrap();
        let err = write_atomic(&blocker.join("child.json"), b"y").unwrap_err();
        assert!(format!("{err:#}").contains("child.json") || format!("{err:#}").contains("file"), "{err:#}");
    }
}
