//! Comparison of results with a baseline: pure, deterministic.
//!
//! A metric regresses only when its change is beyond the rule's tolerance (and
//! floor) in the bad direction AND the Mann-Whitney test on the per-request
//! samples says the change is not noise. The significance level of the
//! configuration is the false-alarm budget of the whole run, split evenly over
//! the compared cases (Bonferroni), so a suite with many cases does not raise
//! more false alarms than one with few. When the samples are too few for any
//! change to be significant, the metric "cannot be judged": a warning, never
//! a silent pass.

use std::collections::BTreeSet;

use super::metrics::{CATALOGUE, MetricDef, Source};
use super::rules::{OnImprovement, Rules};
use super::{
    CaseComparison, CaseVerdict, Comparison, Counts, Direction, Level, MetricComparison, MetricStatus, Mismatch,
    PhaseGpu, SCHEMA, Verdict,
};
use crate::baseline::{self, Baseline, BaselineCase, Fingerprint};
use crate::results::{CaseResult, Results};
use crate::stats::significance::{self, Detection};

/// Power at which the minimum detectable change is computed.
pub const POWER: f64 = 0.95;

/// What to compare.
#[derive(Debug, Clone, Copy)]
pub struct CompareInput<'a> {
    /// The current results.
    pub results: &'a Results,
    /// Where they are (for the accept command and the report).
    pub results_path: &'a str,
    /// The baseline.
    pub baseline: &'a Baseline,
    /// Where it is.
    pub baseline_path: &'a str,
    /// The rules.
    pub rules: &'a Rules,
    /// Compare even when suite, prompts or environment differ.
    pub allow_mismatch: bool,
}

/// Compares results with a baseline under rules.
pub fn compare(input: &CompareInput<'_>) -> Comparison {
    let CompareInput { results, baseline, rules, .. } = *input;
    let mismatches = mismatches(results, baseline);
    let refused = !mismatches.is_empty() && !input.allow_mismatch;
    let mut notes = Vec::new();
    if !results.complete {
        notes.push("the run did not complete (interrupted or abandoned): its results cannot be gated".to_string());
    }
    notes.extend(results.warnings.iter().cloned());

    let compared = results.cases.iter().filter(|c| baseline.cases.contains_key(&c.id)).count().max(1);
    let case_alpha = rules.significance / compared as f64;
    let detection = Detection::new(case_alpha, POWER);
    let mut cases = Vec::new();
    if !refused {
        for case in &results.cases {
            let mut c = match baseline.cases.get(&case.id) {
                Some(base) => compare_case(case, base, rules, detection),
                None => CaseComparison {
                    id: case.id.clone(),
                    verdict: CaseVerdict::New,
                    metrics: Vec::new(),
                    output_similarity: None,
                    notes: vec!["not in the baseline: record it with `infergate baseline update`".into()],
                    gpu: PhaseGpu::of(case),
                },
            };
            // Untrustworthy measurements make a case invalid, in the baseline or new.
            let problems = super::validity::problems(case, rules);
            if !problems.is_empty() {
                c.verdict = CaseVerdict::Invalid;
                c.notes.splice(0..0, problems);
            }
            cases.push(c);
        }
        let run_ids: BTreeSet<&str> = results.cases.iter().map(|c| c.id.as_str()).collect();
        for id in baseline.cases.keys() {
            let selected = results
                .settings
                .cases_filter
                .as_deref()
                .is_none_or(|f| f.split(',').map(str::trim).any(|g| crate::suite::glob_match(g, id)));
            if selected && !run_ids.contains(id.as_str()) {
                cases.push(CaseComparison {
                    id: id.clone(),
                    verdict: CaseVerdict::Missing,
                    metrics: Vec::new(),
                    output_similarity: None,
                    notes: vec![if results.complete {
                        "in the baseline but not in the results".into()
                    } else {
                        "not reached before the run stopped".into()
                    }],
                    gpu: Vec::new(),
                });
            }
        }
    }
    cases.sort_by(|a, b| a.verdict.cmp(&b.verdict).then_with(|| a.id.cmp(&b.id)));

    let counts = count(&cases);
    let verdict = if refused {
        Verdict::Refused
    } else if !results.complete || counts.invalid > 0 {
        Verdict::Invalid
    } else if counts.regressed > 0 {
        Verdict::Regressed
    } else if counts.improved > 0 && rules.on_improvement == OnImprovement::RequireUpdate {
        Verdict::UpdateRequired
    } else if counts.warnings + counts.new + counts.missing > 0 {
        Verdict::Warn
    } else if counts.improved > 0 {
        Verdict::Improved
    } else {
        Verdict::Pass
    };
    if input.allow_mismatch && !mismatches.is_empty() {
        notes.insert(0, "compared despite differences (--allow-mismatch): read the figures with care".into());
    }
    let headline = headline(verdict, &mismatches, &cases, &notes);
    Comparison {
        schema: SCHEMA.into(),
        verdict,
        headline,
        profile: baseline.profile.clone(),
        baseline_path: input.baseline_path.into(),
        results_path: input.results_path.into(),
        run_id: results.run_id.clone(),
        mismatches,
        mismatch_allowed: input.allow_mismatch,
        significance: rules.significance,
        case_significance: case_alpha,
        counts,
        cases,
        notes,
        accept_command: format!(
            "infergate baseline update --results {} --baseline {}",
            shell_quote(input.results_path),
            shell_quote(input.baseline_path)
        ),
        accept_diff: None,
        server: super::ServerSummary::of(results),
    }
}

