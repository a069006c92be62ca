//! Helpers shared by the library-level tests (`engine_api`, `engine_review`, `daemon_api`):
//! an engine on the offline scripted provider, and draining a turn's events.
#![allow(dead_code)]

use std::time::Duration;

use ratchet::engine::config::{ConfigFile, EngineConfig, EnvSnapshot};
use ratchet::engine::{ChatEvent, Engine};
use tokio::sync::mpsc::Receiver;

/// The longest a test waits for one turn.
pub const WAIT: Duration = Duration::from_secs(30);

/// An engine in `dir` whose provider replays `script` (the scripted provider's JSON format).
pub async fn scripted_engine(dir: &std::path::Path, script: &str) -> Engine {
    let script_path = dir.join("script.json");
    std::fs::write(&script_path, script).unwrap();
    let env = EnvSnapshot {
        ratchet_provider: Some("scripted".into()),
        ratchet_script: Some(script_path.to_string_lossy().into_owned()),
        ..Default::default()
    };
    let config = EngineConfig { home: dir.to_path_buf(), env, file: ConfigFile::default() };
    Engine::open(config).await.unwrap()
}

/// A turn's events up to and including `Complete` or `Error`.
pub async fn drain(mut rx: Receiver<ChatEvent>) -> Vec<ChatEvent> {
    let mut out = Vec::new();
    while let Some(e) = tokio::time::timeout(WAIT, rx.recv()).await.expect("turn hung") {
        let last = matches!(e, ChatEvent::Complete { .. } | ChatEvent::Error { .. });
        out.push(e);
        if last {
            break;
        }
    }
    out
}

/// The answer text of a turn's events.
pub fn text_of(events: &[ChatEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            ChatEvent::TextDelta(t) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}
