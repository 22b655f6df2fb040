//! Command-line types (clap derive) and their conversion into validated plans.
//!
//! Nothing here runs anything: `main` parses [`Cli`], and the `TryFrom`-style
//! functions below merge flags with the config file into the plans the
//! library runs. Cross-field checks live in that conversion.

use crate::history::analyze;
use std::path::PathBuf;

use anyhow::anyhow;
use clap::{Args, Parser, Subcommand};

use crate::client::{Api, ClientConfig, Secret};
use crate::config::{BaseUrl, HumanDuration, LoadedConfig, Toggle};
use crate::exit::Failure;
use crate::runner::{CacheReset, GpuPlan, RunPlan};
use crate::suite::CaseSettings;

/// What `infergate --version` prints after the name: the crate version and the
/// commit it was built from (`0.1.0 (abc1234 2026-12-01)`), or
/// `(unknown commit)` when built outside git (see `build.rs`).
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("INFERGATE_BUILD_COMMIT"), ")");

/// infergate: stop LLM-serving performance regressions before they merge.
#[derive(Debug, Parser)]
#[command(name = "infergate", version = VERSION, about, long_about = None)]
pub struct Cli {
    /// Print only errors and the final summary.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// More log output (-v: debug, -vv: trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the suite against a live server and write a results file (one per run).
    Run(RunCmdArgs),
    /// Serve the built-in simulated OpenAI-compatible server.
    Sim(SimArgs),
    /// Run the whole loop against the built-in simulator (no server needed).
    Demo(DemoArgs),
    /// Check what works here: config, server, model.
    Doctor(DoctorArgs),
    /// Compare a results file with a baseline; write the comparison and print the report.
    Compare(CompareArgs),
    /// Run the suite, compare with the baseline, report, and exit with the verdict.
    Check(Box<CheckArgs>),
    /// Record, update and show baselines.
    #[command(subcommand)]
    Baseline(BaselineCommand),
    /// Run the suite several times against an unchanged server and suggest repetitions and tolerances.
    Calibrate(CalibrateArgs),
    /// Post the sticky pull-request comment from comparison file(s).
    Comment(CommentArgs),
    /// Fold the comparisons of several matrix jobs into one report and verdict.
    Merge(MergeArgs),
    /// Write the full report (Korean or English) with plots from results file(s).
    Report(ReportCmdArgs),
    /// Export results as Bencher Metric Format, OpenMetrics text, CSV or history JSON Lines.
    Export(ExportArgs),
    /// Keep main's runs as a history, find the change points in it, draw it as a page.
    #[command(subcommand)]
    History(HistoryCommand),
}

/// `infergate history`.
#[derive(Debug, Subcommand)]
pub enum HistoryCommand {
    /// Append one run (a results file) to its profile's history.
    Append(HistoryAppendArgs),
    /// Find the change points in each case's, phase's and metric's series (exit 0: information).
    Analyze(HistoryAnalyzeArgs),
    /// Write the history as a static page: one chart per case and metric over the runs, change
    /// points marked, the baseline as a line (opens from disk and from GitHub Pages).
    Dashboard(DashboardArgs),
}

/// Where the history store is.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// History store folder [default: `[history] store` of the config, else .infergate-history].
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,
    /// Config file whose `[history] store` and `[gate]` rules apply [default: ./infergate.toml when present].
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
}

/// `infergate history append`.
#[derive(Debug, Clone, Args)]
pub struct HistoryAppendArgs {
    /// The results file of one complete, clean run.
    #[arg(long, value_name = "PATH")]
    pub results: PathBuf,
    /// The profile (one series of one setup: GPU x model x server) [default: default].
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// The commit measured [default: the results' git commit].
    #[arg(long, value_name = "SHA")]
    pub commit: Option<String>,
    /// The ref it was measured on, e.g. refs/heads/main.
    #[arg(long = "ref", value_name = "REF")]
    pub git_ref: Option<String>,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Output of `history analyze`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AnalyzeFormat {
    /// One line per change point.
    Text,
    /// The analysis as JSON (`infergate.history-analysis.v1`).
    Json,
}

/// A phase, as `--phase` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Phase {
    /// The first request of each case ("initial loading").
    Cold,
    /// The repetitions ("continuous response").
    Warm,
}

