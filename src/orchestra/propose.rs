//! `propose_plan`: the model proposes a plan; a person approves it (all of it, or with steps
//! skipped) or rejects it with feedback; an approved plan is carried out by the fleet while
//! this call stays open, and the model gets a summary per step. A rejection's feedback is the
//! result, so the model can propose a revision (the next revision number).
//!
//! Nothing runs before approval, and approving never changes the session's mode: workers
//! still ask before every write or command the mode does not allow.

use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::Orchestra;
use super::ask::{Outcome, ask_person};
use super::fleet;
use super::hooks::{EventData, HookEvent};
use super::plan::{Plan, Proposal};
use super::plans::StoredPlan;
use super::questions::{Answer, NewQuestion, QuestionKind};
use crate::engine::provider::ToolSpec;
use crate::engine::tools::{Preview, Tool, ToolContext, ToolKind, ToolOutput};
use crate::engine::{ChatEvent, QuestionAnswer, QuestionForm, StepChoice, ToolCallStatus};

pub(super) struct ProposePlanTool {
    pub orchestra: Orchestra,
}

impl Tool for ProposePlanTool {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "propose_plan".into(),
            description: "Propose a plan of independent steps for the user to approve. Once approved, a fleet of \
                          worker agents carries out the steps in parallel (each worker sees the goal and its own \
                          step only, and has the same tools as you); this call returns when they are done, with a \
                          summary per step. If the user rejects the plan, the result is their feedback: propose a \
                          revised plan. Use it for work that splits into steps; do small tasks yourself."
                .into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "goal": {"type": "string", "description": "What the whole plan achieves."},
                    "steps": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "properties": {
                                "id": {"type": "string", "description": "Short unique id, e.g. s1."},
                                "description": {"type": "string", "description": "Everything a worker needs to do this step on its own."},
                                "complexity": {"type": "string", "enum": ["simple", "complex", "review"]},
                                "files": {"type": "array", "items": {"type": "string"}},
                                "depends_on": {"type": "array", "items": {"type": "string"}, "description": "Ids of steps that must finish first."},
                                "agent": {"type": "string", "description": "Optional: a named agent (see agent_spawn) whose role, tools and model the step's worker takes."}
                            },
                            "required": ["id", "description"],
                            "additionalProperties": false
                        }
                    }
                },
                "required": ["goal", "steps"],
                "additionalProperties": false
            }),
        }
    }

    fn kind(&self) -> ToolKind {
        // Proposing changes nothing; the workers' own tool calls are checked one by one.
        ToolKind::Think
    }

    fn preview<'a>(&'a self, args: &'a Value, _: &'a ToolContext) -> BoxFuture<'a, Preview> {
        let goal = args.get("goal").and_then(Value::as_str).unwrap_or("a plan");
        let n = args.get("steps").and_then(Value::as_array).map_or(0, Vec::len);
        let title = format!("Plan: {} ({n} steps)", goal.lines().next().unwrap_or(goal));
        Box::pin(async move { Preview { title, locations: vec![], display: vec![] } })
    }

    fn run<'a>(&'a self, args: Value, cx: &'a ToolContext) -> BoxFuture<'a, ToolOutput> {
        Box::pin(async move {
            match self.propose(args, cx).await {
                Ok(out) => out,
                Err(message) => ToolOutput::error(message),
            }
        })
    }
}

