//! LSP diagnostics over the real binary and a real language server: pyright from npm, pinned,
//! installed by `.ci/install-lsp-servers` (run by `scripts/test`). An edit that introduces a
//! type error returns that error with its line in the tool result the model gets (and its
//! count in the editor's tool call); fixing it clears it; the `diagnostics` tool lists it;
//! the server stops with ratchet. Without pyright (no node, no registry) those tests skip
//! with a message. A missing or crashing server never fails an edit.

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::support::{MockLlm, MockReply, TestEnv};

/// The directory holding `pyright-langserver`, if the pinned pyright is installed.
fn pyright_bin() -> Option<PathBuf> {
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/lsp-servers/node_modules/.bin");
    let has_node =
        std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join("node").is_file()));
    if bin.join("pyright-langserver").is_file() && has_node {
        Some(bin)
    } else {
        eprintln!(
            "skipping: pyright is not installed ({} is missing, or node is not on PATH); run .ci/install-lsp-servers",
            bin.join("pyright-langserver").display()
        );
        None
    }
}

const APP: &str = "def double(x: int) -> int:\n    return x * 2\n\n\nvalue: int = double(2)\n";

/// The command lines of the processes whose `HOME` is `home` (each test env has its own).
#[cfg(target_os = "linux")]
fn processes_with_home(home: &Path) -> Vec<String> {
    let wanted = format!("HOME={}", home.display()).into_bytes();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let proc_dir = entry.path();
        let environ = std::fs::read(proc_dir.join("environ")).unwrap_or_default();
        if environ.split(|b| *b == 0).any(|var| var == wanted.as_slice()) {
            let cmdline = std::fs::read(proc_dir.join("cmdline")).unwrap_or_default();
            found.push(String::from_utf8_lossy(&cmdline).replace('\0', " "));
        }
    }
    found
}

#[tokio::test]
async fn a_type_error_from_an_edit_reaches_the_model_and_fixing_it_clears_it() {
    let Some(bin) = pyright_bin() else { return };
    let mock = MockLlm::start().await;
    let mut env = TestEnv::openai(&mock);
    // pyright is found on PATH, as the built-in default is.
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    env.set("PATH", path);
    // Headroom for a loaded machine; the prompt's own wait is 20 s.
    env.write_config("[lsp]\nwait_secs = 15\n");
    let file = env.workspace().join("app.py");
    std::fs::write(&file, APP).unwrap();

    mock.enqueue(MockReply::tool(
        "call_break",
        "edit_file",
        json!({"path": "app.py", "old_text": "double(2)", "new_text": "double(\"two\")"}),
    ));
    mock.enqueue(MockReply::tool("call_check", "diagnostics", json!({})));
    mock.enqueue(MockReply::text(["I broke it."]));
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;
    client.set_mode(&session, "yolo").await;
    let turn = client.prompt_text(&session, "Break the types").await;
    assert_eq!(turn.stop_reason(), "end_turn", "{:#?}", turn.messages);

    let results = mock.model_requests()[1].tool_results();
    let edit = &results[0].text;
    assert!(edit.starts_with("Edited app.py: replaced 1 occurrence at line 5"), "{edit}");
    assert!(edit.contains("pyright: 1 error in app.py"), "the count reaches the model: {edit}");
    let error_line = edit.lines().find(|l| l.starts_with("app.py:5:")).unwrap_or_else(|| panic!("line 5: {edit}"));
    assert!(error_line.contains("error:") && error_line.contains("'two'"), "{error_line}");
    // The editor's tool call shows the count too, and still completed.
    let calls = turn.tool_calls();
    assert_eq!(calls[0].final_status(), "completed", "{}", calls[0].dump());
    assert!(calls[0].text().contains("pyright: 1 error in app.py"), "{}", calls[0].dump());
    // The workspace check lists the same error.
    let workspace = &mock.model_requests()[2].tool_results().last().unwrap().text.clone();
    assert!(workspace.starts_with("1 error in 1 file"), "{workspace}");
    assert!(workspace.contains(error_line), "{workspace}");
    assert_eq!(calls[1].title(), "Workspace diagnostics");
    assert!(turn.requests("session/request_permission").is_empty());

    // The fix clears it (same server, reused: a second session with the same root).
    mock.enqueue(MockReply::tool(
        "call_fix",
        "edit_file",
        json!({"path": "app.py", "old_text": "double(\"two\")", "new_text": "double(2)"}),
    ));
    mock.enqueue(MockReply::tool("call_file", "diagnostics", json!({"path": "app.py"})));
    mock.enqueue(MockReply::text(["Fixed."]));
    let second = client.new_session(&env.cwd()).await;
    client.set_mode(&second, "yolo").await;
    let turn = client.prompt_text(&second, "Fix it").await;
    assert_eq!(turn.stop_reason(), "end_turn", "{:#?}", turn.messages);
    let requests = mock.model_requests();
    let fixed = &requests[4].tool_results()[0].text;
    assert!(fixed.contains("pyright: no errors or warnings in app.py"), "{fixed}");
    assert!(!fixed.contains("error:"), "{fixed}");
    let checked = &requests[5].tool_results().last().unwrap().text.clone();
    assert_eq!(checked, "pyright: no errors or warnings in app.py");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), APP);

    // The server runs in the workspace while ratchet runs, and stops with it.
    #[cfg(target_os = "linux")]
    {
        let pyrights = || -> Vec<String> {
            processes_with_home(&env.home_dir()).into_iter().filter(|p| p.contains("pyright")).collect()
        };
        assert_eq!(pyrights().len(), 1, "one pyright for the root, shared by both sessions: {:?}", pyrights());
        client.shutdown().await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !pyrights().is_empty() && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(pyrights(), Vec::<String>::new(), "pyright outlived ratchet");
    }
}

