//! Hooks (`.ratchet/hooks.yaml`, `RATCHET_HOME/hooks.yaml`): a failing pre-hook refuses its
//! tool call and the model gets the hook's output; post and notify hooks get the event as
//! JSON on stdin; hooks never see provider keys; a pre-hook past its timeout refuses; a
//! broken hooks file refuses every tool call; `ratchet hooks list`.

use serde_json::{Value, json};

use crate::support::daemon::poll_until;
use crate::support::{AcpClient, MockLlm, MockReply, OPENAI_KEY, TestEnv};

fn write(path: std::path::PathBuf, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn project_hooks(env: &TestEnv, yaml: &str) {
    write(env.workspace().join(".ratchet/hooks.yaml"), yaml);
}

/// A window with a session in the workspace, in yolo mode (no permission questions).
async fn open_yolo(env: &TestEnv) -> (AcpClient, String) {
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;
    client.set_mode(&session, "yolo").await;
    (client, session)
}

/// The JSON a hook wrote to `path` (written whole: the hooks write a temporary file and move it).
async fn written_json(path: std::path::PathBuf) -> Value {
    poll_until(&format!("a hook to write {}", path.display()), || path.exists()).await;
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

#[tokio::test]
async fn a_pre_edit_hook_with_a_glob_blocks_the_edit_and_the_model_gets_its_message() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    project_hooks(
        &env,
        "hooks:\n  - event: pre_edit\n    glob: '*.lock'\n    command: |\n      echo \"$(basename \"$RATCHET_PATH\") is generated: change Cargo.toml and run cargo update\" >&2\n      exit 1\n",
    );
    let lock = env.workspace().join("Cargo.lock");
    std::fs::write(&lock, "original\n").unwrap();
    mock.enqueue(
        MockReply::text(Vec::<String>::new())
            .tool_call("call_lock", "write_file", json!({"path": "Cargo.lock", "content": "hacked\n"}))
            .tool_call("call_notes", "write_file", json!({"path": "notes.txt", "content": "fine\n"})),
    );
    mock.enqueue(MockReply::text(["I will change Cargo.toml instead."]));
    let (mut client, session) = open_yolo(&env).await;

    let turn = client.prompt_text(&session, "Bump the lock file").await;
    assert_eq!(turn.stop_reason(), "end_turn");
    assert_eq!(std::fs::read_to_string(&lock).unwrap(), "original\n", "the blocked edit never ran");
    assert_eq!(
        std::fs::read_to_string(env.workspace().join("notes.txt")).unwrap(),
        "fine\n",
        "the glob is only *.lock"
    );

    let calls = turn.tool_calls();
    let blocked = calls.iter().find(|c| c.id == "call_lock").unwrap();
    assert_eq!(blocked.final_status(), "failed", "{blocked:#?}");
    assert!(!blocked.statuses().contains(&"in_progress".to_owned()), "{blocked:#?}");
    assert!(blocked.text().contains("Cargo.lock is generated"), "the editor shows why: {blocked:#?}");
    let results = mock.model_requests()[1].tool_results();
    assert_eq!(results.len(), 2);
    assert!(results[0].text.contains("Blocked by the pre_edit hook in "), "{results:#?}");
    assert!(results[0].text.contains("exit code 1"), "{results:#?}");
    assert!(
        results[0].text.contains("Cargo.lock is generated: change Cargo.toml and run cargo update"),
        "the model gets the hook's output: {results:#?}"
    );
    assert!(!results[1].text.contains("Blocked"), "{results:#?}");
}

#[tokio::test]
async fn a_post_command_hook_gets_the_event_as_json_on_stdin() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    project_hooks(
        &env,
        "hooks:\n  - event: post_command\n    tool: shell\n    command: cat > .post.tmp && mv .post.tmp post_command.json\n",
    );
    mock.enqueue(MockReply::tool("call_echo", "shell", json!({"command": "echo hello from the command"})));
    mock.enqueue(MockReply::text(["Done."]));
    let (mut client, session) = open_yolo(&env).await;
    let turn = client.prompt_text(&session, "Say hello").await;
    assert_eq!(turn.stop_reason(), "end_turn");

    let event = written_json(env.workspace().join("post_command.json")).await;
    assert_eq!(event["event"], "post_command");
    assert_eq!(event["session_id"], session.as_str());
    assert_eq!(event["cwd"], env.cwd().as_str());
    assert_eq!(event["tool"], "shell");
    assert_eq!(event["kind"], "execute");
    assert_eq!(event["call_id"], "call_echo");
    assert_eq!(event["command"], "echo hello from the command");
    assert_eq!(event["arguments"]["command"], "echo hello from the command");
    assert_eq!(event["is_error"], false);
    assert!(event["output"].as_str().unwrap().contains("hello from the command"), "{event}");
}

