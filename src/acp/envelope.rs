//! Reading a line's JSON-RPC members without building a `Value` tree first.
//!
//! As a `serde_json::Value`, numbers, arrays and objects cost about 30 times their text (a
//! 50 MB array of zeros took 1.9 GiB). So a line is first split into borrowed slices of its
//! members ([`Envelope`]), and a member becomes a `Value` only after a byte scan has counted
//! its JSON values ([`count_values`]) against [`MAX_JSON_VALUES`]. Strings cost about their
//! size either way, which is why big images and files (ACP sends them as strings) still fit.

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

use super::error::RpcError;

/// Most JSON values (each number, string, literal, array and object) one message may carry.
///
/// Real ACP messages hold hundreds, a long prompt or a big client answer some thousands:
/// the content that makes them large is strings, which count once whatever their length.
/// 2^18 values cost at most some tens of MiB as a `Value` tree.
pub const MAX_JSON_VALUES: usize = 1 << 18;

/// One line, split into messages but not yet decoded.
#[derive(Debug)]
pub enum Frame<'a> {
    /// One message (an object).
    Single(Envelope<'a>),
    /// A batch: its elements, each still raw (any of them may not be an object).
    Batch(Vec<&'a RawValue>),
}

/// The members of a JSON-RPC message, as borrowed JSON text. Other members are skipped
/// unread; a repeated member keeps its last value, as a `Value` map would.
#[derive(Debug, Default)]
pub struct Envelope<'a> {
    pub jsonrpc: Option<&'a RawValue>,
    pub id: Option<&'a RawValue>,
    pub method: Option<&'a RawValue>,
    pub params: Option<&'a RawValue>,
    pub result: Option<&'a RawValue>,
    pub error: Option<&'a RawValue>,
}

impl<'a> Envelope<'a> {
    /// Reads one message that is known to be valid JSON (a batch element). Anything but an
    /// object is an invalid request.
    pub fn from_raw(raw: &'a RawValue) -> Result<Self, RpcError> {
        if !raw.get().starts_with('{') {
            return Err(RpcError::invalid_request("expected a JSON object"));
        }
        serde_json::from_str(raw.get()).map_err(RpcError::parse_error)
    }
}

/// Splits a line. Fails with the error to answer (with a `null` id): -32700 for JSON that
/// does not parse, -32600 for JSON that is not a message or a batch, or a batch over budget.
pub fn split(line: &str) -> Result<Frame<'_>, RpcError> {
    match line.trim_start_matches([' ', '\t', '\r', '\n']).as_bytes().first() {
        Some(b'{') => serde_json::from_str(line).map(Frame::Single).map_err(RpcError::parse_error),
        Some(b'[') => {
            let raw: &RawValue = serde_json::from_str(line).map_err(RpcError::parse_error)?;
            // The elements' slices cost 16 bytes each, so the budget holds for the whole batch.
            let values = count_values(raw.get());
            if values > MAX_JSON_VALUES {
                return Err(RpcError::invalid_request(format!(
                    "the batch holds {}; send large messages on their own line",
                    over_budget(values)
                )));
            }
            serde_json::from_str(raw.get()).map(Frame::Batch).map_err(RpcError::parse_error)
        }
        _ => match serde_json::from_str::<IgnoredAny>(line) {
            Ok(_) => Err(RpcError::invalid_request("expected a JSON object")),
            Err(e) => Err(RpcError::parse_error(e)),
        },
    }
}

/// Why a member over [`MAX_JSON_VALUES`] was refused, for the error message.
pub fn over_budget(values: usize) -> String {
    format!(
        "{values} JSON values, more than the {MAX_JSON_VALUES} a message may carry \
         (send images and files as strings: a string counts as one value)"
    )
}

/// Why a member was not decoded.
#[derive(Debug)]
pub enum Undecoded {
    /// It holds this many values, more than [`MAX_JSON_VALUES`].
    OverBudget(usize),
    /// Valid JSON that a `Value` cannot hold (nested too deep, a number out of range).
    Invalid(serde_json::Error),
}

