//! The commands: each turns parsed arguments into a run of the library and
//! an exit code. `main` only parses and calls these.

pub mod dashboard;
pub mod export;
pub mod gate;
pub mod history;
pub mod main_history;
pub mod publish;
pub mod report;

use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow};

use crate::cli::{DemoArgs, DoctorArgs, RunCmdArgs, SimArgs};
use crate::client::Client;
use crate::config::LoadedConfig;
use crate::exit::{self, Failure};
use crate::progress::{Terminal, Verbosity};
use crate::results::Results;
use crate::runner::{self, CacheReset, RunPlan, StopReason, StopSignal};
use crate::sim::SimConfig;
use crate::suite::CaseSettings;

/// `infergate run`: one results file per run.
pub async fn run(args: &RunCmdArgs, verbosity: Verbosity) -> Result<i32, Failure> {
    let (plan, output) = crate::cli::run_plan(&args.run)?;
    let rules = gate::load_rules(args.run.server.config.as_deref())?;
    if args.runs > 1 && output.as_os_str() == "-" {
        return Err(Failure::invalid(anyhow!(
            "--runs {} writes one file per run: give --out a file path, not -",
            args.runs
        )));
    }
    let _outputs = claim_outputs(&output, &launch_logs(&plan, args.runs))?;
    warn_shared_launch(&plan, args.runs as usize, verbosity);
    let paths = crate::cli::run_paths(&output, args.runs);
    let mut code = exit::PASS;
    for (i, path) in paths.iter().enumerate() {
        if paths.len() > 1 && verbosity != Verbosity::Quiet {
            eprintln!("run {} of {}", i + 1, paths.len());
        }
        let results = execute(&crate::cli::plan_for_run(&plan, i as u32 + 1, args.runs), verbosity).await?;
        code = code.max(finish(&results, path, &rules, verbosity)?);
        if !results.complete {
            break;
        }
    }
    if paths.len() > 1 && verbosity != Verbosity::Quiet {
        let files: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        eprintln!(
            "record them as a baseline: infergate baseline update --results {} --baseline PROFILE",
            files.join(" ")
        );
    }
    Ok(code)
}

/// Several runs on one server launch cannot show the drift between launches: say so.
pub(crate) fn warn_shared_launch(plan: &RunPlan, runs: usize, verbosity: Verbosity) {
    if runs > 1 && plan.launch.is_none() && verbosity != Verbosity::Quiet {
        eprintln!(
            "warning: the {runs} runs share one server launch, so drift between launches (a restarted server, \
             another GPU state) is not in them; pass --server-command to start the server afresh for every run"
        );
    }
}

/// The baseline `infergate demo` checks against, recorded from the simulator
/// with the demo's settings and built into the binary.
pub const DEMO_BASELINE: &str = include_str!("../../baselines/sim-demo.toml");

/// Time per token of the demo's simulator: long enough that a busy machine's
/// scheduling delays (a few ms) stay far below the 5% throughput tolerance.
const DEMO_ITL_MS: f64 = 6.0;

