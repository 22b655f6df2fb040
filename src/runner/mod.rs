//! The schedule: for each case a cold request, warm-up, then the warm phase.
//!
//! The runner owns the order of requests and nothing else: it measures with
//! [`crate::client`], reports progress as [`RunEvent`]s to whoever listens
//! (terminal, tests) and returns [`Results`]. It never prints.

pub mod capabilities;
pub mod probe;
pub mod probes;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::anyhow;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::client::retry::RetryPolicy;
use crate::client::{Client, ClientConfig, Generation, PreparedRequest};
use crate::exit::Failure;
use crate::results::{
    self, CaseResult, Environment, ErrorClass, PhaseName, PhaseResult, PhaseSummary, PromptInfo, RequestError,
    RequestRecord, Results, ServerInfo, Settings, SuiteInfo, TokenSource,
};
use crate::rng::Rng;
use crate::suite::prompt::{self, Context};
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

/// Progress of a run, for display.
#[derive(Debug, Clone)]
pub enum RunEvent {
    /// The server answered; `total_requests` recorded requests will be sent.
    Started {
        /// Server facts.
        server: Box<ServerInfo>,
        /// Number of cases.
        cases: usize,
        /// Recorded requests in the whole run.
        total_requests: u64,
    },
    /// Prompts are being sized for a case.
    Sizing {
        /// Case id.
        case: String,
    },
    /// A case begins.
    CaseStarted {
        /// 1-based position.
        index: usize,
        /// Number of cases.
        total: usize,
        /// Case id.
        case: String,
    },
    /// One recorded request finished.
    RequestDone {
        /// Whether it succeeded.
        ok: bool,
    },
    /// A phase of a case finished.
    PhaseDone {
        /// Case id.
        case: String,
        /// Phase.
        phase: PhaseName,
        /// Its summary.
        summary: Box<PhaseSummary>,
    },
    /// Something the user should know.
    Warning(String),
}

/// Receives progress events.
pub trait Reporter {
    /// Called for each event, in order.
    fn event(&mut self, event: &RunEvent);
}

/// A reporter that ignores everything.
pub struct Silent;

impl Reporter for Silent {
    fn event(&mut self, _: &RunEvent) {}
}

/// Why a run stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// Ctrl-C or SIGTERM.
    Interrupted,
    /// The run's deadline passed.
    Deadline(Duration),
}

impl StopReason {
    /// What happened, for warnings and errors.
    pub fn describe(self) -> String {
        match self {
            StopReason::Interrupted => "the run was interrupted".into(),
            StopReason::Deadline(limit) => format!(
                "the run reached its deadline of {} ([run] deadline, --deadline)",
                humantime::format_duration(limit)
            ),
        }
    }
}

/// Where a run is with stopping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StopState {
    Running,
    /// No new requests; in-flight ones get the grace period.
    Draining(StopReason),
    /// In-flight requests are cancelled now.
    Cancelling(StopReason),
}

/// Raises a [`StopSignal`].
#[derive(Debug, Clone)]
pub struct StopHandle(Arc<watch::Sender<StopState>>);

impl StopHandle {
    /// Ctrl-C / SIGTERM: the first stops new requests and gives in-flight
    /// ones the grace period; the next cancels them.
    pub fn interrupt(&self) {
        self.0.send_modify(|s| {
            *s = match *s {
                StopState::Running => StopState::Draining(StopReason::Interrupted),
                StopState::Draining(r) | StopState::Cancelling(r) => StopState::Cancelling(r),
            }
        });
    }

    /// Stops the run and cancels in-flight requests at once (the deadline).
    pub fn cancel(&self, reason: StopReason) {
        self.0.send_modify(|s| {
            if !matches!(s, StopState::Cancelling(_)) {
                *s = StopState::Cancelling(reason);
            }
        });
    }
}

/// Stops a run early: the runner stops sending, lets in-flight requests
/// finish within the grace period (or cancels them at once), records them,
/// and returns what it has, marked incomplete.
#[derive(Debug, Clone)]
pub struct StopSignal(watch::Receiver<StopState>);

