//! The team tools, offered only in team members' sessions: `blackboard_read`,
//! `blackboard_write` (compare-and-set on the revision; a conflict returns the current entry
//! so the model can read it and retry), `blackboard_list` and `send_message`. Each is bound
//! to one member ([`MemberLink`]), so a member writes and sends as itself.

use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::engine::provider::ToolSpec;
use crate::engine::tools::redact::Redactor;
use crate::engine::tools::{Preview, Tool, ToolContext, ToolKind, ToolOutput};
use crate::orchestra::blackboard::{Blackboard, BoardError, Entry};

/// What a member's tool asks of its team (its runtime answers before the tool returns).
pub enum Command {
    Send { from: String, to: String, content: String, reply: oneshot::Sender<Result<Vec<String>, String>> },
    Wrote { by: String, entry: Entry },
}

/// The names of the team tools (added to a member's tool subset when it has one).
pub const TEAM_TOOLS: [&str; 4] = ["blackboard_read", "blackboard_write", "blackboard_list", "send_message"];

/// Longest value `blackboard_list` shows per entry (read one key for all of it).
const LIST_VALUE_CHARS: usize = 200;

/// What ties a member's session to its team.
pub struct MemberLink {
    /// The team's id (`t3`).
    pub team: String,
    pub member: String,
    pub board: Blackboard,
    /// The team's runtime: messages and writes go through it.
    pub commands: mpsc::Sender<Command>,
}

/// The four team tools of one member.
pub fn team_tools(link: &Arc<MemberLink>) -> Vec<Arc<dyn Tool>> {
    TEAM_TOOLS.into_iter().map(|name| Arc::new(TeamTool { name, link: link.clone() }) as Arc<dyn Tool>).collect()
}

struct TeamTool {
    name: &'static str,
    link: Arc<MemberLink>,
}

impl Tool for TeamTool {
    fn spec(&self) -> ToolSpec {
        let (description, parameters) = match self.name {
            "blackboard_read" => (
                "Read the team's shared blackboard: every entry of a section, or one key. Each entry has its \
                 value, author and revision (give that revision to blackboard_write to change it).",
                json!({"type": "object", "properties": {
                    "section": {"type": "string"}, "key": {"type": "string", "description": "Only this key."}},
                    "required": ["section"], "additionalProperties": false}),
            ),
            "blackboard_write" => (
                "Write an entry of the team's blackboard. A new key: no revision. An existing key: the revision \
                 you last read; if someone wrote it since, the write fails with the current entry: read it, \
                 merge, and write again with its revision. Write `status/<your name>` = `done` when your part \
                 is finished.",
                json!({"type": "object", "properties": {
                    "section": {"type": "string"}, "key": {"type": "string"}, "value": {"type": "string"},
                    "revision": {"type": "integer", "minimum": 0}},
                    "required": ["section", "key", "value"], "additionalProperties": false}),
            ),
            "blackboard_list" => (
                "List every entry of the team's blackboard (values shortened; read a key for all of it).",
                json!({"type": "object", "properties": {}, "additionalProperties": false}),
            ),
            _ => (
                "Send a message to another member of your team (by name) or to every other member (`*`). It \
                 arrives as their next message and starts their next turn.",
                json!({"type": "object", "properties": {
                    "to": {"type": "string", "description": "A member's name, or * for everyone else."},
                    "content": {"type": "string"}},
                    "required": ["to", "content"], "additionalProperties": false}),
            ),
        };
        ToolSpec { name: self.name.into(), description: description.into(), parameters }
    }

    fn kind(&self) -> ToolKind {
        // The blackboard and the inboxes are the team's own state, not the user's files.
        if self.name == "blackboard_read" || self.name == "blackboard_list" { ToolKind::Read } else { ToolKind::Think }
    }

