//! Tests of the Messages provider against a local server speaking the real SSE format.

use serde_json::{Value, json};

use super::*;
use crate::engine::provider::ToolSpec;
use crate::engine::provider::http::test_support::{
    MockServer, Reply, collect, non_text, sse_named, text_of, thought_of,
};

fn ev(data: Value) -> String {
    let name = data["type"].as_str().unwrap_or("message").to_string();
    sse_named(&name, data)
}

fn message_start() -> String {
    ev(json!({"type": "message_start", "message": {
        "id": "msg_1", "type": "message", "role": "assistant", "content": [], "model": "claude-test",
        "stop_reason": null,
        "usage": {"input_tokens": 10, "output_tokens": 1, "cache_read_input_tokens": 90, "cache_creation_input_tokens": 5},
    }}))
}

fn block_start(index: u64, block: Value) -> String {
    ev(json!({"type": "content_block_start", "index": index, "content_block": block}))
}

fn delta(index: u64, delta: Value) -> String {
    ev(json!({"type": "content_block_delta", "index": index, "delta": delta}))
}

fn block_stop(index: u64) -> String {
    ev(json!({"type": "content_block_stop", "index": index}))
}

fn message_end(stop_reason: &str) -> [String; 2] {
    [
        ev(json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": null},
                  "usage": {"output_tokens": 42}})),
        ev(json!({"type": "message_stop"})),
    ]
}

fn text_answer(stop_reason: &str) -> Vec<String> {
    let mut events = vec![
        message_start(),
        block_start(0, json!({"type": "text", "text": ""})),
        ev(json!({"type": "ping"})),
        delta(0, json!({"type": "text_delta", "text": "Hello"})),
        delta(0, json!({"type": "text_delta", "text": " there"})),
        block_stop(0),
    ];
    events.extend(message_end(stop_reason));
    events
}

fn request() -> ProviderRequest {
    ProviderRequest {
        model: "claude-test".into(),
        system: Some("sys".into()),
        messages: vec![ProviderMessage::User(vec![ContentPart::text("hi")])],
        tools: Vec::new(),
        max_tokens: 256,
    }
}

async fn run(replies: Vec<Reply>) -> (MockServer, Vec<ProviderEvent>, Option<ProviderError>) {
    let server = MockServer::start(replies).await;
    let provider = AnthropicProvider::new(&format!("{}/", server.base), Some("sk-ant-test".into())).unwrap();
    match provider.stream(request()).await {
        Ok(stream) => {
            let (events, error) = collect(stream).await;
            (server, events, error)
        }
        Err(e) => (server, Vec::new(), Some(e)),
    }
}

#[tokio::test]
async fn streams_text_with_usage_and_headers() {
    let (server, events, error) = run(vec![Reply::sse(&text_answer("end_turn"))]).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(text_of(&events), "Hello there");
    let usage = Usage { input_tokens: 105, output_tokens: 42, cached_input_tokens: 90, reasoning_tokens: 0 };
    assert_eq!(non_text(&events), vec![ProviderEvent::Usage(usage), ProviderEvent::Finish(FinishReason::Stop)]);
    let sent = server.single_request();
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.header("x-api-key").as_deref(), Some("sk-ant-test"));
    assert_eq!(sent.header("anthropic-version").as_deref(), Some("2023-06-01"));
    assert_eq!(sent.header("content-type").as_deref(), Some("application/json"));
    assert_eq!(sent.body["system"], "sys");
    assert_eq!(sent.body["stream"], true);
    assert_eq!(sent.body["max_tokens"], 256);
}

#[tokio::test]
async fn thinking_streams_as_thoughts_with_their_signature() {
    let mut events = vec![
        message_start(),
        block_start(0, json!({"type": "thinking", "thinking": ""})),
        delta(0, json!({"type": "thinking_delta", "thinking": "Let me "})),
        delta(0, json!({"type": "thinking_delta", "thinking": "see."})),
        delta(0, json!({"type": "signature_delta", "signature": "c2lnbmF0dXJl"})),
        block_stop(0),
        block_start(1, json!({"type": "text", "text": ""})),
        delta(1, json!({"type": "text_delta", "text": "Done."})),
        block_stop(1),
    ];
    events.extend(message_end("end_turn"));
    let (_server, got, error) = run(vec![Reply::sse(&events)]).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(thought_of(&got), "Let me see.");
    assert_eq!(text_of(&got), "Done.");
    assert_eq!(non_text(&got)[0], ProviderEvent::ThoughtSignature("c2lnbmF0dXJl".into()));
    // The signature closes the thought before the text starts.
    let sig_idx = got.iter().position(|e| matches!(e, ProviderEvent::ThoughtSignature(_))).unwrap();
    let text_idx = got.iter().position(|e| matches!(e, ProviderEvent::TextDelta(_))).unwrap();
    assert!(sig_idx < text_idx);
}

