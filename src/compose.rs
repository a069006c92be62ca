//! The composition root: an engine with its orchestra installed, as every process that runs
//! turns (`ratchet acp`, `ratchet exec`, the daemon) opens it. The engine does not know the
//! orchestra; the orchestra sees the engine only through its face; this is where they meet.

use std::sync::Arc;

use anyhow::Context;

use crate::engine::{Engine, EngineConfig};
use crate::orchestra::hooks::CommandSurroundings;
use crate::orchestra::{Orchestra, OrchestraConfig};

/// An engine with its orchestra installed. Front ends drive the engine; the daemon and the
/// CLI also reach the orchestra (teams, cron) directly.
pub struct Composed {
    pub engine: Engine,
    pub orchestra: Orchestra,
}

/// Opens the engine on `config.home` and installs the orchestra (plans, fleet, jobs, the
/// question queue) on it.
pub async fn open_engine(config: EngineConfig) -> anyhow::Result<Engine> {
    Ok(open(config).await?.engine)
}

/// [`open_engine`], keeping the orchestra at hand.
pub async fn open(config: EngineConfig) -> anyhow::Result<Composed> {
    let home = config.home.clone();
    let orchestra_config = OrchestraConfig::from_file(&config.file).map_err(anyhow::Error::msg)?;
    let engine =
        Engine::open(config).await.with_context(|| format!("cannot open the session store in {}", home.display()))?;
    // The orchestra holds the engine's face and the engine its extension: both live as long
    // as the process serves.
    let orchestra = Orchestra::open(Arc::new(engine.clone()), &home, orchestra_config);
    // Hooks get what the engine's commands get: no secrets, output redacted.
    let env_source = engine.clone();
    orchestra.hooks().set_surroundings(CommandSurroundings {
        env: Arc::new(move || {
            let engine = env_source.clone();
            Box::pin(async move { engine.command_env().await })
        }),
        redactor: engine.redactor(),
    });
    engine.set_extension(orchestra.extension());
    orchestra.set_redactor(engine.secret_redactor());
    Ok(Composed { engine, orchestra })
}
