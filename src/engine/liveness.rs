//! Whether a process that holds (or held) a lock or a job is still alive: the daemon's lock,
//! the jobs and teams a process owns. One answer for all of them, so a daemon killed with
//! `kill -9` is dead to `daemon start`, `team show` and `jobs` alike.

/// True if `pid` names a live process (a zombie counts as dead).
pub fn pid_alive(pid: u32) -> bool {
    let Ok(raw) = libc::pid_t::try_from(pid) else { return false };
    if raw <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists and that we may signal it.
    let exists =
        unsafe { libc::kill(raw, 0) } == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    if !exists {
        return false;
    }
    // A zombie keeps its pid until reaped; one just sent `kill -9` may not have run yet to
    // die, or be tearing down its memory before its files (a loaded machine): all are as
    // good as dead, and their lock is about to go.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    !(exiting(&stat) || dying(&status))
}

/// Whether a `/proc/<pid>/stat` line is a zombie's or a process's that has begun to exit
/// (state `Z`/`X`, or the kernel's `PF_EXITING` in the flags, the ninth field).
fn exiting(stat: &str) -> bool {
    const PF_EXITING: u64 = 0x4;
    let Some((_, rest)) = stat.rsplit_once(") ") else { return false };
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next().unwrap_or("");
    let flags = fields.nth(5).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    state.starts_with(['Z', 'X']) || flags & PF_EXITING != 0
}

/// Whether a `/proc/<pid>/status` text is a zombie's, or a process's with SIGKILL pending.
fn dying(status: &str) -> bool {
    const SIGKILL_BIT: u64 = 1 << (libc::SIGKILL - 1);
    status.lines().any(|line| match line.split_once(':') {
        Some(("State", state)) => matches!(state.trim_start().chars().next(), Some('Z' | 'X')),
        Some(("SigPnd" | "ShdPnd", mask)) => u64::from_str_radix(mask.trim(), 16).is_ok_and(|m| m & SIGKILL_BIT != 0),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn liveness() {
        assert!(pid_alive(std::process::id()));
        assert!(!pid_alive(0x3fff_fff0));
    }

    #[test]
    fn a_zombie_or_a_process_with_sigkill_pending_is_dying() {
        let status = |state: &str, sigpnd: &str, shdpnd: &str| {
            format!(
                "Name:\tratchet\nState:\t{state}\nSigPnd:\t{sigpnd}\nShdPnd:\t{shdpnd}\nSigBlk:\t0000000000000100\n"
            )
        };
        assert!(!dying(&status("S (sleeping)", "0000000000000000", "0000000000000000")));
        assert!(!dying(&status("R (running)", "0000000000004000", "0000000000000002")), "SIGTERM, SIGINT pending");
        assert!(dying(&status("Z (zombie)", "0000000000000000", "0000000000000000")));
        assert!(dying(&status("R (running)", "0000000000000000", "0000000000000100")), "kill -9 sent, not run yet");
        assert!(dying(&status("D (disk sleep)", "0000000000000100", "0000000000000000")));
        assert!(!dying("garbage"));
    }

    #[test]
    fn a_process_past_exit_begins_is_exiting() {
        // pid (comm) state ppid pgrp session tty_nr tpgid flags ...
        assert!(!exiting("42 (rat chet) S 1 42 42 0 -1 4194560 100 0"));
        assert!(exiting("42 (rat chet) R 1 42 42 0 -1 4194564 100 0"), "PF_EXITING");
        assert!(exiting("42 (rat chet) Z 1 42 42 0 -1 4227084 100 0"));
        assert!(!exiting(""));
        let own = std::fs::read_to_string("/proc/self/stat").unwrap();
        assert!(!exiting(&own), "{own}");
    }
}
