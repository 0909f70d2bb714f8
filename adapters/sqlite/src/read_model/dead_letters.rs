//! The dead letters of the SQLite read model, in `rm_dead_letters`: recorded once per event (by the
//! application's deduplication key), listed while open, resolved when their events are applied.

use chrono::{DateTime, Utc};
use ledger_application::codec::format_timestamp;
use ledger_application::ports::{DeadLetter, DeadLetterId, StoreError, StoredDeadLetter};
use ledger_application::read_model_rows::{DeadLetterRow, stored_dead_letter};
use ledger_domain::AccountId;

use rusqlite::params;

use crate::database::SqliteDatabase;
use crate::rows::{Columns, bound, limit};
use crate::writer::execute_cached;

/// The columns `stored_dead_letter` reads. A macro, so that `concat!` builds each query as one literal.
macro_rules! letter_columns {
    () => {
        "letter_id, account_id, sequence, event_id, event_type, raw, reason, waiting_behind, \
         recorded_at, resolved_at"
    };
}

/// Inserts the letter, or keeps the letter already recorded under its key: an open one as it is (its
/// first reason stays), a resolved one opened again with the new fields. One write transaction, so
/// the id read back is the id of the row the statement kept.
pub(super) async fn record(
    db: &SqliteDatabase,
    letter: &DeadLetter,
) -> Result<DeadLetterId, StoreError> {
    let letter = letter.clone();
    db.write_store(move |connection| {
        let row = DeadLetterRow::of(&letter)?;
        execute_cached(
            connection,
            "INSERT INTO rm_dead_letters (deduplication_key, account_id, sequence, event_id, \
                 event_type, raw, reason, waiting_behind, recorded_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
                 ON CONFLICT (deduplication_key) DO UPDATE SET account_id = excluded.account_id, \
                 sequence = excluded.sequence, event_id = excluded.event_id, \
                 event_type = excluded.event_type, raw = excluded.raw, reason = excluded.reason, \
                 waiting_behind = excluded.waiting_behind, recorded_at = excluded.recorded_at, \
                 resolved_at = NULL WHERE resolved_at IS NOT NULL",
            params![
                row.deduplication_key,
                row.account_id,
                row.sequence,
                row.event_id,
                row.event_type,
                row.raw,
                row.reason,
                row.waiting_behind,
                format_timestamp(row.recorded_at),
            ],
        )
        .map_err(StoreError::unavailable)?;
        // In the same savepoint, so the id read back is the id of the row the statement kept.
        let kept: i64 = connection
            .prepare_cached("SELECT letter_id FROM rm_dead_letters WHERE deduplication_key = ?1")
            .and_then(|mut statement| {
                statement.query_row(params![row.deduplication_key], |found| found.get(0))
            })
            .map_err(StoreError::unavailable)?;
        u64::try_from(kept)
            .map(DeadLetterId::new)
            .map_err(|_| StoreError::corrupt(format!("dead letter id {kept} is negative")))
    })
    .await
}

pub(super) async fn open(
    db: &SqliteDatabase,
    limit_to: usize,
) -> Result<Vec<StoredDeadLetter>, StoreError> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        letter_columns!(),
        " FROM rm_dead_letters WHERE resolved_at IS NULL ORDER BY letter_id LIMIT ?1"
    ))
    .bind(limit(limit_to))
    .fetch_all(db.reader())
    .await
    .map_err(StoreError::unavailable)?;
    rows.iter()
        .map(|row| stored_dead_letter(&Columns(row)))
        .collect()
}

pub(super) async fn by_id(
    db: &SqliteDatabase,
    id: DeadLetterId,
) -> Result<Option<StoredDeadLetter>, StoreError> {
    let row = sqlx::query(concat!(
        "SELECT ",
        letter_columns!(),
        " FROM rm_dead_letters WHERE letter_id = ?1"
    ))
    .bind(bound(id.get()))
    .fetch_optional(db.reader())
    .await
    .map_err(StoreError::unavailable)?;
    row.map(|row| stored_dead_letter(&Columns(&row)))
        .transpose()
}

pub(super) async fn blocking(
    db: &SqliteDatabase,
    account_id: &AccountId,
) -> Result<Option<StoredDeadLetter>, StoreError> {
    // Letters are committed before the projector moves to the next event, so a reader sees them.
    let row = sqlx::query(concat!(
        "SELECT ",
        letter_columns!(),
        " FROM rm_dead_letters WHERE account_id = ?1 AND resolved_at IS NULL \
         AND waiting_behind IS NULL AND sequence IS NOT NULL ORDER BY sequence LIMIT 1"
    ))
    .bind(account_id.as_str())
    .fetch_optional(db.reader())
    .await
    .map_err(StoreError::unavailable)?;
    row.map(|row| stored_dead_letter(&Columns(&row)))
        .transpose()
}

pub(super) async fn resolve(
    db: &SqliteDatabase,
    account_id: &AccountId,
    through_sequence: u64,
    at: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let at = format_timestamp(at);
    let account_id = account_id.as_str().to_owned();
    let through_sequence = bound(through_sequence);
    let done = db
        .write_statement(
            "UPDATE rm_dead_letters SET resolved_at = ?1 \
                     WHERE account_id = ?2 AND resolved_at IS NULL AND sequence <= ?3",
            (at, account_id, through_sequence),
        )
        .await?;
    Ok(u64::try_from(done).unwrap_or(u64::MAX))
}
