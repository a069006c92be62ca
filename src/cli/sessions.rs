//! `ratchet sessions list|show|kill|delete`: through the daemon when one runs (so `kill` can
//! stop a running turn and `delete` closes the session first), else on an engine opened here.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;
use ratchet::engine::config::EngineConfig;
use ratchet::engine::{ContentPart, EngineApi, ListQuery, SessionRecord, StoredMessage};

#[derive(Subcommand)]
pub enum SessionsCommand {
    /// List sessions: id, last update, title, project directory.
    List {
        /// Only sessions rooted at this directory.
        #[arg(long)]
        cwd: Option<PathBuf>,
    },
    /// Show a session's details and conversation.
    Show { id: String },
    /// Stop a session's running turn (in the daemon) and close the session there.
    Kill { id: String },
    /// Delete a session and its history for good.
    Delete { id: String },
}

pub async fn run(config: EngineConfig, command: SessionsCommand) -> anyhow::Result<ExitCode> {
    let face = super::engine_face(config).await?;
    let api = face.api.as_ref();
    let result = match command {
        SessionsCommand::List { cwd } => list(api, cwd).await,
        SessionsCommand::Show { id } => show(api, id).await,
        SessionsCommand::Kill { id } => kill(&face, id).await,
        SessionsCommand::Delete { id } => delete(api, id).await,
    };
    face.api.shutdown().await;
    result
}

async fn list(api: &dyn EngineApi, cwd: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let cwd = cwd.map(|c| std::path::absolute(&c).unwrap_or(c));
    let mut cursor = None;
    let mut all = Vec::new();
    loop {
        let query = ListQuery { cwd: cwd.clone(), cursor, limit: 200, top_level: false };
        let page = api.list_sessions(query).await?;
        all.extend(page.sessions);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    // Fleet workers are listed under the session that started them.
    let ids: std::collections::HashSet<&str> = all.iter().map(|s| s.id.as_str()).collect();
    let is_listed_child = |s: &ratchet::engine::SessionRecord| s.parent_id.as_deref().is_some_and(|p| ids.contains(p));
    let mut out = std::io::stdout().lock();
    let line = |s: &ratchet::engine::SessionRecord| {
        let title = s.title.as_deref().unwrap_or("(untitled)");
        format!("{}  {}  {}  {}", s.id, time(s.updated_at), title, s.cwd.display())
    };
    for s in all.iter().filter(|s| !is_listed_child(s)) {
        writeln!(out, "{}", line(s))?;
        for child in all.iter().filter(|c| c.parent_id.as_deref() == Some(s.id.as_str())) {
            writeln!(out, "  └ {}", line(child))?;
        }
    }
    let n = all.len();
    if n == 0 {
        tracing::info!("no sessions yet");
    }
    Ok(ExitCode::SUCCESS)
}

async fn show(api: &dyn EngineApi, id: String) -> anyhow::Result<ExitCode> {
    let record = api.session(id.clone()).await?;
    let history = api.history(id).await?;
    let mut out = std::io::stdout().lock();
    write_record(&mut out, &record)?;
    for m in &history {
        write_message(&mut out, m)?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn kill(face: &super::EngineFace, id: String) -> anyhow::Result<ExitCode> {
    if !face.in_daemon {
        face.api.session(id.clone()).await?;
        say(&format!("no daemon is running, so no turn of session {id} runs here; nothing to kill"));
        return Ok(ExitCode::SUCCESS);
    }
    if face.api.kill_session(id.clone()).await? {
        say(&format!("cancelled the running turn of session {id} and closed it in the daemon"));
    } else {
        say(&format!("session {id} had no running turn; closed it in the daemon"));
    }
    Ok(ExitCode::SUCCESS)
}

async fn delete(api: &dyn EngineApi, id: String) -> anyhow::Result<ExitCode> {
    api.delete_session(id.clone()).await?;
    say(&format!("deleted session {id}"));
    Ok(ExitCode::SUCCESS)
}

fn write_record(out: &mut impl Write, s: &SessionRecord) -> std::io::Result<()> {
    writeln!(out, "id:       {}", s.id)?;
    writeln!(out, "title:    {}", s.title.as_deref().unwrap_or("(untitled)"))?;
    writeln!(out, "cwd:      {}", s.cwd.display())?;
    for d in &s.additional_dirs {
        writeln!(out, "also:     {}", d.display())?;
    }
    writeln!(out, "model:    {} ({})", s.model, s.provider)?;
    writeln!(out, "mode:     {}", s.mode.id())?;
    writeln!(out, "status:   {}", s.status.as_str())?;
    writeln!(out, "created:  {}", time(s.created_at))?;
    writeln!(out, "updated:  {}", time(s.updated_at))
}

fn write_message(out: &mut impl Write, m: &StoredMessage) -> std::io::Result<()> {
    let status = if m.status.as_str() == "complete" { String::new() } else { format!(" ({})", m.status.as_str()) };
    writeln!(out, "\n--- {} #{}{status}", m.role.as_str(), m.seq)?;
    for part in &m.content {
        match part {
            ContentPart::Text { text } => writeln!(out, "{text}")?,
            ContentPart::Thought { .. } => {}
            ContentPart::Image { mime_type, .. } => writeln!(out, "[image {mime_type}]")?,
            ContentPart::Resource { uri, .. } | ContentPart::ResourceLink { uri, .. } => writeln!(out, "[{uri}]")?,
        }
    }
    for call in &m.tool_calls {
        writeln!(out, "[call {} {}]", call.name, call.arguments)?;
    }
    for result in &m.tool_results {
        let title = result.title.as_deref().unwrap_or(&result.call_id);
        let error = if result.is_error { " failed" } else { "" };
        writeln!(out, "[result of {title}{error}: {} bytes]", result.content.len())?;
    }
    Ok(())
}

fn time(ms: i64) -> humantime::Rfc3339Timestamp {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64))
}

#[allow(clippy::print_stdout)]
fn say(line: &str) {
    println!("{line}");
}
