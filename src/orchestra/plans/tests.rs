use super::*;
use crate::orchestra::plan::{Proposal, ProposedStep};

fn step(id: &str, deps: &[&str], complexity: Option<Complexity>) -> ProposedStep {
    ProposedStep {
        id: id.into(),
        description: format!("do {id}"),
        complexity,
        files: vec![format!("src/{id}.rs")],
        depends_on: deps.iter().map(|d| d.to_string()).collect(),
        agent: None,
    }
}

/// a → b, c independent, d skipped on approval.
fn proposal(goal: &str) -> Plan {
    let steps = vec![
        step("a", &[], Some(Complexity::Simple)),
        step("b", &["a"], Some(Complexity::Complex)),
        step("c", &[], Some(Complexity::Review)),
        step("d", &[], None),
    ];
    Plan::propose(Proposal { goal: goal.into(), steps }, 1).unwrap()
}

fn run(model: &str, input: u64, output: u64) -> StepRun {
    StepRun {
        worker_session: Some(format!("w-{model}")),
        model: Some(model.into()),
        input_tokens: input,
        output_tokens: output,
        summary: Some(format!("{model} did it")),
    }
}

/// Drives `stored` through approve (skipping d), start, a failing (so b fails as its
/// dependent), c completing, saving after every change as the orchestra does.
async fn drive_to_failure(store: &PlanStore, stored: &mut StoredPlan) {
    stored.plan.approve(&["d".into()]).unwrap();
    store.save(stored).await.unwrap();
    stored.plan.start().unwrap();
    store.save(stored).await.unwrap();
    stored.plan.step_started("a").unwrap();
    stored.plan.step_started("c").unwrap();
    stored.runs.insert("a".into(), run("small", 1200, 340));
    store.save(stored).await.unwrap();
    stored.plan.step_finished("a", Err("tests fail".into())).unwrap();
    stored.plan.step_finished("c", Ok(())).unwrap();
    stored.runs.insert("c".into(), StepRun { input_tokens: u64::from(u32::MAX) + 7, ..run("big", 0, 5) });
    store.save(stored).await.unwrap();
}

#[tokio::test]
async fn a_plan_round_trips_through_every_state_change() {
    let store = PlanStore::new(Db::memory());
    let mut stored = store.create("sess-1", &proposal("ship it")).await.unwrap();
    assert!(stored.id.starts_with('p'), "{}", stored.id);
    assert_eq!(store.get(&stored.id).await.unwrap().as_ref(), Some(&stored), "as created");

    drive_to_failure(&store, &mut stored).await;
    assert_eq!(stored.plan.status, PlanStatus::Failed);
    let loaded = store.get(&stored.id).await.unwrap().unwrap();
    assert!(loaded.updated_at >= stored.created_at);
    assert_eq!(loaded, StoredPlan { updated_at: loaded.updated_at, ..stored.clone() });
    let status = |id: &str| loaded.plan.steps.iter().find(|s| s.id == id).unwrap().status.clone();
    assert_eq!(status("a"), StepStatus::Failed { reason: "tests fail".into() });
    assert!(matches!(status("b"), StepStatus::Failed { reason } if reason.contains("\"a\"")));
    assert_eq!((status("c"), status("d")), (StepStatus::Completed, StepStatus::Skipped));
    assert_eq!(loaded.runs.keys().collect::<Vec<_>>(), ["a", "c"]);
    assert_eq!(loaded.runs["c"].input_tokens, u64::from(u32::MAX) + 7);
    assert_eq!(loaded.plan.steps[3].complexity, Complexity::classify("do d"), "a guessed complexity is kept");
}

#[tokio::test]
async fn rejection_feedback_and_cleared_runs_are_saved() {
    let store = PlanStore::new(Db::memory());
    let mut stored = store.create("s", &proposal("g")).await.unwrap();
    stored.runs.insert("a".into(), run("m", 1, 2));
    store.save(&stored).await.unwrap();
    stored.runs.clear();
    stored.plan.reject("split step b").unwrap();
    store.save(&stored).await.unwrap();
    let loaded = store.get(&stored.id).await.unwrap().unwrap();
    assert_eq!(loaded.plan.status, PlanStatus::Rejected { feedback: "split step b".into() });
    assert!(loaded.runs.is_empty(), "a run removed in memory is removed in the database");
}

#[tokio::test]
async fn saving_a_plan_that_is_not_stored_fails_and_saves_nothing() {
    let store = PlanStore::new(Db::memory());
    let stored = store.create("s", &proposal("g")).await.unwrap();
    let ghost = StoredPlan { id: "p999".into(), ..stored.clone() };
    assert!(matches!(store.save(&ghost).await, Err(DbError::Corrupt(m)) if m.contains("p999")));
    assert!(store.save(&StoredPlan { id: "nope".into(), ..stored.clone() }).await.is_err());

    let mut extra = stored.clone();
    extra.plan.cancel().unwrap();
    extra.plan.steps.push(Step { id: "zz".into(), ..extra.plan.steps[0].clone() });
    let err = store.save(&extra).await.unwrap_err();
    assert!(err.to_string().contains("\"zz\""), "{err}");
    let loaded = store.get(&stored.id).await.unwrap().unwrap();
    assert_eq!(loaded.plan.status, PlanStatus::Proposed, "the failed save was rolled back");
}

