//! Tests of the Chat Completions provider against a local server speaking the real SSE format.

use serde_json::{Value, json};

use super::*;
use crate::engine::content::{ContentPart, ToolResult};
use crate::engine::provider::http::test_support::{
    MockServer, Reply, collect, non_text, sse_data, text_of, thought_of,
};
use crate::engine::provider::{ProviderMessage, ToolSpec};

fn chunk(delta: Value, finish: Option<&str>) -> String {
    sse_data(json!({
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "model": "gpt-test",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }))
}

fn usage_chunk() -> String {
    sse_data(json!({
        "id": "chatcmpl-1",
        "choices": [],
        "usage": {
            "prompt_tokens": 120,
            "completion_tokens": 30,
            "total_tokens": 150,
            "prompt_tokens_details": {"cached_tokens": 100},
            "completion_tokens_details": {"reasoning_tokens": 12},
        },
    }))
}

fn done() -> String {
    "data: [DONE]".to_string()
}

fn request() -> ProviderRequest {
    ProviderRequest {
        model: "gpt-test".into(),
        system: None,
        messages: vec![ProviderMessage::User(vec![ContentPart::text("hi")])],
        tools: Vec::new(),
        max_tokens: 512,
    }
}

async fn run(replies: Vec<Reply>, key: Option<&str>) -> (MockServer, Vec<ProviderEvent>, Option<ProviderError>) {
    let server = MockServer::start(replies).await;
    let provider = OpenAiProvider::new(&format!("{}/v1/", server.base), key.map(str::to_string)).unwrap();
    match provider.stream(request()).await {
        Ok(stream) => {
            let (events, error) = collect(stream).await;
            (server, events, error)
        }
        Err(e) => (server, Vec::new(), Some(e)),
    }
}

#[tokio::test]
async fn streams_text_then_usage_then_finish() {
    let replies = vec![Reply::sse(&[
        chunk(json!({"role": "assistant", "content": ""}), None),
        chunk(json!({"content": "Hello"}), None),
        chunk(json!({"content": ", wörld"}), None),
        chunk(json!({}), Some("stop")),
        usage_chunk(),
        done(),
    ])];
    let (server, events, error) = run(replies, Some("sk-test")).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(text_of(&events), "Hello, wörld");
    let usage = Usage { input_tokens: 120, output_tokens: 30, cached_input_tokens: 100, reasoning_tokens: 12 };
    assert_eq!(non_text(&events), vec![ProviderEvent::Usage(usage), ProviderEvent::Finish(FinishReason::Stop)]);
    let sent = server.single_request();
    assert_eq!((sent.method.as_str(), sent.path.as_str()), ("POST", "/v1/chat/completions"));
    assert_eq!(sent.header("authorization").as_deref(), Some("Bearer sk-test"));
}

#[tokio::test]
async fn reasoning_fields_become_thoughts() {
    let replies = vec![Reply::sse(&[
        chunk(json!({"reasoning_content": "Let me "}), None),
        chunk(json!({"reasoning": "think."}), None),
        chunk(json!({"content": "42"}), Some("stop")),
        done(),
    ])];
    let (_server, events, error) = run(replies, None).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(thought_of(&events), "Let me think.");
    assert_eq!(text_of(&events), "42");
    assert_eq!(events.last(), Some(&ProviderEvent::Finish(FinishReason::Stop)));
}

