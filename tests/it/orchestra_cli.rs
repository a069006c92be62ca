//! `ratchet plans …`, `ratchet questions …` and `ratchet jobs …`: the orchestra's database is
//! seeded through the library in this process, and the real binary, run on the same data
//! directory, reads and answers it there.

use std::time::Duration;

use ratchet::orchestra::db::Db;
use ratchet::orchestra::jobs::{JobInfo, JobKind, JobRegistry, JobSpec};
use ratchet::orchestra::plan::{Plan, Proposal, ProposedStep};
use ratchet::orchestra::plans::{PlanStore, StoredPlan};
use ratchet::orchestra::questions::{Answer, AnsweredBy, NewQuestion, QuestionKind, QuestionQueue, QuestionRecord};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::support::TestEnv;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn describe(out: &std::process::Output) -> String {
    format!("status: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}", out.status, text(&out.stdout), text(&out.stderr))
}

const SESSION: &str = "0123456789abcdef-session";

/// A data directory with its orchestra database open in this process.
struct Orchestra {
    env: TestEnv,
    db: Db,
    plans: PlanStore,
    questions: QuestionQueue,
}

impl Orchestra {
    fn new() -> Orchestra {
        let env = TestEnv::new();
        let db = Db::open_in(&env.ratchet_home()).expect("open orchestra.db");
        Orchestra { env, plans: PlanStore::new(db.clone()), questions: QuestionQueue::new(db.clone()), db }
    }

    /// A proposed plan with steps s1, s2, s3.
    async fn plan(&self, goal: &str) -> StoredPlan {
        let step = |id: &str, description: &str| ProposedStep {
            id: id.into(),
            description: description.into(),
            complexity: None,
            files: vec![],
            depends_on: vec![],
            agent: None,
        };
        let proposal = Proposal {
            goal: goal.into(),
            steps: vec![step("s1", "write the parser"), step("s2", "write the docs"), step("s3", "run the tests")],
        };
        let plan = Plan::propose(proposal, 1).expect("a valid plan");
        self.plans.create(SESSION, &plan).await.expect("store the plan")
    }

    /// The plan-approval question the orchestra asks for `stored`.
    async fn approval_question(&self, stored: &StoredPlan) -> QuestionRecord {
        let steps: Vec<Value> =
            stored.plan.steps.iter().map(|s| json!({"id": s.id, "description": s.description})).collect();
        self.ask(
            QuestionKind::PlanApproval,
            &format!("approve plan {}?", stored.id),
            json!({"plan_id": stored.id, "steps": steps}),
        )
        .await
    }

    async fn ask(&self, kind: QuestionKind, title: &str, body: Value) -> QuestionRecord {
        let q = NewQuestion { session_id: SESSION.into(), kind, title: title.into(), body, cwd: self.env.workspace() };
        self.questions.ask(q).await.expect("ask")
    }

    async fn recorded(&self, id: &str) -> (Option<Answer>, Option<AnsweredBy>) {
        let q = self.questions.get(id).await.expect("read question").expect("question exists");
        (q.answer, q.answered_by)
    }

    async fn run(&self, args: &[&str]) -> std::process::Output {
        self.env.run(args).await
    }
}

