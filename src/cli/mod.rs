//! The command line: `ratchet acp`, `ratchet exec`, `ratchet sessions`, `ratchet attach`,
//! `ratchet daemon`, `ratchet provider`, and the orchestra's `ratchet plans`,
//! `ratchet questions`, `ratchet jobs`, `ratchet cron` (on its database directly, no daemon
//! needed).
//!
//! This is the only code allowed to print to stdout outside the protocol writer; in
//! `ratchet acp` it prints nothing.

mod acp;
mod agents;
mod attach;
mod cron;
mod daemon;
mod exec;
mod hooks;
mod jobs;
mod plans;
mod project;
mod provider;
mod questions;
mod sessions;
mod tasks;
mod team;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use std::io::Write;

use anyhow::Context;
use clap::{Parser, Subcommand};
use ratchet::daemon::client::{Client, ClientError};
use ratchet::daemon::paths::DaemonPaths;
use ratchet::engine::config::{ConfigFile, EngineConfig, EnvSnapshot, ratchet_home};
use ratchet::engine::{Engine, EngineApi};

/// An AI coding agent for your editor, over the Agent Client Protocol.
#[derive(Parser)]
#[command(name = "ratchet", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the Agent Client Protocol on stdin/stdout (what editors launch).
    Acp(acp::AcpArgs),
    /// Send one prompt and stream the answer to stdout.
    Exec {
        /// The prompt.
        prompt: String,
        /// Project directory (default: the current directory).
        #[arg(long)]
        cwd: Option<PathBuf>,
        /// Permission mode: ask (questions on the terminal; rejected without one),
        /// accept-edits, plan (read-only) or yolo.
        #[arg(long, default_value = "ask")]
        mode: String,
    },
    /// Inspect stored sessions.
    Sessions {
        #[command(subcommand)]
        command: sessions::SessionsCommand,
    },
    /// Print a session's live stream (from the daemon) until Ctrl-C.
    Attach {
        /// The session's id (see `ratchet sessions list`).
        session: String,
    },
    /// Run or control the background daemon that editor windows share.
    Daemon {
        #[command(subcommand)]
        command: daemon::DaemonCommand,
    },
    /// Manage named LLM providers and choose the default one.
    Provider {
        #[command(subcommand)]
        command: provider::ProviderCommand,
    },
    /// Review, approve or reject the plans sessions propose.
    Plans {
        #[command(subcommand)]
        command: plans::PlansCommand,
    },
    /// List and answer the questions waiting for a person (permissions, plans, asks).
    Questions {
        #[command(subcommand)]
        command: questions::QuestionsCommand,
    },
    /// List, kill, pause or resume the running agents (session turns, fleet workers).
    Jobs {
        #[command(subcommand)]
        command: jobs::JobsCommand,
    },
    /// List the named agent definitions and where each came from.
    Agents {
        #[command(subcommand)]
        command: agents::AgentsCommand,
    },
    /// The task tracker: list, show, create, claim and update tasks.
    Tasks {
        #[command(subcommand)]
        command: tasks::TasksCommand,
    },
    /// Start, list, inspect, pause, resume or kill projects (.ratchet/projects/*.yaml).
    Project {
        #[command(subcommand)]
        command: project::ProjectCommand,
    },
    /// Run prompts in sessions on a schedule: add, list, pause, resume, stop.
    Cron {
        #[command(subcommand)]
        command: cron::CronCommand,
    },
    /// List the hooks (shell commands on events) and where each came from.
    Hooks {
        #[command(subcommand)]
        command: hooks::HooksCommand,
    },
    /// Start, follow and steer teams of agents working on one task.
    Team {
        #[command(subcommand)]
        command: team::TeamCommand,
    },
}

/// Worker threads of the async runtime. ratchet waits on pipes, sockets and its SQLite thread
/// far more than it computes, so two workers keep a slow task from stalling the rest while
/// each further worker (one per core by default) only adds a stack and an allocator arena.
const RUNTIME_WORKERS: usize = 2;

