//! Connects to the daemon's control socket: a jsonrpsee WebSocket client over a `UnixStream`.
//!
//! [`Client::connect`] refuses a daemon that speaks another protocol version (after an
//! upgrade, the old daemon keeps running until restarted). [`Client::into_engine`] gives a
//! [`RemoteEngine`], the [`EngineApi`](crate::engine::EngineApi) that `ratchet acp` hands to
//! the ACP bridge in daemon mode; [`Client::into_reconnecting_engine`] one that survives its
//! daemon (`link.rs`).

mod link;
mod providers;
mod remote_engine;
mod teams;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use jsonrpsee::async_client::{Client as RpcClient, ClientBuilder};
use jsonrpsee::client_transport::ws::{Url, WsTransportClientBuilder};
use jsonrpsee::core::ClientError as RpcError;
use jsonrpsee::core::client::ClientT;
use jsonrpsee::core::traits::ToRpcParams;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use super::protocol::{self, Health, method};
use crate::engine::EngineError;

pub use link::WhenLost;
pub use remote_engine::RemoteEngine;

/// How long connecting (socket + WebSocket handshake) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one request may wait for its answer. Requests are quick (turns stream through
/// subscriptions); a daemon this slow is stuck.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Items buffered per subscription before the client gives up on it (lag). A turn's pump
/// drains promptly; this absorbs a burst while the editor is slow to read.
const SUBSCRIPTION_BUFFER: usize = 16 * 1024;

/// Why talking to the daemon failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No socket, or nobody listens on it. Holds `RATCHET_HOME`.
    #[error("no daemon is running on RATCHET_HOME={0}; start one with `ratchet daemon start -b`")]
    NotRunning(String),
    /// The daemon speaks another protocol version.
    #[error("{0}")]
    Incompatible(String),
    /// The daemon failed the call.
    #[error("{0}")]
    Rpc(String),
    /// The connection closed (the daemon stopped) before the answer came.
    #[error("{0}")]
    Disconnected(String),
    /// The daemon's engine refused (unknown session, busy, ...).
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// A connection to the daemon. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct Client {
    rpc: Arc<RpcClient>,
    socket: PathBuf,
}

impl Client {
    /// Connects to the daemon listening on `socket` and checks that it speaks our protocol.
    pub async fn connect(socket: &Path) -> Result<Client, ClientError> {
        let not_running = || ClientError::NotRunning(socket.parent().unwrap_or(socket).display().to_string());
        let stream = match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::UnixStream::connect(socket)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused) => {
                return Err(not_running());
            }
            Ok(Err(e)) => {
                return Err(ClientError::Rpc(format!(
                    "cannot connect to the daemon at {}: {e}; check its permissions, or run `ratchet daemon restart`",
                    socket.display()
                )));
            }
            Err(_) => return Err(stuck(socket)),
        };
        // The host is only a name in the HTTP upgrade request; the stream is already connected.
        let url = Url::parse("ws://ratchet-daemon/").map_err(|e| ClientError::Rpc(e.to_string()))?;
        let (tx, rx) = match tokio::time::timeout(
            CONNECT_TIMEOUT,
            WsTransportClientBuilder::default()
                .max_request_size(protocol::MAX_MESSAGE_BYTES)
                .max_response_size(protocol::MAX_MESSAGE_BYTES)
                .build_with_stream(url, stream),
        )
        .await
        {
            Ok(Ok(pair)) => pair,
            // A daemon stopping right now closes the connection during the handshake.
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "control socket handshake failed");
                return Err(not_running());
            }
            Err(_) => return Err(stuck(socket)),
        };
        let rpc = ClientBuilder::default()
            .request_timeout(REQUEST_TIMEOUT)
            .max_buffer_capacity_per_subscription(SUBSCRIPTION_BUFFER)
            .build_with_tokio(tx, rx);
        let client = Client { rpc: Arc::new(rpc), socket: socket.to_path_buf() };
        let health = match tokio::time::timeout(CONNECT_TIMEOUT, client.health()).await.map_err(|_| stuck(socket))? {
            Ok(h) => h,
            Err(ClientError::Rpc(e)) => {
                return Err(ClientError::Incompatible(format!(
                    "the daemon at {} did not answer {} ({e}); it is probably another ratchet version: run `ratchet daemon restart`",
                    socket.display(),
                    method::HEALTH
                )));
            }
            Err(e) => return Err(e),
        };
        check_protocol(&health)?;
        Ok(client)
    }

    /// The socket this client is connected to.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The daemon's version, pid, uptime and load.
    pub async fn health(&self) -> Result<Health, ClientError> {
        self.call(method::HEALTH, ()).await
    }

    /// Asks the daemon to stop (it cancels running turns, saving what they have).
    pub async fn shutdown(&self) -> Result<(), ClientError> {
        self.stop(method::SHUTDOWN).await
    }

    /// Asks the daemon to reload (re-read its configuration).
    pub async fn reload(&self) -> Result<(), ClientError> {
        self.stop(method::RELOAD).await
    }

    /// The daemon's engine for one-shot commands: once the daemon is gone, calls fail.
    pub fn into_engine(self) -> RemoteEngine {
        RemoteEngine::new(self, WhenLost::Fail)
    }

    /// The daemon's engine for a long-lived front end (`ratchet acp`): it reconnects when the
    /// daemon comes back (or, by `when_lost`, starts it again).
    pub fn into_reconnecting_engine(self, when_lost: WhenLost) -> RemoteEngine {
        RemoteEngine::new(self, when_lost)
    }

    async fn stop(&self, name: &str) -> Result<(), ClientError> {
        match self.call::<()>(name, ()).await {
            // The daemon may close the connection before its reply gets out: that is success.
            Err(ClientError::Rpc(_) | ClientError::Disconnected(_)) if !self.rpc.is_connected() => Ok(()),
            other => other,
        }
    }

    /// Calls `name` with `params` as one JSON object (or none for `()`).
    async fn call<R: DeserializeOwned>(&self, name: &str, params: impl Serialize + Send) -> Result<R, ClientError> {
        self.rpc.request(name, Json(params)).await.map_err(|e| rpc_error(name, e))
    }
}

