//! Calibration from A/A runs: how noisy is this system, and what repetitions
//! and tolerances make the gate quiet on noise and loud on real drift?
//!
//! Two kinds of noise matter. Within a run, requests vary; the significance
//! test accounts for that, and more repetitions shrink the change it can
//! detect. Between runs, the whole system can shift (clocks, thermals, other
//! tenants); the test cannot see that, so the tolerance must stay above it or
//! adjacent runs of an unchanged system will disagree. Pure: no I/O.

use serde::Serialize;

use super::Level;
use super::compare::{CompareInput, POWER, compare};
use super::metrics::CATALOGUE;
use super::rules::Rules;
use crate::baseline::Baseline;
use crate::results::Results;
use crate::stats::{self, significance};

/// Multiple of the between-run spread the tolerance should keep above it.
pub const BETWEEN_RUN_MARGIN: f64 = 3.0;
/// Largest repetition count ever suggested.
pub const MAX_SUGGESTED_REPETITIONS: usize = 200;

/// The calibration report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Calibration {
    /// A/A runs analysed.
    pub runs: usize,
    /// Cases per run.
    pub cases: usize,
    /// Warm repetitions per case in the runs.
    pub repetitions: u32,
    /// Per-case significance level the gate uses for this suite.
    pub case_significance: f64,
    /// Per metric.
    pub metrics: Vec<MetricCalibration>,
    /// A/A comparisons made (each later run against the first as baseline).
    pub aa_comparisons: usize,
    /// How many of them the gate would have failed or flagged.
    pub aa_false_alarms: usize,
    /// Repetitions to configure: the largest any gated metric needs.
    pub suggested_repetitions: u32,
}

/// Calibration of one metric, summarised over cases.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricCalibration {
    /// Catalogue name.
    pub metric: String,
    /// Configured level.
    pub level: Level,
    /// Configured tolerance.
    pub tolerance: f64,
    /// Worst (largest) within-run coefficient of variation over cases.
    pub within_run_cv: f64,
    /// Worst relative spread of the metric between runs over cases.
    pub between_run_cv: f64,
    /// Median minimum detectable change at the current repetitions.
    pub min_detectable_change: Option<f64>,
    /// Repetitions for the minimum detectable change to fit the tolerance.
    pub repetitions_for_tolerance: Option<u32>,
    /// Repetitions that catch a regression of twice the tolerance 95% of the
    /// time (the suggestion): significant, and observed beyond the tolerance.
    pub suggested_repetitions: Option<u32>,
    /// Tolerance that stays clear of the between-run spread.
    pub suggested_tolerance: f64,
}

