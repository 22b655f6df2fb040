//! What infergate itself costs around the server it measures.
//!
//! `cargo bench --bench tool_overhead` measures:
//! 1. suite overhead: the `quick` suite (8 cases, 32-token outputs), 10
//!    repetitions and 1 warm-up per case, against the simulator in this
//!    process pacing 20 ms per token, once through the library's runner (a
//!    time stamp on every progress event splits the run into set-up, prompt
//!    sizing, cold, warm-up and warm phases) and once through the release
//!    binary (`infergate run`, the whole process). The simulator's ground
//!    truth gives the server's own time of every request (receipt to its last
//!    chunk); the rest of the wall time is the tool's. Requests are sequential.
//! 2. compare and render: a synthetic 1,000-case results file and baseline
//!    (1 cold + 10, then 20, warm requests per case, from the simulator's
//!    model; 20 cases 15% slower), timed in-process (compare, terminal and
//!    Markdown render, the accept preview, the comment truncation, loading
//!    both files) and as the `infergate compare` process.
//! 3. start-up: the release binary's `--version`, `--help`, and a `compare`
//!    of a one-case pair, as spawned processes.
//!
//! Environment: INFERGATE_BENCH_ITL_MS (simulator ms per token, default 20),
//! INFERGATE_BENCH_CASES (`--cases` globs over the quick suite, default all),
//! INFERGATE_BENCH_ONLY (comma-separated sections to run: `suite`, `compare`,
//! `startup`; default all).
//! Figures depend on the machine; the tool and the simulator share its cores.
#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap here is a failed test, not a crash.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use infergate::app::gate::accept_preview;
use infergate::baseline::Baseline;
use infergate::client::{Api, ClientConfig};
use infergate::gate::MetricStatus;
use infergate::gate::compare::{CompareInput, compare};
use infergate::gate::rules::Rules;
use infergate::github::truncate::truncate_markdown;
use infergate::report::render::{Format, RenderOptions, render};
use infergate::results::{PhaseName, PhaseSummary, Results};
use infergate::runner::{self, CacheReset, GpuPlan, Reporter, RunEvent, RunPlan, StopSignal};
use infergate::sim::{self, SimConfig, TruthRecord};
use infergate::suite::{CaseFilter, CaseSettings, Suite};

const BIN: &str = env!("CARGO_BIN_EXE_infergate");

/// Milliseconds of each of `n` calls of `f`, after `warmup` untimed ones.
fn time_ms<T>(warmup: usize, n: usize, mut f: impl FnMut() -> T) -> Vec<f64> {
    for _ in 0..warmup {
        std::hint::black_box(f());
    }
    (0..n)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(f());
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect()
}

/// Median, 10th and 90th percentile of `v`.
fn spread(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    let q = |p| infergate::stats::quantile_sorted(&v, p);
    (q(0.5), q(0.1), q(0.9))
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

// ---------------------------------------------------------------------------
// 1. Suite wall time against the server's own time

/// Where the runner was when a progress event came.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mark {
    Started,
    Sizing,
    CaseStarted,
    PhaseDone(PhaseName),
}

/// A reporter that stamps the time of every event the segments need.
#[derive(Default)]
struct Stamps(Vec<(Instant, Mark)>);

impl Reporter for Stamps {
    fn event(&mut self, event: &RunEvent) {
        let mark = match event {
            RunEvent::Started { .. } => Mark::Started,
            RunEvent::Sizing { .. } => Mark::Sizing,
            RunEvent::CaseStarted { .. } => Mark::CaseStarted,
            RunEvent::PhaseDone { phase, .. } => Mark::PhaseDone(*phase),
            RunEvent::RequestDone { .. } | RunEvent::Warning(_) => return,
        };
        self.0.push((Instant::now(), mark));
    }
}

/// Seconds of wall time per segment of a run, in run order.
#[derive(Debug, Default)]
struct Segments {
    /// Preflight, engine identification, length probe, sizing method, reset discovery.
    setup: f64,
    /// Prompt sizing of every case.
    sizing: f64,
    /// Cache reset and the cold request of every case.
    cold: f64,
    /// Warm-up requests and phase bookkeeping.
    warmup: f64,
    /// Warm phases, as the results record them.
    warm: f64,
    /// Between cases, and building the results at the end.
    between: f64,
}

