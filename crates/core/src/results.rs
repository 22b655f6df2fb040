//! The results file: schema `infergate.results.v1`.
//!
//! Everything a run measured, written as JSON atomically. Later stages (gate,
//! report, merge) read only this file, so it carries every per-request record,
//! the per-phase summaries computed from them, the prompt fingerprints that
//! decide whether two runs are comparable, and the environment they ran in.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::stats::{self, Summary};

/// Schema identifier written into every results file.
pub const SCHEMA: &str = "infergate.results.v1";

/// The largest results file read (2 GiB): every inter-token gap of every
/// request is in it, so a long suite writes hundreds of megabytes; loading
/// one takes about twice its size in memory.
pub const MAX_FILE_BYTES: u64 = 2 << 30;

/// A whole run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Results {
    /// Always [`SCHEMA`]; readers refuse anything else.
    pub schema: String,
    /// Random identifier of this run (also salts the cold prompts).
    pub run_id: String,
    /// False when the run was interrupted or stopped early: never gate on it.
    pub complete: bool,
    /// Wall-clock start, RFC 3339 UTC.
    pub started_at: String,
    /// Wall-clock end, RFC 3339 UTC.
    pub finished_at: String,
    /// Where and with what the run happened.
    pub environment: Environment,
    /// The suite that was run.
    pub suite: SuiteInfo,
    /// The effective run settings after config, suite and flags were merged.
    pub settings: Settings,
    /// One entry per case, in run order.
    pub cases: Vec<CaseResult>,
    /// Things the reader must know to interpret the numbers (missing usage,
    /// unsupported endpoints, ...). Empty when there is nothing to say.
    pub warnings: Vec<String>,
}

/// The environment of a run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    /// infergate's version.
    pub tool_version: String,
    /// Git commit of the working directory, when it is a repository.
    pub git_commit: Option<String>,
    /// Whether that working tree had uncommitted changes.
    pub git_dirty: Option<bool>,
    /// Operating system and architecture, e.g. `linux x86_64`.
    pub os: String,
    /// Kernel release, where readable.
    pub kernel: Option<String>,
    /// Logical CPUs of the client machine.
    pub cpus: usize,
    /// The server that was measured.
    pub server: ServerInfo,
    /// GPU telemetry: status, driver, devices and their fingerprints.
    #[serde(default)]
    pub gpu: crate::telemetry::GpuInfo,
}

/// What is known about the server.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerInfo {
    /// Host and port of the base URL (no credentials, no path).
    pub host: String,
    /// Model name sent in every request.
    pub model: String,
    /// `chat` or `completions`.
    pub api: String,
    /// Version string the server reported (`GET /version`), when it has one.
    pub reported_version: Option<String>,
    /// `owned_by` of the model in `GET /v1/models`, a hint at the engine.
    pub owned_by: Option<String>,
    /// Context length the server reported for the model, when it did.
    pub max_model_len: Option<u64>,
    /// How prompts were sized: `tokenize` (the server's `/tokenize`) or
    /// `usage` (calibrated from `usage.prompt_tokens` of probe requests).
    pub prompt_sizing: String,
    /// The prefix-cache reset endpoint used before cold requests, if any.
    pub cache_reset: Option<String>,
    /// The server infergate started itself, with its time to ready.
    #[serde(default)]
    pub launched: Option<LaunchInfo>,
    /// What the capability probe found.
    #[serde(default)]
    pub capabilities: Option<crate::capabilities::Capabilities>,
}

/// What the results record about a server infergate launched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaunchInfo {
    /// The command line.
    pub command: String,
    /// Seconds from start to ready (`/health` answers and the model is listed).
    pub time_to_ready_s: f64,
    /// The server's log file.
    pub log: String,
}

/// The suite that was run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuiteInfo {
    /// Suite name (`coder`, `quick` or the custom suite's name).
    pub name: String,
    /// `builtin` or the path of the suite file.
    pub source: String,
    /// Seed of prompt synthesis.
    pub seed: u64,
    /// sha256 over every case's prompt template fingerprint, in order.
    pub fingerprint: String,
}

