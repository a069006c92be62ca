//! Hooks: shell commands people attach to events (`.ratchet/hooks.yaml` and
//! `RATCHET_HOME/hooks.yaml`, both apply; see `config`). A hook on a pre-event (`pre_tool_call`,
//! `pre_edit`, `pre_command`) runs before the action and refuses it by failing: its output
//! is the reason the model gets as the tool's result ([`Hooks::check`]). Hooks on every other
//! event are told and never hold anything up ([`Hooks::fire`]): they run on the orchestra's
//! task tracker, a few at a time, and a failure is logged.
//!
//! A hook gets the event as JSON on stdin and as `RATCHET_*` variables, the environment the
//! `shell` tool's commands get (no secret-looking variable, never a provider key), the
//! session's directory, and a timeout after which its whole process group is killed.
//!
//! Fail closed: while a hooks file is broken, every tool call is refused with a message
//! naming the file and what is wrong, since a check meant to guard them cannot run.

pub mod config;
pub mod event;
pub mod runner;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::engine::extension::{ToolCallInfo, ToolOutcome};
use crate::engine::secret_env::{CommandEnv, EnvAllow};
use crate::engine::tools::redact::Redactor;
pub use config::{BrokenFile, Hook, HookSet};
pub use event::{EventData, EventName, HookEvent};
use runner::{HookRun, RunInput};

/// Notify hooks (not pre-hooks, which run on their turn's path) running at once.
pub const MAX_RUNNING_HOOKS: usize = 4;
/// Fired events waiting for a free slot; beyond this an event's hooks are dropped (and
/// logged) rather than growing memory without bound.
pub const MAX_WAITING_HOOKS: usize = 256;
/// How long hooks still running at shutdown get before they are killed.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// Provider keys withheld when nobody said which ones there are (no engine installed).
const PROVIDER_KEYS: [&str; 2] = ["OPENAI_API_KEY", "ANTHROPIC_API_KEY"];

/// What hooks get of the engine: the environment its commands get (asked each time, as
/// stored provider entries come and go) and the redactor of their output.
#[derive(Clone)]
pub struct CommandSurroundings {
    pub env: Arc<dyn Fn() -> BoxFuture<'static, CommandEnv> + Send + Sync>,
    pub redactor: Arc<Redactor>,
}

/// The hooks of one orchestra. Cheap to clone.
#[derive(Clone)]
pub struct Hooks {
    inner: Arc<HooksInner>,
}

struct HooksInner {
    /// The data directory (the user's `hooks.yaml`).
    home: PathBuf,
    tasks: TaskTracker,
    shutdown: CancellationToken,
    running: Arc<Semaphore>,
    waiting: Arc<Semaphore>,
    surroundings: OnceLock<CommandSurroundings>,
}

/// Why a pre-hook refused an action; its `Display` is what the model is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockReason {
    /// A hooks file cannot be read or parsed.
    BrokenFile(BrokenFile),
    /// A hook failed (a non-zero exit, a timeout, or it could not start).
    Refused { event: EventName, source: PathBuf, command: String, run: HookRun },
}

impl std::fmt::Display for BlockReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BlockReason::BrokenFile(b) => write!(
                f,
                "Blocked: the hooks file {} is broken ({}), so the checks it holds cannot run. No tool runs until \
                 it is fixed; `ratchet hooks list` shows what is wrong.",
                b.source.display(),
                b.reason
            ),
            BlockReason::Refused { event, source, command, run } => {
                let line = command.lines().next().unwrap_or("");
                let short = event::cut(line, 80);
                let command = if short.len() < line.len() { format!("{short}…") } else { short.to_string() };
                write!(f, "Blocked by the {event} hook in {} (`{command}`, {}).", source.display(), run.end)?;
                if !run.output.is_empty() {
                    write!(f, "\n{}", run.output)?;
                }
                Ok(())
            }
        }
    }
}

impl Hooks {
    /// Hooks reading the user's file from `home`, their tasks on `tasks`, stopped by `shutdown`.
    pub fn new(home: &Path, tasks: TaskTracker, shutdown: CancellationToken) -> Hooks {
        Hooks {
            inner: Arc::new(HooksInner {
                home: home.to_path_buf(),
                tasks,
                shutdown,
                running: Arc::new(Semaphore::new(MAX_RUNNING_HOOKS)),
                waiting: Arc::new(Semaphore::new(MAX_WAITING_HOOKS)),
                surroundings: OnceLock::new(),
            }),
        }
    }

    /// Gives hooks the engine's command environment and redactor (once; the composition root
    /// does it). Until then they get this process's environment less every secret-looking
    /// variable, and no redaction.
    pub fn set_surroundings(&self, surroundings: CommandSurroundings) -> bool {
        self.inner.surroundings.set(surroundings).is_ok()
    }

    /// The hooks (and broken files) for a session in `cwd`.
    pub fn load(&self, cwd: &Path) -> HookSet {
        config::load(cwd, &self.inner.home)
    }

