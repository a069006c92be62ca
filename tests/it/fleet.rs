//! Plans and the fleet over the real binary and the loopback mock LLM: the model proposes a
//! plan with `propose_plan`, the editor sees it as `plan` entries and approves it (an
//! `elicitation/create` form), workers (child sessions, one per step, answered by the mock by
//! their own step's prompt) carry it out at most `max_workers` at a time, each as a tool call
//! of the prompting turn, and the model gets a summary per step.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{AcpClient, MockLlm, MockReply, Reply, TestEnv};

/// The user's prompt; only the prompting agent's requests contain it.
pub(crate) const MAIN: &str = "Split this work across the fleet";

/// A marker only a worker's own requests contain (its prompt names its step).
pub(crate) fn worker(step: &str) -> String {
    format!("Your step ({step})")
}

/// How long each frame of a worker's model call takes, so workers overlap.
const OVERLAP: Duration = Duration::from_millis(300);

pub(crate) fn step(id: &str, description: &str) -> Value {
    json!({"id": id, "description": description, "complexity": "simple"})
}

/// A client that advertised form elicitation.
async fn spawn_with_forms(env: &TestEnv) -> AcpClient {
    let mut client = env.spawn_acp().await;
    initialize_with_forms(&mut client).await;
    client
}

/// `initialize` advertising form elicitation.
pub(crate) async fn initialize_with_forms(client: &mut AcpClient) {
    client
        .initialize_with(json!({
            "protocolVersion": 1,
            "clientCapabilities": {"fs": {"readTextFile": false, "writeTextFile": false}, "terminal": false,
                                   "elicitation": {"form": {}}},
            "clientInfo": {"name": "ratchet-it", "version": "0.0.0"}
        }))
        .await;
}

/// A worker that writes `file` (its model call takes `delay` a frame, so workers overlap),
/// then says so.
pub(crate) fn worker_writes(mock: &MockLlm, id: &str, file: &str, delay: Duration) {
    mock.enqueue_for(
        &worker(id),
        MockReply::tool(&format!("w_{id}"), "write_file", json!({"path": file, "content": id})).delay(delay),
    );
    mock.enqueue_for(&worker(id), MockReply::text([format!("Wrote {file}.")]));
}

fn propose(steps: Vec<Value>) -> MockReply {
    MockReply::tool("call_plan", "propose_plan", json!({"goal": "Make three files", "steps": steps}))
}

async fn session_in(client: &mut AcpClient, env: &TestEnv, mode: &str) -> String {
    let session = client.new_session(&env.cwd()).await;
    client.set_mode(&session, mode).await;
    session
}

