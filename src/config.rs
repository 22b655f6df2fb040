//! `infergate.toml`: schema, loading, and error messages that point at the line.
//!
//! Every table rejects unknown keys, so a misspelled key is an error naming the
//! file, line and key path, never a silently ignored setting. Values are
//! validated while they are deserialized (durations, URLs, counts), so those
//! errors carry the line too.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::client::Api;
use crate::suite::{Positive, Rate};
pub use infergate_core::limits::HumanDuration;
pub use infergate_core::tomldoc::parse_toml;

/// The default config file, used when present and `--config` is not given.
pub const DEFAULT_PATH: &str = "infergate.toml";

/// The whole config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The server under test.
    #[serde(default)]
    pub server: ServerConfig,
    /// How the suite is run.
    #[serde(default)]
    pub run: RunConfig,
    /// Tolerance rules of the gate.
    #[serde(default)]
    pub gate: crate::gate::rules::GateConfig,
    /// GPU telemetry.
    #[serde(default)]
    pub gpu: GpuConfig,
    /// The reports.
    #[serde(default)]
    pub report: ReportConfig,
    /// The history of main's runs.
    #[serde(default)]
    pub history: HistoryConfig,
}

/// `[history]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryConfig {
    /// The history store folder (default `.infergate-history`); `--store` overrides it.
    pub store: Option<PathBuf>,
    /// Last runs of main that `compare --history` and `check --history`
    /// read (default 30, at least 10); `--history-window` overrides it.
    pub window: Option<u32>,
}

/// `[report]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportConfig {
    /// Language of the reports (the pull-request comment, the job summary,
    /// the terminal report, the full report): `en` (default) or `ko`;
    /// `--lang` overrides it.
    pub lang: Option<crate::report::Lang>,
}

impl Config {
    /// The language of the reports: `flag` (`--lang`), else `[report] lang`, else English.
    pub fn report_lang(&self, flag: Option<crate::report::Lang>) -> crate::report::Lang {
        flag.or(self.report.lang).unwrap_or_default()
    }
}

/// `[gpu]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuConfig {
    /// `auto` (default), `require` or `off`.
    pub mode: Option<GpuMode>,
    /// Devices by NVML index or UUID; default: `CUDA_VISIBLE_DEVICES`, else all.
    pub devices: Option<Vec<DeviceId>>,
    /// Sampling interval (default `"100ms"`).
    pub interval: Option<HumanDuration>,
    /// NVML library file instead of the system's `libnvidia-ml.so.1`.
    pub nvml_library: Option<PathBuf>,
}

/// What to do about GPU telemetry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum GpuMode {
    /// Sample when NVML works; otherwise record why not and carry on.
    #[default]
    Auto,
    /// Fail (exit 3) when NVML does not work.
    Require,
    /// Do not sample.
    Off,
}

/// A GPU by NVML index (`0`) or UUID (`"GPU-..."`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceId(pub String);

impl<'de> Deserialize<'de> for DeviceId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Index(u32),
            Uuid(String),
        }
        match Raw::deserialize(d)? {
            Raw::Index(i) => Ok(DeviceId(i.to_string())),
            Raw::Uuid(u) if u.starts_with("GPU-") || u.starts_with("MIG-") => Ok(DeviceId(u)),
            Raw::Uuid(u) => Err(serde::de::Error::custom(format!(
                "`{u}` is neither a GPU index (0, 1, ...) nor a UUID (\"GPU-...\")"
            ))),
        }
    }
}

/// `[server]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Base URL of the OpenAI-compatible server, e.g. `http://127.0.0.1:8000`.
    pub base_url: Option<BaseUrl>,
    /// Model name to request.
    pub model: Option<String>,
    /// `chat` (default) or `completions`.
    pub api: Option<Api>,
    /// Name of the environment variable holding the API key, if one is needed.
    pub api_key_env: Option<String>,
    /// Limit for one request (e.g. `"600s"`, `"10m"`).
    pub request_timeout: Option<HumanDuration>,
    /// No bytes for this long ends a request (e.g. `"120s"`).
    pub idle_timeout: Option<HumanDuration>,
    /// Send `ignore_eos` so the output length holds (default true).
    pub ignore_eos: Option<bool>,
    /// Send `min_tokens` so the output length holds (default true).
    pub min_tokens: Option<bool>,
    /// Ask for per-chunk usage (`continuous_usage_stats`, vLLM; default false).
    pub continuous_usage: Option<bool>,
    /// Prefix-cache reset before cold requests: `auto`, `off`, or a path to POST.
    pub cache_reset: Option<String>,
    /// Prompt sizing with the server's `/tokenize`: `auto` or `off`.
    pub tokenize: Option<Toggle>,
    /// Scrape the server's Prometheus `/metrics`: `auto` or `off`.
    pub metrics: Option<Toggle>,
    /// Start the server with this shell command (and stop it at the end).
    pub command: Option<String>,
    /// Longest wait for a started server to be ready (default `"600s"`).
    pub ready_timeout: Option<HumanDuration>,
    /// Wait between SIGTERM and SIGKILL when stopping it (default `"10s"`).
    pub stop_grace: Option<HumanDuration>,
    /// Probe the server's length controls before the run: `auto` or `off`.
    pub probe: Option<Toggle>,
}

