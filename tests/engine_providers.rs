//! Named providers through the engine, against a real HTTP server on 127.0.0.1: a tiny axum
//! app that answers OpenAI Chat Completions with SSE (or an error status) and records every
//! request. Proves `test_provider` really sends a request, and that the default entry decides
//! where the next turn goes (and stops doing so once removed, even by another process).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use ratchet::engine::config::{ConfigFile, EngineConfig, EnvSnapshot};
use ratchet::engine::{ChatEvent, ContentPart, Engine, EngineError, ProviderSpec};
use serde_json::{Value, json};
use tokio::sync::mpsc::Receiver;

const WAIT: Duration = Duration::from_secs(20);
const MOCK_TEXT: &str = "ok from the mock";

/// What the mock saw and how it answers.
#[derive(Clone, Default)]
struct Mock {
    requests: Arc<Mutex<Vec<Value>>>,
    /// 0 streams an answer; anything else is returned as an error status.
    status: Arc<AtomicU16>,
}

impl Mock {
    fn requests(&self) -> Vec<Value> {
        self.requests.lock().unwrap().clone()
    }
}

async fn chat(State(mock): State<Mock>, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let model = body["model"].as_str().unwrap_or("none").to_string();
    mock.requests.lock().unwrap().push(body);
    let status = mock.status.load(Ordering::SeqCst);
    if status != 0 {
        let error = json!({"error": {"message": "the mock refuses this key", "type": "invalid_request_error"}});
        return (StatusCode::from_u16(status).unwrap(), axum::Json(error)).into_response();
    }
    let chunk = |delta: Value, finish: Value| {
        let c = json!({"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": model,
                       "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
        format!("data: {c}\n\n")
    };
    let sse = [
        chunk(json!({"role": "assistant", "content": ""}), Value::Null),
        chunk(json!({"content": MOCK_TEXT}), Value::Null),
        chunk(json!({}), json!("stop")),
        "data: [DONE]\n\n".to_string(),
    ]
    .concat();
    ([(header::CONTENT_TYPE, "text/event-stream")], sse).into_response()
}

/// Starts the mock; the server task ends with the test's runtime.
async fn start_mock() -> (Mock, SocketAddr) {
    let mock = Mock::default();
    let app = Router::new().route("/v1/chat/completions", post(chat)).with_state(mock.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (mock, addr)
}

/// An engine whose config file chooses the offline scripted provider.
async fn engine(home: &std::path::Path) -> Engine {
    let script = home.join("script.json");
    std::fs::write(&script, r#"{"turns":[{"text":"from the script"}]}"#).unwrap();
    let file = ConfigFile::parse(&format!("provider = \"scripted\"\nscript = {:?}", script.to_str().unwrap())).unwrap();
    Engine::open(EngineConfig { home: home.to_path_buf(), env: EnvSnapshot::default(), file }).await.unwrap()
}

fn mock_entry(name: &str, addr: SocketAddr) -> ProviderSpec {
    ProviderSpec {
        name: name.into(),
        kind: "openai".into(),
        base_url: Some(format!("http://{addr}/v1")),
        model: Some("mock-model".into()),
        api_key_env: None,
    }
}

async fn answer(e: &Engine, session: &str, prompt: &str) -> String {
    let mut rx: Receiver<ChatEvent> = e.send_message(session, vec![ContentPart::text(prompt)]).await.unwrap();
    let mut text = String::new();
    loop {
        match tokio::time::timeout(WAIT, rx.recv()).await.expect("turn hung").expect("turn ended early") {
            ChatEvent::TextDelta(t) => text.push_str(&t),
            ChatEvent::Complete { .. } => return text,
            ChatEvent::Error { message, .. } => panic!("turn failed: {message}"),
            _ => {}
        }
    }
}

#[tokio::test]
async fn test_provider_sends_one_small_streamed_request_and_reports_the_answer() {
    let (mock, addr) = start_mock().await;
    let home = tempfile::tempdir().unwrap();
    let e = engine(home.path()).await;
    e.add_provider(mock_entry("mock", addr)).await.unwrap();

    let t = e.test_provider("mock").await.unwrap();
    assert!(t.ok, "{t:?}");
    assert_eq!((t.name.as_str(), t.model.as_str(), t.reply.as_str(), t.error), ("mock", "mock-model", MOCK_TEXT, None));
    let seen = mock.requests();
    assert_eq!(seen.len(), 1, "exactly one request: {seen:?}");
    assert_eq!(
        (seen[0]["model"].clone(), seen[0]["max_tokens"].clone(), seen[0]["stream"].clone()),
        (json!("mock-model"), json!(16), json!(true))
    );
    assert!(seen[0]["messages"].to_string().contains("single word"), "{}", seen[0]);

    // The provider's own error text comes back, not a success.
    mock.status.store(401, Ordering::SeqCst);
    let t = e.test_provider("mock").await.unwrap();
    assert!(!t.ok);
    let error = t.error.unwrap();
    assert!(error.contains("the mock refuses this key") && error.contains("HTTP 401"), "{error}");

    let missing = e.test_provider("nope").await;
    assert!(matches!(missing, Err(EngineError::ProviderNotFound(ref n)) if n == "nope"), "{missing:?}");
    e.shutdown().await;
}

#[tokio::test]
async fn an_unreachable_provider_fails_its_test_with_the_address() {
    // A port that was just free: nothing listens there.
    let addr = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let home = tempfile::tempdir().unwrap();
    let e = engine(home.path()).await;
    e.add_provider(mock_entry("gone", addr)).await.unwrap();
    let t = e.test_provider("gone").await.unwrap();
    assert!(!t.ok);
    let error = t.error.unwrap();
    assert!(error.contains("cannot reach") && error.contains(&addr.to_string()), "{error}");
    e.shutdown().await;
}

#[tokio::test]
async fn the_default_entry_takes_the_next_turn_until_it_is_removed() {
    let (mock, addr) = start_mock().await;
    let home = tempfile::tempdir().unwrap();
    let e = engine(home.path()).await;
    let s = e.create_session(home.path().to_path_buf(), vec![]).await.unwrap();
    assert_eq!(answer(&e, &s.id, "first").await, "from the script");

    e.add_provider(mock_entry("mock", addr)).await.unwrap();
    assert_eq!(answer(&e, &s.id, "still scripted?").await, "from the script", "adding is not choosing");
    assert!(mock.requests().is_empty());

    e.set_default_provider("mock").await.unwrap();
    assert_eq!(answer(&e, &s.id, "now the mock").await, MOCK_TEXT);
    let seen = mock.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0]["model"], "mock-model", "the entry's model, not the old session's");
    let record = e.session(&s.id).await.unwrap();
    assert_eq!((record.provider.as_str(), record.model.as_str()), ("mock", "mock-model"));

    // Another process on the same data directory (`ratchet provider remove` without a
    // daemon) removes it: this engine's next turn notices.
    let other = engine(home.path()).await;
    assert!(other.remove_provider("mock").await.unwrap().is_default);
    other.shutdown().await;
    assert_eq!(answer(&e, &s.id, "back?").await, "from the script");
    assert_eq!(mock.requests().len(), 1);
    e.shutdown().await;
}

#[tokio::test]
async fn bad_entries_are_refused_with_what_to_change() {
    let home = tempfile::tempdir().unwrap();
    let e = engine(home.path()).await;
    let spec = ProviderSpec { name: "x".into(), kind: "gemini".into(), ..Default::default() };
    let err = e.add_provider(spec).await.unwrap_err().to_string();
    assert!(err.contains("unknown provider kind \"gemini\"; use one of: openai, anthropic, ollama, scripted"), "{err}");
    let spec = ProviderSpec { name: "demo".into(), kind: "scripted".into(), ..Default::default() };
    assert_eq!(e.add_provider(spec.clone()).await.unwrap().model, "scripted-demo");
    let err = e.add_provider(spec).await.unwrap_err().to_string();
    assert!(err.contains("already exists") && err.contains("ratchet provider remove demo"), "{err}");
    assert!(matches!(e.set_default_provider("nope").await, Err(EngineError::ProviderNotFound(_))));
    assert!(matches!(e.remove_provider("nope").await, Err(EngineError::ProviderNotFound(_))));
    e.shutdown().await;
}
