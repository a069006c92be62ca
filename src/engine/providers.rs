//! Named providers (`ratchet provider …`, `provider.*` on the control API) and which provider
//! a turn uses.
//!
//! Entries live in the store with the NAME of the variable that holds their key, never the
//! key. The provider turns use is resolved once and cached; the cache remembers the default
//! entry it was built from, and every lookup compares that with the store (one small query),
//! so a change made here or by another process on the same data directory takes effect at
//! the next turn. Changes made through this engine also drop the cache at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::{Deserialize, Serialize};

use super::provider::select::{self, ProviderChoice, ProviderKind};
use super::provider::{Provider, ProviderError, ProviderEvent, ProviderMessage, ProviderRequest, ollama};
use super::store::{NewProvider, ProviderRecord, StoreError};
use super::{ContentPart, Engine, EngineError};

/// The prompt of `test_provider`: one word back is enough to prove the round trip.
const TEST_PROMPT: &str = "Reply with the single word: ok";
/// Output limit of the test call: small, so a test costs next to nothing.
const TEST_MAX_TOKENS: u32 = 16;
/// How long a test may take. Below the control client's request timeout (60 s), so a slow
/// provider is reported as slow rather than as a lost daemon.
const TEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The test's reply is quoted up to this many characters.
const MAX_REPLY_CHARS: usize = 200;

/// A provider entry to add. Empty strings count as absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderSpec {
    /// `[a-z0-9_-]+`.
    pub name: String,
    /// `openai`, `anthropic`, `ollama` or `scripted`.
    pub kind: String,
    #[serde(default)]
    pub base_url: Option<String>,
    /// `None`: the kind's default model.
    #[serde(default)]
    pub model: Option<String>,
    /// The name of the environment variable that holds the key.
    #[serde(default)]
    pub api_key_env: Option<String>,
}

/// What `test_provider` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderTest {
    pub name: String,
    pub model: String,
    pub ok: bool,
    /// From sending the request to the end of the answer (or the failure).
    pub latency_ms: u64,
    /// What the model answered (cut short), when `ok`.
    pub reply: String,
    /// The provider's error, when not `ok`.
    pub error: Option<String>,
}

/// The provider turns use, with the default entry it was resolved with.
pub(super) struct CachedProvider {
    default: Option<ProviderRecord>,
    choice: ProviderChoice,
    provider: Arc<dyn Provider>,
}

impl Engine {
    /// Every stored provider entry, by name.
    pub async fn list_providers(&self) -> Result<Vec<ProviderRecord>, EngineError> {
        Ok(self.store().providers().await?)
    }

    /// Validates and stores a provider entry (not as the default).
    pub async fn add_provider(&self, spec: ProviderSpec) -> Result<ProviderRecord, EngineError> {
        let new = validate(spec).map_err(EngineError::InvalidProvider)?;
        let name = new.name.clone();
        let added = self.store().add_provider(new).await?.ok_or_else(|| {
            EngineError::InvalidProvider(format!(
                "a provider named {name:?} already exists; pick another name, or remove it first with `ratchet provider remove {name}`"
            ))
        })?;
        self.forget_provider().await;
        Ok(added)
    }

    /// Removes an entry; returns it as it was. If it was the default, the choice falls back
    /// to the config file and the environment from the next turn on.
    pub async fn remove_provider(&self, name: &str) -> Result<ProviderRecord, EngineError> {
        let removed = self.store().remove_provider(name).await?;
        let removed = removed.ok_or_else(|| EngineError::ProviderNotFound(name.to_string()))?;
        self.forget_provider().await;
        Ok(removed)
    }

    /// Makes an entry the default; the next turn of every session uses it (unless
    /// `RATCHET_PROVIDER` is set, which still wins).
    pub async fn set_default_provider(&self, name: &str) -> Result<ProviderRecord, EngineError> {
        let record = self.store().set_default_provider(name).await?;
        let record = record.ok_or_else(|| EngineError::ProviderNotFound(name.to_string()))?;
        self.forget_provider().await;
        Ok(record)
    }

