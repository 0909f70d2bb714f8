//! `SqliteEventStore`: the `EventStore` and `EventFeed` ports on the `events` and `idempotency` tables.
//!
//! An append is one job of the database's writer (`writer/`): a savepoint of its own inside the
//! writer's next group commit, answered once that commit has returned. The database's UNIQUE keys,
//! not a read before the write, decide conflicts and duplicates, so the decision and the write are
//! one atomic step even against another process. Reads go through the read pool.

use async_trait::async_trait;
use ledger_application::codec::{self, EncodedEvent, format_timestamp, parse_timestamp};
use ledger_application::ports::{
    AccountPage, AppendError, AtomicAppend, EventFeed, EventStore, EventStoreScan, FeedEntry,
    FeedEvent, HealthCheck, ScanCursor, StoreError, StreamAppend, UndecodableEvent,
};
use ledger_application::{
    IdempotencyRecord, RecordedEvent, RecordedOutcome, RequestFingerprint, ScopedIdempotencyKey,
};
use ledger_domain::AccountId;
use rusqlite::{Connection, OptionalExtension, params};
use sqlx::sqlite::SqliteRow;

use crate::constraint::{Violation, classify_rusqlite};
use crate::database::SqliteDatabase;
use crate::rows::{bound, column, limit, storable, unsigned};
use crate::writer::{WriteFailure, execute_cached};

/// The columns `decode_row` reads, in every query that returns events. A macro, so that `concat!`
/// builds each query as one `&'static str`.
macro_rules! event_columns {
    () => {
        "account_id, sequence, event_id, event_type, schema_version, payload, metadata, recorded_at"
    };
}

/// The event store of a [`SqliteDatabase`]: `SqliteEventStore::new(&db)` or `db.event_store()`.
/// Cheap to clone; all clones share the database's pools.
#[derive(Debug, Clone)]
pub struct SqliteEventStore {
    db: SqliteDatabase,
}

impl SqliteEventStore {
    pub fn new(db: &SqliteDatabase) -> Self {
        Self { db: db.clone() }
    }
}

#[async_trait]
impl EventStore for SqliteEventStore {
    async fn load(
        &self,
        account_id: &AccountId,
        after_sequence: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        // One statement is one snapshot: the tail is whole and consistent, however long.
        let rows = sqlx::query(concat!(
            "SELECT ",
            event_columns!(),
            " FROM events WHERE account_id = ?1 AND sequence > ?2 ORDER BY sequence"
        ))
        .bind(account_id.as_str())
        .bind(bound(after_sequence))
        .fetch_all(self.db.reader())
        .await
        .map_err(StoreError::unavailable)?;
        rows.iter().map(decode_row).collect()
    }

    async fn append(&self, append: AtomicAppend) -> Result<(), AppendError> {
        append.check_size()?;
        // Encode before the job is sent, so that a bad event never holds up other writers.
        let outcome = serde_json::to_string(&append.idempotency().outcome)
            .map_err(|e| StoreError::corrupt(format!("cannot encode a command outcome: {e}")))?;
        let encoded = append
            .events()
            .map(codec::encode)
            .collect::<Result<Vec<_>, StoreError>>()?;

        self.db
            .write(move |connection| insert_append(connection, &append, &outcome, &encoded))
            .await
            .map_err(|failure| match failure {
                WriteFailure::Refused(error) => error,
                WriteFailure::NotWritten(error) => StoreError::unavailable(error).into(),
                // Until COMMIT returns, the batch may or may not be durable: an I/O error during it
                // leaves the outcome to be read back from the idempotency record.
                WriteFailure::OutcomeUnknown(error) => AppendError::outcome_unknown(error),
            })
    }

    async fn idempotency_record(
        &self,
        key: &ScopedIdempotencyKey,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT fingerprint, outcome, recorded_at FROM idempotency \
             WHERE client_request_id = ?1",
        )
        .bind(key.as_str())
        .fetch_optional(self.db.reader())
        .await
        .map_err(StoreError::unavailable)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let outcome: String = column(&row, "outcome")?;
        let outcome: RecordedOutcome = serde_json::from_str(&outcome)
            .map_err(|e| StoreError::corrupt(format!("outcome of idempotency key {key}: {e}")))?;
        Ok(Some(IdempotencyRecord {
            key: key.clone(),
            fingerprint: RequestFingerprint::from_stored(column(&row, "fingerprint")?),
            outcome,
            recorded_at: parse_timestamp(&column::<String>(&row, "recorded_at")?)?,
        }))
    }
}

