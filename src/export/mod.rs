//! Exports: a run's figures in the formats of the engines teams already
//! run, for when a history file is not enough. Bencher Metric Format (a
//! Bencher server keeps the history and alerts), OpenMetrics text (the
//! Prometheus Pushgateway or node_exporter's textfile collector, so Grafana
//! draws it), CSV (spreadsheets, pandas, a warehouse) and JSON Lines of
//! history records (what `infergate history append` adds).
//!
//! Pure: functions from loaded results to bytes; `app::export` reads the
//! files and writes the output. Every figure is the core's: per case, phase
//! and catalogue metric the run's statistic as [`crate::history::record_of`]
//! computes it (the catalogue's series and statistic through
//! `RunValue::of`; GPU figures from the phase's GPU summary), so an export
//! and the history never disagree.

pub mod bmf;
pub mod csv;
pub mod openmetrics;

use crate::gate::metrics::{CATALOGUE, MetricDef};
use crate::history::{self, HistoryRecord, Point};
use crate::results::{PhaseName, Results};

/// The output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Bencher Metric Format JSON, for `bencher run --adapter json --file`.
    Bmf,
    /// OpenMetrics text, for the Pushgateway or node_exporter's textfile collector.
    Openmetrics,
    /// RFC 4180 CSV: one row per case, phase and metric, or per request (`--level`).
    Csv,
    /// JSON Lines: one `infergate.history.v1` record per results file.
    Jsonl,
}

/// How fine the CSV rows are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Level {
    /// One row per case, phase and metric: the run's statistic.
    #[default]
    Case,
    /// One row per request, with its own timings.
    Request,
}

/// One results file to export.
#[derive(Debug, Clone, Copy)]
pub struct Run<'a> {
    /// The results.
    pub results: &'a Results,
    /// The profile its figures are filed under.
    pub profile: &'a str,
    /// Where it came from (its path), for errors.
    pub origin: &'a str,
}

/// Why an export cannot be written: each is the user's to fix (exit 2).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExportError {
    /// A format that holds one value per name was given two.
    #[error("{first} and {second} both give {what}; {hint}")]
    Duplicate {
        /// The first results file.
        first: String,
        /// The second one.
        second: String,
        /// What they both give.
        what: String,
        /// How to resolve it.
        hint: &'static str,
    },
    /// Runs of different setups folded into one Bencher report.
    #[error(
        "{first} and {second} are not runs of one setup ({what} differ): a Bencher report holds one testbed's \
         figures; export each profile on its own and pass it to `bencher run --testbed PROFILE`"
    )]
    MixedSetups {
        /// The first results file.
        first: String,
        /// The other one.
        second: String,
        /// What differs.
        what: &'static str,
    },
    /// A name longer than the consumer takes.
    #[error("{what} `{name}` is {len} characters, longer than the {limit} {consumer} takes; use shorter case ids")]
    TooLong {
        /// What the name is.
        what: &'static str,
        /// The name.
        name: String,
        /// Its length in characters.
        len: usize,
        /// The consumer's limit.
        limit: usize,
        /// Who sets the limit.
        consumer: &'static str,
    },
    /// `--level request` asked of a format that has no rows.
    #[error("--level request is for --format csv (the other formats hold the run's statistics, not requests)")]
    LevelNotCsv,
}

