//! The sticky PR comment against a local mock of GitHub's REST API (wiremock),
//! with the client pointed at it through its base URI: create, update, leave
//! alone, paginate, retry, wait out rate limits, explain a 403, truncate, and
//! never leak the token.
#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap here is a failed test, not a crash.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use infergate::github::{
    CommentOutcome, GithubError, MAX_COMMENT_CHARS, PostOptions, RunHead, Target, Token, marker, post_sticky_comment,
    pull_request_of_run,
};
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "ghp_T0kenThatMustNeverLeak0123456789abcd";
const PROFILE: &str = "h100-vllm";
const ME: &str = "infergate-bot";
const BOT: &str = "github-actions[bot]";
const COMMENTS: &str = "/repos/octo-org/serving/issues/7/comments";

fn target(server: &MockServer) -> Target {
    Target { api_url: server.uri(), owner: "octo-org".into(), repo: "serving".into(), pr: 7 }
}

fn token() -> Token {
    Token::new(TOKEN.into())
}

fn opts() -> PostOptions {
    PostOptions {
        max_retries: 3,
        max_wait: Duration::from_secs(5),
        base_delay: Duration::from_millis(50),
        run_url: None,
        secondary_wait: Duration::from_millis(300),
        ..PostOptions::default()
    }
}

/// A user object as GitHub returns it inside a comment (every field GitHub's schema marks required).
fn user(login: &str, id: u64) -> Value {
    let kind = if login.ends_with("[bot]") { "Bot" } else { "User" };
    let api = format!("https://api.github.com/users/{login}");
    json!({
        "login": login,
        "id": id,
        "node_id": format!("MDQ6VXNlcj{id}"),
        "avatar_url": format!("https://avatars.githubusercontent.com/u/{id}?v=4"),
        "gravatar_id": "",
        "url": api,
        "html_url": format!("https://github.com/{login}"),
        "followers_url": format!("{api}/followers"),
        "following_url": format!("{api}/following{{/other_user}}"),
        "gists_url": format!("{api}/gists{{/gist_id}}"),
        "starred_url": format!("{api}/starred{{/owner}}{{/repo}}"),
        "subscriptions_url": format!("{api}/subscriptions"),
        "organizations_url": format!("{api}/orgs"),
        "repos_url": format!("{api}/repos"),
        "events_url": format!("{api}/events{{/privacy}}"),
        "received_events_url": format!("{api}/received_events"),
        "type": kind,
        "user_view_type": "public",
        "site_admin": false
    })
}

/// An issue comment as `GET /repos/{o}/{r}/issues/{n}/comments` returns it.
fn comment(id: u64, login: &str, body: &str) -> Value {
    json!({
        "url": format!("https://api.github.com/repos/octo-org/serving/issues/comments/{id}"),
        "html_url": format!("https://github.com/octo-org/serving/pull/7#issuecomment-{id}"),
        "issue_url": "https://api.github.com/repos/octo-org/serving/issues/7",
        "id": id,
        "node_id": format!("IC_kwDOAbc{id}"),
        "user": user(login, 1000 + id % 7),
        "created_at": "2026-11-20T10:00:00Z",
        "updated_at": "2026-11-20T10:05:00Z",
        "author_association": "MEMBER",
        "body": body,
        "reactions": {
            "url": format!("https://api.github.com/repos/octo-org/serving/issues/comments/{id}/reactions"),
            "total_count": 0, "+1": 0, "-1": 0, "laugh": 0, "hooray": 0,
            "confused": 0, "heart": 0, "rocket": 0, "eyes": 0
        },
        "performed_via_github_app": null
    })
}

fn html_url(id: u64) -> String {
    format!("https://github.com/octo-org/serving/pull/7#issuecomment-{id}")
}

fn sticky(body: &str) -> String {
    format!("{}\n{body}", marker(PROFILE))
}

/// `GET /user` answers with `login`.
async fn mount_user(server: &MockServer, login: &str) {
    Mock::given(method("GET"))
        .and(path("/user"))
        .respond_with(ResponseTemplate::new(200).set_body_json(user(login, 1)))
        .mount(server)
        .await;
}

/// `GET /user` is closed to the token, as for the Actions `GITHUB_TOKEN`.
async fn mount_user_forbidden(server: &MockServer) {
    Mock::given(method("GET"))
        .and(path("/user"))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({
            "message": "Resource not accessible by integration",
            "documentation_url": "https://docs.github.com/rest/users/users#get-the-authenticated-user"
        })))
        .mount(server)
        .await;
}

