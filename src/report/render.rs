//! Renders a [`Comparison`] for people: a compact terminal report and a
//! GitHub-flavoured Markdown report (the body of the pull-request comment).
//!
//! The layout lives in templates under `src/report/templates/`, embedded with
//! `include_str!` and replaceable by the user; everything that needs care
//! (units and precision, Markdown escaping, ANSI colours, column alignment,
//! aggregating noise across cases) is done here in Rust and offered to the
//! templates as filters, functions and a prepared context, so that templates
//! stay simple and a user template cannot get escaping wrong by accident.
//!
//! Template context (the same for built-in and user templates):
//! - `comparison`: the [`Comparison`] as serialized (`infergate.comparison.v3`),
//!   with its headline, notes and mismatches' `what` in words, and
//!   `main_over_time` (none without a history) with each of its `trends`
//!   carrying its sentence as `text`.
//! - `rows`: every metric of every case, flattened: the [`MetricComparison`]
//!   fields plus `case`, `case_verdict` and `cells` (the terminal's
//!   pre-formatted texts: `case`, `phase`, `metric`, `baseline`, `current`,
//!   `change`, `limit`, `p`, `mdc`, `status`) and `md` (the Markdown report's,
//!   escaped: `case`, `phase`, `metric`, `baseline`, `current`, `change`,
//!   `limit`, `p`, `detects`, `status`). Rows are objects that format their
//!   texts when first read (see `view.rs`).
//! - `changes`: rows beyond tolerance and significant (regressed, then warn,
//!   then improved); `regressed`: the fail-level regressions only;
//!   `notable`: regressed, warn, cannot judge and improved rows;
//!   `noise_count`: how many rows were beyond tolerance but not significant.
//! - `cannot_judge`: per case, the metrics that had too few samples.
//! - `power`: per metric, the noise and power of the check across cases.
//! - `color`: whether ANSI colours are on.
//! - `lang`: the report's language, `en` or `ko`.
//!
//! Words come from `tr(key, n=COUNT, name=VALUE, ...)`, which looks `key`
//! up in the report language's table (see [`super::words`]) and fills its
//! placeholders with the values given (already escaped by the template);
//! `value | word("phase")` gives the word for a name the report knows
//! (`phase.warm`) and the name itself otherwise.

use anyhow::anyhow;
use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Kwargs, Serde};
use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior, Value};
use serde::Deserialize;

pub use super::escape::{clean, fenced, md_escape};
use super::escape::{inline_code, sentence};
use super::format::{Limit, MISSING, format_limit};
pub use super::format::{format_p, format_pct, format_pct_abs, format_value};
use super::layout::{paint, table};
use super::view::{View, row_of};
use super::words::{Lang, Words};
use crate::gate::Comparison;

/// The built-in terminal template.
const TERMINAL_TEMPLATE: &str = include_str!("templates/terminal.txt.j2");
/// The built-in Markdown template.
const MARKDOWN_TEMPLATE: &str = include_str!("templates/comparison.md.j2");

/// Which report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Compact plain text for a terminal or a CI log, optionally coloured.
    Terminal,
    /// GitHub-flavoured Markdown, for a pull-request comment or a job summary.
    Markdown,
}

impl Format {
    /// The file name of the built-in template.
    pub fn template_name(self) -> &'static str {
        match self {
            Format::Terminal => "terminal.txt.j2",
            Format::Markdown => "comparison.md.j2",
        }
    }

    /// The built-in template's source.
    pub fn builtin_template(self) -> &'static str {
        match self {
            Format::Terminal => TERMINAL_TEMPLATE,
            Format::Markdown => MARKDOWN_TEMPLATE,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Format::Terminal => "terminal",
            Format::Markdown => "Markdown",
        }
    }
}

/// Options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RenderOptions {
    /// ANSI colours in the terminal report (ignored by Markdown).
    pub color: bool,
    /// User-supplied template text replacing the built-in one for this format.
    pub template: Option<String>,
    /// The language of the words.
    pub lang: Lang,
}

/// Renders `comparison` with the embedded template for `format`, or with the
/// user's template from `options.template`.
///
/// Errors in a template (syntax, an unknown filter, a filter given the wrong
/// type) come back as `Err` naming the template and the line, with the
/// offending source lines; never a panic.
pub fn render(comparison: &Comparison, format: Format, options: &RenderOptions) -> anyhow::Result<String> {
    let words = Words::of(options.lang);
    let env = environment(options.color, words);
    let (name, source, origin) = match &options.template {
        Some(text) => (format!("custom-{}", format.template_name()), text.as_str(), "user"),
        None => (format.template_name().to_string(), format.builtin_template(), "built-in"),
    };
    let what = format!("{origin} {} template", format.describe());
    let template = env.template_from_named_str(&name, source).map_err(|e| template_error(&what, &e))?;
    let context = Value::from(Serde(View::new(comparison, options.color, words)));
    template.render(context).map_err(|e| template_error(&what, &e))
}

/// Turns a template error into a message naming the template and the line,
/// with minijinja's excerpt of the source (the `{:#}` form).
pub(crate) fn template_error(what: &str, e: &minijinja::Error) -> anyhow::Error {
    let place = match (e.name(), e.line()) {
        (Some(name), Some(line)) => format!("{name}, line {line}"),
        (Some(name), None) => name.to_string(),
        (None, Some(line)) => format!("line {line}"),
        (None, None) => "unknown position".to_string(),
    };
    anyhow!("{what} ({place}): {e:#}")
}

/// The settings every report template runs under (this report's and the full report's).
pub(crate) fn base_environment() -> Environment<'static> {
    let mut env = Environment::new();
    // Escaping is explicit (`md`), never by file extension: HTML escaping
    // would mangle the Markdown and the terminal text alike.
    env.set_auto_escape_callback(|_| AutoEscape::None);
    // A misspelt field in a user template should be an error, not an empty cell.
    env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
    // Source excerpts in errors, in release builds too.
    env.set_debug(true);
    // Block tags on their own lines leave no blank lines behind.
    if let Ok(syntax) =
        SyntaxConfig::builder().trim_blocks(true).lstrip_blocks(true).keep_trailing_newline(true).build()
    {
        env.set_syntax(syntax);
    }
    env
}

