//! Fault injection: what the simulator does wrong, and to which requests.
//!
//! A gate runs unattended, so every way a server can misbehave must end in a
//! true verdict. The simulator can misbehave on purpose: each `--fault SPEC`
//! (several allowed; [`SimConfig::faults`](super::SimConfig::faults) in tests)
//! names one misbehaviour and the requests it hits.
//!
//! ```text
//! SPEC     = KIND [":" PARAM] *("@" SELECTOR)
//! SELECTOR = "rate=" FRACTION          each request with this probability (seeded)
//!          | "every=" N                the Nth, 2Nth, ... request
//!          | "requests=" N [".." M]    the Nth (through the Mth) request, 1-based
//!          | "case=" GLOB[,GLOB...]    only requests of matching cases
//! ```
//!
//! Kinds (durations as in the config, from 1ms to 365days: `500ms`, `2s`, `1.5`):
//!
//! | kind | PARAM | what the server does |
//! | --- | --- | --- |
//! | `http500` | | answers 500 with an OpenAI error body |
//! | `http429` | seconds (default 1) | answers 429 with `Retry-After` |
//! | `refuse` | | closes the connection without any response |
//! | `reset` | chunks (default 1) | resets the connection after that many content chunks |
//! | `stall` | duration (required) | sends nothing for that long after the first content chunk |
//! | `slow-first-byte` | duration (required) | waits that long before the response headers |
//! | `malformed` | | sends an event that is not JSON after the first content chunk |
//! | `no-done` | `close` (default) or `hold` | omits `data: [DONE]`; `hold` keeps the connection open |
//! | `huge-event` | bytes (default 1 MiB) | sends one content event that large |
//! | `content-type` | MIME type (default `text/html`) | answers 200 with that type and an HTML page |
//! | `endless` | | ignores `max_tokens` and streams until the client goes away |
//! | `no-usage` | | never sends `usage` |
//! | `short` | tokens (default half of `max_tokens`) | stops early with `finish_reason: "stop"` despite `ignore_eos` |
//! | `huge-headers` | bytes (default 1 MiB) | answers 200 with a response head that large (one long header) |
//! | `huge-models` | | answers every `GET /v1/models` with a body that never ends (takes no selector) |
//!
//! Faults hit streamed generation requests only (what infergate measures),
//! `huge-models` excepted; prompt sizing (non-streamed) and the other info
//! endpoints always answer normally. Requests are counted per fault, over the requests its `case`
//! selector matches (all streamed requests without one). infergate names the
//! case of each measured request in the `x-infergate-case` header; its
//! capability probes carry none, so `@case=*` hits measured requests only.
//! Without `rate`, `every` or `requests`, every matching request is hit. When
//! several faults fire on one request, the first one given wins.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use infergate_core::filter::{CaseFilter, FilterError};
use infergate_core::limits::HumanDuration;
use infergate_core::rng::Rng;

/// One misbehaviour.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultKind {
    /// Answer 500 with an OpenAI-style error body.
    Http500,
    /// Answer 429 with `Retry-After: SECS`.
    Http429 {
        /// The `Retry-After` value, in seconds.
        retry_after_s: u64,
    },
    /// Close the connection without sending anything.
    Refuse,
    /// Reset the connection (TCP RST) after this many content chunks.
    Reset {
        /// Content chunks sent before the reset.
        after_chunks: u32,
    },
    /// Send nothing for this long after the first content chunk.
    Stall {
        /// The silence.
        duration: Duration,
    },
    /// Wait this long before the response headers.
    SlowFirstByte {
        /// The wait.
        delay: Duration,
    },
    /// Send an event that is not JSON after the first content chunk.
    Malformed,
    /// Leave out `data: [DONE]`.
    NoDone {
        /// Keep the connection open after the last event instead of closing it.
        hold: bool,
    },
    /// Send one content event of this many bytes after the first content chunk.
    HugeEvent {
        /// Size of the event's content.
        bytes: usize,
    },
    /// Answer 200 with this content type and an HTML page instead of a stream.
    ContentType {
        /// The MIME type sent.
        mime: String,
    },
    /// Ignore `max_tokens` and stream until the client goes away.
    Endless,
    /// Never send `usage`.
    NoUsage,
    /// Stop after this many tokens (default: half of those asked) with `finish_reason: "stop"`.
    Short {
        /// Tokens generated; `None` means half of `max_tokens`.
        tokens: Option<u32>,
    },
    /// Answer 200 with a response head of about this many bytes.
    HugeHeaders {
        /// Size of the one long header.
        bytes: usize,
    },
    /// Answer every `GET /v1/models` with a body that never ends.
    HugeModels,
}