impl StopSignal {
    /// A signal and the handle that raises it.
    pub fn new() -> (StopHandle, StopSignal) {
        let (tx, rx) = watch::channel(StopState::Running);
        (StopHandle(Arc::new(tx)), StopSignal(rx))
    }

    /// A signal that never fires.
    pub fn never() -> StopSignal {
        let (tx, rx) = watch::channel(StopState::Running);
        // Keep the channel open forever so `stopped` stays pending.
        std::mem::forget(tx);
        StopSignal(rx)
    }

    fn is_stopped(&self) -> bool {
        *self.0.borrow() != StopState::Running
    }

    /// Why the run stopped, once it has.
    fn reason(&self) -> Option<StopReason> {
        match *self.0.borrow() {
            StopState::Running => None,
            StopState::Draining(r) | StopState::Cancelling(r) => Some(r),
        }
    }

    /// Resolves once the run is to stop sending.
    async fn stopped(&mut self) {
        self.wait(|s| *s != StopState::Running).await;
    }

    /// Resolves once in-flight requests are to be cancelled.
    async fn cancelled(&mut self) {
        self.wait(|s| matches!(s, StopState::Cancelling(_))).await;
    }

    async fn wait(&mut self, f: impl FnMut(&StopState) -> bool) {
        // An error means the sender is gone: then nobody can stop us.
        if self.0.wait_for(f).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// The error of a run that stopped before any case ran.
    fn before_cases(&self) -> Failure {
        let why = self.reason().unwrap_or(StopReason::Interrupted).describe();
        Failure::run(anyhow!("{why} before any case ran; nothing was measured"))
    }

    /// The message of a request the stop cancelled.
    fn cancel_message(&self) -> String {
        let why = self.reason().unwrap_or(StopReason::Interrupted).describe();
        format!("cancelled: {why} before the request finished")
    }
}

/// Awaits `fut` unless the run stops first (before any case ran).
async fn until_stopped<T>(stop: &mut StopSignal, fut: impl std::future::Future<Output = T>) -> Result<T, Failure> {
    tokio::select! {
        biased;
        v = fut => Ok(v),
        () = stop.stopped() => Err(stop.before_cases()),
    }
}

/// Awaits one measured request. When the run stops meanwhile, the request
/// gets the grace period to finish; `None` when it was cancelled.
async fn in_flight(
    fut: impl std::future::Future<Output = RequestRecord>,
    stop: &mut StopSignal,
    grace: Duration,
) -> Option<RequestRecord> {
    tokio::pin!(fut);
    tokio::select! {
        biased;
        r = &mut fut => return Some(r),
        () = stop.stopped() => {}
    }
    tokio::select! {
        biased;
        r = &mut fut => Some(r),
        () = stop.cancelled() => None,
        () = tokio::time::sleep(grace) => None,
    }
}

/// A completed request without `usage` from a server that streamed usage to
/// the capability probe is a failed request: its token count is a guess.
fn require_usage(record: &mut RequestRecord, expected: bool) {
    if expected && record.ok && record.output_tokens_source != TokenSource::Usage {
        record.ok = false;
        record.error = Some(RequestError {
            class: ErrorClass::BadResponse,
            status: None,
            message: "the stream carried no usage, though the server streamed usage to the capability probe; \
                      its token count would be a guess"
                .into(),
        });
    }
}

/// How prompts are sized.
enum Sizer {
    /// `/tokenize` plus the constant overhead the endpoint adds (chat template).
    Tokenize { overhead: i64 },
    /// `usage.prompt_tokens` of one-token probe requests.
    Usage,
}

/// Consecutive connection failures after which the run stops: the server is gone.
const MAX_CONSECUTIVE_CONNECT_ERRORS: u32 = 3;

/// Runs the plan. Returns the results, complete or not; an `Err` only when
/// nothing meaningful could be measured (server unreachable, bad model).
pub async fn run(plan: &RunPlan, reporter: &mut dyn Reporter, mut stop: StopSignal) -> Result<Results, Failure> {
    let client = Client::new(plan.client.clone()).map_err(Failure::run)?;
    let Some(launch) = &plan.launch else {
        return run_with(plan, reporter, stop, &client, None).await;
    };
    let started = tokio::select! {
        s = crate::server::start(launch, &client) => s?,
        // Dropping the start kills whatever it had started.
        _ = stop.stopped() => return Err(Failure::run(anyhow!(
            "{} while the server was starting",
            stop.reason().unwrap_or(StopReason::Interrupted).describe()
        ))),
    };
    let mut server = started;
    let info = crate::server::LaunchInfo {
        command: client.redact(&launch.command),
        time_to_ready_s: server.time_to_ready.as_secs_f64(),
        log: launch.log.display().to_string(),
    };
    reporter.event(&RunEvent::Warning(format!(
        "the server started by infergate was ready after {:.1} s (log: {})",
        info.time_to_ready_s, info.log
    )));
    let result = run_with(plan, reporter, stop, &client, Some(info)).await;
    server.stop().await;
    result
}

async fn run_with(
    plan: &RunPlan,
    reporter: &mut dyn Reporter,
    mut stop: StopSignal,
    client: &Client,
    launched: Option<crate::server::LaunchInfo>,
) -> Result<Results, Failure> {
    let started_at = SystemTime::now();
    let run_id = new_run_id();
    let client = client.clone();
    let facts = until_stopped(&mut stop, probe::preflight(&client)).await??;
    let mut warnings = Vec::new();

    let mut server = ServerInfo {
        host: crate::config::BaseUrl(plan.client.base_url.clone()).host(),
        model: plan.client.model.clone(),
        api: plan.client.api.as_str().into(),
        reported_version: facts.version.clone(),
        owned_by: facts.owned_by.clone(),
        max_model_len: facts.max_model_len,
        prompt_sizing: String::new(),
        cache_reset: None,
        launched,
        capabilities: None,
    };
    if let Some(max) = facts.max_model_len {
        for case in &plan.suite.cases {
            let need = u64::from(case.context_tokens) + u64::from(case.output_tokens);
            if need > max {
                return Err(Failure::invalid(anyhow!(
                    "case {} needs {need} tokens of context ({} prompt + {} output) but the server's model accepts {max}; \
                     leave it out with --cases, or serve the model with a longer context",
                    case.id,
                    case.context_tokens,
                    case.output_tokens
                )));
            }
        }
    }

    // The GPU recorder starts before any generation, so its first reading
    // is the memory the loaded model holds.
    let epoch = Instant::now();
    let (probes, gpu_info) =
        until_stopped(&mut stop, probes::Probes::start(plan, &client, epoch, &mut warnings)).await??;
    let mut caps = capabilities::Capabilities::default();
    until_stopped(&mut stop, capabilities::identify(&client, facts.owned_by.as_deref(), &mut caps)).await?;
    if caps.context_length.is_none() {
        caps.context_length = facts.max_model_len;
    }
    if server.reported_version.is_none() {
        server.reported_version = caps.version.clone();
    }
    let (mut ignore_eos, mut min_tokens) = (plan.ignore_eos, plan.min_tokens);
    if plan.probe_length {
        until_stopped(&mut stop, capabilities::probe_length(&client, &mut caps)).await?;
        // Adapt what was not fixed in the config: keep the controls that hold
        // the length; with none that does, send both and let the run show it.
        let (ie, mt) = (caps.ignore_eos_holds_length, caps.min_tokens_holds_length);
        if plan.length_controls_auto && (ie == Some(true) || mt == Some(true)) {
            ignore_eos = ie == Some(true);
            min_tokens = mt == Some(true);
        }
        if ie == Some(false) && mt == Some(false) {
            let w = "the server holds the output length with neither ignore_eos nor min_tokens: \
                     cases whose answers come out shorter are invalid rather than faster"
                .to_string();
            warnings.push(w);
        }
    }
    for w in &warnings {
        reporter.event(&RunEvent::Warning(w.clone()));
    }
    let sizer = until_stopped(&mut stop, choose_sizer(plan, &client, &run_id, &mut warnings)).await??;
    server.prompt_sizing = match sizer {
        Sizer::Tokenize { .. } => "tokenize".into(),
        Sizer::Usage => "usage".into(),
    };
    let mut cache_reset_path = match &plan.cache_reset {
        CacheReset::Off => None,
        CacheReset::Path(p) => Some(p.clone()),
        CacheReset::Auto => {
            let mut found = None;
            for path in probe::CACHE_RESET_PATHS {
                if let Ok(true) = until_stopped(&mut stop, probe::reset_cache(&client, path)).await? {
                    found = Some((*path).to_string());
                    break;
                }
            }
            found
        }
    };
    server.cache_reset = cache_reset_path.clone();
    caps.tokenize = matches!(sizer, Sizer::Tokenize { .. });
    caps.cache_reset = cache_reset_path.clone();
    // Usage is required of every measured request once the server showed it streams usage.
    let usage_expected = caps.usage_streamed == Some(true);
    server.capabilities = Some(caps);
    let retry = RetryPolicy {
        retries: plan.retries,
        max_wait: crate::client::retry::MAX_RETRY_WAIT,
        deadline: plan.deadline.map(|d| d.at),
    };

    let total_requests: u64 = plan.suite.cases.iter().map(|c| 1 + u64::from(plan.settings_for(c).repetitions)).sum();
    reporter.event(&RunEvent::Started {
        server: Box::new(server.clone()),
        cases: plan.suite.cases.len(),
        total_requests,
    });

    let mut cases = Vec::new();
    let mut complete = true;
    let mut template_fps = Vec::new();
    let mut connect_failures = 0u32;
    let mut abandoned = false;
    'cases: for (i, case) in plan.suite.cases.iter().enumerate() {
        if stop.is_stopped() {
            complete = false;
            break;
        }
        let settings = plan.settings_for(case);
        reporter.event(&RunEvent::Sizing { case: case.id.clone() });
        let prepared = tokio::select! {
            p = prepare_case(plan, &client, &sizer, &run_id, case) => p?,
            _ = stop.stopped() => { complete = false; break 'cases; }
        };
        template_fps.push(prepared.info.template_fingerprint.clone());
        let achieved = f64::from(prepared.info.tokens);
        let target = f64::from(case.context_tokens);
        if (achieved - target).abs() / target > 0.01 {
            let w = format!(
                "{}: the prompt has {} tokens, more than 1% away from the target {}",
                case.id, prepared.info.tokens, case.context_tokens
            );
            reporter.event(&RunEvent::Warning(w.clone()));
            warnings.push(w);
        }
        reporter.event(&RunEvent::CaseStarted { index: i + 1, total: plan.suite.cases.len(), case: case.id.clone() });
        let generation = Generation {
            max_tokens: case.output_tokens,
            ignore_eos,
            min_tokens,
            continuous_usage: plan.continuous_usage,
            stream: true,
        };

        // Cold: a fresh salt (and a cache reset where the server has one).
        if let Some(path) = cache_reset_path.clone() {
            let reset = tokio::select! {
                r = probe::reset_cache(&client, &path) => r,
                _ = stop.stopped() => { complete = false; break 'cases; }
            };
            match reset {
                Ok(true) => {}
                Ok(false) | Err(_) => {
                    let w = format!(
                        "prefix-cache reset via POST {path} failed; cold requests rely on the unique salt alone"
                    );
                    reporter.event(&RunEvent::Warning(w.clone()));
                    warnings.push(w);
                    cache_reset_path = None;
                }
            }
        }
        if stop.is_stopped() {
            complete = false;
            break;
        }
        let cold_req =
            client.prepare(&prompt::with_salt(&prepared.cold_salt, &prepared.body), generation).for_case(&case.id);
        let from = probes.mark().await;
        let phase_start = Instant::now();
        let cold = in_flight(client.measure_with_retries(&cold_req, phase_start, &retry), &mut stop, plan.grace).await;
        let mut cold = cold.unwrap_or_else(|| RequestRecord::cancelled(0, 0.0, &stop.cancel_message()));
        require_usage(&mut cold, usage_expected);
        let cold_duration = phase_start.elapsed().as_secs_f64();
        let to = probes.mark().await;
        reporter.event(&RunEvent::RequestDone { ok: cold.ok });
        let mut phases = BTreeMap::new();
        let cold_phase = finish_phase(vec![cold], cold_duration, case.output_tokens, &probes, (from, to));
        reporter.event(&RunEvent::PhaseDone {
            case: case.id.clone(),
            phase: PhaseName::Cold,
            summary: Box::new(cold_phase.summary.clone()),
        });
        connect_failures = count_connect_failures(connect_failures, &cold_phase.requests);
        phases.insert(PhaseName::Cold, cold_phase);
        if connect_failures >= MAX_CONSECUTIVE_CONNECT_ERRORS {
            abandoned = true;
        }
        if abandoned || stop.is_stopped() {
            cases.push(case_result(case, &settings, prepared.info, phases));
            complete = false;
            break;
        }

        // Warm-up (unrecorded, so cancelled at once on a stop), then the warm
        // phase on the shared warm prompt.
        let warm_req = Arc::new(
            client.prepare(&prompt::with_salt(&prepared.warm_salt, &prepared.body), generation).for_case(&case.id),
        );
        for _ in 0..settings.warmup {
            let r = tokio::select! {
                r = client.measure_with_retries(&warm_req, Instant::now(), &retry) => r,
                _ = stop.stopped() => break,
            };
            if let Some(e) = r.error.filter(|_| !r.ok) {
                let w = format!("{}: a warm-up request failed ({}: {})", case.id, e.class.as_str(), e.message);
                reporter.event(&RunEvent::Warning(w.clone()));
                warnings.push(w);
            }
        }
        if stop.is_stopped() {
            cases.push(case_result(case, &settings, prepared.info, phases));
            complete = false;
            break;
        }
        let from = probes.mark().await;
        let warm = Warm { client: &client, request: &warm_req, retry, usage_expected, grace: plan.grace };
        let (records, duration, stopped) = run_warm(&warm, &settings, case, reporter, &mut stop).await;
        let to = probes.mark().await;
        let warm_phase = finish_phase(records, duration, case.output_tokens, &probes, (from, to));
        reporter.event(&RunEvent::PhaseDone {
            case: case.id.clone(),
            phase: PhaseName::Warm,
            summary: Box::new(warm_phase.summary.clone()),
        });
        connect_failures = count_connect_failures(connect_failures, &warm_phase.requests);
        phases.insert(PhaseName::Warm, warm_phase);
        cases.push(case_result(case, &settings, prepared.info, phases));
        if stopped {
            complete = false;
            break;
        }
        if connect_failures >= MAX_CONSECUTIVE_CONNECT_ERRORS {
            abandoned = true;
            complete = false;
            break;
        }
    }
    if abandoned {
        warnings.push(format!(
            "the server at {} stopped accepting connections; the run was abandoned",
            plan.client.base_url
        ));
    }

    for case in &cases {
        for (name, phase) in &case.phases {
            let s = &phase.summary;
            if s.usage_missing > 0 {
                warnings.push(format!(
                    "{} {}: the server sent no usage for {} request(s); their output tokens are counted chunks",
                    case.id,
                    name.as_str(),
                    s.usage_missing
                ));
            }
            if s.short_outputs > 0 {
                warnings.push(format!(
                    "{} {}: output length not enforced by the server: {} request(s) produced fewer than the {} output tokens asked for (the server did not hold the output length)",
                    case.id,
                    name.as_str(),
                    s.short_outputs,
                    case.output_tokens
                ));
            }
            if s.retried > 0 {
                warnings.push(format!(
                    "{} {}: {} request(s) needed more than one attempt (see `attempts` and `retries` in the results)",
                    case.id,
                    name.as_str(),
                    s.retried
                ));
            }
            if s.done_missing > 0 {
                warnings.push(format!(
                    "{} {}: {} stream(s) ended after their finish_reason without data: [DONE]; they count as complete",
                    case.id,
                    name.as_str(),
                    s.done_missing
                ));
            }
            if s.cancelled > 0 {
                warnings.push(format!(
                    "{} {}: {} request(s) were cancelled when the run stopped (not counted as errors)",
                    case.id,
                    name.as_str(),
                    s.cancelled
                ));
            }
        }
    }
    if !complete && !abandoned {
        let why = stop.reason().unwrap_or(StopReason::Interrupted).describe();
        warnings.push(format!("{why}: results are partial"));
    }

    let mut suite_fp = sha2::Sha256::default();
    for fp in &template_fps {
        sha2::Digest::update(&mut suite_fp, fp.as_bytes());
    }
    Ok(Results {
        schema: results::SCHEMA.into(),
        run_id,
        complete,
        started_at: humantime::format_rfc3339_seconds(started_at).to_string(),
        finished_at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        environment: Environment { server, gpu: gpu_info, ..environment() },
        suite: SuiteInfo {
            name: plan.suite.name.clone(),
            source: plan.suite.source.clone(),
            seed: plan.suite.seed,
            fingerprint: hex::encode(sha2::Digest::finalize(suite_fp)),
        },
        settings: Settings {
            ignore_eos,
            min_tokens,
            request_timeout_s: plan.client.request_timeout.as_secs_f64(),
            idle_timeout_s: plan.client.idle_timeout.as_secs_f64(),
            cases_filter: plan.cases_filter.clone(),
            retries: plan.retries,
            deadline_s: plan.deadline.map(|d| d.limit.as_secs_f64()),
            grace_s: Some(plan.grace.as_secs_f64()),
        },
        cases,
        warnings: warnings.iter().map(|w| crate::text::redact_userinfo(w).into_owned()).collect(),
    })
}

fn count_connect_failures(previous: u32, records: &[RequestRecord]) -> u32 {
    let mut n = previous;
    for r in records {
        match &r.error {
            Some(e) if e.class == ErrorClass::Connect => n += 1,
            _ => n = 0,
        }
    }
    n
}

fn case_result(
    case: &Case,
    settings: &ResolvedSettings,
    prompt: PromptInfo,
    phases: BTreeMap<PhaseName, PhaseResult>,
) -> CaseResult {
    CaseResult {
        id: case.id.clone(),
        scenario: case.scenario.clone(),
        context_tokens: case.context_tokens,
        output_tokens: case.output_tokens,
        repetitions: settings.repetitions,
        warmup: settings.warmup,
        concurrency: settings.concurrency,
        request_rate: settings.request_rate,
        prompt,
        phases,
    }
}

/// Summarises a phase and keeps the output text of its first good request only.
fn finish_phase(
    mut records: Vec<RequestRecord>,
    duration_s: f64,
    asked: u32,
    probes: &probes::Probes,
    window: (Instant, Instant),
) -> PhaseResult {
    records.sort_by_key(|r| r.index);
    let mut kept = false;
    for r in &mut records {
        if r.ok && !kept {
            kept = true;
        } else {
            r.output_text = None;
        }
    }
    let summary = PhaseSummary::from_records(&records, duration_s, asked);
    let (gpu, server_metrics) = probes.phase(window.0, window.1, summary.total_output_tokens);
    PhaseResult { summary, gpu, server_metrics, requests: records }
}

/// What every warm request shares.
struct Warm<'a> {
    client: &'a Client,
    request: &'a Arc<PreparedRequest>,
    retry: RetryPolicy,
    usage_expected: bool,
    grace: Duration,
}

/// The warm phase: `repetitions` requests, at most `concurrency` in flight,
/// arriving as a Poisson process when a rate is set. On a stop no request is
/// started any more; those in flight get the grace period, and the rest are
/// recorded as cancelled. Returns the records, the phase duration, and
/// whether it was stopped.
async fn run_warm(
    warm: &Warm<'_>,
    settings: &ResolvedSettings,
    case: &Case,
    reporter: &mut dyn Reporter,
    stop: &mut StopSignal,
) -> (Vec<RequestRecord>, f64, bool) {
    let epoch = Instant::now();
    let permits = Arc::new(Semaphore::new(settings.concurrency as usize));
    let mut arrivals = Rng::from_parts(&[case.id.as_bytes(), b"arrivals"]);
    let mut next_arrival = epoch;
    let mut tasks: JoinSet<RequestRecord> = JoinSet::new();
    // Requests in flight: index and start (ms into the phase).
    let mut pending: BTreeMap<u32, f64> = BTreeMap::new();
    let mut records = Vec::new();
    let mut stopped = false;
    let mut collect = |r: RequestRecord, pending: &mut BTreeMap<u32, f64>, records: &mut Vec<RequestRecord>| {
        pending.remove(&r.index);
        reporter.event(&RunEvent::RequestDone { ok: r.ok });
        records.push(r);
    };
    for index in 0..settings.repetitions {
        if let Some(rate) = settings.request_rate {
            // Rates are validated (`limits::check_rate`); the clamped
            // arithmetic keeps even a draw far in the tail from panicking.
            next_arrival = crate::limits::after_secs(next_arrival, arrivals.exponential(1.0 / rate));
        }
        // Wait for the arrival time and a free slot, collecting finished requests meanwhile.
        let permit = loop {
            tokio::select! {
                biased;
                _ = stop.stopped() => { stopped = true; break None; }
                Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                    if let Ok(r) = done {
                        collect(r, &mut pending, &mut records);
                    }
                }
                p = async {
                    tokio::time::sleep_until(next_arrival.into()).await;
                    permits.clone().acquire_owned().await
                } => break p.ok(),
            }
        };
        let Some(permit) = permit else { break };
        let client = warm.client.clone();
        let request = Arc::clone(warm.request);
        let (retry, usage_expected) = (warm.retry, warm.usage_expected);
        pending.insert(index, round_ms(epoch.elapsed()));
        tasks.spawn(async move {
            let mut r = client.measure_with_retries(&request, epoch, &retry).await;
            require_usage(&mut r, usage_expected);
            r.index = index;
            drop(permit);
            r
        });
    }
    // Collect the rest; after a stop, only within the grace period.
    let mut cancel = stop.clone();
    let mut grace_end = stopped.then(|| crate::limits::after(Instant::now(), warm.grace));
    loop {
        let grace = async {
            match grace_end {
                Some(t) => tokio::time::sleep_until(t.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            done = tasks.join_next() => match done {
                Some(Ok(r)) => collect(r, &mut pending, &mut records),
                Some(Err(_)) => {}
                None => break,
            },
            _ = stop.stopped(), if grace_end.is_none() => {
                stopped = true;
                grace_end = Some(crate::limits::after(Instant::now(), warm.grace));
            }
            _ = cancel.cancelled(), if grace_end.is_some() => break,
            () = grace => break,
        }
    }
    tasks.abort_all();
    while let Some(done) = tasks.join_next().await {
        if let Ok(r) = done {
            collect(r, &mut pending, &mut records);
        }
    }
    let why = stop.cancel_message();
    for (index, start_ms) in pending {
        reporter.event(&RunEvent::RequestDone { ok: false });
        records.push(RequestRecord::cancelled(index, start_ms, &why));
    }
    (records, epoch.elapsed().as_secs_f64(), stopped)
}

/// Milliseconds of `d`, rounded to the microsecond.
fn round_ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// A case's prompts, sized.
struct PreparedCase {
    body: String,
    cold_salt: String,
    warm_salt: String,
    info: PromptInfo,
}

async fn choose_sizer(
    plan: &RunPlan,
    client: &Client,
    run_id: &str,
    warnings: &mut Vec<String>,
) -> Result<Sizer, Failure> {
    let base = &plan.client.base_url;
    let probe_text =
        prompt::with_salt(&prompt::salt_line(&mut Rng::from_parts(&[run_id.as_bytes(), b"probe"])), "Say hi.");
    if plan.use_tokenize {
        if let Ok(raw) = probe::tokenize(client, &probe_text).await {
            // The endpoint counts the bare text; a real request adds the chat
            // template (and special tokens): measure that constant once.
            return match probe::usage_prompt_tokens(client, &probe_text).await {
                Ok(real) => Ok(Sizer::Tokenize { overhead: i64::from(real) - i64::from(raw) }),
                Err(e) => {
                    warnings.push(format!(
                        "the server reports no usage.prompt_tokens ({}); prompt sizes count the text alone, without the chat template",
                        e.message
                    ));
                    Ok(Sizer::Tokenize { overhead: 0 })
                }
            };
        }
    }
    match probe::usage_prompt_tokens(client, &probe_text).await {
        Ok(_) => Ok(Sizer::Usage),
        Err(e) => Err(Failure::run(anyhow!(
            "cannot size prompts: the server at {base} has no usable POST /tokenize and its probe request failed: {}",
            e.message
        ))),
    }
}

async fn prepare_case(
    plan: &RunPlan,
    client: &Client,
    sizer: &Sizer,
    run_id: &str,
    case: &Case,
) -> Result<PreparedCase, Failure> {
    let seed = plan.suite.seed.to_le_bytes();
    // The warm prompt is the same in every run (so greedy outputs can be
    // compared across runs); the cold one is unique to this run.
    let warm_salt = prompt::salt_line(&mut Rng::from_parts(&[&seed, case.id.as_bytes(), b"warm"]));
    let cold_salt = prompt::salt_line(&mut Rng::from_parts(&[run_id.as_bytes(), case.id.as_bytes(), b"cold"]));
    // Generous: code is 3-5 characters per token; regenerate larger if short.
    let mut chars = case.context_tokens as usize * 6 + 2000;
    loop {
        let context = Context::generate(&mut Rng::from_parts(&[&seed, case.scenario.as_bytes()]), chars);
        let build =
            |words: usize| prompt::with_salt(&warm_salt, &prompt::body(context.prefix(words), &case.instruction));
        let max_calls = match sizer {
            Sizer::Tokenize { .. } => 40,
            Sizer::Usage => 8,
        };
        let sized = prompt::size_to_target(case.context_tokens, context.words(), max_calls, |words| {
            let text = build(words);
            async move {
                match sizer {
                    Sizer::Tokenize { overhead } => {
                        probe::tokenize(client, &text).await.map(|n| (i64::from(n) + overhead).max(0) as u32)
                    }
                    Sizer::Usage => probe::usage_prompt_tokens(client, &text).await,
                }
            }
        })
        .await
        .map_err(|e| Failure::run(anyhow!("sizing the prompt of {} failed: {}", case.id, e.message)))?;
        if sized.words >= context.words()
            && sized.tokens < case.context_tokens
            && chars < 64 * case.context_tokens as usize
        {
            chars *= 2;
            continue;
        }
        let body = prompt::body(context.prefix(sized.words), &case.instruction);
        let info = PromptInfo {
            template_fingerprint: prompt::template_fingerprint(
                plan.suite.seed,
                &case.scenario,
                &case.instruction,
                case.context_tokens,
            ),
            text_fingerprint: prompt::text_fingerprint(&prompt::with_salt(&warm_salt, &body)),
            tokens: sized.tokens,
            chars: body.len(),
        };
        return Ok(PreparedCase { body, cold_salt, warm_salt, info });
    }
}

fn new_run_id() -> String {
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let mut rng = Rng::from_parts(&[&nanos.to_le_bytes(), &std::process::id().to_le_bytes()]);
    format!("{:016x}", rng.next_u64())
}

/// Facts about the machine running infergate.
pub fn environment() -> Environment {
    let git = |args: &[&str]| -> Option<String> {
        let out = std::process::Command::new("git").args(args).stderr(std::process::Stdio::null()).output().ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let git_commit = git(&["rev-parse", "HEAD"]).filter(|s| !s.is_empty());
    let git_dirty = git_commit
        .as_ref()
        .and_then(|_| git(&["status", "--porcelain", "--untracked-files=no"]))
        .map(|s| !s.is_empty());
    Environment {
        tool_version: env!("CARGO_PKG_VERSION").into(),
        git_commit,
        git_dirty,
        os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease").ok().map(|s| s.trim().to_string()),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        server: ServerInfo::default(),
        gpu: crate::telemetry::GpuInfo::default(),
    }
}