#[tokio::test]
async fn assembles_two_fragmented_tool_calls() {
    let call = |index: u64, id: Option<&str>, name: Option<&str>, args: &str| {
        let mut function = json!({"arguments": args});
        if let Some(name) = name {
            function["name"] = json!(name);
        }
        let mut tc = json!({"index": index, "type": "function", "function": function});
        if let Some(id) = id {
            tc["id"] = json!(id);
        }
        chunk(json!({"tool_calls": [tc]}), None)
    };
    let replies = vec![Reply::sse(&[
        chunk(json!({"content": "Reading."}), None),
        call(0, Some("call_a"), Some("read_file"), ""),
        call(0, None, None, "{\"pa"),
        call(0, None, None, "th\": \"src/"),
        call(0, None, None, "main.rs\"}"),
        call(1, Some("call_b"), Some("list_dir"), ""),
        call(1, None, None, "{\"path\":\".\"}"),
        chunk(json!({}), Some("tool_calls")),
        usage_chunk(),
        done(),
    ])];
    let (_server, events, error) = run(replies, None).await;
    assert!(error.is_none(), "{error:?}");
    let rest = non_text(&events);
    assert_eq!(
        rest[..2],
        [
            ProviderEvent::ToolCall(ToolCall {
                id: "call_a".into(),
                name: "read_file".into(),
                arguments: json!({"path": "src/main.rs"}),
            }),
            ProviderEvent::ToolCall(ToolCall {
                id: "call_b".into(),
                name: "list_dir".into(),
                arguments: json!({"path": "."}),
            }),
        ]
    );
    assert!(matches!(rest[2], ProviderEvent::Usage(_)));
    assert_eq!(rest[3], ProviderEvent::Finish(FinishReason::ToolUse));
    assert_eq!(rest.len(), 4);
}

