//! One run of main as a line of history (`infergate.history.v1`): per case,
//! phase and metric the run's statistic, how many requests it rests on and
//! its within-run spread, with the commit, ref, time and fingerprints that
//! say what was measured. Pure: the application appends these records to a
//! store and reads them back; [`crate::stats::changepoint`] finds the steps
//! in their series, and [`trend`] sums up where main went over its last runs
//! for the pull-request comment.

pub mod trend;

pub mod spread;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::baseline::Fingerprint;
use crate::metrics::{CATALOGUE, Source};
use crate::results::{PhaseName, Results};
use crate::stats::runlevel::RunValue;

/// Schema identifier of history records.
pub const SCHEMA: &str = "infergate.history.v1";

/// One run, one line of a profile's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryRecord {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// The profile (GPU x model x server) the run belongs to.
    pub profile: String,
    /// The run's id (from its results file).
    pub run_id: String,
    /// The commit measured (`--commit`, else the results' git commit).
    pub commit: Option<String>,
    /// The ref it was measured on, e.g. `refs/heads/main`.
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
    /// When the run finished (RFC 3339, UTC).
    pub time: String,
    /// The infergate version that measured it.
    pub tool_version: String,
    /// Fingerprint of the environment (GPU, driver, server, model): runs
    /// with different fingerprints are not one series.
    pub environment: String,
    /// Fingerprint of the suite (its cases and prompts).
    pub suite: String,
    /// Case id -> phase -> metric -> point.
    pub cases: BTreeMap<String, BTreeMap<PhaseName, BTreeMap<String, Point>>>,
}

/// One metric of one phase of one case in one run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Point {
    /// The run's statistic (the catalogue's: a median, a p99, a GPU figure), in the metric's unit.
    pub value: f64,
    /// Requests it rests on (0 for GPU figures).
    pub n: usize,
    /// Standard deviation of `ln(value)` within the run (its sampling error),
    /// where the run has enough requests to estimate it.
    pub spread: Option<f64>,
}

/// A short, stable fingerprint of what a run measured on: the baseline
/// fingerprint's fields (GPU, driver, memory, power limit, MIG, engine,
/// model, API) as text. Equal texts, one series.
pub fn environment_fingerprint(results: &Results) -> String {
    let f = Fingerprint::of(results);
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "?".into());
    let num = |v: Option<u64>| v.map_or_else(|| "?".into(), |x| x.to_string());
    format!(
        "{}|{}|{}|{}|{}|{}|{}|{}",
        opt(&f.gpu_name),
        f.gpu_driver.as_deref().and_then(|d| d.split('.').next()).unwrap_or("?"),
        num(f.gpu_memory_mib),
        num(f.gpu_power_limit_w.map(u64::from)),
        num(f.gpu_count.map(u64::from)),
        opt(&f.engine),
        f.model,
        f.api
    )
}

/// The record of one run. `commit` and `git_ref` override what the results
/// say (CI knows the commit it checked out).
pub fn record_of(results: &Results, profile: &str, commit: Option<&str>, git_ref: Option<&str>) -> HistoryRecord {
    let mut cases = BTreeMap::new();
    for case in &results.cases {
        let mut phases = BTreeMap::new();
        for (&name, phase) in &case.phases {
            let mut metrics = BTreeMap::new();
            for def in CATALOGUE {
                let point = match def.source {
                    Source::Requests { series, statistic } => {
                        RunValue::of(&series.samples(&phase.requests), statistic.quantile()).map(|v| Point {
                            value: v.value,
                            n: v.n,
                            spread: v.within.map(f64::sqrt),
                        })
                    }
                    Source::Gpu(stat) => {
                        phase.gpu.as_ref().and_then(|g| stat.of(g)).map(|value| Point { value, n: 0, spread: None })
                    }
                };
                if let Some(point) = point.filter(|p| p.value.is_finite()) {
                    metrics.insert(def.name.to_string(), point);
                }
            }
            if !metrics.is_empty() {
                phases.insert(name, metrics);
            }
        }
        if !phases.is_empty() {
            cases.insert(case.id.clone(), phases);
        }
    }
    HistoryRecord {
        schema: SCHEMA.into(),
        profile: profile.into(),
        run_id: results.run_id.clone(),
        commit: commit.map(str::to_string).or_else(|| results.environment.git_commit.clone()),
        git_ref: git_ref.map(str::to_string),
        time: results.finished_at.clone(),
        tool_version: results.environment.tool_version.clone(),
        environment: environment_fingerprint(results),
        suite: results.suite.fingerprint.clone(),
        cases,
    }
}

impl HistoryRecord {
    /// The value of one metric of one phase of one case, if the run has it.
    pub fn value(&self, case: &str, phase: PhaseName, metric: &str) -> Option<f64> {
        self.cases.get(case)?.get(&phase)?.get(metric).map(|p| p.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::results;

    #[test]
    fn a_record_holds_every_request_metric_of_every_phase() {
        let r = results(&["a/1", "b/2"], 7, 12, 1.0, 0.02);
        let rec = record_of(&r, "p", Some("abc1234"), Some("refs/heads/main"));
        assert_eq!(rec.schema, SCHEMA);
        assert_eq!(rec.commit.as_deref(), Some("abc1234"));
        assert_eq!(rec.cases.len(), 2);
        let warm = &rec.cases["a/1"][&PhaseName::Warm];
        let tps = warm["tokens_per_second"];
        assert_eq!(tps.n, 12);
        assert!(tps.value > 0.0 && tps.spread.is_some_and(|s| s > 0.0 && s < 0.1), "{tps:?}");
        // The cold phase is one request: a value, no within-run spread.
        let cold = &rec.cases["a/1"][&PhaseName::Cold]["ttft_median"];
        assert_eq!((cold.n, cold.spread), (1, None));
        let line = serde_json::to_string(&rec).unwrap();
        assert!(line.contains("\"ref\":\"refs/heads/main\"") && !line.contains('\n'));
        let back: HistoryRecord = serde_json::from_str(&line).unwrap();
        assert_eq!(back, rec);
        assert_eq!(rec.value("a/1", PhaseName::Warm, "tokens_per_second"), Some(tps.value));
    }

    #[test]
    fn the_environment_fingerprint_changes_with_the_model() {
        let a = results(&["a/1"], 1, 5, 1.0, 0.02);
        let mut b = a.clone();
        assert_eq!(environment_fingerprint(&a), environment_fingerprint(&b));
        b.environment.server.model = "other".into();
        assert_ne!(environment_fingerprint(&a), environment_fingerprint(&b));
    }
}