#[tokio::test]
async fn assembles_two_fragmented_tool_uses() {
    let mut events = vec![
        message_start(),
        block_start(0, json!({"type": "text", "text": ""})),
        delta(0, json!({"type": "text_delta", "text": "Let me look."})),
        block_stop(0),
        block_start(1, json!({"type": "tool_use", "id": "toolu_1", "name": "read_file", "input": {}})),
        delta(1, json!({"type": "input_json_delta", "partial_json": ""})),
        delta(1, json!({"type": "input_json_delta", "partial_json": "{\"path\": \"src/"})),
        delta(1, json!({"type": "input_json_delta", "partial_json": "lib.rs\"}"})),
        block_stop(1),
        block_start(2, json!({"type": "tool_use", "id": "toolu_2", "name": "now", "input": {}})),
        block_stop(2),
    ];
    events.extend(message_end("tool_use"));
    let (_server, got, error) = run(vec![Reply::sse(&events)]).await;
    assert!(error.is_none(), "{error:?}");
    let rest = non_text(&got);
    assert_eq!(
        rest[..2],
        [
            ProviderEvent::ToolCall(ToolCall {
                id: "toolu_1".into(),
                name: "read_file".into(),
                arguments: json!({"path": "src/lib.rs"}),
            }),
            ProviderEvent::ToolCall(ToolCall { id: "toolu_2".into(), name: "now".into(), arguments: json!({}) }),
        ]
    );
    assert_eq!(rest.last(), Some(&ProviderEvent::Finish(FinishReason::ToolUse)));
}

#[tokio::test]
async fn maps_every_stop_reason() {
    let cases = [
        ("end_turn", FinishReason::Stop),
        ("stop_sequence", FinishReason::Stop),
        ("max_tokens", FinishReason::MaxTokens),
        ("tool_use", FinishReason::ToolUse),
        ("refusal", FinishReason::Refusal),
    ];
    for (wire, want) in cases {
        let (_server, events, error) = run(vec![Reply::sse(&text_answer(wire))]).await;
        assert!(error.is_none(), "{wire}: {error:?}");
        assert_eq!(events.last(), Some(&ProviderEvent::Finish(want)), "{wire}");
    }
}

#[tokio::test]
async fn error_event_and_truncated_stream_are_errors() {
    let events = vec![
        message_start(),
        ev(json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})),
    ];
    let (_server, _got, error) = run(vec![Reply::sse(&events)]).await;
    let error = error.unwrap();
    assert!(matches!(&error, ProviderError::Http { status: 529, .. }), "{error:?}");
    assert!(error.to_string().contains("Overloaded"));

    let truncated = text_answer("end_turn")[..4].to_vec();
    let (_server, got, error) = run(vec![Reply::sse(&truncated)]).await;
    assert_eq!(text_of(&got), "Hello");
    assert!(matches!(error, Some(ProviderError::Protocol { provider: "anthropic", .. })), "{error:?}");
}

#[tokio::test]
async fn unauthorized_names_the_key_variable() {
    let body = json!({"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}});
    let (server, _events, error) = run(vec![Reply::json(401, body)]).await;
    let error = error.unwrap();
    assert!(matches!(&error, ProviderError::Auth { env_var: "ANTHROPIC_API_KEY", .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("ANTHROPIC_API_KEY") && message.contains("invalid x-api-key"));
    assert!(!message.contains("sk-ant-test"));
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn retries_a_500_and_then_streams() {
    let replies = vec![
        Reply::json(500, json!({"type": "error", "error": {"type": "api_error", "message": "x"}})),
        Reply::sse(&text_answer("end_turn")),
    ];
    let (server, events, error) = run(replies).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(text_of(&events), "Hello there");
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn request_body_maps_history_and_tools() {
    let request = ProviderRequest {
        model: "claude-test".into(),
        system: None,
        messages: vec![
            ProviderMessage::User(vec![
                ContentPart::text("see"),
                ContentPart::Image { mime_type: "image/png".into(), data: "AAAA".into() },
                ContentPart::ResourceLink { uri: "file:///b".into(), name: "b".into() },
            ]),
            ProviderMessage::Assistant {
                content: vec![
                    ContentPart::Thought { text: "unsigned".into(), signature: None },
                    ContentPart::Thought { text: "signed".into(), signature: Some("sig".into()) },
                    ContentPart::text("Reading."),
                ],
                tool_calls: vec![ToolCall { id: "t1".into(), name: "read".into(), arguments: json!({"p": 1}) }],
            },
            ProviderMessage::ToolResults(vec![ToolResult {
                call_id: "t1".into(),
                content: "no".into(),
                is_error: true,
                title: None,
                kind: None,
            }]),
            ProviderMessage::User(vec![ContentPart::text("why?")]),
        ],
        tools: vec![ToolSpec {
            name: "read".into(),
            description: "Reads".into(),
            parameters: json!({"type": "object"}),
        }],
        max_tokens: 10,
    };
    let want = json!({
        "model": "claude-test",
        "max_tokens": 10,
        "stream": true,
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "see"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
                {"type": "text", "text": "<resource_link name=\"b\" uri=\"file:///b\" />"},
            ]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "signed", "signature": "sig"},
                {"type": "text", "text": "Reading."},
                {"type": "tool_use", "id": "t1", "name": "read", "input": {"p": 1}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": "no", "is_error": true},
                {"type": "text", "text": "why?"},
            ]},
        ],
        "tools": [{"name": "read", "description": "Reads", "input_schema": {"type": "object"}}],
    });
    assert_eq!(request_body(&request), want);
}

/// Token counts come from the server; absurd ones must not overflow (a panic in debug builds,
/// a wrong count in release builds).
#[test]
fn huge_usage_numbers_saturate() {
    let mut decoder = EventDecoder::default();
    let start: WireEvent = serde_json::from_value(json!({"type": "message_start", "message": {
        "usage": {"input_tokens": u64::MAX, "cache_read_input_tokens": 7, "cache_creation_input_tokens": 1},
    }}))
    .unwrap();
    decoder.on_event(start).unwrap();
    let events = decoder.on_event(WireEvent::MessageStop).unwrap();
    let ProviderEvent::Usage(usage) = &events[0] else { panic!("{events:?}") };
    assert_eq!(usage.input_tokens, u64::MAX);
    assert_eq!(usage.total(), u64::MAX);
}
