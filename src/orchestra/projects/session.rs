//! Sessions of a project and who acts in a turn: a project session is an ordinary engine
//! session rooted at the project's `workdir` with its `paths` as the only other directories,
//! so the tools' sandbox (`engine::tools::sandbox`) refuses everything else; child sessions
//! (fleet workers, sub-agents) inherit those roots. Its turns are attached to the project as
//! the job `session:<id>`, so pause, resume and kill of the project reach them.

use super::{ProjectDef, ProjectError, ProjectStatus};
use crate::engine::SessionRecord;
use crate::orchestra::Orchestra;
use crate::orchestra::jobs::{JobId, JobKind};

/// How many parents up a session's project is looked for (a worker of a sub-agent of a
/// project session is three levels down; deeper chains are not made).
const MAX_SESSION_DEPTH: usize = 4;

impl Orchestra {
    /// Opens a new session for a running project's agent: rooted at its `workdir`, allowed
    /// its `paths` and nothing else, attached to the project.
    pub async fn open_project_session(&self, def: &ProjectDef) -> Result<SessionRecord, ProjectError> {
        let record = self.inner.projects.require(&def.name).await?;
        match record.status {
            ProjectStatus::Running => {}
            ProjectStatus::Paused => return Err(ProjectError::Paused { name: def.name.clone() }),
            ProjectStatus::Killed => return Err(ProjectError::NotStarted { name: def.name.clone() }),
        }
        let paths = def.paths.iter().filter(|p| **p != def.workdir).cloned().collect();
        let session = self
            .inner
            .engine
            .create_session(def.workdir.clone(), paths, Vec::new())
            .await
            .map_err(|e| ProjectError::Session { name: def.name.clone(), reason: e.to_string() })?;
        let job = JobId::new(JobKind::Session, session.id.clone())?;
        self.inner.projects.attach_job(&def.name, &job).await?;
        Ok(session)
    }

    /// The project a session works for: its own, or that of the session that started it.
    pub async fn project_of_session(&self, session: &str) -> Option<String> {
        let mut keys = Vec::new();
        let mut current = Some(session.to_string());
        while let Some(id) = current.take() {
            keys.push(format!("session:{id}"));
            if keys.len() >= MAX_SESSION_DEPTH {
                break;
            }
            current = self.inner.engine.session(id).await.ok().and_then(|s| s.parent_id);
        }
        // The jobs a session's turns run as (a worker's, a team member's) may be attached too.
        keys.push(self.turn_holder(session).await);
        match self.inner.projects.of_jobs(keys).await {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(error = %e, "cannot look up a session's project");
                None
            }
        }
    }

    /// The job a turn of `session` runs as (its claims are held by it): the registered job
    /// whose session it is, else `session:<id>`.
    pub async fn turn_holder(&self, session: &str) -> String {
        let fallback = format!("{}:{session}", JobKind::Session.prefix());
        match self.inner.jobs.list().await {
            Ok(jobs) => jobs.into_iter().find(|j| j.session_id.as_deref() == Some(session)).map_or(fallback, |j| j.id),
            Err(e) => {
                tracing::warn!(error = %e, "cannot list the jobs; the turn's claims are held as its session");
                fallback
            }
        }
    }
}
