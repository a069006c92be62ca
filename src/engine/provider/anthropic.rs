//! The Anthropic Messages provider (`POST {base}/v1/messages`, SSE).
//!
//! Anthropic streams content blocks (text, thinking, tool use) with explicit start/delta/stop
//! events; this module maps them onto [`ProviderEvent`]s, assembling tool inputs from their
//! `input_json_delta` fragments. Thinking blocks are sent back only with their signature, as
//! the API requires. Usage is reported once, at the end: `input_tokens` there is the whole
//! prompt (Anthropic's uncached input plus cache reads and writes) so it means the same as for
//! the other providers.

use std::collections::HashMap;

use futures::future::BoxFuture;
use reqwest::header::HeaderValue;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::engine::content::{ContentPart, ToolCall, ToolResult, Usage};
use crate::engine::provider::http::{self, Decoder, Labels, RetryPolicy};
use crate::engine::provider::{
    EventStream, FinishReason, Provider, ProviderError, ProviderEvent, ProviderMessage, ProviderRequest,
};

/// The base URL when none is configured (without `/v1`).
pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
/// The API version header value.
const API_VERSION: &str = "2023-06-01";

const LABELS: Labels =
    Labels { provider: "anthropic", key_env: Some("ANTHROPIC_API_KEY"), url_env: "ANTHROPIC_BASE_URL" };

/// A Messages API endpoint.
pub struct AnthropicProvider {
    client: http::LazyClient,
    /// Without a trailing `/` and without `/v1`.
    base_url: String,
    /// The `x-api-key` header value.
    api_key: Option<HeaderValue>,
    retry: RetryPolicy,
}

impl AnthropicProvider {
    /// A provider for `base_url` (without `/v1`; a trailing `/v1` is tolerated). Without a key
    /// no `x-api-key` header is sent (for proxies that add it).
    pub fn new(base_url: &str, api_key: Option<String>) -> Result<Self, ProviderError> {
        Self::with_stall_timeout(base_url, api_key, http::DEFAULT_STALL_TIMEOUT)
    }

    /// Like [`new`](Self::new); a stream silent for `stall_timeout` fails the call.
    pub fn with_stall_timeout(
        base_url: &str,
        api_key: Option<String>,
        stall_timeout: std::time::Duration,
    ) -> Result<Self, ProviderError> {
        let trimmed = base_url.trim_end_matches('/');
        let base_url = trimmed.strip_suffix("/v1").unwrap_or(trimmed).to_string();
        Ok(AnthropicProvider {
            client: http::LazyClient::new(stall_timeout),
            base_url,
            api_key: api_key.map(|key| http::secret_header(LABELS, &key)).transpose()?,
            retry: RetryPolicy::DEFAULT,
        })
    }

    async fn start(&self, request: ProviderRequest) -> Result<EventStream, ProviderError> {
        let url = format!("{}/v1/messages", self.base_url);
        let body = request_body(&request);
        let client = self.client.get()?;
        let response = http::send_with_retry(LABELS, &url, self.retry, || {
            let builder = client.post(&url).header("anthropic-version", API_VERSION).json(&body);
            match &self.api_key {
                Some(key) => builder.header("x-api-key", key.clone()),
                None => builder,
            }
        })
        .await?;
        Ok(decode_body(response.bytes_stream()))
    }
}

impl Provider for AnthropicProvider {
    fn name(&self) -> &'static str {
        LABELS.provider
    }

    fn stream(&self, request: ProviderRequest) -> BoxFuture<'_, Result<EventStream, ProviderError>> {
        Box::pin(self.start(request))
    }
}

/// The JSON body of a streaming Messages request.
fn request_body(request: &ProviderRequest) -> Value {
    let mut body = json!({
        "model": request.model,
        "max_tokens": request.max_tokens,
        "stream": true,
        "messages": messages_json(&request.messages),
    });
    if let Some(system) = request.system.as_ref().filter(|s| !s.is_empty()) {
        body["system"] = json!(system);
    }
    if !request.tools.is_empty() {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.parameters}))
            .collect();
        body["tools"] = json!(tools);
    }
    body
}

/// The conversation as Messages API turns. Consecutive turns of the same role (tool results
/// followed by user text) are merged, as the API wants strictly alternating roles.
fn messages_json(messages: &[ProviderMessage]) -> Vec<Value> {
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for message in messages {
        let (role, mut blocks) = match message {
            ProviderMessage::User(parts) => ("user", user_blocks(parts)),
            ProviderMessage::Assistant { content, tool_calls } => ("assistant", assistant_blocks(content, tool_calls)),
            ProviderMessage::ToolResults(results) => ("user", results.iter().map(tool_result_block).collect()),
        };
        match turns.last_mut() {
            Some((last_role, last_blocks)) if *last_role == role => last_blocks.append(&mut blocks),
            _ => turns.push((role, blocks)),
        }
    }
    turns
        .into_iter()
        .map(|(role, mut blocks)| {
            if blocks.is_empty() {
                // The API rejects empty content; this only happens for an empty message.
                blocks.push(json!({"type": "text", "text": "(empty)"}));
            }
            json!({"role": role, "content": blocks})
        })
        .collect()
}