/// Analyses A/A runs (at least two, same suite and cases).
pub fn calibrate(runs: &[Results], rules: &Rules) -> Calibration {
    let first = &runs[0];
    let cases = first.cases.len();
    let alpha = rules.significance / cases.max(1) as f64;
    let repetitions = first.cases.first().map_or(0, |c| c.repetitions);
    let mut metrics = Vec::new();
    for def in CATALOGUE {
        // GPU figures are one value per phase: nothing to calibrate a test on.
        let Some((series, statistic)) = def.request_source() else { continue };
        let mut tolerance = def.tolerance;
        let mut level = def.level;
        // Per case: within-run CV pooled over the runs, the spread of the
        // statistic between runs, and the repetitions the case needs.
        let (mut within, mut between, mut mdcs, mut reps_tol, mut reps_double) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (ci, case) in first.cases.iter().enumerate() {
            let rule = rules.rule_for(&case.id, def);
            tolerance = tolerance.min(rule.tolerance);
            level = level.max(rule.level);
            let (mut squares, mut n_cv, mut values, mut n_samples) = (0.0, 0usize, Vec::new(), 0usize);
            for run in runs {
                let Some(c) = run.cases.get(ci).filter(|c| c.id == case.id) else { continue };
                for phase in rules.phases.iter().filter_map(|p| c.phases.get(p)) {
                    let samples = series.samples(&phase.requests);
                    if let Some(cv) = significance::sample_cv(&samples) {
                        squares += cv * cv;
                        n_cv += 1;
                        n_samples = n_samples.max(samples.len());
                    }
                    values.extend(statistic.of(&samples));
                }
            }
            if n_cv == 0 {
                continue;
            }
            let cv = (squares / n_cv as f64).sqrt();
            within.push(cv);
            mdcs.extend(significance::min_detectable_change(cv, n_samples, n_samples, alpha, POWER));
            let Some(s) = stats::summarize(&values) else { continue };
            if s.n >= 2 && s.mean != 0.0 {
                // Sample (n-1) spread: with 2-5 runs the population formula underestimates.
                let n = s.n as f64;
                between.push(s.stddev * (n / (n - 1.0)).sqrt() / s.mean.abs());
            }
            // Changes below the floor never count: detect the larger of the two.
            let effective = rule.tolerance.max(rule.floor / s.mean.abs().max(f64::MIN_POSITIVE));
            reps_tol.extend(significance::repetitions_for(cv, effective, alpha, POWER, None));
            reps_double.extend(repetitions_for_double(cv, effective, alpha));
        }
        if within.is_empty() {
            continue;
        }
        let max = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
        let cap = |v: &[usize]| v.iter().max().map(|n| (*n).min(MAX_SUGGESTED_REPETITIONS) as u32);
        let between_run_cv = max(&between);
        let needed = (BETWEEN_RUN_MARGIN * between_run_cv * 100.0).ceil() / 100.0;
        metrics.push(MetricCalibration {
            metric: def.name.into(),
            level,
            tolerance,
            within_run_cv: max(&within),
            between_run_cv,
            min_detectable_change: stats::summarize(&mdcs).map(|s| s.median),
            repetitions_for_tolerance: cap(&reps_tol),
            suggested_repetitions: cap(&reps_double),
            suggested_tolerance: tolerance.max(needed),
        });
    }
    let baseline = Baseline::from_results(first, "calibration");
    let mut aa_false_alarms = 0;
    for run in &runs[1..] {
        let c = compare(&CompareInput {
            results: run,
            results_path: "aa",
            baseline: &baseline,
            baseline_path: "aa",
            rules,
            allow_mismatch: false,
        });
        if c.counts.regressed + c.counts.improved > 0 || c.verdict.exit_code() != crate::exit::PASS {
            aa_false_alarms += 1;
        }
    }
    let suggested_repetitions = metrics
        .iter()
        .filter(|m| m.level == Level::Fail)
        .filter_map(|m| m.suggested_repetitions)
        .max()
        .unwrap_or(repetitions)
        .max(min_testable(alpha));
    Calibration {
        runs: runs.len(),
        cases,
        repetitions,
        case_significance: alpha,
        metrics,
        aa_comparisons: runs.len() - 1,
        aa_false_alarms,
        suggested_repetitions,
    }
}

/// Repetitions at which a true change of twice `tolerance` is caught 95% of
/// the time: significant (its MDC fits), and its observed median beyond the
/// tolerance (the median's standard error, 1.2533 x cv x sqrt(2/n), fits
/// under tolerance / z_0.95).
fn repetitions_for_double(cv: f64, tolerance: f64, alpha: f64) -> Option<usize> {
    let significant = significance::repetitions_for(cv, 2.0 * tolerance, alpha, POWER, None)?;
    let z = significance::normal_quantile(POWER);
    let observed = (2.0 * (z * 1.2533 * cv / tolerance).powi(2)).ceil() as usize;
    Some(significant.max(observed))
}

/// Fewest repetitions at which any change can be significant at `alpha`.
fn min_testable(alpha: f64) -> u32 {
    (2..=MAX_SUGGESTED_REPETITIONS).find(|&n| significance::min_p_value(n, n) <= alpha).unwrap_or(2) as u32
}

