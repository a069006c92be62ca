//! Projects: a directory, the paths its agents may use, and the teams that work on it
//! (`projects/defs.rs` reads `.ratchet/projects/<name>.yaml`), started, paused, resumed and
//! killed as one (`ratchet project …`), with their state in the orchestra's database so every
//! ratchet process on the data directory sees the same project status.
//!
//! - **Start** records the project as running and says which teams to launch, with their
//!   task, directory and allowed paths ([`ProjectLaunch`]); whoever launches them attaches
//!   their jobs ([`Projects::attach_job`]). Sessions opened for the project
//!   (`Orchestra::open_project_session`) are rooted at its `workdir` with its `paths` as their
//!   only other directories, so the tools' own sandbox refuses every other path to every agent
//!   of the project (their child sessions, workers and sub-agents, inherit those roots).
//! - **Pause**: its attached jobs are paused through the job registry (they hold before their
//!   next model call), and its agents take no new work: no new claims of its tasks
//!   (`tasks.rs`), no new project sessions. **Resume** undoes both.
//! - **Kill**: its attached jobs are killed, and it takes no work until started again.

mod control;
pub mod defs;
mod session;

use std::path::PathBuf;

use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use serde::{Deserialize, Serialize};

use super::db::{Db, DbError, now_ms};
use super::jobs::{JobError, JobId, JobRegistry};
use super::tasks::TaskError;
pub use control::{ControlReport, JobOutcome};
pub use defs::{ProjectCatalog, ProjectDef, ProjectOrigin, load};

/// Tables of projects: one row per project ever started (its latest run), and the jobs
/// attached to it (team members, the turns of its sessions as `session:<id>`). `paths` and
/// `teams` are JSON arrays of strings.
pub const SCHEMA: &str = "
CREATE TABLE projects (
    name        TEXT PRIMARY KEY,
    status      TEXT NOT NULL CHECK (status IN ('running', 'paused', 'killed')),
    cwd         TEXT NOT NULL,
    workdir     TEXT NOT NULL,
    paths       TEXT NOT NULL,
    teams       TEXT NOT NULL,
    source      TEXT NOT NULL,
    started_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE TABLE project_jobs (
    project     TEXT NOT NULL REFERENCES projects (name) ON DELETE CASCADE,
    job_id      TEXT NOT NULL,
    attached_at INTEGER NOT NULL,
    PRIMARY KEY (project, job_id)
);
CREATE INDEX project_jobs_by_job ON project_jobs (job_id);
";

/// Most jobs attached to one project: a few teams of a few members, and the turns of its
/// sessions; far fewer than this.
pub const MAX_PROJECT_JOBS: usize = 1000;

/// Where a project is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProjectStatus {
    Running,
    Paused,
    Killed,
}

impl ProjectStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ProjectStatus::Running => "running",
            ProjectStatus::Paused => "paused",
            ProjectStatus::Killed => "killed",
        }
    }

    fn parse(text: &str) -> Option<ProjectStatus> {
        [ProjectStatus::Running, ProjectStatus::Paused, ProjectStatus::Killed].into_iter().find(|s| s.as_str() == text)
    }
}

/// A project as recorded by its latest start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectRecord {
    pub name: String,
    pub status: ProjectStatus,
    pub cwd: PathBuf,
    pub workdir: PathBuf,
    pub paths: Vec<PathBuf>,
    pub teams: Vec<String>,
    /// The definition file it was started from.
    pub source: PathBuf,
    /// Unix milliseconds.
    pub started_at: i64,
    pub updated_at: i64,
    /// The job ids attached to it, oldest first (some may have ended).
    pub jobs: Vec<String>,
}

/// A team the project's start asks for: who launches it passes these on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamLaunch {
    pub team: String,
    /// What the team is asked to do (`task:` of the project file, or the start's own).
    pub task: Option<String>,
    /// The team's directory (the project's `workdir`).
    pub cwd: PathBuf,
    /// Every directory its members may use (`workdir` and `paths`).
    pub paths: Vec<PathBuf>,
}

/// What a start did and asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectLaunch {
    pub project: ProjectRecord,
    pub teams: Vec<TeamLaunch>,
}

