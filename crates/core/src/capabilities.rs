//! What the server can do, as the results record it: its engine and
//! version, whether it streams usage, whether `ignore_eos` or `min_tokens`
//! holds the output length, its endpoints. The application's runner finds
//! these out (`runner::capabilities`); the gate and the report read them.

use serde::{Deserialize, Serialize};

/// The probe's findings, recorded in the results.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capabilities {
    /// Engine, from its own endpoint or `owned_by` (`vllm`, `llama.cpp`, `tgi`, `ollama`, `sglang`, ...).
    pub engine: Option<String>,
    /// Version or build the engine reported.
    pub version: Option<String>,
    /// The endpoint that said so, e.g. `GET /props`.
    pub version_source: Option<String>,
    /// The served context length, where the server reports it.
    pub context_length: Option<u64>,
    /// Whether `stream_options.include_usage` brings a usage chunk.
    pub usage_streamed: Option<bool>,
    /// Tokens the model produces on the probe prompt with no length control.
    pub natural_length: Option<u32>,
    /// Whether `ignore_eos` makes the answer as long as `max_tokens`.
    pub ignore_eos_holds_length: Option<bool>,
    /// Whether `min_tokens` makes the answer as long as `max_tokens`.
    pub min_tokens_holds_length: Option<bool>,
    /// Whether `/tokenize` works.
    pub tokenize: bool,
    /// The prefix-cache reset endpoint, if one answered.
    pub cache_reset: Option<String>,
    /// What the probe could not establish, and why.
    pub notes: Vec<String>,
}
