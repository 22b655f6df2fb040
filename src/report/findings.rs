//! The gate's findings in words: English and Korean sentences for every
//! [`Headline`], note, validity problem and mismatch the core crate returns
//! as data. The only place those words live; the gate never sees them, so a
//! changed sentence cannot change a verdict.

use crate::gate::{CaseNote, Change, Headline, MainTrend, MismatchKind, Problem, RunNote, Side};
use crate::report::full::Lang;
use crate::results::PhaseName;

/// Four significant digits, no exponent for ordinary magnitudes.
fn value(v: f64) -> String {
    let r = crate::baseline::round4(v);
    if r.abs() >= 1000.0 { format!("{r:.0}") } else { format!("{r}") }
}

fn signed_pct(v: f64) -> String {
    format!("{:+.1}%", v * 100.0)
}

fn phase(p: PhaseName, lang: Lang) -> &'static str {
    match (lang, p) {
        (Lang::En, _) => p.as_str(),
        (Lang::Ko, PhaseName::Cold) => "초기 로딩",
        (Lang::Ko, PhaseName::Warm) => "연속 응답",
    }
}

fn phase_text(p: &str, lang: Lang) -> String {
    match (lang, p) {
        (Lang::Ko, "cold") => phase(PhaseName::Cold, lang).into(),
        (Lang::Ko, "warm") => phase(PhaseName::Warm, lang).into(),
        _ => p.into(),
    }
}

fn side(s: Side, lang: Lang) -> &'static str {
    match (lang, s) {
        (Lang::En, Side::Baseline) => "baseline",
        (Lang::En, Side::Results) => "results",
        (Lang::Ko, Side::Baseline) => "기준선",
        (Lang::Ko, Side::Results) => "현재 결과",
    }
}

/// One sentence for the comparison's headline.
pub fn headline(h: &Headline, lang: Lang) -> String {
    match lang {
        Lang::En => headline_en(h),
        Lang::Ko => headline_ko(h),
    }
}

fn change_en(c: &Change) -> String {
    let limit = if c.tolerance > 0.0 {
        format!("the {}% tolerance", value(c.tolerance * 100.0))
    } else {
        format!("the {} {} limit", value(c.floor), c.unit)
    };
    format!(
        "{} of {} ({}) changed {} ({} → {} {}), beyond {limit}",
        c.metric,
        c.case,
        c.phase,
        signed_pct(c.change),
        value(c.baseline),
        value(c.current),
        c.unit
    )
}

fn change_ko(c: &Change) -> String {
    let limit = if c.tolerance > 0.0 {
        format!("허용 오차 {}%", value(c.tolerance * 100.0))
    } else {
        format!("한계 {} {}", value(c.floor), c.unit)
    };
    format!(
        "{}의 {} ({})이(가) {} 변했습니다 ({} → {} {}), {limit}를 넘었습니다",
        c.case,
        c.metric,
        phase_text(&c.phase, Lang::Ko),
        signed_pct(c.change),
        value(c.baseline),
        value(c.current),
        c.unit
    )
}

