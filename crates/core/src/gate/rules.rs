//! Tolerance rules: the `[gate]` table of `infergate.toml` and its defaults.
//!
//! ```toml
//! [gate]
//! significance = 0.01          # false-alarm budget of the whole run
//! phases = ["warm"]            # phases whose metrics are gated
//! max_error_rate = 0.0         # more failed requests make a case invalid
//! on_improvement = "report"    # or "require-update"
//! run_to_run_cv = "2%"         # drift between runs, for one-run baselines (from calibrate)
//!
//! [gate.metrics.ttft_median]
//! tolerance = "10%"            # relative change allowed in the bad direction
//! floor = 20.0                 # absolute changes below this (ms) are ignored
//! level = "fail"               # off | warn | fail
//!
//! [[gate.override]]
//! cases = "debugging/*"        # glob(s) over case ids
//! metric = "ttft_median"       # optional: all metrics when absent
//! tolerance = "15%"
//!
//! [gate.output_drift]
//! min_similarity = 0.9
//! level = "warn"
//! ```
//!
//! Resolution for a (case, metric): the catalogue default, then
//! `[gate.metrics.NAME]`, then every matching `[[gate.override]]` in file
//! order, each replacing only the fields it sets: the last match wins.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::Level;
use crate::filter::CaseFilter;
use crate::metrics::{self, MetricDef};
use crate::results::PhaseName;

/// A document holding only the `[gate]` table of a config file: what the
/// gate reads of `infergate.toml` (the application's config embeds
/// [`GateConfig`] under the same key).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateSection {
    /// The `[gate]` table.
    #[serde(default)]
    pub gate: GateConfig,
}

/// `[gate]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateConfig {
    /// Overall significance level (false-alarm budget of a run).
    pub significance: Option<Significance>,
    /// Phases whose metrics are gated.
    pub phases: Option<Vec<PhaseName>>,
    /// Largest error rate a case may have and still be judged.
    pub max_error_rate: Option<Fraction>,
    /// What improvements beyond tolerance do.
    pub on_improvement: Option<OnImprovement>,
    /// Run-to-run coefficient of variation of every metric, assumed when a
    /// comparison has one run on each side (no spread of runs to measure).
    pub run_to_run_cv: Option<Percent>,
    /// Per-metric rules.
    #[serde(default)]
    pub metrics: BTreeMap<MetricName, RuleConfig>,
    /// Per-case overrides, applied in order.
    #[serde(default, rename = "override")]
    pub overrides: Vec<OverrideConfig>,
    /// Output drift check.
    pub output_drift: Option<DriftConfig>,
}

/// `[gate.metrics.NAME]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Relative tolerance, `"5%"`.
    pub tolerance: Option<Percent>,
    /// Absolute floor in the metric's unit.
    pub floor: Option<NonNegative>,
    /// off | warn | fail.
    pub level: Option<Level>,
    /// Run-to-run coefficient of variation of this metric.
    pub run_to_run_cv: Option<Percent>,
}

/// `[[gate.override]]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverrideConfig {
    /// Comma-separated globs over case ids.
    pub cases: CaseFilter,
    /// The metric it applies to; every metric when absent.
    pub metric: Option<MetricName>,
    /// Relative tolerance.
    pub tolerance: Option<Percent>,
    /// Absolute floor.
    pub floor: Option<NonNegative>,
    /// Level.
    pub level: Option<Level>,
    /// Run-to-run coefficient of variation.
    pub run_to_run_cv: Option<Percent>,
}

/// `[gate.output_drift]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriftConfig {
    /// Similarity ratio (0..1) below which the output counts as drifted.
    pub min_similarity: Option<Fraction>,
    /// off | warn | fail.
    pub level: Option<Level>,
}

/// What an improvement beyond tolerance does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnImprovement {
    /// Report it; the job passes.
    #[default]
    Report,
    /// Fail the job until the baseline is updated, so the gain is locked in.
    RequireUpdate,
}

