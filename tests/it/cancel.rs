//! `session/cancel` (protocol §13): a cancelled turn answers `cancelled` (never an error),
//! keeps what was streamed, aborts the model request, and leaves the session usable; a
//! stale cancel does not leak into the next turn.

use serde_json::json;

use crate::support::{MockLlm, MockReply, TestEnv, agent_text, tr, transcript};

/// Starts a prompt whose answer stalls after "Partial answer " and waits until that text
/// has arrived. Returns the prompt's request id.
async fn start_stalled_turn(
    client: &mut crate::support::AcpClient,
    mock: &MockLlm,
    session: &str,
    prompt: &str,
) -> u64 {
    mock.enqueue(MockReply::text(["Partial ", "answer ", "NEVER-SENT"]).stall_after(2));
    let id = client
        .send_request("session/prompt", json!({"sessionId": session, "prompt": [{"type": "text", "text": prompt}]}))
        .await;
    client.wait_for_agent_text(session, "Partial answer").await;
    id
}

#[tokio::test]
async fn cancel_mid_stream_ends_with_cancelled_and_keeps_partial_answer() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;

    let id = start_stalled_turn(&mut client, &mock, &session, "Tell me a long story").await;
    client.cancel(&session).await;
    let turn = client.finish_turn(id).await;
    assert_eq!(
        turn.outcome,
        Ok("cancelled".to_owned()),
        "a cancelled turn answers stopReason cancelled, never an error"
    );
    assert!(!agent_text(&turn.updates).contains("NEVER-SENT"));
    drop(client);

    // The partial answer is part of the stored history.
    let mut client = env.spawn_initialized().await;
    let (replay, result) =
        client.request_collect("session/load", json!({"sessionId": session, "cwd": env.cwd(), "mcpServers": []})).await;
    result.expect("session/load");
    let got = transcript(&replay);
    assert_eq!(got.len(), 2, "user message and partial answer: {got:#?}");
    assert_eq!(got[0], tr(&[("user", "Tell me a long story")])[0]);
    assert_eq!(got[1].0, "agent_message_chunk");
    assert_eq!(got[1].1.trim_end(), "Partial answer", "{got:#?}");
}

#[tokio::test]
async fn cancel_aborts_the_in_flight_model_request() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;
    let id = start_stalled_turn(&mut client, &mock, &session, "Go").await;
    client.cancel(&session).await;
    let turn = client.finish_turn(id).await;
    assert_eq!(turn.stop_reason(), "cancelled");
    // The HTTP response stream is dropped by the agent (the mock sees the client go away).
    mock.wait_for_aborted_streams(1).await;
}

#[tokio::test]
async fn session_stays_usable_after_cancel() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;
    let id = start_stalled_turn(&mut client, &mock, &session, "First question").await;
    client.cancel(&session).await;
    assert_eq!(client.finish_turn(id).await.stop_reason(), "cancelled");

    mock.enqueue(MockReply::text(["Fresh ", "answer."]));
    let turn = client.prompt_text(&session, "Second question").await;
    assert_eq!(turn.stop_reason(), "end_turn");
    assert_eq!(turn.text(), "Fresh answer.");

    // The follow-up request carries the cancelled exchange (with the partial answer) as history.
    let conversation = mock.last_model_request().conversation();
    let roles: Vec<&str> = conversation.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(roles, ["user", "assistant", "user"], "{conversation:#?}");
    assert!(conversation[0].1.contains("First question"));
    assert_eq!(conversation[1].1.trim_end(), "Partial answer");
    assert!(conversation[2].1.contains("Second question"));
}

#[tokio::test]
async fn stale_cancel_does_not_cancel_the_next_prompt() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;

    // No turn is running: the cancel must be ignored.
    client.cancel(&session).await;
    mock.enqueue(MockReply::text(["Complete ", "answer."]));
    let turn = client.prompt_text(&session, "Question").await;
    assert_eq!(turn.stop_reason(), "end_turn");
    assert_eq!(turn.text(), "Complete answer.");

    // Same after a finished turn.
    client.cancel(&session).await;
    mock.enqueue(MockReply::text(["Another ", "complete answer."]));
    let turn = client.prompt_text(&session, "Question 2").await;
    assert_eq!(turn.stop_reason(), "end_turn");
    assert_eq!(turn.text(), "Another complete answer.");
}

#[tokio::test]
async fn cancel_of_an_unknown_session_is_ignored_silently() {
    let env = TestEnv::scripted(&["fine"]);
    let mut client = env.spawn_initialized().await;
    client.cancel("no-such-session").await;
    // A notification never gets a reply: the next line is the answer to this request.
    let id = client.send_request("session/list", json!({})).await;
    match client.next_message().await {
        crate::support::Message::Response { id: rid, outcome } => {
            assert_eq!(rid, json!(id));
            outcome.expect("session/list");
        }
        other => panic!("expected the session/list response, got {other:?}"),
    }
}

#[tokio::test]
async fn cancel_only_affects_its_own_session() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let mut client = env.spawn_initialized().await;
    let a = client.new_session(&env.cwd()).await;
    let b = client.new_session(&env.cwd()).await;
    let id_a = start_stalled_turn(&mut client, &mock, &a, "in A").await;
    client.cancel(&b).await;
    mock.enqueue(MockReply::text(["B is fine."]));
    let turn_b = client.prompt_text(&b, "in B").await;
    assert_eq!(turn_b.stop_reason(), "end_turn");
    client.cancel(&a).await;
    assert_eq!(client.finish_turn(id_a).await.stop_reason(), "cancelled");
}

#[tokio::test]
async fn close_during_a_turn_ends_it_with_cancelled() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;
    let id = start_stalled_turn(&mut client, &mock, &session, "Go").await;
    let close = client.send_request("session/close", json!({"sessionId": session})).await;
    let turn = client.finish_turn(id).await;
    assert_eq!(turn.stop_reason(), "cancelled");
    let (_, result) = client.wait_response(close).await;
    assert_eq!(result.expect("session/close"), json!({}));
}

#[tokio::test]
async fn cancel_before_the_first_token_ends_with_cancelled_and_keeps_the_user_message() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;
    mock.enqueue(MockReply::text(["never"]).stall_after(0));
    let id = client
        .send_request(
            "session/prompt",
            json!({"sessionId": session, "prompt": [{"type": "text", "text": "Think hard"}]}),
        )
        .await;
    mock.wait_for_requests(1).await;
    client.cancel(&session).await;
    let turn = client.finish_turn(id).await;
    assert_eq!(turn.outcome, Ok("cancelled".to_owned()));
    assert_eq!(turn.text(), "");

    let (replay, result) =
        client.request_collect("session/load", json!({"sessionId": session, "cwd": env.cwd(), "mcpServers": []})).await;
    result.expect("session/load");
    assert_eq!(transcript(&replay).first(), tr(&[("user", "Think hard")]).first());
}

#[tokio::test]
async fn cancel_while_the_provider_request_is_being_retried_ends_with_cancelled() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;
    // Every attempt fails with 503, so the agent sits in its retry loop.
    for _ in 0..10 {
        mock.enqueue(MockReply::error(503));
    }
    let id = client
        .send_request("session/prompt", json!({"sessionId": session, "prompt": [{"type": "text", "text": "Hello"}]}))
        .await;
    mock.wait_for_requests(1).await;
    client.cancel(&session).await;
    let turn = client.finish_turn(id).await;
    assert_eq!(
        turn.outcome,
        Ok("cancelled".to_owned()),
        "a cancel during retries is still a cancellation, not an error"
    );
}