#[tokio::test]
async fn an_approved_plan_runs_three_workers_two_at_a_time_each_writing_its_file() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    env.write_config("[fleet]\nmax_workers = 2\n");
    mock.enqueue_for(
        MAIN,
        propose(vec![step("s1", "Write one.txt"), step("s2", "Write two.txt"), step("s3", "Write three.txt")]),
    );
    mock.enqueue_for(MAIN, MockReply::text(["The fleet is done."]));
    for (id, file) in [("s1", "one.txt"), ("s2", "two.txt"), ("s3", "three.txt")] {
        worker_writes(&mock, id, file, OVERLAP);
    }
    let mut client = spawn_with_forms(&env).await;
    client.set_request_handler(|method, params| {
        (method == "elicitation/create" && params["mode"] == "form")
            .then(|| Reply::Result(json!({"action": "accept", "content": {"decision": "approve", "skip": []}})))
    });
    let session = session_in(&mut client, &env, "accept-edits").await;

    let turn = client.prompt_text(&session, MAIN).await;
    assert_eq!(turn.stop_reason(), "end_turn", "{}", client.stderr());
    assert_eq!(turn.text(), "The fleet is done.");

    // Each worker used a tool: its file is there.
    for (file, content) in [("one.txt", "s1"), ("two.txt", "s2"), ("three.txt", "s3")] {
        assert_eq!(std::fs::read_to_string(env.workspace().join(file)).unwrap(), content);
    }
    // Never more than two model calls at once, and two at some point.
    assert_eq!(mock.max_in_flight(), 2, "max_workers = 2 bounds the fleet");

    // Asked with a form, before any worker started.
    let asks = turn.requests("elicitation/create");
    assert_eq!(asks.len(), 1, "{:#?}", turn.messages);
    assert_eq!(asks[0]["sessionId"], session.as_str());
    assert!(asks[0]["requestedSchema"]["properties"]["decision"].is_object(), "{}", asks[0]);
    let requests = mock.model_requests();
    assert!(requests[0].raw_body.contains(MAIN) && !requests[0].raw_body.contains("Your step ("));
    assert!(
        requests[1..requests.len() - 1].iter().all(|r| r.raw_body.contains("Your step (")),
        "workers run before the model's last call"
    );
    assert_eq!(requests.len(), 8, "the proposal, two calls per worker, the model's last call");

    // The plan as entries: three steps, all completed at the end.
    let plans = turn.of_kind("plan");
    assert!(!plans.is_empty());
    let first = plans.first().unwrap()["update"]["entries"].as_array().unwrap().clone();
    assert_eq!(first.len(), 3);
    assert!(first.iter().all(|e| e["status"] == "pending"), "{first:?}");
    assert!(
        plans.iter().any(|p| p["update"]["entries"].as_array().unwrap().iter().any(|e| e["status"] == "in_progress"))
    );
    let last = plans.last().unwrap()["update"]["entries"].as_array().unwrap().clone();
    assert!(last.iter().all(|e| e["status"] == "completed"), "{last:?}");
    assert!(last[0]["content"].as_str().unwrap().starts_with("s1: Write one.txt"), "{last:?}");

    // Each worker is a tool call of the prompting turn, completed.
    let calls = turn.tool_calls();
    for s in ["s1", "s2", "s3"] {
        let c = calls.iter().find(|c| c.id == format!("call_plan:{s}")).unwrap_or_else(|| panic!("{calls:#?}"));
        assert_eq!(c.statuses().last().map(String::as_str), Some("completed"), "{c:#?}");
    }

    // Workers saw the goal and their own step only.
    for r in mock.model_requests().iter().filter(|r| r.raw_body.contains(&worker("s2"))) {
        assert!(r.raw_body.contains("Make three files") && r.raw_body.contains("Write two.txt"));
        assert!(!r.raw_body.contains("Write one.txt") && !r.raw_body.contains("Write three.txt"), "{}", r.raw_body);
    }
    // The model got a summary per step.
    let last_request = mock.model_requests().into_iter().rfind(|r| r.raw_body.contains(MAIN)).unwrap();
    let result = &last_request.tool_results()[0].text;
    for s in ["s1 completed", "s2 completed", "s3 completed", "Wrote two.txt"] {
        assert!(result.contains(s), "{result}");
    }

    // The plan is stored as completed; workers are sessions listed with their parent.
    let out = env.run(&["plans", "list", "--json"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let plans: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plans[0]["plan"]["status"]["status"], "completed", "{plans:#}");
    assert_eq!(plans[0]["session_id"], session.as_str());
    let out = env.run(&["sessions", "list"]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[0].starts_with(&session), "the prompting session first: {text}");
    assert!(lines[1..].iter().all(|l| l.starts_with("  └ ")), "its three workers under it: {text}");
}

