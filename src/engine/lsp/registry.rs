//! The running servers of one engine, one per (server, root): started on first use, shared
//! by every session with that root, stopped after [`IDLE_TIMEOUT`] unused and at shutdown.
//!
//! A server that cannot start, or that crashed, is not tried again for [`RETRY_AFTER`], so a
//! missing or broken one costs one log line, not a wait on every edit.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::config::ServerSpec;
use super::lock;
use super::server::Server;
use crate::engine::secret_env::CommandEnv;

/// A server unused this long is stopped: it holds memory (rust-analyzer: gigabytes) that a
/// session which stopped editing should not pay for; the next edit starts it again.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// How often idle servers are looked for.
const IDLE_CHECK_EVERY: Duration = Duration::from_secs(30);

/// How long a server that failed to start or crashed is left alone before it is tried again.
pub const RETRY_AFTER: Duration = Duration::from_secs(60);

/// How long shutdown waits for the servers to stop.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

/// A server's place in the registry.
enum Slot {
    Empty,
    Running(Arc<Server>),
    Failed { at: Instant },
}

type Key = (String, PathBuf);

/// The engine's language servers.
pub struct Registry {
    slots: Mutex<HashMap<Key, Arc<tokio::sync::Mutex<Slot>>>>,
    tasks: TaskTracker,
    stop: CancellationToken,
    reaper: std::sync::Once,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            slots: Mutex::default(),
            tasks: TaskTracker::new(),
            stop: CancellationToken::new(),
            reaper: std::sync::Once::new(),
        }
    }
}

impl Registry {
    /// The running server for `spec` at `root`, started now if needed; `None` (logged) if it
    /// cannot run.
    pub async fn server(
        self: &Arc<Self>,
        spec: &Arc<ServerSpec>,
        root: &Path,
        env: &CommandEnv,
    ) -> Option<Arc<Server>> {
        if self.stop.is_cancelled() {
            return None;
        }
        let key = (spec.name.clone(), root.to_path_buf());
        let slot =
            lock(&self.slots).entry(key).or_insert_with(|| Arc::new(tokio::sync::Mutex::new(Slot::Empty))).clone();
        // Held while starting, so sessions asking at once share one start.
        let mut slot = slot.lock().await;
        match &*slot {
            Slot::Running(server) if server.is_alive() => return Some(server.clone()),
            Slot::Running(_) => {
                tracing::warn!(server = %spec.name, root = %root.display(),
                    "the language server exited; no diagnostics from it for {RETRY_AFTER:?}");
                *slot = Slot::Failed { at: Instant::now() };
                return None;
            }
            Slot::Failed { at } if at.elapsed() < RETRY_AFTER => return None,
            Slot::Failed { .. } | Slot::Empty => {}
        }
        self.start_reaper();
        match Server::start(spec.clone(), root, env, &self.tasks, &self.stop).await {
            Ok(server) => {
                tracing::info!(server = %spec.name, root = %root.display(), "language server started");
                let server = Arc::new(server);
                *slot = Slot::Running(server.clone());
                Some(server)
            }
            Err(e) => {
                tracing::warn!(server = %spec.name, root = %root.display(), error = %e,
                    "language server unavailable; edits go on without its diagnostics");
                *slot = Slot::Failed { at: Instant::now() };
                None
            }
        }
    }

    /// The running servers (for workspace diagnostics).
    pub fn running(&self) -> Vec<Arc<Server>> {
        let slots: Vec<_> = lock(&self.slots).values().cloned().collect();
        slots
            .iter()
            .filter_map(|s| match s.try_lock().ok().as_deref() {
                Some(Slot::Running(server)) if server.is_alive() => Some(server.clone()),
                _ => None,
            })
            .collect()
    }

    /// Stops every server and waits (bounded) for them to go.
    pub async fn shutdown(&self) {
        self.stop.cancel();
        let slots: Vec<_> = lock(&self.slots).drain().map(|(_, s)| s).collect();
        let stopping = slots.into_iter().map(|slot| async move {
            let taken = std::mem::replace(&mut *slot.lock().await, Slot::Empty);
            if let Slot::Running(server) = taken {
                server.stop().await;
            }
        });
        if tokio::time::timeout(SHUTDOWN_WAIT, futures::future::join_all(stopping)).await.is_err() {
            tracing::warn!("language servers still stopping {SHUTDOWN_WAIT:?} after shutdown began");
        }
        self.tasks.close();
        let _ = tokio::time::timeout(SHUTDOWN_WAIT, self.tasks.wait()).await;
    }

    /// Starts, once, the task that stops idle servers.
    fn start_reaper(self: &Arc<Self>) {
        self.reaper.call_once(|| {
            let registry = Arc::downgrade(self);
            let stop = self.stop.clone();
            self.tasks.spawn(async move {
                loop {
                    tokio::select! {
                        () = tokio::time::sleep(IDLE_CHECK_EVERY) => {}
                        () = stop.cancelled() => return,
                    }
                    let Some(registry) = registry.upgrade() else { return };
                    registry.stop_idle(IDLE_TIMEOUT).await;
                }
            });
        });
    }

    /// Stops the servers unused for `idle` or longer.
    pub(super) async fn stop_idle(&self, idle: Duration) {
        let slots: Vec<(Key, Arc<tokio::sync::Mutex<Slot>>)> =
            lock(&self.slots).iter().map(|(k, s)| (k.clone(), s.clone())).collect();
        for ((name, root), slot) in slots {
            // A slot busy starting is in use.
            let Ok(mut slot) = slot.try_lock() else { continue };
            let idle_server = match &*slot {
                Slot::Running(server) if server.idle_for() >= idle => Some(server.clone()),
                _ => None,
            };
            if let Some(server) = idle_server {
                *slot = Slot::Empty;
                drop(slot);
                tracing::info!(server = %name, root = %root.display(), "stopping an idle language server");
                server.stop().await;
            }
        }
    }
}
