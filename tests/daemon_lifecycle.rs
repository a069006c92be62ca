//! The daemon's lifecycle over the real binary: `ratchet daemon start -b|stop|status|restart|
//! reload`, the one-daemon-per-data-directory lock, stale-file recovery after a crash, signals,
//! the idle timer, and a reload in the middle of a turn.
//!
//! Every test gets its own temporary `HOME` and `RATCHET_HOME` and a cleared environment with
//! the offline `scripted` provider. Every wait polls with a deadline; a test's `Home` kills any
//! daemon it left behind.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ratchet::daemon::client::Client;
use ratchet::daemon::lifecycle::lock::pid_alive;
use ratchet::engine::store::MessageStatus;
use ratchet::engine::tools::NoHost;
use ratchet::engine::{ChatEvent, ContentPart, EngineApi, Role};

/// Upper bound for any one wait.
const TIMEOUT: Duration = Duration::from_secs(30);

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_ratchet")
}

/// A data directory for one test, and the environment to run `ratchet` in.
struct Home {
    root: tempfile::TempDir,
    extra: Vec<(String, String)>,
}

impl Home {
    fn new() -> Home {
        // Under /tmp directly: socket paths must stay short.
        let root = tempfile::Builder::new().prefix("rd-").tempdir_in("/tmp").expect("temp dir");
        for sub in ["home", "rh", "ws"] {
            std::fs::create_dir_all(root.path().join(sub)).unwrap();
        }
        Home { root, extra: Vec::new() }
    }

    fn rh(&self) -> PathBuf {
        self.root.path().join("rh")
    }

    fn ws(&self) -> PathBuf {
        self.root.path().join("ws")
    }

    fn socket(&self) -> PathBuf {
        self.rh().join("daemon.sock")
    }

    fn pid_file(&self) -> PathBuf {
        self.rh().join("daemon.pid")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()))
            .env("HOME", self.root.path().join("home"))
            .env("RATCHET_HOME", self.rh())
            .env("RATCHET_PROVIDER", "scripted")
            .env("NO_COLOR", "1")
            .current_dir(self.ws())
            .stdin(Stdio::null());
        for (k, v) in &self.extra {
            c.env(k, v);
        }
        c
    }

    /// Runs `ratchet <args>` to completion (within [`TIMEOUT`]).
    fn run(&self, args: &[&str]) -> Output {
        let child = self.command(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let pid = child.id();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(child.wait_with_output()));
        match rx.recv_timeout(TIMEOUT) {
            Ok(out) => out.unwrap(),
            Err(_) => {
                kill(pid, libc::SIGKILL);
                panic!("`ratchet {}` did not finish within {TIMEOUT:?}", args.join(" "));
            }
        }
    }

    /// Runs and expects success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "`ratchet {}` failed: {}", args.join(" "), describe(&out));
        String::from_utf8(out.stdout).unwrap()
    }

    fn start(&self) -> u32 {
        let out = self.ok(&["daemon", "start", "-b"]);
        let pid = self.pid().expect("a started daemon writes its pid");
        assert!(out.contains(&format!("started (pid {pid})")), "{out}");
        pid
    }

    fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.pid_file()).ok()?.trim().parse().ok()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.rh().join("logs").join("daemon.out")).unwrap_or_default()
    }

    fn make_sessions(&self, n: usize) {
        for i in 0..n {
            self.ok(&["exec", &format!("hello {i}")]);
        }
    }

    fn session_list(&self) -> String {
        self.ok(&["sessions", "list"])
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        if let Some(pid) = self.pid().filter(|p| pid_alive(*p)) {
            kill(pid, libc::SIGKILL);
        }
    }
}

