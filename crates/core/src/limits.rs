//! The ranges of the numbers a user gives infergate: durations, request
//! rates, counts; and how a number from the input is shown in a message.
//!
//! Every duration, rate and count is checked against these ranges where it
//! is parsed (flags, `infergate.toml`, suite files, `sim --fault`), so an
//! absurd value is exit 2 naming its flag or key before any request is
//! sent, never a panic halfway through a run. The ranges are documented in
//! the book beside the flags (`docs/src/run.md`).

use std::time::{Duration, Instant};

use serde::Deserialize;

/// The shortest duration infergate takes: 1 ms.
pub const MIN_DURATION: Duration = Duration::from_millis(1);

/// The longest duration infergate takes: 365 days. Far beyond any sane
/// timeout or deadline, and far from where clock arithmetic overflows.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// The range of durations, in words, for messages.
pub const DURATION_RANGE: &str = "from 1ms to 365days";

/// The lowest request rate: one request per 1,000 s.
pub const MIN_RATE: f64 = 0.001;

/// The highest request rate; beyond it the arrivals are back-to-back anyway.
pub const MAX_RATE: f64 = 1_000_000.0;

/// The most repetitions, warm-up requests or requests in flight per case.
pub const MAX_COUNT: u32 = 1_000_000;

/// The most retries per request (`--retries`, `[run] retries`) and
/// confirmation runs (`check --confirm`).
pub const MAX_RETRIES: u32 = 100;

/// A number as a message shows it: plain where that is short, in scientific
/// notation for extreme magnitudes (`1e-300`, not 300 digits).
pub fn show(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 || !v.is_finite() || (1e-4..1e15).contains(&a) { format!("{v}") } else { format!("{v:e}") }
}

/// Parses a duration: `"30s"`, `"10m"`, `"1m 30s"` (humantime) or a number
/// of seconds, within [`MIN_DURATION`]..=[`MAX_DURATION`].
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let d = match t.parse::<f64>() {
        Ok(secs) if secs.is_nan() => return Err(format!("`{t}` is not a number of seconds")),
        Ok(secs) if secs <= 0.0 => return Err(format!("`{t}` must be a positive duration, {DURATION_RANGE}")),
        // Infinite or beyond what a `Duration` holds: too long, said below.
        Ok(secs) => Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX),
        Err(_) => humantime::parse_duration(t)
            .map_err(|e| format!("`{t}` is not a duration ({e}); write e.g. \"30s\" or \"10m\""))?,
    };
    // `1e-300` rounds to zero nanoseconds, yet it was written positive: too short.
    if d.is_zero() && t.parse::<f64>().is_err() {
        return Err(format!("`{t}` must be a positive duration, {DURATION_RANGE}"));
    }
    if d < MIN_DURATION {
        return Err(format!("`{t}` is too short: durations are {DURATION_RANGE}"));
    }
    if d > MAX_DURATION {
        return Err(format!("`{t}` is too long: durations are {DURATION_RANGE}"));
    }
    Ok(d)
}

/// Checks a request rate (requests/s): finite, within [`MIN_RATE`]..=[`MAX_RATE`].
pub fn check_rate(v: f64) -> Result<f64, String> {
    if v.is_finite() && (MIN_RATE..=MAX_RATE).contains(&v) {
        Ok(v)
    } else {
        Err(format!(
            "a request rate must be a positive number of requests per second from {MIN_RATE} to {MAX_RATE}, got {}",
            show(v)
        ))
    }
}

/// `secs` seconds after `t`, never panicking: a gap that is not a number,
/// negative or beyond [`MAX_DURATION`] is clamped into `0..=MAX_DURATION`
/// (validated inputs stay far inside it).
pub fn after_secs(t: Instant, secs: f64) -> Instant {
    let gap = Duration::try_from_secs_f64(secs).unwrap_or(if secs > 0.0 { MAX_DURATION } else { Duration::ZERO });
    after(t, gap)
}

/// `d` after `t`, clamped to [`MAX_DURATION`]; the clock cannot overflow
/// there on any system infergate runs on, and if it could, `t` is returned
/// rather than a panic.
pub fn after(t: Instant, d: Duration) -> Instant {
    t.checked_add(d.min(MAX_DURATION)).unwrap_or(t)
}

