//! `ask_human`: the model (or a worker) asks a person a question and waits for the answer.
//! The question goes to the editor as a form when it can show one, and always into the
//! durable queue (`ratchet questions answer ID TEXT`, autorespond rules); it never times out
//! unless `[questions] timeout_secs` says so, and then the answer is "no answer".

use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::Orchestra;
use super::ask::{Outcome, ask_person};
use super::questions::{Answer, NewQuestion, QuestionKind, QuestionRecord};
use crate::engine::provider::ToolSpec;
use crate::engine::tools::{Preview, Tool, ToolContext, ToolKind, ToolOutput};
use crate::engine::{QuestionAnswer, QuestionForm, ToolCallStatus};

pub(super) struct AskHumanTool {
    pub orchestra: Orchestra,
    /// Put before the question in the queue (`team t3 coder`), so people see who asks.
    pub label: Option<String>,
}

impl Tool for AskHumanTool {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "ask_human".into(),
            description: "Ask the user a question and wait for their answer. Use it when you cannot go on without \
                          a decision or information only they have; otherwise keep working."
                .into(),
            parameters: json!({
                "type": "object",
                "properties": {"question": {"type": "string", "description": "The question, self-contained."}},
                "required": ["question"],
                "additionalProperties": false
            }),
        }
    }

    fn kind(&self) -> ToolKind {
        ToolKind::Think
    }

    fn preview<'a>(&'a self, args: &'a Value, _: &'a ToolContext) -> BoxFuture<'a, Preview> {
        let q = args.get("question").and_then(Value::as_str).unwrap_or("");
        let title = format!("Question: {}", q.lines().next().unwrap_or(""));
        Box::pin(async move { Preview { title, locations: vec![], display: vec![] } })
    }

    fn run<'a>(&'a self, args: Value, cx: &'a ToolContext) -> BoxFuture<'a, ToolOutput> {
        Box::pin(async move {
            let Some(question) = args.get("question").and_then(Value::as_str).map(str::trim).filter(|q| !q.is_empty())
            else {
                return ToolOutput::error("ask_human needs a non-empty `question`");
            };
            match self.ask(question, cx).await {
                Ok(text) => ToolOutput::text(text),
                Err(e) => ToolOutput::error(e),
            }
        })
    }
}

impl AskHumanTool {
    async fn ask(&self, question: &str, cx: &ToolContext) -> Result<String, String> {
        let title = match &self.label {
            Some(label) => format!("[{label}] {question}"),
            None => question.to_string(),
        };
        let new = NewQuestion {
            session_id: cx.turn.session_id().to_string(),
            kind: QuestionKind::Ask,
            title,
            body: json!({ "question": question, "by": self.label }),
            cwd: cx.cwd.clone(),
        };
        let queue = &self.orchestra.inner.questions;
        let call_id = cx.call_id.clone();
        let editor = async {
            match cx.turn.ask(call_id.clone(), question.to_string(), QuestionForm::Text).await {
                QuestionAnswer::Text(t) => Some(Answer::Text(t)),
                QuestionAnswer::Declined => Some(Answer::NoAnswer),
                QuestionAnswer::Approve { .. } => Some(Answer::Text("yes".into())),
                QuestionAnswer::Reject { feedback } => Some(Answer::Text(feedback)),
            }
        };
        // Once queued, the tool call says how to answer from the CLI; then the editor is asked.
        let shown = |record: &QuestionRecord| {
            let qid = record.id.clone();
            let call_id = &call_id;
            async move {
                if let Some(id) = call_id {
                    let text =
                        format!("Waiting for an answer: in the editor, or `ratchet questions answer {qid} TEXT`.");
                    super::fleet::show(cx.turn.as_ref(), id, ToolCallStatus::InProgress, text, None).await;
                }
                editor.await
            }
        };
        let timeout = self.orchestra.inner.config.question_timeout;
        let (record, outcome) = ask_person(queue, new, shown, Answer::clone, &cx.cancel, timeout).await?;
        let (answer, by) = match outcome {
            Outcome::Editor(a) => (a, "the editor".to_string()),
            Outcome::Queue(a, by) => (a, by.to_string()),
            Outcome::Cancelled => return Err("cancelled before anyone answered".into()),
        };
        Ok(match answer {
            Answer::Text(t) => format!("Answer ({by}, question {}): {t}", record.id),
            Answer::Approve { .. } => format!("Answer ({by}, question {}): yes", record.id),
            Answer::Reject { feedback } => format!("Answer ({by}, question {}): {feedback}", record.id),
            Answer::NoAnswer => format!("No answer ({by}, question {}). Decide yourself or stop.", record.id),
        })
    }
}
