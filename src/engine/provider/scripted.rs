//! The scripted provider: an OFFLINE stand-in for a model, for demos and tests. It never talks
//! to any LLM; it replays answers from a script.
//!
//! It is only used when asked for (`RATCHET_PROVIDER=scripted` or `provider = "scripted"`),
//! never chosen silently. Without a script it plays a small built-in demo that explains what it
//! is and how to configure a real provider.
//!
//! # Script format
//!
//! A JSON file, named by `RATCHET_SCRIPT` or the config key `script`:
//!
//! ```json
//! {"turns": [
//!   {"match": "read", "text": "Let me look.", "tool_calls": [{"name": "read_file", "arguments": {"path": "a.rs"}}]},
//!   {"thinking": "The file is short.", "text": "It is 3 lines long.", "chunk_delay_ms": 20},
//!   {"text": "Cut short", "finish": "max_tokens", "usage": {"input_tokens": 10, "output_tokens": 2}}
//! ]}
//! ```
//!
//! Every field of a turn is optional: `match` (substring), `thinking`, `text`, `tool_calls`
//! (`name` plus `arguments` object), `finish` (`stop`, `max_tokens`, `refusal`, `tool_use`;
//! default `stop`, or `tool_use` when there are tool calls), `chunk_delay_ms` (pause before each
//! chunk, default 0), `usage` (`input_tokens`, `output_tokens`; default: rough word counts).
//!
//! Which turn answers: the first turn whose `match` occurs in the text of the request's last
//! message (the user's text, or after tool calls the tool results' content); otherwise the turn
//! whose index is the number of assistant messages in the request, clamped to the last turn.
//! So a script of plain turns plays them in order, including follow-ups after tool calls.
//!
//! Thinking streams before text; both stream word by word with whitespace kept, so the chunks
//! join to exactly the script's text. Tool calls get ids `script_call_<n>`, numbered from 1
//! across the provider's lifetime.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use serde::Deserialize;

use crate::engine::content::{ContentPart, ToolCall, Usage};
use crate::engine::provider::{
    EventStream, FinishReason, Provider, ProviderError, ProviderEvent, ProviderMessage, ProviderRequest,
};

/// A whole script.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    pub turns: Vec<ScriptTurn>,
}

/// One scripted answer.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptTurn {
    #[serde(default, rename = "match")]
    pub match_text: Option<String>,
    #[serde(default)]
    pub thinking: Option<String>,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub tool_calls: Vec<ScriptToolCall>,
    #[serde(default)]
    pub finish: Option<FinishReason>,
    #[serde(default)]
    pub chunk_delay_ms: u64,
    #[serde(default)]
    pub usage: Option<ScriptUsage>,
}

/// A tool call the script makes.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptToolCall {
    pub name: String,
    #[serde(default = "empty_object")]
    pub arguments: serde_json::Value,
}

/// Token counts the script reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptUsage {
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
}

fn empty_object() -> serde_json::Value {
    serde_json::json!({})
}

const DEMO_SCRIPT: &str = r#"{"turns": [
  {"thinking": "The user is talking to the scripted demo provider. I should say so and explain how to set up a real model.",
   "text": "Hello! This is ratchet running the **scripted demo provider**: these answers are replayed from a built-in script, and no language model is involved.\n\nTo talk to a real model, do one of these and restart ratchet:\n\n- set `ANTHROPIC_API_KEY` or `OPENAI_API_KEY`;\n- start Ollama locally (`ollama serve`);\n- set `RATCHET_PROVIDER` (`openai`, `anthropic` or `ollama`) and `RATCHET_MODEL`;\n- or write `provider` and `model` in `config.toml` in ratchet's home directory.",
   "chunk_delay_ms": 15},
  {"text": "I'm still the scripted demo, so I can't really answer that. To replay your own conversation instead of this demo, point `RATCHET_SCRIPT` at a JSON script file (its format is described in the docs of the `scripted` provider). To use a real model, set an API key or `RATCHET_PROVIDER` as explained in my first answer.",
   "chunk_delay_ms": 15}
]}"#;

/// Replays a [`Script`].
pub struct ScriptedProvider {
    script: Script,
    next_call_id: AtomicU64,
}

impl ScriptedProvider {
    /// Plays `script`, which must have at least one turn.
    pub fn new(script: Script) -> Result<Self, ProviderError> {
        if script.turns.is_empty() {
            return Err(ProviderError::Config(
                "the script has no turns; add at least one {\"text\": ...} turn".to_string(),
            ));
        }
        Ok(ScriptedProvider { script, next_call_id: AtomicU64::new(1) })
    }

    /// The built-in demo.
    pub fn demo() -> Self {
        let script = parse_script(DEMO_SCRIPT).expect("the built-in demo script is valid JSON");
        ScriptedProvider::new(script).expect("the built-in demo script has turns")
    }