#[tokio::test]
async fn list_is_newest_first_and_filters_by_session() {
    let store = PlanStore::new(Db::memory());
    let first = store.create("s1", &proposal("first")).await.unwrap();
    let second = store.create("s2", &proposal("second")).await.unwrap();
    let third = store.create("s1", &proposal("third")).await.unwrap();
    let ids = |plans: Vec<StoredPlan>| plans.into_iter().map(|p| p.id).collect::<Vec<_>>();
    assert_eq!(ids(store.list(None).await.unwrap()), [third.id.as_str(), &second.id, &first.id]);
    assert_eq!(ids(store.list(Some("s1".into())).await.unwrap()), [third.id.as_str(), &first.id]);
    assert_eq!(ids(store.list(Some("s2".into())).await.unwrap()), [second.id.as_str()]);
    assert!(store.list(Some("nobody".into())).await.unwrap().is_empty());
    let listed = store.list(Some("s2".into())).await.unwrap();
    assert_eq!(listed[0], second, "list loads the whole plan");
}

#[tokio::test]
async fn next_revision_counts_up_after_rejection_and_restarts_after_completion() {
    let store = PlanStore::new(Db::memory());
    assert_eq!(store.next_revision("s").await.unwrap(), 1, "no plan yet");

    let mut first = store.create("s", &proposal("g")).await.unwrap();
    assert_eq!(store.next_revision("s").await.unwrap(), 1, "the latest plan is still proposed");
    first.plan.reject("smaller steps").unwrap();
    store.save(&first).await.unwrap();
    assert_eq!(store.next_revision("s").await.unwrap(), 2);
    assert_eq!(store.next_revision("other").await.unwrap(), 1, "sessions are separate");

    let revised = Plan::propose(
        Proposal { goal: "g".into(), steps: vec![step("a", &[], None)] },
        store.next_revision("s").await.unwrap(),
    )
    .unwrap();
    let mut second = store.create("s", &revised).await.unwrap();
    assert_eq!(second.plan.revision, 2);
    second.plan.reject("still too big").unwrap();
    store.save(&second).await.unwrap();
    assert_eq!(store.next_revision("s").await.unwrap(), 3);

    let mut third = store.create("s", &Plan { revision: 3, ..revised }).await.unwrap();
    third.plan.approve(&[]).unwrap();
    third.plan.start().unwrap();
    third.plan.step_started("a").unwrap();
    third.plan.step_finished("a", Ok(())).unwrap();
    assert_eq!(third.plan.status, PlanStatus::Completed);
    store.save(&third).await.unwrap();
    assert_eq!(store.next_revision("s").await.unwrap(), 1, "after a finished plan, new work starts at 1");
}

#[tokio::test]
async fn ids_are_accepted_with_or_without_the_p() {
    let store = PlanStore::new(Db::memory());
    let stored = store.create("s", &proposal("g")).await.unwrap();
    let rowid = stored.id.strip_prefix('p').unwrap().to_string();
    assert_eq!(store.get(&rowid).await.unwrap().unwrap().id, stored.id);
    assert_eq!(store.get(&format!(" {} ", stored.id)).await.unwrap().unwrap().id, stored.id);
    for garbage in ["", "p", "pp1", "p-1", "-1", "p1x", "x1", "p99999", "99999999999999999999999"] {
        assert_eq!(store.get(garbage).await.unwrap(), None, "{garbage:?}");
    }
}

#[tokio::test]
async fn a_value_that_does_not_parse_is_corrupt_and_named() {
    let db = Db::memory();
    let store = PlanStore::new(db.clone());
    let stored = store.create("s", &proposal("g")).await.unwrap();
    let corrupt = async |sql: &'static str| {
        db.call(move |c| Ok(c.execute_batch(sql)?)).await.unwrap();
        match store.get(&stored.id).await {
            Err(DbError::Corrupt(message)) => message,
            other => panic!("{sql}: expected Corrupt, got {other:?}"),
        }
    };
    let m = corrupt("UPDATE plan_steps SET status = 'exploded' WHERE step_id = 'b'").await;
    assert!(m.contains("exploded") && m.contains("\"b\"") && m.contains(&stored.id), "{m}");
    let m = corrupt("UPDATE plan_steps SET status = 'pending', complexity = 'huge' WHERE step_id = 'b'").await;
    assert!(m.contains("huge"), "{m}");
    let m = corrupt("UPDATE plan_steps SET complexity = 'simple', files = 'not json' WHERE step_id = 'b'").await;
    assert!(m.contains("not json"), "{m}");
    let m = corrupt("UPDATE plan_steps SET files = '[]', input_tokens = -5 WHERE step_id = 'b'").await;
    assert!(m.contains("-5"), "{m}");
    let m = corrupt("UPDATE plan_steps SET input_tokens = 0; UPDATE plans SET status = 'bogus'").await;
    assert!(m.contains("bogus"), "{m}");
    assert!(matches!(store.list(None).await, Err(DbError::Corrupt(m)) if m.contains("bogus")));
    let m = corrupt("UPDATE plans SET status = 'rejected', feedback = NULL").await;
    assert!(m.contains("no feedback"), "{m}");
}

