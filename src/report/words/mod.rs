//! The words of the reports, one table per language: [`en`] and [`ko`].
//!
//! Every sentence, heading, column header and status word that the
//! comparison's reports (terminal, Markdown for the pull-request comment and
//! the job summary) and the full report's charts print is looked up here by
//! key, in Rust through [`Words::text`] and in templates through the `tr`
//! function; so adding a word is one line per language, and the templates
//! are the same for every language. The tests hold the two tables to the
//! same keys, the same placeholders and the same plural shape, and every key
//! a built-in template names to a table.
//!
//! A word is one text, or two for English plurals (`n == 1`, otherwise);
//! `{name}` in it is filled from the arguments, `{n}` from the count.
//! Arguments are inserted as given: the caller escapes them for its report.
//!
//! The gate's findings (the headline, notes, validity problems, mismatch
//! names) are data with figures in them; their sentences, in both
//! languages, are in [`super::findings`], next to each other per finding.

mod en;
mod ko;

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

/// One word: its key and its forms (one, or English's singular and plural).
type Entry = (&'static str, &'static [&'static str]);

/// The language of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// Korean, the user's own report.
    Ko,
    /// English.
    #[default]
    En,
}

impl Lang {
    /// Every language, for tests and listings.
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Ko];

    /// The code: `en` or `ko`.
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::Ko => "ko",
            Lang::En => "en",
        }
    }

    fn table(self) -> &'static [Entry] {
        match self {
            Lang::Ko => ko::WORDS,
            Lang::En => en::WORDS,
        }
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The words of one language.
#[derive(Debug, Clone, Copy)]
pub struct Words {
    lang: Lang,
    map: &'static HashMap<&'static str, &'static [&'static str]>,
}

/// A word that cannot be written: an unknown key, or a placeholder without a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WordError {
    /// No such key in the table.
    #[error("no word `{key}` in the {lang} words (src/report/words/{lang}.rs)")]
    Unknown {
        /// The key asked for.
        key: String,
        /// The table.
        lang: Lang,
    },
    /// A placeholder of the word was given no value.
    #[error("the word `{key}` needs a value for `{{{name}}}`")]
    Missing {
        /// The word.
        key: String,
        /// The placeholder.
        name: String,
    },
}

impl Words {
    /// The words of `lang`.
    pub fn of(lang: Lang) -> Words {
        static MAPS: [OnceLock<HashMap<&'static str, &'static [&'static str]>>; 2] = [OnceLock::new(), OnceLock::new()];
        let slot = match lang {
            Lang::En => &MAPS[0],
            Lang::Ko => &MAPS[1],
        };
        Words { lang, map: slot.get_or_init(|| lang.table().iter().copied().collect()) }
    }

    /// The language.
    pub fn lang(&self) -> Lang {
        self.lang
    }

    /// The forms of `key`.
    fn forms(&self, key: &str) -> Result<&'static [&'static str], WordError> {
        self.map.get(key).copied().ok_or_else(|| WordError::Unknown { key: key.to_string(), lang: self.lang })
    }

    /// A word without placeholders, as it is (its plural form, if it has one).
    pub fn get(&self, key: &str) -> Result<&'static str, WordError> {
        let forms = self.forms(key)?;
        Ok(forms.last().copied().unwrap_or(""))
    }

