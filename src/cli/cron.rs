//! `ratchet cron add|list|pause|resume|stop`: the cron jobs of this data directory, through
//! the orchestra's database (no daemon needed). The process that fires them (the daemon, or
//! one `ratchet acp`) sees a change within `CRON_POLL`.

use std::process::ExitCode;

use clap::Subcommand;
use ratchet::engine::EngineError;
use ratchet::engine::config::EngineConfig;
use ratchet::orchestra::cron::{
    CatchUp, CronAction, CronError, CronJob, CronStatus, CronStore, NewCronJob, local_time,
};

#[derive(Subcommand)]
pub enum CronCommand {
    /// Run a prompt (or a /command) in a session on a schedule: a duration such as `90s`
    /// or `5m`, or a 5-field cron expression such as "0 9 * * 1" (local time).
    Add {
        /// The session's id (see `ratchet sessions list`).
        session: String,
        /// When: `90s`, `5m`, `1h`, or "MIN HOUR DAY-OF-MONTH MONTH DAY-OF-WEEK".
        schedule: String,
        /// What to send: a prompt, or a /command with its arguments.
        prompt: String,
        /// A run missed while no ratchet ran: fire it once at start, or skip it
        /// (default: `[cron] catch_up` in config.toml, else once).
        #[arg(long, value_name = "once|skip")]
        catch_up: Option<String>,
    },
    /// List the jobs: id, schedule, status, last run, next run, run count.
    List {
        /// Print the jobs as a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Hold a job (it keeps its schedule; runs missed while paused are not made up).
    Pause { id: String },
    /// Let a paused job run again, from its next time.
    Resume { id: String },
    /// Stop a job for good (a run going on finishes; `ratchet jobs kill cron:ID` stops it).
    Stop { id: String },
}

pub async fn run(config: EngineConfig, command: CronCommand) -> anyhow::Result<ExitCode> {
    let store = CronStore::new(super::orchestra_db(&config.home)?);
    match command {
        CronCommand::Add { session, schedule, prompt, catch_up } => {
            add(config, &store, session, schedule, prompt, catch_up).await
        }
        CronCommand::List { json } => list(&store, json).await,
        CronCommand::Pause { id } => control(&store, &id, CronAction::Pause).await,
        CronCommand::Resume { id } => control(&store, &id, CronAction::Resume).await,
        CronCommand::Stop { id } => control(&store, &id, CronAction::Stop).await,
    }
}

async fn add(
    config: EngineConfig,
    store: &CronStore,
    session: String,
    schedule: String,
    prompt: String,
    catch_up: Option<String>,
) -> anyhow::Result<ExitCode> {
    let catch_up = catch_up.map(|c| CatchUp::parse(&c)).transpose().map_err(anyhow::Error::msg)?;
    // The session must exist now (a typo would otherwise fail at every run).
    let face = super::engine_face(config).await?;
    let found = face.api.session(session.clone()).await;
    face.api.shutdown().await;
    match found {
        Ok(_) => {}
        Err(EngineError::NotFound(_)) => {
            anyhow::bail!("there is no session {session}; `ratchet sessions list` shows them")
        }
        Err(e) => return Err(e.into()),
    }
    let job = store.add(NewCronJob { session_id: session, schedule, prompt, catch_up }).await?;
    super::say(&format!(
        "added cron job {id} ({schedule}) in session {session}; next run {next}",
        id = job.id,
        schedule = job.schedule,
        session = job.session_id,
        next = job.next_run.map_or_else(|| "never".into(), local_time),
    ));
    super::note("it runs while the daemon or a `ratchet acp` runs on this data directory");
    Ok(ExitCode::SUCCESS)
}

async fn list(store: &CronStore, json: bool) -> anyhow::Result<ExitCode> {
    let jobs = store.list(None).await?;
    if json {
        super::print_json(&jobs)?;
        return Ok(ExitCode::SUCCESS);
    }
    if jobs.is_empty() {
        super::note("no cron jobs; add one with `ratchet cron add SESSION SCHEDULE PROMPT`");
        return Ok(ExitCode::SUCCESS);
    }
    let header = ["ID", "SCHEDULE", "STATUS", "LAST RUN", "NEXT RUN", "RUNS", "SESSION", "PROMPT"];
    let mut rows = vec![header.map(String::from).to_vec()];
    rows.extend(jobs.iter().map(row));
    for line in super::table(&rows) {
        super::say(&line);
    }
    for job in jobs.iter().filter(|j| j.status != CronStatus::Stopped) {
        if let Some(e) = &job.last_error {
            super::note(&format!("cron job {}'s last run failed: {e}", job.id));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn row(job: &CronJob) -> Vec<String> {
    let prompt: String = job.prompt.split_whitespace().collect::<Vec<_>>().join(" ");
    vec![
        job.id.to_string(),
        job.schedule.clone(),
        job.status.as_str().to_string(),
        job.last_run.map_or_else(|| "-".into(), super::ago),
        job.next_run.map_or_else(|| "-".into(), local_time),
        job.run_count.to_string(),
        job.session_id.clone(),
        prompt,
    ]
}

async fn control(store: &CronStore, id: &str, action: CronAction) -> anyhow::Result<ExitCode> {
    let id = CronError::parse_id(id)?;
    let job = store.control(id, action).await?;
    super::say(&match action {
        CronAction::Pause => format!("paused cron job {id}; `ratchet cron resume {id}` lets it run again"),
        CronAction::Resume => {
            format!("resumed cron job {id}; next run {}", job.next_run.map_or_else(|| "never".into(), local_time))
        }
        CronAction::Stop => format!("stopped cron job {id}; it never runs again"),
    });
    Ok(ExitCode::SUCCESS)
}
