//! Controlling plans, the fleet and questions from outside the prompting editor, over the real
//! binary and the loopback mock LLM:
//!
//! - a plan approved from the CLI (`ratchet plans approve p1 --skip s2`) while the editor's
//!   permission dialog is open: the skipped step never runs, the dialog is withdrawn
//! - `ratchet jobs kill` of a streaming worker closes its model stream and fails its step
//! - `ask_human` answered from the CLI (`ratchet questions answer`) and by an autorespond rule
//! - a worker's permission question reaches the prompting editor titled with its step
//! - `session/cancel` of the prompting session cancels the fleet: running workers stop, waiting
//!   ones never start, the plan is stored as cancelled
//! - in daemon mode the fleet finishes after its window is gone

use std::time::Duration;

use serde_json::{Value, json};

use crate::fleet::{MAIN, initialize_with_forms, step, worker, worker_writes};
use crate::support::daemon::{Daemon, describe, poll_until};
use crate::support::{AcpClient, MODEL, Message, MockLlm, MockReply, Reply, TIMEOUT, TestEnv, tool_calls, within};

fn propose(steps: Vec<Value>) -> MockReply {
    MockReply::tool("call_plan", "propose_plan", json!({"goal": "Make some files", "steps": steps}))
}

/// A worker whose model streams one chunk of text and then hangs until the stream is dropped.
fn worker_stalls(mock: &MockLlm, id: &str) {
    mock.enqueue_for(&worker(id), MockReply::text(["Working on it", " and never done"]).stall_after(1));
}

/// A client with forms that approves every plan (all steps) in the form.
async fn spawn_approving(env: &TestEnv) -> AcpClient {
    let mut client = env.spawn_acp().await;
    initialize_with_forms(&mut client).await;
    approve_plans_in_forms(&mut client);
    client
}

fn approve_plans_in_forms(client: &mut AcpClient) {
    client.set_request_handler(|method, params| {
        (method == "elicitation/create" && params["mode"] == "form")
            .then(|| Reply::Result(json!({"action": "accept", "content": {"decision": "approve", "skip": []}})))
    });
}

async fn session_in(client: &mut AcpClient, env: &TestEnv, mode: &str) -> String {
    let session = client.new_session(&env.cwd()).await;
    client.set_mode(&session, mode).await;
    session
}

async fn send_prompt(client: &mut AcpClient, session: &str, text: &str) -> u64 {
    client
        .send_request("session/prompt", json!({"sessionId": session, "prompt": [{"type": "text", "text": text}]}))
        .await
}

/// Reads messages until one satisfies `pred`, answering the agent's requests as the client is
/// set up to; returns every message read, the match last. A response on the way fails the
/// test (nothing here waits for one).
async fn read_until(client: &mut AcpClient, mut pred: impl FnMut(&Message) -> bool) -> Vec<Message> {
    let mut seen = Vec::new();
    loop {
        let message = client.next_message().await;
        if let Message::Response { .. } = &message {
            panic!("a response arrived while waiting for something else: {message:?}\nso far: {seen:#?}");
        }
        let done = pred(&message);
        if let Message::Request { id, method, params } = &message {
            client.answer_request(id.clone(), method.clone(), params.clone()).await;
        }
        seen.push(message);
        if done {
            return seen;
        }
    }
}

/// Whether `m` is a `tool_call_update` of tool call `id` whose shown text contains `text`.
fn tool_call_shows(m: &Message, id: &str, text: &str) -> bool {
    let Some(u) = m.as_update() else { return false };
    u["update"]["sessionUpdate"] == "tool_call_update"
        && u["update"]["toolCallId"] == id
        && u["update"]["content"].to_string().contains(text)
}

fn updates(messages: &[Message]) -> Vec<Value> {
    messages.iter().filter_map(Message::as_update).cloned().collect()
}

/// `ratchet ARGS --json`'s stdout as JSON; the command must succeed.
async fn run_json(env: &TestEnv, args: &[&str]) -> Value {
    let out = env.run(args).await;
    assert!(out.status.success(), "`ratchet {}` failed: {}", args.join(" "), describe(&out));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("`ratchet {}`: {e}\n{}", args.join(" "), describe(&out)))
}

