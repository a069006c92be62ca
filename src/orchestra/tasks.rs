//! The task tracker: work items in the orchestra's database that agents and people create,
//! claim, update and list (`task_*` tools, `ratchet tasks …`), shared by every ratchet process
//! on the data directory.
//!
//! **Claims.** A task is claimed by one holder at a time; a second claim fails, naming the
//! holder. A holder is a job id or a person's name. A model's claim is held by the job of the
//! turn that made it (`session:<id>` for a chat turn, `fleet_worker:<id>`, `team_agent:<id>`,
//! …): when that job is no longer in the job registry (its turn ended, it was killed, its
//! process died) the claim has lapsed, and the next claim releases it (with a note saying so).
//! So a chat session keeps a claim while its turn works on the task, and a team member for as
//! long as it runs. A person's claim (`ratchet tasks claim ID --as alice`) holds until the task
//! is reopened or finished.
//!
//! **Plan steps.** Once a plan is approved every step has a task (`plan_link`), kept in the
//! same transaction as the plan's save; such a task's status follows its step, so only its
//! notes can be changed by hand, and the fleet, not a claim, decides who works on it.
//!
//! **Projects.** A task may belong to a project; a paused or killed project's tasks cannot be
//! claimed, and neither can the agents of a paused project claim any (`projects`).

pub mod plan_link;
pub(super) mod tools;
mod types;

use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::db::{Db, DbError, now_ms};
use super::jobs::{JobId, JobRegistry};
pub use types::{
    Claimed, MAX_LIST, MAX_NOTES_BYTES, MAX_TEXT_BYTES, MAX_TITLE_CHARS, NewTask, StepLink, Task, TaskChange,
    TaskError, TaskFilter, TaskStatus,
};

/// The tasks table. `plan_id`/`step_id` link a task to a plan step (at most one task per
/// step); `claimed_by` is a job id or a person's name.
pub const SCHEMA: &str = "
CREATE TABLE tasks (
    id          INTEGER PRIMARY KEY,
    title       TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    status      TEXT NOT NULL CHECK (status IN ('open', 'in_progress', 'done', 'failed', 'cancelled')),
    notes       TEXT NOT NULL DEFAULT '',
    claimed_by  TEXT,
    claimed_at  INTEGER,
    project     TEXT,
    plan_id     TEXT,
    step_id     TEXT,
    created_by  TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE UNIQUE INDEX tasks_by_step ON tasks (plan_id, step_id) WHERE plan_id IS NOT NULL;
CREATE INDEX tasks_by_status ON tasks (status, id);
";

/// Columns read by [`read_task`], in its order.
const TASK_COLUMNS: &str = "id, title, description, status, notes, claimed_by, claimed_at, project, plan_id, \
                            step_id, created_by, created_at, updated_at";

/// How often a claim retries when another claim changed the task between its look and its
/// write: each retry means someone else won, so a few are plenty.
const CLAIM_ATTEMPTS: usize = 3;

/// Who claims a task: the holder, and the project its agent works for (whose pause stops it
/// taking new work).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimant {
    pub holder: String,
    pub project: Option<String>,
}

/// The tasks in the orchestra's database. Cheap to clone.
#[derive(Clone)]
pub struct TaskStore {
    db: Db,
    /// Which holders still run (a claim by a job that ended has lapsed).
    jobs: JobRegistry,
}

impl TaskStore {
    pub fn new(db: Db, jobs: JobRegistry) -> TaskStore {
        TaskStore { db, jobs }
    }

    /// Stores a new open task.
    pub async fn create(&self, new: NewTask) -> Result<Task, TaskError> {
        let title = one_line(&new.title);
        if title.is_empty() {
            return Err(TaskError::Invalid("a task needs a title: say in a few words what is to be done".into()));
        }
        if title.chars().count() > MAX_TITLE_CHARS {
            return Err(TaskError::Invalid(format!(
                "the title is longer than {MAX_TITLE_CHARS} characters; put the details in the description"
            )));
        }
        let description = new.description.trim().to_string();
        check_text("description", &description)?;
        let project = new.project.map(|p| p.trim().to_string()).filter(|p| !p.is_empty());
        let created_by = new.created_by;
        let rowid = self
            .db
            .call(move |conn| {
                let now = now_ms();
                conn.execute(
                    "INSERT INTO tasks (title, description, status, project, created_by, created_at, updated_at)
                     VALUES (?1, ?2, 'open', ?3, ?4, ?5, ?5)",
                    params![title, description, project, created_by, now],
                )?;
                Ok(conn.last_insert_rowid())
            })
            .await?;
        self.require(&format_id(rowid)).await
    }

    /// The task `t4` (or `4`); `None` if there is none.
    pub async fn get(&self, id: &str) -> Result<Option<Task>, TaskError> {
        let Some(rowid) = parse_id(id) else { return Ok(None) };
        Ok(self.db.call(move |conn| get_row(conn, rowid)).await?)
    }

    /// The task `id`, or [`TaskError::NoSuchTask`].
    pub async fn require(&self, id: &str) -> Result<Task, TaskError> {
        self.get(id).await?.ok_or_else(|| TaskError::NoSuchTask { id: id.trim().to_string() })
    }

