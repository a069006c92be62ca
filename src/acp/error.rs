//! JSON-RPC error objects and the codes ACP gives them meaning.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The line was not valid JSON.
pub const PARSE_ERROR: i64 = -32700;
/// The JSON was not a valid JSON-RPC 2.0 message.
pub const INVALID_REQUEST: i64 = -32600;
/// No such method (including unknown `_` extension methods).
pub const METHOD_NOT_FOUND: i64 = -32601;
/// The params did not match the method's schema, or named something that does not exist.
pub const INVALID_PARAMS: i64 = -32602;
/// An unexpected failure inside the agent.
pub const INTERNAL_ERROR: i64 = -32603;
/// A session method needs a login first.
pub const AUTH_REQUIRED: i64 = -32000;
/// A session, file or other resource does not exist.
pub const RESOURCE_NOT_FOUND: i64 = -32002;
/// The request was cancelled (`$/cancel_request` or shutdown).
pub const REQUEST_CANCELLED: i64 = -32800;

/// A JSON-RPC error object: `{code, message, data?}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{message} (code {code})")]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl RpcError {
    /// An error with the given code and message.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError { code, message: message.into(), data: None }
    }

    /// Attaches structured details.
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    pub fn parse_error(detail: impl std::fmt::Display) -> Self {
        Self::new(PARSE_ERROR, format!("parse error: {detail}"))
    }

    pub fn invalid_request(detail: impl std::fmt::Display) -> Self {
        Self::new(INVALID_REQUEST, format!("invalid request: {detail}"))
    }

    pub fn method_not_found(method: &str) -> Self {
        Self::new(METHOD_NOT_FOUND, format!("method not found: {method}"))
    }

    pub fn invalid_params(detail: impl std::fmt::Display) -> Self {
        Self::new(INVALID_PARAMS, format!("invalid params: {detail}"))
    }

    pub fn internal(detail: impl std::fmt::Display) -> Self {
        Self::new(INTERNAL_ERROR, format!("internal error: {detail}"))
    }

    pub fn not_found(detail: impl std::fmt::Display) -> Self {
        Self::new(RESOURCE_NOT_FOUND, detail.to_string())
    }

    pub fn request_cancelled() -> Self {
        Self::new(REQUEST_CANCELLED, "request cancelled")
    }
}
