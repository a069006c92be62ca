//! Daemon mode over the real binary: `ratchet daemon start -b`, then several `ratchet acp`
//! windows (and `ratchet exec`, `ratchet attach`) sharing the daemon's engine.
//!
//! - two windows on one session: list, load (replay), each other's turns forwarded live,
//!   never one's own turn twice
//! - a window that goes away mid-turn: the turn finishes in the daemon and is saved
//! - `kill -9` of the daemon mid-turn: acknowledged messages survive, the database is sound
//! - `ratchet acp --standalone` leaves the daemon alone but shares the store
//! - `ratchet exec` runs in the daemon; `ratchet attach` prints another window's turn
//!
//! Every test has its own `TestEnv` and a [`Daemon`] guard that stops the daemon (and kills
//! whatever is left of it) when the test ends, pass or fail. Every wait has a deadline.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

use crate::support::daemon::{Daemon, daemon_window, describe, listed, load, poll_until, text};
use crate::support::{AcpClient, MockLlm, MockReply, TIMEOUT, TestEnv, chunk_text, tr, transcript, within};

// ---------------------------------------------------------------------------------------------
// 1. Two windows on one session

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_windows_share_a_session_and_see_each_others_turns_live() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let _daemon = Daemon::start(&env).await;

    // Window A: a session with one finished turn.
    let mut a = daemon_window(&env).await;
    let session = a.new_session(&env.cwd()).await;
    mock.enqueue(MockReply::text(["First ", "answer."]));
    let first = a.prompt_text(&session, "First question").await;
    assert_eq!(first.stop_reason(), "end_turn");
    assert_eq!(transcript(&first.updates), tr(&[("agent", "First answer.")]));

    // Window B: lists it and loads it (A's history replayed).
    let mut b = daemon_window(&env).await;
    assert!(listed(&mut b).await.contains(&session), "B lists A's session");
    let replay = load(&mut b, &session, &env).await;
    assert_eq!(transcript(&replay), tr(&[("user", "First question"), ("agent", "First answer.")]));

    // A prompts with a slow answer; B follows it live (while the model is still streaming).
    let slow = ["Slow ", "streaming ", "answer ", "from ", "window ", "A."];
    mock.enqueue(MockReply::text(slow).delay(Duration::from_millis(120)));
    // (The mock counts a stream as completed just after its last frame: wait for the first.)
    poll_until("the first model stream to be counted", || mock.n_completed_streams() == 1).await;
    let a_prompt = a
        .send_request(
            "session/prompt",
            json!({"sessionId": session, "prompt": [{"type": "text", "text": "Second question from A"}]}),
        )
        .await;
    let seen = within("B to see A's first answer chunk", b.wait_for_agent_text(&session, "Slow")).await;
    assert_eq!(
        mock.n_completed_streams(),
        1,
        "B got the first chunk while the model was still streaming (live, not after the turn)"
    );
    assert_eq!(chunk_text(&seen, "user_message_chunk"), "Second question from A", "{seen:#?}");
    let rest = within("B to see A's whole answer", b.wait_for_agent_text(&session, "A.")).await;
    let b_saw_a: Vec<Value> = seen.into_iter().chain(rest).collect();
    assert!(b_saw_a.iter().all(|u| u["sessionId"] == session.as_str()));
    assert_eq!(
        transcript(&b_saw_a),
        tr(&[("user", "Second question from A"), ("agent", &slow.concat())]),
        "B sees A's turn once, in order"
    );

    let a_turn = a.finish_turn(a_prompt).await;
    assert_eq!(a_turn.stop_reason(), "end_turn");
    assert_eq!(
        transcript(&a_turn.updates),
        tr(&[("agent", &slow.concat())]),
        "A gets its own turn once (no echo of its prompt, no second copy of the answer)"
    );

    // B prompts; A follows it live.
    mock.enqueue(MockReply::text(["Answer ", "to ", "B."]).delay(Duration::from_millis(60)));
    let b_turn = b.prompt_text(&session, "Question from B").await;
    assert_eq!(b_turn.stop_reason(), "end_turn");
    assert_eq!(transcript(&b_turn.updates), tr(&[("agent", "Answer to B.")]), "B gets its own turn once");
    let a_saw_b = within("A to see B's answer", a.wait_for_agent_text(&session, "Answer to B.")).await;
    // The live stream of a session is ordered: an echo of A's own turn would have come first.
    assert_eq!(
        transcript(&a_saw_b),
        tr(&[("user", "Question from B"), ("agent", "Answer to B.")]),
        "A sees B's turn once, and nothing of its own turn again: {a_saw_b:#?}"
    );

    // One more turn from A, so anything B might echo of its own turn shows up before it.
    mock.enqueue(MockReply::text(["Third."]));
    let third = a.prompt_text(&session, "Third from A").await;
    assert_eq!(transcript(&third.updates), tr(&[("agent", "Third.")]));
    let b_saw_third = within("B to see A's third turn", b.wait_for_agent_text(&session, "Third.")).await;
    assert_eq!(
        transcript(&b_saw_third),
        tr(&[("user", "Third from A"), ("agent", "Third.")]),
        "B sees nothing of its own turn again: {b_saw_third:#?}"
    );

    // Both windows' turns are in the one history, in order.
    let mut c = daemon_window(&env).await;
    let replay = load(&mut c, &session, &env).await;
    assert_eq!(
        transcript(&replay),
        tr(&[
            ("user", "First question"),
            ("agent", "First answer."),
            ("user", "Second question from A"),
            ("agent", &slow.concat()),
            ("user", "Question from B"),
            ("agent", "Answer to B."),
            ("user", "Third from A"),
            ("agent", "Third."),
        ])
    );
}

