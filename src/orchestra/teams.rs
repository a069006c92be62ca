//! Teams: several agents working on one task together, each a child session of the team's
//! root session playing its role (`config`), sharing a blackboard (`super::blackboard`) and
//! a message router (`router`) through the team tools (`tools`), run by one task per team
//! (`runtime`) in the process that started it (the daemon when one runs) and recorded in the
//! orchestra's database (`store`) and a transcript (`transcript`).
//!
//! [`Teams`] (from `Orchestra::teams`) starts and runs teams; [`TeamDesk`] is what any
//! process can do with them through the database alone (list, show, steer, message, add,
//! remove, rename, kill): controls are queued there and applied by the team's owner within
//! `CONTROL_POLL` (at once when the owner queued them itself).

mod chat;
pub mod config;
mod member;
pub mod router;
mod runtime;
pub mod store;
mod tools;
mod transcript;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::Orchestra;
use super::blackboard::{Blackboard, Entry};
use super::db::{Db, DbError};
use crate::engine::tools::redact::Redactor;
use crate::engine::turn_scope::{NoTurn, TurnScope};
pub(crate) use chat::command as chat_command;
pub use config::{MemberSpec, TeamConfig};
pub use runtime::{TeamOutcome, is_done};
pub use store::{MemberRecord, TeamControl, TeamEvent, TeamRecord, TeamStatus, TeamStore};
pub use tools::{MemberLink, TEAM_TOOLS, team_tools};

/// How often [`TeamDesk::wait`] reads a team's status.
pub const WAIT_POLL: Duration = Duration::from_millis(200);
/// Most teams `list` shows.
pub const LIST_LIMIT: usize = 200;

/// What starting a team takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct StartTeam {
    /// The team config's name (`code-gen`, `.ratchet/teams/<name>.yaml`).
    pub name: String,
    pub task: String,
    /// Where it starts (its config's `workdir` is relative to this).
    pub cwd: PathBuf,
    /// More directories its members' tools may touch, besides the config's `paths`.
    #[serde(default)]
    pub paths: Vec<PathBuf>,
    /// The project it works for (`ratchet project start`): its members' jobs are attached
    /// to it, so the project's pause and kill reach them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Where `.ratchet/teams/` and `.ratchet/agents/` are looked for, if not in `cwd` (a
    /// project's root, when its agents work in a subdirectory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_dir: Option<PathBuf>,
}

/// A team as `ratchet team show` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TeamView {
    pub team: TeamRecord,
    pub members: Vec<MemberRecord>,
    pub blackboard: Vec<Entry>,
}

/// The orchestra's part for teams: the database, and the running teams' member links
/// (which session is which member, for the team tools) and wake-ups.
pub(super) struct TeamsState {
    db: Db,
    store: TeamStore,
    links: Mutex<HashMap<String, Arc<MemberLink>>>,
    wakes: Mutex<HashMap<String, Arc<Notify>>>,
    redactor: OnceLock<Arc<Redactor>>,
}

impl TeamsState {
    pub(super) fn new(db: Db) -> TeamsState {
        TeamsState {
            store: TeamStore::new(db.clone()),
            db,
            links: Mutex::default(),
            wakes: Mutex::default(),
            redactor: OnceLock::new(),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Orchestra {
    /// Starting, running and controlling teams.
    pub fn teams(&self) -> Teams<'_> {
        Teams { orchestra: self }
    }

    /// Which session is which team member (their tools are bound to it).
    pub(super) fn team_links(&self) -> MutexGuard<'_, HashMap<String, Arc<MemberLink>>> {
        lock(&self.inner.teams.links)
    }

    /// The team member playing `session`, if any.
    pub(super) fn team_member(&self, session: &str) -> Option<Arc<MemberLink>> {
        self.team_links().get(session).cloned()
    }

    /// The engine's secret redactor, for the transcripts (set by the composition root).
    pub fn set_redactor(&self, redactor: Arc<Redactor>) {
        let _ = self.inner.teams.redactor.set(redactor);
    }
}

/// Teams of one orchestra.
pub struct Teams<'a> {
    orchestra: &'a Orchestra,
}

