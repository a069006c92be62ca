//! The task tracker and projects over the real binary: `ratchet tasks …` (a second claim
//! refused, `--json`), the `task_*` tools through the mock LLM (a claim refused while someone
//! holds the task; a turn's claim lapsing when the turn ends), and `ratchet project …` (list
//! with a broken file named, start, status, pause/resume/kill reaching an attached job).

use std::time::Duration;

use ratchet::orchestra::db::Db;
use ratchet::orchestra::jobs::{JobId, JobKind, JobRegistry, JobSpec};
use ratchet::orchestra::projects::Projects;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::support::{MockLlm, MockReply, TestEnv};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn describe(out: &std::process::Output) -> String {
    format!("status: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}", out.status, text(&out.stdout), text(&out.stderr))
}

/// Runs `ratchet ARGS` and expects success.
async fn ok(env: &TestEnv, args: &[&str]) -> String {
    let out = env.run(args).await;
    assert!(out.status.success(), "`ratchet {}` failed:\n{}", args.join(" "), describe(&out));
    text(&out.stdout)
}

/// Runs `ratchet ARGS`, expects failure, returns its stderr.
async fn refused(env: &TestEnv, args: &[&str]) -> String {
    let out = env.run(args).await;
    assert!(!out.status.success(), "`ratchet {}` should fail:\n{}", args.join(" "), describe(&out));
    text(&out.stderr)
}

async fn task_json(env: &TestEnv, id: &str) -> Value {
    serde_json::from_str(&ok(env, &["tasks", "show", id, "--json"]).await).expect("task JSON")
}

#[tokio::test]
async fn a_claimed_task_refuses_a_second_claim_from_the_cli_and_lists_as_json() {
    let env = TestEnv::new();
    let made = ok(&env, &["tasks", "create", "Write the parser", "--description", "In src/parse.rs"]).await;
    assert!(made.contains("created task t1"), "{made}");
    ok(&env, &["tasks", "create", "Write the docs", "--project", "web"]).await;
    let claimed = ok(&env, &["tasks", "claim", "t1", "--as", "alice"]).await;
    assert!(claimed.contains("alice holds task t1"), "{claimed}");
    let err = refused(&env, &["tasks", "claim", "t1", "--as", "bob"]).await;
    assert!(err.contains("task t1 is already claimed by alice"), "{err}");

    let listed: Value = serde_json::from_str(&ok(&env, &["tasks", "list", "--json"]).await).unwrap();
    let tasks = listed.as_array().expect("an array");
    assert_eq!(tasks.len(), 2);
    assert_eq!((tasks[0]["id"].as_str(), tasks[0]["status"].as_str()), (Some("t1"), Some("in_progress")));
    assert_eq!(tasks[0]["claimed_by"], "alice");
    assert_eq!(tasks[0]["description"], "In src/parse.rs");
    assert_eq!((tasks[1]["status"].as_str(), tasks[1]["project"].as_str()), (Some("open"), Some("web")));
    let web: Value = serde_json::from_str(&ok(&env, &["tasks", "list", "--project", "web", "--json"]).await).unwrap();
    assert_eq!(web.as_array().map(Vec::len), Some(1));

    let table = ok(&env, &["tasks", "list", "--status", "in_progress"]).await;
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2, "a header and t1: {table}");
    assert!(lines[1].starts_with("t1") && lines[1].contains("alice") && lines[1].contains("Write the parser"));

    ok(&env, &["tasks", "update", "t1", "--status", "done", "--notes", "parser merged"]).await;
    let t1 = task_json(&env, "t1").await;
    assert_eq!(t1["status"], "done");
    assert_eq!(t1["notes"], "[cli] parser merged");
    let shown = ok(&env, &["tasks", "show", "t1"]).await;
    assert!(shown.contains("claimed by: alice") && shown.contains("parser merged"), "{shown}");
    let err = refused(&env, &["tasks", "update", "t1", "--status", "later"]).await;
    assert!(err.contains("not a task status"), "{err}");
    let err = refused(&env, &["tasks", "show", "t9"]).await;
    assert!(err.contains("there is no task \"t9\""), "{err}");
}

