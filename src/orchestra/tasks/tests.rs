use tokio_util::sync::CancellationToken;

use super::*;
use crate::orchestra::jobs::{JobKind, JobSpec};
use crate::orchestra::plan::{Plan, Proposal, ProposedStep};
use crate::orchestra::plans::{PlanStore, StepRun};

struct Fixture {
    db: Db,
    jobs: JobRegistry,
    tasks: TaskStore,
}

fn fixture() -> Fixture {
    let db = Db::memory();
    let jobs = JobRegistry::new(db.clone(), CancellationToken::new());
    Fixture { tasks: TaskStore::new(db.clone(), jobs.clone()), db, jobs }
}

fn new(title: &str, project: Option<&str>) -> NewTask {
    NewTask { title: title.into(), project: project.map(String::from), ..NewTask::default() }
}

fn who(holder: &str) -> Claimant {
    Claimant { holder: holder.into(), project: None }
}

#[tokio::test]
async fn a_second_claim_is_refused_naming_the_holder_and_the_first_claim_is_idempotent() {
    let f = fixture();
    let task = f.tasks.create(new("  write the\nparser ", None)).await.unwrap();
    assert_eq!((task.id.as_str(), task.title.as_str(), task.status), ("t1", "write the parser", TaskStatus::Open));
    let claimed = f.tasks.claim("t1", who("alice")).await.unwrap();
    assert_eq!(claimed.task.status, TaskStatus::InProgress);
    assert_eq!(claimed.task.claimed_by.as_deref(), Some("alice"));
    assert_eq!(f.tasks.claim("1", who("alice")).await.unwrap().released, None, "claiming again is a no-op");
    let err = f.tasks.claim("t1", who("bob")).await.unwrap_err();
    assert!(matches!(err, TaskError::Claimed { ref holder, .. } if holder == "alice"), "{err}");
    assert!(err.to_string().contains("already claimed by alice"), "{err}");
    // Reopening drops the claim; then bob may take it.
    let reopened =
        f.tasks.update("t1", TaskChange { status: Some(TaskStatus::Open), ..Default::default() }).await.unwrap();
    assert_eq!(reopened.claimed_by, None);
    assert_eq!(f.tasks.claim("t1", who("bob")).await.unwrap().task.claimed_by.as_deref(), Some("bob"));
    assert!(matches!(f.tasks.claim("t9", who("bob")).await, Err(TaskError::NoSuchTask { .. })));
}

#[tokio::test]
async fn a_claim_held_by_a_job_that_ended_is_released_and_noted() {
    let f = fixture();
    f.tasks.create(new("fix the bug", None)).await.unwrap();
    let mut spec = JobSpec::new(JobKind::TeamAgent, "t7-coder");
    spec.session_id = Some("s-coder".into());
    let job = f.jobs.register(spec).await.unwrap();
    f.tasks.claim("t1", who("team_agent:t7-coder")).await.unwrap();
    let err = f.tasks.claim("t1", who("session:other")).await.unwrap_err();
    assert!(err.to_string().contains("team_agent:t7-coder"), "a running job keeps its claim: {err}");
    job.finish().await.unwrap();
    let claimed = f.tasks.claim("t1", who("session:other")).await.unwrap();
    assert_eq!(claimed.released.as_deref(), Some("team_agent:t7-coder"));
    assert_eq!(claimed.task.claimed_by.as_deref(), Some("session:other"));
    assert!(claimed.task.notes.contains("released the claim of team_agent:t7-coder"), "{}", claimed.task.notes);
}

#[tokio::test]
async fn updates_append_signed_notes_finish_tasks_and_agents_respect_live_claims() {
    let f = fixture();
    f.tasks.create(new("ship it", None)).await.unwrap();
    f.tasks.claim("t1", who("alice")).await.unwrap();
    let by_agent = TaskChange { note: Some("I can help".into()), by: Some("session:x".into()), ..Default::default() };
    let err = f.tasks.update("t1", by_agent).await.unwrap_err();
    assert!(matches!(err, TaskError::Claimed { .. }), "{err}");
    let by_alice = TaskChange { note: Some("built".into()), by: Some("alice".into()), ..Default::default() };
    f.tasks.update("t1", by_alice).await.unwrap();
    let person = TaskChange { status: Some(TaskStatus::Done), note: Some("shipped".into()), by: None };
    let done = f.tasks.update("t1", person).await.unwrap();
    assert_eq!(done.status, TaskStatus::Done);
    assert_eq!(done.notes, "[alice] built\n[cli] shipped");
    assert_eq!(done.claimed_by.as_deref(), Some("alice"), "a finished task keeps who did it");
    assert!(matches!(f.tasks.claim("t1", who("bob")).await, Err(TaskError::Finished { .. })));
    assert!(matches!(f.tasks.update("t1", TaskChange::default()).await, Err(TaskError::Invalid(_))));
    assert!(matches!(f.tasks.create(new("  ", None)).await, Err(TaskError::Invalid(_))));
    assert!(matches!(TaskStatus::parse("in-progress"), Ok(TaskStatus::InProgress)));
    assert!(TaskStatus::parse("later").unwrap_err().to_string().contains("open, in_progress"));
}

