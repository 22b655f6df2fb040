//! The run as the statistical unit: how far apart two sets of runs are, and
//! how much of that the runner's own drift explains.
//!
//! A change to a serving system is replicated by a *run* (one server launch,
//! one machine state), not by a request: the requests of a run share its
//! offset (clocks, thermals, the launch), so a test on per-request samples is
//! overconfident by exactly the run-to-run variance. Here each run of a case
//! is reduced to one value of the metric (its median, its p99), compared in
//! logarithms so that changes are relative and a run's speed factor is a
//! shift. The change is the difference of the sides' mean log values; its
//! variance is the mixed-model one,
//!
//! ```text
//! Var(d) = s_b^2 (1/k_b + 1/k_c) + s_w^2 (1/(k_b n_b) + 1/(k_c n_c))
//! ```
//!
//! (`s_b` between runs, `s_w` per request within a run, `k` runs of `n`
//! requests per side), estimated three ways, in this order:
//!
//! 1. **Measured** (four or more runs in all, so at least two degrees of
//!    freedom): the pooled sample variance of the per-run values estimates
//!    `s_b^2 + s_w^2 / n` in one go (whatever inflates it, autocorrelation or
//!    a warm-up trend included), with Student-t on `k_b + k_c - 2` degrees
//!    of freedom.
//! 2. **Configured** (`[gate] run_to_run_cv`, fewer runs): `s_b` is taken as
//!    known, `s_w` comes from each run's own spread.
//! 3. **None**: `s_w` only. The test then cannot see drift between runs, and
//!    the report says so.
//!
//! Pure functions, no I/O; `None` wherever there is too little to judge.

use super::dist;

/// Fewest degrees of freedom of the runs' spread for it to be measured.
pub const MIN_RUN_DF: usize = 2;

/// Fewest requests in a run for its own spread to be estimated: a median
/// absolute deviation of fewer points is mostly luck.
pub const MIN_WITHIN_SAMPLES: usize = 5;

/// Scale factor from a median absolute deviation to a standard deviation for
/// normally distributed data.
const MAD_TO_SD: f64 = 1.4826;

/// Degrees of freedom a run's own spread carries per request beyond the
/// first. The median absolute deviation is 37% as efficient as the standard
/// deviation for normal data, less in samples of ten, and consecutive
/// requests are not independent (at a lag-1 correlation of 0.3 ten requests
/// are worth about five): 0.2 per request. Counting more let the Monte Carlo
/// exceed its false-alarm budget at the tail levels a 48-test family uses.
const WITHIN_DF_PER_REQUEST: f64 = 0.2;

/// One run of one metric: its value and how precisely the run pins it down.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunValue {
    /// The statistic of the run's samples (e.g. its median), in the metric's unit.
    pub value: f64,
    /// Requests it was computed from.
    pub n: usize,
    /// Sampling variance of `ln(value)` within the run, when the run has
    /// [`MIN_WITHIN_SAMPLES`] or more requests.
    pub within: Option<f64>,
}

impl RunValue {
    /// The `q`-quantile (0.5 = median) of a run's samples and its sampling
    /// variance; `None` without a positive, finite value (a log needs one).
    pub fn of(samples: &[f64], q: f64) -> Option<RunValue> {
        let mut sorted: Vec<f64> = samples.iter().copied().filter(|v| v.is_finite()).collect();
        if sorted.is_empty() || !(0.0..=1.0).contains(&q) {
            return None;
        }
        sorted.sort_unstable_by(f64::total_cmp);
        let value = super::quantile_sorted(&sorted, q);
        if !(value > 0.0 && value.is_finite()) {
            return None;
        }
        let n = sorted.len();
        Some(RunValue { value, n, within: within_log_variance(&sorted, q, value) })
    }
}

