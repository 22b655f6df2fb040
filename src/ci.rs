//! GitHub Actions: the run's context, the job summary, annotations and
//! step outputs.
//!
//! Actions talks to a step through environment variables and files:
//! `GITHUB_EVENT_PATH` (the event payload), `GITHUB_STEP_SUMMARY` (Markdown
//! appended to the job page), `GITHUB_OUTPUT` (step outputs), and workflow
//! commands printed on stdout (`::error ...::`). Everything here reads or
//! writes exactly those, so it is tested by pointing them at temporary files.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::Deserialize;

use crate::gate::{Comparison, MetricStatus};
use crate::report::full::Lang;

/// What a run knows about where it runs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ActionsContext {
    /// `GITHUB_ACTIONS == "true"`.
    pub in_actions: bool,
    /// `owner/name` (`GITHUB_REPOSITORY`).
    pub repository: Option<String>,
    /// The pull request number, from the event payload.
    pub pr: Option<u64>,
    /// The event name (`GITHUB_EVENT_NAME`).
    pub event_name: Option<String>,
    /// The pull request comes from a fork (its token is read-only).
    pub from_fork: bool,
    /// `GITHUB_API_URL` (GitHub Enterprise: `https://HOST/api/v3`).
    pub api_url: String,
    /// Link to this run, for truncated comments.
    pub run_url: Option<String>,
    /// `GITHUB_STEP_SUMMARY`.
    pub step_summary: Option<PathBuf>,
    /// `GITHUB_OUTPUT`.
    pub output: Option<PathBuf>,
    /// Under a `workflow_run` event: the run that triggered this one.
    pub workflow_run: Option<WorkflowRun>,
}

/// The triggering run of a `workflow_run` event: what identifies the pull
/// request it measured, from GitHub rather than from anything the run wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct WorkflowRun {
    /// The run's id.
    #[serde(default)]
    pub id: u64,
    /// The event that started it (`pull_request` for a gate run).
    #[serde(default)]
    pub event: String,
    /// The commit it ran.
    #[serde(default)]
    pub head_sha: String,
    /// The branch it ran, in the head repository.
    #[serde(default)]
    pub head_branch: Option<String>,
    /// The repository the commit came from (a fork's `owner/name`).
    #[serde(default)]
    pub head_repository: Option<Repo>,
}

#[derive(Deserialize)]
struct Event {
    #[serde(default)]
    pull_request: Option<PullRequest>,
    /// `issue_comment` events: the issue, which is a pull request when it has `pull_request`.
    #[serde(default)]
    issue: Option<Issue>,
    #[serde(default)]
    workflow_run: Option<WorkflowRun>,
}

#[derive(Deserialize)]
struct Issue {
    number: u64,
    #[serde(default)]
    pull_request: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct PullRequest {
    number: u64,
    #[serde(default)]
    head: Option<Side>,
    #[serde(default)]
    base: Option<Side>,
}

#[derive(Deserialize)]
struct Side {
    #[serde(default)]
    repo: Option<Repo>,
}

/// A repository as an event names it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Repo {
    /// `owner/name`.
    pub full_name: String,
}

impl ActionsContext {
    /// Reads the Actions environment through `var` (so tests can supply it).
    /// A missing or unreadable event payload leaves the PR unknown: the caller
    /// then needs `--pr`.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> ActionsContext {
        let get = |k: &str| var(k).filter(|v| !v.is_empty());
        let mut ctx = ActionsContext {
            in_actions: get("GITHUB_ACTIONS").as_deref() == Some("true"),
            repository: get("GITHUB_REPOSITORY"),
            event_name: get("GITHUB_EVENT_NAME"),
            api_url: get("GITHUB_API_URL").unwrap_or_else(|| "https://api.github.com".into()),
            step_summary: get("GITHUB_STEP_SUMMARY").map(PathBuf::from),
            output: get("GITHUB_OUTPUT").map(PathBuf::from),
            ..ActionsContext::default()
        };
        if let (Some(server), Some(repo), Some(run)) = (get("GITHUB_SERVER_URL"), &ctx.repository, get("GITHUB_RUN_ID"))
        {
            ctx.run_url = Some(format!("{}/{repo}/actions/runs/{run}", server.trim_end_matches('/')));
        }
        // GitHub's payloads are well under this; a bigger file is not one.
        const MAX_EVENT_BYTES: u64 = 32 * 1024 * 1024;
        let event = get("GITHUB_EVENT_PATH")
            .and_then(|p| crate::input::read_capped(Path::new(&p), MAX_EVENT_BYTES, "an Actions event").ok());
        if let Some(event) = event {
            if let Ok(e) = serde_json::from_str::<Event>(&event) {
                if let Some(pr) = e.pull_request {
                    ctx.pr = Some(pr.number);
                    let name = |s: &Option<Side>| s.as_ref().and_then(|s| s.repo.as_ref()).map(|r| r.full_name.clone());
                    let (head, base) = (name(&pr.head), name(&pr.base));
                    ctx.from_fork = head.is_some() && base.is_some() && head != base;
                } else if let Some(issue) = e.issue.filter(|i| i.pull_request.is_some()) {
                    // issue_comment: the pull request is the issue commented on.
                    ctx.pr = Some(issue.number);
                }
                ctx.workflow_run = e.workflow_run;
            }
        }
        ctx
    }

    /// From the process environment.
    pub fn current() -> ActionsContext {
        ActionsContext::from_env(|k| std::env::var(k).ok())
    }
}

