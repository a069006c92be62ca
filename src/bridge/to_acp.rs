//! Engine values into ACP wire values.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::acp::schema::{
    self, ContentBlock, ContentChunk, EmbeddedResource, EmbeddedResourceResource, ImageContent,
    ResourceLink, SessionConfigOption, SessionConfigOptionCategory, SessionConfigSelectOption,
    SessionInfoUpdate, SessionMode, SessionModeState, SessionUpdate, TextContent,
    TextResourceContents, UsageUpdate,
};
use crate::engine::{ChatEvent, ContentPart, Mode, Role, SessionRecord, StopReason, StoredMessage};

/// The live update for an event, if it has one (`Complete` and `Error` end the prompt instead).
pub fn update(event: &ChatEvent) -> Option<SessionUpdate> {
    Some(match event {
        ChatEvent::TextDelta(t) => SessionUpdate::AgentMessageChunk(ContentChunk::new(text(t))),
        ChatEvent::ThoughtDelta(t) => SessionUpdate::AgentThoughtChunk(ContentChunk::new(text(t))),
        ChatEvent::TitleChanged(title) => SessionUpdate::SessionInfoUpdate(
            SessionInfoUpdate::new().title(title.clone()).updated_at(iso8601(now_ms())),
        ),
        ChatEvent::Usage { usage, context_window } => {
            SessionUpdate::UsageUpdate(UsageUpdate::new(usage.total(), *context_window))
        }
        ChatEvent::Complete { .. } | ChatEvent::Error { .. } => return None,
        _ => return None,
    })
}

/// The updates that replay one stored message in `session/load`.
pub fn replay(message: &StoredMessage) -> Vec<SessionUpdate> {
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
    let model_options: Vec<_> = models
        .iter()
        .map(|m| SessionConfigSelectOption::new(m.clone(), m.clone()))
        .collect();
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
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
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
            content: vec![
                ContentPart::Thought { text: "hmm".into(), signature: None },
                ContentPart::text("answer"),
            ],
            tool_calls: vec![],
            tool_results: vec![],
            usage: None,
            status: crate::engine::store::MessageStatus::Complete,
            created_at: 0,
        };
        let u = replay(&m);
        assert!(matches!(u[0], SessionUpdate::AgentThoughtChunk(_)));
        assert!(matches!(u[1], SessionUpdate::AgentMessageChunk(_)));
    }
}