/// Effective settings of the run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Whether `ignore_eos` was sent to hold the output length.
    pub ignore_eos: bool,
    /// Whether `min_tokens` was sent to hold the output length.
    pub min_tokens: bool,
    /// Per-request timeout in seconds.
    pub request_timeout_s: f64,
    /// Idle timeout in seconds (no bytes for that long ends a request).
    pub idle_timeout_s: f64,
    /// `--cases` filter, when one was given: its text, parsed on reading.
    pub cases_filter: Option<crate::filter::CaseFilter>,
    /// Retries allowed per request (connect errors, 429 with `Retry-After`).
    #[serde(default)]
    pub retries: u32,
    /// Limit of the whole run in seconds, when one was set.
    #[serde(default)]
    pub deadline_s: Option<f64>,
    /// Seconds in-flight requests were given to finish after an interruption.
    #[serde(default)]
    pub grace_s: Option<f64>,
}

/// One case: a scenario at one context length.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseResult {
    /// `scenario/context`, e.g. `code-review/12800`.
    pub id: String,
    /// Scenario name.
    pub scenario: String,
    /// Target prompt length in tokens.
    pub context_tokens: u32,
    /// Output tokens asked for (`max_tokens`).
    pub output_tokens: u32,
    /// Warm-phase repetitions.
    pub repetitions: u32,
    /// Unrecorded requests sent between the cold and the warm phase.
    pub warmup: u32,
    /// Warm-phase concurrency.
    pub concurrency: u32,
    /// Warm-phase Poisson request rate (requests/s), when one was asked for.
    pub request_rate: Option<f64>,
    /// The prompt that was sent.
    pub prompt: PromptInfo,
    /// `cold` ("initial loading") and `warm` ("continuous response").
    pub phases: BTreeMap<PhaseName, PhaseResult>,
}

/// Facts about a case's prompt.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptInfo {
    /// sha256 of the synthesis inputs (generator version, seed, scenario,
    /// instruction, target tokens): equal templates mean comparable cases.
    pub template_fingerprint: String,
    /// sha256 of the exact prompt text sent in the warm phase (the same in every run).
    pub text_fingerprint: String,
    /// Prompt tokens the sizing achieved (as the server counts them).
    pub tokens: u32,
    /// Characters of prompt text.
    pub chars: usize,
}

/// Phase names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PhaseName {
    /// The first request of a case with nothing warm ("initial loading").
    Cold,
    /// Back-to-back repetitions after warm-up ("continuous response").
    Warm,
}

impl PhaseName {
    /// The lowercase name used in files and output.
    pub fn as_str(self) -> &'static str {
        match self {
            PhaseName::Cold => "cold",
            PhaseName::Warm => "warm",
        }
    }
}

/// One phase of a case.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseResult {
    /// Statistics over the phase's requests.
    pub summary: PhaseSummary,
    /// What the GPUs did during the phase (absent without telemetry).
    #[serde(default)]
    pub gpu: Option<crate::telemetry::GpuPhase>,
    /// The server's own metrics during the phase (absent without `/metrics`).
    #[serde(default)]
    pub server_metrics: Option<crate::telemetry::prometheus::ServerPhase>,
    /// Every request, in start order.
    pub requests: Vec<RequestRecord>,
}

/// Why a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Could not connect (refused, reset before a response, DNS).
    Connect,
    /// The server answered with a non-success HTTP status.
    HttpStatus,
    /// The whole request took longer than the request timeout.
    Timeout,
    /// No bytes arrived for longer than the idle timeout.
    IdleTimeout,
    /// The stream ended or broke before the response was complete.
    StreamCut,
    /// An event could not be parsed, or broke a size limit.
    MalformedEvent,
    /// The server sent an error object inside the stream.
    ServerError,
    /// The response was not an event stream, or broke the request's terms
    /// (no usage where the server streams it, more tokens than asked for).
    BadResponse,
    /// The run stopped (interruption, deadline) before the request finished:
    /// not the server's fault, and not counted as an error.
    Cancelled,
}

