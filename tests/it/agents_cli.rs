//! Named agents: `ratchet agents list` (definitions from `.ratchet/agents/*.yaml`, Claude
//! Code's `.claude/agents/*.md` and `RATCHET_HOME/agents/`, project over user, a broken file
//! named and skipped), and `agent_spawn` running one in a context of its own.

use serde_json::{Value, json};

use crate::support::{MockLlm, MockReply, TestEnv};

fn write(path: std::path::PathBuf, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[tokio::test]
async fn definitions_are_listed_with_where_they_came_from_and_broken_files_are_named() {
    let env = TestEnv::new();
    let ws = env.workspace();
    write(
        ws.join(".claude/agents/reviewer.md"),
        "---\nname: reviewer\ndescription: Reviews diffs\ntools: read_file, grep\nmodel: sonnet\n---\nYou review code.\n",
    );
    write(ws.join(".ratchet/agents/coder.yaml"), "system_prompt: You write code.\nprovider: local\nmodel: qwen3\n");
    write(ws.join(".ratchet/agents/broken.yaml"), "system_prompt: [oops\n");
    write(env.ratchet_home().join("agents/reviewer.yaml"), "system_prompt: shadowed\n");
    write(env.ratchet_home().join("agents/planner.md"), "Plan the work.\n");

    let cwd = ws.to_str().unwrap();
    let out = env.run(&["agents", "list", "--cwd", cwd]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "a header and three agents: {text}");
    assert!(lines[1].starts_with("coder") && lines[1].contains("local/qwen3"), "{text}");
    assert!(lines[2].starts_with("reviewer") && lines[2].contains("project (.claude)"), "{text}");
    assert!(lines[2].contains("read_file,grep") && lines[2].contains("sonnet"), "{text}");
    assert!(lines[3].starts_with("planner") && lines[3].contains("user"), "{text}");
    assert!(err.contains("skipped") && err.contains("broken.yaml"), "the broken file is named: {err}");
    assert!(err.contains("shadowed"), "{err}");

    let out = env.run(&["agents", "list", "--cwd", cwd, "--json"]).await;
    let catalog: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(catalog["agents"][1]["prompt"], "You review code.");
    assert_eq!(catalog["agents"][1]["origin"], "project_claude");
    assert_eq!(catalog["shadowed"][0]["origin"], "user");
    assert!(catalog["skipped"][0]["source"].as_str().unwrap().ends_with("broken.yaml"));
}

#[tokio::test]
async fn agent_spawn_runs_a_claude_agent_with_its_role_and_tools_and_returns_its_answer() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    write(
        env.workspace().join(".claude/agents/reviewer.md"),
        "---\nname: reviewer\ndescription: Reviews code\ntools: read_file, grep\n---\nYou review code and say LGTM or not.\n",
    );
    const MAIN: &str = "Have the reviewer look at it";
    const CHILD: &str = "You review code and say LGTM";
    mock.enqueue_for(
        MAIN,
        MockReply::tool("call_spawn", "agent_spawn", json!({"agent": "reviewer", "task": "Review notes.txt"})),
    );
    mock.enqueue_for(MAIN, MockReply::text(["The reviewer is happy."]));
    mock.enqueue_for(CHILD, MockReply::text(["LGTM from the reviewer."]).usage(20, 5));
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;
    let turn = client.prompt_text(&session, MAIN).await;
    assert_eq!(turn.stop_reason(), "end_turn", "{}", client.stderr());
    assert_eq!(turn.text(), "The reviewer is happy.");

    let requests = mock.model_requests();
    assert_eq!(requests.len(), 3, "the proposal, the agent's one call, the model's last call");
    let child = requests.iter().find(|r| r.raw_body.contains(CHILD)).expect("the agent's request");
    assert!(child.raw_body.contains("Your role: the agent"), "its role prompt, as a role");
    assert!(child.raw_body.contains("Review notes.txt") && !child.raw_body.contains(MAIN), "its own context only");
    let mut tools = child.tool_names();
    tools.sort();
    assert_eq!(tools, ["grep", "read_file"], "only its own tools");
    let result = &requests[2].tool_results()[0].text;
    assert!(result.contains("LGTM from the reviewer.") && result.contains("Agent reviewer finished"), "{result}");
    let call = turn.tool_calls().into_iter().find(|c| c.id == "call_spawn").unwrap();
    assert_eq!(call.statuses().last().map(String::as_str), Some("completed"), "{call:#?}");
    // The agent's session is listed under the session that started it.
    let out = env.run(&["sessions", "list"]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.lines().nth(1).is_some_and(|l| l.starts_with("  └ ") && l.contains("agent reviewer")), "{text}");
}

#[tokio::test]
async fn a_plan_step_naming_an_agent_runs_its_worker_in_that_role_and_an_unknown_agent_is_refused() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    write(
        env.workspace().join(".claude/agents/tester.md"),
        "---\nname: tester\ntools: read_file\n---\nYou test things thoroughly.\n",
    );
    const MAIN: &str = "Plan it with roles";
    let plan = |agent: &str| {
        json!({"goal": "Check the code", "steps": [
            {"id": "s1", "description": "Test notes.txt", "agent": agent},
            {"id": "s2", "description": "Summarise notes.txt"}
        ]})
    };
    mock.enqueue_for(MAIN, MockReply::tool("call_bad", "propose_plan", plan("nobody")));
    mock.enqueue_for(MAIN, MockReply::tool("call_plan", "propose_plan", plan("tester")));
    mock.enqueue_for(MAIN, MockReply::text(["Done."]));
    mock.enqueue_for("Your step (s1)", MockReply::text(["Tested."]));
    mock.enqueue_for("Your step (s2)", MockReply::text(["Summarised."]));
    let mut client = env.spawn_acp().await;
    crate::fleet::initialize_with_forms(&mut client).await;
    client.set_request_handler(|method, params| {
        (method == "elicitation/create" && params["mode"] == "form").then(|| {
            crate::support::Reply::Result(json!({"action": "accept", "content": {"decision": "approve", "skip": []}}))
        })
    });
    let session = client.new_session(&env.cwd()).await;
    let turn = client.prompt_text(&session, MAIN).await;
    assert_eq!(turn.stop_reason(), "end_turn", "{}", client.stderr());

    let requests = mock.model_requests();
    // The first proposal was refused, naming the agents there are.
    let refused = &requests[1].tool_results()[0].text;
    assert!(refused.contains("\"nobody\"") && refused.contains("tester"), "{refused}");
    // s1's worker plays the tester: its role prompt, its one tool; s2's worker is plain.
    let s1 = requests.iter().find(|r| r.raw_body.contains("Your step (s1)")).expect("s1's worker");
    assert!(s1.raw_body.contains("You test things thoroughly."), "{}", s1.raw_body);
    assert_eq!(s1.tool_names(), ["read_file"]);
    let s2 = requests.iter().find(|r| r.raw_body.contains("Your step (s2)")).expect("s2's worker");
    assert!(!s2.raw_body.contains("You test things thoroughly.") && s2.tool_names().len() > 1);
    // The step keeps its agent in the stored plan.
    let out = env.run(&["plans", "show", "p1", "--json"]).await;
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{out:?}"));
    assert_eq!(shown["plan"]["steps"][0]["agent"], "tester", "{shown}");
    assert!(shown["plan"]["steps"][1].get("agent").is_none(), "{shown}");
}