/// Page `page` of the PR's comments.
async fn mount_page(server: &MockServer, page: u32, comments: Vec<Value>) {
    Mock::given(method("GET"))
        .and(path(COMMENTS))
        .and(query_param("per_page", "100"))
        .and(query_param("page", page.to_string()))
        .respond_with(ResponseTemplate::new(200).set_body_json(Value::Array(comments)))
        .expect(1)
        .mount(server)
        .await;
}

/// `POST` creating a comment, answering as GitHub does; expected `times` times.
async fn mount_create(server: &MockServer, id: u64, login: &str, times: u64) {
    Mock::given(method("POST"))
        .and(path(COMMENTS))
        .respond_with(ResponseTemplate::new(201).set_body_json(comment(id, login, "created")))
        .expect(times)
        .mount(server)
        .await;
}

/// `PATCH` editing comment `id`; expected `times` times.
async fn mount_update(server: &MockServer, id: u64, login: &str, times: u64) {
    Mock::given(method("PATCH"))
        .and(path(format!("/repos/octo-org/serving/issues/comments/{id}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(comment(id, login, "updated")))
        .expect(times)
        .mount(server)
        .await;
}

/// No write of any kind may reach the server.
async fn forbid_writes(server: &MockServer) {
    for verb in ["POST", "PATCH", "PUT", "DELETE"] {
        Mock::given(method(verb)).respond_with(ResponseTemplate::new(500)).expect(0).mount(server).await;
    }
}

/// Bodies of the requests with `verb` to `route`, decoded.
async fn sent_bodies(server: &MockServer, verb: &str, route: &str) -> Vec<String> {
    let requests = server.received_requests().await.expect("recording is on");
    requests
        .iter()
        .filter(|r| r.method.as_str() == verb && r.url.path() == route)
        .map(|r| {
            let v: Value = serde_json::from_slice(&r.body).expect("JSON body");
            v["body"].as_str().expect("body field").to_string()
        })
        .collect()
}

fn unrelated(from: u64, n: u64) -> Vec<Value> {
    (from..from + n).map(|id| comment(id, "reviewer", &format!("LGTM #{id}"))).collect()
}

#[tokio::test]
async fn creates_the_comment_when_absent() {
    let server = MockServer::start().await;
    mount_user(&server, ME).await;
    mount_page(&server, 1, vec![comment(1, "reviewer", "nice"), comment(2, ME, "no marker here")]).await;
    mount_create(&server, 99, ME, 1).await;

    let out = post_sticky_comment(&target(&server), &token(), PROFILE, "## ✅ Passed\n", &opts()).await.unwrap();

    assert_eq!(out, CommentOutcome::Created { url: html_url(99) });
    assert_eq!(sent_bodies(&server, "POST", COMMENTS).await, vec![sticky("## ✅ Passed\n")]);
}

#[tokio::test]
async fn updates_its_own_comment_in_place() {
    let server = MockServer::start().await;
    mount_user(&server, ME).await;
    mount_page(&server, 1, vec![comment(1, "reviewer", "nice"), comment(5, ME, &sticky("## old report"))]).await;
    mount_update(&server, 5, ME, 1).await;
    mount_create(&server, 99, ME, 0).await;

    let out = post_sticky_comment(&target(&server), &token(), PROFILE, "## new report", &opts()).await.unwrap();

    assert_eq!(out, CommentOutcome::Updated { url: html_url(5) });
    let route = "/repos/octo-org/serving/issues/comments/5";
    assert_eq!(sent_bodies(&server, "PATCH", route).await, vec![sticky("## new report")]);
}

#[tokio::test]
async fn another_authors_marked_comment_is_left_alone() {
    let server = MockServer::start().await;
    mount_user(&server, ME).await;
    // Someone quoted our marker (or copied a report); it is not ours to edit.
    mount_page(&server, 1, vec![comment(3, "mallory", &sticky("## fake report"))]).await;
    mount_update(&server, 3, "mallory", 0).await;
    mount_create(&server, 99, ME, 1).await;

    let out = post_sticky_comment(&target(&server), &token(), PROFILE, "## report", &opts()).await.unwrap();

    assert_eq!(out, CommentOutcome::Created { url: html_url(99) });
}

#[tokio::test]
async fn another_profiles_comment_is_left_alone() {
    let server = MockServer::start().await;
    mount_user(&server, ME).await;
    let other = format!("{}\n## other profile", marker("a100-sglang"));
    mount_page(&server, 1, vec![comment(3, ME, &other)]).await;
    mount_update(&server, 3, ME, 0).await;
    mount_create(&server, 99, ME, 1).await;

    let out = post_sticky_comment(&target(&server), &token(), PROFILE, "## report", &opts()).await.unwrap();

    assert_eq!(out, CommentOutcome::Created { url: html_url(99) });
}

#[tokio::test]
async fn finds_its_comment_on_page_three() {
    let server = MockServer::start().await;
    mount_user(&server, ME).await;
    mount_page(&server, 1, unrelated(1, 100)).await;
    mount_page(&server, 2, unrelated(101, 100)).await;
    let mut third = unrelated(201, 10);
    third.push(comment(250, ME, &sticky("## old")));
    mount_page(&server, 3, third).await;
    mount_update(&server, 250, ME, 1).await;
    mount_create(&server, 999, ME, 0).await;

    let out = post_sticky_comment(&target(&server), &token(), PROFILE, "## new", &opts()).await.unwrap();

    assert_eq!(out, CommentOutcome::Updated { url: html_url(250) });
}

#[tokio::test]
async fn reads_every_full_page_before_creating() {
    let server = MockServer::start().await;
    mount_user(&server, ME).await;
    mount_page(&server, 1, unrelated(1, 100)).await;
    mount_page(&server, 2, vec![]).await;
    mount_create(&server, 999, ME, 1).await;

    let out = post_sticky_comment(&target(&server), &token(), PROFILE, "## new", &opts()).await.unwrap();

    assert_eq!(out, CommentOutcome::Created { url: html_url(999) });
}

#[tokio::test]
async fn identical_body_writes_nothing() {
    let server = MockServer::start().await;
    mount_user(&server, ME).await;
    mount_page(&server, 1, vec![comment(5, ME, &sticky("## same\n"))]).await;
    forbid_writes(&server).await;

    let out = post_sticky_comment(&target(&server), &token(), PROFILE, "## same\n", &opts()).await.unwrap();

    assert_eq!(out, CommentOutcome::Unchanged { url: html_url(5) });
}

#[tokio::test]
async fn actions_token_without_user_access_matches_github_actions_bot() {
    let server = MockServer::start().await;
    mount_user_forbidden(&server).await;
    // A human's copy of the marker comes first; the bot's comment is the one to edit.
    mount_page(&server, 1, vec![comment(4, "octocat", &sticky("## copy")), comment(6, BOT, &sticky("## old"))]).await;
    mount_update(&server, 4, "octocat", 0).await;
    mount_update(&server, 6, BOT, 1).await;
    mount_create(&server, 99, BOT, 0).await;

    let out = post_sticky_comment(&target(&server), &token(), PROFILE, "## new", &opts()).await.unwrap();

    assert_eq!(out, CommentOutcome::Updated { url: html_url(6) });
}

#[tokio::test]
async fn a_personal_token_does_not_adopt_the_bots_comment() {
    let server = MockServer::start().await;
    mount_user(&server, ME).await;
    mount_page(&server, 1, vec![comment(6, BOT, &sticky("## old"))]).await;
    mount_update(&server, 6, BOT, 0).await;
    mount_create(&server, 99, ME, 1).await;

    let out = post_sticky_comment(&target(&server), &token(), PROFILE, "## new", &opts()).await.unwrap();

    assert_eq!(out, CommentOutcome::Created { url: html_url(99) });
}

#[tokio::test]
async fn forbidden_write_explains_the_permissions_to_add() {
    let server = MockServer::start().await;
    mount_user_forbidden(&server).await;
    mount_page(&server, 1, vec![]).await;
    Mock::given(method("POST"))
        .and(path(COMMENTS))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({
            "message": "Resource not accessible by integration",
            "documentation_url": "https://docs.github.com/rest/issues/comments#create-an-issue-comment",
            "status": "403"
        })))
        .expect(1)
        .mount(&server)
        .await;

    let err = post_sticky_comment(&target(&server), &token(), PROFILE, "## r", &opts()).await.unwrap_err();

    assert!(matches!(err, GithubError::Forbidden { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("permissions:\n  pull-requests: write"), "{msg}");
    assert!(msg.contains("issues: write"), "{msg}");
    assert!(msg.contains("Resource not accessible by integration"), "{msg}");
}

#[tokio::test]
async fn missing_pull_request_is_not_found() {
    let server = MockServer::start().await;
    mount_user(&server, ME).await;
    Mock::given(method("GET"))
        .and(path(COMMENTS))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({
            "message": "Not Found",
            "documentation_url": "https://docs.github.com/rest/issues/comments#list-issue-comments"
        })))
        .mount(&server)
        .await;
    forbid_writes(&server).await;

    let err = post_sticky_comment(&target(&server), &token(), PROFILE, "## r", &opts()).await.unwrap_err();

    assert!(matches!(err, GithubError::NotFound { .. }), "{err:?}");
    assert!(err.to_string().contains(COMMENTS), "{err}");
}

#[tokio::test]
async fn bad_gateway_is_retried_once_then_succeeds() {
    let server = MockServer::start().await;
    mount_user(&server, ME).await;
    Mock::given(method("GET"))
        .and(path(COMMENTS))
        .respond_with(ResponseTemplate::new(502).set_body_string("<html>502 Bad Gateway</html>"))
        .up_to_n_times(1)
        .with_priority(1)
        .expect(1)
        .mount(&server)
        .await;
    mount_page(&server, 1, vec![]).await;
    mount_create(&server, 99, ME, 1).await;

    let out = post_sticky_comment(&target(&server), &token(), PROFILE, "## r", &opts()).await.unwrap();

    assert_eq!(out, CommentOutcome::Created { url: html_url(99) });
    let lists = server.received_requests().await.unwrap().iter().filter(|r| r.url.path() == COMMENTS).count();
    assert_eq!(lists, 3, "two GETs of page 1 (502, then 200) and one POST");
}

#[tokio::test]
async fn failed_create_searches_again_before_retrying() {
    let server = MockServer::start().await;
    mount_user(&server, ME).await;
    Mock::given(method("GET"))
        .and(path(COMMENTS))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(COMMENTS))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .expect(1)
        .mount(&server)
        .await;
    mount_create(&server, 99, ME, 1).await;

    let out = post_sticky_comment(&target(&server), &token(), PROFILE, "## r", &opts()).await.unwrap();

    assert_eq!(out, CommentOutcome::Created { url: html_url(99) });
}

