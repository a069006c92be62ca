//! `/approve ID [STEP...]` and `/reject ID FEEDBACK` in a chat: answer a plan's open
//! approval question, as `ratchet plans approve|reject` do (`answer_plan`).

use futures::future::BoxFuture;

use super::Orchestra;
use super::plans::PlanStore;
use super::questions::{Answer, AnsweredBy, QuestionQueue};
use crate::engine::SessionRecord;
use crate::engine::commands::CommandInfo;

/// The orchestra's slash commands.
pub const COMMANDS: &[CommandInfo] = &[
    CommandInfo { name: "approve", description: "Approve a proposed plan", hint: Some("plan id, then steps to skip") },
    CommandInfo { name: "reject", description: "Reject a proposed plan", hint: Some("plan id, then what to change") },
    CommandInfo {
        name: "cron",
        description: "Run a prompt in this session on a schedule",
        hint: Some("add \"SCHEDULE\" PROMPT | list | pause ID | resume ID | stop ID"),
    },
    CommandInfo { name: "team", description: "Run a team of agents on a task", hint: Some("team name, then the task") },
];

pub(super) fn run(
    orchestra: &Orchestra,
    session: &SessionRecord,
    name: &str,
    args: &str,
) -> Option<BoxFuture<'static, String>> {
    if name == "cron" {
        return Some(Box::pin(super::cron::chat::answer(orchestra.cron(), session.id.clone(), args.to_string())));
    }
    let (id, rest) = args.split_once(char::is_whitespace).unwrap_or((args, ""));
    let (id, rest) = (id.trim().to_string(), rest.trim().to_string());
    let answer = match name {
        "approve" => {
            Answer::Approve { skip: rest.split([' ', ',']).filter(|s| !s.is_empty()).map(String::from).collect() }
        }
        "reject" if rest.is_empty() => {
            return Some(Box::pin(async { "Say what to change: `/reject ID what to change`.".to_string() }));
        }
        "reject" => Answer::Reject { feedback: rest },
        _ => return None,
    };
    let o = orchestra.clone();
    let name = name.to_string();
    Some(Box::pin(async move {
        if id.is_empty() {
            return format!("Which plan? `/{name} ID …` (see `ratchet plans list`).");
        }
        match answer_plan(&o.inner.plans, &o.inner.questions, &id, answer, AnsweredBy::Editor).await {
            Ok(done) | Err(done) => done,
        }
    }))
}

/// Answers plan `id`'s open approval question. Ok: what was recorded; Err: why not (no such
/// plan, not waiting for approval, an unknown step to skip, or someone answered first).
pub async fn answer_plan(
    plans: &PlanStore,
    queue: &QuestionQueue,
    id: &str,
    answer: Answer,
    by: AnsweredBy,
) -> Result<String, String> {
    let stored = plans
        .get(id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("there is no plan {id}; list them with `ratchet plans list`"))?;
    if let Answer::Approve { skip } = &answer {
        stored.check_skip(skip)?;
    }
    let open = queue.list(true).await.map_err(|e| e.to_string())?;
    let question = open.into_iter().find(|q| q.plan_id() == Some(stored.id.as_str()));
    let Some(question) = question else {
        return Err(format!(
            "plan {} is {}: only a proposed plan waiting for approval can be approved or rejected",
            stored.id,
            stored.plan.status_label()
        ));
    };
    let what = match &answer {
        Answer::Approve { skip } if skip.is_empty() => format!("Approved plan {}.", stored.id),
        Answer::Approve { skip } => format!("Approved plan {}, skipping {}.", stored.id, skip.join(", ")),
        _ => format!("Rejected plan {}.", stored.id),
    };
    if queue.answer(&question.id, answer, by).await.map_err(|e| e.to_string())? {
        Ok(what)
    } else {
        let who = queue.get(&question.id).await.ok().flatten().and_then(|q| q.answered_by);
        Err(format!(
            "plan {} was answered already (by {})",
            stored.id,
            who.map(|w| w.to_string()).unwrap_or_else(|| "someone".into())
        ))
    }
}