    /// Sends one tiny streamed request (a one-word prompt, at most 16 output tokens) through
    /// the entry's provider and reports whether it answered, how fast, or its error.
    pub async fn test_provider(&self, name: &str) -> Result<ProviderTest, EngineError> {
        let entry =
            self.store().provider(name).await?.ok_or_else(|| EngineError::ProviderNotFound(name.to_string()))?;
        let started = Instant::now();
        let outcome = tokio::select! {
            outcome = tokio::time::timeout(TEST_TIMEOUT, self.probe(&entry)) => outcome.unwrap_or_else(|_| {
                Err(format!("no complete answer within {}s; check the base URL and that the server is up", TEST_TIMEOUT.as_secs()))
            }),
            () = self.inner.shutdown.cancelled() => Err("the engine is shutting down; try again".to_string()),
        };
        let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let (ok, reply, error) = match outcome {
            Ok(reply) => (true, cut(&reply), None),
            Err(e) => (false, String::new(), Some(e)),
        };
        Ok(ProviderTest { name: entry.name, model: entry.model, ok, latency_ms, reply, error })
    }

    /// One model call through `entry`'s provider; the answer's text, or what went wrong.
    async fn probe(&self, entry: &ProviderRecord) -> Result<String, String> {
        let cfg = self.config();
        let choice =
            select::stored_choice(entry, &cfg.env, &cfg.file, &select::process_lookup).map_err(|e| e.to_string())?;
        let provider = select::build(&choice).map_err(|e| e.to_string())?;
        let request = ProviderRequest {
            model: choice.model.clone(),
            system: None,
            messages: vec![ProviderMessage::User(vec![ContentPart::text(TEST_PROMPT)])],
            tools: Vec::new(),
            max_tokens: TEST_MAX_TOKENS,
        };
        let failed = |e: ProviderError| match (&e, &entry.api_key_env) {
            (ProviderError::Auth { .. }, Some(var)) => format!("{e} (this entry reads its key from {var})"),
            _ => e.to_string(),
        };
        let mut stream = provider.stream(request).await.map_err(failed)?;
        let mut reply = String::new();
        while let Some(event) = stream.next().await {
            match event.map_err(failed)? {
                ProviderEvent::TextDelta(t) => reply.push_str(&t),
                // Any finish (even the token limit) proves the provider answers.
                ProviderEvent::Finish(_) => return Ok(reply.trim().to_string()),
                _ => {}
            }
        }
        Err(format!("{} ended the stream without finishing the answer", provider.name()))
    }

    /// The provider turns use, resolved when the default entry changed or on first use.
    pub(super) async fn provider(&self) -> Result<(ProviderChoice, Arc<dyn Provider>), String> {
        let mut slot = self.inner.provider.lock().await;
        let default = match self.store().default_provider().await {
            Ok(d) => d,
            // The default entry exists but cannot be used: say so rather than pick another.
            Err(e @ StoreError::UnknownProviderKind(_)) => return Err(e.to_string()),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the default provider entry; choosing without it");
                None
            }
        };
        if let Some(c) = slot.as_ref().filter(|c| c.default == default) {
            return Ok((c.choice.clone(), c.provider.clone()));
        }
        let cfg = self.config();
        let choice =
            select::resolve_with_default(&cfg.env, &cfg.file, default.as_ref()).await.map_err(|e| e.to_string())?;
        let provider = select::build(&choice).map_err(|e| e.to_string())?;
        tracing::info!(provider = choice.label(), kind = %choice.kind, model = %choice.model, "provider chosen");
        *slot = Some(CachedProvider { default, choice: choice.clone(), provider: provider.clone() });
        Ok((choice, provider))
    }

    /// The provider `session`'s turns use: its own stored entry when it keeps one
    /// (`provider_pinned`, a routed fleet worker), else the default.
    pub(super) async fn provider_for(
        &self,
        session: &super::SessionRecord,
    ) -> Result<(ProviderChoice, Arc<dyn Provider>), String> {
        if !session.provider_pinned {
            return self.provider().await;
        }
        let name = &session.provider;
        let entry = self.store().provider(name).await.map_err(|e| e.to_string())?.ok_or_else(|| {
            format!("the session uses the provider entry {name:?}, which no longer exists; add it again with `ratchet provider add`")
        })?;
        let cfg = self.config();
        let choice =
            select::stored_choice(&entry, &cfg.env, &cfg.file, &select::process_lookup).map_err(|e| e.to_string())?;
        let provider = select::build(&choice).map_err(|e| e.to_string())?;
        Ok((choice, provider))
    }

    /// The choice alone (for session records).
    pub(super) async fn provider_choice(&self) -> Result<ProviderChoice, String> {
        Ok(self.provider().await?.0)
    }

    /// Drops the cached provider so the next turn resolves it again.
    async fn forget_provider(&self) {
        *self.inner.provider.lock().await = None;
    }
}