/// `infergate history analyze`.
#[derive(Debug, Clone, Args)]
pub struct HistoryAnalyzeArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Only this profile [default: every profile in the store].
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// Only these metrics, comma-separated (catalogue names, e.g. tokens_per_second,ttft_p99).
    #[arg(long, value_name = "M[,M...]")]
    pub metric: Option<String>,
    /// Only cases matching these globs, comma-separated (e.g. "code-review/*").
    #[arg(long, value_name = "GLOBS")]
    pub cases: Option<String>,
    /// Only this phase [default: both].
    #[arg(long, value_enum)]
    pub phase: Option<Phase>,
    /// Significance of each split (permutation p-value), per series.
    #[arg(long, value_name = "A", default_value_t = analyze::DEFAULT_SIGNIFICANCE)]
    pub significance: f64,
    /// Shuffles per test [default: 999, or the fewest that can reach --significance when that is more].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub permutations: Option<u32>,
    /// Fewest runs on each side of a change point.
    #[arg(long, value_name = "K", default_value_t = analyze::DEFAULT_MIN_SEGMENT as u32,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub min_segment: u32,
    /// Runs shuffled together in the permutation test (1: single runs); blocks keep a runner's
    /// run-to-run drift in the null.
    #[arg(long, value_name = "B", default_value_t = analyze::DEFAULT_BLOCK as u32,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub block: u32,
    /// Smallest step reported, in percent of the level before it (0 reports every significant one).
    #[arg(long, value_name = "PCT", default_value_t = analyze::DEFAULT_MIN_STEP * 100.0)]
    pub min_step: f64,
    /// Only the last N runs of each profile.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub last: Option<u64>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: AnalyzeFormat,
}

/// `infergate run`.
#[derive(Debug, Clone, Args)]
pub struct RunCmdArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Run the suite K times, each a fresh server launch with --server-command, writing one results
    /// file per run (results.run1.json ...): the runs of a baseline.
    #[arg(long, value_name = "K", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub runs: u32,
}

/// `infergate report`.
#[derive(Debug, Clone, Args)]
pub struct ReportCmdArgs {
    /// Results file(s): different models (one row each) or repeated runs of one model.
    #[arg(long, value_name = "PATH", required = true)]
    pub results: Vec<PathBuf>,
    /// Language of the report and its plots [default: `[report] lang` of the config, else en].
    #[arg(long, value_enum)]
    pub lang: Option<crate::report::Lang>,
    /// Config file whose `[report] lang` applies [default: ./infergate.toml when present].
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Output folder: report.md, report.json and plots/.
    #[arg(long, default_value = "infergate-out")]
    pub out: PathBuf,
    /// A minijinja template replacing the built-in one for --lang.
    #[arg(long, value_name = "FILE")]
    pub template: Option<PathBuf>,
}

/// `infergate export`.
#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// Results file(s) to export; several are several runs (BMF folds runs of one setup into one report).
    #[arg(long, value_name = "PATH", required = true)]
    pub results: Vec<PathBuf>,
    /// Output format: bmf (Bencher), openmetrics (Prometheus), csv, jsonl (history records).
    #[arg(long, value_enum)]
    pub format: crate::export::Format,
    /// Where to write the export (atomically); `-` is stdout.
    #[arg(long, value_name = "PATH", default_value = "-")]
    pub out: PathBuf,
    /// Profile the figures are filed under [default: from each results file: GPU, model and engine].
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// CSV rows: one per case, phase and metric (case) or one per request (request).
    #[arg(long, value_enum, default_value = "case")]
    pub level: crate::export::Level,
    /// Export results of a run that did not complete (interrupted, past its deadline) instead of refusing them.
    #[arg(long)]
    pub allow_partial: bool,
}

/// Main's history in the verdict (`compare`, `check`).
#[derive(Debug, Clone, Default, Args)]
pub struct GateHistoryArgs {
    /// History store of main's runs (e.g. a checkout of the `infergate-history` branch): the
    /// run-to-run spread of each metric comes from its last runs on this environment wherever the
    /// runs cannot measure it, and the report says how main moved over them.
    #[arg(long, value_name = "DIR")]
    pub history: Option<PathBuf>,
    /// Profile to read from the history [default: the baseline's profile; `calibrate` needs it].
    #[arg(long, value_name = "NAME", requires = "history")]
    pub history_profile: Option<String>,
    /// Last runs of main read ([history] window) [default: 30].
    #[arg(long, value_name = "N", requires = "history", value_parser = clap::value_parser!(u32).range(10..=10_000))]
    pub history_window: Option<u32>,
}

/// How the comparison is reported.
#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// What to print on stdout.
    #[arg(long, value_enum, default_value = "terminal")]
    pub format: ReportFormat,
    /// A minijinja template replacing the built-in one for --format.
    #[arg(long, value_name = "FILE")]
    pub template: Option<PathBuf>,
    /// Also write the Markdown report (the PR comment body) to this file.
    #[arg(long, value_name = "PATH")]
    pub markdown: Option<PathBuf>,
    /// Colour on the terminal: auto (on a TTY), always, never.
    #[arg(long, value_enum, default_value = "auto")]
    pub color: ColorChoice,
    /// Language of the terminal report, the Markdown report, the PR comment and the job summary
    /// [default: `[report] lang` of the config, else en].
    #[arg(long, value_enum)]
    pub lang: Option<crate::report::Lang>,
}

/// Report formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// A compact table.
    Terminal,
    /// GitHub-flavoured Markdown.
    Markdown,
    /// The comparison JSON.
    Json,
}

