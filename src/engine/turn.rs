//! One turn: the user's message is already stored; call the model, run the tools it asks
//! for, feed their results back, and repeat until it answers without tools (or a limit).
//!
//! Every model answer and every batch of tool results is stored as it completes, so a crash
//! loses at most the call in flight. Cancellation drops the provider stream (aborting the HTTP
//! request) or stops the running tool; what was received is kept, marked as cancelled. The
//! final event is sent only after everything is stored.

use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt;
use tokio::sync::mpsc;

use super::commands::{self, Command};
use super::compact::{self, Compacted};
use super::content::{ContentPart, ToolCall, ToolResult, Usage};
use super::event::{ChatEvent, ErrorKind, StopReason};
use super::provider::{
    FinishReason, Provider, ProviderChoice, ProviderError, ProviderEvent, ProviderMessage, ProviderRequest,
};
use super::session::TurnClaim;
use super::store::{MessageStatus, NewMessage, SessionPatch, SessionRecord, StoredMessage};
use super::tool_call::ToolRunner;
use super::tools::Host;
use super::{Engine, Mode, Role, instructions, title};

/// A failing call repeated this many times with the same arguments ends the turn.
const LOOP_LIMIT: usize = 3;

pub(super) struct Turn {
    pub engine: Engine,
    pub session: SessionRecord,
    pub claim: TurnClaim,
    pub events: mpsc::Sender<ChatEvent>,
    pub first_prompt: bool,
    pub prompt: Vec<ContentPart>,
    pub host: Arc<dyn Host>,
    pub action: Action,
}

/// What a turn does with its prompt.
pub(super) enum Action {
    /// Run the model loop.
    Model,
    /// Run the model loop, after telling front ends the mode changed (`/plan`).
    ModelAfterModeChange,
    /// A command the engine answers itself.
    Local(Command),
    /// A fixed answer (e.g. "nothing to review").
    Reply(String),
}

/// What one model call produced.
#[derive(Default)]
struct Answer {
    text: String,
    thought: String,
    signature: Option<String>,
    tool_calls: Vec<ToolCall>,
    usage: Option<Usage>,
}

/// How the turn (or one model call) ended.
pub(super) enum Ending {
    Finished(StopReason),
    Cancelled,
    Failed(ErrorKind, String),
}

impl Turn {
    pub async fn run(self) {
        if self.first_prompt {
            self.set_title().await;
        }
        let ending = match &self.action {
            Action::Model => self.run_loop().await,
            Action::ModelAfterModeChange => {
                self.announce_session().await;
                self.run_loop().await
            }
            Action::Local(command) => self.run_command(command.clone()).await,
            Action::Reply(text) => self.reply(text.clone()).await,
        };
        let last = match ending {
            Ending::Finished(stop) => ChatEvent::Complete { stop },
            Ending::Cancelled => ChatEvent::Complete { stop: StopReason::Cancelled },
            Ending::Failed(kind, message) => ChatEvent::Error { kind, message },
        };
        self.emit(last).await;
    }

    /// Sends an event; a front end that went away does not stop the turn.
    pub(super) async fn emit(&self, event: ChatEvent) {
        let live = super::live::LiveEvent::Chat(event.clone());
        self.engine.live().publish(&self.session.id, self.claim.turn_id(), live);
        let _ = self.events.send(event).await;
    }

    /// A session last used with another provider takes the current one and its model (its
    /// old model name would mean nothing to the new provider).
    async fn follow_provider(&self, choice: &ProviderChoice) {
        if self.session.provider == choice.label() {
            return;
        }
        let patch = SessionPatch {
            provider: Some(choice.label().to_string()),
            model: Some(choice.model.clone()),
            ..Default::default()
        };
        if let Err(e) = self.engine.store().update_session(&self.session.id, patch).await {
            tracing::warn!(error = %e, "cannot record the session's new provider");
        }
    }

    async fn set_title(&self) {
        let Some(title) = title::from_prompt(&self.prompt) else { return };
        let patch = SessionPatch { title: Some(title.clone()), ..Default::default() };
        match self.engine.store().update_session(&self.session.id, patch).await {
            Ok(_) => self.emit(ChatEvent::TitleChanged(title)).await,
            Err(e) => tracing::warn!(error = %e, "cannot save the session title"),
        }
    }

