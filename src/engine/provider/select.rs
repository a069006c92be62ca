//! Which provider to use: `RATCHET_PROVIDER`/`RATCHET_MODEL`, else the default stored provider
//! (`ratchet provider default`), else `config.toml`, else the first API key present (Anthropic,
//! then OpenAI), else Ollama if it answers, else a clear error.
//!
//! [`choose`] is the pure part (environment snapshot and config file in, choice out), so the
//! precedence rules are unit-tested without I/O; [`resolve`] adds the Ollama probe; [`build`]
//! turns a choice into a running [`Provider`]. The `scripted` provider is never chosen unless
//! asked for by name. Environment values win over the config file's endpoint settings. A
//! stored entry is self-contained ([`stored_choice`]): only its key comes from the environment.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::engine::config::{ConfigFile, EndpointConfig, EnvSnapshot};
use crate::engine::provider::anthropic::{self, AnthropicProvider};
use crate::engine::provider::http;
use crate::engine::provider::ollama::{self, OllamaProvider};
use crate::engine::provider::openai::{self, OpenAiProvider};
use crate::engine::provider::scripted::ScriptedProvider;
use crate::engine::provider::{Provider, ProviderError};
use crate::engine::store::ProviderRecord;

pub use crate::engine::provider_kind::ProviderKind;

/// A resolved provider configuration. Its `Debug` output never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct ProviderChoice {
    pub kind: ProviderKind,
    pub model: String,
    /// The endpoint, normalized (OpenAI: with `/v1`; Anthropic: without; Ollama: `http://host:port`).
    /// `None` for the scripted provider.
    pub base_url: Option<String>,
    /// The API key, if one was found (Ollama and the scripted provider never have one).
    pub api_key: Option<String>,
    /// The scripted provider's script file; `None` plays the built-in demo.
    pub script: Option<PathBuf>,
    /// The stored entry this came from (`ratchet provider add`), if any.
    pub stored: Option<String>,
    /// A model stream silent this long fails (`RATCHET_PROVIDER_TIMEOUT_SECS`, else
    /// `provider_timeout_secs`, else [`http::DEFAULT_STALL_TIMEOUT`]).
    pub stall_timeout: std::time::Duration,
}

impl ProviderChoice {
    /// What sessions record as their provider: the stored entry's name, else the kind.
    pub fn label(&self) -> &str {
        self.stored.as_deref().unwrap_or(self.kind.as_str())
    }
}

impl fmt::Debug for ProviderChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderChoice")
            .field("kind", &self.kind)
            .field("model", &self.model)
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("script", &self.script)
            .field("stored", &self.stored)
            .field("stall_timeout", &self.stall_timeout)
            .finish()
    }
}

/// Why no provider could be chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    /// `RATCHET_PROVIDER` or the config's `provider` names no known provider.
    #[error("unknown provider {name:?} in {origin}; use one of: openai, anthropic, ollama, scripted")]
    UnknownProvider { name: String, origin: &'static str },
    /// A hosted provider was asked for but its key is missing.
    #[error(
        "{kind} was selected ({origin}) but no API key was found; set {env_var} (or point the base URL at a server that needs none)"
    )]
    MissingKey { kind: ProviderKind, origin: &'static str, env_var: String },
    /// A stored entry needs a key that its variable does not hold.
    #[error(
        "stored provider {name:?} ({kind}) needs an API key, but {env_var} is not set in the environment of the process running the engine; set it there (with a daemon: set it, then `ratchet daemon restart`), or give the entry a base URL that needs no key"
    )]
    StoredKeyMissing { name: String, kind: ProviderKind, env_var: String },
    /// Nothing is configured and no local Ollama answered.
    #[error("{}", NOTHING_CONFIGURED)]
    NothingConfigured,
}

const NOTHING_CONFIGURED: &str = "no LLM provider is configured, and no Ollama server answered on OLLAMA_HOST (default http://127.0.0.1:11434). Configure one of these ways:
  1. set an API key: ANTHROPIC_API_KEY=... or OPENAI_API_KEY=... (OPENAI_BASE_URL / ANTHROPIC_BASE_URL change the endpoint);
  2. name it explicitly: RATCHET_PROVIDER=openai|anthropic|ollama and RATCHET_MODEL=<model>;
  3. write config.toml in ratchet's home directory (RATCHET_HOME, default ~/.ratchet), for example:
       provider = \"ollama\"
       model = \"llama3.2\"
       [ollama]
       base_url = \"http://127.0.0.1:11434\"
