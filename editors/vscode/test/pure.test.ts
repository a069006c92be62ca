// The parts that need no process: the layering rule for the ACP client, the text helpers of
// the fs methods, the diff and list renderings.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { changedRegion, sliceLines } from "../src/acp/files";
import { renderDiff } from "../src/acp/render";
import { formatRecord } from "../src/acp/lists";
import { answerForm, formFields } from "../src/acp/forms";

test("src/acp never imports vscode (it runs under node --test)", () => {
  const dir = join(__dirname, "..", "..", "src", "acp");
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".ts"))) {
    const text = readFileSync(join(dir, file), "utf8");
    assert.doesNotMatch(text, /from\s+["']vscode["']|require\(["']vscode["']\)/, `${file} imports vscode`);
  }
});

test("sliceLines: 1-based line and limit, line endings kept", () => {
  assert.equal(sliceLines("a\nb\nc\n"), "a\nb\nc\n");
  assert.equal(sliceLines("a\nb\nc\n", 2), "b\nc\n");
  assert.equal(sliceLines("a\nb\nc", 2, 1), "b\n");
  assert.equal(sliceLines("a\nb\nc", 3, 5), "c");
});

test("changedRegion: only the changed middle is replaced", () => {
  assert.deepEqual(changedRegion("UNSAVED line\n", "EDITED line\n"), { start: 0, end: 5, text: "EDIT" });
  assert.deepEqual(changedRegion("same", "same"), { start: 4, end: 4, text: "" });
  assert.deepEqual(changedRegion("aXa", "aa"), { start: 1, end: 2, text: "" });
  assert.deepEqual(changedRegion("", "new\n"), { start: 0, end: 0, text: "new\n" });
});

test("renderDiff: a new file, and a change with one line of context", () => {
  assert.deepEqual(renderDiff("/p/new.txt", null, "x\n"), ["```diff", "--- /dev/null", "+++ /p/new.txt", "+x", "```"]);
  assert.deepEqual(renderDiff("/p/f", "a\nb\nc\nd\n", "a\nB\nc\nd\n"), ["```diff", "--- /p/f", "+++ /p/f", " a", "-b", "+B", " c", "```"]);
});

test("formatRecord: lead fields first (id in bold), nested scalars pulled up, the rest sorted", () => {
  assert.equal(formatRecord({ status: "proposed", id: "p1", plan: { goal: "Make a file", steps: [] }, revision: 1 }), "- **p1**  proposed  Make a file  revision=1");
  assert.equal(formatRecord("odd"), "- odd");
});

test("forms: fields in order with their kinds; a dismissed required field cancels, an optional one is left out", async () => {
  const schema = {
    type: "object",
    properties: {
      note: { type: "string", title: "Note" },
      colour: { type: "string", oneOf: [{ const: "r", title: "Red" }, { const: "b", title: "Blue" }] },
      skip: { type: "array", items: { enum: ["s1", "s2"] } },
      sure: { type: "boolean" },
      count: { type: "integer" },
    },
    required: ["sure", "colour"],
  };
  const fields = formFields(schema);
  assert.deepEqual(fields.map((f) => [f.name, f.kind, f.required]), [
    ["sure", "boolean", true],
    ["colour", "choice", true],
    ["note", "text", false],
    ["skip", "multi", false],
    ["count", "number", false],
  ]);
  assert.deepEqual(fields[1].choices, [{ value: "r", label: "Red" }, { value: "b", label: "Blue" }]);
  const answers: Record<string, unknown> = { sure: true, colour: "b", skip: ["s2"], count: "3" };
  const messages: (string | undefined)[] = [];
  const accepted = await answerForm({ mode: "form", message: "Q?", requestedSchema: schema }, async (f, m) => {
    messages.push(m);
    return answers[f.name];
  });
  assert.deepEqual(accepted, { action: "accept", content: { sure: true, colour: "b", skip: ["s2"], count: 3 } });
  assert.deepEqual(messages, ["Q?", undefined, undefined, undefined, undefined]);
  assert.deepEqual(await answerForm({ mode: "form", requestedSchema: schema }, async () => undefined), { action: "cancel" });
  await assert.rejects(answerForm({ mode: "url", url: "https://x" }, async () => undefined), /form elicitations only/);
});
