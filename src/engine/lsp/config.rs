//! `[lsp]` in `config.toml`: which language server serves which files, and the built-in
//! defaults (rust-analyzer, pyright, typescript-language-server, gopls) that apply only when
//! their command is on `PATH`.
//!
//! ```toml
//! [lsp.servers.pyright]
//! command = "pyright-langserver"
//! args = ["--stdio"]
//! files = ["*.py", "*.pyi"]
//! root_markers = ["pyproject.toml", "setup.py"]
//! ```
//!
//! An entry named like a default changes only the keys it sets (`enabled = false` turns the
//! default off); any other name adds a server, which then needs `command` and `files`.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::Deserialize;

/// How long an edit waits for a server's diagnostics, unless `[lsp] wait_secs` says otherwise:
/// long enough for pyright or gopls to check a file, short enough that a busy server (a
/// rust-analyzer still loading a large workspace) does not stall the agent.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(10);

/// `[lsp]`: language servers that check the files the agent edits.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LspConfig {
    /// `false` turns every language server off. Default: on.
    pub enabled: Option<bool>,
    /// Seconds an edit waits for diagnostics (default [`DEFAULT_WAIT`]).
    pub wait_secs: Option<u64>,
    /// Servers by name; a default's name changes that default.
    #[serde(default)]
    pub servers: BTreeMap<String, ServerConfig>,
}

/// `[lsp.servers.<name>]`. Every key is optional for a default's name.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// The executable: an absolute path, or a name looked up on `PATH`.
    pub command: Option<String>,
    pub args: Option<Vec<String>>,
    /// Globs of the files it serves, matched against the absolute path (`*.py` matches any
    /// Python file).
    pub files: Option<Vec<String>>,
    /// Files or directories that mark a project's root (`Cargo.toml`, `pyproject.toml`).
    pub root_markers: Option<Vec<String>>,
    /// The LSP language id of its files; by default derived from the file's extension.
    pub language_id: Option<String>,
    /// `false` turns this server off.
    pub enabled: Option<bool>,
    /// Sent as the `initialize` request's `initializationOptions`.
    pub initialization_options: Option<toml::Table>,
    /// Answers to the server's `workspace/configuration` requests, by section
    /// (`[lsp.servers.pyright.settings.python.analysis]`).
    pub settings: Option<toml::Table>,
}

/// One server, ready to be matched against files and started.
#[derive(Debug, Clone)]
pub struct ServerSpec {
    pub name: String,
    pub command: PathBuf,
    pub args: Vec<String>,
    files: GlobSet,
    pub root_markers: Vec<String>,
    pub language_id: Option<String>,
    pub initialization_options: Option<serde_json::Value>,
    /// `workspace/configuration` answers (a JSON object, possibly empty).
    pub settings: serde_json::Value,
}

impl ServerSpec {
    /// True if this server checks `path`.
    pub fn serves(&self, path: &Path) -> bool {
        self.files.is_match(path)
    }

    /// The language id of `path` for this server.
    pub fn language_of(&self, path: &Path) -> String {
        if let Some(id) = &self.language_id {
            return id.clone();
        }
        let ext = path.extension().and_then(OsStr::to_str).unwrap_or("");
        match ext {
            "py" | "pyi" => "python",
            "rs" => "rust",
            "ts" | "mts" | "cts" => "typescript",
            "tsx" => "typescriptreact",
            "js" | "mjs" | "cjs" => "javascript",
            "jsx" => "javascriptreact",
            "go" => "go",
            other => other,
        }
        .to_string()
    }
}

/// A built-in server: name, command, args, file globs, root markers.
struct BuiltIn {
    name: &'static str,
    command: &'static str,
    args: &'static [&'static str],
    files: &'static [&'static str],
    root_markers: &'static [&'static str],
}

/// The servers ratchet knows without configuration, used when their command is on `PATH`.
const DEFAULTS: [BuiltIn; 4] = [
    BuiltIn {
        name: "rust-analyzer",
        command: "rust-analyzer",
        args: &[],
        files: &["*.rs"],
        root_markers: &["Cargo.toml"],
    },
    BuiltIn {
        name: "pyright",
        command: "pyright-langserver",
        args: &["--stdio"],
        files: &["*.py", "*.pyi"],
        root_markers: &["pyproject.toml", "pyrightconfig.json", "setup.py", "setup.cfg", "requirements.txt"],
    },
    BuiltIn {
        name: "typescript-language-server",
        command: "typescript-language-server",
        args: &["--stdio"],
        files: &["*.ts", "*.tsx", "*.mts", "*.cts", "*.js", "*.jsx", "*.mjs", "*.cjs"],
        root_markers: &["tsconfig.json", "jsconfig.json", "package.json"],
    },
    BuiltIn { name: "gopls", command: "gopls", args: &[], files: &["*.go"], root_markers: &["go.work", "go.mod"] },
];

