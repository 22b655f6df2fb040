//! HOW one request is run: an OpenAI-compatible streaming client.
//!
//! The measurement follows vLLM's `bench serve`: the start stamp is taken on a
//! monotonic clock just before the request is sent; every read from the socket
//! is stamped right after it returns, and the stamp is shared by all events that
//! read completed. Reads are awaited directly on the response (no task or
//! channel in between) so the stamp is as close to the bytes' arrival as the
//! runtime allows.

// Public only for the fuzz target (fuzz/fuzz_targets/chunk.rs), not an API.
#[doc(hidden)]
pub mod chunk;
pub mod retry;
pub mod sse;

use std::borrow::Cow;
use std::fmt;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::results::{ErrorClass, RequestError, RequestRecord, TokenSource};
use chunk::UsageMsg;
use sse::{Event, SseParser};

pub use infergate_core::suite::CASE_HEADER;

/// How long a stream may stay silent after its `finish_reason` before it is
/// taken as complete: the usage chunk and `[DONE]` follow the finish at once
/// on every known server, and a server that holds the connection open after
/// finishing must not turn a complete answer into an idle timeout.
pub const TAIL_GRACE: Duration = Duration::from_secs(1);

/// Largest body of an info answer read as JSON: `/v1/models`, `/version`,
/// `/props`, `/health`, a probe's non-streamed completion. A gateway's model
/// list with hundreds of entries is under 1 MiB.
pub const INFO_BODY_LIMIT: usize = 4 << 20;

/// Largest `POST /tokenize` answer: its token list grows with the text
/// (the ids of a 1M-token prompt take about 8 MB).
pub const TOKENIZE_BODY_LIMIT: usize = 32 << 20;

/// Largest text page, such as a Prometheus `/metrics` scrape (vLLM's, with
/// its histograms, is a few hundred KiB).
pub const TEXT_BODY_LIMIT: usize = 8 << 20;

/// Most of an error answer's body read; its message keeps the start of it.
pub const ERROR_BODY_LIMIT: usize = 64 << 10;

/// Which OpenAI endpoint requests go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    /// `POST /v1/chat/completions` with one user message.
    #[default]
    Chat,
    /// `POST /v1/completions` with a raw prompt.
    Completions,
}

impl Api {
    /// The endpoint path.
    pub fn path(self) -> &'static str {
        match self {
            Api::Chat => "/v1/chat/completions",
            Api::Completions => "/v1/completions",
        }
    }

    /// The name used in config and results.
    pub fn as_str(self) -> &'static str {
        match self {
            Api::Chat => "chat",
            Api::Completions => "completions",
        }
    }
}

/// A secret (API key) that never shows up in `Debug` output or logs.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: String) -> Self {
        Self(value)
    }
    fn expose(&self) -> &str {
        &self.0
    }

    /// `bytes` with every occurrence of the secret blanked out, or `None`
    /// when there is none (for files that need not be UTF-8, such as a
    /// server's log).
    pub fn redact_bytes(&self, bytes: &[u8]) -> Option<Vec<u8>> {
        if self.0.is_empty() {
            return None;
        }
        let hits = self.find_in(bytes);
        if hits.is_empty() {
            return None;
        }
        let mut out = Vec::with_capacity(bytes.len());
        let mut done = 0;
        for at in hits {
            out.extend_from_slice(&bytes[done..at]);
            out.extend_from_slice(b"<redacted>");
            done = at + self.0.len();
        }
        out.extend_from_slice(&bytes[done..]);
        Some(out)
    }

    /// Copies `from` to `to` with every occurrence of the secret blanked
    /// out, in chunks, so a log of any size takes bounded memory; returns
    /// whether there was any.
    pub fn redact_stream(&self, mut from: impl std::io::Read, mut to: impl std::io::Write) -> std::io::Result<bool> {
        const CHUNK: usize = 1 << 20;
        let k = self.0.len();
        let mut buf: Vec<u8> = Vec::with_capacity(CHUNK + k);
        let mut chunk = vec![0u8; CHUNK];
        let mut found = false;
        loop {
            let n = from.read(&mut chunk)?;
            buf.extend_from_slice(&chunk[..n]);
            // A match may straddle the end of what was read: keep its possible start.
            let safe = if n == 0 || k == 0 { buf.len() } else { buf.len().saturating_sub(k - 1) };
            let mut done = 0;
            if k > 0 {
                for at in self.find_in(&buf).into_iter().take_while(|&at| at < safe) {
                    to.write_all(&buf[done..at])?;
                    to.write_all(b"<redacted>")?;
                    done = at + k;
                    found = true;
                }
            }
            let end = done.max(safe);
            to.write_all(&buf[done..end])?;
            buf.drain(..end);
            if n == 0 {
                to.flush()?;
                return Ok(found);
            }
        }
    }

    /// Where the secret starts in `bytes`, ignoring ASCII case (a server that
    /// upper-cases a header it echoes still echoes the key), without overlaps.
    fn find_in(&self, bytes: &[u8]) -> Vec<usize> {
        let needle = self.0.as_bytes().to_ascii_lowercase();
        let hay = bytes.to_ascii_lowercase();
        memchr::memmem::find_iter(&hay, &needle).fold(Vec::new(), |mut v, at| {
            if v.last().is_none_or(|&last| at >= last + needle.len()) {
                v.push(at);
            }
            v
        })
    }

    /// `text` with every occurrence of the secret blanked out, and also its
    /// start where an excerpt cut it off (`...sk-ab...`), so a server that
    /// echoes the `Authorization` header into an error body cannot put the
    /// key into messages, logs or results.
    pub fn redact(&self, text: &str) -> String {
        const REDACTED: &str = "<redacted>";
        const CUT_MARK: &str = "...";
        /// The shortest cut-off start worth blanking: fewer characters tell nothing.
        const MIN_CUT: usize = 4;
        if self.0.is_empty() {
            return text.to_string();
        }
        // Byte offsets of ASCII case folding are the text's own, and the key
        // matches whole, so every cut lies on a character boundary.
        let mut out = String::with_capacity(text.len());
        let mut done = 0;
        for at in self.find_in(text.as_bytes()) {
            out.push_str(&text[done..at]);
            out.push_str(REDACTED);
            done = at + self.0.len();
        }
        out.push_str(&text[done..]);
        if let Some(body) = out.strip_suffix(CUT_MARK) {
            let cut = (MIN_CUT.min(self.0.len())..self.0.len())
                .rev()
                .filter(|&n| self.0.is_char_boundary(n))
                .find(|&n| body.ends_with(&self.0[..n]));
            if let Some(n) = cut {
                out = format!("{}{REDACTED}{CUT_MARK}", &body[..body.len() - n]);
            }
        }
        out
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// How to reach the server and how long to wait for it.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Base URL without a trailing slash, e.g. `http://127.0.0.1:8000`.
    pub base_url: String,
    /// Model name sent with every request.
    pub model: String,
    /// Chat or completions.
    pub api: Api,
    /// Bearer token, when the server needs one.
    pub api_key: Option<Secret>,
    /// Limit for a whole request.
    pub request_timeout: Duration,
    /// Limit for a silence: no bytes for this long ends the request.
    pub idle_timeout: Duration,
    /// Largest SSE event accepted.
    pub max_event_bytes: usize,
}

