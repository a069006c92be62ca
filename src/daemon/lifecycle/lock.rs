//! The daemon lock: an exclusive `flock` on `RATCHET_HOME/daemon.lock`, held for the daemon's
//! whole life, so two daemons can never run on one data directory.
//!
//! The kernel drops a dead process's `flock`s, so a crashed daemon never leaves the lock
//! taken: a socket or pid file without a held lock is stale, and the next daemon removes it
//! (only while holding the lock, so it can never remove a live daemon's socket).

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::daemon::paths::DaemonPaths;
pub use crate::engine::liveness::pid_alive;
use crate::engine::singleton::try_lock_exclusive;

/// A contended lock is retried this often, this many times, before giving up: covers a
/// `status` or `stop` probing the lock at the same instant, and a starting daemon that has
/// the lock but has not written its pid yet.
const CONTENDED_RETRIES: u32 = 4;
const CONTENDED_PAUSE: Duration = Duration::from_millis(50);
/// Retries while the holder is already dead: a daemon killed with `kill -9` counts as dead (a
/// zombie) while the kernel still tears it down and releases its lock; 2 s covers that.
const DEAD_HOLDER_RETRIES: u32 = 40;

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("a daemon is already running on RATCHET_HOME={} ({}); stop it with `ratchet daemon stop`", home.display(), pid_text(*pid))]
    AlreadyRunning { home: PathBuf, pid: Option<u32> },
    #[error("cannot use the daemon lock {}: {source}; check that RATCHET_HOME is writable", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

fn pid_text(pid: Option<u32>) -> String {
    match pid {
        Some(pid) => format!("pid {pid}"),
        None => "pid unknown".to_string(),
    }
}

/// The held daemon lock. Dropping it (or exiting, or `exec`, since the file is close-on-exec)
/// releases it.
#[derive(Debug)]
pub struct DaemonLock {
    file: File,
    paths: DaemonPaths,
    /// The pid a previous daemon left in `daemon.pid`, if it was not ours.
    stale_pid: Option<u32>,
}

impl DaemonLock {
    /// Takes the lock for this process and records our pid in the lock file and in
    /// `daemon.pid`. Fails at once with [`LockError::AlreadyRunning`] (naming the holder's
    /// pid) when another daemon holds it.
    pub fn acquire(home: &Path) -> Result<DaemonLock, LockError> {
        let paths = DaemonPaths::new(home);
        let io_err = |source| LockError::Io { path: paths.lock.clone(), source };
        crate::engine::data_dir::create_dir(home).map_err(io_err)?;
        let mut attempt = 0;
        let mut file = loop {
            if let Some(file) = try_lock_exclusive(&paths.lock).map_err(io_err)? {
                break file;
            }
            let holder = holder_pid(&paths);
            attempt += 1;
            let limit = if holder.is_some() { DEAD_HOLDER_RETRIES } else { CONTENDED_RETRIES };
            if attempt >= limit || holder.is_some_and(pid_alive) {
                return Err(LockError::AlreadyRunning { home: home.to_path_buf(), pid: holder });
            }
            std::thread::sleep(CONTENDED_PAUSE);
        };
        let me = std::process::id();
        let stale_pid = read_pid(&paths.pid).filter(|p| *p != me);
        let pid = format!("{me}\n");
        file.set_len(0).map_err(io_err)?;
        file.rewind().map_err(io_err)?;
        file.write_all(pid.as_bytes()).map_err(io_err)?;
        write_private(&paths.pid, pid.as_bytes())
            .map_err(|source| LockError::Io { path: paths.pid.clone(), source })?;
        Ok(DaemonLock { file, paths, stale_pid })
    }

    /// The files this lock guards.
    pub fn paths(&self) -> &DaemonPaths {
        &self.paths
    }

