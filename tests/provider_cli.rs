//! `ratchet provider list|add|test|remove|default` over the real binary, with a temporary
//! `RATCHET_HOME` and a cleared environment: the exact output, exit codes and error messages,
//! on the local store and through a running daemon.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// Upper bound for one command.
const TIMEOUT: Duration = Duration::from_secs(30);

struct Home {
    root: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        // Under /tmp directly: the daemon's socket path must stay short.
        let root = tempfile::Builder::new().prefix("rp-").tempdir_in("/tmp").unwrap();
        std::fs::create_dir_all(root.path().join("home")).unwrap();
        Home { root }
    }

    fn rh(&self) -> PathBuf {
        self.root.path().join("rh")
    }

    fn run_with(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ratchet"));
        c.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()))
            .env("HOME", self.root.path().join("home"))
            .env("RATCHET_HOME", self.rh())
            .current_dir(self.root.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            c.env(k, v);
        }
        let child = c.spawn().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(child.wait_with_output()));
        rx.recv_timeout(TIMEOUT).unwrap_or_else(|_| panic!("`ratchet {}` hung", args.join(" "))).unwrap()
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, &[])
    }

    /// Runs, expects success, returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "`ratchet {}` failed: {}", args.join(" "), describe(&out));
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs, expects failure, returns the `error: ...` line of stderr (the log line above it
    /// carries a timestamp).
    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(out.status.code(), Some(1), "`ratchet {}`: {}", args.join(" "), describe(&out));
        assert!(out.stdout.is_empty(), "{}", describe(&out));
        let stderr = String::from_utf8(out.stderr).unwrap();
        let line = stderr.lines().find(|l| l.starts_with("error: "));
        line.unwrap_or_else(|| panic!("no error line: {stderr}")).to_string()
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        // A daemon a failed test left behind.
        if let Some(pid) =
            std::fs::read_to_string(self.rh().join("daemon.pid")).ok().and_then(|p| p.trim().parse::<i32>().ok())
        {
            // SAFETY: kill has no memory preconditions.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

fn describe(out: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn add_list_default_remove_on_the_local_store() {
    let home = Home::new();
    assert_eq!(
        home.ok(&["provider", "list"]),
        "no providers stored; add one with `ratchet provider add <name> --kind openai|anthropic|ollama|scripted`\n"
    );

    let out =
        home.ok(&["provider", "add", "work", "--kind", "openai", "--model", "gpt-4o", "--key-env", "WORK_OPENAI_KEY"]);
    assert_eq!(
        out,
        "added provider work (openai, model gpt-4o, key from WORK_OPENAI_KEY)\n\
         next: `ratchet provider test work`, then `ratchet provider default work` to use it\n"
    );
    home.ok(&["provider", "add", "local", "--kind", "ollama", "--base-url", "127.0.0.1:11434"]);
    let out = home.ok(&["provider", "default", "local"]);
    assert_eq!(
        out,
        "local is now the default provider (ollama, model llama3.2); the next turn of every session uses it\n"
    );

    assert_eq!(
        home.ok(&["provider", "list"]),
        "  NAME   KIND    MODEL     BASE URL                KEY FROM\n\
         * local  ollama  llama3.2  http://127.0.0.1:11434  -\n  \
         work   openai  gpt-4o    (default)               WORK_OPENAI_KEY\n"
    );
    let db = std::fs::read(home.rh().join("ratchet.db")).unwrap();
    assert!(!String::from_utf8_lossy(&db).contains("sk-"), "no key material in the database");

    let out = home.run_with(&["provider", "list"], &[("RATCHET_PROVIDER", "scripted")]);
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("RATCHET_PROVIDER=scripted is set here, and it wins over the default entry"),
        "{}",
        describe(&out)
    );

    assert_eq!(
        home.ok(&["provider", "remove", "local"]),
        "removed provider local (it was the default: turns now use RATCHET_PROVIDER, config.toml or the API keys found)\n"
    );
    assert_eq!(home.ok(&["provider", "remove", "work"]), "removed provider work\n");
    assert!(home.ok(&["provider", "list"]).starts_with("no providers stored"));
}

#[test]
fn bad_input_is_refused_with_a_clear_message_and_exit_code_1() {
    let home = Home::new();
    let err = home.fails(&["provider", "add", "x", "--kind", "gemini"]);
    assert_eq!(err, "error: unknown provider kind \"gemini\"; use one of: openai, anthropic, ollama, scripted");
    let err = home.fails(&["provider", "add", "Work", "--kind", "openai"]);
    assert!(
        err.contains("invalid provider name \"Work\": use 1 to 64 lowercase letters, digits, '-' and '_'"),
        "{err}"
    );
    let err = home.fails(&["provider", "add", "k", "--kind", "openai", "--key-env", "sk-live-1234567890abcdef"]);
    assert!(err.contains("give the NAME of the environment variable") && !err.contains("1234567890abcdef"), "{err}");

    for args in [["provider", "default", "nope"], ["provider", "remove", "nope"], ["provider", "test", "nope"]] {
        let err = home.fails(&args);
        assert_eq!(err, "error: no stored provider named \"nope\"; list them with `ratchet provider list`");
    }
    home.ok(&["provider", "add", "demo", "--kind", "scripted"]);
    let err = home.fails(&["provider", "add", "demo", "--kind", "scripted"]);
    assert!(
        err.contains("a provider named \"demo\" already exists") && err.contains("`ratchet provider remove demo`"),
        "{err}"
    );
}

#[test]
fn test_reports_the_answer_or_the_providers_error() {
    let home = Home::new();
    home.ok(&["provider", "add", "demo", "--kind", "scripted"]);
    let out = home.ok(&["provider", "test", "demo"]);
    assert!(out.starts_with("provider demo answered in ") && out.contains(" ms (model scripted-demo): "), "{out}");
    assert_eq!(out.lines().count(), 1, "{out}");

    // A named key variable that is not set: the test fails and says which one.
    home.ok(&["provider", "add", "work", "--kind", "anthropic", "--key-env", "RATCHET_TEST_UNSET_KEY"]);
    let out = home.run(&["provider", "test", "work"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("provider work failed after ") && err.contains("RATCHET_TEST_UNSET_KEY is not set"),
        "{err}"
    );
}

#[test]
fn through_a_running_daemon() {
    let home = Home::new();
    let started = home.run_with(&["daemon", "start", "-b"], &[("DAEMON_ONLY_KEY", "k-daemon")]);
    assert!(started.status.success(), "{}", describe(&started));
    // The test runs in the daemon, with its environment: the key is found there, so the
    // failure is the (closed) address, not the missing variable.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let url = format!("http://{closed}");
    home.ok(&["provider", "add", "far", "--kind", "anthropic", "--base-url", &url, "--key-env", "DAEMON_ONLY_KEY"]);
    let out = home.run(&["provider", "test", "far"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot reach") && err.contains(&closed.to_string()), "{}", describe(&out));
    home.ok(&["provider", "add", "demo", "--kind", "scripted"]);
    assert!(home.ok(&["provider", "default", "demo"]).starts_with("demo is now the default provider"));
    assert!(home.ok(&["provider", "list"]).contains("* demo"));
    assert!(home.ok(&["provider", "test", "demo"]).starts_with("provider demo answered in "));
    let err = home.fails(&["provider", "add", "x", "--kind", "gemini"]);
    assert_eq!(err, "error: unknown provider kind \"gemini\"; use one of: openai, anthropic, ollama, scripted");
    home.ok(&["daemon", "stop"]);
    // The entry is in the store, so the local engine sees it too.
    assert!(home.ok(&["provider", "list"]).contains("* demo"));
}
