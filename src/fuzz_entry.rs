//! Entry points for the fuzz targets in `fuzz/`, and nothing else: hidden from the docs, not
//! an API, free to change with the targets. Each function reaches a crate-private parser, so
//! no parser had to become public for fuzzing; what is public already the targets call
//! directly. Every function returns what it decoded or the error, and never panics on input
//! (a panic is what the fuzzer looks for).

use std::convert::Infallible;
use std::path::Path;

use futures::StreamExt;
use serde_json::Value;

use crate::acp::RpcError;
use crate::engine::provider::{ProviderError, ProviderEvent};

/// Decodes the params of an ACP method as the bridge does before it calls the engine: into
/// the method's wire type, then the conversions that need no engine (prompt blocks,
/// directories, MCP servers). Methods the bridge does not know are `Ok`: it answers them
/// without reading their params. `"response/…"` decodes the client's answers to our own
/// requests (a permission question; an `fs/*` read).
pub fn acp_params(method: &str, params: Value) -> Result<(), RpcError> {
    use crate::acp::schema::{
        CancelNotification, CloseSessionRequest, InitializeRequest, ListSessionsRequest, LoadSessionRequest,
        NewSessionRequest, PromptRequest, ReadTextFileResponse, RequestPermissionResponse, ResumeSessionRequest,
        SetSessionConfigOptionRequest, SetSessionModeRequest,
    };
    use crate::bridge::{from_acp, parse, session_methods::SetModelRequest};
    match method {
        "initialize" => parse::<InitializeRequest>(params).map(drop),
        "session/new" => {
            let r: NewSessionRequest = parse(params)?;
            from_acp::absolute_dir("cwd", &r.cwd)?;
            from_acp::absolute_dirs(r.additional_directories)?;
            from_acp::mcp_servers(r.mcp_servers);
            Ok(())
        }
        "session/load" => {
            let r: LoadSessionRequest = parse(params)?;
            from_acp::absolute_dir("cwd", &r.cwd)?;
            from_acp::absolute_dirs(r.additional_directories)?;
            from_acp::mcp_servers(r.mcp_servers);
            Ok(())
        }
        "session/resume" => {
            let r: ResumeSessionRequest = parse(params)?;
            from_acp::absolute_dir("cwd", &r.cwd)?;
            from_acp::absolute_dirs(r.additional_directories)?;
            from_acp::mcp_servers(r.mcp_servers);
            Ok(())
        }
        "session/list" => {
            let r: ListSessionsRequest = parse(params)?;
            r.cwd.as_deref().map(from_acp::normalize);
            Ok(())
        }
        "session/close" => parse::<CloseSessionRequest>(params).map(drop),
        "session/set_mode" => parse::<SetSessionModeRequest>(params).map(drop),
        "session/set_config_option" => {
            parse::<SetSessionConfigOptionRequest>(params).map(|r| drop(r.value.as_value_id().cloned()))
        }
        "session/set_model" => parse::<SetModelRequest>(params).map(drop),
        "session/prompt" => from_acp::prompt(parse::<PromptRequest>(params)?.prompt).map(drop),
        "session/cancel" => parse::<CancelNotification>(params).map(drop),
        "response/session/request_permission" => parse::<RequestPermissionResponse>(params).map(drop),
        "response/fs/read_text_file" => parse::<ReadTextFileResponse>(params).map(drop),
        _ => Ok(()),
    }
}

/// A provider's answer body, as its decoder turns it into events: the events, and the error
/// that ended the stream, if any.
pub type Decoded = (Vec<ProviderEvent>, Option<ProviderError>);

/// Which provider's stream decoder to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// OpenAI Chat Completions, Server-Sent Events.
    OpenAi,
    /// Anthropic Messages, Server-Sent Events.
    Anthropic,
    /// Ollama `/api/chat`, NDJSON.
    Ollama,
}

/// Decodes an answer body that arrives in `chunks`, as the provider would read it.
pub fn provider_stream(wire: Wire, chunks: Vec<Vec<u8>>) -> Decoded {
    use crate::engine::provider::{anthropic, ollama, openai};
    let body = futures::stream::iter(chunks.into_iter().map(|c| Ok::<_, Infallible>(bytes::Bytes::from(c))));
    let events = match wire {
        Wire::OpenAi => openai::decode_body(body),
        Wire::Anthropic => anthropic::decode_body(body),
        Wire::Ollama => ollama::decode_body(body),
    };
    futures::executor::block_on(collect(events))
}

/// Decoded events and error as text, comparable across runs: the tool-call ids Ollama makes up
/// (it sends none) are blanked.
pub fn decoded_text((events, error): Decoded) -> (Vec<String>, Option<String>) {
    let events = events
        .into_iter()
        .map(|event| match event {
            ProviderEvent::ToolCall(mut call) => {
                call.id.clear();
                format!("{:?}", ProviderEvent::ToolCall(call))
            }
            other => format!("{other:?}"),
        })
        .collect();
    (events, error.map(|e| e.to_string()))
}

async fn collect(mut events: crate::engine::provider::EventStream) -> Decoded {
    let mut out = Vec::new();
    while let Some(item) = events.next().await {
        match item {
            Ok(event) => out.push(event),
            Err(e) => return (out, Some(e)),
        }
    }
    (out, None)
}

/// The definition files people write, each read by its own parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefinitionFile {
    /// `.ratchet/agents/<name>.md` (front matter and a body).
    AgentMarkdown,
    /// `.ratchet/agents/<name>.yaml`.
    AgentYaml,
    /// `.ratchet/projects/<name>.yaml`.
    Project,
    /// `.ratchet/autorespond.yaml`.
    Autorespond,
    /// `.ratchet/mcp.json`.
    McpJson,
}

/// Parses the text of a definition file; the error is the message the user would see.
pub fn definition_file(kind: DefinitionFile, text: &str) -> Result<(), String> {
    use crate::orchestra::{agents, autorespond, projects::defs};
    let cwd = Path::new("/fuzz/project");
    match kind {
        DefinitionFile::AgentMarkdown => {
            agents::parse(text, &cwd.join(".ratchet/agents/fuzz.md"), agents::Origin::Project).map(drop)
        }
        DefinitionFile::AgentYaml => {
            agents::parse(text, &cwd.join(".ratchet/agents/fuzz.yaml"), agents::Origin::Project).map(drop)
        }
        DefinitionFile::Project => {
            defs::parse(text, &cwd.join(".ratchet/projects/fuzz.yaml"), defs::ProjectOrigin::Project, cwd).map(drop)
        }
        DefinitionFile::Autorespond => {
            autorespond::Rules::parse(text, &cwd.join(".ratchet/autorespond.yaml")).map(drop)
        }
        DefinitionFile::McpJson => crate::engine::mcp::config::parse(text, cwd).map(drop),
    }
}