/// GitHub's limit on one step's job summary, bytes.
pub const MAX_SUMMARY_BYTES: usize = 1024 * 1024;

/// Appends Markdown to the job summary (`GITHUB_STEP_SUMMARY`), cut like
/// the comment (the verdict and the regressions kept) so that the step's
/// summary stays under GitHub's 1 MiB, whatever it already holds; the note
/// where it was cut is in `lang`, the report's language.
pub fn append_summary(path: &Path, markdown: &str, lang: crate::report::Lang) -> anyhow::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open the job summary {}", path.display()))?;
    let used = f.metadata().map_or(0, |m| m.len() as usize);
    // Room for the newline, and for multi-byte characters counted as one by the cut.
    let room = MAX_SUMMARY_BYTES.saturating_sub(used + 1);
    let cut: String;
    let markdown = if markdown.len() > room {
        let note = crate::report::words::Words::of(lang).must("md.cut.summary", None, &[]);
        // The cut counts characters; shrink until the bytes fit.
        let mut chars = room;
        cut = loop {
            let attempt = crate::github::truncate::truncate_markdown(markdown, chars, &note);
            if attempt.len() <= room || chars == 0 {
                break attempt;
            }
            chars = chars * room / attempt.len() * 9 / 10;
        };
        cut.as_str()
    } else {
        markdown
    };
    f.write_all(markdown.as_bytes())?;
    if !markdown.ends_with('\n') {
        f.write_all(b"\n")?;
    }
    Ok(())
}

