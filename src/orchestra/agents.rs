//! Named agent definitions: a role prompt, a tool subset, a provider/model and an iteration
//! cap, from the files users already have. Searched in this order (the first definition of a
//! name wins; later ones are listed as shadowed):
//!
//! 1. `<cwd>/.ratchet/agents/*.yaml` (or `.yml`): `name`, `description`, `system_prompt`
//!    (or `prompt`), `tools` (a list, or a comma-separated string), `provider`, `model`,
//!    `max_iterations`;
//! 2. `<cwd>/.claude/agents/*.md`: front matter (`name`, `description`, `tools`, `model`)
//!    between `---` lines, the body being the system prompt (Claude Code's sub-agent files);
//! 3. `RATCHET_HOME/agents/*.yaml` and `*.md`: the user's own.
//!
//! A name defaults to the file's stem. A broken file is reported with what is wrong and
//! skipped; the others still load.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Most definition files read from one directory.
pub const MAX_DEFINITION_FILES: usize = 500;
/// Largest definition file read, in bytes.
pub const MAX_DEFINITION_BYTES: u64 = 256 * 1024;

/// Where a definition came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// `<cwd>/.ratchet/agents/`.
    Project,
    /// `<cwd>/.claude/agents/`.
    ProjectClaude,
    /// `RATCHET_HOME/agents/`.
    User,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Project => "project",
            Origin::ProjectClaude => "project (.claude)",
            Origin::User => "user",
        }
    }
}

/// One named agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentDef {
    pub name: String,
    pub description: Option<String>,
    /// The role prompt (added to the system prompt of the agent's session).
    pub prompt: String,
    /// The tools it may use; `None`: all of them.
    pub tools: Option<Vec<String>>,
    /// A stored provider entry (`ratchet provider list`).
    pub provider: Option<String>,
    pub model: Option<String>,
    /// Most model calls in one of its turns.
    pub max_iterations: Option<u32>,
    pub origin: Origin,
    pub source: PathBuf,
}

/// A file that was not used, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    pub source: PathBuf,
    pub reason: String,
}

/// Every definition found for a directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentCatalog {
    /// The definitions in effect, by search order.
    pub agents: Vec<AgentDef>,
    /// Definitions whose name an earlier one already had.
    pub shadowed: Vec<AgentDef>,
    /// Broken files, each with what is wrong.
    pub skipped: Vec<Skipped>,
}

impl AgentCatalog {
    /// The definition in effect for `name`.
    pub fn get(&self, name: &str) -> Option<&AgentDef> {
        self.agents.iter().find(|a| a.name == name)
    }
}

impl AgentDef {
    /// What a session playing this agent carries (`ChildSpec::agent`).
    pub fn profile(&self) -> crate::engine::AgentProfile {
        crate::engine::AgentProfile {
            name: self.name.clone(),
            prompt: self.prompt.clone(),
            tools: self.tools.clone(),
            max_turn_requests: self.max_iterations,
        }
    }
}

/// Loads the definitions for a session rooted at `cwd`, with the data directory `home`.
pub fn load(cwd: &Path, home: &Path) -> AgentCatalog {
    let mut catalog = AgentCatalog::default();
    let dirs = [
        (cwd.join(".ratchet/agents"), Origin::Project),
        (cwd.join(".claude/agents"), Origin::ProjectClaude),
        (home.join("agents"), Origin::User),
    ];
    for (dir, origin) in dirs {
        for path in definition_files(&dir, &["yaml", "yml", "md"], "definition", &mut catalog.skipped) {
            match read(&path, origin) {
                Ok(def) if catalog.get(&def.name).is_some() => catalog.shadowed.push(def),
                Ok(def) => catalog.agents.push(def),
                Err(reason) => catalog.skipped.push(Skipped { source: path, reason }),
            }
        }
    }
    catalog
}