impl Teams<'_> {
    /// What every process can do with teams.
    pub fn desk(&self) -> TeamDesk {
        TeamDesk {
            store: self.orchestra.inner.teams.store.clone(),
            db: self.orchestra.inner.teams.db.clone(),
            home: self.orchestra.inner.home.clone(),
        }
    }

    /// Starts team `req.name` on `req.task` in its own root session and returns at once; the
    /// team runs in this process (owned by the orchestra) until it ends.
    pub async fn start(&self, req: StartTeam) -> Result<TeamRecord, String> {
        let (run, record) = self.prepare(req, None, Arc::new(NoTurn), CancellationToken::new()).await?;
        let wakes = self.orchestra.clone();
        let id = record.id.clone();
        self.orchestra.inner.tasks.spawn(async move {
            let root = run.root.clone();
            let outcome = run.run().await;
            tracing::info!(team = %outcome.id, status = outcome.status.as_str(), "team ended");
            lock(&wakes.inner.teams.wakes).remove(&id);
            let _ = wakes.inner.engine.close_session(root).await;
        });
        Ok(record)
    }

    /// Runs team `req.name` to its end inside the turn `scope` of session `parent` (each
    /// member shown as a tool call of it); `kill` (the turn's cancel) stops it.
    pub async fn run_in(
        &self,
        req: StartTeam,
        parent: &str,
        scope: Arc<dyn TurnScope>,
        kill: CancellationToken,
    ) -> Result<TeamOutcome, String> {
        let (run, record) = self.prepare(req, Some(parent.to_string()), scope, kill).await?;
        let outcome = run.run().await;
        lock(&self.orchestra.inner.teams.wakes).remove(&record.id);
        Ok(outcome)
    }

    async fn prepare(
        &self,
        req: StartTeam,
        parent: Option<String>,
        scope: Arc<dyn TurnScope>,
        kill: CancellationToken,
    ) -> Result<(runtime::TeamRun, TeamRecord), String> {
        let o = &self.orchestra.inner;
        let task = req.task.trim().to_string();
        if task.is_empty() {
            return Err("a team needs a task: say what it should do".into());
        }
        let config = config::find(&req.name, req.config_dir.as_deref().unwrap_or(&req.cwd), &o.home)?;
        let workdir = match &config.workdir {
            Some(w) => req.cwd.join(w),
            None => req.cwd.clone(),
        };
        let mut paths: Vec<PathBuf> = req.paths.clone();
        paths.extend(config.paths.iter().map(|p| req.cwd.join(p)));
        let root = match parent {
            Some(p) => p,
            None => o.engine.create_session(workdir.clone(), paths, Vec::new()).await.map_err(|e| e.to_string())?.id,
        };
        let new = store::NewTeam {
            name: config.name.clone(),
            config: config.clone(),
            task: task.clone(),
            cwd: workdir.clone(),
            transcript_dir: o.home.join("transcripts"),
        };
        let record = o.teams.store.create(new).await.map_err(|e| e.to_string())?;
        o.teams.store.set_root(&record.id, &root).await.map_err(|e| e.to_string())?;
        let wake = Arc::new(Notify::new());
        lock(&o.teams.wakes).insert(record.id.clone(), wake.clone());
        let redactor = o.teams.redactor.get().cloned().unwrap_or_else(|| Arc::new(Redactor::new(Vec::new())));
        // A kill from the starter or a control; the orchestra's shutdown is watched apart.
        let run = runtime::TeamRun {
            orchestra: self.orchestra.clone(),
            id: record.id.clone(),
            name: record.name.clone(),
            config,
            task,
            cwd: workdir,
            project: req.project.clone(),
            root,
            scope,
            kill,
            wake,
            store: o.teams.store.clone(),
            board: Blackboard::new(o.teams.db.clone(), record.id.clone()),
            transcript: transcript::Transcript::new(record.transcript.clone(), redactor),
        };
        Ok((run, record))
    }

    /// Queues a control and wakes the team if it runs here.
    pub async fn control(&self, id: &str, control: TeamControl) -> Result<String, String> {
        let said = self.desk().control(id, control).await?;
        if let Some(wake) = lock(&self.orchestra.inner.teams.wakes).get(&canonical(id)) {
            wake.notify_one();
        }
        Ok(said)
    }

    pub async fn list(&self) -> Result<Vec<TeamRecord>, String> {
        self.desk().list().await
    }

    pub async fn show(&self, id: &str) -> Result<TeamView, String> {
        self.desk().show(id).await
    }

    pub async fn steer(&self, id: &str, directive: &str) -> Result<String, String> {
        self.control(id, TeamControl::Steer(directive.to_string())).await
    }

    pub async fn message(&self, id: &str, member: &str, text: &str) -> Result<String, String> {
        self.control(id, TeamControl::Message { member: member.into(), text: text.into() }).await
    }

    pub async fn add(&self, id: &str, agent: &str) -> Result<String, String> {
        self.control(id, TeamControl::Add(agent.into())).await
    }

    pub async fn remove(&self, id: &str, member: &str) -> Result<String, String> {
        self.control(id, TeamControl::Remove(member.into())).await
    }

    pub async fn rename(&self, id: &str, name: &str) -> Result<String, String> {
        self.desk().rename(id, name).await
    }

    pub async fn kill(&self, id: &str) -> Result<String, String> {
        self.control(id, TeamControl::Kill).await
    }
}

/// `12` or `t12` as `t12`.
fn canonical(id: &str) -> String {
    store::parse_id(id).map(|n| format!("t{n}")).unwrap_or_else(|| id.to_string())
}

/// Teams through the database: what the CLI does in any process.
#[derive(Clone)]
pub struct TeamDesk {
    store: TeamStore,
    db: Db,
    home: PathBuf,
}

