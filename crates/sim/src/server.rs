//! The simulator's HTTP side: axum routes in vLLM's OpenAI-compatible
//! formats, SSE streaming on the model's schedule, and ground-truth recording.
//!
//! Streaming must stay cheap (a throughput benchmark runs hundreds of streams
//! with no pacing), so events are written as pre-built JSON fragments into a
//! reused buffer, and nothing on the per-token path takes a lock.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use axum::Extension;
use axum::Json;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::BytesMut;
use serde::Deserialize;
use serde_json::json;

use super::fault::{FaultKind, FaultSet};
use super::model::{self, Limits, Prompt, Turn};
use super::tokenizer;
use super::{SimConfig, TruthRecord};
use infergate_core::rng::Rng;

/// Prefix-cache entries kept before the cache is cleared wholesale.
const MAX_CACHE_ENTRIES: usize = 1 << 20;

/// Largest request body accepted (prompts run to a few hundred KB).
const MAX_BODY_BYTES: usize = 64 << 20;

/// Token ids of the chat template, Llama-3 style.
const BOS_ID: u32 = 128_000;
const HEADER_START_ID: u32 = 128_006;
const HEADER_END_ID: u32 = 128_007;
const END_OF_TURN_ID: u32 = 128_009;

/// State shared by every request of one server.
#[derive(Debug)]
pub(super) struct Shared {
    config: SimConfig,
    /// The model name as a JSON string literal, quotes included.
    model_json: String,
    /// Number of the next request (ids and jitter seeds).
    next_request: AtomicU64,
    /// Generation requests in flight.
    active: AtomicU64,
    /// Tokens held in the (simulated) KV cache by requests in flight.
    kv_tokens: AtomicU64,
    /// Chained hashes of the prompt blocks seen so far.
    prefix_cache: Mutex<HashSet<u64>>,
    /// Whether `truth` keeps records (a long-running server only logs them).
    keep_truth: bool,
    truth: Mutex<Vec<TruthRecord>>,
    truth_log: Option<std::sync::Arc<Mutex<std::fs::File>>>,
    /// Injected faults and their request counters.
    faults: FaultSet,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not take the recording down with it.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    pub(super) fn new(config: SimConfig, keep_truth: bool) -> anyhow::Result<Self> {
        let truth_log = config.truth_log.as_ref().map(|log| log.0.clone());
        let model_json = serde_json::to_string(&config.model).context("encoding the model name")?;
        let faults = FaultSet::new(config.faults.clone(), config.seed);
        Ok(Self {
            faults,
            config,
            model_json,
            next_request: AtomicU64::new(1),
            active: AtomicU64::new(0),
            kv_tokens: AtomicU64::new(0),
            prefix_cache: Mutex::new(HashSet::new()),
            keep_truth,
            truth: Mutex::new(Vec::new()),
            truth_log,
        })
    }

    pub(super) fn faults_injected(&self) -> u64 {
        self.faults.injected()
    }

    pub(super) fn truth_snapshot(&self) -> Vec<TruthRecord> {
        lock(&self.truth).clone()
    }

    fn record(&self, record: TruthRecord) {
        if let Some(log) = &self.truth_log {
            match serde_json::to_string(&record) {
                Ok(mut line) => {
                    line.push('\n');
                    let mut file = lock(log);
                    if let Err(e) = file.write_all(line.as_bytes()).and_then(|()| file.flush()) {
                        tracing::warn!("cannot write the truth log: {e}");
                    }
                }
                Err(e) => tracing::warn!("cannot encode a truth record: {e}"),
            }
        }
        if self.keep_truth {
            lock(&self.truth).push(record);
        }
    }

    /// Prompt tokens already cached (leading whole blocks), then caches all of
    /// this prompt's blocks. Blocks are cached at admission: a real server
    /// caches them once prefill has run, which this approximates.
    fn cached_tokens(&self, blocks: &[u64]) -> u32 {
        let mut cache = lock(&self.prefix_cache);
        let hits = blocks.iter().take_while(|b| cache.contains(b)).count();
        if cache.len() + blocks.len() > MAX_CACHE_ENTRIES {
            cache.clear();
        }
        cache.extend(blocks.iter().copied());
        u32::try_from(hits).unwrap_or(u32::MAX).saturating_mul(model::BLOCK_TOKENS)
    }
}

/// The routes of the simulator.
pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/version", get(version))
        .route("/v1/models", get(models))
        .route("/tokenize", post(tokenize))
        .route("/reset_prefix_cache", post(reset_prefix_cache))
        .route("/metrics", get(metrics))
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/completions", post(completions))
        .fallback(not_found)
        .method_not_allowed_fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(shared)
}

/// KV-cache capacity of the simulated server, in multiples of the context length.
const KV_CAPACITY_CONTEXTS: u64 = 4;

/// `GET /metrics`: Prometheus text in vLLM's names, from the model's state:
/// requests in flight, and a KV-cache usage that grows with their prompt and
/// generated tokens.
async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let running = shared.active.load(Ordering::Relaxed);
    let capacity = (u64::from(shared.config.max_model_len) * KV_CAPACITY_CONTEXTS).max(1);
    let usage = (shared.kv_tokens.load(Ordering::Relaxed) as f64 / capacity as f64).min(1.0);
    let model = &shared.model_json;
    let body = format!(
        "# HELP vllm:num_requests_running Number of requests in model execution batches.\n\
         # TYPE vllm:num_requests_running gauge\n\
         vllm:num_requests_running{{model_name={model}}} {running}\n\
         # HELP vllm:num_requests_waiting Number of requests waiting to be processed.\n\
         # TYPE vllm:num_requests_waiting gauge\n\
         vllm:num_requests_waiting{{model_name={model}}} 0\n\
         # HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.\n\
         # TYPE vllm:kv_cache_usage_perc gauge\n\
         vllm:kv_cache_usage_perc{{model_name={model}}} {usage}\n\
         # HELP vllm:num_preemptions_total Cumulative number of preemptions.\n\
         # TYPE vllm:num_preemptions_total counter\n\
         vllm:num_preemptions_total{{model_name={model}}} 0\n"
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

/// An OpenAI-style error response.
fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let body = json!({
        "error": {
            "message": message.into(),
            "type": "invalid_request_error",
            "code": status.as_u16(),
        }
    });
    (status, Json(body)).into_response()
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "Not Found")
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({}))
}

async fn version() -> Json<serde_json::Value> {
    Json(json!({ "version": concat!("infergate-sim ", env!("CARGO_PKG_VERSION")) }))
}

async fn models(State(shared): State<Arc<Shared>>) -> Response {
    if shared.faults.huge_models() {
        return endless_model_list();
    }
    Json(json!({
        "object": "list",
        "data": [{
            "id": shared.config.model,
            "object": "model",
            "created": 0,
            "owned_by": "infergate-sim",
            "max_model_len": shared.config.max_model_len,
        }]
    }))
    .into_response()
}

/// A model list that never ends (fault `huge-models`): entries are sent
/// until the client goes away.
fn endless_model_list() -> Response {
    const HEAD: &[u8] = br#"{"object":"list","data":["#;
    const ENTRY: &[u8] = br#"{"id":"huge-models-fault","object":"model","owned_by":"infergate-sim"},"#;
    let entries = Bytes::from(ENTRY.repeat((64 << 10) / ENTRY.len() + 1));
    let head = std::iter::once(Bytes::from_static(HEAD));
    let body = head.chain(std::iter::repeat_with(move || entries.clone()));
    let stream = futures_util::stream::iter(body.map(Ok::<_, std::convert::Infallible>));
    ([(header::CONTENT_TYPE, "application/json")], Body::from_stream(stream)).into_response()
}

