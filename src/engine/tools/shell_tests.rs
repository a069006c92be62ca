//! Tests of the `shell` tool: local runs (exit codes, timeout, cancel, caps, redaction) and
//! delegation to the editor's terminals.

use std::path::PathBuf;
use std::time::Instant;

use super::*;
use crate::engine::tools::redact::Redactor;
use crate::engine::tools::testutil::{FakeHost, context, context_with, run};

fn root() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    (dir, root)
}

#[tokio::test]
async fn reports_output_and_exit_code() {
    let (_d, root) = root();
    let cx = context(&root);
    let out = run(&ShellTool, &cx, json!({"command": "echo out; echo err >&2; exit 3"})).await;
    assert_eq!(out.content, "out\n[stderr]\nerr\n[exit code: 3]");
    assert!(out.is_error);
    assert_eq!(out.display, vec![Display::Text(fenced(&out.content))]);

    let out = run(&ShellTool, &cx, json!({"command": "pwd"})).await;
    assert_eq!(out.content, format!("{}\n[exit code: 0]", root.display()));
    assert!(!out.is_error);

    let out = run(&ShellTool, &cx, json!({"command": "true"})).await;
    assert_eq!(out.content, "[exit code: 0]");

    // stdin is closed: a program waiting for input sees end-of-file at once.
    let out = run(&ShellTool, &cx, json!({"command": "cat; echo after"})).await;
    assert_eq!(out.content, "after\n[exit code: 0]");
}

#[tokio::test]
async fn timeout_kills_the_whole_process_group() {
    let (_d, root) = root();
    let cx = context(&root);
    let started = Instant::now();
    let out =
        run(&ShellTool, &cx, json!({"command": "sleep 30 & echo $! > bg.pid; echo started; wait", "timeout_secs": 1}))
            .await;
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    assert_eq!(out.content, "started\n[timed out after 1s; the command was killed]");
    assert!(out.is_error);
    let pid = std::fs::read_to_string(root.join("bg.pid")).unwrap();
    // The background sleep died with the group (gone, or a zombie awaiting its reaper).
    let stat = format!("/proc/{}/stat", pid.trim());
    let dead = || {
        std::fs::read_to_string(&stat)
            .map_or(true, |s| s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'))
    };
    let deadline = Instant::now() + Duration::from_secs(3);
    while !dead() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(dead(), "background job {} survived the timeout", pid.trim());
}

#[tokio::test]
async fn default_timeout_comes_from_the_context() {
    let (_d, root) = root();
    let mut cx = context(&root);
    cx.shell_timeout = Duration::from_millis(300);
    let out = run(&ShellTool, &cx, json!({"command": "sleep 10"})).await;
    assert_eq!(out.content, "[timed out after 300ms; the command was killed]");
}

#[tokio::test]
async fn cancellation_kills_the_command() {
    let (_d, root) = root();
    let cx = context(&root);
    let cancel = cx.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        cancel.cancel();
    });
    let started = Instant::now();
    let out = run(&ShellTool, &cx, json!({"command": "echo begun; sleep 30"})).await;
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    assert_eq!(out.content, "begun\n[cancelled; the command was killed]");
    assert!(out.is_error);
}

#[tokio::test]
async fn background_job_holding_the_pipe_does_not_block() {
    let (_d, root) = root();
    let started = Instant::now();
    let out = run(&ShellTool, &context(&root), json!({"command": "sleep 20 & echo done"})).await;
    assert!(started.elapsed() < Duration::from_secs(6), "took {:?}", started.elapsed());
    assert_eq!(out.content, "done\n[exit code: 0]");
}

#[tokio::test]
async fn long_output_keeps_head_and_tail() {
    let (_d, root) = root();
    let cmd = "printf 'FIRST\\n'; head -c 200000 /dev/zero | tr '\\0' a; printf '\\nLAST\\n'";
    let out = run(&ShellTool, &context(&root), json!({"command": cmd})).await;
    let total = 6 + 200_000 + 6;
    let cut = total - OUTPUT_LIMIT;
    assert!(out.content.starts_with("FIRST\naaa"), "{}", &out.content[..20]);
    assert!(out.content.contains(&format!("\n[… {cut} bytes cut …]\n")), "marker missing");
    assert!(out.content.ends_with("aaa\nLAST\n[exit code: 0]"));
    assert!(out.content.len() < OUTPUT_LIMIT + 100, "{}", out.content.len());
}