/// The idempotency record first, then every event, then each stream's predecessor: a taken key
/// therefore reports `DuplicateRequest` even when a sequence is taken too, because the request has
/// already been carried out, and a taken sequence reports `Conflict` before a missing predecessor.
/// Runs as one writer job, in its own savepoint: a refusal rolls back what it wrote.
fn insert_append(
    connection: &Connection,
    append: &AtomicAppend,
    outcome: &str,
    encoded: &[EncodedEvent],
) -> Result<(), AppendError> {
    let record = append.idempotency();
    execute_cached(
        connection,
        "INSERT INTO idempotency (client_request_id, fingerprint, outcome, recorded_at) \
             VALUES (?1, ?2, ?3, ?4)",
        params![
            record.key.as_str(),
            record.fingerprint.as_str(),
            outcome,
            format_timestamp(record.recorded_at),
        ],
    )
    .map_err(|error| match classify_rusqlite(&error) {
        Some(Violation::IdempotencyKey) => AppendError::DuplicateRequest {
            key: record.key.clone(),
        },
        _ => StoreError::unavailable(error).into(),
    })?;

    for (event, encoded) in append.events().zip(encoded) {
        let sequence = storable(encoded.sequence, "sequence")?;
        execute_cached(
            connection,
            "INSERT INTO events (account_id, sequence, event_id, event_type, schema_version, \
                 payload, metadata, recorded_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                encoded.account_id,
                sequence,
                encoded.event_id,
                encoded.event_type,
                i64::from(encoded.schema_version),
                encoded.payload,
                encoded.metadata,
                encoded.recorded_at,
            ],
        )
        .map_err(|error| match classify_rusqlite(&error) {
            Some(Violation::StreamSequence) => AppendError::Conflict {
                account_id: event.account_id.clone(),
            },
            // A reused event id is an id source's fault, not this request's: a retry draws new
            // ids.
            _ => StoreError::unavailable(error).into(),
        })?;
    }

    for stream in append.predecessor_checks() {
        check_predecessor(connection, stream)?;
    }
    Ok(())
}

/// No holes and no time running backwards: event `expected_version` of the stream exists and was not
/// recorded after any of the events appended behind it. Inside the append's write transaction, so no
/// other writer can change the answer before the commit. Timestamps are compared as stored: the fixed
/// width UTC format sorts as time does.
fn check_predecessor(connection: &Connection, stream: &StreamAppend) -> Result<(), AppendError> {
    let expected_version = storable(stream.expected_version, "sequence")?;
    let predecessor_recorded_at: Option<String> = connection
        .prepare_cached("SELECT recorded_at FROM events WHERE account_id = ?1 AND sequence = ?2")
        .and_then(|mut statement| {
            statement
                .query_row(
                    params![stream.account_id.as_str(), expected_version],
                    |row| row.get(0),
                )
                .optional()
        })
        .map_err(StoreError::unavailable)?;
    let Some(predecessor_recorded_at) = predecessor_recorded_at else {
        return Err(AppendError::MissingPredecessor {
            account_id: stream.account_id.clone(),
            expected_version: stream.expected_version,
        });
    };
    let regresses = stream
        .events
        .iter()
        .any(|event| format_timestamp(event.recorded_at()) < predecessor_recorded_at);
    if regresses {
        return Err(AppendError::TimeRegression {
            account_id: stream.account_id.clone(),
        });
    }
    Ok(())
}

#[async_trait]
impl EventFeed for SqliteEventStore {
    async fn read_after(
        &self,
        after_position: u64,
        limit_to: usize,
    ) -> Result<Vec<FeedEvent>, StoreError> {
        // Positions are handed out under the write lock and committed in that order (one writer at a
        // time, in this process and every other), so no later commit can appear below a position
        // already read.
        let rows = sqlx::query(concat!(
            "SELECT global_position, ",
            event_columns!(),
            " FROM events WHERE global_position > ?1 ORDER BY global_position LIMIT ?2"
        ))
        .bind(bound(after_position))
        .bind(limit(limit_to))
        .fetch_all(self.db.reader())
        .await
        .map_err(StoreError::unavailable)?;
        rows.iter()
            .map(|row| {
                let position = unsigned(row, "global_position")?;
                // One row that cannot be decoded is handed out on its own, with its raw columns:
                // failing the read would stall every account behind it.
                let entry = match decode_row(row) {
                    Ok(event) => FeedEntry::Event(event),
                    Err(error) => FeedEntry::Undecodable(undecodable_row(row, &error)),
                };
                Ok(FeedEvent { position, entry })
            })
            .collect()
    }
}

