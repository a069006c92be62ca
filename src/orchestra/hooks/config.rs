//! `hooks.yaml`: which command runs on which event. Two files apply, the project's
//! (`<cwd>/.ratchet/hooks.yaml`) first, then the user's (`RATCHET_HOME/hooks.yaml`):
//!
//! ```yaml
//! hooks:
//!   - event: pre_edit            # one of EventName::ALL
//!     glob: "*.lock"             # edits only: a file name, or a path under the session
//!     command: echo "generated files are not edited by hand" >&2; exit 1
//!     timeout: 5s                # default 10s, at most 5m (a number is seconds)
//!   - event: post_command
//!     tool: shell                # tool events only: a glob on the tool's name (alias: matcher)
//!     command: ./scripts/log-command.sh
//! ```
//!
//! A file that cannot be read or parsed is reported with its path and the line at fault
//! ([`HookSet::broken`]); while one is broken, tool calls are refused (a check that was
//! meant to guard them cannot run).

use std::path::{Path, PathBuf};
use std::time::Duration;

use globset::{Glob, GlobBuilder, GlobMatcher, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Deserializer, Serialize};

use super::event::{EventName, HookEvent};

/// The file's name, in `<cwd>/.ratchet/` and in `RATCHET_HOME/`.
pub const HOOKS_FILE: &str = "hooks.yaml";
/// How long a hook may run unless its `timeout` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest `timeout` allowed: a pre-hook holds its tool call (and the turn) while it
/// runs.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(300);
/// Largest hooks file read, in bytes.
pub const MAX_FILE_BYTES: u64 = 256 * 1024;
/// Most hooks in one file.
pub const MAX_HOOKS_PER_FILE: usize = 200;

/// Where a hooks file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// `<cwd>/.ratchet/hooks.yaml`.
    Project,
    /// `RATCHET_HOME/hooks.yaml`.
    User,
}

/// One hook, ready to match events.
#[derive(Debug, Clone, Serialize)]
pub struct Hook {
    pub event: EventName,
    /// Run with `sh -c` in the session's directory.
    pub command: String,
    #[serde(serialize_with = "as_seconds")]
    pub timeout: Duration,
    /// A glob on the tool's name.
    pub tool: Option<String>,
    /// Globs on the edited file.
    pub glob: Vec<String>,
    pub origin: Origin,
    pub source: PathBuf,
    /// Its place in its file, from 1.
    pub index: usize,
    #[serde(skip)]
    tool_matcher: Option<GlobMatcher>,
    #[serde(skip)]
    paths: Option<PathGlobs>,
}

/// The hooks of both files, and the files that could not be used.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HookSet {
    /// Project hooks first, each file's in its order.
    pub hooks: Vec<Hook>,
    pub broken: Vec<BrokenFile>,
}

/// A hooks file that could not be read or parsed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BrokenFile {
    pub source: PathBuf,
    /// What is wrong, with the line where the parser can tell.
    pub reason: String,
}

impl HookSet {
    /// The hooks of `event`, in order.
    pub fn matching<'a>(&'a self, event: &'a HookEvent) -> impl Iterator<Item = &'a Hook> + 'a {
        self.hooks.iter().filter(|h| h.applies(event))
    }
}

impl Hook {
    /// True if this hook runs on `event`: the same event, its tool matching `tool`, one of its
    /// files matching `glob`.
    pub fn applies(&self, event: &HookEvent) -> bool {
        if self.event != event.name() {
            return false;
        }
        let call = event.tool_call();
        if let Some(matcher) = &self.tool_matcher
            && !call.is_some_and(|c| matcher.is_match(&c.tool))
        {
            return false;
        }
        match &self.paths {
            None => true,
            Some(globs) => call.is_some_and(|c| c.paths.iter().any(|p| globs.is_match(p, &event.cwd))),
        }
    }
}

/// `glob:` patterns: one without a `/` matches the file's name wherever it is (`*.lock`);
/// one with a `/` matches the path under the session's directory (`src/**/*.rs`), or the
/// absolute path if it starts with `/`. `*` never crosses a `/`; `**` does.
#[derive(Debug, Clone)]
struct PathGlobs {
    names: GlobSet,
    paths: GlobSet,
}

impl PathGlobs {
    fn new(patterns: &[String]) -> Result<PathGlobs, String> {
        let (mut names, mut paths) = (GlobSetBuilder::new(), GlobSetBuilder::new());
        for p in patterns {
            let glob = GlobBuilder::new(p)
                .literal_separator(true)
                .build()
                .map_err(|e| format!("`glob` {p:?} is not a valid pattern: {e}"))?;
            if p.contains('/') {
                paths.add(glob)
            } else {
                names.add(glob)
            };
        }
        let build = |b: GlobSetBuilder| b.build().map_err(|e| format!("`glob`: {e}"));
        Ok(PathGlobs { names: build(names)?, paths: build(paths)? })
    }

