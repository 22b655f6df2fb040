//! Posting the report to a pull request on GitHub (or GitHub Enterprise).
//!
//! One sticky comment per profile: found by a hidden marker and by its
//! author, updated in place, never duplicated (see [`post_sticky_comment`]).
//! Plain reqwest (the client the rest of infergate uses) is enough: five
//! requests, each sent with the token, GitHub's API version and a JSON body,
//! and read with the status and headers of a failure in view, so that
//! retrying honours `Retry-After` and `x-ratelimit-reset`. octocrab served
//! the same requests through its raw methods only, at the cost of the
//! largest compile unit of the build.

mod comment;
mod pulls;
pub mod truncate;

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::{self, HeaderMap, HeaderValue};
use serde::Deserialize;

/// The body as posted, for the report's snapshot tests.
#[cfg(test)]
pub(crate) use comment::comment_body;
pub use comment::{CommentOutcome, MAX_COMMENT_CHARS, marker, post_sticky_comment};
pub use pulls::{RunHead, pull_request_of_run};

/// Where to comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// REST API root: `https://api.github.com`, or `https://HOST/api/v3` on GHES (`GITHUB_API_URL`).
    pub api_url: String,
    /// Owner of the repository (user or organisation).
    pub owner: String,
    /// Name of the repository.
    pub repo: String,
    /// Number of the pull request.
    pub pr: u64,
}

/// A GitHub token that never appears in Debug output, Display, logs or error messages.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    /// Wraps a token; surrounding whitespace (a newline from a file or a
    /// secret) is dropped, since it would make the header invalid.
    pub fn new(value: String) -> Token {
        Token(value.trim().to_string())
    }

    fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the token can be sent in an HTTP header at all.
    fn is_header_safe(&self) -> bool {
        !self.0.is_empty() && self.0.bytes().all(|b| b.is_ascii_graphic())
    }

    /// `text` with every occurrence of the token blanked out.
    fn redact(&self, text: &str) -> String {
        if self.0.is_empty() { text.to_string() } else { text.replace(&self.0, "<redacted>") }
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// The largest reply read from GitHub (64 MiB): a page of 100 comments of
/// 65,536 characters each is at most about 26 MB.
pub const MAX_REPLY_BYTES: usize = 64 << 20;

/// Most of an error reply read; the message keeps the start of it.
const MAX_ERROR_REPLY_BYTES: usize = 64 << 10;

/// The longest one request may take, its reply included: the read timeout
/// ([`READ_TIMEOUT`]) ends a silence, not a reply that trickles in.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// The longest wait for a connection to GitHub.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest silence while sending a request or reading its reply.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The REST API version the requests are written against.
const API_VERSION: &str = "2022-11-28";

/// The permissions block a workflow needs to comment on pull requests.
pub const PERMISSIONS_HINT: &str = "permissions:\n  pull-requests: write";

/// What went wrong talking to GitHub; each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum GithubError {
    /// 403: the token may not write the comment.
    #[error(
        "GitHub refused the request (403 Forbidden: {detail}). The token needs write access to pull requests; \
         add this to the workflow or job:\n\n{permissions_hint}\n\n(`issues: write` also allows PR comments.) \
         Pull requests from forks only get a read-only token: post the comment from a `workflow_run` workflow."
    )]
    Forbidden {
        /// The YAML block to add to the workflow.
        permissions_hint: String,
        /// The request and GitHub's message.
        detail: String,
    },
    /// 403 on a locked conversation: no permission helps.
    #[error(
        "GitHub refused the comment because the pull request's conversation is locked ({detail}); unlock it, or \
         read the report in the job summary"
    )]
    Locked {
        /// The request and GitHub's message.
        detail: String,
    },
    /// 422: GitHub understood the request and refused its content.
    #[error(
        "GitHub refused the request as unprocessable (422: {detail}); the pull request may be closed or the body \
         rejected: rerun with -v to see the request"
    )]
    Unprocessable {
        /// The request and GitHub's message (its `errors` list included).
        detail: String,
    },
    /// 404: the repository or pull request does not exist, or the token cannot see it.
    #[error(
        "GitHub found no such repository or pull request ({detail}). Check the owner/name and the PR number; \
         for a private repository the token must have access to it."
    )]
    NotFound {
        /// The request and GitHub's message.
        detail: String,
    },
    /// Still rate limited after the bounded retries, or asked to wait longer than allowed.
    #[error("GitHub's rate limit was hit ({detail}). Retry later, or allow a longer wait.")]
    RateLimited {
        /// The request, the limit and how long GitHub asked to wait.
        detail: String,
    },
    /// 5xx after the retries.
    #[error("GitHub failed with {status} after retries ({detail}). GitHub may be degraded: rerun the job later.")]
    Server {
        /// The last status code.
        status: u16,
        /// The request and GitHub's message.
        detail: String,
    },
    /// Anything else: bad credentials, an unreachable host, an unexpected reply.
    #[error("{0}")]
    Other(String),
}

