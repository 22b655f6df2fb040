//! The server's endpoints besides the measured one: the preflight (it
//! answers, it serves the model: `GET /v1/models`, `GET /version`), token
//! counts (`POST /tokenize`, `usage.prompt_tokens` of a one-token request)
//! and the prefix-cache reset.

use anyhow::anyhow;

use crate::client::{Client, Generation};
use crate::exit::Failure;
use crate::results::{ErrorClass, RequestError};

/// What the preflight learned.
#[derive(Debug, Clone, Default)]
pub struct ServerFacts {
    /// Models the server lists.
    pub models: Vec<String>,
    /// `owned_by` of our model.
    pub owned_by: Option<String>,
    /// Context length the server reports for our model.
    pub max_model_len: Option<u64>,
    /// `GET /version`, when the server has it.
    pub version: Option<String>,
}

/// Checks that the server answers and serves the model. A server that cannot
/// be reached is a failed run (exit 3); a model it does not serve is a
/// configuration error (exit 2).
pub async fn preflight(client: &Client) -> Result<ServerFacts, Failure> {
    let base = &client.config().base_url;
    // The messages name the request (`GET /v1/models: ...`).
    let models = client.get_json("/v1/models").await.map_err(|e| match e.class {
        ErrorClass::Connect | ErrorClass::StreamCut => Failure::run(anyhow!(
            "cannot reach the server at {base}: {}. Start the server, or point --base-url ([server] base_url) at it",
            e.message
        )),
        ErrorClass::Timeout | ErrorClass::IdleTimeout => Failure::run(anyhow!(
            "the server at {base} did not answer in time: {}. Check that it is not hung, or raise \
             --request-timeout / --idle-timeout ([server] request_timeout, idle_timeout)",
            e.message
        )),
        _ => Failure::run(anyhow!("the server at {base} did not answer properly: {}", e.message)),
    })?;
    let list = models.get("data").and_then(|d| d.as_array()).cloned().unwrap_or_default();
    let mut facts = ServerFacts::default();
    for m in &list {
        if let Some(id) = m.get("id").and_then(|v| v.as_str()) {
            facts.models.push(id.to_string());
            if id == client.config().model {
                facts.owned_by = m.get("owned_by").and_then(|v| v.as_str()).map(str::to_string);
                facts.max_model_len = ["max_model_len", "context_length", "max_context_length"]
                    .iter()
                    .find_map(|k| m.get(*k).and_then(|v| v.as_u64()))
                    // llama.cpp: the context it serves, else the one it was trained with.
                    .or_else(|| m.pointer("/meta/n_ctx").and_then(|v| v.as_u64()))
                    .or_else(|| m.pointer("/meta/n_ctx_train").and_then(|v| v.as_u64()));
            }
        }
    }
    let model = &client.config().model;
    if !facts.models.iter().any(|m| m == model) {
        // Model names are the server's text: quoted inert.
        let served = if facts.models.is_empty() {
            "no models".to_string()
        } else {
            facts.models.iter().map(|m| crate::text::inert(m).into_owned()).collect::<Vec<_>>().join(", ")
        };
        return Err(Failure::invalid(anyhow!(
            "model `{model}` is not served at {base} (it serves: {served}); fix --model or [server] model"
        )));
    }
    facts.version = client
        .get_json("/version")
        .await
        .ok()
        .and_then(|v| v.get("version").and_then(|x| x.as_str()).map(str::to_string));
    Ok(facts)
}

/// Token counts of texts through the server's `POST /tokenize` (vLLM's and
/// llama.cpp's; the body carries both of their field names).
pub async fn tokenize(client: &Client, text: &str) -> Result<u32, RequestError> {
    let body = serde_json::json!({
        "model": client.config().model,
        "prompt": text,
        "content": text,
        "add_special_tokens": false,
    });
    let v = client.post_json_within("/tokenize", &body, crate::client::TOKENIZE_BODY_LIMIT).await?;
    v.get("count")
        .and_then(|c| c.as_u64())
        .or_else(|| v.get("tokens").and_then(|t| t.as_array()).map(|a| a.len() as u64))
        .map(|n| n as u32)
        .ok_or_else(|| RequestError {
            class: ErrorClass::BadResponse,
            status: None,
            message: "POST /tokenize answered without `count` or `tokens`".into(),
        })
}

/// Prompt tokens of `prompt` as the server counts them in a real request
/// (`usage.prompt_tokens` of a one-token, non-streaming request).
pub async fn usage_prompt_tokens(client: &Client, prompt: &str) -> Result<u32, RequestError> {
    let g = Generation { max_tokens: 1, ignore_eos: false, min_tokens: false, continuous_usage: false, stream: false };
    let body: serde_json::Value =
        serde_json::from_slice(&crate::client::request_body(&client.config().model, client.config().api, prompt, g))
            .map_err(|e| RequestError { class: ErrorClass::BadResponse, status: None, message: e.to_string() })?;
    let v = client.post_json(client.config().api.path(), &body).await?;
    v.pointer("/usage/prompt_tokens").and_then(|n| n.as_u64()).map(|n| n as u32).ok_or_else(|| RequestError {
        class: ErrorClass::BadResponse,
        status: None,
        message: "the server's response has no usage.prompt_tokens".into(),
    })
}

/// Prefix-cache reset endpoints, tried in order: vLLM, SGLang.
pub const CACHE_RESET_PATHS: &[&str] = &["/reset_prefix_cache", "/flush_cache"];

/// POSTs to `path`; Ok(true) when the server accepted, Ok(false) when it does
/// not have the endpoint.
pub async fn reset_cache(client: &Client, path: &str) -> Result<bool, RequestError> {
    match client.post_json(path, &serde_json::json!({})).await {
        Ok(_) => Ok(true),
        // Some servers answer the reset with an empty or non-JSON body.
        Err(e) if e.class == ErrorClass::BadResponse => Ok(true),
        Err(e) if matches!(e.status, Some(404 | 405 | 501)) => Ok(false),
        Err(e) => Err(e),
    }
}
