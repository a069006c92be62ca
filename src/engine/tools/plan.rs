//! `update_plan`: the model publishes its step-by-step plan; the editor shows it.
//!
//! Each call replaces the whole plan. Nothing runs: the tool validates the entries and hands
//! them back in [`ToolOutput::plan`] for the front end to send on.

use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};

use super::common::{finish, parse_args};
use super::{PlanEntry, PlanPriority, PlanStatus, Preview, Tool, ToolContext, ToolKind, ToolOutput};
use crate::engine::provider::ToolSpec;

/// A plan longer than this is not a plan.
const MAX_ENTRIES: usize = 100;

/// Publishes the plan.
pub struct UpdatePlanTool;

#[derive(Deserialize)]
struct Args {
    entries: Vec<Entry>,
}

/// An entry as the model sends it; priority and status may be left out.
#[derive(Deserialize)]
struct Entry {
    content: String,
    priority: Option<String>,
    status: Option<String>,
}

impl Tool for UpdatePlanTool {
    fn spec(&self) -> ToolSpec {
        let priorities = PlanPriority::ALL.map(PlanPriority::as_str);
        let statuses = PlanStatus::ALL.map(PlanStatus::as_str);
        ToolSpec {
            name: "update_plan".into(),
            description: "Publish your plan for the task as a list of steps, shown to the user. Send the whole \
                          plan each time, with each step's status; keep one step in_progress while you work on it."
                .into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "entries": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "content": {"type": "string", "description": "What the step does."},
                                "priority": {"type": "string", "enum": priorities},
                                "status": {"type": "string", "enum": statuses}
                            },
                            "required": ["content", "priority", "status"],
                            "additionalProperties": false
                        }
                    }
                },
                "required": ["entries"],
                "additionalProperties": false
            }),
        }
    }

    fn kind(&self) -> ToolKind {
        ToolKind::Think
    }

    fn preview<'a>(&'a self, _args: &'a Value, _cx: &'a ToolContext) -> BoxFuture<'a, Preview> {
        Box::pin(async { Preview { title: "Update plan".into(), locations: vec![], display: vec![] } })
    }

    fn run<'a>(&'a self, args: Value, cx: &'a ToolContext) -> BoxFuture<'a, ToolOutput> {
        Box::pin(async move { finish(cx, update(&args)) })
    }
}

fn update(args: &Value) -> Result<ToolOutput, String> {
    let a: Args = parse_args("update_plan", args)?;
    if a.entries.len() > MAX_ENTRIES {
        return Err(format!("the plan has {} entries; keep it to at most {MAX_ENTRIES} steps", a.entries.len()));
    }
    let mut entries = Vec::with_capacity(a.entries.len());
    for (i, e) in a.entries.into_iter().enumerate() {
        let n = i + 1;
        let content = e.content.trim().to_string();
        if content.is_empty() {
            return Err(format!("entry {n}: content is empty; describe the step"));
        }
        let priority =
            check(n, "priority", e.priority.as_deref().unwrap_or("medium"), PlanPriority::ALL, PlanPriority::as_str)?;
        let status = check(n, "status", e.status.as_deref().unwrap_or("pending"), PlanStatus::ALL, PlanStatus::as_str)?;
        entries.push(PlanEntry { content, priority, status });
    }
    Ok(ToolOutput {
        content: "plan updated".into(),
        is_error: false,
        display: vec![],
        locations: vec![],
        plan: Some(entries),
    })
}

/// Accepts `value` (any case, `-` or space for `_`) if it names one of `allowed`; otherwise
/// the error lists the allowed names, so the model can retry.
fn check<T: Copy, const N: usize>(
    n: usize,
    field: &str,
    value: &str,
    allowed: [T; N],
    name: fn(T) -> &'static str,
) -> Result<T, String> {
    let norm = value.trim().to_ascii_lowercase().replace(['-', ' '], "_");
    if let Some(found) = allowed.into_iter().find(|v| name(*v) == norm) {
        return Ok(found);
    }
    let names = allowed.map(name);
    Err(format!("entry {n}: {field} must be one of {} (got \"{value}\")", names.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::tools::testutil::{context, run};

    fn entry(content: &str, priority: PlanPriority, status: PlanStatus) -> PlanEntry {
        PlanEntry { content: content.into(), priority, status }
    }

    #[tokio::test]
    async fn publishes_valid_entries() {
        let dir = tempfile::tempdir().unwrap();
        let cx = context(dir.path());
        let out = run(
            &UpdatePlanTool,
            &cx,
            json!({"entries": [
                {"content": "Read the code", "priority": "high", "status": "completed"},
                {"content": " Fix the bug ", "priority": "Medium", "status": "in-progress"},
                {"content": "Run tests"}
            ]}),
        )
        .await;
        assert_eq!(out.content, "plan updated");
        assert!(!out.is_error);
        assert_eq!(
            out.plan,
            Some(vec![
                entry("Read the code", PlanPriority::High, PlanStatus::Completed),
                entry("Fix the bug", PlanPriority::Medium, PlanStatus::InProgress),
                entry("Run tests", PlanPriority::Medium, PlanStatus::Pending),
            ])
        );
        let out = run(&UpdatePlanTool, &cx, json!({"entries": []})).await;
        assert_eq!(out.plan, Some(vec![]));
        assert_eq!(UpdatePlanTool.preview(&json!({}), &cx).await.title, "Update plan");
    }

    #[tokio::test]
    async fn rejects_invalid_entries() {
        let dir = tempfile::tempdir().unwrap();
        let cx = context(dir.path());
        for (args, want) in [
            (json!({}), "invalid arguments for update_plan: missing field `entries`"),
            (
                json!({"entries": [{"content": "a", "priority": "urgent", "status": "pending"}]}),
                "entry 1: priority must be one of high, medium, low (got \"urgent\")",
            ),
            (
                json!({"entries": [{"content": "a"}, {"content": "b", "status": "done"}]}),
                "entry 2: status must be one of pending, in_progress, completed (got \"done\")",
            ),
            (json!({"entries": [{"content": "  "}]}), "entry 1: content is empty; describe the step"),
            (json!({"entries": [{"priority": "high"}]}), "invalid arguments for update_plan: missing field `content`"),
        ] {
            let out = run(&UpdatePlanTool, &cx, args).await;
            assert_eq!((out.is_error, out.content.as_str(), out.plan.is_none()), (true, want, true));
        }
    }
}
