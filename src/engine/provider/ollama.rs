//! The Ollama provider, on Ollama's native `POST {host}/api/chat` (NDJSON, one JSON object per
//! line), plus [`probe`], which tells provider selection whether a local Ollama is running.
//!
//! The native API is used rather than Ollama's OpenAI-compatible `/v1` because it reports
//! thinking and tool calls reliably and needs no key. Ollama gives tool calls no id, so ids
//! `call_<n>` are made up here, numbered across the process so they never repeat in a session.

use std::time::Duration;

use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::engine::content::{ContentPart, ToolCall, Usage};
use crate::engine::provider::http::{self, Decoder, Labels, RetryPolicy};
use crate::engine::provider::{
    EventStream, FinishReason, Provider, ProviderError, ProviderEvent, ProviderMessage, ProviderRequest,
};

/// The host when `OLLAMA_HOST` is not set.
pub const DEFAULT_HOST: &str = "http://127.0.0.1:11434";
/// Ollama's port when a host is given without one.
const DEFAULT_PORT: u16 = 11434;
/// How long [`probe`] waits: a local server answers in milliseconds.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

const LABELS: Labels = Labels { provider: "ollama", key_env: None, url_env: "OLLAMA_HOST" };

/// A native Ollama endpoint.
pub struct OllamaProvider {
    client: http::LazyClient,
    /// Normalized by [`normalize_host`].
    host: String,
    retry: RetryPolicy,
}

impl OllamaProvider {
    /// A provider for `host` in any form `OLLAMA_HOST` accepts (see [`normalize_host`]).
    pub fn new(host: &str) -> Result<Self, ProviderError> {
        Self::with_stall_timeout(host, http::DEFAULT_STALL_TIMEOUT)
    }

    /// Like [`new`](Self::new); a stream silent for `stall_timeout` fails the call.
    pub fn with_stall_timeout(host: &str, stall_timeout: std::time::Duration) -> Result<Self, ProviderError> {
        Ok(OllamaProvider {
            client: http::LazyClient::new(stall_timeout),
            host: normalize_host(host),
            retry: RetryPolicy::DEFAULT,
        })
    }

    async fn start(&self, request: ProviderRequest) -> Result<EventStream, ProviderError> {
        let url = format!("{}/api/chat", self.host);
        let body = request_body(&request);
        let client = self.client.get()?;
        let response = http::send_with_retry(LABELS, &url, self.retry, || client.post(&url).json(&body)).await?;
        Ok(decode_body(response.bytes_stream()))
    }
}

impl Provider for OllamaProvider {
    fn name(&self) -> &'static str {
        LABELS.provider
    }

    fn stream(&self, request: ProviderRequest) -> BoxFuture<'_, Result<EventStream, ProviderError>> {
        Box::pin(self.start(request))
    }
}

/// `OLLAMA_HOST` as a base URL: `host:port` gets `http://`, a bare host gets port 11434, and a
/// trailing `/` is dropped. An empty value means [`DEFAULT_HOST`].
pub fn normalize_host(raw: &str) -> String {
    let raw = raw.trim().trim_end_matches('/');
    if raw.is_empty() {
        return DEFAULT_HOST.to_string();
    }
    if raw.contains("://") {
        return raw.to_string();
    }
    let has_port = match raw.rsplit_once(':') {
        // `[::1]:11434` or `host:11434`; a bare IPv6 address has colons but ends in `]`.
        Some((_, port)) => !port.is_empty() && port.chars().all(|c| c.is_ascii_digit()) && !raw.ends_with(']'),
        None => false,
    };
    if has_port { format!("http://{raw}") } else { format!("http://{raw}:{DEFAULT_PORT}") }
}

/// Whether an Ollama server answers `GET {host}/api/tags` within half a second.
pub async fn probe(host: &str) -> bool {
    let Ok(tls) = super::tls::client_config() else { return false };
    let Ok(client) = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .user_agent(http::USER_AGENT)
        .timeout(PROBE_TIMEOUT)
        .build()
    else {
        return false;
    };
    let url = format!("{}/api/tags", normalize_host(host));
    match client.get(&url).send().await {
        Ok(response) => response.status().is_success(),
        Err(e) => {
            tracing::debug!(%url, error = %http::error_chain(&e), "no ollama server answered");
            false
        }
    }
}

/// The JSON body of a streaming `/api/chat` request.
fn request_body(request: &ProviderRequest) -> Value {
    let mut messages = Vec::new();
    if let Some(system) = &request.system {
        messages.push(json!({"role": "system", "content": system}));
    }
    let mut tool_names: Vec<(&str, &str)> = Vec::new();
    for message in &request.messages {
        match message {
            ProviderMessage::User(parts) => messages.push(user_message(parts)),
            ProviderMessage::Assistant { content, tool_calls } => {
                tool_names = tool_calls.iter().map(|c| (c.id.as_str(), c.name.as_str())).collect();
                messages.push(assistant_message(content, tool_calls));
            }
            ProviderMessage::ToolResults(results) => messages.extend(results.iter().map(|result| {
                let content =
                    if result.is_error { format!("Error: {}", result.content) } else { result.content.clone() };
                let mut message = json!({"role": "tool", "content": content});
                if let Some((_, name)) = tool_names.iter().find(|(id, _)| *id == result.call_id) {
                    message["tool_name"] = json!(name);
                }
                message
            })),
        }
    }
    let mut body = json!({
        "model": request.model,
        "messages": messages,
        "stream": true,
        "options": {"num_predict": request.max_tokens},
    });
    if !request.tools.is_empty() {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|t| {
                json!({"type": "function", "function": {
                    "name": t.name, "description": t.description, "parameters": t.parameters,
                }})
            })
            .collect();
        body["tools"] = json!(tools);
    }
    body
}