/// An event row that `decode_row` refused, as its raw columns in JSON, with what could be read of
/// its identity.
fn undecodable_row(row: &SqliteRow, error: &StoreError) -> UndecodableEvent {
    use sqlx::Row;
    let text = |name: &str| row.try_get::<Option<String>, _>(name).ok().flatten();
    let integer = |name: &str| row.try_get::<Option<i64>, _>(name).ok().flatten();
    let raw = serde_json::json!({
        "global_position": integer("global_position"),
        "account_id": text("account_id"),
        "sequence": integer("sequence"),
        "event_id": text("event_id"),
        "event_type": text("event_type"),
        "schema_version": integer("schema_version"),
        "payload": text("payload"),
        "metadata": text("metadata"),
        "recorded_at": text("recorded_at"),
    });
    UndecodableEvent {
        account_id: text("account_id").and_then(|id| AccountId::parse(&id).ok()),
        sequence: integer("sequence").and_then(|sequence| u64::try_from(sequence).ok()),
        raw: raw.to_string(),
        error: error.to_string(),
    }
}

/// An event row back into a `RecordedEvent`, through the shared codec only.
fn decode_row(row: &SqliteRow) -> Result<RecordedEvent, StoreError> {
    let account_id: String = column(row, "account_id")?;
    let sequence = unsigned(row, "sequence")?;
    let schema_version: i64 = column(row, "schema_version")?;
    let schema_version = u16::try_from(schema_version).map_err(|_| {
        StoreError::corrupt(format!(
            "event {account_id}/{sequence}: schema version {schema_version} out of range"
        ))
    })?;
    let event = codec::decode(
        &account_id,
        sequence,
        &column::<String>(row, "event_id")?,
        &column::<String>(row, "event_type")?,
        schema_version,
        &column::<String>(row, "payload")?,
        &column::<String>(row, "metadata")?,
    )?;
    // The column duplicates the metadata's timestamp for people and tools reading the table; the two
    // disagreeing means one was changed behind the application's back.
    let recorded_at: String = column(row, "recorded_at")?;
    if recorded_at != format_timestamp(event.recorded_at()) {
        return Err(StoreError::corrupt(format!(
            "event {account_id}/{sequence}: recorded_at column `{recorded_at}` disagrees with its \
             metadata"
        )));
    }
    Ok(event)
}

#[async_trait]
impl HealthCheck for SqliteEventStore {
    fn name(&self) -> &'static str {
        "event_store"
    }

    async fn check(&self) -> Result<(), StoreError> {
        self.db.ping().await
    }
}

/// Accounts in id order (the `UNIQUE (account_id, sequence)` index, at `sequence = 1`: one entry per
/// opened stream); the cursor is the last id of the page.
#[async_trait]
impl EventStoreScan for SqliteEventStore {
    async fn accounts_page(
        &self,
        cursor: Option<&ScanCursor>,
        page_limit: usize,
    ) -> Result<AccountPage, StoreError> {
        // One more row than asked tells whether another page follows, without a second query.
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT account_id FROM events WHERE sequence = 1 AND account_id > ?1 \
             ORDER BY account_id LIMIT ?2",
        )
        .bind(cursor.map_or("", ScanCursor::as_str))
        .bind(limit(page_limit.saturating_add(1)))
        .fetch_all(self.db.reader())
        .await
        .map_err(StoreError::unavailable)?;
        let more = rows.len() > page_limit;
        let accounts = rows
            .into_iter()
            .take(page_limit)
            .map(|(id,)| {
                AccountId::parse(&id)
                    .map_err(|e| StoreError::corrupt(format!("stored account id `{id}`: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let next = match accounts.last() {
            Some(last) if more => Some(ScanCursor::new(last.as_str())),
            _ => None,
        };
        Ok(AccountPage { accounts, next })
    }

    async fn events_page(
        &self,
        account_id: &AccountId,
        after_sequence: u64,
        page_limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            event_columns!(),
            " FROM events WHERE account_id = ?1 AND sequence > ?2 ORDER BY sequence LIMIT ?3"
        ))
        .bind(account_id.as_str())
        .bind(bound(after_sequence))
        .bind(limit(page_limit))
        .fetch_all(self.db.reader())
        .await
        .map_err(StoreError::unavailable)?;
        rows.iter().map(decode_row).collect()
    }
}
