//! The official ACP Rust SDK (`agent-client-protocol` 5.0.0) as the client: if the SDK can
//! drive `ratchet acp` through its process transport, real SDK-based editors can too.

use agent_client_protocol::schema::ProtocolVersion;
use agent_client_protocol::v1::schema::{
    ContentBlock, ContentChunk, InitializeRequest, SessionNotification, SessionUpdate, StopReason,
};
use agent_client_protocol::v1::{ConnectionTo, SessionMessage, SessionSetup};
use agent_client_protocol::{AcpAgent, AcpAgentConfig, Agent, Client, JsonRpcMessage};

use crate::support::{TIMEOUT, TestEnv, ratchet_bin};

/// `ratchet acp` as an SDK process transport, with exactly the env's variables (the SDK
/// inherits the parent environment, so the command goes through `env -i`).
fn sdk_agent(env: &TestEnv) -> AcpAgent {
    let mut args: Vec<String> = vec!["-i".to_owned()];
    args.extend(env.vars().iter().map(|(k, v)| format!("{k}={v}")));
    args.push(ratchet_bin().to_owned());
    args.push("acp".to_owned());
    AcpAgent::new(AcpAgentConfig::new("/usr/bin/env").args(args))
}

/// The text of an agent message chunk, or `None` for any other session message.
fn agent_chunk_text(message: &SessionMessage) -> Option<String> {
    let SessionMessage::Message(dispatch) = message else {
        return None;
    };
    let untyped = dispatch.to_untyped_message().ok()?;
    let notification = SessionNotification::parse_message(untyped.method(), untyped.params()).ok()?;
    match notification.update {
        SessionUpdate::AgentMessageChunk(ContentChunk { content: ContentBlock::Text(text), .. }) => Some(text.text),
        _ => None,
    }
}

#[tokio::test]
async fn sdk_client_initializes_creates_a_session_and_gets_the_scripted_answer() {
    let env = TestEnv::scripted(&["hello from the script"]);
    let cwd = env.workspace();

    let run = Client.v1().connect_with(sdk_agent(&env), async move |cx: ConnectionTo<Agent>| {
        let init = cx.send_request(InitializeRequest::new(ProtocolVersion::V1)).block_task().await?;
        assert_eq!(init.protocol_version, ProtocolVersion::V1);
        assert!(init.agent_capabilities.load_session);
        let info = init.agent_info.expect("agentInfo");
        assert_eq!(info.name, "ratchet");

        cx.build_session(&cwd)
            .block_task()
            .run_until(async |SessionSetup { mut session, response, .. }| {
                assert!(!response.session_id.0.is_empty());
                session.send_prompt("Say something")?;
                let mut text = String::new();
                let stop_reason = loop {
                    let message = session.read_update().await?;
                    if let SessionMessage::PromptResponse(result) = message {
                        break result?.stop_reason;
                    }
                    if let Some(t) = agent_chunk_text(&message) {
                        text.push_str(&t);
                    }
                };
                Ok((text, stop_reason))
            })
            .await
    });
    let (text, stop_reason) = tokio::time::timeout(TIMEOUT, run)
        .await
        .expect("the SDK client session timed out")
        .expect("the SDK client failed");
    assert_eq!(text, "hello from the script");
    assert_eq!(stop_reason, StopReason::EndTurn);
}

#[tokio::test]
async fn sdk_client_loads_a_session_from_an_earlier_process_and_sees_the_replay() {
    let env = TestEnv::scripted(&["the stored answer"]);
    // First process: one turn with the raw client.
    let mut client = env.spawn_initialized().await;
    let session_id = client.new_session(&env.cwd()).await;
    let turn = client.prompt_text(&session_id, "Remember this").await;
    assert_eq!(turn.stop_reason(), "end_turn");
    assert_eq!(turn.text(), "the stored answer");
    client.shutdown().await;

    // Second process, through the SDK: session/load replays the answer before responding.
    let cwd = env.workspace();
    let sid = session_id.clone();
    let run = Client.v1().connect_with(sdk_agent(&env), async move |cx: ConnectionTo<Agent>| {
        cx.send_request(InitializeRequest::new(ProtocolVersion::V1)).block_task().await?;
        let SessionSetup { mut session, .. } = cx.load_session(sid, &cwd).block_task().start_session().await?;
        let mut replayed = String::new();
        while !replayed.contains("the stored answer") {
            let message = session.read_update().await?;
            if let Some(t) = agent_chunk_text(&message) {
                replayed.push_str(&t);
            }
        }
        Ok(replayed)
    });
    let replayed = tokio::time::timeout(TIMEOUT, run)
        .await
        .expect("the SDK client session timed out")
        .expect("the SDK client failed");
    assert_eq!(replayed, "the stored answer");
}