#[tokio::test]
async fn a_step_whose_model_call_fails_fails_the_step_and_the_plan() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    mock.enqueue_for(MAIN, propose(vec![step("s1", "Write one.txt"), step("s2", "Write two.txt")]));
    mock.enqueue_for(MAIN, MockReply::text(["One step failed."]));
    worker_writes(&mock, "s1", "one.txt", OVERLAP);
    mock.enqueue_for(&worker("s2"), MockReply::error(401));
    let mut client = spawn_with_forms(&env).await;
    client.set_request_handler(|method, _| {
        (method == "elicitation/create")
            .then(|| Reply::Result(json!({"action": "accept", "content": {"decision": "approve"}})))
    });
    let session = session_in(&mut client, &env, "accept-edits").await;
    let turn = client.prompt_text(&session, MAIN).await;
    assert_eq!(turn.stop_reason(), "end_turn");

    let calls = turn.tool_calls();
    let s2 = calls.iter().find(|c| c.id == "call_plan:s2").unwrap();
    assert_eq!(s2.statuses().last().map(String::as_str), Some("failed"), "{s2:#?}");
    let s1 = calls.iter().find(|c| c.id == "call_plan:s1").unwrap();
    assert_eq!(s1.statuses().last().map(String::as_str), Some("completed"), "the other worker finishes");
    let plan_call = calls.iter().find(|c| c.id == "call_plan").unwrap();
    assert_eq!(plan_call.statuses().last().map(String::as_str), Some("failed"), "the plan failed");

    let last_request = mock.model_requests().into_iter().rfind(|r| r.raw_body.contains(MAIN)).unwrap();
    let result = &last_request.tool_results()[0];
    assert!(result.text.contains("s2 FAILED") && result.text.contains("s1 completed"), "{}", result.text);
    assert!(result.text.contains("failed"), "{}", result.text);

    let out = env.run(&["plans", "show", "p1", "--json"]).await;
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["plan"]["status"]["status"], "failed", "{plan:#}");
}

#[tokio::test]
async fn a_rejected_plan_s_feedback_reaches_the_model_and_nothing_runs() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    mock.enqueue_for(MAIN, propose(vec![step("s1", "Write one.txt")]));
    mock.enqueue_for(MAIN, MockReply::text(["I will revise it."]));
    let mut client = spawn_with_forms(&env).await;
    client.set_request_handler(|method, _| {
        (method == "elicitation/create").then(|| {
            Reply::Result(json!({"action": "accept", "content": {"decision": "reject", "feedback": "use two steps"}}))
        })
    });
    let session = session_in(&mut client, &env, "accept-edits").await;
    let turn = client.prompt_text(&session, MAIN).await;
    assert_eq!(turn.text(), "I will revise it.");
    let requests = mock.model_requests();
    assert_eq!(requests.len(), 2, "no worker ran");
    let result = &requests[1].tool_results()[0].text;
    assert!(result.contains("use two steps") && result.contains("propose_plan again"), "{result}");
    assert!(!env.workspace().join("one.txt").exists());
}

#[tokio::test]
async fn with_one_slot_ready_steps_run_in_plan_order() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    env.write_config("[fleet]\nmax_workers = 1\n");
    let ids = ["s1", "s2", "s3", "s4"];
    let steps = ids.iter().map(|id| step(id, &format!("Write {id}.txt"))).collect();
    mock.enqueue_for(MAIN, propose(steps));
    mock.enqueue_for(MAIN, MockReply::text(["The fleet is done."]));
    for id in ids {
        worker_writes(&mock, id, &format!("{id}.txt"), Duration::from_millis(20));
    }
    let mut client = spawn_with_forms(&env).await;
    client.set_request_handler(|method, params| {
        (method == "elicitation/create" && params["mode"] == "form")
            .then(|| Reply::Result(json!({"action": "accept", "content": {"decision": "approve", "skip": []}})))
    });
    let session = session_in(&mut client, &env, "accept-edits").await;

    let turn = client.prompt_text(&session, MAIN).await;
    assert_eq!(turn.stop_reason(), "end_turn", "{}", client.stderr());
    assert_eq!(mock.max_in_flight(), 1, "max_workers = 1 runs one worker at a time");
    // The workers' first model calls came in the plan's order.
    let order: Vec<&str> = mock
        .model_requests()
        .iter()
        .filter(|r| r.tool_results().is_empty())
        .filter_map(|r| ids.iter().copied().find(|id| r.raw_body.contains(&worker(id))))
        .collect();
    assert_eq!(order, ids, "slots go to ready steps in the plan's order");
}