#[tokio::test]
async fn a_create_that_went_through_despite_a_502_is_not_duplicated() {
    let server = MockServer::start().await;
    mount_user(&server, ME).await;
    // The first search finds nothing; after the failed POST, the comment is there.
    Mock::given(method("GET"))
        .and(path(COMMENTS))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(COMMENTS))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([comment(77, ME, &sticky("## r"))])))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(COMMENTS))
        .respond_with(ResponseTemplate::new(502))
        .expect(1)
        .mount(&server)
        .await;
    mount_update(&server, 77, ME, 0).await;

    let out = post_sticky_comment(&target(&server), &token(), PROFILE, "## r", &opts()).await.unwrap();

    assert_eq!(out, CommentOutcome::Created { url: html_url(77) });
}

#[tokio::test]
async fn persistent_server_errors_end_after_the_bounded_retries() {
    let server = MockServer::start().await;
    mount_user(&server, ME).await;
    Mock::given(method("GET"))
        .and(path(COMMENTS))
        .respond_with(ResponseTemplate::new(503).set_body_json(json!({"message": "Service Unavailable"})))
        .expect(4)
        .mount(&server)
        .await;
    forbid_writes(&server).await;

    let err = post_sticky_comment(&target(&server), &token(), PROFILE, "## r", &opts()).await.unwrap_err();

    assert!(matches!(err, GithubError::Server { status: 503, .. }), "{err:?}");
}

