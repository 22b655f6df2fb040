//! The simulator's performance model and output text: pure functions, no
//! clock, no I/O.
//!
//! The server asks this module how many tokens a prompt has, how long the
//! answer is, what it says, and when each token is due; it only adds the
//! clock and the sockets.

use super::SimConfig;
use super::tokenizer;
use infergate_core::rng::Rng;

/// Prompt tokens per prefix-cache block.
pub const BLOCK_TOKENS: u32 = 64;

/// Chat template cost of each message (header and end-of-turn tokens).
pub const CHAT_TOKENS_PER_MESSAGE: u32 = 4;

/// Chat template cost of the assistant header that starts the answer.
pub const CHAT_TOKENS_PER_PROMPT: u32 = 3;

/// Pieces the output text is drawn from. Each is exactly one token under
/// [`tokenizer`], words start with a space so neighbours never merge, and none
/// needs JSON escaping, so the server can splice them straight into JSON.
pub const VOCAB: &[&str] = &[
    " fn", " let", " mut", " value", " self", " return", " if", " else", " match", " for", " in", " while", " x", " y",
    " n", " i", " data", " buf", " len", " result", " error", " Ok", " Err", " Some", " None", " the", " a", " of",
    " to", " is", " and", " it", " we", " this", " when", " input", " output", " token", " count", " state", " item",
    " list", " map", " key", " check", " parse", " write", " read", "(", ")", " {", " }", "[", "]", ";", ",", ".", ":",
    " =", " +", " -", " *", " <", " >", " 0", " 1", " 42", " 64", " &", " !",
];

/// One chat message, borrowed from the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Turn<'a> {
    /// `system`, `user`, `assistant`, ...
    pub role: &'a str,
    /// The message text.
    pub content: &'a str,
}

/// A request's prompt: chat messages or a plain completion prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prompt<'a> {
    /// `/v1/chat/completions`: the messages, in order.
    Chat(Vec<Turn<'a>>),
    /// `/v1/completions`: the prompt text.
    Text(&'a str),
}

fn saturate(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// FNV-1a step over `bytes`, continuing from `h`.
fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

impl Prompt<'_> {
    /// Prompt tokens as reported in `usage.prompt_tokens`: chat is the sum of
    /// the contents' tokens + 4 per message + 3; a completion prompt is its
    /// tokens + 1 (BOS).
    pub fn prompt_tokens(&self) -> u32 {
        match self {
            Prompt::Chat(turns) => {
                let content: u32 =
                    turns.iter().map(|t| saturate(tokenizer::count(t.content))).fold(0, u32::saturating_add);
                content
                    .saturating_add(saturate(turns.len()).saturating_mul(CHAT_TOKENS_PER_MESSAGE))
                    .saturating_add(CHAT_TOKENS_PER_PROMPT)
            }
            Prompt::Text(text) => saturate(tokenizer::count(text)).saturating_add(1),
        }
    }

    /// A hash of the whole prompt (roles included), which fixes the natural
    /// answer length and the answer text.
    pub fn hash(&self) -> u64 {
        match self {
            Prompt::Chat(turns) => {
                let parts: Vec<&[u8]> = turns.iter().flat_map(|t| [t.role.as_bytes(), t.content.as_bytes()]).collect();
                let mut parts = parts;
                parts.insert(0, b"chat");
                Rng::from_parts(&parts).next_u64()
            }
            Prompt::Text(text) => Rng::from_parts(&[b"text", text.as_bytes()]).next_u64(),
        }
    }

    /// Chained hashes of the prompt's whole [`BLOCK_TOKENS`]-token blocks:
    /// hash `i` covers every piece up to the end of block `i`, so equal hashes
    /// mean equal prefixes. Chat prompts hash the message contents one after
    /// another.
    pub fn block_hashes(&self) -> Vec<u64> {
        let mut blocks = Vec::new();
        let mut h = FNV_OFFSET;
        let mut in_block = 0;
        let mut feed = |h: &mut u64, text: &str| {
            for piece in tokenizer::pieces(text) {
                *h = fnv(*h, piece.as_bytes());
                in_block += 1;
                if in_block == BLOCK_TOKENS {
                    blocks.push(*h);
                    in_block = 0;
                }
            }
        };
        match self {
            Prompt::Chat(turns) => {
                for t in turns {
                    feed(&mut h, t.content);
                    // Message boundary: "ab"+"c" must differ from "a"+"bc".
                    h = fnv(h, &[0xff]);
                }
            }
            Prompt::Text(text) => feed(&mut h, text),
        }
        blocks
    }
}

/// Why a request cannot be planned; each message is what the client sees in a 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// Prompt plus requested output exceed the context window.
    #[error(
        "This model's maximum context length is {max_model_len} tokens. However, you requested \
         {} tokens ({prompt_tokens} in the messages, {max_tokens} in the completion). Please \
         reduce the length of the messages or completion.",
        u64::from(*prompt_tokens) + u64::from(*max_tokens)
    )]
    ContextLength {
        /// The configured context window.
        max_model_len: u32,
        /// Tokens in the prompt.
        prompt_tokens: u32,
        /// Output tokens requested (or left over for the default).
        max_tokens: u32,
    },
    /// `max_tokens` below 1.
    #[error("max_tokens must be at least 1, got {0}")]
    MaxTokens(i64),
    /// `min_tokens` negative or above `max_tokens`.
    #[error("min_tokens must be between 0 and max_tokens ({max_tokens}), got {min_tokens}")]
    MinTokens {
        /// The `min_tokens` requested.
        min_tokens: i64,
        /// The effective `max_tokens`.
        max_tokens: u32,
    },
}

