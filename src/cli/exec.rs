//! `ratchet exec "prompt"`: one turn in a new session, the answer streamed to stdout.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use ratchet::engine::config::EngineConfig;
use ratchet::engine::{ChatEvent, ContentPart, StopReason};

pub async fn run(config: EngineConfig, prompt: String, cwd: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let cwd = match cwd {
        Some(c) => c,
        None => std::env::current_dir().context("cannot read the current directory")?,
    };
    let cwd = std::path::absolute(&cwd).unwrap_or(cwd);
    let engine = super::open_engine(config).await?;
    let session = engine.create_session(cwd, Vec::new()).await?;
    let mut events = engine.send_message(&session.id, vec![ContentPart::text(prompt)]).await?;
    let cancel_engine = engine.clone();
    let session_id = session.id.clone();
    let ctrl_c = async move {
        let _ = tokio::signal::ctrl_c().await;
        cancel_engine.cancel(&session_id);
    };
    tokio::pin!(ctrl_c);
    let mut stdout = std::io::stdout().lock();
    let mut ended_with_newline = true;
    let outcome = loop {
        let event = tokio::select! {
            e = events.recv() => e,
            () = &mut ctrl_c => continue,
        };
        match event {
            Some(ChatEvent::TextDelta(t)) => {
                ended_with_newline = t.ends_with('\n');
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
        writeln!(stdout)?;
    }
    drop(stdout);
    engine.shutdown().await;
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
