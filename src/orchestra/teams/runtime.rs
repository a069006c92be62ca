//! A running team: one task owns its state (members, inboxes) and runs its members' turns,
//! each a future in its own `JoinSet`. Everything that changes the team comes to this loop:
//! a member's turn ending, a message or blackboard write from a member's tool (over
//! [`Command`]s, answered before the tool returns, so a message sent in a turn is always in
//! its inbox before that turn's end is seen), a control queued by any process (polled every
//! `CONTROL_POLL`, at once when queued here), a member's job killed, the timeout.
//!
//! The team ends when nobody works and no message waits (every member done: `completed`;
//! else `incomplete`), at its timeout, when killed, or when its process shuts down.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::config::{self, MemberSpec, TeamConfig};
use super::member::{Event, Member, MemberState, TeamSide, TurnRun};
use super::router::{BROADCAST, Router};
use super::store::{MemberRecord, TeamControl, TeamStatus, TeamStore};
use super::tools::{Command, MemberLink};
use super::transcript::Transcript;
use crate::engine::ToolCallStatus;
use crate::engine::turn_scope::TurnScope;
use crate::orchestra::Orchestra;
use crate::orchestra::blackboard::Blackboard;
use crate::orchestra::child_turn::{CANCELLED, CAP_REACHED};
use crate::orchestra::hooks::HookEvent;
use crate::orchestra::jobs::CONTROL_POLL;

/// Requests from members' tools waiting for the runtime. Each tool call waits for its answer,
/// so this only fills when many members call at once; then they wait their turn.
pub const COMMAND_CAPACITY: usize = 64;
/// How long a team's end waits for its members' cancelled turns to save their work.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// Who people are in messages and directives.
const PERSON: &str = "user";

/// How a team ended, for whoever waits on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamOutcome {
    pub id: String,
    pub status: TeamStatus,
    pub summary: String,
    pub transcript: PathBuf,
}

/// Everything a team's run holds.
pub struct TeamRun {
    pub orchestra: Orchestra,
    pub id: String,
    pub name: String,
    pub config: TeamConfig,
    pub task: String,
    pub cwd: PathBuf,
    /// The project whose pause and kill reach its members (see `StartTeam::project`).
    pub project: Option<String>,
    pub root: String,
    /// The turn that shows the members (a chat's `/team`), or `NoTurn`.
    pub scope: Arc<dyn TurnScope>,
    /// Fired by a kill (control, or the starting turn's cancel).
    pub kill: CancellationToken,
    pub wake: Arc<Notify>,
    pub store: TeamStore,
    pub board: Blackboard,
    pub transcript: Transcript,
}

enum End {
    Quiet,
    TimedOut,
    Killed,
    Interrupted,
}

struct State {
    members: Vec<Member>,
    router: Router,
    turns: JoinSet<Event>,
    /// Member turns running now (a killed member's turn may still be saving its work).
    running: usize,
    commands: mpsc::Sender<Command>,
}

impl TeamRun {
    /// Runs the team to its end and records how it ended.
    pub async fn run(self) -> TeamOutcome {
        let (tx, mut rx) = mpsc::channel(COMMAND_CAPACITY);
        let mut st =
            State { members: Vec::new(), router: Router::default(), turns: JoinSet::new(), running: 0, commands: tx };
        let roster: Vec<(String, String)> =
            self.config.members.iter().map(|m| (m.name.clone(), m.role.clone())).collect();
        self.transcript
            .section(
                &format!("Team {} ({}) started", self.id, self.config.name),
                &format!("Task:\n\n{}\n\nMembers: {}", self.task, roster_text(&roster)),
            )
            .await;
        self.event("start", None, &format!("{} members on: {}", roster.len(), first_line(&self.task))).await;
        let mut failed_start = None;
        for spec in self.config.members.clone() {
            if let Err(e) = self.add_member(&mut st, spec, &roster).await {
                failed_start = Some(e);
                break;
            }
        }
        let end = match failed_start {
            Some(e) => {
                self.event("end", None, &format!("cannot start a member: {e}")).await;
                None
            }
            None => Some(self.serve(&mut st, &mut rx).await),
        };
        self.wind_down(st, end).await
    }

