//! Integration tests: the real `ratchet` binary driven over stdio like an editor would,
//! against a real HTTP mock of the LLM providers. One test binary (`cargo test --test it`).
//!
//! - `support`: harness (test env, mock LLM server, ACP client, schema validation)
//! - `handshake`: initialize, version negotiation, capabilities, session/new shape, EOF
//! - `prompt`: streamed turns, history sent to the model, content blocks, busy sessions
//! - `providers`: the three wire formats, stop reasons, auth errors, retries
//! - `sessions`: load/resume/close/list, modes and config options, durability
//! - `cancel`: session/cancel semantics
//! - `errors`: JSON-RPC error handling
//! - `memory`: parse memory stays a small multiple of the line; big strings still pass
//! - `conformance`: framing oddities, lenient responses, session roots, prompt content,
//!   failed permission answers, `$/cancel_request` both ways
//! - `cli`: `ratchet exec`, `ratchet sessions list`, `--version`
//! - `sdk_client`: the official ACP Rust SDK as the client
//! - `tool_loop`: the agent loop: tool calls reported and fed back (three wire formats),
//!   several calls per answer, iteration cap, loop detector, plans, the path sandbox
//! - `permissions`: permission questions, always-answers, modes, allow/deny rules
//! - `editor_delegation`: fs and terminal requests to the editor, or local work without them
//! - `secrets`: secrets withheld from commands (and from /proc), values redacted from tool output
//! - `data_dir`: the data directory is private; unwritable logs and data dirs at start-up
//! - `tool_cancel`: session/cancel during permission questions and running commands
//! - `tool_history`: tool calls replayed by session/load and resent to the model
//! - `commands`: slash commands (the command list, /help, /mode, /model, /clear, /compact,
//!   automatic compaction, /plan, /review) and unknown `/words` sent as text
//! - `daemon`: windows sharing one daemon (live turns of other windows, detached turns,
//!   kill -9 of the daemon), `acp --standalone`, `exec` and `attach` beside a daemon
//! - `orphans`: commands die with a killed agent or daemon; the exec guard's passthrough
//! - `daemon_reconnect`: a window that survives its daemon (reconnect, start it again,
//!   re-open and re-follow sessions, retryable errors in the gap)
//! - `orchestra_cli`: `ratchet plans`, `ratchet questions` and `ratchet jobs` on the
//!   orchestra's database, seeded through the library
//! - `fleet`: plans and the fleet (approval by form, max_workers, failing and rejected plans)
//! - `cron`: `ratchet cron …` and scheduled runs (counts, pause/resume/stop, busy sessions,
//!   `ratchet jobs`, a daemon restart, two processes on one data directory)
//! - `hooks`: pre-hooks refusing tool calls with their output, post hooks reading the event
//!   on stdin, no provider keys in hooks, timeouts, broken files, `ratchet hooks list`
//! - `fleet_control`: plans approved from the CLI, `jobs kill` of a worker, `ask_human`
//!   answered from the CLI and by rules, workers' permission questions, cancel, daemon mode
//! - `lsp`: diagnostics from a real language server (pyright) after edits and from the
//!   `diagnostics` tool; a missing or crashing server never fails an edit
//! - `tasks_cli`: `ratchet tasks` and the `task_*` tools (a second claim refused, a turn's
//!   claim lapsing), `ratchet project` (list, start, status, pause/resume/kill of its jobs)
//! - `faults_kill`: kill -9 at 50 random moments of streaming turns (stand-alone, daemon),
//!   the editor closing stdin mid-prompt: the store stays whole, nothing acknowledged is lost
//! - `faults_daemon`: the daemon killed 20 times while fleets run under an attached window
//! - `faults_daemon_teams`: the daemon killed 20 times while teams run under an attached window
//! - `faults_disk`: a full disk mid-run (a file size limit) and a read-only data directory
//! - `faults_load`: 10,000 requests at once, every one answered, memory bounded
//! - `faults_provider`: the provider breaking off mid-stream or hanging (the stall timeout)
//! - `hostile`: 100 MB lines, deep nesting, invalid UTF-8, huge tool outputs, 1,000 tool
//!   calls at once, prompt injection against the permission gate, symlink races

mod support;

mod agents_cli;
mod cancel;
mod cli;
mod conformance;
mod cron;
mod errors;
mod faults_daemon;
mod faults_daemon_teams;
mod faults_disk;
mod faults_kill;
mod faults_load;
mod faults_provider;
mod fleet;
mod fleet_control;
mod handshake;
#[cfg(target_os = "linux")]
mod hostile;
#[cfg(target_os = "linux")]
mod memory;
mod prompt;
mod providers;
mod sdk_client;
mod sessions;

mod commands;
mod daemon;
mod daemon_reconnect;
mod data_dir;
mod editor_delegation;
mod hooks;
mod lsp;
mod mcp_servers;
mod orchestra_cli;
mod orphans;
mod permissions;
mod questions_bridge;
mod secrets;
mod tasks_cli;
mod teams;
mod tool_cancel;
mod tool_history;
mod tool_loop;