/// What to ask the server to generate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Generation {
    /// `max_tokens` (and `max_completion_tokens` for chat).
    pub max_tokens: u32,
    /// Send `ignore_eos: true` so the model cannot stop early (vLLM, llama.cpp).
    pub ignore_eos: bool,
    /// Send `min_tokens: max_tokens` (vLLM, SGLang).
    pub min_tokens: bool,
    /// Ask for usage in every chunk (`continuous_usage_stats`, vLLM), which
    /// tells how many tokens each chunk carried.
    pub continuous_usage: bool,
    /// Stream the response (false only for probes).
    pub stream: bool,
}

/// The OpenAI-compatible client. Cheap to clone; share one per run so
/// connections are reused.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    config: ClientConfig,
}

/// A request body, built once and sent many times.
#[derive(Debug, Clone)]
pub struct PreparedRequest {
    body: Bytes,
    /// The output length asked for.
    pub max_tokens: u32,
    /// The [`CASE_HEADER`] value, when the request measures a case.
    case: Option<reqwest::header::HeaderValue>,
}

impl PreparedRequest {
    /// Names the case this request measures in the [`CASE_HEADER`]; an id
    /// that cannot be a header value is left out.
    pub fn for_case(mut self, case_id: &str) -> Self {
        self.case = reqwest::header::HeaderValue::from_str(case_id).ok();
        self
    }
}

impl Client {
    /// Builds a client; fails only when the TLS stack cannot be set up.
    pub fn new(config: ClientConfig) -> anyhow::Result<Self> {
        let http = crate::http::client_builder()
            .pool_max_idle_per_host(1024)
            .build()
            .map_err(|e| anyhow::anyhow!("cannot build the HTTP client: {e}"))?;
        Ok(Self { http, config })
    }

    /// The configuration this client was built with.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// `text` with the API key blanked out (see [`Secret::redact`]).
    pub fn redact(&self, text: &str) -> String {
        match &self.config.api_key {
            Some(key) => key.redact(text),
            None => text.to_string(),
        }
    }

    /// The error with the API key blanked out of its message: servers echo
    /// request headers into error bodies, and the message ends up in logs,
    /// results and reports.
    fn scrub(&self, mut e: RequestError) -> RequestError {
        if let Some(key) = &self.config.api_key {
            e.message = key.redact(&e.message);
        }
        // A URL's password never reaches a message either.
        if let std::borrow::Cow::Owned(m) = crate::text::redact_userinfo(&e.message) {
            e.message = m;
        }
        e
    }