/// Decodes a member into a `Value`, if it is within budget.
pub fn to_value(raw: &RawValue) -> Result<Value, Undecoded> {
    let values = count_values(raw.get());
    if values > MAX_JSON_VALUES {
        return Err(Undecoded::OverBudget(values));
    }
    serde_json::from_str(raw.get()).map_err(Undecoded::Invalid)
}

/// The string a member holds, or `None` if it is not a string.
pub fn to_string(raw: &RawValue) -> Option<String> {
    raw.get().starts_with('"').then(|| serde_json::from_str(raw.get()).ok()).flatten()
}

/// Counts the JSON values in valid JSON text: every number, string, literal, array and
/// object (object keys are not values). One pass over the bytes, no allocation.
///
/// A value starts at each byte that follows the start, `[`, `{`, `,` or `:` (whitespace
/// aside) and is no closing bracket; those starts include object keys, one per `:`.
pub fn count_values(json: &str) -> usize {
    let bytes = json.as_bytes();
    let (mut starts, mut colons) = (0usize, 0usize);
    let mut at_start = true;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b' ' | b'\t' | b'\n' | b'\r' => {}
            b',' => at_start = true,
            b':' => {
                colons += 1;
                at_start = true;
            }
            b']' | b'}' => at_start = false,
            b => {
                starts += usize::from(at_start);
                at_start = matches!(b, b'[' | b'{');
                if b == b'"' {
                    i += 1;
                    while i < bytes.len() && bytes[i] != b'"' {
                        i += if bytes[i] == b'\\' { 2 } else { 1 };
                    }
                }
            }
        }
        i += 1;
    }
    starts.saturating_sub(colons)
}

impl<'de> Deserialize<'de> for Envelope<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(EnvelopeVisitor)
    }
}

/// The member names of a message; `Other` is skipped.
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "lowercase")]
enum Member {
    Jsonrpc,
    Id,
    Method,
    Params,
    Result,
    Error,
    #[serde(other)]
    Other,
}

struct EnvelopeVisitor;