/// A whole number within `LO..=HI`, checked where it is built: by
/// [`Bounded::new`] (or `TryFrom<u32>`) in code and while it is deserialized,
/// so that the error names the file, line and key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounded<const LO: u32, const HI: u32>(u32);

impl<const LO: u32, const HI: u32> Bounded<LO, HI> {
    /// `n` when it is within `LO..=HI`; else an error that gives the range.
    pub fn new(n: u32) -> Result<Self, String> {
        if (LO..=HI).contains(&n) { Ok(Bounded(n)) } else { Err(format!("must be between {LO} and {HI}, got {n}")) }
    }

    /// The number.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl<const LO: u32, const HI: u32> TryFrom<u32> for Bounded<LO, HI> {
    type Error = String;

    fn try_from(n: u32) -> Result<Self, String> {
        Bounded::new(n)
    }
}

impl<'de, const LO: u32, const HI: u32> serde::Deserialize<'de> for Bounded<LO, HI> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor<const LO: u32, const HI: u32>;
        impl<const LO: u32, const HI: u32> serde::de::Visitor<'_> for Visitor<LO, HI> {
            type Value = Bounded<LO, HI>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                write!(f, "a whole number between {LO} and {HI}")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
                let n = u32::try_from(v).map_err(|_| E::custom(format!("must be between {LO} and {HI}, got {v}")))?;
                Bounded::new(n).map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
                let n = u32::try_from(v).map_err(|_| E::custom(format!("must be between {LO} and {HI}, got {v}")))?;
                Bounded::new(n).map_err(E::custom)
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Err(E::custom(format!("must be a whole number between {LO} and {HI}, got {}", show(v))))
            }
        }
        d.deserialize_any(Visitor::<LO, HI>)
    }
}

/// Warm-up requests per case: `0..=MAX_COUNT`.
pub type Warmup = Bounded<0, MAX_COUNT>;

/// Retries per request: `0..=MAX_RETRIES`.
pub type Retries = Bounded<0, MAX_RETRIES>;