/// Runs `ratchet ARGS`; it must succeed.
async fn run_ok(env: &TestEnv, args: &[&str]) -> String {
    let out = env.run(args).await;
    assert!(out.status.success(), "`ratchet {}` failed: {}", args.join(" "), describe(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls `ratchet ARGS --json` until `done` holds of its output (within [`TIMEOUT`]).
async fn poll_json(env: &TestEnv, args: &[&str], what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let value = run_json(env, args).await;
        if done(&value) {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}; last: {value:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The model requests of the prompting agent, oldest first.
fn main_requests(mock: &MockLlm) -> Vec<crate::support::mock_llm::RecordedRequest> {
    mock.model_requests().into_iter().filter(|r| r.raw_body.contains(MAIN)).collect()
}

// ---------------------------------------------------------------------------------------------
// 1. Approval from the CLI, with a skipped step

#[tokio::test]
async fn a_plan_approved_from_the_cli_with_a_step_skipped_runs_the_others_and_withdraws_the_editor_s_dialog() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    mock.enqueue_for(
        MAIN,
        propose(vec![step("s1", "Write one.txt"), step("s2", "Write two.txt"), step("s3", "Write three.txt")]),
    );
    mock.enqueue_for(MAIN, MockReply::text(["Two steps done."]));
    for (id, file) in [("s1", "one.txt"), ("s2", "two.txt"), ("s3", "three.txt")] {
        worker_writes(&mock, id, file, Duration::from_millis(5));
    }
    // No forms: the plan is put to the editor as a permission request, left unanswered.
    let mut client = env.spawn_initialized().await;
    client.set_request_handler(|method, _| (method == "session/request_permission").then_some(Reply::Silence));
    let session = session_in(&mut client, &env, "accept-edits").await;

    let prompt = send_prompt(&mut client, &session, MAIN).await;
    let before = read_until(
        &mut client,
        |m| matches!(m, Message::Request { method, .. } if method == "session/request_permission"),
    )
    .await;
    let Some(Message::Request { id: ask_id, params: ask, .. }) = before.last().cloned() else { unreachable!() };
    assert_eq!(ask["sessionId"], session.as_str());
    assert_eq!(ask["toolCall"]["toolCallId"], "call_plan", "{ask:#}");
    let kinds: Vec<&Value> = ask["options"].as_array().unwrap().iter().map(|o| &o["kind"]).collect();
    assert_eq!(kinds, [&json!("allow_once"), &json!("reject_once")], "approve and reject only: {ask:#}");
    assert_eq!(mock.model_requests().len(), 1, "nothing runs before approval");

    let said = run_ok(&env, &["plans", "approve", "p1", "--skip", "s2"]).await;
    assert!(said.contains("approved plan p1") && said.contains("s2"), "{said}");

    let turn = client.finish_turn(prompt).await;
    assert_eq!(turn.stop_reason(), "end_turn", "{}", client.stderr());
    assert_eq!(turn.text(), "Two steps done.");

    // The editor's dialog was withdrawn: `$/cancel_request` for its request id.
    let withdrawn = turn.messages.iter().any(|m| {
        matches!(m, Message::Notification { method, params }
            if method == "$/cancel_request" && params["requestId"] == ask_id)
    });
    assert!(withdrawn, "no $/cancel_request for the plan's permission request {ask_id}: {:#?}", turn.messages);

    // s1 and s3 ran; s2's worker never reached the model.
    assert_eq!(std::fs::read_to_string(env.workspace().join("one.txt")).unwrap(), "s1");
    assert_eq!(std::fs::read_to_string(env.workspace().join("three.txt")).unwrap(), "s3");
    assert!(!env.workspace().join("two.txt").exists());
    let requests = mock.model_requests();
    assert!(requests.iter().all(|r| !r.raw_body.contains(&worker("s2"))), "s2's worker prompted the model");
    assert!(requests.iter().any(|r| r.raw_body.contains(&worker("s1"))));
    assert!(requests.iter().any(|r| r.raw_body.contains(&worker("s3"))));

    // The plan's last entries: s2 marked skipped, the others completed.
    let all = [updates(&before), turn.updates.clone()].concat();
    let plans: Vec<&Value> = all.iter().filter(|u| u["update"]["sessionUpdate"] == "plan").collect();
    let last = plans.last().expect("plan updates")["update"]["entries"].as_array().unwrap().clone();
    assert_eq!(last.len(), 3, "{last:#?}");
    assert!(last.iter().all(|e| e["status"] == "completed"), "{last:#?}");
    assert!(last[1]["content"].as_str().unwrap().starts_with("s2:"), "{last:#?}");
    assert!(last[1]["content"].as_str().unwrap().contains("skipped"), "{last:#?}");
    assert!(!last[0]["content"].as_str().unwrap().contains("skipped"), "{last:#?}");
    // No worker tool call for s2; s1 and s3 completed.
    let calls = tool_calls(&all);
    assert!(calls.iter().all(|c| c.id != "call_plan:s2"), "{calls:#?}");
    for s in ["s1", "s3"] {
        let c = calls.iter().find(|c| c.id == format!("call_plan:{s}")).unwrap_or_else(|| panic!("{calls:#?}"));
        assert_eq!(c.final_status(), "completed", "{c:#?}");
    }
    // The model is told s2 was skipped.
    let result = &main_requests(&mock).last().unwrap().tool_results()[0].text;
    assert!(result.contains("s2 skipped") && result.contains("s1 completed"), "{result}");

    // Stored: completed, s2 skipped, the question answered from the CLI.
    let plan = run_json(&env, &["plans", "show", "p1", "--json"]).await;
    assert_eq!(plan["plan"]["status"]["status"], "completed", "{plan:#}");
    assert_eq!(plan["plan"]["steps"][1]["status"]["status"], "skipped", "{plan:#}");
    let questions = run_json(&env, &["questions", "list", "--all", "--json"]).await;
    let approval = questions.as_array().unwrap().iter().find(|q| q["kind"] == "plan_approval").unwrap();
    assert_eq!(approval["answered_by"], "cli", "{questions:#}");
}

// ---------------------------------------------------------------------------------------------
// 2. `ratchet jobs kill` of a streaming worker

#[tokio::test]
async fn jobs_kill_of_a_streaming_worker_closes_its_stream_and_fails_its_step() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    mock.enqueue_for(MAIN, propose(vec![step("s1", "Write one.txt")]));
    mock.enqueue_for(MAIN, MockReply::text(["The worker was stopped."]));
    worker_stalls(&mock, "s1");
    let mut client = spawn_approving(&env).await;
    let session = session_in(&mut client, &env, "accept-edits").await;

    let prompt = send_prompt(&mut client, &session, MAIN).await;
    // The worker's stream is open: its first chunk shows in its tool call.
    let before = read_until(&mut client, |m| tool_call_shows(m, "call_plan:s1", "Working on it")).await;
    assert_eq!(mock.n_aborted_streams(), 0);

    let jobs = run_json(&env, &["jobs", "list", "--json"]).await;
    let jobs = jobs.as_array().unwrap();
    let turn_job = jobs.iter().find(|j| j["id"] == format!("session:{session}"));
    assert!(turn_job.is_some_and(|j| j["kind"] == "session"), "the prompting turn is a job: {jobs:#?}");
    let worker_job = jobs
        .iter()
        .find(|j| j["id"].as_str().is_some_and(|id| id.starts_with("fleet_worker:")))
        .unwrap_or_else(|| panic!("no fleet_worker job: {jobs:#?}"));
    assert_eq!(worker_job["kind"], "fleet_worker");
    assert!(worker_job["model"].as_str().is_some_and(|m| m.contains(MODEL)), "{worker_job:#}");
    assert!(worker_job["detail"].as_str().is_some_and(|d| d.contains("p1") && d.contains("s1")), "{worker_job:#}");
    let worker_id = worker_job["id"].as_str().unwrap().to_string();
    assert_eq!(worker_job["session_id"].as_str(), worker_id.strip_prefix("fleet_worker:"));

    let said = run_ok(&env, &["jobs", "kill", &worker_id]).await;
    assert!(said.contains("killed"), "{said}");
    within("the worker's model stream to close", mock.wait_for_aborted_streams(1)).await;

    let turn = client.finish_turn(prompt).await;
    assert_eq!(turn.stop_reason(), "end_turn", "killing a worker does not stop its prompting turn");
    assert_eq!(turn.text(), "The worker was stopped.");
    let all = [updates(&before), turn.updates.clone()].concat();
    let calls = tool_calls(&all);
    let s1 = calls.iter().find(|c| c.id == "call_plan:s1").unwrap();
    assert_eq!(s1.final_status(), "failed", "{s1:#?}");
    assert!(s1.text().contains("killed"), "{s1:#?}");
    let plan_call = calls.iter().find(|c| c.id == "call_plan").unwrap();
    assert_eq!(plan_call.final_status(), "failed", "{plan_call:#?}");

    let result = &main_requests(&mock).last().unwrap().tool_results()[0].text;
    assert!(result.contains("s1 FAILED") && result.contains("killed"), "{result}");
    let plan = run_json(&env, &["plans", "show", "p1", "--json"]).await;
    assert_eq!(plan["plan"]["status"]["status"], "failed", "{plan:#}");
    assert_eq!(plan["plan"]["steps"][0]["status"]["status"], "failed", "{plan:#}");
    assert!(!env.workspace().join("one.txt").exists());
    // The killed worker and the ended turn are no longer jobs.
    let jobs = run_json(&env, &["jobs", "list", "--json"]).await;
    assert!(!jobs.as_array().unwrap().iter().any(|j| j["id"] == worker_id.as_str()), "{jobs:#}");
}

// ---------------------------------------------------------------------------------------------
// 3, 4. `ask_human` answered from the CLI, and by an autorespond rule

const COLOUR: &str = "What is your favourite colour?";

fn ask_colour(mock: &MockLlm, then: &str) {
    mock.enqueue_for(MAIN, MockReply::tool("call_ask", "ask_human", json!({"question": COLOUR})));
    mock.enqueue_for(MAIN, MockReply::text([then.to_string()]));
}

#[tokio::test]
async fn ask_human_answered_from_the_cli_reaches_the_model_with_who_answered() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    ask_colour(&mock, "Blue it is.");
    // No forms: the question is not put to the editor, only queued.
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;
    let prompt = send_prompt(&mut client, &session, MAIN).await;

    let open = poll_json(&env, &["questions", "list", "--json"], "the question to be queued", |v| {
        v.as_array().is_some_and(|a| !a.is_empty())
    })
    .await;
    let open = open.as_array().unwrap();
    assert_eq!(open.len(), 1, "{open:#?}");
    assert_eq!(open[0]["kind"], "ask");
    assert_eq!(open[0]["title"], COLOUR);
    assert_eq!(open[0]["session_id"], session.as_str());
    assert!(open[0]["answer"].is_null());
    let id = open[0]["id"].as_str().unwrap().to_string();
    assert_eq!(mock.model_requests().len(), 1, "the turn waits for the answer");

    let said = run_ok(&env, &["questions", "answer", &id, "blue"]).await;
    assert!(said.contains(&id), "{said}");

    let turn = client.finish_turn(prompt).await;
    assert_eq!(turn.stop_reason(), "end_turn");
    assert_eq!(turn.text(), "Blue it is.");
    assert!(
        client.agent_requests.is_empty(),
        "nothing was put to an editor without forms: {:?}",
        client.agent_requests
    );
    let result = &mock.last_model_request().tool_results()[0];
    assert_eq!(result.call_id.as_deref(), Some("call_ask"));
    assert!(result.text.contains("blue"), "{}", result.text);
    assert!(result.text.contains("cli"), "says who answered: {}", result.text);
    let ask = turn.tool_calls().into_iter().find(|c| c.id == "call_ask").unwrap();
    assert!(ask.dump().contains(&format!("ratchet questions answer {id}")), "{ask:#?}");

    let all = run_json(&env, &["questions", "list", "--all", "--json"]).await;
    let q = all.as_array().unwrap().iter().find(|q| q["id"] == id.as_str()).unwrap();
    assert_eq!(q["answered_by"], "cli", "{q:#}");
    assert_eq!(q["answer"], json!({"type": "text", "value": "blue"}), "{q:#}");
    let still_open = run_json(&env, &["questions", "list", "--json"]).await;
    assert_eq!(still_open, json!([]), "nothing is left open");
}

#[tokio::test]
async fn ask_human_answered_by_an_autorespond_rule_names_the_rule() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    std::fs::create_dir_all(env.workspace().join(".ratchet")).unwrap();
    std::fs::write(
        env.workspace().join(".ratchet/autorespond.yaml"),
        "rules:\n  - match: \"favourite colour\"\n    action: reply\n    message: \"green\"\n",
    )
    .unwrap();
    ask_colour(&mock, "Green it is.");
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;

    let turn = client.prompt_text(&session, MAIN).await;
    assert_eq!(turn.stop_reason(), "end_turn", "{}", client.stderr());
    assert_eq!(turn.text(), "Green it is.");
    let result = &mock.last_model_request().tool_results()[0];
    assert!(result.text.contains("green"), "{}", result.text);
    assert!(
        result.text.contains("rule") && result.text.contains("favourite colour"),
        "names the rule that answered: {}",
        result.text
    );

    let all = run_json(&env, &["questions", "list", "--all", "--json"]).await;
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), 1, "{all:#?}");
    let by = all[0]["answered_by"].as_str().unwrap_or_default();
    assert!(by.starts_with("rule: ") && by.contains("favourite colour"), "{:#}", all[0]);
    assert_eq!(all[0]["answer"], json!({"type": "text", "value": "green"}));
}

