//! Every file people write to configure ratchet: `config.toml` (and what the engine and the
//! orchestra read of it), hooks, teams, agents (Markdown and YAML), projects, autorespond
//! rules and `mcp.json`. The first byte picks the file; the parsers never panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use ratchet::engine::config::ConfigFile;
use ratchet::engine::permission::Policy;
use ratchet::fuzz_entry::{DefinitionFile, definition_file};
use ratchet::orchestra::agents::AgentCatalog;
use ratchet::orchestra::config::OrchestraConfig;
use ratchet::orchestra::{hooks, teams};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, text)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(text) else { return };
    let home = Path::new("/fuzz/home");
    match pick % 8 {
        0 => {
            if let Ok(file) = ConfigFile::parse(text) {
                let _ = OrchestraConfig::from_file(&file);
                let _ = Policy::new(&file.permissions);
                let _ = file.key_env_vars();
            }
        }
        1 => drop(hooks::config::parse(text, &home.join("hooks.yaml"), hooks::config::Origin::User)),
        2 => drop(teams::config::parse(text, "fuzz", &AgentCatalog::default(), "fuzz.yaml")),
        3 => drop(definition_file(DefinitionFile::AgentMarkdown, text)),
        4 => drop(definition_file(DefinitionFile::AgentYaml, text)),
        5 => drop(definition_file(DefinitionFile::Project, text)),
        6 => drop(definition_file(DefinitionFile::Autorespond, text)),
        _ => drop(definition_file(DefinitionFile::McpJson, text)),
    }
});
