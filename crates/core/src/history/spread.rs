//! The run-to-run spread of every metric, learnt from main's history.
//!
//! A one-run baseline cannot measure how much the runner drifts from one run
//! to the next; `[gate] run_to_run_cv` (from `calibrate`'s A/A runs) states
//! it once. Main's history measures it continuously, on the runner that
//! really runs the checks: the last [`DEFAULT_WINDOW`] runs of main, each a
//! fresh launch on a fresh commit, spread as a check run spreads. Each case,
//! phase and metric gets its own estimate
//! ([`crate::stats::runlevel::history_spread`]: the median absolute deviation
//! of successive differences, so that the steps and creeps main really made
//! do not count as noise), with its degrees of freedom, which the gate then
//! uses in place of the configured value.
//!
//! The cases of a phase and metric share one spread (their mean), unless a
//! case is far noisier than the rest ([`pooled`]).
//!
//! Only runs on the same environment as the current results count: a
//! history recorded on another GPU, driver, server or model says nothing
//! about this runner. Pure: no I/O.

use std::collections::BTreeMap;

use super::HistoryRecord;
use crate::results::PhaseName;
use crate::stats::dist;
use crate::stats::runlevel::{self, Prior, SpreadSource};

/// Runs of main read by default: about a month of daily merges, recent
/// enough to be today's runner.
pub const DEFAULT_WINDOW: usize = 30;

pub use crate::gate::history_spread::HistorySpreads;

/// One series' runs: their log values and the sampling variances known.
type Runs = (Vec<f64>, Vec<f64>);

/// Each case's spread pooled with the other cases' of the same phase and
/// metric. A runner's drift moves every case of a run at once, so the cases
/// share one spread; estimated per case, the estimates scatter
/// independently, and the case whose history happened to be calmest sets
/// off false alarms that the shared-drift arithmetic of the verdict does not
/// expect (the Monte Carlo measured 1.7% instead of 1% at 2% drift). The
/// median over the cases is that one spread (a few cases noisier than the
/// rest do not set it), with the degrees of freedom of
/// one case (the drift part of their estimates is one draw, so pooling
/// cannot add many). A case whose own spread is beyond the 99th percentile
/// of what the pooled one allows keeps its own: a case noisier than the
/// others is judged on its own noise.
fn pooled(
    own: &BTreeMap<(&str, PhaseName, &str), Prior>,
    significance: f64,
) -> BTreeMap<(String, PhaseName, String), Prior> {
    let mut groups: BTreeMap<(PhaseName, &str), Vec<Prior>> = BTreeMap::new();
    for ((_, phase, metric), p) in own {
        groups.entry((*phase, *metric)).or_default().push(*p);
    }
    let shared: BTreeMap<(PhaseName, &str), Prior> = groups
        .into_iter()
        .map(|(key, priors)| {
            let mut betweens: Vec<f64> = priors.iter().map(|p| p.between).collect();
            betweens.sort_by(f64::total_cmp);
            let between = crate::stats::quantile_sorted(&betweens, 0.5);
            let mut dfs: Vec<f64> = priors.iter().map(|p| p.df).collect();
            dfs.sort_by(f64::total_cmp);
            let df = dfs[dfs.len() / 2];
            (key, Prior { between, df, source: SpreadSource::History })
        })
        .collect();
    own.iter()
        .map(|((case, phase, metric), p)| {
            let pick = match shared.get(&(*phase, *metric)) {
                Some(s) if s.between > 0.0 && p.df.is_finite() => {
                    let limit = dist::chi_square_quantile(0.99, p.df) / p.df;
                    if p.between > limit * s.between { *p } else { *s }
                }
                Some(s) if p.between == 0.0 => *s,
                _ => *p,
            };
            (((*case).to_string(), *phase, (*metric).to_string()), known(pick, significance))
        })
        .collect()
}

/// An estimated spread as the verdict takes it: known, and wider by what
/// its estimate leaves unknown, at the run's false-alarm budget. The
/// estimate is one for every case of a run (pooled), so its error moves
/// every test of the run alike: it is paid once, at the family's level
/// (`(t / z)^2` at `significance` on the degrees of freedom of the runs'
/// spread), not at each test's much smaller level, where the Student-t
/// tails cost most of the power (Monte Carlo, 5% requests and 2% drift:
/// A/A 0.0% and twice the tolerance caught 24% of the time; taken as known
/// without the widening, A/A 1.3% at 2% drift; with it, 0.1 to 0.7% on
/// every runner of the table and 47% caught).
fn known(p: Prior, significance: f64) -> Prior {
    let a = significance.clamp(1e-6, 0.5);
    let widen = if p.df.is_finite() {
        let z = -dist::normal_quantile(a);
        let t = -dist::student_t_quantile(a, p.df.max(1.0));
        if t.is_finite() && z > 0.0 { (t / z).max(1.0) } else { 1.0 }
    } else {
        1.0
    };
    Prior { between: p.between * widen * widen, df: f64::INFINITY, source: p.source }
}