fn user_blocks(parts: &[ContentPart]) -> Vec<Value> {
    parts
        .iter()
        .filter_map(|part| match part {
            ContentPart::Image { mime_type, data } => Some(json!({
                "type": "image",
                "source": {"type": "base64", "media_type": mime_type, "data": data},
            })),
            other => {
                http::part_as_text(other).filter(|t| !t.is_empty()).map(|text| json!({"type": "text", "text": text}))
            }
        })
        .collect()
}

fn assistant_blocks(content: &[ContentPart], tool_calls: &[ToolCall]) -> Vec<Value> {
    let mut blocks: Vec<Value> = content
        .iter()
        .filter_map(|part| match part {
            ContentPart::Thought { text, signature: Some(signature) } => {
                Some(json!({"type": "thinking", "thinking": text, "signature": signature}))
            }
            ContentPart::Text { text } if !text.is_empty() => Some(json!({"type": "text", "text": text})),
            _ => None,
        })
        .collect();
    blocks.extend(tool_calls.iter().map(|call| {
        // `input` must be an object; arguments that never parsed are sent as an empty one.
        let input = if call.arguments.is_object() { call.arguments.clone() } else { json!({}) };
        json!({"type": "tool_use", "id": call.id, "name": call.name, "input": input})
    }));
    blocks
}

fn tool_result_block(result: &ToolResult) -> Value {
    json!({
        "type": "tool_result",
        "tool_use_id": result.call_id,
        "content": result.content,
        "is_error": result.is_error,
    })
}

