//! Plans in the orchestra's database: every state change of a [`Plan`] is saved, so a plan
//! survives a restart and `ratchet plans …` in another terminal sees (and approves) the same
//! plan as the process that runs it.
//!
//! The state machine stays in [`super::plan`]; this module only stores and loads it, and
//! adds what ran each step ([`StepRun`]: worker session, model, tokens, summary), which the
//! state machine does not need but a person reviewing the plan does.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, Row, Transaction, TransactionBehavior, params};
use serde::{Deserialize, Serialize};

use super::db::{Db, DbError, now_ms};
use super::plan::{Complexity, Plan, PlanStatus, Step, StepStatus};

/// Tables of plans and their steps. A step's static part (id, description, complexity,
/// files, dependencies) is written once by [`PlanStore::create`]; its status and run fields
/// are rewritten by every [`PlanStore::save`]. `files` and `depends_on` are JSON arrays of
/// strings.
pub const SCHEMA: &str = "
CREATE TABLE plans (
    id          INTEGER PRIMARY KEY,
    session_id  TEXT NOT NULL,
    revision    INTEGER NOT NULL,
    goal        TEXT NOT NULL,
    status      TEXT NOT NULL,
    feedback    TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX plans_by_session ON plans (session_id, id);
CREATE TABLE plan_steps (
    plan_id         INTEGER NOT NULL REFERENCES plans (id) ON DELETE CASCADE,
    ord             INTEGER NOT NULL,
    step_id         TEXT NOT NULL,
    description     TEXT NOT NULL,
    complexity      TEXT NOT NULL,
    files           TEXT NOT NULL,
    depends_on      TEXT NOT NULL,
    status          TEXT NOT NULL,
    reason          TEXT,
    worker_session  TEXT,
    model           TEXT,
    input_tokens    INTEGER NOT NULL DEFAULT 0,
    output_tokens   INTEGER NOT NULL DEFAULT 0,
    summary         TEXT,
    PRIMARY KEY (plan_id, step_id)
);
";

/// A step may name the agent whose worker carries it out.
pub const SCHEMA_STEP_AGENT: &str = "ALTER TABLE plan_steps ADD COLUMN agent TEXT;";

/// Columns read by [`PlanRow::read`], in its order.
const PLAN_COLUMNS: &str = "id, session_id, revision, goal, status, feedback, created_at, updated_at";

/// Columns read by [`StepRow::read`], in its order.
const STEP_COLUMNS: &str = "step_id, description, complexity, files, depends_on, status, reason, \
                            worker_session, model, input_tokens, output_tokens, summary, agent";

/// What ran a step. A step with no run recorded and a step whose run is all defaults are the
/// same thing in the database, so [`PlanStore::get`] returns runs only for steps with
/// something recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRun {
    /// The worker's engine session, to open its transcript.
    pub worker_session: Option<String>,
    /// The model the step was routed to.
    pub model: Option<String>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// What the worker said it did.
    pub summary: Option<String>,
}

impl StepRun {
    fn is_empty(&self) -> bool {
        *self == StepRun::default()
    }
}

/// A plan as stored: where it belongs, when it changed, and what ran its steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredPlan {
    /// `p<rowid>`, as people type it (`ratchet plans show p12`).
    pub id: String,
    /// The engine session whose model proposed the plan.
    pub session_id: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds of the last save.
    pub updated_at: i64,
    pub plan: Plan,
    /// Keyed by step id; steps that have not run have no entry.
    pub runs: BTreeMap<String, StepRun>,
}

impl StoredPlan {
    /// Refuses skip ids that are not steps of the plan (naming its steps) and skipping every
    /// step (what `ratchet plans approve`, `/approve` and a CLI answer check before answering).
    pub fn check_skip(&self, skip: &[String]) -> Result<(), String> {
        let ids: Vec<&str> = self.plan.steps.iter().map(|s| s.id.as_str()).collect();
        if let Some(unknown) = skip.iter().find(|s| !ids.contains(&s.as_str())) {
            return Err(format!("plan {} has no step {unknown:?}; its steps are {}", self.id, ids.join(", ")));
        }
        if ids.iter().all(|id| skip.iter().any(|s| s == id)) {
            return Err(format!(
                "that skips every step of plan {}; reject it instead: `ratchet plans reject {} --feedback TEXT`",
                self.id, self.id
            ));
        }
        Ok(())
    }
}

