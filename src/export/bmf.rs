//! Bencher Metric Format (BMF) JSON: `{ benchmark: { measure: { value,
//! lower_value, upper_value } } }`, what `bencher run --adapter json --file`
//! reads. The benchmark is `<case>/<phase>`; the measures are the
//! catalogue's metrics under kebab-case slugs that carry their unit
//! (`tokens-per-second`, `ttft-median-ms`, `gpu-memory-peak-mib`). The
//! profile is not in the names: it is Bencher's testbed
//! (`bencher run --testbed PROFILE`), so one export holds one setup.

use std::collections::HashMap;

use serde::Serialize;
use serde::ser::SerializeMap as _;

use super::{ExportError, Figure, Run};
use crate::gate::metrics::MetricDef;

/// The longest benchmark name Bencher takes, in characters (its documentation).
pub const BENCHMARK_NAME_MAX: usize = 1024;

/// The longest measure slug Bencher takes, in characters (its documentation).
pub const SLUG_MAX: usize = 64;

/// The standard normal's 97.5th percentile: `value x exp(+-Z95 x spread)`
/// is the 95% interval of a run's statistic from its within-run spread.
const Z95: f64 = 1.959_963_984_540_054;

/// The Bencher measure slug of a metric: its name in kebab case, with
/// `-ms` where the name does not already say its unit.
pub fn slug(metric: &MetricDef) -> String {
    let name = metric.name.replace('_', "-");
    if metric.unit == "ms" { format!("{name}-ms") } else { name }
}

/// One measure's metric.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Metric {
    /// The run's statistic, or the median over the runs.
    pub value: f64,
    /// The low end of the 95% interval (one run), or the lowest run (several).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lower_value: Option<f64>,
    /// The high end of the 95% interval (one run), or the highest run (several).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upper_value: Option<f64>,
}

impl Metric {
    /// The metric of one run's figure, or of several runs' figures of one
    /// benchmark and measure; `None` without figures.
    pub fn of(points: &[f64], spread: Option<f64>) -> Option<Metric> {
        match points {
            [] => None,
            &[value] => {
                let interval = spread.filter(|s| s.is_finite() && *s >= 0.0).map(|s| {
                    let factor = (Z95 * s).exp();
                    (value / factor, value * factor)
                });
                let finite = interval.filter(|(lo, hi)| lo.is_finite() && hi.is_finite());
                Some(Metric { value, lower_value: finite.map(|i| i.0), upper_value: finite.map(|i| i.1) })
            }
            several => {
                let mut sorted = several.to_vec();
                sorted.sort_unstable_by(f64::total_cmp);
                let n = sorted.len();
                let median = if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0 };
                Some(Metric {
                    value: median,
                    lower_value: sorted.first().copied(),
                    upper_value: sorted.last().copied(),
                })
            }
        }
    }
}

/// A benchmark and its measures, in the order they were first seen.
type Benchmarks = Vec<(String, Vec<(String, Metric)>)>;

/// The BMF JSON of `runs`: one run, or several runs of one setup (same
/// profile, environment and suite) folded into one report.
pub fn render(runs: &[Run<'_>]) -> Result<Vec<u8>, ExportError> {
    one_setup(runs)?;
    // (benchmark, slug), in the order first seen, with the runs' values and
    // the first run's spread; indexed, since a suite may have a thousand cases.
    let mut keys: Vec<(String, String)> = Vec::new();
    let mut values: Vec<(Vec<f64>, Option<f64>)> = Vec::new();
    let mut index: HashMap<(String, String), usize> = HashMap::new();
    for run in runs {
        for Figure { case, phase, metric, point } in super::figures_of(run) {
            let name = format!("{case}/{}", phase.as_str());
            let len = name.chars().count();
            if len > BENCHMARK_NAME_MAX {
                return Err(ExportError::TooLong {
                    what: "the benchmark name",
                    name,
                    len,
                    limit: BENCHMARK_NAME_MAX,
                    consumer: "Bencher",
                });
            }
            let key = (name, slug(metric));
            match index.get(&key) {
                Some(&i) => values[i].0.push(point.value),
                None => {
                    index.insert(key.clone(), keys.len());
                    keys.push(key);
                    values.push((vec![point.value], point.spread));
                }
            }
        }
    }
    let mut benchmarks: Benchmarks = Vec::new();
    let mut position: HashMap<String, usize> = HashMap::new();
    for ((name, slug), (points, spread)) in keys.into_iter().zip(values) {
        let Some(metric) = Metric::of(&points, spread) else { continue };
        match position.get(&name) {
            Some(&i) => benchmarks[i].1.push((slug, metric)),
            None => {
                position.insert(name.clone(), benchmarks.len());
                benchmarks.push((name, vec![(slug, metric)]));
            }
        }
    }
    // Plain strings and finite numbers: serializing cannot fail.
    let mut out = crate::json::to_vec(&Document(&benchmarks)).unwrap_or_default();
    out.push(b'\n');
    Ok(out)
}

/// Several runs go into one report only when they are runs of one setup, each once.
fn one_setup(runs: &[Run<'_>]) -> Result<(), ExportError> {
    let Some(first) = runs.first() else { return Ok(()) };
    let env = crate::history::environment_fingerprint(first.results);
    for (i, run) in runs.iter().enumerate().skip(1) {
        let mixed = |what| ExportError::MixedSetups { first: first.origin.into(), second: run.origin.into(), what };
        if run.profile != first.profile {
            return Err(mixed("their profiles"));
        }
        if crate::history::environment_fingerprint(run.results) != env {
            return Err(mixed("their environments (GPU, driver, engine, model)"));
        }
        if run.results.suite.fingerprint != first.results.suite.fingerprint {
            return Err(mixed("their suites"));
        }
        if let Some(earlier) = runs[..i].iter().find(|r| r.results.run_id == run.results.run_id) {
            return Err(ExportError::Duplicate {
                first: earlier.origin.into(),
                second: run.origin.into(),
                what: format!("run {}", run.results.run_id),
                hint: "give each run once",
            });
        }
    }
    Ok(())
}

/// The document, serialized in the order the benchmarks and measures were seen.
struct Document<'a>(&'a Benchmarks);

struct Measures<'a>(&'a [(String, Metric)]);

