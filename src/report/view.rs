//! The context the comparison templates see (documented in [`super::render`]).
//!
//! A comparison of 1,000 cases has 7,000 metric rows, and each appears up to
//! four times in the context (`comparison.cases[].metrics`, `rows`,
//! `notable`, `changes`). Serializing them into template values cost more
//! than rendering, so rows are minijinja objects instead: one shared object
//! per row, in every list it belongs to, that answers a field when a template
//! reads it and formats its terminal cells once, on first use. The small
//! remainder of the comparison and of each case is serialized as before.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use minijinja::value::{Enumerator, Object, ObjectRepr, Serde};
use minijinja::{Error, Value};
use serde::Serialize;

use super::escape::{clean, md_escape, needs_clean, needs_md_escape};
use super::findings;
use super::format::{Limit, format_limit, write_p, write_pct, write_pct_abs, write_value};
use super::words::{Lang, Words};
use crate::gate::{CaseVerdict, Comparison, Direction, MainTrend, MetricComparison, MetricStatus};

/// What the templates see.
#[derive(Debug, Serialize)]
pub(super) struct View<'a> {
    /// The comparison itself.
    comparison: Value,
    /// Every metric of every case, in case order.
    rows: Value,
    /// Beyond tolerance and significant: regressed, then warn, then improved.
    changes: Value,
    /// Fail-level regressions.
    regressed: Value,
    /// Regressed, warn, cannot judge and improved rows, in case order.
    notable: Value,
    /// Rows beyond tolerance but not significant.
    noise_count: usize,
    /// Per case, the metrics too few samples could judge.
    cannot_judge: Vec<CannotJudge<'a>>,
    /// Per metric, noise and power across cases.
    power: Vec<Power<'a>>,
    /// Whether ANSI colours are on.
    color: bool,
    /// The report's language.
    lang: Lang,
}

/// The metric rows of every case, shared by the row objects of one render.
#[derive(Debug)]
struct Table {
    /// In the comparison's case order.
    cases: Vec<TableCase>,
    /// The distinct limits of the rows as text ("+10%, floor 20 ms"): a
    /// thousand cases share a few rules.
    limits: Vec<String>,
    /// The words the rows print, looked up once per render.
    words: RowWords,
}

/// The words of the rows' texts, looked up once for a table of thousands
/// of rows: the statuses and phases its rows have, and the Detects cell's
/// text around its number.
#[derive(Debug)]
struct RowWords {
    statuses: Vec<(MetricStatus, String)>,
    phases: Vec<(String, String)>,
    /// "catches ≥ " and "" in English; "" and " 이상 검출" in Korean.
    detects: (String, String),
}

impl RowWords {
    fn new(words: &Words, metrics: &[&MetricComparison]) -> RowWords {
        let mut statuses: Vec<(MetricStatus, String)> = Vec::new();
        let mut phases: Vec<(String, String)> = Vec::new();
        for m in metrics {
            if !statuses.iter().any(|s| s.0 == m.status) {
                statuses.push((m.status, words.must(&format!("status.{}", m.status.as_str()), None, &[])));
            }
            if !phases.iter().any(|p| p.0 == m.phase) {
                phases.push((m.phase.clone(), words.name_or_self("phase", &m.phase).into_owned()));
            }
        }
        let detects = words.must("md.detects", None, &[("mdc", "\u{0}")]);
        let (before, after) = detects.split_once('\u{0}').unwrap_or((&detects, ""));
        RowWords { statuses, phases, detects: (before.to_string(), after.to_string()) }
    }

    fn status(&self, status: MetricStatus) -> &str {
        self.statuses.iter().find(|s| s.0 == status).map_or(status.as_str(), |s| s.1.as_str())
    }

    fn phase<'p>(&'p self, phase: &'p str) -> &'p str {
        self.phases.iter().find(|p| p.0 == phase).map_or(phase, |p| p.1.as_str())
    }
}

#[derive(Debug)]
struct TableCase {
    id: String,
    verdict: CaseVerdict,
    metrics: Vec<MetricComparison>,
    /// Per metric, its index in [`Table::limits`].
    limits: Vec<usize>,
}

