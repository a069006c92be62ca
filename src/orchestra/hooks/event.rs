//! What a hook hears: the events, and their data as the JSON a hook reads on stdin and as the
//! `RATCHET_*` variables of its environment.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::engine::extension::{SessionNotice, ToolCallInfo, ToolOutcome};
use crate::engine::tools::ToolKind;

/// The events hooks can be set on, as `event:` names them in `hooks.yaml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventName {
    PreToolCall,
    PostToolCall,
    PreEdit,
    PostEdit,
    PreCommand,
    PostCommand,
    SessionStart,
    SessionEnd,
    PlanProposed,
    PlanApproved,
    PlanCompleted,
    FleetStart,
    FleetEnd,
    AgentSpawn,
    AgentComplete,
    CronFired,
    QuestionAsked,
    TokenLimit,
}

impl EventName {
    pub const ALL: [EventName; 18] = [
        EventName::PreToolCall,
        EventName::PostToolCall,
        EventName::PreEdit,
        EventName::PostEdit,
        EventName::PreCommand,
        EventName::PostCommand,
        EventName::SessionStart,
        EventName::SessionEnd,
        EventName::PlanProposed,
        EventName::PlanApproved,
        EventName::PlanCompleted,
        EventName::FleetStart,
        EventName::FleetEnd,
        EventName::AgentSpawn,
        EventName::AgentComplete,
        EventName::CronFired,
        EventName::QuestionAsked,
        EventName::TokenLimit,
    ];

    /// The name in `hooks.yaml`, the JSON's `event` and `RATCHET_EVENT`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventName::PreToolCall => "pre_tool_call",
            EventName::PostToolCall => "post_tool_call",
            EventName::PreEdit => "pre_edit",
            EventName::PostEdit => "post_edit",
            EventName::PreCommand => "pre_command",
            EventName::PostCommand => "post_command",
            EventName::SessionStart => "session_start",
            EventName::SessionEnd => "session_end",
            EventName::PlanProposed => "plan_proposed",
            EventName::PlanApproved => "plan_approved",
            EventName::PlanCompleted => "plan_completed",
            EventName::FleetStart => "fleet_start",
            EventName::FleetEnd => "fleet_end",
            EventName::AgentSpawn => "agent_spawn",
            EventName::AgentComplete => "agent_complete",
            EventName::CronFired => "cron_fired",
            EventName::QuestionAsked => "question_asked",
            EventName::TokenLimit => "token_limit",
        }
    }

    /// Hooks on these run before the action and can refuse it ([`super::Hooks::check`]).
    pub fn is_pre(self) -> bool {
        matches!(self, EventName::PreToolCall | EventName::PreEdit | EventName::PreCommand)
    }

    /// Events of one tool call, which a hook's `tool` filter applies to.
    pub fn has_tool(self) -> bool {
        matches!(
            self,
            EventName::PreToolCall
                | EventName::PostToolCall
                | EventName::PreEdit
                | EventName::PostEdit
                | EventName::PreCommand
                | EventName::PostCommand
        )
    }

    /// Events of an edit, which a hook's `glob` applies to.
    pub fn has_paths(self) -> bool {
        matches!(self, EventName::PreEdit | EventName::PostEdit)
    }
}

impl std::fmt::Display for EventName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One event: where it happened and what happened.
#[derive(Debug, Clone, PartialEq)]
pub struct HookEvent {
    /// The session it happened in (a team started from the command line has none).
    pub session_id: Option<String>,
    /// The directory of that session or team: its `.ratchet/hooks.yaml` applies, and hooks
    /// run there.
    pub cwd: PathBuf,
    pub data: EventData,
}

