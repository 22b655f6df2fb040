//! Main over time: whether main itself moved within its last runs, one
//! answer per gated metric, for the pull-request comment's "main over time"
//! line ("tokens_per_second on main: -11.8% since commit abc1234, 14 runs
//! ago, in three steps").
//!
//! A per-PR gate with a 5% tolerance lets ten 2% regressions through one
//! after another; each pull request's comment can then say where main stands
//! against its own recent past. Per metric of the catalogue that some case
//! gates (rule level warn or fail), the last [`TrendOptions::window`] runs
//! of the profile make ONE suite-level series: per run, the mean of
//! `ln(value)` over the (case, phase) series that every run of the window
//! has, in the gated phases ([`Rules::phases`]) and in cases whose rule for
//! the metric is warn or fail. (A mean of logarithms is the logarithm of a
//! geometric mean: every case counts by its relative change, whatever its
//! scale.) On that series:
//!
//! - **Steps**: E-divisive means ([`crate::stats::changepoint`]) at 0.1% per
//!   metric with 999 permutations, segments of at least 5 runs and steps of
//!   at least 1% (the history analysis' defaults), but shuffling single runs
//!   rather than blocks of 3. When it finds change points, the trend is the
//!   change from the first segment to the last (their geometric means),
//!   since the first run after the first change point, in as many steps as
//!   there are change points; steps that cancel out (less than `min_step`
//!   from first segment to last) are no trend.
//! - **Creep**: with no change point, a gradual drift is reported when the
//!   geometric means of the first and the last `min_segment` runs differ by
//!   more than the metric's tolerance (the strictest over the cases used)
//!   and its floor, AND a Welch t test on the two blocks of log values finds
//!   the difference beyond the noise at `significance` (two-sided). Its
//!   start is the first run of the window, in zero steps.
//!
//! # Why single-run shuffles
//!
//! Thirty runs in blocks of 3 are ten blocks, and the energy statistic does
//! not see the order within each side of a split: about 1% of the ways to
//! deal ten blocks put the same blocks on each side as three steps do, so no
//! p-value can get near 0.1%. Measured on 300 series of 30 runs with 2%
//! noise: a single -12% step 14 runs ago is found in 49% of them with blocks
//! of 3, 75% with blocks of 2, every one with single runs; three -4% steps
//! at 1% noise show as two or more steps in 0%, 1% and 69%. The price is
//! drift between consecutive runs read as steps: noise-only series with a
//! change point, 1 of 300 independent, 4 (lag-1 correlation 0.3) and 14
//! (0.5) of 300 with single runs, none with blocks of 3. Over a whole
//! comparison (200 noise-only histories, three gated metrics each, 2%
//! run-to-run drift), 2 of 1,000 showed a trend.
//!
//! The window holds only runs of one setup: the trailing runs of `profile`
//! with the environment and suite fingerprints of its last run (a history
//! file refuses anything else, so in practice this is the file's tail).
//! Fewer than `2 * min_segment` runs give no trend at all.
//!
//! Pure: no I/O, no clock. Each metric's search is seeded from
//! [`TrendOptions::seed`] and the metric's name, so the answer is the same
//! on every machine.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::HistoryRecord;
use crate::gate::rules::Rules;
pub use crate::gate::trend::{MainOverTime, MainTrend};
use crate::metrics::{CATALOGUE, Direction, Level, MetricDef};
use crate::results::PhaseName;
use crate::rng::Rng;
use crate::stats::changepoint::{self, ChangePointConfig, ConfigError};
use crate::stats::dist;

/// Default number of main's runs read: the last 30.
pub const DEFAULT_WINDOW: usize = 30;

