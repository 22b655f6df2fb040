//! Baseline files: `baselines/PROFILE.toml`, schema `infergate.baseline.v2`.
//!
//! A baseline is what the gate compares against: per case and phase the
//! per-request samples of each run it was recorded from (the run, one server
//! launch, is the statistical unit: several runs show how far the system
//! drifts between launches), the statistics the rules compare, the prompt
//! fingerprints and environment that decide comparability, and one greedy
//! output per case for the output-drift check. Files are written with a
//! stable key order and values rounded to 4 significant digits, so that
//! re-recording an unchanged system changes few lines; with
//! `--only-changed` a phase the gate would not report as changed keeps its
//! old runs and the diff is empty. Version 1 files (one run, `samples`) are
//! still read, as a baseline of one run.

use std::borrow::Cow;
use std::collections::BTreeMap;

use anyhow::{Context as _, anyhow, bail};
use serde::{Deserialize, Serialize};

use crate::metrics::{CATALOGUE, Series, Source};
use crate::results::{PhaseName, PhaseResult, Results};

/// Schema identifier of baseline files.
pub const SCHEMA: &str = "infergate.baseline.v2";

/// The schema of one-run baseline files, still read.
pub const SCHEMA_V1: &str = "infergate.baseline.v1";

/// The folder baselines live in, relative to the working directory.
pub const DIR: &str = "baselines";

/// The largest baseline file read (256 MiB). A baseline of 1,000 cases, each
/// with 10 runs of 100 requests, is about 70 MB; loading one takes about
/// twice its size in memory.
pub const MAX_FILE_BYTES: u64 = 256 << 20;

/// A baseline file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// Profile name (GPU x model x server), the file's stem.
    pub profile: String,
    /// When the last of its runs finished (RFC 3339).
    pub recorded_at: String,
    /// Run ids of the results it was recorded from, in recording order.
    pub run_ids: Vec<String>,
    /// infergate version that recorded it.
    pub tool_version: String,
    /// Git commit the results were recorded at.
    pub git_commit: Option<String>,
    /// The suite.
    pub suite: BaselineSuite,
    /// What must match for a comparison to be meaningful.
    pub environment: Fingerprint,
    /// Per case, by id.
    pub cases: BTreeMap<String, BaselineCase>,
}

/// The suite of a baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineSuite {
    /// Suite name.
    pub name: String,
    /// Prompt synthesis seed.
    pub seed: u64,
}

/// The environment fingerprint: what must be the same on both sides.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fingerprint {
    /// Model name.
    pub model: String,
    /// `chat` or `completions`.
    pub api: String,
    /// Serving engine (`owned_by` of the model, e.g. `vllm`, `llamacpp`).
    pub engine: Option<String>,
    /// Version the server reported; informational (a version bump is what a gate is for).
    pub server_version: Option<String>,
    /// GPU name, when GPU telemetry is available.
    pub gpu_name: Option<String>,
    /// GPU driver version, when known (its major version must match).
    pub gpu_driver: Option<String>,
    /// Number of GPUs sampled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_count: Option<u32>,
    /// Memory of the first GPU, MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_memory_mib: Option<u64>,
    /// Enforced power limit of the first GPU, W.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_power_limit_w: Option<u32>,
    /// MIG mode of the first GPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_mig: Option<bool>,
    /// ECC of the first GPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_ecc: Option<bool>,
    /// Whether application clocks differ from the default on the first GPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_clocks_locked: Option<bool>,
}