// ---------------------------------------------------------------------------------------------
// 5. A worker's permission question in the prompting editor

#[tokio::test]
async fn a_worker_s_permission_question_reaches_the_prompting_editor_titled_with_its_step() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    mock.enqueue_for(MAIN, propose(vec![step("s1", "Write one.txt")]));
    mock.enqueue_for(MAIN, MockReply::text(["Done."]));
    worker_writes(&mock, "s1", "one.txt", Duration::from_millis(5));
    // Forms approve the plan; permission questions fall through to the policy, AllowOnce.
    let mut client = spawn_approving(&env).await;
    let session = session_in(&mut client, &env, "ask").await;

    let turn = client.prompt_text(&session, MAIN).await;
    assert_eq!(turn.stop_reason(), "end_turn", "{}", client.stderr());
    let asks = turn.requests("session/request_permission");
    assert_eq!(asks.len(), 1, "one question, the worker's write: {:#?}", turn.messages);
    let ask = asks[0];
    assert_eq!(ask["sessionId"], session.as_str(), "asked in the prompting session");
    let title = ask["toolCall"]["title"].as_str().unwrap_or_default();
    assert!(title.contains("[p1 s1]"), "titled with its plan and step: {ask:#}");
    assert_eq!(ask["toolCall"]["toolCallId"], "call_plan:s1", "{ask:#}");
    assert!(ask["options"].as_array().unwrap().iter().any(|o| o["kind"] == "allow_once"));

    assert_eq!(std::fs::read_to_string(env.workspace().join("one.txt")).unwrap(), "s1", "allowed, so written");
    let s1 = turn.tool_calls().into_iter().find(|c| c.id == "call_plan:s1").unwrap();
    assert_eq!(s1.final_status(), "completed", "{s1:#?}");
    // The queue's copy of the question was answered by the editor.
    let all = run_json(&env, &["questions", "list", "--all", "--json"]).await;
    let q = all.as_array().unwrap().iter().find(|q| q["kind"] == "permission").unwrap_or_else(|| panic!("{all:#}"));
    assert!(q["title"].as_str().unwrap().starts_with("[p1 s1]"), "{q:#}");
    assert_eq!(q["answered_by"], "editor", "{q:#}");
}

