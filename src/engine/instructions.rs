//! The system prompt: a default that describes the agent and its tools, plus the project's
//! own instructions (`AGENTS.md`, `CLAUDE.md`, `RATCHET.md`, `.ratchet/instructions/*.md`)
//! and the user's (`RATCHET_HOME/instructions.md`).
//!
//! Files are looked at the start of every turn, so edits apply to the next prompt; their text
//! is kept in an [`InstructionCache`] and read again only when a file's size or modification
//! time changed (one `stat` per file per turn instead of open, read, close).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use super::config::EngineConfig;
use super::store::SessionRecord;
use super::tools::sandbox::Guard;

/// Instruction files looked for in the session's directory, in this order.
const PROJECT_FILES: [&str; 3] = ["AGENTS.md", "CLAUDE.md", "RATCHET.md"];

/// Largest instruction file used; a bigger one is cut (it would crowd out the conversation).
const MAX_FILE_BYTES: usize = 64 * 1024;

/// Files whose text is kept; past this (a daemon serving many projects) the cache starts
/// over, so it stays a few MiB at most.
const MAX_CACHED_FILES: usize = 256;

/// Instruction files read so far, by path, with the size and modification time they had.
#[derive(Default)]
pub struct InstructionCache {
    files: Mutex<HashMap<PathBuf, CachedFile>>,
}

struct CachedFile {
    modified: Option<SystemTime>,
    len: u64,
    text: Option<String>,
}

impl InstructionCache {
    /// [`read_capped`], from the cache while the file's size and modification time are the
    /// same as when it was read.
    fn read(&self, path: &Path) -> Option<String> {
        let meta = std::fs::metadata(path).ok()?;
        if !meta.is_file() {
            return None;
        }
        let (modified, len) = (meta.modified().ok(), meta.len());
        let mut files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(hit) = files.get(path).filter(|c| modified.is_some() && c.modified == modified && c.len == len) {
            return hit.text.clone();
        }
        let text = read_capped(path);
        if files.len() >= MAX_CACHED_FILES {
            files.clear();
        }
        files.insert(path.to_path_buf(), CachedFile { modified, len, text: text.clone() });
        text
    }
}

const DEFAULT_PROMPT: &str = "\
You are ratchet, an AI coding agent working inside the user's editor.
You help with software engineering tasks: reading and explaining code, fixing bugs, adding features, running tests.

How to work:
- Look before you change: use read_file, list_dir, glob and grep to understand the code first.
- Make focused changes with edit_file (exact search and replace) or write_file (whole files).
- An edit's result lists the language server's errors and warnings for that file; fix the ones
  you caused. diagnostics checks a file or the workspace again.
- Use shell to build, test and inspect; commands run in the project directory.
- For multi-step work, publish a short plan with update_plan and keep its statuses current.
- Paths may be relative to the project directory; tools refuse paths outside it.
- The user may reject a tool call; then do not retry it, ask or change approach.
- Answer concisely in Markdown. When done, say what you changed and how you checked it.";

