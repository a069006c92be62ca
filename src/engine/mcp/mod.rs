//! MCP client support: the tools of a session's MCP servers, offered to the model like built-in
//! tools.
//!
//! Servers come from the editor (`mcpServers` of `session/new` / `session/load`, converted by the
//! bridge into [`McpServerConfig`]) and from the project (`<cwd>/.ratchet/mcp.json`, read by
//! [`project_servers`]). Each ratchet session owns one [`McpSession`]: creating it costs nothing;
//! the servers start on the first turn that needs tools ([`McpSession::tools`]) and stop with the
//! session ([`McpSession::shutdown`]). A server that fails to start is logged and reported
//! ([`McpSession::start`], [`McpSession::failures`]); the others still work.
//!
//! The model sees a server's tool `echo` of server `everything` as `mcp__everything__echo`.
//! Transports: stdio (a child process) and streamable HTTP. The legacy SSE transport is not
//! supported (the SDK has no client for it); such servers are reported as failures.
//! Tool lists are read once at start (`tools/list_changed` notifications are ignored), and
//! only tools are used: no resources, prompts, sampling or roots.
//!
//! Modules: `config` (mcp.json), `connect` (spawning / dialing a server), `tool` (the [`Tool`]
//! adapter, tool names, result conversion).

pub(crate) mod config;
mod connect;
mod tool;

use std::collections::HashSet;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Mutex as AsyncMutex;
use tokio_util::sync::CancellationToken;

use super::tools::Tool;

pub use config::{PROJECT_CONFIG, project_servers};

/// How long one server may take to start, initialize and list its tools.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// How long [`McpSession::shutdown`] waits for each server to close. Stdio servers that do not
/// exit when their stdin closes get SIGTERM, then SIGKILL (the SDK's stdio shutdown sequence),
/// which finishes in the background if it takes longer.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(8);

/// One MCP server, as configured by the editor or the project.
/// Serialized (for the daemon socket, owner-only) with values; `Debug` hides them.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "transport", rename_all = "snake_case")]
pub enum McpServerConfig {
    /// A child process speaking MCP on stdin/stdout.
    Stdio {
        name: String,
        /// The executable: an absolute path, or a bare name looked up on `PATH`.
        command: PathBuf,
        args: Vec<String>,
        /// Extra environment variables; the server does not inherit ours (see `connect`).
        env: Vec<(String, String)>,
    },
    /// A streamable HTTP endpoint.
    Http { name: String, url: String, headers: Vec<(String, String)> },
    /// A legacy HTTP+SSE endpoint. Not supported: reported as a failure at start.
    Sse { name: String, url: String, headers: Vec<(String, String)> },
}

impl McpServerConfig {
    /// The server's name as configured (the tool prefix is a sanitized form of it).
    pub fn name(&self) -> &str {
        match self {
            McpServerConfig::Stdio { name, .. }
            | McpServerConfig::Http { name, .. }
            | McpServerConfig::Sse { name, .. } => name,
        }
    }

    /// `stdio`, `http` or `sse`.
    pub fn transport(&self) -> &'static str {
        match self {
            McpServerConfig::Stdio { .. } => "stdio",
            McpServerConfig::Http { .. } => "http",
            McpServerConfig::Sse { .. } => "sse",
        }
    }
}

/// Shows names of env variables and headers but never their values (they are often secrets).
impl fmt::Debug for McpServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = |pairs: &[(String, String)]| pairs.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
        match self {
            McpServerConfig::Stdio { name, command, args, env } => f
                .debug_struct("Stdio")
                .field("name", name)
                .field("command", command)
                .field("args", args)
                .field("env", &names(env))
                .finish(),
            McpServerConfig::Http { name, url, headers } | McpServerConfig::Sse { name, url, headers } => f
                .debug_struct(if self.transport() == "http" { "Http" } else { "Sse" })
                .field("name", name)
                .field("url", url)
                .field("headers", &names(headers))
                .finish(),
        }
    }
}

/// A server that could not be started (or listed); the message says what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpFailure {
    /// The server's configured name.
    pub server: String,
    pub message: String,
}

impl fmt::Display for McpFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MCP server \"{}\" is unavailable: {}", self.server, self.message)
    }
}

/// The MCP servers of one ratchet session.
pub struct McpSession {
    configs: Vec<McpServerConfig>,
    /// Working directory for stdio servers (the session's cwd), if set.
    cwd: Option<PathBuf>,
    state: AsyncMutex<State>,
    /// Every failure so far, for [`McpSession::failures`].
    failures: Mutex<Vec<McpFailure>>,
    /// Cancelled by shutdown, so a start in progress stops at once.
    closing: CancellationToken,
}

enum State {
    /// Not started yet (or the last start was abandoned).
    Idle,
    Running {
        servers: Vec<Arc<connect::Server>>,
        tools: Vec<Arc<dyn Tool>>,
    },
    /// Shut down; stays empty.
    Closed,
}

impl McpSession {
    /// A session's servers, not started yet. Does no I/O.
    pub fn new(configs: Vec<McpServerConfig>) -> Self {
        McpSession {
            configs,
            cwd: None,
            state: AsyncMutex::new(State::Idle),
            failures: Mutex::new(Vec::new()),
            closing: CancellationToken::new(),
        }
    }

    /// Runs stdio servers in `cwd` (normally the session's root) instead of ratchet's own.
    pub fn with_cwd(mut self, cwd: PathBuf) -> Self {
        self.cwd = Some(cwd);
        self
    }

    /// The configured servers.
    pub fn configs(&self) -> &[McpServerConfig] {
        &self.configs
    }

