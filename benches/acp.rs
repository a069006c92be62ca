//! `cargo bench --bench acp`: start-up, idle memory and turn latency of `ratchet acp`.
//!
//! Spawns the real (release) binary, speaks ACP over its pipes, and prints a Markdown table
//! of medians. No timing is asserted: machines are noisy, so the numbers go into
//! BENCHMARKS.md and are compared as ratios between runs, not checked against limits.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

const RUNS: usize = 30;
const TURNS: usize = 200;

struct Agent {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
}

impl Agent {
    fn spawn(home: &std::path::Path) -> Agent {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ratchet"))
            .arg("acp")
            .env_clear()
            .env("RATCHET_HOME", home)
            .env("HOME", home)
            .env("RATCHET_PROVIDER", "scripted")
            .env("RATCHET_SCRIPT", home.join("script.json"))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn ratchet");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Agent { child, stdin, stdout, next_id: 0 }
    }

    /// Sends a request and reads lines until its response; returns (response, lines seen).
    fn call(&mut self, method: &str, params: serde_json::Value) -> (serde_json::Value, usize) {
        self.next_id += 1;
        let id = self.next_id;
        let msg = serde_json::json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        writeln!(self.stdin, "{msg}").unwrap();
        self.stdin.flush().unwrap();
        let mut seen = 0;
        loop {
            let mut line = String::new();
            assert!(self.stdout.read_line(&mut line).unwrap() > 0, "agent closed stdout");
            seen += 1;
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            if v.get("id").and_then(|i| i.as_u64()) == Some(id) && v.get("method").is_none() {
                assert!(v.get("error").is_none(), "{method} failed: {v}");
                return (v, seen);
            }
        }
    }

    fn rss_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn p90(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[(v.len() * 9) / 10]
}

fn main() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("script.json"), r#"{"turns":[{"text":"pong"}]}"#).unwrap();
    let init = serde_json::json!({"protocolVersion": 1, "clientCapabilities": {}});
    let cwd = home.path().to_str().unwrap().to_string();

    // 1. Spawn to initialize answer, fresh process each time.
    let mut startup = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        let mut a = Agent::spawn(home.path());
        a.call("initialize", init.clone());
        startup.push(t.elapsed());
    }

    // 2. Idle memory after initialize + session/new, and turn latency.
    let mut a = Agent::spawn(home.path());
    a.call("initialize", init.clone());
    let (new, _) = a.call("session/new", serde_json::json!({"cwd": cwd, "mcpServers": []}));
    let sid = new["result"]["sessionId"].as_str().unwrap().to_string();
    std::thread::sleep(Duration::from_millis(300));
    let idle_rss = a.rss_kib("VmRSS:");
    let mut turns = Vec::new();
    for _ in 0..TURNS {
        let t = Instant::now();
        let (resp, _) = a.call(
            "session/prompt",
            serde_json::json!({"sessionId": sid, "prompt": [{"type": "text", "text": "ping"}]}),
        );
        assert_eq!(resp["result"]["stopReason"], "end_turn");
        turns.push(t.elapsed());
    }
    let peak_rss = a.rss_kib("VmHWM:");

    // 3. session/load replay of those turns.
    let mut b = Agent::spawn(home.path());
    b.call("initialize", init);
    let t = Instant::now();
    let (_, lines) = b.call("session/load", serde_json::json!({"sessionId": sid, "cwd": cwd, "mcpServers": []}));
    let load = t.elapsed();

    #[allow(clippy::print_stdout)]
    {
        println!("| measure | median | p90 |");
        println!("|---|---|---|");
        println!(
            "| spawn → initialize answer ({RUNS} runs) | {:.2?} | {:.2?} |",
            median(startup.clone()),
            p90(startup)
        );
        println!(
            "| prompt turn, scripted provider ({TURNS} turns) | {:.2?} | {:.2?} |",
            median(turns.clone()),
            p90(turns)
        );
        println!("| session/load replaying {} lines | {:.2?} | – |", lines, load);
        println!();
        println!("| memory | KiB |");
        println!("|---|---|");
        println!("| idle RSS after initialize + session/new | {idle_rss} |");
        println!("| peak RSS (VmHWM) after {TURNS} turns | {peak_rss} |");
    }
}
