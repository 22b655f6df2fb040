//! One false-alarm budget over many tests that share a run's drift.
//!
//! The gate tests every case and metric of a run, up to thousands of
//! one-sided tests, and promises one false-alarm rate `alpha` for the whole
//! run. Those tests are not independent: the current run's drift (clocks,
//! thermals, the server launch) moves every case of a metric family at
//! once. Under "no change" each standardized statistic is modelled as
//!
//! ```text
//! T_j = lambda_j Z_f + sqrt(1 - lambda_j^2) E_j
//! ```
//!
//! with `Z_f ~ N(0, 1)` the family's shared drift (one draw per family),
//! `E_j ~ N(0, 1)` independent, and the *load* `lambda_j^2` the share of
//! test `j`'s variance that is shared. A test alarms when `T_j > c`, and the
//! common critical value `c` solves
//!
//! ```text
//! 1 - prod_f E_Z[ prod_{j in f} Phi((c - lambda_j Z) / sqrt(1 - lambda_j^2)) ] = alpha.
//! ```
//!
//! Families are independent of each other; positive dependence between them
//! could only lower the real rate, so that is the conservative choice.
//! Treating the tests as independent (Sidak) would spend the budget on
//! false alarms that cannot happen separately, and a drifting runner would
//! make the gate blind; counting them as one test would ignore the
//! independent part. Between those, the value above is exact for the model.
//!
//! How it is computed, and why:
//!
//! - Loads are rounded **down** onto 64 bins, so a family of 1,000 cases
//!   costs no more than 64 distinct loads. Down is the conservative
//!   direction: the `T_j` are jointly normal with correlations
//!   `lambda_i lambda_j`, and by Slepian's inequality the probability that
//!   none exceeds `c` grows with every correlation; lower loads therefore
//!   give a false-alarm rate at least as high, a `c` at least as large, and
//!   a true rate at most `alpha`. Rounding up would do the opposite.
//! - Tests with load 0 do not depend on `Z`; their factor `Phi(c)^n` leaves
//!   the integral.
//! - The integral over `Z` is composite 16-point Gauss-Legendre on panels
//!   sized to the sharpest load active there: a load near 1 makes its factor
//!   fall from 1 to 0 over a `Z` range of about `sqrt(1 - load)`, so a fixed
//!   grid fine enough for it (Gauss-Hermite or a trapezoid rule would need
//!   steps of 0.01) would waste thousands of nodes where nothing happens.
//!   A bin only costs evaluations where its factor differs from 1 by more
//!   than 1e-17 per test, and the integral stops where the product is below
//!   1e-19. Products are sums of `ln Phi`, and the alarm part `1 - product`
//!   is integrated directly, so small budgets keep their relative precision
//!   (1e-11 or better in our checks against a trapezoid rule of step 0.002).
//!   A family of 1,000 tests whose loads fill all 64 bins costs about 1 ms;
//!   one whose loads share a few bins, well under 0.1 ms.
//! - `c` lies between `Phi^-1(1 - alpha)` (one test alone alarms that often)
//!   and the Sidak value (the tests are positively dependent), and is found
//!   by Halley's method on `ln(-ln P(no alarm))`, nearly linear in `c`, from
//!   the Sidak end, with bisection as the safeguard; the integral gives the
//!   derivatives too (from the same normal tails), and about 3 evaluations
//!   reach 1e-10 in `c`.

use super::dist;

/// Largest load a test may have. A load of 1 would make a test's only
/// randomness the shared drift, and the formula degenerates (a step function
/// in `Z`, division by `sqrt(1 - load) = 0`); 0.995 keeps the factor's width
/// in `Z` at 0.07 or more, and a test whose variance is 99.5% shared is,
/// for the budget, already the same test as its family.
pub const MAX_LOAD: f64 = 0.995;

/// Number of load bins over `[0, MAX_LOAD]`.
pub const LOAD_BINS: usize = 64;

