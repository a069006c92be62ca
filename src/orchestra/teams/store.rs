//! A team's rows in the orchestra's database: the team (status, owner process), its members
//! (status, turns), its events (what `ratchet team attach` follows) and the controls other
//! processes queue for its owner (steer, message, add, remove, kill), which the owner reads
//! every `CONTROL_POLL` and deletes as it applies them.

use std::path::PathBuf;

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::orchestra::db::{Db, DbError, now_ms};

/// Tables of the teams. `teams.id` is shown as `t<id>`.
pub const SCHEMA: &str = "
CREATE TABLE teams (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL,
    config_name  TEXT NOT NULL,
    config       TEXT NOT NULL,
    task         TEXT NOT NULL,
    cwd          TEXT NOT NULL,
    status       TEXT NOT NULL,
    summary      TEXT,
    pid          INTEGER NOT NULL,
    root_session TEXT,
    transcript   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    ended_at     INTEGER
);
CREATE TABLE team_members (
    team       INTEGER NOT NULL,
    name       TEXT NOT NULL,
    role       TEXT NOT NULL,
    session_id TEXT,
    status     TEXT NOT NULL,
    turns      INTEGER NOT NULL DEFAULT 0,
    detail     TEXT,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (team, name)
);
CREATE TABLE team_events (
    id     INTEGER PRIMARY KEY,
    team   INTEGER NOT NULL,
    at     INTEGER NOT NULL,
    kind   TEXT NOT NULL,
    member TEXT,
    text   TEXT NOT NULL
);
CREATE INDEX team_events_by_team ON team_events (team, id);
CREATE TABLE team_controls (
    id         INTEGER PRIMARY KEY,
    team       INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    member     TEXT,
    text       TEXT,
    created_at INTEGER NOT NULL
);
";

/// Longest event text kept in the database (the transcript has all of it).
pub const MAX_EVENT_CHARS: usize = 4000;

/// A team's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TeamStatus {
    Running,
    /// Every member (but those removed) wrote `done` (or `approved`).
    Completed,
    /// Nothing more to do, but some member did not finish (failed, hit a cap, stalled).
    Incomplete,
    TimedOut,
    Killed,
    /// Its process stopped (shut down or died) while it ran.
    Interrupted,
    /// It could not start.
    Failed,
}

impl TeamStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TeamStatus::Running => "running",
            TeamStatus::Completed => "completed",
            TeamStatus::Incomplete => "incomplete",
            TeamStatus::TimedOut => "timed_out",
            TeamStatus::Killed => "killed",
            TeamStatus::Interrupted => "interrupted",
            TeamStatus::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> TeamStatus {
        [
            TeamStatus::Running,
            TeamStatus::Completed,
            TeamStatus::Incomplete,
            TeamStatus::TimedOut,
            TeamStatus::Killed,
            TeamStatus::Interrupted,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
        .unwrap_or(TeamStatus::Failed)
    }
}

/// A team as `ratchet team list|show` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamRecord {
    pub id: String,
    pub name: String,
    /// The config it runs (`code-gen`, a file's name).
    pub config: String,
    pub task: String,
    pub cwd: PathBuf,
    pub status: TeamStatus,
    pub summary: Option<String>,
    /// The process that runs it.
    pub pid: u32,
    /// The session its members are children of.
    pub root_session: Option<String>,
    pub transcript: PathBuf,
    pub created_at: i64,
    pub ended_at: Option<i64>,
}

/// A member as `ratchet team show` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberRecord {
    pub name: String,
    pub role: String,
    pub session_id: Option<String>,
    /// `waiting`, `working`, `done`, `capped`, `failed`, `killed`, `removed`, `timed_out`, `stalled`.
    pub status: String,
    pub turns: u32,
    pub detail: Option<String>,
}

/// One thing that happened in a team.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TeamEvent {
    pub id: i64,
    pub at: i64,
    /// `start`, `turn`, `said`, `message`, `board`, `status`, `control`, `end`.
    pub kind: String,
    pub member: Option<String>,
    pub text: String,
}

/// A request for a team's owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TeamControl {
    /// A directive to every member.
    Steer(String),
    /// A message to one member.
    Message {
        member: String,
        text: String,
    },
    /// A new member playing an agent definition.
    Add(String),
    Remove(String),
    Kill,
}

impl TeamControl {
    fn columns(&self) -> (&'static str, Option<String>, Option<String>) {
        match self {
            TeamControl::Steer(t) => ("steer", None, Some(t.clone())),
            TeamControl::Message { member, text } => ("message", Some(member.clone()), Some(text.clone())),
            TeamControl::Add(a) => ("add", Some(a.clone()), None),
            TeamControl::Remove(m) => ("remove", Some(m.clone()), None),
            TeamControl::Kill => ("kill", None, None),
        }
    }

