//! The job registry: every agent a process runs (a session's prompt turn, a fleet worker) is a
//! job that `ratchet jobs list|kill|pause|resume` can see and control, from this process or
//! from another ratchet process on the same data directory (an editor's `ratchet acp`, the
//! daemon).
//!
//! The registry lives in memory in the process that runs the jobs and is mirrored into the
//! `jobs` table of the orchestra's database, one row per job naming its owner's pid. Another
//! process controls a job by writing the row's `control` column; the owner's poller applies and
//! clears it within [`CONTROL_POLL`]. A process killed with -9 leaves its rows behind, so
//! [`JobRegistry::list`] deletes the rows whose process is gone.
//!
//! One registry per process and data directory: a registry deletes the rows with its own pid
//! that it does not hold, as leftovers of an earlier process that had the same pid.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use rusqlite::{OptionalExtension, TransactionBehavior, params};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::orchestra::db::{Db, DbError, now_ms};

mod handle;
mod types;

pub use handle::JobHandle;
use handle::Live;
use types::check;
pub use types::{Control, JobError, JobId, JobInfo, JobKind, JobSpec, JobStatus};

/// Most jobs one process runs at once: far more agents than anyone can follow, few enough that
/// a runaway loop that registers jobs stops with an error instead of exhausting the machine.
pub const MAX_JOBS: usize = 1024;

/// How often the owner of jobs looks for control requests written by other processes.
pub const CONTROL_POLL: Duration = Duration::from_millis(200);

/// Tables of the job registry. `run` tells apart successive registrations of one id by one
/// process (so the late delete of a finished job never removes its successor's row), and
/// `pausable` lets another process refuse a pause the owner could not apply.
pub const SCHEMA: &str = "
CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    pid INTEGER NOT NULL,
    run INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'paused')),
    pausable INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    model TEXT,
    session_id TEXT,
    detail TEXT,
    control TEXT CHECK (control IN ('kill', 'pause', 'resume'))
);
CREATE INDEX jobs_by_pid ON jobs (pid);
";