fn headline_en(h: &Headline) -> String {
    let note = |n: &Option<CaseNote>| n.as_ref().map(|n| case_note(n, Lang::En)).unwrap_or_default();
    match h {
        Headline::NotCompared { what, baseline, current, more } => format!(
            "Not compared: {} differs (baseline `{baseline}`, current `{current}`){}",
            mismatch(what, Lang::En),
            if *more > 0 { format!(" and {more} more difference(s)") } else { String::new() }
        ),
        Headline::Untrusted { case, note } => {
            let reason = match (case, note) {
                (Some((id, n)), _) => format!("{id}: {}", case_note(n, Lang::En)),
                (None, Some(n)) => run_note(n, Lang::En),
                (None, None) => "the run is incomplete".into(),
            };
            format!("The run cannot be trusted: {reason}")
        }
        Headline::Regressed { change } => format!("Regressed: {}", change_en(change)),
        Headline::RegressedCase { note: n, .. } => format!("Regressed: {}", note(n)),
        Headline::Improved { change: None, .. } => "Improved".into(),
        Headline::Improved { update_required, change: Some(c) } => format!(
            "{}: {}",
            if *update_required { "Improved, baseline update required" } else { "Improved" },
            change_en(c)
        ),
        Headline::Warning { change } => format!("Warning: {}", change_en(change)),
        Headline::CannotJudgeOneRun { metric, case, requests, needed } => format!(
            "Cannot judge {metric} of {case}: one run a side of {requests} request(s) has no estimate of its noise; \
             use {needed} or more repetitions, or several runs"
        ),
        Headline::CannotJudge { metric, case, note: n } => format!(
            "Cannot judge {metric} of {case}: {}",
            n.as_ref().map_or_else(|| "no samples on a side".into(), |n| case_note(n, Lang::En))
        ),
        Headline::CaseWarning { case, note: n } => format!("Warning: {case} {}", note(n)),
        Headline::Warnings => "Warnings".into(),
        Headline::NoChange { cases } => {
            format!("No change beyond tolerance and noise in {cases} case{}", if *cases == 1 { "" } else { "s" })
        }
    }
}

fn headline_ko(h: &Headline) -> String {
    let note = |n: &Option<CaseNote>| n.as_ref().map(|n| case_note(n, Lang::Ko)).unwrap_or_default();
    match h {
        Headline::NotCompared { what, baseline, current, more } => format!(
            "비교하지 않음: {}이(가) 다릅니다 (기준선 `{baseline}`, 현재 `{current}`){}",
            mismatch(what, Lang::Ko),
            if *more > 0 { format!(" 외 {more}건의 차이") } else { String::new() }
        ),
        Headline::Untrusted { case, note } => {
            let reason = match (case, note) {
                (Some((id, n)), _) => format!("{id}: {}", case_note(n, Lang::Ko)),
                (None, Some(n)) => run_note(n, Lang::Ko),
                (None, None) => "실행이 끝나지 않았습니다".into(),
            };
            format!("이 실행은 신뢰할 수 없습니다: {reason}")
        }
        Headline::Regressed { change } => format!("회귀: {}", change_ko(change)),
        Headline::RegressedCase { note: n, .. } => format!("회귀: {}", note(n)),
        Headline::Improved { change: None, .. } => "개선".into(),
        Headline::Improved { update_required, change: Some(c) } => {
            format!("{}: {}", if *update_required { "개선, 기준선 갱신 필요" } else { "개선" }, change_ko(c))
        }
        Headline::Warning { change } => format!("경고: {}", change_ko(change)),
        Headline::CannotJudgeOneRun { metric, case, requests, needed } => format!(
            "{case}의 {metric}은(는) 판단할 수 없습니다: 양쪽 모두 요청 {requests}개짜리 실행 하나뿐이라 잡음을 \
             추정할 수 없습니다; 반복을 {needed}회 이상으로 늘리거나 여러 번 실행하세요"
        ),
        Headline::CannotJudge { metric, case, note: n } => format!(
            "{case}의 {metric}은(는) 판단할 수 없습니다: {}",
            n.as_ref().map_or_else(|| "한쪽에 표본이 없습니다".into(), |n| case_note(n, Lang::Ko))
        ),
        Headline::CaseWarning { case, note: n } => format!("경고: {case} {}", note(n)),
        Headline::Warnings => "경고".into(),
        Headline::NoChange { cases } => format!("케이스 {cases}개 모두 허용 오차와 잡음을 넘는 변화가 없습니다"),
    }
}

