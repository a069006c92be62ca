//! Small helpers every built-in tool uses: argument parsing, path display, redaction of
//! outputs, and text capping.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{Display, ToolContext, ToolOutput};

/// Parses a tool's arguments; the error names the tool and the problem for the model.
pub(crate) fn parse_args<T: DeserializeOwned>(tool: &str, args: &Value) -> Result<T, String> {
    // Some models send `null` for tools whose arguments are all optional.
    let args = if args.is_null() { Value::Object(Default::default()) } else { args.clone() };
    serde_json::from_value(args).map_err(|e| format!("invalid arguments for {tool}: {e}"))
}

/// Turns a tool's result into its output, redacted.
pub(crate) fn finish(cx: &ToolContext, result: Result<ToolOutput, String>) -> ToolOutput {
    redact_output(cx, result.unwrap_or_else(ToolOutput::error))
}

/// For previews: the display path and resolved path of a raw path argument, or the raw text
/// when it does not resolve (the run will report why).
pub(crate) fn preview_path(cx: &ToolContext, raw: &str) -> (String, Option<PathBuf>) {
    match super::sandbox::resolve(cx, raw) {
        Ok(p) => (display_path(cx, &p), Some(p)),
        Err(_) => (raw.to_string(), None),
    }
}

/// `path` relative to the session directory when inside it (`.` for the directory itself),
/// else absolute. For titles and for what the model reads.
pub(crate) fn display_path(cx: &ToolContext, path: &Path) -> String {
    let canonical_cwd = std::fs::canonicalize(&cx.cwd).ok();
    for base in canonical_cwd.as_deref().into_iter().chain([cx.cwd.as_path()]) {
        if let Ok(rel) = path.strip_prefix(base) {
            return if rel.as_os_str().is_empty() { ".".to_string() } else { rel.display().to_string() };
        }
    }
    path.display().to_string()
}

/// Runs every text of an output (content, text displays, diffs) through the secret guard.
pub(crate) fn redact_output(cx: &ToolContext, mut out: ToolOutput) -> ToolOutput {
    let r = &cx.redactor;
    if r.is_empty() {
        return out;
    }
    out.content = r.redact(&out.content);
    for d in &mut out.display {
        redact_display(cx, d);
    }
    out
}

/// Redacts one display item in place.
pub(crate) fn redact_display(cx: &ToolContext, d: &mut Display) {
    let r = &cx.redactor;
    match d {
        Display::Text(t) => *t = r.redact(t),
        Display::Diff { old, new, .. } => {
            if let Some(o) = old {
                *o = r.redact(o);
            }
            *new = r.redact(new);
        }
        Display::Terminal(_) => {}
    }
}

/// The first line of `s`, at most `max` chars, with `…` when cut (for titles).
pub(crate) fn one_line(s: &str, max: usize) -> String {
    let line = s.trim().lines().next().unwrap_or("");
    let multi = s.trim().lines().nth(1).is_some();
    if line.chars().count() > max {
        let cut: String = line.chars().take(max).collect();
        format!("{cut}…")
    } else if multi {
        format!("{line} …")
    } else {
        line.to_string()
    }
}

/// Cuts `s` to at most `max` bytes (on a char boundary), adding `…` when cut.
pub(crate) fn cap_line(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… [line cut, {} bytes]", &s[..end], s.len())
}

/// Wraps text in a Markdown code fence longer than any backtick run inside it.
pub(crate) fn fenced(text: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest.max(2) + 1);
    format!("{fence}\n{}\n{fence}", text.trim_end_matches('\n'))
}

/// True if the bytes look binary (a NUL in the first 8 KiB), like git and ripgrep decide.
pub(crate) fn looks_binary(bytes: &[u8]) -> bool {
    bytes[..bytes.len().min(8192)].contains(&0)
}

/// 1-based line number of byte offset `at` in `text`.
pub(crate) fn line_of(text: &str, at: usize) -> u32 {
    let n = text.as_bytes()[..at.min(text.len())].iter().filter(|&&b| b == b'\n').count();
    u32::try_from(n + 1).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(one_line("cargo test\n--all", 40), "cargo test …");
        assert_eq!(one_line("abcdef", 3), "abc…");
        assert_eq!(cap_line("héllo", 2), "h… [line cut, 6 bytes]");
        assert_eq!(fenced("a ``` b"), "````\na ``` b\n````");
        assert_eq!(fenced("x\n"), "```\nx\n```");
        assert!(looks_binary(b"ab\0c"));
        assert!(!looks_binary("héllo".as_bytes()));
        assert_eq!(line_of("a\nb\nc", 4), 3);
        assert_eq!(line_of("a", 0), 1);
    }
}
