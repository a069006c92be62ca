//! Teams over the real binary and the loopback mock LLM, which answers each member by its
//! role prompt (only that member's requests contain it): the built-in `code-gen` team
//! finishing through the blackboard, a team in the daemon outliving the command that started
//! it, steer and message reaching members as their next user message, a killed member's
//! stream stopping, and members' permission questions labelled in `ratchet questions list`.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::daemon::{Daemon, describe, text};
use crate::support::{MockLlm, MockReply, OPENAI_KEY, TestEnv};

const ARCHITECT: &str = "You are the architect of a code-generation team";
const CODER: &str = "You are the coder of a code-generation team";
const REVIEWER: &str = "You are the reviewer of a code-generation team";
/// Markers of the two-member team `pair` (`pair_team`).
const ALPHA: &str = "ALPHA-ROLE: you lead";
const BETA: &str = "BETA-ROLE: you follow";

/// How long members' first model calls take, so they overlap.
const OVERLAP: Duration = Duration::from_millis(400);

fn write(mock: &MockLlm, marker: &str, id: &str, section: &str, key: &str, value: &str, revision: Option<u64>) {
    let mut args = json!({"section": section, "key": key, "value": value});
    if let Some(r) = revision {
        args["revision"] = json!(r);
    }
    mock.enqueue_for(marker, MockReply::tool(id, "blackboard_write", args));
}

fn send(mock: &MockLlm, marker: &str, id: &str, to: &str, content: &str) {
    mock.enqueue_for(marker, MockReply::tool(id, "send_message", json!({"to": to, "content": content})));
}

fn say(mock: &MockLlm, marker: &str, text: &str) {
    mock.enqueue_for(marker, MockReply::text([text]));
}

/// `.ratchet/teams/pair.yaml` in the workspace: `alpha` and `beta`.
fn pair_team(env: &TestEnv, extra: &str) {
    let dir = env.workspace().join(".ratchet/teams");
    std::fs::create_dir_all(&dir).unwrap();
    let yaml = format!(
        "name: pair\nagents:\n  - name: alpha\n    role: lead\n    system_prompt: \"{ALPHA}\"\n  - name: beta\n    \
         role: follower\n    system_prompt: \"{BETA}\"\ntimeout: 60s\n{extra}"
    );
    std::fs::write(dir.join("pair.yaml"), yaml).unwrap();
}

async fn show(env: &TestEnv, id: &str) -> Value {
    let out = env.run(&["team", "show", id, "--json"]).await;
    assert!(out.status.success(), "{}", describe(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", describe(&out)))
}

fn member<'a>(view: &'a Value, name: &str) -> &'a Value {
    view["members"].as_array().unwrap().iter().find(|m| m["name"] == name).unwrap_or_else(|| panic!("{view:#}"))
}

fn entry<'a>(view: &'a Value, section: &str, key: &str) -> &'a Value {
    let board = view["blackboard"].as_array().unwrap();
    board.iter().find(|e| e["section"] == section && e["key"] == key).unwrap_or_else(|| panic!("{view:#}"))
}

