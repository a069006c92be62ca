//! Engine values into ACP wire values.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::acp::schema::{
    self, ContentBlock, ContentChunk, EmbeddedResource, EmbeddedResourceResource, ImageContent, ResourceLink,
    SessionConfigOption, SessionConfigOptionCategory, SessionConfigSelectOption, SessionInfoUpdate, SessionMode,
    SessionModeState, SessionUpdate, TextContent, TextResourceContents, UsageUpdate,
};
use crate::acp::schema::{
    AvailableCommand, AvailableCommandInput, Diff, PlanEntryPriority, PlanEntryStatus, Terminal, ToolCall,
    ToolCallContent, ToolCallLocation, ToolCallUpdate, ToolCallUpdateFields, UnstructuredCommandInput,
};
use crate::engine::content::ToolResult;
use crate::engine::tools::{Display, Location, PlanEntry, PlanPriority, PlanStatus, ToolKind};
use crate::engine::{
    self, ChatEvent, ContentPart, Mode, Role, SessionRecord, StopReason, StoredMessage, ToolCallStatus,
};

/// The live updates for an event (`Complete`, `Error`, permission questions and session
/// changes are handled by the prompt loop instead).
pub fn updates(event: &ChatEvent) -> Vec<SessionUpdate> {
    let update = match event {
        ChatEvent::TextDelta(t) => SessionUpdate::AgentMessageChunk(ContentChunk::new(text(t))),
        ChatEvent::ThoughtDelta(t) => SessionUpdate::AgentThoughtChunk(ContentChunk::new(text(t))),
        ChatEvent::TitleChanged(title) => SessionUpdate::SessionInfoUpdate(
            SessionInfoUpdate::new().title(title.clone()).updated_at(iso8601(now_ms())),
        ),
        ChatEvent::Usage { usage, context_window } => {
            SessionUpdate::UsageUpdate(UsageUpdate::new(usage.total(), *context_window))
        }
        ChatEvent::ToolCallStarted(start) => SessionUpdate::ToolCall(
            ToolCall::new(start.id.clone(), start.title.clone())
                .kind(tool_kind(start.kind))
                .status(schema::ToolCallStatus::Pending)
                .content(start.display.iter().map(tool_content).collect())
                .locations(start.locations.iter().map(location).collect())
                .raw_input(start.arguments.clone()),
        ),
        ChatEvent::ToolCallUpdated(change) => {
            let mut fields = ToolCallUpdateFields::new().status(tool_status(change.status));
            if let Some(display) = &change.display {
                fields = fields.content(display.iter().map(tool_content).collect::<Vec<_>>());
            }
            if let Some(locations) = &change.locations {
                fields = fields.locations(locations.iter().map(location).collect::<Vec<_>>());
            }
            if let Some(output) = &change.output {
                fields = fields.raw_output(serde_json::json!({ "output": output }));
            }
            SessionUpdate::ToolCallUpdate(ToolCallUpdate::new(change.id.clone(), fields))
        }
        ChatEvent::Plan(entries) => SessionUpdate::Plan(plan(entries)),
        ChatEvent::PermissionRequest(_)
        | ChatEvent::Question(_)
        | ChatEvent::QuestionWithdrawn { .. }
        | ChatEvent::SessionChanged { .. }
        | ChatEvent::Complete { .. }
        | ChatEvent::Error { .. } => return Vec::new(),
    };
    vec![update]
}

/// The updates that replay a stored conversation in `session/load`, in order.
pub fn replay_history(history: &[StoredMessage]) -> Vec<SessionUpdate> {
    let results: HashMap<&str, &ToolResult> =
        history.iter().flat_map(|m| m.tool_results.iter()).map(|r| (r.call_id.as_str(), r)).collect();
    let mut out = Vec::new();
    for message in history {
        out.extend(replay(message));
        for call in &message.tool_calls {
            out.extend(replay_tool_call(call, results.get(call.id.as_str()).copied()));
        }
    }
    out
}