impl FaultKind {
    /// Whether the fault hits `GET /v1/models` rather than streamed requests.
    fn is_info(&self) -> bool {
        matches!(self, FaultKind::HugeModels)
    }
}

/// Which of the matching requests a fault hits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum When {
    /// Every one.
    Always,
    /// Each with this probability, drawn from the simulator's seed.
    Rate(f64),
    /// Every Nth.
    Every(u64),
    /// The Nth through the Mth, 1-based, inclusive.
    Requests(u64, u64),
}

/// A parsed `--fault` SPEC.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    /// What goes wrong.
    pub kind: FaultKind,
    /// Which matching requests it hits.
    pub when: When,
    /// The `@case=` globs; `None` matches every streamed request.
    pub cases: Option<CaseFilter>,
    /// The SPEC as written, for messages.
    pub spec: String,
}

/// A SPEC that cannot be parsed; the message says what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{spec}`: {problem}")]
pub struct FaultError {
    /// The SPEC as written.
    pub spec: String,
    /// What is wrong with it.
    pub problem: String,
}

/// The kinds, for messages.
pub const KINDS: &str = "http500, http429, refuse, reset, stall, slow-first-byte, malformed, no-done, huge-event, \
                         content-type, endless, no-usage, short, huge-headers, huge-models";

/// Default size of a `huge-event`.
pub const HUGE_EVENT_BYTES: usize = 1 << 20;

/// Default size of a `huge-headers` response head: beyond the ~400 KiB an
/// HTTP client buffers for one.
pub const HUGE_HEADERS_BYTES: usize = 1 << 20;

impl std::str::FromStr for Fault {
    type Err = FaultError;

    fn from_str(spec: &str) -> Result<Fault, FaultError> {
        let err = |problem: String| FaultError { spec: spec.to_owned(), problem };
        let mut parts = spec.trim().split('@');
        let head = parts.next().unwrap_or_default();
        let (name, param) = match head.split_once(':') {
            Some((n, p)) => (n.trim(), Some(p.trim())),
            None => (head.trim(), None),
        };
        let kind = parse_kind(name, param).map_err(err)?;
        let mut when = None;
        let mut cases = None;
        for selector in parts {
            let (key, value) = selector
                .split_once('=')
                .map(|(k, v)| (k.trim(), v.trim()))
                .ok_or_else(|| err(format!("selector `@{selector}` needs a value, e.g. `@rate=0.1`")))?;
            let parsed = match key {
                "rate" => Some(parse_rate(value).map_err(err)?),
                "every" => Some(When::Every(parse_count("every", value).map_err(err)?)),
                "requests" => Some(parse_requests(value).map_err(err)?),
                "case" => {
                    let filter = match CaseFilter::parse(value) {
                        Ok(f) => f,
                        Err(FilterError::Empty) => {
                            return Err(err("`@case=` needs a glob over case ids, e.g. `@case=debugging/*`".into()));
                        }
                        Err(e) => return Err(err(format!("`@case={value}`: {e}"))),
                    };
                    if cases.replace(filter).is_some() {
                        return Err(err("`@case` is given twice; join the globs with commas instead".into()));
                    }
                    None
                }
                other => {
                    return Err(err(format!("unknown selector `@{other}`; use @rate=, @every=, @requests= or @case=")));
                }
            };
            if let Some(w) = parsed {
                if when.replace(w).is_some() {
                    return Err(err("give at most one of @rate, @every and @requests".into()));
                }
            }
        }
        if kind.is_info() && (when.is_some() || cases.is_some()) {
            return Err(err(format!("`{name}` hits every GET /v1/models and takes no selector")));
        }
        Ok(Fault { kind, when: when.unwrap_or(When::Always), cases, spec: spec.trim().to_owned() })
    }
}

