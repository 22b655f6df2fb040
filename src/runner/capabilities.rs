//! What the server can do, found out rather than assumed: its engine and
//! version, whether it streams usage, whether `ignore_eos` or `min_tokens`
//! holds the output length, its tokenize and prefix-cache endpoints, its
//! context length. The runner adapts to what works.

use crate::client::{Client, Generation};
use crate::results::RequestRecord;

pub use infergate_core::capabilities::Capabilities;

/// Output tokens the length probes ask for.
pub const PROBE_TOKENS: u32 = 96;
/// A prompt with a short natural answer, so a held length is visible.
const PROBE_PROMPT: &str = "Reply with the single word OK.";

/// Engine and version from the engines' own endpoints, then `owned_by`.
pub async fn identify(client: &Client, owned_by: Option<&str>, caps: &mut Capabilities) {
    let text = |v: &serde_json::Value, k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
    if let Ok(v) = client.get_json("/props").await {
        if v.get("default_generation_settings").is_some() || v.get("build_info").is_some() {
            caps.engine = Some("llama.cpp".into());
            caps.version = text(&v, "build_info");
            caps.version_source = Some("GET /props".into());
            caps.context_length = v.pointer("/default_generation_settings/n_ctx").and_then(|n| n.as_u64());
            return;
        }
    }
    if let Ok(v) = client.get_json("/get_server_info").await {
        if let Some(version) = text(&v, "version") {
            caps.engine = Some("sglang".into());
            caps.version = Some(version);
            caps.version_source = Some("GET /get_server_info".into());
            caps.context_length = v.get("context_length").and_then(|n| n.as_u64());
            return;
        }
    }
    if let Ok(v) = client.get_json("/info").await {
        if v.get("model_id").is_some() {
            caps.engine = Some("tgi".into());
            caps.version = text(&v, "version");
            caps.version_source = Some("GET /info".into());
            caps.context_length = v.get("max_total_tokens").and_then(|n| n.as_u64());
            return;
        }
    }
    if let Ok(v) = client.get_json("/api/version").await {
        if let Some(version) = text(&v, "version") {
            caps.engine = Some("ollama".into());
            caps.version = Some(version);
            caps.version_source = Some("GET /api/version".into());
            return;
        }
    }
    if let Ok(v) = client.get_json("/version").await {
        if let Some(version) = text(&v, "version") {
            caps.engine = owned_by.map(str::to_string).or_else(|| Some("vllm".into()));
            if version.starts_with("infergate-sim") {
                caps.engine = Some("infergate-sim".into());
            }
            caps.version = Some(version);
            caps.version_source = Some("GET /version".into());
            return;
        }
    }
    caps.engine = owned_by.map(str::to_string);
    if caps.engine.is_none() {
        caps.notes.push(
            "the engine did not identify itself (no /props, /get_server_info, /info, /api/version or /version)".into(),
        );
    }
}

/// Three short streamed requests, sent together: no length control,
/// `ignore_eos` alone, `min_tokens` alone. Together they take as long as one
/// (a server that runs one request at a time queues them, as it would one
/// after the other). A flag the server rejects (HTTP 4xx) counts as not
/// holding the length.
pub async fn probe_length(client: &Client, caps: &mut Capabilities) {
    let ask = |ignore_eos: bool, min_tokens: bool| Generation {
        max_tokens: PROBE_TOKENS,
        ignore_eos,
        min_tokens,
        continuous_usage: false,
        stream: true,
    };
    let run = |g: Generation| async move {
        let req = client.prepare(PROBE_PROMPT, g);
        client.measure(&req, std::time::Instant::now()).await
    };
    let (plain, with_ignore, with_min) =
        tokio::join!(run(ask(false, false)), run(ask(true, false)), run(ask(false, true)));
    if !plain.ok {
        caps.notes.push(format!("the length probe failed: {}", message(&plain)));
        return;
    }
    caps.usage_streamed = Some(plain.output_tokens_source == crate::results::TokenSource::Usage);
    caps.natural_length = plain.output_tokens;
    if plain.output_tokens.is_some_and(|n| n >= PROBE_TOKENS) {
        caps.notes.push(format!(
            "the probe prompt's natural answer already reaches {PROBE_TOKENS} tokens: whether ignore_eos/min_tokens hold the length is unknown"
        ));
        return;
    }
    let holds = |r: &RequestRecord| r.ok && r.output_tokens == Some(PROBE_TOKENS);
    caps.ignore_eos_holds_length = Some(holds(&with_ignore));
    if !with_ignore.ok {
        caps.notes.push(format!("ignore_eos: {}", message(&with_ignore)));
    }
    caps.min_tokens_holds_length = Some(holds(&with_min));
    if !with_min.ok {
        caps.notes.push(format!("min_tokens: {}", message(&with_min)));
    }
}

fn message(r: &RequestRecord) -> String {
    r.error.as_ref().map_or_else(|| "no error".into(), |e| format!("{} ({})", e.message, e.class.as_str()))
}
