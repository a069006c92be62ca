//! The daemon process itself: `ratchet daemon start` in the foreground.
//!
//! Order matters. Take the lock (or fail at once), clean up what a crashed daemon left,
//! read a reload checkpoint, open the engine, bind the socket (0600), then serve until a
//! signal, an RPC or the idle timer says stop or reload. Stopping cancels running turns and
//! waits until they saved (`Engine::shutdown`), removes the socket and pid file while still
//! holding the lock, then releases it. A reload also writes the checkpoint; the caller then
//! `exec`s the new binary ([`exec_reload`]) once the runtime is gone.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::checkpoint::{self, Checkpoint, InterruptedTurn};
use super::lock::DaemonLock;
use super::socket;
use crate::daemon::server::{self, DaemonInfo, ServerControl};
use crate::engine::Engine;
use crate::engine::config::EngineConfig;
use crate::engine::store::MessageStatus;

/// How a daemon run ended.
#[derive(Debug)]
pub enum Outcome {
    /// Stopped for good.
    Stopped,
    /// Handing over: the caller drops its runtime and calls [`exec_reload`].
    Reload(ReloadPlan),
}

/// The binary and arguments a reloading daemon `exec`s.
#[derive(Debug, Clone)]
pub struct ReloadPlan {
    pub exe: PathBuf,
    pub args: Vec<OsString>,
}

/// Runs the daemon in this process until it is stopped or asked to reload. Logs go where
/// `crate::logging` sends them; nothing is written to stdout.
pub async fn run_daemon(config: EngineConfig) -> anyhow::Result<Outcome> {
    let started_at_ms = now_ms();
    // Resolved now: an upgrade may replace the file before a reload.
    let exe = current_exe()?;
    let home = std::path::absolute(&config.home).unwrap_or_else(|_| config.home.clone());
    // First, so a signal during start-up is handled gracefully rather than by its default
    // action (SIGUSR1's is to terminate).
    let signals = signals()?;
    let lock = DaemonLock::acquire(&home)?;
    let served = serve_locked(config, &home, &lock, signals, started_at_ms).await;
    lock.release();
    let reload = served?;
    tracing::info!(reload, "daemon stopped");
    Ok(if reload {
        Outcome::Reload(ReloadPlan { exe, args: std::env::args_os().skip(1).collect() })
    } else {
        Outcome::Stopped
    })
}

/// Replaces this process with the new binary. Call it only after the async runtime has
/// shut down and the log writer has flushed. Returns only if `exec` failed.
pub fn exec_reload(plan: ReloadPlan) -> std::io::Error {
    use std::os::unix::process::CommandExt;
    let mut command = std::process::Command::new(&plan.exe);
    crate::engine::secret_env::restore_for_ratchet(command.args(&plan.args));
    command.exec()
}

/// Everything that happens while the lock is held. `Ok(true)` means reload.
async fn serve_locked(
    config: EngineConfig,
    home: &Path,
    lock: &DaemonLock,
    signals: Signals,
    started_at_ms: i64,
) -> anyhow::Result<bool> {
    let paths = lock.paths().clone();
    for note in
        lock.clean_stale().with_context(|| format!("cannot clean up after a previous daemon in {}", home.display()))?
    {
        tracing::warn!("cleaned up the {note} left by a daemon that did not exit cleanly");
    }
    resume_from_checkpoint(home);
    let idle_timeout = config.file.daemon_idle_timeout_secs.filter(|s| *s > 0).map(Duration::from_secs);
    let composed = crate::compose::open(config).await?;
    // The providers' TLS settings load now, not in the first session.
    crate::engine::provider::tls::warm();
    // The daemon fires the cron jobs (it takes the singleton lock from any `ratchet acp`
    // that held it before the daemon started, once that one exits).
    composed.orchestra.cron().start_scheduler();
    let (engine, orchestra) = (composed.engine, composed.orchestra);
    let listener = socket::bind_private(&paths.socket)
        .with_context(|| format!("cannot bind the control socket {}", paths.socket.display()))?;
    // Accepted connections carry the address the listener was bound to (the staging path).
    let bound = listener.local_addr().ok().and_then(|a| a.as_pathname().map(Path::to_path_buf));

    let control = ServerControl::default();
    let watchers = TaskTracker::new();
    let stop_watchers = CancellationToken::new();
    watchers.spawn(watch_signals(signals, control.clone(), stop_watchers.clone()));
    if let Some(timeout) = idle_timeout {
        watchers.spawn(watch_idle(engine.clone(), timeout, bound, control.clone(), stop_watchers.clone()));
    }
    let info = DaemonInfo {
        pid: std::process::id(),
        started_at_ms,
        version: env!("CARGO_PKG_VERSION").to_string(),
        socket: paths.socket.clone(),
    };
    tracing::info!(pid = info.pid, socket = %paths.socket.display(), version = %info.version, ?idle_timeout, "daemon ready");
    let served = server::serve_with_orchestra(listener, engine.clone(), Some(orchestra), info, control.clone()).await;
    stop_watchers.cancel();
    watchers.close();
    watchers.wait().await;

    let reload = control.reload.is_cancelled() && !control.shutdown.is_cancelled();
    let running = engine.running_turns();
    let stop_began_ms = now_ms();
    tracing::info!(reload, running_turns = running, "stopping: cancelling running turns and saving them");
    engine.shutdown().await;
    if reload {
        let checkpoint = checkpoint_of(&engine, stop_began_ms).await;
        tracing::info!(
            open = checkpoint.open_sessions.len(),
            interrupted = checkpoint.interrupted_turns.len(),
            "writing the reload checkpoint"
        );
        checkpoint::write(home, &checkpoint)
            .with_context(|| format!("cannot write {}", checkpoint::path(home).display()))?;
    }
    served.with_context(|| format!("the control socket {} failed", paths.socket.display()))?;
    Ok(reload)
}

