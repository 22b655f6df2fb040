//! Whether a case's measurements can be trusted at all, before any comparison.
//!
//! A case is invalid, whatever its numbers say, when more of its requests
//! failed than `[gate] max_error_rate` allows (0 by default: any failed
//! request), or when the server did not hold the output length (fewer output
//! tokens than asked for: faster answers, not a faster server). Cancelled
//! requests (the run was stopped) are not failures; a stopped run is invalid
//! as a whole anyway. Pure: used by `compare` and by `run`'s exit code alike.
//!
//! Before any of that, the case must be whole ([`integrity`]): a results
//! file is input, and one that was cut, edited or forged can lack the
//! requests its summary counts or the timings its rules need. Such a case is
//! invalid, never judged on what is left of it.

use super::findings::Problem;
use super::rules::Rules;
use crate::results::{CaseResult, RecordCounts};

/// What makes `case` untrustworthy; empty when nothing does.
pub fn problems(case: &CaseResult, rules: &Rules) -> Vec<Problem> {
    let mut problems = integrity(case);
    let (mut errors, mut judged, mut short) = (0u32, 0u32, 0u32);
    let mut classes = std::collections::BTreeMap::<String, u32>::new();
    for phase in case.phases.values() {
        let s = &phase.summary;
        errors += s.errors;
        judged += s.requests.saturating_sub(s.cancelled);
        short += s.short_outputs;
        for (class, n) in &s.errors_by_class {
            *classes.entry(class.clone()).or_insert(0) += n;
        }
    }
    let rate = if judged > 0 { f64::from(errors) / f64::from(judged) } else { 0.0 };
    if rate > rules.max_error_rate {
        problems.push(Problem::ErrorRate {
            errors,
            judged,
            classes: classes.into_iter().collect(),
            allowed: rules.max_error_rate,
        });
    }
    if short > 0 {
        problems.push(Problem::ShortOutputs { requests: short, asked: case.output_tokens });
    }
    problems
}

