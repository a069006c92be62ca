//! `ratchet tasks list|show|create|claim|update`: the task tracker in the orchestra's
//! database, read and changed there directly (no daemon needed). A claim made here is a
//! person's (`--as`, default the login name) and holds until the task is reopened or finished;
//! agents' claims lapse when their job ends (`orchestra::tasks`).

use std::process::ExitCode;

use clap::Subcommand;
use ratchet::engine::config::EngineConfig;
use ratchet::orchestra::jobs::JobRegistry;
use ratchet::orchestra::tasks::{Claimant, NewTask, Task, TaskChange, TaskFilter, TaskStatus, TaskStore};
use tokio_util::sync::CancellationToken;

#[derive(Subcommand)]
pub enum TasksCommand {
    /// List tasks, oldest first: id, status, holder, project, plan step, title.
    List {
        /// Only tasks with this status (open, in_progress, done, failed, cancelled).
        #[arg(long)]
        status: Option<String>,
        /// Only the tasks of this project.
        #[arg(long)]
        project: Option<String>,
        /// Only the tasks of this plan (`p3`).
        #[arg(long, value_name = "ID")]
        plan: Option<String>,
        /// Only claimed tasks.
        #[arg(long)]
        claimed: bool,
        /// Print the tasks as a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Show a task: its description, notes, holder and plan step.
    Show {
        /// The task's id (`t4` or `4`, see `ratchet tasks list`).
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Add an open task.
    Create {
        title: String,
        #[arg(long)]
        description: Option<String>,
        /// The project it belongs to.
        #[arg(long)]
        project: Option<String>,
    },
    /// Claim a task (a second claim by someone else fails while the first holds).
    Claim {
        id: String,
        /// Who claims it (default: your login name).
        #[arg(long = "as", value_name = "WHO")]
        who: Option<String>,
    },
    /// Change a task's status and/or add a note.
    Update {
        id: String,
        /// The new status (open releases the claim).
        #[arg(long)]
        status: Option<String>,
        /// A note to add.
        #[arg(long)]
        notes: Option<String>,
    },
}

pub async fn run(config: EngineConfig, command: TasksCommand) -> anyhow::Result<ExitCode> {
    let db = super::orchestra_db(&config.home)?;
    // This process runs no jobs: its registry only tells which holders still run.
    let store = TaskStore::new(db.clone(), JobRegistry::new(db, CancellationToken::new()));
    match command {
        TasksCommand::List { status, project, plan, claimed, json } => {
            let status = status.as_deref().map(TaskStatus::parse).transpose()?;
            let filter =
                TaskFilter { status, project, plan_id: plan, claimed: claimed.then_some(true), ..Default::default() };
            let tasks = store.list(filter).await?;
            if json {
                super::print_json(&tasks)?;
            } else if tasks.is_empty() {
                super::note("no tasks match; add one with `ratchet tasks create \"title\"`");
            } else {
                for line in task_table(&tasks) {
                    super::say(&line);
                }
            }
        }
        TasksCommand::Show { id, json } => {
            let task = store.require(&id).await?;
            if json {
                super::print_json(&task)?;
            } else {
                show(&task);
            }
        }
        TasksCommand::Create { title, description, project } => {
            let new = NewTask {
                title,
                description: description.unwrap_or_default(),
                project,
                created_by: Some("cli".into()),
            };
            let task = store.create(new).await?;
            super::say(&format!("created task {}: {}", task.id, task.title));
        }
        TasksCommand::Claim { id, who } => {
            let holder = who.unwrap_or_else(login_name);
            let claimed = store.claim(&id, Claimant { holder: holder.clone(), project: None }).await?;
            if let Some(old) = &claimed.released {
                super::note(&format!("released the claim of {old}, whose job no longer runs"));
            }
            super::say(&format!("{holder} holds task {}: {}", claimed.task.id, claimed.task.title));
        }
        TasksCommand::Update { id, status, notes } => {
            let status = status.as_deref().map(TaskStatus::parse).transpose()?;
            let task = store.update(&id, TaskChange { status, note: notes, by: None }).await?;
            super::say(&format!("task {} is {}", task.id, task.status));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Who a claim from this terminal is held by when `--as` is not given.
fn login_name() -> String {
    std::env::var("USER").ok().filter(|u| !u.trim().is_empty()).unwrap_or_else(|| "cli".into())
}

/// The tasks as table lines (a header first).
pub(super) fn task_table(tasks: &[Task]) -> Vec<String> {
    let mut rows = vec![["ID", "STATUS", "CLAIMED BY", "PROJECT", "STEP", "TITLE"].map(String::from).to_vec()];
    for t in tasks {
        rows.push(vec![
            t.id.clone(),
            t.status.to_string(),
            t.claimed_by.clone().unwrap_or_else(|| "-".into()),
            t.project.clone().unwrap_or_else(|| "-".into()),
            t.step.as_ref().map_or_else(|| "-".into(), |s| format!("{}/{}", s.plan_id, s.step_id)),
            t.title.clone(),
        ]);
    }
    super::table(&rows)
}

fn show(task: &Task) {
    super::say(&format!("task {}  {}  {}", task.id, task.status, task.title));
    if let Some(holder) = &task.claimed_by {
        let when = task.claimed_at.map(|at| format!(" ({})", super::ago(at))).unwrap_or_default();
        super::say(&format!("claimed by: {holder}{when}"));
    }
    if let Some(project) = &task.project {
        super::say(&format!("project: {project}"));
    }
    if let Some(step) = &task.step {
        super::say(&format!(
            "plan step: {} of plan {} (`ratchet plans show {}`)",
            step.step_id, step.plan_id, step.plan_id
        ));
    }
    let by = task.created_by.as_deref().map(|b| format!(" by {b}")).unwrap_or_default();
    super::say(&format!("created {}{by}, updated {}", super::ago(task.created_at), super::ago(task.updated_at)));
    if !task.description.is_empty() {
        super::say(&format!("\n{}", task.description));
    }
    if !task.notes.is_empty() {
        super::say(&format!("\nnotes:\n{}", task.notes));
    }
}