impl Table {
    fn new(cases: &mut [crate::gate::CaseComparison], words: Words) -> Table {
        let mut keys: Vec<(Direction, u64, u64, String)> = Vec::new();
        let mut limits = Vec::new();
        let mut table_cases = Vec::with_capacity(cases.len());
        for case in cases.iter_mut() {
            let metrics = std::mem::take(&mut case.metrics);
            let indices = metrics
                .iter()
                .map(|m| {
                    let (tolerance, floor) = (m.tolerance.to_bits(), m.floor.to_bits());
                    let same = |k: &(Direction, u64, u64, String)| {
                        k.0 == m.direction && k.1 == tolerance && k.2 == floor && k.3 == m.unit
                    };
                    keys.iter().position(same).unwrap_or_else(|| {
                        keys.push((m.direction, tolerance, floor, m.unit.clone()));
                        limits.push(format_limit(&Limit::of(m), &words));
                        keys.len() - 1
                    })
                })
                .collect();
            table_cases.push(TableCase { id: case.id.clone(), verdict: case.verdict, metrics, limits: indices });
        }
        let metrics: Vec<&MetricComparison> = table_cases.iter().flat_map(|c| &c.metrics).collect();
        let words = RowWords::new(&words, &metrics);
        Table { cases: table_cases, limits, words }
    }
}

/// One metric of one case: the [`MetricComparison`] fields plus `case`,
/// `case_verdict`, `cells` (the terminal's texts) and `md` (the Markdown
/// report's, escaped).
#[derive(Debug)]
pub(super) struct Row {
    table: Arc<Table>,
    case: usize,
    metric: usize,
    cells: OnceLock<Arc<Texts>>,
    md: OnceLock<Arc<Texts>>,
}

/// The fields a row answers, in the order `MetricComparison` serializes them.
const METRIC_FIELDS: [&str; 21] = [
    "metric",
    "phase",
    "unit",
    "direction",
    "level",
    "baseline",
    "current",
    "change",
    "tolerance",
    "floor",
    "p_value",
    "samples",
    "runs",
    "spread_source",
    "spread",
    "noise",
    "threshold",
    "min_detectable_change",
    "repetitions_needed",
    "runs_needed",
    "status",
];

/// Every key of a row: its own, then the metric's.
const ROW_KEYS: [&str; 25] = [
    "case",
    "case_verdict",
    "cells",
    "md",
    METRIC_FIELDS[0],
    METRIC_FIELDS[1],
    METRIC_FIELDS[2],
    METRIC_FIELDS[3],
    METRIC_FIELDS[4],
    METRIC_FIELDS[5],
    METRIC_FIELDS[6],
    METRIC_FIELDS[7],
    METRIC_FIELDS[8],
    METRIC_FIELDS[9],
    METRIC_FIELDS[10],
    METRIC_FIELDS[11],
    METRIC_FIELDS[12],
    METRIC_FIELDS[13],
    METRIC_FIELDS[14],
    METRIC_FIELDS[15],
    METRIC_FIELDS[16],
    METRIC_FIELDS[17],
    METRIC_FIELDS[18],
    METRIC_FIELDS[19],
    METRIC_FIELDS[20],
];

impl Row {
    fn case(&self) -> &TableCase {
        &self.table.cases[self.case]
    }

    pub(super) fn metric(&self) -> &MetricComparison {
        &self.case().metrics[self.metric]
    }

    fn limit(&self) -> &str {
        &self.table.limits[self.case().limits[self.metric]]
    }

    /// The terminal's texts of this row, formatted on first use.
    pub(super) fn cells(&self) -> &Arc<Texts> {
        self.texts(&self.cells, Escape::Terminal)
    }

    /// The Markdown report's texts of this row, formatted on first use.
    fn md(&self) -> &Arc<Texts> {
        self.texts(&self.md, Escape::Markdown)
    }

    fn texts<'s>(&'s self, slot: &'s OnceLock<Arc<Texts>>, escape: Escape) -> &'s Arc<Texts> {
        slot.get_or_init(|| {
            Arc::new(Texts::of(escape, &self.table.words, &self.case().id, self.metric(), self.limit()))
        })
    }
}

