//! Helpers of the fault tests: a seeded random source (so a failing run reproduces with its
//! seed), the store read behind the agent's back (read-only), and a child's memory.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// SplitMix64: tiny, seedable, good enough to pick moments. The seed is printed by every
/// test that uses it; `RATCHET_FAULT_SEED` replays one.
pub struct Rng(u64);

impl Rng {
    /// The seed from `RATCHET_FAULT_SEED`, else `default`; printed so a failure names it.
    pub fn seeded(test: &str, default: u64) -> Rng {
        let seed = std::env::var("RATCHET_FAULT_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(default);
        eprintln!("{test}: seed {seed} (set RATCHET_FAULT_SEED to replay another)");
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A duration in `0..=max`, in whole milliseconds.
    pub fn millis_up_to(&mut self, max: Duration) -> Duration {
        let max = max.as_millis() as u64;
        Duration::from_millis(self.next_u64() % (max + 1))
    }
}

/// One stored message, as the store holds it.
#[derive(Debug, Clone)]
pub struct StoredMessage {
    pub seq: i64,
    pub role: String,
    /// The JSON text of the content column (the parts, as the engine encodes them).
    pub content: String,
    pub status: String,
}

/// Opens `db` read-only, checks `PRAGMA integrity_check` is `ok`, and returns the messages of
/// `session` in order. Panics (naming `when`) if the database is damaged.
pub fn check_store(db: &Path, session: &str, when: &str) -> Vec<StoredMessage> {
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .unwrap_or_else(|e| panic!("{when}: cannot open {} read-only: {e}", db.display()));
    conn.busy_timeout(Duration::from_secs(10)).expect("busy timeout");
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{when}: integrity_check failed to run: {e}"));
    assert_eq!(check, "ok", "{when}: PRAGMA integrity_check");
    let mut stmt = conn
        .prepare("SELECT seq, role, content, status FROM messages WHERE session_id = ?1 ORDER BY seq")
        .expect("prepare messages query");
    stmt.query_map([session], |r| {
        Ok(StoredMessage { seq: r.get(0)?, role: r.get(1)?, content: r.get(2)?, status: r.get(3)? })
    })
    .expect("query messages")
    .collect::<Result<Vec<_>, _>>()
    .expect("read messages")
}

/// The text of a stored message (its `text` parts joined).
pub fn stored_text(m: &StoredMessage) -> String {
    let parts: serde_json::Value = serde_json::from_str(&m.content).unwrap_or_default();
    let mut out = String::new();
    collect_text(&parts, &mut out);
    out
}

fn collect_text(v: &serde_json::Value, out: &mut String) {
    match v {
        serde_json::Value::Array(items) => items.iter().for_each(|i| collect_text(i, out)),
        serde_json::Value::Object(map) => {
            if let Some(serde_json::Value::String(t)) = map.get("text") {
                out.push_str(t);
            } else {
                map.values().for_each(|i| collect_text(i, out));
            }
        }
        _ => {}
    }
}

/// A field of `/proc/<pid>/status` in bytes (`VmRSS`, `VmHWM`).
pub fn proc_status_bytes(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/<pid>/status");
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix(field).and_then(|rest| rest.strip_prefix(':')))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status:\n{status}"));
    kb * 1024
}

pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
