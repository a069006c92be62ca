//! Language-server diagnostics as the agent sees them: appended to the result of every edit
//! ([`after_edit`]), and the `diagnostics` tool, which asks for one file's or the whole
//! workspace's.
//!
//! The text sent to the server is the file as it is now, read like the edit tools read it
//! (the editor's buffer when the editor can read, else the disk), so unsaved edits are checked
//! too. A server that gives nothing adds nothing: the edit's own result stands.

use std::path::PathBuf;

use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{Value, json};

use super::common::{display_path, finish, parse_args, preview_path};
use super::sandbox::resolve;
use super::write::read_current;
use super::{Display, Location, Preview, Tool, ToolContext, ToolKind, ToolOutput};
use crate::engine::lsp::report::{MAX_DIAGNOSTICS, counts};
use crate::engine::lsp::{Check, FileReport, Lsp};
use crate::engine::provider::ToolSpec;

/// Files at most listed by a workspace check (each with its own diagnostics, all within
/// [`MAX_DIAGNOSTICS`] lines).
const MAX_WORKSPACE_FILES: usize = 30;

/// The session's roots: its directory first, then its additional directories.
fn roots(cx: &ToolContext) -> Vec<PathBuf> {
    let mut roots = vec![std::fs::canonicalize(&cx.cwd).unwrap_or_else(|_| cx.cwd.clone())];
    roots.extend(cx.extra_roots.iter().map(|r| std::fs::canonicalize(r).unwrap_or_else(|_| r.clone())));
    roots
}

/// Checks the files a successful edit changed (its diffs) and appends each server's report to
/// the model's text and to what the editor shows. Waits at most the configured time per file,
/// less if the turn is cancelled.
pub(crate) async fn after_edit(lsp: &Lsp, cx: &ToolContext, mut output: ToolOutput) -> ToolOutput {
    if output.is_error {
        return output;
    }
    let mut paths: Vec<PathBuf> = Vec::new();
    for d in &output.display {
        if let Display::Diff { path, .. } = d
            && !paths.contains(path)
            && lsp.serves(path)
        {
            paths.push(path.clone());
        }
    }
    for path in paths {
        let shown = display_path(cx, &path);
        let Ok(Some(text)) = read_current(cx, &path, &shown).await else { continue };
        let roots = roots(cx);
        let check = tokio::select! {
            c = lsp.check(&path, &text, &roots, &cx.command_env) => c,
            () = cx.cancel.cancelled() => return output,
        };
        if let Check::Checked(report) = check {
            let rendered = cx.redactor.redact(&report.render(&shown, MAX_DIAGNOSTICS));
            output.content.push_str("\n\n");
            output.content.push_str(&rendered);
            output.display.push(Display::Text(rendered));
        }
    }
    output
}

/// The `diagnostics` tool.
pub struct DiagnosticsTool {
    lsp: Lsp,
}

impl DiagnosticsTool {
    pub fn new(lsp: Lsp) -> Self {
        DiagnosticsTool { lsp }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    path: Option<String>,
}

impl Tool for DiagnosticsTool {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "diagnostics".into(),
            description: "Errors and warnings from the project's language servers (type checkers, compilers). \
                          With a path: that file's, checked now. Without: every file the running servers \
                          know about. Edits already report their file's diagnostics."
                .into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "A file, relative to the session directory or absolute. Omit for the whole workspace."}
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
            let path = parse_args::<Args>("diagnostics", args).ok().and_then(|a| a.path);
            let Some(raw) = path else {
                return Preview { title: "Workspace diagnostics".into(), locations: vec![], display: vec![] };
            };
            let (shown, path) = preview_path(cx, &raw);
            Preview {
                title: format!("Diagnostics for {shown}"),
                locations: path.into_iter().map(|path| Location { path, line: None }).collect(),
                display: vec![],
            }
        })
    }

    fn run<'a>(&'a self, args: Value, cx: &'a ToolContext) -> BoxFuture<'a, ToolOutput> {
        Box::pin(async move {
            let result = match parse_args::<Args>("diagnostics", &args) {
                Ok(Args { path: Some(p) }) => self.file(cx, &p).await,
                Ok(Args { path: None }) => Ok(self.workspace(cx)),
                Err(e) => Err(e),
            };
            finish(cx, result)
        })
    }
}

impl DiagnosticsTool {
    async fn file(&self, cx: &ToolContext, raw: &str) -> Result<ToolOutput, String> {
        let path = resolve(cx, raw)?;
        let shown = display_path(cx, &path);
        if !self.lsp.serves(&path) {
            return Err(format!(
                "no language server is configured for {shown}; add one under [lsp.servers] in config.toml \
                 (or install the default for its language), or run the project's checker with shell"
            ));
        }
        let text = read_current(cx, &path, &shown).await?.ok_or_else(|| format!("{shown} does not exist"))?;
        let roots = roots(cx);
        let check = tokio::select! {
            c = self.lsp.check(&path, &text, &roots, &cx.command_env) => c,
            () = cx.cancel.cancelled() => return Err("cancelled by the user".into()),
        };
        match check {
            Check::Checked(report) => {
                let mut out = ToolOutput::text(report.render(&shown, MAX_DIAGNOSTICS));
                out.locations = locations(&report);
                Ok(out)
            }
            Check::NoServer => Err(format!("no language server is configured for {shown}")),
            Check::Unavailable(why) => {
                Err(format!("no diagnostics for {shown}: {why}; run the project's checker with shell instead"))
            }
        }
    }

