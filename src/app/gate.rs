//! The gate commands: `compare`, `check`, `baseline update|show`, `calibrate`.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow};

use super::{claim_outputs, execute, launch_logs, print_stdout};
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
use crate::report::Lang;
use crate::report::findings;
use crate::report::render::{self, Format, RenderOptions};
use crate::results::{PhaseName, Results};

/// The config file (`--config`, else ./infergate.toml when present).
pub fn load_config(config: Option<&Path>) -> Result<LoadedConfig, Failure> {
    LoadedConfig::load(config).map_err(|e| Failure::invalid(anyhow!(e)))
}

/// The gate rules of the config file (`--config`, else ./infergate.toml).
pub fn load_rules(config: Option<&Path>) -> Result<Rules, Failure> {
    Ok(Rules::from_config(&load_config(config)?.config.gate))
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
    let b = crate::baseline::load(&path).map_err(Failure::invalid)?;
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

/// Loads the current runs of `--results`.
fn load_runs(paths: &[PathBuf]) -> Result<Vec<Results>, Failure> {
    let runs: Vec<Results> =
        paths.iter().map(|p| crate::results::load(p).map_err(Failure::invalid)).collect::<Result<_, _>>()?;
    for (i, r) in runs.iter().enumerate() {
        if let Some(j) = runs[..i].iter().position(|o| o.run_id == r.run_id) {
            return Err(Failure::invalid(anyhow!(
                "--results {} and {} are the same run ({}): give each run once",
                paths[j].display(),
                paths[i].display(),
                r.run_id
            )));
        }
    }
    Ok(runs)
}

fn display_paths(paths: &[PathBuf]) -> Vec<String> {
    paths.iter().map(|p| p.display().to_string()).collect()
}

/// `infergate compare`.
pub fn compare_cmd(args: &CompareArgs) -> Result<i32, Failure> {
    let loaded = load_config(args.config.as_deref())?;
    let config = &loaded.config;
    let rules = Rules::from_config(&config.gate);
    let lang = config.report_lang(args.report.lang);
    let runs = load_runs(&args.results)?;
    let (base, base_path) = load_baseline(&args.baseline)?;
    let history = super::main_history::load(&args.history, &loaded, Some(&base))?;
    let spreads = history.as_ref().zip(runs.first()).map(|(h, r)| h.spreads(r, rules.significance));
    let paths = display_paths(&args.results);
    let mut cmp = compare(&CompareInput {
        current: &runs,
        results_paths: &paths,
        baseline: &base,
        baseline_path: &base_path.display().to_string(),
        rules: &rules,
        allow_mismatch: args.allow_mismatch,
        history: spreads.as_ref(),
    });
    if let Some(h) = &history {
        cmp.main_over_time = Some(h.trend(&rules)?);
    }
    if cmp.verdict != Verdict::Refused {
        cmp.accept_diff = accept_preview(&runs, &base, &base_path, &rules);
    }
    let first = args.results.first().map_or_else(|| PathBuf::from("results.json"), Clone::clone);
    let comparison = comparison_path(&args.comparison, &first);
    // Refused before anything is written, so that no output is left half done.
    for path in std::iter::once(&comparison).chain(&args.report.markdown) {
        crate::fsutil::check_target(path).map_err(Failure::invalid)?;
    }
    save_comparison(&cmp, &comparison)?;
    emit_report(&cmp, &args.report, lang)?;
    Ok(crate::exit::of_verdict(cmp.verdict, crate::cli::FailOn::Regression))
}

fn save_comparison(cmp: &Comparison, path: &Path) -> Result<(), Failure> {
    let mut json = crate::json::to_vec(cmp).context("cannot serialize the comparison").map_err(Failure::run)?;
    json.push(b'\n');
    crate::fsutil::write_output(path, &json).map_err(crate::fsutil::failure)
}

/// Most lines of the baseline diff preview in a report.
const PREVIEW_LINES: usize = 120;

/// The test `--only-changed` applies to a recorded phase: the gate would
/// not report it (each case tested at the run's budget over the cases).
fn unchanged_under(
    rules: &Rules,
    cases: usize,
) -> impl Fn(&str, PhaseName, &baseline::BaselinePhase, &baseline::BaselinePhase) -> bool + '_ {
    let level = rules.significance / cases.max(1) as f64;
    move |id, _, old, new| crate::gate::compare::phase_unchanged(id, old, new, rules, level)
}

