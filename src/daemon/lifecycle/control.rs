//! Controlling a daemon from another process: start it detached, stop, status, reload.
//!
//! The socket answering `daemon.health` is the truth for "running and usable"; the lock is
//! the truth for "some daemon process exists" (it may be starting, stopping or stuck). Every
//! wait polls with a deadline.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::lock::{self, LockError, LockState};
use crate::daemon::client::{Client, ClientError};
use crate::daemon::paths::DaemonPaths;
use crate::daemon::protocol::Health;

/// How long a detached start may take before it counts as failed.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a graceful stop may take: the engine waits up to 3 s for turns to save and the
/// server up to 3 s for connections to close.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the daemon has after SIGTERM, when the graceful request went unanswered.
pub const TERM_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a reload may take: a stop plus a start.
pub const RELOAD_TIMEOUT: Duration = Duration::from_secs(20);
/// One probe of the socket; a daemon that accepts but never answers must not hang the CLI.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Polling pause while waiting.
const POLL: Duration = Duration::from_millis(50);

/// The file a detached daemon's stdout/stderr go to, under `logs/` (truncated at each
/// start; the daily logs next to it keep the history).
pub const OUTPUT_LOG: &str = "daemon.out";

/// What `status` found.
#[derive(Debug)]
pub enum Status {
    Running(Health),
    NotRunning,
    /// A process holds the lock but the socket does not answer (starting, stopping or stuck).
    Unresponsive {
        pid: Option<u32>,
        error: String,
    },
}

/// What `stop` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    NotRunning,
    /// Stopped; `forced` if it took SIGTERM rather than the control request.
    Stopped {
        pid: Option<u32>,
        forced: bool,
    },
}

/// A daemon started by [`start_background`].
#[derive(Debug, Clone)]
pub struct Started {
    pub pid: u32,
    pub socket: PathBuf,
    pub log: PathBuf,
}

/// `home` as an absolute path (the daemon runs with it as its cwd, so it must not be relative).
pub fn absolute_home(home: &Path) -> PathBuf {
    std::path::absolute(home).unwrap_or_else(|_| home.to_path_buf())
}

/// Asks the daemon on `home` for its health, within [`PROBE_TIMEOUT`].
pub async fn health(home: &Path) -> Result<Health, ClientError> {
    let socket = DaemonPaths::new(home).socket;
    let probe = async { Client::connect(&socket).await?.health().await };
    match tokio::time::timeout(PROBE_TIMEOUT, probe).await {
        Ok(result) => result,
        Err(_) => Err(ClientError::Rpc(format!("{} did not answer within {PROBE_TIMEOUT:?}", socket.display()))),
    }
}

/// Reports on the daemon of `home`.
pub async fn status(home: &Path) -> Status {
    match health(home).await {
        Ok(h) => Status::Running(h),
        Err(e) => match lock::probe(home) {
            LockState::Free => Status::NotRunning,
            LockState::Held(pid) => Status::Unresponsive { pid, error: e.to_string() },
        },
    }
}

