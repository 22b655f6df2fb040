//! What to run: the validated plan of a run (server, suite, per-case
//! settings, length controls, telemetry, retries, grace and deadline) and
//! the settings cascade that turns it into each case's repetitions, warm-up,
//! concurrency and request rate.

use std::time::{Duration, Instant};

use crate::client::ClientConfig;
use crate::suite::{Case, CaseSettings, Suite};

/// Built-in defaults for what neither flags, suite nor config set.
pub const DEFAULT_SETTINGS: CaseSettings =
    CaseSettings { repetitions: Some(10), warmup: Some(1), concurrency: Some(1), request_rate: None };

/// How prefix caches are reset before cold requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheReset {
    /// Try the known endpoints and use the first the server has.
    Auto,
    /// Never reset (the unique salt still avoids prefix hits).
    Off,
    /// POST to this path.
    Path(String),
}

/// Everything a run needs, validated.
#[derive(Debug, Clone)]
pub struct RunPlan {
    /// How to reach the server.
    pub client: ClientConfig,
    /// The suite, already filtered by `--cases`.
    pub suite: Suite,
    /// The `--cases` filter, for the record.
    pub cases_filter: Option<crate::suite::CaseFilter>,
    /// Settings given on the command line: they beat the suite's.
    pub overrides: CaseSettings,
    /// Settings from the config file: the suite's beat them.
    pub config_defaults: CaseSettings,
    /// Send `ignore_eos`.
    pub ignore_eos: bool,
    /// Send `min_tokens`.
    pub min_tokens: bool,
    /// Ask for per-chunk usage.
    pub continuous_usage: bool,
    /// Prefix-cache reset policy.
    pub cache_reset: CacheReset,
    /// Whether to try the server's `/tokenize` for sizing.
    pub use_tokenize: bool,
    /// GPU telemetry.
    pub gpu: GpuPlan,
    /// Whether to scrape the server's Prometheus `/metrics`.
    pub server_metrics: bool,
    /// Start the server first (and stop it at the end).
    pub launch: Option<crate::server::Launch>,
    /// Probe whether ignore_eos / min_tokens hold the output length.
    pub probe_length: bool,
    /// Neither flag was fixed by the user: the probe may switch them.
    pub length_controls_auto: bool,
    /// Retries per request where they are safe (connect errors, 429 with `Retry-After`).
    pub retries: u32,
    /// Time in-flight requests get to finish after an interruption.
    pub grace: Duration,
    /// The limit of the whole run, when one is set.
    pub deadline: Option<Deadline>,
}

/// Default of `[run] grace`.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// The limit of a whole run: at `at`, the run stops like an interruption and
/// cancels its in-flight requests at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    /// When the run must end.
    pub at: Instant,
    /// The limit as configured, for messages.
    pub limit: Duration,
}

impl Deadline {
    /// A deadline `limit` from now; `None` (no deadline) when the clock
    /// cannot represent that instant, which is the honest meaning of a limit
    /// beyond any time the run could take (limits are validated to at most
    /// [`crate::limits::MAX_DURATION`], so this does not happen in practice).
    pub fn after(limit: Duration) -> Option<Deadline> {
        Instant::now().checked_add(limit).map(|at| Deadline { at, limit })
    }
}

/// GPU telemetry settings.
#[derive(Debug, Clone)]
pub struct GpuPlan {
    /// auto, require or off.
    pub mode: crate::config::GpuMode,
    /// Sampling interval.
    pub interval: Duration,
    /// How to open NVML.
    pub nvml: crate::telemetry::nvml::NvmlOptions,
}

impl GpuPlan {
    /// No GPU telemetry.
    pub fn off() -> GpuPlan {
        GpuPlan {
            mode: crate::config::GpuMode::Off,
            interval: Duration::from_millis(100),
            nvml: crate::telemetry::nvml::NvmlOptions::default(),
        }
    }
}

impl RunPlan {
    /// The effective settings of `case`: flags, then suite, then config, then defaults.
    pub fn settings_for(&self, case: &Case) -> ResolvedSettings {
        let s = self.overrides.or(case.settings).or(self.config_defaults).or(DEFAULT_SETTINGS);
        ResolvedSettings {
            repetitions: s.repetitions.unwrap_or(10),
            warmup: s.warmup.unwrap_or(1),
            concurrency: s.concurrency.unwrap_or(1),
            request_rate: s.request_rate,
        }
    }
}

/// Settings of one case after the cascade.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResolvedSettings {
    /// Warm-phase requests.
    pub repetitions: u32,
    /// Unrecorded warm-up requests.
    pub warmup: u32,
    /// Warm-phase concurrency.
    pub concurrency: u32,
    /// Warm-phase Poisson rate.
    pub request_rate: Option<f64>,
}
