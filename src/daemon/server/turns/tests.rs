//! A turn whose subscriber is gone: its permission question waits in the question queue
//! (answered from the CLI), and only a configured timeout ends the wait, as a rejection.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Pump;
use crate::daemon::protocol::HostCaps;
use crate::daemon::server::State;
use crate::daemon::server::remote_host::RemoteHost;
use crate::engine::config::{ConfigFile, EngineConfig, EnvSnapshot};
use crate::engine::{ChatEvent, ContentPart, Engine, EngineApi, LiveEvent, StopReason};
use crate::orchestra::questions::{Answer, AnsweredBy, QuestionKind};

async fn engine(dir: &std::path::Path, script: &str) -> Engine {
    let script_path = dir.join("script.json");
    std::fs::write(&script_path, script).unwrap();
    let env = EnvSnapshot {
        ratchet_provider: Some("scripted".into()),
        ratchet_script: Some(script_path.to_string_lossy().into_owned()),
        ..Default::default()
    };
    Engine::open(EngineConfig { home: dir.to_path_buf(), env, file: ConfigFile::default() }).await.unwrap()
}

const SCRIPT: &str = r#"{"turns":[{"tool_calls":[{"name":"write_file","arguments":{"path":"out.txt","content":"x"}}]},{"text":"after"}]}"#;

/// Runs a turn that asks to write a file with no subscriber; `answer` plays the person.
async fn detached_write(
    question_timeout: Option<Duration>,
    answer: impl AsyncFnOnce(&Arc<State>, String),
) -> (tempfile::TempDir, StopReason, bool) {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path(), SCRIPT).await;
    let state = State::for_tests(engine.clone(), question_timeout);
    let session = engine.create_session(dir.path().to_path_buf(), vec![]).await.unwrap();
    let mut live = EngineApi::subscribe(&engine, session.id.clone()).await.unwrap();

    let (items_tx, items_rx) = mpsc::channel(1);
    let detached = CancellationToken::new();
    let host = Arc::new(RemoteHost::new(HostCaps::default(), state.host_calls.clone(), items_tx, detached.clone()));
    let turn =
        EngineApi::send_message(&engine, session.id.clone(), vec![ContentPart::text("write")], host).await.unwrap();
    let pump = Pump {
        state: state.clone(),
        session: session.id.clone(),
        detached: detached.clone(),
        asked: Vec::new(),
        waiting: Default::default(),
    };
    // No sink: the subscriber left before the turn was even confirmed.
    let pumped = tokio::spawn(pump.run(turn, items_rx, None));
    answer(&state, session.id.clone()).await;
    tokio::time::timeout(Duration::from_secs(20), pumped).await.expect("the turn hung").unwrap();
    assert!(detached.is_cancelled());

    let mut asked = false;
    let stop = loop {
        match tokio::time::timeout(Duration::from_secs(5), live.recv()).await.unwrap().unwrap().event {
            LiveEvent::Chat(ChatEvent::PermissionRequest(_)) => asked = true,
            LiveEvent::Chat(ChatEvent::Complete { stop }) => break stop,
            _ => {}
        }
    };
    let left_open = !state.questions.list(true).await.unwrap().is_empty();
    engine.shutdown().await;
    assert!(asked);
    (dir, stop, left_open)
}

/// Waits until the session's permission question is in the queue; returns its id.
async fn queued(state: &Arc<State>, session: &str) -> String {
    for _ in 0..200 {
        let open = state.questions.list(true).await.unwrap();
        if let Some(q) = open.iter().find(|q| q.kind == QuestionKind::Permission && q.session_id == session) {
            assert_eq!(q.body["tool"], "write_file", "{q:?}");
            return q.id.clone();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the detached turn's question never reached the queue");
}

#[tokio::test]
async fn a_detached_turns_question_waits_in_the_queue_until_answered_from_the_cli() {
    let (dir, stop, left_open) = detached_write(None, async |state, session| {
        let id = queued(state, &session).await;
        // Longer than the old 30-second-style timeout would allow in a test: it still waits.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(!dir_has_out(state), "nothing ran before the answer");
        assert!(state.questions.answer(&id, Answer::Approve { skip: vec![] }, AnsweredBy::Cli).await.unwrap());
    })
    .await;
    assert_eq!(stop, StopReason::EndTurn);
    assert!(dir.path().join("out.txt").exists(), "the approved write ran");
    assert!(!left_open, "nothing is left in the queue");
}

#[tokio::test]
async fn a_configured_timeout_answers_no_and_never_allow() {
    let (dir, stop, left_open) = detached_write(Some(Duration::from_millis(300)), async |state, session| {
        queued(state, &session).await;
    })
    .await;
    assert_eq!(stop, StopReason::EndTurn, "the model is told the call was rejected and answers");
    assert!(!dir.path().join("out.txt").exists(), "the unanswered write never ran");
    assert!(!left_open);
}

fn dir_has_out(state: &Arc<State>) -> bool {
    state.engine.config().home.join("out.txt").exists()
}
