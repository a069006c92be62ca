//! Engine errors as control API errors, for methods and subscriptions alike (so neither
//! depends on the other for them).

use jsonrpsee::types::ErrorObjectOwned;

use crate::daemon::protocol;
use crate::engine::EngineError;

/// An engine result as a method result.
pub(super) fn engine<T>(result: Result<T, EngineError>) -> Result<T, ErrorObjectOwned> {
    result.map_err(|e| rpc_error(&e))
}

/// An engine error on the wire (see [`protocol::engine_error_to_rpc`]).
pub(super) fn rpc_error(e: &EngineError) -> ErrorObjectOwned {
    let (code, message, data) = protocol::engine_error_to_rpc(e);
    ErrorObjectOwned::owned(code, message, Some(data))
}