#[tokio::test]
async fn a_reply_over_the_limit_is_refused_not_read_whole() {
    let server = MockServer::start().await;
    mount_user(&server, ME).await;
    // A page far beyond any real one: one byte over the limit.
    let huge = format!("[\"{}\"]", "x".repeat(infergate::github::MAX_REPLY_BYTES - 3));
    Mock::given(method("GET"))
        .and(path(COMMENTS))
        .respond_with(ResponseTemplate::new(200).set_body_raw(huge, "application/json"))
        .expect(1)
        .mount(&server)
        .await;
    forbid_writes(&server).await;

    let err = post_sticky_comment(&target(&server), &token(), PROFILE, "## r", &opts()).await.unwrap_err();

    let msg = err.to_string();
    assert!(msg.contains(&format!("GitHub's reply to GET {COMMENTS}")) && msg.contains("is over 64 MiB"), "{msg}");
}

#[tokio::test]
async fn a_huge_error_reply_is_cut_in_the_message() {
    let server = MockServer::start().await;
    mount_user(&server, ME).await;
    Mock::given(method("GET"))
        .and(path(COMMENTS))
        .respond_with(ResponseTemplate::new(422).set_body_string("y".repeat(8 << 20)))
        .expect(1)
        .mount(&server)
        .await;
    forbid_writes(&server).await;

    let err = post_sticky_comment(&target(&server), &token(), PROFILE, "## r", &opts()).await.unwrap_err();

    let msg = err.to_string();
    assert!(
        msg.starts_with("GitHub refused the request as unprocessable (422: GET ") && msg.contains("yyy…"),
        "{}",
        &msg[..200]
    );
    assert!(msg.len() < 1_000, "{} bytes", msg.len());
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let server = MockServer::start().await;
    mount_user(&server, ME).await;
    mount_page(&server, 1, vec![]).await;
    Mock::given(method("POST"))
        .and(path(COMMENTS))
        .respond_with(
            ResponseTemplate::new(403)
                .insert_header("x-ratelimit-remaining", "0")
                .insert_header("x-ratelimit-limit", "5000")
                .insert_header("retry-after", "1")
                .set_body_json(json!({"message": "API rate limit exceeded for installation ID 1."})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .expect(1)
        .mount(&server)
        .await;
    mount_create(&server, 99, ME, 1).await;

    let started = Instant::now();
    let out = post_sticky_comment(&target(&server), &token(), PROFILE, "## r", &opts()).await.unwrap();

    assert_eq!(out, CommentOutcome::Created { url: html_url(99) });
    assert!(started.elapsed() >= Duration::from_millis(900), "waited only {:?}", started.elapsed());
}

#[tokio::test]
async fn too_many_requests_waits_for_the_rate_limit_reset() {
    let server = MockServer::start().await;
    mount_user(&server, ME).await;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    Mock::given(method("GET"))
        .and(path(COMMENTS))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("x-ratelimit-remaining", "0")
                .insert_header("x-ratelimit-reset", (now + 2).to_string()),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .expect(1)
        .mount(&server)
        .await;
    mount_page(&server, 1, vec![comment(5, ME, &sticky("## r"))]).await;
    forbid_writes(&server).await;

    let started = Instant::now();
    let out = post_sticky_comment(&target(&server), &token(), PROFILE, "## r", &opts()).await.unwrap();

    assert_eq!(out, CommentOutcome::Unchanged { url: html_url(5) });
    // The reset is 1 to 2 whole seconds away, depending on when in the second `now` fell.
    assert!(started.elapsed() >= Duration::from_millis(900), "waited only {:?}", started.elapsed());
}

#[tokio::test]
async fn retry_after_beyond_max_wait_fails_without_waiting() {
    let server = MockServer::start().await;
    mount_user(&server, ME).await;
    Mock::given(method("GET"))
        .and(path(COMMENTS))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "3600")
                .set_body_json(json!({"message": "You have exceeded a secondary rate limit."})),
        )
        .expect(1)
        .mount(&server)
        .await;
    forbid_writes(&server).await;

    let started = Instant::now();
    let err = post_sticky_comment(&target(&server), &token(), PROFILE, "## r", &opts()).await.unwrap_err();

    assert!(matches!(err, GithubError::RateLimited { .. }), "{err:?}");
    assert!(err.to_string().contains("3600"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(60), "waited {:?}", started.elapsed());
}

#[tokio::test]
async fn enterprise_base_url_keeps_its_path_prefix() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v3/user"))
        .respond_with(ResponseTemplate::new(200).set_body_json(user(ME, 1)))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/api/v3{COMMENTS}")))
        .and(query_param("page", "1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/api/v3{COMMENTS}")))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(201).set_body_json(comment(99, ME, "x")))
        .expect(1)
        .mount(&server)
        .await;
    let target = Target { api_url: format!("{}/api/v3/", server.uri()), ..target(&server) };

    let out = post_sticky_comment(&target, &token(), PROFILE, "## r", &opts()).await.unwrap();

    assert_eq!(out, CommentOutcome::Created { url: html_url(99) });
    let stray =
        server.received_requests().await.unwrap().iter().filter(|r| !r.url.path().starts_with("/api/v3/")).count();
    assert_eq!(stray, 0);
}

