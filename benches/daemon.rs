//! `cargo bench --bench daemon`: what the daemon costs and saves, next to stand-alone `ratchet acp`.
//!
//! Starts a real (release) daemon with `ratchet daemon start -b` in a temporary `RATCHET_HOME`
//! (cleared environment, offline `scripted` provider) and measures:
//!
//! 1. control-API round trips over the Unix socket (`daemon.health`, `session.get`,
//!    `session.list` with a page of 10, and a whole `Client::connect`), sequential calls;
//! 2. `ratchet acp` spawn → `initialize` answer and the first `session/new` answer, using the
//!    running daemon (no flag) vs `--standalone`, runs interleaved so machine noise hits both
//!    alike; plus the default mode with no daemon running (the fallback `benches/acp.rs` measures);
//! 3. the daemon's VmRSS/VmHWM (`/proc/<pid>/status`) fresh, before and after opening 1,000
//!    idle sessions through the control API, and the control API's latency with them open;
//! 4. a prompt turn through the daemon vs stand-alone (one agent each, turns alternating),
//!    `session/prompt` request → answer, and each agent process's own RSS.
//!
//! Prints Markdown tables of medians and p90s (nearest rank). No timing is asserted: machines
//! are noisy, so the numbers go into BENCHMARKS.md and are compared as ratios, not limits.
//! The daemon is stopped at the end (`daemon.shutdown`); a panic kills it instead.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use ratchet::daemon::client::Client;
use ratchet::daemon::lifecycle::lock::pid_alive;
use ratchet::engine::{EngineApi, ListQuery};

/// Sequential control-API calls per method.
const CALLS: usize = 2000;
/// Whole `Client::connect`s (socket, WebSocket handshake, health check).
const CONNECTS: usize = 200;
/// Agent spawns per mode.
const RUNS: usize = 30;
/// Prompt turns per mode.
const TURNS: usize = 200;
/// Idle sessions opened in the daemon for the memory figure.
const SESSIONS: usize = 1000;
/// Upper bound for any one wait.
const TIMEOUT: Duration = Duration::from_secs(30);

/// The binary under test: `RATCHET_BENCH_BIN` (to compare two builds with one bench), else
/// the one this bench was built with.
fn bin() -> PathBuf {
    std::env::var_os("RATCHET_BENCH_BIN").map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_ratchet")), PathBuf::from)
}

/// A temporary data directory (under /tmp: socket paths must stay short) and the environment
/// to run `ratchet` in.
struct Home {
    root: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        let root = tempfile::Builder::new().prefix("rdb-").tempdir_in("/tmp").expect("temp dir");
        for sub in ["home", "rh", "ws"] {
            std::fs::create_dir_all(root.path().join(sub)).unwrap();
        }
        std::fs::write(root.path().join("script.json"), r#"{"turns":[{"text":"pong"}]}"#).unwrap();
        Home { root }
    }

    fn rh(&self) -> PathBuf {
        self.root.path().join("rh")
    }

    fn ws(&self) -> PathBuf {
        self.root.path().join("ws")
    }

    fn socket(&self) -> PathBuf {
        self.rh().join("daemon.sock")
    }

    fn pid_file(&self) -> PathBuf {
        self.rh().join("daemon.pid")
    }

    /// `ratchet <args>` in a cleared environment; the daemon inherits it from `daemon start -b`.
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()))
            .env("HOME", self.root.path().join("home"))
            .env("RATCHET_HOME", self.rh())
            .env("RATCHET_PROVIDER", "scripted")
            .env("RATCHET_SCRIPT", self.root.path().join("script.json"))
            .env("RUST_LOG", "warn")
            .env("NO_COLOR", "1")
            .current_dir(self.ws());
        c
    }

    /// Runs `ratchet <args>` to completion and expects success.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.command(args).stdin(Stdio::null()).output().expect("run ratchet");
        assert!(
            out.status.success(),
            "`ratchet {}` failed: {}\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn daemon_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.pid_file()).ok()?.trim().parse().ok()
    }
}

