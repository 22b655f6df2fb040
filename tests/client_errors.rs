//! The streaming client against a scripted local HTTP server: every way a
//! response can go wrong ends as a classified error in the record, never a
//! panic, never a hang.
#![allow(clippy::unwrap_used, clippy::expect_used)] // A failed unwrap here is a failed test, not a crash.

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use infergate::client::{Api, Client, ClientConfig, Generation, Secret};
use infergate::results::{ErrorClass, RequestRecord};

const ROLE: &str =
    "data: {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n";
const TOKEN: &str = "data: {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"tok\"}}]}\n\n";
const FINISH: &str = "data: {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"length\"}]}\n\n";
const USAGE: &str = "data: {\"id\":\"x\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2}}\n\n";
const DONE: &str = "data: [DONE]\n\n";

/// A stream of `(delay before, bytes)` pieces, then an optional abrupt error.
fn stream(pieces: Vec<(u64, String)>, cut: bool) -> Response {
    let s = futures_util::stream::unfold((pieces.into_iter(), cut), |(mut it, cut)| async move {
        match it.next() {
            Some((delay, bytes)) => {
                tokio::time::sleep(Duration::from_millis(delay)).await;
                Some((Ok::<Bytes, std::io::Error>(Bytes::from(bytes)), (it, cut)))
            }
            None if cut => Some((Err(std::io::Error::other("cut")), (Vec::new().into_iter(), false))),
            None => None,
        }
    });
    ([(header::CONTENT_TYPE, "text/event-stream")], Body::from_stream(s)).into_response()
}

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

fn client(base_url: String, idle_ms: u64, total_ms: u64) -> Client {
    Client::new(ClientConfig {
        base_url,
        model: "m".into(),
        api: Api::Chat,
        api_key: Some(Secret::new("sk-test-key".into())),
        request_timeout: Duration::from_millis(total_ms),
        idle_timeout: Duration::from_millis(idle_ms),
        max_event_bytes: 4096,
    })
    .unwrap()
}

async fn measure(router: Router) -> RequestRecord {
    measure_with(router, 1000, 5000).await
}

async fn measure_with(router: Router, idle_ms: u64, total_ms: u64) -> RequestRecord {
    let url = serve(router).await;
    let c = client(url, idle_ms, total_ms);
    let g = Generation { max_tokens: 2, ignore_eos: true, min_tokens: false, continuous_usage: false, stream: true };
    let req = c.prepare("hello", g);
    tokio::time::timeout(Duration::from_secs(10), c.measure(&req, Instant::now())).await.expect("never hangs")
}

fn route(handler: impl Fn() -> Response + Clone + Send + Sync + 'static) -> Router {
    Router::new().route("/v1/chat/completions", post(move || std::future::ready(handler())))
}

fn class(r: &RequestRecord) -> ErrorClass {
    assert!(!r.ok);
    r.error.as_ref().unwrap().class
}

#[tokio::test]
async fn good_stream_with_the_api_key() {
    let router = Router::new().route(
        "/v1/chat/completions",
        post(|headers: HeaderMap| async move {
            if headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) != Some("Bearer sk-test-key") {
                return StatusCode::UNAUTHORIZED.into_response();
            }
            stream(vec![(5, format!("{ROLE}{TOKEN}")), (5, TOKEN.into()), (0, format!("{FINISH}{USAGE}{DONE}"))], false)
        }),
    );
    let r = measure(router).await;
    assert!(r.ok, "{:?}", r.error);
    assert_eq!(r.output_tokens, Some(2));
    assert_eq!(r.itl_ms.len(), 3);
}

#[tokio::test]
async fn http_status_keeps_an_excerpt_of_the_body() {
    let r = measure(route(|| {
        (StatusCode::INTERNAL_SERVER_ERROR, "{\"error\":{\"message\":\"CUDA out of memory\"}}").into_response()
    }))
    .await;
    assert_eq!(class(&r), ErrorClass::HttpStatus);
    let e = r.error.unwrap();
    assert_eq!(e.status, Some(500));
    assert!(e.message.contains("CUDA out of memory"), "{}", e.message);
}

#[tokio::test]
async fn connection_refused_is_a_connect_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let c = client(url, 1000, 5000);
    let g = Generation { max_tokens: 2, ignore_eos: false, min_tokens: false, continuous_usage: false, stream: true };
    let r = c.measure(&c.prepare("x", g), Instant::now()).await;
    assert_eq!(class(&r), ErrorClass::Connect);
}

