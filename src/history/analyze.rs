//! Change points in a profile's history: every case, phase and metric is a
//! series over the runs in file order, searched with E-divisive means
//! ([`crate::stats::changepoint`]); each change point is described by the
//! runs on either side of it (their commits) and the means of the segments.
//!
//! # Defaults
//!
//! A history holds many series (the default suite: 16 cases x 2 phases x
//! 8 request metrics = 256), and a test at 5% per series finds a change
//! point in about one unchanged series in twenty: about 13 false change
//! points in every analysis of an unchanged history. The defaults test at
//! [`DEFAULT_SIGNIFICANCE`] (0.1%) with [`DEFAULT_PERMUTATIONS`] shuffles,
//! shuffle blocks of [`DEFAULT_BLOCK`] runs (a runner's drift is
//! correlated from one run to the next, and single-run shuffles take that
//! wander for steps), and report only steps of at least
//! [`DEFAULT_MIN_STEP`] (1%). `examples/history_bench.rs` measures what
//! that costs and buys; the book's history chapter has the figures.
//!
//! Pure: no I/O, no clock. Series are searched on up to [`MAX_THREADS`]
//! threads; each series has its own seed (from its case, phase and metric),
//! so the answer does not depend on the threads or the order.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use super::HistoryRecord;
use crate::gate::metrics::CATALOGUE;
use crate::results::PhaseName;
use crate::rng::Rng;
use crate::stats::changepoint::{self, ChangePointConfig, ConfigError};

/// Default significance of each split: 0.1% per series.
pub const DEFAULT_SIGNIFICANCE: f64 = 0.001;
/// Default shuffles per test: the fewest that can reach [`DEFAULT_SIGNIFICANCE`].
pub const DEFAULT_PERMUTATIONS: usize = 999;
/// Default fewest runs on each side of a change point.
pub const DEFAULT_MIN_SEGMENT: usize = 5;
/// Default smallest relative step reported: 1%.
pub const DEFAULT_MIN_STEP: f64 = 0.01;
/// Default runs shuffled together.
pub const DEFAULT_BLOCK: usize = 3;
/// Most threads the series are spread over.
pub const MAX_THREADS: usize = 2;

/// What to analyse and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// The search and its test (`seed` is mixed with each series' name).
    pub search: ChangePointConfig,
    /// Only these metrics (catalogue names); all when `None`.
    pub metrics: Option<Vec<String>>,
    /// Only cases matching one of these globs; all when `None`.
    pub cases: Option<Vec<String>>,
    /// Only this phase; both when `None`.
    pub phase: Option<PhaseName>,
    /// Change points with a smaller relative step (as a fraction) are not reported.
    pub min_step: f64,
    /// Only the last N runs.
    pub last: Option<usize>,
    /// Threads to spread the series over (at least 1).
    pub threads: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            search: ChangePointConfig {
                significance: DEFAULT_SIGNIFICANCE,
                permutations: DEFAULT_PERMUTATIONS,
                min_segment: DEFAULT_MIN_SEGMENT,
                block: DEFAULT_BLOCK,
                ..ChangePointConfig::default()
            },
            metrics: None,
            cases: None,
            phase: None,
            min_step: DEFAULT_MIN_STEP,
            last: None,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()).min(MAX_THREADS),
        }
    }
}

/// One change point of one series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Found {
    /// The case.
    pub case: String,
    /// The phase.
    pub phase: PhaseName,
    /// The metric (catalogue name).
    pub metric: String,
    /// Index, among the runs analysed, of the first run after the change.
    pub index: usize,
    /// The last run before the change that has the metric: its commit.
    pub commit_before: Option<String>,
    /// The first run after the change: its commit.
    pub commit_after: Option<String>,
    /// The last run before the change: its id.
    pub run_before: String,
    /// The first run after the change: its id.
    pub run_after: String,
    /// The first run after the change: when it finished.
    pub time_after: String,
    /// Mean of the segment before the change (back to the previous change point).
    pub mean_before: f64,
    /// Mean of the segment after the change (up to the next change point).
    pub mean_after: f64,
    /// `(mean_after - mean_before) / |mean_before|`; `None` when `mean_before` is 0.
    pub relative_step: Option<f64>,
    /// Permutation p-value of the split.
    pub p_value: f64,
    /// Runs in the segment before.
    pub runs_before: usize,
    /// Runs in the segment after.
    pub runs_after: usize,
}

/// The result of an analysis.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Analysis {
    /// Runs analysed.
    pub runs: usize,
    /// Series searched.
    pub series: usize,
    /// Change points at or above the minimum step, by case, phase, metric, then run.
    pub change_points: Vec<Found>,
    /// Significant change points not reported because their step was below the minimum.
    pub below_min_step: usize,
}

/// A series' search: its change points, or why the settings cannot be used.
type Searched = Result<Vec<changepoint::ChangePoint>, ConfigError>;

/// One series: which, and its values over the runs (NaN where a run lacks it).
struct Series {
    case: String,
    phase: PhaseName,
    metric: String,
    values: Vec<f64>,
}

