//! `infergate history append|analyze`: main's runs kept as a history (one
//! JSON Lines file per profile), and the change points in it.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::anyhow;
use serde::Serialize;

use crate::cli::{AnalyzeFormat, HistoryAnalyzeArgs, HistoryAppendArgs, HistoryCommand, Phase, StoreArgs};
use crate::exit::{self, Failure};
use crate::gate::metrics::CATALOGUE;
use crate::history::analyze::{self, Analysis, Found, Options};
use crate::history::{self, DEFAULT_PROFILE, DEFAULT_STORE};
use crate::results::PhaseName;
use crate::stats::changepoint::ChangePointConfig;

/// Runs a `history` subcommand.
pub fn run(cmd: &HistoryCommand) -> Result<i32, Failure> {
    match cmd {
        HistoryCommand::Append(args) => append(args),
        HistoryCommand::Analyze(args) => analyze_cmd(args),
        HistoryCommand::Dashboard(args) => super::dashboard::dashboard(args),
    }
}

/// The store folder: `--store`, else `[history] store`, else the default; and the config.
fn store_of(args: &StoreArgs) -> Result<(PathBuf, crate::config::LoadedConfig), Failure> {
    let loaded = super::gate::load_config(args.config.as_deref())?;
    let store = args
        .store
        .clone()
        .or_else(|| loaded.config.history.store.clone())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STORE));
    Ok((store, loaded))
}

/// A commit or ref given on the command line: one short line of printable text.
fn checked_label(flag: &str, value: &str, max: usize) -> Result<(), Failure> {
    if value.is_empty() || value.len() > max || value.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(Failure::invalid(anyhow!(
            "{flag} {}: give a non-empty value of at most {max} bytes without spaces or control characters",
            crate::text::inert(value)
        )));
    }
    Ok(())
}

/// `infergate history append`.
pub fn append(args: &HistoryAppendArgs) -> Result<i32, Failure> {
    let (store, loaded) = store_of(&args.store)?;
    let rules = crate::gate::rules::Rules::from_config(&loaded.config.gate);
    let profile = args.profile.as_deref().unwrap_or(DEFAULT_PROFILE);
    history::file_of(&store, profile).map_err(Failure::invalid)?;
    if let Some(c) = &args.commit {
        checked_label("--commit", c, 100)?;
    }
    if let Some(r) = &args.git_ref {
        checked_label("--ref", r, 256)?;
    }
    let results = crate::results::load(&args.results).map_err(Failure::invalid)?;
    history::check_recordable(&results, &args.results, &rules)?;
    let record = history::record_of(&results, profile, args.commit.as_deref(), args.git_ref.as_deref());
    if record.cases.is_empty() {
        return Err(Failure::run(anyhow!("{} holds no metric of any case: nothing to append", args.results.display())));
    }
    let appended = history::append(&store, &record)?;
    for w in &appended.warnings {
        eprintln!("warning: {}", crate::text::for_log(w));
    }
    let commit = record.commit.as_deref().map(|c| format!(" (commit {})", short(c))).unwrap_or_default();
    eprintln!(
        "{}",
        crate::text::for_log(&format!(
            "appended run {}{commit} to {}: {} run(s)",
            record.run_id,
            appended.path.display(),
            appended.runs
        ))
    );
    Ok(exit::PASS)
}

/// A commit as people read it: the first 7 characters of a hex SHA, else as given.
fn short(commit: &str) -> String {
    if commit.len() >= 7 && commit.bytes().all(|b| b.is_ascii_hexdigit()) {
        commit[..7].to_string()
    } else {
        crate::text::inert(commit).into_owned()
    }
}