async fn wait_ended(env: &TestEnv, id: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..150 {
        last = show(env, id).await;
        if last["team"]["status"] != "running" {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("team {id} still running: {last:#}");
}

/// The index of the first model request containing every one of `parts`.
fn first_with(mock: &MockLlm, parts: &[&str]) -> usize {
    mock.model_requests()
        .iter()
        .position(|r| parts.iter().all(|p| r.raw_body.contains(p)))
        .unwrap_or_else(|| panic!("no request contains {parts:?}"))
}

#[tokio::test]
async fn the_builtin_code_gen_team_finishes_through_the_blackboard_retrying_a_conflict() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    // Turn 1 of each member on the task, at the same time.
    write(&mock, ARCHITECT, "a1", "design", "plan", "hello.txt says hi", None);
    mock.enqueue_for(CODER, MockReply::text(["Waiting for the design."]).delay(OVERLAP));
    mock.enqueue_for(
        REVIEWER,
        MockReply::tool("r1", "blackboard_write", json!({"section": "status", "key": "reviewer", "value": "waiting"}))
            .delay(OVERLAP),
    );
    send(&mock, ARCHITECT, "a2", "coder", "design ready");
    write(&mock, ARCHITECT, "a3", "status", "architect", "done", None);
    say(&mock, ARCHITECT, &format!("Design written (key {OPENAI_KEY})."));
    say(&mock, REVIEWER, "Waiting for the coder.");
    // The coder's turn on the architect's message.
    mock.enqueue_for(CODER, MockReply::tool("c1", "blackboard_read", json!({"section": "design"})));
    send(&mock, CODER, "c2", "reviewer", "implemented hello.txt");
    write(&mock, CODER, "c3", "status", "coder", "done", None);
    say(&mock, CODER, "Implemented.");
    // The reviewer's turn on the coder's message: a stale write (no revision) conflicts, the
    // retry with the current revision lands.
    write(&mock, REVIEWER, "r2", "status", "reviewer", "approved", None);
    write(&mock, REVIEWER, "r3", "status", "reviewer", "approved", Some(1));
    say(&mock, REVIEWER, "Approved.");

    let ws = env.cwd();
    let out = env.run(&["team", "start", "code-gen", "Write hello.txt", "--cwd", &ws]).await;
    assert!(out.status.success(), "{}", describe(&out));
    let id = text(&out.stdout).lines().next().unwrap_or("").to_string();
    assert_eq!(id, "t1", "{}", describe(&out));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("architect message: to coder: design ready"), "{stdout}");

    let view = show(&env, "t1").await;
    assert_eq!(view["team"]["status"], "completed", "{view:#}");
    for (name, turns) in [("architect", 1), ("coder", 2), ("reviewer", 2)] {
        assert_eq!(member(&view, name)["status"], "done", "{view:#}");
        assert_eq!(member(&view, name)["turns"], turns, "{name}: {view:#}");
    }
    assert_eq!(entry(&view, "design", "plan")["author"], "architect");
    let status = entry(&view, "status", "reviewer");
    assert_eq!((status["value"].as_str(), status["revision"].as_u64()), (Some("approved"), Some(2)), "{view:#}");
    assert_eq!(entry(&view, "status", "coder")["value"], "done");

    // Every member started on the task, at the same time.
    assert!(mock.max_in_flight() >= 2, "members run concurrently");
    for marker in [ARCHITECT, CODER, REVIEWER] {
        let first = &mock.model_requests()[first_with(&mock, &[marker])];
        assert_eq!(first.conversation().first().map(|(_, t)| t.as_str()), Some("Write hello.txt"));
    }
    // The coder's second turn began on the architect's message, after it was sent.
    let sent = first_with(&mock, &[ARCHITECT, "delivered to coder"]);
    let woke = first_with(&mock, &[CODER, "[message from architect] design ready"]);
    assert!(woke > sent, "the message starts the coder's next turn");
    // The reviewer saw the conflict with the current entry, then retried.
    let conflict = mock
        .model_requests()
        .into_iter()
        .filter(|r| r.raw_body.contains(REVIEWER))
        .flat_map(|r| r.tool_results())
        .find(|t| t.text.contains("conflict"))
        .expect("the stale write conflicts");
    assert!(conflict.text.contains("\"revision\": 1") && conflict.text.contains("waiting"), "{}", conflict.text);

    let transcript = std::fs::read_to_string(env.ratchet_home().join("transcripts/t1.md")).expect("transcript");
    for part in [
        "Write hello.txt",
        "architect → coder: design ready",
        "reviewer wrote status/reviewer = approved (revision 2)",
        "Team t1 completed",
    ] {
        assert!(transcript.contains(part), "{part:?} missing from:\n{transcript}");
    }
    assert!(!transcript.contains(OPENAI_KEY), "secrets are redacted:\n{transcript}");
}

