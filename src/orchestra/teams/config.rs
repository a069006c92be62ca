//! Team configurations: `<cwd>/.ratchet/teams/<name>.yaml`, then `RATCHET_HOME/teams/`, then
//! the built-in `code-gen` team. The shape is the Go original's, so its files keep working:
//!
//! ```yaml
//! name: code-gen
//! agents:
//!   - name: architect
//!     role: architect
//!     system_prompt: You design ...
//!     tools: [read_file, grep]
//!     provider: work          # a stored provider entry
//!     model: gpt-5
//!     max_iterations: 12      # model calls per turn
//!   - agent: reviewer         # an agent definition (`ratchet agents list`); fields here override it
//! timeout: 30m                # or seconds
//! max_review_rounds: 3        # turns a member takes after its first two
//! workdir: .                  # relative to the directory the team starts in
//! paths: [../shared]          # more directories its tools may touch
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::orchestra::agents::{self, AgentCatalog};

/// How long a team runs when its config names no `timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Review rounds when the config names no `max_review_rounds`.
pub const DEFAULT_MAX_REVIEW_ROUNDS: u32 = 3;
/// The most members one team has: more than anyone can follow, few enough to bound a team.
pub const MAX_MEMBERS: usize = 16;
/// Largest team file read, in bytes.
pub const MAX_TEAM_FILE_BYTES: u64 = 256 * 1024;
/// The name of the team that works out of the box.
pub const BUILTIN_CODE_GEN: &str = "code-gen";

/// One member as the team runs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberSpec {
    pub name: String,
    /// What it does in the team ("architect"); shown to the others.
    pub role: String,
    /// Its role prompt.
    pub prompt: String,
    /// The tools it may use besides the team's; `None`: all of them.
    pub tools: Option<Vec<String>>,
    pub provider: Option<String>,
    pub model: Option<String>,
    /// Model calls in one of its turns.
    pub max_iterations: Option<u32>,
    /// The agent definition it came from, if any.
    pub agent: Option<String>,
}

/// A team, resolved: every member's prompt and tools known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamConfig {
    pub name: String,
    pub description: Option<String>,
    pub members: Vec<MemberSpec>,
    #[serde(with = "duration_ms")]
    pub timeout: Duration,
    pub max_review_rounds: u32,
    /// Where the members work, relative to the start directory.
    pub workdir: Option<PathBuf>,
    pub paths: Vec<PathBuf>,
    /// The file it came from, or `built-in`.
    pub source: String,
}

impl TeamConfig {
    /// The most turns a member takes: one on the task, one on the work handed to it, then
    /// one per review round.
    pub fn max_member_turns(&self) -> u32 {
        self.max_review_rounds.saturating_add(2)
    }
}

/// Durations as milliseconds in the stored config.
mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TeamFile {
    name: Option<String>,
    description: Option<String>,
    #[serde(default)]
    agents: Vec<EntryFile>,
    timeout: Option<Timeout>,
    max_review_rounds: Option<u32>,
    workdir: Option<PathBuf>,
    #[serde(default)]
    paths: Vec<PathBuf>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct EntryFile {
    name: Option<String>,
    agent: Option<String>,
    role: Option<String>,
    #[serde(alias = "prompt")]
    system_prompt: Option<String>,
    tools: Option<Vec<String>>,
    provider: Option<String>,
    model: Option<String>,
    max_iterations: Option<u32>,
}

/// `timeout: 30m` (a duration) or `timeout: 1800` (seconds).
#[derive(Deserialize)]
#[serde(untagged)]
enum Timeout {
    Seconds(u64),
    Text(String),
}

/// Finds team `name` for a start in `cwd`: the project's file, the user's, the built-in.
pub fn find(name: &str, cwd: &Path, home: &Path) -> Result<TeamConfig, String> {
    if !valid_name(name) {
        return Err(format!("{name:?} is not a team name: use letters, digits, '-' or '_'"));
    }
    let catalog = agents::load(cwd, home);
    for dir in [cwd.join(".ratchet/teams"), home.join("teams")] {
        for ext in ["yaml", "yml"] {
            let path = dir.join(format!("{name}.{ext}"));
            if path.is_file() {
                return read(&path, &catalog).map_err(|e| format!("{}: {e}", path.display()));
            }
        }
    }
    if name == BUILTIN_CODE_GEN {
        return Ok(code_gen());
    }
    let known = available(cwd, home);
    Err(format!(
        "there is no team {name:?}; the teams are: {} (add .ratchet/teams/{name}.yaml to define it)",
        known.join(", ")
    ))
}

/// The names of every team that can start in `cwd`.
pub fn available(cwd: &Path, home: &Path) -> Vec<String> {
    let mut names = vec![BUILTIN_CODE_GEN.to_string()];
    for dir in [cwd.join(".ratchet/teams"), home.join("teams")] {
        let Ok(entries) = std::fs::read_dir(dir) else { continue };
        for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
            let yaml = matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"));
            if let (true, Some(stem)) = (yaml, path.file_stem().and_then(|s| s.to_str())) {
                names.push(stem.to_string());
            }
        }
    }
    names.sort();
    names.dedup();
    names
}

