//! `cargo bench --bench latency`: the figures editors feel, each at three sizes.
//!
//! Spawns the release binary against a loopback mock of the OpenAI Chat Completions API (a
//! plain `std` HTTP/1.1 server with keep-alive, in this process, so its clock is the bench's)
//! and measures:
//! - spawn → `initialize` answered, and the first `session/new`, with 0 / 100 / 1,000 sessions
//!   already in the store;
//! - prompt → the first byte of the model request at the mock, and the mock's last byte →
//!   the prompt's answer, with 0 / 200 / 2,000 messages of history and project instructions
//!   (`AGENTS.md`, `.ratchet/instructions/*.md`) present;
//! - streaming: text chunks per second forwarded to the editor (one answer of 2,000 / 10,000 /
//!   50,000 chunks sent at once), and the latency each chunk adds (chunks sent one at a time,
//!   each only after the editor got the previous one);
//! - `session/load` of 100 / 1,000 / 10,000 stored messages;
//! - messages appended per second through the library's `SessionStore` (each append one
//!   committed transaction, as a turn does);
//! - VmRSS / RssAnon / RssFile of `ratchet acp` idle and after 200 turns.
//!
//! Nothing is asserted about timing: the numbers go into BENCHMARKS.md. `LATENCY_BENCH_RUNS`
//! scales the sample counts (default 1 = 30 start-ups, 50 prompts per size);
//! `LATENCY_BENCH_ONLY=startup,prompt,stream,load,memory` picks sections;
//! `RATCHET_BENCH_BIN` runs another build of `ratchet` (before/after comparisons).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ratchet::engine::content::ContentPart;
use ratchet::engine::store::{NewMessage, NewSession, SessionStore};

// ---------------------------------------------------------------------------------------
// The mock model.

/// How the mock answers the next request.
#[derive(Clone, Copy)]
enum Answer {
    /// `chunks` text deltas, the whole response written at once.
    Burst { chunks: usize },
    /// `chunks` text deltas, each sent only when the bench says so (chunked encoding).
    Paced { chunks: usize },
}

/// What the mock saw of one request.
#[derive(Clone, Copy)]
struct Exchange {
    /// When the first byte of the request arrived.
    first_byte: Instant,
    /// When the response's first byte was written.
    first_written: Instant,
    /// When its last byte was written.
    last_written: Instant,
}

struct Mock {
    url: String,
    answer: Arc<Mutex<Answer>>,
    exchanges: Arc<Mutex<Vec<Exchange>>>,
    /// For `Paced`: the mock sends a chunk for every unit, and reports its send time back.
    pace_tx: mpsc::Sender<()>,
    sent_rx: mpsc::Receiver<Instant>,
}

impl Mock {
    fn start() -> Mock {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v1", listener.local_addr().unwrap());
        let answer = Arc::new(Mutex::new(Answer::Burst { chunks: 3 }));
        let exchanges = Arc::new(Mutex::new(Vec::new()));
        let (pace_tx, pace_rx) = mpsc::channel::<()>();
        let (sent_tx, sent_rx) = mpsc::channel::<Instant>();
        let pace_rx = Arc::new(Mutex::new(pace_rx));
        let (a, e) = (answer.clone(), exchanges.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (a, e, p, s) = (a.clone(), e.clone(), pace_rx.clone(), sent_tx.clone());
                std::thread::spawn(move || serve(stream, &a, &e, &p, &s));
            }
        });
        Mock { url, answer, exchanges, pace_tx, sent_rx }
    }

    fn set(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
    }

    fn last(&self) -> Exchange {
        *self.exchanges.lock().unwrap().last().expect("the mock saw no request")
    }
}

fn delta(text: &str) -> String {
    format!("data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":{}}}}}]}}\n\n", serde_json::json!(text))
}

const FINISH: &str = "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n\
data: {\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":3}}\n\ndata: [DONE]\n\n";

