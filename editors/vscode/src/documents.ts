// VS Code's open documents as the ACP client's `OpenDocuments`: the agent reads a document's
// current text (unsaved changes included), and its writes to an open document are applied as
// a `WorkspaceEdit`, so they show at once, sit in the document's undo stack, and reach the
// disk when you save (or at once with `ratchet.saveAgentEdits`).
import * as vscode from "vscode";
import { changedRegion, type OpenDocuments } from "./acp/files";
import { ErrorCode, RpcError } from "./acp/jsonrpc";

function openDocument(path: string): vscode.TextDocument | undefined {
  return vscode.workspace.textDocuments.find((d) => !d.isClosed && d.uri.scheme === "file" && d.uri.fsPath === path);
}

export class EditorDocuments implements OpenDocuments {
  text(path: string): string | undefined {
    return openDocument(path)?.getText();
  }

  async replace(path: string, content: string): Promise<boolean> {
    const doc = openDocument(path);
    if (!doc) return false;
    // The document keeps its own line endings; compare in them so only real changes count.
    const wanted = doc.eol === vscode.EndOfLine.CRLF ? content.replace(/\r?\n/g, "\r\n") : content;
    const region = changedRegion(doc.getText(), wanted);
    if (region.start !== region.end || region.text !== "") {
      const edit = new vscode.WorkspaceEdit();
      const range = new vscode.Range(doc.positionAt(region.start), doc.positionAt(region.end));
      edit.replace(doc.uri, range, region.text, { label: "ratchet", needsConfirmation: false });
      if (!(await vscode.workspace.applyEdit(edit))) {
        throw new RpcError(ErrorCode.Internal, `VS Code refused the edit of ${path} (is the document read-only?)`);
      }
    }
    if (vscode.workspace.getConfiguration("ratchet").get<boolean>("saveAgentEdits", false) && !(await doc.save())) {
      throw new RpcError(ErrorCode.Internal, `the edit of ${path} is applied but could not be saved; save it by hand`);
    }
    return true;
  }
}
