//! The full report: the user's Korean "sLLM 성능 테스트 보고서", rebuilt from
//! infergate's own results files, in Korean or in English.
//!
//! [`build`] is a pure function from results to [`FullReport`], every number
//! the report prints (also written as `report.json`); [`charts`] turns it into
//! chart data for [`crate::report::plots`], its titles and labels from the
//! words of [`crate::report::words`]; [`render`] fills a template. All other
//! words live in the two templates under `src/report/templates/` (and a user
//! template may replace them): Rust hands over numbers, model names, keys and
//! flags, plus filters that format numbers and escape Markdown, so that a
//! missing figure prints as "—" and never as a zero.
//!
//! Several results files may hold different models (one row per model, keyed by
//! `environment.server.model`, in order of first appearance) or repeated runs of
//! one model (their requests and GPU samples are pooled).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use minijinja::value::Serde;
use minijinja::{Environment, Value, context};
use serde::Serialize;

use crate::report::plots::{BarChart, BarGroup, Chart, LineChart, LineSeries, PlotFile};
use crate::report::render::{base_environment, template_error, text_of};
use crate::report::words::Words;
use crate::results::{CaseResult, PhaseName, PhaseResult, Results};
use crate::stats::{self, Summary};
use crate::telemetry::GpuSample;

/// Schema identifier of the serialized [`FullReport`].
pub const SCHEMA: &str = "infergate.full_report.v1";

/// Start-up is "fast" when the initial mean response time is at most this many
/// times the continuous one.
pub const FAST_START_MAX_RATIO: f64 = 1.2;
/// Start-up is "slow" when the initial mean response time is at least this many
/// times the continuous one (in between: "moderate").
pub const SLOW_START_MIN_RATIO: f64 = 2.0;
/// Throughput is "high" from this mean continuous tokens per second.
pub const HIGH_THROUGHPUT_TOK_S: f64 = 50.0;
/// Throughput is "medium" from this mean continuous tokens per second (below: "low").
pub const MEDIUM_THROUGHPUT_TOK_S: f64 = 20.0;
/// Memory use is "high" from this peak GPU memory, % of total.
pub const HIGH_MEMORY_PCT: f64 = 90.0;
/// Memory use is "moderate" from this peak GPU memory, % of total (below: "low").
pub const MODERATE_MEMORY_PCT: f64 = 60.0;

/// The built-in Korean template.
const KO_TEMPLATE: &str = include_str!("templates/full.ko.md.j2");
/// The built-in English template.
const EN_TEMPLATE: &str = include_str!("templates/full.en.md.j2");

pub use super::words::Lang;

impl Lang {
    /// The file name of the built-in template.
    pub fn template_name(self) -> &'static str {
        match self {
            Lang::Ko => "full.ko.md.j2",
            Lang::En => "full.en.md.j2",
        }
    }

    /// The built-in template's source.
    pub fn builtin_template(self) -> &'static str {
        match self {
            Lang::Ko => KO_TEMPLATE,
            Lang::En => EN_TEMPLATE,
        }
    }
}

/// All numbers of the report (written as `report.json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FullReport {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// The latest `finished_at` of the results: the report is dated by its data,
    /// so rendering the same results twice gives the same report.
    pub generated_at: Option<String>,
    /// The earliest `started_at` of the results.
    pub started_at: Option<String>,
    /// The latest `finished_at` of the results.
    pub finished_at: Option<String>,
    /// The results files, in the order given.
    pub sources: Vec<Source>,
    /// The suites that were run (distinct, in order of first appearance).
    pub suites: Vec<SuiteRef>,
    /// Every context length of every case, ascending.
    pub contexts: Vec<u32>,
    /// Every scenario, in order of first appearance.
    pub scenarios: Vec<String>,
    /// The GPU environments, each with the models measured on it.
    pub gpus: Vec<GpuEnvironment>,
    /// Whether any model has GPU samples.
    pub any_gpu: bool,
    /// Per model, in order of first appearance.
    pub models: Vec<ModelReport>,
    /// Per scenario, the continuous (warm) phase of every model.
    pub scenario_tables: Vec<ScenarioTable>,
    /// The thresholds of the characterisation.
    pub thresholds: Thresholds,
    /// The recommended model per use, chosen by the numbers.
    pub recommendations: Recommendations,
    /// Memory in use over time, per phase, from the first results file of the
    /// first model (empty without telemetry).
    pub timeline: Vec<TimelineSeries>,
}

/// One results file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Source {
    /// The path it was read from.
    pub path: String,
    /// Its run id.
    pub run_id: String,
    /// The model it measured.
    pub model: String,
    /// Wall-clock start, RFC 3339.
    pub started_at: String,
    /// Wall-clock end, RFC 3339.
    pub finished_at: String,
    /// False when the run was interrupted.
    pub complete: bool,
}

/// A suite that was run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SuiteRef {
    /// Suite name.
    pub name: String,
    /// `builtin` or the suite file's path.
    pub source: String,
}

/// A GPU environment (status, driver, devices) shared by one or more models.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GpuEnvironment {
    /// The models measured in it.
    pub models: Vec<String>,
    /// `ok`, `unavailable` or `off`.
    pub status: String,
    /// Why telemetry was unavailable.
    pub reason: Option<String>,
    /// Driver version.
    pub driver_version: Option<String>,
    /// The devices.
    pub devices: Vec<GpuDeviceRef>,
}

/// A GPU device as the report shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GpuDeviceRef {
    /// NVML index.
    pub index: u32,
    /// Product name.
    pub name: Option<String>,
    /// Total memory, MiB.
    pub memory_total_mib: Option<f64>,
}

/// Whether a model has GPU figures, and why not.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GpuAvailability {
    /// `environment.gpu.status` of its (first) run.
    pub status: String,
    /// `environment.gpu.reason`, the first one given.
    pub reason: Option<String>,
    /// Whether any phase of any run has GPU samples.
    pub has_samples: bool,
}

/// Everything about one model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelReport {
    /// `environment.server.model`.
    pub model: String,
    /// Results files pooled into this row.
    pub runs: usize,
    /// The server's `owned_by`, a hint at the engine.
    pub engine: Option<String>,
    /// The version the server reported.
    pub version: Option<String>,
    /// Seconds from launch to ready, mean over the runs whose server
    /// infergate started.
    pub time_to_ready_s: Option<f64>,
    /// GPU memory in use before the first request, MiB, mean over runs.
    pub memory_after_load_mib: Option<f64>,
    /// GPU telemetry status.
    pub gpu: GpuAvailability,
    /// Initial loading (`cold`), over all cases.
    pub cold: PhaseStats,
    /// Continuous response (`warm`), over all cases.
    pub warm: PhaseStats,
    /// From initial to continuous, (continuous − initial) / initial × 100.
    pub change: Change,
    /// Initial mean response time / continuous mean response time.
    pub startup_ratio: Option<f64>,
    /// Highest GPU memory in use over both phases, % of total.
    pub peak_memory_pct: Option<f64>,
    /// The characterisation by the thresholds.
    pub traits: Traits,
    /// Per context length, TTFT of both phases.
    pub contexts: Vec<ContextStats>,
}