impl Segments {
    fn of(t0: Instant, end: Instant, stamps: &[(Instant, Mark)], results: &Results) -> Segments {
        let mut s = Segments::default();
        let mut warm_and_warmup = 0.0;
        let (mut prev, mut current) = (t0, None);
        // The end closes the last segment (its mark is never read).
        for &(t, mark) in stamps.iter().chain([(end, Mark::Started)].iter()) {
            let d = t.duration_since(prev).as_secs_f64();
            match current {
                None => s.setup += d,
                Some(Mark::Started | Mark::PhaseDone(PhaseName::Warm)) => s.between += d,
                Some(Mark::Sizing) => s.sizing += d,
                Some(Mark::CaseStarted) => s.cold += d,
                Some(Mark::PhaseDone(PhaseName::Cold)) => warm_and_warmup += d,
            }
            (prev, current) = (t, Some(mark));
        }
        s.warm =
            results.cases.iter().filter_map(|c| c.phases.get(&PhaseName::Warm)).map(|p| p.summary.duration_s).sum();
        s.warmup = warm_and_warmup - s.warm;
        s
    }
}

/// The server's own time (receipt to last chunk, ms) and count of each kind of request.
#[derive(Debug, Default)]
struct ServerTime {
    /// Streamed requests before the first measured one: the capability
    /// probes (sent together, so the longest one's time).
    probe: (f64, u32),
    /// Non-streamed requests: `usage.prompt_tokens` probes.
    sizing: (f64, u32),
    /// Cold requests the results record.
    cold: (f64, u32),
    /// Streamed requests the results do not record, after the first measured one.
    warmup: (f64, u32),
    /// Warm requests the results record.
    warm: (f64, u32),
}

impl ServerTime {
    fn of(truth: &[TruthRecord], results: &Results) -> ServerTime {
        let mut measured: HashMap<&str, PhaseName> = HashMap::new();
        for case in &results.cases {
            for (name, phase) in &case.phases {
                for id in phase.requests.iter().filter_map(|r| r.response_id.as_deref()) {
                    measured.insert(id, *name);
                }
            }
        }
        let number = |id: &str| id.rsplit('-').next().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
        let first = truth.iter().filter(|t| measured.contains_key(t.id.as_str())).map(|t| number(&t.id)).min();
        let mut s = ServerTime::default();
        for t in truth {
            let seconds = t.e2e_ms / 1000.0;
            let slot = match measured.get(t.id.as_str()) {
                _ if !t.stream => &mut s.sizing,
                Some(PhaseName::Cold) => &mut s.cold,
                Some(PhaseName::Warm) => &mut s.warm,
                None if first.is_none_or(|f| number(&t.id) < f) => {
                    // The capability probes run at once: their server time is the longest one's.
                    s.probe.0 = s.probe.0.max(seconds);
                    s.probe.1 += 1;
                    continue;
                }
                None => &mut s.warmup,
            };
            slot.0 += seconds;
            slot.1 += 1;
        }
        s
    }

    fn all(&self) -> f64 {
        self.probe.0 + self.sizing.0 + self.cold.0 + self.warmup.0 + self.warm.0
    }

    fn measured(&self) -> f64 {
        self.cold.0 + self.warm.0
    }
}

