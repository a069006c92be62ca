//! Pause, resume and kill of a project: its status in the database first (so no new work is
//! taken from that moment), then a request to each of its attached jobs through the job
//! registry, which reaches them in whichever process runs them.

use rusqlite::{OptionalExtension, TransactionBehavior, params};
use serde::Serialize;

use super::{ProjectError, ProjectRecord, ProjectStatus, Projects, get_row};
use crate::orchestra::db::now_ms;
use crate::orchestra::jobs::{Control, JobError, JobId};

/// What happened to one attached job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobOutcome {
    pub job: String,
    /// `requested`, `not running`, or why the job refused.
    pub outcome: String,
}

/// A project after a control, and what each of its jobs did with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ControlReport {
    pub project: ProjectRecord,
    pub jobs: Vec<JobOutcome>,
}

impl Projects {
    /// Pauses a running project: no new work, and its jobs hold before their next step.
    pub async fn pause(&self, name: &str) -> Result<ControlReport, ProjectError> {
        self.control(name, Control::Pause).await
    }

    /// Lets a paused project go on.
    pub async fn resume(&self, name: &str) -> Result<ControlReport, ProjectError> {
        self.control(name, Control::Resume).await
    }

    /// Kills a project's jobs; it takes no work until started again.
    pub async fn kill(&self, name: &str) -> Result<ControlReport, ProjectError> {
        self.control(name, Control::Kill).await
    }

    /// Applies the project's state to a job that just started (a turn of a project session):
    /// paused if its project is paused, killed if it was killed. The turn is not held up for
    /// this look, so it takes effect before the turn's next model call. Errors are logged: the
    /// job then runs as if it had no project.
    pub async fn hold_new_job(&self, job: &JobId) {
        let key = job.to_string();
        let status = self
            .db
            .call(move |conn| {
                let status: Option<String> = conn
                    .prepare_cached(
                        "SELECT p.status FROM project_jobs j JOIN projects p ON p.name = j.project
                         WHERE j.job_id = ?1 ORDER BY j.attached_at DESC LIMIT 1",
                    )?
                    .query_row([key], |r| r.get(0))
                    .optional()?;
                Ok(status.as_deref().and_then(ProjectStatus::parse))
            })
            .await;
        let control = match status {
            Ok(Some(ProjectStatus::Paused)) => Control::Pause,
            Ok(Some(ProjectStatus::Killed)) => Control::Kill,
            Ok(_) => return,
            Err(e) => return tracing::warn!(job = %job, error = %e, "cannot read the project of a job"),
        };
        if let Err(e) = self.jobs.request(job, control).await {
            tracing::warn!(job = %job, error = %e, "cannot hold a job of a stopped project");
        }
    }

    async fn control(&self, name: &str, control: Control) -> Result<ControlReport, ProjectError> {
        let (from, to, action): (&[ProjectStatus], ProjectStatus, &'static str) = match control {
            Control::Pause => (&[ProjectStatus::Running], ProjectStatus::Paused, "paused"),
            Control::Resume => (&[ProjectStatus::Paused], ProjectStatus::Running, "resumed"),
            Control::Kill => (&[ProjectStatus::Running, ProjectStatus::Paused], ProjectStatus::Killed, "killed"),
        };
        let key = name.to_string();
        let changed = self
            .db
            .call(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let Some(record) = get_row(&tx, &key)? else { return Ok(Err(ProjectError::NotStarted { name: key })) };
                if !from.contains(&record.status) {
                    return Ok(Err(ProjectError::Wrong { name: key, status: record.status.as_str(), action }));
                }
                tx.execute(
                    "UPDATE projects SET status = ?1, updated_at = ?2 WHERE name = ?3",
                    params![to.as_str(), now_ms(), key],
                )?;
                let record = get_row(&tx, &key)?;
                tx.commit()?;
                Ok(record.ok_or(ProjectError::NotStarted { name: key }))
            })
            .await??;
        let mut jobs = Vec::with_capacity(changed.jobs.len());
        for job in &changed.jobs {
            let outcome = match JobId::parse(job) {
                Ok(id) => match self.jobs.request(&id, control).await {
                    Ok(()) => "requested".to_string(),
                    Err(JobError::NoSuchJob { .. }) => "not running".to_string(),
                    // Resuming a job that was never paused (it started after the pause) is fine.
                    Err(JobError::NotPaused { .. }) => "not paused".to_string(),
                    Err(JobError::Db(e)) => return Err(e.into()),
                    Err(e) => e.to_string(),
                },
                Err(e) => e.to_string(),
            };
            jobs.push(JobOutcome { job: job.clone(), outcome });
        }
        Ok(ControlReport { project: changed, jobs })
    }
}