/// Writes step outputs to `GITHUB_OUTPUT` (multi-line values with a delimiter).
pub fn write_outputs(path: &Path, outputs: &[(&str, String)]) -> anyhow::Result<()> {
    let mut text = String::new();
    for (name, value) in outputs {
        if value.contains('\n') || value.contains('\r') {
            let mut delim = "INFERGATE_EOF".to_string();
            while value.contains(&delim) {
                delim.push('_');
            }
            text.push_str(&format!("{name}<<{delim}\n{value}\n{delim}\n"));
        } else {
            text.push_str(&format!("{name}={value}\n"));
        }
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open the step outputs {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

/// Escapes the message of a workflow command.
fn escape_data(s: &str) -> String {
    s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// Escapes a property (`title=`) of a workflow command.
fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// One `::error` per regression and one `::warning` per warning of the comparison.
pub fn annotations(cmp: &Comparison) -> Vec<String> {
    let mut out = Vec::new();
    let profile = &cmp.profile;
    for case in &cmp.cases {
        for m in &case.metrics {
            let kind = match m.status {
                MetricStatus::Regressed => "error",
                MetricStatus::Warn | MetricStatus::CannotJudge => "warning",
                _ => continue,
            };
            let what = if m.status == MetricStatus::CannotJudge {
                format!(
                    "cannot judge {} ({} run(s) of {} request(s) on the current side)",
                    m.metric, m.runs[1], m.samples[1]
                )
            } else {
                format!(
                    "{} {:+.1}% ({} -> {} {}), limit {:.0}%",
                    m.metric,
                    m.change * 100.0,
                    crate::baseline::round4(m.baseline),
                    crate::baseline::round4(m.current),
                    m.unit,
                    m.tolerance * 100.0
                )
            };
            out.push(format!(
                "::{kind} title={}::{}",
                escape_property(&format!("infergate {profile}: {} ({})", case.id, m.phase)),
                escape_data(&what)
            ));
        }
        if matches!(case.verdict, crate::gate::CaseVerdict::Invalid) {
            for n in &case.notes {
                out.push(format!(
                    "::error title={}::{}",
                    escape_property(&format!("infergate {profile}: {} is invalid", case.id)),
                    escape_data(&crate::report::findings::case_note(n, Lang::En))
                ));
            }
        }
    }
    for m in &cmp.mismatches {
        out.push(format!(
            "::{} title={}::{}",
            if cmp.mismatch_allowed { "warning" } else { "error" },
            escape_property(&format!("infergate {profile}: not comparable")),
            escape_data(&format!(
                "{} differs: {} -> {}",
                crate::report::findings::mismatch(&m.what, Lang::En),
                m.baseline,
                m.current
            ))
        ));
    }
    out
}

/// Number of regressed metrics.
pub fn regressions(cmp: &Comparison) -> usize {
    cmp.cases.iter().flat_map(|c| &c.metrics).filter(|m| m.status == MetricStatus::Regressed).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Lang;
    use std::collections::HashMap;

    fn ctx(vars: &[(&str, &str)]) -> ActionsContext {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        ActionsContext::from_env(|k| map.get(k).cloned())
    }

    #[test]
    fn pull_request_event_and_fork_detection() {
        let dir = tempfile::tempdir().unwrap();
        let event = dir.path().join("event.json");
        std::fs::write(
            &event,
            r#"{"pull_request":{"number":42,"head":{"repo":{"full_name":"someone/fork"}},"base":{"repo":{"full_name":"org/repo"}}}}"#,
        )
        .unwrap();
        let c = ctx(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_REPOSITORY", "org/repo"),
            ("GITHUB_EVENT_PATH", event.to_str().unwrap()),
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_RUN_ID", "99"),
            ("GITHUB_API_URL", "https://ghe.example.com/api/v3"),
        ]);
        assert!(c.in_actions);
        assert_eq!(c.pr, Some(42));
        assert!(c.from_fork);
        assert_eq!(c.api_url, "https://ghe.example.com/api/v3");
        assert_eq!(c.run_url.as_deref(), Some("https://github.com/org/repo/actions/runs/99"));
        std::fs::write(
            &event,
            r#"{"pull_request":{"number":7,"head":{"repo":{"full_name":"org/repo"}},"base":{"repo":{"full_name":"org/repo"}}}}"#,
        )
        .unwrap();
        let c = ctx(&[("GITHUB_EVENT_PATH", event.to_str().unwrap())]);
        assert_eq!((c.pr, c.from_fork, c.in_actions), (Some(7), false, false));
        assert_eq!(c.api_url, "https://api.github.com");
        // A broken payload leaves the PR unknown rather than failing.
        std::fs::write(&event, "{not json").unwrap();
        assert_eq!(ctx(&[("GITHUB_EVENT_PATH", event.to_str().unwrap())]).pr, None);
    }

    #[test]
    fn issue_comment_and_workflow_run_events() {
        let dir = tempfile::tempdir().unwrap();
        let event = dir.path().join("event.json");
        std::fs::write(&event, r#"{"action":"created","issue":{"number":12,"pull_request":{"url":"x"}},"comment":{"body":"/infergate accept"}}"#).unwrap();
        assert_eq!(ctx(&[("GITHUB_EVENT_PATH", event.to_str().unwrap())]).pr, Some(12));
        // A comment on an issue that is not a pull request names no pull request.
        std::fs::write(&event, r#"{"issue":{"number":13}}"#).unwrap();
        assert_eq!(ctx(&[("GITHUB_EVENT_PATH", event.to_str().unwrap())]).pr, None);
        std::fs::write(
            &event,
            r#"{"workflow_run":{"id":99,"event":"pull_request","head_sha":"abc","head_branch":"feat","head_repository":{"full_name":"someone/fork"},"pull_requests":[]}}"#,
        )
        .unwrap();
        let c = ctx(&[("GITHUB_EVENT_PATH", event.to_str().unwrap())]);
        let run = c.workflow_run.unwrap();
        assert_eq!((run.id, run.event.as_str(), run.head_sha.as_str()), (99, "pull_request", "abc"));
        assert_eq!(run.head_repository.unwrap().full_name, "someone/fork");
        assert_eq!(c.pr, None);
    }

    #[test]
    fn the_job_summary_stays_under_githubs_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("summary.md");
        std::fs::write(&path, "x".repeat(300_000)).unwrap();
        let row = "| case/é | tokens_per_second | +1.0% | pass |\n";
        let md = format!(
            "### infergate: PASS\n\n| case | metric | change | status |\n|---|---|---|---|\n{}",
            row.repeat(40_000)
        );
        assert!(md.len() > MAX_SUMMARY_BYTES);
        append_summary(&path, &md, Lang::En).unwrap();
        let len = std::fs::metadata(&path).unwrap().len() as usize;
        assert!(len <= MAX_SUMMARY_BYTES && len > 900_000, "{len}");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("### infergate: PASS") && text.contains("1 MiB limit"));
        // In Korean, the note is Korean and the limit the same (in bytes, Hangul taking three).
        let ko = dir.path().join("summary-ko.md");
        std::fs::write(&ko, "x".repeat(300_000)).unwrap();
        append_summary(&ko, &md.replace("pass |", "통과 |"), Lang::Ko).unwrap();
        let len = std::fs::metadata(&ko).unwrap().len() as usize;
        assert!(len <= MAX_SUMMARY_BYTES && len > 900_000, "{len}");
        let text = std::fs::read_to_string(&ko).unwrap();
        assert!(text.contains("1 MiB 제한") && !text.contains("1 MiB limit"));
    }

    #[test]
    fn outputs_and_summary_files() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        write_outputs(&out, &[("verdict", "regressed".into()), ("report", "line 1\nline 2".into())]).unwrap();
        write_outputs(&out, &[("regressions", "3".into())]).unwrap();
        let text = std::fs::read_to_string(&out).unwrap();
        assert_eq!(text, "verdict=regressed\nreport<<INFERGATE_EOF\nline 1\nline 2\nINFERGATE_EOF\nregressions=3\n");
        let sum = dir.path().join("summary.md");
        append_summary(&sum, "# one", Lang::En).unwrap();
        append_summary(&sum, "# two\n", Lang::Ko).unwrap();
        assert_eq!(std::fs::read_to_string(&sum).unwrap(), "# one\n# two\n");
    }

    #[test]
    fn workflow_command_escaping() {
        assert_eq!(escape_data("a%b\nc\r"), "a%25b%0Ac%0D");
        assert_eq!(escape_property("x: y, z"), "x%3A y%2C z");
    }

    #[test]
    fn hostile_names_and_notes_stay_inside_their_annotation() {
        use crate::baseline::Baseline;
        use crate::gate::compare::{CompareInput, compare};
        use crate::gate::{CaseVerdict, Mismatch};
        use infergate_core::testing::results;
        let id = "x::error title=owned::pwned,y\r\n::warning::%0A";
        let base = Baseline::from_results(&results(&[id], 1, 12, 1.0, 0.01), "p");
        let current = results(&[id], 2, 12, 1.5, 0.01);
        let rules = crate::gate::rules::Rules::default();
        let mut cmp = compare(&CompareInput {
            current: std::slice::from_ref(&current),
            results_paths: &["r.json".to_string()],
            baseline: &base,
            baseline_path: "baselines/p.toml",
            rules: &rules,
            allow_mismatch: true,
            history: None,
        });
        cmp.profile = "p, q: r%\n::notice::".into();
        let mut invalid = cmp.cases[0].clone();
        invalid.verdict = CaseVerdict::Invalid;
        invalid.notes = vec![crate::gate::CaseNote::Problem {
            run: None,
            problem: crate::gate::Problem::ErrorRate {
                errors: 1,
                judged: 1,
                classes: vec![("HTTP 500: \n::error::injected % 100".into(), 1)],
                allowed: 0.0,
            },
        }];
        cmp.cases.push(invalid);
        let what = crate::gate::MismatchKind::PromptText { case: "GPU\n::x::".into() };
        cmp.mismatches.push(Mismatch { what, baseline: "a\r".into(), current: "b%".into() });
        let lines = annotations(&cmp);
        assert!(lines.len() >= 3, "{lines:?}");
        for line in &lines {
            assert!(!line.contains(['\n', '\r']), "{line:?}");
            let (kind, rest) = line.strip_prefix("::").and_then(|l| l.split_once(' ')).unwrap();
            assert!(["error", "warning"].contains(&kind), "{line}");
            let (property, message) = rest.split_once("::").unwrap();
            let title = property.strip_prefix("title=").unwrap();
            // The only `:` and `,` are the command's own (a message may hold
            // any, it runs to the end of the line); `%` only starts an escape.
            assert!(!title.contains([':', ',']), "{title}");
            for text in [title, message] {
                let escapes = text
                    .match_indices('%')
                    .all(|(i, _)| ["%25", "%0A", "%0D", "%3A", "%2C"].iter().any(|e| text[i..].starts_with(e)));
                assert!(escapes, "{text}");
            }
        }
        assert!(lines.iter().any(|l| l.contains("injected %25 100") && l.contains("%0A")), "{lines:?}");
    }
}
