//! MCP client support against a real, independently written MCP server: the reference
//! `@modelcontextprotocol/server-everything` from npm, run with `node` over stdio through the
//! library API ([`McpSession`]). Install it first with `.ci/install-mcp-servers` (CI does).
//!
//! Covers: starting, the prefixed tool names, kinds and previews, a call whose text
//! round-trips, env passing (and no leaking of ours), redaction, binary content, invalid
//! arguments, cancellation, a missing server beside a working one, and shutdown killing the child.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ratchet::engine::mcp::{McpServerConfig, McpSession};
use ratchet::engine::tools::redact::Redactor;
use ratchet::engine::tools::{Display, NoHost, Tool, ToolContext, ToolKind};
use serde_json::json;
use tokio_util::sync::CancellationToken;

const PACKAGE: &str = "@modelcontextprotocol/server-everything";

/// Awaits `fut`, failing the test if it takes longer than `secs`.
async fn within<T>(secs: u64, what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), fut)
        .await
        .unwrap_or_else(|_| panic!("{what} took longer than {secs}s"))
}

/// The server's entry script, or a failure saying how to install it.
fn server_entry() -> PathBuf {
    let entry =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/mcp-servers/node_modules").join(PACKAGE).join("dist/index.js");
    assert!(
        entry.is_file(),
        "the reference MCP server is not installed ({} is missing); run .ci/install-mcp-servers first",
        entry.display()
    );
    entry
}

/// The absolute path of `node`, found on PATH.
fn node() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(if cfg!(windows) { "node.exe" } else { "node" }))
        .find(|p| p.is_file())
        .expect("`node` is not on PATH; install Node.js 20+ (needed by .ci/install-mcp-servers too)")
}

/// The everything server; `marker` is an extra (ignored) argument to find its process by.
fn everything(marker: &str) -> McpServerConfig {
    McpServerConfig::Stdio {
        name: "everything".into(),
        command: node(),
        args: vec![server_entry().display().to_string(), "stdio".into(), marker.into()],
        env: vec![("RATCHET_MCP_TEST_VAR".into(), "passed-through".into())],
    }
}

fn context(dir: &Path, redactor: Redactor) -> ToolContext {
    ToolContext {
        cwd: dir.to_path_buf(),
        extra_roots: vec![],
        deny_paths: vec![],
        host: Arc::new(NoHost),
        cancel: CancellationToken::new(),
        redactor: Arc::new(redactor),
        shell_timeout: Duration::from_secs(10),
        call_id: None,
        command_env: Default::default(),
        turn: std::sync::Arc::new(ratchet::engine::turn_scope::NoTurn),
    }
}

fn find<'a>(tools: &'a [Arc<dyn Tool>], name: &str) -> &'a Arc<dyn Tool> {
    let names: Vec<String> = tools.iter().map(|t| t.spec().name).collect();
    tools.iter().find(|t| t.spec().name == name).unwrap_or_else(|| panic!("no tool {name} among {names:?}"))
}

/// Pids of processes whose command line contains `marker` (Linux only; empty elsewhere).
fn pids_with(marker: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    entries
        .filter_map(|e| {
            let e = e.ok()?;
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            // A zombie (state Z) has exited already.
            let zombie = stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z'));
            (String::from_utf8_lossy(&cmdline).contains(marker) && !zombie).then_some(pid)
        })
        .collect()
}

