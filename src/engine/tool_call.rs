//! Running the tool calls of one model answer: announce, ask permission, run, report.
//!
//! Calls run one after another in the order the model gave them, so their effects are
//! predictable. Each is announced (`ToolCallStarted`, status pending), checked by the
//! permission [`Policy`], possibly put to the user, run, and reported
//! (`ToolCallUpdated`). The model always gets a result for every call, even a refused or
//! cancelled one, so the history stays valid for every provider.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::Mode;
use super::content::{ToolCall, ToolResult};
use super::event::{ChatEvent, PermissionAnswer, PermissionRequest, ToolCallChange, ToolCallStart, ToolCallStatus};
use super::extension::{ToolCallInfo, ToolOutcome};
use super::permission::{Policy, Remembered, Verdict};
use super::provider::ToolSpec;
use super::tools::registry::ToolRegistry;
use super::tools::{Display, Location, Tool, ToolContext, ToolKind, ToolOutput};
use super::turn_context::TurnContext;

/// Tool calls of one model answer that run; the rest get a refusal as their result. Real work
/// asks for a handful at once; a model asking for thousands (a runaway or a hostile prompt)
/// must not run them all, ask the user about each, or flood the editor.
pub const MAX_CALLS_PER_ANSWER: usize = 64;

/// The tools of one turn and what decides whether they may run.
pub(super) struct ToolRunner {
    tools: ToolRegistry,
    cx: ToolContext,
    policy: Policy,
    /// "Always" answers for this session, by tool name.
    remembered: Mutex<HashMap<String, Remembered>>,
}

/// How one call ended.
enum CallOutcome {
    Done(ToolResult),
    /// The user cancelled while the call waited or ran.
    Cancelled(ToolResult),
}

impl ToolRunner {
    pub async fn new(turn: &TurnContext) -> Result<ToolRunner, String> {
        let engine = &turn.engine;
        let remembered = engine
            .store()
            .permissions(&turn.session.id)
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter_map(|(tool, d)| Remembered::parse(&d).map(|d| (tool, d)))
            .collect();
        let cx = ToolContext {
            cwd: turn.session.cwd.clone(),
            extra_roots: turn.session.additional_dirs.clone(),
            deny_paths: engine.deny_paths().to_vec(),
            host: turn.host.clone(),
            cancel: turn.claim.token().clone(),
            redactor: engine.redactor(),
            shell_timeout: engine.config().shell_timeout(),
            call_id: None,
            command_env: Arc::new(engine.command_env().await),
            turn: turn.tool_turn(),
        };
        let mut runner = ToolRunner {
            tools: ToolRegistry::default(),
            cx,
            policy: engine.policy().clone(),
            remembered: Mutex::new(remembered),
        };
        runner.ask_about_project_servers(turn).await;
        let (tools, failures) = engine.tools_for(&turn.session).await;
        for failure in failures {
            // Say it in the chat: a silently missing MCP server is a common complaint.
            turn.emit(ChatEvent::TextDelta(format!("⚠ {failure}\n\n"))).await;
        }
        runner.tools = match turn.session.agent.as_ref().and_then(|a| a.tools.as_ref()) {
            // A named agent gets only its own tools.
            Some(allowed) => tools.only(allowed),
            None => tools,
        };
        Ok(runner)
    }