impl ErrorClass {
    /// The snake_case name used in files and output.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Connect => "connect",
            ErrorClass::HttpStatus => "http_status",
            ErrorClass::Timeout => "timeout",
            ErrorClass::IdleTimeout => "idle_timeout",
            ErrorClass::StreamCut => "stream_cut",
            ErrorClass::MalformedEvent => "malformed_event",
            ErrorClass::ServerError => "server_error",
            ErrorClass::BadResponse => "bad_response",
            ErrorClass::Cancelled => "cancelled",
        }
    }
}

/// A failed request's error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestError {
    /// The class, for counting and gating.
    pub class: ErrorClass,
    /// HTTP status, for `http_status`.
    pub status: Option<u16>,
    /// Human-readable detail (a short excerpt of the body for HTTP errors).
    pub message: String,
}

/// Where a request's output token count came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenSource {
    /// `usage.completion_tokens` reported by the server.
    Usage,
    /// The server sent no usage: the number of content-bearing chunks, which
    /// undercounts when a server batches several tokens into one chunk.
    ChunkCount,
}

/// One request, measured as vLLM's `bench serve` defines it. Times are
/// milliseconds on a monotonic clock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestRecord {
    /// Position within the phase, in start order.
    pub index: u32,
    /// Start stamp relative to the phase start (taken just before sending).
    pub start_ms: f64,
    /// Whether the request completed and counts in the statistics.
    pub ok: bool,
    /// What went wrong, when `ok` is false.
    pub error: Option<RequestError>,
    /// Time to the first SSE message whose `choices` is non-empty.
    pub ttft_ms: Option<f64>,
    /// Start to the last choice-bearing message (`total_time`).
    pub e2e_ms: Option<f64>,
    /// (E2E - TTFT) / (output_tokens - 1), when output_tokens > 1.
    pub tpot_ms: Option<f64>,
    /// Gaps between successive choice-bearing messages.
    pub itl_ms: Vec<f64>,
    /// Tokens carried by each choice-bearing message, when the server reported
    /// per-chunk usage (`continuous_usage_stats`); absent otherwise.
    pub chunk_tokens: Option<Vec<u32>>,
    /// Prompt tokens from `usage`.
    pub prompt_tokens: Option<u32>,
    /// Output tokens (see `output_tokens_source`).
    pub output_tokens: Option<u32>,
    /// Where `output_tokens` came from.
    pub output_tokens_source: TokenSource,
    /// The `finish_reason` of the last choice (`length`, `stop`, ...).
    pub finish_reason: Option<String>,
    /// Whether the stream ended with `data: [DONE]`.
    pub done_received: bool,
    /// output_tokens / E2E, in tokens per second (the user's report's figure).
    pub tokens_per_second: Option<f64>,
    /// (output_tokens - 1) / (E2E - TTFT): decode speed without the prefill.
    pub decode_tokens_per_second: Option<f64>,
    /// The response `id` the server gave, to find the request in its logs.
    pub response_id: Option<String>,
    /// sha256 of the generated text.
    pub output_sha256: Option<String>,
    /// The generated text, kept for the first successful request of a phase only.
    pub output_text: Option<String>,
    /// Times the request was sent: 1, plus one per retry.
    #[serde(default = "one")]
    pub attempts: u32,
    /// The failed attempts that were retried, in order; the measurement is
    /// the last attempt's.
    #[serde(default)]
    pub retries: Vec<RetriedAttempt>,
}

fn one() -> u32 {
    1
}

/// A failed attempt that was sent again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetriedAttempt {
    /// Why it failed: `connect` or `http_status` (429).
    pub class: ErrorClass,
    /// HTTP status, for `http_status`.
    pub status: Option<u16>,
    /// Human-readable detail.
    pub message: String,
    /// How long infergate waited before the next attempt (ms).
    pub wait_ms: f64,
}

