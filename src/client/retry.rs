//! Retries, only where sending again cannot distort what is measured.
//!
//! Two failures are retried: a connection that could not be made, or that
//! closed before any byte of an answer (class `connect`); and `429 Too Many
//! Requests` with a `Retry-After` the run can afford. Everything else (an
//! error status, a broken or silent stream, a timeout) is recorded as it is:
//! the server did answer, and a second try would hide what it did. Retries
//! are bounded by a count, a longest wait and the run's deadline; each one is
//! recorded on the request ([`RetriedAttempt`]), whose measurement is the last
//! attempt's.

use std::time::{Duration, Instant, SystemTime};

use super::{Client, PreparedRequest};
use crate::results::{ErrorClass, RequestRecord, RetriedAttempt};

/// Default number of retries per request (`[run] retries`).
pub const DEFAULT_RETRIES: u32 = 2;

/// The longest `Retry-After` infergate honours; a server asking for more is
/// not retried (its 429 is recorded).
pub const MAX_RETRY_WAIT: Duration = Duration::from_secs(30);

/// Wait before the first retry of a connect error; doubled for each next one.
const CONNECT_BACKOFF: Duration = Duration::from_millis(250);

/// Longest wait between connect retries.
const MAX_CONNECT_BACKOFF: Duration = Duration::from_secs(2);

/// How a request may be retried.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub retries: u32,
    /// Longest `Retry-After` honoured.
    pub max_wait: Duration,
    /// No retry may start after this instant (the run's deadline).
    pub deadline: Option<Instant>,
}

impl RetryPolicy {
    /// Never retry.
    pub fn none() -> RetryPolicy {
        RetryPolicy { retries: 0, max_wait: MAX_RETRY_WAIT, deadline: None }
    }
}

/// What to do after an attempt.
#[derive(Debug, Clone, PartialEq)]
enum Decision {
    /// Send again after this wait.
    Retry(Duration),
    /// Keep this attempt; the note (if any) says why it was not retried.
    Keep(Option<String>),
}

/// Parses a `Retry-After` value: delta-seconds (`"3"`, `"1.5"`) or an HTTP
/// date (`"Wed, 21 Oct 2015 07:28:00 GMT"`, the wait until then; none for a
/// date already past). Anything else is not usable.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    parse_retry_after_at(value, SystemTime::now())
}