/// Sampling variance of the log of a run's `q`-quantile, by the asymptotic
/// formula `q (1 - q) / (n f(x_q)^2)` with a normal density of the run's
/// spread: the median uses the median absolute deviation (outliers cannot
/// inflate what they do not move), other quantiles the standard deviation
/// (which outliers inflate: the cautious side for a tail statistic).
fn within_log_variance(sorted: &[f64], q: f64, value: f64) -> Option<f64> {
    let n = sorted.len();
    if n < MIN_WITHIN_SAMPLES {
        return None;
    }
    let sd = if (q - 0.5).abs() < 1e-12 {
        let median = super::quantile_sorted(sorted, 0.5);
        let mut dev: Vec<f64> = sorted.iter().map(|x| (x - median).abs()).collect();
        dev.sort_unstable_by(f64::total_cmp);
        let mad = MAD_TO_SD * super::quantile_sorted(&dev, 0.5);
        // Half or more of the values equal: the MAD says nothing, the
        // standard deviation still does.
        if mad > 0.0 { mad } else { sample_sd(sorted) }
    } else {
        sample_sd(sorted)
    };
    let z = dist::normal_quantile(q.clamp(1e-6, 1.0 - 1e-6));
    let density = (-z * z / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt();
    let var = q * (1.0 - q) / (n as f64 * density * density) * sd * sd / (value * value);
    var.is_finite().then_some(var)
}

fn sample_sd(values: &[f64]) -> f64 {
    let n = values.len() as f64;
    if values.len() < 2 {
        return 0.0;
    }
    let mean = values.iter().sum::<f64>() / n;
    (values.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
}

/// Fewest runs of main for their spread to stand in for the run-to-run
/// spread: nine successive differences, about three degrees of freedom.
pub const MIN_HISTORY_RUNS: usize = 10;

/// Degrees of freedom per successive difference that the variance from the
/// median absolute deviation of differences carries, for normal data:
/// measured by `history_spread_degrees_of_freedom` (the MAD is 37% as
/// efficient as the standard deviation, and successive differences share a
/// run, which costs a little more).
const HISTORY_DF_PER_DIFFERENCE: f64 = 0.30;

/// The run-to-run spread of a metric from main's history: `logs` are the
/// log values of its consecutive runs (oldest first), `within` the sampling
/// variance of each run's value where known.
///
/// Main is not an A/A series: it moves when a change lands, in steps and in
/// creeps. The spread is therefore taken from **successive differences**
/// (a step moves one difference, a creep moves the median difference, not
/// the spread around it) and estimated by their **median absolute
/// deviation**, which a few wild runs or steps do not move:
///
/// ```text
/// total = (1.4826 MAD(d))^2 / 2        d_i = ln x_(i+1) - ln x_i
/// between = max(0, total - mean(within))
/// ```
///
/// The variance of a difference is twice a run's; the runs' own sampling
/// variance is subtracted so that a quiet runner reads as quiet. Its degrees
/// of freedom are those of `total` (infinite when nothing is left). `None`
/// with fewer than [`MIN_HISTORY_RUNS`] finite values.
pub fn history_spread(logs: &[f64], within: &[f64]) -> Option<Prior> {
    if logs.len() < MIN_HISTORY_RUNS || logs.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let mut d: Vec<f64> = logs.windows(2).map(|w| w[1] - w[0]).collect();
    d.sort_unstable_by(f64::total_cmp);
    let centre = super::quantile_sorted(&d, 0.5);
    let mut dev: Vec<f64> = d.iter().map(|x| (x - centre).abs()).collect();
    dev.sort_unstable_by(f64::total_cmp);
    let total = (MAD_TO_SD * super::quantile_sorted(&dev, 0.5)).powi(2) / 2.0;
    let w: Vec<f64> = within.iter().copied().filter(|w| w.is_finite() && *w >= 0.0).collect();
    let w = if w.is_empty() { 0.0 } else { w.iter().sum::<f64>() / w.len() as f64 };
    let between = (total - w).max(0.0);
    let df_total = (HISTORY_DF_PER_DIFFERENCE * d.len() as f64).max(1.0);
    let df = if between > 0.0 { df_total } else { f64::INFINITY };
    (total.is_finite()).then_some(Prior { between, df, source: SpreadSource::History })
}

/// Where the run-to-run spread of a test came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpreadSource {
    /// Nothing: the test sees only the requests' spread within a run.
    None,
    /// `[gate] run_to_run_cv`, taken as known.
    Config,
    /// Main's history: the spread of the last runs recorded on the default
    /// branch, estimated robustly ([`history_spread`]) and carrying its own
    /// degrees of freedom.
    History,
    /// The spread of the runs themselves (two or more on a side).
    Runs,
}

impl SpreadSource {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            SpreadSource::None => "none",
            SpreadSource::Config => "config",
            SpreadSource::History => "history",
            SpreadSource::Runs => "runs",
        }
    }
}

/// The two sides of one comparison, as runs.
#[derive(Debug, Clone, Copy)]
pub struct Sides<'a> {
    /// The baseline's runs.
    pub baseline: &'a [RunValue],
    /// The current runs.
    pub current: &'a [RunValue],
    /// Run-to-run variance to assume when the runs cannot measure it.
    pub prior: Option<Prior>,
}

/// A run-to-run variance known before the runs: configured, or learnt from
/// main's history.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prior {
    /// Variance of `ln value` between runs beyond the requests' spread.
    pub between: f64,
    /// Degrees of freedom of that estimate (infinite: taken as known).
    pub df: f64,
    /// Where it came from ([`SpreadSource::Config`] or [`SpreadSource::History`]).
    pub source: SpreadSource,
}

impl Prior {
    /// `[gate] run_to_run_cv`: a coefficient of variation taken as known;
    /// `None` unless positive and finite.
    pub fn configured(cv: Option<f64>) -> Option<Prior> {
        let cv = cv.filter(|cv| cv.is_finite() && *cv > 0.0)?;
        Some(Prior { between: cv.ln_1p().powi(2), df: f64::INFINITY, source: SpreadSource::Config })
    }
}

/// The change between two sides and how much noise it carries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunTest {
    /// `mean(ln current) - mean(ln baseline)`.
    pub change_log: f64,
    /// The baseline's value: the geometric mean of its runs' values.
    pub baseline: f64,
    /// The current value, likewise.
    pub current: f64,
    /// Standard error of `change_log`; `None` when nothing estimates it.
    pub se: Option<f64>,
    /// Degrees of freedom of the Student-t the test uses.
    pub df: f64,
    /// Where the run-to-run part of the noise came from.
    pub source: SpreadSource,
    /// Run-to-run variance of `ln value` beyond what the requests' spread
    /// explains (measured with the within-run part subtracted, or configured).
    pub between: f64,
    /// Degrees of freedom of `between` when it came from a prior (infinite
    /// when configured; the history's own otherwise).
    pub between_df: f64,
    /// Within-run variance of `ln value` for a run of one request: the
    /// per-request part, which `1/n` scales; `None` when no run had enough requests.
    pub per_request: Option<f64>,
    /// Runs per side.
    pub runs: [usize; 2],
    /// Mean requests per run, per side.
    pub requests: [f64; 2],
    /// Mean within-run variance of `ln value` of the baseline's runs, where known.
    pub within: Option<f64>,
    /// The same of the current runs.
    pub within_current: Option<f64>,
    /// Whether the cases' runs were pooled ([`RunTest::pooled`]).
    pub pooled: bool,
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

