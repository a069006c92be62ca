//! `read_file`: shows a text file to the model as numbered lines, a page at a time.
//!
//! Reads through the editor when it can (so the model sees unsaved changes), else from disk,
//! streaming so a huge file costs only the page asked for. Pages are capped in lines and
//! bytes; the note at the end says exactly how to read on.

use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, BufReader};

use super::checked_open::{Access, open_checked};

use super::common::{cap_line, display_path, fenced, finish, looks_binary, parse_args, preview_path};
use super::sandbox::resolve;
use super::{Display, Location, Preview, Tool, ToolContext, ToolKind, ToolOutput};
use crate::engine::provider::ToolSpec;

/// Most lines returned by one call.
pub const MAX_LINES: usize = 2000;
/// Most bytes returned by one call.
pub const MAX_BYTES: usize = 256 * 1024;
/// Longer lines are cut (minified files).
const MAX_LINE_LEN: usize = 2000;

/// Reads a text file.
pub struct ReadFileTool;

#[derive(Deserialize)]
struct Args {
    path: String,
    offset: Option<u64>,
    limit: Option<u64>,
}

/// The lines of one page and what is known about the rest of the file.
struct Page {
    lines: Vec<String>,
    /// More lines follow the page.
    more: bool,
    /// Total line count, when the end of the file was reached.
    total: Option<usize>,
}

impl Tool for ReadFileTool {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "read_file".into(),
            description: format!(
                "Read a text file. Returns numbered lines (`cat -n` style: number, tab, text). At most \
                 {MAX_LINES} lines per call; use offset and limit to page through longer files."
            ),
            parameters: json!({
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "File path, relative to the session directory or absolute."},
                    "offset": {"type": "integer", "minimum": 1, "description": "1-based line to start at (default 1)."},
                    "limit": {"type": "integer", "minimum": 1, "description": format!("Number of lines to read (default and max {MAX_LINES}).")}
                },
                "required": ["path"],
                "additionalProperties": false
            }),
        }
    }

    fn kind(&self) -> ToolKind {
        ToolKind::Read
    }

    fn preview<'a>(&'a self, args: &'a Value, cx: &'a ToolContext) -> BoxFuture<'a, Preview> {
        Box::pin(async move {
            let Ok(a) = parse_args::<Args>("read_file", args) else {
                return Preview { title: "Read file".into(), locations: vec![], display: vec![] };
            };
            let (shown, path) = preview_path(cx, &a.path);
            let line = a.offset.and_then(|o| u32::try_from(o).ok());
            Preview {
                title: format!("Read {shown}"),
                locations: path.into_iter().map(|path| Location { path, line }).collect(),
                display: vec![],
            }
        })
    }

    fn run<'a>(&'a self, args: Value, cx: &'a ToolContext) -> BoxFuture<'a, ToolOutput> {
        Box::pin(async move { finish(cx, read(cx, &args).await) })
    }
}

