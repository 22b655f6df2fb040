//! Significance and sensitivity of a change between two runs of a metric.
//!
//! The gate calls a metric regressed only when the change is both beyond its
//! tolerance and statistically significant, so that noise alone cannot fail a
//! merge. It also says how small a change it could have caught with the samples
//! it had (the minimum detectable change), and how many repetitions would make
//! that smaller than the tolerance, so a "pass" on too few samples is visibly a
//! weak one.
//!
//! The test is the two-sided Mann-Whitney U test: per-request latencies and
//! throughputs are skewed and have outliers, which a rank test shrugs off. All
//! functions are pure, never panic, and answer `None` (or NaN for the bare
//! normal-distribution functions) when they cannot judge.

use std::f64::consts::PI;

/// Above this many pairs `n1 * n2` the exact null distribution of U is not
/// computed. The computation costs about `min(n1, n2) * n1 * n2` additions,
/// which at this bound is under a millisecond optimised (about 10 ms in a
/// debug build); beyond it the normal approximation is already accurate.
const EXACT_MAX_PAIRS: usize = 10_000;

/// Scale factor turning a median absolute deviation into a standard deviation
/// for normally distributed data, so a robust CV is comparable to sd / mean.
const MAD_TO_SD: f64 = 1.4826;

/// Largest sample size `repetitions_for` will recommend.
const MAX_REPETITIONS: usize = 10_000;

/// Two-sided Mann-Whitney U test result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MannWhitney {
    /// U of the first sample: the number of pairs `(x in a, y in b)` with
    /// `x > y`, a tie counting one half.
    pub u: f64,
    /// Two-sided p-value, in `[0, 1]`.
    pub p_value: f64,
    /// Whether `p_value` comes from the exact distribution of U (no ties, few
    /// enough pairs) rather than the normal approximation.
    pub exact: bool,
}

/// Two-sided Mann-Whitney U (Wilcoxon rank-sum) test of `a` against `b`.
///
/// Non-finite values are dropped first; `None` when either side is then empty.
/// The p-value is exact when there are no ties and `n1 * n2 <= 10_000`;
/// otherwise it comes from the normal approximation with tie correction and
/// continuity correction (as scipy's `mannwhitneyu(..., method="asymptotic")`).
pub fn mann_whitney_u(a: &[f64], b: &[f64]) -> Option<MannWhitney> {
    let n1 = a.iter().filter(|x| x.is_finite()).count();
    let n2 = b.iter().filter(|x| x.is_finite()).count();
    if n1 == 0 || n2 == 0 {
        return None;
    }
    // `true` marks a value of `a`.
    let mut pooled: Vec<(f64, bool)> = Vec::with_capacity(n1 + n2);
    pooled.extend(a.iter().filter(|x| x.is_finite()).map(|&x| (x, true)));
    pooled.extend(b.iter().filter(|x| x.is_finite()).map(|&x| (x, false)));
    // Unstable is enough: which side an equal value came from does not change its mid-rank.
    pooled.sort_unstable_by(|x, y| x.0.total_cmp(&y.0));

    // Mid-ranks: each run of equal values shares the mean of its ranks.
    let mut rank_sum_a = 0.0;
    let mut tie_term = 0.0; // sum of t^3 - t over runs of t equal values
    let mut start = 0;
    while start < pooled.len() {
        let mut end = start + 1;
        // `==` rather than total_cmp so that -0.0 and 0.0 tie, as they compare.
        while end < pooled.len() && pooled[end].0 == pooled[start].0 {
            end += 1;
        }
        let t = (end - start) as f64;
        let mid_rank = (start + 1 + end) as f64 / 2.0;
        let in_a = pooled[start..end].iter().filter(|v| v.1).count();
        rank_sum_a += mid_rank * in_a as f64;
        tie_term += t * t * t - t;
        start = end;
    }
    let (f1, f2) = (n1 as f64, n2 as f64);
    let u = rank_sum_a - f1 * (f1 + 1.0) / 2.0;
    let pairs = f1 * f2;

    let exact_ok = tie_term == 0.0 && n1.checked_mul(n2).is_some_and(|p| p <= EXACT_MAX_PAIRS);
    if exact_ok {
        // Without ties U is a whole number and its null distribution is
        // symmetric about n1 * n2 / 2, so the two-sided p-value is twice the
        // lower tail at the nearer end.
        let u_int = u.round() as usize;
        let u_low = u_int.min(n1 * n2 - u_int);
        let p = 2.0 * exact_lower_tail_cached(n1, n2, u_low);
        return Some(MannWhitney { u, p_value: clamp_p(p), exact: true });
    }

    let n = f1 + f2;
    let mean = pairs / 2.0;
    let variance = pairs / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)));
    if variance.is_nan() || variance <= 0.0 {
        // Every value equal: nothing distinguishes the samples.
        return Some(MannWhitney { u, p_value: 1.0, exact: false });
    }
    let z = ((u - mean).abs() - 0.5) / variance.sqrt();
    let p = 2.0 * normal_cdf(-z);
    Some(MannWhitney { u, p_value: clamp_p(p), exact: false })
}

/// Clamps a p-value into `[0, 1]`, mapping NaN to 1 (no evidence of a change).
fn clamp_p(p: f64) -> f64 {
    if p.is_nan() { 1.0 } else { p.clamp(0.0, 1.0) }
}

/// P(U <= u_max) under the null hypothesis for sample sizes `n1`, `n2`, no ties.
///
/// The number of arrangements giving each U is a coefficient of the Gaussian
/// binomial `[n1 + n2 choose m]_q`, built one factor
/// `(1 - q^(n + k)) / (1 - q^k)` at a time (Harding 1984). Only coefficients up
/// to `u_max` are kept: every step reads lower coefficients only, and on the
/// rising lower half of the distribution the subtractions lose little
/// precision (checked against exact integers in the tests).
fn exact_lower_tail(n1: usize, n2: usize, u_max: usize) -> f64 {
    let total = binomial_f64(n1 + n2, n1.min(n2));
    exact_counts(n1, n2, u_max).iter().sum::<f64>() / total
}

