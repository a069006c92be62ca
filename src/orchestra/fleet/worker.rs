//! One worker: waits for a slot in the pool, makes its child session (routed to a model by
//! its step's complexity), runs one turn on its step, streams what it does into its tool call
//! in the prompting turn, forwards its permission questions to a person, and reports how it
//! ended. It is a job (`fleet_worker:<session>`): killing it stops its turn (its model stream
//! closes) and fails its step as killed; pausing it lets its current model call finish, then
//! holds it.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Finished, Note, SlotRequest, announce, first_line, show};
use crate::engine::turn_scope::TurnScope;
use crate::engine::{ChildSpec, ToolCallStatus};
use crate::orchestra::Orchestra;
use crate::orchestra::child_turn::ChildTurn;
use crate::orchestra::jobs::{JobKind, JobSpec};
use crate::orchestra::plan::Step;
use crate::orchestra::plans::StepRun;

pub(super) struct Worker {
    pub orchestra: Orchestra,
    /// The prompting turn.
    pub turn: Arc<dyn TurnScope>,
    /// The prompting turn's token: cancelling the prompt cancels the fleet.
    pub cancel: CancellationToken,
    pub cwd: PathBuf,
    pub parent_session: String,
    pub plan_id: String,
    pub goal: String,
    pub step: Step,
    /// Its tool call in the prompting turn.
    pub call_id: String,
    pub notes: mpsc::Sender<Note>,
}

impl Worker {
    /// `slot` is its place in the pool's queue, taken when it was launched.
    pub async fn run(self, slot: SlotRequest) -> Finished {
        let mut run = StepRun::default();
        let outcome = self.work(slot, &mut run).await;
        let (status, text) = match &outcome {
            Ok(()) => (ToolCallStatus::Completed, run.summary.clone().unwrap_or_default()),
            Err(why) => (ToolCallStatus::Failed, format!("failed: {why}")),
        };
        show(self.turn.as_ref(), &self.call_id, status, text.clone(), Some(text)).await;
        Finished { step: self.step.id.clone(), run, outcome }
    }

    async fn work(&self, slot: SlotRequest, run: &mut StepRun) -> Result<(), String> {
        announce(self.turn.as_ref(), &self.call_id, &self.step, &self.plan_id).await;
        let _slot = tokio::select! {
            // The cancel first: the slots free up as the cancelled workers end, and a worker
            // still waiting must not take one and start its step after the fleet was cancelled.
            biased;
            () = self.cancel.cancelled() => return Err("cancelled".into()),
            permit = slot.granted() => permit.map_err(|_| "the fleet is shutting down".to_string())?,
        };
        let engine = &self.orchestra.inner.engine;
        let route = self.orchestra.inner.config.routing.route(self.step.complexity).cloned();
        let mut spec = ChildSpec {
            title: Some(format!("{} {}: {}", self.plan_id, self.step.id, first_line(&self.step.description))),
            provider: route.as_ref().map(|r| r.provider.clone()),
            model: route.and_then(|r| r.model),
            agent: None,
        };
        if let Some(name) = &self.step.agent {
            self.take_role(name, &mut spec)?;
        }
        let child = engine.create_child_session(self.parent_session.clone(), spec).await.map_err(|e| e.to_string())?;
        run.worker_session = Some(child.id.clone());
        run.model = Some(child.model.clone());
        let model_label = format!("{}/{}", child.provider, child.model);
        let job = self
            .orchestra
            .inner
            .jobs
            .register(JobSpec {
                kind: JobKind::FleetWorker,
                key: child.id.clone(),
                model: Some(model_label.clone()),
                session_id: Some(child.id.clone()),
                detail: Some(format!("plan {} step {}", self.plan_id, self.step.id)),
                pausable: true,
            })
            .await
            .map_err(|e| e.to_string())?;
        let _ = self
            .notes
            .send(Note::Started {
                step: self.step.id.clone(),
                worker_session: child.id.clone(),
                model: model_label.clone(),
            })
            .await;
        show(self.turn.as_ref(), &self.call_id, ToolCallStatus::InProgress, format!("running on {model_label}"), None)
            .await;
        let driver = ChildTurn {
            orchestra: &self.orchestra,
            turn: &self.turn,
            cancel: &self.cancel,
            cwd: &self.cwd,
            parent_session: &self.parent_session,
            call_id: &self.call_id,
            label: format!("{} {}", self.plan_id, self.step.id),
        };
        let result = driver.drive(&child.id, worker_prompt(&self.goal, &self.step), run, &job).await;
        if let Err(e) = engine.close_session(child.id.clone()).await {
            tracing::debug!(error = %e, "cannot close a worker's session");
        }
        result
    }
}

impl Worker {
    /// The step names an agent: its worker takes that agent's role prompt, tools and cap,
    /// and its provider/model where it names them (over the complexity's route).
    fn take_role(&self, name: &str, spec: &mut ChildSpec) -> Result<(), String> {
        let catalog = crate::orchestra::agents::load(&self.cwd, &self.orchestra.inner.home);
        let def = catalog.get(name).ok_or_else(|| format!("the agent {name:?} is no longer defined"))?;
        if def.provider.is_some() {
            spec.provider = def.provider.clone();
            spec.model = None;
        }
        if def.model.is_some() {
            spec.model = def.model.clone();
        }
        spec.agent = Some(def.profile());
        Ok(())
    }
}

/// A worker sees the plan's goal and its own step, not the other steps.
pub fn worker_prompt(goal: &str, step: &Step) -> String {
    let mut p = format!(
        "You are one worker of a fleet carrying out an approved plan.\n\nGoal of the plan: {goal}\n\n\
         Your step ({}): {}\n",
        step.id, step.description
    );
    if !step.files.is_empty() {
        p.push_str(&format!("Files of your step: {}\n", step.files.join(", ")));
    }
    p.push_str(
        "\nDo this step only, with the tools; other workers do the other steps. \
         When it is done, answer with a short summary of what you changed.",
    );
    p
}