#[tokio::test]
async fn two_handles_on_one_file_see_each_others_saves() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orchestra.db");
    let (here, there) = (PlanStore::new(Db::open(&path).unwrap()), PlanStore::new(Db::open(&path).unwrap()));
    let mut stored = here.create("s", &proposal("g")).await.unwrap();
    let mut seen = there.get(&stored.id).await.unwrap().expect("the other handle sees the new plan");
    assert_eq!(seen, stored);

    seen.plan.approve(&["d".into()]).unwrap();
    there.save(&seen).await.unwrap();
    let approved = here.get(&stored.id).await.unwrap().unwrap();
    assert_eq!(approved.plan.status, PlanStatus::Approved, "an approval elsewhere is seen here");

    stored = approved;
    drive_to_failure_from_approved(&here, &mut stored).await;
    let seen = there.get(&stored.id).await.unwrap().unwrap();
    assert_eq!(seen, StoredPlan { updated_at: seen.updated_at, ..stored });
    assert_eq!(there.list(Some("s".into())).await.unwrap().len(), 1);
}

async fn drive_to_failure_from_approved(store: &PlanStore, stored: &mut StoredPlan) {
    stored.plan.start().unwrap();
    stored.plan.step_started("a").unwrap();
    stored.runs.insert("a".into(), run("small", 10, 20));
    stored.plan.step_finished("a", Err("no".into())).unwrap();
    store.save(stored).await.unwrap();
}

fn rendered_plan() -> StoredPlan {
    let mut plan = proposal("Add a --json flag to `ratchet plans list`\nand document it");
    plan.approve(&["d".into()]).unwrap();
    plan.start().unwrap();
    plan.step_started("a").unwrap();
    plan.step_finished("a", Err("cargo test failed:\n3 tests".into())).unwrap();
    StoredPlan {
        id: "p7".into(),
        session_id: "0193abcdef-1234".into(),
        created_at: 0,
        updated_at: 0,
        plan,
        runs: BTreeMap::from([("a".into(), run("gpt-small", 1200, 340))]),
    }
}

#[test]
fn summary_table_shows_steps_runs_and_failures() {
    let table = summary_table(&rendered_plan());
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines[0], "plan p7  executing  revision 1  session 0193abcdef-1234");
    assert_eq!(lines[1], "goal: Add a --json flag to `ratchet plans list` and document it");
    let row = |id: &str| {
        let cells: Vec<String> = lines
            .iter()
            .find(|l| l.split_whitespace().next() == Some(id))
            .unwrap_or_else(|| panic!("no row {id} in\n{table}"))
            .split_whitespace()
            .map(str::to_string)
            .collect();
        cells
    };
    assert_eq!(row("STEP")[..5], ["STEP", "STATUS", "COMPLEXITY", "MODEL", "TOKENS"]);
    assert_eq!(row("a"), ["a", "failed", "simple", "gpt-small", "1200/340", "do", "a"]);
    assert_eq!(row("b")[..5], ["b", "failed", "complex", "-", "0/0"]);
    assert_eq!(row("c")[..3], ["c", "pending", "review"]);
    assert_eq!(row("d")[1], "skipped");
    let column = |l: &str| l.find("simple").or_else(|| l.find("complex")).or_else(|| l.find("review"));
    let step_lines: Vec<&str> = lines.iter().copied().filter(|l| l.starts_with("  ") && column(l).is_some()).collect();
    assert!(step_lines.windows(2).all(|w| column(w[0]) == column(w[1])), "columns align:\n{table}");
    assert!(table.contains("failures:\n  a: cargo test failed: 3 tests\n"), "{table}");
    assert!(table.contains("  b: it depends on step \"a\", which failed\n"), "{table}");
    assert!(!table.contains("feedback"));

    let mut rejected = rendered_plan();
    rejected.plan = proposal("g");
    rejected.plan.reject("use one step per crate").unwrap();
    let table = summary_table(&rejected);
    assert!(table.contains("rejected with feedback: use one step per crate"), "{table}");
    assert!(!table.contains("failures:"), "{table}");
}

#[test]
fn one_line_counts_runnable_steps_and_cuts_the_goal() {
    let mut stored = rendered_plan();
    stored.plan.step_started("c").unwrap();
    stored.plan.step_finished("c", Ok(())).unwrap();
    assert_eq!(
        one_line(&stored),
        "p7  failed  1/3 done  session 0193abcd  Add a --json flag to `ratchet plans list` and document it"
    );
    stored.plan.goal = "é".repeat(100);
    let line = one_line(&stored);
    let goal = line.rsplit("  ").next().unwrap();
    assert_eq!(goal.chars().count(), 60);
    assert!(goal.ends_with('…'));
    stored.session_id = "ab".into();
    assert!(one_line(&stored).contains("session ab  "));
}