/// The files of `dir` with one of `extensions`, sorted, at most `MAX_DEFINITION_FILES` (the
/// rest named in `skipped` as more `what` files than are read); none if it does not exist.
/// Agent and project definitions alike.
pub(crate) fn definition_files(
    dir: &Path,
    extensions: &[&str],
    what: &str,
    skipped: &mut Vec<Skipped>,
) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .filter(|p| p.extension().and_then(|e| e.to_str()).is_some_and(|e| extensions.contains(&e)))
        .collect();
    files.sort();
    if files.len() > MAX_DEFINITION_FILES {
        let reason = format!("more than {MAX_DEFINITION_FILES} {what} files here; the rest are not read");
        skipped.push(Skipped { source: dir.to_path_buf(), reason });
        files.truncate(MAX_DEFINITION_FILES);
    }
    files
}

/// The fields a YAML definition (and a Markdown file's front matter) may have.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Fields {
    name: Option<String>,
    description: Option<String>,
    #[serde(alias = "prompt")]
    system_prompt: Option<String>,
    tools: Option<Tools>,
    provider: Option<String>,
    model: Option<String>,
    max_iterations: Option<u32>,
    /// Claude Code's front matter has it (the colour of the agent in its UI); read so that
    /// such files load, then ignored.
    #[serde(default)]
    #[allow(dead_code)]
    color: Option<String>,
}

/// `tools: [a, b]` or Claude Code's `tools: a, b`.
#[derive(Deserialize)]
#[serde(untagged)]
enum Tools {
    List(Vec<String>),
    Text(String),
}

fn read(path: &Path, origin: Origin) -> Result<AgentDef, String> {
    let size = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
    if size > MAX_DEFINITION_BYTES {
        return Err(format!("larger than {} KiB", MAX_DEFINITION_BYTES / 1024));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read it: {e}"))?;
    parse(&text, path, origin)
}

/// A definition file's text as a definition; `path` gives its format (`.md`: front matter
/// and body) and the name when the file has none.
pub(crate) fn parse(text: &str, path: &Path, origin: Origin) -> Result<AgentDef, String> {
    let markdown = path.extension().and_then(|e| e.to_str()) == Some("md");
    let (fields, body) = if markdown { front_matter(text)? } else { (parse_fields(text)?, String::new()) };
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("").to_string();
    let name = fields.name.clone().map(|n| n.trim().to_string()).filter(|n| !n.is_empty()).unwrap_or(stem);
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(format!("the name {name:?} must be letters, digits, '-' or '_'"));
    }
    let prompt = match (fields.system_prompt.as_deref().map(str::trim), body.trim()) {
        (Some(p), _) if !p.is_empty() => p.to_string(),
        (_, b) if !b.is_empty() => b.to_string(),
        _ => {
            return Err(if markdown {
                "the file has no system prompt: write it below the front matter".into()
            } else {
                "no system_prompt: give the agent's role prompt".into()
            });
        }
    };
    let tools = fields.tools.map(|t| match t {
        Tools::List(v) => v.into_iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect(),
        Tools::Text(s) => s.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect(),
    });
    if fields.max_iterations == Some(0) {
        return Err("max_iterations must be at least 1".into());
    }
    Ok(AgentDef {
        name,
        description: fields.description.map(|d| d.trim().to_string()).filter(|d| !d.is_empty()),
        prompt,
        tools,
        provider: fields.provider.filter(|p| !p.trim().is_empty()),
        model: fields.model.filter(|m| !m.trim().is_empty() && m.trim() != "inherit"),
        max_iterations: fields.max_iterations,
        origin,
        source: path.to_path_buf(),
    })
}

fn parse_fields(yaml: &str) -> Result<Fields, String> {
    if yaml.trim().is_empty() {
        return Ok(Fields::default());
    }
    serde_yaml_ng::from_str(yaml).map_err(|e| e.to_string())
}