fn replay_tool_call(call: &engine::content::ToolCall, result: Option<&ToolResult>) -> Vec<SessionUpdate> {
    let title = result.and_then(|r| r.title.clone()).unwrap_or_else(|| call.name.clone());
    let kind = result.and_then(|r| r.kind).unwrap_or(ToolKind::Other);
    let status = match result {
        Some(r) if !r.is_error => schema::ToolCallStatus::Completed,
        _ => schema::ToolCallStatus::Failed,
    };
    let start = ToolCall::new(call.id.clone(), title)
        .kind(tool_kind(kind))
        .status(schema::ToolCallStatus::Pending)
        .raw_input(call.arguments.clone());
    let mut fields = ToolCallUpdateFields::new().status(status);
    if let Some(r) = result {
        fields = fields
            .content(vec![ToolCallContent::from(text(&r.content))])
            .raw_output(serde_json::json!({ "output": r.content }));
    }
    vec![SessionUpdate::ToolCall(start), SessionUpdate::ToolCallUpdate(ToolCallUpdate::new(call.id.clone(), fields))]
}

/// The updates that replay one stored message's content (not its tool calls).
fn replay(message: &StoredMessage) -> Vec<SessionUpdate> {
    message
        .content
        .iter()
        .filter_map(|part| {
            let block = match part {
                ContentPart::Thought { text: t, .. } => {
                    return (message.role == Role::Assistant)
                        .then(|| SessionUpdate::AgentThoughtChunk(ContentChunk::new(text(t))));
                }
                other => content_block(other),
            };
            let chunk = ContentChunk::new(block);
            match message.role {
                Role::User => Some(SessionUpdate::UserMessageChunk(chunk)),
                Role::Assistant => Some(SessionUpdate::AgentMessageChunk(chunk)),
                Role::Tool => None,
            }
        })
        .collect()
}

/// The slash commands, as `available_commands_update` lists them.
pub fn commands() -> Vec<AvailableCommand> {
    // The engine's own, then the orchestra's (`/approve`, `/reject`).
    engine::commands::COMMANDS
        .iter()
        .chain(crate::orchestra::commands::COMMANDS)
        .map(|c| {
            let cmd = AvailableCommand::new(c.name, c.description);
            match c.hint {
                Some(hint) => cmd.input(AvailableCommandInput::Unstructured(UnstructuredCommandInput::new(hint))),
                None => cmd,
            }
        })
        .collect()
}

/// The ACP tool kind.
pub fn tool_kind(kind: ToolKind) -> schema::ToolKind {
    match kind {
        ToolKind::Read => schema::ToolKind::Read,
        ToolKind::Edit => schema::ToolKind::Edit,
        ToolKind::Delete => schema::ToolKind::Delete,
        ToolKind::Move => schema::ToolKind::Move,
        ToolKind::Search => schema::ToolKind::Search,
        ToolKind::Execute => schema::ToolKind::Execute,
        ToolKind::Fetch => schema::ToolKind::Fetch,
        ToolKind::Think => schema::ToolKind::Think,
        ToolKind::Other => schema::ToolKind::Other,
    }
}

fn tool_status(status: ToolCallStatus) -> schema::ToolCallStatus {
    match status {
        ToolCallStatus::Pending => schema::ToolCallStatus::Pending,
        ToolCallStatus::InProgress => schema::ToolCallStatus::InProgress,
        ToolCallStatus::Completed => schema::ToolCallStatus::Completed,
        ToolCallStatus::Failed => schema::ToolCallStatus::Failed,
    }
}

fn tool_content(display: &Display) -> ToolCallContent {
    match display {
        Display::Text(t) => ToolCallContent::from(text(t)),
        Display::Diff { path, old, new } => {
            ToolCallContent::Diff(Diff::new(path.clone(), new.clone()).old_text(old.clone()))
        }
        Display::Terminal(id) => ToolCallContent::Terminal(Terminal::new(id.clone())),
    }
}

fn location(l: &Location) -> ToolCallLocation {
    ToolCallLocation::new(l.path.clone()).line(l.line)
}

fn plan(entries: &[PlanEntry]) -> schema::Plan {
    let entries = entries
        .iter()
        .map(|e| {
            let priority = match e.priority {
                PlanPriority::High => PlanEntryPriority::High,
                PlanPriority::Medium => PlanEntryPriority::Medium,
                PlanPriority::Low => PlanEntryPriority::Low,
            };
            let status = match e.status {
                PlanStatus::Pending => PlanEntryStatus::Pending,
                PlanStatus::InProgress => PlanEntryStatus::InProgress,
                PlanStatus::Completed => PlanEntryStatus::Completed,
            };
            schema::PlanEntry::new(e.content.clone(), priority, status)
        })
        .collect();
    schema::Plan::new(entries)
}