    fn from_columns(kind: &str, member: Option<String>, text: Option<String>) -> Option<TeamControl> {
        Some(match kind {
            "steer" => TeamControl::Steer(text?),
            "message" => TeamControl::Message { member: member?, text: text? },
            "add" => TeamControl::Add(member?),
            "remove" => TeamControl::Remove(member?),
            "kill" => TeamControl::Kill,
            _ => return None,
        })
    }
}

/// What a new team row holds.
pub struct NewTeam {
    pub name: String,
    pub config: super::config::TeamConfig,
    pub task: String,
    pub cwd: PathBuf,
    pub transcript_dir: PathBuf,
}

/// The teams' tables.
#[derive(Clone)]
pub struct TeamStore {
    db: Db,
}

/// `t12` or `12` as the row id 12.
pub fn parse_id(id: &str) -> Option<i64> {
    let id = id.trim();
    id.strip_prefix('t').unwrap_or(id).parse().ok().filter(|n| *n > 0)
}

impl TeamStore {
    pub fn new(db: Db) -> TeamStore {
        TeamStore { db }
    }

    /// Records a new running team owned by this process; returns it.
    pub async fn create(&self, new: NewTeam) -> Result<TeamRecord, DbError> {
        let config = serde_json::to_string(&new.config).map_err(|e| DbError::Corrupt(e.to_string()))?;
        let pid = std::process::id();
        let now = now_ms();
        let (name, config_name, task, cwd) =
            (new.name.clone(), new.config.name.clone(), new.task.clone(), new.cwd.to_string_lossy().into_owned());
        let dir = new.transcript_dir.clone();
        let (rowid, transcript) = self
            .db
            .call(move |conn| {
                let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let next: i64 = tx.query_row("SELECT COALESCE(MAX(id), 0) + 1 FROM teams", [], |r| r.get(0))?;
                let transcript = dir.join(format!("t{next}.md"));
                tx.execute(
                    "INSERT INTO teams (id, name, config_name, config, task, cwd, status, pid, transcript, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'running', ?7, ?8, ?9)",
                    params![
                        next,
                        name,
                        config_name,
                        config,
                        task,
                        cwd,
                        i64::from(pid),
                        transcript.to_string_lossy(),
                        now
                    ],
                )?;
                tx.commit()?;
                Ok((next, transcript))
            })
            .await?;
        Ok(TeamRecord {
            id: format!("t{rowid}"),
            name: new.name,
            config: new.config.name,
            task: new.task,
            cwd: new.cwd,
            status: TeamStatus::Running,
            summary: None,
            pid,
            root_session: None,
            transcript,
            created_at: now,
            ended_at: None,
        })
    }

    pub async fn set_root(&self, team: &str, session: &str) -> Result<(), DbError> {
        let (id, session) = (row_id(team)?, session.to_string());
        self.db
            .call(move |c| Ok(c.execute("UPDATE teams SET root_session = ?1 WHERE id = ?2", params![session, id])?))
            .await
            .map(drop)
    }

    /// Ends a team with `status` and its summary.
    pub async fn finish(&self, team: &str, status: TeamStatus, summary: &str) -> Result<(), DbError> {
        let (id, summary) = (row_id(team)?, summary.to_string());
        self.db
            .call(move |c| {
                Ok(c.execute(
                    "UPDATE teams SET status = ?1, summary = ?2, ended_at = ?3 WHERE id = ?4",
                    params![status.as_str(), summary, now_ms(), id],
                )?)
            })
            .await
            .map(drop)
    }

    pub async fn rename(&self, team: &str, name: &str) -> Result<bool, DbError> {
        let (id, name) = (row_id(team)?, name.to_string());
        let n = self
            .db
            .call(move |c| Ok(c.execute("UPDATE teams SET name = ?1 WHERE id = ?2", params![name, id])?))
            .await?;
        Ok(n == 1)
    }

    pub async fn get(&self, team: &str) -> Result<Option<TeamRecord>, DbError> {
        let Some(id) = parse_id(team) else { return Ok(None) };
        self.db
            .call(move |c| Ok(c.query_row(&format!("{TEAM_COLUMNS} WHERE id = ?1"), [id], read_team).optional()?))
            .await
    }

