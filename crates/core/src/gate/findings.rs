//! What the gate found, as data: every note, refusal and headline the
//! comparison carries is one of these enums, with the figures it rests on.
//! The gate decides verdicts from them ([`CaseNote::makes_invalid`]), never
//! from whether a sentence exists; the application's report layer turns them
//! into English or Korean words. A note that changes wording can therefore
//! never change a verdict.

use serde::{Deserialize, Serialize};

use crate::results::PhaseName;

/// Which side of a comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// The committed baseline.
    Baseline,
    /// The current results.
    Results,
}

/// A note about the whole comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum RunNote {
    /// `--allow-mismatch` made an incomparable pair be compared.
    MismatchAllowed,
    /// No results were given.
    NoResults,
    /// A run was interrupted or abandoned.
    Incomplete,
    /// The results hold no cases at all.
    NoCases,
    /// No case of the results is in the baseline.
    NoCaseInBaseline {
        /// Cases the baseline holds.
        baseline_cases: usize,
    },
    /// One run a side and no configured run-to-run spread: drift is invisible.
    DriftNotSeen,
    /// Main's history was given but gave no metric its spread: too few of
    /// its runs were on this environment.
    HistoryUnused {
        /// The history's profile.
        profile: String,
        /// Runs it holds.
        records: usize,
        /// Of those, runs on the current environment.
        same_environment: usize,
        /// Runs a spread needs at least.
        needed: usize,
    },
    /// A warning the runner recorded in the results (its own text).
    Runner {
        /// The runner's message, as recorded.
        message: String,
    },
}

/// A note about one case. Some make the case invalid
/// ([`CaseNote::makes_invalid`]); every other one makes it a warning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum CaseNote {
    /// The case's measurements cannot be trusted.
    Problem {
        /// The 1-based run it happened in, when the case has several runs.
        run: Option<usize>,
        /// What is wrong.
        problem: Problem,
    },
    /// A gated phase was measured on one side only.
    PhaseMissing {
        /// The phase.
        phase: PhaseName,
        /// The side that lacks it.
        missing_in: Side,
    },
    /// A phase ran no requests.
    NoRequests {
        /// The phase.
        phase: PhaseName,
    },
    /// Neither side has a phase the rules gate.
    NothingJudged,
    /// The case is new: not in the baseline.
    NotInBaseline,
    /// The case is in the baseline but not in the results.
    NotInResults,
    /// The run stopped before it reached the case.
    NotReached,
    /// The server sent no usage for some requests.
    UsageMissing {
        /// The phase.
        phase: PhaseName,
        /// Requests without usage.
        requests: u32,
    },
    /// Some requests needed a retry.
    Retried {
        /// The phase.
        phase: PhaseName,
        /// Requests retried.
        requests: u32,
    },
    /// A per-request metric has no usable samples on one side.
    NoSamples {
        /// Catalogue name of the metric.
        metric: String,
        /// The phase.
        phase: PhaseName,
        /// The side without samples.
        side: Side,
        /// The series the metric is computed from.
        series: String,
    },
    /// A GPU figure has no value on one side.
    NoGpuValue {
        /// Catalogue name of the metric.
        metric: String,
        /// The phase.
        phase: PhaseName,
        /// The side without a value.
        side: Side,
    },
    /// The greedy output differs from the baseline's.
    OutputDrift {
        /// Similarity of the outputs, 0 to 1.
        similarity: f64,
        /// The configured threshold, 0 to 1.
        threshold: f64,
    },
    /// Some metrics at warn or fail level cannot be judged.
    SomeCannotJudge,
}

impl CaseNote {
    /// Whether this note makes the case invalid (its figures are not judged).
    pub fn makes_invalid(&self) -> bool {
        matches!(
            self,
            CaseNote::Problem { .. }
                | CaseNote::PhaseMissing { .. }
                | CaseNote::NoRequests { .. }
                | CaseNote::NothingJudged
        )
    }
}

