//! The verdict: tolerance rules, noise-aware comparison, and its result.
//!
//! Everything here is pure: [`compare::compare`] takes results, a baseline
//! and rules and returns a [`Comparison`]; no files, no network, no clock.
//! The comparison is plain data (schema `infergate.comparison.v3`) that the
//! reports render and the application derives the exit code from.

pub mod calibrate;
pub mod compare;
pub mod findings;
pub mod history_spread;
pub mod rules;
pub mod trend;
pub mod validity;

use serde::{Deserialize, Serialize};

pub use crate::metrics::{self, Direction, Level};
pub use findings::{CaseNote, Change, Headline, MismatchKind, Problem, RunNote, Side};
pub use trend::{MainOverTime, MainTrend};

/// Schema identifier of comparison files.
pub const SCHEMA: &str = "infergate.comparison.v3";

/// The verdict of a whole comparison, worst first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Results and baseline are not comparable (suite, prompts or environment differ).
    Refused,
    /// The run cannot be trusted (failed requests, output length not held, incomplete).
    Invalid,
    /// At least one fail-level metric regressed beyond tolerance and noise.
    Regressed,
    /// Improvements beyond tolerance while `on_improvement = "require-update"`.
    UpdateRequired,
    /// Warnings only (warn-level regressions, cannot judge, output drift, new or missing cases).
    Warn,
    /// Improvements beyond tolerance and nothing worse.
    Improved,
    /// Nothing changed beyond tolerance and noise.
    Pass,
}

impl Verdict {
    /// Whether this verdict blocks the merge because something got worse
    /// (the application maps it to exit 1).
    pub fn is_regression(self) -> bool {
        matches!(self, Verdict::Regressed | Verdict::UpdateRequired)
    }

    /// Whether the run or the comparison could not be judged (exit 3).
    pub fn is_unjudged(self) -> bool {
        matches!(self, Verdict::Refused | Verdict::Invalid)
    }

    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Refused => "refused",
            Verdict::Invalid => "invalid",
            Verdict::Regressed => "regressed",
            Verdict::UpdateRequired => "update_required",
            Verdict::Warn => "warn",
            Verdict::Improved => "improved",
            Verdict::Pass => "pass",
        }
    }
}

/// The verdict of one case, worst first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseVerdict {
    /// The case's run cannot be trusted.
    Invalid,
    /// A fail-level metric regressed.
    Regressed,
    /// A warn-level metric regressed, a metric could not be judged, or the output drifted.
    Warn,
    /// In the baseline but not in the results.
    Missing,
    /// In the results but not in the baseline.
    New,
    /// Better beyond tolerance, nothing worse.
    Improved,
    /// Nothing beyond tolerance and noise.
    Pass,
}

impl CaseVerdict {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            CaseVerdict::Invalid => "invalid",
            CaseVerdict::Regressed => "regressed",
            CaseVerdict::Warn => "warn",
            CaseVerdict::Missing => "missing",
            CaseVerdict::New => "new",
            CaseVerdict::Improved => "improved",
            CaseVerdict::Pass => "pass",
        }
    }
}

/// What happened to one metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricStatus {
    /// Worse beyond tolerance and significant, at level `fail`.
    Regressed,
    /// Worse beyond tolerance and significant, at level `warn`.
    Warn,
    /// No estimate of the noise (too few runs and requests), or no data on a side.
    CannotJudge,
    /// Better beyond tolerance and significant.
    Improved,
    /// Beyond tolerance, but not significant: noise.
    Noise,
    /// Within tolerance.
    Pass,
}

impl MetricStatus {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricStatus::Regressed => "regressed",
            MetricStatus::Warn => "warn",
            MetricStatus::CannotJudge => "cannot_judge",
            MetricStatus::Improved => "improved",
            MetricStatus::Noise => "noise",
            MetricStatus::Pass => "pass",
        }
    }
}