/// glibc's malloc arenas: by default one per thread that allocates (up to 8 per core), each
/// keeping a few hundred KiB resident. ratchet's threads mostly wait, so two arenas serve them
/// without contention. `MALLOC_ARENA_MAX` in the environment still wins.
const MALLOC_ARENAS: i32 = 2;

/// Runs the command line.
pub fn main() -> ExitCode {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only changes allocator settings; no other thread exists yet.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, MALLOC_ARENAS) };
    }
    let cli = Cli::parse();
    ratchet::engine::provider::http::install_crypto_provider();
    let env = EnvSnapshot::from_process();
    let home = ratchet_home(&env);
    let file = ConfigFile::load(&home);
    // While this is the only thread: commands must not find provider keys or other secrets
    // in /proc/<ratchet pid>/environ. From here on they are read through `secret_env::var`.
    let custom_keys = file.as_ref().map(ConfigFile::key_env_vars).unwrap_or_default();
    // SAFETY: no other thread exists yet (the runtime and the log writer start below).
    let scrubbed = unsafe { ratchet::engine::secret_env::scrub_own_environment(&custom_keys) };
    let level = match cli.command {
        Command::Acp(_) | Command::Daemon { command: daemon::DaemonCommand::Start { .. } } => "info",
        _ => "warn",
    };
    // Before anything is written there: prompts, answers and tool output are private.
    let secured = ratchet::engine::data_dir::secure(&home);
    let guard = ratchet::logging::init(&home, level);
    match secured {
        Ok(changed) if !changed.is_empty() => tracing::warn!(
            "{} was readable by other users; removed their access ({} path(s) tightened to 0700/0600)",
            home.display(),
            changed.len()
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!("cannot make {} private (mode 0700): {e}", home.display()),
    }
    tracing::debug!(variables = scrubbed, "secret-looking variables moved out of the environment");
    let config = match file {
        Ok(file) => EngineConfig { home, env, file },
        Err(e) => return fail(e.into()),
    };
    let workers = std::thread::available_parallelism().map_or(RUNTIME_WORKERS, |n| n.get().min(RUNTIME_WORKERS));
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fail(anyhow::anyhow!("cannot start the async runtime: {e}")),
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Acp(args) => acp::run(config, args).await,
            Command::Exec { prompt, cwd, mode } => exec::run(config, prompt, cwd, mode).await,
            Command::Sessions { command } => sessions::run(config, command).await,
            Command::Attach { session } => attach::run(config, session).await,
            Command::Daemon { command } => daemon::run(config, command).await,
            Command::Provider { command } => provider::run(config, command).await,
            Command::Plans { command } => plans::run(config, command).await,
            Command::Questions { command } => questions::run(config, command).await,
            Command::Jobs { command } => jobs::run(config, command).await,
            Command::Agents { command } => agents::run(config, command).await,
            Command::Tasks { command } => tasks::run(config, command).await,
            Command::Project { command } => project::run(config, command).await,
            Command::Cron { command } => cron::run(config, command).await,
            Command::Hooks { command } => hooks::run(config, command).await,
            Command::Team { command } => team::run(config, command).await,
        }
    });
    if let Some(plan) = daemon::take_reload() {
        // Everything stopped and saved; flush the logs, then become the new binary.
        runtime.shutdown_timeout(std::time::Duration::from_secs(2));
        drop(guard);
        return daemon::exec_reload(plan);
    }
    match result {
        Ok(code) => code,
        Err(e) => fail(e),
    }
}

fn fail(e: anyhow::Error) -> ExitCode {
    let text = describe(&e);
    tracing::error!("{text}");
    #[allow(clippy::print_stderr)]
    {
        eprintln!("error: {text}");
    }
    ExitCode::FAILURE
}

