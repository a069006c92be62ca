//! Message content as the engine stores it and hands it to providers.
//!
//! These are engine types: they know nothing of ACP's `ContentBlock`. The bridge converts
//! between the two; the store serializes them as JSON inside the `messages` table.

use serde::{Deserialize, Deserializer, Serialize};

/// One piece of a message. A message is an ordered list of parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentPart {
    /// Plain or Markdown text.
    Text { text: String },
    /// Model reasoning ("thinking"); only ever in assistant messages.
    Thought {
        text: String,
        /// Provider-specific signature that must be sent back with the thought (Anthropic).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signature: Option<String>,
    },
    /// An image, base64-encoded.
    Image { mime_type: String, data: String },
    /// A file or other resource whose text the user attached (an @-mention).
    Resource {
        uri: String,
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mime_type: Option<String>,
    },
    /// A reference to a resource the agent may read itself.
    ResourceLink { uri: String, name: String },
}

impl ContentPart {
    /// A text part.
    pub fn text(text: impl Into<String>) -> Self {
        ContentPart::Text { text: text.into() }
    }
}

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    User,
    Assistant,
    /// The result of one tool call, sent back to the model.
    Tool,
}

impl Role {
    /// The spelling used in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }

    /// Parses the store's spelling.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "user" => Some(Role::User),
            "assistant" => Some(Role::Assistant),
            "tool" => Some(Role::Tool),
            _ => None,
        }
    }
}

/// A tool call the model asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The provider's id for this call; tool results refer to it.
    pub id: String,
    /// The tool's name as the model knows it.
    pub name: String,
    /// Arguments as JSON (an object).
    pub arguments: serde_json::Value,
}

/// The result of a tool call, as sent back to the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolResult {
    /// The id of the call this answers.
    pub call_id: String,
    /// What the tool returned (already redacted).
    pub content: String,
    /// True when the tool failed; the model sees the error text.
    #[serde(default)]
    pub is_error: bool,
    /// How the call was shown to the user (its title), for replaying history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The tool's kind, for replaying history. Stored as its lowercase name.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "lenient_kind")]
    pub kind: Option<ToolKind>,
}

/// Reads a stored kind; a name this binary does not know is `Other`, so a history written by
/// another version still loads.
fn lenient_kind<'de, D: Deserializer<'de>>(de: D) -> Result<Option<ToolKind>, D::Error> {
    Ok(Option::<String>::deserialize(de)?.map(|name| ToolKind::parse(&name)))
}

impl ToolResult {
    /// A result with no display metadata.
    pub fn new(call_id: impl Into<String>, content: impl Into<String>, is_error: bool) -> Self {
        ToolResult { call_id: call_id.into(), content: content.into(), is_error, title: None, kind: None }
    }
}

/// Token counts reported by a provider for one model call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Tokens read from the provider's prompt cache (part of `input_tokens` where the provider
    /// counts them there).
    #[serde(default)]
    pub cached_input_tokens: u64,
    /// Reasoning tokens (part of `output_tokens` where the provider counts them there).
    #[serde(default)]
    pub reasoning_tokens: u64,
}

impl Usage {
    /// Input plus output tokens.
    pub fn total(&self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }
}

/// What a tool does, for icons in the editor and for the permission policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolKind {
    Read,
    Edit,
    Delete,
    Move,
    Search,
    Execute,
    Fetch,
    Think,
    Other,
}

impl ToolKind {
    /// The lowercase name, as stored with tool results.
    pub fn as_str(self) -> &'static str {
        match self {
            ToolKind::Read => "read",
            ToolKind::Edit => "edit",
            ToolKind::Delete => "delete",
            ToolKind::Move => "move",
            ToolKind::Search => "search",
            ToolKind::Execute => "execute",
            ToolKind::Fetch => "fetch",
            ToolKind::Think => "think",
            ToolKind::Other => "other",
        }
    }

    /// Parses a stored name; anything unknown is `Other`.
    pub fn parse(name: &str) -> ToolKind {
        match name {
            "read" => ToolKind::Read,
            "edit" => ToolKind::Edit,
            "delete" => ToolKind::Delete,
            "move" => ToolKind::Move,
            "search" => ToolKind::Search,
            "execute" => ToolKind::Execute,
            "fetch" => ToolKind::Fetch,
            "think" => ToolKind::Think,
            _ => ToolKind::Other,
        }
    }

    /// True for kinds that change things and so need permission (unless the mode allows).
    pub fn has_side_effects(self) -> bool {
        matches!(self, ToolKind::Edit | ToolKind::Delete | ToolKind::Move | ToolKind::Execute | ToolKind::Other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_result_kinds_keep_their_stored_names_and_unknown_ones_read_as_other() {
        let result = ToolResult { kind: Some(ToolKind::Execute), ..ToolResult::new("c", "out", false) };
        let stored = serde_json::to_value(&result).unwrap();
        assert_eq!(stored["kind"], "execute");
        assert_eq!(serde_json::from_value::<ToolResult>(stored).unwrap(), result);
        let newer = serde_json::json!({"call_id": "c", "content": "out", "kind": "telepathy"});
        assert_eq!(serde_json::from_value::<ToolResult>(newer).unwrap().kind, Some(ToolKind::Other));
        let none = serde_json::json!({"call_id": "c", "content": "out"});
        assert_eq!(serde_json::from_value::<ToolResult>(none).unwrap().kind, None);
    }
}
