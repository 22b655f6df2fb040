//! Baseline files: `baselines/PROFILE.toml`, schema `infergate.baseline.v1`.
//!
//! A baseline is what the gate compares against: per case and phase the
//! statistics the rules use and the per-request samples the significance test
//! needs, the prompt fingerprints and environment that decide comparability,
//! and one greedy output per case for the output-drift check. Files are
//! written with a stable key order and values rounded to 4 significant digits,
//! so that re-recording an unchanged system changes few lines; with
//! `--only-changed` a series whose change is within noise keeps its old values
//! and the diff is empty.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context as _, anyhow, bail};
use serde::{Deserialize, Serialize};

use crate::gate::metrics::{CATALOGUE, Series, Source};
use crate::gate::rules::Rules;
use crate::results::{PhaseName, PhaseResult, Results};
use crate::stats::significance;

/// Schema identifier of baseline files.
pub const SCHEMA: &str = "infergate.baseline.v1";

/// The folder baselines live in, relative to the working directory.
pub const DIR: &str = "baselines";

/// A baseline file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// Profile name (GPU x model x server), the file's stem.
    pub profile: String,
    /// When the results were recorded (RFC 3339).
    pub recorded_at: String,
    /// Run id of the results it was recorded from.
    pub run_id: String,
    /// infergate version that recorded it.
    pub tool_version: String,
    /// Git commit the results were recorded at.
    pub git_commit: Option<String>,
    /// The suite.
    pub suite: BaselineSuite,
    /// What must match for a comparison to be meaningful.
    pub environment: Fingerprint,
    /// Per case, by id.
    pub cases: BTreeMap<String, BaselineCase>,
}

/// The suite of a baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineSuite {
    /// Suite name.
    pub name: String,
    /// Prompt synthesis seed.
    pub seed: u64,
}

/// The environment fingerprint: what must be the same on both sides.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fingerprint {
    /// Model name.
    pub model: String,
    /// `chat` or `completions`.
    pub api: String,
    /// Serving engine (`owned_by` of the model, e.g. `vllm`, `llamacpp`).
    pub engine: Option<String>,
    /// Version the server reported; informational (a version bump is what a gate is for).
    pub server_version: Option<String>,
    /// GPU name, when GPU telemetry is available.
    pub gpu_name: Option<String>,
    /// GPU driver version, when known (its major version must match).
    pub gpu_driver: Option<String>,
    /// Number of GPUs sampled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_count: Option<u32>,
    /// Memory of the first GPU, MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_memory_mib: Option<u64>,
    /// Enforced power limit of the first GPU, W.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_power_limit_w: Option<u32>,
    /// MIG mode of the first GPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_mig: Option<bool>,
    /// ECC of the first GPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_ecc: Option<bool>,
    /// Whether application clocks differ from the default on the first GPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_clocks_locked: Option<bool>,
}

impl Fingerprint {
    /// The fingerprint of a results file.
    pub fn of(results: &Results) -> Fingerprint {
        let s = &results.environment.server;
        let gpu = &results.environment.gpu;
        let first = gpu.devices.first();
        Fingerprint {
            model: s.model.clone(),
            api: s.api.clone(),
            engine: s.owned_by.clone(),
            server_version: s.reported_version.clone(),
            gpu_name: gpu_name(&results.environment.gpu),
            gpu_driver: results.environment.gpu.driver_version.clone(),
            gpu_count: (!gpu.devices.is_empty()).then_some(gpu.devices.len() as u32),
            gpu_memory_mib: first.and_then(|d| d.memory_total_mib).map(|m| m.round() as u64),
            gpu_power_limit_w: first.and_then(|d| d.power_limit_w).map(|w| w.round() as u32),
            gpu_mig: first.and_then(|d| d.mig_mode),
            gpu_ecc: first.and_then(|d| d.ecc),
            gpu_clocks_locked: first.and_then(|d| d.clocks_locked),
        }
    }
}

/// The GPU model(s) of a run: distinct device names joined with ` + `.
fn gpu_name(gpu: &crate::telemetry::GpuInfo) -> Option<String> {
    let mut names: Vec<&str> = gpu.devices.iter().filter_map(|d| d.name.as_deref()).collect();
    names.dedup();
    (!names.is_empty()).then(|| names.join(" + "))
}

