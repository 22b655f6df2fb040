//! OpenMetrics text: one gauge family per catalogue metric,
//! `infergate_<metric>_<unit>` in base units as OpenMetrics asks (seconds,
//! not milliseconds; bytes, not MiB; ratios, not percent), one sample per
//! run, case and phase labelled `profile`, `case`, `phase`, `run_id`,
//! `model` and `engine`, and `# EOF` at the end. No timestamps: the
//! Pushgateway and node_exporter's textfile collector refuse them, and both
//! read this text (their Prometheus text parser takes `# UNIT` and `# EOF`
//! as comments).

use std::fmt::Write as _;

use super::{ExportError, Run, number};
use crate::gate::metrics::{CATALOGUE, MetricDef};

/// The prefix of every family.
pub const PREFIX: &str = "infergate_";

/// A catalogue metric as an OpenMetrics family.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    /// The family name, ending in its unit.
    pub name: String,
    /// The unit (`seconds`, `bytes`, `ratio`, `joules`, `tokens_per_second`).
    pub unit: &'static str,
    /// What a catalogue value is divided by to be in `unit` (1000 for ms).
    pub divisor: f64,
}

/// The family of a catalogue metric; `None` for a unit this exporter does
/// not know (a test holds every catalogue metric to one it knows).
pub fn family(metric: &MetricDef) -> Option<Family> {
    let name = metric.name;
    let (base, unit, divisor) = match metric.unit {
        "ms" => (name, "seconds", 1000.0),
        "tok/s" => (name.strip_suffix("_tokens_per_second").unwrap_or(name), "tokens_per_second", 1.0),
        "MiB" => (name.strip_suffix("_mib").unwrap_or(name), "bytes", 1.0 / 1_048_576.0),
        "%" => (name.strip_suffix("_pct").unwrap_or(name), "ratio", 100.0),
        "J" => (name.strip_suffix("_j").unwrap_or(name), "joules", 1.0),
        _ => return None,
    };
    // `tokens_per_second` itself: the whole name is the unit.
    let name = if base == "tokens_per_second" { format!("{PREFIX}{unit}") } else { format!("{PREFIX}{base}_{unit}") };
    Some(Family { name, unit, divisor })
}

impl Family {
    /// `value` (in the catalogue's unit) in the family's unit.
    pub fn convert(&self, value: f64) -> f64 {
        // Dividing by 1000 gives the nearest double to ms/1000; multiplying
        // by 0.001 would not.
        if self.divisor >= 1.0 { value / self.divisor } else { value * (1.0 / self.divisor) }
    }
}

