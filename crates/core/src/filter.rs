//! Which cases a command, a rule or a fault applies to: comma-separated
//! globs over case ids (`code-review/*, */12800`).
//!
//! [`CaseFilter`] is the one parse of that text: `run --cases` and
//! `baseline update --cases`, `[run] cases`, `[[gate.override]] cases`, the
//! results file's `settings.cases_filter` and the simulator's `@case=`
//! selector all read it through [`CaseFilter::parse`], so they agree on what
//! a pattern is and all refuse the same mistakes.

use std::fmt;

/// Glob match with `*` (any run, including `/`) and `?` (one character).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// What is wrong with a case filter. The flag or key that held it is named
/// by whoever read it (clap for flags, the TOML and JSON readers for keys).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// Nothing but blanks and commas.
    #[error("no case pattern: give comma-separated globs over case ids, e.g. `code-review/*,*/12800`")]
    Empty,
    /// A pattern between two commas (or before the first, or after the last) is blank.
    #[error(
        "`{text}` has an empty pattern (number {position} of {count}); remove the extra comma: \
         patterns are comma-separated globs over case ids, e.g. `code-review/*,*/12800`"
    )]
    EmptyPattern {
        /// The filter as written.
        text: String,
        /// Which pattern is empty, from 1.
        position: usize,
        /// How many patterns the commas make.
        count: usize,
    },
}

/// A parsed case filter: one or more globs, any of which selects a case.
///
/// Built only by [`CaseFilter::parse`] (or `FromStr`, `TryFrom`, serde,
/// which call it), so every filter has at least one pattern and none is
/// blank. Shown (and serialized) as the text it was parsed from, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseFilter {
    text: String,
    globs: Vec<String>,
}

impl CaseFilter {
    /// Parses comma-separated globs; blanks around each are ignored, an
    /// empty pattern is an error.
    pub fn parse(text: &str) -> Result<CaseFilter, FilterError> {
        let text = text.trim();
        let globs: Vec<String> = text.split(',').map(|g| g.trim().to_string()).collect();
        if globs.iter().all(String::is_empty) {
            return Err(FilterError::Empty);
        }
        if let Some(i) = globs.iter().position(String::is_empty) {
            return Err(FilterError::EmptyPattern { text: text.to_string(), position: i + 1, count: globs.len() });
        }
        Ok(CaseFilter { text: text.to_string(), globs })
    }

    /// Whether any pattern matches the case id.
    pub fn matches(&self, id: &str) -> bool {
        self.globs.iter().any(|g| glob_match(g, id))
    }

    /// The patterns, in the order written.
    pub fn globs(&self) -> impl Iterator<Item = &str> {
        self.globs.iter().map(String::as_str)
    }

    /// The filter as written (trimmed).
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for CaseFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for CaseFilter {
    type Err = FilterError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CaseFilter::parse(s)
    }
}

impl TryFrom<&str> for CaseFilter {
    type Error = FilterError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        CaseFilter::parse(s)
    }
}

impl TryFrom<String> for CaseFilter {
    type Error = FilterError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        CaseFilter::parse(&s)
    }
}

impl serde::Serialize for CaseFilter {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for CaseFilter {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        CaseFilter::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("code-review/*", "code-review/12800"));
        assert!(glob_match("*/12800", "debugging/12800"));
        assert!(!glob_match("*/12800", "debugging/128000"));
        assert!(glob_match("d?bugging/*", "debugging/1"));
        assert!(glob_match("*", "a/b"));
        assert!(!glob_match("code", "code-review/1"));
    }

    #[test]
    fn a_filter_matches_any_of_its_patterns() {
        let f = CaseFilter::parse(" code-review/* , */76800 ").unwrap();
        assert_eq!(f.globs().collect::<Vec<_>>(), ["code-review/*", "*/76800"]);
        assert!(f.matches("code-review/12800"));
        assert!(f.matches("debugging/76800"));
        assert!(!f.matches("debugging/12800"));
        assert_eq!(f.to_string(), "code-review/* , */76800");
        assert_eq!(f.as_str(), f.to_string());
        let one: CaseFilter = "debugging/256".parse().unwrap();
        assert!(one.matches("debugging/256") && !one.matches("debugging/2560"));
    }

    #[test]
    fn empty_patterns_are_refused_with_what_to_write() {
        for text in ["", "  ", ",", " , ,"] {
            assert_eq!(CaseFilter::parse(text), Err(FilterError::Empty), "{text:?}");
        }
        let cases: &[(&str, usize, usize)] = &[("a/*,", 2, 2), (",a/*", 1, 2), ("a/*,,b/*", 2, 3), ("a/*, ,b/*", 2, 3)];
        for (text, position, count) in cases {
            let e = CaseFilter::parse(text).unwrap_err();
            assert_eq!(
                e,
                FilterError::EmptyPattern { text: text.to_string(), position: *position, count: *count },
                "{text}"
            );
            let m = e.to_string();
            assert!(m.contains(&format!("`{text}`")) && m.contains("code-review/*,*/12800"), "{m}");
        }
        assert!(FilterError::Empty.to_string().contains("e.g. `code-review/*,*/12800`"));
    }

    #[test]
    fn serde_reads_and_writes_the_text_through_the_same_parse() {
        let f: CaseFilter = serde_json::from_str("\"a/*, b/1\"").unwrap();
        assert_eq!(serde_json::to_string(&f).unwrap(), "\"a/*, b/1\"");
        let e = serde_json::from_str::<CaseFilter>("\"a/*,\"").unwrap_err().to_string();
        assert!(e.contains("empty pattern"), "{e}");
        assert!(serde_json::from_str::<CaseFilter>("3").is_err());
        assert_eq!(CaseFilter::try_from(String::from("x")).unwrap(), CaseFilter::try_from("x").unwrap());
    }

    #[test]
    fn a_results_file_keeps_the_filter_as_text_and_refuses_a_broken_one() {
        let mut r = crate::testing::results(&["a/1"], 1, 3, 1.0, 0.05);
        r.settings.cases_filter = Some(CaseFilter::parse("a/*, b/1").unwrap());
        let text = serde_json::to_string(&r).unwrap();
        assert!(text.contains("\"cases_filter\":\"a/*, b/1\""), "the schema keeps a string");
        let back = crate::results::Results::from_json(&text, "r.json").unwrap();
        assert_eq!(back.settings.cases_filter, r.settings.cases_filter);
        let broken = text.replace("\"a/*, b/1\"", "\"a/*,,b/1\"");
        let e = format!("{:#}", crate::results::Results::from_json(&broken, "r.json").unwrap_err());
        assert!(e.contains("r.json:1:") && e.contains("settings.cases_filter") && e.contains("empty pattern"), "{e}");
    }
}