    /// `key` for the count `n` (the singular form when `n` is 1 and the word
    /// has one), its placeholders filled: `{n}` with the count, any other
    /// `{name}` with `arg(name)`.
    pub fn text(&self, key: &str, n: Option<i64>, arg: &dyn Fn(&str) -> Option<String>) -> Result<String, WordError> {
        let forms = self.forms(key)?;
        let form = match (forms, n) {
            ([one, _], Some(1)) => one,
            _ => forms.last().unwrap_or(&""),
        };
        let mut out = String::with_capacity(form.len() + 16);
        let mut rest = *form;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let Some(close) = after.find('}') else {
                out.push_str(&rest[open..]);
                rest = "";
                break;
            };
            let name = &after[..close];
            let value = match (name, n) {
                ("n", Some(n)) => Some(n.to_string()),
                _ => arg(name),
            };
            let value = value.ok_or_else(|| WordError::Missing { key: key.to_string(), name: name.to_string() })?;
            out.push_str(&value);
            rest = &after[close + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// [`Words::text`] with named arguments.
    pub fn fill(&self, key: &str, n: Option<i64>, args: &[(&str, &str)]) -> Result<String, WordError> {
        self.text(key, n, &|name| args.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_string()))
    }

    /// A word that is known to exist (a key of the built-in code, covered by
    /// the tests): its text, or the key itself should a table lack it.
    pub fn must(&self, key: &str, n: Option<i64>, args: &[(&str, &str)]) -> String {
        self.fill(key, n, args).unwrap_or_else(|_| key.to_string())
    }

    /// Every word whose key starts with `prefix`, in table order (the
    /// dashboard page takes its words along as data).
    pub fn with_prefix(&self, prefix: &str) -> Vec<(&'static str, &'static [&'static str])> {
        self.lang.table().iter().copied().filter(|(key, _)| key.starts_with(prefix)).collect()
    }

    /// The word for a value under a prefix (`phase.warm`), or the value
    /// itself when there is none: names the report knows are translated,
    /// anything else passes through.
    pub fn name_or_self<'v>(&self, prefix: &str, value: &'v str) -> std::borrow::Cow<'v, str> {
        let key = format!("{prefix}.{value}");
        match self.map.get(key.as_str()) {
            Some(forms) => std::borrow::Cow::Borrowed(forms.last().copied().unwrap_or(value)),
            None => std::borrow::Cow::Borrowed(value),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;

    /// Every word of `lang`, for tests elsewhere (the plots' font coverage).
    pub(crate) fn entries(lang: Lang) -> &'static [(&'static str, &'static [&'static str])] {
        lang.table()
    }

    /// The placeholders of a form.
    fn placeholders(form: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut rest = form;
        while let Some(open) = rest.find('{') {
            let after = &rest[open + 1..];
            let close = after.find('}').unwrap_or_else(|| panic!("unclosed placeholder in {form:?}"));
            out.insert(after[..close].to_string());
            rest = &after[close + 1..];
        }
        out
    }

    fn table(lang: Lang) -> BTreeMap<&'static str, &'static [&'static str]> {
        let mut map = BTreeMap::new();
        for (key, forms) in lang.table() {
            assert!(map.insert(*key, *forms).is_none(), "{lang}: `{key}` is in the table twice");
        }
        map
    }

    /// Both languages have the same keys: a word added to one and not the
    /// other fails here, naming it.
    #[test]
    fn every_key_is_in_every_language() {
        let en = table(Lang::En);
        let ko = table(Lang::Ko);
        let only_en: Vec<&str> = en.keys().filter(|k| !ko.contains_key(*k)).copied().collect();
        let only_ko: Vec<&str> = ko.keys().filter(|k| !en.contains_key(*k)).copied().collect();
        assert!(only_en.is_empty(), "in en.rs but not in ko.rs: {only_en:?}");
        assert!(only_ko.is_empty(), "in ko.rs but not in en.rs: {only_ko:?}");
    }

    /// A word takes the same values in every language, every form of it too,
    /// and a word with two forms (a plural) shows its count.
    #[test]
    fn every_word_has_the_same_placeholders_in_every_language() {
        let en = table(Lang::En);
        let ko = table(Lang::Ko);
        for (key, en_forms) in &en {
            assert!(!en_forms.is_empty() && en_forms.len() <= 2, "en `{key}`: one or two forms");
            let want = placeholders(en_forms[en_forms.len() - 1]);
            for form in en_forms.iter().chain(ko[key].iter()) {
                assert_eq!(placeholders(form), want, "`{key}`: {form:?}");
                assert!(!form.contains('\n'), "`{key}`: one line");
            }
            assert_eq!(ko[key].len(), 1, "ko `{key}`: Korean has one form");
            if en_forms.len() == 2 {
                assert!(want.contains("n"), "en `{key}` has a plural but no {{n}}");
            }
            for name in &want {
                assert!(
                    !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                    "`{key}`: placeholder {{{name}}}"
                );
            }
        }
    }

    /// Every `tr("...")` of a built-in template is a word; so is every
    /// prefix a template builds a key from (`"verdict." ~ c.verdict`), for
    /// every value it can take (rendered in the report tests).
    #[test]
    fn every_key_a_template_names_exists() {
        let words = Words::of(Lang::En);
        for (name, source) in [
            ("comparison.md.j2", include_str!("../templates/comparison.md.j2")),
            ("terminal.txt.j2", include_str!("../templates/terminal.txt.j2")),
        ] {
            let mut found = 0;
            let mut rest = source;
            while let Some(at) = rest.find("tr(\"") {
                let after = &rest[at + 4..];
                let end = after.find('"').unwrap_or(after.len());
                let key = &after[..end];
                // `selectattr("...")` is no word.
                let a_call = rest[..at].chars().next_back().is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
                if a_call && !key.ends_with('.') {
                    assert!(words.forms(key).is_ok(), "{name}: tr(\"{key}\") is no word");
                }
                found += 1;
                rest = &after[end..];
            }
            assert!(found > 10, "{name}: {found} words");
        }
    }

    /// Every key the Rust code names as a literal (`"md.cut.summary"`) is a
    /// word: `Words::must` prints the key itself should one be missing, so a
    /// misspelt key is caught here instead.
    #[test]
    fn every_key_the_code_names_exists() {
        const PREFIXES: [&str; 11] =
            ["md.", "term.", "chart.", "verdict.", "status.", "phase.", "count.", "runs.", "limit.", "drift.", "dash."];
        let words = Words::of(Lang::En);
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = vec![root.clone()];
        let mut found = 0;
        while let Some(path) = files.pop() {
            if path.is_dir() {
                files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") || path.starts_with(root.join("report/words")) {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for literal in text.split('"').skip(1).step_by(2) {
                let key_like = PREFIXES.iter().any(|p| literal.starts_with(p))
                    && literal.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.')
                    && !literal.ends_with('.')
                    // File names are no words.
                    && !["png", "svg", "json", "md", "toml", "txt", "j2"].iter().any(|e| literal.ends_with(&format!(".{e}")));
                if key_like {
                    assert!(words.forms(literal).is_ok(), "{}: \"{literal}\" is no word", path.display());
                    found += 1;
                }
            }
        }
        assert!(found >= 15, "{found} keys found in the code");
    }

    /// Every verdict, status and phase the reports name has a word in every language.
    #[test]
    fn every_verdict_status_and_phase_has_a_word() {
        use crate::gate::{CaseVerdict, MetricStatus, Verdict};
        use crate::results::PhaseName;
        let mut keys = Vec::new();
        for v in [
            Verdict::Refused,
            Verdict::Invalid,
            Verdict::Regressed,
            Verdict::UpdateRequired,
            Verdict::Warn,
            Verdict::Improved,
            Verdict::Pass,
        ] {
            keys.push(format!("verdict.{}", v.as_str()));
        }
        for v in [
            CaseVerdict::Invalid,
            CaseVerdict::Regressed,
            CaseVerdict::Warn,
            CaseVerdict::Missing,
            CaseVerdict::New,
            CaseVerdict::Improved,
            CaseVerdict::Pass,
        ] {
            keys.push(format!("verdict.{}", v.as_str()));
        }
        for s in [
            MetricStatus::Regressed,
            MetricStatus::Warn,
            MetricStatus::CannotJudge,
            MetricStatus::Improved,
            MetricStatus::Noise,
            MetricStatus::Pass,
        ] {
            keys.push(format!("status.{}", s.as_str()));
        }
        for p in [PhaseName::Cold, PhaseName::Warm] {
            keys.push(format!("phase.{}", p.as_str()));
            keys.push(format!("chart.phase.{}", p.as_str()));
        }
        for column in ["case", "phase", "metric", "baseline", "current", "change", "limit", "p", "mdc", "status"] {
            keys.push(format!("term.col.{column}"));
        }
        for lang in Lang::ALL {
            for key in &keys {
                assert!(Words::of(lang).get(key).is_ok(), "{lang}: no word `{key}`");
            }
        }
    }

    /// Plural forms follow the count; placeholders are filled or named when missing.
    #[test]
    fn plurals_counts_and_placeholders() {
        let en = Words::of(Lang::En);
        assert_eq!(en.fill("count.warnings", Some(1), &[]).unwrap(), "1 warning");
        assert_eq!(en.fill("count.warnings", Some(3), &[]).unwrap(), "3 warnings");
        let ko = Words::of(Lang::Ko);
        assert_eq!(ko.fill("count.warnings", Some(1), &[]).unwrap(), "경고 1건");
        assert_eq!(
            en.fill("md.mismatch.item", None, &[("what", "gpu"), ("baseline", "A"), ("current", "B")]).unwrap(),
            "**gpu**: A in the baseline, B now"
        );
        assert_eq!(
            en.fill("md.mismatch.item", None, &[("what", "gpu")]).unwrap_err(),
            WordError::Missing { key: "md.mismatch.item".into(), name: "baseline".into() }
        );
        assert!(matches!(en.get("no.such.word"), Err(WordError::Unknown { .. })));
        assert_eq!(ko.name_or_self("phase", "warm"), "연속 응답");
        assert_eq!(ko.name_or_self("phase", "prefill"), "prefill");
        assert_eq!(en.name_or_self("phase", "cold"), "cold");
    }

    /// Labels of the mermaid chart can end neither their string nor the
    /// code block; chart labels are one short line.
    #[test]
    fn chart_words_are_safe_where_they_go() {
        for lang in Lang::ALL {
            for (key, forms) in lang.table() {
                if key.starts_with("md.chart.") {
                    for form in *forms {
                        assert!(!form.contains(['"', '`']), "{lang} `{key}`: {form}");
                    }
                }
            }
        }
    }

    #[test]
    fn lang_reads_from_config_and_flags() {
        #[derive(serde::Deserialize)]
        struct T {
            lang: Lang,
        }
        assert_eq!(toml::from_str::<T>("lang = \"ko\"").unwrap().lang, Lang::Ko);
        let err = toml::from_str::<T>("lang = \"kr\"").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("`ko`") && err.contains("`en`"), "{err}");
        assert_eq!(Lang::default(), Lang::En);
    }
}