/// A field as serializing the row would give it (an enum as its serde name).
fn serialized<T: Serialize>(value: &T) -> Value {
    Value::from(Serde(value))
}

impl Object for Row {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let m = self.metric();
        Some(match key.as_str()? {
            "case" => Value::from(self.case().id.as_str()),
            "case_verdict" => serialized(&self.case().verdict),
            "cells" => Value::from_dyn_object(Arc::clone(self.cells())),
            "md" => Value::from_dyn_object(Arc::clone(self.md())),
            "metric" => Value::from(m.metric.as_str()),
            "phase" => Value::from(m.phase.as_str()),
            "unit" => Value::from(m.unit.as_str()),
            "direction" => serialized(&m.direction),
            "level" => serialized(&m.level),
            "baseline" => Value::from(m.baseline),
            "current" => Value::from(m.current),
            "change" => Value::from(m.change),
            "tolerance" => Value::from(m.tolerance),
            "floor" => Value::from(m.floor),
            "p_value" => Value::from(m.p_value),
            "samples" => serialized(&m.samples),
            "runs" => serialized(&m.runs),
            "spread_source" => serialized(&m.spread_source),
            "spread" => Value::from(m.spread),
            "noise" => Value::from(m.noise),
            "threshold" => Value::from(m.threshold),
            "min_detectable_change" => Value::from(m.min_detectable_change),
            "repetitions_needed" => Value::from(m.repetitions_needed),
            "runs_needed" => Value::from(m.runs_needed),
            "status" => Value::from(m.status.as_str()),
            _ => return None,
        })
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&ROW_KEYS)
    }
}

/// A serialized map with some keys answered by other values: a case whose
/// `metrics` are row objects and whose `notes` are words, the comparison
/// whose `cases` are such cases and whose headline, notes and mismatches are
/// words ([`super::findings`]).
#[derive(Debug)]
struct Overlay {
    base: Value,
    keys: Vec<(&'static str, Value)>,
}

impl Object for Overlay {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        if let Some((_, value)) = self.keys.iter().find(|(k, _)| key.as_str() == Some(*k)) {
            return Some(value.clone());
        }
        self.base.get_item(key).ok().filter(|v| !v.is_undefined())
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        // The base was serialized with the key present (emptied), so its keys are all the keys.
        match self.base.try_iter() {
            Ok(keys) => Enumerator::Values(keys.collect()),
            Err(_) => Enumerator::Empty,
        }
    }
}

/// The texts of a row as one report shows them, in one buffer: a table of
/// 7,000 rows would otherwise cost ten filters per row in the template, or
/// ten strings per row to allocate and free.
#[derive(Debug)]
pub(super) struct Texts {
    text: String,
    /// Where each key's text ends in `text`.
    ends: [usize; 10],
    keys: &'static [&'static str; 10],
}

/// The columns `table()` knows: the keys of a row's `cells`.
const CELL_KEYS: [&str; 10] =
    ["case", "phase", "metric", "baseline", "current", "change", "limit", "p", "mdc", "status"];

/// The columns `table()` knows, for its error message.
pub(super) const CELL_COLUMNS: &str = "case, phase, metric, baseline, current, change, limit, p, mdc, status";

/// The keys of a row's `md`: `detects` is "catches ≥ 7.1%" or "—" when no
/// change can be significant, `status` the status in words ("cannot judge").
/// In both, `phase` and `status` are in the report's words.
const MD_KEYS: [&str; 10] =
    ["case", "phase", "metric", "baseline", "current", "change", "limit", "p", "detects", "status"];

/// How the texts of one report are made safe.
#[derive(Debug, Clone, Copy)]
enum Escape {
    /// [`clean`]: one line, no control characters, no `::`.
    Terminal,
    /// [`md_escape`].
    Markdown,
}

