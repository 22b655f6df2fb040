//! `compare --history` and `check --history`: main's history in the verdict.
//!
//! The history is read once, before any GPU time is spent (a store that
//! cannot be read is exit 2 then, not after the runs). Its spread is taken
//! per metric from the runs on the environment the current results were
//! measured on ([`crate::history::spread`]); a profile with no runs yet is a
//! note in the report, not an error, so the first pull requests before main
//! has a history still get a verdict.

use std::path::Path;

use anyhow::anyhow;

use crate::baseline::Baseline;
use crate::cli::GateHistoryArgs;
use crate::config::LoadedConfig;
use crate::exit::Failure;
use crate::history::HistoryRecord;
use crate::history::spread::{self, DEFAULT_WINDOW, HistorySpreads};
use crate::history::trend::{self, TrendOptions};
use crate::results::Results;

/// Fewest runs a window may hold: a spread needs ten.
const MIN_WINDOW: u32 = 10;

/// Main's history as `--history` gave it.
#[derive(Debug, Clone)]
pub struct GateHistory {
    /// The profile read.
    pub profile: String,
    /// Its runs, oldest first (none when the profile has no file yet).
    pub records: Vec<HistoryRecord>,
    /// Last runs read.
    pub window: usize,
}

impl GateHistory {
    /// Where main went over the window: its change points and drifts per
    /// gated metric, for the report's "main over time" lines.
    pub fn trend(&self, rules: &crate::gate::rules::Rules) -> Result<crate::gate::MainOverTime, Failure> {
        let opts = TrendOptions { window: self.window, ..TrendOptions::default() };
        trend::main_over_time(&self.records, &self.profile, rules, &opts).map_err(|e| Failure::invalid(anyhow!(e)))
    }

    /// The spreads for results measured like `results`, for a verdict at
    /// false-alarm budget `significance`.
    pub fn spreads(&self, results: &Results, significance: f64) -> HistorySpreads {
        let environment = crate::history::environment_fingerprint(results);
        spread::spreads(&self.records, &self.profile, &environment, self.window, significance)
    }
}

/// Reads the history `args` name, if any: the profile is `--history-profile`,
/// else the baseline's (without a baseline, the flag is needed); the window
/// `--history-window`, else `[history] window`, else 30.
pub fn load(
    args: &GateHistoryArgs,
    config: &LoadedConfig,
    baseline: Option<&Baseline>,
) -> Result<Option<GateHistory>, Failure> {
    let Some(store) = &args.history else { return Ok(None) };
    let window = match (args.history_window, config.config.history.window) {
        (Some(n), _) => n,
        (None, Some(n)) if n < MIN_WINDOW => {
            let file = config.path.as_ref().map_or_else(|| "the config".to_string(), |p| p.display().to_string());
            return Err(Failure::invalid(anyhow!(
                "{file}: [history] window = {n}: a spread needs at least {MIN_WINDOW} runs of main; set 10 or more"
            )));
        }
        (None, Some(n)) => n,
        (None, None) => DEFAULT_WINDOW as u32,
    };
    if !store.is_dir() {
        return Err(Failure::invalid(anyhow!(
            "--history {}: not a folder; give a history store (e.g. a checkout of the infergate-history branch)",
            store.display()
        )));
    }
    let profile = match (&args.history_profile, baseline) {
        (Some(p), _) => p.clone(),
        (None, Some(b)) => b.profile.clone(),
        (None, None) => {
            return Err(Failure::invalid(anyhow!(
                "--history {} needs --history-profile NAME here: which profile of the store to read",
                store.display()
            )));
        }
    };
    let records = if exists(store, &profile)? {
        let h = crate::history::read(store, &profile)?;
        for w in &h.warnings {
            eprintln!("WARNING: {w}");
        }
        h.records
    } else {
        eprintln!(
            "WARNING: --history {}: profile {profile} has no runs yet; the verdict takes the run-to-run spread \
             from the runs or [gate] run_to_run_cv",
            store.display()
        );
        Vec::new()
    };
    Ok(Some(GateHistory { profile, records, window: window as usize }))
}

/// Whether the profile's history file exists (a bad profile name is exit 2).
fn exists(store: &Path, profile: &str) -> Result<bool, Failure> {
    let path = crate::history::file_of(store, profile)
        .map_err(|e| Failure::invalid(anyhow!("{}", e.to_string().replace("--profile", "--history-profile"))))?;
    Ok(std::fs::symlink_metadata(&path).is_ok())
}
