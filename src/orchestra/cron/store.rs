//! `CronStore`: the `cron_jobs` table, shared by every ratchet process on the data directory.
//! The CLI adds and controls jobs here from any process; the scheduler of the process that
//! holds the singleton lock reads it and claims each run with a compare-and-set on
//! `next_run`, so even two schedulers could not fire one run twice.

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::schedule::{Schedule, ScheduleError};
use crate::orchestra::db::{Db, DbError, now_ms};

/// The table. `next_run` is NULL unless the job is active (and has a time to come);
/// `catch_up` NULL means `[cron] catch_up` of the configuration decides.
pub const SCHEMA: &str = "
CREATE TABLE cron_jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL,
    schedule TEXT NOT NULL,
    prompt TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'paused', 'stopped')),
    catch_up TEXT CHECK (catch_up IN ('once', 'skip')),
    last_run INTEGER,
    next_run INTEGER,
    run_count INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created INTEGER NOT NULL
);
CREATE INDEX cron_jobs_due ON cron_jobs (next_run) WHERE status = 'active';
";

/// Longest prompt a job may hold: a prompt, not a document.
pub const MAX_PROMPT_BYTES: usize = 64 * 1024;

/// The columns every read takes, in [`CronJob::read`]'s order.
const COLUMNS: &str =
    "id, session_id, schedule, prompt, status, catch_up, last_run, next_run, run_count, last_error, created";

/// Whether a job fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CronStatus {
    Active,
    /// Kept, not fired until resumed (runs missed meanwhile are not made up).
    Paused,
    /// Never fires again (kept for the record).
    Stopped,
}

impl CronStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CronStatus::Active => "active",
            CronStatus::Paused => "paused",
            CronStatus::Stopped => "stopped",
        }
    }

    fn from_column(text: &str) -> Option<CronStatus> {
        [CronStatus::Active, CronStatus::Paused, CronStatus::Stopped].into_iter().find(|s| s.as_str() == text)
    }
}

/// What happens to a run that was due while no ratchet process ran the scheduler.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CatchUp {
    /// Fire once at start, however many runs were missed.
    #[default]
    Once,
    /// Fire at the next time to come only.
    Skip,
}

impl CatchUp {
    pub fn as_str(self) -> &'static str {
        match self {
            CatchUp::Once => "once",
            CatchUp::Skip => "skip",
        }
    }

    /// Reads `once` or `skip`; the error says which words there are.
    pub fn parse(text: &str) -> Result<CatchUp, String> {
        match text.trim() {
            "once" => Ok(CatchUp::Once),
            "skip" => Ok(CatchUp::Skip),
            other => Err(format!(
                "catch-up {other:?} is not known: use \"once\" (fire a missed run once at start) or \"skip\""
            )),
        }
    }
}

/// One job as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CronJob {
    pub id: i64,
    pub session_id: String,
    /// As the user wrote it (`2s`, `*/15 9-17 * * 1-5`).
    pub schedule: String,
    /// The prompt, or a `/command` with its arguments.
    pub prompt: String,
    pub status: CronStatus,
    /// `None`: the configuration's `[cron] catch_up` decides.
    pub catch_up: Option<CatchUp>,
    /// Unix ms of the last run's start.
    pub last_run: Option<i64>,
    /// Unix ms of the next run; `None` unless active.
    pub next_run: Option<i64>,
    pub run_count: i64,
    /// Why the last run failed; `None` if it succeeded.
    pub last_error: Option<String>,
    /// Unix ms.
    pub created: i64,
}

impl CronJob {
    fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<CronJob> {
        let status: String = r.get(4)?;
        let catch_up: Option<String> = r.get(5)?;
        let corrupt = |i, what: &str| {
            rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, what.to_string().into())
        };
        Ok(CronJob {
            id: r.get(0)?,
            session_id: r.get(1)?,
            schedule: r.get(2)?,
            prompt: r.get(3)?,
            status: CronStatus::from_column(&status).ok_or_else(|| corrupt(4, "a cron job's status"))?,
            catch_up: catch_up
                .map(|c| CatchUp::parse(&c).map_err(|_| corrupt(5, "a cron job's catch-up")))
                .transpose()?,
            last_run: r.get(6)?,
            next_run: r.get(7)?,
            run_count: r.get(8)?,
            last_error: r.get(9)?,
            created: r.get(10)?,
        })
    }
}

