//! Synthetic results from the simulator's performance model, without HTTP.
//!
//! The gate's false-alarm and detection rates are properties of its
//! statistics under a noise model; measuring them needs thousands of runs,
//! which real HTTP cannot afford. This module draws each request's timings
//! from the same model the simulator serves with (`planned_ttft_ms`,
//! `token_interval_ms`, `request_factor`), so the Monte Carlo checks the gate
//! against the simulator's behaviour, fast and reproducibly.

use std::collections::BTreeMap;

use super::SimConfig;
use super::model;
use infergate_core::results::{
    self, CaseResult, Environment, PhaseName, PhaseResult, PhaseSummary, PromptInfo, RequestRecord, Results,
    ServerInfo, Settings, SuiteInfo, TokenSource,
};
use infergate_core::suite::{Case, Suite, prompt};

/// Requests a real run sends before the first case (the capability probe).
const PROBE_REQUESTS: u64 = 3;

/// Results of one simulated run of `suite` with `repetitions` warm requests
/// per case; `run` numbers the run. Each run is a launch of its own: its
/// seed (hence its run-to-run drift and every request's draws) comes from
/// the config's seed and `run`, and its requests are numbered from launch as
/// a real run sends them (probe, then per case the cold request, one
/// unrecorded warm-up and the repetitions), so warm-up and autocorrelation
/// fall where they would.
pub fn run(config: &SimConfig, suite: &Suite, repetitions: u32, run: u64) -> Results {
    let launch =
        infergate_core::rng::Rng::from_parts(&[&config.seed.to_le_bytes(), &run.to_le_bytes(), b"launch"]).next_u64();
    let config = &SimConfig { seed: launch, ..config.clone() };
    let mut number = PROBE_REQUESTS;
    let mut next = || {
        number += 1;
        number - 1
    };
    let cases = suite
        .cases
        .iter()
        .map(|case| {
            let cold = vec![request(config, case, 0, false, next())];
            next(); // the unrecorded warm-up request
            let warm: Vec<RequestRecord> = (0..repetitions).map(|i| request(config, case, i, true, next())).collect();
            let phase = |requests: Vec<RequestRecord>| {
                let duration: f64 = requests.iter().filter_map(|r| r.e2e_ms).sum::<f64>() / 1000.0;
                PhaseResult {
                    summary: PhaseSummary::from_records(&requests, duration, case.output_tokens),
                    gpu: None,
                    server_metrics: None,
                    requests,
                }
            };
            let fp = prompt::template_fingerprint(suite.seed, &case.scenario, &case.instruction, case.context_tokens);
            CaseResult {
                id: case.id.clone(),
                scenario: case.scenario.clone(),
                context_tokens: case.context_tokens,
                output_tokens: case.output_tokens,
                repetitions,
                warmup: 1,
                concurrency: 1,
                request_rate: None,
                prompt: PromptInfo {
                    template_fingerprint: fp.clone(),
                    text_fingerprint: fp,
                    tokens: case.context_tokens,
                    chars: 0,
                },
                phases: BTreeMap::from([(PhaseName::Cold, phase(cold)), (PhaseName::Warm, phase(warm))]),
            }
        })
        .collect();
    Results {
        schema: results::SCHEMA.into(),
        run_id: format!("synthetic-{run}"),
        complete: true,
        started_at: String::new(),
        finished_at: String::new(),
        environment: Environment {
            tool_version: env!("CARGO_PKG_VERSION").into(),
            server: ServerInfo {
                host: "synthetic".into(),
                model: config.model.clone(),
                api: "chat".into(),
                owned_by: Some("infergate-sim".into()),
                prompt_sizing: "synthetic".into(),
                ..ServerInfo::default()
            },
            ..Environment::default()
        },
        suite: SuiteInfo {
            name: suite.name.clone(),
            source: "builtin".into(),
            seed: suite.seed,
            fingerprint: String::new(),
        },
        settings: Settings {
            ignore_eos: true,
            min_tokens: true,
            request_timeout_s: 600.0,
            idle_timeout_s: 120.0,
            cases_filter: None,
            retries: 0,
            deadline_s: None,
            grace_s: None,
        },
        cases,
        warnings: Vec::new(),
    }
}

fn request(config: &SimConfig, case: &Case, index: u32, warm: bool, number: u64) -> RequestRecord {
    let speed = model::request_factor(config, number);
    let prompt_tokens = case.context_tokens;
    // Warm requests find every whole prefix block cached; cold ones none.
    let cached = if warm { prompt_tokens / model::BLOCK_TOKENS * model::BLOCK_TOKENS } else { 0 };
    let ttft = speed * model::planned_ttft_ms(config, prompt_tokens, cached);
    let mut jitter = model::jitter_rng(config, number);
    let out = case.output_tokens;
    let decode: f64 = (1..out).map(|_| speed * model::token_interval_ms(config, jitter.unit(), 1)).sum();
    let e2e = ttft + decode;
    RequestRecord {
        index,
        start_ms: 0.0,
        ok: true,
        error: None,
        ttft_ms: Some(ttft),
        e2e_ms: Some(e2e),
        tpot_ms: (out > 1).then(|| decode / f64::from(out - 1)),
        itl_ms: Vec::new(),
        chunk_tokens: None,
        prompt_tokens: Some(prompt_tokens),
        output_tokens: Some(out),
        output_tokens_source: TokenSource::Usage,
        finish_reason: Some("length".into()),
        done_received: true,
        tokens_per_second: Some(f64::from(out) * 1000.0 / e2e),
        decode_tokens_per_second: (out > 1 && decode > 0.0).then(|| f64::from(out - 1) * 1000.0 / decode),
        response_id: None,
        output_sha256: None,
        output_text: None,
        attempts: 1,
        retries: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_runs_follow_the_model() {
        let suite = Suite::builtin("quick").unwrap().unwrap();
        let config = SimConfig { request_cv: 0.05, ..SimConfig::default() };
        let a = run(&config, &suite, 10, 1);
        let b = run(&config, &suite, 10, 1);
        assert_eq!(a.cases[0].phases[&PhaseName::Warm].requests, b.cases[0].phases[&PhaseName::Warm].requests);
        let c = run(&config, &suite, 10, 2);
        assert_ne!(a.cases[0].phases[&PhaseName::Warm].requests, c.cases[0].phases[&PhaseName::Warm].requests);
        let warm = &a.cases[0].phases[&PhaseName::Warm];
        assert_eq!(warm.requests.len(), 10);
        let tpot = warm.summary.tpot_ms.unwrap().mean;
        assert!((tpot - 2.0).abs() < 0.2, "mean TPOT {tpot} vs the model's 2 ms");
        // Per-request variation of about request_cv.
        let tps: Vec<f64> = warm.requests.iter().filter_map(|r| r.tokens_per_second).collect();
        let s = infergate_core::stats::summarize(&tps).unwrap();
        assert!(s.stddev / s.mean > 0.02 && s.stddev / s.mean < 0.09, "{}", s.stddev / s.mean);
        // Cold requests pay the prefill and the cold penalty.
        let cold = a.cases[0].phases[&PhaseName::Cold].requests[0].ttft_ms.unwrap();
        assert!(cold > warm.summary.ttft_ms.unwrap().median + 15.0);
    }
}