impl Escape {
    /// The escaped text, `None` when it is already safe as it is.
    fn apply(self, text: &str) -> Option<String> {
        let escaped = match self {
            Escape::Terminal if needs_clean(text) => clean(text),
            Escape::Markdown if needs_md_escape(text) => md_escape(text),
            _ => return None,
        };
        (escaped != text).then_some(escaped)
    }
}

impl Texts {
    /// Builds the texts by appending each in `keys` order; `escape` is
    /// applied to each text as written.
    fn build(keys: &'static [&'static str; 10], escape: Escape, parts: [&dyn Fn(&mut String); 10]) -> Texts {
        let mut text = String::with_capacity(128);
        let mut ends = [0; 10];
        for (end, part) in ends.iter_mut().zip(parts) {
            let start = text.len();
            part(&mut text);
            if let Some(escaped) = escape.apply(&text[start..]) {
                text.truncate(start);
                text.push_str(&escaped);
            }
            *end = text.len();
        }
        Texts { text, ends, keys }
    }

    /// A report's texts of a row: the terminal's (free text through
    /// `clean`, keys [`CELL_KEYS`]) or the Markdown report's (everything
    /// through `md_escape`, keys [`MD_KEYS`], the detectable change as
    /// "catches ≥ 7.1%").
    fn of(escape: Escape, words: &RowWords, case: &str, m: &MetricComparison, limit: &str) -> Texts {
        let (keys, unit) = match escape {
            Escape::Terminal => (&CELL_KEYS, clean(&m.unit)),
            Escape::Markdown => (&MD_KEYS, m.unit.clone()),
        };
        Texts::build(
            keys,
            escape,
            [
                &|o| o.push_str(case),
                &|o| o.push_str(words.phase(&m.phase)),
                &|o| o.push_str(&m.metric),
                &|o| write_value(o, Some(m.baseline), &unit),
                &|o| write_value(o, Some(m.current), &unit),
                &|o| write_pct(o, m.change),
                &|o| o.push_str(limit),
                &|o| write_p(o, m.p_value),
                &|o| match (m.min_detectable_change, escape) {
                    (Some(d), Escape::Terminal) => write_pct_abs(o, d),
                    (Some(d), Escape::Markdown) => {
                        o.push_str(&words.detects.0);
                        write_pct_abs(o, d);
                        o.push_str(&words.detects.1);
                    }
                    (None, _) => o.push_str(super::format::MISSING),
                },
                &|o| o.push_str(words.status(m.status)),
            ],
        )
    }

    /// The text of a key, `None` for a key it does not have.
    pub(super) fn get(&self, key: &str) -> Option<&str> {
        let i = self.keys.iter().position(|k| *k == key)?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        Some(&self.text[start..self.ends[i]])
    }
}

impl Object for Texts {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.get(key.as_str()?).map(Value::from)
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(self.keys)
    }
}

/// Metrics of one case that could not be judged.
#[derive(Debug, Serialize)]
struct CannotJudge<'a> {
    /// Case id.
    case: &'a str,
    /// `phase metric` names.
    metrics: Vec<String>,
    /// Fewest samples on either side among them.
    samples: usize,
    /// Most repetitions needed among them, when known.
    repetitions_needed: Option<u32>,
}

/// Noise and power of one metric across cases.
#[derive(Debug, Serialize)]
struct Power<'a> {
    /// Metric name.
    metric: &'a str,
    /// Its unit.
    unit: &'a str,
    /// The strictest tolerance among its rows.
    tolerance: f64,
    /// Cases it was compared in.
    cases: usize,
    /// Median repetitions per run (current side).
    samples: usize,
    /// Fewest baseline runs among its rows.
    baseline_runs: usize,
    /// Fewest current runs among its rows.
    current_runs: usize,
    /// Where the run-to-run spread came from: the weakest source among its rows.
    spread_source: Option<crate::stats::runlevel::SpreadSource>,
    /// Median run-to-run spread, where seen.
    spread: Option<f64>,
    /// Median detectable change over rows where one exists.
    median_mdc: Option<f64>,
    /// Cases where the detectable change exceeds twice the tolerance.
    underpowered: usize,
    /// Median detectable change over those cases.
    underpowered_mdc: Option<f64>,
    /// Cases where nothing could be judged.
    undetectable: usize,
    /// Repetitions that bring every such case to twice the tolerance, when more requests can.
    repetitions_needed: Option<u32>,
    /// Baseline runs that do, when more runs can.
    runs_needed: Option<u32>,
}