impl Drop for Home {
    /// A daemon still running here (the bench panicked) is killed.
    fn drop(&mut self) {
        if let Some(pid) = self.daemon_pid().filter(|p| pid_alive(*p)) {
            // SAFETY: signals the daemon this bench started.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        }
    }
}

/// A `ratchet acp` process spoken to over its pipes.
struct Agent {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
}

impl Agent {
    fn spawn(home: &Home, flags: &[&str]) -> Agent {
        let mut args = vec!["acp"];
        args.extend_from_slice(flags);
        let mut child = home
            .command(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn ratchet acp");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Agent { child, stdin, stdout, next_id: 0 }
    }

    /// Sends a request and reads lines until its response; returns (response, lines seen).
    fn call(&mut self, method: &str, params: serde_json::Value) -> (serde_json::Value, usize) {
        self.next_id += 1;
        let id = self.next_id;
        let msg = serde_json::json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{msg}").unwrap();
        stdin.flush().unwrap();
        let mut seen = 0;
        loop {
            let mut line = String::new();
            assert!(self.stdout.read_line(&mut line).unwrap() > 0, "agent closed stdout during {method}");
            seen += 1;
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            if v.get("id").and_then(|i| i.as_u64()) == Some(id) && v.get("method").is_none() {
                assert!(v.get("error").is_none(), "{method} failed: {v}");
                return (v, seen);
            }
        }
    }

    fn new_session(&mut self, cwd: &Path) -> String {
        let (new, _) = self.call("session/new", serde_json::json!({"cwd": cwd, "mcpServers": []}));
        new["result"]["sessionId"].as_str().unwrap().to_string()
    }

    fn prompt(&mut self, sid: &str) -> usize {
        let (resp, lines) = self.call(
            "session/prompt",
            serde_json::json!({"sessionId": sid, "prompt": [{"type": "text", "text": "ping"}]}),
        );
        assert_eq!(resp["result"]["stopReason"], "end_turn");
        lines
    }

    /// Hangs up as an editor does (closes stdin) and waits for the exit; kills after [`TIMEOUT`].
    fn finish(mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + TIMEOUT;
        while Instant::now() < deadline {
            if self.child.try_wait().unwrap().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        eprintln!("warning: ratchet acp (pid {}) did not exit after its stdin closed", self.child.id());
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A field of `/proc/<pid>/status` in KiB (0 if unreadable).
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// A process's memory, KiB, from `/proc/<pid>/status`.
#[derive(Clone, Copy)]
struct Mem {
    rss: u64,
    hwm: u64,
    /// Private anonymous pages (heap, stacks): what this process alone costs.
    anon: u64,
    /// File-backed pages, mostly the binary's text: shared by every ratchet process.
    file: u64,
}

fn mem(pid: u32) -> Mem {
    Mem {
        rss: status_kib(pid, "VmRSS:"),
        hwm: status_kib(pid, "VmHWM:"),
        anon: status_kib(pid, "RssAnon:"),
        file: status_kib(pid, "RssFile:"),
    }
}

/// A row `| what | VmRSS | RssAnon | RssFile | VmHWM |`.
fn mem_row(what: &str, m: Mem) -> String {
    format!("| {what} | {} | {} | {} | {} |", mib(m.rss), mib(m.anon), mib(m.file), mib(m.hwm))
}

/// Starts a daemon on `home`; returns its client, pid and how long `daemon start -b` took.
fn start_daemon(rt: &tokio::runtime::Runtime, home: &Home) -> (Client, u32, Duration) {
    let t = Instant::now();
    home.ok(&["daemon", "start", "-b"]);
    let took = t.elapsed();
    let client = rt.block_on(Client::connect(&home.socket())).expect("connect to the daemon");
    let pid = rt.block_on(client.health()).unwrap().pid;
    assert_eq!(Some(pid), home.daemon_pid());
    (client, pid, took)
}

/// Stops the daemon through `daemon.shutdown`; true once its process, socket and pid file are gone.
fn stop_daemon(rt: &tokio::runtime::Runtime, home: &Home, client: Client, pid: u32) -> bool {
    rt.block_on(client.shutdown()).unwrap();
    drop(client);
    let gone = || !pid_alive(pid) && !home.socket().exists() && !home.pid_file().exists();
    let deadline = Instant::now() + TIMEOUT;
    while !gone() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(gone(), "the daemon (pid {pid}) did not stop cleanly within {TIMEOUT:?}");
    true
}

/// Nearest-rank percentile `p` (0..=100) of sorted samples.
fn pct(sorted: &[Duration], p: usize) -> Duration {
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted[rank - 1]
}

/// (median, p90) of `v`.
fn stats(v: &[Duration]) -> (Duration, Duration) {
    let mut v = v.to_vec();
    v.sort();
    (pct(&v, 50), pct(&v, 90))
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64()
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// A row `| what | median | p90 |`.
fn row(what: &str, v: &[Duration]) -> String {
    let (m, p) = stats(v);
    format!("| {what} | {m:.2?} | {p:.2?} |")
}

/// Control-API round trips: health, session.get, session.list (page of 10), `CALLS` each.
async fn control_latency(client: &Client, session: &str) -> [Vec<Duration>; 3] {
    let engine = client.clone().into_engine();
    let query = || ListQuery { cwd: None, cursor: None, limit: 10, top_level: false };
    // Warm-up: connection buffers, allocator, SQLite page cache.
    for _ in 0..100 {
        client.health().await.unwrap();
        engine.session(session.to_string()).await.unwrap();
        engine.list_sessions(query()).await.unwrap();
    }
    let mut health = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let t = Instant::now();
        client.health().await.unwrap();
        health.push(t.elapsed());
    }
    let mut get = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let t = Instant::now();
        engine.session(session.to_string()).await.unwrap();
        get.push(t.elapsed());
    }
    let mut list = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let t = Instant::now();
        let page = engine.list_sessions(query()).await.unwrap();
        list.push(t.elapsed());
        assert!(!page.sessions.is_empty());
    }
    [health, get, list]
}

/// Spawn → initialize answer, then session/new → answer, for one agent.
fn startup(home: &Home, flags: &[&str]) -> (Duration, Duration) {
    let init = serde_json::json!({"protocolVersion": 1, "clientCapabilities": {}});
    let t = Instant::now();
    let mut a = Agent::spawn(home, flags);
    a.call("initialize", init);
    let to_init = t.elapsed();
    let t = Instant::now();
    a.new_session(&home.ws());
    let to_new = t.elapsed();
    a.finish();
    (to_init, to_new)
}

/// `DAEMON_BENCH_ONLY=memory`: only the daemon's memory as idle sessions grow (1, 10, 100,
/// 1,000), on a fresh daemon; a short run for before/after comparisons.
#[allow(clippy::print_stdout)]
fn memory_growth(rt: &tokio::runtime::Runtime) {
    let home = Home::new();
    let (client, pid, _) = start_daemon(rt, &home);
    let engine = client.clone().into_engine();
    std::thread::sleep(Duration::from_millis(300));
    println!("| daemon memory | VmRSS | RssAnon | RssFile | VmHWM |");
    println!("|---|---|---|---|---|");
    println!("{}", mem_row("fresh", mem(pid)));
    let mut made = 0;
    for size in [1, 10, 100, SESSIONS] {
        rt.block_on(async {
            while made < size {
                engine.create_session(home.ws(), Vec::new(), Vec::new()).await.unwrap();
                made += 1;
            }
        });
        std::thread::sleep(Duration::from_millis(300));
        println!("{}", mem_row(&format!("{size} idle sessions"), mem(pid)));
    }
    drop(engine);
    stop_daemon(rt, &home, client, pid);
}

#[allow(clippy::print_stdout)]
fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    if std::env::var("DAEMON_BENCH_ONLY").is_ok_and(|v| v == "memory") {
        memory_growth(&rt);
        return;
    }
    let init = serde_json::json!({"protocolVersion": 1, "clientCapabilities": {}});

    // 3. Memory, on a daemon of its own that does nothing else: fresh, after one session
    //    (first use of the store and the provider), after SESSIONS.
    //    Then each of those sessions is watched once, as `ratchet acp` does on `session/new`
    //    (`session.subscribe`), and the watcher leaves again.
    let (mem_fresh, mem_one, mem_full, mem_watched, creates, mem_stopped) = {
        let home = Home::new();
        let (client, pid, _) = start_daemon(&rt, &home);
        let engine = client.clone().into_engine();
        std::thread::sleep(Duration::from_millis(300));
        let fresh = mem(pid);
        rt.block_on(engine.create_session(home.ws(), Vec::new(), Vec::new())).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let one = mem(pid);
        let creates: Vec<Duration> = rt.block_on(async {
            let mut v = Vec::with_capacity(SESSIONS - 1);
            for _ in 1..SESSIONS {
                let t = Instant::now();
                engine.create_session(home.ws(), Vec::new(), Vec::new()).await.unwrap();
                v.push(t.elapsed());
            }
            v
        });
        std::thread::sleep(Duration::from_millis(500));
        let full = mem(pid);
        assert_eq!(rt.block_on(client.health()).unwrap().sessions, SESSIONS as u64);
        rt.block_on(async {
            let page = engine
                .list_sessions(ListQuery { cwd: None, cursor: None, limit: SESSIONS, top_level: false })
                .await
                .unwrap();
            assert_eq!(page.sessions.len(), SESSIONS);
            for s in page.sessions {
                // Dropping the receiver ends the subscription (the editor went away).
                drop(engine.subscribe(s.id).await.unwrap());
            }
        });
        std::thread::sleep(Duration::from_millis(500));
        let watched = mem(pid);
        drop(engine);
        let stopped = stop_daemon(&rt, &home, client, pid);
        (fresh, one, full, watched, creates, stopped)
    };

    // The daemon for everything else.
    let home = Home::new();
    let (client, pid, daemon_start) = start_daemon(&rt, &home);
    let engine = client.clone().into_engine();

    // 1. Control-API round trips.
    let probe = rt.block_on(engine.create_session(home.ws(), Vec::new(), Vec::new())).unwrap();
    let [health_rt, get_rt, list_rt] = rt.block_on(control_latency(&client, &probe.id));
    let connects: Vec<Duration> = rt.block_on(async {
        let mut v = Vec::with_capacity(CONNECTS);
        for _ in 0..CONNECTS {
            let t = Instant::now();
            let c = Client::connect(&home.socket()).await.unwrap();
            v.push(t.elapsed());
            drop(c);
        }
        v
    });

    std::thread::sleep(Duration::from_millis(300));
    let daemon_after_calls = mem(pid);

    // 2. Start-up: daemon mode vs stand-alone, interleaved, two unmeasured warm-ups each.
    for _ in 0..2 {
        startup(&home, &[]);
        startup(&home, &["--standalone"]);
    }
    let (mut d_init, mut d_new, mut s_init, mut s_new) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let (i, n) = startup(&home, &[]);
        d_init.push(i);
        d_new.push(n);
        let (i, n) = startup(&home, &["--standalone"]);
        s_init.push(i);
        s_new.push(n);
    }
    // The default mode with no daemon on its RATCHET_HOME: probes the socket, then runs here.
    let bare = Home::new();
    startup(&bare, &[]);
    let (mut f_init, mut f_new) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let (i, n) = startup(&bare, &[]);
        f_init.push(i);
        f_new.push(n);
    }
    drop(bare);

