use std::time::Duration;

use tokio::time::timeout;

use super::types::MAX_KEY_LEN;
use super::*;

/// A pid no process has (beyond the usual `pid_max`).
const DEAD_PID: u32 = 0x7fff_fff0;
/// The pid a registry playing another process controls from.
const OTHER_PID: u32 = 0x7fff_fff1;
/// How long a request of another process may take to apply.
const APPLIED_WITHIN: Duration = Duration::from_secs(1);

fn registry() -> (JobRegistry, CancellationToken) {
    let shutdown = CancellationToken::new();
    (JobRegistry::new(Db::memory(), shutdown.clone()), shutdown)
}

fn worker(key: &str) -> JobSpec {
    JobSpec { pausable: true, detail: Some("plan p3 step s2".into()), ..JobSpec::new(JobKind::FleetWorker, key) }
}

fn id(text: &str) -> JobId {
    JobId::parse(text).unwrap()
}

async fn rows(db: &Db) -> Vec<(String, i64, String, Option<String>)> {
    db.call(|c| {
        let mut stmt = c.prepare("SELECT id, pid, status, control FROM jobs ORDER BY id")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    })
    .await
    .unwrap()
}

/// Waits (up to [`APPLIED_WITHIN`]) until the job's paused flag is `want`.
async fn paused_becomes(handle: &JobHandle, want: bool) {
    let mut paused = handle.paused();
    timeout(APPLIED_WITHIN, paused.wait_for(|p| *p == want)).await.expect("applied in time").unwrap();
}