/// Builds the system prompt for a session. Project files are read only where the session's
/// tools could read them (`sandbox`): a symlink in a cloned repository must not put a file
/// from elsewhere (credentials) into the prompt sent to the provider.
pub fn system_prompt(
    session: &SessionRecord,
    config: &EngineConfig,
    sandbox: &Guard,
    files: &InstructionCache,
) -> String {
    let mut prompt = String::from(DEFAULT_PROMPT);
    prompt.push_str(&format!("\n\nThe project directory is {}.", session.cwd.display()));
    if !session.additional_dirs.is_empty() {
        let dirs: Vec<_> = session.additional_dirs.iter().map(|d| d.display().to_string()).collect();
        prompt.push_str(&format!("\nYou may also use these directories: {}.", dirs.join(", ")));
    }
    let mut sections = Vec::new();
    if let Some(text) = files.read(&config.home.join("instructions.md")) {
        sections.push(("the user's instructions (instructions.md)".to_string(), text));
    }
    let in_project = |path: &Path| match sandbox.resolve(&path.to_string_lossy()) {
        Ok(resolved) => Some(resolved),
        Err(e) => {
            if path.symlink_metadata().is_ok() {
                tracing::warn!(path = %path.display(), "ignoring an instruction file: {e}");
            }
            None
        }
    };
    for name in PROJECT_FILES {
        if let Some(text) = in_project(&session.cwd.join(name)).and_then(|p| files.read(&p)) {
            sections.push((name.to_string(), text));
        }
    }
    for path in instruction_dir_files(&session.cwd.join(".ratchet").join("instructions")) {
        if let Some(text) = in_project(&path).and_then(|p| files.read(&p)) {
            let name = path.strip_prefix(&session.cwd).unwrap_or(&path).display().to_string();
            sections.push((name, text));
        }
    }
    for (name, text) in sections {
        prompt.push_str(&format!("\n\n# Instructions from {name}\n\n{}", text.trim()));
    }
    if let Some(agent) = &session.agent {
        prompt.push_str(&format!("\n\n# Your role: the agent \"{}\"\n\n{}", agent.name, agent.prompt.trim()));
    }
    prompt
}

fn instruction_dir_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "md") && p.is_file())
        .collect();
    files.sort();
    files
}

