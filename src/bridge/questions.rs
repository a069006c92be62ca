//! Questions that are not about one tool call's permission (a plan to approve, a question of
//! the model's), put to the editor.
//!
//! The best channel is a form (`elicitation/create`), used only when the client advertised
//! `elicitation.form`. Without it a plan approval falls back to `session/request_permission`
//! with two options (approve, reject), and a free-text question is not put to the editor at all:
//! it waits in ratchet's durable question queue, and its tool call tells the user how to answer
//! from the CLI. Whatever the editor answers is mapped to a [`QuestionAnswer`]; an answer that
//! cannot be read is [`QuestionAnswer::Declined`], never a guess.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::AcpAgent;
use crate::acp::Peer;
use crate::acp::error::REQUEST_CANCELLED;
use crate::acp::schema::{
    ClientCapabilities, CreateElicitationRequest, ElicitationFormMode, ElicitationSchema, ElicitationSessionScope,
    EnumOption, MultiSelectPropertySchema, PermissionOption, PermissionOptionKind, RequestPermissionOutcome,
    RequestPermissionRequest, RequestPermissionResponse, StringPropertySchema, ToolCallId, ToolCallUpdate,
    ToolCallUpdateFields,
};
use crate::engine::{Question, QuestionAnswer, QuestionForm, StepChoice};

/// The value (and option id) of approving a plan.
pub const APPROVE: &str = "approve";
/// The value (and option id) of rejecting a plan.
pub const REJECT: &str = "reject";
/// The feedback of a rejection that came without any.
pub const DEFAULT_FEEDBACK: &str = "rejected in the editor";

/// How a question reaches the editor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// A form, `elicitation/create` (the client advertised `elicitation.form`).
    Elicitation,
    /// `session/request_permission` with approve and reject: a plan approval tied to a tool
    /// call, for a client without forms.
    Permission,
    /// Not put to the editor: the question waits in ratchet's queue, to be answered from the
    /// CLI (free text without forms, or a plan without a tool call to ask about).
    Queue,
}

/// Which channel `question` takes with a client that advertised `caps`.
pub fn route(caps: &ClientCapabilities, question: &Question) -> Route {
    // An empty `elicitation: {}` advertises no mode: only `form` allows a form.
    if caps.elicitation.as_ref().is_some_and(|e| e.supports_form()) {
        return Route::Elicitation;
    }
    match (&question.form, &question.tool_call_id) {
        // `toolCall` must name a tool call already reported; without one there is nothing to
        // hang the permission dialog on.
        (QuestionForm::PlanApproval { .. }, Some(_)) => Route::Permission,
        _ => Route::Queue,
    }
}

/// The `elicitation/create` params for `question`: a form scoped to the session (and to the
/// question's tool call, when it has one), whose message is the question's title.
pub fn elicitation_params(session_id: &str, question: &Question) -> CreateElicitationRequest {
    let scope = ElicitationSessionScope::new(session_id.to_string())
        .tool_call_id(question.tool_call_id.clone().map(ToolCallId::from));
    let schema = match &question.form {
        QuestionForm::PlanApproval { steps, .. } => plan_schema(steps),
        QuestionForm::Text => text_schema(),
    };
    CreateElicitationRequest::new(ElicitationFormMode::new(scope, schema), question.title.clone())
}

/// `decision` (required), `skip` (the steps to leave out, when there are steps) and
/// `feedback` (what to change, when rejecting).
fn plan_schema(steps: &[StepChoice]) -> ElicitationSchema {
    let decision = StringPropertySchema::new()
        .title("Decision")
        .enum_values(vec![APPROVE.to_string(), REJECT.to_string()])
        .one_of(vec![EnumOption::new(APPROVE, "Approve the plan"), EnumOption::new(REJECT, "Reject the plan")]);
    let feedback = StringPropertySchema::new().title("Feedback").description("What to change (when rejecting)");
    let mut schema = ElicitationSchema::new().property("decision", decision, true);
    if !steps.is_empty() {
        let options =
            steps.iter().map(|s| EnumOption::new(s.id.clone(), format!("{}: {}", s.id, s.description))).collect();
        let skip = MultiSelectPropertySchema::titled(options)
            .title("Steps to skip")
            .description("The checked steps are left out (when approving)");
        schema = schema.property("skip", skip, false);
    }
    schema.property("feedback", feedback, false)
}