#[tokio::test]
async fn a_team_in_the_daemon_outlives_its_start_and_takes_steer_and_message_as_next_turns() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    pair_team(&env, "");
    let daemon = Daemon::start(&env).await;
    let slow = Duration::from_millis(2500);
    mock.enqueue_for(ALPHA, MockReply::text(["alpha first"]).delay(slow));
    mock.enqueue_for(BETA, MockReply::text(["beta first"]).delay(slow));
    write(&mock, ALPHA, "a1", "status", "alpha", "done", None);
    say(&mock, ALPHA, "alpha done");
    write(&mock, BETA, "b1", "status", "beta", "done", None);
    say(&mock, BETA, "beta done");

    let ws = env.cwd();
    let out = env.run(&["team", "start", "pair", "Pair up", "--cwd", &ws, "--json"]).await;
    assert!(out.status.success(), "{}", describe(&out));
    let started: Value = serde_json::from_slice(&out.stdout).unwrap();
    // The command has exited; the team runs on in the daemon.
    assert_eq!(started["pid"], json!(daemon.pid().unwrap()));
    assert_eq!(show(&env, "t1").await["team"]["status"], "running");
    mock.wait_for_requests(2).await;
    for args in [vec!["team", "steer", "t1", "use tabs"], vec!["team", "message", "t1", "beta", "hello beta"]] {
        let out = env.run(&args).await;
        assert!(out.status.success(), "{}", describe(&out));
    }
    let view = wait_ended(&env, "t1").await;
    assert_eq!(view["team"]["status"], "completed", "{view:#}");
    assert_eq!(member(&view, "alpha")["turns"], 2);
    // Their next user message is the directive (and beta's message), nothing else.
    let next_user = |marker: &str| {
        let r = &mock.model_requests()[first_with(&mock, &[marker, "use tabs"])];
        r.conversation().into_iter().rfind(|(role, _)| role == "user").unwrap().1
    };
    assert_eq!(next_user(ALPHA), "[directive from user] use tabs");
    assert_eq!(next_user(BETA), "[directive from user] use tabs\n\n[message from user] hello beta");
    let events = env.run(&["team", "attach", "t1"]).await;
    assert!(text(&events.stdout).contains("team control: directive to alpha, beta: use tabs"), "{}", describe(&events));
}

#[tokio::test]
async fn killing_a_team_agent_stops_its_stream_and_the_others_finish() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    pair_team(&env, "");
    let _daemon = Daemon::start(&env).await;
    mock.enqueue_for(ALPHA, MockReply::text(["thinking very hard", " and longer"]).stall_after(1));
    let done = json!({"section": "status", "key": "beta", "value": "done"});
    mock.enqueue_for(BETA, MockReply::tool("b1", "blackboard_write", done).delay(Duration::from_millis(1500)));
    say(&mock, BETA, "beta done");
    let ws = env.cwd();
    let out = env.run(&["team", "start", "pair", "Pair up", "--cwd", &ws]).await;
    assert!(out.status.success(), "{}", describe(&out));
    mock.wait_for_requests(2).await;

    let jobs = env.run(&["jobs", "list", "--json"]).await;
    let jobs: Value = serde_json::from_slice(&jobs.stdout).unwrap();
    let ids: Vec<&str> = jobs.as_array().unwrap().iter().filter_map(|j| j["id"].as_str()).collect();
    assert!(ids.contains(&"team_agent:t1.alpha") && ids.contains(&"team_agent:t1.beta"), "{ids:?}");
    let kill = env.run(&["jobs", "kill", "team_agent:t1.alpha"]).await;
    assert!(kill.status.success(), "{}", describe(&kill));
    mock.wait_for_aborted_streams(1).await;

    let view = wait_ended(&env, "t1").await;
    assert_eq!(member(&view, "alpha")["status"], "killed", "{view:#}");
    assert_eq!(member(&view, "beta")["status"], "done", "{view:#}");
    assert_eq!(view["team"]["status"], "incomplete", "{view:#}");
    // Alpha made no model call after its kill.
    let alpha_calls = mock.model_requests().iter().filter(|r| r.raw_body.contains(ALPHA)).count();
    assert_eq!(alpha_calls, 1);
}