#[tokio::test]
async fn everything_server_tools_round_trip_and_shutdown_kills_it() {
    let marker = format!("--ratchet-test-{}", uuid::Uuid::new_v4());
    let missing = McpServerConfig::Stdio {
        name: "ghost".into(),
        command: "/nonexistent/ratchet-test/mcp-server".into(),
        args: vec![],
        env: vec![],
    };
    let dir = tempfile::tempdir().unwrap();
    let session = McpSession::new(vec![everything(&marker), missing]).with_cwd(dir.path().to_path_buf());

    // Starting: the working server's tools arrive, the missing one is reported.
    let tools = within(20, "starting the servers", session.tools()).await;
    let failures = session.failures();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].server, "ghost");
    assert!(failures[0].message.contains("not found"), "{}", failures[0]);
    assert!(tools.iter().all(|t| t.spec().name.starts_with("mcp__everything__")));
    if cfg!(target_os = "linux") {
        assert_eq!(pids_with(&marker).len(), 1, "one server process runs");
    }

    let echo = find(&tools, "mcp__everything__echo");
    let spec = echo.spec();
    assert!(!spec.description.is_empty());
    assert_eq!(spec.parameters["properties"]["message"]["type"], "string", "{}", spec.parameters);
    assert_eq!(echo.kind(), ToolKind::Read, "echo is annotated readOnlyHint: true");

    // A call round-trips, with secrets redacted.
    let cx = context(dir.path(), Redactor::new(vec![("DEMO_TOKEN".into(), "tok-1234567890".into())]));
    let preview = within(5, "preview", echo.preview(&json!({"message": "hi"}), &cx)).await;
    assert_eq!(preview.title, "everything: echo");
    let out = within(5, "echo", echo.run(json!({"message": "round trip ✓"}), &cx)).await;
    assert!(!out.is_error, "{}", out.content);
    assert_eq!(out.content, "Echo: round trip ✓");
    let out = within(5, "echo with a secret", echo.run(json!({"message": "key tok-1234567890"}), &cx)).await;
    assert_eq!(out.content, "Echo: key [REDACTED:DEMO_TOKEN]");
    assert_eq!(out.display, vec![Display::Text(out.content.clone())], "the editor sees the redacted text too");

    // Invalid arguments are an error result, not a panic.
    let out = within(5, "echo with bad args", echo.run(json!({"message": 42}), &cx)).await;
    assert!(out.is_error, "{}", out.content);
    let out = within(5, "echo with non-object args", echo.run(json!("just a string"), &cx)).await;
    assert!(out.is_error && out.content.contains("JSON object"), "{}", out.content);

    // The configured env reaches the server; ours (beyond the basics) does not.
    let env = within(5, "get-env", find(&tools, "mcp__everything__get-env").run(json!({}), &cx)).await;
    assert!(env.content.contains("passed-through"), "{}", env.content);
    assert!(env.content.contains("PATH"), "PATH is inherited: {}", env.content);
    assert!(!env.content.contains("CARGO_PKG_NAME"), "cargo's variables must not leak: {}", env.content);

    // Binary content is described, not dumped.
    let image = within(5, "get-tiny-image", find(&tools, "mcp__everything__get-tiny-image").run(json!({}), &cx)).await;
    assert!(image.content.contains("[image: image/png"), "{}", image.content);

    // Cancelling a long call ends it at once.
    let slow = find(&tools, "mcp__everything__trigger-long-running-operation");
    let cancel_cx = context(dir.path(), Redactor::default());
    let cancel = cancel_cx.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        cancel.cancel();
    });
    let out = within(3, "cancelled call", slow.run(json!({"duration": 30, "steps": 30}), &cancel_cx)).await;
    assert!(out.is_error && out.content == "cancelled", "{}", out.content);
    // The server still answers afterwards.
    let out = within(5, "echo after cancel", echo.run(json!({"message": "still here"}), &cx)).await;
    assert_eq!(out.content, "Echo: still here");

    // Shutdown stops the child; tools handed out before fail cleanly; no restart.
    within(10, "shutdown", session.shutdown()).await;
    if cfg!(target_os = "linux") {
        within(5, "the child to exit", async {
            while !pids_with(&marker).is_empty() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
    }
    let out = within(5, "echo after shutdown", echo.run(json!({"message": "x"}), &cx)).await;
    assert!(out.is_error && out.content.contains("shut down"), "{}", out.content);
    assert!(within(5, "tools after shutdown", session.tools()).await.is_empty());
}

#[tokio::test]
async fn a_server_whose_command_does_not_exist_is_reported_not_fatal() {
    let session = McpSession::new(vec![McpServerConfig::Stdio {
        name: "missing".into(),
        command: "/nonexistent/ratchet-test/no-such-server".into(),
        args: vec!["--stdio".into()],
        env: vec![],
    }]);
    let failures = within(20, "start", session.start()).await;
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(failures[0].to_string().contains("\"missing\""), "{}", failures[0]);
    assert!(failures[0].message.contains("install the server"), "{}", failures[0]);
    assert!(within(5, "tools", session.tools()).await.is_empty());
    assert_eq!(session.failures(), failures, "failures stay available");
    within(5, "shutdown", session.shutdown()).await;
}

#[tokio::test]
async fn everything_server_over_streamable_http() {
    // A free port for the server (a tiny race with other processes is acceptable in tests).
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut server = tokio::process::Command::new(node())
        .arg(server_entry())
        .arg("streamableHttp")
        .env("PORT", port.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("cannot start node");
    within(10, "the HTTP server to listen", async {
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;

    let session = McpSession::new(vec![McpServerConfig::Http {
        name: "remote everything".into(),
        url: format!("http://127.0.0.1:{port}/mcp"),
        headers: vec![("X-Ratchet-Test".into(), "1".into())],
    }]);
    let tools = within(20, "connecting over HTTP", session.tools()).await;
    assert!(session.failures().is_empty(), "{:?}", session.failures());
    let echo = find(&tools, "mcp__remote_everything__echo");
    let dir = tempfile::tempdir().unwrap();
    let cx = context(dir.path(), Redactor::default());
    assert_eq!(within(5, "preview", echo.preview(&json!({}), &cx)).await.title, "remote everything: echo");
    let out = within(5, "echo over HTTP", echo.run(json!({"message": "over http"}), &cx)).await;
    assert_eq!((out.is_error, out.content.as_str()), (false, "Echo: over http"));
    within(10, "shutdown", session.shutdown()).await;
    let _ = server.kill().await;
}