/// Statistics of one phase over a set of cases.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PhaseStats {
    /// Requests sent.
    pub requests: u32,
    /// Requests that failed (left out of every figure).
    pub errors: u32,
    /// End-to-end time (`total_time`) of completed requests, seconds.
    pub total_time_s: Option<Summary>,
    /// Output tokens per second of completed requests.
    pub tokens_per_second: Option<Summary>,
    /// Time to first token, ms.
    pub ttft_ms: Option<Summary>,
    /// Time per output token, ms.
    pub tpot_ms: Option<Summary>,
    /// GPU figures, absent without samples.
    pub gpu: Option<PhaseGpu>,
}

/// GPU figures of one phase over a set of cases.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhaseGpu {
    /// Memory in use, % of total, over every sample.
    pub memory_pct: Option<Summary>,
    /// GPU utilisation, %, over every sample.
    pub gpu_util_pct: Option<Summary>,
    /// Mean over cases of each case's highest memory %.
    pub mean_case_max_memory_pct: Option<f64>,
    /// Mean over cases of each case's highest GPU utilisation %.
    pub mean_case_max_gpu_util_pct: Option<f64>,
    /// Highest memory % of any sample.
    pub peak_memory_pct: Option<f64>,
}

/// Relative changes between initial and continuous responses, %, signed as
/// the user's own report signs them: positive when continuous responses are
/// faster, for both figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Change {
    /// Of the mean response time: (initial − continuous) / initial × 100
    /// (13.99 s then 25.53 s is −82.49%).
    pub total_time_pct: Option<f64>,
    /// Of the mean tokens per second: (continuous − initial) / initial × 100.
    pub tokens_per_second_pct: Option<f64>,
}

/// Start-up by [`FAST_START_MAX_RATIO`] and [`SLOW_START_MIN_RATIO`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StartUp {
    /// Initial at most 1.2 × continuous.
    Fast,
    /// In between.
    Moderate,
    /// Initial at least 2 × continuous.
    Slow,
}

/// Throughput by [`HIGH_THROUGHPUT_TOK_S`] and [`MEDIUM_THROUGHPUT_TOK_S`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Throughput {
    /// At least 50 tok/s.
    High,
    /// At least 20 tok/s.
    Medium,
    /// Below.
    Low,
}

/// Memory use by [`HIGH_MEMORY_PCT`] and [`MODERATE_MEMORY_PCT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MemoryUse {
    /// At least 90%.
    High,
    /// At least 60%.
    Moderate,
    /// Below.
    Low,
}

/// A model's characterisation; absent where the figure is missing.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Traits {
    /// From the start-up ratio.
    pub start: Option<StartUp>,
    /// From the mean continuous tokens per second.
    pub throughput: Option<Throughput>,
    /// From the peak GPU memory %.
    pub memory: Option<MemoryUse>,
}

/// TTFT of one context length.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContextStats {
    /// Target prompt length, tokens.
    pub context_tokens: u32,
    /// Initial loading TTFT, ms.
    pub cold_ttft_ms: Option<Summary>,
    /// Continuous response TTFT, ms.
    pub warm_ttft_ms: Option<Summary>,
}

/// One scenario's continuous phase, per model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScenarioTable {
    /// Scenario name.
    pub scenario: String,
    /// Whether any row has GPU figures.
    pub any_gpu: bool,
    /// One row per model that ran it.
    pub rows: Vec<ScenarioRow>,
}

/// One model in a scenario.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScenarioRow {
    /// The model.
    pub model: String,
    /// Whether the model has GPU samples at all (else the template says why).
    pub gpu_available: bool,
    /// Its continuous phase over the scenario's contexts.
    pub warm: PhaseStats,
}

/// The thresholds, for the report to print.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Thresholds {
    /// [`FAST_START_MAX_RATIO`].
    pub fast_start_max_ratio: f64,
    /// [`SLOW_START_MIN_RATIO`].
    pub slow_start_min_ratio: f64,
    /// [`HIGH_THROUGHPUT_TOK_S`].
    pub high_throughput_tok_s: f64,
    /// [`MEDIUM_THROUGHPUT_TOK_S`].
    pub medium_throughput_tok_s: f64,
    /// [`HIGH_MEMORY_PCT`].
    pub high_memory_pct: f64,
    /// [`MODERATE_MEMORY_PCT`].
    pub moderate_memory_pct: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            fast_start_max_ratio: FAST_START_MAX_RATIO,
            slow_start_min_ratio: SLOW_START_MIN_RATIO,
            high_throughput_tok_s: HIGH_THROUGHPUT_TOK_S,
            medium_throughput_tok_s: MEDIUM_THROUGHPUT_TOK_S,
            high_memory_pct: HIGH_MEMORY_PCT,
            moderate_memory_pct: MODERATE_MEMORY_PCT,
        }
    }
}

/// The recommended model per use.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recommendations {
    /// Whether there are at least two models to choose between.
    pub comparable: bool,
    /// Lowest initial mean response time.
    pub fast_start: Pick,
    /// Lowest continuous mean response time.
    pub long_running: Pick,
    /// Highest continuous mean tokens per second.
    pub high_throughput: Pick,
    /// Lowest peak GPU memory %.
    pub limited_memory: Pick,
}

/// One recommendation: a model and its deciding figure, or why there is none.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pick {
    /// The chosen model.
    pub model: Option<String>,
    /// Its deciding figure.
    pub value: Option<f64>,
    /// Why no model was chosen.
    pub missing: Option<Missing>,
}

/// Why a recommendation could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Missing {
    /// Only one model was measured: nothing to choose between.
    SingleModel,
    /// Some model lacks the figure (e.g. no GPU telemetry).
    NoData,
}

/// Memory in use over time in one phase.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelineSeries {
    /// The phase.
    pub phase: PhaseName,
    /// (seconds from the run's first sample, MiB in use summed over devices).
    pub points: Vec<(f64, f64)>,
}

// ---------------------------------------------------------------------------
// Building

