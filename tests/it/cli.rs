//! The command line outside ACP: `--version`, `exec`, `sessions list`.

use crate::support::{MockLlm, MockReply, TestEnv};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn describe(out: &std::process::Output) -> String {
    format!("status: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}", out.status, text(&out.stdout), text(&out.stderr))
}

#[tokio::test]
async fn version_flag_prints_the_crate_version() {
    let env = TestEnv::new();
    let out = env.run(&["--version"]).await;
    assert!(out.status.success(), "{}", describe(&out));
    assert!(text(&out.stdout).contains(env!("CARGO_PKG_VERSION")), "{}", describe(&out));
}

#[tokio::test]
async fn exec_with_the_scripted_provider_prints_the_answer_and_exits_0() {
    let env = TestEnv::scripted(&["hello from the script"]);
    let out = env.run(&["exec", "Say hi"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("hello from the script"), "{}", describe(&out));
    for noise in ["DEBUG", " INFO ", "TRACE"] {
        assert!(!stdout.contains(noise), "logs must not go to stdout: {}", describe(&out));
    }
}

#[tokio::test]
async fn exec_streams_the_answer_from_the_openai_mock() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    mock.enqueue(MockReply::text(["Exec ", "answer ", "streams."]));
    let out = env.run(&["exec", "What is up?"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(text(&out.stdout).contains("Exec answer streams."), "{}", describe(&out));
    let conversation = mock.last_model_request().conversation();
    assert!(
        conversation.last().is_some_and(|(role, t)| role == "user" && t.contains("What is up?")),
        "{conversation:?}"
    );
}

#[tokio::test]
async fn exec_with_a_401_exits_1_naming_the_key_variable_on_stderr() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    mock.enqueue(MockReply::error(401));
    let out = env.run(&["exec", "Hello"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(text(&out.stderr).contains("OPENAI_API_KEY"), "{}", describe(&out));
}

#[tokio::test]
async fn sessions_list_prints_each_session_with_id_and_title() {
    let env = TestEnv::scripted(&["First answer.", "Second answer."]);
    let mut client = env.spawn_initialized().await;
    let a = client.new_session(&env.cwd()).await;
    let turn_a = client.prompt_text(&a, "Refactor the parser").await;
    assert_eq!(turn_a.stop_reason(), "end_turn");
    let b = client.new_session(&env.cwd()).await;
    let turn_b = client.prompt_text(&b, "Write release notes").await;
    assert_eq!(turn_b.stop_reason(), "end_turn");
    client.shutdown().await;

    let out = env.run(&["sessions", "list"]).await;
    assert!(out.status.success(), "{}", describe(&out));
    let stdout = text(&out.stdout);
    for (id, prompt) in [(&a, "Refactor the parser"), (&b, "Write release notes")] {
        let line = stdout
            .lines()
            .find(|l| l.contains(id.as_str()))
            .unwrap_or_else(|| panic!("no line for session {id}: {}", describe(&out)));
        // The title (derived from the first prompt) is on the same line.
        let start: String = prompt.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
        assert!(line.contains(&start), "line for {id} lacks the title: {line:?}");
    }
}

#[tokio::test]
async fn sessions_list_on_an_empty_home_succeeds() {
    let env = TestEnv::scripted(&["ok"]);
    let out = env.run(&["sessions", "list"]).await;
    assert!(out.status.success(), "{}", describe(&out));
}

#[tokio::test]
async fn exec_without_any_provider_exits_1_with_a_message() {
    let mut env = TestEnv::new();
    // Make sure no local Ollama is found either.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    env.set("OLLAMA_HOST", format!("http://127.0.0.1:{port}"));
    let out = env.run(&["exec", "Hello"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(!text(&out.stderr).trim().is_empty(), "{}", describe(&out));
}

/// `exec` has no editor to ask: without a terminal, changes are rejected (and said so on
/// stderr); `--mode yolo` lets them through.
#[tokio::test]
async fn exec_rejects_writes_without_a_terminal_unless_the_mode_allows_them() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let args = serde_json::json!({"path": "made.txt", "content": "made by exec"});
    for _ in 0..2 {
        mock.enqueue(MockReply::tool("call_w", "write_file", args.clone()));
        mock.enqueue(MockReply::text(["done"]));
    }
    let cwd = env.cwd();
    let out = env.run(&["exec", "--cwd", &cwd, "write it"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(text(&out.stderr).contains("rejected: Write made.txt"), "{}", describe(&out));
    assert!(!env.workspace().join("made.txt").exists(), "{}", describe(&out));

    let out = env.run(&["exec", "--mode", "yolo", "--cwd", &cwd, "write it"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(std::fs::read_to_string(env.workspace().join("made.txt")).unwrap(), "made by exec");
}