/// Checks an entry and puts it in its stored form.
fn validate(spec: ProviderSpec) -> Result<NewProvider, String> {
    let trimmed = |v: Option<String>| v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let name = spec.name.trim().to_string();
    let name_ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !name_ok {
        return Err(format!(
            "invalid provider name {name:?}: use 1 to 64 lowercase letters, digits, '-' and '_' (for example \"work-openai\")"
        ));
    }
    let kind = ProviderKind::parse(&spec.kind).ok_or_else(|| {
        format!("unknown provider kind {:?}; use one of: openai, anthropic, ollama, scripted", spec.kind.trim())
    })?;
    let base_url = match (kind, trimmed(spec.base_url)) {
        (_, None) => None,
        (ProviderKind::Scripted, Some(_)) => {
            return Err("the scripted provider takes no base URL; drop --base-url".into());
        }
        (ProviderKind::Ollama, Some(url)) => Some(ollama::normalize_host(&url)),
        (_, Some(url)) if url.starts_with("http://") || url.starts_with("https://") => {
            Some(url.trim_end_matches('/').to_string())
        }
        (_, Some(url)) => {
            return Err(format!(
                "base URL {url:?} must start with http:// or https:// (OpenAI-compatible servers: include /v1, e.g. http://127.0.0.1:8080/v1)"
            ));
        }
    };
    let api_key_env = trimmed(spec.api_key_env);
    if let Some(var) = &api_key_env {
        let mut bytes = var.bytes();
        let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
        if !first_ok || !bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(format!(
                "invalid key variable name {:?}: give the NAME of the environment variable that holds the key (for example WORK_OPENAI_KEY), never the key itself",
                redacted(var)
            ));
        }
        if matches!(kind, ProviderKind::Ollama | ProviderKind::Scripted) {
            return Err(format!("{kind} takes no API key; drop --key-env"));
        }
    }
    let model = trimmed(spec.model).unwrap_or_else(|| kind.default_model().to_string());
    Ok(NewProvider { name, kind, base_url, model, api_key_env })
}

/// `text` up to [`MAX_REPLY_CHARS`], marked when cut.
fn cut(text: &str) -> String {
    match text.char_indices().nth(MAX_REPLY_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

/// A value that may be a pasted key, shortened so error messages do not repeat it.
fn redacted(value: &str) -> String {
    if value.chars().count() <= 8 {
        return value.to_string();
    }
    let head: String = value.chars().take(4).collect();
    format!("{head}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, kind: &str) -> ProviderSpec {
        ProviderSpec { name: name.into(), kind: kind.into(), ..Default::default() }
    }

    #[test]
    fn names_kinds_urls_and_key_variables_are_checked() {
        let ok = validate(ProviderSpec {
            base_url: Some(" http://127.0.0.1:8080/v1/ ".into()),
            api_key_env: Some("WORK_KEY".into()),
            ..spec("work-1_a", "OpenAI")
        })
        .unwrap();
        assert_eq!((ok.kind.as_str(), ok.model.as_str()), ("openai", "gpt-4o-mini"));
        assert_eq!(ok.base_url.as_deref(), Some("http://127.0.0.1:8080/v1"));
        let ollama = validate(ProviderSpec {
            base_url: Some("gpu:11434".into()),
            model: Some(" qwen3 ".into()),
            ..spec("gpu", "ollama")
        })
        .unwrap();
        assert_eq!((ollama.base_url.as_deref(), ollama.model.as_str()), (Some("http://gpu:11434"), "qwen3"));

        for (bad, want) in [
            (spec("Work", "openai"), "invalid provider name \"Work\""),
            (spec("a b", "openai"), "invalid provider name"),
            (spec("", "openai"), "invalid provider name"),
            (spec("x", "gemini"), "unknown provider kind \"gemini\"; use one of: openai, anthropic, ollama, scripted"),
            (
                ProviderSpec { base_url: Some("localhost:8080".into()), ..spec("x", "openai") },
                "must start with http://",
            ),
            (ProviderSpec { base_url: Some("http://x".into()), ..spec("x", "scripted") }, "takes no base URL"),
            (
                ProviderSpec { api_key_env: Some("sk-abcdefghijklmnop".into()), ..spec("x", "openai") },
                "never the key itself",
            ),
            (ProviderSpec { api_key_env: Some("KEY".into()), ..spec("x", "ollama") }, "ollama takes no API key"),
        ] {
            let err = validate(bad).unwrap_err();
            assert!(err.contains(want), "{err}");
        }
        let pasted = validate(ProviderSpec { api_key_env: Some("sk-abcdefghijklmnop".into()), ..spec("x", "openai") })
            .unwrap_err();
        assert!(!pasted.contains("abcdefghijklmnop"), "a pasted key is not echoed: {pasted}");
    }
}
