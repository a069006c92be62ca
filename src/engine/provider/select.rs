//! Which provider to use: `RATCHET_PROVIDER`/`RATCHET_MODEL`, else `config.toml`, else the first
//! API key present (Anthropic, then OpenAI), else Ollama if it answers, else a clear error.
// (implementation pending)

/// Which wire format a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    OpenAi,
    Anthropic,
    Ollama,
    Scripted,
}

/// A resolved provider configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderChoice {
    pub kind: ProviderKind,
    pub model: String,
}

/// Temporary: provider selection is being written (returns an error until then).
pub async fn resolve(
    _env: &crate::engine::config::EnvSnapshot,
    _file: &crate::engine::config::ConfigFile,
) -> Result<ProviderChoice, super::ProviderError> {
    Err(super::ProviderError::Config("provider selection is not implemented yet".into()))
}

/// Temporary: provider construction is being written (returns an error until then).
pub fn build(_choice: &ProviderChoice) -> Result<std::sync::Arc<dyn super::Provider>, super::ProviderError> {
    Err(super::ProviderError::Config("provider construction is not implemented yet".into()))
}
