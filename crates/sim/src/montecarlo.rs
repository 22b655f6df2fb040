//! A seeded Monte Carlo check of the verdict under a noise model as harsh as
//! a real GPU runner's.
//!
//! Runs are drawn from the simulator's own performance model
//! ([`crate::synthetic`]), with what a shared GPU runner does to it:
//!
//! - a run-level factor per launch (normal, or heavy-tailed: Student-t on 3
//!   degrees of freedom), shared by every case and request of the run;
//! - per-request noise that is lognormal (a tail of slow requests), with
//!   rare outliers (1% of requests up to 3x slower);
//! - autocorrelation within a run (a slow request is followed by slow ones);
//! - a warm-up trend after each launch (the first requests slower).
//!
//! It answers, for such a runner: how often the gate fails an unchanged
//! system (A/A), averaged over the baselines one could have committed and
//! conditional on the committed one (recorded in the fastest or slowest
//! quarter of runs); how often it fails as a function of the true change
//! (the operating curve); whether the minimum detectable change it prints is
//! caught as often as it says; and what `calibrate` recommends across many
//! calibrations, and whether its recommendations hold. `examples/gate_montecarlo.rs`
//! runs the full version; a small one runs in the tests. Pure computation:
//! no I/O, threads only to use the cores.

use serde::Serialize;

use infergate_core::baseline::Baseline;
use infergate_core::gate::compare::{CompareInput, compare};
use infergate_core::gate::rules::{GateSection, Rules};
use infergate_core::gate::{MetricStatus, Verdict};
use infergate_core::history::spread::HistorySpreads;
use infergate_core::metrics::{self, Series};
use infergate_core::results::{PhaseName, Results};
use infergate_core::suite::Suite;

use crate::model::{DriftTail, RequestNoise};
use crate::{SimConfig, synthetic};

/// What a runner does to the measurements.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Noise {
    /// Per-request coefficient of variation (lognormal).
    pub request_cv: f64,
    /// Run-to-run standard deviation of the run factor.
    pub run_drift: f64,
    /// Whether the run factor is heavy-tailed (Student-t, 3 df) rather than normal.
    pub heavy: bool,
    /// Share of requests that are outliers.
    pub outlier_rate: f64,
    /// Lag-1 autocorrelation of the per-request noise within a run.
    pub autocorrelation: f64,
    /// Warm-up slowdown of the first request after launch (decays over 5 requests).
    pub warmup: f64,
}

impl Noise {
    /// The harsh runner: lognormal requests with 1% outliers up to 3x,
    /// autocorrelation 0.3, a 20% warm-up slowdown after launch, and the
    /// given per-request and run-to-run spreads.
    pub fn runner(request_cv: f64, run_drift: f64) -> Noise {
        Noise { request_cv, run_drift, heavy: false, outlier_rate: 0.01, autocorrelation: 0.3, warmup: 0.2 }
    }

    /// The simulator configured with this noise: a 32B-class model on one
    /// GPU (about 50 tokens/s, 20k prompt tokens/s prefill).
    pub fn sim_config(&self) -> SimConfig {
        SimConfig {
            ttft_base_ms: 40.0,
            prefill_tokens_per_s: 20_000.0,
            itl_ms: 20.0,
            itl_jitter: 0.1,
            request_cv: self.request_cv,
            request_noise: RequestNoise::Lognormal,
            autocorrelation: self.autocorrelation,
            outlier_rate: self.outlier_rate,
            outlier_factor: 3.0,
            warmup_slowdown: self.warmup,
            warmup_requests: 5.0,
            run_drift: self.run_drift,
            run_drift_tail: if self.heavy { DriftTail::Heavy } else { DriftTail::Normal },
            ..SimConfig::default()
        }
    }
}

