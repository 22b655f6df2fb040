//! Synthetic results for tests: requests with known times and noise, in
//! the crate's own unit tests and (with the `testing` feature) in the
//! application's and the simulator's tests. Not part of the API.

use std::collections::BTreeMap;

use crate::results::{
    CaseResult, Environment, PhaseName, PhaseResult, PhaseSummary, PromptInfo, RequestRecord, Results, ServerInfo,
    Settings, SuiteInfo, TokenSource,
};
use crate::rng::Rng;

/// One successful request: `ttft` and `e2e` in ms, `out` tokens.
pub fn record(index: u32, ttft: f64, e2e: f64, out: u32) -> RequestRecord {
    RequestRecord {
        index,
        start_ms: 0.0,
        ok: true,
        error: None,
        ttft_ms: Some(ttft),
        e2e_ms: Some(e2e),
        tpot_ms: Some((e2e - ttft) / f64::from(out - 1)),
        itl_ms: Vec::new(),
        chunk_tokens: None,
        prompt_tokens: Some(1000),
        output_tokens: Some(out),
        output_tokens_source: TokenSource::Usage,
        finish_reason: Some("length".into()),
        done_received: true,
        tokens_per_second: Some(f64::from(out) * 1000.0 / e2e),
        decode_tokens_per_second: Some(f64::from(out - 1) * 1000.0 / (e2e - ttft)),
        response_id: None,
        output_sha256: None,
        output_text: (index == 0).then(|| "fn main() { println!(\"hello\"); }".to_string()),
        attempts: 1,
        retries: Vec::new(),
    }
}

/// A phase of `n` requests whose times are `scale` x nominal with
/// per-request noise of coefficient of variation `cv`.
pub fn phase(rng: &mut Rng, n: u32, scale: f64, cv: f64) -> PhaseResult {
    let requests: Vec<RequestRecord> = (0..n)
        .map(|i| {
            let noise = |rng: &mut Rng| 1.0 + cv * (rng.unit() * 2.0 - 1.0) * 3f64.sqrt();
            let ttft = 250.0 * scale * noise(rng);
            let e2e = ttft + 2000.0 * scale * noise(rng);
            record(i, ttft, e2e, 100)
        })
        .collect();
    PhaseResult { summary: PhaseSummary::from_records(&requests, 10.0, 100), gpu: None, server_metrics: None, requests }
}

pub fn results(cases: &[&str], seed: u64, n: u32, scale: f64, cv: f64) -> Results {
    let mut rng = Rng::new(seed);
    Results {
        schema: crate::results::SCHEMA.into(),
        run_id: format!("run{seed}"),
        complete: true,
        started_at: "2026-11-28T00:00:00Z".into(),
        finished_at: "2026-11-28T00:01:00Z".into(),
        environment: Environment {
            server: ServerInfo {
                host: "127.0.0.1:8000".into(),
                model: "m".into(),
                api: "chat".into(),
                owned_by: Some("vllm".into()),
                ..ServerInfo::default()
            },
            ..Environment::default()
        },
        suite: SuiteInfo { name: "coder".into(), source: "builtin".into(), seed: 1, fingerprint: "f".into() },
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
        cases: cases
            .iter()
            .map(|id| CaseResult {
                id: (*id).into(),
                scenario: id.split('/').next().unwrap_or("s").into(),
                context_tokens: 1000,
                output_tokens: 100,
                repetitions: n,
                warmup: 1,
                concurrency: 1,
                request_rate: None,
                prompt: PromptInfo {
                    template_fingerprint: format!("tpl-{id}"),
                    text_fingerprint: format!("txt-{id}"),
                    tokens: 1000,
                    chars: 4000,
                },
                phases: BTreeMap::from([
                    (PhaseName::Cold, phase(&mut rng, 1, scale, cv)),
                    (PhaseName::Warm, phase(&mut rng, n, scale, cv)),
                ]),
            })
            .collect(),
        warnings: Vec::new(),
    }
}