/// [`parse_retry_after`] with the clock's time given.
fn parse_retry_after_at(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (0.0..=1e9).contains(&secs).then(|| Duration::from_secs_f64(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Decides about `record`, the result of attempt number `attempt` (1-based).
fn decide(
    record: &RequestRecord,
    retry_after: Option<Duration>,
    attempt: u32,
    policy: &RetryPolicy,
    now: Instant,
) -> Decision {
    let Some(error) = record.error.as_ref().filter(|_| !record.ok) else {
        return Decision::Keep(None);
    };
    let wait = match (error.class, error.status) {
        (ErrorClass::Connect, _) => {
            let doubled = CONNECT_BACKOFF.saturating_mul(1 << attempt.saturating_sub(1).min(8));
            doubled.min(MAX_CONNECT_BACKOFF)
        }
        (ErrorClass::HttpStatus, Some(429)) => match retry_after {
            None => return Decision::Keep(Some("not retried: the 429 came without a usable Retry-After".into())),
            Some(w) if w > policy.max_wait => {
                return Decision::Keep(Some(format!(
                    "not retried: Retry-After {} s is longer than the {} s infergate waits",
                    w.as_secs_f64(),
                    policy.max_wait.as_secs_f64()
                )));
            }
            Some(w) => w,
        },
        _ => return Decision::Keep(None),
    };
    if attempt > policy.retries {
        return Decision::Keep((attempt > 1).then(|| format!("gave up after {attempt} attempts")));
    }
    if policy.deadline.is_some_and(|d| now + wait >= d) {
        return Decision::Keep(Some("not retried: the run's deadline comes first".into()));
    }
    Decision::Retry(wait)
}

impl Client {
    /// [`Client::measure`] with retries where they are safe (see the module
    /// notes). Never panics, never returns an error.
    pub async fn measure_with_retries(
        &self,
        request: &PreparedRequest,
        epoch: Instant,
        policy: &RetryPolicy,
    ) -> RequestRecord {
        with_retries(policy, || self.measure_once(request, epoch)).await
    }
}

/// Sends with `send` (which returns the record of one attempt and the
/// `Retry-After` of a 429) until an attempt is kept, waiting between them as
/// `policy` says; the kept record carries the attempts and the retried
/// failures. [`Client::measure_with_retries`] with the client's attempts; a
/// test drives it with scripted ones.
pub async fn with_retries<F, A>(policy: &RetryPolicy, mut send: F) -> RequestRecord
where
    F: FnMut() -> A,
    A: std::future::Future<Output = (RequestRecord, Option<Duration>)>,
{
    let mut retried = Vec::new();
    loop {
        let (mut record, retry_after) = send().await;
        let attempt = retried.len() as u32 + 1;
        match decide(&record, retry_after, attempt, policy, Instant::now()) {
            Decision::Retry(wait) => {
                if let Some(e) = record.error {
                    retried.push(RetriedAttempt {
                        class: e.class,
                        status: e.status,
                        message: e.message,
                        wait_ms: (wait.as_secs_f64() * 1e6).round() / 1e3,
                    });
                }
                tokio::time::sleep(wait).await;
            }
            Decision::Keep(note) => {
                if let (Some(note), Some(e)) = (note, record.error.as_mut()) {
                    e.message = format!("{} ({note})", e.message);
                }
                record.attempts = attempt;
                record.retries = retried;
                return record;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::RequestError;

    fn failed(class: ErrorClass, status: Option<u16>) -> RequestRecord {
        let mut r = RequestRecord::cancelled(0, 0.0, "x");
        r.error = Some(RequestError { class, status, message: "m".into() });
        r
    }

    const POLICY: RetryPolicy = RetryPolicy { retries: 2, max_wait: MAX_RETRY_WAIT, deadline: None };

    #[test]
    fn connect_errors_are_retried_with_backoff_until_the_count_runs_out() {
        let r = failed(ErrorClass::Connect, None);
        let now = Instant::now();
        assert_eq!(decide(&r, None, 1, &POLICY, now), Decision::Retry(Duration::from_millis(250)));
        assert_eq!(decide(&r, None, 2, &POLICY, now), Decision::Retry(Duration::from_millis(500)));
        assert_eq!(decide(&r, None, 3, &POLICY, now), Decision::Keep(Some("gave up after 3 attempts".into())));
        assert_eq!(decide(&r, None, 1, &RetryPolicy::none(), now), Decision::Keep(None));
        let many = RetryPolicy { retries: 40, ..POLICY };
        assert_eq!(decide(&r, None, 30, &many, now), Decision::Retry(MAX_CONNECT_BACKOFF));
    }

    #[test]
    fn a_429_waits_its_retry_after_within_the_limits() {
        let r = failed(ErrorClass::HttpStatus, Some(429));
        let now = Instant::now();
        let three = Some(Duration::from_secs(3));
        assert_eq!(decide(&r, three, 1, &POLICY, now), Decision::Retry(Duration::from_secs(3)));
        let Decision::Keep(Some(note)) = decide(&r, None, 1, &POLICY, now) else { panic!() };
        assert!(note.contains("without a usable Retry-After"), "{note}");
        let Decision::Keep(Some(note)) = decide(&r, Some(Duration::from_secs(31)), 1, &POLICY, now) else { panic!() };
        assert!(note.contains("Retry-After 31 s is longer than the 30 s"), "{note}");
        let soon = RetryPolicy { deadline: Some(now + Duration::from_secs(2)), ..POLICY };
        let Decision::Keep(Some(note)) = decide(&r, three, 1, &soon, now) else { panic!() };
        assert!(note.contains("deadline"), "{note}");
    }

    #[test]
    fn answers_and_broken_streams_are_never_retried() {
        let now = Instant::now();
        for (class, status) in [
            (ErrorClass::HttpStatus, Some(500)),
            (ErrorClass::HttpStatus, Some(503)),
            (ErrorClass::StreamCut, None),
            (ErrorClass::IdleTimeout, None),
            (ErrorClass::Timeout, None),
            (ErrorClass::MalformedEvent, None),
            (ErrorClass::BadResponse, None),
            (ErrorClass::ServerError, None),
        ] {
            let r = failed(class, status);
            assert_eq!(decide(&r, Some(Duration::from_secs(1)), 1, &POLICY, now), Decision::Keep(None), "{class:?}");
        }
        let mut ok = failed(ErrorClass::Connect, None);
        ok.ok = true;
        ok.error = None;
        assert_eq!(decide(&ok, None, 1, &POLICY, now), Decision::Keep(None));
    }

    #[test]
    fn retry_after_takes_delta_seconds_or_an_http_date() {
        assert_eq!(parse_retry_after(" 2 "), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after("0.5"), Some(Duration::from_millis(500)));
        assert_eq!(parse_retry_after("0"), Some(Duration::ZERO));
        for bad in ["", "-1", "NaN", "inf", "1e12", "tomorrow", "Wed, 32 Oct 2015 07:28:00 GMT"] {
            assert_eq!(parse_retry_after(bad), None, "{bad}");
        }
        // 2015-10-21 07:28:00 UTC is 1445412480 s after the epoch.
        let at = |secs: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
        let date = "Wed, 21 Oct 2015 07:28:00 GMT";
        assert_eq!(parse_retry_after_at(date, at(1_445_412_477)), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after_at(date, at(1_445_412_480)), Some(Duration::ZERO));
        // A date already past: retry at once (the retry count still bounds it).
        assert_eq!(parse_retry_after_at(date, at(1_445_412_999)), Some(Duration::ZERO));
        // The obsolete date forms HTTP still allows.
        assert_eq!(
            parse_retry_after_at("Wednesday, 21-Oct-15 07:28:00 GMT", at(1_445_412_470)),
            Some(Duration::from_secs(10))
        );
        // A far date is a wait longer than infergate takes, decided by `decide`.
        assert!(parse_retry_after(date.replace("2015", "2099").as_str()).is_some_and(|w| w > MAX_RETRY_WAIT));
    }
}
