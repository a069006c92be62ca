//! A plan and its life: proposed by the model, approved (perhaps with steps skipped) or
//! rejected with feedback by a person, then executed step by step by the fleet.
//!
//! This module is the state machine only (no storage, no engine, no I/O), so every rule is
//! one function with a test: no step runs before approval, skipped steps never run, a step
//! waits for the steps it depends on, a failed step fails the plan once everything running
//! has finished, and every transition that does not apply is an error saying why.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// Most steps one plan may have: enough for a large change, few enough to review.
pub const MAX_PLAN_STEPS: usize = 200;

/// How hard a step is, which picks the model that runs it (`[model_routing]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Complexity {
    Simple,
    Complex,
    Review,
}

impl Complexity {
    /// A guess from the step's text when the model gave none: reviews by their verbs, long or
    /// design-heavy steps as complex, the rest simple.
    pub fn classify(description: &str) -> Complexity {
        let text = description.to_ascii_lowercase();
        let has = |words: &[&str]| words.iter().any(|w| text.split(|c: char| !c.is_alphanumeric()).any(|t| t == *w));
        if has(&["review", "audit", "verify", "check", "inspect"]) {
            Complexity::Review
        } else if text.split_whitespace().count() > 40
            || has(&["design", "refactor", "architect", "migrate", "rewrite"])
        {
            Complexity::Complex
        } else {
            Complexity::Simple
        }
    }
}

/// One step as the model proposes it (the `propose_plan` tool's arguments).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProposedStep {
    pub id: String,
    pub description: String,
    #[serde(default)]
    pub complexity: Option<Complexity>,
    #[serde(default)]
    pub files: Vec<String>,
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// A named agent (`agents.rs`) to carry out the step: its role prompt, tools and model.
    #[serde(default)]
    pub agent: Option<String>,
}

/// The `propose_plan` tool's arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proposal {
    pub goal: String,
    pub steps: Vec<ProposedStep>,
}

/// Where a plan is in its life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum PlanStatus {
    Proposed,
    Approved,
    Rejected { feedback: String },
    Executing,
    Completed,
    Failed,
    Cancelled,
}

/// Where a step is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum StepStatus {
    Pending,
    InProgress,
    Completed,
    Failed { reason: String },
    Skipped,
}

/// A step of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub id: String,
    pub description: String,
    pub complexity: Complexity,
    pub files: Vec<String>,
    pub depends_on: Vec<String>,
    /// The named agent whose worker carries it out; `None`: a plain worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    pub status: StepStatus,
}

/// A plan: the goal, its steps, and where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub goal: String,
    /// 1 for the first proposal; each proposal after a rejection counts up.
    pub revision: u32,
    pub steps: Vec<Step>,
    pub status: PlanStatus,
}

/// A transition that does not apply, said so that the caller can tell the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("the plan is not valid: {0}")]
    Invalid(String),
    #[error("the plan is {status}, so it cannot be {action}")]
    WrongState { status: &'static str, action: &'static str },
    #[error("the plan has no step {0:?}; its steps are {1}")]
    UnknownStep(String, String),
    #[error("step {0:?} is {1}, so it cannot be {2}")]
    WrongStepState(String, &'static str, &'static str),
}