#[tokio::test]
async fn the_task_claim_tool_is_refused_while_someone_holds_the_task_and_a_turns_claim_lapses_with_it() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    ok(&env, &["tasks", "create", "Held task"]).await;
    ok(&env, &["tasks", "create", "Free task"]).await;
    ok(&env, &["tasks", "claim", "t1", "--as", "alice"]).await;

    const MAIN: &str = "Pick up some work";
    mock.enqueue_for(MAIN, MockReply::tool("call_1", "task_claim", json!({"id": "t1"})));
    mock.enqueue_for(MAIN, MockReply::tool("call_2", "task_claim", json!({"id": "t2"})));
    mock.enqueue_for(
        MAIN,
        MockReply::tool("call_3", "task_create", json!({"title": "Follow-up", "description": "found while on t2"})),
    );
    mock.enqueue_for(MAIN, MockReply::tool("call_4", "task_list", json!({"claimed": true})));
    mock.enqueue_for(MAIN, MockReply::text(["I took t2."]));
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;
    let turn = client.prompt_text(&session, MAIN).await;
    assert_eq!(turn.stop_reason(), "end_turn", "{}", client.stderr());
    assert_eq!(turn.text(), "I took t2.");

    let requests = mock.model_requests();
    let result = |i: usize| requests[i].tool_results().last().map(|r| r.text.clone()).unwrap_or_default();
    assert!(result(1).contains("task t1 is already claimed by alice"), "the second claim is refused: {}", result(1));
    assert!(result(2).contains("You hold task t2"), "{}", result(2));
    assert!(result(3).contains("Created task t3"), "{}", result(3));
    let listed = result(4);
    assert!(listed.contains("t1 [in_progress] claimed by alice"), "{listed}");
    assert!(listed.contains(&format!("t2 [in_progress] claimed by session:{session}")), "{listed}");
    let refused_call = turn.tool_calls().into_iter().find(|c| c.id == "call_1").unwrap();
    assert_eq!(refused_call.statuses().last().map(String::as_str), Some("failed"), "{refused_call:#?}");

    let t2 = task_json(&env, "t2").await;
    assert_eq!(t2["claimed_by"], format!("session:{session}"), "held by the turn's job");
    assert_eq!(task_json(&env, "t3").await["created_by"], format!("session:{session}"));
    // The turn ended, so its job did, and its claim lapsed: a person takes the task over.
    let mut taken = None;
    for _ in 0..50 {
        let out = env.run(&["tasks", "claim", "t2", "--as", "bob"]).await;
        if out.status.success() {
            taken = Some(out);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let taken = taken.expect("the lapsed claim is released");
    assert!(text(&taken.stderr).contains(&format!("released the claim of session:{session}")), "{}", describe(&taken));
    assert!(task_json(&env, "t2").await["notes"].as_str().unwrap().contains("no longer runs"));
}

fn write(path: std::path::PathBuf, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[tokio::test]
async fn projects_list_start_pause_resume_and_kill_and_a_broken_file_is_named_and_skipped() {
    let env = TestEnv::new();
    let ws = env.workspace();
    let cwd = ws.to_str().unwrap();
    std::fs::create_dir_all(ws.join("app")).unwrap();
    write(ws.join(".ratchet/projects/web.yaml"), "workdir: app\npaths: [shared]\nteams: [code-gen]\n");
    write(ws.join(".ratchet/projects/broken.yaml"), "teams: [unclosed\n");

    let out = env.run(&["project", "list", "--cwd", cwd]).await;
    assert!(out.status.success(), "{}", describe(&out));
    let (listed, err) = (text(&out.stdout), text(&out.stderr));
    assert!(err.contains("skipped") && err.contains("broken.yaml"), "the broken file is named: {err}");
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 2, "a header and web: {listed}");
    assert!(lines[1].starts_with("web") && lines[1].contains("not started") && lines[1].contains("code-gen"));

    let out = env.run(&["project", "start", "web", "--cwd", cwd]).await;
    assert!(out.status.success(), "{}", describe(&out));
    let started = text(&out.stdout);
    assert!(started.contains("project web is running"), "{started}");
    let allowed = format!("{}, {}", ws.join("app").display(), ws.join("shared").display());
    assert!(started.contains(&allowed), "the allow-list: {started}");
    assert!(started.contains("team code-gen: task no task given"), "{started}");
    assert!(
        text(&out.stderr).contains("team code-gen not started: it has no task"),
        "says what it did not start and why: {}",
        describe(&out)
    );
    let err = refused(&env, &["project", "start", "web", "--cwd", cwd]).await;
    assert!(err.contains("already running"), "{err}");

    // A job of "another process" (this test) attached to the project, as a team start would.
    let db = Db::open_in(&env.ratchet_home()).unwrap();
    let jobs = JobRegistry::new(db.clone(), CancellationToken::new());
    let mut spec = JobSpec::new(JobKind::TeamAgent, "web-coder");
    spec.pausable = true;
    let job = jobs.register(spec).await.unwrap();
    Projects::new(db, jobs.clone()).attach_job("web", &JobId::parse("team_agent:web-coder").unwrap()).await.unwrap();
    ok(&env, &["tasks", "create", "Login form", "--project", "web"]).await;

    let paused = ok(&env, &["project", "pause", "web"]).await;
    assert!(paused.contains("project web paused") && paused.contains("team_agent:web-coder: requested"), "{paused}");
    let mut held = job.paused();
    crate::support::within("the job to pause", held.wait_for(|p| *p)).await.unwrap();
    let err = refused(&env, &["tasks", "claim", "t1", "--as", "alice"]).await;
    assert!(err.contains("project web is paused") && err.contains("ratchet project resume web"), "{err}");
    let status: Value = serde_json::from_str(&ok(&env, &["project", "status", "web", "--json"]).await).unwrap();
    assert_eq!(status["project"]["status"], "paused");
    assert_eq!(status["jobs"][0], json!({"id": "team_agent:web-coder", "state": "paused"}));
    assert_eq!(status["tasks"][0]["title"], "Login form");

    ok(&env, &["project", "resume", "web"]).await;
    crate::support::within("the job to resume", held.wait_for(|p| !*p)).await.unwrap();
    ok(&env, &["tasks", "claim", "t1", "--as", "alice"]).await;
    let shown = ok(&env, &["project", "status", "web"]).await;
    assert!(shown.contains("project web  running") && shown.contains("team_agent:web-coder  running"), "{shown}");
    assert!(shown.contains("tasks: 1 in_progress"), "{shown}");

    ok(&env, &["project", "kill", "web"]).await;
    crate::support::within("the job to be killed", job.token().cancelled()).await;
    assert!(job.killed());
    let listed: Value = serde_json::from_str(&ok(&env, &["project", "list", "--cwd", cwd, "--json"]).await).unwrap();
    assert_eq!(listed["projects"][0]["status"], "killed");
    assert!(listed["skipped"][0]["source"].as_str().unwrap().ends_with("broken.yaml"));
    let err = refused(&env, &["project", "resume", "web"]).await;
    assert!(err.contains("project web is killed"), "{err}");
    ok(&env, &["project", "start", "web", "--cwd", cwd]).await;
    let err = refused(&env, &["project", "start", "nope", "--cwd", cwd]).await;
    assert!(err.contains("there is no project \"nope\"") && err.contains("web"), "{err}");
}

#[tokio::test]
async fn an_approved_plan_shows_a_task_per_step_that_follows_the_steps() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    const MAIN: &str = "Plan the two steps";
    let plan = json!({"goal": "Tidy up", "steps": [
        {"id": "s1", "description": "Tidy the notes"},
        {"id": "s2", "description": "Tidy the docs"}
    ]});
    mock.enqueue_for(MAIN, MockReply::tool("call_plan", "propose_plan", plan));
    mock.enqueue_for(MAIN, MockReply::text(["Both tidy."]));
    mock.enqueue_for("Your step (s1)", MockReply::text(["Notes tidied."]));
    let mut client = env.spawn_acp().await;
    crate::fleet::initialize_with_forms(&mut client).await;
    client.set_request_handler(|method, params| {
        (method == "elicitation/create" && params["mode"] == "form").then(|| {
            crate::support::Reply::Result(
                json!({"action": "accept", "content": {"decision": "approve", "skip": ["s2"]}}),
            )
        })
    });
    let session = client.new_session(&env.cwd()).await;
    let turn = client.prompt_text(&session, MAIN).await;
    assert_eq!(turn.stop_reason(), "end_turn", "{}", client.stderr());

    let shown = ok(&env, &["plans", "show", "p1"]).await;
    let tasks_at = shown.find("\ntasks:").unwrap_or_else(|| panic!("plans show lists the tasks: {shown}"));
    let lines: Vec<&str> = shown[tasks_at..].lines().filter(|l| l.starts_with("  t")).collect();
    assert_eq!(lines.len(), 2, "{shown}");
    assert!(lines[0].contains("done") && lines[0].contains("p1/s1") && lines[0].contains("Tidy the notes"), "{shown}");
    assert!(lines[1].contains("cancelled") && lines[1].contains("p1/s2"), "a skipped step's task: {shown}");
    let t1 = task_json(&env, "t1").await;
    assert_eq!(t1["step"], json!({"plan_id": "p1", "step_id": "s1"}));
    assert!(t1["claimed_by"].as_str().unwrap().starts_with("fleet_worker:"), "its worker held it: {t1}");
    let err = refused(&env, &["tasks", "update", "t1", "--status", "open"]).await;
    assert!(err.contains("stands for step s1 of plan p1"), "{err}");
    let plan: Value = serde_json::from_str(&ok(&env, &["plans", "show", "p1", "--json"]).await).unwrap();
    assert_eq!(plan["tasks"][0]["id"], "t1");
    assert_eq!(plan["plan"]["steps"][0]["status"]["status"], "completed");
}