/// The position of a metric in the catalogue (unknown names after, by name).
fn metric_rank(name: &str) -> (usize, String) {
    (CATALOGUE.iter().position(|d| d.name == name).unwrap_or(CATALOGUE.len()), name.to_string())
}

/// The series of `records` that `opts` selects, in case, phase, catalogue order.
fn series_of(records: &[HistoryRecord], opts: &Options) -> Vec<Series> {
    let selected_case =
        |id: &str| opts.cases.as_ref().is_none_or(|globs| globs.iter().any(|g| crate::suite::glob_match(g, id)));
    let selected_metric = |m: &str| opts.metrics.as_ref().is_none_or(|ms| ms.iter().any(|x| x == m));
    let mut keys = BTreeSet::new();
    for r in records {
        for (case, phases) in &r.cases {
            if !selected_case(case) {
                continue;
            }
            for (phase, metrics) in phases.iter().filter(|(p, _)| opts.phase.is_none_or(|want| want == **p)) {
                for metric in metrics.keys().filter(|m| selected_metric(m)) {
                    keys.insert((case.as_str(), *phase, metric_rank(metric)));
                }
            }
        }
    }
    let index: BTreeMap<_, usize> = keys.iter().enumerate().map(|(i, k)| (k.clone(), i)).collect();
    let mut out: Vec<Series> = keys
        .iter()
        .map(|(case, phase, (_, metric))| Series {
            case: (*case).to_string(),
            phase: *phase,
            metric: metric.clone(),
            values: vec![f64::NAN; records.len()],
        })
        .collect();
    for (run, r) in records.iter().enumerate() {
        for (case, phases) in &r.cases {
            for (phase, metrics) in phases {
                for (metric, point) in metrics {
                    if let Some(&i) = index.get(&(case.as_str(), *phase, metric_rank(metric))) {
                        out[i].values[run] = point.value;
                    }
                }
            }
        }
    }
    out
}

