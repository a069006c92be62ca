//! The OpenAI-compatible Chat Completions provider (`POST {base}/chat/completions`, SSE).
//!
//! Besides OpenAI itself this speaks to most local and hosted servers that copy the API
//! (vLLM, llama.cpp, LM Studio, Ollama's `/v1`, OpenRouter), so it is lenient where they differ:
//! no `Authorization` header without a key, `max_tokens` (switching to `max_completion_tokens`
//! only when the server asks for it), reasoning read from `reasoning_content` or `reasoning`,
//! and tool calls honoured even when the server reports `finish_reason: "stop"`.

use std::collections::BTreeMap;

use futures::future::BoxFuture;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::engine::content::{ToolCall, Usage};
use crate::engine::provider::http::{self, Decoder, Labels, RetryPolicy};
use crate::engine::provider::{EventStream, FinishReason, Provider, ProviderError, ProviderEvent, ProviderRequest};

/// The base URL when none is configured.
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

const LABELS: Labels = Labels { provider: "openai", key_env: Some("OPENAI_API_KEY"), url_env: "OPENAI_BASE_URL" };

/// A Chat Completions endpoint.
pub struct OpenAiProvider {
    client: http::LazyClient,
    /// Without a trailing `/`, including `/v1`.
    base_url: String,
    /// The `Authorization: Bearer` header value.
    authorization: Option<HeaderValue>,
    retry: RetryPolicy,
}

impl OpenAiProvider {
    /// A provider for `base_url` (which includes `/v1`); `api_key` may be `None` for local
    /// servers that take none.
    pub fn new(base_url: &str, api_key: Option<String>) -> Result<Self, ProviderError> {
        Self::with_stall_timeout(base_url, api_key, http::DEFAULT_STALL_TIMEOUT)
    }

    /// Like [`new`](Self::new); a stream silent for `stall_timeout` fails the call.
    pub fn with_stall_timeout(
        base_url: &str,
        api_key: Option<String>,
        stall_timeout: std::time::Duration,
    ) -> Result<Self, ProviderError> {
        Ok(OpenAiProvider {
            client: http::LazyClient::new(stall_timeout),
            base_url: base_url.trim_end_matches('/').to_string(),
            authorization: api_key.map(|key| http::secret_header(LABELS, &format!("Bearer {key}"))).transpose()?,
            retry: RetryPolicy::DEFAULT,
        })
    }

    async fn start(&self, request: ProviderRequest) -> Result<EventStream, ProviderError> {
        let url = format!("{}/chat/completions", self.base_url);
        let mut body = request::body(&request);
        let response = match self.send(&url, &body).await {
            // Reasoning models reject `max_tokens` and name its replacement.
            Err(ProviderError::Http { status: 400, detail, .. }) if detail.contains("max_completion_tokens") => {
                body.use_max_completion_tokens();
                self.send(&url, &body).await?
            }
            other => other?,
        };
        Ok(decode_body(response.bytes_stream()))
    }

    async fn send(&self, url: &str, body: &request::Body<'_>) -> Result<reqwest::Response, ProviderError> {
        // Serialised once, however many retries: each sends the same bytes.
        let bytes = bytes::Bytes::from(serde_json::to_vec(body).map_err(|e| ProviderError::Protocol {
            provider: LABELS.provider,
            detail: format!("cannot encode the request body: {e}"),
        })?);
        let client = self.client.get()?;
        http::send_with_retry(LABELS, url, self.retry, || {
            let builder =
                client.post(url).header(reqwest::header::CONTENT_TYPE, "application/json").body(bytes.clone());
            match &self.authorization {
                Some(value) => builder.header(AUTHORIZATION, value.clone()),
                None => builder,
            }
        })
        .await
    }
}

impl Provider for OpenAiProvider {
    fn name(&self) -> &'static str {
        LABELS.provider
    }

    fn stream(&self, request: ProviderRequest) -> BoxFuture<'_, Result<EventStream, ProviderError>> {
        Box::pin(self.start(request))
    }
}

/// One `data:` chunk of the stream. Every field is optional: servers differ.
#[derive(Debug, Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Option<Vec<Choice>>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    #[serde(default)]
    delta: Option<Delta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    reasoning_content: Option<String>,
    #[serde(default)]
    reasoning: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<ToolCallDelta>>,
}

#[derive(Debug, Deserialize)]
struct ToolCallDelta {
    #[serde(default)]
    index: Option<u64>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<FunctionDelta>,
}

#[derive(Debug, Deserialize)]
struct FunctionDelta {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
    #[serde(default)]
    completion_tokens_details: Option<CompletionDetails>,
}

#[derive(Debug, Deserialize)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct CompletionDetails {
    #[serde(default)]
    reasoning_tokens: Option<u64>,
}

impl WireUsage {
    fn to_usage(&self) -> Usage {
        Usage {
            input_tokens: self.prompt_tokens,
            output_tokens: self.completion_tokens,
            cached_input_tokens: self.prompt_tokens_details.as_ref().and_then(|d| d.cached_tokens).unwrap_or(0),
            reasoning_tokens: self.completion_tokens_details.as_ref().and_then(|d| d.reasoning_tokens).unwrap_or(0),
        }
    }
}

/// A tool call whose fragments are still arriving.
#[derive(Debug, Default)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
}

/// The events of an answer body (Server-Sent Events), from its byte chunks however they are cut: apart
/// from the HTTP call so tests and the fuzz targets can feed bytes.
pub(crate) fn decode_body<S, E>(body: S) -> EventStream
where
    S: futures::Stream<Item = Result<bytes::Bytes, E>> + Send + 'static,
    E: std::error::Error + Send + Sync + 'static,
{
    http::decode_stream(http::sse_events(body, LABELS), ChunkDecoder::default())
}

