//! `edit_file`: exact search-and-replace in one file.
//!
//! The model names the text to replace; it must occur exactly once (or `replace_all` is set),
//! so an edit never lands somewhere the model did not mean. Errors say how to fix the call.
//! The editor sees the whole-file diff, before (preview) and after.

use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};

use super::common::{display_path, finish, line_of, parse_args, preview_path, redact_display};
use super::sandbox::resolve;
use super::write::{read_current, write_back};
use super::{Display, Location, Preview, Tool, ToolContext, ToolKind, ToolOutput};
use crate::engine::provider::ToolSpec;

/// Replaces exact text in a file.
pub struct EditFileTool;

#[derive(Deserialize)]
struct Args {
    path: String,
    old_text: String,
    new_text: String,
    #[serde(default)]
    replace_all: bool,
}

/// A computed edit.
#[derive(Debug, PartialEq)]
struct Change {
    old: String,
    new: String,
    /// 1-based line of the first replacement.
    line: u32,
    count: usize,
}

impl Tool for EditFileTool {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "edit_file".into(),
            description: "Replace exact text in a file. old_text must match the file exactly (whitespace and \
                          indentation included) and occur once, unless replace_all is true. Read the file first."
                .into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "File path, relative to the session directory or absolute."},
                    "old_text": {"type": "string", "description": "Exact text to replace; include enough lines to make it unique."},
                    "new_text": {"type": "string", "description": "Replacement text."},
                    "replace_all": {"type": "boolean", "description": "Replace every occurrence (default false)."}
                },
                "required": ["path", "old_text", "new_text"],
                "additionalProperties": false
            }),
        }
    }

    fn kind(&self) -> ToolKind {
        ToolKind::Edit
    }

    fn preview<'a>(&'a self, args: &'a Value, cx: &'a ToolContext) -> BoxFuture<'a, Preview> {
        Box::pin(async move {
            let Ok(a) = parse_args::<Args>("edit_file", args) else {
                return Preview { title: "Edit file".into(), locations: vec![], display: vec![] };
            };
            let (shown, path) = preview_path(cx, &a.path);
            let mut preview = Preview { title: format!("Edit {shown}"), locations: vec![], display: vec![] };
            let Some(path) = path else { return preview };
            let mut line = None;
            if let Ok(Some(current)) = read_current(cx, &path, &shown).await
                && let Ok(change) = apply(&current, &a, &shown)
            {
                line = Some(change.line);
                let mut diff = Display::Diff { path: path.clone(), old: Some(change.old), new: change.new };
                redact_display(cx, &mut diff);
                preview.display.push(diff);
            }
            preview.locations.push(Location { path, line });
            preview
        })
    }

    fn run<'a>(&'a self, args: Value, cx: &'a ToolContext) -> BoxFuture<'a, ToolOutput> {
        Box::pin(async move { finish(cx, edit(cx, &args).await) })
    }
}

async fn edit(cx: &ToolContext, args: &Value) -> Result<ToolOutput, String> {
    let a: Args = parse_args("edit_file", args)?;
    let path = resolve(cx, &a.path)?;
    let shown = display_path(cx, &path);
    let current = read_current(cx, &path, &shown)
        .await?
        .ok_or_else(|| format!("{shown} does not exist; use write_file to create it"))?;
    let change = apply(&current, &a, &shown)?;
    write_back(cx, &path, &shown, &change.new).await?;
    let content = match change.count {
        1 => format!("Edited {shown}: replaced 1 occurrence at line {}", change.line),
        n => format!("Edited {shown}: replaced {n} occurrences, the first at line {}", change.line),
    };
    Ok(ToolOutput {
        content,
        is_error: false,
        display: vec![Display::Diff { path: path.clone(), old: Some(change.old), new: change.new }],
        locations: vec![Location { path, line: Some(change.line) }],
        plan: None,
    })
}

