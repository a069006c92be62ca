//! The daemon killed 20 times at random moments while windows are attached and teams run
//! (issue 11, hardening §3; `faults_daemon` is the fleet half). Each round starts a
//! two-member team in the daemon, alternately from the window (`/team`: the team runs inside
//! its turn) and with `ratchet team start` while the window prompts beside it. Its members (the
//! mock answers each by its role prompt) write the blackboard and message each other over two
//! turns each; the daemon is `kill -9`ed at a seeded random moment and started again. Each
//! member has a mock of its own (a stored provider entry): one mock shared by two members
//! routes by the last request it recorded, so two arriving together can swap answers.
//! After each kill:
//! - both windows (the prompting one and one following its session) are the same processes
//!   and reconnect, failing in the gap only with the retryable -32005;
//! - `orchestra.db` and `ratchet.db` pass `PRAGMA integrity_check`;
//! - everything persisted before the kill (blackboard entries, message events, ended teams
//!   and their members, stored session messages) is still there, unchanged, in every later
//!   round; every write and message a member was told succeeded (the tool result the mock
//!   saw next) is among it, with the content the member gave;
//! - teams do not resume: a team the kill cut short is shown `interrupted` ("its process N
//!   stopped while it ran") by the next `ratchet team show`, which changes nothing else, and
//!   refuses controls; one that ended before the kill stays `completed`.
//!
//! Each member starts on the task and takes its second turn on its teammate's message. A last
//! team after the kills runs to its end, both members' calls in flight at once.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};
use serde_json::{Value, json};

use crate::support::daemon::{Daemon, daemon_window, describe, load};
use crate::support::faults::Rng;
use crate::support::mock_llm::RecordedRequest;
use crate::support::{AcpClient, MODEL, MockLlm, MockReply, RpcError, TIMEOUT, TestEnv};

const DAEMON_KILLS_UNDER_TEAMS: usize = 20;
/// The bridge's code for an engine out of reach (`bridge::error::ENGINE_UNAVAILABLE`).
const ENGINE_UNAVAILABLE: i64 = -32005;
/// The longest a round runs before its kill: longer than a whole team's run, so most kills
/// land while the team runs and some after it ended.
const MAX_KILL_WAIT: Duration = Duration::from_millis(2500);
/// Per streamed frame of each member's first answer (so the two overlap) and of every other.
const FIRST_DELAY: Duration = Duration::from_millis(50);
const DELAY: Duration = Duration::from_millis(20);

/// The window's model, and one for each member.
struct Mocks {
    window: MockLlm,
    alpha: MockLlm,
    beta: MockLlm,
}

impl Mocks {
    fn of(&self, member: &str) -> &MockLlm {
        if member == "alpha" { &self.alpha } else { &self.beta }
    }

    fn clear(&self) {
        for mock in [&self.window, &self.alpha, &self.beta] {
            mock.clear_queue();
        }
    }
}