impl LspConfig {
    /// True unless `[lsp] enabled = false`.
    pub fn is_enabled(&self) -> bool {
        self.enabled != Some(false)
    }

    /// How long an edit waits for diagnostics.
    pub fn wait(&self) -> Duration {
        self.wait_secs.map_or(DEFAULT_WAIT, Duration::from_secs)
    }

    /// The servers to use: the defaults whose command is found on `path_var` (a `PATH`
    /// value), changed by entries of the same name, then the other configured entries.
    /// Errors name the entry and the key to fix.
    pub fn servers(&self, path_var: Option<&OsStr>) -> Result<Vec<ServerSpec>, String> {
        if !self.is_enabled() {
            return Ok(Vec::new());
        }
        let mut specs = Vec::new();
        for d in &DEFAULTS {
            let own = self.servers.get(d.name).cloned().unwrap_or_default();
            if own.enabled == Some(false) {
                continue;
            }
            let command = own.command.clone().unwrap_or_else(|| d.command.to_string());
            // A command the user named is theirs to get right (a missing one is logged);
            // a default is offered only where it is installed.
            if own.command.is_none() && find_on_path(&command, path_var).is_none() {
                continue;
            }
            let strings = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
            let merged = ServerConfig {
                command: Some(command),
                args: own.args.clone().or_else(|| Some(strings(d.args))),
                files: own.files.clone().or_else(|| Some(strings(d.files))),
                root_markers: own.root_markers.clone().or_else(|| Some(strings(d.root_markers))),
                ..own
            };
            specs.push(spec(d.name, &merged)?);
        }
        for (name, own) in &self.servers {
            if DEFAULTS.iter().any(|d| d.name == name) || own.enabled == Some(false) {
                continue;
            }
            specs.push(spec(name, own)?);
        }
        Ok(specs)
    }
}

/// Checks one entry and compiles its globs.
fn spec(name: &str, c: &ServerConfig) -> Result<ServerSpec, String> {
    let key = |k: &str| format!("[lsp.servers.{name}] {k}");
    let command = c.command.as_deref().filter(|c| !c.trim().is_empty());
    let command = command.ok_or_else(|| format!("{} is missing; name the server's executable", key("command")))?;
    let globs = c.files.as_deref().unwrap_or_default();
    if globs.is_empty() {
        return Err(format!(
            "{} is missing or empty; list globs of the files it serves, e.g. [\"*.py\"]",
            key("files")
        ));
    }
    let mut set = GlobSetBuilder::new();
    for g in globs {
        set.add(Glob::new(g).map_err(|e| format!("{}: bad glob {g:?}: {e}", key("files")))?);
    }
    let files = set.build().map_err(|e| format!("{}: {e}", key("files")))?;
    let json = |t: &Option<toml::Table>| t.as_ref().and_then(|t| serde_json::to_value(t).ok());
    Ok(ServerSpec {
        name: name.to_string(),
        command: PathBuf::from(command),
        args: c.args.clone().unwrap_or_default(),
        files,
        root_markers: c.root_markers.clone().unwrap_or_default(),
        language_id: c.language_id.clone(),
        initialization_options: json(&c.initialization_options),
        settings: json(&c.settings).unwrap_or_else(|| serde_json::json!({})),
    })
}

