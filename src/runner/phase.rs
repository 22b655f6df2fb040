//! One case, phase by phase: size its prompts, then the cold phase (a cache
//! reset where the server has one and a request on a fresh salt), the
//! unrecorded warm-up, and the warm phase, which the dispatcher schedules.
//! Each phase is cut out of the samplers' readings by its window and
//! summarised; the case ends early when the run stops or its server is gone.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use super::dispatch::{self, Measure, Schedule};
use super::events::{Reporter, RunEvent};
use super::plan::ResolvedSettings;
use super::prompt_sizing;
use super::samplers::Samplers;
use super::setup::Setup;
use super::stop::{self, MAX_CONSECUTIVE_CONNECT_ERRORS, StopSignal};
use super::{RunPlan, endpoints};
use crate::client::retry::RetryPolicy;
use crate::client::{Client, Generation, PreparedRequest};
use crate::exit::Failure;
use crate::results::{
    CaseResult, ErrorClass, PhaseName, PhaseResult, PhaseSummary, PromptInfo, RequestError, RequestRecord, TokenSource,
};
use crate::suite::Case;
use crate::suite::prompt;

/// What the cases of a run share.
pub(super) struct Cases<'a> {
    /// The plan.
    pub plan: &'a RunPlan,
    /// The client of measured requests.
    pub client: &'a Client,
    /// The run's id (it salts the cold prompts).
    pub run_id: &'a str,
}

/// What the case loop carries from case to case.
#[derive(Default)]
pub(super) struct Tally {
    /// The cases measured (a case stopped after its cold phase included).
    pub cases: Vec<CaseResult>,
    /// The template fingerprint of every case whose prompt was sized.
    pub template_fps: Vec<String>,
    /// Warnings for the results.
    pub warnings: Vec<String>,
    /// Consecutive connection failures so far.
    pub connect_failures: u32,
}

/// How a case ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CaseEnd {
    /// It ran to the end; the next case may start.
    Done,
    /// The run was stopped during it.
    Stopped,
    /// The server stopped accepting connections: the run is abandoned.
    Abandoned,
}

/// A measured request of a case, as the client sends it.
pub(super) struct ClientRequest {
    client: Client,
    request: PreparedRequest,
    retry: RetryPolicy,
    usage_expected: bool,
}

impl Measure for ClientRequest {
    async fn measure(&self, _index: u32, epoch: tokio::time::Instant) -> RequestRecord {
        let mut r = self.client.measure_with_retries(&self.request, epoch.into_std(), &self.retry).await;
        require_usage(&mut r, self.usage_expected);
        r
    }
}

/// Runs case `index` (0-based) of the plan: appends its result (when a phase
/// of it ran) to `tally` and says whether the run goes on. An error only when
/// its prompt cannot be sized.
pub(super) async fn run_case(
    cx: &Cases<'_>,
    setup: &mut Setup,
    index: usize,
    case: &Case,
    reporter: &mut dyn Reporter,
    stop: &mut StopSignal,
    tally: &mut Tally,
) -> Result<CaseEnd, Failure> {
    let (plan, client) = (cx.plan, cx.client);
    let settings = plan.settings_for(case);
    reporter.event(&RunEvent::Sizing { case: case.id.clone() });
    let prepared = tokio::select! {
        p = prompt_sizing::prepare_case(plan, client, &setup.sizer, cx.run_id, case) => p?,
        _ = stop.stopped() => return Ok(CaseEnd::Stopped),
    };
    tally.template_fps.push(prepared.info.template_fingerprint.clone());
    let achieved = f64::from(prepared.info.tokens);
    let target = f64::from(case.context_tokens);
    if (achieved - target).abs() / target > 0.01 {
        let w = format!(
            "{}: the prompt has {} tokens, more than 1% away from the target {}",
            case.id, prepared.info.tokens, case.context_tokens
        );
        warn(reporter, tally, w);
    }
    reporter.event(&RunEvent::CaseStarted { index: index + 1, total: plan.suite.cases.len(), case: case.id.clone() });
    let generation = Generation {
        max_tokens: case.output_tokens,
        ignore_eos: setup.ignore_eos,
        min_tokens: setup.min_tokens,
        continuous_usage: plan.continuous_usage,
        stream: true,
    };
    let request = |salt: &str| ClientRequest {
        client: client.clone(),
        request: client.prepare(&prompt::with_salt(salt, &prepared.body), generation).for_case(&case.id),
        retry: setup.retry,
        usage_expected: setup.usage_expected,
    };

    // Cold: a fresh salt (and a cache reset where the server has one).
    if let Some(path) = setup.cache_reset.clone() {
        let reset = tokio::select! {
            r = endpoints::reset_cache(client, &path) => r,
            _ = stop.stopped() => return Ok(CaseEnd::Stopped),
        };
        match reset {
            Ok(true) => {}
            Ok(false) | Err(_) => {
                let w =
                    format!("prefix-cache reset via POST {path} failed; cold requests rely on the unique salt alone");
                warn(reporter, tally, w);
                setup.cache_reset = None;
            }
        }
    }
    if stop.is_stopped() {
        return Ok(CaseEnd::Stopped);
    }
    let cold_req = request(&prepared.cold_salt);
    let mut phases = BTreeMap::new();
    let cold = cold_phase(&cold_req, case, &setup.samplers, plan, reporter, stop).await;
    tally.connect_failures = stop::count_connect_failures(tally.connect_failures, &cold.requests);
    phases.insert(PhaseName::Cold, cold);
    let end = if tally.connect_failures >= MAX_CONSECUTIVE_CONNECT_ERRORS {
        Some(CaseEnd::Abandoned)
    } else {
        stop.is_stopped().then_some(CaseEnd::Stopped)
    };
    if let Some(end) = end {
        tally.cases.push(case_result(case, &settings, prepared.info, phases));
        return Ok(end);
    }

    // Warm-up (unrecorded, so cancelled at once on a stop), then the warm
    // phase on the shared warm prompt.
    let warm_req = Arc::new(request(&prepared.warm_salt));
    for _ in 0..settings.warmup {
        let r = tokio::select! {
            r = client.measure_with_retries(&warm_req.request, Instant::now(), &setup.retry) => r,
            _ = stop.stopped() => break,
        };
        if let Some(e) = r.error.filter(|_| !r.ok) {
            let w = format!("{}: a warm-up request failed ({}: {})", case.id, e.class.as_str(), e.message);
            warn(reporter, tally, w);
        }
    }
    if stop.is_stopped() {
        tally.cases.push(case_result(case, &settings, prepared.info, phases));
        return Ok(CaseEnd::Stopped);
    }
    let (warm, stopped) = warm_phase(&warm_req, case, &settings, &setup.samplers, plan, reporter, stop).await;
    tally.connect_failures = stop::count_connect_failures(tally.connect_failures, &warm.requests);
    phases.insert(PhaseName::Warm, warm);
    tally.cases.push(case_result(case, &settings, prepared.info, phases));
    Ok(if stopped {
        CaseEnd::Stopped
    } else if tally.connect_failures >= MAX_CONSECUTIVE_CONNECT_ERRORS {
        CaseEnd::Abandoned
    } else {
        CaseEnd::Done
    })
}

