//! Publishing a verdict: the job summary, annotations, step outputs, the
//! sticky pull-request comment, the matrix merge, and the exit code.
//!
//! A comment that fails never hides the verdict: the exit code is the gate's,
//! and the failure is a warning unless the comment was required.

use std::path::Path;

use anyhow::anyhow;

use crate::ci::{self, ActionsContext};
use crate::cli::{CommentArgs, FailOn, GithubArgs, MergeArgs, PublishArgs};
use crate::exit::{self, Failure};
use crate::gate::{Comparison, Verdict};
use crate::github::{self, CommentOutcome, PostOptions, Target, Token};
use crate::report::Lang;
use crate::report::render::{self, Format, RenderOptions};
use crate::report::words::Words;

/// After a comparison: summary, annotations, comment, outputs; returns the
/// exit code. `markdown` is the report in `lang`, which the notes added
/// where GitHub's limits cut it follow.
pub async fn publish(
    cmp: &Comparison,
    markdown: &str,
    (results, comparison): (&Path, &Path),
    args: &PublishArgs,
    ctx: &ActionsContext,
    lang: Lang,
) -> Result<i32, Failure> {
    if args.no_comment {
        super::print_stdout(&comment_body(&cmp.profile, markdown))?;
    }
    if let Some(summary) = &ctx.step_summary {
        if let Err(e) = ci::append_summary(summary, markdown, lang) {
            eprintln!("warning: {}", crate::text::for_log(&format!("{e:#}")));
        }
    }
    if ctx.in_actions {
        let lines = ci::annotations(cmp);
        if !lines.is_empty() {
            super::print_stdout(&(lines.join("\n") + "\n"))?;
        }
    }
    let mut comment_url = String::new();
    if args.comment {
        match post(&cmp.profile, markdown, &args.github, ctx, lang).await {
            Ok(Some(outcome)) => {
                let (what, url) = match &outcome {
                    CommentOutcome::Created { url } => ("created", url),
                    CommentOutcome::Updated { url } => ("updated", url),
                    CommentOutcome::Unchanged { url } => ("unchanged", url),
                };
                eprintln!("pull-request comment {what}: {url}");
                comment_url = url.clone();
            }
            Ok(None) => {}
            Err(e) if args.comment_required => {
                write_outputs(ctx, cmp, results, comparison, "");
                return Err(Failure::run(anyhow!("the pull-request comment failed (--comment-required): {e}")));
            }
            Err(e) => {
                eprintln!("warning: the pull-request comment was not posted: {}", crate::text::for_log(&e.to_string()));
                if ctx.in_actions {
                    super::print_stdout(&format!("::warning title=infergate comment::{}\n", one_line(&e.to_string())))?;
                }
            }
        }
    }
    write_outputs(ctx, cmp, results, comparison, &comment_url);
    Ok(exit::of_verdict(cmp.verdict, args.fail_on))
}

