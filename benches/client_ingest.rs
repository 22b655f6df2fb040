//! How fast the client ingests SSE chunks, and how true its timing is under load.
//!
//! `cargo bench --bench client_ingest` starts `infergate sim` as a separate
//! process (so only the client's CPU time is counted), then:
//! 1. ingest: the simulator streams as fast as it can (`--itl-ms 0`) to 1, 64
//!    256 and 1024 concurrent streams; reports chunks/s (wall), client CPU
//!    seconds, CPU time per chunk, and chunks per client CPU-second ("per
//!    core": the figure that does not depend on how many cores there are);
//! 2. timing: the simulator paces tokens (`--itl-ms 20`, jitter) to 1, 64,
//!    256 and 1024 streams; every measured inter-chunk gap and TTFT is compared with the
//!    simulator's ground truth (its `--truth-log`), reporting p50/p99/max error.
//!
//! Environment: INFERGATE_BENCH_TOKENS (tokens per stream in 1., default
//! 2000), INFERGATE_BENCH_ONLY (`ingest` or `timing`, default both),
//! INFERGATE_BENCH_RUNS (how many times 2. runs, default 1).
//! Figures depend on the machine; the client and the simulator share its cores.
#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap here is a failed test, not a crash.

use std::io::BufRead as _;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use infergate::client::{Api, Client, ClientConfig, Generation};
use infergate::results::RequestRecord;
use infergate::sim::TruthRecord;

struct SimProcess {
    child: Child,
    url: String,
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_sim(extra: &[&str]) -> SimProcess {
    let mut child = Command::new(env!("CARGO_BIN_EXE_infergate"))
        .args(["sim", "--port", "0", "--concurrency-slowdown", "0"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start infergate sim");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("read address");
    let url = line.trim().strip_prefix("listening on ").expect("listening line").to_string();
    SimProcess { child, url }
}

/// The 1, 5 and 15 minute load averages, as the kernel reports them.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes into the struct we pass.
    unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
        t(u.ru_utime) + t(u.ru_stime)
    }
}

/// Each stream holds a socket in both processes; 1024 streams need more
/// descriptors than the common default soft limit of 1024.
fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max.min(65536);
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

fn client(url: &str) -> Client {
    Client::new(ClientConfig {
        base_url: url.to_string(),
        model: "sim".into(),
        api: Api::Chat,
        api_key: None,
        request_timeout: Duration::from_secs(600),
        idle_timeout: Duration::from_secs(60),
        max_event_bytes: infergate::client::sse::DEFAULT_MAX_EVENT_BYTES,
    })
    .expect("client")
}

/// Runs `streams` concurrent requests of `tokens` tokens; returns the records,
/// the wall time and the client CPU time.
fn run_streams(rt: &tokio::runtime::Runtime, url: &str, streams: usize, tokens: u32) -> (Vec<RequestRecord>, f64, f64) {
    let client = client(url);
    let g =
        Generation { max_tokens: tokens, ignore_eos: true, min_tokens: false, continuous_usage: false, stream: true };
    rt.block_on(async {
        let cpu0 = cpu_seconds();
        let t0 = Instant::now();
        let mut set = tokio::task::JoinSet::new();
        for i in 0..streams {
            let client = client.clone();
            // A distinct prompt per stream: nothing is shared between them.
            let req = Arc::new(client.prepare(&format!("stream {i}: write a long answer"), g));
            set.spawn(async move { client.measure(&req, t0).await });
        }
        let mut records = Vec::new();
        while let Some(r) = set.join_next().await {
            records.push(r.expect("task"));
        }
        (records, t0.elapsed().as_secs_f64(), cpu_seconds() - cpu0)
    })
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    infergate::stats::quantile_sorted(sorted, q)
}

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    let tokens: u32 = std::env::var("INFERGATE_BENCH_TOKENS").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    raise_fd_limit();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("client_ingest: {cores} cores shared by client and simulator; {tokens} tokens per stream\n");

