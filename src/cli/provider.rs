//! `ratchet provider list|add|test|remove|default`: named provider entries, through the daemon
//! when one runs (so its next turns switch at once, and `test` runs with the daemon's
//! environment), else on an engine opened here.
//!
//! Entries hold the NAME of the variable with the key (`--key-env`), never the key.

use std::io::Write;
use std::process::ExitCode;

use clap::Subcommand;
use ratchet::engine::config::EngineConfig;
use ratchet::engine::store::ProviderRecord;
use ratchet::engine::{EngineApi, ProviderSpec};

use super::{note, say};

#[derive(Subcommand)]
pub enum ProviderCommand {
    /// List stored providers; `*` marks the default.
    List,
    /// Store a provider. Its key stays in the environment: pass the variable's name.
    Add {
        /// Lowercase letters, digits, '-' and '_'.
        name: String,
        /// openai (and compatible servers), anthropic, ollama or scripted.
        #[arg(long)]
        kind: String,
        /// Endpoint (OpenAI-compatible: with /v1; Ollama: host:port). Default: the vendor's.
        #[arg(long)]
        base_url: Option<String>,
        /// Model name. Default: the kind's default model.
        #[arg(long)]
        model: Option<String>,
        /// Environment variable holding the API key. Default: OPENAI_API_KEY / ANTHROPIC_API_KEY.
        #[arg(long = "key-env", value_name = "VAR")]
        key_env: Option<String>,
    },
    /// Send a one-word prompt through a stored provider; report the latency or its error.
    Test { name: String },
    /// Delete a stored provider.
    Remove { name: String },
    /// Make a stored provider the default: every session's next turn uses it.
    #[command(name = "default")]
    SetDefault { name: String },
}

pub async fn run(config: EngineConfig, command: ProviderCommand) -> anyhow::Result<ExitCode> {
    let forced = config.env.ratchet_provider.clone();
    let face = super::engine_face(config).await?;
    let api = face.api.as_ref();
    let result = match command {
        ProviderCommand::List => list(api, forced.as_deref()).await,
        ProviderCommand::Add { name, kind, base_url, model, key_env } => {
            let spec = ProviderSpec { name, kind, base_url, model, api_key_env: key_env };
            add(api, spec).await
        }
        ProviderCommand::Test { name } => test(api, name).await,
        ProviderCommand::Remove { name } => remove(api, name).await,
        ProviderCommand::SetDefault { name } => set_default(api, name, forced.as_deref()).await,
    };
    face.api.shutdown().await;
    result
}

async fn list(api: &dyn EngineApi, forced: Option<&str>) -> anyhow::Result<ExitCode> {
    let entries = api.list_providers().await?;
    if entries.is_empty() {
        say("no providers stored; add one with `ratchet provider add <name> --kind openai|anthropic|ollama|scripted`");
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<[String; 5]> = entries
        .iter()
        .map(|p| {
            let url = p.base_url.clone().unwrap_or_else(|| "(default)".into());
            [p.name.clone(), p.kind.to_string(), p.model.clone(), url, key_source(p).to_string()]
        })
        .collect();
    let header = ["NAME", "KIND", "MODEL", "BASE URL", "KEY FROM"].map(String::from);
    let widths: Vec<usize> =
        (0..5).map(|i| rows.iter().chain([&header]).map(|r| r[i].len()).max().unwrap_or(0)).collect();
    let mut out = std::io::stdout().lock();
    let line = |mark: &str, r: &[String; 5]| {
        let cells: Vec<String> = r.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        format!("{mark} {}", cells.join("  ").trim_end())
    };
    writeln!(out, "{}", line(" ", &header))?;
    for (p, r) in entries.iter().zip(&rows) {
        writeln!(out, "{}", line(if p.is_default { "*" } else { " " }, r))?;
    }
    if let Some(name) = forced.filter(|_| entries.iter().any(|p| p.is_default)) {
        note(&format!("RATCHET_PROVIDER={name} is set here, and it wins over the default entry"));
    }
    Ok(ExitCode::SUCCESS)
}

async fn add(api: &dyn EngineApi, spec: ProviderSpec) -> anyhow::Result<ExitCode> {
    let p = api.add_provider(spec).await?;
    let key = match key_source(&p) {
        "-" => String::new(),
        var => format!(", key from {var}"),
    };
    say(&format!("added provider {} ({}, model {}{key})", p.name, p.kind, p.model));
    say(&format!("next: `ratchet provider test {0}`, then `ratchet provider default {0}` to use it", p.name));
    Ok(ExitCode::SUCCESS)
}

async fn test(api: &dyn EngineApi, name: String) -> anyhow::Result<ExitCode> {
    let t = api.test_provider(name).await?;
    match &t.error {
        None => {
            let reply = t.reply.split_whitespace().collect::<Vec<_>>().join(" ");
            say(&format!("provider {} answered in {} ms (model {}): {reply}", t.name, t.latency_ms, t.model));
            Ok(ExitCode::SUCCESS)
        }
        Some(error) => {
            note(&format!("provider {} failed after {} ms (model {}): {error}", t.name, t.latency_ms, t.model));
            Ok(ExitCode::FAILURE)
        }
    }
}

async fn remove(api: &dyn EngineApi, name: String) -> anyhow::Result<ExitCode> {
    let p = api.remove_provider(name).await?;
    if p.is_default {
        say(&format!(
            "removed provider {} (it was the default: turns now use RATCHET_PROVIDER, config.toml or the API keys found)",
            p.name
        ));
    } else {
        say(&format!("removed provider {}", p.name));
    }
    Ok(ExitCode::SUCCESS)
}

async fn set_default(api: &dyn EngineApi, name: String, forced: Option<&str>) -> anyhow::Result<ExitCode> {
    let p = api.set_default_provider(name).await?;
    say(&format!(
        "{} is now the default provider ({}, model {}); the next turn of every session uses it",
        p.name, p.kind, p.model
    ));
    if let Some(forced) = forced {
        note(&format!(
            "RATCHET_PROVIDER={forced} is set here, and it wins over the default entry; unset it to use {}",
            p.name
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// Which variable an entry's key comes from ("-" for kinds that take none).
fn key_source(p: &ProviderRecord) -> &str {
    match (p.api_key_env.as_deref(), p.kind.as_str()) {
        (Some(var), _) => var,
        (None, "openai") => "OPENAI_API_KEY",
        (None, "anthropic") => "ANTHROPIC_API_KEY",
        (None, _) => "-",
    }
}
