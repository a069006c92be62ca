// The extension itself (activation, `@ratchet`, permission buttons, WorkspaceEdits, the status
// bar, the session picker) with `vscode` faked in memory (fake_vscode.ts), against the real
// binary and the mock LLM (replies in test/extension_script.json).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import * as fake from "./fake_vscode";
import { startFixture, waitFor, writeText, type Fixture } from "./support";

fake.install();
// Loaded after the fake is installed, so its `require("vscode")` finds it.
const extension = require("../src/extension") as typeof import("../src/extension");

const PACKAGE = JSON.parse(readFileSync(join(__dirname, "..", "..", "package.json"), "utf8")) as {
  contributes: { commands: { command: string }[]; chatParticipants: { id: string; commands?: { name: string }[] }[] };
};

let fx: Fixture;
const subscriptions: { dispose(): unknown }[] = [];

before(async () => {
  fx = await startFixture(join(__dirname, "..", "..", "test", "extension_script.json"));
  fake.state.folders.push({ uri: fake.Uri.file(fx.workspace), name: "workspace", index: 0 });
  fake.state.settings.set("path", fx.bin);
  const { RATCHET_HOME, RATCHET_PROVIDER, RATCHET_MODEL, OPENAI_BASE_URL, OPENAI_API_KEY } = fx.env;
  fake.state.settings.set("env", { RATCHET_HOME, RATCHET_PROVIDER, RATCHET_MODEL, OPENAI_BASE_URL, OPENAI_API_KEY });
  extension.activate({ subscriptions } as never);
});

after(() => {
  for (const s of subscriptions) s.dispose();
  fx?.stop();
});

/** What the running request's response has shown so far. */
let live: string[] = [];
const noCancel = { isCancellationRequested: false, onCancellationRequested: () => ({ dispose() {} }) };

type Handler = (request: unknown, context: unknown, stream: unknown, token: unknown) => Promise<{ metadata?: { stopReason?: string }; errorDetails?: { message: string } }>;

/** One `@ratchet` request; each permission question is answered by clicking the button whose
 * option id is `click`. Returns what the response showed. */
async function chat(prompt: string, click: string, history: unknown[] = [], token: unknown = noCancel, extra: { command?: string; references?: unknown[] } = {}) {
  const parts: string[] = (live = []);
  const buttons: { title: string; arguments: [string, string] }[] = [];
  const stream = {
    markdown: (t: string) => parts.push(t),
    progress: (t: string) => parts.push(`(progress: ${t})`),
    button: (cmd: { command: string; title: string; arguments: [string, string] }) => {
      buttons.push(cmd);
      if (cmd.arguments[1] === click) setImmediate(() => fake.state.commands.get(cmd.command)!(...cmd.arguments));
    },
  };
  const handler = fake.state.participants.get("ratchet.agent") as Handler;
  const result = await handler({ prompt, references: extra.references ?? [], command: extra.command }, { history }, stream, token);
  return { result, text: parts.join(""), buttons };
}

test("activation registers the chat participant and every command package.json declares", () => {
  for (const p of PACKAGE.contributes.chatParticipants) assert.ok(fake.state.participants.has(p.id), `participant ${p.id}`);
  for (const c of PACKAGE.contributes.commands) assert.ok(fake.state.commands.has(c.command), `command ${c.command}`);
});

test("@ratchet: permission as buttons, allowed; the edit is a WorkspaceEdit of the open, modified document", async () => {
  const path = join(fx.workspace, "notes.txt");
  writeText(path, "DISK\n");
  const doc = new fake.FakeDocument(path, "UNSAVED line\n");
  fake.state.documents.push(doc);
  const { result, text, buttons } = await chat("fix notes", "allow_once");
  assert.equal(result.errorDetails, undefined);
  assert.equal(result.metadata?.stopReason, "end_turn");
  assert.ok(buttons.length >= 2, `one button per option: ${JSON.stringify(buttons)}`);
  assert.match(text, /\*\*ratchet wants to run:\*\* `Edit notes\.txt`/);
  assert.match(text, /_You chose: Allow_/);
  assert.equal(doc.text, "EDITED line\n");
  assert.equal(fake.state.edits.at(-1)?.replaces[0]?.label, "ratchet");
  assert.equal(readFileSync(path, "utf8"), "DISK\n", "not saved: the user saves");
  assert.equal(doc.saves, 0);
  assert.match(text, /- ✅ \*\*edit\*\* `Edit notes\.txt`/);
  assert.match(text, /Edited notes\.txt\./);
  assert.match(fake.state.statusText, /^\$\(hubot\) ratchet: Ask · mock-model$/);
});

