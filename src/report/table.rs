//! A plain-text summary table of a run, printed at its end.

use crate::results::{PhaseName, Results};
use crate::stats::Summary;

/// Renders a table with one row per case and phase: the figures people look
/// at first (medians of TTFT, TPOT and E2E, mean tokens/s, errors).
pub fn summary(results: &Results) -> String {
    let header =
        ["case", "phase", "ok/n", "prompt", "TTFT p50", "TPOT p50", "E2E p50", "E2E p99", "tok/s", "out tok/s"];
    let mut rows: Vec<Vec<String>> = Vec::new();
    for case in &results.cases {
        for (name, phase) in &case.phases {
            let s = &phase.summary;
            let label = match name {
                PhaseName::Cold => "cold",
                PhaseName::Warm => "warm",
            };
            rows.push(vec![
                case.id.clone(),
                label.into(),
                format!("{}/{}", s.completed, s.requests),
                format!("{}", case.prompt.tokens),
                ms(s.ttft_ms.as_ref().map(|x| x.median)),
                ms(s.tpot_ms.as_ref().map(|x| x.median)),
                ms(s.e2e_ms.as_ref().map(|x| x.median)),
                ms(s.e2e_ms.as_ref().map(|x| x.p99)),
                num(s.tokens_per_second.as_ref().map(|x: &Summary| x.mean)),
                num(Some(s.output_throughput).filter(|_| s.completed > 0)),
            ]);
        }
    }
    render(&header, &rows)
}

fn ms(v: Option<f64>) -> String {
    match v {
        Some(v) if v >= 100.0 => format!("{v:.0} ms"),
        Some(v) => format!("{v:.2} ms"),
        None => super::format::MISSING.into(),
    }
}

fn num(v: Option<f64>) -> String {
    v.map_or_else(|| super::format::MISSING.into(), |v| format!("{v:.1}"))
}

/// Left-aligns the first two columns and right-aligns the rest.
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i > 0 {
                out.push_str("  ");
            }
            let pad = w - cell.chars().count();
            if i < 2 {
                out.push_str(cell);
                out.push_str(&" ".repeat(pad));
            } else {
                out.push_str(&" ".repeat(pad));
                out.push_str(cell);
            }
        }
        out.trim_end().to_string()
    };
    let mut out = line(header.to_vec());
    out.push('\n');
    out.push_str(&line(widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().iter().map(String::as_str).collect()));
    out.push('\n');
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_columns() {
        let t = render(
            &["case", "phase", "n"],
            &[vec!["a/1".into(), "cold".into(), "1".into()], vec!["bb/22".into(), "warm".into(), "10".into()]],
        );
        assert_eq!(t, "case   phase   n\n-----  -----  --\na/1    cold    1\nbb/22  warm   10\n");
    }
}
