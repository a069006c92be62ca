use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::config::{self, DEFAULT_TIMEOUT, Origin};
use super::event::{EventData, EventName, HookEvent, MAX_VARIABLE_BYTES};
use super::runner::{self, MAX_OUTPUT, RunEnd, RunInput};
use super::{BlockReason, Hooks};
use crate::engine::extension::{ToolCallInfo, ToolOutcome};
use crate::engine::secret_env::CommandEnv;
use crate::engine::tools::ToolKind;
use crate::engine::tools::redact::Redactor;

fn parse(text: &str) -> Result<Vec<config::Hook>, String> {
    config::parse(text, Path::new("/ws/.ratchet/hooks.yaml"), Origin::Project)
}

fn edit(cwd: &Path, path: &str) -> ToolCallInfo {
    ToolCallInfo {
        session_id: "s1".into(),
        cwd: cwd.to_path_buf(),
        call_id: "c1".into(),
        tool: "edit_file".into(),
        kind: ToolKind::Edit,
        arguments: json!({"path": path, "old_text": "a", "new_text": "b"}),
        paths: vec![cwd.join(path)],
        command: None,
    }
}

fn shell(cwd: &Path, command: &str) -> ToolCallInfo {
    ToolCallInfo {
        tool: "shell".into(),
        kind: ToolKind::Execute,
        arguments: json!({ "command": command }),
        paths: vec![],
        command: Some(command.into()),
        ..edit(cwd, "x")
    }
}

/// The pre_edit event of an edit of `path` under `/ws`.
fn pre_edit(path: &str) -> HookEvent {
    HookEvent::for_tool_call(&edit(Path::new("/ws"), path), None).pop().unwrap()
}

#[test]
fn a_hooks_file_parses_with_defaults_durations_and_filters() {
    let hooks = parse(
        "# project hooks\nhooks:\n  - event: pre_edit\n    glob: \"*.lock\"\n    command: exit 1\n    timeout: 5s\n\
         \n  - event: post_command\n    matcher: shell\n    command: ./log.sh\n    timeout: 0.5\n\
         \n  - event: session_start\n    command: echo hi\n    timeout: 2\n\
         \n  - event: pre_edit\n    glob: [\"src/**/*.rs\", \"*.toml\"]\n    command: cargo fmt --check\n",
    )
    .unwrap();
    assert_eq!(hooks.len(), 4);
    assert_eq!(hooks[0].event, EventName::PreEdit);
    assert_eq!(hooks[0].glob, ["*.lock"]);
    assert_eq!(hooks[0].timeout, Duration::from_secs(5));
    assert_eq!((hooks[0].index, hooks[0].origin), (1, Origin::Project));
    assert_eq!(hooks[1].tool.as_deref(), Some("shell"), "`matcher` is another name for `tool`");
    assert_eq!(hooks[1].timeout, Duration::from_millis(500));
    assert_eq!(hooks[2].timeout, Duration::from_secs(2));
    assert_eq!(hooks[3].timeout, DEFAULT_TIMEOUT);
    assert_eq!(hooks[3].glob.len(), 2);
    assert!(parse("").unwrap().is_empty() && parse("# nothing yet\n").unwrap().is_empty());
    assert!(parse("hooks: []\n").unwrap().is_empty());
}

