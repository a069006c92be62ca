//! Compaction: older messages are replaced, for the model, by a summary it writes itself.
//!
//! The history in the store is never rewritten: compaction records where the model's view
//! starts (`context_from`) and the summary of everything before it. `/clear` sets the start
//! to "now" with no summary.

use std::sync::Arc;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::content::{ContentPart, Role};
use super::provider::{Provider, ProviderEvent, ProviderMessage, ProviderRequest};
use super::provider_messages::to_provider_messages;
use super::store::StoredMessage;
use super::{Engine, EngineError};

const SUMMARY_INSTRUCTIONS: &str = "\
Summarise the conversation above so that the work can continue without it. Keep: the user's \
goals and constraints, decisions made and why, files read or changed (with paths), commands \
run and their outcome, and what is still to do. Be concise; use short bullet points.";

/// What a compaction did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compacted {
    /// Too little history to be worth it.
    Nothing,
    /// `messages` older messages were summarised.
    Summarised { messages: usize },
}

/// What the model sees of a session: its history from the context start on, after a summary.
pub struct Context {
    /// The whole stored history (shared with the session's cache, not copied).
    messages: Arc<Vec<StoredMessage>>,
    /// Index of the first message the model sees.
    from: usize,
    pub summary: Option<String>,
}

impl Context {
    /// The messages the model sees.
    pub fn history(&self) -> &[StoredMessage] {
        &self.messages[self.from..]
    }
}

/// The part of the history the model sees now, and the summary before it.
pub async fn context(engine: &Engine, session_id: &str) -> Result<Context, EngineError> {
    let (from_seq, summary) = engine.store().context(session_id).await?.unwrap_or((0, None));
    let messages = engine.messages(session_id).await?;
    let from = messages.partition_point(|m| m.seq < from_seq);
    Ok(Context { messages, from, summary })
}

/// Starts a fresh context: later turns see no earlier message.
pub async fn clear(engine: &Engine, session_id: &str) -> Result<(), EngineError> {
    let next = engine.messages(session_id).await?.last().map(|m| m.seq + 1).unwrap_or(0);
    engine.store().set_context(session_id, next, None).await?;
    Ok(())
}

/// Summarises all but the last `keep` messages before the running turn (cut at a user
/// message, so tool calls stay with their results).
pub async fn compact(
    engine: &Engine,
    session_id: &str,
    provider: &dyn Provider,
    model: &str,
    cancel: &CancellationToken,
) -> Result<Compacted, String> {
    let context = context(engine, session_id).await.map_err(|e| e.to_string())?;
    let (history, old_summary) = (context.history(), context.summary.clone());
    // The running turn (from its user message on, e.g. the `/compact` command itself) always
    // stays; `keep` counts the messages before it.
    let current = history.iter().rposition(|m| m.role == Role::User).unwrap_or(history.len());
    let keep = engine.config().compact_keep();
    if current <= keep {
        return Ok(Compacted::Nothing);
    }
    let mut cut = current - keep;
    while cut < current && history[cut].role != Role::User {
        cut += 1;
    }
    if cut == 0 || cut >= history.len() {
        return Ok(Compacted::Nothing);
    }
    let mut messages = to_provider_messages(&history[..cut]);
    messages.push(ProviderMessage::User(vec![ContentPart::text(SUMMARY_INSTRUCTIONS)]));
    let system = match &old_summary {
        Some(s) => format!("You summarise coding sessions.\n\nSummary of what came before:\n{s}"),
        None => "You summarise coding sessions.".to_string(),
    };
    let request = ProviderRequest {
        model: model.to_string(),
        system: Some(system),
        messages,
        tools: Vec::new(),
        max_tokens: engine.config().max_tokens().min(4096),
    };
    let summary = tokio::select! {
        s = collect_text(provider, request) => s?,
        () = cancel.cancelled() => return Err("cancelled".into()),
    };
    if summary.trim().is_empty() {
        return Err("the model returned an empty summary".into());
    }
    let summary = match old_summary {
        Some(old) => format!("{old}\n\n{summary}"),
        None => summary,
    };
    engine.store().set_context(session_id, history[cut].seq, Some(summary)).await.map_err(|e| e.to_string())?;
    Ok(Compacted::Summarised { messages: cut })
}

async fn collect_text(provider: &dyn Provider, request: ProviderRequest) -> Result<String, String> {
    let mut stream = provider.stream(request).await.map_err(|e| e.to_string())?;
    let mut text = String::new();
    while let Some(event) = stream.next().await {
        match event.map_err(|e| e.to_string())? {
            ProviderEvent::TextDelta(t) => text.push_str(&t),
            ProviderEvent::Finish(_) => break,
            _ => {}
        }
    }
    Ok(text)
}
