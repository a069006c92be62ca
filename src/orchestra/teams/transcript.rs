//! The transcript of a team, `RATCHET_HOME/transcripts/<team id>.md`: everything its members
//! were told and said, their messages, blackboard writes and status changes, in order,
//! secrets redacted (the engine's redactor). Appended as the team runs, so a team that dies
//! leaves what it did; a file that cannot be written only costs a warning.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::engine::tools::redact::Redactor;

/// One team's transcript file.
#[derive(Clone)]
pub struct Transcript {
    path: PathBuf,
    redactor: Arc<Redactor>,
    /// Serialises appends (members write from their own tasks).
    lock: Arc<Mutex<()>>,
}

impl Transcript {
    pub fn new(path: PathBuf, redactor: Arc<Redactor>) -> Transcript {
        Transcript { path, redactor, lock: Arc::default() }
    }

    pub fn path(&self) -> &PathBuf {
        &self.path
    }

    /// `text` with the secrets the transcript leaves out left out.
    pub fn redact(&self, text: &str) -> String {
        self.redactor.redact(text)
    }

    /// Appends a `## heading` and `text` (redacted).
    pub async fn section(&self, heading: &str, text: &str) {
        let block = format!("\n## {}\n\n{}\n", self.redactor.redact(heading), self.redactor.redact(text.trim_end()));
        self.append(block).await;
    }

    /// Appends one `- line` (redacted).
    pub async fn line(&self, text: &str) {
        let block = format!("- {}\n", self.redactor.redact(text).replace('\n', "\n  "));
        self.append(block).await;
    }

    async fn append(&self, block: String) {
        let (path, lock) = (self.path.clone(), self.lock.clone());
        let written = tokio::task::spawn_blocking(move || {
            let _held = lock.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(dir) = path.parent() {
                crate::engine::data_dir::create_dir(dir)?;
            }
            let mut file = crate::engine::data_dir::open_append(&path)?;
            file.write_all(block.as_bytes())
        })
        .await;
        match written {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(path = %self.path.display(), error = %e, "cannot write a team transcript"),
            Err(e) => tracing::warn!(error = %e, "a team transcript write did not finish"),
        }
    }
}