struct Inner {
    db: Db,
    shutdown: CancellationToken,
    pid: u32,
    next_run: AtomicI64,
    live: Mutex<HashMap<String, Live>>,
    /// Wakes the idle poller when a job is registered.
    wake: Arc<Notify>,
    /// The control poller, started by the first job; aborted when the registry goes.
    poller: Mutex<Option<JoinHandle<()>>>,
    /// The row deletes of dropped handles. Closed from the start, so `wait` returns whenever
    /// none is pending ([`JobRegistry::flush`]).
    deletes: TaskTracker,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(poller) = lock(&self.poller).take() {
            poller.abort();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The jobs of this process, and the door to every process's jobs. Cheap to clone.
#[derive(Clone)]
pub struct JobRegistry {
    inner: Arc<Inner>,
}

impl JobRegistry {
    /// A registry for this process. Every job's cancellation token is a child of `shutdown`.
    pub fn new(db: Db, shutdown: CancellationToken) -> JobRegistry {
        JobRegistry::with_pid(db, shutdown, std::process::id())
    }

    /// A registry that records its jobs under `pid` instead of this process's: tests use it to
    /// play another process on the same database.
    pub fn with_pid(db: Db, shutdown: CancellationToken, pid: u32) -> JobRegistry {
        let deletes = TaskTracker::new();
        deletes.close();
        JobRegistry {
            inner: Arc::new(Inner {
                db,
                shutdown,
                pid,
                next_run: AtomicI64::new(1),
                live: Mutex::new(HashMap::new()),
                wake: Arc::new(Notify::new()),
                poller: Mutex::new(None),
                deletes,
            }),
        }
    }

    /// The pid this registry records its jobs under.
    pub fn pid(&self) -> u32 {
        self.inner.pid
    }

    /// Registers a job and writes its row (replacing a row of the same id whose process is
    /// gone). Fails if the id is already running, here or in another live process.
    pub async fn register(&self, spec: JobSpec) -> Result<JobHandle, JobError> {
        let id = JobId::new(spec.kind, spec.key)?;
        if self.inner.shutdown.is_cancelled() {
            return Err(JobError::ShuttingDown);
        }
        let live = {
            let mut jobs = lock(&self.inner.live);
            if jobs.contains_key(&id.to_string()) {
                return Err(JobError::AlreadyRunning { id: id.to_string(), pid: self.inner.pid });
            }
            if jobs.len() >= MAX_JOBS {
                return Err(JobError::TooMany);
            }
            let live = Live {
                id: id.clone(),
                run: self.inner.next_run.fetch_add(1, Ordering::SeqCst),
                pausable: spec.pausable,
                token: self.inner.shutdown.child_token(),
                paused: Arc::new(watch::channel(false).0),
                killed: Arc::new(AtomicBool::new(false)),
            };
            jobs.insert(id.to_string(), live.clone());
            live
        };
        // From here on, an error drops the handle, which forgets the job again.
        let handle = JobHandle { inner: self.inner.clone(), live, done: false };
        let (key, ours, run) = (id.to_string(), self.inner.pid, handle.live.run);
        let kind = id.kind().prefix();
        let JobSpec { model, session_id, detail, pausable, .. } = spec;
        let holder = self
            .inner
            .db
            .call(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let holder: Option<i64> =
                    tx.query_row("SELECT pid FROM jobs WHERE id = ?1", [&key], |r| r.get(0)).optional()?;
                let holder = holder.and_then(|pid| u32::try_from(pid).ok());
                if let Some(pid) = holder.filter(|&pid| pid != ours && pid_alive(pid)) {
                    return Ok(Some(pid));
                }
                tx.execute(
                    "INSERT OR REPLACE INTO jobs
                     (id, kind, pid, run, status, pausable, started_at, model, session_id, detail, control)
                     VALUES (?1, ?2, ?3, ?4, 'running', ?5, ?6, ?7, ?8, ?9, NULL)",
                    params![key, kind, i64::from(ours), run, pausable, now_ms(), model, session_id, detail],
                )?;
                tx.commit()?;
                Ok(None)
            })
            .await?;
        if let Some(pid) = holder {
            return Err(JobError::AlreadyRunning { id: id.to_string(), pid });
        }
        self.start_poller();
        self.inner.wake.notify_one();
        Ok(handle)
    }

    /// Every process's jobs, oldest first. Rows of processes that are gone are deleted.
    pub async fn list(&self) -> Result<Vec<JobInfo>, DbError> {
        let rows = self
            .inner
            .db
            .call(|conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT id, kind, pid, run, status, started_at, model, session_id, detail
                     FROM jobs ORDER BY started_at, id",
                )?;
                let rows = stmt.query_map([], Row::read)?.collect::<Result<Vec<_>, _>>()?;
                Ok(rows)
            })
            .await?;
        let now = now_ms();
        let (mut jobs, mut stale) = (Vec::new(), Vec::new());
        for row in rows {
            let Some(pid) = self.live_pid(&row.id, row.pid, row.run) else {
                stale.push((row.id, row.pid, row.run));
                continue;
            };
            // A kind this binary does not know is another version's job: not ours to show.
            let Some(kind) = JobKind::from_prefix(&row.kind) else { continue };
            let status = match self.inner.live_run(&row.id, row.run).filter(|_| pid == self.inner.pid) {
                Some(live) => JobStatus::of(live.is_paused()),
                None => JobStatus::of(row.status == JobStatus::Paused.as_str()),
            };
            jobs.push(JobInfo {
                id: row.id,
                kind,
                status,
                pid,
                started_at: row.started_at,
                elapsed_ms: u64::try_from(now.saturating_sub(row.started_at)).unwrap_or(0),
                model: row.model,
                session_id: row.session_id,
                detail: row.detail,
            });
        }
        if !stale.is_empty() {
            self.inner.delete_rows(stale).await?;
        }
        Ok(jobs)
    }

    /// Asks a job to stop, pause or resume: a job of this process at once, a job of another
    /// process through its row's `control` column, which its owner applies within
    /// [`CONTROL_POLL`].
    pub async fn request(&self, id: &JobId, control: Control) -> Result<(), JobError> {
        let key = id.to_string();
        // Bound first: the lock must not be held across the await below.
        let live = lock(&self.inner.live).get(&key).cloned();
        if let Some(live) = live {
            return self.inner.apply_local(&live, control).await;
        }
        let (key2, ours, job) = (key.clone(), self.inner.pid, id.clone());
        let outcome = self
            .inner
            .db
            .call(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let row: Option<(i64, i64, String, bool, Option<String>)> = tx
                    .query_row("SELECT pid, run, status, pausable, control FROM jobs WHERE id = ?1", [&key2], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                    })
                    .optional()?;
                let Some((pid, run, status, pausable, pending)) = row else { return Ok(Remote::Missing) };
                let owner = u32::try_from(pid).ok().filter(|&p| p != ours && pid_alive(p));
                if owner.is_none() {
                    return Ok(Remote::NotOthers { pid, run });
                }
                let pending = pending.as_deref().and_then(Control::from_column);
                // What the job will be once its owner applies the pending request.
                let paused = match pending {
                    Some(Control::Pause) => true,
                    Some(Control::Resume) => false,
                    _ => status == JobStatus::Paused.as_str(),
                };
                let killing = pending == Some(Control::Kill);
                if let Err(e) = check(&job, pausable, paused, killing, control) {
                    return Ok(Remote::Refused(e));
                }
                if !killing {
                    tx.execute("UPDATE jobs SET control = ?1 WHERE id = ?2", params![control.as_str(), key2])?;
                    tx.commit()?;
                }
                Ok(Remote::Requested)
            })
            .await?;
        match outcome {
            Remote::Requested => Ok(()),
            Remote::Refused(e) => Err(e),
            Remote::Missing => Err(JobError::NoSuchJob { id: key }),
            Remote::NotOthers { pid, run } => {
                // Registered here since the first look? Else the row is a leftover.
                if let Some(live) = self.inner.live_run(&key, run).filter(|_| pid == i64::from(ours)) {
                    return self.inner.apply_local(&live, control).await;
                }
                self.inner.delete_rows(vec![(key.clone(), pid, run)]).await?;
                Err(JobError::NoSuchJob { id: key })
            }
        }
    }

    /// Waits until the row deletes of dropped handles have landed (before exiting, so other
    /// processes do not list finished jobs until they notice this process is gone; and tests).
    pub async fn flush(&self) {
        self.inner.deletes.wait().await;
    }

    /// The pid of a row's job if it is still running: ours if we hold it, another process's
    /// if that process is alive.
    fn live_pid(&self, id: &str, pid: i64, run: i64) -> Option<u32> {
        let pid = u32::try_from(pid).ok()?;
        let alive = if pid == self.inner.pid { self.inner.live_run(id, run).is_some() } else { pid_alive(pid) };
        alive.then_some(pid)
    }

    /// Starts the control poller unless it runs (the first job starts it; it idles while there
    /// are no jobs and ends on shutdown).
    fn start_poller(&self) {
        let mut poller = lock(&self.inner.poller);
        if poller.as_ref().is_none_or(|p| p.is_finished()) && !self.inner.shutdown.is_cancelled() {
            let (inner, wake, shutdown) =
                (Arc::downgrade(&self.inner), self.inner.wake.clone(), self.inner.shutdown.clone());
            *poller = Some(tokio::spawn(poll_controls(inner, wake, shutdown)));
        }
    }
}

