//! `list_dir`: the entries of one directory, sorted, directories marked with `/`.
//!
//! Shows everything (hidden files and ignored ones too: the model asked for this directory),
//! except entries a deny rule protects.

use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};

use super::common::{display_path, finish, parse_args, preview_path};
use super::sandbox::Guard;
use super::{Location, Preview, Tool, ToolContext, ToolKind, ToolOutput};
use crate::engine::provider::ToolSpec;

/// Most entries listed.
pub const MAX_ENTRIES: usize = 1000;

/// Lists a directory.
pub struct ListDirTool;

#[derive(Deserialize)]
struct Args {
    path: Option<String>,
}

impl Tool for ListDirTool {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "list_dir".into(),
            description: "List the entries of a directory (not recursive), sorted; directories end with `/`. \
                          Use glob to find files recursively."
                .into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "Directory, relative to the session directory or absolute (default: the session directory)."}
                },
                "additionalProperties": false
            }),
        }
    }

    fn kind(&self) -> ToolKind {
        ToolKind::Read
    }

    fn preview<'a>(&'a self, args: &'a Value, cx: &'a ToolContext) -> BoxFuture<'a, Preview> {
        Box::pin(async move {
            let raw = parse_args::<Args>("list_dir", args).ok().and_then(|a| a.path).unwrap_or_else(|| ".".into());
            let (shown, path) = preview_path(cx, &raw);
            Preview {
                title: format!("List {shown}"),
                locations: path.into_iter().map(|path| Location { path, line: None }).collect(),
                display: vec![],
            }
        })
    }

    fn run<'a>(&'a self, args: Value, cx: &'a ToolContext) -> BoxFuture<'a, ToolOutput> {
        Box::pin(async move { finish(cx, list(cx, &args).await) })
    }
}

async fn list(cx: &ToolContext, args: &Value) -> Result<ToolOutput, String> {
    let a: Args = parse_args("list_dir", args)?;
    let guard = Guard::new(cx);
    let path = guard.resolve(a.path.as_deref().unwrap_or("."))?;
    let shown = display_path(cx, &path);
    let mut dir = tokio::fs::read_dir(&path).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("{shown} does not exist"),
        std::io::ErrorKind::NotADirectory => format!("{shown} is a file, not a directory; use read_file to read it"),
        _ => format!("cannot list {shown}: {e}"),
    })?;
    let mut entries = Vec::new();
    while let Some(entry) = dir.next_entry().await.map_err(|e| format!("cannot list {shown}: {e}"))? {
        let full = entry.path();
        if guard.is_denied(&full) {
            continue;
        }
        let mut name = entry.file_name().to_string_lossy().into_owned();
        // Follows symlinks: a link to a directory is listed as a directory.
        if tokio::fs::metadata(&full).await.is_ok_and(|m| m.is_dir()) {
            name.push('/');
        }
        entries.push(name);
    }
    entries.sort();
    let total = entries.len();
    let mut text = if total == 0 { format!("{shown} is empty") } else { String::new() };
    for e in entries.iter().take(MAX_ENTRIES) {
        text.push_str(e);
        text.push('\n');
    }
    if total > MAX_ENTRIES {
        text.push_str(&format!("[{} more entries not shown; use glob with a narrower pattern]\n", total - MAX_ENTRIES));
    }
    let mut out = ToolOutput::text(text);
    out.locations = vec![Location { path, line: None }];
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::tools::testutil::{context, run};

    #[tokio::test]
    async fn lists_sorted_with_dir_marks() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("src/sub")).unwrap();
        std::fs::create_dir(root.join("keys")).unwrap();
        std::fs::write(root.join("src/b.rs"), "").unwrap();
        std::fs::write(root.join("src/a.rs"), "").unwrap();
        std::fs::write(root.join("src/.hidden"), "").unwrap();
        std::fs::write(root.join("Cargo.toml"), "").unwrap();
        let mut cx = context(&root);
        cx.deny_paths = vec![format!("{}/keys/**", root.display())];

        let out = run(&ListDirTool, &cx, json!({"path": "src"})).await;
        assert_eq!(out.content, ".hidden\na.rs\nb.rs\nsub/\n");
        assert_eq!(out.locations[0].path, root.join("src"));
        let out = run(&ListDirTool, &cx, json!({})).await;
        assert_eq!(out.content, "Cargo.toml\nsrc/\n", "denied keys/ is hidden");
        let out = run(&ListDirTool, &cx, json!({"path": "src/sub"})).await;
        assert_eq!(out.content, "src/sub is empty");

        assert_eq!(ListDirTool.preview(&json!({"path": "src"}), &cx).await.title, "List src");
        assert_eq!(ListDirTool.preview(&json!({}), &cx).await.title, "List .");
    }

    #[tokio::test]
    async fn errors() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::write(root.join("f.txt"), "").unwrap();
        let cx = context(&root);
        for (args, want) in [
            (json!({"path": "nope"}), "nope does not exist"),
            (json!({"path": "f.txt"}), "f.txt is a file, not a directory; use read_file to read it"),
            (json!({"path": 3}), "invalid arguments for list_dir: invalid type: integer `3`, expected a string"),
        ] {
            let out = run(&ListDirTool, &cx, args).await;
            assert_eq!((out.is_error, out.content.as_str()), (true, want));
        }
        let out = run(&ListDirTool, &cx, json!({"path": ".."})).await;
        assert!(out.is_error && out.content.contains("outside"));
    }

    #[tokio::test]
    async fn caps_entries() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..MAX_ENTRIES + 5 {
            std::fs::write(dir.path().join(format!("f{i:05}")), "").unwrap();
        }
        let out = run(&ListDirTool, &context(dir.path()), json!({})).await;
        assert_eq!(out.content.lines().count(), MAX_ENTRIES + 1);
        assert!(out.content.ends_with("[5 more entries not shown; use glob with a narrower pattern]\n"));
    }
}
