//! Server metrics from a Prometheus `/metrics` endpoint (vLLM, SGLang,
//! llama.cpp): KV-cache usage, running and waiting requests, preemptions,
//! scraped on the same clock as the GPU samples.

use serde::{Deserialize, Serialize};

use crate::stats::{self, Summary};

/// One scrape.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSample {
    /// Milliseconds since the run's epoch.
    pub t_ms: f64,
    /// KV-cache usage, 0..1.
    pub kv_cache_usage: Option<f64>,
    /// Requests running.
    pub running: Option<f64>,
    /// Requests waiting.
    pub waiting: Option<f64>,
    /// Cumulative preemptions.
    pub preemptions: Option<f64>,
}

/// Names per engine, in lookup order (newer vLLM names first).
const KV: &[&str] =
    &["vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc", "sglang:token_usage", "llamacpp:kv_cache_usage_ratio"];
const RUNNING: &[&str] = &["vllm:num_requests_running", "sglang:num_running_reqs", "llamacpp:requests_processing"];
const WAITING: &[&str] = &["vllm:num_requests_waiting", "sglang:num_queue_reqs", "llamacpp:requests_deferred"];
const PREEMPTIONS: &[&str] = &["vllm:num_preemptions_total", "vllm:num_preemptions", "sglang:num_preemptions_total"];

/// Parses Prometheus text exposition and picks the known metrics (summed
/// over label sets, e.g. several models or engines). Malformed lines are
/// skipped: a scrape never fails the run.
pub fn parse(text: &str) -> ServerSample {
    let mut found: Vec<(&str, f64)> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name_end = line.find(|c: char| c == '{' || c.is_whitespace()).unwrap_or(line.len());
        let name = &line[..name_end];
        let rest = &line[name_end..];
        let rest = match rest.strip_prefix('{') {
            // Label values may contain '}' inside quotes; find the closing brace outside quotes.
            Some(r) => match closing_brace(r) {
                Some(i) => &r[i + 1..],
                None => continue,
            },
            None => rest,
        };
        let Some(value) = rest.split_whitespace().next().and_then(|v| v.parse::<f64>().ok()) else { continue };
        if value.is_finite() {
            found.push((name, value));
        }
    }
    let pick = |names: &[&str]| {
        names.iter().find_map(|n| {
            let vals: Vec<f64> = found.iter().filter(|(k, _)| k == n).map(|(_, v)| *v).collect();
            // Summed over label sets; a sum that overflows is no reading.
            Some(vals.iter().sum::<f64>()).filter(|sum| !vals.is_empty() && sum.is_finite())
        })
    };
    ServerSample {
        t_ms: 0.0,
        kv_cache_usage: pick(KV),
        running: pick(RUNNING),
        waiting: pick(WAITING),
        preemptions: pick(PREEMPTIONS),
    }
}

fn closing_brace(s: &str) -> Option<usize> {
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            '}' if !in_quotes => return Some(i),
            _ => {}
        }
    }
    None
}

/// Server metrics over one phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerPhase {
    /// Scrapes in the phase.
    pub samples: u32,
    /// KV-cache usage (0..1).
    pub kv_cache_usage: Option<Summary>,
    /// Requests running.
    pub running: Option<Summary>,
    /// Requests waiting.
    pub waiting: Option<Summary>,
    /// Preemptions during the phase (counter difference).
    pub preemptions: Option<f64>,
}

/// Summarises the scrapes of one phase; `None` without any.
pub fn summarize(samples: &[ServerSample]) -> Option<ServerPhase> {
    if samples.is_empty() {
        return None;
    }
    let col = |f: fn(&ServerSample) -> Option<f64>| -> Vec<f64> { samples.iter().filter_map(f).collect() };
    let pre = col(|s| s.preemptions);
    Some(ServerPhase {
        samples: samples.len() as u32,
        kv_cache_usage: stats::summarize(&col(|s| s.kv_cache_usage)),
        running: stats::summarize(&col(|s| s.running)),
        waiting: stats::summarize(&col(|s| s.waiting)),
        preemptions: (pre.len() >= 2).then(|| (pre[pre.len() - 1] - pre[0]).max(0.0)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sum_that_overflows_is_no_reading() {
        let text = "vllm:num_requests_running{a=\"1\"} 1e308\nvllm:num_requests_running{a=\"2\"} 1e308\n";
        assert_eq!(parse(text).running, None);
    }

    #[test]
    fn vllm_sglang_and_llama_cpp_names() {
        let vllm = "# HELP vllm:num_requests_running Number of requests\n# TYPE vllm:num_requests_running gauge\n\
                    vllm:num_requests_running{model_name=\"m\"} 3.0\nvllm:num_requests_waiting{model_name=\"m\"} 1\n\
                    vllm:gpu_cache_usage_perc{model_name=\"m\"} 0.25\nvllm:num_preemptions_total{model_name=\"m\"} 7\n";
        let s = parse(vllm);
        assert_eq!(
            (s.running, s.waiting, s.kv_cache_usage, s.preemptions),
            (Some(3.0), Some(1.0), Some(0.25), Some(7.0))
        );
        let s = parse("sglang:num_running_reqs 2\nsglang:token_usage 0.5\nsglang:num_queue_reqs 0\n");
        assert_eq!((s.running, s.kv_cache_usage, s.waiting), (Some(2.0), Some(0.5), Some(0.0)));
        let s = parse("llamacpp:kv_cache_usage_ratio 0.125\nllamacpp:requests_processing 1\n");
        assert_eq!((s.kv_cache_usage, s.running), (Some(0.125), Some(1.0)));
    }

    #[test]
    fn labels_with_braces_and_garbage_lines() {
        let s = parse(
            "vllm:num_requests_running{a=\"x}y\",b=\"q\\\"\"} 4 1700000000\nnot a metric line\n{}\nvllm:num_requests_waiting NaN\n",
        );
        assert_eq!(s.running, Some(4.0));
        assert_eq!(s.waiting, None);
        assert_eq!(parse(""), ServerSample::default());
    }

    #[test]
    fn phase_summary() {
        let mk = |t, kv, p| ServerSample {
            t_ms: t,
            kv_cache_usage: Some(kv),
            running: Some(1.0),
            waiting: None,
            preemptions: Some(p),
        };
        let p = summarize(&[mk(0.0, 0.1, 2.0), mk(100.0, 0.3, 5.0)]).unwrap();
        assert_eq!(p.preemptions, Some(3.0));
        assert!((p.kv_cache_usage.unwrap().max - 0.3).abs() < 1e-12);
        assert!(p.waiting.is_none());
    }
}
