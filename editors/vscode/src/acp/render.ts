// One turn's `session/update`s as chat output. VS Code's chat response is append-only, so a
// tool call shows as progress while it runs and as one line (with its diff) once it ends; the
// plan shows as progress while it changes and as a checklist when the turn ends. No `vscode`
// import: the same renderer writes the chat response and the history of a loaded session.
import type { SessionUpdate, StopReason, ToolCallContent, ToolCallStatus, ToolKind, PlanEntry } from "./schema";

export interface ChatOutput {
  markdown(text: string): void;
  progress(text: string): void;
}

const STATUS_MARK: Record<ToolCallStatus, string> = {
  pending: "⏳",
  in_progress: "⏳",
  completed: "✅",
  failed: "❌",
};
const PLAN_MARK: Record<string, string> = { pending: "[ ]", in_progress: "[~]", completed: "[x]" };

/** Lines of context kept around a changed region in a rendered diff. */
const DIFF_CONTEXT_LINES = 1;
/** A diff longer than this shows its first lines and a count of the rest. */
const MAX_DIFF_LINES = 80;

interface ToolState {
  title: string;
  kind: ToolKind | undefined;
  status: ToolCallStatus | undefined;
  content: ToolCallContent[];
  shown: boolean;
}

type Section = "user" | "agent" | "thought" | "tool" | "plan" | undefined;

export class TurnRenderer {
  private section: Section;
  private thought = "";
  private readonly tools = new Map<string, ToolState>();
  private plan: PlanEntry[] | undefined;

  constructor(private readonly out: ChatOutput) {}

  update(update: SessionUpdate): void {
    switch (update.sessionUpdate) {
      case "user_message_chunk":
        if (update.content.type === "text") this.text("user", update.content.text);
        break;
      case "agent_message_chunk":
        if (update.content.type === "text") this.text("agent", update.content.text);
        break;
      case "agent_thought_chunk":
        if (update.content.type === "text") {
          this.enter("thought");
          this.thought += update.content.text;
          this.out.progress("Thinking…");
        }
        break;
      case "tool_call":
      case "tool_call_update": {
        const id = update.toolCallId;
        const state = this.tools.get(id) ?? { title: id, kind: undefined, status: undefined, content: [], shown: false };
        if (update.title != null) state.title = update.title;
        if (update.kind != null) state.kind = update.kind;
        if (update.status != null) state.status = update.status;
        if (update.content != null) state.content = update.content;
        this.tools.set(id, state);
        if (state.status === "completed" || state.status === "failed") {
          this.showTool(state);
        } else {
          this.out.progress(`${state.title}…`);
        }
        break;
      }
      case "plan":
        this.plan = update.entries;
        this.out.progress(`Plan: ${update.entries.filter((e) => e.status === "completed").length}/${update.entries.length} done`);
        break;
      default:
        break;
    }
  }

  /** Ends the turn: pending thoughts and the plan are written, unfinished calls marked. */
  finish(stopReason: StopReason | undefined): void {
    this.enter(undefined);
    for (const state of this.tools.values()) {
      if (!state.shown && stopReason === "cancelled") {
        state.status = undefined;
        this.showTool(state, "⛔");
      }
    }
    if (this.plan && this.plan.length > 0) {
      this.block(["**Plan**", ...this.plan.map((e) => `- ${PLAN_MARK[e.status] ?? "[ ]"} ${e.content}`)].join("\n"));
      this.plan = undefined;
    }
    if (stopReason && stopReason !== "end_turn") this.block(`_turn ended: ${stopReason}_`);
  }

  private text(section: "user" | "agent", text: string): void {
    if (this.section !== section) {
      this.enter(section);
      if (section === "user") this.out.markdown("**You:** ");
    }
    this.out.markdown(text);
  }

  /** Starts a new paragraph when the kind of content changes; a finished thought is written. */
  private enter(section: Section): void {
    if (this.section === section) return;
    if (this.section === "thought" && this.thought.trim() !== "") {
      this.block("> _thinking:_ " + this.thought.trim().replace(/\n/g, "\n> "));
      this.thought = "";
    } else if (this.section !== undefined) {
      this.out.markdown("\n\n");
    }
    this.section = section;
  }

  private block(text: string): void {
    this.out.markdown((this.section === undefined ? "" : "\n\n") + text + "\n\n");
    this.section = undefined;
  }

  private showTool(state: ToolState, mark?: string): void {
    if (state.shown) return;
    state.shown = true;
    this.enter("tool");
    const lines = [`- ${mark ?? STATUS_MARK[state.status ?? "pending"]} **${state.kind ?? "other"}** \`${state.title.replace(/`/g, "'")}\``];
    for (const item of state.content) {
      if (item.type === "diff") lines.push(...renderDiff(item.path, item.oldText ?? null, item.newText).map((l) => "  " + l));
    }
    this.out.markdown(lines.join("\n") + "\n");
  }
}

/** A fenced unified-style diff of one file: the changed region between the common prefix and
 * suffix, with `DIFF_CONTEXT_LINES` of context. */
export function renderDiff(path: string, oldText: string | null, newText: string): string[] {
  const a = oldText === null ? [] : splitLines(oldText);
  const b = splitLines(newText);
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start++;
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) {
    endA--;
    endB--;
  }
  const from = Math.max(0, start - DIFF_CONTEXT_LINES);
  const body: string[] = [];
  for (let i = from; i < start; i++) body.push(" " + a[i]);
  for (let i = start; i < endA; i++) body.push("-" + a[i]);
  for (let i = start; i < endB; i++) body.push("+" + b[i]);
  for (let i = endA; i < Math.min(a.length, endA + DIFF_CONTEXT_LINES); i++) body.push(" " + a[i]);
  const shown = body.length > MAX_DIFF_LINES ? [...body.slice(0, MAX_DIFF_LINES), `… ${body.length - MAX_DIFF_LINES} more lines`] : body;
  return ["```diff", `--- ${oldText === null ? "/dev/null" : path}`, `+++ ${path}`, ...shown, "```"];
}

function splitLines(text: string): string[] {
  const lines = text.split("\n");
  if (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  return lines;
}
