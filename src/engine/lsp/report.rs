//! Diagnostics as the model and the editor read them: one line each, `path:line:col:
//! severity: message [code]`, 1-based, errors before warnings, at most [`MAX_DIAGNOSTICS`]
//! per result, each message cut at [`MAX_MESSAGE_CHARS`].

use std::path::PathBuf;

use lsp_types::{Diagnostic, DiagnosticSeverity, NumberOrString};

/// Diagnostics listed in one tool result: enough to fix the next few problems, few enough
/// that a broken file does not flood the context window.
pub const MAX_DIAGNOSTICS: usize = 20;

/// Longer messages are cut (type checkers explain at length on further lines).
pub const MAX_MESSAGE_CHARS: usize = 300;

/// One file's errors and warnings from one server.
#[derive(Debug, Clone, PartialEq)]
pub struct FileReport {
    pub server: String,
    pub path: PathBuf,
    /// Errors and warnings only (hints and information are dropped), errors first.
    pub diagnostics: Vec<Diagnostic>,
}

impl FileReport {
    /// Keeps the errors and warnings of `all` (a missing severity counts as an error), errors
    /// first, each group in line order.
    pub fn new(server: &str, path: PathBuf, all: Vec<Diagnostic>) -> FileReport {
        let mut diagnostics: Vec<Diagnostic> = all.into_iter().filter(|d| is_error(d) || is_warning(d)).collect();
        diagnostics.sort_by_key(|d| (!is_error(d), d.range.start.line, d.range.start.character));
        FileReport { server: server.to_string(), path, diagnostics }
    }

    pub fn errors(&self) -> usize {
        self.diagnostics.iter().filter(|d| is_error(d)).count()
    }

    pub fn warnings(&self) -> usize {
        self.diagnostics.len() - self.errors()
    }

    /// `pyright: 1 error, 2 warnings in src/app.py` (or `no errors or warnings`).
    pub fn summary(&self, shown: &str) -> String {
        format!("{}: {} in {shown}", self.server, counts(self.errors(), self.warnings()))
    }

    /// The summary line, then one line per diagnostic (at most `limit`, then how many more).
    pub fn render(&self, shown: &str, limit: usize) -> String {
        let mut out = self.summary(shown);
        for d in self.diagnostics.iter().take(limit) {
            out.push('\n');
            out.push_str(&line(shown, d));
        }
        if self.diagnostics.len() > limit {
            out.push_str(&format!("\n… and {} more", self.diagnostics.len() - limit));
        }
        out
    }
}

/// `1 error, 2 warnings`, `3 errors`, `no errors or warnings`.
pub fn counts(errors: usize, warnings: usize) -> String {
    let plural = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    match (errors, warnings) {
        (0, 0) => "no errors or warnings".to_string(),
        (e, 0) => plural(e, "error"),
        (0, w) => plural(w, "warning"),
        (e, w) => format!("{}, {}", plural(e, "error"), plural(w, "warning")),
    }
}

/// `src/app.py:3:10: error: message [code]`.
pub fn line(shown: &str, d: &Diagnostic) -> String {
    let severity = if is_error(d) { "error" } else { "warning" };
    let message: String = d.message.split_whitespace().collect::<Vec<_>>().join(" ");
    let message = if message.chars().count() > MAX_MESSAGE_CHARS {
        format!("{}…", message.chars().take(MAX_MESSAGE_CHARS).collect::<String>())
    } else {
        message
    };
    let code = match &d.code {
        Some(NumberOrString::String(c)) => format!(" [{c}]"),
        Some(NumberOrString::Number(c)) => format!(" [{c}]"),
        None => String::new(),
    };
    let (l, c) = (d.range.start.line.saturating_add(1), d.range.start.character.saturating_add(1));
    format!("{shown}:{l}:{c}: {severity}: {message}{code}")
}

fn is_error(d: &Diagnostic) -> bool {
    matches!(d.severity, None | Some(DiagnosticSeverity::ERROR))
}

fn is_warning(d: &Diagnostic) -> bool {
    d.severity == Some(DiagnosticSeverity::WARNING)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lsp_types::{Position, Range};

    fn diag(line: u32, severity: Option<DiagnosticSeverity>, message: &str) -> Diagnostic {
        Diagnostic {
            range: Range::new(Position::new(line, 4), Position::new(line, 9)),
            severity,
            message: message.into(),
            ..Default::default()
        }
    }

    #[test]
    fn errors_first_hints_dropped_lines_one_based() {
        let report = FileReport::new(
            "pyright",
            "/w/a.py".into(),
            vec![
                diag(9, Some(DiagnosticSeverity::WARNING), "unused"),
                diag(2, Some(DiagnosticSeverity::HINT), "hint"),
                Diagnostic { code: Some(NumberOrString::String("reportX".into())), ..diag(5, None, "bad\n  type") },
                diag(0, Some(DiagnosticSeverity::ERROR), "first"),
            ],
        );
        assert_eq!((report.errors(), report.warnings()), (2, 1));
        assert_eq!(
            report.render("a.py", 10),
            "pyright: 2 errors, 1 warning in a.py\n\
             a.py:1:5: error: first\n\
             a.py:6:5: error: bad type [reportX]\n\
             a.py:10:5: warning: unused"
        );
        assert_eq!(report.render("a.py", 1).lines().last(), Some("… and 2 more"));
        let clean = FileReport::new("gopls", "/w/m.go".into(), vec![diag(1, Some(DiagnosticSeverity::HINT), "h")]);
        assert_eq!(clean.render("m.go", 10), "gopls: no errors or warnings in m.go");
    }

    #[test]
    fn counts_and_long_messages() {
        assert_eq!(counts(1, 0), "1 error");
        assert_eq!(counts(0, 3), "3 warnings");
        let long = diag(0, None, &"x".repeat(MAX_MESSAGE_CHARS + 50));
        assert!(line("a", &long).ends_with("x…"));
        assert_eq!(line("a", &long).chars().filter(|c| *c == 'x').count(), MAX_MESSAGE_CHARS);
    }
}
