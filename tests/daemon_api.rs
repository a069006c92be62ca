//! The daemon's control API end to end: `server::serve` in this process on a temporary Unix
//! socket, an engine with the offline `scripted` provider, and real `Client`s / `RemoteEngine`s.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use ratchet::daemon::client::{Client, ClientError, RemoteEngine};
use ratchet::daemon::protocol::{self, Health};
use ratchet::daemon::server::{self, DaemonInfo, ServerControl};
use ratchet::engine::config::{ConfigFile, EngineConfig, EnvSnapshot};
use ratchet::engine::store::MessageStatus;
use ratchet::engine::tools::{CommandRequest, Host, NoHost, TerminalRun};
use ratchet::engine::{
    ChatEvent, ContentPart, Engine, EngineApi, EngineError, ListQuery, LiveEvent, PermissionAnswer, ProviderSpec, Role,
    StopReason,
};
use tokio_util::sync::CancellationToken;

mod common;
use common::{drain, text_of};

const WAIT: Duration = Duration::from_secs(20);

/// A daemon serving in this process.
struct Daemon {
    dir: tempfile::TempDir,
    socket: PathBuf,
    control: ServerControl,
    served: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Daemon {
    async fn start(script: &str) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let script_path = dir.path().join("script.json");
        std::fs::write(&script_path, script).unwrap();
        let env = EnvSnapshot {
            ratchet_provider: Some("scripted".into()),
            ratchet_script: Some(script_path.to_string_lossy().into_owned()),
            ..Default::default()
        };
        let config = EngineConfig { home: dir.path().to_path_buf(), env, file: ConfigFile::default() };
        let engine = Engine::open(config).await.unwrap();
        let socket = dir.path().join("daemon.sock");
        let listener = tokio::net::UnixListener::bind(&socket).unwrap();
        let info = DaemonInfo {
            pid: std::process::id(),
            started_at_ms: 0,
            version: env!("CARGO_PKG_VERSION").into(),
            socket: socket.clone(),
        };
        let control = ServerControl::default();
        let served = tokio::spawn(server::serve(listener, engine, info, control.clone()));
        Daemon { dir, socket, control, served }
    }

    async fn client(&self) -> Client {
        within(Client::connect(&self.socket)).await.unwrap()
    }

    async fn engine(&self) -> RemoteEngine {
        self.client().await.into_engine()
    }

    fn cwd(&self) -> PathBuf {
        std::fs::canonicalize(self.dir.path()).unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.control.shutdown.cancel();
    }
}

async fn within<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, f).await.expect("timed out")
}

fn prompt(text: &str) -> Vec<ContentPart> {
    vec![ContentPart::text(text)]
}

#[tokio::test]
async fn health_reports_version_and_protocol() {
    let d = Daemon::start(r#"{"turns":[{"text":"x"}]}"#).await;
    let Health { version, protocol, pid, socket, running_turns, .. } = within(d.client().await.health()).await.unwrap();
    assert_eq!(
        (version.as_str(), protocol, pid),
        (env!("CARGO_PKG_VERSION"), protocol::PROTOCOL_VERSION, std::process::id())
    );
    assert_eq!((socket, running_turns), (d.socket.clone(), 0));
}

#[tokio::test]
async fn sessions_are_created_listed_and_streamed_with_engine_errors_intact() {
    let d = Daemon::start(r#"{"turns":[{"text":"hello from the daemon","chunk_delay_ms":5}]}"#).await;
    let e = d.engine().await;
    let s = within(e.create_session(d.cwd(), vec![], vec![])).await.unwrap();
    let page = within(e.list_sessions(ListQuery { cwd: Some(d.cwd()), cursor: None, limit: 10, top_level: false }))
        .await
        .unwrap();
    assert_eq!(page.sessions.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), vec![s.id.as_str()]);
    assert!(within(e.history(s.id.clone())).await.unwrap().is_empty());

    let turn = within(e.send_message(s.id.clone(), prompt("hi"), Arc::new(NoHost))).await.unwrap();
    let busy = within(e.send_message(s.id.clone(), prompt("again"), Arc::new(NoHost))).await;
    assert!(matches!(busy, Err(EngineError::Busy(_))), "{:?}", busy.err());
    let events = drain(turn.events).await;
    assert_eq!(text_of(&events), "hello from the daemon");
    assert_eq!(events.last(), Some(&ChatEvent::Complete { stop: StopReason::EndTurn }));

    let history = within(e.history(s.id.clone())).await.unwrap();
    assert_eq!(history.iter().map(|m| m.role).collect::<Vec<_>>(), vec![Role::User, Role::Assistant]);
    assert!(matches!(within(e.session("nope".into())).await, Err(EngineError::NotFound(id)) if id == "nope"));
    assert!(matches!(
        within(e.send_message("nope".into(), prompt("x"), Arc::new(NoHost))).await,
        Err(EngineError::NotOpen(_))
    ));
    assert!(matches!(within(e.set_mode(s.id.clone(), "wild".into())).await, Err(EngineError::UnknownMode(_))));
}

/// An editor with an unsaved buffer.
struct BufferHost {
    calls: Mutex<Vec<PathBuf>>,
}

impl Host for BufferHost {
    fn can_read(&self) -> bool {
        true
    }
    fn can_write(&self) -> bool {
        false
    }
    fn can_run(&self) -> bool {
        false
    }
    fn read_text_file(&self, path: PathBuf, _: Option<u32>, _: Option<u32>) -> BoxFuture<'_, Result<String, String>> {
        self.calls.lock().unwrap().push(path);
        Box::pin(async { Ok("unsaved editor text\n".to_string()) })
    }
    fn write_text_file(&self, _: PathBuf, _: String) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async { Err("not here".to_string()) })
    }
    fn run_command(&self, _: CommandRequest, _: CancellationToken) -> BoxFuture<'_, Result<TerminalRun, String>> {
        Box::pin(async { Err("not here".to_string()) })
    }
}