#[tokio::test]
async fn a_members_permission_question_is_labelled_with_its_team_and_name() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    pair_team(&env, "");
    mock.enqueue_for(ALPHA, MockReply::tool("w1", "write_file", json!({"path": "alpha.txt", "content": "a"})));
    write(&mock, ALPHA, "a1", "status", "alpha", "done", None);
    say(&mock, ALPHA, "alpha wrote its file");
    write(&mock, BETA, "b1", "status", "beta", "done", None);
    say(&mock, BETA, "beta done");
    // In the foreground: this command runs the team until it ends.
    let ws = env.cwd();
    let mut start = env.command(&["team", "start", "pair", "Pair up", "--cwd", &ws]);
    start.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let child = start.spawn().unwrap();

    let mut question = Value::Null;
    wait_for_question(&env, &mut question).await;
    assert!(question["title"].as_str().unwrap().starts_with("[team t1 alpha] "), "{question:#}");
    assert_eq!(question["kind"], "permission");
    let id = question["id"].as_str().unwrap().to_string();
    let answer = env.run(&["questions", "answer", &id, "yes"]).await;
    assert!(answer.status.success(), "{}", describe(&answer));

    let out = crate::support::within("the team to end", child.wait_with_output()).await.unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(std::fs::read_to_string(env.workspace().join("alpha.txt")).unwrap(), "a");
    assert_eq!(show(&env, "t1").await["team"]["status"], "completed");
}

/// Waits until `ratchet questions list --json` shows an open question; puts it in `found`.
async fn wait_for_question(env: &TestEnv, found: &mut Value) {
    // Bounded by time, not tries: on a loaded machine each CLI run takes a while.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        let out = env.run(&["questions", "list", "--json"]).await;
        let list: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        if let Some(q) = list.as_array().and_then(|a| a.first()) {
            *found = q.clone();
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no question was asked");
}

#[tokio::test]
async fn slash_team_in_a_chat_shows_each_member_as_a_live_tool_call_and_answers_with_the_summary() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    pair_team(&env, "");
    mock.enqueue_for(
        ALPHA,
        MockReply::tool("a1", "blackboard_write", json!({"section": "status", "key": "alpha", "value": "done"}))
            .delay(OVERLAP),
    );
    say(&mock, ALPHA, "alpha finished");
    mock.enqueue_for(
        BETA,
        MockReply::tool("b1", "blackboard_write", json!({"section": "status", "key": "beta", "value": "done"}))
            .delay(OVERLAP),
    );
    say(&mock, BETA, "beta finished");
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;

    let turn = client.prompt_text(&session, "/team pair Pair up").await;
    assert_eq!(turn.stop_reason(), "end_turn", "{}", client.stderr());
    assert!(turn.text().contains("Team t1 (pair) completed."), "{}", turn.text());
    let calls = turn.tool_calls();
    for name in ["alpha", "beta"] {
        let call = calls.iter().find(|c| c.id == format!("team-t1-{name}")).unwrap_or_else(|| panic!("{calls:#?}"));
        let statuses = call.statuses();
        assert!(statuses.iter().any(|s| s == "in_progress"), "{call:#?}");
        assert_eq!(call.final_status(), "completed", "{call:#?}");
        assert!(call.text().contains(&format!("{name} finished")), "live output: {call:#?}");
    }
    // Both members were running before either ended.
    assert_eq!(mock.max_in_flight(), 2);
    // The members are the chat session's children; no model call for the chat itself.
    assert!(mock.model_requests().iter().all(|r| r.raw_body.contains(ALPHA) || r.raw_body.contains(BETA)));
}

