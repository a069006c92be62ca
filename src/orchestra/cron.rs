//! Cron: prompts (or `/commands`) that run in their session on a schedule.
//!
//! Jobs live in the `cron_jobs` table of the orchestra's database ([`CronStore`]), so the CLI
//! (`ratchet cron …`) adds and controls them from any process, and they survive restarts.
//! Exactly one process fires them: the one holding the data directory's singleton lock
//! (`engine::singleton`; the daemon when one runs, since `ratchet acp` then uses the daemon's
//! engine). Its scheduler ([`CronApi::start_scheduler`]) looks at the table every
//! [`CRON_POLL`] at most, one indexed query for the soonest runs, and sleeps until the next
//! one is due. Each run is claimed with a compare-and-set on `next_run` (two holders could
//! still not fire one run twice), then runs as a turn of its session through the engine's
//! face, a `cron:<id>` job; a busy session delays the run until its turn is free.
//!
//! A run missed while no scheduler ran fires once when one starts (`catch_up = "once"`, the
//! default) or is skipped (`"skip"`), per job or by `[cron] catch_up` in `config.toml`.

pub mod chat;
mod runner;
pub mod schedule;
mod store;
mod turn;

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

use super::Orchestra;
pub use schedule::{Schedule, ScheduleError};
pub use store::{CatchUp, CronAction, CronError, CronJob, CronStatus, CronStore, NewCronJob, SCHEMA};

/// How long the scheduler sleeps at most before it looks at the table again: the longest a
/// job added or resumed by another process (the CLI) waits past its time. One query on an
/// index per look, so idling with a thousand jobs costs next to nothing (see BENCHMARKS.md).
pub const CRON_POLL: Duration = Duration::from_secs(1);

/// How often a run whose session is busy tries again to start its turn.
pub const CRON_BUSY_RETRY: Duration = Duration::from_millis(250);

/// Most due jobs the scheduler claims in one look; more are taken at the next look, at once.
pub const DUE_BATCH: usize = 32;

/// One run, as it fires: what a `cron_fired` hook is told.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CronRun {
    pub job_id: i64,
    pub session_id: String,
    pub schedule: String,
    pub prompt: String,
    /// Unix ms the run was due.
    pub planned_ms: i64,
    /// Unix ms it fired (later than planned if it was missed, or the scheduler was busy).
    pub fired_ms: i64,
    /// This run's number, counting from 1.
    pub run_number: i64,
}

/// The scheduler's state in its orchestra.
pub(super) struct CronState {
    store: CronStore,
    /// Wakes the scheduler: a job changed here, or a run ended.
    wake: Notify,
    /// Jobs whose run is going on here; not fired again until it ends (a run that outlasts its
    /// interval makes the next one wait, then fire once).
    in_flight: Mutex<HashSet<i64>>,
    started: AtomicBool,
    holds_lock: AtomicBool,
    /// Times the scheduler's loop woke up (the benchmark's figure).
    wakeups: AtomicU64,
}

impl CronState {
    pub(super) fn new(db: super::db::Db) -> CronState {
        CronState {
            store: CronStore::new(db),
            wake: Notify::new(),
            in_flight: Mutex::default(),
            started: AtomicBool::new(false),
            holds_lock: AtomicBool::new(false),
            wakeups: AtomicU64::new(0),
        }
    }

    fn in_flight(&self) -> std::sync::MutexGuard<'_, HashSet<i64>> {
        self.in_flight.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The cron jobs of an orchestra's data directory, and its scheduler (`Orchestra::cron`).
#[derive(Clone)]
pub struct CronApi {
    orchestra: Orchestra,
}

impl CronApi {
    pub(super) fn new(orchestra: Orchestra) -> CronApi {
        CronApi { orchestra }
    }

    fn state(&self) -> &CronState {
        &self.orchestra.inner.cron
    }

    /// Adds a job (checked: the schedule parses, the prompt is not empty).
    pub async fn add(&self, new: NewCronJob) -> Result<CronJob, CronError> {
        let job = self.state().store.add(new).await?;
        self.state().wake.notify_one();
        Ok(job)
    }

    /// Every job, or one session's.
    pub async fn list(&self, session: Option<&str>) -> Result<Vec<CronJob>, CronError> {
        self.state().store.list(session).await
    }

    pub async fn get(&self, id: i64) -> Result<Option<CronJob>, CronError> {
        self.state().store.get(id).await
    }

    pub async fn pause(&self, id: i64) -> Result<CronJob, CronError> {
        self.control(id, CronAction::Pause).await
    }

    pub async fn resume(&self, id: i64) -> Result<CronJob, CronError> {
        self.control(id, CronAction::Resume).await
    }

    /// Stops a job for good; a run going on finishes (kill it with `ratchet jobs kill cron:<id>`).
    pub async fn stop(&self, id: i64) -> Result<CronJob, CronError> {
        self.control(id, CronAction::Stop).await
    }

    pub async fn control(&self, id: i64, action: CronAction) -> Result<CronJob, CronError> {
        let job = self.state().store.control(id, action).await?;
        self.state().wake.notify_one();
        Ok(job)
    }

    /// Starts the scheduler (once per orchestra; later calls do nothing). It waits for the
    /// singleton lock, then fires jobs until the orchestra shuts down. Call it where the engine
    /// serves: standalone `ratchet acp` and the daemon.
    pub fn start_scheduler(&self) {
        if self.state().started.swap(true, Ordering::SeqCst) {
            return;
        }
        let orchestra = self.orchestra.clone();
        self.orchestra.inner.tasks.spawn(runner::run_scheduler(orchestra));
    }

    /// True once this process holds the singleton lock and fires the jobs.
    pub fn is_firing(&self) -> bool {
        self.state().holds_lock.load(Ordering::SeqCst)
    }

    /// How many times the scheduler's loop has woken up (its idle cost, for the benchmark).
    pub fn scheduler_wakeups(&self) -> u64 {
        self.state().wakeups.load(Ordering::Relaxed)
    }
}

/// A Unix-ms time as local time, to the second (`2026-12-02 09:00:00`).
pub fn local_time(ms: i64) -> String {
    use chrono::TimeZone;
    match chrono::Local.timestamp_millis_opt(ms).single() {
        Some(t) => t.format("%Y-%m-%d %H:%M:%S").to_string(),
        None => ms.to_string(),
    }
}

impl Orchestra {
    /// The cron jobs and the scheduler.
    pub fn cron(&self) -> CronApi {
        CronApi::new(self.clone())
    }
}

#[cfg(test)]
mod tests;