#[test]
fn a_broken_hooks_file_says_what_is_wrong_and_where() {
    let bad_yaml = parse("hooks:\n  - event: pre_edit\n    command: [oops\n").unwrap_err();
    assert!(bad_yaml.contains("line"), "{bad_yaml}");
    let unknown = parse("hooks:\n  - event: before_edit\n    command: x\n").unwrap_err();
    assert!(unknown.contains("before_edit") && unknown.contains("pre_edit") && unknown.contains("line 2"), "{unknown}");
    let field = parse("hooks:\n  - event: pre_edit\n    comand: x\n").unwrap_err();
    assert!(field.contains("comand"), "{field}");
    let cases = [
        ("hooks:\n  - event: session_start\n    glob: '*.rs'\n    command: x\n", "`glob` applies to pre_edit"),
        ("hooks:\n  - event: fleet_start\n    tool: shell\n    command: x\n", "`tool` applies to the tool events"),
        ("hooks:\n  - event: pre_edit\n    command: x\n    timeout: 1h\n", "at most 5m"),
        ("hooks:\n  - event: pre_edit\n    command: x\n    timeout: soon\n", "not a duration"),
        ("hooks:\n  - event: pre_edit\n    command: '  '\n", "`command` is empty"),
        ("hooks:\n  - event: pre_edit\n    glob: 'src/[a'\n    command: x\n", "not a valid pattern"),
    ];
    for (text, expected) in cases {
        let e = parse(text).unwrap_err();
        assert!(e.contains(expected), "{text:?}: {e}");
    }
    let hook2 =
        parse("hooks:\n  - event: pre_edit\n    command: x\n  - event: pre_edit\n    command: ''\n").unwrap_err();
    assert!(hook2.starts_with("hook 2:"), "the entry is named: {hook2}");
}

#[test]
fn globs_match_file_names_anywhere_and_paths_under_the_session() {
    let hooks = parse(
        "hooks:\n  - event: pre_edit\n    glob: '*.lock'\n    command: x\n\
         \n  - event: pre_edit\n    glob: 'src/*.rs'\n    command: x\n\
         \n  - event: pre_edit\n    glob: 'docs/**'\n    command: x\n\
         \n  - event: pre_tool_call\n    tool: 'mcp__*'\n    command: x\n\
         \n  - event: pre_edit\n    command: x\n",
    )
    .unwrap();
    let matches = |event: &HookEvent| hooks.iter().map(|h| h.applies(event)).collect::<Vec<_>>();
    assert_eq!(matches(&pre_edit("Cargo.lock")), [true, false, false, false, true]);
    assert_eq!(matches(&pre_edit("deep/down/yarn.lock")), [true, false, false, false, true]);
    assert_eq!(matches(&pre_edit("src/main.rs")), [false, true, false, false, true]);
    assert_eq!(matches(&pre_edit("src/deep/mod.rs")), [false, false, false, false, true], "`*` stays in one directory");
    assert_eq!(matches(&pre_edit("docs/a/b.md")), [false, false, true, false, true]);
    let mcp =
        ToolCallInfo { tool: "mcp__github__create_issue".into(), kind: ToolKind::Other, ..edit(Path::new("/ws"), "x") };
    let events = HookEvent::for_tool_call(&mcp, None);
    assert_eq!(events.len(), 1, "a tool of kind other has only pre_tool_call");
    assert_eq!(matches(&events[0]), [false, false, false, true, false]);
    let builtin = HookEvent::for_tool_call(&shell(Path::new("/ws"), "ls"), None);
    assert_eq!(
        builtin.iter().map(HookEvent::name).collect::<Vec<_>>(),
        [EventName::PreToolCall, EventName::PreCommand]
    );
    assert_eq!(matches(&builtin[0]), [false; 5], "the tool filter: shell is not mcp__*");
}

#[test]
fn events_are_json_with_their_place_and_variables_with_safe_names_and_values() {
    let call = edit(Path::new("/ws"), "a b/it's $(touch pwned).txt");
    let outcome = ToolOutcome { is_error: false, cancelled: false, output: "done\0!".into() };
    let event = HookEvent::for_tool_call(&call, Some(&outcome)).pop().unwrap();
    let json = event.to_json();
    assert_eq!(json["event"], "post_edit");
    assert_eq!(json["session_id"], "s1");
    assert_eq!(json["cwd"], "/ws");
    assert_eq!(json["tool"], "edit_file");
    assert_eq!(json["kind"], "edit");
    assert_eq!(json["path"], "/ws/a b/it's $(touch pwned).txt");
    assert_eq!(json["arguments"]["new_text"], "b");
    assert_eq!(json["is_error"], false);
    let vars: std::collections::HashMap<String, String> = event.variables().into_iter().collect();
    assert_eq!(vars["RATCHET_EVENT"], "post_edit");
    assert_eq!(vars["RATCHET_PATH"], "/ws/a b/it's $(touch pwned).txt");
    assert_eq!(vars["RATCHET_PATHS"], "/ws/a b/it's $(touch pwned).txt");
    assert_eq!(vars["RATCHET_OUTPUT"], "done!", "no NUL byte reaches the environment");
    assert_eq!(vars["RATCHET_IS_ERROR"], "false");
    assert!(vars["RATCHET_ARGUMENTS"].starts_with('{'));
    assert!(!vars.contains_key("RATCHET_COMMAND"), "null fields are left out");

    let big = HookEvent::in_session(
        "s1",
        Path::new("/ws"),
        EventData::CronFired { cron_id: "c1".into(), schedule: "5m".into(), prompt: "é".repeat(MAX_VARIABLE_BYTES) },
    );
    let vars: std::collections::HashMap<String, String> = big.variables().into_iter().collect();
    assert!(vars["RATCHET_PROMPT"].len() <= MAX_VARIABLE_BYTES, "cut at a character boundary");
    assert_eq!(big.to_json()["prompt"].as_str().unwrap().len(), 2 * MAX_VARIABLE_BYTES, "stdin has all of it");
}