    /// The full URL of `path` on the server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.config.base_url, path)
    }

    /// Serializes the request body for `prompt` once.
    pub fn prepare(&self, prompt: &str, generation: Generation) -> PreparedRequest {
        PreparedRequest {
            body: Bytes::from(request_body(&self.config.model, self.config.api, prompt, generation)),
            max_tokens: generation.max_tokens,
            case: None,
        }
    }

    fn post(&self, path: &str, body: Bytes) -> reqwest::RequestBuilder {
        let mut req =
            self.http.post(self.url(path)).header(reqwest::header::CONTENT_TYPE, "application/json").body(body);
        if let Some(key) = &self.config.api_key {
            req = req.bearer_auth(key.expose());
        }
        req
    }

    /// GET `path` and parse JSON of at most [`INFO_BODY_LIMIT`], within the
    /// request and idle timeouts.
    pub async fn get_json(&self, path: &str) -> Result<serde_json::Value, RequestError> {
        let body = self.fetch(self.get(path), "GET", path, INFO_BODY_LIMIT).await?;
        self.parse_json("GET", path, &body)
    }

    /// GET `path` as text of at most [`TEXT_BODY_LIMIT`] (e.g. Prometheus
    /// `/metrics`), within the request and idle timeouts.
    pub async fn get_text(&self, path: &str) -> Result<String, RequestError> {
        let body = self.fetch(self.get(path), "GET", path, TEXT_BODY_LIMIT).await?;
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    /// POST a JSON body to `path` and parse a JSON answer of at most
    /// [`INFO_BODY_LIMIT`], within the request and idle timeouts.
    pub async fn post_json(&self, path: &str, body: &serde_json::Value) -> Result<serde_json::Value, RequestError> {
        self.post_json_within(path, body, INFO_BODY_LIMIT).await
    }

    /// [`Client::post_json`] with an answer of at most `limit` bytes.
    pub async fn post_json_within(
        &self,
        path: &str,
        body: &serde_json::Value,
        limit: usize,
    ) -> Result<serde_json::Value, RequestError> {
        let send = self.post(path, Bytes::from(body.to_string()));
        let answer = self.fetch(send, "POST", path, limit).await?;
        self.parse_json("POST", path, &answer)
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        let mut req = self.http.get(self.url(path));
        if let Some(key) = &self.config.api_key {
            req = req.bearer_auth(key.expose());
        }
        req
    }

    /// Sends a request that is not measured and reads its whole answer, of
    /// at most `limit` bytes, within the request timeout (in total) and the
    /// idle timeout (each silence). Errors start with `METHOD PATH: `.
    async fn fetch(
        &self,
        send: reqwest::RequestBuilder,
        method: &str,
        path: &str,
        limit: usize,
    ) -> Result<Bytes, RequestError> {
        let deadline = Instant::now() + self.config.request_timeout;
        let named = |mut e: RequestError| {
            e.message = format!("{method} {path}: {}", e.message);
            self.scrub(e)
        };
        let mut resp =
            self.wait(deadline, send.send()).await.map_err(named)?.map_err(|e| named(classify_reqwest(e)))?;
        let status = resp.status();
        if !status.is_success() {
            let body = self.read_body(&mut resp, deadline, ERROR_BODY_LIMIT).await.unwrap_or_else(|e| e.1.into());
            return Err(named(RequestError {
                class: ErrorClass::HttpStatus,
                status: Some(status.as_u16()),
                message: format!("HTTP {status}: {}", excerpt(&body)),
            }));
        }
        let over = || RequestError {
            class: ErrorClass::BadResponse,
            status: Some(status.as_u16()),
            message: format!("body over {}", crate::input::size_text(limit as u64)),
        };
        if resp.content_length().is_some_and(|n| n > limit as u64) {
            return Err(named(over()));
        }
        match self.read_body(&mut resp, deadline, limit).await {
            Ok(body) => Ok(body),
            Err((Some(e), _)) => Err(named(e)),
            Err((None, _)) => Err(named(over())),
        }
    }

    /// Reads the body, each read within the idle timeout and the deadline.
    /// `Err` carries the error (`None`: over `limit`) and what was read.
    async fn read_body(
        &self,
        resp: &mut reqwest::Response,
        deadline: Instant,
        limit: usize,
    ) -> Result<Bytes, (Option<RequestError>, Vec<u8>)> {
        let mut body = Vec::new();
        loop {
            let chunk = match self.wait(deadline, resp.chunk()).await {
                Ok(Ok(Some(chunk))) => chunk,
                Ok(Ok(None)) => return Ok(Bytes::from(body)),
                Ok(Err(e)) => return Err((Some(classify_reqwest(e)), body)),
                Err(e) => return Err((Some(e), body)),
            };
            if body.len() + chunk.len() > limit {
                let room = limit - body.len();
                body.extend_from_slice(&chunk[..room]);
                return Err((None, body));
            }
            body.extend_from_slice(&chunk);
        }
    }

    fn parse_json(&self, method: &str, path: &str, body: &[u8]) -> Result<serde_json::Value, RequestError> {
        serde_json::from_slice(body).map_err(|e| {
            self.scrub(RequestError {
                class: ErrorClass::BadResponse,
                status: None,
                message: format!("{method} {path}: invalid JSON ({e}): {}", excerpt(body)),
            })
        })
    }

    /// Runs one streaming request and measures it; `epoch` is the phase start
    /// that `start_ms` is relative to. Never panics, never returns an error:
    /// failures are recorded in the returned record.
    pub async fn measure(&self, request: &PreparedRequest, epoch: Instant) -> RequestRecord {
        self.measure_once(request, epoch).await.0
    }

    /// [`Client::measure`], and the `Retry-After` of a 429 answer.
    async fn measure_once(&self, request: &PreparedRequest, epoch: Instant) -> (RequestRecord, Option<Duration>) {
        let start = Instant::now();
        let deadline = start + self.config.request_timeout;
        let mut m = Measurement::new(start, request.max_tokens);
        if let Err(e) = self.stream_into(request, deadline, &mut m).await {
            m.error = Some(e);
        }
        let retry_after = m.retry_after;
        let mut record = m.finish();
        record.start_ms = ms(start.saturating_duration_since(epoch));
        if let Some(key) = &self.config.api_key {
            // Everything the server chose to send back that the record keeps.
            for text in [
                record.error.as_mut().map(|e| &mut e.message),
                record.output_text.as_mut(),
                record.response_id.as_mut(),
                record.finish_reason.as_mut(),
            ]
            .into_iter()
            .flatten()
            {
                *text = key.redact(text);
            }
        }
        (record, retry_after)
    }

    async fn stream_into(
        &self,
        request: &PreparedRequest,
        deadline: Instant,
        m: &mut Measurement,
    ) -> Result<(), RequestError> {
        let mut send = self.post(self.config.api.path(), request.body.clone());
        if let Some(case) = &request.case {
            send = send.header(CASE_HEADER, case.clone());
        }
        let mut resp = match self.wait(deadline, send.send()).await? {
            Ok(resp) => resp,
            Err(e) => return Err(classify_reqwest(e)),
        };
        let status = resp.status();
        if !status.is_success() {
            if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
                m.retry_after = resp
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(retry::parse_retry_after);
            }
            let excerpt = read_excerpt(&mut resp).await;
            return Err(RequestError {
                class: ErrorClass::HttpStatus,
                status: Some(status.as_u16()),
                message: format!("HTTP {status}: {excerpt}"),
            });
        }
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_ascii_lowercase());
        // A missing type is tolerated; any other than an event stream is not.
        if let Some(ct) = content_type.filter(|ct| !ct.starts_with("text/event-stream")) {
            let body = read_excerpt(&mut resp).await;
            let message = if ct.starts_with("application/json") {
                // A server that ignored `stream: true` and answered in one piece.
                format!("expected an event stream, got a JSON body: {body}")
            } else {
                format!("expected an event stream (text/event-stream), got `{}`: {body}", excerpt(ct.as_bytes()))
            };
            return Err(RequestError { class: ErrorClass::BadResponse, status: Some(status.as_u16()), message });
        }
        let mut parser = SseParser::new(self.config.max_event_bytes);
        loop {
            let read = if m.finish_reason.is_some() {
                // Finished: what may follow (usage, [DONE]) comes at once or not at all.
                match self.wait_tail(deadline, resp.chunk()).await {
                    Some(read) => read,
                    None => break,
                }
            } else {
                self.wait(deadline, resp.chunk()).await?
            };
            let chunk = match read {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(e) => {
                    return Err(RequestError {
                        class: ErrorClass::StreamCut,
                        status: None,
                        message: format!("the stream broke: {}", error_chain(&e)),
                    });
                }
            };
            let now = Instant::now();
            parser.push(&chunk, |event| m.on_event(event, now, false)).map_err(sse_error)?;
            if let Some(e) = m.error.take() {
                return Err(e);
            }
            if m.done {
                return Ok(());
            }
        }
        let now = Instant::now();
        parser.finish(|event| m.on_event(event, now, true)).map_err(sse_error)?;
        if let Some(e) = m.error.take() {
            return Err(e);
        }
        Ok(())
    }

    /// Awaits `fut` within [`TAIL_GRACE`] (and the request deadline); `None` when that passed.
    async fn wait_tail<F: std::future::Future>(&self, deadline: Instant, fut: F) -> Option<F::Output> {
        let limit = (Instant::now() + TAIL_GRACE).min(deadline);
        tokio::time::timeout_at(limit.into(), fut).await.ok()
    }

    /// Awaits `fut` within both the idle timeout and the request deadline.
    async fn wait<F: std::future::Future>(&self, deadline: Instant, fut: F) -> Result<F::Output, RequestError> {
        let idle = Instant::now() + self.config.idle_timeout;
        let (limit, class, what) = if idle < deadline {
            (idle, ErrorClass::IdleTimeout, format!("no bytes for {:?} (idle timeout)", self.config.idle_timeout))
        } else {
            (
                deadline,
                ErrorClass::Timeout,
                format!("request took longer than {:?} (request timeout)", self.config.request_timeout),
            )
        };
        tokio::time::timeout_at(limit.into(), fut).await.map_err(|_| RequestError {
            class,
            status: None,
            message: what,
        })
    }
}

