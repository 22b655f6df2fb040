//! Helpers shared by the fuzz targets in `fuzz_targets/`.
//!
//! The baseline and results loaders take a path, not a string: they are
//! fuzzed through that path, so the targets exercise exactly the code the CLI
//! runs (reading, UTF-8 check, parse, validation, error messages).

use std::path::PathBuf;

/// Cuts `stream` into the pieces a socket might deliver: their lengths cycle
/// through `lengths` (a 0 makes an empty piece; when all are 0, those empty
/// pieces come first and then the whole stream); with no lengths, one byte
/// at a time.
pub fn split<'a>(stream: &'a [u8], lengths: &[u8]) -> Vec<&'a [u8]> {
    if lengths.is_empty() {
        return stream.chunks(1).collect();
    }
    if lengths.iter().all(|&len| len == 0) {
        // Empty pushes, then the stream: cycling through zeros would never end.
        let mut pieces = vec![&stream[..0]; lengths.len()];
        pieces.push(stream);
        return pieces;
    }
    let mut pieces = Vec::new();
    let mut rest = stream;
    for &len in lengths.iter().cycle() {
        let (piece, tail) = rest.split_at(usize::from(len).min(rest.len()));
        pieces.push(piece);
        rest = tail;
        if rest.is_empty() {
            break;
        }
    }
    pieces
}

/// Splits a fuzz input laid out as the stream targets read it: byte 0 is
/// `k`, the next `k % 16` bytes are piece lengths, the rest is the stream.
/// `None` for an empty input.
pub fn lengths_and_stream(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let (&k, rest) = data.split_first()?;
    let k = usize::from(k % 16).min(rest.len());
    Some(rest.split_at(k))
}

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
