//! `ratchet attach <session>`: follows a session in the daemon and prints what happens in it
//! (prompts marked `>`, answer text as it streams, tool calls in brackets) until Ctrl-C.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use ratchet::daemon::client::ClientError;
use ratchet::engine::config::EngineConfig;
use ratchet::engine::{ChatEvent, ContentPart, EngineApi, LiveEvent};
use tokio::sync::broadcast::error::RecvError;

pub async fn run(config: EngineConfig, session: String) -> anyhow::Result<ExitCode> {
    let Some(client) = super::running_daemon(&config.home).await else {
        let not_running = ClientError::NotRunning(config.home.display().to_string());
        anyhow::bail!("{not_running}; only a daemon's sessions can be followed live");
    };
    let engine = client.into_engine();
    let record = engine.session(session.clone()).await?;
    let mut live = engine.subscribe(session.clone()).await.context("cannot follow the session")?;
    let title = record.title.as_deref().unwrap_or("(untitled)");
    #[allow(clippy::print_stderr)]
    {
        eprintln!("attached to {} \"{title}\" in {}; Ctrl-C to detach", record.id, record.cwd.display());
    }
    let mut out = Printer { at_line_start: true };
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let event = tokio::select! {
            event = live.recv() => event,
            _ = &mut ctrl_c => break,
        };
        match event {
            Ok(event) => out.show(&event.event)?,
            Err(RecvError::Lagged(n)) => out.note(&format!("[skipped {n} events: this terminal fell behind]"))?,
            Err(RecvError::Closed) => {
                out.note("[the daemon stopped]")?;
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    out.end()?;
    Ok(ExitCode::SUCCESS)
}

/// Writes events to stdout, keeping track of whether the cursor is at a line start.
struct Printer {
    at_line_start: bool,
}

impl Printer {
    fn show(&mut self, event: &LiveEvent) -> std::io::Result<()> {
        match event {
            LiveEvent::UserMessage(parts) => {
                let text: Vec<&str> = parts
                    .iter()
                    .filter_map(|p| match p {
                        ContentPart::Text { text } => Some(text.as_str()),
                        ContentPart::Resource { uri, .. } | ContentPart::ResourceLink { uri, .. } => Some(uri.as_str()),
                        _ => None,
                    })
                    .collect();
                let marked: Vec<String> = text.join("\n").lines().map(|l| format!("> {l}")).collect();
                self.note(&format!("\n{}\n", marked.join("\n")))
            }
            LiveEvent::Chat(ChatEvent::TextDelta(t)) => self.write(t),
            LiveEvent::Chat(ChatEvent::ToolCallStarted(call)) => self.note(&format!("[{}]", call.title)),
            LiveEvent::Chat(ChatEvent::PermissionRequest(q)) => {
                self.note(&format!("[waiting for permission: {}]", q.title))
            }
            LiveEvent::Chat(ChatEvent::Complete { .. }) => self.end(),
            LiveEvent::Chat(ChatEvent::Error { message, .. }) => self.note(&format!("[error: {message}]")),
            LiveEvent::Chat(_) => Ok(()),
        }
    }

    /// A line of its own.
    fn note(&mut self, line: &str) -> std::io::Result<()> {
        self.end()?;
        self.write(&format!("{line}\n"))
    }

    fn end(&mut self) -> std::io::Result<()> {
        if self.at_line_start { Ok(()) } else { self.write("\n") }
    }

    fn write(&mut self, text: &str) -> std::io::Result<()> {
        if text.is_empty() {
            return Ok(());
        }
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(text.as_bytes())?;
        stdout.flush()?;
        self.at_line_start = text.ends_with('\n');
        Ok(())
    }
}
