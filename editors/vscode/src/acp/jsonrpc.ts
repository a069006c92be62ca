// Newline-delimited JSON-RPC 2.0 over a pair of byte streams, both directions: our requests
// to the agent (ids correlated with their answers) and the agent's requests to us (served by
// named handlers). No `vscode` import: the node tests drive this against the real binary.
import type { Readable, Writable } from "node:stream";

/** A line longer than this is dropped with an error: it cannot be a sane ACP message, and
 * buffering it without end would let one bad line exhaust the extension host's memory. */
export const MAX_LINE_BYTES = 64 * 1024 * 1024;

/** JSON-RPC error codes we answer with. */
export const ErrorCode = {
  ParseError: -32700,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  Internal: -32603,
  ResourceNotFound: -32002,
  RequestCancelled: -32800,
} as const;

/** An error answer, from either side. Handlers throw it to answer a request with an error. */
export class RpcError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly data?: unknown,
  ) {
    super(message);
    this.name = "RpcError";
  }
}

export type RequestHandler = (params: unknown) => unknown | Promise<unknown>;

export interface ConnectionOptions {
  /** The agent's requests to us, by method; a method not here is answered -32601. */
  handlers: Record<string, RequestHandler>;
  onNotification?: (method: string, params: unknown) => void;
  /** A line that is not JSON-RPC, or a handler that failed with something other than an RpcError. */
  onProtocolError?: (what: string) => void;
  /** The agent withdrew (`$/cancel_request`) one of its requests while we were still serving
   * it (say, a form the user has open). It has been answered -32800; the handler's own
   * answer, when it comes, is dropped. */
  onWithdrawn?: (method: string, params: unknown) => void;
}

interface Pending {
  method: string;
  resolve: (result: unknown) => void;
  reject: (err: Error) => void;
}

type Message = {
  jsonrpc?: string;
  id?: number | string | null;
  method?: string;
  params?: unknown;
  result?: unknown;
  error?: { code: number; message: string; data?: unknown };
};

export class JsonRpcConnection {
  private nextId = 1;
  private readonly pending = new Map<number | string, Pending>();
  /** The agent's requests we are serving, by id as JSON text (`7` and `"7"` differ). */
  private readonly serving = new Map<string, { method: string; params: unknown }>();
  private buffered = "";
  private closedReason: string | undefined;

  constructor(
    input: Readable,
    private readonly output: Writable,
    private readonly options: ConnectionOptions,
  ) {
    input.setEncoding("utf8");
    input.on("data", (chunk: string) => this.feed(chunk));
    input.on("end", () => this.close("the agent closed its output"));
    input.on("error", (err) => this.close(`reading from the agent failed: ${err.message}`));
    output.on("error", (err) => this.close(`writing to the agent failed: ${err.message}`));
  }

