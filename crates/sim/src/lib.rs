//! The built-in simulated OpenAI-compatible server.
//!
//! `infergate sim` (and the test suite) needs an inference server whose
//! performance is known exactly: a real HTTP server speaking vLLM's
//! OpenAI-compatible formats, whose timings follow a seeded model
//! ([`model`]) and which records, for every request, what it actually did
//! ([`TruthRecord`]). The client's measurements can then be checked against
//! the ground truth, and a regression can be injected on purpose
//! ([`SimConfig::slowdown`]), and so can every way a server misbehaves
//! ([`fault`], [`SimConfig::faults`]).

pub mod fault;
pub mod model;
pub mod montecarlo;
mod server;
pub mod synthetic;
pub mod tokenizer;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use server::Shared;

/// How long `serve_until_signal` lets in-flight requests finish after a signal.
const SIGNAL_GRACE: Duration = Duration::from_secs(5);

/// An open file that receives the truth records, one JSON line each. The
/// caller opens it (for appending, refusing what is not a regular file), so
/// the simulator itself never picks a path.
#[derive(Debug, Clone)]
pub struct TruthLog(pub(crate) Arc<std::sync::Mutex<std::fs::File>>);

impl TruthLog {
    /// Writes truth records to `file`.
    pub fn new(file: std::fs::File) -> TruthLog {
        TruthLog(Arc::new(std::sync::Mutex::new(file)))
    }
}

/// The simulated server's performance model and identity.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Model name served; requests naming another model get a 404.
    pub model: String,
    /// Seed of the per-request timing jitter.
    pub seed: u64,
    /// Fixed part of the time to first token, in ms.
    pub ttft_base_ms: f64,
    /// Uncached prompt tokens processed per second.
    pub prefill_tokens_per_s: f64,
    /// Cost of a cached prompt token as a fraction of an uncached one.
    pub cached_prefill_factor: f64,
    /// Added to the time to first token when no prefix block was cached, in ms.
    pub cold_penalty_ms: f64,
    /// Mean time per output token, in ms; 0 streams as fast as possible.
    pub itl_ms: f64,
    /// Each token interval is multiplied by `1 + itl_jitter * (2u - 1)`, `u` uniform in [0, 1).
    pub itl_jitter: f64,
    /// Each token interval is multiplied by `1 + concurrency_slowdown * (active_streams - 1)`.
    pub concurrency_slowdown: f64,
    /// Per-request variation: every time of a request is multiplied by a
    /// factor with mean about 1 and this standard deviation (0 = none).
    pub request_cv: f64,
    /// The shape of that factor: uniform (bounded) or lognormal (a heavy right tail).
    pub request_noise: model::RequestNoise,
    /// Autocorrelation of consecutive requests' factors (lag-1, 0 to 0.95):
    /// a slow request tends to be followed by a slow one. Lognormal noise only.
    pub autocorrelation: f64,
    /// Share of requests that are outliers (0 to 0.5), slowed by a factor
    /// drawn uniformly from 1 to `outlier_factor`.
    pub outlier_rate: f64,
    /// Largest outlier slowdown.
    pub outlier_factor: f64,
    /// Warm-up after launch: request number `i` (counted from launch) is
    /// slower by `warmup_slowdown * exp(-i / warmup_requests)`.
    pub warmup_slowdown: f64,
    /// Requests over which the warm-up slowdown decays (its e-folding count).
    pub warmup_requests: f64,
    /// Run-to-run drift: every time of this launch is multiplied by one
    /// factor drawn from the seed, with mean 1 and this standard deviation
    /// (clocks, thermals, a restarted server). 0 = none.
    pub run_drift: f64,
    /// The shape of the run factor: normal, or heavy-tailed (Student-t, 3 df).
    pub run_drift_tail: model::DriftTail,
    /// Output tokens carried by each content chunk; a chunk goes out when its last token is due.
    pub tokens_per_chunk: u32,
    /// Multiplies every time (TTFT, token interval, penalty): injects a regression.
    pub slowdown: f64,
    /// Shortest natural answer (tokens) when end-of-sequence is not ignored.
    pub natural_len_min: u32,
    /// Longest natural answer (tokens) when end-of-sequence is not ignored.
    pub natural_len_max: u32,
    /// Largest prompt + max_tokens accepted; beyond it a request gets a 400.
    pub max_model_len: u32,
    /// JSONL file that receives one [`TruthRecord`] per finished request
    /// (opened by the caller, for appending).
    pub truth_log: Option<TruthLog>,
    /// Misbehaviours injected into streamed generation requests (`--fault`).
    pub faults: Vec<fault::Fault>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            model: "sim".to_owned(),
            seed: 42,
            ttft_base_ms: 5.0,
            prefill_tokens_per_s: 1_000_000.0,
            cached_prefill_factor: 0.02,
            cold_penalty_ms: 20.0,
            itl_ms: 2.0,
            itl_jitter: 0.1,
            concurrency_slowdown: 0.02,
            request_cv: 0.0,
            request_noise: model::RequestNoise::Uniform,
            autocorrelation: 0.0,
            outlier_rate: 0.0,
            outlier_factor: 3.0,
            warmup_slowdown: 0.0,
            warmup_requests: 5.0,
            run_drift: 0.0,
            run_drift_tail: model::DriftTail::Normal,
            tokens_per_chunk: 1,
            slowdown: 1.0,
            natural_len_min: 16,
            natural_len_max: 64,
            max_model_len: 131_072,
            truth_log: None,
            faults: Vec::new(),
        }
    }
}