    /// The project's `.ratchet/mcp.json` servers run commands whoever wrote the repository
    /// chose, so they start only after the user allowed them (or the mode allows everything).
    /// Asked once per session; "always" answers are remembered like a tool's.
    async fn ask_about_project_servers(&self, turn: &TurnContext) {
        let pending = turn.engine.unapproved_project_servers(&turn.session);
        if pending.is_empty() {
            return;
        }
        let names: Vec<String> = pending.iter().map(describe_server).collect();
        let call = ToolCall {
            id: format!("project_mcp_{}", turn.claim.turn_id()),
            name: PROJECT_SERVERS.to_string(),
            arguments: serde_json::json!({ "servers": names }),
        };
        let title = format!("Start MCP servers from .ratchet/mcp.json: {}", names.join(", "));
        let mode = self.mode(turn).await;
        let remembered = self.lock().get(PROJECT_SERVERS).copied();
        let allowed = match self.policy.decide(mode, PROJECT_SERVERS, ToolKind::Execute, None, remembered) {
            Verdict::Allow => true,
            Verdict::Deny(reason) => {
                tracing::info!(%reason, "the project's MCP servers stay off");
                false
            }
            // Only a real question is shown, as a tool call the answer belongs to.
            Verdict::Ask => {
                turn.emit(ChatEvent::ToolCallStarted(ToolCallStart {
                    id: call.id.clone(),
                    name: call.name.clone(),
                    title: title.clone(),
                    kind: ToolKind::Execute,
                    arguments: call.arguments.clone(),
                    locations: vec![Location { path: turn.session.cwd.join(".ratchet/mcp.json"), line: None }],
                    display: vec![],
                }))
                .await;
                let allowed = matches!(self.ask(turn, &call, ToolKind::Execute, &title).await, Permit::Run);
                let (status, note) = if allowed {
                    (ToolCallStatus::Completed, "started")
                } else {
                    (ToolCallStatus::Failed, "not started: the project's MCP servers were not allowed")
                };
                self.finish(turn, &call, status, vec![Display::Text(note.to_string())], None, note).await;
                allowed
            }
        };
        turn.engine.decide_project_servers(&turn.session, allowed);
    }

    /// Where the session's tools may read, for files read on their behalf.
    pub fn sandbox(&self) -> super::tools::sandbox::Guard {
        super::tools::sandbox::Guard::new(&self.cx)
    }

    /// Tool definitions for the model; only read-only tools in plan mode.
    pub fn specs(&self, read_only: bool) -> Vec<ToolSpec> {
        if read_only { self.tools.specs_filtered(true) } else { self.tools.specs() }
    }

    /// Runs every call (up to [`MAX_CALLS_PER_ANSWER`]); returns one result per call and
    /// whether the user cancelled.
    pub async fn run_all(&self, turn: &TurnContext, calls: &[ToolCall]) -> (Vec<ToolResult>, bool) {
        let mut results = Vec::with_capacity(calls.len());
        let mut cancelled = false;
        for (index, call) in calls.iter().enumerate() {
            if index >= MAX_CALLS_PER_ANSWER {
                // Not shown one by one: a runaway answer would flood the editor.
                let note = format!(
                    "not run: the answer asked for {} tool calls at once and at most {MAX_CALLS_PER_ANSWER} run \
                     per answer; ask for the rest in the next answer",
                    calls.len()
                );
                results.push(ToolResult::new(call.id.clone(), note, true));
                continue;
            }
            if cancelled || self.cx.cancel.is_cancelled() {
                cancelled = true;
                results.push(ToolResult::new(call.id.clone(), "cancelled by the user before it ran", true));
                continue;
            }
            match self.run_one(turn, call).await {
                CallOutcome::Done(r) => results.push(r),
                CallOutcome::Cancelled(r) => {
                    cancelled = true;
                    results.push(r);
                }
            }
        }
        (results, cancelled)
    }