/// Refuses a daemon whose protocol differs from ours.
pub fn check_protocol(health: &Health) -> Result<(), ClientError> {
    if health.protocol == protocol::PROTOCOL_VERSION {
        return Ok(());
    }
    Err(ClientError::Incompatible(format!(
        "daemon speaks protocol {} (ratchet {}), this ratchet speaks {}; run `ratchet daemon restart`",
        health.protocol,
        health.version,
        protocol::PROTOCOL_VERSION
    )))
}

fn stuck(socket: &Path) -> ClientError {
    ClientError::Rpc(format!(
        "the daemon at {} accepted the connection but did not answer within {}s; run `ratchet daemon restart`",
        socket.display(),
        CONNECT_TIMEOUT.as_secs()
    ))
}

/// A jsonrpsee error as ours: engine errors are rebuilt, the rest say what broke.
fn rpc_error(name: &str, e: RpcError) -> ClientError {
    match e {
        RpcError::Call(obj) => {
            let data = obj.data().and_then(|d| serde_json::from_str::<serde_json::Value>(d.get()).ok());
            match protocol::engine_error_from_rpc(obj.message(), data.as_ref()) {
                Some(engine) => ClientError::Engine(engine),
                None if obj.code() == jsonrpsee::types::error::METHOD_NOT_FOUND_CODE => ClientError::Rpc(format!(
                    "the running daemon does not know {name}: it is an older ratchet; run `ratchet daemon restart` to start this one"
                )),
                None => ClientError::Rpc(format!("the daemon refused {name}: {}", obj.message())),
            }
        }
        RpcError::RequestTimeout => ClientError::Rpc(format!(
            "the daemon did not answer {name} within {}s; check `ratchet daemon status`",
            REQUEST_TIMEOUT.as_secs()
        )),
        RpcError::ParseError(e) => ClientError::Rpc(format!(
            "the daemon's answer to {name} did not parse ({e}); it may be another ratchet version: run `ratchet daemon restart`"
        )),
        other => ClientError::Disconnected(format!(
            "lost the connection to the ratchet daemon during {name} ({other}); check `ratchet daemon status`"
        )),
    }
}

/// Params as one JSON object; `()` sends none.
struct Json<T>(T);

impl<T: Serialize> ToRpcParams for Json<T> {
    fn to_rpc_params(self) -> Result<Option<Box<RawValue>>, serde_json::Error> {
        let raw = serde_json::value::to_raw_value(&self.0)?;
        Ok(if raw.get() == "null" { None } else { Some(raw) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::protocol::IdParams;

    fn health(protocol: u32) -> Health {
        Health {
            version: "9.9.9".into(),
            protocol,
            pid: 1,
            uptime_ms: 0,
            sessions: 0,
            running_turns: 0,
            socket: "/s".into(),
        }
    }

    #[test]
    fn another_protocol_version_is_refused_with_what_to_do() {
        assert!(check_protocol(&health(protocol::PROTOCOL_VERSION)).is_ok());
        let e = check_protocol(&health(protocol::PROTOCOL_VERSION + 1)).unwrap_err().to_string();
        let want = format!("daemon speaks protocol {}", protocol::PROTOCOL_VERSION + 1);
        assert!(e.contains(&want) && e.contains("ratchet daemon restart"), "{e}");
    }

    #[tokio::test]
    async fn no_socket_means_not_running_and_names_the_home() {
        let dir = tempfile::tempdir().unwrap();
        let Err(e) = Client::connect(&dir.path().join("daemon.sock")).await else { panic!("connected to nothing") };
        assert!(matches!(e, ClientError::NotRunning(_)), "{e:?}");
        let text = e.to_string();
        assert!(text.contains(&dir.path().display().to_string()) && text.contains("ratchet daemon start -b"), "{text}");
    }

    #[test]
    fn unit_params_are_sent_as_none() {
        assert!(Json(()).to_rpc_params().unwrap().is_none());
        assert_eq!(Json(IdParams { id: "a".into() }).to_rpc_params().unwrap().unwrap().get(), r#"{"id":"a"}"#);
    }
}
