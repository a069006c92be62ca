//! `glob`: finds files by name pattern under a directory, and the directory walker `grep`
//! shares.
//!
//! The walk respects `.gitignore` (also outside git repositories), `.ignore` and git's
//! excludes, shows hidden files but never descends into `.git`, does not follow symlinks, and
//! skips anything a deny rule protects. It runs on a blocking thread and stops on cancel.

use std::path::Path;
use std::sync::Arc;

use futures::future::BoxFuture;
use globset::GlobBuilder;
use serde::Deserialize;
use serde_json::{Value, json};

use super::common::{display_path, fenced, finish, one_line, parse_args};
use super::sandbox::Guard;
use super::{Display, Preview, Tool, ToolContext, ToolKind, ToolOutput};
use crate::engine::provider::ToolSpec;

/// Most paths returned.
pub const MAX_RESULTS: usize = 500;

/// Finds files by glob pattern.
pub struct GlobTool;

#[derive(Deserialize)]
struct Args {
    pattern: String,
    path: Option<String>,
}

impl Tool for GlobTool {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "glob".into(),
            description: format!(
                "Find files whose path matches a glob pattern, relative to `path` (e.g. `**/*.rs`, `src/*.ts`, \
                 `**/test_*.py`; `*` does not cross `/`, `**` does). Respects .gitignore. Returns up to \
                 {MAX_RESULTS} paths, sorted."
            ),
            parameters: json!({
                "type": "object",
                "properties": {
                    "pattern": {"type": "string", "description": "Glob pattern, relative to path."},
                    "path": {"type": "string", "description": "Directory to search (default: the session directory)."}
                },
                "required": ["pattern"],
                "additionalProperties": false
            }),
        }
    }

    fn kind(&self) -> ToolKind {
        ToolKind::Search
    }

    fn preview<'a>(&'a self, args: &'a Value, _cx: &'a ToolContext) -> BoxFuture<'a, Preview> {
        Box::pin(async move {
            let title = match parse_args::<Args>("glob", args) {
                Ok(a) => format!("Find `{}`", one_line(&a.pattern, 60)),
                Err(_) => "Find files".into(),
            };
            Preview { title, locations: vec![], display: vec![] }
        })
    }

    fn run<'a>(&'a self, args: Value, cx: &'a ToolContext) -> BoxFuture<'a, ToolOutput> {
        Box::pin(async move { finish(cx, glob(cx, &args).await) })
    }
}

async fn glob(cx: &ToolContext, args: &Value) -> Result<ToolOutput, String> {
    let a: Args = parse_args("glob", args)?;
    let guard = Arc::new(Guard::new(cx));
    let base = guard.resolve(a.path.as_deref().unwrap_or("."))?;
    let shown = display_path(cx, &base);
    if !base.is_dir() {
        return Err(format!("{shown} is not a directory; give a directory as path"));
    }
    let mut pattern = a.pattern.trim().to_string();
    if pattern.is_empty() {
        return Err("pattern is empty; give a glob such as **/*.rs".into());
    }
    if Path::new(&pattern).is_absolute() {
        match Path::new(&pattern).strip_prefix(&base) {
            Ok(rel) => pattern = rel.to_string_lossy().into_owned(),
            Err(_) => return Err(format!("pattern must be relative to path ({shown}), e.g. **/*.rs")),
        }
    }
    let matcher = GlobBuilder::new(&pattern)
        .literal_separator(true)
        .build()
        .map_err(|e| format!("invalid glob pattern `{pattern}`: {e}"))?
        .compile_matcher();

    let cancel = cx.cancel.clone();
    let walk_base = base.clone();
    let (mut found, total) = tokio::task::spawn_blocking(move || {
        let mut found = Vec::new();
        let mut total = 0usize;
        for entry in walker(&walk_base, guard).flatten() {
            if cancel.is_cancelled() {
                break;
            }
            if !entry.file_type().is_some_and(|t| t.is_file()) {
                continue;
            }
            let rel = entry.path().strip_prefix(&walk_base).unwrap_or(entry.path());
            if matcher.is_match(rel) {
                total += 1;
                if found.len() < MAX_RESULTS {
                    found.push(entry.into_path());
                }
            }
        }
        (found, total)
    })
    .await
    .map_err(|e| format!("the file search failed: {e}"))?;
    if cx.cancel.is_cancelled() {
        return Err("cancelled".into());
    }
    if found.is_empty() {
        return Ok(ToolOutput::text(format!("no files match `{pattern}` in {shown}")));
    }
    found.sort();
    let mut text: String = found.iter().map(|p| display_path(cx, p) + "\n").collect();
    if total > found.len() {
        text.push_str(&format!(
            "[{} of {total} matches shown; use a narrower pattern or path to see the rest]\n",
            found.len()
        ));
    }
    Ok(ToolOutput { display: vec![Display::Text(fenced(&text))], ..ToolOutput::text(text) })
}

