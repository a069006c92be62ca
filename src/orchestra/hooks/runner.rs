//! Running one hook: `sh -c COMMAND` in the session's directory, the event as JSON on stdin
//! and as `RATCHET_*` variables, with the environment commands get (no secrets, never a
//! provider key), in a process group of its own that is killed whole at the timeout. Its
//! output is kept to [`MAX_OUTPUT`] bytes per stream and redacted.
//!
//! Unlike the `shell` tool, a hook runs without an exec guard (the guard's stdin is its
//! lifeline, and a hook's stdin is the event): if ratchet is killed mid-hook, the hook runs on
//! to its own end, which its timeout no longer bounds.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::engine::secret_env::CommandEnv;
use crate::engine::tools::exec_guard::GroupGuard;
use crate::engine::tools::redact::Redactor;

/// Output kept of each stream (stdout, stderr); the rest is read and dropped.
pub const MAX_OUTPUT: usize = 16 * 1024;
/// How long to wait for output pipes after the hook exited (a background job it left may hold
/// them open).
const DRAIN_GRACE: Duration = Duration::from_millis(500);

/// What a run needs beside the command.
pub struct RunInput<'a> {
    pub cwd: &'a Path,
    pub timeout: Duration,
    /// The event's JSON.
    pub stdin: Vec<u8>,
    /// The `RATCHET_*` variables, added to `env`.
    pub variables: &'a [(String, String)],
    pub env: &'a CommandEnv,
    pub redactor: &'a Redactor,
}

/// How a hook's run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunEnd {
    Exited(i32),
    /// Killed by a signal it did not get from us.
    Signalled(i32),
    /// It ran past its timeout; its process group was killed.
    TimedOut(Duration),
    /// `sh` could not be started (a missing directory, say).
    NotStarted(String),
}

/// A finished run: how it ended and what it said (stdout, then stderr; redacted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookRun {
    pub end: RunEnd,
    pub output: String,
}

impl HookRun {
    /// Exit code 0: the action may go on.
    pub fn succeeded(&self) -> bool {
        self.end == RunEnd::Exited(0)
    }
}

impl std::fmt::Display for RunEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunEnd::Exited(code) => write!(f, "exit code {code}"),
            RunEnd::Signalled(sig) => write!(f, "killed by signal {sig}"),
            RunEnd::TimedOut(t) => write!(f, "timed out after {} and was killed", humantime::format_duration(*t)),
            RunEnd::NotStarted(why) => write!(f, "could not start: {why}"),
        }
    }
}

/// Runs `command` to its end or its timeout. Dropping the future kills the hook's group.
pub async fn run(command: &str, input: RunInput<'_>) -> HookRun {
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c")
        .arg(command)
        .current_dir(input.cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    input.env.apply(&mut cmd);
    cmd.envs(input.variables.iter().map(|(k, v)| (k, v)));
    #[cfg(unix)]
    cmd.process_group(0);
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            let why = format!("`sh` in {}: {e}", input.cwd.display());
            return HookRun { end: RunEnd::NotStarted(why), output: String::new() };
        }
    };
    let mut group = GroupGuard(child.id());
    let readers = [tokio::spawn(capture(child.stdout.take())), tokio::spawn(capture(child.stderr.take()))];
    let (stdin, event) = (child.stdin.take(), input.stdin);
    let feed = async move {
        if let Some(mut pipe) = stdin {
            // A hook that does not read its stdin closes it: not an error.
            let _ = pipe.write_all(&event).await;
        }
    };
    let ran = async {
        tokio::pin!(feed);
        let mut fed = false;
        loop {
            tokio::select! {
                () = &mut feed, if !fed => fed = true,
                status = child.wait() => break status,
            }
        }
    };
    let end = match tokio::time::timeout(input.timeout, ran).await {
        Ok(Ok(status)) => {
            // Background jobs it left run on, as with any command.
            group.0 = None;
            exit_end(status)
        }
        Ok(Err(e)) => RunEnd::NotStarted(format!("waiting for it failed: {e}")),
        Err(_) => {
            group.kill();
            let _ = child.kill().await;
            RunEnd::TimedOut(input.timeout)
        }
    };
    let drained_by = tokio::time::Instant::now() + DRAIN_GRACE;
    let mut streams = Vec::with_capacity(2);
    for mut reader in readers {
        match tokio::time::timeout_at(drained_by, &mut reader).await {
            Ok(Ok(text)) => streams.push(text),
            _ => {
                reader.abort();
                streams.push(String::new());
            }
        }
    }
    let output: Vec<&str> = streams.iter().map(|s| s.trim()).filter(|s| !s.is_empty()).collect();
    HookRun { end, output: input.redactor.redact(&output.join("\n")) }
}

fn exit_end(status: std::process::ExitStatus) -> RunEnd {
    if let Some(code) = status.code() {
        return RunEnd::Exited(code);
    }
    #[cfg(unix)]
    if let Some(sig) = std::os::unix::process::ExitStatusExt::signal(&status) {
        return RunEnd::Signalled(sig);
    }
    RunEnd::Exited(-1)
}

/// Reads a stream to its end, keeping the first [`MAX_OUTPUT`] bytes.
async fn capture(pipe: Option<impl AsyncRead + Unpin>) -> String {
    let Some(mut pipe) = pipe else { return String::new() };
    let mut kept = Vec::new();
    let mut buf = vec![0u8; 8 * 1024];
    let mut dropped = 0usize;
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = MAX_OUTPUT.saturating_sub(kept.len()).min(n);
                kept.extend_from_slice(&buf[..room]);
                dropped += n - room;
            }
        }
    }
    let mut text = String::from_utf8_lossy(&kept).into_owned();
    if dropped > 0 {
        text.push_str(&format!("\n[… {dropped} more bytes cut]"));
    }
    text
}
