// What the client tests share: the real `ratchet` binary (RATCHET_BIN, default
// target/debug/ratchet of the repository, or $CARGO_TARGET_DIR/debug/ratchet), the loopback
// mock LLM of the Neovim tests (editors/nvim/test/mock_llm.py, OpenAI SSE), a private
// RATCHET_HOME, and a ClientHost whose "open documents" are a map.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import type { RequestPermissionRequest, RequestPermissionResponse, ReadTextFileRequest, ReadTextFileResponse, WriteTextFileRequest, SessionNotification } from "../src/acp/schema";
import { AcpClient, type ClientHost } from "../src/acp/client";
import { readTextFile, writeTextFile, type OpenDocuments } from "../src/acp/files";
import { answerForm, type FormField, type FormResponse } from "../src/acp/forms";

/** editors/vscode/out/test -> the repository root. */
export const REPO_ROOT = resolve(__dirname, "..", "..", "..", "..");
const WAIT_MS = 20_000;

export function ratchetBin(): string {
  const given = process.env.RATCHET_BIN ?? join(process.env.CARGO_TARGET_DIR ?? "target", "debug", "ratchet");
  const bin = isAbsolute(given) ? given : join(REPO_ROOT, given);
  if (!existsSync(bin)) throw new Error(`no ratchet binary at ${bin}: run cargo build, or set RATCHET_BIN`);
  return bin;
}

export interface Fixture {
  bin: string;
  tmp: string;
  workspace: string;
  env: NodeJS.ProcessEnv;
  requestLog: string;
  stop(): void;
}

/** Starts the mock LLM with `script` and makes a workspace and RATCHET_HOME under one temp dir. */
export async function startFixture(script: string): Promise<Fixture> {
  const bin = ratchetBin();
  const tmp = mkdtempSync(join(tmpdir(), "ratchet-vscode-test-"));
  const workspace = join(tmp, "workspace");
  const home = join(tmp, "home");
  mkdirSync(workspace);
  mkdirSync(home);
  const portFile = join(tmp, "port");
  const requestLog = join(tmp, "requests.jsonl");
  const mock: ChildProcess = spawn("python3", [join(REPO_ROOT, "editors/nvim/test/mock_llm.py"), script, portFile, requestLog], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  await waitFor("the mock LLM's port", () => existsSync(portFile));
  const port = readFileSync(portFile, "utf8").trim();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    RATCHET_HOME: home,
    RATCHET_PROVIDER: "openai",
    RATCHET_MODEL: "mock-model",
    OPENAI_BASE_URL: `http://127.0.0.1:${port}/v1`,
    OPENAI_API_KEY: "test",
  };
  return {
    bin,
    tmp,
    workspace,
    env,
    requestLog,
    stop() {
      mock.kill();
      rmSync(tmp, { recursive: true, force: true });
    },
  };
}

export async function waitFor(what: string, cond: () => boolean, ms = WAIT_MS): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A ClientHost like the extension's: documents in `open` win over the disk; permission
 * requests are answered with the option of kind `answer` ("hold" keeps them open). */
export class TestHost implements ClientHost {
  readonly open = new Map<string, string>();
  readonly writes: WriteTextFileRequest[] = [];
  readonly reads: ReadTextFileRequest[] = [];
  readonly permissions: RequestPermissionRequest[] = [];
  answer: "allow_once" | "reject_once" | "hold" = "allow_once";
  held: ((r: RequestPermissionResponse) => void) | undefined;
  /** Every form field asked, with the form's message on the first of each form. */
  readonly asked: { field: FormField; message: string | undefined }[] = [];
  /** The answer to a form field (undefined: dismissed). */
  formAnswer: (field: FormField) => unknown = () => undefined;

  private readonly docs: OpenDocuments = {
    text: (path) => this.open.get(path),
    replace: async (path, content) => {
      if (!this.open.has(path)) return false;
      this.open.set(path, content);
      return true;
    },
  };

  readTextFile(request: ReadTextFileRequest): Promise<ReadTextFileResponse> {
    this.reads.push(request);
    return readTextFile(this.docs, request);
  }

  async writeTextFile(request: WriteTextFileRequest): Promise<void> {
    this.writes.push(request);
    await writeTextFile(this.docs, request);
  }

  elicit(params: unknown): Promise<FormResponse> {
    return answerForm(params, async (field, message) => {
      this.asked.push({ field, message });
      return this.formAnswer(field);
    });
  }

  requestPermission(request: RequestPermissionRequest): Promise<RequestPermissionResponse> {
    this.permissions.push(request);
    if (this.answer === "hold") return new Promise((r) => (this.held = r));
    const option = request.options.find((o) => o.kind === this.answer);
    if (!option) throw new Error(`no ${this.answer} option among ${JSON.stringify(request.options)}`);
    return Promise.resolve({ outcome: { outcome: "selected", optionId: option.optionId } });
  }
}

/** A client on the fixture, with every update it receives recorded. */
export async function startClient(fx: Fixture, host: ClientHost): Promise<{ client: AcpClient; updates: SessionNotification[]; stderr: string[] }> {
  const updates: SessionNotification[] = [];
  const stderr: string[] = [];
  const client = await AcpClient.start({ command: fx.bin, cwd: fx.workspace, env: fx.env, host, onStderr: (t) => stderr.push(t) });
  client.onUpdate((n) => updates.push(n));
  return { client, updates, stderr };
}

export function writeText(path: string, text: string): void {
  writeFileSync(path, text);
}
