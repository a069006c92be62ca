//! `write_file`: creates or replaces a whole file, and the file access `edit_file` shares.
//!
//! Reads and writes go through the editor when it can (so open buffers stay in sync and
//! unsaved changes are seen), else to disk. The editor is shown the whole-file diff, both as
//! the permission preview and as the result.

use std::path::{Path, PathBuf};

use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::checked_open::{Access, open_checked};
use super::common::{display_path, finish, looks_binary, parse_args, preview_path, redact_display};
use super::sandbox::resolve;
use super::{Display, Location, Preview, Tool, ToolContext, ToolKind, ToolOutput};
use crate::engine::provider::ToolSpec;

/// Creates or overwrites a file.
pub struct WriteFileTool;

#[derive(Deserialize)]
struct Args {
    path: String,
    content: String,
}

impl Tool for WriteFileTool {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "write_file".into(),
            description: "Create a file, or replace a file's whole content. Parent directories are created. \
                          Prefer edit_file for changing part of an existing file."
                .into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "File path, relative to the session directory or absolute."},
                    "content": {"type": "string", "description": "The complete new content of the file."}
                },
                "required": ["path", "content"],
                "additionalProperties": false
            }),
        }
    }

    fn kind(&self) -> ToolKind {
        ToolKind::Edit
    }

    fn preview<'a>(&'a self, args: &'a Value, cx: &'a ToolContext) -> BoxFuture<'a, Preview> {
        Box::pin(async move {
            let Ok(a) = parse_args::<Args>("write_file", args) else {
                return Preview { title: "Write file".into(), locations: vec![], display: vec![] };
            };
            let (shown, path) = preview_path(cx, &a.path);
            let mut display = vec![];
            if let Some(p) = &path
                && let Ok(old) = read_current(cx, p, &shown).await
            {
                let mut diff = Display::Diff { path: p.clone(), old, new: a.content };
                redact_display(cx, &mut diff);
                display.push(diff);
            }
            Preview {
                title: format!("Write {shown}"),
                locations: path.into_iter().map(|path| Location { path, line: None }).collect(),
                display,
            }
        })
    }

    fn run<'a>(&'a self, args: Value, cx: &'a ToolContext) -> BoxFuture<'a, ToolOutput> {
        Box::pin(async move { finish(cx, write(cx, &args).await) })
    }
}

async fn write(cx: &ToolContext, args: &Value) -> Result<ToolOutput, String> {
    let a: Args = parse_args("write_file", args)?;
    let path = resolve(cx, &a.path)?;
    let shown = display_path(cx, &path);
    // A file whose old content cannot be shown (binary) is still replaced.
    let old = match read_current(cx, &path, &shown).await {
        Ok(old) => old,
        Err(e) if e.contains("is a directory") => return Err(e),
        Err(_) => None,
    };
    write_back(cx, &path, &shown, &a.content).await?;
    let lines = a.content.lines().count();
    let what = match &old {
        None => "Created",
        Some(o) if *o == a.content => "Wrote (unchanged)",
        Some(_) => "Wrote",
    };
    Ok(ToolOutput {
        content: format!("{what} {shown} ({lines} lines)"),
        is_error: false,
        display: vec![Display::Diff { path: path.clone(), old, new: a.content }],
        locations: vec![Location { path, line: None }],
        plan: None,
    })
}

/// The current text of a file: through the editor if it can read, else from disk. `None` if
/// the file does not exist. Errors for directories, binary and non-UTF-8 files.
pub(crate) async fn read_current(cx: &ToolContext, path: &Path, shown: &str) -> Result<Option<String>, String> {
    match tokio::fs::metadata(path).await {
        Ok(m) if m.is_dir() => return Err(format!("{shown} is a directory, not a file")),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // Not on disk; the editor may still hold an unsaved new buffer.
            if cx.host.can_read() {
                return Ok(cx.host.read_text_file(path.to_path_buf(), None, None).await.ok());
            }
            return Ok(None);
        }
        Err(e) => return Err(format!("cannot read {shown}: {e}")),
    }
    if cx.host.can_read() {
        let text = cx
            .host
            .read_text_file(path.to_path_buf(), None, None)
            .await
            .map_err(|e| format!("cannot read {shown} through the editor: {e}"))?;
        return Ok(Some(text));
    }
    let mut bytes = Vec::new();
    let file = open_checked(path, Access::Read, shown)?;
    tokio::fs::File::from_std(file).read_to_end(&mut bytes).await.map_err(|e| format!("cannot read {shown}: {e}"))?;
    if looks_binary(&bytes) {
        return Err(format!("{shown} is a binary file; only text files can be edited"));
    }
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| format!("{shown} is not valid UTF-8 text; only UTF-8 text files can be edited"))
}