fn parse_kind(name: &str, param: Option<&str>) -> Result<FaultKind, String> {
    let none = |kind: FaultKind| match param {
        None => Ok(kind),
        Some(p) => Err(format!("`{name}` takes no parameter, got `:{p}`")),
    };
    let duration = |what: &str| -> Result<Duration, String> {
        let p = param.ok_or_else(|| format!("`{name}` needs a duration, e.g. `{name}:2s` ({what})"))?;
        HumanDuration::parse(p).map(HumanDuration::get).map_err(|e| format!("`{name}`: {e}"))
    };
    let number = |default: u64, what: &str| -> Result<u64, String> {
        match param {
            None => Ok(default),
            Some(p) => p.parse::<u64>().map_err(|_| format!("`{name}:{p}`: {what} must be a whole number")),
        }
    };
    match name {
        "http500" => none(FaultKind::Http500),
        "http429" => match number(1, "the Retry-After seconds")? {
            n if n <= infergate_core::limits::MAX_DURATION.as_secs() => Ok(FaultKind::Http429 { retry_after_s: n }),
            n => Err(format!(
                "`http429:{n}`: Retry-After is at most {} s (365 days)",
                infergate_core::limits::MAX_DURATION.as_secs()
            )),
        },
        "refuse" => none(FaultKind::Refuse),
        "reset" => {
            let n = number(1, "the number of chunks")?;
            Ok(FaultKind::Reset { after_chunks: u32::try_from(n).map_err(|_| format!("`reset:{n}` is too many"))? })
        }
        "stall" => Ok(FaultKind::Stall { duration: duration("the silence")? }),
        "slow-first-byte" => Ok(FaultKind::SlowFirstByte { delay: duration("the wait before the headers")? }),
        "malformed" => none(FaultKind::Malformed),
        "no-done" => match param {
            None | Some("close") => Ok(FaultKind::NoDone { hold: false }),
            Some("hold") => Ok(FaultKind::NoDone { hold: true }),
            Some(p) => Err(format!("`no-done:{p}`: write `no-done:close` or `no-done:hold`")),
        },
        "huge-event" => {
            let n = number(HUGE_EVENT_BYTES as u64, "the size in bytes")?;
            match usize::try_from(n) {
                Ok(bytes) if (1..=(256 << 20)).contains(&bytes) => Ok(FaultKind::HugeEvent { bytes }),
                _ => Err(format!("`huge-event:{n}`: the size must be between 1 and 268435456 bytes")),
            }
        }
        "content-type" => {
            let mime = param.unwrap_or("text/html");
            if mime.is_empty() || !mime.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
                return Err(format!("`content-type:{mime}`: give a MIME type such as text/html"));
            }
            Ok(FaultKind::ContentType { mime: mime.to_owned() })
        }
        "endless" => none(FaultKind::Endless),
        "no-usage" => none(FaultKind::NoUsage),
        "short" => match param {
            None => Ok(FaultKind::Short { tokens: None }),
            Some(p) => match p.parse::<u32>() {
                Ok(n) if n >= 1 => Ok(FaultKind::Short { tokens: Some(n) }),
                _ => Err(format!("`short:{p}`: the number of tokens must be a whole number of at least 1")),
            },
        },
        "huge-headers" => {
            let n = number(HUGE_HEADERS_BYTES as u64, "the size in bytes")?;
            match usize::try_from(n) {
                Ok(bytes) if (1..=(64 << 20)).contains(&bytes) => Ok(FaultKind::HugeHeaders { bytes }),
                _ => Err(format!("`huge-headers:{n}`: the size must be between 1 and 67108864 bytes")),
            }
        }
        "huge-models" => none(FaultKind::HugeModels),
        "" => Err(format!("no fault kind; use one of: {KINDS}")),
        other => Err(format!("unknown fault `{other}`; use one of: {KINDS}")),
    }
}

fn parse_rate(value: &str) -> Result<When, String> {
    match value.parse::<f64>() {
        Ok(p) if p > 0.0 && p <= 1.0 => Ok(When::Rate(p)),
        _ => Err(format!("`@rate={value}` must be a fraction above 0 and at most 1, e.g. 0.1")),
    }
}

fn parse_count(key: &str, value: &str) -> Result<u64, String> {
    match value.parse::<u64>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("`@{key}={value}` must be a whole number of at least 1")),
    }
}

fn parse_requests(value: &str) -> Result<When, String> {
    let (a, b) = match value.split_once("..") {
        Some((a, b)) => (parse_count("requests", a.trim())?, parse_count("requests", b.trim())?),
        None => {
            let n = parse_count("requests", value)?;
            (n, n)
        }
    };
    if b < a {
        return Err(format!("`@requests={value}`: the range ends before it starts"));
    }
    Ok(When::Requests(a, b))
}