async fn reset_prefix_cache(State(shared): State<Arc<Shared>>) -> StatusCode {
    lock(&shared.prefix_cache).clear();
    StatusCode::OK
}

/// One chat message as sent.
#[derive(Debug, Deserialize)]
struct Message {
    role: String,
    #[serde(default)]
    content: Option<Content>,
}

/// Message content: a string, or OpenAI's list of typed parts.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<ContentPart>),
}

#[derive(Debug, Deserialize)]
struct ContentPart {
    #[serde(default)]
    text: Option<String>,
}

impl Message {
    fn text(&self) -> Cow<'_, str> {
        match &self.content {
            None => Cow::Borrowed(""),
            Some(Content::Text(s)) => Cow::Borrowed(s),
            Some(Content::Parts(parts)) => Cow::Owned(parts.iter().filter_map(|p| p.text.as_deref()).collect()),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct StreamOptions {
    include_usage: Option<bool>,
    continuous_usage_stats: Option<bool>,
}

/// The fields of a generation request the simulator reads; others are ignored.
#[derive(Debug, Deserialize)]
struct GenRequest {
    model: String,
    messages: Option<Vec<Message>>,
    prompt: Option<String>,
    max_tokens: Option<i64>,
    max_completion_tokens: Option<i64>,
    min_tokens: Option<i64>,
    ignore_eos: Option<bool>,
    stream: Option<bool>,
    stream_options: Option<StreamOptions>,
}

#[derive(Debug, Deserialize)]
struct TokenizeRequest {
    messages: Option<Vec<Message>>,
    prompt: Option<String>,
    content: Option<String>,
    add_special_tokens: Option<bool>,
}

/// Parses a JSON body; the error is the message of a 400.
fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| format!("invalid request body: {e}"))
}

async fn tokenize(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let req: TokenizeRequest = match parse(&body) {
        Ok(r) => r,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let mut ids = Vec::new();
    if let Some(messages) = &req.messages {
        // Same layout as `Prompt::prompt_tokens`: 3 header tokens and an
        // end-of-turn per message, then the assistant header.
        for m in messages {
            ids.extend([HEADER_START_ID, tokenizer::piece_id(&m.role), HEADER_END_ID]);
            ids.extend(tokenizer::pieces(&m.text()).map(tokenizer::piece_id));
            ids.push(END_OF_TURN_ID);
        }
        ids.extend([HEADER_START_ID, tokenizer::piece_id("assistant"), HEADER_END_ID]);
    } else {
        let (text, special) = match (&req.prompt, &req.content) {
            (Some(p), _) => (p, req.add_special_tokens.unwrap_or(true)),
            (None, Some(c)) => (c, req.add_special_tokens.unwrap_or(false)),
            (None, None) => {
                return error(StatusCode::BAD_REQUEST, "one of `messages`, `prompt` or `content` is required");
            }
        };
        if special {
            ids.push(BOS_ID);
        }
        ids.extend(tokenizer::pieces(text).map(tokenizer::piece_id));
    }
    Json(json!({
        "count": ids.len(),
        "max_model_len": shared.config.max_model_len,
        "tokens": ids,
    }))
    .into_response()
}

/// Which generation endpoint a request came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Chat,
    Completions,
}

impl Endpoint {
    fn name(self) -> &'static str {
        match self {
            Endpoint::Chat => "chat",
            Endpoint::Completions => "completions",
        }
    }

    fn id_prefix(self) -> &'static str {
        match self {
            Endpoint::Chat => "chatcmpl-sim-",
            Endpoint::Completions => "cmpl-sim-",
        }
    }

    fn chunk_object(self) -> &'static str {
        match self {
            Endpoint::Chat => "chat.completion.chunk",
            Endpoint::Completions => "text_completion",
        }
    }
}

async fn chat_completions(
    State(shared): State<Arc<Shared>>,
    conn: Option<Extension<ConnectInfo<Conn>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let receipt = Instant::now();
    let from = Origin::of(conn, &headers);
    generate(shared, Endpoint::Chat, receipt, body, from).await
}

async fn completions(
    State(shared): State<Arc<Shared>>,
    conn: Option<Extension<ConnectInfo<Conn>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let receipt = Instant::now();
    let from = Origin::of(conn, &headers);
    generate(shared, Endpoint::Completions, receipt, body, from).await
}

/// The client's connection, so that a fault can break it below HTTP: close it
/// without an answer, or reset it mid-stream.
#[derive(Debug, Clone, Copy)]
pub(super) struct Conn {
    #[cfg(unix)]
    fd: std::os::fd::RawFd,
}

/// The simulator's listener: TCP with `TCP_NODELAY` on every connection.
/// Without it, Nagle's algorithm holds each small SSE write until the
/// client's delayed ACK (40 ms on Linux): every stream would show a phantom
/// 40 ms TTFT.
pub(super) struct SimListener(pub(super) tokio::net::TcpListener);

impl axum::serve::Listener for SimListener {
    type Io = tokio::net::TcpStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (tcp, addr) = axum::serve::Listener::accept(&mut self.0).await;
        let _ = tcp.set_nodelay(true);
        (tcp, addr)
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

impl Connected<axum::serve::IncomingStream<'_, SimListener>> for Conn {
    fn connect_info(stream: axum::serve::IncomingStream<'_, SimListener>) -> Self {
        #[cfg(unix)]
        {
            Conn { fd: std::os::fd::AsRawFd::as_raw_fd(stream.io()) }
        }
        #[cfg(not(unix))]
        {
            let _ = stream;
            Conn {}
        }
    }
}

impl Conn {
    /// Makes the socket's close send a TCP reset rather than a FIN.
    fn reset_on_close(self) {
        #[cfg(unix)]
        {
            let linger = libc::linger { l_onoff: 1, l_linger: 0 };
            // SAFETY: `fd` is the socket of the connection whose handler or
            // body stream is running now, so it is open (hyper closes it only
            // after both are dropped); setsockopt reads `linger` and nothing else.
            unsafe {
                libc::setsockopt(
                    self.fd,
                    libc::SOL_SOCKET,
                    libc::SO_LINGER,
                    std::ptr::from_ref(&linger).cast(),
                    std::mem::size_of::<libc::linger>() as libc::socklen_t,
                );
            }
        }
    }

    /// Ends both directions now: the client sees the connection close before any answer.
    fn shut_down(self) {
        #[cfg(unix)]
        // SAFETY: as in `reset_on_close`, the socket is open; shutdown only
        // changes its state, and hyper's later writes then fail and close it.
        unsafe {
            libc::shutdown(self.fd, libc::SHUT_RDWR);
        }
    }
}

/// Where a generation request came from: its connection and case.
#[derive(Debug, Clone, Default)]
struct Origin {
    conn: Option<Conn>,
    /// The case id infergate names in its `x-infergate-case` header.
    case: Option<String>,
}

impl Origin {
    fn of(conn: Option<Extension<ConnectInfo<Conn>>>, headers: &HeaderMap) -> Origin {
        Origin {
            conn: conn.map(|Extension(ConnectInfo(c))| c),
            case: headers.get(infergate_core::suite::CASE_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned),
        }
    }
}

/// A delay in ms as a `Duration`, clamped so that no input can panic.
fn ms_to_duration(ms: f64) -> Duration {
    if ms.is_nan() || ms <= 0.0 {
        Duration::ZERO
    } else {
        // About 115 days: far beyond any sane schedule, far from overflow.
        Duration::from_secs_f64(ms.min(1e10) / 1000.0)
    }
}