#[tokio::test]
async fn empty_arguments_are_an_empty_object_and_bad_json_is_kept_raw() {
    let replies = vec![Reply::sse(&[
        chunk(json!({"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "now", "arguments": ""}}]}), None),
        chunk(json!({"tool_calls": [{"index": 1, "id": "c2", "function": {"name": "x", "arguments": "{oops"}}]}), None),
        chunk(json!({}), Some("stop")),
        done(),
    ])];
    let (_server, events, error) = run(replies, None).await;
    assert!(error.is_none(), "{error:?}");
    let calls: Vec<&ToolCall> = events
        .iter()
        .filter_map(|e| match e {
            ProviderEvent::ToolCall(c) => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(calls[0].arguments, json!({}));
    assert_eq!(calls[1].arguments, json!("{oops"));
    // A server that says "stop" after tool calls still gets the tool round.
    assert_eq!(events.last(), Some(&ProviderEvent::Finish(FinishReason::ToolUse)));
}

#[tokio::test]
async fn maps_every_finish_reason() {
    let cases = [
        ("stop", FinishReason::Stop),
        ("length", FinishReason::MaxTokens),
        ("tool_calls", FinishReason::ToolUse),
        ("function_call", FinishReason::ToolUse),
        ("content_filter", FinishReason::Refusal),
    ];
    for (wire, want) in cases {
        let replies = vec![Reply::sse(&[chunk(json!({"content": "x"}), Some(wire)), done()])];
        let (_server, events, error) = run(replies, None).await;
        assert!(error.is_none(), "{wire}: {error:?}");
        assert_eq!(events.last(), Some(&ProviderEvent::Finish(want)), "{wire}");
    }
}

#[tokio::test]
async fn a_stream_without_finish_reason_is_a_protocol_error() {
    let replies = vec![Reply::sse(&[chunk(json!({"content": "partial"}), None)])];
    let (_server, events, error) = run(replies, None).await;
    assert_eq!(text_of(&events), "partial");
    assert!(matches!(error, Some(ProviderError::Protocol { provider: "openai", .. })), "{error:?}");
}

#[tokio::test]
async fn an_error_object_in_the_stream_is_reported() {
    let replies = vec![Reply::sse(&[
        chunk(json!({"content": "a"}), None),
        sse_data(json!({"error": {"message": "server overloaded", "code": 503}})),
    ])];
    let (_server, _events, error) = run(replies, None).await;
    let error = error.unwrap();
    assert!(matches!(&error, ProviderError::Http { status: 503, .. }), "{error:?}");
    assert!(error.to_string().contains("server overloaded"), "{error}");
}

#[tokio::test]
async fn unauthorized_names_the_key_variable() {
    let body = json!({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}});
    let (server, _events, error) = run(vec![Reply::json(401, body)], Some("sk-bad")).await;
    let error = error.unwrap();
    assert!(matches!(&error, ProviderError::Auth { env_var: "OPENAI_API_KEY", status: 401, .. }));
    let message = error.to_string();
    assert!(message.contains("OPENAI_API_KEY") && message.contains("Incorrect API key"), "{message}");
    assert!(!message.contains("sk-bad"), "{message}");
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn retries_a_500_and_then_streams() {
    let replies = vec![
        Reply::json(500, json!({"error": {"message": "internal"}})),
        Reply::sse(&[chunk(json!({"content": "ok"}), Some("stop")), done()]),
    ];
    let (server, events, error) = run(replies, None).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(text_of(&events), "ok");
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn sends_the_documented_request_body() {
    let server = MockServer::start(vec![Reply::sse(&[chunk(json!({"content": "x"}), Some("stop")), done()])]).await;
    let provider = OpenAiProvider::new(&format!("{}/v1", server.base), None).unwrap();
    let request = ProviderRequest {
        model: "gpt-test".into(),
        system: Some("be brief".into()),
        messages: vec![
            ProviderMessage::User(vec![
                ContentPart::text("look"),
                ContentPart::Image { mime_type: "image/png".into(), data: "AAAA".into() },
                ContentPart::Resource { uri: "file:///a.txt".into(), text: "A".into(), mime_type: None },
            ]),
            ProviderMessage::Assistant {
                content: vec![
                    ContentPart::Thought { text: "secret".into(), signature: None },
                    ContentPart::text("Checking."),
                ],
                tool_calls: vec![ToolCall { id: "c1".into(), name: "read".into(), arguments: json!({"p": 1}) }],
            },
            ProviderMessage::ToolResults(vec![
                ToolResult { call_id: "c1".into(), content: "data".into(), is_error: false, title: None, kind: None },
                ToolResult { call_id: "c2".into(), content: "denied".into(), is_error: true, title: None, kind: None },
            ]),
            ProviderMessage::User(vec![ContentPart::text("and?")]),
        ],
        tools: vec![ToolSpec {
            name: "read".into(),
            description: "Reads".into(),
            parameters: json!({"type": "object"}),
        }],
        max_tokens: 99,
    };
    let (_events, error) = collect(provider.stream(request).await.unwrap()).await;
    assert!(error.is_none());
    let sent = server.single_request();
    assert_eq!(sent.header("authorization"), None);
    let want = json!({
        "model": "gpt-test",
        "stream": true,
        "stream_options": {"include_usage": true},
        "max_tokens": 99,
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [
                {"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                {"type": "text", "text": "<resource uri=\"file:///a.txt\">\nA\n</resource>"},
            ]},
            {"role": "assistant", "content": "Checking.", "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "read", "arguments": "{\"p\":1}"}},
            ]},
            {"role": "tool", "tool_call_id": "c1", "content": "data"},
            {"role": "tool", "tool_call_id": "c2", "content": "Error: denied"},
            {"role": "user", "content": "and?"},
        ],
        "tools": [{"type": "function", "function": {
            "name": "read", "description": "Reads", "parameters": {"type": "object"},
        }}],
    });
    assert_eq!(sent.body, want);
}

#[tokio::test]
async fn switches_to_max_completion_tokens_when_the_model_asks() {
    let message = "Unsupported parameter: 'max_tokens' is not supported with this model. \
                   Use 'max_completion_tokens' instead.";
    let replies = vec![
        Reply::json(400, json!({"error": {"message": message, "type": "invalid_request_error"}})),
        Reply::sse(&[chunk(json!({"content": "ok"}), Some("stop")), done()]),
    ];
    let (server, events, error) = run(replies, Some("sk-test")).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(text_of(&events), "ok");
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].body["max_tokens"], 512);
    assert_eq!(requests[1].body.get("max_tokens"), None);
    assert_eq!(requests[1].body["max_completion_tokens"], 512);
    assert_eq!(requests[1].header("authorization").as_deref(), Some("Bearer sk-test"));
}

#[test]
fn a_key_that_cannot_be_a_header_is_a_config_error() {
    let err = OpenAiProvider::new(DEFAULT_BASE_URL, Some("sk-abc\n".into())).err().unwrap();
    let message = err.to_string();
    assert!(matches!(err, ProviderError::Config(_)));
    assert!(message.contains("OPENAI_API_KEY") && !message.contains("sk-abc"), "{message}");
}
