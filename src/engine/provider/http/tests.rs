//! Tests of the shared HTTP plumbing against a real local server.

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::json;

use super::test_support::{MockServer, Reply};
use super::*;

const LABELS: Labels = Labels { provider: "testprov", key_env: Some("TEST_API_KEY"), url_env: "TEST_BASE_URL" };

const FAST: RetryPolicy = RetryPolicy {
    max_retries: 2,
    first_delay: Duration::from_millis(10),
    max_delay: Duration::from_millis(20),
    max_retry_after: Duration::from_secs(1),
};

async fn send(server: &MockServer, policy: RetryPolicy) -> Result<Response, ProviderError> {
    let client = new_client().unwrap();
    let url = format!("{}/x", server.base);
    send_with_retry(LABELS, &url, policy, || client.post(&url).body("{}")).await
}

#[test]
fn backoff_doubles_and_is_capped() {
    let p = RetryPolicy::DEFAULT;
    assert_eq!(p.backoff(0), Duration::from_millis(250));
    assert_eq!(p.backoff(1), Duration::from_millis(500));
    assert_eq!(p.backoff(2), Duration::from_secs(1));
    assert_eq!(p.backoff(3), Duration::from_secs(2));
    assert_eq!(p.backoff(40), Duration::from_secs(2));
}