#[tokio::test]
async fn registered_jobs_are_listed_until_dropped_or_finished() {
    let (jobs, _shutdown) = registry();
    let spec = JobSpec {
        model: Some("m-large".into()),
        session_id: Some("s1".into()),
        ..JobSpec::new(JobKind::Session, "s1")
    };
    let session = jobs.register(spec).await.unwrap();
    let fleet = jobs.register(worker("w1")).await.unwrap();
    assert_eq!(session.id().to_string(), "session:s1");

    let listed = jobs.list().await.unwrap();
    assert_eq!(listed.len(), 2);
    let first = listed.iter().find(|j| j.id == "session:s1").unwrap();
    assert_eq!(first.kind, JobKind::Session);
    assert_eq!(first.status, JobStatus::Running);
    assert_eq!(first.pid, std::process::id());
    assert_eq!(first.model.as_deref(), Some("m-large"));
    assert_eq!(first.session_id.as_deref(), Some("s1"));
    let second = listed.iter().find(|j| j.id == "fleet_worker:w1").unwrap();
    assert_eq!(second.detail.as_deref(), Some("plan p3 step s2"));

    fleet.set_detail(Some("plan p3 step s3".into())).await.unwrap();
    session.set_model(Some("m-small".into())).await.unwrap();
    let listed = jobs.list().await.unwrap();
    assert!(listed.iter().any(|j| j.detail.as_deref() == Some("plan p3 step s3")));
    assert!(listed.iter().any(|j| j.model.as_deref() == Some("m-small")));

    drop(session);
    jobs.flush().await;
    assert_eq!(rows(&jobs.inner.db).await.len(), 1, "the dropped job's row is deleted");
    fleet.finish().await.unwrap();
    assert!(rows(&jobs.inner.db).await.is_empty());
    assert!(jobs.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn an_id_runs_once_and_may_run_again_after_it_ends() {
    let (jobs, _shutdown) = registry();
    let first = jobs.register(worker("w1")).await.unwrap();
    let again = jobs.register(worker("w1")).await.unwrap_err();
    assert!(matches!(again, JobError::AlreadyRunning { .. }), "{again}");
    assert!(again.to_string().contains("ratchet jobs kill fleet_worker:w1"), "{again}");
    // The late delete of the first run never removes the second run's row.
    drop(first);
    let second = jobs.register(worker("w1")).await.unwrap();
    jobs.flush().await;
    assert_eq!(rows(&jobs.inner.db).await.len(), 1);
    assert_eq!(jobs.list().await.unwrap().len(), 1);
    drop(second);
}

#[tokio::test]
async fn kill_fires_the_token_of_that_job_only() {
    let (jobs, _shutdown) = registry();
    let victim = jobs.register(worker("w1")).await.unwrap();
    let bystander = jobs.register(worker("w2")).await.unwrap();
    jobs.request(victim.id(), Control::Kill).await.unwrap();
    assert!(victim.token().is_cancelled());
    assert!(victim.killed());
    assert!(!bystander.token().is_cancelled());
    assert!(!bystander.killed());
    // A job being killed is neither paused nor resumed; killing it again is fine.
    jobs.request(victim.id(), Control::Kill).await.unwrap();
    let err = jobs.request(victim.id(), Control::Pause).await.unwrap_err();
    assert!(matches!(err, JobError::BeingKilled { .. }), "{err}");
}

#[tokio::test]
async fn shutdown_cancels_every_job_without_killing_it() {
    let (jobs, shutdown) = registry();
    let a = jobs.register(worker("w1")).await.unwrap();
    let b = jobs.register(JobSpec::new(JobKind::Session, "s1")).await.unwrap();
    shutdown.cancel();
    assert!(a.token().is_cancelled() && b.token().is_cancelled());
    assert!(!a.killed() && !b.killed());
    jobs.request(a.id(), Control::Kill).await.unwrap();
    assert!(!a.killed(), "a kill after shutdown did not cancel it");
    let err = jobs.register(worker("w3")).await.unwrap_err();
    assert!(matches!(err, JobError::ShuttingDown), "{err}");
    let poller = lock(&jobs.inner.poller).take().expect("the first job started the poller");
    timeout(APPLIED_WITHIN, poller).await.expect("the poller ends on shutdown").unwrap();
}

#[tokio::test]
async fn a_paused_job_waits_until_resumed_or_killed() {
    let (jobs, _shutdown) = registry();
    let handle = Arc::new(jobs.register(worker("w1")).await.unwrap());
    timeout(Duration::from_millis(50), handle.wait_unpaused()).await.expect("not paused: returns at once");

    jobs.request(handle.id(), Control::Pause).await.unwrap();
    assert!(*handle.paused().borrow());
    assert_eq!(jobs.list().await.unwrap()[0].status, JobStatus::Paused);
    assert_eq!(rows(&jobs.inner.db).await[0].2, "paused");
    let waiter = tokio::spawn({
        let handle = handle.clone();
        async move { handle.wait_unpaused().await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiter.is_finished(), "a paused job waits");
    jobs.request(handle.id(), Control::Resume).await.unwrap();
    timeout(APPLIED_WITHIN, waiter).await.expect("resumed").unwrap();
    assert_eq!(rows(&jobs.inner.db).await[0].2, "running");

    jobs.request(handle.id(), Control::Pause).await.unwrap();
    let waiter = tokio::spawn({
        let handle = handle.clone();
        async move { handle.wait_unpaused().await }
    });
    jobs.request(handle.id(), Control::Kill).await.unwrap();
    timeout(APPLIED_WITHIN, waiter).await.expect("a kill ends the wait").unwrap();
}

#[tokio::test]
async fn requests_that_do_not_apply_say_what_to_do() {
    let (jobs, _shutdown) = registry();
    let session = jobs.register(JobSpec::new(JobKind::Session, "s1")).await.unwrap();
    let fleet = jobs.register(worker("w1")).await.unwrap();

    let err = jobs.request(session.id(), Control::Pause).await.unwrap_err();
    assert!(matches!(err, JobError::NotPausable { kind: JobKind::Session, .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "session:s1 cannot be paused: this session turn does not stop between steps; \
         stop it instead with `ratchet jobs kill session:s1`"
    );
    let err = jobs.request(fleet.id(), Control::Resume).await.unwrap_err();
    assert!(matches!(err, JobError::NotPaused { .. }), "{err}");
    let err = jobs.request(&id("fleet_worker:nope"), Control::Kill).await.unwrap_err();
    assert!(matches!(err, JobError::NoSuchJob { .. }), "{err}");
    assert!(err.to_string().contains("`ratchet jobs list`"), "{err}");
    assert!(!session.token().is_cancelled() && !*fleet.paused().borrow());
}

#[tokio::test]
async fn another_process_lists_and_controls_the_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orchestra.db");
    let (owner_down, other_down) = (CancellationToken::new(), CancellationToken::new());
    let owner = JobRegistry::new(Db::open(&path).unwrap(), owner_down);
    let other = JobRegistry::with_pid(Db::open(&path).unwrap(), other_down, OTHER_PID);
    let fleet = owner.register(worker("w1")).await.unwrap();
    let session = owner.register(JobSpec::new(JobKind::Session, "s1")).await.unwrap();

    let listed = other.list().await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|j| j.pid == std::process::id()));

    other.request(fleet.id(), Control::Pause).await.unwrap();
    paused_becomes(&fleet, true).await;
    // The owner records the status and clears the request.
    timeout(APPLIED_WITHIN, async {
        while rows(&other.inner.db).await.iter().any(|r| r.0 == "fleet_worker:w1" && r.3.is_some()) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the request is cleared");
    let status = |jobs: Vec<JobInfo>| jobs.into_iter().find(|j| j.id == "fleet_worker:w1").unwrap().status;
    assert_eq!(status(other.list().await.unwrap()), JobStatus::Paused);

    let err = other.request(session.id(), Control::Pause).await.unwrap_err();
    assert!(matches!(err, JobError::NotPausable { .. }), "{err}");
    let err = other.request(session.id(), Control::Resume).await.unwrap_err();
    assert!(matches!(err, JobError::NotPaused { .. }), "{err}");

    other.request(fleet.id(), Control::Resume).await.unwrap();
    paused_becomes(&fleet, false).await;

    other.request(session.id(), Control::Kill).await.unwrap();
    timeout(APPLIED_WITHIN, session.token().cancelled()).await.expect("killed in time");
    assert!(session.killed());
    assert!(!fleet.token().is_cancelled());
    let err = other.request(session.id(), Control::Pause).await.unwrap_err();
    assert!(matches!(err, JobError::BeingKilled { .. } | JobError::NotPausable { .. }), "{err}");

    drop(session);
    owner.flush().await;
    assert_eq!(other.list().await.unwrap().len(), 1);
}

#[tokio::test]
async fn rows_of_a_gone_process_are_dropped() {
    let db = Db::memory();
    let shutdown = CancellationToken::new();
    let gone = JobRegistry::with_pid(db.clone(), shutdown.clone(), DEAD_PID);
    let here = JobRegistry::new(db.clone(), shutdown);
    let orphan = gone.register(worker("w1")).await.unwrap();
    let _mine = here.register(worker("w2")).await.unwrap();
    // A row with this process's pid that the registry does not hold: left by an earlier
    // process with the same pid.
    let ours = i64::from(std::process::id());
    db.call(move |c| {
        c.execute(
            "INSERT INTO jobs (id, kind, pid, run, status, pausable, started_at) \
             VALUES ('session:old', 'session', ?1, 999, 'running', 0, 0)",
            [ours],
        )?;
        Ok(())
    })
    .await
    .unwrap();
    assert_eq!(rows(&db).await.len(), 3);

    let listed = here.list().await.unwrap();
    assert_eq!(listed.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(), ["fleet_worker:w2"]);
    assert_eq!(rows(&db).await.len(), 1, "the leftover rows are deleted");
    let err = here.request(orphan.id(), Control::Kill).await.unwrap_err();
    assert!(matches!(err, JobError::NoSuchJob { .. }), "{err}");

    // The id of a gone process's job can run again.
    let again = here.register(worker("w1")).await.unwrap();
    assert_eq!(here.list().await.unwrap().len(), 2);
    drop((orphan, again));
}

#[tokio::test]
async fn the_poller_idles_while_there_are_no_jobs() {
    let (jobs, _shutdown) = registry();
    assert!(lock(&jobs.inner.poller).is_none(), "no job, no poller");
    drop(jobs.register(worker("w1")).await.unwrap());
    jobs.flush().await;
    // A request on a leftover row of this process: a polling owner would clear it.
    let ours = i64::from(std::process::id());
    jobs.inner
        .db
        .call(move |c| {
            c.execute(
                "INSERT INTO jobs (id, kind, pid, run, status, pausable, started_at, control) \
                 VALUES ('session:old', 'session', ?1, 999, 'running', 0, 0, 'kill')",
                [ours],
            )?;
            Ok(())
        })
        .await
        .unwrap();
    tokio::time::sleep(CONTROL_POLL * 3).await;
    assert_eq!(rows(&jobs.inner.db).await[0].3.as_deref(), Some("kill"), "nobody polled");

    let _job = jobs.register(worker("w2")).await.unwrap();
    timeout(APPLIED_WITHIN, async {
        while rows(&jobs.inner.db).await.iter().any(|r| r.3.is_some()) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("a job wakes the poller");
}

#[tokio::test]
async fn a_process_runs_at_most_max_jobs() {
    let (jobs, _shutdown) = registry();
    let mut handles = Vec::with_capacity(MAX_JOBS);
    for n in 0..MAX_JOBS {
        handles.push(jobs.register(worker(&n.to_string())).await.unwrap());
    }
    let err = jobs.register(worker("one-more")).await.unwrap_err();
    assert!(matches!(err, JobError::TooMany), "{err}");
    assert!(err.to_string().contains("1024"), "{err}");
    handles.pop();
    jobs.register(worker("one-more")).await.unwrap();
}

#[test]
fn ids_parse_and_print() {
    for text in ["session:0195-abc", "fleet_worker:7"] {
        assert_eq!(id(text).to_string(), text);
    }
    assert_eq!(id("fleet_worker:7").kind(), JobKind::FleetWorker);
    assert_eq!(id(" session:s1 ").key(), "s1");
    for bad in ["", "s1", "session:", "team:x", "session:a b", "fleet-worker:1", ":x"] {
        let err = JobId::parse(bad).unwrap_err();
        assert!(matches!(err, JobError::BadId { .. }), "{bad}: {err}");
        assert!(err.to_string().contains("`session:<id>` or `fleet_worker:<id>`"), "{err}");
    }
    assert!(JobId::new(JobKind::Session, "x".repeat(MAX_KEY_LEN + 1)).is_err());
}

#[test]
fn job_info_serializes_in_snake_case() {
    let info = JobInfo {
        id: "fleet_worker:7".into(),
        kind: JobKind::FleetWorker,
        status: JobStatus::Paused,
        pid: 42,
        started_at: 1,
        elapsed_ms: 2,
        model: None,
        session_id: None,
        detail: Some("plan p3 step s2".into()),
    };
    let json = serde_json::to_value(&info).unwrap();
    assert_eq!(json["kind"], "fleet_worker");
    assert_eq!(json["status"], "paused");
    assert_eq!(json["detail"], "plan p3 step s2");
}

#[test]
fn liveness_of_pids() {
    assert!(pid_alive(std::process::id()));
    assert!(!pid_alive(DEAD_PID));
    assert!(!pid_alive(0), "pid 0 is a process group, not a process");
    assert!(!pid_alive(u32::MAX));
}
