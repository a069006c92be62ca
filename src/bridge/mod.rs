//! Maps ACP onto the engine: the only module that knows both.
//!
//! [`AcpAgent`] is the ACP connection's [`Handler`]: it parses each request's params into the
//! official wire types, calls the [`Engine`], and turns engine results and [`ChatEvent`]s into
//! ACP responses and `session/update` notifications. Conversions live in `to_acp`/`from_acp`;
//! request handlers are grouped by topic in `session_methods` and `prompt`; `questions` puts the
//! engine's questions (plan approvals, free text) to the editor.
//!
//! [`ChatEvent`]: crate::engine::ChatEvent

mod error;
pub(crate) mod from_acp;
mod host;
mod prompt;
pub mod questions;
pub(crate) mod session_methods;
mod to_acp;
mod watch;

use std::sync::{Arc, Mutex};

use futures::FutureExt;
use futures::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::acp::schema::{
    AgentCapabilities, ClientCapabilities, Implementation, InitializeRequest, InitializeResponse, McpCapabilities,
    PromptCapabilities, SessionCapabilities, SessionCloseCapabilities, SessionListCapabilities,
    SessionResumeCapabilities,
};
use crate::acp::{Handler, Peer, RequestContext, RpcError};
use crate::engine::EngineApi;
use agent_client_protocol_schema::ProtocolVersion;
use tokio_util::task::TaskTracker;

/// The ACP agent for one client connection.
pub struct AcpAgent {
    engine: Arc<dyn EngineApi>,
    peer: Peer,
    /// What the client said it can do; defaults (nothing) until `initialize`.
    client: Mutex<ClientCapabilities>,
    /// Prompts running on this connection.
    prompts: watch::Prompts,
    /// Forwarders of other front ends' turns, by session.
    watchers: Mutex<std::collections::HashMap<String, tokio::task::AbortHandle>>,
    /// Short background work (forwarding a cancel, answering permissions).
    tasks: TaskTracker,
}

impl Drop for AcpAgent {
    fn drop(&mut self) {
        for (_, task) in self.watchers.get_mut().unwrap_or_else(|p| p.into_inner()).drain() {
            task.abort();
        }
    }
}

impl AcpAgent {
    /// An agent serving `peer` with `engine`.
    pub fn new(engine: Arc<dyn EngineApi>, peer: Peer) -> Arc<Self> {
        Arc::new(AcpAgent {
            engine,
            peer,
            client: Mutex::new(ClientCapabilities::default()),
            prompts: watch::Prompts::default(),
            watchers: Mutex::default(),
            tasks: TaskTracker::new(),
        })
    }

    /// The client's capabilities as sent in `initialize`.
    pub fn client_capabilities(&self) -> ClientCapabilities {
        self.client.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn initialize(&self, req: InitializeRequest) -> InitializeResponse {
        *self.client.lock().unwrap_or_else(|p| p.into_inner()) = req.client_capabilities.clone();
        tracing::info!(
            client = ?req.client_info.as_ref().map(|i| (&i.name, &i.version)),
            requested = ?req.protocol_version,
            "initialize"
        );
        // A v1-only agent answers 1 whatever the client asked for.
        InitializeResponse::new(ProtocolVersion::V1)
            .agent_capabilities(
                AgentCapabilities::new()
                    .load_session(true)
                    .prompt_capabilities(PromptCapabilities::new().image(true).embedded_context(true))
                    .mcp_capabilities(McpCapabilities::new().http(true))
                    .session_capabilities(
                        SessionCapabilities::new()
                            .list(SessionListCapabilities::new())
                            .resume(SessionResumeCapabilities::new())
                            .close(SessionCloseCapabilities::new()),
                    ),
            )
            .agent_info(Implementation::new("ratchet", env!("CARGO_PKG_VERSION")).title("Ratchet"))
    }
}

/// Parses params into a wire type; a mismatch is -32602 naming the field (its JSON path).
pub(crate) fn parse<T: DeserializeOwned>(params: Value) -> Result<T, RpcError> {
    serde_path_to_error::deserialize(params).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || inner.to_string().contains(&format!("`{path}`")) {
            RpcError::invalid_params(inner)
        } else {
            RpcError::invalid_params(format!("{path}: {inner}"))
        }
    })
}

fn to_value<T: serde::Serialize>(v: T) -> Result<Value, RpcError> {
    serde_json::to_value(v).map_err(RpcError::internal)
}

/// Wraps an async handler body into the boxed future the peer wants.
fn run<F>(f: F) -> BoxFuture<'static, Result<Value, RpcError>>
where
    F: Future<Output = Result<Value, RpcError>> + Send + 'static,
{
    f.boxed()
}

fn ready(result: Result<Value, RpcError>) -> BoxFuture<'static, Result<Value, RpcError>> {
    futures::future::ready(result).boxed()
}

impl Handler for AcpAgent {
    fn handle_request(
        self: Arc<Self>,
        method: &str,
        params: Value,
        cx: RequestContext,
    ) -> BoxFuture<'static, Result<Value, RpcError>> {
        let this = self;
        match method {
            "initialize" => ready(parse(params).map(|r| this.initialize(r)).and_then(to_value)),
            "authenticate" => ready(Err(RpcError::invalid_params(
                "ratchet advertises no authentication methods; configure a provider key instead",
            ))),
            "session/new" => run(async move { this.new_session(parse(params)?, &cx).await }),
            "session/load" => run(async move { this.load_session(parse(params)?, &cx).await }),
            "session/resume" => run(async move { this.resume_session(parse(params)?, &cx).await }),
            "session/list" => run(async move { this.list_sessions(parse(params)?).await }),
            "session/close" => run(async move { this.close_session(parse(params)?).await }),
            "session/set_mode" => run(async move { this.set_mode(parse(params)?).await }),
            "session/set_config_option" => run(async move { this.set_config_option(parse(params)?).await }),
            "session/set_model" => run(async move { this.set_model_legacy(parse(params)?).await }),
            "session/prompt" => match parse(params) {
                Ok(req) => this.prompt(req, cx),
                Err(e) => ready(Err(e)),
            },
            other => ready(Err(RpcError::method_not_found(other))),
        }
    }

    fn handle_notification(self: Arc<Self>, method: &str, params: Value) {
        match method {
            "session/cancel" => match parse(params) {
                Ok(n) => self.cancel(n),
                Err(e) => tracing::warn!(error = %e, "ignoring a malformed session/cancel"),
            },
            other => tracing::debug!(method = other, "ignoring an unknown notification"),
        }
    }
}
