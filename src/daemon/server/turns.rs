//! The two subscriptions: `turn.send` (a turn, streamed to the client that started it) and
//! `session.subscribe` (a session's live events, for every other window).
//!
//! A turn belongs to the engine, not to the connection: when its subscriber goes away (the
//! window closed, the client crashed) the pump keeps draining the turn's events so it runs to
//! the end and is saved, tool calls stop going to the gone editor, and any permission question
//! still open waits in the orchestra's question queue (`ratchet questions answer`, autorespond
//! rules do not apply: it is the editor's question) unless someone (another window, with
//! `turn.answer_permission`) answers it first. It never times out into "allow": only a
//! configured `[questions] timeout_secs` ends the wait, as a rejection.

use std::sync::Arc;

use jsonrpsee::RpcModule;
use jsonrpsee::core::RegisterMethodError;
use jsonrpsee::server::{PendingSubscriptionSink, SubscriptionSink};
use jsonrpsee::types::Params;
use serde::Serialize;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::State;
use super::engine_error::rpc_error;
use super::remote_host::RemoteHost;
use crate::daemon::protocol::{IdParams, SendParams, TurnItem, method};
use crate::engine::{ChatEvent, EngineApi, PermissionAnswer, PermissionRequest, SessionEvent, TurnStream};
use crate::orchestra::questions::{Answer, NewQuestion, QuestionKind};

/// Host calls queued between a turn's tools and its pump. A turn runs its tool calls one
/// at a time, so a few slots are plenty.
const HOST_ITEM_CAPACITY: usize = 8;

pub(super) fn register(m: &mut RpcModule<State>) -> Result<(), RegisterMethodError> {
    m.register_subscription(method::SEND, method::SEND_ITEM, method::SEND_UNSUBSCRIBE, |params, pending, state, _| {
        send(params, pending, state)
    })?;
    m.register_subscription(
        method::SUBSCRIBE,
        method::SUBSCRIBE_ITEM,
        method::SUBSCRIBE_UNSUBSCRIBE,
        |params, pending, state, _| watch(params, pending, state),
    )?;
    Ok(())
}

/// `turn.send`: starts the turn (errors reject the subscription), then pumps it.
async fn send(params: Params<'static>, pending: PendingSubscriptionSink, state: Arc<State>) {
    let p: SendParams = match params.parse() {
        Ok(p) => p,
        Err(e) => return pending.reject(e).await,
    };
    let (items_tx, items_rx) = mpsc::channel(HOST_ITEM_CAPACITY);
    let detached = CancellationToken::new();
    let host = Arc::new(RemoteHost::new(p.host, state.host_calls.clone(), items_tx, detached.clone()));
    let turn = match EngineApi::send_message(&state.engine, p.id.clone(), p.content, host).await {
        Ok(turn) => turn,
        Err(e) => return pending.reject(rpc_error(&e)).await,
    };
    let sink = pending.accept().await.ok();
    let pump = Pump { state: state.clone(), session: p.id, detached, asked: Vec::new(), waiting: JoinSet::new() };
    // On the server's tracker, so stopping the server waits for it.
    let _ = state.tasks.spawn(pump.run(turn, items_rx, sink)).await;
}

/// Forwards one turn to its subscriber for as long as there is one, and drains it after.
struct Pump {
    state: Arc<State>,
    session: String,
    detached: CancellationToken,
    /// Permission questions put to the subscriber (answered or not).
    asked: Vec<PermissionRequest>,
    /// Questions waiting in the queue for a person; dropped (aborted) when the pump ends.
    waiting: JoinSet<()>,
}

impl Pump {
    async fn run(
        mut self,
        turn: TurnStream,
        mut host_items: mpsc::Receiver<TurnItem>,
        mut sink: Option<SubscriptionSink>,
    ) {
        let mut events = turn.events;
        if sink.is_none() {
            self.detach(&mut host_items);
        }
        self.deliver(&mut sink, &mut host_items, &TurnItem::Started { turn: turn.turn }).await;
        loop {
            let attached = sink.is_some();
            tokio::select! {
                event = events.recv() => {
                    let Some(event) = event else { break };
                    let last = matches!(event, ChatEvent::Complete { .. } | ChatEvent::Error { .. });
                    if let ChatEvent::PermissionRequest(q) = &event {
                        self.asked.push(q.clone());
                        if !attached {
                            self.queue(q.clone());
                        }
                    }
                    self.deliver(&mut sink, &mut host_items, &TurnItem::Event(event)).await;
                    if last {
                        break;
                    }
                }
                Some(item) = host_items.recv(), if attached => self.deliver(&mut sink, &mut host_items, &item).await,
                () = closed(sink.as_ref()), if attached => {
                    tracing::info!(session = %self.session, "the prompting client went away; the turn continues");
                    sink = None;
                    self.detach(&mut host_items);
                }
                // The server is stopping: stop listening. The turn goes on in the engine
                // until its owner shuts the engine down (which cancels and saves it).
                () = self.state.stopping.cancelled() => break,
                Some(_) = self.waiting.join_next(), if !self.waiting.is_empty() => {}
            }
        }
        self.withdraw_left_over().await;
    }