/// One case of a baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineCase {
    /// Scenario name.
    pub scenario: String,
    /// Target prompt tokens.
    pub context_tokens: u32,
    /// Output tokens asked for.
    pub output_tokens: u32,
    /// Prompt tokens achieved.
    pub prompt_tokens: u32,
    /// Prompt recipe fingerprint (must match to compare).
    pub template_fingerprint: String,
    /// Exact warm prompt fingerprint.
    pub text_fingerprint: String,
    /// Greedy output of the first good warm request.
    pub output_text: Option<String>,
    /// The cold phase.
    pub cold: Option<BaselinePhase>,
    /// The warm phase.
    pub warm: Option<BaselinePhase>,
}

impl BaselineCase {
    /// The phase by name.
    pub fn phase(&self, name: PhaseName) -> Option<&BaselinePhase> {
        match name {
            PhaseName::Cold => self.cold.as_ref(),
            PhaseName::Warm => self.warm.as_ref(),
        }
    }
}

/// One phase of a baseline case.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselinePhase {
    /// Requests sent.
    pub requests: u32,
    /// Requests that failed.
    pub errors: u32,
    /// Metric values the rules compare, by catalogue name.
    pub stats: BTreeMap<String, f64>,
    /// Per-request samples by series, for the significance test.
    pub samples: BTreeMap<String, Vec<f64>>,
}

impl BaselinePhase {
    fn from_phase(p: &PhaseResult) -> BaselinePhase {
        let samples: BTreeMap<String, Vec<f64>> = Series::ALL
            .iter()
            .map(|s| (s.key().to_string(), s.samples(&p.requests).into_iter().map(round4).collect::<Vec<_>>()))
            .filter(|(_, v)| !v.is_empty())
            .collect();
        let mut stats = BTreeMap::new();
        if let Some(gpu) = &p.gpu {
            for m in CATALOGUE {
                if let Source::Gpu(g) = m.source {
                    if let Some(v) = g.of(gpu) {
                        stats.insert(m.name.to_string(), round4(v));
                    }
                }
            }
        }
        let mut phase = BaselinePhase { requests: p.summary.requests, errors: p.summary.errors, stats, samples };
        phase.recompute_stats();
        phase
    }

    /// Recomputes the per-request statistics in `stats` from `samples` (GPU figures stay).
    fn recompute_stats(&mut self) {
        for m in CATALOGUE {
            let Some((series, statistic)) = m.request_source() else { continue };
            match self.samples.get(series.key()).and_then(|s| statistic.of(s)) {
                Some(v) => self.stats.insert(m.name.to_string(), round4(v)),
                None => self.stats.remove(m.name),
            };
        }
    }

    /// Samples of a series (empty when absent).
    pub fn series(&self, s: Series) -> &[f64] {
        self.samples.get(s.key()).map_or(&[], Vec::as_slice)
    }
}

/// Rounds to 4 significant digits: enough for any gate, few digits to churn.
pub fn round4(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let digits = x.abs().log10().floor() as i32;
    // Divide by an exact power of ten (never multiply by an inexact 0.1), so
    // the result prints as the short decimal it is.
    if digits >= 3 {
        let unit = 10f64.powi(digits - 3);
        (x / unit).round() * unit
    } else {
        let scale = 10f64.powi(3 - digits);
        (x * scale).round() / scale
    }
}

impl Baseline {
    /// A baseline recorded from `results` (only its complete, error-free phases
    /// are meaningful; the caller refuses the others).
    pub fn from_results(results: &Results, profile: &str) -> Baseline {
        let cases = results
            .cases
            .iter()
            .map(|c| {
                let phase = |n: PhaseName| c.phases.get(&n).map(BaselinePhase::from_phase);
                let output_text = c
                    .phases
                    .get(&PhaseName::Warm)
                    .and_then(|p| p.requests.iter().find(|r| r.ok).and_then(|r| r.output_text.clone()));
                (
                    c.id.clone(),
                    BaselineCase {
                        scenario: c.scenario.clone(),
                        context_tokens: c.context_tokens,
                        output_tokens: c.output_tokens,
                        prompt_tokens: c.prompt.tokens,
                        template_fingerprint: c.prompt.template_fingerprint.clone(),
                        text_fingerprint: c.prompt.text_fingerprint.clone(),
                        output_text,
                        cold: phase(PhaseName::Cold),
                        warm: phase(PhaseName::Warm),
                    },
                )
            })
            .collect();
        Baseline {
            schema: SCHEMA.into(),
            profile: profile.into(),
            recorded_at: results.finished_at.clone(),
            run_id: results.run_id.clone(),
            tool_version: results.environment.tool_version.clone(),
            git_commit: results.environment.git_commit.clone(),
            suite: BaselineSuite { name: results.suite.name.clone(), seed: results.suite.seed },
            environment: Fingerprint::of(results),
            cases,
        }
    }

