use super::*;

fn step(id: &str, deps: &[&str]) -> ProposedStep {
    ProposedStep {
        id: id.into(),
        description: format!("do {id}"),
        complexity: None,
        files: vec![],
        depends_on: deps.iter().map(|d| d.to_string()).collect(),
        agent: None,
    }
}

fn plan(steps: Vec<ProposedStep>) -> Plan {
    Plan::propose(Proposal { goal: "ship it".into(), steps }, 1).unwrap()
}

fn ready(p: &Plan) -> Vec<&str> {
    p.ready_steps().iter().map(|s| s.id.as_str()).collect()
}

#[test]
fn proposals_are_checked() {
    let bad =
        |steps: Vec<ProposedStep>| Plan::propose(Proposal { goal: "g".into(), steps }, 1).unwrap_err().to_string();
    assert!(bad(vec![]).contains("1 to 200 steps"));
    assert!(bad(vec![step("a", &[]), step("a", &[])]).contains("two steps have the id \"a\""));
    assert!(bad(vec![step("a", &["zz"])]).contains("depends on \"zz\""));
    let cycle = bad(vec![step("a", &["b"]), step("b", &["c"]), step("c", &["b"])]);
    assert!(cycle.contains("\"b\"") && cycle.contains("depends on itself"), "{cycle}");
    let empty_goal = Plan::propose(Proposal { goal: " ".into(), steps: vec![step("a", &[])] }, 1).unwrap_err();
    assert!(empty_goal.to_string().contains("goal is empty"));
}

#[test]
fn nothing_runs_before_approval_and_skipped_steps_never_run() {
    let mut p = plan(vec![step("a", &[]), step("b", &[]), step("c", &["b"])]);
    assert!(ready(&p).is_empty(), "proposed: nothing runs");
    assert!(p.start().is_err(), "a proposed plan cannot start");
    p.approve(&["b".into()]).unwrap();
    assert!(ready(&p).is_empty(), "approved but not started: nothing runs");
    p.start().unwrap();
    assert_eq!(ready(&p), vec!["a", "c"], "a skipped dependency counts as done");
    assert!(p.step_started("b").is_err(), "a skipped step never starts");
}

#[test]
fn dependencies_wait_and_the_plan_completes() {
    let mut p = plan(vec![step("a", &[]), step("b", &["a"])]);
    p.approve(&[]).unwrap();
    p.start().unwrap();
    assert_eq!(ready(&p), vec!["a"]);
    p.step_started("a").unwrap();
    assert!(ready(&p).is_empty());
    p.step_finished("a", Ok(())).unwrap();
    assert_eq!(ready(&p), vec!["b"]);
    p.step_started("b").unwrap();
    p.step_finished("b", Ok(())).unwrap();
    assert_eq!(p.status, PlanStatus::Completed);
}

#[test]
fn a_failed_step_fails_its_dependents_and_the_plan_after_the_others_finish() {
    let mut p = plan(vec![step("a", &[]), step("b", &["a"]), step("c", &["b"]), step("d", &[])]);
    p.approve(&[]).unwrap();
    p.start().unwrap();
    p.step_started("a").unwrap();
    p.step_started("d").unwrap();
    p.step_finished("a", Err("the model call failed".into())).unwrap();
    assert_eq!(p.status, PlanStatus::Executing, "d still runs");
    assert!(matches!(&p.steps[1].status, StepStatus::Failed { reason } if reason.contains("\"a\"")));
    assert!(matches!(&p.steps[2].status, StepStatus::Failed { reason } if reason.contains("\"b\"")));
    p.step_finished("d", Ok(())).unwrap();
    assert_eq!(p.status, PlanStatus::Failed);
    assert_eq!(p.steps[3].status, StepStatus::Completed);
}

#[test]
fn rejection_keeps_feedback_and_wrong_transitions_say_why() {
    let mut p = plan(vec![step("a", &[])]);
    let err = p.approve(&["x".into()]).unwrap_err().to_string();
    assert!(err.contains("no step \"x\"") && err.contains("a"), "{err}");
    assert!(p.approve(&["a".into()]).unwrap_err().to_string().contains("reject the plan instead"));
    p.reject("split step a").unwrap();
    assert_eq!(p.status, PlanStatus::Rejected { feedback: "split step a".into() });
    assert_eq!(p.approve(&[]).unwrap_err().to_string(), "the plan is rejected, so it cannot be approved");
    let revised =
        Plan::propose(Proposal { goal: p.goal.clone(), steps: vec![step("a1", &[])] }, p.revision + 1).unwrap();
    assert_eq!(revised.revision, 2);
}

#[test]
fn cancel_fails_running_steps() {
    let mut p = plan(vec![step("a", &[]), step("b", &[])]);
    p.approve(&[]).unwrap();
    p.start().unwrap();
    p.step_started("a").unwrap();
    p.cancel().unwrap();
    assert_eq!(p.status, PlanStatus::Cancelled);
    assert!(matches!(&p.steps[0].status, StepStatus::Failed { reason } if reason == "cancelled"));
    assert_eq!(p.steps[1].status, StepStatus::Pending);
    assert!(p.cancel().is_err());
}

#[test]
fn complexity_is_given_or_classified() {
    assert_eq!(Complexity::classify("Review the diff for bugs"), Complexity::Review);
    assert_eq!(Complexity::classify("Refactor the store into modules"), Complexity::Complex);
    assert_eq!(Complexity::classify("Rename a variable"), Complexity::Simple);
    let mut s = step("a", &[]);
    s.complexity = Some(Complexity::Complex);
    s.description = "Rename a variable".into();
    assert_eq!(plan(vec![s]).steps[0].complexity, Complexity::Complex);
}

#[test]
fn the_tool_arguments_parse_and_unknown_fields_are_refused() {
    let p: Proposal = serde_json::from_value(serde_json::json!({
        "goal": "g",
        "steps": [{"id": "a", "description": "d", "complexity": "review", "files": ["src/x.rs"]}]
    }))
    .unwrap();
    assert_eq!(p.steps[0].complexity, Some(Complexity::Review));
    let err =
        serde_json::from_value::<Proposal>(serde_json::json!({"goal": "g", "steps": [], "extra": 1})).unwrap_err();
    assert!(err.to_string().contains("extra"));
}