/// How far back to look and how to tell a change from noise.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrendOptions {
    /// Runs of main read: the last N.
    pub window: usize,
    /// Significance of each change point's permutation test and of the
    /// creep's Welch t test, per metric; in (0, 1).
    pub significance: f64,
    /// Shuffles per change-point test; at least `1 / significance - 1`.
    pub permutations: usize,
    /// Fewest runs on each side of a change point, and the runs at either
    /// end of the window a creep is measured between; at least 1.
    pub min_segment: usize,
    /// Runs shuffled together by the change-point test; at least 1. More
    /// than 1 keeps short-range drift between consecutive runs in the null,
    /// but costs most of the power on a window of 30 runs (see the module's
    /// documentation).
    pub block: usize,
    /// Seed of the shuffles, mixed with each metric's name.
    pub seed: u64,
    /// Smallest relative step of a change point, and smallest overall change
    /// of a stepped trend, that is reported (a fraction: 0.01 is 1%).
    pub min_step: f64,
}

impl Default for TrendOptions {
    /// The last [`DEFAULT_WINDOW`] runs; the history analysis' significance
    /// (0.1%), permutations (999), segments (5 runs) and smallest step (1%),
    /// single-run shuffles.
    fn default() -> Self {
        Self {
            window: DEFAULT_WINDOW,
            significance: 0.001,
            permutations: 999,
            min_segment: 5,
            block: 1,
            seed: 0x6d61_696e_7472_6e64,
            min_step: 0.01,
        }
    }
}

/// Why [`TrendOptions`] cannot be used.
#[derive(Debug, Clone, PartialEq)]
pub enum TrendError {
    /// The change-point search's settings (significance, permutations,
    /// minimum segment, block).
    Search(ConfigError),
    /// `min_step` negative or not a number.
    MinStep(f64),
}

impl fmt::Display for TrendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Search(e) => write!(f, "main over time: {e}"),
            Self::MinStep(s) => {
                write!(f, "main over time: the smallest step {s} is not a fraction of 0 or more (0.01 is 1%)")
            }
        }
    }
}

impl std::error::Error for TrendError {}

impl From<ConfigError> for TrendError {
    fn from(e: ConfigError) -> Self {
        Self::Search(e)
    }
}

impl TrendOptions {
    /// The change-point search these options ask for, with `seed`.
    fn search(&self, seed: u64) -> ChangePointConfig {
        ChangePointConfig {
            significance: self.significance,
            permutations: self.permutations,
            min_segment: self.min_segment,
            block: self.block,
            seed,
            ..ChangePointConfig::default()
        }
    }

    /// Checks every field, naming the first one that cannot be used.
    pub fn validate(&self) -> Result<(), TrendError> {
        self.search(self.seed).validate()?;
        if !(self.min_step >= 0.0 && self.min_step.is_finite()) {
            return Err(TrendError::MinStep(self.min_step));
        }
        Ok(())
    }
}

/// The runs of `profile` that the window holds, oldest first: the trailing
/// runs with the last run's environment and suite, at most `window` of them.
fn window<'a>(records: &'a [HistoryRecord], profile: &str, window: usize) -> Vec<&'a HistoryRecord> {
    let mine: Vec<&HistoryRecord> = records.iter().filter(|r| r.profile == profile).collect();
    let Some(last) = mine.last() else { return Vec::new() };
    let same = mine.iter().rev().take_while(|r| r.environment == last.environment && r.suite == last.suite).count();
    let take = same.min(window);
    mine[mine.len() - take..].to_vec()
}

/// The mean of `values`.
fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// Two-sided p-value of Welch's t test between the means of `a` and `b`
/// (each at least 2 values); 1 when neither varies and the means are equal.
fn welch_p(a: &[f64], b: &[f64]) -> f64 {
    let moments = |v: &[f64]| {
        let m = mean(v);
        let n = v.len() as f64;
        (m, v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0), n)
    };
    let ((ma, va, na), (mb, vb, nb)) = (moments(a), moments(b));
    let (sa, sb) = (va / na, vb / nb);
    let se2 = sa + sb;
    let diff = mb - ma;
    if se2.is_nan() || se2 <= 0.0 {
        return if diff == 0.0 { 1.0 } else { 0.0 };
    }
    let t = diff / se2.sqrt();
    let df = se2 * se2 / (sa * sa / (na - 1.0) + sb * sb / (nb - 1.0));
    (2.0 * dist::student_t_sf(t.abs(), df)).min(1.0)
}

