//! ACP params decoding: the first byte picks a method, the rest is its params as JSON; the
//! bridge's decoding (wire type, then prompt, directory and MCP conversions) never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

const METHODS: &[&str] = &[
    "initialize",
    "session/new",
    "session/load",
    "session/resume",
    "session/list",
    "session/close",
    "session/set_mode",
    "session/set_config_option",
    "session/set_model",
    "session/prompt",
    "session/cancel",
    "response/session/request_permission",
    "response/fs/read_text_file",
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, json)) = data.split_first() else { return };
    let method = METHODS[usize::from(pick) % METHODS.len()];
    let Ok(params) = serde_json::from_slice::<serde_json::Value>(json) else { return };
    if let Err(e) = ratchet::fuzz_entry::acp_params(method, params) {
        assert_eq!(e.code, -32602, "{method}: a decoding error is invalid params: {e:?}");
    }
});