/// What differs between results and baseline.
pub fn mismatches(results: &Results, baseline: &Baseline) -> Vec<Mismatch> {
    let mut out = Vec::new();
    let mut differ = |what: &str, b: &str, c: &str| {
        if b != c {
            out.push(Mismatch { what: what.into(), baseline: b.into(), current: c.into() });
        }
    };
    differ("suite", &baseline.suite.name, &results.suite.name);
    if baseline.suite.seed != results.suite.seed {
        differ("suite seed", &baseline.suite.seed.to_string(), &results.suite.seed.to_string());
    }
    let cur = Fingerprint::of(results);
    let base = &baseline.environment;
    differ("model", &base.model, &cur.model);
    differ("api", &base.api, &cur.api);
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "unknown".into());
    if base.engine.is_some() || cur.engine.is_some() {
        differ("server engine", &opt(&base.engine), &opt(&cur.engine));
    }
    // GPU facts are compared where both sides know them: a run without
    // telemetry says so in its own notes.
    if let (Some(b), Some(c)) = (&base.gpu_name, &cur.gpu_name) {
        differ("GPU", b, c);
    }
    let major = |v: &str| v.split('.').next().unwrap_or(v).to_string();
    if let (Some(b), Some(c)) = (&base.gpu_driver, &cur.gpu_driver) {
        differ("GPU driver major version", &major(b), &major(c));
    }
    let gpu_settings = [
        ("GPU count", text(base.gpu_count), text(cur.gpu_count)),
        ("GPU memory (MiB)", text(base.gpu_memory_mib), text(cur.gpu_memory_mib)),
        ("GPU power limit (W)", text(base.gpu_power_limit_w), text(cur.gpu_power_limit_w)),
        ("GPU MIG mode", text(base.gpu_mig), text(cur.gpu_mig)),
        ("GPU ECC", text(base.gpu_ecc), text(cur.gpu_ecc)),
        ("GPU application clocks changed", text(base.gpu_clocks_locked), text(cur.gpu_clocks_locked)),
    ];
    for (what, b, c) in gpu_settings {
        if let (Some(b), Some(c)) = (b, c) {
            differ(what, &b, &c);
        }
    }
    for case in &results.cases {
        let Some(b) = baseline.cases.get(&case.id) else { continue };
        differ(
            &format!("prompt recipe of {}", case.id),
            &short(&b.template_fingerprint),
            &short(&case.prompt.template_fingerprint),
        );
        differ(
            &format!("prompt text of {}", case.id),
            &short(&b.text_fingerprint),
            &short(&case.prompt.text_fingerprint),
        );
        differ(&format!("output tokens of {}", case.id), &b.output_tokens.to_string(), &case.output_tokens.to_string());
    }
    out
}

fn text<T: ToString>(v: Option<T>) -> Option<String> {
    v.map(|x| x.to_string())
}

fn short(fp: &str) -> String {
    fp.chars().take(12).collect()
}

