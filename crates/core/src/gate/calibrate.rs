//! Calibration from A/A runs: how noisy is this system within a run and
//! between runs, and what baseline, repetitions and tolerances make the gate
//! quiet on noise and loud on real change?
//!
//! Two kinds of noise matter. Within a run, requests vary; more repetitions
//! shrink that part. Between runs (server launches), the whole system
//! shifts: clocks, thermals, the launch itself. No number of repetitions
//! shrinks that part; only more runs do (in the baseline, or in the check).
//! Calibration measures both from several runs of an unchanged server,
//! each a fresh launch when it can start the server itself:
//!
//! - the within-run spread per request (the runs' own spread);
//! - the run-to-run spread of each metric with the within-run sampling
//!   variance of the statistic subtracted (so a quiet runner reads as quiet),
//!   and its upper confidence bound from the chi-square distribution on
//!   runs - 1 degrees of freedom: with five runs the spread is known only to
//!   within a factor of two, and the recommendations must hold for the real
//!   runner, not the lucky estimate;
//! - the baseline runs and repetitions with which a change of twice the
//!   tolerance is caught 95% of the time in each case (at that upper bound),
//!   or, when no affordable design can, the smallest tolerance that can be
//!   held, and an honest sentence saying so.
//!
//! Pure: no I/O.

use serde::Serialize;

use super::Level;
use super::compare::{CompareInput, POWER, compare};
use super::history_spread::HistorySpreads;
use super::rules::Rules;
use crate::baseline::Baseline;
use crate::metrics::{CATALOGUE, MetricDef};
use crate::results::Results;
use crate::stats::dist;
use crate::stats::multiplicity::{self, Family};
use crate::stats::runlevel::{self, Design, Detection, RunValue, SpreadSource};

/// Confidence of the upper bound on the run-to-run spread.
pub const UPPER_CONFIDENCE: f64 = 0.95;
/// Most baseline runs a recommendation asks for (recorded once).
pub const MAX_BASELINE_RUNS: usize = 10;
/// Most repetitions a recommendation asks for (paid by every check).
pub const MAX_REPETITIONS: u32 = 100;
/// Repetitions a suggested tolerance assumes at least (a run's own spread needs five).
const MIN_REPETITIONS: u32 = runlevel::MIN_WITHIN_SAMPLES as u32;
/// Repetition counts tried, in order (besides the current one).
const REPETITION_STEPS: [u32; 9] = [5, 10, 15, 20, 30, 40, 50, 60, 100];

/// The calibration report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Calibration {
    /// A/A runs analysed.
    pub runs: usize,
    /// Whether each run was a fresh server launch (`--server-command`);
    /// without it, drift between launches is invisible.
    pub relaunched: bool,
    /// Cases per run.
    pub cases: usize,
    /// Warm repetitions per case in the runs.
    pub repetitions: u32,
    /// False-alarm budget of a run (`[gate] significance`).
    pub significance: f64,
    /// Per metric.
    pub metrics: Vec<MetricCalibration>,
    /// Leave-one-out A/A comparisons made (each run against the others as the baseline).
    pub aa_comparisons: usize,
    /// How many of them the current rules would have failed or flagged.
    pub aa_false_alarms: usize,
    /// Runs of main's history the run-to-run spread came from (`calibrate --history`), when it did.
    pub history_runs: Option<usize>,
    /// Repetitions to configure: the most any fail-level metric's design needs.
    pub suggested_repetitions: u32,
    /// Baseline runs to record: the most any fail-level metric's design needs.
    pub suggested_baseline_runs: usize,
}

/// Calibration of one metric, over the cases.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricCalibration {
    /// Catalogue name.
    pub metric: String,
    /// Configured level (the loudest over cases).
    pub level: Level,
    /// Configured tolerance (the strictest over cases).
    pub tolerance: f64,
    /// Per-request spread within a run (coefficient of variation).
    pub within_run_cv: f64,
    /// Spread of the metric between runs beyond what the requests' spread explains.
    pub run_to_run_cv: f64,
    /// Upper confidence bound ([`UPPER_CONFIDENCE`]) of `run_to_run_cv`;
    /// from main's history, the spread the gate uses (widened for its
    /// estimate), equal to `run_to_run_cv`.
    pub run_to_run_cv_upper: f64,
    /// Where the run-to-run spread came from: the A/A runs (`runs`) or
    /// main's history (`history`).
    pub spread_source: SpreadSource,
    /// Share of the run-to-run variance that every case of a run shares.
    pub shared: f64,
    /// Smallest change one check run of the same repetitions would catch 95%
    /// of the time with these runs as its baseline (median over cases).
    pub detects_now: Option<f64>,
    /// Baseline runs and repetitions that catch twice the tolerance 95% of
    /// the time in each case; `None` when none within the limits can.
    pub design: Option<Recommended>,
    /// The tolerance to configure: the configured one when `design` exists,
    /// else the smallest one that some design within the limits can hold.
    pub suggested_tolerance: f64,
    /// The design for `suggested_tolerance`.
    pub suggested_design: Option<Recommended>,
}