    async fn run_loop(&self) -> Ending {
        let (choice, provider) = match self.engine.provider().await {
            Ok(p) => p,
            Err(message) => return Ending::Failed(ErrorKind::Config, message),
        };
        self.follow_provider(&choice).await;
        // Starting MCP servers may take up to their connect timeout; a cancel must not wait.
        let runner = tokio::select! {
            biased;
            () = self.claim.token().cancelled() => return Ending::Cancelled,
            runner = ToolRunner::new(self) => match runner {
                Ok(r) => r,
                Err(e) => return Ending::Failed(ErrorKind::Store, e),
            },
        };
        let base_system = instructions::system_prompt(&self.session, self.engine.config(), &runner.sandbox());
        let mut failures: HashMap<String, usize> = HashMap::new();
        for _ in 0..self.engine.config().max_turn_requests() {
            let session = match self.engine.session(&self.session.id).await {
                Ok(s) => s,
                Err(e) => return Ending::Failed(ErrorKind::Store, e.to_string()),
            };
            let model = model_for(&session, &choice);
            self.compact_if_full(provider.as_ref(), &model).await;
            let (history, summary) = match compact::context(&self.engine, &self.session.id).await {
                Ok(c) => c,
                Err(e) => return Ending::Failed(ErrorKind::Store, e.to_string()),
            };
            let system = match summary {
                Some(s) => format!("{base_system}\n\n# Summary of the earlier conversation\n\n{s}"),
                None => base_system.clone(),
            };
            let read_only = session.mode == Mode::Plan;
            let request = ProviderRequest {
                model,
                system: Some(system),
                messages: to_provider_messages(&history),
                tools: runner.specs(read_only),
                max_tokens: self.engine.config().max_tokens(),
            };
            let mut answer = Answer::default();
            let streamed = self.stream_answer(provider.as_ref(), request, &mut answer).await;
            let (status, finish) = match &streamed {
                Ok(f) => (MessageStatus::Complete, Some(*f)),
                Err(Ending::Cancelled) => (MessageStatus::Cancelled, None),
                Err(_) => (MessageStatus::Error, None),
            };
            if finish.is_none() {
                // Half-streamed tool calls would leave the history unanswerable.
                answer.tool_calls.clear();
            }
            if let Err(e) = self.save_answer(&answer, status).await {
                return Ending::Failed(ErrorKind::Store, format!("cannot save the answer: {e}"));
            }
            if let Some(usage) = answer.usage {
                let context_window = self.engine.config().context_window();
                self.emit(ChatEvent::Usage { usage, context_window }).await;
            }
            let finish = match streamed {
                Ok(f) => f,
                Err(ending) => return ending,
            };
            if answer.tool_calls.is_empty() {
                return Ending::Finished(stop_reason(finish));
            }
            let (results, cancelled) = runner.run_all(self, &answer.tool_calls).await;
            let message = NewMessage {
                status: if cancelled { MessageStatus::Cancelled } else { MessageStatus::Complete },
                ..NewMessage::tool(results.clone())
            };
            if let Err(e) = self.engine.store().append_message(&self.session.id, message).await {
                return Ending::Failed(ErrorKind::Store, format!("cannot save tool results: {e}"));
            }
            if cancelled {
                return Ending::Cancelled;
            }
            if let Some(call) = repeated_failure(&answer.tool_calls, &results, &mut failures) {
                let note = format!(
                    "\n\nStopped: the model called `{}` with the same arguments {LOOP_LIMIT} times and it failed each time.",
                    call
                );
                self.emit(ChatEvent::TextDelta(note.clone())).await;
                let _ = self.save_answer(&Answer { text: note, ..Default::default() }, MessageStatus::Complete).await;
                return Ending::Finished(StopReason::EndTurn);
            }
        }
        Ending::Finished(StopReason::MaxTurnRequests)
    }

    /// Compacts the history first when the last model call filled the context window past
    /// the configured fraction.
    async fn compact_if_full(&self, provider: &dyn Provider, model: &str) {
        let threshold = self.engine.config().compact_threshold();
        if threshold <= 0.0 {
            return;
        }
        let Ok((history, _)) = compact::context(&self.engine, &self.session.id).await else { return };
        let used = history.iter().rev().find_map(|m| m.usage).map(|u| u.total()).unwrap_or(0);
        if (used as f64) < threshold * self.engine.config().context_window() as f64 {
            return;
        }
        match compact::compact(&self.engine, &self.session.id, provider, model, self.claim.token()).await {
            Ok(Compacted::Summarised { messages }) => {
                tracing::info!(messages, "compacted the history automatically");
                self.emit(ChatEvent::ThoughtDelta(format!(
                    "(Compacted {messages} older messages into a summary to free context.)\n"
                )))
                .await;
            }
            Ok(Compacted::Nothing) => {}
            Err(e) => tracing::warn!(error = %e, "automatic compaction failed"),
        }
    }

