//! The metric catalogue: every metric the gate knows, which per-request
//! series it is computed from, which statistic, which way is better, and its
//! default rule.

use crate::results::RequestRecord;

use super::{Direction, Level};

/// A per-request sample series stored in baselines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Series {
    /// Output tokens / E2E.
    TokensPerSecond,
    /// Decode tokens per second.
    DecodeTokensPerSecond,
    /// Time to first token.
    TtftMs,
    /// Time per output token.
    TpotMs,
    /// End-to-end latency.
    E2eMs,
}

impl Series {
    /// Every series, in file order.
    pub const ALL: [Series; 5] =
        [Series::TokensPerSecond, Series::DecodeTokensPerSecond, Series::TtftMs, Series::TpotMs, Series::E2eMs];

    /// The key used in baseline files (the results field name).
    pub fn key(self) -> &'static str {
        match self {
            Series::TokensPerSecond => "tokens_per_second",
            Series::DecodeTokensPerSecond => "decode_tokens_per_second",
            Series::TtftMs => "ttft_ms",
            Series::TpotMs => "tpot_ms",
            Series::E2eMs => "e2e_ms",
        }
    }

    /// The value of this series in one successful request.
    pub fn of(self, r: &RequestRecord) -> Option<f64> {
        match self {
            Series::TokensPerSecond => r.tokens_per_second,
            Series::DecodeTokensPerSecond => r.decode_tokens_per_second,
            Series::TtftMs => r.ttft_ms,
            Series::TpotMs => r.tpot_ms,
            Series::E2eMs => r.e2e_ms,
        }
    }

    /// Samples of successful requests.
    pub fn samples(self, requests: &[RequestRecord]) -> Vec<f64> {
        requests.iter().filter(|r| r.ok).filter_map(|r| self.of(r)).filter(|v| v.is_finite()).collect()
    }
}

/// The statistic a metric takes of its series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Statistic {
    /// 50th percentile.
    Median,
    /// 99th percentile.
    P99,
}

impl Statistic {
    /// The statistic of `samples`; `None` when there are none.
    pub fn of(self, samples: &[f64]) -> Option<f64> {
        let s = crate::stats::summarize(samples)?;
        Some(match self {
            Statistic::Median => s.median,
            Statistic::P99 => s.p99,
        })
    }
}

/// A metric and its default rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricDef {
    /// Name used in config, baselines and reports.
    pub name: &'static str,
    /// What it means, for `baseline show` and the README.
    pub description: &'static str,
    /// The series it is computed from.
    pub series: Series,
    /// The statistic taken.
    pub statistic: Statistic,
    /// Which way is better.
    pub direction: Direction,
    /// Display unit.
    pub unit: &'static str,
    /// Default relative tolerance.
    pub tolerance: f64,
    /// Default absolute floor (in `unit`).
    pub floor: f64,
    /// Default level.
    pub level: Level,
}

/// The catalogue. Defaults gate throughput and median latencies (fail) and
/// tail latencies (warn).
pub const CATALOGUE: &[MetricDef] = &[
    MetricDef {
        name: "tokens_per_second",
        description: "median of output tokens / E2E per request",
        series: Series::TokensPerSecond,
        statistic: Statistic::Median,
        direction: Direction::HigherIsBetter,
        unit: "tok/s",
        tolerance: 0.05,
        floor: 0.0,
        level: Level::Fail,
    },
    MetricDef {
        name: "decode_tokens_per_second",
        description: "median of (output tokens - 1) / (E2E - TTFT) per request",
        series: Series::DecodeTokensPerSecond,
        statistic: Statistic::Median,
        direction: Direction::HigherIsBetter,
        unit: "tok/s",
        tolerance: 0.05,
        floor: 0.0,
        level: Level::Off,
    },
    MetricDef {
        name: "ttft_median",
        description: "median time to first token",
        series: Series::TtftMs,
        statistic: Statistic::Median,
        direction: Direction::LowerIsBetter,
        unit: "ms",
        tolerance: 0.10,
        floor: 20.0,
        level: Level::Fail,
    },
    MetricDef {
        name: "ttft_p99",
        description: "99th percentile of time to first token",
        series: Series::TtftMs,
        statistic: Statistic::P99,
        direction: Direction::LowerIsBetter,
        unit: "ms",
        tolerance: 0.20,
        floor: 20.0,
        level: Level::Warn,
    },
    MetricDef {
        name: "tpot_median",
        description: "median time per output token",
        series: Series::TpotMs,
        statistic: Statistic::Median,
        direction: Direction::LowerIsBetter,
        unit: "ms",
        tolerance: 0.10,
        floor: 0.0,
        level: Level::Fail,
    },
    MetricDef {
        name: "tpot_p99",
        description: "99th percentile of time per output token",
        series: Series::TpotMs,
        statistic: Statistic::P99,
        direction: Direction::LowerIsBetter,
        unit: "ms",
        tolerance: 0.20,
        floor: 0.0,
        level: Level::Warn,
    },
    MetricDef {
        name: "e2e_median",
        description: "median end-to-end latency (total_time)",
        series: Series::E2eMs,
        statistic: Statistic::Median,
        direction: Direction::LowerIsBetter,
        unit: "ms",
        tolerance: 0.10,
        floor: 0.0,
        level: Level::Fail,
    },
    MetricDef {
        name: "e2e_p99",
        description: "99th percentile of end-to-end latency",
        series: Series::E2eMs,
        statistic: Statistic::P99,
        direction: Direction::LowerIsBetter,
        unit: "ms",
        tolerance: 0.20,
        floor: 0.0,
        level: Level::Warn,
    },
];

/// Looks a metric up by name.
pub fn find(name: &str) -> Option<&'static MetricDef> {
    CATALOGUE.iter().find(|m| m.name == name)
}

/// All metric names, for error messages.
pub fn names() -> String {
    CATALOGUE.iter().map(|m| m.name).collect::<Vec<_>>().join(", ")
}