/// One experimental setup: the runner, the suite, the design and the rules.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The runner's noise.
    pub noise: Noise,
    /// The suite whose cases are simulated.
    pub suite: Suite,
    /// Warm repetitions per case.
    pub repetitions: u32,
    /// Runs in each baseline.
    pub baseline_runs: usize,
    /// The rules of the gate.
    pub rules: Rules,
    /// Seed of the whole experiment.
    pub seed: u64,
    /// Threads to spread the comparisons over.
    pub threads: usize,
}

/// A rate with its 95% Wilson interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rate {
    /// Events.
    pub hits: u64,
    /// Trials.
    pub trials: u64,
}

impl Rate {
    /// The point estimate.
    pub fn value(&self) -> f64 {
        if self.trials == 0 { f64::NAN } else { self.hits as f64 / self.trials as f64 }
    }

    /// The 95% Wilson score interval.
    pub fn interval(&self) -> (f64, f64) {
        let n = self.trials as f64;
        if n == 0.0 {
            return (0.0, 1.0);
        }
        let z = 1.959_963_984_540_054;
        let p = self.hits as f64 / n;
        let centre = (p + z * z / (2.0 * n)) / (1.0 + z * z / n);
        let half = z / (1.0 + z * z / n) * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt();
        ((centre - half).max(0.0), (centre + half).min(1.0))
    }

    /// `12.3% [10.1, 14.8]`.
    pub fn text(&self) -> String {
        let (lo, hi) = self.interval();
        format!("{:.1}% [{:.1}, {:.1}]", 100.0 * self.value(), 100.0 * lo, 100.0 * hi)
    }

    fn add(&mut self, other: Rate) {
        self.hits += other.hits;
        self.trials += other.trials;
    }
}

/// A/A false alarms.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct AaReport {
    /// Runs the gate failed (exit 1), over all baselines.
    pub all: Rate,
    /// The same, for baselines recorded in the fastest quarter of baselines.
    pub fastest_quarter: Rate,
    /// The same, for baselines in the slowest quarter.
    pub slowest_quarter: Rate,
    /// Runs today's verdict would have failed: one-run baseline, Mann-Whitney
    /// on the requests, Bonferroni over cases (only with one-run baselines).
    pub before: Option<Rate>,
}

/// The baselines and current runs of one experiment.
struct Draws {
    baselines: Vec<(Baseline, f64, Vec<Results>)>,
    currents: Vec<Results>,
}

/// Mean log tokens per second over cases and runs: the speed a user sees.
fn speed(runs: &[Results]) -> f64 {
    let mut sum = 0.0;
    let mut n = 0usize;
    for r in runs {
        for c in &r.cases {
            if let Some(m) = c.phases.get(&PhaseName::Warm).and_then(|p| p.summary.tokens_per_second.as_ref()) {
                sum += m.median.ln();
                n += 1;
            }
        }
    }
    if n == 0 { 0.0 } else { sum / n as f64 }
}

fn draw(setup: &Setup, baselines: usize, currents: usize) -> Draws {
    let config = setup.noise.sim_config();
    let config = SimConfig { seed: setup.seed, ..config };
    let k = setup.baseline_runs.max(1);
    let run = |n: u64| synthetic::run(&config, &setup.suite, setup.repetitions, n);
    let mut out = Draws { baselines: Vec::new(), currents: Vec::new() };
    let threads = setup.threads.max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let run = &run;
                s.spawn(move || {
                    let mut b = Vec::new();
                    let mut c = Vec::new();
                    for i in (t..baselines).step_by(threads) {
                        let runs: Vec<Results> = (0..k).map(|j| run((i * k + j) as u64)).collect();
                        b.push((i, (Baseline::from_runs(&runs, "mc"), speed(&runs), runs)));
                    }
                    for i in (t..currents).step_by(threads) {
                        c.push((i, run(1_000_000 + i as u64)));
                    }
                    (b, c)
                })
            })
            .collect();
        let mut b = Vec::new();
        let mut c = Vec::new();
        for h in handles {
            if let Ok((hb, hc)) = h.join() {
                b.extend(hb);
                c.extend(hc);
            }
        }
        b.sort_by_key(|x| x.0);
        c.sort_by_key(|x| x.0);
        out.baselines = b.into_iter().map(|x| x.1).collect();
        out.currents = c.into_iter().map(|x| x.1).collect();
    });
    out
}