/// Finds the change points of every selected series of `records` (in the
/// order they were appended). An invalid search config is an error.
pub fn analyze(records: &[HistoryRecord], opts: &Options) -> Result<Analysis, ConfigError> {
    opts.search.validate()?;
    let records = match opts.last {
        Some(n) if n < records.len() => &records[records.len() - n..],
        _ => records,
    };
    let series = series_of(records, opts);
    let threads = opts.threads.clamp(1, MAX_THREADS.max(1)).min(series.len().max(1));
    let search = |s: &Series| -> Searched {
        // Each series its own seed: the answer depends on neither threads nor order.
        let seed = Rng::from_parts(&[
            &opts.search.seed.to_le_bytes(),
            s.case.as_bytes(),
            s.phase.as_str().as_bytes(),
            s.metric.as_bytes(),
        ])
        .next_u64();
        changepoint::detect(&s.values, &ChangePointConfig { seed, ..opts.search })
    };
    // A series equal to an earlier one of its case and phase (the cold phase's one request
    // makes its p99 its median) is searched once, with the earlier one's seed.
    let mut first_of: HashMap<(&str, PhaseName, Vec<u64>), usize> = HashMap::new();
    let same_as: Vec<usize> = series
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let bits = s.values.iter().map(|v| v.to_bits()).collect();
            *first_of.entry((s.case.as_str(), s.phase, bits)).or_insert(i)
        })
        .collect();
    let todo: Vec<usize> = (0..series.len()).filter(|&i| same_as[i] == i).collect();
    let mut found: Vec<Option<Searched>> = vec![None; series.len()];
    if threads <= 1 {
        for &i in &todo {
            found[i] = Some(search(&series[i]));
        }
    } else {
        // Interleaved, so that long and short series spread evenly.
        let (search, series, todo) = (&search, &series, &todo);
        let parts: Vec<Vec<(usize, Searched)>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    scope.spawn(move || {
                        todo.iter().skip(t).step_by(threads).map(|&i| (i, search(&series[i]))).collect::<Vec<_>>()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or_default()).collect()
        });
        for (i, r) in parts.into_iter().flatten() {
            found[i] = Some(r);
        }
    }
    for (i, &j) in same_as.iter().enumerate() {
        if i != j {
            found[i] = found[j].clone();
        }
    }
    let mut analysis = Analysis { runs: records.len(), series: series.len(), ..Analysis::default() };
    for (s, cps) in series.iter().zip(found) {
        // A thread that panicked left its slots empty: searched again here, so a panic shows.
        let cps = match cps {
            Some(r) => r?,
            None => search(s)?,
        };
        for c in cps {
            if c.relative_step.is_some_and(|step| step.abs() < opts.min_step) {
                analysis.below_min_step += 1;
                continue;
            }
            let before = s.values[..c.index].iter().rposition(|v| v.is_finite()).unwrap_or(0);
            let (b, a) = (&records[before], &records[c.index]);
            analysis.change_points.push(Found {
                case: s.case.clone(),
                phase: s.phase,
                metric: s.metric.clone(),
                index: c.index,
                commit_before: b.commit.clone(),
                commit_after: a.commit.clone(),
                run_before: b.run_id.clone(),
                run_after: a.run_id.clone(),
                time_after: a.time.clone(),
                mean_before: c.mean_before,
                mean_after: c.mean_after,
                relative_step: c.relative_step,
                p_value: c.p_value,
                runs_before: c.points_before,
                runs_after: c.points_after,
            });
        }
    }
    Ok(analysis)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Point, SCHEMA};

    /// A history of `n` runs of two cases; `level(run)` scales tokens_per_second of case a/1.
    fn history(n: usize, level: impl Fn(usize) -> f64) -> Vec<HistoryRecord> {
        let mut rng = Rng::new(7);
        (0..n)
            .map(|i| {
                let mut noise = || 1.0 + 0.01 * (rng.unit() * 2.0 - 1.0) * 3f64.sqrt();
                let point = |v: f64| Point { value: v, n: 10, spread: Some(0.02) };
                let mut cases = BTreeMap::new();
                for (case, base) in [("a/1", 100.0), ("b/2", 50.0)] {
                    let scale = if case == "a/1" { level(i) } else { 1.0 };
                    let metrics = BTreeMap::from([
                        ("tokens_per_second".to_string(), point(base * scale * noise())),
                        ("ttft_median".to_string(), point(200.0 * noise())),
                    ]);
                    cases.insert(case.to_string(), BTreeMap::from([(PhaseName::Warm, metrics)]));
                }
                HistoryRecord {
                    schema: SCHEMA.into(),
                    profile: "p".into(),
                    run_id: format!("run{i}"),
                    commit: Some(format!("{i:07x}")),
                    git_ref: Some("refs/heads/main".into()),
                    time: format!("2026-12-01T00:{:02}:00Z", i % 60),
                    tool_version: "0.1.0".into(),
                    environment: "e".into(),
                    suite: "s".into(),
                    cases,
                }
            })
            .collect()
    }

    #[test]
    fn a_step_is_found_with_its_commit_range_and_nothing_else() {
        let records = history(80, |i| if i < 50 { 1.0 } else { 0.94 });
        let a = analyze(&records, &Options::default()).unwrap();
        assert_eq!((a.runs, a.series), (80, 4));
        assert_eq!(a.change_points.len(), 1, "{a:#?}");
        let c = &a.change_points[0];
        assert_eq!((c.case.as_str(), c.phase, c.metric.as_str()), ("a/1", PhaseName::Warm, "tokens_per_second"));
        assert_eq!(c.index, 50);
        assert_eq!((c.commit_before.as_deref(), c.commit_after.as_deref()), (Some("0000031"), Some("0000032")));
        assert_eq!(
            (c.run_before.as_str(), c.run_after.as_str(), c.runs_before, c.runs_after),
            ("run49", "run50", 50, 30)
        );
        assert!((c.relative_step.unwrap() + 0.06).abs() < 0.005, "{c:?}");
        assert!(c.p_value <= DEFAULT_SIGNIFICANCE);
        // The same with one thread, and again: seeded per series.
        let one = analyze(&records, &Options { threads: 1, ..Options::default() }).unwrap();
        assert_eq!(one, a);
    }

    #[test]
    fn filters_select_series_and_runs() {
        let records = history(80, |i| if i < 50 { 1.0 } else { 0.94 });
        let only = |o: Options| analyze(&records, &o).unwrap();
        let b = only(Options { cases: Some(vec!["b/*".into()]), ..Options::default() });
        assert_eq!((b.series, b.change_points.len()), (2, 0));
        let m = only(Options { metrics: Some(vec!["ttft_median".into()]), ..Options::default() });
        assert_eq!((m.series, m.change_points.len()), (2, 0));
        let cold = only(Options { phase: Some(PhaseName::Cold), ..Options::default() });
        assert_eq!((cold.series, cold.change_points.len()), (0, 0));
        // The last 20 runs hold no step.
        let last = only(Options { last: Some(20), ..Options::default() });
        assert_eq!((last.runs, last.change_points.len()), (20, 0));
        // A minimum step above the step hides it, and counts it.
        let big = only(Options { min_step: 0.1, ..Options::default() });
        assert_eq!((big.change_points.len(), big.below_min_step), (0, 1));
    }

    #[test]
    fn runs_without_the_metric_are_skipped_and_the_range_spans_them() {
        let mut records = history(80, |i| if i < 50 { 1.0 } else { 0.94 });
        for r in &mut records[47..50] {
            r.cases.remove("a/1");
        }
        let a = analyze(&records, &Options::default()).unwrap();
        let c = &a.change_points[0];
        assert_eq!((c.run_before.as_str(), c.run_after.as_str()), ("run46", "run50"), "{c:?}");
    }

    #[test]
    fn a_bad_config_is_refused() {
        let mut o = Options::default();
        o.search.permutations = 10;
        assert!(matches!(analyze(&[], &o), Err(ConfigError::Permutations { .. })));
        assert_eq!(analyze(&[], &Options::default()).unwrap(), Analysis::default());
    }
}
