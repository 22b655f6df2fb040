//! Before the first case: check that the server answers and serves the
//! model, refuse cases longer than its context, start the samplers, find out
//! what the server can do (engine, usage, length controls), choose how
//! prompts are sized and how prefix caches are reset, and fix the retry
//! policy. Everything the cases share comes out as one [`Setup`].

use std::time::Instant;

use anyhow::anyhow;

use super::capabilities::{self, Capabilities};
use super::events::{Reporter, RunEvent};
use super::prompt_sizing::{self, Sizer};
use super::samplers::Samplers;
use super::stop::{StopSignal, until_stopped};
use super::{CacheReset, RunPlan, endpoints};
use crate::client::Client;
use crate::client::retry::RetryPolicy;
use crate::exit::Failure;
use crate::results::ServerInfo;
use crate::telemetry::GpuInfo;

/// What the cases of a run share.
pub(super) struct Setup {
    /// The server's facts, capabilities included, for the results.
    pub server: ServerInfo,
    /// The GPU recorder and the metrics scraper, running.
    pub samplers: Samplers,
    /// The GPUs, for the results.
    pub gpu: GpuInfo,
    /// How prompts are sized.
    pub sizer: Sizer,
    /// Send `ignore_eos`, after the length probe.
    pub ignore_eos: bool,
    /// Send `min_tokens`, after the length probe.
    pub min_tokens: bool,
    /// Every measured request must carry usage: the server streamed it to the probe.
    pub usage_expected: bool,
    /// Retries of measured requests.
    pub retry: RetryPolicy,
    /// Where prefix caches are reset before cold requests; cleared once a
    /// reset fails.
    pub cache_reset: Option<String>,
}

/// Prepares the run. Warnings found up to the length probe are reported as
/// they are today (as events, then in the results); those of the sizing
/// choice go into the results only. An error when the server cannot be
/// measured, a case does not fit its context, or the run stops first.
pub(super) async fn prepare(
    plan: &RunPlan,
    client: &Client,
    run_id: &str,
    launched: Option<crate::server::LaunchInfo>,
    reporter: &mut dyn Reporter,
    stop: &mut StopSignal,
    warnings: &mut Vec<String>,
) -> Result<Setup, Failure> {
    let facts = until_stopped(stop, endpoints::preflight(client)).await??;
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
    let (samplers, gpu) = until_stopped(stop, Samplers::start(plan, client, epoch, warnings)).await??;
    let mut caps = Capabilities::default();
    until_stopped(stop, capabilities::identify(client, facts.owned_by.as_deref(), &mut caps)).await?;
    if caps.context_length.is_none() {
        caps.context_length = facts.max_model_len;
    }
    if server.reported_version.is_none() {
        server.reported_version = caps.version.clone();
    }
    let (mut ignore_eos, mut min_tokens) = (plan.ignore_eos, plan.min_tokens);
    if plan.probe_length {
        until_stopped(stop, capabilities::probe_length(client, &mut caps)).await?;
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
    for w in warnings.iter() {
        reporter.event(&RunEvent::Warning(w.clone()));
    }
    let sizer = until_stopped(stop, prompt_sizing::choose_sizer(plan, client, run_id, warnings)).await??;
    server.prompt_sizing = sizer.name().into();
    let cache_reset = match &plan.cache_reset {
        CacheReset::Off => None,
        CacheReset::Path(p) => Some(p.clone()),
        CacheReset::Auto => {
            let mut found = None;
            for path in endpoints::CACHE_RESET_PATHS {
                if let Ok(true) = until_stopped(stop, endpoints::reset_cache(client, path)).await? {
                    found = Some((*path).to_string());
                    break;
                }
            }
            found
        }
    };
    server.cache_reset = cache_reset.clone();
    caps.tokenize = matches!(sizer, Sizer::Tokenize { .. });
    caps.cache_reset = cache_reset.clone();
    // Usage is required of every measured request once the server showed it streams usage.
    let usage_expected = caps.usage_streamed == Some(true);
    server.capabilities = Some(caps);
    let retry = RetryPolicy {
        retries: plan.retries,
        max_wait: crate::client::retry::MAX_RETRY_WAIT,
        deadline: plan.deadline.map(|d| d.at),
    };
    Ok(Setup { server, samplers, gpu, sizer, ignore_eos, min_tokens, usage_expected, retry, cache_reset })
}