    std::thread::sleep(Duration::from_millis(300));
    let daemon_after_startups = mem(pid);

    // 4. Prompt turns: one agent per mode, turns alternating between them.
    let mut da = Agent::spawn(&home, &[]);
    let mut sa = Agent::spawn(&home, &["--standalone"]);
    da.call("initialize", init.clone());
    sa.call("initialize", init.clone());
    let d_sid = da.new_session(&home.ws());
    let s_sid = sa.new_session(&home.ws());
    std::thread::sleep(Duration::from_millis(300));
    let d_agent_idle = mem(da.child.id());
    let s_agent_idle = mem(sa.child.id());
    for _ in 0..5 {
        da.prompt(&d_sid);
        sa.prompt(&s_sid);
    }
    let (mut d_turn, mut s_turn) = (Vec::with_capacity(TURNS), Vec::with_capacity(TURNS));
    let (mut d_lines, mut s_lines) = (0, 0);
    for _ in 0..TURNS {
        let t = Instant::now();
        d_lines = da.prompt(&d_sid);
        d_turn.push(t.elapsed());
        let t = Instant::now();
        s_lines = sa.prompt(&s_sid);
        s_turn.push(t.elapsed());
    }
    let d_agent_busy = mem(da.child.id());
    let s_agent_busy = mem(sa.child.id());
    da.finish();
    sa.finish();
    std::thread::sleep(Duration::from_millis(300));
    let daemon_used = mem(pid);