/// Plans in the orchestra's database, shared by every ratchet process on the data directory.
#[derive(Clone)]
pub struct PlanStore {
    db: Db,
}

impl PlanStore {
    pub fn new(db: Db) -> Self {
        PlanStore { db }
    }

    /// Stores a new plan of `session_id` with all its steps (one transaction) and gives it
    /// its id.
    pub async fn create(&self, session_id: &str, plan: &Plan) -> Result<StoredPlan, DbError> {
        let (session_id, plan) = (session_id.to_string(), plan.clone());
        self.db
            .call(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let now = now_ms();
                let (status, feedback) = plan_status_columns(&plan.status);
                tx.execute(
                    "INSERT INTO plans (session_id, revision, goal, status, feedback, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                    params![session_id, plan.revision, plan.goal, status, feedback, now],
                )?;
                let rowid = tx.last_insert_rowid();
                insert_steps(&tx, rowid, &plan.steps)?;
                tx.commit()?;
                Ok(StoredPlan {
                    id: format_id(rowid),
                    session_id,
                    created_at: now,
                    updated_at: now,
                    plan,
                    runs: BTreeMap::new(),
                })
            })
            .await
    }

    /// Saves the plan's status (and rejection feedback) and every step's status, failure
    /// reason and run, in one transaction, with `updated_at` set to now. The goal, revision
    /// and the steps' descriptions are fixed at [`PlanStore::create`] and not rewritten.
    ///
    /// A plan or step that is not in the database is an error (nothing is saved); runs of
    /// step ids the plan does not have are not stored.
    pub async fn save(&self, stored: &StoredPlan) -> Result<(), DbError> {
        let stored = stored.clone();
        self.db
            .call(move |conn| {
                let rowid = parse_id(&stored.id).ok_or_else(|| not_stored(&stored.id))?;
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let (status, feedback) = plan_status_columns(&stored.plan.status);
                let changed = tx.execute(
                    "UPDATE plans SET status = ?1, feedback = ?2, updated_at = ?3 WHERE id = ?4",
                    params![status, feedback, now_ms(), rowid],
                )?;
                if changed == 0 {
                    return Err(not_stored(&stored.id));
                }
                let mut update = tx.prepare_cached(
                    "UPDATE plan_steps SET status = ?1, reason = ?2, worker_session = ?3, model = ?4,
                     input_tokens = ?5, output_tokens = ?6, summary = ?7
                     WHERE plan_id = ?8 AND step_id = ?9",
                )?;
                let no_run = StepRun::default();
                for step in &stored.plan.steps {
                    let (status, reason) = step_status_columns(&step.status);
                    let run = stored.runs.get(&step.id).unwrap_or(&no_run);
                    let changed = update.execute(params![
                        status,
                        reason,
                        run.worker_session,
                        run.model,
                        to_sql_count(run.input_tokens),
                        to_sql_count(run.output_tokens),
                        run.summary,
                        rowid,
                        step.id,
                    ])?;
                    if changed == 0 {
                        return Err(DbError::Corrupt(format!(
                            "plan {} has no stored step {:?}, so it cannot be saved; reload it with `ratchet plans show {}`",
                            stored.id, step.id, stored.id
                        )));
                    }
                }
                for id in stored.runs.keys().filter(|id| !stored.plan.steps.iter().any(|s| &s.id == *id)) {
                    tracing::warn!(plan = %stored.id, step = %id, "a run of a step the plan does not have is not stored");
                }
                drop(update);
                // Every step of an approved plan has a task, in step with it.
                super::tasks::plan_link::sync(&tx, &stored)?;
                tx.commit()?;
                Ok(())
            })
            .await
    }

    /// The plan with id `p12` (or `12`); `None` for an unknown or malformed id.
    pub async fn get(&self, id: &str) -> Result<Option<StoredPlan>, DbError> {
        let Some(rowid) = parse_id(id) else { return Ok(None) };
        self.db
            .call(move |conn| {
                let row = conn
                    .prepare_cached(&format!("SELECT {PLAN_COLUMNS} FROM plans WHERE id = ?1"))?
                    .query_row([rowid], PlanRow::read)
                    .optional()?;
                row.map(|row| load(conn, row)).transpose()
            })
            .await
    }

    /// Every plan, or those of one session, newest first.
    pub async fn list(&self, session: Option<String>) -> Result<Vec<StoredPlan>, DbError> {
        self.db
            .call(move |conn| {
                // Rowids only grow (a reused rowid is that of a deleted newest plan), so they
                // order by creation even when the clock steps back.
                let rows = match &session {
                    Some(session) => conn
                        .prepare_cached(&format!(
                            "SELECT {PLAN_COLUMNS} FROM plans WHERE session_id = ?1 ORDER BY id DESC"
                        ))?
                        .query_map([session], PlanRow::read)?
                        .collect::<Result<Vec<_>, _>>()?,
                    None => conn
                        .prepare_cached(&format!("SELECT {PLAN_COLUMNS} FROM plans ORDER BY id DESC"))?
                        .query_map([], PlanRow::read)?
                        .collect::<Result<Vec<_>, _>>()?,
                };
                rows.into_iter().map(|row| load(conn, row)).collect()
            })
            .await
    }

    /// The revision for the next plan `session_id` proposes: one more than the latest plan's
    /// if that plan was rejected (the new one revises it), else 1. A plan proposed after a
    /// finished, failed or cancelled one is a new piece of work, not a revision, so it starts
    /// over at 1.
    pub async fn next_revision(&self, session_id: &str) -> Result<u32, DbError> {
        let session_id = session_id.to_string();
        self.db
            .call(move |conn| {
                let latest: Option<(String, i64)> = conn
                    .prepare_cached(
                        "SELECT status, revision FROM plans WHERE session_id = ?1 ORDER BY id DESC LIMIT 1",
                    )?
                    .query_row([&session_id], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                Ok(match latest {
                    Some((status, revision)) if status == "rejected" => {
                        u32::try_from(revision).unwrap_or(u32::MAX).saturating_add(1)
                    }
                    _ => 1,
                })
            })
            .await
    }
}

