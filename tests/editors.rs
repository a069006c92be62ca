//! The editor integrations under `editors/` start a working agent exactly as written.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

fn zed_entry() -> (String, Vec<String>) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/editors/zed/settings.json");
    let settings: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let entry = &settings["agent_servers"]["Ratchet"];
    assert_eq!(entry["type"], "custom", "Zed needs type=custom for a local agent");
    let command = entry["command"].as_str().expect("command").to_string();
    let args = entry["args"].as_array().expect("args").iter().map(|a| a.as_str().unwrap().to_string()).collect();
    (command, args)
}

#[test]
fn the_zed_entry_starts_an_agent_that_answers_initialize() {
    let (command, args) = zed_entry();
    assert_eq!(command, "ratchet", "the snippet assumes ratchet on PATH");
    let home = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ratchet"))
        .args(&args)
        .env_clear()
        .env("RATCHET_HOME", home.path())
        .env("HOME", home.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, r#"{{"jsonrpc":"2.0","id":1,"method":"initialize","params":{{"protocolVersion":1,"clientInfo":{{"name":"zed","version":"0"}}}}}}"#).unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    drop(stdin);
    let reply: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(reply["id"], 1);
    assert_eq!(reply["result"]["protocolVersion"], 1);
    assert_eq!(reply["result"]["agentInfo"]["name"], "ratchet");
    assert!(child.wait().unwrap().success(), "the agent exits cleanly when the editor closes stdin");
}
