//! `cargo bench --bench team`: a 5-member team's own overhead per message and per blackboard
//! write, beyond the model. The offline scripted provider answers at once, so a team's wall
//! time is the team's and the engine's own work. Each member's first model reply makes
//! `CALLS` tool calls at once, or just one; the runs differ only in what those calls are:
//!
//! - messages: `CALLS` × `send_message` (to `m1`, whose second turn reads them all), against
//!   1 × `send_message`;
//! - writes: `CALLS` × `blackboard_write` (different keys; members race for each key, so one
//!   write per key lands and the others conflict, which returns the current entry), against
//!   1 × `blackboard_write`;
//! - for scale: 1 × `send_message` + (`CALLS` − 1) × `list_dir`, a cheap built-in tool.
//!
//! The difference per added call is what a message or a write costs beyond the model (the
//! engine's tool-call bookkeeping included). Prints medians of `RUNS`; nothing is asserted
//! (the figures go into BENCHMARKS.md).

use std::sync::Arc;
use std::time::{Duration, Instant};

use ratchet::engine::EngineApi;
use ratchet::engine::config::{ConfigFile, EngineConfig, EnvSnapshot};
use ratchet::engine::turn_scope::NoTurn;
use ratchet::orchestra::teams::{StartTeam, TeamStatus};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const MEMBERS: usize = 5;
/// Tool calls in each member's first reply (m1's inbox takes 5 × 6 = 30 of its 32).
const CALLS: usize = 6;
const RUNS: usize = 7;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn call(name: &str, arguments: Value) -> Value {
    json!({"name": name, "arguments": arguments})
}

fn script() -> Value {
    let send = || call("send_message", json!({"to": "m1", "content": "ping"}));
    let write = |i: usize| call("blackboard_write", json!({"section": "s", "key": format!("k{i}"), "value": "v"}));
    let list = || call("list_dir", json!({"path": "."}));
    let mixed = |first: Value| {
        let mut calls = vec![first];
        calls.extend((1..CALLS).map(|_| list()));
        calls
    };
    json!({"turns": [
        {"match": "[message from", "text": "ok"},
        {"match": "delivered to", "text": "done"},
        {"match": "wrote s/", "text": "done"},
        {"match": "conflict", "text": "done"},
        {"match": "bench-msgs", "tool_calls": (0..CALLS).map(|_| send()).collect::<Vec<_>>()},
        {"match": "bench-one-msg", "tool_calls": [send()]},
        {"match": "bench-list", "tool_calls": mixed(send())},
        {"match": "bench-writes", "tool_calls": (0..CALLS).map(write).collect::<Vec<_>>()},
        {"match": "bench-one-write", "tool_calls": [write(0)]},
        {"text": "done"}
    ]})
}

fn team_file() -> String {
    let mut yaml = String::from("name: bench5\nagents:\n");
    for i in 1..=MEMBERS {
        yaml.push_str(&format!("  - name: m{i}\n    system_prompt: You are member {i}.\n"));
    }
    yaml
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let script_path = dir.path().join("script.json");
        std::fs::write(&script_path, script().to_string()).unwrap();
        let cwd = dir.path().join("work");
        std::fs::create_dir_all(cwd.join(".ratchet/teams")).unwrap();
        std::fs::write(cwd.join(".ratchet/teams/bench5.yaml"), team_file()).unwrap();
        let env = EnvSnapshot {
            ratchet_provider: Some("scripted".into()),
            ratchet_script: Some(script_path.to_string_lossy().into_owned()),
            ..Default::default()
        };
        let file = ConfigFile::parse("").unwrap();
        let composed = ratchet::compose::open(EngineConfig { home: dir.path().join("home"), env, file }).await.unwrap();
        let parent = EngineApi::create_session(&composed.engine, cwd.clone(), vec![], vec![]).await.unwrap().id;
        let run = |task: &'static str| {
            let (orchestra, parent, cwd) = (composed.orchestra.clone(), parent.clone(), cwd.clone());
            async move {
                let req = StartTeam {
                    name: "bench5".into(),
                    task: task.into(),
                    cwd,
                    paths: vec![],
                    project: None,
                    config_dir: None,
                };
                let start = Instant::now();
                let outcome = orchestra
                    .teams()
                    .run_in(req, &parent, Arc::new(NoTurn), CancellationToken::new())
                    .await
                    .expect("the team starts");
                assert_ne!(outcome.status, TeamStatus::Failed, "{}", outcome.summary);
                start.elapsed()
            }
        };
        run("bench-one-msg").await; // warm up
        let tasks = ["bench-msgs", "bench-one-msg", "bench-writes", "bench-one-write", "bench-list"];
        let mut times: Vec<Vec<Duration>> = vec![Vec::new(); tasks.len()];
        for _ in 0..RUNS {
            for (task, t) in tasks.iter().zip(times.iter_mut()) {
                t.push(run(task).await);
            }
        }
        let m: Vec<Duration> = times.into_iter().map(median).collect();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let added = (MEMBERS * (CALLS - 1)) as f64;
        let per = |a: Duration, b: Duration| (ms(a) - ms(b)) / added;
        println!("| measure ({MEMBERS} members at once, scripted model) | median of {RUNS} |");
        println!("|---|---|");
        println!("| team run, 1 message per member | {:.1} ms |", ms(m[1]));
        println!("| team run, {CALLS} messages per member | {:.1} ms |", ms(m[0]));
        println!("| wall time per added message | {:.3} ms |", per(m[0], m[1]));
        println!("| team run, 1 blackboard write per member | {:.1} ms |", ms(m[3]));
        println!("| team run, {CALLS} blackboard writes per member | {:.1} ms |", ms(m[2]));
        println!("| wall time per added blackboard write | {:.3} ms |", per(m[2], m[3]));
        println!("| for scale: wall time per added `list_dir` call | {:.3} ms |", per(m[4], m[1]));
        composed.engine.shutdown().await;
    });
}
