//! More than one agent: plans and their approval, the fleet of workers, jobs, and the
//! question queue.
//!
//! A layer above the engine: it uses only the engine's face (`EngineApi`) and its data types,
//! never the store, and it never imports `acp`, `bridge`, `daemon` or `cli`; the engine never
//! imports it (`tests/layering.rs`). It reaches the model through the engine's extension
//! point (`engine::extension`): the `propose_plan` and `ask_human` tools, `/approve` and
//! `/reject`, and a look at every turn (each is a job). Its state lives in its own database
//! (`db`), shared by every ratchet process on the data directory, so the CLI answers and
//! controls what any of them runs.

mod agent_spawn;
pub mod agents;
pub mod ask;
mod ask_human;
pub mod autorespond;
pub mod blackboard;
mod child_turn;
pub mod commands;
pub mod config;
pub mod cron;
pub mod db;
mod extension;
pub mod fleet;
pub mod hooks;
pub mod jobs;
pub mod plan;
pub mod plans;
pub mod projects;
mod propose;
pub mod questions;
pub mod tasks;
pub mod teams;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::engine::EngineApi;
use crate::engine::extension::PauseGate;

pub use config::OrchestraConfig;

/// The orchestra of one engine: one fleet (one worker pool), one job registry, one queue.
#[derive(Clone)]
pub struct Orchestra {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Arc<dyn EngineApi>,
    config: OrchestraConfig,
    plans: plans::PlanStore,
    questions: questions::QuestionQueue,
    jobs: jobs::JobRegistry,
    fleet: fleet::Fleet,
    /// The task tracker (`tasks`), not to be confused with `tasks` below.
    task_store: tasks::TaskStore,
    projects: projects::Projects,
    /// The hooks of `.ratchet/hooks.yaml` and `RATCHET_HOME/hooks.yaml`.
    hooks: hooks::Hooks,
    /// Parent of every job's token.
    shutdown: CancellationToken,
    /// Small tasks it owns (watching a turn's job); shutdown waits for them.
    tasks: TaskTracker,
    /// The pause gates of running turns, by session (a worker's pause reaches its turn here).
    gates: Mutex<HashMap<String, PauseGate>>,
    /// The data directory (the user's agent definitions are under `agents/`).
    home: std::path::PathBuf,
    /// The cron jobs' store and scheduler state.
    cron: cron::CronState,
    /// Teams: their database, running members' links.
    teams: teams::TeamsState,
    /// The database itself, for the checkpoint at shutdown.
    db: db::Db,
}

impl Orchestra {
    /// The orchestra over `engine`, with its database under `home` (opened on first use).
    pub fn open(engine: Arc<dyn EngineApi>, home: &Path, config: OrchestraConfig) -> Orchestra {
        Orchestra::with_db(engine, home, db::Db::lazy(&home.join("orchestra.db")), config)
    }

    /// The orchestra over `engine` with this database; `home` is where the user's agent
    /// definitions are (`home/agents/`).
    pub fn with_db(engine: Arc<dyn EngineApi>, home: &Path, db: db::Db, config: OrchestraConfig) -> Orchestra {
        let shutdown = CancellationToken::new();
        let jobs = jobs::JobRegistry::new(db.clone(), shutdown.clone());
        let tasks = TaskTracker::new();
        let hooks = hooks::Hooks::new(home, tasks.clone(), shutdown.clone());
        Orchestra {
            inner: Arc::new(Inner {
                engine,
                plans: plans::PlanStore::new(db.clone()),
                cron: cron::CronState::new(db.clone()),
                questions: questions::QuestionQueue::new(db.clone()).observed(hooks.question_observer()),
                task_store: tasks::TaskStore::new(db.clone(), jobs.clone()),
                projects: projects::Projects::new(db.clone(), jobs.clone()),
                jobs,
                teams: teams::TeamsState::new(db.clone()),
                db,
                fleet: fleet::Fleet::new(config.max_workers),
                hooks,
                config,
                shutdown,
                tasks,
                gates: Mutex::default(),
                home: home.to_path_buf(),
            }),
        }
    }

    /// What the engine gets: the tools, commands and turn watch (install with
    /// `Engine::set_extension`).
    pub fn extension(&self) -> Arc<dyn crate::engine::extension::Extension> {
        Arc::new(extension::OrchestraExtension { orchestra: self.clone() })
    }

    pub fn plans(&self) -> &plans::PlanStore {
        &self.inner.plans
    }

    pub fn questions(&self) -> &questions::QuestionQueue {
        &self.inner.questions
    }

    pub fn jobs(&self) -> &jobs::JobRegistry {
        &self.inner.jobs
    }

    pub fn tasks(&self) -> &tasks::TaskStore {
        &self.inner.task_store
    }

    pub fn projects(&self) -> &projects::Projects {
        &self.inner.projects
    }

    /// The hooks: `check` a pre-event, `fire` any other (`hooks::HookEvent` has the events).
    pub fn hooks(&self) -> &hooks::Hooks {
        &self.inner.hooks
    }

    /// Pauses or resumes the running turn of `session` (before its next model call).
    fn set_paused(&self, session: &str, paused: bool) {
        if let Some(gate) = self.gates().get(session) {
            if paused { gate.pause() } else { gate.resume() }
        }
    }

    fn gates(&self) -> std::sync::MutexGuard<'_, HashMap<String, PauseGate>> {
        self.inner.gates.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stops every job (their tokens are children of this) and waits for its own tasks.
    pub async fn shutdown(&self) {
        self.inner.shutdown.cancel();
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
        self.inner.db.checkpoint_on_shutdown().await;
    }
}