    /// Runs a command the engine answers itself.
    async fn run_command(&self, command: Command) -> Ending {
        let id = &self.session.id;
        let text = match command {
            Command::Help => commands::help_text(),
            Command::Clear => {
                let ending = self
                    .reply(
                        "Context cleared. Earlier messages stay in the history; the model no longer sees them.".into(),
                    )
                    .await;
                if let Err(e) = compact::clear(&self.engine, id).await {
                    return Ending::Failed(ErrorKind::Store, e.to_string());
                }
                return ending;
            }
            Command::Compact => {
                let (choice, provider) = match self.engine.provider().await {
                    Ok(p) => p,
                    Err(message) => return Ending::Failed(ErrorKind::Config, message),
                };
                let model = model_for(&self.session, &choice);
                match compact::compact(&self.engine, id, provider.as_ref(), &model, self.claim.token()).await {
                    Ok(Compacted::Summarised { messages }) => {
                        format!("Compacted {messages} older messages into a summary.")
                    }
                    Ok(Compacted::Nothing) => "Nothing to compact yet: the conversation is still short.".into(),
                    Err(e) if self.claim.token().is_cancelled() => {
                        tracing::debug!(error = %e, "compaction cancelled");
                        return Ending::Cancelled;
                    }
                    Err(e) => format!("Compaction failed: {e}"),
                }
            }
            Command::Model(None) => {
                let options = self.engine.model_options(&self.session.model);
                format!("Model: `{}`. Configured models: {}.", self.session.model, options.join(", "))
            }
            Command::Model(Some(name)) => match self.engine.set_model(id, &name).await {
                Ok(_) => {
                    self.announce_session().await;
                    format!("Model set to `{name}`.")
                }
                Err(e) => return Ending::Failed(ErrorKind::Store, e.to_string()),
            },
            Command::Mode(None) => commands::mode_text(self.session.mode),
            Command::Mode(Some(name)) => match self.engine.set_mode(id, &name).await {
                Ok(mode) => {
                    self.announce_session().await;
                    format!("Mode set to `{}`: {}.", mode.id(), mode.description())
                }
                Err(e) => e.to_string(),
            },
            Command::Review | Command::Plan(_) => return self.run_loop().await,
        };
        self.reply(text).await
    }

    /// Answers with fixed text, stored like a model answer.
    async fn reply(&self, text: String) -> Ending {
        self.emit(ChatEvent::TextDelta(text.clone())).await;
        match self.save_answer(&Answer { text, ..Default::default() }, MessageStatus::Complete).await {
            Ok(()) => Ending::Finished(StopReason::EndTurn),
            Err(e) => Ending::Failed(ErrorKind::Store, e.to_string()),
        }
    }

    /// Tells front ends the session's mode or model changed.
    async fn announce_session(&self) {
        if let Ok(s) = self.engine.session(&self.session.id).await {
            self.emit(ChatEvent::SessionChanged { mode: s.mode, model: s.model }).await;
        }
    }

    /// Streams one model call into `answer`, forwarding deltas.
    async fn stream_answer(
        &self,
        provider: &dyn Provider,
        request: ProviderRequest,
        answer: &mut Answer,
    ) -> Result<FinishReason, Ending> {
        let token = self.claim.token().clone();
        let mut stream = tokio::select! {
            biased;
            () = token.cancelled() => return Err(Ending::Cancelled),
            started = provider.stream(request) => started.map_err(failed)?,
        };
        loop {
            let next = tokio::select! {
                biased;
                () = token.cancelled() => return Err(Ending::Cancelled),
                next = stream.next() => next,
            };
            match next {
                Some(Ok(ProviderEvent::TextDelta(t))) => {
                    answer.text.push_str(&t);
                    self.emit(ChatEvent::TextDelta(t)).await;
                }
                Some(Ok(ProviderEvent::ThoughtDelta(t))) => {
                    answer.thought.push_str(&t);
                    self.emit(ChatEvent::ThoughtDelta(t)).await;
                }
                Some(Ok(ProviderEvent::ThoughtSignature(s))) => answer.signature = Some(s),
                Some(Ok(ProviderEvent::ToolCall(call))) => answer.tool_calls.push(call),
                Some(Ok(ProviderEvent::Usage(u))) => answer.usage = Some(u),
                Some(Ok(ProviderEvent::Finish(f))) => return Ok(f),
                Some(Err(e)) => return Err(failed(e)),
                None => {
                    let message = format!("{} ended the stream without finishing the answer", provider.name());
                    return Err(Ending::Failed(ErrorKind::Provider, message));
                }
            }
        }
    }

    async fn save_answer(&self, answer: &Answer, status: MessageStatus) -> Result<(), super::store::StoreError> {
        let mut content = Vec::new();
        if !answer.thought.is_empty() {
            content.push(ContentPart::Thought { text: answer.thought.clone(), signature: answer.signature.clone() });
        }
        if !answer.text.is_empty() {
            content.push(ContentPart::text(answer.text.clone()));
        }
        if content.is_empty() && answer.tool_calls.is_empty() {
            return Ok(());
        }
        let message = NewMessage { status, ..NewMessage::assistant(content, answer.tool_calls.clone(), answer.usage) };
        self.engine.store().append_message(&self.session.id, message).await.map(|_| ())
    }
}

