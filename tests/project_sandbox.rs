//! A project's allow-list is enforced by the same sandbox every tool uses: a session opened
//! for the project (`Orchestra::open_project_session`) is rooted at its `workdir` with its
//! `paths` as the only other directories, so a write inside them lands and a write anywhere
//! else is refused; child sessions (workers, sub-agents) inherit the same roots.

use ratchet::engine::config::{ConfigFile, EngineConfig, EnvSnapshot};
use ratchet::engine::{ChatEvent, ChildSpec, ContentPart, EngineApi, ToolCallStatus};
use ratchet::orchestra::projects::{ProjectDef, ProjectError, ProjectOrigin};
use serde_json::json;

mod common;
use common::drain;

#[tokio::test]
async fn a_project_session_may_write_inside_its_allow_list_and_nowhere_else() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let home = root.join("home");
    for sub in ["app", "shared", "home"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    let write = |path: &str| json!({"name": "write_file", "arguments": {"path": path, "content": "x"}});
    let script = json!({"turns": [
        {"tool_calls": [write("in-workdir.txt"), write("../shared/in-paths.txt"), write("../outside.txt"), write("/etc/ratchet-nope.txt")]},
        {"text": "done"}
    ]});
    let script_path = root.join("script.json");
    std::fs::write(&script_path, script.to_string()).unwrap();
    let env = EnvSnapshot {
        ratchet_provider: Some("scripted".into()),
        ratchet_script: Some(script_path.to_string_lossy().into_owned()),
        ..Default::default()
    };
    let composed =
        ratchet::compose::open(EngineConfig { home: home.clone(), env, file: ConfigFile::default() }).await.unwrap();
    let (engine, orchestra) = (composed.engine, composed.orchestra);
    let def = ProjectDef {
        name: "web".into(),
        description: None,
        cwd: root.clone(),
        workdir: root.join("app"),
        paths: vec![root.join("shared")],
        teams: vec![],
        task: None,
        origin: ProjectOrigin::Project,
        source: root.join(".ratchet/projects/web.yaml"),
    };
    let err = orchestra.open_project_session(&def).await.unwrap_err();
    assert!(matches!(err, ProjectError::NotStarted { .. }), "only a started project opens sessions: {err}");
    orchestra.projects().start(&def, None).await.unwrap();
    let session = orchestra.open_project_session(&def).await.unwrap();
    assert_eq!(
        (session.cwd.as_path(), session.additional_dirs.as_slice()),
        (root.join("app").as_path(), &[root.join("shared")][..])
    );
    assert_eq!(orchestra.project_of_session(&session.id).await.as_deref(), Some("web"));
    engine.set_mode(&session.id, "accept-edits").await.unwrap();

    let events =
        drain(engine.send_message(&session.id, vec![ContentPart::text("write everywhere")]).await.unwrap()).await;
    assert!(root.join("app/in-workdir.txt").exists(), "inside the workdir: {events:#?}");
    assert!(root.join("shared/in-paths.txt").exists(), "inside `paths`");
    assert!(!root.join("outside.txt").exists(), "the project root is not on the allow-list");
    assert!(!std::path::Path::new("/etc/ratchet-nope.txt").exists());
    let failed: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            ChatEvent::ToolCallUpdated(c) if c.status == ToolCallStatus::Failed => c.output.clone(),
            _ => None,
        })
        .collect();
    assert_eq!(failed.len(), 2, "the two writes outside are refused: {events:#?}");
    assert!(failed.iter().all(|f| f.contains("outside the session's directories")), "{failed:#?}");

    // Its workers and sub-agents get the same roots.
    let child = EngineApi::create_child_session(&engine, session.id.clone(), ChildSpec::default()).await.unwrap();
    assert_eq!((child.cwd, child.additional_dirs), (root.join("app"), vec![root.join("shared")]));
    assert_eq!(orchestra.project_of_session(&child.id).await.as_deref(), Some("web"), "a child works for the project");

    // A paused project opens no new sessions.
    orchestra.projects().pause("web").await.unwrap();
    assert!(matches!(orchestra.open_project_session(&def).await, Err(ProjectError::Paused { .. })));
    orchestra.shutdown().await;
    engine.shutdown().await;
}
