use std::time::Duration;

use super::config::{self, BUILTIN_CODE_GEN};
use super::router::{BROADCAST, INBOX_CAPACITY, RouteError, Router};
use super::store::{TeamControl, TeamStatus, TeamStore};
use super::*;
use crate::orchestra::agents::AgentCatalog;

#[test]
fn a_go_style_team_file_parses_with_definitions_timeouts_and_paths() {
    let cwd = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(cwd.path().join(".ratchet/agents")).unwrap();
    std::fs::write(
        cwd.path().join(".ratchet/agents/critic.yaml"),
        "description: Finds faults\nsystem_prompt: You find faults.\ntools: [read_file]\nmodel: m1\n",
    )
    .unwrap();
    std::fs::create_dir_all(cwd.path().join(".ratchet/teams")).unwrap();
    std::fs::write(
        cwd.path().join(".ratchet/teams/duo.yaml"),
        "name: duo\nagents:\n  - name: writer\n    role: writer\n    system_prompt: You write.\n    tools: [write_file]\n    \
         max_iterations: 7\n  - agent: critic\n    model: m2\ntimeout: 90s\nmax_review_rounds: 1\nworkdir: sub\npaths: [../x]\n",
    )
    .unwrap();
    let team = config::find("duo", cwd.path(), home.path()).unwrap();
    assert_eq!(team.name, "duo");
    assert_eq!(team.timeout, Duration::from_secs(90));
    assert_eq!((team.max_review_rounds, team.max_member_turns()), (1, 3));
    assert_eq!(team.workdir.as_deref(), Some(std::path::Path::new("sub")));
    let writer = &team.members[0];
    assert_eq!((writer.name.as_str(), writer.max_iterations), ("writer", Some(7)));
    let critic = &team.members[1];
    assert_eq!(critic.name, "critic");
    assert_eq!(critic.role, "Finds faults");
    assert_eq!(critic.prompt, "You find faults.");
    assert_eq!(critic.model.as_deref(), Some("m2"), "the entry's field wins over the definition's");
    assert_eq!(critic.tools.as_deref(), Some(&["read_file".to_string()][..]));
    assert!(config::available(cwd.path(), home.path()).contains(&"duo".to_string()));
}

#[test]
fn the_builtin_code_gen_team_needs_no_file_and_broken_files_say_what_is_wrong() {
    let d = tempfile::tempdir().unwrap();
    let team = config::find(BUILTIN_CODE_GEN, d.path(), d.path()).unwrap();
    let names: Vec<&str> = team.members.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["architect", "coder", "reviewer"]);
    assert_eq!(team.source, "built-in");
    let none = AgentCatalog::default();
    let bad = |text: &str| config::parse(text, "t", &none, "t.yaml").unwrap_err();
    assert!(bad("agents: []\n").contains("no agents"));
    assert!(bad("agents:\n  - name: a\n").contains("system_prompt"));
    assert!(bad("agents:\n  - agent: ghost\n").contains("no agent definition \"ghost\""));
    assert!(bad("agents:\n  - {name: a, prompt: x}\n  - {name: a, prompt: y}\n").contains("two members"));
    assert!(bad("agents:\n  - {name: a, prompt: x}\ntimeout: soon\n").contains("90s"));
    assert!(bad("agents:\n  - {name: a, prompt: x, colour: red}\n").contains("colour"));
    let missing = config::find("nope", d.path(), d.path()).unwrap_err();
    assert!(missing.contains("code-gen") && missing.contains(".ratchet/teams/nope.yaml"), "{missing}");
}

#[test]
fn the_router_delivers_by_name_and_broadcast_and_bounds_inboxes() {
    let mut r = Router::default();
    for m in ["a", "b", "c"] {
        r.open(m);
    }
    assert_eq!(r.deliver("message", "a", "b", "hi").unwrap(), ["b"]);
    assert_eq!(r.take("b"), ["[message from a] hi"]);
    assert_eq!(r.deliver("message", "a", BROADCAST, "all").unwrap(), ["b", "c"], "not the sender");
    assert!(!r.has_mail("a") && r.has_mail("c"));
    assert!(matches!(r.deliver("message", "a", "zed", "x"), Err(RouteError::Unknown { .. })));
    for i in 0..INBOX_CAPACITY - 1 {
        r.deliver("message", "a", "c", &i.to_string()).unwrap();
    }
    assert_eq!(r.deliver("message", "a", "c", "one too many"), Err(RouteError::Full { to: "c".into() }));
    // A broadcast still reaches the inboxes with room.
    assert_eq!(r.deliver("message", "a", BROADCAST, "x").unwrap(), ["b"]);
    assert_eq!(r.close("c").len(), INBOX_CAPACITY);
    assert!(matches!(r.deliver("message", "a", "c", "gone"), Err(RouteError::Unknown { .. })));
    assert!(matches!(r.deliver("message", "a", "b", &"x".repeat(20_000)), Err(RouteError::TooLong(_))));
}

#[tokio::test]
async fn teams_controls_and_events_round_trip_through_the_database() {
    let db = crate::orchestra::db::Db::memory();
    let store = TeamStore::new(db.clone());
    let home = tempfile::tempdir().unwrap();
    let new = store::NewTeam {
        name: "code-gen".into(),
        config: config::code_gen(),
        task: "do it".into(),
        cwd: home.path().to_path_buf(),
        transcript_dir: home.path().join("transcripts"),
    };
    let team = store.create(new).await.unwrap();
    assert_eq!(team.id, "t1");
    assert!(team.transcript.ends_with("transcripts/t1.md"));
    let desk = TeamDesk::new(db, home.path());
    assert!(desk.message("t1", "ghost", "x").await.unwrap_err().contains("no member \"ghost\""));
    store
        .put_member(
            "t1",
            MemberRecord {
                name: "coder".into(),
                role: "coder".into(),
                session_id: None,
                status: "waiting".into(),
                turns: 0,
                detail: None,
            },
        )
        .await
        .unwrap();
    desk.control("t1", TeamControl::Steer("use tabs".into())).await.unwrap();
    desk.message("1", "coder", "hello").await.unwrap();
    let controls = store.take_controls("t1").await.unwrap();
    assert_eq!(
        controls,
        [TeamControl::Steer("use tabs".into()), TeamControl::Message { member: "coder".into(), text: "hello".into() }]
    );
    assert!(store.take_controls("t1").await.unwrap().is_empty(), "taken once");
    store.event("t1", "start", None, "go").await.unwrap();
    store.event("t1", "said", Some("coder"), "ok").await.unwrap();
    let events = desk.events("t1", 0).await.unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(desk.events("t1", events[0].id).await.unwrap().len(), 1);
    desk.rename("t1", "my team").await.unwrap();
    store.finish("t1", TeamStatus::Completed, "all done").await.unwrap();
    let shown = desk.show("t1").await.unwrap();
    assert_eq!((shown.team.name.as_str(), shown.team.status), ("my team", TeamStatus::Completed));
    assert!(desk.kill("t1").await.unwrap_err().contains("not running"));
}

impl TeamDesk {
    async fn message(&self, id: &str, member: &str, text: &str) -> Result<String, String> {
        self.control(id, TeamControl::Message { member: member.into(), text: text.into() }).await
    }

    async fn kill(&self, id: &str) -> Result<String, String> {
        self.control(id, TeamControl::Kill).await
    }
}

#[test]
fn done_and_approved_finish_a_member() {
    assert!(is_done(" Done ") && is_done("approved"));
    assert!(!is_done("changes requested") && !is_done("working"));
}
