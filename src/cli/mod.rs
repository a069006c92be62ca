//! The command line: `ratchet acp`, `ratchet exec`, `ratchet sessions`, `ratchet attach`,
//! `ratchet daemon`, `ratchet provider`.
//!
//! This is the only code allowed to print to stdout outside the protocol writer; in
//! `ratchet acp` it prints nothing.

mod acp;
mod attach;
mod daemon;
mod exec;
mod provider;
mod sessions;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use ratchet::daemon::client::{Client, ClientError};
use ratchet::daemon::paths::DaemonPaths;
use ratchet::engine::Engine;
use ratchet::engine::config::{ConfigFile, EngineConfig, EnvSnapshot, ratchet_home};

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
}

/// Runs the command line.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    ratchet::engine::provider::http::install_crypto_provider();
    let env = EnvSnapshot::from_process();
    let home = ratchet_home(&env);
    let level = match cli.command {
        Command::Acp(_) | Command::Daemon { command: daemon::DaemonCommand::Start { .. } } => "info",
        _ => "warn",
    };
    let guard = ratchet::logging::init(&home, level);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fail(anyhow::anyhow!("cannot start the async runtime: {e}")),
    };
    let result = runtime.block_on(async move {
        let config = load_config(env, home)?;
        match cli.command {
            Command::Acp(args) => acp::run(config, args).await,
            Command::Exec { prompt, cwd, mode } => exec::run(config, prompt, cwd, mode).await,
            Command::Sessions { command } => sessions::run(config, command).await,
            Command::Attach { session } => attach::run(config, session).await,
            Command::Daemon { command } => daemon::run(config, command).await,
            Command::Provider { command } => provider::run(config, command).await,
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
    tracing::error!("{e:#}");
    #[allow(clippy::print_stderr)]
    {
        eprintln!("error: {e:#}");
    }
    ExitCode::FAILURE
}

fn load_config(env: EnvSnapshot, home: PathBuf) -> anyhow::Result<EngineConfig> {
    let file = ConfigFile::load(&home)?;
    Ok(EngineConfig { home, env, file })
}

async fn open_engine(config: EngineConfig) -> anyhow::Result<Engine> {
    let home = config.home.clone();
    Engine::open(config).await.with_context(|| format!("cannot open the session store in {}", home.display()))
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
