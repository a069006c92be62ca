//! One worker: waits for a slot in the pool, makes its child session (routed to a model by
//! its step's complexity), runs one turn on its step, streams what it does into its tool call
//! in the prompting turn, forwards its permission questions to a person, and reports how it
//! ended. It is a job (`fleet_worker:<session>`): killing it stops its turn (its model stream
//! closes) and fails its step as killed; pausing it lets its current model call finish, then
//! holds it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Finished, Note, announce, first_line, show};
use crate::engine::tools::NoHost;
use crate::engine::turn_scope::{PermissionAsk, TurnScope};
use crate::engine::{
    ChatEvent, ChildSpec, ContentPart, PermissionAnswer, PermissionRequest, StopReason, ToolCallStatus,
};
use crate::orchestra::Orchestra;
use crate::orchestra::ask::{Outcome, ask_person};
use crate::orchestra::jobs::{JobKind, JobSpec};
use crate::orchestra::plan::Step;
use crate::orchestra::plans::StepRun;
use crate::orchestra::questions::{Answer, NewQuestion, QuestionKind};

/// How often a worker's tool call shows its latest output, at most.
const SHOW_EVERY: Duration = Duration::from_millis(150);
/// The tail of a worker's output its tool call shows.
const SHOWN_CHARS: usize = 800;

pub(super) struct Worker {
    pub orchestra: Orchestra,
    /// The prompting turn.
    pub turn: Arc<dyn TurnScope>,
    /// The prompting turn's token: cancelling the prompt cancels the fleet.
    pub cancel: CancellationToken,
    pub cwd: PathBuf,
    pub parent_session: String,
    pub plan_id: String,
    pub goal: String,
    pub step: Step,
    /// Its tool call in the prompting turn.
    pub call_id: String,
    pub notes: mpsc::Sender<Note>,
}

impl Worker {
    pub async fn run(self) -> Finished {
        let mut run = StepRun::default();
        let outcome = self.work(&mut run).await;
        let (status, text) = match &outcome {
            Ok(()) => (ToolCallStatus::Completed, run.summary.clone().unwrap_or_default()),
            Err(why) => (ToolCallStatus::Failed, format!("failed: {why}")),
        };
        show(self.turn.as_ref(), &self.call_id, status, text.clone(), Some(text)).await;
        Finished { step: self.step.id.clone(), run, outcome }
    }

    async fn work(&self, run: &mut StepRun) -> Result<(), String> {
        announce(self.turn.as_ref(), &self.call_id, &self.step, &self.plan_id).await;
        let fleet = &self.orchestra.inner.fleet;
        let _slot = tokio::select! {
            // The cancel first: the slots free up as the cancelled workers end, and a worker
            // still waiting must not take one and start its step after the fleet was cancelled.
            biased;
            () = self.cancel.cancelled() => return Err("cancelled".into()),
            permit = fleet.permits.clone().acquire_owned() => permit.map_err(|_| "the fleet is shutting down".to_string())?,
        };
        let engine = &self.orchestra.inner.engine;
        let route = self.orchestra.inner.config.routing.route(self.step.complexity).cloned();
        let spec = ChildSpec {
            title: Some(format!("{} {}: {}", self.plan_id, self.step.id, first_line(&self.step.description))),
            provider: route.as_ref().map(|r| r.provider.clone()),
            model: route.and_then(|r| r.model),
        };
        let child = engine.create_child_session(self.parent_session.clone(), spec).await.map_err(|e| e.to_string())?;
        run.worker_session = Some(child.id.clone());
        run.model = Some(child.model.clone());
        let model_label = format!("{}/{}", child.provider, child.model);
        let job = self
            .orchestra
            .inner
            .jobs
            .register(JobSpec {
                kind: JobKind::FleetWorker,
                key: child.id.clone(),
                model: Some(model_label.clone()),
                session_id: Some(child.id.clone()),
                detail: Some(format!("plan {} step {}", self.plan_id, self.step.id)),
                pausable: true,
            })
            .await
            .map_err(|e| e.to_string())?;
        let _ = self
            .notes
            .send(Note::Started {
                step: self.step.id.clone(),
                worker_session: child.id.clone(),
                model: model_label.clone(),
            })
            .await;
        show(self.turn.as_ref(), &self.call_id, ToolCallStatus::InProgress, format!("running on {model_label}"), None)
            .await;
        let result = self.drive(&child.id, run, &job).await;
        if let Err(e) = engine.close_session(child.id.clone()).await {
            tracing::debug!(error = %e, "cannot close a worker's session");
        }
        result
    }