// ---------------------------------------------------------------------------------------------
// 6. `session/cancel` cancels the fleet

#[tokio::test]
async fn session_cancel_of_the_prompting_session_cancels_the_fleet() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    // Two of s1, s2, s4 stream for ever; the third waits for a free worker; s3 waits for s1.
    env.write_config("[fleet]\nmax_workers = 2\n");
    let s3 = json!({"id": "s3", "description": "Write three.txt", "complexity": "simple", "depends_on": ["s1"]});
    mock.enqueue_for(
        MAIN,
        propose(vec![step("s1", "Write one.txt"), step("s2", "Write two.txt"), s3, step("s4", "Write four.txt")]),
    );
    for s in ["s1", "s2", "s4"] {
        worker_stalls(&mock, s);
    }
    worker_writes(&mock, "s3", "three.txt", Duration::from_millis(5));
    let mut client = spawn_approving(&env).await;
    let session = session_in(&mut client, &env, "accept-edits").await;

    let prompt = send_prompt(&mut client, &session, MAIN).await;
    let mut streaming = std::collections::BTreeSet::new();
    let before = read_until(&mut client, |m| {
        for s in ["s1", "s2", "s4"] {
            if tool_call_shows(m, &format!("call_plan:{s}"), "Working on it") {
                streaming.insert(s);
            }
        }
        streaming.len() == 2
    })
    .await;
    let waiting = ["s1", "s2", "s4"].into_iter().find(|s| !streaming.contains(s)).unwrap();
    client.cancel(&session).await;

    let turn = client.finish_turn(prompt).await;
    assert_eq!(turn.stop_reason(), "cancelled");
    within("both workers' model streams to close", mock.wait_for_aborted_streams(2)).await;
    assert_eq!(main_requests(&mock).len(), 1, "the model is not called after the cancel");
    for never in [waiting, "s3"] {
        let prompted = mock.model_requests().iter().any(|r| r.raw_body.contains(&worker(never)));
        assert!(!prompted, "{never}'s worker never started");
    }

    let all = [updates(&before), turn.updates.clone()].concat();
    let calls = tool_calls(&all);
    for s in ["s1", "s2", "s4"] {
        let c = calls.iter().find(|c| c.id == format!("call_plan:{s}")).unwrap_or_else(|| panic!("{calls:#?}"));
        assert_eq!(c.final_status(), "failed", "{c:#?}");
        assert!(c.text().contains("cancelled"), "{c:#?}");
    }
    assert!(calls.iter().all(|c| c.id != "call_plan:s3"), "no worker for s3: {calls:#?}");
    let plan = run_json(&env, &["plans", "show", "p1", "--json"]).await;
    assert_eq!(plan["plan"]["status"]["status"], "cancelled", "{plan:#}");
    let status_of = |id: &str| {
        let steps = plan["plan"]["steps"].as_array().unwrap();
        steps.iter().find(|s| s["id"] == id).unwrap()["status"].clone()
    };
    for s in &streaming {
        assert_eq!(status_of(s), json!({"status": "failed", "reason": "cancelled"}), "{plan:#}");
    }
    for s in [waiting, "s3"] {
        assert_eq!(status_of(s)["status"], "pending", "a step that never started stays pending: {plan:#}");
    }
    assert!(!env.workspace().join("three.txt").exists());
    let jobs = run_json(&env, &["jobs", "list", "--json"]).await;
    assert_eq!(jobs, json!([]), "no job is left running");
}

