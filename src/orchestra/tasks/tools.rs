//! The tracker's tools for the model: `task_create`, `task_claim`, `task_update`,
//! `task_list`. A call acts as the job of the turn that makes it (`session:<id>` for a chat
//! turn, the worker's or team member's job otherwise), so a claim lapses when that job ends;
//! tasks created in a project's session belong to that project.
//!
//! They change only the tracker, never files or the machine, so they are `think` tools that
//! need no permission, like `propose_plan`.

use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::{Claimant, NewTask, Task, TaskChange, TaskFilter, TaskStatus};
use crate::engine::provider::ToolSpec;
use crate::engine::tools::{Preview, Tool, ToolContext, ToolKind, ToolOutput};
use crate::orchestra::Orchestra;

/// Most tasks `task_list` shows the model at once.
const LIST_FOR_MODEL: usize = 50;

/// Which of the four tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskOp {
    Create,
    Claim,
    Update,
    List,
}

impl TaskOp {
    pub const ALL: [TaskOp; 4] = [TaskOp::Create, TaskOp::Claim, TaskOp::Update, TaskOp::List];
}

/// One of the tracker's tools.
pub struct TaskTool {
    pub orchestra: Orchestra,
    pub op: TaskOp,
}

/// The four tools, for the extension.
pub fn all(orchestra: &Orchestra) -> Vec<std::sync::Arc<dyn Tool>> {
    TaskOp::ALL
        .into_iter()
        .map(|op| std::sync::Arc::new(TaskTool { orchestra: orchestra.clone(), op }) as std::sync::Arc<dyn Tool>)
        .collect()
}

impl Tool for TaskTool {
    fn spec(&self) -> ToolSpec {
        let id = json!({"type": "string", "description": "The task's id, e.g. t4."});
        let (name, description, parameters) = match self.op {
            TaskOp::Create => (
                "task_create",
                "Add a task to the shared task tracker, for you or other agents to claim. Tasks made in a \
                 project's session belong to that project.",
                json!({
                    "type": "object",
                    "properties": {
                        "title": {"type": "string", "description": "What is to be done, in a few words."},
                        "description": {"type": "string", "description": "Everything someone needs to do it."}
                    },
                    "required": ["title"],
                    "additionalProperties": false
                }),
            ),
            TaskOp::Claim => (
                "task_claim",
                "Claim a task before working on it, so no other agent does the same work. Fails if someone else \
                 holds it; then pick another. Your claim lasts while your turn (or your job) runs.",
                json!({"type": "object", "properties": {"id": id}, "required": ["id"], "additionalProperties": false}),
            ),
            TaskOp::Update => (
                "task_update",
                "Record progress on a task: a new status (open releases it; done, failed, cancelled finish it) \
                 and/or a note for whoever reads it next.",
                json!({
                    "type": "object",
                    "properties": {
                        "id": id,
                        "status": {"type": "string", "enum": TaskStatus::ALL.map(TaskStatus::as_str)},
                        "notes": {"type": "string", "description": "A note to add (what you did, what is left)."}
                    },
                    "required": ["id"],
                    "additionalProperties": false
                }),
            ),
            TaskOp::List => (
                "task_list",
                "List tasks of the shared tracker, with their status and who holds them.",
                json!({
                    "type": "object",
                    "properties": {
                        "status": {"type": "string", "enum": TaskStatus::ALL.map(TaskStatus::as_str)},
                        "project": {"type": "string"},
                        "claimed": {"type": "boolean", "description": "true: only claimed tasks; false: only unclaimed."}
                    },
                    "additionalProperties": false
                }),
            ),
        };
        ToolSpec { name: name.into(), description: description.into(), parameters }
    }

    fn kind(&self) -> ToolKind {
        ToolKind::Think
    }

