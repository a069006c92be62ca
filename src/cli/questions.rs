//! `ratchet questions list|answer`: the orchestra's durable question queue, read and
//! answered in its database directly (no daemon needed). The process waiting for the answer
//! polls the database, so an answer given here reaches it within a fraction of a second.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;
use ratchet::engine::config::EngineConfig;
use ratchet::orchestra::db::Db;
use ratchet::orchestra::plans::PlanStore;
use ratchet::orchestra::questions::{
    Answer, AnsweredBy, QuestionKind, QuestionQueue, QuestionRecord, parse_cli_answer,
};

#[derive(Subcommand)]
pub enum QuestionsCommand {
    /// List open questions, oldest first: id, kind, age, session, title.
    List {
        /// Print the question records as a JSON array.
        #[arg(long)]
        json: bool,
        /// Include answered questions (and who answered them).
        #[arg(long)]
        all: bool,
    },
    /// Answer a question. Permission: `allow` (or yes/y/ok/approve) allows the call once,
    /// anything else refuses it with that text as feedback. Plan approval: `approve`,
    /// `approve skip s2 s3`, or feedback to reject. Ask: the text is the answer.
    Answer {
        /// The question's id (`q5` or `5`, see `ratchet questions list`).
        id: String,
        /// The answer; several words are joined with spaces.
        #[arg(required = true, num_args = 1.., trailing_var_arg = true, allow_hyphen_values = true)]
        text: Vec<String>,
    },
}

pub async fn run(config: EngineConfig, command: QuestionsCommand) -> anyhow::Result<ExitCode> {
    let db = super::orchestra_db(&config.home)?;
    match command {
        QuestionsCommand::List { json, all } => list(&db, json, all).await,
        QuestionsCommand::Answer { id, text } => answer(&db, &id, &text.join(" ")).await,
    }
}

async fn list(db: &Db, json: bool, all: bool) -> anyhow::Result<ExitCode> {
    let questions = QuestionQueue::new(db.clone()).list(!all).await?;
    if json {
        super::print_json(&questions)?;
        return Ok(ExitCode::SUCCESS);
    }
    if questions.is_empty() {
        super::note(if all { "no questions yet" } else { "no open questions" });
        return Ok(ExitCode::SUCCESS);
    }
    let mut header = vec!["ID", "KIND", "AGE", "SESSION"];
    if all {
        header.push("ANSWERED BY");
    }
    header.push("TITLE");
    let mut rows = vec![header.into_iter().map(String::from).collect::<Vec<_>>()];
    for q in &questions {
        let mut row =
            vec![q.id.clone(), q.kind.to_string(), super::ago(q.created_at), q.session_id.chars().take(8).collect()];
        if all {
            row.push(q.answered_by.as_ref().map_or_else(|| "(open)".into(), ToString::to_string));
        }
        row.push(one_line(&q.title));
        rows.push(row);
    }
    let mut out = std::io::stdout().lock();
    for line in super::table(&rows) {
        writeln!(out, "{line}")?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn answer(db: &Db, id: &str, text: &str) -> anyhow::Result<ExitCode> {
    if text.trim().is_empty() {
        bail!("the answer is empty; say what to answer, e.g. `ratchet questions answer {id} allow`");
    }
    let queue = QuestionQueue::new(db.clone());
    let question = queue
        .get(id)
        .await
        .with_context(|| format!("cannot read question {id}"))?
        .with_context(|| format!("there is no question {id:?}; see the open ones with `ratchet questions list`"))?;
    if !question.is_open() {
        bail!("{}", already_answered(&question));
    }
    let answer = parse_cli_answer(question.kind, text);
    if let (QuestionKind::PlanApproval, Answer::Approve { skip }) = (question.kind, &answer) {
        check_plan_skip(db, &question, skip).await?;
    }
    if !queue.answer(&question.id, answer.clone(), AnsweredBy::Cli).await? {
        let now = queue.get(&question.id).await?.unwrap_or(question);
        bail!("{}", already_answered(&now));
    }
    super::say(&format!(
        "recorded for {} ({}): {}",
        question.id,
        question.kind,
        describe_answer(question.kind, &answer)
    ));
    Ok(ExitCode::SUCCESS)
}

/// Refuses skipping steps the plan does not have, before the answer is recorded (the plan's
/// process would refuse it after, leaving the plan unapproved).
async fn check_plan_skip(db: &Db, question: &QuestionRecord, skip: &[String]) -> anyhow::Result<()> {
    let Some(plan_id) = question.plan_id() else { return Ok(()) };
    match PlanStore::new(db.clone()).get(plan_id).await? {
        Some(stored) => stored.check_skip(skip).map_err(anyhow::Error::msg),
        None => Ok(()),
    }
}

/// Says who answered an answered question, when, and what.
fn already_answered(q: &QuestionRecord) -> String {
    let by = q.answered_by.as_ref().map_or_else(|| "someone".into(), ToString::to_string);
    let when = q.answered_at.map(|at| format!(" {}", super::ago(at))).unwrap_or_default();
    let what = q.answer.as_ref().map(|a| format!(" ({})", describe_answer(q.kind, a))).unwrap_or_default();
    format!("question {} was already answered by {by}{when}{what}; only the first answer counts", q.id)
}

/// What an answer means for a question of `kind`, in words.
pub(super) fn describe_answer(kind: QuestionKind, answer: &Answer) -> String {
    match (kind, answer) {
        (QuestionKind::Permission, Answer::Approve { .. }) => "allowed once".into(),
        (QuestionKind::Permission, Answer::Reject { feedback }) => format!("refused: {}", one_line(feedback)),
        (_, Answer::Approve { skip }) if skip.is_empty() => "approved".into(),
        (_, Answer::Approve { skip }) => format!("approved, skipping {}", skip.join(", ")),
        (_, Answer::Reject { feedback }) => format!("rejected: {}", one_line(feedback)),
        (_, Answer::Text(text)) => format!("answered {:?}", one_line(text)),
        (_, Answer::NoAnswer) => "no answer".into(),
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
