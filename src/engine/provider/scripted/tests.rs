//! Tests of the scripted provider: turn selection, chunking, tool calls, usage and errors.

use std::time::Instant;

use serde_json::json;

use super::*;
use crate::engine::content::ToolResult;
use crate::engine::provider::http::test_support::{collect, non_text, text_of, thought_of};

fn script(value: serde_json::Value) -> ScriptedProvider {
    ScriptedProvider::new(serde_json::from_value(value).unwrap()).unwrap()
}

fn request(messages: Vec<ProviderMessage>) -> ProviderRequest {
    ProviderRequest { model: "scripted-demo".into(), system: None, messages, tools: Vec::new(), max_tokens: 100 }
}

fn user(text: &str) -> ProviderMessage {
    ProviderMessage::User(vec![ContentPart::text(text)])
}

fn assistant(text: &str) -> ProviderMessage {
    ProviderMessage::Assistant { content: vec![ContentPart::text(text)], tool_calls: Vec::new() }
}

async fn answer(provider: &ScriptedProvider, messages: Vec<ProviderMessage>) -> Vec<ProviderEvent> {
    let (events, error) = collect(provider.stream(request(messages)).await.unwrap()).await;
    assert!(error.is_none(), "{error:?}");
    events
}

#[test]
fn words_keep_all_whitespace() {
    let text = "  Hello  big\nworld \t!\n";
    let chunks: Vec<&str> = words(text).collect();
    assert_eq!(chunks, vec!["  ", "Hello  ", "big\n", "world \t", "!\n"]);
    assert_eq!(chunks.concat(), text);
    assert_eq!(words("").count(), 0);
}

#[tokio::test]
async fn streams_thinking_then_text_word_by_word() {
    let provider = script(json!({"turns": [{"thinking": "Hmm ok.", "text": "Hi there, friend."}]}));
    let events = answer(&provider, vec![user("hello")]).await;
    assert_eq!(events[0], ProviderEvent::ThoughtDelta("Hmm ".into()));
    assert_eq!(thought_of(&events), "Hmm ok.");
    assert_eq!(text_of(&events), "Hi there, friend.");
    let n_text = events.iter().filter(|e| matches!(e, ProviderEvent::TextDelta(_))).count();
    assert_eq!(n_text, 3);
    let usage = Usage { input_tokens: 1, output_tokens: 5, ..Usage::default() };
    assert_eq!(non_text(&events), vec![ProviderEvent::Usage(usage), ProviderEvent::Finish(FinishReason::Stop)]);
}

#[tokio::test]
async fn match_wins_then_turn_order_by_assistant_count() {
    let provider = script(json!({"turns": [
        {"text": "first"},
        {"text": "second"},
        {"match": "weather", "text": "sunny"},
    ]}));
    assert_eq!(text_of(&answer(&provider, vec![user("hi")]).await), "first");
    assert_eq!(text_of(&answer(&provider, vec![user("hi"), assistant("first"), user("more")]).await), "second");
    assert_eq!(text_of(&answer(&provider, vec![user("what's the weather?")]).await), "sunny");
    // Past the end: the last turn again.
    let long = vec![user("a"), assistant("b"), user("c"), assistant("d"), user("e"), assistant("f"), user("g")];
    assert_eq!(text_of(&answer(&provider, long).await), "sunny");
}

#[tokio::test]
async fn tool_calls_then_a_follow_up_turn() {
    let provider = script(json!({"turns": [
        {"match": "read", "text": "Reading.", "tool_calls": [{"name": "read_file", "arguments": {"path": "a.rs"}}, {"name": "now"}]},
        {"text": "The file is empty."},
    ]}));
    let events = answer(&provider, vec![user("please read a.rs")]).await;
    let rest = non_text(&events);
    assert_eq!(
        rest[..2],
        [
            ProviderEvent::ToolCall(ToolCall {
                id: "script_call_1".into(),
                name: "read_file".into(),
                arguments: json!({"path": "a.rs"}),
            }),
            ProviderEvent::ToolCall(ToolCall { id: "script_call_2".into(), name: "now".into(), arguments: json!({}) }),
        ]
    );
    assert_eq!(rest.last(), Some(&ProviderEvent::Finish(FinishReason::ToolUse)));

    let follow_up = vec![
        user("please read a.rs"),
        ProviderMessage::Assistant {
            content: vec![ContentPart::text("Reading.")],
            tool_calls: vec![ToolCall { id: "script_call_1".into(), name: "read_file".into(), arguments: json!({}) }],
        },
        ProviderMessage::ToolResults(vec![ToolResult {
            call_id: "script_call_1".into(),
            content: "".into(),
            is_error: false,
            title: None,
            kind: None,
        }]),
    ];
    let events = answer(&provider, follow_up).await;
    assert_eq!(text_of(&events), "The file is empty.");
    assert_eq!(events.last(), Some(&ProviderEvent::Finish(FinishReason::Stop)));
}

#[tokio::test]
async fn explicit_finish_usage_and_delay() {
    let provider = script(json!({"turns": [
        {"text": "a b c", "finish": "max_tokens", "usage": {"input_tokens": 7, "output_tokens": 3}, "chunk_delay_ms": 30},
    ]}));
    let started = Instant::now();
    let events = answer(&provider, vec![user("x")]).await;
    assert!(started.elapsed() >= Duration::from_millis(90));
    let usage = Usage { input_tokens: 7, output_tokens: 3, ..Usage::default() };
    assert_eq!(non_text(&events), vec![ProviderEvent::Usage(usage), ProviderEvent::Finish(FinishReason::MaxTokens)]);
    let refusal = script(json!({"turns": [{"text": "no", "finish": "refusal"}]}));
    let events = answer(&refusal, vec![user("x")]).await;
    assert_eq!(events.last(), Some(&ProviderEvent::Finish(FinishReason::Refusal)));
}

#[tokio::test]
async fn the_demo_explains_itself() {
    let provider = ScriptedProvider::demo();
    let text = text_of(&answer(&provider, vec![user("hello")]).await);
    assert!(text.contains("scripted demo provider") && text.contains("ANTHROPIC_API_KEY"), "{text}");
    let text = text_of(&answer(&provider, vec![user("hello"), assistant("x"), user("more")]).await);
    assert!(text.contains("RATCHET_SCRIPT"), "{text}");
}

#[test]
fn bad_script_files_name_the_file_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.json");
    let err = ScriptedProvider::from_file(&missing).err().unwrap();
    assert!(
        matches!(&err, ProviderError::Config(m) if m.contains("nope.json") && m.contains("RATCHET_SCRIPT")),
        "{err}"
    );

    let invalid = dir.path().join("bad.json");
    std::fs::write(&invalid, r#"{"turns": [{"txet": "typo"}]}"#).unwrap();
    let err = ScriptedProvider::from_file(&invalid).err().unwrap();
    let message = err.to_string();
    assert!(message.contains("bad.json") && message.contains("txet"), "{message}");

    let empty = dir.path().join("empty.json");
    std::fs::write(&empty, r#"{"turns": []}"#).unwrap();
    let message = ScriptedProvider::from_file(&empty).err().unwrap().to_string();
    assert!(message.contains("empty.json") && message.contains("no turns"), "{message}");

    let good = dir.path().join("good.json");
    std::fs::write(&good, r#"{"turns": [{"text": "hi"}]}"#).unwrap();
    assert!(ScriptedProvider::from_file(&good).is_ok());
}