    async fn serve(&self, st: &mut State, rx: &mut mpsc::Receiver<Command>) -> End {
        let deadline = tokio::time::sleep(self.config.timeout);
        tokio::pin!(deadline);
        let shutdown = self.orchestra.inner.shutdown.clone();
        let mut poll = tokio::time::interval(CONTROL_POLL);
        loop {
            self.dispatch(st).await;
            if st.running == 0 {
                return End::Quiet;
            }
            tokio::select! {
                biased;
                () = shutdown.cancelled() => return End::Interrupted,
                () = self.kill.cancelled() => return End::Killed,
                () = &mut deadline => return End::TimedOut,
                Some(command) = rx.recv() => self.command(st, command).await,
                Some(joined) = st.turns.join_next() => match joined {
                    Ok(event) => self.on_event(st, event).await,
                    Err(e) => tracing::warn!(team = %self.id, error = %e, "a team member's task failed"),
                },
                _ = poll.tick() => {
                    if self.controls(st).await {
                        return End::Killed;
                    }
                }
                () = self.wake.notified() => {
                    if self.controls(st).await {
                        return End::Killed;
                    }
                }
            }
        }
    }

    /// Starts a turn for every member that has mail and may take one.
    async fn dispatch(&self, st: &mut State) {
        let cap = self.config.max_member_turns();
        for i in 0..st.members.len() {
            let m = &st.members[i];
            if m.state.is_final() || m.state == MemberState::Working || !st.router.has_mail(&m.spec.name) {
                continue;
            }
            let name = m.spec.name.clone();
            if m.turns >= cap {
                let dropped = st.router.close(&name);
                let why = format!("took its {cap} turns (max_review_rounds); {} message(s) not read", dropped.len());
                self.set_state(&mut st.members[i], MemberState::Capped, Some(why)).await;
                continue;
            }
            let prompt = st.router.take(&name).join("\n\n");
            self.start_turn(st, i, prompt).await;
        }
    }

    async fn start_turn(&self, st: &mut State, i: usize, prompt: String) {
        let m = &mut st.members[i];
        m.turns += 1;
        let turn = TurnRun {
            orchestra: self.orchestra.clone(),
            scope: self.scope.clone(),
            cwd: self.cwd.clone(),
            root: self.root.clone(),
            team: self.id.clone(),
            name: m.spec.name.clone(),
            session: m.session.clone(),
            call_id: m.call_id.clone(),
            job: m.job.clone(),
            stop: m.stop.clone(),
            prompt: prompt.clone(),
        };
        st.turns.spawn(turn.run());
        st.running += 1;
        let name = m.spec.name.clone();
        self.transcript.section(&format!("{name}, turn {}: told", m.turns), &prompt).await;
        self.event("turn", Some(&name), &format!("turn {} on: {}", m.turns, first_line(&prompt))).await;
        self.set_state(&mut st.members[i], MemberState::Working, None).await;
    }

    async fn on_event(&self, st: &mut State, event: Event) {
        match event {
            Event::TurnEnded { name, result, said } => {
                // What a member said is kept (its detail, the summary, the events): redacted
                // once, here, like everything it writes.
                let said = self.transcript.redact(&said);
                st.running = st.running.saturating_sub(1);
                let Some(i) = st.members.iter().position(|m| m.spec.name == name) else { return };
                self.transcript
                    .section(&format!("{name} said"), if said.is_empty() { "(nothing)" } else { &said })
                    .await;
                self.event("said", Some(&name), &said).await;
                let detail = last_said(&said).map(str::to_string);
                if st.members[i].state.is_final() {
                    return;
                }
                let state = match &result {
                    Ok(()) if self.wrote_done(&name).await => MemberState::Done,
                    Ok(()) => MemberState::Waiting,
                    Err(why) if why == CAP_REACHED => MemberState::Capped,
                    Err(_) if st.members[i].job.killed() => MemberState::Killed,
                    Err(_) if st.members[i].stop.is_cancelled() => return,
                    // Its session's turn was cancelled from outside (ratchet stopping, the
                    // session killed): it did not fail, it was stopped.
                    Err(why) if why == CANCELLED => MemberState::Killed,
                    Err(_) => MemberState::Failed,
                };
                let detail = match result {
                    Err(why) if why == CANCELLED => Some("its turn was cancelled from outside the team".into()),
                    Err(why) => Some(why),
                    Ok(()) => detail,
                };
                if state.is_final() {
                    self.retire(st, i);
                }
                self.set_state(&mut st.members[i], state, detail).await;
            }
            Event::JobStopped { name } => {
                let Some(i) = st.members.iter().position(|m| m.spec.name == name) else { return };
                if st.members[i].state.is_final() || !st.members[i].job.killed() {
                    return;
                }
                self.retire(st, i);
                let why = Some("killed (ratchet jobs kill)".to_string());
                self.set_state(&mut st.members[i], MemberState::Killed, why).await;
            }
        }
    }

