// Plans, jobs and questions through the CLI's `ratchet <what> list --json` (which asks the
// daemon when one runs, else reads the data directory), one markdown line per record: the
// same rendering as ratchet.nvim's lists.lua. No `vscode` import.
import { execFile } from "node:child_process";

export type ListKind = "plans" | "jobs" | "questions";

/** Fields shown first, in this order, when a record has them; the rest follow by name. */
const LEAD_FIELDS = ["id", "kind", "type", "status", "title", "goal", "question", "session_id", "model", "detail"];
/** The CLI answers from SQLite; this only stops a wedged process from hanging the command. */
const LIST_TIMEOUT_MS = 30_000;
const MAX_OUTPUT_BYTES = 16 * 1024 * 1024;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function scalar(v: Json): string {
  return typeof v === "object" && v !== null ? JSON.stringify(v) : String(v);
}

/** The record's scalar fields, with those of nested objects (a plan's `plan.goal`) pulled up
 * when the top level lacks them. */
function flatten(record: Record<string, Json>): Record<string, Json> {
  const flat: Record<string, Json> = {};
  for (const [key, v] of Object.entries(record)) if (typeof v !== "object" || v === null) flat[key] = v;
  for (const v of Object.values(record)) {
    if (typeof v === "object" && v !== null && !Array.isArray(v)) {
      for (const [key, inner] of Object.entries(v)) {
        if (!(key in flat) && (typeof inner !== "object" || inner === null)) flat[key] = inner;
      }
    }
  }
  return flat;
}

/** One line for a record: the lead fields, then any other scalar fields as key=value. */
export function formatRecord(record: Json): string {
  if (typeof record !== "object" || record === null || Array.isArray(record)) return "- " + scalar(record);
  const flat = flatten(record);
  const parts: string[] = [];
  for (const key of LEAD_FIELDS) {
    const v = flat[key];
    if (v !== undefined && v !== null) parts.push(key === "id" ? `**${scalar(v)}**` : scalar(v));
  }
  const rest = Object.keys(flat)
    .filter((k) => !LEAD_FIELDS.includes(k) && flat[k] !== null)
    .sort()
    .map((k) => `${k}=${scalar(flat[k])}`);
  return ("- " + [...parts, ...rest].join("  ")).replace(/\n/g, " ");
}

export interface ListResult {
  records: Json[];
  markdown: string;
}

/** Runs `command <what> list --json` in `cwd`; rejects with the CLI's stderr when it fails. */
export function listRecords(command: string, what: ListKind, cwd: string, env?: NodeJS.ProcessEnv): Promise<ListResult> {
  const argv = [what, "list", "--json"];
  return new Promise((resolve, reject) => {
    execFile(command, argv, { cwd, env: env ?? process.env, timeout: LIST_TIMEOUT_MS, maxBuffer: MAX_OUTPUT_BYTES }, (err, stdout, stderr) => {
      if (err) {
        reject(new Error(`\`${command} ${argv.join(" ")}\` failed: ${String(stderr).trim() || err.message}`));
        return;
      }
      let records: Json[];
      try {
        const parsed = JSON.parse(String(stdout)) as Json;
        records = Array.isArray(parsed) ? parsed : [];
      } catch {
        reject(new Error(`\`${command} ${argv.join(" ")}\` printed no JSON list: ${String(stdout).slice(0, 200)}`));
        return;
      }
      const lines = [`# ratchet ${what} (${records.length})`, "", ...records.map(formatRecord)];
      if (records.length === 0) lines.push("_none_");
      resolve({ records, markdown: lines.join("\n") + "\n" });
    });
  });
}
