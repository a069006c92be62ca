//! Language servers that tell the agent whether its edits broke the build.
//!
//! After an edit the file's text goes to the language server for it (`didOpen`/`didChange`),
//! and the next `textDocument/publishDiagnostics` for that version (waited for at most
//! `[lsp] wait_secs`) is the answer the tool result carries. Servers are configured per
//! language in `[lsp]` of `config.toml` (`config`), started lazily per (server, root) and
//! shared by every session with that root (`registry`), and stopped when idle or at shutdown.
//! A server that is missing, slow or crashing means no diagnostics and a log line, never a
//! failed edit. Only pushed diagnostics are used (every default server pushes them).
//!
//! Modules: `config` (`[lsp]`, defaults), `framing` (Content-Length frames), `rpc` (JSON-RPC
//! both ways), `answers` (the server's requests and notifications), `published` (each file's
//! last diagnostics, waiting for a version), `server` (one process), `registry` (all of
//! them), `report` (diagnostics as text). Nothing here knows tools: `tools::diagnostics` uses
//! this module's face ([`Lsp`]).

mod answers;
pub mod config;
mod framing;
mod published;
#[cfg(test)]
pub(crate) mod pyright_tests;
mod registry;
pub mod report;
mod rpc;
mod server;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use config::LspConfig;
use config::ServerSpec;
use registry::Registry;
pub use report::FileReport;

use crate::engine::secret_env::CommandEnv;

/// What checking one file gave.
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    /// No configured server serves this file.
    NoServer,
    /// A server serves it but gave nothing this time; the text says why.
    Unavailable(String),
    Checked(FileReport),
}

/// The engine's language servers. Cheap to clone.
#[derive(Clone, Default)]
pub struct Lsp {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    specs: Vec<Arc<ServerSpec>>,
    registry: Arc<Registry>,
    wait: Duration,
}

impl Lsp {
    /// The servers `config` names (defaults where found on `path_var`, a `PATH` value).
    /// Errors name the entry to fix.
    pub fn new(config: &LspConfig, path_var: Option<&OsStr>) -> Result<Lsp, String> {
        let specs: Vec<Arc<ServerSpec>> = config.servers(path_var)?.into_iter().map(Arc::new).collect();
        if specs.is_empty() {
            return Ok(Lsp::default());
        }
        let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        tracing::debug!(servers = ?names, "language servers configured");
        Ok(Lsp { inner: Some(Arc::new(Inner { specs, registry: Arc::default(), wait: config.wait() })) })
    }

    /// The server for `path`, if any (the first configured that serves it).
    fn spec_for(&self, path: &Path) -> Option<&Arc<ServerSpec>> {
        self.inner.as_ref()?.specs.iter().find(|s| s.serves(path))
    }

    /// True if some server checks `path`.
    pub fn serves(&self, path: &Path) -> bool {
        self.spec_for(path).is_some()
    }

    /// Sends `text` (the file's current content) to the server for `path`, started now if
    /// needed, and waits (bounded) for its diagnostics. `roots` are the session's roots
    /// (its directory first); `env` is what the server's process gets.
    pub async fn check(&self, path: &Path, text: &str, roots: &[PathBuf], env: &CommandEnv) -> Check {
        let (Some(inner), Some(spec)) = (self.inner.as_ref(), self.spec_for(path)) else { return Check::NoServer };
        let root = project_root(path, roots, &spec.root_markers);
        let Some(server) = inner.registry.server(spec, &root, env).await else {
            return Check::Unavailable(format!("the language server {} is not available (see the log)", spec.name));
        };
        let ticket = match server.sync(path, text).await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(server = %spec.name, error = %e, "cannot send a file to the language server");
                return Check::Unavailable(format!("the language server {} stopped", spec.name));
            }
        };
        match server.diagnostics(path, ticket, inner.wait).await {
            Some(p) => Check::Checked(FileReport::new(&spec.name, path.to_path_buf(), p.diagnostics)),
            None => {
                tracing::info!(server = %spec.name, path = %path.display(), wait = ?inner.wait,
                    "no diagnostics in time; the edit goes on without them");
                Check::Unavailable(format!("{} gave no diagnostics within {:?}", spec.name, inner.wait))
            }
        }
    }

    /// What the running servers last reported for files under `roots` (files with errors or
    /// warnings only); `None` when no server runs for any of them.
    pub fn workspace(&self, roots: &[PathBuf]) -> Option<Vec<FileReport>> {
        let inner = self.inner.as_ref()?;
        let servers: Vec<_> = inner
            .registry
            .running()
            .into_iter()
            .filter(|s| roots.iter().any(|r| s.root.starts_with(r) || r.starts_with(&s.root)))
            .collect();
        if servers.is_empty() {
            return None;
        }
        let mut reports: Vec<FileReport> = servers
            .iter()
            .flat_map(|s| s.known_under(roots).into_iter().map(|(path, all)| FileReport::new(&s.spec.name, path, all)))
            .filter(|r| !r.diagnostics.is_empty())
            .collect();
        reports.sort_by(|a, b| a.path.cmp(&b.path).then_with(|| a.server.cmp(&b.server)));
        Some(reports)
    }

    /// Stops every server (bounded).
    pub async fn shutdown(&self) {
        if let Some(inner) = &self.inner {
            inner.registry.shutdown().await;
        }
    }
}