/// Assembles the chunks of one answer. Tool calls, usage and `Finish` are emitted at the end
/// (`data: [DONE]`, or the end of the body once a `finish_reason` was seen).
#[derive(Debug, Default)]
struct ChunkDecoder {
    calls: BTreeMap<u64, PartialCall>,
    last_call_idx: Option<u64>,
    finish: Option<FinishReason>,
    usage: Option<Usage>,
}

impl Decoder for ChunkDecoder {
    type Input = eventsource_stream::Event;

    fn feed(&mut self, event: eventsource_stream::Event) -> Result<Vec<ProviderEvent>, ProviderError> {
        let data = event.data.trim();
        if data.is_empty() {
            return Ok(Vec::new());
        }
        if data == "[DONE]" {
            return self.complete();
        }
        let chunk: Chunk = serde_json::from_str(data).map_err(|e| http::malformed(LABELS, "a chunk", &e))?;
        self.on_chunk(chunk)
    }

    fn end(&mut self) -> Result<Vec<ProviderEvent>, ProviderError> {
        self.complete()
    }
}

impl ChunkDecoder {
    fn on_chunk(&mut self, chunk: Chunk) -> Result<Vec<ProviderEvent>, ProviderError> {
        if let Some(error) = chunk.error {
            return Err(stream_error(&error));
        }
        if let Some(usage) = &chunk.usage {
            self.usage = Some(usage.to_usage());
        }
        let mut events = Vec::new();
        for choice in chunk.choices.into_iter().flatten().take(1) {
            if let Some(delta) = choice.delta {
                self.on_delta(delta, &mut events);
            }
            if let Some(reason) = choice.finish_reason {
                self.finish = Some(finish_reason(&reason));
            }
        }
        Ok(events)
    }

    fn on_delta(&mut self, delta: Delta, events: &mut Vec<ProviderEvent>) {
        let reasoning = delta.reasoning_content.or(delta.reasoning);
        if let Some(thought) = reasoning.filter(|t| !t.is_empty()) {
            events.push(ProviderEvent::ThoughtDelta(thought));
        }
        if let Some(text) = delta.content.filter(|t| !t.is_empty()) {
            events.push(ProviderEvent::TextDelta(text));
        }
        for fragment in delta.tool_calls.into_iter().flatten() {
            self.on_tool_fragment(fragment);
        }
    }

    fn on_tool_fragment(&mut self, fragment: ToolCallDelta) {
        // Servers that omit `index` start a new call with each `id`.
        let call_idx = fragment.index.unwrap_or_else(|| match (&fragment.id, self.last_call_idx) {
            (None, Some(last)) => last,
            _ => self.calls.keys().next_back().map_or(0, |k| k + 1),
        });
        self.last_call_idx = Some(call_idx);
        let call = self.calls.entry(call_idx).or_default();
        if let Some(id) = fragment.id.filter(|id| !id.is_empty()) {
            call.id = id;
        }
        let function = fragment.function.unwrap_or(FunctionDelta { name: None, arguments: None });
        if let Some(name) = function.name.filter(|n| !n.is_empty())
            && call.name.is_empty()
        {
            call.name = name;
        }
        if let Some(arguments) = function.arguments {
            call.arguments.push_str(&arguments);
        }
    }

    /// The closing events: tool calls, usage, `Finish`.
    fn complete(&mut self) -> Result<Vec<ProviderEvent>, ProviderError> {
        let Some(mut finish) = self.finish else {
            return Err(ProviderError::Protocol {
                provider: LABELS.provider,
                detail: "the stream ended without a finish_reason (the answer is incomplete); try again".to_string(),
            });
        };
        let calls = std::mem::take(&mut self.calls);
        if !calls.is_empty() && finish == FinishReason::Stop {
            finish = FinishReason::ToolUse;
        }
        let mut events: Vec<ProviderEvent> =
            calls.into_iter().map(|(call_idx, call)| ProviderEvent::ToolCall(assemble(call_idx, call))).collect();
        events.extend(self.usage.take().map(ProviderEvent::Usage));
        events.push(ProviderEvent::Finish(finish));
        Ok(events)
    }
}

/// A finished tool call. Arguments that are not valid JSON are kept as a JSON string, so the
/// engine can tell the model what went wrong.
fn assemble(call_idx: u64, call: PartialCall) -> ToolCall {
    let raw = call.arguments.trim();
    let arguments = if raw.is_empty() {
        json!({})
    } else {
        serde_json::from_str(raw).unwrap_or_else(|_| Value::String(call.arguments.clone()))
    };
    let id = if call.id.is_empty() { format!("call_{call_idx}") } else { call.id };
    ToolCall { id, name: call.name, arguments }
}

fn finish_reason(reason: &str) -> FinishReason {
    match reason {
        "length" => FinishReason::MaxTokens,
        "tool_calls" | "function_call" => FinishReason::ToolUse,
        "content_filter" => FinishReason::Refusal,
        _ => FinishReason::Stop,
    }
}

/// An `error` object inside the stream (`{"error": {"message", "code"}}`).
fn stream_error(error: &Value) -> ProviderError {
    let message = error.get("message").and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| error.to_string());
    let status =
        error.get("code").or_else(|| error.get("status")).and_then(Value::as_u64).and_then(|c| u16::try_from(c).ok());
    http::in_stream_error(LABELS, status, &message)
}

mod request;
#[cfg(test)]
mod tests;
