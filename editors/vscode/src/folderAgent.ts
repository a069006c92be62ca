// One `ratchet acp` process per workspace folder and the session it chats in: started on the
// first request, its session state (config options, title, usage) kept from the agent's
// updates, the running turn's chat response as the place its output and permission buttons go.
import * as vscode from "vscode";
import { AcpClient, type ClientHost } from "./acp/client";
import { readTextFile, writeTextFile } from "./acp/files";
import { answerForm, type FormResponse } from "./acp/forms";
import type {
  ContentBlock,
  PromptResponse,
  RequestPermissionRequest,
  RequestPermissionResponse,
  SessionConfigOption,
  SessionInfo,
  SessionUpdate,
} from "./acp/schema";
import { TurnRenderer } from "./acp/render";
import { EditorDocuments } from "./documents";
import { quickInputAsker } from "./forms";

/** The chat response a turn writes to while it runs. */
export interface TurnSink {
  stream: vscode.ChatResponseStream;
  renderer: TurnRenderer;
}

/** The command a permission button runs, with (prompt key, option id). */
export const ANSWER_PERMISSION_COMMAND = "ratchet.answerPermission";

/** Button keys are unique across folders: the command asks every folder agent in turn. */
let nextPermissionKey = 1;

export class FolderAgent implements ClientHost {
  private client: AcpClient | undefined;
  private starting: Promise<AcpClient> | undefined;
  sessionId: string | undefined;
  config: SessionConfigOption[] = [];
  title: string | undefined;
  usage: { used: number; size: number } | undefined;
  /** Turns prompted in this session from this window (a new chat starts a new session after one). */
  turns = 0;
  /** A session just loaded from history: the next chat continues it even if the chat is new. */
  continueLoaded = false;
  private sink: TurnSink | undefined;
  /** Open permission questions by button key: how to answer, and what to show once answered. */
  private readonly permissions = new Map<string, { resolve: (r: RequestPermissionResponse) => void; names: Map<string, string>; stream: vscode.ChatResponseStream }>();
  private readonly documents = new EditorDocuments();
  /** Counts processes started; an exit of a process that was already replaced changes nothing. */
  private generation = 0;

  constructor(
    readonly folder: vscode.WorkspaceFolder,
    private readonly log: vscode.LogOutputChannel,
    private readonly changed: () => void,
  ) {}

  private async ensureClient(): Promise<AcpClient> {
    if (this.client && this.client.exited === undefined) return this.client;
    if (!this.starting) {
      const settings = vscode.workspace.getConfiguration("ratchet", this.folder.uri);
      const command = settings.get<string>("path", "ratchet");
      const env = { ...process.env, ...settings.get<Record<string, string>>("env", {}) };
      this.log.info(`starting ${command} acp in ${this.folder.uri.fsPath}`);
      const generation = ++this.generation;
      this.starting = AcpClient.start({
        command,
        cwd: this.folder.uri.fsPath,
        env,
        host: this,
        clientInfo: { name: "ratchet-vscode", version: "0.1.0" },
        onStderr: (text) => this.log.debug(text.trimEnd()),
        onProtocolError: (what) => this.log.warn(`protocol: ${what}`),
        // The prompt or picker stays open (VS Code cannot close another's); its answer is dropped.
        onWithdrawn: () =>
          void vscode.window.showInformationMessage(
            "ratchet withdrew its question (it was answered elsewhere); an answer given now is ignored.",
          ),
        onExit: (code, signal) => {
          this.log.info(`ratchet acp exited (${signal ?? code})`);
          if (generation !== this.generation) return;
          this.client = undefined;
          this.sessionId = undefined;
          this.answerOpenPermissions();
          this.changed();
        },
      })
        .then((client) => {
          if (generation !== this.generation) {
            client.stop();
            throw new Error("ratchet was restarted while it started; send the message again");
          }
          client.onUpdate((n) => {
            if (n.sessionId !== this.sessionId) return;
            this.observe(n.update);
            this.sink?.renderer.update(n.update);
          });
          this.client = client;
          return client;
        })
        .finally(() => (this.starting = undefined));
    }
    return this.starting;
  }

  /** Keeps what the status bar shows current. */
  private observe(update: SessionUpdate): void {
    switch (update.sessionUpdate) {
      case "config_option_update":
        this.config = update.configOptions;
        break;
      case "current_mode_update":
        this.config = this.config.map((o) => (o.category === "mode" ? ({ ...o, currentValue: update.currentModeId } as SessionConfigOption) : o));
        break;
      case "session_info_update":
        if (update.title != null) this.title = update.title;
        break;
      case "usage_update":
        this.usage = { used: update.used, size: update.size };
        break;
      default:
        return;
    }
    this.changed();
  }

  /** The client with a session open (a new one if none is). */
  async session(): Promise<{ client: AcpClient; sessionId: string }> {
    const client = await this.ensureClient();
    if (!this.sessionId) await this.newSession();
    return { client, sessionId: this.sessionId! };
  }

  async newSession(): Promise<void> {
    const client = await this.ensureClient();
    const session = await client.newSession();
    this.sessionId = session.sessionId;
    this.config = session.configOptions ?? [];
    this.title = undefined;
    this.usage = undefined;
    this.turns = 0;
    this.continueLoaded = false;
    this.changed();
  }

