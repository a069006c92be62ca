//! 10,000 requests as fast as possible (issue 11, hardening §3): written in one go without
//! waiting for any answer, every one is answered exactly once (the client checks duplicates
//! and unknown ids), and the agent's memory stays bounded (`VmHWM` of the child).

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::support::TestEnv;
use crate::support::faults::{mib, proc_status_bytes};

const REQUESTS: usize = 10_000;

/// How far above its idle peak the agent may go while it answers them all.
const MEMORY_BOUND: u64 = 48 * 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_requests_at_once_are_all_answered_with_bounded_memory() {
    let env = TestEnv::scripted(&["ok"]);
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;
    let pid = client.pid().unwrap();
    let idle = proc_status_bytes(pid, "VmHWM");

    // A mix: reads of the store, engine calls on a session, errors, and notifications
    // (which get no answer) in between.
    let mut bytes = Vec::new();
    for i in 0..REQUESTS {
        let id = json!(format!("load-{i}"));
        let (method, params) = match i % 4 {
            0 => ("session/list", json!({})),
            1 => ("session/set_mode", json!({"sessionId": session, "modeId": "ask"})),
            2 => ("initialize", json!({"protocolVersion": 1})),
            _ => ("no/such_method", json!({})),
        };
        client.expect_response(&id, (method != "no/such_method").then_some(method));
        let line = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        bytes.extend_from_slice(line.to_string().as_bytes());
        bytes.push(b'\n');
        if i % 100 == 0 {
            let cancel = json!({"jsonrpc": "2.0", "method": "session/cancel", "params": {"sessionId": session}});
            bytes.extend_from_slice(cancel.to_string().as_bytes());
            bytes.push(b'\n');
        }
    }
    let started = std::time::Instant::now();
    client.send_raw_bytes(&bytes).await;

    let mut answered = HashSet::new();
    let mut peak = idle;
    while answered.len() < REQUESTS {
        let (id, outcome) = client.next_response().await;
        let id = id.as_str().unwrap_or_else(|| panic!("unexpected response id {id}")).to_owned();
        let n: usize = id.strip_prefix("load-").and_then(|n| n.parse().ok()).expect("one of ours");
        match (n % 4, &outcome) {
            (3, Err(e)) => assert_eq!(e.code, -32601, "{e}"),
            (_, Ok(_)) => {}
            (_, Err(e)) => panic!("request {id} failed: {e}"),
        }
        assert!(answered.insert(id), "answered twice");
        if answered.len() % 1000 == 0 {
            peak = peak.max(proc_status_bytes(pid, "VmHWM"));
        }
    }
    let took = started.elapsed();
    peak = peak.max(proc_status_bytes(pid, "VmHWM"));
    eprintln!(
        "{REQUESTS} requests answered in {took:?}; VmHWM {:.1} -> {:.1} MiB ({} bytes of requests)",
        mib(idle),
        mib(peak),
        bytes.len()
    );
    assert!(peak < idle + MEMORY_BOUND, "peak {:.1} MiB over idle {:.1} MiB", mib(peak), mib(idle));

    // Still serving, and nothing more was owed.
    let list: Value = client.call("session/list", json!({})).await;
    assert!(list["sessions"].is_array());
    let status = client.shutdown().await;
    assert!(status.success());
}
