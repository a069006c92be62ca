//! `kill -9` at random moments of a streaming turn (issue 11, hardening §3), 50 times over,
//! stand-alone and in the daemon; and the editor closing stdin mid-prompt.
//!
//! After every kill the store is opened read-only behind the agent's back: `PRAGMA
//! integrity_check` is `ok`, and every acknowledged message is there, in order:
//! - a prompt whose response the agent wrote (even if the test read it after the kill) has
//!   its user message and its whole answer stored, complete;
//! - a prompt whose request reached the model has its user message stored (the store
//!   acknowledged it: it is written before the provider is called).
//!
//! The moments come from a seeded generator (`RATCHET_FAULT_SEED` replays another run): most
//! kills land while the answer streams (after the model got the request), some before the
//! request left, and some after the answer ended.

use std::time::Duration;

use serde_json::json;

use crate::support::daemon::{Daemon, signal};
use crate::support::faults::{Rng, StoredMessage, check_store, stored_text};
use crate::support::{AcpClient, MockLlm, MockReply, TestEnv, tr, transcript, within};

/// Kills per test.
const KILLS: usize = 50;

/// Streams its answer in five chunks, a few milliseconds apart: a short turn with room for a
/// kill in the middle.
fn answer(i: usize) -> MockReply {
    MockReply::text(["Answer ".to_owned(), format!("{i} "), "in ".into(), "five ".into(), "chunks.".into()])
        .delay(Duration::from_millis(4))
}

fn answer_text(i: usize) -> String {
    format!("Answer {i} in five chunks.")
}

fn prompt_text(i: usize) -> String {
    format!("Prompt {i}")
}

/// What the test knows the agent acknowledged.
#[derive(Default)]
struct Acknowledged {
    /// Prompts whose response came: user message and whole answer.
    answered: Vec<usize>,
    /// Prompts whose request reached the model: at least the user message.
    stored: Vec<usize>,
}

impl Acknowledged {
    /// Checks the store holds every acknowledged message, in order.
    fn check(&self, messages: &[StoredMessage], when: &str) {
        let texts: Vec<(String, String, String)> =
            messages.iter().map(|m| (m.role.clone(), stored_text(m), m.status.clone())).collect();
        let position = |role: &str, text: &str| texts.iter().position(|(r, t, _)| r == role && t == text);
        let mut last_user = None;
        for &i in &self.stored {
            let at = position("user", &prompt_text(i))
                .unwrap_or_else(|| panic!("{when}: the stored prompt {i} is missing: {texts:#?}"));
            assert!(last_user.is_none_or(|l| at > l), "{when}: prompt {i} out of order: {texts:#?}");
            last_user = Some(at);
        }
        for &i in &self.stored {
            let prompt = prompt_text(i);
            let copies = texts.iter().filter(|(r, t, _)| r == "user" && *t == prompt).count();
            assert_eq!(copies, 1, "{when}: {prompt:?} is stored exactly once: {texts:#?}");
        }
        for &i in &self.answered {
            let at = position("assistant", &answer_text(i))
                .unwrap_or_else(|| panic!("{when}: the acknowledged answer {i} is missing: {texts:#?}"));
            assert_eq!(texts[at].2, "complete", "{when}: answer {i}");
            let user = position("user", &prompt_text(i)).expect("its prompt");
            assert!(user < at, "{when}: answer {i} before its prompt");
        }
        let seqs: Vec<i64> = messages.iter().map(|m| m.seq).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{when}: seq strictly increases: {seqs:?}");
    }
}

impl Acknowledged {
    /// Checks a `session/load` replay shows every answered prompt followed by its answer
    /// (consecutive user messages, of prompts the kills left unanswered, merge into one).
    fn check_replay(&self, replayed: &[(String, String)]) {
        for &i in &self.answered {
            let found = replayed.windows(2).any(|w| {
                w[0].0 == "user_message_chunk"
                    && w[0].1.ends_with(&prompt_text(i))
                    && w[1] == ("agent_message_chunk".to_owned(), answer_text(i))
            });
            assert!(found, "answered prompt {i} is replayed with its answer: {replayed:?}");
        }
    }
}

/// Where a kill lands.
enum Moment {
    /// A few milliseconds after the prompt was sent, maybe before the model got anything.
    SoonAfterSending(Duration),
    /// This long after the model got the request: while the answer streams, or after it.
    AfterTheRequest(Duration),
}

