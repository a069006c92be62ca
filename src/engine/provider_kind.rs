//! [`ProviderKind`], on its own so the store can hold it without depending on provider
//! selection (which reads the store).

use std::fmt;

/// Which wire format a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    OpenAi,
    Anthropic,
    Ollama,
    Scripted,
}

impl ProviderKind {
    /// Every kind, in the order names are listed in messages.
    pub const ALL: [ProviderKind; 4] =
        [ProviderKind::OpenAi, ProviderKind::Anthropic, ProviderKind::Ollama, ProviderKind::Scripted];

    /// The name used in `RATCHET_PROVIDER` and `config.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "openai",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Ollama => "ollama",
            ProviderKind::Scripted => "scripted",
        }
    }

    /// Parses a provider name (case-insensitive, surrounding spaces ignored).
    pub fn parse(name: &str) -> Option<ProviderKind> {
        let name = name.trim();
        ProviderKind::ALL.into_iter().find(|k| k.as_str().eq_ignore_ascii_case(name))
    }

    /// The model used when none is configured.
    pub fn default_model(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "gpt-4o-mini",
            ProviderKind::Anthropic => "claude-sonnet-4-5",
            ProviderKind::Ollama => "llama3.2",
            ProviderKind::Scripted => "scripted-demo",
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
