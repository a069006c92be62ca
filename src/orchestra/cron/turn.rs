//! One cron run: a `cron:<id>` job that sends the job's prompt as a turn of its session
//! through the engine's face, waiting while the session is busy (the run is delayed, never
//! dropped). The turn is an ordinary one: stored in the session's history, published to the
//! windows that follow the session, and a `/command` prompt runs as that command. Its
//! permission questions wait in the question queue (no editor asked for this turn).

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{CRON_BUSY_RETRY, CronJob};
use crate::engine::tools::NoHost;
use crate::engine::{ChatEvent, ContentPart, EngineError, PermissionAnswer, PermissionRequest, StopReason, TurnStream};
use crate::orchestra::Orchestra;
use crate::orchestra::ask::{Outcome, ask_person};
use crate::orchestra::jobs::{JobKind, JobSpec};
use crate::orchestra::questions::{Answer, NewQuestion, QuestionKind};

/// The prompt's length in a job's `detail`, for `ratchet jobs list`.
const DETAIL_CHARS: usize = 60;

/// How often a run re-opens a session that keeps being closed under it before giving up.
const MAX_OPENS: usize = 3;

/// Runs `job` once and records how it ended.
pub(super) async fn run(orchestra: &Orchestra, job: &CronJob) {
    let outcome = run_turn(orchestra, job).await;
    if let Err(e) = &outcome {
        tracing::warn!(job = job.id, session = %job.session_id, error = %e, "a cron run failed");
    }
    if let Err(e) = orchestra.inner.cron.store.finished(job.id, outcome.err()).await {
        tracing::warn!(job = job.id, error = %e, "cannot record how a cron run ended");
    }
}

async fn run_turn(orchestra: &Orchestra, job: &CronJob) -> Result<(), String> {
    let excerpt: String =
        job.prompt.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(DETAIL_CHARS).collect();
    let spec = JobSpec {
        kind: JobKind::Cron,
        key: job.id.to_string(),
        model: None,
        session_id: Some(job.session_id.clone()),
        detail: Some(format!("{}: {excerpt}", job.schedule)),
        pausable: false,
    };
    let handle = orchestra.inner.jobs.register(spec).await.map_err(|e| e.to_string())?;
    let token = handle.token().clone();
    let engine = orchestra.inner.engine.clone();
    let session = job.session_id.clone();
    let (mut turn, cwd) = start(orchestra, job, &token).await?;
    let mut stop_sent = false;
    loop {
        let event = tokio::select! {
            event = turn.events.recv() => event,
            () = token.cancelled(), if !stop_sent => {
                stop_sent = true;
                engine.cancel(session.clone()).await;
                continue;
            }
        };
        let Some(event) = event else { return Err("the turn ended without a result".into()) };
        match event {
            ChatEvent::PermissionRequest(q) => {
                let answer = ask_permission(orchestra, job, &q, &cwd, &token).await;
                engine.answer_permission(session.clone(), q.request_id, answer).await;
            }
            ChatEvent::Complete { stop } => {
                return match stop {
                    StopReason::EndTurn | StopReason::MaxTokens => Ok(()),
                    StopReason::Cancelled if handle.killed() => Err("killed (ratchet jobs kill)".into()),
                    StopReason::Cancelled => Err("cancelled".into()),
                    StopReason::MaxTurnRequests => Err("it reached the limit of model calls in one turn".into()),
                    StopReason::Refusal => Err("the model refused".into()),
                };
            }
            ChatEvent::Error { message, .. } => return Err(message),
            _ => {}
        }
    }
}

/// Starts the turn once the session is free, opening the session here if no one has it open.
/// Returns the turn and the session's directory.
async fn start(
    orchestra: &Orchestra,
    job: &CronJob,
    token: &CancellationToken,
) -> Result<(TurnStream, std::path::PathBuf), String> {
    let engine = &orchestra.inner.engine;
    let session = job.session_id.clone();
    let gone = |e: EngineError| match e {
        EngineError::NotFound(_) => {
            format!("its session {session} no longer exists; stop the job with `ratchet cron stop {}`", job.id)
        }
        e => e.to_string(),
    };
    let record = engine.session(session.clone()).await.map_err(gone)?;
    let (mut opens, mut said_busy) = (0, false);
    loop {
        let content = vec![ContentPart::text(job.prompt.clone())];
        match engine.send_message(session.clone(), content, Arc::new(NoHost)).await {
            Ok(turn) => return Ok((turn, record.cwd)),
            Err(EngineError::Busy(_)) => {
                if !said_busy {
                    said_busy = true;
                    tracing::info!(job = job.id, %session, "the session is busy; the cron run waits for its turn");
                }
                tokio::select! {
                    () = tokio::time::sleep(CRON_BUSY_RETRY) => {}
                    () = token.cancelled() => return Err("stopped before its session was free".into()),
                }
            }
            // Nobody has it open here: open it for the run. It stays open (a window may open
            // it meanwhile, and closing it would close it under that window).
            Err(EngineError::NotOpen(_)) if opens < MAX_OPENS => {
                opens += 1;
                engine
                    .open_session(session.clone(), record.cwd.clone(), record.additional_dirs.clone(), Vec::new())
                    .await
                    .map_err(gone)?;
            }
            Err(e) => return Err(gone(e)),
        }
    }
}

/// A permission question of a cron turn: there is no editor to ask, so it waits in the queue
/// (`ratchet questions answer`, autorespond rules) as long as the run does, or the
/// configured timeout; anything but an approval rejects the call.
async fn ask_permission(
    orchestra: &Orchestra,
    job: &CronJob,
    q: &PermissionRequest,
    cwd: &std::path::Path,
    cancel: &CancellationToken,
) -> PermissionAnswer {
    let by = format!("cron {}", job.id);
    let new = NewQuestion {
        session_id: job.session_id.clone(),
        kind: QuestionKind::Permission,
        title: format!("[{by}] {}", q.title),
        body: serde_json::json!({ "session_id": job.session_id, "request_id": q.request_id, "tool": q.tool, "by": by }),
        cwd: cwd.to_path_buf(),
    };
    let timeout = orchestra.inner.config.question_timeout;
    let no_editor = |_: &_| async { None::<PermissionAnswer> };
    let asked = ask_person(&orchestra.inner.questions, new, no_editor, |_| Answer::NoAnswer, cancel, timeout).await;
    match asked {
        Ok((_, Outcome::Queue(Answer::Approve { .. }, _))) => PermissionAnswer::AllowOnce,
        Ok((_, Outcome::Cancelled)) => PermissionAnswer::Cancelled,
        Ok(_) => PermissionAnswer::RejectOnce,
        Err(e) => {
            tracing::warn!(job = job.id, error = %e, "cannot queue a cron run's permission question; rejecting the call");
            PermissionAnswer::RejectOnce
        }
    }
}