/// The `data` of one SSE event, tagged by `type`.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireEvent {
    MessageStart {
        message: StartMessage,
    },
    ContentBlockStart {
        index: u64,
        content_block: StartBlock,
    },
    ContentBlockDelta {
        index: u64,
        delta: BlockDelta,
    },
    ContentBlockStop {
        index: u64,
    },
    MessageDelta {
        #[serde(default)]
        delta: MessageDeltaBody,
        #[serde(default)]
        usage: Option<WireUsage>,
    },
    MessageStop,
    Error {
        error: WireError,
    },
    /// `ping` and anything newer than this code.
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
struct StartMessage {
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum StartBlock {
    Text {
        #[serde(default)]
        text: String,
    },
    Thinking {
        #[serde(default)]
        thinking: String,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: Value,
    },
    /// Redacted thinking, server tool blocks and anything newer: ignored.
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum BlockDelta {
    TextDelta {
        text: String,
    },
    ThinkingDelta {
        thinking: String,
    },
    SignatureDelta {
        signature: String,
    },
    InputJsonDelta {
        partial_json: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Default, Deserialize)]
struct MessageDeltaBody {
    #[serde(default)]
    stop_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct WireUsage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct WireError {
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    message: String,
}

/// A content block that is still streaming.
#[derive(Debug)]
enum OpenBlock {
    Thinking { signature: String },
    ToolUse { id: String, name: String, initial: Value, json: String },
    Other,
}

/// The events of an answer body (Server-Sent Events), from its byte chunks however they are cut: apart
/// from the HTTP call so tests and the fuzz targets can feed bytes.
pub(crate) fn decode_body<S, E>(body: S) -> EventStream
where
    S: futures::Stream<Item = Result<bytes::Bytes, E>> + Send + 'static,
    E: std::error::Error + Send + Sync + 'static,
{
    http::decode_stream(http::sse_events(body, LABELS), EventDecoder::default())
}

/// Tracks open blocks, usage and the stop reason of one answer.
#[derive(Debug, Default)]
struct EventDecoder {
    blocks: HashMap<u64, OpenBlock>,
    /// Uncached input, cache reads, cache writes (from `message_start`, updated by `message_delta`).
    input: (u64, u64, u64),
    output_tokens: u64,
    stop: Option<FinishReason>,
}

impl Decoder for EventDecoder {
    type Input = eventsource_stream::Event;

    fn feed(&mut self, event: eventsource_stream::Event) -> Result<Vec<ProviderEvent>, ProviderError> {
        if event.data.trim().is_empty() {
            return Ok(Vec::new());
        }
        let wire: WireEvent = serde_json::from_str(&event.data).map_err(|e| http::malformed(LABELS, "an event", &e))?;
        self.on_event(wire)
    }

    fn end(&mut self) -> Result<Vec<ProviderEvent>, ProviderError> {
        Err(ProviderError::Protocol {
            provider: LABELS.provider,
            detail: "the stream ended before message_stop (the answer is incomplete); try again".to_string(),
        })
    }
}

impl EventDecoder {
    fn on_event(&mut self, event: WireEvent) -> Result<Vec<ProviderEvent>, ProviderError> {
        let events = match event {
            WireEvent::MessageStart { message } => {
                self.on_usage(message.usage.unwrap_or_default());
                Vec::new()
            }
            WireEvent::ContentBlockStart { index, content_block } => self.on_block_start(index, content_block),
            WireEvent::ContentBlockDelta { index, delta } => self.on_delta(index, delta),
            WireEvent::ContentBlockStop { index } => self.on_block_stop(index),
            WireEvent::MessageDelta { delta, usage } => {
                self.on_usage(usage.unwrap_or_default());
                self.stop = delta.stop_reason.as_deref().map(stop_reason).or(self.stop);
                Vec::new()
            }
            WireEvent::MessageStop => self.on_message_stop(),
            WireEvent::Error { error } => return Err(stream_error(&error)),
            WireEvent::Other => Vec::new(),
        };
        Ok(events)
    }

    fn on_usage(&mut self, usage: WireUsage) {
        self.input.0 = usage.input_tokens.unwrap_or(self.input.0);
        self.input.1 = usage.cache_read_input_tokens.unwrap_or(self.input.1);
        self.input.2 = usage.cache_creation_input_tokens.unwrap_or(self.input.2);
        self.output_tokens = usage.output_tokens.unwrap_or(self.output_tokens);
    }

    fn on_block_start(&mut self, index: u64, block: StartBlock) -> Vec<ProviderEvent> {
        let (open, first) = match block {
            StartBlock::Text { text } => {
                (OpenBlock::Other, (!text.is_empty()).then_some(ProviderEvent::TextDelta(text)))
            }
            StartBlock::Thinking { thinking } => (
                OpenBlock::Thinking { signature: String::new() },
                (!thinking.is_empty()).then_some(ProviderEvent::ThoughtDelta(thinking)),
            ),
            StartBlock::ToolUse { id, name, input } => {
                (OpenBlock::ToolUse { id, name, initial: input, json: String::new() }, None)
            }
            StartBlock::Other => (OpenBlock::Other, None),
        };
        self.blocks.insert(index, open);
        first.into_iter().collect()
    }

    fn on_delta(&mut self, index: u64, delta: BlockDelta) -> Vec<ProviderEvent> {
        let block = self.blocks.get_mut(&index);
        match (delta, block) {
            (BlockDelta::TextDelta { text }, _) => vec![ProviderEvent::TextDelta(text)],
            (BlockDelta::ThinkingDelta { thinking }, _) => {
                vec![ProviderEvent::ThoughtDelta(thinking)]
            }
            (BlockDelta::SignatureDelta { signature: piece }, Some(OpenBlock::Thinking { signature })) => {
                signature.push_str(&piece);
                Vec::new()
            }
            (BlockDelta::InputJsonDelta { partial_json }, Some(OpenBlock::ToolUse { json, .. })) => {
                json.push_str(&partial_json);
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    fn on_block_stop(&mut self, index: u64) -> Vec<ProviderEvent> {
        match self.blocks.remove(&index) {
            Some(OpenBlock::Thinking { signature }) if !signature.is_empty() => {
                vec![ProviderEvent::ThoughtSignature(signature)]
            }
            Some(OpenBlock::ToolUse { id, name, initial, json }) => {
                vec![ProviderEvent::ToolCall(ToolCall { id, name, arguments: tool_input(initial, &json) })]
            }
            _ => Vec::new(),
        }
    }

    fn on_message_stop(&mut self) -> Vec<ProviderEvent> {
        let (uncached, cache_read, cache_write) = self.input;
        let usage = Usage {
            // Counts come from the server: never let them overflow.
            input_tokens: uncached.saturating_add(cache_read).saturating_add(cache_write),
            output_tokens: self.output_tokens,
            cached_input_tokens: cache_read,
            reasoning_tokens: 0,
        };
        let finish = self.stop.unwrap_or(FinishReason::Stop);
        vec![ProviderEvent::Usage(usage), ProviderEvent::Finish(finish)]
    }
}

/// The tool input: the streamed JSON, else the start block's input, else `{}`. JSON that does
/// not parse is kept as a string for the engine to report.
fn tool_input(initial: Value, streamed: &str) -> Value {
    if streamed.trim().is_empty() {
        return if initial.is_object() { initial } else { json!({}) };
    }
    serde_json::from_str(streamed).unwrap_or_else(|_| Value::String(streamed.to_string()))
}

fn stop_reason(reason: &str) -> FinishReason {
    match reason {
        "max_tokens" | "model_context_window_exceeded" => FinishReason::MaxTokens,
        "tool_use" => FinishReason::ToolUse,
        "refusal" => FinishReason::Refusal,
        // end_turn, stop_sequence, pause_turn and anything newer.
        _ => FinishReason::Stop,
    }
}

/// An `error` event, e.g. `overloaded_error` in the middle of an answer.
fn stream_error(error: &WireError) -> ProviderError {
    let status = match error.kind.as_str() {
        "rate_limit_error" => Some(429),
        "overloaded_error" => Some(529),
        "api_error" => Some(500),
        _ => None,
    };
    let message = if error.message.is_empty() { &error.kind } else { &error.message };
    http::in_stream_error(LABELS, status, message)
}

#[cfg(test)]
mod tests;