#[tokio::test]
async fn hooks_never_see_provider_keys_or_secrets_and_session_start_fires_from_the_user_file() {
    let mock = MockLlm::start().await;
    let mut env = TestEnv::openai(&mock);
    env.set("MY_SERVICE_TOKEN", "tok-abcdef-123456");
    // Not even a rule that lets the key through to commands passes it to hooks.
    env.write_config("[shell]\nenv_allow = [\"OPENAI_API_KEY\"]\n");
    write(
        env.ratchet_home().join("hooks.yaml"),
        "hooks:\n  - event: session_start\n    command: env > .env.tmp && mv .env.tmp session_start.env\n",
    );
    let (client, session) = open_yolo(&env).await;

    let path = env.workspace().join("session_start.env");
    poll_until("the session_start hook", || path.exists()).await;
    let seen = std::fs::read_to_string(&path).unwrap();
    assert!(seen.contains("RATCHET_EVENT=session_start\n"), "{seen}");
    assert!(seen.contains(&format!("RATCHET_SESSION_ID={session}\n")), "{seen}");
    assert!(seen.contains("RATCHET_RESUMED=false\n"), "{seen}");
    assert!(seen.contains(&format!("RATCHET_CWD={}\n", env.cwd())), "{seen}");
    assert!(seen.contains("PWD=") && seen.contains(&env.cwd()), "it runs in the session's directory: {seen}");
    for secret in ["OPENAI_API_KEY", OPENAI_KEY, "MY_SERVICE_TOKEN", "tok-abcdef-123456"] {
        assert!(!seen.contains(secret), "a hook saw {secret}: {seen}");
    }
    drop(client);
}

#[tokio::test]
async fn a_pre_command_hook_that_times_out_blocks_the_command() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    project_hooks(&env, "hooks:\n  - event: pre_command\n    timeout: 1s\n    command: sleep 30\n");
    mock.enqueue(MockReply::tool("call_touch", "shell", json!({"command": "touch ran.txt"})));
    mock.enqueue(MockReply::text(["It was blocked."]));
    let (mut client, session) = open_yolo(&env).await;
    let started = std::time::Instant::now();
    let turn = client.prompt_text(&session, "Touch a file").await;
    assert_eq!(turn.stop_reason(), "end_turn");
    assert!(started.elapsed() < std::time::Duration::from_secs(15), "{:?}", started.elapsed());
    assert!(!env.workspace().join("ran.txt").exists(), "the command never ran");
    let results = mock.model_requests()[1].tool_results();
    assert!(
        results[0].text.contains("pre_command hook") && results[0].text.contains("timed out after 1s"),
        "{results:#?}"
    );
}