/// One required string, `answer`.
fn text_schema() -> ElicitationSchema {
    ElicitationSchema::new().property("answer", StringPropertySchema::new().title("Answer"), true)
}

/// The `session/request_permission` params for a plan approval without forms: the question's
/// tool call with two options, approve and reject. `None` for other questions and for a plan
/// without a tool call (see [`Route::Queue`]).
pub fn permission_params(session_id: &str, question: &Question) -> Option<RequestPermissionRequest> {
    let QuestionForm::PlanApproval { .. } = question.form else { return None };
    let tool_call_id = question.tool_call_id.clone()?;
    let tool_call = ToolCallUpdate::new(tool_call_id, ToolCallUpdateFields::new().title(question.title.clone()));
    let options = vec![
        PermissionOption::new(APPROVE, "Approve the plan", PermissionOptionKind::AllowOnce),
        PermissionOption::new(REJECT, "Reject the plan", PermissionOptionKind::RejectOnce),
    ];
    Some(RequestPermissionRequest::new(session_id.to_string(), tool_call, options))
}

/// The answer in the editor's result to `elicitation/create` for a question of `form`.
/// Declining or dismissing the form is `Declined`; so is an answer that cannot be read
/// (logged, since it means a client bug).
pub fn answer_from_elicitation(form: &QuestionForm, response: &Value) -> QuestionAnswer {
    read_elicitation(form, response).unwrap_or_else(|why| {
        tracing::warn!(why, %response, "a malformed answer to elicitation/create; the question counts as declined");
        QuestionAnswer::Declined
    })
}

/// Reads the result by hand rather than as the wire type: a client that sends `null` for a
/// field left empty still means "empty", not "malformed".
fn read_elicitation(form: &QuestionForm, response: &Value) -> Result<QuestionAnswer, String> {
    let action = response.get("action").and_then(Value::as_str).ok_or("no `action`")?;
    let content = match action {
        "accept" => match response.get("content") {
            Some(Value::Object(content)) => content,
            _ => return Err("`accept` without `content`".into()),
        },
        "decline" | "cancel" => return Ok(QuestionAnswer::Declined),
        other => return Err(format!("an unknown action `{other}`")),
    };
    match form {
        QuestionForm::PlanApproval { steps, .. } => read_plan_decision(steps, content),
        QuestionForm::Text => match field(content, "answer") {
            Some(Value::String(answer)) => Ok(QuestionAnswer::Text(answer.clone())),
            Some(other) => Err(format!("`answer` is {other}, not a string")),
            None => Err("no `answer`".into()),
        },
    }
}

fn read_plan_decision(steps: &[StepChoice], content: &Map<String, Value>) -> Result<QuestionAnswer, String> {
    match field(content, "decision") {
        Some(Value::String(d)) if d == APPROVE => Ok(QuestionAnswer::Approve { skip: read_skip(steps, content)? }),
        Some(Value::String(d)) if d == REJECT => {
            let feedback = match field(content, "feedback") {
                Some(Value::String(f)) => f.trim(),
                Some(other) => return Err(format!("`feedback` is {other}, not a string")),
                None => "",
            };
            let feedback = if feedback.is_empty() { DEFAULT_FEEDBACK } else { feedback };
            Ok(QuestionAnswer::Reject { feedback: feedback.to_string() })
        }
        Some(other) => Err(format!("`decision` is {other}, neither \"{APPROVE}\" nor \"{REJECT}\"")),
        None => Err("no `decision`".into()),
    }
}

/// The step ids to skip, each once, in the editor's order; an id the plan does not have is
/// malformed (the form offered only the plan's).
fn read_skip(steps: &[StepChoice], content: &Map<String, Value>) -> Result<Vec<String>, String> {
    let Some(skip) = field(content, "skip") else { return Ok(Vec::new()) };
    let Value::Array(items) = skip else { return Err(format!("`skip` is {skip}, not a list of step ids")) };
    let known: HashSet<&str> = steps.iter().map(|s| s.id.as_str()).collect();
    let mut seen = HashSet::new();
    let mut ids = Vec::new();
    for item in items {
        let Value::String(id) = item else { return Err(format!("`skip` holds {item}, not a step id")) };
        if !known.contains(id.as_str()) {
            return Err(format!("`skip` names \"{id}\", which is not a step of the plan"));
        }
        if seen.insert(id.as_str()) {
            ids.push(id.clone());
        }
    }
    Ok(ids)
}

