//! Prompt turns: conversation history sent to the model, content blocks, and what happens
//! when a session or another session is busy.

use serde_json::json;

use crate::providers::{Wire, env_for};
use crate::support::{MockLlm, MockReply, TestEnv, within};

async fn second_prompt_sends_the_first_exchange_as_history(wire: Wire) {
    let mock = MockLlm::start().await;
    let env = env_for(wire, &mock);
    mock.enqueue(MockReply::text(["The capital ", "is Paris."]).thinking(["Easy."]));
    mock.enqueue(MockReply::text(["About 2.1 million."]));
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;

    let first = "What is the capital of France?";
    let second = "How many people live there?";
    let turn = client.prompt_text(&session, first).await;
    assert_eq!(turn.stop_reason(), "end_turn");
    let turn = client.prompt_text(&session, second).await;
    assert_eq!(turn.stop_reason(), "end_turn");
    assert_eq!(turn.text(), "About 2.1 million.");

    let requests = mock.model_requests();
    assert_eq!(requests.len(), 2);
    let conversation = requests[1].conversation();
    let roles: Vec<&str> = conversation.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(
        roles,
        ["user", "assistant", "user"],
        "second request: {conversation:#?}\nbody: {}",
        requests[1].raw_body
    );
    assert!(conversation[0].1.contains(first), "{conversation:#?}");
    assert_eq!(conversation[1].1.trim(), "The capital is Paris.", "{conversation:#?}");
    assert!(conversation[2].1.contains(second), "{conversation:#?}");
}

#[tokio::test]
async fn openai_second_prompt_sends_the_first_exchange_as_history() {
    second_prompt_sends_the_first_exchange_as_history(Wire::OpenAi).await;
}

#[tokio::test]
async fn anthropic_second_prompt_sends_the_first_exchange_as_history() {
    second_prompt_sends_the_first_exchange_as_history(Wire::Anthropic).await;
}

#[tokio::test]
async fn ollama_second_prompt_sends_the_first_exchange_as_history() {
    second_prompt_sends_the_first_exchange_as_history(Wire::Ollama).await;
}

#[tokio::test]
async fn sessions_keep_separate_histories() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let mut client = env.spawn_initialized().await;
    let a = client.new_session(&env.cwd()).await;
    let b = client.new_session(&env.cwd()).await;
    mock.enqueue(MockReply::text(["Answer in A."]));
    assert_eq!(client.prompt_text(&a, "Question in A").await.stop_reason(), "end_turn");
    mock.enqueue(MockReply::text(["Answer in B."]));
    assert_eq!(client.prompt_text(&b, "Question in B").await.stop_reason(), "end_turn");
    let conversation = mock.last_model_request().conversation();
    assert_eq!(conversation.len(), 1, "session B must not see A's history: {conversation:#?}");
    assert!(conversation[0].1.contains("Question in B"));
}

#[tokio::test]
async fn prompt_accepts_resource_link_embedded_resource_and_image_blocks() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;
    let file = env.workspace().join("notes.md");
    std::fs::write(&file, "# Notes\nremember the milk\n").unwrap();
    let file_uri = format!("file://{}", file.display());
    // A 1x1 transparent PNG.
    let png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=";
    let turn = client
        .prompt(
            &session,
            json!([
                {"type": "text", "text": "Summarise these."},
                {"type": "resource_link", "uri": file_uri, "name": "notes.md", "mimeType": "text/markdown"},
                {"type": "resource", "resource": {"uri": "file:///virtual/spec.txt", "mimeType": "text/plain",
                                                  "text": "EMBEDDED-SPEC-TEXT-42"}},
                {"type": "image", "mimeType": "image/png", "data": png},
            ]),
        )
        .await;
    assert_eq!(turn.stop_reason(), "end_turn");
    let body = mock.last_model_request().raw_body;
    assert!(body.contains("Summarise these."), "{body}");
    assert!(body.contains("EMBEDDED-SPEC-TEXT-42"), "embedded resource text must reach the model: {body}");
    assert!(body.contains("notes.md"), "the resource link must reach the model: {body}");
    assert!(body.contains(png), "the image data must reach the model: {body}");
}

#[tokio::test]
async fn second_prompt_while_a_turn_is_running_is_rejected_not_hung() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    mock.enqueue(MockReply::text(["Working ", "on it", " forever"]).stall_after(2));
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;

    let first = client
        .send_request(
            "session/prompt",
            json!({"sessionId": session, "prompt": [{"type": "text", "text": "long task"}]}),
        )
        .await;
    client.wait_for_agent_text(&session, "Working on it").await;

    let second = client
        .send_request(
            "session/prompt",
            json!({"sessionId": session, "prompt": [{"type": "text", "text": "are you done?"}]}),
        )
        .await;
    let (_, outcome) = client.wait_response(second).await;
    let err = outcome.expect_err("a second prompt on a busy session must be rejected");
    assert!(!err.message.is_empty());

    // The first turn is unaffected and can still be cancelled normally.
    client.cancel(&session).await;
    let turn = client.finish_turn(first).await;
    assert_eq!(turn.stop_reason(), "cancelled");
}

#[tokio::test]
async fn a_running_turn_does_not_block_another_session() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    mock.enqueue(MockReply::text(["Slow ", "answer", " never ends"]).stall_after(2));
    let mut client = env.spawn_initialized().await;
    let slow = client.new_session(&env.cwd()).await;
    let fast = client.new_session(&env.cwd()).await;

    let slow_id = client
        .send_request("session/prompt", json!({"sessionId": slow, "prompt": [{"type": "text", "text": "slow one"}]}))
        .await;
    client.wait_for_agent_text(&slow, "Slow answer").await;

    mock.enqueue(MockReply::text(["Quick answer."]));
    let turn = within("the other session's prompt", client.prompt_text(&fast, "fast one")).await;
    assert_eq!(turn.stop_reason(), "end_turn");
    let fast_text: String = turn
        .updates
        .iter()
        .filter(|u| u["sessionId"] == fast.as_str())
        .filter(|u| crate::support::update_kind(u) == "agent_message_chunk")
        .filter_map(|u| u["update"]["content"]["text"].as_str())
        .collect();
    assert_eq!(fast_text, "Quick answer.");

    client.cancel(&slow).await;
    let turn = client.finish_turn(slow_id).await;
    assert_eq!(turn.stop_reason(), "cancelled");
}
