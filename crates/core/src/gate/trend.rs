//! Main over time as the comparison carries it: where main went over its
//! last runs, one trend per gated metric that stepped or crept. Data only;
//! [`crate::history::trend`] computes it from main's history (so the gate's
//! schema does not depend on the history), and the report layer words it.

use serde::{Deserialize, Serialize};

/// Where main went over its last runs, for one profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MainOverTime {
    /// The profile whose history was read.
    pub profile: String,
    /// Runs of main read (the window, or fewer where the history is shorter).
    pub runs: usize,
    /// One entry per metric that moved: worse first, then by the size of the change.
    pub trends: Vec<MainTrend>,
}

/// One metric that moved on main.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MainTrend {
    /// The metric (catalogue name).
    pub metric: String,
    /// Relative change, signed: the geometric mean of the last segment (or
    /// the last `min_segment` runs) over that of the first, minus 1.
    pub change: f64,
    /// Whether the change goes the metric's wrong way (a drop of throughput,
    /// a rise of latency).
    pub worse: bool,
    /// The commit of the first run after the first change point (of the
    /// window's first run for a gradual drift), when the run recorded one.
    pub since_commit: Option<String>,
    /// That run's id.
    pub since_run: String,
    /// Runs from that run to the newest, both counted (so 1 is the newest run).
    pub runs_ago: usize,
    /// Change points on the way; 0 for a gradual drift without one.
    pub steps: usize,
    /// The metric's tolerance: the strictest of its rules over the cases used.
    pub tolerance: f64,
    /// (case, phase) series averaged into the metric's suite-level series.
    pub series: usize,
}