/// The search settings from the flags.
fn options(args: &HistoryAnalyzeArgs) -> Result<Options, Failure> {
    let metrics = match &args.metric {
        None => None,
        Some(list) => {
            let names: Vec<String> = list.split(',').map(|m| m.trim().to_string()).filter(|m| !m.is_empty()).collect();
            if let Some(bad) = names.iter().find(|m| !CATALOGUE.iter().any(|d| d.name == m.as_str())) {
                let known: Vec<&str> = CATALOGUE.iter().map(|d| d.name).collect();
                return Err(Failure::invalid(anyhow!(
                    "--metric {}: not a metric; known: {}",
                    crate::text::inert(bad),
                    known.join(", ")
                )));
            }
            if names.is_empty() {
                return Err(Failure::invalid(anyhow!("--metric names no metric")));
            }
            Some(names)
        }
    };
    let cases = args.cases.as_ref().map(|c| c.split(',').map(|g| g.trim().to_string()).collect::<Vec<_>>());
    if !(args.min_step.is_finite() && (0.0..=1000.0).contains(&args.min_step)) {
        return Err(Failure::invalid(anyhow!(
            "--min-step {}: give a percentage from 0 to 1000, e.g. 1 for 1%",
            crate::limits::show(args.min_step)
        )));
    }
    if !(args.significance > 0.0 && args.significance < 1.0) {
        return Err(Failure::invalid(anyhow!(
            "--significance {}: give a probability between 0 and 1, e.g. 0.001",
            crate::limits::show(args.significance)
        )));
    }
    // Fewest shuffles that can give a p-value of `significance`: (1 + 0) / (1 + R) <= A.
    let needed = ((1.0 / args.significance) - 1.0 - 1e-9).ceil().max(1.0);
    let permutations = match args.permutations {
        Some(p) => p as usize,
        None if needed > 100_000.0 => {
            return Err(Failure::invalid(anyhow!(
                "--significance {}: would need more than 100000 permutations; give a larger one",
                crate::limits::show(args.significance)
            )));
        }
        None => analyze::DEFAULT_PERMUTATIONS.max(needed as usize),
    };
    let search = ChangePointConfig {
        significance: args.significance,
        permutations,
        min_segment: args.min_segment as usize,
        block: args.block as usize,
        ..ChangePointConfig::default()
    };
    search.validate().map_err(|e| Failure::invalid(anyhow!("{e} (--significance, --permutations)")))?;
    Ok(Options {
        search,
        metrics,
        cases,
        phase: args.phase.map(|p| match p {
            Phase::Cold => PhaseName::Cold,
            Phase::Warm => PhaseName::Warm,
        }),
        min_step: args.min_step / 100.0,
        last: args.last.map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
        ..Options::default()
    })
}

/// Schema identifier of `history analyze --format json`.
pub const ANALYSIS_SCHEMA: &str = "infergate.history-analysis.v1";

/// `history analyze --format json`.
#[derive(Debug, Serialize)]
struct AnalysisOut<'a> {
    /// Always [`ANALYSIS_SCHEMA`].
    schema: &'static str,
    /// The settings of the search.
    settings: Settings,
    /// One entry per profile.
    profiles: Vec<ProfileOut<'a>>,
}

/// The search settings, as used.
#[derive(Debug, Serialize)]
struct Settings {
    significance: f64,
    permutations: usize,
    min_segment: usize,
    block: usize,
    /// In percent.
    min_step_pct: f64,
    last: Option<usize>,
}

/// One profile's analysis.
#[derive(Debug, Serialize)]
struct ProfileOut<'a> {
    profile: &'a str,
    file: String,
    #[serde(flatten)]
    analysis: &'a Analysis,
}