    async fn run_one(&self, turn: &TurnContext, call: &ToolCall) -> CallOutcome {
        let Some(tool) = self.tools.get(&call.name) else {
            let names: Vec<_> = self.tools.specs().into_iter().map(|s| s.name).collect();
            let message = format!("unknown tool `{}`; the tools are: {}", call.name, names.join(", "));
            self.announce_unknown(turn, call, &message).await;
            return CallOutcome::Done(ToolResult::new(call.id.clone(), message, true));
        };
        let kind = tool.kind();
        let preview = tool.preview(&call.arguments, &self.cx).await;
        let title = preview.title.clone();
        let info = self.call_info(turn, call, kind, &preview.locations);
        turn.emit(ChatEvent::ToolCallStarted(ToolCallStart {
            id: call.id.clone(),
            name: call.name.clone(),
            title: title.clone(),
            kind,
            arguments: call.arguments.clone(),
            locations: preview.locations,
            display: preview.display,
        }))
        .await;
        let result = |content: String, is_error: bool| ToolResult {
            title: Some(title.clone()),
            kind: Some(kind),
            ..ToolResult::new(call.id.clone(), content, is_error)
        };
        match self.permit(turn, call, kind, &title).await {
            Permit::Run => {}
            Permit::Refused(reason) => {
                self.finish(turn, call, ToolCallStatus::Failed, vec![Display::Text(reason.clone())], None, &reason)
                    .await;
                return CallOutcome::Done(result(reason, true));
            }
            Permit::Cancelled => {
                let reason = "cancelled by the user".to_string();
                self.finish(turn, call, ToolCallStatus::Failed, vec![Display::Text(reason.clone())], None, &reason)
                    .await;
                return CallOutcome::Cancelled(result(reason, true));
            }
        }
        let extension = turn.engine.extension().cloned();
        if let Some(extension) = &extension {
            let verdict = tokio::select! {
                v = extension.before_tool(info.clone()) => Some(v),
                () = self.cx.cancel.cancelled() => None,
            };
            let reason = match &verdict {
                Some(Ok(())) => None,
                Some(Err(reason)) => Some(self.cx.redactor.redact(reason)),
                None => Some("cancelled by the user".to_string()),
            };
            if let Some(reason) = reason {
                self.finish(turn, call, ToolCallStatus::Failed, vec![Display::Text(reason.clone())], None, &reason)
                    .await;
                let r = result(reason, true);
                return if verdict.is_none() { CallOutcome::Cancelled(r) } else { CallOutcome::Done(r) };
            }
        }
        turn.emit(ChatEvent::ToolCallUpdated(ToolCallChange {
            id: call.id.clone(),
            status: ToolCallStatus::InProgress,
            display: None,
            locations: None,
            output: None,
        }))
        .await;
        let mut output = self.execute(tool.as_ref(), call).await;
        if kind == ToolKind::Edit && !self.cx.cancel.is_cancelled() {
            // What the language servers now say of the files it changed (bounded wait).
            output = super::tools::diagnostics::after_edit(turn.engine.lsp(), &self.cx, output).await;
        }
        let cancelled = self.cx.cancel.is_cancelled();
        if let Some(extension) = &extension {
            let outcome =
                ToolOutcome { is_error: output.is_error || cancelled, cancelled, output: output.content.clone() };
            extension.after_tool(info, outcome);
        }
        let status = if output.is_error || cancelled { ToolCallStatus::Failed } else { ToolCallStatus::Completed };
        if let Some(plan) = &output.plan {
            self.publish_plan(turn, plan.clone()).await;
        }
        let locations = (!output.locations.is_empty()).then(|| output.locations.clone());
        self.finish(turn, call, status, output.display.clone(), locations, &output.content).await;
        let r = result(output.content, output.is_error || cancelled);
        if cancelled { CallOutcome::Cancelled(r) } else { CallOutcome::Done(r) }
    }

    async fn execute(&self, tool: &dyn Tool, call: &ToolCall) -> ToolOutput {
        use futures::FutureExt;
        let cancel = self.cx.cancel.clone();
        let cx = ToolContext { call_id: Some(call.id.clone()), ..self.cx.clone() };
        // A tool that panics (a bug, or an MCP adapter meeting odd data) fails this call only:
        // the batch goes on and every call still gets a result.
        let run = std::panic::AssertUnwindSafe(tool.run(call.arguments.clone(), &cx)).catch_unwind();
        tokio::select! {
            out = run => out.unwrap_or_else(|panic| {
                let what = self.cx.redactor.redact(&super::backstop::panic_message(panic.as_ref()));
                tracing::error!(tool = %call.name, panic = %what, "a tool panicked");
                ToolOutput::error(format!(
                    "the tool `{}` panicked ({what}); this is a bug, not a problem with the arguments",
                    call.name
                ))
            }),
            // Tools watch the token themselves; this is the backstop for one that does not.
            () = async { cancel.cancelled().await; tokio::time::sleep(CANCEL_GRACE).await } => {
                ToolOutput::error("cancelled by the user")
            }
        }
    }

