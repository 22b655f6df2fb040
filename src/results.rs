//! Results files: the schema is the core crate's; this module reads and
//! writes them.

pub use infergate_core::results::*;

use std::path::Path;

use anyhow::Context as _;

/// Reads and validates a results file.
pub fn load(path: &Path) -> anyhow::Result<Results> {
    let text = crate::input::read_capped(path, MAX_FILE_BYTES, "results file")?;
    Results::from_json(&text, &path.display().to_string())
}

/// Writes the results atomically (`-` writes to stdout).
pub fn save(results: &Results, path: &Path) -> anyhow::Result<()> {
    let mut json = crate::json::to_vec(results).context("cannot serialize results")?;
    json.push(b'\n');
    crate::fsutil::write_output(path, &json)
}