impl<'a> View<'a> {
    pub(super) fn new(comparison: &'a Comparison, color: bool, words: Words) -> View<'a> {
        // Everything but the metric rows is serialized as it is; the rows
        // move into the table the row objects share.
        // The gate's findings become words here (headline, notes, mismatches: below).
        let lang = words.lang();
        let mut rest = comparison.clone();
        let mut cases = std::mem::take(&mut rest.cases);
        let table = Arc::new(Table::new(&mut cases, words));
        let mut all: Vec<(MetricStatus, Value)> = Vec::new();
        let mut case_values = Vec::with_capacity(cases.len());
        for (case, c) in cases.iter().enumerate() {
            let metrics: Vec<Value> = (0..table.cases[case].metrics.len())
                .map(|metric| {
                    let row =
                        Row { table: Arc::clone(&table), case, metric, cells: OnceLock::new(), md: OnceLock::new() };
                    Value::from_object(row)
                })
                .collect();
            all.extend(table.cases[case].metrics.iter().map(|m| m.status).zip(metrics.iter().cloned()));
            let notes: Vec<String> = c.notes.iter().map(|n| findings::case_note(n, lang)).collect();
            case_values.push(Value::from_object(Overlay {
                base: Value::from(Serde(c)),
                keys: vec![("metrics", Value::from(metrics)), ("notes", Value::from(notes))],
            }));
        }
        let with_status = |statuses: &[MetricStatus]| -> Vec<(MetricStatus, Value)> {
            all.iter().filter(|(s, _)| statuses.contains(s)).cloned().collect()
        };
        let values = |rows: Vec<(MetricStatus, Value)>| Value::from(rows.into_iter().map(|r| r.1).collect::<Vec<_>>());
        let mut changes = with_status(&[MetricStatus::Regressed, MetricStatus::Warn, MetricStatus::Improved]);
        changes.sort_by_key(|r| r.0);
        let regressed = with_status(&[MetricStatus::Regressed]);
        let notable = with_status(&[
            MetricStatus::Regressed,
            MetricStatus::Warn,
            MetricStatus::CannotJudge,
            MetricStatus::Improved,
        ]);
        let noise_count = all.iter().filter(|(s, _)| *s == MetricStatus::Noise).count();
        let cannot_judge = comparison
            .cases
            .iter()
            .filter_map(|case| {
                let metrics: Vec<&MetricComparison> =
                    case.metrics.iter().filter(|m| m.status == MetricStatus::CannotJudge).collect();
                (!metrics.is_empty()).then(|| CannotJudge {
                    case: &case.id,
                    metrics: metrics.iter().map(|m| format!("{} {}", m.phase, m.metric)).collect(),
                    samples: metrics.iter().map(|m| m.samples[0].min(m.samples[1])).min().unwrap_or(0),
                    repetitions_needed: metrics.iter().filter_map(|m| m.repetitions_needed).max(),
                })
            })
            .collect();
        let power = power(comparison);
        View {
            comparison: Value::from_object(Overlay {
                base: Value::from(Serde(&rest)),
                keys: vec![
                    ("cases", Value::from(case_values)),
                    ("headline", Value::from(findings::headline(&comparison.headline, lang))),
                    (
                        "notes",
                        Value::from(comparison.notes.iter().map(|n| findings::run_note(n, lang)).collect::<Vec<_>>()),
                    ),
                    ("mismatches", mismatches(comparison, lang)),
                    ("main_over_time", main_over_time(comparison, lang)),
                ],
            }),
            rows: values(all),
            changes: values(changes),
            regressed: values(regressed),
            notable: values(notable),
            noise_count,
            cannot_judge,
            power,
            color,
            lang: words.lang(),
        }
    }
}

/// The mismatches as the templates see them: `what` in words.
fn mismatches(comparison: &Comparison, lang: Lang) -> Value {
    let list: Vec<BTreeMap<&str, String>> = comparison
        .mismatches
        .iter()
        .map(|m| {
            BTreeMap::from([
                ("what", findings::mismatch(&m.what, lang)),
                ("baseline", m.baseline.clone()),
                ("current", m.current.clone()),
            ])
        })
        .collect();
    Value::from(Serde(list))
}

/// Main over time as the templates see it: the comparison's, each trend
/// with its sentence (`text`, not escaped).
#[derive(Debug, Serialize)]
struct MainOverTimeView<'a> {
    /// The profile whose history was read.
    profile: &'a str,
    /// Runs of main read.
    runs: usize,
    /// Worse first, then by the size of the change.
    trends: Vec<TrendView<'a>>,
}

