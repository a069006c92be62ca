//! Shared harness for the integration tests: a test environment (temp dirs and provider
//! variables), the mock LLM server, the scripted ACP client, and schema validation.

#![allow(dead_code)]

pub mod acp_client;
pub mod daemon;
pub mod faults;
pub mod mock_llm;
pub mod schema;
pub mod tool_calls;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use tempfile::TempDir;

pub use acp_client::{AcpClient, Message, PermissionPolicy, Reply, RpcError};
pub use mock_llm::{Finish, MockLlm, MockReply};
pub use tool_calls::{ToolCallView, tool_calls, tool_events};

/// Upper bound for any single wait in a test. A hang fails the test instead of blocking CI.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// The model name tests configure through `RATCHET_MODEL`.
pub const MODEL: &str = "mock-model";

pub const OPENAI_KEY: &str = "sk-test-openai-key";
pub const ANTHROPIC_KEY: &str = "sk-ant-test-key";

/// Path of the binary under test.
pub fn ratchet_bin() -> &'static str {
    env!("CARGO_BIN_EXE_ratchet")
}

/// Awaits `fut`, panicking with `what` if it takes longer than [`TIMEOUT`].
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(TIMEOUT, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {TIMEOUT:?} waiting for {what}"),
    }
}

/// An isolated environment for one or more ratchet processes: a fresh `HOME`, a fresh
/// `RATCHET_HOME`, a workspace directory to use as session `cwd`, and a cleared process
/// environment plus the provider variables. Processes spawned from the same `TestEnv`
/// share the data directory, which is how restarts are tested.
pub struct TestEnv {
    root: TempDir,
    vars: Vec<(String, String)>,
}

impl TestEnv {
    /// A bare environment with no provider configured.
    pub fn new() -> TestEnv {
        let root = tempfile::Builder::new().prefix("ratchet-it-").tempdir().expect("create temp dir");
        for sub in ["home", "ratchet-home", "workspace", "workspace-b"] {
            std::fs::create_dir_all(root.path().join(sub)).expect("create test dir");
        }
        let mut env = TestEnv { root, vars: Vec::new() };
        let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".to_owned());
        let home = env.home_dir();
        let ratchet_home = env.ratchet_home();
        env.set("PATH", path);
        env.set("HOME", home.to_str().unwrap());
        env.set("RATCHET_HOME", ratchet_home.to_str().unwrap());
        env.set("RUST_LOG", "debug");
        env.set("NO_COLOR", "1");
        env
    }

    /// The provider is the OpenAI-compatible mock.
    pub fn openai(mock: &MockLlm) -> TestEnv {
        let mut env = TestEnv::new();
        env.set("RATCHET_PROVIDER", "openai");
        env.set("RATCHET_MODEL", MODEL);
        env.set("OPENAI_BASE_URL", mock.openai_base_url());
        env.set("OPENAI_API_KEY", OPENAI_KEY);
        env
    }

    /// The provider is the Anthropic mock.
    pub fn anthropic(mock: &MockLlm) -> TestEnv {
        let mut env = TestEnv::new();
        env.set("RATCHET_PROVIDER", "anthropic");
        env.set("RATCHET_MODEL", MODEL);
        env.set("ANTHROPIC_BASE_URL", mock.base_url());
        env.set("ANTHROPIC_API_KEY", ANTHROPIC_KEY);
        env
    }

    /// The provider is the Ollama mock.
    pub fn ollama(mock: &MockLlm) -> TestEnv {
        let mut env = TestEnv::new();
        env.set("RATCHET_PROVIDER", "ollama");
        env.set("RATCHET_MODEL", MODEL);
        env.set("OLLAMA_HOST", mock.base_url());
        env
    }

    /// The offline `scripted` provider, answering each turn with the next text of `turns`.
    pub fn scripted(turns: &[&str]) -> TestEnv {
        let mut env = TestEnv::new();
        let script = json!({
            "turns": turns.iter().map(|t| json!({"text": t})).collect::<Vec<_>>()
        });
        let path = env.root.path().join("script.json");
        std::fs::write(&path, serde_json::to_string_pretty(&script).unwrap()).expect("write script");
        env.set("RATCHET_PROVIDER", "scripted");
        env.set("RATCHET_MODEL", MODEL);
        env.set("RATCHET_SCRIPT", path.to_str().unwrap());
        env
    }

    /// Sets (or replaces) one environment variable of the spawned processes.
    pub fn set(&mut self, key: &str, value: impl Into<String>) -> &mut Self {
        let value = value.into();
        self.vars.retain(|(k, _)| k != key);
        self.vars.push((key.to_owned(), value));
        self
    }

    pub fn remove(&mut self, key: &str) -> &mut Self {
        self.vars.retain(|(k, _)| k != key);
        self
    }