/// The faults of one server with their request counters.
#[derive(Debug)]
pub struct FaultSet {
    faults: Vec<Fault>,
    counters: Vec<AtomicU64>,
    seed: u64,
    injected: AtomicU64,
}

impl FaultSet {
    /// The faults, in the order they were given.
    pub fn new(faults: Vec<Fault>, seed: u64) -> FaultSet {
        let counters = faults.iter().map(|_| AtomicU64::new(0)).collect();
        FaultSet { faults, counters, seed, injected: AtomicU64::new(0) }
    }

    /// The fault, if any, that hits a streamed request of `case` (from the
    /// request header; `None` when it had none). Counts the request for
    /// every fault whose case selector matches it.
    pub fn pick(&self, case: Option<&str>) -> Option<&FaultKind> {
        let mut hit = None;
        for (i, (fault, counter)) in self.faults.iter().zip(&self.counters).enumerate() {
            if fault.kind.is_info() {
                continue;
            }
            let matches = match (&fault.cases, case) {
                (None, _) => true,
                (Some(filter), Some(id)) => filter.matches(id),
                (Some(_), None) => false,
            };
            if !matches {
                continue;
            }
            let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
            let fires = match fault.when {
                When::Always => true,
                When::Rate(p) => {
                    Rng::from_parts(&[&self.seed.to_le_bytes(), &(i as u64).to_le_bytes(), &n.to_le_bytes()]).unit() < p
                }
                When::Every(k) => n % k == 0,
                When::Requests(a, b) => (a..=b).contains(&n),
            };
            if fires && hit.is_none() {
                hit = Some(&fault.kind);
            }
        }
        if hit.is_some() {
            self.injected.fetch_add(1, Ordering::Relaxed);
        }
        hit
    }