#[tokio::test]
async fn an_enterprise_app_token_asks_graphql_beside_the_rest_root() {
    const APP: &str = "my-app[bot]";
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v3/user"))
        .respond_with(
            ResponseTemplate::new(403).set_body_json(json!({"message": "Resource not accessible by integration"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/graphql"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"viewer": {"login": APP}}})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/api/v3{COMMENTS}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([comment(5, APP, &sticky("## old"))])))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/api/v3/repos/octo-org/serving/issues/comments/5"))
        .respond_with(ResponseTemplate::new(200).set_body_json(comment(5, APP, "updated")))
        .expect(1)
        .mount(&server)
        .await;
    let target = Target { api_url: format!("{}/api/v3", server.uri()), ..target(&server) };

    let out = post_sticky_comment(&target, &token(), PROFILE, "## new", &opts()).await.unwrap();

    assert_eq!(out, CommentOutcome::Updated { url: html_url(5) });
}

#[tokio::test]
async fn requests_name_the_api_version_and_a_redirect_is_reported_not_followed() {
    let server = MockServer::start().await;
    mount_user(&server, ME).await;
    Mock::given(method("GET"))
        .and(path(COMMENTS))
        .respond_with(
            ResponseTemplate::new(301)
                .insert_header("location", format!("{}/repositories/1/issues/7/comments", server.uri())),
        )
        .expect(1)
        .mount(&server)
        .await;
    forbid_writes(&server).await;

    let err = post_sticky_comment(&target(&server), &token(), PROFILE, "## r", &opts()).await.unwrap_err();

    assert!(matches!(err, GithubError::Other(_)) && err.to_string().contains("301"), "{err}");
    let sent = server.received_requests().await.unwrap();
    assert_eq!(sent.len(), 2, "GET /user and the comments; the redirect is not followed");
    for request in &sent {
        let value =
            |name: &str| request.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        assert_eq!(value("x-github-api-version"), "2022-11-28");
        assert_eq!(value("accept"), "application/vnd.github+json");
        assert!(value("user-agent").starts_with("infergate/"), "{}", value("user-agent"));
    }
}

#[tokio::test]
async fn oversized_report_is_truncated_below_the_limit() {
    let server = MockServer::start().await;
    mount_user(&server, ME).await;
    mount_page(&server, 1, vec![]).await;
    mount_create(&server, 99, ME, 1).await;
    let verdict = "## ❌ infergate: 2 regressions on h100-vllm";
    let details =
        format!("<details><summary>All cases</summary>\n\n{}\n</details>\n", "| case | 1.0 |\n".repeat(8_000));
    let markdown = format!("{verdict}\n\n| metric | change |\n|---|---|\n| ttft p95 | +12% |\n\n{details}{details}");
    assert!(markdown.chars().count() >= 200_000);
    let opts = PostOptions { run_url: Some("https://github.com/octo-org/serving/actions/runs/42".into()), ..opts() };

    post_sticky_comment(&target(&server), &token(), PROFILE, &markdown, &opts).await.unwrap();

    let bodies = sent_bodies(&server, "POST", COMMENTS).await;
    let body = &bodies[0];
    assert!(body.chars().count() <= MAX_COMMENT_CHARS, "{} chars", body.chars().count());
    assert!(body.starts_with(&format!("{}\n{verdict}\n", marker(PROFILE))));
    assert!(body.contains("| ttft p95 | +12% |"));
    assert!(body.contains("https://github.com/octo-org/serving/actions/runs/42"));
}

#[tokio::test]
async fn oversized_report_without_details_is_cut_by_lines() {
    let server = MockServer::start().await;
    mount_user(&server, ME).await;
    mount_page(&server, 1, vec![]).await;
    mount_create(&server, 99, ME, 1).await;
    let markdown = format!("## ✅ infergate: passed\n{}", "a line of the report\n".repeat(10_000));
    assert!(markdown.chars().count() >= 200_000);

    post_sticky_comment(&target(&server), &token(), PROFILE, &markdown, &opts()).await.unwrap();

    let body = &sent_bodies(&server, "POST", COMMENTS).await[0];
    assert!(body.chars().count() <= MAX_COMMENT_CHARS);
    assert!(body.starts_with(&format!("{}\n## ✅ infergate: passed\n", marker(PROFILE))));
}

/// A `Write` into a shared buffer, to capture tracing output.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_token_is_sent_as_bearer_and_never_shown() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    assert_eq!(format!("{:?}", token()), "Token(<redacted>)");

    let mut errors = Vec::new();
    // Every kind of failure, some from servers that echo what they were sent.
    for (status, extra) in [(403, None), (404, None), (429, Some("3600")), (503, None), (401, None), (422, None)] {
        let server = MockServer::start().await;
        mount_user(&server, ME).await;
        let mut reply = ResponseTemplate::new(status)
            .set_body_json(json!({"message": format!("bad credentials: Bearer {TOKEN}"), "documentation_url": "x"}));
        if let Some(after) = extra {
            reply = reply.insert_header("retry-after", after);
        }
        Mock::given(method("GET")).and(path(COMMENTS)).respond_with(reply).mount(&server).await;
        let opts = PostOptions { max_retries: 1, base_delay: Duration::from_millis(10), ..opts() };
        errors.push(post_sticky_comment(&target(&server), &token(), PROFILE, "## r", &opts).await.unwrap_err());

        let sent = server.received_requests().await.unwrap();
        assert!(!sent.is_empty());
        for request in &sent {
            let auth = request.headers.get("authorization").expect("authorization header").to_str().unwrap();
            assert_eq!(auth, format!("Bearer {TOKEN}"));
        }
    }
    // An unreachable host and a token that cannot be a header.
    let closed = Target { api_url: "http://127.0.0.1:9".into(), owner: "o".into(), repo: "r".into(), pr: 1 };
    let quick = PostOptions { max_retries: 0, ..opts() };
    errors.push(post_sticky_comment(&closed, &token(), PROFILE, "## r", &quick).await.unwrap_err());
    let bad = Token::new(format!("{TOKEN}\n{TOKEN}"));
    errors.push(post_sticky_comment(&closed, &bad, PROFILE, "## r", &quick).await.unwrap_err());

    let kinds: Vec<&str> = errors
        .iter()
        .map(|e| match e {
            GithubError::Forbidden { .. } => "forbidden",
            GithubError::NotFound { .. } => "not found",
            GithubError::RateLimited { .. } => "rate limited",
            GithubError::Server { .. } => "server",
            GithubError::Locked { .. } => "locked",
            GithubError::Unprocessable { .. } => "unprocessable",
            GithubError::Other(_) => "other",
        })
        .collect();
    assert_eq!(kinds, ["forbidden", "not found", "rate limited", "server", "other", "unprocessable", "other", "other"]);
    for e in &errors {
        for shown in [e.to_string(), format!("{e:?}")] {
            assert!(!shown.contains(TOKEN), "token leaked: {shown}");
        }
    }
    let logged = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(!logged.contains(TOKEN), "token in logs: {logged}");
}

#[test]
fn fixtures_carry_every_field_github_marks_required() {
    // The required properties of `issue-comment` and `simple-user` in
    // GitHub's REST description (github/rest-api-description), so that the
    // mock answers as GitHub does and not only with what infergate reads.
    let c = comment(5, BOT, "x");
    for key in
        ["id", "node_id", "url", "html_url", "issue_url", "user", "created_at", "updated_at", "author_association"]
    {
        assert!(c.get(key).is_some(), "comment lacks `{key}`");
    }
    for key in [
        "login",
        "id",
        "node_id",
        "avatar_url",
        "gravatar_id",
        "url",
        "html_url",
        "followers_url",
        "following_url",
        "gists_url",
        "starred_url",
        "subscriptions_url",
        "organizations_url",
        "repos_url",
        "events_url",
        "received_events_url",
        "type",
        "site_admin",
    ] {
        assert!(c["user"].get(key).is_some(), "user lacks `{key}`");
    }
    assert_eq!(c["user"]["login"], BOT);
    assert_eq!(c["html_url"], html_url(5));
}

#[tokio::test]
async fn a_comment_by_a_deleted_account_does_not_stop_the_search() {
    let server = MockServer::start().await;
    mount_user(&server, ME).await;
    let mut ghost = comment(2, "x", "old");
    ghost["user"] = Value::Null;
    mount_page(&server, 1, vec![ghost, comment(5, ME, &sticky("## old"))]).await;
    mount_update(&server, 5, ME, 1).await;
    mount_create(&server, 99, ME, 0).await;

    let out = post_sticky_comment(&target(&server), &token(), PROFILE, "## new", &opts()).await.unwrap();

    assert_eq!(out, CommentOutcome::Updated { url: html_url(5) });
}

#[tokio::test]
async fn an_app_token_finds_its_own_comment_through_graphql_and_never_duplicates_it() {
    const APP: &str = "my-app[bot]";
    let server = MockServer::start().await;
    mount_user_forbidden(&server).await;
    Mock::given(method("POST"))
        .and(path("/graphql"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"viewer": {"login": APP}}})))
        .expect(4)
        .mount(&server)
        .await;
    // The first run creates; the page then holds the app's comment (and the
    // Actions bot's marked one, which is not ours).
    let page = |body: &str| vec![comment(20, BOT, &sticky("## old")), comment(21, APP, &sticky(body))];
    Mock::given(method("GET"))
        .and(path(COMMENTS))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    mount_create(&server, 21, APP, 1).await;
    let first = post_sticky_comment(&target(&server), &token(), PROFILE, "## one", &opts()).await.unwrap();
    assert!(matches!(first, CommentOutcome::Created { .. }), "{first:?}");
    Mock::given(method("GET"))
        .and(path(COMMENTS))
        .respond_with(ResponseTemplate::new(200).set_body_json(Value::Array(page("## one"))))
        .mount(&server)
        .await;
    mount_update(&server, 21, APP, 2).await;
    for body in ["## two", "## three", "## one"] {
        let outcome = post_sticky_comment(&target(&server), &token(), PROFILE, body, &opts()).await.unwrap();
        let expected_unchanged = body == "## one";
        assert_eq!(matches!(outcome, CommentOutcome::Unchanged { .. }), expected_unchanged, "{body}: {outcome:?}");
    }
    // Three runs after the first: one comment in all, the Actions bot's left alone.
    assert_eq!(sent_bodies(&server, "POST", COMMENTS).await.len(), 1);
    assert!(sent_bodies(&server, "PATCH", "/repos/octo-org/serving/issues/comments/20").await.is_empty());
}