/// One keep-alive connection: read a request (headers, then `Content-Length` bytes), answer.
fn serve(
    stream: TcpStream,
    answer: &Mutex<Answer>,
    exchanges: &Mutex<Vec<Exchange>>,
    pace: &Mutex<mpsc::Receiver<()>>,
    sent: &mpsc::Sender<Instant>,
) {
    stream.set_nodelay(true).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    loop {
        // Wait for the request's first byte, then time it.
        if reader.fill_buf().map(|b| b.is_empty()).unwrap_or(true) {
            return;
        }
        let first_byte = Instant::now();
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let lower = line.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let mode = *answer.lock().unwrap();
        let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n";
        let (first_written, last_written) = match mode {
            Answer::Burst { chunks } => {
                let mut body = String::new();
                for i in 0..chunks {
                    body.push_str(&delta(if i == 0 { "pong" } else { " x" }));
                }
                body.push_str(FINISH);
                let response = format!("{head}content-length: {}\r\n\r\n{body}", body.len());
                let first = Instant::now();
                if out.write_all(response.as_bytes()).is_err() {
                    return;
                }
                (first, Instant::now())
            }
            Answer::Paced { chunks } => {
                let first = Instant::now();
                let _ = out.write_all(format!("{head}transfer-encoding: chunked\r\n\r\n").as_bytes());
                let pace = pace.lock().unwrap();
                for _ in 0..chunks {
                    if pace.recv().is_err() {
                        return;
                    }
                    let event = delta(" x");
                    let _ = out.write_all(format!("{:x}\r\n{event}\r\n", event.len()).as_bytes());
                    let _ = sent.send(Instant::now());
                }
                let _ = out.write_all(format!("{:x}\r\n{FINISH}\r\n0\r\n\r\n", FINISH.len()).as_bytes());
                (first, Instant::now())
            }
        };
        exchanges.lock().unwrap().push(Exchange { first_byte, first_written, last_written });
    }
}

// ---------------------------------------------------------------------------------------
// The editor.

/// The binary under test: `RATCHET_BENCH_BIN` (to compare two builds with one bench), else
/// the one this bench was built with.
fn bin() -> PathBuf {
    std::env::var_os("RATCHET_BENCH_BIN").map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_ratchet")), PathBuf::from)
}

struct Agent {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
}

impl Agent {
    fn spawn(home: &Path, mock: &str) -> Agent {
        let mut child = Command::new(bin())
            .arg("acp")
            .env_clear()
            .env("RATCHET_HOME", home)
            .env("HOME", home)
            .env("RATCHET_PROVIDER", "openai")
            .env("OPENAI_BASE_URL", mock)
            .env("OPENAI_API_KEY", "sk-bench")
            .env("RATCHET_MODEL", "bench-model")
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

    fn send(&mut self, method: &str, params: serde_json::Value) -> u64 {
        self.next_id += 1;
        let msg = serde_json::json!({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params});
        writeln!(self.stdin, "{msg}").unwrap();
        self.stdin.flush().unwrap();
        self.next_id
    }

    /// The next line from the agent, parsed.
    fn line(&mut self) -> serde_json::Value {
        let mut line = String::new();
        assert!(self.stdout.read_line(&mut line).unwrap() > 0, "agent closed stdout");
        serde_json::from_str(&line).unwrap()
    }

    /// Reads lines until the answer to `id`; returns it and the lines before it.
    fn answer(&mut self, id: u64) -> (serde_json::Value, usize) {
        let mut seen = 0;
        loop {
            let v = self.line();
            if v.get("id").and_then(|i| i.as_u64()) == Some(id) && v.get("method").is_none() {
                assert!(v.get("error").is_none(), "request {id} failed: {v}");
                return (v, seen);
            }
            seen += 1;
        }
    }

    fn call(&mut self, method: &str, params: serde_json::Value) -> serde_json::Value {
        let id = self.send(method, params);
        self.answer(id).0
    }

    fn initialize(&mut self) {
        self.call("initialize", serde_json::json!({"protocolVersion": 1, "clientCapabilities": {}}));
    }

    fn new_session(&mut self, cwd: &Path) -> String {
        let v = self.call("session/new", serde_json::json!({"cwd": cwd, "mcpServers": []}));
        v["result"]["sessionId"].as_str().unwrap().to_string()
    }

    fn prompt(&mut self, session: &str) -> u64 {
        self.send(
            "session/prompt",
            serde_json::json!({"sessionId": session, "prompt": [{"type": "text", "text": "ping"}]}),
        )
    }

    fn status(&self) -> Memory {
        Memory::of(self.child.id())
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Clone, Copy)]
struct Memory {
    rss: u64,
    anon: u64,
    file: u64,
    hwm: u64,
}

impl Memory {
    fn of(pid: u32) -> Memory {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        Memory { rss: field("VmRSS:"), anon: field("RssAnon:"), file: field("RssFile:"), hwm: field("VmHWM:") }
    }