fn pick_moment(rng: &mut Rng) -> Moment {
    if rng.next_u64().is_multiple_of(5) {
        Moment::SoonAfterSending(rng.millis_up_to(Duration::from_millis(8)))
    } else {
        Moment::AfterTheRequest(rng.millis_up_to(Duration::from_millis(60)))
    }
}

/// One iteration: prompt `i` in `session` on `window`, and `kill` at the picked moment.
/// Returns the prompt's request id and whether its request reached the model.
async fn prompt_and_kill(
    window: &mut AcpClient,
    mock: &MockLlm,
    session: &str,
    i: usize,
    moment: Moment,
    kill: impl AsyncFnOnce(),
) -> (u64, bool) {
    mock.clear_queue();
    mock.enqueue(answer(i));
    let before = mock.requests().len();
    let prompt = json!({"sessionId": session, "prompt": [{"type": "text", "text": prompt_text(i)}]});
    let id = window.send_request("session/prompt", prompt).await;
    match moment {
        Moment::SoonAfterSending(wait) => tokio::time::sleep(wait).await,
        Moment::AfterTheRequest(wait) => {
            mock.wait_for_requests(before + 1).await;
            tokio::time::sleep(wait).await;
        }
    }
    kill().await;
    let reached_model = mock.requests()[before..]
        .iter()
        .any(|r| r.conversation().last().is_some_and(|(role, t)| role == "user" && *t == prompt_text(i)));
    (id, reached_model)
}

/// Files what one kill showed into `acked` and the tallies; returns whether it was answered.
fn record(
    acked: &mut Acknowledged,
    i: usize,
    outcome: Option<Result<serde_json::Value, crate::support::RpcError>>,
    reached_model: bool,
    tally: &mut Tally,
) {
    match outcome {
        Some(Ok(result)) => {
            assert_eq!(result["stopReason"], "end_turn", "prompt {i}: {result}");
            acked.answered.push(i);
            acked.stored.push(i);
            tally.answered += 1;
        }
        Some(Err(_)) | None => {
            if reached_model {
                acked.stored.push(i);
                tally.mid_stream += 1;
            } else {
                tally.before_request += 1;
            }
        }
    }
}

#[derive(Default, Debug)]
struct Tally {
    answered: usize,
    mid_stream: usize,
    before_request: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_of_a_standalone_agent_at_50_random_moments_keeps_every_acknowledged_message() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let db = env.ratchet_home().join("ratchet.db");
    let mut rng = Rng::seeded("standalone kill -9", 0x5EED_0001);
    let mut acked = Acknowledged::default();
    let mut tally = Tally::default();
    let mut session = None::<String>;

    for i in 0..KILLS {
        let mut w = AcpClient::spawn(&env, &["acp", "--standalone"]).await;
        w.initialize().await;
        let sid = match &session {
            None => w.new_session(&env.cwd()).await,
            Some(s) => {
                w.call("session/resume", json!({"sessionId": s, "cwd": env.cwd(), "mcpServers": []})).await;
                s.clone()
            }
        };
        session = Some(sid.clone());
        let pid = w.pid().expect("agent pid");
        let moment = pick_moment(&mut rng);
        let (id, reached_model) = prompt_and_kill(&mut w, &mock, &sid, i, moment, async || {
            signal(pid, libc::SIGKILL);
        })
        .await;
        w.wait_exit().await;
        // What the agent wrote before it died is still in the pipe.
        let outcome = w.response_before_exit(id).await;
        drop(w);
        record(&mut acked, i, outcome, reached_model, &mut tally);
        let when = format!("after kill {i} of the stand-alone agent");
        acked.check(&check_store(&db, &sid, &when), &when);
    }
    eprintln!("stand-alone kills: {tally:?}");
    assert!(tally.mid_stream + tally.answered > KILLS / 2, "most kills land after the request: {tally:?}");

    // A last agent replays the whole acknowledged history, and the session still works.
    let sid = session.unwrap();
    let mut w = env.spawn_initialized().await;
    let (updates, result) =
        w.request_collect("session/load", json!({"sessionId": sid, "cwd": env.cwd(), "mcpServers": []})).await;
    result.expect("session/load after 50 kills");
    acked.check_replay(&transcript(&updates));
    mock.clear_queue();
    mock.enqueue(MockReply::text(["Still ", "here."]));
    assert_eq!(w.prompt_text(&sid, "After it all").await.text(), "Still here.");
    w.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_of_the_daemon_at_50_random_moments_keeps_every_acknowledged_message() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let db = env.ratchet_home().join("ratchet.db");
    let daemon = Daemon::start(&env).await;
    let mut rng = Rng::seeded("daemon kill -9", 0x5EED_0002);
    let mut acked = Acknowledged::default();
    let mut tally = Tally::default();
    let mut session = None::<String>;