    /// The tasks the filter lets through, oldest first (at most [`MAX_LIST`]).
    pub async fn list(&self, filter: TaskFilter) -> Result<Vec<Task>, TaskError> {
        Ok(self
            .db
            .call(move |conn| {
                let mut clauses = Vec::new();
                let mut values: Vec<String> = Vec::new();
                let mut bind = |clause: &str, value: String| {
                    values.push(value);
                    clauses.push(clause.replace('?', &format!("?{}", values.len())));
                };
                if let Some(status) = filter.status {
                    bind("status = ?", status.as_str().to_string());
                }
                if let Some(project) = filter.project {
                    bind("project = ?", project);
                }
                if let Some(holder) = filter.claimed_by {
                    bind("claimed_by = ?", holder);
                }
                if let Some(plan) = filter.plan_id {
                    bind("plan_id = ?", plan);
                }
                match filter.claimed {
                    Some(true) => clauses.push("claimed_by IS NOT NULL".into()),
                    Some(false) => clauses.push("claimed_by IS NULL".into()),
                    None => {}
                }
                let wheres =
                    if clauses.is_empty() { String::new() } else { format!("WHERE {}", clauses.join(" AND ")) };
                let sql = format!("SELECT {TASK_COLUMNS} FROM tasks {wheres} ORDER BY id LIMIT {MAX_LIST}");
                let mut stmt = conn.prepare_cached(&sql)?;
                let rows = stmt.query_map(rusqlite::params_from_iter(values.iter()), read_task)?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await?)
    }

    /// Claims task `id` for `who` and marks it in progress. Fails if another holder that
    /// still runs has it; a claim whose job has ended is released (and noted on the task).
    /// Claiming a task one already holds is a no-op.
    pub async fn claim(&self, id: &str, who: Claimant) -> Result<Claimed, TaskError> {
        let holder = who.holder.trim().to_string();
        if holder.is_empty() || holder.chars().any(char::is_control) {
            return Err(TaskError::Invalid("say who claims the task: a name, e.g. --as alice".into()));
        }
        for _ in 0..CLAIM_ATTEMPTS {
            let task = self.require(id).await?;
            if let Some(step) = &task.step {
                return Err(plan_owned(&task, step));
            }
            if task.status.is_finished() {
                return Err(TaskError::Finished { id: task.id, status: task.status });
            }
            let released = match task.claimed_by.clone() {
                Some(current) if current == holder => return Ok(Claimed { task, released: None }),
                Some(current) if self.holder_runs(&current).await? => {
                    let since = task.claimed_at.map(since_text).unwrap_or_else(|| "a while".into());
                    return Err(TaskError::Claimed { id: task.id, holder: current, since });
                }
                lapsed => lapsed,
            };
            let (holder, project, seen) = (holder.clone(), who.project.clone(), task.claimed_by.clone());
            let rowid = parse_id(&task.id).unwrap_or_default();
            let won = self
                .db
                .call(move |conn| {
                    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                    for name in task.project.iter().chain(project.iter()) {
                        if let Some(refusal) = super::projects::refusal(&tx, name)? {
                            return Ok(Err(refusal));
                        }
                    }
                    let Some(now) = get_row(&tx, rowid)? else { return Ok(Err(TaskError::NoSuchTask { id: task.id })) };
                    if now.claimed_by != seen || now.status.is_finished() {
                        return Ok(Ok(None));
                    }
                    let notes = match &seen {
                        Some(old) => append_note(
                            &now.notes,
                            "ratchet",
                            &format!("released the claim of {old}, which no longer runs; now claimed by {holder}"),
                        ),
                        None => now.notes.clone(),
                    };
                    let at = now_ms();
                    tx.execute(
                        "UPDATE tasks SET claimed_by = ?1, claimed_at = ?2, status = 'in_progress', notes = ?3,
                         updated_at = ?2 WHERE id = ?4",
                        params![holder, at, notes, rowid],
                    )?;
                    let task = get_row(&tx, rowid)?;
                    tx.commit()?;
                    Ok(Ok(task))
                })
                .await??;
            if let Some(task) = won {
                return Ok(Claimed { task, released });
            }
        }
        Err(TaskError::Raced { id: id.trim().to_string() })
    }

    /// Changes a task's status and/or appends a note. Reopening (`open`) drops the claim. A
    /// plan step's task takes notes only (its status follows the step); an agent (`by`) may
    /// not change a task another holder that still runs has claimed.
    pub async fn update(&self, id: &str, change: TaskChange) -> Result<Task, TaskError> {
        let note = change.note.as_deref().map(str::trim).filter(|n| !n.is_empty()).map(String::from);
        if let Some(note) = &note {
            check_text("note", note)?;
        }
        if note.is_none() && change.status.is_none() {
            return Err(TaskError::Invalid("nothing to change: give a new status, a note, or both".into()));
        }
        let task = self.require(id).await?;
        if let (Some(step), Some(_)) = (&task.step, change.status) {
            return Err(plan_owned(&task, step));
        }
        if let (Some(by), Some(holder)) = (&change.by, &task.claimed_by)
            && by != holder
            && self.holder_runs(holder).await?
        {
            let since = task.claimed_at.map(since_text).unwrap_or_else(|| "a while".into());
            return Err(TaskError::Claimed { id: task.id, holder: holder.clone(), since });
        }
        let rowid = parse_id(&task.id).unwrap_or_default();
        let (seen, author) = (task.claimed_by.clone(), change.by.clone().unwrap_or_else(|| "cli".into()));
        let status = change.status;
        let updated = self
            .db
            .call(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let Some(now) = get_row(&tx, rowid)? else { return Ok(None) };
                if now.claimed_by != seen {
                    return Ok(Some(Err(())));
                }
                let notes = match &note {
                    Some(note) => append_note(&now.notes, &author, note),
                    None => now.notes.clone(),
                };
                let status = status.unwrap_or(now.status);
                let reopen = status == TaskStatus::Open;
                tx.execute(
                    "UPDATE tasks SET status = ?1, notes = ?2, updated_at = ?3,
                     claimed_by = CASE WHEN ?4 THEN NULL ELSE claimed_by END,
                     claimed_at = CASE WHEN ?4 THEN NULL ELSE claimed_at END
                     WHERE id = ?5",
                    params![status.as_str(), notes, now_ms(), reopen, rowid],
                )?;
                let task = get_row(&tx, rowid)?;
                tx.commit()?;
                Ok(task.map(Ok))
            })
            .await?;
        match updated {
            Some(Ok(task)) => Ok(task),
            Some(Err(())) => Err(TaskError::Raced { id: task.id }),
            None => Err(TaskError::NoSuchTask { id: task.id }),
        }
    }

    /// Whether `holder` still holds its claims: a job id while that job runs (in any process
    /// on the data directory), a person's name always.
    pub async fn holder_runs(&self, holder: &str) -> Result<bool, TaskError> {
        let Ok(job) = JobId::parse(holder) else { return Ok(true) };
        let jobs = self.jobs.list().await?;
        Ok(jobs.iter().any(|j| j.id == job.to_string()))
    }
}

fn plan_owned(task: &Task, step: &StepLink) -> TaskError {
    TaskError::PlanOwned { id: task.id.clone(), plan: step.plan_id.clone(), step: step.step_id.clone() }
}

fn check_text(what: &str, text: &str) -> Result<(), TaskError> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(TaskError::Invalid(format!(
            "the {what} is larger than {} KiB; shorten it or point to a file",
            MAX_TEXT_BYTES / 1024
        )));
    }
    Ok(())
}

