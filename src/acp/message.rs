//! Classifying incoming JSON-RPC 2.0 messages.

use serde_json::{Map, Value};

use super::error::RpcError;

/// An incoming message after validation.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// A call that wants an answer.
    Request { id: Value, method: String, params: Value },
    /// A call that wants no answer.
    Notification { method: String, params: Value },
    /// The peer's answer to one of our requests.
    Response { id: Value, result: Result<Value, RpcError> },
}

/// Classifies one JSON value. On failure, returns the error to send and the id to send it
/// with (`null` when the id could not be read).
///
/// Answers to our own requests (no `method`, a `result` or an `error`) are read leniently and
/// never fail: a missing or wrong `jsonrpc` member and a JSON-RPC 1.0 style `"error": null`
/// beside the result are tolerated. Replying to a response would be worse than useless: the
/// error would carry an id from *our* id space, which the client would take for the answer
/// to one of its own requests (and two peers that answer each other's bad responses never
/// stop).
// The error tuple is large, but this is the cold path for malformed input.
#[allow(clippy::result_large_err)]
pub fn classify(value: Value) -> Result<Incoming, (Value, RpcError)> {
    let Value::Object(mut obj) = value else {
        return Err((Value::Null, RpcError::invalid_request("expected a JSON object")));
    };
    if !obj.contains_key("method") && (obj.contains_key("result") || obj.contains_key("error")) {
        // An id we cannot use becomes `null`, which matches no request of ours: the answer
        // is logged and dropped.
        let id = match obj.remove("id") {
            Some(id @ (Value::String(_) | Value::Number(_))) => id,
            _ => Value::Null,
        };
        return Ok(Incoming::Response { id, result: response_outcome(obj) });
    }
    let id = obj.remove("id");
    let id_for_error = match &id {
        Some(v @ (Value::String(_) | Value::Number(_))) => v.clone(),
        _ => Value::Null,
    };
    let fail = |msg: &str| Err((id_for_error.clone(), RpcError::invalid_request(msg)));
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return fail("\"jsonrpc\" must be \"2.0\"");
    }
    if let Some(id) = &id
        && !matches!(id, Value::String(_) | Value::Number(_) | Value::Null)
    {
        return fail("\"id\" must be a string, a number or null");
    }
    match obj.remove("method") {
        Some(Value::String(method)) => {
            let params = take_params(&mut obj).map_err(|e| (id_for_error.clone(), e))?;
            Ok(match id {
                Some(id) => Incoming::Request { id, method, params },
                None => Incoming::Notification { method, params },
            })
        }
        Some(_) => fail("\"method\" must be a string"),
        None => fail("a message needs \"method\", or \"id\" with \"result\" or \"error\""),
    }
}

fn take_params(obj: &mut Map<String, Value>) -> Result<Value, RpcError> {
    match obj.remove("params") {
        None | Some(Value::Null) => Ok(Value::Object(Map::new())),
        Some(p @ (Value::Object(_) | Value::Array(_))) => Ok(p),
        Some(_) => Err(RpcError::invalid_request("\"params\" must be an object or an array")),
    }
}

/// The outcome a response carries. `"error": null` counts as no error.
fn response_outcome(mut obj: Map<String, Value>) -> Result<Value, RpcError> {
    match obj.remove("error").filter(|e| !e.is_null()) {
        Some(err) => Err(serde_json::from_value::<RpcError>(err)
            .unwrap_or_else(|e| RpcError::internal(format!("peer sent a malformed error: {e}")))),
        None => obj
            .remove("result")
            .ok_or_else(|| RpcError::internal("peer sent a response with a null error and no result")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn request_notification_response() {
        let r = classify(json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":1}})).unwrap();
        assert!(matches!(r, Incoming::Request { ref method, .. } if method == "initialize"));
        let n = classify(json!({"jsonrpc":"2.0","method":"session/cancel","params":{"sessionId":"s"}})).unwrap();
        assert!(matches!(n, Incoming::Notification { .. }));
        let ok = classify(json!({"jsonrpc":"2.0","id":7,"result":{}})).unwrap();
        assert_eq!(ok, Incoming::Response { id: json!(7), result: Ok(json!({})) });
        let err = classify(json!({"jsonrpc":"2.0","id":7,"error":{"code":-32601,"message":"x"}})).unwrap();
        assert!(matches!(err, Incoming::Response { result: Err(RpcError { code: -32601, .. }), .. }));
    }

    #[test]
    fn responses_are_read_leniently() {
        // No `jsonrpc` member: still the answer it obviously is.
        let r = classify(json!({"id":3,"result":{"ok":true}})).unwrap();
        assert_eq!(r, Incoming::Response { id: json!(3), result: Ok(json!({"ok":true})) });
        // JSON-RPC 1.0 style: a null error beside the result.
        let r = classify(json!({"jsonrpc":"2.0","id":3,"result":{},"error":null})).unwrap();
        assert_eq!(r, Incoming::Response { id: json!(3), result: Ok(json!({})) });
        // The result may itself be null.
        let r = classify(json!({"jsonrpc":"2.0","id":3,"result":null})).unwrap();
        assert_eq!(r, Incoming::Response { id: json!(3), result: Ok(Value::Null) });
        // An error about a message of ours the peer could not read: no id, never answered.
        let r = classify(json!({"jsonrpc":"2.0","error":{"code":-32700,"message":"bad"}})).unwrap();
        assert!(matches!(r, Incoming::Response { id: Value::Null, result: Err(RpcError { code: -32700, .. }) }));
        let r = classify(json!({"jsonrpc":"1.0","id":{"x":1},"error":"nope"})).unwrap();
        assert!(matches!(r, Incoming::Response { id: Value::Null, result: Err(RpcError { code: -32603, .. }) }));
        let r = classify(json!({"jsonrpc":"2.0","id":3,"error":null})).unwrap();
        assert!(matches!(r, Incoming::Response { result: Err(_), .. }));
    }

    #[test]
    fn missing_params_become_an_empty_object() {
        let r = classify(json!({"jsonrpc":"2.0","id":"a","method":"m"})).unwrap();
        assert_eq!(r, Incoming::Request { id: json!("a"), method: "m".into(), params: json!({}) });
    }

    #[test]
    fn invalid_messages_keep_their_id() {
        let (id, e) = classify(json!({"jsonrpc":"1.0","id":3,"method":"m"})).unwrap_err();
        assert_eq!((id, e.code), (json!(3), -32600));
        let (id, e) = classify(json!({"jsonrpc":"2.0","id":4})).unwrap_err();
        assert_eq!((id, e.code), (json!(4), -32600));
        let (id, e) = classify(json!([1])).unwrap_err();
        assert_eq!((id, e.code), (Value::Null, -32600));
        let (_, e) = classify(json!({"jsonrpc":"2.0","id":{"x":1},"method":"m"})).unwrap_err();
        assert_eq!(e.code, -32600);
    }
}