/// How a generation ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// The answer reached `max_tokens`.
    Length,
    /// The answer ended naturally (end of sequence).
    Stop,
}

impl FinishReason {
    /// The OpenAI wire name: `"length"` or `"stop"`.
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Length => "length",
            FinishReason::Stop => "stop",
        }
    }
}

/// The size of one generation, fixed before any time passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// Prompt tokens (`usage.prompt_tokens`).
    pub prompt_tokens: u32,
    /// Effective `max_tokens`.
    pub max_tokens: u32,
    /// Output tokens to generate.
    pub output_tokens: u32,
    /// `Length` when the output is `max_tokens` long, else `Stop`.
    pub finish_reason: FinishReason,
    /// Prompt hash: seeds the natural length and the text.
    pub prompt_hash: u64,
}

/// The generation limits a request asked for, as sent (unvalidated).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// `max_tokens` (chat: `max_completion_tokens` takes precedence).
    pub max_tokens: Option<i64>,
    /// `min_tokens`.
    pub min_tokens: Option<i64>,
    /// `ignore_eos`: generate exactly `max_tokens`.
    pub ignore_eos: bool,
}

/// Natural answer length for a prompt hash: `natural_len_min + hash % (max - min + 1)`.
pub fn natural_len(config: &SimConfig, prompt_hash: u64) -> u32 {
    let min = config.natural_len_min.max(1);
    let max = config.natural_len_max.max(min);
    let span = u64::from(max - min) + 1;
    // The remainder is below `span`, which fits in u32.
    min + u32::try_from(prompt_hash % span).unwrap_or(0)
}

/// Output length: `max_tokens` with `ignore_eos`, else the natural length
/// raised to `min_tokens` and capped at `max_tokens`.
pub fn output_len(natural: u32, ignore_eos: bool, min_tokens: u32, max_tokens: u32) -> u32 {
    if ignore_eos { max_tokens } else { natural.max(min_tokens).min(max_tokens) }
}