fn input<'a>(
    cwd: &'a Path,
    timeout: Duration,
    stdin: &str,
    variables: &'a [(String, String)],
    env: &'a CommandEnv,
    redactor: &'a Redactor,
) -> RunInput<'a> {
    RunInput { cwd, timeout, stdin: stdin.as_bytes().to_vec(), variables, env, redactor }
}

#[tokio::test]
async fn a_hook_reads_the_event_on_stdin_and_its_values_are_never_run_as_code() {
    let dir = tempfile::tempdir().unwrap();
    let event = HookEvent::for_tool_call(&edit(dir.path(), "x $(touch pwned) `touch pwned2`;"), None).pop().unwrap();
    let stdin = event.to_json().to_string();
    let variables = event.variables();
    let (env, redactor) = (CommandEnv::default(), Redactor::default());
    let command = "cat > event.json; printf %s \"$RATCHET_PATH\" > path.txt; echo $RATCHET_PATH; echo said >&2; exit 3";
    let run =
        runner::run(command, input(dir.path(), Duration::from_secs(10), &stdin, &variables, &env, &redactor)).await;
    assert_eq!(run.end, RunEnd::Exited(3));
    assert!(!run.succeeded());
    assert!(run.output.ends_with("said"), "stdout, then stderr: {:?}", run.output);
    let got: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("event.json")).unwrap()).unwrap();
    assert_eq!(got, event.to_json());
    let path = std::fs::read_to_string(dir.path().join("path.txt")).unwrap();
    assert_eq!(path, dir.path().join("x $(touch pwned) `touch pwned2`;").to_str().unwrap());
    assert!(!dir.path().join("pwned").exists() && !dir.path().join("pwned2").exists(), "even unquoted, not run");
}

/// True once `pid` is gone (or a zombie waiting for its parent).
fn is_dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_hook_past_its_timeout_is_killed_with_everything_it_started() {
    let dir = tempfile::tempdir().unwrap();
    let (env, redactor) = (CommandEnv::default(), Redactor::default());
    let started = std::time::Instant::now();
    let command = "sleep 30 & echo $! > bg.pid; echo waiting; wait";
    let run = runner::run(command, input(dir.path(), Duration::from_millis(300), "", &[], &env, &redactor)).await;
    assert_eq!(run.end, RunEnd::TimedOut(Duration::from_millis(300)));
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert_eq!(run.output, "waiting", "what it said before is kept");
    let pid: u32 = std::fs::read_to_string(dir.path().join("bg.pid")).unwrap().trim().parse().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !is_dead(pid) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(is_dead(pid), "the background sleep {pid} of a timed-out hook was killed");
}

#[tokio::test]
async fn hook_output_is_bounded_and_redacted_and_a_missing_directory_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let env = CommandEnv::default();
    let redactor = Redactor::new(vec![("MY_TOKEN".into(), "tok-1234567890".into())]);
    let command = "echo the token is tok-1234567890; head -c 100000 /dev/zero | tr '\\0' x";
    let run = runner::run(command, input(dir.path(), Duration::from_secs(10), "", &[], &env, &redactor)).await;
    assert!(run.succeeded());
    assert!(run.output.starts_with("the token is [REDACTED:MY_TOKEN]"), "{}", &run.output[..60]);
    assert!(run.output.len() < MAX_OUTPUT + 100 && run.output.contains("more bytes cut"), "{}", run.output.len());
    let gone = dir.path().join("gone");
    let run = runner::run("true", input(&gone, Duration::from_secs(10), "", &[], &env, &redactor)).await;
    assert!(matches!(&run.end, RunEnd::NotStarted(why) if why.contains("gone")), "{:?}", run.end);
}

