use chrono::{DateTime, FixedOffset, TimeZone};

use super::chat::split_schedule;
use super::*;
use crate::orchestra::db::Db;

/// A wall-clock time at `offset` hours east of UTC.
fn at(offset_hours: i32, y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<FixedOffset> {
    FixedOffset::east_opt(offset_hours * 3600).unwrap().with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

fn next(schedule: &str, after: DateTime<FixedOffset>) -> DateTime<FixedOffset> {
    Schedule::parse(schedule).unwrap().first_after(&after).unwrap()
}

#[test]
fn mondays_at_nine() {
    // 2026-12-02 is a Wednesday; the next Monday is the 7th.
    assert_eq!(next("0 9 * * 1", at(0, 2026, 12, 2, 10, 0, 0)), at(0, 2026, 12, 7, 9, 0, 0));
    assert_eq!(next("0 9 * * 1", at(0, 2026, 12, 7, 8, 59, 59)), at(0, 2026, 12, 7, 9, 0, 0));
    // Strictly after: a run at 09:00 is followed by next week's, also a few ms past it.
    assert_eq!(next("0 9 * * 1", at(0, 2026, 12, 7, 9, 0, 0)), at(0, 2026, 12, 14, 9, 0, 0));
    let just_after = at(0, 2026, 12, 7, 9, 0, 0) + chrono::TimeDelta::milliseconds(4);
    assert_eq!(next("0 9 * * 1", just_after), at(0, 2026, 12, 14, 9, 0, 0));
    // Wall-clock time of the zone it is evaluated in (local time in production).
    assert_eq!(next("0 9 * * 1", at(5, 2026, 12, 2, 10, 0, 0)), at(5, 2026, 12, 7, 9, 0, 0));
    // Across a month and a year.
    assert_eq!(next("0 9 * * 1", at(0, 2026, 12, 29, 9, 30, 0)), at(0, 2027, 1, 4, 9, 0, 0));
}

#[test]
fn every_quarter_hour_of_working_hours_on_weekdays() {
    let s = "*/15 9-17 * * 1-5";
    assert_eq!(next(s, at(0, 2026, 12, 2, 10, 7, 0)), at(0, 2026, 12, 2, 10, 15, 0));
    assert_eq!(next(s, at(0, 2026, 12, 2, 8, 0, 0)), at(0, 2026, 12, 2, 9, 0, 0));
    // 17:45 is the last of the day; then 09:00 the next weekday.
    assert_eq!(next(s, at(0, 2026, 12, 2, 17, 30, 0)), at(0, 2026, 12, 2, 17, 45, 0));
    assert_eq!(next(s, at(0, 2026, 12, 2, 17, 45, 0)), at(0, 2026, 12, 3, 9, 0, 0));
    // Friday evening: Monday morning (Saturday and Sunday skipped).
    assert_eq!(next(s, at(0, 2026, 12, 4, 17, 50, 0)), at(0, 2026, 12, 7, 9, 0, 0));
    let mut t = at(0, 2026, 12, 2, 9, 0, 0);
    let mut runs = 0;
    while t < at(0, 2026, 12, 3, 0, 0, 0) {
        runs += 1;
        t = next(s, t);
    }
    assert_eq!(runs, 9 * 4, "four a hour from 09:00 to 17:45");
}

#[test]
fn durations_keep_their_cadence_and_missed_runs_are_one() {
    assert!(matches!(Schedule::parse("90s").unwrap(), Schedule::Every(d) if d == Duration::from_secs(90)));
    assert!(matches!(Schedule::parse("5m").unwrap(), Schedule::Every(d) if d == Duration::from_secs(300)));
    assert!(matches!(Schedule::parse(" 1h 30m ").unwrap(), Schedule::Every(d) if d == Duration::from_secs(5400)));
    let two = Schedule::parse("2s").unwrap();
    assert_eq!(two.first_after(&at(0, 2026, 12, 2, 10, 0, 0)), Some(at(0, 2026, 12, 2, 10, 0, 2)));
    // Fired a little late: the cadence holds.
    assert_eq!(two.following_ms(10_000, 10_300), Some(12_000));
    // Fired after several were missed: one run now, the next a whole interval later.
    assert_eq!(two.following_ms(10_000, 19_500), Some(21_500));
    // A cron expression's next run is after the time it fires.
    let hourly = Schedule::parse("@hourly").unwrap();
    let noon = at(0, 2026, 12, 2, 12, 0, 0).timestamp_millis();
    let later = hourly.following_ms(noon - 3_600_000, noon + 1).unwrap();
    assert_eq!(later, noon + 3_600_000);
}

#[test]
fn bad_schedules_say_what_to_write() {
    for (input, reason) in [
        ("", "empty"),
        ("500ms", "shortest interval"),
        ("0s", "shortest interval"),
        ("soon", "as a duration"),
        ("every day", "2 fields"),
        ("0 0 * *", "4 fields"),
        ("0 0 0 * * *", "6 fields"),
        ("61 * * * *", "as a cron expression"),
        ("0 25 * * *", "as a cron expression"),
        ("0 0 30 2 *", "matches no time"),
    ] {
        let e = Schedule::parse(input).unwrap_err();
        let text = e.to_string();
        assert!(text.contains(reason), "{input:?}: {text}");
        assert!(text.contains("write a duration such as `90s`"), "{input:?}: {text}");
    }
}

#[test]
fn chat_schedules_quoted_or_not() {
    assert_eq!(split_schedule("\"*/5 * * * *\" check the build").unwrap(), ("*/5 * * * *".into(), "check the build"));
    assert_eq!(split_schedule("5m /compact").unwrap(), ("5m".into(), "/compact"));
    assert_eq!(split_schedule("*/5 9-17 * * 1-5 check it").unwrap(), ("*/5 9-17 * * 1-5".into(), "check it"));
    assert!(split_schedule("\"5m check").unwrap_err().to_string().contains("closing quote"));
    assert!(split_schedule("sometimes check").unwrap_err().to_string().contains("\"sometimes\""));
}

fn new_job(schedule: &str) -> NewCronJob {
    NewCronJob { session_id: "s1".into(), schedule: schedule.into(), prompt: "  ping  ".into(), catch_up: None }
}

#[tokio::test]
async fn jobs_pause_resume_and_stop_for_good() {
    let store = CronStore::new(Db::memory());
    let job = store.add(new_job("2s")).await.unwrap();
    assert_eq!((job.status, job.prompt.as_str(), job.run_count), (CronStatus::Active, "ping", 0));
    assert!(job.next_run.unwrap() > job.created);
    let paused = store.control(job.id, CronAction::Pause).await.unwrap();
    assert_eq!((paused.status, paused.next_run), (CronStatus::Paused, None));
    assert!(matches!(store.control(job.id, CronAction::Pause).await, Err(CronError::Refused { .. })));
    let resumed = store.control(job.id, CronAction::Resume).await.unwrap();
    assert_eq!(resumed.status, CronStatus::Active);
    assert!(resumed.next_run.is_some());
    let stopped = store.control(job.id, CronAction::Stop).await.unwrap();
    assert_eq!((stopped.status, stopped.next_run), (CronStatus::Stopped, None));
    let again = store.control(job.id, CronAction::Resume).await.unwrap_err().to_string();
    assert!(again.contains("never runs again"), "{again}");
    assert!(matches!(store.control(99, CronAction::Stop).await, Err(CronError::NoSuchJob(99))));
    let bad = store.add(new_job("whenever")).await.unwrap_err();
    assert!(matches!(bad, CronError::Schedule(_)));
    let empty = NewCronJob { prompt: " ".into(), ..new_job("5m") };
    assert!(matches!(store.add(empty).await, Err(CronError::EmptyPrompt)));
    assert_eq!(store.list(None).await.unwrap().len(), 1);
    assert_eq!(store.list(Some("other")).await.unwrap().len(), 0);
}

#[tokio::test]
async fn a_run_is_claimed_once_however_many_try() {
    let store = CronStore::new(Db::memory());
    let job = store.add(new_job("1h")).await.unwrap();
    let planned = job.next_run.unwrap();
    let tries: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.advance(job.id, planned, Some(planned + 3_600_000), true).await.unwrap() })
        })
        .collect();
    let mut won = 0;
    for t in tries {
        won += usize::from(t.await.unwrap());
    }
    assert_eq!(won, 1);
    let after = store.get(job.id).await.unwrap().unwrap();
    assert_eq!((after.run_count, after.next_run), (1, Some(planned + 3_600_000)));
    assert!(after.last_run.is_some());
    // The soonest look and the due list see only active jobs.
    let other = store.add(new_job("5m")).await.unwrap();
    assert_eq!(store.soonest(1).await.unwrap(), vec![(other.id, other.next_run.unwrap())]);
    store.control(other.id, CronAction::Pause).await.unwrap();
    assert_eq!(store.soonest(5).await.unwrap(), vec![(job.id, planned + 3_600_000)]);
    assert!(store.due(planned + 3_600_000, 10).await.unwrap().iter().all(|j| j.id == job.id));
}