    /// Reads a baseline; errors name the file, line and key.
    pub fn load(path: &Path) -> anyhow::Result<Baseline> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read baseline {}", path.display()))?;
        let b: Baseline = crate::config::parse_toml(&text, &path.display().to_string()).map_err(|e| anyhow!(e))?;
        if b.schema != SCHEMA {
            bail!("{}: schema is `{}`, this infergate reads `{SCHEMA}`", path.display(), b.schema);
        }
        for (id, case) in &b.cases {
            for (name, phase) in [("cold", &case.cold), ("warm", &case.warm)] {
                let Some(phase) = phase else { continue };
                for (series, values) in &phase.samples {
                    if !Series::ALL.iter().any(|s| s.key() == series) {
                        bail!("{}: cases.\"{id}\".{name}.samples: unknown series `{series}`", path.display());
                    }
                    if let Some(v) = values.iter().find(|v| !v.is_finite() || **v < 0.0) {
                        bail!("{}: cases.\"{id}\".{name}.samples.{series}: invalid sample {v}", path.display());
                    }
                }
            }
        }
        Ok(b)
    }

    /// The file text: stable key order, 4 significant digits.
    pub fn to_toml(&self) -> anyhow::Result<String> {
        let body = toml::to_string(self).context("cannot serialize the baseline")?;
        Ok(format!(
            "# infergate baseline: written by `infergate baseline update`; review changes in the diff it prints.\n{body}"
        ))
    }
}

/// How `baseline update` merges new results into an existing baseline.
#[derive(Debug, Clone)]
pub struct UpdateOptions {
    /// Keep old values whose change is within noise.
    pub only_changed: bool,
    /// Only these cases (comma-separated globs); the rest keep their old values.
    pub cases: Option<String>,
    /// The gate's rules: a change the gate would not report is noise.
    pub rules: Rules,
}

/// Merges `new` into `old` per the options.
pub fn merge(old: Option<&Baseline>, mut new: Baseline, opts: &UpdateOptions) -> Baseline {
    let Some(old) = old else { return new };
    let selected = |id: &str| {
        opts.cases.as_deref().is_none_or(|g| g.split(',').map(str::trim).any(|g| crate::suite::glob_match(g, id)))
    };
    // Cases outside the selection keep their old entry (or stay absent).
    let mut cases = BTreeMap::new();
    for (id, case) in &old.cases {
        if !selected(id) {
            cases.insert(id.clone(), case.clone());
        }
    }
    // The same per-case level as the gate (Bonferroni over the cases).
    let alpha = opts.rules.significance / new.cases.len().max(1) as f64;
    for (id, mut case) in std::mem::take(&mut new.cases) {
        if !selected(&id) {
            continue;
        }
        if opts.only_changed {
            if let Some(prev) = old.cases.get(&id).filter(|p| p.template_fingerprint == case.template_fingerprint) {
                let noise = Noise { rules: &opts.rules, case: &id, alpha };
                case.cold = noise.keep(prev.cold.as_ref(), case.cold);
                case.warm = noise.keep(prev.warm.as_ref(), case.warm);
                if let (Some(a), Some(b)) = (&prev.output_text, &case.output_text) {
                    if similarity(a, b) >= opts.rules.drift_min_similarity {
                        case.output_text = Some(a.clone());
                    }
                }
            }
        }
        cases.insert(id, case);
    }
    new.cases = cases;
    if opts.only_changed && new.cases == old.cases && new.suite == old.suite && new.environment == old.environment {
        // Nothing but the header would change: keep the file as it is.
        return old.clone();
    }
    new
}

/// "Within noise" for `--only-changed`: a change the gate would not report.
struct Noise<'a> {
    rules: &'a Rules,
    case: &'a str,
    alpha: f64,
}

