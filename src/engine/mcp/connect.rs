//! Starting one MCP server: spawning a stdio child or dialing a streamable HTTP endpoint,
//! the MCP handshake, and listing its tools (all pages). Also closing it again.
//!
//! Stdio children never write to our stdout (that is the ACP channel): their stdout is the MCP
//! pipe and their stderr goes to the log, with the last lines kept for error messages. They do
//! not inherit our environment either, which holds provider API keys: like the reference MCP
//! SDK, only a few harmless variables (`PATH`, `HOME`, ...) pass, plus the configured ones. On
//! Unix each child leads its own process group, so stopping it also stops what it spawned
//! (`npx` → `node`).

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue};
use rmcp::model::{ClientCapabilities, ClientConfig, Implementation};
use rmcp::service::{Peer, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{RoleClient, ServiceExt};
use tokio::io::AsyncReadExt;
use tokio::process::{ChildStderr, Command};

use super::McpServerConfig;

/// Environment variables a stdio server inherits from us (the MCP TypeScript SDK's default set,
/// plus locale and temp dir). Everything else must be configured explicitly.
#[cfg(unix)]
const INHERITED_ENV: &[&str] = &["HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER", "LANG", "LC_ALL", "TMPDIR"];
#[cfg(windows)]
const INHERITED_ENV: &[&str] = &[
    "APPDATA",
    "HOMEDRIVE",
    "HOMEPATH",
    "LOCALAPPDATA",
    "PATH",
    "PATHEXT",
    "PROCESSOR_ARCHITECTURE",
    "PROGRAMFILES",
    "SYSTEMDRIVE",
    "SYSTEMROOT",
    "TEMP",
    "TMP",
    "USERNAME",
    "USERPROFILE",
    "COMSPEC",
];
#[cfg(not(any(unix, windows)))]
const INHERITED_ENV: &[&str] = &["PATH"];

/// Headers the HTTP transport sets itself; configuring them would break the protocol.
const RESERVED_HEADERS: &[&str] = &["accept", "mcp-session-id", "last-event-id"];

/// Stderr lines kept for error messages.
const STDERR_TAIL: usize = 20;
/// Longer stderr lines are cut.
const MAX_STDERR_LINE: usize = 2000;

/// A connected server and the tools it listed.
pub(super) struct Server {
    /// The configured name.
    pub name: String,
    pub peer: Peer<RoleClient>,
    pub tools: Vec<rmcp::model::Tool>,
    /// What it was configured with under secret-looking names (its `env`, its HTTP headers):
    /// a server that prints them must not hand them to the model or the editor.
    pub secrets: crate::engine::tools::redact::Redactor,
    service: tokio::sync::Mutex<Option<RunningService<RoleClient, ClientConfig>>>,
    closed: AtomicBool,
}

impl Server {
    /// True once [`Server::close`] began.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// Ends the MCP session and stops the process (stdin closed, then SIGTERM, then SIGKILL).
    /// Waits at most `timeout`; the rest of the sequence then finishes in the background.
    pub async fn close(&self, timeout: Duration) {
        self.closed.store(true, Ordering::Relaxed);
        let Some(mut service) = self.service.lock().await.take() else {
            return;
        };
        match service.close_with_timeout(timeout).await {
            Ok(Some(reason)) => tracing::debug!(server = %self.name, ?reason, "MCP server closed"),
            Ok(None) => tracing::warn!(server = %self.name, "MCP server still closing after {timeout:?}"),
            Err(e) => tracing::warn!(server = %self.name, "MCP server's task failed while closing: {e}"),
        }
    }
}

/// The server's configured values whose names look secret (`*_TOKEN`, `*_KEY`, ...; a header's
/// `-` counts as `_`), and every `Authorization` header (whole, and without its scheme).
fn configured_secrets(config: &McpServerConfig) -> Vec<(String, String)> {
    let (McpServerConfig::Stdio { env: pairs, .. }
    | McpServerConfig::Http { headers: pairs, .. }
    | McpServerConfig::Sse { headers: pairs, .. }) = config;
    let mut secrets = Vec::new();
    for (name, value) in pairs {
        if name.eq_ignore_ascii_case("authorization") {
            if let Some((_, credentials)) = value.split_once(' ') {
                secrets.push((name.clone(), credentials.trim().to_string()));
            }
            secrets.push((name.clone(), value.clone()));
        } else if crate::engine::secret_env::is_secret_name(&name.replace('-', "_")) {
            secrets.push((name.clone(), value.clone()));
        }
    }
    secrets
}

/// Starts the server, runs the MCP handshake and lists its tools.
/// The error says what went wrong and what to check.
pub(super) async fn connect(config: &McpServerConfig, cwd: Option<&Path>) -> Result<Server, String> {
    let (name, service) = match config {
        McpServerConfig::Stdio { name, command, args, env } => {
            (name, connect_stdio(name, stdio_command(command, args, env, cwd), command, cwd).await?)
        }
        McpServerConfig::Http { name, url, headers } => (name, connect_http(url, headers).await?),
        McpServerConfig::Sse { url, .. } => {
            return Err(format!(
                "the legacy SSE transport ({url}) is not supported; use the server's streamable HTTP \
                 endpoint (type \"http\") or run it over stdio"
            ));
        }
    };
    let tools =
        service.peer().list_all_tools().await.map_err(|e| format!("it started but listing its tools failed: {e}"))?;
    Ok(Server {
        name: name.clone(),
        peer: service.peer().clone(),
        tools,
        secrets: crate::engine::tools::redact::Redactor::new(configured_secrets(config)),
        service: tokio::sync::Mutex::new(Some(service)),
        closed: AtomicBool::new(false),
    })
}

/// Who we are, for the server; we offer no client capabilities (no sampling, roots, ...).
fn client_config() -> ClientConfig {
    ClientConfig::new(ClientCapabilities::default(), Implementation::new("ratchet", env!("CARGO_PKG_VERSION")))
}

/// The command for a stdio server: its args, a cleaned environment and the working directory.
pub(super) fn stdio_command(command: &Path, args: &[String], env: &[(String, String)], cwd: Option<&Path>) -> Command {
    let mut cmd = Command::new(command);
    cmd.args(args).env_clear();
    for key in INHERITED_ENV {
        if let Some(value) = std::env::var_os(key) {
            cmd.env(key, value);
        }
    }
    for (key, value) in env {
        cmd.env(key, value);
    }
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    cmd
}

async fn connect_stdio(
    name: &str,
    cmd: Command,
    command: &Path,
    cwd: Option<&Path>,
) -> Result<RunningService<RoleClient, ClientConfig>, String> {
    #[allow(unused_mut)]
    let mut wrapped = process_wrap::tokio::CommandWrap::from(cmd);
    #[cfg(unix)]
    wrapped.wrap(process_wrap::tokio::ProcessGroup::leader());
    let (transport, stderr) = TokioChildProcess::builder(wrapped)
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| spawn_error(command, cwd, &e))?;
    let tail = Arc::new(Mutex::new(VecDeque::new()));
    let reader = stderr.map(|s| tokio::spawn(forward_stderr(name.to_string(), s, tail.clone())));
    match client_config().serve(transport).await {
        Ok(service) => Ok(service),
        Err(e) => {
            // The child is gone or going; give its last words a moment to arrive.
            if let Some(reader) = reader {
                let _ = tokio::time::timeout(Duration::from_millis(500), reader).await;
            }
            let tail: Vec<String> = super::lock(&tail).iter().cloned().collect();
            let mut message = format!("`{}` did not complete the MCP handshake: {e}", command.display());
            if tail.is_empty() {
                message.push_str("; check that the command starts an MCP server on stdio");
            } else {
                message.push_str("; its last output was:\n");
                message.push_str(&tail.join("\n"));
            }
            Err(message)
        }
    }
}

