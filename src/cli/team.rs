//! `ratchet team start|list|show|attach|steer|message|add|remove|rename|kill`.
//!
//! `start` runs the team in the daemon when one runs (it outlives this command; follow it
//! with `attach`), else here in the foreground until it ends (Ctrl-C stops it). Everything
//! else works on the orchestra's database: controls are queued there and applied by the
//! process that runs the team within a fraction of a second.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;
use ratchet::engine::config::EngineConfig;
use ratchet::orchestra::teams::{StartTeam, TeamControl, TeamDesk, TeamEvent, TeamRecord, TeamStatus};
use tokio_util::sync::CancellationToken;

/// How often `attach` and a foreground `start` read new events.
const FOLLOW_POLL: Duration = Duration::from_millis(200);
/// How long `kill` waits to see the team stop before saying it is on its way.
const KILL_WAIT: Duration = Duration::from_secs(5);

#[derive(Subcommand)]
pub enum TeamCommand {
    /// Start a team (`code-gen`, or `.ratchet/teams/NAME.yaml`) on a task.
    Start {
        name: String,
        task: String,
        /// Where the team works (default: the current directory).
        #[arg(long)]
        cwd: Option<PathBuf>,
        /// Another directory its members may touch (repeatable).
        #[arg(long = "path")]
        paths: Vec<PathBuf>,
        /// Print the started team as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the teams, newest first.
    List {
        #[arg(long)]
        json: bool,
    },
    /// A team's members, status and blackboard.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Print a team's events as they happen, until it ends or Ctrl-C.
    Attach { id: String },
    /// Give every member a directive (their next message).
    Steer { id: String, directive: String },
    /// Send one member a message.
    Message { id: String, agent: String, text: String },
    /// Add a member playing an agent definition (`ratchet agents list`).
    Add { id: String, agent: String },
    /// Stop and remove a member.
    Remove { id: String, agent: String },
    /// Rename a team.
    Rename { id: String, name: String },
    /// Stop a team and every member.
    Kill { id: String },
}

pub async fn run(config: EngineConfig, command: TeamCommand) -> anyhow::Result<ExitCode> {
    let desk = TeamDesk::new(super::orchestra_db(&config.home)?, &config.home);
    let done = |r: Result<String, String>| -> anyhow::Result<ExitCode> {
        super::note(&r.map_err(anyhow::Error::msg)?);
        Ok(ExitCode::SUCCESS)
    };
    match command {
        TeamCommand::Start { name, task, cwd, paths, json } => start(config, desk, name, task, cwd, paths, json).await,
        TeamCommand::List { json } => list(&desk, json).await,
        TeamCommand::Show { id, json } => show(&desk, &id, json).await,
        TeamCommand::Attach { id } => {
            let team = desk.get(&id).await.map_err(anyhow::Error::msg)?;
            super::note(&format!("attached to team {} ({}); Ctrl-C to detach", team.id, team.name));
            let ctrl_c = CancellationToken::new();
            let end = follow(&desk, &team.id, &ctrl_c, true).await?;
            Ok(exit_for(&end))
        }
        TeamCommand::Steer { id, directive } => done(desk.control(&id, TeamControl::Steer(directive)).await),
        TeamCommand::Message { id, agent, text } => {
            done(desk.control(&id, TeamControl::Message { member: agent, text }).await)
        }
        TeamCommand::Add { id, agent } => done(desk.control(&id, TeamControl::Add(agent)).await),
        TeamCommand::Remove { id, agent } => done(desk.control(&id, TeamControl::Remove(agent)).await),
        TeamCommand::Rename { id, name } => done(desk.rename(&id, &name).await),
        TeamCommand::Kill { id } => {
            super::note(&desk.control(&id, TeamControl::Kill).await.map_err(anyhow::Error::msg)?);
            let timeout = CancellationToken::new();
            let t = timeout.clone();
            let end = tokio::select! {
                end = desk.wait(&id, &timeout) => end,
                () = tokio::time::sleep(KILL_WAIT) => { t.cancel(); desk.get(&id).await }
            }
            .map_err(anyhow::Error::msg)?;
            super::note(&format!("team {} is {}", end.id, end.status.as_str()));
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// In the daemon if one runs, else here until the team ends.
async fn start(
    config: EngineConfig,
    desk: TeamDesk,
    name: String,
    task: String,
    cwd: Option<PathBuf>,
    paths: Vec<PathBuf>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let cwd = match cwd {
        Some(dir) => std::path::absolute(dir)?,
        None => std::env::current_dir()?,
    };
    let req = StartTeam { name, task, cwd, paths, project: None, config_dir: None };
    if let Some(client) = super::running_daemon(&config.home).await {
        let team = client.start_team(req).await?;
        if json {
            super::print_json(&team)?;
        } else {
            super::say(&team.id);
            super::note(&format!(
                "team {} ({}) runs in the daemon; follow it with `ratchet team attach {}`",
                team.id, team.name, team.id
            ));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let composed = ratchet::compose::open(config).await?;
    let started = composed.orchestra.teams().start(req).await;
    let team = match started {
        Ok(team) => team,
        Err(why) => {
            composed.engine.shutdown().await;
            anyhow::bail!(why);
        }
    };
    if json {
        super::print_json(&team)?;
    } else {
        super::say(&team.id);
        super::note(&format!("team {} ({}) runs here until it ends; Ctrl-C stops it", team.id, team.name));
    }
    let ctrl_c = CancellationToken::new();
    let end = follow(&desk, &team.id, &ctrl_c, !json).await;
    if ctrl_c.is_cancelled() {
        let _ = composed.orchestra.teams().kill(&team.id).await;
        let _ = desk.wait(&team.id, &CancellationToken::new()).await;
    }
    composed.engine.shutdown().await;
    let end = end?;
    if let Some(summary) = &end.summary {
        super::note(summary);
    }
    Ok(exit_for(&end))
}

/// Prints the team's events (when `print`) until it ends or Ctrl-C (which fires `ctrl_c`).
pub(super) async fn follow(
    desk: &TeamDesk,
    id: &str,
    ctrl_c: &CancellationToken,
    print: bool,
) -> anyhow::Result<TeamRecord> {
    let mut after = 0;
    let signal = tokio::signal::ctrl_c();
    tokio::pin!(signal);
    loop {
        let events = desk.events(id, after).await.map_err(anyhow::Error::msg)?;
        for e in &events {
            after = e.id;
            if print {
                super::say(&event_line(e));
            }
        }
        let team = desk.get(id).await.map_err(anyhow::Error::msg)?;
        if team.status != TeamStatus::Running && events.is_empty() {
            return Ok(team);
        }
        tokio::select! {
            _ = &mut signal => {
                ctrl_c.cancel();
                return Ok(team);
            }
            () = tokio::time::sleep(FOLLOW_POLL) => {}
        }
    }
}

fn event_line(e: &TeamEvent) -> String {
    let who = e.member.as_deref().unwrap_or("team");
    let text = e.text.replace('\n', " ");
    format!("{who} {}: {text}", e.kind)
}

pub(super) fn exit_for(team: &TeamRecord) -> ExitCode {
    if team.status == TeamStatus::Completed { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

async fn list(desk: &TeamDesk, json: bool) -> anyhow::Result<ExitCode> {
    let teams = desk.list().await.map_err(anyhow::Error::msg)?;
    if json {
        super::print_json(&teams)?;
        return Ok(ExitCode::SUCCESS);
    }
    if teams.is_empty() {
        super::note("no teams yet; start one with `ratchet team start code-gen \"TASK\"`");
        return Ok(ExitCode::SUCCESS);
    }
    let mut rows = vec![["ID", "NAME", "CONFIG", "STATUS", "STARTED", "TASK"].map(String::from).to_vec()];
    for t in &teams {
        let task: String = t.task.lines().next().unwrap_or("").chars().take(60).collect();
        rows.push(vec![
            t.id.clone(),
            t.name.clone(),
            t.config.clone(),
            t.status.as_str().into(),
            super::ago(t.created_at),
            task,
        ]);
    }
    for line in super::table(&rows) {
        super::say(&line);
    }
    Ok(ExitCode::SUCCESS)
}

async fn show(desk: &TeamDesk, id: &str, json: bool) -> anyhow::Result<ExitCode> {
    let view = desk.show(id).await.map_err(anyhow::Error::msg)?;
    if json {
        super::print_json(&view)?;
        return Ok(ExitCode::SUCCESS);
    }
    let t = &view.team;
    super::say(&format!("team {} ({}, config {}): {}", t.id, t.name, t.config, t.status.as_str()));
    super::say(&format!("task: {}", t.task));
    super::say(&format!("cwd: {}   process: {}   transcript: {}", t.cwd.display(), t.pid, t.transcript.display()));
    let mut rows = vec![["MEMBER", "ROLE", "STATUS", "TURNS", "DETAIL"].map(String::from).to_vec()];
    for m in &view.members {
        let detail: String = m.detail.as_deref().unwrap_or("").chars().take(80).collect();
        rows.push(vec![m.name.clone(), m.role.clone(), m.status.clone(), m.turns.to_string(), detail]);
    }
    for line in super::table(&rows) {
        super::say(&line);
    }
    super::say("blackboard:");
    if view.blackboard.is_empty() {
        super::say("  (empty)");
    }
    for e in &view.blackboard {
        let value = e.value.replace('\n', " ");
        super::say(&format!("  {}/{} (rev {}, {}): {value}", e.section, e.key, e.revision, e.author));
    }
    if let Some(summary) = &t.summary {
        super::say(&format!("summary: {summary}"));
    }
    Ok(ExitCode::SUCCESS)
}
