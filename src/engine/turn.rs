//! One turn: the user's message is already stored; call the model, run the tools it asks
//! for, feed their results back, and repeat until it answers without tools (or a limit).
//!
//! Every model answer and every batch of tool results is stored as it completes, so a crash
//! loses at most the call in flight. Cancellation drops the provider stream (aborting the HTTP
//! request) or stops the running tool; what was received is kept, marked as cancelled. The
//! final event is sent only after everything is stored.

use std::collections::HashMap;

use futures::StreamExt;

use super::commands::{self, Command};
use super::compact::{self, Compacted};
use super::content::{ContentPart, ToolCall, ToolResult, Usage};
use super::event::{ChatEvent, ErrorKind, StopReason};
use super::provider::{FinishReason, Provider, ProviderChoice, ProviderError, ProviderEvent, ProviderRequest};
use super::provider_messages::to_provider_messages;
use super::store::{MessageStatus, NewMessage, SessionPatch, SessionRecord};
use super::tool_call::ToolRunner;
use super::turn_context::TurnContext;
use super::{Mode, instructions, title};

/// A failing call repeated this many times with the same arguments ends the turn.
const LOOP_LIMIT: usize = 3;

/// One turn: what its tool calls share, and what it was asked.
pub(super) struct Turn {
    pub cx: TurnContext,
    pub first_prompt: bool,
    pub prompt: Vec<ContentPart>,
    pub action: Action,
    /// Holds the turn before its next model call while paused (`jobs pause`).
    pub pause: super::extension::PauseGate,
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
    /// A command of the layer above, run inside the turn (its text is the answer).
    Extension(super::extension::TurnCommand),
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
    pub async fn run(mut self) {
        if self.first_prompt {
            self.set_title().await;
        }
        if let Action::Extension(_) = &self.action {
            let Action::Extension(command) = std::mem::replace(&mut self.action, Action::Model) else { return };
            let cancel = self.cx.claim.token().clone();
            let text = command(self.cx.tool_turn(), cancel.clone()).await;
            let ending = if cancel.is_cancelled() {
                // What it had to say is kept, marked cancelled, like a cancelled model answer.
                let answer = Answer { text, ..Default::default() };
                match self.save_answer(&answer, MessageStatus::Cancelled).await {
                    Ok(()) => Ending::Cancelled,
                    Err(e) => Ending::Failed(ErrorKind::Store, e.to_string()),
                }
            } else {
                self.reply(text).await
            };
            return self.end(ending).await;
        }
        let ending = match &self.action {
            Action::Model => self.run_loop().await,
            Action::ModelAfterModeChange => {
                self.announce_session().await;
                self.run_loop().await
            }
            Action::Local(command) => self.run_command(command.clone()).await,
            Action::Reply(text) => self.reply(text.clone()).await,
            Action::Extension(_) => Ending::Finished(StopReason::EndTurn),
        };
        self.end(ending).await;
    }

    /// Sends the turn's last event.
    async fn end(&self, ending: Ending) {
        let last = match ending {
            Ending::Finished(stop) => ChatEvent::Complete { stop },
            Ending::Cancelled => ChatEvent::Complete { stop: StopReason::Cancelled },
            Ending::Failed(kind, message) => ChatEvent::Error { kind, message },
        };
        self.cx.emit(last).await;
    }

    /// A session last used with another provider takes the current one and its model (its
    /// old model name would mean nothing to the new provider).
    async fn follow_provider(&self, choice: &ProviderChoice) {
        if self.cx.session.provider == choice.label() {
            return;
        }
        let patch = SessionPatch {
            provider: Some(choice.label().to_string()),
            model: Some(choice.model.clone()),
            ..Default::default()
        };
        if let Err(e) = self.cx.engine.store().update_session(&self.cx.session.id, patch).await {
            tracing::warn!(error = %e, "cannot record the session's new provider");
        }
    }

    async fn set_title(&self) {
        let Some(title) = title::from_prompt(&self.prompt) else { return };
        let patch = SessionPatch { title: Some(title.clone()), ..Default::default() };
        match self.cx.engine.store().update_session(&self.cx.session.id, patch).await {
            Ok(_) => self.cx.emit(ChatEvent::TitleChanged(title)).await,
            Err(e) => tracing::warn!(error = %e, "cannot save the session title"),
        }
    }

