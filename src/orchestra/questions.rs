//! The durable question queue: every question for a person (a plan approval, a worker's
//! permission question, the model's `ask_human`) is one row in the orchestra's database, so
//! it can be answered from the editor, from `ratchet questions answer` in another process, or
//! by an autorespond rule (`super::autorespond`), whichever comes first.
//!
//! The first answer wins, exactly once, across processes: [`QuestionQueue::answer`] is one
//! `UPDATE … WHERE answer IS NULL`, and SQLite serialises writers. A question never times out
//! into "allow": with no timeout it waits forever, and a configured timeout records an
//! explicit [`Answer::NoAnswer`] by [`AnsweredBy::Timeout`].

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::db::{Db, DbError, now_ms};

/// Tables of the question queue. `body` and `answer` are JSON; a question is open while its
/// `answer` is NULL, which the partial index keeps cheap to list.
pub const SCHEMA: &str = "
CREATE TABLE questions (
    id          INTEGER PRIMARY KEY,
    session_id  TEXT NOT NULL,
    kind        TEXT NOT NULL,
    title       TEXT NOT NULL,
    body        TEXT NOT NULL,
    cwd         TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    answer      TEXT,
    answered_by TEXT,
    answered_at INTEGER
);
CREATE INDEX questions_open ON questions(id) WHERE answer IS NULL;
";

/// How often a waiter reads the database for an answer written by another process (answers
/// from this process wake it at once).
pub const ANSWER_POLL: Duration = Duration::from_millis(250);

/// What a question is about, which decides how an answer's text is read
/// ([`parse_cli_answer`]) and what an autorespond rule's action means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuestionKind {
    /// A worker asks to run a tool: Approve allows it once, Reject refuses it.
    Permission,
    /// A plan waits for approval, perhaps with steps skipped.
    PlanApproval,
    /// The model's `ask_human`: answered with text.
    Ask,
}

impl QuestionKind {
    /// The stored (and `--json`) form.
    pub fn as_str(self) -> &'static str {
        match self {
            QuestionKind::Permission => "permission",
            QuestionKind::PlanApproval => "plan_approval",
            QuestionKind::Ask => "ask",
        }
    }

    /// The kind from its stored form.
    pub fn parse(text: &str) -> Option<QuestionKind> {
        match text {
            "permission" => Some(QuestionKind::Permission),
            "plan_approval" => Some(QuestionKind::PlanApproval),
            "ask" => Some(QuestionKind::Ask),
            _ => None,
        }
    }
}

impl fmt::Display for QuestionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A question to put to people.
#[derive(Debug, Clone, PartialEq)]
pub struct NewQuestion {
    pub session_id: String,
    pub kind: QuestionKind,
    /// The one line people and rules see (for [`QuestionKind::Ask`]: the question itself).
    pub title: String,
    /// Whatever the asker needs to show or to act on the answer (the plan, the tool call).
    pub body: serde_json::Value,
    /// The working directory of the session that asks (where its autorespond rules live).
    pub cwd: PathBuf,
}

/// An answer. On a [`QuestionKind::Permission`] question `Approve` means "allow once" and
/// `Reject` means refuse; `NoAnswer` is what a timeout or a withdrawal records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum Answer {
    Approve { skip: Vec<String> },
    Reject { feedback: String },
    Text(String),
    NoAnswer,
}

/// Who answered. Stored and shown as `editor`, `cli`, `rule: <name>`, `timeout`, `withdrawn`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnsweredBy {
    Editor,
    Cli,
    /// An autorespond rule, named as `super::autorespond::Decision` names it.
    Rule(String),
    /// The configured timeout ran out first.
    Timeout,
    /// Nobody needs the answer any more (the turn that asked was cancelled).
    Withdrawn,
}

impl AnsweredBy {
    /// Who answered, from the stored form.
    pub fn parse(text: &str) -> Option<AnsweredBy> {
        match text {
            "editor" => Some(AnsweredBy::Editor),
            "cli" => Some(AnsweredBy::Cli),
            "timeout" => Some(AnsweredBy::Timeout),
            "withdrawn" => Some(AnsweredBy::Withdrawn),
            _ => text.strip_prefix("rule: ").map(|name| AnsweredBy::Rule(name.to_string())),
        }
    }
}