impl Fingerprint {
    /// The fingerprint of a results file.
    pub fn of(results: &Results) -> Fingerprint {
        let s = &results.environment.server;
        let gpu = &results.environment.gpu;
        let first = gpu.devices.first();
        Fingerprint {
            model: s.model.clone(),
            api: s.api.clone(),
            engine: s.owned_by.clone(),
            server_version: s.reported_version.clone(),
            gpu_name: gpu_name(&results.environment.gpu),
            gpu_driver: results.environment.gpu.driver_version.clone(),
            gpu_count: (!gpu.devices.is_empty()).then_some(gpu.devices.len() as u32),
            gpu_memory_mib: first.and_then(|d| d.memory_total_mib).map(|m| m.round() as u64),
            gpu_power_limit_w: first.and_then(|d| d.power_limit_w).map(|w| w.round() as u32),
            gpu_mig: first.and_then(|d| d.mig_mode),
            gpu_ecc: first.and_then(|d| d.ecc),
            gpu_clocks_locked: first.and_then(|d| d.clocks_locked),
        }
    }
}

/// The GPU model(s) of a run: distinct device names joined with ` + `.
fn gpu_name(gpu: &crate::telemetry::GpuInfo) -> Option<String> {
    let mut names: Vec<&str> = gpu.devices.iter().filter_map(|d| d.name.as_deref()).collect();
    names.dedup();
    (!names.is_empty()).then(|| names.join(" + "))
}

/// One case of a baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineCase {
    /// Scenario name.
    pub scenario: String,
    /// Target prompt tokens.
    pub context_tokens: u32,
    /// Output tokens asked for.
    pub output_tokens: u32,
    /// Prompt tokens achieved.
    pub prompt_tokens: u32,
    /// Prompt recipe fingerprint (must match to compare).
    pub template_fingerprint: String,
    /// Exact warm prompt fingerprint.
    pub text_fingerprint: String,
    /// Greedy output of the first good warm request.
    pub output_text: Option<String>,
    /// The cold phase.
    pub cold: Option<BaselinePhase>,
    /// The warm phase.
    pub warm: Option<BaselinePhase>,
}

impl BaselineCase {
    /// The phase by name.
    pub fn phase(&self, name: PhaseName) -> Option<&BaselinePhase> {
        match name {
            PhaseName::Cold => self.cold.as_ref(),
            PhaseName::Warm => self.warm.as_ref(),
        }
    }

    /// Run ids of the case's runs (those of its warm phase, else its cold phase).
    pub fn run_ids(&self) -> Vec<&str> {
        self.warm
            .as_ref()
            .or(self.cold.as_ref())
            .map_or_else(Vec::new, |p| p.runs.iter().map(|r| r.run.as_str()).collect())
    }
}

/// One phase of a baseline case.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselinePhase {
    /// Requests sent, over all runs.
    pub requests: u32,
    /// Requests that failed, over all runs.
    pub errors: u32,
    /// The values the rules compare, by catalogue name: for per-request
    /// metrics the geometric mean of the runs' values, for GPU figures the
    /// median of the runs'.
    pub stats: BTreeMap<String, f64>,
    /// Each run's per-request samples, in recording order.
    pub runs: Vec<RunSamples>,
}

/// The per-request samples of one run of one phase, by series.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSamples {
    /// Run id of the results the samples came from.
    pub run: String,
    /// Output tokens / E2E, tokens/s.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tokens_per_second: Vec<f64>,
    /// Decode tokens per second.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub decode_tokens_per_second: Vec<f64>,
    /// Time to first token, ms.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ttft_ms: Vec<f64>,
    /// Time per output token, ms.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tpot_ms: Vec<f64>,
    /// End-to-end latency, ms.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub e2e_ms: Vec<f64>,
}

impl RunSamples {
    /// The samples of a series (empty when absent).
    pub fn series(&self, s: Series) -> &[f64] {
        match s {
            Series::TokensPerSecond => &self.tokens_per_second,
            Series::DecodeTokensPerSecond => &self.decode_tokens_per_second,
            Series::TtftMs => &self.ttft_ms,
            Series::TpotMs => &self.tpot_ms,
            Series::E2eMs => &self.e2e_ms,
        }
    }

    fn series_mut(&mut self, s: Series) -> &mut Vec<f64> {
        match s {
            Series::TokensPerSecond => &mut self.tokens_per_second,
            Series::DecodeTokensPerSecond => &mut self.decode_tokens_per_second,
            Series::TtftMs => &mut self.ttft_ms,
            Series::TpotMs => &mut self.tpot_ms,
            Series::E2eMs => &mut self.e2e_ms,
        }
    }