    /// How many requests a fault has hit so far.
    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::Relaxed)
    }

    /// Whether `GET /v1/models` answers with an endless body (`huge-models`);
    /// counts the request as hit when it does.
    pub fn huge_models(&self) -> bool {
        let hit = self.faults.iter().any(|f| f.kind == FaultKind::HugeModels);
        if hit {
            self.injected.fetch_add(1, Ordering::Relaxed);
        }
        hit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Fault, String> {
        s.parse::<Fault>().map_err(|e| e.to_string())
    }

    #[test]
    fn every_kind_parses_with_its_defaults() {
        let table: &[(&str, FaultKind)] = &[
            ("http500", FaultKind::Http500),
            ("http429", FaultKind::Http429 { retry_after_s: 1 }),
            ("http429:7", FaultKind::Http429 { retry_after_s: 7 }),
            ("refuse", FaultKind::Refuse),
            ("reset", FaultKind::Reset { after_chunks: 1 }),
            ("reset:3", FaultKind::Reset { after_chunks: 3 }),
            ("stall:2s", FaultKind::Stall { duration: Duration::from_secs(2) }),
            ("slow-first-byte:250ms", FaultKind::SlowFirstByte { delay: Duration::from_millis(250) }),
            ("malformed", FaultKind::Malformed),
            ("no-done", FaultKind::NoDone { hold: false }),
            ("no-done:close", FaultKind::NoDone { hold: false }),
            ("no-done:hold", FaultKind::NoDone { hold: true }),
            ("huge-event", FaultKind::HugeEvent { bytes: 1 << 20 }),
            ("huge-event:4096", FaultKind::HugeEvent { bytes: 4096 }),
            ("content-type", FaultKind::ContentType { mime: "text/html".into() }),
            ("content-type:text/plain", FaultKind::ContentType { mime: "text/plain".into() }),
            ("endless", FaultKind::Endless),
            ("no-usage", FaultKind::NoUsage),
            ("short", FaultKind::Short { tokens: None }),
            ("short:5", FaultKind::Short { tokens: Some(5) }),
            ("huge-headers", FaultKind::HugeHeaders { bytes: 1 << 20 }),
            ("huge-headers:4096", FaultKind::HugeHeaders { bytes: 4096 }),
            ("huge-models", FaultKind::HugeModels),
        ];
        for (spec, kind) in table {
            let f = parse(spec).unwrap();
            assert_eq!(&f.kind, kind, "{spec}");
            assert_eq!(f.when, When::Always);
            assert_eq!(f.cases, None);
        }
    }

    #[test]
    fn selectors_combine() {
        let f = parse("http500@rate=0.25@case=debugging/*,code-review/256").unwrap();
        assert_eq!(f.when, When::Rate(0.25));
        assert_eq!(f.cases.as_ref().map(CaseFilter::as_str), Some("debugging/*,code-review/256"));
        assert_eq!(parse("refuse@every=3").unwrap().when, When::Every(3));
        assert_eq!(parse("refuse@requests=2..4").unwrap().when, When::Requests(2, 4));
        assert_eq!(parse("refuse@requests=5").unwrap().when, When::Requests(5, 5));
        assert_eq!(parse("stall:1s@case=*@requests=1").unwrap().spec, "stall:1s@case=*@requests=1");
    }

    #[test]
    fn bad_specs_say_what_to_write() {
        let table: &[(&str, &str)] = &[
            ("", "no fault kind"),
            ("http5000", "unknown fault `http5000`; use one of: http500"),
            ("http500:1", "takes no parameter"),
            ("http429:soon", "whole number"),
            ("stall", "needs a duration, e.g. `stall:2s`"),
            ("stall:forever", "not a duration"),
            ("no-done:maybe", "`no-done:close` or `no-done:hold`"),
            ("huge-event:0", "between 1 and"),
            ("short:0", "at least 1"),
            ("huge-headers:0", "between 1 and"),
            ("huge-models:1", "takes no parameter"),
            ("huge-models@case=*", "takes no selector"),
            ("huge-models@every=2", "takes no selector"),
            ("http500@rate=0", "above 0 and at most 1"),
            ("http500@rate=1.5", "above 0 and at most 1"),
            ("http500@every=0", "at least 1"),
            ("http500@requests=4..2", "ends before it starts"),
            ("http500@requests=a..2", "whole number"),
            ("http500@rate=0.1@every=2", "at most one of"),
            ("http500@case=", "needs a glob"),
            ("http500@case=a/*,", "`@case=a/*,`: `a/*,` has an empty pattern"),
            ("http500@case=a@case=b", "given twice"),
            ("http500@often", "needs a value"),
            ("stall:1e20", "too long"),
            ("slow-first-byte:1e-300", "too short"),
            ("http429:31536001", "at most 31536000 s"),
            ("http500@when=3", "unknown selector `@when`"),
        ];
        for (spec, fragment) in table {
            let e = parse(spec).unwrap_err();
            assert!(e.contains(fragment), "{spec:?}: {e}");
            assert!(e.starts_with(&format!("`{spec}`")), "{e}");
        }
    }

    fn hits(set: &FaultSet, case: Option<&str>, n: usize) -> Vec<bool> {
        (0..n).map(|_| set.pick(case).is_some()).collect()
    }

    #[test]
    fn selection_counts_matching_requests() {
        let set = FaultSet::new(vec![parse("http500@every=2").unwrap()], 1);
        assert_eq!(hits(&set, None, 4), [false, true, false, true]);
        let set = FaultSet::new(vec![parse("http500@case=debugging/*@requests=2..3").unwrap()], 1);
        // Requests of other cases and probes (no case) are not counted.
        assert!(!hits(&set, None, 3).contains(&true));
        assert!(!hits(&set, Some("code-review/256"), 3).contains(&true));
        assert_eq!(hits(&set, Some("debugging/256"), 4), [false, true, true, false]);
        assert_eq!(set.injected(), 2);
        // The first fault that fires wins; the others still count the request.
        let set = FaultSet::new(vec![parse("http500@every=2").unwrap(), parse("refuse").unwrap()], 1);
        let picked: Vec<_> = (0..3).map(|_| set.pick(None).cloned()).collect();
        assert_eq!(picked, [Some(FaultKind::Refuse), Some(FaultKind::Http500), Some(FaultKind::Refuse)]);
        // `huge-models` hits the model list, never a streamed request.
        let set = FaultSet::new(vec![parse("huge-models").unwrap(), parse("http500@every=2").unwrap()], 1);
        assert_eq!(hits(&set, None, 2), [false, true]);
        assert!(set.huge_models());
        assert!(!FaultSet::new(vec![parse("http500").unwrap()], 1).huge_models());
    }

    #[test]
    fn rates_are_seeded_and_roughly_right() {
        let draw = |seed| {
            let set = FaultSet::new(vec![parse("http500@rate=0.2").unwrap()], seed);
            hits(&set, None, 2000)
        };
        assert_eq!(draw(5), draw(5));
        assert_ne!(draw(5), draw(6));
        let n = draw(5).iter().filter(|h| **h).count();
        assert!((300..500).contains(&n), "{n}");
    }
}
