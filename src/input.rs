//! Reading input files within a size limit.
//!
//! A baseline, a results file or a comparison is read whole before it is
//! parsed; a file far larger than any real one (a wrong path, a log renamed,
//! a device) must be refused with its name and the limit, not read until
//! memory runs out. Each kind of file has its limit beside its type
//! ([`crate::baseline::MAX_FILE_BYTES`], [`crate::results::MAX_FILE_BYTES`]).

use std::fs::File;
use std::io::{self, Read as _};
use std::path::Path;

use anyhow::{Context as _, bail};

/// The limit of a hand-written file: a config, a suite, a report template.
pub const MAX_TEXT_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Reads `path` as UTF-8 text, refusing it when it is over `limit` bytes.
/// `what` names the kind of file in errors: "cannot read baseline PATH: ...".
pub fn read_capped(path: &Path, limit: u64, what: &str) -> anyhow::Result<String> {
    let context = || format!("cannot read {what} {}", path.display());
    let file = File::open(path).with_context(context)?;
    // The length refuses an oversized file at once and sizes the buffer;
    // `take` bounds a file that grows meanwhile, or a pipe or device.
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len > limit {
        bail!(too_large(path, limit, what, Some(len)));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0).saturating_add(1));
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes).with_context(context)?;
    if bytes.len() as u64 > limit {
        bail!(too_large(path, limit, what, None));
    }
    String::from_utf8(bytes)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "stream did not contain valid UTF-8"))
        .with_context(context)
}

fn too_large(path: &Path, limit: u64, what: &str, len: Option<u64>) -> String {
    let size = len.map(|n| format!(" ({})", size_text(n))).unwrap_or_default();
    format!(
        "cannot read {what} {}: the file is over the {} limit for a {what}{size}; is it the right file?",
        path.display(),
        size_text(limit)
    )
}

/// A byte count for messages: `64 KiB`, `4 MiB`, `2 GiB`, else `1234567 bytes`.
pub fn size_text(bytes: u64) -> String {
    const KIB: u64 = 1 << 10;
    match bytes {
        0 => "0 bytes".into(),
        n if n % (1 << 30) == 0 => format!("{} GiB", n >> 30),
        n if n % (1 << 20) == 0 => format!("{} MiB", n >> 20),
        n if n % KIB == 0 => format!("{} KiB", n >> 10),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n => format!("{n} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(size_text(64 << 10), "64 KiB");
        assert_eq!(size_text(4 << 20), "4 MiB");
        assert_eq!(size_text(2 << 30), "2 GiB");
        assert_eq!(size_text(3 << 19), "1536 KiB");
        assert_eq!(size_text((5 << 20) + 7), "5.0 MiB");
        assert_eq!(size_text(1000), "1000 bytes");
    }

    #[test]
    fn a_file_over_the_limit_is_refused_with_its_name_and_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.toml");
        std::fs::write(&path, "x".repeat(2048)).unwrap();
        assert_eq!(read_capped(&path, 2048, "baseline").unwrap().len(), 2048);
        let e = format!("{:#}", read_capped(&path, 1024, "baseline").unwrap_err());
        assert!(e.contains("b.toml") && e.contains("over the 1 KiB limit for a baseline (2 KiB)"), "{e}");
        let e = format!("{:#}", read_capped(&dir.path().join("none"), 1024, "results file").unwrap_err());
        assert!(e.starts_with("cannot read results file ") && e.contains("none"), "{e}");
        std::fs::write(&path, b"\xff\xfe").unwrap();
        let e = format!("{:#}", read_capped(&path, 1024, "baseline").unwrap_err());
        assert!(e.ends_with("stream did not contain valid UTF-8"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn an_endless_file_is_read_only_up_to_the_limit() {
        let e = format!("{:#}", read_capped(Path::new("/dev/zero"), 1 << 20, "results file").unwrap_err());
        assert!(e.contains("/dev/zero: the file is over the 1 MiB limit for a results file;"), "{e}");
    }
}
