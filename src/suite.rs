//! The suite: built-in suites and suite files. The definitions, parsing
//! and prompt synthesis are pure and live in the core crate; this module
//! reads suite files.

pub use infergate_core::suite::*;

use std::path::Path;

/// A built-in suite by name, or a suite file by path.
pub fn load(name_or_path: &str) -> Result<Suite, SuiteError> {
    if let Some(suite) = Suite::builtin(name_or_path) {
        return suite;
    }
    let path = Path::new(name_or_path);
    let looks_like_path = name_or_path.ends_with(".toml") || name_or_path.contains('/') || path.exists();
    if !looks_like_path {
        return Err(Suite::unknown(name_or_path));
    }
    let text = crate::input::read_capped(path, crate::input::MAX_TEXT_FILE_BYTES, "suite file").map_err(|e| {
        SuiteError::Read { path: path.display().to_string(), source: std::io::Error::other(e.root_cause().to_string()) }
    })?;
    Suite::parse(&text, &path.display().to_string(), &path.display().to_string())
}