/// What happened, with the fields the JSON and the variables carry.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventData {
    PreToolCall(ToolCallData),
    PostToolCall(ToolCallData),
    PreEdit(ToolCallData),
    PostEdit(ToolCallData),
    PreCommand(ToolCallData),
    PostCommand(ToolCallData),
    SessionStart {
        parent_id: Option<String>,
        resumed: bool,
        title: Option<String>,
    },
    SessionEnd {
        parent_id: Option<String>,
        title: Option<String>,
    },
    PlanProposed {
        plan_id: String,
        revision: u32,
        goal: String,
        steps: Vec<String>,
    },
    PlanApproved {
        plan_id: String,
        goal: String,
        skipped: Vec<String>,
    },
    /// An approved plan ended: `status` is `completed`, `failed` or `cancelled`.
    PlanCompleted {
        plan_id: String,
        goal: String,
        status: String,
        summary: String,
    },
    FleetStart {
        plan_id: String,
        steps: Vec<String>,
    },
    FleetEnd {
        plan_id: String,
        status: String,
    },
    /// A sub-agent (`agent_spawn`) or a team member started; `team` names the team.
    AgentSpawn {
        agent: String,
        agent_session: String,
        task: String,
        team: Option<String>,
    },
    AgentComplete {
        agent: String,
        agent_session: String,
        team: Option<String>,
        ok: bool,
        summary: String,
    },
    CronFired {
        cron_id: String,
        schedule: String,
        prompt: String,
    },
    QuestionAsked {
        question_id: String,
        question_kind: String,
        title: String,
    },
    TokenLimit {
        used_tokens: u64,
        context_window: u64,
    },
}

/// One tool call, before (no outcome) or after it ran.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolCallData {
    pub tool: String,
    pub kind: ToolKind,
    pub call_id: String,
    pub arguments: Value,
    /// The files an edit touches (absolute); the first is also `path`.
    pub paths: Vec<PathBuf>,
    pub path: Option<PathBuf>,
    /// A command's command line.
    pub command: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_error: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancelled: Option<bool>,
    /// The result the model got (redacted, cut to [`MAX_OUTPUT_IN_EVENT`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

/// Most of a tool's result an event carries; the model's limit on command output is 64 KiB.
pub const MAX_OUTPUT_IN_EVENT: usize = 64 * 1024;
/// Longest value of one `RATCHET_*` variable: Linux refuses single strings over 128 KiB in
/// an environment, and the whole event is on stdin anyway.
pub const MAX_VARIABLE_BYTES: usize = 16 * 1024;

impl HookEvent {
    pub fn name(&self) -> EventName {
        match &self.data {
            EventData::PreToolCall(_) => EventName::PreToolCall,
            EventData::PostToolCall(_) => EventName::PostToolCall,
            EventData::PreEdit(_) => EventName::PreEdit,
            EventData::PostEdit(_) => EventName::PostEdit,
            EventData::PreCommand(_) => EventName::PreCommand,
            EventData::PostCommand(_) => EventName::PostCommand,
            EventData::SessionStart { .. } => EventName::SessionStart,
            EventData::SessionEnd { .. } => EventName::SessionEnd,
            EventData::PlanProposed { .. } => EventName::PlanProposed,
            EventData::PlanApproved { .. } => EventName::PlanApproved,
            EventData::PlanCompleted { .. } => EventName::PlanCompleted,
            EventData::FleetStart { .. } => EventName::FleetStart,
            EventData::FleetEnd { .. } => EventName::FleetEnd,
            EventData::AgentSpawn { .. } => EventName::AgentSpawn,
            EventData::AgentComplete { .. } => EventName::AgentComplete,
            EventData::CronFired { .. } => EventName::CronFired,
            EventData::QuestionAsked { .. } => EventName::QuestionAsked,
            EventData::TokenLimit { .. } => EventName::TokenLimit,
        }
    }

    /// The tool call of a tool event.
    pub fn tool_call(&self) -> Option<&ToolCallData> {
        match &self.data {
            EventData::PreToolCall(t)
            | EventData::PostToolCall(t)
            | EventData::PreEdit(t)
            | EventData::PostEdit(t)
            | EventData::PreCommand(t)
            | EventData::PostCommand(t) => Some(t),
            _ => None,
        }
    }