// ---------------------------------------------------------------------------------------------
// 2. A window that goes away mid-turn

/// A slow answer in many chunks, so the window can leave while it streams.
fn slow_answer(n: usize, delay_ms: u64) -> (MockReply, String) {
    let chunks: Vec<String> = (0..n).map(|i| format!("part{i} ")).collect();
    let full = chunks.concat();
    (MockReply::text(chunks).delay(Duration::from_millis(delay_ms)), full)
}

/// Window A prompts, waits for the first chunk, then `leave`s; the turn must finish in the
/// daemon and be saved whole.
async fn turn_survives_the_window(leave: impl AsyncFnOnce(AcpClient)) {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let daemon = Daemon::start(&env).await;

    let mut a = daemon_window(&env).await;
    let session = a.new_session(&env.cwd()).await;
    let (reply, full) = slow_answer(12, 40);
    mock.enqueue(reply);
    a.send_request(
        "session/prompt",
        json!({"sessionId": session, "prompt": [{"type": "text", "text": "Write a long answer"}]}),
    )
    .await;
    within("A to see the first chunk", a.wait_for_agent_text(&session, "part0")).await;
    assert_eq!(mock.n_completed_streams(), 0, "still streaming when A leaves");
    leave(a).await;

    // The model stream runs to its end: the daemon neither cancelled the turn nor stopped
    // reading the answer...
    poll_until("the model stream to end", || mock.n_completed_streams() + mock.n_aborted_streams() >= 1).await;
    assert_eq!(
        (mock.n_completed_streams(), mock.n_aborted_streams()),
        (1, 0),
        "the turn was cut short when its window went away; daemon log:\n{}",
        daemon.log()
    );

    // ...and the whole answer is in the history, as another window's load shows.
    let mut c = daemon_window(&env).await;
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let replay = load(&mut c, &session, &env).await;
        let got = transcript(&replay);
        let want = tr(&[("user", "Write a long answer"), ("agent", &full)]);
        if got == want {
            break;
        }
        // The turn may still be saving its last message: load again, within the deadline.
        assert!(
            tokio::time::Instant::now() < deadline,
            "the replay should hold the whole answer\n got: {got:?}\nwant: {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_turn_finishes_in_the_daemon_after_its_window_is_killed() {
    turn_survives_the_window(async |a: AcpClient| a.kill9().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_turn_finishes_in_the_daemon_after_its_window_closes_stdin() {
    turn_survives_the_window(async |a: AcpClient| {
        let status = a.shutdown().await;
        assert!(status.success(), "ratchet acp exits cleanly on EOF: {status:?}");
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// 3. kill -9 of the daemon mid-turn

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_of_the_daemon_mid_turn_keeps_every_acknowledged_message() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let daemon = Daemon::start(&env).await;

    let mut a = daemon_window(&env).await;
    let session = a.new_session(&env.cwd()).await;
    mock.enqueue(MockReply::text(["One ", "done."]));
    assert_eq!(a.prompt_text(&session, "Turn one").await.stop_reason(), "end_turn");
    mock.enqueue(MockReply::text(["Two ", "done."]));
    assert_eq!(a.prompt_text(&session, "Turn two").await.stop_reason(), "end_turn");

    // A third turn streams (and would stream for ever) when the daemon dies.
    mock.enqueue(MockReply::text(["Three ", "never ", "ends."]).stall_after(1));
    let prompt = a
        .send_request(
            "session/prompt",
            json!({"sessionId": session, "prompt": [{"type": "text", "text": "Turn three"}]}),
        )
        .await;
    within("the third answer to start", a.wait_for_agent_text(&session, "Three")).await;
    let first_pid = daemon.kill9().await;

    // The window's prompt ends (with an error) instead of hanging.
    let (_, outcome) = a.wait_response(prompt).await;
    assert!(outcome.is_err(), "a prompt whose daemon died fails: {outcome:?}");
    drop(a);

    let second_pid = daemon.start_again(&env).await;
    assert_ne!(first_pid, second_pid);

    let conn = rusqlite::Connection::open(env.ratchet_home().join("ratchet.db")).expect("open ratchet.db");
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).expect("integrity_check");
    assert_eq!(check, "ok");
    drop(conn);

    let mut b = daemon_window(&env).await;
    let replay = load(&mut b, &session, &env).await;
    let got = transcript(&replay);
    let acknowledged = tr(&[
        ("user", "Turn one"),
        ("agent", "One done."),
        ("user", "Turn two"),
        ("agent", "Two done."),
        ("user", "Turn three"),
    ]);
    assert!(
        got.len() >= acknowledged.len() && got[..acknowledged.len()] == acknowledged[..],
        "every acknowledged message is replayed, in order\n got: {got:?}\nwant (prefix): {acknowledged:?}"
    );
    // Whatever of the third answer was saved is a prefix of what streamed; nothing else follows.
    assert!(got.len() <= acknowledged.len() + 1, "{got:?}");
    if let Some((kind, t)) = got.get(acknowledged.len()) {
        assert_eq!(kind, "agent_message_chunk");
        assert!("Three never ends.".starts_with(t.as_str()), "{got:?}");
    }

    // The session is usable again.
    mock.enqueue(MockReply::text(["Back."]));
    assert_eq!(b.prompt_text(&session, "Turn four").await.text(), "Back.");
}

// ---------------------------------------------------------------------------------------------
// 4. --standalone beside a daemon

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn standalone_acp_leaves_the_daemon_alone_but_shares_the_store() {
    let daemon_mock = MockLlm::start().await;
    let local_mock = MockLlm::start().await;
    let mut env = TestEnv::openai(&daemon_mock);
    let daemon = Daemon::start(&env).await;
    let mut d = daemon_window(&env).await;
    let before = listed(&mut d).await;
    assert!(before.is_empty(), "{before:?}");

    // The stand-alone window's own engine talks to its own provider.
    env.set("OPENAI_BASE_URL", local_mock.openai_base_url());
    let mut s = AcpClient::spawn(&env, &["acp", "--standalone"]).await;
    s.initialize().await;
    let session = s.new_session(&env.cwd()).await;
    local_mock.enqueue(MockReply::text(["Stand-alone ", "answer."]));
    let turn = s.prompt_text(&session, "Standalone question").await;
    assert_eq!(turn.text(), "Stand-alone answer.");
    s.shutdown().await;

    assert_eq!(local_mock.model_requests().len(), 1);
    assert!(daemon_mock.requests().is_empty(), "the daemon's engine ran nothing");
    assert!(!daemon.log().contains(&session), "the daemon never saw the session:\n{}", daemon.log());

    // The daemon window lists it from the shared store, and can load it.
    assert_eq!(listed(&mut d).await, vec![session.clone()]);
    let replay = load(&mut d, &session, &env).await;
    assert_eq!(transcript(&replay), tr(&[("user", "Standalone question"), ("agent", "Stand-alone answer.")]));
}

// ---------------------------------------------------------------------------------------------
// 5. exec and attach

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exec_runs_in_the_daemon() {
    let daemon_mock = MockLlm::start().await;
    let local_mock = MockLlm::start().await;
    let mut env = TestEnv::openai(&daemon_mock);
    let daemon = Daemon::start(&env).await;

    // Were `exec` to run its own engine, it would ask this other mock.
    env.set("OPENAI_BASE_URL", local_mock.openai_base_url());
    daemon_mock.enqueue(MockReply::text(["Answered ", "by the daemon."]));
    local_mock.enqueue(MockReply::text(["Answered locally."]));
    let out = env.run(&["exec", "Exec through the daemon"]).await;
    assert!(out.status.success(), "{}", describe(&out));
    assert!(text(&out.stdout).contains("Answered by the daemon."), "{}", describe(&out));
    assert!(local_mock.requests().is_empty(), "exec ran no engine of its own");

    // The daemon lists the session (`sessions list` goes through it) and logged its turn.
    let out = env.run(&["sessions", "list"]).await;
    assert!(out.status.success(), "{}", describe(&out));
    let list = text(&out.stdout);
    let line = list
        .lines()
        .find(|l| l.contains("Exec through the daemon"))
        .unwrap_or_else(|| panic!("the exec session is listed: {list}"));
    let id = line.split_whitespace().next().unwrap();
    assert!(daemon.log().contains(id), "the daemon's log names session {id}:\n{}", daemon.log());
}

/// A child's output pipe read into a shared string as it arrives.
fn capture(mut pipe: impl tokio::io::AsyncRead + Unpin + Send + 'static) -> Arc<Mutex<String>> {
    let out = Arc::new(Mutex::new(String::new()));
    let sink = out.clone();
    tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut buf).await {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attach_prints_a_turn_prompted_from_an_acp_window() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let _daemon = Daemon::start(&env).await;

    let mut w = daemon_window(&env).await;
    let session = w.new_session(&env.cwd()).await;

    let mut attach = env
        .command(&["attach", &session])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ratchet attach");
    let stdout = capture(attach.stdout.take().unwrap());
    let stderr = capture(attach.stderr.take().unwrap());
    poll_until("attach to say it is attached", || stderr.lock().unwrap().contains("attached to")).await;

    mock.enqueue(MockReply::text(["Streamed ", "to the ", "attached terminal."]).delay(Duration::from_millis(20)));
    let turn = w.prompt_text(&session, "Hello from the window").await;
    assert_eq!(turn.text(), "Streamed to the attached terminal.");

    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let seen = stdout.lock().unwrap().clone();
        if seen.contains("Streamed to the attached terminal.") {
            assert!(seen.contains("> Hello from the window"), "{seen}");
            break;
        }
        if tokio::time::Instant::now() >= deadline || attach.try_wait().ok().flatten().is_some() {
            panic!(
                "attach did not print the streamed text\n--- stdout ---\n{seen}\n--- stderr ---\n{}",
                stderr.lock().unwrap()
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = attach.kill().await;
}