impl Noise<'_> {
    /// The new phase, with every series whose change is noise replaced by the old one.
    fn keep(&self, old: Option<&BaselinePhase>, new: Option<BaselinePhase>) -> Option<BaselinePhase> {
        let (Some(old), Some(mut new)) = (old, new.clone()) else { return new };
        if old.requests != new.requests || old.errors != new.errors {
            return Some(new);
        }
        for series in Series::ALL {
            let (Some(prev), Some(values)) = (old.samples.get(series.key()), new.samples.get_mut(series.key())) else {
                continue;
            };
            if self.within_noise(series, prev, values) {
                values.clone_from(prev);
            }
        }
        // GPU figures: keep the old value unless it moved beyond tolerance and floor.
        for m in CATALOGUE.iter().filter(|m| matches!(m.source, Source::Gpu(_))) {
            let (Some(b), Some(c)) = (old.stats.get(m.name), new.stats.get(m.name).copied()) else { continue };
            let rule = self.rules.rule_for(self.case, m);
            let change = if *b == 0.0 { f64::INFINITY } else { ((c - b) / b).abs() };
            if !(change > rule.tolerance && (c - b).abs() >= rule.floor) {
                new.stats.insert(m.name.to_string(), *b);
            }
        }
        new.recompute_stats();
        Some(new)
    }

    /// True when no metric computed from `series` changes beyond its
    /// tolerance and floor with a significant (or, for series too short to
    /// test, any) shift.
    fn within_noise(&self, series: Series, old: &[f64], new: &[f64]) -> bool {
        let testable = significance::min_p_value(old.len(), new.len()) <= self.alpha;
        let significant = testable && significance::mann_whitney_u(old, new).is_some_and(|t| t.p_value < self.alpha);
        CATALOGUE.iter().filter(|m| m.request_source().is_some_and(|(s, _)| s == series)).all(|m| {
            let rule = self.rules.rule_for(self.case, m);
            let Some((_, statistic)) = m.request_source() else { return true };
            let (Some(b), Some(c)) = (statistic.of(old), statistic.of(new)) else { return false };
            if b == 0.0 {
                return c == 0.0;
            }
            let beyond = ((c - b) / b).abs() > rule.tolerance && (c - b).abs() >= rule.floor;
            !beyond || (testable && !significant)
        })
    }
}

/// Character-level similarity ratio (0..1) of two texts.
pub fn similarity(a: &str, b: &str) -> f64 {
    if a == b {
        return 1.0;
    }
    f64::from(similar::TextDiff::from_chars(a, b).ratio())
}

/// A unified diff of two file texts (empty when equal).
pub fn unified_diff(old: &str, new: &str, old_name: &str, new_name: &str) -> String {
    if old == new {
        return String::new();
    }
    similar::TextDiff::from_lines(old, new).unified_diff().context_radius(3).header(old_name, new_name).to_string()
}

/// Resolves `--baseline` for reading: a profile name means
/// `baselines/NAME.toml`; anything else is a path.
pub fn resolve_for_read(arg: &str) -> PathBuf {
    if is_profile_name(arg) { Path::new(DIR).join(format!("{arg}.toml")) } else { PathBuf::from(arg) }
}