To try ratchet without any model, run the offline demo: RATCHET_PROVIDER=scripted";

/// Answers for environment variables the snapshot does not carry (custom `api_key_env` names).
pub type KeyLookup = dyn Fn(&str) -> Option<String> + Sync;

/// Where the provider name came from, for messages.
const FROM_ENV: &str = "RATCHET_PROVIDER";
const FROM_CONFIG: &str = "config.toml `provider`";
const FROM_KEY: &str = "an API key in the environment";

/// Chooses the provider from the environment snapshot and the config file, without probing
/// the network. Returns [`SelectError::NothingConfigured`] when only an Ollama probe could
/// still find one (see [`resolve`]).
///
/// A config `api_key_env` naming a variable other than the conventional one is read from the
/// process environment (the snapshot only carries the conventional names); see
/// [`choose_with_lookup`] for the fully pure form.
pub fn choose(env: &EnvSnapshot, file: &ConfigFile) -> Result<ProviderChoice, SelectError> {
    choose_with_lookup(env, file, &process_lookup)
}

/// [`choose`], with `lookup` answering for custom `api_key_env` variable names.
pub fn choose_with_lookup(
    env: &EnvSnapshot,
    file: &ConfigFile,
    lookup: &KeyLookup,
) -> Result<ProviderChoice, SelectError> {
    let named = match (&env.ratchet_provider, &file.provider) {
        (Some(name), _) => Some((parse_kind(name, FROM_ENV)?, FROM_ENV)),
        (None, Some(name)) => Some((parse_kind(name, FROM_CONFIG)?, FROM_CONFIG)),
        (None, None) => None,
    };
    let sources = Sources { env, file, lookup };
    if let Some((kind, origin)) = named {
        return sources.choice(kind, origin);
    }
    if sources.key(ProviderKind::Anthropic).is_some() {
        return sources.choice(ProviderKind::Anthropic, FROM_KEY);
    }
    if sources.key(ProviderKind::OpenAi).is_some() {
        return sources.choice(ProviderKind::OpenAi, FROM_KEY);
    }
    Err(SelectError::NothingConfigured)
}

/// [`choose`], and when nothing is configured, Ollama if a server answers on `OLLAMA_HOST` (or
/// the config's `[ollama] base_url`, or the default address).
pub async fn resolve(env: &EnvSnapshot, file: &ConfigFile) -> Result<ProviderChoice, SelectError> {
    match choose(env, file) {
        Err(SelectError::NothingConfigured) => {
            let no_lookup = |_: &str| None;
            let sources = Sources { env, file, lookup: &no_lookup };
            let host = sources.base_url(ProviderKind::Ollama).unwrap_or_else(|| ollama::DEFAULT_HOST.to_string());
            let choice = sources.choice(ProviderKind::Ollama, "a local Ollama server answered");
            if ollama::probe(&host).await {
                return choice;
            }
            Err(SelectError::NothingConfigured)
        }
        other => other,
    }
}

/// [`resolve`], with the default stored entry (if any) between `RATCHET_PROVIDER` and
/// `config.toml`.
pub async fn resolve_with_default(
    env: &EnvSnapshot,
    file: &ConfigFile,
    stored: Option<&ProviderRecord>,
) -> Result<ProviderChoice, SelectError> {
    match stored {
        Some(entry) if env.ratchet_provider.is_none() => stored_choice(entry, env, file, &process_lookup),
        _ => resolve(env, file).await,
    }
}

