//! `initialize`, version negotiation, advertised capabilities, the shape of `session/new`,
//! and process lifetime (exit on stdin EOF).

use serde_json::{Value, json};

use crate::support::{MODEL, TestEnv};

fn init_params(version: u64) -> Value {
    json!({
        "protocolVersion": version,
        "clientCapabilities": {"fs": {"readTextFile": false, "writeTextFile": false}, "terminal": false},
        "clientInfo": {"name": "ratchet-it", "version": "0.0.0"}
    })
}

fn assert_capabilities(result: &Value) {
    assert_eq!(result["protocolVersion"], 1, "{result:#}");
    assert_eq!(result["agentInfo"]["name"], "ratchet", "{result:#}");
    assert!(
        result["agentInfo"]["version"].as_str().is_some_and(|v| !v.is_empty()),
        "agentInfo.version must be a non-empty string: {result:#}"
    );
    let caps = &result["agentCapabilities"];
    assert_eq!(caps["loadSession"], true, "{result:#}");
    assert_eq!(caps["promptCapabilities"]["image"], true, "{result:#}");
    assert_eq!(caps["promptCapabilities"]["embeddedContext"], true, "{result:#}");
    for member in ["list", "resume", "close"] {
        assert_eq!(
            caps["sessionCapabilities"][member],
            json!({}),
            "sessionCapabilities.{member} must be advertised as {{}}: {result:#}"
        );
    }
    assert_eq!(result["authMethods"], json!([]), "{result:#}");
}

#[tokio::test]
async fn initialize_answers_protocol_version_1_with_agent_info_and_capabilities() {
    let env = TestEnv::scripted(&["hi"]);
    let mut client = env.spawn_acp().await;
    let result = client.initialize_with(init_params(1)).await;
    assert_capabilities(&result);
    assert_eq!(
        result["agentInfo"]["version"],
        env!("CARGO_PKG_VERSION"),
        "agentInfo.version should be the crate version"
    );
}

#[tokio::test]
async fn initialize_answers_version_1_when_the_client_asks_for_version_2() {
    let env = TestEnv::scripted(&["hi"]);
    let mut client = env.spawn_acp().await;
    let result = client.initialize_with(init_params(2)).await;
    assert_capabilities(&result);
}

#[tokio::test]
async fn initialize_tolerates_unknown_fields_and_meta() {
    let env = TestEnv::scripted(&["hi"]);
    let mut client = env.spawn_acp().await;
    let mut params = init_params(1);
    params["_meta"] = json!({"acme.dev": {"trace": true}});
    params["someFutureField"] = json!({"x": 1});
    params["clientCapabilities"]["_meta"] = json!({"terminal-auth": true});
    params["clientCapabilities"]["someFutureCapability"] = json!(true);
    let result = client.initialize_with(params).await;
    assert_eq!(result["protocolVersion"], 1);
}

#[tokio::test]
async fn new_session_returns_modes_and_mode_and_model_config_options() {
    let env = TestEnv::scripted(&["hi"]);
    let mut client = env.spawn_initialized().await;
    let result = client.new_session_full(&env.cwd()).await;

    let session_id = result["sessionId"].as_str().unwrap();
    assert!(!session_id.is_empty());

    let modes = &result["modes"];
    assert_eq!(modes["currentModeId"], "ask", "{result:#}");
    let mode_ids: Vec<&str> =
        modes["availableModes"].as_array().expect("availableModes").iter().map(|m| m["id"].as_str().unwrap()).collect();
    for id in ["ask", "accept-edits", "plan", "yolo"] {
        assert!(mode_ids.contains(&id), "mode {id} missing: {mode_ids:?}");
    }

    let options = result["configOptions"].as_array().expect("configOptions");
    let mode_opt =
        options.iter().find(|o| o["id"] == "mode").unwrap_or_else(|| panic!("no `mode` config option: {result:#}"));
    assert_eq!(mode_opt["category"], "mode");
    assert_eq!(mode_opt["currentValue"], "ask", "the mode option must agree with modes.currentModeId");
    let model_opt =
        options.iter().find(|o| o["id"] == "model").unwrap_or_else(|| panic!("no `model` config option: {result:#}"));
    assert_eq!(model_opt["type"], "select");
    assert_eq!(model_opt["category"], "model");
    assert_eq!(model_opt["currentValue"], MODEL);
    let values: Vec<&str> =
        model_opt["options"].as_array().expect("model options").iter().filter_map(|o| o["value"].as_str()).collect();
    assert!(values.contains(&MODEL), "the current model must be one of the options: {values:?}");
}

#[tokio::test]
async fn new_session_ids_are_unique() {
    let env = TestEnv::scripted(&["hi"]);
    let mut client = env.spawn_initialized().await;
    let a = client.new_session(&env.cwd()).await;
    let b = client.new_session(&env.cwd()).await;
    let c = client.new_session(&env.workspace_b().to_string_lossy()).await;
    assert_ne!(a, b);
    assert_ne!(a, c);
    assert_ne!(b, c);
}

#[tokio::test]
async fn new_session_tolerates_meta_and_unknown_fields() {
    let env = TestEnv::scripted(&["hi"]);
    let mut client = env.spawn_initialized().await;
    let result = client
        .call("session/new", json!({"cwd": env.cwd(), "mcpServers": [], "_meta": {"acme.dev": 1}, "futureField": true}))
        .await;
    assert!(result["sessionId"].is_string(), "{result}");
}

#[tokio::test]
async fn agent_exits_promptly_when_stdin_closes() {
    let env = TestEnv::scripted(&["hi"]);
    let mut client = env.spawn_initialized().await;
    client.new_session(&env.cwd()).await;
    let status = client.shutdown().await;
    assert!(status.success(), "exit status after stdin EOF: {status:?}");
}

#[tokio::test]
async fn agent_exits_on_stdin_eof_even_before_initialize() {
    let env = TestEnv::scripted(&["hi"]);
    let client = env.spawn_acp().await;
    let status = client.shutdown().await;
    assert!(status.success(), "exit status after stdin EOF: {status:?}");
}