/// Compares two sides; `None` when a side has no run.
pub fn test(sides: Sides<'_>) -> Option<RunTest> {
    let (b, c) = (sides.baseline, sides.current);
    let (kb, kc) = (b.len(), c.len());
    let log_mean = |runs: &[RunValue]| mean(runs.iter().map(|r| r.value.ln()));
    let (mb, mc) = (log_mean(b)?, log_mean(c)?);
    let within = |runs: &[RunValue]| -> Option<f64> {
        let all: Option<Vec<f64>> = runs.iter().map(|r| r.within).collect();
        mean(all?.into_iter())
    };
    let (wb, wc) = (within(b), within(c));
    let nb = mean(b.iter().map(|r| r.n as f64)).unwrap_or(0.0);
    let nc = mean(c.iter().map(|r| r.n as f64)).unwrap_or(0.0);
    // Per-request variance, from whichever side has it (the baseline first:
    // what-if figures must not depend on the change being judged).
    let per_request = wb.map(|w| w * nb).or(wc.map(|w| w * nc));
    let df_runs = kb.saturating_sub(1) + kc.saturating_sub(1);
    // One degree of freedom (two baseline runs, or a confirmation run against
    // a one-run baseline) bounds the spread too loosely to judge anything:
    // below two, the runs' own spreads (and the configured drift) decide.
    let mut out = RunTest {
        change_log: mc - mb,
        baseline: mb.exp(),
        current: mc.exp(),
        se: None,
        df: f64::INFINITY,
        source: SpreadSource::None,
        between: 0.0,
        between_df: f64::INFINITY,
        per_request,
        runs: [kb, kc],
        requests: [nb, nc],
        within: wb,
        within_current: wc,
        pooled: false,
    };
    let (fb, fc) = (1.0 / kb as f64, 1.0 / kc as f64);
    if df_runs >= MIN_RUN_DF {
        let ss = |runs: &[RunValue], m: f64| runs.iter().map(|r| (r.value.ln() - m).powi(2)).sum::<f64>();
        let s2 = (ss(b, mb) + ss(c, mc)) / df_runs as f64;
        // The current runs' variance at their own request count: the
        // baseline's within-run part scales with 1/n. Only when the counts
        // differ, so that equal designs keep the exact t-test.
        let cur = match wb {
            Some(w) if nc > 0.0 && (nb - nc).abs() > 0.5 => {
                let r = nb / nc;
                (s2 + w * (r - 1.0)).max(s2 * r.min(1.0))
            }
            _ => s2,
        };
        let v = s2 * fb + cur * fc;
        out.se = (v.is_finite() && v >= 0.0).then(|| v.sqrt());
        out.df = df_runs as f64;
        out.source = SpreadSource::Runs;
        out.between = (s2 - wb.unwrap_or(0.0)).max(0.0);
        return Some(out);
    }
    let (Some(wb), Some(wc)) = (wb, wc) else { return Some(out) };
    let prior = sides.prior.filter(|p| p.between.is_finite() && p.between >= 0.0 && p.df > 0.0);
    let between = prior.map_or(0.0, |p| p.between);
    let between_df = prior.map_or(f64::INFINITY, |p| p.df);
    let known = between * (fb + fc);
    let (ub, uc) = (wb * fb, wc * fc);
    let v = known + ub + uc;
    out.se = (v.is_finite() && v > 0.0).then(|| v.sqrt());
    let denom = known * known / between_df + ub * ub / within_df(nb, kb) + uc * uc / within_df(nc, kc);
    out.df = if denom > 0.0 { (v * v / denom).max(1.0) } else { f64::INFINITY };
    out.source = prior.map_or(SpreadSource::None, |p| p.source);
    out.between = between;
    out.between_df = between_df;
    Some(out)
}

fn within_df(n: f64, k: usize) -> f64 {
    (WITHIN_DF_PER_REQUEST * k as f64 * (n - 1.0)).max(1.0)
}

impl RunTest {
    /// Degrees of freedom of each side's within-run spread.
    pub fn within_dfs(&self) -> [f64; 2] {
        [within_df(self.requests[0], self.runs[0]), within_df(self.requests[1], self.runs[1])]
    }

    /// A test judged on its runs' own spread (too few runs to measure their
    /// spread), with each side's within-run variance replaced by its mean
    /// over the cases of the same metric, `(variance, degrees of freedom)`
    /// per side: a suite's cases share the requests' relative noise, and
    /// ten requests alone bound it too loosely to judge anything. A case
    /// whose own spread is beyond the 99th percentile of the pooled one keeps
    /// its own. Unchanged for a test measured from runs.
    pub fn pooled_within(&self, baseline: (f64, f64), current: (f64, f64)) -> RunTest {
        let (SpreadSource::None | SpreadSource::Config | SpreadSource::History, Some(wb), Some(wc)) =
            (self.source, self.within, self.within_current)
        else {
            return *self;
        };
        let [df_b, df_c] = self.within_dfs();
        let pick = |own: f64, own_df: f64, (pooled, pooled_df): (f64, f64)| {
            let limit = dist::chi_square_quantile(0.99, own_df) / own_df;
            if !(pooled > 0.0 && pooled_df > own_df) || own > limit * pooled {
                (own, own_df)
            } else {
                (pooled, pooled_df)
            }
        };
        let (wb, df_b) = pick(wb, df_b, baseline);
        let (wc, df_c) = pick(wc, df_c, current);
        let [kb, kc] = self.runs;
        let (ub, uc) = (wb / kb as f64, wc / kc as f64);
        let known = self.between * (1.0 / kb as f64 + 1.0 / kc as f64);
        let v = known + ub + uc;
        let denom = known * known / self.between_df + ub * ub / df_b + uc * uc / df_c;
        let mut out = *self;
        out.se = (v.is_finite() && v > 0.0).then(|| v.sqrt());
        out.df = if denom > 0.0 { (v * v / denom).max(1.0) } else { f64::INFINITY };
        out.within = Some(wb);
        out.within_current = Some(wc);
        out.per_request = Some(wb * self.requests[0]);
        out.pooled = true;
        out
    }
}