/// The error and its causes on one line, each said once: a wrapper's message often already
/// contains its cause's (`{0}`-style errors), and printing both reads like a stutter.
fn describe(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

async fn open_engine(config: EngineConfig) -> anyhow::Result<Engine> {
    ratchet::compose::open_engine(config).await
}

/// The engine a one-shot command works on, as the face every front end uses.
struct EngineFace {
    api: Arc<dyn EngineApi>,
    /// Whether `api` is the daemon's (some messages say where things happened).
    in_daemon: bool,
}

/// The daemon's engine when one runs (so changes reach every window at once, and turns can
/// be attached to), else one opened in this process on the same store.
async fn engine_face(config: EngineConfig) -> anyhow::Result<EngineFace> {
    Ok(match running_daemon(&config.home).await {
        Some(client) => EngineFace { api: Arc::new(client.into_engine()), in_daemon: true },
        None => EngineFace { api: Arc::new(open_engine(config).await?), in_daemon: false },
    })
}

/// A client of the daemon on `home` if one answers; `None` if none runs. A daemon that
/// answers but cannot be used (another protocol version) is reported and skipped.
async fn running_daemon(home: &std::path::Path) -> Option<Client> {
    match Client::connect(&DaemonPaths::new(home).socket).await {
        Ok(client) => Some(client),
        Err(ClientError::NotRunning(_)) => None,
        Err(e) => {
            tracing::warn!("not using the daemon: {e}");
            None
        }
    }
}

/// The orchestra's database on the data directory `home` (plans, questions, jobs), shared
/// with every ratchet process there.
fn orchestra_db(home: &std::path::Path) -> anyhow::Result<ratchet::orchestra::db::Db> {
    ratchet::orchestra::db::Db::open_in(home)
        .with_context(|| format!("cannot open the orchestra database in {}", home.display()))
}

/// Prints `value` as pretty JSON on stdout (the `--json` of the list and show commands).
fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// How long ago the Unix-millisecond time `ms` was: `12s ago`, `3m ago`, `5h ago`, `2d ago`.
fn ago(ms: i64) -> String {
    let secs = (ratchet::orchestra::db::now_ms() - ms).max(0) / 1000;
    match secs {
        s if s < 60 => format!("{s}s ago"),
        s if s < 3600 => format!("{}m ago", s / 60),
        s if s < 86_400 => format!("{}h ago", s / 3600),
        s => format!("{}d ago", s / 86_400),
    }
}

/// A duration in milliseconds, short: `850ms`, `42s`, `3m05s`, `2h10m`.
fn short_duration(ms: u64) -> String {
    let secs = ms / 1000;
    match secs {
        0 => format!("{ms}ms"),
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// Rows as lines of left-aligned columns two spaces apart (the last column is not padded).
fn table(rows: &[Vec<String>]) -> Vec<String> {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| rows.iter().filter_map(|r| r.get(i)).map(|c| c.chars().count()).max().unwrap_or(0))
        .collect();
    rows.iter()
        .map(|row| {
            let cells: Vec<String> = row.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
            cells.join("  ").trim_end().to_string()
        })
        .collect()
}

#[allow(clippy::print_stdout)]
pub(crate) fn say(line: &str) {
    println!("{line}");
}

#[allow(clippy::print_stderr)]
pub(crate) fn note(line: &str) {
    eprintln!("{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    struct Wrapper(#[source] std::io::Error);

    #[test]
    fn describe_says_each_cause_once() {
        let inner = std::io::Error::other("attempt to write a readonly database");
        let e = anyhow::Error::new(Wrapper(inner)).context("cannot open the session store in /d");
        assert_eq!(describe(&e), "cannot open the session store in /d: attempt to write a readonly database");
    }

    #[test]
    fn ago_and_durations_read_short() {
        let now = ratchet::orchestra::db::now_ms();
        assert_eq!(ago(now - 5_000), "5s ago");
        assert_eq!(ago(now - 185_000), "3m ago");
        assert_eq!(ago(now - 2 * 86_400_000 - 1), "2d ago");
        assert_eq!(ago(now + 60_000), "0s ago");
        assert_eq!(short_duration(850), "850ms");
        assert_eq!(short_duration(42_300), "42s");
        assert_eq!(short_duration(185_000), "3m05s");
        assert_eq!(short_duration(7_800_000), "2h10m");
    }

    #[test]
    fn table_aligns_columns_and_trims_the_last() {
        let rows = vec![vec!["ID".into(), "KIND".into(), "T".into()], vec!["q10".into(), "ask".into(), "".into()]];
        assert_eq!(table(&rows), vec!["ID   KIND  T".to_string(), "q10  ask".to_string()]);
    }
}
