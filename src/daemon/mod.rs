//! Daemon mode: one long-lived engine behind a Unix socket, shared by every editor window
//! and the CLI.
//!
//! - `paths`: the files under `RATCHET_HOME` (`daemon.sock`, `daemon.pid`, `daemon.lock`).
//! - `lifecycle`: start (foreground or detached), stop, status, restart, reload; the lock
//!   that keeps two daemons off one data directory; stale-file recovery; signals.
//! - `protocol`: the control API's method names and payloads (JSON-RPC via jsonrpsee).
//! - `server`: serves the control API over the socket, checking each peer's uid.
//! - `client`: connects to the daemon; [`client::RemoteEngine`] implements
//!   [`EngineApi`](crate::engine::EngineApi) so `ratchet acp` drives the daemon's engine with
//!   the same bridge code as an in-process one.
//!
//! The daemon knows the engine and its own socket protocol; it knows nothing of ACP.

pub mod client;
pub mod lifecycle;
pub mod paths;
pub mod protocol;
pub mod server;
