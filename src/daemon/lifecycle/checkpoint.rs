//! The reload checkpoint: `RATCHET_HOME/daemon.checkpoint.json`.
//!
//! A reloading daemon cancels its running turns (each saves what it had, marked cancelled),
//! writes this file, and `exec`s the new binary; the new process reads and deletes it and
//! logs what it took over. Nothing acknowledged lives only here: every message is already in
//! SQLite. The file is the hand-over's record, so the new process can say which sessions
//! were open and which turns were cut short (editors re-open sessions with `session/load`).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The checkpoint's file name under `RATCHET_HOME`.
pub const CHECKPOINT_FILE: &str = "daemon.checkpoint.json";

/// What a reloading daemon hands to its successor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The version of the daemon that wrote it.
    pub version: String,
    /// Its pid (the same as the successor's after `exec`).
    pub pid: u32,
    /// When it was written, in milliseconds since the Unix epoch.
    pub written_at_ms: i64,
    /// Sessions that were active in the old process.
    pub open_sessions: Vec<String>,
    /// Turns the reload cancelled; their partial answers are stored, marked cancelled.
    pub interrupted_turns: Vec<InterruptedTurn>,
}

/// A turn cut short by the reload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterruptedTurn {
    pub session: String,
    /// The stored message that holds the partial answer.
    pub message_seq: i64,
}

/// The checkpoint's path under `home`.
pub fn path(home: &Path) -> PathBuf {
    home.join(CHECKPOINT_FILE)
}

/// Writes the checkpoint atomically (temp file, then rename), mode 0600.
pub fn write(home: &Path, checkpoint: &Checkpoint) -> std::io::Result<()> {
    let json = serde_json::to_vec_pretty(checkpoint).map_err(std::io::Error::other)?;
    let target = path(home);
    let temp = home.join(format!("{CHECKPOINT_FILE}.tmp"));
    super::lock::write_private(&temp, &json)?;
    std::fs::rename(&temp, &target)
}

/// Reads and deletes the checkpoint. `Ok(None)` when there is none; a file that does not
/// parse is deleted too (it could never be used) and reported as an error.
pub fn take(home: &Path) -> Result<Option<Checkpoint>, String> {
    let target = path(home);
    let bytes = match std::fs::read(&target) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", target.display())),
    };
    let _ = std::fs::remove_file(&target);
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| format!("ignoring {}: it does not parse ({e})", target.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn write_then_take_once() {
        let home = tempfile::tempdir().unwrap();
        assert_eq!(take(home.path()), Ok(None));
        let cp = Checkpoint {
            version: "1.2.3".into(),
            pid: 42,
            written_at_ms: 1_700_000_000_000,
            open_sessions: vec!["a".into(), "b".into()],
            interrupted_turns: vec![InterruptedTurn { session: "a".into(), message_seq: 7 }],
        };
        write(home.path(), &cp).unwrap();
        let mode = std::fs::metadata(path(home.path())).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(take(home.path()), Ok(Some(cp)));
        assert!(!path(home.path()).exists(), "taking deletes it");
        assert_eq!(take(home.path()), Ok(None));
    }

    #[test]
    fn a_corrupt_checkpoint_is_reported_and_removed() {
        let home = tempfile::tempdir().unwrap();
        std::fs::write(path(home.path()), "{not json").unwrap();
        let err = take(home.path()).unwrap_err();
        assert!(err.contains("does not parse"), "{err}");
        assert!(!path(home.path()).exists());
    }
}
