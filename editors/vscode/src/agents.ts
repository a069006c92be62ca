// The folder agents of this window, one per workspace folder, and which one is "current"
// (the active editor's folder, else the first), with the status bar item that shows its mode
// and model.
import * as vscode from "vscode";
import { configOption, currentName } from "./acp/client";
import { FolderAgent } from "./folderAgent";

export class Agents implements vscode.Disposable {
  private readonly byFolder = new Map<string, FolderAgent>();
  private readonly status: vscode.StatusBarItem;
  private readonly subscriptions: vscode.Disposable[] = [];

  constructor(private readonly log: vscode.LogOutputChannel) {
    this.status = vscode.window.createStatusBarItem("ratchet.status", vscode.StatusBarAlignment.Right, 100);
    this.status.name = "Ratchet";
    this.status.command = "ratchet.mode";
    this.subscriptions.push(
      vscode.window.onDidChangeActiveTextEditor(() => this.refresh()),
      vscode.workspace.onDidChangeWorkspaceFolders((e) => {
        for (const f of e.removed) {
          this.byFolder.get(f.uri.toString())?.stop();
          this.byFolder.delete(f.uri.toString());
        }
        this.refresh();
      }),
    );
    this.refresh();
  }

  /** The folder agent for the active editor's folder (else the first folder), if any folder is open. */
  current(): FolderAgent | undefined {
    const active = vscode.window.activeTextEditor?.document.uri;
    const folder = (active && vscode.workspace.getWorkspaceFolder(active)) ?? vscode.workspace.workspaceFolders?.[0];
    if (!folder) return undefined;
    const key = folder.uri.toString();
    let agent = this.byFolder.get(key);
    if (!agent) {
      agent = new FolderAgent(folder, this.log, () => this.refresh());
      this.byFolder.set(key, agent);
    }
    return agent;
  }

  all(): FolderAgent[] {
    return [...this.byFolder.values()];
  }

  /** Redraws the status bar for the current folder: `ratchet: <mode> · <model>`. */
  refresh(): void {
    const folder = vscode.workspace.workspaceFolders?.length ? this.current() : undefined;
    if (!folder) {
      this.status.hide();
      return;
    }
    const mode = currentName(configOption(folder.config, "mode"));
    const model = currentName(configOption(folder.config, "model"));
    this.status.text = `$(hubot) ratchet${mode ? `: ${mode}` : ""}${model ? ` · ${model}` : ""}`;
    const lines = [`ratchet in ${folder.folder.name}`];
    if (folder.title) lines.push(`session: ${folder.title}`);
    if (folder.usage) lines.push(`context: ${folder.usage.used}/${folder.usage.size} tokens`);
    lines.push("Click to pick the mode");
    this.status.tooltip = lines.join("\n");
    this.status.show();
  }

  dispose(): void {
    for (const agent of this.byFolder.values()) agent.stop();
    this.byFolder.clear();
    this.status.dispose();
    for (const s of this.subscriptions) s.dispose();
  }
}
