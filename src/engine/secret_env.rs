//! Secrets in the environment stay out of the commands the agent runs.
//!
//! Redacting values from output cannot win against encodings (`echo $TOKEN | base64`), so
//! secrets are not handed out in the first place: a command gets ratchet's environment minus
//! every variable whose name looks secret ([`is_withheld`]) unless `[shell] env_allow` lets it
//! through, and never a provider's key. And because a command could read them back from
//! `/proc/<ratchet pid>/environ`, ratchet moves those variables out of its own environment at
//! start-up ([`scrub_own_environment`]), wiping them from the memory that file shows; ratchet
//! itself reads them through [`var`] afterwards.

use std::ffi::OsString;
use std::sync::OnceLock;

use globset::{Glob, GlobSet, GlobSetBuilder};

/// Name parts (upper case) that mark a variable as one commands do not get by default.
const WITHHELD_PARTS: [&str; 5] = ["KEY", "TOKEN", "SECRET", "PASSWORD", "CREDENTIAL"];

/// Name suffixes (upper case) that mark a variable's value as a secret to redact.
const SECRET_SUFFIXES: [&str; 4] = ["_KEY", "_TOKEN", "_SECRET", "_PASSWORD"];

/// The variables moved out of this process's environment at start-up.
static MOVED: OnceLock<Vec<(OsString, OsString)>> = OnceLock::new();

/// True for names commands do not get unless allowed: any containing `KEY`, `TOKEN`,
/// `SECRET`, `PASSWORD` or `CREDENTIAL`, in any case (as Codex's shell environment policy).
pub fn is_withheld(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    WITHHELD_PARTS.iter().any(|part| upper.contains(part))
}

/// True for names like `OPENAI_API_KEY`, `github_token`, `DB_PASSWORD`.
/// (Narrower than [`is_withheld`]: redaction of short or ordinary values would mangle
/// output, while withholding a variable from commands costs little.)
pub fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    SECRET_SUFFIXES.iter().any(|s| upper.ends_with(s))
}

/// A variable of this process's environment, including the ones moved out of it.
pub fn var(name: &str) -> Option<String> {
    let moved = MOVED.get().and_then(|list| list.iter().find(|(k, _)| k == name)).map(|(_, v)| v.clone());
    moved.or_else(|| std::env::var_os(name)).and_then(|v| v.into_string().ok()).filter(|v| !v.trim().is_empty())
}

/// Gives a ratchet process started from this one (the detached daemon, a reload) the
/// environment this one started with.
pub fn restore_for_ratchet(command: &mut std::process::Command) {
    for (k, v) in MOVED.get().into_iter().flatten() {
        command.env(k, v);
    }
}

/// Moves every withheld variable, and the ones named in `also` (provider keys under other
/// names), out of this process's environment, and wipes their values from the memory that
/// `/proc/self/environ` shows. Returns how many it moved. Only the first call has an effect.
///
/// # Safety
/// Changes the process environment: call it while the process has a single thread.
pub unsafe fn scrub_own_environment(also: &[String]) -> usize {
    if MOVED.get().is_some() {
        return 0;
    }
    let moved: Vec<(OsString, OsString)> = std::env::vars_os()
        .filter(|(k, _)| k.to_str().is_some_and(|k| is_withheld(k) || also.iter().any(|a| a == k)))
        .collect();
    for (k, _) in &moved {
        // SAFETY: the caller guarantees no other thread reads or writes the environment.
        unsafe { std::env::remove_var(k) };
    }
    #[cfg(target_os = "linux")]
    // SAFETY: single-threaded (the caller's promise); the variables were just removed, so no
    // pointer into those strings is left in `environ`.
    unsafe {
        initial_block::wipe(&moved)
    };
    let count = moved.len();
    let _ = MOVED.set(moved);
    count
}

/// `[shell] env_allow`: names or globs of withheld variables commands may have.
#[derive(Debug, Clone, Default)]
pub struct EnvAllow(Option<GlobSet>);

impl EnvAllow {
    /// Compiles the patterns; a bad one is an error naming it.
    pub fn new(patterns: &[String]) -> Result<EnvAllow, String> {
        if patterns.is_empty() {
            return Ok(EnvAllow(None));
        }
        let mut set = GlobSetBuilder::new();
        for p in patterns {
            set.add(Glob::new(p).map_err(|e| format!("[shell] env_allow: bad pattern {p:?}: {e}"))?);
        }
        set.build().map(|s| EnvAllow(Some(s))).map_err(|e| format!("[shell] env_allow: {e}"))
    }