/// What `baseline update --only-changed` would change in the baseline file,
/// shortened for a report; `None` when nothing would change.
pub fn accept_preview(runs: &[Results], baseline: &Baseline, baseline_path: &Path, rules: &Rules) -> Option<String> {
    let old_text = baseline.to_toml().ok()?;
    let unchanged = unchanged_under(rules, baseline.cases.len());
    let new = baseline::merge(
        Some(baseline),
        Baseline::from_runs(runs, &baseline.profile),
        &UpdateOptions { cases: None, drift_min_similarity: rules.drift_min_similarity },
        Some(&unchanged),
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

/// Prints the report in `lang` on stdout and writes the Markdown file when asked.
pub fn emit_report(cmp: &Comparison, args: &ReportArgs, lang: Lang) -> Result<(), Failure> {
    let template = match &args.template {
        Some(p) => Some(
            crate::input::read_capped(p, crate::input::MAX_TEXT_FILE_BYTES, "the template")
                .map_err(|e| anyhow!("{e:#} (from --template)"))
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
            render::render(cmp, Format::Terminal, &RenderOptions { color, template: template.clone(), lang })
                .map_err(Failure::invalid)?
        }
        ReportFormat::Markdown => {
            render::render(cmp, Format::Markdown, &RenderOptions { color: false, template: template.clone(), lang })
                .map_err(Failure::invalid)?
        }
    };
    print_stdout(&text)?;
    if let Some(path) = &args.markdown {
        let md_template = if args.format == ReportFormat::Markdown { template } else { None };
        let md = render::render(cmp, Format::Markdown, &RenderOptions { color: false, template: md_template, lang })
            .map_err(Failure::invalid)?;
        crate::fsutil::write_output(path, md.as_bytes()).map_err(crate::fsutil::failure)?;
    }
    Ok(())
}

/// `infergate check`: run, compare, report, exit with the verdict.
pub async fn check(args: &CheckArgs, verbosity: Verbosity) -> Result<i32, Failure> {
    let (mut plan, output) = crate::cli::run_plan(&args.run)?;
    // The token that posts the comment is this process's, never the server's.
    if let Some(launch) = &mut plan.launch {
        launch.withheld_env.push(args.publish.github.token_env.clone());
    }
    let loaded = load_config(args.run.server.config.as_deref())?;
    let config = &loaded.config;
    let rules = Rules::from_config(&config.gate);
    let lang = config.report_lang(args.report.lang);
    let (base, base_path) = load_baseline(&args.baseline)?;
    if output.as_os_str() == "-" {
        return Err(Failure::invalid(anyhow!(
            "check writes its results beside the comparison: give --out a file path, not -"
        )));
    }
    let history = super::main_history::load(&args.history, &loaded, Some(&base))?;
    let comparison_path = comparison_path(&args.comparison, &output);
    let checked = run_check(CheckSetup {
        plan: &plan,
        output: &output,
        rules: &rules,
        baseline: &base,
        baseline_path: &base_path,
        allow_mismatch: args.allow_mismatch,
        runs: args.runs,
        confirm: args.confirm,
        comparison_path: comparison_path.clone(),
        report: &args.report,
        lang,
        verbosity,
        markdown_on_stdout: args.publish.no_comment,
        history: history.as_ref(),
    })
    .await?;
    super::publish::publish(
        &checked.comparison,
        &checked.markdown,
        (&checked.results[0], &comparison_path),
        &args.publish,
        &crate::ci::ActionsContext::current(),
        lang,
    )
    .await
}

/// Everything `check` (and `demo`) need.
pub struct CheckSetup<'a> {
    /// The run.
    pub plan: &'a crate::runner::RunPlan,
    /// Results file (with several runs, the files are named after it).
    pub output: &'a Path,
    /// Gate rules.
    pub rules: &'a Rules,
    /// The baseline.
    pub baseline: &'a Baseline,
    /// Where it came from.
    pub baseline_path: &'a Path,
    /// `--allow-mismatch`.
    pub allow_mismatch: bool,
    /// `--runs K`.
    pub runs: u32,
    /// `--confirm N`.
    pub confirm: u32,
    /// Where the comparison JSON goes.
    pub comparison_path: PathBuf,
    /// Report options.
    pub report: &'a ReportArgs,
    /// The language of the reports (`--lang`, else the config's, else English).
    pub lang: Lang,
    /// Progress output.
    pub verbosity: Verbosity,
    /// Leave stdout to the caller (it prints the PR comment's Markdown instead).
    pub markdown_on_stdout: bool,
    /// Main's history (`--history`).
    pub history: Option<&'a super::main_history::GateHistory>,
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
    let runs_in_all = s.runs + s.confirm;
    let mut others = crate::cli::run_paths(s.output, s.runs);
    others.extend((1..=s.confirm).map(|i| confirm_path(s.output, i)));
    others.extend([s.comparison_path.clone(), sibling(s.output, "comparison.md")]);
    others.extend(s.report.markdown.clone());
    others.extend(launch_logs(plan, runs_in_all));
    let lock = claim_outputs(s.output, &others)?;
    super::warn_shared_launch(plan, s.runs as usize, s.verbosity);
    let mut paths = crate::cli::run_paths(s.output, s.runs);
    let mut runs = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        if paths.len() > 1 && s.verbosity != Verbosity::Quiet {
            eprintln!("run {} of {}", i + 1, paths.len());
        }
        let results = execute(&crate::cli::plan_for_run(plan, i as u32 + 1, runs_in_all), s.verbosity).await?;
        crate::results::save(&results, path).map_err(crate::fsutil::failure)?;
        let complete = results.complete;
        runs.push(results);
        if !complete {
            paths.truncate(runs.len());
            break;
        }
    }
    let baseline_path = s.baseline_path.display().to_string();
    let spreads = s.history.zip(runs.first()).map(|(h, r)| h.spreads(r, s.rules.significance));
    let judge = |runs: &[Results], paths: &[PathBuf]| {
        compare(&CompareInput {
            current: runs,
            results_paths: &display_paths(paths),
            baseline: s.baseline,
            baseline_path: &baseline_path,
            rules: s.rules,
            allow_mismatch: s.allow_mismatch,
            history: spreads.as_ref(),
        })
    };
    let mut cmp = judge(&runs, &paths);
    if s.confirm > 0 && cmp.verdict == Verdict::Regressed {
        let flagged: Vec<String> = cmp
            .cases
            .iter()
            .filter(|c| c.verdict == crate::gate::CaseVerdict::Regressed)
            .map(|c| c.id.clone())
            .collect();
        if s.verbosity != Verbosity::Quiet {
            eprintln!("confirming {} regressed case(s) in {} more run(s)", flagged.len(), s.confirm);
        }
        let mut again = plan.clone();
        again.suite.cases.retain(|c| flagged.contains(&c.id));
        for i in 1..=s.confirm {
            let extra = execute(&crate::cli::plan_for_run(&again, s.runs + i, runs_in_all), s.verbosity).await?;
            let path = confirm_path(s.output, i);
            crate::results::save(&extra, &path).map_err(crate::fsutil::failure)?;
            paths.push(path);
            let complete = extra.complete;
            runs.push(extra);
            if !complete {
                break;
            }
        }
        if let Some(first) = runs.first_mut() {
            first.warnings.push(format!(
                "confirmation: {} re-ran in {} more run(s); they were judged on all runs",
                flagged.join(", "),
                s.confirm
            ));
            crate::results::save(first, &paths[0]).map_err(crate::fsutil::failure)?;
        }
        cmp = judge(&runs, &paths);
    }
    if let Some(h) = s.history {
        cmp.main_over_time = Some(h.trend(s.rules)?);
    }
    if cmp.verdict != Verdict::Refused {
        cmp.accept_diff = accept_preview(&runs, s.baseline, s.baseline_path, s.rules);
    }
    save_comparison(&cmp, &s.comparison_path)?;
    let md = render::render(&cmp, Format::Markdown, &RenderOptions { color: false, template: None, lang: s.lang })
        .map_err(Failure::run)?;
    crate::fsutil::write_output(&sibling(s.output, "comparison.md"), md.as_bytes()).map_err(crate::fsutil::failure)?;
    if !s.markdown_on_stdout {
        emit_report(&cmp, s.report, s.lang)?;
    }
    if s.verbosity != Verbosity::Quiet {
        let files: Vec<String> = display_paths(&paths);
        eprintln!(
            "results: {}  comparison: {}  report: {}",
            files.join(" "),
            s.comparison_path.display(),
            sibling(s.output, "comparison.md").display()
        );
    }
    Ok(Checked { comparison: cmp, markdown: md, results: paths, _lock: lock })
}