async fn read(cx: &ToolContext, args: &Value) -> Result<ToolOutput, String> {
    let a: Args = parse_args("read_file", args)?;
    let path = resolve(cx, &a.path)?;
    let shown = display_path(cx, &path);
    let offset = match a.offset.unwrap_or(1) {
        0 => return Err("offset is 1-based; use 1 for the first line".into()),
        o => usize::try_from(o).unwrap_or(usize::MAX),
    };
    let limit = match a.limit {
        Some(0) => return Err("limit must be at least 1".into()),
        Some(l) => usize::try_from(l).unwrap_or(usize::MAX).min(MAX_LINES),
        None => MAX_LINES,
    };
    let page = if cx.host.can_read() {
        read_via_host(cx, &path, &shown, offset, limit).await?
    } else {
        read_local(&path, &shown, offset, limit).await?
    };

    if page.lines.is_empty() {
        return match page.total {
            Some(0) => Ok(located(ToolOutput::text(format!("{shown} is empty")), path, None)),
            Some(total) => Err(format!("offset {offset} is past the end of {shown} ({total} lines)")),
            None => Err(format!("offset {offset} is past the end of {shown}")),
        };
    }

    let mut numbered = String::new();
    let mut raw = String::new();
    let mut cut_at = None;
    for (i, line) in page.lines.iter().enumerate() {
        let n = offset + i;
        let row = format!("{n:>6}\t{line}\n");
        if i > 0 && numbered.len() + row.len() > MAX_BYTES {
            cut_at = Some(n);
            break;
        }
        numbered.push_str(&row);
        raw.push_str(line);
        raw.push('\n');
    }
    let last = offset + page.lines.len() - 1;
    if let Some(next) = cut_at {
        numbered.push_str(&format!(
            "[output capped at {} KiB; call read_file with offset={next} to read further]\n",
            MAX_BYTES / 1024
        ));
    } else if page.more {
        numbered.push_str(&format!(
            "[lines {offset}-{last} shown; the file goes on: call read_file with offset={} to read further]\n",
            last + 1
        ));
    }
    let line = u32::try_from(offset).ok();
    let out = ToolOutput { display: vec![Display::Text(fenced(&raw))], ..ToolOutput::text(numbered) };
    Ok(located(out, path, line))
}

fn located(mut out: ToolOutput, path: std::path::PathBuf, line: Option<u32>) -> ToolOutput {
    out.locations = vec![Location { path, line }];
    out
}

/// Asks the editor for the page (one line more than needed, to know if the file goes on).
async fn read_via_host(
    cx: &ToolContext,
    path: &std::path::Path,
    shown: &str,
    offset: usize,
    limit: usize,
) -> Result<Page, String> {
    let line = u32::try_from(offset).map_err(|_| format!("offset {offset} is too large"))?;
    let want = u32::try_from(limit + 1).unwrap_or(u32::MAX);
    let text = cx
        .host
        .read_text_file(path.to_path_buf(), Some(line), Some(want))
        .await
        .map_err(|e| format!("cannot read {shown}: {e}"))?;
    if looks_binary(text.as_bytes()) {
        return Err(binary(shown));
    }
    let mut lines: Vec<String> = text.lines().map(|l| cap_line(l, MAX_LINE_LEN)).collect();
    let more = lines.len() > limit;
    lines.truncate(limit);
    let total = (offset == 1 && !more).then_some(lines.len());
    Ok(Page { lines, more, total })
}

/// Streams the page from disk.
async fn read_local(path: &std::path::Path, shown: &str, offset: usize, limit: usize) -> Result<Page, String> {
    let meta = tokio::fs::metadata(path).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            format!("{shown} does not exist; use list_dir or glob to find the right path")
        }
        _ => format!("cannot read {shown}: {e}"),
    })?;
    if meta.is_dir() {
        return Err(format!("{shown} is a directory; use list_dir to see its entries"));
    }
    let file = tokio::fs::File::from_std(open_checked(path, Access::Read, shown)?);
    let mut reader = BufReader::with_capacity(64 * 1024, file);
    let head = reader.fill_buf().await.map_err(|e| format!("cannot read {shown}: {e}"))?;
    if looks_binary(head) {
        return Err(binary(shown));
    }
    let mut lines = Vec::new();
    let mut buf = Vec::new();
    let mut n = 0usize;
    loop {
        buf.clear();
        let read = read_line_capped(&mut reader, &mut buf, MAX_LINE_LEN + 2)
            .await
            .map_err(|e| format!("cannot read {shown}: {e}"))?;
        if read == 0 {
            return Ok(Page { lines, more: false, total: Some(n) });
        }
        n += 1;
        if n < offset {
            continue;
        }
        if lines.len() == limit {
            return Ok(Page { lines, more: true, total: None });
        }
        if read > buf.len() {
            // Cut while reading: only its start was kept.
            let kept = String::from_utf8_lossy(&buf[..MAX_LINE_LEN]);
            let kept = kept.trim_end_matches('\u{FFFD}');
            lines.push(format!("{kept}… [line cut, {read} bytes]"));
            continue;
        }
        while matches!(buf.last(), Some(b'\n' | b'\r')) {
            buf.pop();
        }
        lines.push(cap_line(&String::from_utf8_lossy(&buf), MAX_LINE_LEN));
    }
}

