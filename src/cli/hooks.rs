//! `ratchet hooks list`: the hooks a session in a directory would run (`orchestra::hooks`),
//! the project's `.ratchet/hooks.yaml` first, then `RATCHET_HOME/hooks.yaml`; a broken file is
//! named with what is wrong (while it is broken, tool calls are refused).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use ratchet::engine::config::EngineConfig;
use ratchet::orchestra::hooks::config;

#[derive(Subcommand)]
pub enum HooksCommand {
    /// List every hook with its event, filter, timeout, command and file. Exits with 1 when a
    /// hooks file is broken.
    List {
        /// The project directory (default: the current directory).
        #[arg(long)]
        cwd: Option<PathBuf>,
        /// Print the hooks and the broken files as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(config: EngineConfig, command: HooksCommand) -> anyhow::Result<ExitCode> {
    match command {
        HooksCommand::List { cwd, json } => {
            let cwd = match cwd {
                Some(c) => std::path::absolute(&c).unwrap_or(c),
                None => std::env::current_dir()?,
            };
            let set = config::load(&cwd, &config.home);
            let code = if set.broken.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE };
            if json {
                super::print_json(&set)?;
                return Ok(code);
            }
            for b in &set.broken {
                super::note(&format!(
                    "broken: {}: {} (tool calls are refused until it is fixed)",
                    b.source.display(),
                    b.reason
                ));
            }
            if set.hooks.is_empty() {
                let [(project, _), (user, _)] = config::files(&cwd, &config.home);
                super::note(&format!("no hooks ({} and {})", project.display(), user.display()));
                return Ok(code);
            }
            let mut rows = vec![["EVENT", "FILTER", "TIMEOUT", "COMMAND", "FILE"].map(String::from).to_vec()];
            for h in &set.hooks {
                let mut filter: Vec<String> = h.tool.iter().map(|t| format!("tool={t}")).collect();
                filter.extend(h.glob.iter().map(|g| format!("glob={g}")));
                let filter = if filter.is_empty() { "-".to_string() } else { filter.join(" ") };
                let command = h.command.lines().next().unwrap_or("").to_string();
                let timeout = humantime::format_duration(h.timeout).to_string();
                let file = format!("{}#{}", h.source.display(), h.index);
                rows.push(vec![h.event.as_str().into(), filter, timeout, command, file]);
            }
            for line in super::table(&rows) {
                super::say(&line);
            }
            Ok(code)
        }
    }
}