/// The whole comparison (`infergate.comparison.v3`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Comparison {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// The overall verdict; the exit code follows from it.
    pub verdict: Verdict,
    /// What sums the comparison up: the change that matters most, or why
    /// there is no verdict (words in the report layer).
    pub headline: Headline,
    /// Baseline profile name.
    pub profile: String,
    /// Where the baseline was read from.
    pub baseline_path: String,
    /// Where the current runs' results were read from (or written to).
    pub results_paths: Vec<String>,
    /// Run ids of the current runs.
    pub run_ids: Vec<String>,
    /// What differs between results and baseline (suite, prompts, environment).
    pub mismatches: Vec<Mismatch>,
    /// Whether `--allow-mismatch` made the comparison go ahead despite them.
    pub mismatch_allowed: bool,
    /// False-alarm budget of the whole run (`[gate] significance`).
    pub significance: f64,
    /// One-sided level each metric of each case is tested at, so that the
    /// chance of any false alarm among the fail-level metrics is
    /// `significance`, counting each run's drift once across cases.
    pub test_significance: f64,
    /// How the run-to-run drift entered the verdict.
    pub run_to_run: RunToRun,
    /// Cases per verdict.
    pub counts: Counts,
    /// One entry per case, worst verdict first, then by id.
    pub cases: Vec<CaseComparison>,
    /// Run-level notes (e.g. the run was incomplete).
    pub notes: Vec<RunNote>,
    /// The command that accepts the current results as the new baseline.
    pub accept_command: String,
    /// A preview of what that command would change in the baseline file (a
    /// unified diff, possibly shortened); `None` when not computed.
    pub accept_diff: Option<String>,
    /// The server that was measured.
    #[serde(default)]
    pub server: ServerSummary,
    /// Where main went over its last runs (from its history), when the
    /// comparison read one; absent otherwise, and in older files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub main_over_time: Option<MainOverTime>,
}

/// How the comparison saw the drift between runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunToRun {
    /// The weakest source among the judged metrics: `runs` (measured from
    /// runs), `history` (main's last runs), `config` (`[gate] run_to_run_cv`)
    /// or `none` (not seen at all).
    pub source: Option<crate::stats::runlevel::SpreadSource>,
    /// Fewest baseline runs among the compared cases.
    pub baseline_runs: usize,
    /// Fewest current runs among the compared cases.
    pub current_runs: usize,
    /// Median run-to-run coefficient of variation of the fail-level metrics, where known.
    pub median_cv: Option<f64>,
    /// Runs of main's history the spread of some judged metric came from
    /// (`source` is then `history` or stronger); `None` when none did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_runs: Option<usize>,
}

/// The server the results measured, as the report shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSummary {
    /// Model name sent in the requests.
    pub model: String,
    /// Engine, from the capability probe or `owned_by`.
    pub engine: Option<String>,
    /// Version the server reported.
    pub version: Option<String>,
    /// Seconds from launch to ready, when infergate started the server.
    pub time_to_ready_s: Option<f64>,
    /// GPU memory in use before the first request, MiB (sampled GPUs together).
    pub gpu_memory_after_load_mib: Option<f64>,
    /// What the capability probe found.
    pub capabilities: Option<crate::capabilities::Capabilities>,
}

impl ServerSummary {
    /// What the results say about their server.
    pub fn of(results: &crate::results::Results) -> ServerSummary {
        let server = &results.environment.server;
        let caps = server.capabilities.clone();
        ServerSummary {
            model: server.model.clone(),
            engine: caps.as_ref().and_then(|c| c.engine.clone()).or_else(|| server.owned_by.clone()),
            version: server.reported_version.clone(),
            time_to_ready_s: server.launched.as_ref().map(|l| l.time_to_ready_s),
            gpu_memory_after_load_mib: results.environment.gpu.memory_after_load_mib,
            capabilities: caps,
        }
    }
}

/// Counts of cases by verdict.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Counts {
    /// Cases that regressed.
    pub regressed: u32,
    /// Cases that improved.
    pub improved: u32,
    /// Cases that passed.
    pub unchanged: u32,
    /// Cases with warnings (warn, cannot judge, drift).
    pub warnings: u32,
    /// Cases that are new.
    pub new: u32,
    /// Cases that are missing.
    pub missing: u32,
    /// Cases whose run is invalid.
    pub invalid: u32,
}

/// A difference that makes results and baseline incomparable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mismatch {
    /// What differs: the suite, the model, the GPU, a case's prompt.
    pub what: MismatchKind,
    /// The baseline's value.
    pub baseline: String,
    /// The results' value.
    pub current: String,
}

