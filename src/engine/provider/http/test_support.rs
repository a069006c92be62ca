//! A real HTTP server on 127.0.0.1 for provider tests: it answers each request with the next
//! scripted [`Reply`] (real SSE / NDJSON bodies, sent in pieces) and records what it received.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use futures::StreamExt;

use crate::engine::provider::{EventStream, ProviderError, ProviderEvent};

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    /// The body, sent as separate chunks (with a short pause between them).
    pub chunks: Vec<String>,
}

impl Reply {
    /// A 200 `text/event-stream` body made of `events` (each a complete `event:`/`data:` block
    /// without the blank separator line), cut into small pieces to exercise reassembly.
    pub fn sse(events: &[String]) -> Reply {
        let body: String = events.iter().map(|e| format!("{e}\n\n")).collect();
        Reply { status: 200, content_type: "text/event-stream", headers: Vec::new(), chunks: split_body(&body, 37) }
    }

    /// A 200 `application/x-ndjson` body, one JSON value per line, cut into pieces.
    pub fn ndjson(lines: &[serde_json::Value]) -> Reply {
        let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
        Reply { status: 200, content_type: "application/x-ndjson", headers: Vec::new(), chunks: split_body(&body, 29) }
    }

    /// A plain JSON answer (an error body, or a non-streaming success).
    pub fn json(status: u16, body: serde_json::Value) -> Reply {
        Reply { status, content_type: "application/json", headers: Vec::new(), chunks: vec![body.to_string()] }
    }

    /// The same reply with an extra header.
    pub fn with_header(mut self, name: &'static str, value: &str) -> Reply {
        self.headers.push((name, value.to_string()));
        self
    }
}

/// `data: <json>` as one SSE event.
pub fn sse_data(json: serde_json::Value) -> String {
    format!("data: {json}")
}

/// `event: <name>` plus `data: <json>` as one SSE event.
pub fn sse_named(name: &str, json: serde_json::Value) -> String {
    format!("event: {name}\ndata: {json}")
}

fn split_body(body: &str, piece_len: usize) -> Vec<String> {
    let chars: Vec<char> = body.chars().collect();
    chars.chunks(piece_len).map(|c| c.iter().collect()).collect()
}

/// One request the server received.
#[derive(Debug, Clone)]
pub struct Captured {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    /// The body parsed as JSON (`Null` if it was not JSON).
    pub body: serde_json::Value,
}

impl Captured {
    /// A header's value as text, if present.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
    }
}

#[derive(Default)]
struct MockState {
    replies: Mutex<VecDeque<Reply>>,
    captured: Mutex<Vec<Captured>>,
}

/// The running server; it stops with the test's runtime.
pub struct MockServer {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    state: Arc<MockState>,
}

impl MockServer {
    /// Starts a server that answers requests with `replies`, in order; once they run out it
    /// answers 500.
    pub async fn start(replies: Vec<Reply>) -> MockServer {
        super::install_crypto_provider();
        let state = Arc::new(MockState::default());
        state.replies.lock().unwrap().extend(replies);
        let app = axum::Router::new().fallback(handle).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        MockServer { base, state }
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Captured> {
        self.state.captured.lock().unwrap().clone()
    }

    /// The only request received; fails the test if there were more or none.
    pub fn single_request(&self) -> Captured {
        let requests = self.requests();
        assert_eq!(requests.len(), 1, "expected exactly one request: {requests:#?}");
        requests.into_iter().next().unwrap()
    }
}

async fn handle(
    State(state): State<Arc<MockState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    let path = uri.path().to_string();
    state.captured.lock().unwrap().push(Captured { method, path, headers, body });
    let reply = state.replies.lock().unwrap().pop_front();
    let reply = reply.unwrap_or_else(|| Reply::json(500, serde_json::json!({"error": "mock: no reply left"})));
    let mut builder = Response::builder()
        .status(StatusCode::from_u16(reply.status).unwrap())
        .header("content-type", reply.content_type);
    for (name, value) in &reply.headers {
        builder = builder.header(*name, value);
    }
    let pieces = futures::stream::iter(reply.chunks).then(|piece| async move {
        tokio::time::sleep(Duration::from_millis(1)).await;
        Ok::<_, Infallible>(piece)
    });
    builder.body(Body::from_stream(pieces)).unwrap()
}

/// Reads a whole event stream: the events, and the error that ended it, if any.
pub async fn collect(mut stream: EventStream) -> (Vec<ProviderEvent>, Option<ProviderError>) {
    let mut events = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(event) => events.push(event),
            Err(e) => return (events, Some(e)),
        }
    }
    (events, None)
}

/// All `TextDelta`s joined.
pub fn text_of(events: &[ProviderEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            ProviderEvent::TextDelta(t) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

/// All `ThoughtDelta`s joined.
pub fn thought_of(events: &[ProviderEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            ProviderEvent::ThoughtDelta(t) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

/// The events that are neither text nor thought deltas, in order.
pub fn non_text(events: &[ProviderEvent]) -> Vec<ProviderEvent> {
    events
        .iter()
        .filter(|e| !matches!(e, ProviderEvent::TextDelta(_) | ProviderEvent::ThoughtDelta(_)))
        .cloned()
        .collect()
}