    // The control API again with SESSIONS more sessions open and in the store.
    rt.block_on(async {
        for _ in 0..SESSIONS {
            engine.create_session(home.ws(), Vec::new(), Vec::new()).await.unwrap();
        }
    });
    let [health_rt2, get_rt2, list_rt2] = rt.block_on(control_latency(&client, &probe.id));
    let in_store = rt.block_on(client.health()).unwrap().sessions;
    drop(engine);
    let stopped = stop_daemon(&rt, &home, client, pid) && mem_stopped;

    // Report.
    let (dm, _) = stats(&d_init);
    let (sm, _) = stats(&s_init);
    let (fm, _) = stats(&f_init);
    let (dn, _) = stats(&d_new);
    let (sn, _) = stats(&s_new);
    let (dt, _) = stats(&d_turn);
    let (st, _) = stats(&s_turn);
    let per_session = |a: u64, b: u64| b.saturating_sub(a) as f64 / (SESSIONS - 1) as f64;
    println!("`ratchet daemon start -b` until the daemon answered: {daemon_start:.2?}");
    println!();
    println!("| control API round trip | median | p90 |");
    println!("|---|---|---|");
    println!("{}", row(&format!("`daemon.health` ({CALLS} calls)"), &health_rt));
    println!("{}", row(&format!("`session.get` ({CALLS} calls)"), &get_rt));
    println!("{}", row(&format!("`session.list`, page of 10 ({CALLS} calls)"), &list_rt));
    println!("{}", row(&format!("`Client::connect`: socket, handshake, health ({CONNECTS} runs)"), &connects));
    println!("{}", row(&format!("`session.create` ({} calls, fresh daemon)", SESSIONS - 1), &creates));
    println!("{}", row(&format!("`daemon.health`, {in_store} sessions in the store"), &health_rt2));
    println!("{}", row(&format!("`session.get`, {in_store} sessions in the store"), &get_rt2));
    println!("{}", row(&format!("`session.list`, page of 10, {in_store} sessions in the store"), &list_rt2));
    println!();
    println!("| `ratchet acp` ({RUNS} runs each) | median | p90 |");
    println!("|---|---|---|");
    println!("{}", row("spawn → `initialize`, daemon running (default)", &d_init));
    println!("{}", row("spawn → `initialize`, `--standalone`", &s_init));
    println!("{}", row("spawn → `initialize`, no daemon (default, falls back)", &f_init));
    println!("{}", row("first `session/new`, daemon", &d_new));
    println!("{}", row("first `session/new`, `--standalone`", &s_new));
    println!("{}", row("first `session/new`, no daemon (fallback)", &f_new));
    println!("{}", row(&format!("prompt turn, daemon ({TURNS} turns, {d_lines} lines each)"), &d_turn));
    println!("{}", row(&format!("prompt turn, `--standalone` ({TURNS} turns, {s_lines} lines each)"), &s_turn));
    println!();
    println!("| ratio daemon / stand-alone (medians) | |");
    println!("|---|---|");
    println!("| spawn → `initialize` | {:.2} |", ratio(dm, sm));
    println!("| spawn → `initialize`, vs no-daemon fallback | {:.2} |", ratio(dm, fm));
    println!("| first `session/new` | {:.2} |", ratio(dn, sn));
    println!("| prompt turn | {:.2} |", ratio(dt, st));
    println!();
    println!("| memory | VmRSS | RssAnon | RssFile | VmHWM |");
    println!("|---|---|---|---|---|");
    println!("{}", mem_row("daemon, fresh", mem_fresh));
    println!("{}", mem_row("daemon, 1 session", mem_one));
    println!("{}", mem_row(&format!("daemon, {SESSIONS} idle sessions"), mem_full));
    println!(
        "| per idle session (1 → {SESSIONS}) | {:.2} KiB | {:.2} KiB | – | – |",
        per_session(mem_one.rss, mem_full.rss),
        per_session(mem_one.anon, mem_full.anon)
    );
    println!(
        "{}",
        mem_row(
            &format!("daemon, the same {SESSIONS} sessions, each watched once (`session.subscribe`, then gone)"),
            mem_watched
        )
    );
    println!(
        "| per session watched once | {:.1} KiB | {:.1} KiB | – | – |",
        mem_watched.rss.saturating_sub(mem_full.rss) as f64 / SESSIONS as f64,
        mem_watched.anon.saturating_sub(mem_full.anon) as f64 / SESSIONS as f64
    );
    println!(
        "{}",
        mem_row(
            &format!("daemon after {} control calls and {CONNECTS} connects", 3 * (CALLS + 100)),
            daemon_after_calls
        )
    );
    println!(
        "{}",
        mem_row(
            &format!("daemon, then after {} `ratchet acp` runs through it (a session each)", RUNS + 2),
            daemon_after_startups
        )
    );
    println!("{}", mem_row(&format!("daemon, then after {} turns through one `ratchet acp`", TURNS + 5), daemon_used));
    println!("{}", mem_row("`ratchet acp` through the daemon, after `session/new`", d_agent_idle));
    println!("{}", mem_row(&format!("`ratchet acp` through the daemon, after {} turns", TURNS + 5), d_agent_busy));
    println!("{}", mem_row("`ratchet acp --standalone`, after `session/new`", s_agent_idle));
    println!("{}", mem_row(&format!("`ratchet acp --standalone`, after {} turns", TURNS + 5), s_agent_busy));
    println!();
    println!("daemons stopped cleanly (`daemon.shutdown`): {stopped}");
}
