//! The schedule: for each case a cold request, warm-up, then the warm phase.
//!
//! The runner owns the order of requests and nothing else: it measures with
//! [`crate::client`], reports progress as [`RunEvent`]s to whoever listens
//! (terminal, tests) and returns [`Results`]. It never prints.
//!
//! Its parts, in the order a run meets them:
//! - [`plan`]: what to run (the validated [`RunPlan`] and each case's settings);
//! - `setup`: what the run learns and starts before the first case, through
//!   [`endpoints`] (preflight, token counts, cache reset), [`capabilities`]
//!   and the `samplers` (GPU, server metrics);
//! - `prompt_sizing`: each case's prompts, sized to its context length;
//! - `phase`: one case, phase by phase (cold, warm-up, warm);
//! - `dispatch`: the scheduler of a measured phase (concurrency, Poisson
//!   arrivals, collecting records, stopping);
//! - [`stop`]: interrupts, the deadline, abandoning a server that is gone;
//! - [`events`]: the progress a run reports;
//! - [`fingerprint`]: the machine and checkout that ran it.

pub mod capabilities;
mod dispatch;
pub mod endpoints;
pub mod events;
pub mod fingerprint;
mod phase;
pub mod plan;
mod prompt_sizing;
mod samplers;
mod setup;
pub mod stop;

use std::time::SystemTime;

use anyhow::anyhow;

use crate::client::Client;
use crate::exit::Failure;
use crate::results::{self, CaseResult, Environment, Results, Settings, SuiteInfo};
use crate::rng::Rng;

pub use events::{Reporter, RunEvent, Silent};
pub use fingerprint::environment;
pub use plan::{CacheReset, DEFAULT_GRACE, DEFAULT_SETTINGS, Deadline, GpuPlan, ResolvedSettings, RunPlan};
pub use stop::{StopHandle, StopReason, StopSignal};

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
    let mut warnings = Vec::new();
    let mut setup = setup::prepare(plan, &client, &run_id, launched, reporter, &mut stop, &mut warnings).await?;

    let total_requests: u64 = plan.suite.cases.iter().map(|c| 1 + u64::from(plan.settings_for(c).repetitions)).sum();
    reporter.event(&RunEvent::Started {
        server: Box::new(setup.server.clone()),
        cases: plan.suite.cases.len(),
        total_requests,
    });

    let cx = phase::Cases { plan, client: &client, run_id: &run_id };
    let mut tally = phase::Tally { warnings, ..phase::Tally::default() };
    let mut complete = true;
    let mut abandoned = false;
    for (i, case) in plan.suite.cases.iter().enumerate() {
        if stop.is_stopped() {
            complete = false;
            break;
        }
        match phase::run_case(&cx, &mut setup, i, case, reporter, &mut stop, &mut tally).await? {
            phase::CaseEnd::Done => {}
            phase::CaseEnd::Stopped => {
                complete = false;
                break;
            }
            phase::CaseEnd::Abandoned => {
                abandoned = true;
                complete = false;
                break;
            }
        }
    }
    let phase::Tally { cases, template_fps, mut warnings, .. } = tally;
    if abandoned {
        warnings.push(format!(
            "the server at {} stopped accepting connections; the run was abandoned",
            plan.client.base_url
        ));
    }

    summary_warnings(&cases, &mut warnings);
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
        environment: Environment { server: setup.server, gpu: setup.gpu, ..environment() },
        suite: SuiteInfo {
            name: plan.suite.name.clone(),
            source: plan.suite.source.clone(),
            seed: plan.suite.seed,
            fingerprint: hex::encode(sha2::Digest::finalize(suite_fp)),
        },
        settings: Settings {
            ignore_eos: setup.ignore_eos,
            min_tokens: setup.min_tokens,
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

/// What the phases' summaries say the user should know: counted chunks for
/// missing usage, short outputs, retries, missing `[DONE]`, cancellations.
fn summary_warnings(cases: &[CaseResult], warnings: &mut Vec<String>) {
    for case in cases {
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
}

fn new_run_id() -> String {
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let mut rng = Rng::from_parts(&[&nanos.to_le_bytes(), &std::process::id().to_le_bytes()]);
    format!("{:016x}", rng.next_u64())
}
