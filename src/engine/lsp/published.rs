//! The diagnostics a server last published for each file (`textDocument/publishDiagnostics`),
//! and waiting for the publish that answers a given change.
//!
//! A publish answers a change when it carries that document version or a later one; a server
//! that sends no versions is taken at its first publish for the file after the change.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use lsp_types::Diagnostic;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Diagnostics kept per file; a file with more is cut (what the model is shown is far less).
pub const MAX_STORED_PER_FILE: usize = 200;

/// Files whose diagnostics are kept per server; past this, new files' publishes are dropped
/// (a server checking a whole huge workspace still cannot grow our memory without end).
pub const MAX_FILES: usize = 5_000;

/// One file's last publish.
#[derive(Debug, Clone, PartialEq)]
pub struct Publish {
    pub version: Option<i32>,
    pub diagnostics: Vec<Diagnostic>,
    /// Which publish this was, counted per server from 1.
    pub seq: u64,
}

/// What a change is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    /// The document version the change sent.
    pub version: i32,
    /// The last publish seen before the change was sent.
    pub after_seq: u64,
}

/// Every file's last publish for one server.
pub struct Published {
    files: Mutex<HashMap<PathBuf, Publish>>,
    /// The count of publishes so far; bumped on each, to wake waiters.
    seq: watch::Sender<u64>,
}

impl Default for Published {
    fn default() -> Self {
        Published { files: Mutex::default(), seq: watch::Sender::new(0) }
    }
}

impl Published {
    /// Records a publish.
    pub fn record(&self, path: PathBuf, version: Option<i32>, mut diagnostics: Vec<Diagnostic>) {
        diagnostics.truncate(MAX_STORED_PER_FILE);
        let mut files = self.lock();
        if !files.contains_key(&path) && files.len() >= MAX_FILES {
            tracing::debug!(path = %path.display(), "too many files with diagnostics; this publish is dropped");
            return;
        }
        let seq = *self.seq.borrow() + 1;
        files.insert(path, Publish { version, diagnostics, seq });
        drop(files);
        self.seq.send_replace(seq);
    }

    /// The number of publishes so far (for a [`Ticket`]).
    pub fn current_seq(&self) -> u64 {
        *self.seq.borrow()
    }

    /// The file's last publish, if it answers `ticket`.
    fn answer(&self, path: &Path, ticket: Ticket) -> Option<Publish> {
        let files = self.lock();
        let p = files.get(path)?;
        let answers = match p.version {
            Some(v) => v >= ticket.version,
            None => p.seq > ticket.after_seq,
        };
        answers.then(|| p.clone())
    }

    /// Waits at most `timeout` for the publish that answers `ticket`; `None` if none came
    /// (or the server went away, `gone`).
    pub async fn wait(
        &self,
        path: &Path,
        ticket: Ticket,
        timeout: Duration,
        gone: &CancellationToken,
    ) -> Option<Publish> {
        let mut changes = self.seq.subscribe();
        let waiting = async {
            loop {
                if let Some(p) = self.answer(path, ticket) {
                    return Some(p);
                }
                if changes.changed().await.is_err() {
                    return None;
                }
            }
        };
        tokio::select! {
            r = tokio::time::timeout(timeout, waiting) => r.ok().flatten(),
            // One last look: the answer may have come just before the end.
            () = gone.cancelled() => self.answer(path, ticket),
        }
    }

    /// Every file's last diagnostics whose path is under one of `roots` (non-empty lists
    /// only), sorted by path.
    pub fn under(&self, roots: &[PathBuf]) -> Vec<(PathBuf, Vec<Diagnostic>)> {
        let files = self.lock();
        let mut out: Vec<(PathBuf, Vec<Diagnostic>)> = files
            .iter()
            .filter(|(path, p)| !p.diagnostics.is_empty() && roots.iter().any(|r| path.starts_with(r)))
            .map(|(path, p)| (path.clone(), p.diagnostics.clone()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, Publish>> {
        self.files.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn diag(message: &str) -> Diagnostic {
        Diagnostic { message: message.into(), ..Default::default() }
    }

    const SHORT: Duration = Duration::from_millis(50);

    #[tokio::test]
    async fn a_versioned_publish_answers_its_change_and_later_ones_only() {
        let p = Arc::new(Published::default());
        let path = PathBuf::from("/w/a.py");
        let gone = CancellationToken::new();
        p.record(path.clone(), Some(1), vec![diag("old")]);
        let ticket = Ticket { version: 2, after_seq: p.current_seq() };
        assert_eq!(p.wait(&path, ticket, SHORT, &gone).await, None, "version 1 does not answer version 2");

        let waiter = {
            let (p, path, gone) = (p.clone(), path.clone(), gone.clone());
            tokio::spawn(async move { p.wait(&path, ticket, Duration::from_secs(5), &gone).await })
        };
        tokio::time::sleep(SHORT).await;
        p.record(PathBuf::from("/w/other.py"), Some(7), vec![diag("elsewhere")]);
        p.record(path.clone(), Some(2), vec![diag("new")]);
        let got = waiter.await.unwrap().unwrap();
        assert_eq!((got.version, got.diagnostics[0].message.as_str()), (Some(2), "new"));
    }

    #[tokio::test]
    async fn an_unversioned_publish_answers_when_it_came_after_the_change() {
        let p = Published::default();
        let path = PathBuf::from("/w/main.go");
        let gone = CancellationToken::new();
        p.record(path.clone(), None, vec![]);
        let ticket = Ticket { version: 5, after_seq: p.current_seq() };
        assert_eq!(p.wait(&path, ticket, SHORT, &gone).await, None);
        p.record(path.clone(), None, vec![diag("x")]);
        assert!(p.wait(&path, ticket, SHORT, &gone).await.is_some());
    }

    #[tokio::test]
    async fn a_gone_server_ends_the_wait_at_once() {
        let p = Published::default();
        let gone = CancellationToken::new();
        gone.cancel();
        let ticket = Ticket { version: 1, after_seq: 0 };
        let started = std::time::Instant::now();
        assert_eq!(p.wait(Path::new("/w/a.py"), ticket, Duration::from_secs(30), &gone).await, None);
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn storage_is_bounded_and_listed_by_root() {
        let p = Published::default();
        let many: Vec<Diagnostic> = (0..MAX_STORED_PER_FILE + 5).map(|i| diag(&i.to_string())).collect();
        p.record(PathBuf::from("/w/b.py"), Some(1), many);
        p.record(PathBuf::from("/w/a.py"), Some(1), vec![diag("a")]);
        p.record(PathBuf::from("/w/clean.py"), Some(1), vec![]);
        p.record(PathBuf::from("/elsewhere/c.py"), Some(1), vec![diag("c")]);
        let listed = p.under(&[PathBuf::from("/w")]);
        let paths: Vec<&Path> = listed.iter().map(|(path, _)| path.as_path()).collect();
        assert_eq!(paths, [Path::new("/w/a.py"), Path::new("/w/b.py")]);
        assert_eq!(listed[1].1.len(), MAX_STORED_PER_FILE);
    }
}