/// Computes the edit on `current`, or says why it cannot be made.
fn apply(current: &str, a: &Args, shown: &str) -> Result<Change, String> {
    if a.old_text.is_empty() {
        return Err("old_text is empty; to create a file or replace all of it use write_file".into());
    }
    if a.old_text == a.new_text {
        return Err("old_text and new_text are the same; there is nothing to change".into());
    }
    let (mut old_text, mut new_text) = (a.old_text.clone(), a.new_text.clone());
    let mut count = current.matches(&old_text).count();
    // The model usually writes `\n`; match a CRLF file anyway and keep its line endings.
    if count == 0 && current.contains("\r\n") && old_text.contains('\n') && !old_text.contains("\r\n") {
        old_text = old_text.replace('\n', "\r\n");
        new_text = new_text.replace("\r\n", "\n").replace('\n', "\r\n");
        count = current.matches(&old_text).count();
    }
    if count == 0 {
        return Err(not_found_hint(current, &a.old_text, shown));
    }
    if count > 1 && !a.replace_all {
        return Err(format!(
            "old_text occurs {count} times in {shown}; add surrounding lines to make it unique or set replace_all"
        ));
    }
    let first = current.find(&old_text).unwrap_or(0);
    let new =
        if a.replace_all { current.replace(&old_text, &new_text) } else { current.replacen(&old_text, &new_text, 1) };
    Ok(Change { old: current.to_string(), new, line: line_of(current, first), count })
}

