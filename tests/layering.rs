//! The layering rules of ARCHITECTURE.md, checked on the source: `acp` never names the
//! engine or the bridge, the engine never names ACP or the bridge, and library code never
//! prints (stdout is the protocol); front ends reach the engine only through its face, not
//! its store; sibling modules of the engine and the daemon server do not import each other
//! in a circle; every spawned task has an owner.

use std::collections::{BTreeMap, BTreeSet};
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
fn engine_knows_nothing_of_the_orchestra() {
    let bad = offenders("engine", &["crate::orchestra", "crate::daemon", "crate::cli"]);
    assert!(bad.is_empty(), "the engine is one agent; orchestration sits above it:\n{}", bad.join("\n"));
}

#[test]
fn the_orchestra_uses_only_the_engines_face() {
    let forbidden = [
        "crate::acp",
        "crate::bridge",
        "crate::daemon",
        "crate::cli",
        "agent_client_protocol",
        "engine::store",
        ".store()",
    ];
    let bad = offenders("orchestra", &forbidden);
    assert!(bad.is_empty(), "the orchestra reaches the engine only through EngineApi:\n{}", bad.join("\n"));
}

#[test]
fn library_code_never_prints_to_stdout() {
    for layer in ["acp", "engine", "bridge", "orchestra"] {
        let bad = offenders(layer, &["println!", "print!(", "dbg!("]);
        assert!(bad.is_empty(), "stdout is the protocol channel:\n{}", bad.join("\n"));
    }
}

/// Front ends' sources: the bridge, the CLI, the daemon's server and lifecycle.
fn front_end_files() -> Vec<PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    for dir in ["bridge", "cli", "daemon/server", "daemon/lifecycle"] {
        files.extend(rust_files(&src.join(dir)));
    }
    files.extend(["daemon/server.rs", "daemon/lifecycle.rs"].map(|f| src.join(f)));
    files
}

#[test]
fn front_ends_use_the_engines_face_not_its_store() {
    let mut bad = Vec::new();
    for file in front_end_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        // A file's unit tests (its trailing `#[cfg(test)]` module) may set up state directly.
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        for (n, line) in code.lines().enumerate() {
            let code = strip_strings(line);
            if code.split("//").next().unwrap_or("").contains(".store()") {
                bad.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(bad.is_empty(), "front ends go through EngineApi; the store is not part of it:\n{}", bad.join("\n"));
}

/// The words and punctuation of a file's code (strings and `//` comments left out).
fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let code = strip_strings(line);
        let code = code.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(c) = rest.chars().next() {
            let len = if c.is_alphanumeric() || c == '_' {
                rest.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(rest.len())
            } else if rest.starts_with("::") {
                2
            } else {
                c.len_utf8()
            };
            if !c.is_whitespace() {
                out.push(rest[..len].to_string());
            }
            rest = &rest[len..];
        }
    }
    out
}

/// Reads one path at `tokens[*i]`, with `{…}` groups expanded, onto `prefix`.
fn read_path(tokens: &[String], i: &mut usize, mut prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    let is_word = |t: &str| t.chars().all(|c| c.is_alphanumeric() || c == '_');
    while let Some(t) = tokens.get(*i) {
        if t == "{" {
            *i += 1;
            while tokens.get(*i).is_some_and(|t| t != "}") {
                read_path(tokens, i, prefix.clone(), out);
                if tokens.get(*i).is_some_and(|t| t == ",") {
                    *i += 1;
                } else {
                    break;
                }
            }
            *i += 1;
            return;
        }
        if !is_word(t) {
            break;
        }
        prefix.push(t.clone());
        *i += 1;
        if tokens.get(*i).is_none_or(|t| t != "::") {
            break;
        }
        *i += 1;
    }
    out.push(prefix);
}

/// The module paths a file names (`crate::…`, `super::…`, `self::…`), resolved from its own
/// module path `module`; a path may end in an item, not a module.
fn named_paths(module: &[String], text: &str) -> Vec<Vec<String>> {
    let tokens = tokens(text);
    let mut raw = Vec::new();
    for i in 0..tokens.len() {
        let starts = ["crate", "super", "self"].contains(&tokens[i].as_str());
        if starts && (i == 0 || tokens[i - 1] != "::") {
            let mut at = i;
            read_path(&tokens, &mut at, Vec::new(), &mut raw);
        }
    }
    raw.into_iter()
        .filter_map(|path| {
            let mut resolved = match path[0].as_str() {
                "crate" => Vec::new(),
                _ => module.to_vec(),
            };
            let mut rest = path.iter().skip(usize::from(path[0] != "super")).peekable();
            while rest.next_if(|s| *s == "super").is_some() {
                resolved.pop()?;
            }
            resolved.extend(rest.cloned());
            Some(resolved)
        })
        .collect()
}

/// Which sibling modules of `src/<dir>` each of them imports (a child's files count as
/// the child's). The parent (`mod.rs`, or `<dir>.rs`) is not a sibling.
fn sibling_imports(dir: &str) -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let parent: Vec<String> = dir.split('/').map(String::from).collect();
    let files = rust_files(&src.join(dir));
    let module_of = |file: &Path| -> Vec<String> {
        let rel = file.strip_prefix(&src).unwrap().with_extension("");
        let mut path: Vec<String> = rel.iter().map(|s| s.to_string_lossy().into_owned()).collect();
        if path.last().is_some_and(|s| s == "mod") {
            path.pop();
        }
        path
    };
    let siblings: BTreeSet<String> = files
        .iter()
        .map(|f| module_of(f))
        .filter(|m| m.len() > parent.len())
        .map(|m| m[parent.len()].clone())
        .collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let module = module_of(file);
        let Some(from) = module.get(parent.len()) else { continue };
        let edges = graph.entry(from.clone()).or_default();
        for path in named_paths(&module, &std::fs::read_to_string(file).unwrap()) {
            if path.starts_with(&parent)
                && let Some(to) = path.get(parent.len())
                && to != from
                && siblings.contains(to)
            {
                edges.insert(to.clone());
            }
        }
    }
    graph
}

