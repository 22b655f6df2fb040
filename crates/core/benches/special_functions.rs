//! The special functions of `stats::dist` against statrs', in nanoseconds
//! per call: why the normal quantile is statrs' and the t and chi-square
//! quantiles are not (their accuracy is measured by the ignored test
//! `stats::dist::tests::statrs_falls_short_of_the_references`).
//!
//! `cargo bench -p infergate-core --bench special_functions`
#![allow(clippy::unwrap_used, clippy::expect_used)] // A benchmark's own set-up.

use std::hint::black_box;
use std::time::Instant;

use infergate_core::stats::dist;
use statrs::distribution::{ChiSquared, ContinuousCDF, StudentsT};
use statrs::function::erf;

/// The best of five rounds of `n` calls, in nanoseconds per call: the
/// machine may be shared, and the fastest round is the least disturbed.
fn time(name: &str, n: usize, mut f: impl FnMut(usize) -> f64) {
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let start = Instant::now();
        let mut sum = 0.0;
        for i in 0..n {
            sum += f(i);
        }
        black_box(sum);
        best = best.min(start.elapsed().as_nanos() as f64 / n as f64);
    }
    println!("{name:<40} {best:>8.1} ns");
}

fn main() {
    let ps: Vec<f64> = (0..1000).map(|i| 1e-6 + f64::from(i) / 1000.0 * (1.0 - 2e-6)).collect();
    let xs: Vec<f64> = (0..1000).map(|i| -8.0 + 16.0 * f64::from(i) / 1000.0).collect();
    let dfs = [1.5, 3.0, 4.0, 9.0, 30.0, 200.0];
    let p = |i: usize| ps[i % 1000];
    let x = |i: usize| xs[i % 1000];
    let df = |i: usize| dfs[i % 6];
    time("normal quantile (statrs erfc_inv)", 400_000, |i| dist::normal_quantile(p(i)));
    time("normal sf (Mills ratio, here)", 400_000, |i| dist::normal_sf(x(i)));
    time("normal sf (statrs erfc)", 400_000, |i| 0.5 * erf::erfc(x(i) / std::f64::consts::SQRT_2));
    time("t sf (here)", 100_000, |i| dist::student_t_sf(x(i), df(i)));
    time("t sf (statrs StudentsT)", 100_000, |i| StudentsT::new(0.0, 1.0, df(i)).unwrap().sf(x(i)));
    time("t quantile (here)", 40_000, |i| dist::student_t_quantile(p(i), df(i)));
    time("t quantile (statrs StudentsT)", 40_000, |i| StudentsT::new(0.0, 1.0, df(i)).unwrap().inverse_cdf(p(i)));
    time("chi-square quantile (here)", 40_000, |i| dist::chi_square_quantile(p(i), df(i)));
    time("chi-square quantile (statrs ChiSquared)", 10_000, |i| ChiSquared::new(df(i)).unwrap().inverse_cdf(p(i)));
}
