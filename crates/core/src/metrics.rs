//! The metric catalogue: every metric the gate knows, which per-request
//! series it is computed from, which statistic, which way is better, and its
//! default rule.

use serde::{Deserialize, Serialize};

use crate::results::RequestRecord;

/// Which way is better for a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Throughput-like: a drop is a regression.
    HigherIsBetter,
    /// Latency-like: a rise is a regression.
    LowerIsBetter,
}

/// How loud a rule is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Not checked.
    Off,
    /// Compared and shown; never a warning or a failure.
    Info,
    /// Reported as a warning; never fails the job.
    Warn,
    /// Fails the job (exit 1).
    Fail,
}

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
        let mut out = Vec::with_capacity(requests.len());
        out.extend(requests.iter().filter(|r| r.ok).filter_map(|r| self.of(r)).filter(|v| v.is_finite()));
        out
    }
}

/// The statistic a metric takes of its series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Statistic {
    /// 50th percentile.
    Median,
    /// 99th percentile.
    P99,
}

impl Statistic {
    /// The quantile it is (0.5 for the median).
    pub fn quantile(self) -> f64 {
        match self {
            Statistic::Median => 0.5,
            Statistic::P99 => 0.99,
        }
    }

    /// The statistic of `samples`; `None` when there are none.
    pub fn of(self, samples: &[f64]) -> Option<f64> {
        let s = crate::stats::summarize(samples)?;
        Some(match self {
            Statistic::Median => s.median,
            Statistic::P99 => s.p99,
        })
    }
}

/// Where a metric's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A statistic of a per-request series: compared with a significance test.
    Requests {
        /// The series.
        series: Series,
        /// The statistic taken.
        statistic: Statistic,
    },
    /// One GPU figure per phase: compared against tolerance and floor alone
    /// (memory does not jitter like latency; the floor absorbs what does).
    Gpu(GpuStat),
}

/// A GPU figure of a phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GpuStat {
    /// Highest memory in use on any device, MiB.
    MemoryPeakMib,
    /// Highest mean memory use of any device, % of total.
    MemoryUsedPct,
    /// Energy of all devices per output token, J.
    EnergyPerTokenJ,
    /// Mean GPU utilisation, %.
    GpuUtilPct,
}

impl GpuStat {
    /// The value in a phase's GPU figures.
    pub fn of(self, gpu: &crate::telemetry::GpuPhase) -> Option<f64> {
        match self {
            GpuStat::MemoryPeakMib => gpu.memory_peak_mib,
            GpuStat::MemoryUsedPct => gpu.memory_used_pct,
            GpuStat::EnergyPerTokenJ => gpu.energy_per_token_j,
            GpuStat::GpuUtilPct => gpu.gpu_util_pct,
        }
    }
}

impl MetricDef {
    /// The quantity a per-request metric tests, so that metrics that are the
    /// same test count once against the false-alarm budget: with a fixed
    /// output length, tokens per second is a monotone function of E2E per
    /// request (so their medians move together exactly), and decode tokens
    /// per second one of TPOT. `None` for GPU figures.
    pub fn family(&self) -> Option<(Series, Statistic)> {
        let (series, statistic) = self.request_source()?;
        let same = match series {
            Series::TokensPerSecond => Series::E2eMs,
            Series::DecodeTokensPerSecond => Series::TpotMs,
            other => other,
        };
        Some((same, statistic))
    }

    /// Series and statistic of a per-request metric; `None` for GPU figures.
    pub fn request_source(&self) -> Option<(Series, Statistic)> {
        match self.source {
            Source::Requests { series, statistic } => Some((series, statistic)),
            Source::Gpu(_) => None,
        }
    }
}