/// A design: baseline runs and repetitions per run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Recommended {
    /// Baseline runs (1: one run with `run_to_run_cv` configured).
    pub baseline_runs: usize,
    /// Warm repetitions per case.
    pub repetitions: u32,
}

/// The noise components of one metric (log units) and how the gate judges it.
#[derive(Debug, Clone, Copy)]
struct Noise {
    between: f64,
    per_request: f64,
    /// Share of the per-run variance that every case and metric of a run share.
    shared: f64,
    /// Fail-level tests of a check run, over which the budget is spent.
    tests: usize,
}

impl Noise {
    /// The minimum detectable change (log, bad direction) under design `d`.
    fn mdc(&self, d: Design, limit: f64, significance: f64) -> Option<f64> {
        let (se, df) = runlevel::noise_under(self.between, self.per_request, d)?;
        let fb = 1.0 / d.baseline_runs as f64;
        let fc = 1.0 / d.current_runs as f64;
        let load = if se > 0.0 { (self.shared * self.between * (fb + fc) / (se * se)).min(1.0) } else { 0.0 };
        let level = multiplicity::test_level(&[Family::new(std::iter::repeat_n(load, self.tests))], significance)?;
        Some(Detection::new(level, significance, POWER).min_detectable(limit, se, df, load))
    }

    /// The cheapest design that catches `target` (log): the fewest
    /// repetitions (which every check pays), then the fewest baseline runs
    /// (paid once).
    fn design_for(&self, limit: f64, target: f64, from: u32, max_n: u32, significance: f64) -> Option<Recommended> {
        let steps = std::iter::once(from).chain(REPETITION_STEPS.into_iter().filter(|n| *n > from));
        for n in steps.filter(|n| *n <= max_n) {
            // Two runs measure no spread (one degree of freedom): one run with
            // run_to_run_cv set does as well, so two is never the answer.
            for k in std::iter::once(1).chain(3..=MAX_BASELINE_RUNS) {
                let d = Design { baseline_runs: k, current_runs: 1, requests: f64::from(n) };
                if self.mdc(d, limit, significance).is_some_and(|m| m <= target) {
                    return Some(Recommended { baseline_runs: k, repetitions: n });
                }
            }
        }
        None
    }
}

/// Whether a relative limit in the bad direction of `def` is finite in logs.
fn log_limit(def: &MetricDef, r: f64) -> f64 {
    match def.direction {
        super::Direction::LowerIsBetter => r.ln_1p(),
        super::Direction::HigherIsBetter if r < 1.0 => -(-r).ln_1p(),
        super::Direction::HigherIsBetter => f64::INFINITY,
    }
}

fn relative(def: &MetricDef, m: f64) -> f64 {
    match def.direction {
        super::Direction::LowerIsBetter => m.exp_m1(),
        super::Direction::HigherIsBetter => -(-m).exp_m1(),
    }
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 0 { (v[m - 1] + v[m]) / 2.0 } else { v[m] })
}

/// Analyses A/A runs (at least two, same suite and cases); `relaunched` says
/// whether each was a fresh server launch.
pub fn calibrate(runs: &[Results], rules: &Rules, relaunched: bool) -> Calibration {
    calibrate_with(runs, rules, relaunched, None)
}