/// A `plans` row as stored, before its text columns are parsed.
struct PlanRow {
    id: i64,
    session_id: String,
    revision: i64,
    goal: String,
    status: String,
    feedback: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl PlanRow {
    fn read(r: &Row<'_>) -> rusqlite::Result<PlanRow> {
        Ok(PlanRow {
            id: r.get(0)?,
            session_id: r.get(1)?,
            revision: r.get(2)?,
            goal: r.get(3)?,
            status: r.get(4)?,
            feedback: r.get(5)?,
            created_at: r.get(6)?,
            updated_at: r.get(7)?,
        })
    }
}

/// A `plan_steps` row as stored, before its text columns are parsed.
struct StepRow {
    step_id: String,
    description: String,
    complexity: String,
    files: String,
    depends_on: String,
    status: String,
    reason: Option<String>,
    worker_session: Option<String>,
    model: Option<String>,
    input_tokens: i64,
    output_tokens: i64,
    summary: Option<String>,
    agent: Option<String>,
}

impl StepRow {
    fn read(r: &Row<'_>) -> rusqlite::Result<StepRow> {
        Ok(StepRow {
            step_id: r.get(0)?,
            description: r.get(1)?,
            complexity: r.get(2)?,
            files: r.get(3)?,
            depends_on: r.get(4)?,
            status: r.get(5)?,
            reason: r.get(6)?,
            worker_session: r.get(7)?,
            model: r.get(8)?,
            input_tokens: r.get(9)?,
            output_tokens: r.get(10)?,
            summary: r.get(11)?,
            agent: r.get(12)?,
        })
    }
}

/// A plan row and its steps, parsed; a value that does not parse is [`DbError::Corrupt`]
/// naming the plan, the step and the value.
fn load(conn: &Connection, row: PlanRow) -> Result<StoredPlan, DbError> {
    let id = format_id(row.id);
    let corrupt = |what: String| DbError::Corrupt(format!("plan {id}: {what}"));
    let rows = conn
        .prepare_cached(&format!("SELECT {STEP_COLUMNS} FROM plan_steps WHERE plan_id = ?1 ORDER BY ord"))?
        .query_map([row.id], StepRow::read)?
        .collect::<Result<Vec<_>, _>>()?;
    let mut steps = Vec::with_capacity(rows.len());
    let mut runs = BTreeMap::new();
    for s in rows {
        let in_step = |what: String| corrupt(format!("step {:?}: {what}", s.step_id));
        let complexity =
            parse_complexity(&s.complexity).ok_or_else(|| in_step(format!("complexity {:?}", s.complexity)))?;
        let files = string_list(&s.files).ok_or_else(|| in_step(format!("files {:?}", s.files)))?;
        let depends_on = string_list(&s.depends_on).ok_or_else(|| in_step(format!("depends_on {:?}", s.depends_on)))?;
        let status = parse_step_status(&s.status, s.reason).map_err(in_step)?;
        let count = |n: i64, column: &str| u64::try_from(n).map_err(|_| in_step(format!("{column} {n}")));
        let run = StepRun {
            worker_session: s.worker_session,
            model: s.model,
            input_tokens: count(s.input_tokens, "input_tokens")?,
            output_tokens: count(s.output_tokens, "output_tokens")?,
            summary: s.summary,
        };
        if !run.is_empty() {
            runs.insert(s.step_id.clone(), run);
        }
        steps.push(Step {
            id: s.step_id,
            description: s.description,
            complexity,
            files,
            depends_on,
            agent: s.agent,
            status,
        });
    }
    let revision = u32::try_from(row.revision).map_err(|_| corrupt(format!("revision {}", row.revision)))?;
    let status = parse_plan_status(&row.status, row.feedback).map_err(corrupt)?;
    Ok(StoredPlan {
        id,
        session_id: row.session_id,
        created_at: row.created_at,
        updated_at: row.updated_at,
        plan: Plan { goal: row.goal, revision, steps, status },
        runs,
    })
}

fn insert_steps(tx: &Transaction<'_>, rowid: i64, steps: &[Step]) -> Result<(), DbError> {
    let mut insert = tx.prepare_cached(&format!(
        "INSERT INTO plan_steps (plan_id, ord, {STEP_COLUMNS})
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, NULL, NULL, 0, 0, NULL, ?10)"
    ))?;
    for (ord, step) in steps.iter().enumerate() {
        let (status, reason) = step_status_columns(&step.status);
        insert.execute(params![
            rowid,
            ord as i64,
            step.id,
            step.description,
            complexity_label(step.complexity),
            json_list(&step.files),
            json_list(&step.depends_on),
            status,
            reason,
            step.agent,
        ])?;
    }
    Ok(())
}

