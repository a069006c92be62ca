//! Test helpers: a tool context on a temp directory, and a fake editor [`Host`] that serves
//! its own "unsaved buffers" and records every call, to prove when tools delegate.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use super::redact::Redactor;
use super::{CommandRequest, Host, NoHost, TerminalRun, Tool, ToolContext, ToolOutput};

/// A context rooted at `dir` with no editor, no secrets and a 30 s shell timeout.
pub fn context(dir: &Path) -> ToolContext {
    ToolContext {
        cwd: dir.to_path_buf(),
        extra_roots: vec![],
        deny_paths: vec![],
        host: Arc::new(NoHost),
        cancel: CancellationToken::new(),
        redactor: Arc::new(Redactor::default()),
        shell_timeout: Duration::from_secs(30),
        call_id: None,
        command_env: Default::default(),
        turn: std::sync::Arc::new(crate::engine::turn_scope::NoTurn),
    }
}

/// Like [`context`], with this host.
pub fn context_with(dir: &Path, host: Arc<dyn Host>) -> ToolContext {
    ToolContext { host, ..context(dir) }
}

/// Runs a tool with JSON arguments.
pub async fn run(tool: &dyn Tool, cx: &ToolContext, args: serde_json::Value) -> ToolOutput {
    tool.run(args, cx).await
}

/// A fake editor. Reads come from `buffers` (not the disk), writes go into `buffers`.
#[derive(Default)]
pub struct FakeHost {
    pub read: bool,
    pub write: bool,
    pub run: bool,
    pub buffers: Mutex<HashMap<PathBuf, String>>,
    pub calls: Mutex<Vec<String>>,
    /// What `run_command` answers with.
    pub terminal_output: String,
}

impl FakeHost {
    pub fn new(read: bool, write: bool, run: bool) -> Arc<FakeHost> {
        Arc::new(FakeHost { read, write, run, ..Default::default() })
    }

    pub fn with_buffer(self: Arc<Self>, path: PathBuf, text: &str) -> Arc<Self> {
        self.buffers.lock().unwrap().insert(path, text.to_string());
        self
    }

    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    pub fn buffer(&self, path: &Path) -> Option<String> {
        self.buffers.lock().unwrap().get(path).cloned()
    }

    fn record(&self, call: String) {
        self.calls.lock().unwrap().push(call);
    }
}

impl Host for FakeHost {
    fn can_read(&self) -> bool {
        self.read
    }
    fn can_write(&self) -> bool {
        self.write
    }
    fn can_run(&self) -> bool {
        self.run
    }
    fn read_text_file(
        &self,
        path: PathBuf,
        line: Option<u32>,
        limit: Option<u32>,
    ) -> BoxFuture<'_, Result<String, String>> {
        self.record(format!("read {} {line:?} {limit:?}", path.display()));
        let text = self.buffer(&path);
        Box::pin(async move {
            let text = text.ok_or_else(|| format!("no buffer for {}", path.display()))?;
            let skip = line.map_or(0, |l| l.saturating_sub(1) as usize);
            let take = limit.map_or(usize::MAX, |l| l as usize);
            Ok(text.split_inclusive('\n').skip(skip).take(take).collect())
        })
    }
    fn write_text_file(&self, path: PathBuf, content: String) -> BoxFuture<'_, Result<(), String>> {
        self.record(format!("write {}", path.display()));
        self.buffers.lock().unwrap().insert(path, content);
        Box::pin(async { Ok(()) })
    }
    fn run_command(&self, request: CommandRequest, _: CancellationToken) -> BoxFuture<'_, Result<TerminalRun, String>> {
        self.record(format!("run {} in {} ({:?})", request.command, request.cwd.display(), request.timeout));
        let output = self.terminal_output.clone();
        Box::pin(async move {
            Ok(TerminalRun { terminal_id: "term-1".into(), output, truncated: false, exit_code: Some(3), signal: None })
        })
    }
}