#[tokio::test]
async fn a_tool_reads_through_the_prompting_clients_editor() {
    let d = Daemon::start(
        r#"{"turns":[
            {"match":"read it","tool_calls":[{"name":"read_file","arguments":{"path":"a.txt"}}]},
            {"match":"disk text","text":"read the disk"},
            {"match":"unsaved editor text","text":"read the editor"}
        ]}"#,
    )
    .await;
    std::fs::write(d.dir.path().join("a.txt"), "disk text\n").unwrap();
    let e = d.engine().await;
    let s = within(e.create_session(d.cwd(), vec![], vec![])).await.unwrap();
    let host = Arc::new(BufferHost { calls: Mutex::default() });
    let events = drain(within(e.send_message(s.id, prompt("read it"), host.clone())).await.unwrap().events).await;
    assert_eq!(text_of(&events), "read the editor", "{events:?}");
    let output = events.iter().find_map(|e| match e {
        ChatEvent::ToolCallUpdated(c) => c.output.clone(),
        _ => None,
    });
    assert!(output.unwrap_or_default().contains("unsaved editor text"));
    assert_eq!(*host.calls.lock().unwrap(), vec![d.cwd().join("a.txt")]);
}

#[tokio::test]
async fn a_permission_question_is_answered_over_the_socket() {
    let d = Daemon::start(
        r#"{"turns":[
            {"match":"write it","tool_calls":[{"name":"write_file","arguments":{"path":"out.txt","content":"hi\n"}}]},
            {"text":"done"}
        ]}"#,
    )
    .await;
    let e = d.engine().await;
    let s = within(e.create_session(d.cwd(), vec![], vec![])).await.unwrap();
    let mut rx = within(e.send_message(s.id.clone(), prompt("write it"), Arc::new(NoHost))).await.unwrap().events;
    let mut asked = false;
    loop {
        match within(rx.recv()).await.expect("turn ended early") {
            ChatEvent::PermissionRequest(q) => {
                asked = true;
                assert!(within(e.answer_permission(s.id.clone(), q.request_id, PermissionAnswer::AllowOnce)).await);
            }
            ChatEvent::Complete { stop } => break assert_eq!(stop, StopReason::EndTurn),
            ChatEvent::Error { message, .. } => panic!("{message}"),
            _ => {}
        }
    }
    assert!(asked, "write_file asks in the default mode");
    assert_eq!(std::fs::read_to_string(d.dir.path().join("out.txt")).unwrap(), "hi\n");
}

