//! Cron over the real binary with the mock LLM: `ratchet cron add|list|pause|resume|stop`
//! on the data directory, and the process holding the singleton lock (a standalone
//! `ratchet acp`, or the daemon) running each job as a turn of its session.
//!
//! - a `2s` job fires the expected number of times, live in the window that has the session
//!   open, and in order in the session's history
//! - pause, resume and stop
//! - a busy session delays a run (it runs after the turn, once), never drops it
//! - `ratchet jobs` lists a run as `cron:<id>`; `ratchet jobs kill` stops its stream
//! - jobs survive a daemon restart; a missed run fires once at start (or is skipped)
//! - two `ratchet acp` processes on one data directory never fire a run twice, and the
//!   second takes over when the first dies
//!
//! Runs are counted on the mock: one model request whose last user message is the job's
//! prompt per run.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::daemon::{Daemon, daemon_window, describe, load, poll_until, text};
use crate::support::mock_llm::RecordedRequest;
use crate::support::{AcpClient, MockLlm, MockReply, TestEnv, chunk_text, tr, transcript};

/// What the scheduler logs once its process holds the lock.
const FIRING: &str = "this process fires the cron jobs";

/// Model requests for runs of a job whose prompt is `prompt`.
fn runs_of(mock: &MockLlm, prompt: &str) -> usize {
    mock.model_requests().iter().filter(|r| is_run_of(r, prompt)).count()
}

/// Whether the request's last user message is `prompt`.
fn is_run_of(request: &RecordedRequest, prompt: &str) -> bool {
    request.conversation().iter().rev().find(|(role, _)| role == "user").is_some_and(|(_, t)| t == prompt)
}

/// `ratchet ARGS`, which must succeed; its stdout.
async fn ok(env: &TestEnv, args: &[&str]) -> String {
    let out = env.run(args).await;
    assert!(out.status.success(), "`ratchet {}` failed: {}", args.join(" "), describe(&out));
    text(&out.stdout)
}

/// `ratchet cron add SESSION SCHEDULE PROMPT [EXTRA…]`; the new job's id.
async fn add(env: &TestEnv, session: &str, schedule: &str, prompt: &str, extra: &[&str]) -> String {
    let mut args = vec!["cron", "add", session, schedule, prompt];
    args.extend_from_slice(extra);
    let said = ok(env, &args).await;
    let id = said.strip_prefix("added cron job ").and_then(|s| s.split_whitespace().next());
    id.unwrap_or_else(|| panic!("`cron add` did not name the job: {said}")).to_string()
}

/// The job `id` as `ratchet cron list --json` shows it.
async fn job(env: &TestEnv, id: &str) -> Value {
    let listed: Value = serde_json::from_str(&ok(env, &["cron", "list", "--json"]).await).expect("cron list --json");
    let jobs = listed.as_array().expect("a JSON array").clone();
    jobs.into_iter()
        .find(|j| j["id"].as_i64().is_some_and(|n| n.to_string() == id))
        .unwrap_or_else(|| panic!("no job {id} in {listed}"))
}

/// A standalone window with a new session, once its process fires the cron jobs.
async fn firing_window(env: &TestEnv) -> (AcpClient, String) {
    let mut w = env.spawn_initialized().await;
    let session = w.new_session(&env.cwd()).await;
    poll_until("the window to take the cron lock", || w.stderr().contains(FIRING)).await;
    (w, session)
}

/// Sleeps until `start + secs`.
async fn until(start: Instant, secs: f64) {
    tokio::time::sleep_until((start + Duration::from_secs_f64(secs)).into()).await;
}

