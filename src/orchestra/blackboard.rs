//! A team's blackboard: sections of key → value, each entry with its author and a revision.
//! Writes are compare-and-set on the revision, so two agents cannot silently overwrite each
//! other: a new key is written with no revision (or 0), an existing one only with the
//! revision its writer last read; otherwise the write fails with the current entry, to be
//! read and retried. Stored in the orchestra's database, one board per team.

use serde::{Deserialize, Serialize};

use super::db::{Db, DbError, now_ms};

/// Tables of the blackboard.
pub const SCHEMA: &str = "
CREATE TABLE blackboard (
    team       TEXT NOT NULL,
    section    TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    author     TEXT NOT NULL,
    revision   INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (team, section, key)
);
";

/// Largest value one entry holds, in bytes.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;
/// Most entries one board holds.
pub const MAX_ENTRIES: usize = 10_000;

/// One entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub section: String,
    pub key: String,
    pub value: String,
    pub author: String,
    /// 1 for the first write, one more for each write after it.
    pub revision: u64,
    pub updated_at: i64,
}

/// Why a write did not happen.
#[derive(Debug, thiserror::Error)]
pub enum BoardError {
    #[error(
        "{section}/{key} is at revision {}, last written by {} (you gave {given}); read it and write again with revision {}",
        current.revision, current.author, current.revision
    )]
    Conflict { section: String, key: String, given: String, current: Box<Entry> },
    #[error("{section}/{key} does not exist yet (you gave revision {given}); write it without a revision")]
    Missing { section: String, key: String, given: u64 },
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Db(#[from] DbError),
}

/// One team's board.
#[derive(Clone)]
pub struct Blackboard {
    db: Db,
    team: String,
}

impl Blackboard {
    pub fn new(db: Db, team: impl Into<String>) -> Blackboard {
        Blackboard { db, team: team.into() }
    }

    /// Writes `section/key` if `revision` is the entry's current one (`None` or 0: only if it
    /// does not exist yet). Returns the entry as written.
    pub async fn write(
        &self,
        section: &str,
        key: &str,
        value: &str,
        author: &str,
        revision: Option<u64>,
    ) -> Result<Entry, BoardError> {
        for (what, text) in [("section", section), ("key", key)] {
            if text.trim().is_empty() || text.contains('/') || text.len() > 200 {
                return Err(BoardError::Invalid(format!(
                    "the {what} {text:?} must be 1 to 200 characters without '/'"
                )));
            }
        }
        if value.len() > MAX_VALUE_BYTES {
            return Err(BoardError::Invalid(format!(
                "the value is {} bytes; at most {MAX_VALUE_BYTES} fit in one entry: split it over several keys",
                value.len()
            )));
        }
        let (team, section, key, value, author) =
            (self.team.clone(), section.to_string(), key.to_string(), value.to_string(), author.to_string());
        let given = revision.unwrap_or(0);
        self.db
            .call(move |conn| {
                let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let current = read_rows(&tx, &team, Some(&section), Some(&key))?.pop();
                let outcome = match current {
                    Some(current) if current.revision != given => {
                        let given = revision.map_or("no revision".to_string(), |r| format!("revision {r}"));
                        Err(BoardError::Conflict { section, key, given, current: Box::new(current) })
                    }
                    None if given != 0 => Err(BoardError::Missing { section, key, given }),
                    None if count(&tx, &team)? >= MAX_ENTRIES => {
                        Err(BoardError::Invalid(format!("the board holds {MAX_ENTRIES} entries already; reuse keys")))
                    }
                    _ => {
                        let entry = Entry { section, key, value, author, revision: given + 1, updated_at: now_ms() };
                        tx.execute(
                            "INSERT OR REPLACE INTO blackboard (team, section, key, value, author, revision, updated_at)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                            rusqlite::params![
                                team,
                                entry.section,
                                entry.key,
                                entry.value,
                                entry.author,
                                entry.revision as i64,
                                entry.updated_at
                            ],
                        )?;
                        Ok(entry)
                    }
                };
                tx.commit()?;
                Ok(outcome)
            })
            .await?
    }

    /// The entries of `section` (only `key` when given), by key.
    pub async fn read(&self, section: &str, key: Option<&str>) -> Result<Vec<Entry>, DbError> {
        let (team, section, key) = (self.team.clone(), section.to_string(), key.map(str::to_string));
        self.db.call(move |conn| read_rows(conn, &team, Some(&section), key.as_deref())).await
    }

    /// Every entry, by section and key.
    pub async fn list(&self) -> Result<Vec<Entry>, DbError> {
        let team = self.team.clone();
        self.db.call(move |conn| read_rows(conn, &team, None, None)).await
    }
}

