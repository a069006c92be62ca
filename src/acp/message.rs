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
// The error tuple is large, but this is the cold path for malformed input.
#[allow(clippy::result_large_err)]
pub fn classify(value: Value) -> Result<Incoming, (Value, RpcError)> {
    let Value::Object(mut obj) = value else {
        return Err((Value::Null, RpcError::invalid_request("expected a JSON object")));
    };
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
        None => classify_response(id, obj)
            .or_else(|()| fail("a message needs \"method\", or \"id\" with \"result\" or \"error\"")),
    }
}

fn take_params(obj: &mut Map<String, Value>) -> Result<Value, RpcError> {
    match obj.remove("params") {
        None | Some(Value::Null) => Ok(Value::Object(Map::new())),
        Some(p @ (Value::Object(_) | Value::Array(_))) => Ok(p),
        Some(_) => Err(RpcError::invalid_request("\"params\" must be an object or an array")),
    }
}

fn classify_response(id: Option<Value>, mut obj: Map<String, Value>) -> Result<Incoming, ()> {
    let id = id.ok_or(())?;
    if let Some(err) = obj.remove("error") {
        let err = serde_json::from_value::<RpcError>(err)
            .unwrap_or_else(|e| RpcError::internal(format!("peer sent a malformed error: {e}")));
        return Ok(Incoming::Response { id, result: Err(err) });
    }
    match obj.remove("result") {
        Some(result) => Ok(Incoming::Response { id, result: Ok(result) }),
        None => Err(()),
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