    for i in 0..KILLS {
        let mut w = crate::support::daemon::daemon_window(&env).await;
        let sid = match &session {
            None => w.new_session(&env.cwd()).await,
            Some(s) => {
                w.call("session/resume", json!({"sessionId": s, "cwd": env.cwd(), "mcpServers": []})).await;
                s.clone()
            }
        };
        session = Some(sid.clone());
        let moment = pick_moment(&mut rng);
        let (id, reached_model) = prompt_and_kill(&mut w, &mock, &sid, i, moment, async || {
            daemon.kill9().await;
        })
        .await;
        // A daemon again at once, so a prompt the window had not yet passed on runs there
        // (with the same answer) instead of waiting out the gap.
        daemon.start_again(&env).await;
        mock.clear_queue();
        mock.enqueue(answer(i));
        // The window answers the prompt either way: its result, or an error (never a hang).
        let (_, outcome) = within("the window to answer the prompt", w.wait_response(id)).await;
        drop(w);
        record(&mut acked, i, Some(outcome), reached_model, &mut tally);
        let when = format!("after kill {i} of the daemon");
        acked.check(&check_store(&db, &sid, &when), &when);
    }
    eprintln!("daemon kills: {tally:?}");
    assert!(tally.mid_stream + tally.answered > KILLS / 2, "most kills land after the request: {tally:?}");

    // The last daemon replays the acknowledged answers and still works.
    let sid = session.unwrap();
    let mut w = crate::support::daemon::daemon_window(&env).await;
    acked.check_replay(&transcript(&crate::support::daemon::load(&mut w, &sid, &env).await));
    mock.clear_queue();
    mock.enqueue(MockReply::text(["Still ", "here."]));
    assert_eq!(w.prompt_text(&sid, "After it all").await.text(), "Still here.");
}

/// The editor closes stdin while the answer streams: the agent saves what it has, exits 0,
/// and the next agent replays the history with the partial answer.
#[tokio::test]
async fn the_editor_closing_stdin_mid_prompt_exits_cleanly_with_the_history_intact() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let mut w = env.spawn_initialized().await;
    let session = w.new_session(&env.cwd()).await;
    mock.enqueue(MockReply::text(["First."]));
    assert_eq!(w.prompt_text(&session, "One").await.stop_reason(), "end_turn");

    mock.enqueue(MockReply::text(["Partial ", "answer ", "never ends"]).stall_after(2));
    let prompt = json!({"sessionId": session, "prompt": [{"type": "text", "text": "Two"}]});
    let _ = w.send_request("session/prompt", prompt).await;
    within("the answer to start", w.wait_for_agent_text(&session, "Partial answer ")).await;
    w.close_stdin();
    let status = w.wait_exit().await;
    assert!(status.success(), "exit status after stdin EOF mid-prompt: {status:?}\n{}", w.stderr());
    mock.wait_for_aborted_streams(1).await;
    assert!(!w.stderr().contains("panicked"), "{}", w.stderr());
    drop(w);

    let messages = check_store(&env.ratchet_home().join("ratchet.db"), &session, "after stdin EOF");
    let texts: Vec<(String, String)> = messages.iter().map(|m| (m.role.clone(), stored_text(m))).collect();
    assert_eq!(
        texts,
        [("user", "One"), ("assistant", "First."), ("user", "Two"), ("assistant", "Partial answer ")]
            .map(|(r, t)| (r.to_owned(), t.to_owned())),
    );
    assert_eq!(messages[3].status, "cancelled", "the partial answer is kept, marked cancelled");

    let mut next = env.spawn_initialized().await;
    let (updates, result) =
        next.request_collect("session/load", json!({"sessionId": session, "cwd": env.cwd(), "mcpServers": []})).await;
    result.expect("session/load");
    assert_eq!(
        transcript(&updates),
        tr(&[("user", "One"), ("agent", "First."), ("user", "Two"), ("agent", "Partial answer ")])
    );
    next.shutdown().await;
}