fn count(conn: &rusqlite::Connection, team: &str) -> Result<usize, DbError> {
    let n: i64 = conn.query_row("SELECT COUNT(*) FROM blackboard WHERE team = ?1", [team], |r| r.get(0))?;
    Ok(usize::try_from(n).unwrap_or(0))
}

fn read_rows(
    conn: &rusqlite::Connection,
    team: &str,
    section: Option<&str>,
    key: Option<&str>,
) -> Result<Vec<Entry>, DbError> {
    let mut stmt = conn.prepare_cached(
        "SELECT section, key, value, author, revision, updated_at FROM blackboard
         WHERE team = ?1 AND (?2 IS NULL OR section = ?2) AND (?3 IS NULL OR key = ?3)
         ORDER BY section, key",
    )?;
    let rows = stmt.query_map(rusqlite::params![team, section, key], |r| {
        Ok(Entry {
            section: r.get(0)?,
            key: r.get(1)?,
            value: r.get(2)?,
            author: r.get(3)?,
            revision: u64::try_from(r.get::<_, i64>(4)?).unwrap_or(0),
            updated_at: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_are_compare_and_set_on_the_revision() {
        let board = Blackboard::new(Db::memory(), "t1");
        let first = board.write("design", "api", "v1", "architect", None).await.unwrap();
        assert_eq!(first.revision, 1);
        // A second writer who did not read the entry cannot overwrite it.
        let err = board.write("design", "api", "mine", "coder", None).await.unwrap_err();
        assert!(matches!(&err, BoardError::Conflict { current, .. } if current.revision == 1), "{err}");
        assert!(err.to_string().contains("write again with revision 1"), "{err}");
        // Two writers who read revision 1: the first wins, the second must read again.
        let a = board.write("design", "api", "v2", "architect", Some(1)).await.unwrap();
        assert_eq!((a.revision, a.author.as_str()), (2, "architect"));
        let stale = board.write("design", "api", "v2-coder", "coder", Some(1)).await.unwrap_err();
        assert!(matches!(stale, BoardError::Conflict { .. }));
        let retried = board.write("design", "api", "v3", "coder", Some(2)).await.unwrap();
        assert_eq!(retried.revision, 3);
        assert_eq!(board.read("design", Some("api")).await.unwrap()[0].value, "v3");
        assert!(matches!(board.write("design", "new", "x", "a", Some(4)).await, Err(BoardError::Missing { .. })));
    }

    #[tokio::test]
    async fn boards_are_per_team_and_list_by_section_and_key() {
        let db = Db::memory();
        let (a, b) = (Blackboard::new(db.clone(), "a"), Blackboard::new(db, "b"));
        a.write("status", "coder", "working", "coder", None).await.unwrap();
        a.write("design", "z", "1", "architect", None).await.unwrap();
        a.write("design", "b", "2", "architect", None).await.unwrap();
        b.write("status", "coder", "done", "coder", None).await.unwrap();
        let keys: Vec<String> = a.list().await.unwrap().iter().map(|e| format!("{}/{}", e.section, e.key)).collect();
        assert_eq!(keys, ["design/b", "design/z", "status/coder"]);
        assert_eq!(a.read("status", None).await.unwrap()[0].value, "working");
        assert_eq!(b.read("status", None).await.unwrap()[0].value, "done");
        assert!(matches!(a.write("a/b", "k", "v", "x", None).await, Err(BoardError::Invalid(_))));
        let big = "x".repeat(MAX_VALUE_BYTES + 1);
        assert!(a.write("s", "k", &big, "x", None).await.unwrap_err().to_string().contains("split it"));
    }
}
