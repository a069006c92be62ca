//! The editor as the engine's [`Host`]: file access and terminals over ACP client methods.
//!
//! Each method is used only when the client advertised it in `initialize`
//! (`fs.readTextFile`, `fs.writeTextFile`, `terminal`); otherwise the tools work locally.

use std::path::PathBuf;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use crate::acp::Peer;
use crate::acp::schema::{
    ClientCapabilities, CreateTerminalRequest, CreateTerminalResponse, KillTerminalRequest, ReadTextFileRequest,
    ReadTextFileResponse, ReleaseTerminalRequest, SessionNotification, SessionUpdate, Terminal, TerminalOutputRequest,
    TerminalOutputResponse, ToolCallContent, ToolCallUpdate, ToolCallUpdateFields, WaitForTerminalExitRequest,
    WriteTextFileRequest,
};
use crate::engine::tools::{CommandRequest, Host, TerminalRun};

/// The editor that owns a prompt.
pub struct AcpHost {
    pub peer: Peer,
    pub session_id: String,
    pub caps: ClientCapabilities,
}

impl AcpHost {
    async fn call<R: DeserializeOwned>(&self, method: &str, params: impl serde::Serialize) -> Result<R, String> {
        let value = self
            .peer
            .request(method, params)
            .await
            .map_err(|e| format!("the editor refused {method}: {}", e.message))?;
        // Some clients answer `null` for empty results.
        let value = if value.is_null() { serde_json::json!({}) } else { value };
        serde_json::from_value(value).map_err(|e| format!("the editor's answer to {method} was malformed: {e}"))
    }

    async fn run(&self, request: CommandRequest, cancel: CancellationToken) -> Result<TerminalRun, String> {
        let sid = self.session_id.clone();
        let create = CreateTerminalRequest::new(sid.clone(), "sh")
            .args(vec!["-c".to_string(), request.command.clone()])
            .cwd(request.cwd.clone())
            .output_byte_limit(request.output_limit as u64);
        let created: CreateTerminalResponse = self.call("terminal/create", create).await?;
        let tid = created.terminal_id.clone();
        if let Some(call_id) = &request.tool_call_id {
            // Embed the terminal now, so the editor shows it live and keeps it after release.
            let fields =
                ToolCallUpdateFields::new().content(vec![ToolCallContent::Terminal(Terminal::new(tid.clone()))]);
            let update = SessionUpdate::ToolCallUpdate(ToolCallUpdate::new(call_id.clone(), fields));
            let _ = self.peer.notify("session/update", SessionNotification::new(sid.clone(), update)).await;
        }
        let wait =
            self.peer.request("terminal/wait_for_exit", WaitForTerminalExitRequest::new(sid.clone(), tid.clone()));
        let stopped_early = tokio::select! {
            _ = wait => false,
            () = tokio::time::sleep(request.timeout) => true,
            () = cancel.cancelled() => true,
        };
        if stopped_early {
            let _ = self.peer.request("terminal/kill", KillTerminalRequest::new(sid.clone(), tid.clone())).await;
        }
        let output: Result<TerminalOutputResponse, String> =
            self.call("terminal/output", TerminalOutputRequest::new(sid.clone(), tid.clone())).await;
        // Release whatever happened, so the editor frees the terminal; its output stays visible.
        let _ = self.peer.request("terminal/release", ReleaseTerminalRequest::new(sid, tid.clone())).await;
        let output = output?;
        let (exit_code, signal) = match &output.exit_status {
            Some(s) => (s.exit_code.map(|c| c as i32), s.signal.clone()),
            None => (None, None),
        };
        let mut text = output.output;
        if stopped_early && !cancel.is_cancelled() {
            text.push_str(&format!("\n[timed out after {:?}; the command was killed]", request.timeout));
        }
        Ok(TerminalRun { terminal_id: tid.0.to_string(), output: text, truncated: output.truncated, exit_code, signal })
    }
}

impl Host for AcpHost {
    fn can_read(&self) -> bool {
        self.caps.fs.read_text_file
    }

    fn can_write(&self) -> bool {
        self.caps.fs.write_text_file
    }

    fn can_run(&self) -> bool {
        self.caps.terminal
    }

    fn read_text_file(
        &self,
        path: PathBuf,
        line: Option<u32>,
        limit: Option<u32>,
    ) -> BoxFuture<'_, Result<String, String>> {
        async move {
            let req = ReadTextFileRequest::new(self.session_id.clone(), path).line(line).limit(limit);
            let resp: ReadTextFileResponse = self.call("fs/read_text_file", req).await?;
            Ok(resp.content)
        }
        .boxed()
    }

    fn write_text_file(&self, path: PathBuf, content: String) -> BoxFuture<'_, Result<(), String>> {
        async move {
            let req = WriteTextFileRequest::new(self.session_id.clone(), path, content);
            self.peer
                .request("fs/write_text_file", req)
                .await
                .map_err(|e| format!("the editor could not write the file: {}", e.message))?;
            Ok(())
        }
        .boxed()
    }

    fn run_command(
        &self,
        request: CommandRequest,
        cancel: CancellationToken,
    ) -> BoxFuture<'_, Result<TerminalRun, String>> {
        self.run(request, cancel).boxed()
    }
}
