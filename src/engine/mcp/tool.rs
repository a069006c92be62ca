//! The [`Tool`] adapter for one MCP tool: its model-facing name (`mcp__<server>__<tool>`), the
//! call (cancellable), and turning the server's result into a [`ToolOutput`].
//!
//! Names are limited to `[A-Za-z0-9_-]` and 64 characters because that is what the model APIs
//! accept; when two tools end up with the same name, the later one gets a `_2`, `_3`, ... suffix.

use std::collections::HashSet;
use std::sync::Arc;

use futures::future::BoxFuture;
use rmcp::ServiceError;
use rmcp::model::{CallToolRequestParams, CallToolResult, ContentBlock, ResourceContents};
use serde_json::Value;

use super::connect::Server;
use crate::engine::provider::ToolSpec;
use crate::engine::tools::{Preview, Tool, ToolContext, ToolKind, ToolOutput};

/// Longest tool name the model APIs accept.
pub(super) const MAX_NAME_LEN: usize = 64;

/// Text beyond this many bytes is cut (the model's context is precious).
const MAX_OUTPUT_BYTES: usize = 100_000;

/// Replaces every character outside `[A-Za-z0-9_-]` with `_`; an empty name becomes `server`.
pub(super) fn sanitize(name: &str) -> String {
    if name.is_empty() {
        return "server".to_string();
    }
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).collect()
}

/// `mcp__<server>__<tool>`, sanitized and cut to [`MAX_NAME_LEN`].
pub(super) fn tool_name(server: &str, tool: &str) -> String {
    let mut name = format!("mcp__{}__{}", sanitize(server), sanitize(tool));
    name.truncate(MAX_NAME_LEN); // ASCII only, so any index is a char boundary
    name
}

/// `name`, or `name` with the smallest `_N` suffix not in `taken`; records the result.
pub(super) fn unique(name: String, taken: &mut HashSet<String>) -> String {
    if taken.insert(name.clone()) {
        return name;
    }
    for n in 2.. {
        let suffix = format!("_{n}");
        let mut candidate = name.clone();
        candidate.truncate(MAX_NAME_LEN - suffix.len());
        candidate.push_str(&suffix);
        if taken.insert(candidate.clone()) {
            return candidate;
        }
    }
    unreachable!("the suffixes are unbounded")
}

/// Adapters for every tool a server listed, with names unique across `taken`.
pub(super) fn adapters(server: &Arc<Server>, taken: &mut HashSet<String>) -> Vec<Arc<dyn Tool>> {
    server
        .tools
        .iter()
        .map(|t| {
            let name = unique(tool_name(&server.name, &t.name), taken);
            let description = t
                .description
                .as_deref()
                .filter(|d| !d.trim().is_empty())
                .map(str::to_string)
                .or_else(|| t.title.clone())
                .unwrap_or_else(|| format!("Tool `{}` of the MCP server \"{}\".", t.name, server.name));
            let read_only = t.annotations.as_ref().and_then(|a| a.read_only_hint) == Some(true);
            Arc::new(McpTool {
                server: server.clone(),
                tool: t.name.to_string(),
                spec: ToolSpec { name, description, parameters: Value::Object((*t.input_schema).clone()) },
                kind: if read_only { ToolKind::Read } else { ToolKind::Other },
            }) as Arc<dyn Tool>
        })
        .collect()
}

/// One tool of one MCP server.
struct McpTool {
    server: Arc<Server>,
    /// The tool's own name, as the server knows it.
    tool: String,
    spec: ToolSpec,
    kind: ToolKind,
}

impl Tool for McpTool {
    fn spec(&self) -> ToolSpec {
        self.spec.clone()
    }

    fn kind(&self) -> ToolKind {
        self.kind
    }