/// The results file of confirmation run `i`: `STEM.confirmI.EXT` beside the output.
fn confirm_path(output: &Path, i: u32) -> PathBuf {
    let stem = output.file_stem().map_or_else(|| "results".into(), |s| s.to_string_lossy().into_owned());
    let ext = output.extension().map_or_else(|| "json".into(), |e| e.to_string_lossy().into_owned());
    output.with_file_name(format!("{stem}.confirm{i}.{ext}"))
}

/// What `run_check` produced.
pub struct Checked {
    /// The comparison (already written).
    pub comparison: Comparison,
    /// Its Markdown report (already written as comparison.md).
    pub markdown: String,
    /// The results files written, one per run.
    pub results: Vec<PathBuf>,
    /// The output folder, held until this is dropped.
    _lock: Option<crate::fsutil::FolderLock>,
}

/// Refuses results that cannot be a baseline: partial, with failed requests, short outputs.
fn check_recordable(results: &Results, path: &Path) -> Result<(), Failure> {
    if !results.complete {
        return Err(Failure::run(anyhow!(
            "{} is from a run that did not complete; a baseline must come from a complete run",
            path.display()
        )));
    }
    if results.cases.is_empty() {
        return Err(Failure::run(anyhow!("{} holds no cases: nothing to record", path.display())));
    }
    if let Some((case, problem)) =
        results.cases.iter().find_map(|c| crate::gate::validity::integrity(c).into_iter().next().map(|p| (c, p)))
    {
        return Err(Failure::run(anyhow!(
            "{}: case {}: {}; a baseline must come from a whole results file",
            path.display(),
            case.id,
            findings::problem(&problem, Lang::En)
        )));
    }
    let errors = results.total_errors();
    if errors > 0 {
        return Err(Failure::run(anyhow!(
            "{} has {errors} failed request(s); a baseline must come from a clean run",
            path.display()
        )));
    }
    if let Some(case) = results.cases.iter().find(|c| c.phases.values().any(|p| p.summary.short_outputs > 0)) {
        return Err(Failure::run(anyhow!(
            "{}: the server did not hold the output length in {} (fewer tokens than asked); such figures cannot be a baseline",
            path.display(),
            case.id
        )));
    }
    Ok(())
}