/// [`calibrate`], with the run-to-run spread of each metric taken from
/// main's history where it has the metric (`calibrate --history`): the
/// median over the cases and gated phases of the spread the gate would use
/// (the history's `spread` module, already widened for its estimate), in place
/// of the A/A runs' spread and its upper bound. The A/A runs still give the
/// spread within a run and the leave-one-out check.
pub fn calibrate_with(
    runs: &[Results],
    rules: &Rules,
    relaunched: bool,
    history: Option<&HistorySpreads>,
) -> Calibration {
    let first = runs.first();
    let case_ids: Vec<&str> = first
        .map(|r| {
            r.cases
                .iter()
                .map(|c| c.id.as_str())
                .filter(|id| runs.iter().all(|r| r.cases.iter().any(|c| c.id == *id)))
                .collect()
        })
        .unwrap_or_default();
    let repetitions = first.and_then(|r| r.cases.first()).map_or(0, |c| c.repetitions);
    let k = runs.len();
    // The fail-level tests of a check run: the cases x metric families x phases.
    let tests_per_run = {
        let mut f: Vec<_> = CATALOGUE
            .iter()
            .filter(|d| case_ids.iter().any(|id| rules.rule_for(id, d).level == Level::Fail))
            .filter_map(|d| d.family())
            .collect();
        f.sort();
        f.dedup();
        (f.len() * rules.phases.len() * case_ids.len()).max(1)
    };
    // chi2(k-1) lower quantile: the variance's upper bound is (k-1) s^2 / chi2.
    let chi2 = dist::chi_square_quantile(1.0 - UPPER_CONFIDENCE, k.saturating_sub(1).max(1) as f64);
    struct Measured {
        def: &'static MetricDef,
        tolerance: f64,
        floor: f64,
        level: Level,
        s2: f64,
        within: f64,
        per_request: f64,
        base_value: f64,
        /// Per case and phase: the runs' log values and their mean within-run variance.
        rows: Vec<(Vec<f64>, f64)>,
    }
    let mut measured = Vec::new();
    // Worse-is-positive log values of every run of every fail-level case and
    // metric, for the drift that all of them share.
    let mut fail_rows: Vec<Vec<f64>> = Vec::new();
    for def in CATALOGUE {
        let Some((series, statistic)) = def.request_source() else { continue };
        let mut tolerance = f64::INFINITY;
        let mut floor = 0.0f64;
        let mut level = Level::Off;
        let (mut s2, mut within, mut per_request, mut values) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut rows = Vec::new();
        for id in &case_ids {
            let rule = rules.rule_for(id, def);
            tolerance = tolerance.min(rule.tolerance);
            floor = floor.max(rule.floor);
            level = level.max(rule.level);
            for phase in &rules.phases {
                let per_run: Option<Vec<RunValue>> = runs
                    .iter()
                    .map(|r| {
                        let c = r.cases.iter().find(|c| c.id == *id)?;
                        RunValue::of(&series.samples(&c.phases.get(phase)?.requests), statistic.quantile())
                    })
                    .collect();
                let Some(per_run) = per_run else { continue };
                let logs: Vec<f64> = per_run.iter().map(|r| r.value.ln()).collect();
                let m = logs.iter().sum::<f64>() / logs.len() as f64;
                values.push(m.exp());
                if k >= 2 {
                    s2.push(logs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (k - 1) as f64);
                }
                let w: Option<Vec<f64>> = per_run.iter().map(|r| r.within).collect();
                if let Some(w) = w {
                    let w_mean = w.iter().sum::<f64>() / w.len() as f64;
                    within.push(w_mean);
                    let n = per_run.iter().map(|r| r.n as f64).sum::<f64>() / per_run.len() as f64;
                    per_request.push(w_mean * n);
                    rows.push((logs.clone(), w_mean));
                }
                if rule.level == Level::Fail {
                    let sign = if def.direction == super::Direction::HigherIsBetter { -1.0 } else { 1.0 };
                    fail_rows.push(logs.iter().map(|x| sign * x).collect());
                }
            }
        }
        if level == Level::Off || s2.is_empty() || !tolerance.is_finite() {
            continue;
        }
        let mean = |v: &[f64]| if v.is_empty() { 0.0 } else { v.iter().sum::<f64>() / v.len() as f64 };
        measured.push(Measured {
            def,
            tolerance,
            floor,
            level,
            s2: mean(&s2),
            within: mean(&within),
            per_request: median(per_request).unwrap_or(0.0),
            base_value: median(values).unwrap_or(0.0),
            rows,
        });
    }
    let refs: Vec<&[f64]> = fail_rows.iter().map(Vec::as_slice).collect();
    let common = runlevel::shared_variance(&refs).unwrap_or(0.0);
    let mut metrics = Vec::new();
    for m in measured {
        let Measured { def, tolerance, floor, level, s2, within: w, per_request, base_value, rows } = m;
        // With several cases, pooled: the drift they share, measured on runs - 1
        // degrees of freedom, and the rest (the requests' spread, inflated by
        // whatever makes the runs scatter more than it says) per request.
        // With one case, its runs' spread less its requests' spread.
        let refs: Vec<(&[f64], f64)> = rows.iter().map(|(r, w)| (r.as_slice(), *w)).collect();
        let (mut between, mut upper, per_request, mut shared) = match runlevel::pool(&refs) {
            Some(p) => (p.shared, p.shared_upper(UPPER_CONFIDENCE), per_request * p.inflation, 1.0),
            None => {
                let shared = if s2 > 0.0 { (common / s2).min(1.0) } else { 0.0 };
                ((s2 - w).max(0.0), ((k - 1) as f64 * s2 / chi2 - w).max(0.0), per_request, shared)
            }
        };
        let mut spread_source = SpreadSource::Runs;
        if let Some(h) = history {
            let mut learnt: Vec<f64> = case_ids
                .iter()
                .flat_map(|id| rules.phases.iter().filter_map(move |phase| h.get(id, *phase, def.name)))
                .map(|p| p.between)
                .collect();
            learnt.sort_by(f64::total_cmp);
            if !learnt.is_empty() {
                let v = crate::stats::quantile_sorted(&learnt, 0.5);
                (between, upper, shared, spread_source) = (v, v, 1.0, SpreadSource::History);
            }
        }
        let limit_of = |t: f64| {
            let floor = if base_value > 0.0 { log_limit(def, floor / base_value) } else { f64::INFINITY };
            log_limit(def, t).max(floor)
        };
        let noise = Noise { between: upper, per_request, shared, tests: tests_per_run };
        let point = Noise { between, ..noise };
        let limit = limit_of(tolerance);
        let now = Design { baseline_runs: k, current_runs: 1, requests: f64::from(repetitions.max(1)) };
        let detects_now = point.mdc(now, limit, rules.significance).map(|m| relative(def, m));
        let target = |t: f64| log_limit(def, 2.0 * relative(def, limit_of(t)));
        let reps = repetitions.max(1);
        let design = noise.design_for(limit, target(tolerance), reps, MAX_REPETITIONS, rules.significance);
        let (suggested_tolerance, suggested_design) = match design {
            Some(d) => (tolerance, Some(d)),
            None => (1..=200)
                .map(|i| tolerance + 0.005 * f64::from(i))
                .find_map(|t| {
                    noise
                        // At the repetitions configured now: a looser gate, not a dearer check.
                        .design_for(limit_of(t), target(t), reps, reps.max(MIN_REPETITIONS), rules.significance)
                        .map(|d| ((t * 1000.0).round() / 1000.0, Some(d)))
                })
                .unwrap_or((tolerance, None)),
        };
        metrics.push(MetricCalibration {
            metric: def.name.into(),
            level,
            tolerance,
            within_run_cv: per_request.sqrt(),
            run_to_run_cv: between.sqrt(),
            run_to_run_cv_upper: upper.sqrt(),
            spread_source,
            shared,
            detects_now,
            design,
            suggested_tolerance,
            suggested_design,
        });
    }
    // Leave-one-out A/A: each run against the others as a baseline.
    let mut aa_false_alarms = 0;
    let aa_comparisons = if k >= 3 { k } else { 0 };
    for i in 0..aa_comparisons {
        let others: Vec<Results> = runs.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, r)| r.clone()).collect();
        let baseline = Baseline::from_runs(&others, "calibration");
        let c = compare(&CompareInput {
            current: std::slice::from_ref(&runs[i]),
            results_paths: &["aa".to_string()],
            baseline: &baseline,
            baseline_path: "aa",
            rules,
            allow_mismatch: false,
            history: None,
        });
        if c.counts.regressed + c.counts.improved > 0 || c.verdict.is_regression() || c.verdict.is_unjudged() {
            aa_false_alarms += 1;
        }
    }
    let gated = || metrics.iter().filter(|m| m.level == Level::Fail).filter_map(|m| m.suggested_design);
    Calibration {
        runs: k,
        relaunched,
        cases: case_ids.len(),
        repetitions,
        significance: rules.significance,
        aa_comparisons,
        aa_false_alarms,
        history_runs: history.filter(|h| h.series > 0).map(|h| h.runs),
        suggested_repetitions: gated().map(|d| d.repetitions).max().unwrap_or(repetitions),
        suggested_baseline_runs: gated().map(|d| d.baseline_runs).max().unwrap_or(k),
        metrics,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::results;

    const CASES: [&str; 2] = ["a/1", "b/1"];

    #[test]
    fn quiet_system_keeps_the_tolerances() {
        let runs: Vec<Results> = (0..5).map(|s| results(&CASES, 10 + s, 12, 1.0, 0.02)).collect();
        let c = calibrate(&runs, &Rules::default(), true);
        assert_eq!((c.runs, c.cases, c.aa_comparisons), (5, 2, 5));
        assert_eq!(c.aa_false_alarms, 0);
        let tps = c.metrics.iter().find(|m| m.metric == "tokens_per_second").unwrap();
        assert!(tps.within_run_cv > 0.005 && tps.within_run_cv < 0.05, "{tps:?}");
        // No drift: what spread the runs show is the medians' own sampling error, subtracted.
        assert!(tps.run_to_run_cv < 0.01, "{tps:?}");
        assert_eq!(tps.suggested_tolerance, 0.05);
        assert!(tps.design.is_some(), "{tps:?}");
    }

    #[test]
    fn main_history_gives_the_run_to_run_spread() {
        let runs: Vec<Results> = (0..5).map(|s| results(&CASES, 10 + s, 12, 1.0, 0.02)).collect();
        let prior = crate::stats::runlevel::Prior {
            between: 0.04f64.powi(2),
            df: f64::INFINITY,
            source: SpreadSource::History,
        };
        let by_metric = CASES
            .iter()
            .map(|c| ((c.to_string(), crate::results::PhaseName::Warm, "tokens_per_second".to_string()), prior))
            .collect();
        let h =
            HistorySpreads { profile: "p".into(), records: 30, same_environment: 30, runs: 30, by_metric, series: 2 };
        let c = calibrate_with(&runs, &Rules::default(), true, Some(&h));
        assert_eq!(c.history_runs, Some(30));
        let tps = c.metrics.iter().find(|m| m.metric == "tokens_per_second").unwrap();
        assert_eq!(tps.spread_source, SpreadSource::History);
        assert!((tps.run_to_run_cv - 0.04).abs() < 1e-12 && tps.run_to_run_cv_upper == tps.run_to_run_cv, "{tps:?}");
        let quiet = calibrate(&runs, &Rules::default(), true);
        let q = quiet.metrics.iter().find(|m| m.metric == "tokens_per_second").unwrap();
        assert_eq!(q.spread_source, SpreadSource::Runs);
        assert!(tps.detects_now.unwrap() > q.detects_now.unwrap(), "a drifting main makes the check less sensitive");
        // Metrics the history lacks keep the A/A runs' spread.
        let ttft = c.metrics.iter().find(|m| m.metric == "ttft_median").unwrap();
        assert_eq!(ttft.spread_source, SpreadSource::Runs);
    }

    #[test]
    fn noisy_requests_need_more_repetitions_or_a_looser_tolerance() {
        let quiet: Vec<Results> = (0..5).map(|s| results(&CASES, 10 + s, 10, 1.0, 0.02)).collect();
        let noisy: Vec<Results> = (0..5).map(|s| results(&CASES, 10 + s, 10, 1.0, 0.12)).collect();
        let tps = |c: &Calibration| c.metrics.iter().find(|m| m.metric == "tokens_per_second").cloned().unwrap();
        let q = tps(&calibrate(&quiet, &Rules::default(), true));
        let n = tps(&calibrate(&noisy, &Rules::default(), true));
        assert!(n.within_run_cv > 3.0 * q.within_run_cv, "{q:?} {n:?}");
        let q_design = q.design.unwrap();
        assert!(
            n.design.is_none_or(|d| d.repetitions > q_design.repetitions)
                && n.suggested_tolerance >= q.suggested_tolerance,
            "{q:?} {n:?}"
        );
        assert!(n.design.is_some() || n.suggested_tolerance > 0.05, "{n:?}");
    }

    #[test]
    fn drift_between_runs_is_measured_and_raises_the_tolerance() {
        // Runs 4% apart: no repetition count hides that, and one check run
        // cannot tell a 10% change from it.
        let runs: Vec<Results> = [1.0, 1.04, 0.96, 1.05, 0.95]
            .iter()
            .enumerate()
            .map(|(i, s)| results(&CASES, 20 + i as u64, 12, *s, 0.01))
            .collect();
        let c = calibrate(&runs, &Rules::default(), true);
        let tps = c.metrics.iter().find(|m| m.metric == "tokens_per_second").unwrap();
        assert!(tps.run_to_run_cv > 0.03 && tps.run_to_run_cv < 0.06, "{tps:?}");
        assert!(tps.run_to_run_cv_upper > 1.5 * tps.run_to_run_cv, "five runs bound the spread loosely: {tps:?}");
        assert!(tps.shared > 0.9, "the factor moved both cases: {tps:?}");
        assert!(tps.design.is_none(), "{tps:?}");
        assert!(tps.suggested_tolerance > 0.05, "{tps:?}");
    }
}
