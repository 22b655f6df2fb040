//! The sticky comment: one per profile, found again by its marker and author.

use serde::Deserialize;

use super::truncate::truncate_markdown;
use super::{Api, Attempt, GithubError, Method, PostOptions, Target, Token};

/// GitHub's limit on a comment body, in characters.
pub const MAX_COMMENT_CHARS: usize = 65_536;

/// Who posts when `GET /user` is closed to the token (the Actions `GITHUB_TOKEN`).
const FALLBACK_LOGIN: &str = "github-actions[bot]";

/// GitHub's largest page of issue comments.
const PER_PAGE: usize = 100;

/// A bound on the pages read (100,000 comments), so a misbehaving server cannot loop us.
const MAX_PAGES: u32 = 1_000;

/// What posting did.
#[derive(Debug, Clone, PartialEq)]
pub enum CommentOutcome {
    /// No comment of ours existed; one was created.
    Created {
        /// Link to the comment.
        url: String,
    },
    /// Our comment existed with another body; it was edited in place.
    Updated {
        /// Link to the comment.
        url: String,
    },
    /// Our comment already had this body; nothing was written.
    Unchanged {
        /// Link to the comment.
        url: String,
    },
}

/// The hidden marker of a profile's comment: `<!-- infergate:profile=NAME -->`.
///
/// The profile may come from a comparison file made by someone else's run (a
/// fork's artifact), so every character that is not a letter, a digit or one
/// of `-_.+/` is percent-encoded: no name can close the HTML comment early
/// and put live HTML into the comment, and distinct names keep distinct markers.
pub fn marker(profile: &str) -> String {
    let mut name = String::with_capacity(profile.len());
    for c in profile.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+' | '/') {
            name.push(c);
        } else {
            let mut buf = [0; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                name.push_str(&format!("%{b:02X}"));
            }
        }
    }
    format!("<!-- infergate:profile={name} -->")
}

/// The fields of an issue comment this module reads. Lenient on purpose: a
/// comment by a deleted account (`user: null`) or without a body must not
/// stop the search.
#[derive(Debug, Deserialize)]
struct IssueComment {
    /// Comment id, used in the update path.
    id: u64,
    /// Link shown to the user.
    html_url: String,
    /// Markdown body.
    #[serde(default)]
    body: Option<String>,
    /// Author.
    #[serde(default)]
    user: Option<User>,
}

/// An account, as much as is needed.
#[derive(Debug, Deserialize)]
struct User {
    /// Login, e.g. `octocat` or `github-actions[bot]`.
    login: String,
}

/// Creates or updates the sticky comment for `profile` on the pull request.
///
/// Our comment is the first one that carries [`marker`] and is authored by
/// the token's identity (`GET /user`; when that is 403 or 404, as for the
/// Actions `GITHUB_TOKEN`, `github-actions[bot]`), searched across every
/// page of the PR's comments. It is edited (`PATCH`) when the body changed
/// and left alone when it is the same; a comment is created (`POST`) only
/// when none exists. Marked comments by anyone else are never touched.
///
/// The body is the marker, a newline and `markdown`, cut below
/// [`MAX_COMMENT_CHARS`] with a note that links `run_url` when given.
/// 5xx, rate limits and network errors are retried up to `max_retries`
/// times; a create that failed with a 5xx or a network error is retried
/// only after searching again, since GitHub may have stored it anyway.
pub async fn post_sticky_comment(
    target: &Target,
    token: &Token,
    profile: &str,
    markdown: &str,
    opts: &PostOptions,
) -> Result<CommentOutcome, GithubError> {
    let api = Api::new(target, token, opts)?;
    let mark = marker(profile);
    let body = comment_body(&mark, markdown, opts.run_url.as_deref(), opts.lang);
    let login = identity(&api).await?;
    let comments = format!("/repos/{}/{}/issues/{}/comments", target.owner, target.repo, target.pr);
    let payload = serde_json::json!({ "body": body });

    let mut retry = 0;
    let mut tried_create = false;
    let mut found = find_own(&api, &comments, &mark, &login).await?;
    loop {
        if let Some(existing) = found {
            if same_body(existing.body.as_deref().unwrap_or(""), &body) {
                // Found after a failed create: that create went through.
                let url = existing.html_url;
                return Ok(if tried_create {
                    CommentOutcome::Created { url }
                } else {
                    CommentOutcome::Unchanged { url }
                });
            }
            let path = format!("/repos/{}/{}/issues/comments/{}", target.owner, target.repo, existing.id);
            let reply = api.send(Method::Patch, &path, Some(&payload)).await?;
            // The edit is done; a reply we cannot read must not fail the job.
            let url = html_url(&reply).unwrap_or(existing.html_url);
            tracing::info!("updated the infergate comment for profile `{profile}`: {url}");
            return Ok(CommentOutcome::Updated { url });
        }
        tried_create = true;
        match api.attempt(Method::Post, &comments, Some(&payload), retry).await {
            Attempt::Done(reply) => {
                let url = html_url(&reply).ok_or_else(|| {
                    GithubError::Other(format!(
                        "GitHub created the comment on PR #{} but its reply had no `html_url`",
                        target.pr
                    ))
                })?;
                tracing::info!("created the infergate comment for profile `{profile}`: {url}");
                return Ok(CommentOutcome::Created { url });
            }
            Attempt::Fatal(error) => return Err(error),
            Attempt::Retry { wait, error } => {
                if retry >= opts.max_retries {
                    return Err(error);
                }
                retry += 1;
                tracing::warn!("{error}; retry {retry} of {} in {} ms", opts.max_retries, wait.as_millis());
                tokio::time::sleep(wait).await;
                // A rate-limited create was refused; after a 5xx or a lost
                // connection GitHub may have stored it, so look before posting again.
                found = match error {
                    GithubError::RateLimited { .. } => None,
                    _ => find_own(&api, &comments, &mark, &login).await?,
                };
            }
        }
    }
}