/// A metric and its default rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricDef {
    /// Name used in config, baselines and reports.
    pub name: &'static str,
    /// What it means, for `baseline show` and the book.
    pub description: &'static str,
    /// Where its value comes from.
    pub source: Source,
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
        source: Source::Requests { series: Series::TokensPerSecond, statistic: Statistic::Median },
        direction: Direction::HigherIsBetter,
        unit: "tok/s",
        tolerance: 0.05,
        floor: 0.0,
        level: Level::Fail,
    },
    MetricDef {
        name: "decode_tokens_per_second",
        description: "median of (output tokens - 1) / (E2E - TTFT) per request",
        source: Source::Requests { series: Series::DecodeTokensPerSecond, statistic: Statistic::Median },
        direction: Direction::HigherIsBetter,
        unit: "tok/s",
        tolerance: 0.05,
        floor: 0.0,
        level: Level::Off,
    },
    MetricDef {
        name: "ttft_median",
        description: "median time to first token",
        source: Source::Requests { series: Series::TtftMs, statistic: Statistic::Median },
        direction: Direction::LowerIsBetter,
        unit: "ms",
        tolerance: 0.10,
        floor: 20.0,
        level: Level::Fail,
    },
    MetricDef {
        name: "ttft_p99",
        description: "99th percentile of time to first token",
        source: Source::Requests { series: Series::TtftMs, statistic: Statistic::P99 },
        direction: Direction::LowerIsBetter,
        unit: "ms",
        tolerance: 0.20,
        floor: 20.0,
        level: Level::Warn,
    },
    MetricDef {
        name: "tpot_median",
        description: "median time per output token",
        source: Source::Requests { series: Series::TpotMs, statistic: Statistic::Median },
        direction: Direction::LowerIsBetter,
        unit: "ms",
        tolerance: 0.10,
        floor: 0.0,
        level: Level::Fail,
    },
    MetricDef {
        name: "tpot_p99",
        description: "99th percentile of time per output token",
        source: Source::Requests { series: Series::TpotMs, statistic: Statistic::P99 },
        direction: Direction::LowerIsBetter,
        unit: "ms",
        tolerance: 0.20,
        floor: 0.0,
        level: Level::Warn,
    },
    MetricDef {
        name: "e2e_median",
        description: "median end-to-end latency (total_time)",
        source: Source::Requests { series: Series::E2eMs, statistic: Statistic::Median },
        direction: Direction::LowerIsBetter,
        unit: "ms",
        tolerance: 0.10,
        floor: 0.0,
        level: Level::Fail,
    },
    MetricDef {
        name: "e2e_p99",
        description: "99th percentile of end-to-end latency",
        source: Source::Requests { series: Series::E2eMs, statistic: Statistic::P99 },
        direction: Direction::LowerIsBetter,
        unit: "ms",
        tolerance: 0.20,
        floor: 0.0,
        level: Level::Warn,
    },
    MetricDef {
        name: "gpu_memory_peak_mib",
        description: "highest GPU memory in use during the phase (any device)",
        source: Source::Gpu(GpuStat::MemoryPeakMib),
        direction: Direction::LowerIsBetter,
        unit: "MiB",
        tolerance: 0.02,
        floor: 256.0,
        level: Level::Fail,
    },
    MetricDef {
        name: "gpu_memory_util_pct",
        description: "mean GPU memory in use, % of total (the report's gpu_memory_util); +2 points fail",
        source: Source::Gpu(GpuStat::MemoryUsedPct),
        direction: Direction::LowerIsBetter,
        unit: "%",
        tolerance: 0.0,
        floor: 2.0,
        level: Level::Fail,
    },
    MetricDef {
        name: "energy_per_token_j",
        description: "GPU energy per output token (all devices)",
        source: Source::Gpu(GpuStat::EnergyPerTokenJ),
        direction: Direction::LowerIsBetter,
        unit: "J",
        tolerance: 0.10,
        floor: 0.0,
        level: Level::Warn,
    },
    MetricDef {
        name: "gpu_util_pct",
        description: "mean GPU utilisation (informational)",
        source: Source::Gpu(GpuStat::GpuUtilPct),
        direction: Direction::HigherIsBetter,
        unit: "%",
        tolerance: 0.10,
        floor: 0.0,
        level: Level::Info,
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