#[tokio::test]
async fn a_missing_or_crashing_server_still_lets_the_edit_succeed() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    env.write_config(
        r#"
[lsp.servers.pyright]
command = "/nonexistent/pyright-langserver"
[lsp.servers.crashing]
command = "sh"
args = ["-c", "echo dying >&2; exit 3"]
files = ["*.txt"]
"#,
    );
    std::fs::write(env.workspace().join("app.py"), APP).unwrap();
    mock.enqueue(
        MockReply::text(Vec::<String>::new())
            .tool_call(
                "call_py",
                "edit_file",
                json!({"path": "app.py", "old_text": "double(2)", "new_text": "double(3)"}),
            )
            .tool_call("call_txt", "write_file", json!({"path": "notes.txt", "content": "hello\n"}))
            .tool_call("call_check", "diagnostics", json!({"path": "app.py"})),
    );
    mock.enqueue(MockReply::text(["Done."]));
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;
    client.set_mode(&session, "yolo").await;
    let started = std::time::Instant::now();
    let turn = client.prompt_text(&session, "Edit").await;
    assert_eq!(turn.stop_reason(), "end_turn", "{:#?}", turn.messages);
    assert!(started.elapsed() < std::time::Duration::from_secs(15), "no long wait on a server that cannot run");

    let results = mock.model_requests()[1].tool_results();
    assert_eq!(results[0].text, "Edited app.py: replaced 1 occurrence at line 5", "nothing appended");
    assert_eq!(results[1].text, "Created notes.txt (1 lines)");
    assert!(results[2].text.contains("no diagnostics for app.py"), "the tool says why: {}", results[2].text);
    let calls = turn.tool_calls();
    assert_eq!(calls[0].final_status(), "completed");
    assert_eq!(calls[1].final_status(), "completed");
    assert!(std::fs::read_to_string(env.workspace().join("app.py")).unwrap().contains("double(3)"));
    assert_eq!(std::fs::read_to_string(env.workspace().join("notes.txt")).unwrap(), "hello\n");
}