/// The number of arrangements giving each U in `0..=u_max` (see `exact_lower_tail`).
fn exact_counts(n1: usize, n2: usize, u_max: usize) -> Vec<f64> {
    let (m, n) = if n1 <= n2 { (n1, n2) } else { (n2, n1) };
    let len = u_max + 1;
    let mut counts = vec![0.0f64; len];
    counts[0] = 1.0;
    for k in 1..=m {
        let shift = n + k;
        for j in (shift..len).rev() {
            counts[j] -= counts[j - shift];
        }
        for j in k..len {
            counts[j] += counts[j - k];
        }
    }
    counts
}

/// `exact_lower_tail` from a per-thread table of the whole lower half of the
/// null distribution for each recent `(n1, n2)`: a comparison tests thousands
/// of metrics with the same few sample sizes, and building the distribution
/// costs more than the rest of the test.
fn exact_lower_tail_cached(n1: usize, n2: usize, u_max: usize) -> f64 {
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::rc::Rc;
    /// Sizes kept per thread; each table holds at most 5,001 values.
    const KEEP: usize = 16;
    /// Lower tails by (smaller size, larger size).
    type Tails = HashMap<(usize, usize), Rc<Vec<f64>>>;
    thread_local! {
        static TAILS: RefCell<Tails> = RefCell::new(HashMap::new());
    }
    let key = (n1.min(n2), n1.max(n2));
    let half = n1 * n2 / 2;
    if u_max > half {
        return exact_lower_tail(n1, n2, u_max);
    }
    let table = TAILS.with(|t| t.borrow().get(&key).cloned()).unwrap_or_else(|| {
        let table = Rc::new(lower_tails(key.0, key.1, half));
        TAILS.with(|t| {
            let mut t = t.borrow_mut();
            if t.len() >= KEEP {
                t.clear();
            }
            t.insert(key, Rc::clone(&table));
        });
        table
    });
    table[u_max]
}

/// P(U <= u) for every `u` in `0..=u_max`: the running sums of the same
/// counts `exact_lower_tail` builds.
fn lower_tails(n1: usize, n2: usize, u_max: usize) -> Vec<f64> {
    let mut counts = exact_counts(n1, n2, u_max);
    let total = binomial_f64(n1 + n2, n1.min(n2));
    let mut sum = 0.0;
    for c in &mut counts {
        sum += *c;
        *c = sum / total;
    }
    counts
}

/// C(n, k) as f64, by a product of ratios; only called for the exact test,
/// whose bound on `n1 * n2` keeps the result below 1e60.
fn binomial_f64(n: usize, k: usize) -> f64 {
    (1..=k).fold(1.0, |acc, i| acc * (n - k + i) as f64 / i as f64)
}

/// Smallest two-sided p-value the exact test can produce for sizes `n1`, `n2`:
/// `2 / C(n1 + n2, n1)` (complete separation), capped at 1.
///
/// 1.0 when either size is 0. Computed in logarithms, so it never overflows;
/// for large sizes it underflows to exactly 0.0.
pub fn min_p_value(n1: usize, n2: usize) -> f64 {
    let (k, other) = if n1 <= n2 { (n1, n2) } else { (n2, n1) };
    if k == 0 {
        return 1.0;
    }
    let target = 2.0f64.ln() + 746.0; // beyond this exp(-x) is 0.0 in f64
    let mut ln_c = 0.0;
    for i in 1..=k {
        // Each factor is at least 2 because other >= k >= i, so this loop
        // stops after about 1100 steps however large the sizes are.
        ln_c += ((other as f64 + i as f64) / i as f64).ln();
        if ln_c > target {
            return 0.0;
        }
    }
    (2.0f64.ln() - ln_c).exp().min(1.0)
}

/// Complementary error function, accurate to a few ulp over the whole line.
///
/// std has no `erfc` on stable; this uses two series that need no tabulated
/// coefficients: a positive-term series for `erf` near 0 and a continued
/// fraction for the tail, where `1 - erf` would lose all relative precision.
fn erfc(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x < 0.0 {
        return 2.0 - erfc(-x);
    }
    if x < 2.0 {
        // erf(x) = 2/sqrt(pi) exp(-x^2) sum_{n>=0} (2x^2)^n x / (2n+1)!!
        let two_x2 = 2.0 * x * x;
        let mut term = x;
        let mut sum = x;
        let mut n = 0.0;
        while term > sum * 1e-17 {
            n += 1.0;
            term *= two_x2 / (2.0 * n + 1.0);
            sum += term;
        }
        return 1.0 - 2.0 / PI.sqrt() * (-x * x).exp() * sum;
    }
    if x > 27.3 {
        return 0.0; // below the smallest subnormal
    }
    // erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + ...)))),
    // evaluated by the modified Lentz method.
    let tiny = 1e-300;
    let mut f = x;
    let mut c = x;
    let mut d = 0.0;
    for i in 1..500 {
        let a = i as f64 / 2.0;
        d = x + a * d;
        d = if d.abs() < tiny { 1.0 / tiny } else { 1.0 / d };
        c = x + a / c;
        if c.abs() < tiny {
            c = tiny;
        }
        let delta = c * d;
        f *= delta;
        if (delta - 1.0).abs() < 1e-16 {
            break;
        }
    }
    (-x * x).exp() / (PI.sqrt() * f)
}

/// Standard normal cumulative distribution function, P(Z <= x).
///
/// Keeps full relative precision in the lower tail (down to about x = -38);
/// NaN for NaN.
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

/// Standard normal quantile (inverse CDF): the x with `normal_cdf(x) == p`.
///
/// Acklam's rational approximation refined by one Halley step, which brings
/// the error below 1e-9 (in practice near machine precision). `-inf` at 0,
/// `inf` at 1, NaN outside `[0, 1]` or for NaN.
pub fn normal_quantile(p: f64) -> f64 {
    if !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    if p > 0.5 {
        // 1 - p is exact here, and the lower tail is where normal_cdf has
        // full relative precision for the refinement step.
        return -normal_quantile(1.0 - p);
    }
    let x = acklam(p);
    // Halley step on f(x) = cdf(x) - p.
    let e = normal_cdf(x) - p;
    let u = e * (2.0 * PI).sqrt() * (x * x / 2.0).exp();
    let refined = x - u / (1.0 + x * u / 2.0);
    // In the far tail exp(x^2/2) overflows; the raw approximation is all there is.
    if refined.is_finite() { refined } else { x }
}