/// The directory a server for `path` runs in: the outermost directory, from the session root
/// that holds `path` down to the file's own, that has one of `markers` (so a Cargo workspace
/// gets one rust-analyzer, not one per member crate); else that session root.
fn project_root(path: &Path, roots: &[PathBuf], markers: &[String]) -> PathBuf {
    let parent = path.parent().unwrap_or(path);
    let Some(session_root) = roots.iter().filter(|r| path.starts_with(r)).max_by_key(|r| r.components().count()) else {
        return parent.to_path_buf();
    };
    let mut below: Vec<&Path> = parent.ancestors().take_while(|d| d.starts_with(session_root)).collect();
    below.reverse();
    below.into_iter().find(|dir| markers.iter().any(|m| dir.join(m).exists())).unwrap_or(session_root).to_path_buf()
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_is_the_outermost_marker_dir_inside_the_session() {
        let dir = tempfile::tempdir().unwrap();
        let w = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(w.join("crates/a/src")).unwrap();
        std::fs::create_dir_all(w.join("py/pkg")).unwrap();
        std::fs::write(w.join("Cargo.toml"), "").unwrap();
        std::fs::write(w.join("crates/a/Cargo.toml"), "").unwrap();
        std::fs::write(w.join("py/pyproject.toml"), "").unwrap();
        let roots = vec![w.clone(), PathBuf::from("/elsewhere")];
        let cargo = ["Cargo.toml".to_string()];
        let python = ["pyproject.toml".to_string()];
        assert_eq!(project_root(&w.join("crates/a/src/lib.rs"), &roots, &cargo), w);
        assert_eq!(project_root(&w.join("py/pkg/m.py"), &roots, &python), w.join("py"));
        assert_eq!(
            project_root(&w.join("scripts/x.py"), &roots, &["none".to_string()]),
            w,
            "no marker: the session root"
        );
        assert_eq!(project_root(Path::new("/tmp/x/y.py"), &roots, &python), Path::new("/tmp/x"), "outside every root");
    }

    #[tokio::test]
    async fn no_servers_means_no_server_for_any_file() {
        let lsp = Lsp::new(&LspConfig { enabled: Some(false), ..Default::default() }, None).unwrap();
        assert!(!lsp.serves(Path::new("/w/a.py")));
        let check = lsp.check(Path::new("/w/a.py"), "x = 1\n", &[PathBuf::from("/w")], &CommandEnv::default()).await;
        assert_eq!(check, Check::NoServer);
        assert_eq!(lsp.workspace(&[PathBuf::from("/w")]), None);
    }

    #[tokio::test]
    async fn a_missing_command_is_unavailable_then_left_alone() {
        let config: LspConfig = toml::from_str(
            "[servers.ghost]\ncommand = \"/nonexistent/ghost-language-server\"\nfiles = [\"*.ghost\"]\n",
        )
        .unwrap();
        let lsp = Lsp::new(&config, None).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.ghost");
        let roots = [dir.path().to_path_buf()];
        for _ in 0..2 {
            let started = std::time::Instant::now();
            let check = lsp.check(&file, "boo", &roots, &CommandEnv::default()).await;
            assert!(matches!(&check, Check::Unavailable(m) if m.contains("ghost")), "{check:?}");
            assert!(started.elapsed() < Duration::from_secs(5));
        }
        lsp.shutdown().await;
    }
}