/// Gauss-Legendre nodes and weights on `[-1, 1]`, 16 points, the positive
/// half (numpy `polynomial.legendre.leggauss(16)`).
const GAUSS_LEGENDRE_16: [(f64, f64); 8] = [
    (0.09501250983763744, 0.18945061045506864),
    (0.2816035507792589, 0.18260341504492364),
    (0.45801677765722737, 0.16915651939500265),
    (0.6178762444026438, 0.1495959888165767),
    (0.755404408355003, 0.12462897125553407),
    (0.8656312023878318, 0.0951585116824926),
    (0.9445750230732326, 0.062253523938647456),
    (0.9894009349916499, 0.027152459411754176),
];

/// A panel spans at most this many of its sharpest active bin's widths
/// `sqrt(1 - load) / sqrt(load)` (and of the normal density's width 1).
/// 2 keeps the relative error of the alarm probability near 1e-11 (2.5
/// would let it reach 1e-8 for loads near `MAX_LOAD`).
const PANEL_SCALES: f64 = 2.0;

/// Below `u = (c - lambda z) / s` of this, a bin's `ln Phi(u)` is counted;
/// above it, `P(Z > u) < 1e-17` per test and the factor is taken as 1.
const U_ACTIVE: f64 = 8.5;

/// A Halley step on the critical value smaller than this ends the search:
/// the error left is of the order of its cube.
const STEP_DONE: f64 = 1e-5;

/// Where one bin's `u` falls below `-U_GONE`, its factor `Phi(u) < 1e-19`
/// and so is the family's product: the rest of the line is all alarm.
const U_GONE: f64 = 9.0;

/// The integral over `Z` covers `[-Z_MAX, Z_MAX]`; the normal mass outside
/// is below 1e-17 on each side (counted as alarm above, dropped below).
const Z_MAX: f64 = 8.5;

/// `1 / sqrt(2 pi)`.
const FRAC_1_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

/// The tests of one metric family: how many there are at each (binned) load.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Family {
    /// `(load, tests)` for each occupied bin, ascending; the load is the
    /// bin's lower edge.
    bins: Vec<(f64, usize)>,
    tests: usize,
}

impl Family {
    /// A family from its tests' loads (the shared share of each test's
    /// variance, `lambda^2`). Each load is clamped into `[0, MAX_LOAD]` and
    /// rounded down to a multiple of `MAX_LOAD / LOAD_BINS`, the conservative
    /// direction (see the module notes); a non-finite load counts as 0, no
    /// sharing, which is conservative too.
    pub fn new(loads: impl IntoIterator<Item = f64>) -> Family {
        let mut counts = [0usize; LOAD_BINS + 1];
        let mut tests = 0;
        for load in loads {
            let load = if load.is_finite() { load.clamp(0.0, MAX_LOAD) } else { 0.0 };
            // The float quotient can land one bin high; the edge check puts it back below the load.
            let mut i = ((load / MAX_LOAD * LOAD_BINS as f64).floor() as usize).min(LOAD_BINS);
            while i > 0 && bin_edge(i) > load {
                i -= 1;
            }
            if let Some(c) = counts.get_mut(i) {
                *c += 1;
                tests += 1;
            }
        }
        let bins = counts.iter().enumerate().filter(|(_, n)| **n > 0).map(|(i, n)| (bin_edge(i), *n)).collect();
        Family { bins, tests }
    }

    /// Number of tests in the family.
    pub fn tests(&self) -> usize {
        self.tests
    }

    /// `(load, tests)` for each occupied bin, ascending; each load is the
    /// bin's lower edge, at or below the loads it stands for.
    pub fn bins(&self) -> &[(f64, usize)] {
        &self.bins
    }
}

/// Lower edge of load bin `i` (`i = LOAD_BINS` is `MAX_LOAD` itself).
fn bin_edge(i: usize) -> f64 {
    // Division by a power of two is exact, so the last edge is MAX_LOAD exactly.
    i as f64 * MAX_LOAD / LOAD_BINS as f64
}

/// One loaded bin, as the integral uses it.
#[derive(Debug, Clone, Copy)]
struct Bin {
    lambda: f64,
    /// `sqrt(1 - load)`.
    s: f64,
    tests: f64,
    /// Width of the bin's factor in `Z`: `s / lambda`.
    scale: f64,
}

/// The tests of all families, ready to integrate.
struct Model {
    /// Tests with load 0, of every family: independent of any drift.
    independent: f64,
    /// The loaded bins of each family that has any.
    families: Vec<Vec<Bin>>,
    tests: usize,
}