    /// Starts every server (concurrently, each within [`CONNECT_TIMEOUT`]) unless already
    /// started, and returns the failures of this start: empty when nothing was started now.
    /// Use it to tell the user once which servers are missing.
    pub async fn start(&self) -> Vec<McpFailure> {
        let mut state = self.state.lock().await;
        if !matches!(*state, State::Idle) {
            return Vec::new();
        }
        let started = tokio::select! {
            started = self.connect_all() => started,
            // Dropping the half-started connections kills their processes.
            _ = self.closing.cancelled() => return Vec::new(),
        };
        let (servers, tools, failures) = started;
        *state = State::Running { servers, tools };
        lock(&self.failures).extend(failures.iter().cloned());
        failures
    }

    /// The tools of every running server, starting them on the first call.
    /// Empty after [`McpSession::shutdown`].
    pub async fn tools(&self) -> Vec<Arc<dyn Tool>> {
        self.start().await;
        match &*self.state.lock().await {
            State::Running { tools, .. } => tools.clone(),
            State::Idle | State::Closed => Vec::new(),
        }
    }

    /// Every server that failed to start so far.
    pub fn failures(&self) -> Vec<McpFailure> {
        lock(&self.failures).clone()
    }

    /// Closes every server (stdio servers are stopped, killed if need be). Later calls to
    /// [`McpSession::tools`] return nothing; tools handed out earlier answer with an error.
    pub async fn shutdown(&self) {
        self.closing.cancel();
        let old = std::mem::replace(&mut *self.state.lock().await, State::Closed);
        if let State::Running { servers, .. } = old {
            futures::future::join_all(servers.iter().map(|s| s.close(SHUTDOWN_TIMEOUT))).await;
        }
    }

    /// Connects all servers; returns the running ones, their tools and the failures.
    async fn connect_all(&self) -> (Vec<Arc<connect::Server>>, Vec<Arc<dyn Tool>>, Vec<McpFailure>) {
        let mut failures = Vec::new();
        // Two servers whose names sanitize alike would give their tools the same names.
        let mut prefixes = HashSet::new();
        let mut wanted = Vec::new();
        for config in &self.configs {
            if prefixes.insert(tool::sanitize(config.name())) {
                wanted.push(config);
            } else {
                failures.push(McpFailure {
                    server: config.name().to_string(),
                    message: "another server has the same name; rename one of them".to_string(),
                });
            }
        }

        let cwd = self.cwd.as_deref();
        let attempts = wanted.iter().map(|config| async move {
            let result = match tokio::time::timeout(CONNECT_TIMEOUT, connect::connect(config, cwd)).await {
                Ok(result) => result,
                Err(_) => Err(format!(
                    "it did not start within {}s; check that it runs on its own, or remove it from the config",
                    CONNECT_TIMEOUT.as_secs()
                )),
            };
            (*config, result)
        });

        let mut servers = Vec::new();
        let mut tools: Vec<Arc<dyn Tool>> = Vec::new();
        let mut taken = HashSet::new();
        for (config, result) in futures::future::join_all(attempts).await {
            match result {
                Ok(server) => {
                    let server = Arc::new(server);
                    tracing::info!(server = %server.name, tools = server.tools.len(), "MCP server started");
                    tools.extend(tool::adapters(&server, &mut taken));
                    servers.push(server);
                }
                Err(message) => {
                    tracing::warn!(server = %config.name(), transport = config.transport(), "MCP server failed: {message}");
                    failures.push(McpFailure { server: config.name().to_string(), message });
                }
            }
        }
        (servers, tools, failures)
    }
}

/// Locks a std mutex, ignoring poisoning (the data stays consistent: we only push/clone).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_env_and_header_values() {
        let stdio = McpServerConfig::Stdio {
            name: "gh".into(),
            command: "/bin/gh-mcp".into(),
            args: vec!["--stdio".into()],
            env: vec![("GITHUB_TOKEN".into(), "ghp_supersecretvalue".into())],
        };
        let http = McpServerConfig::Http {
            name: "remote".into(),
            url: "https://example.com/mcp".into(),
            headers: vec![("Authorization".into(), "Bearer topsecret".into())],
        };
        let shown = format!("{stdio:?} {http:?}");
        assert!(shown.contains("GITHUB_TOKEN") && shown.contains("Authorization"), "{shown}");
        assert!(!shown.contains("supersecret") && !shown.contains("topsecret"), "{shown}");
        assert_eq!(stdio.transport(), "stdio");
        assert_eq!(http.name(), "remote");
    }

    #[tokio::test]
    async fn sse_and_duplicate_names_are_reported_and_others_unaffected() {
        let sse = McpServerConfig::Sse { name: "old".into(), url: "http://127.0.0.1:9/sse".into(), headers: vec![] };
        let dup = McpServerConfig::Sse { name: "old".into(), url: "http://127.0.0.1:9/sse".into(), headers: vec![] };
        let session = McpSession::new(vec![sse, dup]);
        assert!(session.failures().is_empty(), "nothing happens before the first use");
        let failures = session.start().await;
        assert_eq!(failures.len(), 2, "{failures:?}");
        assert!(failures.iter().any(|f| f.message.contains("same name")), "{failures:?}");
        assert!(failures.iter().any(|f| f.message.contains("SSE")), "{failures:?}");
        assert!(session.start().await.is_empty(), "a second start reports nothing new");
        assert!(session.tools().await.is_empty());
        assert_eq!(session.failures().len(), 2);
        session.shutdown().await;
        assert!(session.tools().await.is_empty());
    }
}
