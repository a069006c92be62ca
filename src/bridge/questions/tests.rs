use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use super::*;
use crate::acp::schema::{ElicitationCapabilities, ElicitationFormCapabilities, ElicitationUrlCapabilities};
use crate::acp::{Handler, RequestContext, RpcError, serve};

fn plan(tool_call_id: Option<&str>) -> Question {
    Question {
        request_id: 7,
        tool_call_id: tool_call_id.map(str::to_string),
        title: "Approve the plan for the parser rewrite?".into(),
        form: QuestionForm::PlanApproval {
            plan_id: "p-1".into(),
            steps: vec![
                StepChoice { id: "s1".into(), description: "Write the lexer".into() },
                StepChoice { id: "s2".into(), description: "Write the parser".into() },
            ],
        },
    }
}

fn text(tool_call_id: Option<&str>) -> Question {
    Question {
        request_id: 8,
        tool_call_id: tool_call_id.map(str::to_string),
        title: "Which database should the service use?".into(),
        form: QuestionForm::Text,
    }
}

fn caps(elicitation: Option<ElicitationCapabilities>) -> ClientCapabilities {
    ClientCapabilities::new().elicitation(elicitation)
}

fn forms() -> ClientCapabilities {
    caps(Some(ElicitationCapabilities::new().form(ElicitationFormCapabilities::new())))
}

// --- routing -------------------------------------------------------------------------------

#[test]
fn a_client_with_forms_gets_every_question_as_a_form() {
    for q in [plan(Some("call-1")), plan(None), text(Some("call-1")), text(None)] {
        assert_eq!(route(&forms(), &q), Route::Elicitation, "{q:?}");
    }
}

#[test]
fn without_forms_a_plan_with_a_tool_call_is_a_permission_question() {
    assert_eq!(route(&caps(None), &plan(Some("call-1"))), Route::Permission);
}

#[test]
fn without_forms_free_text_and_a_plan_without_tool_call_stay_queued() {
    assert_eq!(route(&caps(None), &text(Some("call-1"))), Route::Queue);
    assert_eq!(route(&caps(None), &plan(None)), Route::Queue);
}

#[test]
fn an_empty_elicitation_capability_or_url_only_advertises_no_forms() {
    let empty: ClientCapabilities = serde_json::from_value(json!({"elicitation": {}})).unwrap();
    let url_only = caps(Some(ElicitationCapabilities::new().url(ElicitationUrlCapabilities::new())));
    for c in [empty, url_only] {
        assert_eq!(route(&c, &plan(Some("call-1"))), Route::Permission);
        assert_eq!(route(&c, &text(None)), Route::Queue);
    }
    let form: ClientCapabilities = serde_json::from_value(json!({"elicitation": {"form": {}}})).unwrap();
    assert_eq!(route(&form, &text(None)), Route::Elicitation);
}

// --- the form ------------------------------------------------------------------------------

fn params(q: &Question) -> Value {
    serde_json::to_value(elicitation_params("sess-1", q)).unwrap()
}

#[test]
fn a_plan_form_asks_decision_skip_and_feedback() {
    let p = params(&plan(Some("call-1")));
    assert_eq!(p["mode"], "form");
    assert_eq!(p["sessionId"], "sess-1");
    assert_eq!(p["toolCallId"], "call-1");
    assert_eq!(p["message"], "Approve the plan for the parser rewrite?");
    let schema = &p["requestedSchema"];
    assert_eq!(schema["type"], "object");
    assert_eq!(schema["required"], json!(["decision"]));
    let props = &schema["properties"];
    assert_eq!(
        props["decision"],
        json!({
            "type": "string",
            "title": "Decision",
            "enum": ["approve", "reject"],
            "oneOf": [
                {"const": "approve", "title": "Approve the plan"},
                {"const": "reject", "title": "Reject the plan"}
            ]
        })
    );
    assert_eq!(props["skip"]["type"], "array");
    assert_eq!(
        props["skip"]["items"],
        json!({"anyOf": [
            {"const": "s1", "title": "s1: Write the lexer"},
            {"const": "s2", "title": "s2: Write the parser"}
        ]})
    );
    assert_eq!(props["feedback"]["type"], "string");
    assert_eq!(props["feedback"]["description"], "What to change (when rejecting)");
    assert_eq!(props.as_object().unwrap().len(), 3);
}