    async fn command(&self, st: &mut State, command: Command) {
        match command {
            Command::Send { from, to, content, reply } => {
                let routed = st.router.deliver("message", &from, &to, &content).map_err(|e| e.to_string());
                if let Ok(got) = &routed {
                    let to = if to == BROADCAST { format!("* ({})", got.join(", ")) } else { to };
                    self.transcript.line(&format!("{from} → {to}: {content}")).await;
                    self.event("message", Some(&from), &format!("to {to}: {content}")).await;
                }
                let _ = reply.send(routed);
            }
            Command::Wrote { by, entry } => {
                let text = format!("{}/{} = {} (revision {})", entry.section, entry.key, entry.value, entry.revision);
                self.transcript.line(&format!("{by} wrote {text}")).await;
                self.event("board", Some(&by), &text).await;
            }
        }
    }

    /// Applies the controls queued for this team; true on a kill.
    async fn controls(&self, st: &mut State) -> bool {
        let controls = match self.store.take_controls(&self.id).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(team = %self.id, error = %e, "cannot read the team's controls");
                return false;
            }
        };
        for control in controls {
            let noted = match control {
                TeamControl::Kill => return true,
                TeamControl::Steer(text) => st
                    .router
                    .deliver("directive", PERSON, BROADCAST, &text)
                    .map(|got| format!("directive to {}: {text}", got.join(", ")))
                    .map_err(|e| e.to_string()),
                TeamControl::Message { member, text } => st
                    .router
                    .deliver("message", PERSON, &member, &text)
                    .map(|_| format!("message to {member}: {text}"))
                    .map_err(|e| e.to_string()),
                TeamControl::Add(agent) => self.add_definition(st, &agent).await,
                TeamControl::Remove(member) => self.remove(st, &member).await,
            };
            let text = match noted {
                Ok(t) => t,
                Err(e) => format!("not applied: {e}"),
            };
            self.transcript.line(&format!("{PERSON}: {text}")).await;
            self.event("control", None, &text).await;
        }
        false
    }

    async fn add_definition(&self, st: &mut State, agent: &str) -> Result<String, String> {
        let catalog = crate::orchestra::agents::load(&self.cwd, &self.orchestra.inner.home);
        let mut spec = config::member_from_definition(agent, &catalog)?;
        let base = spec.name.clone();
        let mut n = 2;
        while st.members.iter().any(|m| m.spec.name == spec.name) {
            spec.name = format!("{base}-{n}");
            n += 1;
        }
        let mut roster: Vec<(String, String)> = st
            .members
            .iter()
            .filter(|m| !m.state.is_final())
            .map(|m| (m.spec.name.clone(), m.spec.role.clone()))
            .collect();
        roster.push((spec.name.clone(), spec.role.clone()));
        let name = spec.name.clone();
        self.add_member(st, spec, &roster).await?;
        Ok(format!("added {name} (agent {agent})"))
    }

    async fn remove(&self, st: &mut State, member: &str) -> Result<String, String> {
        let i = st
            .members
            .iter()
            .position(|m| m.spec.name == member && !m.state.is_final())
            .ok_or_else(|| format!("there is no member {member:?} still working"))?;
        st.members[i].stop.cancel();
        self.retire(st, i);
        self.set_state(&mut st.members[i], MemberState::Removed, Some("removed".into())).await;
        Ok(format!("removed {member}"))
    }

    /// Creates a member's session and job, links its tools, gives it the task.
    async fn add_member(&self, st: &mut State, spec: MemberSpec, roster: &[(String, String)]) -> Result<(), String> {
        let side = TeamSide {
            orchestra: &self.orchestra,
            team: &self.id,
            team_name: &self.name,
            root: &self.root,
            roster,
            parent_cancel: &self.kill,
        };
        let member = side.join(spec).await?;
        if let Some(project) = &self.project
            && let Err(e) = self.orchestra.projects().attach_job(project, member.job.id()).await
        {
            tracing::warn!(team = %self.id, %project, error = %e, "cannot attach a member to its project");
        }
        self.orchestra.hooks().fire(HookEvent::team_agent_spawn(
            Some(&self.root),
            &self.cwd,
            &self.id,
            &member.spec.name,
            &member.session,
            &self.task,
        ));
        let link = MemberLink {
            team: self.id.clone(),
            member: member.spec.name.clone(),
            board: self.board.clone(),
            commands: st.commands.clone(),
        };
        self.orchestra.team_links().insert(member.session.clone(), Arc::new(link));
        let (token, name) = (member.job.token().clone(), member.spec.name.clone());
        st.turns.spawn(async move {
            token.cancelled().await;
            Event::JobStopped { name }
        });
        let name = member.spec.name.clone();
        self.announce(&member).await;
        st.router.open(&name);
        // Every member starts with the task as its first message.
        st.router.deliver_raw(&name, self.task.clone());
        st.members.push(member);
        let i = st.members.len() - 1;
        self.set_state(&mut st.members[i], MemberState::Waiting, None).await;
        Ok(())
    }

    /// Shows the member as a tool call of the starting turn (nothing without one).
    async fn announce(&self, m: &Member) {
        use crate::engine::tools::ToolKind;
        use crate::engine::{ChatEvent, ToolCallStart};
        let start = ToolCallStart {
            id: m.call_id.clone(),
            name: "team_agent".into(),
            title: format!("Team {} · {} ({})", self.id, m.spec.name, m.spec.role),
            kind: ToolKind::Other,
            arguments: serde_json::json!({ "team": self.id, "member": m.spec.name, "role": m.spec.role }),
            locations: vec![],
            display: vec![crate::engine::tools::Display::Text("starting".into())],
        };
        self.scope.emit(ChatEvent::ToolCallStarted(start)).await;
    }

    /// A member takes no more messages.
    fn retire(&self, st: &mut State, i: usize) {
        st.router.close(&st.members[i].spec.name);
        self.orchestra.team_links().remove(&st.members[i].session);
    }

    async fn wrote_done(&self, name: &str) -> bool {
        match self.board.read("status", Some(name)).await {
            Ok(entries) => entries.first().is_some_and(|e| is_done(&e.value)),
            Err(e) => {
                tracing::warn!(team = %self.id, error = %e, "cannot read a member's status");
                false
            }
        }
    }

    async fn set_state(&self, m: &mut Member, state: MemberState, detail: Option<String>) {
        let changed = m.state != state;
        m.state = state;
        if detail.is_some() {
            m.detail = detail;
        }
        let record = MemberRecord {
            name: m.spec.name.clone(),
            role: m.spec.role.clone(),
            session_id: Some(m.session.clone()),
            status: state.as_str().to_string(),
            turns: m.turns,
            detail: m.detail.clone(),
        };
        if let Err(e) = self.store.put_member(&self.id, record).await {
            tracing::warn!(team = %self.id, error = %e, "cannot record a member's status");
        }
        if changed && state != MemberState::Working {
            let text = match &m.detail {
                Some(d) if state.is_final() => format!("{}: {d}", state.as_str()),
                _ => state.as_str().to_string(),
            };
            self.transcript.line(&format!("{} is {text}", m.spec.name)).await;
            self.event("status", Some(&m.spec.name), &text).await;
            if state.is_final() {
                let ok = state == MemberState::Done;
                self.orchestra.hooks().fire(HookEvent::team_agent_complete(
                    Some(&self.root),
                    &self.cwd,
                    &self.id,
                    &m.spec.name,
                    &m.session,
                    ok,
                    &text,
                ));
                let status = if ok { ToolCallStatus::Completed } else { ToolCallStatus::Failed };
                show(self.scope.as_ref(), &m.call_id, status, text).await;
            }
        }
    }

    async fn event(&self, kind: &str, member: Option<&str>, text: &str) {
        if let Err(e) = self.store.event(&self.id, kind, member, text).await {
            tracing::debug!(team = %self.id, error = %e, "cannot record a team event");
        }
    }

    /// Stops what still runs, settles every member's final state, records the end.
    async fn wind_down(self, mut st: State, end: Option<End>) -> TeamOutcome {
        for m in &st.members {
            m.stop.cancel();
        }
        let grace = tokio::time::sleep(STOP_GRACE);
        tokio::pin!(grace);
        while st.running > 0 {
            tokio::select! {
                () = &mut grace => break,
                Some(Ok(Event::TurnEnded { name, said, .. })) = st.turns.join_next() => {
                    st.running -= 1;
                    if let Some(m) = st.members.iter_mut().find(|m| m.spec.name == name && !m.state.is_final()) {
                        m.state = MemberState::Waiting;
                        if !said.is_empty() {
                            self.transcript.section(&format!("{name} said (stopped)"), &said).await;
                        }
                    }
                }
            }
        }
        st.turns.shutdown().await;
        let left = match end {
            Some(End::Quiet) => MemberState::Stalled,
            Some(End::TimedOut) => MemberState::TimedOut,
            _ => MemberState::Killed,
        };
        for i in 0..st.members.len() {
            let state = st.members[i].state;
            if state.is_final() || (state == MemberState::Done && matches!(end, Some(End::Quiet))) {
                continue;
            }
            let now = if state == MemberState::Done { MemberState::Done } else { left };
            self.retire(&mut st, i);
            self.set_state(&mut st.members[i], now, None).await;
        }
        for m in st.members.iter().filter(|m| m.state == MemberState::Done) {
            let text = m.detail.clone().unwrap_or_else(|| "done".into());
            show(self.scope.as_ref(), &m.call_id, ToolCallStatus::Completed, text).await;
        }
        // A member people removed does not hold the team back.
        let kept: Vec<&Member> = st.members.iter().filter(|m| m.state != MemberState::Removed).collect();
        let all_done = !kept.is_empty() && kept.iter().all(|m| m.state == MemberState::Done);
        let status = match end {
            None => TeamStatus::Failed,
            Some(End::Quiet) if all_done => TeamStatus::Completed,
            Some(End::Quiet) => TeamStatus::Incomplete,
            Some(End::TimedOut) => TeamStatus::TimedOut,
            Some(End::Killed) => TeamStatus::Killed,
            Some(End::Interrupted) => TeamStatus::Interrupted,
        };
        let summary = self.summary(&st, status).await;
        for m in &st.members {
            self.orchestra.team_links().remove(&m.session);
            if let Err(e) = self.orchestra.inner.engine.close_session(m.session.clone()).await {
                tracing::debug!(error = %e, "cannot close a team member's session");
            }
        }
        drop(st);
        if let Err(e) = self.store.finish(&self.id, status, &summary).await {
            tracing::warn!(team = %self.id, error = %e, "cannot record the end of a team");
        }
        self.transcript.section(&format!("Team {} {}", self.id, status.as_str()), &summary).await;
        self.event("end", None, &format!("{}: {}", status.as_str(), first_line(&summary))).await;
        TeamOutcome { id: self.id.clone(), status, summary, transcript: self.transcript.path().clone() }
    }

    async fn summary(&self, st: &State, status: TeamStatus) -> String {
        let mut lines = vec![format!("Team {} ({}) {}.", self.id, self.config.name, status.as_str())];
        for m in &st.members {
            let detail = m.detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default();
            lines.push(format!(
                "- {} ({}) {} after {} turn(s){detail}",
                m.spec.name,
                m.spec.role,
                m.state.as_str(),
                m.turns
            ));
        }
        if let Ok(entries) = self.board.list().await {
            lines.push(format!("Blackboard: {} entries.", entries.len()));
        }
        lines.push(format!("Transcript: {}", self.transcript.path().display()));
        lines.join("\n")
    }
}

/// `done` and `approved` (any case) finish a member.
pub fn is_done(value: &str) -> bool {
    matches!(value.trim().to_ascii_lowercase().as_str(), "done" | "approved")
}

fn roster_text(roster: &[(String, String)]) -> String {
    roster.iter().map(|(n, r)| format!("{n} ({r})")).collect::<Vec<_>>().join(", ")
}

/// The last line a member said that is not one of its tool calls (`→ …`).
fn last_said(said: &str) -> Option<&str> {
    said.lines().map(str::trim).rfind(|l| !l.is_empty() && !l.starts_with('→'))
}

fn first_line(text: &str) -> &str {
    text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("")
}

async fn show(scope: &dyn TurnScope, call_id: &str, status: ToolCallStatus, text: String) {
    crate::orchestra::fleet::show(scope, call_id, status, text.clone(), Some(text)).await;
}
