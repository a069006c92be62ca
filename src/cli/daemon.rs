//! `ratchet daemon start|stop|status|restart|reload`: run the background daemon and control
//! it. The work is in `ratchet::daemon::lifecycle`; this file parses and prints.
//!
//! The foreground daemon (`daemon start` without `-b`) prints nothing to stdout; its logs go
//! to stderr and `RATCHET_HOME/logs/`.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;
use ratchet::daemon::lifecycle::{self, Outcome, ReloadPlan, Status, Stopped, control};
use ratchet::daemon::paths::DaemonPaths;
use ratchet::daemon::protocol::Health;
use ratchet::engine::config::EngineConfig;

#[derive(Subcommand)]
pub enum DaemonCommand {
    /// Run the daemon (in the foreground unless --background).
    Start {
        /// Detach: run in the background and return once it answers.
        #[arg(short, long)]
        background: bool,
    },
    /// Stop the daemon; running turns are cancelled and saved first.
    Stop,
    /// Show the daemon's pid, socket, uptime, version, sessions and running turns (exit
    /// status 1 when none runs).
    Status,
    /// Stop the daemon, then start it in the background.
    Restart,
    /// Hand over to the (new) binary on disk without losing sessions, e.g. after an upgrade.
    Reload,
}

/// Set when the foreground daemon stopped in order to reload; `main` execs it once the
/// runtime and the log writer are shut down.
static RELOAD: Mutex<Option<ReloadPlan>> = Mutex::new(None);

pub async fn run(config: EngineConfig, command: DaemonCommand) -> anyhow::Result<ExitCode> {
    let home = control::absolute_home(&config.home);
    match command {
        DaemonCommand::Start { background: false } => {
            if let Outcome::Reload(plan) = lifecycle::run_daemon(config).await? {
                *RELOAD.lock().unwrap_or_else(|p| p.into_inner()) = Some(plan);
            }
            Ok(ExitCode::SUCCESS)
        }
        DaemonCommand::Start { background: true } => {
            let started = start(&home).await?;
            say(&format!(
                "ratchet daemon started (pid {})\n  socket: {}\n  output: {}",
                started.pid,
                started.socket.display(),
                started.log.display()
            ))
        }
        DaemonCommand::Stop => match control::stop(&home).await? {
            Stopped::NotRunning => say(&format!("no daemon is running on RATCHET_HOME={}", home.display())),
            Stopped::Stopped { pid, forced } => say(&format!(
                "ratchet daemon stopped ({}){}",
                pid.map_or("pid unknown".to_string(), |p| format!("pid {p}")),
                if forced { " after SIGTERM" } else { "" }
            )),
        },
        DaemonCommand::Status => status(&home).await,
        DaemonCommand::Restart => {
            if let Stopped::Stopped { pid: Some(pid), .. } = control::stop(&home).await? {
                tracing::info!(pid, "stopped the old daemon");
            }
            let started = start(&home).await?;
            say(&format!("ratchet daemon restarted (pid {})", started.pid))
        }
        DaemonCommand::Reload => {
            let h = control::reload(&home).await?;
            say(&format!("ratchet daemon reloaded (pid {}, version {}, {} sessions)", h.pid, h.version, h.sessions))
        }
    }
}

async fn start(home: &std::path::Path) -> anyhow::Result<control::Started> {
    let exe = std::env::current_exe().context("cannot find this program's path to start the daemon")?;
    control::start_background(home, &exe).await
}

async fn status(home: &std::path::Path) -> anyhow::Result<ExitCode> {
    match control::status(home).await {
        Status::Running(h) => say(&describe(&h)),
        Status::NotRunning => {
            say(&format!(
                "no daemon is running on RATCHET_HOME={}; start one with `ratchet daemon start -b`",
                home.display()
            ))?;
            Ok(ExitCode::FAILURE)
        }
        Status::Unresponsive { pid, error } => {
            let pid = pid.map_or("pid unknown".to_string(), |p| format!("pid {p}"));
            say(&format!(
                "a daemon holds RATCHET_HOME={} ({pid}) but does not answer: {error}\nit may be starting or stuck; see {}; `ratchet daemon stop` stops it",
                home.display(),
                DaemonPaths::new(home).logs.display()
            ))?;
            Ok(ExitCode::FAILURE)
        }
    }
}

fn describe(h: &Health) -> String {
    let uptime = humantime::format_duration(Duration::from_secs(h.uptime_ms / 1000));
    format!(
        "ratchet daemon is running\n  pid:           {}\n  version:       {} (protocol {})\n  socket:        {}\n  uptime:        {uptime}\n  sessions:      {}\n  running turns: {}",
        h.pid,
        h.version,
        h.protocol,
        h.socket.display(),
        h.sessions,
        h.running_turns
    )
}

fn say(text: &str) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")?;
    Ok(ExitCode::SUCCESS)
}

/// The reload the foreground daemon asked for, if any.
pub fn take_reload() -> Option<ReloadPlan> {
    RELOAD.lock().unwrap_or_else(|p| p.into_inner()).take()
}

/// Replaces this process with the new binary; returns only if that failed.
pub fn exec_reload(plan: ReloadPlan) -> ExitCode {
    let exe = plan.exe.clone();
    let err = lifecycle::exec_reload(plan);
    #[allow(clippy::print_stderr)]
    {
        eprintln!(
            "error: cannot reload: exec {} failed: {err}; the daemon has stopped, start it with `ratchet daemon start -b`",
            exe.display()
        );
    }
    ExitCode::FAILURE
}