/// A field of the content; `null` counts as absent.
fn field<'a>(content: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    content.get(name).filter(|v| !v.is_null())
}

/// The answer in the editor's result to the plan's `session/request_permission`. A
/// cancelled dialog is `Declined`, and so is a result that cannot be read (logged).
pub fn answer_from_permission(response: &Value) -> QuestionAnswer {
    let read = serde_json::from_value::<RequestPermissionResponse>(response.clone())
        .map_err(|e| e.to_string())
        .and_then(|r| match r.outcome {
            RequestPermissionOutcome::Selected(s) => match s.option_id.0.as_ref() {
                APPROVE => Ok(QuestionAnswer::Approve { skip: Vec::new() }),
                REJECT => Ok(QuestionAnswer::Reject { feedback: DEFAULT_FEEDBACK.to_string() }),
                other => Err(format!("an option ratchet did not offer, `{other}`")),
            },
            _ => Ok(QuestionAnswer::Declined),
        });
    read.unwrap_or_else(|why| {
        tracing::warn!(why, %response, "a malformed answer to session/request_permission about a plan; the question counts as declined");
        QuestionAnswer::Declined
    })
}

/// Puts `question` to the editor over `peer` and waits for its answer. `None` when there is
/// nothing to tell the engine: the question is not for the editor ([`Route::Queue`]), the
/// editor failed the request, or the connection closed. The question then stays open in
/// ratchet's queue, answerable from the CLI.
///
/// # Cancel safety
/// Cancel safe: dropping the future withdraws the request from the editor
/// (`$/cancel_request`), which is how a withdrawn question closes its dialog.
pub async fn ask(
    peer: &Peer,
    caps: &ClientCapabilities,
    session_id: &str,
    question: &Question,
) -> Option<QuestionAnswer> {
    match route(caps, question) {
        Route::Elicitation => {
            let params = elicitation_params(session_id, question);
            let response = request(peer, "elicitation/create", params).await?;
            Some(response.map_or(QuestionAnswer::Declined, |r| answer_from_elicitation(&question.form, &r)))
        }
        Route::Permission => {
            let params = permission_params(session_id, question)?;
            let response = request(peer, "session/request_permission", params).await?;
            Some(response.map_or(QuestionAnswer::Declined, |r| answer_from_permission(&r)))
        }
        Route::Queue => {
            tracing::debug!(
                request_id = question.request_id,
                "the editor has no form for this question; it waits to be answered from the CLI"
            );
            None
        }
    }
}

/// Sends one request: `Some(Ok(result))`; `Some(Err(()))` when the editor withdrew the
/// question (-32800), which declines it; `None` when the editor failed or is gone.
async fn request(peer: &Peer, method: &str, params: impl serde::Serialize) -> Option<Result<Value, ()>> {
    match peer.request(method, params).await {
        Ok(result) => Some(Ok(result)),
        Err(e) if peer.is_closed() => {
            tracing::debug!(method, error = %e, "the editor went away with a question open; it stays queued");
            None
        }
        Err(e) if e.code == REQUEST_CANCELLED => Some(Err(())),
        Err(e) => {
            tracing::warn!(
                method,
                code = e.code,
                error = %e.message,
                "the editor failed a question; it stays queued, to be answered from the CLI"
            );
            None
        }
    }
}

impl AcpAgent {
    /// Puts one question to the editor and hands its answer, if any, to the engine.
    pub(super) async fn put_question(&self, session_id: &str, question: Question) {
        let caps = self.client_capabilities();
        let Some(answer) = ask(&self.peer, &caps, session_id, &question).await else { return };
        if !self.engine.answer_question(session_id.to_string(), question.request_id, answer).await {
            tracing::debug!(request_id = question.request_id, "the question was answered or withdrawn meanwhile");
        }
    }
}

#[cfg(test)]
mod tests;