    /// Cleans up after a daemon that did not exit cleanly: removes its socket (only if it is
    /// a socket; anything else is an error to report) and reports the pid file it left (which
    /// [`DaemonLock::acquire`] already replaced). Returns what it found, to log.
    pub fn clean_stale(&self) -> std::io::Result<Vec<String>> {
        use std::os::unix::fs::FileTypeExt;
        let mut removed = Vec::new();
        if let Some(pid) = self.stale_pid {
            removed.push(format!("stale pid file (pid {pid})"));
        }
        match std::fs::symlink_metadata(&self.paths.socket) {
            Ok(meta) if meta.file_type().is_socket() => {
                std::fs::remove_file(&self.paths.socket)?;
                removed.push(format!("stale socket {}", self.paths.socket.display()));
            }
            Ok(_) => {
                return Err(std::io::Error::other(format!(
                    "{} exists and is not a socket; move it aside and start again",
                    self.paths.socket.display()
                )));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(removed)
    }

    /// Removes the socket (only a socket: never a file someone put in its way) and our pid
    /// file while still holding the lock, then releases it.
    pub fn release(self) {
        use std::os::unix::fs::FileTypeExt;
        if std::fs::symlink_metadata(&self.paths.socket).is_ok_and(|m| m.file_type().is_socket()) {
            let _ = std::fs::remove_file(&self.paths.socket);
        }
        if read_pid(&self.paths.pid) == Some(std::process::id()) {
            let _ = std::fs::remove_file(&self.paths.pid);
        }
        drop(self.file);
    }
}

/// Whether a daemon holds the lock of a data directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockState {
    Free,
    /// Held, by the pid it recorded (unknown for an instant while a daemon starts).
    Held(Option<u32>),
}

/// Probes the lock of `home`, taking it for an instant when it is free.
pub fn probe(home: &Path) -> LockState {
    let paths = DaemonPaths::new(home);
    match try_lock_exclusive(&paths.lock) {
        Ok(Some(_free)) => LockState::Free,
        Ok(None) => LockState::Held(holder_pid(&paths)),
        // No lock file and no way to create one: nothing can be running there.
        Err(_) => LockState::Free,
    }
}

/// True if no process holds the lock.
pub fn lock_is_free(home: &Path) -> bool {
    matches!(try_lock_exclusive(&DaemonPaths::new(home).lock), Ok(Some(_)))
}

/// The holder's pid as it recorded it: the lock file first (written only under the lock),
/// then `daemon.pid`.
fn holder_pid(paths: &DaemonPaths) -> Option<u32> {
    read_pid(&paths.lock).or_else(|| read_pid(&paths.pid))
}

/// Reads a pid file (`"<pid>\n"`).
pub fn read_pid(path: &Path) -> Option<u32> {
    let mut text = String::new();
    File::open(path).ok()?.read_to_string(&mut text).ok()?;
    text.trim().parse().ok().filter(|pid| *pid > 0)
}

/// Writes `bytes` to `path` with mode 0600 (replacing it).
pub(super) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    crate::engine::data_dir::create_file(path)?.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_acquire_fails_naming_the_holder() {
        let home = tempfile::tempdir().unwrap();
        let lock = DaemonLock::acquire(home.path()).unwrap();
        let err = DaemonLock::acquire(home.path()).unwrap_err();
        let me = std::process::id();
        assert!(matches!(err, LockError::AlreadyRunning { pid: Some(p), .. } if p == me), "{err:?}");
        let text = err.to_string();
        assert!(text.contains(&format!("pid {me}")), "{text}");
        assert!(text.contains(&home.path().display().to_string()), "{text}");
        assert!(text.contains("ratchet daemon stop"), "{text}");
        assert_eq!(probe(home.path()), LockState::Held(Some(me)));
        assert!(!lock_is_free(home.path()));

        lock.release();
        assert!(lock_is_free(home.path()));
        assert_eq!(probe(home.path()), LockState::Free);
        assert!(!DaemonPaths::new(home.path()).pid.exists(), "release removes the pid file");
        DaemonLock::acquire(home.path()).expect("free again after release");
    }

    #[test]
    fn stale_socket_and_pid_are_cleaned_under_the_lock() {
        let home = tempfile::tempdir().unwrap();
        let paths = DaemonPaths::new(home.path());
        // A crashed daemon: its socket and pid file remain, its lock is gone.
        let crashed = std::os::unix::net::UnixListener::bind(&paths.socket).unwrap();
        drop(crashed);
        std::fs::write(&paths.pid, "999999\n").unwrap();
        assert_eq!(probe(home.path()), LockState::Free, "a free lock means nothing runs");

        let lock = DaemonLock::acquire(home.path()).unwrap();
        assert_eq!(read_pid(&paths.pid), Some(std::process::id()), "pid file rewritten");
        let removed = lock.clean_stale().unwrap();
        assert_eq!(removed.len(), 2, "{removed:?}");
        assert!(!paths.socket.exists());
    }

    #[test]
    fn a_non_socket_in_the_way_is_left_alone() {
        let home = tempfile::tempdir().unwrap();
        let paths = DaemonPaths::new(home.path());
        std::fs::write(&paths.socket, "not a socket").unwrap();
        let lock = DaemonLock::acquire(home.path()).unwrap();
        let err = lock.clean_stale().unwrap_err();
        assert!(err.to_string().contains("not a socket"), "{err}");
        lock.release();
        assert_eq!(std::fs::read_to_string(&paths.socket).unwrap(), "not a socket");
    }
}