impl Model {
    fn new(families: &[Family]) -> Model {
        let mut independent = 0.0;
        let mut loaded = Vec::new();
        let mut tests = 0;
        for family in families {
            tests += family.tests;
            let mut bins = Vec::new();
            for &(load, n) in &family.bins {
                if load > 0.0 {
                    let (lambda, s) = (load.sqrt(), (1.0 - load).sqrt());
                    bins.push(Bin { lambda, s, tests: n as f64, scale: s / lambda });
                } else {
                    independent += n as f64;
                }
            }
            if !bins.is_empty() {
                loaded.push(bins);
            }
        }
        Model { independent, families: loaded, tests }
    }

    /// `-ln P(no alarm)` at critical value `c`, and its first and second
    /// derivatives in `c`.
    fn neg_ln_no_alarm(&self, c: f64) -> [f64; 3] {
        let (ln_cdf, hazard) = dist::normal_ln_cdf_and_hazard(c);
        let mut value = -self.independent * ln_cdf;
        let mut first = -self.independent * hazard;
        // d/du of pdf(u) / cdf(u) is -h (u + h).
        let mut second = self.independent * hazard * (c + hazard);
        for bins in &self.families {
            let [alarm, d1, d2] = family_alarm(bins, c);
            let none = 1.0 - alarm;
            value -= (-alarm).ln_1p();
            first -= d1 / none;
            second -= d2 / none - (d1 / none) * (d1 / none);
        }
        [value, first, second]
    }
}

/// For one family's loaded bins at critical value `c`: the probability that
/// some test alarms, `B = E_Z[1 - prod_k Phi(u_k)^n_k]`, and the first two
/// derivatives in `c` of the probability that none does, `E_Z[prod L']` and
/// `E_Z[prod (L'^2 + L'')]`, where `L = ln prod` and `u_k = (c - lambda_k Z) / s_k`.
fn family_alarm(bins: &[Bin], c: f64) -> [f64; 3] {
    // Where each bin starts to matter (u_k < U_ACTIVE) and where it has
    // driven the product to 0 (u_k < -U_GONE); outside, nothing to integrate.
    let start = |b: &Bin| (c - U_ACTIVE * b.s) / b.lambda;
    let gone = |b: &Bin| (c + U_GONE * b.s) / b.lambda;
    let z_start = bins.iter().map(start).fold(f64::INFINITY, f64::min).max(-Z_MAX);
    let z_end = bins.iter().map(gone).fold(Z_MAX, f64::min);
    // Beyond z_end every draw alarms.
    let mut alarm = dist::normal_sf(z_end);
    let (mut first, mut second) = (0.0, 0.0);
    // Per bin at this c: u = offset - slope z, and the weight of its hazard, so
    // that the inner loop has no division.
    let terms: Vec<Term> = bins
        .iter()
        .map(|b| Term { offset: c / b.s, slope: b.lambda / b.s, tests: b.tests, per_s: 1.0 / b.s })
        .collect();
    let mut z = z_start;
    while z < z_end {
        let mut width = PANEL_SCALES.min(z_end - z);
        for b in bins {
            if start(b) < z + width && gone(b) > z {
                width = width.min(PANEL_SCALES * b.scale);
            }
        }
        let next = (z + width).min(z_end);
        if next <= z {
            break;
        }
        let (mid, half) = (0.5 * (z + next), 0.5 * (next - z));
        for &(x, w) in &GAUSS_LEGENDRE_16 {
            for node in [mid - half * x, mid + half * x] {
                let [ln_product, d1, d2] = ln_product(&terms, node);
                let density = w * half * (-0.5 * node * node).exp() * FRAC_1_SQRT_2PI;
                alarm += density * -ln_product.exp_m1();
                let weighted = density * ln_product.exp();
                first += weighted * d1;
                second += weighted * (d1 * d1 + d2);
            }
        }
        z = next;
    }
    [alarm.min(1.0), first, second]
}

/// One bin at a given `c`: `u = offset - slope z`.
struct Term {
    offset: f64,
    slope: f64,
    tests: f64,
    /// `1 / s`, the derivative of `u` in `c`.
    per_s: f64,
}