#[tokio::test]
async fn lists_filter_by_status_project_and_claim() {
    let f = fixture();
    for (title, project) in [("a", Some("web")), ("b", Some("web")), ("c", None), ("d", Some("ops"))] {
        f.tasks.create(new(title, project)).await.unwrap();
    }
    f.tasks.claim("t2", who("alice")).await.unwrap();
    let titles = |tasks: Vec<Task>| tasks.into_iter().map(|t| t.title).collect::<Vec<_>>();
    let all = f.tasks.list(TaskFilter::default()).await.unwrap();
    assert_eq!(titles(all), ["a", "b", "c", "d"]);
    let web = TaskFilter { project: Some("web".into()), ..Default::default() };
    assert_eq!(titles(f.tasks.list(web.clone()).await.unwrap()), ["a", "b"]);
    let open_web = TaskFilter { status: Some(TaskStatus::Open), ..web };
    assert_eq!(titles(f.tasks.list(open_web).await.unwrap()), ["a"]);
    let claimed = TaskFilter { claimed: Some(true), ..Default::default() };
    assert_eq!(titles(f.tasks.list(claimed).await.unwrap()), ["b"]);
    let unclaimed = TaskFilter { claimed: Some(false), ..Default::default() };
    assert_eq!(titles(f.tasks.list(unclaimed).await.unwrap()), ["a", "c", "d"]);
    let by = TaskFilter { claimed_by: Some("alice".into()), ..Default::default() };
    assert_eq!(titles(f.tasks.list(by).await.unwrap()), ["b"]);
}

#[tokio::test]
async fn an_approved_plan_has_a_task_per_step_whose_status_and_claim_follow_the_step() {
    let f = fixture();
    let plans = PlanStore::new(f.db.clone());
    let step = |id: &str, depends: &[&str]| ProposedStep {
        id: id.into(),
        description: format!("do {id}\nin detail"),
        complexity: None,
        files: vec![],
        depends_on: depends.iter().map(|d| d.to_string()).collect(),
        agent: None,
    };
    let proposal = Proposal { goal: "g".into(), steps: vec![step("s1", &[]), step("s2", &["s1"]), step("s3", &[])] };
    let mut stored = plans.create("sess", &Plan::propose(proposal, 1).unwrap()).await.unwrap();
    plans.save(&stored).await.unwrap();
    assert!(f.tasks.list(TaskFilter::default()).await.unwrap().is_empty(), "a proposed plan has no tasks");

    stored.plan.approve(&["s3".to_string()]).unwrap();
    stored.plan.start().unwrap();
    plans.save(&stored).await.unwrap();
    let of_plan = TaskFilter { plan_id: Some(stored.id.clone()), ..Default::default() };
    let tasks = f.tasks.list(of_plan.clone()).await.unwrap();
    let view: Vec<(String, TaskStatus)> = tasks.iter().map(|t| (t.title.clone(), t.status)).collect();
    assert_eq!(
        view,
        [
            ("p1 s1: do s1".to_string(), TaskStatus::Open),
            ("p1 s2: do s2".to_string(), TaskStatus::Open),
            ("p1 s3: do s3".to_string(), TaskStatus::Cancelled)
        ]
    );
    assert_eq!(tasks[0].step, Some(StepLink { plan_id: "p1".into(), step_id: "s1".into() }));
    assert_eq!(tasks[0].description, "do s1\nin detail");

    stored.plan.step_started("s1").unwrap();
    stored.runs.insert("s1".into(), StepRun { worker_session: Some("w1".into()), ..StepRun::default() });
    plans.save(&stored).await.unwrap();
    let t1 = f.tasks.require("t1").await.unwrap();
    assert_eq!((t1.status, t1.claimed_by.as_deref()), (TaskStatus::InProgress, Some("fleet_worker:w1")));
    // The fleet owns it: no claim, no status by hand; notes are fine.
    assert!(matches!(f.tasks.claim("t2", who("alice")).await, Err(TaskError::PlanOwned { .. })));
    let status = TaskChange { status: Some(TaskStatus::Done), ..Default::default() };
    assert!(f.tasks.update("t1", status).await.unwrap_err().to_string().contains("step s1 of plan p1"));
    f.tasks.update("t1", TaskChange { note: Some("looks good".into()), ..Default::default() }).await.unwrap();

    stored.plan.step_finished("s1", Ok(())).unwrap();
    plans.save(&stored).await.unwrap();
    let t1 = f.tasks.require("t1").await.unwrap();
    assert_eq!(t1.status, TaskStatus::Done);
    assert_eq!(t1.notes, "[cli] looks good", "a sync keeps the notes");
    let _ = stored.plan.cancel();
    plans.save(&stored).await.unwrap();
    assert_eq!(f.tasks.require("t2").await.unwrap().status, TaskStatus::Cancelled, "never to run");
    assert_eq!(f.tasks.list(of_plan).await.unwrap().len(), 3, "a save never duplicates a step's task");
}

#[tokio::test]
async fn a_rejected_plan_has_no_tasks() {
    let f = fixture();
    let plans = PlanStore::new(f.db.clone());
    let proposal = Proposal {
        goal: "g".into(),
        steps: vec![ProposedStep {
            id: "s1".into(),
            description: "x".into(),
            complexity: None,
            files: vec![],
            depends_on: vec![],
            agent: None,
        }],
    };
    let mut stored = plans.create("sess", &Plan::propose(proposal, 1).unwrap()).await.unwrap();
    stored.plan.reject("no").unwrap();
    plans.save(&stored).await.unwrap();
    assert!(f.tasks.list(TaskFilter::default()).await.unwrap().is_empty());
}
