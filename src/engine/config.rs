//! Configuration: the environment (read once, at startup) and `RATCHET_HOME/config.toml`.
//!
//! The engine never calls `std::env::var` after start-up: the daemon serves many workspaces,
//! so everything ambient is captured here once and passed down.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The environment variables ratchet reads, captured once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvSnapshot {
    pub openai_api_key: Option<String>,
    pub openai_base_url: Option<String>,
    pub anthropic_api_key: Option<String>,
    pub anthropic_base_url: Option<String>,
    pub ollama_host: Option<String>,
    pub ratchet_home: Option<String>,
    pub ratchet_provider: Option<String>,
    pub ratchet_model: Option<String>,
    /// Path of a script for the `scripted` provider.
    pub ratchet_script: Option<String>,
    /// `RATCHET_PROVIDER_TIMEOUT_SECS`: how long a model stream may stay silent.
    pub ratchet_provider_timeout: Option<String>,
    /// Variables whose names mark them as secrets (`*_KEY`, `*_TOKEN`, ...): their values are
    /// redacted from tool output.
    pub secret_vars: Vec<(String, String)>,
}

impl EnvSnapshot {
    /// Reads the process environment. Empty values count as unset.
    pub fn from_process() -> Self {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        EnvSnapshot {
            openai_api_key: get("OPENAI_API_KEY"),
            openai_base_url: get("OPENAI_BASE_URL"),
            anthropic_api_key: get("ANTHROPIC_API_KEY"),
            anthropic_base_url: get("ANTHROPIC_BASE_URL"),
            ollama_host: get("OLLAMA_HOST"),
            ratchet_home: get("RATCHET_HOME"),
            ratchet_provider: get("RATCHET_PROVIDER"),
            ratchet_model: get("RATCHET_MODEL"),
            ratchet_script: get("RATCHET_SCRIPT"),
            ratchet_provider_timeout: get("RATCHET_PROVIDER_TIMEOUT_SECS"),
            secret_vars: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .filter(|(k, _)| crate::engine::secret_env::is_secret_name(k))
                .collect(),
        }
    }
}

/// `RATCHET_HOME/config.toml`. Every key is optional; a missing file means defaults.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// `openai`, `anthropic`, `ollama` or `scripted`.
    pub provider: Option<String>,
    /// Model name passed to the provider unchanged.
    pub model: Option<String>,
    /// Extra model names offered in the editor's model picker.
    #[serde(default)]
    pub models: Vec<String>,
    /// Output token limit per model call.
    pub max_tokens: Option<u32>,
    /// The model's context window in tokens (for usage reports).
    pub context_window: Option<u64>,
    /// Script file for the `scripted` provider.
    pub script: Option<PathBuf>,
    /// Model calls allowed in one turn before it stops with `max_turn_requests`.
    pub max_turn_requests: Option<u32>,
    /// Default timeout of a `shell` tool call, in seconds.
    pub shell_timeout_secs: Option<u64>,
    /// A model stream (its response headers or the next piece of its body) silent this many
    /// seconds fails the model call (default 300: reasoning models think quietly).
    pub provider_timeout_secs: Option<u64>,
    /// Compact the history automatically when a model call used more than this fraction of
    /// the context window (0 turns it off).
    pub compact_threshold: Option<f64>,
    /// Messages kept verbatim when compacting.
    pub compact_keep: Option<usize>,
    /// Stop the daemon after this many seconds with no control connections and no running
    /// turns. Unset or 0: it runs until stopped.
    pub daemon_idle_timeout_secs: Option<u64>,
    /// `ratchet acp` starts a daemon when none runs (and then uses it). Unset or false: it
    /// uses a running daemon, else runs stand-alone.
    pub daemon_auto_start: Option<bool>,
    #[serde(default)]
    pub permissions: PermissionRules,
    #[serde(default)]
    pub shell: ShellConfig,
    #[serde(default)]
    pub openai: EndpointConfig,
    #[serde(default)]
    pub anthropic: EndpointConfig,
    #[serde(default)]
    pub ollama: EndpointConfig,
    /// `[lsp]`: language servers whose diagnostics follow the agent's edits.
    #[serde(default)]
    pub lsp: crate::engine::lsp::LspConfig,
    /// `[fleet]`, `[model_routing]`, `[questions]` and `[cron]`: read by the orchestra (the layer
    /// above the engine), which checks them; kept here only so one file configures both.
    #[serde(default)]
    pub fleet: Option<toml::Table>,
    #[serde(default)]
    pub model_routing: Option<toml::Table>,
    #[serde(default)]
    pub questions: Option<toml::Table>,
    #[serde(default)]
    pub cron: Option<toml::Table>,
}

/// `[permissions]` in the config file: rules that decide tool calls without asking.
///
/// A rule is `tool` or `tool:pattern`; the pattern is a glob matched against the command
/// (`shell`) or the path (file tools). Deny wins over allow.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PermissionRules {
    #[serde(default)]
    pub allow: Vec<String>,
    #[serde(default)]
    pub deny: Vec<String>,
    /// Extra path globs no tool may touch (added to the built-in list: `~/.ssh`, `~/.aws`, ...).
    #[serde(default)]
    pub deny_paths: Vec<String>,
}

