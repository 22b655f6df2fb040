//! Helpers shared by the fuzz targets in `fuzz_targets/`.
//!
//! The baseline and results loaders take a path, not a string: they are
//! fuzzed through that path, so the targets exercise exactly the code the CLI
//! runs (reading, UTF-8 check, parse, validation, error messages).

use std::path::PathBuf;

/// A scratch file for this process, rewritten on every call: in `/dev/shm`
/// where it exists (no disk I/O per execution), else the temp folder. The
/// process id keeps parallel fuzzing jobs (`-jobs=N`) apart.
pub fn scratch_file(name: &str, bytes: &[u8]) -> PathBuf {
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() { shm.to_path_buf() } else { std::env::temp_dir() };
    let path = dir.join(format!("infergate-fuzz-{}-{name}", std::process::id()));
    // A failure here is the fuzzing machine's, not the code under test's.
    std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("cannot write scratch file {}: {e}", path.display()));
    path
}

/// Removes a scratch file written by [`scratch_file`].
pub fn remove(path: &std::path::Path) {
    let _ = std::fs::remove_file(path);
}