/// The same run with every time multiplied by `factor` (the simulator's
/// slowdown scales every time of a request alike).
pub fn slowed(results: &Results, factor: f64) -> Results {
    let mut r = results.clone();
    for case in &mut r.cases {
        for phase in case.phases.values_mut() {
            for q in &mut phase.requests {
                q.ttft_ms = q.ttft_ms.map(|v| v * factor);
                q.e2e_ms = q.e2e_ms.map(|v| v * factor);
                q.tpot_ms = q.tpot_ms.map(|v| v * factor);
                q.tokens_per_second = q.tokens_per_second.map(|v| v / factor);
                q.decode_tokens_per_second = q.decode_tokens_per_second.map(|v| v / factor);
            }
            phase.summary = infergate_core::results::PhaseSummary::from_records(
                &phase.requests,
                phase.summary.duration_s * factor,
                case.output_tokens,
            );
        }
    }
    r
}

/// The time factor that lowers tokens per second by exactly `drop` (0.1 = 10%).
pub fn factor_for_drop(drop: f64) -> f64 {
    1.0 / (1.0 - drop)
}

fn judge(rules: &Rules, baseline: &Baseline, current: &Results) -> infergate_core::gate::Comparison {
    judge_with(rules, baseline, current, None)
}

/// [`judge`], with the run-to-run spread of main's history where given.
fn judge_with(
    rules: &Rules,
    baseline: &Baseline,
    current: &Results,
    history: Option<&HistorySpreads>,
) -> infergate_core::gate::Comparison {
    compare(&CompareInput {
        current: std::slice::from_ref(current),
        results_paths: &["mc".to_string()],
        baseline,
        baseline_path: "mc",
        rules,
        allow_mismatch: false,
        history,
    })
}

/// Per (baseline, current) pair, in parallel: `f` returns what to count.
fn over_pairs<T: Send>(
    setup: &Setup,
    d: &Draws,
    f: impl Fn(usize, &Baseline, usize, &Results) -> T + Sync,
) -> Vec<Vec<T>> {
    let threads = setup.threads.max(1);
    let mut per_baseline: Vec<(usize, Vec<T>)> = Vec::new();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let f = &f;
                s.spawn(move || {
                    let mut out = Vec::new();
                    for (i, (b, _, _)) in d.baselines.iter().enumerate().skip(t).step_by(threads) {
                        out.push((i, d.currents.iter().enumerate().map(|(j, c)| f(i, b, j, c)).collect::<Vec<T>>()));
                    }
                    out
                })
            })
            .collect();
        for h in handles {
            if let Ok(v) = h.join() {
                per_baseline.extend(v);
            }
        }
    });
    per_baseline.sort_by_key(|x| x.0);
    per_baseline.into_iter().map(|x| x.1).collect()
}

/// Today's verdict before this change, for the before/after table: a
/// one-run baseline, the two-sided Mann-Whitney test on the requests at
/// `significance / cases` (Bonferroni), and the tolerance: failed when any
/// fail-level metric of any case is beyond its tolerance and floor and significant.
pub fn before_verdict(rules: &Rules, base: &Results, cur: &Results) -> bool {
    let alpha = rules.significance / cur.cases.len().max(1) as f64;
    cur.cases.iter().any(|c| {
        let Some(b) = base.cases.iter().find(|b| b.id == c.id) else { return false };
        let (Some(pc), Some(pb)) = (c.phases.get(&PhaseName::Warm), b.phases.get(&PhaseName::Warm)) else {
            return false;
        };
        metrics::CATALOGUE.iter().any(|def| {
            let rule = rules.rule_for(&c.id, def);
            let Some((series, statistic)) = def.request_source() else { return false };
            if rule.level != infergate_core::gate::Level::Fail {
                return false;
            }
            let (sb, sc) = (series.samples(&pb.requests), series.samples(&pc.requests));
            let (Some(vb), Some(vc)) = (statistic.of(&sb), statistic.of(&sc)) else { return false };
            let change = (vc - vb) / vb;
            let bad = if def.direction == infergate_core::gate::Direction::HigherIsBetter { -change } else { change };
            let significant = infergate_core::stats::significance::min_p_value(sb.len(), sc.len()) <= alpha
                && infergate_core::stats::significance::mann_whitney_u(&sb, &sc).is_some_and(|t| t.p_value < alpha);
            bad > rule.tolerance && (vc - vb).abs() >= rule.floor && significant
        })
    })
}

