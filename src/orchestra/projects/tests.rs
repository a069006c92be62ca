use std::path::Path;

use tokio_util::sync::CancellationToken;

use super::*;
use crate::orchestra::jobs::{JobKind, JobSpec, JobStatus};
use crate::orchestra::tasks::{Claimant, NewTask, TaskStore};

fn def(root: &Path, name: &str) -> ProjectDef {
    ProjectDef {
        name: name.into(),
        description: None,
        cwd: root.to_path_buf(),
        workdir: root.to_path_buf(),
        paths: vec![root.join("shared")],
        teams: vec!["code-gen".into(), "review".into()],
        task: Some("Build it".into()),
        origin: ProjectOrigin::Project,
        source: root.join(".ratchet/projects/web.yaml"),
    }
}

struct Fixture {
    jobs: JobRegistry,
    projects: Projects,
    tasks: TaskStore,
    dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let db = Db::memory();
    let jobs = JobRegistry::new(db.clone(), CancellationToken::new());
    Fixture {
        projects: Projects::new(db.clone(), jobs.clone()),
        tasks: TaskStore::new(db, jobs.clone()),
        jobs,
        dir: tempfile::tempdir().unwrap(),
    }
}

#[tokio::test]
async fn start_records_the_project_and_describes_each_team_launch() {
    let f = fixture();
    let web = def(f.dir.path(), "web");
    let launch = f.projects.start(&web, None).await.unwrap();
    assert_eq!(launch.project.status, ProjectStatus::Running);
    assert_eq!(launch.teams.len(), 2);
    assert_eq!(launch.teams[0].team, "code-gen");
    assert_eq!(launch.teams[0].task.as_deref(), Some("Build it"));
    assert_eq!(launch.teams[0].cwd, f.dir.path());
    assert_eq!(launch.teams[0].paths, [f.dir.path().to_path_buf(), f.dir.path().join("shared")]);
    let again = f.projects.start(&web, None).await.unwrap_err();
    assert!(matches!(again, ProjectError::AlreadyRunning { .. }), "{again}");
    let mut nowhere = def(f.dir.path(), "nowhere");
    nowhere.workdir = f.dir.path().join("missing");
    assert!(f.projects.start(&nowhere, None).await.unwrap_err().to_string().contains("does not exist"));
    let task = f.projects.start(&def(f.dir.path(), "other"), Some("Just this".into())).await.unwrap();
    assert_eq!(task.teams[0].task.as_deref(), Some("Just this"), "the start's task wins");
}

#[tokio::test]
async fn pause_holds_the_jobs_and_refuses_claims_resume_lets_them_go_and_kill_stops_them() {
    let f = fixture();
    let web = def(f.dir.path(), "web");
    f.projects.start(&web, None).await.unwrap();
    let mut spec = JobSpec::new(JobKind::TeamAgent, "web-coder");
    spec.pausable = true;
    let job = f.jobs.register(spec).await.unwrap();
    f.projects.attach_job("web", job.id()).await.unwrap();
    f.projects.attach_job("web", &JobId::parse("session:gone").unwrap()).await.unwrap();
    f.tasks.create(NewTask { title: "a".into(), project: Some("web".into()), ..Default::default() }).await.unwrap();
    f.tasks.create(NewTask { title: "b".into(), ..Default::default() }).await.unwrap();

    let report = f.projects.pause("web").await.unwrap();
    assert_eq!(report.project.status, ProjectStatus::Paused);
    let mut outcomes: Vec<(&str, &str)> = report.jobs.iter().map(|j| (j.job.as_str(), j.outcome.as_str())).collect();
    outcomes.sort();
    assert_eq!(outcomes, [("session:gone", "not running"), ("team_agent:web-coder", "requested")]);
    assert!(*job.paused().borrow());
    let listed = f.jobs.list().await.unwrap();
    assert_eq!(listed[0].status, JobStatus::Paused);
    let err = f.tasks.claim("t1", Claimant { holder: "alice".into(), project: None }).await.unwrap_err();
    assert!(err.to_string().contains("project web is paused"), "the project's task: {err}");
    let agent = Claimant { holder: "team_agent:web-coder".into(), project: Some("web".into()) };
    let err = f.tasks.claim("t2", agent.clone()).await.unwrap_err();
    assert!(err.to_string().contains("resume web"), "its agent takes no other work either: {err}");
    assert!(matches!(f.projects.pause("web").await, Err(ProjectError::Wrong { .. })));

    f.projects.resume("web").await.unwrap();
    assert!(!*job.paused().borrow());
    f.tasks.claim("t2", agent).await.unwrap();

    let report = f.projects.kill("web").await.unwrap();
    assert_eq!(report.project.status, ProjectStatus::Killed);
    assert!(job.token().is_cancelled() && job.killed());
    assert!(matches!(f.projects.resume("web").await, Err(ProjectError::Wrong { .. })));
    assert!(matches!(f.projects.pause("nope").await, Err(ProjectError::NotStarted { .. })));
    // Started again: a new run, with no jobs of the old one.
    let launch = f.projects.start(&web, None).await.unwrap();
    assert!(launch.project.jobs.is_empty());
    let names: Vec<String> = f.projects.list().await.unwrap().into_iter().map(|p| p.name).collect();
    assert_eq!(names, ["web"]);
    assert_eq!(f.projects.of_jobs(vec!["session:x".into()]).await.unwrap(), None);
}

#[tokio::test]
async fn a_job_starting_in_a_paused_project_holds_and_in_a_killed_one_stops() {
    let f = fixture();
    f.projects.start(&def(f.dir.path(), "web"), None).await.unwrap();
    let session = JobId::parse("session:s1").unwrap();
    f.projects.attach_job("web", &session).await.unwrap();
    let report = f.projects.pause("web").await.unwrap();
    assert_eq!(report.jobs[0].outcome, "not running", "no turn ran when it paused");
    let mut spec = JobSpec::new(JobKind::Session, "s1");
    spec.pausable = true;
    let turn = f.jobs.register(spec.clone()).await.unwrap();
    f.projects.hold_new_job(turn.id()).await;
    assert!(*turn.paused().borrow(), "the new turn holds");
    drop(turn);
    f.projects.kill("web").await.unwrap();
    let turn = f.jobs.register(spec).await.unwrap();
    f.projects.hold_new_job(turn.id()).await;
    assert!(turn.killed());
    let other = f.jobs.register(JobSpec::new(JobKind::Session, "s2")).await.unwrap();
    f.projects.hold_new_job(other.id()).await;
    assert!(!other.token().is_cancelled(), "a job of no project runs");
}
