//! The calibration as text: the table and the settings to paste. The
//! figures come from [`crate::gate::calibrate::calibrate`] (pure, in the
//! core crate).

use crate::gate::Level;
use crate::gate::calibrate::{
    Calibration, MAX_BASELINE_RUNS, MAX_REPETITIONS, MetricCalibration, Recommended, UPPER_CONFIDENCE,
};

fn pct(v: f64) -> String {
    let p = v * 100.0;
    if p != 0.0 && p.abs() < 0.1 { format!("{p:.2}%") } else { format!("{p:.1}%") }
}

fn design_text(d: Option<Recommended>) -> String {
    match d {
        Some(d) if d.baseline_runs == 1 => format!("1 run (cv set) x {}", d.repetitions),
        Some(d) => format!("{} runs x {}", d.baseline_runs, d.repetitions),
        None => "not reachable".into(),
    }
}

/// The table's columns, each with how a metric fills it: one list, so a
/// header can never sit over another column's cell.
type Column = (&'static str, fn(&MetricCalibration) -> String);

const COLUMNS: [Column; 9] = [
    ("metric", |m| m.metric.clone()),
    ("level", |m| format!("{:?}", m.level).to_lowercase()),
    ("within-run CV", |m| pct(m.within_run_cv)),
    ("run-to-run CV", |m| pct(m.run_to_run_cv)),
    ("95% upper", |m| pct(m.run_to_run_cv_upper)),
    ("catches now", |m| m.detects_now.map_or_else(|| "nothing".into(), |v| format!(">= {}", pct(v)))),
    ("tolerance", |m| pct(m.tolerance)),
    ("2x tolerance needs", |m| design_text(m.design)),
    ("suggested tolerance", |m| pct(m.suggested_tolerance)),
];

/// The calibration's table.
pub fn table(c: &Calibration) -> String {
    let header: Vec<&str> = COLUMNS.iter().map(|(h, _)| *h).collect();
    let rows: Vec<Vec<String>> = c.metrics.iter().map(|m| COLUMNS.iter().map(|(_, cell)| cell(m)).collect()).collect();
    super::table::render(&header, &rows)
}

/// The calibration as text, ending with the settings to paste.
pub fn render(c: &Calibration, results: &[String]) -> String {
    let mut out = format!(
        "calibration: {} A/A runs of {} cases, {} repetitions each{}; false-alarm budget {} per run\n",
        c.runs,
        c.cases,
        c.repetitions,
        if c.relaunched { ", each a fresh server launch" } else { ", all on one server launch" },
        c.significance
    );
    if !c.relaunched {
        out.push_str(
            "WARNING: the runs shared one server launch, so drift between launches (a restarted server, another \
             GPU state) is invisible here and the run-to-run spread below is a floor, not a measurement; pass \
             --server-command so that every run starts the server afresh\n",
        );
    }
    if let Some(n) = c.history_runs {
        let from: Vec<&str> = c
            .metrics
            .iter()
            .filter(|m| m.spread_source == crate::stats::runlevel::SpreadSource::History)
            .map(|m| m.metric.as_str())
            .collect();
        out.push_str(&format!(
            "run-to-run spread of {} from the last {n} runs of main (--history), as the gate with --history \
             takes it (already widened for its estimate, so its \"95% upper\" is the same); the other metrics' \
             from these runs\n",
            from.join(", ")
        ));
    }
    if c.aa_comparisons > 0 {
        out.push_str(&format!(
            "A/A check: {} of {} runs, each judged against the others as a baseline, were flagged by the current rules\n",
            c.aa_false_alarms, c.aa_comparisons
        ));
    }
    out.push('\n');
    out.push_str(&table(c));
    out.push_str(&format!(
        "\n\"catches now\": the smallest change one check run catches 95% of the time with these {} runs as its \
         baseline. \"2x tolerance needs\": the baseline runs and repetitions with which one check run catches \
         twice the tolerance 95% of the time in each case, at the {:.0}% upper bound of the run-to-run spread.\n",
        c.runs,
        UPPER_CONFIDENCE * 100.0
    ));
    for m in c.metrics.iter().filter(|m| m.level == Level::Fail && m.design.is_none()) {
        out.push_str(&format!(
            "\n{}: with a {} tolerance, changes of {} cannot be caught 95% of the time with up to {} baseline runs \
             and {} repetitions: the runner's drift between runs ({}, up to {} at {:.0}% confidence) is too large \
             for one check run to tell them from noise. {}; or keep the tolerance and run each check more than once \
             (`--runs 2`).\n",
            m.metric,
            pct(m.tolerance),
            pct(2.0 * m.tolerance),
            MAX_BASELINE_RUNS,
            MAX_REPETITIONS,
            pct(m.run_to_run_cv),
            pct(m.run_to_run_cv_upper),
            UPPER_CONFIDENCE * 100.0,
            match m.suggested_design {
                Some(d) => format!(
                    "The smallest tolerance this runner can hold is {} (twice it caught with {})",
                    pct(m.suggested_tolerance),
                    design_text(Some(d))
                ),
                None => "No tolerance up to 100% can be held".into(),
            }
        ));
    }
    let files = if results.is_empty() { "RESULTS.json ...".to_string() } else { results.join(" ") };
    out.push_str(&format!(
        "\nRecord the baseline from {} runs of {} repetitions (these {} runs can be its first: \
         `infergate baseline update --results {files} --baseline PROFILE`; more with `infergate run --runs N`).\n",
        c.suggested_baseline_runs, c.suggested_repetitions, c.runs
    ));
    out.push_str("\nSuggested settings for infergate.toml:\n\n[run]\n");
    out.push_str(&format!("repetitions = {}\n", c.suggested_repetitions));
    let fail: Vec<&MetricCalibration> = c.metrics.iter().filter(|m| m.level != Level::Off).collect();
    if let Some(upper) = fail.iter().map(|m| m.run_to_run_cv_upper).reduce(f64::max) {
        out.push_str(&format!(
            "\n[gate]\n# used only by comparisons with one run a side (a baseline of several runs measures it)\n\
             run_to_run_cv = \"{}%\"\n",
            (upper * 1000.0).ceil() / 10.0
        ));
    }
    for m in fail.iter().filter(|m| m.suggested_tolerance > m.tolerance + 1e-9) {
        out.push_str(&format!(
            "\n[gate.metrics.{}]\ntolerance = \"{}%\"  # the smallest this runner can hold\n",
            m.metric,
            (m.suggested_tolerance * 1000.0).round() / 10.0
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::calibrate::calibrate;
    use crate::gate::rules::Rules;
    use crate::results::Results;
    use infergate_core::testing::results;

    const CASES: [&str; 2] = ["a/1", "b/1"];

    #[test]
    fn quiet_system_suggests_its_settings() {
        let runs: Vec<Results> = (0..5).map(|s| results(&CASES, 10 + s, 12, 1.0, 0.02)).collect();
        assert!(render(&calibrate(&runs, &Rules::default(), true), &[]).contains("repetitions = "));
    }

    #[test]
    fn drift_between_runs_is_explained_with_the_settings_that_hold() {
        let runs: Vec<Results> = [1.0, 1.04, 0.96, 1.05, 0.95]
            .iter()
            .enumerate()
            .map(|(i, s)| results(&CASES, 20 + i as u64, 12, *s, 0.01))
            .collect();
        let c = calibrate(&runs, &Rules::default(), true);
        let text = render(&c, &[]);
        assert!(text.contains("[gate.metrics.tokens_per_second]"), "{text}");
        assert!(text.contains("cannot be caught 95% of the time"), "{text}");
        assert!(text.contains("run_to_run_cv = "), "{text}");
    }

    #[test]
    fn one_launch_is_named_as_such() {
        let runs: Vec<Results> = (0..5).map(|s| results(&CASES, 10 + s, 12, 1.0, 0.02)).collect();
        let text = render(&calibrate(&runs, &Rules::default(), false), &[]);
        assert!(text.contains("WARNING: the runs shared one server launch"), "{text}");
    }

    #[test]
    fn every_header_sits_over_its_own_cell() {
        let runs: Vec<Results> =
            [1.0, 1.04, 0.96].iter().enumerate().map(|(i, s)| results(&CASES, 30 + i as u64, 12, *s, 0.02)).collect();
        let c = calibrate(&runs, &Rules::default(), true);
        let text = table(&c);
        let lines: Vec<Vec<char>> = text.lines().map(|l| l.chars().collect()).collect();
        // The dashes under each header give its column's extent.
        let mut spans = Vec::new();
        let mut start = None;
        for (i, ch) in lines[1].iter().chain(std::iter::once(&' ')).enumerate() {
            match (ch, start) {
                ('-', None) => start = Some(i),
                (' ', Some(s)) => {
                    spans.push(s..i);
                    start = None;
                }
                _ => {}
            }
        }
        assert_eq!(spans.len(), COLUMNS.len(), "{text}");
        let at = |line: &[char], span: &std::ops::Range<usize>| -> String {
            line[span.start.min(line.len())..span.end.min(line.len())].iter().collect::<String>().trim().to_string()
        };
        assert_eq!(lines.len(), 2 + c.metrics.len(), "{text}");
        for ((header, cell), span) in COLUMNS.iter().zip(&spans) {
            assert_eq!(at(&lines[0], span), *header, "{text}");
            for (line, m) in lines[2..].iter().zip(&c.metrics) {
                assert_eq!(at(line, span), cell(m), "{header} of {}: {text}", m.metric);
            }
        }
    }
}
