//! Comparison of current runs with a baseline: pure, deterministic.
//!
//! The replicate of a change to a serving system is the run, so every
//! per-request metric is judged at the run level
//! ([`crate::stats::runlevel`]): each run of a case gives one value (its
//! median, its p99), and the change between the sides' mean log values is
//! held against the spread of the runs (measured from two or more runs on a
//! side, else `[gate] run_to_run_cv`, else none: the report then says the
//! verdict cannot see drift between runs).
//!
//! A metric **regresses** when its change in the bad direction is beyond
//! the rule's tolerance and floor AND beyond the noise bar: a one-sided
//! Student-t bound at the per-test level. That level spends the run's
//! false-alarm budget (`[gate] significance`) over every fail-level test,
//! with the drift of a run counted once for all its cases (one shared factor
//! per metric; [`crate::stats::multiplicity`]), so a suite of 16 cases on a
//! drifting runner raises no more false alarms than the budget. A metric
//! with no estimate of its noise, or no data on a side, "cannot be judged":
//! a warning, never a silent pass.

use std::collections::{BTreeMap, BTreeSet};

use super::findings::{CaseNote, Change, Headline, MismatchKind, RunNote, Side};
use super::history_spread::HistorySpreads;
use super::rules::{OnImprovement, Rule, Rules};
use super::{
    CaseComparison, CaseVerdict, Comparison, Counts, Direction, Level, MetricComparison, MetricStatus, Mismatch,
    PhaseGpu, RunToRun, SCHEMA, Verdict,
};
use crate::baseline::{self, Baseline, BaselineCase, Fingerprint};
use crate::metrics::{CATALOGUE, MetricDef, Source};
use crate::results::{CaseResult, PhaseName, Results};
use crate::stats::multiplicity::{self, Family};
use crate::stats::runlevel::{self, Design, Detection, Prior, RunTest, RunValue, Sides, SpreadSource};

/// Power at which the minimum detectable change is computed.
pub const POWER: f64 = 0.95;

/// Most baseline runs a recommendation names.
pub const MAX_RUNS_NEEDED: usize = 100;

/// Most repetitions a recommendation names.
pub const MAX_REPETITIONS_NEEDED: f64 = 10_000.0;

/// What to compare.
#[derive(Debug, Clone, Copy)]
pub struct CompareInput<'a> {
    /// The current runs (one or more, of the same suite).
    pub current: &'a [Results],
    /// Where they are (for the accept command and the report), one per run.
    pub results_paths: &'a [String],
    /// The baseline.
    pub baseline: &'a Baseline,
    /// Where it is.
    pub baseline_path: &'a str,
    /// The rules.
    pub rules: &'a Rules,
    /// Compare even when suite, prompts or environment differ.
    pub allow_mismatch: bool,
    /// The run-to-run spread learnt from main's history: where it has a
    /// case's metric, it stands in for `[gate] run_to_run_cv`; the runs'
    /// own spread, where they measure one, still comes first.
    pub history: Option<&'a HistorySpreads>,
}

/// A metric row before the per-test level is known.
struct Pending {
    def: &'static MetricDef,
    rule: Rule,
    phase: PhaseName,
    kind: Kind,
    /// Share of the test's variance that is drift every case and metric of a run shares.
    load: f64,
}

enum Kind {
    /// A per-request metric with runs on both sides.
    Test { test: RunTest, requests: [usize; 2] },
    /// A per-request metric with no value on one side.
    NoData { baseline: Option<f64>, current: Option<f64>, requests: [usize; 2], runs: [usize; 2] },
    /// A GPU figure, judged on tolerance and floor alone.
    Gpu(MetricComparison),
}

/// The run ids of a baseline phase and one metric's worse-is-positive log value in each.
type RunLogs = (Vec<String>, Vec<f64>);