/// The metric's suite-level series over `runs`, with the strictest
/// tolerance and floor over the series used and how many there are; `None`
/// when no (case, phase) series is gated and complete.
fn suite_series(runs: &[&HistoryRecord], def: &MetricDef, rules: &Rules) -> Option<(Vec<f64>, f64, f64, usize)> {
    let first = runs.first()?;
    let usable = |v: Option<f64>| v.is_some_and(|v| v.is_finite() && v > 0.0);
    let mut keys: Vec<(&str, PhaseName)> = Vec::new();
    let (mut tolerance, mut floor) = (f64::INFINITY, f64::INFINITY);
    for (case, phases) in &first.cases {
        let rule = rules.rule_for(case, def);
        if rule.level < Level::Warn {
            continue;
        }
        for &phase in phases.keys().filter(|p| rules.phases.contains(p)) {
            if runs.iter().all(|r| usable(r.value(case, phase, def.name))) {
                keys.push((case, phase));
                tolerance = tolerance.min(rule.tolerance);
                floor = floor.min(rule.floor);
            }
        }
    }
    if keys.is_empty() {
        return None;
    }
    let series = runs
        .iter()
        .map(|r| {
            let sum: f64 =
                keys.iter().map(|&(case, phase)| r.value(case, phase, def.name).map_or(f64::NAN, f64::ln)).sum();
            sum / keys.len() as f64
        })
        .collect();
    Some((series, tolerance, floor, keys.len()))
}

/// Whether a relative `change` goes the wrong way for `direction`.
fn is_worse(direction: Direction, change: f64) -> bool {
    match direction {
        Direction::HigherIsBetter => change < 0.0,
        Direction::LowerIsBetter => change > 0.0,
    }
}

/// The trend of one metric over `runs`, if it moved.
fn metric_trend(
    runs: &[&HistoryRecord],
    def: &MetricDef,
    rules: &Rules,
    opts: &TrendOptions,
) -> Result<Option<MainTrend>, TrendError> {
    let Some((series, tolerance, floor, used)) = suite_series(runs, def, rules) else { return Ok(None) };
    let n = series.len();
    let m = opts.min_segment;
    if n < m.saturating_mul(2) {
        return Ok(None);
    }
    let seed = Rng::from_parts(&[&opts.seed.to_le_bytes(), b"main-over-time", def.name.as_bytes()]).next_u64();
    let cuts: Vec<usize> = changepoint::detect(&series, &opts.search(seed))?
        .into_iter()
        .filter(|c| (c.mean_after - c.mean_before).exp_m1().abs() >= opts.min_step)
        .map(|c| c.index)
        .collect();
    let (since, change, steps) = match (cuts.first(), cuts.last()) {
        (Some(&first), Some(&last)) => {
            let change = (mean(&series[last..]) - mean(&series[..first])).exp_m1();
            if change.abs() < opts.min_step {
                // Steps that cancel out: main is back where it was.
                return Ok(None);
            }
            (first, change, cuts.len())
        }
        _ => {
            // Welch needs two runs a block.
            if m < 2 {
                return Ok(None);
            }
            let (head, tail) = (&series[..m], &series[n - m..]);
            let (before, after) = (mean(head), mean(tail));
            let change = (after - before).exp_m1();
            let material = (after.exp() - before.exp()).abs() >= floor;
            if !(change.abs() > tolerance && material && welch_p(head, tail) <= opts.significance) {
                return Ok(None);
            }
            (0, change, 0)
        }
    };
    let run = runs[since];
    Ok(Some(MainTrend {
        metric: def.name.to_string(),
        change,
        worse: is_worse(def.direction, change),
        since_commit: run.commit.clone(),
        since_run: run.run_id.clone(),
        runs_ago: n - since,
        steps,
        tolerance,
        series: used,
    }))
}