/// Resolves `--baseline` for writing: the file must end up inside the
/// baselines folder of `root`, whatever the argument says (`..`, absolute
/// paths and symbolic links cannot escape it).
pub fn resolve_for_write(root: &Path, arg: &str) -> anyhow::Result<PathBuf> {
    if arg.contains('\0') {
        bail!("--baseline {}: a NUL character cannot be part of a file name", arg.escape_debug());
    }
    let dir = root.join(DIR);
    let rel: PathBuf = if is_profile_name(arg) {
        PathBuf::from(format!("{arg}.toml"))
    } else {
        let p = Path::new(arg);
        let inside = if p.is_absolute() {
            let abs_dir = std::path::absolute(&dir).unwrap_or_else(|_| dir.clone());
            p.strip_prefix(&abs_dir).map(Path::to_path_buf).ok()
        } else {
            p.strip_prefix(DIR).map(Path::to_path_buf).ok()
        };
        inside.ok_or_else(|| {
            anyhow!(
                "--baseline {arg}: baselines are written only inside {}/; give a profile name or a path under it",
                DIR
            )
        })?
    };
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) || rel.as_os_str().is_empty() {
        bail!(
            "--baseline {arg}: the path may not contain `..`, `.` or a root; give a profile name like `h200-qwen-vllm`"
        );
    }
    if rel.extension().is_none_or(|e| e != "toml") {
        bail!("--baseline {arg}: a baseline file name ends in .toml");
    }
    let target = dir.join(&rel);
    // No symbolic link on the way down, the folder itself included: checked
    // before anything is created, so a link cannot even make a folder outside.
    let mut walked = dir.clone();
    for part in std::iter::once(None).chain(rel.parent().into_iter().flat_map(Path::components).map(Some)) {
        if let Some(part) = part {
            walked.push(part);
        }
        if walked.symlink_metadata().is_ok_and(|m| m.file_type().is_symlink()) {
            bail!(
                "--baseline {arg}: {} is a symbolic link; baselines are written only into plain folders under {}/",
                walked.display(),
                DIR
            );
        }
    }
    std::fs::create_dir_all(target.parent().unwrap_or(&dir))
        .with_context(|| format!("cannot create {}", dir.display()))?;
    // Symbolic links inside the folder could still point outside it.
    let real_dir = dir.canonicalize().with_context(|| format!("cannot resolve {}", dir.display()))?;
    let real_parent = target
        .parent()
        .unwrap_or(&dir)
        .canonicalize()
        .with_context(|| format!("cannot resolve the folder of {}", target.display()))?;
    if !real_parent.starts_with(&real_dir) {
        bail!("--baseline {arg}: {} leads outside {}/ through a symbolic link", target.display(), DIR);
    }
    if target.symlink_metadata().is_ok_and(|m| m.file_type().is_symlink()) {
        bail!("--baseline {arg}: {} is a symbolic link; baselines are plain files", target.display());
    }
    Ok(target)
}

