//! The two-sided Mann-Whitney U test on per-request samples.
//!
//! It decided the verdict before the run became the unit
//! ([`super::runlevel`]); it treats requests as independent replicates, so
//! on a runner that drifts between launches it calls the drift significant.
//! It is kept to measure exactly that: the Monte Carlo's "before" column
//! (`infergate_sim::montecarlo::before_verdict`). Pure, never panics, `None` when it
//! cannot judge.

use super::dist::normal_cdf;

/// Above this many pairs `n1 * n2` the exact null distribution of U is not
/// computed. The computation costs about `min(n1, n2) * n1 * n2` additions,
/// which at this bound is under a millisecond optimised (about 10 ms in a
/// debug build); beyond it the normal approximation is already accurate.
const EXACT_MAX_PAIRS: usize = 10_000;

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

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` normal values with `mean` and `sd`.
    fn normals(rng: &mut crate::rng::Rng, n: usize, mean: f64, sd: f64) -> Vec<f64> {
        (0..n).map(|_| mean + sd * rng.normal()).collect()
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
        let mut rng = crate::rng::Rng::new(7);
        for &(n1, n2) in &[(1, 1), (1, 6), (2, 2), (3, 5), (4, 4), (5, 7), (6, 6), (8, 9), (10, 10)] {
            for _ in 0..5 {
                let a = normals(&mut rng, n1, 0.3, 1.0);
                let b = normals(&mut rng, n2, 0.0, 1.0);
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
        let mut rng = crate::rng::Rng::new(11);
        for &(n1, n2) in &[(3, 4), (10, 10), (40, 60), (150, 120)] {
            let a = normals(&mut rng, n1, 10.0, 1.0);
            let b = normals(&mut rng, n2, 10.5, 1.0);
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
        let mut rng = crate::rng::Rng::new(42);
        let trials = 2000;
        let rejected = (0..trials)
            .filter(|_| {
                let a = normals(&mut rng, 10, 100.0, 5.0);
                let b = normals(&mut rng, 10, 100.0, 5.0);
                mann_whitney_u(&a, &b).unwrap().p_value <= 0.05
            })
            .count();
        let rate = rejected as f64 / trials as f64;
        assert!((0.02..=0.08).contains(&rate), "rate {rate}");
    }

    /// Share of `trials` seeded simulations in which a relative shift of `shift`
    /// between normal samples with CV `cv` is significant at `alpha`.

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
}