fn spawn_error(command: &Path, cwd: Option<&Path>, e: &std::io::Error) -> String {
    if let Some(dir) = cwd.filter(|d| !d.is_dir()) {
        return format!("its working directory {} does not exist", dir.display());
    }
    match e.kind() {
        std::io::ErrorKind::NotFound => format!(
            "command `{}` was not found; install the server or give the full path of its executable",
            command.display()
        ),
        std::io::ErrorKind::PermissionDenied => {
            format!("command `{}` is not executable (permission denied); check its permissions", command.display())
        }
        _ => format!("cannot start `{}`: {e}", command.display()),
    }
}

/// Logs a child's stderr line by line and keeps the last lines in `tail`. Ends at EOF.
async fn forward_stderr(server: String, mut stderr: ChildStderr, tail: Arc<Mutex<VecDeque<String>>>) {
    let mut chunk = [0u8; 4096];
    let mut line = Vec::new();
    let emit = |line: &[u8]| {
        let text = String::from_utf8_lossy(line).trim_end_matches('\r').to_string();
        tracing::debug!(target: "ratchet::mcp::stderr", server = %server, "{text}");
        let mut tail = super::lock(&tail);
        if tail.len() == STDERR_TAIL {
            tail.pop_front();
        }
        tail.push_back(text);
    };
    loop {
        let n = match stderr.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for &b in &chunk[..n] {
            if b == b'\n' {
                emit(&line);
                line.clear();
            } else if line.len() < MAX_STDERR_LINE {
                line.push(b);
            }
        }
    }
    if !line.is_empty() {
        emit(&line);
    }
}