    fn preview<'a>(&'a self, _args: &'a Value, _cx: &'a ToolContext) -> BoxFuture<'a, Preview> {
        let title = format!("{}: {}", self.server.name, self.tool);
        Box::pin(async move { Preview { title, locations: vec![], display: vec![] } })
    }

    fn run<'a>(&'a self, args: Value, cx: &'a ToolContext) -> BoxFuture<'a, ToolOutput> {
        Box::pin(async move {
            let output = self.call(args, cx).await;
            // Rebuilt (not patched) so the editor's copy of the text is redacted too.
            let content = cx.redactor.redact(&self.server.secrets.redact(&output.content));
            if output.is_error { ToolOutput::error(content) } else { ToolOutput::text(content) }
        })
    }
}

impl McpTool {
    async fn call(&self, args: Value, cx: &ToolContext) -> ToolOutput {
        let (server, tool) = (&self.server.name, &self.tool);
        let mut params = CallToolRequestParams::new(tool.clone());
        match args {
            Value::Object(map) => params = params.with_arguments(map),
            Value::Null => {}
            other => {
                return ToolOutput::error(format!(
                    "the arguments of {} must be a JSON object, not {other}",
                    self.spec.name
                ));
            }
        }
        if self.server.is_closed() {
            return ToolOutput::error(format!("MCP server \"{server}\" was shut down with its session"));
        }
        tokio::select! {
            // Dropping the call on cancel sends `notifications/cancelled` to the server.
            _ = cx.cancel.cancelled() => ToolOutput::error("cancelled"),
            result = self.server.peer.call_tool(params) => match result {
                Ok(result) => convert(&result),
                Err(ServiceError::TransportClosed) => ToolOutput::error(format!(
                    "MCP server \"{server}\" is no longer running (it exited or its connection closed); \
                     start a new session to restart it"
                )),
                Err(ServiceError::McpError(e)) => {
                    ToolOutput::error(format!("MCP server \"{server}\" rejected the call to {tool}: {}", e.message))
                }
                Err(e) => ToolOutput::error(format!("calling {tool} on MCP server \"{server}\" failed: {e}")),
            },
        }
    }
}

/// The result as model text: text items verbatim, embedded text resources with their URI,
/// anything binary described in one line. The result's `isError` becomes `is_error`.
pub(super) fn convert(result: &CallToolResult) -> ToolOutput {
    let mut parts: Vec<String> = result.content.iter().map(describe).collect();
    if parts.is_empty()
        && let Some(structured) = &result.structured_content
    {
        parts.push(structured.to_string());
    }
    let mut text = parts.join("\n");
    if text.is_empty() {
        text = "(no output)".to_string();
    }
    if text.len() > MAX_OUTPUT_BYTES {
        let total = text.len();
        let mut cut = MAX_OUTPUT_BYTES;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str(&format!("\n[output truncated: {total} bytes, showing the first {cut}]"));
    }
    let output = ToolOutput::text(text);
    if result.is_error == Some(true) { ToolOutput { is_error: true, ..output } } else { output }
}

fn describe(block: &ContentBlock) -> String {
    match block {
        ContentBlock::Text(t) => t.text.clone(),
        ContentBlock::Image(i) => format!("[image: {}, {} bytes]", i.mime_type, decoded_len(&i.data)),
        ContentBlock::Audio(a) => format!("[audio: {}, {} bytes]", a.mime_type, decoded_len(&a.data)),
        ContentBlock::ResourceLink(r) => format!("[resource link: {} <{}>]", r.name, r.uri),
        ContentBlock::Resource(r) => match &r.resource {
            ResourceContents::TextResourceContents { uri, text, .. } => format!("[resource <{uri}>]\n{text}"),
            ResourceContents::BlobResourceContents { uri, mime_type, blob, .. } => {
                format!("[resource <{uri}>: {}, {} bytes]", mime_type.as_deref().unwrap_or("binary"), decoded_len(blob))
            }
            _ => "[resource of an unknown kind]".to_string(),
        },
        _ => "[content of an unknown kind]".to_string(),
    }
}

