//! Asking a person, once, whoever answers first: the question goes into the durable queue
//! (where `ratchet questions answer`, `ratchet plans approve`, `/approve` and the project's
//! autorespond rules answer it) and, at the same time, to the prompting editor. The first
//! answer wins (the queue decides, across processes); the editor's dialog is withdrawn when
//! another answer came first. With no timeout configured the question waits as long as its
//! turn runs; a timeout answers `NoAnswer`, never "allow".

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::autorespond::{self, Decision};
use super::questions::{Answer, AnsweredBy, NewQuestion, QuestionQueue, QuestionRecord};

/// How a question ended.
pub enum Outcome<T> {
    /// The editor answered first, with this (its own form of the answer, e.g. "allow always").
    Editor(T),
    /// The queue had an answer first (CLI, rule, timeout).
    Queue(Answer, AnsweredBy),
    /// The turn was cancelled first; the question is withdrawn.
    Cancelled,
}

/// Asks `new` and waits. `editor` makes the editor's dialog once the question is queued (it
/// gets the record, e.g. to show its id): `None` when the editor cannot answer (no dialog
/// for this form, or the window closed); `to_answer` turns its answer into the queue's form
/// for the record. Returns the record and the outcome.
pub async fn ask_person<T, F>(
    queue: &QuestionQueue,
    new: NewQuestion,
    editor: impl FnOnce(&QuestionRecord) -> F,
    to_answer: fn(&T) -> Answer,
    cancel: &CancellationToken,
    timeout: Option<Duration>,
) -> Result<(QuestionRecord, Outcome<T>), String>
where
    F: Future<Output = Option<T>>,
{
    let (kind, title, cwd) = (new.kind, new.title.clone(), new.cwd.clone());
    let record = queue.ask(new).await.map_err(|e| e.to_string())?;
    match autorespond::load(&cwd) {
        Ok(Some(rules)) => {
            if let Some(Decision::Answer { answer, rule }) = rules.decide(kind, &title) {
                tracing::info!(question = %record.id, %rule, "answered by an autorespond rule");
                queue.answer(&record.id, answer, AnsweredBy::Rule(rule)).await.map_err(|e| e.to_string())?;
            }
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "ignoring the autorespond rules"),
    }
    let id = record.id.clone();
    let waited = queue.wait(&id, cancel, timeout);
    tokio::pin!(waited);
    let dialog = editor(&record);
    let editor = async move {
        match dialog.await {
            Some(answer) => answer,
            // The editor cannot answer: only the queue can.
            None => std::future::pending().await,
        }
    };
    tokio::pin!(editor);
    let outcome = tokio::select! {
        biased;
        queued = &mut waited => match queued.map_err(|e| e.to_string())? {
            Some((answer, by)) => Outcome::Queue(answer, by),
            None => {
                let _ = queue.withdraw(&record.id).await;
                Outcome::Cancelled
            }
        },
        answer = &mut editor => {
            if queue.answer(&record.id, to_answer(&answer), AnsweredBy::Editor).await.map_err(|e| e.to_string())? {
                Outcome::Editor(answer)
            } else {
                // Someone else's answer was recorded first: it wins.
                match queue.get(&record.id).await.map_err(|e| e.to_string())? {
                    Some(QuestionRecord { answer: Some(a), answered_by: Some(by), .. }) => Outcome::Queue(a, by),
                    _ => Outcome::Editor(answer),
                }
            }
        }
    };
    Ok((record, outcome))
}