/// `notes` with `[author] note` appended on a line of its own, cut from the front to at most
/// [`MAX_NOTES_BYTES`].
fn append_note(notes: &str, author: &str, note: &str) -> String {
    let mut out = notes.to_string();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&format!("[{}] {}", one_line(author), note.trim()));
    if out.len() > MAX_NOTES_BYTES {
        let mut cut = out.len() - MAX_NOTES_BYTES;
        while !out.is_char_boundary(cut) {
            cut += 1;
        }
        out.replace_range(..cut, "");
    }
    out
}

/// How long ago Unix-millisecond `at` was, short (`12s ago`), for errors.
pub(super) fn since_text(at: i64) -> String {
    let secs = (now_ms() - at).max(0) / 1000;
    match secs {
        s if s < 60 => format!("{s}s ago"),
        s if s < 3600 => format!("{}m ago", s / 60),
        s => format!("{}h ago", s / 3600),
    }
}

fn get_row(conn: &Connection, rowid: i64) -> Result<Option<Task>, DbError> {
    Ok(conn
        .prepare_cached(&format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = ?1"))?
        .query_row([rowid], read_task)
        .optional()?)
}

fn read_task(r: &Row<'_>) -> rusqlite::Result<Task> {
    let status: String = r.get(3)?;
    let status = TaskStatus::parse(&status).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(
            3,
            rusqlite::types::Type::Text,
            Box::new(std::io::Error::other(e.to_string())),
        )
    })?;
    let (plan_id, step_id): (Option<String>, Option<String>) = (r.get(8)?, r.get(9)?);
    Ok(Task {
        id: format_id(r.get(0)?),
        title: r.get(1)?,
        description: r.get(2)?,
        status,
        notes: r.get(4)?,
        claimed_by: r.get(5)?,
        claimed_at: r.get(6)?,
        project: r.get(7)?,
        step: plan_id.zip(step_id).map(|(plan_id, step_id)| StepLink { plan_id, step_id }),
        created_by: r.get(10)?,
        created_at: r.get(11)?,
        updated_at: r.get(12)?,
    })
}

/// `t12` for rowid 12.
fn format_id(rowid: i64) -> String {
    format!("t{rowid}")
}

/// The rowid in `t12` or `12`; `None` for anything else.
fn parse_id(id: &str) -> Option<i64> {
    let id = id.trim();
    let digits = id.strip_prefix('t').unwrap_or(id);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// `text` on one line: runs of whitespace become one space.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests;
