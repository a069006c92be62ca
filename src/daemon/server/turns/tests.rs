//! A turn whose subscriber is gone: its permission question times out as `Cancelled`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Pump;
use crate::daemon::protocol::HostCaps;
use crate::daemon::server::State;
use crate::daemon::server::remote_host::RemoteHost;
use crate::engine::config::{ConfigFile, EngineConfig, EnvSnapshot};
use crate::engine::{ChatEvent, ContentPart, Engine, EngineApi, LiveEvent, StopReason};

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

/// Stands in for [`super::DETACHED_PERMISSION_TIMEOUT`].
const TIMEOUT: Duration = Duration::from_millis(300);

#[tokio::test]
async fn a_detached_turns_question_is_cancelled_after_the_timeout_and_the_turn_ends() {
    let dir = tempfile::tempdir().unwrap();
    let script = r#"{"turns":[{"tool_calls":[{"name":"write_file","arguments":{"path":"out.txt","content":"x"}}]},{"text":"after"}]}"#;
    let engine = engine(dir.path(), script).await;
    let state = State::for_tests(engine.clone(), TIMEOUT);
    let session = engine.create_session(dir.path().to_path_buf(), vec![]).await.unwrap();
    let mut live = EngineApi::subscribe(&engine, session.id.clone()).await.unwrap();

    let (items_tx, items_rx) = mpsc::channel(1);
    let detached = CancellationToken::new();
    let host = Arc::new(RemoteHost::new(HostCaps::default(), state.host_calls.clone(), items_tx, detached.clone()));
    let turn =
        EngineApi::send_message(&engine, session.id.clone(), vec![ContentPart::text("write")], host).await.unwrap();
    let pump = Pump {
        state,
        session: session.id.clone(),
        detached: detached.clone(),
        asked: Vec::new(),
        timers: Default::default(),
    };
    let began = Instant::now();
    // No sink: the subscriber left before the turn was even confirmed.
    tokio::time::timeout(Duration::from_secs(20), pump.run(turn, items_rx, None)).await.expect("the turn hung");
    assert!(began.elapsed() >= TIMEOUT, "answered after {:?}", began.elapsed());
    assert!(detached.is_cancelled());

    let mut asked = false;
    let stop = loop {
        match tokio::time::timeout(Duration::from_secs(5), live.recv()).await.unwrap().unwrap().event {
            LiveEvent::Chat(ChatEvent::PermissionRequest(_)) => asked = true,
            LiveEvent::Chat(ChatEvent::Complete { stop }) => break stop,
            _ => {}
        }
    };
    assert!(asked);
    assert_eq!(stop, StopReason::Cancelled);
    assert!(!dir.path().join("out.txt").exists(), "the unanswered write never ran");
    engine.shutdown().await;
}