/// What the cases of one metric, recorded in the same baseline runs, say
/// together about its noise (the runs x cases analysis of variance): the
/// drift all of them share, and how much more the runs scatter than the
/// requests' own spread says (autocorrelation, warm-up, a case's own drift),
/// as a factor on it. Sixteen cases of five runs give this from 60 degrees
/// of freedom where one case alone has 4; only the shared drift stays on
/// runs - 1.
#[derive(Debug, Clone, PartialEq)]
pub struct Pooled {
    /// Run-to-run variance every case shares.
    pub shared: f64,
    /// Sampling variance of `shared`.
    pub shared_var: f64,
    /// How much the residual scatter of the runs exceeds the within-run
    /// estimate (at least 1).
    pub inflation: f64,
    /// Degrees of freedom of the residual scatter.
    pub residual_df: f64,
    /// Per case, the variance of its runs once the shared drift is removed
    /// (runs - 1 degrees of freedom), to catch a case that scatters on its own.
    pub own: Vec<f64>,
    /// Runs.
    pub runs: usize,
    /// Mean square between runs (runs - 1 degrees of freedom).
    pub ms_runs: f64,
    /// Residual mean square.
    pub ms_residual: f64,
    /// Mean within-run variance over the cases.
    pub within: f64,
}

impl Pooled {
    /// Upper confidence bound (`confidence`, e.g. 0.9) of [`Pooled::shared`],
    /// from the chi-square distribution of the runs' mean square.
    pub fn shared_upper(&self, confidence: f64) -> f64 {
        let df = (self.runs - 1) as f64;
        let chi2 = dist::chi_square_quantile(1.0 - confidence, df);
        let m = self.own.len() as f64;
        ((df * self.ms_runs / chi2 - self.ms_residual) / m).max(0.0)
    }
}

/// Pools the cases of one metric: per case, the log values of the same runs
/// in the same order and the mean within-run variance of its runs. `None`
/// with fewer than two cases or runs, rows of different lengths, or no
/// within-run variance.
pub fn pool(cases: &[(&[f64], f64)]) -> Option<Pooled> {
    let m = cases.len();
    let k = cases.first()?.0.len();
    if m < 2 || k < 2 || cases.iter().any(|(r, w)| r.len() != k || !w.is_finite() || r.iter().any(|v| !v.is_finite())) {
        return None;
    }
    let grand = cases.iter().flat_map(|(r, _)| r.iter()).sum::<f64>() / (m * k) as f64;
    let case_means: Vec<f64> = cases.iter().map(|(r, _)| r.iter().sum::<f64>() / k as f64).collect();
    let run_means: Vec<f64> = (0..k).map(|j| cases.iter().map(|(r, _)| r[j]).sum::<f64>() / m as f64).collect();
    let ms_runs = m as f64 * run_means.iter().map(|x| (x - grand).powi(2)).sum::<f64>() / (k - 1) as f64;
    let mut own = Vec::with_capacity(m);
    let mut residual = 0.0;
    for ((row, _), cm) in cases.iter().zip(&case_means) {
        let ss: f64 = row.iter().zip(&run_means).map(|(x, rm)| (x - rm - cm + grand).powi(2)).sum();
        residual += ss;
        // Removing the run means costs each case a share 1/m of its freedom.
        own.push(ss / (k - 1) as f64 * m as f64 / (m - 1) as f64);
    }
    let residual_df = ((k - 1) * (m - 1)) as f64;
    let ms_res = residual / residual_df;
    let w = cases.iter().map(|(_, w)| *w).sum::<f64>() / m as f64;
    if w.is_nan() || w <= 0.0 {
        return None;
    }
    let shared = ((ms_runs - ms_res) / m as f64).max(0.0);
    let shared_var = 2.0 * (ms_runs * ms_runs / (k - 1) as f64 + ms_res * ms_res / residual_df) / (m * m) as f64;
    Some(Pooled {
        shared,
        shared_var,
        inflation: (ms_res / w).max(1.0),
        residual_df,
        own,
        runs: k,
        ms_runs,
        ms_residual: ms_res,
        within: w,
    })
}

impl RunTest {
    /// This test with its noise estimated from the pooled cases ([`pool`]):
    /// per-run variance = the shared drift + this case's within-run variance
    /// times the pooled inflation, with Satterthwaite's degrees of freedom;
    /// unless this case's own scatter (`own`, once the shared drift is
    /// removed) is beyond the 99th percentile of what that predicts, when it
    /// is judged on its own scatter. Unchanged without a within-run variance
    /// or for a test not measured from runs.
    pub fn pooled(&self, p: &Pooled, own: f64) -> RunTest {
        let (Some(wb), SpreadSource::Runs) = (self.within, self.source) else { return *self };
        let [kb, kc] = self.runs;
        let [nb, nc] = self.requests;
        if kb != p.runs || nb <= 0.0 || nc <= 0.0 {
            return *self;
        }
        let (fb, fc) = (1.0 / kb as f64, 1.0 / kc as f64);
        let predicted = p.inflation * wb;
        let df_own = (kb - 1) as f64;
        let limit = dist::chi_square_quantile(0.99, df_own) / df_own;
        let (rho, rho_var) = if own > limit * predicted {
            (own, 2.0 * own * own / df_own)
        } else {
            let df_w = within_df(nb, kb);
            (predicted, predicted * predicted * (2.0 / p.residual_df + 2.0 / df_w))
        };
        // The current runs' own part scales with their request count.
        let r = nb / nc;
        let v = (p.shared + rho) * fb + (p.shared + rho * r) * fc;
        // Satterthwaite: df = 2 V^2 / Var(V), the components' sampling
        // variances weighted by their coefficients.
        let var_v = p.shared_var * (fb + fc).powi(2) + rho_var * (fb + fc * r).powi(2);
        let mut out = *self;
        out.se = (v.is_finite() && v > 0.0).then(|| v.sqrt());
        out.df = if var_v > 0.0 { (2.0 * v * v / var_v).max(1.0) } else { f64::INFINITY };
        out.between = p.shared + (rho - wb).max(0.0);
        out.pooled = true;
        out
    }
}

