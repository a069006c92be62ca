//! Classifying incoming JSON-RPC 2.0 messages.

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::envelope::{self, Envelope, Undecoded};
use super::error::RpcError;

/// An incoming message after validation.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// A call that wants an answer.
    Request { id: Value, method: String, params: Value },
    /// A call that wants no answer.
    Notification { method: String, params: Value },
    /// A notification whose params were too large to read: dropped, and never answered.
    Refused { method: String, error: RpcError },
    /// The peer's answer to one of our requests.
    Response { id: Value, result: Result<Value, RpcError> },
}

/// Classifies one batch element (any JSON value). See [`classify`].
#[allow(clippy::result_large_err)]
pub fn classify_raw(raw: &RawValue) -> Result<Incoming, (Value, RpcError)> {
    classify(Envelope::from_raw(raw).map_err(|e| (Value::Null, e))?)
}

/// Classifies one message. On failure, returns the error to send and the id to send it
/// with (`null` when the id could not be read). Params, results and errors become `Value`s
/// only within [`envelope::MAX_JSON_VALUES`]: a request over it is -32602, an answer over
/// it fails our request.
///
/// Answers to our own requests (no `method`, a `result` or an `error`) are read leniently and
/// never fail: a missing or wrong `jsonrpc` member and a JSON-RPC 1.0 style `"error": null`
/// beside the result are tolerated. Replying to a response would be worse than useless: the
/// error would carry an id from *our* id space, which the client would take for the answer
/// to one of its own requests (and two peers that answer each other's bad responses never
/// stop).
// The error tuple is large, but this is the cold path for malformed input.
#[allow(clippy::result_large_err)]
pub fn classify(msg: Envelope<'_>) -> Result<Incoming, (Value, RpcError)> {
    if msg.method.is_none() && (msg.result.is_some() || msg.error.is_some()) {
        // An id we cannot use becomes `null`, which matches no request of ours: the answer
        // is logged and dropped.
        let id = msg.id.and_then(|id| scalar_id(id).ok().flatten()).unwrap_or(Value::Null);
        return Ok(Incoming::Response { id, result: response_outcome(&msg) });
    }
    let id = match msg.id.map(scalar_id) {
        None => None,
        Some(Ok(id)) => Some(id),
        Some(Err(e)) => return Err((Value::Null, e)),
    };
    let id_for_error = id.clone().flatten().unwrap_or(Value::Null);
    let fail = |msg: &str| Err((id_for_error.clone(), RpcError::invalid_request(msg)));
    if msg.jsonrpc.and_then(envelope::to_string).as_deref() != Some("2.0") {
        return fail("\"jsonrpc\" must be \"2.0\"");
    }
    if id == Some(None) {
        return fail("\"id\" must be a string, a number or null");
    }
    let Some(method) = msg.method else {
        return fail("a message needs \"method\", or \"id\" with \"result\" or \"error\"");
    };
    let Some(method) = envelope::to_string(method) else {
        return fail("\"method\" must be a string");
    };
    // Absent or `null` params are an empty object; scalars are refused undecoded.
    let params = match msg.params {
        None => Ok(Value::Object(Map::new())),
        Some(p) if p.get() == "null" => Ok(Value::Object(Map::new())),
        Some(p) if p.get().starts_with(['{', '[']) => envelope::to_value(p),
        Some(_) => return fail("\"params\" must be an object or an array"),
    };
    match params {
        Ok(params) => Ok(match id {
            Some(id) => Incoming::Request { id: id.unwrap_or(Value::Null), method, params },
            None => Incoming::Notification { method, params },
        }),
        Err(Undecoded::OverBudget(n)) => {
            let error = RpcError::invalid_params(format!("params hold {}", envelope::over_budget(n)));
            match id {
                Some(id) => Err((id.unwrap_or(Value::Null), error)),
                None => Ok(Incoming::Refused { method, error }),
            }
        }
        Err(Undecoded::Invalid(e)) => Err((id_for_error, RpcError::parse_error(e))),
    }
}

/// An id as written: `Some` string, number or null, `None` for another kind of JSON (not
/// decoded, so a huge array costs nothing); an error for a number `Value` cannot hold.
fn scalar_id(raw: &RawValue) -> Result<Option<Value>, RpcError> {
    match raw.get().as_bytes().first() {
        Some(b'"' | b'-' | b'0'..=b'9' | b'n') => {
            serde_json::from_str(raw.get()).map(Some).map_err(RpcError::parse_error)
        }
        _ => Ok(None),
    }
}

