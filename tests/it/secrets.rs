//! Secrets: commands get no variable whose name looks secret unless `[shell] env_allow` lets
//! it through, never a provider key, and cannot read them from ratchet's own
//! `/proc/<pid>/environ`. As a second line of defence, values of variables named like
//! `*_KEY`, `*_TOKEN`, `*_SECRET`, `*_PASSWORD` (8 chars or more) and the provider API key are
//! replaced by `[REDACTED:NAME]` in tool output before it reaches the model, the editor or the
//! log.

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
    // Let them through to commands, so that redaction has something to do.
    env.write_config("[shell]\nenv_allow = [\"MY_SERVICE_TOKEN\", \"DB_*\", \"OPENAI_API_KEY\"]\n");
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
    env.write_config("[shell]\nenv_allow = [\"TINY_TOKEN\"]\n");
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

/// Redaction cannot win against encodings, so commands must not have the secrets at all:
/// not in their environment, not in their parents' (`/proc/$PPID/environ`, up to ratchet),
/// not through `env_allow` for a provider key. The command dumps everything it can find to a
/// file, which the test searches for the raw values; the model sees only encoded forms, which
/// are checked too.
#[tokio::test]
async fn commands_cannot_find_secrets_in_any_encoding() {
    const ALLOWED: &str = "allowed-value-4242424242";
    let mock = MockLlm::start().await;
    let mut env = TestEnv::openai(&mock);
    env.set("MY_SERVICE_TOKEN", TOKEN);
    env.set("DB_PASSWORD", PASSWORD);
    env.set("GH_TOKEN", ALLOWED);
    env.set("AWS_CREDENTIALS_BLOB", "credential-blob-31337");
    env.write_config("[shell]\nenv_allow = [\"GH_*\", \"OPENAI_API_KEY\"]\n");
    let dump = concat!(
        "{ env; echo \"$MY_SERVICE_TOKEN $DB_PASSWORD $OPENAI_API_KEY\"; ",
        "p=$PPID; for i in 1 2 3; do cat /proc/$p/environ; echo; p=$(cut -d' ' -f4 /proc/$p/stat); done; } > dump.bin 2>&1"
    );
    let encoded = concat!(
        "echo \"$MY_SERVICE_TOKEN\" | base64; echo \"$DB_PASSWORD\" | rev; echo \"$OPENAI_API_KEY\" | base64; ",
        "base64 -w0 /proc/$PPID/environ; echo"
    );
    mock.enqueue(
        MockReply::text(Vec::<String>::new()).tool_call("call_dump", "shell", json!({"command": dump})).tool_call(
            "call_encoded",
            "shell",
            json!({"command": encoded}),
        ),
    );
    mock.enqueue(MockReply::text(["Nothing found."]));
    let mut client = env.spawn_initialized().await;
    let pid = client.pid().expect("ratchet's pid");
    let session = client.new_session(&env.cwd()).await;
    client.set_mode(&session, "yolo").await;
    let turn = client.prompt_text(&session, "Find the secrets").await;
    assert_eq!(turn.stop_reason(), "end_turn");

    let withheld = [TOKEN, PASSWORD, OPENAI_KEY, "credential-blob-31337"];
    let found = std::fs::read(env.workspace().join("dump.bin")).expect("the command wrote its dump");
    let found = String::from_utf8_lossy(&found);
    for raw in withheld {
        assert!(!found.contains(raw), "a command found a secret ({raw}) in:\n{found}");
    }
    assert!(found.contains(&format!("GH_TOKEN={ALLOWED}")), "env_allow lets GH_TOKEN through:\n{found}");
    assert!(found.contains("PATH="), "ordinary variables stay:\n{found}");

    let own = std::fs::read(format!("/proc/{pid}/environ")).expect("ratchet's environ");
    let own = String::from_utf8_lossy(&own);
    for raw in withheld.iter().chain([&ALLOWED]) {
        assert!(!own.contains(raw), "ratchet's own /proc environ still shows {raw}");
    }

    let results = mock.model_requests()[1].tool_results();
    let encoded_out = &results[1].text;
    for raw in withheld {
        let b64 = base64(&format!("{raw}\n"));
        let reversed: String = raw.chars().rev().collect();
        assert!(!encoded_out.contains(&b64[..b64.len() - 4]), "base64 of {raw} reached the model: {encoded_out}");
        assert!(!encoded_out.contains(&reversed), "{raw} reversed reached the model: {encoded_out}");
    }
    client.shutdown().await;
}

/// Standard base64 (no wrapping), for looking for encoded secrets.
fn base64(text: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = text.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