    /// The samples of one phase of one run, rounded to 4 significant digits.
    fn of(run: &str, p: &PhaseResult) -> RunSamples {
        let mut out = RunSamples { run: run.to_string(), ..RunSamples::default() };
        for s in Series::ALL {
            *out.series_mut(s) = s.samples(&p.requests).into_iter().map(round4).collect();
        }
        out
    }
}

impl BaselinePhase {
    /// A phase recorded from the same phase of several runs.
    fn from_runs(phases: &[(&str, &PhaseResult)]) -> BaselinePhase {
        let mut phase = BaselinePhase {
            requests: phases.iter().map(|(_, p)| p.summary.requests).sum(),
            errors: phases.iter().map(|(_, p)| p.summary.errors).sum(),
            stats: BTreeMap::new(),
            runs: phases.iter().map(|(id, p)| RunSamples::of(id, p)).collect(),
        };
        for m in CATALOGUE {
            if let Source::Gpu(g) = m.source {
                let values: Vec<f64> =
                    phases.iter().filter_map(|(_, p)| p.gpu.as_ref().and_then(|gpu| g.of(gpu))).collect();
                if let Some(s) = crate::stats::summarize(&values) {
                    phase.stats.insert(m.name.to_string(), round4(s.median));
                }
            }
        }
        phase.recompute_stats();
        phase
    }

    /// Recomputes the per-request statistics in `stats` from the runs (GPU figures stay).
    pub fn recompute_stats(&mut self) {
        for m in CATALOGUE {
            let Some((series, statistic)) = m.request_source() else { continue };
            let logs: Vec<f64> = self
                .runs
                .iter()
                .filter_map(|r| statistic.of(r.series(series)))
                .filter(|v| *v > 0.0)
                .map(f64::ln)
                .collect();
            match crate::stats::mean(&logs) {
                Some(v) if logs.len() == self.runs.len() => self.stats.insert(m.name.to_string(), round4(v.exp())),
                _ => self.stats.remove(m.name),
            };
        }
    }

    /// The runs' samples of a series, one slice per run.
    pub fn series(&self, s: Series) -> Vec<Cow<'_, [f64]>> {
        self.runs.iter().map(|r| Cow::Borrowed(r.series(s))).collect()
    }
}

/// Rounds to 4 significant digits: enough for any gate, few digits to churn.
pub fn round4(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let digits = x.abs().log10().floor() as i32;
    // Divide by an exact power of ten (never multiply by an inexact 0.1), so
    // the result prints as the short decimal it is.
    if digits >= 3 {
        let unit = 10f64.powi(digits - 3);
        (x / unit).round() * unit
    } else {
        let scale = 10f64.powi(3 - digits);
        (x * scale).round() / scale
    }
}

impl Baseline {
    /// A baseline recorded from one run (only its complete, error-free
    /// phases are meaningful; the caller refuses the others).
    pub fn from_results(results: &Results, profile: &str) -> Baseline {
        Baseline::from_runs(std::slice::from_ref(results), profile)
    }