/// The outcome a response carries. `"error": null` counts as no error.
fn response_outcome(msg: &Envelope<'_>) -> Result<Value, RpcError> {
    let too_big =
        |what: &str, n| RpcError::invalid_request(format!("the client's {what} holds {}", envelope::over_budget(n)));
    match msg.error.filter(|e| e.get() != "null") {
        Some(err) => Err(match envelope::to_value(err) {
            Ok(err) => serde_json::from_value::<RpcError>(err)
                .unwrap_or_else(|e| RpcError::internal(format!("peer sent a malformed error: {e}"))),
            Err(Undecoded::OverBudget(n)) => too_big("error", n),
            Err(Undecoded::Invalid(e)) => RpcError::internal(format!("peer sent a malformed error: {e}")),
        }),
        None => match msg.result.map(envelope::to_value) {
            Some(Ok(result)) => Ok(result),
            Some(Err(Undecoded::OverBudget(n))) => Err(too_big("result", n)),
            Some(Err(Undecoded::Invalid(e))) => Err(RpcError::parse_error(format!("in the client's result: {e}"))),
            None => Err(RpcError::internal("peer sent a response with a null error and no result")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Classifies a message given as a `Value`, through its JSON text.
    #[allow(clippy::result_large_err)]
    fn classify(v: Value) -> Result<Incoming, (Value, RpcError)> {
        classify_text(&v.to_string())
    }

    #[allow(clippy::result_large_err)]
    fn classify_text(text: &str) -> Result<Incoming, (Value, RpcError)> {
        classify_raw(&serde_json::from_str::<Box<RawValue>>(text).unwrap())
    }

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

    #[test]
    fn members_over_the_value_budget_are_refused_by_kind() {
        let many = format!("[{}0]", "0,".repeat(envelope::MAX_JSON_VALUES));
        let (id, e) =
            classify_text(&format!(r#"{{"jsonrpc":"2.0","id":9,"method":"m","params":{{"x":{many}}}}}"#)).unwrap_err();
        assert_eq!((id, e.code), (json!(9), -32602));
        assert!(e.message.contains("262147 JSON values") && e.message.contains("strings"), "{e}");
        let r = classify_text(&format!(r#"{{"jsonrpc":"2.0","method":"m","params":{many}}}"#)).unwrap();
        assert!(matches!(r, Incoming::Refused { ref method, error: RpcError { code: -32602, .. } } if method == "m"));
        // An answer over budget fails our request instead of being answered.
        let r = classify_text(&format!(r#"{{"jsonrpc":"2.0","id":4,"result":{many}}}"#)).unwrap();
        assert!(matches!(r, Incoming::Response { id, result: Err(RpcError { code: -32600, .. }) } if id == json!(4)));
        let r = classify_text(&format!(r#"{{"id":4,"error":{{"code":1,"message":"m","data":{many}}}}}"#)).unwrap();
        assert!(matches!(r, Incoming::Response { result: Err(RpcError { code: -32600, .. }), .. }));
        // An id that is no scalar is refused without being decoded.
        let (id, e) = classify_text(&format!(r#"{{"jsonrpc":"2.0","id":{many},"method":"m"}}"#)).unwrap_err();
        assert_eq!((id, e.code), (Value::Null, -32600));
    }

    #[test]
    fn odd_but_valid_json_keeps_its_old_meaning() {
        // A repeated member: the last one counts, as in a `Value` map.
        let r = classify_text(r#"{"jsonrpc":"2.0","id":1,"method":"a","method":"b"}"#).unwrap();
        assert!(matches!(r, Incoming::Request { ref method, .. } if method == "b"));
        // Escaped member names and values.
        let r = classify_text(r#"{"jsonrpc":"2\u002e0","\u0069d":"x\"y","method":"m\/n","params":null}"#).unwrap();
        assert_eq!(r, Incoming::Request { id: json!("x\"y"), method: "m/n".into(), params: json!({}) });
        // A number id `Value` cannot hold, and params nested too deep: parse errors.
        assert_eq!(classify_text(r#"{"jsonrpc":"2.0","id":1e999,"method":"m"}"#).unwrap_err().1.code, -32700);
        let deep = format!("{}{}", "[".repeat(500), "]".repeat(500));
        let (id, e) =
            classify_text(&format!(r#"{{"jsonrpc":"2.0","id":2,"method":"m","params":{deep}}}"#)).unwrap_err();
        assert_eq!((id, e.code), (json!(2), -32700));
    }
}
