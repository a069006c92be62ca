//! `ratchet exec "prompt"`: one turn in a new session, the answer streamed to stdout. Runs in
//! the daemon when one runs (the session is then visible to `ratchet attach` and editors),
//! else in this process.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use ratchet::engine::config::EngineConfig;
use ratchet::engine::tools::NoHost;
use ratchet::engine::{ChatEvent, ContentPart, EngineApi, StopReason};

/// How long, after the answer, the session's close may take to reach the daemon.
const REMOTE_CLOSE_GRACE: Duration = Duration::from_secs(2);

pub async fn run(config: EngineConfig, prompt: String, cwd: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let cwd = match cwd {
        Some(c) => c,
        None => std::env::current_dir().context("cannot read the current directory")?,
    };
    let cwd = std::path::absolute(&cwd).unwrap_or(cwd);
    match super::running_daemon(&config.home).await {
        Some(client) => {
            let engine = client.into_engine();
            let outcome = turn(&engine, cwd, prompt).await;
            engine.close(REMOTE_CLOSE_GRACE).await;
            outcome
        }
        None => {
            let engine = super::open_engine(config).await?;
            let outcome = turn(&engine, cwd, prompt).await;
            engine.shutdown().await;
            outcome
        }
    }
}

/// Runs the turn on `engine`, printing its text; Ctrl-C cancels it.
async fn turn(engine: &dyn EngineApi, cwd: PathBuf, prompt: String) -> anyhow::Result<ExitCode> {
    let session = engine.create_session(cwd, Vec::new(), Vec::new()).await?;
    let mut events = engine.send_message(session.id.clone(), vec![ContentPart::text(prompt)], Arc::new(NoHost)).await?.events;
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
