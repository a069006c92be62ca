//! `shell`: runs a command with `sh -c` in the session directory.
//!
//! In an editor terminal when the editor offers them (the user watches it run), else as a
//! local child process: stdin closed, stdout then stderr captured with bounded memory, a
//! timeout, and cancellation. A local command runs in its own process group so a timeout or
//! cancel kills everything it started, not just `sh`; an [`exec_guard`] leads that group and
//! kills it if ratchet dies mid-command. The model sees at most
//! [`OUTPUT_LIMIT`] bytes (head and tail kept) plus the exit status, secrets redacted.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::common::{fenced, finish, one_line, parse_args};
use super::exec_guard::{self, GroupGuard};
use super::{CommandRequest, Display, Preview, Tool, ToolContext, ToolKind, ToolOutput};
use crate::engine::provider::ToolSpec;

/// Output the model sees, at most.
pub const OUTPUT_LIMIT: usize = 64 * 1024;
/// A sensible `ToolContext::shell_timeout` when the configuration does not set one.
pub const DEFAULT_SHELL_TIMEOUT: Duration = Duration::from_secs(120);
/// Longest timeout the model may ask for.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(600);
/// How long to wait for output pipes to close after the command ended (background jobs
/// that keep them open are left running).
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// Runs shell commands.
pub struct ShellTool;

#[derive(Deserialize)]
struct Args {
    command: String,
    timeout_secs: Option<u64>,
}

impl Tool for ShellTool {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "shell".into(),
            description: format!(
                "Run a shell command (`sh -c`) in the session directory and return its output (stdout, then \
                 stderr) and exit code. No stdin: do not run interactive programs. Output is capped at {} KiB \
                 (start and end kept). Default timeout applies unless timeout_secs is given (max {}).",
                OUTPUT_LIMIT / 1024,
                MAX_TIMEOUT.as_secs()
            ),
            parameters: json!({
                "type": "object",
                "properties": {
                    "command": {"type": "string", "description": "The command line."},
                    "timeout_secs": {"type": "integer", "minimum": 1, "maximum": MAX_TIMEOUT.as_secs(), "description": "Kill the command after this many seconds."}
                },
                "required": ["command"],
                "additionalProperties": false
            }),
        }
    }

    fn kind(&self) -> ToolKind {
        ToolKind::Execute
    }

    fn preview<'a>(&'a self, args: &'a Value, _cx: &'a ToolContext) -> BoxFuture<'a, Preview> {
        Box::pin(async move {
            let (title, display) = match parse_args::<Args>("shell", args) {
                Ok(a) => (format!("Run `{}`", one_line(&a.command, 80)), vec![Display::Text(fenced(&a.command))]),
                Err(_) => ("Run command".into(), vec![]),
            };
            Preview { title, locations: vec![], display }
        })
    }

    fn run<'a>(&'a self, args: Value, cx: &'a ToolContext) -> BoxFuture<'a, ToolOutput> {
        Box::pin(async move { finish(cx, shell(cx, &args).await) })
    }
}

async fn shell(cx: &ToolContext, args: &Value) -> Result<ToolOutput, String> {
    let a: Args = parse_args("shell", args)?;
    if a.command.trim().is_empty() {
        return Err("command is empty".into());
    }
    let timeout = match a.timeout_secs {
        Some(0) => return Err("timeout_secs must be at least 1".into()),
        Some(s) => Duration::from_secs(s).min(MAX_TIMEOUT),
        None => cx.shell_timeout,
    };
    if cx.host.can_run() {
        return run_in_editor(cx, a.command, timeout).await;
    }
    run_local(cx, &a.command, timeout).await
}

async fn run_in_editor(cx: &ToolContext, command: String, timeout: Duration) -> Result<ToolOutput, String> {
    let request = CommandRequest {
        command,
        cwd: cx.cwd.clone(),
        timeout,
        output_limit: OUTPUT_LIMIT,
        tool_call_id: cx.call_id.clone(),
    };
    let run = cx
        .host
        .run_command(request, cx.cancel.clone())
        .await
        .map_err(|e| format!("could not run the command in the editor's terminal: {e}"))?;
    let mut text = run.output;
    if run.truncated {
        text.insert_str(0, &format!("[output cut: only the last {} KiB are kept]\n", OUTPUT_LIMIT / 1024));
    }
    let (status, ok) = match (run.exit_code, &run.signal) {
        (Some(code), _) => (format!("[exit code: {code}]"), code == 0),
        (None, Some(sig)) => (format!("[killed by signal {sig}]"), false),
        (None, None) => ("[no exit status: the command was stopped or timed out]".to_string(), false),
    };
    Ok(ToolOutput {
        content: join_status(&text, &status),
        is_error: !ok,
        display: vec![Display::Terminal(run.terminal_id)],
        locations: vec![],
        plan: None,
    })
}

/// How a local run ended.
enum End {
    Exited(std::process::ExitStatus),
    TimedOut,
    Cancelled,
}