    /// The event as hooks read it on stdin: `event`, `session_id`, `cwd` and its own fields.
    pub fn to_json(&self) -> Value {
        let mut object = match serde_json::to_value(&self.data) {
            Ok(Value::Object(map)) => map,
            // Serializing these plain types cannot fail; keep at least the name.
            _ => Map::from_iter([("event".to_string(), Value::from(self.name().as_str()))]),
        };
        object.insert("session_id".into(), self.session_id.clone().map_or(Value::Null, Value::from));
        object.insert("cwd".into(), Value::from(self.cwd.to_string_lossy().into_owned()));
        Value::Object(object)
    }

    /// The event as variables: each top-level field `name` of [`HookEvent::to_json`] as
    /// `RATCHET_NAME`. Values are passed as they are, never spliced into the command line,
    /// so a path like `$(rm -rf ~)` is only ever text; use them quoted (`"$RATCHET_PATH"`).
    /// Lists are one item per line, objects compact JSON, `null` leaves the variable out.
    pub fn variables(&self) -> Vec<(String, String)> {
        let Value::Object(object) = self.to_json() else { return Vec::new() };
        object
            .into_iter()
            .filter_map(|(key, value)| {
                let text = match value {
                    Value::Null => return None,
                    Value::String(s) => s,
                    Value::Array(items) if items.iter().all(Value::is_string) => {
                        items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("\n")
                    }
                    other => other.to_string(),
                };
                Some((variable_name(&key), variable_value(text)))
            })
            .collect()
    }

    // ---- constructors for the places that fire events --------------------------------------

    /// The events of a tool call about to run (`outcome: None`) or that ran: `pre_tool_call`
    /// (`post_`), then `pre_edit` for edits, deletes and moves or `pre_command` for commands.
    pub fn for_tool_call(call: &ToolCallInfo, outcome: Option<&ToolOutcome>) -> Vec<HookEvent> {
        let data = ToolCallData {
            tool: call.tool.clone(),
            kind: call.kind,
            call_id: call.call_id.clone(),
            arguments: call.arguments.clone(),
            paths: call.paths.clone(),
            path: call.paths.first().cloned(),
            command: call.command.clone(),
            is_error: outcome.map(|o| o.is_error),
            cancelled: outcome.map(|o| o.cancelled),
            output: outcome.map(|o| cut(&o.output, MAX_OUTPUT_IN_EVENT).to_string()),
        };
        let pre = outcome.is_none();
        let specific = match call.kind {
            ToolKind::Edit | ToolKind::Delete | ToolKind::Move => {
                Some(if pre { EventData::PreEdit(data.clone()) } else { EventData::PostEdit(data.clone()) })
            }
            ToolKind::Execute if call.command.is_some() => {
                Some(if pre { EventData::PreCommand(data.clone()) } else { EventData::PostCommand(data.clone()) })
            }
            _ => None,
        };
        let general = if pre { EventData::PreToolCall(data) } else { EventData::PostToolCall(data) };
        std::iter::once(general)
            .chain(specific)
            .map(|data| HookEvent { session_id: Some(call.session_id.clone()), cwd: call.cwd.clone(), data })
            .collect()
    }

    /// `session_start`, `session_end` or `token_limit`.
    pub fn for_session(notice: SessionNotice) -> HookEvent {
        let (session, data) = match notice {
            SessionNotice::Started { session, resumed } => {
                let data = EventData::SessionStart {
                    parent_id: session.parent_id.clone(),
                    resumed,
                    title: session.title.clone(),
                };
                (session, data)
            }
            SessionNotice::Ended { session } => {
                let data = EventData::SessionEnd { parent_id: session.parent_id.clone(), title: session.title.clone() };
                (session, data)
            }
            SessionNotice::TokenLimit { session, used_tokens, context_window } => {
                (session, EventData::TokenLimit { used_tokens, context_window })
            }
        };
        HookEvent { session_id: Some(session.id), cwd: session.cwd, data }
    }

