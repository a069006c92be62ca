//! Cron schedules and durations (`90s`, `1h 30m`, `*/15 9-17 * * 1-5`, `@daily`): any text
//! parses or is refused with a message, and a parsed schedule answers "when next" for any
//! instant, the extremes included, without a panic or overflow.
#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use ratchet::orchestra::cron::schedule::{MIN_INTERVAL, Schedule};

fn run(u: &mut Unstructured) -> Result<()> {
    let text: &str = u.arbitrary()?;
    let (planned, now): (i64, i64) = u.arbitrary()?;
    let Ok(schedule) = Schedule::parse(text) else { return Ok(()) };
    if let Schedule::Every(every) = &schedule {
        assert!(*every >= MIN_INTERVAL, "{text:?}: an interval below the minimum was accepted");
    }
    for at in [planned, now, 0, i64::MIN, i64::MAX, i64::MAX - 1_000] {
        if let Some(next) = schedule.first_after_ms(at) {
            assert!(next > at, "{text:?}: the first run after {at} is {next}, not later");
        }
    }
    if let Some(next) = schedule.following_ms(planned, now) {
        assert!(next > now, "{text:?}: the run after one planned for {planned} at {now} is {next}, not later");
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
