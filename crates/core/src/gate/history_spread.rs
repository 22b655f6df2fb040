//! The run-to-run spreads learnt from main's history, as the comparison
//! takes them; computed from the records by the history's `spread` module
//! (the history depends on the gate, never the reverse).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::results::PhaseName;
use crate::stats::runlevel::Prior;

/// The spreads of one profile's history.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistorySpreads {
    /// The profile read.
    pub profile: String,
    /// Records in the profile's history.
    pub records: usize,
    /// Records on the current environment.
    pub same_environment: usize,
    /// Of those, the last ones read (at most the window).
    pub runs: usize,
    /// Per case, phase and metric (catalogue name): the spread, where
    /// enough of the runs read have the metric.
    #[serde(skip)]
    pub by_metric: BTreeMap<(String, PhaseName, String), Prior>,
    /// Series with a spread.
    pub series: usize,
}

impl HistorySpreads {
    /// The spread of one case's phase's metric, if the history has it.
    pub fn get(&self, case: &str, phase: PhaseName, metric: &str) -> Option<Prior> {
        self.by_metric.get(&(case.to_string(), phase, metric.to_string())).copied()
    }
}
