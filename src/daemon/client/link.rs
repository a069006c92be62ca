//! [`Link`]: the [`RemoteEngine`](super::RemoteEngine)'s connection to the daemon, which
//! outlives the daemon itself.
//!
//! When the connection closes (the daemon stopped, crashed or was killed), a supervisor task
//! reconnects with a bounded backoff, starting a daemon again if the front end may
//! ([`WhenLost::StartAgain`]), re-opens the sessions this front end had open, and only then
//! publishes the new connection. Requests meanwhile wait a bounded time for it and then fail
//! with [`EngineError::Unavailable`], which says what to run; once the daemon is back they work
//! again. Turns that were running are not resumed: their streams end with an error saying the
//! daemon stopped (what it acknowledged is in the store).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Client, ClientError};
use crate::daemon::lifecycle::control::{self, ensure_running};
use crate::daemon::protocol::{OpenParams, method};
use crate::engine::EngineError;

/// The first pause before reconnecting: a daemon that is reloading is back within it.
const RECONNECT_FIRST_DELAY: Duration = Duration::from_millis(100);
/// The longest pause between attempts (the pause doubles up to it), so a daemon started by
/// hand is found within this long.
const RECONNECT_MAX_DELAY: Duration = Duration::from_secs(2);
/// How long a request waits for a lost daemon to come back before it fails as retryable.
const RECONNECT_WAIT: Duration = Duration::from_secs(5);
/// How much longer it waits while this front end is starting the daemon again (a start may
/// take this long).
const RESTART_WAIT: Duration = control::START_TIMEOUT;

/// What a [`RemoteEngine`](super::RemoteEngine) does when its daemon goes away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WhenLost {
    /// Fail from then on (one-shot commands: `exec`, `sessions`, `attach`).
    Fail,
    /// Reconnect once someone starts the daemon again.
    Reconnect,
    /// Reconnect, starting a daemon on this `RATCHET_HOME` if none runs (`ratchet acp
    /// --daemon`, or `daemon_auto_start = true`).
    StartAgain(PathBuf),
}

/// The connection as requests see it.
#[derive(Clone)]
enum LinkState {
    /// Connected; `generation` counts connections, so watchers know a new one from the old.
    Up { client: Client, generation: u64 },
    /// Lost; `why` is the last attempt's error, `starting` while a daemon start runs.
    Down { why: String, starting: bool },
    /// The front end is shutting down.
    Closed,
}

/// A connection to the daemon that reconnects (see the module docs).
pub(super) struct Link {
    state: watch::Sender<LinkState>,
    when_lost: WhenLost,
    /// The daemon's socket (every reconnection goes to the same one).
    socket: PathBuf,
    /// Sessions this front end has open, by id, as it opened them: re-opened on reconnect.
    sessions: Mutex<HashMap<String, OpenParams>>,
    /// Stops the supervisor and every live-event forwarder.
    stop: CancellationToken,
}

impl Link {
    pub(super) fn new(client: Client, when_lost: WhenLost) -> Link {
        Link {
            state: watch::Sender::new(LinkState::Up { client: client.clone(), generation: 0 }),
            when_lost,
            socket: client.socket.clone(),
            sessions: Mutex::default(),
            stop: CancellationToken::new(),
        }
    }

    /// True if a lost daemon is waited for.
    pub(super) fn reconnects(&self) -> bool {
        self.when_lost != WhenLost::Fail
    }

    /// The daemon's socket.
    pub(super) fn socket(&self) -> &Path {
        &self.socket
    }

    /// Cancelled when the front end shuts down.
    pub(super) fn stopped(&self) -> &CancellationToken {
        &self.stop
    }

    /// Stops reconnecting and ends the forwarders; requests fail from now on.
    pub(super) fn close(&self) {
        self.stop.cancel();
        self.state.send_replace(LinkState::Closed);
    }

    /// Remembers a session this front end opened, to re-open it on the next connection.
    pub(super) fn remember(&self, params: OpenParams) {
        self.sessions().insert(params.id.clone(), params);
    }

    /// Forgets a session this front end closed.
    pub(super) fn forget(&self, id: &str) {
        self.sessions().remove(id);
    }

    /// A live connection and its generation, waiting (bounded) for one while the daemon is
    /// lost; [`EngineError::Unavailable`] if none comes.
    pub(super) async fn current(&self) -> Result<(Client, u64), EngineError> {
        self.current_from(0).await
    }

    /// [`Link::current`], but only a connection of generation `first` or later.
    pub(super) async fn current_from(&self, first: u64) -> Result<(Client, u64), EngineError> {
        let mut rx = self.state.subscribe();
        let waited = Instant::now() + RECONNECT_WAIT;
        loop {
            let (deadline, why) = match &*rx.borrow_and_update() {
                LinkState::Up { client, generation } if client.rpc.is_connected() && *generation >= first => {
                    return Ok((client.clone(), *generation));
                }
                LinkState::Closed => return Err(self.unavailable("ratchet is shutting down")),
                LinkState::Up { .. } if !self.reconnects() => return Err(self.unavailable("the connection closed")),
                // The supervisor has yet to notice; it changes the state at once.
                LinkState::Up { .. } => (waited, "the connection closed".to_string()),
                LinkState::Down { why, starting: true } => (waited + RESTART_WAIT, why.clone()),
                LinkState::Down { why, starting: false } => (waited, why.clone()),
            };
            if Instant::now() >= deadline {
                return Err(self.unavailable(&why));
            }
            // A change or the deadline: either way, look again.
            let _ = tokio::time::timeout_at(deadline, rx.changed()).await;
        }
    }

