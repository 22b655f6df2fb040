//! The one writer of output files, and the checks a command makes on its
//! outputs before it starts.
//!
//! A results, comparison, report, plot or baseline file is either the old one
//! or the complete new one, never half of each: a crash or a kill mid-write
//! leaves the previous file in place. Writes go to a temporary file of their
//! own (created with `create_new`, named after the process and a counter) in
//! the same directory, are flushed to disk, then renamed over the target.
//!
//! The writer replaces only regular files: a symbolic link, a FIFO, a device
//! or a directory at the target is refused ([`NotAFile`], exit 2), so that
//! `--out /dev/null` as root never turns the device into a file and a link
//! is never replaced by (nor followed to) something else. `-` is stdout.
//!
//! Temporary files a killed writer left behind are removed by the next write
//! attempt on the same target, and by [`clean_stale_temps`].
//!
//! Writers that must not interleave (two `baseline update`s of one file, two
//! `check`s into one folder) take an advisory lock on the folder
//! ([`lock_folder`], [`try_lock_folder`]): `flock(2)`, released by the
//! kernel when the process dies, so a killed writer never leaves it held.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};
use std::os::unix::io::AsRawFd as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;

use crate::exit::Failure;

/// Test-only hook, not for users: milliseconds to pause between writing the
/// temporary file and renaming it over the target, so that a test can kill
/// the process in the middle of a write deterministically. Read once per
/// process, and only by debug builds (what the tests run).
pub const TEST_PAUSE_BEFORE_RENAME_ENV: &str = "INFERGATE_TEST_PAUSE_BEFORE_RENAME_MS";

fn test_pause() -> Option<Duration> {
    // Release builds carry no test hook.
    if !cfg!(debug_assertions) {
        return None;
    }
    static PAUSE: OnceLock<Option<Duration>> = OnceLock::new();
    *PAUSE.get_or_init(|| {
        std::env::var(TEST_PAUSE_BEFORE_RENAME_ENV).ok().and_then(|v| v.parse().ok()).map(Duration::from_millis)
    })
}

/// An output path that holds something other than a regular file.
#[derive(Debug, thiserror::Error)]
#[error("{} {what}, not a regular file: infergate will not replace it; give the path of a file", path.display())]
pub struct NotAFile {
    /// The output path.
    pub path: PathBuf,
    /// What is there: "is a symbolic link", "is a FIFO", "is a device", "is a directory", "is a socket".
    pub what: &'static str,
}

/// Refuses a target that exists and is not a regular file; a link is not
/// followed. A target that is missing (or cannot be looked at: the write
/// will say why) passes.
pub fn check_target(path: &Path) -> Result<(), NotAFile> {
    let Ok(meta) = std::fs::symlink_metadata(path) else { return Ok(()) };
    let t = meta.file_type();
    let what = if t.is_file() {
        return Ok(());
    } else if t.is_symlink() {
        "is a symbolic link"
    } else if t.is_dir() {
        "is a directory"
    } else if t.is_fifo() {
        "is a FIFO"
    } else if t.is_char_device() || t.is_block_device() {
        "is a device"
    } else if t.is_socket() {
        "is a socket"
    } else {
        "is a special file"
    };
    Err(NotAFile { path: path.to_path_buf(), what })
}

/// The exit code a write error deserves: a target that is not a regular file
/// is the user's to fix (2), anything else is a failed run (3).
pub fn failure(e: anyhow::Error) -> Failure {
    if e.chain().any(|c| c.is::<NotAFile>()) { Failure::invalid(e) } else { Failure::run(e) }
}

/// Writes `bytes` to `path` atomically, creating parent directories; `-` means stdout.
pub fn write_output(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if path.as_os_str() == "-" {
        return write_stdout(bytes);
    }
    write_atomic(path, bytes)
}

/// Writes `bytes` to stdout; a closed pipe (`| head`) is not an error, a
/// full disk or a closed stdout is.
pub fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("cannot write to stdout"),
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    replace_with(path, None, |tmp, file| {
        file.write_all(bytes).with_context(|| format!("cannot write {}", tmp.display()))
    })
}

/// Like [`write_atomic`], for content written as a stream: `fill` writes
/// the temporary file through its handle.
pub fn write_atomic_with(path: &Path, fill: impl FnOnce(&mut File) -> anyhow::Result<()>) -> anyhow::Result<()> {
    replace_with(path, None, |_, file| fill(file))
}