impl Plan {
    /// A new proposal (`revision` 1, or one more than the rejected plan it revises), checked:
    /// a goal, 1 to [`MAX_PLAN_STEPS`] steps with unique non-empty ids and descriptions, and
    /// dependencies on known steps without a cycle.
    pub fn propose(proposal: Proposal, revision: u32) -> Result<Plan, PlanError> {
        let invalid = |why: String| Err(PlanError::Invalid(why));
        if proposal.goal.trim().is_empty() {
            return invalid("the goal is empty".into());
        }
        if proposal.steps.is_empty() || proposal.steps.len() > MAX_PLAN_STEPS {
            return invalid(format!("a plan has 1 to {MAX_PLAN_STEPS} steps, not {}", proposal.steps.len()));
        }
        let mut ids = BTreeSet::new();
        for s in &proposal.steps {
            if s.id.trim().is_empty() || s.description.trim().is_empty() {
                return invalid(format!("step {:?} needs an id and a description", s.id));
            }
            if !ids.insert(s.id.as_str()) {
                return invalid(format!("two steps have the id {:?}", s.id));
            }
        }
        for s in &proposal.steps {
            if let Some(d) = s.depends_on.iter().find(|d| !ids.contains(d.as_str())) {
                return invalid(format!("step {:?} depends on {d:?}, which is not a step of this plan", s.id));
            }
        }
        if let Some(id) = dependency_cycle(&proposal.steps) {
            return invalid(format!("step {id:?} depends on itself through its dependencies"));
        }
        let steps = proposal
            .steps
            .into_iter()
            .map(|s| Step {
                complexity: s.complexity.unwrap_or_else(|| Complexity::classify(&s.description)),
                id: s.id,
                description: s.description,
                files: s.files,
                depends_on: s.depends_on,
                agent: s.agent.map(|a| a.trim().to_string()).filter(|a| !a.is_empty()),
                status: StepStatus::Pending,
            })
            .collect();
        Ok(Plan { goal: proposal.goal, revision, steps, status: PlanStatus::Proposed })
    }

    /// Approves the plan, skipping `skip` (step ids). At least one step must be left to run.
    pub fn approve(&mut self, skip: &[String]) -> Result<(), PlanError> {
        self.expect(PlanStatus::Proposed, "approved")?;
        for id in skip {
            self.index(id)?;
        }
        if self.steps.iter().all(|s| skip.contains(&s.id)) {
            return Err(PlanError::Invalid("every step is skipped; reject the plan instead".into()));
        }
        for s in &mut self.steps {
            if skip.contains(&s.id) {
                s.status = StepStatus::Skipped;
            }
        }
        self.status = PlanStatus::Approved;
        Ok(())
    }

    /// Rejects the plan; the feedback goes back to the model, which may propose a revision.
    pub fn reject(&mut self, feedback: &str) -> Result<(), PlanError> {
        self.expect(PlanStatus::Proposed, "rejected")?;
        self.status = PlanStatus::Rejected { feedback: feedback.to_string() };
        Ok(())
    }

    /// Starts executing an approved plan.
    pub fn start(&mut self) -> Result<(), PlanError> {
        self.expect(PlanStatus::Approved, "started")?;
        self.status = PlanStatus::Executing;
        Ok(())
    }

    /// The steps that may start now: pending, in an executing plan, with every dependency
    /// completed or skipped. Empty in any other state, so nothing runs before approval.
    pub fn ready_steps(&self) -> Vec<&Step> {
        if self.status != PlanStatus::Executing {
            return Vec::new();
        }
        self.steps
            .iter()
            .filter(|s| s.status == StepStatus::Pending)
            .filter(|s| {
                s.depends_on.iter().all(|d| {
                    self.steps
                        .iter()
                        .any(|o| &o.id == d && matches!(o.status, StepStatus::Completed | StepStatus::Skipped))
                })
            })
            .collect()
    }

    /// Marks a ready step as running.
    pub fn step_started(&mut self, id: &str) -> Result<(), PlanError> {
        if !self.ready_steps().iter().any(|s| s.id == id) {
            let i = self.index(id)?;
            return Err(PlanError::WrongStepState(id.into(), step_label(&self.steps[i].status), "started"));
        }
        let i = self.index(id)?;
        self.steps[i].status = StepStatus::InProgress;
        Ok(())
    }

    /// Records a running step's outcome. A failure also fails every pending step that
    /// depends on it (directly or not); the plan ends once nothing runs or can start.
    pub fn step_finished(&mut self, id: &str, outcome: Result<(), String>) -> Result<(), PlanError> {
        let i = self.index(id)?;
        if self.steps[i].status != StepStatus::InProgress {
            return Err(PlanError::WrongStepState(id.into(), step_label(&self.steps[i].status), "finished"));
        }
        match outcome {
            Ok(()) => self.steps[i].status = StepStatus::Completed,
            Err(reason) => {
                self.steps[i].status = StepStatus::Failed { reason };
                self.fail_dependents(id);
            }
        }
        self.settle();
        Ok(())
    }