/// Waits until the simulator has recorded `at_least` requests (a stream's
/// record is written just after its last byte), at most a second.
fn truth_after(server: &sim::SimServer, at_least: usize) -> Vec<TruthRecord> {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let truth = server.truth();
        if truth.len() >= at_least || Instant::now() > deadline {
            return truth;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn run_plan(base_url: String, cases: Option<&str>) -> RunPlan {
    let mut suite = infergate::suite::load("quick").expect("the quick suite");
    let cases = cases.map(|globs| CaseFilter::parse(globs).expect("INFERGATE_BENCH_CASES is a case filter"));
    if let Some(filter) = &cases {
        suite.select(filter).expect("INFERGATE_BENCH_CASES selects cases of the quick suite");
    }
    // The defaults of `infergate run`, as src/cli.rs sets them, without GPU telemetry.
    RunPlan {
        client: ClientConfig {
            base_url,
            model: SimConfig::default().model,
            api: Api::Chat,
            api_key: None,
            request_timeout: Duration::from_secs(600),
            idle_timeout: Duration::from_secs(120),
            max_event_bytes: infergate::client::sse::DEFAULT_MAX_EVENT_BYTES,
        },
        suite,
        cases_filter: cases,
        overrides: CaseSettings { repetitions: Some(10), warmup: Some(1), ..CaseSettings::default() },
        config_defaults: CaseSettings::default(),
        ignore_eos: true,
        min_tokens: true,
        continuous_usage: false,
        cache_reset: CacheReset::Auto,
        use_tokenize: true,
        gpu: GpuPlan::off(),
        server_metrics: true,
        launch: None,
        probe_length: true,
        length_controls_auto: true,
        retries: infergate::client::retry::DEFAULT_RETRIES,
        grace: runner::DEFAULT_GRACE,
        deadline: None,
    }
}

fn suite_overhead(rt: &tokio::runtime::Runtime, itl_ms: f64, cases: Option<&str>) {
    let config = SimConfig { itl_ms, ..SimConfig::default() };
    let server = rt.block_on(sim::start(config, ([127, 0, 0, 1], 0).into())).expect("start the simulator");
    let plan = run_plan(server.base_url(), cases);
    let reps = plan.settings_for(&plan.suite.cases[0]);
    println!(
        "1. suite wall time against the server's own time: quick suite, {} cases, {} repetitions + {} warm-up each, \
         simulator {itl_ms} ms/token, sequential requests",
        plan.suite.cases.len(),
        reps.repetitions,
        reps.warmup
    );

    // Through the library's runner.
    let mut stamps = Stamps::default();
    let t0 = Instant::now();
    let results = rt
        .block_on(runner::run(&plan, &mut stamps, StopSignal::never()))
        .unwrap_or_else(|e| panic!("the run failed: {e}"));
    let end = Instant::now();
    let wall = end.duration_since(t0).as_secs_f64();
    let expected = results.total_requests() as usize;
    let truth = truth_after(&server, expected);
    let st = ServerTime::of(&truth, &results);
    let seg = Segments::of(t0, end, &stamps.0, &results);
    if results.total_errors() > 0 || !results.complete {
        println!("   warning: {} failed request(s); complete: {}", results.total_errors(), results.complete);
    }

    println!("\n   library runner (runner::run), by segment");
    println!(
        "   {:<48} {:>9} {:>9} {:>10} {:>9} {:>13}",
        "segment", "wall s", "server s", "tool ms", "requests", "tool ms/req"
    );
    let row = |name: &str, wall: f64, server: (f64, u32)| {
        let tool = (wall - server.0) * 1000.0;
        let per = if server.1 > 0 { format!("{:>13.2}", tool / f64::from(server.1)) } else { format!("{:>13}", "") };
        println!("   {name:<48} {wall:>9.3} {:>9.3} {tool:>10.1} {:>9} {per}", server.0, server.1);
    };
    let setup_server = (st.probe.0 + st.sizing.0, st.probe.1 + st.sizing.1);
    row("set-up: preflight, capability and sizing probes", seg.setup, setup_server);
    row("prompt sizing (/tokenize)", seg.sizing, (0.0, 0));
    row("cold: cache reset + request", seg.cold, st.cold);
    row("warm-up request + phase summaries", seg.warmup, st.warmup);
    row("warm phases", seg.warm, st.warm);
    row("between cases, results at the end", seg.between, (0.0, 0));
    let all = st.all();
    let n_all = st.probe.1 + st.sizing.1 + st.cold.1 + st.warmup.1 + st.warm.1;
    row("total", wall, (all, n_all));

    let measured = st.measured();
    let tool = wall - all;
    println!("\n   tool time / server time of every request:  {:.2}%  (goal within 2%)", 100.0 * tool / all);
    println!(
        "   wall time / server time of the measured (cold + warm) requests: +{:.2}%: capability probe ({} requests) \
         +{:.2}%, sizing probe ({}) +{:.2}%, warm-ups ({}) +{:.2}%, tool +{:.2}%",
        100.0 * (wall - measured) / measured,
        st.probe.1,
        100.0 * st.probe.0 / measured,
        st.sizing.1,
        100.0 * st.sizing.0 / measured,
        st.warmup.1,
        100.0 * st.warmup.0 / measured,
        100.0 * tool / measured
    );
    let gap_ms = (seg.warm - st.warm.0) * 1000.0 / f64::from(st.warm.1.max(1));
    let mean_ms = st.warm.0 * 1000.0 / f64::from(st.warm.1.max(1));
    println!(
        "   per-request gap in the warm phases (send, and the end of the stream after its last chunk): {gap_ms:.2} ms \
         = {:.2}% of a {mean_ms:.0} ms request",
        100.0 * gap_ms / mean_ms
    );
    let fixed = (seg.setup - st.probe.0 - st.sizing.0) + seg.sizing + seg.between;
    println!(
        "   fixed tool costs: {:.0} ms (set-up {:.0} ms besides the server's {:.2} s of probe generation, prompt \
         sizing {:.0} ms, between cases and at the end {:.0} ms)",
        fixed * 1000.0,
        (seg.setup - st.probe.0 - st.sizing.0) * 1000.0,
        st.probe.0 + st.sizing.0,
        seg.sizing * 1000.0,
        seg.between * 1000.0
    );
    let env_ms = spread(time_ms(1, 5, runner::environment)).0;
    println!("   of which the results' environment (two `git` calls): {env_ms:.1} ms");

    // Through the release binary, the whole process.
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("empty.toml");
    std::fs::write(&config, "").expect("write the empty config");
    let out = dir.path().join("results.json");
    let before = server.truth().len();
    let mut cmd = Command::new(BIN);
    cmd.args(["run", "--config"])
        .arg(&config)
        .args(["--base-url", &server.base_url(), "--model", "sim", "--suite", "quick", "--repetitions", "10"])
        .args(["--warmup", "1", "--gpu", "off", "--out"])
        .arg(&out)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(globs) = cases {
        cmd.args(["--cases", globs]);
    }
    let t0 = Instant::now();
    let output = cmd.output().expect("run infergate");
    let wall = t0.elapsed().as_secs_f64();
    if !output.status.success() {
        println!("   infergate run failed ({}): {}", output.status, String::from_utf8_lossy(&output.stderr));
        rt.block_on(server.shutdown());
        return;
    }
    let results = infergate::results::load(&out).expect("the results infergate run wrote");
    let truth = truth_after(&server, before + results.total_requests() as usize);
    let st = ServerTime::of(&truth[before..], &results);
    let (all, measured) = (st.all(), st.measured());
    println!(
        "\n   infergate run (release binary, whole process): wall {wall:.3} s, server {all:.3} s, tool {:.0} ms = \
         {:.2}% of the server's time (goal within 2%); wall / measured requests' server time +{:.2}%",
        (wall - all) * 1000.0,
        100.0 * (wall - all) / all,
        100.0 * (wall - measured) / measured
    );
    rt.block_on(server.shutdown());
}

// ---------------------------------------------------------------------------
// 2. Compare and render a 1,000-case comparison

/// A suite of `scenarios` x 10 contexts with `output` tokens each.
fn big_suite(scenarios: usize, output: u32) -> Suite {
    let mut text = format!(
        "name = \"big\"\nseed = 7\noutput_tokens = {output}\n\
         contexts = [256, 512, 1024, 2048, 4096, 8192, 12800, 16384, 32768, 65536]\n"
    );
    for i in 0..scenarios {
        text.push_str(&format!(
            "\n[[scenarios]]\nname = \"scenario-{i:03}\"\ninstruction = \"Review the code above, part {i}.\"\n"
        ));
    }
    Suite::parse(&text, "tool_overhead big suite", "bench").expect("the big suite parses")
}

/// Gives every request inter-chunk gaps around its TPOT (the synthetic
/// results have none), so the file is as large as a real run's: rounded to
/// the microsecond, as the client records them.
fn fill_itl(results: &mut Results) {
    for case in &mut results.cases {
        for phase in case.phases.values_mut() {
            for r in &mut phase.requests {
                let (Some(tpot), Some(out)) = (r.tpot_ms, r.output_tokens) else { continue };
                r.itl_ms = (1..out)
                    .map(|k| (tpot * (0.9 + 0.01 * f64::from(k * 7919 % 21)) * 1000.0).round() / 1000.0)
                    .collect();
            }
            phase.summary = PhaseSummary::from_records(&phase.requests, phase.summary.duration_s, case.output_tokens);
        }
    }
}

/// Results of `suite` (run `run`, every 50th case 15% slower) and a baseline from another run.
fn pair(suite: &Suite, repetitions: u32) -> (Results, Baseline) {
    let config = SimConfig { itl_ms: 20.0, request_cv: 0.03, ..SimConfig::default() };
    let mut results = sim::synthetic::run(&config, suite, repetitions, 1);
    let slower = sim::synthetic::run(&SimConfig { slowdown: 1.15, ..config.clone() }, suite, repetitions, 1);
    for (i, case) in results.cases.iter_mut().enumerate() {
        if i % 50 == 7 {
            *case = slower.cases[i].clone();
        }
    }
    fill_itl(&mut results);
    let baseline = Baseline::from_results(&sim::synthetic::run(&config, suite, repetitions, 2), "bench");
    (results, baseline)
}

fn compare_render(repetitions: u32) {
    let suite = big_suite(100, 128);
    let (results, baseline) = pair(&suite, repetitions);
    let rules = Rules::default();
    let dir = tempfile::tempdir().expect("tempdir");
    let results_path = dir.path().join("results.json");
    let baseline_path = dir.path().join("baseline.toml");
    infergate::results::save(&results, &results_path).expect("save the results");
    std::fs::write(&baseline_path, baseline.to_toml().expect("baseline TOML")).expect("save the baseline");
    let size = |p: &Path| std::fs::metadata(p).map_or(0.0, |m| m.len() as f64 / 1e6);
    println!(
        "\n2. compare and render: {} cases, cold + {repetitions} warm requests of 128 output tokens each, every \
         50th case 15% slower; results {:.1} MB, baseline {:.1} MB",
        results.cases.len(),
        size(&results_path),
        size(&baseline_path)
    );
    let (rp, bp) = (vec![results_path.display().to_string()], baseline_path.display().to_string());
    let input = CompareInput {
        current: std::slice::from_ref(&results),
        results_paths: &rp,
        baseline: &baseline,
        baseline_path: &bp,
        rules: &rules,
        allow_mismatch: false,
        history: None,
    };
    let cmp = compare(&input);
    let terminal = render(&cmp, Format::Terminal, &RenderOptions::default()).expect("terminal render");
    let markdown = render(&cmp, Format::Markdown, &RenderOptions::default()).expect("Markdown render");
    let c = &cmp.counts;
    let rows: usize = cmp.cases.iter().map(|c| c.metrics.len()).sum();
    let cannot_judge =
        cmp.cases.iter().flat_map(|c| &c.metrics).filter(|m| m.status == MetricStatus::CannotJudge).count();
    println!(
        "   verdict {}: {} regressed, {} improved, {} warnings; {rows} metric rows ({cannot_judge} cannot judge); \
         terminal report {} lines, Markdown {:.0} kB",
        cmp.verdict.as_str(),
        c.regressed,
        c.improved,
        c.warnings,
        terminal.lines().count(),
        markdown.len() as f64 / 1e3
    );
    println!(
        "   {:<52} {:>10} {:>10} {:>10}",
        "step (in-process, 15 runs after 3 warm-up)", "median ms", "p10 ms", "p90 ms"
    );
    let show = |name: &str, (m, lo, hi): (f64, f64, f64)| println!("   {name:<52} {m:>10.2} {lo:>10.2} {hi:>10.2}");
    let t_cmp = spread(time_ms(3, 15, || compare(&input)));
    let t_term = spread(time_ms(3, 15, || render(&cmp, Format::Terminal, &RenderOptions::default())));
    let t_md = spread(time_ms(3, 15, || render(&cmp, Format::Markdown, &RenderOptions::default())));
    show("compare", t_cmp);
    show("render, terminal", t_term);
    show("render, Markdown", t_md);
    println!("   {:<52} {:>10.2}   (goal under 50 ms)", "compare + both renders", t_cmp.0 + t_term.0 + t_md.0);
    show(
        "comment body: truncate the Markdown to 65,536",
        spread(time_ms(3, 15, || truncate_markdown(&markdown, 65_536, "_Truncated._"))),
    );
    show("comparison JSON (serialize)", spread(time_ms(3, 15, || serde_json::to_vec_pretty(&cmp))));
    show(
        "accept preview (baseline merge + TOML diff)",
        spread(time_ms(1, 5, || accept_preview(std::slice::from_ref(&results), &baseline, &baseline_path, &rules))),
    );
    show("load the results file", spread(time_ms(1, 5, || infergate::results::load(&results_path))));
    show("load the baseline file", spread(time_ms(1, 5, || infergate::baseline::load(&baseline_path))));
    let comparison = dir.path().join("comparison.json");
    let args: [&std::ffi::OsStr; 7] = [
        "compare".as_ref(),
        "--results".as_ref(),
        rp[0].as_ref(),
        "--baseline".as_ref(),
        bp.as_ref(),
        "--comparison".as_ref(),
        comparison.as_os_str(),
    ];
    let cli = spread(time_ms(1, 5, || run_quietly("infergate compare", &args, dir.path())));
    show("`infergate compare` process (5 runs after 1)", cli);
}

/// Runs the release binary with `args` in `dir`, output discarded; it must
/// exit 0 or 1 (a verdict, not a failure).
fn run_quietly(name: &str, args: &[&std::ffi::OsStr], dir: &Path) {
    let status = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run infergate");
    assert!(status.code().is_some_and(|c| c <= 1), "{name} failed: {status}");
}

// ---------------------------------------------------------------------------
// 3. Start-up

fn start_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut suite = infergate::suite::load("quick").expect("the quick suite");
    suite.select(&CaseFilter::parse("debugging/256").expect("a filter")).expect("a quick case");
    let (results, baseline) = pair(&suite, 10);
    let results_path = dir.path().join("results.json");
    let baseline_path = dir.path().join("baseline.toml");
    infergate::results::save(&results, &results_path).expect("save the results");
    std::fs::write(&baseline_path, baseline.to_toml().expect("baseline TOML")).expect("save the baseline");
    let comparison = dir.path().join("comparison.json");
    println!("\n3. start-up of the release binary (spawned process wall time, 30 runs after 3)");
    println!("   {:<44} {:>10} {:>10} {:>10}", "command", "median ms", "p10 ms", "p90 ms");
    let tiny: Vec<&std::ffi::OsStr> = vec![
        "compare".as_ref(),
        "--results".as_ref(),
        results_path.as_os_str(),
        "--baseline".as_ref(),
        baseline_path.as_os_str(),
        "--comparison".as_ref(),
        comparison.as_os_str(),
    ];
    let commands: [(&str, Vec<&std::ffi::OsStr>); 3] = [
        ("infergate --version", vec!["--version".as_ref()]),
        ("infergate --help", vec!["--help".as_ref()]),
        ("infergate compare (one case)", tiny),
    ];
    for (name, args) in commands {
        let (m, lo, hi) = spread(time_ms(3, 30, || run_quietly(name, &args, dir.path())));
        println!("   {name:<44} {m:>10.2} {lo:>10.2} {hi:>10.2}");
    }
}

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let itl_ms: f64 = std::env::var("INFERGATE_BENCH_ITL_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(20.0);
    let cases = std::env::var("INFERGATE_BENCH_CASES").ok().filter(|c| !c.is_empty());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("tool_overhead: {cores} cores shared by infergate and the simulator; load average {}\n", load_average());
    let only = std::env::var("INFERGATE_BENCH_ONLY").unwrap_or_default();
    let wanted = |section: &str| only.is_empty() || only.split(',').any(|s| s.trim() == section);
    if wanted("suite") {
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
        suite_overhead(&rt, itl_ms, cases.as_deref());
    }
    // 10 repetitions: at the per-case significance of 1,000 cases (Bonferroni)
    // no change can be significant, so every metric is "cannot judge" (the
    // slow path of compare); 20 repetitions: every metric is judged.
    if wanted("compare") {
        compare_render(10);
        compare_render(20);
    }
    if wanted("startup") {
        start_up();
    }
    println!("\nload average at the end: {}", load_average());
}