/// Starts a daemon for `home` as a detached process running `exe daemon start` (new
/// session, stdin and stdout on /dev/null, stderr to `logs/daemon.out`), and waits until it
/// answers `health`. Fails at once if a daemon already runs there.
pub async fn start_background(home: &Path, exe: &Path) -> anyhow::Result<Started> {
    let home = absolute_home(home);
    // A holder that is already dead (killed, still being torn down) is no reason to refuse:
    // the new daemon's `DaemonLock::acquire` waits for it to let go.
    match lock::probe(&home) {
        LockState::Held(pid) if pid.is_none_or(lock::pid_alive) => {
            return Err(LockError::AlreadyRunning { home, pid }.into());
        }
        _ => {}
    }
    let paths = DaemonPaths::new(&home);
    crate::engine::data_dir::create_dir(&paths.logs)
        .with_context(|| format!("cannot create {}", paths.logs.display()))?;
    let log = paths.logs.join(OUTPUT_LOG);
    let output =
        crate::engine::data_dir::create_file(&log).with_context(|| format!("cannot create {}", log.display()))?;
    let mut command = std::process::Command::new(exe);
    command
        .args(["daemon", "start"])
        .env("RATCHET_HOME", &home)
        .current_dir(&home)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(output);
    crate::engine::secret_env::restore_for_ratchet(&mut command);
    detach(&mut command);
    let mut child = command.spawn().with_context(|| format!("cannot run {} to start the daemon", exe.display()))?;
    let pid = child.id();
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().context("cannot check on the starting daemon")? {
            bail!("the daemon exited while starting ({status}){}", tail_hint(&log));
        }
        if let Ok(h) = health(&home).await {
            if h.pid == pid {
                return Ok(Started { pid, socket: paths.socket, log });
            }
            // Another daemon won a race to start: ours fails on the lock and exits.
            return Err(LockError::AlreadyRunning { home, pid: Some(h.pid) }.into());
        }
        if Instant::now() >= deadline {
            bail!(
                "the daemon (pid {pid}) did not answer on {} within {START_TIMEOUT:?}; it may still be starting or be stuck{}; stop it with `ratchet daemon stop`",
                paths.socket.display(),
                tail_hint(&log)
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Puts the child in its own session: no controlling terminal, so closing the terminal
/// or pressing Ctrl-C there does not reach the daemon.
fn detach(command: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Stops the daemon of `home`: the control request first (running turns are cancelled and
/// saved), then SIGTERM if it does not answer or does not exit in time.
pub async fn stop(home: &Path) -> anyhow::Result<Stopped> {
    let home = absolute_home(home);
    let pid = match health(&home).await {
        Ok(h) => Some(h.pid),
        Err(_) => match lock::probe(&home) {
            LockState::Free => return Ok(Stopped::NotRunning),
            LockState::Held(pid) => pid,
        },
    };
    let asked = match Client::connect(&DaemonPaths::new(&home).socket).await {
        Ok(client) => tokio::time::timeout(PROBE_TIMEOUT, client.shutdown()).await.is_ok_and(|r| r.is_ok()),
        Err(_) => false,
    };
    if asked && wait_gone(&home, pid, STOP_TIMEOUT).await {
        return Ok(Stopped::Stopped { pid, forced: false });
    }
    let Some(pid) = pid else {
        bail!(
            "the daemon on RATCHET_HOME={} does not answer and its pid is unknown; find it with `pgrep -f 'ratchet daemon'`",
            home.display()
        );
    };
    tracing::warn!(pid, "the daemon did not stop on request; sending SIGTERM");
    send_signal(pid, libc::SIGTERM)?;
    if wait_gone(&home, Some(pid), TERM_TIMEOUT).await {
        return Ok(Stopped::Stopped { pid: Some(pid), forced: true });
    }
    bail!(
        "the daemon (pid {pid}) did not stop within {:?}; see {}; as a last resort `kill -9 {pid}` (acknowledged messages are safe in SQLite)",
        STOP_TIMEOUT + TERM_TIMEOUT,
        DaemonPaths::new(&home).logs.display()
    )
}

/// Reloads the daemon of `home` (new binary, same sessions) and waits until the new
/// process answers. Returns its health.
pub async fn reload(home: &Path) -> anyhow::Result<Health> {
    let home = absolute_home(home);
    let before = match health(&home).await {
        Ok(h) => h,
        Err(e) => match lock::probe(&home) {
            LockState::Free => bail!("{}", ClientError::NotRunning(home.display().to_string())),
            LockState::Held(None) => {
                bail!("the daemon does not answer ({e}) and its pid is unknown; try `ratchet daemon restart`")
            }
            LockState::Held(Some(pid)) => {
                send_signal(pid, libc::SIGUSR1)?;
                return wait_reloaded(&home, Instant::now(), Some(pid)).await;
            }
        },
    };
    let sent = Instant::now();
    let asked = match Client::connect(&DaemonPaths::new(&home).socket).await {
        Ok(client) => tokio::time::timeout(PROBE_TIMEOUT, client.reload()).await.is_ok_and(|r| r.is_ok()),
        Err(_) => false,
    };
    if !asked {
        // Signal only a daemon that still runs the old process: a fresh one may not have
        // installed its handler yet, and SIGUSR1's default action is to terminate.
        match health(&home).await {
            Ok(h) if h.pid == before.pid && u128::from(h.uptime_ms) >= sent.elapsed().as_millis() => {
                tracing::warn!(pid = before.pid, "the reload request went unanswered; sending SIGUSR1");
                send_signal(before.pid, libc::SIGUSR1)?;
            }
            _ => {} // the old process stopped answering or a new one answers: under way
        }
    }
    wait_reloaded(&home, sent, Some(before.pid)).await
}

/// Waits until a process started after `sent` answers on the socket.
async fn wait_reloaded(home: &Path, sent: Instant, old_pid: Option<u32>) -> anyhow::Result<Health> {
    let deadline = sent + RELOAD_TIMEOUT;
    loop {
        if let Ok(h) = health(home).await {
            // After `exec` the pid is the same; a fresh uptime tells the new process apart.
            if Some(h.pid) != old_pid || u128::from(h.uptime_ms) < sent.elapsed().as_millis() {
                return Ok(h);
            }
        }
        if Instant::now() >= deadline {
            let logs = DaemonPaths::new(home).logs;
            bail!(
                "the daemon did not come back within {RELOAD_TIMEOUT:?} after the reload; see {}; `ratchet daemon status` tells whether it runs",
                logs.display()
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Makes sure a daemon answers on `home`, starting a detached one (through this binary's
/// `daemon start --background`) if none does. Used by `ratchet acp --daemon`.
pub async fn ensure_running(home: &Path) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("cannot find this program's path to start the daemon")?;
    ensure_running_with(home, &exe).await
}

/// [`ensure_running`] with the `ratchet` binary to run (tests).
///
/// The intermediate `daemon start --background` process exits once the daemon answers, so
/// the daemon is never our child (nothing to reap) and two racing callers both succeed.
pub async fn ensure_running_with(home: &Path, exe: &Path) -> anyhow::Result<()> {
    let home = absolute_home(home);
    if health(&home).await.is_ok() {
        return Ok(());
    }
    let starter = tokio::process::Command::new(exe)
        .args(["daemon", "start", "--background"])
        .env("RATCHET_HOME", &home)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(START_TIMEOUT + PROBE_TIMEOUT * 2, starter)
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "starting the daemon took longer than {START_TIMEOUT:?}; see {}",
                DaemonPaths::new(&home).logs.display()
            )
        })?
        .with_context(|| format!("cannot run {} to start the daemon", exe.display()))?;
    if output.status.success() {
        return Ok(());
    }
    // Lost a race to another starter: its daemon holds the lock and answers shortly.
    let deadline = Instant::now() + START_TIMEOUT;
    while matches!(lock::probe(&home), LockState::Held(_)) && Instant::now() < deadline {
        if health(&home).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(POLL).await;
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let reason = stderr.lines().rev().find(|l| l.starts_with("error:")).unwrap_or(stderr.trim());
    bail!("cannot start the daemon on RATCHET_HOME={}: {reason}", home.display())
}

/// Waits until the daemon is gone: its lock is free or its pid is dead.
async fn wait_gone(home: &Path, pid: Option<u32>, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if lock::lock_is_free(home) || pid.is_some_and(|p| !lock::pid_alive(p)) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
}

fn send_signal(pid: u32, signal: libc::c_int) -> anyhow::Result<()> {
    let raw = libc::pid_t::try_from(pid).context("pid out of range")?;
    // SAFETY: sends a signal; touches no memory.
    if unsafe { libc::kill(raw, signal) } == -1 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ESRCH) {
            return Err(e).with_context(|| format!("cannot signal the daemon (pid {pid})"));
        }
    }
    Ok(())
}

/// "; its output: <path>:\n<last lines>", for start-up errors.
fn tail_hint(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    // The CLI's own "error: ..." line says it all; else the last few lines.
    let tail = match lines.iter().rev().find(|l| l.starts_with("error:")) {
        Some(error) => error.to_string(),
        None => lines[lines.len().saturating_sub(5)..].join("\n  "),
    };
    if tail.is_empty() {
        format!("; see {}", log.display())
    } else {
        format!("; its output ({}):\n  {tail}", log.display())
    }
}