/// `message` with every number written with more than 24 digits (serde and
/// `{}` show `1e308` as 309 of them) in [`show`]'s form.
pub fn shorten_numbers(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(start) = rest.find(|c: char| c.is_ascii_digit()) {
        out.push_str(&rest[..start]);
        let run = &rest[start..];
        let len = run.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(run.len());
        let (number, after) = run.split_at(len);
        match number.parse::<f64>() {
            Ok(v) if number.len() > 24 => out.push_str(&show(v)),
            _ => out.push_str(number),
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// A duration written as `"30s"`, `"10m"`, `"1m 30s"` or a number of
/// seconds, within [`MIN_DURATION`]..=[`MAX_DURATION`] (the range of
/// [`parse_duration`]). Built only through that check: [`HumanDuration::parse`],
/// `FromStr`, `TryFrom<&str>`, `TryFrom<Duration>` and serde.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(Duration);

impl HumanDuration {
    /// Parses `"30s"`-style text or plain seconds, from 1 ms to 365 days.
    pub fn parse(s: &str) -> Result<HumanDuration, String> {
        parse_duration(s).map(HumanDuration)
    }

    /// The duration.
    pub fn get(self) -> Duration {
        self.0
    }
}

impl TryFrom<Duration> for HumanDuration {
    type Error = String;

    fn try_from(d: Duration) -> Result<Self, String> {
        if (MIN_DURATION..=MAX_DURATION).contains(&d) {
            Ok(HumanDuration(d))
        } else {
            Err(format!("{d:?} is out of range: durations are {DURATION_RANGE}"))
        }
    }
}

impl TryFrom<&str> for HumanDuration {
    type Error = String;

    fn try_from(s: &str) -> Result<Self, String> {
        HumanDuration::parse(s)
    }
}

impl std::str::FromStr for HumanDuration {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        HumanDuration::parse(s)
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Secs(f64),
            Text(String),
        }
        let text = match Raw::deserialize(d)? {
            // `show`, not `to_string`: 1e-300 is not echoed as 300 digits.
            Raw::Secs(s) => show(s),
            Raw::Text(t) => t,
        };
        HumanDuration::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_in_range_or_an_error_that_says_so() {
        let ok: &[(&str, Duration)] = &[
            ("1m 30s", Duration::from_secs(90)),
            ("0.5", Duration::from_millis(500)),
            ("1ms", MIN_DURATION),
            ("0.001", MIN_DURATION),
            ("365days", MAX_DURATION),
            ("31536000", MAX_DURATION),
        ];
        for (text, d) in ok {
            assert_eq!(parse_duration(text).as_ref(), Ok(d), "{text}");
        }
        let bad: &[(&str, &str)] = &[
            ("0", "positive"),
            ("0s", "positive"),
            ("-3", "positive"),
            ("-0", "positive"),
            ("1e-300", "too short"),
            ("999us", "too short"),
            ("1e19", "too long"),
            ("1e20", "too long"),
            ("1e308", "too long"),
            ("inf", "too long"),
            ("NaN", "not a number"),
            ("366days", "too long"),
            ("1e19s", "not a duration"),
            ("99999999999999999999999s", "not a duration"),
            ("soon", "not a duration"),
        ];
        for (text, fragment) in bad {
            let e = parse_duration(text).unwrap_err();
            assert!(e.contains(fragment) && e.contains(&format!("`{text}`")), "{text}: {e}");
            assert!(e.len() < 200, "{e}");
        }
    }

    #[test]
    fn rates_are_in_range() {
        for v in [MIN_RATE, 1.0, 2.5, MAX_RATE] {
            assert_eq!(check_rate(v), Ok(v));
        }
        for v in [0.0, -1.0, 5e-20, 1e-300, 1e7, 1e308, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let e = check_rate(v).unwrap_err();
            assert!(e.len() < 120, "{e}");
        }
        assert!(check_rate(1e-300).unwrap_err().ends_with("got 1e-300"));
    }

    #[test]
    fn long_numbers_in_messages_are_shortened() {
        let long = format!("invalid type: floating point `1{}.0`, expected i64", "0".repeat(308));
        assert_eq!(shorten_numbers(&long), "invalid type: floating point `1e308`, expected i64");
        let tiny = format!("must be between 0 and 1, got -0.{}1", "0".repeat(299));
        assert_eq!(shorten_numbers(&tiny), "must be between 0 and 1, got -1e-300");
        let kept = "infergate.toml:2:10: key `run.warmup`: got `123`, 0.5, 1.2.3";
        assert_eq!(shorten_numbers(kept), kept);
    }

    #[test]
    fn numbers_are_shown_short() {
        assert_eq!(show(1e-300), "1e-300");
        assert_eq!(show(1e19), "1e19");
        assert_eq!(show(2.5), "2.5");
        assert_eq!(show(0.0), "0");
        assert_eq!(show(-3.0), "-3");
        assert_eq!(show(f64::NAN), "NaN");
        assert_eq!(show(f64::NEG_INFINITY), "-inf");
        assert_eq!(show(0.001), "0.001");
    }

    #[test]
    fn newtypes_are_built_only_within_their_range() {
        assert_eq!(HumanDuration::try_from(Duration::from_secs(90)).unwrap().get(), Duration::from_secs(90));
        assert_eq!("1m 30s".parse::<HumanDuration>().unwrap(), HumanDuration::try_from("90").unwrap());
        for d in [Duration::ZERO, Duration::from_micros(999), MAX_DURATION + Duration::from_secs(1)] {
            let e = HumanDuration::try_from(d).unwrap_err();
            assert!(e.contains(DURATION_RANGE), "{e}");
        }
        assert_eq!(Retries::new(MAX_RETRIES).unwrap().get(), MAX_RETRIES);
        assert_eq!(Retries::try_from(101).unwrap_err(), "must be between 0 and 100, got 101");
        assert_eq!(Bounded::<1, 3>::new(0).unwrap_err(), "must be between 1 and 3, got 0");
        let w: Warmup = serde_json::from_str("7").unwrap();
        assert_eq!(w.get(), 7);
        let e = serde_json::from_str::<Bounded<1, 3>>("-1").unwrap_err().to_string();
        assert!(e.contains("must be between 1 and 3, got -1"), "{e}");
    }

    #[test]
    fn clock_arithmetic_never_panics() {
        let t = Instant::now();
        for secs in [f64::NAN, f64::INFINITY, -1.0, 1e300, 0.5] {
            assert!(after_secs(t, secs) >= t);
        }
        assert_eq!(after(t, Duration::MAX), t + MAX_DURATION);
    }
}
