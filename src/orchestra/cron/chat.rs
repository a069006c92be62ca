//! `/cron` in a chat, for the session it is typed in: `/cron add "SCHEDULE" PROMPT`,
//! `/cron list`, `/cron pause|resume|stop ID`. The same store as `ratchet cron …`.

use super::{CronAction, CronApi, CronError, CronJob, CronStatus, NewCronJob, Schedule, local_time};

/// What `/cron` alone (or with words it does not know) answers.
const USAGE: &str = "Usage: `/cron add \"SCHEDULE\" PROMPT` (a duration such as `90s` or `5m`, or a quoted 5-field \
cron expression such as \"0 9 * * 1\"; the prompt may be a /command), `/cron list`, `/cron pause ID`, \
`/cron resume ID`, `/cron stop ID`.";

/// Answers `/cron ARGS` typed in `session`.
pub async fn answer(cron: CronApi, session: String, args: String) -> String {
    let (word, rest) = split_word(&args);
    let outcome = match word {
        "add" => add(&cron, &session, rest).await,
        "list" => list(&cron, &session).await,
        "pause" => control(&cron, &session, rest, CronAction::Pause).await,
        "resume" => control(&cron, &session, rest, CronAction::Resume).await,
        "stop" => control(&cron, &session, rest, CronAction::Stop).await,
        _ => return USAGE.to_string(),
    };
    outcome.unwrap_or_else(|e| format!("Cannot do that: {e}"))
}

async fn add(cron: &CronApi, session: &str, rest: &str) -> Result<String, CronError> {
    let (schedule, prompt) = split_schedule(rest)?;
    if prompt.trim().is_empty() {
        return Ok(format!("What should it run? {USAGE}"));
    }
    let new = NewCronJob { session_id: session.to_string(), schedule, prompt: prompt.to_string(), catch_up: None };
    let job = cron.add(new).await?;
    Ok(format!(
        "Added cron job {id} ({schedule}); next run {next}. It runs in this session while a daemon or `ratchet acp` \
         runs; `/cron stop {id}` ends it.",
        id = job.id,
        schedule = job.schedule,
        next = job.next_run.map_or_else(|| "never".into(), local_time)
    ))
}

async fn list(cron: &CronApi, session: &str) -> Result<String, CronError> {
    let jobs = cron.list(Some(session)).await?;
    if jobs.is_empty() {
        return Ok("No cron jobs in this session. Add one with `/cron add \"SCHEDULE\" PROMPT`.".into());
    }
    let lines: Vec<String> = jobs.iter().map(line).collect();
    Ok(lines.join("\n"))
}

/// One job on one line.
fn line(job: &CronJob) -> String {
    let when = |t: Option<i64>| t.map_or_else(|| "-".into(), local_time);
    let mut text = format!(
        "{} [{}] `{}` {:?}: last run {}, next run {}, {} run(s)",
        job.id,
        job.status.as_str(),
        job.schedule,
        job.prompt,
        when(job.last_run),
        when(job.next_run),
        job.run_count
    );
    if let Some(e) = &job.last_error {
        text.push_str(&format!("; last error: {e}"));
    }
    text
}

async fn control(cron: &CronApi, session: &str, rest: &str, action: CronAction) -> Result<String, CronError> {
    let id = CronError::parse_id(rest)?;
    // Only this session's jobs: another session's are the CLI's business.
    match cron.get(id).await? {
        Some(job) if job.session_id == session => {}
        _ => return Err(CronError::NoSuchJob(id)),
    }
    let job = cron.control(id, action).await?;
    Ok(match job.status {
        CronStatus::Paused => format!("Paused cron job {id}; `/cron resume {id}` lets it run again."),
        CronStatus::Active => {
            format!("Resumed cron job {id}; next run {}.", job.next_run.map_or_else(|| "never".into(), local_time))
        }
        CronStatus::Stopped => format!("Stopped cron job {id}; it never runs again."),
    })
}

/// The first word and the rest, trimmed.
fn split_word(text: &str) -> (&str, &str) {
    let text = text.trim();
    match text.split_once(char::is_whitespace) {
        Some((word, rest)) => (word, rest.trim()),
        None => (text, ""),
    }
}

/// The schedule at the start of `text` and the prompt after it: a quoted schedule, else a
/// first word that is a duration, else five words that are a cron expression.
pub(super) fn split_schedule(text: &str) -> Result<(String, &str), CronError> {
    let text = text.trim();
    for quote in ['"', '\''] {
        if let Some(inner) = text.strip_prefix(quote) {
            return match inner.split_once(quote) {
                Some((schedule, prompt)) => Ok((schedule.trim().to_string(), prompt.trim())),
                None => Err(CronError::Schedule(super::ScheduleError {
                    input: text.to_string(),
                    reason: "its closing quote is missing".into(),
                })),
            };
        }
    }
    let (first, rest) = split_word(text);
    let first_error = match Schedule::parse(first) {
        Ok(_) => return Ok((first.to_string(), rest)),
        Err(e) => e,
    };
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.len() > 5 {
        let schedule = words[..5].join(" ");
        if Schedule::parse(&schedule).is_ok() {
            let mut prompt = text;
            for word in &words[..5] {
                prompt = prompt.trim_start().strip_prefix(word).unwrap_or(prompt);
            }
            return Ok((schedule, prompt.trim()));
        }
    }
    Err(first_error.into())
}
