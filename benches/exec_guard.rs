//! `cargo bench --bench exec_guard`: what the exec guard adds to every local `shell` call.
//!
//! Runs `sh -c true` directly and under the guard (the release `ratchet` binary started with
//! the hidden guard argument and a lifeline pipe on stdin, as the shell tool does) and prints
//! medians. No timing is asserted: the figures go into BENCHMARKS.md as a ratio.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RUNS: usize = 200;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Spawns `program args` with a pipe as stdin (held open until it exits) and waits.
fn time_runs(program: &str, args: &[&str]) -> Duration {
    let samples = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            let mut child =
                Command::new(program).args(args).stdin(Stdio::piped()).stdout(Stdio::null()).spawn().expect("spawn");
            // `wait` would close stdin first; for the guard that is the lifeline, so keep it.
            let lifeline = child.stdin.take();
            let status = child.wait().expect("wait");
            drop(lifeline);
            assert!(status.success(), "{program} {args:?}: {status}");
            start.elapsed()
        })
        .collect();
    median(samples)
}

fn main() {
    let ratchet = env!("CARGO_BIN_EXE_ratchet");
    let plain = time_runs("sh", &["-c", "true"]);
    let guarded = time_runs(ratchet, &[ratchet::engine::tools::exec_guard::GUARD_ARG, "true"]);
    println!("| measure | median |");
    println!("|---|---|");
    println!("| `sh -c true` ({RUNS} runs) | {:.2} ms |", plain.as_secs_f64() * 1e3);
    println!("| the same under the exec guard | {:.2} ms |", guarded.as_secs_f64() * 1e3);
    println!(
        "| guard's cost per command | {:.2} ms ({:.1}×) |",
        (guarded.as_secs_f64() - plain.as_secs_f64()) * 1e3,
        guarded.as_secs_f64() / plain.as_secs_f64()
    );
}
