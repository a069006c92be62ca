//! A window survives its daemon: `kill -9` of the daemon under a `ratchet acp` window.
//!
//! - with `--daemon`, the window starts a new daemon, re-opens its session and re-follows it
//!   live; the next prompt works and the history is whole
//! - a prompt on its way when the daemon dies before reading it (the daemon was frozen, then
//!   killed) waits for the new daemon and runs once, rather than failing as if it had been run
//! - a prompt streaming when the daemon dies fails saying the daemon stopped (retryable)
//! - without auto start, a request in the gap fails within a bounded wait with the retryable
//!   error; once `ratchet daemon start -b` ran, the same window prompts again

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::daemon::{Daemon, daemon_window, load, poll_until, signal};
use crate::support::{AcpClient, MockLlm, MockReply, RpcError, TestEnv, tr, transcript, within};

/// The bridge's code for an engine out of reach (`bridge::error::ENGINE_UNAVAILABLE`).
const ENGINE_UNAVAILABLE: i64 = -32005;

/// A request waits this long at most for a lost daemon (the link's 5 s wait, plus slack for
/// a loaded CI machine).
const GAP_WAIT_BOUND: Duration = Duration::from_secs(12);

/// Asserts the error is the retryable "engine unavailable" one.
fn assert_retryable(e: &RpcError) {
    assert_eq!(e.code, ENGINE_UNAVAILABLE, "{e:?}");
    let data = e.data.as_ref().unwrap_or(&Value::Null);
    assert_eq!(data["kind"], "unavailable", "{e:?}");
    assert_eq!(data["retryable"], true, "{e:?}");
}

fn user_and_assistant(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(r, t)| ((*r).to_owned(), (*t).to_owned())).collect()
}