/// A job to add.
#[derive(Debug, Clone)]
pub struct NewCronJob {
    pub session_id: String,
    pub schedule: String,
    pub prompt: String,
    pub catch_up: Option<CatchUp>,
}

/// Why a cron request failed; every message says what to do next.
#[derive(Debug, thiserror::Error)]
pub enum CronError {
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    #[error("the prompt is empty: say what the job should ask in its session (or give a /command)")]
    EmptyPrompt,
    #[error("the prompt is {0} bytes; a cron prompt may have at most {MAX_PROMPT_BYTES}")]
    PromptTooLong(usize),
    #[error("there is no cron job {0}; `ratchet cron list` shows them")]
    NoSuchJob(i64),
    #[error("{0:?} is not a cron job id: ids are numbers, as `ratchet cron list` shows them")]
    BadId(String),
    #[error("cron job {id} is {status}, so it cannot be {action}{hint}", status = status.as_str())]
    Refused { id: i64, status: CronStatus, action: &'static str, hint: &'static str },
    #[error("cron job {0} changed meanwhile (another process controlled it); look again with `ratchet cron list`")]
    Raced(i64),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl CronError {
    /// Reads a job id as `ratchet cron list` prints it (also `cron:3`, as `ratchet jobs` does).
    pub fn parse_id(text: &str) -> Result<i64, CronError> {
        let t = text.trim();
        t.strip_prefix("cron:").unwrap_or(t).parse().map_err(|_| CronError::BadId(text.to_string()))
    }
}

/// A control of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CronAction {
    Pause,
    Resume,
    Stop,
}

/// The `cron_jobs` table. Cheap to clone.
#[derive(Clone)]
pub struct CronStore {
    db: Db,
}

impl CronStore {
    pub fn new(db: Db) -> CronStore {
        CronStore { db }
    }

    /// Checks and stores a new active job; its first run is the schedule's first time after now.
    pub async fn add(&self, new: NewCronJob) -> Result<CronJob, CronError> {
        let schedule = Schedule::parse(&new.schedule)?;
        let prompt = new.prompt.trim().to_string();
        if prompt.is_empty() {
            return Err(CronError::EmptyPrompt);
        }
        if prompt.len() > MAX_PROMPT_BYTES {
            return Err(CronError::PromptTooLong(prompt.len()));
        }
        let now = now_ms();
        let next = schedule.first_after_ms(now);
        let text = new.schedule.trim().to_string();
        let (session, catch_up) = (new.session_id, new.catch_up.map(CatchUp::as_str));
        let id = self
            .db
            .call(move |conn| {
                conn.execute(
                    "INSERT INTO cron_jobs (session_id, schedule, prompt, status, catch_up, next_run, created)
                     VALUES (?1, ?2, ?3, 'active', ?4, ?5, ?6)",
                    params![session, text, prompt, catch_up, next, now],
                )?;
                Ok(conn.last_insert_rowid())
            })
            .await?;
        self.get(id).await?.ok_or(CronError::NoSuchJob(id))
    }