/// Run-to-run variance that several cases share, from the log values of
/// the same runs of each (one row per case, the runs in the same order): the
/// runs x cases analysis of variance, `(MS_runs - MS_residual) / cases`.
/// A run's drift (clocks, thermals, a server launch) moves every case of the
/// run; this is how much of it does. `None` with fewer than two cases or
/// runs, or rows of different lengths.
pub fn shared_variance(rows: &[&[f64]]) -> Option<f64> {
    let m = rows.len();
    let k = rows.first()?.len();
    if m < 2 || k < 2 || rows.iter().any(|r| r.len() != k || r.iter().any(|v| !v.is_finite())) {
        return None;
    }
    let grand = rows.iter().flat_map(|r| r.iter()).sum::<f64>() / (m * k) as f64;
    let case_means: Vec<f64> = rows.iter().map(|r| r.iter().sum::<f64>() / k as f64).collect();
    let run_means: Vec<f64> = (0..k).map(|j| rows.iter().map(|r| r[j]).sum::<f64>() / m as f64).collect();
    let ms_runs = m as f64 * run_means.iter().map(|x| (x - grand).powi(2)).sum::<f64>() / (k - 1) as f64;
    let mut residual = 0.0;
    for (row, cm) in rows.iter().zip(&case_means) {
        for (x, rm) in row.iter().zip(&run_means) {
            residual += (x - rm - cm + grand).powi(2);
        }
    }
    let ms_res = residual / ((k - 1) * (m - 1)) as f64;
    let v = ((ms_runs - ms_res) / m as f64).max(0.0);
    v.is_finite().then_some(v)
}

/// The decision threshold and power of the tests of one comparison.
///
/// The per-test level comes from the normal one-factor model
/// ([`super::multiplicity`]) as a critical value `z`. A variance estimated
/// from few degrees of freedom fattens each test statistic's tail, which
/// widens the critical value by `t(1-a) / z(1-a)` at some level `a`. Which
/// level depends on what the uncertain estimate is: an uncertainty of each
/// test's own (its requests' spread) is one per test, so `a` is the per-test
/// level and the widening is the plain per-test t quantile; the uncertainty
/// of the drift every case shares is one for the whole family, which then
/// moves as one test, so `a` is the run's budget. A test's widening mixes
/// the two by its shared share (`load`): at no sharing exactly the per-test
/// Student-t, at full sharing exactly one Student-t test at the budget. The
/// Monte Carlo (`infergate_sim::montecarlo`) shows the family stays within its budget.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    /// Critical value of a test on the normal scale.
    pub z: f64,
    /// The run's false-alarm budget.
    pub alpha: f64,
    /// Probability of catching a change of the minimum detectable size.
    pub power: f64,
}

impl Detection {
    /// Tests at one-sided `level` each, within a run's budget `alpha`.
    pub fn new(level: f64, alpha: f64, power: f64) -> Detection {
        Detection { z: -dist::normal_quantile(level.clamp(1e-300, 0.5)), alpha: alpha.clamp(1e-12, 0.5), power }
    }

    /// The per-test level on the normal scale.
    pub fn level(&self) -> f64 {
        dist::normal_sf(self.z)
    }

    /// The widening at the per-test level and at the budget, on `df` degrees of freedom.
    pub fn widenings(&self, df: f64) -> [f64; 2] {
        let widen = |a: f64| {
            let z = -dist::normal_quantile(a);
            let t = -dist::student_t_quantile(a, df);
            if t.is_finite() && z > 0.0 { (t / z).max(1.0) } else { 1.0 }
        };
        [widen(self.level()), widen(self.alpha)]
    }

    /// A test's widening: the two mixed by its shared share.
    pub fn mix(widenings: [f64; 2], load: f64) -> f64 {
        let l = if load.is_finite() { load.clamp(0.0, 1.0) } else { 0.0 };
        (1.0 - l) * widenings[0] + l * widenings[1]
    }

    /// The critical value of a statistic on `df` degrees of freedom whose
    /// variance has shared share `load`.
    pub fn critical(&self, df: f64, load: f64) -> f64 {
        self.z * Detection::mix(self.widenings(df), load)
    }

    /// The noise bar in log units: a change further than this is significant.
    pub fn bar(&self, se: f64, df: f64, load: f64) -> f64 {
        self.critical(df, load) * se
    }

    /// The smallest change (log units, in the bad direction) that a check
    /// whose decision threshold is `max(limit, bar)` catches with
    /// probability [`Detection::power`].
    pub fn min_detectable(&self, limit: f64, se: f64, df: f64, load: f64) -> f64 {
        limit.max(self.bar(se, df, load)) + dist::student_t_quantile(self.power, df) * se
    }