fn describe(out: &Output) -> String {
    format!(
        "status {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn kill(pid: u32, signal: libc::c_int) {
    // SAFETY: sends a signal to a process this test started.
    unsafe { libc::kill(pid as libc::pid_t, signal) };
}

/// Polls `done` until it holds, panicking with `what` after [`TIMEOUT`].
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out after {TIMEOUT:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn assert_stopped_cleanly(home: &Home, pid: u32) {
    wait_until("the daemon to exit", || !pid_alive(pid));
    assert!(!home.socket().exists(), "the socket is removed");
    assert!(!home.pid_file().exists(), "the pid file is removed");
}

#[test]
fn start_status_second_start_and_stop() {
    let home = Home::new();
    let pid = home.start();
    assert!(pid_alive(pid));
    let mode = std::fs::symlink_metadata(home.socket()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the socket is private");

    let status = home.ok(&["daemon", "status"]);
    assert!(status.contains(&format!("pid:           {pid}")), "{status}");
    assert!(status.contains(env!("CARGO_PKG_VERSION")), "{status}");
    assert!(status.contains(&home.socket().display().to_string()), "{status}");
    assert!(status.contains("running turns: 0"), "{status}");

    // A second daemon, detached or not, fails at once and names the first.
    let expected = format!("a daemon is already running on RATCHET_HOME={} (pid {pid})", home.rh().display());
    for args in [&["daemon", "start", "-b"][..], &["daemon", "start"][..]] {
        let out = home.run(args);
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(&expected) && stderr.contains("ratchet daemon stop"), "{}", describe(&out));
        assert!(out.stdout.is_empty(), "{}", describe(&out));
    }
    assert!(pid_alive(pid), "the first daemon is untouched");

    let stopped = home.ok(&["daemon", "stop"]);
    assert!(stopped.contains(&format!("stopped (pid {pid})")), "{stopped}");
    assert_stopped_cleanly(&home, pid);

    let out = home.run(&["daemon", "status"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("no daemon is running"), "{}", describe(&out));
    let again = home.ok(&["daemon", "stop"]);
    assert!(again.contains("no daemon is running"), "{again}");
}

#[test]
fn stale_socket_and_pid_file_are_recovered() {
    let home = Home::new();
    // What a crashed daemon leaves: a socket nobody listens on and a pid file.
    drop(std::os::unix::net::UnixListener::bind(home.socket()).unwrap());
    std::fs::write(home.pid_file(), "999999\n").unwrap();
    let out = home.run(&["daemon", "status"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));

    let pid = home.start();
    assert_ne!(pid, 999_999);
    assert!(home.ok(&["daemon", "status"]).contains(&format!("pid:           {pid}")));
    assert!(home.log().contains("stale socket"), "{}", home.log());
    home.ok(&["daemon", "stop"]);
    assert_stopped_cleanly(&home, pid);
}

#[test]
fn a_failed_start_says_why_and_where_the_output_is() {
    let home = Home::new();
    std::fs::write(home.socket(), "not a socket").unwrap();
    let out = home.run(&["daemon", "start", "-b"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("exited while starting"), "{}", describe(&out));
    assert!(stderr.contains("is not a socket; move it aside"), "{}", describe(&out));
    assert!(stderr.contains(&home.rh().join("logs").join("daemon.out").display().to_string()), "{}", describe(&out));
    assert_eq!(std::fs::read_to_string(home.socket()).unwrap(), "not a socket", "left alone");
}

#[test]
fn kill_9_then_start_again_keeps_the_database_sound() {
    let home = Home::new();
    home.make_sessions(2);
    let first = home.start();
    kill(first, libc::SIGKILL);
    wait_until("the killed daemon to die", || !pid_alive(first));
    assert!(home.socket().exists(), "kill -9 leaves the socket behind");

    let second = home.start();
    assert_ne!(first, second);
    let conn = rusqlite::Connection::open(home.rh().join("ratchet.db")).unwrap();
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
    assert_eq!(home.session_list().lines().count(), 2);
    home.ok(&["daemon", "stop"]);
    assert_stopped_cleanly(&home, second);
}

/// Right after `kill -9` the dead daemon may still hold the lock for a moment while the
/// kernel tears it down; a start then waits for it instead of saying "already running".
#[test]
fn start_right_after_kill_9_waits_for_the_dying_daemon() {
    let home = Home::new();
    let mut pid = home.start();
    for _ in 0..3 {
        kill(pid, libc::SIGKILL);
        let next = home.start();
        assert_ne!(next, pid);
        pid = next;
    }
    home.ok(&["daemon", "stop"]);
    assert_stopped_cleanly(&home, pid);
}

#[test]
fn reload_keeps_sessions_and_a_live_pid() {
    let home = Home::new();
    home.make_sessions(3);
    let before = home.session_list();
    let pid = home.start();

    let out = home.ok(&["daemon", "reload"]);
    assert!(out.contains("reloaded"), "{out}");
    let now = home.pid().expect("pid file after reload");
    assert!(pid_alive(now), "the pid file names a live daemon");
    assert_eq!(now, pid, "reload execs in place");
    assert!(home.ok(&["daemon", "status"]).contains(&format!("pid:           {now}")));
    assert_eq!(home.session_list(), before, "every session is still there");
    assert!(!home.rh().join("daemon.checkpoint.json").exists(), "the new process took the checkpoint");
    assert!(home.log().contains("resumed after a reload"), "{}", home.log());

    // SIGUSR1 reloads too.
    kill(pid, libc::SIGUSR1);
    wait_until("a second resume in the log", || home.log().matches("resumed after a reload").count() == 2);
    wait_until("the daemon to answer again", || home.run(&["daemon", "status"]).status.success());

    let out = home.ok(&["daemon", "restart"]);
    let restarted = home.pid().unwrap();
    assert!(out.contains(&format!("restarted (pid {restarted})")), "{out}");
    assert_ne!(restarted, pid);
    assert!(!pid_alive(pid));
    home.ok(&["daemon", "stop"]);
    assert_stopped_cleanly(&home, restarted);
}

#[test]
fn sigterm_stops_gracefully() {
    let home = Home::new();
    let pid = home.start();
    kill(pid, libc::SIGTERM);
    assert_stopped_cleanly(&home, pid);
    assert!(home.log().contains("SIGTERM: stopping"), "{}", home.log());
}

#[test]
fn foreground_daemon_prints_nothing_and_stops_on_sigint() {
    let home = Home::new();
    let child = home.command(&["daemon", "start"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let pid = child.id();
    wait_until("the foreground daemon to answer", || home.run(&["daemon", "status"]).status.success());
    kill(pid, libc::SIGINT);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    let out = rx.recv_timeout(TIMEOUT).expect("the daemon exits on SIGINT").unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    assert!(out.stdout.is_empty(), "stdout stays clean: {}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("SIGINT: stopping"), "{}", describe(&out));
    assert!(!home.socket().exists());
}

#[test]
fn idle_daemon_stops_itself() {
    let home = Home::new();
    std::fs::write(home.rh().join("config.toml"), "daemon_idle_timeout_secs = 1\n").unwrap();
    let pid = home.start();
    assert_stopped_cleanly(&home, pid);
    assert!(home.log().contains("idle"), "{}", home.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn ensure_running_starts_one_daemon_for_racing_callers() {
    let home = Home::new();
    let rh = home.rh();
    let (a, b) = tokio::join!(
        ratchet::daemon::lifecycle::ensure_running_with(&rh, Path::new(bin())),
        ratchet::daemon::lifecycle::ensure_running_with(&rh, Path::new(bin())),
    );
    a.unwrap();
    b.unwrap();
    let health = Client::connect(&home.socket()).await.unwrap().health().await.unwrap();
    assert_eq!(Some(health.pid), home.pid());
    // Already running: nothing new starts.
    ratchet::daemon::lifecycle::ensure_running_with(&rh, Path::new(bin())).await.unwrap();
    assert_eq!(Some(health.pid), home.pid());
    tokio::task::spawn_blocking(move || {
        home.ok(&["daemon", "stop"]);
        assert_stopped_cleanly(&home, health.pid);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn reload_cancels_and_saves_a_running_turn() {
    let mut home = Home::new();
    let words = "word ".repeat(200);
    let script = serde_json::json!({"turns": [{"text": words, "chunk_delay_ms": 50}]});
    let script_path = home.root.path().join("script.json");
    std::fs::write(&script_path, script.to_string()).unwrap();
    home.extra.push(("RATCHET_SCRIPT".into(), script_path.display().to_string()));
    let home = Arc::new(home);
    let h = home.clone();
    tokio::task::spawn_blocking(move || h.start()).await.unwrap();

    let engine = Client::connect(&home.socket()).await.unwrap().into_engine();
    let session = engine.create_session(home.ws(), Vec::new(), Vec::new()).await.unwrap();
    let mut turn =
        engine.send_message(session.id.clone(), vec![ContentPart::text("go")], Arc::new(NoHost)).await.unwrap();
    // Mid-answer: the first words have streamed.
    let streaming = async {
        loop {
            match turn.events.recv().await {
                Some(ChatEvent::TextDelta(_)) => break,
                Some(ChatEvent::Complete { .. } | ChatEvent::Error { .. }) | None => {
                    panic!("the turn ended before streaming")
                }
                Some(_) => {}
            }
        }
    };
    tokio::time::timeout(TIMEOUT, streaming).await.expect("the answer starts streaming");

    let h = home.clone();
    let out = tokio::task::spawn_blocking(move || h.ok(&["daemon", "reload"])).await.unwrap();
    assert!(out.contains("reloaded"), "{out}");
    // The old connection ends with the old process.
    tokio::time::timeout(TIMEOUT, async { while turn.events.recv().await.is_some() {} })
        .await
        .expect("the turn stream ends");

    let engine = Client::connect(&home.socket()).await.unwrap().into_engine();
    let history = engine.history(session.id.clone()).await.unwrap();
    let last = history.last().expect("history");
    assert_eq!(last.role, Role::Assistant);
    assert_eq!(last.status, MessageStatus::Cancelled, "the partial answer is saved, marked cancelled");
    assert!(home.log().contains("1 turn(s) were cancelled and saved"), "{}", home.log());
    let h = home.clone();
    tokio::task::spawn_blocking(move || h.ok(&["daemon", "stop"])).await.unwrap();
}