/// Options of the poster.
#[derive(Debug, Clone)]
pub struct PostOptions {
    /// Retries after the first attempt, for 5xx, rate limits and network errors.
    pub max_retries: u32,
    /// Longest single wait honoured for `Retry-After` or a rate-limit reset; a longer one fails at once.
    pub max_wait: Duration,
    /// First delay of the exponential backoff when GitHub names none.
    pub base_delay: Duration,
    /// The workflow run, linked from the note when the body must be truncated.
    pub run_url: Option<String>,
    /// The wait after a rate limit that names none (GitHub's secondary
    /// limits): GitHub asks for at least a minute. Longer than `max_wait`,
    /// the request fails at once instead.
    pub secondary_wait: Duration,
    /// The language of the note that says the body was cut (the marker is the same in every language).
    pub lang: crate::report::Lang,
}

impl Default for PostOptions {
    fn default() -> Self {
        Self {
            max_retries: 3,
            max_wait: Duration::from_secs(60),
            base_delay: Duration::from_secs(1),
            run_url: None,
            secondary_wait: Duration::from_secs(60),
            lang: crate::report::Lang::En,
        }
    }
}

/// Splits `owner/name` (as in `GITHUB_REPOSITORY`) into its two parts.
pub fn parse_repo(s: &str) -> Result<(String, String), String> {
    let bad = || format!("expected a repository as OWNER/NAME (e.g. `octo-org/serving`), got `{s}`");
    let (owner, name) = s.trim().split_once('/').ok_or_else(bad)?;
    if !valid_name(owner) || !valid_name(name) {
        return Err(bad());
    }
    Ok((owner.to_string(), name.to_string()))
}

/// GitHub's owner and repository names: letters, digits, `-`, `_`, `.`.
/// Checked before they become part of a request path.
fn valid_name(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// One request to make: the retry loop needs to send it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Post,
    Patch,
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Patch => "PATCH",
        })
    }
}

/// The outcome of one attempt.
enum Attempt {
    /// 2xx, with the body.
    Done(String),
    /// Not worth retrying.
    Fatal(GithubError),
    /// Worth retrying after `wait`; `error` is what to report if no retry is left.
    Retry { wait: Duration, error: GithubError },
}

/// The HTTP client plus the retry policy and the token (for scrubbing messages).
struct Api<'a> {
    http: reqwest::Client,
    token: &'a Token,
    opts: &'a PostOptions,
    api_url: &'a str,
}