fn compare_case(case: &CaseResult, base: &BaselineCase, rules: &Rules, detection: Option<Detection>) -> CaseComparison {
    let mut notes = Vec::new();
    let mut invalid = false;
    let mut metrics = Vec::new();
    for &phase in &rules.phases {
        let (Some(cur), Some(bp)) = (case.phases.get(&phase), base.phase(phase)) else {
            notes.push(format!("the {} phase is missing on one side", phase.as_str()));
            continue;
        };
        let s = &cur.summary;
        if s.requests == 0 {
            notes.push(format!("{}: no requests were run", phase.as_str()));
            invalid = true;
            continue;
        }
        if s.usage_missing > 0 {
            notes.push(format!(
                "{}: the server sent no usage for {} request(s); their output tokens are counted chunks",
                phase.as_str(),
                s.usage_missing
            ));
        }
        if s.retried > 0 {
            notes.push(format!(
                "{}: {} request(s) needed a retry (connect error or 429); the figures are the last attempts'",
                phase.as_str(),
                s.retried
            ));
        }
        for def in CATALOGUE {
            let rule = rules.rule_for(&case.id, def);
            if rule.level == Level::Off {
                continue;
            }
            let row = match def.source {
                Source::Requests { series, .. } => {
                    let current = series.samples(&cur.requests);
                    compare_metric(def, rule, phase.as_str(), bp.series(series), &current, detection)
                }
                Source::Gpu(stat) => {
                    let current = cur.gpu.as_ref().and_then(|g| stat.of(g));
                    let base = bp.stats.get(def.name).copied();
                    base.zip(current).and_then(|(b, c)| compare_scalar(def, rule, phase.as_str(), b, c))
                }
            };
            metrics.extend(row);
        }
    }
    let output_similarity = match (&base.output_text, first_output(case)) {
        (Some(a), Some(b)) => Some(baseline::similarity(a, b)),
        _ => None,
    };
    let mut drift = None;
    if let Some(sim) = output_similarity.filter(|s| *s < rules.drift_min_similarity) {
        if rules.drift_level != Level::Off {
            notes.push(format!(
                "output drift: the greedy output is {:.0}% similar to the baseline's (threshold {:.0}%); a performance change should not change what the model says",
                sim * 100.0,
                rules.drift_min_similarity * 100.0
            ));
            drift = Some(rules.drift_level);
        }
    }
    metrics.sort_by_key(|m| m.status);
    let worst = metrics.iter().map(|m| m.status).min();
    let verdict = if invalid {
        CaseVerdict::Invalid
    } else if worst == Some(MetricStatus::Regressed) || drift == Some(Level::Fail) {
        CaseVerdict::Regressed
    } else if matches!(worst, Some(MetricStatus::Warn | MetricStatus::CannotJudge))
        || drift.is_some()
        || !notes.is_empty()
    {
        CaseVerdict::Warn
    } else if worst == Some(MetricStatus::Improved) {
        CaseVerdict::Improved
    } else {
        CaseVerdict::Pass
    };
    CaseComparison { id: case.id.clone(), verdict, metrics, output_similarity, notes, gpu: PhaseGpu::of(case) }
}

fn first_output(case: &CaseResult) -> Option<&str> {
    let warm = case.phases.get(&crate::results::PhaseName::Warm)?;
    warm.requests.iter().find(|r| r.ok).and_then(|r| r.output_text.as_deref())
}

/// Compares one metric; `None` when either side has no data.
pub fn compare_metric(
    def: &MetricDef,
    rule: super::rules::Rule,
    phase: &str,
    base: &[f64],
    current: &[f64],
    detection: Option<Detection>,
) -> Option<MetricComparison> {
    let (_, statistic) = def.request_source()?;
    let b = statistic.of(base)?;
    let c = statistic.of(current)?;
    if b == 0.0 {
        return None;
    }
    let change = (c - b) / b;
    let (worse, better) = beyond(def, rule, b, c, change);
    let (n1, n2) = (base.len(), current.len());
    // No test level (a significance outside (0, 1)) tests nothing.
    let alpha = detection.map_or(0.0, |d| d.alpha());
    let testable = detection.is_some_and(|d| d.can_be_significant(n1, n2));
    let p_value = significance::mann_whitney_u(base, current).map(|t| t.p_value);
    let significant = testable && p_value.is_some_and(|p| p < alpha);
    let cv = significance::pooled_cv(base, current);
    let mdc = detection.zip(cv).and_then(|(d, cv)| d.min_detectable_change(cv, n1, n2));
    // Changes below the floor never count, so a check only needs to detect
    // whichever is larger: the tolerance or the floor relative to the baseline.
    let effective = rule.tolerance.max(rule.floor / b.abs()).max(1e-6);
    let repetitions_needed = if mdc.is_none_or(|m| m > effective) {
        detection.zip(cv).and_then(|(d, cv)| d.repetitions_for(cv, effective, None)).map(|n| n as u32)
    } else {
        None
    };
    let status = status(rule.level, worse, better, testable, significant);
    Some(MetricComparison {
        metric: def.name.into(),
        phase: phase.into(),
        unit: def.unit.into(),
        direction: def.direction,
        level: rule.level,
        baseline: b,
        current: c,
        change,
        tolerance: rule.tolerance,
        floor: rule.floor,
        p_value,
        samples: [n1, n2],
        min_detectable_change: mdc,
        repetitions_needed,
        status,
    })
}

/// Whether a change is beyond the rule's tolerance and floor, in the bad
/// direction (`.0`) or the good one (`.1`).
fn beyond(def: &MetricDef, rule: super::rules::Rule, b: f64, c: f64, change: f64) -> (bool, bool) {
    let bad = match def.direction {
        Direction::HigherIsBetter => -change,
        Direction::LowerIsBetter => change,
    };
    let material = (c - b).abs() >= rule.floor;
    (bad > rule.tolerance && material, -bad > rule.tolerance && material)
}