/// The calibration as text, ending with the config to paste.
pub fn render(c: &Calibration) -> String {
    let mut out = format!(
        "calibration: {} A/A runs of {} cases, {} repetitions each; per-case significance {:.2e}\n",
        c.runs, c.cases, c.repetitions, c.case_significance
    );
    out.push_str(&format!(
        "A/A check: {} of {} comparisons of unchanged runs were flagged by the current rules\n\n",
        c.aa_false_alarms, c.aa_comparisons
    ));
    let header = [
        "metric",
        "level",
        "within-run CV",
        "between-run CV",
        "detects now",
        "tolerance",
        "suggested reps",
        "suggested tolerance",
    ];
    let pct = |v: f64| format!("{:.1}%", v * 100.0);
    let rows: Vec<Vec<String>> = c
        .metrics
        .iter()
        .map(|m| {
            vec![
                m.metric.clone(),
                format!("{:?}", m.level).to_lowercase(),
                pct(m.within_run_cv),
                pct(m.between_run_cv),
                m.min_detectable_change.map_or_else(|| "nothing".into(), |v| format!(">= {}", pct(v))),
                pct(m.tolerance),
                m.repetitions_for_tolerance.map_or_else(|| "> 200".into(), |n| n.to_string()),
                m.suggested_repetitions.map_or_else(|| "> 200".into(), |n| n.to_string()),
                pct(m.suggested_tolerance),
            ]
        })
        .collect();
    out.push_str(&crate::report::table::render(&header, &rows));
    out.push_str(
        "\nThe suggested repetitions catch a regression of twice the tolerance 95% of the time; catching changes\n\
         right at the tolerance needs the larger count in the column before it.\n",
    );
    out.push_str("\nSuggested settings for infergate.toml:\n\n[run]\n");
    out.push_str(&format!("repetitions = {}\n", c.suggested_repetitions));
    for m in c.metrics.iter().filter(|m| m.level != Level::Off && m.suggested_tolerance > m.tolerance + 1e-9) {
        out.push_str(&format!(
            "\n[gate.metrics.{}]\ntolerance = \"{}%\"  # between-run spread {:.1}% x {BETWEEN_RUN_MARGIN}\n",
            m.metric,
            (m.suggested_tolerance * 100.0).round(),
            m.between_run_cv * 100.0
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::compare::tests::results;

    const CASES: [&str; 2] = ["a/1", "b/1"];

    #[test]
    fn quiet_system_needs_few_repetitions_and_default_tolerances() {
        let runs: Vec<Results> = (0..3).map(|s| results(&CASES, 10 + s, 12, 1.0, 0.02)).collect();
        let c = calibrate(&runs, &Rules::default());
        assert_eq!((c.runs, c.cases, c.aa_comparisons), (3, 2, 2));
        assert_eq!(c.aa_false_alarms, 0);
        let tps = c.metrics.iter().find(|m| m.metric == "tokens_per_second").unwrap();
        assert!(tps.within_run_cv > 0.005 && tps.within_run_cv < 0.05, "{tps:?}");
        assert!(tps.suggested_repetitions.unwrap() <= 12, "{tps:?}");
        assert_eq!(tps.suggested_tolerance, 0.05);
        assert!(render(&c).contains("repetitions = "));
    }

    #[test]
    fn noisy_system_needs_more_repetitions() {
        let quiet: Vec<Results> = (0..3).map(|s| results(&CASES, 10 + s, 10, 1.0, 0.02)).collect();
        let noisy: Vec<Results> = (0..3).map(|s| results(&CASES, 10 + s, 10, 1.0, 0.08)).collect();
        let q = calibrate(&quiet, &Rules::default());
        let n = calibrate(&noisy, &Rules::default());
        assert!(
            n.suggested_repetitions > q.suggested_repetitions,
            "{} vs {}",
            n.suggested_repetitions,
            q.suggested_repetitions
        );
    }

    #[test]
    fn drift_between_runs_raises_the_tolerance() {
        // Each run is 4% off the previous one: the test would call that
        // significant, so the tolerance must rise above it.
        let runs: Vec<Results> =
            [1.0, 1.04, 0.96].iter().enumerate().map(|(i, s)| results(&CASES, 20 + i as u64, 12, *s, 0.01)).collect();
        let c = calibrate(&runs, &Rules::default());
        let tps = c.metrics.iter().find(|m| m.metric == "tokens_per_second").unwrap();
        assert!(tps.between_run_cv > 0.03, "{tps:?}");
        assert!(tps.suggested_tolerance >= 0.09, "{tps:?}");
        assert!(render(&c).contains("[gate.metrics.tokens_per_second]"));
    }
}
