//! The gate commands: `compare`, `check`, `baseline update|show`, `calibrate`.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow};

use super::{check_writable, execute, print_stdout};
use crate::baseline::{self, Baseline, UpdateOptions};
use crate::cli::{
    BaselineShowArgs, BaselineUpdateArgs, CalibrateArgs, CheckArgs, ColorChoice, CompareArgs, ReportArgs, ReportFormat,
};
use crate::config::LoadedConfig;
use crate::exit::{self, Failure};
use crate::gate::compare::{CompareInput, compare};
use crate::gate::metrics::CATALOGUE;
use crate::gate::rules::Rules;
use crate::gate::{Comparison, Verdict};
use crate::progress::Verbosity;
use crate::report::render::{self, Format, RenderOptions};
use crate::results::{PhaseName, PhaseSummary, Results};

/// The gate rules of the config file (`--config`, else ./infergate.toml).
pub fn load_rules(config: Option<&Path>) -> Result<Rules, Failure> {
    let loaded = LoadedConfig::load(config).map_err(|e| Failure::invalid(anyhow!(e)))?;
    Ok(Rules::from_config(&loaded.config.gate))
}

/// Loads a baseline; a missing file says how to record one.
pub fn load_baseline(arg: &str) -> Result<(Baseline, PathBuf), Failure> {
    let path = baseline::resolve_for_read(arg);
    if !path.exists() {
        return Err(Failure::invalid(anyhow!(
            "baseline {} does not exist; record one with `infergate baseline update --results RESULTS.json --baseline {arg}`",
            path.display()
        )));
    }
    let b = Baseline::load(&path).map_err(Failure::invalid)?;
    Ok((b, path))
}

fn comparison_path(explicit: &Option<PathBuf>, results: &Path) -> PathBuf {
    explicit.clone().unwrap_or_else(|| sibling(results, "comparison.json"))
}

fn sibling(path: &Path, name: &str) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.join(name),
        _ => PathBuf::from(name),
    }
}

/// `infergate compare`.
pub fn compare_cmd(args: &CompareArgs) -> Result<i32, Failure> {
    let rules = load_rules(args.config.as_deref())?;
    let results = Results::load(&args.results).map_err(Failure::invalid)?;
    let (base, base_path) = load_baseline(&args.baseline)?;
    let mut cmp = compare(&CompareInput {
        results: &results,
        results_path: &args.results.display().to_string(),
        baseline: &base,
        baseline_path: &base_path.display().to_string(),
        rules: &rules,
        allow_mismatch: args.allow_mismatch,
    });
    if cmp.verdict != Verdict::Refused {
        cmp.accept_diff = accept_preview(&results, &base, &base_path, &rules);
    }
    save_comparison(&cmp, &comparison_path(&args.comparison, &args.results))?;
    emit_report(&cmp, &args.report)?;
    Ok(cmp.verdict.exit_code())
}

fn save_comparison(cmp: &Comparison, path: &Path) -> Result<(), Failure> {
    let mut json = crate::json::to_vec(cmp).context("cannot serialize the comparison").map_err(Failure::run)?;
    json.push(b'\n');
    crate::fsutil::write_output(path, &json).map_err(Failure::run)
}

/// Most lines of the baseline diff preview in a report.
const PREVIEW_LINES: usize = 120;

/// What `baseline update --only-changed` would change in the baseline file,
/// shortened for a report; `None` when nothing would change.
pub fn accept_preview(results: &Results, baseline: &Baseline, baseline_path: &Path, rules: &Rules) -> Option<String> {
    let old_text = baseline.to_toml().ok()?;
    let new = baseline::merge(
        Some(baseline),
        Baseline::from_results(results, &baseline.profile),
        &UpdateOptions { only_changed: true, cases: None, rules: rules.clone() },
    );
    let name = baseline_path.display().to_string();
    let diff = baseline::unified_diff(&old_text, &new.to_toml().ok()?, &format!("a/{name}"), &format!("b/{name}"));
    if diff.is_empty() {
        return None;
    }
    let lines: Vec<&str> = diff.lines().collect();
    if lines.len() <= PREVIEW_LINES {
        return Some(diff);
    }
    let mut short = lines[..PREVIEW_LINES].join("\n");
    short.push_str(&format!("\n... {} more lines: run the command to see them all\n", lines.len() - PREVIEW_LINES));
    Some(short)
}

