//! Reading tool calls out of `session/update` notifications: the `tool_call` that creates a
//! call and the `tool_call_update`s that follow, grouped by `toolCallId`.

use serde_json::Value;

use super::update_kind;

/// One tool call as the editor saw it.
#[derive(Debug, Clone)]
pub struct ToolCallView {
    pub id: String,
    /// The `update` object of the `tool_call` notification (`None` if only updates arrived).
    pub start: Option<Value>,
    /// The `update` objects of its `tool_call_update`s, in order.
    pub updates: Vec<Value>,
}

impl ToolCallView {
    /// The `update` objects in order: the `tool_call`, then its updates.
    pub fn all(&self) -> Vec<&Value> {
        self.start.iter().chain(self.updates.iter()).collect()
    }

    /// The statuses reported, in order (start first; updates without a status are skipped).
    /// A `tool_call` without `status` counts as `pending`, the schema's default.
    pub fn statuses(&self) -> Vec<String> {
        let start = self.start.as_ref().map(|s| s["status"].as_str().unwrap_or("pending").to_owned());
        start.into_iter().chain(self.updates.iter().filter_map(|u| u["status"].as_str().map(str::to_owned))).collect()
    }

    /// The last status reported.
    pub fn final_status(&self) -> String {
        self.statuses().pop().unwrap_or_default()
    }

    /// A field of the `tool_call` notification.
    pub fn start_field(&self, name: &str) -> Value {
        self.start.as_ref().and_then(|s| s.get(name).cloned()).unwrap_or(Value::Null)
    }

    pub fn title(&self) -> String {
        self.start_field("title").as_str().unwrap_or("").to_owned()
    }

    pub fn kind(&self) -> String {
        self.start_field("kind").as_str().unwrap_or("").to_owned()
    }

    /// The latest value of a field (`content`, `locations` replace earlier values).
    pub fn latest(&self, name: &str) -> Value {
        self.all().iter().rev().find_map(|u| u.get(name).filter(|v| !v.is_null()).cloned()).unwrap_or(Value::Null)
    }

    /// The current content items.
    pub fn content(&self) -> Vec<Value> {
        self.latest("content").as_array().cloned().unwrap_or_default()
    }

    /// The text of the current `{type: "content", content: {type: "text"}}` items, joined.
    pub fn text(&self) -> String {
        self.content()
            .iter()
            .filter(|c| c["type"] == "content" && c["content"]["type"] == "text")
            .filter_map(|c| c["content"]["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The current content items of one `type` (`diff`, `terminal`, `content`).
    pub fn content_of_type(&self, ty: &str) -> Vec<Value> {
        self.content().into_iter().filter(|c| c["type"] == ty).collect()
    }

    /// `rawOutput.output` of the latest update that has one.
    pub fn raw_output_text(&self) -> String {
        self.latest("rawOutput")["output"].as_str().unwrap_or("").to_owned()
    }

    /// Everything the editor got for this call, as JSON text (for "mentions X" checks).
    pub fn dump(&self) -> String {
        self.all().iter().map(|v| v.to_string()).collect::<Vec<_>>().join("\n")
    }
}

/// The tool calls in `updates` (session/update params), in order of first appearance.
pub fn tool_calls(updates: &[Value]) -> Vec<ToolCallView> {
    let mut out: Vec<ToolCallView> = Vec::new();
    for params in updates {
        let kind = update_kind(params);
        if kind != "tool_call" && kind != "tool_call_update" {
            continue;
        }
        let u = &params["update"];
        let id = u["toolCallId"].as_str().unwrap_or("").to_owned();
        let idx = match out.iter().position(|c| c.id == id) {
            Some(i) => i,
            None => {
                out.push(ToolCallView { id: id.clone(), start: None, updates: Vec::new() });
                out.len() - 1
            }
        };
        if kind == "tool_call" && out[idx].start.is_none() {
            out[idx].start = Some(u.clone());
        } else {
            out[idx].updates.push(u.clone());
        }
    }
    out
}

/// The tool-call notifications in order as `(sessionUpdate, toolCallId, status)`; the
/// status is `""` when an update carries none, and `pending` (the schema's default) when a
/// `tool_call` carries none.
pub fn tool_events(updates: &[Value]) -> Vec<(String, String, String)> {
    updates
        .iter()
        .filter(|p| matches!(update_kind(p), "tool_call" | "tool_call_update"))
        .map(|p| {
            let u = &p["update"];
            (
                update_kind(p).to_owned(),
                u["toolCallId"].as_str().unwrap_or("").to_owned(),
                u["status"].as_str().unwrap_or(if update_kind(p) == "tool_call" { "pending" } else { "" }).to_owned(),
            )
        })
        .collect()
}
