// The ACP client for one `ratchet acp` process: spawn, handshake, sessions, prompt turns and
// the client-side methods the agent calls (permissions, fs). No `vscode` import: the
// extension supplies a `ClientHost`, the node tests supply their own, both against the real
// binary. Wire types are the official SDK's (`@agentclientprotocol/sdk`, types only, so the
// packaged extension carries no runtime dependency).
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import type {
  ContentBlock,
  InitializeResponse,
  ListSessionsResponse,
  LoadSessionResponse,
  NewSessionResponse,
  PromptResponse,
  ReadTextFileRequest,
  ReadTextFileResponse,
  RequestPermissionRequest,
  RequestPermissionResponse,
  SessionConfigOption,
  SessionNotification,
  SetSessionConfigOptionResponse,
  WriteTextFileRequest,
} from "./schema";
import type { FormResponse } from "./forms";
import { JsonRpcConnection, RpcError, type RequestHandler } from "./jsonrpc";

export const PROTOCOL_VERSION = 1;

/** What the agent may ask of the editor. Advertised in `initialize` exactly as implemented:
 * both `fs` methods, forms when `elicit` is given, no terminals (ratchet then runs commands
 * itself). */
export interface ClientHost {
  readTextFile(request: ReadTextFileRequest): Promise<ReadTextFileResponse>;
  writeTextFile(request: WriteTextFileRequest): Promise<void>;
  requestPermission(request: RequestPermissionRequest): Promise<RequestPermissionResponse>;
  /** `elicitation/create` in form mode (see forms.ts's `answerForm`). */
  elicit?(params: unknown): Promise<FormResponse>;
}

export interface AcpClientOptions {
  /** The ratchet binary; `acp` is appended to `args`. */
  command: string;
  args?: string[];
  /** The workspace folder: the process's cwd and every session's. */
  cwd: string;
  env?: NodeJS.ProcessEnv;
  host: ClientHost;
  clientInfo?: { name: string; version: string };
  onStderr?: (text: string) => void;
  onExit?: (code: number | null, signal: NodeJS.Signals | null) => void;
  onProtocolError?: (what: string) => void;
  /** ratchet withdrew a question of its own that was still open (answered elsewhere). */
  onWithdrawn?: (method: string, params: unknown) => void;
}

export type UpdateListener = (notification: SessionNotification) => void;

/** Stderr kept for error messages: enough to show why the process died. */
const STDERR_TAIL_CHARS = 4000;

export class AcpClient {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly conn: JsonRpcConnection;
  private readonly listeners = new Set<UpdateListener>();
  private stderrTail = "";
  /** The `initialize` answer. */
  agent: InitializeResponse | undefined;
  exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  readonly cwd: string;

  private constructor(options: AcpClientOptions) {
    this.cwd = options.cwd;
    this.child = spawn(options.command, [...(options.args ?? []), "acp"], {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ["pipe", "pipe", "pipe"],
    });
    this.child.stderr.setEncoding("utf8");
    this.child.stderr.on("data", (text: string) => {
      this.stderrTail = (this.stderrTail + text).slice(-STDERR_TAIL_CHARS);
      options.onStderr?.(text);
    });
    const host = options.host;
    const handlers: Record<string, RequestHandler> = {
      "fs/read_text_file": (p) => host.readTextFile(p as ReadTextFileRequest),
      "fs/write_text_file": async (p) => {
        await host.writeTextFile(p as WriteTextFileRequest);
        return {};
      },
      "session/request_permission": (p) => host.requestPermission(p as RequestPermissionRequest),
    };
    if (host.elicit) handlers["elicitation/create"] = (p) => host.elicit!(p);
    this.conn = new JsonRpcConnection(this.child.stdout, this.child.stdin, {
      handlers,
      onNotification: (method, params) => {
        if (method !== "session/update") return;
        for (const listener of [...this.listeners]) listener(params as SessionNotification);
      },
      onProtocolError: options.onProtocolError,
      onWithdrawn: options.onWithdrawn,
    });
    this.child.on("error", (err) => this.conn.close(`could not start ${options.command}: ${err.message}`));
    this.child.on("exit", (code, signal) => {
      this.exited = { code, signal };
      const tail = this.stderrTail.trim();
      this.conn.close(`ratchet acp exited (${signal ?? code})${tail ? `: ${tail.split("\n").slice(-3).join(" | ")}` : ""}`);
      options.onExit?.(code, signal);
    });
  }