/// Reads one line (with its newline) into `buf`, keeping at most `keep` bytes of it; returns
/// the line's whole length, 0 at the end. So one huge line (a minified file, a log without
/// newlines) costs `keep` bytes, not its size.
async fn read_line_capped<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    keep: usize,
) -> std::io::Result<usize> {
    let mut total = 0;
    loop {
        let chunk = reader.fill_buf().await?;
        if chunk.is_empty() {
            return Ok(total);
        }
        let (len, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        let room = keep.saturating_sub(buf.len());
        buf.extend_from_slice(&chunk[..len.min(room)]);
        total += len;
        reader.consume(len);
        if done {
            return Ok(total);
        }
    }
}

fn binary(shown: &str) -> String {
    format!("{shown} is a binary file; read_file shows text files only")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::tools::redact::Redactor;
    use crate::engine::tools::testutil::{FakeHost, context, context_with, run};
    use std::sync::Arc;

    fn setup() -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir(root.join("src")).unwrap();
        std::fs::write(root.join("src/main.rs"), "fn main() {\n    println!(\"hi\");\n}\n").unwrap();
        (dir, root)
    }

    #[tokio::test]
    async fn reads_numbered_lines_with_location() {
        let (_d, root) = setup();
        let cx = context(&root);
        let out = run(&ReadFileTool, &cx, json!({"path": "src/main.rs"})).await;
        assert!(!out.is_error, "{}", out.content);
        assert_eq!(out.content, "     1\tfn main() {\n     2\t    println!(\"hi\");\n     3\t}\n");
        assert_eq!(out.locations, vec![Location { path: root.join("src/main.rs"), line: Some(1) }]);
        let p = ReadFileTool.preview(&json!({"path": "src/main.rs"}), &cx).await;
        assert_eq!(p.title, "Read src/main.rs");
    }

    #[tokio::test]
    async fn pages_with_offset_and_limit_and_says_how_to_go_on() {
        let (_d, root) = setup();
        let text: String = (1..=10).map(|i| format!("line {i}\n")).collect();
        std::fs::write(root.join("ten.txt"), text).unwrap();
        let cx = context(&root);
        let out = run(&ReadFileTool, &cx, json!({"path": "ten.txt", "offset": 4, "limit": 3})).await;
        assert_eq!(
            out.content,
            "     4\tline 4\n     5\tline 5\n     6\tline 6\n[lines 4-6 shown; the file goes on: call read_file with offset=7 to read further]\n"
        );
        assert_eq!(out.locations[0].line, Some(4));
        let out = run(&ReadFileTool, &cx, json!({"path": "ten.txt", "offset": 9})).await;
        assert_eq!(out.content, "     9\tline 9\n    10\tline 10\n");
        let out = run(&ReadFileTool, &cx, json!({"path": "ten.txt", "offset": 20})).await;
        assert!(out.is_error);
        assert_eq!(out.content, "offset 20 is past the end of ten.txt (10 lines)");
    }

    #[tokio::test]
    async fn a_huge_line_is_cut_while_it_is_read() {
        let (_d, root) = setup();
        let mut text = "x".repeat(3_000_000);
        text.push_str("\nsecond\n");
        std::fs::write(root.join("min.js"), text).unwrap();
        let out = run(&ReadFileTool, &context(&root), json!({"path": "min.js"})).await;
        assert!(!out.is_error, "{}", out.content);
        assert!(out.content.len() < 3 * MAX_LINE_LEN, "{}", out.content.len());
        assert!(out.content.contains("… [line cut, 3000001 bytes]"), "{}", &out.content[MAX_LINE_LEN..]);
        assert!(out.content.contains("     2\tsecond\n"), "{}", &out.content[MAX_LINE_LEN..]);
    }

    #[tokio::test]
    async fn caps_at_max_lines() {
        let (_d, root) = setup();
        let text: String = (1..=2500).map(|i| format!("{i}\n")).collect();
        std::fs::write(root.join("big.txt"), text).unwrap();
        let out = run(&ReadFileTool, &context(&root), json!({"path": "big.txt"})).await;
        assert_eq!(out.content.lines().count(), MAX_LINES + 1);
        assert!(
            out.content.ends_with("call read_file with offset=2001 to read further]\n"),
            "{}",
            &out.content[out.content.len() - 200..]
        );
    }

    #[tokio::test]
    async fn errors_are_actionable() {
        let (_d, root) = setup();
        std::fs::write(root.join("bin.dat"), b"ab\0cd").unwrap();
        std::fs::write(root.join("empty.txt"), b"").unwrap();
        let cx = context(&root);
        let cases = [
            (json!({}), "invalid arguments for read_file: missing field `path`"),
            (json!({"path": "nope.rs"}), "nope.rs does not exist; use list_dir or glob to find the right path"),
            (json!({"path": "src"}), "src is a directory; use list_dir to see its entries"),
            (json!({"path": "bin.dat"}), "bin.dat is a binary file; read_file shows text files only"),
            (json!({"path": "src/main.rs", "offset": 0}), "offset is 1-based; use 1 for the first line"),
        ];
        for (args, want) in cases {
            let out = run(&ReadFileTool, &cx, args).await;
            assert!(out.is_error);
            assert_eq!(out.content, want);
        }
        let out = run(&ReadFileTool, &cx, json!({"path": "../x"})).await;
        assert!(out.is_error && out.content.contains("outside the session's directories"), "{}", out.content);
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("passwd"), "root:x:0:0\n").unwrap();
        std::os::unix::fs::symlink(outside.path().join("passwd"), root.join("link")).unwrap();
        let out = run(&ReadFileTool, &cx, json!({"path": "link"})).await;
        assert!(out.is_error && out.content.contains("outside the session's directories"), "{}", out.content);
        assert!(!out.content.contains("root:x"));
        let out = run(&ReadFileTool, &cx, json!({"path": "empty.txt"})).await;
        assert_eq!((out.is_error, out.content.as_str()), (false, "empty.txt is empty"));
    }

    #[tokio::test]
    async fn reads_through_the_editor_when_it_can() {
        let (_d, root) = setup();
        let path = root.join("src/main.rs");
        let host = FakeHost::new(true, false, false).with_buffer(path.clone(), "unsaved 1\nunsaved 2\n");
        let cx = context_with(&root, host.clone());
        let out = run(&ReadFileTool, &cx, json!({"path": "src/main.rs"})).await;
        assert_eq!(out.content, "     1\tunsaved 1\n     2\tunsaved 2\n");
        assert_eq!(host.calls(), vec![format!("read {} Some(1) Some(2001)", path.display())]);

        // An editor that cannot read is never asked.
        let host = FakeHost::new(false, true, true).with_buffer(path.clone(), "unsaved\n");
        let out = run(&ReadFileTool, &context_with(&root, host.clone()), json!({"path": "src/main.rs"})).await;
        assert!(out.content.contains("fn main()"));
        assert!(host.calls().is_empty());
    }

    #[tokio::test]
    async fn secrets_are_redacted() {
        let (_d, root) = setup();
        std::fs::write(root.join("cfg.txt"), "token=ghp_abcdefghijkl\n").unwrap();
        let mut cx = context(&root);
        cx.redactor = Arc::new(Redactor::new(vec![("GH_TOKEN".into(), "ghp_abcdefghijkl".into())]));
        let out = run(&ReadFileTool, &cx, json!({"path": "cfg.txt"})).await;
        assert_eq!(out.content, "     1\ttoken=[REDACTED:GH_TOKEN]\n");
        assert_eq!(out.display, vec![Display::Text("```\ntoken=[REDACTED:GH_TOKEN]\n```".into())]);
    }
}