/// The environment with every filter and function the templates may use.
fn environment(color: bool, words: Words) -> Environment<'static> {
    let mut env = base_environment();

    env.add_filter("value", |v: Option<f64>, unit: Option<String>| format_value(v, unit.as_deref().unwrap_or("")));
    env.add_filter("pct", |v: Option<f64>| v.map_or_else(|| MISSING.to_string(), format_pct));
    env.add_filter("pct_abs", |v: Option<f64>| v.map_or_else(|| MISSING.to_string(), format_pct_abs));
    env.add_filter("pvalue", |v: Option<f64>| format_p(v));
    env.add_filter("limit", move |rule: Value| -> Result<String, minijinja::Error> {
        // A row object gives its fields straight; anything else is read as a `Limit`.
        match row_of(&rule) {
            Some(row) => Ok(format_limit(&Limit::of(row.metric()), &words)),
            None => Ok(format_limit(&Limit::deserialize(rule)?, &words)),
        }
    });
    env.add_filter("md", |v: Value| md_escape(&text_of(&v)));
    env.add_filter("code", |v: Value| inline_code(&text_of(&v)));
    env.add_filter("fence", |v: Value, lang: Option<String>| fenced(&text_of(&v), lang.as_deref().unwrap_or("")));
    env.add_filter("clean", |v: Value| clean(&text_of(&v)));
    env.add_filter("sentence", |v: Value| sentence(&text_of(&v)));
    let paint_fn = move |v: Value, style: String| paint(&text_of(&v), &style, color);
    env.add_filter("paint", paint_fn);
    env.add_function("paint", paint_fn);
    env.add_function("table", move |rows: Value, columns: Vec<String>| table(&rows, &columns, color, &words));
    env.add_function("tr", move |key: &str, kwargs: Kwargs| word(&words, key, &kwargs));
    env.add_filter("word", move |v: Value, prefix: &str| words.name_or_self(prefix, &text_of(&v)).into_owned());
    env
}

/// `tr(key, n=COUNT, name=VALUE, ...)`: the word `key` for the count `n`,
/// its placeholders filled with the values given. An unknown key, a
/// placeholder without a value or a value no placeholder takes is an error
/// naming them, so a misspelt word fails rather than printing nothing.
fn word(words: &Words, key: &str, kwargs: &Kwargs) -> Result<String, minijinja::Error> {
    let arg = |name: &str| if kwargs.has(name) { kwargs.get::<Value>(name).ok() } else { None };
    let n = match arg("n") {
        Some(v) if !v.is_none() && !v.is_undefined() => Some(i64::try_from(v.clone()).map_err(|_| {
            minijinja::Error::new(
                ErrorKind::InvalidOperation,
                format!("tr(\"{key}\"): n must be a whole number, got {v}"),
            )
        })?),
        _ => None,
    };
    let text = words
        .text(key, n, &|name| arg(name).map(|v| text_of(&v)))
        .map_err(|e| minijinja::Error::new(ErrorKind::InvalidOperation, format!("tr(\"{key}\"): {e}")))?;
    kwargs.assert_all_used().map_err(|e| {
        minijinja::Error::new(ErrorKind::InvalidOperation, format!("tr(\"{key}\"): {e}, which the word does not take"))
    })?;
    Ok(text)
}