/// Builds the report from results files (path, results). Pure.
pub fn build(results: &[(PathBuf, Results)]) -> FullReport {
    let mut model_names: Vec<String> = Vec::new();
    for (_, r) in results {
        if !model_names.contains(&r.environment.server.model) {
            model_names.push(r.environment.server.model.clone());
        }
    }
    let runs_of = |model: &str| -> Vec<&Results> {
        results.iter().map(|(_, r)| r).filter(|r| r.environment.server.model == model).collect()
    };

    let mut scenarios: Vec<String> = Vec::new();
    let mut contexts = BTreeSet::new();
    let mut suites: Vec<SuiteRef> = Vec::new();
    for (_, r) in results {
        for case in &r.cases {
            if !scenarios.contains(&case.scenario) {
                scenarios.push(case.scenario.clone());
            }
            contexts.insert(case.context_tokens);
        }
        let suite = SuiteRef { name: r.suite.name.clone(), source: r.suite.source.clone() };
        if !suites.contains(&suite) {
            suites.push(suite);
        }
    }

    let models: Vec<ModelReport> = model_names.iter().map(|m| model_report(m, &runs_of(m))).collect();

    let scenario_tables = scenarios
        .iter()
        .map(|scenario| {
            let rows: Vec<ScenarioRow> = models
                .iter()
                .filter_map(|m| {
                    let runs = runs_of(&m.model);
                    let cases: Vec<&CaseResult> =
                        runs.iter().flat_map(|r| &r.cases).filter(|c| &c.scenario == scenario).collect();
                    (!cases.is_empty()).then(|| ScenarioRow {
                        model: m.model.clone(),
                        gpu_available: m.gpu.has_samples,
                        warm: phase_stats(&cases, PhaseName::Warm),
                    })
                })
                .collect();
            ScenarioTable { scenario: scenario.clone(), any_gpu: rows.iter().any(|r| r.warm.gpu.is_some()), rows }
        })
        .collect();

    let mut gpus: Vec<GpuEnvironment> = Vec::new();
    for (_, r) in results {
        let g = &r.environment.gpu;
        let env = GpuEnvironment {
            models: vec![r.environment.server.model.clone()],
            status: g.status.clone(),
            reason: g.reason.clone(),
            driver_version: g.driver_version.clone(),
            devices: g
                .devices
                .iter()
                .map(|d| GpuDeviceRef { index: d.index, name: d.name.clone(), memory_total_mib: d.memory_total_mib })
                .collect(),
        };
        let same = |e: &GpuEnvironment| {
            e.status == env.status
                && e.reason == env.reason
                && e.driver_version == env.driver_version
                && e.devices == env.devices
        };
        match gpus.iter_mut().find(|e| same(e)) {
            Some(e) if !e.models.contains(&env.models[0]) => e.models.push(env.models[0].clone()),
            Some(_) => {}
            None => gpus.push(env),
        }
    }

    let timeline =
        model_names.first().and_then(|m| runs_of(m).first().copied()).map(memory_timeline).unwrap_or_default();

    FullReport {
        schema: SCHEMA.to_string(),
        generated_at: results.iter().map(|(_, r)| r.finished_at.clone()).max(),
        started_at: results.iter().map(|(_, r)| r.started_at.clone()).min(),
        finished_at: results.iter().map(|(_, r)| r.finished_at.clone()).max(),
        sources: results
            .iter()
            .map(|(p, r)| Source {
                path: path_text(p),
                run_id: r.run_id.clone(),
                model: r.environment.server.model.clone(),
                started_at: r.started_at.clone(),
                finished_at: r.finished_at.clone(),
                complete: r.complete,
            })
            .collect(),
        suites,
        contexts: contexts.into_iter().collect(),
        scenarios,
        gpus,
        any_gpu: models.iter().any(|m| m.gpu.has_samples),
        recommendations: recommend(&models),
        models,
        scenario_tables,
        thresholds: Thresholds::default(),
        timeline,
    }
}

/// A path with `/` separators, as Markdown and JSON show it on every platform.
fn path_text(p: &Path) -> String {
    p.to_string_lossy().replace('\\', "/")
}

fn model_report(model: &str, runs: &[&Results]) -> ModelReport {
    let cases: Vec<&CaseResult> = runs.iter().flat_map(|r| &r.cases).collect();
    let cold = phase_stats(&cases, PhaseName::Cold);
    let warm = phase_stats(&cases, PhaseName::Warm);
    let mean = |s: &PhaseStats, f: fn(&PhaseStats) -> Option<Summary>| f(s).map(|s| s.mean);
    let total = |s: &PhaseStats| s.total_time_s;
    let tps = |s: &PhaseStats| s.tokens_per_second;
    let change = Change {
        total_time_pct: relative_change(mean(&cold, total), mean(&warm, total)).map(|c| -c),
        tokens_per_second_pct: relative_change(mean(&cold, tps), mean(&warm, tps)),
    };
    let startup_ratio = match (mean(&cold, total), mean(&warm, total)) {
        (Some(c), Some(w)) if w > 0.0 => Some(c / w),
        _ => None,
    };
    let peak = |s: &PhaseStats| s.gpu.as_ref().and_then(|g| g.peak_memory_pct);
    let peak_memory_pct = [peak(&cold), peak(&warm)].into_iter().flatten().reduce(f64::max);
    let traits = Traits {
        start: startup_ratio.map(|r| {
            if r <= FAST_START_MAX_RATIO {
                StartUp::Fast
            } else if r >= SLOW_START_MIN_RATIO {
                StartUp::Slow
            } else {
                StartUp::Moderate
            }
        }),
        throughput: mean(&warm, tps).map(|t| {
            if t >= HIGH_THROUGHPUT_TOK_S {
                Throughput::High
            } else if t >= MEDIUM_THROUGHPUT_TOK_S {
                Throughput::Medium
            } else {
                Throughput::Low
            }
        }),
        memory: peak_memory_pct.map(|m| {
            if m >= HIGH_MEMORY_PCT {
                MemoryUse::High
            } else if m >= MODERATE_MEMORY_PCT {
                MemoryUse::Moderate
            } else {
                MemoryUse::Low
            }
        }),
    };
    let context_lengths: BTreeSet<u32> = cases.iter().map(|c| c.context_tokens).collect();
    let contexts = context_lengths
        .into_iter()
        .map(|ctx| {
            let mine: Vec<&CaseResult> = cases.iter().copied().filter(|c| c.context_tokens == ctx).collect();
            ContextStats {
                context_tokens: ctx,
                cold_ttft_ms: phase_stats(&mine, PhaseName::Cold).ttft_ms,
                warm_ttft_ms: phase_stats(&mine, PhaseName::Warm).ttft_ms,
            }
        })
        .collect();
    let first = runs.first().map(|r| &r.environment);
    let mean_of = |values: &mut dyn Iterator<Item = f64>| {
        let v: Vec<f64> = values.collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    };
    ModelReport {
        model: model.to_string(),
        runs: runs.len(),
        engine: runs.iter().find_map(|r| {
            let server = &r.environment.server;
            server.capabilities.as_ref().and_then(|c| c.engine.clone()).or_else(|| server.owned_by.clone())
        }),
        version: runs.iter().find_map(|r| r.environment.server.reported_version.clone()),
        time_to_ready_s: mean_of(
            &mut runs.iter().filter_map(|r| r.environment.server.launched.as_ref()).map(|l| l.time_to_ready_s),
        ),
        memory_after_load_mib: mean_of(&mut runs.iter().filter_map(|r| r.environment.gpu.memory_after_load_mib)),
        gpu: GpuAvailability {
            status: first.map(|e| e.gpu.status.clone()).unwrap_or_default(),
            reason: runs.iter().find_map(|r| r.environment.gpu.reason.clone()),
            has_samples: cold.gpu.is_some() || warm.gpu.is_some(),
        },
        cold,
        warm,
        change,
        startup_ratio,
        peak_memory_pct,
        traits,
        contexts,
    }
}

/// (after − before) / before × 100, when both exist and before is not zero.
fn relative_change(before: Option<f64>, after: Option<f64>) -> Option<f64> {
    match (before, after) {
        (Some(b), Some(a)) if b != 0.0 => Some((a - b) / b * 100.0),
        _ => None,
    }
}

