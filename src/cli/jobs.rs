//! `ratchet jobs list|kill|pause|resume`: the agents every ratchet process on this data
//! directory runs (session turns, fleet workers), through the job registry's mirror in the
//! orchestra's database. A request is written there and applied by the process that runs the
//! job within a fraction of a second; these commands wait briefly to say whether it was.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;
use ratchet::engine::config::EngineConfig;
use ratchet::orchestra::jobs::{Control, JobId, JobInfo, JobRegistry, JobStatus};
use tokio_util::sync::CancellationToken;

/// How long a control command waits to see its request applied before saying it is pending.
const APPLY_WAIT: Duration = Duration::from_secs(2);

/// How often it looks meanwhile.
const APPLY_POLL: Duration = Duration::from_millis(100);

#[derive(Subcommand)]
pub enum JobsCommand {
    /// List running jobs, oldest first: id, type, status, start, elapsed time, model, detail.
    List {
        /// Print the jobs as a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Stop a job (`session:<id>` or `fleet_worker:<id>`, as `ratchet jobs list` shows it).
    Kill { id: String },
    /// Hold a job before its next step (fleet workers; a session turn cannot pause).
    Pause { id: String },
    /// Let a paused job go on.
    Resume { id: String },
}

pub async fn run(config: EngineConfig, command: JobsCommand) -> anyhow::Result<ExitCode> {
    let db = super::orchestra_db(&config.home)?;
    // This process runs no jobs: its registry only reads the table and writes requests.
    let registry = JobRegistry::new(db, CancellationToken::new());
    match command {
        JobsCommand::List { json } => list(&registry, json).await,
        JobsCommand::Kill { id } => control(&registry, &id, Control::Kill).await,
        JobsCommand::Pause { id } => control(&registry, &id, Control::Pause).await,
        JobsCommand::Resume { id } => control(&registry, &id, Control::Resume).await,
    }
}

async fn list(registry: &JobRegistry, json: bool) -> anyhow::Result<ExitCode> {
    let jobs = registry.list().await?;
    if json {
        super::print_json(&jobs)?;
        return Ok(ExitCode::SUCCESS);
    }
    if jobs.is_empty() {
        super::note("no jobs running");
        return Ok(ExitCode::SUCCESS);
    }
    let header = ["ID", "TYPE", "STATUS", "STARTED", "ELAPSED", "MODEL", "DETAIL"];
    let mut rows = vec![header.map(String::from).to_vec()];
    for job in &jobs {
        rows.push(vec![
            job.id.clone(),
            job.kind.noun().to_string(),
            status_label(job.status).to_string(),
            super::ago(job.started_at),
            super::short_duration(job.elapsed_ms),
            job.model.clone().unwrap_or_else(|| "-".into()),
            job.detail.as_deref().map_or_else(|| "-".into(), |d| d.split_whitespace().collect::<Vec<_>>().join(" ")),
        ]);
    }
    let mut out = std::io::stdout().lock();
    for line in super::table(&rows) {
        writeln!(out, "{line}")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Sends `control` to job `text`, then waits up to [`APPLY_WAIT`] for its owner to apply it.
async fn control(registry: &JobRegistry, text: &str, control: Control) -> anyhow::Result<ExitCode> {
    let id = JobId::parse(text)?;
    let key = id.to_string();
    registry.request(&id, control).await?;
    let what = format!("{key} ({})", id.kind().noun());
    let applied = wait_applied(registry, &key, control).await?;
    let line = match (control, applied) {
        (Control::Kill, true) => format!("killed {what}: it has stopped"),
        (Control::Kill, false) => {
            format!("asked {what} to stop; it is still winding down (`ratchet jobs list` shows when it has stopped)")
        }
        (Control::Pause, true) => {
            format!("paused {what}: it holds before its next step; `ratchet jobs resume {key}` lets it go on")
        }
        (Control::Pause, false) => format!("asked {what} to pause; its process has not applied it yet"),
        (Control::Resume, true) => format!("resumed {what}"),
        (Control::Resume, false) => format!("asked {what} to resume; its process has not applied it yet"),
    };
    super::say(&line);
    Ok(ExitCode::SUCCESS)
}

/// Whether job `key` shows `control` applied (gone after a kill, paused, running again)
/// within [`APPLY_WAIT`].
async fn wait_applied(registry: &JobRegistry, key: &str, control: Control) -> anyhow::Result<bool> {
    let deadline = tokio::time::Instant::now() + APPLY_WAIT;
    loop {
        let jobs = registry.list().await?;
        let job: Option<&JobInfo> = jobs.iter().find(|j| j.id == key);
        let applied = match control {
            Control::Kill => job.is_none(),
            Control::Pause => job.is_some_and(|j| j.status == JobStatus::Paused),
            Control::Resume => job.is_none_or(|j| j.status == JobStatus::Running),
        };
        if applied {
            return Ok(true);
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(APPLY_POLL).await;
    }
}

pub(super) fn status_label(status: JobStatus) -> &'static str {
    match status {
        JobStatus::Running => "running",
        JobStatus::Paused => "paused",
    }
}