#[tokio::test]
async fn a_secondary_rate_limit_without_a_wait_waits_what_github_asks() {
    let server = MockServer::start().await;
    mount_user(&server, ME).await;
    Mock::given(method("GET"))
        .and(path(COMMENTS))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({
            "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
        })))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    mount_page(&server, 1, Vec::new()).await;
    mount_create(&server, 3, ME, 1).await;
    let started = Instant::now();
    post_sticky_comment(&target(&server), &token(), PROFILE, "## r", &opts()).await.unwrap();
    // opts(): backoff 50 ms, secondary wait 300 ms.
    assert!(started.elapsed() >= Duration::from_millis(300), "{:?}", started.elapsed());
    // A secondary wait beyond what the caller allows fails at once, saying why.
    let server = MockServer::start().await;
    mount_user(&server, ME).await;
    Mock::given(method("GET"))
        .and(path(COMMENTS))
        .respond_with(ResponseTemplate::new(429).set_body_json(json!({"message": "secondary rate limit"})))
        .expect(1)
        .mount(&server)
        .await;
    let strict = PostOptions { max_wait: Duration::from_millis(100), ..opts() };
    let err = post_sticky_comment(&target(&server), &token(), PROFILE, "## r", &strict).await.unwrap_err();
    assert!(matches!(err, GithubError::RateLimited { .. }) && err.to_string().contains("at least"), "{err}");
}