async fn connect_http(
    url: &str,
    headers: &[(String, String)],
) -> Result<RunningService<RoleClient, ClientConfig>, String> {
    let parsed =
        reqwest::Url::parse(url).map_err(|e| format!("its URL `{url}` is not valid ({e}); fix it in the config"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("its URL `{url}` is not http(s); fix it in the config"));
    }
    // reqwest is built without a default TLS crypto provider.
    crate::engine::provider::http::install_crypto_provider();
    let config = StreamableHttpClientTransportConfig::with_uri(url).custom_headers(header_map(headers)?);
    let transport = StreamableHttpClientTransport::from_config(config);
    client_config().serve(transport).await.map_err(|e| {
        if e.is_authorization_required() {
            format!(
                "{url} requires authorization; add the token as a header (e.g. \"Authorization\": \
                 \"Bearer ...\") in the server's config (OAuth sign-in is not supported)"
            )
        } else {
            format!("cannot connect to {url}: {e}; check the URL and that the server is running")
        }
    })
}

/// Converts configured headers for the transport. Values are marked sensitive (kept out of logs).
pub(super) fn header_map(headers: &[(String, String)]) -> Result<HashMap<HeaderName, HeaderValue>, String> {
    let mut map = HashMap::new();
    for (name, value) in headers {
        let key = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| format!("header name `{name}` is not valid; fix it in the config"))?;
        if RESERVED_HEADERS.contains(&key.as_str()) {
            return Err(format!("header `{name}` is set by the MCP transport itself; remove it from the config"));
        }
        let mut value = HeaderValue::from_str(value.trim()).map_err(|_| {
            format!("the value of header `{name}` is not valid (control characters?); fix it in the config")
        })?;
        value.set_sensitive(true);
        map.insert(key, value);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use super::*;

    #[test]
    fn stdio_command_has_args_config_env_and_no_inherited_secrets() {
        let env = vec![("API_TOKEN".to_string(), "abc".to_string()), ("PATH".to_string(), "/custom/bin".to_string())];
        let cmd = stdio_command(
            Path::new("/usr/bin/server"),
            &["--stdio".into(), "x y".into()],
            &env,
            Some(Path::new("/tmp")),
        );
        let std = cmd.as_std();
        assert_eq!(std.get_program(), OsStr::new("/usr/bin/server"));
        assert_eq!(std.get_args().collect::<Vec<_>>(), [OsStr::new("--stdio"), OsStr::new("x y")]);
        assert_eq!(std.get_current_dir(), Some(Path::new("/tmp")));
        let envs: HashMap<_, _> = std.get_envs().collect();
        assert_eq!(envs.get(OsStr::new("API_TOKEN")), Some(&Some(OsStr::new("abc"))));
        // A configured PATH wins over the inherited one.
        assert_eq!(envs.get(OsStr::new("PATH")), Some(&Some(OsStr::new("/custom/bin"))));
        // Only allow-listed variables are passed on (env_clear drops the rest).
        for key in envs.keys() {
            let key = key.to_str().unwrap();
            assert!(INHERITED_ENV.contains(&key) || key == "API_TOKEN", "unexpected variable {key}");
        }
    }

    #[test]
    fn header_map_converts_and_rejects_bad_headers() {
        let ok =
            header_map(&[("Authorization".into(), "Bearer t0ken".into()), ("X-Team".into(), " a ".into())]).unwrap();
        assert_eq!(ok[&HeaderName::from_static("authorization")], "Bearer t0ken");
        assert!(ok[&HeaderName::from_static("authorization")].is_sensitive());
        assert_eq!(ok[&HeaderName::from_static("x-team")], "a");
        assert!(header_map(&[("bad header".into(), "v".into())]).unwrap_err().contains("bad header"));
        assert!(header_map(&[("X-A".into(), "line\nbreak".into())]).unwrap_err().contains("X-A"));
        assert!(header_map(&[("Accept".into(), "text/plain".into())]).unwrap_err().contains("remove it"));
    }

    #[tokio::test]
    async fn missing_command_and_bad_url_say_what_to_do() {
        let missing = McpServerConfig::Stdio {
            name: "nope".into(),
            command: "/definitely/not/here/mcp-server".into(),
            args: vec![],
            env: vec![],
        };
        let err = connect(&missing, None).await.err().unwrap();
        assert!(err.contains("not found") && err.contains("/definitely/not/here"), "{err}");
        let in_missing_dir = connect(&missing, Some(Path::new("/definitely/not/here"))).await.err().unwrap();
        assert!(in_missing_dir.contains("working directory"), "{in_missing_dir}");
        let bad = McpServerConfig::Http { name: "h".into(), url: "not a url".into(), headers: vec![] };
        assert!(connect(&bad, None).await.err().unwrap().contains("not valid"));
        let ftp = McpServerConfig::Http { name: "h".into(), url: "ftp://example.com".into(), headers: vec![] };
        assert!(connect(&ftp, None).await.err().unwrap().contains("http(s)"));
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_command_that_exits_reports_its_stderr() {
        let script = McpServerConfig::Stdio {
            name: "crash".into(),
            command: "sh".into(),
            args: vec!["-c".into(), "echo 'missing API key' >&2; exit 3".into()],
            env: vec![],
        };
        let err = connect(&script, None).await.err().unwrap();
        assert!(err.contains("handshake") && err.contains("missing API key"), "{err}");
    }
}
