//! The daemon killed 20 times at random moments while a window is attached and fleets run
//! (issue 11, hardening §3). Each round the window prompts, the model proposes a two-step
//! plan, the window approves it in its form, and workers write one file each; the daemon is
//! `kill -9`ed at a seeded random moment of that and started again. After each kill:
//! - both windows (the prompting one and one following the session) are the same processes
//!   and reconnect: their requests work again (failing, in the gap, only with the retryable
//!   -32005);
//! - both databases pass `PRAGMA integrity_check`;
//! - every step the fleet recorded as completed (acknowledged) is still completed, its file
//!   written, in every later round.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};
use serde_json::json;

use crate::fleet::{initialize_with_forms, step, worker_writes};
use crate::support::daemon::{Daemon, poll_until};
use crate::support::faults::{Rng, check_store};
use crate::support::{AcpClient, MockLlm, MockReply, Reply, TIMEOUT, TestEnv};

const DAEMON_KILLS: usize = 20;

/// The bridge's code for an engine out of reach (`bridge::error::ENGINE_UNAVAILABLE`).
const ENGINE_UNAVAILABLE: i64 = -32005;

/// Steps recorded as completed in `orchestra.db` (after checking its integrity), by
/// `(plan id, step id)`.
fn completed_steps(db: &Path, when: &str) -> BTreeMap<(i64, String), String> {
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open orchestra.db");
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).expect("integrity_check");
    assert_eq!(check, "ok", "{when}: orchestra.db");
    let mut stmt =
        conn.prepare("SELECT plan_id, step_id, description FROM plan_steps WHERE status = 'completed'").unwrap();
    stmt.query_map([], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?))).unwrap().collect::<Result<_, _>>().unwrap()
}

/// Asks the window until it answers `session/list`: it reconnected to the new daemon. Only
/// the retryable error is acceptable in the gap.
async fn wait_reconnected(window: &mut AcpClient, when: &str) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        match window.request("session/list", json!({})).await {
            Ok(_) => return,
            Err(e) => assert_eq!(e.code, ENGINE_UNAVAILABLE, "{when}: only the retryable error in the gap: {e}"),
        }
        assert!(Instant::now() < deadline, "{when}: the window did not reconnect within {TIMEOUT:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_daemon_killed_20_times_while_fleets_run_loses_no_completed_step_and_the_windows_reconnect() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    env.write_config("[fleet]\nmax_workers = 2\n");
    let orchestra_db = env.ratchet_home().join("orchestra.db");
    let daemon = Daemon::start(&env).await;
    let mut window = env.spawn_acp().await;
    initialize_with_forms(&mut window).await;
    window.set_request_handler(|method, params| {
        (method == "elicitation/create" && params["mode"] == "form")
            .then(|| Reply::Result(json!({"action": "accept", "content": {"decision": "approve", "skip": []}})))
    });
    poll_until("the window to serve through the daemon", || window.stderr().contains("through the daemon")).await;
    let session = window.new_session(&env.cwd()).await;
    window.set_mode(&session, "accept-edits").await;
    // A second window follows the session (it loaded it, so it sees its turns live).
    let mut follower = crate::support::daemon::daemon_window(&env).await;
    crate::support::daemon::load(&mut follower, &session, &env).await;

    let mut rng = Rng::seeded("daemon kill -9 under fleets", 0x5EED_0003);
    let mut acknowledged = BTreeMap::new();
    let (mut answered, mut cut_off) = (0, 0);
    for round in 0..DAEMON_KILLS {
        let main = format!("Fleet round {round}: split the work");
        let ids = [format!("r{round}a"), format!("r{round}b")];
        mock.clear_queue();
        mock.enqueue_for(
            &main,
            MockReply::tool(
                &format!("call_plan_{round}"),
                "propose_plan",
                json!({"goal": format!("Round {round}"), "steps": [
                    step(&ids[0], &format!("Write {}.txt", ids[0])),
                    step(&ids[1], &format!("Write {}.txt", ids[1])),
                ]}),
            ),
        );
        mock.enqueue_for(&main, MockReply::text([format!("Round {round} done.")]));
        for id in &ids {
            worker_writes(&mock, id, &format!("{id}.txt"), Duration::from_millis(20));
        }
        let before = mock.requests().len();
        let prompt = json!({"sessionId": session, "prompt": [{"type": "text", "text": main}]});
        let id = window.send_request("session/prompt", prompt).await;
        mock.wait_for_requests(before + 1).await;
        // Read (and approve) for a random while: the kill lands before the approval, while
        // workers run, or after the round ended.
        let wait = rng.millis_up_to(Duration::from_millis(700));
        let early = tokio::time::timeout(wait, window.wait_response(id)).await.ok();
        daemon.kill9().await;
        daemon.start_again(&env).await;
        let outcome = match early {
            Some((_, outcome)) => outcome,
            None => window.wait_response(id).await.1,
        };
        match &outcome {
            Ok(_) => answered += 1,
            Err(e) => {
                assert_eq!(e.code, ENGINE_UNAVAILABLE, "round {round}: a prompt cut off by the kill is retryable: {e}");
                cut_off += 1;
            }
        }
        let when = format!("after kill {round}");
        wait_reconnected(&mut window, &when).await;
        wait_reconnected(&mut follower, &format!("{when} (the following window)")).await;

        check_store(&env.ratchet_home().join("ratchet.db"), &session, &when);
        let completed = completed_steps(&orchestra_db, &when);
        for (key, description) in &acknowledged {
            assert_eq!(completed.get(key), Some(description), "{when}: completed step {key:?} was lost");
        }
        for (_, step_id) in completed.keys() {
            let file = env.workspace().join(format!("{step_id}.txt"));
            assert_eq!(std::fs::read_to_string(&file).ok().as_deref(), Some(step_id.as_str()), "{when}: {file:?}");
        }
        acknowledged = completed;
    }
    eprintln!(
        "daemon kills under fleets: {answered} rounds answered, {cut_off} cut off, {} steps completed",
        acknowledged.len()
    );
    assert!(!acknowledged.is_empty(), "some steps completed between the kills");

    // The same window prompts again.
    mock.clear_queue();
    mock.enqueue(MockReply::text(["Still here."]));
    let turn = window.prompt_text(&session, "After the kills").await;
    assert_eq!(turn.text(), "Still here.", "{:?}", turn.outcome);
    // And the follower sees that turn live: it re-followed the session on the last daemon.
    crate::support::within("the follower to see the last turn", follower.wait_for_agent_text(&session, "Still here."))
        .await;
}