test("@ratchet: a rejected permission writes nothing; a late click is told it was answered", async () => {
  const { result, text, buttons } = await chat("create rejected.txt", "reject_once", [{}]);
  assert.equal(result.metadata?.stopReason, "end_turn");
  assert.ok(!existsSync(join(fx.workspace, "rejected.txt")));
  assert.match(text, /Not writing it\./);
  const allow = buttons.find((b) => b.arguments[1] === "allow_once")!;
  fake.state.commands.get("ratchet.answerPermission")!(...allow.arguments);
  assert.match(fake.state.messages.at(-1) ?? "", /already answered/);
});

test("a plan approval form: rejected with feedback through the quick pick and the input box", async () => {
  fake.state.quickPick = (items, opts) => (opts.canPickMany ? [] : items.find((i) => /reject/i.test(i.label)));
  fake.state.inputBox = () => "not now";
  const asked = fake.state.asked.length;
  const { result, text } = await chat("plan a file", "none", [{}]);
  fake.state.quickPick = undefined;
  assert.equal(result.metadata?.stopReason, "end_turn");
  assert.deepEqual(fake.state.asked.slice(asked).map((a) => a.split(":")[0]), ["pick", "input", "pick"], JSON.stringify(fake.state.asked));
  assert.ok(!existsSync(join(fx.workspace, "one.txt")), "the rejected plan ran");
  assert.match(readFileSync(fx.requestLog, "utf8"), /not now/);
  assert.match(text, /OK, no plan then\./);
});

test("stopping the response cancels the turn: stopReason cancelled, shown in the response", async () => {
  let fire: (() => void) | undefined;
  const token = { isCancellationRequested: false, onCancellationRequested: (f: () => void) => ((fire = f), { dispose() {} }) };
  const turn = chat("take your time", "none", [{}], token);
  await waitFor("streamed text before the stall", () => fire !== undefined && live.join("").includes("Working on it"));
  token.isCancellationRequested = true;
  fire!();
  const { result, text } = await turn;
  assert.equal(result.metadata?.stopReason, "cancelled");
  assert.match(text, /_turn ended: cancelled_/);
});

test("the session picker lists this folder's session and shows its history", async () => {
  fake.state.quickPick = (items) => items[0];
  await fake.state.commands.get("ratchet.sessions")!();
  const history = fake.state.shown.at(-1) ?? "";
  assert.match(history, /\*\*You:\*\* fix notes/);
  assert.match(history, /Edited notes\.txt\./);
});

test("restart: a new process and session take the next messages", async () => {
  await fake.state.commands.get("ratchet.restart")!();
  const first = await chat("hello again", "none", [{}]);
  assert.equal(first.result.errorDetails, undefined);
  assert.match(first.text, /Default mock answer\./);
  const second = await chat("and again", "none", [{}]);
  const id = (r: typeof first) => (r.result.metadata as { sessionId?: string } | undefined)?.sessionId;
  assert.ok(id(first));
  assert.equal(id(second), id(first), "the chat continued in the restarted session");
});

test("slash commands declared in package.json reach ratchet as /name: /help lists them", async () => {
  const declared = PACKAGE.contributes.chatParticipants[0].commands ?? [];
  const { result, text } = await chat("", "none", [{}], noCancel, { command: "help" });
  assert.equal(result.metadata?.stopReason, "end_turn");
  for (const c of declared) assert.match(text, new RegExp(`/${c.name}\\b`), `ratchet's /help does not list /${c.name}:\n${text}`);
});

test("#file references are sent as resource links the model sees", async () => {
  const path = join(fx.workspace, "notes.txt");
  const { result } = await chat("look at this", "none", [{}], noCancel, { references: [{ id: "file", value: fake.Uri.file(path) }] });
  assert.equal(result.metadata?.stopReason, "end_turn");
  const last = readFileSync(fx.requestLog, "utf8").trim().split("\n").at(-1) ?? "";
  assert.match(last, /notes\.txt/);
});