/// A metric name from the catalogue.
#[derive(Debug, Clone, Copy)]
pub struct MetricName(pub &'static MetricDef);

impl<'de> Deserialize<'de> for MetricName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        metrics::find(&s).map(MetricName).ok_or_else(|| {
            serde::de::Error::custom(format!("unknown metric `{s}`; known metrics: {}", metrics::names()))
        })
    }
}

// Names are unique in the catalogue, so they identify a metric.
impl PartialEq for MetricName {
    fn eq(&self, other: &Self) -> bool {
        self.0.name == other.0.name
    }
}
impl Eq for MetricName {}
impl PartialOrd for MetricName {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for MetricName {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.name.cmp(other.0.name)
    }
}

/// The largest relative tolerance: 1000%. A gate that allows more checks nothing.
pub const MAX_PERCENT: f64 = 10.0;

/// A relative tolerance or coefficient of variation written `"5%"` (0% to
/// 1000%), kept as a fraction (0.05). Built only through [`Percent::parse`]
/// (`TryFrom<&str>`, serde) or [`Percent::from_fraction`], which check it.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(try_from = "String")]
pub struct Percent(f64);

impl Percent {
    /// Parses `"5%"` or `"2.5 %"`.
    pub fn parse(s: &str) -> Result<Percent, String> {
        parse_percent(s).map(Percent)
    }

    /// A fraction (0.05 for 5%) from 0 to 10.
    pub fn from_fraction(v: f64) -> Result<Percent, String> {
        if v.is_finite() && (0.0..=MAX_PERCENT).contains(&v) {
            Ok(Percent(v))
        } else {
            Err(format!("a percentage must be from 0% to 1000%, got {}%", crate::limits::show(v * 100.0)))
        }
    }

    /// The fraction: 0.05 for `"5%"`.
    pub fn fraction(self) -> f64 {
        self.0
    }
}

impl TryFrom<&str> for Percent {
    type Error = String;

    fn try_from(s: &str) -> Result<Self, String> {
        Percent::parse(s)
    }
}

impl TryFrom<String> for Percent {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        Percent::parse(&s)
    }
}

/// Parses `"5%"` or `"2.5 %"` into 0.05 / 0.025 (0% to 1000%).
pub fn parse_percent(s: &str) -> Result<f64, String> {
    let num =
        s.trim().strip_suffix('%').ok_or_else(|| format!("`{s}` is not a percentage; write it like \"5%\""))?.trim();
    let v: f64 = num.parse().map_err(|_| format!("`{s}` is not a percentage; write it like \"5%\""))?;
    if !v.is_finite() || v < 0.0 {
        return Err(format!("`{s}` must be a percentage of 0% or more"));
    }
    if v > MAX_PERCENT * 100.0 {
        return Err(format!("`{s}` is above 1000%: a gate that allows that much checks nothing"));
    }
    Ok(v / 100.0)
}

/// A finite number >= 0 (an absolute floor in a metric's unit).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(try_from = "f64")]
pub struct NonNegative(f64);

impl NonNegative {
    /// `v` when it is finite and 0 or more.
    pub fn new(v: f64) -> Result<NonNegative, String> {
        if v.is_finite() && v >= 0.0 {
            Ok(NonNegative(v))
        } else {
            Err(format!("must be a number of 0 or more, got {}", crate::limits::show(v)))
        }
    }

    /// The number.
    pub fn get(self) -> f64 {
        self.0
    }
}

impl TryFrom<f64> for NonNegative {
    type Error = String;

    fn try_from(v: f64) -> Result<Self, String> {
        NonNegative::new(v)
    }
}

/// A number from 0 to 1 (an error rate, a similarity).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(try_from = "f64")]
pub struct Fraction(f64);

