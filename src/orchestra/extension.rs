//! What the orchestra adds to the engine (`engine::extension::Extension`): the
//! `propose_plan`, `ask_human` and task tracker (`task_*`) tools, `/approve` and `/reject`, a
//! job for every turn, and the hooks of every tool call and session.

use std::sync::Arc;

use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use super::Orchestra;
use super::jobs::{JobKind, JobSpec};
use crate::engine::SessionRecord;
use crate::engine::commands::CommandInfo;
use crate::engine::extension::{Extension, SessionNotice, ToolCallInfo, ToolOutcome, TurnCommand, TurnInfo};
use crate::engine::tools::Tool;

pub(super) struct OrchestraExtension {
    pub orchestra: Orchestra,
}

impl Extension for OrchestraExtension {
    fn tools(&self, session: &SessionRecord) -> Vec<Arc<dyn Tool>> {
        // A team member: the team tools, the task tracker, and its questions labelled with
        // its team and name.
        if let Some(link) = self.orchestra.team_member(&session.id) {
            let label = Some(format!("team {} {}", link.team, link.member));
            let mut tools = super::teams::team_tools(&link);
            tools.push(Arc::new(super::ask_human::AskHumanTool { orchestra: self.orchestra.clone(), label }));
            tools.extend(super::tasks::tools::all(&self.orchestra));
            return tools;
        }
        let ask: Arc<dyn Tool> =
            Arc::new(super::ask_human::AskHumanTool { orchestra: self.orchestra.clone(), label: None });
        // Every agent shares the task tracker.
        let mut shared = vec![ask];
        shared.extend(super::tasks::tools::all(&self.orchestra));
        // A worker carries out its step; it does not plan a fleet of its own.
        if session.parent_id.is_some() {
            return shared;
        }
        let mut tools: Vec<Arc<dyn Tool>> = vec![
            Arc::new(super::propose::ProposePlanTool { orchestra: self.orchestra.clone() }),
            Arc::new(super::agent_spawn::AgentSpawnTool { orchestra: self.orchestra.clone() }),
        ];
        tools.extend(shared);
        tools
    }

    fn commands(&self) -> Vec<CommandInfo> {
        super::commands::COMMANDS.to_vec()
    }

    fn command(&self, session: &SessionRecord, name: &str, args: &str) -> Option<BoxFuture<'static, String>> {
        super::commands::run(&self.orchestra, session, name, args)
    }

    fn turn_command(&self, session: &SessionRecord, name: &str, args: &str) -> Option<TurnCommand> {
        super::teams::chat_command(&self.orchestra, session, name, args)
    }

    fn shutdown(&self) -> BoxFuture<'static, ()> {
        let orchestra = self.orchestra.clone();
        Box::pin(async move { orchestra.shutdown().await })
    }

    fn watch_turn(&self, turn: TurnInfo) -> BoxFuture<'static, Option<Box<dyn Send + Sync>>> {
        let orchestra = self.orchestra.clone();
        Box::pin(async move { orchestra.watch_turn(turn).await })
    }

    fn before_tool(&self, call: ToolCallInfo) -> BoxFuture<'static, Result<(), String>> {
        let hooks = self.orchestra.hooks().clone();
        Box::pin(async move { hooks.before_tool(&call).await.map_err(|refused| refused.to_string()) })
    }

    fn after_tool(&self, call: ToolCallInfo, outcome: ToolOutcome) {
        self.orchestra.hooks().after_tool(&call, &outcome);
    }

    fn session_event(&self, notice: SessionNotice) {
        self.orchestra.hooks().fire(super::hooks::HookEvent::for_session(notice));
    }
}

/// Kept for a turn's life: its job, and the task that applies the job's controls to it.
struct TurnWatch {
    orchestra: Orchestra,
    session: String,
    over: CancellationToken,
}

impl Drop for TurnWatch {
    fn drop(&mut self) {
        self.over.cancel();
        self.orchestra.gates().remove(&self.session);
    }
}

impl Orchestra {
    /// A turn starts: its pause gate is kept (a paused worker or job holds it), and a turn
    /// of an ordinary session is a `session:<id>` job whose kill cancels it.
    async fn watch_turn(&self, turn: TurnInfo) -> Option<Box<dyn Send + Sync>> {
        let session = turn.session.id.clone();
        self.gates().insert(session.clone(), turn.pause.clone());
        let over = CancellationToken::new();
        let watch = TurnWatch { orchestra: self.clone(), session: session.clone(), over: over.clone() };
        // A worker's turn is its worker's job (`fleet_worker:`), registered by the fleet.
        if turn.session.parent_id.is_some() {
            return Some(Box::new(watch));
        }
        let spec = JobSpec {
            kind: JobKind::Session,
            key: session.clone(),
            model: Some(format!("{}/{}", turn.session.provider, turn.session.model)),
            session_id: Some(session.clone()),
            detail: turn.session.title.clone(),
            pausable: true,
        };
        let cancel = turn.cancel;
        let gate = turn.pause;
        let jobs = self.inner.jobs.clone();
        let projects = self.inner.projects.clone();
        // Registered beside the turn, not before it: the turn does not wait for the database.
        self.inner.tasks.spawn(async move {
            let job = tokio::select! {
                job = jobs.register(spec) => match job {
                    Ok(job) => job,
                    Err(e) => return tracing::warn!(error = %e, "cannot list a turn as a job"),
                },
                () = over.cancelled() => return,
            };
            // A turn of a paused project's session holds at once; a killed project's stops.
            projects.hold_new_job(job.id()).await;
            let mut paused = job.paused();
            if *paused.borrow_and_update() {
                gate.pause();
            }
            loop {
                tokio::select! {
                    () = over.cancelled() => break,
                    () = job.token().cancelled() => {
                        if job.killed() {
                            cancel.cancel();
                        }
                        break;
                    }
                    changed = paused.changed() => {
                        if changed.is_err() {
                            break;
                        }
                        if *paused.borrow_and_update() { gate.pause() } else { gate.resume() }
                    }
                }
            }
            drop(job);
        });
        Some(Box::new(watch))
    }
}