  /** Runs one turn, its output into `stream`; `token` cancels it. */
  async prompt(blocks: ContentBlock[], stream: vscode.ChatResponseStream, token: vscode.CancellationToken): Promise<PromptResponse> {
    const { client, sessionId } = await this.session();
    const renderer = new TurnRenderer({ markdown: (t) => stream.markdown(t), progress: (t) => stream.progress(t) });
    this.sink = { stream, renderer };
    this.turns++;
    this.continueLoaded = false;
    const cancel = token.onCancellationRequested(() => this.cancel());
    try {
      const result = await client.prompt(sessionId, blocks);
      renderer.finish(result.stopReason);
      return result;
    } finally {
      cancel.dispose();
      this.sink = undefined;
      this.answerOpenPermissions();
    }
  }

  /** Cancels the running turn; open permission prompts are answered "cancelled". */
  cancel(): void {
    this.answerOpenPermissions();
    if (this.client && this.sessionId) this.client.cancel(this.sessionId);
  }

  async listSessions(): Promise<SessionInfo[]> {
    const client = await this.ensureClient();
    return (await client.listSessions()).sessions;
  }

  /** Loads a past session; returns its history as markdown. */
  async loadSession(sessionId: string): Promise<string> {
    if (this.running) throw new Error("a turn is running in this folder; cancel it (Ratchet: Cancel the Running Turn) before loading another session");
    const client = await this.ensureClient();
    let history = "";
    const renderer = new TurnRenderer({ markdown: (t) => (history += t), progress: () => undefined });
    const stop = client.onUpdate((n) => {
      if (n.sessionId === sessionId) renderer.update(n.update);
    });
    try {
      const result = await client.loadSession(sessionId);
      renderer.finish(undefined);
      this.sessionId = sessionId;
      this.config = result.configOptions ?? [];
      this.turns = 0;
      this.continueLoaded = true;
      this.changed();
      return history;
    } finally {
      stop();
    }
  }

  async setConfig(configId: string, value: string): Promise<void> {
    const { client, sessionId } = await this.session();
    this.config = await client.setConfigOption(sessionId, configId, value);
    this.changed();
  }

  get running(): boolean {
    return this.sink !== undefined;
  }

  stop(): void {
    this.generation++;
    this.answerOpenPermissions();
    this.client?.stop();
    this.client = undefined;
    this.sessionId = undefined;
  }

  // ClientHost: what the agent asks of the editor.

  readTextFile(request: Parameters<ClientHost["readTextFile"]>[0]) {
    return readTextFile(this.documents, request);
  }

  writeTextFile(request: Parameters<ClientHost["writeTextFile"]>[0]) {
    return writeTextFile(this.documents, request);
  }

  /** A form (a question of the model's, a plan to approve), asked with quick picks and input boxes. */
  elicit(params: unknown): Promise<FormResponse> {
    this.sink?.stream.progress("Waiting for your answer…");
    return answerForm(params, quickInputAsker(this.folder.name));
  }

  /** Buttons in the running turn's response, one per option the agent offers; without a turn
   * shown here (a turn another window started), a modal message asks instead. */
  requestPermission(request: RequestPermissionRequest): Promise<RequestPermissionResponse> {
    const title = request.toolCall.title ?? request.toolCall.toolCallId;
    const sink = this.sink;
    if (!sink) return this.askModal(title, request);
    const key = String(nextPermissionKey++);
    return new Promise((resolve) => {
      this.permissions.set(key, { resolve, names: new Map(request.options.map((o) => [o.optionId, o.name])), stream: sink.stream });
      sink.stream.markdown(`\n\n**ratchet wants to run:** \`${title.replace(/`/g, "'")}\`\n\n`);
      for (const option of request.options) {
        sink.stream.button({ command: ANSWER_PERMISSION_COMMAND, title: option.name, arguments: [key, option.optionId] });
      }
      sink.stream.progress("Waiting for your answer…");
    });
  }

  /** A permission button was clicked; false when its prompt was already answered. */
  answerPermission(key: string, optionId: string): boolean {
    const open = this.permissions.get(key);
    if (!open) return false;
    this.permissions.delete(key);
    open.stream.markdown(`\n\n_You chose: ${open.names.get(optionId) ?? optionId}_\n\n`);
    open.resolve({ outcome: { outcome: "selected", optionId } });
    return true;
  }

  private answerOpenPermissions(): void {
    for (const open of this.permissions.values()) open.resolve({ outcome: { outcome: "cancelled" } });
    this.permissions.clear();
  }

  private async askModal(title: string, request: RequestPermissionRequest): Promise<RequestPermissionResponse> {
    const picked = await vscode.window.showWarningMessage(
      `ratchet (${this.folder.name}) wants to run: ${title}`,
      { modal: true },
      ...request.options.map((o) => o.name),
    );
    const option = request.options.find((o) => o.name === picked);
    return option ? { outcome: { outcome: "selected", optionId: option.optionId } } : { outcome: { outcome: "cancelled" } };
  }
}
