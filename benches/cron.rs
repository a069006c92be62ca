//! `cargo bench --bench cron`: what the cron scheduler costs while it waits. An engine with
//! its orchestra opened in this process (offline scripted provider), 1,000 jobs added
//! (hourly to daily intervals and yearly cron expressions, so none fires in the window),
//! then the process's CPU time (getrusage) and the scheduler loop's wake-ups are measured
//! over fixed windows: first with no scheduler (the idle engine alone), then with the
//! scheduler holding the lock. Prints medians per minute; nothing is asserted (the figures go
//! into BENCHMARKS.md). `CRON_BENCH_SECS` sets the window (default 20 s), `CRON_BENCH_ROUNDS`
//! the number of windows (default 3).

use std::time::{Duration, Instant};

use ratchet::engine::EngineApi;
use ratchet::engine::config::{ConfigFile, EngineConfig, EnvSnapshot};
use ratchet::orchestra::cron::NewCronJob;

const JOBS: usize = 1000;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// User plus system CPU time of this process so far.
fn cpu_time() -> Duration {
    // SAFETY: getrusage writes into the struct we pass; it touches nothing else.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// CPU milliseconds per minute over each window, and `counter`'s increase per minute.
async fn measure(window: Duration, rounds: u64, counter: impl Fn() -> u64) -> (f64, f64) {
    let (mut cpu, mut wakes) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let (c0, w0, t0) = (cpu_time(), counter(), Instant::now());
        tokio::time::sleep(window).await;
        let minutes = t0.elapsed().as_secs_f64() / 60.0;
        cpu.push((cpu_time() - c0).as_secs_f64() * 1e3 / minutes);
        wakes.push((counter() - w0) as f64 / minutes);
    }
    (median(cpu), median(wakes))
}

fn main() {
    let window = Duration::from_secs(env_number("CRON_BENCH_SECS", 20));
    let rounds = env_number("CRON_BENCH_ROUNDS", 3).max(1);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("script.json");
        std::fs::write(&script, r#"{"turns":[{"text":"ok"}]}"#).unwrap();
        let env = EnvSnapshot {
            ratchet_provider: Some("scripted".into()),
            ratchet_script: Some(script.to_string_lossy().into_owned()),
            ..Default::default()
        };
        let config = EngineConfig { home: dir.path().join("home"), env, file: ConfigFile::default() };
        let composed = ratchet::compose::open(config).await.unwrap();
        let session = EngineApi::create_session(&composed.engine, dir.path().into(), vec![], vec![]).await.unwrap();
        let cron = composed.orchestra.cron();
        let schedules = ["1h", "2h 30m", "6h", "24h", "0 0 1 1 *", "30 4 1 7 *"];
        let added = Instant::now();
        for i in 0..JOBS {
            let schedule = schedules[i % schedules.len()].to_string();
            let new =
                NewCronJob { session_id: session.id.clone(), schedule, prompt: format!("job {i}"), catch_up: None };
            cron.add(new).await.unwrap();
        }
        let add_ms = added.elapsed().as_secs_f64() * 1e3 / JOBS as f64;

        let (idle_cpu, _) = measure(window, rounds, || 0).await;
        cron.start_scheduler();
        while !cron.is_firing() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let (cron_cpu, wakeups) = measure(window, rounds, || cron.scheduler_wakeups()).await;
        let runs: i64 = cron.list(None).await.unwrap().iter().map(|j| j.run_count).sum();
        assert_eq!(runs, 0, "no job may fire in the window");

        println!("| measure ({JOBS} jobs, median of {rounds} windows of {}s) | per minute |", window.as_secs());
        println!("|---|---|");
        println!("| process CPU, engine idle, no scheduler | {idle_cpu:.1} ms |");
        println!("| process CPU, scheduler idle with {JOBS} jobs | {cron_cpu:.1} ms |");
        println!(
            "| scheduler's share | {:.1} ms ({:.3}% of one core) |",
            cron_cpu - idle_cpu,
            (cron_cpu - idle_cpu) / 600.0
        );
        println!("| scheduler wake-ups | {wakeups:.0} |");
        println!("| CPU per wake-up | {:.0} µs |", (cron_cpu - idle_cpu) * 1e3 / wakeups.max(1.0));
        println!("| adding a job (`cron add` through the API) | {add_ms:.2} ms each |");
        composed.engine.shutdown().await;
    });
}