async fn run_local(cx: &ToolContext, command: &str, timeout: Duration) -> Result<ToolOutput, String> {
    let cannot_start = |e: std::io::Error| format!("cannot start `sh` in {}: {e}", cx.cwd.display());
    // `sh -c`, under an exec guard that kills the group if ratchet dies; held to the end.
    let (mut cmd, _lifeline) = exec_guard::sh_command(command).map_err(cannot_start)?;
    cmd.current_dir(&cx.cwd).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    cx.command_env.apply(&mut cmd);
    #[cfg(unix)]
    cmd.process_group(0);
    let mut child = cmd.spawn().map_err(cannot_start)?;
    drop(cmd);
    // Kills the whole group if this future is dropped mid-run.
    let mut group = GroupGuard(child.id());
    let stdout = Arc::new(Mutex::new(Capture::default()));
    let stderr = Arc::new(Mutex::new(Capture::default()));
    let readers = [
        tokio::spawn(capture(child.stdout.take(), stdout.clone())),
        tokio::spawn(capture(child.stderr.take(), stderr.clone())),
    ];

    let end = tokio::select! {
        status = child.wait() => End::Exited(status.map_err(|e| format!("waiting for the command failed: {e}"))?),
        _ = tokio::time::sleep(timeout) => End::TimedOut,
        _ = cx.cancel.cancelled() => End::Cancelled,
    };
    if matches!(end, End::Exited(_)) {
        // Background jobs it left behind may keep running.
        group.0 = None;
    } else {
        group.kill();
        let _ = child.kill().await;
    }
    let drained_by = tokio::time::Instant::now() + DRAIN_GRACE;
    for mut reader in readers {
        if tokio::time::timeout_at(drained_by, &mut reader).await.is_err() {
            tracing::debug!("command output still open after it ended; not waiting for it");
            reader.abort();
        }
    }

    let (out, err) = (take(&stdout), take(&stderr));
    let text = render(&out, &err);
    let (status, ok) = match end {
        End::Exited(s) => exit_status(s),
        End::TimedOut => (format!("[timed out after {}; the command was killed]", seconds(timeout)), false),
        End::Cancelled => ("[cancelled; the command was killed]".to_string(), false),
    };
    let content = join_status(&text, &status);
    Ok(ToolOutput { display: vec![Display::Text(fenced(&content))], is_error: !ok, ..ToolOutput::text(content) })
}

/// `30s`, or `300ms` under a second.
fn seconds(d: Duration) -> String {
    if d < Duration::from_secs(1) { format!("{}ms", d.as_millis()) } else { format!("{}s", d.as_secs()) }
}

fn join_status(text: &str, status: &str) -> String {
    if text.is_empty() { status.to_string() } else { format!("{}\n{status}", text.trim_end_matches('\n')) }
}

fn exit_status(s: std::process::ExitStatus) -> (String, bool) {
    if let Some(code) = s.code() {
        return (format!("[exit code: {code}]"), code == 0);
    }
    #[cfg(unix)]
    if let Some(sig) = std::os::unix::process::ExitStatusExt::signal(&s) {
        return (format!("[killed by signal {sig}]"), false);
    }
    ("[exited without a status]".to_string(), false)
}

/// One output stream: its first and last bytes, and how many there were in all.
#[derive(Default, Clone)]
struct Capture {
    head: Vec<u8>,
    tail: Vec<u8>,
    total: usize,
}

/// Head and tail each keep this much, enough for any share of [`OUTPUT_LIMIT`].
const KEEP: usize = OUTPUT_LIMIT / 2;

impl Capture {
    fn push(&mut self, mut bytes: &[u8]) {
        self.total += bytes.len();
        if self.head.len() < KEEP {
            let n = bytes.len().min(KEEP - self.head.len());
            self.head.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
        }
        self.tail.extend_from_slice(bytes);
        if self.tail.len() > 2 * KEEP {
            self.tail.drain(..self.tail.len() - KEEP);
        }
    }

    /// The stream in at most `budget` bytes: whole if it fits, else head + marker + tail.
    fn render(&self, budget: usize) -> String {
        let tail_start = self.tail.len().saturating_sub(KEEP);
        let tail = &self.tail[tail_start..];
        let kept = self.head.len() + tail.len();
        if self.total <= budget && kept == self.total {
            return String::from_utf8_lossy(&[&self.head[..], tail].concat()).into_owned();
        }
        let front = budget / 2;
        let back = budget - front;
        let (head, tail) = if kept == self.total {
            let all = [&self.head[..], tail].concat();
            (all[..front].to_vec(), all[all.len() - back..].to_vec())
        } else {
            (self.head[..front.min(self.head.len())].to_vec(), tail[tail.len().saturating_sub(back)..].to_vec())
        };
        let cut = self.total - head.len() - tail.len();
        format!("{}\n[… {cut} bytes cut …]\n{}", String::from_utf8_lossy(&head), String::from_utf8_lossy(&tail))
    }
}

async fn capture(pipe: Option<impl AsyncRead + Unpin>, into: Arc<Mutex<Capture>>) {
    let Some(mut pipe) = pipe else { return };
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => into.lock().unwrap_or_else(|e| e.into_inner()).push(&buf[..n]),
        }
    }
}

fn take(c: &Mutex<Capture>) -> Capture {
    c.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// stdout, then stderr under a `[stderr]` line, within [`OUTPUT_LIMIT`] together. When both
/// are long, stderr keeps at least a quarter of the budget (errors matter).
fn render(out: &Capture, err: &Capture) -> String {
    let (budget_out, budget_err) = if out.total + err.total <= OUTPUT_LIMIT {
        (out.total, err.total)
    } else {
        let e = err.total.min((OUTPUT_LIMIT - out.total.min(OUTPUT_LIMIT)).max(OUTPUT_LIMIT / 4));
        (OUTPUT_LIMIT - e, e)
    };
    let mut text = out.render(budget_out);
    if err.total > 0 {
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str("[stderr]\n");
        text.push_str(&err.render(budget_err));
    }
    text
}

#[cfg(test)]
#[path = "shell_tests.rs"]
mod tests;
