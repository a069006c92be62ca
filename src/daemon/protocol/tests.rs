//! Wire round trips of every payload and item, and the error-code mapping.

use std::fmt::Debug;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::*;
use crate::engine::store::{ListQuery, MessageStatus, SessionPage, SessionRecord, SessionStatus, StoredMessage};
use crate::engine::tools::{Display, Location, PlanEntry, PlanPriority, PlanStatus, ToolKind};
use crate::engine::{
    ErrorKind, LiveEvent, Mode, PermissionRequest, Role, SessionEvent, StopReason, ToolCallChange, ToolCallStart,
    ToolCallStatus, Usage,
};

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: T) {
    let text = serde_json::to_string(&value).unwrap();
    let back: T = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
    assert_eq!(back, value, "{text}");
}

fn every_chat_event() -> Vec<ChatEvent> {
    vec![
        ChatEvent::TextDelta("hi".into()),
        ChatEvent::ThoughtDelta("hmm".into()),
        ChatEvent::TitleChanged("T".into()),
        ChatEvent::Usage {
            usage: Usage { input_tokens: 1, output_tokens: 2, cached_input_tokens: 3, reasoning_tokens: 4 },
            context_window: 9,
        },
        ChatEvent::ToolCallStarted(ToolCallStart {
            id: "c1".into(),
            name: "edit_file".into(),
            title: "Edit a.rs".into(),
            kind: ToolKind::Edit,
            arguments: serde_json::json!({"path": "a.rs"}),
            locations: vec![Location { path: "/p/a.rs".into(), line: Some(3) }],
            display: vec![
                Display::Diff { path: "/p/a.rs".into(), old: None, new: "x".into() },
                Display::Text("t".into()),
                Display::Terminal("term".into()),
            ],
        }),
        ChatEvent::ToolCallUpdated(ToolCallChange {
            id: "c1".into(),
            status: ToolCallStatus::Failed,
            display: None,
            locations: Some(vec![]),
            output: Some("no".into()),
        }),
        ChatEvent::PermissionRequest(PermissionRequest {
            request_id: 7,
            tool_call_id: "c1".into(),
            tool: "shell".into(),
            title: "Run ls".into(),
            kind: ToolKind::Execute,
        }),
        ChatEvent::Plan(vec![PlanEntry {
            content: "a".into(),
            priority: PlanPriority::High,
            status: PlanStatus::Pending,
        }]),
        ChatEvent::Question(crate::engine::Question {
            request_id: 9,
            tool_call_id: Some("c1".into()),
            title: "Approve the plan?".into(),
            form: crate::engine::QuestionForm::PlanApproval {
                plan_id: "p1".into(),
                steps: vec![crate::engine::StepChoice { id: "s1".into(), description: "do".into() }],
            },
        }),
        ChatEvent::QuestionWithdrawn { request_id: 9 },
        ChatEvent::SessionChanged { mode: Mode::AcceptEdits, model: "m".into() },
        ChatEvent::Complete { stop: StopReason::MaxTurnRequests },
        ChatEvent::Error { kind: ErrorKind::Auth, message: "set a key".into() },
    ]
}

#[test]
fn turn_items_round_trip() {
    round_trip(TurnItem::Started { turn: 42 });
    for e in every_chat_event() {
        round_trip(TurnItem::Event(e));
    }
    let ops = [
        HostOp::ReadTextFile { path: "/a".into(), line: Some(1), limit: None },
        HostOp::WriteTextFile { path: "/a".into(), content: "x\n".into() },
        HostOp::run(&command_request("ls".into(), "/p".into(), 1500, 10)),
    ];
    for op in ops {
        round_trip(TurnItem::HostCall { call_id: 3, op });
    }
    round_trip(TurnItem::HostCancel { call_id: 3 });
}