    fn is_match(&self, path: &Path, cwd: &Path) -> bool {
        if path.file_name().is_some_and(|n| self.names.is_match(n)) {
            return true;
        }
        let relative = path.strip_prefix(cwd).unwrap_or(path);
        self.paths.is_match(relative) || self.paths.is_match(path)
    }
}

/// The two files that apply to a session in `cwd`, project first.
pub fn files(cwd: &Path, home: &Path) -> [(PathBuf, Origin); 2] {
    [(cwd.join(".ratchet").join(HOOKS_FILE), Origin::Project), (home.join(HOOKS_FILE), Origin::User)]
}

/// The hooks for a session in `cwd` with the data directory `home`. Missing files are fine.
pub fn load(cwd: &Path, home: &Path) -> HookSet {
    let mut set = HookSet::default();
    for (path, origin) in files(cwd, home) {
        match read(&path, origin) {
            Ok(hooks) => set.hooks.extend(hooks),
            Err(reason) => set.broken.push(BrokenFile { source: path, reason }),
        }
    }
    set
}

/// The hooks of one file; none if it does not exist.
fn read(path: &Path, origin: Origin) -> Result<Vec<Hook>, String> {
    let size = match std::fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("cannot read it: {e}")),
    };
    if size > MAX_FILE_BYTES {
        return Err(format!("it is {size} bytes; a hooks file may have at most {MAX_FILE_BYTES}"));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read it: {e}"))?;
    parse(&text, path, origin)
}

/// Parses a hooks file's text (`path` and `origin` are recorded in each hook).
pub fn parse(text: &str, path: &Path, origin: Origin) -> Result<Vec<Hook>, String> {
    if text.lines().all(|l| l.trim().is_empty() || l.trim_start().starts_with('#')) {
        return Ok(Vec::new());
    }
    let file: RawFile = serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?;
    if file.hooks.len() > MAX_HOOKS_PER_FILE {
        return Err(format!("it has {} hooks; at most {MAX_HOOKS_PER_FILE} are allowed", file.hooks.len()));
    }
    file.hooks
        .into_iter()
        .enumerate()
        .map(|(i, raw)| raw.compile(i + 1, path, origin).map_err(|e| format!("hook {}: {e}", i + 1)))
        .collect()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    hooks: Vec<RawHook>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHook {
    event: EventName,
    command: String,
    #[serde(default, deserialize_with = "timeout")]
    timeout: Option<Duration>,
    #[serde(default, alias = "matcher")]
    tool: Option<String>,
    #[serde(default)]
    glob: Option<OneOrMany>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl RawHook {
    fn compile(self, index: usize, path: &Path, origin: Origin) -> Result<Hook, String> {
        let event = self.event;
        if self.command.trim().is_empty() {
            return Err(format!("{event}: `command` is empty"));
        }
        let timeout = self.timeout.unwrap_or(DEFAULT_TIMEOUT);
        if timeout.is_zero() || timeout > MAX_TIMEOUT {
            return Err(format!(
                "{event}: `timeout` must be more than 0 and at most {}",
                humantime::format_duration(MAX_TIMEOUT)
            ));
        }
        let tool_matcher = match &self.tool {
            None => None,
            Some(_) if !event.has_tool() => {
                return Err(format!("{event}: `tool` applies to the tool events only (pre_tool_call, post_edit, ...)"));
            }
            Some(t) => Some(Glob::new(t).map_err(|e| format!("{event}: `tool` {t:?} is not a valid glob: {e}"))?),
        };
        let glob = match self.glob {
            None => Vec::new(),
            Some(OneOrMany::One(g)) => vec![g],
            Some(OneOrMany::Many(g)) => g,
        };
        let paths = match glob.is_empty() {
            true => None,
            false if !event.has_paths() => {
                return Err(format!("{event}: `glob` applies to pre_edit and post_edit only"));
            }
            false => Some(PathGlobs::new(&glob).map_err(|e| format!("{event}: {e}"))?),
        };
        Ok(Hook {
            event,
            command: self.command,
            timeout,
            tool: self.tool,
            glob,
            origin,
            source: path.to_path_buf(),
            index,
            tool_matcher: tool_matcher.map(|g| g.compile_matcher()),
            paths,
        })
    }
}

/// `timeout:` as seconds (`5`, `0.5`) or a duration (`500ms`, `10s`, `2m`).
fn timeout<'de, D: Deserializer<'de>>(de: D) -> Result<Option<Duration>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Seconds(f64),
        Text(String),
    }
    let bad =
        |what: &str| serde::de::Error::custom(format!("`timeout` {what} is not a duration (say 5s, 500ms or 2m)"));
    match Option::<Raw>::deserialize(de)? {
        None => Ok(None),
        Some(Raw::Seconds(s)) if s.is_finite() && s >= 0.0 => Ok(Some(Duration::from_secs_f64(s.min(1e9)))),
        Some(Raw::Seconds(s)) => Err(bad(&s.to_string())),
        Some(Raw::Text(t)) => humantime::parse_duration(t.trim()).map(Some).map_err(|_| bad(&format!("{t:?}"))),
    }
}

fn as_seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}