/// A [`SimConfig`] value that the performance model cannot use.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// A numeric setting is outside its range.
    #[error("simulator setting `{field}` must be {expected}, got {value}")]
    OutOfRange {
        /// The `SimConfig` field at fault.
        field: &'static str,
        /// The accepted range, in words.
        expected: &'static str,
        /// The value given.
        value: String,
    },
}

impl SimConfig {
    /// Checks that every setting is usable (finite, in range, min <= max).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let out = |field, expected, value: String| Err(ConfigError::OutOfRange { field, expected, value });
        let show = infergate_core::limits::show;
        let non_negative = [
            ("ttft_base_ms", self.ttft_base_ms),
            ("cached_prefill_factor", self.cached_prefill_factor),
            ("cold_penalty_ms", self.cold_penalty_ms),
            ("itl_ms", self.itl_ms),
            ("concurrency_slowdown", self.concurrency_slowdown),
            ("slowdown", self.slowdown),
        ];
        for (field, v) in non_negative {
            if !(v.is_finite() && v >= 0.0) {
                return out(field, "a finite number >= 0", show(v));
            }
        }
        let p = self.prefill_tokens_per_s;
        if !(p.is_finite() && p > 0.0) {
            return out("prefill_tokens_per_s", "a finite number > 0", show(p));
        }
        let r = self.request_cv;
        if !(0.0..=0.5).contains(&r) {
            return out("request_cv", "between 0 and 0.5", show(r));
        }
        let ranges = [
            ("run_drift", self.run_drift, 0.0, 0.5, "between 0 and 0.5"),
            ("autocorrelation", self.autocorrelation, 0.0, 0.95, "between 0 and 0.95"),
            ("outlier_rate", self.outlier_rate, 0.0, 0.5, "between 0 and 0.5"),
            ("outlier_factor", self.outlier_factor, 1.0, 100.0, "between 1 and 100"),
            ("warmup_slowdown", self.warmup_slowdown, 0.0, 10.0, "between 0 and 10"),
            ("warmup_requests", self.warmup_requests, 0.001, 1e9, "a number > 0"),
        ];
        for (field, v, lo, hi, expected) in ranges {
            if !(lo..=hi).contains(&v) {
                return out(field, expected, show(v));
            }
        }
        let j = self.itl_jitter;
        if !(0.0..=1.0).contains(&j) {
            return out("itl_jitter", "between 0 and 1", show(j));
        }
        if self.tokens_per_chunk == 0 {
            return out("tokens_per_chunk", "at least 1", "0".to_owned());
        }
        if self.natural_len_min == 0 {
            return out("natural_len_min", "at least 1", "0".to_owned());
        }
        if self.natural_len_max < self.natural_len_min {
            return out("natural_len_max", "at least natural_len_min", self.natural_len_max.to_string());
        }
        if self.max_model_len < 2 {
            return out("max_model_len", "at least 2", self.max_model_len.to_string());
        }
        Ok(())
    }
}