impl<'de> Visitor<'de> for EnvelopeVisitor {
    type Value = Envelope<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON-RPC message object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Envelope<'de>, A::Error> {
        let mut envelope = Envelope::default();
        while let Some(member) = map.next_key::<Member>()? {
            let slot = match member {
                Member::Jsonrpc => &mut envelope.jsonrpc,
                Member::Id => &mut envelope.id,
                Member::Method => &mut envelope.method,
                Member::Params => &mut envelope.params,
                Member::Result => &mut envelope.result,
                Member::Error => &mut envelope.error,
                Member::Other => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            *slot = Some(map.next_value()?);
        }
        Ok(envelope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The exact number of values, counted on a `Value` tree.
    fn tree_count(v: &Value) -> usize {
        1 + match v {
            Value::Array(items) => items.iter().map(tree_count).sum(),
            Value::Object(map) => map.values().map(tree_count).sum(),
            _ => 0,
        }
    }

    #[test]
    fn counts_every_value_but_not_object_keys() {
        for text in [
            "0",
            "\"\"",
            "[]",
            "{}",
            "[1, -2.5e3, true, false, null]",
            r#"{"a": 1, "b": [2, 3], "c": {"d": null}}"#,
            r#" [ [ [ ] ] , { } , "x" ] "#,
            r#"{"k": {"k": {"k": [[], {}, [{}]]}}}"#,
        ] {
            let v: Value = serde_json::from_str(text).unwrap();
            assert_eq!(count_values(text), tree_count(&v), "{text}");
        }
    }

    #[test]
    fn brackets_quotes_and_separators_inside_strings_are_not_counted() {
        let text = r#"{"a\"[{": "],:{\"\\", "b": ["\\", "[1,2,3]", "\u0022,"], "\\\"": "}"}"#;
        let v: Value = serde_json::from_str(text).unwrap();
        assert_eq!(tree_count(&v), 7);
        assert_eq!(count_values(text), 7);
        // A long string is one value.
        let text = json!({"data": "[0,".repeat(10_000)}).to_string();
        assert_eq!(count_values(&text), 2);
    }

    #[test]
    fn a_truncated_string_does_not_read_past_the_end() {
        // Only valid JSON is counted in practice; broken text must still not panic.
        for text in ["\"abc", "\"ab\\", "[\"\\", "]]]", ",,::", ""] {
            let _ = count_values(text);
        }
    }

    #[test]
    fn the_envelope_borrows_members_and_skips_the_rest() {
        let line = r#"{"jsonrpc":"2.0","id":7,"method":"m","params":{"x":[1,2]},"extra":[[[{"y":1}]]],"p\u0061rams":{"x":[3]}}"#;
        let Frame::Single(e) = split(line).unwrap() else { panic!("not a single message") };
        assert_eq!(e.jsonrpc.map(RawValue::get), Some(r#""2.0""#));
        assert_eq!(e.id.map(RawValue::get), Some("7"));
        assert_eq!(e.method.map(RawValue::get), Some(r#""m""#));
        // An escaped key is the same member; the last one wins, as in a `Value` map.
        assert_eq!(e.params.map(RawValue::get), Some(r#"{"x":[3]}"#));
        assert!(e.result.is_none() && e.error.is_none());
        // `null` members are kept (a null id or result means something).
        let Frame::Single(e) = split(r#"{"id":null,"result":null}"#).unwrap() else { panic!() };
        assert_eq!((e.id.map(RawValue::get), e.result.map(RawValue::get)), (Some("null"), Some("null")));
    }

    #[test]
    fn lines_that_are_not_messages() {
        assert_eq!(split("{\"id\":1,").unwrap_err().code, -32700);
        assert_eq!(split("{} x").unwrap_err().code, -32700);
        assert_eq!(split("nope").unwrap_err().code, -32700);
        assert_eq!(split("[1,").unwrap_err().code, -32700);
        assert_eq!(split(" 42 ").unwrap_err().code, -32600);
        assert_eq!(split("\"text\"").unwrap_err().code, -32600);
        let Frame::Batch(items) = split(r#" [{"id":1}, 2, "x"] "#).unwrap() else { panic!("not a batch") };
        let items: Vec<_> = items.iter().map(|r| r.get()).collect();
        assert_eq!(items, [r#"{"id":1}"#, "2", r#""x""#]);
        assert_eq!(Envelope::from_raw(serde_json::from_str("2").unwrap()).unwrap_err().code, -32600);
    }

    #[test]
    fn members_and_batches_over_budget_are_refused_before_decoding() {
        let many = format!("[{}0]", "0,".repeat(MAX_JSON_VALUES));
        let raw: &RawValue = serde_json::from_str(&many).unwrap();
        assert!(matches!(to_value(raw), Err(Undecoded::OverBudget(n)) if n == MAX_JSON_VALUES + 2));
        let e = split(&many).unwrap_err();
        assert_eq!(e.code, -32600);
        assert!(e.message.contains(&(MAX_JSON_VALUES + 2).to_string()), "{e}");
        let fits = format!("[{}0]", "0,".repeat(MAX_JSON_VALUES - 2));
        let raw: &RawValue = serde_json::from_str(&fits).unwrap();
        assert_eq!(to_value(raw).unwrap().as_array().map(Vec::len), Some(MAX_JSON_VALUES - 1));
        // Too deep for a `Value` tree: a parse error, not a panic.
        let deep = format!("{}{}", "[".repeat(1000), "]".repeat(1000));
        let raw: &RawValue = serde_json::from_str(&deep).unwrap();
        assert!(matches!(to_value(raw), Err(Undecoded::Invalid(_))));
    }
}