/// A/A false alarms over `baselines` x `currents` pairs.
pub fn aa(setup: &Setup, baselines: usize, currents: usize) -> AaReport {
    let d = draw(setup, baselines, currents);
    let with_before = setup.baseline_runs == 1;
    let pairs = over_pairs(setup, &d, |i, b, _, c| {
        let failed = judge(&setup.rules, b, c).verdict == Verdict::Regressed;
        let before = with_before && before_verdict(&setup.rules, &d.baselines[i].2[0], c);
        (failed, before)
    });
    aa_report(&d, &pairs, with_before)
}

fn aa_report(d: &Draws, pairs: &[Vec<(bool, bool)>], with_before: bool) -> AaReport {
    let count = |rows: &[&Vec<(bool, bool)>], pick: fn(&(bool, bool)) -> bool| Rate {
        hits: rows.iter().map(|r| r.iter().filter(|x| pick(x)).count() as u64).sum(),
        trials: rows.iter().map(|r| r.len() as u64).sum(),
    };
    // Baselines by the speed they were recorded at, fastest first.
    let mut order: Vec<usize> = (0..pairs.len()).collect();
    order.sort_by(|a, b| d.baselines[*b].1.total_cmp(&d.baselines[*a].1));
    let q = (pairs.len() / 4).max(1);
    let rows = |idx: &[usize]| idx.iter().map(|i| &pairs[*i]).collect::<Vec<_>>();
    let all: Vec<&Vec<(bool, bool)>> = pairs.iter().collect();
    AaReport {
        all: count(&all, |x| x.0),
        fastest_quarter: count(&rows(&order[..q.min(order.len())]), |x| x.0),
        slowest_quarter: count(&rows(&order[order.len().saturating_sub(q)..]), |x| x.0),
        before: with_before.then(|| count(&all, |x| x.1)),
    }
}

/// The gate with the run-to-run spread from main's history (`--history`).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct HistoryReport {
    /// A/A false alarms (exit 1) with one-run baselines and the history's spread.
    pub aa: AaReport,
    /// Runs failed when tokens per second truly drops by twice its tolerance.
    pub caught: Rate,
    /// Median over the histories of the tokens_per_second spread they gave (a coefficient of variation).
    pub median_cv: f64,
}

