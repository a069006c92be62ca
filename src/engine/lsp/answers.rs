//! What we answer a language server's own requests, and what we do with its notifications.
//!
//! Servers stall or log errors when their requests go unanswered, so every request gets an
//! answer: `workspace/configuration` from the server's `settings`, capability registrations
//! and progress tokens accepted, edits the server wants to apply refused (only the agent's
//! tools change files), anything else "method not found". Diagnostics go to [`Published`].

use std::sync::Arc;

use lsp_types::notification::{LogMessage, Notification, PublishDiagnostics, ShowMessage};
use lsp_types::request::{
    ApplyWorkspaceEdit, CodeLensRefresh, InlayHintRefreshRequest, RegisterCapability, Request, SemanticTokensRefresh,
    ShowMessageRequest, UnregisterCapability, WorkDoneProgressCreate, WorkspaceConfiguration,
    WorkspaceDiagnosticRefresh, WorkspaceFoldersRequest,
};
use lsp_types::{ConfigurationParams, PublishDiagnosticsParams, WorkspaceFolder};
use serde_json::{Value, json};

use super::published::Published;
use super::rpc::{Incoming, METHOD_NOT_FOUND};

/// The handler for one server.
pub struct Answers {
    /// The server's name, for logs.
    pub server: String,
    /// Its `settings` (a JSON object).
    pub settings: Value,
    /// The one workspace folder it was started for.
    pub folder: WorkspaceFolder,
    pub published: Arc<Published>,
}

impl Incoming for Answers {
    fn request(&self, method: &str, params: Value) -> Result<Value, (i64, String)> {
        match method {
            WorkspaceConfiguration::METHOD => {
                let params: ConfigurationParams =
                    serde_json::from_value(params).map_err(|e| (-32602, format!("bad params: {e}")))?;
                let answers: Vec<Value> =
                    params.items.iter().map(|item| section(&self.settings, item.section.as_deref())).collect();
                Ok(Value::Array(answers))
            }
            WorkspaceFoldersRequest::METHOD => Ok(json!([self.folder])),
            ApplyWorkspaceEdit::METHOD => Ok(json!({
                "applied": false,
                "failureReason": "ratchet does not apply edits from language servers",
            })),
            RegisterCapability::METHOD
            | UnregisterCapability::METHOD
            | WorkDoneProgressCreate::METHOD
            | ShowMessageRequest::METHOD
            | WorkspaceDiagnosticRefresh::METHOD
            | SemanticTokensRefresh::METHOD
            | CodeLensRefresh::METHOD
            | InlayHintRefreshRequest::METHOD => Ok(Value::Null),
            _ => Err((METHOD_NOT_FOUND, format!("ratchet does not handle {method}"))),
        }
    }

    fn notification(&self, method: &str, params: Value) {
        match method {
            PublishDiagnostics::METHOD => match serde_json::from_value::<PublishDiagnosticsParams>(params) {
                Ok(p) => match p.uri.to_file_path() {
                    Ok(path) => self.published.record(path, p.version, p.diagnostics),
                    Err(()) => {
                        tracing::debug!(server = %self.server, uri = %p.uri, "diagnostics for a non-file URI; ignored")
                    }
                },
                Err(e) => tracing::debug!(server = %self.server, error = %e, "malformed publishDiagnostics; ignored"),
            },
            LogMessage::METHOD | ShowMessage::METHOD => {
                let text = params.get("message").and_then(Value::as_str).unwrap_or_default();
                tracing::debug!(target: "ratchet::lsp::server", server = %self.server, "{text}");
            }
            _ => {}
        }
    }
}

/// The value at a dotted `section` of `settings` (`python.analysis`), or all of it for no
/// section; `null` when it is not there, which servers read as "use your defaults".
fn section(settings: &Value, section: Option<&str>) -> Value {
    let Some(section) = section.filter(|s| !s.is_empty()) else { return settings.clone() };
    section.split('.').try_fold(settings, |v, key| v.get(key)).cloned().unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lsp_types::Url;

    fn answers() -> Answers {
        Answers {
            server: "test".into(),
            settings: json!({"python": {"analysis": {"typeCheckingMode": "strict"}}}),
            folder: WorkspaceFolder { uri: Url::parse("file:///w").unwrap(), name: "w".into() },
            published: Arc::default(),
        }
    }

    #[test]
    fn configuration_is_answered_by_section() {
        let a = answers();
        let params = json!({"items": [
            {"section": "python.analysis"}, {"section": "pyright"}, {"scopeUri": "file:///w"}
        ]});
        let got = a.request("workspace/configuration", params).unwrap();
        assert_eq!(got[0], json!({"typeCheckingMode": "strict"}));
        assert_eq!(got[1], Value::Null);
        assert_eq!(got[2], a.settings);
    }

    #[test]
    fn every_request_gets_an_answer() {
        let a = answers();
        for method in ["client/registerCapability", "window/workDoneProgress/create", "workspace/diagnostic/refresh"] {
            assert_eq!(a.request(method, json!({})), Ok(Value::Null), "{method}");
        }
        assert_eq!(a.request("workspace/workspaceFolders", Value::Null).unwrap()[0]["name"], "w");
        assert_eq!(a.request("workspace/applyEdit", json!({})).unwrap()["applied"], false);
        assert_eq!(a.request("x/unknown", Value::Null).unwrap_err().0, METHOD_NOT_FOUND);
    }

    #[test]
    fn published_diagnostics_are_kept_by_path() {
        let a = answers();
        let params = json!({"uri": "file:///w/a%20b.py", "version": 3, "diagnostics": [
            {"range": {"start": {"line": 0, "character": 1}, "end": {"line": 0, "character": 2}}, "message": "bad"}
        ]});
        a.notification("textDocument/publishDiagnostics", params);
        let listed = a.published.under(&["/w".into()]);
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].0, std::path::Path::new("/w/a b.py"));
        assert_eq!(listed[0].1[0].message, "bad");
    }
}