/// `infergate demo`: the whole loop against the built-in simulator.
pub async fn demo(args: &DemoArgs, verbosity: Verbosity) -> Result<i32, Failure> {
    // Bounded so that the demo ends: 100x slower is already minutes per case.
    if !(0.01..=100.0).contains(&args.slowdown) {
        return Err(Failure::invalid(anyhow!(
            "--slowdown must be a positive factor from 0.01 to 100, e.g. 1.1; got {}",
            crate::limits::show(args.slowdown)
        )));
    }
    let (baseline, baseline_path) = match &args.baseline {
        Some(arg) => gate::load_baseline(arg)?,
        None => {
            let path = std::path::PathBuf::from("baselines/sim-demo.toml");
            let b = crate::baseline::Baseline::parse(DEMO_BASELINE, "baselines/sim-demo.toml (built in)")
                .map_err(Failure::invalid)?;
            (b, path)
        }
    };
    let output = args.out.join("results.json");
    let sim_config = SimConfig { slowdown: args.slowdown, itl_ms: DEMO_ITL_MS, ..SimConfig::default() };
    let sim = crate::sim::start(sim_config, ([127, 0, 0, 1], 0).into())
        .await
        .map_err(|e| Failure::run(e.context("cannot start the built-in simulator")))?;
    if verbosity != Verbosity::Quiet {
        eprintln!(
            "demo: simulated server on {} (slowdown {}), checking the quick suite against {}",
            sim.base_url(),
            crate::limits::show(args.slowdown),
            baseline_path.display()
        );
    }
    let plan = RunPlan {
        client: crate::client::ClientConfig {
            base_url: sim.base_url(),
            model: SimConfig::default().model,
            api: crate::client::Api::Chat,
            api_key: None,
            request_timeout: crate::cli::DEFAULT_REQUEST_TIMEOUT,
            idle_timeout: std::time::Duration::from_secs(30),
            max_event_bytes: crate::client::sse::DEFAULT_MAX_EVENT_BYTES,
        },
        suite: crate::suite::load("quick").map_err(Failure::invalid)?,
        cases_filter: None,
        overrides: CaseSettings { repetitions: Some(args.repetitions), warmup: Some(1), ..CaseSettings::default() },
        config_defaults: CaseSettings::default(),
        ignore_eos: true,
        min_tokens: true,
        continuous_usage: true,
        cache_reset: CacheReset::Auto,
        use_tokenize: true,
        // The built-in baseline has no GPU figures: the demo is about the loop.
        gpu: crate::runner::GpuPlan::off(),
        server_metrics: true,
        launch: None,
        probe_length: true,
        length_controls_auto: true,
        retries: crate::client::retry::DEFAULT_RETRIES,
        grace: runner::DEFAULT_GRACE,
        deadline: None,
    };
    let report = crate::cli::ReportArgs {
        format: crate::cli::ReportFormat::Terminal,
        template: None,
        markdown: None,
        color: crate::cli::ColorChoice::Auto,
        lang: Some(args.lang),
    };
    let code = gate::run_check(gate::CheckSetup {
        plan: &plan,
        output: &output,
        rules: &crate::gate::rules::Rules::default(),
        baseline: &baseline,
        baseline_path: &baseline_path,
        allow_mismatch: false,
        runs: 1,
        confirm: 0,
        comparison_path: args.out.join("comparison.json"),
        report: &report,
        lang: args.lang,
        verbosity,
        markdown_on_stdout: false,
        history: None,
    })
    .await;
    sim.shutdown().await;
    // Holds the output folder until the full report is written too.
    let checked = code?;
    let code = crate::exit::of_verdict(checked.comparison.verdict, crate::cli::FailOn::Regression);
    let results = crate::results::load(&output).map_err(Failure::run)?;
    let written = report::write_full_report(&[(output.clone(), results)], args.lang, None, &args.out)?;
    drop(checked);
    if verbosity != Verbosity::Quiet {
        eprintln!("full report: {}", written.display());
    }
    if verbosity != Verbosity::Quiet {
        if code == exit::PASS && args.slowdown == 1.0 {
            eprintln!(
                "\nNext: see a regression caught with `infergate demo --slowdown 1.1`, or point it at your server:"
            );
        } else {
            eprintln!("\nPoint infergate at your own server:");
        }
        eprintln!("  infergate run --base-url http://127.0.0.1:8000 --model MODEL --suite quick");
    }
    Ok(code)
}

/// Runs a plan with Ctrl-C / SIGTERM handling, the run's deadline and
/// terminal progress. The first signal stops new requests and gives those in
/// flight the grace period; a second one cancels them; the deadline cancels
/// them at once.
pub(crate) async fn execute(plan: &RunPlan, verbosity: Verbosity) -> Result<Results, Failure> {
    let (stop_handle, stop) = StopSignal::new();
    let handle = stop_handle.clone();
    let grace = plan.grace;
    let signals = tokio::spawn(async move {
        let mut signals = Signals::new();
        signals.next().await;
        eprintln!(
            "\ninterrupted: no new requests; those in flight get {} to finish (interrupt again to cancel them), \
             then the partial results are written",
            humantime::format_duration(grace)
        );
        handle.interrupt();
        signals.next().await;
        eprintln!("\ninterrupted again: cancelling the requests in flight");
        handle.interrupt();
    });
    let deadline = plan.deadline.map(|d| {
        let handle = stop_handle.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(d.at.into()).await;
            eprintln!(
                "\n{}: cancelling the requests in flight, writing partial results",
                StopReason::Deadline(d.limit).describe()
            );
            handle.cancel(StopReason::Deadline(d.limit));
        })
    });
    let mut terminal = Terminal::new(verbosity);
    let results = runner::run(plan, &mut terminal, stop).await;
    drop(terminal);
    signals.abort();
    if let Some(d) = deadline {
        d.abort();
    }
    results
}