/// A profile name: letters, digits, `.`, `_`, `-`, not starting with `.`, no `.toml`.
pub fn is_profile_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('.')
        && !s.ends_with(".toml")
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_to_four_significant_digits() {
        assert_eq!(round4(123.456), 123.5);
        assert_eq!(round4(0.0012345), 0.001235);
        assert_eq!(round4(98765.0), 98770.0);
        assert_eq!(round4(-2.5), -2.5);
        assert_eq!(round4(0.0), 0.0);
        assert_eq!(format!("{}", round4(12.3456)), "12.35");
        for (x, printed) in [(98765.4, "98770"), (1234567.0, "1235000"), (0.000123456, "0.0001235"), (999.95, "1000")] {
            assert_eq!(format!("{}", round4(x)), printed);
        }
    }

    #[test]
    fn profile_names_and_paths_stay_inside_the_folder() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        assert_eq!(resolve_for_write(r, "h200-qwen").unwrap(), r.join("baselines/h200-qwen.toml"));
        assert_eq!(resolve_for_write(r, "baselines/x.toml").unwrap(), r.join("baselines/x.toml"));
        assert_eq!(resolve_for_write(r, "baselines/team/x.toml").unwrap(), r.join("baselines/team/x.toml"));
        for bad in [
            "../x.toml",
            "baselines/../x.toml",
            "/etc/x.toml",
            "x/../../y.toml",
            "other/x.toml",
            "baselines/x.txt",
            "baselines/",
        ] {
            assert!(resolve_for_write(r, bad).is_err(), "{bad} must be refused");
        }
        let abs = std::path::absolute(r.join("baselines/abs.toml")).unwrap();
        assert!(resolve_for_write(r, abs.to_str().unwrap()).is_ok());
        #[cfg(unix)]
        {
            let outside = tempfile::tempdir().unwrap();
            std::os::unix::fs::symlink(outside.path(), r.join("baselines/escape")).unwrap();
            assert!(resolve_for_write(r, "baselines/escape/x.toml").is_err());
            std::os::unix::fs::symlink(outside.path().join("f.toml"), r.join("baselines/link.toml")).unwrap();
            assert!(resolve_for_write(r, "link").is_err());
            // A link deeper down is refused before any folder is made through it.
            assert!(resolve_for_write(r, "baselines/escape/new/x.toml").is_err());
            assert!(!outside.path().join("new").exists());
            // The baselines folder itself a link to elsewhere.
            let other = tempfile::tempdir().unwrap();
            std::os::unix::fs::symlink(outside.path(), other.path().join("baselines")).unwrap();
            for arg in ["p", "baselines/p.toml", "baselines/sub/p.toml"] {
                let err = resolve_for_write(other.path(), arg).unwrap_err().to_string();
                assert!(err.contains("symbolic link"), "{arg}: {err}");
            }
            assert!(std::fs::read_dir(outside.path()).unwrap().all(|e| e.unwrap().file_name() != "sub"));
        }
        // A NUL, a separator, a root or `..` in what looks like a profile name is never a file name.
        for bad in
            ["a\0b", "a\0b.toml", "baselines/a\0b.toml", "/", "..", ".", "baselines/..", "baselines/.x/../y.toml"]
        {
            assert!(resolve_for_write(r, bad).is_err(), "{bad:?} must be refused");
        }
        assert!(!is_profile_name("a/b") && !is_profile_name("a\\b") && !is_profile_name("a\0b"));
        assert!(!is_profile_name("..") && !is_profile_name(".hidden") && !is_profile_name(""));
        assert_eq!(resolve_for_read("a/b"), PathBuf::from("a/b"));
        assert_eq!(resolve_for_read("sim-demo"), PathBuf::from("baselines/sim-demo.toml"));
        assert_eq!(resolve_for_read("some/where.toml"), PathBuf::from("some/where.toml"));
    }

    #[test]
    fn noise_keeps_old_values_and_real_change_replaces_them() {
        let rules = Rules::default();
        let noise = Noise { rules: &rules, case: "a/1", alpha: 0.01 };
        let old = vec![100.0, 101.0, 99.0, 100.5, 99.5, 100.2, 99.8, 100.1, 99.9, 100.3];
        let same: Vec<f64> = old.iter().map(|v| v + 0.05).collect();
        let slower: Vec<f64> = old.iter().map(|v| v * 1.2).collect();
        let within_tolerance: Vec<f64> = old.iter().map(|v| v * 1.04).collect();
        assert!(noise.within_noise(Series::E2eMs, &old, &same));
        assert!(!noise.within_noise(Series::E2eMs, &old, &slower));
        // Significant but inside the 10% E2E tolerance: the gate would not report it.
        assert!(noise.within_noise(Series::E2eMs, &old, &within_tolerance));
        // The same 4% on throughput is inside 5% too; 8% is not.
        let faster: Vec<f64> = old.iter().map(|v| v * 0.92).collect();
        assert!(!noise.within_noise(Series::TokensPerSecond, &old, &faster));
        // One sample each (cold): only a change beyond tolerance and floor counts.
        assert!(noise.within_noise(Series::TtftMs, &[27.0], &[31.0]), "+15% but 4 ms, under the 20 ms floor");
        assert!(!noise.within_noise(Series::TtftMs, &[270.0], &[350.0]));
    }

    #[test]
    fn file_round_trips_byte_for_byte() {
        let r = crate::gate::compare::tests::results(&["a/1", "b/2"], 3, 10, 1.0, 0.03);
        let b = Baseline::from_results(&r, "p");
        let text = b.to_toml().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(&path, &text).unwrap();
        let back = Baseline::load(&path).unwrap();
        assert_eq!(back, b);
        assert_eq!(back.to_toml().unwrap(), text);
        // Every number has at most 4 significant digits.
        for v in b.cases["a/1"].warm.as_ref().unwrap().samples.values().flatten() {
            assert_eq!(*v, round4(*v));
        }
    }

    #[test]
    fn corrupt_files_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "schema = \"infergate.baseline.v1\"\nprofile = 3\n").unwrap();
        let err = format!("{:#}", Baseline::load(&path).unwrap_err());
        assert!(err.contains("bad.toml:2") && err.contains("profile"), "{err}");
        std::fs::write(&path, "schema = \"other\"\n").unwrap();
        assert!(format!("{:#}", Baseline::load(&path).unwrap_err()).contains("missing field"));
    }

    #[test]
    fn similarity_ratio() {
        assert_eq!(similarity("abc", "abc"), 1.0);
        assert!(similarity("fn main() {}", "fn main() { }") > 0.9);
        assert!(similarity("completely", "different!") < 0.5);
    }
}
