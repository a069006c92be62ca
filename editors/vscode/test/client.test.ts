// The ACP client against the real `ratchet acp` and the loopback mock LLM (replies in
// test/script.json, consumed in the order of the tests below, which run one after another).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import type { SessionNotification } from "../src/acp/schema";
import { AcpClient, configOption, currentName, optionValues } from "../src/acp/client";
import { JsonRpcConnection, RpcError } from "../src/acp/jsonrpc";
import { TurnRenderer } from "../src/acp/render";
import { listRecords } from "../src/acp/lists";
import { startClient, startFixture, TestHost, waitFor, writeText, type Fixture } from "./support";

let fx: Fixture;
let host: TestHost;
let client: AcpClient;
let updates: SessionNotification[];
let stderr: string[];
let sessionId: string;

before(async () => {
  fx = await startFixture(join(__dirname, "..", "..", "test", "script.json"));
  host = new TestHost();
  ({ client, updates, stderr } = await startClient(fx, host));
});

after(async () => {
  client?.stop();
  await client?.waitForExit();
  fx?.stop();
});

/** The text of the agent's message chunks of `id` received since index `from`. */
function agentText(from: number, id = sessionId): string {
  return updates
    .slice(from)
    .filter((n) => n.sessionId === id && n.update.sessionUpdate === "agent_message_chunk")
    .map((n) => (n.update.sessionUpdate === "agent_message_chunk" && n.update.content.type === "text" ? n.update.content.text : ""))
    .join("");
}

/** Renders updates from index `from` as the chat participant would. */
function rendered(from: number, stop: Parameters<TurnRenderer["finish"]>[0]): string {
  let md = "";
  const renderer = new TurnRenderer({ markdown: (t) => (md += t), progress: () => undefined });
  for (const n of updates.slice(from)) if (n.sessionId === sessionId) renderer.update(n.update);
  renderer.finish(stop);
  return md;
}

function toolResultSent(callId: string): string {
  for (const line of readFileSync(fx.requestLog, "utf8").trim().split("\n").reverse()) {
    for (const m of (JSON.parse(line) as { messages?: { role: string; tool_call_id?: string; content: unknown }[] }).messages ?? []) {
      if (m.role === "tool" && m.tool_call_id === callId) return JSON.stringify(m.content);
    }
  }
  return "";
}

test("jsonrpc: lines split across chunks, ids correlated both ways, pending requests fail on close", async () => {
  // Two PassThroughs crossed: what we write comes back to us, so our request is served by our
  // own handler and its answer resolves our request.
  const loop = new PassThrough();
  const notes: string[] = [];
  const conn = new JsonRpcConnection(loop, loop, {
    handlers: { "echo/ping": (p) => ({ pong: (p as { n: number }).n }), "echo/fail": () => { throw new RpcError(-32002, "nope"); } },
    onNotification: (m) => notes.push(m),
  });
  assert.deepEqual(await conn.request("echo/ping", { n: 7 }), { pong: 7 });
  await assert.rejects(conn.request("echo/fail", {}), (e: RpcError) => e.code === -32002 && e.message.includes("nope"));
  conn.feed('{"jsonrpc":"2.0","method":"a"}\n{"jsonrpc":"2.0","me');
  assert.deepEqual(notes, ["a"]);
  conn.feed('thod":"b"}\n\nnot json\n');
  assert.deepEqual(notes, ["a", "b"]);
  await assert.rejects(conn.request("nobody/serves", {}), (e: RpcError) => e.code === -32601);
  // A connection whose output goes nowhere: its pending request fails when it closes.
  const mute = new JsonRpcConnection(new PassThrough(), new PassThrough(), { handlers: {} });
  const never = mute.request("nobody/answers", {});
  mute.close("test over");
  await assert.rejects(never, /test over/);
  await assert.rejects(mute.request("after/close", {}), /test over/);
});

