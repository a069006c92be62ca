// The slice of the `vscode` API the extension uses, faked in memory so the extension's own code
// (activation, the chat participant, permission buttons, WorkspaceEdits) runs under node
// against the real binary. `install()` makes `require("vscode")` load this module.
import Module = require("node:module");

export class Uri {
  private constructor(readonly scheme: string, readonly fsPath: string) {}
  static file(path: string): Uri {
    return new Uri("file", path);
  }
  toString(): string {
    return `${this.scheme}://${this.fsPath}`;
  }
}
export class Location {
  constructor(readonly uri: Uri, readonly range: unknown) {}
}
/** Positions are plain offsets here: the extension only passes `positionAt` results on. */
export class Range {
  constructor(readonly start: number, readonly end: number) {}
}
export class ThemeIcon {
  constructor(readonly id: string) {}
}
export enum EndOfLine {
  LF = 1,
  CRLF = 2,
}
export enum StatusBarAlignment {
  Left = 1,
  Right = 2,
}
export class WorkspaceEdit {
  readonly replaces: { uri: Uri; range: Range; text: string; label?: string }[] = [];
  replace(uri: Uri, range: Range, text: string, meta?: { label: string }): void {
    this.replaces.push({ uri, range, text, label: meta?.label });
  }
}

export class FakeDocument {
  isClosed = false;
  eol = EndOfLine.LF;
  saves = 0;
  readonly uri: Uri;
  constructor(path: string, public text: string) {
    this.uri = Uri.file(path);
  }
  getText(): string {
    return this.text;
  }
  positionAt(offset: number): number {
    return offset;
  }
  async save(): Promise<boolean> {
    this.saves++;
    return true;
  }
}

const event = () => () => ({ dispose() {} });

export const state = {
  commands: new Map<string, (...args: unknown[]) => unknown>(),
  participants: new Map<string, unknown>(),
  settings: new Map<string, unknown>(),
  documents: [] as FakeDocument[],
  folders: [] as { uri: Uri; name: string; index: number }[],
  edits: [] as WorkspaceEdit[],
  statusText: "",
  messages: [] as string[],
  quickPick: undefined as undefined | ((items: { label: string }[], opts: { canPickMany?: boolean; placeHolder?: string }) => unknown),
  inputBox: undefined as undefined | ((opts: { title?: string; prompt?: string }) => string | undefined),
  asked: [] as string[],
  shown: [] as string[],
};

export const window = {
  activeTextEditor: undefined,
  onDidChangeActiveTextEditor: event(),
  createOutputChannel: () => ({ info() {}, debug() {}, warn() {}, error() {}, dispose() {} }),
  createStatusBarItem: () => {
    const item = {
      name: "",
      command: "",
      tooltip: "",
      set text(t: string) {
        state.statusText = t;
      },
      get text() {
        return state.statusText;
      },
      show() {},
      hide() {},
      dispose() {},
    };
    return item;
  },
  showWarningMessage: async (m: string) => void state.messages.push(m),
  showInformationMessage: async (m: string) => void state.messages.push(m),
  showErrorMessage: async (m: string) => void state.messages.push(m),
  showQuickPick: async (items: { label: string }[], opts: { canPickMany?: boolean; placeHolder?: string } = {}) => {
    state.asked.push(`pick: ${opts.placeHolder ?? ""}`);
    return state.quickPick?.(items, opts);
  },
  showInputBox: async (opts: { title?: string; prompt?: string }) => {
    state.asked.push(`input: ${opts.title ?? ""} | ${opts.prompt ?? ""}`);
    return state.inputBox?.(opts);
  },
  showTextDocument: async () => undefined,
};

export const workspace = {
  get textDocuments() {
    return state.documents;
  },
  get workspaceFolders() {
    return state.folders;
  },
  getWorkspaceFolder: () => state.folders[0],
  onDidChangeWorkspaceFolders: event(),
  getConfiguration: () => ({ get: <T>(key: string, fallback: T): T => (state.settings.has(key) ? (state.settings.get(key) as T) : fallback) }),
  openTextDocument: async (opts: { content: string }) => {
    state.shown.push(opts.content);
    return {};
  },
  applyEdit: async (edit: WorkspaceEdit) => {
    state.edits.push(edit);
    for (const r of edit.replaces) {
      const doc = state.documents.find((d) => d.uri.fsPath === r.uri.fsPath);
      if (!doc) return false;
      doc.text = doc.text.slice(0, r.range.start) + r.text + doc.text.slice(r.range.end);
    }
    return true;
  },
};

export const commands = {
  registerCommand: (id: string, run: (...args: unknown[]) => unknown) => {
    state.commands.set(id, run);
    return { dispose: () => state.commands.delete(id) };
  },
};

export const chat = {
  createChatParticipant: (id: string, handler: unknown) => {
    state.participants.set(id, handler);
    return { iconPath: undefined, dispose: () => state.participants.delete(id) };
  },
};


/** Makes `require("vscode")` resolve to this module. */
export function install(): void {
  const mod = Module as unknown as { _resolveFilename: (request: string, ...rest: unknown[]) => string };
  const original = mod._resolveFilename;
  mod._resolveFilename = function (request: string, ...rest: unknown[]) {
    if (request === "vscode") return __filename;
    return original.call(this, request, ...rest);
  };
}
