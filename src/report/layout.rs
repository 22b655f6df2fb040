//! The terminal report's layout: ANSI colours and the aligned table of
//! metric rows.

use std::borrow::Cow;

use minijinja::{ErrorKind, Value};
use unicode_width::UnicodeWidthStr as _;

use super::render::text_of;
use super::view::{CELL_COLUMNS, cell_texts, row_of};
use super::words::Words;

/// ANSI colours by status or verdict name, or plain text when colour is off.
pub(crate) fn paint(text: &str, style: &str, color: bool) -> String {
    if !color {
        return text.to_string();
    }
    let code = match style {
        "regressed" | "invalid" | "refused" | "red" => "31",
        "warn" | "cannot_judge" | "missing" | "update_required" | "yellow" => "33",
        "improved" | "pass" | "green" => "32",
        "new" | "cyan" => "36",
        "noise" | "dim" => "2",
        "bold" => "1",
        _ => return text.to_string(),
    };
    format!("\u{1b}[{code}m{text}\u{1b}[0m")
}

/// Columns whose cells are numbers, aligned right.
pub(crate) const NUMERIC_COLUMNS: [&str; 6] = ["baseline", "current", "change", "limit", "p", "mdc"];

/// An aligned plain-text table of `rows` (context rows, e.g. `notable`)
/// showing `columns` of their pre-formatted `cells` under headers in the
/// report's words; the `status` column is painted by the row's status.
/// Columns are aligned by display width: a Hangul syllable takes two.
pub(crate) fn table(rows: &Value, columns: &[String], color: bool, words: &Words) -> Result<String, minijinja::Error> {
    let rows: Vec<Value> = rows.try_iter()?.collect();
    // Each cell with its width in characters.
    let mut cells: Vec<Vec<(Cow<'_, str>, usize)>> = Vec::with_capacity(rows.len());
    let mut statuses: Vec<Cow<'_, str>> = Vec::with_capacity(rows.len());
    for row in &rows {
        let mut line = Vec::with_capacity(columns.len());
        for (column, cell) in columns.iter().zip(cell_texts(row, columns)?) {
            let Some(cell) = cell else {
                return Err(minijinja::Error::new(
                    ErrorKind::InvalidOperation,
                    format!("table(): unknown column `{column}` (columns: {CELL_COLUMNS})"),
                ));
            };
            let width = cell.width();
            line.push((cell, width));
        }
        cells.push(line);
        statuses.push(match row_of(row) {
            Some(r) => Cow::Borrowed(r.metric().status.as_str()),
            None => Cow::Owned(text_of(&row.get_attr("status")?)),
        });
    }
    // The header names each column in the report's words.
    let headers: Vec<&str> =
        columns.iter().map(|c| words.get(&format!("term.col.{c}")).unwrap_or(c.as_str())).collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.width()).collect();
    for line in &cells {
        for (w, cell) in widths.iter_mut().zip(line) {
            *w = (*w).max(cell.1);
        }
    }
    let numeric: Vec<bool> = columns.iter().map(|c| NUMERIC_COLUMNS.contains(&c.as_str())).collect();
    let mut out = String::with_capacity((rows.len() + 2) * (widths.iter().sum::<usize>() + 2 * columns.len()));
    let write_line = |out: &mut String, line: &mut dyn Iterator<Item = (&str, usize)>, status: Option<&str>| {
        if !out.is_empty() {
            out.push('\n');
        }
        let start = out.len();
        for (i, (((cell, width), w), column)) in line.zip(&widths).zip(columns).enumerate() {
            if i > 0 {
                out.push_str("  ");
            }
            let pad = w - width;
            let painted;
            let text = match status {
                Some(status) if column == "status" => {
                    painted = paint(cell, status, color);
                    painted.as_str()
                }
                _ => cell,
            };
            if numeric[i] {
                out.extend(std::iter::repeat_n(' ', pad));
                out.push_str(text);
            } else {
                out.push_str(text);
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        let kept = out[start..].trim_end().len();
        out.truncate(start + kept);
    };
    write_line(&mut out, &mut headers.iter().map(|h| (*h, h.width())), None);
    let rules: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    write_line(&mut out, &mut rules.iter().zip(&widths).map(|(r, w)| (r.as_str(), *w)), None);
    for (line, status) in cells.iter().zip(&statuses) {
        write_line(&mut out, &mut line.iter().map(|(c, w)| (c.as_ref(), *w)), Some(status));
    }
    Ok(out)
}