/// `infergate baseline update`.
pub fn baseline_update(args: &BaselineUpdateArgs) -> Result<i32, Failure> {
    let rules = load_rules(args.config.as_deref())?;
    let runs = load_runs(&args.results)?;
    for (r, path) in runs.iter().zip(&args.results) {
        check_recordable(r, path)?;
    }
    // The runs of one baseline must be runs of one setup.
    if let (Some(first), Some(first_path)) = (runs.first(), args.results.first()) {
        let reference = Baseline::from_results(first, "runs");
        for (r, path) in runs.iter().zip(&args.results).skip(1) {
            let differ: Vec<String> = crate::gate::compare::mismatches(r, &reference)
                .into_iter()
                .map(|m| format!("{}: `{}` vs `{}`", findings::mismatch(&m.what, Lang::En), m.baseline, m.current))
                .collect();
            if !differ.is_empty() {
                return Err(Failure::invalid(anyhow!(
                    "{} and {} are not runs of the same setup ({}); record them under different profiles",
                    first_path.display(),
                    path.display(),
                    differ.join("; ")
                )));
            }
        }
    }
    let target = baseline::resolve_for_write(Path::new(""), &args.baseline).map_err(Failure::invalid)?;
    crate::fsutil::check_target(&target).map_err(Failure::invalid)?;
    // Read, merge and write under the folder's lock: an update running at the same time
    // merges onto this one's result instead of silently replacing it.
    let _lock = lock_baselines(&target)?;
    crate::fsutil::clean_stale_temps(&target);
    let profile = target.file_stem().map_or_else(|| args.baseline.clone(), |s| s.to_string_lossy().into_owned());
    let old_text = match crate::input::read_capped(&target, baseline::MAX_FILE_BYTES, "baseline") {
        Ok(text) => Some(text),
        Err(_) if !target.exists() => None,
        Err(e) => return Err(Failure::invalid(e)),
    };
    let old = match &old_text {
        Some(text) => Some(Baseline::parse(text, &target.display().to_string()).map_err(Failure::invalid)?),
        None => None,
    };
    if let (Some(old), Some(first)) = (&old, runs.first()) {
        let mismatches: Vec<String> = crate::gate::compare::mismatches(first, old)
            .into_iter()
            .filter(|m| !m.what.is_per_case())
            .map(|m| format!("{}: `{}` -> `{}`", findings::mismatch(&m.what, Lang::En), m.baseline, m.current))
            .collect();
        if !mismatches.is_empty() && !args.allow_mismatch {
            return Err(Failure::run(anyhow!(
                "{} belongs to another setup ({}); record it under a new profile name, or pass --allow-mismatch to replace it",
                target.display(),
                mismatches.join("; ")
            )));
        }
    }
    let new = Baseline::from_runs(&runs, &profile);
    if let Some(cases) = &args.cases {
        if !new.cases.keys().any(|id| cases.matches(id)) {
            return Err(Failure::invalid(anyhow!("--cases `{cases}` matches no case in the results")));
        }
    }
    let unchanged = unchanged_under(&rules, new.cases.len());
    let merged = baseline::merge(
        old.as_ref(),
        new,
        &UpdateOptions { cases: args.cases.clone(), drift_min_similarity: rules.drift_min_similarity },
        args.only_changed.then_some(
            &unchanged as &dyn Fn(&str, PhaseName, &baseline::BaselinePhase, &baseline::BaselinePhase) -> bool,
        ),
    );
    // Never write what a later compare would refuse.
    merged
        .validate(&target.display().to_string())
        .map_err(|e| Failure::run(e.context("refusing to write the baseline")))?;
    let text = merged.to_toml().map_err(Failure::run)?;
    let old_text = old_text.unwrap_or_default();
    let name = target.display().to_string();
    let diff = baseline::unified_diff(&old_text, &text, &format!("a/{name}"), &format!("b/{name}"));
    if diff.is_empty() {
        eprintln!("{name} is unchanged");
        return Ok(exit::PASS);
    }
    crate::fsutil::write_atomic(&target, text.as_bytes()).map_err(crate::fsutil::failure)?;
    print_stdout(&diff)?;
    let changed = diff
        .lines()
        .filter(|l| (l.starts_with('+') || l.starts_with('-')) && !l.starts_with("+++") && !l.starts_with("---"))
        .count();
    eprintln!("wrote {name} ({changed} changed line(s), {} run(s))", merged.run_ids.len());
    if merged.min_runs() < 2 {
        eprintln!(
            "note: a case of {name} has one run, so comparisons with it cannot see drift between runs; record \
             several runs (`infergate run --runs 5 --server-command ...`, then `infergate baseline update --results` \
             with all of them), or set [gate] run_to_run_cv from `infergate calibrate`"
        );
    }
    Ok(exit::PASS)
}

