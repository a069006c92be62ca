//! One turn: the user's message is already stored; call the model, stream its answer as
//! [`ChatEvent`]s, store what came back, end with `Complete` or `Error`.
//!
//! Cancellation drops the provider stream (which aborts the HTTP request) and keeps what was
//! received, marked as cancelled. The final event is sent only after the answer is stored,
//! so whatever a front end acknowledges is durable.

use futures::StreamExt;
use tokio::sync::mpsc;

use super::content::{ContentPart, ToolCall, Usage};
use super::event::{ChatEvent, ErrorKind, StopReason};
use super::provider::{FinishReason, ProviderError, ProviderEvent, ProviderMessage, ProviderRequest};
use super::session::TurnClaim;
use super::store::{MessageStatus, NewMessage, SessionPatch, SessionRecord, StoredMessage};
use super::{Engine, Role, title};

pub(super) struct Turn {
    pub engine: Engine,
    pub session: SessionRecord,
    pub claim: TurnClaim,
    pub events: mpsc::Sender<ChatEvent>,
    pub first_prompt: bool,
    pub prompt: Vec<ContentPart>,
}

/// What one model call produced.
#[derive(Default)]
struct Answer {
    text: String,
    thought: String,
    signature: Option<String>,
    tool_calls: Vec<ToolCall>,
    usage: Option<Usage>,
    finish: Option<FinishReason>,
}

/// How the streaming part of a turn ended.
enum Ending {
    Finished(FinishReason),
    Cancelled,
    Failed(ErrorKind, String),
}

impl Turn {
    pub async fn run(self) {
        if self.first_prompt {
            self.set_title().await;
        }
        let mut answer = Answer::default();
        let ending = self.call_model(&mut answer).await;
        let status = match ending {
            Ending::Finished(_) => MessageStatus::Complete,
            Ending::Cancelled => MessageStatus::Cancelled,
            Ending::Failed(..) => MessageStatus::Error,
        };
        if let Err(e) = self.save_answer(&answer, status).await {
            self.emit(ChatEvent::Error {
                kind: ErrorKind::Store,
                message: format!("cannot save the answer: {e}"),
            })
            .await;
            return;
        }
        if let Some(usage) = answer.usage {
            let context_window = self.engine.config().context_window();
            self.emit(ChatEvent::Usage { usage, context_window }).await;
        }
        let last = match ending {
            Ending::Finished(finish) => ChatEvent::Complete { stop: stop_reason(finish) },
            Ending::Cancelled => ChatEvent::Complete { stop: StopReason::Cancelled },
            Ending::Failed(kind, message) => ChatEvent::Error { kind, message },
        };
        self.emit(last).await;
    }

    /// Sends an event; a front end that went away does not stop the turn.
    async fn emit(&self, event: ChatEvent) {
        let _ = self.events.send(event).await;
    }

    async fn set_title(&self) {
        let Some(title) = title::from_prompt(&self.prompt) else { return };
        let patch = SessionPatch { title: Some(title.clone()), ..Default::default() };
        match self.engine.store().update_session(&self.session.id, patch).await {
            Ok(_) => self.emit(ChatEvent::TitleChanged(title)).await,
            Err(e) => tracing::warn!(error = %e, "cannot save the session title"),
        }
    }

    async fn call_model(&self, answer: &mut Answer) -> Ending {
        let token = self.claim.token().clone();
        let (choice, provider) = match self.engine.provider().await {
            Ok(p) => p,
            Err(message) => return Ending::Failed(ErrorKind::Config, message),
        };
        let history = match self.engine.store().messages(&self.session.id).await {
            Ok(h) => h,
            Err(e) => return Ending::Failed(ErrorKind::Store, e.to_string()),
        };
        let model = if self.session.model.is_empty() { choice.model.clone() } else { self.session.model.clone() };
        let request = ProviderRequest {
            model,
            system: Some(system_prompt(&self.session)),
            messages: to_provider_messages(&history),
            tools: Vec::new(),
            max_tokens: self.engine.config().max_tokens(),
        };
        let mut stream = tokio::select! {
            biased;
            () = token.cancelled() => return Ending::Cancelled,
            started = provider.stream(request) => match started {
                Ok(s) => s,
                Err(e) => return failed(e),
            },
        };
        loop {
            let next = tokio::select! {
                biased;
                () = token.cancelled() => return Ending::Cancelled,
                next = stream.next() => next,
            };
            match next {
                Some(Ok(event)) => {
                    if let Some(ending) = self.on_event(event, answer).await {
                        return ending;
                    }
                }
                Some(Err(e)) => return failed(e),
                None => {
                    return answer.finish.map(Ending::Finished).unwrap_or_else(|| {
                        Ending::Failed(ErrorKind::Provider, format!("{} ended the stream without finishing the answer", provider.name()))
                    });
                }
            }
        }
    }

    async fn on_event(&self, event: ProviderEvent, answer: &mut Answer) -> Option<Ending> {
        match event {
            ProviderEvent::TextDelta(t) => {
                answer.text.push_str(&t);
                self.emit(ChatEvent::TextDelta(t)).await;
            }
            ProviderEvent::ThoughtDelta(t) => {
                answer.thought.push_str(&t);
                self.emit(ChatEvent::ThoughtDelta(t)).await;
            }
            ProviderEvent::ThoughtSignature(s) => answer.signature = Some(s),
            ProviderEvent::ToolCall(call) => answer.tool_calls.push(call),
            ProviderEvent::Usage(u) => answer.usage = Some(u),
            ProviderEvent::Finish(f) => {
                answer.finish = Some(f);
                return Some(Ending::Finished(f));
            }
        }
        None
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
        let message = NewMessage {
            role: Role::Assistant,
            content,
            tool_calls: answer.tool_calls.clone(),
            tool_results: Vec::new(),
            usage: answer.usage,
            status,
        };
        self.engine.store().append_message(&self.session.id, message).await.map(|_| ())
    }
}

fn failed(e: ProviderError) -> Ending {
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

/// The conversation as the provider sees it.
pub(super) fn to_provider_messages(history: &[StoredMessage]) -> Vec<ProviderMessage> {
    history
        .iter()
        .filter_map(|m| match m.role {
            Role::User => Some(ProviderMessage::User(m.content.clone())),
            Role::Assistant => Some(ProviderMessage::Assistant {
                content: m.content.clone(),
                tool_calls: m.tool_calls.clone(),
            }),
            Role::Tool if !m.tool_results.is_empty() => Some(ProviderMessage::ToolResults(m.tool_results.clone())),
            Role::Tool => None,
        })
        .collect()
}

fn system_prompt(session: &SessionRecord) -> String {
    format!(
        "You are ratchet, an AI coding agent working inside the user's editor.\n\
         The user's project is at {}.\n\
         Answer concisely and use Markdown for code.",
        session.cwd.display()
    )
}