/// Size of base64 data once decoded (approximate for malformed input; never panics).
fn decoded_len(b64: &str) -> usize {
    let padding = b64.bytes().rev().take_while(|&b| b == b'=').count().min(2);
    (b64.len() / 4 * 3).saturating_sub(padding)
}

#[cfg(test)]
mod tests {
    use rmcp::model::{ImageContent, Resource};

    use super::*;

    #[test]
    fn names_are_prefixed_sanitized_and_bounded() {
        assert_eq!(tool_name("everything", "echo"), "mcp__everything__echo");
        assert_eq!(tool_name("my server", "read.file/v2"), "mcp__my_server__read_file_v2");
        assert_eq!(tool_name("café", "ünï"), "mcp__caf____n_");
        assert_eq!(tool_name("", "t"), "mcp__server__t");
        let long = tool_name("s", &"x".repeat(100));
        assert_eq!(long.len(), MAX_NAME_LEN);
        assert!(long.starts_with("mcp__s__xxx"));
        assert!(tool_name("a", "b").chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'));
    }

    #[test]
    fn colliding_names_get_suffixes_within_the_limit() {
        let mut taken = HashSet::new();
        assert_eq!(unique(tool_name("s", "a.b"), &mut taken), "mcp__s__a_b");
        assert_eq!(unique(tool_name("s", "a/b"), &mut taken), "mcp__s__a_b_2");
        assert_eq!(unique(tool_name("s", "a b"), &mut taken), "mcp__s__a_b_3");
        let long = tool_name("s", &"y".repeat(80));
        assert_eq!(unique(long.clone(), &mut taken), long);
        let second = unique(long.clone(), &mut taken);
        assert_eq!(second.len(), MAX_NAME_LEN);
        assert!(second.ends_with("_2"));
    }

    fn result(content: Vec<ContentBlock>, is_error: Option<bool>) -> CallToolResult {
        let mut r = CallToolResult::default();
        r.content = content;
        r.is_error = is_error;
        r
    }

    #[test]
    fn results_become_text_with_binary_described() {
        let out = convert(&result(
            vec![
                ContentBlock::text("hello"),
                ContentBlock::Image(ImageContent::new("aGVsbG8=", "image/png")),
                ContentBlock::embedded_text("file:///a.txt", "inside"),
                ContentBlock::resource(ResourceContents::blob("AAAA", "file:///b.bin")),
                ContentBlock::resource_link(Resource::new("file:///c", "c")),
            ],
            None,
        ));
        assert!(!out.is_error);
        assert_eq!(
            out.content,
            "hello\n[image: image/png, 5 bytes]\n[resource <file:///a.txt>]\ninside\n\
             [resource <file:///b.bin>: binary, 3 bytes]\n[resource link: c <file:///c>]"
        );
    }

    #[test]
    fn error_flag_empty_and_structured_results() {
        let err = convert(&result(vec![ContentBlock::text("boom")], Some(true)));
        assert!(err.is_error);
        assert_eq!(err.content, "boom");
        assert_eq!(convert(&result(vec![], None)).content, "(no output)");
        let mut structured = result(vec![], None);
        structured.structured_content = Some(serde_json::json!({"sum": 3}));
        assert_eq!(convert(&structured).content, r#"{"sum":3}"#);
    }

    #[test]
    fn huge_output_is_cut_on_a_char_boundary() {
        let out = convert(&result(vec![ContentBlock::text("é".repeat(MAX_OUTPUT_BYTES))], None));
        assert!(out.content.len() < MAX_OUTPUT_BYTES + 100);
        assert!(out.content.ends_with("]") && out.content.contains("output truncated"));
    }

    #[test]
    fn decoded_len_never_panics() {
        assert_eq!(decoded_len(""), 0);
        assert_eq!(decoded_len("="), 0);
        assert_eq!(decoded_len("===="), 1);
        assert_eq!(decoded_len("AAAA"), 3);
    }
}