    async fn run_loop(&self) -> Ending {
        let (choice, provider) = match self.cx.engine.provider_for(&self.cx.session).await {
            Ok(p) => p,
            Err(message) => return Ending::Failed(ErrorKind::Config, message),
        };
        if !self.cx.session.provider_pinned {
            self.follow_provider(&choice).await;
        }
        // Starting MCP servers may take up to their connect timeout; a cancel must not wait.
        let runner = tokio::select! {
            biased;
            () = self.cx.claim.token().cancelled() => return Ending::Cancelled,
            runner = ToolRunner::new(&self.cx) => match runner {
                Ok(r) => r,
                Err(e) => return Ending::Failed(ErrorKind::Store, e),
            },
        };
        let base_system = instructions::system_prompt(
            &self.cx.session,
            self.cx.engine.config(),
            &runner.sandbox(),
            self.cx.engine.instruction_files(),
        );
        let mut failures: HashMap<String, usize> = HashMap::new();
        let cap = self.cx.session.agent.as_ref().and_then(|a| a.max_turn_requests);
        for _ in 0..cap.unwrap_or_else(|| self.cx.engine.config().max_turn_requests()) {
            let session = match self.cx.engine.session(&self.cx.session.id).await {
                Ok(s) => s,
                Err(e) => return Ending::Failed(ErrorKind::Store, e.to_string()),
            };
            if self.pause.is_paused() {
                tracing::info!(session = %session.id, "turn paused before its next model call");
                self.pause.wait(self.cx.claim.token()).await;
                if self.cx.claim.token().is_cancelled() {
                    return Ending::Cancelled;
                }
            }
            let model = model_for(&session, &choice);
            let mut context = match compact::context(&self.cx.engine, &self.cx.session.id).await {
                Ok(c) => c,
                Err(e) => return Ending::Failed(ErrorKind::Store, e.to_string()),
            };
            if self.compact_if_full(&context, provider.as_ref(), &model).await {
                context = match compact::context(&self.cx.engine, &self.cx.session.id).await {
                    Ok(c) => c,
                    Err(e) => return Ending::Failed(ErrorKind::Store, e.to_string()),
                };
            }
            let system = match &context.summary {
                Some(s) => format!("{base_system}\n\n# Summary of the earlier conversation\n\n{s}"),
                None => base_system.clone(),
            };
            let read_only = session.mode == Mode::Plan;
            let request = ProviderRequest {
                model,
                system: Some(system),
                messages: to_provider_messages(context.history()),
                tools: runner.specs(read_only),
                max_tokens: self.cx.engine.config().max_tokens(),
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
                let context_window = self.cx.engine.config().context_window();
                self.cx.emit(ChatEvent::Usage { usage, context_window }).await;
            }
            let finish = match streamed {
                Ok(f) => f,
                Err(ending) => return ending,
            };
            if answer.tool_calls.is_empty() {
                return Ending::Finished(stop_reason(finish));
            }
            let (results, cancelled) = runner.run_all(&self.cx, &answer.tool_calls).await;
            let message = NewMessage {
                status: if cancelled { MessageStatus::Cancelled } else { MessageStatus::Complete },
                ..NewMessage::tool(results.clone())
            };
            if let Err(e) = self.cx.engine.store().append_message(&self.cx.session.id, message).await {
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
                self.cx.emit(ChatEvent::TextDelta(note.clone())).await;
                let _ = self.save_answer(&Answer { text: note, ..Default::default() }, MessageStatus::Complete).await;
                return Ending::Finished(StopReason::EndTurn);
            }
        }
        Ending::Finished(StopReason::MaxTurnRequests)
    }

    /// Compacts the history first when the last model call filled the context window past
    /// the configured fraction. True if it compacted (the context is then read again).
    async fn compact_if_full(&self, context: &compact::Context, provider: &dyn Provider, model: &str) -> bool {
        let threshold = self.cx.engine.config().compact_threshold();
        if threshold <= 0.0 {
            return false;
        }
        let used = context.history().iter().rev().find_map(|m| m.usage).map(|u| u.total()).unwrap_or(0);
        let window = self.cx.engine.config().context_window();
        if (used as f64) < threshold * window as f64 {
            return false;
        }
        self.cx.engine.notify(super::extension::SessionNotice::TokenLimit {
            session: self.cx.session.clone(),
            used_tokens: used,
            context_window: window,
        });
        match compact::compact(&self.cx.engine, &self.cx.session.id, provider, model, self.cx.claim.token()).await {
            Ok(Compacted::Summarised { messages }) => {
                tracing::info!(messages, "compacted the history automatically");
                self.cx
                    .emit(ChatEvent::ThoughtDelta(format!(
                        "(Compacted {messages} older messages into a summary to free context.)\n"
                    )))
                    .await;
                true
            }
            Ok(Compacted::Nothing) => false,
            Err(e) => {
                tracing::warn!(error = %e, "automatic compaction failed");
                false
            }
        }
    }