/// A sorted, gitignore-aware walk of `base` that skips `.git` and denied paths.
pub(crate) fn walker(base: &Path, guard: Arc<Guard>) -> ignore::Walk {
    let mut builder = ignore::WalkBuilder::new(base);
    builder.hidden(false).require_git(false).follow_links(false).sort_by_file_name(|a, b| a.cmp(b)).filter_entry(
        move |e| {
            let is_git_dir = e.file_name() == ".git" && e.file_type().is_some_and(|t| t.is_dir());
            !is_git_dir && !guard.is_denied(e.path())
        },
    );
    builder.build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::tools::testutil::{context, run};
    use std::path::PathBuf;

    /// Paths a test expects, joined like the output.
    fn lines(paths: &[&str]) -> String {
        paths.iter().map(|p| format!("{p}\n")).collect()
    }

    fn tree() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        for (p, text) in [
            ("src/main.rs", ""),
            ("src/engine/mod.rs", ""),
            ("src/notes.md", ""),
            ("target/debug/gen.rs", ""),
            (".github/ci.rs", ""),
            (".git/hooks.rs", ""),
            ("build.rs", ""),
            (".gitignore", "target/\n"),
        ] {
            std::fs::create_dir_all(root.join(p).parent().unwrap()).unwrap();
            std::fs::write(root.join(p), text).unwrap();
        }
        (dir, root)
    }

    #[tokio::test]
    async fn finds_files_respecting_gitignore() {
        let (_d, root) = tree();
        let cx = context(&root);
        let out = run(&GlobTool, &cx, json!({"pattern": "**/*.rs"})).await;
        assert_eq!(out.content, lines(&[".github/ci.rs", "build.rs", "src/engine/mod.rs", "src/main.rs"]));
        let out = run(&GlobTool, &cx, json!({"pattern": "*.rs"})).await;
        assert_eq!(out.content, lines(&["build.rs"]));
        let out = run(&GlobTool, &cx, json!({"pattern": "*.rs", "path": "src"})).await;
        assert_eq!(out.content, lines(&["src/main.rs"]));
        let out = run(&GlobTool, &cx, json!({"pattern": format!("{}/src/**/*.md", root.display())})).await;
        assert_eq!(out.content, lines(&["src/notes.md"]));
        let out = run(&GlobTool, &cx, json!({"pattern": "**/*.py"})).await;
        assert_eq!((out.is_error, out.content.as_str()), (false, "no files match `**/*.py` in ."));
        assert_eq!(GlobTool.preview(&json!({"pattern": "**/*.rs"}), &cx).await.title, "Find `**/*.rs`");
    }

    #[tokio::test]
    async fn errors_and_denied_paths() {
        let (_d, root) = tree();
        let mut cx = context(&root);
        cx.deny_paths = vec![format!("{}/src/engine/**", root.display())];
        let out = run(&GlobTool, &cx, json!({"pattern": "src/**/*.rs"})).await;
        assert_eq!(out.content, lines(&["src/main.rs"]));
        for (args, want) in [
            (
                json!({"pattern": "a[b"}),
                "invalid glob pattern `a[b`: error parsing glob 'a[b': unclosed character class; missing ']'",
            ),
            (json!({"pattern": "*", "path": "build.rs"}), "build.rs is not a directory; give a directory as path"),
            (json!({"pattern": "/etc/*"}), "pattern must be relative to path (.), e.g. **/*.rs"),
            (json!({}), "invalid arguments for glob: missing field `pattern`"),
        ] {
            let out = run(&GlobTool, &cx, args).await;
            assert_eq!((out.is_error, out.content.as_str()), (true, want));
        }
    }

    #[tokio::test]
    async fn caps_results() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..MAX_RESULTS + 3 {
            std::fs::write(dir.path().join(format!("f{i:04}.txt")), "").unwrap();
        }
        let out = run(&GlobTool, &context(dir.path()), json!({"pattern": "*.txt"})).await;
        assert_eq!(out.content.lines().count(), MAX_RESULTS + 1);
        assert!(out.content.ends_with("[500 of 503 matches shown; use a narrower pattern or path to see the rest]\n"));
    }
}
