//! Serves the control API ([`protocol`](super::protocol)) on the daemon's Unix socket.
//!
//! Each connection is HTTP upgraded to a WebSocket by jsonrpsee's tower service, run by
//! [`serve_with_graceful_shutdown`] on the accepted `UnixStream` (jsonrpsee binds only TCP
//! itself). Before that, the peer's uid (SO_PEERCRED) must equal the daemon's: the socket file
//! is mode 0600 already, this is the second lock on the door.
//!
//! Submodules: `methods` (request/response methods), `turns` (the `turn.send` and
//! `session.subscribe` subscriptions), `remote_host` (the engine's `Host` for a turn, answered
//! by the prompting client with `turn.host_reply`), `holders` (which connection has which
//! session open; closing what a connection leaves open when it ends), `engine_error` (engine
//! errors on the wire, for methods and subscriptions alike).
//!
//! Each connection gets its own [`ConnectionId`] here (so methods and the end-of-connection
//! hook agree on it); the end is the WebSocket's close, not the HTTP upgrade's.

mod engine_error;
mod holders;
mod methods;
mod remote_host;
mod turns;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonrpsee::ConnectionId;
use jsonrpsee::server::{Server, ServerConfig, serve_with_graceful_shutdown, stop_channel};
use tokio::net::{UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::protocol::MAX_MESSAGE_BYTES;
use crate::engine::Engine;

/// Who the daemon is, for `daemon.health`.
#[derive(Debug, Clone)]
pub struct DaemonInfo {
    pub pid: u32,
    pub started_at_ms: i64,
    pub version: String,
    pub socket: PathBuf,
}

/// Tokens that stop [`serve`]: fired by `daemon.shutdown` / `daemon.reload` or by the
/// lifecycle's signal handlers.
#[derive(Debug, Clone, Default)]
pub struct ServerControl {
    pub shutdown: CancellationToken,
    pub reload: CancellationToken,
}

/// How long stopping waits for connections and their tasks to wind down.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// Concurrent connections; each editor window and CLI command is one.
const MAX_CONNECTIONS: u32 = 256;

/// Pause after a failed `accept` (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// What every method handler shares.
pub(crate) struct State {
    engine: Engine,
    info: DaemonInfo,
    control: ServerControl,
    started: Instant,
    host_calls: Arc<remote_host::HostCalls>,
    /// Which connections have which sessions open.
    holders: holders::Holders,
    /// Turn pumps, live-event forwarders, delayed stops: all end before `serve` returns.
    tasks: TaskTracker,
    /// Fired when serving stops: subscriptions end, detached turns stop waiting.
    stopping: CancellationToken,
    /// Where a detached turn's permission questions wait for a person (`ratchet questions`).
    questions: crate::orchestra::questions::QuestionQueue,
    /// `[questions] timeout_secs`: `None` waits until someone answers.
    question_timeout: Option<Duration>,
    /// The engine's orchestra (teams run in it); `None` in handler tests without one.
    orchestra: Option<crate::orchestra::Orchestra>,
}

/// Serves the control API on `listener` until `control.shutdown` or `control.reload` fires,
/// then stops accepting, closes connections, and waits (at most a few seconds) for its tasks.
/// Turns keep running in `engine`: shutting the engine down (which cancels and saves them) is
/// the caller's job.
///
/// Every peer's uid must equal the daemon's effective uid; others are refused and logged.
pub async fn serve(
    listener: UnixListener,
    engine: Engine,
    info: DaemonInfo,
    control: ServerControl,
) -> std::io::Result<()> {
    serve_with_orchestra(listener, engine, None, info, control).await
}

/// [`serve`], with the engine's orchestra for the methods that reach it (`team.start`).
pub async fn serve_with_orchestra(
    listener: UnixListener,
    engine: Engine,
    orchestra: Option<crate::orchestra::Orchestra>,
    info: DaemonInfo,
    control: ServerControl,
) -> std::io::Result<()> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let own_uid = unsafe { libc::geteuid() };
    // Opened on first use: a daemon whose windows never leave a question pays nothing.
    let questions = crate::orchestra::questions::QuestionQueue::new(crate::orchestra::db::Db::lazy(
        &engine.config().home.join("orchestra.db"),
    ));
    let question_timeout =
        crate::orchestra::OrchestraConfig::from_file(&engine.config().file).ok().and_then(|c| c.question_timeout);
    let state = Arc::new(State {
        engine,
        info,
        control: control.clone(),
        started: Instant::now(),
        host_calls: Arc::default(),
        holders: Default::default(),
        tasks: TaskTracker::new(),
        stopping: CancellationToken::new(),
        questions,
        question_timeout,
        orchestra,
    });
    let methods = methods::module(state.clone()).map_err(std::io::Error::other)?;
    let (stop_handle, server_handle) = stop_channel();
    let config = ServerConfig::builder()
        .ws_only()
        .max_connections(MAX_CONNECTIONS)
        .max_request_body_size(MAX_MESSAGE_BYTES)
        .max_response_body_size(MAX_MESSAGE_BYTES)
        .build();
    let services = Server::builder().set_config(config).to_service_builder();
    let connections = TaskTracker::new();
    let mut last_id: u32 = 0;
    tracing::info!(socket = %state.info.socket.display(), "serving the control API");
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = control.shutdown.cancelled() => break,
            () = control.reload.cancelled() => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "cannot accept a connection on the control socket");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let Some(stream) = admit(stream, own_uid) else { continue };
        // Ids start at 1: 0 is what a method sees if the id were ever missing.
        last_id = last_id.checked_add(1).unwrap_or(1);
        let conn = ConnectionId(last_id as usize);
        state.holders.connect(conn);
        let mut service = services.clone().connection_id(last_id).build(methods.clone(), stop_handle.clone());
        let closed = service.on_session_closed();
        let stopped = stop_handle.clone().shutdown();
        let conn_state = state.clone();
        connections.spawn(async move {
            // Returns once the connection is upgraded to a WebSocket (or failed before).
            if let Err(e) = serve_with_graceful_shutdown(stream, service, stopped).await {
                tracing::debug!(error = %e, "control connection ended with an error");
            }
            closed.await;
            holders::disconnected(&conn_state, conn);
        });
    }
    tracing::info!("control API stopping");
    drop(listener);
    let _ = server_handle.stop();
    drop(stop_handle);
    state.stopping.cancel();
    connections.close();
    state.tasks.close();
    let wound_down = async {
        connections.wait().await;
        // Resolves once every WebSocket task (each holds a stop handle) has ended.
        server_handle.stopped().await;
        state.tasks.wait().await;
    };
    if tokio::time::timeout(STOP_GRACE, wound_down).await.is_err() {
        tracing::warn!("control connections still open {STOP_GRACE:?} after the daemon began stopping");
    }
    Ok(())
}

