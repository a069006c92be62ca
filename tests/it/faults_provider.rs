//! Faults at the provider (issue 11, hardening §3):
//!
//! - the provider breaks the connection off mid-stream: the prompt fails with a clear
//!   provider error, and what had streamed is kept in the history (replayed by
//!   `session/load`, resent to the model); the session works again at once;
//! - the provider hangs mid-stream: after `RATCHET_PROVIDER_TIMEOUT_SECS` (or the config's
//!   `provider_timeout_secs`) of silence the prompt fails saying the stream went silent and
//!   which setting to raise; the partial answer is kept.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{MockLlm, MockReply, TestEnv, agent_text, tr, transcript};

/// Every wire format: the break is seen by each decoder.
fn envs(mock: &MockLlm) -> Vec<(&'static str, TestEnv)> {
    vec![("openai", TestEnv::openai(mock)), ("anthropic", TestEnv::anthropic(mock)), ("ollama", TestEnv::ollama(mock))]
}

#[tokio::test]
async fn a_provider_breaking_the_connection_mid_stream_fails_clearly_and_keeps_the_partial_answer() {
    let mock = MockLlm::start().await;
    for (name, env) in envs(&mock) {
        let mut client = env.spawn_initialized().await;
        let session = client.new_session(&env.cwd()).await;
        mock.enqueue(MockReply::text(["Half ", "an ", "answer", " never sent"]).drop_after(3));
        let turn = client.prompt_text(&session, "Tell me").await;
        assert_eq!(turn.text(), "Half an answer", "{name}: the streamed part reached the editor");
        let error = turn.error();
        assert_eq!(error.code, -32603, "{name}: {error}");
        let data = error.data.clone().unwrap_or_default();
        assert_eq!(data["kind"], "provider", "{name}: {error}");
        let text = error.full_text();
        assert!(text.contains(name), "{name}: the error names the provider: {text}");
        assert!(text.contains("broke off") && text.contains("try again"), "{name}: {text}");

        // The session works at once, and the model sees the partial answer.
        mock.enqueue(MockReply::text(["Whole."]));
        assert_eq!(client.prompt_text(&session, "Again").await.text(), "Whole.", "{name}");
        let conversation = mock.last_model_request().conversation();
        assert!(
            conversation.contains(&("assistant".to_owned(), "Half an answer".to_owned())),
            "{name}: the partial answer is in the history sent to the model: {conversation:?}"
        );
        client.shutdown().await;

        // Another process replays it.
        let mut replay = env.spawn_initialized().await;
        let (updates, result) = replay
            .request_collect("session/load", json!({"sessionId": session, "cwd": env.cwd(), "mcpServers": []}))
            .await;
        result.unwrap_or_else(|e| panic!("{name}: session/load failed: {e}"));
        assert_eq!(
            transcript(&updates),
            tr(&[("user", "Tell me"), ("agent", "Half an answer"), ("user", "Again"), ("agent", "Whole.")]),
            "{name}"
        );
        replay.shutdown().await;
    }
}

/// How long the hanging provider may stay silent in this test.
const STALL_TIMEOUT_SECS: u64 = 1;

#[tokio::test]
async fn a_hanging_provider_times_out_after_the_configured_silence_with_a_clear_error() {
    let mock = MockLlm::start().await;
    let mut env = TestEnv::openai(&mock);
    env.set("RATCHET_PROVIDER_TIMEOUT_SECS", STALL_TIMEOUT_SECS.to_string());
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;
    mock.enqueue(MockReply::text(["Thinking ", "for ever"]).stall_after(1));
    let started = Instant::now();
    let turn = client.prompt_text(&session, "Hang").await;
    let took = started.elapsed();
    assert_eq!(agent_text(&turn.updates), "Thinking ");
    let error = turn.error();
    let text = error.full_text();
    assert_eq!(error.data.clone().unwrap_or_default()["kind"], "provider", "{error}");
    assert!(text.contains("silent") && text.contains("RATCHET_PROVIDER_TIMEOUT_SECS"), "{text}");
    assert!(took >= Duration::from_secs(STALL_TIMEOUT_SECS), "not before the timeout: {took:?}");
    mock.wait_for_aborted_streams(1).await;

    // The partial answer is kept; the session answers again.
    mock.enqueue(MockReply::text(["Awake."]));
    assert_eq!(client.prompt_text(&session, "Still there?").await.text(), "Awake.");
    let conversation = mock.last_model_request().conversation();
    assert!(conversation.contains(&("assistant".to_owned(), "Thinking ".to_owned())), "{conversation:?}");
    client.shutdown().await;
}

#[tokio::test]
async fn the_provider_timeout_can_be_set_in_the_config_file() {
    let mock = MockLlm::start().await;
    let env = TestEnv::anthropic(&mock);
    env.write_config(&format!("provider_timeout_secs = {STALL_TIMEOUT_SECS}\n"));
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;
    mock.enqueue(MockReply::text(["Never ", "more"]).stall_after(1));
    let turn = client.prompt_text(&session, "Hang").await;
    let text = turn.error().full_text();
    assert!(text.contains("silent") && text.contains("provider_timeout_secs"), "{text}");
    client.shutdown().await;
}
