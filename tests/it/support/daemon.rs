//! Daemon-mode harness: a [`Daemon`] guard that no daemon outlives, and windows on it.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use ratchet::daemon::lifecycle::lock::{lock_is_free, pid_alive};
use serde_json::{Value, json};

use super::{AcpClient, TIMEOUT, TestEnv, ratchet_bin};

/// A daemon started for one test with `ratchet daemon start -b`. Dropping it runs
/// `ratchet daemon stop` and then SIGKILLs every daemon process this guard saw that is
/// still alive, so no daemon outlives its test.
pub struct Daemon {
    vars: Vec<(String, String)>,
    home: PathBuf,
    ratchet_home: PathBuf,
    pids: Mutex<Vec<u32>>,
}

impl Daemon {
    /// Starts the daemon of `env` (it inherits the env's provider variables).
    pub async fn start(env: &TestEnv) -> Daemon {
        let daemon = Daemon::guard(env);
        daemon.start_again(env).await;
        daemon
    }

    /// Only the guard, for daemons that `ratchet acp --daemon` starts itself.
    pub fn guard(env: &TestEnv) -> Daemon {
        Daemon {
            vars: env.vars().to_vec(),
            home: env.home_dir(),
            ratchet_home: env.ratchet_home(),
            pids: Mutex::new(Vec::new()),
        }
    }

    /// `ratchet daemon start -b`; returns the new daemon's pid.
    pub async fn start_again(&self, env: &TestEnv) -> u32 {
        let out = env.run(&["daemon", "start", "-b"]).await;
        assert!(out.status.success(), "`ratchet daemon start -b` failed: {}", describe(&out));
        let pid = self.pid().expect("a started daemon writes its pid file");
        self.pids.lock().unwrap().push(pid);
        assert!(text(&out.stdout).contains(&format!("started (pid {pid})")), "{}", describe(&out));
        pid
    }

    /// The pid in `RATCHET_HOME/daemon.pid`.
    pub fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.ratchet_home.join("daemon.pid")).ok()?.trim().parse().ok()
    }

    /// What the detached daemon wrote to stderr (`logs/daemon.out`).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.ratchet_home.join("logs").join("daemon.out")).unwrap_or_default()
    }

    /// SIGKILLs the running daemon and waits until it is gone: its pid, and its lock (the
    /// lock outlives the pid while the other threads of a killed daemon still exit).
    pub async fn kill9(&self) -> u32 {
        let pid = self.pid().expect("daemon pid");
        self.pids.lock().unwrap().push(pid);
        signal(pid, libc::SIGKILL);
        poll_until("the killed daemon to die", || !pid_alive(pid)).await;
        poll_until("the killed daemon's lock to be free", || lock_is_free(&self.ratchet_home)).await;
        pid
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(pid) = self.pid() {
            self.pids.lock().unwrap_or_else(|p| p.into_inner()).push(pid);
        }
        // `ratchet daemon stop`, bounded (blocking is fine: the tests run multi-threaded).
        let stop = std::process::Command::new(ratchet_bin())
            .args(["daemon", "stop"])
            .env_clear()
            .envs(self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir(&self.home)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        if let Ok(mut child) = stop {
            let deadline = std::time::Instant::now() + Duration::from_secs(15);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if std::time::Instant::now() >= deadline => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }
        for pid in self.pids.lock().unwrap_or_else(|p| p.into_inner()).iter().copied() {
            if pid_alive(pid) {
                signal(pid, libc::SIGKILL);
            }
        }
    }
}

pub fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: sends a signal to a process this test started.
    unsafe { libc::kill(pid as libc::pid_t, sig) };
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn describe(out: &std::process::Output) -> String {
    format!("status: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}", out.status, text(&out.stdout), text(&out.stderr))
}

/// Polls `done` every 10 ms until it holds; panics with `what` after [`TIMEOUT`].
pub async fn poll_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "timed out after {TIMEOUT:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Spawns `ratchet acp` (default mode), completes `initialize`, and checks from its log that
/// it serves through the daemon rather than an engine of its own.
pub async fn daemon_window(env: &TestEnv) -> AcpClient {
    let w = env.spawn_initialized().await;
    poll_until("the window to say it serves through the daemon", || w.stderr().contains("through the daemon")).await;
    w
}

pub fn load_params(session: &str, env: &TestEnv) -> Value {
    json!({"sessionId": session, "cwd": env.cwd(), "mcpServers": []})
}

/// `session/load`: the replayed updates (the response must succeed).
pub async fn load(w: &mut AcpClient, session: &str, env: &TestEnv) -> Vec<Value> {
    let (updates, result) = w.request_collect("session/load", load_params(session, env)).await;
    result.unwrap_or_else(|e| panic!("session/load failed: {e}"));
    updates
}

/// The session ids of `session/list`.
pub async fn listed(w: &mut AcpClient) -> Vec<String> {
    let list = w.call("session/list", json!({})).await;
    list["sessions"]
        .as_array()
        .unwrap_or_else(|| panic!("session/list without sessions: {list}"))
        .iter()
        .map(|s| s["sessionId"].as_str().unwrap().to_owned())
        .collect()
}
