//! Numbers as the reports print them: one formatter for units, precision,
//! percentages, p-values and limits, and one mark for a missing value
//! ([`MISSING`]).

use std::fmt::Write as _;

use serde::Deserialize;

use super::escape::clean;
use super::words::Words;
use crate::gate::Direction;

/// What every report prints where a value is missing.
pub const MISSING: &str = "—";

/// A value with sensible units and precision: milliseconds switch to seconds
/// from 1000 ms, throughput has one decimal, anything else up to four
/// significant digits.
pub fn format_value(v: Option<f64>, unit: &str) -> String {
    let mut out = String::new();
    write_value(&mut out, v, unit);
    out
}

/// [`format_value`], appended to `out`.
pub(crate) fn write_value(out: &mut String, v: Option<f64>, unit: &str) {
    let Some(v) = v else { return out.push_str(MISSING) };
    if !v.is_finite() {
        return out.push_str("n/a");
    }
    // Writing to a String cannot fail.
    match unit {
        // Rounding decides the band, so 9.999 ms prints as "10.0 ms", not "10.00 ms".
        "ms" if round_to(v.abs(), 2) < 10.0 => drop(write!(out, "{v:.2} ms")),
        "ms" if round_to(v.abs(), 1) < 1000.0 => drop(write!(out, "{v:.1} ms")),
        "ms" => drop(write!(out, "{:.2} s", v / 1000.0)),
        "tok/s" => drop(write!(out, "{v:.1} tok/s")),
        "" => write_significant(out, v, 4),
        "%" => {
            write_significant(out, v, 4);
            out.push('%');
        }
        unit => {
            write_significant(out, v, 4);
            out.push(' ');
            out.push_str(unit);
        }
    }
}

pub(crate) fn round_to(v: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (v * scale).round() / scale
}

/// Up to `digits` significant digits, trailing zeros dropped; large numbers
/// keep all their integer digits.
pub(crate) fn significant(v: f64, digits: i32) -> String {
    let mut out = String::new();
    write_significant(&mut out, v, digits);
    out
}

/// [`significant`], appended to `out`.
pub(crate) fn write_significant(out: &mut String, v: f64, digits: i32) {
    if v == 0.0 || !v.is_finite() {
        return out.push_str(if v == 0.0 { "0" } else { "n/a" });
    }
    let magnitude = v.abs().log10().floor() as i32;
    let mut decimals = (digits - 1 - magnitude).max(0);
    // 9.9996 rounds up a magnitude: recompute so it is "10", not "10.00".
    if round_to(v.abs(), decimals) >= 10f64.powi(magnitude + 1) {
        decimals = (decimals - 1).max(0);
    }
    let start = out.len();
    let _ = write!(out, "{v:.*}", decimals as usize);
    if out[start..].contains('.') {
        let kept = out[start..].trim_end_matches('0').trim_end_matches('.').len();
        out.truncate(start + kept);
    }
    if &out[start..] == "-0" {
        out.truncate(start);
        out.push('0');
    }
}

/// A signed relative change, one decimal: 0.0912 → "+9.1%".
pub fn format_pct(fraction: f64) -> String {
    let mut out = String::new();
    write_pct(&mut out, fraction);
    out
}

/// [`format_pct`], appended to `out`.
pub(crate) fn write_pct(out: &mut String, fraction: f64) {
    if !fraction.is_finite() {
        return out.push_str("n/a");
    }
    let percent = round_to(fraction * 100.0, 1);
    if percent == 0.0 {
        out.push_str("0.0%");
    } else {
        let _ = write!(out, "{percent:+.1}%");
    }
}

/// An unsigned percentage for tolerances and detectable changes: 0.05 → "5%",
/// 0.0712 → "7.1%".
pub fn format_pct_abs(fraction: f64) -> String {
    let mut out = String::new();
    write_pct_abs(&mut out, fraction);
    out
}

/// [`format_pct_abs`], appended to `out`.
pub(crate) fn write_pct_abs(out: &mut String, fraction: f64) {
    if !fraction.is_finite() {
        return out.push_str("n/a");
    }
    let _ = write!(out, "{:.1}", round_to(fraction.abs() * 100.0, 1));
    if out.ends_with(".0") {
        out.truncate(out.len() - 2);
    }
    out.push('%');
}

/// A p-value: three decimals, "<0.001" below that, "—" when there is none.
pub fn format_p(p: Option<f64>) -> String {
    let mut out = String::new();
    write_p(&mut out, p);
    out
}

/// [`format_p`], appended to `out`.
pub(crate) fn write_p(out: &mut String, p: Option<f64>) {
    match p {
        None => out.push_str(MISSING),
        Some(p) if !p.is_finite() => out.push_str("n/a"),
        Some(p) if p < 0.001 => out.push_str("<0.001"),
        Some(p) => {
            let _ = write!(out, "{p:.3}");
        }
    }
}

/// The fields of a row that make up its limit.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Limit {
    pub(super) direction: Direction,
    pub(super) tolerance: f64,
    #[serde(default)]
    pub(super) floor: f64,
    #[serde(default)]
    pub(super) unit: String,
}

impl Limit {
    pub(super) fn of(m: &crate::gate::MetricComparison) -> Limit {
        Limit { direction: m.direction, tolerance: m.tolerance, floor: m.floor, unit: clean(&m.unit) }
    }
}

/// The limit of a rule as the change it allows: "-5%" for higher-is-better,
/// "+10%, floor 20 ms" for lower-is-better with a floor.
pub(crate) fn format_limit(limit: &Limit, words: &Words) -> String {
    let sign = match limit.direction {
        Direction::HigherIsBetter => "-",
        Direction::LowerIsBetter => "+",
    };
    let s = format!("{sign}{}", format_pct_abs(limit.tolerance));
    if limit.floor <= 0.0 {
        return s;
    }
    let mut floor = significant(limit.floor, 4);
    if !limit.unit.is_empty() {
        floor.push(' ');
        floor.push_str(&limit.unit);
    }
    words.must("limit.floor", None, &[("limit", &s), ("floor", &floor)])
}