/// Ctrl-C and SIGTERM, as many times as they come.
struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Signals {
        Signals {
            #[cfg(unix)]
            term: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok(),
        }
    }

    async fn next(&mut self) {
        let ctrl_c = async {
            // Without a handler, nothing can interrupt us this way.
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        #[cfg(unix)]
        if let Some(term) = &mut self.term {
            tokio::select! {
                () = ctrl_c => {}
                _ = term.recv() => {}
            }
            return;
        }
        ctrl_c.await;
    }
}

/// Writes the results, prints the summary and decides the exit code.
fn finish(
    results: &Results,
    output: &Path,
    rules: &crate::gate::rules::Rules,
    verbosity: Verbosity,
) -> Result<i32, Failure> {
    crate::results::save(results, output).map_err(crate::fsutil::failure)?;
    let table = crate::report::table::summary(results);
    if output.as_os_str() == "-" {
        eprint!("{table}");
    } else {
        print_stdout(&table)?;
        if verbosity != Verbosity::Quiet {
            eprintln!("results written to {}", output.display());
        }
    }
    for w in &results.warnings {
        eprintln!("warning: {}", crate::text::for_log(w));
    }
    if !results.complete {
        eprintln!("error: the run did not complete; its results are partial and cannot be gated");
        return Ok(exit::RUN_FAILED);
    }
    let errors = results.total_errors();
    let invalid: Vec<(&str, Vec<String>)> = results
        .cases
        .iter()
        .map(|c| {
            let problems = crate::gate::validity::problems(c, rules);
            let words = problems.iter().map(|p| crate::report::findings::problem(p, crate::report::full::Lang::En));
            (c.id.as_str(), words.collect::<Vec<String>>())
        })
        .filter(|(_, p)| !p.is_empty())
        .collect();
    if !invalid.is_empty() {
        for (id, problems) in &invalid {
            for p in problems {
                eprintln!("error: {}", crate::text::for_log(&format!("{id} is invalid: {p}")));
            }
        }
        if errors > 0 {
            eprintln!(
                "error: {errors} of {} requests failed; a run with failed requests cannot be trusted (see `error` in {})",
                results.total_requests(),
                output.display()
            );
        }
        return Ok(exit::RUN_FAILED);
    }
    if errors > 0 {
        eprintln!(
            "warning: {errors} of {} requests failed, within the allowed error rate ([gate] max_error_rate)",
            results.total_requests()
        );
    }
    Ok(exit::PASS)
}

/// The output files of a command that measures, claimed before the first
/// request, so that a run never ends with nowhere to put its measurements:
/// none of them may be a link, FIFO, device or folder; every folder they go
/// to is created and must take a new file; and the folder of the results
/// (`--out`) is locked for this process, so that a second command writing
/// there refuses rather than mixing its files with ours. The lock lasts as
/// long as the returned guard (and never outlives the process).
pub(crate) fn claim_outputs(output: &Path, others: &[PathBuf]) -> Result<Option<crate::fsutil::FolderLock>, Failure> {
    if output.as_os_str() != "-" && output.is_dir() {
        return Err(Failure::invalid(anyhow!("--out {} is a directory; give a file path", output.display())));
    }
    let paths: Vec<&Path> =
        std::iter::once(output).chain(others.iter().map(PathBuf::as_path)).filter(|p| p.as_os_str() != "-").collect();
    let mut folders: Vec<&Path> = Vec::new();
    for path in &paths {
        crate::fsutil::check_target(path).map_err(Failure::invalid)?;
        let folder = folder_of(path);
        if !folders.contains(&folder) {
            folders.push(folder);
        }
    }
    for folder in folders {
        crate::fsutil::probe_folder(folder)
            .with_context(|| format!("the output folder {} is not writable", folder.display()))
            .map_err(Failure::invalid)?;
    }
    if output.as_os_str() == "-" {
        return Ok(None);
    }
    let folder = folder_of(output);
    match crate::fsutil::try_lock_folder(folder).map_err(Failure::invalid)? {
        Some(lock) => Ok(Some(lock)),
        None => Err(Failure::invalid(anyhow!(
            "another infergate is writing to the output folder {} (its results and reports would be mixed with \
             this run's); wait for it to finish, or give this run another --out",
            folder.display()
        ))),
    }
}

