//! The dead letters of the PostgreSQL read model, in `dead_letters`: recorded once per event (by the
//! application's deduplication key), listed while open, resolved when their events are applied.

use chrono::{DateTime, Utc};
use ledger_application::EventId;
use ledger_application::ports::{DeadLetter, DeadLetterId, StoreError, StoredDeadLetter};
use ledger_domain::AccountId;
use sqlx::postgres::{PgPool, PgRow};

use crate::rows::{bound, column, limit, parsed_opt, storable, unsigned, unsigned_opt};

/// The columns `stored_letter` reads. A macro, so that `concat!` builds each query as one literal.
macro_rules! letter_columns {
    () => {
        "letter_id, account_id, sequence, event_id, event_type, raw, reason, waiting_behind, \
         recorded_at, resolved_at"
    };
}

/// Inserts the letter, or keeps the letter already recorded under its key: an open one as it is (its
/// first reason stays), a resolved one opened again with the new fields. The statement returns the
/// id when it inserted or reopened; when it kept an open letter, that letter's id is read after it,
/// in the same transaction (READ COMMITTED: the read sees the row the conflict was with).
pub(super) async fn record(pool: &PgPool, letter: &DeadLetter) -> Result<DeadLetterId, StoreError> {
    let key = letter.deduplication_key();
    let sequence = letter
        .sequence
        .map(|sequence| storable(sequence, "sequence"))
        .transpose()?;
    let waiting_behind = letter
        .waiting_behind
        .map(|id| storable(id.get(), "dead letter id"))
        .transpose()?;
    let mut transaction = pool.begin().await.map_err(StoreError::unavailable)?;
    let written = sqlx::query(
        "INSERT INTO dead_letters (deduplication_key, account_id, sequence, event_id, \
         event_type, raw, reason, waiting_behind, recorded_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (deduplication_key) DO UPDATE SET account_id = excluded.account_id, \
         sequence = excluded.sequence, event_id = excluded.event_id, \
         event_type = excluded.event_type, raw = excluded.raw, reason = excluded.reason, \
         waiting_behind = excluded.waiting_behind, recorded_at = excluded.recorded_at, \
         resolved_at = NULL WHERE dead_letters.resolved_at IS NOT NULL \
         RETURNING letter_id",
    )
    .bind(&key)
    .bind(letter.account_id.as_ref().map(AccountId::as_str))
    .bind(sequence)
    .bind(letter.event_id.map(|id| id.to_string()))
    .bind(letter.event_type.as_deref())
    .bind(&letter.raw)
    .bind(&letter.reason)
    .bind(waiting_behind)
    .bind(letter.recorded_at)
    .fetch_optional(&mut *transaction)
    .await
    .map_err(StoreError::unavailable)?;
    let row = match written {
        Some(row) => row,
        None => sqlx::query("SELECT letter_id FROM dead_letters WHERE deduplication_key = $1")
            .bind(&key)
            .fetch_one(&mut *transaction)
            .await
            .map_err(StoreError::unavailable)?,
    };
    transaction
        .commit()
        .await
        .map_err(StoreError::unavailable)?;
    unsigned(&row, "letter_id").map(DeadLetterId::new)
}

pub(super) async fn open(
    pool: &PgPool,
    limit_to: usize,
) -> Result<Vec<StoredDeadLetter>, StoreError> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        letter_columns!(),
        " FROM dead_letters WHERE resolved_at IS NULL ORDER BY letter_id LIMIT $1"
    ))
    .bind(limit(limit_to))
    .fetch_all(pool)
    .await
    .map_err(StoreError::unavailable)?;
    rows.iter().map(stored_letter).collect()
}

pub(super) async fn by_id(
    pool: &PgPool,
    id: DeadLetterId,
) -> Result<Option<StoredDeadLetter>, StoreError> {
    let row = sqlx::query(concat!(
        "SELECT ",
        letter_columns!(),
        " FROM dead_letters WHERE letter_id = $1"
    ))
    .bind(bound(id.get()))
    .fetch_optional(pool)
    .await
    .map_err(StoreError::unavailable)?;
    row.as_ref().map(stored_letter).transpose()
}

pub(super) async fn blocking(
    pool: &PgPool,
    account_id: &AccountId,
) -> Result<Option<StoredDeadLetter>, StoreError> {
    let row = sqlx::query(concat!(
        "SELECT ",
        letter_columns!(),
        " FROM dead_letters WHERE account_id = $1 AND resolved_at IS NULL \
         AND waiting_behind IS NULL AND sequence IS NOT NULL ORDER BY sequence LIMIT 1"
    ))
    .bind(account_id.as_str())
    .fetch_optional(pool)
    .await
    .map_err(StoreError::unavailable)?;
    row.as_ref().map(stored_letter).transpose()
}

pub(super) async fn resolve(
    pool: &PgPool,
    account_id: &AccountId,
    through_sequence: u64,
    at: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "UPDATE dead_letters SET resolved_at = $1 \
         WHERE account_id = $2 AND resolved_at IS NULL AND sequence <= $3",
    )
    .bind(at)
    .bind(account_id.as_str())
    .bind(bound(through_sequence))
    .execute(pool)
    .await
    .map_err(StoreError::unavailable)?;
    Ok(done.rows_affected())
}

fn stored_letter(row: &PgRow) -> Result<StoredDeadLetter, StoreError> {
    Ok(StoredDeadLetter {
        id: DeadLetterId::new(unsigned(row, "letter_id")?),
        letter: DeadLetter {
            account_id: parsed_opt(row, "account_id", AccountId::parse)?,
            sequence: unsigned_opt(row, "sequence")?,
            event_id: parsed_opt(row, "event_id", |text| {
                EventId::parse(text).ok_or("not a UUID")
            })?,
            event_type: column(row, "event_type")?,
            raw: column(row, "raw")?,
            reason: column(row, "reason")?,
            waiting_behind: unsigned_opt(row, "waiting_behind")?.map(DeadLetterId::new),
            recorded_at: column(row, "recorded_at")?,
        },
        resolved_at: column(row, "resolved_at")?,
    })
}