/// The text of a template value: strings as they are, none as nothing.
pub(crate) fn text_of(v: &Value) -> String {
    if v.is_none() || v.is_undefined() {
        String::new()
    } else if let Some(s) = v.as_str() {
        s.to_string()
    } else {
        v.to_string()
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::gate::Direction;
    use crate::gate::{
        CaseComparison, CaseNote, CaseVerdict, Change, Counts, Headline, Level, MetricComparison, MetricStatus,
        Mismatch, MismatchKind, Problem, RunNote, SCHEMA, ServerSummary, Verdict,
    };
    use crate::gate::{MainOverTime, MainTrend};
    use crate::github::truncate::{cut_lines, truncate_markdown};
    use crate::runner::capabilities::Capabilities;

    const ACCEPT: &str =
        "infergate baseline update --results infergate-out/results.json --baseline baselines/h100-vllm.toml";

    // --- a small builder for hand-made comparisons -------------------------

    /// A passing metric with realistic defaults for its kind.
    fn m(metric: &str, phase: &str, baseline: f64, current: f64) -> MetricComparison {
        let (unit, direction, tolerance, floor, level) = match metric {
            "tokens_per_second" | "decode_tokens_per_second" => {
                ("tok/s", Direction::HigherIsBetter, 0.05, 0.0, Level::Fail)
            }
            "ttft_median" => ("ms", Direction::LowerIsBetter, 0.10, 20.0, Level::Fail),
            "e2e_p99" => ("ms", Direction::LowerIsBetter, 0.15, 0.0, Level::Warn),
            _ => ("ms", Direction::LowerIsBetter, 0.10, 0.0, Level::Fail),
        };
        MetricComparison {
            metric: metric.into(),
            phase: phase.into(),
            unit: unit.into(),
            direction,
            level,
            baseline,
            current,
            change: (current - baseline) / baseline,
            tolerance,
            floor,
            p_value: Some(0.412),
            samples: [30, 6],
            runs: [5, 1],
            spread_source: Some(crate::stats::runlevel::SpreadSource::Runs),
            spread: Some(0.012),
            noise: Some(tolerance * 0.3),
            threshold: Some(tolerance),
            min_detectable_change: Some(tolerance * 1.62),
            repetitions_needed: None,
            runs_needed: None,
            status: MetricStatus::Pass,
        }
    }

    fn with(mut metric: MetricComparison, status: MetricStatus, p: f64) -> MetricComparison {
        metric.status = status;
        metric.p_value = Some(p);
        metric
    }

    fn case(id: &str, verdict: CaseVerdict, metrics: Vec<MetricComparison>) -> CaseComparison {
        CaseComparison {
            id: id.into(),
            verdict,
            metrics,
            output_similarity: Some(1.0),
            notes: Vec::new(),
            gpu: Vec::new(),
        }
    }

    /// The change of one metric of one case, as a headline names it.
    fn change(case: &str, metric: &str, baseline: f64, current: f64, unit: &str) -> Change {
        Change {
            case: case.into(),
            metric: metric.into(),
            phase: "warm".into(),
            change: current / baseline - 1.0,
            baseline,
            current,
            unit: unit.into(),
            tolerance: 0.05,
            floor: 0.0,
        }
    }

    fn comparison(verdict: Verdict, headline: Headline, cases: Vec<CaseComparison>) -> Comparison {
        let mut counts = Counts::default();
        for c in &cases {
            match c.verdict {
                CaseVerdict::Invalid => counts.invalid += 1,
                CaseVerdict::Regressed => counts.regressed += 1,
                CaseVerdict::Warn => counts.warnings += 1,
                CaseVerdict::Missing => counts.missing += 1,
                CaseVerdict::New => counts.new += 1,
                CaseVerdict::Improved => counts.improved += 1,
                CaseVerdict::Pass => counts.unchanged += 1,
            }
        }
        let compared = cases.len().max(1) as f64;
        Comparison {
            schema: SCHEMA.into(),
            verdict,
            headline,
            profile: "h100-vllm".into(),
            baseline_path: ".infergate/baselines/h100-vllm.json".into(),
            results_paths: vec![".infergate/results/run-20250611-1422.json".into()],
            run_ids: vec!["run-20250611-1422".into()],
            mismatches: Vec::new(),
            mismatch_allowed: false,
            significance: 0.05,
            test_significance: 0.05 / compared,
            run_to_run: crate::gate::RunToRun {
                source: Some(crate::stats::runlevel::SpreadSource::Runs),
                baseline_runs: 5,
                current_runs: 1,
                median_cv: Some(0.012),
                history_runs: None,
            },
            counts,
            cases,
            notes: Vec::new(),
            accept_command: ACCEPT.into(),
            accept_diff: None,
            server: ServerSummary {
                model: "Qwen/Qwen2.5-Coder-32B-Instruct".into(),
                engine: Some("vllm".into()),
                version: Some("0.8.5".into()),
                time_to_ready_s: Some(84.23),
                gpu_memory_after_load_mib: Some(71234.0),
                capabilities: Some(Capabilities {
                    engine: Some("vllm".into()),
                    version: Some("0.8.5".into()),
                    version_source: Some("GET /version".into()),
                    context_length: Some(32768),
                    usage_streamed: Some(true),
                    natural_length: Some(3),
                    ignore_eos_holds_length: Some(true),
                    min_tokens_holds_length: Some(true),
                    tokenize: true,
                    cache_reset: Some("/reset_prefix_cache".into()),
                    notes: Vec::new(),
                }),
            },
            main_over_time: None,
        }
    }

    fn passing_case(id: &str, scale: f64) -> CaseComparison {
        case(
            id,
            CaseVerdict::Pass,
            vec![
                m("tokens_per_second", "warm", 41.3 / scale, 41.1 / scale),
                m("ttft_median", "cold", 212.4 * scale, 218.9 * scale),
                m("ttft_median", "warm", 38.6 * scale, 39.1 * scale),
                m("e2e_median", "warm", 2841.0 * scale, 2862.5 * scale),
                m("e2e_p99", "warm", 3390.0 * scale, 3412.0 * scale),
            ],
        )
    }

    fn pass() -> Comparison {
        let mut noisy = passing_case("rag/4096", 2.1);
        noisy.metrics[1] = with(m("ttft_median", "cold", 446.0, 497.3), MetricStatus::Noise, 0.21);
        comparison(
            Verdict::Pass,
            Headline::NoChange { cases: 3 },
            vec![passing_case("chat/512", 1.0), passing_case("code-review/12800", 4.3), noisy],
        )
    }

    pub(crate) fn regression() -> Comparison {
        let chat = case(
            "chat/512",
            CaseVerdict::Regressed,
            vec![
                with(m("tokens_per_second", "warm", 41.3, 37.58), MetricStatus::Regressed, 0.0022),
                with(m("e2e_median", "warm", 2841.0, 3153.5), MetricStatus::Regressed, 0.0022),
                with(m("e2e_p99", "warm", 3390.0, 3995.1), MetricStatus::Warn, 0.0087),
                m("ttft_median", "cold", 212.4, 214.0),
                m("ttft_median", "warm", 38.6, 39.0),
            ],
        );
        let mut rag = case(
            "rag/4096",
            CaseVerdict::Regressed,
            vec![
                with(m("tokens_per_second", "warm", 38.9, 35.41), MetricStatus::Regressed, 0.0022),
                with(m("e2e_median", "warm", 6120.0, 6793.2), MetricStatus::Regressed, 0.0043),
                m("e2e_p99", "warm", 7301.0, 7688.0),
                m("ttft_median", "cold", 446.0, 449.5),
                with(m("ttft_median", "warm", 61.2, 68.1), MetricStatus::Noise, 0.18),
            ],
        );
        rag.output_similarity = Some(0.874);
        rag.notes.push(CaseNote::OutputDrift { similarity: 0.874, threshold: 0.9 });
        let mut review = passing_case("code-review/12800", 4.3);
        review.metrics[4].min_detectable_change = Some(0.412);
        review.metrics[4].runs_needed = Some(12);
        let mut c = comparison(
            Verdict::Regressed,
            Headline::Regressed { change: change("chat/512", "tokens_per_second", 41.3, 37.58, "tok/s") },
            vec![chat, rag, review],
        );
        c.counts.warnings = 0;
        c
    }

    /// A trend of main for the "main over time" line.
    fn trend(
        metric: &str,
        change: f64,
        worse: bool,
        since: (Option<&str>, &str),
        runs_ago: usize,
        steps: usize,
    ) -> MainTrend {
        MainTrend {
            metric: metric.into(),
            change,
            worse,
            since_commit: since.0.map(str::to_string),
            since_run: since.1.into(),
            runs_ago,
            steps,
            tolerance: 0.05,
            series: 3,
        }
    }

    /// The regression, with main's history read: throughput and latency
    /// stepped down on main too, tail TTFT crept better, and a run id that
    /// needs escaping.
    fn regression_with_history() -> Comparison {
        let mut c = regression();
        let commit = Some("abc1234f00dfeed5eed0000000000000000000000");
        c.main_over_time = Some(MainOverTime {
            profile: "h100-vllm".into(),
            runs: 30,
            trends: vec![
                trend("e2e_median", 0.1342, true, (commit, "run-20250603-0812"), 14, 3),
                trend("tokens_per_second", -0.1184, true, (commit, "run-20250603-0812"), 14, 3),
                trend("tpot_p99", 0.071, true, (Some("9f8e7d6"), "run-20250608-1130"), 6, 1),
                trend("ttft_p99", -0.082, false, (None, "run_2025*05 <main>"), 30, 0),
            ],
        });
        c
    }

    fn improvement() -> Comparison {
        let chat = case(
            "chat/512",
            CaseVerdict::Improved,
            vec![
                with(m("tokens_per_second", "warm", 41.3, 46.4), MetricStatus::Improved, 0.0022),
                with(m("ttft_median", "cold", 212.4, 171.9), MetricStatus::Improved, 0.0022),
                m("ttft_median", "warm", 38.6, 37.9),
                m("e2e_median", "warm", 2841.0, 2702.3),
                m("e2e_p99", "warm", 3390.0, 3301.0),
            ],
        );
        comparison(
            Verdict::Improved,
            Headline::Improved {
                update_required: false,
                change: Some(change("chat/512", "tokens_per_second", 41.3, 46.4, "tok/s")),
            },
            vec![chat, passing_case("rag/4096", 2.1)],
        )
    }

    fn refusal() -> Comparison {
        let headline = Headline::NotCompared {
            what: MismatchKind::Suite,
            baseline: "chat-v1 (3 cases)".into(),
            current: "chat-v2 (4 cases)".into(),
            more: 1,
        };
        let mut c = comparison(Verdict::Refused, headline, vec![]);
        c.mismatches = vec![
            Mismatch {
                what: MismatchKind::Suite,
                baseline: "chat-v1 (3 cases)".into(),
                current: "chat-v2 (4 cases)".into(),
            },
            Mismatch {
                what: MismatchKind::Model,
                baseline: "meta-llama/Llama-3.1-8B-Instruct".into(),
                current: "Qwen/Qwen2.5-7B-Instruct".into(),
            },
        ];
        c
    }

    fn cannot_judge() -> Comparison {
        let undecided = |id: &str, scale: f64| {
            let mut c = passing_case(id, scale);
            c.verdict = CaseVerdict::Warn;
            for metric in &mut c.metrics {
                metric.status = MetricStatus::CannotJudge;
                metric.samples = [3, 3];
                metric.runs = [1, 1];
                metric.p_value = None;
                metric.spread_source = None;
                metric.spread = None;
                metric.noise = None;
                metric.threshold = None;
                metric.min_detectable_change = None;
                metric.repetitions_needed = Some(5);
            }
            c
        };
        let mut c = comparison(
            Verdict::Warn,
            Headline::CannotJudgeOneRun {
                metric: "tokens_per_second".into(),
                case: "chat/512".into(),
                requests: 3,
                needed: 5,
            },
            vec![undecided("chat/512", 1.0), undecided("rag/4096", 2.1)],
        );
        c.run_to_run = crate::gate::RunToRun::default();
        c
    }

    fn render_plain(c: &Comparison, format: Format) -> String {
        match render(c, format, &RenderOptions::default()) {
            Ok(s) => s,
            Err(e) => panic!("render failed: {e:#}"),
        }
    }

    // --- filters -------------------------------------------------------------

    #[test]
    fn values_have_units_and_precision() {
        let cases: &[(f64, &str, &str)] = &[
            (3.4512, "ms", "3.45 ms"),
            (0.0, "ms", "0.00 ms"),
            (9.999, "ms", "10.0 ms"),
            (123.44, "ms", "123.4 ms"),
            (999.96, "ms", "1.00 s"),
            (12345.6, "ms", "12.35 s"),
            (-3.2, "ms", "-3.20 ms"),
            (35.24, "tok/s", "35.2 tok/s"),
            (1204.0, "tok/s", "1204.0 tok/s"),
            (0.123456, "", "0.1235"),
            (1234.56, "req", "1235 req"),
            (12345.6, "B", "12346 B"),
            (1.5, "x", "1.5 x"),
            (9.99996, "", "10"),
            (2.0, "%", "2%"),
            (f64::NAN, "ms", "n/a"),
        ];
        for (v, unit, want) in cases {
            assert_eq!(format_value(Some(*v), unit), *want, "value({v}, {unit:?})");
        }
        assert_eq!(format_value(None, "ms"), "—");
    }

    #[test]
    fn percentages_are_signed_or_not() {
        for (v, want) in [(0.0912, "+9.1%"), (-0.05, "-5.0%"), (0.0, "0.0%"), (-0.0004, "0.0%"), (1.5, "+150.0%")] {
            assert_eq!(format_pct(v), want, "pct({v})");
        }
        for (v, want) in [(0.05, "5%"), (0.075, "7.5%"), (0.0712, "7.1%"), (0.0999, "10%"), (-0.05, "5%")] {
            assert_eq!(format_pct_abs(v), want, "pct_abs({v})");
        }
        assert_eq!(format_pct(f64::INFINITY), "n/a");
    }

    #[test]
    fn p_values_and_limits() {
        assert_eq!(format_p(None), "—");
        assert_eq!(format_p(Some(0.0004)), "<0.001");
        assert_eq!(format_p(Some(0.0123)), "0.012");
        let en = Words::of(Lang::En);
        let limit = |direction, tolerance, floor: f64| {
            format_limit(&Limit { direction, tolerance, floor, unit: "ms".into() }, &en)
        };
        assert_eq!(limit(Direction::HigherIsBetter, 0.05, 0.0), "-5%");
        assert_eq!(limit(Direction::LowerIsBetter, 0.10, 20.0), "+10%, floor 20 ms");
        assert_eq!(limit(Direction::LowerIsBetter, 0.125, 2.5), "+12.5%, floor 2.5 ms");
        let ko = Limit { direction: Direction::LowerIsBetter, tolerance: 0.1, floor: 20.0, unit: "ms".into() };
        assert_eq!(format_limit(&ko, &Words::of(Lang::Ko)), "+10%, 최소 20 ms");
    }

    #[test]
    fn md_escapes_markdown_html_and_newlines() {
        let cases: &[(&str, &str)] = &[
            ("chat/512", "chat/512"),
            ("a|b", r"a\|b"),
            ("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
            ("`rm -rf`", r"\`rm -rf\`"),
            ("*bold* _it_ [link](x) # ~s~ \\", r"\*bold\* \_it\_ \[link\](x) \# \~s\~ \\"),
            ("R&D", "R&amp;D"),
            ("line one\nline two\r\n\r\nline three", "line one line two line three"),
            ("> quote", "&gt; quote"),
            ("ansi \u{1b}[31mred", r"ansi  \[31mred"),
            ("@everyone @org/team a@b", "@&#8203;everyone @&#8203;org/team a@&#8203;b"),
            ("fixes #1, see #x and @ alone", r"fixes \#&#8203;1, see \#x and @ alone"),
            ("::error::owned", r"\::error\::owned"),
            ("a: b", "a: b"),
            ("see https://evil.example/x", r"see https\://evil.example/x"),
            ("www.evil.example and WWW.x", r"www\.evil.example and WWW\.x"),
            ("awww.x ww. w", r"awww\.x ww. w"),
        ];
        for (input, want) in cases {
            assert_eq!(md_escape(input), *want, "md({input:?})");
        }
        assert_eq!(clean("a\n\nb\u{1b}[2Jc\td"), "a b [2Jc d");
        assert_eq!(clean("::error::x"), ":\u{200B}:error:\u{200B}:x");
        assert_eq!(clean(":::"), ":\u{200B}:\u{200B}:");
        assert_eq!(inline_code("a`b"), "``a`b``");
        assert_eq!(inline_code("`x"), "`` `x ``");
        assert_eq!(sentence("fell 9%"), "fell 9%.");
        assert_eq!(sentence("done."), "done.");
    }

    #[test]
    fn fenced_lines_cannot_start_a_workflow_command() {
        let out = fenced("a\n::error::x\n  ::warning::y\r::notice::z\nkeep :: this\n", "diff");
        assert_eq!(
            out,
            "```diff\na\n:\u{200B}:error::x\n  :\u{200B}:warning::y\r:\u{200B}:notice::z\nkeep :: this\n```"
        );
        for line in out.split(['\n', '\r']) {
            assert!(!line.trim_start().starts_with("::"), "{line}");
        }
    }

    #[test]
    fn fence_is_longer_than_any_backquote_run() {
        assert_eq!(fenced("infergate baseline update", "sh"), "```sh\ninfergate baseline update\n```");
        let command = "echo ```` && echo `date`";
        assert_eq!(fenced(command, "sh"), format!("`````sh\n{command}\n`````"));
    }

    #[test]
    fn backquotes_in_the_accept_command_cannot_break_out() {
        let mut c = regression();
        c.accept_command = "infergate baseline update --note '```\n<img src=x onerror=alert(1)>' `whoami`".into();
        let md = render_plain(&c, Format::Markdown);
        let fence_line = md.lines().position(|l| l.starts_with("````sh")).expect("a fence of four backquotes");
        let lines: Vec<&str> = md.lines().collect();
        assert_eq!(lines[fence_line + 1], "infergate baseline update --note '```");
        assert_eq!(lines[fence_line + 3], "````", "{md}");
        assert!(md.trim_end().ends_with("````"));
    }

    #[test]
    fn free_text_from_the_comparison_is_escaped_in_markdown() {
        let mut c = regression();
        // Case ids and error classes come from the results file: untrusted text.
        c.headline = Headline::CaseWarning { case: "e2e_median rose | <b>11%</b>\n# not a heading".into(), note: None };
        c.cases[1].notes = vec![CaseNote::Problem {
            run: None,
            problem: Problem::ErrorRate {
                errors: 1,
                judged: 2,
                classes: vec![("server said: <script>x</script> | `oops`".into(), 1)],
                allowed: 0.0,
            },
        }];
        c.cases[1].id = "rag|4096".into();
        let md = render_plain(&c, Format::Markdown);
        assert!(md.contains(r"Warning: e2e\_median rose \| &lt;b&gt;11%&lt;/b&gt; \# not a heading"), "{md}");
        assert!(md.contains(r"server said: &lt;script&gt;x&lt;/script&gt; \| \`oops\`"), "{md}");
        assert!(md.contains(r"| rag\|4096 |"), "{md}");
        assert!(!md.contains("<script>"));
        assert!(!md.contains("<b>"));
    }

    #[test]
    fn terminal_strips_control_characters_and_colours_on_request() {
        let mut c = regression();
        c.headline = Headline::RegressedCase {
            case: "chat/512".into(),
            note: Some(CaseNote::Problem {
                run: None,
                problem: Problem::ErrorRate {
                    errors: 1,
                    judged: 2,
                    classes: vec![("fell\u{1b}[2J\nhard".into(), 1)],
                    allowed: 0.0,
                },
            }),
        };
        let plain = render_plain(&c, Format::Terminal);
        assert!(!plain.contains('\u{1b}'));
        assert!(plain.starts_with("REGRESSED: Regressed: 1 of 2 requests failed (1 fell [2J hard);"), "{plain}");
        let colored = render(&c, Format::Terminal, &RenderOptions { color: true, template: None, lang: Lang::En })
            .unwrap_or_default();
        assert!(colored.starts_with("\u{1b}[31mREGRESSED\u{1b}[0m: "), "{colored}");
        assert!(colored.contains("\u{1b}[33mwarn\u{1b}[0m"), "{colored}");
        // Colour codes do not disturb the alignment: the same rows, the same columns.
        let strip = |s: &str| {
            s.replace("\u{1b}[31m", "").replace("\u{1b}[33m", "").replace("\u{1b}[2m", "").replace("\u{1b}[0m", "")
        };
        assert_eq!(strip(&colored), plain);
    }

    #[test]
    fn mismatch_allowed_is_called_out_at_the_top() {
        let mut c = regression();
        c.mismatch_allowed = true;
        c.mismatches = vec![Mismatch {
            what: MismatchKind::Gpu,
            baseline: "NVIDIA H100 80GB HBM3".into(),
            current: "NVIDIA H100 NVL".into(),
        }];
        let md = render_plain(&c, Format::Markdown);
        let callout = md.find("> Compared despite:").expect("callout");
        assert!(callout < md.find("| Case |").unwrap_or(usize::MAX));
        assert!(md.contains(r"> - **GPU**: NVIDIA H100 80GB HBM3 in the baseline, NVIDIA H100 NVL now"), "{md}");
        let term = render_plain(&c, Format::Terminal);
        assert!(
            term.contains(
                "mismatches (compared anyway: --allow-mismatch):\n  GPU: NVIDIA H100 80GB HBM3 → NVIDIA H100 NVL\n"
            ),
            "{term}"
        );
    }

    #[test]
    fn invalid_cases_get_a_caution() {
        let mut c = regression();
        c.verdict = Verdict::Invalid;
        c.cases[0].verdict = CaseVerdict::Invalid;
        c.cases[0].notes = vec![CaseNote::Problem {
            run: None,
            problem: Problem::ErrorRate { errors: 7, judged: 24, classes: vec![("http_503".into(), 7)], allowed: 0.0 },
        }];
        let md = render_plain(&c, Format::Markdown);
        assert!(md.contains("> [!CAUTION]\n> 1 case is invalid and was not judged:\n> - **chat/512**: 7 of 24 requests failed (7 http\\_503); the allowed error rate is 0 (\\[gate\\] max\\_error\\_rate)\n"), "{md}");
        assert!(!md.contains("To accept this change"));
    }

    #[test]
    fn noise_is_aggregated_per_metric() {
        let mut c = pass();
        for case in &mut c.cases {
            for metric in &mut case.metrics {
                if metric.metric == "e2e_p99" {
                    metric.min_detectable_change = Some(0.34);
                    metric.repetitions_needed = None;
                    metric.runs_needed = Some(12);
                }
            }
        }
        let term = render_plain(&c, Format::Terminal);
        let noise: Vec<&str> = term.lines().filter(|l| l.starts_with("noise:")).collect();
        assert_eq!(
            noise,
            ["noise: e2e_p99 in 3 cases only catches changes of 34% or more, not twice its tolerance 15%; record 12 \
                 baseline runs; more repetitions cannot help against the drift between runs"]
        );
        let md = render_plain(&c, Format::Markdown);
        assert!(
            md.contains(
                "- **e2e\\_p99** (tolerance 15%, 3 cases): with 5 baseline runs and 6 repetitions this check catches \
                 changes of 34% or more 95% of the time (run-to-run spread 1.2%, measured); in 3 cases it cannot catch \
                 twice the tolerance: record 12 baseline runs; more repetitions cannot help against drift.\n"
            ),
            "{md}"
        );
    }

    #[test]
    fn every_verdict_and_status_renders() {
        let verdicts = [
            Verdict::Refused,
            Verdict::Invalid,
            Verdict::Regressed,
            Verdict::UpdateRequired,
            Verdict::Warn,
            Verdict::Improved,
            Verdict::Pass,
        ];
        let case_verdicts = [
            CaseVerdict::Invalid,
            CaseVerdict::Regressed,
            CaseVerdict::Warn,
            CaseVerdict::Missing,
            CaseVerdict::New,
            CaseVerdict::Improved,
            CaseVerdict::Pass,
        ];
        let statuses = [
            MetricStatus::Regressed,
            MetricStatus::Warn,
            MetricStatus::CannotJudge,
            MetricStatus::Improved,
            MetricStatus::Noise,
            MetricStatus::Pass,
        ];
        let mut cases: Vec<CaseComparison> = case_verdicts
            .iter()
            .map(|v| {
                let mut c = case(&format!("case-{}", v.as_str()), *v, Vec::new());
                c.output_similarity = None;
                c.notes.push(match v {
                    CaseVerdict::Missing => CaseNote::NotInResults,
                    CaseVerdict::New => CaseNote::NotInBaseline,
                    CaseVerdict::Invalid => CaseNote::NothingJudged,
                    _ => CaseNote::SomeCannotJudge,
                });
                c
            })
            .collect();
        cases[1].metrics = statuses.iter().map(|s| with(m("e2e_median", "warm", 2841.0, 3153.5), *s, 0.01)).collect();
        for verdict in verdicts {
            let mut c = comparison(verdict, Headline::Warnings, cases.clone());
            c.notes.push(RunNote::Runner { message: "the run was incomplete: 2 of 6 repetitions".into() });
            for (format, color) in [(Format::Terminal, false), (Format::Terminal, true), (Format::Markdown, false)] {
                for lang in [Lang::En, Lang::Ko] {
                    let out = render(&c, format, &RenderOptions { color, template: None, lang });
                    assert!(
                        out.is_ok(),
                        "{verdict:?} {format:?} {lang}: {:#}",
                        out.err().map_or(String::new(), |e| format!("{e:#}"))
                    );
                }
            }
        }
        let mut last =
            comparison(Verdict::UpdateRequired, Headline::Improved { update_required: true, change: None }, cases);
        last.notes.push(RunNote::Runner { message: "the run was incomplete: 2 of 6 repetitions".into() });
        let md = render_plain(&last, Format::Markdown);
        assert!(md.contains("> [!NOTE]\n> - the run was incomplete: 2 of 6 repetitions\n"), "{md}");
        assert!(md.starts_with("### infergate: 🔄 UPDATE REQUIRED\n"), "{md}");
        assert!(md.contains("| **case-new** | — | — | — | — | — | — | — | — | 🆕 new |"), "{md}");
        assert!(md.contains("- ❔ **case-missing**: in the baseline but not in the results"), "{md}");
    }

    // --- user templates --------------------------------------------------------

    #[test]
    fn a_user_template_replaces_the_built_in_one() {
        let template = "{{ comparison.verdict | upper }} {{ regressed | length }} of {{ rows | length }}: \
                        {% for r in regressed %}{{ r.case | md }} {{ r.metric | md }} {{ r.change | pct }} \
                        ({{ r.current | value(r.unit) }}){{ \", \" if not loop.last else \"\" }}{% endfor %}";
        let options = RenderOptions { color: false, template: Some(template.into()), lang: Lang::En };
        let out = render(&regression(), Format::Markdown, &options).map_err(|e| format!("{e:#}"));
        assert_eq!(
            out.as_deref(),
            Ok("REGRESSED 4 of 15: chat/512 tokens\\_per\\_second -9.0% (37.6 tok/s), chat/512 e2e\\_median +11.0% \
                (3.15 s), rag/4096 tokens\\_per\\_second -9.0% (35.4 tok/s), rag/4096 e2e\\_median +11.0% (6.79 s)")
        );
    }

    #[test]
    fn a_syntax_error_names_the_template_and_line() {
        let options = RenderOptions {
            color: false,
            template: Some("### {{ comparison.verdict }}\n\n{% if rows %}\n".into()),
            lang: Lang::En,
        };
        let err = render(&pass(), Format::Markdown, &options).expect_err("unclosed if");
        let msg = format!("{err:#}");
        assert!(msg.starts_with("user Markdown template (custom-comparison.md.j2, line "), "{msg}");
        assert!(msg.contains("syntax error"), "{msg}");

        let options = RenderOptions {
            color: false,
            template: Some("ok\n{{ comparison.headline | shout }}\n".into()),
            lang: Lang::En,
        };
        let msg = format!("{:#}", render(&pass(), Format::Terminal, &options).expect_err("unknown filter"));
        assert!(msg.starts_with("user terminal template (custom-terminal.txt.j2, line 2): "), "{msg}");
        assert!(msg.contains("shout"), "{msg}");

        let options = RenderOptions { color: false, template: Some("{{ comparison.verdikt }}".into()), lang: Lang::En };
        let msg = format!("{:#}", render(&pass(), Format::Markdown, &options).expect_err("unknown field"));
        assert!(msg.contains("line 1"), "{msg}");

        let options = RenderOptions {
            color: false,
            template: Some("{{ table(rows, [\"case\", \"nope\"]) }}".into()),
            lang: Lang::En,
        };
        let msg = format!("{:#}", render(&pass(), Format::Terminal, &options).expect_err("unknown column"));
        assert!(msg.contains("unknown column `nope`"), "{msg}");
    }

    // --- truncation ------------------------------------------------------------

    fn big_regression(cases: usize) -> Comparison {
        let mut c = regression();
        for i in 0..cases {
            c.cases.push(passing_case(&format!("sweep/{:04}", i * 128), 1.0 + i as f64 / 50.0));
            c.counts.unchanged += 1;
        }
        c
    }

    fn assert_balanced(md: &str) {
        assert_eq!(md.matches("<details>").count(), md.matches("</details>").count(), "{md}");
        let fences = md.lines().filter(|l| l.starts_with("```")).count();
        assert_eq!(fences % 2, 0, "unclosed fence:\n{md}");
    }

    #[test]
    fn short_markdown_is_left_alone() {
        let md = render_plain(&regression(), Format::Markdown);
        assert_eq!(truncate_markdown(&md, 65_536, "cut"), md);
    }

    #[test]
    fn truncation_drops_details_and_keeps_verdict_regressions_and_accept_command() {
        let md = render_plain(&big_regression(400), Format::Markdown);
        assert!(md.chars().count() > 65_536, "{}", md.len());
        let note = "_The full report did not fit in a comment; see the job log._";
        let out = truncate_markdown(&md, 65_536, note);
        assert!(out.chars().count() <= 65_536);
        assert!(out.starts_with("### infergate: ❌ REGRESSED\n"));
        for row in md.lines().filter(|l| l.starts_with("| ❌ ")) {
            assert!(out.contains(row), "lost {row}");
        }
        assert!(out.contains(note));
        assert!(out.contains("To accept this change as the new baseline:"));
        assert!(out.contains("<summary>Noise and power</summary>"), "the small section fits and stays");
        assert!(!out.contains("<summary>All "));
        assert_balanced(&out);
    }

    #[test]
    fn truncation_cuts_lines_and_closes_what_is_open() {
        let md = render_plain(&big_regression(40), Format::Markdown);
        for max in [300, 1_000, 2_500, 4_000] {
            let out = truncate_markdown(&md, max, "_Truncated._");
            assert!(out.chars().count() <= max, "{max}: {}", out.chars().count());
            assert!(out.starts_with("### infergate: ❌ REGRESSED\n"), "{out}");
            assert!(out.contains("_Truncated._"), "{out}");
            assert_balanced(&out);
        }
        // Cut inside a <details> and inside a code fence: both are closed.
        let md = format!("# t\n\n<details><summary>x</summary>\n\n```\n{}```\n\n</details>\n", "line\n".repeat(100));
        assert_eq!(truncate_markdown(&md, 120, "cut"), "# t\n\ncut\n", "the whole section goes first");
        let out = cut_lines(&md, 120, "cut\n");
        assert!(out.chars().count() <= 120, "{out}");
        assert!(out.contains("<details>"), "{out}");
        assert_balanced(&out);
        assert!(out.ends_with("```\n\n</details>\n\ncut\n"), "{out:?}");
        // Absurd limits still hold.
        assert!(truncate_markdown(&md, 2, "cut").chars().count() <= 2);
    }

    // --- snapshots -------------------------------------------------------------

    /// The report in `lang`, without colour.
    fn render_in(c: &Comparison, format: Format, lang: Lang) -> String {
        match render(c, format, &RenderOptions { lang, ..RenderOptions::default() }) {
            Ok(s) => s,
            Err(e) => panic!("render failed ({lang}): {e:#}"),
        }
    }

    // Each comparison in English (`_terminal`, `_markdown`) and in Korean
    // (`_terminal_ko`, `_markdown_ko`), from the same comparison.
    macro_rules! snapshots {
        ($($name:ident => $build:expr;)*) => {$(
            #[test]
            fn $name() {
                let c = $build;
                insta::assert_snapshot!(concat!(stringify!($name), "_terminal"), render_plain(&c, Format::Terminal));
                insta::assert_snapshot!(concat!(stringify!($name), "_markdown"), render_plain(&c, Format::Markdown));
                insta::assert_snapshot!(
                    concat!(stringify!($name), "_terminal_ko"),
                    render_in(&c, Format::Terminal, Lang::Ko)
                );
                insta::assert_snapshot!(
                    concat!(stringify!($name), "_markdown_ko"),
                    render_in(&c, Format::Markdown, Lang::Ko)
                );
            }
        )*};
    }

    /// The pull-request comment as it is posted, in each language: the
    /// hidden marker that finds it again (the same in every language), then
    /// the Markdown report.
    #[test]
    fn snapshot_regression_comment() {
        let marker = crate::github::marker("h100-vllm");
        for lang in [Lang::En, Lang::Ko] {
            let md = render_in(&regression(), Format::Markdown, lang);
            let body = crate::github::comment_body(&marker, &md, Some("https://github.com/o/r/actions/runs/7"), lang);
            assert!(body.starts_with("<!-- infergate:profile=h100-vllm -->\n### infergate: "), "{body}");
            insta::assert_snapshot!(format!("snapshot_regression_comment_{lang}"), body);
        }
    }

    /// The job summary as `GITHUB_STEP_SUMMARY` gets it, in each language,
    /// when an earlier step left it 2,500 bytes short of GitHub's limit: the
    /// verdict, the regressions and the note where it was cut.
    #[test]
    fn snapshot_regression_job_summary() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        for lang in [Lang::En, Lang::Ko] {
            let path = dir.path().join(format!("summary-{lang}.md"));
            let earlier = "x".repeat(crate::ci::MAX_SUMMARY_BYTES - 2_500) + "\n";
            std::fs::write(&path, &earlier).unwrap_or_else(|e| panic!("{e}"));
            crate::ci::append_summary(&path, &render_in(&regression(), Format::Markdown, lang), lang)
                .unwrap_or_else(|e| panic!("{e:#}"));
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
            assert!(text.len() <= crate::ci::MAX_SUMMARY_BYTES);
            insta::assert_snapshot!(format!("snapshot_regression_job_summary_{lang}"), &text[earlier.len()..]);
        }
    }

    /// The pull-request comment and the terminal report when main's history
    /// was read: one "main over time" block, one entry per trend, worse first.
    #[test]
    fn snapshot_main_over_time() {
        let c = regression_with_history();
        let marker = crate::github::marker("h100-vllm");
        for lang in [Lang::En, Lang::Ko] {
            let md = render_in(&c, Format::Markdown, lang);
            let body = crate::github::comment_body(&marker, &md, None, lang);
            insta::assert_snapshot!(format!("snapshot_main_over_time_comment_{lang}"), body);
            insta::assert_snapshot!(
                format!("snapshot_main_over_time_terminal_{lang}"),
                render_in(&c, Format::Terminal, lang)
            );
        }
        let md = render_plain(&c, Format::Markdown);
        assert!(
            md.contains("tokens\\_per\\_second on main: -11.8% since commit abc1234, 14 runs ago, in three steps"),
            "{md}"
        );
        assert!(md.contains("since run run\\_2025\\*05 &lt;main&gt;, 30 runs ago, gradually"), "{md}");
    }

    /// Without a history, or with one in which main did not move, the
    /// reports are what they were: nothing about main.
    #[test]
    fn no_trend_renders_nothing() {
        let mut c = regression();
        c.main_over_time = Some(MainOverTime { profile: "h100-vllm".into(), runs: 30, trends: Vec::new() });
        for format in [Format::Markdown, Format::Terminal] {
            for lang in [Lang::En, Lang::Ko] {
                assert_eq!(render_in(&c, format, lang), render_in(&regression(), format, lang));
            }
        }
        // Absent from the comparison file when there is none; older files read back.
        let json = serde_json::to_string(&regression()).unwrap();
        assert!(!json.contains("main_over_time"));
        assert_eq!(serde_json::from_str::<Comparison>(&json).unwrap(), regression());
        let with = regression_with_history();
        let json = serde_json::to_string(&with).unwrap();
        assert!(json.contains("\"main_over_time\":{\"profile\":\"h100-vllm\",\"runs\":30,"), "{json}");
        assert_eq!(serde_json::from_str::<Comparison>(&json).unwrap(), with);
    }

    /// Merged comments (a matrix of profiles): each profile's section keeps its own line.
    #[test]
    fn merged_profiles_keep_their_own_main_over_time() {
        let a = regression_with_history();
        let mut b = regression_with_history();
        b.profile = "a100-sglang".into();
        if let Some(m) = &mut b.main_over_time {
            m.profile = "a100-sglang".into();
            m.runs = 12;
            m.trends = vec![trend("ttft_median", 0.21, true, (Some("0123456789"), "r-1"), 7, 1)];
        }
        let c = pass();
        for lang in [Lang::En, Lang::Ko] {
            let (md, _, _) = crate::app::publish::merged(&[a.clone(), b.clone(), c.clone()], lang).unwrap();
            let window = |n: i64| Words::of(lang).must("trend.window", Some(n), &[]);
            let sections: Vec<&str> = md.split("\n---\n").collect();
            assert_eq!(sections.len(), 4, "{md}");
            assert!(sections[1].contains(&window(30)) && sections[1].contains("abc1234"), "{}", sections[1]);
            assert!(!sections[1].contains("0123456"));
            assert!(sections[2].contains(&window(12)) && sections[2].contains("0123456"), "{}", sections[2]);
            assert!(!sections[2].contains("abc1234"));
            assert!(!sections[3].contains(&window(30)) && !sections[3].contains(&window(12)));
        }
    }

    snapshots! {
        snapshot_pass => pass();
        snapshot_regression => regression();
        snapshot_improvement => improvement();
        snapshot_refusal => refusal();
        snapshot_cannot_judge => cannot_judge();
    }
}