/// A label value or help text with `\`, `"` and line feeds escaped.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// The OpenMetrics text of `runs`.
pub fn render(runs: &[Run<'_>]) -> Result<Vec<u8>, ExportError> {
    for (i, run) in runs.iter().enumerate() {
        if let Some(earlier) =
            runs[..i].iter().find(|r| r.results.run_id == run.results.run_id && r.profile == run.profile)
        {
            return Err(ExportError::Duplicate {
                first: earlier.origin.into(),
                second: run.origin.into(),
                what: format!("run {} of profile {}", run.results.run_id, run.profile),
                hint: "a sample's labels must be unique; give each run once",
            });
        }
    }
    let figures: Vec<(Run<'_>, Vec<super::Figure<'_>>)> = runs.iter().map(|r| (*r, super::figures_of(r))).collect();
    let mut out = String::new();
    for metric in CATALOGUE {
        let Some(family) = family(metric) else { continue };
        let mut samples = String::new();
        for (run, figs) in &figures {
            let server = &run.results.environment.server;
            for f in figs.iter().filter(|f| f.metric.name == metric.name) {
                let _ = writeln!(
                    samples,
                    "{}{{profile=\"{}\",case=\"{}\",phase=\"{}\",run_id=\"{}\",model=\"{}\",engine=\"{}\"}} {}",
                    family.name,
                    escape(run.profile),
                    escape(f.case),
                    f.phase.as_str(),
                    escape(&run.results.run_id),
                    escape(&server.model),
                    escape(server.owned_by.as_deref().unwrap_or("unknown")),
                    number(family.convert(f.point.value)),
                );
            }
        }
        if samples.is_empty() {
            continue;
        }
        let help = format!("{}: the run's {} per case and phase", metric.description, metric.name);
        let _ = writeln!(out, "# HELP {} {}", family.name, escape(&help));
        let _ = writeln!(out, "# TYPE {} gauge", family.name);
        let _ = writeln!(out, "# UNIT {} {}", family.name, family.unit);
        out.push_str(&samples);
    }
    out.push_str("# EOF\n");
    Ok(out.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use infergate_core::testing::results;

    #[test]
    fn every_catalogue_metric_has_a_family_named_for_its_base_unit() {
        let names: Vec<String> = CATALOGUE
            .iter()
            .map(|m| {
                let f = family(m).unwrap_or_else(|| panic!("{} ({}) has no OpenMetrics unit", m.name, m.unit));
                assert!(f.name.ends_with(&format!("_{}", f.unit)), "{f:?}");
                assert!(f.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'), "{f:?}");
                f.name
            })
            .collect();
        let expected = [
            "infergate_tokens_per_second",
            "infergate_decode_tokens_per_second",
            "infergate_ttft_median_seconds",
            "infergate_ttft_p99_seconds",
            "infergate_tpot_median_seconds",
            "infergate_tpot_p99_seconds",
            "infergate_e2e_median_seconds",
            "infergate_e2e_p99_seconds",
            "infergate_gpu_memory_peak_bytes",
            "infergate_gpu_memory_util_ratio",
            "infergate_energy_per_token_joules",
            "infergate_gpu_util_ratio",
        ];
        assert_eq!(names, expected);
    }

    #[test]
    fn values_are_in_base_units() {
        let f = |name| family(crate::gate::metrics::find(name).unwrap()).unwrap();
        assert_eq!(f("ttft_median").convert(1234.5), 1.2345);
        assert_eq!(f("gpu_memory_peak_mib").convert(2.0), 2_097_152.0);
        assert_eq!(f("gpu_util_pct").convert(87.0), 0.87);
        assert_eq!(f("energy_per_token_j").convert(0.5), 0.5);
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\\b\"c\nd é"), "a\\\\b\\\"c\\nd é");
    }

    #[test]
    fn a_run_is_labelled_families_ending_in_eof() {
        let mut r = results(&["a/1"], 1, 12, 1.0, 0.02);
        r.environment.server.model = "q\"m".into();
        let text = String::from_utf8(render(&[Run { results: &r, profile: "p", origin: "r" }]).unwrap()).unwrap();
        assert!(text.ends_with("\n# EOF\n"));
        assert!(
            text.contains("# TYPE infergate_ttft_median_seconds gauge\n# UNIT infergate_ttft_median_seconds seconds\n")
        );
        let line = text.lines().find(|l| l.starts_with("infergate_tokens_per_second{")).unwrap();
        assert!(
            line.starts_with(
                "infergate_tokens_per_second{profile=\"p\",case=\"a/1\",phase=\"cold\",run_id=\"run1\",model=\"q\\\"m\",engine=\"vllm\"} "
            ),
            "{line}"
        );
        // No GPU figures in this run: no GPU families.
        assert!(!text.contains("gpu_"));
        let e =
            render(&[Run { results: &r, profile: "p", origin: "a" }, Run { results: &r, profile: "p", origin: "b" }]);
        assert!(matches!(e, Err(ExportError::Duplicate { .. })));
        // The same run under two profiles is two series.
        assert!(
            render(&[Run { results: &r, profile: "p", origin: "a" }, Run { results: &r, profile: "q", origin: "b" }])
                .is_ok()
        );
    }
}