struct PendingCase {
    id: String,
    rows: Vec<Pending>,
    notes: Vec<CaseNote>,
    output_similarity: Option<f64>,
    drift: Option<Level>,
    gpu: Vec<PhaseGpu>,
    /// Log values of the baseline's runs per (phase, metric), with their run ids, for the shared drift.
    base_logs: BTreeMap<(PhaseName, &'static str), RunLogs>,
}

/// Compares the current runs with a baseline under rules.
pub fn compare(input: &CompareInput<'_>) -> Comparison {
    let CompareInput { current, baseline, rules, .. } = *input;
    let mut mismatches: Vec<Mismatch> = Vec::new();
    for m in current.iter().flat_map(|r| self::mismatches(r, baseline)) {
        if !mismatches.contains(&m) {
            mismatches.push(m);
        }
    }
    let refused = !mismatches.is_empty() && !input.allow_mismatch;
    let complete = !current.is_empty() && current.iter().all(|r| r.complete);
    let mut notes = Vec::new();
    if current.is_empty() {
        notes.push(RunNote::NoResults);
    } else if !complete {
        notes.push(RunNote::Incomplete);
    }
    for w in current.iter().flat_map(|r| &r.warnings) {
        let note = RunNote::Runner { message: w.clone() };
        if !notes.contains(&note) {
            notes.push(note);
        }
    }

    // Cases in run order, each with its result in every current run that has it.
    let mut order: Vec<&str> = Vec::new();
    let mut by_id: BTreeMap<&str, Vec<&CaseResult>> = BTreeMap::new();
    for r in current {
        for c in &r.cases {
            let runs = by_id.entry(c.id.as_str()).or_default();
            if runs.is_empty() {
                order.push(&c.id);
            }
            runs.push(c);
        }
    }
    let mut pending = Vec::new();
    let mut cases = Vec::new();
    if !refused {
        for id in &order {
            let runs = &by_id[id];
            let problems: Vec<CaseNote> = validity_problems(runs, rules);
            match baseline.cases.get(*id) {
                Some(base) => {
                    let mut p = pending_case(id, runs, base, rules, input.history);
                    p.notes.splice(0..0, problems);
                    pending.push(p);
                }
                None => cases.push(CaseComparison {
                    id: (*id).to_string(),
                    verdict: if problems.is_empty() { CaseVerdict::New } else { CaseVerdict::Invalid },
                    metrics: Vec::new(),
                    output_similarity: None,
                    notes: problems.into_iter().chain([CaseNote::NotInBaseline]).collect(),
                    gpu: runs.first().map(|c| PhaseGpu::of(c)).unwrap_or_default(),
                }),
            }
        }
        let filter = current.first().and_then(|r| r.settings.cases_filter.as_ref());
        for id in baseline.cases.keys() {
            let selected = filter.is_none_or(|f| f.matches(id));
            if selected && !by_id.contains_key(id.as_str()) {
                cases.push(CaseComparison {
                    id: id.clone(),
                    verdict: CaseVerdict::Missing,
                    metrics: Vec::new(),
                    output_similarity: None,
                    notes: vec![if complete { CaseNote::NotInResults } else { CaseNote::NotReached }],
                    gpu: Vec::new(),
                });
            }
        }
    }

    // Nothing in common with the baseline is nothing judged, never a pass.
    let nothing_judged = !refused && complete && pending.is_empty();
    if nothing_judged {
        notes.insert(
            0,
            if current.iter().all(|r| r.cases.is_empty()) {
                RunNote::NoCases
            } else {
                RunNote::NoCaseInBaseline { baseline_cases: baseline.cases.len() }
            },
        );
    }
    pool_cases(&mut pending);
    let level = test_level(&mut pending, rules);
    let detection = Detection::new(level, rules.significance, POWER);
    let mut quantiles = Quantiles::default();
    let mut judged: Vec<&MetricComparison> = Vec::new();
    let finished: Vec<CaseComparison> =
        pending.into_iter().map(|p| finish_case(p, rules, detection, &mut quantiles)).collect();
    cases.extend(finished);
    cases.sort_by(|a, b| a.verdict.cmp(&b.verdict).then_with(|| a.id.cmp(&b.id)));
    for c in &cases {
        judged.extend(c.metrics.iter().filter(|m| m.level == Level::Fail && m.spread_source.is_some()));
    }
    let mut run_to_run = run_to_run(&judged);
    if judged.iter().any(|m| m.spread_source == Some(SpreadSource::History)) {
        run_to_run.history_runs = input.history.map(|h| h.runs);
    }
    if let Some(h) = input.history.filter(|h| h.series == 0) {
        notes.push(RunNote::HistoryUnused {
            profile: h.profile.clone(),
            records: h.records,
            same_environment: h.same_environment,
            needed: runlevel::MIN_HISTORY_RUNS,
        });
    }
    if run_to_run.source == Some(SpreadSource::None) {
        notes.push(RunNote::DriftNotSeen);
    }

    let counts = count(&cases);
    let verdict = if refused {
        Verdict::Refused
    } else if !complete || counts.invalid > 0 || nothing_judged {
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
        notes.insert(0, RunNote::MismatchAllowed);
    }
    let headline = headline(verdict, &mismatches, &cases, &notes);
    let paths: Vec<String> = input.results_paths.iter().map(|p| shell_quote(p)).collect();
    Comparison {
        schema: SCHEMA.into(),
        verdict,
        headline,
        profile: baseline.profile.clone(),
        baseline_path: input.baseline_path.into(),
        results_paths: input.results_paths.to_vec(),
        run_ids: current.iter().map(|r| r.run_id.clone()).collect(),
        mismatches,
        mismatch_allowed: input.allow_mismatch,
        significance: rules.significance,
        test_significance: level,
        run_to_run,
        counts,
        cases,
        notes,
        accept_command: format!(
            "infergate baseline update --results {} --baseline {}",
            paths.join(" "),
            shell_quote(input.baseline_path)
        ),
        accept_diff: None,
        server: current.first().map(super::ServerSummary::of).unwrap_or_default(),
        main_over_time: None,
    }
}

/// The validity problems of a case over its current runs.
fn validity_problems(runs: &[&CaseResult], rules: &Rules) -> Vec<CaseNote> {
    let mut out = Vec::new();
    for (i, case) in runs.iter().enumerate() {
        for problem in super::validity::problems(case, rules) {
            let p = CaseNote::Problem { run: (runs.len() > 1).then_some(i + 1), problem };
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    out
}

/// Tests judged on their runs' own spread (one run a side): each side's
/// within-run variance pooled over the cases of the same phase and metric
/// ([`RunTest::pooled_within`]).
fn pool_within(pending: &mut [PendingCase]) {
    // Per side: the sum of within-run variances, of their degrees of freedom, and the count.
    type Sums = [(f64, f64, usize); 2];
    let mut sums: BTreeMap<(PhaseName, &'static str), Sums> = BTreeMap::new();
    for p in pending.iter() {
        for row in &p.rows {
            let Kind::Test { test, .. } = &row.kind else { continue };
            if test.source == SpreadSource::Runs {
                continue;
            }
            let (Some(wb), Some(wc)) = (test.within, test.within_current) else { continue };
            let dfs = test.within_dfs();
            let entry = sums.entry((row.phase, row.def.name)).or_default();
            for (side, (w, df)) in entry.iter_mut().zip([(wb, dfs[0]), (wc, dfs[1])]) {
                side.0 += w;
                side.1 += df;
                side.2 += 1;
            }
        }
    }
    for p in pending.iter_mut() {
        for row in &mut p.rows {
            let Some(&[b, c]) = sums.get(&(row.phase, row.def.name)) else { continue };
            if b.2 < 2 {
                continue;
            }
            if let Kind::Test { test, .. } = &mut row.kind {
                *test = test.pooled_within((b.0 / b.2 as f64, b.1), (c.0 / c.2 as f64, c.1));
            }
        }
    }
}

/// Estimates each metric's noise from all the cases recorded in the same
/// baseline runs together ([`runlevel::pool`]): the largest such group of
/// cases, per phase and metric.
fn pool_cases(pending: &mut [PendingCase]) {
    pool_within(pending);
    let keys: BTreeSet<(PhaseName, &'static str)> = pending.iter().flat_map(|p| p.base_logs.keys().copied()).collect();
    for key in keys {
        let mut groups: BTreeMap<&Vec<String>, Vec<usize>> = BTreeMap::new();
        for (i, p) in pending.iter().enumerate() {
            if let Some((ids, _)) = p.base_logs.get(&key) {
                groups.entry(ids).or_default().push(i);
            }
        }
        let Some((_, members)) = groups.into_iter().max_by_key(|(_, m)| m.len()) else { continue };
        let test_of = |p: &PendingCase| {
            p.rows.iter().find_map(|r| match &r.kind {
                Kind::Test { test, .. } if r.phase == key.0 && r.def.name == key.1 => Some(*test),
                _ => None,
            })
        };
        let rows: Option<Vec<(&[f64], f64)>> = members
            .iter()
            .map(|i| {
                let p = &pending[*i];
                Some((p.base_logs.get(&key)?.1.as_slice(), test_of(p)?.within?))
            })
            .collect();
        let Some(pooled) = rows.and_then(|rows| runlevel::pool(&rows)) else { continue };
        for (pos, i) in members.iter().enumerate() {
            for row in &mut pending[*i].rows {
                if let Kind::Test { test, .. } = &mut row.kind {
                    if row.phase == key.0 && row.def.name == key.1 {
                        *test = test.pooled(&pooled, pooled.own[pos]);
                    }
                }
            }
        }
    }
}

/// The one-sided level of every test: the run's false-alarm budget over
/// the fail-level tests (warn-level when there are none). A run's drift is
/// one draw that moves every case and metric of the run: the part of the
/// runs' spread that all of them share (the runs x (case, metric) analysis of
/// variance of the baseline's runs, worse-is-positive) is that one factor,
/// so those tests count once, not once each. A metric's own shared drift
/// beyond it is treated as independent across metrics, which can only make
/// the real false-alarm rate lower.
fn test_level(pending: &mut [PendingCase], rules: &Rules) -> f64 {
    // The largest group of cases recorded in the same baseline runs.
    let mut groups: BTreeMap<&Vec<String>, Vec<&[f64]>> = BTreeMap::new();
    for p in pending.iter() {
        for (ids, logs) in p.base_logs.values() {
            groups.entry(ids).or_default().push(logs.as_slice());
        }
    }
    let common = groups
        .into_iter()
        .max_by_key(|(_, rows)| rows.len())
        .and_then(|(ids, rows)| runlevel::shared_variance(&rows).map(|v| (ids.clone(), v)));
    for p in pending.iter_mut() {
        for row in &mut p.rows {
            let Kind::Test { test, .. } = &row.kind else { continue };
            let Some(se) = test.se else { continue };
            let fb = 1.0 / test.runs[0] as f64;
            let fc = 1.0 / test.runs[1] as f64;
            let shared = match test.source {
                SpreadSource::Runs => common.as_ref().map_or(0.0, |(ids, v)| {
                    let aligned = p.base_logs.get(&(row.phase, row.def.name)).is_some_and(|(i, _)| i == ids);
                    v * (fc + if aligned { fb } else { 0.0 })
                }),
                SpreadSource::Config | SpreadSource::History => test.between * (fb + fc),
                SpreadSource::None => 0.0,
            };
            row.load = if se > 0.0 { (shared / (se * se)).min(1.0) } else { 0.0 };
        }
    }
    let level_of = |target: Level| {
        let mut loads = Vec::new();
        for p in pending.iter() {
            let mut seen = BTreeSet::new();
            for row in &p.rows {
                let Kind::Test { test, .. } = &row.kind else { continue };
                let (Some(_), Some(family)) = (test.se, row.def.family()) else { continue };
                // Metrics that are one test (tokens/s and E2E) count once.
                if row.rule.level == target && seen.insert((row.phase, family)) {
                    loads.push(row.load);
                }
            }
        }
        multiplicity::test_level(&[Family::new(loads)], rules.significance)
    };
    level_of(Level::Fail).or_else(|| level_of(Level::Warn)).unwrap_or(rules.significance)
}

/// The runs of one phase of one metric on each side, and their test.
fn pending_case(
    id: &str,
    runs: &[&CaseResult],
    base: &BaselineCase,
    rules: &Rules,
    history: Option<&HistorySpreads>,
) -> PendingCase {
    let mut notes = Vec::new();
    let mut rows = Vec::new();
    let mut base_logs = BTreeMap::new();
    for &phase in &rules.phases {
        let cur: Vec<&crate::results::PhaseResult> = runs.iter().filter_map(|c| c.phases.get(&phase)).collect();
        let bp = base.phase(phase);
        let (false, Some(bp)) = (cur.is_empty(), bp) else {
            // On one side only, the sides were not measured alike: the
            // rules' metrics of the phase cannot be judged, and that is
            // never a pass. On neither side, the phase was not part of the
            // suite.
            if !cur.is_empty() || bp.is_some() {
                let missing_in = if cur.is_empty() { Side::Results } else { Side::Baseline };
                notes.push(CaseNote::PhaseMissing { phase, missing_in });
            }
            continue;
        };
        if cur.iter().any(|p| p.summary.requests == 0) {
            notes.push(CaseNote::NoRequests { phase });
            continue;
        }
        let usage_missing: u32 = cur.iter().map(|p| p.summary.usage_missing).sum();
        if usage_missing > 0 {
            notes.push(CaseNote::UsageMissing { phase, requests: usage_missing });
        }
        let retried: u32 = cur.iter().map(|p| p.summary.retried).sum();
        if retried > 0 {
            notes.push(CaseNote::Retried { phase, requests: retried });
        }
        for def in CATALOGUE {
            let rule = rules.rule_for(id, def);
            if rule.level == Level::Off {
                continue;
            }
            let kind = match def.source {
                Source::Requests { series, statistic } => {
                    let q = statistic.quantile();
                    let values = |samples: &[f64]| RunValue::of(samples, q);
                    let base_runs: Vec<Option<RunValue>> = bp.runs.iter().map(|r| values(r.series(series))).collect();
                    let cur_runs: Vec<Option<RunValue>> =
                        cur.iter().map(|p| values(&series.samples(&p.requests))).collect();
                    let requests = [
                        bp.runs.iter().map(|r| r.series(series).len()).sum(),
                        cur.iter().map(|p| p.requests.iter().filter(|r| r.ok).count()).sum(),
                    ];
                    let b: Option<Vec<RunValue>> = base_runs.iter().copied().collect();
                    let c: Option<Vec<RunValue>> = cur_runs.iter().copied().collect();
                    match (b, c) {
                        (Some(b), Some(c)) if !b.is_empty() => {
                            let prior = history
                                .and_then(|h| h.get(id, phase, def.name))
                                .or_else(|| Prior::configured(rule.run_to_run_cv));
                            let test = runlevel::test(Sides { baseline: &b, current: &c, prior });
                            match test {
                                Some(test) => {
                                    if b.len() >= 2 {
                                        base_logs.insert(
                                            (phase, def.name),
                                            (
                                                bp.runs.iter().map(|r| r.run.clone()).collect::<Vec<String>>(),
                                                // Worse is positive, so that a slow run moves every row alike.
                                                b.iter()
                                                    .map(|r| match def.direction {
                                                        Direction::LowerIsBetter => r.value.ln(),
                                                        Direction::HigherIsBetter => -r.value.ln(),
                                                    })
                                                    .collect::<Vec<f64>>(),
                                            ),
                                        );
                                    }
                                    Kind::Test { test, requests }
                                }
                                None => Kind::NoData {
                                    baseline: None,
                                    current: None,
                                    requests,
                                    runs: [bp.runs.len(), cur.len()],
                                },
                            }
                        }
                        _ => {
                            let geo = |v: &[Option<RunValue>]| {
                                let logs: Vec<f64> = v.iter().flatten().map(|r| r.value.ln()).collect();
                                crate::stats::mean(&logs).map(f64::exp)
                            };
                            let side = if base_runs.iter().any(Option::is_none) || base_runs.is_empty() {
                                Side::Baseline
                            } else {
                                Side::Results
                            };
                            notes.push(CaseNote::NoSamples {
                                metric: def.name.into(),
                                phase,
                                side,
                                series: series.key().into(),
                            });
                            Kind::NoData {
                                baseline: geo(&base_runs),
                                current: geo(&cur_runs),
                                requests,
                                runs: [bp.runs.len(), cur.len()],
                            }
                        }
                    }
                }
                Source::Gpu(stat) => {
                    let mut values: Vec<f64> =
                        cur.iter().filter_map(|p| p.gpu.as_ref().and_then(|g| stat.of(g))).collect();
                    values.sort_by(f64::total_cmp);
                    let current = crate::stats::summarize(&values).map(|s| s.median);
                    let base = bp.stats.get(def.name).copied();
                    match (base, current) {
                        (Some(b), Some(c)) => match compare_scalar(def, rule, phase.as_str(), b, c) {
                            Some(row) => Kind::Gpu(row),
                            None => continue,
                        },
                        // Recorded on one side only: a GPU figure that cannot
                        // be compared is said, never skipped.
                        (Some(_), None) | (None, Some(_)) if rule.level >= Level::Warn => {
                            let side = if base.is_none() { Side::Baseline } else { Side::Results };
                            notes.push(CaseNote::NoGpuValue { metric: def.name.into(), phase, side });
                            Kind::NoData { baseline: base, current, requests: [0, 0], runs: [bp.runs.len(), cur.len()] }
                        }
                        _ => continue,
                    }
                }
            };
            rows.push(Pending { def, rule, phase, kind, load: 0.0 });
        }
    }
    if rows.is_empty() && !notes.iter().any(CaseNote::makes_invalid) {
        notes.push(CaseNote::NothingJudged);
    }
    let output_similarity = match (&base.output_text, runs.first().and_then(|c| first_output(c))) {
        (Some(a), Some(b)) => Some(baseline::similarity(a, b)),
        _ => None,
    };
    let mut drift = None;
    if let Some(sim) = output_similarity.filter(|s| *s < rules.drift_min_similarity) {
        if rules.drift_level != Level::Off {
            notes.push(CaseNote::OutputDrift { similarity: sim, threshold: rules.drift_min_similarity });
            drift = Some(rules.drift_level);
        }
    }
    PendingCase {
        id: id.to_string(),
        rows,
        notes,
        output_similarity,
        drift,
        gpu: runs.first().map(|c| PhaseGpu::of(c)).unwrap_or_default(),
        base_logs,
    }
}

/// What differs between results and baseline.
pub fn mismatches(results: &Results, baseline: &Baseline) -> Vec<Mismatch> {
    let mut out = Vec::new();
    let mut differ = |what: MismatchKind, b: &str, c: &str| {
        if b != c {
            out.push(Mismatch { what, baseline: b.into(), current: c.into() });
        }
    };
    differ(MismatchKind::Suite, &baseline.suite.name, &results.suite.name);
    if baseline.suite.seed != results.suite.seed {
        differ(MismatchKind::SuiteSeed, &baseline.suite.seed.to_string(), &results.suite.seed.to_string());
    }
    let cur = Fingerprint::of(results);
    let base = &baseline.environment;
    differ(MismatchKind::Model, &base.model, &cur.model);
    differ(MismatchKind::Api, &base.api, &cur.api);
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "unknown".into());
    if base.engine.is_some() || cur.engine.is_some() {
        differ(MismatchKind::ServerEngine, &opt(&base.engine), &opt(&cur.engine));
    }
    // GPU facts are compared where both sides know them: a run without
    // telemetry says so in its own notes.
    if let (Some(b), Some(c)) = (&base.gpu_name, &cur.gpu_name) {
        differ(MismatchKind::Gpu, b, c);
    }
    let major = |v: &str| v.split('.').next().unwrap_or(v).to_string();
    if let (Some(b), Some(c)) = (&base.gpu_driver, &cur.gpu_driver) {
        differ(MismatchKind::GpuDriverMajor, &major(b), &major(c));
    }
    let gpu_settings = [
        (MismatchKind::GpuCount, text(base.gpu_count), text(cur.gpu_count)),
        (MismatchKind::GpuMemory, text(base.gpu_memory_mib), text(cur.gpu_memory_mib)),
        (MismatchKind::GpuPowerLimit, text(base.gpu_power_limit_w), text(cur.gpu_power_limit_w)),
        (MismatchKind::GpuMig, text(base.gpu_mig), text(cur.gpu_mig)),
        (MismatchKind::GpuEcc, text(base.gpu_ecc), text(cur.gpu_ecc)),
        (MismatchKind::GpuClocksChanged, text(base.gpu_clocks_locked), text(cur.gpu_clocks_locked)),
    ];
    for (what, b, c) in gpu_settings {
        if let (Some(b), Some(c)) = (b, c) {
            differ(what, &b, &c);
        }
    }
    for case in &results.cases {
        let Some(b) = baseline.cases.get(&case.id) else { continue };
        differ(
            MismatchKind::PromptRecipe { case: case.id.clone() },
            &short(&b.template_fingerprint),
            &short(&case.prompt.template_fingerprint),
        );
        differ(
            MismatchKind::PromptText { case: case.id.clone() },
            &short(&b.text_fingerprint),
            &short(&case.prompt.text_fingerprint),
        );
        differ(
            MismatchKind::OutputTokens { case: case.id.clone() },
            &b.output_tokens.to_string(),
            &case.output_tokens.to_string(),
        );
    }
    out
}

fn text<T: ToString>(v: Option<T>) -> Option<String> {
    v.map(|x| x.to_string())
}

fn short(fp: &str) -> String {
    fp.chars().take(12).collect()
}

fn first_output(case: &CaseResult) -> Option<&str> {
    let warm = case.phases.get(&crate::results::PhaseName::Warm)?;
    warm.requests.iter().find(|r| r.ok).and_then(|r| r.output_text.as_deref())
}

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
        runs: [1, 1],
        spread_source: None,
        spread: None,
        noise: None,
        threshold: None,
        min_detectable_change: None,
        repetitions_needed: None,
        runs_needed: None,
        status,
    })
}

/// The widenings and power quantiles of one comparison, computed once per
/// degrees of freedom.
#[derive(Default)]
struct Quantiles(BTreeMap<u64, ([f64; 2], f64)>);

impl Quantiles {
    /// The critical value of a test of shared share `load` at `df`, and the power quantile.
    fn at(&mut self, det: Detection, df: f64, load: f64) -> (f64, f64) {
        let (w, t_power) = self.quantiles(det, df);
        (det.z * Detection::mix(w, load), t_power)
    }