/// Prints the report on stdout and writes the Markdown file when asked.
pub fn emit_report(cmp: &Comparison, args: &ReportArgs) -> Result<(), Failure> {
    let template = match &args.template {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .with_context(|| format!("cannot read the template {} (from --template)", p.display()))
                .map_err(Failure::invalid)?,
        ),
        None => None,
    };
    let color = match args.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };
    let text = match args.format {
        ReportFormat::Json => {
            let json = crate::json::to_vec(cmp).context("cannot serialize").map_err(Failure::run)?;
            let mut s = String::from_utf8(json).context("serialized JSON is UTF-8").map_err(Failure::run)?;
            s.push('\n');
            s
        }
        ReportFormat::Terminal => {
            render::render(cmp, Format::Terminal, &RenderOptions { color, template: template.clone() })
                .map_err(Failure::invalid)?
        }
        ReportFormat::Markdown => {
            render::render(cmp, Format::Markdown, &RenderOptions { color: false, template: template.clone() })
                .map_err(Failure::invalid)?
        }
    };
    print_stdout(&text);
    if let Some(path) = &args.markdown {
        let md_template = if args.format == ReportFormat::Markdown { template } else { None };
        let md = render::render(cmp, Format::Markdown, &RenderOptions { color: false, template: md_template })
            .map_err(Failure::invalid)?;
        crate::fsutil::write_output(path, md.as_bytes()).map_err(Failure::run)?;
    }
    Ok(())
}

/// `infergate check`: run, compare, report, exit with the verdict.
pub async fn check(args: &CheckArgs, verbosity: Verbosity) -> Result<i32, Failure> {
    let (plan, output) = crate::cli::run_plan(&args.run)?;
    let rules = load_rules(args.run.server.config.as_deref())?;
    let (base, base_path) = load_baseline(&args.baseline)?;
    let comparison_path = comparison_path(&args.comparison, &output);
    let checked = run_check(CheckSetup {
        plan: &plan,
        output: &output,
        rules: &rules,
        baseline: &base,
        baseline_path: &base_path,
        allow_mismatch: args.allow_mismatch,
        confirm: args.confirm,
        comparison_path: comparison_path.clone(),
        report: &args.report,
        verbosity,
        markdown_on_stdout: args.publish.no_comment,
    })
    .await?;
    super::publish::publish(
        &checked.comparison,
        &checked.markdown,
        (&output, &comparison_path),
        &args.publish,
        &crate::ci::ActionsContext::current(),
    )
    .await
}

/// Everything `check` (and `demo`) need.
pub struct CheckSetup<'a> {
    /// The run.
    pub plan: &'a crate::runner::RunPlan,
    /// Results file.
    pub output: &'a Path,
    /// Gate rules.
    pub rules: &'a Rules,
    /// The baseline.
    pub baseline: &'a Baseline,
    /// Where it came from.
    pub baseline_path: &'a Path,
    /// `--allow-mismatch`.
    pub allow_mismatch: bool,
    /// `--confirm N`.
    pub confirm: u32,
    /// Where the comparison JSON goes.
    pub comparison_path: PathBuf,
    /// Report options.
    pub report: &'a ReportArgs,
    /// Progress output.
    pub verbosity: Verbosity,
    /// Leave stdout to the caller (it prints the PR comment's Markdown instead).
    pub markdown_on_stdout: bool,
}