#[tokio::test]
async fn a_locked_conversation_and_a_422_say_what_they_are() {
    let server = MockServer::start().await;
    mount_user(&server, ME).await;
    mount_page(&server, 1, Vec::new()).await;
    Mock::given(method("POST"))
        .and(path(COMMENTS))
        .respond_with(
            ResponseTemplate::new(403)
                .set_body_json(json!({"message": "Unable to create comment because issue is locked."})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let err = post_sticky_comment(&target(&server), &token(), PROFILE, "## r", &opts()).await.unwrap_err();
    assert!(matches!(err, GithubError::Locked { .. }), "{err:?}");
    assert!(err.to_string().contains("locked") && !err.to_string().contains("permissions"), "{err}");

    let server = MockServer::start().await;
    mount_user(&server, ME).await;
    mount_page(&server, 1, Vec::new()).await;
    Mock::given(method("POST"))
        .and(path(COMMENTS))
        .respond_with(ResponseTemplate::new(422).set_body_json(json!({
            "message": "Validation Failed",
            "errors": [{"resource": "IssueComment", "code": "custom", "field": "body", "message": "body is too long"}]
        })))
        .expect(1)
        .mount(&server)
        .await;
    let err = post_sticky_comment(&target(&server), &token(), PROFILE, "## r", &opts()).await.unwrap_err();
    assert!(matches!(err, GithubError::Unprocessable { .. }), "{err:?}");
    assert!(err.to_string().contains("Validation Failed: body is too long"), "{err}");
}

fn pull(number: u64, head_repo: &str, sha: &str) -> Value {
    json!({"number": number, "state": "open", "head": {"sha": sha, "ref": "feat", "repo": {"full_name": head_repo}}})
}

#[tokio::test]
async fn the_pull_request_of_a_run_is_the_one_whose_head_it_ran() {
    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/repos/octo-org/serving/pulls"))
        .and(query_param("head", "someone:feat"))
        .and(query_param("state", "open"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            pull(3, "someone/serving", "ffffffffffffffffffffffffffffffffffffffff"),
            pull(9, "someone/serving", SHA),
            pull(11, "other/serving", SHA),
        ])))
        .mount(&server)
        .await;
    let repo = Target { pr: 0, ..target(&server) };
    let head = RunHead { repository: "someone/serving".into(), branch: "feat".into(), sha: SHA.into() };
    assert_eq!(pull_request_of_run(&repo, &token(), &head, &opts()).await.unwrap(), 9);
    // The branch moved on since the run: no pull request has its head any more.
    let moved = RunHead { sha: "1111111111111111111111111111111111111111".into(), ..head.clone() };
    let err = pull_request_of_run(&repo, &token(), &moved, &opts()).await.unwrap_err();
    assert!(err.to_string().contains("no open pull request"), "{err}");
    // A malformed head is refused before any request.
    let bad = RunHead { branch: String::new(), ..head };
    assert!(pull_request_of_run(&repo, &token(), &bad, &opts()).await.is_err());
}
