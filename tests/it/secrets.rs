//! Secrets: commands get no variable whose name looks secret unless `[shell] env_allow` lets
//! it through, never a provider key, and cannot read them from ratchet's own
//! `/proc/<pid>/environ`. As a second line of defence, values of variables named like
//! `*_KEY`, `*_TOKEN`, `*_SECRET`, `*_PASSWORD` (8 chars or more) and the provider API key are
//! replaced by `[REDACTED:NAME]` in tool output before it reaches the model, the editor or the
//! log.

use serde_json::{Value, json};

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

// ---------------------------------------------------------------------------------------------
// Issue 11 (hostile input): secrets in MCP server output and in worker and team transcripts.

/// A value only the MCP server was configured with (in its `env`, under a secret-looking name).
const MCP_TOKEN: &str = "mcp-tok-9f8e7d6c5b4a";

/// Every file under `dir` that holds `needle` (databases, their WALs, logs, transcripts).
fn files_holding(dir: &std::path::Path, needle: &str) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return found };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_holding(&path, needle));
        } else if std::fs::read(&path).is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle.as_bytes())) {
            found.push(path);
        }
    }
    found
}

/// Nothing under `RATCHET_HOME` and nothing on the editor's stdout holds any of `secrets`.
fn assert_nowhere(env: &TestEnv, client: &crate::support::AcpClient, secrets: &[&str]) {
    for secret in secrets {
        let files = files_holding(&env.ratchet_home(), secret);
        assert!(files.is_empty(), "a secret value was written to {files:?}");
        assert!(client.stdout_lines().iter().all(|l| !l.contains(secret)), "a secret value reached the editor");
    }
}

/// A real `python3` for the test's MCP server: the system one first (a version manager's
/// shim needs variables an MCP server does not get), else the first on `PATH`.
fn python3() -> String {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::iter::once(std::path::PathBuf::from("/usr/bin"))
        .chain(std::env::split_paths(&path))
        .map(|dir| dir.join("python3"))
        .find(|p| p.is_file())
        .expect("`python3` is needed for the MCP secrets test; install Python 3")
        .display()
        .to_string()
}

#[tokio::test]
async fn secrets_in_an_mcp_servers_output_are_redacted_its_own_configured_ones_too() {
    let mock = MockLlm::start().await;
    let mut env = TestEnv::openai(&mock);
    env.set("MY_SERVICE_TOKEN", TOKEN);
    std::fs::write(env.workspace().join("service.env"), format!("token={TOKEN}\n")).unwrap();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/support/leaky_mcp_server.py");
    let server = json!({
        "name": "leaky", "command": python3(), "args": [script.display().to_string()],
        "env": [{"name": "SERVICE_TOKEN", "value": MCP_TOKEN}]
    });
    mock.enqueue(MockReply::tool("call_leak", "mcp__leaky__leak", json!({})));
    mock.enqueue(MockReply::text(["Nothing leaked."]));
    let mut client = env.spawn_initialized().await;
    let created = client.call("session/new", json!({"cwd": env.cwd(), "mcpServers": [server]})).await;
    let session = created["sessionId"].as_str().unwrap().to_owned();
    client.set_mode(&session, "yolo").await;
    let turn = client.prompt_text(&session, "Show the server's configuration").await;
    assert_eq!(turn.stop_reason(), "end_turn", "{:#?}", turn.messages);

    let result = &mock.last_model_request().tool_results()[0];
    assert!(result.text.contains("service.env: token=[REDACTED:MY_SERVICE_TOKEN]"), "{result:#?}");
    assert!(result.text.contains("configured token: [REDACTED:SERVICE_TOKEN]"), "{result:#?}");
    for r in mock.model_requests() {
        assert!(!r.raw_body.contains(TOKEN) && !r.raw_body.contains(MCP_TOKEN), "a secret reached the model");
    }
    assert_nowhere(&env, &client, &[TOKEN, MCP_TOKEN]);
    client.shutdown().await;
    assert_nowhere_on_disk(&env, &[TOKEN, MCP_TOKEN]);
}

fn assert_nowhere_on_disk(env: &TestEnv, secrets: &[&str]) {
    for secret in secrets {
        let files = files_holding(&env.ratchet_home(), secret);
        assert!(files.is_empty(), "a secret value was written to {files:?}");
    }
}

