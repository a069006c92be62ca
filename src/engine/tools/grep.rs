//! `grep`: regex search through file contents, line by line.
//!
//! Uses the same walk as `glob` (gitignore-aware, no `.git`, no denied paths), skips binary
//! files (a NUL in the first 8 KiB) and very large ones, and reports `path:line: text`, capped.

use std::path::PathBuf;
use std::sync::Arc;

use futures::future::BoxFuture;
use globset::GlobBuilder;
use serde::Deserialize;
use serde_json::{Value, json};

use super::common::{cap_line, display_path, fenced, finish, looks_binary, one_line, parse_args};
use super::glob::walker;
use super::sandbox::Guard;
use super::{Display, Location, Preview, Tool, ToolContext, ToolKind, ToolOutput};
use crate::engine::provider::ToolSpec;

/// Most matching lines returned.
pub const MAX_MATCHES: usize = 200;
/// Files larger than this are not searched.
const MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;
/// Matched lines are cut to this many bytes.
const MAX_LINE_LEN: usize = 300;
/// Locations handed to the editor.
const MAX_LOCATIONS: usize = 20;

/// Searches file contents.
pub struct GrepTool;

#[derive(Deserialize)]
struct Args {
    pattern: String,
    path: Option<String>,
    glob: Option<String>,
    #[serde(default)]
    case_insensitive: bool,
}

struct Hit {
    path: PathBuf,
    line: usize,
    text: String,
}

impl Tool for GrepTool {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "grep".into(),
            description: format!(
                "Search file contents with a regular expression (Rust regex syntax), line by line. Respects \
                 .gitignore and skips binary files. Returns `path:line: text` for up to {MAX_MATCHES} matching lines."
            ),
            parameters: json!({
                "type": "object",
                "properties": {
                    "pattern": {"type": "string", "description": "Regular expression to search for."},
                    "path": {"type": "string", "description": "File or directory to search (default: the session directory)."},
                    "glob": {"type": "string", "description": "Only search files matching this glob, e.g. `*.rs` (file name) or `src/**/*.ts` (path)."},
                    "case_insensitive": {"type": "boolean", "description": "Ignore case (default false)."}
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
            let title = match parse_args::<Args>("grep", args) {
                Ok(a) => format!("Search `{}`", one_line(&a.pattern, 60)),
                Err(_) => "Search files".into(),
            };
            Preview { title, locations: vec![], display: vec![] }
        })
    }

    fn run<'a>(&'a self, args: Value, cx: &'a ToolContext) -> BoxFuture<'a, ToolOutput> {
        Box::pin(async move { finish(cx, grep(cx, &args).await) })
    }
}