    /// Loads a script file; a missing or invalid file is a `Config` error naming it.
    pub fn from_file(path: &Path) -> Result<Self, ProviderError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ProviderError::Config(format!(
                "cannot read the script {}: {e}; check RATCHET_SCRIPT or the `script` config key",
                path.display()
            ))
        })?;
        let script = parse_script(&text).map_err(|e| {
            ProviderError::Config(format!(
                "the script {} is not valid: {e}; see the `scripted` provider docs for the format",
                path.display()
            ))
        })?;
        ScriptedProvider::new(script)
            .map_err(|e| ProviderError::Config(format!("the script {} is not usable: {e}", path.display())))
    }

    /// The events of the turn that answers `request`.
    fn events_for(&self, request: &ProviderRequest) -> (Vec<ProviderEvent>, Duration) {
        let turn = select_turn(&self.script.turns, &request.messages);
        let mut events = Vec::new();
        if let Some(thinking) = &turn.thinking {
            events.extend(words(thinking).map(|w| ProviderEvent::ThoughtDelta(w.to_string())));
        }
        if let Some(text) = &turn.text {
            events.extend(words(text).map(|w| ProviderEvent::TextDelta(w.to_string())));
        }
        for call in &turn.tool_calls {
            let n = self.next_call_id.fetch_add(1, Ordering::Relaxed);
            events.push(ProviderEvent::ToolCall(ToolCall {
                id: format!("script_call_{n}"),
                name: call.name.clone(),
                arguments: call.arguments.clone(),
            }));
        }
        events.push(ProviderEvent::Usage(usage(turn, request)));
        events.push(ProviderEvent::Finish(finish(turn)));
        (events, Duration::from_millis(turn.chunk_delay_ms))
    }
}

impl Provider for ScriptedProvider {
    fn name(&self) -> &'static str {
        "scripted"
    }

    fn stream(&self, request: ProviderRequest) -> BoxFuture<'_, Result<EventStream, ProviderError>> {
        let (events, delay) = self.events_for(&request);
        Box::pin(async move { Ok(paced(events, delay)) })
    }
}

/// Parses a script's JSON text.
pub fn parse_script(text: &str) -> Result<Script, serde_json::Error> {
    serde_json::from_str(text)
}

/// The turn that answers `messages` (see the module docs).
fn select_turn<'a>(turns: &'a [ScriptTurn], messages: &[ProviderMessage]) -> &'a ScriptTurn {
    let last_text = messages.last().map(message_text).unwrap_or_default();
    let matched = turns.iter().find(|turn| turn.match_text.as_deref().is_some_and(|needle| last_text.contains(needle)));
    if let Some(turn) = matched {
        return turn;
    }
    let n_assistant = messages.iter().filter(|m| matches!(m, ProviderMessage::Assistant { .. })).count();
    &turns[n_assistant.min(turns.len() - 1)]
}

/// The text a message carries, for matching.
fn message_text(message: &ProviderMessage) -> String {
    match message {
        ProviderMessage::User(parts) | ProviderMessage::Assistant { content: parts, .. } => parts
            .iter()
            .filter_map(|part| match part {
                ContentPart::Text { text } => Some(text.as_str()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n"),
        ProviderMessage::ToolResults(results) => {
            results.iter().map(|r| r.content.as_str()).collect::<Vec<_>>().join("\n")
        }
    }
}

/// Splits text into chunks that each end after a run of whitespace; they join to `text`.
fn words(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let word_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let space_end = rest[word_end..].find(|c: char| !c.is_whitespace()).map_or(rest.len(), |i| word_end + i);
        let (chunk, tail) = rest.split_at(space_end);
        rest = tail;
        Some(chunk)
    })
}

fn usage(turn: &ScriptTurn, request: &ProviderRequest) -> Usage {
    if let Some(usage) = turn.usage {
        return Usage { input_tokens: usage.input_tokens, output_tokens: usage.output_tokens, ..Usage::default() };
    }
    let count = |text: &str| text.split_whitespace().count() as u64;
    let input: u64 = request.system.as_deref().map_or(0, count)
        + request.messages.iter().map(|m| count(&message_text(m))).sum::<u64>();
    let output = turn.thinking.as_deref().map_or(0, count) + turn.text.as_deref().map_or(0, count);
    Usage { input_tokens: input, output_tokens: output, ..Usage::default() }
}

fn finish(turn: &ScriptTurn) -> FinishReason {
    match turn.finish {
        Some(reason) => reason,
        None if !turn.tool_calls.is_empty() => FinishReason::ToolUse,
        None => FinishReason::Stop,
    }
}

/// The events as a stream, with `delay` before each text or thought chunk.
fn paced(events: Vec<ProviderEvent>, delay: Duration) -> EventStream {
    let stream = futures::stream::iter(events).then(move |event| async move {
        let is_chunk = matches!(event, ProviderEvent::TextDelta(_) | ProviderEvent::ThoughtDelta(_));
        if is_chunk && !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        Ok(event)
    });
    Box::pin(stream)
}

#[cfg(test)]
mod tests;