/// A note about the whole comparison.
pub fn run_note(n: &RunNote, lang: Lang) -> String {
    match lang {
        Lang::En => match n {
            RunNote::MismatchAllowed => {
                "compared despite differences (--allow-mismatch): read the figures with care".into()
            }
            RunNote::NoResults => "no results to compare".into(),
            RunNote::Incomplete => {
                "the run did not complete (interrupted or abandoned): its results cannot be gated".into()
            }
            RunNote::NoCases => "the results hold no cases: nothing was measured, so nothing can be judged".into(),
            RunNote::NoCaseInBaseline { baseline_cases } => format!(
                "no case of the results is in the baseline ({baseline_cases} case(s)): nothing was judged; check \
                 --cases and --baseline, or record the cases with `infergate baseline update`"
            ),
            RunNote::DriftNotSeen => "the verdict cannot see drift between runs: the baseline has one run and no \
                                      [gate] run_to_run_cv is set, so a runner whose speed moves between launches \
                                      can fail an unchanged system; record the baseline from several runs \
                                      (`infergate run --runs 5`, then `infergate baseline update --results` with \
                                      all of them) or set run_to_run_cv from `infergate calibrate`"
                .into(),
            RunNote::HistoryUnused { profile, records, same_environment, needed } => format!(
                "main's history (profile {profile}) gave no run-to-run spread: {same_environment} of its \
                 {records} run(s) are on this environment and a spread needs {needed}; the verdict uses \
                 [gate] run_to_run_cv or the runs' own spread instead"
            ),
            RunNote::Runner { message } => message.clone(),
        },
        Lang::Ko => match n {
            RunNote::MismatchAllowed => {
                "차이가 있는데도 비교했습니다 (--allow-mismatch): 수치를 주의해서 읽으세요".into()
            }
            RunNote::NoResults => "비교할 결과가 없습니다".into(),
            RunNote::Incomplete => "실행이 끝나지 않았습니다 (중단 또는 포기): 이 결과로는 판정할 수 없습니다".into(),
            RunNote::NoCases => "결과에 케이스가 없습니다: 측정한 것이 없으므로 판정할 수 없습니다".into(),
            RunNote::NoCaseInBaseline { baseline_cases } => format!(
                "결과의 어떤 케이스도 기준선(케이스 {baseline_cases}개)에 없습니다: 판정한 것이 없습니다; --cases와 \
                 --baseline을 확인하거나 `infergate baseline update`로 케이스를 기록하세요"
            ),
            RunNote::DriftNotSeen => "판정이 실행 간 변동을 볼 수 없습니다: 기준선에 실행이 하나뿐이고 [gate] \
                                      run_to_run_cv가 설정되지 않아, 실행마다 속도가 달라지는 러너에서는 바뀌지 \
                                      않은 시스템도 실패할 수 있습니다; 여러 번의 실행으로 기준선을 기록하거나 \
                                      (`infergate run --runs 5` 후 그 결과 모두로 `infergate baseline update \
                                      --results`) `infergate calibrate`가 제안하는 run_to_run_cv를 설정하세요"
                .into(),
            RunNote::HistoryUnused { profile, records, same_environment, needed } => format!(
                "main 이력(프로필 {profile})에서 실행 간 산포를 얻지 못했습니다: 실행 {records}회 중 이 환경의 \
                 실행은 {same_environment}회이고 산포에는 {needed}회가 필요합니다; 판정은 [gate] run_to_run_cv나 \
                 실행 자체의 산포를 씁니다"
            ),
            RunNote::Runner { message } => message.clone(),
        },
    }
}