/// Ground truth of one finished (or abandoned) generation request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TruthRecord {
    /// The response id: the `id` of every chunk and the `x-request-id` header, e.g. `chatcmpl-sim-17`.
    pub id: String,
    /// `"chat"` or `"completions"`.
    pub endpoint: String,
    /// Whether the response was streamed (SSE).
    pub stream: bool,
    /// Prompt tokens, as reported in `usage.prompt_tokens`.
    pub prompt_tokens: u32,
    /// Prompt tokens found in the prefix cache (whole 64-token blocks).
    pub cached_tokens: u32,
    /// Output tokens actually emitted (fewer than planned if the client went away).
    pub output_tokens: u32,
    /// Planned finish reason: `"length"` or `"stop"`.
    pub finish_reason: String,
    /// Time to first token the model planned, in ms.
    pub planned_ttft_ms: f64,
    /// Actual ms from request receipt to emission of the first choice-bearing event (0 if none was emitted).
    pub ttft_ms: f64,
    /// Actual ms from request receipt to emission of the last choice-bearing event (0 if none was emitted).
    pub e2e_ms: f64,
    /// Actual emission offset (ms from receipt) of every choice-bearing event, in order.
    pub emit_ms: Vec<f64>,
    /// Output tokens carried by each choice-bearing event (0 for role-only and finish-only events).
    pub chunk_tokens: Vec<u32>,
    /// False if the client went away before the end.
    pub completed: bool,
}

/// A running simulated server; stops when [`SimServer::shutdown`] is called or it is dropped.
#[derive(Debug)]
pub struct SimServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

/// Binds `bind` (port 0 picks a free port), spawns the server task and returns at once.
pub async fn start(config: SimConfig, bind: SocketAddr) -> anyhow::Result<SimServer> {
    spawn(config, bind, true).await
}

async fn spawn(config: SimConfig, bind: SocketAddr, keep_truth: bool) -> anyhow::Result<SimServer> {
    config.validate()?;
    let shared = Arc::new(Shared::new(config, keep_truth)?);
    let listener =
        listen(bind).with_context(|| format!("cannot bind the simulator to {bind}; pick another address or port"))?;
    let addr = listener.local_addr().context("reading the simulator's bound address")?;
    let (stop, stopped) = oneshot::channel::<()>();
    let app = server::router(Arc::clone(&shared));
    let task = tokio::spawn(async move {
        let listener = server::SimListener(listener);
        // The connection info lets a fault close or reset a connection.
        axum::serve(listener, app.into_make_service_with_connect_info::<server::Conn>())
            .with_graceful_shutdown(async move {
                // A dropped sender stops the server too.
                let _ = stopped.await;
            })
            .await
    });
    Ok(SimServer { addr, shared, stop: Some(stop), task })
}

/// A listening socket with room for 4,096 pending connections (tokio's
/// default is 1,024): a benchmark opening 1,024 streams at once overflowed
/// the queue, and every dropped connection attempt came back after the
/// kernel's one-second SYN retry, a TTFT the server never caused. The
/// kernel caps the queue at `net.core.somaxconn`.
fn listen(bind: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if bind.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    // As tokio's own bind: a restarted simulator can take its port again at once.
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(bind)?;
    socket.listen(4096)
}