/// One case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseComparison {
    /// Case id.
    pub id: String,
    /// Its verdict.
    pub verdict: CaseVerdict,
    /// Per-metric comparisons (gated phases only), worst first.
    pub metrics: Vec<MetricComparison>,
    /// Similarity (0..1) of the greedy output with the baseline's, when both exist.
    pub output_similarity: Option<f64>,
    /// Why the case is invalid, drifted, new or missing; what else to know.
    pub notes: Vec<CaseNote>,
    /// The run's GPU figures per phase (empty without telemetry).
    #[serde(default)]
    pub gpu: Vec<PhaseGpu>,
}

/// The GPU figures of one phase of the current run, for the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseGpu {
    /// `cold` or `warm`.
    pub phase: String,
    /// Highest memory in use on any device, MiB.
    pub memory_peak_mib: Option<f64>,
    /// Highest mean memory in use, % of total.
    pub memory_used_pct: Option<f64>,
    /// Mean GPU utilisation, %.
    pub gpu_util_pct: Option<f64>,
    /// Mean power of all devices together, W.
    pub power_w: Option<f64>,
    /// Energy per output token, J.
    pub energy_per_token_j: Option<f64>,
}

impl PhaseGpu {
    /// The figures of every phase of `case` that has GPU samples.
    pub fn of(case: &crate::results::CaseResult) -> Vec<PhaseGpu> {
        case.phases
            .iter()
            .filter_map(|(name, p)| {
                let g = p.gpu.as_ref()?;
                let powers: Vec<f64> = g.devices.iter().filter_map(|d| d.power_w.map(|s| s.mean)).collect();
                Some(PhaseGpu {
                    phase: name.as_str().into(),
                    memory_peak_mib: g.memory_peak_mib,
                    memory_used_pct: g.memory_used_pct,
                    gpu_util_pct: g.gpu_util_pct,
                    power_w: (!powers.is_empty()).then(|| powers.iter().sum()),
                    energy_per_token_j: g.energy_per_token_j,
                })
            })
            .collect()
    }
}

/// One metric of one phase of one case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricComparison {
    /// Catalogue name, e.g. `ttft_median`.
    pub metric: String,
    /// `cold` or `warm`.
    pub phase: String,
    /// Display unit (`ms`, `tok/s`).
    pub unit: String,
    /// Which way is better.
    pub direction: Direction,
    /// The rule's level.
    pub level: Level,
    /// Baseline value.
    pub baseline: f64,
    /// Current value.
    pub current: f64,
    /// Relative change (current - baseline) / baseline; positive = higher.
    pub change: f64,
    /// The rule's relative tolerance (0.05 = 5%).
    pub tolerance: f64,
    /// Absolute changes below this are ignored (in `unit`).
    pub floor: f64,
    /// One-sided p-value of a change this large in its own direction, from
    /// the run-level test (see `spread_source`); `None` for GPU figures.
    pub p_value: Option<f64>,
    /// Requests on each side (baseline, current), over all runs.
    pub samples: [usize; 2],
    /// Runs on each side (baseline, current).
    pub runs: [usize; 2],
    /// Where the run-to-run part of the noise came from.
    pub spread_source: Option<crate::stats::runlevel::SpreadSource>,
    /// Run-to-run coefficient of variation beyond the requests' own spread
    /// (measured or configured); `None` when not seen.
    pub spread: Option<f64>,
    /// Standard error of the change, relative.
    pub noise: Option<f64>,
    /// Relative change in the bad direction beyond which the metric fails:
    /// the larger of the tolerance (or floor) and the noise bar.
    pub threshold: Option<f64>,
    /// Smallest relative change in the bad direction that this check
    /// catches 95% of the time (drift included); `None` when it cannot judge.
    pub min_detectable_change: Option<f64>,
    /// Repetitions per run that would let it catch twice the tolerance, when
    /// it cannot now and more requests can help.
    pub repetitions_needed: Option<u32>,
    /// Baseline runs that would let it catch twice the tolerance, when it
    /// cannot now and more runs can help.
    pub runs_needed: Option<u32>,
    /// The outcome.
    pub status: MetricStatus,
}