/// A note about one case.
pub fn case_note(n: &CaseNote, lang: Lang) -> String {
    let ko = lang == Lang::Ko;
    match n {
        CaseNote::Problem { run: Some(run), problem: p } if ko => format!("실행 {run}: {}", problem(p, lang)),
        CaseNote::Problem { run: Some(run), problem: p } => format!("run {run}: {}", problem(p, lang)),
        CaseNote::Problem { run: None, problem: p } => problem(p, lang),
        CaseNote::PhaseMissing { phase: p, missing_in } if ko => {
            format!("{}에 {} 단계가 없습니다: 그 지표들은 판단할 수 없습니다", side(*missing_in, lang), phase(*p, lang))
        }
        CaseNote::PhaseMissing { phase: p, missing_in } => format!(
            "the {} phase is missing in the {}: its metrics cannot be judged",
            phase(*p, lang),
            side(*missing_in, lang)
        ),
        CaseNote::NoRequests { phase: p } if ko => format!("{}: 실행된 요청이 없습니다", phase(*p, lang)),
        CaseNote::NoRequests { phase: p } => format!("{}: no requests were run", phase(*p, lang)),
        CaseNote::NothingJudged if ko => {
            "이 케이스의 어떤 지표도 판단할 수 없습니다: 양쪽 모두 규칙이 판정하는 단계가 없습니다".into()
        }
        CaseNote::NothingJudged => {
            "no metric of this case could be judged: neither side has a phase the rules gate".into()
        }
        CaseNote::NotInBaseline if ko => "기준선에 없습니다: `infergate baseline update`로 기록하세요".into(),
        CaseNote::NotInBaseline => "not in the baseline: record it with `infergate baseline update`".into(),
        CaseNote::NotInResults if ko => "기준선에는 있지만 결과에는 없습니다".into(),
        CaseNote::NotInResults => "in the baseline but not in the results".into(),
        CaseNote::NotReached if ko => "실행이 멈추기 전에 도달하지 못했습니다".into(),
        CaseNote::NotReached => "not reached before the run stopped".into(),
        CaseNote::UsageMissing { phase: p, requests } if ko => format!(
            "{}: 서버가 요청 {requests}개에 usage를 보내지 않았습니다; 그 출력 토큰은 청크를 센 값입니다",
            phase(*p, lang)
        ),
        CaseNote::UsageMissing { phase: p, requests } => format!(
            "{}: the server sent no usage for {requests} request(s); their output tokens are counted chunks",
            phase(*p, lang)
        ),
        CaseNote::Retried { phase: p, requests } if ko => format!(
            "{}: 요청 {requests}개를 다시 보내야 했습니다 (연결 오류 또는 429); 수치는 마지막 시도의 것입니다",
            phase(*p, lang)
        ),
        CaseNote::Retried { phase: p, requests } => format!(
            "{}: {requests} request(s) needed a retry (connect error or 429); the figures are the last attempts'",
            phase(*p, lang)
        ),
        CaseNote::NoSamples { metric, phase: p, side: s, series } if ko => format!(
            "{metric} ({}): {}의 모든 실행에 쓸 수 있는 {series} 표본이 있지는 않습니다: 판단할 수 없습니다",
            phase(*p, lang),
            side(*s, lang)
        ),
        CaseNote::NoSamples { metric, phase: p, side: s, series } => format!(
            "{metric} ({}): the {} has no usable {series} samples in every run: it cannot be judged",
            phase(*p, lang),
            side(*s, lang)
        ),
        CaseNote::NoGpuValue { metric, phase: p, side: s } if ko => {
            format!("{metric} ({}): {}에 값이 없습니다: 판단할 수 없습니다", phase(*p, lang), side(*s, lang))
        }
        CaseNote::NoGpuValue { metric, phase: p, side: s } => {
            format!("{metric} ({}): the {} has no value: it cannot be judged", phase(*p, lang), side(*s, lang))
        }
        CaseNote::OutputDrift { similarity, threshold } if ko => format!(
            "출력 변화: greedy 출력이 기준선과 {:.0}% 비슷합니다 (기준 {:.0}%); 성능 변경이 모델의 답을 바꾸어서는 \
             안 됩니다",
            similarity * 100.0,
            threshold * 100.0
        ),
        CaseNote::OutputDrift { similarity, threshold } => format!(
            "output drift: the greedy output is {:.0}% similar to the baseline's (threshold {:.0}%); a performance \
             change should not change what the model says",
            similarity * 100.0,
            threshold * 100.0
        ),
        CaseNote::SomeCannotJudge if ko => "일부 지표는 판단할 수 없습니다: cannot_judge로 표시된 행을 보세요".into(),
        CaseNote::SomeCannotJudge => "some metrics cannot be judged: see the rows marked cannot_judge".into(),
    }
}