/// Colour choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// Colour when stdout is a terminal and NO_COLOR is unset.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

/// `infergate compare`.
#[derive(Debug, Clone, Args)]
pub struct CompareArgs {
    /// The results file, or several: runs of the same suite, judged together.
    #[arg(long, value_name = "PATH", num_args = 1.., required = true)]
    pub results: Vec<PathBuf>,
    /// Baseline profile name (baselines/NAME.toml) or path.
    #[arg(long, value_name = "PROFILE|PATH")]
    pub baseline: String,
    /// Config file with the [gate] rules [default: ./infergate.toml when present].
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Compare even when suite, prompts or environment differ (the report says so at the top).
    #[arg(long)]
    pub allow_mismatch: bool,
    /// Where to write the comparison JSON [default: comparison.json beside the results].
    #[arg(long, value_name = "PATH")]
    pub comparison: Option<PathBuf>,
    #[command(flatten)]
    pub history: GateHistoryArgs,
    #[command(flatten)]
    pub report: ReportArgs,
}

/// `infergate check`.
#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Baseline profile name (baselines/NAME.toml) or path.
    #[arg(long, value_name = "PROFILE|PATH")]
    pub baseline: String,
    /// Compare even when suite, prompts or environment differ.
    #[arg(long)]
    pub allow_mismatch: bool,
    /// Run the suite K times (each a fresh server launch with --server-command) and judge the runs together.
    #[arg(long, value_name = "K", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub runs: u32,
    /// Before failing, re-run only the regressed cases in N more runs and judge again on all runs.
    #[arg(long, value_name = "N", default_value_t = 0,
          value_parser = clap::value_parser!(u32).range(0..=crate::limits::MAX_RETRIES as i64))]
    pub confirm: u32,
    /// Where to write the comparison JSON [default: comparison.json beside the results].
    #[arg(long, value_name = "PATH")]
    pub comparison: Option<PathBuf>,
    #[command(flatten)]
    pub history: GateHistoryArgs,
    #[command(flatten)]
    pub report: ReportArgs,
    #[command(flatten)]
    pub publish: PublishArgs,
}

/// Where the verdict goes besides the terminal: the PR comment, the exit code.
#[derive(Debug, Clone, Args)]
pub struct PublishArgs {
    /// Post (or update) the sticky comment on the pull request.
    #[arg(long, conflicts_with = "no_comment")]
    pub comment: bool,
    /// Do not comment; print exactly the Markdown the pull request would get.
    #[arg(long)]
    pub no_comment: bool,
    /// A comment that cannot be posted is an error (exit 3) instead of a warning.
    #[arg(long)]
    pub comment_required: bool,
    /// Which verdicts fail the job: regression (default), warning (also warnings), never.
    #[arg(long, value_enum, default_value = "regression")]
    pub fail_on: FailOn,
    #[command(flatten)]
    pub github: GithubArgs,
}

pub use crate::exit::FailOn;

/// Which pull request, and the token.
#[derive(Debug, Clone, Args)]
pub struct GithubArgs {
    /// Repository `owner/name` [default: GITHUB_REPOSITORY].
    #[arg(long, value_name = "OWNER/NAME")]
    pub repo: Option<String>,
    /// Pull request number [default: from the Actions event].
    #[arg(long, value_name = "N")]
    pub pr: Option<u64>,
    /// Environment variable holding the GitHub token.
    #[arg(long, value_name = "VAR", default_value = "GITHUB_TOKEN")]
    pub token_env: String,
}

/// `infergate comment`.
#[derive(Debug, Clone, Args)]
pub struct CommentArgs {
    /// Comparison JSON file(s); several (a matrix) make one comment with a section per profile.
    #[arg(long, value_name = "PATH", required = true)]
    pub comparison: Vec<PathBuf>,
    /// Name in the comment's hidden marker [default: the comparison's profile, or the profiles joined].
    #[arg(long)]
    pub profile: Option<String>,
    /// A comment that cannot be posted is only a warning (exit 0) instead of an error (exit 3).
    #[arg(long)]
    pub comment_optional: bool,
    #[command(flatten)]
    pub lang: LangArgs,
    #[command(flatten)]
    pub github: GithubArgs,
}

/// The language of a report rendered from comparison files.
#[derive(Debug, Clone, Args)]
pub struct LangArgs {
    /// Language of the report: en or ko [default: `[report] lang` of the config, else en].
    #[arg(long, value_enum)]
    pub lang: Option<crate::report::Lang>,
    /// Config file whose `[report] lang` applies [default: ./infergate.toml when present].
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
}

/// `infergate merge`.
#[derive(Debug, Clone, Args)]
pub struct MergeArgs {
    /// Comparison JSON files of the matrix jobs.
    #[arg(long, value_name = "PATH", required = true)]
    pub comparison: Vec<PathBuf>,
    /// Write the combined Markdown here as well.
    #[arg(long, value_name = "PATH")]
    pub markdown: Option<PathBuf>,
    #[command(flatten)]
    pub lang: LangArgs,
}