/// `ln prod_k Phi(u_k)^n_k` at drift `z`, and its first two derivatives in `c`.
fn ln_product(terms: &[Term], z: f64) -> [f64; 3] {
    let (mut sum, mut first, mut second) = (0.0, 0.0, 0.0);
    for t in terms {
        let u = t.offset - t.slope * z;
        if u < U_ACTIVE {
            let (ln_cdf, hazard) = dist::normal_ln_cdf_and_hazard(u);
            let weight = t.tests * t.per_s;
            sum += t.tests * ln_cdf;
            first += weight * hazard;
            second -= weight * t.per_s * hazard * (u + hazard);
        }
    }
    [sum, first, second]
}

/// The probability that at least one test of `families` alarms when each
/// is held against the common critical value `c` (families independent,
/// loads as binned). `None` without tests or for NaN `c`.
pub fn false_alarm_rate(families: &[Family], c: f64) -> Option<f64> {
    let model = Model::new(families);
    if model.tests == 0 || c.is_nan() {
        return None;
    }
    let [neg_ln, _, _] = model.neg_ln_no_alarm(c);
    Some(-(-neg_ln).exp_m1())
}

/// The common one-sided critical value `c` at which the probability that any
/// test of any family exceeds it is `alpha` (see the module notes).
///
/// `None` when `alpha` is not in `(0, 1)` or there are no tests. The result
/// lies between `Phi^-1(1 - alpha)` and the Sidak value `Phi^-1((1 -
/// alpha)^(1/m))` for `m` tests, and equals the latter when no test has a
/// load. Accurate to about 1e-9; a few milliseconds at most for 4 families
/// of 1,000 tests.
pub fn critical_value(families: &[Family], alpha: f64) -> Option<f64> {
    if !(alpha > 0.0 && alpha < 1.0) {
        return None;
    }
    let model = Model::new(families);
    if model.tests == 0 {
        return None;
    }
    // -ln(1 - alpha): the target of -ln P(no alarm).
    let target = -(-alpha).ln_1p();
    let single = -dist::normal_quantile(alpha);
    // Sidak: P(Z > c) = 1 - (1 - alpha)^(1/m), formed without cancellation.
    let sidak = -dist::normal_quantile(-(-target / model.tests as f64).exp_m1());
    if model.families.is_empty() || model.tests == 1 || sidak.is_nan() || sidak <= single {
        return Some(sidak);
    }
    // Halley on g(c) = ln(-ln P(no alarm; c)) - ln(target), decreasing in c.
    let ln_target = target.ln();
    let (mut lo, mut hi) = (single, sidak);
    let mut c = sidak;
    for _ in 0..100 {
        let [value, d1, d2] = model.neg_ln_no_alarm(c);
        let g = value.ln() - ln_target;
        if g.is_nan() {
            break;
        }
        if g > 0.0 {
            lo = c;
        } else {
            hi = c;
        }
        // g' = d1 / value and g'' = d2 / value - g'^2.
        let g1 = d1 / value;
        let g2 = d2 / value - g1 * g1;
        let newton = g / g1;
        let k = 0.5 * newton * g2 / g1;
        let step = -if k.abs() < 0.5 { newton / (1.0 - k) } else { newton };
        if step.abs() < STEP_DONE {
            // Halley converges cubically: the error left is about step^3.
            c += step;
            break;
        }
        let next = c + step;
        if next > lo && next < hi {
            c = next;
        } else {
            c = 0.5 * (lo + hi);
            if hi - lo < 1e-10 {
                break;
            }
        }
    }
    Some(c.clamp(single, sidak))
}