/// Why a project operation did not apply.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error("project {name} is already running (since its start {since}); see it with `ratchet project status {name}`")]
    AlreadyRunning { name: String, since: String },
    #[error("project {name} is paused; `ratchet project resume {name}` lets it go on")]
    Paused { name: String },
    #[error("project {name} has not been started; start it with `ratchet project start {name}`")]
    NotStarted { name: String },
    #[error("project {name} is {status}, so it cannot be {action}")]
    Wrong { name: String, status: &'static str, action: &'static str },
    #[error("project {name}: its workdir {path} does not exist; create it or fix `workdir:` in {source_file}")]
    NoWorkdir { name: String, path: PathBuf, source_file: PathBuf },
    #[error("project {name} already has {MAX_PROJECT_JOBS} jobs attached; kill it and start it again")]
    TooManyJobs { name: String },
    #[error("cannot open a session for project {name}: {reason}")]
    Session { name: String, reason: String },
    #[error(transparent)]
    Job(#[from] JobError),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Projects in the orchestra's database. Cheap to clone.
#[derive(Clone)]
pub struct Projects {
    db: Db,
    /// Pause, resume and kill reach the project's jobs through it.
    jobs: JobRegistry,
}

impl Projects {
    pub fn new(db: Db, jobs: JobRegistry) -> Projects {
        Projects { db, jobs }
    }

    /// Records `def` as running (a killed or never started project; jobs attached to an
    /// earlier run are forgotten) and says which teams to launch. `task` overrides the file's.
    pub async fn start(&self, def: &ProjectDef, task: Option<String>) -> Result<ProjectLaunch, ProjectError> {
        if !def.workdir.is_dir() {
            return Err(ProjectError::NoWorkdir {
                name: def.name.clone(),
                path: def.workdir.clone(),
                source_file: def.source.clone(),
            });
        }
        let d = def.clone();
        let refused = self
            .db
            .call(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                if let Some(old) = get_row(&tx, &d.name)? {
                    match old.status {
                        ProjectStatus::Running => {
                            return Ok(Some(ProjectError::AlreadyRunning { name: d.name, since: super::tasks::since_text(old.started_at) }));
                        }
                        ProjectStatus::Paused => return Ok(Some(ProjectError::Paused { name: d.name })),
                        ProjectStatus::Killed => {}
                    }
                }
                tx.execute("DELETE FROM project_jobs WHERE project = ?1", [&d.name])?;
                let now = now_ms();
                tx.execute(
                    "INSERT OR REPLACE INTO projects (name, status, cwd, workdir, paths, teams, source, started_at, updated_at)
                     VALUES (?1, 'running', ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
                    params![
                        d.name,
                        d.cwd.to_string_lossy(),
                        d.workdir.to_string_lossy(),
                        json_paths(&d.paths),
                        serde_json::to_string(&d.teams).unwrap_or_else(|_| "[]".into()),
                        d.source.to_string_lossy(),
                        now
                    ],
                )?;
                tx.commit()?;
                Ok(None)
            })
            .await?;
        if let Some(e) = refused {
            return Err(e);
        }
        let project = self.require(&def.name).await?;
        let task = task.map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).or_else(|| def.task.clone());
        let teams = def
            .teams
            .iter()
            .map(|team| TeamLaunch {
                team: team.clone(),
                task: task.clone(),
                cwd: def.workdir.clone(),
                paths: def.allowed(),
            })
            .collect();
        Ok(ProjectLaunch { project, teams })
    }

    /// Attaches a job (a team member, a project session's turns as `session:<id>`) to a
    /// running project, so pause, resume and kill reach it. Attaching twice is once.
    pub async fn attach_job(&self, project: &str, job: &JobId) -> Result<(), ProjectError> {
        let (name, job) = (project.to_string(), job.to_string());
        let refused = self
            .db
            .call(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let Some(record) = get_row(&tx, &name)? else { return Ok(Some(ProjectError::NotStarted { name })) };
                match record.status {
                    ProjectStatus::Running => {}
                    ProjectStatus::Paused => return Ok(Some(ProjectError::Paused { name })),
                    ProjectStatus::Killed => return Ok(Some(ProjectError::NotStarted { name })),
                }
                if record.jobs.len() >= MAX_PROJECT_JOBS && !record.jobs.contains(&job) {
                    return Ok(Some(ProjectError::TooManyJobs { name }));
                }
                tx.execute(
                    "INSERT OR IGNORE INTO project_jobs (project, job_id, attached_at) VALUES (?1, ?2, ?3)",
                    params![name, job, now_ms()],
                )?;
                tx.commit()?;
                Ok(None)
            })
            .await?;
        refused.map_or(Ok(()), Err)
    }

    /// The project `name` as recorded; `None` if it was never started.
    pub async fn get(&self, name: &str) -> Result<Option<ProjectRecord>, DbError> {
        let name = name.to_string();
        self.db.call(move |conn| get_row(conn, &name)).await
    }

    /// The project `name`, or [`ProjectError::NotStarted`].
    pub async fn require(&self, name: &str) -> Result<ProjectRecord, ProjectError> {
        self.get(name).await?.ok_or_else(|| ProjectError::NotStarted { name: name.to_string() })
    }

    /// Every recorded project, by name.
    pub async fn list(&self) -> Result<Vec<ProjectRecord>, DbError> {
        self.db
            .call(|conn| {
                let names: Vec<String> = conn
                    .prepare_cached("SELECT name FROM projects ORDER BY name")?
                    .query_map([], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                let mut out = Vec::with_capacity(names.len());
                for name in names {
                    out.extend(get_row(conn, &name)?);
                }
                Ok(out)
            })
            .await
    }

    /// The project one of these jobs is attached to, if any (the first found, in order).
    pub async fn of_jobs(&self, jobs: Vec<String>) -> Result<Option<String>, DbError> {
        self.db
            .call(move |conn| {
                for job in jobs {
                    let found: Option<String> = conn
                        .prepare_cached(
                            "SELECT project FROM project_jobs WHERE job_id = ?1 ORDER BY attached_at DESC LIMIT 1",
                        )?
                        .query_row([job], |r| r.get(0))
                        .optional()?;
                    if found.is_some() {
                        return Ok(found);
                    }
                }
                Ok(None)
            })
            .await
    }
}