fn sse_error(e: sse::SseError) -> RequestError {
    RequestError { class: ErrorClass::MalformedEvent, status: None, message: e.to_string() }
}

/// Builds the JSON body of a generation request.
pub fn request_body(model: &str, api: Api, prompt: &str, g: Generation) -> Vec<u8> {
    let mut body = serde_json::Map::new();
    body.insert("model".into(), model.into());
    match api {
        Api::Chat => {
            body.insert("messages".into(), serde_json::json!([{"role": "user", "content": prompt}]));
            body.insert("max_completion_tokens".into(), g.max_tokens.into());
        }
        Api::Completions => {
            body.insert("prompt".into(), prompt.into());
        }
    }
    body.insert("max_tokens".into(), g.max_tokens.into());
    body.insert("temperature".into(), 0.0.into());
    body.insert("stream".into(), g.stream.into());
    if g.stream {
        let mut opts = serde_json::Map::new();
        opts.insert("include_usage".into(), true.into());
        if g.continuous_usage {
            opts.insert("continuous_usage_stats".into(), true.into());
        }
        body.insert("stream_options".into(), opts.into());
    }
    if g.ignore_eos {
        body.insert("ignore_eos".into(), true.into());
    }
    if g.min_tokens {
        body.insert("min_tokens".into(), g.max_tokens.into());
    }
    serde_json::Value::Object(body).to_string().into_bytes()
}