/// The executable `command` names: itself when it has a directory part, else the first
/// match in the directories of `path_var`.
pub fn find_on_path(command: &str, path_var: Option<&OsStr>) -> Option<PathBuf> {
    let command = Path::new(command);
    if command.components().count() > 1 {
        return is_executable(command).then(|| command.to_path_buf());
    }
    std::env::split_paths(path_var?).map(|dir| dir.join(command)).find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    let Ok(meta) = std::fs::metadata(path) else { return false };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.is_file() && meta.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        meta.is_file()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> LspConfig {
        toml::from_str(text).unwrap()
    }

    /// A `PATH` with one directory holding executables of these names.
    fn path_with(names: &[&str]) -> (tempfile::TempDir, std::ffi::OsString) {
        let dir = tempfile::tempdir().unwrap();
        for name in names {
            let file = dir.path().join(name);
            std::fs::write(&file, "#!/bin/sh\n").unwrap();
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).unwrap();
            }
        }
        let var = dir.path().as_os_str().to_owned();
        (dir, var)
    }

    #[test]
    fn defaults_apply_only_when_their_command_is_on_path() {
        let (_dir, path) = path_with(&["pyright-langserver", "gopls"]);
        let specs = LspConfig::default().servers(Some(&path)).unwrap();
        let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["pyright", "gopls"]);
        let pyright = &specs[0];
        assert_eq!(pyright.args, ["--stdio"]);
        assert!(pyright.serves(Path::new("/w/src/app.py")) && pyright.serves(Path::new("/w/a.pyi")));
        assert!(!pyright.serves(Path::new("/w/src/app.rs")));
        assert_eq!(pyright.language_of(Path::new("/w/a.py")), "python");
        assert!(LspConfig::default().servers(None).unwrap().is_empty());
    }

    #[test]
    fn entries_change_defaults_and_add_servers() {
        let (_dir, path) = path_with(&["pyright-langserver", "gopls"]);
        let config = parse(
            r#"
wait_secs = 3
[servers.gopls]
enabled = false
[servers.pyright]
args = ["--stdio", "--verbose"]
[servers.pyright.settings.python.analysis]
typeCheckingMode = "strict"
[servers.rust-analyzer]
command = "/opt/ra/bin/rust-analyzer"
[servers.lua]
command = "lua-language-server"
files = ["*.lua"]
root_markers = [".luarc.json"]
language_id = "lua"
"#,
        );
        assert_eq!(config.wait(), Duration::from_secs(3));
        let specs = config.servers(Some(&path)).unwrap();
        let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        // rust-analyzer is used although not on PATH: its command was configured.
        assert_eq!(names, ["rust-analyzer", "pyright", "lua"]);
        assert_eq!(specs[0].command, Path::new("/opt/ra/bin/rust-analyzer"));
        assert_eq!(specs[0].root_markers, ["Cargo.toml"]);
        assert_eq!(specs[1].args, ["--stdio", "--verbose"]);
        assert_eq!(specs[1].settings["python"]["analysis"]["typeCheckingMode"], "strict");
        assert_eq!(specs[2].language_of(Path::new("/w/init.lua")), "lua");
        assert!(specs[2].serves(Path::new("/w/init.lua")));
    }

    #[test]
    fn bad_entries_are_named_with_the_key_to_fix() {
        let err = parse("[servers.x]\nfiles = [\"*.x\"]").servers(None).unwrap_err();
        assert!(err.contains("[lsp.servers.x] command is missing"), "{err}");
        let err = parse("[servers.x]\ncommand = \"x\"").servers(None).unwrap_err();
        assert!(err.contains("[lsp.servers.x] files is missing"), "{err}");
        let err = parse("[servers.x]\ncommand = \"x\"\nfiles = [\"[\"]").servers(None).unwrap_err();
        assert!(err.contains("bad glob \"[\""), "{err}");
        let unknown = toml::from_str::<LspConfig>("[servers.x]\ncomand = \"x\"").unwrap_err().to_string();
        assert!(unknown.contains("comand"), "{unknown}");
    }

    #[test]
    fn disabled_means_no_servers() {
        let (_dir, path) = path_with(&["pyright-langserver"]);
        assert!(parse("enabled = false").servers(Some(&path)).unwrap().is_empty());
    }

    #[test]
    fn path_lookup_needs_an_executable() {
        let (dir, path) = path_with(&["tool"]);
        assert_eq!(find_on_path("tool", Some(&path)), Some(dir.path().join("tool")));
        assert_eq!(find_on_path("missing", Some(&path)), None);
        std::fs::write(dir.path().join("plain"), "").unwrap();
        assert_eq!(find_on_path("plain", Some(&path)), None, "not executable");
        let abs = dir.path().join("tool");
        assert_eq!(find_on_path(abs.to_str().unwrap(), None), Some(abs));
    }

    #[test]
    fn the_readme_example_is_valid() {
        let readme = include_str!("../../../README.md");
        let section = &readme[readme.find("### Diagnostics after every edit").expect("the README's LSP section")..];
        let start = section.find("```toml\n").expect("its example") + "```toml\n".len();
        let end = start + section[start..].find("```").unwrap();
        let table: toml::Table = toml::from_str(&section[start..end]).unwrap();
        let config: LspConfig = table["lsp"].clone().try_into().unwrap();
        assert_eq!(config.wait(), DEFAULT_WAIT);
        let (_dir, path) = path_with(&["pyright-langserver", "gopls"]);
        let specs = config.servers(Some(&path)).unwrap();
        let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["pyright", "lua"]);
        assert_eq!(specs[0].settings["python"]["analysis"]["typeCheckingMode"], "strict");
    }
}