/// Records the ground truth of one request; if dropped before
/// [`Recorder::finish`] (client gone), records it as not completed.
struct Recorder {
    shared: Arc<Shared>,
    receipt: Instant,
    record: Option<TruthRecord>,
}

impl Recorder {
    /// Counts the request as in flight until the recorder finishes.
    fn new(shared: Arc<Shared>, receipt: Instant, record: TruthRecord) -> Self {
        shared.active.fetch_add(1, Ordering::Relaxed);
        shared.kv_tokens.fetch_add(u64::from(record.prompt_tokens), Ordering::Relaxed);
        Self { shared, receipt, record: Some(record) }
    }

    fn elapsed_ms(&self) -> f64 {
        self.receipt.elapsed().as_secs_f64() * 1000.0
    }

    fn push(&mut self, at_ms: f64, tokens: u32) {
        self.shared.kv_tokens.fetch_add(u64::from(tokens), Ordering::Relaxed);
        if let Some(r) = &mut self.record {
            r.emit_ms.push(at_ms);
            r.chunk_tokens.push(tokens);
        }
    }

    fn finish(&mut self, completed: bool) {
        let Some(mut r) = self.record.take() else {
            return;
        };
        r.completed = completed;
        r.output_tokens = r.chunk_tokens.iter().copied().fold(0, u32::saturating_add);
        r.ttft_ms = r.emit_ms.first().copied().unwrap_or(0.0);
        r.e2e_ms = r.emit_ms.last().copied().unwrap_or(0.0);
        self.shared.active.fetch_sub(1, Ordering::Relaxed);
        let held = u64::from(r.prompt_tokens) + u64::from(r.output_tokens);
        let _ =
            self.shared.kv_tokens.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| Some(v.saturating_sub(held)));
        self.shared.record(r);
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.finish(false);
    }
}