/// Splits a Markdown file into its front matter's fields and its body.
fn front_matter(text: &str) -> Result<(Fields, String), String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let Some(rest) = text.strip_prefix("---").filter(|r| r.starts_with('\n') || r.starts_with("\r\n")) else {
        return Ok((Fields::default(), text.to_string()));
    };
    let Some(end) = rest.find("\n---") else {
        return Err("the front matter starts with --- but never ends: close it with a --- line".into());
    };
    let fields = parse_fields(&rest[..end]).map_err(|e| format!("front matter: {e}"))?;
    let body = rest[end + 4..].trim_start_matches(['-', '\r']).trim_start_matches('\n');
    Ok((fields, body.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, rel: &str, text: &str) {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn claude_markdown_ratchet_yaml_and_user_definitions_load_project_first() {
        let cwd = tempfile::tempdir().unwrap();
        let home = tempfile::tempdir().unwrap();
        write(
            cwd.path(),
            ".claude/agents/reviewer.md",
            "---\nname: reviewer\ndescription: Reviews diffs\ntools: read_file, grep\nmodel: inherit\ncolor: blue\n---\nYou review code.\nBe terse.\n",
        );
        write(
            cwd.path(),
            ".ratchet/agents/coder.yaml",
            "system_prompt: You write code.\ntools: [read_file, write_file]\nprovider: local\nmodel: qwen3\nmax_iterations: 12\n",
        );
        write(home.path(), "agents/reviewer.yaml", "system_prompt: The user's own reviewer.\n");
        write(home.path(), "agents/planner.md", "Plan the work.\n");
        let c = load(cwd.path(), home.path());
        assert!(c.skipped.is_empty(), "{:?}", c.skipped);
        let names: Vec<&str> = c.agents.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["coder", "reviewer", "planner"]);
        let reviewer = c.get("reviewer").unwrap();
        assert_eq!(reviewer.origin, Origin::ProjectClaude);
        assert_eq!(reviewer.prompt, "You review code.\nBe terse.");
        assert_eq!(reviewer.tools.as_deref(), Some(&["read_file".to_string(), "grep".to_string()][..]));
        assert_eq!(reviewer.model, None, "inherit means the session's model");
        let coder = c.get("coder").unwrap();
        assert_eq!(
            (coder.provider.as_deref(), coder.model.as_deref(), coder.max_iterations),
            (Some("local"), Some("qwen3"), Some(12))
        );
        assert_eq!(coder.name, "coder", "the name defaults to the file's stem");
        assert_eq!(c.get("planner").unwrap().origin, Origin::User);
        assert_eq!(c.shadowed.len(), 1, "the user's reviewer is shadowed by the project's");
        assert_eq!(c.shadowed[0].origin, Origin::User);
    }

    #[test]
    fn broken_files_are_named_with_what_is_wrong_and_skipped() {
        let cwd = tempfile::tempdir().unwrap();
        let home = tempfile::tempdir().unwrap();
        write(cwd.path(), ".ratchet/agents/bad.yaml", "system_prompt: [unclosed\n");
        write(cwd.path(), ".ratchet/agents/empty.yaml", "description: nothing else\n");
        write(cwd.path(), ".ratchet/agents/typo.yaml", "system_promt: hi\n");
        write(cwd.path(), ".claude/agents/open.md", "---\nname: open\nno end\n");
        write(cwd.path(), ".claude/agents/bad name.md", "---\nname: bad name\n---\nx\n");
        write(cwd.path(), ".ratchet/agents/good.yaml", "prompt: fine\n");
        let c = load(cwd.path(), home.path());
        assert_eq!(c.agents.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(), ["good"]);
        let why = |file: &str| {
            c.skipped.iter().find(|s| s.source.ends_with(file)).map(|s| s.reason.clone()).unwrap_or_default()
        };
        assert!(!why("bad.yaml").is_empty());
        assert!(why("empty.yaml").contains("system_prompt"), "{}", why("empty.yaml"));
        assert!(why("typo.yaml").contains("system_promt"), "{}", why("typo.yaml"));
        assert!(why("open.md").contains("never ends"), "{}", why("open.md"));
        assert!(why("bad name.md").contains("letters, digits"), "{}", why("bad name.md"));
    }

    #[test]
    fn no_directories_no_agents() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(load(d.path(), d.path()), AgentCatalog::default());
    }
}