/// `infergate baseline ...`.
#[derive(Debug, Subcommand)]
pub enum BaselineCommand {
    /// Write a baseline from a results file (atomically) and print the diff of the file.
    Update(BaselineUpdateArgs),
    /// Print a baseline as a table.
    Show(BaselineShowArgs),
}

/// `infergate baseline update`.
#[derive(Debug, Clone, Args)]
pub struct BaselineUpdateArgs {
    /// The results file(s) to record: several runs of one suite (separate server launches) make a
    /// baseline that shows the runner's drift between runs.
    #[arg(long, value_name = "PATH", num_args = 1.., required = true)]
    pub results: Vec<PathBuf>,
    /// Profile name (baselines/NAME.toml) or a path inside baselines/.
    #[arg(long, value_name = "PROFILE|PATH")]
    pub baseline: String,
    /// Keep old values whose change is within noise, so an unchanged system gives an empty diff.
    #[arg(long)]
    pub only_changed: bool,
    /// Update only these cases (comma-separated globs); the others keep their values.
    #[arg(long, value_name = "GLOB")]
    pub cases: Option<crate::suite::CaseFilter>,
    /// Config file with the [gate] rules [default: ./infergate.toml when present].
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Record even when the results and the existing baseline are not comparable.
    #[arg(long)]
    pub allow_mismatch: bool,
}

/// `infergate baseline show`.
#[derive(Debug, Clone, Args)]
pub struct BaselineShowArgs {
    /// Profile name or path.
    #[arg(value_name = "PROFILE|PATH")]
    pub baseline: String,
}

/// `infergate calibrate`.
#[derive(Debug, Clone, Args)]
pub struct CalibrateArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Number of A/A runs (each a fresh server launch with --server-command).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(3..=50))]
    pub runs: u32,
    /// With `--history DIR` (and `--history-profile NAME`, required here), the run-to-run
    /// spread comes from main's last runs instead of these A/A runs.
    #[command(flatten)]
    pub history: GateHistoryArgs,
}

/// Where the server is; shared by `run` and `doctor`.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// Config file [default: ./infergate.toml when present].
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Base URL of the OpenAI-compatible server ([server] base_url).
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// Model name to request ([server] model).
    #[arg(long)]
    pub model: Option<String>,
    /// API flavour ([server] api) [default: chat].
    #[arg(long, value_enum)]
    pub api: Option<Api>,
    /// Environment variable holding the API key ([server] api_key_env).
    #[arg(long, value_name = "VAR")]
    pub api_key_env: Option<String>,
    /// Limit for one request, e.g. 600s ([server] request_timeout) [default: 600s].
    #[arg(long, value_name = "DURATION")]
    pub request_timeout: Option<String>,
    /// No bytes for this long ends a request ([server] idle_timeout) [default: 120s].
    #[arg(long, value_name = "DURATION")]
    pub idle_timeout: Option<String>,
}

/// `infergate run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Built-in suite (coder, quick) or suite TOML path ([run] suite) [default: coder].
    #[arg(long)]
    pub suite: Option<String>,
    /// Only cases matching these comma-separated globs, e.g. 'code-review/*' ([run] cases).
    #[arg(long, value_name = "GLOB")]
    pub cases: Option<crate::suite::CaseFilter>,
    /// Warm-phase requests per case, 1 to 1000000 ([run] repetitions) [default: 10].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=crate::limits::MAX_COUNT as i64))]
    pub repetitions: Option<u32>,
    /// Unrecorded warm-up requests per case, 0 to 1000000 ([run] warmup) [default: 1].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=crate::limits::MAX_COUNT as i64))]
    pub warmup: Option<u32>,
    /// Warm-phase requests in flight, 1 to 1000000 ([run] concurrency) [default: 1].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=crate::limits::MAX_COUNT as i64))]
    pub concurrency: Option<u32>,
    /// Warm-phase Poisson arrival rate, 0.001 to 1000000 requests/s ([run] request_rate) [default: back-to-back].
    #[arg(long, value_name = "RPS")]
    pub request_rate: Option<f64>,
    /// Results file, `-` for stdout ([run] output) [default: infergate-out/results.json]; with several
    /// runs, one file per run beside it (results.run1.json, results.run2.json, ...).
    #[arg(long, short, value_name = "PATH")]
    pub out: Option<PathBuf>,
    /// Send ignore_eos to hold the output length ([server] ignore_eos) [default: true].
    #[arg(long, value_name = "BOOL")]
    pub ignore_eos: Option<bool>,
    /// Send min_tokens to hold the output length ([server] min_tokens) [default: true].
    #[arg(long, value_name = "BOOL")]
    pub min_tokens: Option<bool>,
    /// Ask for per-chunk usage, vLLM's continuous_usage_stats ([server] continuous_usage) [default: false].
    #[arg(long, value_name = "BOOL")]
    pub continuous_usage: Option<bool>,
    /// GPU telemetry through NVML: auto, require (exit 3 without it), off ([gpu] mode) [default: auto].
    #[arg(long, value_enum)]
    pub gpu: Option<crate::config::GpuMode>,
    /// Start the server with this shell command, wait until ready, stop it at the end ([server] command).
    #[arg(long, value_name = "COMMAND")]
    pub server_command: Option<String>,
    /// Longest wait for the started server to be ready ([server] ready_timeout) [default: 600s].
    #[arg(long, value_name = "DURATION")]
    pub ready_timeout: Option<String>,
    /// Retries per request after a connect error or a 429 with Retry-After, 0 to 100 ([run] retries) [default: 2].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=crate::limits::MAX_RETRIES as i64))]
    pub retries: Option<u32>,
    /// Limit of the whole run, e.g. 30m: past it the run stops with partial results, exit 3 ([run] deadline).
    #[arg(long, value_name = "DURATION")]
    pub deadline: Option<String>,
    /// Time in-flight requests get to finish after Ctrl-C or SIGTERM; a second Ctrl-C cancels them ([run] grace) [default: 10s].
    #[arg(long, value_name = "DURATION")]
    pub grace: Option<String>,
}