  /** Sends a request and resolves with its result (rejects with an RpcError on an error answer). */
  request<T>(method: string, params: unknown): Promise<T> {
    if (this.closedReason !== undefined) {
      return Promise.reject(new RpcError(ErrorCode.Internal, `${method}: ${this.closedReason}`));
    }
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { method, resolve: resolve as (r: unknown) => void, reject });
      this.write({ jsonrpc: "2.0", id, method, params });
    });
  }

  notify(method: string, params: unknown): void {
    if (this.closedReason === undefined) this.write({ jsonrpc: "2.0", method, params });
  }

  /** How many of our requests still wait for an answer. */
  get pendingCount(): number {
    return this.pending.size;
  }

  /** Fails every pending request with `reason`; later requests fail at once. */
  close(reason: string): void {
    if (this.closedReason !== undefined) return;
    this.closedReason = reason;
    for (const [, p] of this.pending) p.reject(new RpcError(ErrorCode.Internal, `${p.method}: ${reason}`));
    this.pending.clear();
  }

  /** Splits incoming text into lines; exposed for the framing test. */
  feed(chunk: string): void {
    this.buffered += chunk;
    let newline: number;
    while ((newline = this.buffered.indexOf("\n")) >= 0) {
      const line = this.buffered.slice(0, newline).trim();
      this.buffered = this.buffered.slice(newline + 1);
      if (line !== "") this.dispatch(line);
    }
    if (this.buffered.length > MAX_LINE_BYTES) {
      this.buffered = "";
      this.options.onProtocolError?.(`dropped a line over ${MAX_LINE_BYTES} bytes`);
    }
  }

  private write(message: Message): void {
    this.output.write(JSON.stringify(message) + "\n");
  }

  private dispatch(line: string): void {
    let msg: Message;
    try {
      msg = JSON.parse(line) as Message;
    } catch {
      this.options.onProtocolError?.(`not JSON: ${line.slice(0, 200)}`);
      return;
    }
    if (typeof msg !== "object" || msg === null) {
      this.options.onProtocolError?.(`not a JSON-RPC message: ${line.slice(0, 200)}`);
      return;
    }
    if (typeof msg.method === "string") {
      if (msg.method === "$/cancel_request" && (msg.id === undefined || msg.id === null)) {
        this.withdraw((msg.params as { requestId?: number | string } | undefined)?.requestId);
      } else if (msg.id === undefined || msg.id === null) {
        this.options.onNotification?.(msg.method, msg.params);
      } else {
        void this.serve(msg.id, msg.method, msg.params);
      }
      return;
    }
    if (msg.id === undefined || msg.id === null) {
      this.options.onProtocolError?.(`a response without an id: ${line.slice(0, 200)}`);
      return;
    }
    const pending = this.pending.get(msg.id);
    if (!pending) {
      this.options.onProtocolError?.(`a response to unknown request ${String(msg.id)}`);
      return;
    }
    this.pending.delete(msg.id);
    if (msg.error) {
      pending.reject(new RpcError(msg.error.code, `${pending.method}: ${msg.error.message}`, msg.error.data));
    } else {
      pending.resolve(msg.result ?? null);
    }
  }

  /** Answers a request we still serve -32800 at once (ACP §13.2: it must be answered). */
  private withdraw(requestId: number | string | undefined): void {
    if (requestId === undefined) return;
    const key = JSON.stringify(requestId);
    const served = this.serving.get(key);
    if (!served) return;
    this.reply(requestId, undefined, new RpcError(ErrorCode.RequestCancelled, "Request cancelled"));
    this.options.onWithdrawn?.(served.method, served.params);
  }

  private async serve(id: number | string, method: string, params: unknown): Promise<void> {
    this.serving.set(JSON.stringify(id), { method, params });
    const handler = this.options.handlers[method];
    if (!handler) {
      this.reply(id, undefined, new RpcError(ErrorCode.MethodNotFound, `method not found: ${method}`));
      return;
    }
    try {
      this.reply(id, (await handler(params)) ?? {}, undefined);
    } catch (err) {
      if (err instanceof RpcError) {
        this.reply(id, undefined, err);
      } else {
        const text = err instanceof Error ? err.message : String(err);
        this.options.onProtocolError?.(`${method} handler failed: ${text}`);
        this.reply(id, undefined, new RpcError(ErrorCode.Internal, `${method} failed in the client: ${text}`));
      }
    }
  }

  /** Sends the one answer to the agent's request `id`; any later one (after a withdrawal) is dropped. */
  private reply(id: number | string, result: unknown, error: RpcError | undefined): void {
    if (!this.serving.delete(JSON.stringify(id))) return;
    if (this.closedReason !== undefined) return;
    if (error) {
      const body: Message["error"] = { code: error.code, message: error.message };
      if (error.data !== undefined) body.data = error.data;
      this.write({ jsonrpc: "2.0", id, error: body });
    } else {
      this.write({ jsonrpc: "2.0", id, result });
    }
  }
}
