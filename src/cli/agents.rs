//! `ratchet agents list`: the named agent definitions a session in a directory would see, and
//! where each came from (`orchestra::agents`); broken files are named with what is wrong.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use ratchet::engine::config::EngineConfig;
use ratchet::orchestra::agents;

#[derive(Subcommand)]
pub enum AgentsCommand {
    /// List the agent definitions: project (.ratchet/agents, .claude/agents) first, then the
    /// user's (RATCHET_HOME/agents).
    List {
        /// The project directory (default: the current directory).
        #[arg(long)]
        cwd: Option<PathBuf>,
        /// Print the catalog (agents, shadowed, skipped) as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(config: EngineConfig, command: AgentsCommand) -> anyhow::Result<ExitCode> {
    match command {
        AgentsCommand::List { cwd, json } => {
            let cwd = match cwd {
                Some(c) => std::path::absolute(&c).unwrap_or(c),
                None => std::env::current_dir()?,
            };
            let catalog = agents::load(&cwd, &config.home);
            if json {
                super::print_json(&catalog)?;
                return Ok(ExitCode::SUCCESS);
            }
            for s in &catalog.skipped {
                super::note(&format!("skipped {}: {}", s.source.display(), s.reason));
            }
            if catalog.agents.is_empty() {
                super::note("no agent definitions (.ratchet/agents/*.yaml, .claude/agents/*.md, RATCHET_HOME/agents/)");
                return Ok(ExitCode::SUCCESS);
            }
            let mut rows = vec![["NAME", "FROM", "MODEL", "TOOLS", "FILE"].map(String::from).to_vec()];
            for a in &catalog.agents {
                let model = match (&a.provider, &a.model) {
                    (Some(p), Some(m)) => format!("{p}/{m}"),
                    (Some(p), None) => p.clone(),
                    (None, Some(m)) => m.clone(),
                    (None, None) => "-".into(),
                };
                let tools = a.tools.as_ref().map(|t| t.join(",")).unwrap_or_else(|| "all".into());
                rows.push(vec![a.name.clone(), a.origin.as_str().into(), model, tools, a.source.display().to_string()]);
            }
            for line in super::table(&rows) {
                super::say(&line);
            }
            for a in &catalog.shadowed {
                super::note(&format!("{} in {} is shadowed by an earlier definition", a.name, a.source.display()));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