#[tokio::test]
async fn silence_ends_in_an_idle_timeout() {
    let r = measure_with(route(|| stream(vec![(0, ROLE.into()), (3000, TOKEN.into())], false)), 200, 5000).await;
    assert_eq!(class(&r), ErrorClass::IdleTimeout);
    // What was measured before the silence is kept for diagnosis.
    assert!(r.ttft_ms.is_some());
}

#[tokio::test]
async fn a_slow_stream_ends_at_the_request_timeout() {
    // Bytes keep coming (no idle timeout), but the whole takes too long.
    let slow = || {
        let pieces = std::iter::once((0, ROLE.to_string())).chain((0..50).map(|_| (50, TOKEN.to_string())));
        stream(pieces.collect(), false)
    };
    let r = measure_with(route(slow), 1000, 400).await;
    assert_eq!(class(&r), ErrorClass::Timeout);
}

#[tokio::test]
async fn a_stream_cut_mid_response_is_a_stream_cut() {
    let r = measure(route(|| stream(vec![(0, format!("{ROLE}{TOKEN}"))], true))).await;
    assert_eq!(class(&r), ErrorClass::StreamCut);
    // A clean close in the middle of an event is a cut too, not a malformed event.
    let r = measure(route(|| stream(vec![(0, format!("{ROLE}data: {{\"id\":\"x\",\"cho"))], false))).await;
    assert_eq!(class(&r), ErrorClass::StreamCut);
}

#[tokio::test]
async fn malformed_and_oversized_events() {
    let r = measure(route(|| stream(vec![(0, format!("{ROLE}data: {{oops\n\n{DONE}"))], false))).await;
    assert_eq!(class(&r), ErrorClass::MalformedEvent);
    let big = format!("data: {}\n\n", "x".repeat(10_000));
    let r = measure(route(move || stream(vec![(0, ROLE.into()), (0, big.clone())], false))).await;
    assert_eq!(class(&r), ErrorClass::MalformedEvent);
    assert!(r.error.unwrap().message.contains("exceeded"));
}

#[tokio::test]
async fn error_object_inside_the_stream() {
    let r = measure(route(|| {
        stream(vec![(0, format!("{ROLE}data: {{\"error\":{{\"message\":\"engine died\"}}}}\n\n"))], false)
    }))
    .await;
    assert_eq!(class(&r), ErrorClass::ServerError);
}

#[tokio::test]
async fn json_instead_of_a_stream_is_a_bad_response() {
    let r = measure(route(|| {
        ([(header::CONTENT_TYPE, "application/json")], "{\"choices\":[{\"message\":{\"content\":\"hi\"}}]}")
            .into_response()
    }))
    .await;
    assert_eq!(class(&r), ErrorClass::BadResponse);
}

#[tokio::test]
async fn missing_done_after_finish_is_accepted_and_flagged() {
    let r = measure(route(|| stream(vec![(0, format!("{ROLE}{TOKEN}{FINISH}{USAGE}"))], false))).await;
    assert!(r.ok, "{:?}", r.error);
    assert!(!r.done_received);
}

#[tokio::test]
async fn a_stream_held_open_after_its_finish_is_complete_after_a_short_grace() {
    // finish_reason and usage, then silence far past the grace (but within the idle timeout).
    let started = Instant::now();
    let r = measure_with(
        route(|| stream(vec![(0, format!("{ROLE}{TOKEN}{FINISH}{USAGE}")), (4000, DONE.into())], false)),
        5000,
        10_000,
    )
    .await;
    assert!(r.ok, "{:?}", r.error);
    assert!(!r.done_received);
    assert_eq!(r.output_tokens, Some(2));
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
}

#[tokio::test]
async fn an_html_page_is_a_bad_response() {
    let r = measure(route(|| {
        ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], "<html><body>502 Bad Gateway</body></html>")
            .into_response()
    }))
    .await;
    assert_eq!(class(&r), ErrorClass::BadResponse);
    let message = r.error.unwrap().message;
    assert!(message.contains("got `text/html; charset=utf-8`") && message.contains("502 Bad Gateway"), "{message}");
}

#[tokio::test]
async fn a_stream_far_longer_than_asked_is_stopped() {
    // Two tokens asked for; the server keeps going.
    let endless = || {
        let pieces = std::iter::once((0, ROLE.to_string())).chain((0..500).map(|_| (1, TOKEN.to_string())));
        stream(pieces.collect(), false)
    };
    let r = measure(route(endless)).await;
    assert_eq!(class(&r), ErrorClass::BadResponse);
    assert!(r.error.unwrap().message.contains("more than 20 tokens for the 2 asked for"));
}