#[test]
fn session_events_and_records_round_trip() {
    round_trip(SessionEvent { turn: 1, event: LiveEvent::UserMessage(vec![ContentPart::text("q")]) });
    for e in every_chat_event() {
        round_trip(SessionEvent { turn: 2, event: LiveEvent::Chat(e) });
    }
    let record = SessionRecord {
        id: "s".into(),
        title: None,
        cwd: "/p".into(),
        additional_dirs: vec!["/q".into()],
        provider: "scripted".into(),
        model: "m".into(),
        mode: Mode::Ask,
        status: SessionStatus::Closed,
        created_at: 1,
        updated_at: 2,
        parent_id: None,
        provider_pinned: false,
        agent: None,
    };
    round_trip(SessionPage { sessions: vec![record.clone()], next_cursor: Some("c".into()) });
    round_trip(record);
    round_trip(StoredMessage {
        seq: 1,
        role: Role::Tool,
        content: vec![],
        tool_calls: vec![],
        tool_results: vec![],
        usage: None,
        status: MessageStatus::Cancelled,
        created_at: 5,
    });
    round_trip(ListQuery { cwd: Some("/p".into()), cursor: None, limit: 3, top_level: false });
    assert_eq!(serde_json::to_value(Mode::AcceptEdits).unwrap(), "accept-edits", "modes use their ids");
}

#[test]
fn params_round_trip_and_mcp_values_survive_but_stay_out_of_debug() {
    let mcp = vec![
        McpServerConfig::Stdio {
            name: "s".into(),
            command: "/bin/x".into(),
            args: vec!["-a".into()],
            env: vec![("TOKEN".into(), "secret1".into())],
        },
        McpServerConfig::Http {
            name: "h".into(),
            url: "http://127.0.0.1:1".into(),
            headers: vec![("Auth".into(), "secret2".into())],
        },
        McpServerConfig::Sse { name: "e".into(), url: "http://127.0.0.1:2".into(), headers: vec![] },
    ];
    let create = CreateParams { cwd: "/p".into(), dirs: vec![], mcp: mcp.clone() };
    assert!(!format!("{create:?}").contains("secret"));
    round_trip(create);
    round_trip(OpenParams { id: "s".into(), cwd: "/p".into(), dirs: vec!["/d".into()], mcp });
    round_trip(SendParams {
        id: "s".into(),
        content: vec![ContentPart::text("x")],
        host: HostCaps { can_read: true, can_write: false, can_run: true },
    });
    round_trip(AnswerParams { id: "s".into(), request_id: 1, answer: PermissionAnswer::RejectAlways });
    round_trip(HostReplyParams { call_id: 1, result: Ok(HostValue::Text("t".into())) });
    round_trip(HostReplyParams { call_id: 1, result: Ok(HostValue::Written) });
    round_trip(HostReplyParams {
        call_id: 1,
        result: Ok(HostValue::Ran(RunDto {
            terminal_id: "t".into(),
            output: "o".into(),
            truncated: true,
            exit_code: Some(1),
            signal: None,
        })),
    });
    round_trip(HostReplyParams { call_id: 2, result: Err("denied".into()) });
    // A client that omits `host` gets no editor.
    let p: SendParams = serde_json::from_str(r#"{"id":"s","content":[]}"#).unwrap();
    assert_eq!(p.host, HostCaps::default());
}

#[test]
fn engine_errors_survive_the_wire_with_their_codes_and_messages() {
    let cases = [
        (EngineError::NotFound("a".into()), NOT_FOUND),
        (EngineError::NotOpen("a".into()), NOT_FOUND),
        (EngineError::Busy("a".into()), BUSY),
        (EngineError::UnknownMode("x".into()), INVALID_PARAMS),
        (EngineError::Store(StoreError::BadCursor("c".into())), INVALID_PARAMS),
        (EngineError::Store(StoreError::NotFound("a".into())), NOT_FOUND),
        (EngineError::Store(StoreError::Closed), ENGINE_FAILED),
        (EngineError::Config("set RATCHET_PROVIDER".into()), ENGINE_FAILED),
        (EngineError::ProviderNotFound("work".into()), NOT_FOUND),
        (EngineError::InvalidProvider("unknown provider kind \"x\"".into()), INVALID_PARAMS),
        (EngineError::Unavailable("the daemon is not reachable".into()), ENGINE_FAILED),
    ];
    for (e, want) in cases {
        let (code, message, data) = engine_error_to_rpc(&e);
        assert_eq!(code, want, "{e:?}");
        let back = engine_error_from_rpc(&message, Some(&data)).expect("rebuilt");
        assert_eq!(back.to_string(), e.to_string());
        assert_eq!(std::mem::discriminant(&back), std::mem::discriminant(&e), "{e:?} became {back:?}");
    }
    assert!(engine_error_from_rpc("bad params", None).is_none());
    assert!(engine_error_from_rpc("x", Some(&serde_json::json!({"kind": "martian"}))).is_none());
}
