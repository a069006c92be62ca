//! The daemon's life: start (foreground or detached), stop, status, restart, reload.
//!
//! One daemon per data directory, enforced by an exclusive `flock` on `daemon.lock` that the
//! daemon holds for its whole life; the kernel releases it when the process dies, so a crash
//! never blocks the next start, and the next daemon cleans up the stale socket and pid file
//! while holding the lock.
//!
//! - `lock`: the lock, pid files, stale-file recovery.
//! - `socket`: binding `daemon.sock` with mode 0600 and no window.
//! - `checkpoint`: what a reloading daemon hands to the binary it `exec`s.
//! - `run`: the daemon process (signals: SIGTERM/SIGINT stop, SIGUSR1 reloads; idle stop).
//! - `control`: start detached, stop, status, reload and [`ensure_running`], from another
//!   process.

pub mod checkpoint;
pub mod control;
pub mod lock;
pub mod run;
pub mod socket;

pub use control::{Started, Status, Stopped, ensure_running, ensure_running_with};
pub use lock::{DaemonLock, LockError, LockState};
pub use run::{Outcome, ReloadPlan, exec_reload, run_daemon};