/// `p12` for rowid 12.
fn format_id(rowid: i64) -> String {
    format!("p{rowid}")
}

/// The rowid in `p12` or `12`; `None` for anything else.
fn parse_id(id: &str) -> Option<i64> {
    let id = id.trim();
    let digits = id.strip_prefix('p').unwrap_or(id);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn not_stored(id: &str) -> DbError {
    DbError::Corrupt(format!(
        "plan {id:?} is not in the database, so it cannot be saved; see the stored plans with `ratchet plans list`"
    ))
}

/// Token counts are `u64` in memory and `INTEGER` (i64) in SQLite; a count past `i64::MAX`
/// (never seen in practice) is stored as `i64::MAX`.
fn to_sql_count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

fn string_list(json: &str) -> Option<Vec<String>> {
    serde_json::from_str(json).ok()
}

fn plan_status_columns(status: &PlanStatus) -> (&'static str, Option<&str>) {
    match status {
        PlanStatus::Proposed => ("proposed", None),
        PlanStatus::Approved => ("approved", None),
        PlanStatus::Rejected { feedback } => ("rejected", Some(feedback)),
        PlanStatus::Executing => ("executing", None),
        PlanStatus::Completed => ("completed", None),
        PlanStatus::Failed => ("failed", None),
        PlanStatus::Cancelled => ("cancelled", None),
    }
}

fn parse_plan_status(status: &str, feedback: Option<String>) -> Result<PlanStatus, String> {
    Ok(match status {
        "proposed" => PlanStatus::Proposed,
        "approved" => PlanStatus::Approved,
        "rejected" => PlanStatus::Rejected { feedback: feedback.ok_or("it is rejected but has no feedback")? },
        "executing" => PlanStatus::Executing,
        "completed" => PlanStatus::Completed,
        "failed" => PlanStatus::Failed,
        "cancelled" => PlanStatus::Cancelled,
        other => return Err(format!("status {other:?}")),
    })
}

fn step_status_columns(status: &StepStatus) -> (&'static str, Option<&str>) {
    match status {
        StepStatus::Pending => ("pending", None),
        StepStatus::InProgress => ("in_progress", None),
        StepStatus::Completed => ("completed", None),
        StepStatus::Failed { reason } => ("failed", Some(reason)),
        StepStatus::Skipped => ("skipped", None),
    }
}

fn parse_step_status(status: &str, reason: Option<String>) -> Result<StepStatus, String> {
    Ok(match status {
        "pending" => StepStatus::Pending,
        "in_progress" => StepStatus::InProgress,
        "completed" => StepStatus::Completed,
        "failed" => StepStatus::Failed { reason: reason.ok_or("it failed but has no reason")? },
        "skipped" => StepStatus::Skipped,
        other => return Err(format!("status {other:?}")),
    })
}

fn complexity_label(complexity: Complexity) -> &'static str {
    match complexity {
        Complexity::Simple => "simple",
        Complexity::Complex => "complex",
        Complexity::Review => "review",
    }
}