/// Why `old_text` was not found, as precisely as cheap checks can tell.
fn not_found_hint(current: &str, old_text: &str, shown: &str) -> String {
    let base = format!("old_text was not found in {shown}");
    if old_text.contains("[REDACTED:") {
        return format!(
            "{base}: it contains a [REDACTED:…] marker, which hides a secret value you cannot see; \
             choose old_text that does not include that part"
        );
    }
    let squash = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    if squash(current).contains(&squash(old_text)) {
        return format!(
            "{base} exactly, but it matches when whitespace is ignored; read the file again and copy \
             the indentation and line breaks exactly"
        );
    }
    format!("{base}; read the file again and copy the text exactly, including whitespace")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::tools::testutil::{FakeHost, context, context_with, run};
    use std::path::PathBuf;

    fn setup(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir(root.join("src")).unwrap();
        std::fs::write(root.join("src/lib.rs"), text).unwrap();
        (dir, root)
    }

    const LIB: &str = "fn a() {\n    1\n}\n\nfn b() {\n    1\n}\n";

    #[tokio::test]
    async fn unique_edit_writes_and_reports_line() {
        let (_d, root) = setup(LIB);
        let cx = context(&root);
        let args = json!({"path": "src/lib.rs", "old_text": "fn b() {\n    1", "new_text": "fn b() {\n    2"});
        let p = EditFileTool.preview(&args, &cx).await;
        let path = root.join("src/lib.rs");
        let want_new = "fn a() {\n    1\n}\n\nfn b() {\n    2\n}\n";
        assert_eq!(p.title, "Edit src/lib.rs");
        assert_eq!(p.locations, vec![Location { path: path.clone(), line: Some(5) }]);
        assert_eq!(p.display, vec![Display::Diff { path: path.clone(), old: Some(LIB.into()), new: want_new.into() }]);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), LIB, "preview must not write");

        let out = run(&EditFileTool, &cx, args).await;
        assert_eq!(out.content, "Edited src/lib.rs: replaced 1 occurrence at line 5");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), want_new);
        assert_eq!(out.display, p.display);
        assert_eq!(out.locations, vec![Location { path, line: Some(5) }]);
    }

    #[tokio::test]
    async fn multiple_occurrences_need_replace_all() {
        let (_d, root) = setup(LIB);
        let cx = context(&root);
        let out =
            run(&EditFileTool, &cx, json!({"path": "src/lib.rs", "old_text": "    1", "new_text": "    9"})).await;
        assert!(out.is_error);
        assert_eq!(
            out.content,
            "old_text occurs 2 times in src/lib.rs; add surrounding lines to make it unique or set replace_all"
        );
        assert_eq!(std::fs::read_to_string(root.join("src/lib.rs")).unwrap(), LIB);

        let out = run(
            &EditFileTool,
            &cx,
            json!({"path": "src/lib.rs", "old_text": "    1", "new_text": "    9", "replace_all": true}),
        )
        .await;
        assert_eq!(out.content, "Edited src/lib.rs: replaced 2 occurrences, the first at line 2");
        assert_eq!(std::fs::read_to_string(root.join("src/lib.rs")).unwrap(), LIB.replace("    1", "    9"));
    }

    #[tokio::test]
    async fn missing_text_and_other_errors_have_hints() {
        let (_d, root) = setup(LIB);
        let cx = context(&root);
        let cases = [
            (
                json!({"path": "src/lib.rs", "old_text": "fn c()", "new_text": "x"}),
                "old_text was not found in src/lib.rs; read the file again and copy the text exactly, including whitespace",
            ),
            (
                json!({"path": "src/lib.rs", "old_text": "fn a() {\n 1", "new_text": "x"}),
                "old_text was not found in src/lib.rs exactly, but it matches when whitespace is ignored; read the file again and copy the indentation and line breaks exactly",
            ),
            (
                json!({"path": "src/lib.rs", "old_text": "", "new_text": "x"}),
                "old_text is empty; to create a file or replace all of it use write_file",
            ),
            (
                json!({"path": "src/lib.rs", "old_text": "fn a", "new_text": "fn a"}),
                "old_text and new_text are the same; there is nothing to change",
            ),
            (
                json!({"path": "src/new.rs", "old_text": "a", "new_text": "b"}),
                "src/new.rs does not exist; use write_file to create it",
            ),
            (
                json!({"path": "src/lib.rs", "old_text": "a"}),
                "invalid arguments for edit_file: missing field `new_text`",
            ),
        ];
        for (args, want) in cases {
            let out = run(&EditFileTool, &cx, args).await;
            assert_eq!((out.is_error, out.content.as_str()), (true, want));
        }
        let out =
            run(&EditFileTool, &cx, json!({"path": "src/lib.rs", "old_text": "k=[REDACTED:X]", "new_text": "b"})).await;
        assert!(out.content.contains("hides a secret value"), "{}", out.content);
        assert_eq!(std::fs::read_to_string(root.join("src/lib.rs")).unwrap(), LIB);
    }

    #[tokio::test]
    async fn crlf_files_keep_their_line_endings() {
        let (_d, root) = setup("a\r\nb\r\nc\r\n");
        let out =
            run(&EditFileTool, &context(&root), json!({"path": "src/lib.rs", "old_text": "a\nb", "new_text": "x\ny"}))
                .await;
        assert!(!out.is_error, "{}", out.content);
        assert_eq!(std::fs::read_to_string(root.join("src/lib.rs")).unwrap(), "x\r\ny\r\nc\r\n");
    }

    #[tokio::test]
    async fn edits_the_editor_buffer_when_it_can() {
        let (_d, root) = setup(LIB);
        let path = root.join("src/lib.rs");
        let host = FakeHost::new(true, true, false).with_buffer(path.clone(), "unsaved = 1;\n");
        let cx = context_with(&root, host.clone());
        let out = run(&EditFileTool, &cx, json!({"path": "src/lib.rs", "old_text": "= 1", "new_text": "= 2"})).await;
        assert!(!out.is_error, "{}", out.content);
        assert_eq!(host.buffer(&path).as_deref(), Some("unsaved = 2;\n"));
        assert_eq!(
            host.calls(),
            vec![format!("read {} None None", path.display()), format!("write {}", path.display())]
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), LIB);

        // An editor that can neither read nor write is never asked.
        let host = FakeHost::new(false, false, false);
        let cx = context_with(&root, host.clone());
        let out = run(&EditFileTool, &cx, json!({"path": "src/lib.rs", "old_text": "fn a", "new_text": "fn z"})).await;
        assert!(!out.is_error, "{}", out.content);
        assert!(host.calls().is_empty());
        assert!(std::fs::read_to_string(&path).unwrap().starts_with("fn z"));
    }
}