impl SimServer {
    /// The address the server is bound to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL clients should use, e.g. `http://127.0.0.1:PORT` (a wildcard bind is reported as loopback).
    pub fn base_url(&self) -> String {
        let ip = match self.addr.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        format!("http://{}", SocketAddr::new(ip, self.addr.port()))
    }

    /// How many requests an injected fault has hit so far.
    pub fn faults_injected(&self) -> u64 {
        self.shared.faults_injected()
    }

    /// Snapshot of the ground truth of finished requests, in finish order.
    pub fn truth(&self) -> Vec<TruthRecord> {
        self.shared.truth_snapshot()
    }

    /// Stops accepting connections and waits for in-flight requests to
    /// finish, at most [`SIGNAL_GRACE`]: a stream a fault holds open (or an
    /// endless one) must not keep the caller waiting.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match tokio::time::timeout(SIGNAL_GRACE, &mut self.task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::warn!("simulator stopped with an error: {e}"),
            Ok(Err(e)) => tracing::warn!("simulator task failed: {e}"),
            Err(_) => {
                tracing::warn!("in-flight requests still running after {SIGNAL_GRACE:?}; stopping anyway");
                self.task.abort();
            }
        }
    }
}

/// Serves until Ctrl-C or SIGTERM, for `infergate sim`.
///
/// The first line on stdout is exactly `listening on http://HOST:PORT`
/// (the [`SimServer::base_url`]: a wildcard bind is shown as loopback),
/// flushed, so a parent process can read the port. Ground truth goes only to
/// [`SimConfig::truth_log`] (it is not kept in memory).
pub async fn serve_until_signal(config: SimConfig, bind: SocketAddr) -> anyhow::Result<()> {
    use std::io::Write as _;

    let mut server = spawn(config, bind, false).await?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {}", server.base_url()).context("writing to stdout")?;
        out.flush().context("flushing stdout")?;
    }
    wait_for_signal().await;
    if let Some(stop) = server.stop.take() {
        let _ = stop.send(());
    }
    match tokio::time::timeout(SIGNAL_GRACE, &mut server.task).await {
        Ok(Ok(result)) => result.context("simulator server failed"),
        Ok(Err(e)) => Err(anyhow::anyhow!("simulator task failed: {e}")),
        Err(_) => {
            tracing::warn!("in-flight requests still running after {SIGNAL_GRACE:?}; stopping anyway");
            server.task.abort();
            Ok(())
        }
    }
}

async fn wait_for_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid() {
        assert_eq!(SimConfig::default().validate(), Ok(()));
    }

    #[test]
    fn invalid_config_names_the_field() {
        let c = SimConfig { natural_len_min: 10, natural_len_max: 5, ..SimConfig::default() };
        let err = c.validate().unwrap_err();
        assert_eq!(err.to_string(), "simulator setting `natural_len_max` must be at least natural_len_min, got 5");
        let c = SimConfig { prefill_tokens_per_s: 0.0, ..SimConfig::default() };
        assert!(matches!(c.validate(), Err(ConfigError::OutOfRange { field: "prefill_tokens_per_s", .. })));
        let c = SimConfig { itl_jitter: f64::NAN, ..SimConfig::default() };
        assert!(c.validate().is_err());
    }

    #[test]
    fn truth_record_round_trips() {
        let r = TruthRecord {
            id: "chatcmpl-sim-1".into(),
            endpoint: "chat".into(),
            stream: true,
            prompt_tokens: 10,
            cached_tokens: 0,
            output_tokens: 2,
            finish_reason: "stop".into(),
            planned_ttft_ms: 1.5,
            ttft_ms: 1.6,
            e2e_ms: 3.0,
            emit_ms: vec![1.6, 1.6, 3.0, 3.0],
            chunk_tokens: vec![0, 1, 1, 0],
            completed: true,
        };
        let line = serde_json::to_string(&r).unwrap();
        let back: TruthRecord = serde_json::from_str(&line).unwrap();
        assert_eq!(back, r);
    }
}
