//! `agent_spawn`: the model starts a named agent (`agents.rs`) on a task: a child session with
//! the agent's role prompt, tools, model and cap, its own context, one turn on the task. Its
//! progress streams into this tool call, its permission questions go to a person, it is a job
//! (`sub_agent:<session>`), and its final answer is the tool result.

use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::Orchestra;
use super::agents;
use super::child_turn::ChildTurn;
use super::hooks::HookEvent;
use super::jobs::{JobKind, JobSpec};
use super::plans::StepRun;
use crate::engine::ChildSpec;
use crate::engine::provider::ToolSpec;
use crate::engine::tools::{Preview, Tool, ToolContext, ToolKind, ToolOutput};

pub(super) struct AgentSpawnTool {
    pub orchestra: Orchestra,
}

impl Tool for AgentSpawnTool {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "agent_spawn".into(),
            description: "Start a named agent (defined in .ratchet/agents, .claude/agents or ~/.ratchet/agents) on a \
                          task. It works in a context of its own with its own tools and returns its final answer \
                          as the result. Give it everything it needs in `task`."
                .into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "agent": {"type": "string", "description": "The agent's name (`ratchet agents list`)."},
                    "task": {"type": "string", "description": "What the agent should do, self-contained."}
                },
                "required": ["agent", "task"],
                "additionalProperties": false
            }),
        }
    }

    fn kind(&self) -> ToolKind {
        // Starting it changes nothing; the agent's own calls are checked one by one.
        ToolKind::Think
    }

    fn preview<'a>(&'a self, args: &'a Value, _: &'a ToolContext) -> BoxFuture<'a, Preview> {
        let agent = args.get("agent").and_then(Value::as_str).unwrap_or("agent");
        let task = args.get("task").and_then(Value::as_str).unwrap_or("");
        let title = format!("Agent {agent}: {}", task.lines().next().unwrap_or(""));
        Box::pin(async move { Preview { title, locations: vec![], display: vec![] } })
    }

    fn run<'a>(&'a self, args: Value, cx: &'a ToolContext) -> BoxFuture<'a, ToolOutput> {
        Box::pin(async move {
            match self.spawn(&args, cx).await {
                Ok(text) => ToolOutput::text(text),
                Err(e) => ToolOutput::error(e),
            }
        })
    }
}

impl AgentSpawnTool {
    async fn spawn(&self, args: &Value, cx: &ToolContext) -> Result<String, String> {
        let name = args.get("agent").and_then(Value::as_str).map(str::trim).unwrap_or("");
        let task = args.get("task").and_then(Value::as_str).map(str::trim).unwrap_or("");
        if name.is_empty() || task.is_empty() {
            return Err("agent_spawn needs `agent` (a name) and `task`".into());
        }
        let o = &self.orchestra.inner;
        let catalog = agents::load(&cx.cwd, &o.home);
        let Some(def) = catalog.get(name) else {
            let names: Vec<&str> = catalog.agents.iter().map(|a| a.name.as_str()).collect();
            return Err(if names.is_empty() {
                format!(
                    "there is no agent {name:?}: no agent definitions were found (.ratchet/agents/*.yaml, .claude/agents/*.md)"
                )
            } else {
                format!("there is no agent {name:?}; the agents are: {}", names.join(", "))
            });
        };
        let parent = cx.turn.session_id().to_string();
        let spec = ChildSpec {
            title: Some(format!("agent {}: {}", def.name, task.lines().next().unwrap_or(""))),
            provider: def.provider.clone(),
            model: def.model.clone(),
            agent: Some(def.profile()),
        };
        let child = o.engine.create_child_session(parent.clone(), spec).await.map_err(|e| e.to_string())?;
        let job = o
            .jobs
            .register(JobSpec {
                kind: JobKind::SubAgent,
                key: child.id.clone(),
                model: Some(format!("{}/{}", child.provider, child.model)),
                session_id: Some(child.id.clone()),
                detail: Some(format!("agent {}", def.name)),
                pausable: true,
            })
            .await
            .map_err(|e| e.to_string())?;
        let call_id = cx.call_id.clone().unwrap_or_else(|| format!("agent-{}", child.id));
        o.hooks.fire(HookEvent::agent_spawn(Some(&parent), &cx.cwd, &def.name, &child.id, task, None));
        let driver = ChildTurn {
            orchestra: &self.orchestra,
            turn: &cx.turn,
            cancel: &cx.cancel,
            cwd: &cx.cwd,
            parent_session: &parent,
            call_id: &call_id,
            label: format!("agent {}", def.name),
        };
        let mut run = StepRun::default();
        let result = driver.drive(&child.id, task.to_string(), &mut run, &job).await;
        drop(job);
        if let Err(e) = o.engine.close_session(child.id.clone()).await {
            tracing::debug!(error = %e, "cannot close a sub-agent's session");
        }
        let said = run.summary.unwrap_or_default();
        let ok = result.is_ok();
        o.hooks.fire(HookEvent::agent_complete(Some(&parent), &cx.cwd, &def.name, &child.id, None, ok, &said));
        match result {
            Ok(()) => Ok(format!(
                "Agent {} finished ({}/{}, {} in / {} out tokens). Its answer:\n{said}",
                def.name, child.provider, child.model, run.input_tokens, run.output_tokens
            )),
            Err(why) => Err(format!("agent {} failed: {why}. What it said before: {said}", def.name)),
        }
    }
}
