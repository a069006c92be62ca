//! Tests of the Ollama provider against a local server speaking the real NDJSON format.

use serde_json::{Value, json};

use super::*;
use crate::engine::content::ToolResult;
use crate::engine::provider::ToolSpec;
use crate::engine::provider::http::test_support::{MockServer, Reply, collect, non_text, text_of, thought_of};

fn part(message: Value) -> Value {
    json!({"model": "llama-test", "created_at": "2026-01-01T00:00:00Z", "message": message, "done": false})
}

fn done(reason: &str) -> Value {
    json!({
        "model": "llama-test", "created_at": "2026-01-01T00:00:01Z",
        "message": {"role": "assistant", "content": ""},
        "done": true, "done_reason": reason,
        "total_duration": 1000, "prompt_eval_count": 26, "eval_count": 7,
    })
}

fn request() -> ProviderRequest {
    ProviderRequest {
        model: "llama-test".into(),
        system: None,
        messages: vec![ProviderMessage::User(vec![ContentPart::text("hi")])],
        tools: Vec::new(),
        max_tokens: 64,
    }
}

async fn run(replies: Vec<Reply>) -> (MockServer, Vec<ProviderEvent>, Option<ProviderError>) {
    let server = MockServer::start(replies).await;
    // OLLAMA_HOST form without a scheme.
    let provider = OllamaProvider::new(server.base.trim_start_matches("http://")).unwrap();
    match provider.stream(request()).await {
        Ok(stream) => {
            let (events, error) = collect(stream).await;
            (server, events, error)
        }
        Err(e) => (server, Vec::new(), Some(e)),
    }
}

#[tokio::test]
async fn streams_text_and_usage() {
    let lines = [
        part(json!({"role": "assistant", "content": "Hel"})),
        part(json!({"role": "assistant", "content": "lo!"})),
        done("stop"),
    ];
    let (server, events, error) = run(vec![Reply::ndjson(&lines)]).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(text_of(&events), "Hello!");
    let usage = Usage { input_tokens: 26, output_tokens: 7, ..Usage::default() };
    assert_eq!(non_text(&events), vec![ProviderEvent::Usage(usage), ProviderEvent::Finish(FinishReason::Stop)]);
    let sent = server.single_request();
    assert_eq!(sent.path, "/api/chat");
    assert_eq!(sent.header("authorization"), None);
    assert_eq!(sent.body["stream"], true);
    assert_eq!(sent.body["options"]["num_predict"], 64);
}

#[tokio::test]
async fn thinking_becomes_thoughts_and_length_is_max_tokens() {
    let lines = [
        part(json!({"role": "assistant", "content": "", "thinking": "Hmm, "})),
        part(json!({"role": "assistant", "content": "", "thinking": "yes."})),
        part(json!({"role": "assistant", "content": "Yes"})),
        done("length"),
    ];
    let (_server, events, error) = run(vec![Reply::ndjson(&lines)]).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(thought_of(&events), "Hmm, yes.");
    assert_eq!(text_of(&events), "Yes");
    assert_eq!(events.last(), Some(&ProviderEvent::Finish(FinishReason::MaxTokens)));
}