/// `[run]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Built-in suite name or suite file path.
    pub suite: Option<String>,
    /// Comma-separated case globs.
    pub cases: Option<crate::suite::CaseFilter>,
    /// Warm-phase repetitions per case.
    pub repetitions: Option<Positive>,
    /// Unrecorded warm-up requests per case.
    pub warmup: Option<crate::limits::Warmup>,
    /// Warm-phase concurrency.
    pub concurrency: Option<Positive>,
    /// Warm-phase Poisson request rate (requests/s).
    pub request_rate: Option<Rate>,
    /// Results file path.
    pub output: Option<PathBuf>,
    /// Retries per request where they are safe: connect errors before any
    /// byte, 429 with `Retry-After` (default 2).
    pub retries: Option<crate::limits::Retries>,
    /// Limit of the whole run (e.g. `"30m"`); past it the run stops like an
    /// interruption (partial results, exit 3). No limit by default.
    pub deadline: Option<HumanDuration>,
    /// Time in-flight requests get to finish after Ctrl-C / SIGTERM (default `"10s"`).
    pub grace: Option<HumanDuration>,
}

/// `auto` or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Toggle {
    /// Use it when the server supports it.
    Auto,
    /// Never use it.
    Off,
}

/// A validated `http(s)://host[:port][/prefix]` URL, stored without a trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl(pub String);

impl BaseUrl {
    /// Validates a base URL.
    pub fn parse(s: &str) -> Result<BaseUrl, String> {
        let s = s.trim();
        let rest = s
            .strip_prefix("http://")
            .or_else(|| s.strip_prefix("https://"))
            .ok_or_else(|| format!("`{s}` is not an http:// or https:// URL"))?;
        let host = rest.split('/').next().unwrap_or("");
        if host.is_empty() || host.contains(char::is_whitespace) {
            return Err(format!("`{s}` has no host"));
        }
        let mut url = s.trim_end_matches('/').to_string();
        // Users often paste the OpenAI base (`.../v1`); endpoints add `/v1` themselves.
        if url.ends_with("/v1") {
            url.truncate(url.len() - 3);
        }
        Ok(BaseUrl(url))
    }

    /// `host:port` without scheme, credentials or path, for results files.
    pub fn host(&self) -> String {
        let rest = self.0.split_once("://").map_or(self.0.as_str(), |(_, r)| r);
        let authority = rest.split('/').next().unwrap_or(rest);
        authority.rsplit_once('@').map_or(authority, |(_, h)| h).to_string()
    }
}

impl<'de> Deserialize<'de> for BaseUrl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        BaseUrl::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A loaded config and where it came from.
#[derive(Debug, Clone, Default)]
pub struct LoadedConfig {
    /// The file, when one was read.
    pub path: Option<PathBuf>,
    /// Its contents (all defaults when there was no file).
    pub config: Config,
}

impl LoadedConfig {
    /// Loads `explicit` (must exist), else `./infergate.toml` when present,
    /// else an empty config.
    pub fn load(explicit: Option<&Path>) -> Result<LoadedConfig, String> {
        let path = match explicit {
            Some(p) => {
                if !p.exists() {
                    return Err(format!("config file {} does not exist (given by --config)", p.display()));
                }
                p.to_path_buf()
            }
            None => {
                let p = PathBuf::from(DEFAULT_PATH);
                if !p.exists() {
                    return Ok(LoadedConfig::default());
                }
                p
            }
        };
        let text = crate::input::read_capped(&path, crate::input::MAX_TEXT_FILE_BYTES, "config file")
            .map_err(|e| format!("{e:#}"))?;
        let config = parse_toml(&text, &path.display().to_string())?;
        Ok(LoadedConfig { path: Some(path), config })
    }