/// The cold phase: one request. When the run stops meanwhile it gets the
/// grace period, else it is recorded as cancelled.
async fn cold_phase(
    request: &ClientRequest,
    case: &Case,
    samplers: &Samplers,
    plan: &RunPlan,
    reporter: &mut dyn Reporter,
    stop: &mut StopSignal,
) -> PhaseResult {
    let from = samplers.mark().await;
    let phase_start = Instant::now();
    let epoch = tokio::time::Instant::from_std(phase_start);
    let cold = stop::in_flight(request.measure(0, epoch), stop, plan.grace).await;
    let cold = cold.unwrap_or_else(|| RequestRecord::cancelled(0, 0.0, &stop.cancel_message()));
    let duration_s = phase_start.elapsed().as_secs_f64();
    let to = samplers.mark().await;
    reporter.event(&RunEvent::RequestDone { ok: cold.ok });
    let phase = finish_phase(vec![cold], duration_s, case.output_tokens, samplers, (from, to));
    reporter.event(&RunEvent::PhaseDone {
        case: case.id.clone(),
        phase: PhaseName::Cold,
        summary: Box::new(phase.summary.clone()),
    });
    phase
}

/// The warm phase: `repetitions` requests, dispatched at the case's
/// concurrency or rate. Returns the phase and whether the run was stopped
/// during it.
async fn warm_phase(
    request: &Arc<ClientRequest>,
    case: &Case,
    settings: &ResolvedSettings,
    samplers: &Samplers,
    plan: &RunPlan,
    reporter: &mut dyn Reporter,
    stop: &mut StopSignal,
) -> (PhaseResult, bool) {
    let schedule = Schedule {
        requests: settings.repetitions,
        concurrency: settings.concurrency,
        rate: settings.request_rate,
        seed: &case.id,
    };
    let from = samplers.mark().await;
    let done = dispatch::dispatch(request, &schedule, plan.grace, reporter, stop).await;
    let to = samplers.mark().await;
    let phase = finish_phase(done.records, done.duration_s, case.output_tokens, samplers, (from, to));
    reporter.event(&RunEvent::PhaseDone {
        case: case.id.clone(),
        phase: PhaseName::Warm,
        summary: Box::new(phase.summary.clone()),
    });
    (phase, done.stopped)
}

/// Reports a warning now and keeps it for the results.
fn warn(reporter: &mut dyn Reporter, tally: &mut Tally, w: String) {
    reporter.event(&RunEvent::Warning(w.clone()));
    tally.warnings.push(w);
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
    samplers: &Samplers,
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
    let (gpu, server_metrics) = samplers.phase(window.0, window.1, summary.total_output_tokens);
    PhaseResult { summary, gpu, server_metrics, requests: records }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn completed(source: TokenSource) -> RequestRecord {
        let mut r = RequestRecord::cancelled(0, 0.0, "");
        r.ok = true;
        r.error = None;
        r.output_tokens = Some(8);
        r.output_tokens_source = source;
        r
    }

    #[test]
    fn a_request_without_usage_fails_only_where_usage_was_streamed() {
        let mut r = completed(TokenSource::ChunkCount);
        require_usage(&mut r, false);
        assert!(r.ok);
        require_usage(&mut r, true);
        assert!(!r.ok);
        assert_eq!(r.error.map(|e| e.class), Some(ErrorClass::BadResponse));
        let mut r = completed(TokenSource::Usage);
        require_usage(&mut r, true);
        assert!(r.ok);
        // A failed request keeps its own error.
        let mut r = RequestRecord::cancelled(0, 0.0, "why");
        require_usage(&mut r, true);
        assert_eq!(r.error.map(|e| e.class), Some(ErrorClass::Cancelled));
    }
}