    /// One-sided p-value of a change of `change_log` (in its own direction),
    /// on the scale the decision is made: significant exactly when it is
    /// below [`Detection::level`].
    pub fn p_value(&self, change_log: f64, se: f64, df: f64, load: f64) -> f64 {
        if se > 0.0 {
            let w = Detection::mix(self.widenings(df), load);
            dist::normal_sf(change_log.abs() / se / w).clamp(0.0, 1.0)
        } else if change_log == 0.0 {
            1.0
        } else {
            0.0
        }
    }
}

/// A design to ask "what if": runs per side and requests per run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Design {
    /// Baseline runs.
    pub baseline_runs: usize,
    /// Current runs.
    pub current_runs: usize,
    /// Requests per run.
    pub requests: f64,
}

impl RunTest {
    /// Standard error and degrees of freedom this test would have under
    /// another design, from its variance components; `None` when the
    /// per-request part is unknown.
    pub fn under(&self, d: Design) -> Option<(f64, f64)> {
        noise_under(self.between, self.per_request?, d)
    }
}

/// Standard error and degrees of freedom of a comparison under design `d`
/// for a metric whose run-to-run variance (log units, beyond the requests'
/// spread) is `between` and whose per-request variance is `per_request`.
/// With four or more runs in all, the spread is measured from them (t on
/// runs - 2 degrees of freedom); with fewer it is taken as known
/// (`[gate] run_to_run_cv`) and only the within-run parts are estimated.
pub fn noise_under(between: f64, per_request: f64, d: Design) -> Option<(f64, f64)> {
    if d.baseline_runs == 0 || d.current_runs == 0 || d.requests.is_nan() || d.requests < 1.0 {
        return None;
    }
    if !(between.is_finite() && between >= 0.0 && per_request.is_finite() && per_request >= 0.0) {
        return None;
    }
    let (fb, fc) = (1.0 / d.baseline_runs as f64, 1.0 / d.current_runs as f64);
    let run = between + per_request / d.requests;
    let se = (run * (fb + fc)).sqrt();
    let runs = d.baseline_runs + d.current_runs;
    let df = if runs >= 2 + MIN_RUN_DF {
        (runs - 2) as f64
    } else {
        let u = per_request / d.requests;
        let denom = 2.0 * u * u / (WITHIN_DF_PER_REQUEST * (d.requests - 1.0)).max(1.0);
        if denom > 0.0 { (run * (fb + fc)).powi(2) / denom } else { f64::INFINITY }
    };
    Some((se, df.max(1.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(values: &[f64], n: usize, within: f64) -> Vec<RunValue> {
        values.iter().map(|v| RunValue { value: *v, n, within: Some(within) }).collect()
    }

    #[test]
    fn median_and_its_spread_of_one_run() {
        let samples: Vec<f64> = (0..11).map(|i| 100.0 + f64::from(i)).collect();
        let r = RunValue::of(&samples, 0.5).unwrap();
        assert_eq!((r.value, r.n), (105.0, 11));
        // MAD 3 -> sd 4.45; var of the median pi/2 * sd^2 / n, relative.
        let expected = std::f64::consts::FRAC_PI_2 * (1.4826f64 * 3.0).powi(2) / 11.0 / (105.0f64 * 105.0);
        assert!((r.within.unwrap() / expected - 1.0).abs() < 1e-3, "{r:?}");
        assert!(RunValue::of(&samples[..4], 0.5).unwrap().within.is_none(), "four requests: no spread of their own");
        assert!(RunValue::of(&[0.0, 0.0, 0.0], 0.5).is_none(), "no log of zero");
        assert!(RunValue::of(&[], 0.5).is_none());
        // An outlier moves the p99's spread, not the median's.
        let mut wild = samples.clone();
        wild[0] = 1000.0;
        let m = RunValue::of(&wild, 0.5).unwrap();
        assert!(m.within.unwrap() < 2.0 * r.within.unwrap(), "{m:?}");
        assert!(RunValue::of(&wild, 0.99).unwrap().within.unwrap() > 100.0 * r.within.unwrap());
    }

    #[test]
    fn measured_spread_gives_a_t_test_on_runs() {
        let b = runs(&[100.0, 102.0, 98.0, 101.0, 99.0], 10, 1e-4);
        let c = runs(&[90.0], 10, 1e-4);
        let t = test(Sides { baseline: &b, current: &c, prior: Prior::configured(Some(0.5)) }).unwrap();
        assert_eq!(t.source, SpreadSource::Runs, "runs beat configuration");
        assert_eq!(t.df, 4.0);
        let logs: Vec<f64> = b.iter().map(|r| r.value.ln()).collect();
        let m = logs.iter().sum::<f64>() / 5.0;
        let s2 = logs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / 4.0;
        assert!((t.se.unwrap() - (s2 * (1.0 / 5.0 + 1.0)).sqrt()).abs() < 1e-12);
        assert!((t.change_log - (90f64.ln() - m)).abs() < 1e-12);
        assert!((t.baseline - m.exp()).abs() < 1e-9);
        assert!((t.between - (s2 - 1e-4)).abs() < 1e-12);
        // A current run of more requests: its within-run part shrinks.
        let c2 = runs(&[90.0], 40, 1e-4 / 4.0);
        let t2 = test(Sides { baseline: &b, current: &c2, prior: None }).unwrap();
        assert!(t2.se.unwrap() < t.se.unwrap());
    }

    #[test]
    fn one_run_each_uses_the_configured_drift_or_says_it_has_none() {
        let b = runs(&[100.0], 10, 4e-4);
        let c = runs(&[95.0], 10, 4e-4);
        let none = test(Sides { baseline: &b, current: &c, prior: None }).unwrap();
        assert_eq!(none.source, SpreadSource::None);
        assert!((none.se.unwrap() - (8e-4f64).sqrt()).abs() < 1e-12);
        // Satterthwaite of two equal parts, each on 0.2 x 9 degrees of freedom.
        assert!((none.df - 2.0 * 0.2 * 9.0).abs() < 1e-9, "{}", none.df);
        let cfg = test(Sides { baseline: &b, current: &c, prior: Prior::configured(Some(0.02)) }).unwrap();
        assert_eq!(cfg.source, SpreadSource::Config);
        let drift = 1.02f64.ln().powi(2);
        assert!((cfg.se.unwrap() - (2.0 * drift + 8e-4).sqrt()).abs() < 1e-12);
        assert!(cfg.df > none.df, "a known part adds certainty");
        // Too few requests for a spread of their own and no second run: nothing to judge with.
        let short = [RunValue { value: 100.0, n: 3, within: None }];
        assert_eq!(
            test(Sides { baseline: &short, current: &short, prior: Prior::configured(Some(0.02)) }).unwrap().se,
            None
        );
    }

    #[test]
    fn history_spread_sees_drift_but_not_steps_or_creep() {
        let mut rng = crate::rng::Rng::new(11);
        let drift = 0.03;
        let noise: Vec<f64> = (0..40).map(|_| drift * rng.normal()).collect();
        let p = history_spread(&noise, &[]).unwrap();
        assert_eq!(p.source, SpreadSource::History);
        assert!(p.between.sqrt() > 0.6 * drift && p.between.sqrt() < 1.5 * drift, "{p:?}");
        // Two 10% steps and a slow creep leave it nearly where it was.
        let moved: Vec<f64> = noise
            .iter()
            .enumerate()
            .map(|(i, x)| x + if i >= 15 { -0.1 } else { 0.0 } + if i >= 30 { -0.1 } else { 0.0 } - 0.002 * i as f64)
            .collect();
        let q = history_spread(&moved, &[]).unwrap();
        assert!((q.between.sqrt() / p.between.sqrt() - 1.0).abs() < 0.25, "{p:?} {q:?}");
        // The runs' own sampling variance is not drift.
        let quiet = history_spread(&noise, &vec![drift * drift * 4.0; 40]).unwrap();
        assert_eq!((quiet.between, quiet.df), (0.0, f64::INFINITY));
        let half = history_spread(&noise, &vec![p.between / 2.0; 40]).unwrap();
        assert!(half.df == p.df && (half.between / p.between - 0.5).abs() < 1e-9, "{half:?}");
        assert!(history_spread(&noise[..MIN_HISTORY_RUNS - 1], &[]).is_none());
        assert!(history_spread(&[f64::NAN; 12], &[]).is_none());
    }

    /// The degrees of freedom the constant claims: `2 sigma^4 / Var(estimate)`
    /// over many seeded normal series of 30 runs.
    #[test]
    fn history_spread_degrees_of_freedom() {
        let mut rng = crate::rng::Rng::new(2026);
        let (runs, trials) = (30, 20_000);
        let estimates: Vec<f64> = (0..trials)
            .map(|_| {
                let logs: Vec<f64> = (0..runs).map(|_| rng.normal()).collect();
                history_spread(&logs, &[]).unwrap().between
            })
            .collect();
        let mean = estimates.iter().sum::<f64>() / trials as f64;
        let var = estimates.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / (trials - 1) as f64;
        let df = 2.0 * mean * mean / var;
        let normal: Vec<f64> = (0..runs).map(|_| rng.normal()).collect();
        let claimed = history_spread(&normal, &[]).unwrap().df;
        assert!((mean - 1.0).abs() < 0.08, "about unbiased for normal drift: {mean}");
        assert!(claimed <= df * 1.1 && claimed >= df * 0.75, "claimed {claimed}, measured {df}");
    }

    #[test]
    fn a_prior_from_history_carries_its_degrees_of_freedom() {
        let b = runs(&[100.0], 10, 4e-4);
        let c = runs(&[95.0], 10, 4e-4);
        let known = Prior { between: 4e-4, df: f64::INFINITY, source: SpreadSource::Config };
        let learnt = Prior { df: 6.0, source: SpreadSource::History, ..known };
        let k = test(Sides { baseline: &b, current: &c, prior: Some(known) }).unwrap();
        let h = test(Sides { baseline: &b, current: &c, prior: Some(learnt) }).unwrap();
        assert_eq!(h.source, SpreadSource::History);
        assert_eq!(k.se, h.se);
        assert!(h.df < k.df, "an estimated spread is less certain than a configured one: {} vs {}", h.df, k.df);
        assert_eq!(h.between_df, 6.0);
    }

    #[test]
    fn what_if_more_runs_or_requests() {
        let b = runs(&[100.0, 103.0, 97.0, 101.0, 99.0], 10, 1e-4);
        let c = runs(&[100.0], 10, 1e-4);
        let t = test(Sides { baseline: &b, current: &c, prior: None }).unwrap();
        let now = t.under(Design { baseline_runs: 5, current_runs: 1, requests: 10.0 }).unwrap();
        let more_requests = t.under(Design { baseline_runs: 5, current_runs: 1, requests: 1000.0 }).unwrap();
        // (within-run 1e-4 at 10 requests, between-run about 4.5e-4)
        let more_runs = t.under(Design { baseline_runs: 50, current_runs: 1, requests: 10.0 }).unwrap();
        // Drift dominates: requests barely help, runs do (and raise the degrees of freedom).
        assert!(more_requests.0 > 0.85 * now.0, "{now:?} {more_requests:?}");
        assert!(more_runs.0 < now.0 && more_runs.1 == 49.0);
        let det = Detection::new(0.01, 0.01, 0.95);
        assert!(det.min_detectable(0.05, more_runs.0, more_runs.1, 0.5) < det.min_detectable(0.05, now.0, now.1, 0.5));
    }

    #[test]
    fn pooled_cases_share_the_drift_and_their_degrees_of_freedom() {
        // Sixteen cases, five runs, a shared offset per run and little else:
        // the drift's degrees of freedom (runs - 1) are all there is.
        let offsets = [0.0, 0.04, -0.03, 0.02, -0.01];
        let rows: Vec<Vec<f64>> = (0..16)
            .map(|c| {
                offsets.iter().enumerate().map(|(j, o)| c as f64 + o + 1e-4 * ((c * 7 + j * 3) % 5) as f64).collect()
            })
            .collect();
        let cases: Vec<(&[f64], f64)> = rows.iter().map(|r| (r.as_slice(), 1e-8)).collect();
        let p = pool(&cases).unwrap();
        let mean = offsets.iter().sum::<f64>() / 5.0;
        let var = offsets.iter().map(|o| (o - mean).powi(2)).sum::<f64>() / 4.0;
        assert!((p.shared / var - 1.0).abs() < 0.01, "{} vs {var}", p.shared);
        let b: Vec<RunValue> = offsets.iter().map(|o| RunValue { value: o.exp(), n: 10, within: Some(1e-8) }).collect();
        let c = [RunValue { value: 1.0, n: 10, within: Some(1e-8) }];
        let t = test(Sides { baseline: &b, current: &c, prior: None }).unwrap().pooled(&p, p.own[0]);
        assert!(t.pooled && (t.df - 4.0).abs() < 0.2, "{t:?}");
        // With no shared drift, the pooled residual carries many degrees of freedom.
        let flat: Vec<Vec<f64>> =
            (0..16).map(|c| (0..5).map(|j| 1e-3 * (((c * 7 + j * 3) % 5) as f64 - 2.0)).collect()).collect();
        let cases: Vec<(&[f64], f64)> = flat.iter().map(|r| (r.as_slice(), 2e-6)).collect();
        let p = pool(&cases).unwrap();
        let b: Vec<RunValue> = flat[0].iter().map(|x| RunValue { value: x.exp(), n: 10, within: Some(2e-6) }).collect();
        let c = [RunValue { value: 1.0, n: 10, within: Some(2e-6) }];
        let t = test(Sides { baseline: &b, current: &c, prior: None }).unwrap().pooled(&p, p.own[0]);
        assert!(t.df > 6.0, "{t:?}");
    }

    #[test]
    fn shared_drift_of_cases() {
        // Three cases, four runs; each run moves every case by the same offset.
        let offsets = [0.0, 0.02, -0.01, 0.03];
        let rows: Vec<Vec<f64>> =
            [1.0, 2.0, 3.0].iter().map(|base| offsets.iter().map(|o| base + o).collect()).collect();
        let refs: Vec<&[f64]> = rows.iter().map(Vec::as_slice).collect();
        let v = shared_variance(&refs).unwrap();
        let mean = offsets.iter().sum::<f64>() / 4.0;
        let var = offsets.iter().map(|o| (o - mean).powi(2)).sum::<f64>() / 3.0;
        assert!((v - var).abs() < 1e-12, "{v} vs {var}");
        // Offsets of their own per case share nothing.
        let own = [vec![0.0, 0.02, -0.02, 0.0], vec![0.02, -0.02, 0.0, 0.0], vec![-0.02, 0.0, 0.02, 0.0]];
        let refs: Vec<&[f64]> = own.iter().map(Vec::as_slice).collect();
        assert!(shared_variance(&refs).unwrap() < 1e-4);
        assert_eq!(shared_variance(&refs[..1]), None);
    }

    #[test]
    fn p_values_and_bars() {
        // At the budget itself, one test: exactly Student's t, shared or not. t(0.99, 4) = 3.746947
        let det = Detection::new(0.01, 0.01, 0.95);
        for load in [0.0, 0.5, 1.0] {
            assert!((det.bar(1.0, 4.0, load) - 3.746947).abs() < 1e-5);
            assert!((det.p_value(3.746947, 1.0, 4.0, load) - 0.01).abs() < 1e-6);
        }
        assert_eq!(det.p_value(0.0, 0.0, 4.0, 0.0), 1.0);
        // A stricter per-test level: its own t quantile when nothing is
        // shared (t(0.999, 4) = 7.173182), the budget's widening when all is.
        let strict = Detection::new(0.001, 0.01, 0.95);
        assert!((strict.bar(1.0, 4.0, 0.0) - 7.173182).abs() < 1e-5);
        assert!((strict.bar(1.0, 4.0, 1.0) - 3.090232 * 3.746947 / 2.326348).abs() < 1e-5);
        assert!(strict.bar(1.0, 4.0, 0.5) < strict.bar(1.0, 4.0, 0.0));
        assert!((strict.p_value(strict.bar(1.0, 4.0, 0.3), 1.0, 4.0, 0.3) - 0.001).abs() < 1e-9);
        assert!((strict.bar(1.0, f64::INFINITY, 0.7) - 3.090232).abs() < 1e-5, "many degrees of freedom: the normal");
        // The tolerance binds when it is above the bar.
        assert!((det.min_detectable(10.0, 1.0, 1e9, 0.5) - (10.0 + 1.644854)).abs() < 1e-5);
    }
}
