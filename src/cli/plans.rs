//! `ratchet plans list|show|approve|reject`: plans in the orchestra's database, read and
//! answered there directly (no daemon needed). Approving answers the plan's open approval
//! question, which the process running the plan polls, so the plan starts there.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;
use ratchet::engine::config::EngineConfig;
use ratchet::orchestra::db::Db;
use ratchet::orchestra::jobs::JobRegistry;
use ratchet::orchestra::plans::{self, PlanStore, StoredPlan};
use ratchet::orchestra::questions::{Answer, AnsweredBy, QuestionKind, QuestionQueue, QuestionRecord};
use ratchet::orchestra::tasks::{Task, TaskFilter, TaskStore};
use tokio_util::sync::CancellationToken;

#[derive(Subcommand)]
pub enum PlansCommand {
    /// List plans, newest first: id, status, steps done, session, goal.
    List {
        /// Print the stored plans as a JSON array.
        #[arg(long)]
        json: bool,
        /// Only the plans of this session.
        #[arg(long, value_name = "ID")]
        session: Option<String>,
    },
    /// Show a plan's steps, their status, models and tokens.
    Show {
        /// The plan's id (`p3` or `3`, see `ratchet plans list`).
        id: String,
        /// Print the stored plan as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Approve a proposed plan that waits for approval; its session starts executing it.
    Approve {
        id: String,
        /// A step not to run (repeat for more).
        #[arg(long, value_name = "STEP")]
        skip: Vec<String>,
    },
    /// Reject a proposed plan; the feedback goes back to the model, which may revise it.
    Reject {
        id: String,
        /// What to change, for the model.
        #[arg(long, value_name = "TEXT")]
        feedback: String,
    },
}

pub async fn run(config: EngineConfig, command: PlansCommand) -> anyhow::Result<ExitCode> {
    let db = super::orchestra_db(&config.home)?;
    match command {
        PlansCommand::List { json, session } => list(&db, json, session).await,
        PlansCommand::Show { id, json } => show(&db, &id, json).await,
        PlansCommand::Approve { id, skip } => approve(&db, &id, skip).await,
        PlansCommand::Reject { id, feedback } => reject(&db, &id, feedback).await,
    }
}

async fn list(db: &Db, json: bool, session: Option<String>) -> anyhow::Result<ExitCode> {
    let plans = PlanStore::new(db.clone()).list(session.clone()).await?;
    if json {
        super::print_json(&plans)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    for stored in &plans {
        writeln!(out, "{}", plans::one_line(stored))?;
    }
    if plans.is_empty() {
        match session {
            Some(session) => super::note(&format!("session {session} has no plans")),
            None => super::note("no plans yet"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn show(db: &Db, id: &str, json: bool) -> anyhow::Result<ExitCode> {
    let stored = find_plan(db, id).await?;
    let tasks = linked_tasks(db, &stored.id).await?;
    if json {
        let mut value = serde_json::to_value(&stored)?;
        value["tasks"] = serde_json::to_value(&tasks)?;
        super::print_json(&value)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    write!(out, "{}", plans::summary_table(&stored))?;
    if !tasks.is_empty() {
        writeln!(out, "\ntasks:")?;
        for line in super::tasks::task_table(&tasks) {
            writeln!(out, "  {line}")?;
        }
    }
    if let Some(q) = approval_question(db, &stored.id).await? {
        writeln!(
            out,
            "\nwaiting for approval ({}): `ratchet plans approve {id} [--skip STEP]` or `ratchet plans reject {id} --feedback TEXT`",
            q.id,
            id = stored.id
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn approve(db: &Db, id: &str, mut skip: Vec<String>) -> anyhow::Result<ExitCode> {
    let stored = find_plan(db, id).await?;
    let question = waiting_question(db, &stored, "approved").await?;
    let mut seen = std::collections::BTreeSet::new();
    skip.retain(|s| seen.insert(s.clone()));
    stored.check_skip(&skip).map_err(anyhow::Error::msg)?;
    let answer = Answer::Approve { skip: skip.clone() };
    answer_or_explain(db, &question, answer, &stored.id).await?;
    let skipping = if skip.is_empty() { String::new() } else { format!(", skipping {}", skip.join(", ")) };
    super::say(&format!("approved plan {}{skipping}; its session starts executing it", stored.id));
    Ok(ExitCode::SUCCESS)
}

async fn reject(db: &Db, id: &str, feedback: String) -> anyhow::Result<ExitCode> {
    let feedback = feedback.trim().to_string();
    if feedback.is_empty() {
        bail!("the feedback is empty; say what the model should change, e.g. --feedback \"drop step s3\"");
    }
    let stored = find_plan(db, id).await?;
    let question = waiting_question(db, &stored, "rejected").await?;
    answer_or_explain(db, &question, Answer::Reject { feedback }, &stored.id).await?;
    super::say(&format!("rejected plan {}; the model reads your feedback and may propose a revision", stored.id));
    Ok(ExitCode::SUCCESS)
}

/// The tasks of the plan's steps (an approved plan has one per step).
async fn linked_tasks(db: &Db, plan_id: &str) -> anyhow::Result<Vec<Task>> {
    let store = TaskStore::new(db.clone(), JobRegistry::new(db.clone(), CancellationToken::new()));
    Ok(store.list(TaskFilter { plan_id: Some(plan_id.to_string()), ..Default::default() }).await?)
}

/// The plan `id`, or an error saying where to find the plans.
async fn find_plan(db: &Db, id: &str) -> anyhow::Result<StoredPlan> {
    let found = PlanStore::new(db.clone()).get(id).await.with_context(|| format!("cannot read plan {id}"))?;
    found.with_context(|| format!("there is no plan {id:?}; see the plans with `ratchet plans list`"))
}

/// The open approval question of plan `plan_id` (as stored, `p3`), if one waits.
pub(super) async fn approval_question(db: &Db, plan_id: &str) -> anyhow::Result<Option<QuestionRecord>> {
    let open = QuestionQueue::new(db.clone()).list(true).await?;
    Ok(open.into_iter().find(|q| q.plan_id() == Some(plan_id)))
}

/// The open approval question of `stored`, or an error saying why the plan cannot be
/// `action` ("approved", "rejected").
async fn waiting_question(db: &Db, stored: &StoredPlan, action: &str) -> anyhow::Result<QuestionRecord> {
    let questions = QuestionQueue::new(db.clone()).list(false).await?;
    let mut of_plan: Vec<QuestionRecord> =
        questions.into_iter().filter(|q| q.plan_id() == Some(stored.id.as_str())).collect();
    if let Some(open) = of_plan.iter().position(QuestionRecord::is_open) {
        return Ok(of_plan.swap_remove(open));
    }
    let (id, status) = (&stored.id, stored.plan.status_label());
    if status != "proposed" {
        bail!("plan {id} is {status}; only a proposed plan waiting for approval can be {action}");
    }
    // Proposed, yet nothing waits: its question was answered (and the plan's process has not
    // saved the outcome yet), or the turn that asked is gone.
    match of_plan.last() {
        Some(q) if matches!(q.answered_by, Some(AnsweredBy::Withdrawn) | Some(AnsweredBy::Timeout)) => bail!(
            "plan {id} is proposed but nobody waits for its approval any more ({}), so it cannot be {action}; ask the session for the plan again",
            if q.answered_by == Some(AnsweredBy::Timeout) {
                "its question timed out"
            } else {
                "the turn that proposed it was cancelled"
            }
        ),
        Some(q) => bail!("{}; it cannot be {action} now (see `ratchet plans show {id}`)", answered_first(id, q)),
        None => bail!(
            "plan {id} is proposed but nobody waits for its approval (the turn that proposed it ended), so it cannot be {action}; ask the session for the plan again"
        ),
    }
}

/// Says who answered plan `plan_id`'s approval question `q`, when, and how.
fn answered_first(plan_id: &str, q: &QuestionRecord) -> String {
    let by = q.answered_by.as_ref().map_or_else(|| "someone".into(), ToString::to_string);
    let when = q.answered_at.map(|at| format!(" {}", super::ago(at))).unwrap_or_default();
    let what = q
        .answer
        .as_ref()
        .map(|a| format!(": {}", super::questions::describe_answer(QuestionKind::PlanApproval, a)))
        .unwrap_or_default();
    format!("plan {plan_id} was already answered by {by}{when}{what}")
}

/// Records `answer` on `question` by the CLI; if someone answered first, an error saying who.
async fn answer_or_explain(db: &Db, question: &QuestionRecord, answer: Answer, plan_id: &str) -> anyhow::Result<()> {
    let queue = QuestionQueue::new(db.clone());
    if queue.answer(&question.id, answer, AnsweredBy::Cli).await? {
        return Ok(());
    }
    let now = queue.get(&question.id).await?.unwrap_or_else(|| question.clone());
    bail!("{}; nothing changed (see `ratchet plans show {plan_id}`)", answered_first(plan_id, &now));
}