/// Acklam's approximation of the normal quantile for p in (0, 0.5],
/// relative error below 1.15e-9.
fn acklam(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e+01,
        2.209460984245205e+02,
        -2.759285104469687e+02,
        1.38357751867269e+02,
        -3.066479806614716e+01,
        2.506628277459239e+00,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e+01,
        1.615858368580409e+02,
        -1.556989798598866e+02,
        6.680131188771972e+01,
        -1.328068155288572e+01,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-03,
        -3.223964580411365e-01,
        -2.400758277161838e+00,
        -2.549732539343734e+00,
        4.374664141464968e+00,
        2.938163982698783e+00,
    ];
    const D: [f64; 4] = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00];
    const P_LOW: f64 = 0.02425;
    if p < P_LOW {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// Median of already sorted, non-empty values (mean of the middle two when even).
fn sorted_median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 { sorted[n / 2] } else { sorted[n / 2 - 1] / 2.0 + sorted[n / 2] / 2.0 }
}

/// Robust coefficient of variation: `1.4826 * MAD / |median|` of the finite
/// values, an estimate of sd / median that a few outliers cannot inflate.
///
/// `None` when there are fewer than 2 finite values, when the median is 0, or
/// when the result overflows.
pub fn robust_cv(samples: &[f64]) -> Option<f64> {
    let mut values: Vec<f64> = Vec::with_capacity(samples.len());
    values.extend(samples.iter().copied().filter(|x| x.is_finite()));
    if values.len() < 2 {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let median = sorted_median(&values);
    if median == 0.0 {
        return None;
    }
    let mut deviations: Vec<f64> = values.iter().map(|x| (x - median).abs()).collect();
    deviations.sort_by(f64::total_cmp);
    let cv = MAD_TO_SD * sorted_median(&deviations) / median.abs();
    cv.is_finite().then_some(cv)
}

/// Sample coefficient of variation: sample standard deviation (n - 1) over
/// |mean| of the finite values; `None` with fewer than 2 values or a zero mean.
///
/// The minimum detectable change uses this rather than [`robust_cv`]: the
/// MAD-based estimate is exact only for normal noise (it overstates uniform
/// noise by 28%), while the standard deviation is what the power formula is
/// written in; outliers can only make it larger, i.e. more cautious.
pub fn sample_cv(samples: &[f64]) -> Option<f64> {
    let values = || samples.iter().copied().filter(|x| x.is_finite());
    let count = values().count();
    if count < 2 {
        return None;
    }
    let n = count as f64;
    let mean = values().sum::<f64>() / n;
    if mean == 0.0 {
        return None;
    }
    let var = values().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    let cv = var.sqrt() / mean.abs();
    cv.is_finite().then_some(cv)
}

/// Pooled CV of two samples: the [`sample_cv`] of each weighted by degrees of
/// freedom, `sqrt((cv1^2 (n1 - 1) + cv2^2 (n2 - 1)) / (n1 + n2 - 2))`, with
/// `n1`, `n2` the numbers of finite values.
///
/// When only one side has a CV (the other has fewer than 2 finite values or a
/// zero mean), that side's CV; `None` when neither has.
pub fn pooled_cv(a: &[f64], b: &[f64]) -> Option<f64> {
    let n1 = a.iter().filter(|x| x.is_finite()).count() as f64;
    let n2 = b.iter().filter(|x| x.is_finite()).count() as f64;
    match (sample_cv(a), sample_cv(b)) {
        (Some(c1), Some(c2)) => {
            let pooled = ((c1 * c1 * (n1 - 1.0) + c2 * c2 * (n2 - 1.0)) / (n1 + n2 - 2.0)).sqrt();
            pooled.is_finite().then_some(pooled)
        }
        (Some(c), None) | (None, Some(c)) => Some(c),
        (None, None) => None,
    }
}

/// Minimum detectable relative change of the median (0.07 = 7%) between two
/// samples of sizes `n1`, `n2` with per-sample coefficient of variation `cv`,
/// for a two-sided test at level `alpha` with probability `power` of catching it.
///
/// Uses the normal approximation of the Mann-Whitney test under a location
/// shift, whose efficiency relative to the t-test is 3/pi for normal data:
/// `(z_{1-alpha/2} + z_{power}) * cv * sqrt(pi/3) * sqrt(1/n1 + 1/n2)`.
///
/// `None` when `min_p_value(n1, n2) > alpha` (no change can ever be significant
/// with so few samples), when `cv` is negative or not finite, when `n1` or `n2`
/// is 0, when `alpha` or `power` is outside `(0, 1)`, or when `power` is so low
/// that the formula would give a change of zero or less.
pub fn min_detectable_change(cv: f64, n1: usize, n2: usize, alpha: f64, power: f64) -> Option<f64> {
    Detection::new(alpha, power)?.min_detectable_change(cv, n1, n2)
}

/// A test level and a power with their normal quantiles computed once, for
/// the many rows of a comparison that share them: the quantiles cost more
/// than the rest of a row's minimum detectable change.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    alpha: f64,
    /// Smallest `n` at which `n` against `n` samples can be significant.
    min_equal_n: usize,
    /// Normal quantile of `1 - alpha/2`.
    z_alpha: f64,
    /// Normal quantile of `power`.
    z_power: f64,
}

impl Detection {
    /// `None` when `alpha` or `power` is outside `(0, 1)`.
    pub fn new(alpha: f64, power: f64) -> Option<Detection> {
        let in_unit = |x: f64| x > 0.0 && x < 1.0;
        (in_unit(alpha) && in_unit(power)).then(|| Detection {
            alpha,
            // min_p_value(n, n) falls at least fourfold per step (C(2n, n) grows
            // so), so this stops within a few hundred steps for any alpha > 0.
            min_equal_n: (1..).find(|&n| can_be_significant(n, n, alpha)).unwrap_or(usize::MAX),
            z_alpha: normal_quantile(1.0 - alpha / 2.0),
            z_power: normal_quantile(power),
        })
    }

