//! [`SingletonLock`]: work that must run in exactly one process per data directory.
//!
//! Several stand-alone `ratchet acp` processes may share one `RATCHET_HOME` (SQLite in WAL
//! mode with busy timeouts makes that safe), but some work (cron, later) must run in exactly
//! one of them. Each process asks for the lock; one gets it, the others keep trying every
//! second, and when the holder exits (even by `kill -9`: the kernel drops a dead process's
//! `flock`s) one of the waiters takes over.
//!
//! The lock is an exclusive `flock` on `RATCHET_HOME/singleton.lock`. Never delete that file:
//! a process that opened a new file of the same name would lock a different inode, and two
//! processes would both believe they hold the lock.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The lock file's name under `RATCHET_HOME`.
pub const SINGLETON_LOCK_FILE: &str = "singleton.lock";

/// How often a waiting process retries: quick enough that singleton work resumes within a
/// second or so of the holder exiting, rare enough to cost nothing.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(1);

/// Tries once to take an exclusive `flock` on `path`, creating the file (mode 0600) if needed.
///
/// `Ok(Some(file))`: the lock is ours until `file` is closed. `Ok(None)`: another open file
/// holds it (another process, or another `open` of the same file in this one).
pub fn try_lock_exclusive(path: &Path) -> io::Result<Option<File>> {
    use std::os::unix::fs::OpenOptionsExt;
    let file =
        std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).mode(0o600).open(path)?;
    // SAFETY: flock on a file descriptor we own; it does not touch memory.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(Some(file));
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EWOULDBLOCK) => Ok(None),
        Some(libc::EINTR) => try_lock_exclusive(path),
        _ => Err(err),
    }
}

/// A claim on the data directory's singleton work. Held until dropped (or the process exits).
///
/// Owns a background task that retries until it gets the lock; dropping the `SingletonLock`
/// stops the task and releases the lock at once. Needs a Tokio runtime to create.
pub struct SingletonLock {
    held: watch::Receiver<bool>,
    /// The locked file while we hold it. Shared with the task so `Drop` can release
    /// synchronously.
    file: Arc<Mutex<Option<File>>>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl SingletonLock {
    /// Starts trying to take the lock at `path` (normally `RATCHET_HOME/singleton.lock`),
    /// every [`RETRY_INTERVAL`] until it succeeds.
    pub fn acquire_or_wait(path: impl Into<PathBuf>) -> SingletonLock {
        Self::acquire_or_wait_every(path, RETRY_INTERVAL)
    }

    /// [`SingletonLock::acquire_or_wait`] with another retry interval (tests).
    pub fn acquire_or_wait_every(path: impl Into<PathBuf>, retry: Duration) -> SingletonLock {
        let path = path.into();
        let (tx, held) = watch::channel(false);
        let file = Arc::new(Mutex::new(None));
        let stop = CancellationToken::new();
        let task = tokio::spawn(wait_for_lock(path, retry, tx, file.clone(), stop.clone()));
        SingletonLock { held, file, stop, task }
    }

    /// True while this process holds the lock.
    pub fn is_held(&self) -> bool {
        *self.held.borrow()
    }

    /// Watches the lock: the value turns `true` once it is ours.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.held.clone()
    }

    /// Waits until the lock is ours.
    pub async fn held(&self) {
        let mut rx = self.held.clone();
        // The sender lives in the task; it only goes away after sending `true` or on drop.
        let _ = rx.wait_for(|held| *held).await;
    }
}

impl Drop for SingletonLock {
    fn drop(&mut self) {
        // Cancel first: the task checks the token under the mutex before storing the file.
        self.stop.cancel();
        self.task.abort();
        drop(lock(&self.file).take());
    }
}

fn lock(file: &Mutex<Option<File>>) -> std::sync::MutexGuard<'_, Option<File>> {
    file.lock().unwrap_or_else(|p| p.into_inner())
}

/// Stores the locked file unless the lock was dropped meanwhile (then `file` closes here,
/// releasing the lock). Checked under the mutex so it cannot race with `Drop`.
fn keep(slot: &Mutex<Option<File>>, stop: &CancellationToken, file: File) -> bool {
    let mut guard = lock(slot);
    if stop.is_cancelled() {
        return false;
    }
    *guard = Some(file);
    true
}

/// The lock's background task: retry until the lock is ours, then keep it until stopped.
async fn wait_for_lock(
    path: PathBuf,
    retry: Duration,
    tx: watch::Sender<bool>,
    slot: Arc<Mutex<Option<File>>>,
    stop: CancellationToken,
) {
    let mut warned = false;
    loop {
        match try_lock_exclusive(&path) {
            Ok(Some(file)) => {
                if !keep(&slot, &stop, file) {
                    return;
                }
                tracing::info!(path = %path.display(), "singleton lock acquired");
                let _ = tx.send(true);
                stop.cancelled().await;
                return;
            }
            Ok(None) => {}
            Err(e) if !warned => {
                warned = true;
                tracing::warn!(path = %path.display(), error = %e, "cannot open the singleton lock; retrying");
            }
            Err(_) => {}
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(retry) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: Duration = Duration::from_millis(20);
    const DEADLINE: Duration = Duration::from_secs(10);

    #[test]
    fn two_opens_of_one_file_conflict() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SINGLETON_LOCK_FILE);
        let first = try_lock_exclusive(&path).unwrap();
        assert!(first.is_some());
        assert!(try_lock_exclusive(&path).unwrap().is_none());
        drop(first);
        assert!(try_lock_exclusive(&path).unwrap().is_some());
    }

    #[tokio::test]
    async fn exactly_one_holder_and_the_waiter_takes_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SINGLETON_LOCK_FILE);
        let first = SingletonLock::acquire_or_wait_every(&path, FAST);
        tokio::time::timeout(DEADLINE, first.held()).await.expect("first takes the lock");
        let second = SingletonLock::acquire_or_wait_every(&path, FAST);
        // Several retries of the second must all fail while the first holds it.
        tokio::time::sleep(FAST * 5).await;
        assert!(first.is_held());
        assert!(!second.is_held());

        drop(first);
        tokio::time::timeout(DEADLINE, second.held()).await.expect("second takes over");
        assert!(second.is_held());
        assert!(try_lock_exclusive(&path).unwrap().is_none(), "the lock is really held");
    }

    #[tokio::test]
    async fn dropping_a_waiter_stops_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SINGLETON_LOCK_FILE);
        let holder = try_lock_exclusive(&path).unwrap().unwrap();
        let waiter = SingletonLock::acquire_or_wait_every(&path, FAST);
        let mut watch = waiter.subscribe();
        drop(waiter);
        drop(holder);
        // The dropped waiter never takes the lock: it is free for anyone else.
        tokio::time::sleep(FAST * 5).await;
        assert!(!*watch.borrow_and_update());
        assert!(try_lock_exclusive(&path).unwrap().is_some());
    }
}