/// `[shell]` in the config file: what commands the agent runs get.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShellConfig {
    /// Names or globs of variables that look secret (`*KEY*`, `*TOKEN*`, ...) which commands
    /// may still have, e.g. `["GH_TOKEN"]`. Provider keys are never passed.
    #[serde(default)]
    pub env_allow: Vec<String>,
}

/// Per-provider endpoint settings in the config file. The environment wins over these.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    /// Base URL (OpenAI: with `/v1`; Anthropic: without; Ollama: `http://host:port`).
    pub base_url: Option<String>,
    /// Name of the environment variable that holds the key, if not the conventional one.
    pub api_key_env: Option<String>,
}

/// Why the config file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is not valid: {message}; fix the file or move it aside to use defaults")]
    Parse { path: PathBuf, message: String },
}

impl ConfigFile {
    /// Loads `config.toml` from `home`; a missing file gives the defaults.
    pub fn load(home: &Path) -> Result<Self, ConfigError> {
        let path = home.join("config.toml");
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(&text).map_err(|message| ConfigError::Parse { path, message }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(ConfigError::Read { path, source }),
        }
    }

    /// Variables the file names as holding provider keys (`api_key_env`).
    pub fn key_env_vars(&self) -> Vec<String> {
        [&self.openai, &self.anthropic, &self.ollama].into_iter().filter_map(|e| e.api_key_env.clone()).collect()
    }

    /// Parses the TOML text.
    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }
}

/// The data directory: `RATCHET_HOME`, else `~/.ratchet`.
pub fn ratchet_home(env: &EnvSnapshot) -> PathBuf {
    if let Some(h) = &env.ratchet_home {
        return PathBuf::from(h);
    }
    dirs::home_dir().unwrap_or_else(|| PathBuf::from(".")).join(".ratchet")
}

/// Everything the engine needs to start.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The data directory (database, logs, config).
    pub home: PathBuf,
    pub env: EnvSnapshot,
    pub file: ConfigFile,
}

impl EngineConfig {
    /// Output token limit per model call.
    pub fn max_tokens(&self) -> u32 {
        self.file.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS)
    }

    /// The context window reported in usage updates.
    pub fn context_window(&self) -> u64 {
        self.file.context_window.unwrap_or(DEFAULT_CONTEXT_WINDOW)
    }

    /// Model calls allowed per turn.
    pub fn max_turn_requests(&self) -> u32 {
        self.file.max_turn_requests.unwrap_or(DEFAULT_MAX_TURN_REQUESTS)
    }

    /// Default shell timeout.
    pub fn shell_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.file.shell_timeout_secs.unwrap_or(DEFAULT_SHELL_TIMEOUT_SECS))
    }

    /// Fraction of the context window that triggers automatic compaction (0 = never).
    pub fn compact_threshold(&self) -> f64 {
        self.file.compact_threshold.unwrap_or(DEFAULT_COMPACT_THRESHOLD)
    }

    /// Messages kept verbatim when compacting.
    pub fn compact_keep(&self) -> usize {
        self.file.compact_keep.unwrap_or(DEFAULT_COMPACT_KEEP)
    }

    /// The SQLite database file.
    pub fn db_path(&self) -> PathBuf {
        self.home.join("ratchet.db")
    }
}

/// Default output limit: large enough for code, small enough for every current model.
pub const DEFAULT_MAX_TOKENS: u32 = 8192;
/// Default cap on model calls per turn: enough for real multi-step work, low enough to stop
/// a runaway loop before it burns much money.
pub const DEFAULT_MAX_TURN_REQUESTS: u32 = 50;
/// Default shell timeout: long enough for a test suite, short enough to notice a hang.
pub const DEFAULT_SHELL_TIMEOUT_SECS: u64 = 120;
/// Compact at 80 % of the context window, leaving room for the answer.
pub const DEFAULT_COMPACT_THRESHOLD: f64 = 0.8;
/// Keep the last 6 messages verbatim: the current exchange and a little before it.
pub const DEFAULT_COMPACT_KEEP: usize = 6;
/// Default context window when the config does not say: the common size of current models.
pub const DEFAULT_CONTEXT_WINDOW: u64 = 128_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_full_file() {
        let c = ConfigFile::parse(
            r#"
provider = "openai"
model = "gpt-4o-mini"
models = ["gpt-4o"]
max_tokens = 100
[openai]
base_url = "http://127.0.0.1:1/v1"
"#,
        )
        .unwrap();
        assert_eq!(c.provider.as_deref(), Some("openai"));
        assert_eq!(c.models, vec!["gpt-4o"]);
        assert_eq!(c.openai.base_url.as_deref(), Some("http://127.0.0.1:1/v1"));
    }

    #[test]
    fn unknown_key_is_an_error_that_names_it() {
        let err = ConfigFile::parse("provdier = \"x\"").unwrap_err();
        assert!(err.contains("provdier"), "{err}");
    }
}
