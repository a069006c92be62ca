//! The exec guard: a tiny supervisor between ratchet and each local `shell` command, so that
//! commands die with ratchet.
//!
//! A command runs in a process group of its own so that a timeout or a cancel kills all of
//! it. But a process group outlives whoever made it: after `kill -9` of `ratchet acp` (or of
//! the daemon) the command would run on, re-parented to init. `PR_SET_PDEATHSIG` is no cure:
//! it fires when the forking *thread* exits (runtime threads come and go), and it reaches only
//! the direct child, not what that child started.
//!
//! So the `shell` tool starts this very binary again (`/proc/self/exe` on Linux: the running
//! program even when a reload replaced its file) with [`GUARD_ARG`] and the command line. The
//! guard leads the process group and runs `sh -c COMMAND` in it: stdin `/dev/null`, stdout and
//! stderr the guard's own (the tool's pipes), the environment unchanged. The guard's stdin is
//! the *lifeline*, a pipe whose write end only ratchet holds: end of file on it means ratchet
//! is gone, however it died, and the guard SIGKILLs its whole group. When the command exits the
//! guard exits the same way (same code, or the same signal raised again), so ratchet sees the
//! command's own status. Background jobs a *finished* command left behind keep running, as they
//! did without the guard.
//!
//! The guard is std only and runs before argument parsing, logging or the async runtime; see
//! [`dispatch`]. A process that never called it (the library's own tests) runs commands
//! without a guard.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;

/// The hidden first argument that makes the `ratchet` binary an exec guard.
pub const GUARD_ARG: &str = "__ratchet-exec-guard";

/// The program that starts a guard; set by [`dispatch`] in the `ratchet` binary only.
static PROGRAM: OnceLock<PathBuf> = OnceLock::new();

/// Call first thing in `main`. In a process started as an exec guard it runs the guard and
/// exits; otherwise it records that this binary can be a guard, so commands get one.
pub fn dispatch() {
    let mut args = std::env::args_os().skip(1);
    if args.next().is_some_and(|a| a == GUARD_ARG) {
        let rest: Vec<OsString> = args.collect();
        std::process::exit(guard::run(&rest));
    }
    if let Some(program) = this_program() {
        let _ = PROGRAM.set(program);
    }
}

/// How to start this binary again, on a platform where the guard works.
fn this_program() -> Option<PathBuf> {
    if !cfg!(unix) {
        return None;
    }
    let proc_exe = Path::new("/proc/self/exe");
    if cfg!(target_os = "linux") && proc_exe.exists() {
        return Some(proc_exe.to_path_buf());
    }
    std::env::current_exe().ok()
}

/// The write end of a guard's lifeline: drop it only once the command has ended (dropping it
/// while the command runs kills the command).
pub(crate) struct Lifeline {
    _write: Option<std::io::PipeWriter>,
}

/// `sh -c COMMAND` with stdin closed, under a guard when this binary can start one. The
/// caller adds the directory, output pipes, environment and process group, then holds the
/// [`Lifeline`] until the command has ended.
pub(crate) fn sh_command(command: &str) -> std::io::Result<(tokio::process::Command, Lifeline)> {
    let Some(program) = PROGRAM.get() else {
        let mut cmd = tokio::process::Command::new("sh");
        cmd.arg("-c").arg(command).stdin(Stdio::null());
        return Ok((cmd, Lifeline { _write: None }));
    };
    // Both ends are close-on-exec: only the guard (as its stdin) gets the read end, and no
    // other child ever holds the write end open.
    let (read, write) = std::io::pipe()?;
    let mut cmd = tokio::process::Command::new(program);
    cmd.arg(GUARD_ARG).arg(command).stdin(read);
    #[cfg(unix)]
    cmd.arg0("ratchet-exec-guard");
    Ok((cmd, Lifeline { _write: Some(write) }))
}

/// Kills a process group (the one a command leads, `process_group(0)`) on drop unless
/// disarmed (`.0 = None`): a command stopped for a timeout or a cancel takes what it started
/// with it.
pub(crate) struct GroupGuard(pub(crate) Option<u32>);

impl GroupGuard {
    pub(crate) fn kill(&mut self) {
        #[cfg(unix)]
        if let Some(pid) = self.0.take().and_then(|p| i32::try_from(p).ok()) {
            // SAFETY: kill(2) with a negative pid signals that process group; no memory involved.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
        self.0 = None;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(unix)]
mod guard {
    use std::ffi::OsString;
    use std::io::{Read, Write};
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Command, ExitStatus, Stdio};

    /// The guard's whole life; returns its exit code (a signal ends it sooner).
    pub(super) fn run(args: &[OsString]) -> i32 {
        let [command] = args else {
            let usage = format!("usage: ratchet {} COMMAND (the shell tool starts it)", super::GUARD_ARG);
            return complain(&usage, 2);
        };
        // Lead a group of our own, so the kill below can never reach whoever started us.
        // SAFETY: getpgrp/getpid/setpgid take no pointers.
        if unsafe { libc::getpgrp() != libc::getpid() && libc::setpgid(0, 0) != 0 } {
            let e = std::io::Error::last_os_error();
            return complain(&format!("ratchet exec guard: cannot lead a process group: {e}"), 126);
        }
        if let Err(e) = std::thread::Builder::new().name("lifeline".into()).spawn(watch_lifeline) {
            return complain(&format!("ratchet exec guard: cannot watch ratchet: {e}"), 126);
        }
        let mut child = match Command::new("sh").arg("-c").arg(command).stdin(Stdio::null()).spawn() {
            Ok(child) => child,
            Err(e) => return complain(&format!("ratchet: cannot start `sh`: {e}"), 127),
        };
        match child.wait() {
            Ok(status) => pass_on(status),
            Err(e) => {
                let _ = writeln!(std::io::stderr(), "ratchet exec guard: lost the command: {e}");
                kill_group()
            }
        }
    }

    fn complain(message: &str, code: i32) -> i32 {
        let _ = writeln!(std::io::stderr(), "{message}");
        code
    }

    /// Reads stdin until end of file (ratchet closed or lost the write end), then kills the group.
    fn watch_lifeline() {
        let mut stdin = std::io::stdin().lock();
        let mut buf = [0u8; 64];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        kill_group();
    }

    /// SIGKILLs the guard's process group: the command, all it started, and the guard.
    fn kill_group() -> i32 {
        // SAFETY: kill(2) with pid 0 signals our own process group; no memory involved.
        unsafe { libc::kill(0, libc::SIGKILL) };
        1
    }

    /// The command's exit code, or its fatal signal raised again on the guard.
    fn pass_on(status: ExitStatus) -> i32 {
        if let Some(code) = status.code() {
            return code;
        }
        let Some(sig) = status.signal() else { return 1 };
        // SAFETY: plain signal syscalls on this process; the sigset lives on the stack. No
        // core file: the command already left its own.
        unsafe {
            let none = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
            libc::setrlimit(libc::RLIMIT_CORE, &none);
            libc::signal(sig, libc::SIG_DFL);
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, sig);
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
            libc::raise(sig);
        }
        128 + sig
    }
}

#[cfg(not(unix))]
mod guard {
    /// No guard here: [`super::this_program`] never offers one.
    pub(super) fn run(_args: &[std::ffi::OsString]) -> i32 {
        2
    }
}
