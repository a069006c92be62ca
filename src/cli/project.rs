//! `ratchet project start|list|status|pause|resume|kill NAME`: projects defined in
//! `.ratchet/projects/<name>.yaml` (and `RATCHET_HOME/projects/`), their state in the
//! orchestra's database (no daemon needed; pause and kill reach the project's jobs wherever
//! they run, through the job registry). `start` starts the project's teams like `ratchet
//! team start`: in the daemon when one runs, else here until they end.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use ratchet::engine::config::EngineConfig;
use ratchet::orchestra::jobs::{JobInfo, JobRegistry};
use ratchet::orchestra::projects::{
    self, ControlReport, ProjectCatalog, ProjectDef, ProjectLaunch, ProjectRecord, Projects,
};
use ratchet::orchestra::tasks::{TaskFilter, TaskStatus, TaskStore};
use ratchet::orchestra::teams::{StartTeam, TeamDesk};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

#[derive(Subcommand)]
pub enum ProjectCommand {
    /// Start a project: record it as running and launch its teams.
    Start {
        name: String,
        /// Where to look for `.ratchet/projects/` (default: the current directory).
        #[arg(long)]
        cwd: Option<PathBuf>,
        /// The task for its teams (default: the file's `task:`).
        #[arg(long)]
        task: Option<String>,
        /// Print what was started as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the defined and the started projects with their status.
    List {
        #[arg(long)]
        cwd: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Show a project: its directories, teams, jobs and tasks.
    Status {
        name: String,
        #[arg(long)]
        cwd: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Pause a project: its agents take no new work and hold before their next step.
    Pause { name: String },
    /// Let a paused project go on.
    Resume { name: String },
    /// Kill a project's jobs; it takes no work until started again.
    Kill { name: String },
}

pub async fn run(config: EngineConfig, command: ProjectCommand) -> anyhow::Result<ExitCode> {
    let db = super::orchestra_db(&config.home)?;
    let jobs = JobRegistry::new(db.clone(), CancellationToken::new());
    let store = Projects::new(db.clone(), jobs.clone());
    let home = config.home.clone();
    match command {
        ProjectCommand::Start { name, cwd, task, json } => {
            let catalog = catalog(cwd, &home)?;
            let def = definition(&catalog, &name)?;
            let launch = store.start(def, task).await?;
            if json {
                super::print_json(&launch)?;
            } else {
                say_started(&launch);
            }
            return start_teams(config, &launch).await;
        }
        ProjectCommand::List { cwd, json } => list(&store, &catalog(cwd, &home)?, json).await?,
        ProjectCommand::Status { name, cwd, json } => {
            let catalog = catalog(cwd, &home)?;
            let tasks = TaskStore::new(db, jobs.clone());
            status(&store, &jobs, &tasks, catalog.get(&name), &name, json).await?;
        }
        ProjectCommand::Pause { name } => say_control(&store.pause(&name).await?, "paused"),
        ProjectCommand::Resume { name } => say_control(&store.resume(&name).await?, "resumed"),
        ProjectCommand::Kill { name } => say_control(&store.kill(&name).await?, "killed"),
    }
    Ok(ExitCode::SUCCESS)
}

/// The definitions seen from `cwd` (default: the current directory); broken files are named
/// on stderr.
fn catalog(cwd: Option<PathBuf>, home: &Path) -> anyhow::Result<ProjectCatalog> {
    let cwd = match cwd {
        Some(c) => std::path::absolute(&c).unwrap_or(c),
        None => std::env::current_dir().context("cannot read the current directory")?,
    };
    let catalog = projects::load(&cwd, home);
    for s in &catalog.skipped {
        super::note(&format!("skipped {}: {}", s.source.display(), s.reason));
    }
    Ok(catalog)
}

fn definition<'a>(catalog: &'a ProjectCatalog, name: &str) -> anyhow::Result<&'a ProjectDef> {
    catalog.get(name).with_context(|| {
        let names: Vec<&str> = catalog.projects.iter().map(|p| p.name.as_str()).collect();
        let known = if names.is_empty() { "none are defined here".to_string() } else { names.join(", ") };
        format!(
            "there is no project {name:?}: define it in .ratchet/projects/{name}.yaml or RATCHET_HOME/projects/{name}.yaml (projects: {known})"
        )
    })
}

/// What `project start` says: the project and its directories, then the team launches.
fn say_started(launch: &ProjectLaunch) {
    let p = &launch.project;
    super::say(&format!("project {} is running", p.name));
    super::say(&format!("  agents work in {} and may use only: {}", p.workdir.display(), allowed(p)));
    say_team_launches(launch);
}

/// The teams a start asks for, with their tasks and directories.
fn say_team_launches(launch: &ProjectLaunch) {
    if launch.teams.is_empty() {
        super::say("  no teams to start (add `teams: [...]` to the project file)");
        return;
    }
    for t in &launch.teams {
        let task =
            t.task.as_deref().map_or_else(|| "no task given (use --task or `task:`)".to_string(), |t| format!("{t:?}"));
        super::say(&format!("  team {}: task {task}, in {}", t.team, t.cwd.display()));
    }
}

/// Starts the project's teams that have a task, each member's job attached to the project
/// (so its pause and kill reach them): in the daemon when one runs, so they outlive this
/// command, else here until every one has ended (Ctrl-C kills them).
async fn start_teams(config: EngineConfig, launch: &ProjectLaunch) -> anyhow::Result<ExitCode> {
    let project = &launch.project.name;
    let mut requests = Vec::new();
    for t in &launch.teams {
        let Some(task) = &t.task else {
            super::note(&format!("team {} not started: it has no task (use --task or `task:`)", t.team));
            continue;
        };
        requests.push(StartTeam {
            name: t.team.clone(),
            task: task.clone(),
            cwd: t.cwd.clone(),
            paths: t.paths.clone(),
            project: Some(project.clone()),
            config_dir: Some(launch.project.cwd.clone()),
        });
    }
    if requests.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(client) = super::running_daemon(&config.home).await {
        for request in requests {
            let team = client.start_team(request).await?;
            super::note(&format!(
                "team {} ({}) runs in the daemon; follow it with `ratchet team attach {}`",
                team.id, team.name, team.id
            ));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let desk = TeamDesk::new(super::orchestra_db(&config.home)?, &config.home);
    let composed = ratchet::compose::open(config).await?;
    let mut started = Vec::new();
    let mut code = ExitCode::SUCCESS;
    for request in requests {
        let name = request.name.clone();
        match composed.orchestra.teams().start(request).await {
            Ok(team) => {
                super::note(&format!("team {} ({}) runs here until it ends; Ctrl-C stops it", team.id, team.name));
                started.push(team.id);
            }
            Err(why) => {
                super::note(&format!("team {name} not started: {why}"));
                code = ExitCode::FAILURE;
            }
        }
    }
    let ctrl_c = CancellationToken::new();
    for id in &started {
        let end = super::team::follow(&desk, id, &ctrl_c, true).await;
        if ctrl_c.is_cancelled() {
            for id in &started {
                let _ = composed.orchestra.teams().kill(id).await;
            }
            for id in &started {
                let _ = desk.wait(id, &CancellationToken::new()).await;
            }
            code = ExitCode::FAILURE;
            break;
        }
        match end {
            Ok(team) => {
                if let Some(summary) = &team.summary {
                    super::note(summary);
                }
                if super::team::exit_for(&team) != ExitCode::SUCCESS {
                    code = ExitCode::FAILURE;
                }
            }
            Err(e) => {
                super::note(&format!("team {id}: {e:#}"));
                code = ExitCode::FAILURE;
            }
        }
    }
    composed.engine.shutdown().await;
    Ok(code)
}

fn allowed(p: &ProjectRecord) -> String {
    let mut all = vec![p.workdir.display().to_string()];
    all.extend(p.paths.iter().filter(|d| **d != p.workdir).map(|d| d.display().to_string()));
    all.join(", ")
}

fn say_control(report: &ControlReport, action: &str) {
    let p = &report.project;
    super::say(&format!("project {} {action} ({} job(s) attached)", p.name, report.jobs.len()));
    for j in &report.jobs {
        super::say(&format!("  {}: {}", j.job, j.outcome));
    }
}

/// A project as `project list --json` shows it: its definition here, its recorded state, or both.
#[derive(Serialize)]
struct Listed<'a> {
    name: &'a str,
    status: &'a str,
    definition: Option<&'a ProjectDef>,
    record: Option<&'a ProjectRecord>,
}

async fn list(store: &Projects, catalog: &ProjectCatalog, json: bool) -> anyhow::Result<()> {
    let records = store.list().await?;
    let mut listed: Vec<Listed<'_>> = catalog
        .projects
        .iter()
        .map(|d| {
            let record = records.iter().find(|r| r.name == d.name);
            let status = record.map_or("not started", |r| r.status.as_str());
            Listed { name: &d.name, status, definition: Some(d), record }
        })
        .collect();
    for r in records.iter().filter(|r| catalog.get(&r.name).is_none()) {
        listed.push(Listed { name: &r.name, status: r.status.as_str(), definition: None, record: Some(r) });
    }
    if json {
        return super::print_json(&serde_json::json!({ "projects": listed, "skipped": catalog.skipped }));
    }
    if listed.is_empty() {
        super::note("no projects (.ratchet/projects/*.yaml, RATCHET_HOME/projects/*.yaml)");
        return Ok(());
    }
    let mut rows = vec![["NAME", "STATUS", "TEAMS", "WORKDIR", "FILE"].map(String::from).to_vec()];
    for l in &listed {
        let (teams, workdir, file) = match (l.definition, l.record) {
            (Some(d), _) => (d.teams.join(","), d.workdir.display().to_string(), d.source.display().to_string()),
            (None, Some(r)) => (r.teams.join(","), r.workdir.display().to_string(), r.source.display().to_string()),
            (None, None) => continue,
        };
        let teams = if teams.is_empty() { "-".into() } else { teams };
        rows.push(vec![l.name.to_string(), l.status.to_string(), teams, workdir, file]);
    }
    for line in super::table(&rows) {
        super::say(&line);
    }
    Ok(())
}

async fn status(
    store: &Projects,
    jobs: &JobRegistry,
    tasks: &TaskStore,
    def: Option<&ProjectDef>,
    name: &str,
    json: bool,
) -> anyhow::Result<()> {
    let Some(record) = store.get(name).await? else {
        if def.is_some() {
            super::say(&format!("project {name} is defined but not started; `ratchet project start {name}` starts it"));
            return Ok(());
        }
        anyhow::bail!("there is no project {name:?}; `ratchet project list` shows the projects");
    };
    let running = jobs.list().await?;
    let of_project = tasks.list(TaskFilter { project: Some(name.to_string()), ..Default::default() }).await?;
    if json {
        let job_states: Vec<_> = record
            .jobs
            .iter()
            .map(|id| {
                let state = job_state(&running, id);
                serde_json::json!({ "id": id, "state": state })
            })
            .collect();
        return super::print_json(&serde_json::json!({ "project": record, "jobs": job_states, "tasks": of_project }));
    }
    super::say(&format!(
        "project {}  {}  started {}",
        record.name,
        record.status.as_str(),
        super::ago(record.started_at)
    ));
    super::say(&format!("  root: {}", record.cwd.display()));
    super::say(&format!("  agents work in {} and may use only: {}", record.workdir.display(), allowed(&record)));
    let teams = if record.teams.is_empty() { "-".to_string() } else { record.teams.join(", ") };
    super::say(&format!("  teams: {teams}"));
    super::say(&format!("  file: {}", record.source.display()));
    if record.jobs.is_empty() {
        super::say("  jobs: none attached");
    } else {
        super::say("  jobs:");
        for id in &record.jobs {
            let state = job_state(&running, id);
            super::say(&format!("    {id}  {state}"));
        }
    }
    let counts: Vec<String> = TaskStatus::ALL
        .iter()
        .filter_map(|s| {
            let n = of_project.iter().filter(|t| t.status == *s).count();
            (n > 0).then(|| format!("{n} {s}"))
        })
        .collect();
    let counts = if counts.is_empty() { "none".to_string() } else { counts.join(", ") };
    super::say(&format!("  tasks: {counts}"));
    Ok(())
}

/// `running`, `paused` or `ended`: an attached job as the registry lists it now.
fn job_state(running: &[JobInfo], id: &str) -> &'static str {
    running.iter().find(|j| j.id == id).map_or("ended", |j| super::jobs::status_label(j.status))
}