/// What the case's record lacks or contradicts, as infergate never writes
/// it: no phases, a phase without requests, a summary that does not count
/// the requests it lists, a completed request without its timings, a timing
/// that is negative or not a number.
pub fn integrity(case: &CaseResult) -> Vec<Problem> {
    let mut problems = Vec::new();
    if case.phases.is_empty() {
        problems.push(Problem::NoPhases);
    }
    for (&name, phase) in &case.phases {
        if phase.requests.is_empty() {
            problems.push(Problem::NoRequestsListed { phase: name });
            continue;
        }
        // Only the counts are recounted: the statistics would cost a sort each.
        let (s, recount) = (phase.summary.counts(), RecordCounts::of(&phase.requests, case.output_tokens));
        let counts = [
            ("requests", s.requests, recount.requests),
            ("completed", s.completed, recount.completed),
            ("errors", s.errors, recount.errors),
            ("cancelled", s.cancelled, recount.cancelled),
            ("short_outputs", s.short_outputs, recount.short_outputs),
        ];
        for (key, said, found) in counts {
            if said != found {
                problems.push(Problem::CountMismatch { phase: name, key: key.into(), said, found });
            }
        }
        for (i, r) in phase.requests.iter().enumerate().filter(|(_, r)| r.ok) {
            let timings = [
                ("ttft_ms", r.ttft_ms, true),
                ("e2e_ms", r.e2e_ms, true),
                ("tokens_per_second", r.tokens_per_second, true),
                ("tpot_ms", r.tpot_ms, false),
                ("decode_tokens_per_second", r.decode_tokens_per_second, false),
            ];
            let bad = timings.iter().find_map(|(key, v, required)| match v {
                None if *required => Some((*key, None)),
                Some(v) if !v.is_finite() || *v < 0.0 => Some((*key, Some(*v))),
                _ => None,
            });
            if let Some((key, value)) = bad {
                problems.push(Problem::BadTiming { phase: name, index: i, key: key.into(), value });
                break;
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{ErrorClass, PhaseName, PhaseSummary, RequestError, RequestRecord};
    use crate::testing::results;

    fn with(records: impl Fn(&mut Vec<RequestRecord>)) -> CaseResult {
        let mut r = results(&["a/1"], 1, 10, 1.0, 0.02);
        let mut case = r.cases.remove(0);
        let warm = case.phases.get_mut(&PhaseName::Warm).unwrap();
        records(&mut warm.requests);
        warm.summary = PhaseSummary::from_records(&warm.requests, 10.0, 100);
        case
    }

    fn fail(r: &mut RequestRecord, class: ErrorClass) {
        r.ok = false;
        r.error = Some(RequestError { class, status: None, message: "x".into() });
    }

    fn rules(max_error_rate: f64) -> Rules {
        let mut r = Rules::default();
        r.max_error_rate = max_error_rate;
        r
    }

    #[test]
    fn a_clean_case_is_valid() {
        assert!(problems(&with(|_| {}), &Rules::default()).is_empty());
    }

    #[test]
    fn any_failure_is_invalid_by_default_and_the_rate_can_allow_some() {
        let case = with(|r| fail(&mut r[3], ErrorClass::StreamCut));
        let p = problems(&case, &Rules::default());
        assert_eq!(p.len(), 1);
        // Cold and warm together: 1 + 10 requests.
        assert_eq!(
            p[0],
            Problem::ErrorRate { errors: 1, judged: 11, classes: vec![("stream_cut".into(), 1)], allowed: 0.0 },
            "{p:?}"
        );
        assert!(problems(&case, &rules(0.1)).is_empty());
        assert_eq!(problems(&case, &rules(0.05)).len(), 1);
    }

    #[test]
    fn cancelled_requests_are_not_failures() {
        let case = with(|r| {
            for x in &mut r[5..] {
                fail(x, ErrorClass::Cancelled);
            }
        });
        assert!(problems(&case, &Rules::default()).is_empty());
    }

    #[test]
    fn a_cut_or_altered_case_is_invalid() {
        let mut case = with(|_| {});
        case.phases.get_mut(&PhaseName::Warm).unwrap().requests.clear();
        let p = problems(&case, &Rules::default());
        assert!(p.contains(&Problem::NoRequestsListed { phase: PhaseName::Warm }), "{p:?}");

        let mut case = with(|_| {});
        case.phases.get_mut(&PhaseName::Warm).unwrap().requests.truncate(4);
        let p = problems(&case, &Rules::default());
        let counted =
            |key: &str, said, found| Problem::CountMismatch { phase: PhaseName::Warm, key: key.into(), said, found };
        assert!(p.contains(&counted("requests", 10, 4)), "{p:?}");

        // Errors hidden from the summary are found in the records.
        let mut case = with(|_| {});
        let warm = case.phases.get_mut(&PhaseName::Warm).unwrap();
        fail(&mut warm.requests[2], ErrorClass::StreamCut);
        let p = problems(&case, &Rules::default());
        assert!(p.contains(&counted("completed", 10, 9)), "{p:?}");

        for broken in [None, Some(-1.0), Some(f64::NAN)] {
            let case = with(|r| r[1].e2e_ms = broken);
            let p = integrity(&case);
            assert_eq!(p.len(), 1, "{p:?}");
            assert!(
                matches!(&p[0], Problem::BadTiming { phase: PhaseName::Warm, index: 1, key, value }
                    if key == "e2e_ms" && value.is_none_or(|v| v.is_nan() || v < 0.0)),
                "{p:?}"
            );
        }
        let mut case = with(|_| {});
        case.phases.clear();
        assert_eq!(integrity(&case).len(), 1);
    }

    #[test]
    fn a_short_output_is_invalid_even_with_errors_allowed() {
        let case = with(|r| r[0].output_tokens = Some(40));
        let p = problems(&case, &rules(1.0));
        assert_eq!(p.len(), 1);
        assert_eq!(p[0], Problem::ShortOutputs { requests: 1, asked: 100 }, "{p:?}");
    }
}
