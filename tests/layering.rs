//! The layering rules of ARCHITECTURE.md, checked on the source: `acp` never names the
//! engine or the bridge, the engine never names ACP or the bridge, and library code never
//! prints (stdout is the protocol).

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// The line without the contents of its string literals (so test data does not count).
fn strip_strings(line: &str) -> String {
    let mut out = String::new();
    let mut in_str = false;
    let mut escaped = false;
    for c in line.chars() {
        match (in_str, escaped, c) {
            (true, true, _) => escaped = false,
            (true, false, '\\') => escaped = true,
            (true, false, '"') => in_str = false,
            (true, false, _) => {}
            (false, _, '"') => {
                in_str = true;
                out.push_str("\"\"");
            }
            (false, _, c) => out.push(c),
        }
    }
    out
}

fn offenders(layer: &str, forbidden: &[&str]) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(layer);
    let files = rust_files(&root);
    assert!(!files.is_empty(), "no sources under {}", root.display());
    let mut bad = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = strip_strings(line);
            let code = code.split("//").next().unwrap_or("");
            for f in forbidden {
                if code.contains(f) {
                    bad.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
                }
            }
        }
    }
    bad
}

#[test]
fn acp_knows_nothing_of_the_engine_or_the_bridge() {
    let bad = offenders("acp", &["crate::engine", "crate::bridge", "super::engine", "super::bridge"]);
    assert!(bad.is_empty(), "acp must stay protocol-only:\n{}", bad.join("\n"));
}

#[test]
fn engine_knows_nothing_of_acp_or_the_bridge() {
    let bad = offenders("engine", &["crate::acp", "crate::bridge", "agent_client_protocol"]);
    assert!(bad.is_empty(), "engine must stay ACP-free:\n{}", bad.join("\n"));
}

#[test]
fn library_code_never_prints_to_stdout() {
    for layer in ["acp", "engine", "bridge"] {
        let bad = offenders(layer, &["println!", "print!(", "dbg!("]);
        assert!(bad.is_empty(), "stdout is the protocol channel:\n{}", bad.join("\n"));
    }
}