/// A/A and power with one-run baselines whose run-to-run spread comes from a
/// history of `window` earlier runs of main on the same runner, one history
/// per baseline (independent draws of the same noise). `steps` are changes
/// main made during the history: `(run, factor)` makes every run before
/// `run` slower by `factor` (0.9: 10% fewer tokens per second), so the
/// history is not an A/A series.
pub fn with_history(
    setup: &Setup,
    baselines: usize,
    currents: usize,
    window: usize,
    steps: &[(usize, f64)],
) -> HistoryReport {
    let setup = Setup { baseline_runs: 1, ..setup.clone() };
    let d = draw(&setup, baselines, currents);
    let config = SimConfig { seed: setup.seed ^ 0x4157, ..setup.noise.sim_config() };
    let threads = setup.threads.max(1);
    let mut histories: Vec<(usize, HistorySpreads)> = Vec::new();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let config = &config;
                let setup = &setup;
                s.spawn(move || {
                    let mut out = Vec::new();
                    for i in (t..baselines).step_by(threads) {
                        let records: Vec<infergate_core::history::HistoryRecord> = (0..window)
                            .map(|j| {
                                let run =
                                    synthetic::run(config, &setup.suite, setup.repetitions, (i * window + j) as u64);
                                let factor: f64 = steps.iter().filter(|(at, _)| j < *at).map(|(_, f)| *f).product();
                                let run = if factor == 1.0 { run } else { slowed(&run, factor_for_drop(1.0 - factor)) };
                                infergate_core::history::record_of(&run, "mc", None, None)
                            })
                            .collect();
                        let environment = records.first().map(|r| r.environment.clone()).unwrap_or_default();
                        out.push((
                            i,
                            infergate_core::history::spread::spreads(
                                &records,
                                "mc",
                                &environment,
                                window,
                                setup.rules.significance,
                            ),
                        ));
                    }
                    out
                })
            })
            .collect();
        for h in handles {
            if let Ok(v) = h.join() {
                histories.extend(v);
            }
        }
    });
    histories.sort_by_key(|x| x.0);
    let tolerance = tps_drop(&setup.rules, 1.0);
    let failed = |b: &Baseline, c: &Results, h: &HistorySpreads| {
        judge_with(&setup.rules, b, c, Some(h)).verdict == Verdict::Regressed
    };
    let pairs = over_pairs(&setup, &d, |i, b, _, c| {
        let h = &histories[i].1;
        (failed(b, c, h), failed(b, &slowed(c, factor_for_drop(2.0 * tolerance)), h))
    });
    let mut caught = Rate { hits: 0, trials: 0 };
    for (_, hit) in pairs.iter().flatten() {
        caught.add(Rate { hits: u64::from(*hit), trials: 1 });
    }
    let aa_pairs: Vec<Vec<(bool, bool)>> = pairs.iter().map(|r| r.iter().map(|(f, _)| (*f, false)).collect()).collect();
    let mut cvs: Vec<f64> = histories
        .iter()
        .filter_map(|(_, h)| {
            let case = setup.suite.cases.first()?;
            h.get(&case.id, PhaseName::Warm, "tokens_per_second").map(|p| p.between.sqrt().exp_m1())
        })
        .collect();
    cvs.sort_by(f64::total_cmp);
    HistoryReport {
        aa: aa_report(&d, &aa_pairs, false),
        caught,
        median_cv: cvs.get(cvs.len() / 2).copied().unwrap_or(f64::NAN),
    }
}

/// One point of the operating curve.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct CurvePoint {
    /// The true change, as a multiple of the throughput tolerance.
    pub multiple: f64,
    /// The drop of tokens per second it is.
    pub drop: f64,
    /// Runs the gate failed.
    pub failed: Rate,
    /// Cases whose tokens_per_second was flagged.
    pub cases_flagged: Rate,
}

/// The probability that the gate fails, as a function of the true change:
/// every time of every current run slowed so that tokens per second drops
/// by `multiple` x its tolerance, the same draws at every multiple.
pub fn operating_curve(setup: &Setup, multiples: &[f64], baselines: usize, currents: usize) -> Vec<CurvePoint> {
    let d = draw(setup, baselines, currents);
    let tolerance =
        setup.rules.rule_for("", metrics::find("tokens_per_second").unwrap_or(&metrics::CATALOGUE[0])).tolerance;
    let pairs = over_pairs(setup, &d, |_, b, _, c| {
        multiples
            .iter()
            .map(|m| {
                let cur = if *m == 0.0 { c.clone() } else { slowed(c, factor_for_drop(m * tolerance)) };
                let cmp = judge(&setup.rules, b, &cur);
                let flagged = cmp
                    .cases
                    .iter()
                    .filter(|k| {
                        k.metrics.iter().any(|x| x.metric == "tokens_per_second" && x.status == MetricStatus::Regressed)
                    })
                    .count();
                (cmp.verdict == Verdict::Regressed, flagged, cmp.cases.len())
            })
            .collect::<Vec<_>>()
    });
    multiples
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let mut failed = Rate { hits: 0, trials: 0 };
            let mut cases = Rate { hits: 0, trials: 0 };
            for row in &pairs {
                for pair in row {
                    let (f, flagged, n) = pair[i];
                    failed.add(Rate { hits: u64::from(f), trials: 1 });
                    cases.add(Rate { hits: flagged as u64, trials: n as u64 });
                }
            }
            CurvePoint { multiple: *m, drop: m * tolerance, failed, cases_flagged: cases }
        })
        .collect()
}