    /// A baseline recorded from several runs of the same suite (the caller
    /// checks that they are comparable): every case gets one entry per run
    /// that has it, in the order given. The header describes the last run.
    pub fn from_runs(runs: &[Results], profile: &str) -> Baseline {
        let mut ids: Vec<&str> = Vec::new();
        for r in runs {
            for c in &r.cases {
                if !ids.contains(&c.id.as_str()) {
                    ids.push(&c.id);
                }
            }
        }
        let cases = ids
            .into_iter()
            .filter_map(|id| {
                let found: Vec<(&str, &crate::results::CaseResult)> = runs
                    .iter()
                    .filter_map(|r| r.cases.iter().find(|c| c.id == id).map(|c| (r.run_id.as_str(), c)))
                    .collect();
                let (_, first) = *found.first()?;
                let phase = |n: PhaseName| {
                    let phases: Vec<(&str, &PhaseResult)> =
                        found.iter().filter_map(|(run, c)| c.phases.get(&n).map(|p| (*run, p))).collect();
                    (!phases.is_empty()).then(|| BaselinePhase::from_runs(&phases))
                };
                let output_text = found.iter().find_map(|(_, c)| {
                    c.phases
                        .get(&PhaseName::Warm)
                        .and_then(|p| p.requests.iter().find(|r| r.ok).and_then(|r| r.output_text.clone()))
                });
                Some((
                    id.to_string(),
                    BaselineCase {
                        scenario: first.scenario.clone(),
                        context_tokens: first.context_tokens,
                        output_tokens: first.output_tokens,
                        prompt_tokens: first.prompt.tokens,
                        template_fingerprint: first.prompt.template_fingerprint.clone(),
                        text_fingerprint: first.prompt.text_fingerprint.clone(),
                        output_text,
                        cold: phase(PhaseName::Cold),
                        warm: phase(PhaseName::Warm),
                    },
                ))
            })
            .collect();
        let last = runs.last();
        Baseline {
            schema: SCHEMA.into(),
            profile: profile.into(),
            recorded_at: last.map(|r| r.finished_at.clone()).unwrap_or_default(),
            run_ids: runs.iter().map(|r| r.run_id.clone()).collect(),
            tool_version: last.map(|r| r.environment.tool_version.clone()).unwrap_or_default(),
            git_commit: last.and_then(|r| r.environment.git_commit.clone()),
            suite: BaselineSuite {
                name: last.map(|r| r.suite.name.clone()).unwrap_or_default(),
                seed: last.map_or(0, |r| r.suite.seed),
            },
            environment: last.map(Fingerprint::of).unwrap_or_default(),
            cases,
        }
    }

    /// Fewest runs any recorded case phase has.
    pub fn min_runs(&self) -> usize {
        self.cases.values().flat_map(|c| [&c.cold, &c.warm]).flatten().map(|p| p.runs.len()).min().unwrap_or(0)
    }

