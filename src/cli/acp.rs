//! `ratchet acp`: the ACP agent on stdin/stdout, with the engine in this process or in the
//! daemon (same bridge either way: it only sees an [`EngineApi`]).
//!
//! Which engine: `--standalone` forces this process; `--daemon` starts a daemon if none runs
//! and uses it; by default a running daemon is used, one is started first if the config says
//! `daemon_auto_start = true`, and otherwise the engine runs here. A window on the daemon
//! survives it: it reconnects when the daemon is back, and starts it again itself in the
//! cases where it would have started it in the first place.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use ratchet::acp;
use ratchet::bridge::AcpAgent;
use ratchet::daemon::client::{Client, ClientError, WhenLost};
use ratchet::daemon::lifecycle::ensure_running;
use ratchet::daemon::paths::DaemonPaths;
use ratchet::engine::EngineApi;
use ratchet::engine::config::EngineConfig;
use ratchet::engine::opening::OpeningEngine;

#[derive(clap::Args)]
pub struct AcpArgs {
    /// Use the shared background daemon, starting it if none runs.
    #[arg(long, conflicts_with = "standalone")]
    daemon: bool,
    /// Run the engine in this process even if a daemon runs.
    #[arg(long)]
    standalone: bool,
}

pub async fn run(config: EngineConfig, args: AcpArgs) -> anyhow::Result<ExitCode> {
    let home = config.home.clone();
    let socket = DaemonPaths::new(&home).socket;
    let may_start = args.daemon || config.file.daemon_auto_start == Some(true);
    let when_lost = if may_start { WhenLost::StartAgain(home.clone()) } else { WhenLost::Reconnect };
    let client = if args.standalone {
        None
    } else if may_start {
        match Client::connect(&socket).await {
            Ok(client) => Some(client),
            Err(ClientError::NotRunning(_)) => {
                ensure_running(&home).await?;
                Some(Client::connect(&socket).await.context("the daemon started but cannot be used")?)
            }
            // Asked for on the command line: say why it cannot be used.
            Err(e) if args.daemon => return Err(e.into()),
            Err(e) => {
                tracing::warn!("not using the daemon (daemon_auto_start is set): {e}");
                None
            }
        }
    } else {
        super::running_daemon(&home).await
    };
    match client {
        Some(client) => {
            let engine = client.into_reconnecting_engine(when_lost);
            let socket = engine.socket().display().to_string();
            tracing::info!(version = env!("CARGO_PKG_VERSION"), socket, "serving ACP on stdio through the daemon");
            serve(Arc::new(engine)).await?;
            tracing::info!("client disconnected; exiting (the daemon keeps running)");
        }
        None => {
            // `initialize` needs no engine: it is answered while the store opens.
            let engine = OpeningEngine::start(async move {
                let composed = ratchet::compose::open(config).await?;
                // Then the providers' TLS settings (the system's root certificates) load,
                // beside the editor's own work until the first `session/new`, not during
                // `initialize` (with 2 cores that competed with it).
                ratchet::engine::provider::tls::warm();
                // The engine runs here: so may the cron jobs, if this process gets the lock.
                composed.orchestra.cron().start_scheduler();
                Ok(Arc::new(composed.engine) as Arc<dyn EngineApi>)
            });
            tracing::info!(version = env!("CARGO_PKG_VERSION"), "serving ACP on stdio");
            serve(Arc::new(engine)).await?;
            tracing::info!("client disconnected; exiting");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Serves ACP on stdio with `engine` until the editor hangs up, then lets the engine wind
/// down (a local one saves its turns; the daemon's gets the last cancels and replies).
async fn serve(engine: Arc<dyn EngineApi>) -> anyhow::Result<()> {
    let agent_engine = engine.clone();
    acp::serve(tokio::io::stdin(), tokio::io::stdout(), move |peer| AcpAgent::new(agent_engine, peer))
        .await
        .context("stdio failed")?;
    engine.shutdown().await;
    Ok(())
}