#[test]
fn a_plan_without_steps_has_no_skip_field() {
    let mut q = plan(None);
    q.form = QuestionForm::PlanApproval { plan_id: "p-2".into(), steps: Vec::new() };
    let p = params(&q);
    let props = p["requestedSchema"]["properties"].as_object().unwrap();
    assert_eq!(props.keys().collect::<Vec<_>>(), ["decision", "feedback"]);
}

#[test]
fn a_text_form_asks_one_required_answer_and_without_tool_call_is_scoped_to_the_session() {
    let p = params(&text(None));
    assert_eq!(p["mode"], "form");
    assert_eq!(p["sessionId"], "sess-1");
    assert!(p.get("toolCallId").is_none(), "{p}");
    assert_eq!(p["message"], "Which database should the service use?");
    assert_eq!(p["requestedSchema"]["required"], json!(["answer"]));
    let props = p["requestedSchema"]["properties"].as_object().unwrap();
    assert_eq!(props.len(), 1);
    assert_eq!(props["answer"]["type"], "string");
}

/// The requested schema is a JSON Schema of the content: what a form can return passes it,
/// what it cannot does not.
#[test]
fn the_plan_form_schema_admits_exactly_the_answers_a_form_can_give() {
    let schema = params(&plan(Some("call-1")))["requestedSchema"].clone();
    let v = jsonschema::validator_for(&schema).unwrap();
    assert!(v.is_valid(&json!({"decision": "approve", "skip": ["s2"]})));
    assert!(v.is_valid(&json!({"decision": "reject", "feedback": "fewer steps"})));
    assert!(!v.is_valid(&json!({"decision": "maybe"})));
    assert!(!v.is_valid(&json!({"skip": ["s1"]})));
    assert!(!v.is_valid(&json!({"decision": "approve", "skip": ["s9"]})));
}

// --- reading the form's answer -------------------------------------------------------------

fn accept(content: Value) -> Value {
    json!({"action": "accept", "content": content})
}

#[test]
fn an_approval_skips_the_checked_steps_once_each() {
    let form = plan(None).form;
    let got = answer_from_elicitation(&form, &accept(json!({"decision": "approve", "skip": ["s2", "s1", "s2"]})));
    assert_eq!(got, QuestionAnswer::Approve { skip: vec!["s2".into(), "s1".into()] });
    for content in [json!({"decision": "approve"}), json!({"decision": "approve", "skip": null, "feedback": "x"})] {
        assert_eq!(answer_from_elicitation(&form, &accept(content)), QuestionAnswer::Approve { skip: vec![] });
    }
}

#[test]
fn a_rejection_carries_its_feedback_or_says_where_it_came_from() {
    let form = plan(None).form;
    let got = answer_from_elicitation(&form, &accept(json!({"decision": "reject", "feedback": "  split step 2 "})));
    assert_eq!(got, QuestionAnswer::Reject { feedback: "split step 2".into() });
    for content in [
        json!({"decision": "reject"}),
        json!({"decision": "reject", "feedback": ""}),
        json!({"decision": "reject", "feedback": "   "}),
        json!({"decision": "reject", "feedback": null, "skip": ["s1"]}),
    ] {
        let got = answer_from_elicitation(&form, &accept(content.clone()));
        assert_eq!(got, QuestionAnswer::Reject { feedback: DEFAULT_FEEDBACK.into() }, "{content}");
    }
}

#[test]
fn a_text_answer_is_the_text() {
    let got = answer_from_elicitation(&QuestionForm::Text, &accept(json!({"answer": "Postgres"})));
    assert_eq!(got, QuestionAnswer::Text("Postgres".into()));
}