    let only = std::env::var("INFERGATE_BENCH_ONLY").unwrap_or_default();
    let wanted = |section: &str| only.is_empty() || only.split(',').any(|s| s.trim() == section);
    if wanted("ingest") {
        ingest(&rt, tokens);
    }
    if wanted("timing") {
        let runs: usize = std::env::var("INFERGATE_BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
        for run in 1..=runs.max(1) {
            timing(&rt, run, runs);
        }
    }
}

fn ingest(rt: &tokio::runtime::Runtime, tokens: u32) {
    println!("1. ingest, simulator streaming without pauses");
    println!(
        "{:>8} {:>10} {:>12} {:>10} {:>14} {:>16}",
        "streams", "chunks", "chunks/s", "client CPU", "CPU us/chunk", "chunks/CPU-s"
    );
    let sim = start_sim(&["--itl-ms", "0"]);
    for streams in [1usize, 64, 256, 1024] {
        let per_stream = if streams == 1 { tokens * 10 } else { tokens };
        let (records, wall, cpu) = run_streams(rt, &sim.url, streams, per_stream);
        let failed = records.iter().filter(|r| !r.ok).count();
        let chunks: usize = records.iter().filter(|r| r.ok).map(|r| r.itl_ms.len() + 1).sum();
        println!(
            "{streams:>8} {chunks:>10} {:>12.0} {:>8.2} s {:>14.2} {:>16.0}{}",
            chunks as f64 / wall,
            cpu,
            cpu * 1e6 / chunks as f64,
            chunks as f64 / cpu,
            if failed > 0 { format!("  ({failed} failed)") } else { String::new() }
        );
    }
    drop(sim);
}

fn timing(rt: &tokio::runtime::Runtime, run: usize, runs: usize) {
    let of = if runs > 1 { format!(", run {run} of {runs}") } else { String::new() };
    println!(
        "\n2. timing error against ground truth, simulator pacing 20 ms/token (±20%){of}; load average {}",
        load_average()
    );
    println!(
        "{:>8} {:>8} {:>12} {:>12} {:>12} {:>14} {:>14}",
        "streams", "gaps", "ITL err p50", "ITL err p99", "ITL err max", "TTFT diff p50", "TTFT diff p99"
    );
    for streams in [1usize, 64, 256, 1024] {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("truth.jsonl");
        let sim =
            start_sim(&["--itl-ms", "20", "--itl-jitter", "0.2", "--truth-log", log.to_str().expect("utf-8 path")]);
        let (records, _, _) = run_streams(rt, &sim.url, streams, 100);
        drop(sim);
        let truth: Vec<TruthRecord> = std::fs::read_to_string(&log)
            .expect("truth log")
            .lines()
            .map(|l| serde_json::from_str(l).expect("truth record"))
            .collect();
        let mut itl_err = Vec::new();
        let mut ttft_diff = Vec::new();
        for r in records.iter().filter(|r| r.ok) {
            let Some(t) = truth.iter().find(|t| Some(&t.id) == r.response_id.as_ref()) else { continue };
            for (m, w) in r.itl_ms.iter().zip(t.emit_ms.windows(2)) {
                itl_err.push((m - (w[1] - w[0])).abs());
            }
            if let Some(ttft) = r.ttft_ms {
                ttft_diff.push(ttft - t.ttft_ms);
            }
        }
        itl_err.sort_by(f64::total_cmp);
        ttft_diff.sort_by(f64::total_cmp);
        if itl_err.is_empty() || ttft_diff.is_empty() {
            println!("{streams:>8} no successful requests");
            continue;
        }
        println!(
            "{streams:>8} {:>8} {:>9.3} ms {:>9.3} ms {:>9.3} ms {:>11.3} ms {:>11.3} ms",
            itl_err.len(),
            percentile(&itl_err, 0.5),
            percentile(&itl_err, 0.99),
            itl_err[itl_err.len() - 1],
            percentile(&ttft_diff, 0.5),
            percentile(&ttft_diff, 0.99),
        );
    }
}