    /// `cron_fired`: a cron job's run starts in its session.
    pub fn cron_fired(session_id: &str, cwd: &Path, cron_id: &str, schedule: &str, prompt: &str) -> HookEvent {
        HookEvent {
            session_id: Some(session_id.to_string()),
            cwd: cwd.to_path_buf(),
            data: EventData::CronFired {
                cron_id: cron_id.to_string(),
                schedule: schedule.to_string(),
                prompt: prompt.to_string(),
            },
        }
    }

    /// `agent_spawn` of a sub-agent (`team: None`) or of a team's member (`team: Some(id)`);
    /// `session_id` is the session that started it (none for a team started from the CLI).
    pub fn agent_spawn(
        session_id: Option<&str>,
        cwd: &Path,
        agent: &str,
        agent_session: &str,
        task: &str,
        team: Option<&str>,
    ) -> HookEvent {
        HookEvent {
            session_id: session_id.map(str::to_string),
            cwd: cwd.to_path_buf(),
            data: EventData::AgentSpawn {
                agent: agent.to_string(),
                agent_session: agent_session.to_string(),
                task: task.to_string(),
                team: team.map(str::to_string),
            },
        }
    }

    /// `agent_complete`: a sub-agent or team member ended, `ok` or not, having said `summary`.
    pub fn agent_complete(
        session_id: Option<&str>,
        cwd: &Path,
        agent: &str,
        agent_session: &str,
        team: Option<&str>,
        ok: bool,
        summary: &str,
    ) -> HookEvent {
        HookEvent {
            session_id: session_id.map(str::to_string),
            cwd: cwd.to_path_buf(),
            data: EventData::AgentComplete {
                agent: agent.to_string(),
                agent_session: agent_session.to_string(),
                team: team.map(str::to_string),
                ok,
                summary: cut(summary, MAX_OUTPUT_IN_EVENT).to_string(),
            },
        }
    }

    /// `team_agent_spawn`: [`HookEvent::agent_spawn`] of member `member` of team `team_id`.
    pub fn team_agent_spawn(
        session_id: Option<&str>,
        cwd: &Path,
        team_id: &str,
        member: &str,
        member_session: &str,
        task: &str,
    ) -> HookEvent {
        HookEvent::agent_spawn(session_id, cwd, member, member_session, task, Some(team_id))
    }

    /// [`HookEvent::agent_complete`] of member `member` of team `team_id`.
    pub fn team_agent_complete(
        session_id: Option<&str>,
        cwd: &Path,
        team_id: &str,
        member: &str,
        member_session: &str,
        ok: bool,
        summary: &str,
    ) -> HookEvent {
        HookEvent::agent_complete(session_id, cwd, member, member_session, Some(team_id), ok, summary)
    }

    /// Any other event of a session (plans, fleets, questions).
    pub fn in_session(session_id: &str, cwd: &Path, data: EventData) -> HookEvent {
        HookEvent { session_id: Some(session_id.to_string()), cwd: cwd.to_path_buf(), data }
    }
}

/// `RATCHET_` and the field's name in upper case, anything but letters, digits and `_` as `_`.
fn variable_name(key: &str) -> String {
    let name: String =
        key.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
    format!("RATCHET_{name}")
}

/// A value an environment can hold: no NUL byte (the OS refuses them), at most
/// [`MAX_VARIABLE_BYTES`].
fn variable_value(text: String) -> String {
    let text = if text.contains('\0') { text.replace('\0', "") } else { text };
    if text.len() <= MAX_VARIABLE_BYTES { text } else { cut(&text, MAX_VARIABLE_BYTES).to_string() }
}

/// The start of `text` in at most `max` bytes, cut at a character boundary.
pub(super) fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