    fn row(&self, what: &str) {
        let mib = |k: u64| k as f64 / 1024.0;
        say(format!(
            "| {what} | {:.1} MiB | {:.1} MiB | {:.1} MiB | {:.1} MiB |",
            mib(self.rss),
            mib(self.anon),
            mib(self.file),
            mib(self.hwm)
        ));
    }
}

// ---------------------------------------------------------------------------------------
// Statistics and output.

fn sorted(mut v: Vec<Duration>) -> Vec<Duration> {
    v.sort();
    v
}

fn median(v: &[Duration]) -> Duration {
    sorted(v.to_vec())[v.len() / 2]
}

/// Nearest-rank p90.
fn p90(v: &[Duration]) -> Duration {
    let s = sorted(v.to_vec());
    s[((s.len() * 9).div_ceil(10)).saturating_sub(1)]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn row(what: &str, v: &[Duration]) {
    say(format!("| {what} ({} runs) | {} | {} |", v.len(), ms(median(v)), ms(p90(v))));
}

#[allow(clippy::print_stdout)]
fn say(line: String) {
    println!("{line}");
}

// ---------------------------------------------------------------------------------------
// Fixtures.

/// A data directory with `sessions` sessions, one of them (returned) with `messages`
/// messages (user and assistant alternating, a paragraph each), written through the
/// library's store. Also returns the appends per second it saw.
fn home_with(home: &Path, cwd: &Path, sessions: usize, messages: usize) -> (Option<String>, f64) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let store = SessionStore::open(&home.join("ratchet.db")).await.unwrap();
        let new = || NewSession {
            id: None,
            cwd: cwd.to_path_buf(),
            additional_dirs: vec![],
            provider: "openai".into(),
            model: "bench-model".into(),
            mode: ratchet::engine::Mode::Ask,
            parent_id: None,
            provider_pinned: false,
            agent: None,
        };
        for _ in 1..sessions {
            store.create_session(new()).await.unwrap();
        }
        if messages == 0 && sessions == 0 {
            return (None, 0.0);
        }
        let session = store.create_session(new()).await.unwrap().id;
        let paragraph = "The function reads the file, splits it into lines and counts the words in each. ".repeat(3);
        let started = Instant::now();
        for i in 0..messages {
            let content = vec![ContentPart::text(format!("{i}: {paragraph}"))];
            let message =
                if i % 2 == 0 { NewMessage::user(content) } else { NewMessage::assistant(content, vec![], None) };
            store.append_message(&session, message).await.unwrap();
        }
        let rate = messages as f64 / started.elapsed().as_secs_f64();
        (Some(session), rate)
    })
}

