// The `@ratchet` chat participant: each request is one prompt turn of the folder's session,
// streamed into the response. A new chat (no history) starts a new session, unless a past
// one was just loaded from the history picker.
import * as vscode from "vscode";
import { basename } from "node:path";
import type { ContentBlock } from "./acp/schema";
import type { Agents } from "./agents";

/** The prompt and the references attached to it (`#file`, selections) as ACP content. */
function promptBlocks(request: vscode.ChatRequest): ContentBlock[] {
  const blocks: ContentBlock[] = [{ type: "text", text: request.command ? `/${request.command} ${request.prompt}` : request.prompt }];
  for (const ref of request.references) {
    const uri = ref.value instanceof vscode.Uri ? ref.value : ref.value instanceof vscode.Location ? ref.value.uri : undefined;
    if (uri) blocks.push({ type: "resource_link", uri: uri.toString(), name: basename(uri.fsPath) });
  }
  return blocks;
}

export function chatHandler(agents: Agents): vscode.ChatRequestHandler {
  return async (request, context, stream, token) => {
    const agent = agents.current();
    if (!agent) {
      stream.markdown("Open a folder first: ratchet runs one agent per workspace folder (File › Open Folder).");
      return {};
    }
    if (agent.running) {
      stream.markdown("A turn is still running in this folder; stop it (or run **Ratchet: Cancel the Running Turn**) first.");
      return {};
    }
    try {
      if (context.history.length === 0 && agent.turns > 0 && !agent.continueLoaded) await agent.newSession();
      stream.progress(`ratchet in ${agent.folder.name}…`);
      const result = await agent.prompt(promptBlocks(request), stream, token);
      return { metadata: { sessionId: agent.sessionId, stopReason: result.stopReason } };
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      return {
        errorDetails: {
          message: `${message}. Check \`ratchet.path\` (and \`ratchet --version\` in a terminal), then run "Ratchet: Restart the Agent"; ratchet's log is in the "Ratchet" output channel.`,
        },
      };
    }
  };
}