// ---------------------------------------------------------------------------------------------
// 7. Daemon mode: the fleet outlives its window

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn in_daemon_mode_the_fleet_finishes_after_its_window_is_killed() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    mock.enqueue_for(MAIN, propose(vec![step("s1", "Write one.txt"), step("s2", "Write two.txt")]));
    mock.enqueue_for(MAIN, MockReply::text(["The fleet is done."]));
    // Slow model calls, so the workers are still running when the window goes.
    for (id, file) in [("s1", "one.txt"), ("s2", "two.txt")] {
        worker_writes(&mock, id, file, Duration::from_millis(300));
    }
    let daemon = Daemon::start(&env).await;
    let mut window = env.spawn_acp().await;
    initialize_with_forms(&mut window).await;
    approve_plans_in_forms(&mut window);
    poll_until("the window to serve through the daemon", || window.stderr().contains("through the daemon")).await;
    let session = session_in(&mut window, &env, "accept-edits").await;

    send_prompt(&mut window, &session, MAIN).await;
    let seen = read_until(&mut window, |m| tool_call_shows(m, "call_plan:s1", "running on")).await;
    assert!(
        seen.iter().any(|m| matches!(m, Message::Request { method, .. } if method == "elicitation/create")),
        "the plan was approved in the window's form"
    );
    assert!(!env.workspace().join("one.txt").exists(), "the worker is still running");
    window.kill9().await;

    let plan = poll_json(&env, &["plans", "show", "p1", "--json"], "the plan to end in the daemon", |p| {
        !matches!(p["plan"]["status"]["status"].as_str(), Some("executing" | "approved" | "proposed"))
    })
    .await;
    assert_eq!(plan["plan"]["status"]["status"], "completed", "{plan:#}\ndaemon log:\n{}", daemon.log());
    for (file, content) in [("one.txt", "s1"), ("two.txt", "s2")] {
        assert_eq!(std::fs::read_to_string(env.workspace().join(file)).unwrap(), content);
    }
    // The prompting turn went on to the model's last call, in the daemon.
    poll_until("the model's last call", || {
        main_requests(&mock).last().is_some_and(|r| r.tool_results().iter().any(|t| t.text.contains("s2 completed")))
    })
    .await;
    let jobs = poll_json(&env, &["jobs", "list", "--json"], "the turn's job to end", |j| j == &json!([])).await;
    assert_eq!(jobs, json!([]));
}