    fn preview<'a>(&'a self, args: &'a Value, _: &'a ToolContext) -> BoxFuture<'a, Preview> {
        let text = |k: &str| args.get(k).and_then(Value::as_str).unwrap_or("").lines().next().unwrap_or("").to_string();
        let title = match self.op {
            TaskOp::Create => format!("New task: {}", text("title")),
            TaskOp::Claim => format!("Claim task {}", text("id")),
            TaskOp::Update => format!("Update task {}", text("id")),
            TaskOp::List => "List tasks".to_string(),
        };
        Box::pin(async move { Preview { title, locations: vec![], display: vec![] } })
    }

    fn run<'a>(&'a self, args: Value, cx: &'a ToolContext) -> BoxFuture<'a, ToolOutput> {
        Box::pin(async move {
            match self.call(&args, cx).await {
                Ok(text) => ToolOutput::text(text),
                Err(e) => ToolOutput::error(e),
            }
        })
    }
}

impl TaskTool {
    async fn call(&self, args: &Value, cx: &ToolContext) -> Result<String, String> {
        let text = |k: &str| args.get(k).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty());
        let store = self.orchestra.tasks();
        let session = cx.turn.session_id();
        let holder = self.orchestra.turn_holder(session).await;
        match self.op {
            TaskOp::Create => {
                let title = text("title").ok_or("task_create needs a `title`")?;
                let project = self.orchestra.project_of_session(session).await;
                let new = NewTask {
                    title: title.into(),
                    description: text("description").unwrap_or("").into(),
                    project,
                    created_by: Some(holder),
                };
                let task = store.create(new).await.map_err(|e| e.to_string())?;
                Ok(format!("Created task {}: {}. Claim it with task_claim before working on it.", task.id, task.title))
            }
            TaskOp::Claim => {
                let id = text("id").ok_or("task_claim needs the task's `id`")?;
                let project = self.orchestra.project_of_session(session).await;
                let claimed = store.claim(id, Claimant { holder, project }).await.map_err(|e| e.to_string())?;
                let released =
                    claimed.released.map(|old| format!(" (released a lapsed claim of {old})")).unwrap_or_default();
                Ok(format!("You hold task {}{released}.\n{}", claimed.task.id, describe(&claimed.task)))
            }
            TaskOp::Update => {
                let id = text("id").ok_or("task_update needs the task's `id`")?;
                let status = text("status").map(TaskStatus::parse).transpose().map_err(|e| e.to_string())?;
                let change = TaskChange { status, note: text("notes").map(String::from), by: Some(holder) };
                let task = store.update(id, change).await.map_err(|e| e.to_string())?;
                Ok(format!("Updated task {}.\n{}", task.id, describe(&task)))
            }
            TaskOp::List => {
                let status = text("status").map(TaskStatus::parse).transpose().map_err(|e| e.to_string())?;
                let filter = TaskFilter {
                    status,
                    project: text("project").map(String::from),
                    claimed: args.get("claimed").and_then(Value::as_bool),
                    ..TaskFilter::default()
                };
                let tasks = store.list(filter).await.map_err(|e| e.to_string())?;
                if tasks.is_empty() {
                    return Ok("No tasks match.".into());
                }
                let mut out: Vec<String> = tasks.iter().take(LIST_FOR_MODEL).map(one_line).collect();
                if tasks.len() > LIST_FOR_MODEL {
                    out.push(format!(
                        "… and {} more; narrow the list with status or project.",
                        tasks.len() - LIST_FOR_MODEL
                    ));
                }
                Ok(out.join("\n"))
            }
        }
    }
}

/// A task on one line: id, status, holder, project, step, title.
pub fn one_line(task: &Task) -> String {
    let mut line = format!("{} [{}]", task.id, task.status);
    if let Some(holder) = &task.claimed_by {
        line.push_str(&format!(" claimed by {holder}"));
    }
    if let Some(project) = &task.project {
        line.push_str(&format!(" project {project}"));
    }
    if let Some(step) = &task.step {
        line.push_str(&format!(" plan {} step {}", step.plan_id, step.step_id));
    }
    line.push_str(&format!(": {}", task.title));
    line
}

/// A task with its description and notes, for the model.
fn describe(task: &Task) -> String {
    let mut out = one_line(task);
    if !task.description.is_empty() {
        out.push_str(&format!("\nDescription: {}", task.description));
    }
    if !task.notes.is_empty() {
        out.push_str(&format!("\nNotes:\n{}", task.notes));
    }
    out
}