/// The state of one request while its stream is read.
struct Measurement {
    start: Instant,
    /// `max_tokens` of the request.
    asked: u32,
    first_choice: Option<Instant>,
    last_choice: Option<Instant>,
    itl_ms: Vec<f64>,
    chunk_tokens: Vec<u32>,
    /// Set once a chunk arrives without per-chunk usage.
    chunk_tokens_complete: bool,
    last_completion_tokens: u32,
    content_chunks: u32,
    usage: Option<UsageMsg>,
    finish_reason: Option<String>,
    response_id: Option<String>,
    text: String,
    hasher: Sha256,
    done: bool,
    error: Option<RequestError>,
    /// `Retry-After` of a 429 answer.
    retry_after: Option<Duration>,
}

impl Measurement {
    fn new(start: Instant, asked_tokens: u32) -> Self {
        Self {
            start,
            asked: asked_tokens,
            first_choice: None,
            last_choice: None,
            itl_ms: Vec::with_capacity(asked_tokens as usize + 2),
            chunk_tokens: Vec::new(),
            chunk_tokens_complete: true,
            last_completion_tokens: 0,
            content_chunks: 0,
            usage: None,
            finish_reason: None,
            response_id: None,
            text: String::new(),
            hasher: Sha256::new(),
            done: false,
            error: None,
            retry_after: None,
        }
    }

    fn fail(&mut self, class: ErrorClass, message: String) {
        if self.error.is_none() {
            self.error = Some(RequestError { class, status: None, message });
        }
    }

    fn on_event(&mut self, event: Event<'_>, now: Instant, from_tail: bool) {
        if self.error.is_some() || self.done {
            return;
        }
        let data = event.data;
        if data == b"[DONE]" {
            self.done = true;
            return;
        }
        let msg = match chunk::parse(data) {
            Ok(m) => m,
            Err(e) => {
                let (class, what) = if from_tail {
                    (ErrorClass::StreamCut, "the stream ended inside an event")
                } else {
                    (ErrorClass::MalformedEvent, "malformed event")
                };
                self.fail(class, format!("{what}: {e}: {}", excerpt(data)));
                return;
            }
        };
        if let Some(err) = msg.error {
            self.fail(
                ErrorClass::ServerError,
                format!("the server sent an error in the stream: {}", excerpt(err.to_string().as_bytes())),
            );
            return;
        }
        if event.event == Some(b"error") {
            self.fail(ErrorClass::ServerError, format!("the server sent an error event: {}", excerpt(data)));
            return;
        }
        if self.response_id.is_none() {
            self.response_id = msg.id.map(Cow::into_owned);
        }
        if let Some(choice) = &msg.choice {
            match self.last_choice {
                None => self.first_choice = Some(now),
                Some(last) => self.itl_ms.push(ms(now - last)),
            }
            self.last_choice = Some(now);
            let content = choice
                .delta
                .as_ref()
                .and_then(|d| d.content.as_deref().or(d.reasoning_content.as_deref()))
                .or(choice.text.as_deref());
            if let Some(c) = content.filter(|c| !c.is_empty()) {
                self.content_chunks += 1;
                self.hasher.update(c.as_bytes());
                self.text.push_str(c);
            }
            if let Some(reason) = &choice.finish_reason {
                self.finish_reason = Some(reason.to_string());
            }
            match msg.usage.and_then(|u| u.completion_tokens) {
                Some(so_far) => {
                    self.chunk_tokens.push(so_far.saturating_sub(self.last_completion_tokens));
                    self.last_completion_tokens = so_far;
                }
                None => self.chunk_tokens_complete = false,
            }
        }
        if let Some(usage) = msg.usage {
            self.usage = Some(usage);
        }
        // A server that ignores max_tokens would stream until the request
        // timeout (ten minutes by default): stop it as soon as it is certain.
        // Chunks may split tokens, hence the slack.
        let limit = self.asked.saturating_mul(2).saturating_add(16);
        let tokens = msg.usage.and_then(|u| u.completion_tokens).unwrap_or(0).max(self.content_chunks);
        if tokens > limit {
            self.fail(
                ErrorClass::BadResponse,
                format!(
                    "the server sent more than {limit} tokens for the {} asked for: it does not honour max_tokens",
                    self.asked
                ),
            );
        }
    }