/// The outcome of a comparison under a rule's level.
fn status(level: Level, worse: bool, better: bool, testable: bool, significant: bool) -> MetricStatus {
    if level == Level::Info {
        MetricStatus::Pass
    } else if !testable {
        MetricStatus::CannotJudge
    } else if worse && significant {
        if level == Level::Fail { MetricStatus::Regressed } else { MetricStatus::Warn }
    } else if better && significant {
        MetricStatus::Improved
    } else if worse || better {
        MetricStatus::Noise
    } else {
        MetricStatus::Pass
    }
}

/// Compares a GPU figure (one value per phase): tolerance and floor alone.
pub fn compare_scalar(
    def: &MetricDef,
    rule: super::rules::Rule,
    phase: &str,
    b: f64,
    c: f64,
) -> Option<MetricComparison> {
    if !(b.is_finite() && c.is_finite()) {
        return None;
    }
    let change = if b == 0.0 { if c == 0.0 { 0.0 } else { f64::INFINITY.copysign(c) } } else { (c - b) / b };
    let (worse, better) = beyond(def, rule, b, c, change);
    // One value per phase: nothing to test, the change stands as measured.
    let status = status(rule.level, worse, better, true, true);
    Some(MetricComparison {
        metric: def.name.into(),
        phase: phase.into(),
        unit: def.unit.into(),
        direction: def.direction,
        level: rule.level,
        baseline: b,
        current: c,
        change: if change.is_finite() { change } else { 0.0 },
        tolerance: rule.tolerance,
        floor: rule.floor,
        p_value: None,
        samples: [1, 1],
        min_detectable_change: None,
        repetitions_needed: None,
        status,
    })
}

fn count(cases: &[CaseComparison]) -> Counts {
    let mut c = Counts::default();
    for case in cases {
        match case.verdict {
            CaseVerdict::Invalid => c.invalid += 1,
            CaseVerdict::Regressed => c.regressed += 1,
            CaseVerdict::Warn => c.warnings += 1,
            CaseVerdict::Missing => c.missing += 1,
            CaseVerdict::New => c.new += 1,
            CaseVerdict::Improved => c.improved += 1,
            CaseVerdict::Pass => c.unchanged += 1,
        }
    }
    c
}

fn pct(v: f64) -> String {
    format!("{:+.1}%", v * 100.0)
}

fn headline(verdict: Verdict, mismatches: &[Mismatch], cases: &[CaseComparison], notes: &[String]) -> String {
    let worst = |status: MetricStatus| {
        cases.iter().flat_map(|c| c.metrics.iter().map(move |m| (c, m))).filter(|(_, m)| m.status == status).max_by(
            |(_, a), (_, b)| {
                // How far past its limit each change is (the limit being the
                // larger of the tolerance and the floor relative to the baseline).
                let score = |m: &MetricComparison| {
                    m.change.abs() / m.tolerance.max(m.floor / m.baseline.abs().max(f64::MIN_POSITIVE)).max(1e-9)
                };
                score(a).total_cmp(&score(b))
            },
        )
    };
    let describe = |c: &CaseComparison, m: &MetricComparison| {
        let limit = if m.tolerance > 0.0 {
            format!("the {}% tolerance", fmt_value(m.tolerance * 100.0))
        } else {
            format!("the {} {} limit", fmt_value(m.floor), m.unit)
        };
        format!(
            "{} of {} ({}) changed {} ({} → {} {}), beyond {limit}",
            m.metric,
            c.id,
            m.phase,
            pct(m.change),
            fmt_value(m.baseline),
            fmt_value(m.current),
            m.unit
        )
    };
    match verdict {
        Verdict::Refused => {
            let first = &mismatches[0];
            format!(
                "Not compared: {} differs (baseline `{}`, current `{}`){}",
                first.what,
                first.baseline,
                first.current,
                if mismatches.len() > 1 {
                    format!(" and {} more difference(s)", mismatches.len() - 1)
                } else {
                    String::new()
                }
            )
        }
        Verdict::Invalid => {
            let reason = cases
                .iter()
                .find(|c| c.verdict == CaseVerdict::Invalid)
                .and_then(|c| c.notes.first().map(|n| format!("{}: {n}", c.id)))
                .or_else(|| notes.first().cloned())
                .unwrap_or_else(|| "the run is incomplete".into());
            format!("The run cannot be trusted: {reason}")
        }
        Verdict::Regressed => worst(MetricStatus::Regressed).map_or_else(
            || {
                let c = cases.iter().find(|c| c.verdict == CaseVerdict::Regressed);
                format!("Regressed: {}", c.and_then(|c| c.notes.first()).cloned().unwrap_or_default())
            },
            |(c, m)| format!("Regressed: {}", describe(c, m)),
        ),
        Verdict::UpdateRequired | Verdict::Improved => worst(MetricStatus::Improved).map_or_else(
            || "Improved".into(),
            |(c, m)| {
                let prefix =
                    if verdict == Verdict::UpdateRequired { "Improved, baseline update required" } else { "Improved" };
                format!("{prefix}: {}", describe(c, m))
            },
        ),
        Verdict::Warn => {
            if let Some((c, m)) = worst(MetricStatus::Warn) {
                format!("Warning: {}", describe(c, m))
            } else if let Some((c, m)) = worst(MetricStatus::CannotJudge) {
                format!(
                    "Cannot judge {} of {} with {} samples: more repetitions are needed",
                    m.metric, c.id, m.samples[1]
                )
            } else {
                let c = cases.iter().find(|c| c.verdict != CaseVerdict::Pass && c.verdict != CaseVerdict::Improved);
                c.map_or_else(
                    || "Warnings".into(),
                    |c| format!("Warning: {} {}", c.id, c.notes.first().cloned().unwrap_or_default()),
                )
            }
        }
        Verdict::Pass => {
            let n = cases.len();
            format!("No change beyond tolerance and noise in {n} case{}", if n == 1 { "" } else { "s" })
        }
    }
}