  /** Spawns `ratchet acp` in `options.cwd` and runs `initialize`. */
  static async start(options: AcpClientOptions): Promise<AcpClient> {
    const client = new AcpClient(options);
    try {
      client.agent = await client.conn.request<InitializeResponse>("initialize", {
        protocolVersion: PROTOCOL_VERSION,
        clientCapabilities: {
          fs: { readTextFile: true, writeTextFile: true },
          terminal: false,
          // Not in the stable v1 types yet; ratchet reads it (forms, else a plan approval
          // comes as a permission request and other questions wait for the CLI).
          ...(options.host.elicit ? { elicitation: { form: {} } } : {}),
        },
        clientInfo: options.clientInfo ?? { name: "ratchet-vscode", version: "0.1.0" },
      });
    } catch (err) {
      client.stop();
      throw err;
    }
    return client;
  }

  /** Every `session/update`, for every session of this process; returns the unsubscribe. */
  onUpdate(listener: UpdateListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get canLoad(): boolean {
    return this.agent?.agentCapabilities?.loadSession === true;
  }

  get canList(): boolean {
    return this.agent?.agentCapabilities?.sessionCapabilities?.list != null;
  }

  newSession(): Promise<NewSessionResponse> {
    return this.conn.request("session/new", { cwd: this.cwd, mcpServers: [] });
  }

  /** One turn; resolves when it ends (its updates arrive through `onUpdate` before that). */
  prompt(sessionId: string, prompt: string | ContentBlock[]): Promise<PromptResponse> {
    const blocks: ContentBlock[] = typeof prompt === "string" ? [{ type: "text", text: prompt }] : prompt;
    return this.conn.request("session/prompt", { sessionId, prompt: blocks });
  }

  /** Asks the agent to stop the running turn; the prompt then ends with `cancelled`. */
  cancel(sessionId: string): void {
    this.conn.notify("session/cancel", { sessionId });
  }

  listSessions(cursor?: string): Promise<ListSessionsResponse> {
    if (!this.canList) return Promise.reject(new RpcError(-32601, "this agent cannot list sessions (no sessionCapabilities.list)"));
    return this.conn.request("session/list", cursor ? { cwd: this.cwd, cursor } : { cwd: this.cwd });
  }

  /** Opens a past session; its history replays as `session/update`s before this resolves. */
  loadSession(sessionId: string): Promise<LoadSessionResponse> {
    if (!this.canLoad) return Promise.reject(new RpcError(-32601, "this agent cannot load sessions (no loadSession)"));
    return this.conn.request("session/load", { sessionId, cwd: this.cwd, mcpServers: [] });
  }

  /** Sets a config option (mode, model); the agent answers with the complete new list. */
  async setConfigOption(sessionId: string, configId: string, value: string): Promise<SessionConfigOption[]> {
    const result = await this.conn.request<SetSessionConfigOptionResponse>("session/set_config_option", {
      sessionId,
      configId,
      value,
    });
    return result.configOptions;
  }

  /** Our requests still waiting for an answer. */
  get pendingRequests(): number {
    return this.conn.pendingCount;
  }

  /** Ends the process: closing stdin makes ratchet cancel turns, save and exit. */
  stop(): void {
    this.child.stdin.end();
    if (this.exited === undefined) {
      const timer = setTimeout(() => {
        if (this.exited === undefined) this.child.kill("SIGTERM");
      }, STOP_GRACE_MS);
      timer.unref();
    }
  }

  /** Resolves once the process has exited. */
  waitForExit(): Promise<void> {
    if (this.exited !== undefined) return Promise.resolve();
    return new Promise((resolve) => this.child.once("exit", () => resolve()));
  }
}

/** How long `stop` lets ratchet save partial answers before it is sent SIGTERM. */
const STOP_GRACE_MS = 3000;

/** The config option of `category` ("mode", "model"), if the agent offers one. */
export function configOption(options: SessionConfigOption[] | null | undefined, category: string): SessionConfigOption | undefined {
  return (options ?? []).find((o) => o.category === category || o.id === category);
}

/** A select option's values, groups flattened to "group / name". */
export function optionValues(option: SessionConfigOption): { value: string; name: string }[] {
  if (option.type !== "select") return [];
  const out: { value: string; name: string }[] = [];
  for (const v of option.options as Array<Record<string, unknown>>) {
    if (Array.isArray(v.options)) {
      for (const inner of v.options as Array<{ value: string; name?: string }>) {
        out.push({ value: inner.value, name: `${String(v.name ?? v.group)} / ${inner.name ?? inner.value}` });
      }
    } else {
      out.push({ value: String(v.value), name: String(v.name ?? v.value) });
    }
  }
  return out;
}

/** The current value's display name (for the status bar). */
export function currentName(option: SessionConfigOption | undefined): string | undefined {
  if (!option) return undefined;
  const current = String(option.currentValue);
  return optionValues(option).find((v) => v.value === current)?.name ?? current;
}