fn parse_complexity(label: &str) -> Option<Complexity> {
    match label {
        "simple" => Some(Complexity::Simple),
        "complex" => Some(Complexity::Complex),
        "review" => Some(Complexity::Review),
        _ => None,
    }
}

/// A plan for `ratchet plans show`: a header (id, status, revision, session, goal), one line
/// per step (id, status, complexity, model, tokens in/out, description), then the failure
/// reasons and the rejection feedback, if any.
pub fn summary_table(stored: &StoredPlan) -> String {
    let plan = &stored.plan;
    let mut out = format!(
        "plan {}  {}  revision {}  session {}\ngoal: {}\n\n",
        stored.id,
        plan.status_label(),
        plan.revision,
        stored.session_id,
        one_line_text(&plan.goal)
    );
    let no_run = StepRun::default();
    let mut rows =
        vec![["STEP".to_string(), "STATUS".into(), "COMPLEXITY".into(), "MODEL".into(), "TOKENS IN/OUT".into()]];
    for step in &plan.steps {
        let run = stored.runs.get(&step.id).unwrap_or(&no_run);
        rows.push([
            one_line_text(&step.id),
            step_status_columns(&step.status).0.to_string(),
            complexity_label(step.complexity).to_string(),
            run.model.as_deref().map_or_else(|| "-".to_string(), one_line_text),
            format!("{}/{}", run.input_tokens, run.output_tokens),
        ]);
    }
    let mut widths = [0usize; 5];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let descriptions = std::iter::once("DESCRIPTION".to_string()).chain(plan.steps.iter().map(|s| match &s.agent {
        Some(agent) => format!("[{}] {}", one_line_text(agent), one_line_text(&s.description)),
        None => one_line_text(&s.description),
    }));
    for (row, description) in rows.iter().zip(descriptions) {
        let mut line = String::from("  ");
        for (w, cell) in widths.iter().zip(row) {
            line.push_str(&format!("{cell:<width$}  ", width = *w));
        }
        line.push_str(&description);
        out.push_str(line.trim_end());
        out.push('\n');
    }
    let failures: Vec<_> = plan
        .steps
        .iter()
        .filter_map(|s| match &s.status {
            StepStatus::Failed { reason } => Some(format!("  {}: {}\n", one_line_text(&s.id), one_line_text(reason))),
            _ => None,
        })
        .collect();
    if !failures.is_empty() {
        out.push_str("\nfailures:\n");
        out.extend(failures);
    }
    if let PlanStatus::Rejected { feedback } = &plan.status {
        out.push_str(&format!("\nrejected with feedback: {}\n", one_line_text(feedback)));
    }
    out
}

/// Most characters of the goal [`one_line`] shows.
const GOAL_WIDTH: usize = 60;

/// A plan for `ratchet plans list`: id, status, completed/runnable steps (skipped steps do not
/// count), the session id's first 8 characters and the goal, cut to 60 characters.
pub fn one_line(stored: &StoredPlan) -> String {
    let steps = &stored.plan.steps;
    let done = steps.iter().filter(|s| s.status == StepStatus::Completed).count();
    let total = steps.iter().filter(|s| s.status != StepStatus::Skipped).count();
    let session: String = stored.session_id.chars().take(8).collect();
    let goal = one_line_text(&stored.plan.goal);
    let goal = if goal.chars().count() > GOAL_WIDTH {
        format!("{}…", goal.chars().take(GOAL_WIDTH - 1).collect::<String>())
    } else {
        goal
    };
    format!("{}  {}  {done}/{total} done  session {session}  {goal}", stored.id, stored.plan.status_label())
}

/// `text` on one line: runs of whitespace (newlines included) become one space, so a
/// multi-line description cannot break a table.
fn one_line_text(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests;
