// The client side of `fs/read_text_file` and `fs/write_text_file`: open documents win over
// the disk, so the agent reads your unsaved text, and its writes to an open document go
// through the editor (undoable, visible before saving). The editor's documents come in as
// `OpenDocuments`; the disk is the fallback. No `vscode` import.
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, isAbsolute } from "node:path";
import type { ReadTextFileRequest, ReadTextFileResponse, WriteTextFileRequest } from "./schema";
import { ErrorCode, RpcError } from "./jsonrpc";

/** The editor's open documents, by absolute path. */
export interface OpenDocuments {
  /** The document's current text (unsaved changes included), or undefined when not open. */
  text(path: string): string | undefined;
  /** Replaces an open document's whole text; false when it is not open (then the disk is written). */
  replace(path: string, content: string): Promise<boolean>;
}

/** The changed region between `before` and `after`: offsets into `before` and the new text.
 * Replacing only it keeps cursors and folds outside it, and makes the undo step small. */
export function changedRegion(before: string, after: string): { start: number; end: number; text: string } {
  let start = 0;
  const max = Math.min(before.length, after.length);
  while (start < max && before.charCodeAt(start) === after.charCodeAt(start)) start++;
  let tail = 0;
  while (tail < max - start && before.charCodeAt(before.length - 1 - tail) === after.charCodeAt(after.length - 1 - tail)) tail++;
  return { start, end: before.length - tail, text: after.slice(start, after.length - tail) };
}

/** Lines `line` (1-based) .. `line + limit - 1` of `text`, keeping line endings. */
export function sliceLines(text: string, line?: number | null, limit?: number | null): string {
  if (line == null && limit == null) return text;
  const lines = text.split(/(?<=\n)/);
  const first = Math.max(1, line ?? 1) - 1;
  const end = limit == null ? lines.length : first + Math.max(0, limit);
  return lines.slice(first, end).join("");
}

function checkPath(method: string, path: unknown): string {
  if (typeof path !== "string" || !isAbsolute(path)) {
    throw new RpcError(ErrorCode.InvalidParams, `${method} needs an absolute \`path\`, got ${JSON.stringify(path)}`);
  }
  return path;
}

export async function readTextFile(docs: OpenDocuments, request: ReadTextFileRequest): Promise<ReadTextFileResponse> {
  const path = checkPath("fs/read_text_file", request.path);
  let text = docs.text(path);
  if (text === undefined) {
    try {
      text = await readFile(path, "utf8");
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT") throw new RpcError(ErrorCode.ResourceNotFound, `Resource not found: ${path}`, { uri: path });
      throw new RpcError(ErrorCode.Internal, `could not read ${path}: ${(err as Error).message}`);
    }
  }
  return { content: sliceLines(text, request.line, request.limit) };
}

export async function writeTextFile(docs: OpenDocuments, request: WriteTextFileRequest): Promise<void> {
  const path = checkPath("fs/write_text_file", request.path);
  if (typeof request.content !== "string") {
    throw new RpcError(ErrorCode.InvalidParams, "fs/write_text_file needs a string `content`");
  }
  if (await docs.replace(path, request.content)) return;
  try {
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, request.content, "utf8");
  } catch (err) {
    throw new RpcError(ErrorCode.Internal, `could not write ${path}: ${(err as Error).message}`);
  }
}