/// Whether the printed minimum detectable change holds: for each trial, the
/// change the A/A comparison printed for one case's tokens_per_second, then
/// a run slowed by exactly that much: is that case flagged?
#[derive(Debug, Clone, Copy, Serialize)]
pub struct MdcReport {
    /// Trials whose case was flagged at its printed minimum detectable change.
    pub caught: Rate,
    /// Median printed minimum detectable change.
    pub median_mdc: f64,
}

/// The MDC check over `baselines` x `currents` trials.
pub fn mdc_check(setup: &Setup, baselines: usize, currents: usize) -> MdcReport {
    let d = draw(setup, baselines, currents);
    let tps = |cmp: &infergate_core::gate::Comparison, case: &str| {
        cmp.cases
            .iter()
            .find(|k| k.id == case)
            .and_then(|k| k.metrics.iter().find(|m| m.metric == "tokens_per_second"))
            .cloned()
    };
    let pairs = over_pairs(setup, &d, |i, b, j, c| {
        let case = &setup.suite.cases[(i * 7 + j) % setup.suite.cases.len().max(1)].id;
        let mdc = tps(&judge(&setup.rules, b, c), case)?.min_detectable_change.filter(|m| *m < 0.9)?;
        // The next current run, slowed by exactly the printed change.
        let fresh = &d.currents[(j + 1) % d.currents.len()];
        let caught = tps(&judge(&setup.rules, b, &slowed(fresh, factor_for_drop(mdc))), case)
            .is_some_and(|m| m.status == MetricStatus::Regressed);
        Some((caught, mdc))
    });
    let mut caught = Rate { hits: 0, trials: 0 };
    let mut mdcs = Vec::new();
    for (hit, mdc) in pairs.into_iter().flatten().flatten() {
        caught.add(Rate { hits: u64::from(hit), trials: 1 });
        mdcs.push(mdc);
    }
    mdcs.sort_by(f64::total_cmp);
    MdcReport { caught, median_mdc: mdcs.get(mdcs.len() / 2).copied().unwrap_or(f64::NAN) }
}

/// One calibration and how its recommendations did.
#[derive(Debug, Clone, Serialize)]
pub struct CalibrationOutcome {
    /// The tokens_per_second tolerance it suggested.
    pub tolerance: f64,
    /// The run-to-run spread it measured, and its upper bound.
    pub run_to_run_cv: (f64, f64),
    /// The baseline runs and repetitions it recommended.
    pub baseline_runs: usize,
    /// Repetitions it recommended.
    pub repetitions: u32,
}

/// `count` calibrations of `runs` relaunched runs each.
pub fn calibrations(setup: &Setup, count: usize, runs: usize) -> Vec<CalibrationOutcome> {
    let config = SimConfig { seed: setup.seed ^ 0xca1b, ..setup.noise.sim_config() };
    (0..count)
        .map(|i| {
            let aa: Vec<Results> = (0..runs)
                .map(|j| synthetic::run(&config, &setup.suite, setup.repetitions, (i * runs + j) as u64))
                .collect();
            let c = infergate_core::gate::calibrate::calibrate(&aa, &setup.rules, true);
            let tps = c.metrics.iter().find(|m| m.metric == "tokens_per_second");
            CalibrationOutcome {
                tolerance: tps.map_or(f64::NAN, |m| m.suggested_tolerance),
                run_to_run_cv: tps.map_or((f64::NAN, f64::NAN), |m| (m.run_to_run_cv, m.run_to_run_cv_upper)),
                baseline_runs: c.suggested_baseline_runs,
                repetitions: c.suggested_repetitions,
            }
        })
        .collect()
}

