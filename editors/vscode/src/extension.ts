// Entry point: the `@ratchet` chat participant, the commands, the status bar, and the log.
import * as vscode from "vscode";
import { Agents } from "./agents";
import { registerCommands } from "./commands";
import { chatHandler } from "./participant";

export function activate(context: vscode.ExtensionContext): void {
  const log = vscode.window.createOutputChannel("Ratchet", { log: true });
  const agents = new Agents(log);
  const participant = vscode.chat.createChatParticipant("ratchet.agent", chatHandler(agents));
  participant.iconPath = new vscode.ThemeIcon("hubot");
  context.subscriptions.push(log, agents, participant, ...registerCommands(agents));
}

export function deactivate(): void {
  // `Agents.dispose` (a subscription) stops every `ratchet acp`.
}