test("jsonrpc: a request the agent withdraws ($/cancel_request) is answered -32800 at once, a late answer dropped", async () => {
  // Crossed streams again: our request comes back as the agent's, served by a handler that
  // waits like a form the user has open.
  const loop = new PassThrough();
  const written: string[] = [];
  loop.on("data", (chunk: Buffer | string) => written.push(String(chunk)));
  let finish: (answer: unknown) => void = () => {};
  const withdrawn: [string, unknown][] = [];
  const conn = new JsonRpcConnection(loop, loop, {
    handlers: { "ask/form": () => new Promise((resolve) => (finish = resolve)) },
    onWithdrawn: (method, params) => withdrawn.push([method, params]),
  });
  const asked = conn.request("ask/form", { message: "Approve plan p1?" });
  await new Promise((r) => setImmediate(r));
  // The request went out as id 1, and came back to us as the agent's request 1.
  conn.notify("$/cancel_request", { requestId: 1 });
  await assert.rejects(asked, (e: RpcError) => e.code === -32800);
  assert.deepEqual(withdrawn, [["ask/form", { message: "Approve plan p1?" }]]);
  const before = written.length;
  finish({ action: "accept", content: {} });
  await new Promise((r) => setImmediate(r));
  assert.equal(written.length, before, `a late answer was sent: ${written.slice(before).join("")}`);
  // An unknown or already answered id changes nothing.
  conn.notify("$/cancel_request", { requestId: 1 });
  conn.notify("$/cancel_request", { requestId: "x" });
  await new Promise((r) => setImmediate(r));
  assert.equal(withdrawn.length, 1);
});

test("initialize + session/new + a streamed prompt", async () => {
  assert.equal(client.agent?.agentInfo?.name, "ratchet");
  assert.ok(client.canLoad && client.canList, "ratchet advertises loadSession and session/list");
  const session = await client.newSession();
  sessionId = session.sessionId;
  assert.ok(configOption(session.configOptions, "mode"), "a mode option");
  assert.equal(currentName(configOption(session.configOptions, "model")), "mock-model");
  const from = updates.length;
  const result = await client.prompt(sessionId, "say hello");
  assert.equal(result.stopReason, "end_turn");
  const chunks = updates.slice(from).filter((n) => n.update.sessionUpdate === "agent_message_chunk");
  assert.ok(chunks.length >= 3, `streamed in chunks, got ${chunks.length}`);
  assert.equal(agentText(from), "Hello from the mock.");
  assert.equal(rendered(from, result.stopReason), "Hello from the mock.\n\n");
});

test("a tool call whose permission is allowed: written through fs/write_text_file, reported completed", async () => {
  const from = updates.length;
  const result = await client.prompt(sessionId, "create out.txt");
  assert.equal(result.stopReason, "end_turn");
  assert.equal(host.permissions.length, 1);
  assert.match(host.permissions[0].toolCall.title ?? "", /out\.txt/);
  const write = host.writes.find((w) => w.path === join(fx.workspace, "out.txt"));
  assert.ok(write, "write_file went through the client's fs/write_text_file");
  assert.equal(readFileSync(join(fx.workspace, "out.txt"), "utf8"), "created by the agent\n", "not open: written to disk");
  const md = rendered(from, result.stopReason);
  assert.match(md, /- ✅ \*\*edit\*\* `Write out\.txt`/);
  assert.match(md, /\+created by the agent/);
  assert.match(md, /Wrote out\.txt\./);
});

test("a tool call whose permission is rejected: nothing written, the model is told", async () => {
  host.answer = "reject_once";
  const writes = host.writes.length;
  const from = updates.length;
  const result = await client.prompt(sessionId, "create rejected.txt");
  host.answer = "allow_once";
  assert.equal(result.stopReason, "end_turn");
  assert.equal(host.permissions.length, 2);
  assert.equal(host.writes.length, writes, "no fs/write_text_file after a rejection");
  assert.ok(!existsSync(join(fx.workspace, "rejected.txt")));
  assert.match(toolResultSent("call_r"), /reject|denied|declined/i);
  assert.equal(agentText(from), "Understood, not writing it.");
});