/// The start of a regular file (never a FIFO or device, which could block or never end).
fn read_capped(path: &Path) -> Option<String> {
    use std::io::Read;
    if !std::fs::metadata(path).ok()?.is_file() {
        return None;
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path).ok()?.take(MAX_FILE_BYTES as u64 + 1).read_to_end(&mut bytes).ok()?;
    let mut text = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_FILE_BYTES)]).into_owned();
    if bytes.len() > MAX_FILE_BYTES {
        text.push_str("\n[… cut: the file is longer than 64 KiB]");
    }
    (!text.trim().is_empty()).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::config::{ConfigFile, EnvSnapshot};
    use crate::engine::store::SessionStatus;

    fn session(cwd: &Path) -> SessionRecord {
        SessionRecord {
            id: "s".into(),
            title: None,
            cwd: cwd.to_path_buf(),
            additional_dirs: vec![],
            provider: "scripted".into(),
            model: "m".into(),
            mode: crate::engine::Mode::Ask,
            status: SessionStatus::Active,
            created_at: 0,
            updated_at: 0,
            parent_id: None,
            provider_pinned: false,
            agent: None,
        }
    }

    #[test]
    fn project_and_user_instructions_are_included_in_order() {
        let home = tempfile::tempdir().unwrap();
        let cwd = tempfile::tempdir().unwrap();
        std::fs::write(home.path().join("instructions.md"), "Be brief.").unwrap();
        std::fs::write(cwd.path().join("AGENTS.md"), "Use tabs.").unwrap();
        std::fs::write(cwd.path().join("RATCHET.md"), "Run cargo test.").unwrap();
        std::fs::create_dir_all(cwd.path().join(".ratchet/instructions")).unwrap();
        std::fs::write(cwd.path().join(".ratchet/instructions/b.md"), "B rule").unwrap();
        std::fs::write(cwd.path().join(".ratchet/instructions/a.md"), "A rule").unwrap();
        std::fs::write(cwd.path().join(".ratchet/instructions/skip.txt"), "no").unwrap();
        let config =
            EngineConfig { home: home.path().to_path_buf(), env: EnvSnapshot::default(), file: ConfigFile::default() };
        let p = system_prompt(&session(cwd.path()), &config, &guard(cwd.path()), &InstructionCache::default());
        let pos = |s: &str| p.find(s).unwrap_or_else(|| panic!("{s} missing from {p}"));
        assert!(pos("You are ratchet") < pos("Be brief."));
        assert!(pos("Be brief.") < pos("Use tabs."));
        assert!(pos("Use tabs.") < pos("Run cargo test."));
        assert!(pos("A rule") < pos("B rule"));
        assert!(!p.contains("no\n") && !p.contains("CLAUDE.md"));
        assert!(p.contains(&cwd.path().display().to_string()));
    }

    fn guard(cwd: &Path) -> Guard {
        Guard::new(&crate::engine::tools::ToolContext {
            cwd: cwd.to_path_buf(),
            extra_roots: vec![],
            deny_paths: vec![],
            host: std::sync::Arc::new(crate::engine::tools::NoHost),
            cancel: Default::default(),
            redactor: Default::default(),
            shell_timeout: std::time::Duration::from_secs(1),
            call_id: None,
            command_env: Default::default(),
            turn: std::sync::Arc::new(crate::engine::turn_scope::NoTurn),
        })
    }

    /// A cloned repository must not be able to put files from outside it (credentials) into
    /// the prompt that goes to the provider, by making its instruction files symlinks.
    #[cfg(unix)]
    #[test]
    fn project_instructions_outside_the_project_are_not_read() {
        let home = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let cwd = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("creds.md"), "aws_secret_access_key = TOPSECRET").unwrap();
        std::os::unix::fs::symlink(outside.path().join("creds.md"), cwd.path().join("AGENTS.md")).unwrap();
        std::fs::create_dir_all(cwd.path().join(".ratchet")).unwrap();
        std::os::unix::fs::symlink(outside.path(), cwd.path().join(".ratchet/instructions")).unwrap();
        // A symlink inside the project (CLAUDE.md -> RATCHET.md) is fine.
        std::fs::write(cwd.path().join("RATCHET.md"), "Run cargo test.").unwrap();
        std::os::unix::fs::symlink(cwd.path().join("RATCHET.md"), cwd.path().join("CLAUDE.md")).unwrap();
        let config =
            EngineConfig { home: home.path().to_path_buf(), env: EnvSnapshot::default(), file: ConfigFile::default() };
        let p = system_prompt(&session(cwd.path()), &config, &guard(cwd.path()), &InstructionCache::default());
        assert!(!p.contains("TOPSECRET"), "{p}");
        assert!(p.contains("Instructions from CLAUDE.md") && p.contains("Run cargo test."), "{p}");
    }

    /// An edited file is read again (its size or time changed); an unchanged one comes from
    /// the cache.
    #[test]
    fn edited_instructions_apply_to_the_next_prompt() {
        let home = tempfile::tempdir().unwrap();
        let cwd = tempfile::tempdir().unwrap();
        let config =
            EngineConfig { home: home.path().to_path_buf(), env: EnvSnapshot::default(), file: ConfigFile::default() };
        let cache = InstructionCache::default();
        let agents = cwd.path().join("AGENTS.md");
        std::fs::write(&agents, "Use tabs.").unwrap();
        let first = system_prompt(&session(cwd.path()), &config, &guard(cwd.path()), &cache);
        assert!(first.contains("Use tabs."), "{first}");
        assert_eq!(first, system_prompt(&session(cwd.path()), &config, &guard(cwd.path()), &cache));
        std::fs::write(&agents, "Use four spaces.").unwrap();
        let edited = system_prompt(&session(cwd.path()), &config, &guard(cwd.path()), &cache);
        assert!(edited.contains("Use four spaces.") && !edited.contains("Use tabs."), "{edited}");
        std::fs::remove_file(&agents).unwrap();
        let removed = system_prompt(&session(cwd.path()), &config, &guard(cwd.path()), &cache);
        assert!(!removed.contains("Instructions from AGENTS.md"), "{removed}");
    }

    /// A FIFO would block the turn forever on open; only regular files are read.
    #[cfg(unix)]
    #[test]
    fn only_regular_files_are_read() {
        let cwd = tempfile::tempdir().unwrap();
        let fifo = cwd.path().join("AGENTS.md");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(made.success());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(read_capped(&fifo)).unwrap());
        let read = rx.recv_timeout(std::time::Duration::from_secs(5)).expect("reading a FIFO blocked");
        assert_eq!(read, None);
    }
}