impl Fraction {
    /// `v` when it is from 0 to 1.
    pub fn new(v: f64) -> Result<Fraction, String> {
        if (0.0..=1.0).contains(&v) {
            Ok(Fraction(v))
        } else {
            Err(format!("must be between 0 and 1, got {}", crate::limits::show(v)))
        }
    }

    /// The number.
    pub fn get(self) -> f64 {
        self.0
    }
}

impl TryFrom<f64> for Fraction {
    type Error = String;

    fn try_from(v: f64) -> Result<Self, String> {
        Fraction::new(v)
    }
}

/// A significance level: above 0, at most 0.5.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(try_from = "f64")]
pub struct Significance(f64);

impl Significance {
    /// `v` when it is above 0 and at most 0.5.
    pub fn new(v: f64) -> Result<Significance, String> {
        if v > 0.0 && v <= 0.5 {
            Ok(Significance(v))
        } else {
            Err(format!("must be above 0 and at most 0.5 (e.g. 0.01), got {}", crate::limits::show(v)))
        }
    }

    /// The level.
    pub fn get(self) -> f64 {
        self.0
    }
}

impl TryFrom<f64> for Significance {
    type Error = String;

    fn try_from(v: f64) -> Result<Self, String> {
        Significance::new(v)
    }
}

/// One resolved rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rule {
    /// Relative tolerance.
    pub tolerance: f64,
    /// Absolute floor.
    pub floor: f64,
    /// Level.
    pub level: Level,
    /// Run-to-run coefficient of variation to assume with one run a side.
    pub run_to_run_cv: Option<f64>,
}

/// The resolved rules of a gate.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    /// Overall significance level.
    pub significance: f64,
    /// Gated phases.
    pub phases: Vec<PhaseName>,
    /// Largest tolerated error rate.
    pub max_error_rate: f64,
    /// What improvements do.
    pub on_improvement: OnImprovement,
    /// Output similarity below which the output drifted.
    pub drift_min_similarity: f64,
    /// Level of output drift.
    pub drift_level: Level,
    metrics: BTreeMap<&'static str, Rule>,
    overrides: Vec<OverrideConfig>,
}

impl Default for Rules {
    fn default() -> Self {
        Rules::from_config(&GateConfig::default())
    }
}

impl Rules {
    /// Resolves `[gate]` over the defaults.
    pub fn from_config(c: &GateConfig) -> Rules {
        let mut metrics = BTreeMap::new();
        for def in metrics::CATALOGUE {
            let mut rule = Rule {
                tolerance: def.tolerance,
                floor: def.floor,
                level: def.level,
                run_to_run_cv: c.run_to_run_cv.map(Percent::fraction),
            };
            if let Some(r) = c.metrics.get(&MetricName(def)) {
                apply(&mut rule, r.tolerance, r.floor, r.level, r.run_to_run_cv);
            }
            metrics.insert(def.name, rule);
        }
        Rules {
            significance: c.significance.map_or(0.01, Significance::get),
            phases: c.phases.clone().unwrap_or_else(|| vec![PhaseName::Warm]),
            max_error_rate: c.max_error_rate.map_or(0.0, Fraction::get),
            on_improvement: c.on_improvement.unwrap_or_default(),
            drift_min_similarity: c.output_drift.as_ref().and_then(|d| d.min_similarity).map_or(0.9, Fraction::get),
            drift_level: c.output_drift.as_ref().and_then(|d| d.level).unwrap_or(Level::Warn),
            metrics,
            overrides: c.overrides.clone(),
        }
    }

    /// The rule for `metric` in case `case_id`.
    pub fn rule_for(&self, case_id: &str, metric: &MetricDef) -> Rule {
        let mut rule = self.metrics.get(metric.name).copied().unwrap_or(Rule {
            tolerance: metric.tolerance,
            floor: metric.floor,
            level: metric.level,
            run_to_run_cv: None,
        });
        for o in &self.overrides {
            let metric_matches = o.metric.as_ref().is_none_or(|m| m.0.name == metric.name);
            let case_matches = o.cases.matches(case_id);
            if metric_matches && case_matches {
                apply(&mut rule, o.tolerance, o.floor, o.level, o.run_to_run_cv);
            }
        }
        rule
    }
}