/// The folder a file goes to (`.` for a bare name).
fn folder_of(path: &Path) -> &Path {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// The server logs of runs `1..=runs` of `plan` (none without `--server-command`).
pub(crate) fn launch_logs(plan: &RunPlan, runs: u32) -> Vec<PathBuf> {
    (1..=runs.max(1)).filter_map(|i| crate::cli::plan_for_run(plan, i, runs).launch.map(|l| l.log)).collect()
}

/// Prints to stdout; a closed pipe (`| head`) is not an error, stdout that
/// cannot take the text (a full disk, a closed descriptor) is: the report
/// would be lost.
pub fn print_stdout(text: &str) -> Result<(), Failure> {
    crate::fsutil::write_stdout(text.as_bytes()).map_err(Failure::run)
}

/// `infergate sim`.
pub async fn sim(args: &SimArgs) -> Result<i32, Failure> {
    let mut config = SimConfig {
        model: args.model.clone(),
        seed: args.seed,
        ttft_base_ms: args.ttft_base_ms,
        prefill_tokens_per_s: args.prefill_tps,
        cached_prefill_factor: args.cached_prefill_factor,
        cold_penalty_ms: args.cold_penalty_ms,
        itl_ms: args.itl_ms,
        itl_jitter: args.itl_jitter,
        concurrency_slowdown: args.concurrency_slowdown,
        request_cv: args.request_cv,
        request_noise: args.request_noise,
        autocorrelation: args.autocorrelation,
        outlier_rate: args.outlier_rate,
        outlier_factor: args.outlier_factor,
        warmup_slowdown: args.warmup_slowdown,
        warmup_requests: args.warmup_requests,
        run_drift: args.run_drift,
        run_drift_tail: args.run_drift_tail,
        tokens_per_chunk: args.tokens_per_chunk,
        slowdown: args.slowdown,
        natural_len_min: args.natural_len_min,
        natural_len_max: args.natural_len_max,
        max_model_len: args.max_model_len,
        truth_log: None,
        faults: args
            .fault
            .iter()
            .map(|spec| spec.parse())
            .collect::<Result<_, _>>()
            .map_err(|e| Failure::invalid(anyhow!("--fault {e}")))?,
    };
    config.validate().map_err(|e| {
        let crate::sim::ConfigError::OutOfRange { field, expected, value } = e;
        let flag = match field {
            "prefill_tokens_per_s" => "prefill-tps".to_string(),
            other => other.replace('_', "-"),
        };
        Failure::invalid(anyhow!("--{flag} must be {expected}, got {value}"))
    })?;
    if let Some(path) = &args.truth_log {
        let file = crate::fsutil::append_log(path).map_err(|e| {
            Failure::invalid(e.context(format!(
                "--truth-log: cannot open the truth log {}; check that its folder exists and is writable",
                path.display()
            )))
        })?;
        config.truth_log = Some(crate::sim::TruthLog::new(file));
    }
    crate::sim::serve_until_signal(config, (args.host, args.port).into()).await.map_err(|e| {
        Failure::run(e.context(format!("the simulator could not serve on {}:{}", args.host, args.port)))
    })?;
    Ok(exit::PASS)
}

/// The GPU lines of `doctor`; returns 3 when `[gpu] mode = "require"` cannot be met.
fn doctor_gpu(loaded: &LoadedConfig, out: &mut String) -> i32 {
    let plan = crate::cli::gpu_plan(None, &loaded.config.gpu);
    if plan.mode == crate::config::GpuMode::Off {
        out.push_str("info  gpu: telemetry is off ([gpu] mode = \"off\")\n");
        return exit::PASS;
    }
    let opts = plan.nvml.clone();
    let opened = crate::telemetry::Recorder::start(
        move || crate::telemetry::nvml::open(&opts),
        std::time::Duration::from_secs(3600),
        std::time::Instant::now(),
    );
    match opened {
        Ok((_recorder, info)) => {
            out.push_str(&format!(
                "ok    gpu: NVML works (driver {}, CUDA {}), {} device(s) selected\n",
                info.driver_version.as_deref().unwrap_or("unknown"),
                info.cuda_driver_version.as_deref().unwrap_or("unknown"),
                info.devices.len()
            ));
            for d in &info.devices {
                let flag = |v: Option<bool>| v.map_or("unknown", |b| if b { "on" } else { "off" });
                out.push_str(&format!(
                    "      GPU {}: {} {} | {} MiB | power limit {} | persistence {} | MIG {} | ECC {} | clocks locked {}\n",
                    d.index,
                    d.name.as_deref().unwrap_or("unknown"),
                    d.uuid.as_deref().unwrap_or(""),
                    d.memory_total_mib.map_or("?".into(), |m| format!("{m:.0}")),
                    d.power_limit_w.map_or("unknown".into(), |w| format!("{w:.0} W")),
                    flag(d.persistence_mode),
                    flag(d.mig_mode),
                    flag(d.ecc),
                    flag(d.clocks_locked),
                ));
                out.push_str(&format!(
                    "      sampler reads: {}\n",
                    if d.readable.is_empty() { "nothing".into() } else { d.readable.join(", ") }
                ));
            }
            if info.devices.is_empty() {
                out.push_str("warn  gpu: no device selected (CUDA_VISIBLE_DEVICES or [gpu] devices)\n");
            }
            exit::PASS
        }
        Err(reason) if plan.mode == crate::config::GpuMode::Require => {
            out.push_str(&format!("FAIL  gpu: {reason} ([gpu] mode = \"require\")\n"));
            exit::RUN_FAILED
        }
        Err(reason) => {
            out.push_str(&format!("info  gpu: telemetry unavailable: {reason}; runs record this and carry on\n"));
            exit::PASS
        }
    }
}

/// `infergate doctor`: what works here.
pub async fn doctor(args: &DoctorArgs) -> Result<i32, Failure> {
    let mut out = String::new();
    let mut code = exit::PASS;
    let loaded = match LoadedConfig::load(args.server.config.as_deref()) {
        Ok(l) => {
            match &l.path {
                Some(p) => out.push_str(&format!("ok    config: {}\n", p.display())),
                None => out.push_str("info  config: no infergate.toml here (flags only)\n"),
            }
            l
        }
        Err(e) => {
            out.push_str(&format!("FAIL  config: {e}\n"));
            print_stdout(&crate::text::for_log(&out))?;
            return Ok(exit::INVALID_INPUT);
        }
    };
    let gpu_code = doctor_gpu(&loaded, &mut out);
    if args.gpu_only {
        print_stdout(&crate::text::for_log(&out))?;
        return Ok(gpu_code);
    }
    let client_config = match crate::cli::client_config(&args.server, &loaded) {
        Ok(c) => c,
        Err(e) => {
            out.push_str(&format!("FAIL  server: {e}\n"));
            print_stdout(&crate::text::for_log(&out))?;
            return Ok(e.code());
        }
    };
    let client = Client::new(client_config.clone()).map_err(Failure::run)?;
    match runner::endpoints::preflight(&client).await {
        Ok(facts) => {
            out.push_str(&format!("ok    server: {} answers GET /v1/models\n", client_config.base_url));
            out.push_str(&format!("ok    model: {} is served", client_config.model));
            if let Some(len) = facts.max_model_len {
                out.push_str(&format!(" (context {len} tokens)"));
            }
            out.push('\n');
            match facts.version {
                Some(v) => out.push_str(&format!("ok    version: {}\n", crate::text::inert(&v))),
                None => out.push_str("info  version: the server has no GET /version\n"),
            }
            match runner::endpoints::tokenize(&client, "def f(x): return x").await {
                Ok(n) => out.push_str(&format!(
                    "ok    tokenize: POST /tokenize works ({n} tokens for a probe); prompts are sized exactly\n"
                )),
                Err(e) => out.push_str(&format!(
                    "info  tokenize: POST /tokenize unavailable ({}); prompts will be sized from usage.prompt_tokens\n",
                    crate::text::inert(&e.message)
                )),
            }
        }
        Err(e) => {
            out.push_str(&format!("FAIL  server: {e}\n"));
            code = e.code();
        }
    }
    print_stdout(&crate::text::for_log(&out))?;
    Ok(code)
}