/// `infergate sim`: every parameter of the performance model.
#[derive(Debug, Clone, Args)]
pub struct SimArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: std::net::IpAddr,
    /// Port; 0 picks a free one (printed on the first stdout line).
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    /// Model name the simulator serves.
    #[arg(long, default_value = "sim")]
    pub model: String,
    /// Seed of the jitter and the generated text.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Fixed part of the time to first token, ms.
    #[arg(long, default_value_t = 5.0)]
    pub ttft_base_ms: f64,
    /// Uncached prompt tokens processed per second.
    #[arg(long, default_value_t = 1_000_000.0)]
    pub prefill_tps: f64,
    /// Cost of a cached prompt token relative to an uncached one.
    #[arg(long, default_value_t = 0.02)]
    pub cached_prefill_factor: f64,
    /// Added to the first request with a new prefix, ms.
    #[arg(long, default_value_t = 20.0)]
    pub cold_penalty_ms: f64,
    /// Mean time per output token, ms (0: as fast as possible).
    #[arg(long, default_value_t = 2.0)]
    pub itl_ms: f64,
    /// Relative jitter of each token interval (0.1 = ±10%).
    #[arg(long, default_value_t = 0.1)]
    pub itl_jitter: f64,
    /// Per-token slowdown per extra concurrent stream (0.02 = +2%).
    #[arg(long, default_value_t = 0.02)]
    pub concurrency_slowdown: f64,
    /// Per-request variation: each request's times are scaled by a factor with this standard deviation (0.05 = 5%).
    #[arg(long, default_value_t = 0.0)]
    pub request_cv: f64,
    /// Shape of the per-request variation: uniform (bounded) or lognormal (a tail of slow requests).
    #[arg(long, value_enum, default_value = "uniform")]
    pub request_noise: crate::sim::model::RequestNoise,
    /// Lag-1 autocorrelation of consecutive requests' variation, 0 to 0.95 (lognormal only).
    #[arg(long, default_value_t = 0.0)]
    pub autocorrelation: f64,
    /// Share of requests slowed as outliers, 0 to 0.5.
    #[arg(long, default_value_t = 0.0)]
    pub outlier_rate: f64,
    /// Largest outlier slowdown (an outlier is slower by a factor drawn from 1 to this).
    #[arg(long, default_value_t = 3.0)]
    pub outlier_factor: f64,
    /// Warm-up after launch: the i-th request is slower by this x exp(-i / --warmup-requests) (0.2 = 20%).
    #[arg(long, default_value_t = 0.0)]
    pub warmup_slowdown: f64,
    /// Requests over which the warm-up slowdown decays.
    #[arg(long, default_value_t = 5.0)]
    pub warmup_requests: f64,
    /// Run-to-run drift: this launch is slower or faster by one factor drawn from --seed with this
    /// standard deviation (0.02 = 2%); launch with different seeds to get different runs.
    #[arg(long, default_value_t = 0.0)]
    pub run_drift: f64,
    /// Shape of the run-to-run drift: normal, or heavy (Student-t with 3 degrees of freedom).
    #[arg(long, value_enum, default_value = "normal")]
    pub run_drift_tail: crate::sim::model::DriftTail,
    /// Tokens carried by each streamed chunk.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub tokens_per_chunk: u32,
    /// Multiplies every time, to inject a regression (1.1 = 10% slower).
    #[arg(long, default_value_t = 1.0)]
    pub slowdown: f64,
    /// Shortest natural answer (tokens) when EOS is not ignored.
    #[arg(long, default_value_t = 16)]
    pub natural_len_min: u32,
    /// Longest natural answer (tokens) when EOS is not ignored.
    #[arg(long, default_value_t = 64)]
    pub natural_len_max: u32,
    /// Context length of the simulated model.
    #[arg(long, default_value_t = 131_072)]
    pub max_model_len: u32,
    /// Append the ground truth of every request to this JSONL file.
    #[arg(long, value_name = "PATH")]
    pub truth_log: Option<PathBuf>,
    /// Misbehave on purpose: KIND[:PARAM][@rate=F|@every=N|@requests=N..M][@case=GLOB]; repeatable.
    /// Kinds: http500, http429[:SECS], refuse, reset[:CHUNKS], stall:DURATION, slow-first-byte:DURATION,
    /// malformed, no-done[:close|hold], huge-event[:BYTES], content-type[:MIME], endless, no-usage, short[:TOKENS].
    #[arg(long, value_name = "SPEC")]
    pub fault: Vec<String>,
}