impl fmt::Display for AnsweredBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnsweredBy::Editor => f.write_str("editor"),
            AnsweredBy::Cli => f.write_str("cli"),
            AnsweredBy::Rule(name) => write!(f, "rule: {name}"),
            AnsweredBy::Timeout => f.write_str("timeout"),
            AnsweredBy::Withdrawn => f.write_str("withdrawn"),
        }
    }
}

impl Serialize for AnsweredBy {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AnsweredBy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        AnsweredBy::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown answerer {text:?}: expected editor, cli, rule: <name>, timeout or withdrawn"
            ))
        })
    }
}

/// A stored question, open or answered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuestionRecord {
    /// `q<rowid>`, the id people type.
    pub id: String,
    pub session_id: String,
    pub kind: QuestionKind,
    pub title: String,
    pub body: serde_json::Value,
    pub cwd: PathBuf,
    /// Unix milliseconds.
    pub created_at: i64,
    pub answer: Option<Answer>,
    pub answered_by: Option<AnsweredBy>,
    /// Unix milliseconds.
    pub answered_at: Option<i64>,
}

impl QuestionRecord {
    /// The plan a plan-approval question is about (`body.plan_id`).
    pub fn plan_id(&self) -> Option<&str> {
        (self.kind == QuestionKind::PlanApproval).then(|| self.body.get("plan_id").and_then(|v| v.as_str())).flatten()
    }

    /// Still waiting for an answer.
    pub fn is_open(&self) -> bool {
        self.answer.is_none()
    }
}