async fn grep(cx: &ToolContext, args: &Value) -> Result<ToolOutput, String> {
    let a: Args = parse_args("grep", args)?;
    if a.pattern.is_empty() {
        return Err("pattern is empty; give a regular expression to search for".into());
    }
    let regex = regex::RegexBuilder::new(&a.pattern)
        .case_insensitive(a.case_insensitive)
        .size_limit(16 << 20)
        .build()
        .map_err(|e| {
            format!("invalid regex: {e}\nEscape special characters such as ( [ {{ . * + ? | with \\ to search for them literally.")
        })?;
    let filter = match a.glob.as_deref().map(str::trim).filter(|g| !g.is_empty()) {
        Some(g) => Some((
            GlobBuilder::new(g)
                .literal_separator(true)
                .build()
                .map_err(|e| format!("invalid glob `{g}`: {e}"))?
                .compile_matcher(),
            g.contains('/'),
        )),
        None => None,
    };
    let guard = Arc::new(Guard::new(cx));
    let base = guard.resolve(a.path.as_deref().unwrap_or("."))?;
    let shown = display_path(cx, &base);
    if !base.exists() {
        return Err(format!("{shown} does not exist"));
    }

    let cancel = cx.cancel.clone();
    let walk_base = base.clone();
    let (hits, more) = tokio::task::spawn_blocking(move || {
        let files: Box<dyn Iterator<Item = PathBuf>> = if walk_base.is_file() {
            Box::new(std::iter::once(walk_base.clone()))
        } else {
            Box::new(
                walker(&walk_base, guard)
                    .flatten()
                    .filter(|e| e.file_type().is_some_and(|t| t.is_file()))
                    .map(ignore::DirEntry::into_path),
            )
        };
        let mut hits = Vec::new();
        for file in files {
            if cancel.is_cancelled() {
                break;
            }
            if let Some((glob, by_path)) = &filter {
                let rel = file.strip_prefix(&walk_base).unwrap_or(&file);
                let subject = if *by_path { rel.as_os_str() } else { file.file_name().unwrap_or_default() };
                if !glob.is_match(subject) {
                    continue;
                }
            }
            if std::fs::metadata(&file).map_or(true, |m| m.len() > MAX_FILE_BYTES) {
                continue;
            }
            let Ok(bytes) = std::fs::read(&file) else { continue };
            if looks_binary(&bytes) {
                continue;
            }
            for (i, line) in String::from_utf8_lossy(&bytes).lines().enumerate() {
                if regex.is_match(line) {
                    if hits.len() == MAX_MATCHES {
                        return (hits, true);
                    }
                    hits.push(Hit { path: file.clone(), line: i + 1, text: cap_line(line.trim_end(), MAX_LINE_LEN) });
                }
            }
        }
        (hits, false)
    })
    .await
    .map_err(|e| format!("the search failed: {e}"))?;
    if cx.cancel.is_cancelled() {
        return Err("cancelled".into());
    }

    if hits.is_empty() {
        return Ok(ToolOutput::text(format!("no matches for `{}` in {shown}", a.pattern)));
    }
    let mut text = String::new();
    for h in &hits {
        text.push_str(&format!("{}:{}: {}\n", display_path(cx, &h.path), h.line, h.text));
    }
    if more {
        text.push_str(&format!(
            "[showing the first {MAX_MATCHES} matches; narrow the pattern, path or glob to see the rest]\n"
        ));
    }
    let locations = hits
        .iter()
        .take(MAX_LOCATIONS)
        .map(|h| Location { path: h.path.clone(), line: u32::try_from(h.line).ok() })
        .collect();
    Ok(ToolOutput { display: vec![Display::Text(fenced(&text))], locations, ..ToolOutput::text(text) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::tools::redact::Redactor;
    use crate::engine::tools::testutil::{context, run};

    fn tree() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        for (p, text) in [
            ("src/main.rs", "fn main() {\n    run();\n}\n"),
            ("src/lib.rs", "pub fn run() {}\n// FN in caps\n"),
            ("docs/guide.md", "call run() first\n"),
            ("target/gen.rs", "fn main() {}\n"),
            (".gitignore", "target/\n"),
        ] {
            std::fs::create_dir_all(root.join(p).parent().unwrap()).unwrap();
            std::fs::write(root.join(p), text).unwrap();
        }
        std::fs::write(root.join("src/blob.bin"), b"fn main() {\0binary").unwrap();
        (dir, root)
    }

    #[tokio::test]
    async fn finds_matches_respecting_gitignore_and_skipping_binaries() {
        let (_d, root) = tree();
        let cx = context(&root);
        let out = run(&GrepTool, &cx, json!({"pattern": "fn \\w+\\("})).await;
        assert!(!out.is_error, "{}", out.content);
        assert_eq!(out.content, "src/lib.rs:1: pub fn run() {}\nsrc/main.rs:1: fn main() {\n");
        assert_eq!(
            out.locations,
            vec![
                Location { path: root.join("src/lib.rs"), line: Some(1) },
                Location { path: root.join("src/main.rs"), line: Some(1) }
            ]
        );
        assert_eq!(GrepTool.preview(&json!({"pattern": "fn main"}), &cx).await.title, "Search `fn main`");
    }

    #[tokio::test]
    async fn options_narrow_the_search() {
        let (_d, root) = tree();
        let cx = context(&root);
        let out = run(&GrepTool, &cx, json!({"pattern": "run\\(", "glob": "*.md"})).await;
        assert_eq!(out.content, "docs/guide.md:1: call run() first\n");
        let out = run(&GrepTool, &cx, json!({"pattern": "run\\(", "glob": "src/*.rs"})).await;
        assert_eq!(out.content, "src/lib.rs:1: pub fn run() {}\nsrc/main.rs:2:     run();\n");
        let out = run(&GrepTool, &cx, json!({"pattern": "run", "path": "src/main.rs"})).await;
        assert_eq!(out.content, "src/main.rs:2:     run();\n");
        let out = run(&GrepTool, &cx, json!({"pattern": "^// fn", "case_insensitive": true})).await;
        assert_eq!(out.content, "src/lib.rs:2: // FN in caps\n");
        let out = run(&GrepTool, &cx, json!({"pattern": "nothing-here"})).await;
        assert_eq!((out.is_error, out.content.as_str()), (false, "no matches for `nothing-here` in ."));
    }

    #[tokio::test]
    async fn errors_and_caps() {
        let (_d, root) = tree();
        let cx = context(&root);
        let out = run(&GrepTool, &cx, json!({"pattern": "run("})).await;
        assert!(out.is_error);
        assert!(out.content.starts_with("invalid regex:"), "{}", out.content);
        assert!(out.content.ends_with("with \\ to search for them literally."), "{}", out.content);
        let out = run(&GrepTool, &cx, json!({"pattern": "x", "path": "missing"})).await;
        assert_eq!(out.content, "missing does not exist");
        let out = run(&GrepTool, &cx, json!({"pattern": "x", "path": "/"})).await;
        assert!(out.content.contains("outside"));

        let many: String = (0..MAX_MATCHES + 10).map(|i| format!("hit {i}\n")).collect();
        std::fs::write(root.join("many.txt"), many).unwrap();
        let out = run(&GrepTool, &cx, json!({"pattern": "^hit"})).await;
        assert_eq!(out.content.lines().count(), MAX_MATCHES + 1);
        assert!(out.content.ends_with("narrow the pattern, path or glob to see the rest]\n"));
        assert_eq!(out.locations.len(), MAX_LOCATIONS);
    }

    #[tokio::test]
    async fn matched_secrets_are_redacted() {
        let (_d, root) = tree();
        std::fs::write(root.join("conf.txt"), "password = hunter2hunter2\n").unwrap();
        let mut cx = context(&root);
        cx.redactor = Arc::new(Redactor::new(vec![("DB_PASSWORD".into(), "hunter2hunter2".into())]));
        let out = run(&GrepTool, &cx, json!({"pattern": "password"})).await;
        assert_eq!(out.content, "conf.txt:1: password = [REDACTED:DB_PASSWORD]\n");
        assert!(matches!(&out.display[0], Display::Text(t) if !t.contains("hunter2")));
    }
}
