//! Built-in tools the model can call, and the types every tool (built-in or MCP) shares.
//!
//! A tool gets its arguments as JSON and a [`ToolContext`] (the session's roots, the editor
//! [`Host`], a cancellation token, the secret [`Redactor`]); it returns a [`ToolOutput`]: text for
//! the model plus what the editor should show (diffs, terminals, locations). Tools never decide
//! on permission themselves: they declare a [`ToolKind`] and the turn loop asks before any
//! `Edit`/`Delete`/`Move`/`Execute` call.

use std::path::PathBuf;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::provider::ToolSpec;

pub use crate::engine::content::ToolKind;
pub use crate::engine::tool_view::{Display, Location, PlanEntry, PlanPriority, PlanStatus};

/// How a tool call is announced before it runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Preview {
    /// Short human title, e.g. "Read src/main.rs" or "Run `cargo test`".
    pub title: String,
    pub locations: Vec<Location>,
    /// Shown while waiting for permission (e.g. the diff an edit would make).
    pub display: Vec<Display>,
}

/// What a tool call produced.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolOutput {
    /// Text for the model (already redacted).
    pub content: String,
    /// True if the call failed; the model sees `content` as the error.
    pub is_error: bool,
    /// What the editor should show.
    pub display: Vec<Display>,
    pub locations: Vec<Location>,
    /// A plan published by `update_plan`.
    pub plan: Option<Vec<PlanEntry>>,
}

impl ToolOutput {
    /// A successful result with text for both the model and the editor.
    pub fn text(content: impl Into<String>) -> Self {
        let content = content.into();
        ToolOutput {
            display: vec![Display::Text(content.clone())],
            content,
            is_error: false,
            locations: vec![],
            plan: None,
        }
    }

    /// A failed call; the message goes to the model and the editor.
    pub fn error(message: impl Into<String>) -> Self {
        ToolOutput { is_error: true, ..Self::text(message) }
    }
}

/// Result of a command run in an editor terminal.
#[derive(Debug, Clone, PartialEq)]
pub struct TerminalRun {
    pub terminal_id: String,
    pub output: String,
    pub truncated: bool,
    pub exit_code: Option<i32>,
    pub signal: Option<String>,
}

/// The editor, as tools see it: file access that sees unsaved buffers, and terminals.
/// Implemented by the front end (the ACP bridge); [`NoHost`] when there is no editor.
pub trait Host: Send + Sync {
    /// The editor can read files (`fs/read_text_file`).
    fn can_read(&self) -> bool;
    /// The editor can write files (`fs/write_text_file`).
    fn can_write(&self) -> bool;
    /// The editor can run commands in terminals.
    fn can_run(&self) -> bool;
    /// Reads a text file through the editor. `line` is 1-based.
    fn read_text_file(
        &self,
        path: PathBuf,
        line: Option<u32>,
        limit: Option<u32>,
    ) -> BoxFuture<'_, Result<String, String>>;
    /// Writes a text file through the editor.
    fn write_text_file(&self, path: PathBuf, content: String) -> BoxFuture<'_, Result<(), String>>;
    /// Runs a shell command in an editor terminal, waits for it (or the timeout / cancel),
    /// collects its output, and releases the terminal.
    fn run_command(
        &self,
        request: CommandRequest,
        cancel: CancellationToken,
    ) -> BoxFuture<'_, Result<TerminalRun, String>>;
}

/// A command to run.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandRequest {
    /// Passed to `sh -c`.
    pub command: String,
    pub cwd: PathBuf,
    pub timeout: std::time::Duration,
    /// Output beyond this many bytes is cut (the end is kept).
    pub output_limit: usize,
    /// The tool call this command belongs to, so the editor can embed the terminal in it as
    /// soon as the terminal exists (before it is released).
    pub tool_call_id: Option<String>,
}

/// No editor: everything runs locally.
pub struct NoHost;

impl Host for NoHost {
    fn can_read(&self) -> bool {
        false
    }
    fn can_write(&self) -> bool {
        false
    }
    fn can_run(&self) -> bool {
        false
    }
    fn read_text_file(&self, _: PathBuf, _: Option<u32>, _: Option<u32>) -> BoxFuture<'_, Result<String, String>> {
        Box::pin(async { Err("no editor attached".to_string()) })
    }
    fn write_text_file(&self, _: PathBuf, _: String) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async { Err("no editor attached".to_string()) })
    }
    fn run_command(&self, _: CommandRequest, _: CancellationToken) -> BoxFuture<'_, Result<TerminalRun, String>> {
        Box::pin(async { Err("no editor attached".to_string()) })
    }
}

/// Everything a tool call may use.
#[derive(Clone)]
pub struct ToolContext {
    /// The session's root directory.
    pub cwd: PathBuf,
    /// Directories the tools may touch besides `cwd` (the session's additional directories).
    pub extra_roots: Vec<PathBuf>,
    /// Globs of paths that are always refused (e.g. `~/.ssh/**`), already expanded.
    pub deny_paths: Vec<String>,
    pub host: Arc<dyn Host>,
    pub cancel: CancellationToken,
    pub redactor: Arc<redact::Redactor>,
    /// Timeout for `shell` calls.
    pub shell_timeout: std::time::Duration,
    /// The id of the tool call being run (set per call).
    pub call_id: Option<String>,
    /// The whole environment of local commands: no variables that look secret unless
    /// `[shell] env_allow` lets them through, never a provider key.
    pub command_env: Arc<crate::engine::secret_env::CommandEnv>,
    /// The turn the call runs in: for tools that show more than their own call or ask the
    /// user something ([`NoTurn`](crate::engine::turn_scope::NoTurn) outside a turn).
    pub turn: Arc<dyn crate::engine::turn_scope::TurnScope>,
}

/// A tool the model can call.
pub trait Tool: Send + Sync {
    /// Name, description and argument schema, as offered to the model.
    fn spec(&self) -> ToolSpec;
    /// What kind of thing it does.
    fn kind(&self) -> ToolKind;
    /// How to announce a call before it runs (title, locations, a diff preview for edits).
    /// Must not have side effects; may read files.
    fn preview<'a>(&'a self, args: &'a Value, cx: &'a ToolContext) -> BoxFuture<'a, Preview>;
    /// Runs the call. Errors are returned as `ToolOutput::error`, never panics.
    fn run<'a>(&'a self, args: Value, cx: &'a ToolContext) -> BoxFuture<'a, ToolOutput>;
}

pub mod checked_open;
pub mod exec_guard;
pub mod redact;
pub mod registry;
pub mod sandbox;

mod common;
pub(crate) mod diagnostics;
mod edit;
mod glob;
mod grep;
mod list;
mod plan;
mod read;
mod shell;
#[cfg(test)]
mod testutil;
mod write;

pub use diagnostics::DiagnosticsTool;
pub use edit::EditFileTool;
pub use glob::GlobTool;
pub use grep::GrepTool;
pub use list::ListDirTool;
pub use plan::UpdatePlanTool;
pub use read::ReadFileTool;
pub use registry::ToolRegistry;
pub use shell::{DEFAULT_SHELL_TIMEOUT, ShellTool};
pub use write::WriteFileTool;