/// Sizes a generation: validates the limits against the context window.
pub fn plan(config: &SimConfig, prompt: &Prompt<'_>, limits: Limits) -> Result<Plan, PlanError> {
    let prompt_tokens = prompt.prompt_tokens();
    let max_model_len = config.max_model_len;
    let max_tokens = match limits.max_tokens {
        Some(m) if m < 1 => return Err(PlanError::MaxTokens(m)),
        Some(m) => u32::try_from(m).unwrap_or(u32::MAX),
        None => max_model_len.saturating_sub(prompt_tokens),
    };
    if max_tokens == 0 || u64::from(prompt_tokens) + u64::from(max_tokens) > u64::from(max_model_len) {
        return Err(PlanError::ContextLength { max_model_len, prompt_tokens, max_tokens });
    }
    let min_tokens = match limits.min_tokens {
        None => 0,
        Some(m) => match u32::try_from(m) {
            Ok(v) if v <= max_tokens => v,
            _ => {
                return Err(PlanError::MinTokens { min_tokens: m, max_tokens });
            }
        },
    };
    let prompt_hash = prompt.hash();
    let natural = natural_len(config, prompt_hash);
    let output_tokens = output_len(natural, limits.ignore_eos, min_tokens, max_tokens);
    let finish_reason = if output_tokens == max_tokens { FinishReason::Length } else { FinishReason::Stop };
    Ok(Plan { prompt_tokens, max_tokens, output_tokens, finish_reason, prompt_hash })
}

/// Planned time to first token, in ms:
/// `slowdown × (ttft_base + uncached/prefill + cached × factor/prefill + cold penalty if nothing was cached)`.
pub fn planned_ttft_ms(config: &SimConfig, prompt_tokens: u32, cached_tokens: u32) -> f64 {
    let cached = cached_tokens.min(prompt_tokens);
    let uncached = f64::from(prompt_tokens - cached);
    let per_token_ms = 1000.0 / config.prefill_tokens_per_s;
    let cold = if cached == 0 { config.cold_penalty_ms } else { 0.0 };
    config.slowdown
        * (config.ttft_base_ms
            + uncached * per_token_ms
            + f64::from(cached) * config.cached_prefill_factor * per_token_ms
            + cold)
}

/// Interval between one output token and the next, in ms, for a uniform draw
/// `u` in [0, 1) and `active` streams in flight (this one included).
pub fn token_interval_ms(config: &SimConfig, u: f64, active: u64) -> f64 {
    let jitter = 1.0 + config.itl_jitter * (2.0 * u - 1.0);
    let crowd = 1.0 + config.concurrency_slowdown * active.saturating_sub(1) as f64;
    config.itl_ms * config.slowdown * jitter * crowd
}

/// The shape of the per-request variation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum RequestNoise {
    /// Uniform around 1: bounded, symmetric.
    #[default]
    Uniform,
    /// Lognormal: a right tail of slow requests, as on a real server.
    Lognormal,
}

/// The shape of the run-to-run drift.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum DriftTail {
    /// Normal.
    #[default]
    Normal,
    /// Student-t with 3 degrees of freedom, scaled to the same standard
    /// deviation: now and then a launch far off the others.
    Heavy,
}

/// Most terms of the autocorrelated sum: at the largest coefficient, 0.95,
/// `0.95^180` is below 1e-4.
const AR_TERMS: u64 = 180;

fn draw(config: &SimConfig, number: u64, what: &[u8]) -> Rng {
    Rng::from_parts(&[&config.seed.to_le_bytes(), &number.to_le_bytes(), what])
}

/// This launch's speed factor: drawn once from the seed, so launches with
/// different seeds differ as runs on a real runner do. Never below 0.2.
pub fn run_factor(config: &SimConfig) -> f64 {
    if config.run_drift == 0.0 {
        return 1.0;
    }
    let mut rng = Rng::from_parts(&[&config.seed.to_le_bytes(), b"run"]);
    let z = match config.run_drift_tail {
        DriftTail::Normal => rng.normal(),
        DriftTail::Heavy => {
            // t(3) = Z / sqrt(chi2(3) / 3), whose variance is 3: scaled to 1.
            let z = rng.normal();
            let chi2: f64 = (0..3).map(|_| rng.normal().powi(2)).sum();
            z / (chi2 / 3.0).sqrt() / 3f64.sqrt()
        }
    };
    (1.0 + config.run_drift * z).max(0.2)
}

