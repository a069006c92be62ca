#!/usr/bin/env bash
# Tests and packages the VS Code extension: `npm ci` (the pinned package-lock.json), `tsc`,
# the ACP client's tests under `node --test` against the real `ratchet` binary (RATCHET_BIN,
# default $CARGO_TARGET_DIR/debug/ratchet, else target/debug/ratchet, relative to the
# repository root) and the mock LLM of the Neovim tests, then `vsce package` into
# editors/vscode/.vsix/ (git-ignored). Skips (exit 0) only when npm is absent.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"

if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
  echo "VS Code extension tests SKIPPED: npm (and node) not found; install Node.js 20+ to run them." >&2
  exit 0
fi

# test/support.ts finds the binary (RATCHET_BIN, else $CARGO_TARGET_DIR or target, relative to
# the repository root) and fails every test with what to do when it is missing.
cd "$here"
npm ci --no-audit --no-fund --loglevel=error
npx --no-install tsc -p .
node --test --test-concurrency=1 out/test/*.test.js
rm -rf .vsix && mkdir .vsix
npx --no-install vsce package --out .vsix/ratchet.vsix
echo "VS Code extension packaged: $here/.vsix/ratchet.vsix"
