//! WHAT is run: suites, scenarios, cases.
//!
//! A suite is a list of scenarios (an instruction and an output length), each
//! run at several context lengths; a *case* is one scenario at one context
//! length, named `scenario/context` (e.g. `code-review/12800`). The built-in
//! suites are TOML files embedded in the binary, in exactly the format users
//! write their own suites in, so the loader is exercised by every run.

pub mod prompt;

pub use crate::filter::{CaseFilter, glob_match};

use serde::Deserialize;

/// The header naming the case of a measured request (`code-review/12800`):
/// it finds the request in the server's logs, and the simulator's `@case`
/// fault selector reads it.
pub const CASE_HEADER: &str = "x-infergate-case";

/// The built-in suites: name, TOML text.
pub const BUILTIN: &[(&str, &str)] =
    &[("coder", include_str!("builtin/coder.toml")), ("quick", include_str!("builtin/quick.toml"))];

/// Errors in a suite definition or a case selection.
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    /// The suite is neither built in nor a readable file.
    #[error("unknown suite `{name}`: use one of {builtins} or the path of a suite TOML file")]
    Unknown {
        /// What the user asked for.
        name: String,
        /// The built-in suite names.
        builtins: String,
    },
    /// The file could not be read.
    #[error("cannot read suite file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML is invalid or breaks the schema.
    #[error("{0}")]
    Invalid(String),
    /// `--cases` selected nothing.
    #[error("--cases `{pattern}` matches no case of suite `{suite}`; its cases are: {available}")]
    NoMatch {
        /// The pattern.
        pattern: String,
        /// The suite name.
        suite: String,
        /// Every case id of the suite.
        available: String,
    },
}

/// A suite file, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SuiteFile {
    name: String,
    #[serde(default = "default_seed")]
    seed: u64,
    #[serde(default)]
    contexts: Option<Vec<Tokens>>,
    #[serde(default)]
    output_tokens: Option<Tokens>,
    #[serde(default)]
    repetitions: Option<Positive>,
    #[serde(default)]
    warmup: Option<crate::limits::Warmup>,
    #[serde(default)]
    concurrency: Option<Positive>,
    #[serde(default)]
    request_rate: Option<Rate>,
    scenarios: Vec<ScenarioFile>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioFile {
    name: String,
    instruction: String,
    #[serde(default)]
    output_tokens: Option<Tokens>,
    #[serde(default)]
    contexts: Option<Vec<Tokens>>,
    #[serde(default)]
    repetitions: Option<Positive>,
    #[serde(default)]
    warmup: Option<crate::limits::Warmup>,
    #[serde(default)]
    concurrency: Option<Positive>,
    #[serde(default)]
    request_rate: Option<Rate>,
}

fn default_seed() -> u64 {
    1
}

/// The most tokens a context or an output length may ask for.
pub const MAX_TOKENS: u32 = 10_000_000;

/// A token count from 1 to [`MAX_TOKENS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tokens(u32);

impl Tokens {
    /// `n` when it is from 1 to [`MAX_TOKENS`]; else an error giving the range.
    pub fn new(n: u32) -> Result<Tokens, String> {
        crate::limits::Bounded::<1, MAX_TOKENS>::new(n)
            .map(|b| Tokens(b.get()))
            .map_err(|e| format!("a token count {e}"))
    }

    /// The count.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<u32> for Tokens {
    type Error = String;

    fn try_from(n: u32) -> Result<Self, String> {
        Tokens::new(n)
    }
}

impl<'de> Deserialize<'de> for Tokens {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::limits::Bounded::<1, MAX_TOKENS>::deserialize(d)
            .map(|b| Tokens(b.get()))
            .map_err(|e| serde::de::Error::custom(format!("a token count {e}")))
    }
}

/// An integer from 1 to [`crate::limits::MAX_COUNT`] (repetitions, concurrency).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Positive(u32);

impl Positive {
    /// `n` when it is from 1 to [`crate::limits::MAX_COUNT`]; else an error giving the range.
    pub fn new(n: u32) -> Result<Positive, String> {
        crate::limits::Bounded::<1, { crate::limits::MAX_COUNT }>::new(n).map(|b| Positive(b.get()))
    }

    /// The number.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<u32> for Positive {
    type Error = String;

    fn try_from(n: u32) -> Result<Self, String> {
        Positive::new(n)
    }
}

impl<'de> Deserialize<'de> for Positive {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::limits::Bounded::<1, { crate::limits::MAX_COUNT }>::deserialize(d).map(|b| Positive(b.get()))
    }
}

/// A request rate in requests per second, within the range of
/// [`crate::limits::check_rate`] (from [`crate::limits::MIN_RATE`] to
/// [`crate::limits::MAX_RATE`]); deserialized through the same check.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(try_from = "f64")]
pub struct Rate(f64);

impl Rate {
    /// `v` when it is a rate in range; else an error giving the range.
    pub fn new(v: f64) -> Result<Rate, String> {
        crate::limits::check_rate(v).map(Rate)
    }

    /// Requests per second.
    pub fn get(self) -> f64 {
        self.0
    }
}