impl ProposePlanTool {
    async fn propose(&self, args: Value, cx: &ToolContext) -> Result<ToolOutput, String> {
        let proposal: Proposal =
            serde_json::from_value(args).map_err(|e| format!("invalid propose_plan arguments: {e}"))?;
        let o = &self.orchestra.inner;
        check_agents(&proposal, &super::agents::load(&cx.cwd, &o.home))?;
        let session = cx.turn.session_id().to_string();
        let revision = o.plans.next_revision(&session).await.map_err(|e| e.to_string())?;
        let plan = Plan::propose(proposal, revision).map_err(|e| e.to_string())?;
        let mut stored = o.plans.create(&session, &plan).await.map_err(|e| e.to_string())?;
        let fire = |data: EventData| o.hooks.fire(HookEvent::in_session(&session, &cx.cwd, data));
        fire(EventData::PlanProposed {
            plan_id: stored.id.clone(),
            revision,
            goal: stored.plan.goal.clone(),
            steps: stored.plan.steps.iter().map(|s| s.id.clone()).collect(),
        });
        let call_id = cx.call_id.clone().unwrap_or_else(|| format!("plan-{}", stored.id));
        cx.turn.emit(ChatEvent::Plan(fleet::plan_entries(&stored))).await;
        let how = format!(
            "Plan {} (revision {}) waits for approval: answer in the editor, or run `ratchet plans approve {} [--skip STEP]` \
             or `ratchet plans reject {} --feedback TEXT` (or type `/approve {}` / `/reject {} WHY` in a chat).",
            stored.id, revision, stored.id, stored.id, stored.id, stored.id
        );
        self.show(cx, &call_id, how).await;
        match self.approval(cx, &call_id, &stored).await? {
            Decision::Approved(skip) => {
                stored.plan.approve(&skip).map_err(|e| e.to_string())?;
                stored.plan.start().map_err(|e| e.to_string())?;
                o.plans.save(&stored).await.map_err(|e| e.to_string())?;
                let (plan_id, goal) = (stored.id.clone(), stored.plan.goal.clone());
                fire(EventData::PlanApproved { plan_id: plan_id.clone(), goal: goal.clone(), skipped: skip });
                let n = stored.plan.ready_steps().len();
                self.show(cx, &call_id, format!("Plan {} approved; {n} steps can start.", stored.id)).await;
                let ended = fleet::run_plan(&self.orchestra, cx, &call_id, stored).await;
                let text = fleet::summary(&ended);
                let status = ended.plan.status_label().to_string();
                fire(EventData::PlanCompleted { plan_id, goal, status, summary: text.clone() });
                let failed = ended.plan.status != super::plan::PlanStatus::Completed;
                Ok(ToolOutput { is_error: failed, ..ToolOutput::text(text) })
            }
            Decision::Rejected(feedback) => {
                stored.plan.reject(&feedback).map_err(|e| e.to_string())?;
                o.plans.save(&stored).await.map_err(|e| e.to_string())?;
                Ok(ToolOutput::text(format!(
                    "The user rejected plan {} (revision {}). Their feedback: {feedback}\n\
                     Revise the plan accordingly and call propose_plan again.",
                    stored.id, stored.plan.revision
                )))
            }
            Decision::Cancelled => {
                let _ = stored.plan.cancel();
                let _ = o.plans.save(&stored).await;
                Err(format!("plan {} was cancelled before it was answered", stored.id))
            }
        }
    }

    /// Asks for approval in the editor and in the queue; the first answer wins.
    async fn approval(&self, cx: &ToolContext, call_id: &str, stored: &StoredPlan) -> Result<Decision, String> {
        let steps: Vec<StepChoice> = stored
            .plan
            .steps
            .iter()
            .map(|s| StepChoice { id: s.id.clone(), description: s.description.clone() })
            .collect();
        let title = format!(
            "Approve plan {} (revision {}): {} — {} steps",
            stored.id,
            stored.plan.revision,
            stored.plan.goal.lines().next().unwrap_or(""),
            steps.len()
        );
        let new = NewQuestion {
            session_id: stored.session_id.clone(),
            kind: QuestionKind::PlanApproval,
            title: title.clone(),
            body: json!({ "plan_id": stored.id, "steps": steps }),
            cwd: cx.cwd.clone(),
        };
        let form = QuestionForm::PlanApproval { plan_id: stored.id.clone(), steps };
        let editor = async {
            match cx.turn.ask(Some(call_id.to_string()), title, form).await {
                QuestionAnswer::Approve { skip } => Some(Answer::Approve { skip }),
                QuestionAnswer::Reject { feedback } => Some(Answer::Reject { feedback }),
                QuestionAnswer::Text(t) => Some(Answer::Reject { feedback: t }),
                QuestionAnswer::Declined => {
                    Some(Answer::Reject { feedback: "The user declined the plan in the editor.".into() })
                }
            }
        };
        let timeout = self.orchestra.inner.config.question_timeout;
        let (_, outcome) =
            ask_person(&self.orchestra.inner.questions, new, |_| editor, Answer::clone, &cx.cancel, timeout).await?;
        let answer = match outcome {
            Outcome::Editor(a) | Outcome::Queue(a, _) => a,
            Outcome::Cancelled => return Ok(Decision::Cancelled),
        };
        Ok(match answer {
            Answer::Approve { skip } => Decision::Approved(skip),
            Answer::Reject { feedback } => Decision::Rejected(feedback),
            Answer::Text(t) => Decision::Rejected(t),
            Answer::NoAnswer => Decision::Rejected("Nobody answered in time; the plan was not approved.".into()),
        })
    }

    async fn show(&self, cx: &ToolContext, call_id: &str, text: String) {
        fleet::show(cx.turn.as_ref(), call_id, ToolCallStatus::InProgress, text, None).await;
    }
}

enum Decision {
    Approved(Vec<String>),
    Rejected(String),
    Cancelled,
}

/// Every agent a step names must be defined, so a plan is never approved with a step no
/// worker can take.
fn check_agents(proposal: &Proposal, catalog: &super::agents::AgentCatalog) -> Result<(), String> {
    for step in &proposal.steps {
        let Some(name) = step.agent.as_deref().map(str::trim).filter(|n| !n.is_empty()) else { continue };
        if catalog.get(name).is_none() {
            let names: Vec<&str> = catalog.agents.iter().map(|a| a.name.as_str()).collect();
            let known = if names.is_empty() { "none are defined".to_string() } else { names.join(", ") };
            return Err(format!("step {:?} names the agent {name:?}, which is not defined (agents: {known})", step.id));
        }
    }
    Ok(())
}