fn current_exe() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find this program's path (needed to reload)")?;
    Ok(undeleted(exe))
}

/// Linux names a replaced binary "<path> (deleted)"; the new file is at <path>.
fn undeleted(exe: PathBuf) -> PathBuf {
    match exe.to_str().and_then(|t| t.strip_suffix(" (deleted)")) {
        Some(path) => PathBuf::from(path),
        None => exe,
    }
}

/// Logs what the previous process handed over, and deletes the checkpoint.
fn resume_from_checkpoint(home: &Path) {
    match checkpoint::take(home) {
        Ok(None) => {}
        Ok(Some(cp)) => tracing::info!(
            from_version = %cp.version,
            sessions = ?cp.open_sessions,
            interrupted = ?cp.interrupted_turns,
            "resumed after a reload: {} session(s) were active, {} turn(s) were cancelled and saved; editors re-open sessions with session/load",
            cp.open_sessions.len(),
            cp.interrupted_turns.len(),
        ),
        Err(e) => tracing::warn!("{e}"),
    }
}

/// The checkpoint: the sessions open in the engine (its turns stopped, but nothing closed
/// them), and among those the ones whose last message was stored as cancelled after stopping
/// began (the turns the stop cut short).
async fn checkpoint_of(engine: &Engine, stop_began_ms: i64) -> Checkpoint {
    let open_sessions = engine.open_session_ids();
    let mut interrupted_turns = Vec::new();
    for id in &open_sessions {
        match engine.session(id).await {
            Ok(s) if s.updated_at >= stop_began_ms => {}
            Ok(_) => continue,
            Err(e) => {
                tracing::warn!(error = %e, session = %id, "cannot read an open session for the reload checkpoint");
                continue;
            }
        }
        let last = engine.history(id).await.ok().and_then(|h| h.into_iter().last());
        if let Some(m) = last.filter(|m| m.status == MessageStatus::Cancelled) {
            interrupted_turns.push(InterruptedTurn { session: id.clone(), message_seq: m.seq });
        }
    }
    Checkpoint {
        version: env!("CARGO_PKG_VERSION").to_string(),
        pid: std::process::id(),
        written_at_ms: now_ms(),
        open_sessions,
        interrupted_turns,
    }
}

/// The signals the daemon handles, registered before it serves so none is missed.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    usr1: tokio::signal::unix::Signal,
}

fn signals() -> anyhow::Result<Signals> {
    let register = |kind| signal(kind).context("cannot install the daemon's signal handlers");
    Ok(Signals {
        term: register(SignalKind::terminate())?,
        int: register(SignalKind::interrupt())?,
        usr1: register(SignalKind::user_defined1())?,
    })
}

/// SIGTERM and SIGINT stop gracefully; SIGUSR1 reloads.
async fn watch_signals(mut s: Signals, control: ServerControl, stop: CancellationToken) {
    tokio::select! {
        () = stop.cancelled() => {}
        _ = s.term.recv() => {
            tracing::info!("SIGTERM: stopping");
            control.shutdown.cancel();
        }
        _ = s.int.recv() => {
            tracing::info!("SIGINT: stopping");
            control.shutdown.cancel();
        }
        _ = s.usr1.recv() => {
            tracing::info!("SIGUSR1: reloading");
            control.reload.cancel();
        }
    }
}