    /// The call as the extension sees it: the files an edit touches (where the preview
    /// shows it, else its `path` argument), the command line of a command.
    fn call_info(&self, turn: &TurnContext, call: &ToolCall, kind: ToolKind, shown: &[Location]) -> ToolCallInfo {
        let edits = matches!(kind, ToolKind::Edit | ToolKind::Delete | ToolKind::Move);
        let argument = |name: &str| call.arguments.get(name).and_then(|v| v.as_str()).map(str::to_string);
        let mut paths: Vec<PathBuf> = if edits { shown.iter().map(|l| l.path.clone()).collect() } else { vec![] };
        if edits && paths.is_empty() {
            paths.extend(argument("path").map(|p| self.cx.cwd.join(p)));
        }
        ToolCallInfo {
            session_id: turn.session.id.clone(),
            cwd: self.cx.cwd.clone(),
            call_id: call.id.clone(),
            tool: call.name.clone(),
            kind,
            arguments: call.arguments.clone(),
            paths,
            command: if kind == ToolKind::Execute { argument("command") } else { None },
        }
    }

    /// Decides, asking the user if needed, whether the call may run.
    /// The session's current mode (it may change mid-turn).
    async fn mode(&self, turn: &TurnContext) -> Mode {
        turn.engine.session(&turn.session.id).await.map_or(Mode::Ask, |s| s.mode)
    }

    async fn permit(&self, turn: &TurnContext, call: &ToolCall, kind: ToolKind, title: &str) -> Permit {
        let mode = self.mode(turn).await;
        let subject = call.arguments.get("command").or_else(|| call.arguments.get("path")).and_then(|v| v.as_str());
        let remembered = self.lock().get(&call.name).copied();
        match self.policy.decide(mode, &call.name, kind, subject, remembered) {
            Verdict::Allow => Permit::Run,
            Verdict::Deny(reason) => Permit::Refused(format!("not allowed: {reason}")),
            Verdict::Ask => self.ask(turn, call, kind, title).await,
        }
    }

    async fn ask(&self, turn: &TurnContext, call: &ToolCall, kind: ToolKind, title: &str) -> Permit {
        let engine = &turn.engine;
        let (request_id, answer) = turn.claim.open_question();
        turn.emit(ChatEvent::PermissionRequest(PermissionRequest {
            request_id,
            tool_call_id: call.id.clone(),
            tool: call.name.clone(),
            title: title.to_string(),
            kind,
        }))
        .await;
        let answer = tokio::select! {
            a = answer => a.unwrap_or(PermissionAnswer::Cancelled),
            () = self.cx.cancel.cancelled() => PermissionAnswer::Cancelled,
        };
        turn.claim.forget_question(request_id);
        let remember = |d: Remembered| async move {
            self.lock().insert(call.name.clone(), d);
            if let Err(e) = engine.store().set_permission(&turn.session.id, &call.name, d.as_str()).await {
                tracing::warn!(error = %e, "cannot save the permission choice");
            }
        };
        match answer {
            PermissionAnswer::AllowOnce => Permit::Run,
            PermissionAnswer::AllowAlways => {
                remember(Remembered::Allow).await;
                Permit::Run
            }
            PermissionAnswer::RejectOnce => Permit::Refused("the user rejected this tool call".into()),
            PermissionAnswer::RejectAlways => {
                remember(Remembered::Reject).await;
                Permit::Refused("the user rejected this tool call (and all further calls of this tool)".into())
            }
            PermissionAnswer::Cancelled => Permit::Cancelled,
        }
    }