impl RequestRecord {
    /// A request the run stopped before it finished (class `cancelled`).
    pub fn cancelled(index: u32, start_ms: f64, why: &str) -> RequestRecord {
        RequestRecord {
            index,
            start_ms,
            ok: false,
            error: Some(RequestError { class: ErrorClass::Cancelled, status: None, message: why.to_string() }),
            ttft_ms: None,
            e2e_ms: None,
            tpot_ms: None,
            itl_ms: Vec::new(),
            chunk_tokens: None,
            prompt_tokens: None,
            output_tokens: None,
            output_tokens_source: TokenSource::ChunkCount,
            finish_reason: None,
            done_received: false,
            tokens_per_second: None,
            decode_tokens_per_second: None,
            response_id: None,
            output_sha256: None,
            output_text: None,
            attempts: 1,
            retries: Vec::new(),
        }
    }

    /// Whether the run cancelled it (see [`ErrorClass::Cancelled`]).
    pub fn is_cancelled(&self) -> bool {
        self.error.as_ref().is_some_and(|e| e.class == ErrorClass::Cancelled)
    }
}

/// Statistics of a phase.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseSummary {
    /// Requests sent.
    pub requests: u32,
    /// Requests that completed.
    pub completed: u32,
    /// Requests that failed (cancelled ones are not failures).
    pub errors: u32,
    /// errors / (requests - cancelled).
    pub error_rate: f64,
    /// Failed requests per error class.
    pub errors_by_class: BTreeMap<String, u32>,
    /// Requests the run cancelled when it stopped early.
    #[serde(default)]
    pub cancelled: u32,
    /// Requests that needed more than one attempt.
    #[serde(default)]
    pub retried: u32,
    /// Completed requests whose stream ended without `data: [DONE]`.
    #[serde(default)]
    pub done_missing: u32,
    /// Completed requests whose server sent no `usage`.
    pub usage_missing: u32,
    /// Completed requests whose output was shorter than asked.
    pub short_outputs: u32,
    /// First start to last end, in seconds.
    pub duration_s: f64,
    /// Completed requests per second over `duration_s`.
    pub request_throughput: f64,
    /// Output tokens of completed requests per second over `duration_s`.
    pub output_throughput: f64,
    /// Total output tokens of completed requests.
    pub total_output_tokens: u64,
    /// Total prompt tokens of completed requests (as reported by usage).
    pub total_input_tokens: u64,
    /// Time to first token (ms).
    pub ttft_ms: Option<Summary>,
    /// Time per output token (ms).
    pub tpot_ms: Option<Summary>,
    /// Inter-token (inter-chunk) latency over all gaps of all requests (ms).
    pub itl_ms: Option<Summary>,
    /// End-to-end latency, `total_time` (ms).
    pub e2e_ms: Option<Summary>,
    /// Output tokens / E2E per request.
    pub tokens_per_second: Option<Summary>,
    /// Decode tokens per second per request.
    pub decode_tokens_per_second: Option<Summary>,
    /// Output tokens per request.
    pub output_tokens: Option<Summary>,
    /// Prompt tokens per request.
    pub prompt_tokens: Option<Summary>,
}

/// The request counts of a phase, as its summary states them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordCounts {
    /// Requests sent.
    pub requests: u32,
    /// Requests that completed.
    pub completed: u32,
    /// Requests that failed (cancelled ones not counted).
    pub errors: u32,
    /// Requests cancelled by a stop.
    pub cancelled: u32,
    /// Completed requests with fewer output tokens than `asked_tokens`.
    pub short_outputs: u32,
}

impl RecordCounts {
    /// The counts of `records`; `asked_tokens` is the output length requested.
    pub fn of(records: &[RequestRecord], asked_tokens: u32) -> Self {
        let requests = records.len() as u32;
        let completed = records.iter().filter(|r| r.ok).count() as u32;
        let cancelled = records.iter().filter(|r| r.is_cancelled()).count() as u32;
        let short_outputs =
            records.iter().filter(|r| r.ok && r.output_tokens.is_some_and(|t| t < asked_tokens)).count() as u32;
        RecordCounts { requests, completed, errors: requests - completed - cancelled, cancelled, short_outputs }
    }
}

impl PhaseSummary {
    /// The request counts this summary states.
    pub fn counts(&self) -> RecordCounts {
        RecordCounts {
            requests: self.requests,
            completed: self.completed,
            errors: self.errors,
            cancelled: self.cancelled,
            short_outputs: self.short_outputs,
        }
    }