/// Four significant digits, no exponent for ordinary magnitudes.
fn fmt_value(v: f64) -> String {
    let r = baseline::round4(v);
    if r.abs() >= 1000.0 { format!("{r:.0}") } else { format!("{r}") }
}

/// Quotes a path for a shell command line when it needs it.
fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+=:@".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::results::{
        CaseResult, Environment, PhaseName, PhaseResult, PhaseSummary, PromptInfo, RequestRecord, ServerInfo, Settings,
        SuiteInfo, TokenSource,
    };
    use crate::rng::Rng;

    /// One successful request: `ttft` and `e2e` in ms, `out` tokens.
    pub(crate) fn record(index: u32, ttft: f64, e2e: f64, out: u32) -> RequestRecord {
        RequestRecord {
            index,
            start_ms: 0.0,
            ok: true,
            error: None,
            ttft_ms: Some(ttft),
            e2e_ms: Some(e2e),
            tpot_ms: Some((e2e - ttft) / f64::from(out - 1)),
            itl_ms: Vec::new(),
            chunk_tokens: None,
            prompt_tokens: Some(1000),
            output_tokens: Some(out),
            output_tokens_source: TokenSource::Usage,
            finish_reason: Some("length".into()),
            done_received: true,
            tokens_per_second: Some(f64::from(out) * 1000.0 / e2e),
            decode_tokens_per_second: Some(f64::from(out - 1) * 1000.0 / (e2e - ttft)),
            response_id: None,
            output_sha256: None,
            output_text: (index == 0).then(|| "fn main() { println!(\"hello\"); }".to_string()),
            attempts: 1,
            retries: Vec::new(),
        }
    }

    /// A phase of `n` requests whose times are `scale` x nominal with
    /// per-request noise of coefficient of variation `cv`.
    pub(crate) fn phase(rng: &mut Rng, n: u32, scale: f64, cv: f64) -> PhaseResult {
        let requests: Vec<RequestRecord> = (0..n)
            .map(|i| {
                let noise = |rng: &mut Rng| 1.0 + cv * (rng.unit() * 2.0 - 1.0) * 3f64.sqrt();
                let ttft = 250.0 * scale * noise(rng);
                let e2e = ttft + 2000.0 * scale * noise(rng);
                record(i, ttft, e2e, 100)
            })
            .collect();
        PhaseResult {
            summary: PhaseSummary::from_records(&requests, 10.0, 100),
            gpu: None,
            server_metrics: None,
            requests,
        }
    }

    pub(crate) fn results(cases: &[&str], seed: u64, n: u32, scale: f64, cv: f64) -> Results {
        let mut rng = Rng::new(seed);
        Results {
            schema: crate::results::SCHEMA.into(),
            run_id: format!("run{seed}"),
            complete: true,
            started_at: "2026-11-28T00:00:00Z".into(),
            finished_at: "2026-11-28T00:01:00Z".into(),
            environment: Environment {
                server: ServerInfo {
                    host: "127.0.0.1:8000".into(),
                    model: "m".into(),
                    api: "chat".into(),
                    owned_by: Some("vllm".into()),
                    ..ServerInfo::default()
                },
                ..Environment::default()
            },
            suite: SuiteInfo { name: "coder".into(), source: "builtin".into(), seed: 1, fingerprint: "f".into() },
            settings: Settings {
                ignore_eos: true,
                min_tokens: true,
                request_timeout_s: 600.0,
                idle_timeout_s: 120.0,
                cases_filter: None,
                retries: 0,
                deadline_s: None,
                grace_s: None,
            },
            cases: cases
                .iter()
                .map(|id| CaseResult {
                    id: (*id).into(),
                    scenario: id.split('/').next().unwrap_or("s").into(),
                    context_tokens: 1000,
                    output_tokens: 100,
                    repetitions: n,
                    warmup: 1,
                    concurrency: 1,
                    request_rate: None,
                    prompt: PromptInfo {
                        template_fingerprint: format!("tpl-{id}"),
                        text_fingerprint: format!("txt-{id}"),
                        tokens: 1000,
                        chars: 4000,
                    },
                    phases: BTreeMap::from([
                        (PhaseName::Cold, phase(&mut rng, 1, scale, cv)),
                        (PhaseName::Warm, phase(&mut rng, n, scale, cv)),
                    ]),
                })
                .collect(),
            warnings: Vec::new(),
        }
    }

    fn run(results: &Results, baseline: &Baseline, rules: &Rules, allow: bool) -> Comparison {
        compare(&CompareInput {
            results,
            results_path: "infergate-out/results.json",
            baseline,
            baseline_path: "baselines/p.toml",
            rules,
            allow_mismatch: allow,
        })
    }

    const CASES: [&str; 4] = ["code-review/12800", "code-review/41200", "debugging/12800", "debugging/41200"];

    fn base(cv: f64) -> Baseline {
        Baseline::from_results(&results(&CASES, 1, 12, 1.0, cv), "p")
    }

    #[test]
    fn unchanged_system_passes() {
        let c = run(&results(&CASES, 2, 12, 1.0, 0.02), &base(0.02), &Rules::default(), false);
        assert_eq!(c.verdict, Verdict::Pass, "{:#?}", c.cases);
        assert_eq!(c.verdict.exit_code(), crate::exit::PASS);
        assert_eq!(c.counts.unchanged, 4);
        assert!((c.case_significance - 0.01 / 4.0).abs() < 1e-12, "Bonferroni over the compared cases");
        assert!(c.headline.contains("No change"), "{}", c.headline);
    }

    #[test]
    fn ten_percent_slower_regresses_throughput_and_latency() {
        let c = run(&results(&CASES, 2, 12, 1.12, 0.02), &base(0.02), &Rules::default(), false);
        assert_eq!(c.verdict, Verdict::Regressed);
        assert_eq!(c.verdict.exit_code(), crate::exit::REGRESSION);
        assert_eq!(c.counts.regressed, 4);
        for case in &c.cases {
            let status = |name: &str| case.metrics.iter().find(|m| m.metric == name).map(|m| m.status);
            assert_eq!(status("tokens_per_second"), Some(MetricStatus::Regressed), "{}", case.id);
            assert_eq!(status("e2e_median"), Some(MetricStatus::Regressed), "{}", case.id);
            // TTFT grew ~30 ms: beyond 10% and beyond the 20 ms floor.
            assert_eq!(status("ttft_median"), Some(MetricStatus::Regressed), "{}", case.id);
            assert_eq!(case.metrics[0].status, MetricStatus::Regressed, "worst first");
        }
        assert!(c.headline.starts_with("Regressed:"), "{}", c.headline);
        assert!(c.accept_command.contains("--baseline baselines/p.toml"));
    }

    #[test]
    fn floor_ignores_small_absolute_changes() {
        let def = crate::gate::metrics::find("ttft_median").unwrap();
        let rule = Rules::default().rule_for("x", def);
        let base: Vec<f64> = (0..12).map(|i| 25.0 + f64::from(i) * 0.1).collect();
        // +20%, clearly significant, but only 5 ms: below the 20 ms floor.
        let cur: Vec<f64> = base.iter().map(|v| v * 1.2).collect();
        let m = compare_metric(def, rule, "warm", &base, &cur, Detection::new(0.01, POWER)).unwrap();
        assert!(m.change > 0.19 && m.p_value.unwrap() < 0.01);
        assert_eq!(m.status, MetricStatus::Pass);
        // The same relative change at 250 ms is 50 ms: a regression.
        let base: Vec<f64> = base.iter().map(|v| v * 10.0).collect();
        let cur: Vec<f64> = cur.iter().map(|v| v * 10.0).collect();
        assert_eq!(
            compare_metric(def, rule, "warm", &base, &cur, Detection::new(0.01, POWER)).unwrap().status,
            MetricStatus::Regressed
        );
    }

    #[test]
    fn improvement_is_reported_and_can_require_an_update() {
        let r = results(&CASES, 2, 12, 0.8, 0.02);
        let c = run(&r, &base(0.02), &Rules::default(), false);
        assert_eq!(c.verdict, Verdict::Improved);
        assert_eq!(c.verdict.exit_code(), crate::exit::PASS);
        assert!(c.headline.starts_with("Improved"), "{}", c.headline);
        let cfg: crate::config::Config =
            crate::config::parse_toml("[gate]\non_improvement = \"require-update\"\n", "x.toml").unwrap();
        let c = run(&r, &base(0.02), &Rules::from_config(&cfg.gate), false);
        assert_eq!(c.verdict, Verdict::UpdateRequired);
        assert_eq!(c.verdict.exit_code(), crate::exit::REGRESSION);
    }

    #[test]
    fn heavy_noise_beyond_tolerance_is_not_a_regression() {
        // Two noisy samples whose medians differ by >5% by chance only: the
        // test sees no significant shift.
        let def = crate::gate::metrics::find("tokens_per_second").unwrap();
        let rule = Rules::default().rule_for("x", def);
        let base = [100.0, 70.0, 130.0, 95.0, 105.0, 60.0, 140.0, 90.0, 110.0, 100.0];
        let cur = [92.0, 72.0, 125.0, 88.0, 100.0, 62.0, 135.0, 85.0, 108.0, 90.0];
        let m = compare_metric(def, rule, "warm", &base, &cur, Detection::new(0.01, POWER)).unwrap();
        assert!(m.change < -0.05, "{}", m.change);
        assert_eq!(m.status, MetricStatus::Noise);
        assert!(m.min_detectable_change.unwrap() > 0.05, "noise this large cannot catch 5%");
        assert!(m.repetitions_needed.unwrap() > 10);
    }

    #[test]
    fn too_few_samples_cannot_be_judged() {
        let r = results(&CASES, 2, 3, 1.2, 0.02);
        let b = Baseline::from_results(&results(&CASES, 1, 3, 1.0, 0.02), "p");
        let c = run(&r, &b, &Rules::default(), false);
        assert_eq!(c.verdict, Verdict::Warn, "never a silent pass");
        assert!(c.cases.iter().all(|k| k.metrics.iter().all(|m| m.status == MetricStatus::CannotJudge)));
        assert!(c.cases[0].metrics[0].min_detectable_change.is_none());
        assert!(c.cases[0].metrics[0].repetitions_needed.is_some());
        assert!(c.headline.starts_with("Cannot judge"), "{}", c.headline);
    }

    #[test]
    fn mismatches_refuse_unless_allowed() {
        let mut r = results(&CASES, 2, 12, 1.0, 0.02);
        r.suite.name = "quick".into();
        r.environment.server.model = "other".into();
        r.cases[0].prompt.template_fingerprint = "changed".into();
        let c = run(&r, &base(0.02), &Rules::default(), false);
        assert_eq!(c.verdict, Verdict::Refused);
        assert_eq!(c.verdict.exit_code(), crate::exit::RUN_FAILED);
        assert!(c.cases.is_empty());
        let whats: Vec<&str> = c.mismatches.iter().map(|m| m.what.as_str()).collect();
        assert!(whats.contains(&"suite") && whats.contains(&"model"), "{whats:?}");
        assert!(whats.iter().any(|w| w.starts_with("prompt recipe of code-review/12800")), "{whats:?}");
        assert!(c.headline.contains("suite differs"), "{}", c.headline);
        let c = run(&r, &base(0.02), &Rules::default(), true);
        assert_eq!(c.verdict, Verdict::Pass);
        assert!(c.mismatch_allowed);
        assert!(c.notes[0].contains("--allow-mismatch"));
    }

    #[test]
    fn engine_change_is_a_mismatch_but_a_version_bump_is_not() {
        let mut r = results(&CASES, 2, 12, 1.0, 0.02);
        r.environment.server.reported_version = Some("0.7.0".into());
        assert!(mismatches(&r, &base(0.02)).is_empty());
        r.environment.server.owned_by = Some("sglang".into());
        assert_eq!(mismatches(&r, &base(0.02))[0].what, "server engine");
    }

    #[test]
    fn failed_requests_and_short_outputs_make_a_case_invalid() {
        let mut r = results(&CASES, 2, 12, 1.0, 0.02);
        {
            let warm = r.cases[0].phases.get_mut(&PhaseName::Warm).unwrap();
            warm.requests[3].ok = false;
            warm.requests[3].error = Some(crate::results::RequestError {
                class: crate::results::ErrorClass::Timeout,
                status: None,
                message: "t".into(),
            });
            warm.summary = PhaseSummary::from_records(&warm.requests, 10.0, 100);
        }
        {
            let warm = r.cases[1].phases.get_mut(&PhaseName::Warm).unwrap();
            warm.requests[0].output_tokens = Some(40);
            warm.summary = PhaseSummary::from_records(&warm.requests, 10.0, 100);
        }
        let c = run(&r, &base(0.02), &Rules::default(), false);
        assert_eq!(c.verdict, Verdict::Invalid);
        assert_eq!(c.counts.invalid, 2);
        assert!(c.cases[0].notes[0].contains("1 of 13 requests failed (1 timeout)"), "{:?}", c.cases[0].notes);
        assert!(c.cases[1].notes[0].contains("did not hold the output length"), "{:?}", c.cases[1].notes);
        // An allowed error rate lets the case be judged.
        let cfg: crate::config::Config = crate::config::parse_toml("[gate]\nmax_error_rate = 0.1\n", "x").unwrap();
        let c = run(&r, &base(0.02), &Rules::from_config(&cfg.gate), false);
        assert_eq!(c.counts.invalid, 1);
    }

    #[test]
    fn incomplete_run_is_invalid() {
        let mut r = results(&CASES[..2], 2, 12, 1.0, 0.02);
        r.complete = false;
        let c = run(&r, &base(0.02), &Rules::default(), false);
        assert_eq!(c.verdict, Verdict::Invalid);
        assert_eq!(c.counts.missing, 2);
        assert!(c.cases.iter().any(|k| k.notes[0].contains("not reached")));
    }

    #[test]
    fn new_and_missing_cases_warn() {
        let r = results(&["code-review/12800", "brand-new/1"], 2, 12, 1.0, 0.02);
        let c = run(&r, &base(0.02), &Rules::default(), false);
        assert_eq!(c.verdict, Verdict::Warn);
        assert_eq!((c.counts.new, c.counts.missing), (1, 3));
        // With a --cases filter, cases outside it are not missing.
        let mut r = results(&["code-review/12800"], 2, 12, 1.0, 0.02);
        r.settings.cases_filter = Some("code-review/12800".into());
        let c = run(&r, &base(0.02), &Rules::default(), false);
        assert_eq!(c.verdict, Verdict::Pass);
        assert!((c.case_significance - 0.01).abs() < 1e-12);
    }

    #[test]
    fn output_drift_warns_by_default() {
        let mut r = results(&CASES, 2, 12, 1.0, 0.02);
        r.cases[0].phases.get_mut(&PhaseName::Warm).unwrap().requests[0].output_text =
            Some("SELECT * FROM users WHERE id = 1; -- completely different".into());
        let c = run(&r, &base(0.02), &Rules::default(), false);
        assert_eq!(c.verdict, Verdict::Warn);
        let case = c.cases.iter().find(|k| k.id == CASES[0]).unwrap();
        assert!(case.output_similarity.unwrap() < 0.9);
        assert!(case.notes[0].contains("output drift"));
        let same = c.cases.iter().find(|k| k.id == CASES[1]).unwrap();
        assert_eq!(same.output_similarity, Some(1.0));
    }

    #[test]
    fn warn_level_regression_does_not_fail() {
        let cfg: crate::config::Config =
            crate::config::parse_toml("[[gate.override]]\ncases = \"*\"\nlevel = \"warn\"\n", "x.toml").unwrap();
        let c = run(&results(&CASES, 2, 12, 1.12, 0.02), &base(0.02), &Rules::from_config(&cfg.gate), false);
        assert_eq!(c.verdict, Verdict::Warn);
        assert_eq!(c.verdict.exit_code(), crate::exit::PASS);
        assert!(c.headline.starts_with("Warning:"), "{}", c.headline);
    }

    #[test]
    fn gpu_figures_are_judged_on_tolerance_and_floor() {
        let r = Rules::default();
        let m = |name: &str| crate::gate::metrics::find(name).unwrap();
        let status = |name: &str, b: f64, c: f64| {
            compare_scalar(m(name), r.rule_for("x", m(name)), "warm", b, c).unwrap().status
        };
        // +2.5% and +2000 MiB: beyond +2% and the 256 MiB floor.
        assert_eq!(status("gpu_memory_peak_mib", 80_000.0, 82_000.0), MetricStatus::Regressed);
        // +2.5% of a small footprint is under the floor.
        assert_eq!(status("gpu_memory_peak_mib", 8_000.0, 8_200.0), MetricStatus::Pass);
        assert_eq!(status("gpu_memory_peak_mib", 80_000.0, 76_000.0), MetricStatus::Improved);
        // Memory utilisation: +2 points fail, +1.5 points pass.
        assert_eq!(status("gpu_memory_util_pct", 90.0, 92.5), MetricStatus::Regressed);
        assert_eq!(status("gpu_memory_util_pct", 90.0, 91.5), MetricStatus::Pass);
        // Energy per token warns; GPU utilisation is informational.
        assert_eq!(status("energy_per_token_j", 1.0, 1.2), MetricStatus::Warn);
        assert_eq!(status("gpu_util_pct", 90.0, 40.0), MetricStatus::Pass);
        let row =
            compare_scalar(m("gpu_memory_peak_mib"), r.rule_for("x", m("gpu_memory_peak_mib")), "warm", 100.0, 110.0)
                .unwrap();
        assert_eq!((row.p_value, row.min_detectable_change), (None, None));
    }

    #[test]
    fn comparison_round_trips_through_json() {
        let c = run(&results(&CASES, 2, 12, 1.12, 0.02), &base(0.02), &Rules::default(), false);
        let json = serde_json::to_string(&c).unwrap();
        let back: Comparison = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c);
    }
}