    /// Every team, newest first, at most `limit`.
    pub async fn list(&self, limit: usize) -> Result<Vec<TeamRecord>, DbError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.db
            .call(move |c| {
                let mut stmt = c.prepare_cached(&format!("{TEAM_COLUMNS} ORDER BY id DESC LIMIT ?1"))?;
                let rows = stmt.query_map([limit], read_team)?.collect::<Result<Vec<_>, _>>()?;
                Ok(rows)
            })
            .await
    }

    /// Writes a member's row (inserting it the first time).
    pub async fn put_member(&self, team: &str, m: MemberRecord) -> Result<(), DbError> {
        let id = row_id(team)?;
        self.db
            .call(move |c| {
                c.execute(
                    "INSERT OR REPLACE INTO team_members (team, name, role, session_id, status, turns, detail, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![id, m.name, m.role, m.session_id, m.status, m.turns, m.detail, now_ms()],
                )?;
                Ok(())
            })
            .await
    }

    pub async fn members(&self, team: &str) -> Result<Vec<MemberRecord>, DbError> {
        let id = row_id(team)?;
        self.db
            .call(move |c| {
                let mut stmt = c.prepare_cached(
                    "SELECT name, role, session_id, status, turns, detail FROM team_members WHERE team = ?1
                     ORDER BY rowid",
                )?;
                let rows = stmt
                    .query_map([id], |r| {
                        Ok(MemberRecord {
                            name: r.get(0)?,
                            role: r.get(1)?,
                            session_id: r.get(2)?,
                            status: r.get(3)?,
                            turns: r.get(4)?,
                            detail: r.get(5)?,
                        })
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(rows)
            })
            .await
    }

    /// Appends an event (its text cut to [`MAX_EVENT_CHARS`]).
    pub async fn event(&self, team: &str, kind: &str, member: Option<&str>, text: &str) -> Result<(), DbError> {
        let id = row_id(team)?;
        let (kind, member) = (kind.to_string(), member.map(str::to_string));
        let text: String = text.chars().take(MAX_EVENT_CHARS).collect();
        self.db
            .call(move |c| {
                c.execute(
                    "INSERT INTO team_events (team, at, kind, member, text) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![id, now_ms(), kind, member, text],
                )?;
                Ok(())
            })
            .await
    }

    /// The team's events after event `after`, oldest first.
    pub async fn events(&self, team: &str, after: i64) -> Result<Vec<TeamEvent>, DbError> {
        let id = row_id(team)?;
        self.db
            .call(move |c| {
                let mut stmt = c.prepare_cached(
                    "SELECT id, at, kind, member, text FROM team_events WHERE team = ?1 AND id > ?2 ORDER BY id",
                )?;
                let rows = stmt
                    .query_map(params![id, after], |r| {
                        Ok(TeamEvent {
                            id: r.get(0)?,
                            at: r.get(1)?,
                            kind: r.get(2)?,
                            member: r.get(3)?,
                            text: r.get(4)?,
                        })
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(rows)
            })
            .await
    }

    /// Queues a control for the team's owner.
    pub async fn queue(&self, team: &str, control: &TeamControl) -> Result<(), DbError> {
        let id = row_id(team)?;
        let (kind, member, text) = control.columns();
        self.db
            .call(move |c| {
                c.execute(
                    "INSERT INTO team_controls (team, kind, member, text, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![id, kind, member, text, now_ms()],
                )?;
                Ok(())
            })
            .await
    }

    /// Takes the team's queued controls, oldest first.
    pub async fn take_controls(&self, team: &str) -> Result<Vec<TeamControl>, DbError> {
        let id = row_id(team)?;
        self.db
            .call(move |c| {
                let tx = c.transaction()?;
                let rows: Vec<(String, Option<String>, Option<String>)> = {
                    let mut stmt =
                        tx.prepare_cached("SELECT kind, member, text FROM team_controls WHERE team = ?1 ORDER BY id")?;
                    stmt.query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<Result<_, _>>()?
                };
                if !rows.is_empty() {
                    tx.execute("DELETE FROM team_controls WHERE team = ?1", [id])?;
                }
                tx.commit()?;
                Ok(rows.into_iter().filter_map(|(k, m, t)| TeamControl::from_columns(&k, m, t)).collect())
            })
            .await
    }
}

const TEAM_COLUMNS: &str = "SELECT id, name, config_name, task, cwd, status, summary, pid, root_session, transcript,
    created_at, ended_at FROM teams";

fn read_team(r: &rusqlite::Row<'_>) -> rusqlite::Result<TeamRecord> {
    Ok(TeamRecord {
        id: format!("t{}", r.get::<_, i64>(0)?),
        name: r.get(1)?,
        config: r.get(2)?,
        task: r.get(3)?,
        cwd: PathBuf::from(r.get::<_, String>(4)?),
        status: TeamStatus::parse(&r.get::<_, String>(5)?),
        summary: r.get(6)?,
        pid: u32::try_from(r.get::<_, i64>(7)?).unwrap_or(0),
        root_session: r.get(8)?,
        transcript: PathBuf::from(r.get::<_, String>(9)?),
        created_at: r.get(10)?,
        ended_at: r.get(11)?,
    })
}

fn row_id(team: &str) -> Result<i64, DbError> {
    parse_id(team).ok_or_else(|| DbError::Corrupt(format!("{team:?} is not a team id (t1, t2, …)")))
}