    fn preview<'a>(&'a self, args: &'a Value, _: &'a ToolContext) -> BoxFuture<'a, Preview> {
        let s = |k: &str| args.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let title = match self.name {
            "blackboard_read" if s("key").is_empty() => format!("Blackboard: read {}", s("section")),
            "blackboard_read" => format!("Blackboard: read {}/{}", s("section"), s("key")),
            "blackboard_write" => format!("Blackboard: write {}/{}", s("section"), s("key")),
            "blackboard_list" => "Blackboard: list".to_string(),
            _ => format!("Message to {}", s("to")),
        };
        Box::pin(async move { Preview { title, locations: vec![], display: vec![] } })
    }

    fn run<'a>(&'a self, args: Value, cx: &'a ToolContext) -> BoxFuture<'a, ToolOutput> {
        Box::pin(async move {
            match self.call(&args, &cx.redactor).await {
                Ok(text) => ToolOutput::text(text),
                Err(e) => ToolOutput::error(e),
            }
        })
    }
}

impl TeamTool {
    /// Values written and messages sent pass `redactor` first: what a member writes is kept
    /// (the database, the transcript, `team show`) and read by the others.
    async fn call(&self, args: &Value, redactor: &Redactor) -> Result<String, String> {
        let text = |k: &str| args.get(k).and_then(Value::as_str).map(str::trim).unwrap_or("");
        let link = &self.link;
        match self.name {
            "blackboard_read" => {
                let key = Some(text("key")).filter(|k| !k.is_empty());
                let entries = link.board.read(text("section"), key).await.map_err(|e| e.to_string())?;
                if entries.is_empty() {
                    return Ok(format!("{} is empty: nothing written there yet", path(text("section"), key)));
                }
                Ok(serde_json::to_string_pretty(&entries).unwrap_or_default())
            }
            "blackboard_write" => {
                let revision = args.get("revision").and_then(Value::as_u64);
                let value = redactor.redact(args.get("value").and_then(Value::as_str).unwrap_or(""));
                match link.board.write(text("section"), text("key"), &value, &link.member, revision).await {
                    Ok(entry) => {
                        let shown = format!("wrote {}/{} at revision {}", entry.section, entry.key, entry.revision);
                        let _ = link.commands.send(Command::Wrote { by: link.member.clone(), entry }).await;
                        Ok(shown)
                    }
                    Err(BoardError::Conflict { current, .. }) => Err(conflict(&current)),
                    Err(e) => Err(e.to_string()),
                }
            }
            "blackboard_list" => {
                let entries = link.board.list().await.map_err(|e| e.to_string())?;
                if entries.is_empty() {
                    return Ok("the blackboard is empty".into());
                }
                let lines: Vec<String> = entries
                    .iter()
                    .map(|e| {
                        let v: String = e.value.chars().take(LIST_VALUE_CHARS).collect();
                        format!("{}/{} (revision {}, by {}): {v}", e.section, e.key, e.revision, e.author)
                    })
                    .collect();
                Ok(lines.join("\n"))
            }
            _ => {
                let (to, content) = (text("to"), text("content"));
                if to.is_empty() || content.is_empty() {
                    return Err("send_message needs `to` (a member's name or *) and `content`".into());
                }
                let (reply, answer) = oneshot::channel();
                let content = redactor.redact(content);
                let send = Command::Send { from: link.member.clone(), to: to.into(), content, reply };
                link.commands.send(send).await.map_err(|_| "the team has ended; nobody reads messages now")?;
                let got = answer.await.map_err(|_| "the team has ended; nobody reads messages now")??;
                Ok(format!("delivered to {}", got.join(", ")))
            }
        }
    }
}

fn path(section: &str, key: Option<&str>) -> String {
    match key {
        Some(k) => format!("{section}/{k}"),
        None => format!("section {section}"),
    }
}

/// A conflict, with the current entry for the model to merge and retry.
fn conflict(current: &Entry) -> String {
    format!(
        "conflict: {}/{} is at revision {} (written by {}); nothing was written. Merge your change into the \
         current value and write again with \"revision\": {}. The current entry: {}",
        current.section,
        current.key,
        current.revision,
        current.author,
        current.revision,
        serde_json::to_string(current).unwrap_or_default()
    )
}
