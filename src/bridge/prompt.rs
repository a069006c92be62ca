//! `session/prompt` and `session/cancel`: one turn, streamed as `session/update`s.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::Value;

use super::{AcpAgent, error, from_acp, to_acp, to_value};
use crate::acp::schema::{CancelNotification, PromptRequest, PromptResponse};
use crate::acp::{RequestContext, RpcError};
use crate::engine::{ChatEvent, EngineError};

impl AcpAgent {
    /// Claims the session at once (in wire order, so a following `session/cancel` finds the
    /// turn), then streams the turn in the returned future.
    pub(super) fn prompt(self: Arc<Self>, req: PromptRequest, cx: RequestContext) -> BoxFuture<'static, Result<Value, RpcError>> {
        let id = req.session_id.0.to_string();
        let content = from_acp::prompt(req.prompt);
        let claim = self.engine.claim_turn(&id);
        async move {
            let content = content?;
            let claim = match claim {
                Ok(c) => c,
                Err(EngineError::NotOpen(_)) => {
                    // Distinguish "never heard of it" from "not loaded here".
                    self.engine.session(&id).await?;
                    return Err(EngineError::NotOpen(id).into());
                }
                Err(e) => return Err(e.into()),
            };
            let mut events = self.engine.run_turn(claim, content).await?;
            loop {
                let event = tokio::select! {
                    event = events.recv() => event,
                    // `$/cancel_request` for this prompt, or the connection closing.
                    () = cx.cancel.cancelled(), if !cx.cancel.is_cancelled() => {
                        self.engine.cancel(&id);
                        continue;
                    }
                };
                let Some(event) = event else {
                    return Err(RpcError::internal("the turn ended without a result"));
                };
                if let Some(update) = to_acp::update(&event) {
                    self.send_update(&id, update).await;
                    continue;
                }
                return match event {
                    ChatEvent::Complete { stop } => to_value(PromptResponse::new(to_acp::stop_reason(stop))),
                    ChatEvent::Error { kind, message } => Err(error::turn_failed(kind, message)),
                    _ => continue,
                };
            }
        }
        .boxed()
    }

    /// `session/cancel`: stops the running turn; with none running it does nothing.
    pub(super) fn cancel(&self, n: CancelNotification) {
        let id = n.session_id.0.as_ref();
        if !self.engine.cancel(id) {
            tracing::debug!(session = id, "session/cancel with no turn running");
        }
    }
}