    /// Runs the worker's one turn to its end.
    async fn drive(
        &self,
        session: &str,
        run: &mut StepRun,
        job: &crate::orchestra::jobs::JobHandle,
    ) -> Result<(), String> {
        let engine = self.orchestra.inner.engine.clone();
        let prompt = worker_prompt(&self.goal, &self.step);
        let mut turn = engine
            .send_message(session.to_string(), vec![ContentPart::text(prompt)], Arc::new(NoHost))
            .await
            .map_err(|e| e.to_string())?;
        let mut output = String::new();
        let mut last_shown = Instant::now() - SHOW_EVERY;
        let mut paused = job.paused();
        let mut stop_sent = false;
        loop {
            let event = tokio::select! {
                e = turn.events.recv() => e,
                () = job.token().cancelled(), if !stop_sent => {
                    stop_sent = true;
                    engine.cancel(session.to_string()).await;
                    continue;
                }
                () = self.cancel.cancelled(), if !stop_sent => {
                    stop_sent = true;
                    engine.cancel(session.to_string()).await;
                    continue;
                }
                Ok(()) = paused.changed() => {
                    let now = *paused.borrow_and_update();
                    self.orchestra.set_paused(session, now);
                    let text = if now { "paused (finishes its current model call, then waits)" } else { "resumed" };
                    show(self.turn.as_ref(), &self.call_id, ToolCallStatus::InProgress, text.to_string(), None).await;
                    continue;
                }
            };
            let Some(event) = event else { return Err("the worker's turn ended without a result".into()) };
            match event {
                ChatEvent::TextDelta(t) => {
                    output.push_str(&t);
                    if last_shown.elapsed() >= SHOW_EVERY {
                        last_shown = Instant::now();
                        show(self.turn.as_ref(), &self.call_id, ToolCallStatus::InProgress, tail(&output), None).await;
                    }
                }
                ChatEvent::ToolCallStarted(call) => {
                    output.push_str(&format!("\n→ {}\n", call.title));
                    show(self.turn.as_ref(), &self.call_id, ToolCallStatus::InProgress, tail(&output), None).await;
                }
                ChatEvent::Usage { usage, .. } => {
                    run.input_tokens += usage.input_tokens;
                    run.output_tokens += usage.output_tokens;
                }
                ChatEvent::PermissionRequest(q) => {
                    let answer = self.ask_permission(session, &q).await;
                    engine.answer_permission(session.to_string(), q.request_id, answer).await;
                }
                ChatEvent::Complete { stop } => {
                    run.summary = Some(output.trim().to_string());
                    return match stop {
                        StopReason::EndTurn | StopReason::MaxTokens => Ok(()),
                        StopReason::Cancelled if job.killed() => Err("killed (ratchet jobs kill)".into()),
                        StopReason::Cancelled => Err("cancelled".into()),
                        StopReason::MaxTurnRequests => Err("it reached the limit of model calls in one turn".into()),
                        StopReason::Refusal => Err("the model refused".into()),
                    };
                }
                ChatEvent::Error { message, .. } => {
                    run.summary = Some(output.trim().to_string());
                    return Err(message);
                }
                _ => {}
            }
        }
    }

    /// A worker's permission question goes to the prompting editor (titled with its step)
    /// and to the question queue; the first answer wins.
    async fn ask_permission(&self, session: &str, q: &PermissionRequest) -> PermissionAnswer {
        let title = format!("[{} {}] {}", self.plan_id, self.step.id, q.title);
        let new = NewQuestion {
            session_id: self.parent_session.clone(),
            kind: QuestionKind::Permission,
            title: title.clone(),
            body: serde_json::json!({ "session_id": session, "request_id": q.request_id, "tool": q.tool, "step": self.step.id }),
            cwd: self.cwd.clone(),
        };
        let editor = async {
            let ask = PermissionAsk { tool_call_id: self.call_id.clone(), tool: q.tool.clone(), title, kind: q.kind };
            match self.turn.ask_permission(ask).await {
                // The editor could not answer (its window closed): the queue still can.
                PermissionAnswer::Cancelled => None,
                a => Some(a),
            }
        };
        let timeout = self.orchestra.inner.config.question_timeout;
        match ask_person(&self.orchestra.inner.questions, new, editor, permission_as_answer, &self.cancel, timeout)
            .await
        {
            Ok((_, Outcome::Editor(a))) => a,
            Ok((_, Outcome::Queue(Answer::Approve { .. }, _))) => PermissionAnswer::AllowOnce,
            // A rejection, a text answer, no answer (timeout): never "allow".
            Ok((_, Outcome::Queue(..))) => PermissionAnswer::RejectOnce,
            Ok((_, Outcome::Cancelled)) => PermissionAnswer::Cancelled,
            Err(e) => {
                tracing::warn!(error = %e, "cannot queue a worker's permission question; rejecting the call");
                PermissionAnswer::RejectOnce
            }
        }
    }
}

fn permission_as_answer(a: &PermissionAnswer) -> Answer {
    match a {
        PermissionAnswer::AllowOnce | PermissionAnswer::AllowAlways => Answer::Approve { skip: Vec::new() },
        _ => Answer::Reject { feedback: "rejected in the editor".into() },
    }
}

/// A worker sees the plan's goal and its own step, not the other steps.
pub fn worker_prompt(goal: &str, step: &Step) -> String {
    let mut p = format!(
        "You are one worker of a fleet carrying out an approved plan.\n\nGoal of the plan: {goal}\n\n\
         Your step ({}): {}\n",
        step.id, step.description
    );
    if !step.files.is_empty() {
        p.push_str(&format!("Files of your step: {}\n", step.files.join(", ")));
    }
    p.push_str(
        "\nDo this step only, with the tools; other workers do the other steps. \
         When it is done, answer with a short summary of what you changed.",
    );
    p
}

fn tail(text: &str) -> String {
    let n = text.chars().count();
    if n <= SHOWN_CHARS {
        return text.to_string();
    }
    let skip = text.char_indices().nth(n - SHOWN_CHARS).map(|(i, _)| i).unwrap_or(0);
    format!("…{}", &text[skip..])
}
