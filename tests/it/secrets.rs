//! The secret guard: values of environment variables named like `*_KEY`, `*_TOKEN`,
//! `*_SECRET`, `*_PASSWORD` (8 chars or more) and the provider API key are replaced by
//! `[REDACTED:NAME]` in tool output before it reaches the model, the editor or the log.

use serde_json::json;

use crate::support::{MockLlm, MockReply, OPENAI_KEY, TestEnv};

const TOKEN: &str = "tok-12345678-abcdef";
const PASSWORD: &str = "pw-Zq9!long-enough";

#[tokio::test]
async fn secret_values_in_tool_output_never_reach_the_model_the_editor_or_the_log() {
    let mock = MockLlm::start().await;
    let mut env = TestEnv::openai(&mock);
    env.set("MY_SERVICE_TOKEN", TOKEN);
    env.set("DB_PASSWORD", PASSWORD);
    std::fs::write(env.workspace().join("service.env"), format!("endpoint=https://example.invalid\ntoken={TOKEN}\n"))
        .unwrap();
    mock.enqueue(
        MockReply::text(Vec::<String>::new())
            .tool_call(
                "call_echo",
                "shell",
                json!({"command": "echo \"token is $MY_SERVICE_TOKEN\"; echo \"pw is $DB_PASSWORD\""}),
            )
            .tool_call("call_key", "shell", json!({"command": "echo \"key is $OPENAI_API_KEY\""}))
            .tool_call("call_read", "read_file", json!({"path": "service.env"}))
            .tool_call("call_grep", "grep", json!({"pattern": "token="})),
    );
    mock.enqueue(MockReply::text(["Nothing leaked."]));
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;
    client.set_mode(&session, "yolo").await;
    let turn = client.prompt_text(&session, "Show me the config").await;
    assert_eq!(turn.stop_reason(), "end_turn");
    let calls = turn.tool_calls();
    assert_eq!(calls.len(), 4);
    for c in &calls {
        assert_eq!(c.final_status(), "completed", "{c:#?}");
    }

    // The model.
    let requests = mock.model_requests();
    assert_eq!(requests.len(), 2);
    for r in &requests {
        for raw in [TOKEN, PASSWORD, OPENAI_KEY] {
            assert!(!r.raw_body.contains(raw), "a secret value reached the model: {}", r.raw_body);
        }
    }
    let results = requests[1].tool_results();
    assert_eq!(results.len(), 4);
    assert!(results[0].text.contains("token is [REDACTED:MY_SERVICE_TOKEN]"), "{results:#?}");
    assert!(results[0].text.contains("pw is [REDACTED:DB_PASSWORD]"), "{results:#?}");
    assert!(
        results[1].text.contains("key is \n") && !results[1].text.contains("REDACTED:OPENAI_API_KEY"),
        "commands do not even get the provider key in their environment: {results:#?}"
    );
    assert!(results[2].text.contains("token=[REDACTED:MY_SERVICE_TOKEN]"), "{results:#?}");
    assert!(results[3].text.contains("[REDACTED:MY_SERVICE_TOKEN]"), "{results:#?}");

    // The editor.
    let lines = client.stdout_lines();
    for line in &lines {
        for raw in [TOKEN, PASSWORD, OPENAI_KEY] {
            assert!(!line.contains(raw), "a secret value reached stdout: {line}");
        }
    }
    assert!(lines.iter().any(|l| l.contains("[REDACTED:MY_SERVICE_TOKEN]")), "the editor sees the redacted output");
    assert!(calls[2].text().contains("[REDACTED:MY_SERVICE_TOKEN]"), "{:#?}", calls[2]);

    // The log (stderr and the log files, at debug level).
    let stderr = client.stderr();
    client.shutdown().await;
    for raw in [TOKEN, PASSWORD] {
        assert!(!stderr.contains(raw), "a secret value reached stderr");
    }
    let logs = env.ratchet_home().join("logs");
    if let Ok(dir) = std::fs::read_dir(&logs) {
        for entry in dir.flatten() {
            let text = String::from_utf8_lossy(&std::fs::read(entry.path()).unwrap_or_default()).into_owned();
            for raw in [TOKEN, PASSWORD] {
                assert!(!text.contains(raw), "a secret value reached the log file {:?}", entry.path());
            }
        }
    }
}

