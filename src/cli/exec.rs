//! `ratchet exec "prompt"`: one turn in a new session, the answer streamed to stdout. Runs in
//! the daemon when one runs (the session is then visible to `ratchet attach` and editors),
//! else in this process.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use ratchet::engine::config::EngineConfig;
use ratchet::engine::tools::NoHost;
use ratchet::engine::{ChatEvent, ContentPart, EngineApi, PermissionAnswer, StopReason};

pub async fn run(config: EngineConfig, prompt: String, cwd: Option<PathBuf>, mode: String) -> anyhow::Result<ExitCode> {
    let cwd = match cwd {
        Some(c) => c,
        None => std::env::current_dir().context("cannot read the current directory")?,
    };
    let cwd = std::path::absolute(&cwd).unwrap_or(cwd);
    let face = super::engine_face(config).await?;
    let outcome = turn(face.api.as_ref(), cwd, prompt, mode).await;
    face.api.shutdown().await;
    outcome
}

/// Runs the turn on `engine`, printing its text; Ctrl-C cancels it.
async fn turn(engine: &dyn EngineApi, cwd: PathBuf, prompt: String, mode: String) -> anyhow::Result<ExitCode> {
    let session = engine.create_session(cwd, Vec::new(), Vec::new()).await?;
    engine.set_mode(session.id.clone(), mode).await?;
    let mut events =
        engine.send_message(session.id.clone(), vec![ContentPart::text(prompt)], Arc::new(NoHost)).await?.events;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut cancelled = false;
    let mut ended_with_newline = true;
    let outcome = loop {
        let event = tokio::select! {
            e = events.recv() => e,
            _ = &mut ctrl_c, if !cancelled => {
                cancelled = true;
                engine.cancel(session.id.clone()).await;
                continue;
            }
        };
        match event {
            Some(ChatEvent::TextDelta(t)) => {
                ended_with_newline = t.ends_with('\n');
                let mut stdout = std::io::stdout().lock();
                stdout.write_all(t.as_bytes())?;
                stdout.flush()?;
            }
            Some(ChatEvent::ToolCallStarted(call)) => note(&format!("[{}]", call.title)),
            Some(ChatEvent::PermissionRequest(q)) => {
                let answer = ask(&q.title).await;
                engine.answer_permission(session.id.clone(), q.request_id, answer).await;
            }
            Some(ChatEvent::Complete { stop }) => break Ok(stop),
            Some(ChatEvent::Error { message, .. }) => break Err(message),
            Some(_) => {}
            None => break Err("the turn ended without a result".to_string()),
        }
    };
    if !ended_with_newline {
        writeln!(std::io::stdout())?;
    }
    // Frees the session's resources (MCP servers) in a shared daemon; it stays in the store.
    if let Err(e) = engine.close_session(session.id.clone()).await {
        tracing::warn!(error = %e, "cannot close the session");
    }
    match outcome {
        Ok(StopReason::EndTurn) => Ok(ExitCode::SUCCESS),
        Ok(StopReason::Cancelled) => Ok(ExitCode::from(130)),
        Ok(other) => {
            tracing::warn!(?other, "the answer stopped early");
            Ok(ExitCode::SUCCESS)
        }
        Err(message) => bail!("{message}"),
    }
}

/// Writes a line about the turn's progress to stderr (stdout carries only the answer).
#[allow(clippy::print_stderr)]
fn note(text: &str) {
    eprintln!("{text}");
}

/// Asks on the terminal whether a tool call may run; without a terminal, rejects it.
async fn ask(title: &str) -> PermissionAnswer {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        note(&format!(
            "rejected: {title} (no terminal to ask; pass --mode accept-edits or --mode yolo to allow changes)"
        ));
        return PermissionAnswer::RejectOnce;
    }
    let question = format!("Allow {title}? [y]es / [a]lways / [N]o: ");
    let line = tokio::task::spawn_blocking(move || {
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "{question}");
        let _ = err.flush();
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map(|_| line)
    })
    .await;
    match line.ok().and_then(Result::ok).as_deref().map(str::trim) {
        Some("y" | "Y" | "yes") => PermissionAnswer::AllowOnce,
        Some("a" | "A" | "always") => PermissionAnswer::AllowAlways,
        _ => PermissionAnswer::RejectOnce,
    }
}