    /// The test level.
    pub fn alpha(&self) -> f64 {
        self.alpha
    }

    /// `min_p_value(n1, n2) <= alpha`: whether any change can be significant.
    pub fn can_be_significant(&self, n1: usize, n2: usize) -> bool {
        if n1 == n2 { n1 >= self.min_equal_n } else { can_be_significant(n1, n2, self.alpha) }
    }

    /// [`min_detectable_change`] at this level and power.
    pub fn min_detectable_change(&self, cv: f64, n1: usize, n2: usize) -> Option<f64> {
        if !self.can_be_significant(n1, n2) {
            return None;
        }
        mdc_with(cv, n1, n2, self.z_alpha, self.z_power)
    }

    /// [`repetitions_for`] at this level and power.
    pub fn repetitions_for(&self, cv: f64, change: f64, n_baseline: Option<usize>) -> Option<usize> {
        let detects = |n: usize| {
            let n1 = n_baseline.unwrap_or(n);
            self.min_detectable_change(cv, n1, n).is_some_and(|mdc| mdc <= change)
        };
        // The MDC only shrinks as n grows (and once defined stays defined), so the
        // answer is the boundary of a monotone predicate: bisect.
        if !detects(MAX_REPETITIONS) {
            return None;
        }
        let (mut lo, mut hi) = (0, MAX_REPETITIONS); // detects(lo) false (n = 0), detects(hi) true
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if detects(mid) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        Some(hi)
    }
}

/// `min_detectable_change` with the normal quantiles `z_alpha` (of
/// `1 - alpha/2`) and `z_power` already computed (a search over `n` computes
/// them once, not at every step), for sizes where a change can be significant.
fn mdc_with(cv: f64, n1: usize, n2: usize, z_alpha: f64, z_power: f64) -> Option<f64> {
    if !cv.is_finite() || cv < 0.0 || n1 == 0 || n2 == 0 {
        return None;
    }
    // Student-t rather than normal quantiles: at the 5-20 samples a gate
    // has, the normal formula overpromises (simulated power 0.88 instead of
    // 0.95 at 10 vs 10); the t correction brings it back to nominal.
    let df = n1.saturating_add(n2).saturating_sub(2).max(1) as f64;
    let z_sum = t_from_z(z_alpha, df) + t_from_z(z_power, df);
    if z_sum.is_nan() || z_sum <= 0.0 {
        return None;
    }
    let mdc = z_sum * cv * (PI / 3.0).sqrt() * (1.0 / n1 as f64 + 1.0 / n2 as f64).sqrt();
    mdc.is_finite().then_some(mdc)
}

/// `min_p_value(n1, n2) <= alpha`, without summing further than needed:
/// `ln C(n1 + n2, k)` only grows with each term, so the loop stops as soon
/// as it passes `ln(2 / alpha)` by a margin no rounding can cross; near the
/// boundary the answer is `min_p_value`'s own.
fn can_be_significant(n1: usize, n2: usize, alpha: f64) -> bool {
    let (k, other) = if n1 <= n2 { (n1, n2) } else { (n2, n1) };
    if k == 0 {
        return false;
    }
    let target = (2.0 / alpha).ln() + 1e-6;
    let mut ln_c = 0.0;
    for i in 1..=k {
        ln_c += ((other as f64 + i as f64) / i as f64).ln();
        if ln_c > target {
            return true;
        }
    }
    min_p_value(n1, n2) <= alpha
}

/// Quantile of Student's t distribution with `df` degrees of freedom, by the
/// Cornish-Fisher expansion around the normal quantile (Abramowitz & Stegun
/// 26.7.5); relative error below 1e-3 for `df >= 3`, exact as `df` grows.
pub fn student_t_quantile(p: f64, df: f64) -> f64 {
    t_from_z(normal_quantile(p), df)
}

/// The Cornish-Fisher step of `student_t_quantile`, from the normal quantile `z`.
fn t_from_z(z: f64, df: f64) -> f64 {
    if !(z.is_finite() && df.is_finite() && df > 0.0) {
        return z;
    }
    let (z2, v) = (z * z, df);
    let g1 = (z2 + 1.0) * z / 4.0;
    let g2 = ((5.0 * z2 + 16.0) * z2 + 3.0) * z / 96.0;
    let g3 = (((3.0 * z2 + 19.0) * z2 + 17.0) * z2 - 15.0) * z / 384.0;
    let g4 = ((((79.0 * z2 + 776.0) * z2 + 1482.0) * z2 - 1920.0) * z2 - 945.0) * z / 92160.0;
    z + g1 / v + g2 / (v * v) + g3 / (v * v * v) + g4 / (v * v * v * v)
}

