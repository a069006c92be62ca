//! Questions put to the editor (protocol §6.6, §6.2): the `elicitation/create` and
//! `session/request_permission` params ratchet builds for a plan approval and a free-text
//! question conform to the official ACP v1 schema (generated from the crate, so no schema file
//! is needed), and read back as the form controls they are meant to be.
//!
//! End-to-end turns with questions need a tool that asks them; until one exists the requests
//! are built through `ratchet::bridge::questions` directly.

use agent_client_protocol_schema::v1;
use ratchet::bridge::questions::{elicitation_params, permission_params};
use ratchet::engine::{Question, QuestionForm, StepChoice};
use serde_json::{Value, json};

use crate::support::schema::{self, Kind};

fn plan(tool_call_id: Option<&str>, steps: usize) -> Question {
    Question {
        request_id: 1,
        tool_call_id: tool_call_id.map(str::to_string),
        title: "Approve the plan for \"split the parser\"?".into(),
        form: QuestionForm::PlanApproval {
            plan_id: "plan-1".into(),
            steps: (1..=steps)
                .map(|i| StepChoice { id: format!("s{i}"), description: format!("Step number {i}") })
                .collect(),
        },
    }
}

fn text(tool_call_id: Option<&str>) -> Question {
    Question {
        request_id: 2,
        tool_call_id: tool_call_id.map(str::to_string),
        title: "Which port should the service listen on?".into(),
        form: QuestionForm::Text,
    }
}

fn every_question() -> Vec<Question> {
    vec![plan(Some("call-1"), 3), plan(None, 1), plan(Some("call-2"), 0), text(Some("call-3")), text(None)]
}

#[test]
fn elicitation_requests_conform_to_the_schema() {
    for q in every_question() {
        let params = serde_json::to_value(elicitation_params("sess-1", &q)).unwrap();
        schema::check(Kind::CreateElicitationRequest, &params).unwrap_or_else(|e| panic!("{e}\n{params:#}"));
    }
}

#[test]
fn the_schema_check_catches_a_broken_elicitation_request() {
    // Guards the test above against a validator that accepts anything.
    let mut params = serde_json::to_value(elicitation_params("sess-1", &plan(Some("call-1"), 2))).unwrap();
    params.as_object_mut().unwrap().remove("message");
    assert!(schema::check(Kind::CreateElicitationRequest, &params).is_err());
}

#[test]
fn the_form_fields_read_back_as_known_controls() {
    // Unknown property or item kinds would parse as the schema's catch-all `Other` variants,
    // which clients must not render: every field has to be a control they know.
    for q in every_question() {
        let params = serde_json::to_value(elicitation_params("sess-1", &q)).unwrap();
        let request: v1::CreateElicitationRequest = serde_json::from_value(params.clone()).unwrap();
        let v1::ElicitationMode::Form(form) = request.mode else { panic!("not a form: {params:#}") };
        assert!(matches!(form.scope, v1::ElicitationScope::Session(_)), "{params:#}");
        for (name, property) in &form.requested_schema.properties {
            match (name.as_str(), property) {
                ("decision", v1::ElicitationPropertySchema::String(s)) => {
                    let values: Vec<_> = s.one_of.iter().flatten().map(|o| o.value.as_str()).collect();
                    assert_eq!(values, ["approve", "reject"]);
                }
                ("skip", v1::ElicitationPropertySchema::Array(a)) => {
                    let v1::MultiSelectItems::Titled(items) = &a.items else { panic!("untitled steps: {params:#}") };
                    let QuestionForm::PlanApproval { steps, .. } = &q.form else { panic!("skip in a text form") };
                    let ids: Vec<_> = items.options.iter().map(|o| o.value.as_str()).collect();
                    assert_eq!(ids, steps.iter().map(|s| s.id.as_str()).collect::<Vec<_>>());
                }
                ("feedback" | "answer", v1::ElicitationPropertySchema::String(_)) => {}
                (other, p) => panic!("unexpected field {other}: {p:?}"),
            }
        }
    }
}

#[test]
fn permission_requests_for_plans_conform_to_the_schema() {
    let params = serde_json::to_value(permission_params("sess-1", &plan(Some("call-1"), 2)).unwrap()).unwrap();
    schema::check(Kind::RequestPermissionRequest, &params).unwrap_or_else(|e| panic!("{e}\n{params:#}"));
    let ids: Vec<&Value> = params["options"].as_array().unwrap().iter().map(|o| &o["optionId"]).collect();
    assert_eq!(ids, [&json!("approve"), &json!("reject")]);
}