impl<'a> Api<'a> {
    fn new(target: &'a Target, token: &'a Token, opts: &'a PostOptions) -> Result<Self, GithubError> {
        if !valid_name(&target.owner) || !valid_name(&target.repo) {
            return Err(GithubError::Other(format!(
                "`{}/{}` is not a valid GitHub repository name (expected OWNER/NAME of letters, digits, `-`, `_`, `.`)",
                target.owner, target.repo
            )));
        }
        if !token.is_header_safe() {
            return Err(GithubError::Other(
                "the GitHub token is empty or contains characters a token cannot have; check GITHUB_TOKEN".into(),
            ));
        }
        let base = target.api_url.trim_end_matches('/');
        let invalid = |why: &str| {
            GithubError::Other(format!(
                "invalid GitHub API URL `{base}` ({why}); expected e.g. https://api.github.com or https://HOST/api/v3"
            ))
        };
        let url = reqwest::Url::parse(base).map_err(|e| invalid(&e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(invalid("not an http(s) URL with a host"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid("a query or fragment has no place in it"));
        }
        let mut headers = HeaderMap::new();
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
            .map_err(|_| GithubError::Other("the GitHub token cannot be sent in an HTTP header".into()))?;
        auth.set_sensitive(true);
        headers.insert(header::AUTHORIZATION, auth);
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/vnd.github+json"));
        headers.insert("x-github-api-version", HeaderValue::from_static(API_VERSION));
        // Every request goes to this one host: no redirect is followed (a
        // moved repository is reported, not chased), so the token never
        // travels anywhere else.
        let http = crate::http::client_builder()
            .default_headers(headers)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .build()
            .map_err(|e| {
                GithubError::Other(
                    token.redact(&format!("could not build the GitHub client: {}", crate::client::error_chain(&e))),
                )
            })?;
        Ok(Self { http, token, opts, api_url: base })
    }

    /// The URL of `path`: a path (and query) under the API root, or an
    /// absolute URL on the same host (GraphQL's endpoint).
    fn url(&self, path: &str) -> String {
        if path.starts_with("https://") || path.starts_with("http://") {
            path.to_string()
        } else {
            format!("{}{path}", self.api_url)
        }
    }

    /// Sends the request, retrying 5xx, rate limits and network errors.
    /// Only for idempotent requests: a create goes through [`Api::attempt`].
    async fn send(&self, method: Method, path: &str, body: Option<&serde_json::Value>) -> Result<String, GithubError> {
        let mut retry = 0;
        loop {
            match self.attempt(method, path, body, retry).await {
                Attempt::Done(text) => return Ok(text),
                Attempt::Fatal(error) => return Err(error),
                Attempt::Retry { wait, error } => {
                    if retry >= self.opts.max_retries {
                        return Err(error);
                    }
                    retry += 1;
                    tracing::warn!("{error}; retry {retry} of {} in {} ms", self.opts.max_retries, wait.as_millis());
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// One try of the request, within [`REQUEST_TIMEOUT`]; `retry` (0 for
    /// the first) sizes the backoff.
    async fn attempt(&self, method: Method, path: &str, body: Option<&serde_json::Value>, retry: u32) -> Attempt {
        match tokio::time::timeout(REQUEST_TIMEOUT, self.attempt_untimed(method, path, body, retry)).await {
            Ok(attempt) => attempt,
            Err(_) => Attempt::Retry {
                wait: self.backoff(retry),
                error: GithubError::Other(format!(
                    "GitHub did not answer {method} {path} within {} s",
                    REQUEST_TIMEOUT.as_secs()
                )),
            },
        }
    }

    async fn attempt_untimed(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
        retry: u32,
    ) -> Attempt {
        let what = format!("{method} {path}");
        tracing::debug!("GitHub: {what}");
        let mut request = match method {
            Method::Get => self.http.get(self.url(path)),
            Method::Post => self.http.post(self.url(path)),
            Method::Patch => self.http.patch(self.url(path)),
        };
        if let Some(body) = body {
            let bytes = match serde_json::to_vec(body) {
                Ok(bytes) => bytes,
                Err(e) => return Attempt::Fatal(GithubError::Other(format!("could not encode {what}: {e}"))),
            };
            request = request.header(header::CONTENT_TYPE, "application/json").body(bytes);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) if crate::http::is_malformed_response(&e) => {
                // GitHub (or a proxy before it) answered with something that
                // is not HTTP, such as a response head too large: sending
                // again would only repeat it.
                let chain = crate::client::error_chain(&e);
                return Attempt::Fatal(GithubError::Other(
                    self.token.redact(&format!("GitHub's answer to {what} is not valid HTTP: {chain}")),
                ));
            }
            Err(e) if e.is_builder() => {
                let chain = crate::client::error_chain(&e);
                return Attempt::Fatal(GithubError::Other(
                    self.token.redact(&format!("could not make the request {what} to GitHub: {chain}")),
                ));
            }
            Err(e) => {
                let chain = crate::client::error_chain(&e);
                let error = GithubError::Other(
                    self.token.redact(&format!("could not reach GitHub at {} ({what}): {chain}", self.api_url)),
                );
                return Attempt::Retry { wait: self.backoff(retry), error };
            }
        };
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let ok = (200..300).contains(&status);
        let limit = if ok { MAX_REPLY_BYTES } else { MAX_ERROR_REPLY_BYTES };
        let text = match read_limited(response, limit).await {
            Ok(Reply::Whole(bytes)) if ok => match String::from_utf8(bytes) {
                Ok(text) => text,
                Err(_) => return Attempt::Fatal(GithubError::Other(format!("GitHub's reply to {what} is not UTF-8"))),
            },
            Ok(Reply::Whole(bytes) | Reply::Cut(bytes)) if !ok => String::from_utf8_lossy(&bytes).into_owned(),
            Ok(_) => {
                return Attempt::Fatal(GithubError::Other(format!(
                    "GitHub's reply to {what} is over {}, more than any page of comments",
                    crate::input::size_text(MAX_REPLY_BYTES as u64)
                )));
            }
            Err(e) => {
                let chain = crate::client::error_chain(&e);
                let error =
                    GithubError::Other(self.token.redact(&format!("reading GitHub's reply to {what}: {chain}")));
                return Attempt::Retry { wait: self.backoff(retry), error };
            }
        };
        if ok {
            return Attempt::Done(text);
        }
        let detail = self.token.redact(&format!("{what}: {}", error_message(&text, status)));
        if is_rate_limited(status, &headers, &text) {
            return match rate_limit_wait(&headers, SystemTime::now()) {
                Some(wait) if wait > self.opts.max_wait => Attempt::Fatal(GithubError::RateLimited {
                    detail: format!(
                        "{detail}; GitHub asks to wait {} s, longer than the {} s allowed",
                        wait.as_secs(),
                        self.opts.max_wait.as_secs()
                    ),
                }),
                Some(wait) => Attempt::Retry { wait, error: GithubError::RateLimited { detail } },
                // A secondary limit without a wait: at least the minute GitHub asks for.
                None if self.opts.secondary_wait > self.opts.max_wait => Attempt::Fatal(GithubError::RateLimited {
                    detail: format!(
                        "{detail}; a secondary rate limit asks to wait at least {} s, longer than the {} s allowed",
                        self.opts.secondary_wait.as_secs(),
                        self.opts.max_wait.as_secs()
                    ),
                }),
                None => Attempt::Retry {
                    wait: self.opts.secondary_wait.max(self.backoff(retry)).min(self.opts.max_wait),
                    error: GithubError::RateLimited { detail },
                },
            };
        }
        match status {
            // A locked conversation refuses comments whatever the token may do.
            403 if text.to_ascii_lowercase().contains("locked") => Attempt::Fatal(GithubError::Locked { detail }),
            422 => Attempt::Fatal(GithubError::Unprocessable { detail }),
            401 => Attempt::Fatal(GithubError::Other(format!(
                "GitHub rejected the token (401 Unauthorized, {detail}); check that GITHUB_TOKEN is set and not expired"
            ))),
            403 => Attempt::Fatal(GithubError::Forbidden { permissions_hint: PERMISSIONS_HINT.to_string(), detail }),
            404 => Attempt::Fatal(GithubError::NotFound { detail }),
            500..=599 => {
                let wait = retry_after(&headers).map_or_else(|| self.backoff(retry), |w| w.min(self.opts.max_wait));
                Attempt::Retry { wait, error: GithubError::Server { status, detail } }
            }
            _ => Attempt::Fatal(GithubError::Other(format!("GitHub answered {status} to {detail}"))),
        }
    }

    /// GitHub's GraphQL endpoint beside this REST base: `https://api.github.com/graphql`,
    /// and on GitHub Enterprise `https://HOST/api/graphql` beside `https://HOST/api/v3`.
    fn graphql_url(&self) -> String {
        match self.api_url.strip_suffix("/api/v3") {
            Some(host) => format!("{host}/api/graphql"),
            None => format!("{}/graphql", self.api_url),
        }
    }

    /// `base_delay * 2^retry`, never above `max_wait`.
    fn backoff(&self, retry: u32) -> Duration {
        self.opts.base_delay.saturating_mul(1u32 << retry.min(16)).min(self.opts.max_wait)
    }
}

/// A reply body read up to a limit.
enum Reply {
    /// All of it.
    Whole(Vec<u8>),
    /// The first `limit` bytes of a longer one.
    Cut(Vec<u8>),
}

/// Reads the body of `response` up to `limit` bytes; the rest is never read.
async fn read_limited(mut response: reqwest::Response, limit: usize) -> Result<Reply, reqwest::Error> {
    let mut out = Vec::new();
    while let Some(data) = response.chunk().await? {
        if out.len() + data.len() > limit {
            out.extend_from_slice(&data[..limit - out.len()]);
            return Ok(Reply::Cut(out));
        }
        out.extend_from_slice(&data);
    }
    Ok(Reply::Whole(out))
}

/// GitHub's error body: `{"message": ..., "documentation_url": ...}`.
#[derive(Deserialize)]
struct ErrorBody {
    message: Option<String>,
    /// 422's details: `[{"field": "body", "message": "body is too long ..."}]`.
    #[serde(default)]
    errors: Vec<serde_json::Value>,
}

/// The message of an error reply, short enough for one line (with a 422's
/// details after it), server text made inert.
fn error_message(text: &str, status: u16) -> String {
    let parsed = serde_json::from_str::<ErrorBody>(text).ok();
    let details: Vec<String> = parsed
        .as_ref()
        .map(|b| {
            b.errors
                .iter()
                .filter_map(|e| e.get("message").or_else(|| e.get("code")).and_then(|m| m.as_str()))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let full = parsed.and_then(|b| b.message).unwrap_or_else(|| {
        let trimmed = text.trim();
        if trimmed.is_empty() { format!("HTTP {status}") } else { trimmed.to_string() }
    });
    let full = if details.is_empty() { full } else { format!("{full}: {}", details.join("; ")) };
    let full = crate::text::inert(&full).into_owned();
    let mut message: String = full.chars().take(300).collect();
    if full.chars().count() > 300 {
        message.push('…');
    }
    message
}

/// 429, or a 403 that is a primary (`x-ratelimit-remaining: 0`) or secondary
/// (`Retry-After`, "secondary rate limit") rate limit rather than a permission problem.
fn is_rate_limited(status: u16, headers: &HeaderMap, text: &str) -> bool {
    match status {
        429 => true,
        403 => {
            header_str(headers, "x-ratelimit-remaining").is_some_and(|v| v.trim() == "0")
                || headers.contains_key("retry-after")
                || text.to_ascii_lowercase().contains("rate limit")
        }
        _ => false,
    }
}

/// How long GitHub asks to wait: `Retry-After` (seconds), else the time until
/// `x-ratelimit-reset` (epoch seconds) when the limit is used up.
fn rate_limit_wait(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    if let Some(wait) = retry_after(headers) {
        return Some(wait);
    }
    let exhausted = header_str(headers, "x-ratelimit-remaining").is_some_and(|v| v.trim() == "0");
    let reset: u64 = header_str(headers, "x-ratelimit-reset")?.trim().parse().ok()?;
    if !exhausted {
        return None;
    }
    let now = now.duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(reset.saturating_sub(now)))
}

/// `Retry-After` in seconds (GitHub never sends the HTTP-date form).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    header_str(headers, "retry-after")?.trim().parse::<u64>().ok().map(Duration::from_secs)
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name)?.to_str().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[test]
    fn parse_repo_accepts_owner_slash_name_only() {
        assert_eq!(parse_repo("octo-org/serving.rs"), Ok(("octo-org".into(), "serving.rs".into())));
        assert_eq!(parse_repo(" a/b \n"), Ok(("a".into(), "b".into())));
        for bad in ["", "a", "a/", "/b", "a/b/c", "a b/c", "../x", "a/..", "a/b?x=1"] {
            let err = parse_repo(bad).unwrap_err();
            assert!(err.contains("OWNER/NAME"), "{bad}: {err}");
        }
    }

    #[test]
    fn token_is_trimmed_redacted_and_checked() {
        let t = Token::new("ghp_secret123\n".into());
        assert_eq!(t.expose(), "ghp_secret123");
        assert_eq!(format!("{t:?}"), "Token(<redacted>)");
        assert_eq!(t.redact("x ghp_secret123 y"), "x <redacted> y");
        assert!(t.is_header_safe());
        assert!(!Token::new("a\nb".into()).is_header_safe());
        assert!(!Token::new("  ".into()).is_header_safe());
        assert!(!Token::new("tøken".into()).is_header_safe());
    }

    #[test]
    fn rate_limits_are_told_from_permission_errors() {
        assert!(is_rate_limited(429, &HeaderMap::new(), ""));
        assert!(is_rate_limited(403, &headers(&[("x-ratelimit-remaining", "0")]), ""));
        assert!(is_rate_limited(403, &headers(&[("retry-after", "5")]), ""));
        assert!(is_rate_limited(403, &HeaderMap::new(), r#"{"message":"You have exceeded a secondary rate limit"}"#));
        assert!(!is_rate_limited(403, &headers(&[("x-ratelimit-remaining", "4999")]), r#"{"message":"nope"}"#));
        assert!(!is_rate_limited(500, &headers(&[("retry-after", "5")]), ""));
    }

    #[test]
    fn waits_come_from_retry_after_then_reset() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        assert_eq!(rate_limit_wait(&headers(&[("retry-after", "7")]), now), Some(Duration::from_secs(7)));
        let reset = headers(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "1030")]);
        assert_eq!(rate_limit_wait(&reset, now), Some(Duration::from_secs(30)));
        let past = headers(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "900")]);
        assert_eq!(rate_limit_wait(&past, now), Some(Duration::ZERO));
        let not_exhausted = headers(&[("x-ratelimit-remaining", "3"), ("x-ratelimit-reset", "1030")]);
        assert_eq!(rate_limit_wait(&not_exhausted, now), None);
        assert_eq!(rate_limit_wait(&headers(&[("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")]), now), None);
    }

    #[test]
    fn error_message_prefers_githubs_message() {
        assert_eq!(error_message(r#"{"message":"Not Found","documentation_url":"x"}"#, 404), "Not Found");
        assert_eq!(error_message("", 502), "HTTP 502");
        assert_eq!(error_message("<html>bad gateway</html>", 502), "<html>bad gateway</html>");
        assert_eq!(error_message(&"x".repeat(1000), 500).chars().count(), 301);
    }

    #[test]
    fn forbidden_message_prints_the_permissions_block() {
        let e = GithubError::Forbidden { permissions_hint: PERMISSIONS_HINT.into(), detail: "POST /x: no".into() };
        let msg = e.to_string();
        assert!(msg.contains("\n\npermissions:\n  pull-requests: write\n\n"), "{msg}");
        assert!(msg.contains("issues: write"));
    }
}
