use std::time::Instant;

use super::*;

fn question(kind: QuestionKind, title: &str) -> NewQuestion {
    NewQuestion {
        session_id: "s1".into(),
        kind,
        title: title.into(),
        body: serde_json::json!({"tool": "bash", "args": ["cargo", "test"]}),
        cwd: PathBuf::from("/work/project"),
    }
}

fn queue() -> QuestionQueue {
    QuestionQueue::new(Db::memory())
}

#[tokio::test]
async fn ask_stores_the_question_before_it_returns() {
    let q = queue();
    let asked = q.ask(question(QuestionKind::Permission, "run the tests")).await.unwrap();
    assert!(asked.id.starts_with('q'));
    assert!(asked.is_open());
    let stored = q.get(&asked.id).await.unwrap().expect("stored");
    assert_eq!(stored, asked);
    // The bare row id names it too.
    assert_eq!(q.get(asked.id.trim_start_matches('q')).await.unwrap(), Some(asked));
}

#[tokio::test]
async fn the_first_of_two_racing_answers_wins() {
    let q = queue();
    let id = q.ask(question(QuestionKind::Ask, "which branch?")).await.unwrap().id;
    let (a, b) = tokio::join!(
        q.answer(&id, Answer::Text("main".into()), AnsweredBy::Editor),
        q.answer(&id, Answer::Text("dev".into()), AnsweredBy::Cli),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(a ^ b, "exactly one answer wins: {a} {b}");
    let record = q.get(&id).await.unwrap().unwrap();
    let expected = if a {
        (Answer::Text("main".into()), AnsweredBy::Editor)
    } else {
        (Answer::Text("dev".into()), AnsweredBy::Cli)
    };
    assert_eq!((record.answer.unwrap(), record.answered_by.unwrap()), expected);
    assert!(record.answered_at.is_some());
    // And a third, later one loses too.
    assert!(!q.answer(&id, Answer::NoAnswer, AnsweredBy::Editor).await.unwrap());
}

#[tokio::test]
async fn a_waiter_is_woken_by_an_answer_in_the_same_process() {
    let q = queue();
    let id = q.ask(question(QuestionKind::PlanApproval, "approve the plan?")).await.unwrap().id;
    let waiter = {
        let (q, id) = (q.clone(), id.clone());
        tokio::spawn(async move { q.wait(&id, &CancellationToken::new(), None).await })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    let started = Instant::now();
    let skip = Answer::Approve { skip: vec!["s2".into()] };
    assert!(q.answer(&id, skip.clone(), AnsweredBy::Editor).await.unwrap());
    let got = waiter.await.unwrap().unwrap();
    assert_eq!(got, Some((skip, AnsweredBy::Editor)));
    assert!(started.elapsed() < ANSWER_POLL, "woken without waiting for a poll: {:?}", started.elapsed());
}

#[tokio::test]
async fn a_waiter_sees_an_answer_written_through_another_database_handle() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orchestra.db");
    let here = QuestionQueue::new(Db::open(&path).unwrap());
    let other_process = QuestionQueue::new(Db::open(&path).unwrap());
    let id = here.ask(question(QuestionKind::Permission, "run the tests")).await.unwrap().id;
    let waiter = {
        let (q, id) = (here.clone(), id.clone());
        tokio::spawn(async move { q.wait(&id, &CancellationToken::new(), None).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    assert!(other_process.answer(&id, Answer::Approve { skip: vec![] }, AnsweredBy::Cli).await.unwrap());
    let got = tokio::time::timeout(Duration::from_secs(1), waiter).await.expect("seen within a second");
    assert_eq!(got.unwrap().unwrap(), Some((Answer::Approve { skip: vec![] }, AnsweredBy::Cli)));
    assert!(started.elapsed() < Duration::from_secs(1));
    // The other handle lists it as answered, too.
    assert!(here.list(true).await.unwrap().is_empty());
}

#[tokio::test]
async fn cancel_ends_the_wait_with_none_and_leaves_the_question_open() {
    let q = queue();
    let id = q.ask(question(QuestionKind::Ask, "which branch?")).await.unwrap().id;
    let cancel = CancellationToken::new();
    let waiter = {
        let (q, id, cancel) = (q.clone(), id.clone(), cancel.clone());
        tokio::spawn(async move { q.wait(&id, &cancel, None).await })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    cancel.cancel();
    let got = tokio::time::timeout(Duration::from_secs(1), waiter).await.expect("cancel ends it");
    assert_eq!(got.unwrap().unwrap(), None);
    assert!(q.get(&id).await.unwrap().unwrap().is_open());
}

#[tokio::test]
async fn a_timeout_answers_no_answer_and_a_later_answer_loses() {
    let q = queue();
    let id = q.ask(question(QuestionKind::Permission, "rm -rf target")).await.unwrap().id;
    let started = Instant::now();
    let got = q.wait(&id, &CancellationToken::new(), Some(Duration::from_millis(100))).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(100));
    assert_eq!(got, Some((Answer::NoAnswer, AnsweredBy::Timeout)));
    assert!(!q.answer(&id, Answer::Approve { skip: vec![] }, AnsweredBy::Editor).await.unwrap());
    let record = q.get(&id).await.unwrap().unwrap();
    assert_eq!(record.answer, Some(Answer::NoAnswer));
    assert_eq!(record.answered_by, Some(AnsweredBy::Timeout));
}

#[tokio::test]
async fn an_answer_given_before_the_wait_is_returned_even_with_a_timeout() {
    let q = queue();
    let id = q.ask(question(QuestionKind::Ask, "which branch?")).await.unwrap().id;
    assert!(q.answer(&id, Answer::Text("main".into()), AnsweredBy::Rule("r1".into())).await.unwrap());
    let got = q.wait(&id, &CancellationToken::new(), Some(Duration::ZERO)).await.unwrap();
    assert_eq!(got, Some((Answer::Text("main".into()), AnsweredBy::Rule("r1".into()))));
}

#[tokio::test]
async fn waiting_on_an_unknown_question_is_an_error_not_a_wait_forever() {
    let q = queue();
    let cancel = CancellationToken::new();
    assert!(q.wait("q99", &cancel, None).await.is_err());
    assert!(q.wait("nonsense", &cancel, None).await.is_err());
    assert!(!q.answer("q99", Answer::NoAnswer, AnsweredBy::Cli).await.unwrap());
    assert!(!q.answer("nonsense", Answer::NoAnswer, AnsweredBy::Cli).await.unwrap());
    assert_eq!(q.get("q99").await.unwrap(), None);
}

#[tokio::test]
async fn list_gives_open_questions_or_all_oldest_first() {
    let q = queue();
    let first = q.ask(question(QuestionKind::Permission, "one")).await.unwrap().id;
    let second = q.ask(question(QuestionKind::PlanApproval, "two")).await.unwrap().id;
    let third = q.ask(question(QuestionKind::Ask, "three")).await.unwrap().id;
    assert!(q.answer(&second, Answer::Reject { feedback: "no".into() }, AnsweredBy::Cli).await.unwrap());
    let ids = |records: Vec<QuestionRecord>| records.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(ids(q.list(true).await.unwrap()), [first.clone(), third.clone()]);
    assert_eq!(ids(q.list(false).await.unwrap()), [first, second, third]);
}

#[tokio::test]
async fn a_withdrawn_question_is_not_open_and_its_waiter_learns_it() {
    let q = queue();
    let id = q.ask(question(QuestionKind::Ask, "which branch?")).await.unwrap().id;
    let waiter = {
        let (q, id) = (q.clone(), id.clone());
        tokio::spawn(async move { q.wait(&id, &CancellationToken::new(), None).await })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(q.withdraw(&id).await.unwrap());
    assert!(!q.withdraw(&id).await.unwrap(), "withdrawn once");
    assert_eq!(waiter.await.unwrap().unwrap(), Some((Answer::NoAnswer, AnsweredBy::Withdrawn)));
    assert!(q.list(true).await.unwrap().is_empty());
    assert_eq!(q.get(&id).await.unwrap().unwrap().answered_by, Some(AnsweredBy::Withdrawn));
}

#[test]
fn ids_are_read_with_or_without_the_q() {
    assert_eq!(parse_id("q12"), Some(12));
    assert_eq!(parse_id("12"), Some(12));
    assert_eq!(parse_id(" Q7 "), Some(7));
    for bad in ["", "q", "q-1", "12a", "qq1", "99999999999999999999999"] {
        assert_eq!(parse_id(bad), None, "{bad:?}");
    }
}

#[test]
fn answerers_round_trip_through_their_stored_form() {
    for by in [
        AnsweredBy::Editor,
        AnsweredBy::Cli,
        AnsweredBy::Rule("autorespond.yaml rule 1 (match: \"x\")".into()),
        AnsweredBy::Timeout,
        AnsweredBy::Withdrawn,
    ] {
        assert_eq!(AnsweredBy::parse(&by.to_string()), Some(by.clone()));
        let json = serde_json::to_value(&by).unwrap();
        assert_eq!(json, serde_json::Value::String(by.to_string()));
        assert_eq!(serde_json::from_value::<AnsweredBy>(json).unwrap(), by);
    }
    assert_eq!(AnsweredBy::Rule("r".into()).to_string(), "rule: r");
    assert_eq!(AnsweredBy::parse("someone"), None);
}

#[test]
fn kinds_and_answers_have_stable_stored_forms() {
    for kind in [QuestionKind::Permission, QuestionKind::PlanApproval, QuestionKind::Ask] {
        assert_eq!(QuestionKind::parse(kind.as_str()), Some(kind));
        assert_eq!(serde_json::to_value(kind).unwrap(), serde_json::Value::String(kind.as_str().into()));
    }
    assert_eq!(QuestionKind::parse("other"), None);
    let approve = serde_json::to_value(Answer::Approve { skip: vec!["s2".into()] }).unwrap();
    assert_eq!(approve, serde_json::json!({"type": "approve", "value": {"skip": ["s2"]}}));
    assert_eq!(
        serde_json::to_value(Answer::Text("hi".into())).unwrap(),
        serde_json::json!({"type": "text", "value": "hi"})
    );
    assert_eq!(serde_json::to_value(Answer::NoAnswer).unwrap(), serde_json::json!({"type": "no_answer"}));
}

#[tokio::test]
async fn a_record_serialises_for_json_output() {
    let q = queue();
    let id = q.ask(question(QuestionKind::Permission, "run the tests")).await.unwrap().id;
    q.answer(&id, Answer::Approve { skip: vec![] }, AnsweredBy::Cli).await.unwrap();
    let json = serde_json::to_value(q.get(&id).await.unwrap().unwrap()).unwrap();
    assert_eq!(json["id"], id.as_str());
    assert_eq!(json["kind"], "permission");
    assert_eq!(json["cwd"], "/work/project");
    assert_eq!(json["body"]["tool"], "bash");
    assert_eq!(json["answered_by"], "cli");
    assert_eq!(json["answer"]["type"], "approve");
}

#[test]
fn cli_answers_to_permission_questions() {
    let approve = Answer::Approve { skip: vec![] };
    for yes in ["allow", "YES", "y", "Approve", "ok", " ok\n"] {
        assert_eq!(parse_cli_answer(QuestionKind::Permission, yes), approve, "{yes:?}");
    }
    for no in ["no", "allow it", "yes please", "", "deny: use cargo check"] {
        let expected = Answer::Reject { feedback: no.trim().into() };
        assert_eq!(parse_cli_answer(QuestionKind::Permission, no), expected, "{no:?}");
    }
}

#[test]
fn cli_answers_to_plan_approvals() {
    let plan = |text| parse_cli_answer(QuestionKind::PlanApproval, text);
    assert_eq!(plan("approve"), Answer::Approve { skip: vec![] });
    assert_eq!(plan("yes"), Answer::Approve { skip: vec![] });
    assert_eq!(plan("approve skip s2 s3"), Answer::Approve { skip: vec!["s2".into(), "s3".into()] });
    assert_eq!(plan("Approve SKIP s2,s3"), Answer::Approve { skip: vec!["s2".into(), "s3".into()] });
    assert_eq!(plan("approve skip"), Answer::Approve { skip: vec![] });
    for no in ["approve, but fix the tests first", "split step 2", "no", "skip s2"] {
        assert_eq!(plan(no), Answer::Reject { feedback: no.into() }, "{no:?}");
    }
}

#[test]
fn cli_answers_to_ask_questions_are_the_text() {
    assert_eq!(parse_cli_answer(QuestionKind::Ask, "yes"), Answer::Text("yes".into()));
    assert_eq!(parse_cli_answer(QuestionKind::Ask, "use main, not dev"), Answer::Text("use main, not dev".into()));
}