/// Why a case's measurements cannot be trusted ([`super::validity`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Problem {
    /// More requests failed than `[gate] max_error_rate` allows.
    ErrorRate {
        /// Failed requests.
        errors: u32,
        /// Requests judged (not cancelled).
        judged: u32,
        /// Failures by class, e.g. `("timeout", 2)`.
        classes: Vec<(String, u32)>,
        /// The allowed rate.
        allowed: f64,
    },
    /// The server returned fewer output tokens than asked for.
    ShortOutputs {
        /// Requests that came back short.
        requests: u32,
        /// Output tokens asked for.
        asked: u32,
    },
    /// The results list no phase for the case.
    NoPhases,
    /// A phase lists no requests.
    NoRequestsListed {
        /// The phase.
        phase: PhaseName,
    },
    /// A summary count disagrees with the requests listed.
    CountMismatch {
        /// The phase.
        phase: PhaseName,
        /// The summary key, e.g. `errors`.
        key: String,
        /// What the summary says.
        said: u32,
        /// What the requests hold.
        found: u32,
    },
    /// A completed request lacks a timing or has an impossible one.
    BadTiming {
        /// The phase.
        phase: PhaseName,
        /// Index in `requests[]`.
        index: usize,
        /// The field, e.g. `ttft_ms`.
        key: String,
        /// Its value; `None` when missing.
        value: Option<f64>,
    },
}

/// What differs between results and baseline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum MismatchKind {
    /// The suite's name.
    Suite,
    /// The suite's seed.
    SuiteSeed,
    /// The model served.
    Model,
    /// The API (chat or completions).
    Api,
    /// The serving engine.
    ServerEngine,
    /// The GPU model.
    Gpu,
    /// The GPU driver's major version.
    GpuDriverMajor,
    /// How many GPUs.
    GpuCount,
    /// GPU memory, MiB.
    GpuMemory,
    /// GPU power limit, W.
    GpuPowerLimit,
    /// GPU MIG mode.
    GpuMig,
    /// GPU ECC.
    GpuEcc,
    /// Whether application clocks were changed.
    GpuClocksChanged,
    /// How a case's prompt is built.
    PromptRecipe {
        /// The case.
        case: String,
    },
    /// A case's prompt text.
    PromptText {
        /// The case.
        case: String,
    },
    /// A case's output length.
    OutputTokens {
        /// The case.
        case: String,
    },
}

impl MismatchKind {
    /// Whether the difference is about one case's prompt or output length
    /// rather than the environment.
    pub fn is_per_case(&self) -> bool {
        matches!(
            self,
            MismatchKind::PromptRecipe { .. } | MismatchKind::PromptText { .. } | MismatchKind::OutputTokens { .. }
        )
    }
}

/// One metric's change, as the headline names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Change {
    /// Case id.
    pub case: String,
    /// Catalogue name.
    pub metric: String,
    /// `cold` or `warm`.
    pub phase: String,
    /// Relative change (current / baseline - 1).
    pub change: f64,
    /// Baseline value.
    pub baseline: f64,
    /// Current value.
    pub current: f64,
    /// Display unit.
    pub unit: String,
    /// Relative tolerance (0 when only a floor applies).
    pub tolerance: f64,
    /// Absolute floor, in the unit.
    pub floor: f64,
}

/// The one line that sums the comparison up, as data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Headline {
    /// Refused: the first difference, and how many more.
    NotCompared {
        /// What differs.
        what: MismatchKind,
        /// The baseline's value.
        baseline: String,
        /// The results' value.
        current: String,
        /// Further differences.
        more: usize,
    },
    /// Invalid: the first reason.
    Untrusted {
        /// The invalid case and its first note, when a case is the reason.
        case: Option<(String, CaseNote)>,
        /// The first run note, when no case is.
        note: Option<RunNote>,
    },
    /// Regressed: the metric furthest past its limit.
    Regressed {
        /// The change.
        change: Change,
    },
    /// Regressed without a regressed metric (output drift at fail level).
    RegressedCase {
        /// The regressed case and its first note.
        case: String,
        /// Its first note.
        note: Option<CaseNote>,
    },
    /// Improved beyond tolerance (the metric furthest past its limit, if any).
    Improved {
        /// Whether `on_improvement = "require-update"` asks for a baseline update.
        update_required: bool,
        /// The change.
        change: Option<Change>,
    },
    /// A warn-level change.
    Warning {
        /// The change.
        change: Change,
    },
    /// One run a side of too few requests to estimate noise.
    CannotJudgeOneRun {
        /// Catalogue name.
        metric: String,
        /// Case id.
        case: String,
        /// Requests in the current run.
        requests: usize,
        /// Requests a run needs for a within-run estimate.
        needed: usize,
    },
    /// A metric that cannot be judged, with the case's first note.
    CannotJudge {
        /// Catalogue name.
        metric: String,
        /// Case id.
        case: String,
        /// The case's first note.
        note: Option<CaseNote>,
    },
    /// A case with a warning note.
    CaseWarning {
        /// Case id.
        case: String,
        /// Its first note.
        note: Option<CaseNote>,
    },
    /// Warnings without a case to name.
    Warnings,
    /// Nothing changed beyond tolerance and noise.
    NoChange {
        /// Cases compared.
        cases: usize,
    },
}