/// A `--daemon` window (it starts the daemon) with a session that has had one exchange:
/// "First question", "First answer.".
async fn window_after_one_exchange(env: &TestEnv, mock: &MockLlm) -> (AcpClient, String) {
    let mut a = AcpClient::spawn(env, &["acp", "--daemon"]).await;
    a.initialize().await;
    poll_until("the window to serve through the daemon", || a.stderr().contains("through the daemon")).await;
    let session = a.new_session(&env.cwd()).await;
    mock.enqueue(MockReply::text(["First ", "answer."]));
    assert_eq!(a.prompt_text(&session, "First question").await.stop_reason(), "end_turn");
    (a, session)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_daemon_window_starts_a_new_daemon_and_carries_on_after_kill_9() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let daemon = Daemon::guard(&env);

    let (mut a, session) = window_after_one_exchange(&env, &mock).await;

    let first_pid = daemon.kill9().await;

    // The same window, at once: the prompt waits for the daemon the window starts again.
    mock.enqueue(MockReply::text(["Second ", "answer."]));
    let second = a.prompt_text(&session, "Second question").await;
    assert_eq!(second.stop_reason(), "end_turn", "stderr:\n{}", a.stderr());
    assert_eq!(second.text(), "Second answer.");
    let second_pid = daemon.pid().expect("the new daemon's pid");
    assert_ne!(first_pid, second_pid, "a new daemon answered");
    assert_eq!(
        mock.last_model_request().conversation(),
        user_and_assistant(&[("user", "First question"), ("assistant", "First answer."), ("user", "Second question")]),
        "the model saw the first exchange"
    );

    // Another window on the session: the history is whole, and A follows its turn live again.
    let mut b = daemon_window(&env).await;
    let replay = load(&mut b, &session, &env).await;
    assert_eq!(
        transcript(&replay),
        tr(&[
            ("user", "First question"),
            ("agent", "First answer."),
            ("user", "Second question"),
            ("agent", "Second answer.")
        ])
    );
    mock.enqueue(MockReply::text(["From ", "B."]));
    assert_eq!(b.prompt_text(&session, "Question from B").await.stop_reason(), "end_turn");
    let seen = within("A to follow B's turn", a.wait_for_agent_text(&session, "From B.")).await;
    assert_eq!(transcript(&seen), tr(&[("user", "Question from B"), ("agent", "From B.")]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_prompt_on_its_way_when_the_daemon_dies_unread_waits_for_the_new_daemon() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let daemon = Daemon::guard(&env);

    let (mut a, session) = window_after_one_exchange(&env, &mock).await;

    // A frozen daemon reads nothing: what the window sends for the prompt waits in the
    // socket, then the daemon dies with it unread (as one killed while the window writes).
    signal(daemon.pid().expect("the daemon's pid"), libc::SIGSTOP);
    mock.enqueue(MockReply::text(["Second ", "answer."]));
    let prompt = a
        .send_request(
            "session/prompt",
            json!({"sessionId": session, "prompt": [{"type": "text", "text": "Second question"}]}),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    daemon.kill9().await;

    let (_, outcome) = a.wait_response(prompt).await;
    let answer = outcome.unwrap_or_else(|e| panic!("the prompt waits for the new daemon: {e:?}\n{}", a.stderr()));
    assert_ne!(daemon.pid(), None, "a new daemon runs");
    assert_eq!(answer["stopReason"], "end_turn");
    let asked = mock
        .model_requests()
        .iter()
        .filter(|r| r.conversation().last().is_some_and(|(_, t)| t == "Second question"))
        .count();
    assert_eq!(asked, 1, "the second question reached a model exactly once");
    assert_eq!(
        mock.last_model_request().conversation(),
        user_and_assistant(&[("user", "First question"), ("assistant", "First answer."), ("user", "Second question")]),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_prompt_streaming_when_the_daemon_dies_fails_saying_the_daemon_stopped() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let daemon = Daemon::start(&env).await;

    let mut a = daemon_window(&env).await;
    let session = a.new_session(&env.cwd()).await;
    mock.enqueue(MockReply::text(["Partial ", "never ", "ends."]).stall_after(1));
    let prompt = a
        .send_request("session/prompt", json!({"sessionId": session, "prompt": [{"type": "text", "text": "Go"}]}))
        .await;
    within("the answer to start", a.wait_for_agent_text(&session, "Partial")).await;
    daemon.kill9().await;

    let (_, outcome) = a.wait_response(prompt).await;
    let e = outcome.expect_err("a prompt whose daemon died fails");
    assert_retryable(&e);
    assert!(e.message.contains("daemon stopped"), "{e:?}");
    assert!(e.message.contains("send the prompt again"), "{e:?}");
    assert!(!e.message.contains("goes on"), "the daemon is dead, the turn does not go on: {e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_auto_start_requests_fail_retryably_until_the_daemon_is_started_again() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let daemon = Daemon::start(&env).await;

    let mut w = daemon_window(&env).await;
    let session = w.new_session(&env.cwd()).await;
    mock.enqueue(MockReply::text(["First ", "answer."]));
    assert_eq!(w.prompt_text(&session, "First question").await.stop_reason(), "end_turn");
    daemon.kill9().await;

    // Nobody starts a daemon: the prompt waits a bounded time, then fails, saying what to run.
    let asked = Instant::now();
    let gap = w.prompt_text(&session, "While it is down").await;
    let waited = asked.elapsed();
    let e = gap.error();
    assert_retryable(e);
    for said in ["not reachable", "reconnecting", "ratchet daemon start -b"] {
        assert!(e.message.contains(said), "the error says {said:?}: {e:?}");
    }
    assert!(waited < GAP_WAIT_BOUND, "the request waited {waited:?}");
    assert_eq!(mock.model_requests().len(), 1, "nothing reached a model in the gap");

    // Started again by hand: the same window's next prompt works, with the history.
    daemon.start_again(&env).await;
    mock.enqueue(MockReply::text(["Back ", "again."]));
    let back = w.prompt_text(&session, "After the restart").await;
    assert_eq!(back.stop_reason(), "end_turn", "stderr:\n{}", w.stderr());
    assert_eq!(back.text(), "Back again.");
    assert_eq!(
        mock.last_model_request().conversation(),
        user_and_assistant(&[
            ("user", "First question"),
            ("assistant", "First answer."),
            ("user", "After the restart")
        ])
    );
}
