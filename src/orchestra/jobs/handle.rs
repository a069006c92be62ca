//! A job as the code that runs it holds it, and as the registry holds it.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rusqlite::params;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{Control, Inner, JobError, JobId, check, lock};
use crate::orchestra::db::DbError;

/// A job of this process, as the registry holds it.
#[derive(Clone)]
pub(super) struct Live {
    pub(super) id: JobId,
    pub(super) run: i64,
    pub(super) pausable: bool,
    pub(super) token: CancellationToken,
    pub(super) paused: Arc<watch::Sender<bool>>,
    pub(super) killed: Arc<AtomicBool>,
}

impl Live {
    pub(super) fn is_paused(&self) -> bool {
        *self.paused.borrow()
    }

    pub(super) fn apply(&self, control: Control) -> Result<(), JobError> {
        check(&self.id, self.pausable, self.is_paused(), self.killed.load(Ordering::SeqCst), control)?;
        match control {
            // A job that shutdown already cancelled was not killed.
            Control::Kill if !self.token.is_cancelled() => {
                self.killed.store(true, Ordering::SeqCst);
                self.token.cancel();
            }
            Control::Kill => {}
            Control::Pause => _ = self.paused.send_replace(true),
            Control::Resume => _ = self.paused.send_replace(false),
        }
        Ok(())
    }
}

/// A registered job, held by the code that runs it. Dropping it (or [`JobHandle::finish`])
/// ends the job: the registry forgets it and its row is deleted.
pub struct JobHandle {
    pub(super) inner: Arc<Inner>,
    pub(super) live: Live,
    pub(super) done: bool,
}

impl JobHandle {
    pub fn id(&self) -> &JobId {
        &self.live.id
    }

    /// Fired by a kill request, and by shutdown (a child of the registry's shutdown token).
    pub fn token(&self) -> &CancellationToken {
        &self.live.token
    }

    /// Whether the job is paused, and its changes.
    pub fn paused(&self) -> watch::Receiver<bool> {
        self.live.paused.subscribe()
    }

    /// Returns once the job is not paused, or at once if it is not; also when it is cancelled
    /// (a paused job can be killed). Pausable jobs call it between their steps.
    pub async fn wait_unpaused(&self) {
        let mut paused = self.live.paused.subscribe();
        tokio::select! {
            _ = self.live.token.cancelled() => {}
            _ = paused.wait_for(|paused| !*paused) => {}
        }
    }

    /// True if a kill request (not shutdown) cancelled the job.
    pub fn killed(&self) -> bool {
        self.live.killed.load(Ordering::SeqCst)
    }

    /// Records the model the job now uses (a fleet worker's step picks its model).
    pub async fn set_model(&self, model: Option<String>) -> Result<(), DbError> {
        self.set_column("model", model).await
    }

    /// Records what the job now does ("plan p3 step s2").
    pub async fn set_detail(&self, detail: Option<String>) -> Result<(), DbError> {
        self.set_column("detail", detail).await
    }

    async fn set_column(&self, column: &'static str, value: Option<String>) -> Result<(), DbError> {
        let (id, pid, run) = (self.live.id.to_string(), i64::from(self.inner.pid), self.live.run);
        let sql = format!("UPDATE jobs SET {column} = ?1 WHERE id = ?2 AND pid = ?3 AND run = ?4");
        self.inner
            .db
            .call(move |conn| {
                conn.execute(&sql, params![value, id, pid, run])?;
                Ok(())
            })
            .await
    }

    /// Ends the job and waits for its row to be deleted.
    pub async fn finish(mut self) -> Result<(), DbError> {
        self.done = true;
        self.forget();
        let row = (self.live.id.to_string(), i64::from(self.inner.pid), self.live.run);
        self.inner.delete_rows(vec![row]).await
    }

    fn forget(&self) {
        let mut jobs = lock(&self.inner.live);
        if jobs.get(&self.live.id.to_string()).is_some_and(|live| live.run == self.live.run) {
            jobs.remove(&self.live.id.to_string());
        }
    }
}

impl fmt::Debug for JobHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobHandle").field("id", &self.live.id.to_string()).field("run", &self.live.run).finish()
    }
}

impl Drop for JobHandle {
    /// Forgets the job at once and deletes its row on a task of the current runtime. Outside
    /// a runtime the row stays behind until a `list` sees that this process no longer holds
    /// it (or that the process is gone) and deletes it.
    fn drop(&mut self) {
        if self.done {
            return;
        }
        self.forget();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let inner = self.inner.clone();
        let row = (self.live.id.to_string(), i64::from(inner.pid), self.live.run);
        let task = async move {
            if let Err(e) = inner.delete_rows(vec![row]).await {
                tracing::debug!(error = %e, "could not delete a finished job's row; `list` will");
            }
        };
        self.inner.deletes.spawn_on(task, &runtime);
    }
}