/// One trend: its fields and its sentence.
#[derive(Debug, Serialize)]
struct TrendView<'a> {
    #[serde(flatten)]
    trend: &'a MainTrend,
    /// "tokens_per_second on main: -11.8% since commit abc1234, 14 runs ago, in three steps".
    text: String,
}

/// The comparison's main over time with its sentences in `lang`; none when
/// the comparison has none.
fn main_over_time(comparison: &Comparison, lang: Lang) -> Value {
    let Some(m) = &comparison.main_over_time else { return Value::from(()) };
    let trends = m.trends.iter().map(|t| TrendView { trend: t, text: findings::main_trend(t, lang) }).collect();
    Value::from(Serde(MainOverTimeView { profile: &m.profile, runs: m.runs, trends }))
}

/// The row object behind a template value, when it is one.
pub(super) fn row_of(value: &Value) -> Option<&Row> {
    value.downcast_object_ref::<Row>()
}

/// The terminal cells of a template row: a row object's own, or the `cells`
/// attribute of anything else a user template passes.
pub(super) fn cell_texts<'a>(row: &'a Value, columns: &[String]) -> Result<Vec<Option<Cow<'a, str>>>, Error> {
    if let Some(row) = row_of(row) {
        let cells = row.cells();
        return Ok(columns.iter().map(|c| cells.get(c).map(Cow::Borrowed)).collect());
    }
    let cells = row.get_attr("cells")?;
    columns
        .iter()
        .map(|c| {
            let cell = cells.get_attr(c)?;
            Ok((!cell.is_undefined()).then(|| Cow::Owned(super::render::text_of(&cell))))
        })
        .collect()
}

fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 0 { (values[mid - 1] + values[mid]) / 2.0 } else { values[mid] })
}