impl State {
    /// A state for handler tests.
    #[cfg(test)]
    fn for_tests(engine: Engine, question_timeout: Option<Duration>) -> Arc<State> {
        let questions = crate::orchestra::questions::QuestionQueue::new(
            crate::orchestra::db::Db::open_in(&engine.config().home).expect("the orchestra database opens"),
        );
        let info =
            DaemonInfo { pid: 1, started_at_ms: 0, version: "test".into(), socket: PathBuf::from("/nonexistent") };
        Arc::new(State {
            engine,
            info,
            control: ServerControl::default(),
            started: Instant::now(),
            host_calls: Arc::default(),
            holders: Default::default(),
            tasks: TaskTracker::new(),
            stopping: CancellationToken::new(),
            questions,
            question_timeout,
            orchestra: None,
        })
    }
}

/// True if a peer with `peer_uid` may use a daemon running as `own_uid`.
pub fn peer_allowed(peer_uid: u32, own_uid: u32) -> bool {
    peer_uid == own_uid
}

/// Returns the stream if its peer may connect; logs and drops (closes) it otherwise.
fn admit(stream: UnixStream, own_uid: u32) -> Option<UnixStream> {
    match stream.peer_cred() {
        Ok(cred) if peer_allowed(cred.uid(), own_uid) => Some(stream),
        Ok(cred) => {
            tracing::warn!(peer_uid = cred.uid(), peer_pid = ?cred.pid(), own_uid, "refused a control connection from another user");
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "refused a control connection whose peer cannot be identified");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[test]
    fn only_the_same_uid_is_allowed() {
        assert!(peer_allowed(1000, 1000));
        assert!(!peer_allowed(0, 1000), "not even root");
        assert!(!peer_allowed(1001, 1000));
    }

    #[tokio::test]
    async fn a_refused_peer_is_disconnected_and_a_matching_one_kept() {
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        // SAFETY: no preconditions.
        let own = unsafe { libc::geteuid() };
        assert!(admit(ours, own.wrapping_add(1)).is_none());
        let mut buf = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(5), theirs.read(&mut buf)).await.unwrap().unwrap();
        assert_eq!(read, 0, "the refused connection is closed");

        let (ours, _theirs) = UnixStream::pair().unwrap();
        assert!(admit(ours, own).is_some());
    }
}