/// Ends a turn with an `Error` event if it panics, so its front end and watchers always get a
/// final event (the claim is released as the panicking turn unwinds).
pub(super) struct Backstop {
    pub engine: Engine,
    pub session_id: String,
    pub turn_id: u64,
    pub events: mpsc::Sender<ChatEvent>,
}

impl Backstop {
    pub async fn run(self, turn: impl std::future::Future<Output = ()>) {
        use futures::FutureExt;
        let Err(panic) = std::panic::AssertUnwindSafe(turn).catch_unwind().await else { return };
        let what = self.engine.redactor().redact(&panic_message(panic.as_ref()));
        tracing::error!(session = %self.session_id, panic = %what, "a turn panicked");
        let event = ChatEvent::Error {
            kind: ErrorKind::Internal,
            message: format!(
                "the turn stopped on an internal error ({what}); what was saved before it is kept; \
                 this is a bug in ratchet: please report it, then send the prompt again"
            ),
        };
        let live = super::live::LiveEvent::Chat(event.clone());
        self.engine.live().publish(&self.session_id, self.turn_id, live);
        let _ = self.events.send(event).await;
    }
}

/// The message of a caught panic.
pub(super) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}

/// Counts identical failing calls; returns the tool name once one reaches the limit.
fn repeated_failure(
    calls: &[ToolCall],
    results: &[ToolResult],
    failures: &mut HashMap<String, usize>,
) -> Option<String> {
    for (call, result) in calls.iter().zip(results) {
        if !result.is_error {
            continue;
        }
        let key = format!("{}\u{0}{}", call.name, call.arguments);
        let n = failures.entry(key).or_default();
        *n += 1;
        if *n >= LOOP_LIMIT {
            return Some(call.name.clone());
        }
    }
    None
}

pub(super) fn failed(e: ProviderError) -> Ending {
    let kind = match e {
        ProviderError::Auth { .. } => ErrorKind::Auth,
        ProviderError::Config(_) => ErrorKind::Config,
        _ => ErrorKind::Provider,
    };
    Ending::Failed(kind, e.to_string())
}

fn stop_reason(finish: FinishReason) -> StopReason {
    match finish {
        FinishReason::Stop | FinishReason::ToolUse => StopReason::EndTurn,
        FinishReason::MaxTokens => StopReason::MaxTokens,
        FinishReason::Refusal => StopReason::Refusal,
    }
}

/// The model to ask: the session's own, unless it has none or belongs to another provider.
fn model_for(session: &SessionRecord, choice: &ProviderChoice) -> String {
    if session.model.is_empty() || session.provider != choice.label() {
        choice.model.clone()
    } else {
        session.model.clone()
    }
}

/// What the model is told for a stored tool call that has no stored result.
const INTERRUPTED: &str = "interrupted: ratchet stopped before this tool call's result was saved, so it may or \
                           may not have run; check its effect before running it again";

/// The conversation as the provider sees it.
///
/// Every provider rejects a tool call without a result right after it (and results that
/// answer no call), and such a history would fail every later turn of the session. A crash, or
/// a store error, between an answer and its results leaves exactly that, so it is repaired
/// here: a missing result becomes an "interrupted" error, and stray results are dropped.
pub(super) fn to_provider_messages(history: &[StoredMessage]) -> Vec<ProviderMessage> {
    let mut messages = Vec::with_capacity(history.len());
    let mut rest = history.iter().peekable();
    while let Some(m) = rest.next() {
        match m.role {
            Role::User => messages.push(ProviderMessage::User(m.content.clone())),
            Role::Assistant => {
                messages
                    .push(ProviderMessage::Assistant { content: m.content.clone(), tool_calls: m.tool_calls.clone() });
                if m.tool_calls.is_empty() {
                    continue;
                }
                let stored = match rest.next_if(|next| next.role == Role::Tool) {
                    Some(next) => next.tool_results.as_slice(),
                    None => &[],
                };
                let results = m
                    .tool_calls
                    .iter()
                    .map(|call| match stored.iter().find(|r| r.call_id == call.id) {
                        Some(result) => result.clone(),
                        None => ToolResult::new(call.id.clone(), INTERRUPTED, true),
                    })
                    .collect();
                messages.push(ProviderMessage::ToolResults(results));
            }
            // Results not right after the calls they answer (those are taken above).
            Role::Tool => {
                if !m.tool_results.is_empty() {
                    tracing::warn!(seq = m.seq, "skipping tool results that answer no preceding tool call");
                }
            }
        }
    }
    messages
}