/// Runs the plan, compares, confirms flagged cases, reports; returns the exit code.
pub async fn run_check(s: CheckSetup<'_>) -> Result<Checked, Failure> {
    let plan = s.plan;
    // Refuse before spending GPU time when the run cannot be compared anyway.
    if !s.allow_mismatch {
        let mut differ = Vec::new();
        if s.baseline.suite.name != plan.suite.name {
            differ.push(format!("suite `{}` vs `{}`", s.baseline.suite.name, plan.suite.name));
        }
        if s.baseline.environment.model != plan.client.model {
            differ.push(format!("model `{}` vs `{}`", s.baseline.environment.model, plan.client.model));
        }
        if !differ.is_empty() {
            return Err(Failure::run(anyhow!(
                "baseline {} was recorded with a different setup ({}); use a matching --baseline, or --allow-mismatch",
                s.baseline_path.display(),
                differ.join(", ")
            )));
        }
    }
    check_writable(s.output)?;
    let mut results = execute(plan, s.verbosity).await?;
    results.save(s.output).map_err(Failure::run)?;
    let results_path = s.output.display().to_string();
    let baseline_path = s.baseline_path.display().to_string();
    let judge = |results: &Results| {
        compare(&CompareInput {
            results,
            results_path: &results_path,
            baseline: s.baseline,
            baseline_path: &baseline_path,
            rules: s.rules,
            allow_mismatch: s.allow_mismatch,
        })
    };
    let mut cmp = judge(&results);
    if s.confirm > 0 && cmp.verdict == Verdict::Regressed {
        let flagged: Vec<String> = cmp
            .cases
            .iter()
            .filter(|c| c.verdict == crate::gate::CaseVerdict::Regressed)
            .map(|c| c.id.clone())
            .collect();
        if s.verbosity != Verbosity::Quiet {
            eprintln!("confirming {} regressed case(s) with {} more run(s) each", flagged.len(), s.confirm);
        }
        let mut again = plan.clone();
        again.suite.cases.retain(|c| flagged.contains(&c.id));
        for _ in 0..s.confirm {
            let extra = execute(&again, s.verbosity).await?;
            if !extra.complete {
                results.complete = false;
            }
            append_samples(&mut results, &extra);
        }
        results.warnings.push(format!(
            "confirmation: {} re-ran {} more time(s); they were judged on all samples",
            flagged.join(", "),
            s.confirm
        ));
        results.save(s.output).map_err(Failure::run)?;
        cmp = judge(&results);
    }
    if cmp.verdict != Verdict::Refused {
        cmp.accept_diff = accept_preview(&results, s.baseline, s.baseline_path, s.rules);
    }
    save_comparison(&cmp, &s.comparison_path)?;
    let md = render::render(&cmp, Format::Markdown, &RenderOptions { color: false, template: None })
        .map_err(Failure::run)?;
    crate::fsutil::write_output(&sibling(s.output, "comparison.md"), md.as_bytes()).map_err(Failure::run)?;
    if !s.markdown_on_stdout {
        emit_report(&cmp, s.report)?;
    }
    if s.verbosity != Verbosity::Quiet {
        eprintln!(
            "results: {}  comparison: {}  report: {}",
            s.output.display(),
            s.comparison_path.display(),
            sibling(s.output, "comparison.md").display()
        );
    }
    Ok(Checked { comparison: cmp, markdown: md })
}

/// What `run_check` produced.
pub struct Checked {
    /// The comparison (already written).
    pub comparison: Comparison,
    /// Its Markdown report (already written as comparison.md).
    pub markdown: String,
}

/// Appends the requests of `extra` to the matching cases and phases of `results`.
fn append_samples(results: &mut Results, extra: &Results) {
    for case in &extra.cases {
        let Some(target) = results.cases.iter_mut().find(|c| c.id == case.id) else { continue };
        for (name, phase) in &case.phases {
            let Some(t) = target.phases.get_mut(name) else { continue };
            let offset = t.requests.len() as u32;
            t.requests.extend(phase.requests.iter().cloned().map(|mut r| {
                r.index += offset;
                r.output_text = None;
                r
            }));
            let duration = t.summary.duration_s + phase.summary.duration_s;
            t.summary = PhaseSummary::from_records(&t.requests, duration, target.output_tokens);
        }
    }
}

/// `infergate baseline update`.
pub fn baseline_update(args: &BaselineUpdateArgs) -> Result<i32, Failure> {
    let rules = load_rules(args.config.as_deref())?;
    let results = Results::load(&args.results).map_err(Failure::invalid)?;
    if !results.complete {
        return Err(Failure::run(anyhow!(
            "{} is from a run that did not complete; a baseline must come from a complete run",
            args.results.display()
        )));
    }
    let errors = results.total_errors();
    if errors > 0 {
        return Err(Failure::run(anyhow!(
            "{} has {errors} failed request(s); a baseline must come from a clean run",
            args.results.display()
        )));
    }
    if let Some(case) = results.cases.iter().find(|c| c.phases.values().any(|p| p.summary.short_outputs > 0)) {
        return Err(Failure::run(anyhow!(
            "{}: the server did not hold the output length in {} (fewer tokens than asked); such figures cannot be a baseline",
            args.results.display(),
            case.id
        )));
    }
    let target = baseline::resolve_for_write(Path::new(""), &args.baseline).map_err(Failure::invalid)?;
    let profile = target.file_stem().map_or_else(|| args.baseline.clone(), |s| s.to_string_lossy().into_owned());
    let old_text = std::fs::read_to_string(&target).ok();
    let old = match &old_text {
        Some(_) => Some(Baseline::load(&target).map_err(Failure::invalid)?),
        None => None,
    };
    if let Some(old) = &old {
        let mismatches: Vec<String> = crate::gate::compare::mismatches(&results, old)
            .into_iter()
            .filter(|m| !m.what.starts_with("prompt") && !m.what.starts_with("output tokens"))
            .map(|m| format!("{}: `{}` -> `{}`", m.what, m.baseline, m.current))
            .collect();
        if !mismatches.is_empty() && !args.allow_mismatch {
            return Err(Failure::run(anyhow!(
                "{} belongs to another setup ({}); record it under a new profile name, or pass --allow-mismatch to replace it",
                target.display(),
                mismatches.join("; ")
            )));
        }
    }
    let mut new = Baseline::from_results(&results, &profile);
    if let Some(cases) = &args.cases {
        let selected = |id: &str| cases.split(',').map(str::trim).any(|g| crate::suite::glob_match(g, id));
        if !new.cases.keys().any(|id| selected(id)) {
            return Err(Failure::invalid(anyhow!("--cases `{cases}` matches no case in {}", args.results.display())));
        }
    }
    let merged = baseline::merge(
        old.as_ref(),
        new.clone(),
        &UpdateOptions { only_changed: args.only_changed, cases: args.cases.clone(), rules: rules.clone() },
    );
    new = merged;
    let text = new.to_toml().map_err(Failure::run)?;
    let old_text = old_text.unwrap_or_default();
    let name = target.display().to_string();
    let diff = baseline::unified_diff(&old_text, &text, &format!("a/{name}"), &format!("b/{name}"));
    if diff.is_empty() {
        eprintln!("{name} is unchanged");
        return Ok(exit::PASS);
    }
    crate::fsutil::write_atomic(&target, text.as_bytes()).map_err(Failure::run)?;
    print_stdout(&diff);
    let changed = diff
        .lines()
        .filter(|l| (l.starts_with('+') || l.starts_with('-')) && !l.starts_with("+++") && !l.starts_with("---"))
        .count();
    eprintln!("wrote {name} ({changed} changed line(s))");
    Ok(exit::PASS)
}