async fn generate(shared: Arc<Shared>, endpoint: Endpoint, receipt: Instant, body: Bytes, from: Origin) -> Response {
    let req: GenRequest = match parse(&body) {
        Ok(r) => r,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    if req.model != shared.config.model {
        return error(StatusCode::NOT_FOUND, format!("The model `{}` does not exist.", req.model));
    }
    let (texts, limits_max) = match endpoint {
        Endpoint::Chat => {
            let Some(messages) = &req.messages else {
                return error(StatusCode::BAD_REQUEST, "`messages` is required");
            };
            let texts: Vec<(&str, Cow<'_, str>)> = messages.iter().map(|m| (m.role.as_str(), m.text())).collect();
            (texts, req.max_completion_tokens.or(req.max_tokens))
        }
        Endpoint::Completions => {
            if req.prompt.is_none() {
                return error(StatusCode::BAD_REQUEST, "`prompt` is required");
            }
            (Vec::new(), req.max_tokens)
        }
    };
    let prompt = match (endpoint, &req.prompt) {
        (Endpoint::Completions, Some(p)) => Prompt::Text(p),
        _ => Prompt::Chat(texts.iter().map(|(role, content)| Turn { role, content: content.as_ref() }).collect()),
    };
    let limits =
        Limits { max_tokens: limits_max, min_tokens: req.min_tokens, ignore_eos: req.ignore_eos.unwrap_or(false) };
    let config = &shared.config;
    let mut plan = match model::plan(config, &prompt, limits) {
        Ok(p) => p,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let stream = req.stream.unwrap_or(false);
    let fault = if stream { shared.faults.pick(from.case.as_deref()).cloned() } else { None };
    let mut stream_fault = None;
    match fault {
        None => {}
        Some(FaultKind::Http500) => {
            let body = json!({"error": {
                "message": "simulated internal server error (fault http500)",
                "type": "server_error",
                "code": 500,
            }});
            return (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response();
        }
        Some(FaultKind::Http429 { retry_after_s }) => {
            let body = json!({"error": {
                "message": "simulated rate limit (fault http429)",
                "type": "rate_limit_error",
                "code": 429,
            }});
            let mut r = (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_s));
            return r;
        }
        Some(FaultKind::Refuse) => {
            if let Some(conn) = from.conn {
                conn.reset_on_close();
                conn.shut_down();
            }
            // Nobody reads this: the connection is already closed.
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
        Some(FaultKind::ContentType { mime }) => {
            let page = "<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>\n";
            let mut r = (StatusCode::OK, page).into_response();
            if let Ok(v) = HeaderValue::from_str(&mime) {
                r.headers_mut().insert(header::CONTENT_TYPE, v);
            }
            return r;
        }
        Some(FaultKind::SlowFirstByte { delay }) => tokio::time::sleep(delay).await,
        Some(FaultKind::Short { tokens }) => {
            let short = tokens.unwrap_or(plan.output_tokens / 2).clamp(1, plan.output_tokens.max(1));
            if short < plan.output_tokens {
                plan.output_tokens = short;
                plan.finish_reason = model::FinishReason::Stop;
            }
        }
        Some(FaultKind::Reset { after_chunks }) => stream_fault = Some(StreamFault::Reset(after_chunks)),
        Some(FaultKind::Stall { duration }) => stream_fault = Some(StreamFault::Stall(duration)),
        Some(FaultKind::Malformed) => stream_fault = Some(StreamFault::Malformed),
        Some(FaultKind::NoDone { hold }) => stream_fault = Some(StreamFault::NoDone { hold }),
        Some(FaultKind::HugeEvent { bytes }) => stream_fault = Some(StreamFault::Huge(bytes)),
        Some(FaultKind::Endless) => stream_fault = Some(StreamFault::Endless),
        Some(FaultKind::NoUsage) => stream_fault = Some(StreamFault::NoUsage),
        Some(FaultKind::HugeHeaders { bytes }) => {
            let mut r = StatusCode::OK.into_response();
            if let Ok(v) = HeaderValue::from_bytes(&vec![b'x'; bytes]) {
                r.headers_mut().insert("x-infergate-padding", v);
            }
            return r;
        }
        // Never picked for a streamed request.
        Some(FaultKind::HugeModels) => {}
    }
    let cached_tokens = shared.cached_tokens(&prompt.block_hashes()).min(plan.prompt_tokens);
    let number = shared.next_request.fetch_add(1, Ordering::Relaxed);
    let speed = model::request_factor(config, number);
    let planned_ttft_ms = speed * model::planned_ttft_ms(config, plan.prompt_tokens, cached_tokens);
    let id = format!("{}{number}", endpoint.id_prefix());
    let created = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let record = TruthRecord {
        id: id.clone(),
        endpoint: endpoint.name().to_owned(),
        stream,
        prompt_tokens: plan.prompt_tokens,
        cached_tokens,
        output_tokens: 0,
        finish_reason: plan.finish_reason.as_str().to_owned(),
        planned_ttft_ms,
        ttft_ms: 0.0,
        e2e_ms: 0.0,
        emit_ms: Vec::new(),
        chunk_tokens: Vec::new(),
        completed: false,
    };
    let recorder = Recorder::new(Arc::clone(&shared), receipt, record);
    let jitter = model::jitter_rng(config, number);
    let text = model::TextGen::new(plan.prompt_hash);

    let mut response = if stream {
        let options = req.stream_options.unwrap_or_default();
        let include_usage = options.include_usage.unwrap_or(false) && stream_fault != Some(StreamFault::NoUsage);
        let endless = stream_fault == Some(StreamFault::Endless);
        let state = StreamState {
            prefix: format!(
                "data: {{\"id\":\"{id}\",\"object\":\"{}\",\"created\":{created},\"model\":{},\"choices\":[",
                endpoint.chunk_object(),
                shared.model_json,
            ),
            endpoint,
            total: if endless { u32::MAX } else { plan.output_tokens },
            per_chunk: config.tokens_per_chunk.max(1),
            sent: 0,
            prompt_tokens: plan.prompt_tokens,
            include_usage,
            continuous_usage: include_usage && options.continuous_usage_stats.unwrap_or(false),
            finish_reason: plan.finish_reason.as_str(),
            offset_ms: planned_ttft_ms,
            speed,
            paced: config.itl_ms > 0.0,
            text,
            jitter,
            buf: BytesMut::with_capacity(1024),
            rec: recorder,
            fault: stream_fault,
            conn: from.conn,
            content_writes: 0,
            broken: false,
        };
        let events = futures_util::stream::unfold(state, |mut st| async move {
            let write = st.next_event().await?;
            Some((write, st))
        });
        let mut r = Response::new(Body::from_stream(events));
        let h = r.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        r
    } else {
        complete(recorder, endpoint, &id, created, plan, (planned_ttft_ms, speed), jitter, text).await
    };
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

/// A non-streamed answer: waits the whole planned time, then replies at once.
#[expect(clippy::too_many_arguments, reason = "one call site; a struct would only rename the same values")]
async fn complete(
    mut rec: Recorder,
    endpoint: Endpoint,
    id: &str,
    created: u64,
    plan: model::Plan,
    (planned_ttft_ms, speed): (f64, f64),
    mut jitter: Rng,
    mut text: model::TextGen,
) -> Response {
    let config = &rec.shared.config;
    let mut offset_ms = planned_ttft_ms;
    if config.itl_ms > 0.0 {
        let active = rec.shared.active.load(Ordering::Relaxed);
        for _ in 1..plan.output_tokens {
            offset_ms += speed * model::token_interval_ms(config, jitter.unit(), active);
        }
    }
    tokio::time::sleep_until((rec.receipt + ms_to_duration(offset_ms)).into()).await;
    let content = text.take_text(plan.output_tokens);
    let usage = json!({
        "prompt_tokens": plan.prompt_tokens,
        "completion_tokens": plan.output_tokens,
        "total_tokens": u64::from(plan.prompt_tokens) + u64::from(plan.output_tokens),
    });
    let finish = plan.finish_reason.as_str();
    let body = match endpoint {
        Endpoint::Chat => json!({
            "id": id,
            "object": "chat.completion",
            "created": created,
            "model": config.model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "logprobs": null,
                "finish_reason": finish,
            }],
            "usage": usage,
        }),
        Endpoint::Completions => json!({
            "id": id,
            "object": "text_completion",
            "created": created,
            "model": config.model,
            "choices": [{
                "index": 0,
                "text": content,
                "logprobs": null,
                "finish_reason": finish,
            }],
            "usage": usage,
        }),
    };
    let at = rec.elapsed_ms();
    rec.push(at, plan.output_tokens);
    rec.finish(true);
    Json(body).into_response()
}

/// A fault that changes the stream itself (see [`super::fault`]).
#[derive(Debug, Clone, Copy, PartialEq)]
enum StreamFault {
    /// Reset the connection after this many content writes.
    Reset(u32),
    /// Silence for this long after the first content write.
    Stall(Duration),
    /// A non-JSON event after the first content write.
    Malformed,
    /// No `[DONE]`; `hold` keeps the connection open afterwards.
    NoDone { hold: bool },
    /// One content event this large after the first content write.
    Huge(usize),
    /// Never finish.
    Endless,
    /// No `usage` anywhere.
    NoUsage,
}

/// One streamed answer in progress: the body stream's state.
struct StreamState {
    /// `data: {"id":..,"object":..,"created":..,"model":..,"choices":[`
    prefix: String,
    endpoint: Endpoint,
    total: u32,
    per_chunk: u32,
    /// Tokens emitted so far.
    sent: u32,
    prompt_tokens: u32,
    include_usage: bool,
    continuous_usage: bool,
    finish_reason: &'static str,
    /// Planned emission of the latest scheduled token, ms after receipt.
    offset_ms: f64,
    /// This request's speed factor (`request_cv`): multiplies every interval.
    speed: f64,
    /// False when `itl_ms` is 0: burst without sleeping after the first chunk.
    paced: bool,
    text: model::TextGen,
    jitter: Rng,
    buf: BytesMut,
    rec: Recorder,
    /// The injected fault, if any.
    fault: Option<StreamFault>,
    /// The connection, for a reset.
    conn: Option<Conn>,
    /// Content-bearing writes so far.
    content_writes: u32,
    /// The stream was broken on purpose: nothing more follows.
    broken: bool,
}

impl StreamState {
    /// Waits until the next write is due, then returns it; `None` at the end,
    /// an error when a fault resets the connection.
    async fn next_event(&mut self) -> Option<Result<Bytes, std::io::Error>> {
        if self.broken {
            return None;
        }
        if self.sent >= self.total {
            if self.fault == Some(StreamFault::NoDone { hold: true }) {
                // Keep the connection open until the client goes away.
                std::future::pending::<()>().await;
            }
            return None;
        }
        if let Some(StreamFault::Reset(after)) = self.fault {
            if self.content_writes >= after {
                self.broken = true;
                // Pending once, so that hyper flushes what was already
                // yielded: a reset must cut the stream after its chunks,
                // not swallow them unsent.
                tokio::time::sleep(Duration::from_millis(10)).await;
                if let Some(conn) = self.conn {
                    conn.reset_on_close();
                }
                return Some(Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "simulated connection reset (fault reset)",
                )));
            }
        }
        let first = self.sent == 0;
        let k = self.per_chunk.min(self.total - self.sent);
        let end = self.sent + k;
        if let Some(StreamFault::Stall(silence)) = self.fault {
            if self.content_writes == 1 {
                self.fault = None;
                tokio::time::sleep(silence).await;
                // The schedule moves on from the end of the silence.
                self.offset_ms += silence.as_secs_f64() * 1000.0;
            }
        }
        if self.paced {
            let config = &self.rec.shared.config;
            let active = self.rec.shared.active.load(Ordering::Relaxed);
            for i in self.sent..end {
                if i > 0 {
                    self.offset_ms += self.speed * model::token_interval_ms(config, self.jitter.unit(), active);
                }
            }
        }
        if first || self.paced {
            let deadline = self.rec.receipt + ms_to_duration(self.offset_ms);
            if deadline > Instant::now() {
                tokio::time::sleep_until(deadline.into()).await;
            }
        }
        let last = end == self.total;
        if self.content_writes == 1 {
            match self.fault {
                Some(StreamFault::Malformed) => {
                    self.buf.extend_from_slice(b"data: {\"id\":\"broken\",\"choices\":[{\"delta\":{\"content\":\"\n\n");
                }
                Some(StreamFault::Huge(bytes)) => {
                    self.open();
                    self.buf.extend_from_slice(match self.endpoint {
                        Endpoint::Chat => br#"{"index":0,"delta":{"content":""#.as_slice(),
                        Endpoint::Completions => br#"{"index":0,"text":""#.as_slice(),
                    });
                    self.buf.resize(self.buf.len() + bytes, b'x');
                    self.buf.extend_from_slice(match self.endpoint {
                        Endpoint::Chat => br#""},"logprobs":null,"finish_reason":null}"#.as_slice(),
                        Endpoint::Completions => br#"","logprobs":null,"finish_reason":null}"#.as_slice(),
                    });
                    self.close(None);
                }
                _ => {}
            }
        }
        if first && self.endpoint == Endpoint::Chat {
            self.open();
            self.buf.extend_from_slice(
                br#"{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}"#,
            );
            self.close(self.continuous_usage.then_some(0));
        }
        self.open();
        self.buf.extend_from_slice(match self.endpoint {
            Endpoint::Chat => br#"{"index":0,"delta":{"content":""#.as_slice(),
            Endpoint::Completions => br#"{"index":0,"text":""#.as_slice(),
        });
        for _ in 0..k {
            // Vocabulary pieces need no JSON escaping (tested in `model`).
            self.buf.extend_from_slice(self.text.next_piece().as_bytes());
        }
        self.buf.extend_from_slice(match self.endpoint {
            Endpoint::Chat => br#""},"logprobs":null,"finish_reason":null}"#.as_slice(),
            Endpoint::Completions => br#"","logprobs":null,"finish_reason":null}"#.as_slice(),
        });
        self.close(self.continuous_usage.then_some(end));
        if last {
            self.open();
            self.buf.extend_from_slice(match self.endpoint {
                Endpoint::Chat => br#"{"index":0,"delta":{},"logprobs":null,"finish_reason":""#.as_slice(),
                Endpoint::Completions => br#"{"index":0,"text":"","logprobs":null,"finish_reason":""#.as_slice(),
            });
            self.buf.extend_from_slice(self.finish_reason.as_bytes());
            self.buf.extend_from_slice(b"\"}");
            self.close(self.continuous_usage.then_some(end));
            if self.include_usage {
                self.open();
                self.close(Some(end));
            }
            if !matches!(self.fault, Some(StreamFault::NoDone { .. })) {
                self.buf.extend_from_slice(b"data: [DONE]\n\n");
            }
        }
        self.sent = end;
        self.content_writes += 1;
        let bytes = self.buf.split().freeze();
        let at = self.rec.elapsed_ms();
        if first && self.endpoint == Endpoint::Chat {
            self.rec.push(at, 0);
        }
        self.rec.push(at, k);
        if last {
            self.rec.push(at, 0);
            self.rec.finish(true);
        }
        Some(Ok(bytes))
    }

    /// Starts an event, up to the opening of its `choices` array.
    fn open(&mut self) {
        self.buf.extend_from_slice(self.prefix.as_bytes());
    }

    /// Ends an event: closes `choices`, adds `usage` when given the completion tokens so far.
    fn close(&mut self, usage: Option<u32>) {
        self.buf.extend_from_slice(b"]");
        if let Some(done) = usage {
            let p = self.prompt_tokens;
            // Writing to a BytesMut cannot fail.
            let _ = write!(
                self.buf,
                ",\"usage\":{{\"prompt_tokens\":{p},\"completion_tokens\":{done},\"total_tokens\":{}}}",
                u64::from(p) + u64::from(done)
            );
        }
        self.buf.extend_from_slice(b"}\n\n");
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use futures_util::StreamExt as _;
    use serde_json::Value;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpStream;

    use super::*;
    use crate::{SimServer, start};

    /// A response read off a raw socket.
    struct Reply {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    }

    impl Reply {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
        }

        fn json(&self) -> Value {
            serde_json::from_str(&self.body).unwrap()
        }
    }

    fn request_bytes(method: &str, path: &str, body: &str) -> String {
        format!(
            "{method} {path} HTTP/1.1\r\nHost: sim\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    fn dechunk(mut raw: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let line_end = raw.windows(2).position(|w| w == b"\r\n").unwrap();
            let size_text = std::str::from_utf8(&raw[..line_end]).unwrap();
            let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
            raw = &raw[line_end + 2..];
            if size == 0 {
                return out;
            }
            out.extend_from_slice(&raw[..size]);
            raw = &raw[size + 2..];
        }
    }

    /// One HTTP/1.1 exchange on a fresh connection, written by hand.
    async fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> Reply {
        let mut sock = TcpStream::connect(addr).await.unwrap();
        sock.write_all(request_bytes(method, path, body).as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        sock.read_to_end(&mut raw).await.unwrap();
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = std::str::from_utf8(&raw[..split]).unwrap();
        let mut lines = head.split("\r\n");
        let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (k, v) = l.split_once(':').unwrap();
                (k.trim().to_ascii_lowercase(), v.trim().to_owned())
            })
            .collect();
        let rest = &raw[split + 4..];
        let chunked = headers.iter().any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
        let body = if chunked { dechunk(rest) } else { rest.to_vec() };
        Reply { status, headers, body: String::from_utf8(body).unwrap() }
    }

    async fn post(server: &SimServer, path: &str, body: Value) -> Reply {
        http(server.addr(), "POST", path, &body.to_string()).await
    }

    /// The `data:` payloads of an SSE body, in order.
    fn sse(body: &str) -> Vec<&str> {
        assert!(body.ends_with("\n\n"), "body must end with a blank line");
        body.split("\n\n").filter(|e| !e.is_empty()).map(|e| e.strip_prefix("data: ").unwrap()).collect()
    }

    async fn sim(config: SimConfig) -> SimServer {
        start(config, "127.0.0.1:0".parse().unwrap()).await.unwrap()
    }

    fn fast() -> SimConfig {
        SimConfig { itl_ms: 0.5, ttft_base_ms: 2.0, cold_penalty_ms: 3.0, ..SimConfig::default() }
    }

    const EPS: f64 = 1e-3;

    #[tokio::test]
    async fn chat_stream_end_to_end() {
        let server = sim(fast()).await;
        let req = json!({
            "model": "sim",
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": "Write a function that adds two numbers."}
            ],
            "stream": true,
            "stream_options": {"include_usage": true},
            "temperature": 0.0,
            "seed": 3,
            "some_unknown_field": {"x": 1}
        });
        let reply = post(&server, "/v1/chat/completions", req.clone()).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("content-type"), Some("text/event-stream"));
        assert_eq!(reply.header("cache-control"), Some("no-cache"));
        let id = reply.header("x-request-id").unwrap().to_owned();
        assert!(id.starts_with("chatcmpl-sim-"), "{id}");

        let events = sse(&reply.body);
        assert_eq!(*events.last().unwrap(), "[DONE]");
        let chunks: Vec<Value> = events[..events.len() - 1].iter().map(|e| serde_json::from_str(e).unwrap()).collect();
        for c in &chunks {
            assert_eq!(c["id"], id.as_str());
            assert_eq!(c["object"], "chat.completion.chunk");
            assert_eq!(c["model"], "sim");
        }
        // role, content..., finish, usage
        let n = chunks.len();
        assert!(n >= 4);
        assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
        assert_eq!(chunks[0]["choices"][0]["delta"]["content"], "");
        let mut content = String::new();
        for c in &chunks[1..n - 2] {
            let choice = &c["choices"][0];
            assert!(choice["finish_reason"].is_null());
            assert!(choice["delta"].get("role").is_none());
            content.push_str(choice["delta"]["content"].as_str().unwrap());
        }
        let finish = &chunks[n - 2]["choices"][0];
        assert_eq!(finish["delta"], json!({}));
        assert_eq!(finish["finish_reason"], "stop");
        let usage_chunk = &chunks[n - 1];
        assert_eq!(usage_chunk["choices"], json!([]));
        let usage = &usage_chunk["usage"];
        let completion = usage["completion_tokens"].as_u64().unwrap();
        // One token per content chunk by default; the text re-tokenizes to the same count.
        assert_eq!(completion as usize, n - 3);
        assert_eq!(tokenizer::count(&content) as u64, completion);
        let prompt = usage["prompt_tokens"].as_u64().unwrap();
        assert_eq!(usage["total_tokens"].as_u64().unwrap(), prompt + completion);
        assert!((16..=64).contains(&completion));

        // Ground truth.
        let truth = server.truth();
        assert_eq!(truth.len(), 1);
        let t = &truth[0];
        assert_eq!(t.id, id);
        assert_eq!(t.endpoint, "chat");
        assert!(t.stream && t.completed);
        assert_eq!(u64::from(t.prompt_tokens), prompt);
        assert_eq!(u64::from(t.output_tokens), completion);
        assert_eq!(t.finish_reason, "stop");
        // role + content chunks + finish: the choice-bearing events.
        assert_eq!(t.emit_ms.len(), n - 1);
        assert_eq!(t.chunk_tokens.len(), n - 1);
        assert_eq!(t.chunk_tokens[0], 0);
        assert_eq!(*t.chunk_tokens.last().unwrap(), 0);
        assert!(t.chunk_tokens[1..n - 2].iter().all(|&k| k == 1));
        assert!(t.emit_ms.windows(2).all(|w| w[0] <= w[1]), "{:?}", t.emit_ms);
        // The role chunk goes out with the first content chunk, the finish with the last.
        assert_eq!(t.emit_ms[0], t.emit_ms[1]);
        assert_eq!(t.emit_ms[n - 3], t.emit_ms[n - 2]);
        assert_eq!(t.ttft_ms, t.emit_ms[0]);
        assert_eq!(t.e2e_ms, *t.emit_ms.last().unwrap());
        // Cold: nothing cached, so the penalty is in the plan; sleeping is never early.
        assert_eq!(t.cached_tokens, 0);
        assert!(t.planned_ttft_ms >= 2.0 + 3.0);
        assert!(t.ttft_ms + EPS >= t.planned_ttft_ms, "{} < {}", t.ttft_ms, t.planned_ttft_ms);
        let min_itl = 0.5 * (1.0 - 0.1);
        let floor = t.planned_ttft_ms + (completion - 1) as f64 * min_itl;
        assert!(t.e2e_ms + EPS >= floor, "{} < {floor}", t.e2e_ms);

        // /tokenize agrees with usage.prompt_tokens.
        let tok = post(&server, "/tokenize", json!({"model": "sim", "messages": req["messages"]})).await;
        assert_eq!(tok.status, 200);
        let tok = tok.json();
        assert_eq!(tok["count"].as_u64().unwrap(), prompt);
        assert_eq!(tok["tokens"].as_array().unwrap().len() as u64, prompt);
        assert_eq!(tok["max_model_len"], 131_072);
        server.shutdown().await;
    }

    #[tokio::test]
    async fn completions_stream_batches_tokens_with_continuous_usage() {
        let server = sim(SimConfig { tokens_per_chunk: 4, itl_ms: 0.0, ..fast() }).await;
        let req = json!({
            "model": "sim",
            "prompt": "def add(a, b):",
            "max_tokens": 10,
            "ignore_eos": true,
            "stream": true,
            "stream_options": {"include_usage": true, "continuous_usage_stats": true}
        });
        let reply = post(&server, "/v1/completions", req).await;
        assert_eq!(reply.status, 200);
        let id = reply.header("x-request-id").unwrap().to_owned();
        assert!(id.starts_with("cmpl-sim-"), "{id}");
        let events = sse(&reply.body);
        assert_eq!(*events.last().unwrap(), "[DONE]");
        let chunks: Vec<Value> = events[..events.len() - 1].iter().map(|e| serde_json::from_str(e).unwrap()).collect();
        // 10 tokens in chunks of 4, 4, 2; then finish and usage.
        assert_eq!(chunks.len(), 5);
        let mut so_far = 0;
        for (c, k) in chunks[..3].iter().zip([4, 4, 2]) {
            assert_eq!(c["object"], "text_completion");
            let text = c["choices"][0]["text"].as_str().unwrap();
            assert_eq!(tokenizer::count(text), k);
            so_far += k;
            assert_eq!(c["usage"]["completion_tokens"], so_far);
            assert!(c["choices"][0]["finish_reason"].is_null());
        }
        assert_eq!(chunks[3]["choices"][0]["text"], "");
        assert_eq!(chunks[3]["choices"][0]["finish_reason"], "length");
        assert_eq!(chunks[3]["usage"]["completion_tokens"], 10);
        assert_eq!(chunks[4]["choices"], json!([]));
        assert_eq!(chunks[4]["usage"]["completion_tokens"], 10);
        let prompt = chunks[4]["usage"]["prompt_tokens"].as_u64().unwrap();

        let t = &server.truth()[0];
        assert_eq!(t.id, id);
        assert_eq!(t.endpoint, "completions");
        assert_eq!(t.chunk_tokens, vec![4, 4, 2, 0]);
        assert_eq!(t.output_tokens, 10);
        assert_eq!(t.finish_reason, "length");

        let tok = post(&server, "/tokenize", json!({"prompt": "def add(a, b):"})).await;
        assert_eq!(tok.json()["count"].as_u64().unwrap(), prompt);
        server.shutdown().await;
    }

    #[tokio::test]
    async fn stream_writes_role_with_first_content_and_finish_with_last() {
        let shared = Arc::new(Shared::new(SimConfig { itl_ms: 0.0, ..fast() }, true).unwrap());
        let body = json!({
            "model": "sim", "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 3, "ignore_eos": true, "stream": true,
            "stream_options": {"include_usage": true}
        });
        let body = Bytes::from(body.to_string());
        let resp = generate(Arc::clone(&shared), Endpoint::Chat, Instant::now(), body, Origin::default()).await;
        let writes: Vec<String> = resp
            .into_body()
            .into_data_stream()
            .map(|b| String::from_utf8(b.unwrap().to_vec()).unwrap())
            .collect()
            .await;
        assert_eq!(writes.len(), 3);
        assert_eq!(sse(&writes[0]).len(), 2);
        assert!(writes[0].contains(r#""role":"assistant""#));
        assert_eq!(sse(&writes[1]).len(), 1);
        let last = sse(&writes[2]);
        assert_eq!(last.len(), 4, "content, finish, usage, [DONE]");
        assert!(last[1].contains(r#""finish_reason":"length""#));
        assert_eq!(last[3], "[DONE]");
        assert_eq!(shared.active.load(Ordering::Relaxed), 0);
        assert!(shared.truth_snapshot()[0].completed);
    }

    #[tokio::test]
    async fn non_streaming_replies_are_whole_and_deterministic() {
        let server = sim(fast()).await;
        let chat = json!({
            "model": "sim",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "Explain ownership."}]}],
            "max_completion_tokens": 8, "max_tokens": 2, "min_tokens": 5
        });
        let a = post(&server, "/v1/chat/completions", chat.clone()).await;
        let b = post(&server, "/v1/chat/completions", chat).await;
        assert_eq!(a.status, 200);
        assert!(a.header("x-request-id").unwrap().starts_with("chatcmpl-sim-"));
        let (a, b) = (a.json(), b.json());
        assert_eq!(a["object"], "chat.completion");
        let text = a["choices"][0]["message"]["content"].as_str().unwrap();
        assert_eq!(text, b["choices"][0]["message"]["content"].as_str().unwrap());
        assert_ne!(a["id"], b["id"]);
        assert_eq!(a["choices"][0]["message"]["role"], "assistant");
        // max_completion_tokens (8) wins over max_tokens (2); min_tokens lifts nothing above 8.
        let completion = a["usage"]["completion_tokens"].as_u64().unwrap();
        assert!((5..=8).contains(&completion), "{completion}");
        assert_eq!(tokenizer::count(text) as u64, completion);

        let comp = json!({"model": "sim", "prompt": "fn main() {", "max_tokens": 7, "ignore_eos": true});
        let c = post(&server, "/v1/completions", comp).await.json();
        assert_eq!(c["object"], "text_completion");
        assert_eq!(c["usage"]["completion_tokens"], 7);
        assert_eq!(c["choices"][0]["finish_reason"], "length");
        // "fn", " main", "(", ")", " {" + BOS
        assert_eq!(c["usage"]["prompt_tokens"], 6);
        assert_eq!(c["usage"]["total_tokens"], 13);

        let truth = server.truth();
        assert_eq!(truth.len(), 3);
        let t = &truth[2];
        assert!(!t.stream && t.completed);
        assert_eq!(t.chunk_tokens, vec![7]);
        assert_eq!(t.ttft_ms, t.e2e_ms);
        let floor = t.planned_ttft_ms + 6.0 * 0.5 * 0.9;
        assert!(t.e2e_ms + EPS >= floor, "{} < {floor}", t.e2e_ms);
        server.shutdown().await;
    }

    #[tokio::test]
    async fn errors_have_the_openai_shape() {
        let server = sim(fast()).await;
        let addr = server.addr();
        let check = |reply: Reply, status: u16, needle: &str| {
            assert_eq!(reply.status, status, "{}", reply.body);
            let v = reply.json();
            assert_eq!(v["error"]["type"], "invalid_request_error");
            assert_eq!(v["error"]["code"], status);
            let msg = v["error"]["message"].as_str().unwrap();
            assert!(msg.contains(needle), "{msg:?} lacks {needle:?}");
        };
        check(http(addr, "POST", "/v1/chat/completions", "{not json").await, 400, "invalid request body");
        check(http(addr, "POST", "/v1/completions", "").await, 400, "invalid request body");
        check(post(&server, "/v1/chat/completions", json!({"model": "sim"})).await, 400, "messages");
        check(post(&server, "/v1/completions", json!({"model": "sim"})).await, 400, "prompt");
        check(post(&server, "/v1/completions", json!({"prompt": "x"})).await, 400, "model");
        check(
            post(&server, "/v1/completions", json!({"model": "sim", "prompt": "x", "max_tokens": -1})).await,
            400,
            "max_tokens",
        );
        check(post(&server, "/v1/completions", json!({"model": "sim", "prompt": 5})).await, 400, "invalid type");
        check(post(&server, "/v1/completions", json!({"model": "gpt-9", "prompt": "x"})).await, 404, "gpt-9");
        check(
            post(&server, "/v1/completions", json!({"model": "sim", "prompt": "x", "max_tokens": 131_071})).await,
            400,
            "maximum context length is 131072 tokens",
        );
        check(http(addr, "GET", "/nope", "").await, 404, "Not Found");
        check(http(addr, "GET", "/v1/completions", "").await, 404, "Not Found");
        check(post(&server, "/tokenize", json!({"model": "sim"})).await, 400, "required");
        // Rejected requests leave no ground truth.
        assert!(server.truth().is_empty());
        server.shutdown().await;
    }

    #[tokio::test]
    async fn info_endpoints() {
        let server = sim(SimConfig { model: "my \"model\"".into(), max_model_len: 4096, ..fast() }).await;
        let addr = server.addr();
        let h = http(addr, "GET", "/health", "").await;
        assert_eq!((h.status, h.json()), (200, json!({})));
        let v = http(addr, "GET", "/version", "").await.json();
        assert_eq!(v["version"], format!("infergate-sim {}", env!("CARGO_PKG_VERSION")));
        let m = http(addr, "GET", "/v1/models", "").await.json();
        assert_eq!(m["object"], "list");
        assert_eq!(m["data"][0]["id"], "my \"model\"");
        assert_eq!(m["data"][0]["owned_by"], "infergate-sim");
        assert_eq!(m["data"][0]["max_model_len"], 4096);
        let t = post(&server, "/tokenize", json!({"content": "hello world"})).await.json();
        assert_eq!(t["count"], 2);
        let t = post(&server, "/tokenize", json!({"content": "hello world", "add_special_tokens": true})).await.json();
        assert_eq!(t["count"], 3);
        assert_eq!(t["tokens"][0], BOS_ID);
        // A model name that needs escaping still yields valid stream JSON.
        let reply = post(
            &server,
            "/v1/completions",
            json!({"model": "my \"model\"", "prompt": "x", "max_tokens": 2, "stream": true}),
        )
        .await;
        for e in sse(&reply.body).iter().filter(|e| **e != "[DONE]") {
            let v: Value = serde_json::from_str(e).unwrap();
            assert_eq!(v["model"], "my \"model\"");
        }
        assert!(server.base_url().starts_with("http://127.0.0.1:"));
        server.shutdown().await;
    }

    #[tokio::test]
    async fn prefix_cache_warms_and_resets() {
        let server = sim(fast()).await;
        // 200 prompt pieces: 3 whole blocks.
        let prompt = "token ".repeat(200);
        let req = json!({"model": "sim", "prompt": prompt, "max_tokens": 1});
        for _ in 0..2 {
            assert_eq!(post(&server, "/v1/completions", req.clone()).await.status, 200);
        }
        let reset = http(server.addr(), "POST", "/reset_prefix_cache", "").await;
        assert_eq!(reset.status, 200);
        assert_eq!(post(&server, "/v1/completions", req).await.status, 200);
        let t = server.truth();
        assert_eq!(t.iter().map(|r| r.cached_tokens).collect::<Vec<_>>(), vec![0, 192, 0]);
        // Warm skips the cold penalty and most of the prefill.
        assert!(t[1].planned_ttft_ms < t[0].planned_ttft_ms);
        assert!(t[0].planned_ttft_ms - t[1].planned_ttft_ms >= 3.0);
        assert_eq!(t[2].planned_ttft_ms, t[0].planned_ttft_ms);
        server.shutdown().await;
    }

    #[tokio::test]
    async fn slowdown_lengthens_real_time() {
        let server = sim(SimConfig { slowdown: 4.0, ..fast() }).await;
        let req = json!({"model": "sim", "prompt": "x", "max_tokens": 5, "ignore_eos": true, "stream": true});
        post(&server, "/v1/completions", req).await;
        let t = &server.truth()[0];
        // 4 × (2 + 3 cold + prefill) ms at least, and 4 × 4 intervals of ≥ 0.45 ms.
        assert!(t.planned_ttft_ms >= 20.0);
        assert!(t.ttft_ms + EPS >= t.planned_ttft_ms);
        assert!(t.e2e_ms + EPS >= t.planned_ttft_ms + 4.0 * 4.0 * 0.45);
        server.shutdown().await;
    }

    fn faulty(specs: &[&str]) -> SimConfig {
        SimConfig { itl_ms: 0.0, faults: specs.iter().map(|s| s.parse().unwrap()).collect(), ..fast() }
    }

    fn stream_req(case: Option<&str>) -> String {
        let body = json!({"model": "sim", "prompt": "x", "max_tokens": 8, "ignore_eos": true, "stream": true,
                          "stream_options": {"include_usage": true}})
        .to_string();
        let mut raw = request_bytes("POST", "/v1/completions", &body);
        if let Some(case) = case {
            let at = raw.find("\r\n").unwrap() + 2;
            raw.insert_str(at, &format!("{}: {case}\r\n", infergate_core::suite::CASE_HEADER));
        }
        raw
    }

    /// One exchange written by hand; the raw bytes the server sent before closing.
    async fn raw_exchange(addr: SocketAddr, request: &str) -> Vec<u8> {
        let mut sock = TcpStream::connect(addr).await.unwrap();
        sock.write_all(request.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        let mut buf = [0u8; 4096];
        // A reset ends the read with an error: what came before it is the answer.
        while let Ok(n) = sock.read(&mut buf).await {
            if n == 0 {
                break;
            }
            raw.extend_from_slice(&buf[..n]);
        }
        raw
    }

    #[tokio::test]
    async fn faults_hit_streamed_requests_of_the_selected_cases_only() {
        let server = sim(faulty(&["http429:7@case=debugging/*"])).await;
        let addr = server.addr();
        // No case header (a probe), another case, a non-streamed request: all answered.
        for req in [stream_req(None), stream_req(Some("code-review/256"))] {
            let raw = raw_exchange(addr, &req).await;
            assert!(raw.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&raw));
        }
        let plain = json!({"model": "sim", "prompt": "x", "max_tokens": 2});
        assert_eq!(post(&server, "/v1/completions", plain).await.status, 200);
        let raw = String::from_utf8(raw_exchange(addr, &stream_req(Some("debugging/256"))).await).unwrap();
        assert!(raw.starts_with("HTTP/1.1 429"), "{raw}");
        assert!(raw.to_ascii_lowercase().contains("retry-after: 7\r\n"), "{raw}");
        assert_eq!(server.faults_injected(), 1);
        server.shutdown().await;
    }

    #[tokio::test]
    async fn refuse_closes_the_connection_without_a_byte() {
        let server = sim(faulty(&["refuse"])).await;
        assert_eq!(raw_exchange(server.addr(), &stream_req(None)).await, b"");
        assert!(server.truth().is_empty());
        server.shutdown().await;
    }

    #[tokio::test]
    async fn stream_faults_shape_the_stream() {
        let server =
            sim(faulty(&["no-done@requests=1", "no-usage@requests=2", "short:3@requests=3", "malformed@requests=4"]))
                .await;
        let addr = server.addr();
        let body = |raw: Vec<u8>| {
            let raw = String::from_utf8(raw).unwrap();
            let (_, rest) = raw.split_once("\r\n\r\n").unwrap();
            String::from_utf8(dechunk(rest.as_bytes())).unwrap()
        };
        let no_done = body(raw_exchange(addr, &stream_req(None)).await);
        assert!(!no_done.contains("[DONE]") && no_done.contains("\"finish_reason\":\"length\""), "{no_done}");
        assert!(no_done.contains("\"usage\""));
        let no_usage = body(raw_exchange(addr, &stream_req(None)).await);
        assert!(!no_usage.contains("\"usage\"") && no_usage.ends_with("data: [DONE]\n\n"), "{no_usage}");
        let short = body(raw_exchange(addr, &stream_req(None)).await);
        assert!(short.contains("\"finish_reason\":\"stop\""), "{short}");
        assert!(short.contains("\"completion_tokens\":3,"), "{short}");
        let malformed = body(raw_exchange(addr, &stream_req(None)).await);
        assert!(
            malformed.contains("data: {\"id\":\"broken\",\"choices\":[{\"delta\":{\"content\":\"\n\n"),
            "{malformed}"
        );
        server.shutdown().await;
    }

    #[tokio::test]
    async fn a_reset_after_chunks_cuts_the_stream_and_an_html_page_is_not_a_stream() {
        let server = sim(faulty(&["reset:1@requests=1", "content-type@requests=2"])).await;
        let addr = server.addr();
        let raw = String::from_utf8_lossy(&raw_exchange(addr, &stream_req(None)).await).into_owned();
        assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
        // The chunked body never reaches its terminating zero-length chunk.
        assert!(!raw.ends_with("0\r\n\r\n") && !raw.contains("[DONE]"), "{raw}");
        let raw = String::from_utf8(raw_exchange(addr, &stream_req(None)).await).unwrap();
        assert!(raw.to_ascii_lowercase().contains("content-type: text/html"), "{raw}");
        assert!(raw.contains("<html>"), "{raw}");
        server.shutdown().await;
    }

    #[tokio::test]
    async fn client_disconnect_is_recorded_incomplete() {
        let server =
            sim(SimConfig { itl_ms: 5.0, ttft_base_ms: 0.0, cold_penalty_ms: 0.0, ..SimConfig::default() }).await;
        let body = json!({"model": "sim", "prompt": "long answer", "max_tokens": 5000,
                          "ignore_eos": true, "stream": true})
        .to_string();
        let mut sock = TcpStream::connect(server.addr()).await.unwrap();
        sock.write_all(request_bytes("POST", "/v1/completions", &body).as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 4096];
        let mut seen = Vec::new();
        while !String::from_utf8_lossy(&seen).contains("data: ") {
            let n = sock.read(&mut buf).await.unwrap();
            assert!(n > 0);
            seen.extend_from_slice(&buf[..n]);
        }
        drop(sock);
        let deadline = Instant::now() + Duration::from_secs(20);
        let record = loop {
            if let Some(r) = server.truth().pop() {
                break r;
            }
            assert!(Instant::now() < deadline, "no record after disconnect");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(!record.completed);
        assert!(record.output_tokens >= 1 && record.output_tokens < 5000);
        assert_eq!(record.emit_ms.len(), record.chunk_tokens.len());
        server.shutdown().await;
    }

    #[tokio::test]
    async fn truth_log_gets_one_line_per_request() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("truth.jsonl");
        let file = std::fs::OpenOptions::new().create(true).append(true).open(&path).unwrap();
        let server = sim(SimConfig { truth_log: Some(crate::TruthLog::new(file)), ..fast() }).await;
        for stream in [true, false] {
            let req = json!({"model": "sim", "prompt": "log me", "max_tokens": 3, "stream": stream});
            post(&server, "/v1/completions", req).await;
        }
        let truth = server.truth();
        server.shutdown().await;
        let text = std::fs::read_to_string(&path).unwrap();
        let logged: Vec<TruthRecord> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(logged, truth);
        assert_eq!(logged.len(), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_unpaced_streams_all_finish() {
        let server =
            sim(SimConfig { itl_ms: 0.0, ttft_base_ms: 0.0, cold_penalty_ms: 0.0, ..SimConfig::default() }).await;
        let addr = server.addr();
        let tasks: Vec<_> = (0..64)
            .map(|i| {
                let body = json!({"model": "sim", "prompt": format!("request {i}"), "max_tokens": 300,
                                  "ignore_eos": true, "stream": true})
                .to_string();
                tokio::spawn(async move { http(addr, "POST", "/v1/completions", &body).await })
            })
            .collect();
        for t in tasks {
            let reply = t.await.unwrap();
            assert_eq!(reply.status, 200);
            assert!(reply.body.ends_with("data: [DONE]\n\n"));
        }
        let truth = server.truth();
        assert_eq!(truth.len(), 64);
        assert!(truth.iter().all(|r| r.completed && r.output_tokens == 300));
        server.shutdown().await;
    }

    #[test]
    fn durations_never_panic() {
        assert_eq!(ms_to_duration(f64::NAN), Duration::ZERO);
        assert_eq!(ms_to_duration(-5.0), Duration::ZERO);
        assert_eq!(ms_to_duration(1.5), Duration::from_micros(1500));
        assert!(ms_to_duration(f64::INFINITY) > Duration::from_secs(1_000_000));
    }
}