#[tokio::test]
async fn a_second_client_sees_the_first_ones_turn_live_and_keeps_it_open() {
    let d = Daemon::start(r#"{"turns":[{"text":"shared answer","chunk_delay_ms":5}]}"#).await;
    let (a, b) = (d.engine().await, d.engine().await);
    let s = within(a.create_session(d.cwd(), vec![], vec![])).await.unwrap();
    within(b.open_session(s.id.clone(), d.cwd(), vec![], vec![])).await.unwrap();
    let mut live = within(b.subscribe(s.id.clone())).await.unwrap();

    let turn = within(a.send_message(s.id.clone(), prompt("hello B"), Arc::new(NoHost))).await.unwrap();
    drain(turn.events).await;
    let mut seen = Vec::new();
    loop {
        let ev = within(live.recv()).await.unwrap();
        assert_eq!(ev.turn, turn.turn, "events carry the starter's turn id");
        let done = matches!(ev.event, LiveEvent::Chat(ChatEvent::Complete { .. }));
        seen.push(ev.event);
        if done {
            break;
        }
    }
    assert_eq!(seen[0], LiveEvent::UserMessage(prompt("hello B")));
    let text: String = seen
        .iter()
        .filter_map(|e| match e {
            LiveEvent::Chat(ChatEvent::TextDelta(t)) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(text, "shared answer");

    // A closing its window leaves the session open for B; B's close is the last.
    within(a.close_session(s.id.clone())).await.unwrap();
    let turn = within(b.send_message(s.id.clone(), prompt("still open?"), Arc::new(NoHost)))
        .await
        .expect("B still has it open");
    drain(turn.events).await;
    within(b.close_session(s.id.clone())).await.unwrap();
    let closed = within(b.send_message(s.id.clone(), prompt("now?"), Arc::new(NoHost))).await;
    assert!(matches!(closed, Err(EngineError::NotOpen(_))), "{:?}", closed.err());
}

#[tokio::test]
async fn a_turn_outlives_its_disconnected_client() {
    let d = Daemon::start(r#"{"turns":[{"text":"one two three four five six","chunk_delay_ms":60}]}"#).await;
    let watcher = d.engine().await;
    let s = {
        let a = d.engine().await;
        let s = within(a.create_session(d.cwd(), vec![], vec![])).await.unwrap();
        let mut live = within(watcher.subscribe(s.id.clone())).await.unwrap();
        let mut rx = within(a.send_message(s.id.clone(), prompt("count"), Arc::new(NoHost))).await.unwrap().events;
        while !matches!(within(rx.recv()).await, Some(ChatEvent::TextDelta(_))) {}
        drop((rx, a)); // the window closes mid-turn
        loop {
            if let LiveEvent::Chat(ChatEvent::Complete { stop }) = within(live.recv()).await.unwrap().event {
                break assert_eq!(stop, StopReason::EndTurn);
            }
        }
        s
    };
    let history = within(watcher.history(s.id)).await.unwrap();
    let answer = history.iter().find(|m| m.role == Role::Assistant).expect("answer stored");
    assert_eq!(answer.status, MessageStatus::Complete);
    assert!(answer.content.contains(&ContentPart::text("one two three four five six")));
}

#[tokio::test]
async fn a_daemon_speaking_another_protocol_is_refused_clearly() {
    use jsonrpsee::RpcModule;
    use jsonrpsee::server::{Server, serve_with_graceful_shutdown, stop_channel};

    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("daemon.sock");
    let listener = tokio::net::UnixListener::bind(&socket).unwrap();
    let mut module = RpcModule::new(socket.clone());
    module
        .register_method(protocol::method::HEALTH, |_, socket, _| {
            let old = Health {
                version: "99.0.0".into(),
                protocol: 999,
                pid: 1,
                uptime_ms: 0,
                sessions: 0,
                running_turns: 0,
                socket: socket.clone(),
            };
            Ok::<_, jsonrpsee::types::ErrorObjectOwned>(old)
        })
        .unwrap();
    let (stop, handle) = stop_channel();
    let old_daemon = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let service = Server::builder().to_service_builder().build(module, stop.clone());
        let _ = serve_with_graceful_shutdown(stream, service, stop.shutdown()).await;
    });
    let Err(err) = within(Client::connect(&socket)).await else { panic!("connected to an incompatible daemon") };
    let message = err.to_string();
    assert!(matches!(err, ClientError::Incompatible(_)), "{err:?}");
    let want =
        format!("daemon speaks protocol 999 (ratchet 99.0.0), this ratchet speaks {}", protocol::PROTOCOL_VERSION);
    assert!(message.contains(&want) && message.contains("`ratchet daemon restart`"), "{message}");
    let _ = handle.stop();
    within(old_daemon).await.unwrap();
}

#[tokio::test]
async fn shutdown_stops_serving() {
    let mut d = Daemon::start(r#"{"turns":[{"text":"x"}]}"#).await;
    let client = d.client().await;
    within(client.shutdown()).await.unwrap();
    within(&mut d.served).await.unwrap().unwrap();
    assert!(d.control.shutdown.is_cancelled());
    let again = within(Client::connect(&d.socket)).await;
    assert!(
        matches!(again, Err(ClientError::NotRunning(ref home)) if Path::new(home) == d.dir.path()),
        "{:?}",
        again.err()
    );
}

/// Polls until `session` is no longer open in the daemon (a prompt answers `NotOpen`).
async fn until_closed(e: &RemoteEngine, session: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match within(e.send_message(session.to_string(), prompt("open?"), Arc::new(NoHost))).await {
            Err(EngineError::NotOpen(_)) => return,
            Ok(turn) => drop(drain(turn.events).await),
            Err(EngineError::Busy(_)) => {}
            Err(other) => panic!("{other}"),
        }
        assert!(tokio::time::Instant::now() < deadline, "session {session} stayed open");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_dropped_connection_closes_the_sessions_only_it_had_open() {
    let d = Daemon::start(r#"{"turns":[{"text":"fine"}]}"#).await;
    let (a, b) = (d.engine().await, d.engine().await);
    let mine = within(a.create_session(d.cwd(), vec![], vec![])).await.unwrap();
    let shared = within(a.create_session(d.cwd(), vec![], vec![])).await.unwrap();
    within(b.open_session(shared.id.clone(), d.cwd(), vec![], vec![])).await.unwrap();
    drop(a); // the window closes without session/close

    until_closed(&b, &mine.id).await;
    let turn = within(b.send_message(shared.id.clone(), prompt("still yours?"), Arc::new(NoHost)))
        .await
        .expect("b still has it open");
    assert_eq!(text_of(&drain(turn.events).await), "fine");
    assert!(within(b.session(mine.id)).await.is_ok(), "closed, not deleted");
}

#[tokio::test]
async fn a_turn_left_by_a_dropped_connection_finishes_before_its_session_closes() {
    let d = Daemon::start(r#"{"turns":[{"text":"one two three four five six","chunk_delay_ms":60}]}"#).await;
    let watcher = d.engine().await;
    let a = d.engine().await;
    let s = within(a.create_session(d.cwd(), vec![], vec![])).await.unwrap();
    let mut live = within(watcher.subscribe(s.id.clone())).await.unwrap();
    let mut rx = within(a.send_message(s.id.clone(), prompt("count"), Arc::new(NoHost))).await.unwrap().events;
    while !matches!(within(rx.recv()).await, Some(ChatEvent::TextDelta(_))) {}
    drop((rx, a));
    loop {
        if let LiveEvent::Chat(ChatEvent::Complete { stop }) = within(live.recv()).await.unwrap().event {
            break assert_eq!(stop, StopReason::EndTurn, "the disconnect did not cancel the turn");
        }
    }
    until_closed(&watcher, &s.id).await;
    let history = within(watcher.history(s.id)).await.unwrap();
    let answer = history.iter().find(|m| m.role == Role::Assistant).expect("answer stored");
    assert_eq!(answer.status, MessageStatus::Complete);
}

#[tokio::test]
async fn providers_are_managed_over_the_control_api() {
    let d = Daemon::start(r#"{"turns":[{"text":"pong"}]}"#).await;
    let c = d.client().await;
    assert!(within(c.list_providers()).await.unwrap().is_empty());
    let spec = ProviderSpec { name: "demo".into(), kind: "scripted".into(), ..Default::default() };
    let added = within(c.add_provider(spec)).await.unwrap();
    assert_eq!((added.kind.as_str(), added.model.as_str(), added.is_default), ("scripted", "scripted-demo", false));
    assert!(within(c.set_default_provider("demo")).await.unwrap().is_default);
    assert_eq!(within(c.list_providers()).await.unwrap().iter().filter(|p| p.is_default).count(), 1);

    let t = within(c.test_provider("demo")).await.unwrap();
    assert!(t.ok && t.reply == "pong", "{t:?}");

    let bad = ProviderSpec { name: "x".into(), kind: "gemini".into(), ..Default::default() };
    let err = within(c.add_provider(bad)).await.unwrap_err();
    assert!(
        matches!(&err, ClientError::Engine(EngineError::InvalidProvider(m)) if m.contains("unknown provider kind \"gemini\"")),
        "{err:?}"
    );
    let err = within(c.test_provider("nope")).await.unwrap_err();
    assert!(matches!(&err, ClientError::Engine(EngineError::ProviderNotFound(n)) if n == "nope"), "{err:?}");
    assert!(within(c.remove_provider("demo")).await.unwrap().is_default);
    assert!(within(c.list_providers()).await.unwrap().is_empty());
}