#[tokio::test]
async fn short_values_and_ordinary_variables_are_not_redacted() {
    let mock = MockLlm::start().await;
    let mut env = TestEnv::openai(&mock);
    env.set("TINY_TOKEN", "abc12");
    env.set("GREETING", "hello-not-a-secret-value");
    mock.enqueue(MockReply::tool("call_echo", "shell", json!({"command": "echo \"$TINY_TOKEN $GREETING\""})));
    mock.enqueue(MockReply::text(["ok"]));
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;
    client.set_mode(&session, "yolo").await;
    let turn = client.prompt_text(&session, "Echo").await;
    assert_eq!(turn.stop_reason(), "end_turn");
    let result = &mock.model_requests()[1].tool_results()[0];
    assert!(result.text.contains("abc12 hello-not-a-secret-value"), "{result:#?}");
}

#[tokio::test]
async fn editing_a_file_that_holds_a_secret_shows_a_redacted_diff_and_keeps_the_real_value_on_disk() {
    let mock = MockLlm::start().await;
    let mut env = TestEnv::openai(&mock);
    env.set("MY_SERVICE_TOKEN", TOKEN);
    let file = env.workspace().join("service.env");
    std::fs::write(&file, format!("endpoint=old\ntoken={TOKEN}\n")).unwrap();
    mock.enqueue(MockReply::tool(
        "call_edit",
        "edit_file",
        json!({"path": "service.env", "old_text": "endpoint=old", "new_text": "endpoint=new"}),
    ));
    mock.enqueue(MockReply::text(["Edited."]));
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;
    client.set_mode(&session, "accept-edits").await;
    let turn = client.prompt_text(&session, "Switch the endpoint").await;
    assert_eq!(turn.stop_reason(), "end_turn");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        format!("endpoint=new\ntoken={TOKEN}\n"),
        "the file keeps the real value: redaction is for display only"
    );
    let call = &turn.tool_calls()[0];
    assert_eq!(call.final_status(), "completed", "{call:#?}");
    for d in call.all() {
        for diff in d["content"].as_array().into_iter().flatten() {
            if diff["type"] == "diff" {
                assert_eq!(diff["oldText"], "endpoint=old\ntoken=[REDACTED:MY_SERVICE_TOKEN]\n");
                assert_eq!(diff["newText"], "endpoint=new\ntoken=[REDACTED:MY_SERVICE_TOKEN]\n");
            }
        }
    }
    assert!(!call.content_of_type("diff").is_empty());
    for line in client.stdout_lines() {
        assert!(!line.contains(TOKEN), "a secret value reached stdout: {line}");
    }
    for r in mock.model_requests() {
        assert!(!r.raw_body.contains(TOKEN), "{}", r.raw_body);
    }
}

/// The provider key is a secret whatever variable holds it: with `api_key_env` naming a
/// variable that does not look like a secret, its value is still redacted.
#[tokio::test]
async fn a_provider_key_read_from_a_custom_api_key_env_variable_is_redacted() {
    const CUSTOM_KEY: &str = "sk-custom-credential-98765";
    let mock = MockLlm::start().await;
    let mut env = TestEnv::openai(&mock);
    env.remove("OPENAI_API_KEY");
    env.set("LLM_CREDENTIAL", CUSTOM_KEY);
    env.write_config("[openai]\napi_key_env = \"LLM_CREDENTIAL\"\n");
    std::fs::write(env.workspace().join("creds.txt"), format!("cred is {CUSTOM_KEY}\n")).unwrap();
    mock.enqueue(
        MockReply::text(Vec::<String>::new())
            .tool_call("call_read", "read_file", json!({"path": "creds.txt"}))
            .tool_call("call_echo", "shell", json!({"command": "echo \"env has [$LLM_CREDENTIAL]\""})),
    );
    mock.enqueue(MockReply::text(["ok"]));
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;
    client.set_mode(&session, "yolo").await;
    let turn = client.prompt_text(&session, "Echo").await;
    assert_eq!(turn.stop_reason(), "end_turn");
    let requests = mock.model_requests();
    assert_eq!(
        requests[0].header("authorization"),
        Some(format!("Bearer {CUSTOM_KEY}").as_str()),
        "the custom variable is the provider key"
    );
    let results = requests[1].tool_results();
    assert!(
        results[0].text.contains("cred is [REDACTED:LLM_CREDENTIAL]"),
        "the provider key must be redacted: {results:#?}"
    );
    assert!(results[1].text.contains("env has []"), "commands do not get the provider key: {results:#?}");
    for r in &requests {
        assert!(!r.raw_body.contains(CUSTOM_KEY), "the key reached the model");
    }
    for line in client.stdout_lines() {
        assert!(!line.contains(CUSTOM_KEY), "the key reached the editor: {line}");
    }
}
