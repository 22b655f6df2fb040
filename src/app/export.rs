//! `infergate export`: results files in the formats of the engines teams
//! already run (Bencher, Prometheus/Grafana, spreadsheets and warehouses).
//! Reads the results (bounded), refuses partial runs unless asked, renders
//! through the pure [`crate::export`] and writes atomically (`-` is stdout).

use std::path::Path;

use anyhow::anyhow;

use crate::cli::ExportArgs;
use crate::exit::{self, Failure};
use crate::export::{self, Run};
use crate::progress::Verbosity;

/// The longest `--profile` taken, in bytes.
pub const MAX_PROFILE_BYTES: usize = 256;

/// `infergate export`.
pub fn export(args: &ExportArgs, verbosity: Verbosity) -> Result<i32, Failure> {
    if args.level == export::Level::Request && args.format != export::Format::Csv {
        return Err(Failure::invalid(export::ExportError::LevelNotCsv));
    }
    if let Some(p) = &args.profile {
        check_profile(p)?;
    }
    let to_stdout = args.out.as_os_str() == "-";
    if !to_stdout {
        // Before reading what may be hundreds of megabytes of results.
        crate::fsutil::check_target(&args.out).map_err(|e| Failure::invalid(anyhow!("--out: {e}")))?;
    }
    let mut loaded = Vec::with_capacity(args.results.len());
    for path in &args.results {
        let results = crate::results::load(path).map_err(Failure::invalid)?;
        check_complete(&results, path, args.allow_partial, verbosity)?;
        // History lines carry the profile `history append` gives them, so an
        // export and an append of the same run are the same line.
        let profile = args.profile.clone().unwrap_or_else(|| match args.format {
            export::Format::Jsonl => crate::history::DEFAULT_PROFILE.to_string(),
            _ => export::default_profile(&results),
        });
        loaded.push((path.display().to_string(), results, profile));
    }
    let runs: Vec<Run<'_>> = loaded
        .iter()
        .map(|(origin, results, profile)| Run { results, profile: profile.as_str(), origin: origin.as_str() })
        .collect();
    let bytes = export::render(args.format, args.level, &runs).map_err(Failure::invalid)?;
    crate::fsutil::write_output(&args.out, &bytes).map_err(crate::fsutil::failure)?;
    if !to_stdout && verbosity != Verbosity::Quiet {
        eprintln!("export written to {}", args.out.display());
    }
    Ok(exit::PASS)
}

/// A profile is a name: not empty, not over [`MAX_PROFILE_BYTES`], no control characters.
fn check_profile(profile: &str) -> Result<(), Failure> {
    if profile.is_empty() || profile.len() > MAX_PROFILE_BYTES || profile.chars().any(char::is_control) {
        return Err(Failure::invalid(anyhow!(
            "--profile must be a name of 1 to {MAX_PROFILE_BYTES} bytes without control characters, e.g. \
             `h200-qwen-vllm`"
        )));
    }
    Ok(())
}

/// A run that did not complete is refused (exit 3) unless `--allow-partial`;
/// failed requests are said, since the statistics rest on the completed ones.
fn check_complete(
    results: &crate::results::Results,
    path: &Path,
    allow_partial: bool,
    verbosity: Verbosity,
) -> Result<(), Failure> {
    if !results.complete {
        if !allow_partial {
            return Err(Failure::run(anyhow!(
                "{} is from a run that did not complete (interrupted or stopped at its deadline); its figures are \
                 partial and would read as a real change downstream. Pass --allow-partial to export them anyway",
                path.display()
            )));
        }
        if verbosity != Verbosity::Quiet {
            eprintln!("warning: {} is from a run that did not complete; exporting its partial figures", path.display());
        }
    }
    let errors = results.total_errors();
    if errors > 0 && verbosity != Verbosity::Quiet {
        eprintln!(
            "warning: {}: {errors} of {} requests failed; the exported statistics rest on the completed ones",
            path.display(),
            results.total_requests()
        );
    }
    Ok(())
}
