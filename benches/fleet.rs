//! `cargo bench --bench fleet`: the fleet's own overhead. A plan of 100 one-line steps runs
//! with the offline scripted provider (its model calls return at once) and `max_workers = 8`,
//! approved by an autorespond rule; compared with 100 plain scripted turns one after another
//! in the same engine. Prints medians of several runs; nothing is asserted (the figures go
//! into BENCHMARKS.md).

use std::time::{Duration, Instant};

use ratchet::engine::config::{ConfigFile, EngineConfig, EnvSnapshot};
use ratchet::engine::tools::NoHost;
use ratchet::engine::{ChatEvent, ContentPart, Engine, EngineApi};

const STEPS: usize = 100;
const RUNS: usize = 5;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// KiB of the process's peak resident set (VmHWM) and current one (VmRSS).
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

fn script() -> serde_json::Value {
    let steps: Vec<serde_json::Value> = (1..=STEPS)
        .map(|i| serde_json::json!({"id": format!("s{i}"), "description": format!("Write line {i}"), "complexity": "simple"}))
        .collect();
    serde_json::json!({"turns": [
        {"match": "Your step (", "text": "done"},
        {"match": "run the fleet", "tool_calls": [{"name": "propose_plan", "arguments": {"goal": "bench", "steps": steps}}]},
        {"match": "Plan p", "text": "finished"},
        {"text": "plain answer"}
    ]})
}

async fn open(dir: &std::path::Path, workers: usize) -> (Engine, String) {
    let script_path = dir.join("script.json");
    std::fs::write(&script_path, script().to_string()).unwrap();
    let cwd = dir.join("work");
    std::fs::create_dir_all(cwd.join(".ratchet")).unwrap();
    std::fs::write(cwd.join(".ratchet/autorespond.yaml"), "rules:\n  - match: \"Approve plan\"\n    action: approve\n")
        .unwrap();
    let env = EnvSnapshot {
        ratchet_provider: Some("scripted".into()),
        ratchet_script: Some(script_path.to_string_lossy().into_owned()),
        ..Default::default()
    };
    let file = ConfigFile::parse(&format!("[fleet]\nmax_workers = {workers}\n")).unwrap();
    let engine = ratchet::compose::open_engine(EngineConfig { home: dir.join("home"), env, file }).await.unwrap();
    let session = EngineApi::create_session(&engine, cwd, vec![], vec![]).await.unwrap();
    (engine, session.id)
}

/// Runs one prompt to its end; panics unless it completed.
async fn turn(engine: &Engine, session: &str, text: &str) {
    let mut t = EngineApi::send_message(
        engine,
        session.to_string(),
        vec![ContentPart::text(text)],
        std::sync::Arc::new(NoHost),
    )
    .await
    .unwrap();
    while let Some(e) = t.events.recv().await {
        match e {
            ChatEvent::Complete { .. } => {
                // The claim is released just after the last event.
                engine.turn_idle(session).await;
                return;
            }
            ChatEvent::Error { message, .. } => panic!("turn failed: {message}"),
            _ => {}
        }
    }
    panic!("the turn ended without a result");
}

/// Worker counts to run: `FLEET_BENCH_WORKERS=1,4,16` (default 8, the figure in BENCHMARKS.md).
fn worker_counts() -> Vec<usize> {
    let given = std::env::var("FLEET_BENCH_WORKERS").unwrap_or_else(|_| "8".into());
    given.split(',').filter_map(|w| w.trim().parse().ok()).collect()
}

fn main() {
    for workers in worker_counts() {
        run(workers);
    }
}

fn run(workers: usize) {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut fleet = Vec::new();
        let mut plain = Vec::new();
        let mut rss_growth = Vec::new();
        for _ in 0..RUNS {
            let dir = tempfile::tempdir().unwrap();
            let (engine, session) = open(dir.path(), workers).await;
            // Warm up (provider resolution, first SQLite pages).
            turn(&engine, &session, "hello").await;
            let start = Instant::now();
            for _ in 0..STEPS {
                turn(&engine, &session, "hello").await;
            }
            plain.push(start.elapsed() / STEPS as u32);
            let (_, before) = memory();
            let start = Instant::now();
            turn(&engine, &session, "run the fleet").await;
            fleet.push(start.elapsed() / STEPS as u32);
            let (peak, _) = memory();
            rss_growth.push(peak.saturating_sub(before));
            engine.shutdown().await;
        }
        let (fleet, plain) = (median(fleet), median(plain));
        rss_growth.sort();
        let growth = rss_growth[rss_growth.len() / 2];
        println!("| measure ({STEPS} steps, max_workers {workers}, scripted) | median of {RUNS} |");
        println!("|---|---|");
        println!("| plain scripted turn, one after another | {:.2} ms |", plain.as_secs_f64() * 1e3);
        println!("| fleet: wall time per step | {:.2} ms |", fleet.as_secs_f64() * 1e3);
        println!("| fleet time per step ÷ plain turn | {:.2} |", fleet.as_secs_f64() / plain.as_secs_f64());
        println!(
            "| peak RSS over the RSS before the fleet, ÷ {workers} workers | {} KiB per worker |",
            growth / workers as u64
        );
    });
}
