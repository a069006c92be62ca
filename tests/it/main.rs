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
//! - `cli`: `ratchet exec`, `ratchet sessions list`, `--version`
//! - `sdk_client`: the official ACP Rust SDK as the client

mod support;

mod cancel;
mod cli;
mod errors;
mod handshake;
mod prompt;
mod providers;
mod sdk_client;
mod sessions;