/// Smallest sample size `n` at which `min_detectable_change` is at most `change`.
///
/// With `n_baseline` `None` both sides have `n` samples; with
/// `Some(nb)` the baseline keeps its `nb` samples and `n` is the size of the
/// current side. `None` when even 10 000 samples would not do (for instance a
/// baseline too small to ever reach `change`), or when the inputs make
/// `min_detectable_change` undefined.
pub fn repetitions_for(cv: f64, change: f64, alpha: f64, power: f64, n_baseline: Option<usize>) -> Option<usize> {
    Detection::new(alpha, power)?.repetitions_for(cv, change, n_baseline)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SplitMix64: a tiny deterministic generator, so simulations are reproducible.
    struct SplitMix64(u64);

    impl SplitMix64 {
        fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        /// Uniform in (0, 1).
        fn uniform(&mut self) -> f64 {
            ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        }

        /// Standard normal by Box-Muller.
        fn normal(&mut self) -> f64 {
            let (u1, u2) = (self.uniform(), self.uniform());
            (-2.0 * u1.ln()).sqrt() * (2.0 * PI * u2).cos()
        }

        fn normals(&mut self, n: usize, mean: f64, sd: f64) -> Vec<f64> {
            (0..n).map(|_| mean + sd * self.normal()).collect()
        }
    }

    fn close(actual: f64, expected: f64, rel: f64) -> bool {
        (actual - expected).abs() <= rel * expected.abs().max(f64::MIN_POSITIVE)
    }

    /// Exact two-sided p-value by enumerating every way of choosing which of
    /// the `n1 + n2` ranks belong to the first sample (no ties).
    fn enumerated_p(n1: usize, n2: usize, u_observed: f64) -> f64 {
        let n = n1 + n2;
        let centre = (n1 * n2) as f64 / 2.0;
        let distance = (u_observed - centre).abs();
        let (mut extreme, mut total) = (0u64, 0u64);
        for mask in 0u32..(1 << n) {
            if mask.count_ones() as usize != n1 {
                continue;
            }
            let rank_sum: usize = (0..n).filter(|i| mask & (1 << i) != 0).map(|i| i + 1).sum();
            let u = (rank_sum - n1 * (n1 + 1) / 2) as f64;
            total += 1;
            if (u - centre).abs() >= distance - 1e-9 {
                extreme += 1;
            }
        }
        (extreme as f64 / total as f64).min(1.0)
    }

    /// Lower tail counts of U in exact integers, the same recurrence without rounding.
    fn exact_lower_tail_i128(n1: usize, n2: usize, u_max: usize) -> (i128, i128) {
        let (m, n) = (n1.min(n2), n1.max(n2));
        let len = m * n + 1;
        let mut counts = vec![0i128; len];
        counts[0] = 1;
        for k in 1..=m {
            for j in (n + k..len).rev() {
                counts[j] -= counts[j - n - k];
            }
            for j in k..len {
                counts[j] += counts[j - k];
            }
        }
        (counts[..=u_max].iter().sum(), counts.iter().sum())
    }

    #[test]
    fn complete_separation_gives_the_smallest_exact_p() {
        let r = mann_whitney_u(&[1.0, 2.0, 3.0, 4.0, 5.0], &[6.0, 7.0, 8.0, 9.0, 10.0]).unwrap();
        assert_eq!(r.u, 0.0);
        assert!(r.exact);
        // scipy.stats.mannwhitneyu(..., method="exact") gives 0.007936507936507936 = 2/252.
        assert!(close(r.p_value, 2.0 / 252.0, 1e-12), "{r:?}");
        let flipped = mann_whitney_u(&[6.0, 7.0, 8.0, 9.0, 10.0], &[1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
        assert_eq!(flipped.u, 25.0);
        assert!(close(flipped.p_value, 2.0 / 252.0, 1e-12));
    }

    #[test]
    fn interleaved_samples_match_enumeration() {
        let r = mann_whitney_u(&[1.0, 3.0, 5.0], &[2.0, 4.0, 6.0]).unwrap();
        assert_eq!(r.u, 3.0);
        assert!(r.exact);
        // Of the C(6,3) = 20 rank sets, 14 have |U - 4.5| >= 1.5.
        assert!(close(enumerated_p(3, 3, 3.0), 0.7, 1e-12));
        assert!(close(r.p_value, 0.7, 1e-12), "{r:?}");
    }

    #[test]
    fn exact_p_matches_enumeration_on_random_samples() {
        let mut rng = SplitMix64(7);
        for &(n1, n2) in &[(1, 1), (1, 6), (2, 2), (3, 5), (4, 4), (5, 7), (6, 6), (8, 9), (10, 10)] {
            for _ in 0..5 {
                let a = rng.normals(n1, 0.3, 1.0);
                let b = rng.normals(n2, 0.0, 1.0);
                let r = mann_whitney_u(&a, &b).unwrap();
                assert!(r.exact);
                let expected = enumerated_p(n1, n2, r.u);
                assert!(close(r.p_value, expected, 1e-12), "{n1}x{n2}: {r:?} vs {expected}");
            }
        }
    }

    #[test]
    fn floating_point_tail_agrees_with_exact_integers() {
        // Up to n1 + n2 = 120 every count fits in i128; the f64 recurrence must
        // track it closely at every lower-tail point, tiny tails included.
        for &(n1, n2) in &[(5usize, 100usize), (20, 20), (30, 45), (50, 50), (60, 60)] {
            let half = n1 * n2 / 2;
            for u in [0, 1, 7, half / 4, half / 2, half * 3 / 4, half.saturating_sub(1), half] {
                let (tail, total) = exact_lower_tail_i128(n1, n2, u);
                let expected = tail as f64 / total as f64;
                let got = exact_lower_tail(n1, n2, u);
                assert!(close(got, expected, 1e-9), "{n1}x{n2} u={u}: {got} vs {expected}");
            }
        }
    }

    #[test]
    fn cached_tails_equal_the_direct_recurrence() {
        // More sizes than the cache keeps, twice over, so tables are evicted and rebuilt.
        for _ in 0..2 {
            for n1 in 1..=6 {
                for n2 in [1usize, 2, 3, 10, 31] {
                    for u in 0..=n1 * n2 {
                        let got = exact_lower_tail_cached(n1, n2, u);
                        assert_eq!(got, exact_lower_tail(n1, n2, u), "{n1}x{n2} u={u}");
                        assert_eq!(exact_lower_tail_cached(n2, n1, u), got, "{n2}x{n1} u={u}");
                    }
                }
            }
        }
    }

    #[test]
    fn detection_says_when_a_change_can_be_significant_as_min_p_value_does() {
        for alpha in [0.5, 0.05, 0.01, 1e-5, 0.01 / 1000.0, 1e-12, 1e-300] {
            let d = Detection::new(alpha, 0.95).unwrap();
            for n1 in 0..40 {
                for n2 in [0usize, 1, 2, 5, 9, 10, 11, 20, n1, 500] {
                    let expected = min_p_value(n1, n2) <= alpha;
                    assert_eq!(d.can_be_significant(n1, n2), expected, "alpha {alpha}, {n1} vs {n2}");
                    assert_eq!(can_be_significant(n1, n2, alpha), expected, "alpha {alpha}, {n1} vs {n2}");
                }
            }
        }
        // Exactly at the boundary: 2 / C(20, 10) is the smallest p of 10 against 10.
        let edge = min_p_value(10, 10);
        assert!(Detection::new(edge, 0.95).unwrap().can_be_significant(10, 10));
        assert!(!Detection::new(edge * 0.999_999, 0.95).unwrap().can_be_significant(10, 10));
    }

    #[test]
    fn exact_path_matches_scipy_on_a_larger_case() {
        let a: Vec<f64> = (0..60).map(|i| ((i * 7919) % 1000) as f64 / 10.0 + 0.001 * i as f64).collect();
        let b: Vec<f64> = (0..70).map(|i| ((i * 104729) % 997) as f64 / 10.0 + 5.0003 + 0.0001 * i as f64).collect();
        let r = mann_whitney_u(&a, &b).unwrap();
        assert!(r.exact);
        // scipy 1.17 mannwhitneyu(a, b, method="exact"): U = 1964, p = 0.528118786830732
        assert_eq!(r.u, 1964.0);
        assert!(close(r.p_value, 0.528118786830732, 1e-9), "{r:?}");
    }

    #[test]
    fn symmetric_in_its_arguments() {
        let mut rng = SplitMix64(11);
        for &(n1, n2) in &[(3, 4), (10, 10), (40, 60), (150, 120)] {
            let a = rng.normals(n1, 10.0, 1.0);
            let b = rng.normals(n2, 10.5, 1.0);
            let ab = mann_whitney_u(&a, &b).unwrap();
            let ba = mann_whitney_u(&b, &a).unwrap();
            assert!(close(ab.p_value, ba.p_value, 1e-12), "{ab:?} {ba:?}");
            assert_eq!(ab.u + ba.u, (n1 * n2) as f64);
        }
    }

    #[test]
    fn ties_use_the_corrected_normal_approximation() {
        let a = [1.0, 2.0, 2.0, 3.0, 4.0, 5.0, 5.0, 6.0];
        let b = [3.0, 4.0, 5.0, 6.0, 6.0, 7.0, 8.0, 9.0];
        let r = mann_whitney_u(&a, &b).unwrap();
        assert!(!r.exact);
        assert_eq!(r.u, 11.0);
        // scipy 1.17 mannwhitneyu(a, b, alternative="two-sided", method="asymptotic",
        // use_continuity=True) gives p = 0.029964585224922756. By hand: mean 32,
        // tie runs (2,2,2,3,3) give sum(t^3 - t) = 66, variance
        // 64/12 * (17 - 66/240) = 89.2, z = (21 - 0.5)/sqrt(89.2) = 2.17056.
        assert!(close(r.p_value, 0.029964585224922756, 1e-9), "{r:?}");
        let back = mann_whitney_u(&b, &a).unwrap();
        assert_eq!(back.u, 53.0);
        assert!(close(back.p_value, r.p_value, 1e-12));
    }

    #[test]
    fn many_pairs_use_the_normal_approximation() {
        let a: Vec<f64> = (0..150).map(|i| ((i * 7919) % 1000) as f64 / 10.0 + 0.001 * i as f64).collect();
        let b: Vec<f64> = (0..120).map(|i| ((i * 104729) % 997) as f64 / 10.0 + 5.0003 + 0.0001 * i as f64).collect();
        let r = mann_whitney_u(&a, &b).unwrap();
        assert!(!r.exact);
        // scipy 1.17, asymptotic with continuity: U = 8457, p = 0.39483476204878865
        assert_eq!(r.u, 8457.0);
        assert!(close(r.p_value, 0.39483476204878865, 1e-9), "{r:?}");
    }

    #[test]
    fn degenerate_inputs() {
        assert_eq!(mann_whitney_u(&[], &[1.0]), None);
        assert_eq!(mann_whitney_u(&[1.0], &[]), None);
        assert_eq!(mann_whitney_u(&[f64::NAN, f64::INFINITY], &[1.0, 2.0]), None);
        // Non-finite values are dropped, not ranked.
        let with_junk = mann_whitney_u(&[1.0, f64::NAN, 2.0, f64::NEG_INFINITY], &[3.0, 4.0, f64::INFINITY]).unwrap();
        let clean = mann_whitney_u(&[1.0, 2.0], &[3.0, 4.0]).unwrap();
        assert_eq!(with_junk, clean);
        // All values equal: no evidence either way.
        let same = mann_whitney_u(&[5.0; 4], &[5.0; 6]).unwrap();
        assert_eq!(same.p_value, 1.0);
        assert_eq!(same.u, 12.0);
        // U exactly at its mean: twice the lower tail exceeds 1 and is clamped.
        let balanced = mann_whitney_u(&[1.0, 4.0], &[2.0, 3.0]).unwrap();
        assert_eq!(balanced.p_value, 1.0);
        let big = mann_whitney_u(&vec![1.0; 5000], &vec![2.0; 5000]).unwrap();
        assert!(big.p_value >= 0.0 && big.p_value < 1e-100, "{big:?}");
    }

    #[test]
    fn rejection_rate_under_the_null_is_near_alpha() {
        let mut rng = SplitMix64(42);
        let trials = 2000;
        let rejected = (0..trials)
            .filter(|_| {
                let a = rng.normals(10, 100.0, 5.0);
                let b = rng.normals(10, 100.0, 5.0);
                mann_whitney_u(&a, &b).unwrap().p_value <= 0.05
            })
            .count();
        let rate = rejected as f64 / trials as f64;
        assert!((0.02..=0.08).contains(&rate), "rate {rate}");
    }

    /// Share of `trials` seeded simulations in which a relative shift of `shift`
    /// between normal samples with CV `cv` is significant at `alpha`.
    fn simulated_power(seed: u64, n: usize, cv: f64, shift: f64, alpha: f64, trials: usize) -> f64 {
        let mut rng = SplitMix64(seed);
        let rejected = (0..trials)
            .filter(|_| {
                let base = rng.normals(n, 100.0, 100.0 * cv);
                let current = rng.normals(n, 100.0 * (1.0 + shift), 100.0 * cv);
                mann_whitney_u(&base, &current).unwrap().p_value <= alpha
            })
            .count();
        rejected as f64 / trials as f64
    }

    #[test]
    fn minimum_detectable_change_is_detected_at_about_the_promised_power() {
        let (cv, alpha, power) = (0.05, 0.01, 0.95);
        let mdc = min_detectable_change(cv, 10, 10, alpha, power).unwrap();
        // (t(0.995, 18) + t(0.95, 18)) * 0.05 * sqrt(pi/3) * sqrt(0.2) = (2.8784 + 1.7341) * ...
        assert!(close(mdc, 0.10555, 2e-4), "mdc {mdc}");
        // With normal quantiles the same check caught only 0.8765 of these
        // changes; the t correction keeps the promise at small samples.
        let rate = simulated_power(2024, 10, cv, mdc, alpha, 2000);
        assert!((0.92..=0.98).contains(&rate), "power {rate} at n = 10");
        // ...and a change half that size is caught far less often, so
        // the MDC is not simply a loose overestimate.
        let half = simulated_power(2024, 10, cv, mdc / 2.0, alpha, 2000);
        assert!(half < 0.5, "power {half} at half the mdc");
        // With more samples too.
        let mdc_50 = min_detectable_change(cv, 50, 50, alpha, power).unwrap();
        let rate_50 = simulated_power(7, 50, cv, mdc_50, alpha, 1000);
        assert!((0.92..=0.98).contains(&rate_50), "power {rate_50} at n = 50");
    }

    #[test]
    fn student_t_quantiles() {
        // scipy.stats.t.ppf
        for (p, df, want) in
            [(0.975, 10.0, 2.228138852), (0.995, 18.0, 2.878440473), (0.95, 5.0, 2.015048373), (0.95, 1e9, 1.644853627)]
        {
            let got = student_t_quantile(p, df);
            assert!((got - want).abs() / want < 1e-3, "t({p}, {df}) = {got}, want {want}");
        }
        assert!(close(student_t_quantile(0.5, 7.0), 0.0, 1e-12));
        assert!(close(student_t_quantile(0.05, 12.0), -student_t_quantile(0.95, 12.0), 1e-12));
    }

    #[test]
    fn min_p_value_values_and_extremes() {
        assert!(close(min_p_value(5, 5), 2.0 / 252.0, 1e-12));
        assert_eq!(min_p_value(0, 3), 1.0);
        assert_eq!(min_p_value(3, 0), 1.0);
        assert_eq!(min_p_value(1, 1), 1.0);
        assert!(close(min_p_value(3, 3), 0.1, 1e-12));
        assert!(close(min_p_value(2, 7), min_p_value(7, 2), 1e-15));
        let big = min_p_value(200, 200);
        assert!((0.0..1e-100).contains(&big), "{big}");
        assert_eq!(min_p_value(usize::MAX, usize::MAX), 0.0);
        assert!(close(min_p_value(1, usize::MAX), 2.0 / usize::MAX as f64, 1e-12));
    }

    #[test]
    fn normal_cdf_matches_scipy() {
        // scipy.stats.norm.cdf
        let cases = [
            (1.96, 0.9750021048517795),
            (-1.96, 0.024997895148220435),
            (0.5, 0.6914624612740131),
            (-3.0, 0.0013498980316300933),
            (-6.0, 9.865876450376946e-10),
            (-10.0, 7.61985302416047e-24),
            (-20.0, 2.7536241186061556e-89),
            (-37.0, 5.7255712225239266e-300),
            (2.5, 0.9937903346742238),
            (8.0, 0.9999999999999993),
        ];
        for (x, expected) in cases {
            // Deep in the tail, rounding x^2 alone costs about x^2 * 1e-16 relative.
            let tolerance = if x < -20.0 { 1e-12 } else { 1e-13 };
            assert!(close(normal_cdf(x), expected, tolerance), "cdf({x}) = {} vs {expected}", normal_cdf(x));
        }
        assert_eq!(normal_cdf(0.0), 0.5);
        assert_eq!(normal_cdf(f64::INFINITY), 1.0);
        assert_eq!(normal_cdf(f64::NEG_INFINITY), 0.0);
        assert!(normal_cdf(f64::NAN).is_nan());
    }

    #[test]
    fn normal_quantile_matches_scipy_and_round_trips() {
        // scipy.stats.norm.ppf
        let cases = [
            (0.975, 1.959963984540054),
            (0.995, 2.5758293035489004),
            (0.95, 1.6448536269514722),
            (1e-10, -6.361340902404056),
            (1e-300, -37.0470962993612),
            (0.02, -2.053748910631823),
            (0.3, -0.5244005127080409),
            (0.99999, 4.264890793923841),
        ];
        for (p, expected) in cases {
            assert!(close(normal_quantile(p), expected, 1e-12), "q({p}) = {} vs {expected}", normal_quantile(p));
        }
        assert_eq!(normal_quantile(0.5), 0.0);
        for i in 1..1000 {
            let p = i as f64 / 1000.0;
            assert!(close(normal_cdf(normal_quantile(p)), p, 1e-12), "round trip at {p}");
        }
        for x in [-30.0, -8.0, -1.0, 0.25, 1.5] {
            assert!((normal_quantile(normal_cdf(x)) - x).abs() < 1e-9, "round trip at {x}");
        }
        assert_eq!(normal_quantile(0.0), f64::NEG_INFINITY);
        assert_eq!(normal_quantile(1.0), f64::INFINITY);
        assert!(normal_quantile(-0.1).is_nan());
        assert!(normal_quantile(1.1).is_nan());
        assert!(normal_quantile(f64::NAN).is_nan());
        assert!(normal_quantile(f64::MIN_POSITIVE * f64::EPSILON).is_finite());
    }

    #[test]
    fn robust_cv_examples() {
        // median 10, deviations [2,1,0,1,2] -> MAD 1
        let cv = robust_cv(&[8.0, 9.0, 10.0, 11.0, 12.0]).unwrap();
        assert!(close(cv, 0.14826, 1e-12), "{cv}");
        // An outlier barely moves it.
        let cv_outlier = robust_cv(&[8.0, 9.0, 10.0, 11.0, 1200.0]).unwrap();
        assert!(close(cv_outlier, 0.14826, 1e-12), "{cv_outlier}");
        // Even count: median 2.5, deviations [1.5, 0.5, 0.5, 1.5] -> MAD 1.
        let even = robust_cv(&[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert!(close(even, 1.4826 / 2.5, 1e-12), "{even}");
        // Sign of the median does not matter.
        assert!(close(robust_cv(&[-8.0, -9.0, -10.0, -11.0, -12.0]).unwrap(), 0.14826, 1e-12));
        assert_eq!(robust_cv(&[5.0, 5.0, 5.0]), Some(0.0));
        assert_eq!(robust_cv(&[]), None);
        assert_eq!(robust_cv(&[3.0]), None);
        assert_eq!(robust_cv(&[3.0, f64::NAN, f64::INFINITY]), None);
        assert_eq!(robust_cv(&[-1.0, 0.0, 1.0]), None);
        assert_eq!(robust_cv(&[-f64::MAX, -f64::MAX, 1.0, f64::MAX, f64::MAX]), None);
    }

    #[test]
    fn pooled_cv_examples() {
        let a = [8.0, 9.0, 10.0, 11.0, 12.0]; // mean 10, sample sd sqrt(2.5) -> cv 0.158114
        let b = [18.0, 19.0, 20.0, 21.0, 22.0, 20.0, 20.0]; // mean 20, sample sd sqrt(10/6) -> cv 0.0645497
        let (ca, cb) = (2.5f64.sqrt() / 10.0, (10.0f64 / 6.0).sqrt() / 20.0);
        assert!(close(sample_cv(&a).unwrap(), ca, 1e-12));
        assert!(close(sample_cv(&b).unwrap(), cb, 1e-12));
        let expected = ((ca.powi(2) * 4.0 + cb.powi(2) * 6.0) / 10.0).sqrt();
        assert!(close(pooled_cv(&a, &b).unwrap(), expected, 1e-12));
        assert!(close(pooled_cv(&b, &a).unwrap(), expected, 1e-12));
        assert!(close(pooled_cv(&a, &[7.0]).unwrap(), ca, 1e-12));
        assert!(close(pooled_cv(&[], &a).unwrap(), ca, 1e-12));
        assert_eq!(pooled_cv(&[1.0], &[f64::NAN, 2.0]), None);
        assert_eq!(sample_cv(&[1.0, -1.0]), None);
        assert_eq!(pooled_cv(&[], &[]), None);
    }

    #[test]
    fn min_detectable_change_cannot_judge() {
        // 3 vs 3: the smallest p is 0.1, so nothing is significant at 0.01.
        assert_eq!(min_detectable_change(0.05, 3, 3, 0.01, 0.95), None);
        assert!(min_detectable_change(0.05, 3, 3, 0.2, 0.95).is_some());
        assert_eq!(min_detectable_change(f64::NAN, 10, 10, 0.05, 0.95), None);
        assert_eq!(min_detectable_change(f64::INFINITY, 10, 10, 0.05, 0.95), None);
        assert_eq!(min_detectable_change(-0.1, 10, 10, 0.05, 0.95), None);
        assert_eq!(min_detectable_change(0.05, 0, 10, 0.05, 0.95), None);
        assert_eq!(min_detectable_change(0.05, 10, 0, 0.05, 0.95), None);
        assert_eq!(min_detectable_change(0.05, 10, 10, 0.0, 0.95), None);
        assert_eq!(min_detectable_change(0.05, 10, 10, 0.05, 1.0), None);
        assert_eq!(min_detectable_change(0.05, 10, 10, f64::NAN, 0.95), None);
        assert_eq!(min_detectable_change(0.05, 10, 10, 0.05, 1e-6), None);
        assert_eq!(min_detectable_change(0.0, 10, 10, 0.05, 0.95), Some(0.0));
        // Shrinks with more samples.
        let small = min_detectable_change(0.05, 10, 10, 0.05, 0.95).unwrap();
        let large = min_detectable_change(0.05, 40, 40, 0.05, 0.95).unwrap();
        // Four times the samples: half the change (a little less: the t quantiles shrink too).
        assert!(large < small / 2.0 && large > small * 0.45, "{large} vs {small}");
        assert!(min_detectable_change(0.05, usize::MAX, usize::MAX, 0.05, 0.95).unwrap() < 1e-9);
    }

    #[test]
    fn repetitions_for_is_the_smallest_sufficient_n() {
        let mdc = |cv, n1, n2| min_detectable_change(cv, n1, n2, 0.05, 0.8);
        for &(cv, change) in &[(0.05, 0.03), (0.1, 0.05), (0.02, 0.05), (0.3, 0.02), (0.01, 0.5)] {
            let n = repetitions_for(cv, change, 0.05, 0.8, None).unwrap();
            assert!(mdc(cv, n, n).unwrap() <= change, "cv {cv} change {change} n {n}");
            assert!(n == 1 || mdc(cv, n - 1, n - 1).is_none_or(|m| m > change), "n {n} not minimal");
        }
        let n = repetitions_for(0.05, 0.05, 0.05, 0.8, Some(20)).unwrap();
        assert!(mdc(0.05, 20, n).unwrap() <= 0.05);
        assert!(mdc(0.05, 20, n - 1).is_none_or(|m| m > 0.05));
        // The change cannot be reached when the baseline alone contributes too much noise.
        assert_eq!(repetitions_for(0.05, 0.02, 0.05, 0.8, Some(5)), None);
        assert_eq!(repetitions_for(0.05, 0.05, 0.05, 0.8, Some(0)), None);
        // With no noise the floor is set by min_p_value: 4 vs 4 gives 2/70 < 0.05.
        assert_eq!(repetitions_for(0.0, 0.0, 0.05, 0.8, None), Some(4));
        assert_eq!(repetitions_for(0.05, f64::NAN, 0.05, 0.8, None), None);
        assert_eq!(repetitions_for(0.05, -0.1, 0.05, 0.8, None), None);
        assert_eq!(repetitions_for(0.5, 1e-6, 0.05, 0.8, None), None);
    }
}