    /// Parses a baseline file's text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> anyhow::Result<Baseline> {
        #[derive(Deserialize)]
        struct Header {
            schema: Option<String>,
        }
        let header: Header = crate::tomldoc::parse_toml(text, origin).map_err(|e| anyhow!(e))?;
        let b = match header.schema.as_deref() {
            Some(SCHEMA) => crate::tomldoc::parse_toml::<Baseline>(text, origin).map_err(|e| anyhow!(e))?,
            Some(SCHEMA_V1) => {
                crate::tomldoc::parse_toml::<v1::Baseline>(text, origin).map_err(|e| anyhow!(e))?.upgrade()
            }
            Some(other) => bail!("{origin}: schema is `{other}`, this infergate reads `{SCHEMA}` and `{SCHEMA_V1}`"),
            None => bail!("{origin}: missing field `schema`: not an infergate baseline"),
        };
        let mut b = b;
        b.validate(origin)?;
        // The samples are the record; the per-request statistics are derived
        // from them, so an edited statistic cannot disagree with them.
        for phase in b.cases.values_mut().flat_map(|c| [&mut c.cold, &mut c.warm]).flatten() {
            phase.recompute_stats();
        }
        Ok(b)
    }

    /// Refuses what `baseline update` never writes, naming the key: no
    /// cases, a case without phases, a phase without runs or requests, a
    /// run whose throughput, TTFT and E2E series are empty or of different
    /// lengths, more samples than requests, a sample or statistic that is
    /// negative or not a number. What loads can be gated against.
    pub fn validate(&self, origin: &str) -> anyhow::Result<()> {
        const REQUIRED: [Series; 3] = [Series::TokensPerSecond, Series::TtftMs, Series::E2eMs];
        if self.cases.is_empty() {
            bail!(
                "{origin}: `cases` is empty: a baseline without cases gates nothing; record it again with `infergate baseline update`"
            );
        }
        for (id, case) in &self.cases {
            if case.cold.is_none() && case.warm.is_none() {
                bail!("{origin}: cases.\"{id}\" has neither a `cold` nor a `warm` phase");
            }
            for (name, phase) in [("cold", &case.cold), ("warm", &case.warm)] {
                let Some(phase) = phase else { continue };
                let key = format!("cases.\"{id}\".{name}");
                if phase.runs.is_empty() {
                    bail!("{origin}: {key}.runs is empty: the phase has no recorded run");
                }
                if phase.requests == 0 || phase.errors > phase.requests {
                    bail!("{origin}: {key}: requests = {} with errors = {}", phase.requests, phase.errors);
                }
                if let Some((m, v)) = phase.stats.iter().find(|(_, v)| !v.is_finite() || **v < 0.0) {
                    bail!("{origin}: {key}.stats.{m}: invalid value {v}");
                }
                let mut samples = 0usize;
                for (i, run) in phase.runs.iter().enumerate() {
                    let key = format!("{key}.runs[{i}]");
                    if phase.runs[..i].iter().any(|r| r.run == run.run) {
                        bail!("{origin}: {key}.run: `{}` is recorded twice", run.run);
                    }
                    for series in Series::ALL {
                        if let Some(v) = run.series(series).iter().find(|v| !v.is_finite() || **v < 0.0) {
                            bail!("{origin}: {key}.{}: invalid sample {v}", series.key());
                        }
                    }
                    let n = run.series(Series::E2eMs).len();
                    for series in REQUIRED {
                        let len = run.series(series).len();
                        if len == 0 {
                            bail!(
                                "{origin}: {key}.{}: no samples (missing or empty); every recorded run has them",
                                series.key()
                            );
                        }
                        if len != n {
                            bail!(
                                "{origin}: {key}.{}: {len} samples, but {} has {n}: one per completed request on each",
                                series.key(),
                                Series::E2eMs.key()
                            );
                        }
                    }
                    for series in [Series::TpotMs, Series::DecodeTokensPerSecond] {
                        let len = run.series(series).len();
                        if len > n {
                            bail!("{origin}: {key}.{}: {len} samples, more than the {n} requests", series.key());
                        }
                    }
                    samples += n;
                }
                if samples > phase.requests as usize {
                    bail!("{origin}: {key}: requests = {} but the runs hold {samples} samples", phase.requests);
                }
            }
        }
        Ok(())
    }

    /// The file text: stable key order, 4 significant digits.
    pub fn to_toml(&self) -> anyhow::Result<String> {
        let body = toml::to_string(self).context("cannot serialize the baseline")?;
        Ok(format!(
            "# infergate baseline: written by `infergate baseline update`; review changes in the diff it prints.\n{body}"
        ))
    }
}