/// Pools the requests and GPU samples of `phase` over `cases`.
fn phase_stats(cases: &[&CaseResult], phase: PhaseName) -> PhaseStats {
    let phases: Vec<&PhaseResult> = cases.iter().filter_map(|c| c.phases.get(&phase)).collect();
    let ok = || phases.iter().flat_map(|p| &p.requests).filter(|r| r.ok);
    let column = |f: fn(&crate::results::RequestRecord) -> Option<f64>| -> Option<Summary> {
        stats::summarize(&ok().filter_map(f).collect::<Vec<_>>())
    };
    let samples: Vec<&[GpuSample]> =
        phases.iter().filter_map(|p| p.gpu.as_ref()).map(|g| g.samples.as_slice()).filter(|s| !s.is_empty()).collect();
    let gpu = (!samples.is_empty()).then(|| {
        let all = |f: fn(&GpuSample) -> Option<f64>| -> Vec<f64> {
            samples.iter().flat_map(|s| s.iter()).filter_map(f).collect()
        };
        let case_max = |f: fn(&GpuSample) -> Option<f64>| -> Option<f64> {
            let maxima: Vec<f64> = samples.iter().filter_map(|s| s.iter().filter_map(f).reduce(f64::max)).collect();
            stats::mean(&maxima)
        };
        let memory = all(|s| s.memory_used_pct);
        PhaseGpu {
            memory_pct: stats::summarize(&memory),
            gpu_util_pct: stats::summarize(&all(|s| s.gpu_util_pct)),
            mean_case_max_memory_pct: case_max(|s| s.memory_used_pct),
            mean_case_max_gpu_util_pct: case_max(|s| s.gpu_util_pct),
            peak_memory_pct: memory.iter().copied().filter(|v| v.is_finite()).reduce(f64::max),
        }
    });
    PhaseStats {
        requests: phases.iter().map(|p| p.requests.len() as u32).sum(),
        errors: phases.iter().flat_map(|p| &p.requests).filter(|r| !r.ok).count() as u32,
        total_time_s: column(|r| r.e2e_ms.map(|ms| ms / 1000.0)),
        tokens_per_second: column(|r| r.tokens_per_second),
        ttft_ms: column(|r| r.ttft_ms),
        tpot_ms: column(|r| r.tpot_ms),
        gpu,
    }
}

/// Chooses by the numbers; ties go to the model listed first.
fn recommend(models: &[ModelReport]) -> Recommendations {
    let comparable = models.len() >= 2;
    let pick = |figure: &dyn Fn(&ModelReport) -> Option<f64>, lowest: bool| -> Pick {
        if !comparable {
            return Pick { model: None, value: None, missing: Some(Missing::SingleModel) };
        }
        let figures: Option<Vec<(&ModelReport, f64)>> =
            models.iter().map(|m| figure(m).filter(|v| v.is_finite()).map(|v| (m, v))).collect();
        let best = figures.and_then(|f| {
            f.into_iter().reduce(|best, next| {
                let better = if lowest { next.1 < best.1 } else { next.1 > best.1 };
                if better { next } else { best }
            })
        });
        match best {
            Some((m, v)) => Pick { model: Some(m.model.clone()), value: Some(v), missing: None },
            None => Pick { model: None, value: None, missing: Some(Missing::NoData) },
        }
    };
    Recommendations {
        comparable,
        fast_start: pick(&|m| m.cold.total_time_s.map(|s| s.mean), true),
        long_running: pick(&|m| m.warm.total_time_s.map(|s| s.mean), true),
        high_throughput: pick(&|m| m.warm.tokens_per_second.map(|s| s.mean), false),
        limited_memory: pick(&|m| m.peak_memory_pct, true),
    }
}