fn user_message(parts: &[ContentPart]) -> Value {
    let texts: Vec<String> = parts.iter().filter_map(http::part_as_text).collect();
    let images: Vec<&str> = parts
        .iter()
        .filter_map(|part| match part {
            ContentPart::Image { data, .. } => Some(data.as_str()),
            _ => None,
        })
        .collect();
    let mut message = json!({"role": "user", "content": texts.join("\n\n")});
    if !images.is_empty() {
        message["images"] = json!(images);
    }
    message
}

fn assistant_message(content: &[ContentPart], tool_calls: &[ToolCall]) -> Value {
    let texts: Vec<&str> = content
        .iter()
        .filter_map(|part| match part {
            ContentPart::Text { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    let mut message = json!({"role": "assistant", "content": texts.join("\n\n")});
    if !tool_calls.is_empty() {
        let calls: Vec<Value> = tool_calls
            .iter()
            .map(|c| {
                let arguments = if c.arguments.is_object() { c.arguments.clone() } else { json!({}) };
                json!({"function": {"name": c.name, "arguments": arguments}})
            })
            .collect();
        message["tool_calls"] = json!(calls);
    }
    message
}

/// One line of the answer.
#[derive(Debug, Deserialize)]
struct Line {
    #[serde(default)]
    message: Option<LineMessage>,
    #[serde(default)]
    done: bool,
    #[serde(default)]
    done_reason: Option<String>,
    #[serde(default)]
    prompt_eval_count: Option<u64>,
    #[serde(default)]
    eval_count: Option<u64>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct LineMessage {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    thinking: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<WireToolCall>>,
}

#[derive(Debug, Deserialize)]
struct WireToolCall {
    #[serde(default)]
    id: Option<String>,
    function: WireFunction,
}

#[derive(Debug, Deserialize)]
struct WireFunction {
    name: String,
    #[serde(default)]
    arguments: Value,
}

/// The events of an answer body (NDJSON), from its byte chunks however they are cut: apart
/// from the HTTP call so tests and the fuzz targets can feed bytes.
pub(crate) fn decode_body<S, E>(body: S) -> EventStream
where
    S: futures::Stream<Item = Result<bytes::Bytes, E>> + Send + 'static,
    E: std::error::Error + Send + Sync + 'static,
{
    http::decode_stream(http::ndjson_lines(body, LABELS), LineDecoder::default())
}

/// Turns NDJSON lines into events; the `done: true` line closes the answer.
#[derive(Debug, Default)]
struct LineDecoder {
    saw_tool_call: bool,
}

impl Decoder for LineDecoder {
    type Input = String;

    fn feed(&mut self, line: String) -> Result<Vec<ProviderEvent>, ProviderError> {
        let line: Line = serde_json::from_str(&line).map_err(|e| http::malformed(LABELS, "a line", &e))?;
        if let Some(error) = line.error {
            return Err(http::in_stream_error(LABELS, None, &error));
        }
        let mut events = Vec::new();
        if let Some(message) = line.message {
            self.on_message(message, &mut events);
        }
        if line.done {
            events.push(ProviderEvent::Usage(Usage {
                input_tokens: line.prompt_eval_count.unwrap_or(0),
                output_tokens: line.eval_count.unwrap_or(0),
                ..Usage::default()
            }));
            events.push(ProviderEvent::Finish(self.finish(line.done_reason.as_deref())));
        }
        Ok(events)
    }

    fn end(&mut self) -> Result<Vec<ProviderEvent>, ProviderError> {
        Err(ProviderError::Protocol {
            provider: LABELS.provider,
            detail: "the answer ended without its final `done` line; try again".to_string(),
        })
    }
}

impl LineDecoder {
    fn on_message(&mut self, message: LineMessage, events: &mut Vec<ProviderEvent>) {
        if let Some(thinking) = message.thinking.filter(|t| !t.is_empty()) {
            events.push(ProviderEvent::ThoughtDelta(thinking));
        }
        if let Some(content) = message.content.filter(|t| !t.is_empty()) {
            events.push(ProviderEvent::TextDelta(content));
        }
        for call in message.tool_calls.into_iter().flatten() {
            self.saw_tool_call = true;
            events.push(ProviderEvent::ToolCall(tool_call(call)));
        }
    }

    fn finish(&self, done_reason: Option<&str>) -> FinishReason {
        if self.saw_tool_call {
            return FinishReason::ToolUse;
        }
        match done_reason {
            Some("length") => FinishReason::MaxTokens,
            _ => FinishReason::Stop,
        }
    }
}

fn tool_call(call: WireToolCall) -> ToolCall {
    let id = call.id.filter(|id| !id.is_empty()).unwrap_or_else(new_call_id);
    let arguments = match call.function.arguments {
        Value::Null => json!({}),
        // Some models send the arguments as a JSON string.
        Value::String(raw) if raw.trim().is_empty() => json!({}),
        Value::String(raw) => serde_json::from_str(&raw).unwrap_or(Value::String(raw)),
        other => other,
    };
    ToolCall { id, name: call.function.name, arguments }
}

#[cfg(test)]
mod tests;

/// Ollama sends no call ids; make one that stays unique across restarts, because history
/// pairs calls with their results by id.
fn new_call_id() -> String {
    format!("call_{}", uuid::Uuid::new_v4().simple())
}