#[tokio::test]
async fn hooks_list_shows_both_files_and_a_broken_file_blocks_every_tool_call() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    project_hooks(
        &env,
        "hooks:\n  - event: pre_edit\n    glob: ['*.lock', 'src/**']\n    command: ./check.sh\n    timeout: 5s\n\
         \n  - event: post_command\n    tool: shell\n    command: ./log.sh\n",
    );
    write(env.ratchet_home().join("hooks.yaml"), "hooks:\n  - event: session_end\n    command: notify-send done\n");
    let cwd = env.cwd();
    let out = env.run(&["hooks", "list", "--cwd", &cwd]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "a header and three hooks: {text}");
    assert!(lines[0].starts_with("EVENT") && lines[0].contains("COMMAND") && lines[0].contains("FILE"), "{text}");
    assert!(lines[1].starts_with("pre_edit") && lines[1].contains("glob=*.lock glob=src/**"), "{text}");
    assert!(
        lines[1].contains("5s") && lines[1].contains("./check.sh") && lines[1].contains(".ratchet/hooks.yaml#1"),
        "{text}"
    );
    assert!(
        lines[2].starts_with("post_command") && lines[2].contains("tool=shell") && lines[2].contains("10s"),
        "{text}"
    );
    let user_file = env.ratchet_home().join("hooks.yaml");
    assert!(lines[3].starts_with("session_end") && lines[3].contains(&format!("{}#1", user_file.display())), "{text}");

    let out = env.run(&["hooks", "list", "--cwd", &cwd, "--json"]).await;
    let set: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(set["hooks"].as_array().unwrap().len(), 3);
    assert_eq!(set["hooks"][0]["event"], "pre_edit");
    assert_eq!(set["hooks"][0]["origin"], "project");
    assert_eq!(set["hooks"][0]["timeout"], 5.0);
    assert_eq!(set["hooks"][2]["origin"], "user");
    assert_eq!(set["broken"], json!([]));

    // A broken file: named with its line by the list, and every tool call is refused.
    project_hooks(&env, "hooks:\n  - event: pre_edit\n    command: [unclosed\n");
    let out = env.run(&["hooks", "list", "--cwd", &cwd]).await;
    assert_eq!(out.status.code(), Some(1), "a broken file fails the list");
    let err = String::from_utf8_lossy(&out.stderr);
    let project_file = env.workspace().join(".ratchet/hooks.yaml");
    assert!(err.contains(&format!("broken: {}", project_file.display())) && err.contains("line"), "{err}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("session_end"), "the user's hooks are still listed");

    std::fs::write(env.workspace().join("notes.txt"), "hello\n").unwrap();
    mock.enqueue(MockReply::tool("call_read", "read_file", json!({"path": "notes.txt"})));
    mock.enqueue(MockReply::text(["Blocked."]));
    let (mut client, session) = open_yolo(&env).await;
    let turn = client.prompt_text(&session, "Read the notes").await;
    assert_eq!(turn.stop_reason(), "end_turn");
    let results = mock.model_requests()[1].tool_results();
    let why = &results[0].text;
    assert!(why.contains(&format!("the hooks file {} is broken", project_file.display())), "{why}");
    assert!(why.contains("line") && why.contains("ratchet hooks list") && !why.contains("hello"), "{why}");
}

#[tokio::test]
async fn a_plan_fires_proposed_question_approved_fleet_start_end_and_completed() {
    use crate::fleet::{MAIN, initialize_with_forms, step, worker};
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let log =
        "echo \"$RATCHET_EVENT ${RATCHET_PLAN_ID:-} ${RATCHET_STATUS:-}${RATCHET_QUESTION_KIND:-}\" >> events.log";
    let events = ["plan_proposed", "question_asked", "plan_approved", "fleet_start", "fleet_end", "plan_completed"];
    let yaml: String = events.iter().map(|e| format!("  - event: {e}\n    command: '{log}'\n")).collect();
    project_hooks(&env, &format!("hooks:\n{yaml}"));
    let plan = json!({"goal": "One step", "steps": [step("s1", "Say done")]});
    mock.enqueue_for(MAIN, MockReply::tool("call_plan", "propose_plan", plan));
    mock.enqueue_for(MAIN, MockReply::text(["All done."]));
    mock.enqueue_for(&worker("s1"), MockReply::text(["Done."]));
    let mut client = env.spawn_acp().await;
    initialize_with_forms(&mut client).await;
    client.set_request_handler(|method, params| {
        (method == "elicitation/create" && params["mode"] == "form").then(|| {
            crate::support::Reply::Result(json!({"action": "accept", "content": {"decision": "approve", "skip": []}}))
        })
    });
    let session = client.new_session(&env.cwd()).await;
    let turn = client.prompt_text(&session, MAIN).await;
    assert_eq!(turn.stop_reason(), "end_turn", "{}", client.stderr());

    let path = env.workspace().join("events.log");
    let read = || std::fs::read_to_string(&path).unwrap_or_default();
    poll_until("every plan event's hook", || read().lines().count() == events.len()).await;
    let mut lines: Vec<String> = read().lines().map(str::to_string).collect();
    lines.sort();
    let plan_id = lines[0].split(' ').nth(1).unwrap().to_string();
    assert!(plan_id.starts_with('p'), "{lines:?}");
    let mut expected = vec![
        format!("fleet_end {plan_id} completed"),
        format!("fleet_start {plan_id} "),
        format!("plan_approved {plan_id} "),
        format!("plan_completed {plan_id} completed"),
        format!("plan_proposed {plan_id} "),
        "question_asked  plan_approval".to_string(),
    ];
    expected.sort();
    assert_eq!(lines, expected);
}