    fn allows(&self, name: &str) -> bool {
        self.0.as_ref().is_some_and(|set| set.is_match(name))
    }
}

/// The environment of one command: set with [`CommandEnv::apply`], replacing the inherited one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandEnv {
    vars: Vec<(OsString, OsString)>,
}

impl CommandEnv {
    /// This process's environment (with the moved variables), less withheld variables that
    /// `allow` does not let through, less `never` (provider keys: not even `allow` passes them).
    pub fn new(allow: &EnvAllow, never: &[String]) -> CommandEnv {
        let moved = MOVED.get().map(Vec::as_slice).unwrap_or_default();
        let vars = std::env::vars_os()
            .chain(moved.iter().cloned())
            .filter(|(k, _)| {
                let Some(name) = k.to_str() else { return false };
                !never.iter().any(|n| n == name) && (!is_withheld(name) || allow.allows(name))
            })
            .collect();
        CommandEnv { vars }
    }

    /// Sets exactly this environment on `command`.
    pub fn apply(&self, command: &mut tokio::process::Command) {
        command.env_clear().envs(self.vars.iter().map(|(k, v)| (k, v)));
    }

    /// The `(name, value)` pairs of withheld variables that were let through (their values
    /// still go to the redactor).
    pub fn allowed_secrets(&self) -> impl Iterator<Item = (String, String)> + '_ {
        self.vars.iter().filter_map(|(k, v)| {
            let (k, v) = (k.to_str()?, v.to_str()?);
            is_withheld(k).then(|| (k.to_string(), v.to_string()))
        })
    }
}

impl Default for CommandEnv {
    fn default() -> Self {
        CommandEnv::new(&EnvAllow::default(), &[])
    }
}

/// The block of `NAME=value\0` strings the kernel set up at exec, which is what
/// `/proc/<pid>/environ` reads (unsetting a variable only unlinks it from `environ`).
#[cfg(target_os = "linux")]
mod initial_block {
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStrExt;

    /// Zeroes the values of `moved` in the initial environment block.
    ///
    /// # Safety
    /// No pointer into those strings may still be in use (the variables must be removed).
    pub(super) unsafe fn wipe(moved: &[(OsString, OsString)]) {
        let Some((start, end)) = bounds() else { return };
        if end <= start {
            return;
        }
        // SAFETY: [start, end) is this process's own environment block (from the kernel), on
        // its stack and writable; nothing else refers to the bytes we change.
        let block = unsafe { std::slice::from_raw_parts_mut(start as *mut u8, end - start) };
        for entry in block.split_mut(|b| *b == 0) {
            let Some(eq) = entry.iter().position(|b| *b == b'=') else { continue };
            if moved.iter().any(|(k, _)| k.as_bytes() == &entry[..eq]) {
                entry[eq + 1..].fill(0);
            }
        }
    }

    /// `env_start` and `env_end`, fields 50 and 51 of `/proc/self/stat`.
    fn bounds() -> Option<(usize, usize)> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the command name, which is in parentheses and may hold spaces.
        let rest = &stat[stat.rfind(')')? + 1..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // `rest` starts at field 3.
        let start = fields.get(50 - 3)?.parse().ok()?;
        let end = fields.get(51 - 3)?.parse().ok()?;
        Some((start, end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn withheld_names_match_anywhere_in_any_case() {
        for name in ["OPENAI_API_KEY", "github_token", "AWS_SECRET_ACCESS_KEY", "DB_PASSWORD", "GCP_CREDENTIALS"] {
            assert!(is_withheld(name), "{name}");
        }
        for name in ["HOME", "PATH", "LANG", "CARGO_HOME"] {
            assert!(!is_withheld(name), "{name}");
        }
    }

    #[test]
    fn allow_patterns_are_globs_and_bad_ones_are_named() {
        let allow = EnvAllow::new(&["GH_TOKEN".into(), "NPM_*".into()]).unwrap();
        assert!(allow.allows("GH_TOKEN") && allow.allows("NPM_AUTH_TOKEN"));
        assert!(!allow.allows("GITHUB_TOKEN"));
        let err = EnvAllow::new(&["[".into()]).unwrap_err();
        assert!(err.contains("env_allow") && err.contains("\"[\""), "{err}");
    }
}
