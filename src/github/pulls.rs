//! Which pull request a workflow run measured, asked of GitHub.
//!
//! A `workflow_run` workflow (the one that posts a fork's comparison with a
//! write token) must not believe a number the fork's run wrote into its
//! artifact: a forged number would put a verdict on another pull request.
//! The triggering run itself, as GitHub describes it in the event, names
//! the head repository, branch and commit it ran; the pull request is the
//! open one whose head is exactly that.

use serde::Deserialize;

use super::{Api, GithubError, Method, PostOptions, Target, Token};

/// The head a workflow run ran, as its event describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunHead {
    /// `owner/name` of the repository the commit came from.
    pub repository: String,
    /// The branch in that repository.
    pub branch: String,
    /// The commit.
    pub sha: String,
}

#[derive(Deserialize)]
struct Pull {
    number: u64,
    head: PullHead,
}

#[derive(Deserialize)]
struct PullHead {
    sha: String,
    #[serde(default)]
    repo: Option<PullRepo>,
}

#[derive(Deserialize)]
struct PullRepo {
    full_name: String,
}

/// The open pull request of `repo` (the target's owner and name) whose head
/// is `head`; an error when there is none or more than one (for example when
/// the branch got a new commit after the run: its comparison would describe
/// an older commit).
pub async fn pull_request_of_run(
    repo: &Target,
    token: &Token,
    head: &RunHead,
    opts: &PostOptions,
) -> Result<u64, GithubError> {
    let api = Api::new(repo, token, opts)?;
    let owner = head.repository.split('/').next().unwrap_or_default();
    let ok = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b));
    if !ok(owner) || !ok(&head.branch) || !head.sha.bytes().all(|b| b.is_ascii_hexdigit()) || head.sha.is_empty() {
        return Err(GithubError::Other(
            "the triggering run's head repository, branch or commit is missing or malformed in the event".into(),
        ));
    }
    let path = format!(
        "/repos/{}/{}/pulls?state=open&head={owner}:{}&per_page=100",
        repo.owner,
        repo.repo,
        head.branch.replace('/', "%2F")
    );
    let reply = api.send(Method::Get, &path, None).await?;
    let pulls: Vec<Pull> = serde_json::from_str(&reply)
        .map_err(|e| GithubError::Other(format!("could not read GitHub's list of pull requests: {e}")))?;
    let matching: Vec<u64> = pulls
        .iter()
        .filter(|p| {
            p.head.sha.eq_ignore_ascii_case(&head.sha)
                && p.head.repo.as_ref().is_some_and(|r| r.full_name.eq_ignore_ascii_case(&head.repository))
        })
        .map(|p| p.number)
        .collect();
    match matching[..] {
        [number] => Ok(number),
        [] => Err(GithubError::Other(format!(
            "no open pull request of {}/{} has the head {}@{} that the run measured (closed, or pushed to since)",
            repo.owner,
            repo.repo,
            head.repository,
            short(&head.sha)
        ))),
        _ => Err(GithubError::Other(format!(
            "{} open pull requests have the head {}@{}: cannot tell which one the run measured",
            matching.len(),
            head.repository,
            short(&head.sha)
        ))),
    }
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}