/// `infergate baseline show`.
pub fn baseline_show(args: &BaselineShowArgs) -> Result<i32, Failure> {
    let (b, path) = load_baseline(&args.baseline)?;
    let mut out = format!(
        "{}: profile {}, suite {}, model {}, engine {}, recorded {}{}\n\n",
        path.display(),
        b.profile,
        b.suite.name,
        b.environment.model,
        b.environment.engine.as_deref().unwrap_or("unknown"),
        b.recorded_at,
        b.environment.server_version.as_deref().map(|v| format!(", server {v}")).unwrap_or_default()
    );
    let header = ["case", "phase", "n", "tok/s p50", "TTFT p50", "TTFT p99", "TPOT p50", "E2E p50", "E2E p99"];
    let mut rows = Vec::new();
    for (id, case) in &b.cases {
        for (name, phase) in [(PhaseName::Cold, &case.cold), (PhaseName::Warm, &case.warm)] {
            let Some(p) = phase else { continue };
            let v = |k: &str, unit: &str| p.stats.get(k).map_or_else(|| "-".into(), |v| format!("{v} {unit}"));
            rows.push(vec![
                id.clone(),
                name.as_str().into(),
                format!("{}", p.requests),
                v("tokens_per_second", ""),
                v("ttft_median", "ms"),
                v("ttft_p99", "ms"),
                v("tpot_median", "ms"),
                v("e2e_median", "ms"),
                v("e2e_p99", "ms"),
            ]);
        }
    }
    out.push_str(&crate::report::table::render(&header, &rows));
    print_stdout(&out);
    Ok(exit::PASS)
}

/// `infergate calibrate`: A/A runs against an unchanged server.
pub async fn calibrate(args: &CalibrateArgs, verbosity: Verbosity) -> Result<i32, Failure> {
    let (plan, output) = crate::cli::run_plan(&args.run)?;
    let rules = load_rules(args.run.server.config.as_deref())?;
    check_writable(&output)?;
    let mut runs = Vec::new();
    for i in 0..args.runs {
        if verbosity != Verbosity::Quiet {
            eprintln!("calibrate: run {} of {}", i + 1, args.runs);
        }
        let r = execute(&plan, verbosity).await?;
        if !r.complete || r.total_errors() > 0 {
            return Err(Failure::run(anyhow!(
                "calibration run {} failed or was interrupted; calibration needs clean runs of an unchanged server",
                i + 1
            )));
        }
        runs.push(r);
    }
    let report = crate::gate::calibrate::calibrate(&runs, &rules);
    let json_path = sibling(&output, "calibration.json");
    let mut json = crate::json::to_vec(&report).context("cannot serialize").map_err(Failure::run)?;
    json.push(b'\n');
    crate::fsutil::write_output(&json_path, &json).map_err(Failure::run)?;
    print_stdout(&crate::gate::calibrate::render(&report));
    if verbosity != Verbosity::Quiet {
        eprintln!("calibration written to {}", json_path.display());
    }
    Ok(exit::PASS)
}

/// Metric names, for help texts.
pub fn metric_names() -> Vec<&'static str> {
    CATALOGUE.iter().map(|m| m.name).collect()
}
