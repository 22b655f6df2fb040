//! `infergate check` inside GitHub Actions: job summary, annotations, step
//! outputs, the sticky comment against a local mock of GitHub's REST API,
//! forks, failures that must not hide the verdict, and the token.
#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap here is a failed test, not a crash.

mod support;

use std::path::Path;
use std::time::Duration;

use assert_cmd::Command;
use infergate::exit;
use infergate::sim::SimConfig;
use serde_json::{Value, json};
use support::Sim;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "ghs_SecretActionsToken0123456789abcdefXYZ";
const COMMENTS: &str = "/repos/org/repo/issues/5/comments";

fn user(login: &str) -> Value {
    let api = format!("https://api.github.com/users/{login}");
    json!({
        "login": login, "id": 41898282, "node_id": "MDM6Qm90NDE4OTgyODI=",
        "avatar_url": "https://avatars.githubusercontent.com/in/15368?v=4", "gravatar_id": "",
        "url": api, "html_url": format!("https://github.com/{login}"),
        "followers_url": format!("{api}/followers"), "following_url": format!("{api}/following{{/other_user}}"),
        "gists_url": format!("{api}/gists{{/gist_id}}"), "starred_url": format!("{api}/starred{{/owner}}{{/repo}}"),
        "subscriptions_url": format!("{api}/subscriptions"), "organizations_url": format!("{api}/orgs"),
        "repos_url": format!("{api}/repos"), "events_url": format!("{api}/events{{/privacy}}"),
        "received_events_url": format!("{api}/received_events"), "type": "Bot", "site_admin": false
    })
}

fn comment(id: u64, body: &str) -> Value {
    json!({
        "url": format!("https://api.github.com/repos/org/repo/issues/comments/{id}"),
        "html_url": format!("https://github.com/org/repo/pull/5#issuecomment-{id}"),
        "issue_url": "https://api.github.com/repos/org/repo/issues/5",
        "id": id, "node_id": "IC_x", "user": user("github-actions[bot]"),
        "created_at": "2026-11-20T10:00:00Z", "updated_at": "2026-11-20T10:00:00Z",
        "author_association": "NONE", "body": body
    })
}

