//! The words of the job registry: kinds and ids of jobs, their status, the requests people
//! make of them, and why a request does not apply.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::MAX_JOBS;
use crate::orchestra::db::DbError;

/// Longest key of a job id: ids are uuids or short names, and are typed on command lines.
pub(super) const MAX_KEY_LEN: usize = 256;

/// What kind of agent a job is; also the prefix of its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// A prompt turn of a session.
    Session,
    /// A worker of the fleet running a plan's step.
    FleetWorker,
    /// A sub-agent a turn started with `agent_spawn`.
    SubAgent,
    /// A member of a running team.
    TeamAgent,
    /// A scheduled (cron) run of a prompt in its session.
    Cron,
}

impl JobKind {
    /// Every kind, in the order error messages list them.
    pub const ALL: [JobKind; 5] =
        [JobKind::Session, JobKind::FleetWorker, JobKind::SubAgent, JobKind::TeamAgent, JobKind::Cron];

    /// The prefix of this kind's ids (and its name in the database and in JSON).
    pub fn prefix(self) -> &'static str {
        match self {
            JobKind::Session => "session",
            JobKind::FleetWorker => "fleet_worker",
            JobKind::SubAgent => "sub_agent",
            JobKind::TeamAgent => "team_agent",
            JobKind::Cron => "cron",
        }
    }

    /// What a person calls a job of this kind.
    pub fn noun(self) -> &'static str {
        match self {
            JobKind::Session => "session turn",
            JobKind::FleetWorker => "fleet worker",
            JobKind::SubAgent => "sub-agent",
            JobKind::TeamAgent => "team agent",
            JobKind::Cron => "cron run",
        }
    }

    pub(super) fn from_prefix(prefix: &str) -> Option<JobKind> {
        JobKind::ALL.into_iter().find(|kind| kind.prefix() == prefix)
    }
}

/// The id of a job, `<kind prefix>:<key>`, such as `fleet_worker:7` or `session:0195…`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JobId {
    kind: JobKind,
    key: String,
}

impl JobId {
    /// The id of the job `key` of `kind`; the key must be non-empty, at most 256 bytes, and
    /// free of whitespace and control characters (ids are typed on command lines).
    pub fn new(kind: JobKind, key: impl Into<String>) -> Result<JobId, JobError> {
        let key = key.into();
        let bad = key.is_empty() || key.len() > MAX_KEY_LEN || key.chars().any(|c| c.is_whitespace() || c.is_control());
        if bad {
            return Err(JobError::BadId { input: format!("{}:{key}", kind.prefix()) });
        }
        Ok(JobId { kind, key })
    }

    /// Parses an id as `ratchet jobs list` prints it.
    pub fn parse(text: &str) -> Result<JobId, JobError> {
        let bad = || JobError::BadId { input: text.to_string() };
        let (prefix, key) = text.trim().split_once(':').ok_or_else(bad)?;
        let kind = JobKind::from_prefix(prefix).ok_or_else(bad)?;
        JobId::new(kind, key).map_err(|_| bad())
    }

    pub fn kind(&self) -> JobKind {
        self.kind
    }

    pub fn key(&self) -> &str {
        &self.key
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind.prefix(), self.key)
    }
}

impl FromStr for JobId {
    type Err = JobError;
    fn from_str(text: &str) -> Result<JobId, JobError> {
        JobId::parse(text)
    }
}

/// The id forms an error message lists: "`session:<id>` or `fleet_worker:<id>`".
fn id_forms() -> String {
    let forms: Vec<String> = JobKind::ALL.iter().map(|k| format!("`{}:<id>`", k.prefix())).collect();
    forms.join(" or ")
}

/// Whether a job is working or waiting to be resumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Running,
    Paused,
}

impl JobStatus {
    pub(super) fn of(paused: bool) -> JobStatus {
        if paused { JobStatus::Paused } else { JobStatus::Running }
    }

    pub(super) fn as_str(self) -> &'static str {
        match self {
            JobStatus::Running => "running",
            JobStatus::Paused => "paused",
        }
    }
}

/// What a person asks of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Cancel it (its token fires; it stops at its next await).
    Kill,
    /// Hold it at its next pause point ([`JobHandle::wait_unpaused`]).
    Pause,
    /// Let a paused job go on.
    Resume,
}

impl Control {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Control::Kill => "kill",
            Control::Pause => "pause",
            Control::Resume => "resume",
        }
    }

    pub(super) fn from_column(text: &str) -> Option<Control> {
        [Control::Kill, Control::Pause, Control::Resume].into_iter().find(|c| c.as_str() == text)
    }
}

/// What a job is, as its runner registers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSpec {
    pub kind: JobKind,
    /// The id after the kind's prefix (a session id, a worker id).
    pub key: String,
    pub model: Option<String>,
    pub session_id: Option<String>,
    /// What it is doing, for people ("plan p3 step s2").
    pub detail: Option<String>,
    /// Whether the runner calls [`JobHandle::wait_unpaused`] between its steps.
    pub pausable: bool,
}

impl JobSpec {
    /// A job with no model, session or detail that cannot be paused.
    pub fn new(kind: JobKind, key: impl Into<String>) -> JobSpec {
        JobSpec { kind, key: key.into(), model: None, session_id: None, detail: None, pausable: false }
    }
}

/// One job as `ratchet jobs list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobInfo {
    pub id: String,
    pub kind: JobKind,
    pub status: JobStatus,
    /// The process that runs it.
    pub pid: u32,
    /// Unix milliseconds.
    pub started_at: i64,
    pub elapsed_ms: u64,
    pub model: Option<String>,
    pub session_id: Option<String>,
    pub detail: Option<String>,
}

/// Why a job could not be registered or controlled.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("{input:?} is not a job id: a job id is {forms}, as `ratchet jobs list` shows them", forms = id_forms())]
    BadId { input: String },
    #[error(
        "this process already runs {MAX_JOBS} jobs, the most it may; wait for some to finish or stop some with `ratchet jobs kill ID`"
    )]
    TooMany,
    #[error("job {id} is already running in process {pid}; stop it first with `ratchet jobs kill {id}`")]
    AlreadyRunning { id: String, pid: u32 },
    #[error("ratchet is shutting down, so no new job starts")]
    ShuttingDown,
    #[error("there is no job {id}; `ratchet jobs list` shows the running jobs")]
    NoSuchJob { id: String },
    #[error("{id} cannot be paused: this {} does not stop between steps; stop it instead with `ratchet jobs kill {id}`", kind.noun())]
    NotPausable { id: String, kind: JobKind },
    #[error("{id} is not paused, so there is nothing to resume")]
    NotPaused { id: String },
    #[error("{id} is already being killed")]
    BeingKilled { id: String },
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Whether `control` applies to a job in this state: a kill always does (twice is once), a
/// pause needs a pausable job, a resume a paused one, and neither overrides a kill.
pub(super) fn check(id: &JobId, pausable: bool, paused: bool, killing: bool, control: Control) -> Result<(), JobError> {
    match control {
        Control::Kill => Ok(()),
        _ if killing => Err(JobError::BeingKilled { id: id.to_string() }),
        Control::Pause if !pausable => Err(JobError::NotPausable { id: id.to_string(), kind: id.kind }),
        Control::Resume if !paused => Err(JobError::NotPaused { id: id.to_string() }),
        Control::Pause | Control::Resume => Ok(()),
    }
}