/// `infergate demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Output folder for the results.
    #[arg(long, default_value = "infergate-out")]
    pub out: PathBuf,
    /// Warm-phase requests per case (the built-in baseline was recorded with 10).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=crate::limits::MAX_COUNT as i64))]
    pub repetitions: u32,
    /// Make the simulated server slower by this factor (1.1 = 10% slower): the check then fails.
    #[arg(long, default_value_t = 1.0)]
    pub slowdown: f64,
    /// Baseline to check against [default: the built-in sim-demo baseline].
    #[arg(long, value_name = "PROFILE|PATH")]
    pub baseline: Option<String>,
    /// Language of the terminal report and of the full report written beside the results.
    #[arg(long, value_enum, default_value = "en")]
    pub lang: crate::report::Lang,
}

/// `infergate doctor`.
#[derive(Debug, Clone, Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Check only the GPU side (NVML), without a server.
    #[arg(long)]
    pub gpu_only: bool,
}

/// The results files of `runs` runs written to `output`: the path itself
/// for one run; `STEM.runN.EXT` beside it for several.
pub fn run_paths(output: &std::path::Path, runs: u32) -> Vec<PathBuf> {
    if runs <= 1 {
        return vec![output.to_path_buf()];
    }
    let stem = output.file_stem().map_or_else(|| "results".into(), |s| s.to_string_lossy().into_owned());
    let ext = output.extension().map_or_else(|| "json".into(), |e| e.to_string_lossy().into_owned());
    (1..=runs).map(|i| output.with_file_name(format!("{stem}.run{i}.{ext}"))).collect()
}

/// The plan of run `run` of `runs`: a launched server learns its run
/// (`INFERGATE_RUN`) and logs to a file of its own (`server.runN.log`).
pub fn plan_for_run(plan: &RunPlan, run: u32, runs: u32) -> RunPlan {
    let mut p = plan.clone();
    if let Some(launch) = &mut p.launch {
        launch.run = run;
        if runs > 1 {
            let name = format!("server.run{run}.log");
            launch.log = launch.log.with_file_name(name);
        }
    }
    p
}

/// Default request timeout.
pub const DEFAULT_REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);
/// Default idle timeout.
pub const DEFAULT_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

fn flag_duration(flag: &str, value: &Option<String>) -> Result<Option<std::time::Duration>, Failure> {
    value
        .as_deref()
        .map(|v| HumanDuration::parse(v).map(HumanDuration::get).map_err(|e| Failure::invalid(anyhow!("{flag}: {e}"))))
        .transpose()
}

/// Builds the client configuration from flags and config; `needs_model`
/// makes a missing model an error naming its flag and key.
pub fn client_config(args: &ServerArgs, loaded: &LoadedConfig) -> Result<ClientConfig, Failure> {
    let s = &loaded.config.server;
    let origin = loaded.origin();
    let base_url = match &args.base_url {
        Some(u) => BaseUrl::parse(u).map_err(|e| Failure::invalid(anyhow!("--base-url: {e}")))?,
        None => s.base_url.clone().ok_or_else(|| {
            Failure::invalid(anyhow!("no server URL: pass --base-url URL or set [server] base_url in {origin}"))
        })?,
    };
    let model =
        args.model.clone().or_else(|| s.model.clone()).filter(|m| !m.trim().is_empty()).ok_or_else(|| {
            Failure::invalid(anyhow!("no model: pass --model NAME or set [server] model in {origin}"))
        })?;
    let key_env = args.api_key_env.clone().or_else(|| s.api_key_env.clone());
    let api_key = match key_env {
        Some(var) => match std::env::var(&var) {
            Ok(v) if !v.is_empty() => Some(Secret::new(v)),
            _ => {
                return Err(Failure::invalid(anyhow!(
                    "the API key variable {var} (from --api-key-env or [server] api_key_env) is not set or empty"
                )));
            }
        },
        None => None,
    };
    Ok(ClientConfig {
        base_url: base_url.0,
        model,
        api: args.api.or(s.api).unwrap_or_default(),
        api_key,
        request_timeout: flag_duration("--request-timeout", &args.request_timeout)?
            .or(s.request_timeout.map(HumanDuration::get))
            .unwrap_or(DEFAULT_REQUEST_TIMEOUT),
        idle_timeout: flag_duration("--idle-timeout", &args.idle_timeout)?
            .or(s.idle_timeout.map(HumanDuration::get))
            .unwrap_or(DEFAULT_IDLE_TIMEOUT),
        max_event_bytes: crate::client::sse::DEFAULT_MAX_EVENT_BYTES,
    })
}

