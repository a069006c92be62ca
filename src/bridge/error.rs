//! Engine errors as JSON-RPC errors.

use serde_json::json;

use crate::acp::RpcError;
use crate::acp::error::{INTERNAL_ERROR, INVALID_PARAMS, RESOURCE_NOT_FOUND};
use crate::engine::store::StoreError;
use crate::engine::{EngineError, ErrorKind};

/// A prompt on a session that is still running a turn. In the server-error range, since
/// ACP defines no code for it.
pub const SESSION_BUSY: i64 = -32004;

/// The engine cannot be reached right now (the daemon stopped; ratchet is reconnecting):
/// sending the request again later works. Also in the server-error range; `data.kind` is
/// `unavailable` and `data.retryable` is true.
pub const ENGINE_UNAVAILABLE: i64 = -32005;

impl From<EngineError> for RpcError {
    fn from(e: EngineError) -> Self {
        let code = match &e {
            EngineError::NotFound(_) | EngineError::NotOpen(_) => RESOURCE_NOT_FOUND,
            EngineError::Busy(_) => SESSION_BUSY,
            EngineError::UnknownMode(_) | EngineError::InvalidProvider(_) => INVALID_PARAMS,
            EngineError::ProviderNotFound(_) => RESOURCE_NOT_FOUND,
            EngineError::Store(StoreError::BadCursor(_)) => INVALID_PARAMS,
            EngineError::Store(StoreError::NotFound(_)) => RESOURCE_NOT_FOUND,
            EngineError::Store(_) | EngineError::Config(_) => INTERNAL_ERROR,
            EngineError::Unavailable(message) => return unavailable(message.clone()),
        };
        RpcError::new(code, e.to_string())
    }
}

/// A failed turn: the message tells the user what to do; `data.kind` lets clients react.
pub fn turn_failed(kind: ErrorKind, message: String) -> RpcError {
    let (code, kind) = match kind {
        ErrorKind::Unavailable => return unavailable(message),
        ErrorKind::Auth => (INTERNAL_ERROR, "auth"),
        ErrorKind::Config => (INTERNAL_ERROR, "config"),
        ErrorKind::Provider => (INTERNAL_ERROR, "provider"),
        ErrorKind::Store => (INTERNAL_ERROR, "store"),
        ErrorKind::Internal => (INTERNAL_ERROR, "internal"),
    };
    RpcError::new(code, message.clone()).with_data(json!({"kind": kind, "message": message}))
}

/// The engine is out of reach: a distinct code and kind, so a client may retry on its own.
fn unavailable(message: String) -> RpcError {
    RpcError::new(ENGINE_UNAVAILABLE, message.clone())
        .with_data(json!({"kind": "unavailable", "retryable": true, "message": message}))
}

/// A turn stopped because the editor failed a request it depended on (a permission question
/// answered with an error): not a cancellation, so not `stopReason: cancelled`.
pub fn client_failed(message: String) -> RpcError {
    RpcError::new(INTERNAL_ERROR, message.clone()).with_data(json!({"kind": "client", "message": message}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_engine_is_retryable_with_its_own_code_before_and_during_a_turn() {
        let before = RpcError::from(EngineError::Unavailable("the daemon is not reachable".into()));
        let during = turn_failed(ErrorKind::Unavailable, "the daemon stopped".into());
        for e in [before, during] {
            assert_eq!(e.code, ENGINE_UNAVAILABLE, "{e:?}");
            let data = e.data.clone().unwrap_or_default();
            assert_eq!(
                (data["kind"].as_str(), data["retryable"].as_bool()),
                (Some("unavailable"), Some(true)),
                "{e:?}"
            );
        }
    }
}
