//! `ratchet sessions list`: stored sessions, newest first.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use ratchet::engine::ListQuery;
use ratchet::engine::config::EngineConfig;

#[derive(Subcommand)]
pub enum SessionsCommand {
    /// List sessions: id, last update, title, project directory.
    List {
        /// Only sessions rooted at this directory.
        #[arg(long)]
        cwd: Option<PathBuf>,
    },
}

pub async fn run(config: EngineConfig, command: SessionsCommand) -> anyhow::Result<ExitCode> {
    let SessionsCommand::List { cwd } = command;
    let engine = super::open_engine(config).await?;
    let mut out = std::io::stdout().lock();
    let mut cursor = None;
    let mut n = 0;
    loop {
        let query = ListQuery { cwd: cwd.clone(), cursor, limit: 200 };
        let page = engine.list_sessions(query).await?;
        for s in &page.sessions {
            let updated = humantime::format_rfc3339_seconds(
                std::time::UNIX_EPOCH + std::time::Duration::from_millis(s.updated_at.max(0) as u64),
            );
            let title = s.title.as_deref().unwrap_or("(untitled)");
            writeln!(out, "{}  {}  {}  {}", s.id, updated, title, s.cwd.display())?;
            n += 1;
        }
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    if n == 0 {
        tracing::info!("no sessions yet");
    }
    Ok(ExitCode::SUCCESS)
}
