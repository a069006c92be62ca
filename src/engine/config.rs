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
    #[serde(default)]
    pub openai: EndpointConfig,
    #[serde(default)]
    pub anthropic: EndpointConfig,
    #[serde(default)]
    pub ollama: EndpointConfig,
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
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
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
    dirs::home_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".ratchet")
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

    /// The SQLite database file.
    pub fn db_path(&self) -> PathBuf {
        self.home.join("ratchet.db")
    }
}

/// Default output limit: large enough for code, small enough for every current model.
pub const DEFAULT_MAX_TOKENS: u32 = 8192;
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
