//! TOML documents into typed values, with errors that say where:
//! `FILE:LINE:COL: key `a.b`: message`. Shared by the config, suites and
//! baselines; a large document is read one case at a time
//! ([`crate::tomlsplit`]).

use serde::de::DeserializeOwned;

/// Deserializes TOML into `T`, with errors of the form
/// `FILE:LINE:COL: key `a.b`: message`.
/// A large document (a baseline of many cases) is read one case at a time
/// (see `crate::tomlsplit`), with the same messages.
pub fn parse_toml<T: DeserializeOwned>(text: &str, origin: &str) -> Result<T, String> {
    match crate::tomlsplit::SplitDoc::new(text) {
        Some(doc) => parse_toml_split(doc, text, origin),
        None => parse_toml_whole(text, origin),
    }
}

/// [`parse_toml`] on a document split into groups.
pub fn parse_toml_split<T: DeserializeOwned>(
    doc: crate::tomlsplit::SplitDoc<'_>,
    text: &str,
    origin: &str,
) -> Result<T, String> {
    doc.deserialize().map_err(|e| {
        let inner = e.inner();
        let path = (!inner.syntax).then(|| e.path().to_string());
        format_error(text, origin, path, inner.span.clone(), &inner.message)
    })
}

/// [`parse_toml`] on the whole document at once, whatever its size.
pub fn parse_toml_whole<T: DeserializeOwned>(text: &str, origin: &str) -> Result<T, String> {
    let de = toml::de::Deserializer::parse(text).map_err(|e| format_toml_error(text, origin, None, &e))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        format_toml_error(text, origin, Some(path), e.inner())
    })
}

fn format_toml_error(text: &str, origin: &str, path: Option<String>, e: &toml::de::Error) -> String {
    format_error(text, origin, path, e.span(), e.message())
}

fn format_error(
    text: &str,
    origin: &str,
    path: Option<String>,
    span: Option<std::ops::Range<usize>>,
    message: &str,
) -> String {
    let location = match span {
        Some(span) => {
            let (line, col) = line_col(text, span.start);
            format!("{origin}:{line}:{col}")
        }
        None => origin.to_string(),
    };
    let message = crate::limits::shorten_numbers(message.trim());
    match path.filter(|p| p != "." && !p.is_empty()) {
        Some(p) => format!("{location}: key `{p}`: {message}"),
        None => format!("{location}: {message}"),
    }
}

/// 1-based line and column of byte offset `pos`.
fn line_col(text: &str, pos: usize) -> (usize, usize) {
    let before = &text[..pos.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map_or(before.len(), |i| before.len() - i - 1) + 1;
    (line, col)
}