/// Waits until no model request is being answered (a run that started has been counted).
async fn settled(mock: &MockLlm) {
    tokio::time::sleep(Duration::from_millis(150)).await;
    poll_until("the mock to finish its streams", || mock.in_flight() == 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_two_second_job_runs_in_its_session_live_and_in_history() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let (mut w, session) = firing_window(&env).await;

    let id = add(&env, &session, "2s", "cron ping", &[]).await;
    let start = Instant::now();
    // The window that has the session open sees the run live: its prompt, then the answer.
    let first = w.wait_for_agent_text(&session, "Default mock answer.").await;
    assert!(start.elapsed() >= Duration::from_millis(1500), "the first run waits for its time");
    assert_eq!(chunk_text(&first, "user_message_chunk"), "cron ping", "{first:#?}");

    until(start, 5.0).await;
    settled(&mock).await;
    let runs = runs_of(&mock, "cron ping");
    assert!((2..=3).contains(&runs), "runs at about 2s and 4s in 5s, got {runs}");
    let listed = job(&env, &id).await;
    assert_eq!(listed["status"], "active", "{listed}");
    assert_eq!(listed["run_count"], runs as u64, "{listed}");
    assert!(listed["last_run"].is_i64() && listed["next_run"].is_i64() && listed["last_error"].is_null(), "{listed}");
    assert_eq!(listed["session_id"], session.as_str());

    ok(&env, &["cron", "stop", &id]).await;
    settled(&mock).await;
    let runs = runs_of(&mock, "cron ping");
    // The history: each run a user message and its answer, in order.
    let mut other = env.spawn_initialized().await;
    let replay = load(&mut other, &session, &env).await;
    let expected: Vec<(&str, &str)> =
        (0..runs).flat_map(|_| [("user", "cron ping"), ("agent", "Default mock answer.")]).collect();
    assert_eq!(transcript(&replay), tr(&expected));
    let table = ok(&env, &["cron", "list"]).await;
    assert!(table.starts_with("ID  SCHEDULE  STATUS"), "{table}");
    assert!(table.contains(&format!("{id}   2s        stopped")), "{table}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pause_resume_and_stop() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let (_w, session) = firing_window(&env).await;
    let id = add(&env, &session, "1s", "tick", &[]).await;
    poll_until("the first run", || runs_of(&mock, "tick") >= 1).await;

    let said = ok(&env, &["cron", "pause", &id]).await;
    assert!(said.contains(&format!("paused cron job {id}")), "{said}");
    settled(&mock).await;
    let paused_at = runs_of(&mock, "tick");
    let listed = job(&env, &id).await;
    assert_eq!((listed["status"].as_str(), listed["next_run"].is_null()), (Some("paused"), true), "{listed}");
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert_eq!(runs_of(&mock, "tick"), paused_at, "a paused job does not fire");
    let again = env.run(&["cron", "pause", &id]).await;
    assert!(!again.status.success() && text(&again.stderr).contains("is paused"), "{}", describe(&again));

    ok(&env, &["cron", "resume", &id]).await;
    let resumed = Instant::now();
    poll_until("a run after resume", || runs_of(&mock, "tick") > paused_at).await;
    assert!(resumed.elapsed() < Duration::from_millis(2500));
    // Missed runs while paused are not made up: one run, not a burst.
    settled(&mock).await;
    assert!(runs_of(&mock, "tick") <= paused_at + 2);

    ok(&env, &["cron", "stop", &id]).await;
    settled(&mock).await;
    let stopped_at = runs_of(&mock, "tick");
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert_eq!(runs_of(&mock, "tick"), stopped_at, "a stopped job does not fire");
    let resume = env.run(&["cron", "resume", &id]).await;
    assert!(text(&resume.stderr).contains("never runs again"), "{}", describe(&resume));
    assert_eq!(job(&env, &id).await["status"], "stopped");
    let bad = env.run(&["cron", "add", &session, "every day", "x"]).await;
    assert!(!bad.status.success() && text(&bad.stderr).contains("write a duration"), "{}", describe(&bad));
    let nobody = env.run(&["cron", "add", "no-such-session", "5m", "x"]).await;
    assert!(text(&nobody.stderr).contains("there is no session no-such-session"), "{}", describe(&nobody));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_busy_session_delays_the_run_once_and_never_drops_it() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let (mut w, session) = firing_window(&env).await;
    // The window's own turn takes about 2.4 s; the job is due after 1 s.
    let slow = ["one ", "two ", "three ", "four ", "five ", "six."];
    mock.enqueue(MockReply::text(slow).delay(Duration::from_millis(400)));
    let prompt = w
        .send_request(
            "session/prompt",
            serde_json::json!({"sessionId": session, "prompt": [{"type": "text", "text": "a long question"}]}),
        )
        .await;
    poll_until("the window's turn to start", || mock.in_flight() == 1).await;
    let id = add(&env, &session, "1s", "after you", &[]).await;
    let turn = w.finish_turn(prompt).await;
    assert_eq!(turn.stop_reason(), "end_turn");
    poll_until("the delayed run", || runs_of(&mock, "after you") >= 1).await;
    ok(&env, &["cron", "stop", &id]).await;
    let first = mock.model_requests().into_iter().find(|r| is_run_of(r, "after you")).unwrap();
    let conversation = first.conversation();
    assert_eq!(
        conversation[..2],
        [("user".to_string(), "a long question".to_string()), ("assistant".into(), slow.concat())],
        "the run came after the window's turn, not inside it"
    );
    assert_eq!(mock.max_in_flight(), 1, "never two turns of the session at once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_run_is_a_cron_job_in_ratchet_jobs_and_kill_stops_it() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let (_w, session) = firing_window(&env).await;
    mock.enqueue_for("stall here", MockReply::text(["started"]).stall_after(1));
    let id = add(&env, &session, "1s", "stall here", &[]).await;
    let key = format!("cron:{id}");
    mock.wait_for_requests(1).await;
    let listed: Value = serde_json::from_str(&ok(&env, &["jobs", "list", "--json"]).await).unwrap();
    let run = listed.as_array().unwrap().iter().find(|j| j["id"] == key.as_str()).cloned();
    let run = run.unwrap_or_else(|| panic!("no {key} in {listed}"));
    assert_eq!((run["kind"].as_str(), run["session_id"].as_str()), (Some("cron"), Some(session.as_str())), "{run}");
    ok(&env, &["cron", "stop", &id]).await;

    let killed = ok(&env, &["jobs", "kill", &key]).await;
    assert!(killed.contains(&format!("killed {key}")), "{killed}");
    mock.wait_for_aborted_streams(1).await;
    // The run's end is recorded as the job's last error.
    let deadline = Instant::now() + crate::support::TIMEOUT;
    while job(&env, &id).await["last_error"] != "killed (ratchet jobs kill)" {
        assert!(Instant::now() < deadline, "the kill is not recorded: {}", job(&env, &id).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn jobs_survive_a_daemon_restart_and_a_missed_run_fires_once() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let daemon = Daemon::start(&env).await;
    let mut w = daemon_window(&env).await;
    let session = w.new_session(&env.cwd()).await;
    // The window goes: the daemon opens the session again for each run.
    w.shutdown().await;
    let once = add(&env, &session, "2s", "catch up once", &[]).await;
    let skip = add(&env, &session, "2s", "catch up skip", &["--catch-up", "skip"]).await;
    poll_until("both jobs to run", || runs_of(&mock, "catch up once") >= 1 && runs_of(&mock, "catch up skip") >= 1)
        .await;

    ok(&env, &["daemon", "stop"]).await;
    settled(&mock).await;
    let (once_before, skip_before) = (runs_of(&mock, "catch up once"), runs_of(&mock, "catch up skip"));
    // Two runs of each are missed while nothing runs.
    tokio::time::sleep(Duration::from_millis(4200)).await;
    assert_eq!(runs_of(&mock, "catch up once"), once_before);

    daemon.start_again(&env).await;
    let started = Instant::now();
    until(started, 1.4).await;
    settled(&mock).await;
    assert_eq!(runs_of(&mock, "catch up once"), once_before + 1, "the missed runs fire once at start");
    assert_eq!(runs_of(&mock, "catch up skip"), skip_before, "catch_up = skip: no run at start");
    poll_until("the skipping job's next run", || runs_of(&mock, "catch up skip") > skip_before).await;
    for id in [&once, &skip] {
        let listed = job(&env, id).await;
        assert_eq!(listed["status"], "active", "{listed}");
        ok(&env, &["cron", "stop", id]).await;
    }
    assert!(daemon.log().contains(FIRING), "the daemon fires the jobs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_acp_processes_never_fire_a_run_twice() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let mut a = env.spawn_initialized().await;
    let b = env.spawn_initialized().await;
    let session = a.new_session(&env.cwd()).await;
    poll_until("one of them to take the cron lock", || a.stderr().contains(FIRING) || b.stderr().contains(FIRING))
        .await;
    let id = add(&env, &session, "1s", "only once", &[]).await;
    let start = Instant::now();
    until(start, 3.5).await;
    settled(&mock).await;
    let before_kill = runs_of(&mock, "only once");
    assert!((2..=4).contains(&before_kill), "runs at 1, 2 and 3 s, got {before_kill}");
    assert!(!(a.stderr().contains(FIRING) && b.stderr().contains(FIRING)), "only one process holds the lock");

    // The holder dies; the other takes over within a second or so and goes on.
    let (holder, mut other) = if a.stderr().contains(FIRING) { (a, b) } else { (b, a) };
    holder.kill9().await;
    poll_until("the other process to take over", || other.stderr().contains(FIRING)).await;
    let took_over = Instant::now();
    until(took_over, 2.5).await;
    ok(&env, &["cron", "stop", &id]).await;
    settled(&mock).await;
    let total = runs_of(&mock, "only once");
    let secs = start.elapsed().as_secs_f64();
    assert!(total > before_kill, "the new holder fires the job");
    assert!((total as f64) <= secs + 1.0, "{total} runs in {secs:.1}s: some run fired twice");
    assert_eq!(job(&env, &id).await["run_count"], total as u64, "every run counted once");
    let _ = other.request("session/list", serde_json::json!({})).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cron_in_the_chat_and_a_command_as_the_prompt() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let (mut w, session) = firing_window(&env).await;
    let added = w.prompt_text(&session, "/cron add 1s /cron list").await;
    let said = added.text();
    assert!(said.starts_with("Added cron job "), "{said}");
    let id = said.trim_start_matches("Added cron job ").split_whitespace().next().unwrap().to_string();
    // The run is the command's answer, seen live: this session's jobs.
    let run = w.wait_for_agent_text(&session, "run(s)").await;
    assert_eq!(chunk_text(&run, "user_message_chunk"), "/cron list");
    assert!(
        chunk_text(&run, "agent_message_chunk").contains(&format!("{id} [active] `1s` \"/cron list\"")),
        "{run:#?}"
    );
    let stopped = w.prompt_text(&session, &format!("/cron stop {id}")).await;
    assert_eq!(stopped.text(), format!("Stopped cron job {id}; it never runs again."));
    let usage = w.prompt_text(&session, "/cron").await;
    assert!(usage.text().starts_with("Usage: `/cron add"), "{}", usage.text());
    let other = w.new_session(&env.cwd()).await;
    let elsewhere = w.prompt_text(&other, &format!("/cron pause {id}")).await;
    assert!(elsewhere.text().contains(&format!("there is no cron job {id}")), "{}", elsewhere.text());
    assert!(mock.model_requests().is_empty(), "commands never reach the model");
}