    fn finish(self) -> RequestRecord {
        let mut error = self.error;
        if error.is_none() && self.first_choice.is_none() {
            let (class, message) = if self.done {
                (ErrorClass::BadResponse, "the stream carried no choices".to_string())
            } else {
                (ErrorClass::StreamCut, "the stream ended before any output".to_string())
            };
            error = Some(RequestError { class, status: None, message });
        }
        if error.is_none() && !self.done && self.finish_reason.is_none() {
            error = Some(RequestError {
                class: ErrorClass::StreamCut,
                status: None,
                message: "the stream ended without a finish_reason or [DONE]".into(),
            });
        }
        let usage_tokens = self.usage.and_then(|u| u.completion_tokens);
        let (output_tokens, source) = match usage_tokens {
            Some(t) => (Some(t), TokenSource::Usage),
            None => (self.first_choice.map(|_| self.content_chunks), TokenSource::ChunkCount),
        };
        let ttft_ms = self.first_choice.map(|t| ms(t - self.start));
        let e2e_ms = self.last_choice.map(|t| ms(t - self.start));
        let (tpot_ms, decode_tps) = match (ttft_ms, e2e_ms, output_tokens) {
            (Some(ttft), Some(e2e), Some(n)) if n > 1 && e2e > ttft => {
                let tpot = (e2e - ttft) / f64::from(n - 1);
                (Some(round_ms(tpot)), Some(1000.0 / tpot))
            }
            _ => (None, None),
        };
        let tokens_per_second = match (e2e_ms, output_tokens) {
            (Some(e2e), Some(n)) if e2e > 0.0 => Some(f64::from(n) * 1000.0 / e2e),
            _ => None,
        };
        let has_output = self.first_choice.is_some();
        let chunk_tokens = (self.chunk_tokens_complete && !self.chunk_tokens.is_empty()).then_some(self.chunk_tokens);
        RequestRecord {
            index: 0,
            start_ms: 0.0,
            ok: error.is_none(),
            error,
            ttft_ms,
            e2e_ms,
            tpot_ms,
            itl_ms: self.itl_ms,
            chunk_tokens,
            prompt_tokens: self.usage.and_then(|u| u.prompt_tokens),
            output_tokens,
            output_tokens_source: source,
            finish_reason: self.finish_reason,
            done_received: self.done,
            tokens_per_second,
            decode_tokens_per_second: decode_tps,
            response_id: self.response_id,
            output_sha256: has_output.then(|| hex::encode(self.hasher.finalize())),
            output_text: has_output.then_some(self.text),
            attempts: 1,
            retries: Vec::new(),
        }
    }
}

/// Milliseconds, rounded to the microsecond: finer digits are noise and bloat the file.
fn ms(d: Duration) -> f64 {
    round_ms(d.as_secs_f64() * 1000.0)
}

fn round_ms(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// A short, printable excerpt of untrusted bytes.
pub fn excerpt(bytes: &[u8]) -> String {
    const MAX: usize = 200;
    let s = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX)]);
    let mut out: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if bytes.len() > MAX {
        out.push_str("...");
    }
    out
}