/// Like [`write_atomic`], for writers that write a file by its path (an image
/// encoder): `fill` writes the temporary file, whose name ends in the
/// target's extension, since such writers pick the format from it.
pub fn write_atomic_via_path(path: &Path, fill: impl FnOnce(&Path) -> anyhow::Result<()>) -> anyhow::Result<()> {
    let ext = path.extension().map(|e| e.to_string_lossy().into_owned());
    replace_with(path, ext.as_deref(), |tmp, _| fill(tmp))
}

/// The folder of `path` (`.` for a bare file name) and its file name.
fn split(path: &Path) -> anyhow::Result<(&Path, String)> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().with_context(|| format!("{} is not a file path", path.display()))?;
    Ok((dir, name.to_string_lossy().into_owned()))
}

/// The start of the temporary names of writes to the file `name`; the pid of
/// the writer follows it.
fn temp_prefix(name: &str) -> String {
    format!(".{name}.tmp-")
}

fn replace_with(
    path: &Path,
    ext: Option<&str>,
    fill: impl FnOnce(&Path, &mut File) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    check_target(path)?;
    let (dir, name) = split(path)?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create directory {}", dir.display()))?;
    remove_stale_temps(dir, &temp_prefix(&name));
    // The temporary file is removed when dropped unless it was persisted,
    // whatever fails on the way.
    let mut tmp = create_temp(dir, &name, ext).with_context(|| format!("cannot write {}", path.display()))?;
    let result = (|| -> anyhow::Result<()> {
        let tmp_path = tmp.path().to_path_buf();
        fill(&tmp_path, tmp.as_file_mut())?;
        // A writer that wrote by path wrote through another handle: reopen to sync what it wrote.
        if ext.is_some() {
            File::open(&tmp_path)?.sync_all()?;
        } else {
            tmp.as_file().sync_all()?;
        }
        // An existing file keeps its permissions.
        if let Ok(meta) = std::fs::metadata(path) {
            let _ = tmp.as_file().set_permissions(meta.permissions());
        }
        if let Some(pause) = test_pause() {
            std::thread::sleep(pause);
        }
        // The target may have changed since the check: refuse rather than replace what is not a file.
        check_target(path)?;
        Ok(())
    })();
    let persisted = result.and_then(|()| tmp.persist(path).map(drop).map_err(|e| anyhow::Error::new(e.error)));
    if let Err(e) = persisted {
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    // Make the rename itself durable.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Creates a temporary file for `name` in `dir` (`tempfile`: a fresh random
/// name, `O_EXCL`), named after the target and this process's pid, so that a
/// later write can tell a dead writer's leftover from a live one's.
fn create_temp(dir: &Path, name: &str, ext: Option<&str>) -> std::io::Result<tempfile::NamedTempFile> {
    let prefix = format!("{}{}-", temp_prefix(name), std::process::id());
    let suffix = ext.map(|e| format!(".{e}")).unwrap_or_default();
    tempfile::Builder::new().prefix(&prefix).suffix(&suffix).rand_bytes(8).tempfile_in(dir)
}

/// Removes the temporary files a dead writer of `target` left behind (killed
/// between writing and renaming). Writes do this themselves; a command that
/// finds nothing to write calls it so that a leftover does not outlive it.
pub fn clean_stale_temps(target: &Path) {
    if let Ok((dir, name)) = split(target) {
        remove_stale_temps(dir, &temp_prefix(&name));
    }
}

fn remove_stale_temps(dir: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(prefix)) else { continue };
        let digits = rest.find(|c: char| !c.is_ascii_digit()).map_or(rest, |end| &rest[..end]);
        let Ok(pid) = digits.parse::<u32>() else { continue };
        // Only files: a folder or a link that happens to match is not ours.
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        if is_file && pid != std::process::id() && !process_alive(pid) {
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

/// Checks, before anything is measured, that files can be written in `dir`:
/// creates the folder, then creates, writes, syncs and removes a probe file
/// in it (a block on disk, so that a full disk shows too).
pub fn probe_folder(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create the folder {}", dir.display()))?;
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let probe = dir.join(format!(".infergate-probe-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed)));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .with_context(|| format!("cannot create files in {}", dir.display()))?;
    let written = file.write_all(b"infergate checks that this folder takes files\n").and_then(|()| file.sync_data());
    drop(file);
    let removed = std::fs::remove_file(&probe);
    written.with_context(|| format!("cannot write files in {}", dir.display()))?;
    removed.with_context(|| format!("cannot remove files in {}", dir.display()))?;
    Ok(())
}

/// Creates (or truncates) a log file that other processes write to; like the
/// writer, it refuses a target that is not a regular file and never follows
/// a link.
pub fn create_log(path: &Path) -> anyhow::Result<File> {
    check_target(path)?;
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))
}

/// Opens a log file for appending, with the same refusals as [`create_log`].
pub fn append_log(path: &Path) -> anyhow::Result<File> {
    check_target(path)?;
    OpenOptions::new()
        .create(true)
        .append(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))
}

/// An exclusive advisory lock on a folder, released when dropped or when
/// the process dies. Without lock support (some network file systems) it
/// holds nothing, as writes did before.
#[derive(Debug)]
pub struct FolderLock {
    _file: Option<File>,
}

/// Locks `dir` if no other process holds it; `Ok(None)` when one does.
pub fn try_lock_folder(dir: &Path) -> anyhow::Result<Option<FolderLock>> {
    lock(dir, libc::LOCK_EX | libc::LOCK_NB)
}

/// Locks `dir`, waiting for the process that holds it.
pub fn lock_folder(dir: &Path) -> anyhow::Result<FolderLock> {
    Ok(lock(dir, libc::LOCK_EX)?.unwrap_or(FolderLock { _file: None }))
}

fn lock(dir: &Path, op: libc::c_int) -> anyhow::Result<Option<FolderLock>> {
    // Opened read-only: a folder cannot be opened for writing. The descriptor is close-on-exec,
    // so a server started meanwhile does not inherit (and outlive us holding) the lock.
    let file = File::open(dir).with_context(|| format!("cannot open the folder {} to lock it", dir.display()))?;
    loop {
        // SAFETY: flock(2) on a descriptor we own; no memory is passed.
        if unsafe { libc::flock(file.as_raw_fd(), op) } == 0 {
            return Ok(Some(FolderLock { _file: Some(file) }));
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EWOULDBLOCK) => return Ok(None),
            _ => {
                tracing::debug!("cannot lock {} ({e}); writing without a lock", dir.display());
                return Ok(Some(FolderLock { _file: None }));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }

    #[test]
    fn replaces_existing_file_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/out.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(names(p.parent().unwrap()), ["out.json"]);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_dead_writers_temporary_file_is_removed_by_the_next_write() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.json");
        // PID 0 is never a process that could still be writing: the old name and the new one.
        let stale = dir.path().join(".out.json.tmp-0");
        std::fs::write(&stale, b"half").unwrap();
        let stale_numbered = dir.path().join(".out.json.tmp-0-7");
        std::fs::write(&stale_numbered, b"half").unwrap();
        let other = dir.path().join(".other.json.tmp-0");
        std::fs::write(&other, b"x").unwrap();
        write_atomic(&p, b"whole").unwrap();
        assert!(!stale.exists() && !stale_numbered.exists());
        assert!(other.exists(), "another target's temporary file is left alone");
        assert_eq!(std::fs::read(&p).unwrap(), b"whole");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn stale_temps_go_even_when_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("p.toml");
        let stale = dir.path().join(".p.toml.tmp-0-3");
        std::fs::write(&stale, b"half").unwrap();
        // A live writer's (ours) stays.
        let live = dir.path().join(format!(".p.toml.tmp-{}-999", std::process::id()));
        std::fs::write(&live, b"busy").unwrap();
        clean_stale_temps(&p);
        assert!(!stale.exists());
        assert!(live.exists());
    }

    #[test]
    fn unwritable_target_is_an_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"x").unwrap();
        let err = write_atomic(&blocker.join("child.json"), b"y").unwrap_err();
        assert!(format!("{err:#}").contains("child.json") || format!("{err:#}").contains("file"), "{err:#}");
    }

    #[test]
    fn a_symbolic_link_is_refused_and_neither_it_nor_its_target_changes() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("precious");
        std::fs::write(&target, b"keep").unwrap();
        let link = dir.path().join("out.json");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = write_atomic(&link, b"new").unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("out.json") && msg.contains("is a symbolic link"), "{msg}");
        assert_eq!(failure(err).code(), crate::exit::INVALID_INPUT);
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
        assert_eq!(names(dir.path()), ["out.json", "precious"], "no temporary file is left");
    }

    #[test]
    fn a_dangling_link_is_refused_and_nothing_is_created_where_it_points() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("out.json");
        std::os::unix::fs::symlink(dir.path().join("elsewhere"), &link).unwrap();
        assert!(format!("{:#}", write_atomic(&link, b"x").unwrap_err()).contains("is a symbolic link"));
        assert!(format!("{:#}", create_log(&link).unwrap_err()).contains("is a symbolic link"));
        assert!(!dir.path().join("elsewhere").exists());
    }

    #[test]
    fn a_fifo_a_device_and_a_directory_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: mkfifo(3) with a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        for (path, what) in
            [(fifo.as_path(), "is a FIFO"), (Path::new("/dev/null"), "is a device"), (sub.as_path(), "is a directory")]
        {
            let err = write_output(path, b"x").unwrap_err();
            let msg = format!("{err:#}");
            assert!(msg.contains(&path.display().to_string()) && msg.contains(what), "{msg}");
            assert_eq!(failure(err).code(), crate::exit::INVALID_INPUT);
        }
        assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
        assert!(std::fs::symlink_metadata("/dev/null").unwrap().file_type().is_char_device());
        assert_eq!(names(dir.path()), ["fifo", "sub"]);
    }

    #[test]
    fn other_write_errors_are_failed_runs() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"x").unwrap();
        let err = write_atomic(&blocker.join("child.json"), b"y").unwrap_err();
        assert_eq!(failure(err).code(), crate::exit::RUN_FAILED);
    }

    #[test]
    fn writes_from_many_threads_to_one_path_each_land_whole() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.json");
        let bodies: Vec<Vec<u8>> = (0..8u8).map(|i| vec![b'a' + i; 64 * 1024]).collect();
        std::thread::scope(|s| {
            for b in &bodies {
                let p = &p;
                s.spawn(move || write_atomic(p, b).unwrap());
            }
        });
        let got = std::fs::read(&p).unwrap();
        assert!(bodies.contains(&got), "one whole body, not a mix");
        assert_eq!(names(dir.path()), ["out.json"]);
    }

    #[test]
    fn an_existing_file_keeps_its_permissions() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("b.toml");
        std::fs::write(&p, b"old").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_atomic(&p, b"new").unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o640);
    }

    #[test]
    fn a_path_writer_gets_a_temporary_name_with_the_extension() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("chart.png");
        write_atomic_via_path(&p, |tmp| {
            assert_eq!(tmp.extension().unwrap(), "png");
            std::fs::write(tmp, b"img")?;
            Ok(())
        })
        .unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"img");
        let err = write_atomic_via_path(&p, |_| anyhow::bail!("drawing failed")).unwrap_err();
        assert!(format!("{err:#}").contains("drawing failed"));
        assert_eq!(names(dir.path()), ["chart.png"], "a failed write leaves no temporary file");
    }

    #[test]
    fn a_probe_creates_the_folder_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("a/b");
        probe_folder(&out).unwrap();
        assert!(names(&out).is_empty());
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"x").unwrap();
        assert!(format!("{:#}", probe_folder(&blocker.join("sub")).unwrap_err()).contains("file"));
    }

    #[test]
    fn a_read_only_folder_fails_the_probe_unless_root() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let ro = dir.path().join("ro");
        std::fs::create_dir(&ro).unwrap();
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
        let result = probe_folder(&ro);
        // SAFETY: geteuid(2) has no failure mode and touches no memory.
        if unsafe { libc::geteuid() } == 0 {
            eprintln!("running as root, which writes into read-only folders: the refusal is not checked");
        } else {
            assert!(format!("{:#}", result.unwrap_err()).contains("ro"));
        }
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn a_held_folder_lock_is_seen_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let first = try_lock_folder(dir.path()).unwrap().expect("a free folder locks");
        // flock locks belong to the open file: a second open, even in this process, is refused.
        assert!(try_lock_folder(dir.path()).unwrap().is_none());
        drop(first);
        let again = try_lock_folder(dir.path()).unwrap();
        assert!(again.is_some());
        assert!(names(dir.path()).is_empty(), "a lock leaves no file behind");
    }

    #[test]
    fn a_waiting_lock_gets_the_folder_when_the_holder_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock_folder(dir.path()).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let path = dir.path().to_path_buf();
        let waiter = std::thread::spawn(move || {
            let lock = lock_folder(&path).unwrap();
            tx.send(()).unwrap();
            drop(lock);
        });
        assert!(rx.recv_timeout(Duration::from_millis(200)).is_err(), "the waiter waits");
        drop(first);
        rx.recv_timeout(Duration::from_secs(60)).expect("the waiter gets the lock");
        waiter.join().unwrap();
    }
}