#[test]
fn declining_or_dismissing_the_form_declines() {
    for form in [plan(None).form, QuestionForm::Text] {
        for action in ["decline", "cancel"] {
            assert_eq!(answer_from_elicitation(&form, &json!({"action": action})), QuestionAnswer::Declined);
        }
    }
}

#[test]
fn an_unreadable_form_answer_declines() {
    let plan_form = plan(None).form;
    for response in [
        json!(null),
        json!({}),
        json!({"action": "accept"}),
        json!({"action": "accept", "content": null}),
        json!({"action": "maybe", "content": {"decision": "approve"}}),
        accept(json!({})),
        accept(json!({"decision": "maybe"})),
        accept(json!({"decision": true})),
        accept(json!({"decision": "approve", "skip": "s1"})),
        accept(json!({"decision": "approve", "skip": [1]})),
        accept(json!({"decision": "approve", "skip": ["s9"]})),
        accept(json!({"decision": "reject", "feedback": 3})),
    ] {
        assert_eq!(answer_from_elicitation(&plan_form, &response), QuestionAnswer::Declined, "{response}");
    }
    for response in [accept(json!({})), accept(json!({"answer": 42})), accept(json!({"decision": "approve"}))] {
        assert_eq!(answer_from_elicitation(&QuestionForm::Text, &response), QuestionAnswer::Declined, "{response}");
    }
}

// --- the permission fallback ---------------------------------------------------------------

#[test]
fn the_permission_fallback_offers_approve_and_reject_on_the_questions_tool_call() {
    let p = serde_json::to_value(permission_params("sess-1", &plan(Some("call-1"))).unwrap()).unwrap();
    assert_eq!(p["sessionId"], "sess-1");
    assert_eq!(p["toolCall"]["toolCallId"], "call-1");
    assert_eq!(p["toolCall"]["title"], "Approve the plan for the parser rewrite?");
    assert_eq!(
        p["options"],
        json!([
            {"optionId": "approve", "name": "Approve the plan", "kind": "allow_once"},
            {"optionId": "reject", "name": "Reject the plan", "kind": "reject_once"}
        ])
    );
}

#[test]
fn the_permission_fallback_is_only_for_plans_with_a_tool_call() {
    assert!(permission_params("sess-1", &plan(None)).is_none());
    assert!(permission_params("sess-1", &text(Some("call-1"))).is_none());
}

fn selected(option: &str) -> Value {
    json!({"outcome": {"outcome": "selected", "optionId": option}})
}

#[test]
fn the_permission_answer_maps_to_approve_reject_or_declined() {
    assert_eq!(answer_from_permission(&selected("approve")), QuestionAnswer::Approve { skip: vec![] });
    assert_eq!(
        answer_from_permission(&selected("reject")),
        QuestionAnswer::Reject { feedback: DEFAULT_FEEDBACK.into() }
    );
    assert_eq!(answer_from_permission(&json!({"outcome": {"outcome": "cancelled"}})), QuestionAnswer::Declined);
    for bad in [selected("allow_always"), json!(null), json!({"outcome": "selected"})] {
        assert_eq!(answer_from_permission(&bad), QuestionAnswer::Declined, "{bad}");
    }
}

// --- asking over a connection --------------------------------------------------------------

struct Quiet;

impl Handler for Quiet {
    fn handle_request(
        self: Arc<Self>,
        _: &str,
        _: Value,
        _: RequestContext,
    ) -> BoxFuture<'static, Result<Value, RpcError>> {
        futures::future::ready(Err(RpcError::method_not_found("anything"))).boxed()
    }
    fn handle_notification(self: Arc<Self>, _: &str, _: Value) {}
}

/// The agent's end of a connection (its [`Peer`]) and the editor's end, scripted by hand.
struct Editor {
    peer: Peer,
    to_agent: tokio::io::DuplexStream,
    from_agent: tokio::io::Lines<BufReader<tokio::io::DuplexStream>>,
}