/// The login comments of ours are authored by: `GET /user`, which a
/// personal token may read; else GraphQL's `viewer`, which also answers for
/// GitHub App installation tokens (`my-app[bot]`) and the Actions token; else
/// `github-actions[bot]`.
async fn identity(api: &Api<'_>) -> Result<String, GithubError> {
    match api.send(Method::Get, "/user", None).await {
        Ok(reply) => {
            return serde_json::from_str::<User>(&reply)
                .map(|u| u.login)
                .map_err(|e| GithubError::Other(format!("GitHub's reply to GET /user has no readable `login`: {e}")));
        }
        Err(GithubError::Forbidden { .. } | GithubError::NotFound { .. }) => {}
        Err(e) => return Err(e),
    }
    let query = serde_json::json!({ "query": "query { viewer { login } }" });
    match api.send(Method::Post, &api.graphql_url(), Some(&query)).await {
        Ok(reply) => {
            let login = serde_json::from_str::<serde_json::Value>(&reply)
                .ok()
                .and_then(|v| v.pointer("/data/viewer/login").and_then(|l| l.as_str()).map(str::to_string))
                .filter(|l| !l.is_empty());
            if let Some(login) = login {
                return Ok(login);
            }
            tracing::debug!("GraphQL viewer gave no login; assuming the token posts as {FALLBACK_LOGIN}");
        }
        Err(GithubError::Forbidden { .. } | GithubError::NotFound { .. }) => {
            tracing::debug!("GET /user and GraphQL are closed to this token; assuming it posts as {FALLBACK_LOGIN}");
        }
        Err(e) => return Err(e),
    }
    Ok(FALLBACK_LOGIN.to_string())
}

/// The first comment on the PR with `mark` and by `login`, reading pages
/// until a short one.
async fn find_own(api: &Api<'_>, comments: &str, mark: &str, login: &str) -> Result<Option<IssueComment>, GithubError> {
    for page in 1..=MAX_PAGES {
        let reply = api.send(Method::Get, &format!("{comments}?per_page={PER_PAGE}&page={page}"), None).await?;
        let de = &mut serde_json::Deserializer::from_str(&reply);
        let list: Vec<IssueComment> = serde_path_to_error::deserialize(de).map_err(|e| {
            GithubError::Other(format!("could not read page {page} of the PR's comments from GitHub: {e}"))
        })?;
        let count = list.len();
        let mine = list.into_iter().find(|c| {
            c.user.as_ref().is_some_and(|u| u.login.eq_ignore_ascii_case(login))
                && c.body.as_deref().is_some_and(|b| b.contains(mark))
        });
        if mine.is_some() || count < PER_PAGE {
            return Ok(mine);
        }
    }
    Ok(None)
}

