//! CSV (RFC 4180: a header row, CRLF line ends, a field quoted when it
//! holds a comma, a quote, CR or LF, quotes inside doubled), one row per
//! case, phase and metric (`--level case`) or per request (`--level request`).
//!
//! Numbers are written as numbers (`1234.5`, `-3`), an absent value as an
//! empty field, booleans as `true`/`false`. Text fields (profile, case,
//! run id, model, error class, finish reason) may come from a suite file or
//! a server: a spreadsheet would run one starting with `=`, `+`, `-`, `@`,
//! a tab or a carriage return as a formula, so such a text field is written
//! with a `'` in front (`'=HYPERLINK(...)`), which spreadsheets show as text.
//! Number fields are never changed.

use super::{Figure, Run, number};

/// The columns of `--level case`.
pub const CASE_COLUMNS: [&str; 9] = ["run_id", "profile", "case", "phase", "metric", "unit", "value", "n", "spread"];

/// The columns of `--level request`.
pub const REQUEST_COLUMNS: [&str; 19] = [
    "run_id",
    "profile",
    "case",
    "phase",
    "index",
    "ok",
    "error_class",
    "http_status",
    "start_ms",
    "ttft_ms",
    "e2e_ms",
    "tpot_ms",
    "output_tokens",
    "prompt_tokens",
    "tokens_per_second",
    "decode_tokens_per_second",
    "output_tokens_source",
    "finish_reason",
    "attempts",
];

/// One field of a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Field<'a> {
    /// Text: quoted as needed and guarded against formulas.
    Text(&'a str),
    /// A number, written as such.
    Number(f64),
    /// An integer.
    Int(u64),
    /// `true` or `false`.
    Bool(bool),
    /// An absent value: empty.
    Empty,
}

impl Field<'_> {
    fn number(v: Option<f64>) -> Self {
        v.filter(|v| v.is_finite()).map_or(Field::Empty, Field::Number)
    }

    fn int(v: Option<impl Into<u64>>) -> Self {
        v.map_or(Field::Empty, |v| Field::Int(v.into()))
    }
}

/// Characters that make a spreadsheet read a cell as a formula when they start it.
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// A text field as written: guarded, then quoted when RFC 4180 requires it.
pub fn text_field(text: &str) -> String {
    let guarded = if text.starts_with(FORMULA_STARTS) { format!("'{text}") } else { text.to_string() };
    if guarded.contains([',', '"', '\r', '\n']) { format!("\"{}\"", guarded.replace('"', "\"\"")) } else { guarded }
}

fn push_row(out: &mut String, fields: &[Field<'_>]) {
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match f {
            Field::Text(t) => out.push_str(&text_field(t)),
            Field::Number(v) => out.push_str(&number(*v)),
            Field::Int(v) => out.push_str(&v.to_string()),
            Field::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Field::Empty => {}
        }
    }
    out.push_str("\r\n");
}

fn header(out: &mut String, columns: &[&str]) {
    let fields: Vec<Field<'_>> = columns.iter().map(|c| Field::Text(c)).collect();
    push_row(out, &fields);
}

