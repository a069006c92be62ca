//! One member of a running team: a child session of the team's root session playing its
//! role (its `AgentProfile`: role prompt and the team protocol, its tools plus the team's, its
//! cap), a job `team_agent:<team>.<member>` for its whole life, and one turn at a time: the
//! first on the task, each next one on the messages that arrived meanwhile.

use std::path::PathBuf;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::config::MemberSpec;
use super::tools::TEAM_TOOLS;
use crate::engine::turn_scope::TurnScope;
use crate::engine::{AgentProfile, ChildSpec};
use crate::orchestra::Orchestra;
use crate::orchestra::child_turn::ChildTurn;
use crate::orchestra::jobs::{JobHandle, JobKind, JobSpec};
use crate::orchestra::plans::StepRun;

/// What the runtime's futures report.
pub enum Event {
    TurnEnded {
        name: String,
        result: Result<(), String>,
        said: String,
    },
    /// A member's job was cancelled (`ratchet jobs kill`, or shutdown).
    JobStopped {
        name: String,
    },
}

/// Where a member is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    /// Between turns, its part not done: a message starts its next turn.
    Waiting,
    Working,
    /// It wrote `status/<name>` = `done` or `approved`; a message still starts a turn.
    Done,
    /// It hit its iteration cap (model calls in a turn, or turns in the team).
    Capped,
    Failed,
    Killed,
    Removed,
    TimedOut,
    /// The team went quiet with this member not done.
    Stalled,
}

impl MemberState {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberState::Waiting => "waiting",
            MemberState::Working => "working",
            MemberState::Done => "done",
            MemberState::Capped => "capped",
            MemberState::Failed => "failed",
            MemberState::Killed => "killed",
            MemberState::Removed => "removed",
            MemberState::TimedOut => "timed_out",
            MemberState::Stalled => "stalled",
        }
    }

    /// Whether it takes no more turns, whatever arrives.
    pub fn is_final(self) -> bool {
        !matches!(self, MemberState::Waiting | MemberState::Working | MemberState::Done)
    }
}

/// A member as the runtime holds it.
pub struct Member {
    pub spec: MemberSpec,
    pub session: String,
    pub job: Arc<JobHandle>,
    /// Cancels its running turn (removal, the team's end).
    pub stop: CancellationToken,
    pub state: MemberState,
    pub turns: u32,
    /// Its tool call in the starting turn (a chat's `/team`).
    pub call_id: String,
    /// Its last answer, first line.
    pub detail: Option<String>,
}

/// What starting a member needs of its team.
pub struct TeamSide<'a> {
    pub orchestra: &'a Orchestra,
    pub team: &'a str,
    pub team_name: &'a str,
    pub root: &'a str,
    /// Every member's name and role, this one's included.
    pub roster: &'a [(String, String)],
    pub parent_cancel: &'a CancellationToken,
}

impl TeamSide<'_> {
    /// Creates the member's session and job.
    pub async fn join(&self, spec: MemberSpec) -> Result<Member, String> {
        let o = &self.orchestra.inner;
        let child = ChildSpec {
            title: Some(format!("team {} {}: {}", self.team, spec.name, spec.role)),
            provider: spec.provider.clone(),
            model: spec.model.clone(),
            agent: Some(self.profile(&spec)),
        };
        let session = o.engine.create_child_session(self.root.to_string(), child).await.map_err(|e| e.to_string())?;
        let job = o
            .jobs
            .register(JobSpec {
                kind: JobKind::TeamAgent,
                key: format!("{}.{}", self.team, spec.name),
                model: Some(format!("{}/{}", session.provider, session.model)),
                session_id: Some(session.id.clone()),
                detail: Some(format!("team {} ({}) {}", self.team, self.team_name, spec.name)),
                pausable: true,
            })
            .await;
        let job = match job {
            Ok(job) => job,
            Err(e) => {
                let _ = o.engine.close_session(session.id.clone()).await;
                return Err(e.to_string());
            }
        };
        Ok(Member {
            call_id: format!("team-{}-{}", self.team, spec.name),
            spec,
            session: session.id,
            job: Arc::new(job),
            stop: self.parent_cancel.child_token(),
            state: MemberState::Waiting,
            turns: 0,
            detail: None,
        })
    }

    /// The member's role: its own prompt, then the team protocol; its tools plus the team's.
    fn profile(&self, spec: &MemberSpec) -> AgentProfile {
        let others: Vec<String> = self
            .roster
            .iter()
            .filter(|(name, _)| *name != spec.name)
            .map(|(name, role)| if name == role { name.clone() } else { format!("{name} ({role})") })
            .collect();
        let prompt = format!(
            "{}\n\nYou are `{}`, one member of the team `{}` working on one task together. The other members: \
             {}. Share results on the blackboard (blackboard_read, blackboard_write, blackboard_list) and talk \
             with send_message; their messages reach you as `[message from <name>] ...`. When your part is \
             finished, write `status/{}` = `done`. End your turn when you must wait for someone: a message \
             wakes you.",
            spec.prompt,
            spec.name,
            self.team_name,
            if others.is_empty() { "none".to_string() } else { others.join(", ") },
            spec.name,
        );
        let tools = spec.tools.clone().map(|mut tools| {
            tools.extend(TEAM_TOOLS.iter().map(|t| t.to_string()));
            tools.push("ask_human".into());
            tools
        });
        AgentProfile { name: spec.name.clone(), prompt, tools, max_turn_requests: spec.max_iterations }
    }
}

/// One turn of a member, as a future the runtime owns.
pub struct TurnRun {
    pub orchestra: Orchestra,
    pub scope: Arc<dyn TurnScope>,
    pub cwd: PathBuf,
    pub root: String,
    pub team: String,
    pub name: String,
    pub session: String,
    pub call_id: String,
    pub job: Arc<JobHandle>,
    pub stop: CancellationToken,
    pub prompt: String,
}

impl TurnRun {
    pub async fn run(self) -> Event {
        // A paused member takes no new turn until resumed.
        self.job.wait_unpaused().await;
        let driver = ChildTurn {
            orchestra: &self.orchestra,
            turn: &self.scope,
            cancel: &self.stop,
            cwd: &self.cwd,
            parent_session: &self.root,
            call_id: &self.call_id,
            label: format!("team {} {}", self.team, self.name),
        };
        let mut run = StepRun::default();
        let result = if self.job.token().is_cancelled() || self.stop.is_cancelled() {
            Err("stopped before its turn began".to_string())
        } else {
            driver.drive(&self.session, self.prompt, &mut run, &self.job).await
        };
        Event::TurnEnded { name: self.name, result, said: run.summary.unwrap_or_default() }
    }
}