/// The rules a calibration outcome suggests (tolerance of tokens_per_second
/// and E2E scaled alike, run_to_run_cv at its upper bound).
pub fn suggested_rules(base: &Rules, o: &CalibrationOutcome) -> Result<Rules, String> {
    let cfg: GateSection = infergate_core::tomldoc::parse_toml(
        &format!(
            "[gate]\nsignificance = {}\nrun_to_run_cv = \"{:.2}%\"\n[gate.metrics.tokens_per_second]\ntolerance = \"{:.2}%\"\n",
            base.significance,
            o.run_to_run_cv.1 * 100.0,
            o.tolerance * 100.0
        ),
        "suggested",
    )?;
    Ok(Rules::from_config(&cfg.gate))
}

/// The drop of tokens per second by `multiple` x the tolerance of `rules`.
pub fn tps_drop(rules: &Rules, multiple: f64) -> f64 {
    multiple * rules.rule_for("", metrics::find("tokens_per_second").unwrap_or(&metrics::CATALOGUE[0])).tolerance
}

/// Samples of a series in a run (for diagnostics).
pub fn samples(r: &Results, case: usize, s: Series) -> Vec<f64> {
    r.cases.get(case).and_then(|c| c.phases.get(&PhaseName::Warm)).map_or_else(Vec::new, |p| s.samples(&p.requests))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(request_cv: f64, run_drift: f64, baseline_runs: usize) -> Setup {
        Setup {
            noise: Noise::runner(request_cv, run_drift),
            suite: Suite::builtin("coder").unwrap().unwrap(),
            repetitions: 10,
            baseline_runs,
            rules: Rules::default(),
            seed: 7,
            threads: 2,
        }
    }

    #[test]
    fn wilson_interval() {
        let r = Rate { hits: 10, trials: 100 };
        let (lo, hi) = r.interval();
        // statsmodels proportion_confint(10, 100, method="wilson") = (0.0552, 0.1744)
        assert!((lo - 0.0552).abs() < 1e-3 && (hi - 0.1744).abs() < 1e-3, "{lo} {hi}");
        assert_eq!(Rate { hits: 0, trials: 0 }.interval(), (0.0, 1.0));
    }

    #[test]
    fn slowed_runs_lose_exactly_the_asked_throughput() {
        let s = setup(0.05, 0.0, 1);
        let r = synthetic::run(&s.noise.sim_config(), &s.suite, 5, 1);
        let slow = slowed(&r, factor_for_drop(0.1));
        let a = samples(&r, 0, Series::TokensPerSecond);
        let b = samples(&slow, 0, Series::TokensPerSecond);
        for (x, y) in a.iter().zip(&b) {
            assert!((y / x - 0.9).abs() < 1e-12);
        }
    }

    /// The small version of `examples/gate_montecarlo.rs`. Seeded, so it is
    /// deterministic; the bounds sit far from the measured values
    /// (`docs/src/gate-accuracy.md`), so that a change of seed or model would
    /// not trip them either.
    #[test]
    fn on_a_drifting_runner_the_verdict_stays_quiet_and_catches_real_change() {
        // 2% drift, 5% per-request noise, five-run baselines.
        let s = setup(0.05, 0.02, 5);
        let five = aa(&s, 6, 40);
        assert!(five.all.value() <= 0.03, "{}", five.all.text());
        let curve = operating_curve(&s, &[3.0], 4, 15);
        assert!(curve[0].failed.value() >= 0.8, "{:?}", curve[0]);
        // One-run baselines: today's verdict fails unchanged runs often; the new one says it cannot see drift.
        let one = setup(0.05, 0.02, 1);
        let aa1 = aa(&one, 10, 20);
        assert!(aa1.before.unwrap().value() > five.all.value(), "{aa1:?}");
    }
}