/// Version 1 files: one run, its samples under `samples`.
mod v1 {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::{BaselineSuite, Fingerprint, RunSamples};
    use crate::metrics::Series;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct Baseline {
        schema: String,
        profile: String,
        recorded_at: String,
        run_id: String,
        tool_version: String,
        git_commit: Option<String>,
        suite: BaselineSuite,
        environment: Fingerprint,
        cases: BTreeMap<String, Case>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Case {
        scenario: String,
        context_tokens: u32,
        output_tokens: u32,
        prompt_tokens: u32,
        template_fingerprint: String,
        text_fingerprint: String,
        output_text: Option<String>,
        cold: Option<Phase>,
        warm: Option<Phase>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Phase {
        requests: u32,
        errors: u32,
        stats: BTreeMap<String, f64>,
        samples: BTreeMap<String, Vec<f64>>,
    }

    impl Baseline {
        pub(super) fn upgrade(self) -> super::Baseline {
            let run_id = self.run_id;
            let phase = |p: Option<Phase>| {
                p.map(|p| {
                    let mut run = RunSamples { run: run_id.clone(), ..RunSamples::default() };
                    for s in Series::ALL {
                        if let Some(v) = p.samples.get(s.key()) {
                            run.series_mut(s).clone_from(v);
                        }
                    }
                    super::BaselinePhase { requests: p.requests, errors: p.errors, stats: p.stats, runs: vec![run] }
                })
            };
            let _ = self.schema;
            super::Baseline {
                schema: super::SCHEMA.into(),
                profile: self.profile,
                recorded_at: self.recorded_at,
                run_ids: vec![run_id.clone()],
                tool_version: self.tool_version,
                git_commit: self.git_commit,
                suite: self.suite,
                environment: self.environment,
                cases: self
                    .cases
                    .into_iter()
                    .map(|(id, c)| {
                        (
                            id,
                            super::BaselineCase {
                                scenario: c.scenario,
                                context_tokens: c.context_tokens,
                                output_tokens: c.output_tokens,
                                prompt_tokens: c.prompt_tokens,
                                template_fingerprint: c.template_fingerprint,
                                text_fingerprint: c.text_fingerprint,
                                output_text: c.output_text,
                                cold: phase(c.cold),
                                warm: phase(c.warm),
                            },
                        )
                    })
                    .collect(),
            }
        }
    }
}

/// How `baseline update` merges new results into an existing baseline.
#[derive(Debug, Clone, Default)]
pub struct UpdateOptions {
    /// Only these cases; the rest keep their old values.
    pub cases: Option<crate::filter::CaseFilter>,
    /// Output similarity at or above which the old greedy output is kept.
    pub drift_min_similarity: f64,
}

/// Whether a case's phase is unchanged between two recordings: (case id, phase, old, new).
pub type Unchanged<'a> = &'a dyn Fn(&str, PhaseName, &BaselinePhase, &BaselinePhase) -> bool;

/// Merges `new` into `old`: cases outside `opts.cases` keep their old entry;
/// with `unchanged`, a selected case's phase that it calls unchanged
/// (`--only-changed`: the gate would not report it) keeps its old runs.
pub fn merge(
    old: Option<&Baseline>,
    mut new: Baseline,
    opts: &UpdateOptions,
    unchanged: Option<Unchanged<'_>>,
) -> Baseline {
    let Some(old) = old else { return new };
    let selected = |id: &str| opts.cases.as_ref().is_none_or(|f| f.matches(id));
    // Cases outside the selection keep their old entry (or stay absent).
    let mut cases = BTreeMap::new();
    for (id, case) in &old.cases {
        if !selected(id) {
            cases.insert(id.clone(), case.clone());
        }
    }
    for (id, mut case) in std::mem::take(&mut new.cases) {
        if !selected(&id) {
            continue;
        }
        if let Some(unchanged) = unchanged {
            if let Some(prev) = old.cases.get(&id).filter(|p| p.template_fingerprint == case.template_fingerprint) {
                let keep = |name: PhaseName, old: Option<&BaselinePhase>, new: Option<BaselinePhase>| match (old, new) {
                    (Some(o), Some(n)) if unchanged(&id, name, o, &n) => Some(o.clone()),
                    (_, n) => n,
                };
                case.cold = keep(PhaseName::Cold, prev.cold.as_ref(), case.cold);
                case.warm = keep(PhaseName::Warm, prev.warm.as_ref(), case.warm);
                if let (Some(a), Some(b)) = (&prev.output_text, &case.output_text) {
                    if similarity(a, b) >= opts.drift_min_similarity {
                        case.output_text = Some(a.clone());
                    }
                }
            }
        }
        cases.insert(id, case);
    }
    new.cases = cases;
    if unchanged.is_some() && new.cases == old.cases && new.suite == old.suite && new.environment == old.environment {
        // Nothing but the header would change: keep the file as it is.
        return old.clone();
    }
    // The header lists every run the file still holds.
    let mut ids: Vec<String> = Vec::new();
    for id in old.run_ids.iter().chain(new.run_ids.iter()) {
        let used = new.cases.values().any(|c| c.run_ids().contains(&id.as_str()));
        if used && !ids.contains(id) {
            ids.push(id.clone());
        }
    }
    new.run_ids = ids;
    new
}

/// Character-level similarity ratio (0..1) of two texts.
pub fn similarity(a: &str, b: &str) -> f64 {
    if a == b {
        return 1.0;
    }
    f64::from(similar::TextDiff::from_chars(a, b).ratio())
}

/// A unified diff of two file texts (empty when equal).
pub fn unified_diff(old: &str, new: &str, old_name: &str, new_name: &str) -> String {
    if old == new {
        return String::new();
    }
    similar::TextDiff::from_lines(old, new).unified_diff().context_radius(3).header(old_name, new_name).to_string()
}

/// The longest file or folder name under `baselines/`, in bytes.
pub const MAX_NAME_BYTES: usize = 200;

/// A profile name: letters, digits, `.`, `_`, `-`, not starting with `.`, no `.toml`.
pub fn is_profile_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('.')
        && !s.ends_with(".toml")
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_to_four_significant_digits() {
        assert_eq!(round4(123.456), 123.5);
        assert_eq!(round4(0.0012345), 0.001235);
        assert_eq!(round4(98765.0), 98770.0);
        assert_eq!(round4(-2.5), -2.5);
        assert_eq!(round4(0.0), 0.0);
        assert_eq!(format!("{}", round4(12.3456)), "12.35");
        for (x, printed) in [(98765.4, "98770"), (1234567.0, "1235000"), (0.000123456, "0.0001235"), (999.95, "1000")] {
            assert_eq!(format!("{}", round4(x)), printed);
        }
    }

    #[test]
    fn file_round_trips_byte_for_byte() {
        let r = crate::testing::results(&["a/1", "b/2"], 3, 10, 1.0, 0.03);
        let b = Baseline::from_results(&r, "p");
        let text = b.to_toml().unwrap();
        let back = Baseline::parse(&text, "p.toml").unwrap();
        assert_eq!(back, b);
        assert_eq!(back.to_toml().unwrap(), text);
        // Every number has at most 4 significant digits.
        for run in &b.cases["a/1"].warm.as_ref().unwrap().runs {
            for v in Series::ALL.iter().flat_map(|s| run.series(*s)) {
                assert_eq!(*v, round4(*v));
            }
        }
    }

    #[test]
    fn corrupt_files_name_the_line() {
        let parse = |text: &str| format!("{:#}", Baseline::parse(text, "bad.toml").unwrap_err());
        let err = parse("schema = \"infergate.baseline.v1\"\nprofile = 3\n");
        assert!(err.contains("bad.toml:2") && err.contains("profile"), "{err}");
        let err = parse("schema = \"other\"\n");
        assert!(err.contains("bad.toml: schema is `other`") && err.contains(SCHEMA), "{err}");
        assert!(parse("profile = \"p\"\n").contains("missing field `schema`"));
        // Version 2 keys are checked too: a misspelled series names its line.
        let err = parse(
            "schema = \"infergate.baseline.v2\"\nprofile = \"p\"\nrecorded_at = \"x\"\nrun_ids = []\ntool_version = \"0\"\n[suite]\nname = \"q\"\nseed = 1\n[environment]\nmodel = \"m\"\napi = \"chat\"\n[cases.\"a/1\"]\nscenario = \"a\"\ncontext_tokens = 1\noutput_tokens = 1\nprompt_tokens = 1\ntemplate_fingerprint = \"t\"\ntext_fingerprint = \"t\"\n[[cases.\"a/1\".warm.runs]]\nrun = \"r\"\nttft = [1.0]\n",
        );
        assert!(err.contains("bad.toml:") && err.contains("ttft"), "{err}");
    }

    #[test]
    fn similarity_ratio() {
        assert_eq!(similarity("abc", "abc"), 1.0);
        assert!(similarity("fn main() {}", "fn main() { }") > 0.9);
        assert!(similarity("completely", "different!") < 0.5);
    }
}