    /// The widenings and power quantile at `df` rounded down to a grid
    /// (fewer degrees of freedom only widen: the safe side), so that the
    /// thousands of rows of a large comparison share a few dozen quantiles.
    fn quantiles(&mut self, det: Detection, df: f64) -> ([f64; 2], f64) {
        let df = if !df.is_finite() || df >= 10_000.0 {
            10_000.0
        } else if df < 20.0 {
            (df * 20.0).floor() / 20.0
        } else if df < 200.0 {
            df.floor()
        } else {
            (df / 10.0).floor() * 10.0
        }
        .max(1.0);
        *self
            .0
            .entry(df.to_bits())
            .or_insert_with(|| (det.widenings(df), crate::stats::dist::student_t_quantile(det.power, df)))
    }
}

/// The bad-direction log change of a relative limit: a rise of `r` for
/// lower-is-better metrics, a drop of `r` for higher-is-better ones.
fn log_limit(direction: Direction, r: f64) -> f64 {
    match direction {
        Direction::LowerIsBetter => r.ln_1p(),
        Direction::HigherIsBetter if r < 1.0 => -(-r).ln_1p(),
        Direction::HigherIsBetter => f64::INFINITY,
    }
}

/// The relative change (magnitude) of a bad-direction log change.
fn relative(direction: Direction, m: f64) -> f64 {
    match direction {
        Direction::LowerIsBetter => m.exp_m1(),
        Direction::HigherIsBetter => -(-m).exp_m1(),
    }
}

fn finish_case(p: PendingCase, rules: &Rules, det: Detection, q: &mut Quantiles) -> CaseComparison {
    let PendingCase { id, rows, mut notes, output_similarity, drift, gpu, .. } = p;
    let invalid = notes.iter().any(CaseNote::makes_invalid);
    let _ = rules;
    let mut metrics: Vec<MetricComparison> = rows.into_iter().map(|r| finish_row(r, det, q)).collect();
    metrics.sort_by_key(|m| m.status);
    let worst = metrics.iter().map(|m| m.status).min();
    if metrics.iter().any(|m| m.status == MetricStatus::CannotJudge && m.level >= Level::Warn) && notes.is_empty() {
        notes.push(CaseNote::SomeCannotJudge);
    }
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
    CaseComparison { id, verdict, metrics, output_similarity, notes, gpu }
}

fn finish_row(p: Pending, det: Detection, q: &mut Quantiles) -> MetricComparison {
    let Pending { def, rule, phase, kind, load } = p;
    let (test, requests) = match kind {
        Kind::Gpu(row) => return row,
        Kind::NoData { baseline, current, requests, runs } => {
            let (b, c) = (baseline.unwrap_or(0.0), current.unwrap_or(0.0));
            return MetricComparison {
                metric: def.name.into(),
                phase: phase.as_str().into(),
                unit: def.unit.into(),
                direction: def.direction,
                level: rule.level,
                baseline: b,
                current: c,
                change: if b > 0.0 && c > 0.0 { c / b - 1.0 } else { 0.0 },
                tolerance: rule.tolerance,
                floor: rule.floor,
                p_value: None,
                samples: requests,
                runs,
                spread_source: None,
                spread: None,
                noise: None,
                threshold: None,
                min_detectable_change: None,
                repetitions_needed: None,
                runs_needed: None,
                status: if rule.level == Level::Info { MetricStatus::Pass } else { MetricStatus::CannotJudge },
            };
        }
        Kind::Test { test, requests } => (test, requests),
    };
    let (b, c) = (test.baseline, test.current);
    let bad = match def.direction {
        Direction::LowerIsBetter => test.change_log,
        Direction::HigherIsBetter => -test.change_log,
    };
    // Changes below the floor never count: the limit is the larger of the
    // tolerance and the floor relative to the baseline.
    let tolerance = log_limit(def.direction, rule.tolerance);
    let floor = if b > 0.0 { log_limit(def.direction, rule.floor / b) } else { f64::INFINITY };
    let limit = tolerance.max(floor);
    let material = (c - b).abs() >= rule.floor;
    let worse = bad > tolerance && material;
    let better = -bad > tolerance && material;
    let mut row = MetricComparison {
        metric: def.name.into(),
        phase: phase.as_str().into(),
        unit: def.unit.into(),
        direction: def.direction,
        level: rule.level,
        baseline: b,
        current: c,
        change: test.change_log.exp_m1(),
        tolerance: rule.tolerance,
        floor: rule.floor,
        p_value: None,
        samples: requests,
        runs: test.runs,
        spread_source: Some(test.source),
        spread: (test.source != SpreadSource::None).then(|| test.between.sqrt()),
        noise: test.se,
        threshold: None,
        min_detectable_change: None,
        repetitions_needed: None,
        runs_needed: None,
        status: MetricStatus::CannotJudge,
    };
    let Some(se) = test.se else {
        if rule.level == Level::Info {
            row.status = MetricStatus::Pass;
        }
        // One run a side too short for a spread of its own: five requests give one.
        if test.runs == [1, 1] && test.per_request.is_none() {
            row.repetitions_needed = Some(runlevel::MIN_WITHIN_SAMPLES as u32);
        }
        return row;
    };
    let df = test.df;
    let (crit, t_power) = q.at(det, df, load);
    let bar = crit * se;
    let widening = Detection::mix(q.quantiles(det, df).0, load);
    row.p_value = Some(crate::stats::dist::normal_sf(test.change_log.abs() / se / widening).clamp(0.0, 1.0));
    row.threshold = Some(relative(def.direction, limit.max(bar)));
    let mdc = limit.max(bar) + t_power * se;
    row.min_detectable_change = Some(relative(def.direction, mdc));
    row.status = status(rule.level, worse, better, true, if worse { bad > bar } else { -bad > bar });
    // What would let it catch twice the limit 95% of the time.
    let target = log_limit(def.direction, 2.0 * relative(def.direction, limit));
    if mdc > target && target.is_finite() {
        let design = Design { baseline_runs: test.runs[0], current_runs: test.runs[1], requests: test.requests[1] };
        row.repetitions_needed = repetitions_for(&test, design, limit, target, crit, t_power);
        row.runs_needed = (design.baseline_runs + 1..=MAX_RUNS_NEEDED)
            .find(|&k| {
                test.under(Design { baseline_runs: k, ..design }).is_some_and(|(se, df)| {
                    let (crit, t_power) = q.at(det, df, load);
                    limit.max(crit * se) + t_power * se <= target
                })
            })
            .map(|k| k as u32);
    }
    row
}

/// Requests per run that bring the minimum detectable change down to
/// `target` at the present runs (the quantiles kept as they are: more
/// requests only raise the degrees of freedom, so this errs on the safe side).
fn repetitions_for(test: &RunTest, d: Design, limit: f64, target: f64, crit: f64, t_power: f64) -> Option<u32> {
    let per_request = test.per_request?;
    // MDC <= target  <=>  se <= (target - limit) / t_power  and  se <= target / (crit + t_power)
    let se_max = ((target - limit) / t_power).min(target / (crit + t_power));
    let per_run = se_max * se_max / (1.0 / d.baseline_runs as f64 + 1.0 / d.current_runs as f64) - test.between;
    if !(se_max > 0.0 && per_run > 0.0) {
        return None;
    }
    let n = (per_request / per_run).ceil().max(d.requests + 1.0);
    (n <= MAX_REPETITIONS_NEEDED).then_some(n as u32)
}

/// Whether the gate would report no change between two recordings of one
/// phase of a case (`baseline update --only-changed`): no metric regressed,
/// warned or improved, each tested at `level`; a metric without an estimate
/// of its noise counts as changed when it moved beyond tolerance and floor.
pub fn phase_unchanged(
    case_id: &str,
    old: &baseline::BaselinePhase,
    new: &baseline::BaselinePhase,
    rules: &Rules,
    level: f64,
) -> bool {
    if old.errors != new.errors {
        return false;
    }
    let det = Detection::new(level, rules.significance, POWER);
    let mut q = Quantiles::default();
    CATALOGUE.iter().all(|def| {
        let rule = rules.rule_for(case_id, def);
        if rule.level == Level::Off {
            return true;
        }
        let beyond = |b: f64, c: f64| {
            let change = if b == 0.0 { if c == 0.0 { 0.0 } else { f64::INFINITY } } else { (c - b) / b };
            let (worse, better) = beyond(def, rule, b, c, change);
            worse || better
        };
        let by_stats = || match (old.stats.get(def.name), new.stats.get(def.name)) {
            (Some(b), Some(c)) => !beyond(*b, *c),
            (None, None) => true,
            _ => false,
        };
        let Some((series, statistic)) = def.request_source() else { return by_stats() };
        let values = |p: &baseline::BaselinePhase| -> Option<Vec<RunValue>> {
            p.runs.iter().map(|r| RunValue::of(r.series(series), statistic.quantile())).collect()
        };
        let (Some(b), Some(c)) = (values(old), values(new)) else { return by_stats() };
        match runlevel::test(Sides { baseline: &b, current: &c, prior: Prior::configured(rule.run_to_run_cv) }) {
            Some(test) if test.se.is_some() => {
                let requests = [0, 0];
                let row = finish_row(
                    Pending { def, rule, phase: PhaseName::Warm, kind: Kind::Test { test, requests }, load: 0.0 },
                    det,
                    &mut q,
                );
                matches!(row.status, MetricStatus::Pass | MetricStatus::Noise)
            }
            Some(test) => !beyond(test.baseline, test.current),
            None => by_stats(),
        }
    })
}

/// How the run-to-run drift entered the judged fail-level metrics.
fn run_to_run(judged: &[&MetricComparison]) -> RunToRun {
    let mut cvs: Vec<f64> = judged.iter().filter_map(|m| m.spread).collect();
    cvs.sort_by(f64::total_cmp);
    RunToRun {
        source: judged.iter().filter_map(|m| m.spread_source).min(),
        baseline_runs: judged.iter().map(|m| m.runs[0]).min().unwrap_or(0),
        current_runs: judged.iter().map(|m| m.runs[1]).min().unwrap_or(0),
        median_cv: (!cvs.is_empty()).then(|| cvs[cvs.len() / 2]),
        history_runs: None,
    }
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

/// What sums the comparison up: for a verdict, the metric furthest past
/// its limit, or the first reason there is no verdict.
fn headline(verdict: Verdict, mismatches: &[Mismatch], cases: &[CaseComparison], notes: &[RunNote]) -> Headline {
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
    let change = |(c, m): (&CaseComparison, &MetricComparison)| Change {
        case: c.id.clone(),
        metric: m.metric.clone(),
        phase: m.phase.clone(),
        change: m.change,
        baseline: m.baseline,
        current: m.current,
        unit: m.unit.clone(),
        tolerance: m.tolerance,
        floor: m.floor,
    };
    let first_note = |c: &CaseComparison| c.notes.first().cloned();
    match verdict {
        Verdict::Refused => match mismatches.first() {
            Some(first) => Headline::NotCompared {
                what: first.what.clone(),
                baseline: first.baseline.clone(),
                current: first.current.clone(),
                more: mismatches.len() - 1,
            },
            None => Headline::Untrusted { case: None, note: None },
        },
        Verdict::Invalid => {
            let case = cases
                .iter()
                .find(|c| c.verdict == CaseVerdict::Invalid)
                .and_then(|c| c.notes.first().map(|n| (c.id.clone(), n.clone())));
            let note = if case.is_none() { notes.first().cloned() } else { None };
            Headline::Untrusted { case, note }
        }
        Verdict::Regressed => match worst(MetricStatus::Regressed) {
            Some(w) => Headline::Regressed { change: change(w) },
            None => {
                let c = cases.iter().find(|c| c.verdict == CaseVerdict::Regressed);
                Headline::RegressedCase {
                    case: c.map(|c| c.id.clone()).unwrap_or_default(),
                    note: c.and_then(first_note),
                }
            }
        },
        Verdict::UpdateRequired | Verdict::Improved => Headline::Improved {
            update_required: verdict == Verdict::UpdateRequired,
            change: worst(MetricStatus::Improved).map(change),
        },
        Verdict::Warn => {
            if let Some(w) = worst(MetricStatus::Warn) {
                Headline::Warning { change: change(w) }
            } else if let Some((c, m)) = worst(MetricStatus::CannotJudge) {
                if m.runs[0] + m.runs[1] <= 2 && m.samples[0].min(m.samples[1]) > 0 {
                    Headline::CannotJudgeOneRun {
                        metric: m.metric.clone(),
                        case: c.id.clone(),
                        requests: m.samples[1],
                        needed: runlevel::MIN_WITHIN_SAMPLES,
                    }
                } else {
                    Headline::CannotJudge { metric: m.metric.clone(), case: c.id.clone(), note: first_note(c) }
                }
            } else {
                match cases.iter().find(|c| c.verdict != CaseVerdict::Pass && c.verdict != CaseVerdict::Improved) {
                    Some(c) => Headline::CaseWarning { case: c.id.clone(), note: first_note(c) },
                    None => Headline::Warnings,
                }
            }
        }
        Verdict::Pass => Headline::NoChange { cases: cases.len() },
    }
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
mod tests {
    use super::*;
    use crate::results::PhaseSummary;
    use crate::testing::results;

    fn run(results: &Results, baseline: &Baseline, rules: &Rules, allow: bool) -> Comparison {
        runs(std::slice::from_ref(results), baseline, rules, allow)
    }

    fn runs(current: &[Results], baseline: &Baseline, rules: &Rules, allow: bool) -> Comparison {
        let paths: Vec<String> = (0..current.len()).map(|i| format!("infergate-out/results{i}.json")).collect();
        compare(&CompareInput {
            current,
            results_paths: &paths,
            baseline,
            baseline_path: "baselines/p.toml",
            rules,
            allow_mismatch: allow,
            history: None,
        })
    }

    const CASES: [&str; 4] = ["code-review/12800", "code-review/41200", "debugging/12800", "debugging/41200"];

    fn base(cv: f64) -> Baseline {
        Baseline::from_results(&results(&CASES, 1, 12, 1.0, cv), "p")
    }

    /// A baseline of `scales.len()` runs, each slowed by its factor.
    fn base_of_runs(scales: &[f64], n: u32, cv: f64) -> Baseline {
        let runs: Vec<Results> =
            scales.iter().enumerate().map(|(i, s)| results(&CASES, 100 + i as u64, n, *s, cv)).collect();
        Baseline::from_runs(&runs, "p")
    }

    fn status_of(c: &Comparison, case: &str, metric: &str) -> Option<MetricStatus> {
        c.cases.iter().find(|k| k.id == case)?.metrics.iter().find(|m| m.metric == metric).map(|m| m.status)
    }

    #[test]
    fn unchanged_system_passes() {
        let c = run(&results(&CASES, 2, 12, 1.0, 0.02), &base(0.02), &Rules::default(), false);
        assert_eq!(c.verdict, Verdict::Pass, "{:#?}", c.cases);
        assert!(!c.verdict.is_regression() && !c.verdict.is_unjudged(), "{:?}", c.verdict);
        assert_eq!(c.counts.unchanged, 4);
        assert!(c.test_significance < 0.01 / 4.0, "four cases, three metric families: {}", c.test_significance);
        assert!(matches!(c.headline, Headline::NoChange { .. }), "{:?}", c.headline);
        // One run a side and nothing configured: every report says the drift is unseen.
        assert_eq!(c.run_to_run.source, Some(SpreadSource::None));
        assert!(c.notes.contains(&RunNote::DriftNotSeen), "{:?}", c.notes);
    }

    #[test]
    fn ten_percent_slower_regresses_throughput_and_latency() {
        let b = base_of_runs(&[1.0, 1.005, 0.995, 1.002, 0.998], 12, 0.02);
        let c = run(&results(&CASES, 2, 12, 1.12, 0.02), &b, &Rules::default(), false);
        assert_eq!(c.verdict, Verdict::Regressed);
        assert!(c.verdict.is_regression(), "{:?}", c.verdict);
        assert_eq!(c.counts.regressed, 4);
        for case in &c.cases {
            let status = |name: &str| case.metrics.iter().find(|m| m.metric == name).map(|m| m.status);
            assert_eq!(status("tokens_per_second"), Some(MetricStatus::Regressed), "{}", case.id);
            assert_eq!(status("e2e_median"), Some(MetricStatus::Regressed), "{}", case.id);
            // TTFT grew ~30 ms: beyond 10% and beyond the 20 ms floor.
            assert_eq!(status("ttft_median"), Some(MetricStatus::Regressed), "{}", case.id);
            assert_eq!(case.metrics[0].status, MetricStatus::Regressed, "worst first");
            let tps = case.metrics.iter().find(|m| m.metric == "tokens_per_second").unwrap();
            assert!(tps.threshold.unwrap() >= 0.05 && tps.min_detectable_change.unwrap() > tps.threshold.unwrap());
        }
        assert!(matches!(c.headline, Headline::Regressed { .. } | Headline::RegressedCase { .. }), "{:?}", c.headline);
        assert!(c.accept_command.contains("--baseline baselines/p.toml"));
    }

    #[test]
    fn drift_between_runs_is_not_a_regression_and_a_real_change_still_is() {
        // The baseline's five runs spread +-4%: a current run 6% slower is
        // within what the runner does, 30% slower is not.
        let b = base_of_runs(&[1.0, 1.04, 0.96, 1.02, 0.98], 12, 0.01);
        let one_run = base(0.01);
        let drifted = results(&CASES, 7, 12, 1.06, 0.01);
        let c = run(&drifted, &b, &Rules::default(), false);
        assert_eq!(c.verdict, Verdict::Pass, "{:?}", c.headline);
        assert_eq!(c.run_to_run.source, Some(SpreadSource::Runs));
        assert_eq!((c.run_to_run.baseline_runs, c.run_to_run.current_runs), (5, 1));
        assert!(c.run_to_run.median_cv.unwrap() > 0.02, "{:?}", c.run_to_run);
        assert!(!c.notes.contains(&RunNote::DriftNotSeen));
        let tps = c.cases[0].metrics.iter().find(|m| m.metric == "tokens_per_second").unwrap();
        assert_eq!(tps.spread_source, Some(SpreadSource::Runs));
        assert_eq!(tps.runs, [5, 1]);
        assert_eq!(tps.samples, [60, 12]);
        // The same drift against a one-run baseline looks like a regression.
        assert_eq!(run(&drifted, &one_run, &Rules::default(), false).verdict, Verdict::Regressed);
        // A real change beyond the drift is caught.
        let c = run(&results(&CASES, 8, 12, 1.3, 0.01), &b, &Rules::default(), false);
        assert_eq!(c.verdict, Verdict::Regressed, "{:?}", c.headline);
    }

    #[test]
    fn configured_run_to_run_spread_quiets_a_one_run_baseline() {
        let drifted = results(&CASES, 7, 12, 1.06, 0.01);
        let cfg: crate::gate::rules::GateSection =
            crate::tomldoc::parse_toml("[gate]\nrun_to_run_cv = \"4%\"\n", "x.toml").unwrap();
        let c = run(&drifted, &base(0.01), &Rules::from_config(&cfg.gate), false);
        assert_eq!(c.verdict, Verdict::Pass, "{:?}", c.headline);
        assert_eq!(c.run_to_run.source, Some(SpreadSource::Config));
        assert!(!c.notes.contains(&RunNote::DriftNotSeen));
        let c = run(&results(&CASES, 8, 12, 1.4, 0.01), &base(0.01), &Rules::from_config(&cfg.gate), false);
        assert_eq!(c.verdict, Verdict::Regressed, "{:?}", c.headline);
    }

    #[test]
    fn several_current_runs_are_judged_together() {
        let b = base_of_runs(&[1.0, 1.03, 0.97], 12, 0.01);
        let cur: Vec<Results> =
            [1.02, 0.99].iter().enumerate().map(|(i, s)| results(&CASES, 50 + i as u64, 12, *s, 0.01)).collect();
        let c = runs(&cur, &b, &Rules::default(), false);
        assert_eq!(c.verdict, Verdict::Pass, "{:?}", c.headline);
        assert_eq!(c.run_ids, ["run50", "run51"]);
        assert!(c.accept_command.contains("--results infergate-out/results0.json infergate-out/results1.json"));
        let tps = c.cases[0].metrics.iter().find(|m| m.metric == "tokens_per_second").unwrap();
        assert_eq!(tps.runs, [3, 2]);
        // Three baseline runs bound a 3% drift loosely (two degrees of
        // freedom): a 40% slowdown is beyond it, with both current runs.
        let slow: Vec<Results> =
            [1.42, 1.40].iter().enumerate().map(|(i, s)| results(&CASES, 60 + i as u64, 12, *s, 0.01)).collect();
        let c = runs(&slow, &b, &Rules::default(), false);
        assert_eq!(c.verdict, Verdict::Regressed, "{:#?}", c.cases[0].metrics);
    }

    #[test]
    fn shared_drift_spends_the_budget_once() {
        // Drift shared by every case of a run lets each test run at a level
        // nearer the whole budget than the independent split would.
        let shared = base_of_runs(&[1.0, 1.04, 0.96, 1.02, 0.98, 1.03], 12, 0.005);
        let c = run(&results(&CASES, 9, 12, 1.0, 0.005), &shared, &Rules::default(), false);
        let independent = run(&results(&CASES, 9, 12, 1.0, 0.005), &base(0.005), &Rules::default(), false);
        assert!(
            c.test_significance > 2.0 * independent.test_significance,
            "{} vs {}",
            c.test_significance,
            independent.test_significance
        );
        assert!(c.test_significance <= 0.01);
    }

    #[test]
    fn floor_ignores_small_absolute_changes() {
        // TTFT of 25 ms: +20% is 5 ms, under the 20 ms floor.
        let mut r = results(&CASES[..1], 2, 12, 1.0, 0.002);
        let b = Baseline::from_results(&r, "p");
        let warm = r.cases[0].phases.get_mut(&PhaseName::Warm).unwrap();
        for q in &mut warm.requests {
            q.ttft_ms = q.ttft_ms.map(|t| t * 1.2);
        }
        let c = run(&r, &b, &Rules::default(), false);
        let m = c.cases[0].metrics.iter().find(|m| m.metric == "ttft_median").unwrap();
        assert!(m.change > 0.19, "{}", m.change);
        // 250 ms x 20% = 50 ms: beyond the floor.
        assert_eq!(m.status, MetricStatus::Regressed);
        let mut small = results(&CASES[..1], 2, 12, 0.1, 0.002);
        let b = Baseline::from_results(&small, "p");
        for q in &mut small.cases[0].phases.get_mut(&PhaseName::Warm).unwrap().requests {
            q.ttft_ms = q.ttft_ms.map(|t| t * 1.2);
        }
        let c = run(&small, &b, &Rules::default(), false);
        assert_eq!(status_of(&c, CASES[0], "ttft_median"), Some(MetricStatus::Pass));
    }

    #[test]
    fn improvement_is_reported_and_can_require_an_update() {
        let r = results(&CASES, 2, 12, 0.8, 0.02);
        let c = run(&r, &base(0.02), &Rules::default(), false);
        assert_eq!(c.verdict, Verdict::Improved);
        assert!(!c.verdict.is_regression() && !c.verdict.is_unjudged(), "{:?}", c.verdict);
        assert!(matches!(c.headline, Headline::Improved { .. }), "{:?}", c.headline);
        let cfg: crate::gate::rules::GateSection =
            crate::tomldoc::parse_toml("[gate]\non_improvement = \"require-update\"\n", "x.toml").unwrap();
        let c = run(&r, &base(0.02), &Rules::from_config(&cfg.gate), false);
        assert_eq!(c.verdict, Verdict::UpdateRequired);
        assert!(c.verdict.is_regression(), "{:?}", c.verdict);
    }

    #[test]
    fn heavy_noise_beyond_tolerance_is_not_a_regression() {
        // 15% per-request noise and 10 requests: a 6% drop is beyond the
        // tolerance but well within what the medians of two such runs do.
        let b = Baseline::from_results(&results(&CASES[..1], 3, 10, 1.0, 0.15), "p");
        let c = run(&results(&CASES[..1], 4, 10, 1.06, 0.15), &b, &Rules::default(), false);
        let tps = c.cases[0].metrics.iter().find(|m| m.metric == "tokens_per_second").unwrap();
        assert!(tps.change < -0.05 || tps.status != MetricStatus::Noise, "{tps:?}");
        assert_ne!(tps.status, MetricStatus::Regressed, "{tps:?}");
        assert!(tps.min_detectable_change.unwrap() > 0.1, "noise this large cannot catch 10%: {tps:?}");
        assert!(tps.repetitions_needed.unwrap() > 10, "{tps:?}");
    }

    #[test]
    fn too_few_samples_cannot_be_judged() {
        let r = results(&CASES, 2, 3, 1.2, 0.02);
        let b = Baseline::from_results(&results(&CASES, 1, 3, 1.0, 0.02), "p");
        let c = run(&r, &b, &Rules::default(), false);
        assert_eq!(c.verdict, Verdict::Warn, "never a silent pass");
        assert!(c.cases.iter().all(|k| k.metrics.iter().all(|m| m.status == MetricStatus::CannotJudge)));
        assert!(c.cases[0].metrics[0].min_detectable_change.is_none());
        assert!(
            matches!(c.headline, Headline::CannotJudge { .. } | Headline::CannotJudgeOneRun { .. }),
            "{:?}",
            c.headline
        );
        // Three runs of three requests each can be judged: the runs carry the spread.
        let b = base_of_runs(&[1.0, 1.01, 0.99], 3, 0.02);
        let c = run(&r, &b, &Rules::default(), false);
        assert_eq!(c.verdict, Verdict::Regressed, "{:?}", c.headline);
    }

    #[test]
    fn a_baseline_without_samples_of_a_gated_metric_cannot_pass() {
        let mut b = base(0.02);
        for case in b.cases.values_mut() {
            for run in &mut case.warm.as_mut().unwrap().runs {
                run.tokens_per_second.clear();
                run.e2e_ms.clear();
            }
        }
        let c = run(&results(&CASES, 2, 12, 1.5, 0.02), &b, &Rules::default(), false);
        assert_ne!(c.verdict, Verdict::Pass);
        assert_eq!(status_of(&c, CASES[0], "tokens_per_second"), Some(MetricStatus::CannotJudge));
        assert!(
            c.cases[0].notes.iter().any(|n| matches!(n, CaseNote::NoSamples { metric, phase: PhaseName::Warm, side: Side::Baseline, .. } if metric == "tokens_per_second")),
            "{:?}",
            c.cases[0].notes
        );
    }

    /// Every key of a baseline file, as paths of table keys and array
    /// indices; of an array of numbers only its first element.
    fn key_paths(v: &toml::Value, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        match v {
            toml::Value::Table(t) => {
                for (k, v) in t {
                    path.push(k.clone());
                    out.push(path.clone());
                    key_paths(v, path, out);
                    path.pop();
                }
            }
            toml::Value::Array(a) => {
                let scalars = a.iter().all(|x| !matches!(x, toml::Value::Table(_) | toml::Value::Array(_)));
                for (i, x) in a.iter().enumerate().take(if scalars { 1 } else { usize::MAX }) {
                    path.push(i.to_string());
                    out.push(path.clone());
                    key_paths(x, path, out);
                    path.pop();
                }
            }
            _ => {}
        }
    }

    /// Applies `edit` to the value at `path` (its parent gets `None` to delete it).
    fn mutate(root: &mut toml::Value, path: &[String], edit: &dyn Fn(&toml::Value) -> Option<toml::Value>) {
        let (last, parents) = path.split_last().unwrap();
        let mut at = root;
        for k in parents {
            at = match at {
                toml::Value::Table(t) => t.get_mut(k).unwrap(),
                toml::Value::Array(a) => &mut a[k.parse::<usize>().unwrap()],
                _ => unreachable!(),
            };
        }
        match at {
            toml::Value::Table(t) => match edit(&t[last.as_str()]) {
                Some(v) => {
                    t.insert(last.clone(), v);
                }
                None => {
                    t.remove(last);
                }
            },
            toml::Value::Array(a) => {
                let i = last.parse::<usize>().unwrap();
                match edit(&a[i]) {
                    Some(v) => a[i] = v,
                    None => {
                        a.remove(i);
                    }
                }
            }
            _ => unreachable!(),
        }
    }

    #[test]
    fn a_mutilated_baseline_never_passes_a_run_twice_as_slow() {
        use toml::Value as V;
        // One case, so that whatever a mutilation does to it decides the run.
        let case = ["debugging/12800"];
        let runs: Vec<Results> = (0..5).map(|i| results(&case, 100 + i, 12, 1.0 + 0.01 * i as f64, 0.03)).collect();
        let mut with_gpu = runs;
        for r in &mut with_gpu {
            for p in r.cases[0].phases.values_mut() {
                p.gpu = Some(crate::telemetry::GpuPhase {
                    devices: Vec::new(),
                    memory_peak_mib: Some(20_000.0),
                    memory_used_pct: Some(25.0),
                    gpu_util_pct: Some(90.0),
                    energy_j: Some(100.0),
                    energy_per_token_j: Some(0.5),
                    samples: Vec::new(),
                });
            }
        }
        let good = Baseline::from_runs(&with_gpu, "p");
        let mut slow = results(&case, 7, 12, 2.0, 0.03);
        slow.cases[0]
            .phases
            .values_mut()
            .for_each(|p| p.gpu.clone_from(&with_gpu[0].cases[0].phases[&PhaseName::Warm].gpu));
        let rules = Rules::default();
        assert_eq!(run(&slow, &good, &rules, false).verdict, Verdict::Regressed);

        let root: V = toml::from_str(&good.to_toml().unwrap()).unwrap();
        let mut paths = Vec::new();
        key_paths(&root, &mut Vec::new(), &mut paths);
        type Edit = (&'static str, fn(&V) -> Option<V>);
        let edits: [Edit; 9] = [
            ("delete", |_| None),
            ("empty", |v| match v {
                V::Array(_) => Some(V::Array(Vec::new())),
                V::Table(_) => Some(V::Table(toml::Table::new())),
                V::String(_) => Some(V::String(String::new())),
                _ => None,
            }),
            ("zero", |v| match v {
                V::Float(_) => Some(V::Float(0.0)),
                V::Integer(_) => Some(V::Integer(0)),
                _ => Some(v.clone()),
            }),
            ("negative", |v| match v {
                V::Float(x) => Some(V::Float(-x.abs() - 1.0)),
                V::Integer(x) => Some(V::Integer(-x.abs() - 1)),
                _ => Some(v.clone()),
            }),
            ("nan", |v| Some(if matches!(v, V::Float(_)) { V::Float(f64::NAN) } else { v.clone() })),
            ("inf", |v| Some(if matches!(v, V::Float(_)) { V::Float(f64::INFINITY) } else { v.clone() })),
            ("huge", |v| match v {
                V::Float(x) => Some(V::Float(x * 1e6)),
                V::Integer(x) => Some(V::Integer(x.saturating_mul(1_000_000))),
                _ => Some(v.clone()),
            }),
            ("other string", |v| Some(if matches!(v, V::String(_)) { V::String("x".into()) } else { v.clone() })),
            ("first only", |v| match v {
                V::Array(a) if a.len() > 1 => Some(V::Array(a[..1].to_vec())),
                _ => Some(v.clone()),
            }),
        ];
        let (mut refused, mut judged) = (0, 0);
        for path in &paths {
            for (name, edit) in &edits {
                let mut m = root.clone();
                mutate(&mut m, path, edit);
                let Ok(b) = Baseline::parse(&toml::to_string(&m).unwrap(), "b.toml") else {
                    refused += 1;
                    continue;
                };
                judged += 1;
                let c = run(&slow, &b, &rules, false);
                assert!(
                    matches!(c.verdict, Verdict::Regressed | Verdict::Invalid | Verdict::Refused),
                    "{name} at {}: {:?} ({:?})",
                    path.join("."),
                    c.verdict,
                    c.headline
                );
            }
        }
        eprintln!(
            "{} keys x {} edits: {refused} refused on load, {judged} loaded and failed the slower run",
            paths.len(),
            edits.len()
        );
        assert!(
            paths.len() > 60 && refused > 100 && judged > 100,
            "{} paths, {refused} refused, {judged} judged",
            paths.len()
        );
    }

    #[test]
    fn only_changed_keeps_a_phase_the_gate_would_not_report() {
        let old = base_of_runs(&[1.0, 1.02, 0.98], 12, 0.01);
        let same = base_of_runs(&[1.01, 0.99, 1.0], 12, 0.01);
        let slower = base_of_runs(&[1.2, 1.22, 1.18], 12, 0.01);
        let rules = Rules::default();
        let phase = |b: &Baseline| b.cases[CASES[0]].warm.clone().unwrap();
        assert!(phase_unchanged(CASES[0], &phase(&old), &phase(&same), &rules, 0.001));
        assert!(!phase_unchanged(CASES[0], &phase(&old), &phase(&slower), &rules, 0.001));
    }
    #[test]
    fn mismatches_refuse_unless_allowed() {
        let mut r = results(&CASES, 2, 12, 1.0, 0.02);
        r.suite.name = "quick".into();
        r.environment.server.model = "other".into();
        r.cases[0].prompt.template_fingerprint = "changed".into();
        let c = run(&r, &base(0.02), &Rules::default(), false);
        assert_eq!(c.verdict, Verdict::Refused);
        assert!(c.verdict.is_unjudged(), "{:?}", c.verdict);
        assert!(c.cases.is_empty());
        let whats: Vec<&MismatchKind> = c.mismatches.iter().map(|m| &m.what).collect();
        assert!(whats.contains(&&MismatchKind::Suite) && whats.contains(&&MismatchKind::Model), "{whats:?}");
        let recipe = MismatchKind::PromptRecipe { case: "code-review/12800".into() };
        assert!(whats.contains(&&recipe), "{whats:?}");
        assert!(matches!(c.headline, Headline::NotCompared { what: MismatchKind::Suite, .. }), "{:?}", c.headline);
        let c = run(&r, &base(0.02), &Rules::default(), true);
        assert_eq!(c.verdict, Verdict::Pass);
        assert!(c.mismatch_allowed);
        assert!(c.notes[0] == RunNote::MismatchAllowed);
    }

    #[test]
    fn engine_change_is_a_mismatch_but_a_version_bump_is_not() {
        let mut r = results(&CASES, 2, 12, 1.0, 0.02);
        r.environment.server.reported_version = Some("0.7.0".into());
        assert!(mismatches(&r, &base(0.02)).is_empty());
        r.environment.server.owned_by = Some("sglang".into());
        assert_eq!(mismatches(&r, &base(0.02))[0].what, MismatchKind::ServerEngine);
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
        assert!(
            matches!(&c.cases[0].notes[0], CaseNote::Problem { problem: super::super::Problem::ErrorRate { errors: 1, judged: 13, classes, .. }, .. } if classes == &[("timeout".to_string(), 1)]),
            "{:?}",
            c.cases[0].notes
        );
        assert!(
            matches!(
                &c.cases[1].notes[0],
                CaseNote::Problem { problem: super::super::Problem::ShortOutputs { .. }, .. }
            ),
            "{:?}",
            c.cases[1].notes
        );
        // An allowed error rate lets the case be judged.
        let cfg: crate::gate::rules::GateSection =
            crate::tomldoc::parse_toml("[gate]\nmax_error_rate = 0.1\n", "x").unwrap();
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
        assert!(c.cases.iter().any(|k| k.notes[0] == CaseNote::NotReached));
    }

    #[test]
    fn new_and_missing_cases_warn() {
        let r = results(&["code-review/12800", "brand-new/1"], 2, 12, 1.0, 0.02);
        let c = run(&r, &base(0.02), &Rules::default(), false);
        assert_eq!(c.verdict, Verdict::Warn);
        assert_eq!((c.counts.new, c.counts.missing), (1, 3));
        // With a --cases filter, cases outside it are not missing.
        let mut r = results(&["code-review/12800"], 2, 12, 1.0, 0.02);
        r.settings.cases_filter = Some(crate::filter::CaseFilter::parse("code-review/12800").unwrap());
        let c = run(&r, &base(0.02), &Rules::default(), false);
        assert_eq!(c.verdict, Verdict::Pass);
        // One case, three independent metric families (E2E, TPOT, TTFT): Sidak over three.
        assert!((c.test_significance - (1.0 - 0.99f64.powf(1.0 / 3.0))).abs() < 1e-6, "{}", c.test_significance);
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
        assert!(matches!(case.notes[0], CaseNote::OutputDrift { .. }));
        let same = c.cases.iter().find(|k| k.id == CASES[1]).unwrap();
        assert_eq!(same.output_similarity, Some(1.0));
    }

    #[test]
    fn warn_level_regression_does_not_fail() {
        let cfg: crate::gate::rules::GateSection =
            crate::tomldoc::parse_toml("[[gate.override]]\ncases = \"*\"\nlevel = \"warn\"\n", "x.toml").unwrap();
        let c = run(&results(&CASES, 2, 12, 1.12, 0.02), &base(0.02), &Rules::from_config(&cfg.gate), false);
        assert_eq!(c.verdict, Verdict::Warn);
        assert!(!c.verdict.is_regression() && !c.verdict.is_unjudged(), "{:?}", c.verdict);
        assert!(matches!(c.headline, Headline::Warning { .. } | Headline::CaseWarning { .. }), "{:?}", c.headline);
    }

    #[test]
    fn gpu_figures_are_judged_on_tolerance_and_floor() {
        let r = Rules::default();
        let m = |name: &str| crate::metrics::find(name).unwrap();
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