/// `--level case`: one row per run, case, phase and metric, in the metric's unit.
pub fn cases(runs: &[Run<'_>]) -> Vec<u8> {
    let mut out = String::new();
    header(&mut out, &CASE_COLUMNS);
    for run in runs {
        for Figure { case, phase, metric, point } in super::figures_of(run) {
            push_row(
                &mut out,
                &[
                    Field::Text(&run.results.run_id),
                    Field::Text(run.profile),
                    Field::Text(case),
                    Field::Text(phase.as_str()),
                    Field::Text(metric.name),
                    Field::Text(metric.unit),
                    Field::Number(point.value),
                    Field::Int(point.n as u64),
                    Field::number(point.spread),
                ],
            );
        }
    }
    out.into_bytes()
}

/// `--level request`: one row per request of every phase of every case.
pub fn requests(runs: &[Run<'_>]) -> Vec<u8> {
    let mut out = String::new();
    header(&mut out, &REQUEST_COLUMNS);
    for run in runs {
        for case in &run.results.cases {
            for (phase, p) in &case.phases {
                for r in &p.requests {
                    let source = match r.output_tokens_source {
                        crate::results::TokenSource::Usage => "usage",
                        crate::results::TokenSource::ChunkCount => "chunk_count",
                    };
                    push_row(
                        &mut out,
                        &[
                            Field::Text(&run.results.run_id),
                            Field::Text(run.profile),
                            Field::Text(&case.id),
                            Field::Text(phase.as_str()),
                            Field::Int(u64::from(r.index)),
                            Field::Bool(r.ok),
                            r.error.as_ref().map_or(Field::Empty, |e| Field::Text(e.class.as_str())),
                            Field::int(r.error.as_ref().and_then(|e| e.status)),
                            Field::number(Some(r.start_ms)),
                            Field::number(r.ttft_ms),
                            Field::number(r.e2e_ms),
                            Field::number(r.tpot_ms),
                            Field::int(r.output_tokens),
                            Field::int(r.prompt_tokens),
                            Field::number(r.tokens_per_second),
                            Field::number(r.decode_tokens_per_second),
                            Field::Text(source),
                            r.finish_reason.as_deref().map_or(Field::Empty, Field::Text),
                            Field::Int(u64::from(r.attempts)),
                        ],
                    );
                }
            }
        }
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use infergate_core::testing::results;

    /// An RFC 4180 reader, for the round trip: rows of fields, quotes undone.
    fn parse(text: &str) -> Vec<Vec<String>> {
        let mut rows = Vec::new();
        let mut row = Vec::new();
        let mut field = String::new();
        let mut chars = text.chars().peekable();
        let mut quoted = false;
        while let Some(c) = chars.next() {
            match (quoted, c) {
                (true, '"') if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                (true, '"') => quoted = false,
                (true, c) => field.push(c),
                (false, '"') if field.is_empty() => quoted = true,
                (false, ',') => row.push(std::mem::take(&mut field)),
                (false, '\r') if chars.peek() == Some(&'\n') => {
                    chars.next();
                    row.push(std::mem::take(&mut field));
                    rows.push(std::mem::take(&mut row));
                }
                (false, c) => field.push(c),
            }
        }
        assert!(!quoted && field.is_empty() && row.is_empty(), "the text ends mid-row");
        rows
    }

    #[test]
    fn text_is_quoted_as_rfc_4180_says_and_formulas_are_defused() {
        assert_eq!(text_field("plain"), "plain");
        assert_eq!(text_field("a,b"), "\"a,b\"");
        assert_eq!(text_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(text_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(text_field("=1+2"), "'=1+2");
        assert_eq!(text_field("+1"), "'+1");
        assert_eq!(text_field("-x"), "'-x");
        assert_eq!(text_field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(text_field("=HYPERLINK(\"x\",\"y\")"), "\"'=HYPERLINK(\"\"x\"\",\"\"y\"\")\"");
        assert_eq!(text_field("\tx"), "'\tx");
        assert_eq!(text_field("a=b"), "a=b");
        let mut row = String::new();
        push_row(&mut row, &[Field::Number(-3.5), Field::Int(7), Field::Bool(false), Field::Empty, Field::Text("-3")]);
        assert_eq!(row, "-3.5,7,false,,'-3\r\n");
    }

    #[test]
    fn case_rows_round_trip() {
        let r = results(&["a/1", "b,\"2\""], 4, 12, 1.0, 0.02);
        let run = Run { results: &r, profile: "=evil()", origin: "r" };
        let text = String::from_utf8(cases(&[run])).unwrap();
        let rows = parse(&text);
        assert_eq!(rows[0], CASE_COLUMNS);
        let figures = super::super::figures_of(&run);
        assert_eq!(rows.len(), figures.len() + 1);
        for (row, f) in rows[1..].iter().zip(&figures) {
            assert_eq!(row.len(), CASE_COLUMNS.len());
            assert_eq!((row[0].as_str(), row[1].as_str()), ("run4", "'=evil()"));
            assert_eq!((row[2].as_str(), row[3].as_str(), row[4].as_str()), (f.case, f.phase.as_str(), f.metric.name));
            assert_eq!(row[6].parse::<f64>().unwrap(), f.point.value);
            assert_eq!(row[7].parse::<usize>().unwrap(), f.point.n);
            assert_eq!(row[8].parse::<f64>().ok(), f.point.spread);
        }
    }

    #[test]
    fn request_rows_round_trip() {
        let mut r = results(&["a/1"], 5, 6, 1.0, 0.02);
        let warm = r.cases[0].phases.get_mut(&crate::results::PhaseName::Warm).unwrap();
        warm.requests[2] = crate::results::RequestRecord::cancelled(2, 5.0, "stopped");
        warm.requests[3].finish_reason = Some("@stop".into());
        let text = String::from_utf8(requests(&[Run { results: &r, profile: "p", origin: "r" }])).unwrap();
        let rows = parse(&text);
        assert_eq!(rows[0], REQUEST_COLUMNS);
        assert_eq!(rows.len(), 1 + 1 + 6);
        let col = |name| REQUEST_COLUMNS.iter().position(|c| *c == name).unwrap();
        let cancelled = &rows[1 + 1 + 2];
        assert_eq!((cancelled[col("ok")].as_str(), cancelled[col("error_class")].as_str()), ("false", "cancelled"));
        assert_eq!(cancelled[col("ttft_ms")], "");
        let ok = &rows[1 + 1 + 1];
        let rec = &r.cases[0].phases[&crate::results::PhaseName::Warm].requests[1];
        assert_eq!(ok[col("e2e_ms")].parse::<f64>().ok(), rec.e2e_ms);
        assert_eq!(ok[col("tokens_per_second")].parse::<f64>().ok(), rec.tokens_per_second);
        assert_eq!(ok[col("output_tokens")], "100");
        assert_eq!(rows[1 + 1 + 3][col("finish_reason")], "'@stop");
    }
}
