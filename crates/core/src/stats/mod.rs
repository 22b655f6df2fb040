//! Pure statistics over samples: quantiles, mean, spread.
//!
//! Quantiles use linear interpolation between order statistics (numpy's
//! default, which vLLM's `bench serve` uses), so medians and p99s computed
//! here match the figures users already know.

pub mod changepoint;
pub mod dist;
pub mod multiplicity;
pub mod runlevel;
pub mod significance;

use serde::{Deserialize, Serialize};

/// Summary of one per-request metric over the requests of a phase.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Number of samples summarised.
    pub n: usize,
    /// Arithmetic mean.
    pub mean: f64,
    /// 50th percentile (linear interpolation).
    pub median: f64,
    /// Smallest sample.
    pub min: f64,
    /// Largest sample.
    pub max: f64,
    /// 90th percentile (linear interpolation).
    pub p90: f64,
    /// 99th percentile (linear interpolation).
    pub p99: f64,
    /// Population standard deviation (ddof = 0, as numpy's and vLLM's `std`).
    pub stddev: f64,
}

/// Summarises `values`; `None` when there is no finite sample to summarise.
/// Non-finite values are ignored: a summary never contains NaN.
pub fn summarize(values: &[f64]) -> Option<Summary> {
    let mut sorted: Vec<f64> = Vec::with_capacity(values.len());
    sorted.extend(values.iter().copied().filter(|v| v.is_finite()));
    if sorted.is_empty() {
        return None;
    }
    // Values equal under total_cmp are the same bits, so unstable sorting gives the same order.
    sorted.sort_unstable_by(f64::total_cmp);
    let n = sorted.len();
    // Scaled by the largest magnitude, so values near f64::MAX (a server's
    // absurd gauge) give a finite mean and spread instead of infinity, which
    // JSON cannot hold.
    let scale = sorted[0].abs().max(sorted[n - 1].abs()).max(f64::MIN_POSITIVE);
    let mean_scaled = sorted.iter().map(|v| v / scale).sum::<f64>() / n as f64;
    let mean = mean_scaled * scale;
    let var_scaled = sorted.iter().map(|v| (v / scale - mean_scaled).powi(2)).sum::<f64>() / n as f64;
    Some(Summary {
        n,
        mean,
        median: quantile_sorted(&sorted, 0.5),
        min: sorted[0],
        max: sorted[n - 1],
        p90: quantile_sorted(&sorted, 0.9),
        p99: quantile_sorted(&sorted, 0.99),
        stddev: (var_scaled.sqrt() * scale).min(f64::MAX),
    })
}

/// The `q`-quantile (`0 <= q <= 1`) of ascending, non-empty `sorted`, by linear
/// interpolation between the two nearest ranks.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    debug_assert!(!sorted.is_empty());
    let q = q.clamp(0.0, 1.0);
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let frac = pos - lo as f64;
    sorted[lo] + (sorted[hi] - sorted[lo]) * frac
}

/// Arithmetic mean of the finite values, `None` when there are none.
pub fn mean(values: &[f64]) -> Option<f64> {
    let (sum, n) = values.iter().filter(|v| v.is_finite()).fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_values_give_finite_figures() {
        let s = summarize(&[1e308, 1.7e308, 1e308]).unwrap();
        assert!(s.mean.is_finite() && s.stddev.is_finite(), "{s:?}");
        assert!((s.mean - 1.2333333333333334e308).abs() < 1e294, "{s:?}");
        let s = summarize(&[-1.7e308, 1.7e308]).unwrap();
        assert!(s.mean.abs() < 1e295 && s.stddev.is_finite(), "{s:?}");
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn matches_numpy_percentiles() {
        // numpy: np.percentile([1, 2, 3, 4, 10], [50, 90, 99]) == [3.0, 7.6, 9.76]
        let s = summarize(&[10.0, 1.0, 3.0, 2.0, 4.0]).unwrap();
        assert_eq!(s.n, 5);
        assert!(close(s.median, 3.0));
        assert!(close(s.p90, 7.6));
        assert!(close(s.p99, 9.76));
        assert!(close(s.mean, 4.0));
        assert!(close(s.min, 1.0) && close(s.max, 10.0));
        // np.std([1,2,3,4,10]) == 3.1622776601683795
        assert!(close(s.stddev, 3.1622776601683795));
    }

    #[test]
    fn even_count_median_interpolates() {
        let s = summarize(&[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert!(close(s.median, 2.5));
    }

    #[test]
    fn single_sample_has_zero_spread() {
        let s = summarize(&[7.5]).unwrap();
        assert!(close(s.median, 7.5) && close(s.p99, 7.5) && close(s.stddev, 0.0));
    }

    #[test]
    fn empty_and_non_finite_give_none() {
        assert!(summarize(&[]).is_none());
        assert!(summarize(&[f64::NAN, f64::INFINITY]).is_none());
        let s = summarize(&[f64::NAN, 2.0]).unwrap();
        assert_eq!(s.n, 1);
        assert_eq!(mean(&[]), None);
        assert_eq!(mean(&[1.0, f64::NAN, 3.0]), Some(2.0));
    }
}
