//! JSON-RPC error handling (protocol §12, §14): parse errors, invalid requests, unknown
//! methods and notifications, invalid params, unknown sessions. After every error the
//! process keeps serving.

use serde_json::{Value, json};

use crate::support::{AcpClient, Message, RpcError, TestEnv};

/// The next message must be a response; returns its id and outcome.
async fn next_response(client: &mut AcpClient) -> (Value, Result<Value, RpcError>) {
    match client.next_message().await {
        Message::Response { id, outcome } => (id, outcome),
        other => panic!("expected a response, got {other:?}"),
    }
}

/// The process still answers requests.
async fn assert_still_serving(client: &mut AcpClient, env: &TestEnv) {
    let session = client.new_session(&env.cwd()).await;
    assert!(!session.is_empty());
}

async fn initialized() -> (TestEnv, AcpClient) {
    let env = TestEnv::scripted(&["ok", "ok"]);
    let client = env.spawn_initialized().await;
    (env, client)
}

#[tokio::test]
async fn malformed_json_gets_a_parse_error_with_null_id_and_the_process_keeps_serving() {
    let (env, mut client) = initialized().await;
    client.send_raw_line("{this is not json").await;
    let (id, outcome) = next_response(&mut client).await;
    assert_eq!(id, Value::Null);
    let err = outcome.expect_err("parse error");
    assert_eq!(err.code, -32700, "{err}");

    // A truncated message is a parse error too.
    client.send_raw_line(r#"{"jsonrpc":"2.0","id":900,"method":"session/list","params":{"#).await;
    let (id, outcome) = next_response(&mut client).await;
    assert_eq!(id, Value::Null);
    assert_eq!(outcome.expect_err("parse error").code, -32700);

    assert_still_serving(&mut client, &env).await;
}

#[tokio::test]
async fn unknown_method_gets_method_not_found() {
    let (env, mut client) = initialized().await;
    let err = client.request("session/teleport", json!({"sessionId": "x"})).await.expect_err("unknown method");
    assert_eq!(err.code, -32601, "{err}");
    assert_still_serving(&mut client, &env).await;
}

#[tokio::test]
async fn unknown_underscore_method_gets_method_not_found() {
    let (env, mut client) = initialized().await;
    let err = client.request("_acme.dev/frobnicate", json!({})).await.expect_err("unknown extension method");
    assert_eq!(err.code, -32601, "{err}");
    assert_still_serving(&mut client, &env).await;
}

#[tokio::test]
async fn unknown_notifications_get_no_reply() {
    let (_env, mut client) = initialized().await;
    client.notify("_acme.dev/ping", json!({"x": 1})).await;
    client.notify("session/made_up_notification", json!({})).await;
    client.notify("$/cancel_request", json!({"requestId": 12345})).await;
    // Notifications never get a response: the next line is the answer to this request.
    let id = client.send_request("session/list", json!({})).await;
    let (rid, outcome) = next_response(&mut client).await;
    assert_eq!(rid, json!(id), "a notification was answered");
    outcome.expect("session/list");
}

#[tokio::test]
async fn session_new_without_cwd_is_invalid_params_naming_cwd() {
    let (env, mut client) = initialized().await;
    let err = client.request("session/new", json!({"mcpServers": []})).await.expect_err("missing cwd");
    assert_eq!(err.code, -32602, "{err}");
    assert!(err.full_text().contains("cwd"), "the error must name the field: {err}");
    assert_still_serving(&mut client, &env).await;
}

#[tokio::test]
async fn session_new_with_a_non_string_cwd_is_invalid_params() {
    let (_env, mut client) = initialized().await;
    let err = client.request("session/new", json!({"cwd": 42, "mcpServers": []})).await.expect_err("bad cwd type");
    assert_eq!(err.code, -32602, "{err}");
    assert!(err.full_text().contains("cwd"), "{err}");
}

#[tokio::test]
async fn prompt_without_prompt_field_is_invalid_params_naming_it() {
    let (env, mut client) = initialized().await;
    let session = client.new_session(&env.cwd()).await;
    let err = client.request("session/prompt", json!({"sessionId": session})).await.expect_err("missing prompt");
    assert_eq!(err.code, -32602, "{err}");
    assert!(err.full_text().contains("prompt"), "{err}");
}

#[tokio::test]
async fn params_that_are_an_array_are_invalid_params() {
    let (_env, mut client) = initialized().await;
    let err = client.request("session/new", json!(["/tmp", []])).await.expect_err("positional params");
    assert_eq!(err.code, -32602, "{err}");
}

#[tokio::test]
async fn params_that_are_not_structured_are_invalid_request() {
    // JSON-RPC 2.0: `params` MUST be an object or an array, else the request is invalid.
    let (env, mut client) = initialized().await;
    let err = client.request("session/new", json!("just a string")).await.expect_err("string params");
    assert_eq!(err.code, -32600, "{err}");
    assert_still_serving(&mut client, &env).await;
}

#[tokio::test]
async fn prompt_for_an_unknown_session_is_not_found_naming_the_id() {
    let (env, mut client) = initialized().await;
    let err = client
        .request(
            "session/prompt",
            json!({"sessionId": "no-such-session-123", "prompt": [{"type": "text", "text": "hi"}]}),
        )
        .await
        .expect_err("unknown session");
    assert_eq!(err.code, -32002, "{err}");
    assert!(err.full_text().contains("no-such-session-123"), "{err}");
    assert_still_serving(&mut client, &env).await;
}

#[tokio::test]
async fn load_of_an_unknown_session_is_not_found_naming_the_id() {
    let (env, mut client) = initialized().await;
    let (updates, outcome) = client
        .request_collect(
            "session/load",
            json!({"sessionId": "no-such-session-456", "cwd": env.cwd(), "mcpServers": []}),
        )
        .await;
    let err = outcome.expect_err("unknown session");
    assert_eq!(err.code, -32002, "{err}");
    assert!(err.full_text().contains("no-such-session-456"), "{err}");
    assert!(updates.is_empty(), "nothing to replay: {updates:#?}");
}

#[tokio::test]
async fn jsonrpc_1_0_request_is_invalid_request() {
    let (env, mut client) = initialized().await;
    client.send_raw_request(r#"{"jsonrpc":"1.0","id":77,"method":"session/list","params":{}}"#, json!(77)).await;
    let (id, outcome) = next_response(&mut client).await;
    assert!(id == json!(77) || id.is_null(), "id must be echoed (or null): {id}");
    assert_eq!(outcome.expect_err("invalid request").code, -32600);
    assert_still_serving(&mut client, &env).await;
}

#[tokio::test]
async fn message_without_method_or_result_is_invalid_request() {
    let (env, mut client) = initialized().await;
    client.send_raw_request(r#"{"jsonrpc":"2.0","id":78}"#, json!(78)).await;
    let (id, outcome) = next_response(&mut client).await;
    assert!(id == json!(78) || id.is_null(), "id must be echoed (or null): {id}");
    assert_eq!(outcome.expect_err("invalid request").code, -32600);
    assert_still_serving(&mut client, &env).await;
}

#[tokio::test]
async fn string_request_ids_are_echoed_exactly() {
    let (_env, mut client) = initialized().await;
    client
        .send_raw_request(
            r#"{"jsonrpc":"2.0","id":"req-äbc-1","method":"session/list","params":{}}"#,
            json!("req-äbc-1"),
        )
        .await;
    let (id, outcome) = next_response(&mut client).await;
    assert_eq!(id, json!("req-äbc-1"));
    let list = outcome.expect("session/list");
    crate::support::schema::check(crate::support::schema::Kind::ListSessionsResponse, &list).unwrap();
}

#[tokio::test]
async fn resume_of_an_unknown_session_is_an_error_naming_the_id() {
    let (env, mut client) = initialized().await;
    let err = client
        .request("session/resume", json!({"sessionId": "no-such-session-789", "cwd": env.cwd(), "mcpServers": []}))
        .await
        .expect_err("unknown session");
    assert!(err.full_text().contains("no-such-session-789"), "{err}");
}