    /// How to name a key of this config in a message: `file: key` or `key`.
    pub fn origin(&self) -> String {
        self.path.as_ref().map_or_else(|| "infergate.toml".into(), |p| p.display().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn parse(text: &str) -> Result<Config, String> {
        parse_toml(text, "infergate.toml")
    }

    #[test]
    fn full_config_parses() {
        let c = parse(
            r#"
[server]
base_url = "http://127.0.0.1:8000/v1/"
model = "m"
api = "completions"
api_key_env = "KEY"
request_timeout = "10m"
idle_timeout = 30
ignore_eos = false
[run]
suite = "quick"
repetitions = 3
warmup = 0
concurrency = 4
request_rate = 2.5
output = "out/r.json"
retries = 0
deadline = "30m"
grace = "5s"
"#,
        )
        .unwrap();
        assert_eq!(c.server.base_url.unwrap().0, "http://127.0.0.1:8000");
        assert_eq!(c.server.api, Some(Api::Completions));
        assert_eq!(c.server.request_timeout.unwrap().get(), Duration::from_secs(600));
        assert_eq!(c.server.idle_timeout.unwrap().get(), Duration::from_secs(30));
        assert_eq!(c.run.repetitions.unwrap().get(), 3);
        assert_eq!(c.run.request_rate.unwrap().get(), 2.5);
        assert_eq!(c.run.retries.map(|r| r.get()), Some(0));
        assert_eq!(c.run.deadline.unwrap().get(), Duration::from_secs(1800));
        assert_eq!(c.run.grace.unwrap().get(), Duration::from_secs(5));
    }

    #[test]
    fn errors_name_file_line_and_key() {
        // Table-driven: (config, expected fragments of the message).
        let cases: &[(&str, &[&str])] = &[
            ("[server]\nbase_url = \"http://h\"\nmodle = \"m\"\n", &["infergate.toml:3", "modle", "unknown field"]),
            (
                "[server]\nmodel = \"m\"\n[run]\nrepetitions = 0\n",
                &["infergate.toml:4", "run.repetitions", "between 1"],
            ),
            ("[server]\nbase_url = \"localhost:8000\"\n", &["infergate.toml:2", "server.base_url", "http://"]),
            ("[server]\nidle_timeout = \"soon\"\n", &["infergate.toml:2", "server.idle_timeout", "not a duration"]),
            ("[server]\napi = \"grpc\"\n", &["infergate.toml:2", "server.api", "chat"]),
            ("[serve]\nmodel = \"m\"\n", &["infergate.toml:1", "serve"]),
            ("[run]\nrequest_rate = -1.0\n", &["infergate.toml:2", "run.request_rate", "positive"]),
            ("[run]\ndeadline = \"later\"\n", &["infergate.toml:2", "run.deadline", "not a duration"]),
            ("[run]\ngrace = 0\n", &["infergate.toml:2", "run.grace", "positive"]),
            ("[run]\nretries = -1\n", &["infergate.toml:2", "run.retries"]),
            ("[report]\nlang = \"kr\"\n", &["infergate.toml:2", "report.lang", "`ko`", "`en`"]),
            ("[report]\nlanguage = \"ko\"\n", &["infergate.toml:2", "language", "unknown field"]),
            ("[run]\ncases = \"a/*,,b/*\"\n", &["infergate.toml:2", "run.cases", "empty pattern"]),
            ("[server\n", &["infergate.toml:1"]),
        ];
        for (text, fragments) in cases {
            let err = parse(text).unwrap_err();
            for f in *fragments {
                assert!(err.contains(f), "error for {text:?} lacks {f:?}: {err}");
            }
        }
    }

    #[test]
    fn the_flag_wins_over_the_config_and_english_is_the_default() {
        use crate::report::Lang;
        let ko = parse("[report]\nlang = \"ko\"\n").unwrap();
        assert_eq!(ko.report_lang(None), Lang::Ko);
        assert_eq!(ko.report_lang(Some(Lang::En)), Lang::En);
        let none = parse("").unwrap();
        assert_eq!(none.report_lang(None), Lang::En);
        assert_eq!(none.report_lang(Some(Lang::Ko)), Lang::Ko);
    }

    #[test]
    fn base_url_host_drops_credentials_and_path() {
        let u = BaseUrl::parse("https://user:pw@example.com:8443/prefix/").unwrap();
        assert_eq!(u.host(), "example.com:8443");
        assert_eq!(u.0, "https://user:pw@example.com:8443/prefix");
    }

    #[test]
    fn durations() {
        assert_eq!(HumanDuration::parse("1m 30s").unwrap().get(), Duration::from_secs(90));
        assert_eq!(HumanDuration::parse("0.5").unwrap().get(), Duration::from_millis(500));
        assert!(HumanDuration::parse("0s").is_err());
        assert!(HumanDuration::parse("-3").is_err());
    }
}
