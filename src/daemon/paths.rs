//! Where the daemon keeps its files: all under `RATCHET_HOME`.

use std::path::{Path, PathBuf};

/// The daemon's files for one data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonPaths {
    /// The control socket (mode 0600).
    pub socket: PathBuf,
    /// The running daemon's pid, for `status` and signals.
    pub pid: PathBuf,
    /// Held (flock) by the running daemon: two daemons can never share a data directory.
    pub lock: PathBuf,
    /// The daemon's log directory.
    pub logs: PathBuf,
}

impl DaemonPaths {
    /// The files under `home`.
    pub fn new(home: &Path) -> Self {
        DaemonPaths {
            socket: home.join("daemon.sock"),
            pid: home.join("daemon.pid"),
            lock: home.join("daemon.lock"),
            logs: home.join("logs"),
        }
    }
}