impl Serialize for Document<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (name, measures) in self.0 {
            map.serialize_entry(name, &Measures(measures))?;
        }
        map.end()
    }
}

impl Serialize for Measures<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (slug, metric) in self.0 {
            map.serialize_entry(slug, metric)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::metrics::CATALOGUE;
    use crate::results::PhaseName;
    use infergate_core::testing::results;

    #[test]
    fn slugs_are_bencher_slugs_and_unique() {
        let slugs: Vec<String> = CATALOGUE.iter().map(slug).collect();
        for s in &slugs {
            assert!(s.len() <= SLUG_MAX && !s.is_empty(), "{s}");
            assert!(s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'), "{s}");
            assert!(!s.starts_with('-') && !s.ends_with('-') && !s.contains("--"), "{s}");
            assert_eq!(slugs.iter().filter(|t| *t == s).count(), 1, "{s}");
        }
        assert_eq!(slugs[0], "tokens-per-second");
        assert!(slugs.contains(&"ttft-median-ms".to_string()) && slugs.contains(&"gpu-memory-peak-mib".to_string()));
    }

    #[test]
    fn one_run_has_its_95_percent_interval_several_their_range() {
        let m = Metric::of(&[100.0], Some(0.01)).unwrap();
        assert_eq!(m.value, 100.0);
        let (lo, hi) = (m.lower_value.unwrap(), m.upper_value.unwrap());
        assert!((hi / 100.0 - (Z95 * 0.01).exp()).abs() < 1e-12 && (100.0 / lo - hi / 100.0).abs() < 1e-12);
        assert_eq!(Metric::of(&[7.0], None), Some(Metric { value: 7.0, lower_value: None, upper_value: None }));
        let m = Metric::of(&[3.0, 1.0, 2.0, 10.0], None).unwrap();
        assert_eq!((m.value, m.lower_value, m.upper_value), (2.5, Some(1.0), Some(10.0)));
        assert_eq!(Metric::of(&[], None), None);
    }

    #[test]
    fn a_run_becomes_benchmarks_per_case_and_phase() {
        let r = results(&["debugging/256", "code-review/512"], 3, 12, 1.0, 0.02);
        let out = render(&[Run { results: &r, profile: "p", origin: "r.json" }]).unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let warm = &doc["debugging/256/warm"];
        let record = crate::history::record_of(&r, "p", None, None);
        let tps = record.cases["debugging/256"][&PhaseName::Warm]["tokens_per_second"];
        assert_eq!(warm["tokens-per-second"]["value"].as_f64(), Some(tps.value));
        assert!(warm["tokens-per-second"]["lower_value"].as_f64().unwrap() < tps.value);
        // The cold phase is one request: no spread, no interval.
        let cold = &doc["code-review/512/cold"]["ttft-median-ms"];
        assert!(cold["value"].is_number() && cold.get("lower_value").is_none(), "{cold}");
        let text = String::from_utf8(out).unwrap();
        assert!(text.find("debugging/256/cold").unwrap() < text.find("code-review/512/cold").unwrap());
    }

    #[test]
    fn runs_of_one_setup_fold_and_others_are_refused() {
        let a = results(&["a/1"], 1, 12, 1.0, 0.02);
        let b = results(&["a/1"], 2, 12, 1.2, 0.02);
        let run = |r, profile, origin| Run { results: r, profile, origin };
        let out = render(&[run(&a, "p", "a.json"), run(&b, "p", "b.json")]).unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let m = &doc["a/1/warm"]["e2e-median-ms"];
        let va = crate::history::record_of(&a, "p", None, None).value("a/1", PhaseName::Warm, "e2e_median").unwrap();
        let vb = crate::history::record_of(&b, "p", None, None).value("a/1", PhaseName::Warm, "e2e_median").unwrap();
        assert_eq!(m["value"].as_f64(), Some((va + vb) / 2.0));
        assert_eq!(m["lower_value"].as_f64(), Some(va.min(vb)));
        let e = render(&[run(&a, "p", "a.json"), run(&b, "q", "b.json")]).unwrap_err();
        assert!(e.to_string().starts_with("a.json and b.json are not runs of one setup (their profiles"), "{e}");
        let mut other = b.clone();
        other.environment.server.model = "other".into();
        let e = render(&[run(&a, "p", "a.json"), run(&other, "p", "o.json")]).unwrap_err();
        assert!(e.to_string().contains("their environments"), "{e}");
        let e = render(&[run(&a, "p", "a.json"), run(&a, "p", "again.json")]).unwrap_err();
        assert_eq!(e.to_string(), "a.json and again.json both give run run1; give each run once");
    }

    #[test]
    fn an_overlong_case_id_is_refused() {
        let long = format!("{}/1", "x".repeat(1100));
        let r = results(&[&long], 1, 3, 1.0, 0.02);
        let e = render(&[Run { results: &r, profile: "p", origin: "r" }]).unwrap_err();
        assert!(matches!(e, ExportError::TooLong { limit: BENCHMARK_NAME_MAX, .. }), "{e}");
    }
}
