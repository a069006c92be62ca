//! Validation of every message the agent sends against the official ACP v1 schema.
//!
//! The JSON Schemas are generated at run time with `schemars` from the
//! `agent_client_protocol_schema::v1` types (the same crate version the SDK pins), so the
//! tests need no schema file on disk. Compiled validators are cached for the whole run.

use std::collections::HashMap;
use std::sync::OnceLock;

use agent_client_protocol_schema::v1;
use jsonschema::Validator;
use serde_json::{Value, json};

/// The schema a message is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    SessionNotification,
    InitializeResponse,
    AuthenticateResponse,
    NewSessionResponse,
    LoadSessionResponse,
    ListSessionsResponse,
    ResumeSessionResponse,
    CloseSessionResponse,
    SetSessionModeResponse,
    SetSessionConfigOptionResponse,
    PromptResponse,
    RequestPermissionRequest,
    ReadTextFileRequest,
    WriteTextFileRequest,
    CreateTerminalRequest,
    TerminalOutputRequest,
    ReleaseTerminalRequest,
    KillTerminalRequest,
    WaitForTerminalExitRequest,
    CreateElicitationRequest,
    CompleteElicitationNotification,
    CancelRequestNotification,
    ErrorObject,
}

fn schema_of(kind: Kind) -> Value {
    macro_rules! gen_schema {
        ($t:ty) => {
            serde_json::to_value(schemars::schema_for!($t)).expect("schema serializes")
        };
    }
    match kind {
        Kind::SessionNotification => gen_schema!(v1::SessionNotification),
        Kind::InitializeResponse => gen_schema!(v1::InitializeResponse),
        Kind::AuthenticateResponse => gen_schema!(v1::AuthenticateResponse),
        Kind::NewSessionResponse => gen_schema!(v1::NewSessionResponse),
        Kind::LoadSessionResponse => gen_schema!(v1::LoadSessionResponse),
        Kind::ListSessionsResponse => gen_schema!(v1::ListSessionsResponse),
        Kind::ResumeSessionResponse => gen_schema!(v1::ResumeSessionResponse),
        Kind::CloseSessionResponse => gen_schema!(v1::CloseSessionResponse),
        Kind::SetSessionModeResponse => gen_schema!(v1::SetSessionModeResponse),
        Kind::SetSessionConfigOptionResponse => gen_schema!(v1::SetSessionConfigOptionResponse),
        Kind::PromptResponse => gen_schema!(v1::PromptResponse),
        Kind::RequestPermissionRequest => gen_schema!(v1::RequestPermissionRequest),
        Kind::ReadTextFileRequest => gen_schema!(v1::ReadTextFileRequest),
        Kind::WriteTextFileRequest => gen_schema!(v1::WriteTextFileRequest),
        Kind::CreateTerminalRequest => gen_schema!(v1::CreateTerminalRequest),
        Kind::TerminalOutputRequest => gen_schema!(v1::TerminalOutputRequest),
        Kind::ReleaseTerminalRequest => gen_schema!(v1::ReleaseTerminalRequest),
        Kind::KillTerminalRequest => gen_schema!(v1::KillTerminalRequest),
        Kind::WaitForTerminalExitRequest => gen_schema!(v1::WaitForTerminalExitRequest),
        Kind::CreateElicitationRequest => gen_schema!(v1::CreateElicitationRequest),
        Kind::CompleteElicitationNotification => gen_schema!(v1::CompleteElicitationNotification),
        Kind::CancelRequestNotification => gen_schema!(v1::CancelRequestNotification),
        // JSON-RPC 2.0 error object.
        Kind::ErrorObject => json!({
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "integer"},
                "message": {"type": "string"},
                "data": true
            }
        }),
    }
}

fn validator(kind: Kind) -> &'static Validator {
    static CACHE: OnceLock<std::sync::Mutex<HashMap<Kind, &'static Validator>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
    cache.entry(kind).or_insert_with(|| {
        let schema = schema_of(kind);
        let compiled =
            jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("schema for {kind:?} does not compile: {e}"));
        Box::leak(Box::new(compiled))
    })
}

/// Checks `instance` against the schema of `kind`; the error lists every violation.
pub fn check(kind: Kind, instance: &Value) -> Result<(), String> {
    let errors: Vec<String> =
        validator(kind).iter_errors(instance).map(|e| format!("at `{}`: {e}", e.instance_path())).collect();
    if errors.is_empty() { Ok(()) } else { Err(format!("not a valid {kind:?}: {}", errors.join("; "))) }
}