/// Environment variable naming the NVML library (beats `[gpu] nvml_library`).
pub const NVML_LIBRARY_ENV: &str = "INFERGATE_NVML_LIBRARY";

/// The GPU part of a plan: flag, then `[gpu]`, then defaults.
pub fn gpu_plan(flag: Option<crate::config::GpuMode>, c: &crate::config::GpuConfig) -> GpuPlan {
    GpuPlan {
        mode: flag.or(c.mode).unwrap_or_default(),
        interval: c.interval.map_or(std::time::Duration::from_millis(100), HumanDuration::get),
        nvml: crate::telemetry::nvml::NvmlOptions {
            library: std::env::var_os(NVML_LIBRARY_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .or_else(|| c.nvml_library.clone()),
            devices: c.devices.as_ref().map(|d| d.iter().map(|x| x.0.clone()).collect()),
        },
    }
}

/// The validated plan of `infergate run`, and its output path.
pub fn run_plan(args: &RunArgs) -> Result<(RunPlan, PathBuf), Failure> {
    let loaded = LoadedConfig::load(args.server.config.as_deref()).map_err(|e| Failure::invalid(anyhow!(e)))?;
    let client = client_config(&args.server, &loaded)?;
    let run = &loaded.config.run;
    let server = &loaded.config.server;
    if let Some(rate) = args.request_rate {
        crate::limits::check_rate(rate).map_err(|e| Failure::invalid(anyhow!("--request-rate: {e}")))?;
    }
    let suite_name = args.suite.clone().or_else(|| run.suite.clone()).unwrap_or_else(|| "coder".into());
    let mut suite = crate::suite::load(&suite_name).map_err(Failure::invalid)?;
    let cases_filter = args.cases.clone().or_else(|| run.cases.clone());
    if let Some(filter) = &cases_filter {
        suite.select(filter).map_err(Failure::invalid)?;
    }
    let output =
        args.out.clone().or_else(|| run.output.clone()).unwrap_or_else(|| PathBuf::from("infergate-out/results.json"));
    let cache_reset = match server.cache_reset.as_deref() {
        None | Some("auto") => CacheReset::Auto,
        Some("off") => CacheReset::Off,
        Some(p) if p.starts_with('/') => CacheReset::Path(p.to_string()),
        Some(other) => {
            return Err(Failure::invalid(anyhow!(
                "{}: key `server.cache_reset`: `{other}` must be \"auto\", \"off\" or a path starting with /",
                loaded.origin()
            )));
        }
    };
    // Checked with or without a server command, so a bad value is an error wherever it is written.
    let ready_timeout = flag_duration("--ready-timeout", &args.ready_timeout)?
        .or(server.ready_timeout.map(HumanDuration::get))
        .unwrap_or(std::time::Duration::from_secs(600));
    let plan = RunPlan {
        client,
        suite,
        cases_filter,
        overrides: CaseSettings {
            repetitions: args.repetitions,
            warmup: args.warmup,
            concurrency: args.concurrency,
            request_rate: args.request_rate,
        },
        config_defaults: CaseSettings {
            repetitions: run.repetitions.map(|p| p.get()),
            warmup: run.warmup.map(|w| w.get()),
            concurrency: run.concurrency.map(|p| p.get()),
            request_rate: run.request_rate.map(|r| r.get()),
        },
        ignore_eos: args.ignore_eos.or(server.ignore_eos).unwrap_or(true),
        min_tokens: args.min_tokens.or(server.min_tokens).unwrap_or(true),
        probe_length: server.probe.unwrap_or(Toggle::Auto) == Toggle::Auto,
        length_controls_auto: args.ignore_eos.or(server.ignore_eos).is_none()
            && args.min_tokens.or(server.min_tokens).is_none(),
        continuous_usage: args.continuous_usage.or(server.continuous_usage).unwrap_or(false),
        cache_reset,
        use_tokenize: server.tokenize.unwrap_or(Toggle::Auto) == Toggle::Auto,
        gpu: gpu_plan(args.gpu, &loaded.config.gpu),
        server_metrics: server.metrics.unwrap_or(Toggle::Auto) == Toggle::Auto,
        launch: args.server_command.clone().or_else(|| server.command.clone()).filter(|c| !c.trim().is_empty()).map(
            |command| crate::server::Launch {
                command,
                ready_timeout,
                stop_grace: server.stop_grace.map_or(std::time::Duration::from_secs(10), HumanDuration::get),
                log: match output.parent().filter(|p| !p.as_os_str().is_empty() && output.as_os_str() != "-") {
                    Some(dir) => dir.join("server.log"),
                    None => PathBuf::from("server.log"),
                },
                run: 1,
                withheld_env: Vec::new(),
            },
        ),
        retries: args.retries.or(run.retries.map(|r| r.get())).unwrap_or(crate::client::retry::DEFAULT_RETRIES),
        grace: flag_duration("--grace", &args.grace)?
            .or(run.grace.map(HumanDuration::get))
            .unwrap_or(crate::runner::DEFAULT_GRACE),
        // The clock starts now, before the server is started or probed.
        deadline: flag_duration("--deadline", &args.deadline)?
            .or(run.deadline.map(HumanDuration::get))
            .and_then(crate::runner::Deadline::after),
    };
    Ok((plan, output))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_runs_get_one_file_each() {
        let p = std::path::Path::new("out/results.json");
        assert_eq!(run_paths(p, 1), vec![PathBuf::from("out/results.json")]);
        assert_eq!(
            run_paths(p, 2),
            vec![PathBuf::from("out/results.run1.json"), PathBuf::from("out/results.run2.json")]
        );
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn flags_override_config_and_missing_values_name_their_flag() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("c.toml");
        std::fs::write(&cfg, "[server]\nbase_url = \"http://127.0.0.1:9\"\nmodel = \"from-file\"\n[run]\nrepetitions = 3\nsuite = \"quick\"\n").unwrap();
        let cli = Cli::try_parse_from([
            "infergate",
            "run",
            "--config",
            cfg.to_str().unwrap(),
            "--model",
            "from-flag",
            "--repetitions",
            "7",
        ])
        .unwrap();
        let Command::Run(args) = cli.command else { panic!() };
        let (plan, out) = run_plan(&args.run).unwrap();
        assert_eq!(plan.client.model, "from-flag");
        assert_eq!(plan.client.base_url, "http://127.0.0.1:9");
        assert_eq!(plan.suite.name, "quick");
        assert_eq!(plan.settings_for(&plan.suite.cases[0]).repetitions, 7);
        assert_eq!(out, PathBuf::from("infergate-out/results.json"));

        std::fs::write(&cfg, "[server]\nbase_url = \"http://127.0.0.1:9\"\n").unwrap();
        let cli = Cli::try_parse_from(["infergate", "run", "--config", cfg.to_str().unwrap()]).unwrap();
        let Command::Run(args) = cli.command else { panic!() };
        let err = run_plan(&args.run).unwrap_err().to_string();
        assert!(err.contains("--model") && err.contains("[server] model"), "{err}");
    }

    #[test]
    fn the_api_key_is_in_the_plan_but_not_in_its_debug_form() {
        // PATH stands in for the key: it is always set, and setting a
        // variable of our own would race with the other tests' threads.
        let key = std::env::var("PATH").unwrap();
        assert!(key.len() > 8, "PATH is too short to stand in for a key: {key:?}");
        let cli = Cli::try_parse_from([
            "infergate",
            "--verbose",
            "run",
            "--base-url",
            "http://127.0.0.1:9",
            "--model",
            "m",
            "--api-key-env",
            "PATH",
            "--server-command",
            "true",
        ])
        .unwrap();
        let Command::Run(args) = &cli.command else { panic!() };
        let (plan, out) = run_plan(&args.run).unwrap();
        assert!(plan.client.api_key.is_some());
        let client = crate::client::Client::new(plan.client.clone()).unwrap();
        for shown in [
            format!("{cli:?}"),
            format!("{plan:?}"),
            format!("{plan:#?}"),
            format!("{:?}", plan.client),
            format!("{client:?}"),
            format!("{out:?}"),
        ] {
            assert!(!shown.contains(&key), "the key shows in {shown}");
        }
        assert!(format!("{plan:?}").contains("Secret(<redacted>)"));
    }
}

/// `infergate history dashboard`.
#[derive(Debug, Clone, Args)]
pub struct DashboardArgs {
    /// The history store: a folder of PROFILE.jsonl files, one history record a line.
    #[arg(long, value_name = "DIR", default_value = ".infergate-history")]
    pub store: PathBuf,
    /// Output folder: the page is DIR/index.html, one self-contained file.
    #[arg(long, value_name = "DIR", default_value = "infergate-dashboard")]
    pub out: PathBuf,
    /// Folder of baselines: the values of DIR/PROFILE.toml are drawn as a line on PROFILE's charts.
    #[arg(long, value_name = "DIR", default_value = "baselines")]
    pub baseline_dir: PathBuf,
    /// Link commits to this repository, e.g. https://github.com/OWNER/REPO
    /// [default: $GITHUB_SERVER_URL/$GITHUB_REPOSITORY when both are set, else no links].
    #[arg(long, value_name = "URL")]
    pub repo_url: Option<String>,
    #[command(flatten)]
    pub lang: LangArgs,
}