/// `infergate history analyze`.
pub fn analyze_cmd(args: &HistoryAnalyzeArgs) -> Result<i32, Failure> {
    let opts = options(args)?;
    let (store, _) = store_of(&args.store)?;
    let profiles = match &args.profile {
        Some(p) => {
            history::file_of(&store, p).map_err(Failure::invalid)?;
            vec![p.clone()]
        }
        None => {
            if !store.is_dir() {
                return Err(Failure::invalid(anyhow!(
                    "no history store at {}; append runs with `infergate history append --results RESULTS.json \
                     --profile NAME`, or give --store",
                    store.display()
                )));
            }
            let all = history::profiles(&store).map_err(Failure::invalid)?;
            if all.is_empty() {
                return Err(Failure::invalid(anyhow!(
                    "the history store {} holds no profile (no NAME.jsonl file)",
                    store.display()
                )));
            }
            all
        }
    };
    let mut done = Vec::new();
    for profile in &profiles {
        let h = history::read(&store, profile)?;
        for w in &h.warnings {
            eprintln!("warning: {}", crate::text::for_log(w));
        }
        let analysis = analyze::analyze(&h.records, &opts).map_err(|e| Failure::invalid(anyhow!("{e}")))?;
        done.push((h, analysis));
    }
    let text = match args.format {
        AnalyzeFormat::Json => {
            let out = AnalysisOut {
                schema: ANALYSIS_SCHEMA,
                settings: Settings {
                    significance: opts.search.significance,
                    permutations: opts.search.permutations,
                    min_segment: opts.search.min_segment,
                    block: opts.search.block,
                    min_step_pct: opts.min_step * 100.0,
                    last: opts.last,
                },
                profiles: done
                    .iter()
                    .map(|(h, a)| ProfileOut { profile: &h.profile, file: h.path.display().to_string(), analysis: a })
                    .collect(),
            };
            let mut json = crate::json::to_vec(&out).map_err(|e| Failure::run(anyhow!(e)))?;
            json.push(b'\n');
            String::from_utf8(json).map_err(|e| Failure::run(anyhow!(e)))?
        }
        AnalyzeFormat::Text => {
            done.iter().map(|(h, a)| render_text(&h.profile, a, &opts)).collect::<Vec<_>>().join("\n")
        }
    };
    super::print_stdout(&text)?;
    Ok(exit::PASS)
}

/// A value with about four significant digits and its unit.
fn value(v: f64, unit: &str) -> String {
    let a = v.abs();
    let n = if a >= 1000.0 {
        format!("{v:.0}")
    } else if a >= 100.0 {
        format!("{v:.1}")
    } else if a >= 10.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    };
    if unit.is_empty() { n } else { format!("{n} {unit}") }
}

/// The text report of one profile.
fn render_text(profile: &str, a: &Analysis, opts: &Options) -> String {
    let s = &opts.search;
    let mut out = format!(
        "profile {}: {} run(s), {} series (significance {}, {} permutations, blocks of {}, min segment {}, min step {}%)\n",
        crate::text::inert(profile),
        a.runs,
        a.series,
        s.significance,
        s.permutations,
        s.block,
        s.min_segment,
        crate::limits::show(opts.min_step * 100.0)
    );
    let unit = |m: &str| CATALOGUE.iter().find(|d| d.name == m).map_or("", |d| d.unit);
    let commit = |c: &Option<String>| c.as_deref().map_or_else(|| "?".to_string(), short);
    let rows: Vec<[String; 9]> = a
        .change_points
        .iter()
        .map(|c: &Found| {
            [
                crate::text::inert(&c.case).into_owned(),
                c.phase.as_str().to_string(),
                c.metric.clone(),
                format!("{}..{}", commit(&c.commit_before), commit(&c.commit_after)),
                format!("#{}", c.index + 1),
                value(c.mean_before, unit(&c.metric)),
                value(c.mean_after, unit(&c.metric)),
                c.relative_step.map_or_else(|| "n/a".into(), |r| format!("{:+.1}%", r * 100.0)),
                format!("{:.3}", c.p_value),
            ]
        })
        .collect();
    if !rows.is_empty() {
        let head = ["case", "phase", "metric", "commits", "run", "before", "after", "step", "p"].map(str::to_string);
        let width = |i: usize| {
            std::iter::once(&head)
                .chain(&rows)
                .map(|r| unicode_width::UnicodeWidthStr::width(r[i].as_str()))
                .max()
                .unwrap_or(0)
        };
        let widths: Vec<usize> = (0..9).map(width).collect();
        for row in std::iter::once(&head).chain(&rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                let pad = widths[i].saturating_sub(unicode_width::UnicodeWidthStr::width(cell.as_str()));
                // Numbers right-aligned, words left.
                if (4..9).contains(&i) {
                    let _ = write!(line, "{}{cell}  ", " ".repeat(pad));
                } else {
                    let _ = write!(line, "{cell}{}  ", " ".repeat(pad));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
    let below = if a.below_min_step > 0 {
        format!(" ({} more below the {}% minimum step)", a.below_min_step, crate::limits::show(opts.min_step * 100.0))
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "{}{below}",
        match a.change_points.len() {
            0 => "no change point".to_string(),
            1 => "1 change point".to_string(),
            n => format!("{n} change points"),
        }
    );
    out
}