/// The spreads of the last `window` runs of `records` (profile `profile`,
/// oldest first) whose environment fingerprint is `environment`, for a
/// verdict at false-alarm budget `significance`.
pub fn spreads(
    records: &[HistoryRecord],
    profile: &str,
    environment: &str,
    window: usize,
    significance: f64,
) -> HistorySpreads {
    let same: Vec<&HistoryRecord> = records.iter().filter(|r| r.environment == environment).collect();
    let read = &same[same.len().saturating_sub(window.max(1))..];
    // Per series: each run's log value and sampling variance, in run order.
    let mut series: BTreeMap<(&str, PhaseName, &str), Runs> = BTreeMap::new();
    for r in read {
        for (case, phases) in &r.cases {
            for (phase, metrics) in phases {
                for (metric, point) in metrics {
                    if !(point.value > 0.0 && point.value.is_finite()) {
                        continue;
                    }
                    let (logs, within) = series.entry((case.as_str(), *phase, metric.as_str())).or_default();
                    logs.push(point.value.ln());
                    if let Some(s) = point.spread.filter(|s| s.is_finite()) {
                        within.push(s * s);
                    }
                }
            }
        }
    }
    let own: BTreeMap<(&str, PhaseName, &str), Prior> = series
        .into_iter()
        .filter_map(|(key, (logs, within))| runlevel::history_spread(&logs, &within).map(|p| (key, p)))
        .collect();
    let by_metric = pooled(&own, significance);
    HistorySpreads {
        profile: profile.to_string(),
        records: records.len(),
        same_environment: same.len(),
        runs: read.len(),
        series: by_metric.len(),
        by_metric,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Point, SCHEMA};
    use crate::rng::Rng;

    fn record(i: usize, environment: &str, tps: f64) -> HistoryRecord {
        let point = Point { value: tps, n: 10, spread: Some(0.001) };
        let metrics = BTreeMap::from([("tokens_per_second".to_string(), point)]);
        HistoryRecord {
            schema: SCHEMA.into(),
            profile: "p".into(),
            run_id: format!("run-{i}"),
            commit: Some(format!("{i:07x}")),
            git_ref: Some("refs/heads/main".into()),
            time: "2026-11-30T00:00:00Z".into(),
            tool_version: "0".into(),
            environment: environment.into(),
            suite: "s".into(),
            cases: BTreeMap::from([("a/1".to_string(), BTreeMap::from([(PhaseName::Warm, metrics)]))]),
        }
    }

    #[test]
    fn the_last_runs_on_this_environment_only() {
        let mut rng = Rng::new(5);
        let mut records: Vec<HistoryRecord> =
            (0..20).map(|i| record(i, "h100", 50.0 * (1.0 + 0.2 * rng.normal()))).collect();
        records.extend((20..60).map(|i| record(i, "h200", 100.0 * (1.0 + 0.02 * rng.normal()))));
        let s = spreads(&records, "p", "h200", 30, 0.01);
        assert_eq!((s.records, s.same_environment, s.runs, s.series), (60, 40, 30, 1));
        let p = s.get("a/1", PhaseName::Warm, "tokens_per_second").unwrap();
        // 2% drift, estimated from 30 runs and widened for that (about 1.2x at 1%).
        assert!(p.between.sqrt() > 0.015 && p.between.sqrt() < 0.05, "the h100's 20% is not this runner's: {p:?}");
        assert_eq!(p.df, f64::INFINITY, "the estimate's uncertainty is in the widening");
        assert!(s.get("a/1", PhaseName::Cold, "tokens_per_second").is_none());
        let none = spreads(&records, "p", "a100", 30, 0.01);
        assert_eq!((none.runs, none.series), (0, 0));
        let short = spreads(&records[20..28], "p", "h200", 30, 0.01);
        assert_eq!((short.runs, short.series), (8, 0), "eight runs are too few");
    }

    #[test]
    fn cases_share_one_spread_unless_one_is_far_noisier() {
        let mut rng = Rng::new(9);
        let mut records: Vec<HistoryRecord> = Vec::new();
        for i in 0..30 {
            let drift = 0.02 * rng.normal();
            let mut r = record(i, "h200", 100.0 * drift.exp());
            let warm = |v: f64| {
                let point = Point { value: v, n: 10, spread: Some(0.001) };
                BTreeMap::from([(PhaseName::Warm, BTreeMap::from([("tokens_per_second".to_string(), point)]))])
            };
            for c in 0..6 {
                r.cases.insert(format!("calm/{c}"), warm(50.0 * (drift + 0.003 * rng.normal()).exp()));
            }
            r.cases.insert("wild/1".into(), warm(80.0 * (drift + 0.15 * rng.normal()).exp()));
            records.push(r);
        }
        let s = spreads(&records, "p", "h200", 30, 0.01);
        let get = |case: &str| s.get(case, PhaseName::Warm, "tokens_per_second").unwrap().between;
        let calm: Vec<f64> = (0..6).map(|c| get(&format!("calm/{c}"))).collect();
        assert!(calm.iter().all(|v| *v == calm[0]), "one spread for the calm cases: {calm:?}");
        assert_eq!(get("a/1"), calm[0]);
        assert!(get("wild/1").sqrt() > 0.1, "the wild case keeps its own: {}", get("wild/1").sqrt());
        assert!(calm[0].sqrt() > 0.012 && calm[0].sqrt() < 0.04, "{}", calm[0].sqrt());
    }
}