#[tokio::test]
async fn members_are_added_from_definitions_removed_mid_turn_and_the_team_renamed() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    pair_team(&env, "");
    const HELPER: &str = "HELPER-ROLE: you help";
    let agents = env.workspace().join(".ratchet/agents");
    std::fs::create_dir_all(&agents).unwrap();
    std::fs::write(agents.join("helper.yaml"), format!("description: helps\nsystem_prompt: \"{HELPER}\"\n")).unwrap();
    let _daemon = Daemon::start(&env).await;
    let done = |who: &str| json!({"section": "status", "key": who, "value": "done"});
    mock.enqueue_for(
        ALPHA,
        MockReply::tool("a1", "blackboard_write", done("alpha")).delay(Duration::from_millis(2000)),
    );
    say(&mock, ALPHA, "alpha done");
    mock.enqueue_for(BETA, MockReply::text(["beta is slow", " and slower"]).stall_after(1));
    mock.enqueue_for(HELPER, MockReply::tool("h1", "blackboard_write", done("helper")));
    say(&mock, HELPER, "helper done");
    let ws = env.cwd();
    let out = env.run(&["team", "start", "pair", "Pair up", "--cwd", &ws]).await;
    assert!(out.status.success(), "{}", describe(&out));
    mock.wait_for_requests(2).await;

    let missing = env.run(&["team", "add", "t1", "ghost"]).await;
    assert!(!missing.status.success() && text(&missing.stderr).contains("ghost"), "{}", describe(&missing));
    for args in
        [vec!["team", "add", "t1", "helper"], vec!["team", "remove", "t1", "beta"], vec!["team", "rename", "t1", "duo"]]
    {
        let out = env.run(&args).await;
        assert!(out.status.success(), "{}", describe(&out));
    }
    mock.wait_for_aborted_streams(1).await;
    let view = wait_ended(&env, "t1").await;
    assert_eq!(view["team"]["name"], "duo");
    assert_eq!(member(&view, "beta")["status"], "removed", "{view:#}");
    assert_eq!(member(&view, "helper")["status"], "done", "{view:#}");
    assert_eq!(member(&view, "alpha")["status"], "done", "{view:#}");
    assert_eq!(view["team"]["status"], "completed", "a removed member does not hold the team back: {view:#}");
    let helper = &mock.model_requests()[first_with(&mock, &[HELPER])];
    assert_eq!(helper.conversation().first().map(|(_, t)| t.as_str()), Some("Pair up"), "it starts on the task");
    let list = env.run(&["team", "list"]).await;
    assert!(text(&list.stdout).contains("duo"), "{}", describe(&list));
}

#[tokio::test]
async fn a_project_start_runs_its_teams_in_the_daemon_and_its_pause_and_kill_reach_the_members() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    pair_team(&env, "");
    let ws = env.workspace();
    std::fs::create_dir_all(ws.join("app")).unwrap();
    let projects = ws.join(".ratchet/projects");
    std::fs::create_dir_all(&projects).unwrap();
    std::fs::write(projects.join("web.yaml"), "workdir: app\nteams: [pair]\ntask: Build the page\n").unwrap();
    let _daemon = Daemon::start(&env).await;
    // Both members stay in their first model call until the kill.
    mock.enqueue_for(ALPHA, MockReply::text(["alpha works", " on"]).stall_after(1));
    mock.enqueue_for(BETA, MockReply::text(["beta works", " on"]).stall_after(1));
    let cwd = env.cwd();
    let out = env.run(&["project", "start", "web", "--cwd", &cwd]).await;
    assert!(out.status.success(), "{}", describe(&out));
    assert!(text(&out.stderr).contains("runs in the daemon"), "{}", describe(&out));
    mock.wait_for_requests(2).await;
    let first = mock.model_requests();
    assert!(first.iter().all(|r| r.raw_body.contains("Build the page")), "each member starts with the task");

    let status = env.run(&["project", "status", "web", "--json"]).await;
    let status: Value = serde_json::from_slice(&status.stdout).unwrap();
    let jobs: Vec<&str> = status["jobs"].as_array().unwrap().iter().filter_map(|j| j["id"].as_str()).collect();
    assert!(jobs.contains(&"team_agent:t1.alpha") && jobs.contains(&"team_agent:t1.beta"), "{status:#}");

    let paused = env.run(&["project", "pause", "web"]).await;
    assert!(paused.status.success(), "{}", describe(&paused));
    assert!(text(&paused.stdout).contains("team_agent:t1.alpha"), "{}", describe(&paused));
    let killed = env.run(&["project", "kill", "web"]).await;
    assert!(killed.status.success(), "{}", describe(&killed));
    mock.wait_for_aborted_streams(2).await;
    let view = wait_ended(&env, "t1").await;
    assert_eq!(member(&view, "alpha")["status"], "killed", "{view:#}");
    assert_eq!(member(&view, "beta")["status"], "killed", "{view:#}");
    // The team works in the project's workdir.
    assert!(view["team"]["cwd"].as_str().unwrap().ends_with("app"), "{view:#}");
}