    /// Runs a command the engine answers itself.
    async fn run_command(&self, command: Command) -> Ending {
        let id = &self.cx.session.id;
        let text = match command {
            Command::Help => commands::help_text(&self.cx.engine.extension_commands()),
            Command::Clear => {
                let ending = self
                    .reply(
                        "Context cleared. Earlier messages stay in the history; the model no longer sees them.".into(),
                    )
                    .await;
                if let Err(e) = compact::clear(&self.cx.engine, id).await {
                    return Ending::Failed(ErrorKind::Store, e.to_string());
                }
                return ending;
            }
            Command::Compact => {
                let (choice, provider) = match self.cx.engine.provider_for(&self.cx.session).await {
                    Ok(p) => p,
                    Err(message) => return Ending::Failed(ErrorKind::Config, message),
                };
                let model = model_for(&self.cx.session, &choice);
                match compact::compact(&self.cx.engine, id, provider.as_ref(), &model, self.cx.claim.token()).await {
                    Ok(Compacted::Summarised { messages }) => {
                        format!("Compacted {messages} older messages into a summary.")
                    }
                    Ok(Compacted::Nothing) => "Nothing to compact yet: the conversation is still short.".into(),
                    Err(e) if self.cx.claim.token().is_cancelled() => {
                        tracing::debug!(error = %e, "compaction cancelled");
                        return Ending::Cancelled;
                    }
                    Err(e) => format!("Compaction failed: {e}"),
                }
            }
            Command::Model(None) => {
                let options = self.cx.engine.model_options(&self.cx.session.model);
                format!("Model: `{}`. Configured models: {}.", self.cx.session.model, options.join(", "))
            }
            Command::Model(Some(name)) => match self.cx.engine.set_model(id, &name).await {
                Ok(_) => {
                    self.announce_session().await;
                    format!("Model set to `{name}`.")
                }
                Err(e) => return Ending::Failed(ErrorKind::Store, e.to_string()),
            },
            Command::Mode(None) => commands::mode_text(self.cx.session.mode),
            Command::Mode(Some(name)) => match self.cx.engine.set_mode(id, &name).await {
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
        self.cx.emit(ChatEvent::TextDelta(text.clone())).await;
        match self.save_answer(&Answer { text, ..Default::default() }, MessageStatus::Complete).await {
            Ok(()) => Ending::Finished(StopReason::EndTurn),
            Err(e) => Ending::Failed(ErrorKind::Store, e.to_string()),
        }
    }

    /// Tells front ends the session's mode or model changed.
    async fn announce_session(&self) {
        if let Ok(s) = self.cx.engine.session(&self.cx.session.id).await {
            self.cx.emit(ChatEvent::SessionChanged { mode: s.mode, model: s.model }).await;
        }
    }

    /// Streams one model call into `answer`, forwarding deltas.
    async fn stream_answer(
        &self,
        provider: &dyn Provider,
        request: ProviderRequest,
        answer: &mut Answer,
    ) -> Result<FinishReason, Ending> {
        let token = self.cx.claim.token().clone();
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
                    self.cx.emit(ChatEvent::TextDelta(t)).await;
                }
                Some(Ok(ProviderEvent::ThoughtDelta(t))) => {
                    answer.thought.push_str(&t);
                    self.cx.emit(ChatEvent::ThoughtDelta(t)).await;
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
        self.cx.engine.store().append_message(&self.cx.session.id, message).await.map(|_| ())
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
    if session.provider_pinned && !session.model.is_empty() {
        return session.model.clone();
    }
    if session.model.is_empty() || session.provider != choice.label() {
        choice.model.clone()
    } else {
        session.model.clone()
    }
}