/// The choice a stored entry describes: its kind, model and base URL (the kind's default if
/// none). Its key is read from its `api_key_env` variable, or the kind's usual one; an entry
/// that names a variable needs it set.
pub fn stored_choice(
    entry: &ProviderRecord,
    env: &EnvSnapshot,
    file: &ConfigFile,
    lookup: &KeyLookup,
) -> Result<ProviderChoice, SelectError> {
    let kind = entry.kind;
    let named_var = entry.api_key_env.as_deref().map(str::trim).filter(|v| !v.is_empty());
    let var = match (named_var, kind) {
        (Some(var), _) => Some(var),
        (None, ProviderKind::OpenAi) => Some("OPENAI_API_KEY"),
        (None, ProviderKind::Anthropic) => Some("ANTHROPIC_API_KEY"),
        (None, _) => None,
    };
    let api_key = var.and_then(|v| match v {
        "OPENAI_API_KEY" => env.openai_api_key.clone(),
        "ANTHROPIC_API_KEY" => env.anthropic_api_key.clone(),
        other => lookup(other),
    });
    let needs_key = matches!(kind, ProviderKind::OpenAi | ProviderKind::Anthropic);
    // A named variable must be set; the usual one may be absent for a keyless local server.
    if needs_key && api_key.is_none() && (named_var.is_some() || entry.base_url.is_none()) {
        return Err(SelectError::StoredKeyMissing {
            name: entry.name.clone(),
            kind,
            env_var: var.unwrap_or_default().to_string(),
        });
    }
    let no_lookup = |_: &str| None;
    let sources = Sources { env, file, lookup: &no_lookup };
    Ok(ProviderChoice {
        kind,
        model: entry.model.clone(),
        base_url: entry.base_url.clone().or_else(|| default_base_url(kind).map(str::to_string)),
        api_key: if needs_key { api_key } else { None },
        script: sources.script(kind),
        stored: Some(entry.name.clone()),
        stall_timeout: sources.stall_timeout(),
    })
}

/// Reads a custom key variable from the process environment.
pub fn process_lookup(name: &str) -> Option<String> {
    crate::engine::secret_env::var(name)
}

/// Builds the provider a choice describes. A bad script file is a `Config` error.
pub fn build(choice: &ProviderChoice) -> Result<Arc<dyn Provider>, ProviderError> {
    let base_url = |default: &str| choice.base_url.clone().unwrap_or_else(|| default.to_string());
    let provider: Arc<dyn Provider> = match choice.kind {
        ProviderKind::OpenAi => Arc::new(OpenAiProvider::with_stall_timeout(
            &base_url(openai::DEFAULT_BASE_URL),
            choice.api_key.clone(),
            choice.stall_timeout,
        )?),
        ProviderKind::Anthropic => Arc::new(AnthropicProvider::with_stall_timeout(
            &base_url(anthropic::DEFAULT_BASE_URL),
            choice.api_key.clone(),
            choice.stall_timeout,
        )?),
        ProviderKind::Ollama => {
            Arc::new(OllamaProvider::with_stall_timeout(&base_url(ollama::DEFAULT_HOST), choice.stall_timeout)?)
        }
        ProviderKind::Scripted => match &choice.script {
            Some(path) => Arc::new(ScriptedProvider::from_file(path)?),
            None => Arc::new(ScriptedProvider::demo()),
        },
    };
    Ok(provider)
}

fn parse_kind(name: &str, origin: &'static str) -> Result<ProviderKind, SelectError> {
    ProviderKind::parse(name).ok_or_else(|| SelectError::UnknownProvider { name: name.to_string(), origin })
}

/// The environment and the config file, read with "environment wins".
struct Sources<'a> {
    env: &'a EnvSnapshot,
    file: &'a ConfigFile,
    lookup: &'a KeyLookup,
}

