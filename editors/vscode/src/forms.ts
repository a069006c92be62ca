// The agent's forms (`ask_human` questions, plan approvals) asked with VS Code's quick pick and
// input box, one field after the other; Escape on a required field cancels the form.
import * as vscode from "vscode";
import type { FormAsker } from "./acp/forms";

export function quickInputAsker(folderName: string): FormAsker {
  return async (field, message) => {
    const title = `ratchet (${folderName})${message ? `: ${message}` : ""}`;
    const placeHolder = [field.label, field.description].filter(Boolean).join(": ");
    switch (field.kind) {
      case "boolean": {
        const picked = await vscode.window.showQuickPick([{ label: "yes", value: true }, { label: "no", value: false }], { title, placeHolder, ignoreFocusOut: true });
        return picked?.value;
      }
      case "choice": {
        const picked = await vscode.window.showQuickPick(field.choices.map((c) => ({ label: c.label, value: c.value })), { title, placeHolder, ignoreFocusOut: true });
        return picked?.value;
      }
      case "multi": {
        const picked = await vscode.window.showQuickPick(field.choices.map((c) => ({ label: c.label, value: c.value })), {
          title,
          placeHolder,
          canPickMany: true,
          ignoreFocusOut: true,
        });
        return picked?.map((p) => p.value);
      }
      default:
        return vscode.window.showInputBox({
          title,
          prompt: placeHolder,
          value: field.default === undefined ? undefined : String(field.default),
          ignoreFocusOut: true,
        });
    }
  };
}
