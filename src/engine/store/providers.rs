//! Named provider entries (`ratchet provider add`): the `providers` table and its
//! [`SessionStore`] methods.
//!
//! An entry says how to reach a provider (kind, base URL, model) and which environment
//! variable holds its key; the key itself is never stored. At most one entry is the default
//! (a partial unique index enforces it). Validation (names, kinds) is the engine's job.

use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use serde::{Deserialize, Serialize};

use super::queries::now_ms;
use super::{SessionStore, StoreError};
use crate::engine::provider_kind::ProviderKind;

/// A stored provider entry. `created_at` is Unix milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderRecord {
    pub name: String,
    pub kind: ProviderKind,
    /// The endpoint; `None` means the kind's default.
    pub base_url: Option<String>,
    pub model: String,
    /// The environment variable holding the key; `None` means the kind's usual one.
    pub api_key_env: Option<String>,
    pub is_default: bool,
    pub created_at: i64,
}

/// A provider entry to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewProvider {
    pub name: String,
    pub kind: ProviderKind,
    pub base_url: Option<String>,
    pub model: String,
    pub api_key_env: Option<String>,
}

const COLUMNS: &str = "name, kind, base_url, model, api_key_env, is_default, created_at";

impl SessionStore {
    /// Every provider entry, by name.
    pub async fn providers(&self) -> Result<Vec<ProviderRecord>, StoreError> {
        self.call(list).await
    }

    /// The entry called `name`, if any.
    pub async fn provider(&self, name: &str) -> Result<Option<ProviderRecord>, StoreError> {
        let name = name.to_owned();
        self.call(move |conn| get(conn, &name)).await
    }

    /// The default entry, if one is marked.
    pub async fn default_provider(&self) -> Result<Option<ProviderRecord>, StoreError> {
        self.call(|conn| {
            let sql = format!("SELECT {COLUMNS} FROM providers WHERE is_default = 1");
            conn.query_row(&sql, [], from_row).optional().map_err(unknown_kind)
        })
        .await
    }

    /// Adds an entry (not the default). `None` if the name is taken.
    pub async fn add_provider(&self, new: NewProvider) -> Result<Option<ProviderRecord>, StoreError> {
        self.call(move |conn| add(conn, new)).await
    }

    /// Deletes an entry; returns it as it was, `None` if there was none.
    pub async fn remove_provider(&self, name: &str) -> Result<Option<ProviderRecord>, StoreError> {
        let name = name.to_owned();
        self.call(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let old = get(&tx, &name)?;
            tx.execute("DELETE FROM providers WHERE name = ?1", [&name])?;
            tx.commit()?;
            Ok(old)
        })
        .await
    }

    /// Makes `name` the only default entry; `None` (and no change) if there is no such entry.
    pub async fn set_default_provider(&self, name: &str) -> Result<Option<ProviderRecord>, StoreError> {
        let name = name.to_owned();
        self.call(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if get(&tx, &name)?.is_none() {
                return Ok(None);
            }
            tx.execute("UPDATE providers SET is_default = 0 WHERE is_default = 1", [])?;
            tx.execute("UPDATE providers SET is_default = 1 WHERE name = ?1", [&name])?;
            let record = get(&tx, &name)?;
            tx.commit()?;
            Ok(record)
        })
        .await
    }
}

fn list(conn: &mut Connection) -> Result<Vec<ProviderRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM providers ORDER BY name"))?;
    let rows = stmt.query_map([], from_row)?;
    rows.collect::<rusqlite::Result<_>>().map_err(unknown_kind)
}

fn get(conn: &Connection, name: &str) -> Result<Option<ProviderRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM providers WHERE name = ?1"))?;
    stmt.query_row([name], from_row).optional().map_err(unknown_kind)
}

fn add(conn: &mut Connection, new: NewProvider) -> Result<Option<ProviderRecord>, StoreError> {
    let record = ProviderRecord {
        name: new.name,
        kind: new.kind,
        base_url: new.base_url,
        model: new.model,
        api_key_env: new.api_key_env,
        is_default: false,
        created_at: now_ms(),
    };
    let inserted = conn.execute(
        &format!("INSERT INTO providers ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6) ON CONFLICT (name) DO NOTHING"),
        params![
            record.name,
            record.kind.as_str(),
            record.base_url,
            record.model,
            record.api_key_env,
            record.created_at
        ],
    )?;
    Ok((inserted == 1).then_some(record))
}

/// A stored kind this binary does not know (written by a newer ratchet, or by hand).
#[derive(Debug, thiserror::Error)]
#[error("unknown kind {0:?}")]
struct UnknownKind(String);

fn from_row(row: &Row<'_>) -> rusqlite::Result<ProviderRecord> {
    let kind: String = row.get(1)?;
    let kind = ProviderKind::parse(&kind)
        .ok_or_else(|| rusqlite::Error::FromSqlConversionFailure(1, Type::Text, Box::new(UnknownKind(kind))))?;
    Ok(ProviderRecord {
        name: row.get(0)?,
        kind,
        base_url: row.get(2)?,
        model: row.get(3)?,
        api_key_env: row.get(4)?,
        is_default: row.get::<_, i64>(5)? != 0,
        created_at: row.get(6)?,
    })
}

/// Turns a row's unknown kind into [`StoreError::UnknownProviderKind`], which says what to do.
fn unknown_kind(error: rusqlite::Error) -> StoreError {
    match error {
        rusqlite::Error::FromSqlConversionFailure(idx, ty, source) => match source.downcast::<UnknownKind>() {
            Ok(unknown) => StoreError::UnknownProviderKind(unknown.0),
            Err(source) => rusqlite::Error::FromSqlConversionFailure(idx, ty, source).into(),
        },
        other => other.into(),
    }
}
