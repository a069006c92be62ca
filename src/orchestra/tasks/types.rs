//! The words of the task tracker: a task, its status, what a list filters on, and why an
//! operation does not apply.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::orchestra::db::DbError;

/// Longest title, in characters: a title is one line people scan in a list.
pub const MAX_TITLE_CHARS: usize = 200;
/// Longest description or note, in bytes: enough for a detailed brief, small enough that a
/// runaway model cannot fill the database through one call.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;
/// Most notes kept on one task, in bytes; older notes are cut from the front.
pub const MAX_NOTES_BYTES: usize = 256 * 1024;
/// Most tasks one list returns.
pub const MAX_LIST: usize = 1000;

/// Where a task is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// Nobody works on it; it can be claimed.
    Open,
    /// Someone claimed it and works on it.
    InProgress,
    Done,
    Failed,
    Cancelled,
}

impl TaskStatus {
    pub const ALL: [TaskStatus; 5] =
        [TaskStatus::Open, TaskStatus::InProgress, TaskStatus::Done, TaskStatus::Failed, TaskStatus::Cancelled];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Open => "open",
            TaskStatus::InProgress => "in_progress",
            TaskStatus::Done => "done",
            TaskStatus::Failed => "failed",
            TaskStatus::Cancelled => "cancelled",
        }
    }

    /// Parses a status as people type it (`in-progress` and `in_progress` alike).
    pub fn parse(text: &str) -> Result<TaskStatus, TaskError> {
        let norm = text.trim().to_ascii_lowercase().replace('-', "_");
        TaskStatus::ALL
            .into_iter()
            .find(|s| s.as_str() == norm)
            .ok_or_else(|| TaskError::BadStatus { input: text.to_string() })
    }

    /// Done, failed or cancelled: nobody works on it any more.
    pub fn is_finished(self) -> bool {
        matches!(self, TaskStatus::Done | TaskStatus::Failed | TaskStatus::Cancelled)
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The plan step a task stands for (`plan_link`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepLink {
    /// `p3`, as `ratchet plans list` shows it.
    pub plan_id: String,
    pub step_id: String,
}

/// One task as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    /// `t<rowid>`, as people type it (`ratchet tasks show t4`).
    pub id: String,
    pub title: String,
    pub description: String,
    pub status: TaskStatus,
    /// Notes appended by whoever worked on it, one per line, each prefixed by its author.
    pub notes: String,
    /// Who holds the claim: a job id (`session:<id>`, `fleet_worker:<id>`, `team_agent:<id>`)
    /// whose claim lapses when that job ends, or a person's name (`--as alice`), which holds
    /// until the task is updated.
    pub claimed_by: Option<String>,
    /// Unix milliseconds.
    pub claimed_at: Option<i64>,
    /// The project it belongs to (`ratchet project list`).
    pub project: Option<String>,
    /// The plan step it stands for; its status follows the step.
    pub step: Option<StepLink>,
    /// Who created it (a job id, `cli`, or `plan p3`).
    pub created_by: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A task to create.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewTask {
    pub title: String,
    pub description: String,
    pub project: Option<String>,
    pub created_by: Option<String>,
}

/// Which tasks a list returns; every field narrows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskFilter {
    pub status: Option<TaskStatus>,
    pub project: Option<String>,
    /// `Some(true)`: only claimed tasks; `Some(false)`: only unclaimed ones.
    pub claimed: Option<bool>,
    /// Only the tasks claimed by this holder.
    pub claimed_by: Option<String>,
    /// Only the tasks of this plan (`p3`).
    pub plan_id: Option<String>,
}

/// A change to a task: a new status, a note to append, or both.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskChange {
    pub status: Option<TaskStatus>,
    pub note: Option<String>,
    /// Who makes it: notes are signed with it, and an agent may not change a task another
    /// live holder has claimed. `None`: a person at the CLI, who may change any task.
    pub by: Option<String>,
}

/// How a claim went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Claimed {
    pub task: Task,
    /// The holder whose claim was released because its job no longer runs.
    pub released: Option<String>,
}

/// Why a task operation did not apply, said so the model or person knows what to do.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("there is no task {id:?}; `ratchet tasks list` (or the task_list tool) shows the tasks")]
    NoSuchTask { id: String },
    #[error("{input:?} is not a task status; use one of open, in_progress, done, failed, cancelled")]
    BadStatus { input: String },
    #[error("{0}")]
    Invalid(String),
    #[error(
        "task {id} is already claimed by {holder} (since {since}); pick another task, or wait until it is released"
    )]
    Claimed { id: String, holder: String, since: String },
    #[error(
        "task {id} is {status}, so it cannot be claimed; reopen it first with `ratchet tasks update {id} --status open`"
    )]
    Finished { id: String, status: TaskStatus },
    #[error(
        "task {id} stands for step {step} of plan {plan}: the fleet runs it, and its status follows the step; add notes instead"
    )]
    PlanOwned { id: String, plan: String, step: String },
    #[error("project {project} is {status}, so its agents take no new work; {next}")]
    ProjectStopped { project: String, status: String, next: String },
    #[error("task {id} was claimed by someone else at the same time; try again")]
    Raced { id: String },
    #[error(transparent)]
    Db(#[from] DbError),
}