#[tokio::test]
async fn tool_calls_get_ids_and_finish_as_tool_use() {
    let calls = json!([
        {"function": {"name": "read_file", "arguments": {"path": "a.rs"}}},
        {"function": {"name": "now", "arguments": {}}},
    ]);
    let lines = [part(json!({"role": "assistant", "content": "", "tool_calls": calls})), done("stop")];
    let (_server, events, error) = run(vec![Reply::ndjson(&lines)]).await;
    assert!(error.is_none(), "{error:?}");
    let calls: Vec<&ToolCall> = events
        .iter()
        .filter_map(|e| match e {
            ProviderEvent::ToolCall(c) => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(calls.len(), 2);
    assert_eq!((calls[0].name.as_str(), &calls[0].arguments), ("read_file", &json!({"path": "a.rs"})));
    assert_eq!((calls[1].name.as_str(), &calls[1].arguments), ("now", &json!({})));
    assert!(calls.iter().all(|c| c.id.starts_with("call_")));
    assert_ne!(calls[0].id, calls[1].id);
    assert_eq!(events.last(), Some(&ProviderEvent::Finish(FinishReason::ToolUse)));
}

#[tokio::test]
async fn error_line_and_missing_done_are_errors() {
    let lines = [part(json!({"role": "assistant", "content": "a"})), json!({"error": "model runner crashed"})];
    let (_server, _events, error) = run(vec![Reply::ndjson(&lines)]).await;
    let error = error.unwrap();
    assert!(error.to_string().contains("model runner crashed"), "{error}");

    let lines = [part(json!({"role": "assistant", "content": "a"}))];
    let (_server, events, error) = run(vec![Reply::ndjson(&lines)]).await;
    assert_eq!(text_of(&events), "a");
    assert!(matches!(error, Some(ProviderError::Protocol { provider: "ollama", .. })), "{error:?}");
}

#[tokio::test]
async fn not_found_and_unauthorized_point_at_the_host_variable() {
    let (_server, _events, error) = run(vec![Reply::json(404, json!({"error": "model 'llama-test' not found"}))]).await;
    let message = error.unwrap().to_string();
    assert!(message.contains("model 'llama-test' not found") && message.contains("OLLAMA_HOST"), "{message}");

    let (_server, _events, error) = run(vec![Reply::json(401, json!({"error": "unauthorized"}))]).await;
    let error = error.unwrap();
    assert!(matches!(&error, ProviderError::Http { status: 401, .. }), "{error:?}");
    assert!(error.to_string().contains("OLLAMA_HOST"));
}

#[tokio::test]
async fn retries_a_500_and_then_streams() {
    let replies = vec![
        Reply::json(500, json!({"error": "loading model"})),
        Reply::ndjson(&[part(json!({"role": "assistant", "content": "ok"})), done("stop")]),
    ];
    let (server, events, error) = run(replies).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(text_of(&events), "ok");
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn probe_finds_a_server_and_not_a_closed_port() {
    let server = MockServer::start(vec![Reply::json(200, json!({"models": []}))]).await;
    assert!(probe(&server.base).await);
    let sent = server.single_request();
    assert_eq!((sent.method.as_str(), sent.path.as_str()), ("GET", "/api/tags"));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = listener.local_addr().unwrap().to_string();
    drop(listener);
    assert!(!probe(&closed).await);
}

#[test]
fn normalizes_ollama_host_forms() {
    assert_eq!(normalize_host(""), DEFAULT_HOST);
    assert_eq!(normalize_host("127.0.0.1:9999"), "http://127.0.0.1:9999");
    assert_eq!(normalize_host("gpu-box"), "http://gpu-box:11434");
    assert_eq!(normalize_host("https://ollama.example.com/"), "https://ollama.example.com");
    assert_eq!(normalize_host("[::1]:8080"), "http://[::1]:8080");
    assert_eq!(normalize_host("[::1]"), "http://[::1]:11434");
}

#[test]
fn request_body_maps_history_images_and_tool_names() {
    let request = ProviderRequest {
        model: "m".into(),
        system: Some("sys".into()),
        messages: vec![
            ProviderMessage::User(vec![
                ContentPart::text("what is this"),
                ContentPart::Image { mime_type: "image/png".into(), data: "AAAA".into() },
            ]),
            ProviderMessage::Assistant {
                content: vec![
                    ContentPart::Thought { text: "t".into(), signature: None },
                    ContentPart::text("Let me see."),
                ],
                tool_calls: vec![ToolCall { id: "call_9".into(), name: "read".into(), arguments: json!({"p": 1}) }],
            },
            ProviderMessage::ToolResults(vec![ToolResult {
                call_id: "call_9".into(),
                content: "png".into(),
                is_error: false,
                title: None,
                kind: None,
            }]),
        ],
        tools: vec![ToolSpec {
            name: "read".into(),
            description: "Reads".into(),
            parameters: json!({"type": "object"}),
        }],
        max_tokens: 5,
    };
    let want = json!({
        "model": "m",
        "stream": true,
        "options": {"num_predict": 5},
        "messages": [
            {"role": "system", "content": "sys"},
            {"role": "user", "content": "what is this", "images": ["AAAA"]},
            {"role": "assistant", "content": "Let me see.", "tool_calls": [
                {"function": {"name": "read", "arguments": {"p": 1}}},
            ]},
            {"role": "tool", "content": "png", "tool_name": "read"},
        ],
        "tools": [{"type": "function", "function": {"name": "read", "description": "Reads", "parameters": {"type": "object"}}}],
    });
    assert_eq!(request_body(&request), want);
}
