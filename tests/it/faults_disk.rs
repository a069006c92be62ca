//! A full disk and a read-only data directory (issue 11, hardening §3): a clear error to the
//! editor, nothing corrupted, the process stays up (and works again once there is room).
//!
//! How the faults are made, without root tricks or a small file system:
//! - **Full disk, mid-run**: the running agent's `RLIMIT_FSIZE` is lowered with `prlimit(2)`
//!   (allowed on one's own processes) to 4 KiB, with `SIGXFSZ` ignored (set before `exec`, so
//!   inherited). From then on the kernel refuses every write past 4 KiB in any file, exactly
//!   where a full disk would: SQLite sees short writes and failing writes (its `SQLITE_FULL`),
//!   the log appender sees failing writes. Raising the limit again is "freeing some space".
//!   A tmpfs would be the literal thing but needs root (`data_dir.rs` uses one when it can).
//! - **Read-only data directory**: a data directory and database the agent's user cannot
//!   write (as `nobody` when the tests run as root, since root writes anywhere); see
//!   `data_dir::ReadOnlyHome`. Making the files read-only under a running agent would prove
//!   nothing: permissions are checked at `open(2)`, and the agent keeps its database open.

use serde_json::json;

use crate::data_dir::{ReadOnlyHome, set_mode};
use crate::support::faults::{check_store, stored_text};
use crate::support::{AcpClient, MockLlm, MockReply, TestEnv};

/// Sets the soft and hard `RLIMIT_FSIZE` of `pid`.
fn set_file_size_limit(pid: u32, bytes: u64) {
    let limit = libc::rlimit { rlim_cur: bytes, rlim_max: libc::RLIM_INFINITY };
    // SAFETY: a valid rlimit for a process this test started; the old value is not asked for.
    let rc = unsafe { libc::prlimit(pid as libc::pid_t, libc::RLIMIT_FSIZE, &limit, std::ptr::null_mut()) };
    assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
}

/// `ratchet acp` with `SIGXFSZ` ignored, so a write past the file size limit fails with
/// `EFBIG` instead of killing the process (what a full disk does: the write fails).
fn spawn_ignoring_sigxfsz(env: &TestEnv) -> AcpClient {
    let mut cmd = env.command(&["acp", "--standalone"]);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        });
    }
    AcpClient::spawn_command(cmd)
}

#[tokio::test]
async fn a_full_disk_mid_run_fails_the_prompt_clearly_corrupts_nothing_and_the_agent_recovers() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let mut client = spawn_ignoring_sigxfsz(&env);
    client.initialize().await;
    let session = client.new_session(&env.cwd()).await;
    // Enough turns that the database and its WAL are past the limit about to be set.
    for i in 0..3 {
        mock.enqueue(MockReply::text([format!("Answer {i}.")]));
        assert_eq!(client.prompt_text(&session, &format!("Before {i}")).await.stop_reason(), "end_turn");
    }
    let pid = client.pid().unwrap();

    // The disk fills up.
    set_file_size_limit(pid, 4096);
    let requests = mock.model_requests().len();
    mock.enqueue(MockReply::text(["Never stored."]));
    let turn = client.prompt_text(&session, "While the disk is full").await;
    // The prompt could not be stored, so the model was never asked.
    assert_eq!(mock.model_requests().len(), requests, "no model call for a prompt that was not stored");
    mock.clear_queue();
    let error = turn.error();
    let text = error.full_text();
    assert_eq!(error.code, -32603, "{error}");
    // A refused write with space left on the disk: "cannot write ... may be full ... free some
    // space"; on a disk that is really full, "the disk is full ... free some space".
    assert!(text.contains("full") && text.contains("free some space") && text.contains("RATCHET_HOME"), "{text}");
    // The agent is still up: it answers, and a read works.
    let list = client.call("session/list", json!({})).await;
    assert!(list["sessions"].as_array().is_some_and(|s| !s.is_empty()), "{list}");

    // Space again: the same process works on, nothing was lost or corrupted.
    set_file_size_limit(pid, libc::RLIM_INFINITY);
    mock.enqueue(MockReply::text(["Back."]));
    let turn = client.prompt_text(&session, "After").await;
    assert_eq!(turn.stop_reason(), "end_turn", "{:?}", turn.outcome);
    assert_eq!(turn.text(), "Back.");
    let stderr = client.stderr();
    client.shutdown().await;
    assert!(!stderr.contains("panicked"), "{stderr}");

    let messages = check_store(&env.ratchet_home().join("ratchet.db"), &session, "after the full disk");
    let texts: Vec<String> = messages.iter().map(stored_text).collect();
    let before: Vec<String> = (0..3).flat_map(|i| [format!("Before {i}"), format!("Answer {i}.")]).collect();
    assert_eq!(texts[..6], before[..], "every message before the full disk is there: {texts:?}");
    assert_eq!(texts[texts.len() - 2..], ["After".to_owned(), "Back.".to_owned()], "{texts:?}");
    assert!(!texts.iter().any(|t| t == "Never stored."), "{texts:?}");
}

/// At start-up: `ratchet acp` answers `initialize` before its store opens, so it stays up and
/// fails each request that needs the store with one clear error (what is read-only, what to
/// do); nothing reaches stdout but the protocol, and the store is untouched.
#[tokio::test]
async fn a_read_only_data_dir_fails_each_request_clearly_stays_up_and_leaves_the_store_intact() {
    let ro = ReadOnlyHome::new().await;
    let home = ro.env.ratchet_home();
    for file in ["ratchet.db", "ratchet.db-wal", "ratchet.db-shm"] {
        if home.join(file).exists() {
            set_mode(&home.join(file), 0o400);
        }
    }
    let mut client = crate::support::AcpClient::spawn_command(ro.command(&["acp", "--standalone"]));
    client.initialize().await;
    for attempt in 0..2 {
        let cwd = ro.env.cwd();
        let error = client.request("session/new", serde_json::json!({"cwd": cwd, "mcpServers": []})).await;
        let error = error.expect_err("a session needs the store");
        assert!(
            error.message.contains("read-only") && error.message.contains("RATCHET_HOME"),
            "attempt {attempt}: {error:?}"
        );
    }
    let stderr = client.stderr();
    assert!(!stderr.contains("panicked"), "{stderr}");
    for line in client.stdout_lines() {
        assert!(serde_json::from_str::<serde_json::Value>(&line).is_ok(), "nothing but protocol on stdout: {line}");
    }
    client.shutdown().await;

    // The first run's session is whole.
    let conn =
        rusqlite::Connection::open_with_flags(home.join("ratchet.db"), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
    let messages: i64 = conn.query_row("SELECT COUNT(*) FROM messages", [], |r| r.get(0)).unwrap();
    assert_eq!(messages, 2, "the first run's prompt and answer");
}
