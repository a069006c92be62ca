//! The provider's message list, built from the stored history: no engine, no I/O, so both
//! a turn and compaction (which summarises part of the history) use the same view.

use super::content::{Role, ToolResult};
use super::provider::ProviderMessage;
use super::store::StoredMessage;

/// What the model is told for a stored tool call that has no stored result.
const INTERRUPTED: &str = "interrupted: ratchet stopped before this tool call's result was saved, so it may or \
                           may not have run; check its effect before running it again";

/// The conversation as the provider sees it.
///
/// Every provider rejects a tool call without a result right after it (and results that
/// answer no call), and such a history would fail every later turn of the session. A crash, or
/// a store error, between an answer and its results leaves exactly that, so it is repaired
/// here: a missing result becomes an "interrupted" error, and stray results are dropped.
pub(super) fn to_provider_messages(history: &[StoredMessage]) -> Vec<ProviderMessage> {
    let mut messages = Vec::with_capacity(history.len());
    let mut rest = history.iter().peekable();
    while let Some(m) = rest.next() {
        match m.role {
            Role::User => messages.push(ProviderMessage::User(m.content.clone())),
            Role::Assistant => {
                messages
                    .push(ProviderMessage::Assistant { content: m.content.clone(), tool_calls: m.tool_calls.clone() });
                if m.tool_calls.is_empty() {
                    continue;
                }
                let stored = match rest.next_if(|next| next.role == Role::Tool) {
                    Some(next) => next.tool_results.as_slice(),
                    None => &[],
                };
                let results = m
                    .tool_calls
                    .iter()
                    .map(|call| match stored.iter().find(|r| r.call_id == call.id) {
                        Some(result) => result.clone(),
                        None => ToolResult::new(call.id.clone(), INTERRUPTED, true),
                    })
                    .collect();
                messages.push(ProviderMessage::ToolResults(results));
            }
            // Results not right after the calls they answer (those are taken above).
            Role::Tool => {
                if !m.tool_results.is_empty() {
                    tracing::warn!(seq = m.seq, "skipping tool results that answer no preceding tool call");
                }
            }
        }
    }
    messages
}