/// Project instructions like a real repository's: `AGENTS.md` and two rule files.
fn project(dir: &Path) -> PathBuf {
    let cwd = dir.join("project");
    std::fs::create_dir_all(cwd.join(".ratchet/instructions")).unwrap();
    let rules = "- Run `cargo test` before saying a change works.\n- Keep functions small.\n".repeat(40);
    std::fs::write(cwd.join("AGENTS.md"), format!("# Agents\n\n{rules}")).unwrap();
    std::fs::write(cwd.join(".ratchet/instructions/style.md"), &rules).unwrap();
    std::fs::write(cwd.join(".ratchet/instructions/tests.md"), &rules).unwrap();
    cwd
}

fn runs() -> usize {
    std::env::var("LATENCY_BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(1).max(1)
}

// ---------------------------------------------------------------------------------------
// The measurements.

fn startup(mock: &Mock, scale: usize) {
    say("| spawn → `initialize` / first `session/new` | median | p90 |".into());
    say("|---|---|---|".into());
    for sessions in [0, 100, 1000] {
        let dir = tempfile::tempdir().unwrap();
        let cwd = project(dir.path());
        if sessions > 0 {
            home_with(dir.path(), &cwd, sessions, 0);
        } else {
            // Migrated once, as on every start after an editor's first.
            let mut a = Agent::spawn(dir.path(), &mock.url);
            a.initialize();
            a.new_session(&cwd);
        }
        let (mut init, mut new) = (Vec::new(), Vec::new());
        for _ in 0..30 * scale {
            let t = Instant::now();
            let mut a = Agent::spawn(dir.path(), &mock.url);
            a.initialize();
            init.push(t.elapsed());
            let t = Instant::now();
            a.new_session(&cwd);
            new.push(t.elapsed());
        }
        row(&format!("spawn → `initialize` answered, {sessions} sessions stored"), &init);
        row(&format!("first `session/new` answered, {sessions} sessions stored"), &new);
    }
    // The very first start on an empty data directory (creates and migrates the store).
    let (mut init, mut new) = (Vec::new(), Vec::new());
    for _ in 0..10 * scale {
        let dir = tempfile::tempdir().unwrap();
        let t = Instant::now();
        let mut a = Agent::spawn(dir.path(), &mock.url);
        a.initialize();
        init.push(t.elapsed());
        let t = Instant::now();
        a.new_session(dir.path());
        new.push(t.elapsed());
    }
    row("spawn → `initialize` answered, empty data directory", &init);
    row("first `session/new` answered, empty data directory", &new);
    say(String::new());
}

fn prompts(mock: &Mock, scale: usize) {
    say("| prompt latency, OpenAI-compatible mock on loopback | median | p90 |".into());
    say("|---|---|---|".into());
    for history in [0, 200, 2000] {
        let dir = tempfile::tempdir().unwrap();
        let cwd = project(dir.path());
        let (session, _) = home_with(dir.path(), &cwd, 1, history);
        let session = session.unwrap();
        let mut a = Agent::spawn(dir.path(), &mock.url);
        a.initialize();
        a.call("session/load", serde_json::json!({"sessionId": session, "cwd": cwd, "mcpServers": []}));
        mock.set(Answer::Burst { chunks: 3 });
        // Warm-up: the provider is resolved and the connection opened on the first turn.
        for _ in 0..3 {
            let id = a.prompt(&session);
            a.answer(id);
        }
        let (mut to_model, mut to_answer) = (Vec::new(), Vec::new());
        for _ in 0..50 * scale {
            let sent = Instant::now();
            let id = a.prompt(&session);
            a.answer(id);
            let answered = Instant::now();
            let seen = mock.last();
            to_model.push(seen.first_byte - sent);
            to_answer.push(answered - seen.last_written);
        }
        let size = format!("{}–{} messages of history", history + 6, history + 6 + 100 * scale);
        row(&format!("prompt → first byte at the model, {size}"), &to_model);
        row(&format!("model's last byte → prompt answered, {size}"), &to_answer);
    }
    say(String::new());
}

fn streaming(mock: &Mock, scale: usize) {
    say("| streaming | value |".into());
    say("|---|---|".into());
    let dir = tempfile::tempdir().unwrap();
    let cwd = project(dir.path());
    let mut a = Agent::spawn(dir.path(), &mock.url);
    a.initialize();
    let session = a.new_session(&cwd);
    for chunks in [2_000, 10_000, 50_000] {
        mock.set(Answer::Burst { chunks });
        let id = a.prompt(&session);
        let (_, lines) = a.answer(id);
        let answered = Instant::now();
        let seen = mock.last();
        let took = answered - seen.first_written;
        say(format!(
            "| {chunks} chunks sent at once: chunks per second forwarded ({lines} lines) | {:.0} /s ({}) |",
            chunks as f64 / took.as_secs_f64(),
            ms(took)
        ));
    }
    let paced = 200 * scale;
    mock.set(Answer::Paced { chunks: paced });
    let id = a.prompt(&session);
    let mut latency = Vec::new();
    for _ in 0..paced {
        mock.pace_tx.send(()).unwrap();
        let sent = mock.sent_rx.recv().unwrap();
        loop {
            let v = a.line();
            if v["params"]["update"]["sessionUpdate"] == "agent_message_chunk" {
                latency.push(sent.elapsed());
                break;
            }
        }
    }
    a.answer(id);
    say(format!(
        "| latency per chunk, mock's write → editor's read ({paced} chunks one at a time) | median {}, p90 {} |",
        ms(median(&latency)),
        ms(p90(&latency))
    ));
    // For scale: the same round trip with no ratchet in between is the pipe and the mock.
    say(String::new());
}

fn loads(mock: &Mock) {
    say("| `session/load` and the store | value |".into());
    say("|---|---|".into());
    for messages in [100, 1_000, 10_000] {
        let dir = tempfile::tempdir().unwrap();
        let cwd = project(dir.path());
        let (session, rate) = home_with(dir.path(), &cwd, 1, messages);
        let session = session.unwrap();
        let mut times = Vec::new();
        let mut lines = 0;
        for _ in 0..5 {
            let mut a = Agent::spawn(dir.path(), &mock.url);
            a.initialize();
            let t = Instant::now();
            let id = a.send("session/load", serde_json::json!({"sessionId": session, "cwd": cwd, "mcpServers": []}));
            lines = a.answer(id).1;
            times.push(t.elapsed());
        }
        say(format!(
            "| `session/load` of {messages} messages ({lines} updates), median of 5 | {} |",
            ms(median(&times))
        ));
        say(format!(
            "| messages appended per second, one committed transaction each, {messages} in a row | {rate:.0} /s |"
        ));
    }
    say(String::new());
}

fn memory(mock: &Mock) {
    say("| `ratchet acp` memory | VmRSS | RssAnon | RssFile | VmHWM |".into());
    say("|---|---|---|---|---|".into());
    let dir = tempfile::tempdir().unwrap();
    let cwd = project(dir.path());
    let mut a = Agent::spawn(dir.path(), &mock.url);
    a.initialize();
    std::thread::sleep(Duration::from_millis(300));
    a.status().row("after `initialize`");
    let session = a.new_session(&cwd);
    std::thread::sleep(Duration::from_millis(300));
    a.status().row("idle after `session/new`");
    mock.set(Answer::Burst { chunks: 3 });
    for _ in 0..200 {
        let id = a.prompt(&session);
        a.answer(id);
    }
    std::thread::sleep(Duration::from_millis(300));
    a.status().row("after 200 turns");
    say(String::new());
}

fn main() {
    let scale = runs();
    let mock = Mock::start();
    let only = std::env::var("LATENCY_BENCH_ONLY").unwrap_or_default();
    let want = |name: &str| only.is_empty() || only.split(',').any(|o| o == name);
    if want("startup") {
        startup(&mock, scale);
    }
    if want("prompt") {
        prompts(&mock, scale);
    }
    if want("stream") {
        streaming(&mock, scale);
    }
    if want("load") {
        loads(&mock);
    }
    if want("memory") {
        memory(&mock);
    }
}