/// A mock GitHub where the Actions token cannot read /user and the PR has no comment yet.
async fn github(create_status: u16) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/user"))
        .respond_with(
            ResponseTemplate::new(403).set_body_json(json!({"message": "Resource not accessible by integration"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(COMMENTS))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .mount(&server)
        .await;
    let reply = if create_status == 201 {
        ResponseTemplate::new(201).set_body_json(comment(77, "created"))
    } else {
        ResponseTemplate::new(create_status)
            .set_body_json(json!({"message": "Resource not accessible by integration", "documentation_url": "https://docs.github.com"}))
    };
    Mock::given(method("POST")).and(path(COMMENTS)).respond_with(reply).mount(&server).await;
    server
}

/// Records a baseline `p` from the fast simulator into `dir`.
fn record(dir: &Path, sim: &Sim) {
    let run =
        |args: &[&str]| Command::cargo_bin("infergate").unwrap().current_dir(dir).args(args).assert().code(exit::PASS);
    run(&[
        "-q",
        "run",
        "--base-url",
        &sim.url(),
        "--model",
        "sim",
        "--suite",
        "quick",
        "--cases",
        "debugging/*",
        "--repetitions",
        "8",
        "--gpu",
        "off",
        "--out",
        "base.json",
    ]);
    run(&["baseline", "update", "--results", "base.json", "--baseline", "p"]);
}

/// The Actions environment of the pull request (from a fork or not).
fn actions_env(cmd: &mut Command, dir: &Path, api: &str, fork: bool) {
    let head = if fork { "someone/fork" } else { "org/repo" };
    support::actions_pr_env(cmd, dir, api, head, TOKEN);
    cmd.env("NO_COLOR", "1");
}

fn check(dir: &Path, sim: &Sim, extra: &[&str]) -> Command {
    let mut cmd = Command::cargo_bin("infergate").unwrap();
    cmd.current_dir(dir)
        .timeout(Duration::from_secs(120))
        .args(["check", "--base-url", &sim.url(), "--model", "sim", "--suite", "quick", "--cases", "debugging/*"])
        .args(["--repetitions", "8", "--gpu", "off", "--baseline", "p", "--out", "cur.json"])
        .args(extra);
    cmd
}

fn no_token(out: &std::process::Output) {
    for stream in [&out.stdout, &out.stderr] {
        assert!(!String::from_utf8_lossy(stream).contains(TOKEN), "the token leaked");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_in_actions_writes_summary_annotations_outputs_and_the_comment() {
    let gh = github(201).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let api = gh.uri();
    let out = tokio::task::spawn_blocking(move || {
        // The simulators have runtimes of their own: start and stop them off the async threads.
        let fast = Sim::start(SimConfig { itl_ms: 2.0, ..SimConfig::default() });
        let slow = Sim::start(SimConfig { itl_ms: 2.0, slowdown: 1.4, ..SimConfig::default() });
        record(&d, &fast);
        let mut cmd = check(&d, &slow, &["--comment"]);
        actions_env(&mut cmd, &d, &api, false);
        cmd.output().unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(exit::REGRESSION), "{stdout}\n{stderr}");
    no_token(&out);
    assert!(stdout.contains("::error title=infergate p%3A debugging/256 (warm)::tokens_per_second"), "{stdout}");
    let d = dir.path();
    let summary = std::fs::read_to_string(d.join("summary.md")).unwrap();
    assert!(summary.contains("### infergate: ❌ REGRESSED"), "{summary}");
    let outputs = std::fs::read_to_string(d.join("outputs.txt")).unwrap();
    for line in [
        "verdict=regressed",
        "comment-url=https://github.com/org/repo/pull/5#issuecomment-77",
        "results=cur.json",
        "comparison=comparison.json",
    ] {
        assert!(outputs.lines().any(|l| l == line), "{line} not in\n{outputs}");
    }
    assert!(outputs.lines().any(|l| l.starts_with("regressions=") && l != "regressions=0"), "{outputs}");
    // The comment carries the marker and the report, and the token as a header only.
    let posted: Vec<_> = gh
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.method.as_str() == "POST" && r.url.path() == COMMENTS)
        .collect();
    assert_eq!(posted.len(), 1);
    let body: Value = serde_json::from_slice(&posted[0].body).unwrap();
    let text = body["body"].as_str().unwrap();
    assert!(text.starts_with("<!-- infergate:profile=p -->\n### infergate: ❌ REGRESSED"), "{text}");
    assert!(!text.contains(TOKEN));
    let auth = posted[0].headers.get("authorization").unwrap().to_str().unwrap().to_string();
    assert!(auth.ends_with(TOKEN));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_comment_never_hides_the_verdict() {
    let gh = github(403).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let api = gh.uri();
    let (optional, required) = tokio::task::spawn_blocking(move || {
        let sim = Sim::start(SimConfig { itl_ms: 2.0, ..SimConfig::default() });
        record(&d, &sim);
        let mut cmd = check(&d, &sim, &["--comment"]);
        actions_env(&mut cmd, &d, &api, false);
        let optional = cmd.output().unwrap();
        let mut cmd = check(&d, &sim, &["--comment", "--comment-required"]);
        actions_env(&mut cmd, &d, &api, false);
        (optional, cmd.output().unwrap())
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&optional.stderr);
    // The gate passed; the comment failure is a warning with the permissions to add.
    assert_eq!(optional.status.code(), Some(exit::PASS), "{stderr}");
    assert!(
        stderr.contains("warning: the pull-request comment was not posted") && stderr.contains("pull-requests: write"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&optional.stdout).contains("::warning title=infergate comment::"));
    no_token(&optional);
    assert_eq!(required.status.code(), Some(exit::RUN_FAILED));
    no_token(&required);
    // The summary was written both times, comment or not.
    let summary = std::fs::read_to_string(dir.path().join("summary.md")).unwrap();
    assert_eq!(summary.matches("### infergate: ").count(), 2);
}

/// `[report] lang = "ko"` in ./infergate.toml: the terminal report, the job
/// summary and the comment are in Korean; the comment is found by the same
/// marker, so the English comment an earlier run left is edited in place,
/// never duplicated; the step outputs GitHub reads are the same words. On
/// the command line, `--lang` wins over the config.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn korean_reports_edit_the_same_sticky_comment() {
    let gh = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/user"))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({"message": "Resource not accessible"})))
        .mount(&gh)
        .await;
    let earlier = "<!-- infergate:profile=p -->\n### infergate: ✅ PASS\n\nThe English report of an earlier run.\n";
    Mock::given(method("GET"))
        .and(path(COMMENTS))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([comment(88, earlier)])))
        .mount(&gh)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/repos/org/repo/issues/comments/88"))
        .respond_with(ResponseTemplate::new(200).set_body_json(comment(88, "edited")))
        .expect(1)
        .mount(&gh)
        .await;
    Mock::given(method("POST")).and(path(COMMENTS)).respond_with(ResponseTemplate::new(500)).expect(0).mount(&gh).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let api = gh.uri();
    let out = tokio::task::spawn_blocking(move || {
        let fast = Sim::start(SimConfig { itl_ms: 2.0, ..SimConfig::default() });
        let slow = Sim::start(SimConfig { itl_ms: 2.0, slowdown: 1.4, ..SimConfig::default() });
        record(&d, &fast);
        std::fs::write(d.join("infergate.toml"), "[report]\nlang = \"ko\"\n").unwrap();
        let mut cmd = check(&d, &slow, &["--comment"]);
        actions_env(&mut cmd, &d, &api, false);
        cmd.output().unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(exit::REGRESSION), "{stdout}\n{stderr}");
    assert!(stdout.starts_with("회귀: "), "{stdout}");
    assert!(stdout.contains("케이스") && stdout.contains("연속 응답"), "{stdout}");
    let d = dir.path();
    let summary = std::fs::read_to_string(d.join("summary.md")).unwrap();
    assert!(summary.starts_with("### infergate: ❌ 회귀\n"), "{summary}");
    let outputs = std::fs::read_to_string(d.join("outputs.txt")).unwrap();
    assert!(outputs.lines().any(|l| l == "verdict=regressed"), "{outputs}");
    assert!(
        outputs.lines().any(|l| l == "comment-url=https://github.com/org/repo/pull/5#issuecomment-88"),
        "{outputs}"
    );
    gh.verify().await;
    let edited: Vec<_> =
        gh.received_requests().await.unwrap().into_iter().filter(|r| r.method.as_str() == "PATCH").collect();
    let body: Value = serde_json::from_slice(&edited[0].body).unwrap();
    let text = body["body"].as_str().unwrap();
    assert!(text.starts_with("<!-- infergate:profile=p -->\n### infergate: ❌ 회귀\n"), "{text}");
    // The same comparison from the command line: the config's Korean, or --lang's English.
    let compare = |extra: &[&str]| {
        let out = Command::cargo_bin("infergate")
            .unwrap()
            .current_dir(d)
            .args(["compare", "--results", "cur.json", "--baseline", "p", "--comparison", "again.json"])
            .args(extra)
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(exit::REGRESSION));
        String::from_utf8(out.stdout).unwrap()
    };
    assert!(compare(&[]).starts_with("회귀: "));
    assert!(compare(&["--lang", "en"]).starts_with("REGRESSED: "));
    assert!(compare(&["--format", "markdown"]).starts_with("### infergate: ❌ 회귀\n"));
    // Several profiles in one comment (a matrix), in Korean.
    let out = Command::cargo_bin("infergate")
        .unwrap()
        .current_dir(d)
        .args(["merge", "--comparison", "comparison.json", "--comparison", "again.json"])
        .output()
        .unwrap();
    let merged = String::from_utf8(out.stdout).unwrap();
    assert!(merged.starts_with("### infergate: 프로필 2개 종합 회귀\n\n| 프로필 | 판정 | 요약 |"), "{merged}");
    assert_eq!(merged.matches("#### 프로필 p").count(), 2, "{merged}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forks_skip_the_comment_with_a_notice() {
    let gh = MockServer::start().await;
    Mock::given(wiremock::matchers::any()).respond_with(ResponseTemplate::new(500)).expect(0).mount(&gh).await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let api = gh.uri();
    let out = tokio::task::spawn_blocking(move || {
        let sim = Sim::start(SimConfig { itl_ms: 2.0, ..SimConfig::default() });
        record(&d, &sim);
        let mut cmd = check(&d, &sim, &["--comment"]);
        actions_env(&mut cmd, &d, &api, true);
        cmd.output().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(exit::PASS));
    assert!(String::from_utf8_lossy(&out.stdout).contains("::notice title=infergate comment skipped::"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("comes from a fork"));
    gh.verify().await;
}

#[test]
fn no_comment_prints_exactly_the_comment_body_and_merge_takes_the_worst() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fast = Sim::start(SimConfig { itl_ms: 2.0, ..SimConfig::default() });
    record(d, &fast);
    let out = check(d, &fast, &["--no-comment", "-q"]).output().unwrap();
    assert_eq!(out.status.code(), Some(exit::PASS));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.starts_with("<!-- infergate:profile=p -->\n### infergate: "), "{stdout}");
    assert_eq!(
        stdout.trim_end(),
        format!("<!-- infergate:profile=p -->\n{}", std::fs::read_to_string(d.join("comparison.md")).unwrap())
            .trim_end()
    );
    std::fs::copy(d.join("comparison.json"), d.join("a.json")).unwrap();
    let slow = Sim::start(SimConfig { itl_ms: 2.0, slowdown: 1.4, ..SimConfig::default() });
    check(d, &slow, &["-q"]).assert().code(exit::REGRESSION);
    std::fs::copy(d.join("comparison.json"), d.join("b.json")).unwrap();
    let out = Command::cargo_bin("infergate")
        .unwrap()
        .current_dir(d)
        .args(["merge", "--comparison", "a.json", "--comparison", "b.json", "--markdown", "merged.md"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(exit::REGRESSION));
    let md = std::fs::read_to_string(d.join("merged.md")).unwrap();
    assert!(md.starts_with("### infergate: REGRESSED across 2 profiles"), "{md}");
    assert_eq!(md.matches("#### Profile p").count(), 2);
    // Warnings fail only when asked.
    let w = check(d, &fast, &["-q", "--fail-on", "never"]).output().unwrap();
    assert_eq!(w.status.code(), Some(exit::PASS));
}

/// The `workflow_run` workflow that posts a fork's comparison: the pull
/// request comes from GitHub (the open one whose head is the triggering
/// run's), a number from anywhere else must agree or nothing is posted, and
/// the comment says it comes from a fork's run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_comparison_goes_to_the_pull_request_its_run_measured_and_a_forged_number_is_refused() {
    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let owned = d.to_path_buf();
    tokio::task::spawn_blocking(move || {
        // The simulator has a runtime of its own: start and stop it off the async threads.
        let sim = Sim::start(SimConfig { itl_ms: 1.0, ..SimConfig::default() });
        record(&owned, &sim);
        let mut cmd = check(&owned, &sim, &["--no-comment"]);
        cmd.env_remove("GITHUB_ACTIONS").env_remove("GITHUB_EVENT_PATH").assert().code(exit::PASS);
    })
    .await
    .unwrap();
    assert!(d.join("comparison.json").exists());

    let server = github(201).await;
    Mock::given(method("GET"))
        .and(path("/repos/org/repo/pulls"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            {"number": 5, "head": {"sha": SHA, "ref": "feat", "repo": {"full_name": "someone/fork"}}},
            {"number": 6, "head": {"sha": "ffffffffffffffffffffffffffffffffffffffff", "ref": "feat", "repo": {"full_name": "someone/fork"}}}
        ])))
        .mount(&server)
        .await;
    let event = d.join("workflow_run.json");
    std::fs::write(
        &event,
        json!({"workflow_run": {"id": 4242, "event": "pull_request", "head_sha": SHA, "head_branch": "feat",
               "head_repository": {"full_name": "someone/fork"}, "pull_requests": []}})
        .to_string(),
    )
    .unwrap();
    let comment = |extra: &[&str]| {
        let mut cmd = Command::cargo_bin("infergate").unwrap();
        cmd.current_dir(d)
            .timeout(Duration::from_secs(60))
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_REPOSITORY", "org/repo")
            .env("GITHUB_EVENT_NAME", "workflow_run")
            .env("GITHUB_EVENT_PATH", &event)
            .env("GITHUB_API_URL", server.uri())
            .env("GITHUB_TOKEN", TOKEN)
            .env_remove("GITHUB_OUTPUT")
            .env_remove("GITHUB_STEP_SUMMARY")
            .args(["comment", "--comparison", "comparison.json"])
            .args(extra);
        cmd.output().unwrap()
    };
    let writes = || async {
        let requests = server.received_requests().await.unwrap();
        requests.iter().filter(|r| r.method.as_str() != "GET").count()
    };

    // A number forged into the artifact: refused, nothing posted or edited, even with --comment-optional.
    for extra in [&["--pr", "6"][..], &["--pr", "6", "--comment-optional"]] {
        let out = comment(extra);
        assert_eq!(out.status.code(), Some(exit::RUN_FAILED), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stderr).contains("--pr 6 is not the pull request"));
        no_token(&out);
        assert_eq!(writes().await, 0);
    }
    // The run's own pull request: posted there, marked as a fork's.
    let out = comment(&[]);
    assert_eq!(out.status.code(), Some(exit::PASS), "{}", String::from_utf8_lossy(&out.stderr));
    let posted: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == "POST" && r.url.path() == COMMENTS)
        .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap()["body"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(posted.len(), 1);
    assert!(
        posted[0].contains("Measured by a run of a fork's pull request") && posted[0].contains("4242"),
        "{}",
        posted[0]
    );
}