impl TeamDesk {
    /// The desk on the orchestra database `db` of the data directory `home`.
    pub fn new(db: Db, home: &Path) -> TeamDesk {
        TeamDesk { store: TeamStore::new(db.clone()), db, home: home.to_path_buf() }
    }

    /// Every team, newest first; a running team whose process is gone is marked interrupted.
    pub async fn list(&self) -> Result<Vec<TeamRecord>, String> {
        let mut teams = self.store.list(LIST_LIMIT).await.map_err(err)?;
        for t in &mut teams {
            self.settle(t).await.map_err(err)?;
        }
        Ok(teams)
    }

    pub async fn get(&self, id: &str) -> Result<TeamRecord, String> {
        let mut team = self
            .store
            .get(id)
            .await
            .map_err(err)?
            .ok_or_else(|| format!("there is no team {id:?}; `ratchet team list` shows them"))?;
        self.settle(&mut team).await.map_err(err)?;
        Ok(team)
    }

    pub async fn show(&self, id: &str) -> Result<TeamView, String> {
        let team = self.get(id).await?;
        let members = self.store.members(&team.id).await.map_err(err)?;
        let blackboard = Blackboard::new(self.db.clone(), team.id.clone()).list().await.map_err(err)?;
        Ok(TeamView { team, members, blackboard })
    }

    /// The team's events after event `after`.
    pub async fn events(&self, id: &str, after: i64) -> Result<Vec<TeamEvent>, String> {
        self.store.events(&canonical(id), after).await.map_err(err)
    }

    /// Waits until the team is no longer running (or `cancel` fires); returns it as it is.
    pub async fn wait(&self, id: &str, cancel: &CancellationToken) -> Result<TeamRecord, String> {
        loop {
            let team = self.get(id).await?;
            if team.status != TeamStatus::Running {
                return Ok(team);
            }
            tokio::select! {
                () = cancel.cancelled() => return Ok(team),
                () = tokio::time::sleep(WAIT_POLL) => {}
            }
        }
    }

    pub async fn rename(&self, id: &str, name: &str) -> Result<String, String> {
        let name = name.trim();
        if name.is_empty() || name.len() > 200 {
            return Err("a team's name is 1 to 200 characters".into());
        }
        let team = self.get(id).await?;
        self.store.rename(&team.id, name).await.map_err(err)?;
        Ok(format!("team {} is now called {name:?}", team.id))
    }

    /// Queues `control` for a running team, after checking what can be checked here.
    pub async fn control(&self, id: &str, control: TeamControl) -> Result<String, String> {
        let team = self.get(id).await?;
        if team.status != TeamStatus::Running {
            return Err(format!(
                "team {} is {}, not running: there is nothing to control",
                team.id,
                team.status.as_str()
            ));
        }
        let members = self.store.members(&team.id).await.map_err(err)?;
        let live = |name: &str| {
            members.iter().any(|m| m.name == name && matches!(m.status.as_str(), "waiting" | "working" | "done"))
        };
        let said = match &control {
            TeamControl::Steer(t) if t.trim().is_empty() => return Err("say what the directive is".into()),
            TeamControl::Steer(_) => format!("directive queued for every member of team {}", team.id),
            TeamControl::Message { member, .. } if !live(member) => return Err(no_member(&team.id, member, &members)),
            TeamControl::Message { member, .. } => format!("message queued for {member} of team {}", team.id),
            TeamControl::Remove(member) if !live(member) => return Err(no_member(&team.id, member, &members)),
            TeamControl::Remove(member) => format!("{member} of team {} is being removed", team.id),
            TeamControl::Add(agent) => {
                let catalog = super::agents::load(&team.cwd, &self.home);
                config::member_from_definition(agent, &catalog)?;
                format!("{agent} is joining team {}", team.id)
            }
            TeamControl::Kill => format!("team {} is being stopped", team.id),
        };
        self.store.queue(&team.id, &control).await.map_err(err)?;
        Ok(said)
    }

    /// A running team whose owner is gone is recorded as interrupted.
    async fn settle(&self, team: &mut TeamRecord) -> Result<(), DbError> {
        if team.status == TeamStatus::Running && !super::jobs::pid_alive(team.pid) {
            let summary = format!("its process {} stopped while it ran", team.pid);
            self.store.finish(&team.id, TeamStatus::Interrupted, &summary).await?;
            team.status = TeamStatus::Interrupted;
            team.summary = Some(summary);
        }
        Ok(())
    }
}

fn no_member(team: &str, member: &str, members: &[MemberRecord]) -> String {
    let names: Vec<String> = members
        .iter()
        .filter(|m| matches!(m.status.as_str(), "waiting" | "working" | "done"))
        .map(|m| m.name.clone())
        .collect();
    format!("team {team} has no member {member:?} still working; its members are: {}", names.join(", "))
}

fn err(e: DbError) -> String {
    e.to_string()
}

#[cfg(test)]
mod tests;
