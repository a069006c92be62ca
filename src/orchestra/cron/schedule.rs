//! When a cron job runs: an interval (`90s`, `5m`, `1h 30m`, read by `humantime`) or a
//! 5-field cron expression (minute, hour, day of month, month, day of week, read by
//! `croner`: ranges, steps, lists, names, `L`, `W`, `#` and the `@daily`-style nicknames all
//! honoured), evaluated in local time. No parser of our own: both crates are well kept and
//! their rules are the ones people know from elsewhere.

use std::time::Duration;

use chrono::{DateTime, Local, TimeZone};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// The shortest interval a job may have: a shorter one would be a busy loop of turns.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// A job's schedule, parsed.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// Every so often, counted from the previous run's planned time.
    Every(Duration),
    /// At the times a cron expression matches, in local time.
    Cron(Box<Cron>),
}

/// Why a schedule does not parse; the message says what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{input:?} is not a schedule ({reason}); write a duration such as `90s`, `5m` or `1h`, or a 5-field cron \
     expression (minute hour day-of-month month day-of-week) such as `0 9 * * 1` or `*/15 9-17 * * 1-5`, quoted"
)]
pub struct ScheduleError {
    pub input: String,
    pub reason: String,
}

impl Schedule {
    /// Reads a schedule as people type it: a duration first, else a cron expression of
    /// exactly five fields (no seconds or year field: runs are turns, not timers).
    pub fn parse(text: &str) -> Result<Schedule, ScheduleError> {
        let input = text.trim();
        let error = |reason: String| ScheduleError { input: input.to_string(), reason };
        if input.is_empty() {
            return Err(error("it is empty".into()));
        }
        let duration = humantime::parse_duration(input);
        if let Ok(every) = duration {
            if every < MIN_INTERVAL {
                return Err(error(format!("the shortest interval is {}", humantime::format_duration(MIN_INTERVAL))));
            }
            return Ok(Schedule::Every(every));
        }
        let fields = input.split_whitespace().count();
        if !input.starts_with('@') {
            match fields {
                1 => {
                    return Err(error(format!(
                        "as a duration: {}",
                        duration.err().map(|e| e.to_string()).unwrap_or_default()
                    )));
                }
                5 => {}
                n => return Err(error(format!("it has {n} fields; a cron expression has 5"))),
            }
        }
        let parser = CronParser::builder().seconds(Seconds::Disallowed).year(Year::Disallowed).build();
        let cron = parser.parse(input).map_err(|e| error(format!("as a cron expression: {e}")))?;
        // A pattern that never matches (`0 0 30 2 *`) would never run: say so now.
        if cron.find_next_occurrence(&Local::now(), false).is_err() {
            return Err(error("it matches no time to come".into()));
        }
        Ok(Schedule::Cron(Box::new(cron)))
    }

    /// The first run after `after` (for a new or resumed job). `None`: never again.
    pub fn first_after<Tz: TimeZone>(&self, after: &DateTime<Tz>) -> Option<DateTime<Tz>> {
        match self {
            Schedule::Every(every) => after.clone().checked_add_signed(chrono::TimeDelta::from_std(*every).ok()?),
            // Whole seconds: croner works in seconds, and "after 09:00:00.004" must not be 09:00:00.
            Schedule::Cron(cron) => cron.find_next_occurrence(&whole_second(after), false).ok(),
        }
    }

    /// The run after one planned for `planned` that fires at `now` (both Unix ms): an interval
    /// keeps its cadence (planned + interval), unless that is past already; then it counts from
    /// now, so runs missed meanwhile are one run, not a burst. A cron expression's next match
    /// after now.
    pub fn following_ms(&self, planned: i64, now: i64) -> Option<i64> {
        match self {
            Schedule::Every(every) => {
                let step = i64::try_from(every.as_millis()).ok()?;
                let next = planned.checked_add(step)?;
                if next > now { Some(next) } else { now.checked_add(step) }
            }
            Schedule::Cron(_) => self.first_after_ms(now),
        }
    }

    /// [`Schedule::first_after`] in local time, on Unix milliseconds.
    pub fn first_after_ms(&self, after: i64) -> Option<i64> {
        let after = Local.timestamp_millis_opt(after).single()?;
        self.first_after(&after).map(|t| t.timestamp_millis())
    }
}

fn whole_second<Tz: TimeZone>(t: &DateTime<Tz>) -> DateTime<Tz> {
    use chrono::Timelike;
    t.with_nanosecond(0).unwrap_or_else(|| t.clone())
}