/// Aggregates noise and power per metric name, so a suite of fifty cases
/// gives one line per metric rather than fifty.
fn power(comparison: &Comparison) -> Vec<Power<'_>> {
    let mut groups: BTreeMap<&str, Vec<(&str, &MetricComparison)>> = BTreeMap::new();
    // Only rows with a run-level test have a detectable change: GPU figures
    // (one value per phase) are judged on tolerance and floor alone.
    for case in &comparison.cases {
        for m in case.metrics.iter().filter(|m| m.spread_source.is_some() || m.status == MetricStatus::CannotJudge) {
            groups.entry(m.metric.as_str()).or_default().push((case.id.as_str(), m));
        }
    }
    // Rows are per phase; people count cases.
    let cases = |rows: &[(&str, &MetricComparison)]| {
        let mut ids: Vec<&str> = rows.iter().map(|r| r.0).collect();
        ids.sort_unstable();
        ids.dedup();
        ids.len()
    };
    groups
        .into_iter()
        .map(|(metric, group)| {
            let tolerance = group.iter().map(|r| r.1.tolerance).fold(f64::INFINITY, f64::min);
            let mut samples: Vec<f64> =
                group.iter().map(|r| r.1.samples[1] as f64 / r.1.runs[1].max(1) as f64).collect();
            let mut mdcs: Vec<f64> = group.iter().filter_map(|r| r.1.min_detectable_change).collect();
            let mut spreads: Vec<f64> = group.iter().filter_map(|r| r.1.spread).collect();
            // Underpowered: twice the limit (the larger of the tolerance and
            // the floor relative to the baseline) is not caught 95% of the time.
            let under: Vec<(&str, &MetricComparison)> = group
                .iter()
                .copied()
                .filter(|(_, m)| {
                    let effective = m.tolerance.max(m.floor / m.baseline.abs().max(f64::MIN_POSITIVE));
                    m.min_detectable_change.is_some_and(|d| d > 2.0 * effective + 1e-9)
                })
                .collect();
            let mut under_mdcs: Vec<f64> = under.iter().filter_map(|r| r.1.min_detectable_change).collect();
            let undetectable: Vec<(&str, &MetricComparison)> =
                group.iter().copied().filter(|r| r.1.min_detectable_change.is_none()).collect();
            let needing = || under.iter().chain(&undetectable);
            Power {
                metric,
                unit: group.first().map_or("", |r| r.1.unit.as_str()),
                tolerance,
                cases: cases(&group),
                samples: median(&mut samples).map_or(0, |s| s.round() as usize),
                baseline_runs: group.iter().map(|r| r.1.runs[0]).min().unwrap_or(0),
                current_runs: group.iter().map(|r| r.1.runs[1]).min().unwrap_or(0),
                spread_source: group.iter().filter_map(|r| r.1.spread_source).min(),
                spread: median(&mut spreads),
                median_mdc: median(&mut mdcs),
                underpowered: cases(&under),
                underpowered_mdc: median(&mut under_mdcs),
                undetectable: cases(&undetectable),
                repetitions_needed: needing().filter_map(|r| r.1.repetitions_needed).max(),
                runs_needed: needing().filter_map(|r| r.1.runs_needed).max(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::{Direction, Level};

    fn metric(name: &str, status: MetricStatus) -> MetricComparison {
        MetricComparison {
            metric: name.into(),
            phase: "warm".into(),
            unit: "ms".into(),
            direction: Direction::LowerIsBetter,
            level: Level::Fail,
            baseline: 100.0,
            current: 112.5,
            change: 0.125,
            tolerance: 0.1,
            floor: 2.0,
            p_value: Some(0.0004),
            samples: [10, 12],
            runs: [1, 1],
            spread_source: Some(crate::stats::runlevel::SpreadSource::Config),
            spread: Some(0.02),
            noise: Some(0.015),
            threshold: Some(0.1),
            min_detectable_change: Some(0.04),
            repetitions_needed: Some(30),
            runs_needed: Some(6),
            status,
        }
    }

    /// A row object answers every field the comparison JSON has, with the
    /// value serializing the row would give, and lists exactly those keys:
    /// a field added to `MetricComparison` and not here fails this test.
    #[test]
    fn a_row_answers_what_serializing_it_would() {
        let m = metric("ttft_median", MetricStatus::Regressed);
        let mut case = crate::gate::CaseComparison {
            id: "a_1 <b>\n::x".into(),
            verdict: CaseVerdict::Regressed,
            metrics: vec![m.clone()],
            output_similarity: None,
            notes: Vec::new(),
            gpu: Vec::new(),
        };
        let table = Arc::new(Table::new(std::slice::from_mut(&mut case), Words::of(Lang::En)));
        let row = Value::from_object(Row { table, case: 0, metric: 0, cells: OnceLock::new(), md: OnceLock::new() });
        let serialized = Value::from(Serde(&m));
        let serde_keys: Vec<String> = serialized.try_iter().unwrap().map(|k| k.to_string()).collect();
        assert_eq!(serde_keys, METRIC_FIELDS, "MetricComparison's fields and the row's differ");
        for key in METRIC_FIELDS {
            assert_eq!(row.get_attr(key).unwrap(), serialized.get_attr(key).unwrap(), "{key}");
        }
        assert_eq!(row.get_attr("case").unwrap().as_str(), Some("a_1 <b>\n::x"));
        assert_eq!(row.get_attr("case_verdict").unwrap().as_str(), Some("regressed"));
        let cells = row.get_attr("cells").unwrap();
        let md = row.get_attr("md").unwrap();
        let text = |v: &Value, key: &str| v.get_attr(key).unwrap().as_str().map(str::to_string);
        // Each text is the formatting function's, escaped for its report.
        assert_eq!(text(&cells, "case").as_deref(), Some(clean("a_1 <b>\n::x").as_str()));
        assert_eq!(text(&md, "case").as_deref(), Some(md_escape("a_1 <b>\n::x").as_str()));
        for (key, expected) in [
            ("baseline", "100.0 ms"),
            ("current", "112.5 ms"),
            ("change", "+12.5%"),
            ("limit", "+10%, floor 2 ms"),
            ("p", "<0.001"),
            ("mdc", "4%"),
            ("status", "regressed"),
        ] {
            assert_eq!(text(&cells, key).as_deref(), Some(expected), "cells.{key}");
        }
        assert_eq!(text(&md, "p").as_deref(), Some("&lt;0.001"));
        assert_eq!(text(&md, "detects").as_deref(), Some("catches ≥ 4%"));
        assert_eq!(text(&md, "limit").as_deref(), Some("+10%, floor 2 ms"));
        assert!(cells.get_attr("detects").unwrap().is_undefined());
        let keys = |v: &Value| v.try_iter().unwrap().map(|k| k.to_string()).collect::<Vec<_>>();
        assert_eq!(keys(&cells), CELL_KEYS);
        assert_eq!(keys(&md), MD_KEYS);
        assert!(row.get_attr("no_such_field").unwrap().is_undefined());
        let keys: Vec<String> = row.try_iter().unwrap().map(|k| k.to_string()).collect();
        assert_eq!(keys, ROW_KEYS);
    }

    /// The comparison and its cases read as their serialization, with the
    /// metrics as row objects and the findings in words.
    #[test]
    fn the_comparison_reads_as_serialized() {
        let mut comparison = crate::report::render::tests::regression();
        comparison.cases[0].metrics.push(metric("itl_p99", MetricStatus::Noise));
        let view = View::new(&comparison, false, Words::of(Lang::En));
        let plain = Value::from(Serde(&comparison));
        for key in plain.try_iter().unwrap() {
            if !matches!(key.as_str(), Some("cases" | "headline" | "notes" | "mismatches")) {
                assert_eq!(view.comparison.get_item(&key).unwrap(), plain.get_item(&key).unwrap(), "{key}");
            }
        }
        let keys = |v: &Value| v.try_iter().unwrap().map(|k| k.to_string()).collect::<Vec<_>>();
        assert_eq!(keys(&view.comparison), keys(&plain));
        assert_eq!(
            view.comparison.get_attr("headline").unwrap().as_str(),
            Some(findings::headline(&comparison.headline, Lang::En).as_str())
        );
        let cases = view.comparison.get_attr("cases").unwrap();
        assert_eq!(cases.len(), Some(comparison.cases.len()));
        for (i, case) in comparison.cases.iter().enumerate() {
            let got = cases.get_item_by_index(i).unwrap();
            let want = Value::from(Serde(case));
            assert_eq!(keys(&got), keys(&want));
            assert_eq!(got.get_attr("id").unwrap(), want.get_attr("id").unwrap());
            let notes: Vec<String> = case.notes.iter().map(|n| findings::case_note(n, Lang::En)).collect();
            assert_eq!(got.get_attr("notes").unwrap(), Value::from(notes));
            let metrics = got.get_attr("metrics").unwrap();
            assert_eq!(metrics.len(), Some(case.metrics.len()));
            for (j, m) in case.metrics.iter().enumerate() {
                let row = metrics.get_item_by_index(j).unwrap();
                assert_eq!(row.get_attr("metric").unwrap().as_str(), Some(m.metric.as_str()));
                assert_eq!(row.get_attr("case").unwrap().as_str(), Some(case.id.as_str()));
            }
        }
        assert_eq!(
            view.noise_count,
            comparison.cases.iter().flat_map(|c| &c.metrics).filter(|m| m.status == MetricStatus::Noise).count()
        );
        assert_eq!(view.rows.len(), Some(comparison.cases.iter().map(|c| c.metrics.len()).sum()));
    }
}