    /// Every job, oldest first (`session`: only that session's).
    pub async fn list(&self, session: Option<&str>) -> Result<Vec<CronJob>, CronError> {
        let session = session.map(str::to_string);
        Ok(self
            .db
            .call(move |conn| {
                let sql = format!("SELECT {COLUMNS} FROM cron_jobs WHERE ?1 IS NULL OR session_id = ?1 ORDER BY id");
                let mut stmt = conn.prepare_cached(&sql)?;
                let rows = stmt.query_map([session], CronJob::read)?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await?)
    }

    pub async fn get(&self, id: i64) -> Result<Option<CronJob>, CronError> {
        Ok(self
            .db
            .call(move |conn| {
                let sql = format!("SELECT {COLUMNS} FROM cron_jobs WHERE id = ?1");
                Ok(conn.query_row(&sql, [id], CronJob::read).optional()?)
            })
            .await?)
    }

    /// Pauses, resumes or stops job `id`; returns it as it is now. A resumed job's next run is
    /// its schedule's first time after now (runs missed while paused are not made up).
    pub async fn control(&self, id: i64, action: CronAction) -> Result<CronJob, CronError> {
        let job = self.get(id).await?.ok_or(CronError::NoSuchJob(id))?;
        let refused = |action, hint| CronError::Refused { id, status: job.status, action, hint };
        let (from, to, next) = match (action, job.status) {
            (_, CronStatus::Stopped) => {
                return Err(refused(
                    verb(action),
                    "; a stopped job never runs again (add it again with `ratchet cron add`)",
                ));
            }
            (CronAction::Pause, CronStatus::Active) => (CronStatus::Active, CronStatus::Paused, None),
            (CronAction::Pause, CronStatus::Paused) => return Err(refused("paused", " again")),
            (CronAction::Resume, CronStatus::Paused) => {
                (CronStatus::Paused, CronStatus::Active, Schedule::parse(&job.schedule)?.first_after_ms(now_ms()))
            }
            (CronAction::Resume, CronStatus::Active) => return Err(refused("resumed", ": it is not paused")),
            (CronAction::Stop, from) => (from, CronStatus::Stopped, None),
        };
        let changed = self
            .db
            .call(move |conn| {
                Ok(conn.execute(
                    "UPDATE cron_jobs SET status = ?1, next_run = ?2 WHERE id = ?3 AND status = ?4",
                    params![to.as_str(), next, id, from.as_str()],
                )?)
            })
            .await?;
        if changed == 0 {
            return Err(CronError::Raced(id));
        }
        self.get(id).await?.ok_or(CronError::NoSuchJob(id))
    }

    /// The `limit` active jobs that run soonest, as `(id, next_run)`: the scheduler's one cheap
    /// look at the table (the partial index `cron_jobs_due` holds exactly these, in order).
    pub async fn soonest(&self, limit: usize) -> Result<Vec<(i64, i64)>, CronError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        Ok(self
            .db
            .call(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT id, next_run FROM cron_jobs
                     WHERE status = 'active' AND next_run IS NOT NULL ORDER BY next_run LIMIT ?1",
                )?;
                let rows = stmt.query_map([limit], |r| Ok((r.get(0)?, r.get(1)?)))?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await?)
    }

    /// Up to `limit` active jobs due at `now`, soonest first.
    pub async fn due(&self, now: i64, limit: usize) -> Result<Vec<CronJob>, CronError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        Ok(self
            .db
            .call(move |conn| {
                let sql = format!(
                    "SELECT {COLUMNS} FROM cron_jobs
                     WHERE status = 'active' AND next_run IS NOT NULL AND next_run <= ?1 ORDER BY next_run LIMIT ?2"
                );
                let mut stmt = conn.prepare_cached(&sql)?;
                let rows = stmt.query_map(params![now, limit], CronJob::read)?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await?)
    }

    /// Moves an active job's next run from `planned` to `next` if nobody did first: the
    /// compare-and-set that makes a run fire once. `fired`: this is a run (its start is
    /// recorded and counted); else the planned run is skipped. True if this call won.
    pub async fn advance(&self, id: i64, planned: i64, next: Option<i64>, fired: bool) -> Result<bool, CronError> {
        let now = now_ms();
        let changed = self
            .db
            .call(move |conn| {
                Ok(conn.execute(
                    "UPDATE cron_jobs SET next_run = ?1,
                         last_run = CASE WHEN ?2 THEN ?3 ELSE last_run END,
                         run_count = run_count + CASE WHEN ?2 THEN 1 ELSE 0 END
                     WHERE id = ?4 AND status = 'active' AND next_run = ?5",
                    params![next, fired, now, id, planned],
                )?)
            })
            .await?;
        Ok(changed == 1)
    }

    /// Records how a run ended (`None`: it succeeded).
    pub async fn finished(&self, id: i64, error: Option<String>) -> Result<(), CronError> {
        self.db
            .call(move |conn| {
                conn.execute("UPDATE cron_jobs SET last_error = ?1 WHERE id = ?2", params![error, id])?;
                Ok(())
            })
            .await?;
        Ok(())
    }
}

fn verb(action: CronAction) -> &'static str {
    match action {
        CronAction::Pause => "paused",
        CronAction::Resume => "resumed",
        CronAction::Stop => "stopped",
    }
}