/// Locks the folder of the baseline file `target`, waiting (and saying so)
/// while another `baseline update` holds it.
fn lock_baselines(target: &Path) -> Result<crate::fsutil::FolderLock, Failure> {
    let folder = target.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(folder)
        .with_context(|| format!("cannot create the baselines folder {}", folder.display()))
        .map_err(Failure::run)?;
    if let Some(lock) = crate::fsutil::try_lock_folder(folder).map_err(Failure::run)? {
        return Ok(lock);
    }
    eprintln!(
        "waiting: another infergate is writing a baseline in {}; this update merges onto its result",
        folder.display()
    );
    crate::fsutil::lock_folder(folder).map_err(Failure::run)
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
            let v = |k: &str, unit: &str| {
                p.stats.get(k).map_or_else(|| crate::report::format::MISSING.into(), |v| format!("{v} {unit}"))
            };
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
    print_stdout(&out)?;
    Ok(exit::PASS)
}

/// `infergate calibrate`: A/A runs against an unchanged server, each a
/// fresh launch with `--server-command`; every run's results are kept, so
/// they can be recorded as the baseline.
pub async fn calibrate(args: &CalibrateArgs, verbosity: Verbosity) -> Result<i32, Failure> {
    let (plan, output) = crate::cli::run_plan(&args.run)?;
    let loaded = load_config(args.run.server.config.as_deref())?;
    let rules = Rules::from_config(&loaded.config.gate);
    if output.as_os_str() == "-" {
        return Err(Failure::invalid(anyhow!(
            "calibrate writes one results file per run: give --out a file path, not -"
        )));
    }
    let history = super::main_history::load(&args.history, &loaded, None)?;
    let mut others = crate::cli::run_paths(&output, args.runs);
    others.push(sibling(&output, "calibration.json"));
    others.extend(launch_logs(&plan, args.runs));
    let _outputs = claim_outputs(&output, &others)?;
    let relaunched = plan.launch.is_some();
    if !relaunched {
        eprintln!(
            "WARNING: no --server-command: all {} runs go to one server launch, so the drift between launches \
             (a restarted server, another GPU state: what moves a real runner most) cannot be seen, and the \
             run-to-run spread measured here is only a floor",
            args.runs
        );
    }
    let paths = crate::cli::run_paths(&output, args.runs);
    let mut runs = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        if verbosity != Verbosity::Quiet {
            eprintln!("calibrate: run {} of {}", i + 1, args.runs);
        }
        let r = execute(&crate::cli::plan_for_run(&plan, i as u32 + 1, args.runs), verbosity).await?;
        crate::results::save(&r, path).map_err(crate::fsutil::failure)?;
        if !r.complete || r.total_errors() > 0 {
            return Err(Failure::run(anyhow!(
                "calibration run {} failed or was interrupted (see {}); calibration needs clean runs of an unchanged server",
                i + 1,
                path.display()
            )));
        }
        runs.push(r);
    }
    let spreads = history.as_ref().zip(runs.first()).map(|(h, r)| h.spreads(r, rules.significance));
    if let Some(h) = spreads.as_ref().filter(|h| h.series == 0) {
        eprintln!(
            "WARNING: main's history (profile {}) gave no run-to-run spread: {} of its {} run(s) are on this \
             environment and a spread needs {}; the A/A runs' spread is used",
            h.profile,
            h.same_environment,
            h.records,
            crate::stats::runlevel::MIN_HISTORY_RUNS
        );
    }
    let report = crate::gate::calibrate::calibrate_with(&runs, &rules, relaunched, spreads.as_ref());
    let json_path = sibling(&output, "calibration.json");
    let mut json = crate::json::to_vec(&report).context("cannot serialize").map_err(Failure::run)?;
    json.push(b'\n');
    crate::fsutil::write_output(&json_path, &json).map_err(crate::fsutil::failure)?;
    print_stdout(&crate::report::calibration::render(&report, &display_paths(&paths)))?;
    if verbosity != Verbosity::Quiet {
        eprintln!("calibration written to {}", json_path.display());
    }
    Ok(exit::PASS)
}

/// Metric names, for help texts.
pub fn metric_names() -> Vec<&'static str> {
    CATALOGUE.iter().map(|m| m.name).collect()
}