/// A standard normal for request `number`, autocorrelated with the previous
/// requests' (lag-1 coefficient `autocorrelation`): the stationary AR(1)
/// sum `sqrt(1 - a^2) sum_j a^j e_(number - j)`, computed from the seeded
/// innovations alone, so any request's value is known without the others'.
fn ar_normal(config: &SimConfig, number: u64) -> f64 {
    let a = config.autocorrelation;
    if a == 0.0 {
        return draw(config, number, b"request").normal();
    }
    // Terms until a^j < 1e-4: what is left moves the value by less than that.
    let needed = ((1e-4f64).ln() / a.ln()).ceil().clamp(1.0, AR_TERMS as f64) as u64;
    let terms = number.min(needed - 1);
    let mut sum = 0.0;
    let mut weight = 1.0;
    for j in 0..=terms {
        sum += weight * draw(config, number - j, b"request").normal();
        weight *= a;
    }
    sum *= (1.0 - a * a).sqrt();
    // Before the first request, the process already had its stationary spread.
    if number < needed - 1 {
        sum += weight * Rng::from_parts(&[&config.seed.to_le_bytes(), b"start"]).normal();
    }
    sum
}

/// One request's speed factor: every time of the request is multiplied by
/// it. The launch's drift ([`run_factor`]) times the request's own
/// variation (uniform, or lognormal and autocorrelated, with standard
/// deviation about `request_cv`), times an outlier's slowdown for
/// `outlier_rate` of requests, times the warm-up slowdown after launch.
/// `request_number` counts the launch's requests from 0.
pub fn request_factor(config: &SimConfig, request_number: u64) -> f64 {
    let mut factor = run_factor(config);
    if config.request_cv > 0.0 {
        factor *= match config.request_noise {
            RequestNoise::Uniform => {
                let mut rng = draw(config, request_number, b"request");
                1.0 + config.request_cv * 3f64.sqrt() * (2.0 * rng.unit() - 1.0)
            }
            RequestNoise::Lognormal => (config.request_cv * ar_normal(config, request_number)).exp(),
        };
    }
    if config.outlier_rate > 0.0 {
        let mut rng = draw(config, request_number, b"outlier");
        if rng.unit() < config.outlier_rate {
            factor *= 1.0 + (config.outlier_factor - 1.0) * rng.unit();
        }
    }
    if config.warmup_slowdown > 0.0 {
        factor *= 1.0 + config.warmup_slowdown * (-(request_number as f64) / config.warmup_requests).exp();
    }
    factor
}

/// The seeded generator of one request's token-interval jitter.
pub fn jitter_rng(config: &SimConfig, request_number: u64) -> Rng {
    Rng::from_parts(&[&config.seed.to_le_bytes(), &request_number.to_le_bytes()])
}

/// The answer text, one token piece at a time; the same prompt hash always
/// gives the same text (temperature-0 semantics).
#[derive(Debug, Clone)]
pub struct TextGen {
    rng: Rng,
}

impl TextGen {
    /// The text generator for a prompt hash.
    pub fn new(prompt_hash: u64) -> Self {
        Self { rng: Rng::new(prompt_hash) }
    }