/// What a control request found in the database.
enum Remote {
    Requested,
    Refused(JobError),
    Missing,
    /// The row is this registry's or its process is gone.
    NotOthers {
        pid: i64,
        run: i64,
    },
}

/// A row of `jobs` as `list` reads it.
struct Row {
    id: String,
    kind: String,
    pid: i64,
    run: i64,
    status: String,
    started_at: i64,
    model: Option<String>,
    session_id: Option<String>,
    detail: Option<String>,
}

impl Row {
    fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
        Ok(Row {
            id: r.get(0)?,
            kind: r.get(1)?,
            pid: r.get(2)?,
            run: r.get(3)?,
            status: r.get(4)?,
            started_at: r.get(5)?,
            model: r.get(6)?,
            session_id: r.get(7)?,
            detail: r.get(8)?,
        })
    }
}

impl Inner {
    /// The job `id` of this registry if it is the registration `run`.
    fn live_run(&self, id: &str, run: i64) -> Option<Live> {
        lock(&self.live).get(id).filter(|live| live.run == run).cloned()
    }

    async fn apply_local(&self, live: &Live, control: Control) -> Result<(), JobError> {
        live.apply(control)?;
        if control != Control::Kill
            && let Err(e) = self.write_status(live).await
        {
            // The job did pause or resume; only what other processes list lags.
            tracing::warn!(job = %live.id, error = %e, "could not record a job's status");
        }
        Ok(())
    }

