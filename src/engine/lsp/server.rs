//! One running language server for one root: the child process (its own process group, the
//! commands' secret-free environment, stderr to the log), the `initialize` handshake, the
//! documents it has open, and stopping it.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lsp_types::notification::{DidChangeTextDocument, DidCloseTextDocument, DidOpenTextDocument, DidSaveTextDocument};
use lsp_types::notification::{Exit, Initialized};
use lsp_types::request::{Initialize, Shutdown};
use lsp_types::{
    ClientCapabilities, ClientInfo, DidChangeTextDocumentParams, DidCloseTextDocumentParams, DidOpenTextDocumentParams,
    DidSaveTextDocumentParams, InitializeParams, InitializedParams, PublishDiagnosticsClientCapabilities,
    TextDocumentClientCapabilities, TextDocumentContentChangeEvent, TextDocumentIdentifier, TextDocumentItem,
    TextDocumentSyncCapability, TextDocumentSyncClientCapabilities, TextDocumentSyncSaveOptions, Url,
    VersionedTextDocumentIdentifier, WindowClientCapabilities, WorkspaceClientCapabilities, WorkspaceFolder,
};
use process_wrap::tokio::{ChildWrapper, CommandWrap, KillOnDrop};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::answers::Answers;
use super::config::ServerSpec;
use super::lock;
use super::published::{Publish, Published, Ticket};
use super::rpc::Connection;
use crate::engine::secret_env::CommandEnv;

/// How long a server may take to start and answer `initialize`: node-based servers take a
/// second or two, more on a loaded machine; the first edit of a file waits this at most.
pub const START_TIMEOUT: Duration = Duration::from_secs(15);

/// How long a stopping server gets to answer `shutdown` and exit before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(2);

/// Documents kept open per server; past this the least recently synced one is closed (its
/// diagnostics may then go stale, which a new edit or check of it refreshes).
const MAX_OPEN_DOCUMENTS: usize = 200;

/// Longer stderr lines are cut in the log.
const MAX_STDERR_LINE: usize = 2000;

/// A document the server has open.
struct OpenDoc {
    version: i32,
    /// Hash of the text last sent, so an unchanged file is not sent again.
    text_hash: u64,
    /// When it was last synced (a counter), for closing the oldest.
    synced: u64,
}

/// Does the server want `didSave`, and with the text?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SaveNote {
    No,
    Plain,
    WithText,
}

/// A running server.
pub struct Server {
    pub spec: Arc<ServerSpec>,
    pub root: PathBuf,
    conn: Connection,
    published: Arc<Published>,
    docs: tokio::sync::Mutex<(HashMap<PathBuf, OpenDoc>, u64)>,
    save: SaveNote,
    child: tokio::sync::Mutex<Option<Box<dyn ChildWrapper>>>,
    last_used: Mutex<Instant>,
}