    /// Computes the summary of `records`, which started over `duration_s`
    /// seconds; `asked_tokens` is the output length requested.
    pub fn from_records(records: &[RequestRecord], duration_s: f64, asked_tokens: u32) -> Self {
        let ok: Vec<&RequestRecord> = records.iter().filter(|r| r.ok).collect();
        let collect =
            |f: &dyn Fn(&RequestRecord) -> Option<f64>| -> Vec<f64> { ok.iter().filter_map(|r| f(r)).collect() };
        let mut errors_by_class = BTreeMap::new();
        for r in records.iter().filter(|r| !r.ok && !r.is_cancelled()) {
            let class = r.error.as_ref().map_or("unknown", |e| e.class.as_str());
            *errors_by_class.entry(class.to_string()).or_insert(0) += 1;
        }
        let RecordCounts { requests, completed, errors, cancelled, short_outputs } =
            RecordCounts::of(records, asked_tokens);
        let judged = requests - cancelled;
        let total_output_tokens: u64 = ok.iter().filter_map(|r| r.output_tokens).map(u64::from).sum();
        let total_input_tokens: u64 = ok.iter().filter_map(|r| r.prompt_tokens).map(u64::from).sum();
        let itl: Vec<f64> = ok.iter().flat_map(|r| r.itl_ms.iter().copied()).collect();
        let per_second = |x: f64| if duration_s > 0.0 { x / duration_s } else { 0.0 };
        Self {
            requests,
            completed,
            errors,
            error_rate: if judged > 0 { f64::from(errors) / f64::from(judged) } else { 0.0 },
            errors_by_class,
            cancelled,
            retried: records.iter().filter(|r| r.attempts > 1).count() as u32,
            done_missing: ok.iter().filter(|r| !r.done_received).count() as u32,
            usage_missing: ok.iter().filter(|r| r.output_tokens_source != TokenSource::Usage).count() as u32,
            short_outputs,
            duration_s,
            request_throughput: per_second(f64::from(completed)),
            output_throughput: per_second(total_output_tokens as f64),
            total_output_tokens,
            total_input_tokens,
            ttft_ms: stats::summarize(&collect(&|r| r.ttft_ms)),
            tpot_ms: stats::summarize(&collect(&|r| r.tpot_ms)),
            itl_ms: stats::summarize(&itl),
            e2e_ms: stats::summarize(&collect(&|r| r.e2e_ms)),
            tokens_per_second: stats::summarize(&collect(&|r| r.tokens_per_second)),
            decode_tokens_per_second: stats::summarize(&collect(&|r| r.decode_tokens_per_second)),
            output_tokens: stats::summarize(&collect(&|r| r.output_tokens.map(f64::from))),
            prompt_tokens: stats::summarize(&collect(&|r| r.prompt_tokens.map(f64::from))),
        }
    }
}

impl Results {
    /// Parses and validates a results document; `origin` names it in errors
    /// (`FILE:LINE:COL: invalid results file at `key`: message`).
    pub fn from_json(text: &str, origin: &str) -> anyhow::Result<Self> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let results: Results = serde_path_to_error::deserialize(de).map_err(|e| {
            let inner = e.inner();
            anyhow::anyhow!(
                "{origin}:{}:{}: invalid results file at `{}`: {}",
                inner.line(),
                inner.column(),
                e.path(),
                inner
            )
        })?;
        if results.schema != SCHEMA {
            anyhow::bail!("{origin}: schema is `{}`, this infergate reads `{SCHEMA}`", results.schema);
        }
        Ok(results)
    }

    /// Total failed requests over all cases and phases.
    pub fn total_errors(&self) -> u32 {
        self.cases.iter().flat_map(|c| c.phases.values()).map(|p| p.summary.errors).sum()
    }

    /// Total requests over all cases and phases.
    pub fn total_requests(&self) -> u32 {
        self.cases.iter().flat_map(|c| c.phases.values()).map(|p| p.summary.requests).sum()
    }
}