#[tokio::test]
async fn plans_list_and_show_print_text_and_json() {
    let o = Orchestra::new();
    let older = o.plan("Port the parser to nom").await;
    let newer = o.plan("Write the release notes").await;
    o.approval_question(&newer).await;

    let out = o.run(&["plans", "list"]).await;
    assert!(out.status.success(), "{}", describe(&out));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", describe(&out));
    assert!(lines[0].starts_with(&format!("{}  proposed  0/3 done  session 01234567", newer.id)), "{stdout}");
    assert!(lines[0].contains("Write the release notes") && lines[1].contains("Port the parser"), "{stdout}");

    let out = o.run(&["plans", "list", "--json"]).await;
    assert!(out.status.success(), "{}", describe(&out));
    let listed: Vec<StoredPlan> = serde_json::from_slice(&out.stdout).expect("a JSON array of plans");
    assert_eq!(listed, vec![newer.clone(), older.clone()]);

    let out = o.run(&["plans", "list", "--session", "another-session"]).await;
    assert!(out.status.success() && out.stdout.is_empty(), "{}", describe(&out));

    let out = o.run(&["plans", "show", &older.id]).await;
    assert!(out.status.success(), "{}", describe(&out));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with(&format!("plan {}  proposed  revision 1  session {SESSION}", older.id)), "{stdout}");
    for step in ["s1", "s2", "s3", "write the docs"] {
        assert!(stdout.contains(step), "no {step:?} in {stdout}");
    }
    assert!(!stdout.contains("waiting for approval"), "no question waits for the older plan: {stdout}");
    let out = o.run(&["plans", "show", &newer.id]).await;
    assert!(text(&out.stdout).contains("waiting for approval"), "{}", describe(&out));

    let out = o.run(&["plans", "show", &older.id, "--json"]).await;
    assert!(out.status.success(), "{}", describe(&out));
    let shown: StoredPlan = serde_json::from_slice(&out.stdout).expect("a JSON plan");
    assert_eq!(shown, older);

    let out = o.run(&["plans", "show", "p99"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(text(&out.stderr).contains("ratchet plans list"), "{}", describe(&out));
}

#[tokio::test]
async fn plans_approve_with_a_skip_answers_the_approval_question_by_cli() {
    let o = Orchestra::new();
    let stored = o.plan("Port the parser").await;
    let q = o.approval_question(&stored).await;

    let out = o.run(&["plans", "approve", &stored.id, "--skip", "s2"]).await;
    assert!(out.status.success(), "{}", describe(&out));
    assert!(text(&out.stdout).contains(&format!("approved plan {}, skipping s2", stored.id)), "{}", describe(&out));
    assert_eq!(o.recorded(&q.id).await, (Some(Answer::Approve { skip: vec!["s2".into()] }), Some(AnsweredBy::Cli)));

    // Answered: approving again finds no open question and says who answered.
    let out = o.run(&["plans", "approve", &stored.id]).await;
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stderr = text(&out.stderr);
    assert!(stderr.contains(&format!("plan {} was already answered by cli", stored.id)), "{}", describe(&out));
    assert!(stderr.contains("approved, skipping s2"), "{}", describe(&out));

    // A plan whose turn is gone (its question withdrawn) cannot be approved either.
    let gone = o.plan("Another plan").await;
    let q = o.approval_question(&gone).await;
    assert!(o.questions.withdraw(&q.id).await.unwrap());
    let out = o.run(&["plans", "approve", &gone.id]).await;
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(text(&out.stderr).contains("nobody waits for its approval any more"), "{}", describe(&out));
}

#[tokio::test]
async fn plans_approve_refuses_an_unknown_step_naming_the_plans_steps() {
    let o = Orchestra::new();
    let stored = o.plan("Port the parser").await;
    let q = o.approval_question(&stored).await;

    let out = o.run(&["plans", "approve", &stored.id, "--skip", "s9"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("\"s9\"") && stderr.contains("s1, s2, s3"), "{}", describe(&out));
    assert_eq!(o.recorded(&q.id).await, (None, None), "nothing is recorded");

    let out = o.run(&["plans", "approve", &stored.id, "--skip", "s1", "--skip", "s2", "--skip", "s3"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(text(&out.stderr).contains("reject it instead"), "{}", describe(&out));
    assert_eq!(o.recorded(&q.id).await, (None, None), "nothing is recorded");
}

#[tokio::test]
async fn plans_approve_without_an_open_question_names_the_status() {
    let o = Orchestra::new();
    let mut stored = o.plan("Port the parser").await;
    stored.plan.approve(&[]).unwrap();
    stored.plan.start().unwrap();
    o.plans.save(&stored).await.unwrap();

    let out = o.run(&["plans", "approve", &stored.id]).await;
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stderr = text(&out.stderr);
    assert!(stderr.contains(&format!("plan {} is executing", stored.id)), "{}", describe(&out));
    assert!(stderr.contains("only a proposed plan waiting for approval can be approved"), "{}", describe(&out));

    let out = o.run(&["plans", "approve", "p42"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(text(&out.stderr).contains("ratchet plans list"), "{}", describe(&out));
}

#[tokio::test]
async fn plans_reject_records_the_feedback_and_requires_it() {
    let o = Orchestra::new();
    let stored = o.plan("Port the parser").await;
    let q = o.approval_question(&stored).await;

    let out = o.run(&["plans", "reject", &stored.id, "--feedback", "split step s1 in two"]).await;
    assert!(out.status.success(), "{}", describe(&out));
    assert!(text(&out.stdout).contains(&format!("rejected plan {}", stored.id)), "{}", describe(&out));
    let feedback = "split step s1 in two".to_string();
    assert_eq!(o.recorded(&q.id).await, (Some(Answer::Reject { feedback }), Some(AnsweredBy::Cli)));

    let out = o.run(&["plans", "reject", &stored.id]).await;
    assert_eq!(out.status.code(), Some(2), "--feedback is required: {}", describe(&out));
}

#[tokio::test]
async fn questions_list_and_answer_ask_and_permission_questions() {
    let o = Orchestra::new();
    let ask =
        o.ask(QuestionKind::Ask, "Which branch should I base this on?", json!({"question": "Which branch?"})).await;
    let body = json!({"session_id": SESSION, "request_id": 7, "tool": "write_file", "step": "s2"});
    let permission = o.ask(QuestionKind::Permission, "write_file src/lib.rs", body).await;
    let refused = o.ask(QuestionKind::Permission, "shell rm -rf target", json!({"tool": "shell"})).await;

    let out = o.run(&["questions", "list"]).await;
    assert!(out.status.success(), "{}", describe(&out));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "a header and three questions: {stdout}");
    assert!(lines[0].starts_with("ID") && lines[0].contains("KIND") && lines[0].contains("TITLE"), "{stdout}");
    for (line, (q, kind)) in
        lines[1..].iter().zip([(&ask, "ask"), (&permission, "permission"), (&refused, "permission")])
    {
        assert!(line.starts_with(&q.id) && line.contains(kind) && line.contains(&q.title), "{line:?}");
        assert!(line.contains("s ago") && line.contains("01234567") && !line.contains(SESSION), "{line:?}");
    }

    let out = o.run(&["questions", "answer", &ask.id, "base", "it", "on", "main"]).await;
    assert!(out.status.success(), "{}", describe(&out));
    assert!(text(&out.stdout).contains("base it on main"), "{}", describe(&out));
    assert_eq!(o.recorded(&ask.id).await, (Some(Answer::Text("base it on main".into())), Some(AnsweredBy::Cli)));

    let out = o.run(&["questions", "answer", &permission.id, "allow"]).await;
    assert!(out.status.success(), "{}", describe(&out));
    assert!(text(&out.stdout).contains("allowed once"), "{}", describe(&out));
    assert_eq!(o.recorded(&permission.id).await, (Some(Answer::Approve { skip: vec![] }), Some(AnsweredBy::Cli)));

    let out = o.run(&["questions", "answer", &refused.id, "no,", "use", "cargo", "clean"]).await;
    assert!(out.status.success(), "{}", describe(&out));
    let feedback = "no, use cargo clean".to_string();
    assert_eq!(o.recorded(&refused.id).await, (Some(Answer::Reject { feedback }), Some(AnsweredBy::Cli)));

    let out = o.run(&["questions", "list"]).await;
    assert!(out.status.success() && out.stdout.is_empty(), "nothing open: {}", describe(&out));
    let out = o.run(&["questions", "list", "--all", "--json"]).await;
    assert!(out.status.success(), "{}", describe(&out));
    let all: Vec<Value> = serde_json::from_slice(&out.stdout).expect("a JSON array of questions");
    let ids: Vec<&str> = all.iter().filter_map(|q| q["id"].as_str()).collect();
    assert_eq!(ids, [ask.id.as_str(), permission.id.as_str(), refused.id.as_str()]);
    assert!(all.iter().all(|q| q["answered_by"] == "cli"), "{all:?}");
    let out = o.run(&["questions", "list", "--all"]).await;
    assert_eq!(text(&out.stdout).lines().filter(|l| l.contains("cli")).count(), 3, "{}", describe(&out));
}

#[tokio::test]
async fn answering_twice_fails_naming_who_answered() {
    let o = Orchestra::new();
    let q = o.ask(QuestionKind::Ask, "Which branch?", json!({"question": "Which branch?"})).await;
    assert!(o.questions.answer(&q.id, Answer::Text("dev".into()), AnsweredBy::Editor).await.unwrap());

    let out = o.run(&["questions", "answer", &q.id, "main"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stderr = text(&out.stderr);
    assert!(stderr.contains(&format!("question {} was already answered by editor", q.id)), "{}", describe(&out));
    assert_eq!(o.recorded(&q.id).await, (Some(Answer::Text("dev".into())), Some(AnsweredBy::Editor)));

    let out = o.run(&["questions", "answer", "q99", "main"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(text(&out.stderr).contains("ratchet questions list"), "{}", describe(&out));
}

#[tokio::test]
async fn questions_answer_approves_a_plan_and_checks_its_skips() {
    let o = Orchestra::new();
    let stored = o.plan("Port the parser").await;
    let q = o.approval_question(&stored).await;

    let out = o.run(&["questions", "answer", &q.id, "approve", "skip", "s7"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(text(&out.stderr).contains("s1, s2, s3"), "{}", describe(&out));
    assert_eq!(o.recorded(&q.id).await, (None, None));

    let out = o.run(&["questions", "answer", &q.id, "approve", "skip", "s3"]).await;
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(o.recorded(&q.id).await, (Some(Answer::Approve { skip: vec!["s3".into()] }), Some(AnsweredBy::Cli)));
}

/// Waits up to `limit` for `done`, checking every 20 ms.
async fn eventually(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while !done() {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

#[tokio::test]
async fn jobs_list_pause_resume_and_kill_reach_a_registry_in_another_process() {
    let o = Orchestra::new();
    // This test process plays the one running the agents; the CLI is another process.
    let registry = JobRegistry::new(o.db.clone(), CancellationToken::new());
    let mut spec = JobSpec::new(JobKind::FleetWorker, "w1");
    spec.model = Some("mock-model".into());
    spec.session_id = Some(SESSION.into());
    spec.detail = Some("plan p3\nstep s2".into());
    spec.pausable = true;
    let worker = registry.register(spec).await.expect("register the worker");
    let turn = registry.register(JobSpec::new(JobKind::Session, "0195-abc")).await.expect("register the turn");

    let out = o.run(&["jobs", "list"]).await;
    assert!(out.status.success(), "{}", describe(&out));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "a header and two jobs: {stdout}");
    for column in ["ID", "TYPE", "STATUS", "STARTED", "ELAPSED", "MODEL", "DETAIL"] {
        assert!(lines[0].contains(column), "no {column} in {stdout}");
    }
    let line = lines.iter().find(|l| l.starts_with("fleet_worker:w1")).unwrap_or_else(|| panic!("{stdout}"));
    for cell in ["fleet worker", "running", "s ago", "mock-model", "plan p3 step s2"] {
        assert!(line.contains(cell), "no {cell:?} in {line:?}");
    }
    assert!(stdout.lines().any(|l| l.starts_with("session:0195-abc") && l.contains("session turn")), "{stdout}");

    let out = o.run(&["jobs", "list", "--json"]).await;
    assert!(out.status.success(), "{}", describe(&out));
    let jobs: Vec<Value> = serde_json::from_slice(&out.stdout).expect("a JSON array of jobs");
    let mine = registry.list().await.unwrap();
    let ids = |jobs: &[JobInfo]| jobs.iter().map(|j| j.id.clone()).collect::<Vec<_>>();
    assert_eq!(jobs.iter().filter_map(|j| j["id"].as_str().map(String::from)).collect::<Vec<_>>(), ids(&mine));
    assert_eq!(jobs[0]["pid"], std::process::id());

    let out = o.run(&["jobs", "pause", "fleet_worker:w1"]).await;
    assert!(out.status.success(), "{}", describe(&out));
    assert!(text(&out.stdout).contains("paused fleet_worker:w1"), "{}", describe(&out));
    assert!(*worker.paused().borrow(), "the worker's pause flag is set");
    let out = o.run(&["jobs", "resume", "fleet_worker:w1"]).await;
    assert!(out.status.success(), "{}", describe(&out));
    assert!(text(&out.stdout).contains("resumed fleet_worker:w1"), "{}", describe(&out));
    assert!(!*worker.paused().borrow(), "the worker goes on");

    let out = o.run(&["jobs", "pause", "session:0195-abc"]).await;
    assert_eq!(out.status.code(), Some(1), "a turn does not pause: {}", describe(&out));
    assert!(text(&out.stderr).contains("ratchet jobs kill session:0195-abc"), "{}", describe(&out));

    // The runner stops when its token fires, as a real one does at its next await.
    let token = worker.token().clone();
    let runner = tokio::spawn(async move {
        worker.token().cancelled().await;
        let killed = worker.killed();
        worker.finish().await.expect("finish");
        killed
    });
    let started = tokio::time::Instant::now();
    let out = o.run(&["jobs", "kill", "fleet_worker:w1"]).await;
    assert!(out.status.success(), "{}", describe(&out));
    assert!(token.is_cancelled(), "the kill fired the worker's token");
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    assert!(runner.await.unwrap(), "cancelled by a kill, not by shutdown");
    assert!(text(&out.stdout).contains("killed fleet_worker:w1"), "{}", describe(&out));
    assert_eq!(ids(&registry.list().await.unwrap()), ["session:0195-abc"]);

    // A job that does not stop yet: the kill is asked, and said so.
    let out = o.run(&["jobs", "kill", "session:0195-abc"]).await;
    assert!(out.status.success(), "{}", describe(&out));
    assert!(eventually(Duration::from_secs(1), || turn.token().is_cancelled()).await, "the turn's token fired");
    assert!(text(&out.stdout).contains("asked session:0195-abc"), "{}", describe(&out));

    for (id, expected) in [("fleet_worker:w9", "there is no job fleet_worker:w9"), ("w1", "is not a job id")] {
        let out = o.run(&["jobs", "kill", id]).await;
        assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
        assert!(text(&out.stderr).contains(expected), "{}", describe(&out));
    }
}