impl Server {
    /// Starts the server for `root` and completes the handshake. The error says what failed.
    pub async fn start(
        spec: Arc<ServerSpec>,
        root: &Path,
        env: &CommandEnv,
        tasks: &TaskTracker,
        stop: &CancellationToken,
    ) -> Result<Server, String> {
        let mut command = tokio::process::Command::new(&spec.command);
        command.args(&spec.args);
        env.apply(&mut command);
        command.current_dir(root).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut wrapped = CommandWrap::from(command);
        #[cfg(unix)]
        wrapped.wrap(process_wrap::tokio::ProcessGroup::leader());
        wrapped.wrap(KillOnDrop);
        let mut child = wrapped.spawn().map_err(|e| spawn_error(&spec.command, &e))?;
        let (Some(stdin), Some(stdout)) = (child.stdin().take(), child.stdout().take()) else {
            return Err(format!("`{}` started without pipes", spec.command.display()));
        };
        if let Some(stderr) = child.stderr().take() {
            tasks.spawn(forward_stderr(spec.name.clone(), stderr));
        }
        let root_uri =
            Url::from_directory_path(root).map_err(|()| format!("{} is not an absolute path", root.display()))?;
        let name = root.file_name().map_or_else(|| root.display().to_string(), |n| n.to_string_lossy().into_owned());
        let folder = WorkspaceFolder { uri: root_uri.clone(), name };
        let published = Arc::new(Published::default());
        let answers = Answers {
            server: spec.name.clone(),
            settings: spec.settings.clone(),
            folder: folder.clone(),
            published: published.clone(),
        };
        let conn = Connection::start(&spec.name, BufReader::new(stdout), stdin, Arc::new(answers), tasks, stop);
        let init = match conn.request::<Initialize>(initialize_params(&spec, root_uri, folder), START_TIMEOUT).await {
            Ok(init) => init,
            Err(e) => {
                let _ = child.start_kill();
                conn.closed().cancel();
                return Err(e);
            }
        };
        let save = match init.capabilities.text_document_sync {
            Some(TextDocumentSyncCapability::Options(o)) => match o.save {
                Some(TextDocumentSyncSaveOptions::Supported(true)) => SaveNote::Plain,
                Some(TextDocumentSyncSaveOptions::SaveOptions(s)) if s.include_text == Some(true) => SaveNote::WithText,
                Some(TextDocumentSyncSaveOptions::SaveOptions(_)) => SaveNote::Plain,
                _ => SaveNote::No,
            },
            _ => SaveNote::No,
        };
        let server = Server {
            save,
            spec,
            root: root.to_path_buf(),
            conn,
            published,
            docs: tokio::sync::Mutex::new((HashMap::new(), 0)),
            child: tokio::sync::Mutex::new(Some(child)),
            last_used: Mutex::new(Instant::now()),
        };
        // Dropped on error, which kills it.
        server.conn.notify::<Initialized>(InitializedParams {}).await?;
        Ok(server)
    }

    /// True until the server exited or broke the protocol.
    pub fn is_alive(&self) -> bool {
        !self.conn.closed().is_cancelled()
    }

    /// How long since it was last used.
    pub fn idle_for(&self) -> Duration {
        lock(&self.last_used).elapsed()
    }

    fn touch(&self) {
        *lock(&self.last_used) = Instant::now();
    }

    /// Sends the file's current text (open, or change and save), unless the server already
    /// has exactly this text. Returns what the answering publish must match.
    pub async fn sync(&self, path: &Path, text: &str) -> Result<Ticket, String> {
        self.touch();
        let uri = Url::from_file_path(path).map_err(|()| format!("{} is not an absolute path", path.display()))?;
        let text_hash = hash(text);
        let mut guard = self.docs.lock().await;
        let (docs, counter) = &mut *guard;
        *counter += 1;
        let synced = *counter;
        if let Some(doc) = docs.get_mut(path) {
            doc.synced = synced;
            if doc.text_hash == text_hash {
                // Unchanged: whatever it published for this version answers.
                return Ok(Ticket { version: doc.version, after_seq: 0 });
            }
            doc.version += 1;
            doc.text_hash = text_hash;
            let ticket = Ticket { version: doc.version, after_seq: self.published.current_seq() };
            let change = DidChangeTextDocumentParams {
                text_document: VersionedTextDocumentIdentifier { uri: uri.clone(), version: doc.version },
                content_changes: vec![TextDocumentContentChangeEvent {
                    range: None,
                    range_length: None,
                    text: text.into(),
                }],
            };
            self.conn.notify::<DidChangeTextDocument>(change).await?;
            if self.save != SaveNote::No {
                let text = (self.save == SaveNote::WithText).then(|| text.to_string());
                let save = DidSaveTextDocumentParams { text_document: TextDocumentIdentifier { uri }, text };
                self.conn.notify::<DidSaveTextDocument>(save).await?;
            }
            return Ok(ticket);
        }
        if docs.len() >= MAX_OPEN_DOCUMENTS
            && let Some(oldest) = docs.iter().min_by_key(|(_, d)| d.synced).map(|(p, _)| p.clone())
        {
            docs.remove(&oldest);
            if let Ok(uri) = Url::from_file_path(&oldest) {
                let close = DidCloseTextDocumentParams { text_document: TextDocumentIdentifier { uri } };
                self.conn.notify::<DidCloseTextDocument>(close).await?;
            }
        }
        let ticket = Ticket { version: 1, after_seq: self.published.current_seq() };
        docs.insert(path.to_path_buf(), OpenDoc { version: 1, text_hash, synced });
        let item = TextDocumentItem { uri, language_id: self.spec.language_of(path), version: 1, text: text.into() };
        self.conn.notify::<DidOpenTextDocument>(DidOpenTextDocumentParams { text_document: item }).await?;
        Ok(ticket)
    }