    /// The next token's piece.
    pub fn next_piece(&mut self) -> &'static str {
        let piece: &&'static str = self.rng.pick(VOCAB);
        piece
    }

    /// The next `n` tokens, concatenated.
    pub fn take_text(&mut self, n: u32) -> String {
        let mut s = String::with_capacity(n as usize * 6);
        for _ in 0..n {
            s.push_str(self.next_piece());
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> SimConfig {
        SimConfig::default()
    }

    #[test]
    fn vocab_pieces_are_single_unescaped_tokens() {
        for p in VOCAB {
            assert_eq!(tokenizer::count(p), 1, "{p:?}");
            assert_eq!(serde_json::to_string(p).unwrap(), format!("\"{p}\""));
        }
        // Concatenations never merge: count of text == number of pieces.
        let mut g = TextGen::new(7);
        let text = g.take_text(500);
        assert_eq!(tokenizer::count(&text), 500);
    }

    #[test]
    fn prompt_token_formulas() {
        let text = Prompt::Text("hello world");
        assert_eq!(text.prompt_tokens(), 2 + 1);
        let chat = Prompt::Chat(vec![
            Turn { role: "system", content: "be brief" },
            Turn { role: "user", content: "hello world!" },
        ]);
        // (2 + 3) content tokens + 4 per message + 3.
        assert_eq!(chat.prompt_tokens(), 5 + 8 + 3);
        assert_eq!(Prompt::Chat(vec![]).prompt_tokens(), 3);
        assert_eq!(Prompt::Text("").prompt_tokens(), 1);
    }

    #[test]
    fn output_length_rules() {
        // ignore_eos: exactly max_tokens.
        assert_eq!(output_len(20, true, 0, 100), 100);
        // Natural length, capped by max_tokens, raised by min_tokens.
        assert_eq!(output_len(20, false, 0, 100), 20);
        assert_eq!(output_len(20, false, 0, 10), 10);
        assert_eq!(output_len(20, false, 50, 100), 50);
        assert_eq!(output_len(20, false, 50, 30), 30);
    }

    #[test]
    fn natural_length_stays_in_range_and_is_deterministic() {
        let c = cfg();
        for h in 0..1000u64 {
            let n = natural_len(&c, h.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            assert!((16..=64).contains(&n), "{n}");
        }
        let one = SimConfig { natural_len_min: 5, natural_len_max: 5, ..cfg() };
        assert_eq!(natural_len(&one, 123_456), 5);
    }

    #[test]
    fn plan_applies_limits_and_finish_reason() {
        let c = cfg();
        let p = Prompt::Text("write a function");
        let natural = natural_len(&c, p.hash());
        let planned = plan(&c, &p, Limits::default()).unwrap();
        assert_eq!(planned.output_tokens, natural);
        assert_eq!(planned.finish_reason, FinishReason::Stop);
        assert_eq!(planned.max_tokens, c.max_model_len - planned.prompt_tokens);

        let capped = plan(&c, &p, Limits { max_tokens: Some(3), ..Limits::default() }).unwrap();
        assert_eq!((capped.output_tokens, capped.finish_reason), (3, FinishReason::Length));

        let forced = plan(&c, &p, Limits { max_tokens: Some(500), ignore_eos: true, ..Limits::default() }).unwrap();
        assert_eq!((forced.output_tokens, forced.finish_reason), (500, FinishReason::Length));

        let min = plan(&c, &p, Limits { max_tokens: Some(500), min_tokens: Some(200), ignore_eos: false }).unwrap();
        assert_eq!((min.output_tokens, min.finish_reason), (200, FinishReason::Stop));
    }

    #[test]
    fn plan_rejects_bad_limits() {
        let c = SimConfig { max_model_len: 100, ..cfg() };
        let p = Prompt::Text("four tokens here"); // 3 + 1
        let err = plan(&c, &p, Limits { max_tokens: Some(97), ..Limits::default() }).unwrap_err();
        assert_eq!(
            err.to_string(),
            "This model's maximum context length is 100 tokens. However, you requested 101 tokens \
             (4 in the messages, 97 in the completion). Please reduce the length of the messages \
             or completion."
        );
        assert!(plan(&c, &p, Limits { max_tokens: Some(96), ..Limits::default() }).is_ok());
        assert_eq!(plan(&c, &p, Limits { max_tokens: Some(0), ..Limits::default() }), Err(PlanError::MaxTokens(0)));
        assert!(matches!(
            plan(&c, &p, Limits { max_tokens: Some(10), min_tokens: Some(11), ..Limits::default() }),
            Err(PlanError::MinTokens { .. })
        ));
        let long = "word ".repeat(200);
        assert!(matches!(plan(&c, &Prompt::Text(&long), Limits::default()), Err(PlanError::ContextLength { .. })));
    }

    #[test]
    fn same_prompt_same_text() {
        let a = Prompt::Text("explain borrowing");
        let b = Prompt::Text("explain borrowing");
        let other = Prompt::Text("explain lifetimes");
        let text = |p: &Prompt<'_>| TextGen::new(p.hash()).take_text(40);
        assert_eq!(text(&a), text(&b));
        assert_ne!(text(&a), text(&other));
        let chat = Prompt::Chat(vec![Turn { role: "user", content: "explain borrowing" }]);
        assert_ne!(chat.hash(), a.hash());
    }

    #[test]
    fn ttft_grows_with_prompt_tokens() {
        let c = cfg();
        let small = planned_ttft_ms(&c, 100, 0);
        let large = planned_ttft_ms(&c, 100_000, 0);
        assert!(large > small);
        // 99,900 extra tokens at 1M tokens/s = 99.9 ms.
        assert!((large - small - 99.9).abs() < 1e-9);
    }

    #[test]
    fn cold_penalty_only_without_cache_hit() {
        let c = cfg();
        let cold = planned_ttft_ms(&c, 1000, 0);
        let warm = planned_ttft_ms(&c, 1000, 64);
        assert!((cold - (5.0 + 1.0 + 20.0)).abs() < 1e-9, "{cold}");
        // 936 uncached + 64 cached at 2%: no penalty.
        let expect = 5.0 + 0.936 + 64.0 * 0.02 / 1000.0;
        assert!((warm - expect).abs() < 1e-9, "{warm}");
    }

    #[test]
    fn slowdown_scales_all_times() {
        let c = cfg();
        let slow = SimConfig { slowdown: 1.5, ..cfg() };
        for (p, k) in [(10, 0), (5000, 0), (5000, 4096)] {
            let ratio = planned_ttft_ms(&slow, p, k) / planned_ttft_ms(&c, p, k);
            assert!((ratio - 1.5).abs() < 1e-9);
        }
        let ratio = token_interval_ms(&slow, 0.3, 4) / token_interval_ms(&c, 0.3, 4);
        assert!((ratio - 1.5).abs() < 1e-9);
    }

    #[test]
    fn token_interval_jitter_and_crowding() {
        let c = cfg();
        // u = 0.5 is the mean: no jitter.
        assert!((token_interval_ms(&c, 0.5, 1) - 2.0).abs() < 1e-12);
        assert!((token_interval_ms(&c, 0.0, 1) - 1.8).abs() < 1e-12);
        assert!(token_interval_ms(&c, 0.5, 11) > token_interval_ms(&c, 0.5, 1));
        assert!((token_interval_ms(&c, 0.5, 11) - 2.0 * 1.2).abs() < 1e-12);
        let zero = SimConfig { itl_ms: 0.0, ..cfg() };
        assert_eq!(token_interval_ms(&zero, 0.9, 100), 0.0);
    }

    #[test]
    fn block_hashes_chain_over_prefixes() {
        let base = "token ".repeat(200); // 200 tokens: 3 whole blocks
        let p = Prompt::Text(&base);
        let blocks = p.block_hashes();
        assert_eq!(blocks.len(), 3);
        let longer = format!("{base}and more text after the shared prefix");
        let q = Prompt::Text(&longer);
        assert_eq!(&q.block_hashes()[..3], &blocks[..]);
        let changed = format!("x{base}");
        assert_ne!(Prompt::Text(&changed).block_hashes()[0], blocks[0]);
        assert!(Prompt::Text("short").block_hashes().is_empty());
    }

    #[test]
    fn jitter_rng_depends_on_seed_and_request() {
        let c = cfg();
        let a = jitter_rng(&c, 1).next_u64();
        assert_eq!(a, jitter_rng(&c, 1).next_u64());
        assert_ne!(a, jitter_rng(&c, 2).next_u64());
        let other = SimConfig { seed: 7, ..cfg() };
        assert_ne!(a, jitter_rng(&other, 1).next_u64());
    }
}