#[tokio::test]
async fn a_sub_agent_fires_agent_spawn_agent_complete_and_its_session_end() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    write(env.workspace().join(".claude/agents/reviewer.md"), "---\nname: reviewer\n---\nYou review code.\n");
    project_hooks(
        &env,
        "hooks:\n  - event: agent_spawn\n    command: cat > .s.tmp && mv .s.tmp spawn.json\n\
         \n  - event: agent_complete\n    command: cat > .c.tmp && mv .c.tmp complete.json\n\
         \n  - event: session_end\n    command: cat > .e.tmp && mv .e.tmp end.json\n",
    );
    const MAIN: &str = "Ask the reviewer";
    mock.enqueue_for(
        MAIN,
        MockReply::tool("call_spawn", "agent_spawn", json!({"agent": "reviewer", "task": "Review it"})),
    );
    mock.enqueue_for(MAIN, MockReply::text(["Reviewed."]));
    mock.enqueue_for("You review code", MockReply::text(["LGTM."]));
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;
    let turn = client.prompt_text(&session, MAIN).await;
    assert_eq!(turn.stop_reason(), "end_turn", "{}", client.stderr());

    let spawn = written_json(env.workspace().join("spawn.json")).await;
    let complete = written_json(env.workspace().join("complete.json")).await;
    assert_eq!((spawn["event"].as_str(), spawn["agent"].as_str()), (Some("agent_spawn"), Some("reviewer")));
    assert_eq!((spawn["session_id"].as_str(), spawn["task"].as_str()), (Some(session.as_str()), Some("Review it")));
    assert_eq!(spawn["team"], Value::Null);
    assert_eq!(complete["agent_session"], spawn["agent_session"]);
    assert_eq!((complete["ok"].as_bool(), complete["summary"].as_str()), (Some(true), Some("LGTM.")));
    // The agent's session is closed when it is done.
    let end = written_json(env.workspace().join("end.json")).await;
    assert_eq!(
        (end["session_id"].as_str(), end["parent_id"].as_str()),
        (spawn["agent_session"].as_str(), Some(session.as_str()))
    );
}

#[tokio::test]
async fn a_context_past_the_compaction_threshold_fires_token_limit() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    env.write_config("compact_threshold = 0.5\ncontext_window = 1000\ncompact_keep = 2\n");
    project_hooks(&env, "hooks:\n  - event: token_limit\n    command: cat > .t.tmp && mv .t.tmp token_limit.json\n");
    let (mut client, session) = open_yolo(&env).await;
    for (i, q) in ["First question", "Second question", "Third question"].iter().enumerate() {
        let reply = MockReply::text(["An answer."]);
        mock.enqueue(if i == 2 { reply.usage(900, 10) } else { reply });
        assert_eq!(client.prompt_text(&session, q).await.stop_reason(), "end_turn");
    }
    assert!(!env.workspace().join("token_limit.json").exists(), "not yet past the threshold");
    mock.enqueue(MockReply::text(["A summary."]));
    mock.enqueue(MockReply::text(["The fourth answer."]));
    assert_eq!(client.prompt_text(&session, "Fourth question").await.stop_reason(), "end_turn");
    let event = written_json(env.workspace().join("token_limit.json")).await;
    assert_eq!((event["event"].as_str(), event["session_id"].as_str()), (Some("token_limit"), Some(session.as_str())));
    assert_eq!((event["used_tokens"].as_u64(), event["context_window"].as_u64()), (Some(910), Some(1000)));
}