/// Stops the daemon after `timeout` with no running turns and no control connections.
///
/// The server does not expose a connection count, so connections are counted from
/// `/proc/net/unix` (accepted sockets carry the listener's bound path). Where that file is
/// unreadable, idle means only "no running turns".
async fn watch_idle(
    engine: Engine,
    timeout: Duration,
    bound: Option<PathBuf>,
    control: ServerControl,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval((timeout / 4).clamp(Duration::from_millis(50), Duration::from_secs(1)));
    let mut idle_since = Instant::now();
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let connections = bound.as_deref().and_then(connections_to).unwrap_or(0);
        if engine.running_turns() > 0 || connections > 0 {
            idle_since = Instant::now();
        } else if idle_since.elapsed() >= timeout {
            tracing::info!(?timeout, "idle: no connections and no running turns; stopping");
            control.shutdown.cancel();
            return;
        }
    }
}

/// Connected sockets accepted on the listener bound at `bound`, from `/proc/net/unix`
/// (columns: Num RefCount Protocol Flags Type St Inode Path; St 03 = connected).
fn connections_to(bound: &Path) -> Option<usize> {
    let table = std::fs::read_to_string("/proc/net/unix").ok()?;
    let bound = bound.to_str()?;
    Some(
        table
            .lines()
            .skip(1)
            .filter(|line| {
                let cols: Vec<&str> = line.split_whitespace().collect();
                cols.len() >= 8 && cols[5] == "03" && cols[7..].join(" ") == bound
            })
            .count(),
    )
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replaced_binary_is_found_at_its_path() {
        assert_eq!(undeleted("/usr/bin/ratchet (deleted)".into()), PathBuf::from("/usr/bin/ratchet"));
        assert_eq!(undeleted("/usr/bin/ratchet".into()), PathBuf::from("/usr/bin/ratchet"));
    }

    #[tokio::test]
    async fn the_checkpoint_lists_exactly_the_open_sessions_and_the_cut_turns() {
        use crate::engine::config::{ConfigFile, EnvSnapshot};
        use crate::engine::store::SessionPatch;
        use crate::engine::{ChatEvent, ContentPart};

        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("script.json");
        std::fs::write(
            &script,
            r#"{"turns":[{"text":"one two three four five six seven eight","chunk_delay_ms":200}]}"#,
        )
        .unwrap();
        let env = EnvSnapshot {
            ratchet_provider: Some("scripted".into()),
            ratchet_script: Some(script.to_string_lossy().into_owned()),
            ..Default::default()
        };
        let engine =
            Engine::open(EngineConfig { home: dir.path().into(), env, file: ConfigFile::default() }).await.unwrap();
        let cwd = dir.path().to_path_buf();
        let busy = engine.create_session(cwd.clone(), vec![]).await.unwrap();
        let idle = engine.create_session(cwd.clone(), vec![]).await.unwrap();
        let closed = engine.create_session(cwd.clone(), vec![]).await.unwrap();
        engine.close_session(&closed.id);
        // Changed since start, but not open: the old "updated since start" guess counted these.
        let patch = SessionPatch { title: Some("renamed".into()), ..Default::default() };
        engine.store().update_session(&closed.id, patch).await.unwrap();

        let mut rx = engine.send_message(&busy.id, vec![ContentPart::text("count")]).await.unwrap();
        while !matches!(rx.recv().await, Some(ChatEvent::TextDelta(_))) {}
        let stop_began = now_ms();
        engine.shutdown().await;
        let cp = checkpoint_of(&engine, stop_began).await;
        let mut open = vec![busy.id.clone(), idle.id.clone()];
        open.sort();
        assert_eq!(cp.open_sessions, open);
        let cut: Vec<_> = cp.interrupted_turns.iter().map(|t| t.session.as_str()).collect();
        assert_eq!(cut, [busy.id.as_str()]);
    }

    #[tokio::test]
    async fn connections_are_counted_by_bound_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("daemon.sock");
        let listener = socket::bind_private(&path).unwrap();
        let bound = listener.local_addr().unwrap().as_pathname().unwrap().to_path_buf();
        if connections_to(&bound).is_none() {
            return; // no /proc here: the idle timer falls back to running turns only
        }
        assert_eq!(connections_to(&bound), Some(0));
        let (client, accepted) = tokio::join!(tokio::net::UnixStream::connect(&path), listener.accept());
        let (client, accepted) = (client.unwrap(), accepted.unwrap());
        assert_eq!(connections_to(&bound), Some(1));
        drop((client, accepted));
        assert_eq!(connections_to(&bound), Some(0));
    }
}