    /// Writes the job's paused state, read under the connection's lock so that the last
    /// write always holds the latest state.
    async fn write_status(&self, live: &Live) -> Result<(), DbError> {
        let (id, pid, run, paused) = (live.id.to_string(), i64::from(self.pid), live.run, live.paused.subscribe());
        self.db
            .call(move |conn| {
                let status = JobStatus::of(*paused.borrow()).as_str();
                conn.execute(
                    "UPDATE jobs SET status = ?1 WHERE id = ?2 AND pid = ?3 AND run = ?4",
                    params![status, id, pid, run],
                )?;
                Ok(())
            })
            .await
    }

    /// Deletes rows `(id, pid, run)`; a row registered again since (another run) stays.
    async fn delete_rows(&self, rows: Vec<(String, i64, i64)>) -> Result<(), DbError> {
        self.db
            .call(move |conn| {
                let tx = conn.transaction()?;
                for (id, pid, run) in rows {
                    tx.execute("DELETE FROM jobs WHERE id = ?1 AND pid = ?2 AND run = ?3", params![id, pid, run])?;
                }
                tx.commit()?;
                Ok(())
            })
            .await
    }

    /// Applies and clears the control requests other processes wrote for this process's jobs.
    async fn apply_requests(&self) -> Result<(), DbError> {
        let pid = i64::from(self.pid);
        let requests: Vec<(String, i64, String)> = self
            .db
            .call(move |conn| {
                let mut stmt =
                    conn.prepare_cached("SELECT id, run, control FROM jobs WHERE pid = ?1 AND control IS NOT NULL")?;
                let rows = stmt.query_map([pid], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await?;
        if requests.is_empty() {
            return Ok(());
        }
        let mut applied = Vec::with_capacity(requests.len());
        for (id, run, control) in requests {
            let live = self.live_run(&id, run);
            if let (Some(live), Some(request)) = (&live, Control::from_column(&control))
                && let Err(e) = live.apply(request)
            {
                tracing::debug!(job = %id, error = %e, "ignoring a control request");
            }
            applied.push((id, run, control, live.map(|l| l.paused.subscribe())));
        }
        self.db
            .call(move |conn| {
                let tx = conn.transaction()?;
                for (id, run, control, paused) in applied {
                    let status = paused.map(|p| JobStatus::of(*p.borrow()).as_str());
                    // Only the request read: a newer one waits for the next poll.
                    tx.execute(
                        "UPDATE jobs SET control = NULL, status = COALESCE(?1, status)
                         WHERE id = ?2 AND pid = ?3 AND run = ?4 AND control = ?5",
                        params![status, id, pid, run, control],
                    )?;
                }
                tx.commit()?;
                Ok(())
            })
            .await
    }
}

/// The control poller: every [`CONTROL_POLL`] while this process has jobs, applies the
/// requests other processes wrote. Holds the registry weakly, so it never keeps it alive.
async fn poll_controls(inner: Weak<Inner>, wake: Arc<Notify>, shutdown: CancellationToken) {
    loop {
        let idle = match inner.upgrade() {
            Some(inner) => lock(&inner.live).is_empty(),
            None => return,
        };
        if idle {
            // `register` notifies after inserting, and a notification sent before this wait
            // is kept, so a new job never goes unpolled.
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = wake.notified() => continue,
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(CONTROL_POLL) => {}
        }
        let Some(inner) = inner.upgrade() else { return };
        if let Err(e) = inner.apply_requests().await {
            tracing::warn!(error = %e, "could not read the control requests of this process's jobs");
        }
    }
}

/// Whether a job's or team's owner still runs (a zombie, or a process being killed, is dead).
pub(crate) use crate::engine::liveness::pid_alive;

#[cfg(test)]
mod tests;