impl TryFrom<f64> for Rate {
    type Error = String;

    fn try_from(v: f64) -> Result<Self, String> {
        Rate::new(v)
    }
}

/// Run settings a suite or scenario may fix for its cases; unset values fall
/// back to the config file, then to built-in defaults.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CaseSettings {
    /// Warm-phase repetitions.
    pub repetitions: Option<u32>,
    /// Unrecorded warm-up requests.
    pub warmup: Option<u32>,
    /// Warm-phase concurrency.
    pub concurrency: Option<u32>,
    /// Warm-phase Poisson request rate (requests/s).
    pub request_rate: Option<f64>,
}

impl CaseSettings {
    /// Values of `self`, else of `fallback`.
    pub fn or(self, fallback: CaseSettings) -> CaseSettings {
        CaseSettings {
            repetitions: self.repetitions.or(fallback.repetitions),
            warmup: self.warmup.or(fallback.warmup),
            concurrency: self.concurrency.or(fallback.concurrency),
            request_rate: self.request_rate.or(fallback.request_rate),
        }
    }
}

/// A loaded, validated suite.
#[derive(Debug, Clone)]
pub struct Suite {
    /// Suite name.
    pub name: String,
    /// `builtin` or the file path.
    pub source: String,
    /// Seed of prompt synthesis.
    pub seed: u64,
    /// Every case, in suite order (scenario-major).
    pub cases: Vec<Case>,
}

/// One scenario at one context length.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    /// `scenario/context`.
    pub id: String,
    /// Scenario name.
    pub scenario: String,
    /// What the model is asked to do with the context.
    pub instruction: String,
    /// Target prompt tokens.
    pub context_tokens: u32,
    /// Output tokens to ask for.
    pub output_tokens: u32,
    /// What the suite fixed for this case.
    pub settings: CaseSettings,
}

impl Suite {
    /// A built-in suite by name (`coder`, `quick`); `None` for another name.
    pub fn builtin(name: &str) -> Option<Result<Suite, SuiteError>> {
        let (name, text) = BUILTIN.iter().find(|(n, _)| *n == name)?;
        Some(Suite::parse(text, &format!("<builtin suite {name}>"), "builtin"))
    }

    /// The error for a name that is neither a built-in suite nor a path.
    pub fn unknown(name: &str) -> SuiteError {
        SuiteError::Unknown {
            name: name.into(),
            builtins: BUILTIN.iter().map(|(n, _)| format!("`{n}`")).collect::<Vec<_>>().join(", "),
        }
    }

    /// Parses suite TOML; `origin` names the file in error messages.
    pub fn parse(text: &str, origin: &str, source: &str) -> Result<Suite, SuiteError> {
        let file: SuiteFile = crate::tomldoc::parse_toml(text, origin).map_err(SuiteError::Invalid)?;
        if file.scenarios.is_empty() {
            return Err(SuiteError::Invalid(format!(
                "{origin}: `scenarios` is empty: add at least one [[scenarios]] table"
            )));
        }
        let suite_settings = CaseSettings {
            repetitions: file.repetitions.map(Positive::get),
            warmup: file.warmup.map(crate::limits::Warmup::get),
            concurrency: file.concurrency.map(Positive::get),
            request_rate: file.request_rate.map(Rate::get),
        };
        let mut cases = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (i, s) in file.scenarios.iter().enumerate() {
            let key = format!("scenarios[{i}]");
            if s.name.is_empty() || s.name.contains(['/', '*', '?', ',']) || s.name.chars().any(char::is_whitespace) {
                return Err(SuiteError::Invalid(format!(
                    "{origin}: {key}.name `{}` must be non-empty, without whitespace, `/`, `,`, `*` or `?`",
                    s.name
                )));
            }
            if !seen.insert(s.name.clone()) {
                return Err(SuiteError::Invalid(format!("{origin}: {key}.name `{}` is used twice", s.name)));
            }
            let contexts = s.contexts.as_ref().or(file.contexts.as_ref()).ok_or_else(|| {
                SuiteError::Invalid(format!(
                    "{origin}: {key} has no context lengths: set `contexts` in it or at the top"
                ))
            })?;
            let output = s.output_tokens.or(file.output_tokens).ok_or_else(|| {
                SuiteError::Invalid(format!(
                    "{origin}: {key} has no output length: set `output_tokens` in it or at the top"
                ))
            })?;
            let settings = CaseSettings {
                repetitions: s.repetitions.map(Positive::get),
                warmup: s.warmup.map(crate::limits::Warmup::get),
                concurrency: s.concurrency.map(Positive::get),
                request_rate: s.request_rate.map(Rate::get),
            }
            .or(suite_settings);
            for c in contexts {
                let id = format!("{}/{}", s.name, c.get());
                if cases.iter().any(|k: &Case| k.id == id) {
                    return Err(SuiteError::Invalid(format!("{origin}: {key}: context {} is listed twice", c.get())));
                }
                cases.push(Case {
                    id,
                    scenario: s.name.clone(),
                    instruction: s.instruction.trim().to_string(),
                    context_tokens: c.get(),
                    output_tokens: output.get(),
                    settings,
                });
            }
        }
        Ok(Suite { name: file.name, source: source.into(), seed: file.seed, cases })
    }

