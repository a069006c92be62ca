//! `ratchet agents list`: agent definitions from `.ratchet/agents/*.yaml`, Claude Code's
//! `.claude/agents/*.md` and `RATCHET_HOME/agents/`, project over user, with a broken file
//! named and skipped.

use serde_json::Value;

use crate::support::TestEnv;

fn write(path: std::path::PathBuf, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[tokio::test]
async fn definitions_are_listed_with_where_they_came_from_and_broken_files_are_named() {
    let env = TestEnv::new();
    let ws = env.workspace();
    write(
        ws.join(".claude/agents/reviewer.md"),
        "---\nname: reviewer\ndescription: Reviews diffs\ntools: read_file, grep\nmodel: sonnet\n---\nYou review code.\n",
    );
    write(ws.join(".ratchet/agents/coder.yaml"), "system_prompt: You write code.\nprovider: local\nmodel: qwen3\n");
    write(ws.join(".ratchet/agents/broken.yaml"), "system_prompt: [oops\n");
    write(env.ratchet_home().join("agents/reviewer.yaml"), "system_prompt: shadowed\n");
    write(env.ratchet_home().join("agents/planner.md"), "Plan the work.\n");

    let cwd = ws.to_str().unwrap();
    let out = env.run(&["agents", "list", "--cwd", cwd]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "a header and three agents: {text}");
    assert!(lines[1].starts_with("coder") && lines[1].contains("local/qwen3"), "{text}");
    assert!(lines[2].starts_with("reviewer") && lines[2].contains("project (.claude)"), "{text}");
    assert!(lines[2].contains("read_file,grep") && lines[2].contains("sonnet"), "{text}");
    assert!(lines[3].starts_with("planner") && lines[3].contains("user"), "{text}");
    assert!(err.contains("skipped") && err.contains("broken.yaml"), "the broken file is named: {err}");
    assert!(err.contains("shadowed"), "{err}");

    let out = env.run(&["agents", "list", "--cwd", cwd, "--json"]).await;
    let catalog: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(catalog["agents"][1]["prompt"], "You review code.");
    assert_eq!(catalog["agents"][1]["origin"], "project_claude");
    assert_eq!(catalog["shadowed"][0]["origin"], "user");
    assert!(catalog["skipped"][0]["source"].as_str().unwrap().ends_with("broken.yaml"));
}