#[test]
fn error_detail_prefers_the_provider_message() {
    assert_eq!(error_detail(r#"{"error":{"message":"bad key","type":"x"}}"#), "bad key");
    assert_eq!(error_detail(r#"{"error":"model 'x' not found"}"#), "model 'x' not found");
    assert_eq!(error_detail("  plain text  "), "plain text");
    assert_eq!(error_detail(""), "(empty response body)");
    let long = "é".repeat(1000);
    let detail = error_detail(&long);
    assert_eq!(detail.chars().count(), MAX_DETAIL_CHARS + 1);
    assert!(detail.ends_with('…'));
}

#[test]
fn auth_errors_name_the_key_variable_or_the_url_variable() {
    let err = status_error(LABELS, StatusCode::UNAUTHORIZED, "nope".into());
    assert!(matches!(err, ProviderError::Auth { env_var: "TEST_API_KEY", status: 401, .. }));
    assert!(err.to_string().contains("TEST_API_KEY"), "{err}");
    let keyless = Labels { key_env: None, ..LABELS };
    let err = status_error(keyless, StatusCode::FORBIDDEN, "nope".into());
    assert!(matches!(err, ProviderError::Http { status: 403, .. }));
    assert!(err.to_string().contains("TEST_BASE_URL"), "{err}");
}

#[test]
fn resource_parts_become_tagged_text() {
    let part = ContentPart::Resource { uri: "file:///a.rs".into(), text: "fn main() {}".into(), mime_type: None };
    assert_eq!(part_as_text(&part).unwrap(), "<resource uri=\"file:///a.rs\">\nfn main() {}\n</resource>");
    let thought = ContentPart::Thought { text: "x".into(), signature: None };
    assert_eq!(part_as_text(&thought), None);
}

#[tokio::test]
async fn retries_a_500_then_succeeds() {
    let server = MockServer::start(vec![
        Reply::json(500, json!({"error": {"message": "boom"}})),
        Reply::json(200, json!({"ok": true})),
    ])
    .await;
    let response = send(&server, RetryPolicy::DEFAULT).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(server.requests().len(), 2);
    assert_eq!(server.requests()[0].header("user-agent").unwrap(), USER_AGENT);
}

#[tokio::test]
async fn gives_up_after_the_last_retry_with_the_error_body() {
    let replies = (0..3).map(|_| Reply::json(503, json!({"error": {"message": "overloaded"}})));
    let server = MockServer::start(replies.collect()).await;
    let err = send(&server, FAST).await.unwrap_err();
    assert!(matches!(&err, ProviderError::Http { status: 503, detail, .. } if detail == "overloaded"), "{err:?}");
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn does_not_retry_a_400() {
    let server = MockServer::start(vec![Reply::json(400, json!({"error": {"message": "bad field"}}))]).await;
    let err = send(&server, FAST).await.unwrap_err();
    assert!(matches!(&err, ProviderError::Http { status: 400, detail, .. } if detail == "bad field"));
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn honours_a_short_retry_after_and_refuses_a_long_one() {
    let server = MockServer::start(vec![
        Reply::json(429, json!({})).with_header("retry-after", "0.3"),
        Reply::json(200, json!({})),
    ])
    .await;
    let started = Instant::now();
    send(&server, FAST).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));

    let server = MockServer::start(vec![
        Reply::json(429, json!({"error": {"message": "slow down"}})).with_header("retry-after", "3600"),
    ])
    .await;
    let err = send(&server, FAST).await.unwrap_err();
    assert!(matches!(&err, ProviderError::RateLimited { detail, .. } if detail == "slow down"));
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn unreachable_server_is_a_connect_error_naming_the_url_variable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/x", listener.local_addr().unwrap());
    drop(listener);
    let client = new_client().unwrap();
    let err = send_with_retry(LABELS, &url, FAST, || client.get(&url)).await.unwrap_err();
    assert!(matches!(&err, ProviderError::Connect { url: u, env_var: "TEST_BASE_URL", .. } if *u == url));
    assert!(err.to_string().contains("TEST_BASE_URL"), "{err}");
}

#[tokio::test]
async fn ndjson_lines_are_reassembled_across_chunks() {
    let lines = vec![json!({"a": "x".repeat(70)}), json!({"b": 2}), json!({"c": "é"})];
    let server = MockServer::start(vec![Reply::ndjson(&lines)]).await;
    let response = send(&server, FAST).await.unwrap();
    let got: Vec<String> = ndjson_lines(response.bytes_stream(), LABELS).map(|l| l.unwrap()).collect().await;
    let want: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    assert_eq!(got, want);
}

#[tokio::test]
async fn an_ndjson_line_that_never_ends_fails_the_stream_instead_of_growing() {
    let server = MockServer::start(vec![Reply::ndjson(&[json!({"a": "x".repeat(500)}), json!({"b": 1})])]).await;
    let response = send(&server, FAST).await.unwrap();
    let got: Vec<_> = ndjson_lines_within(response.bytes_stream(), LABELS, 100).collect().await;
    assert_eq!(got.len(), 1, "the stream ends at the long line");
    let err = got[0].as_ref().unwrap_err().to_string();
    assert!(err.contains("longer than 100 bytes") && err.contains("TEST_BASE_URL"), "{err}");
}

struct CountDecoder(usize);

impl Decoder for CountDecoder {
    type Input = String;
    fn feed(&mut self, input: String) -> Result<Vec<ProviderEvent>, ProviderError> {
        self.0 += 1;
        if input == "finish" {
            let finish = ProviderEvent::Finish(crate::engine::provider::FinishReason::Stop);
            return Ok(vec![finish, ProviderEvent::TextDelta("after".into())]);
        }
        Ok(vec![ProviderEvent::TextDelta(input)])
    }
    fn end(&mut self) -> Result<Vec<ProviderEvent>, ProviderError> {
        Err(ProviderError::Config("ended early".into()))
    }
}

#[tokio::test]
async fn decode_stream_stops_at_finish_and_reports_an_early_end() {
    let source = |items: Vec<&'static str>| -> BodyStream<String> {
        Box::pin(futures::stream::iter(items.into_iter().map(|s| Ok(s.to_string()))))
    };
    let events: Vec<_> = decode_stream(source(vec!["a", "finish", "b"]), CountDecoder(0)).collect().await;
    let events: Vec<ProviderEvent> = events.into_iter().map(|e| e.unwrap()).collect();
    assert_eq!(
        events,
        vec![ProviderEvent::TextDelta("a".into()), ProviderEvent::Finish(crate::engine::provider::FinishReason::Stop)]
    );
    let events: Vec<_> = decode_stream(source(vec!["a"]), CountDecoder(0)).collect().await;
    assert_eq!(events.len(), 2);
    assert!(matches!(&events[1], Err(ProviderError::Config(m)) if m == "ended early"));
}