/// Memory in use over time per phase, from one run's GPU samples: samples
/// taken together (same `t_ms`) on several devices are summed.
fn memory_timeline(run: &Results) -> Vec<TimelineSeries> {
    let all = || run.cases.iter().flat_map(|c| c.phases.values()).filter_map(|p| p.gpu.as_ref());
    let Some(origin) = all().flat_map(|g| &g.samples).map(|s| s.t_ms).reduce(f64::min) else {
        return Vec::new();
    };
    [PhaseName::Cold, PhaseName::Warm]
        .into_iter()
        .filter_map(|phase| {
            let mut points: Vec<(f64, f64)> = Vec::new();
            let mut samples: Vec<&GpuSample> = run
                .cases
                .iter()
                .filter_map(|c| c.phases.get(&phase))
                .filter_map(|p| p.gpu.as_ref())
                .flat_map(|g| &g.samples)
                .filter(|s| s.memory_used_mib.is_some_and(f64::is_finite))
                .collect();
            samples.sort_by(|a, b| a.t_ms.total_cmp(&b.t_ms));
            for s in samples {
                let (x, y) = ((s.t_ms - origin) / 1000.0, s.memory_used_mib.unwrap_or_default());
                match points.last_mut() {
                    Some(last) if last.0 == x => last.1 += y,
                    _ => points.push((x, y)),
                }
            }
            (!points.is_empty()).then_some(TimelineSeries { phase, points })
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Charts

/// Chart labels of the phases (the charts are in English: the PNG font has no Hangul).
/// The charts the report attaches, as plain data for `plots::render_all`,
/// their titles, axis labels and legends in `lang`.
pub fn charts(report: &FullReport, lang: Lang) -> Vec<Chart> {
    let words = Words::of(lang);
    let word = |key: &str| words.must(key, None, &[]);
    let phase_label = |phase: PhaseName| word(&format!("chart.phase.{}", phase.as_str()));
    let series = vec![phase_label(PhaseName::Cold), phase_label(PhaseName::Warm)];
    let bars = |name: &str, key: &str, f: &dyn Fn(&PhaseStats) -> Option<f64>| {
        Chart::Bar(BarChart {
            name: name.to_string(),
            title: word(&format!("chart.{key}")),
            y_label: word(&format!("chart.{key}.y")),
            series: series.clone(),
            groups: report
                .models
                .iter()
                .map(|m| BarGroup { label: m.model.clone(), values: vec![f(&m.cold), f(&m.warm)] })
                .collect(),
        })
    };
    let ttft = report
        .models
        .iter()
        .flat_map(|m| {
            [PhaseName::Cold, PhaseName::Warm].into_iter().map(move |phase| LineSeries {
                label: words.must("chart.ttft.series", None, &[("model", &m.model), ("phase", &phase_label(phase))]),
                points: m
                    .contexts
                    .iter()
                    .filter_map(|c| {
                        let s = if phase == PhaseName::Cold { c.cold_ttft_ms } else { c.warm_ttft_ms };
                        s.map(|s| (f64::from(c.context_tokens), s.median))
                    })
                    .collect(),
            })
        })
        .collect();
    vec![
        bars("response_time_comparison", "response_time", &|p| p.total_time_s.map(|s| s.mean)),
        bars("gpu_memory_comparison", "gpu_memory", &|p| p.gpu.as_ref().and_then(|g| g.mean_case_max_memory_pct)),
        bars("tokens_per_second_comparison", "tokens_per_second", &|p| p.tokens_per_second.map(|s| s.mean)),
        Chart::Line(LineChart {
            name: "ttft_by_context".to_string(),
            title: word("chart.ttft"),
            x_label: word("chart.ttft.x"),
            y_label: word("chart.ttft.y"),
            series: ttft,
        }),
        Chart::Line(LineChart {
            name: "gpu_memory_timeline".to_string(),
            title: match report.models.first() {
                Some(m) => words.must("chart.timeline.model", None, &[("model", &m.model)]),
                None => word("chart.timeline"),
            },
            x_label: word("chart.timeline.x"),
            y_label: word("chart.timeline.y"),
            series: report
                .timeline
                .iter()
                .map(|t| LineSeries { label: phase_label(t.phase), points: t.points.clone() })
                .collect(),
        }),
    ]
}

// ---------------------------------------------------------------------------
// Rendering

/// Renders the Markdown in `lang` with the embedded template, or with
/// `template` (the user's). `plots` are the written chart files, listed in the
/// attachments section with their paths as given: pass them relative to the
/// report's folder.
///
/// Template context: `report` (the [`FullReport`] as serialized), `plots`
/// (`name`, `title`, `svg`, `png`) and `lang` (`ko` or `en`). Filters:
/// `num(decimals, suffix)` formats a number or prints "—" when there is none,
/// `signed(decimals, suffix)` the same with a sign, `md` escapes text for
/// Markdown, `url` percent-encodes a path for a link target.
pub fn render(report: &FullReport, lang: Lang, template: Option<&str>, plots: &[PlotFile]) -> anyhow::Result<String> {
    let env = environment();
    let (name, source, what) = match template {
        Some(text) => (format!("custom-{}", lang.template_name()), text, "user full-report template"),
        None => (lang.template_name().to_string(), lang.builtin_template(), "built-in full-report template"),
    };
    let tmpl = env.template_from_named_str(&name, source).map_err(|e| template_error(what, &e))?;
    let plots: Vec<PlotView> = plots
        .iter()
        .map(|p| PlotView {
            name: p.name.clone(),
            title: p.title.clone(),
            svg: path_text(&p.svg),
            png: path_text(&p.png),
        })
        .collect();
    let ctx = context! { report => Serde(report), plots => Serde(&plots), lang => Serde(lang) };
    tmpl.render(ctx).map_err(|e| template_error(what, &e))
}

/// A chart file as the templates see it.
#[derive(Serialize)]
struct PlotView {
    name: String,
    title: String,
    svg: String,
    png: String,
}

/// The environment with the filters the full-report templates use.
fn environment() -> Environment<'static> {
    let mut env = base_environment();
    env.add_filter("num", |v: Option<f64>, decimals: Option<usize>, suffix: Option<String>| {
        format_number(v, decimals.unwrap_or(2), suffix.as_deref().unwrap_or(""), false)
    });
    env.add_filter("signed", |v: Option<f64>, decimals: Option<usize>, suffix: Option<String>| {
        format_number(v, decimals.unwrap_or(2), suffix.as_deref().unwrap_or(""), true)
    });
    env.add_filter("md", |v: Value| crate::report::render::md_escape(&text_of(&v)));
    env.add_filter("url", |v: Value| url_path(&text_of(&v)));
    env
}

/// A relative path as a Markdown link target: everything but unreserved
/// characters and `/` is percent-encoded, so spaces, parentheses and angle
/// brackets cannot end the link.
fn url_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `v` with `decimals` decimals and `suffix`; "—" when there is no finite value.
fn format_number(v: Option<f64>, decimals: usize, suffix: &str, sign: bool) -> String {
    match v {
        Some(v) if v.is_finite() => {
            let s = if sign { format!("{v:+.decimals$}") } else { format!("{v:.decimals$}") };
            // Rounding must not leave "-0.00" behind.
            let zero = format!("{:.decimals$}", 0.0);
            let s = if s.trim_start_matches(['-', '+']) == zero { zero } else { s };
            format!("{s}{suffix}")
        }
        _ => super::format::MISSING.to_string(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::results::{
        Environment, ErrorClass, PhaseSummary, PromptInfo, RequestError, RequestRecord, ServerInfo, Settings,
        SuiteInfo, TokenSource,
    };
    use crate::telemetry::{GpuDevice, GpuInfo, summarize_phase};

    const QWEN: &str = "Qwen/Qwen2.5-Coder-32B-Instruct-AWQ";
    const LLAMA: &str = "meta-llama/Llama-3.1-8B-Instruct";
    const SCENARIOS: [&str; 4] = ["architecture-design", "code-completion", "code-review", "debugging"];
    const CONTEXTS: [u32; 2] = [12800, 41200];
    const OUTPUT_TOKENS: u32 = 256;
    const GPU_TOTAL_MIB: f64 = 143_771.0;

    /// How a fixture model behaves.
    #[derive(Clone)]
    struct Model {
        name: &'static str,
        /// Decode time per token, ms.
        tpot_ms: f64,
        /// Prefill time per 1000 prompt tokens in the warm phase, ms.
        ttft_per_k_ms: f64,
        /// Cold TTFT = warm TTFT × this.
        cold_factor: f64,
        /// GPU memory in use, % (None: no telemetry).
        mem_pct: Option<f64>,
        /// GPU utilisation, %.
        util_pct: f64,
    }

    fn qwen() -> Model {
        Model { name: QWEN, tpot_ms: 45.0, ttft_per_k_ms: 60.0, cold_factor: 4.0, mem_pct: Some(96.5), util_pct: 88.0 }
    }

    fn llama() -> Model {
        Model { name: LLAMA, tpot_ms: 12.0, ttft_per_k_ms: 15.0, cold_factor: 1.5, mem_pct: Some(62.0), util_pct: 71.0 }
    }

    fn request(index: u32, start_ms: f64, ctx: u32, ttft: f64, tpot: f64) -> RequestRecord {
        let e2e = ttft + tpot * f64::from(OUTPUT_TOKENS - 1);
        RequestRecord {
            index,
            start_ms,
            ok: true,
            error: None,
            ttft_ms: Some(ttft),
            e2e_ms: Some(e2e),
            tpot_ms: Some(tpot),
            itl_ms: Vec::new(),
            chunk_tokens: None,
            prompt_tokens: Some(ctx),
            output_tokens: Some(OUTPUT_TOKENS),
            output_tokens_source: TokenSource::Usage,
            finish_reason: Some("length".into()),
            done_received: true,
            tokens_per_second: Some(f64::from(OUTPUT_TOKENS) / (e2e / 1000.0)),
            decode_tokens_per_second: Some(1000.0 / tpot),
            response_id: None,
            output_sha256: None,
            output_text: None,
            attempts: 1,
            retries: Vec::new(),
        }
    }

    /// A run of `m` over 4 scenarios × 2 contexts: one cold request and three
    /// warm ones per case (one warm request of the first debugging case fails),
    /// with a GPU sample per second of each phase when `m` has telemetry.
    fn run(m: &Model, run_id: &str) -> Results {
        let mut clock_ms = 0.0;
        let mut cases = Vec::new();
        for (si, scenario) in SCENARIOS.iter().enumerate() {
            for ctx in CONTEXTS {
                let mut phases = BTreeMap::new();
                for (phase, count) in [(PhaseName::Cold, 1u32), (PhaseName::Warm, 3)] {
                    let factor = if phase == PhaseName::Cold { m.cold_factor } else { 1.0 };
                    let mut records = Vec::new();
                    let mut t = 0.0;
                    for i in 0..count {
                        let jitter = f64::from(i) * 0.5 + si as f64 * 0.25;
                        let ttft = m.ttft_per_k_ms * f64::from(ctx) / 1000.0 * factor + 10.0 * jitter;
                        let mut r = request(i, t, ctx, ttft, m.tpot_ms + jitter);
                        if phase == PhaseName::Warm && *scenario == "debugging" && ctx == CONTEXTS[0] && i == 2 {
                            r = RequestRecord {
                                ok: false,
                                error: Some(RequestError {
                                    class: ErrorClass::HttpStatus,
                                    status: Some(503),
                                    message: "Service Unavailable".into(),
                                }),
                                ttft_ms: None,
                                e2e_ms: None,
                                tpot_ms: None,
                                tokens_per_second: None,
                                decode_tokens_per_second: None,
                                output_tokens: None,
                                ..r
                            };
                        }
                        t += r.e2e_ms.unwrap_or(1000.0);
                        records.push(r);
                    }
                    let samples: Vec<GpuSample> = match m.mem_pct {
                        Some(mem) => (0..=(t / 1000.0).ceil() as u32)
                            .map(|k| {
                                let wobble = f64::from(k % 5) * 0.2 + si as f64 * 0.1;
                                let pct = mem + wobble - if phase == PhaseName::Cold { 0.3 } else { 0.0 };
                                GpuSample {
                                    t_ms: clock_ms + f64::from(k) * 1000.0,
                                    device: 0,
                                    memory_used_mib: Some((pct / 100.0 * GPU_TOTAL_MIB).round()),
                                    memory_used_pct: Some(pct),
                                    gpu_util_pct: Some(m.util_pct + f64::from(k % 4) * 2.0),
                                    mem_util_pct: None,
                                    power_w: Some(400.0),
                                    energy_j: None,
                                    temperature_c: Some(60.0),
                                    sm_clock_mhz: None,
                                    throttle_reasons: None,
                                }
                            })
                            .collect(),
                        None => Vec::new(),
                    };
                    clock_ms += t + 2000.0;
                    let summary = PhaseSummary::from_records(&records, t / 1000.0, OUTPUT_TOKENS);
                    let gpu = summarize_phase(samples, summary.total_output_tokens);
                    phases.insert(phase, PhaseResult { summary, gpu, server_metrics: None, requests: records });
                }
                cases.push(CaseResult {
                    id: format!("{scenario}/{ctx}"),
                    scenario: (*scenario).to_string(),
                    context_tokens: ctx,
                    output_tokens: OUTPUT_TOKENS,
                    repetitions: 3,
                    warmup: 1,
                    concurrency: 1,
                    request_rate: None,
                    prompt: PromptInfo {
                        template_fingerprint: format!("tpl-{scenario}-{ctx}"),
                        text_fingerprint: format!("txt-{scenario}-{ctx}"),
                        tokens: ctx,
                        chars: ctx as usize * 4,
                    },
                    phases,
                });
            }
        }
        let gpu = if m.mem_pct.is_some() {
            GpuInfo {
                status: "ok".into(),
                reason: None,
                driver_version: Some("550.54.15".into()),
                cuda_driver_version: Some("12.4".into()),
                interval_ms: 1000.0,
                memory_after_load_mib: Some(GPU_TOTAL_MIB * 0.9),
                devices: vec![GpuDevice {
                    index: 0,
                    name: Some("NVIDIA H200".into()),
                    memory_total_mib: Some(GPU_TOTAL_MIB),
                    ..GpuDevice::default()
                }],
            }
        } else {
            GpuInfo {
                status: "unavailable".into(),
                reason: Some("cannot load libnvidia-ml.so.1".into()),
                ..GpuInfo::default()
            }
        };
        Results {
            schema: crate::results::SCHEMA.into(),
            run_id: run_id.into(),
            complete: true,
            started_at: format!("2025-03-28T16:{:02}:21Z", 10 + run_id.len()),
            finished_at: format!("2025-03-28T17:{:02}:05Z", 10 + run_id.len()),
            environment: Environment {
                tool_version: "0.1.0".into(),
                os: "linux x86_64".into(),
                cpus: 16,
                server: ServerInfo {
                    host: "localhost:8000".into(),
                    model: m.name.into(),
                    api: "chat".into(),
                    reported_version: Some("0.6.3".into()),
                    owned_by: Some("vllm".into()),
                    max_model_len: Some(131_072),
                    prompt_sizing: "tokenize".into(),
                    cache_reset: None,
                    launched: None,
                    capabilities: None,
                },
                gpu,
                ..Environment::default()
            },
            suite: SuiteInfo {
                name: "coder".into(),
                source: "builtin".into(),
                seed: 42,
                fingerprint: "sha256:0000".into(),
            },
            settings: Settings {
                ignore_eos: true,
                min_tokens: true,
                request_timeout_s: 600.0,
                idle_timeout_s: 60.0,
                cases_filter: None,
                retries: 0,
                deadline_s: None,
                grace_s: None,
            },
            cases,
            warnings: Vec::new(),
        }
    }

    /// The report of two models, for tests elsewhere (the plots' preview).
    pub(crate) fn two_models_report() -> FullReport {
        build(&two_models())
    }

    fn two_models() -> Vec<(PathBuf, Results)> {
        vec![
            (PathBuf::from("results/qwen.json"), run(&qwen(), "run-qwen")),
            (PathBuf::from("results/llama.json"), run(&llama(), "run-llama")),
        ]
    }

    fn one_model_without_gpu() -> Vec<(PathBuf, Results)> {
        let m = Model { mem_pct: None, ..qwen() };
        vec![(PathBuf::from("results/qwen-nogpu.json"), run(&m, "run-nogpu"))]
    }

    /// The chart files as the report command would write them.
    fn plot_files(report: &FullReport) -> Vec<PlotFile> {
        charts(report, Lang::En)
            .iter()
            .map(|c| {
                let (name, title) = match c {
                    Chart::Bar(b) => (&b.name, &b.title),
                    Chart::Line(l) => (&l.name, &l.title),
                };
                PlotFile {
                    name: name.clone(),
                    title: title.clone(),
                    svg: PathBuf::from(format!("plots/{name}.svg")),
                    png: PathBuf::from(format!("plots/{name}.png")),
                }
            })
            .collect()
    }

    fn rendered(results: &[(PathBuf, Results)], lang: Lang) -> String {
        let report = build(results);
        render(&report, lang, None, &plot_files(&report)).unwrap()
    }

    #[test]
    fn time_change_is_signed_as_the_users_report_signs_it() {
        // The seed report: 13.99 s initial, 25.53 s continuous, "성능 변화 (시간): -82.53%".
        let time = relative_change(Some(13.99), Some(25.53)).map(|c| -c).unwrap();
        assert!((time - (13.99 - 25.53) / 13.99 * 100.0).abs() < 1e-9 && time < -82.0 && time > -83.0, "{time}");
    }

    #[test]
    fn snapshot_full_ko_two_models() {
        insta::assert_snapshot!("full_ko_two_models", rendered(&two_models(), Lang::Ko));
    }

    #[test]
    fn snapshot_full_en_two_models() {
        insta::assert_snapshot!("full_en_two_models", rendered(&two_models(), Lang::En));
    }

    #[test]
    fn snapshot_full_ko_one_model_no_gpu() {
        insta::assert_snapshot!("full_ko_one_model_no_gpu", rendered(&one_model_without_gpu(), Lang::Ko));
    }

    #[test]
    fn snapshot_full_en_one_model_no_gpu() {
        insta::assert_snapshot!("full_en_one_model_no_gpu", rendered(&one_model_without_gpu(), Lang::En));
    }

    #[test]
    fn sections_follow_the_users_report() {
        let ko = rendered(&two_models(), Lang::Ko);
        let headings = [
            "# sLLM 성능 테스트 보고서 (한글)",
            "## 1. 테스트 환경",
            "## 2. 성능 분석 요약",
            "### 2.1 초기 로딩 성능 (종합)",
            "### 2.2 연속 응답 성능 (종합)",
            "### 2.3 모델별 성능 지표",
            "## 3. GPU 리소스 사용량 요약",
            "### 3.1 메모리 사용률 & GPU 부하 (종합)",
            "## 4. 시나리오 기반 성능 분석 (연속 테스트)",
            "### architecture-design (아키텍처 설계)",
            "### code-completion (코드 완성)",
            "### code-review (코드 리뷰)",
            "### debugging (디버깅)",
            "## 5. 결론 및 권장 사항",
            "### 5.1 모델 특성 요약",
            "### 5.2 권장 사용 시나리오",
            "## 6. 첨부 파일",
        ];
        let mut at = 0;
        for h in headings {
            let found = ko[at..].find(&format!("{h}\n")).unwrap_or_else(|| panic!("`{h}` missing or out of order"));
            at += found + h.len();
        }
        assert!(ko.contains("(연속 응답 − 초기 로딩) / 초기 로딩 × 100"));
        let en = rendered(&two_models(), Lang::En);
        assert!(en.contains("(continuous − initial) / initial × 100"));
        assert!(!en.chars().any(|c| ('\u{ac00}'..='\u{d7a3}').contains(&c)), "no Hangul in the English report");
    }

    #[test]
    fn recommendations_pick_by_the_numbers() {
        let report = build(&two_models());
        let rec = &report.recommendations;
        assert!(rec.comparable);
        // Llama decodes almost four times faster and uses less memory: it wins everything.
        for pick in [&rec.fast_start, &rec.long_running, &rec.high_throughput, &rec.limited_memory] {
            assert_eq!(pick.model.as_deref(), Some(LLAMA), "{pick:?}");
        }
        let llama_report = &report.models[1];
        assert_eq!(rec.fast_start.value, llama_report.cold.total_time_s.map(|s| s.mean));
        assert_eq!(rec.high_throughput.value, llama_report.warm.tokens_per_second.map(|s| s.mean));

        // A slower model with the smaller memory footprint wins only limited memory.
        let lean = Model { name: "lean/model", mem_pct: Some(40.0), tpot_ms: 60.0, ..llama() };
        let mut results = two_models();
        results.push((PathBuf::from("results/lean.json"), run(&lean, "run-lean")));
        let report = build(&results);
        let rec = &report.recommendations;
        assert_eq!(rec.limited_memory.model.as_deref(), Some("lean/model"));
        assert_eq!(rec.fast_start.model.as_deref(), Some(LLAMA));
        assert_eq!(rec.high_throughput.model.as_deref(), Some(LLAMA));
        let peaks: Vec<f64> = report.models.iter().filter_map(|m| m.peak_memory_pct).collect();
        assert_eq!(rec.limited_memory.value, peaks.iter().copied().reduce(f64::min));

        // One model without telemetry among others: memory cannot be judged, the rest can.
        results.push((
            PathBuf::from("results/nogpu.json"),
            run(&Model { name: "x/no-gpu", mem_pct: None, ..qwen() }, "r"),
        ));
        let rec = build(&results).recommendations;
        assert_eq!(rec.limited_memory.missing, Some(Missing::NoData));
        assert_eq!(rec.limited_memory.model, None);
        assert_eq!(rec.fast_start.model.as_deref(), Some(LLAMA));
    }

    #[test]
    fn characterisation_uses_the_thresholds() {
        let report = build(&two_models());
        let (q, l) = (&report.models[0], &report.models[1]);
        // Qwen: cold TTFT four times the warm one on long prompts, ~20 tok/s, ~97% memory.
        let ratio = q.startup_ratio.unwrap();
        assert!(ratio > FAST_START_MAX_RATIO, "{ratio}");
        assert_eq!(q.traits.memory, Some(MemoryUse::High));
        assert_eq!(l.traits.memory, Some(MemoryUse::Moderate));
        assert_eq!(l.traits.throughput, Some(Throughput::High));
        assert_eq!(l.traits.start, Some(StartUp::Fast));
        let q_tps = q.warm.tokens_per_second.unwrap().mean;
        let expected = if q_tps >= HIGH_THROUGHPUT_TOK_S {
            Throughput::High
        } else if q_tps >= MEDIUM_THROUGHPUT_TOK_S {
            Throughput::Medium
        } else {
            Throughput::Low
        };
        assert_eq!(q.traits.throughput, Some(expected));
        let change = q.change.total_time_pct.unwrap();
        let (c, w) = (q.cold.total_time_s.unwrap().mean, q.warm.total_time_s.unwrap().mean);
        // The user's sign: (initial − continuous) / initial.
        assert!((change - (c - w) / c * 100.0).abs() < 1e-9);
        // The failed request is counted and left out.
        assert_eq!(q.warm.errors, 1);
        assert_eq!(q.warm.requests, 24);
        assert_eq!(q.warm.total_time_s.unwrap().n, 23);
    }

    #[test]
    fn one_model_needs_more_than_one_for_a_recommendation() {
        let results = vec![two_models().remove(0)];
        let report = build(&results);
        let rec = &report.recommendations;
        assert!(!rec.comparable);
        for pick in [&rec.fast_start, &rec.long_running, &rec.high_throughput, &rec.limited_memory] {
            assert_eq!(pick.model, None);
            assert_eq!(pick.missing, Some(Missing::SingleModel));
        }
        let ko = render(&report, Lang::Ko, None, &[]).unwrap();
        assert!(ko.contains("두 개 이상의 모델"), "{ko}");
        assert!(!ko.contains("- 빠른 시작:"));
        let en = render(&report, Lang::En, None, &[]).unwrap();
        assert!(en.contains("a recommendation needs more than one model"));
        assert!(!en.contains("- Fast start:"));
    }

    #[test]
    fn without_gpu_telemetry_the_report_says_why_and_prints_no_zeros() {
        let report = build(&one_model_without_gpu());
        assert!(!report.any_gpu);
        let m = &report.models[0];
        assert!(m.cold.gpu.is_none() && m.warm.gpu.is_none() && m.peak_memory_pct.is_none());
        assert_eq!(m.traits.memory, None);
        assert!(report.timeline.is_empty());
        for lang in [Lang::Ko, Lang::En] {
            let text = render(&report, lang, None, &[]).unwrap();
            assert!(text.contains("cannot load libnvidia-ml.so.1"), "{text}");
            for zero in ["0.00%", " 0%", "| 0.00 |"] {
                assert!(!text.contains(zero), "{zero:?} in\n{text}");
            }
        }
        let en = render(&report, Lang::En, None, &[]).unwrap();
        assert!(en.contains("- GPU: telemetry unavailable: cannot load libnvidia-ml.so.1"));
        assert!(en.contains("GPU usage cannot be reported."));
    }

    #[test]
    fn a_model_without_telemetry_beside_one_with_it_gets_a_note_not_a_row() {
        let mut results = two_models();
        results[1].1 = run(&Model { mem_pct: None, ..llama() }, "run-llama");
        let report = build(&results);
        assert!(report.any_gpu);
        assert_eq!(report.gpus.len(), 2, "two GPU environments, one per model");
        let en = render(&report, Lang::En, None, &[]).unwrap();
        assert!(en.contains(&format!("- GPU ({LLAMA}): telemetry unavailable: cannot load libnvidia-ml.so.1")), "{en}");
        assert!(en.contains(&format!("> {LLAMA}: GPU telemetry unavailable: cannot load libnvidia-ml.so.1.")));
        assert!(!en.contains(&format!("| GPU memory (gpu_memory_util) | {LLAMA} |")));
        assert!(en.contains(&format!("| GPU memory (gpu_memory_util) | {QWEN} |")));
        assert!(en.contains("- Limited memory: cannot judge"));
    }

    #[test]
    fn charts_are_the_five_with_the_expected_series() {
        let report = build(&two_models());
        let charts = charts(&report, Lang::En);
        let names: Vec<&str> = charts
            .iter()
            .map(|c| match c {
                Chart::Bar(b) => b.name.as_str(),
                Chart::Line(l) => l.name.as_str(),
            })
            .collect();
        assert_eq!(
            names,
            [
                "response_time_comparison",
                "gpu_memory_comparison",
                "tokens_per_second_comparison",
                "ttft_by_context",
                "gpu_memory_timeline"
            ]
        );
        let Chart::Bar(response) = &charts[0] else { panic!("bar chart expected") };
        assert_eq!(response.series, ["initial loading", "continuous response"]);
        assert_eq!(response.groups.iter().map(|g| g.label.as_str()).collect::<Vec<_>>(), [QWEN, LLAMA]);
        assert_eq!(
            response.groups[0].values,
            [report.models[0].cold.total_time_s.map(|s| s.mean), report.models[0].warm.total_time_s.map(|s| s.mean)]
        );
        let Chart::Bar(memory) = &charts[1] else { panic!("bar chart expected") };
        assert_eq!(memory.groups[1].values[1], report.models[1].warm.gpu.as_ref().unwrap().mean_case_max_memory_pct);
        let Chart::Line(ttft) = &charts[3] else { panic!("line chart expected") };
        assert_eq!(ttft.series.len(), 4, "one line per model and phase");
        assert_eq!(ttft.series[0].label, format!("{QWEN} (initial loading)"));
        assert_eq!(ttft.series[0].points.iter().map(|p| p.0).collect::<Vec<_>>(), [12800.0, 41200.0]);
        assert!(ttft.series[0].points[1].1 > ttft.series[1].points[1].1, "cold TTFT above warm");
        let Chart::Line(timeline) = &charts[4] else { panic!("line chart expected") };
        assert_eq!(
            timeline.series.iter().map(|s| s.label.as_str()).collect::<Vec<_>>(),
            ["initial loading", "continuous response"]
        );
        assert_eq!(timeline.series[0].points[0].0, 0.0, "seconds from the first sample");
        assert!(timeline.series.iter().all(|s| s.points.windows(2).all(|w| w[0].0 < w[1].0)));

        let none = super::charts(&build(&one_model_without_gpu()), Lang::En);
        let Chart::Line(timeline) = &none[4] else { panic!("line chart expected") };
        assert!(timeline.series.is_empty());
        let Chart::Bar(memory) = &none[1] else { panic!("bar chart expected") };
        assert!(memory.groups.iter().all(|g| g.values.iter().all(Option::is_none)));
    }

    /// The Korean report's charts are titled, labelled and captioned in
    /// Korean with the user's terms; the numbers are the English charts'.
    #[test]
    fn charts_in_korean_have_korean_titles_labels_and_legends() {
        let report = build(&two_models());
        let (en, ko) = (charts(&report, Lang::En), charts(&report, Lang::Ko));
        let Chart::Bar(response) = &ko[0] else { panic!("bar chart expected") };
        assert_eq!(response.title, "모델 응답 시간 비교");
        assert_eq!(response.y_label, "평균 총 시간 (초)");
        assert_eq!(response.series, ["초기 로딩", "연속 응답"]);
        let Chart::Line(ttft) = &ko[3] else { panic!("line chart expected") };
        assert_eq!(ttft.x_label, "컨텍스트 길이 (토큰)");
        assert_eq!(ttft.series[0].label, format!("{QWEN} (초기 로딩)"));
        let Chart::Line(timeline) = &ko[4] else { panic!("line chart expected") };
        assert_eq!(timeline.title, format!("시간에 따른 GPU 메모리: {QWEN}"));
        for (e, k) in en.iter().zip(&ko) {
            match (e, k) {
                (Chart::Bar(e), Chart::Bar(k)) => {
                    assert_eq!(e.name, k.name);
                    assert_eq!(e.groups, k.groups);
                }
                (Chart::Line(e), Chart::Line(k)) => {
                    assert_eq!(e.name, k.name);
                    let points = |c: &LineChart| c.series.iter().map(|s| s.points.clone()).collect::<Vec<_>>();
                    assert_eq!(points(e), points(k));
                }
                _ => panic!("the same charts in both languages"),
            }
            let text = |c: &Chart| match c {
                Chart::Bar(b) => format!("{} {} {}", b.title, b.y_label, b.series.join(" ")),
                Chart::Line(l) => format!("{} {} {}", l.title, l.x_label, l.y_label),
            };
            assert!(text(k).chars().any(|c| ('\u{AC00}'..='\u{D7A3}').contains(&c)), "{}", text(k));
        }
    }

    #[test]
    fn repeated_runs_of_one_model_are_pooled() {
        let results = vec![(PathBuf::from("a.json"), run(&qwen(), "a")), (PathBuf::from("b.json"), run(&qwen(), "b"))];
        let report = build(&results);
        assert_eq!(report.models.len(), 1);
        assert_eq!(report.models[0].runs, 2);
        assert_eq!(report.models[0].warm.requests, 48);
        assert_eq!(report.gpus.len(), 1);
        assert_eq!(report.sources.len(), 2);
    }

    #[test]
    fn text_from_results_is_escaped() {
        let odd = Model { name: "evil|<b>model</b>*x*", ..llama() };
        let mut results = two_models();
        results[1].1 = run(&odd, "run-odd");
        results[1].1.environment.gpu.devices[0].name = Some("GPU|1".into());
        let text = rendered(&results, Lang::En);
        assert!(text.contains(r"evil\|&lt;b&gt;model&lt;/b&gt;\*x\*"));
        assert!(!text.contains("<b>"));
        assert!(text.contains(r"GPU\|1"));
    }

    #[test]
    fn numbers_print_per_language_and_missing_ones_as_a_dash() {
        assert_eq!(format_number(Some(13.98825), 2, "초", false), "13.99초");
        assert_eq!(format_number(Some(13.98825), 2, " s", false), "13.99 s");
        assert_eq!(format_number(Some(-82.5311), 2, "%", true), "-82.53%");
        assert_eq!(format_number(Some(82.5311), 2, "%", true), "+82.53%");
        assert_eq!(format_number(Some(-0.001), 2, "%", true), "0.00%");
        assert_eq!(format_number(None, 2, "%", false), "—");
        assert_eq!(format_number(Some(f64::NAN), 2, "%", false), "—");
        assert_eq!(url_path("plots/a b(1)<x>.svg"), "plots/a%20b%281%29%3Cx%3E.svg");
        assert_eq!(url_path("그림/a.png"), "%EA%B7%B8%EB%A6%BC/a.png");
    }

    #[test]
    fn a_user_template_replaces_the_builtin_and_errors_name_the_line() {
        let report = build(&two_models());
        let text = render(&report, Lang::En, Some("{{ report.models | length }} models\n"), &[]).unwrap();
        assert_eq!(text, "2 models\n");
        let err = render(&report, Lang::Ko, Some("ok\n{{ report.nope.x }}\n"), &[]).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("custom-full.ko.md.j2, line 2"), "{msg}");
    }

    #[test]
    fn report_serializes_as_json() {
        let report = build(&two_models());
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["schema"], SCHEMA);
        assert_eq!(json["models"][0]["traits"]["memory"], "high");
        assert_eq!(json["recommendations"]["fast_start"]["model"], LLAMA);
    }
}