/// Where main went over the last `opts.window` runs of `profile` in
/// `records` (oldest first, as the history store reads them back): one
/// trend per catalogue metric that some case gates at warn or fail and that
/// stepped or crept (see the module's documentation). Invalid options are
/// an error; too short a history is no trend.
pub fn main_over_time(
    records: &[HistoryRecord],
    profile: &str,
    rules: &Rules,
    opts: &TrendOptions,
) -> Result<MainOverTime, TrendError> {
    opts.validate()?;
    let runs = window(records, profile, opts.window);
    let mut trends = Vec::new();
    for def in CATALOGUE {
        if let Some(t) = metric_trend(&runs, def, rules, opts)? {
            trends.push(t);
        }
    }
    // Worse first, then the largest change; ties keep the catalogue's order.
    trends.sort_by(|a, b| b.worse.cmp(&a.worse).then(b.change.abs().total_cmp(&a.change.abs())));
    Ok(MainOverTime { profile: profile.to_string(), runs: runs.len(), trends })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::gate::rules::GateSection;
    use crate::history::{Point, SCHEMA};

    const CASES: [(&str, f64); 4] = [("a/1", 100.0), ("b/2", 60.0), ("c/3", 40.0), ("d/4", 25.0)];

    /// `n` runs of four cases (warm and cold phases): tokens_per_second and
    /// decode_tokens_per_second scaled by `level(run)`, e2e_median by its
    /// inverse, ttft_median flat. Noise: a shared run offset of `noise`
    /// (log scale) and a per-case one of half that.
    fn history(n: usize, seed: u64, noise: f64, level: impl Fn(usize) -> f64) -> Vec<HistoryRecord> {
        let mut rng = Rng::new(seed);
        (0..n)
            .map(|i| {
                let shared = noise * rng.normal();
                let mut cases = BTreeMap::new();
                for (case, base) in CASES {
                    let mut point =
                        |v: f64| Point { value: v * (shared + 0.5 * noise * rng.normal()).exp(), n: 10, spread: None };
                    let metrics = BTreeMap::from([
                        ("tokens_per_second".to_string(), point(base * level(i))),
                        ("decode_tokens_per_second".to_string(), point(base * 1.1 * level(i))),
                        ("e2e_median".to_string(), point(20_000.0 / base / level(i))),
                        ("ttft_median".to_string(), point(400.0)),
                    ]);
                    let phases = BTreeMap::from([(PhaseName::Warm, metrics.clone()), (PhaseName::Cold, metrics)]);
                    cases.insert(case.to_string(), phases);
                }
                HistoryRecord {
                    schema: SCHEMA.into(),
                    profile: "h100-vllm".into(),
                    run_id: format!("run-{i:03}"),
                    commit: Some(format!("{:040x}", 0xabc1234u64 * 0x1_0000_0000 + i as u64)),
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

    fn trends(records: &[HistoryRecord]) -> MainOverTime {
        main_over_time(records, "h100-vllm", &Rules::default(), &TrendOptions::default()).unwrap()
    }

    fn find<'a>(m: &'a MainOverTime, metric: &str) -> Option<&'a MainTrend> {
        m.trends.iter().find(|t| t.metric == metric)
    }

    #[test]
    fn a_single_step_is_found_with_its_commit_and_how_long_ago() {
        // 30 runs; the last 14 are 12% slower.
        let records = history(30, 1, 0.02, |i| if i < 16 { 1.0 } else { 0.88 });
        let m = trends(&records);
        assert_eq!(m.runs, 30);
        let t = find(&m, "tokens_per_second").unwrap();
        assert!(t.worse && (t.change + 0.12).abs() < 0.02, "{t:?}");
        assert!(t.runs_ago.abs_diff(14) <= 1 && t.steps == 1, "{t:?}");
        let run = &records[30 - t.runs_ago];
        assert_eq!((t.since_commit.as_ref(), &t.since_run), (run.commit.as_ref(), &run.run_id));
        assert_eq!((t.tolerance, t.series), (0.05, 4), "warm only: the gated phase");
        // E2E moved the other way round, and is worse too; TTFT did not move.
        let e2e = find(&m, "e2e_median").unwrap();
        assert!(e2e.worse && (e2e.change - (1.0 / 0.88 - 1.0)).abs() < 0.02, "{e2e:?}");
        assert!(find(&m, "ttft_median").is_none(), "{m:#?}");
        // decode_tokens_per_second moved as much, but its rule is off by default.
        assert!(find(&m, "decode_tokens_per_second").is_none(), "{m:#?}");
        // Worse first, the largest change first: e2e (+13.6%) before tokens/s (-12%).
        assert_eq!(m.trends.iter().map(|t| t.metric.as_str()).collect::<Vec<_>>(), ["e2e_median", "tokens_per_second"]);
    }

    #[test]
    fn three_small_steps_are_one_trend_in_several_steps() {
        // -4% at runs 12, 18 and 24 of 30: no single pull request saw more than 4%.
        let level = |i: usize| 0.96f64.powi([12, 18, 24].iter().filter(|&&s| i >= s).count() as i32);
        let records = history(30, 2, 0.005, level);
        let t = find(&trends(&records), "tokens_per_second").cloned().unwrap();
        assert!(t.worse && t.steps >= 2, "{t:?}");
        assert!((t.change - (0.96f64.powi(3) - 1.0)).abs() < 0.02, "{t:?}");
        assert!(t.runs_ago.abs_diff(18) <= 1, "{t:?}");
    }

    #[test]
    fn a_slow_creep_is_reported() {
        // -0.5% per run over 30 runs: about -13.5% end to end.
        let records = history(30, 3, 0.02, |i| 0.995f64.powi(i as i32));
        let t = find(&trends(&records), "tokens_per_second").cloned().unwrap();
        assert!(t.worse && t.change < -0.05, "{t:?}");
        assert!(t.runs_ago >= 10, "{t:?}");
    }

    #[test]
    fn a_creep_without_a_change_point_is_a_gradual_drift_from_the_first_run() {
        // Change points smaller than the smallest step (50% here) leave the
        // creep of -0.5% a run to the drift test between the first five runs
        // and the last five.
        let opts = TrendOptions { min_step: 0.5, ..TrendOptions::default() };
        let mut records = history(30, 4, 0.01, |i| 0.995f64.powi(i as i32));
        records.iter_mut().for_each(|r| r.commit = None);
        let m = main_over_time(&records, "h100-vllm", &Rules::default(), &opts).unwrap();
        let t = find(&m, "tokens_per_second").unwrap();
        assert_eq!((t.steps, t.runs_ago, t.since_commit.as_deref(), t.since_run.as_str()), (0, 30, None, "run-000"));
        assert!((t.change - (0.995f64.powi(25) - 1.0)).abs() < 0.02, "{t:?}");
        // The same shape, within the tolerances (-2.5% and +2.5%): nothing.
        let records = history(30, 4, 0.002, |i| 0.999f64.powi(i as i32));
        let m = main_over_time(&records, "h100-vllm", &Rules::default(), &opts).unwrap();
        assert!(m.trends.is_empty(), "{m:#?}");
    }

    #[test]
    fn noise_alone_is_almost_never_a_trend() {
        // 2% run-to-run drift, 30 runs, 200 histories, three gated metrics each.
        let mut false_alarms = 0;
        for seed in 0..200 {
            let m = trends(&history(30, 1000 + seed, 0.02, |_| 1.0));
            false_alarms += usize::from(!m.trends.is_empty());
        }
        assert!(false_alarms <= 3, "{false_alarms} of 200 unchanged histories showed a trend");
    }

    #[test]
    fn a_metric_whose_rule_is_off_is_never_reported() {
        let records = history(30, 5, 0.02, |i| if i < 16 { 1.0 } else { 0.8 });
        let section: GateSection = crate::tomldoc::parse_toml(
            "[gate.metrics.tokens_per_second]\nlevel = \"off\"\n[gate.metrics.e2e_median]\nlevel = \"info\"\n",
            "infergate.toml",
        )
        .unwrap();
        let rules = Rules::from_config(&section.gate);
        let m = main_over_time(&records, "h100-vllm", &rules, &TrendOptions::default()).unwrap();
        assert!(m.trends.is_empty(), "{m:#?}");
        // Off for one case: the others still make the series.
        let section: GateSection = crate::tomldoc::parse_toml(
            "[[gate.override]]\ncases = \"a/*\"\nmetric = \"tokens_per_second\"\nlevel = \"off\"\n",
            "infergate.toml",
        )
        .unwrap();
        let m = main_over_time(&records, "h100-vllm", &Rules::from_config(&section.gate), &TrendOptions::default())
            .unwrap();
        assert_eq!(find(&m, "tokens_per_second").map(|t| t.series), Some(3), "{m:#?}");
    }

    #[test]
    fn too_short_a_history_has_no_trend() {
        let records = history(9, 6, 0.0, |i| if i < 4 { 1.0 } else { 0.5 });
        let m = trends(&records);
        assert_eq!((m.runs, m.trends.len()), (9, 0));
        assert_eq!(trends(&[]).runs, 0);
    }

    #[test]
    fn the_window_is_the_tail_of_one_profile_and_setup() {
        let mut records = history(50, 7, 0.02, |i| if i < 10 { 0.5 } else { 1.0 });
        // Another profile's run in between does not count; an older setup does not either.
        records[45].profile = "other".into();
        let m = trends(&records);
        assert_eq!(m.runs, 30);
        assert!(m.trends.is_empty(), "the step at run 10 is outside the window: {m:#?}");
        records.iter_mut().skip(40).for_each(|r| r.environment = "f".into());
        assert_eq!(trends(&records).runs, 9);
        // A run lacking the metric drops the series it lacks, not the metric.
        let mut records = history(30, 8, 0.02, |i| if i < 16 { 1.0 } else { 0.88 });
        records[3].cases.get_mut("b/2").unwrap().get_mut(&PhaseName::Warm).unwrap().remove("tokens_per_second");
        assert_eq!(find(&trends(&records), "tokens_per_second").map(|t| t.series), Some(3));
    }

    #[test]
    fn the_answer_is_seeded_and_round_trips_through_json() {
        let records = history(30, 9, 0.02, |i| if i < 20 { 1.0 } else { 1.1 });
        let (a, b) = (trends(&records), trends(&records));
        assert_eq!(a, b);
        let t = find(&a, "tokens_per_second").unwrap();
        assert!(!t.worse && t.change > 0.05 && t.steps == 1, "an improvement is a trend too: {t:?}");
        let text = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<MainOverTime>(&text).unwrap(), a);
    }

    #[test]
    fn invalid_options_are_named() {
        let bad = TrendOptions { permutations: 10, ..TrendOptions::default() };
        assert!(matches!(bad.validate(), Err(TrendError::Search(ConfigError::Permutations { .. }))));
        let bad = TrendOptions { min_step: f64::NAN, ..TrendOptions::default() };
        let err = main_over_time(&[], "p", &Rules::default(), &bad).unwrap_err();
        assert!(err.to_string().contains("smallest step"), "{err}");
    }

    #[test]
    fn welch_matches_a_reference() {
        // t = 1.97566, df = 7.71113; p = 0.084956 by a Simpson quadrature of the t density.
        let p = welch_p(&[1.0, 2.0, 3.0, 4.0, 5.0], &[3.0, 4.0, 5.0, 6.0, 8.0]);
        assert!((p - 0.084956).abs() < 1e-5, "{p}");
        assert_eq!(welch_p(&[1.0, 1.0], &[1.0, 1.0]), 1.0);
        assert_eq!(welch_p(&[1.0, 1.0], &[2.0, 2.0]), 0.0);
    }
}
