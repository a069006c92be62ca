//! The editor integrations under `editors/` start a working agent exactly as written.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The registry's platform ids the release archives are built for.
const REGISTRY_PLATFORMS: [&str; 4] = ["darwin-aarch64", "darwin-x86_64", "linux-aarch64", "linux-x86_64"];

fn editors_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("editors").join(relative)
}

fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

fn strings(value: &serde_json::Value, what: &str) -> Vec<String> {
    let items = value.as_array().unwrap_or_else(|| panic!("{what} is not an array"));
    items.iter().map(|a| a.as_str().unwrap_or_else(|| panic!("{what} holds a non-string")).to_string()).collect()
}

fn zed_entry() -> (String, Vec<String>) {
    let settings = read_json(&editors_file("zed/settings.json"));
    let entry = &settings["agent_servers"]["Ratchet"];
    assert_eq!(entry["type"], "custom", "Zed needs type=custom for a local agent");
    let command = entry["command"].as_str().expect("command").to_string();
    (command, strings(&entry["args"], "args"))
}

/// Starts `program args` the way an editor does (empty environment, fresh home), sends
/// `initialize`, and checks ratchet answers it and exits cleanly when stdin closes.
fn assert_answers_initialize(program: &Path, args: &[String]) {
    let home = tempfile::tempdir().unwrap();
    let mut child = Command::new(program)
        .args(args)
        .env_clear()
        .env("RATCHET_HOME", home.path())
        .env("HOME", home.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", program.display()));
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

#[test]
fn the_zed_entry_starts_an_agent_that_answers_initialize() {
    let (command, args) = zed_entry();
    assert_eq!(command, "ratchet", "the snippet assumes ratchet on PATH");
    assert_answers_initialize(Path::new(env!("CARGO_BIN_EXE_ratchet")), &args);
}

fn registry_entry() -> serde_json::Value {
    read_json(&editors_file("zed/agent.json"))
}

#[test]
fn the_committed_registry_entry_is_what_the_script_generates() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/gen-zed-registry");
    let output = Command::new(&script).output().unwrap_or_else(|e| panic!("run {}: {e}", script.display()));
    assert!(output.status.success(), "{} failed: {}", script.display(), String::from_utf8_lossy(&output.stderr));
    let committed = std::fs::read_to_string(editors_file("zed/agent.json")).unwrap();
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        committed,
        "editors/zed/agent.json is stale: run scripts/gen-zed-registry --write and commit it"
    );
}

#[test]
fn the_registry_entry_has_every_required_field_for_this_version() {
    let entry = registry_entry();
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(entry["version"], version, "the entry must name the crate's version");
    assert_eq!(entry["id"], "ratchet");
    for field in ["name", "description"] {
        assert!(entry[field].as_str().is_some_and(|s| !s.is_empty()), "{field} must be a non-empty string");
    }
    let binary = entry["distribution"]["binary"].as_object().expect("distribution.binary");
    let mut platforms: Vec<&str> = binary.keys().map(String::as_str).collect();
    platforms.sort_unstable();
    assert_eq!(platforms, REGISTRY_PLATFORMS, "one binary per supported platform");
    let release = format!("/releases/download/v{version}/");
    for (platform, target) in binary {
        let archive = target["archive"].as_str().unwrap_or_else(|| panic!("{platform}: archive"));
        assert!(archive.starts_with("https://github.com/"), "{platform}: {archive} is not a GitHub URL");
        assert!(archive.contains(&release), "{platform}: {archive} is not the v{version} release");
        assert!(archive.ends_with(".tar.gz"), "{platform}: {archive} is not a format the registry accepts");
        assert!(target["cmd"].as_str().is_some_and(|c| !c.is_empty()), "{platform}: cmd");
        assert!(!strings(&target["args"], "args").is_empty(), "{platform}: args");
    }
}

/// Each platform's `cmd` is relative to the directory the registry's client extracted the
/// archive into, which holds the `ratchet` binary: put the built binary there and run it.
#[test]
fn every_registry_platform_starts_an_agent_that_answers_initialize() {
    let entry = registry_entry();
    for (platform, target) in entry["distribution"]["binary"].as_object().expect("distribution.binary") {
        let extracted = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_ratchet"), extracted.path().join("ratchet")).unwrap();
        let cmd = target["cmd"].as_str().unwrap_or_else(|| panic!("{platform}: cmd"));
        assert_answers_initialize(&extracted.path().join(cmd), &strings(&target["args"], "args"));
    }
}