/// Runs `fut`, watching whether both members' model calls are in flight at the same moment.
async fn watching_overlap<T>(mocks: &Mocks, fut: impl Future<Output = T>) -> (T, bool) {
    let ended = AtomicBool::new(false);
    let run = async {
        let out = fut.await;
        ended.store(true, Ordering::SeqCst);
        out
    };
    let watch = async {
        let mut both = false;
        while !ended.load(Ordering::SeqCst) {
            both |= mocks.alpha.in_flight() > 0 && mocks.beta.in_flight() > 0;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        both
    };
    tokio::join!(run, watch)
}

/// Round `r`'s marker of a member (its role prompt): keeps the rounds' answers apart.
fn marker(r: usize, member: &str) -> String {
    format!("{}-ROLE r{r}: you take part", member.to_uppercase())
}

fn task(r: usize) -> String {
    format!("Round {r}: share your notes")
}

/// One scripted answer of a member.
enum Step {
    Write { section: &'static str, key: String, value: String },
    Send { to: &'static str, content: String },
    Say(String),
}

/// Turn 1: alpha writes its notes and tells beta, beta writes its notes. Turn 2 (on the
/// message): beta answers alpha and writes `done`; alpha, woken by that, writes `done`.
fn steps(r: usize, member: &str) -> Vec<Step> {
    let write = |section, key: &str, value: String| Step::Write { section, key: key.into(), value };
    let (notes, done) = (format!("{member}-{r}"), "done".to_string());
    let note = format!("{member}'s notes of round {r}");
    if member == "alpha" {
        vec![
            write("notes", &notes, note),
            Step::Send { to: "beta", content: format!("r{r}: my notes are up") },
            Step::Say("alpha waits for beta".into()),
            write("status", "alpha", done),
            Step::Say("alpha done".into()),
        ]
    } else {
        vec![
            write("notes", &notes, note),
            Step::Say("beta waits for alpha".into()),
            Step::Send { to: "alpha", content: format!("r{r}: read yours, mine are up") },
            write("status", "beta", done),
            Step::Say("beta done".into()),
        ]
    }
}

/// Writes `.ratchet/teams/r<r>.yaml` and queues its members' answers.
fn script(env: &TestEnv, mocks: &Mocks, r: usize) {
    let dir = env.workspace().join(".ratchet/teams");
    std::fs::create_dir_all(&dir).unwrap();
    let yaml = format!(
        "name: r{r}\nagents:\n  - name: alpha\n    role: lead\n    system_prompt: \"{}\"\n    provider: alpha-llm\n  - \
         name: beta\n    \
         role: follower\n    system_prompt: \"{}\"\n    provider: beta-llm\ntimeout: 60s\n",
        marker(r, "alpha"),
        marker(r, "beta")
    );
    std::fs::write(dir.join(format!("r{r}.yaml")), yaml).unwrap();
    for member in ["alpha", "beta"] {
        for (i, step) in steps(r, member).into_iter().enumerate() {
            let id = format!("r{r}{member}{i}");
            let reply = match step {
                Step::Write { section, key, value } => {
                    MockReply::tool(&id, "blackboard_write", json!({"section": section, "key": key, "value": value}))
                }
                Step::Send { to, content } => {
                    MockReply::tool(&id, "send_message", json!({"to": to, "content": content}))
                }
                Step::Say(text) => MockReply::text([text]),
            };
            mocks.of(member).enqueue_for(&marker(r, member), reply.delay(if i == 0 { FIRST_DELAY } else { DELAY }));
        }
    }
}

/// A team's row.
#[derive(Debug, Clone, PartialEq)]
struct TeamRow {
    config: String,
    status: String,
    summary: Option<String>,
    pid: u32,
    ended_at: Option<i64>,
}

/// What both databases hold, read behind the daemon's back (read-only).
#[derive(Debug, Clone, PartialEq, Default)]
struct Persisted {
    /// By team id (`t3`).
    teams: BTreeMap<String, TeamRow>,
    /// `(team, member)` → (status, turns).
    members: BTreeMap<(String, String), (String, u32)>,
    /// `(team, section, key)` → (value, author, revision).
    board: BTreeMap<(String, String, String), (String, String, u32)>,
    /// By id: (team, kind, member, text).
    events: BTreeMap<i64, (String, String, Option<String>, String)>,
    /// Every session's stored messages, by `(session, seq)`: (role, content, status).
    messages: BTreeMap<(String, i64), (String, String, String)>,
}

fn open_checked(db: &Path, when: &str) -> Connection {
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap_or_else(|e| panic!("{when}: cannot open {}: {e}", db.display()));
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).expect("integrity_check");
    assert_eq!(check, "ok", "{when}: PRAGMA integrity_check of {}", db.display());
    conn
}

fn rows<K: Ord, V>(
    conn: &Connection,
    sql: &str,
    row: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<(K, V)>,
) -> BTreeMap<K, V> {
    let mut stmt = conn.prepare(sql).unwrap();
    stmt.query_map([], row).unwrap().collect::<Result<_, _>>().unwrap()
}

fn persisted(env: &TestEnv, when: &str) -> Persisted {
    let o = open_checked(&env.ratchet_home().join("orchestra.db"), when);
    let s = open_checked(&env.ratchet_home().join("ratchet.db"), when);
    let t = |r: &rusqlite::Row<'_>| -> rusqlite::Result<String> { Ok(format!("t{}", r.get::<_, i64>(0)?)) };
    Persisted {
        teams: rows(&o, "SELECT id, config_name, status, summary, pid, ended_at FROM teams", |r| {
            let row = TeamRow {
                config: r.get(1)?,
                status: r.get(2)?,
                summary: r.get(3)?,
                pid: r.get(4)?,
                ended_at: r.get(5)?,
            };
            Ok((t(r)?, row))
        }),
        members: rows(&o, "SELECT team, name, status, turns FROM team_members", |r| {
            Ok(((t(r)?, r.get(1)?), (r.get(2)?, r.get(3)?)))
        }),
        board: rows(&o, "SELECT team, section, key, value, author, revision FROM blackboard", |r| {
            Ok(((r.get(0)?, r.get(1)?, r.get(2)?), (r.get(3)?, r.get(4)?, r.get(5)?)))
        }),
        events: rows(&o, "SELECT id, team, kind, member, text FROM team_events", |r| {
            Ok((r.get(0)?, (format!("t{}", r.get::<_, i64>(1)?), r.get(2)?, r.get(3)?, r.get(4)?)))
        }),
        messages: rows(&s, "SELECT session_id, seq, role, content, status FROM messages", |r| {
            Ok(((r.get(0)?, r.get(1)?), (r.get(2)?, r.get(3)?, r.get(4)?)))
        }),
    }
}

/// Everything `before` held that cannot change any more is in `after`, unchanged: entries,
/// events and messages (written once each), ended teams and their members.
fn kept(before: &Persisted, after: &Persisted, when: &str) {
    fn subset<K: Ord + std::fmt::Debug, V: PartialEq + std::fmt::Debug>(
        what: &str,
        before: &BTreeMap<K, V>,
        after: &BTreeMap<K, V>,
        when: &str,
    ) {
        for (k, v) in before {
            assert_eq!(after.get(k), Some(v), "{when}: {what} {k:?} was lost or changed");
        }
    }
    subset("blackboard entry", &before.board, &after.board, when);
    subset("team event", &before.events, &after.events, when);
    subset("stored message", &before.messages, &after.messages, when);
    for (id, team) in before.teams.iter().filter(|(_, t)| t.status != "running") {
        assert_eq!(after.teams.get(id), Some(team), "{when}: the ended team {id} changed");
        let of = |p: &Persisted| {
            p.members.iter().filter(|((t, _), _)| t == id).map(|(k, v)| (k.clone(), v.clone())).collect::<Vec<_>>()
        };
        assert_eq!(of(after), of(before), "{when}: the members of the ended team {id} changed");
    }
}

/// The model requests of round `r`'s `member`, in order.
fn requests_of(mocks: &Mocks, r: usize, member: &str) -> Vec<RecordedRequest> {
    let m = marker(r, member);
    mocks.of(member).model_requests().into_iter().filter(|q| q.raw_body.contains(&m)).collect()
}

fn last_user(request: &RecordedRequest) -> String {
    request.conversation().into_iter().rfind(|(role, _)| role == "user").map(|(_, t)| t).unwrap_or_default()
}

/// What round `r`'s members were told their tools did (the results the mock saw next): each
/// write and message must be persisted in team `id`, as scripted. Returns how many.
fn acknowledged(mocks: &Mocks, r: usize, id: &str, after: &Persisted, when: &str) -> usize {
    let mut n = 0;
    for member in ["alpha", "beta"] {
        let seen: Vec<_> = requests_of(mocks, r, member).into_iter().flat_map(|q| q.tool_results()).collect();
        for (i, step) in steps(r, member).into_iter().enumerate() {
            let call = format!("r{r}{member}{i}");
            let Some(result) = seen.iter().find(|t| t.call_id.as_deref() == Some(&call)) else { continue };
            n += 1;
            match step {
                Step::Write { section, key, value } => {
                    assert_eq!(result.text, format!("wrote {section}/{key} at revision 1"), "{when}: {call}");
                    let row = after.board.get(&(id.to_string(), section.to_string(), key.clone()));
                    assert_eq!(
                        row,
                        Some(&(value, member.to_string(), 1)),
                        "{when}: the acknowledged write {call} was lost"
                    );
                }
                Step::Send { to, content } => {
                    assert_eq!(result.text, format!("delivered to {to}"), "{when}: {call}");
                    let event = (
                        id.to_string(),
                        "message".to_string(),
                        Some(member.to_string()),
                        format!("to {to}: {content}"),
                    );
                    assert!(
                        after.events.values().any(|e| *e == event),
                        "{when}: the acknowledged message {call} was lost"
                    );
                }
                Step::Say(_) => unreachable!("a text answer has no tool result"),
            }
        }
    }
    n
}

/// Each member started on the task, and took its second turn on its teammate's message:
/// beta's call 2 and alpha's call 3 open those turns (alpha's call 1 and beta's call 2 send).
fn check_turns(mocks: &Mocks, r: usize, when: &str) {
    let (a, b) = (requests_of(mocks, r, "alpha"), requests_of(mocks, r, "beta"));
    let (ma, mb) = (marker(r, "alpha"), marker(r, "beta"));
    let stray = mocks.window.model_requests().into_iter().any(|q| q.raw_body.contains(&ma) || q.raw_body.contains(&mb));
    assert!(!stray, "{when}: members call their own providers only");
    for first in [a.first(), b.first()].into_iter().flatten() {
        assert_eq!(last_user(first), task(r), "{when}: a member starts on the task");
    }
    if let Some(woke) = b.get(2) {
        assert_eq!(last_user(woke), format!("[message from alpha] r{r}: my notes are up"), "{when}");
    }
    if let Some(woke) = a.get(3) {
        assert_eq!(last_user(woke), format!("[message from beta] r{r}: read yours, mine are up"), "{when}");
    }
}

/// A team that ran to its end: both members done after two turns, every write and message.
fn check_completed(p: &Persisted, id: &str, r: usize, when: &str) {
    for member in ["alpha", "beta"] {
        let row = p.members.get(&(id.to_string(), member.to_string()));
        assert_eq!(row, Some(&("done".to_string(), 2)), "{when}: {member} of the completed {id}");
    }
    let board = p.board.keys().filter(|(t, _, _)| t == id).count();
    let messages = p.events.values().filter(|(t, kind, _, _)| t == id && kind == "message").count();
    assert_eq!((board, messages), (4, 2), "{when}: the completed team {id} (round {r}) wrote everything");
}

async fn show(env: &TestEnv, id: &str) -> Value {
    let out = env.run(&["team", "show", id, "--json"]).await;
    assert!(out.status.success(), "{}", describe(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", describe(&out)))
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
async fn the_daemon_killed_20_times_while_teams_run_loses_nothing_persisted_and_the_windows_reconnect() {
    let mocks = Mocks { window: MockLlm::start().await, alpha: MockLlm::start().await, beta: MockLlm::start().await };
    let env = TestEnv::openai(&mocks.window);
    for member in ["alpha", "beta"] {
        let url = mocks.of(member).openai_base_url();
        let name = format!("{member}-llm");
        let out = env.run(&["provider", "add", &name, "--kind", "openai", "--base-url", &url, "--model", MODEL]).await;
        assert!(out.status.success(), "{}", describe(&out));
    }
    let daemon = Daemon::start(&env).await;
    let mut window = daemon_window(&env).await;
    let session = window.new_session(&env.cwd()).await;
    let mut follower = daemon_window(&env).await;
    load(&mut follower, &session, &env).await;
    let ws = env.cwd();

    let mut rng = Rng::seeded("daemon kill -9 under teams", 0x5EED_0004);
    let mut before = persisted(&env, "at the start");
    let (mut completed, mut interrupted, mut unstarted, mut writes_and_messages, mut overlapped) = (0, 0, 0, 0, 0);
    for r in 0..DAEMON_KILLS_UNDER_TEAMS {
        let when = format!("after kill {r}");
        mocks.clear();
        script(&env, &mocks, r);
        // Even rounds: `/team` in the window. Odd ones: `team start`, the window prompting.
        let from_window = r % 2 == 0;
        let prompt = if from_window {
            format!("/team r{r} {}", task(r))
        } else {
            let out = env.run(&["team", "start", &format!("r{r}"), &task(r), "--cwd", &ws, "--json"]).await;
            assert!(out.status.success(), "{}", describe(&out));
            let started: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(started["pid"], json!(daemon.pid().unwrap()), "the team runs in the daemon");
            mocks.window.enqueue_for(
                &format!("Window round {r}:"),
                MockReply::text([format!("Here in round {r}.")]).delay(DELAY),
            );
            format!("Window round {r}: still there?")
        };
        let params = json!({"sessionId": session, "prompt": [{"type": "text", "text": prompt}]});
        let id = window.send_request("session/prompt", params).await;
        let wait = rng.millis_up_to(MAX_KILL_WAIT);
        let (early, both) = watching_overlap(&mocks, tokio::time::timeout(wait, window.wait_response(id))).await;
        let early = early.ok();
        overlapped += usize::from(both);
        let at_kill = persisted(&env, &format!("before kill {r}"));
        kept(&before, &at_kill, &format!("before kill {r}"));
        let killed = daemon.kill9().await;
        daemon.start_again(&env).await;
        let outcome: Result<Value, RpcError> = match early {
            Some((_, outcome)) => outcome,
            None => window.wait_response(id).await.1,
        };
        if let Err(e) = &outcome {
            assert_eq!(e.code, ENGINE_UNAVAILABLE, "{when}: a prompt cut off by the kill is retryable: {e}");
        }
        wait_reconnected(&mut window, &when).await;
        wait_reconnected(&mut follower, &format!("{when} (the following window)")).await;

        let after = persisted(&env, &when);
        kept(&at_kill, &after, &when);
        check_turns(&mocks, r, &when);
        let name = format!("r{r}");
        for (id, t) in after.teams.iter().filter(|(_, t)| t.config != name) {
            assert_ne!(t.status, "running", "{when}: the earlier team {id} was settled");
        }
        let Some((team, row)) = after.teams.iter().find(|(_, t)| t.config == name) else {
            // Killed before the window's `/team` reached the daemon: nothing ran.
            assert!(from_window && outcome.is_err(), "{when}: round {r} started no team: {outcome:?}");
            assert!(requests_of(&mocks, r, "alpha").is_empty() && requests_of(&mocks, r, "beta").is_empty());
            unstarted += 1;
            before = after;
            continue;
        };
        assert_eq!(row.pid, killed, "{when}: {team} ran in the killed daemon");
        writes_and_messages += acknowledged(&mocks, r, team, &after, &when);
        let view = show(&env, team).await;
        match row.status.as_str() {
            "completed" => {
                check_completed(&after, team, r, &when);
                assert_eq!(view["team"]["status"], "completed", "{when}: {view:#}");
                completed += 1;
            }
            "running" => {
                assert!(
                    !(from_window && outcome.is_ok()),
                    "{when}: the window's `/team` answered before its team ended"
                );
                // Not resumed: the next look at it records it interrupted, and nothing else.
                let summary = format!("its process {killed} stopped while it ran");
                assert_eq!(
                    (view["team"]["status"].as_str(), view["team"]["summary"].as_str()),
                    (Some("interrupted"), Some(summary.as_str())),
                    "{when}: {view:#}"
                );
                let settled = persisted(&env, &format!("{when}, settled"));
                let stored = &settled.teams[team];
                assert!(stored.status == "interrupted" && stored.ended_at.is_some(), "{when}: {stored:?}");
                let mut expected = after.clone();
                expected.teams.insert(team.clone(), stored.clone());
                assert_eq!(
                    (&settled.teams, &settled.members, &settled.board, &settled.events),
                    (&expected.teams, &expected.members, &expected.board, &expected.events),
                    "{when}: only the team's status changed"
                );
                let steer = env.run(&["team", "steer", team, "go on"]).await;
                let refused = format!("team {team} is interrupted, not running");
                assert!(!steer.status.success() && describe(&steer).contains(&refused), "{}", describe(&steer));
                interrupted += 1;
                before = settled;
                continue;
            }
            other => panic!("{when}: {team} is {other}: {row:?}"),
        }
        before = after;
    }
    eprintln!(
        "daemon kills under teams: {completed} teams completed, {interrupted} interrupted, {unstarted} not started; \
         {writes_and_messages} acknowledged writes and messages kept; both members at the model at once in \
         {overlapped} rounds"
    );
    assert!(interrupted > 0 && writes_and_messages > 0, "kills landed while teams ran and had written");

    // A last team, from the same window, runs to its end (its members' calls overlapping); the
    // follower sees its answer live.
    let r = DAEMON_KILLS_UNDER_TEAMS;
    mocks.clear();
    script(&env, &mocks, r);
    let (turn, both) = watching_overlap(&mocks, window.prompt_text(&session, &format!("/team r{r} {}", task(r)))).await;
    assert!(both, "both members' model calls were in flight at once");
    assert_eq!(turn.stop_reason(), "end_turn", "{}", window.stderr());
    let last = persisted(&env, "after the last team");
    kept(&before, &last, "after the last team");
    let (team, _) = last.teams.iter().find(|(_, t)| t.config == format!("r{r}")).expect("the last team");
    assert!(turn.text().contains(&format!("Team {team} (r{r}) completed.")), "{}", turn.text());
    check_completed(&last, team, r, "the last team");
    check_turns(&mocks, r, "the last team");
    assert_eq!(acknowledged(&mocks, r, team, &last, "the last team"), 6);
    crate::support::within(
        "the follower to see the last team's answer",
        follower.wait_for_agent_text(&session, &format!("Team {team} (r{r}) completed.")),
    )
    .await;
}