    async fn publish_plan(&self, turn: &TurnContext, plan: Vec<super::tools::PlanEntry>) {
        match serde_json::to_value(&plan) {
            Ok(v) => {
                if let Err(e) = turn.engine.store().save_plan(&turn.session.id, v).await {
                    tracing::warn!(error = %e, "cannot save the plan");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot serialize the plan"),
        }
        turn.emit(ChatEvent::Plan(plan)).await;
    }

    async fn finish(
        &self,
        turn: &TurnContext,
        call: &ToolCall,
        status: ToolCallStatus,
        display: Vec<Display>,
        locations: Option<Vec<Location>>,
        output: &str,
    ) {
        turn.emit(ChatEvent::ToolCallUpdated(ToolCallChange {
            id: call.id.clone(),
            status,
            display: Some(display),
            locations,
            output: Some(output.to_string()),
        }))
        .await;
    }

    async fn announce_unknown(&self, turn: &TurnContext, call: &ToolCall, message: &str) {
        turn.emit(ChatEvent::ToolCallStarted(ToolCallStart {
            id: call.id.clone(),
            name: call.name.clone(),
            title: call.name.clone(),
            kind: ToolKind::Other,
            arguments: call.arguments.clone(),
            locations: vec![],
            display: vec![],
        }))
        .await;
        self.finish(turn, call, ToolCallStatus::Failed, vec![Display::Text(message.to_string())], None, message).await;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Remembered>> {
        self.remembered.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The name under which answers about project MCP servers are asked and remembered.
const PROJECT_SERVERS: &str = "start_project_mcp_servers";

/// A server as the user sees it in the question: name and command (never env values).
fn describe_server(config: &super::mcp::McpServerConfig) -> String {
    match config {
        super::mcp::McpServerConfig::Stdio { name, command, args, .. } => {
            let line: Vec<String> =
                std::iter::once(command.display().to_string()).chain(args.iter().cloned()).collect();
            format!("{name} (`{}`)", line.join(" "))
        }
        super::mcp::McpServerConfig::Http { name, url, .. } | super::mcp::McpServerConfig::Sse { name, url, .. } => {
            format!("{name} ({url})")
        }
    }
}

/// How long a cancelled tool gets to stop by itself before it is abandoned.
const CANCEL_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

enum Permit {
    Run,
    Refused(String),
    Cancelled,
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use futures::future::BoxFuture;
    use serde_json::{Value, json};

    use super::*;
    use crate::engine::config::{ConfigFile, EngineConfig, EnvSnapshot};
    use crate::engine::provider::ToolSpec;
    use crate::engine::tools::{NoHost, Preview};
    use crate::engine::{Engine, Mode};

    /// A tool with a bug: it panics on every call.
    struct Panics;

    impl Tool for Panics {
        fn spec(&self) -> ToolSpec {
            ToolSpec { name: "panics".into(), description: "".into(), parameters: json!({"type": "object"}) }
        }
        fn kind(&self) -> ToolKind {
            ToolKind::Read
        }
        fn preview<'a>(&'a self, _: &'a Value, _: &'a ToolContext) -> BoxFuture<'a, Preview> {
            Box::pin(async { Preview { title: "Panic".into(), locations: vec![], display: vec![] } })
        }
        fn run<'a>(&'a self, _: Value, _: &'a ToolContext) -> BoxFuture<'a, ToolOutput> {
            Box::pin(async { panic!("index out of bounds: the len is 0 but the index is 3") })
        }
    }

    #[tokio::test]
    async fn a_panicking_tool_gives_an_error_result_and_the_batch_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let env = EnvSnapshot { ratchet_provider: Some("scripted".into()), ..Default::default() };
        let config = EngineConfig { home: dir.path().to_path_buf(), env, file: ConfigFile::default() };
        let engine = Engine::open(config).await.unwrap();
        let session = engine.create_session(dir.path().to_path_buf(), vec![]).await.unwrap();
        engine.set_mode(&session.id, Mode::Yolo.id()).await.unwrap();
        let claim = engine.claim_turn(&session.id).unwrap();
        let (events, mut rx) = tokio::sync::mpsc::channel(256);
        tokio::spawn(async move { while rx.recv().await.is_some() {} });
        let turn = TurnContext { engine: engine.clone(), session, claim, events, host: Arc::new(NoHost) };
        let mut runner = ToolRunner::new(&turn).await.unwrap();
        runner.tools.add(Arc::new(Panics));
        let calls = [
            ToolCall { id: "1".into(), name: "panics".into(), arguments: json!({}) },
            ToolCall { id: "2".into(), name: "list_dir".into(), arguments: json!({"path": "."}) },
        ];
        let (results, cancelled) = runner.run_all(&turn, &calls).await;
        assert!(!cancelled);
        assert_eq!(results.len(), 2);
        assert!(results[0].is_error && results[0].content.contains("panicked"), "{:?}", results[0]);
        assert!(!results[1].is_error, "{:?}", results[1]);
    }
}
