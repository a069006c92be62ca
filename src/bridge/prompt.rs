//! `session/prompt` and `session/cancel`: one turn, streamed as `session/update`s, with
//! permission questions put to the editor as `session/request_permission` and other questions
//! as `questions` decides.

use std::collections::HashMap;
use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::Value;
use tokio::task::JoinSet;

use super::host::AcpHost;
use super::{AcpAgent, error, from_acp, to_acp, to_value};
use crate::acp::error::REQUEST_CANCELLED;
use crate::acp::schema::{
    CancelNotification, ConfigOptionUpdate, CurrentModeUpdate, PermissionOption, PermissionOptionKind, PromptRequest,
    PromptResponse, RequestPermissionOutcome, RequestPermissionRequest, RequestPermissionResponse, SessionUpdate,
    ToolCallUpdate, ToolCallUpdateFields,
};
use crate::acp::{RequestContext, RpcError};
use crate::engine::{ChatEvent, EngineError, PermissionAnswer, PermissionRequest, StopReason};

impl AcpAgent {
    /// Claims the session at once (in wire order, so a following `session/cancel` finds the
    /// turn), then streams the turn in the returned future.
    pub(super) fn prompt(
        self: Arc<Self>,
        req: PromptRequest,
        cx: RequestContext,
    ) -> BoxFuture<'static, Result<Value, RpcError>> {
        let id = req.session_id.0.to_string();
        let content = from_acp::prompt(req.prompt);
        // Registered now, in wire order, so a `session/cancel` right behind finds it.
        let slot = self.begin_prompt(&id);
        async move {
            let Some(_slot) = slot else { return Err(EngineError::Busy(id).into()) };
            let content = content?;
            let host =
                Arc::new(AcpHost { peer: self.peer.clone(), session_id: id.clone(), caps: self.client_capabilities() });
            let turn = match self.engine.send_message(id.clone(), content, host).await {
                Ok(t) => t,
                Err(EngineError::NotOpen(_)) => {
                    // Distinguish "never heard of it" from "not loaded here".
                    self.engine.session(id.clone()).await?;
                    return Err(EngineError::NotOpen(id).into());
                }
                Err(e) => return Err(e.into()),
            };
            self.prompts.started(&id, turn.turn);
            if self.prompts.cancel_requested(&id) {
                self.engine.cancel(id.clone()).await;
            }
            let mut events = turn.events;
            // Questions wait for the editor without blocking the event stream; dropping the
            // set at the end aborts any the editor never answered.
            let mut questions = JoinSet::new();
            // The open `Question`s by request id, so a withdrawn one stops being asked (the
            // aborted request tells the editor with `$/cancel_request`).
            let mut open_questions = HashMap::new();
            loop {
                let event = tokio::select! {
                    event = events.recv() => event,
                    // `$/cancel_request` for this prompt, or the connection closing.
                    () = cx.cancel.cancelled(), if !cx.cancel.is_cancelled() => {
                        if cx.closing.is_cancelled() {
                            // The editor hung up: stop streaming to nobody, but leave the
                            // turn to its engine. A shared daemon finishes and saves it
                            // (other windows follow it); a stand-alone engine cancels and
                            // saves it as it shuts down.
                            return Err(RpcError::request_cancelled());
                        }
                        self.engine.cancel(id.clone()).await;
                        continue;
                    }
                };
                let Some(event) = event else {
                    return Err(RpcError::internal("the turn ended without a result"));
                };
                match event {
                    ChatEvent::Complete { stop } => {
                        // A turn the editor stopped by failing a permission question ended
                        // like a cancelled one; unless the user cancelled too, say why.
                        if matches!(stop, StopReason::Cancelled)
                            && !self.prompts.cancel_requested(&id)
                            && !cx.cancel.is_cancelled()
                            && let Some(why) = self.prompts.client_failure(&id)
                        {
                            return Err(error::client_failed(why));
                        }
                        return to_value(PromptResponse::new(to_acp::stop_reason(stop)));
                    }
                    ChatEvent::Error { kind, message } => return Err(error::turn_failed(kind, message)),
                    ChatEvent::PermissionRequest(q) => {
                        let this = self.clone();
                        let sid = id.clone();
                        questions.spawn(async move { this.ask_permission(&sid, q).await });
                    }
                    ChatEvent::Question(q) => {
                        let this = self.clone();
                        let sid = id.clone();
                        let request_id = q.request_id;
                        let ask = questions.spawn(async move { this.put_question(&sid, q).await });
                        if let Some(stale) = open_questions.insert(request_id, ask) {
                            stale.abort();
                        }
                    }
                    ChatEvent::QuestionWithdrawn { request_id } => {
                        if let Some(ask) = open_questions.remove(&request_id) {
                            ask.abort();
                        }
                    }
                    ChatEvent::SessionChanged { .. } => self.send_session_state(&id).await,
                    other => {
                        for update in to_acp::updates(&other) {
                            self.send_update(&id, update).await;
                        }
                    }
                }
            }
        }
        .boxed()
    }

    /// Puts one question to the editor and hands the answer to the engine.
    async fn ask_permission(&self, session_id: &str, q: PermissionRequest) {
        let options = vec![
            PermissionOption::new("allow_once", "Allow", PermissionOptionKind::AllowOnce),
            PermissionOption::new(
                "allow_always",
                format!("Always allow {}", q.tool),
                PermissionOptionKind::AllowAlways,
            ),
            PermissionOption::new("reject_once", "Reject", PermissionOptionKind::RejectOnce),
            PermissionOption::new(
                "reject_always",
                format!("Always reject {}", q.tool),
                PermissionOptionKind::RejectAlways,
            ),
        ];
        let tool_call = ToolCallUpdate::new(
            q.tool_call_id.clone(),
            ToolCallUpdateFields::new().title(q.title.clone()).kind(to_acp::tool_kind(q.kind)),
        );
        let request = RequestPermissionRequest::new(session_id.to_string(), tool_call, options);
        let outcome = match self.peer.request("session/request_permission", request).await {
            Ok(v) => match serde_json::from_value::<RequestPermissionResponse>(v) {
                Ok(r) => Ok(match r.outcome {
                    RequestPermissionOutcome::Selected(s) => match s.option_id.0.as_ref() {
                        "allow_once" => PermissionAnswer::AllowOnce,
                        "allow_always" => PermissionAnswer::AllowAlways,
                        "reject_always" => PermissionAnswer::RejectAlways,
                        _ => PermissionAnswer::RejectOnce,
                    },
                    _ => PermissionAnswer::Cancelled,
                }),
                Err(e) => Err(format!("a malformed answer to session/request_permission ({e})")),
            },
            // The editor withdrew the question (-32800), or is gone: a cancellation.
            Err(e) if e.code == REQUEST_CANCELLED || self.peer.is_closed() => {
                tracing::debug!(error = %e, "permission request cancelled");
                Ok(PermissionAnswer::Cancelled)
            }
            Err(e) => Err(format!("an error ({} {}) to session/request_permission", e.code, e.message)),
        };
        // The editor cannot answer: stop the turn (running the tool unasked is out of the
        // question, and a rejection would send the model looking for a workaround), and let
        // the prompt's answer say why instead of a `cancelled` nobody asked for.
        let answer = outcome.unwrap_or_else(|what| {
            tracing::warn!(what, "the editor failed a permission question; stopping the turn");
            self.prompts.client_failed(
                session_id,
                format!(
                    "the editor sent {what}, so \"{}\" did not run and the turn stopped; if the editor cannot \
                     answer permission questions, switch the session to the accept-edits or yolo mode",
                    q.title
                ),
            );
            PermissionAnswer::Cancelled
        });
        self.engine.answer_permission(session_id.to_string(), q.request_id, answer).await;
    }

    /// Sends the session's current mode and config options (after a slash command changed them).
    async fn send_session_state(&self, id: &str) {
        let Ok(record) = self.engine.session(id.to_string()).await else { return };
        let (modes, options) = self.session_state(&record).await;
        self.send_update(id, SessionUpdate::CurrentModeUpdate(CurrentModeUpdate::new(modes.current_mode_id))).await;
        self.send_update(id, SessionUpdate::ConfigOptionUpdate(ConfigOptionUpdate::new(options))).await;
    }

    /// `session/cancel`: stops the running turn; with none running it does nothing (so a
    /// stale cancel can never stop the next turn).
    pub(super) fn cancel(self: Arc<Self>, n: CancelNotification) {
        let id = n.session_id.0.to_string();
        if !self.prompts.request_cancel(&id) {
            tracing::debug!(session = %id, "session/cancel with no prompt running");
            return;
        }
        let this = self.clone();
        self.tasks.spawn(async move {
            this.engine.cancel(id).await;
        });
    }
}