fn one_line(s: &str) -> String {
    s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

fn write_outputs(ctx: &ActionsContext, cmp: &Comparison, results: &Path, comparison: &Path, comment_url: &str) {
    let Some(path) = &ctx.output else { return };
    let outputs = [
        ("verdict", cmp.verdict.as_str().to_string()),
        ("regressions", ci::regressions(cmp).to_string()),
        ("comment-url", comment_url.to_string()),
        ("results", results.display().to_string()),
        ("comparison", comparison.display().to_string()),
    ];
    if let Err(e) = ci::write_outputs(path, &outputs) {
        eprintln!("warning: {}", crate::text::for_log(&format!("{e:#}")));
    }
}

/// The body of the sticky comment: the hidden marker, then the report.
pub fn comment_body(profile: &str, markdown: &str) -> String {
    format!("{}\n{markdown}", github::marker(profile))
}

/// Posts the sticky comment; `Ok(None)` when there is deliberately nothing
/// to do (a fork's read-only token).
async fn post(
    profile: &str,
    markdown: &str,
    args: &GithubArgs,
    ctx: &ActionsContext,
    lang: Lang,
) -> Result<Option<CommentOutcome>, anyhow::Error> {
    if ctx.from_fork && args.pr.is_none() {
        let note = "this pull request comes from a fork, whose token cannot comment: the comparison is kept as an \
                    artifact and the perf-gate-fork-comment workflow (workflow_run) posts it";
        eprintln!("notice: {}", crate::text::for_log(note));
        if ctx.in_actions {
            super::print_stdout(&format!("::notice title=infergate comment skipped::{}\n", one_line(note)))?;
        }
        return Ok(None);
    }
    let (owner, name, token) = repository_and_token(args, ctx)?;
    let pr =
        args.pr.or(ctx.pr).ok_or_else(|| anyhow!("no pull request: pass --pr N (this is not a pull_request event)"))?;
    let target = Target { api_url: ctx.api_url.clone(), owner, repo: name, pr };
    let opts = PostOptions { run_url: ctx.run_url.clone(), lang, ..PostOptions::default() };
    let outcome = github::post_sticky_comment(&target, &Token::new(token), profile, markdown, &opts).await?;
    Ok(Some(outcome))
}

/// The largest comparison file read (64 MiB): one of 1,000 cases is about 5 MB.
const MAX_COMPARISON_BYTES: u64 = 64 << 20;

fn load_comparison(path: &Path) -> Result<Comparison, Failure> {
    let text = crate::input::read_capped(path, MAX_COMPARISON_BYTES, "comparison").map_err(Failure::invalid)?;
    let de = &mut serde_json::Deserializer::from_str(&text);
    let cmp: Comparison = serde_path_to_error::deserialize(de).map_err(|e| {
        Failure::invalid(anyhow!("{}: invalid comparison at `{}`: {}", path.display(), e.path(), e.inner()))
    })?;
    if cmp.schema != crate::gate::SCHEMA {
        return Err(Failure::invalid(anyhow!(
            "{}: schema is `{}`, this infergate reads `{}`",
            path.display(),
            cmp.schema,
            crate::gate::SCHEMA
        )));
    }
    Ok(cmp)
}

/// Several comparisons as one Markdown document in `lang` and one verdict (the worst).
pub fn merged(comparisons: &[Comparison], lang: Lang) -> Result<(String, Verdict, String), Failure> {
    let render = |c: &Comparison| {
        render::render(c, Format::Markdown, &RenderOptions { color: false, template: None, lang })
            .map_err(Failure::invalid)
    };
    if let [only] = comparisons {
        return Ok((render(only)?, only.verdict, only.profile.clone()));
    }
    let words = Words::of(lang);
    let word = |key: &str| words.must(key, None, &[]);
    let verdict_word = |v: Verdict| word(&format!("verdict.{}", v.as_str()));
    let verdict = comparisons.iter().map(|c| c.verdict).min().unwrap_or(Verdict::Pass);
    let mut profiles: Vec<&str> = comparisons.iter().map(|c| c.profile.as_str()).collect();
    profiles.sort_unstable();
    let title = verdict_word(verdict).to_uppercase();
    let mut md = words.must("md.merged.title", Some(comparisons.len() as i64), &[("verdict", &title)]);
    md.push_str(&format!(
        "\n\n| {} | {} | {} |\n|:--|:--|:--|\n",
        word("md.merged.profile"),
        word("md.merged.verdict"),
        word("md.merged.headline")
    ));
    for c in comparisons {
        md.push_str(&format!(
            "| {} | {} | {} |\n",
            render::md_escape(&c.profile),
            verdict_word(c.verdict),
            render::md_escape(&crate::report::findings::headline(&c.headline, words.lang()))
        ));
    }
    for c in comparisons {
        let section = words.must("md.merged.section", None, &[("profile", &render::md_escape(&c.profile))]);
        md.push_str(&format!("\n---\n\n{section}\n\n"));
        md.push_str(&render(c)?);
        md.push('\n');
    }
    Ok((md, verdict, profiles.join("+")))
}

/// `infergate merge`: one report and verdict for a matrix of jobs.
pub fn merge(args: &MergeArgs) -> Result<i32, Failure> {
    let lang = super::gate::load_config(args.lang.config.as_deref())?.config.report_lang(args.lang.lang);
    let comparisons = args.comparison.iter().map(|p| load_comparison(p)).collect::<Result<Vec<_>, _>>()?;
    let (md, verdict, _) = merged(&comparisons, lang)?;
    if let Some(path) = &args.markdown {
        crate::fsutil::check_target(path).map_err(Failure::invalid)?;
    }
    super::print_stdout(&md)?;
    if let Some(path) = &args.markdown {
        crate::fsutil::write_output(path, md.as_bytes()).map_err(crate::fsutil::failure)?;
    }
    Ok(exit::of_verdict(verdict, FailOn::Regression))
}

/// The repository's owner and name (`--repo`, else `GITHUB_REPOSITORY`) and the token.
fn repository_and_token(args: &GithubArgs, ctx: &ActionsContext) -> anyhow::Result<(String, String, String)> {
    let repo = args
        .repo
        .clone()
        .or_else(|| ctx.repository.clone())
        .ok_or_else(|| anyhow!("no repository: pass --repo OWNER/NAME (GITHUB_REPOSITORY is not set)"))?;
    let (owner, name) = github::parse_repo(&repo).map_err(|e| anyhow!("--repo: {e}"))?;
    let token = std::env::var(&args.token_env).ok().filter(|t| !t.trim().is_empty()).ok_or_else(|| {
        anyhow!("no token: the variable {} is not set (set it, or name another with --token-env)", args.token_env)
    })?;
    Ok((owner, name, token))
}

/// The pull request a `workflow_run` event's triggering run measured.
async fn run_pull_request(args: &GithubArgs, ctx: &ActionsContext, run: &ci::WorkflowRun) -> anyhow::Result<u64> {
    if run.event != "pull_request" {
        anyhow::bail!("the triggering run was started by `{}`, not by a pull request", run.event);
    }
    let (owner, name, token) = repository_and_token(args, ctx)?;
    let head = github::RunHead {
        repository: run.head_repository.as_ref().map(|r| r.full_name.clone()).unwrap_or_default(),
        branch: run.head_branch.clone().unwrap_or_default(),
        sha: run.head_sha.clone(),
    };
    let target = Target { api_url: ctx.api_url.clone(), owner, repo: name, pr: 0 };
    Ok(github::pull_request_of_run(&target, &Token::new(token), &head, &PostOptions::default()).await?)
}

/// The line that marks a comment posted for a fork's run, in `lang`.
fn fork_run_note(run: &ci::WorkflowRun, lang: Lang) -> String {
    let repo = run.head_repository.as_ref().map_or("a fork", |r| r.full_name.as_str());
    let sha = run.head_sha.get(..12).unwrap_or(&run.head_sha);
    Words::of(lang).must(
        "md.fork_run",
        None,
        &[("repository", &render::md_escape(repo)), ("sha", &render::md_escape(sha)), ("run", &run.id.to_string())],
    )
}

/// `infergate comment`: post the sticky comment from comparison file(s).
pub async fn comment(args: &CommentArgs) -> Result<i32, Failure> {
    let lang = super::gate::load_config(args.lang.config.as_deref())?.config.report_lang(args.lang.lang);
    let comparisons = args.comparison.iter().map(|p| load_comparison(p)).collect::<Result<Vec<_>, _>>()?;
    let (md, _, profiles) = merged(&comparisons, lang)?;
    let profile = args.profile.clone().unwrap_or(profiles);
    let mut ctx = ActionsContext::current();
    let mut md = md;
    // Under workflow_run (a fork's comparison posted from the base
    // repository), the pull request is the triggering run's, asked of
    // GitHub; a number from anywhere else must agree, or nothing is posted.
    if let Some(run) = ctx.workflow_run.clone().filter(|_| ctx.event_name.as_deref() == Some("workflow_run")) {
        let pr = run_pull_request(&args.github, &ctx, &run).await.map_err(|e| {
            Failure::run(anyhow!("refusing to post the comment: {}", crate::text::for_log(&format!("{e:#}"))))
        })?;
        if let Some(given) = args.github.pr.filter(|n| *n != pr) {
            return Err(Failure::run(anyhow!(
                "refusing to post the comment: --pr {given} is not the pull request the triggering run measured \
                 (#{pr}, resolved from its head repository and commit)"
            )));
        }
        ctx.pr = Some(pr);
        md = format!("{}\n\n{md}", fork_run_note(&run, lang));
    }
    match post(&profile, &md, &args.github, &ctx, lang).await {
        Ok(Some(outcome)) => {
            let url = match outcome {
                CommentOutcome::Created { url }
                | CommentOutcome::Updated { url }
                | CommentOutcome::Unchanged { url } => url,
            };
            eprintln!("pull-request comment: {url}");
            if let Some(out) = &ctx.output {
                let _ = ci::write_outputs(out, &[("comment-url", url)]);
            }
            Ok(exit::PASS)
        }
        Ok(None) => Ok(exit::PASS),
        Err(e) if args.comment_optional => {
            eprintln!("warning: the pull-request comment was not posted: {}", crate::text::for_log(&e.to_string()));
            Ok(exit::PASS)
        }
        Err(e) => Err(Failure::run(anyhow!("the pull-request comment was not posted: {e}"))),
    }
}