/// `html_url` of a comment in a reply.
fn html_url(reply: &str) -> Option<String> {
    serde_json::from_str::<serde_json::Value>(reply).ok()?.get("html_url")?.as_str().map(str::to_string)
}

/// The body to post: the marker, a newline, the Markdown cut to fit, with a
/// note in `lang` where it was cut. The marker, which finds the comment
/// again, is the same in every language.
pub(crate) fn comment_body(mark: &str, markdown: &str, run_url: Option<&str>, lang: crate::report::Lang) -> String {
    let room = MAX_COMMENT_CHARS.saturating_sub(mark.chars().count() + 1);
    let words = crate::report::words::Words::of(lang);
    let note = match run_url {
        Some(url) => words.must("md.cut.comment", None, &[("url", url)]),
        None => words.must("md.cut.comment_no_url", None, &[]),
    };
    format!("{mark}\n{}", truncate_markdown(markdown, room, &note))
}

/// Equal bodies, up to the line endings and trailing whitespace GitHub may normalise.
fn same_body(a: &str, b: &str) -> bool {
    let norm = |s: &str| s.replace("\r\n", "\n").trim_end().to_string();
    norm(a) == norm(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_names_the_profile() {
        assert_eq!(marker("h100-vllm"), "<!-- infergate:profile=h100-vllm -->");
        // A profile that is a prefix of another has a different marker, not a substring.
        assert!(!marker("h100-vllm-fp8").contains(&marker("h100-vllm")));
        assert_eq!(marker("a+b/c_d.e"), "<!-- infergate:profile=a+b/c_d.e -->");
    }

    #[test]
    fn a_hostile_profile_cannot_leave_the_marker() {
        let m = marker("x --><img src=x onerror=alert(1)><!-- ");
        assert_eq!(m, "<!-- infergate:profile=x%20--%3E%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E%3C%21--%20 -->");
        assert_eq!(m.matches("-->").count(), 1);
        assert_eq!((m.matches('<').count(), m.matches('>').count()), (1, 1));
        assert_ne!(marker("a b"), marker("a_b"));
        assert_ne!(marker("a%20b"), marker("a b"));
        assert_eq!(marker("é"), "<!-- infergate:profile=%C3%A9 -->");
    }

    use crate::report::Lang;

    #[test]
    fn short_body_is_marker_then_markdown() {
        let body = comment_body(&marker("p"), "## ✅ Passed\n", None, Lang::En);
        assert_eq!(body, "<!-- infergate:profile=p -->\n## ✅ Passed\n");
    }

    #[test]
    fn long_body_is_cut_below_the_limit_with_the_note() {
        let md = format!("## ❌ Regression\n{}", "| row | 1 |\n".repeat(20_000));
        let body = comment_body(&marker("p"), &md, Some("https://github.com/o/r/actions/runs/1"), Lang::En);
        assert!(body.chars().count() <= MAX_COMMENT_CHARS);
        assert!(body.starts_with("<!-- infergate:profile=p -->\n## ❌ Regression\n"));
        assert!(body.contains("[workflow run](https://github.com/o/r/actions/runs/1)"));
        let without = comment_body(&marker("p"), &md, None, Lang::En);
        assert!(without.contains("job summary"));
        // In Korean: the same marker first, the note in Korean, the same limit.
        let ko = comment_body(&marker("p"), &md, Some("https://github.com/o/r/actions/runs/1"), Lang::Ko);
        assert!(ko.chars().count() <= MAX_COMMENT_CHARS);
        assert!(ko.starts_with("<!-- infergate:profile=p -->\n## ❌ Regression\n"));
        assert!(ko.contains("[워크플로 실행](https://github.com/o/r/actions/runs/1)"), "{}", &ko[ko.len() - 400..]);
        assert!(!ko.contains("workflow run]"));
    }

    #[test]
    fn bodies_compare_modulo_line_endings() {
        assert!(same_body("a\r\nb\n", "a\nb"));
        assert!(!same_body("a\nb", "a\nc"));
    }

    #[test]
    fn lenient_comment_decoding() {
        let list: Vec<IssueComment> = serde_json::from_str(
            r#"[{"id":1,"html_url":"u","body":null,"user":null},{"id":2,"html_url":"v","user":{"login":"x"},"extra":1}]"#,
        )
        .unwrap();
        assert_eq!(list.len(), 2);
        assert!(list[0].user.is_none());
        assert_eq!(list[1].user.as_ref().unwrap().login, "x");
    }
}
