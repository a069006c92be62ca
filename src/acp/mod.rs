//! The Agent Client Protocol, and only the protocol.
//!
//! JSON-RPC 2.0 framing over newline-delimited JSON ([`framing`], [`envelope`],
//! [`message`]), the error codes ACP uses ([`error`]), and a full-duplex [`peer`] that
//! correlates requests in both directions. The wire types themselves are the official
//! `agent-client-protocol-schema` crate's, re-exported as [`schema`]. Nothing here knows
//! about sessions, models or tools.

pub mod envelope;
pub mod error;
pub mod framing;
pub mod message;
pub mod peer;

/// The official ACP v1 wire types.
pub use agent_client_protocol_schema::v1 as schema;

pub use error::RpcError;
pub use peer::{Handler, Peer, RequestContext, serve};

/// The protocol version this agent speaks. ACP v1 is the stable version; v2 is a draft.
pub const PROTOCOL_VERSION: u16 = 1;