/// The one-sided level each single test is run at, `P(Z > c)` for the
/// [`critical_value`] `c`: a test whose p-value is below it alarms. `None`
/// as for [`critical_value`].
pub fn test_level(families: &[Family], alpha: f64) -> Option<f64> {
    critical_value(families, alpha).map(dist::normal_sf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sidak(alpha: f64, m: usize) -> f64 {
        -dist::normal_quantile(-((-alpha).ln_1p() / m as f64).exp_m1())
    }

    #[test]
    fn without_loads_it_is_sidak() {
        // scipy.stats.norm.isf(1 - (1 - 0.05) ** (1 / 1000)) == 3.8843975012075656
        let families = vec![Family::new(vec![0.0; 600]), Family::new(vec![0.0; 400])];
        let c = critical_value(&families, 0.05).unwrap_or(f64::NAN);
        assert!((c - 3.8843975012075656).abs() < 1e-7, "{c}");
        // Loads below the first bin edge round down to 0: also Sidak.
        // scipy.stats.norm.isf(1 - (1 - 0.01) ** (1 / 37)) == 3.4585023069084135
        let c = critical_value(&[Family::new(vec![0.01; 37])], 0.01).unwrap_or(f64::NAN);
        assert!((c - 3.4585023069084135).abs() < 1e-7, "{c}");
    }

    #[test]
    fn fully_shared_drift_is_nearly_one_test() {
        // Exact for 1,000 tests at load 0.995 (lambda = sqrt(0.995)), by scipy.integrate.quad of
        // 1 - E_Z[Phi((c - lambda Z) / sqrt(0.005))^1000] and scipy.optimize.brentq:
        // 1.8704527555329935 at alpha = 0.05 (norm.isf(0.05) == 1.6448536269514729),
        // 2.5504575334123647 at alpha = 0.01 (norm.isf(0.01) == 2.3263478740408408).
        let family = [Family::new(vec![0.995; 1000])];
        for (alpha, expected, single) in
            [(0.05, 1.8704527555329935, 1.6448536269514729), (0.01, 2.5504575334123647, 2.3263478740408408)]
        {
            let c = critical_value(&family, alpha).unwrap_or(f64::NAN);
            assert!((c - expected).abs() < 1e-8, "alpha {alpha}: {c} vs {expected}");
            assert!(c > single && c < sidak(alpha, 1000), "{c}");
        }
        // Above MAX_LOAD is the same as MAX_LOAD.
        let clamped = critical_value(&[Family::new(vec![1.0; 1000])], 0.05);
        assert_eq!(clamped, critical_value(&family, 0.05));
    }

    #[test]
    fn a_mix_matches_a_simulation() {
        // Loads on bin edges, so the simulation and the integral see the same model.
        let edge = |i: usize| i as f64 * MAX_LOAD / LOAD_BINS as f64;
        let loads_a: Vec<f64> = [10, 10, 30, 30, 30, 50, 50, 63, 63, 64, 0, 0].into_iter().map(edge).collect();
        let loads_b: Vec<f64> = [20, 40, 40, 60, 60, 60, 64, 5].into_iter().map(edge).collect();
        let families = [Family::new(loads_a.clone()), Family::new(loads_b.clone())];
        let alpha = 0.05;
        let c = critical_value(&families, alpha).unwrap_or(f64::NAN);
        let rate = false_alarm_rate(&families, c).unwrap_or(f64::NAN);
        assert!((rate - alpha).abs() < 1e-9 * alpha, "{rate}");
        let mut rng = crate::rng::Rng::new(20_240_611);
        let draws = 200_000;
        let mut alarms = 0usize;
        for _ in 0..draws {
            let mut any = false;
            for loads in [&loads_a, &loads_b] {
                let z = rng.normal();
                for &load in loads {
                    let t = load.sqrt() * z + (1.0 - load).sqrt() * rng.normal();
                    any |= t > c;
                }
            }
            alarms += usize::from(any);
        }
        let observed = alarms as f64 / draws as f64;
        let se = (alpha * (1.0 - alpha) / draws as f64).sqrt();
        assert!((observed - alpha).abs() < 4.0 * se, "simulated {observed} vs {alpha} (se {se}, c {c})");
        // Treating the tests as independent would have been visibly conservative here.
        assert!(c < sidak(alpha, 20) - 0.05, "{c}");
    }

    #[test]
    fn more_sharing_lowers_the_critical_value() {
        let mut last = f64::INFINITY;
        for load in [0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 0.98, 0.995] {
            let c = critical_value(&[Family::new(vec![load; 50])], 0.05).unwrap_or(f64::NAN);
            assert!(c < last, "load {load}: {c} not below {last}");
            last = c;
        }
        assert!(last > -dist::normal_quantile(0.05));
    }

    #[test]
    fn two_families_need_more_than_one() {
        // The same 40 tests, sharing one drift or split over two independent ones.
        let one = [Family::new(vec![0.8; 40])];
        let two = [Family::new(vec![0.8; 20]), Family::new(vec![0.8; 20])];
        let (c1, c2) = (critical_value(&one, 0.05), critical_value(&two, 0.05));
        let (Some(c1), Some(c2)) = (c1, c2) else { panic!("{c1:?} {c2:?}") };
        assert!(c1 < c2 && c2 < sidak(0.05, 40), "{c1} {c2}");
        // Two identical independent families at alpha: one of them at 1 - sqrt(1 - alpha).
        let single_family = critical_value(&[Family::new(vec![0.8; 20])], 1.0 - (0.95f64).sqrt());
        assert!(single_family.is_some_and(|c| (c - c2).abs() < 1e-8), "{single_family:?} {c2}");
    }

    #[test]
    fn edge_cases() {
        let families = [Family::new([0.5, 0.7])];
        for alpha in [0.0, 1.0, -0.1, 1.5, f64::NAN, f64::INFINITY] {
            assert_eq!(critical_value(&families, alpha), None, "alpha {alpha}");
            assert_eq!(test_level(&families, alpha), None, "alpha {alpha}");
        }
        assert_eq!(critical_value(&[], 0.05), None);
        assert_eq!(critical_value(&[Family::new([]), Family::default()], 0.05), None);
        assert_eq!(false_alarm_rate(&[], 1.0), None);
        assert_eq!(false_alarm_rate(&families, f64::NAN), None);
        // One test: its own one-sided quantile, whatever its load.
        let c = critical_value(&[Family::new([0.9])], 0.05).unwrap_or(f64::NAN);
        assert!((c - 1.6448536269514729).abs() < 1e-12, "{c}");
        // Extreme budgets still give finite values inside the bounds.
        for alpha in [1e-12, 0.5, 0.999] {
            let c = critical_value(&families, alpha).unwrap_or(f64::NAN);
            assert!(c >= -dist::normal_quantile(alpha) && c <= sidak(alpha, 2), "alpha {alpha}: {c}");
        }
    }

    #[test]
    fn loads_are_binned_down() {
        let family = Family::new([0.5, 0.5, f64::NAN, f64::INFINITY, -0.3, 2.0, 0.995, 0.0]);
        assert_eq!(family.tests(), 8);
        let width = MAX_LOAD / LOAD_BINS as f64;
        let bins = family.bins();
        assert_eq!(bins.first(), Some(&(0.0, 4)), "non-finite, negative and zero loads count as 0: {bins:?}");
        assert_eq!(bins.last(), Some(&(MAX_LOAD, 2)), "{bins:?}");
        let (half, n) = bins[1];
        assert!(half <= 0.5 && half > 0.5 - width && n == 2, "{bins:?}");
        // Every edge maps to itself, every load just below an edge to the edge below it.
        for i in 0..=LOAD_BINS {
            let edge = i as f64 * MAX_LOAD / LOAD_BINS as f64;
            assert_eq!(Family::new([edge]).bins(), &[(edge, 1)]);
            if i > 0 {
                let below = Family::new([edge * (1.0 - 1e-15)]);
                assert!(below.bins()[0].0 < edge, "edge {i}");
            }
        }
    }

    #[test]
    fn a_thousand_tests_in_four_families() {
        // Loads spread over every bin: the worst case for the integral's cost.
        let spread: Vec<f64> = (0..1000).map(|i| MAX_LOAD * i as f64 / 1000.0).collect();
        let families: Vec<Family> = (0..4).map(|_| Family::new(spread.clone())).collect();
        let alpha = 0.05;
        let c = critical_value(&families, alpha).unwrap_or(f64::NAN);
        assert!(c > -dist::normal_quantile(alpha) && c < sidak(alpha, 4000), "{c}");
        let rate = false_alarm_rate(&families, c).unwrap_or(f64::NAN);
        assert!((rate - alpha).abs() < 1e-9 * alpha, "{rate}");
        let level = test_level(&families, alpha).unwrap_or(f64::NAN);
        assert_eq!(level, dist::normal_sf(c));
        // Less than the Sidak level would give, more than alpha / m.
        assert!(level > 1.0 - (1.0 - alpha).powf(1.0 / 4000.0) && level < alpha);
    }
}