    /// Cancels the plan: running steps fail as cancelled, pending ones stay pending.
    pub fn cancel(&mut self) -> Result<(), PlanError> {
        if !matches!(self.status, PlanStatus::Proposed | PlanStatus::Approved | PlanStatus::Executing) {
            return Err(PlanError::WrongState { status: self.status_label(), action: "cancelled" });
        }
        for s in &mut self.steps {
            if s.status == StepStatus::InProgress {
                s.status = StepStatus::Failed { reason: "cancelled".into() };
            }
        }
        self.status = PlanStatus::Cancelled;
        Ok(())
    }

    /// The status's name, for messages and the CLI.
    pub fn status_label(&self) -> &'static str {
        match self.status {
            PlanStatus::Proposed => "proposed",
            PlanStatus::Approved => "approved",
            PlanStatus::Rejected { .. } => "rejected",
            PlanStatus::Executing => "executing",
            PlanStatus::Completed => "completed",
            PlanStatus::Failed => "failed",
            PlanStatus::Cancelled => "cancelled",
        }
    }

    fn expect(&self, status: PlanStatus, action: &'static str) -> Result<(), PlanError> {
        if self.status == status { Ok(()) } else { Err(PlanError::WrongState { status: self.status_label(), action }) }
    }

    fn index(&self, id: &str) -> Result<usize, PlanError> {
        self.steps.iter().position(|s| s.id == id).ok_or_else(|| {
            let ids: Vec<&str> = self.steps.iter().map(|s| s.id.as_str()).collect();
            PlanError::UnknownStep(id.to_string(), ids.join(", "))
        })
    }

    fn fail_dependents(&mut self, failed: &str) {
        let mut blocked = vec![failed.to_string()];
        while let Some(id) = blocked.pop() {
            for s in &mut self.steps {
                if s.status == StepStatus::Pending && s.depends_on.contains(&id) {
                    s.status = StepStatus::Failed { reason: format!("it depends on step {id:?}, which failed") };
                    blocked.push(s.id.clone());
                }
            }
        }
    }

    /// Ends an executing plan once no step runs and none can start.
    fn settle(&mut self) {
        let running = self.steps.iter().any(|s| s.status == StepStatus::InProgress);
        if self.status != PlanStatus::Executing || running || !self.ready_steps().is_empty() {
            return;
        }
        let failed = self.steps.iter().any(|s| matches!(s.status, StepStatus::Failed { .. }));
        self.status = if failed { PlanStatus::Failed } else { PlanStatus::Completed };
    }
}

fn step_label(status: &StepStatus) -> &'static str {
    match status {
        StepStatus::Pending => "pending",
        StepStatus::InProgress => "in progress",
        StepStatus::Completed => "completed",
        StepStatus::Failed { .. } => "failed",
        StepStatus::Skipped => "skipped",
    }
}

/// A step on a dependency cycle, if there is one.
fn dependency_cycle(steps: &[ProposedStep]) -> Option<String> {
    let edges: BTreeMap<&str, &[String]> = steps.iter().map(|s| (s.id.as_str(), s.depends_on.as_slice())).collect();
    /// Depth-first; `on_path` holds the current chain, `done` the steps known to be acyclic.
    fn visit<'a>(
        id: &'a str,
        edges: &BTreeMap<&'a str, &'a [String]>,
        on_path: &mut BTreeSet<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<&'a str> {
        if on_path.contains(id) {
            return Some(id);
        }
        if done.contains(id) {
            return None;
        }
        on_path.insert(id);
        let found = edges.get(id).and_then(|deps| deps.iter().find_map(|d| visit(d, edges, on_path, done)));
        on_path.remove(id);
        done.insert(id);
        found
    }
    let (mut on_path, mut done) = (BTreeSet::new(), BTreeSet::new());
    steps.iter().find_map(|s| visit(&s.id, &edges, &mut on_path, &mut done)).map(str::to_string)
}

#[cfg(test)]
mod prop_tests;

#[cfg(test)]
mod tests;