#[test]
fn capture_and_render_share_the_budget() {
    let mut out = Capture::default();
    for _ in 0..100 {
        out.push(&[b'o'; 1000]);
    }
    let mut err = Capture::default();
    err.push(b"E1\n");
    err.push(&[b'e'; 50_000]);
    err.push(b"\nE2");
    let text = render(&out, &err);
    // stderr keeps a quarter of the budget, stdout the rest.
    let err_budget = OUTPUT_LIMIT / 4;
    assert!(text.contains(&format!("[… {} bytes cut …]", 100_000 - (OUTPUT_LIMIT - err_budget))));
    assert!(text.contains(&format!("[… {} bytes cut …]", 50_006 - err_budget)));
    assert!(text.contains("[stderr]\nE1\n"));
    assert!(text.ends_with("e\nE2"));

    let mut small = Capture::default();
    small.push(b"hello");
    assert_eq!(render(&small, &Capture::default()), "hello");
    assert_eq!(small.render(4), "he\n[… 1 bytes cut …]\nlo");
}

#[tokio::test]
async fn secrets_in_output_are_redacted() {
    let (_d, root) = root();
    let mut cx = context(&root);
    cx.redactor = Arc::new(crate::engine::tools::redact::Redactor::new(vec![(
        "OPENAI_API_KEY".into(),
        "sk-test-1234567890".into(),
    )]));
    let out = run(&ShellTool, &cx, json!({"command": "echo key=sk-test-1234567890"})).await;
    assert_eq!(out.content, "key=[REDACTED:OPENAI_API_KEY]\n[exit code: 0]");
    assert!(
        matches!(&out.display[0], Display::Text(t) if t.contains("[REDACTED:OPENAI_API_KEY]") && !t.contains("sk-test"))
    );
}

#[tokio::test]
async fn runs_in_the_editor_terminal_when_it_can() {
    let (_d, root) = root();
    let host =
        Arc::new(FakeHost { run: true, terminal_output: "building sk-test-1234567890\n".into(), ..Default::default() });
    let mut cx = context_with(&root, host.clone());
    cx.redactor = Arc::new(Redactor::new(vec![("API_KEY".into(), "sk-test-1234567890".into())]));
    let out = run(&ShellTool, &cx, json!({"command": "cargo build", "timeout_secs": 5})).await;
    assert_eq!(host.calls(), vec![format!("run cargo build in {} (5s)", root.display())]);
    assert_eq!(out.content, "building [REDACTED:API_KEY]\n[exit code: 3]");
    assert!(out.is_error);
    assert_eq!(out.display, vec![Display::Terminal("term-1".into())]);

    // An editor without terminals is never asked.
    let host = FakeHost::new(true, true, false);
    let out = run(&ShellTool, &context_with(&root, host.clone()), json!({"command": "echo local"})).await;
    assert_eq!(out.content, "local\n[exit code: 0]");
    assert!(host.calls().is_empty());
}

#[tokio::test]
async fn bad_arguments() {
    let (_d, root) = root();
    let cx = context(&root);
    for (args, want) in [
        (json!({}), "invalid arguments for shell: missing field `command`"),
        (json!({"command": "  "}), "command is empty"),
        (json!({"command": "ls", "timeout_secs": 0}), "timeout_secs must be at least 1"),
        (
            json!({"command": "ls", "timeout_secs": -1}),
            "invalid arguments for shell: invalid value: integer `-1`, expected u64",
        ),
    ] {
        let out = run(&ShellTool, &cx, args).await;
        assert_eq!((out.is_error, out.content.as_str()), (true, want));
    }
    let p = ShellTool.preview(&json!({"command": "cargo test\n--all"}), &cx).await;
    assert_eq!(p.title, "Run `cargo test …`");
    assert_eq!(ShellTool.preview(&json!({"command": "cargo test"}), &cx).await.title, "Run `cargo test`");
}