fn read(path: &Path, catalog: &AgentCatalog) -> Result<TeamConfig, String> {
    let size = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
    if size > MAX_TEAM_FILE_BYTES {
        return Err(format!("larger than {} KiB", MAX_TEAM_FILE_BYTES / 1024));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read it: {e}"))?;
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("team");
    parse(&text, stem, catalog, &path.display().to_string())
}

/// A team file's text as a team; `stem` names it when the file does not.
pub fn parse(text: &str, stem: &str, catalog: &AgentCatalog, source: &str) -> Result<TeamConfig, String> {
    let file: TeamFile = serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?;
    let name = file.name.map(|n| n.trim().to_string()).filter(|n| !n.is_empty()).unwrap_or_else(|| stem.into());
    if file.agents.is_empty() {
        return Err("no agents: list the team's members under `agents:`".into());
    }
    if file.agents.len() > MAX_MEMBERS {
        return Err(format!("{} agents; a team has at most {MAX_MEMBERS}", file.agents.len()));
    }
    let mut members: Vec<MemberSpec> = Vec::with_capacity(file.agents.len());
    for (i, entry) in file.agents.into_iter().enumerate() {
        let member = resolve(entry, catalog).map_err(|e| format!("agents[{i}]: {e}"))?;
        if members.iter().any(|m| m.name == member.name) {
            return Err(format!("agents[{i}]: two members are named {:?}; give one a `name`", member.name));
        }
        members.push(member);
    }
    let timeout = match file.timeout {
        None => DEFAULT_TIMEOUT,
        Some(Timeout::Seconds(0)) => return Err("timeout must be more than 0".into()),
        Some(Timeout::Seconds(s)) => Duration::from_secs(s),
        Some(Timeout::Text(t)) => humantime::parse_duration(t.trim())
            .map_err(|e| format!("timeout {t:?}: {e} (write it as 90s, 30m or 2h)"))?,
    };
    Ok(TeamConfig {
        name,
        description: file.description,
        members,
        timeout,
        max_review_rounds: file.max_review_rounds.unwrap_or(DEFAULT_MAX_REVIEW_ROUNDS),
        workdir: file.workdir,
        paths: file.paths,
        source: source.to_string(),
    })
}

/// One `agents:` entry: its own fields over the agent definition it names.
fn resolve(entry: EntryFile, catalog: &AgentCatalog) -> Result<MemberSpec, String> {
    let def = match &entry.agent {
        Some(name) => Some(catalog.get(name).ok_or_else(|| {
            let names: Vec<&str> = catalog.agents.iter().map(|a| a.name.as_str()).collect();
            format!("there is no agent definition {name:?} (defined: {})", names.join(", "))
        })?),
        None => None,
    };
    let name = entry
        .name
        .or_else(|| def.map(|d| d.name.clone()))
        .or_else(|| entry.role.clone())
        .ok_or("a member needs a `name` (or `agent: <definition>`)")?;
    if !valid_name(&name) {
        return Err(format!("the name {name:?} must be letters, digits, '-' or '_'"));
    }
    let prompt = entry
        .system_prompt
        .or_else(|| def.map(|d| d.prompt.clone()))
        .filter(|p| !p.trim().is_empty())
        .ok_or_else(|| format!("{name} has no system_prompt: give its role prompt or `agent: <definition>`"))?;
    if entry.max_iterations == Some(0) {
        return Err("max_iterations must be at least 1".into());
    }
    Ok(MemberSpec {
        role: entry.role.or_else(|| def.and_then(|d| d.description.clone())).unwrap_or_else(|| name.clone()),
        name,
        prompt: prompt.trim().to_string(),
        tools: entry.tools.or_else(|| def.and_then(|d| d.tools.clone())),
        provider: entry.provider.or_else(|| def.and_then(|d| d.provider.clone())),
        model: entry.model.or_else(|| def.and_then(|d| d.model.clone())),
        max_iterations: entry.max_iterations.or_else(|| def.and_then(|d| d.max_iterations)),
        agent: entry.agent,
    })
}

/// A member from an agent definition alone (`ratchet team add ID AGENT`).
pub fn member_from_definition(name: &str, catalog: &AgentCatalog) -> Result<MemberSpec, String> {
    resolve(EntryFile { agent: Some(name.to_string()), ..Default::default() }, catalog)
}

/// Member, team and section names: what can be typed on a command line and put in a job id.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The built-in team: an architect designs, a coder implements, a reviewer reviews.
pub fn code_gen() -> TeamConfig {
    let member = |name: &str, prompt: &str| MemberSpec {
        name: name.into(),
        role: name.into(),
        prompt: prompt.into(),
        tools: None,
        provider: None,
        model: None,
        max_iterations: None,
        agent: None,
    };
    TeamConfig {
        name: BUILTIN_CODE_GEN.into(),
        description: Some("An architect designs, a coder implements, a reviewer reviews".into()),
        members: vec![member("architect", ARCHITECT), member("coder", CODER), member("reviewer", REVIEWER)],
        timeout: DEFAULT_TIMEOUT,
        max_review_rounds: DEFAULT_MAX_REVIEW_ROUNDS,
        workdir: None,
        paths: Vec::new(),
        source: "built-in".into(),
    }
}

const ARCHITECT: &str = "You are the architect of a code-generation team. Do not write code. Work out the design \
    for the task: the files, their interfaces, the steps. Write it to the blackboard (blackboard_write section \
    `design`, key `plan`), tell the coder with send_message (to `coder`), then write `status/architect` = `done`.";

const CODER: &str = "You are the coder of a code-generation team. Implement the architect's design (blackboard \
    section `design`); if it is not there yet, end your turn: a message wakes you when it is. Make the changes \
    with your tools, tell the reviewer with send_message (to `reviewer`) what you changed, then write \
    `status/coder` = `done`. When the reviewer asks for changes, make them and tell the reviewer again.";

const REVIEWER: &str = "You are the reviewer of a code-generation team. Wait until the coder tells you the code \
    is ready (end your turn until then: a message wakes you). Review the changes against the design on the \
    blackboard. If they are right, write `status/reviewer` = `approved`. If not, send_message to `coder` with \
    what to change, write `status/reviewer` = `changes requested`, and review again when the coder tells you.";
