//! The fleet: an approved plan's steps run by workers, at most `[fleet] max_workers` at a
//! time for the whole engine (one pool, shared by every plan and every window of a daemon).
//!
//! A worker is an ordinary engine session, a child of the prompting session, running the full
//! agent loop with tools on a prompt made of the plan's goal and its own step (`worker`). The
//! plan's coordinator ([`run_plan`]) owns the plan: it starts the steps that are ready (their
//! dependencies done), records each state change in the database, shows the steps as ACP plan
//! entries and each worker as a tool call of the prompting turn, and returns a summary per
//! step for the model. The prompting turn stays open until every worker has ended.

mod worker;

use std::collections::HashSet;
use std::sync::Arc;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use tokio::sync::{AcquireError, OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinSet;

use super::Orchestra;
use super::hooks::{EventData, HookEvent};
use super::plan::{Complexity, PlanStatus, Step, StepStatus};
use super::plans::{StepRun, StoredPlan};
use crate::engine::tools::{Display, PlanEntry, PlanPriority, PlanStatus as EntryStatus, ToolContext, ToolKind};
use crate::engine::{ChatEvent, ToolCallChange, ToolCallStart, ToolCallStatus};

/// Notes buffered from workers to their plan's coordinator. Workers wait when it is full, so
/// a slow front end slows the workers' reports rather than growing memory.
const WORKER_NOTES: usize = 64;

/// One worker pool per engine.
pub struct Fleet {
    permits: Arc<Semaphore>,
    max_workers: usize,
}

impl Fleet {
    pub fn new(max_workers: usize) -> Fleet {
        Fleet { permits: Arc::new(Semaphore::new(max_workers)), max_workers }
    }

    /// Workers that may run at once.
    pub fn max_workers(&self) -> usize {
        self.max_workers
    }

    /// Workers running now.
    pub fn running(&self) -> usize {
        self.max_workers - self.permits.available_permits()
    }

    /// Joins the queue for a slot now, so slots go to steps in the order they were launched
    /// (the semaphore is FIFO among waiters that have been polled; spawned tasks are not
    /// polled in spawn order).
    fn queue_for_slot(&self) -> SlotRequest {
        let mut acquire: SlotFuture = Box::pin(self.permits.clone().acquire_owned());
        let mut cx = Context::from_waker(Waker::noop());
        match acquire.as_mut().poll(&mut cx) {
            Poll::Ready(got) => SlotRequest::Ready(got),
            Poll::Pending => SlotRequest::Queued(acquire),
        }
    }
}

type SlotFuture = Pin<Box<dyn Future<Output = Result<OwnedSemaphorePermit, AcquireError>> + Send>>;

/// A worker's place in the queue for a pool slot.
enum SlotRequest {
    Ready(Result<OwnedSemaphorePermit, AcquireError>),
    Queued(SlotFuture),
}

impl SlotRequest {
    async fn granted(self) -> Result<OwnedSemaphorePermit, AcquireError> {
        match self {
            SlotRequest::Ready(got) => got,
            SlotRequest::Queued(acquire) => acquire.await,
        }
    }
}

/// What a worker tells its coordinator.
enum Note {
    /// The step got a worker (a pool slot and a session).
    Started { step: String, worker_session: String, model: String },
}

/// How a worker ended.
struct Finished {
    step: String,
    run: StepRun,
    outcome: Result<(), String>,
}

/// Runs an executing plan to its end; returns it as it ended. `cx` is the prompting turn's
/// tool context (its cancel token stops the fleet), `call_id` the `propose_plan` call.
pub(super) async fn run_plan(
    orchestra: &Orchestra,
    cx: &ToolContext,
    call_id: &str,
    mut stored: StoredPlan,
) -> StoredPlan {
    let session = cx.turn.session_id().to_string();
    let fire = |data: EventData| orchestra.inner.hooks.fire(HookEvent::in_session(&session, &cx.cwd, data));
    let steps = stored.plan.steps.iter().filter(|s| s.status != StepStatus::Skipped).map(|s| s.id.clone()).collect();
    fire(EventData::FleetStart { plan_id: stored.id.clone(), steps });
    let (notes_tx, mut notes) = mpsc::channel(WORKER_NOTES);
    let mut running: JoinSet<Finished> = JoinSet::new();
    let mut launched: HashSet<String> = HashSet::new();
    let cancel = cx.cancel.clone();
    launch_ready(orchestra, cx, call_id, &stored, &mut launched, &mut running, &notes_tx);
    while !running.is_empty() {
        tokio::select! {
            // The cancel first: a worker stopped by it ends right after it fired, and taking
            // that worker's end first would fail the step (and its dependents) as an ordinary
            // failure, and could end the loop with the plan still `executing` in the database.
            biased;
            () = cancel.cancelled(), if stored.plan.status == PlanStatus::Executing => {
                // Workers watch the same token and stop; their ends are still collected.
                let _ = stored.plan.cancel();
                save_and_show(orchestra, cx, &stored).await;
            }
            Some(note) = notes.recv() => match note {
                Note::Started { step, worker_session, model } => {
                    if stored.plan.step_started(&step).is_ok() {
                        let run = stored.runs.entry(step.clone()).or_default();
                        run.worker_session = Some(worker_session);
                        run.model = Some(model);
                        save_and_show(orchestra, cx, &stored).await;
                    }
                }
            },
            Some(done) = running.join_next() => {
                let done = match done {
                    Ok(d) => d,
                    Err(e) => {
                        tracing::error!(error = %e, "a fleet worker task failed");
                        continue;
                    }
                };
                let run = stored.runs.entry(done.step.clone()).or_default();
                let (session, model) = (run.worker_session.take(), run.model.take());
                *run = StepRun { worker_session: session.or(done.run.worker_session), model: model.or(done.run.model), ..done.run };
                // A step that never got its slot (cancelled while waiting) is still pending.
                let was_running = stored.plan.steps.iter().any(|s| s.id == done.step && s.status == StepStatus::InProgress);
                if was_running {
                    let _ = stored.plan.step_finished(&done.step, done.outcome);
                }
                save_and_show(orchestra, cx, &stored).await;
                launch_ready(orchestra, cx, call_id, &stored, &mut launched, &mut running, &notes_tx);
            }
        }
    }
    // Steps that could never start (a dependency failed) were failed by the plan itself.
    save_and_show(orchestra, cx, &stored).await;
    fire(EventData::FleetEnd { plan_id: stored.id.clone(), status: stored.plan.status_label().to_string() });
    stored
}

/// Starts a worker for every ready step not started yet.
fn launch_ready(
    orchestra: &Orchestra,
    cx: &ToolContext,
    call_id: &str,
    stored: &StoredPlan,
    launched: &mut HashSet<String>,
    running: &mut JoinSet<Finished>,
    notes: &mpsc::Sender<Note>,
) {
    for step in stored.plan.ready_steps() {
        if !launched.insert(step.id.clone()) {
            continue;
        }
        let job = worker::Worker {
            orchestra: orchestra.clone(),
            turn: cx.turn.clone(),
            cancel: cx.cancel.clone(),
            cwd: cx.cwd.clone(),
            parent_session: cx.turn.session_id().to_string(),
            plan_id: stored.id.clone(),
            goal: stored.plan.goal.clone(),
            step: step.clone(),
            call_id: worker_call_id(call_id, &step.id),
            notes: notes.clone(),
        };
        running.spawn(job.run(orchestra.inner.fleet.queue_for_slot()));
    }
}

/// The tool call id a step's worker is shown under.
pub fn worker_call_id(call_id: &str, step: &str) -> String {
    format!("{call_id}:{step}")
}

async fn save_and_show(orchestra: &Orchestra, cx: &ToolContext, stored: &StoredPlan) {
    if let Err(e) = orchestra.inner.plans.save(stored).await {
        tracing::warn!(error = %e, plan = %stored.id, "cannot save the plan");
    }
    cx.turn.emit(ChatEvent::Plan(plan_entries(stored))).await;
}

/// The plan as ACP plan entries: one per step, its id first. ACP knows only pending, in
/// progress and completed, so failed and skipped steps are completed entries that say so.
pub fn plan_entries(stored: &StoredPlan) -> Vec<PlanEntry> {
    stored
        .plan
        .steps
        .iter()
        .map(|s| {
            let (status, mark) = match &s.status {
                StepStatus::Pending => (EntryStatus::Pending, String::new()),
                StepStatus::InProgress => (EntryStatus::InProgress, String::new()),
                StepStatus::Completed => (EntryStatus::Completed, String::new()),
                StepStatus::Failed { reason } => (EntryStatus::Completed, format!(" — failed: {reason}")),
                StepStatus::Skipped => (EntryStatus::Completed, " — skipped".to_string()),
            };
            let model = stored.runs.get(&s.id).and_then(|r| r.model.as_deref());
            let model = model.map(|m| format!(" [{m}]")).unwrap_or_default();
            PlanEntry { content: format!("{}: {}{model}{mark}", s.id, s.description), priority: priority(s), status }
        })
        .collect()
}

fn priority(step: &Step) -> PlanPriority {
    match step.complexity {
        Complexity::Complex => PlanPriority::High,
        Complexity::Review => PlanPriority::Medium,
        Complexity::Simple => PlanPriority::Low,
    }
}

/// What the model gets back once the fleet ended: one line per step, and why failures failed.
pub fn summary(stored: &StoredPlan) -> String {
    let plan = &stored.plan;
    let mut out = format!("Plan {} {} ({}).\n", stored.id, plan.status_label(), plan.goal);
    for s in &plan.steps {
        let run = stored.runs.get(&s.id);
        let model = run.and_then(|r| r.model.as_deref()).unwrap_or("-");
        let tokens = run.map(|r| format!("{} in / {} out tokens", r.input_tokens, r.output_tokens)).unwrap_or_default();
        let line = match &s.status {
            StepStatus::Completed => {
                let said = run.and_then(|r| r.summary.as_deref()).unwrap_or("").trim();
                format!("- {} completed ({model}, {tokens}): {}", s.id, one_paragraph(said))
            }
            StepStatus::Failed { reason } => format!("- {} FAILED ({model}): {reason}", s.id),
            StepStatus::Skipped => format!("- {} skipped by the user", s.id),
            StepStatus::Pending => format!("- {} not run", s.id),
            StepStatus::InProgress => format!("- {} still running", s.id),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// A worker's final answer, shortened for the summary.
fn one_paragraph(text: &str) -> String {
    const MAX: usize = 600;
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}…", &flat[..end]),
        None => flat,
    }
}

/// Announces a worker's tool call (pending until it gets a slot).
async fn announce(cx: &dyn crate::engine::turn_scope::TurnScope, call_id: &str, step: &Step, plan_id: &str) {
    cx.emit(ChatEvent::ToolCallStarted(ToolCallStart {
        id: call_id.to_string(),
        name: "fleet_worker".into(),
        title: format!("Worker · {}: {}", step.id, first_line(&step.description)),
        kind: ToolKind::Other,
        arguments: serde_json::json!({ "plan": plan_id, "step": step.id, "description": step.description }),
        locations: Vec::new(),
        display: vec![Display::Text("waiting for a free worker".into())],
    }))
    .await;
}

/// Updates a tool call of the prompting turn (a worker's, or the `propose_plan` call itself).
pub(super) async fn show(
    cx: &dyn crate::engine::turn_scope::TurnScope,
    call_id: &str,
    status: ToolCallStatus,
    text: String,
    output: Option<String>,
) {
    cx.emit(ChatEvent::ToolCallUpdated(ToolCallChange {
        id: call_id.to_string(),
        status,
        display: Some(vec![Display::Text(text)]),
        locations: None,
        output,
    }))
    .await;
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("").trim()
}