/// Why the agents of project `name` may take no new work now (paused or killed), as the error
/// a claim returns; `None` if it runs or is not recorded. Read inside the caller's transaction.
pub(super) fn refusal(conn: &Connection, name: &str) -> Result<Option<TaskError>, DbError> {
    let status: Option<String> = conn
        .prepare_cached("SELECT status FROM projects WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
        .optional()?;
    let next = match status.as_deref().and_then(ProjectStatus::parse) {
        None | Some(ProjectStatus::Running) => return Ok(None),
        Some(ProjectStatus::Paused) => format!("`ratchet project resume {name}` lets them go on"),
        Some(ProjectStatus::Killed) => format!("start it again with `ratchet project start {name}`"),
    };
    Ok(Some(TaskError::ProjectStopped { project: name.to_string(), status: status.unwrap_or_default(), next }))
}

fn get_row(conn: &Connection, name: &str) -> Result<Option<ProjectRecord>, DbError> {
    let row = conn
        .prepare_cached(
            "SELECT name, status, cwd, workdir, paths, teams, source, started_at, updated_at FROM projects WHERE name = ?1",
        )?
        .query_row([name], Raw::read)
        .optional()?;
    let Some(raw) = row else { return Ok(None) };
    let corrupt = |what: &str, value: &str| DbError::Corrupt(format!("project {}: {what} {value:?}", raw.name));
    let status = ProjectStatus::parse(&raw.status).ok_or_else(|| corrupt("status", &raw.status))?;
    let paths: Vec<String> = serde_json::from_str(&raw.paths).map_err(|_| corrupt("paths", &raw.paths))?;
    let teams: Vec<String> = serde_json::from_str(&raw.teams).map_err(|_| corrupt("teams", &raw.teams))?;
    let jobs: Vec<String> = conn
        .prepare_cached("SELECT job_id FROM project_jobs WHERE project = ?1 ORDER BY attached_at, job_id")?
        .query_map([name], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(Some(ProjectRecord {
        name: raw.name,
        status,
        cwd: raw.cwd.into(),
        workdir: raw.workdir.into(),
        paths: paths.into_iter().map(PathBuf::from).collect(),
        teams,
        source: raw.source.into(),
        started_at: raw.started_at,
        updated_at: raw.updated_at,
        jobs,
    }))
}

/// A `projects` row before its JSON columns are parsed.
struct Raw {
    name: String,
    status: String,
    cwd: String,
    workdir: String,
    paths: String,
    teams: String,
    source: String,
    started_at: i64,
    updated_at: i64,
}

impl Raw {
    fn read(r: &Row<'_>) -> rusqlite::Result<Raw> {
        Ok(Raw {
            name: r.get(0)?,
            status: r.get(1)?,
            cwd: r.get(2)?,
            workdir: r.get(3)?,
            paths: r.get(4)?,
            teams: r.get(5)?,
            source: r.get(6)?,
            started_at: r.get(7)?,
            updated_at: r.get(8)?,
        })
    }
}

fn json_paths(paths: &[PathBuf]) -> String {
    let texts: Vec<String> = paths.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    serde_json::to_string(&texts).unwrap_or_else(|_| "[]".into())
}

#[cfg(test)]
mod tests;