    /// Keeps only the cases the filter selects (`--cases`, `[run] cases`).
    pub fn select(&mut self, filter: &CaseFilter) -> Result<(), SuiteError> {
        let keep: Vec<Case> = self.cases.iter().filter(|c| filter.matches(&c.id)).cloned().collect();
        if keep.is_empty() {
            return Err(SuiteError::NoMatch {
                pattern: filter.to_string(),
                suite: self.name.clone(),
                available: self.cases.iter().map(|c| c.id.as_str()).collect::<Vec<_>>().join(", "),
            });
        }
        self.cases = keep;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coder_suite_is_the_users_suite() {
        let s = Suite::builtin("coder").unwrap().unwrap();
        assert_eq!(s.cases.len(), 16);
        let scenarios: std::collections::BTreeSet<_> = s.cases.iter().map(|c| c.scenario.as_str()).collect();
        assert_eq!(
            scenarios.into_iter().collect::<Vec<_>>(),
            ["architecture-design", "code-completion", "code-review", "debugging"]
        );
        let contexts: std::collections::BTreeSet<_> = s.cases.iter().map(|c| c.context_tokens).collect();
        assert_eq!(contexts.into_iter().collect::<Vec<_>>(), [12800, 41200, 51200, 76800]);
        assert!(s.cases.iter().all(|c| (256..=512).contains(&c.output_tokens)));
        assert_eq!(s.cases[0].id, "architecture-design/12800");
    }

    #[test]
    fn quick_suite_is_small() {
        let s = Suite::builtin("quick").unwrap().unwrap();
        assert_eq!(s.cases.len(), 8);
        assert!(s.cases.iter().all(|c| c.context_tokens <= 1024 && c.output_tokens <= 64));
    }

    #[test]
    fn select_keeps_the_matching_cases() {
        let mut s = Suite::builtin("coder").unwrap().unwrap();
        s.select(&CaseFilter::parse("code-review/*, */76800").unwrap()).unwrap();
        assert_eq!(s.cases.len(), 7);
        let err = s.select(&CaseFilter::parse("nothing/*").unwrap()).unwrap_err().to_string();
        assert!(err.contains("matches no case") && err.contains("code-review/12800"), "{err}");
    }

    #[test]
    fn counts_and_rates_are_built_only_in_range() {
        assert_eq!(Tokens::new(MAX_TOKENS).unwrap().get(), MAX_TOKENS);
        assert_eq!(Tokens::try_from(0).unwrap_err(), "a token count must be between 1 and 10000000, got 0");
        assert_eq!(Positive::new(1).unwrap().get(), 1);
        assert!(Positive::try_from(crate::limits::MAX_COUNT + 1).unwrap_err().contains("between 1 and 1000000"));
        assert_eq!(Rate::new(2.5).unwrap().get(), 2.5);
        for v in [0.0, -1.0, f64::NAN, 1e7] {
            assert!(Rate::try_from(v).unwrap_err().contains("from 0.001 to 1000000"), "{v}");
        }
        let e = serde_json::from_str::<Rate>("0").unwrap_err().to_string();
        assert!(e.contains("from 0.001 to 1000000"), "{e}");
    }

    #[test]
    fn custom_suite_settings_cascade() {
        let s = Suite::parse(
            r#"
name = "mine"
contexts = [100]
output_tokens = 10
repetitions = 4
[[scenarios]]
name = "a"
instruction = "x"
concurrency = 8
[[scenarios]]
name = "b"
instruction = "y"
contexts = [200, 300]
output_tokens = 20
repetitions = 2
"#,
            "mine.toml",
            "mine.toml",
        )
        .unwrap();
        assert_eq!(s.cases.len(), 3);
        assert_eq!(s.cases[0].settings.repetitions, Some(4));
        assert_eq!(s.cases[0].settings.concurrency, Some(8));
        assert_eq!(s.cases[1].id, "b/200");
        assert_eq!(s.cases[1].output_tokens, 20);
        assert_eq!(s.cases[1].settings.repetitions, Some(2));
    }

    #[test]
    fn suite_errors_name_the_file_line_and_key() {
        let err = Suite::parse(
            "name = \"x\"\n[[scenarios]]\nname = \"a\"\ninstruction = \"i\"\noutputs = 3\n",
            "s.toml",
            "s.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("s.toml:5") && err.contains("outputs"), "{err}");
        let err = Suite::parse(
            "name = \"x\"\ncontexts = [0]\n[[scenarios]]\nname = \"a\"\ninstruction = \"i\"\n",
            "s.toml",
            "s.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("s.toml:2") && err.contains("contexts"), "{err}");
        let err = Suite::parse(
            "name = \"x\"\n[[scenarios]]\nname = \"a\"\ninstruction = \"i\"\ncontexts=[1]\n",
            "s.toml",
            "s.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("output_tokens"), "{err}");
        assert!(Suite::builtin("nope").is_none());
        assert!(matches!(Suite::unknown("nope"), SuiteError::Unknown { .. }));
    }
}