fn apply(
    rule: &mut Rule,
    tolerance: Option<Percent>,
    floor: Option<NonNegative>,
    level: Option<Level>,
    run_to_run_cv: Option<Percent>,
) {
    if let Some(cv) = run_to_run_cv {
        rule.run_to_run_cv = Some(cv.fraction());
    }
    if let Some(t) = tolerance {
        rule.tolerance = t.fraction();
    }
    if let Some(f) = floor {
        rule.floor = f.get();
    }
    if let Some(l) = level {
        rule.level = l;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tomldoc::parse_toml;

    fn rules(text: &str) -> Result<Rules, String> {
        let c: GateSection = parse_toml(text, "infergate.toml")?;
        Ok(Rules::from_config(&c.gate))
    }

    fn m(name: &str) -> &'static MetricDef {
        metrics::find(name).unwrap()
    }

    #[test]
    fn defaults_match_the_documented_policy() {
        let r = Rules::default();
        assert_eq!(r.significance, 0.01);
        assert_eq!(r.phases, vec![PhaseName::Warm]);
        assert_eq!(r.max_error_rate, 0.0);
        let tps = r.rule_for("a/1", m("tokens_per_second"));
        assert_eq!((tps.tolerance, tps.level), (0.05, Level::Fail));
        let ttft = r.rule_for("a/1", m("ttft_median"));
        assert_eq!((ttft.tolerance, ttft.floor, ttft.level), (0.10, 20.0, Level::Fail));
        for name in ["e2e_median", "tpot_median"] {
            assert_eq!(r.rule_for("a/1", m(name)).tolerance, 0.10);
        }
        for name in ["ttft_p99", "tpot_p99", "e2e_p99"] {
            let rule = r.rule_for("a/1", m(name));
            assert_eq!((rule.tolerance, rule.level), (0.20, Level::Warn));
        }
    }

    #[test]
    fn metric_rules_and_overrides_resolve_last_match_wins() {
        let r = rules(
            r#"
[gate.metrics.ttft_median]
tolerance = "15%"
[[gate.override]]
cases = "debugging/*"
tolerance = "30%"
[[gate.override]]
cases = "debugging/76800, code-review/*"
metric = "ttft_median"
level = "warn"
"#,
        )
        .unwrap();
        let ttft = m("ttft_median");
        assert_eq!(r.rule_for("architecture-design/12800", ttft).tolerance, 0.15);
        let d = r.rule_for("debugging/12800", ttft);
        assert_eq!((d.tolerance, d.level), (0.30, Level::Fail));
        let d = r.rule_for("debugging/76800", ttft);
        assert_eq!((d.tolerance, d.level), (0.30, Level::Warn), "fields merge, the later override wins per field");
        assert_eq!(r.rule_for("code-review/1", ttft).level, Level::Warn);
        assert_eq!(r.rule_for("code-review/1", m("tokens_per_second")).level, Level::Fail);
        assert_eq!(r.rule_for("debugging/1", m("tokens_per_second")).tolerance, 0.30);
    }

    #[test]
    fn illegal_values_name_the_key() {
        let cases: &[(&str, &[&str])] = &[
            (
                "[gate.metrics.ttft_median]\ntolerance = \"-5%\"\n",
                &["infergate.toml:2", "gate.metrics.ttft_median.tolerance", "0% or more"],
            ),
            ("[gate.metrics.ttft_median]\ntolerance = 5\n", &["infergate.toml:2", "tolerance"]),
            ("[gate.metrics.ttft_median]\ntolerance = \"five\"\n", &["infergate.toml:2", "\"5%\""]),
            (
                "[gate.metrics.ttft_mean]\nlevel = \"warn\"\n",
                &["infergate.toml:1", "unknown metric `ttft_mean`", "ttft_median"],
            ),
            ("[gate.metrics.ttft_median]\ntolerence = \"5%\"\n", &["infergate.toml:2", "tolerence"]),
            ("[gate.metrics.ttft_median]\nlevel = \"loud\"\n", &["infergate.toml:2", "level", "fail"]),
            ("[gate]\nsignificance = 2\n", &["infergate.toml:2", "gate.significance"]),
            ("[gate]\nphases = [\"hot\"]\n", &["infergate.toml:2", "gate.phases"]),
            ("[[gate.override]]\nmetric = \"ttft_median\"\n", &["infergate.toml:1", "cases"]),
            ("[[gate.override]]\ncases = \"*\"\nmetric = \"nope\"\n", &["infergate.toml:3", "unknown metric"]),
            ("[gate]\non_improvement = \"ignore\"\n", &["infergate.toml:2", "require-update"]),
            ("[gate.output_drift]\nmin_similarity = 1.5\n", &["infergate.toml:2", "between 0 and 1"]),
            (
                "[[gate.override]]\ncases = \"a/*,,b/*\"\n",
                &["infergate.toml:2", "gate.override", "cases", "empty pattern"],
            ),
            ("[[gate.override]]\ncases = \" \"\n", &["infergate.toml:2", "cases", "no case pattern"]),
            ("[gate.metrics.ttft_median]\nfloor = -1\n", &["infergate.toml:2", "floor", "0 or more, got -1"]),
            ("[gate]\nsignificance = 0\n", &["infergate.toml:2", "at most 0.5", "got 0"]),
        ];
        for (text, fragments) in cases {
            let err = rules(text).unwrap_err();
            for f in *fragments {
                assert!(err.contains(f), "error for {text:?} lacks {f:?}: {err}");
            }
        }
    }

    #[test]
    fn percent_parsing() {
        assert_eq!(parse_percent("5%"), Ok(0.05));
        assert_eq!(parse_percent(" 2.5 % "), Ok(0.025));
        assert_eq!(parse_percent("0%"), Ok(0.0));
        assert!(parse_percent("5").is_err());
        assert!(parse_percent("-1%").is_err());
        assert!(parse_percent("NaN%").is_err());
        assert!(parse_percent("5000%").is_err());
    }

    #[test]
    fn validated_numbers_are_built_only_in_range() {
        assert_eq!(Percent::parse("5%").unwrap().fraction(), 0.05);
        assert_eq!(Percent::try_from("1000%").unwrap().fraction(), 10.0);
        assert_eq!(Percent::from_fraction(0.1).unwrap(), Percent::parse("10%").unwrap());
        for v in [-0.01, 10.01, f64::NAN, f64::INFINITY] {
            assert!(Percent::from_fraction(v).unwrap_err().contains("from 0% to 1000%"), "{v}");
        }
        assert!(Percent::try_from(String::from("-5%")).unwrap_err().contains("0% or more"));
        assert_eq!(NonNegative::new(0.0).unwrap().get(), 0.0);
        assert_eq!(NonNegative::try_from(-1.0).unwrap_err(), "must be a number of 0 or more, got -1");
        assert!(NonNegative::new(f64::INFINITY).is_err());
        assert_eq!(Fraction::new(1.0).unwrap().get(), 1.0);
        assert_eq!(Fraction::try_from(1.5).unwrap_err(), "must be between 0 and 1, got 1.5");
        assert!(Fraction::new(f64::NAN).is_err());
        assert_eq!(Significance::new(0.5).unwrap().get(), 0.5);
        assert!(Significance::try_from(0.0).unwrap_err().contains("above 0 and at most 0.5"));
        assert!(Significance::new(0.51).is_err() && Significance::new(f64::NAN).is_err());
    }
}