/// The output of `format` for `runs`.
pub fn render(format: Format, level: Level, runs: &[Run<'_>]) -> Result<Vec<u8>, ExportError> {
    if level == Level::Request && format != Format::Csv {
        return Err(ExportError::LevelNotCsv);
    }
    match format {
        Format::Bmf => bmf::render(runs),
        Format::Openmetrics => openmetrics::render(runs),
        Format::Csv => Ok(match level {
            Level::Case => csv::cases(runs),
            Level::Request => csv::requests(runs),
        }),
        Format::Jsonl => Ok(jsonl(runs)),
    }
}

/// One history record per run, one per line: what `history append` adds.
pub fn jsonl(runs: &[Run<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for run in runs {
        let record = history::record_of(run.results, run.profile, None, None);
        // A record of strings, numbers and maps always serializes.
        if let Ok(line) = serde_json::to_vec(&record) {
            out.extend_from_slice(&line);
            out.push(b'\n');
        }
    }
    out
}

/// The profile a results file is filed under when `--profile` is not given:
/// its GPU model, model and engine, in lowercase, with every run of
/// characters other than `a-z`, `0-9`, `.` and `_` turned into one `-`
/// (`nvidia-h200-qwen2.5-coder-32b-instruct-awq-vllm`); the model without
/// its organisation (`Qwen/`). Unknown parts are left out.
pub fn default_profile(results: &Results) -> String {
    let server = &results.environment.server;
    let gpu = results.environment.gpu.devices.first().and_then(|d| d.name.as_deref());
    let model = server.model.rsplit('/').next().unwrap_or(&server.model);
    let parts = [gpu, Some(model), server.owned_by.as_deref()];
    let slug = parts.iter().flatten().map(|p| slug(p)).filter(|p| !p.is_empty()).collect::<Vec<_>>().join("-");
    if slug.is_empty() { "default".into() } else { slug }
}

/// `text` in lowercase, each run of other characters than `a-z0-9._` one `-`, none at the ends.
fn slug(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

/// One figure: a catalogue metric of one phase of one case of one run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Figure<'a> {
    /// The case id.
    pub case: &'a str,
    /// The phase.
    pub phase: PhaseName,
    /// The metric.
    pub metric: &'static MetricDef,
    /// Its value, request count and within-run spread, in the metric's unit.
    pub point: Point,
}

/// The figures of a record, in the results' case order, phases cold then
/// warm, metrics in catalogue order.
pub(crate) fn figures<'a>(results: &'a Results, record: &HistoryRecord) -> Vec<Figure<'a>> {
    let mut out = Vec::new();
    for case in &results.cases {
        let Some(phases) = record.cases.get(&case.id) else { continue };
        for (&phase, metrics) in phases {
            for metric in CATALOGUE {
                if let Some(&point) = metrics.get(metric.name) {
                    out.push(Figure { case: &case.id, phase, metric, point });
                }
            }
        }
    }
    out
}

/// The figures of a run, computed as the history computes them.
pub(crate) fn figures_of<'a>(run: &Run<'a>) -> Vec<Figure<'a>> {
    figures(run.results, &history::record_of(run.results, run.profile, None, None))
}

/// A float as the text formats write it: the shortest text that reads back
/// as the same number (`1234.5`, `0.001`, `5`), never an exponent.
pub(crate) fn number(v: f64) -> String {
    format!("{v}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use infergate_core::testing::results;

    #[test]
    fn the_default_profile_names_gpu_model_and_engine() {
        let mut r = results(&["a/1"], 1, 3, 1.0, 0.02);
        assert_eq!(default_profile(&r), "m-vllm");
        r.environment.server.model = "Qwen/Qwen2.5-Coder-32B-Instruct-AWQ".into();
        r.environment
            .gpu
            .devices
            .push(infergate_core::telemetry::GpuDevice { name: Some("NVIDIA H200".into()), ..Default::default() });
        assert_eq!(default_profile(&r), "nvidia-h200-qwen2.5-coder-32b-instruct-awq-vllm");
        r.environment.server.model = "???".into();
        r.environment.server.owned_by = None;
        r.environment.gpu.devices.clear();
        assert_eq!(default_profile(&r), "default");
    }

    #[test]
    fn figures_follow_the_results_and_the_catalogue() {
        let r = results(&["z/1", "a/1"], 2, 12, 1.0, 0.02);
        let run = Run { results: &r, profile: "p", origin: "r.json" };
        let f = figures_of(&run);
        assert_eq!(f[0].case, "z/1");
        assert_eq!((f[0].phase, f[0].metric.name), (PhaseName::Cold, "tokens_per_second"));
        let record = history::record_of(&r, "p", None, None);
        for fig in &f {
            assert_eq!(record.value(fig.case, fig.phase, fig.metric.name), Some(fig.point.value));
        }
        let total: usize = record.cases.values().flat_map(|p| p.values()).map(|m| m.len()).sum();
        assert_eq!(f.len(), total);
    }

    #[test]
    fn request_level_is_only_for_csv() {
        let r = results(&["a/1"], 1, 3, 1.0, 0.02);
        let runs = [Run { results: &r, profile: "p", origin: "r.json" }];
        assert_eq!(render(Format::Bmf, Level::Request, &runs), Err(ExportError::LevelNotCsv));
        assert!(render(Format::Csv, Level::Request, &runs).is_ok());
    }

    #[test]
    fn jsonl_is_one_history_record_per_run() {
        let a = results(&["a/1"], 1, 6, 1.0, 0.02);
        let b = results(&["a/1"], 2, 6, 1.1, 0.02);
        let runs = [Run { results: &a, profile: "p", origin: "a" }, Run { results: &b, profile: "p", origin: "b" }];
        let text = String::from_utf8(jsonl(&runs)).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let back: HistoryRecord = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(back, history::record_of(&b, "p", None, None));
    }

    #[test]
    fn numbers_read_back_exactly() {
        for v in [0.1, 1234.5, 5.0, 1e-7, 123456789.123, f64::MIN_POSITIVE] {
            assert_eq!(number(v).parse::<f64>().unwrap(), v);
            assert!(!number(v).contains('e'));
        }
    }
}