/// Why a case's measurements cannot be trusted.
pub fn problem(p: &Problem, lang: Lang) -> String {
    let ko = lang == Lang::Ko;
    match p {
        Problem::ErrorRate { errors, judged, classes, allowed } => {
            let classes: Vec<String> = classes.iter().map(|(k, v)| format!("{v} {k}")).collect();
            if ko {
                format!(
                    "요청 {judged}개 중 {errors}개가 실패했습니다 ({}); 허용 오류율은 {allowed}입니다 ([gate] \
                     max_error_rate)",
                    classes.join(", ")
                )
            } else {
                format!(
                    "{errors} of {judged} requests failed ({}); the allowed error rate is {allowed} ([gate] \
                     max_error_rate)",
                    classes.join(", ")
                )
            }
        }
        Problem::ShortOutputs { requests, asked } if ko => format!(
            "서버가 출력 길이를 지키지 않았습니다: 요청 {requests}개가 요청한 출력 토큰 {asked}개보다 적게 \
             돌려주어 처리량을 비교할 수 없습니다"
        ),
        Problem::ShortOutputs { requests, asked } => format!(
            "output length not enforced by the server: {requests} request(s) returned fewer than the {asked} output \
             tokens asked for, so throughput is not comparable (the server did not hold the output length)"
        ),
        Problem::NoPhases if ko => "결과에 이 케이스의 단계가 없습니다: 측정한 것이 없습니다".into(),
        Problem::NoPhases => "the results list no phase for this case: nothing was measured".into(),
        Problem::NoRequestsListed { phase: ph } if ko => {
            format!("{}: 결과에 요청이 없습니다 (requests[]가 비어 있음)", phase(*ph, lang))
        }
        Problem::NoRequestsListed { phase: ph } => {
            format!("{}: the results list no requests (requests[] is empty)", phase(*ph, lang))
        }
        Problem::CountMismatch { phase: ph, key, said, found } if ko => format!(
            "{}: summary.{key}는 {said}인데 requests[]에는 {found}개가 있습니다: 결과 파일이 바뀌었거나 잘렸습니다",
            phase(*ph, lang)
        ),
        Problem::CountMismatch { phase: ph, key, said, found } => format!(
            "{}: summary.{key} is {said} but requests[] has {found}: the results file was altered or cut",
            phase(*ph, lang)
        ),
        Problem::BadTiming { phase: ph, index, key, value } => {
            let what = match (value, ko) {
                (None, false) => "missing".to_string(),
                (None, true) => "없습니다".to_string(),
                (Some(v), false) => v.to_string(),
                (Some(v), true) => format!("{v}입니다"),
            };
            if ko {
                format!("{}: requests[{index}]는 완료되었지만 {key}가 {what}", phase(*ph, lang))
            } else {
                format!("{}: requests[{index}] completed but its {key} is {what}", phase(*ph, lang))
            }
        }
    }
}

/// What differs between results and baseline.
pub fn mismatch(k: &MismatchKind, lang: Lang) -> String {
    let ko = lang == Lang::Ko;
    let fixed = |en: &str, kr: &str| if ko { kr.to_string() } else { en.to_string() };
    match k {
        MismatchKind::Suite => fixed("suite", "스위트"),
        MismatchKind::SuiteSeed => fixed("suite seed", "스위트 시드"),
        MismatchKind::Model => fixed("model", "모델"),
        MismatchKind::Api => fixed("api", "API"),
        MismatchKind::ServerEngine => fixed("server engine", "서버 엔진"),
        MismatchKind::Gpu => fixed("GPU", "GPU"),
        MismatchKind::GpuDriverMajor => fixed("GPU driver major version", "GPU 드라이버 주 버전"),
        MismatchKind::GpuCount => fixed("GPU count", "GPU 수"),
        MismatchKind::GpuMemory => fixed("GPU memory (MiB)", "GPU 메모리 (MiB)"),
        MismatchKind::GpuPowerLimit => fixed("GPU power limit (W)", "GPU 전력 한도 (W)"),
        MismatchKind::GpuMig => fixed("GPU MIG mode", "GPU MIG 모드"),
        MismatchKind::GpuEcc => fixed("GPU ECC", "GPU ECC"),
        MismatchKind::GpuClocksChanged => fixed("GPU application clocks changed", "GPU 애플리케이션 클록 변경"),
        MismatchKind::PromptRecipe { case } if ko => format!("{case}의 프롬프트 구성"),
        MismatchKind::PromptRecipe { case } => format!("prompt recipe of {case}"),
        MismatchKind::PromptText { case } if ko => format!("{case}의 프롬프트 텍스트"),
        MismatchKind::PromptText { case } => format!("prompt text of {case}"),
        MismatchKind::OutputTokens { case } if ko => format!("{case}의 출력 토큰 수"),
        MismatchKind::OutputTokens { case } => format!("output tokens of {case}"),
    }
}