    pub fn vars(&self) -> &[(String, String)] {
        &self.vars
    }

    /// Writes `RATCHET_HOME/config.toml`.
    pub fn write_config(&self, toml: &str) {
        std::fs::write(self.ratchet_home().join("config.toml"), toml).expect("write config");
    }

    /// `HOME` of the spawned processes.
    pub fn home_dir(&self) -> PathBuf {
        canonical(&self.root.path().join("home"))
    }

    /// `RATCHET_HOME` of the spawned processes.
    pub fn ratchet_home(&self) -> PathBuf {
        canonical(&self.root.path().join("ratchet-home"))
    }

    /// An absolute project directory to use as a session's `cwd`.
    pub fn workspace(&self) -> PathBuf {
        canonical(&self.root.path().join("workspace"))
    }

    /// A second, different project directory.
    pub fn workspace_b(&self) -> PathBuf {
        canonical(&self.root.path().join("workspace-b"))
    }

    /// `workspace()` as a string, for JSON params.
    pub fn cwd(&self) -> String {
        self.workspace().to_str().unwrap().to_owned()
    }

    /// A `ratchet` command with this environment (cleared process env plus our vars), run
    /// from the home directory (not the workspace: the agent must use the session `cwd`).
    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(ratchet_bin());
        cmd.args(args)
            .env_clear()
            .envs(self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir(self.home_dir())
            .kill_on_drop(true);
        cmd
    }

    /// Runs `ratchet ARGS` to completion (stdin closed), with the global timeout.
    pub async fn run(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = self.command(args);
        cmd.stdin(std::process::Stdio::null());
        within(&format!("`ratchet {}` to exit", args.join(" ")), cmd.output()).await.expect("run ratchet")
    }

    /// Spawns `ratchet acp`.
    pub async fn spawn_acp(&self) -> AcpClient {
        AcpClient::spawn(self, &["acp"]).await
    }

    /// Spawns `ratchet acp` and completes `initialize`.
    pub async fn spawn_initialized(&self) -> AcpClient {
        let mut client = self.spawn_acp().await;
        client.initialize().await;
        client
    }
}

fn canonical(p: &Path) -> PathBuf {
    p.canonicalize().unwrap_or_else(|_| p.to_path_buf())
}

// ---------------------------------------------------------------------------------------------
// Reading session/update notifications

/// The `update.sessionUpdate` discriminator of a `session/update` params object.
pub fn update_kind(params: &Value) -> &str {
    params["update"]["sessionUpdate"].as_str().unwrap_or("")
}

/// The updates of one kind.
pub fn updates_of<'a>(updates: &'a [Value], kind: &str) -> Vec<&'a Value> {
    updates.iter().filter(|u| update_kind(u) == kind).collect()
}

/// The concatenated text of the text-content chunks of one kind
/// (`agent_message_chunk`, `agent_thought_chunk`, `user_message_chunk`).
pub fn chunk_text(updates: &[Value], kind: &str) -> String {
    updates_of(updates, kind)
        .iter()
        .filter(|u| u["update"]["content"]["type"] == "text")
        .filter_map(|u| u["update"]["content"]["text"].as_str())
        .collect()
}

/// The answer text of a turn.
pub fn agent_text(updates: &[Value]) -> String {
    chunk_text(updates, "agent_message_chunk")
}

/// The reasoning text of a turn.
pub fn thought_text(updates: &[Value]) -> String {
    chunk_text(updates, "agent_thought_chunk")
}

/// The conversation carried by message chunks, with consecutive chunks of the same kind
/// merged: `[("user_message_chunk", "hi"), ("agent_message_chunk", "hello"), ...]`. Other
/// updates are skipped.
pub fn transcript(updates: &[Value]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for u in updates {
        let kind = update_kind(u);
        if !matches!(kind, "user_message_chunk" | "agent_message_chunk" | "agent_thought_chunk") {
            continue;
        }
        let text = match u["update"]["content"]["type"].as_str() {
            Some("text") => u["update"]["content"]["text"].as_str().unwrap_or("").to_owned(),
            Some(other) => format!("<{other}>"),
            None => String::new(),
        };
        match out.last_mut() {
            Some((last_kind, last_text)) if last_kind == kind => last_text.push_str(&text),
            _ => out.push((kind.to_owned(), text)),
        }
    }
    out
}

/// Shorthand for building expected transcripts.
pub fn tr(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, t)| {
            let kind = match *k {
                "user" => "user_message_chunk",
                "agent" => "agent_message_chunk",
                "thought" => "agent_thought_chunk",
                other => other,
            };
            (kind.to_owned(), (*t).to_owned())
        })
        .collect()
}