    /// Runs the hooks of a pre-event, one after another; the first that fails refuses the
    /// action. Post and notify events have no say: use [`Hooks::fire`].
    pub async fn check(&self, event: &HookEvent) -> Result<(), BlockReason> {
        self.check_all(std::slice::from_ref(event)).await
    }

    /// [`Hooks::check`] of several events of one action (all in one directory), in order.
    pub async fn check_all(&self, events: &[HookEvent]) -> Result<(), BlockReason> {
        let Some(first) = events.first() else { return Ok(()) };
        let set = self.load(&first.cwd);
        if let Some(broken) = set.broken.first() {
            return Err(BlockReason::BrokenFile(broken.clone()));
        }
        let mut surroundings = None;
        for event in events.iter().filter(|e| e.name().is_pre()) {
            for hook in set.matching(event) {
                if surroundings.is_none() {
                    surroundings = Some(self.surroundings().await);
                }
                let Some((env, redactor)) = &surroundings else { continue };
                let run = run_hook(hook, event, env, redactor).await;
                if !run.succeeded() {
                    tracing::info!(event = %hook.event, source = %hook.source.display(), end = %run.end, "a hook refused an action");
                    let (event, source, command) = (hook.event, hook.source.clone(), hook.command.clone());
                    return Err(BlockReason::Refused { event, source, command, run });
                }
            }
        }
        Ok(())
    }

    /// Runs the hooks of `event` in the background (a few at a time, owned by the
    /// orchestra's tracker); never waits and never fails. A failing hook is logged.
    pub fn fire(&self, event: HookEvent) {
        if self.inner.shutdown.is_cancelled() {
            return;
        }
        let Ok(waiting) = self.inner.waiting.clone().try_acquire_owned() else {
            tracing::warn!(event = %event.name(), "{MAX_WAITING_HOOKS} hooks wait already; this event's hooks do not run");
            return;
        };
        let hooks = self.clone();
        let shutdown = self.inner.shutdown.clone();
        self.inner.tasks.spawn(async move {
            let _waiting = waiting;
            tokio::select! {
                () = hooks.notify(&event) => {}
                () = async { shutdown.cancelled().await; tokio::time::sleep(SHUTDOWN_GRACE).await } => {
                    tracing::info!(event = %event.name(), "hooks still running at shutdown were killed");
                }
            }
        });
    }

    /// The pre-events of a tool call, checked in order: `pre_tool_call`, then `pre_edit` or
    /// `pre_command`.
    pub async fn before_tool(&self, call: &ToolCallInfo) -> Result<(), BlockReason> {
        self.check_all(&HookEvent::for_tool_call(call, None)).await
    }

    /// The post-events of a tool call that ran.
    pub fn after_tool(&self, call: &ToolCallInfo, outcome: &ToolOutcome) {
        for event in HookEvent::for_tool_call(call, Some(outcome)) {
            self.fire(event);
        }
    }

    /// Fires `question_asked` for every question queued (install with
    /// `QuestionQueue::observed`).
    pub fn question_observer(&self) -> super::questions::AskObserver {
        let hooks = self.clone();
        Arc::new(move |q: &super::questions::QuestionRecord| {
            let data = EventData::QuestionAsked {
                question_id: q.id.clone(),
                question_kind: q.kind.as_str().to_string(),
                title: q.title.clone(),
            };
            hooks.fire(HookEvent::in_session(&q.session_id, &q.cwd, data));
        })
    }

    async fn notify(&self, event: &HookEvent) {
        let set = self.load(&event.cwd);
        for broken in &set.broken {
            tracing::warn!(
                event = %event.name(),
                "the hooks file {} is broken ({}); its hooks do not run",
                broken.source.display(),
                broken.reason
            );
        }
        let hooks: Vec<&Hook> = set.matching(event).collect();
        if hooks.is_empty() {
            return;
        }
        let (env, redactor) = self.surroundings().await;
        for hook in hooks {
            let Ok(_slot) = self.inner.running.acquire().await else { return };
            let run = run_hook(hook, event, &env, &redactor).await;
            if run.succeeded() {
                tracing::debug!(event = %hook.event, source = %hook.source.display(), "hook ran");
            } else {
                tracing::warn!(
                    event = %hook.event,
                    source = %hook.source.display(),
                    command = %hook.command,
                    end = %run.end,
                    output = %run.output,
                    "a hook failed"
                );
            }
        }
    }

    async fn surroundings(&self) -> (CommandEnv, Arc<Redactor>) {
        match self.inner.surroundings.get() {
            Some(s) => ((s.env)().await, s.redactor.clone()),
            None => {
                let never: Vec<String> = PROVIDER_KEYS.iter().map(|k| k.to_string()).collect();
                (CommandEnv::new(&EnvAllow::default(), &never), Arc::new(Redactor::default()))
            }
        }
    }
}

async fn run_hook(hook: &Hook, event: &HookEvent, env: &CommandEnv, redactor: &Redactor) -> HookRun {
    let json = serde_json::to_vec(&event.to_json()).unwrap_or_default();
    let variables = event.variables();
    let input = RunInput { cwd: &event.cwd, timeout: hook.timeout, stdin: json, variables: &variables, env, redactor };
    runner::run(&hook.command, input).await
}