fn write(path: PathBuf, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[tokio::test]
async fn pre_hooks_refuse_with_their_output_and_a_broken_file_refuses_everything() {
    let (project, home) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let cwd = project.path();
    write(
        cwd.join(".ratchet/hooks.yaml"),
        "hooks:\n  - event: pre_edit\n    glob: '*.lock'\n    command: echo \"do not edit $(basename \"$RATCHET_PATH\")\" >&2; exit 2\n",
    );
    write(home.path().join("hooks.yaml"), "hooks:\n  - event: pre_command\n    command: 'true'\n");
    let hooks = Hooks::new(home.path(), TaskTracker::new(), CancellationToken::new());
    assert_eq!(hooks.load(cwd).hooks.len(), 2, "both files apply");

    let refused = hooks.before_tool(&edit(cwd, "Cargo.lock")).await.unwrap_err();
    let BlockReason::Refused { event, run, .. } = &refused else { panic!("{refused:?}") };
    assert_eq!((*event, &run.end), (EventName::PreEdit, &RunEnd::Exited(2)));
    let text = refused.to_string();
    assert!(text.starts_with("Blocked by the pre_edit hook in ") && text.contains("exit code 2"), "{text}");
    assert!(text.ends_with("\ndo not edit Cargo.lock"), "{text}");
    hooks.before_tool(&edit(cwd, "src/main.rs")).await.expect("no hook on that path");
    hooks.before_tool(&shell(cwd, "ls")).await.expect("a passing pre_command hook");

    write(home.path().join("hooks.yaml"), "hooks:\n  - event: pre_command\n   command: 'true'\n");
    let broken = hooks.before_tool(&shell(cwd, "ls")).await.unwrap_err();
    let text = broken.to_string();
    assert!(matches!(broken, BlockReason::BrokenFile(_)), "{broken:?}");
    assert!(text.contains(home.path().join("hooks.yaml").to_str().unwrap()) && text.contains("line"), "{text}");
    assert!(text.contains("ratchet hooks list"), "{text}");
}

#[tokio::test]
async fn fired_hooks_run_in_the_background_on_the_tracker_and_timeouts_refuse() {
    let (project, home) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let cwd = project.path();
    write(
        cwd.join(".ratchet/hooks.yaml"),
        "hooks:\n  - event: post_command\n    command: cat > post.json\n\
         \n  - event: pre_tool_call\n    tool: slow\n    timeout: 200ms\n    command: sleep 10\n",
    );
    let tasks = TaskTracker::new();
    let hooks = Hooks::new(home.path(), tasks.clone(), CancellationToken::new());
    let call = shell(cwd, "cargo test");
    let outcome = ToolOutcome { is_error: true, cancelled: false, output: "1 failed".into() };
    hooks.after_tool(&call, &outcome);
    tasks.close();
    tokio::time::timeout(Duration::from_secs(10), tasks.wait()).await.expect("the fired hooks end");
    let got: serde_json::Value = serde_json::from_slice(&std::fs::read(cwd.join("post.json")).unwrap()).unwrap();
    assert_eq!((got["event"].as_str(), got["command"].as_str()), (Some("post_command"), Some("cargo test")));
    assert_eq!((got["is_error"].as_bool(), got["output"].as_str()), (Some(true), Some("1 failed")));

    let slow = ToolCallInfo { tool: "slow".into(), kind: ToolKind::Read, ..edit(cwd, "x") };
    let started = std::time::Instant::now();
    let refused = hooks.before_tool(&slow).await.unwrap_err();
    assert!(refused.to_string().contains("timed out after 200ms"), "{refused}");
    assert!(started.elapsed() < Duration::from_secs(5));
}
