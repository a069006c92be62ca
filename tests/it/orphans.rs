//! Commands die with ratchet (issue 7, item 4): `kill -9` of a stand-alone `ratchet acp`, or
//! of the daemon, during a `shell` call kills the command and what it started; and the exec
//! guard that sees to it passes the command's output, environment and status through.
//!
//! The commands leave a grandchild (`sleep 300 &` under `sh`), so killing `sh` alone would
//! not do. A [`Reaper`] kills that grandchild if a test fails, so none outlives its test.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use ratchet::daemon::lifecycle::lock::pid_alive;
use ratchet::engine::tools::exec_guard::GUARD_ARG;
use serde_json::json;

use crate::support::daemon::{Daemon, daemon_window, poll_until};
use crate::support::{AcpClient, MockLlm, MockReply, TestEnv, ratchet_bin, within};

/// A command that leaves a grandchild, writes its pid to `orphan.pid` and waits for it.
const COMMAND: &str = "sleep 300 & echo $! > orphan.pid; wait";

/// How long a dead ratchet's command may take to die.
const DIE_WITHIN: Duration = Duration::from_secs(5);

/// SIGKILLs a process on drop if it still runs.
struct Reaper(u32);

impl Drop for Reaper {
    fn drop(&mut self) {
        if pid_alive(self.0) {
            // SAFETY: signals a process this test started.
            unsafe { libc::kill(self.0 as libc::pid_t, libc::SIGKILL) };
        }
    }
}

/// Waits for the pid that [`COMMAND`] writes in `dir`.
async fn grandchild(dir: &Path) -> Reaper {
    let file = dir.join("orphan.pid");
    let read = || std::fs::read_to_string(&file).ok().and_then(|s| s.trim().parse::<u32>().ok());
    poll_until("the command to write its grandchild's pid", || read().is_some()).await;
    let pid = read().unwrap_or_default();
    assert!(pid_alive(pid), "the grandchild {pid} runs while ratchet does");
    Reaper(pid)
}

/// Asserts that the process dies (or is a zombie) within [`DIE_WITHIN`].
async fn assert_dies(process: &Reaper, after: &str) {
    let deadline = tokio::time::Instant::now() + DIE_WITHIN;
    while pid_alive(process.0) {
        assert!(tokio::time::Instant::now() < deadline, "the command's grandchild {} outlived {after}", process.0);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Opens a yolo session (no permission question) and prompts a turn that runs [`COMMAND`].
async fn start_command(mock: &MockLlm, client: &mut AcpClient, env: &TestEnv) {
    mock.enqueue(MockReply::tool("call_orphan", "shell", json!({"command": COMMAND})));
    let session = client.new_session(&env.cwd()).await;
    client.set_mode(&session, "yolo").await;
    client
        .send_request("session/prompt", json!({"sessionId": session, "prompt": [{"type": "text", "text": "Run it"}]}))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_dies_with_a_killed_stand_alone_agent() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let mut client = env.spawn_initialized().await;
    start_command(&mock, &mut client, &env).await;
    let sleep = grandchild(&env.workspace()).await;
    client.kill9().await;
    assert_dies(&sleep, "kill -9 of `ratchet acp`").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_command_dies_with_a_killed_daemon() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let daemon = Daemon::start(&env).await;
    let mut window = daemon_window(&env).await;
    start_command(&mock, &mut window, &env).await;
    let sleep = grandchild(&env.workspace()).await;
    daemon.kill9().await;
    assert_dies(&sleep, "kill -9 of the daemon").await;
}

/// Starts `ratchet GUARD_ARG command` in `dir` the way the shell tool does (own group, stdin
/// the lifeline), with `PROBE` set in its environment.
fn spawn_guard(dir: &Path, command: &str) -> tokio::process::Child {
    tokio::process::Command::new(ratchet_bin())
        .arg(GUARD_ARG)
        .arg(command)
        .current_dir(dir)
        .env("PROBE", "passed through")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .expect("spawn the exec guard")
}

/// Runs `command` under a guard whose lifeline stays open; its output.
async fn guarded(command: &str) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let mut child = spawn_guard(dir.path(), command);
    let lifeline = child.stdin.take();
    let out = within(&format!("the guarded `{command}`"), child.wait_with_output()).await.expect("wait");
    drop(lifeline);
    out
}

#[tokio::test]
async fn the_exec_guard_passes_output_environment_and_status_through() {
    let out = guarded("echo \"$PROBE\"; echo err >&2; exit 3").await;
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "passed through\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");

    // The command's stdin is /dev/null, not the lifeline (which never ends while we live).
    let out = guarded("cat; echo after").await;
    assert_eq!((out.status.code(), String::from_utf8_lossy(&out.stdout).as_ref()), (Some(0), "after\n"));

    // A command killed by a signal: the guard dies of the same one.
    let out = guarded("kill -TERM $$").await;
    assert_eq!(out.status.signal(), Some(libc::SIGTERM), "{:?}", out.status);

    // Bad use is an error, not a panic.
    let out =
        within("the guard without a command", tokio::process::Command::new(ratchet_bin()).arg(GUARD_ARG).output())
            .await
            .expect("run the guard");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage"), "{out:?}");
}

#[tokio::test]
async fn the_exec_guard_kills_its_group_when_the_lifeline_ends() {
    let dir = tempfile::tempdir().unwrap();
    let mut guard = spawn_guard(dir.path(), COMMAND);
    let sleep = grandchild(dir.path()).await;
    drop(guard.stdin.take());
    let status = within("the guard to end", guard.wait()).await.expect("wait for the guard");
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    assert_dies(&sleep, "the end of the guard's lifeline").await;
}