    /// The first connection newer than `generation`, however long it takes; `None` once the
    /// front end shuts down or if this link does not reconnect.
    pub(super) async fn next_after(&self, generation: u64) -> Option<(Client, u64)> {
        if !self.reconnects() {
            return None;
        }
        let mut rx = self.state.subscribe();
        let newer = rx.wait_for(|s| match s {
            LinkState::Up { generation: g, .. } => *g > generation,
            LinkState::Closed => true,
            LinkState::Down { .. } => false,
        });
        let state = tokio::select! {
            state = newer => state.ok()?.clone(),
            () = self.stop.cancelled() => return None,
        };
        match state {
            LinkState::Up { client, generation } => Some((client, generation)),
            _ => None,
        }
    }

    /// The supervisor: waits for the connection to close, then reconnects. Runs on the
    /// engine's task tracker until [`Link::close`].
    pub(super) async fn supervise(self: Arc<Self>) {
        loop {
            let LinkState::Up { client, generation } = self.state.borrow().clone() else { return };
            tokio::select! {
                e = client.rpc.on_disconnect() => tracing::warn!(error = %e, "lost the connection to the ratchet daemon; reconnecting"),
                () = self.stop.cancelled() => return,
            }
            let socket = client.socket.clone();
            drop(client);
            self.set_down("the connection to it closed".to_string(), false);
            let Some(client) = self.reconnect(&socket).await else { return };
            self.reopen(&client).await;
            if self.stop.is_cancelled() {
                return;
            }
            self.state.send_replace(LinkState::Up { client, generation: generation + 1 });
            tracing::info!(socket = %socket.display(), "reconnected to the ratchet daemon");
        }
    }

    /// Tries to connect until it works, pausing longer each time; `None` once closed.
    async fn reconnect(&self, socket: &Path) -> Option<Client> {
        let mut delay = RECONNECT_FIRST_DELAY;
        loop {
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = self.stop.cancelled() => return None,
            }
            let attempt = tokio::select! {
                attempt = self.connect(socket) => attempt,
                () = self.stop.cancelled() => return None,
            };
            match attempt {
                Ok(client) => return Some(client),
                Err(why) => {
                    tracing::debug!(error = %why, "the ratchet daemon is still not reachable");
                    self.set_down(why, false);
                }
            }
            delay = (delay * 2).min(RECONNECT_MAX_DELAY);
        }
    }

    /// One attempt: connect, or start a daemon first if none runs and that is allowed.
    async fn connect(&self, socket: &Path) -> Result<Client, String> {
        match Client::connect(socket).await {
            Ok(client) => Ok(client),
            Err(ClientError::NotRunning(_)) if let WhenLost::StartAgain(home) = &self.when_lost => {
                tracing::info!(home = %home.display(), "no daemon runs; starting one");
                self.set_down("it is being started again".to_string(), true);
                ensure_running(home).await.map_err(|e| format!("starting it failed: {e:#}"))?;
                Client::connect(socket).await.map_err(|e| e.to_string())
            }
            Err(ClientError::NotRunning(home)) => Err(format!("no daemon runs on RATCHET_HOME={home}")),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Opens this front end's sessions in the new daemon, as they were opened.
    async fn reopen(&self, client: &Client) {
        let sessions: Vec<OpenParams> = self.sessions().values().cloned().collect();
        for params in sessions {
            let id = params.id.clone();
            if let Err(e) = client.call::<serde_json::Value>(method::OPEN, params).await {
                tracing::warn!(error = %e, session = %id, "cannot re-open the session in the daemon");
            }
        }
    }

    /// A client error as the engine error the bridge understands: a lost connection is the
    /// retryable [`EngineError::Unavailable`], not a configuration problem.
    pub(super) fn engine_error(&self, e: ClientError) -> EngineError {
        match e {
            ClientError::Engine(e) => e,
            ClientError::Disconnected(_) | ClientError::NotRunning(_) => self.unavailable("the connection closed"),
            other => EngineError::Config(other.to_string()),
        }
    }

    fn set_down(&self, why: String, starting: bool) {
        self.state.send_if_modified(|state| {
            if matches!(state, LinkState::Closed) {
                return false;
            }
            *state = LinkState::Down { why, starting };
            true
        });
    }

    /// The retryable error for a request that found no daemon.
    fn unavailable(&self, why: &str) -> EngineError {
        EngineError::Unavailable(match &self.when_lost {
            WhenLost::Fail => {
                format!("lost the connection to the ratchet daemon ({why}); check `ratchet daemon status`")
            }
            WhenLost::Reconnect => format!(
                "the ratchet daemon is not reachable ({why}); ratchet is reconnecting: start it with \
                 `ratchet daemon start -b`, then send the request again"
            ),
            WhenLost::StartAgain(_) => format!(
                "the ratchet daemon is not reachable ({why}); ratchet is reconnecting and starting it again: \
                 send the request again shortly, or run `ratchet daemon start -b` to see why it does not start"
            ),
        })
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, OpenParams>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }
}
