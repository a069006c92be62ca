// The commands: session history, cancel, mode and model, plans/jobs/questions (the CLI's
// `--json` lists, shown as markdown), restart, and the permission buttons' answer.
import * as vscode from "vscode";
import { configOption, optionValues } from "./acp/client";
import { listRecords, type ListKind } from "./acp/lists";
import type { Agents } from "./agents";
import { ANSWER_PERMISSION_COMMAND, type FolderAgent } from "./folderAgent";

function withAgent(agents: Agents, run: (agent: FolderAgent) => Promise<void>): () => Promise<void> {
  return async () => {
    const agent = agents.current();
    if (!agent) {
      void vscode.window.showWarningMessage("ratchet: open a folder first (ratchet runs one agent per workspace folder).");
      return;
    }
    try {
      await run(agent);
    } catch (err) {
      void vscode.window.showErrorMessage(`ratchet: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
}

async function showMarkdown(content: string): Promise<void> {
  const doc = await vscode.workspace.openTextDocument({ language: "markdown", content });
  await vscode.window.showTextDocument(doc, { preview: true });
}

async function pickConfig(agent: FolderAgent, category: "mode" | "model"): Promise<void> {
  await agent.session();
  const option = configOption(agent.config, category);
  if (!option) {
    void vscode.window.showWarningMessage(`ratchet offers no ${category} option`);
    return;
  }
  const current = String(option.currentValue);
  const picked = await vscode.window.showQuickPick(
    optionValues(option).map((v) => ({ label: v.name, description: v.value === current ? "current" : undefined, value: v.value })),
    { title: `ratchet ${option.name} (now ${current})` },
  );
  if (picked) await agent.setConfig(option.id, picked.value);
}

function showList(agents: Agents, what: ListKind): () => Promise<void> {
  return withAgent(agents, async (agent) => {
    const settings = vscode.workspace.getConfiguration("ratchet", agent.folder.uri);
    const env = { ...process.env, ...settings.get<Record<string, string>>("env", {}) };
    const list = await listRecords(settings.get<string>("path", "ratchet"), what, agent.folder.uri.fsPath, env);
    await showMarkdown(list.markdown);
  });
}

export function registerCommands(agents: Agents): vscode.Disposable[] {
  return [
    vscode.commands.registerCommand(ANSWER_PERMISSION_COMMAND, (key: string, optionId: string) => {
      if (!agents.all().some((a) => a.answerPermission(key, optionId))) {
        void vscode.window.showInformationMessage("ratchet: that question was already answered (or its turn ended).");
      }
    }),
    vscode.commands.registerCommand(
      "ratchet.sessions",
      withAgent(agents, async (agent) => {
        const sessions = await agent.listSessions();
        if (sessions.length === 0) {
          void vscode.window.showInformationMessage(`ratchet: no past sessions in ${agent.folder.name}`);
          return;
        }
        const picked = await vscode.window.showQuickPick(
          sessions.map((s) => ({ label: s.title ?? s.sessionId, description: s.updatedAt ?? undefined, detail: s.sessionId, id: s.sessionId })),
          { title: `Load a ratchet session (${agent.folder.name})`, matchOnDetail: true },
        );
        if (!picked) return;
        const history = await agent.loadSession(picked.id);
        await showMarkdown(`# ratchet session: ${picked.label}\n\n${history}\n\n_Loaded: your next @ratchet message continues this session._\n`);
      }),
    ),
    vscode.commands.registerCommand("ratchet.cancel", withAgent(agents, async (agent) => agent.cancel())),
    vscode.commands.registerCommand("ratchet.mode", withAgent(agents, (agent) => pickConfig(agent, "mode"))),
    vscode.commands.registerCommand("ratchet.model", withAgent(agents, (agent) => pickConfig(agent, "model"))),
    vscode.commands.registerCommand("ratchet.plans", showList(agents, "plans")),
    vscode.commands.registerCommand("ratchet.jobs", showList(agents, "jobs")),
    vscode.commands.registerCommand("ratchet.questions", showList(agents, "questions")),
    vscode.commands.registerCommand(
      "ratchet.restart",
      withAgent(agents, async (agent) => {
        agent.stop();
        await agent.session();
        agents.refresh();
      }),
    ),
  ];
}