    /// The diagnostics that answer `ticket`, waiting at most `timeout`.
    pub async fn diagnostics(&self, path: &Path, ticket: Ticket, timeout: Duration) -> Option<Publish> {
        self.published.wait(path, ticket, timeout, self.conn.closed()).await
    }

    /// Everything it published for files under `roots`.
    pub fn known_under(&self, roots: &[PathBuf]) -> Vec<(PathBuf, Vec<lsp_types::Diagnostic>)> {
        self.touch();
        self.published.under(roots)
    }

    /// Asks the server to shut down and exit; kills its process group if it does not.
    pub async fn stop(&self) {
        if self.is_alive() {
            let polite = async {
                self.conn.request::<Shutdown>((), STOP_TIMEOUT).await?;
                self.conn.notify::<Exit>(()).await
            };
            if let Err(e) = polite.await {
                tracing::debug!(server = %self.spec.name, error = %e, "the language server did not shut down politely");
            }
        }
        let mut child = self.child.lock().await;
        if let Some(c) = child.as_mut()
            && tokio::time::timeout(STOP_TIMEOUT, c.wait()).await.is_err()
        {
            let _ = c.start_kill();
        }
        *child = None;
        self.conn.closed().cancel();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Whatever path dropped it, its process group does not outlive it.
        if let Ok(mut child) = self.child.try_lock()
            && let Some(c) = child.as_mut()
        {
            let _ = c.start_kill();
        }
    }
}

/// What we tell the server about ourselves: full-text sync, versioned diagnostics, and the
/// requests we answer.
fn initialize_params(spec: &ServerSpec, root_uri: Url, folder: WorkspaceFolder) -> InitializeParams {
    let capabilities = ClientCapabilities {
        workspace: Some(WorkspaceClientCapabilities {
            configuration: Some(true),
            workspace_folders: Some(true),
            apply_edit: Some(false),
            ..Default::default()
        }),
        text_document: Some(TextDocumentClientCapabilities {
            synchronization: Some(TextDocumentSyncClientCapabilities { did_save: Some(true), ..Default::default() }),
            publish_diagnostics: Some(PublishDiagnosticsClientCapabilities {
                version_support: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        }),
        window: Some(WindowClientCapabilities { work_done_progress: Some(true), ..Default::default() }),
        ..Default::default()
    };
    #[allow(deprecated)] // `root_uri`: older servers still read it.
    InitializeParams {
        process_id: Some(std::process::id()),
        root_uri: Some(root_uri),
        initialization_options: spec.initialization_options.clone(),
        capabilities,
        workspace_folders: Some(vec![folder]),
        client_info: Some(ClientInfo { name: "ratchet".into(), version: Some(env!("CARGO_PKG_VERSION").into()) }),
        ..Default::default()
    }
}

fn spawn_error(command: &Path, e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => format!(
            "command `{}` was not found; install the language server or set its full path in [lsp.servers] of config.toml",
            command.display()
        ),
        std::io::ErrorKind::PermissionDenied => {
            format!("command `{}` is not executable (permission denied); check its permissions", command.display())
        }
        _ => format!("cannot start `{}`: {e}", command.display()),
    }
}

/// Logs a server's stderr line by line (never to stdout, which is the ACP channel).
async fn forward_stderr(server: String, stderr: tokio::process::ChildStderr) {
    let mut reader = BufReader::new(stderr);
    loop {
        let mut line = Vec::new();
        match (&mut reader).take(MAX_STDERR_LINE as u64).read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line);
                tracing::debug!(target: "ratchet::lsp::stderr", server = %server, "{}", text.trim_end());
            }
        }
    }
}

fn hash(text: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}
