//! Plan steps and tasks link to each other: once a plan is approved, each of its steps has a
//! task (`plan_id`, `step_id`), and every save of the plan brings those tasks' status (and,
//! while a worker runs the step, their claim) up to date, in the save's own transaction, so
//! the tracker never disagrees with the plan. A proposed or rejected plan has no tasks: until
//! a person approves it, nobody is to do its steps.
//!
//! A step's task belongs to the project of the session that proposed the plan, if any.

use rusqlite::{OptionalExtension, Transaction, params};

use super::{MAX_TITLE_CHARS, TaskStatus, one_line};
use crate::orchestra::db::{DbError, now_ms};
use crate::orchestra::plan::{PlanStatus, StepStatus};
use crate::orchestra::plans::StoredPlan;

/// The status a step's task has: the step's, in the tracker's words; a step left pending by
/// a cancelled plan will not run, so its task is cancelled.
pub fn task_status(step: &StepStatus, plan: &PlanStatus) -> TaskStatus {
    match step {
        StepStatus::Pending if *plan == PlanStatus::Cancelled => TaskStatus::Cancelled,
        StepStatus::Pending => TaskStatus::Open,
        StepStatus::InProgress => TaskStatus::InProgress,
        StepStatus::Completed => TaskStatus::Done,
        StepStatus::Failed { .. } => TaskStatus::Failed,
        StepStatus::Skipped => TaskStatus::Cancelled,
    }
}

/// Creates the missing tasks of an approved plan's steps and updates the others (called by
/// `PlanStore::save` inside its transaction). A plan cancelled before approval gets none.
pub fn sync(tx: &Transaction<'_>, stored: &StoredPlan) -> Result<(), DbError> {
    let create = match stored.plan.status {
        PlanStatus::Proposed | PlanStatus::Rejected { .. } => return Ok(()),
        // Cancelled: approved and then stopped (its tasks exist), or never approved (none).
        PlanStatus::Cancelled => false,
        PlanStatus::Approved | PlanStatus::Executing | PlanStatus::Completed | PlanStatus::Failed => true,
    };
    let project = if create { session_project(tx, &stored.session_id)? } else { None };
    let now = now_ms();
    for step in &stored.plan.steps {
        let status = task_status(&step.status, &stored.plan.status);
        // The worker's job holds the claim while it runs the step.
        let worker = match step.status {
            StepStatus::InProgress => {
                stored.runs.get(&step.id).and_then(|r| r.worker_session.as_ref()).map(|s| format!("fleet_worker:{s}"))
            }
            _ => None,
        };
        let existing: Option<(i64, String, Option<String>)> = tx
            .prepare_cached("SELECT id, status, claimed_by FROM tasks WHERE plan_id = ?1 AND step_id = ?2")?
            .query_row(params![stored.id, step.id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        match existing {
            None if create => {
                let title = step_title(&stored.id, &step.id, &step.description);
                tx.prepare_cached(
                    "INSERT INTO tasks (title, description, status, claimed_by, claimed_at, project, plan_id,
                     step_id, created_by, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
                )?
                .execute(params![
                    title,
                    step.description,
                    status.as_str(),
                    worker,
                    worker.as_ref().map(|_| now),
                    project,
                    stored.id,
                    step.id,
                    format!("plan {}", stored.id),
                    now,
                ])?;
            }
            None => {}
            Some((id, old, claim)) => {
                let claim_changes = worker.is_some() && worker != claim;
                if old != status.as_str() || claim_changes {
                    tx.prepare_cached(
                        "UPDATE tasks SET status = ?1, updated_at = ?2,
                         claimed_at = CASE WHEN ?3 IS NOT NULL AND claimed_by IS NOT ?3 THEN ?2 ELSE claimed_at END,
                         claimed_by = COALESCE(?3, claimed_by)
                         WHERE id = ?4",
                    )?
                    .execute(params![status.as_str(), now, worker, id])?;
                }
            }
        }
    }
    Ok(())
}

/// The project whose session `session_id` is (`Orchestra::open_project_session` attaches it).
fn session_project(tx: &Transaction<'_>, session_id: &str) -> Result<Option<String>, DbError> {
    Ok(tx
        .prepare_cached("SELECT project FROM project_jobs WHERE job_id = ?1 ORDER BY attached_at DESC LIMIT 1")?
        .query_row([format!("session:{session_id}")], |r| r.get(0))
        .optional()?)
}

/// `p3 s1: <the description's first line>`, cut to [`MAX_TITLE_CHARS`].
fn step_title(plan: &str, step: &str, description: &str) -> String {
    let first = one_line(description.lines().next().unwrap_or(""));
    let title = format!("{plan} {step}: {first}");
    if title.chars().count() <= MAX_TITLE_CHARS {
        return title;
    }
    let mut cut: String = title.chars().take(MAX_TITLE_CHARS - 1).collect();
    cut.push('…');
    cut
}