/// One import cycle of `graph`, as the modules along it (the first repeated at the end).
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        done: &mut BTreeSet<String>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, done, stack) {
                return Some(cycle);
            }
        }
        stack.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|node| visit(node, graph, &mut done, &mut Vec::new()))
}

/// Cycles older than this check, each as the import that closes it (directory, from, to).
/// None left: keep it that way.
const KNOWN_CYCLE_EDGES: &[(&str, &str, &str)] = &[];

/// Modules that use each other cannot be understood, tested or split one at a time, and the
/// orchestration layer above the turn needs them to depend one way.
#[test]
fn sibling_modules_import_each_other_one_way_only() {
    for dir in ["engine", "daemon/server"] {
        let mut graph = sibling_imports(dir);
        assert!(graph.len() > 3, "src/{dir} has too few modules; is the parser broken? {graph:?}");
        for (_, from, to) in KNOWN_CYCLE_EDGES.iter().filter(|(d, ..)| *d == dir) {
            let known = graph.get_mut(*from).is_some_and(|edges| edges.remove(*to));
            assert!(known, "src/{dir}: {from} no longer imports {to}; drop it from KNOWN_CYCLE_EDGES");
        }
        if let Some(cycle) = find_cycle(&graph) {
            panic!(
                "src/{dir} has an import cycle: {}; move what both need into a module of its own",
                cycle.join(" → ")
            );
        }
    }
}

#[test]
fn the_cycle_finder_names_the_cycle() {
    let graph = |edges: &[(&str, &str)]| {
        let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (from, to) in edges {
            g.entry(from.to_string()).or_default().insert(to.to_string());
            g.entry(to.to_string()).or_default();
        }
        g
    };
    let one_way = graph(&[("turn", "tool_call"), ("turn", "compact"), ("tool_call", "compact")]);
    assert_eq!(find_cycle(&one_way), None);
    let circle = graph(&[("compact", "history"), ("turn", "tool_call"), ("tool_call", "compact"), ("compact", "turn")]);
    assert_eq!(find_cycle(&circle).unwrap(), ["compact", "turn", "tool_call", "compact"]);
}

#[test]
fn imports_are_read_from_use_lines_and_paths() {
    let module: Vec<String> = ["engine", "tool_call"].map(String::from).to_vec();
    let text = "use super::{Mode, turn::Turn, tools::{Host, Tool}};\n\
                use crate::engine::compact; // super::commented\n\
                let s = \"super::quoted\"; super::backstop::panic_message(p);\n\
                use super::super::daemon;";
    let found: Vec<String> = named_paths(&module, text).iter().map(|p| p.join("::")).collect();
    let expected = [
        "engine::Mode",
        "engine::turn::Turn",
        "engine::tools::Host",
        "engine::tools::Tool",
        "engine::compact",
        "engine::backstop::panic_message",
        "daemon",
    ];
    assert_eq!(found, expected);
}

/// Lines of production code in `src/` that start a task or thread and drop its handle: such
/// a task has no owner that can cancel it or wait for it at shutdown. Tasks go on a
/// `TaskTracker` or `JoinSet`, or their `JoinHandle` is kept (and awaited or aborted).
fn detached_spawns() -> Vec<String> {
    let mut out = Vec::new();
    for file in rust_files(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src"))) {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        if name == "tests.rs" || name.ends_with("_tests.rs") || name == "test_support.rs" || name == "testutil.rs" {
            continue;
        }
        if file.components().any(|c| c.as_os_str() == "tests") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for n in dropped_in(&text) {
            out.push(format!("{}:{n}: {}", file.display(), text.lines().nth(n - 1).unwrap_or("").trim()));
        }
    }
    out
}

/// The 1-based lines of `text` (production code: up to its `#[cfg(test)]`) where a spawn
/// starts a statement, dropping its handle.
fn dropped_in(text: &str) -> Vec<usize> {
    const SPAWNERS: [&str; 4] = ["tokio::spawn(", "tokio::task::spawn(", "std::thread::spawn(", "thread::spawn("];
    let mut out = Vec::new();
    // A spawn starts a statement when the code before it ended one.
    let mut statement_start = true;
    for (n, line) in text.lines().enumerate() {
        if line.starts_with("#[cfg(test)]") {
            break;
        }
        let code = strip_strings(line);
        let code = code.split("//").next().unwrap_or("").trim().to_string();
        if code.is_empty() {
            continue;
        }
        let dropped = SPAWNERS
            .iter()
            .any(|s| (statement_start && code.starts_with(s)) || code.starts_with(&format!("let _ = {s}")));
        if dropped {
            out.push(n + 1);
        }
        statement_start = code.ends_with(';') || code.ends_with('{') || code.ends_with('}');
    }
    out
}

#[test]
fn every_spawned_task_has_an_owner() {
    // The check itself: a dropped handle is found, a kept one is not.
    let probe = "fn f() {\n    tokio::spawn(async {});\n    let kept = [\n        tokio::spawn(async {}),\n    ];\n}";
    assert_eq!(dropped_in(probe), vec![2]);
    let found = detached_spawns();
    assert!(
        found.is_empty(),
        "tasks spawned without an owner (use a TaskTracker/JoinSet or keep the JoinHandle):\n{}",
        found.join("\n")
    );
}
