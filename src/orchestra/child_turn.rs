//! One child session's turn, driven for the turn that started it (a fleet worker's, a
//! sub-agent's): its output streams into the starter's tool call, its permission questions go
//! to a person (the starter's editor and the question queue, first answer wins), its job's
//! kill and pause reach it, and its usage and final text are collected.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::Orchestra;
use super::ask::{Outcome, ask_person};
use super::fleet::show;
use super::jobs::JobHandle;
use super::plans::StepRun;
use super::questions::{Answer, NewQuestion, QuestionKind};
use crate::engine::tools::NoHost;
use crate::engine::turn_scope::{PermissionAsk, TurnScope};
use crate::engine::{ChatEvent, ContentPart, PermissionAnswer, PermissionRequest, StopReason, ToolCallStatus};

/// Why a child's turn failed when it hit its cap on model calls (`max_iterations`).
pub(super) const CAP_REACHED: &str = "it reached the limit of model calls in one turn";

/// Why a child's turn failed when something else cancelled it (not its job's kill).
pub(super) const CANCELLED: &str = "cancelled";

/// How often the starter's tool call shows the child's latest output, at most.
const SHOW_EVERY: Duration = Duration::from_millis(150);
/// The tail of the child's output the tool call shows.
const SHOWN_CHARS: usize = 800;

/// What driving a child's turn needs of its starter.
pub(super) struct ChildTurn<'a> {
    pub orchestra: &'a Orchestra,
    /// The starting turn.
    pub turn: &'a Arc<dyn TurnScope>,
    /// The starting turn's token: cancelling it cancels the child.
    pub cancel: &'a CancellationToken,
    pub cwd: &'a PathBuf,
    pub parent_session: &'a str,
    /// The starter's tool call that shows the child.
    pub call_id: &'a str,
    /// Put before the child's permission questions, e.g. `p1 s2` or `agent reviewer`.
    pub label: String,
}

impl ChildTurn<'_> {
    /// Runs one turn of `session` on `prompt` to its end.
    pub async fn drive(&self, session: &str, prompt: String, run: &mut StepRun, job: &JobHandle) -> Result<(), String> {
        let engine = self.orchestra.inner.engine.clone();
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
                    show(self.turn.as_ref(), self.call_id, ToolCallStatus::InProgress, text.to_string(), None).await;
                    continue;
                }
            };
            let Some(event) = event else { return Err("the child's turn ended without a result".into()) };
            match event {
                ChatEvent::TextDelta(t) => {
                    output.push_str(&t);
                    if last_shown.elapsed() >= SHOW_EVERY {
                        last_shown = Instant::now();
                        show(self.turn.as_ref(), self.call_id, ToolCallStatus::InProgress, tail(&output), None).await;
                    }
                }
                ChatEvent::ToolCallStarted(call) => {
                    output.push_str(&format!("\n→ {}\n", call.title));
                    show(self.turn.as_ref(), self.call_id, ToolCallStatus::InProgress, tail(&output), None).await;
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
                        StopReason::Cancelled => Err(CANCELLED.into()),
                        StopReason::MaxTurnRequests => Err(CAP_REACHED.into()),
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

    /// A child's permission question goes to the starter's editor (titled with its label)
    /// and to the question queue; the first answer wins.
    async fn ask_permission(&self, session: &str, q: &PermissionRequest) -> PermissionAnswer {
        let title = format!("[{}] {}", self.label, q.title);
        let new = NewQuestion {
            session_id: self.parent_session.to_string(),
            kind: QuestionKind::Permission,
            title: title.clone(),
            body: serde_json::json!({ "session_id": session, "request_id": q.request_id, "tool": q.tool, "by": self.label }),
            cwd: self.cwd.clone(),
        };
        let editor = async {
            let ask =
                PermissionAsk { tool_call_id: self.call_id.to_string(), tool: q.tool.clone(), title, kind: q.kind };
            match self.turn.ask_permission(ask).await {
                // The editor could not answer (its window closed): the queue still can.
                PermissionAnswer::Cancelled => None,
                a => Some(a),
            }
        };
        let timeout = self.orchestra.inner.config.question_timeout;
        match ask_person(&self.orchestra.inner.questions, new, |_| editor, permission_as_answer, self.cancel, timeout)
            .await
        {
            Ok((_, Outcome::Editor(a))) => a,
            Ok((_, Outcome::Queue(Answer::Approve { .. }, _))) => PermissionAnswer::AllowOnce,
            // A rejection, a text answer, no answer (timeout): never "allow".
            Ok((_, Outcome::Queue(..))) => PermissionAnswer::RejectOnce,
            Ok((_, Outcome::Cancelled)) => PermissionAnswer::Cancelled,
            Err(e) => {
                tracing::warn!(error = %e, "cannot queue a child's permission question; rejecting the call");
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

/// The last [`SHOWN_CHARS`] characters of `text`.
fn tail(text: &str) -> String {
    let n = text.chars().count();
    if n <= SHOWN_CHARS {
        return text.to_string();
    }
    let skip = text.char_indices().nth(n - SHOWN_CHARS).map(|(i, _)| i).unwrap_or(0);
    format!("…{}", &text[skip..])
}
