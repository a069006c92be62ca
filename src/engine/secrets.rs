//! What keeps secrets out of tool output and commands: the redactor built at start-up and the
//! environment commands get. Split from `engine/mod.rs`.

use std::sync::Arc;

use super::secret_env::{self, CommandEnv, EnvAllow};
use super::tools::redact::Redactor;
use super::{Engine, EngineConfig};

impl Engine {
    /// The secret guard every tool output passes (and what runs beside the tools, hooks).
    pub fn redactor(&self) -> Arc<Redactor> {
        self.inner.redactor.clone()
    }

    /// The whole environment of a command run for a session (a `shell` call, a hook): no
    /// variable that looks secret unless `[shell] env_allow` names it, never a provider key.
    pub async fn command_env(&self) -> CommandEnv {
        CommandEnv::new(self.env_allow(), &self.provider_key_vars().await)
    }

    /// The secret values tool output is cleaned of, for what the layer above writes to disk
    /// (team transcripts).
    pub fn secret_redactor(&self) -> Arc<Redactor> {
        self.redactor()
    }

    /// The variables that hold provider keys (configured and stored providers'), hidden from
    /// local commands.
    pub(super) async fn provider_key_vars(&self) -> Vec<String> {
        let mut names: Vec<String> = vec!["OPENAI_API_KEY".into(), "ANTHROPIC_API_KEY".into()];
        names.extend(self.inner.config.file.key_env_vars());
        match self.list_providers().await {
            Ok(entries) => names.extend(entries.into_iter().filter_map(|e| e.api_key_env)),
            Err(e) => tracing::warn!(error = %e, "cannot read stored providers' key variables"),
        }
        names
    }

    pub(super) fn env_allow(&self) -> &EnvAllow {
        &self.inner.env_allow
    }
}

/// The secret guard: provider keys plus every variable named like a secret.
pub(super) fn redactor(config: &EngineConfig, stored_key_vars: &[String], env_allow: &EnvAllow) -> Redactor {
    let env = &config.env;
    let keys = [("OPENAI_API_KEY", &env.openai_api_key), ("ANTHROPIC_API_KEY", &env.anthropic_api_key)];
    let mut secrets: Vec<(String, String)> = env.secret_vars.clone();
    for (name, value) in keys {
        if let Some(v) = value {
            secrets.push((name.to_string(), v.clone()));
        }
    }
    // Keys the config file says to read from other variables (read once, at start-up).
    // ... and the ones stored provider entries name (entries added later are covered when
    // their names look secret, `*_KEY` and the like, or from the next start).
    for name in config.file.key_env_vars().iter().chain(stored_key_vars) {
        if let Some(value) = secret_env::var(name) {
            secrets.push((name.clone(), value));
        }
    }
    // Secret-looking variables that commands are allowed to have.
    secrets.extend(CommandEnv::new(env_allow, &[]).allowed_secrets());
    // Everything collected here is a secret by name or by role.
    Redactor::new(secrets)
}