impl Editor {
    async fn connect() -> Editor {
        let (editor_out, agent_in) = tokio::io::duplex(1 << 16);
        let (agent_out, editor_in) = tokio::io::duplex(1 << 16);
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(serve(agent_in, agent_out, move |peer| {
            let _ = tx.send(peer);
            Arc::new(Quiet)
        }));
        let peer = rx.await.unwrap();
        Editor { peer, to_agent: editor_out, from_agent: BufReader::new(editor_in).lines() }
    }

    async fn next(&mut self) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(5), self.from_agent.next_line()).await;
        serde_json::from_str(&line.expect("the agent sent nothing").unwrap().expect("eof")).unwrap()
    }

    async fn reply(&mut self, to: &Value, body: Value) {
        let mut message = json!({"jsonrpc": "2.0", "id": to["id"]});
        message.as_object_mut().unwrap().extend(body.as_object().unwrap().clone());
        self.to_agent.write_all(format!("{message}\n").as_bytes()).await.unwrap();
    }
}

#[tokio::test]
async fn a_form_answer_comes_back_as_the_questions_answer() {
    let mut editor = Editor::connect().await;
    let peer = editor.peer.clone();
    let q = plan(Some("call-1"));
    let asking = tokio::spawn(async move { ask(&peer, &forms(), "sess-1", &q).await });
    let request = editor.next().await;
    assert_eq!(request["method"], "elicitation/create");
    assert_eq!(request["params"]["requestedSchema"]["required"], json!(["decision"]));
    editor.reply(&request, json!({"result": accept(json!({"decision": "approve", "skip": ["s1"]}))})).await;
    assert_eq!(asking.await.unwrap(), Some(QuestionAnswer::Approve { skip: vec!["s1".into()] }));
}

#[tokio::test]
async fn without_forms_a_plan_is_asked_as_a_permission() {
    let mut editor = Editor::connect().await;
    let peer = editor.peer.clone();
    let q = plan(Some("call-1"));
    let asking = tokio::spawn(async move { ask(&peer, &caps(None), "sess-1", &q).await });
    let request = editor.next().await;
    assert_eq!(request["method"], "session/request_permission");
    editor.reply(&request, json!({"result": selected("reject")})).await;
    assert_eq!(asking.await.unwrap(), Some(QuestionAnswer::Reject { feedback: DEFAULT_FEEDBACK.into() }));
}

#[tokio::test]
async fn a_queued_question_is_not_put_to_the_editor() {
    let mut editor = Editor::connect().await;
    assert_eq!(ask(&editor.peer, &caps(None), "sess-1", &text(Some("call-1"))).await, None);
    let nothing = tokio::time::timeout(Duration::from_millis(100), editor.from_agent.next_line()).await;
    assert!(nothing.is_err(), "the agent sent {nothing:?}");
}

#[tokio::test]
async fn an_editor_error_leaves_the_question_open_and_a_withdrawal_declines_it() {
    let mut editor = Editor::connect().await;
    for (code, expected) in [(-32601, None), (-32602, None), (-32800, Some(QuestionAnswer::Declined))] {
        let peer = editor.peer.clone();
        let asking = tokio::spawn(async move { ask(&peer, &forms(), "sess-1", &text(None)).await });
        let request = editor.next().await;
        editor.reply(&request, json!({"error": {"code": code, "message": "no"}})).await;
        assert_eq!(asking.await.unwrap(), expected, "error {code}");
    }
}

#[tokio::test]
async fn aborting_an_ask_withdraws_the_request_from_the_editor() {
    let mut editor = Editor::connect().await;
    let peer = editor.peer.clone();
    let asking = tokio::spawn(async move { ask(&peer, &forms(), "sess-1", &text(None)).await });
    let request = editor.next().await;
    assert_eq!(request["method"], "elicitation/create");
    asking.abort();
    assert!(asking.await.unwrap_err().is_cancelled());
    assert_eq!(
        editor.next().await,
        json!({"jsonrpc": "2.0", "method": "$/cancel_request", "params": {"requestId": request["id"]}})
    );
}
