//! Prompt sizing: each case's prompt is synthesised deterministically and
//! grown or cut to its target token count, counted by the server itself
//! (its `POST /tokenize` plus the chat template's constant overhead, else
//! `usage.prompt_tokens` of one-token requests). The warm prompt is the same
//! in every run; the cold one carries a salt unique to the run.

use anyhow::anyhow;

use super::RunPlan;
use super::endpoints;
use crate::client::Client;
use crate::exit::Failure;
use crate::results::PromptInfo;
use crate::rng::Rng;
use crate::suite::Case;
use crate::suite::prompt::{self, Context};

/// How prompts are sized.
pub(super) enum Sizer {
    /// `/tokenize` plus the constant overhead the endpoint adds (chat template).
    Tokenize { overhead: i64 },
    /// `usage.prompt_tokens` of one-token probe requests.
    Usage,
}

impl Sizer {
    /// How the results name it (`environment.server.prompt_sizing`).
    pub fn name(&self) -> &'static str {
        match self {
            Sizer::Tokenize { .. } => "tokenize",
            Sizer::Usage => "usage",
        }
    }
}

/// A case's prompts, sized.
pub(super) struct PreparedCase {
    /// The sized prompt, without a salt.
    pub body: String,
    /// The salt line of the cold request, unique to the run.
    pub cold_salt: String,
    /// The salt line of warm requests, the same in every run.
    pub warm_salt: String,
    /// What the results record of the prompt.
    pub info: PromptInfo,
}

/// Picks how this server's prompts are sized: `/tokenize` when it works
/// (and the plan allows it), else `usage`; an error when neither does.
pub(super) async fn choose_sizer(
    plan: &RunPlan,
    client: &Client,
    run_id: &str,
    warnings: &mut Vec<String>,
) -> Result<Sizer, Failure> {
    let base = &plan.client.base_url;
    let probe_text =
        prompt::with_salt(&prompt::salt_line(&mut Rng::from_parts(&[run_id.as_bytes(), b"probe"])), "Say hi.");
    if plan.use_tokenize {
        if let Ok(raw) = endpoints::tokenize(client, &probe_text).await {
            // The endpoint counts the bare text; a real request adds the chat
            // template (and special tokens): measure that constant once.
            return match endpoints::usage_prompt_tokens(client, &probe_text).await {
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
    match endpoints::usage_prompt_tokens(client, &probe_text).await {
        Ok(_) => Ok(Sizer::Usage),
        Err(e) => Err(Failure::run(anyhow!(
            "cannot size prompts: the server at {base} has no usable POST /tokenize and its probe request failed: {}",
            e.message
        ))),
    }
}

/// Synthesises `case`'s prompts and sizes them to its context length.
pub(super) async fn prepare_case(
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
                        endpoints::tokenize(client, &text).await.map(|n| (i64::from(n) + overhead).max(0) as u32)
                    }
                    Sizer::Usage => endpoints::usage_prompt_tokens(client, &text).await,
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
