//! The daemon's control API payloads: the first byte picks a payload type, the rest is JSON.
//! Decoding never panics, and what decodes survives a round trip unchanged (what one side
//! writes, the other reads back as the same value). Engine errors rebuilt from any RPC error
//! data never panic and round-trip too.
#![no_main]

use std::fmt::Debug;

use libfuzzer_sys::fuzz_target;
use ratchet::daemon::protocol::{
    AnswerParams, ChildParams, CreateParams, HostReplyParams, IdParams, ModelOptionsParams, NameParams, OpenParams,
    QuestionAnswerParams, SendParams, SetParams, TurnItem, engine_error_from_rpc, engine_error_to_rpc,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(json: &Value) {
    let Ok(value) = serde_json::from_value::<T>(json.clone()) else { return };
    let written = serde_json::to_value(&value).expect("a decoded payload serializes");
    let again: T = serde_json::from_value(written.clone())
        .unwrap_or_else(|e| panic!("{} does not read back what it wrote ({e}): {written}", std::any::type_name::<T>()));
    assert_eq!(value, again, "{} changed in a round trip", std::any::type_name::<T>());
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, json)) = data.split_first() else { return };
    let Ok(json) = serde_json::from_slice::<Value>(json) else { return };
    match pick % 13 {
        0 => round_trip::<CreateParams>(&json),
        1 => round_trip::<OpenParams>(&json),
        2 => round_trip::<IdParams>(&json),
        3 => round_trip::<NameParams>(&json),
        4 => round_trip::<SetParams>(&json),
        5 => round_trip::<ModelOptionsParams>(&json),
        6 => round_trip::<AnswerParams>(&json),
        7 => round_trip::<QuestionAnswerParams>(&json),
        8 => round_trip::<ChildParams>(&json),
        9 => round_trip::<SendParams>(&json),
        10 => round_trip::<TurnItem>(&json),
        11 => round_trip::<HostReplyParams>(&json),
        _ => {
            let message = json.get("message").and_then(Value::as_str).unwrap_or("failed");
            if let Some(error) = engine_error_from_rpc(message, json.get("data")) {
                let (_, text, data) = engine_error_to_rpc(&error);
                let again = engine_error_from_rpc(&text, Some(&data)).expect("an engine error's own data reads back");
                assert_eq!(error.to_string(), again.to_string());
            }
        }
    }
});