    /// Sends an item; a failed send means the subscriber is gone.
    async fn deliver(
        &mut self,
        sink: &mut Option<SubscriptionSink>,
        host_items: &mut mpsc::Receiver<TurnItem>,
        item: &TurnItem,
    ) {
        let Some(s) = sink.as_ref() else { return };
        if !send_json(s, item).await {
            *sink = None;
            self.detach(host_items);
        }
    }

    /// The subscriber is gone: fail host calls, and queue its open questions.
    fn detach(&mut self, host_items: &mut mpsc::Receiver<TurnItem>) {
        self.detached.cancel();
        host_items.close();
        for q in self.asked.clone() {
            self.queue(q);
        }
    }

    /// Puts question `q` in the queue and hands its answer to the engine; a question answered
    /// meanwhile (by another window) is left alone by the engine.
    fn queue(&mut self, q: PermissionRequest) {
        let state = self.state.clone();
        let session = self.session.clone();
        self.waiting.spawn(async move {
            let cwd = match state.engine.session(&session).await {
                Ok(s) => s.cwd,
                Err(_) => return,
            };
            let new = NewQuestion {
                session_id: session.clone(),
                kind: QuestionKind::Permission,
                title: q.title.clone(),
                body: serde_json::json!({ "session_id": session, "request_id": q.request_id, "tool": q.tool }),
                cwd,
            };
            let record = match state.questions.ask(new).await {
                Ok(r) => r,
                Err(e) => return tracing::warn!(error = %e, "cannot queue a detached turn's permission question"),
            };
            tracing::info!(session, question = %record.id, "a detached turn's permission question waits in the queue");
            let answer = match state.questions.wait(&record.id, &state.stopping, state.question_timeout).await {
                Ok(Some((Answer::Approve { .. }, _))) => PermissionAnswer::AllowOnce,
                // A rejection, a text, no answer (timeout): never "allow".
                Ok(Some(_)) => PermissionAnswer::RejectOnce,
                Ok(None) => return,
                Err(e) => return tracing::warn!(error = %e, "cannot wait for a queued permission question"),
            };
            if !state.engine.answer_permission(&session, q.request_id, answer) {
                tracing::debug!(session, question = %record.id, "the question was answered elsewhere first");
            }
        });
    }

    /// Questions this turn queued that nobody needs any more (the turn ended) leave the queue.
    async fn withdraw_left_over(&mut self) {
        self.waiting.shutdown().await;
        let Ok(open) = self.state.questions.list(true).await else { return };
        for q in open.iter().filter(|q| {
            q.kind == QuestionKind::Permission
                && q.body.get("session_id").and_then(|v| v.as_str()) == Some(&self.session)
        }) {
            let _ = self.state.questions.withdraw(&q.id).await;
        }
    }
}

/// `session.subscribe`: forwards the session's live events until the subscriber leaves.
async fn watch(params: Params<'static>, pending: PendingSubscriptionSink, state: Arc<State>) {
    let p: IdParams = match params.parse() {
        Ok(p) => p,
        Err(e) => return pending.reject(e).await,
    };
    let rx = match EngineApi::subscribe(&state.engine, p.id.clone()).await {
        Ok(rx) => rx,
        Err(e) => return pending.reject(rpc_error(&e)).await,
    };
    let Ok(sink) = pending.accept().await else { return };
    let _ = state.tasks.spawn(forward(rx, sink, state.stopping.clone(), p.id)).await;
}

async fn forward(
    mut rx: broadcast::Receiver<SessionEvent>,
    sink: SubscriptionSink,
    stopping: CancellationToken,
    session: String,
) {
    loop {
        let event = tokio::select! {
            event = rx.recv() => event,
            () = sink.closed() => return,
            () = stopping.cancelled() => return,
        };
        match event {
            Ok(event) => {
                if !send_json(&sink, &event).await {
                    return;
                }
            }
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(session, skipped = n, "a session subscriber fell behind; events were dropped")
            }
            Err(RecvError::Closed) => return,
        }
    }
}

/// Sends one item as JSON; false if the subscriber is gone.
async fn send_json(sink: &SubscriptionSink, item: &impl Serialize) -> bool {
    match serde_json::value::to_raw_value(item) {
        Ok(raw) => sink.send(raw).await.is_ok(),
        Err(e) => {
            tracing::error!(error = %e, "cannot encode a stream item; skipped");
            true
        }
    }
}

async fn closed(sink: Option<&SubscriptionSink>) {
    match sink {
        Some(s) => s.closed().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests;