async fn read_excerpt(resp: &mut reqwest::Response) -> String {
    let mut buf = Vec::new();
    let read = async {
        while buf.len() < 1024 {
            match resp.chunk().await {
                Ok(Some(c)) => buf.extend_from_slice(&c),
                _ => break,
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), read).await;
    excerpt(&buf)
}

fn classify_reqwest(e: reqwest::Error) -> RequestError {
    if crate::http::is_malformed_response(&e) {
        // Not a connection problem: the server answered, with something that
        // is not HTTP (a response head too large, a broken header).
        return RequestError {
            class: ErrorClass::BadResponse,
            status: None,
            message: format!("the answer is not valid HTTP: {}", error_chain(&e)),
        };
    }
    let class = if e.is_connect() {
        ErrorClass::Connect
    } else if e.is_timeout() {
        ErrorClass::Timeout
    } else if e.is_body() || e.is_decode() {
        ErrorClass::StreamCut
    } else {
        ErrorClass::Connect
    };
    RequestError { class, status: None, message: error_chain(&e) }
}

/// An error and its causes on one line (reqwest hides the useful part in `source`).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let msg = c.to_string();
        if !s.contains(&msg) {
            s.push_str(": ");
            s.push_str(&msg);
        }
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(events: &[&str]) -> RequestRecord {
        let start = Instant::now();
        let mut m = Measurement::new(start, 3);
        for (i, e) in events.iter().enumerate() {
            let t = start + Duration::from_millis(10 * (i as u64 + 1));
            m.on_event(Event { event: None, data: e.as_bytes() }, t, false);
        }
        m.finish()
    }

    const ROLE: &str = r#"{"id":"c1","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#;
    const A: &str = r#"{"id":"c1","choices":[{"index":0,"delta":{"content":"a"}}]}"#;
    const B: &str = r#"{"id":"c1","choices":[{"index":0,"delta":{"content":"b"},"finish_reason":"length"}]}"#;
    const USAGE: &str = r#"{"id":"c1","choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3}}"#;

    #[test]
    fn vllm_stream_definitions() {
        let r = feed(&[ROLE, A, B, USAGE, "[DONE]"]);
        assert!(r.ok, "{:?}", r.error);
        assert_eq!(r.ttft_ms, Some(10.0));
        // E2E stops at the last choice-bearing message, not the usage chunk.
        assert_eq!(r.e2e_ms, Some(30.0));
        assert_eq!(r.itl_ms, vec![10.0, 10.0]);
        assert_eq!(r.output_tokens, Some(3));
        assert_eq!(r.prompt_tokens, Some(7));
        assert_eq!(r.output_tokens_source, TokenSource::Usage);
        assert_eq!(r.tpot_ms, Some(10.0));
        assert_eq!(r.tokens_per_second, Some(100.0));
        assert_eq!(r.decode_tokens_per_second, Some(100.0));
        assert_eq!(r.finish_reason.as_deref(), Some("length"));
        assert_eq!(r.output_text.as_deref(), Some("ab"));
        assert_eq!(r.response_id.as_deref(), Some("c1"));
        assert!(r.done_received);
    }

    #[test]
    fn missing_usage_is_flagged_not_guessed() {
        let r = feed(&[ROLE, A, B, "[DONE]"]);
        assert!(r.ok);
        assert_eq!(r.output_tokens_source, TokenSource::ChunkCount);
        assert_eq!(r.output_tokens, Some(2));
        assert_eq!(r.prompt_tokens, None);
    }

    #[test]
    fn missing_done_after_finish_reason_is_accepted() {
        let r = feed(&[ROLE, A, B, USAGE]);
        assert!(r.ok);
        assert!(!r.done_received);
    }

    #[test]
    fn cut_stream_is_an_error() {
        let r = feed(&[ROLE, A]);
        assert!(!r.ok);
        assert_eq!(r.error.unwrap().class, ErrorClass::StreamCut);
        let r = feed(&[]);
        assert_eq!(r.error.unwrap().class, ErrorClass::StreamCut);
    }

    #[test]
    fn malformed_event_is_classified() {
        let r = feed(&[ROLE, "{not json", B]);
        let e = r.error.unwrap();
        assert_eq!(e.class, ErrorClass::MalformedEvent);
        assert!(e.message.contains("{not json"));
        let r = feed(&[r#"{"choices":"nope"}"#]);
        assert_eq!(r.error.unwrap().class, ErrorClass::MalformedEvent);
    }

    #[test]
    fn error_object_in_stream() {
        let r = feed(&[ROLE, r#"{"error":{"message":"out of memory","code":500}}"#]);
        let e = r.error.unwrap();
        assert_eq!(e.class, ErrorClass::ServerError);
        assert!(e.message.contains("out of memory"));
    }

    #[test]
    fn completions_text_and_continuous_usage() {
        let r = feed(&[
            r#"{"id":"x","choices":[{"text":"ab"}],"usage":{"completion_tokens":2}}"#,
            r#"{"id":"x","choices":[{"text":"c","finish_reason":"length"}],"usage":{"completion_tokens":3}}"#,
            r#"{"id":"x","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":3}}"#,
            "[DONE]",
        ]);
        assert!(r.ok);
        assert_eq!(r.chunk_tokens, Some(vec![2, 1]));
        assert_eq!(r.output_text.as_deref(), Some("abc"));
        assert_eq!(r.tpot_ms, Some(5.0));
    }

    #[test]
    fn llama_cpp_null_content_role_chunk() {
        let r =
            feed(&[r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":null}}]}"#, A, B, USAGE, "[DONE]"]);
        assert!(r.ok);
        assert_eq!(r.ttft_ms, Some(10.0));
        assert_eq!(r.output_text.as_deref(), Some("ab"));
    }

    #[test]
    fn done_without_choices_is_bad_response() {
        let r = feed(&[USAGE, "[DONE]"]);
        assert_eq!(r.error.unwrap().class, ErrorClass::BadResponse);
    }

    #[test]
    fn body_has_the_fields_servers_need() {
        let g = Generation { max_tokens: 5, ignore_eos: true, min_tokens: true, continuous_usage: false, stream: true };
        let v: serde_json::Value = serde_json::from_slice(&request_body("m", Api::Chat, "hi", g)).unwrap();
        assert_eq!(v["messages"][0]["content"], "hi");
        assert_eq!(v["max_tokens"], 5);
        assert_eq!(v["max_completion_tokens"], 5);
        assert_eq!(v["min_tokens"], 5);
        assert_eq!(v["ignore_eos"], true);
        assert_eq!(v["stream_options"]["include_usage"], true);
        assert_eq!(v["temperature"], 0.0);
        let v: serde_json::Value = serde_json::from_slice(&request_body(
            "m",
            Api::Completions,
            "hi",
            Generation { ignore_eos: false, min_tokens: false, ..g },
        ))
        .unwrap();
        assert_eq!(v["prompt"], "hi");
        assert!(v.get("ignore_eos").is_none() && v.get("min_tokens").is_none() && v.get("messages").is_none());
    }

    #[test]
    fn secret_is_redacted() {
        let s = Secret::new("sk-very-secret".into());
        assert!(!format!("{s:?}").contains("very"));
    }

    #[test]
    fn client_and_config_debug_hide_the_key() {
        const KEY: &str = "sk-DebugMustNotShowThis-0123456789";
        let config = ClientConfig {
            base_url: "http://127.0.0.1:9".into(),
            model: "m".into(),
            api: Api::Chat,
            api_key: Some(Secret::new(KEY.into())),
            request_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(1),
            max_event_bytes: 1024,
        };
        let client = Client::new(config.clone()).unwrap();
        for shown in [format!("{config:?}"), format!("{config:#?}"), format!("{client:?}")] {
            assert!(!shown.contains(KEY) && !shown.contains("DebugMustNot"), "{shown}");
            assert!(shown.contains("<redacted>"), "{shown}");
        }
    }

    #[test]
    fn redaction_blanks_the_key_and_a_cut_off_start_of_it() {
        let s = Secret::new("sk-abcdef123456".into());
        assert_eq!(s.redact("Bearer sk-abcdef123456 sk-abcdef123456."), "Bearer <redacted> <redacted>.");
        // An excerpt cut inside the key: its start is blanked too.
        assert_eq!(s.redact("HTTP 401: Bearer sk-abcd..."), "HTTP 401: Bearer <redacted>...");
        let cut = excerpt(format!("{}Bearer sk-abcdef123456", "x".repeat(186)).as_bytes());
        assert!(cut.ends_with("Bearer sk-abcd..."), "{cut}");
        assert!(s.redact(&cut).ends_with("xBearer <redacted>..."), "{}", s.redact(&cut));
        // Streamed in chunks, a key across a chunk boundary is found too.
        let log = format!("{}sk-abcdef123456{}SK-ABCDEF123456 end", "x".repeat((1 << 20) - 5), "y".repeat(1 << 20));
        let mut out = Vec::new();
        assert!(s.redact_stream(log.as_bytes(), &mut out).unwrap());
        assert_eq!(out, s.redact_bytes(log.as_bytes()).unwrap());
        let mut out = Vec::new();
        assert!(!s.redact_stream(&b"nothing here"[..], &mut out).unwrap());
        assert_eq!(out, b"nothing here");
        // Echoed back in another case, it is the key all the same.
        assert_eq!(s.redact("AUTHORIZATION: BEARER SK-ABCDEF123456"), "AUTHORIZATION: BEARER <redacted>");
        assert_eq!(s.redact_bytes(b"x Sk-AbCdEf123456 y").unwrap(), b"x <redacted> y");
        // Text without the key, and a key too short to cut, stay as they are.
        assert_eq!(s.redact("no key here..."), "no key here...");
        assert_eq!(s.redact("ends in sk-..."), "ends in sk-...");
        assert_eq!(Secret::new(String::new()).redact("x"), "x");
        let client = |key: Option<&str>| {
            Client::new(ClientConfig {
                base_url: "http://127.0.0.1:9".into(),
                model: "m".into(),
                api: Api::Chat,
                api_key: key.map(|k| Secret::new(k.into())),
                request_timeout: Duration::from_secs(1),
                idle_timeout: Duration::from_secs(1),
                max_event_bytes: 1024,
            })
            .unwrap()
        };
        assert_eq!(client(Some("sk-abcdef123456")).redact("a sk-abcdef123456 b"), "a <redacted> b");
        assert_eq!(client(None).redact("a sk-abcdef123456 b"), "a sk-abcdef123456 b");
        assert_eq!(s.redact_bytes(b"\xffsk-abcdef123456\nsk-abcdef123456").unwrap(), b"\xff<redacted>\n<redacted>");
        assert_eq!(s.redact_bytes(b"nothing"), None);
    }
}