/// One entry of the "main over time" line: where a metric went on main,
/// since which commit (its first 7 characters; the run's id where the run
/// recorded none), how many runs ago and in how many steps.
pub fn main_trend(t: &MainTrend, lang: Lang) -> String {
    let change = super::format::format_pct(t.change);
    let commit = t.since_commit.as_deref().map(|c| c.chars().take(7).collect::<String>());
    let runs_ago = t.runs_ago;
    match lang {
        Lang::En => {
            let since = commit.map_or_else(|| format!("run {}", t.since_run), |c| format!("commit {c}"));
            let ago = if runs_ago == 1 { "1 run ago".to_string() } else { format!("{runs_ago} runs ago") };
            let steps = match t.steps {
                0 => "gradually".to_string(),
                1 => "in one step".to_string(),
                n @ 2..=9 => {
                    let word = ["two", "three", "four", "five", "six", "seven", "eight", "nine"][n - 2];
                    format!("in {word} steps")
                }
                n => format!("in {n} steps"),
            };
            format!("{} on main: {change} since {since}, {ago}, {steps}", t.metric)
        }
        Lang::Ko => {
            let since = commit.map_or_else(|| format!("{} 실행", t.since_run), |c| format!("{c} 커밋"));
            let steps = match t.steps {
                0 => "점진적으로".to_string(),
                1 => "한 번에".to_string(),
                n => format!("{n}단계에 걸쳐"),
            };
            format!("main의 {}: {since} 이후 {change} ({runs_ago}회 실행 전부터, {steps})", t.metric)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_finding_has_words_in_both_languages() {
        let notes = [
            CaseNote::Problem { run: Some(2), problem: Problem::NoPhases },
            CaseNote::PhaseMissing { phase: PhaseName::Cold, missing_in: Side::Baseline },
            CaseNote::NoRequests { phase: PhaseName::Warm },
            CaseNote::NothingJudged,
            CaseNote::NotInBaseline,
            CaseNote::NotInResults,
            CaseNote::NotReached,
            CaseNote::UsageMissing { phase: PhaseName::Warm, requests: 3 },
            CaseNote::Retried { phase: PhaseName::Warm, requests: 1 },
            CaseNote::NoSamples {
                metric: "ttft_p99".into(),
                phase: PhaseName::Warm,
                side: Side::Results,
                series: "ttft".into(),
            },
            CaseNote::NoGpuValue { metric: "gpu_memory_peak".into(), phase: PhaseName::Cold, side: Side::Baseline },
            CaseNote::OutputDrift { similarity: 0.4, threshold: 0.9 },
            CaseNote::SomeCannotJudge,
        ];
        for n in &notes {
            let (en, ko) = (case_note(n, Lang::En), case_note(n, Lang::Ko));
            assert!(!en.is_empty() && !ko.is_empty() && en != ko, "{n:?}: {en} / {ko}");
            assert!(ko.chars().any(|c| ('\u{AC00}'..='\u{D7A3}').contains(&c)), "{n:?} has no Korean: {ko}");
        }
        let run_notes = [
            RunNote::MismatchAllowed,
            RunNote::NoResults,
            RunNote::Incomplete,
            RunNote::NoCases,
            RunNote::NoCaseInBaseline { baseline_cases: 4 },
            RunNote::DriftNotSeen,
            RunNote::HistoryUnused { profile: "p".into(), records: 3, same_environment: 2, needed: 10 },
        ];
        for n in &run_notes {
            assert_ne!(run_note(n, Lang::En), run_note(n, Lang::Ko), "{n:?}");
        }
    }

    #[test]
    fn english_words_are_the_documented_sentences() {
        let p = Problem::ErrorRate { errors: 1, judged: 13, classes: vec![("timeout".into(), 1)], allowed: 0.0 };
        assert_eq!(
            problem(&p, Lang::En),
            "1 of 13 requests failed (1 timeout); the allowed error rate is 0 ([gate] max_error_rate)"
        );
        let p = Problem::BadTiming { phase: PhaseName::Warm, index: 1, key: "e2e_ms".into(), value: None };
        assert_eq!(problem(&p, Lang::En), "warm: requests[1] completed but its e2e_ms is missing");
        let h = Headline::NotCompared { what: MismatchKind::Gpu, baseline: "A".into(), current: "B".into(), more: 2 };
        assert_eq!(
            headline(&h, Lang::En),
            "Not compared: GPU differs (baseline `A`, current `B`) and 2 more difference(s)"
        );
        assert_eq!(
            headline(&Headline::NoChange { cases: 1 }, Lang::En),
            "No change beyond tolerance and noise in 1 case"
        );
        let change = Change {
            case: "chat/512".into(),
            metric: "tokens_per_second".into(),
            phase: "warm".into(),
            change: -0.123,
            baseline: 100.0,
            current: 87.7,
            unit: "tok/s".into(),
            tolerance: 0.05,
            floor: 0.0,
        };
        assert_eq!(
            headline(&Headline::Regressed { change: change.clone() }, Lang::En),
            "Regressed: tokens_per_second of chat/512 (warm) changed -12.3% (100 → 87.7 tok/s), beyond the 5% tolerance"
        );
        assert!(
            headline(&Headline::Regressed { change }, Lang::Ko)
                .starts_with("회귀: chat/512의 tokens_per_second (연속 응답)")
        );
    }

    #[test]
    fn main_trends_in_both_languages() {
        let t = MainTrend {
            metric: "tokens_per_second".into(),
            change: -0.1184,
            worse: true,
            since_commit: Some("abc1234def5678".into()),
            since_run: "run-0042".into(),
            runs_ago: 14,
            steps: 3,
            tolerance: 0.05,
            series: 16,
        };
        assert_eq!(
            main_trend(&t, Lang::En),
            "tokens_per_second on main: -11.8% since commit abc1234, 14 runs ago, in three steps"
        );
        assert_eq!(
            main_trend(&t, Lang::Ko),
            "main의 tokens_per_second: abc1234 커밋 이후 -11.8% (14회 실행 전부터, 3단계에 걸쳐)"
        );
        let one = MainTrend { steps: 1, ..t.clone() };
        assert!(main_trend(&one, Lang::En).ends_with(", 14 runs ago, in one step"));
        assert!(main_trend(&one, Lang::Ko).ends_with("(14회 실행 전부터, 한 번에)"));
        let creep = MainTrend { steps: 0, since_commit: None, runs_ago: 30, change: 0.062, ..t.clone() };
        assert_eq!(
            main_trend(&creep, Lang::En),
            "tokens_per_second on main: +6.2% since run run-0042, 30 runs ago, gradually"
        );
        assert_eq!(
            main_trend(&creep, Lang::Ko),
            "main의 tokens_per_second: run-0042 실행 이후 +6.2% (30회 실행 전부터, 점진적으로)"
        );
        let many = MainTrend { steps: 12, runs_ago: 1, ..t };
        assert!(main_trend(&many, Lang::En).ends_with(", 1 run ago, in 12 steps"));
    }
}
