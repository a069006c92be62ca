//! The scheduler: waits for the singleton lock, then loops: one look at the soonest runs,
//! fire what is due (each claimed by a compare-and-set), sleep until the next is due, a job
//! changes here, a run ends, or [`CRON_POLL`] passes (jobs changed by other processes).

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{CRON_POLL, CatchUp, CronError, CronJob, CronRun, DUE_BATCH, Schedule};
use crate::engine::singleton::{SINGLETON_LOCK_FILE, SingletonLock};
use crate::orchestra::Orchestra;
use crate::orchestra::db::now_ms;
use crate::orchestra::hooks::HookEvent;

/// The scheduler's task, on the orchestra's tracker; ends when the orchestra shuts down.
pub(super) async fn run_scheduler(orchestra: Orchestra) {
    let shutdown = orchestra.inner.shutdown.clone();
    let lock = SingletonLock::acquire_or_wait(orchestra.inner.home.join(SINGLETON_LOCK_FILE));
    tokio::select! {
        () = lock.held() => {}
        () = shutdown.cancelled() => return,
    }
    let state = &orchestra.inner.cron;
    state.holds_lock.store(true, Ordering::SeqCst);
    tracing::info!("this process fires the cron jobs (it holds the singleton lock)");
    if let Err(e) = skip_missed(&orchestra).await {
        tracing::warn!(error = %e, "cannot skip the cron runs missed while nothing ran");
    }
    let mut failing = false;
    loop {
        state.wakeups.fetch_add(1, Ordering::Relaxed);
        let wait = match tick(&orchestra).await {
            Ok(wait) => {
                failing = false;
                wait
            }
            Err(e) => {
                // Said once per outage: the loop retries every poll.
                if !failing {
                    tracing::warn!(error = %e, "cannot read the cron jobs; trying again");
                }
                failing = true;
                CRON_POLL
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = state.wake.notified() => {}
            () = shutdown.cancelled() => break,
        }
    }
    state.holds_lock.store(false, Ordering::SeqCst);
    drop(lock);
}

/// One look: fires the due jobs not running already; returns how long to sleep.
async fn tick(orchestra: &Orchestra) -> Result<Duration, CronError> {
    let state = &orchestra.inner.cron;
    let running: HashSet<i64> = state.in_flight().clone();
    let soonest = state.store.soonest(running.len() + 1).await?;
    let now = now_ms();
    match soonest.iter().find(|(id, _)| !running.contains(id)) {
        None => return Ok(CRON_POLL),
        Some(&(_, at)) if at > now => {
            let until = Duration::from_millis(u64::try_from(at - now).unwrap_or(0));
            return Ok(until.min(CRON_POLL));
        }
        Some(_) => {}
    }
    for job in state.store.due(now, running.len() + DUE_BATCH).await? {
        if !running.contains(&job.id) {
            fire(orchestra, job, now).await?;
        }
    }
    // More may be due: look again at once.
    Ok(Duration::ZERO)
}

/// Claims the job's due run and starts it. Another process's claim of the same run wins
/// silently; a schedule that no longer parses deactivates the job with its reason.
async fn fire(orchestra: &Orchestra, job: CronJob, now: i64) -> Result<(), CronError> {
    let store = &orchestra.inner.cron.store;
    // Shutting down: no new job could start, so the run is left for the next process.
    let Some(planned) = job.next_run.filter(|_| !orchestra.inner.shutdown.is_cancelled()) else { return Ok(()) };
    let schedule = match Schedule::parse(&job.schedule) {
        Ok(schedule) => schedule,
        Err(e) => {
            if store.advance(job.id, planned, None, false).await? {
                store.finished(job.id, Some(e.to_string())).await?;
            }
            return Ok(());
        }
    };
    let next = schedule.following_ms(planned, now);
    if !store.advance(job.id, planned, next, true).await? {
        return Ok(());
    }
    let run = CronRun {
        job_id: job.id,
        session_id: job.session_id.clone(),
        schedule: job.schedule.clone(),
        prompt: job.prompt.clone(),
        planned_ms: planned,
        fired_ms: now,
        run_number: job.run_count + 1,
    };
    fired(orchestra, &run).await;
    orchestra.inner.cron.in_flight().insert(job.id);
    let guard = InFlight { orchestra: orchestra.clone(), job: job.id };
    orchestra.inner.tasks.spawn(async move {
        super::turn::run(&guard.orchestra, &job).await;
        drop(guard);
    });
    Ok(())
}

/// A run fired: logged, and the `cron_fired` hooks run (in the session's directory; in the
/// data directory if the session is gone, so the hook still hears of it).
async fn fired(orchestra: &Orchestra, run: &CronRun) {
    tracing::info!(
        job = run.job_id,
        session = %run.session_id,
        run = run.run_number,
        late_ms = run.fired_ms - run.planned_ms,
        "cron job fired"
    );
    let cwd = match orchestra.inner.engine.session(run.session_id.clone()).await {
        Ok(record) => record.cwd,
        Err(_) => orchestra.inner.home.clone(),
    };
    let cron_id = format!("cron:{}", run.job_id);
    orchestra.hooks().fire(HookEvent::cron_fired(&run.session_id, &cwd, &cron_id, &run.schedule, &run.prompt));
}

/// A run going on; its end (however it ends) lets the job fire again and wakes the scheduler.
struct InFlight {
    orchestra: Orchestra,
    job: i64,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let state = &self.orchestra.inner.cron;
        state.in_flight().remove(&self.job);
        state.wake.notify_one();
    }
}

/// At start: the runs missed while nothing ran, of jobs that skip them, move to their next
/// time without firing (the others fire once, in the first look).
async fn skip_missed(orchestra: &Orchestra) -> Result<(), CronError> {
    let store = &orchestra.inner.cron.store;
    let default = orchestra.inner.config.cron_catch_up;
    let now = now_ms();
    for job in store.due(now, usize::MAX).await? {
        if job.catch_up.unwrap_or(default) != CatchUp::Skip {
            continue;
        }
        let (Some(planned), Ok(schedule)) = (job.next_run, Schedule::parse(&job.schedule)) else { continue };
        if store.advance(job.id, planned, schedule.first_after_ms(now), false).await? {
            tracing::info!(job = job.id, "skipped a cron run missed while nothing ran (catch_up = \"skip\")");
        }
    }
    Ok(())
}