/// The schema of the result of a client→agent request, by method; `None` if the method has
/// no schema (unknown or legacy methods).
pub fn response_kind(method: &str) -> Option<Kind> {
    Some(match method {
        "initialize" => Kind::InitializeResponse,
        "authenticate" => Kind::AuthenticateResponse,
        "session/new" => Kind::NewSessionResponse,
        "session/load" => Kind::LoadSessionResponse,
        "session/list" => Kind::ListSessionsResponse,
        "session/resume" => Kind::ResumeSessionResponse,
        "session/close" => Kind::CloseSessionResponse,
        "session/set_mode" => Kind::SetSessionModeResponse,
        "session/set_config_option" => Kind::SetSessionConfigOptionResponse,
        "session/prompt" => Kind::PromptResponse,
        _ => return None,
    })
}

/// The schema of the params of an agent→client request; `None` for unknown methods.
pub fn agent_request_kind(method: &str) -> Option<Kind> {
    Some(match method {
        "session/request_permission" => Kind::RequestPermissionRequest,
        "fs/read_text_file" => Kind::ReadTextFileRequest,
        "fs/write_text_file" => Kind::WriteTextFileRequest,
        "terminal/create" => Kind::CreateTerminalRequest,
        "terminal/output" => Kind::TerminalOutputRequest,
        "terminal/release" => Kind::ReleaseTerminalRequest,
        "terminal/kill" => Kind::KillTerminalRequest,
        "terminal/wait_for_exit" => Kind::WaitForTerminalExitRequest,
        "elicitation/create" => Kind::CreateElicitationRequest,
        _ => return None,
    })
}

/// The schema of the params of an agent→client notification; `None` for unknown methods.
pub fn agent_notification_kind(method: &str) -> Option<Kind> {
    Some(match method {
        "session/update" => Kind::SessionNotification,
        "elicitation/complete" => Kind::CompleteElicitationNotification,
        "$/cancel_request" => Kind::CancelRequestNotification,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(update: Value) -> Value {
        json!({"sessionId": "s-1", "update": update})
    }

    #[test]
    fn accepts_a_well_formed_agent_message_chunk() {
        let ok = chunk(json!({"sessionUpdate": "agent_message_chunk",
                              "content": {"type": "text", "text": "hi"}}));
        check(Kind::SessionNotification, &ok).unwrap();
    }

    #[test]
    fn rejects_an_agent_message_chunk_without_content() {
        let bad = chunk(json!({"sessionUpdate": "agent_message_chunk"}));
        assert!(check(Kind::SessionNotification, &bad).is_err());
    }

    #[test]
    fn rejects_an_unknown_session_update_kind() {
        let bad = chunk(json!({"sessionUpdate": "agent_message_chonk",
                               "content": {"type": "text", "text": "hi"}}));
        assert!(check(Kind::SessionNotification, &bad).is_err());
    }

    #[test]
    fn rejects_a_text_block_without_text() {
        let bad = chunk(json!({"sessionUpdate": "agent_message_chunk",
                               "content": {"type": "text"}}));
        assert!(check(Kind::SessionNotification, &bad).is_err());
    }

    #[test]
    fn rejects_a_current_mode_update_using_mode_id_instead_of_current_mode_id() {
        let bad = chunk(json!({"sessionUpdate": "current_mode_update", "modeId": "ask"}));
        assert!(check(Kind::SessionNotification, &bad).is_err());
        let ok = chunk(json!({"sessionUpdate": "current_mode_update", "currentModeId": "ask"}));
        check(Kind::SessionNotification, &ok).unwrap();
    }

    #[test]
    fn prompt_response_rejects_a_bogus_stop_reason() {
        check(Kind::PromptResponse, &json!({"stopReason": "end_turn"})).unwrap();
        assert!(check(Kind::PromptResponse, &json!({"stopReason": "bogus"})).is_err());
        assert!(check(Kind::PromptResponse, &json!({})).is_err());
    }

    #[test]
    fn initialize_response_requires_an_integer_protocol_version() {
        check(Kind::InitializeResponse, &json!({"protocolVersion": 1})).unwrap();
        assert!(check(Kind::InitializeResponse, &json!({"protocolVersion": "1"})).is_err());
    }

    #[test]
    fn list_sessions_response_requires_cwd_on_each_session() {
        check(Kind::ListSessionsResponse, &json!({"sessions": [{"sessionId": "a", "cwd": "/tmp"}]})).unwrap();
        assert!(check(Kind::ListSessionsResponse, &json!({"sessions": [{"sessionId": "a"}]})).is_err());
    }

    #[test]
    fn error_object_needs_integer_code_and_string_message() {
        check(Kind::ErrorObject, &json!({"code": -32601, "message": "x"})).unwrap();
        assert!(check(Kind::ErrorObject, &json!({"code": "x", "message": "x"})).is_err());
        assert!(check(Kind::ErrorObject, &json!({"code": 1})).is_err());
    }
}
