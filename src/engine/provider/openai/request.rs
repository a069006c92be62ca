//! The JSON body of a streaming Chat Completions request, serialised straight from the
//! conversation: the structs borrow every message's text, so a step with a long history
//! builds no `serde_json::Value` tree and copies no message (issue 11, prompt → model).

use std::borrow::Cow;

use serde::Serialize;
use serde_json::{Value, json};

use crate::engine::content::{ContentPart, ToolCall, ToolResult};
use crate::engine::provider::http;
use crate::engine::provider::{ProviderMessage, ProviderRequest, ToolSpec};

#[derive(Serialize)]
pub(super) struct Body<'a> {
    model: &'a str,
    messages: Vec<Message<'a>>,
    stream: bool,
    stream_options: StreamOptions,
    /// `max_tokens`, or `max_completion_tokens` once the server asked for that name.
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u32>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    tools: Vec<Tool<'a>>,
}

impl Body<'_> {
    /// Renames `max_tokens` to `max_completion_tokens` (what OpenAI's reasoning models accept).
    pub(super) fn use_max_completion_tokens(&mut self) {
        if let Some(limit) = self.max_tokens.take() {
            self.max_completion_tokens = Some(limit);
        }
    }
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Serialize)]
struct Message<'a> {
    role: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<Content<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<Vec<WireToolCall<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<&'a str>,
}

impl<'a> Message<'a> {
    fn new(role: &'static str, content: Option<Content<'a>>) -> Self {
        Message { role, content, tool_calls: None, tool_call_id: None }
    }
}

/// A message's content: a string, or the array form (only user messages with images).
#[derive(Serialize)]
#[serde(untagged)]
enum Content<'a> {
    Text(Cow<'a, str>),
    Parts(Vec<Value>),
}

#[derive(Serialize)]
struct WireToolCall<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: CallFunction<'a>,
}

#[derive(Serialize)]
struct CallFunction<'a> {
    name: &'a str,
    arguments: Cow<'a, str>,
}

#[derive(Serialize)]
struct Tool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: ToolFunction<'a>,
}

#[derive(Serialize)]
struct ToolFunction<'a> {
    name: &'a str,
    description: &'a str,
    parameters: &'a Value,
}

/// The body for `request`, borrowing from it.
pub(super) fn body(request: &ProviderRequest) -> Body<'_> {
    let mut messages = Vec::with_capacity(request.messages.len() + 1);
    if let Some(system) = &request.system {
        messages.push(Message::new("system", Some(Content::Text(Cow::Borrowed(system)))));
    }
    for message in &request.messages {
        match message {
            ProviderMessage::User(parts) => messages.push(user_message(parts)),
            ProviderMessage::Assistant { content, tool_calls } => messages.push(assistant_message(content, tool_calls)),
            ProviderMessage::ToolResults(results) => messages.extend(results.iter().map(tool_message)),
        }
    }
    Body {
        model: &request.model,
        messages,
        stream: true,
        stream_options: StreamOptions { include_usage: true },
        max_tokens: Some(request.max_tokens),
        max_completion_tokens: None,
        tools: request.tools.iter().map(tool).collect(),
    }
}

/// A user message: plain text, or the array form when there are images.
fn user_message(parts: &[ContentPart]) -> Message<'_> {
    let has_image = parts.iter().any(|p| matches!(p, ContentPart::Image { .. }));
    if !has_image {
        let text = match parts {
            [ContentPart::Text { text }] => Cow::Borrowed(text.as_str()),
            _ => Cow::Owned(parts.iter().filter_map(http::part_as_text).collect::<Vec<_>>().join("\n\n")),
        };
        return Message::new("user", Some(Content::Text(text)));
    }
    let content = parts
        .iter()
        .filter_map(|part| match part {
            ContentPart::Image { mime_type, data } => Some(json!({
                "type": "image_url",
                "image_url": {"url": format!("data:{mime_type};base64,{data}")},
            })),
            other => http::part_as_text(other).map(|text| json!({"type": "text", "text": text})),
        })
        .collect();
    Message::new("user", Some(Content::Parts(content)))
}

/// An earlier answer: its text (thoughts are not sent back) and its tool calls.
fn assistant_message<'a>(content: &'a [ContentPart], tool_calls: &'a [ToolCall]) -> Message<'a> {
    let mut texts = content.iter().filter_map(|part| match part {
        ContentPart::Text { text } => Some(text.as_str()),
        _ => None,
    });
    let text = match (texts.next(), texts.next()) {
        (None, _) => Cow::Borrowed(""),
        (Some(only), None) => Cow::Borrowed(only),
        (Some(first), Some(second)) => {
            Cow::Owned([first, second].into_iter().chain(texts).collect::<Vec<_>>().join("\n\n"))
        }
    };
    let mut message = Message::new("assistant", None);
    if !text.is_empty() || tool_calls.is_empty() {
        message.content = Some(Content::Text(text));
    }
    if !tool_calls.is_empty() {
        message.tool_calls = Some(tool_calls.iter().map(tool_call).collect());
    }
    message
}

fn tool_call(call: &ToolCall) -> WireToolCall<'_> {
    // Arguments that did not parse were kept as a JSON string: send the model's raw text back.
    let arguments = match &call.arguments {
        Value::String(raw) => Cow::Borrowed(raw.as_str()),
        other => Cow::Owned(other.to_string()),
    };
    WireToolCall { id: &call.id, kind: "function", function: CallFunction { name: &call.name, arguments } }
}

fn tool_message(result: &ToolResult) -> Message<'_> {
    let content = if result.is_error {
        Cow::Owned(format!("Error: {}", result.content))
    } else {
        Cow::Borrowed(&*result.content)
    };
    Message { tool_call_id: Some(&result.call_id), ..Message::new("tool", Some(Content::Text(content))) }
}

fn tool(tool: &ToolSpec) -> Tool<'_> {
    Tool {
        kind: "function",
        function: ToolFunction { name: &tool.name, description: &tool.description, parameters: &tool.parameters },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(messages: Vec<ProviderMessage>) -> ProviderRequest {
        ProviderRequest { model: "m".into(), system: None, messages, tools: Vec::new(), max_tokens: 7 }
    }

    #[test]
    fn several_texts_join_and_one_text_is_borrowed_as_is() {
        let req = request(vec![
            ProviderMessage::User(vec![ContentPart::text("a"), ContentPart::text("b")]),
            ProviderMessage::Assistant {
                content: vec![ContentPart::text("x"), ContentPart::text("y"), ContentPart::text("z")],
                tool_calls: Vec::new(),
            },
            ProviderMessage::User(vec![ContentPart::text("only")]),
            ProviderMessage::Assistant { content: Vec::new(), tool_calls: Vec::new() },
        ]);
        let mut body = body(&req);
        assert!(matches!(&body.messages[2].content, Some(Content::Text(Cow::Borrowed("only")))));
        body.use_max_completion_tokens();
        let want = json!({
            "model": "m",
            "stream": true,
            "stream_options": {"include_usage": true},
            "max_completion_tokens": 7,
            "messages": [
                {"role": "user", "content": "a\n\nb"},
                {"role": "assistant", "content": "x\n\ny\n\nz"},
                {"role": "user", "content": "only"},
                {"role": "assistant", "content": ""},
            ],
        });
        assert_eq!(serde_json::to_value(&body).unwrap(), want);
    }
}