#[tokio::test]
async fn a_workers_secrets_are_redacted_in_its_model_calls_its_tool_call_and_the_fleets_records() {
    let mock = MockLlm::start().await;
    let mut env = TestEnv::openai(&mock);
    env.set("MY_SERVICE_TOKEN", TOKEN);
    env.write_config("[shell]\nenv_allow = [\"MY_SERVICE_TOKEN\"]\n");
    let main = crate::fleet::MAIN;
    mock.enqueue_for(
        main,
        MockReply::tool(
            "call_plan",
            "propose_plan",
            json!({"goal": "Check the token", "steps": [crate::fleet::step("s1", "Print the token")]}),
        ),
    );
    mock.enqueue_for(main, MockReply::text(["The fleet is done."]));
    let worker = crate::fleet::worker("s1");
    mock.enqueue_for(
        &worker,
        MockReply::tool("w_s1", "shell", json!({"command": "echo \"worker sees $MY_SERVICE_TOKEN\""})),
    );
    mock.enqueue_for(&worker, MockReply::text(["Printed it."]));

    let mut client = env.spawn_acp().await;
    crate::fleet::initialize_with_forms(&mut client).await;
    client.set_request_handler(|method, params| {
        (method == "elicitation/create" && params["mode"] == "form").then(|| {
            crate::support::Reply::Result(json!({"action": "accept", "content": {"decision": "approve", "skip": []}}))
        })
    });
    let session = client.new_session(&env.cwd()).await;
    client.set_mode(&session, "yolo").await;
    let turn = client.prompt_text(&session, main).await;
    assert_eq!(turn.stop_reason(), "end_turn", "{}", client.stderr());

    let worker_results: Vec<_> = mock
        .model_requests()
        .into_iter()
        .filter(|r| r.raw_body.contains(&worker))
        .flat_map(|r| r.tool_results())
        .collect();
    assert!(
        worker_results.iter().any(|t| t.text.contains("worker sees [REDACTED:MY_SERVICE_TOKEN]")),
        "the worker's model saw the redacted output: {worker_results:#?}"
    );
    for r in mock.model_requests() {
        assert!(!r.raw_body.contains(TOKEN), "a secret reached a model call");
    }
    let plan = env.run(&["plans", "show", "p1", "--json"]).await;
    assert!(plan.status.success());
    assert!(!String::from_utf8_lossy(&plan.stdout).contains(TOKEN), "the plan's records hold the secret");
    assert_nowhere(&env, &client, &[TOKEN]);
    client.shutdown().await;
    assert_nowhere_on_disk(&env, &[TOKEN]);
}

#[tokio::test]
async fn a_team_members_secrets_are_redacted_in_the_transcript_the_blackboard_and_its_messages() {
    let mock = MockLlm::start().await;
    let mut env = TestEnv::openai(&mock);
    env.set("MY_SERVICE_TOKEN", TOKEN);
    env.write_config("[shell]\nenv_allow = [\"MY_SERVICE_TOKEN\"]\n[permissions]\nallow = [\"shell\"]\n");
    let dir = env.workspace().join(".ratchet/teams");
    std::fs::create_dir_all(&dir).unwrap();
    let (alpha, beta) = ("ALPHA-SECRET-ROLE: you lead", "BETA-SECRET-ROLE: you follow");
    std::fs::write(
        dir.join("pair.yaml"),
        format!(
            "name: pair\nagents:\n  - name: alpha\n    role: lead\n    system_prompt: \"{alpha}\"\n  - name: beta\n    \
             role: follower\n    system_prompt: \"{beta}\"\ntimeout: 60s\n"
        ),
    )
    .unwrap();
    // alpha prints the token, then (as a leaky model might, having been told it) writes it to
    // the blackboard and sends it to beta.
    mock.enqueue_for(
        alpha,
        MockReply::tool("a0", "shell", json!({"command": "echo \"alpha sees $MY_SERVICE_TOKEN\""})),
    );
    mock.enqueue_for(
        alpha,
        MockReply::tool("a1", "blackboard_write", json!({"section": "config", "key": "token", "value": TOKEN})),
    );
    mock.enqueue_for(
        alpha,
        MockReply::tool("a2", "send_message", json!({"to": "beta", "content": format!("use {TOKEN}")})),
    );
    mock.enqueue_for(alpha, MockReply::text([format!("alpha done with {TOKEN}")]));
    mock.enqueue_for(beta, MockReply::text(["beta done"]));
    mock.enqueue_for(beta, MockReply::text(["beta done again"]));

    // In the foreground: the command runs the team until it ends (incomplete: nobody wrote a
    // status, which does not matter here).
    let out = env.run(&["team", "start", "pair", "Use the token", "--cwd", &env.cwd()]).await;
    let shown = env.run(&["team", "show", "t1", "--json"]).await;
    let view: Value = serde_json::from_slice(&shown.stdout).unwrap_or(Value::Null);
    assert_ne!(view["team"]["status"], "running", "{view:#}\n{}", crate::support::daemon::describe(&out));
    let printed = crate::support::daemon::text(&out.stdout);
    assert!(printed.matches("[REDACTED:MY_SERVICE_TOKEN]").count() >= 2, "{printed}");
    assert!(!printed.contains(TOKEN), "`team start` printed the secret: {printed}");
    assert!(!view.to_string().contains(TOKEN), "`team show` holds the secret: {view:#}");
    let transcript = std::fs::read_to_string(env.ratchet_home().join("transcripts/t1.md")).unwrap_or_default();
    assert!(!transcript.contains(TOKEN), "the transcript holds the secret:\n{transcript}");
    for r in mock.model_requests() {
        assert!(!r.raw_body.contains(&format!("alpha sees {TOKEN}")), "a tool output secret reached a member's model");
    }
    // The team's records (orchestra.db, the transcript, the logs) hold no secret. The members'
    // own sessions in ratchet.db keep the model's words and tool arguments as it gave them
    // (they are its history), so they are not looked at here.
    let files: Vec<_> = files_holding(&env.ratchet_home(), TOKEN)
        .into_iter()
        .filter(|f| !f.file_name().is_some_and(|n| n.to_string_lossy().starts_with("ratchet.db")))
        .collect();
    assert!(files.is_empty(), "a secret value was written to {files:?}");
}