test("an edit of an open, modified document: read from its unsaved text, written through the callback, disk untouched", async () => {
  const path = join(fx.workspace, "notes.txt");
  writeText(path, "DISK\n");
  host.open.set(path, "UNSAVED line\n");
  const result = await client.prompt(sessionId, "fix notes");
  assert.equal(result.stopReason, "end_turn");
  assert.ok(host.reads.some((r) => r.path === path), "the agent read the document through fs/read_text_file");
  assert.deepEqual(host.writes.at(-1), { sessionId, path, content: "EDITED line\n" });
  assert.equal(host.open.get(path), "EDITED line\n", "the open document took the edit");
  assert.equal(readFileSync(path, "utf8"), "DISK\n", "the disk keeps the saved text until the user saves");
});

test("plan and thoughts: rendered as a checklist and a quote at the end of the turn", async () => {
  const from = updates.length;
  const result = await client.prompt(sessionId, "make a plan");
  assert.equal(result.stopReason, "end_turn");
  const md = rendered(from, result.stopReason);
  assert.match(md, /\*\*Plan\*\*\n- \[x\] Read the code\n- \[~\] Write the fix/);
  assert.match(md, /> _thinking:_ Weighing the plan\./);
  assert.match(md, /Plan made\./);
});

test("cancel mid-stream: the prompt ends with stopReason cancelled", async () => {
  const from = updates.length;
  const turn = client.prompt(sessionId, "take your time");
  await waitFor("streamed text before the stall", () => agentText(from).includes("Working on it"));
  client.cancel(sessionId);
  const result = await turn;
  assert.equal(result.stopReason, "cancelled");
  assert.match(rendered(from, result.stopReason), /_turn ended: cancelled_/);
});

test("a form (ask_human through elicitation/create): asked field by field, the answer reaches the model", async () => {
  host.formAnswer = () => "blue";
  const from = updates.length;
  const result = await client.prompt(sessionId, "pick a colour");
  host.formAnswer = () => undefined;
  assert.equal(result.stopReason, "end_turn");
  assert.equal(host.asked.length, 1, JSON.stringify(host.asked));
  assert.equal(host.asked[0].field.kind, "text");
  assert.ok(host.asked[0].field.required);
  assert.match(host.asked[0].message ?? "", /Which colour should the button be\?/);
  assert.match(toolResultSent("call_ask"), /blue/);
  assert.equal(agentText(from), "Blue it is.");
});

test("mode and model: session/set_config_option answers the new list", async () => {
  const session = await client.listSessions();
  assert.ok(session.sessions.some((s) => s.sessionId === sessionId));
  const options = await client.setConfigOption(sessionId, "mode", "plan");
  assert.equal(configOption(options, "mode")?.currentValue, "plan");
  assert.ok(optionValues(configOption(options, "mode")!).length > 1);
  await client.setConfigOption(sessionId, "mode", "ask");
});

test("plans, jobs and questions: the CLI's --json lists render one line per record", async () => {
  for (const what of ["plans", "jobs", "questions"] as const) {
    const list = await listRecords(fx.bin, what, fx.workspace, fx.env);
    assert.match(list.markdown, new RegExp(`^# ratchet ${what} \\(${list.records.length}\\)\n`));
  }
});

test("session load: a new process lists the past session and its history replays", async () => {
  client.stop();
  await client.waitForExit();
  ({ client, updates, stderr } = await startClient(fx, host));
  const listed = await client.listSessions();
  assert.ok(listed.sessions.some((s) => s.sessionId === sessionId), `not listed: ${JSON.stringify(listed)}`);
  await client.loadSession(sessionId);
  const md = rendered(0, "end_turn");
  assert.match(md, /\*\*You:\*\* say hello/);
  assert.match(md, /Hello from the mock\./);
  assert.match(md, /- ✅ \*\*edit\*\* `Write out\.txt`/);
  // The loaded session takes new prompts (an exhausted script answers the default).
  const result = await client.prompt(sessionId, "still there?");
  assert.equal(result.stopReason, "end_turn");
  assert.equal(stderr.join("").includes("panicked"), false);
});