    fn workspace(&self, cx: &ToolContext) -> ToolOutput {
        let Some(reports) = self.lsp.workspace(&roots(cx)) else {
            return ToolOutput::text(
                "No language server is running for this workspace yet. Servers start when a file is edited or \
                 checked: call diagnostics with a path.",
            );
        };
        let (errors, warnings) = reports.iter().fold((0, 0), |(e, w), r| (e + r.errors(), w + r.warnings()));
        let mut text = format!(
            "{} in {} file{} (files the language servers have checked)",
            counts(errors, warnings),
            reports.len(),
            if reports.len() == 1 { "" } else { "s" }
        );
        let mut budget = MAX_DIAGNOSTICS;
        for report in reports.iter().take(MAX_WORKSPACE_FILES) {
            if budget == 0 {
                break;
            }
            let shown = display_path(cx, &report.path);
            text.push_str("\n\n");
            text.push_str(&report.render(&shown, budget));
            budget = budget.saturating_sub(report.diagnostics.len());
        }
        if reports.len() > MAX_WORKSPACE_FILES || budget == 0 && reports.len() > 1 {
            text.push_str("\n\n(more not shown: ask for one file's diagnostics with a path)");
        }
        let mut out = ToolOutput::text(text);
        out.locations = reports.iter().flat_map(locations).take(MAX_DIAGNOSTICS).collect();
        out
    }
}

/// Where each diagnostic is, for the editor to follow (1-based lines).
fn locations(report: &FileReport) -> Vec<Location> {
    report
        .diagnostics
        .iter()
        .take(MAX_DIAGNOSTICS)
        .map(|d| Location { path: report.path.clone(), line: Some(d.range.start.line.saturating_add(1)) })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::lsp::LspConfig;
    use crate::engine::tools::testutil::{FakeHost, context, context_with, run};

    fn off() -> DiagnosticsTool {
        DiagnosticsTool::new(Lsp::new(&LspConfig { enabled: Some(false), ..Default::default() }, None).unwrap())
    }

    #[tokio::test]
    async fn without_servers_the_tool_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::write(root.join("a.py"), "x = 1\n").unwrap();
        let cx = context(&root);
        let out = run(&off(), &cx, json!({"path": "a.py"})).await;
        assert!(out.is_error && out.content.contains("no language server is configured for a.py"), "{}", out.content);
        let out = run(&off(), &cx, json!({})).await;
        assert!(!out.is_error && out.content.starts_with("No language server is running"), "{}", out.content);
        let out = run(&off(), &cx, json!({"path": "../outside.py"})).await;
        assert!(out.is_error, "the sandbox applies: {}", out.content);
        assert_eq!(off().preview(&json!({"path": "a.py"}), &cx).await.title, "Diagnostics for a.py");
        assert_eq!(off().preview(&json!(null), &cx).await.title, "Workspace diagnostics");
    }

    #[tokio::test]
    async fn edits_without_a_server_are_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let cx = context(&root);
        let output = ToolOutput {
            display: vec![Display::Diff { path: root.join("a.py"), old: None, new: "x".into() }],
            ..ToolOutput::text("Created a.py (1 lines)")
        };
        let after = after_edit(&off().lsp, &cx, output.clone()).await;
        assert_eq!(after, output);
    }

    #[tokio::test]
    async fn an_edit_in_the_editors_buffer_is_checked_as_the_buffer_reads() {
        let Some(config) = crate::engine::lsp::pyright_tests::pyright_config() else { return };
        let lsp = Lsp::new(&config, None).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let path = root.join("buf.py");
        std::fs::write(&path, "n: int = 1\n").unwrap();
        let host = FakeHost::new(true, true, false).with_buffer(path.clone(), "n: int = 'unsaved'\n");
        let cx = context_with(&root, host);
        let output = ToolOutput {
            display: vec![Display::Diff { path: path.clone(), old: None, new: "n: int = 'unsaved'\n".into() }],
            ..ToolOutput::text("Edited buf.py")
        };
        let out = after_edit(&lsp, &cx, output).await;
        assert!(out.content.starts_with("Edited buf.py\n\npyright: 1 error in buf.py\nbuf.py:1:"), "{}", out.content);
        assert!(matches!(out.display.last(), Some(Display::Text(t)) if t.starts_with("pyright: 1 error")), "{out:?}");
        lsp.shutdown().await;
    }
}