/// The row id of a question id as people type it: `q12` or `12`. `None` when it is neither.
pub fn parse_id(id: &str) -> Option<i64> {
    let id = id.trim();
    let digits = id.strip_prefix('q').or_else(|| id.strip_prefix('Q')).unwrap_or(id);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The queue. Clone it rather than making a second one in the same process: clones share the
/// wake-up that tells waiters at once about answers given here (a second queue would see them
/// only at the next poll, as it sees other processes' answers).
#[derive(Clone)]
pub struct QuestionQueue {
    db: Db,
    answered: Arc<Notify>,
    /// Told of every question queued here (the `question_asked` hooks).
    observer: Option<AskObserver>,
}

/// Called with each question as it is queued; must not block.
pub type AskObserver = Arc<dyn Fn(&QuestionRecord) + Send + Sync>;

const COLUMNS: &str = "id, session_id, kind, title, body, cwd, created_at, answer, answered_by, answered_at";

impl QuestionQueue {
    pub fn new(db: Db) -> Self {
        QuestionQueue { db, answered: Arc::new(Notify::new()), observer: None }
    }

    /// This queue, telling `observer` of every question it queues.
    pub fn observed(self, observer: AskObserver) -> Self {
        QuestionQueue { observer: Some(observer), ..self }
    }

    /// Stores a question (it is in the database when this returns) and gives back its record.
    pub async fn ask(&self, q: NewQuestion) -> Result<QuestionRecord, DbError> {
        let body = serde_json::to_string(&q.body).map_err(|e| DbError::Corrupt(e.to_string()))?;
        let cwd = q.cwd.to_string_lossy().into_owned();
        let created_at = now_ms();
        let (session_id, title, kind) = (q.session_id.clone(), q.title.clone(), q.kind);
        let rowid = self
            .db
            .call(move |conn| {
                conn.execute(
                    "INSERT INTO questions (session_id, kind, title, body, cwd, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![session_id, kind.as_str(), title, body, cwd, created_at],
                )?;
                Ok(conn.last_insert_rowid())
            })
            .await?;
        let record = QuestionRecord {
            id: format!("q{rowid}"),
            session_id: q.session_id,
            kind: q.kind,
            title: q.title,
            body: q.body,
            cwd: q.cwd,
            created_at,
            answer: None,
            answered_by: None,
            answered_at: None,
        };
        if let Some(observer) = &self.observer {
            observer(&record);
        }
        Ok(record)
    }

    /// Answers question `id` (`q12` or `12`) unless it already has an answer. True if this
    /// answer won; false if another came first or there is no such question.
    pub async fn answer(&self, id: &str, answer: Answer, by: AnsweredBy) -> Result<bool, DbError> {
        let Some(rowid) = parse_id(id) else { return Ok(false) };
        let answer = serde_json::to_string(&answer).map_err(|e| DbError::Corrupt(e.to_string()))?;
        let by = by.to_string();
        let at = now_ms();
        let changed = self
            .db
            .call(move |conn| {
                Ok(conn.execute(
                    "UPDATE questions SET answer = ?1, answered_by = ?2, answered_at = ?3
                     WHERE id = ?4 AND answer IS NULL",
                    params![answer, by, at, rowid],
                )?)
            })
            .await?;
        if changed == 1 {
            self.answered.notify_waiters();
        }
        Ok(changed == 1)
    }

    /// Waits for question `id`'s answer: at once for answers given through this queue (or a
    /// clone), within [`ANSWER_POLL`] for answers from other processes. `None` if `cancel`
    /// fires first. When `timeout` runs out, records [`Answer::NoAnswer`] by
    /// [`AnsweredBy::Timeout`] (through [`Self::answer`], so a real answer that raced it still
    /// wins) and returns whichever answer won. An unknown id is an error, not a wait forever.
    pub async fn wait(
        &self,
        id: &str,
        cancel: &CancellationToken,
        timeout: Option<Duration>,
    ) -> Result<Option<(Answer, AnsweredBy)>, DbError> {
        let rowid = parse_id(id).ok_or(DbError::Sqlite(rusqlite::Error::QueryReturnedNoRows))?;
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        loop {
            // Registered before the read, so an answer given between the read and the select
            // still wakes this waiter.
            let answered = self.answered.notified();
            tokio::pin!(answered);
            answered.as_mut().enable();
            if let Some(found) = self.answer_of(rowid).await? {
                return Ok(Some(found));
            }
            tokio::select! {
                biased;
                _ = cancel.cancelled() => return Ok(None),
                _ = &mut answered => {}
                _ = tokio::time::sleep(ANSWER_POLL) => {}
                _ = sleep_until(deadline) => {
                    self.answer(id, Answer::NoAnswer, AnsweredBy::Timeout).await?;
                    return self.answer_of(rowid).await?.map(Some).ok_or_else(|| {
                        DbError::Corrupt(format!("question q{rowid} has no answer right after its timeout"))
                    });
                }
            }
        }
    }

    /// Answers a question nobody needs any more (its turn was cancelled) with
    /// [`Answer::NoAnswer`] by [`AnsweredBy::Withdrawn`], so it is no longer listed as open.
    /// False if it had an answer already.
    pub async fn withdraw(&self, id: &str) -> Result<bool, DbError> {
        self.answer(id, Answer::NoAnswer, AnsweredBy::Withdrawn).await
    }

    /// Question `id` (`q12` or `12`), if there is one.
    pub async fn get(&self, id: &str) -> Result<Option<QuestionRecord>, DbError> {
        let Some(rowid) = parse_id(id) else { return Ok(None) };
        self.db
            .call(move |conn| {
                let sql = format!("SELECT {COLUMNS} FROM questions WHERE id = ?1");
                let raw = conn.query_row(&sql, [rowid], RawRow::read).optional()?;
                raw.map(RawRow::into_record).transpose()
            })
            .await
    }

    /// The questions, oldest first: only the open ones, or all.
    pub async fn list(&self, open_only: bool) -> Result<Vec<QuestionRecord>, DbError> {
        self.db
            .call(move |conn| {
                let filter = if open_only { "WHERE answer IS NULL" } else { "" };
                let sql = format!("SELECT {COLUMNS} FROM questions {filter} ORDER BY id");
                let mut stmt = conn.prepare(&sql)?;
                let raws = stmt.query_map([], RawRow::read)?.collect::<Result<Vec<_>, _>>()?;
                raws.into_iter().map(RawRow::into_record).collect()
            })
            .await
    }

    /// The answer of question `rowid`, if it has one; an error if there is no such question.
    async fn answer_of(&self, rowid: i64) -> Result<Option<(Answer, AnsweredBy)>, DbError> {
        self.db
            .call(move |conn| {
                let (answer, by): (Option<String>, Option<String>) =
                    conn.query_row("SELECT answer, answered_by FROM questions WHERE id = ?1", [rowid], |row| {
                        Ok((row.get(0)?, row.get(1)?))
                    })?;
                let Some(answer) = answer else { return Ok(None) };
                let answer = parse_answer(rowid, &answer)?;
                let by = parse_answered_by(rowid, by.as_deref().unwrap_or(""))?;
                Ok(Some((answer, by)))
            })
            .await
    }
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// A row as stored, before its text columns are parsed.
struct RawRow {
    id: i64,
    session_id: String,
    kind: String,
    title: String,
    body: String,
    cwd: String,
    created_at: i64,
    answer: Option<String>,
    answered_by: Option<String>,
    answered_at: Option<i64>,
}

impl RawRow {
    fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawRow> {
        Ok(RawRow {
            id: row.get(0)?,
            session_id: row.get(1)?,
            kind: row.get(2)?,
            title: row.get(3)?,
            body: row.get(4)?,
            cwd: row.get(5)?,
            created_at: row.get(6)?,
            answer: row.get(7)?,
            answered_by: row.get(8)?,
            answered_at: row.get(9)?,
        })
    }

    fn into_record(self) -> Result<QuestionRecord, DbError> {
        let id = self.id;
        let kind = QuestionKind::parse(&self.kind)
            .ok_or_else(|| DbError::Corrupt(format!("question q{id} has unknown kind {:?}", self.kind)))?;
        let body = serde_json::from_str(&self.body)
            .map_err(|e| DbError::Corrupt(format!("question q{id}'s body is not JSON: {e}")))?;
        let answer = self.answer.as_deref().map(|a| parse_answer(id, a)).transpose()?;
        let answered_by = self.answered_by.as_deref().map(|b| parse_answered_by(id, b)).transpose()?;
        Ok(QuestionRecord {
            id: format!("q{id}"),
            session_id: self.session_id,
            kind,
            title: self.title,
            body,
            cwd: PathBuf::from(self.cwd),
            created_at: self.created_at,
            answer,
            answered_by,
            answered_at: self.answered_at,
        })
    }
}

fn parse_answer(rowid: i64, text: &str) -> Result<Answer, DbError> {
    serde_json::from_str(text).map_err(|e| DbError::Corrupt(format!("question q{rowid}'s answer {text:?}: {e}")))
}

fn parse_answered_by(rowid: i64, text: &str) -> Result<AnsweredBy, DbError> {
    AnsweredBy::parse(text).ok_or_else(|| DbError::Corrupt(format!("question q{rowid} answered by unknown {text:?}")))
}

/// Words that approve a permission or a plan (any case).
const APPROVING: &[&str] = &["allow", "yes", "y", "approve", "ok"];

/// How `ratchet questions answer ID TEXT` reads TEXT, by the question's kind:
///
/// - permission: `allow`, `yes`, `y`, `approve` or `ok` (any case) allows the tool call once;
///   anything else refuses it, and the text is the feedback the model reads.
/// - plan approval: `approve` (or `yes`, `y`, `ok`, `allow`) approves the plan;
///   `approve skip s2 s3` approves it without steps s2 and s3 (commas also separate ids);
///   anything else rejects it, and the text is the feedback the model reads.
/// - ask: the text is the answer, as typed.
///
/// Nothing but those exact forms approves: "approve, but fix the tests first" rejects with
/// that feedback.
pub fn parse_cli_answer(kind: QuestionKind, text: &str) -> Answer {
    let reject = || Answer::Reject { feedback: text.trim().to_string() };
    let approving = |word: &str| APPROVING.iter().any(|a| a.eq_ignore_ascii_case(word));
    match kind {
        QuestionKind::Ask => Answer::Text(text.to_string()),
        QuestionKind::Permission if approving(text.trim()) => Answer::Approve { skip: vec![] },
        QuestionKind::Permission => reject(),
        QuestionKind::PlanApproval => {
            let mut words = text.split(|c: char| c.is_whitespace() || c == ',').filter(|w| !w.is_empty());
            match (words.next(), words.next()) {
                (Some(first), None) if approving(first) => Answer::Approve { skip: vec![] },
                (Some(first), Some(skip)) if approving(first) && skip.eq_ignore_ascii_case("skip") => {
                    Answer::Approve { skip: words.map(str::to_string).collect() }
                }
                _ => reject(),
            }
        }
    }
}

#[cfg(test)]
mod tests;