/// A stored content part as an ACP content block.
pub fn content_block(part: &ContentPart) -> ContentBlock {
    match part {
        ContentPart::Text { text: t } | ContentPart::Thought { text: t, .. } => text(t),
        ContentPart::Image { mime_type, data } => {
            ContentBlock::Image(ImageContent::new(data.clone(), mime_type.clone()))
        }
        ContentPart::Resource { uri, text: t, mime_type } => {
            let contents = TextResourceContents::new(t.clone(), uri.clone()).mime_type(mime_type.clone());
            ContentBlock::Resource(EmbeddedResource::new(EmbeddedResourceResource::TextResourceContents(contents)))
        }
        ContentPart::ResourceLink { uri, name } => {
            ContentBlock::ResourceLink(ResourceLink::new(name.clone(), uri.clone()))
        }
    }
}

fn text(t: &str) -> ContentBlock {
    ContentBlock::Text(TextContent::new(t.to_string()))
}

/// The ACP stop reason.
pub fn stop_reason(stop: StopReason) -> schema::StopReason {
    match stop {
        StopReason::EndTurn => schema::StopReason::EndTurn,
        StopReason::MaxTokens => schema::StopReason::MaxTokens,
        StopReason::MaxTurnRequests => schema::StopReason::MaxTurnRequests,
        StopReason::Refusal => schema::StopReason::Refusal,
        StopReason::Cancelled => schema::StopReason::Cancelled,
    }
}

/// A session for `session/list`.
pub fn session_info(record: &SessionRecord) -> schema::SessionInfo {
    let mut info = schema::SessionInfo::new(record.id.clone(), record.cwd.clone())
        .title(record.title.clone())
        .updated_at(iso8601(record.updated_at));
    if !record.additional_dirs.is_empty() {
        info = info.additional_directories(record.additional_dirs.clone());
    }
    info
}

/// The session's mode state (the legacy `modes` field).
pub fn mode_state(current: Mode) -> SessionModeState {
    let modes = Mode::ALL
        .into_iter()
        .map(|m| SessionMode::new(m.id(), m.name()).description(m.description().to_string()))
        .collect();
    SessionModeState::new(current.id(), modes)
}

/// The session's config options: mode first, then model. Always the complete list.
pub fn config_options(current_mode: Mode, current_model: &str, models: &[String]) -> Vec<SessionConfigOption> {
    let modes: Vec<_> = Mode::ALL
        .into_iter()
        .map(|m| SessionConfigSelectOption::new(m.id(), m.name()).description(m.description().to_string()))
        .collect();
    let mode = SessionConfigOption::select("mode", "Mode", current_mode.id(), modes)
        .category(SessionConfigOptionCategory::Mode)
        .description("How much the agent may do without asking".to_string());
    let model_options: Vec<_> = models.iter().map(|m| SessionConfigSelectOption::new(m.clone(), m.clone())).collect();
    let model = SessionConfigOption::select("model", "Model", current_model.to_string(), model_options)
        .category(SessionConfigOptionCategory::Model)
        .description("The model that answers".to_string());
    vec![mode, model]
}

/// Unix milliseconds as ISO-8601 (UTC).
pub fn iso8601(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_is_utc_with_millis() {
        assert_eq!(iso8601(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }

    #[test]
    fn replay_keeps_roles_and_order() {
        let m = StoredMessage {
            seq: 2,
            role: Role::Assistant,
            content: vec![ContentPart::Thought { text: "hmm".into(), signature: None }, ContentPart::text("answer")],
            tool_calls: vec![],
            tool_results: vec![],
            usage: None,
            status: crate::engine::store::MessageStatus::Complete,
            created_at: 0,
        };
        let u = replay_history(&[m]);
        assert!(matches!(u[0], SessionUpdate::AgentThoughtChunk(_)));
        assert!(matches!(u[1], SessionUpdate::AgentMessageChunk(_)));
    }
}