/// Writes a file through the editor if it can write, else to disk; parent directories are
/// created first either way.
/// On disk, the checked path is opened without following symlinks (see `checked_open`).
pub(crate) async fn write_back(cx: &ToolContext, path: &Path, shown: &str, content: &str) -> Result<(), String> {
    if cx.host.can_write() {
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| format!("cannot create the directory {}: {e}", parent.display()))?;
        }
        return cx
            .host
            .write_text_file(PathBuf::from(path), content.to_string())
            .await
            .map_err(|e| format!("the editor could not write {shown}: {e}"));
    }
    let mut file = tokio::fs::File::from_std(open_checked(path, Access::Write, shown)?);
    file.write_all(content.as_bytes()).await.map_err(|e| format!("cannot write {shown}: {e}"))?;
    file.flush().await.map_err(|e| format!("cannot write {shown}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::tools::redact::Redactor;
    use crate::engine::tools::testutil::{FakeHost, context, context_with, run};
    use std::sync::Arc;

    fn root() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        (dir, root)
    }

    #[tokio::test]
    async fn creates_a_new_file_with_parents_and_diff_old_none() {
        let (_d, root) = root();
        let cx = context(&root);
        let args = json!({"path": "docs/notes.md", "content": "# Notes\nhello\n"});
        let p = WriteFileTool.preview(&args, &cx).await;
        let path = root.join("docs/notes.md");
        assert_eq!(p.title, "Write docs/notes.md");
        assert_eq!(p.display, vec![Display::Diff { path: path.clone(), old: None, new: "# Notes\nhello\n".into() }]);
        assert!(!path.exists(), "preview must not write");

        let out = run(&WriteFileTool, &cx, args).await;
        assert!(!out.is_error, "{}", out.content);
        assert_eq!(out.content, "Created docs/notes.md (2 lines)");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "# Notes\nhello\n");
        assert_eq!(out.display, vec![Display::Diff { path: path.clone(), old: None, new: "# Notes\nhello\n".into() }]);
        assert_eq!(out.locations, vec![Location { path, line: None }]);
    }

    #[tokio::test]
    async fn overwrite_shows_old_content() {
        let (_d, root) = root();
        std::fs::write(root.join("a.txt"), "old\n").unwrap();
        let out = run(&WriteFileTool, &context(&root), json!({"path": "a.txt", "content": "new\n"})).await;
        assert_eq!(out.content, "Wrote a.txt (1 lines)");
        assert_eq!(
            out.display,
            vec![Display::Diff { path: root.join("a.txt"), old: Some("old\n".into()), new: "new\n".into() }]
        );
        assert_eq!(std::fs::read_to_string(root.join("a.txt")).unwrap(), "new\n");
    }

    #[tokio::test]
    async fn refusals() {
        let (_d, root) = root();
        std::fs::create_dir(root.join("dir")).unwrap();
        let mut cx = context(&root);
        cx.deny_paths = vec!["**/secrets/**".into()];
        let cases = [
            (json!({"path": "x"}), "invalid arguments for write_file: missing field `content`"),
            (json!({"path": "dir", "content": ""}), "dir is a directory, not a file"),
        ];
        for (args, want) in cases {
            let out = run(&WriteFileTool, &cx, args).await;
            assert_eq!((out.is_error, out.content.as_str()), (true, want));
        }
        let out = run(&WriteFileTool, &cx, json!({"path": "../evil", "content": "x"})).await;
        assert!(out.is_error && out.content.contains("outside"));
        let out = run(&WriteFileTool, &cx, json!({"path": "secrets/k", "content": "x"})).await;
        assert!(out.is_error && out.content.contains("protected"));
        assert!(!root.join("secrets").exists());
    }

    #[tokio::test]
    async fn writes_through_the_editor_only_when_it_can() {
        let (_d, root) = root();
        let path = root.join("a.txt");
        std::fs::write(&path, "disk\n").unwrap();
        let host = FakeHost::new(true, true, false).with_buffer(path.clone(), "buffer\n");
        let out =
            run(&WriteFileTool, &context_with(&root, host.clone()), json!({"path": "a.txt", "content": "new\n"})).await;
        assert_eq!(
            out.display,
            vec![Display::Diff { path: path.clone(), old: Some("buffer\n".into()), new: "new\n".into() }]
        );
        assert_eq!(
            host.calls(),
            vec![format!("read {} None None", path.display()), format!("write {}", path.display())]
        );
        assert_eq!(host.buffer(&path).as_deref(), Some("new\n"));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "disk\n", "the editor writes, not us");

        let host = FakeHost::new(false, false, false);
        run(&WriteFileTool, &context_with(&root, host.clone()), json!({"path": "a.txt", "content": "local\n"})).await;
        assert!(host.calls().is_empty());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "local\n");
    }

    #[tokio::test]
    async fn diff_display_is_redacted() {
        let (_d, root) = root();
        let mut cx = context(&root);
        cx.redactor = Arc::new(Redactor::new(vec![("API_KEY".into(), "sk-1234567890".into())]));
        let out = run(&WriteFileTool, &cx, json!({"path": ".env", "content": "KEY=sk-1234567890\n"})).await;
        assert_eq!(
            std::fs::read_to_string(root.join(".env")).unwrap(),
            "KEY=sk-1234567890\n",
            "the file gets the real value"
        );
        assert_eq!(
            out.display,
            vec![Display::Diff { path: root.join(".env"), old: None, new: "KEY=[REDACTED:API_KEY]\n".into() }]
        );
    }
}
