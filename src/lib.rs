//! ratchet: an AI coding-agent server that editors talk to over the Agent Client Protocol.
//!
//! Three layers, kept apart: [`acp`] is the protocol only, [`engine`] is the agent only, and
//! [`bridge`] is the one place that knows both. See `ARCHITECTURE.md`.
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod acp;
pub mod bridge;
pub mod compose;
pub mod daemon;
pub mod engine;
#[doc(hidden)]
pub mod fuzz_entry;
pub mod logging;
pub mod orchestra;