impl Sources<'_> {
    fn choice(&self, kind: ProviderKind, origin: &'static str) -> Result<ProviderChoice, SelectError> {
        let base_url = self.base_url(kind);
        let api_key = self.key(kind);
        let needs_key = matches!(kind, ProviderKind::OpenAi | ProviderKind::Anthropic);
        // Without a key only a custom endpoint (a local server or a proxy) can work.
        if needs_key && api_key.is_none() && base_url.is_none() {
            return Err(SelectError::MissingKey { kind, origin, env_var: self.key_env_name(kind) });
        }
        Ok(ProviderChoice {
            kind,
            model: self.model(kind),
            base_url: base_url.or_else(|| default_base_url(kind).map(str::to_string)),
            api_key,
            script: self.script(kind),
            stored: None,
            stall_timeout: self.stall_timeout(),
        })
    }

    /// `RATCHET_PROVIDER_TIMEOUT_SECS`, else the config's `provider_timeout_secs`, else the
    /// default; 0 or a value that is not a number of seconds is ignored (with a warning).
    fn stall_timeout(&self) -> std::time::Duration {
        let from_env = self.env.ratchet_provider_timeout.as_deref().and_then(|raw| match raw.trim().parse::<u64>() {
            Ok(secs) if secs > 0 => Some(secs),
            _ => {
                tracing::warn!(
                    value = raw,
                    "RATCHET_PROVIDER_TIMEOUT_SECS is not a positive number of seconds; ignored"
                );
                None
            }
        });
        from_env
            .or(self.file.provider_timeout_secs.filter(|s| *s > 0))
            .map(std::time::Duration::from_secs)
            .unwrap_or(http::DEFAULT_STALL_TIMEOUT)
    }

    /// `RATCHET_MODEL`, else the config's `model` (unless the config names another provider),
    /// else the kind's default.
    fn model(&self, kind: ProviderKind) -> String {
        let config_applies = match &self.file.provider {
            Some(name) => ProviderKind::parse(name) == Some(kind),
            None => true,
        };
        let from_config = self.file.model.clone().filter(|_| config_applies);
        self.env.ratchet_model.clone().or(from_config).unwrap_or_else(|| kind.default_model().to_string())
    }

    /// The configured (not default) endpoint, normalized.
    fn base_url(&self, kind: ProviderKind) -> Option<String> {
        let (from_env, endpoint) = match kind {
            ProviderKind::OpenAi => (&self.env.openai_base_url, &self.file.openai),
            ProviderKind::Anthropic => (&self.env.anthropic_base_url, &self.file.anthropic),
            ProviderKind::Ollama => (&self.env.ollama_host, &self.file.ollama),
            ProviderKind::Scripted => return None,
        };
        let raw = from_env.clone().or_else(|| endpoint.base_url.clone())?;
        let raw = raw.trim();
        if raw.is_empty() {
            return None;
        }
        Some(match kind {
            ProviderKind::Ollama => ollama::normalize_host(raw),
            _ => raw.trim_end_matches('/').to_string(),
        })
    }

    /// The conventional variable, else the one the config's `api_key_env` names.
    fn key(&self, kind: ProviderKind) -> Option<String> {
        let (conventional, endpoint) = match kind {
            ProviderKind::OpenAi => (&self.env.openai_api_key, &self.file.openai),
            ProviderKind::Anthropic => (&self.env.anthropic_api_key, &self.file.anthropic),
            ProviderKind::Ollama | ProviderKind::Scripted => return None,
        };
        conventional.clone().or_else(|| self.custom_key(endpoint))
    }

    fn custom_key(&self, endpoint: &EndpointConfig) -> Option<String> {
        let name = endpoint.api_key_env.as_deref()?.trim();
        match name {
            "" => None,
            "OPENAI_API_KEY" => self.env.openai_api_key.clone(),
            "ANTHROPIC_API_KEY" => self.env.anthropic_api_key.clone(),
            other => (self.lookup)(other),
        }
    }

    fn key_env_name(&self, kind: ProviderKind) -> String {
        let (conventional, endpoint) = match kind {
            ProviderKind::Anthropic => ("ANTHROPIC_API_KEY", &self.file.anthropic),
            _ => ("OPENAI_API_KEY", &self.file.openai),
        };
        match endpoint.api_key_env.as_deref().map(str::trim) {
            Some(custom) if !custom.is_empty() && custom != conventional => {
                format!("{conventional} or {custom}")
            }
            _ => conventional.to_string(),
        }
    }

    fn script(&self, kind: ProviderKind) -> Option<PathBuf> {
        if kind != ProviderKind::Scripted {
            return None;
        }
        self.env.ratchet_script.as_ref().map(PathBuf::from).or_else(|| self.file.script.clone())
    }
}

fn default_base_url(kind: ProviderKind) -> Option<&'static str> {
    match kind {
        ProviderKind::OpenAi => Some(openai::DEFAULT_BASE_URL),
        ProviderKind::Anthropic => Some(anthropic::DEFAULT_BASE_URL),
        ProviderKind::Ollama => Some(ollama::DEFAULT_HOST),
        ProviderKind::Scripted => None,
    }
}

#[cfg(test)]
mod tests;
