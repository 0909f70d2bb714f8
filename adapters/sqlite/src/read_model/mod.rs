//! `SqliteReadModel`: the `Projection` port (this file) and the `ReadModelQuery` port (`query.rs`) on
//! the `rm_*` tables.
//!
//! Each apply is one job of the database's writer (`writer/`), in the same group commits as the event
//! appends, whose account update is conditional on `last_sequence = sequence - 1`: the database, not
//! a read beforehand, decides whether the update is the next one, so two projectors racing on one
//! event apply it once. A batch (`apply_batch`) is one job too: all its updates or none.

mod days;
mod dead_letters;
mod query;

pub(crate) use days::parse as parse_day;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ledger_application::codec::format_timestamp;
use ledger_application::ports::{
    ApplyOutcome, DeadLetter, DeadLetterId, HealthCheck, Projection, ReadModelChange,
    ReadModelUpdate, StoreError, StoredDeadLetter,
};
use ledger_application::read_model_rows::{
    MovementRow, OpeningRow, movement_row_exists, no_account_row, opening_out_of_place,
};
use ledger_domain::{AccountId, FreezeReason};
use rusqlite::{Connection, params};

use crate::constraint::classify_rusqlite;
use crate::database::SqliteDatabase;
use crate::rows::{storable, unsigned};
use crate::writer::{WriteFailure, execute_cached};

/// The read model of a [`SqliteDatabase`]: `SqliteReadModel::new(&db)` or `db.read_model()`.
/// Cheap to clone; all clones share the database's pools.
#[derive(Debug, Clone)]
pub struct SqliteReadModel {
    db: SqliteDatabase,
}

impl SqliteReadModel {
    pub fn new(db: &SqliteDatabase) -> Self {
        Self { db: db.clone() }
    }
}

#[async_trait]
impl Projection for SqliteReadModel {
    async fn last_sequence(&self, account_id: &AccountId) -> Result<u64, StoreError> {
        let row = sqlx::query("SELECT last_sequence FROM rm_accounts WHERE account_id = ?1")
            .bind(account_id.as_str())
            .fetch_optional(self.db.reader())
            .await
            .map_err(StoreError::unavailable)?;
        row.map_or(Ok(0), |row| unsigned(&row, "last_sequence"))
    }

    async fn apply(&self, update: &ReadModelUpdate) -> Result<ApplyOutcome, StoreError> {
        if opening_out_of_place(update) {
            return Ok(ApplyOutcome::Stale);
        }
        let update = update.clone();
        // Stale writes nothing (the conditional update matched no row), so it is kept as a success;
        // an error rolls the job's savepoint back.
        self.db
            .write_store(move |connection| apply_on(connection, &update))
            .await
    }

    async fn apply_batch(&self, updates: &[ReadModelUpdate]) -> Result<bool, StoreError> {
        if updates.is_empty() {
            return Ok(true);
        }
        let updates = updates.to_vec();
        let applied = self
            .db
            .write(move |connection| apply_all_on(connection, &updates))
            .await;
        match applied {
            Ok(()) => Ok(true),
            // Not every update was next, or one is for the projector to judge on its own (a missing
            // account row, a transaction row already there): the job's savepoint is rolled back and
            // the projector goes event by event.
            Err(WriteFailure::Refused(BatchRefusal::NotNext | BatchRefusal::Judged)) => Ok(false),
            Err(WriteFailure::Refused(BatchRefusal::Store(error))) => Err(error),
            Err(WriteFailure::NotWritten(error) | WriteFailure::OutcomeUnknown(error)) => {
                Err(StoreError::unavailable(error))
            }
        }
    }

    async fn record_dead_letter(&self, letter: &DeadLetter) -> Result<DeadLetterId, StoreError> {
        dead_letters::record(&self.db, letter).await
    }

    async fn dead_letters(&self, limit_to: usize) -> Result<Vec<StoredDeadLetter>, StoreError> {
        dead_letters::open(&self.db, limit_to).await
    }

    async fn dead_letter(&self, id: DeadLetterId) -> Result<Option<StoredDeadLetter>, StoreError> {
        dead_letters::by_id(&self.db, id).await
    }

    async fn blocking_dead_letter(
        &self,
        account_id: &AccountId,
    ) -> Result<Option<StoredDeadLetter>, StoreError> {
        dead_letters::blocking(&self.db, account_id).await
    }

    async fn resolve_dead_letters(
        &self,
        account_id: &AccountId,
        through_sequence: u64,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        dead_letters::resolve(&self.db, account_id, through_sequence, at).await
    }
}

/// Why a batch was refused as a whole.
#[derive(Debug)]
pub(crate) enum BatchRefusal {
    /// An update was not its account's next event at its turn.
    NotNext,
    /// An update the store holds to be impossible (`Corrupt`): applied alone, the projector meets
    /// the same error and decides what becomes of it (a dead letter).
    Judged,
    /// The database failed.
    Store(StoreError),
}

/// Every update in order, each by the rule of [`apply_on`], inside one writer job: the first one
/// that is not next refuses the whole job, whose savepoint then rolls back what the others wrote.
fn apply_all_on(connection: &Connection, updates: &[ReadModelUpdate]) -> Result<(), BatchRefusal> {
    for update in updates {
        // As `SqliteReadModel::apply`: an opening is only ever the first event.
        if opening_out_of_place(update) {
            return Err(BatchRefusal::NotNext);
        }
        match apply_on(connection, update) {
            Ok(ApplyOutcome::Applied) => {}
            Ok(ApplyOutcome::Stale) => return Err(BatchRefusal::NotNext),
            Err(StoreError::Corrupt { .. }) => return Err(BatchRefusal::Judged),
            Err(error) => return Err(BatchRefusal::Store(error)),
        }
    }
    Ok(())
}

/// The writes of one update, on the writer's connection inside the caller's savepoint.
fn apply_on(connection: &Connection, update: &ReadModelUpdate) -> Result<ApplyOutcome, StoreError> {
    let sequence = storable(update.sequence, "sequence")?;
    let account_id = update.account_id.as_str();
    let occurred_at = format_timestamp(update.occurred_at);
    let updated = match &update.change {
        ReadModelChange::Opened {
            owner,
            kind,
            currency,
            overdraft_limit,
        } => {
            let opening = OpeningRow::new(owner, *kind, currency, overdraft_limit);
            return insert_opening(connection, update, &opening);
        }
        ReadModelChange::Moved(movement) => execute_cached(
            connection,
            "UPDATE rm_accounts SET balance = ?1, last_sequence = ?2, updated_at = ?3 \
                 WHERE account_id = ?4 AND last_sequence = ?2 - 1",
            params![
                movement.balance_after.to_string(),
                sequence,
                occurred_at,
                account_id,
            ],
        ),
        ReadModelChange::StatusChanged {
            status,
            frozen_reason,
        } => execute_cached(
            connection,
            "UPDATE rm_accounts SET status = ?1, frozen_reason = ?2, last_sequence = ?3, \
                 updated_at = ?4 WHERE account_id = ?5 AND last_sequence = ?3 - 1",
            params![
                status.as_str(),
                frozen_reason.as_ref().map(FreezeReason::as_str),
                sequence,
                occurred_at,
                account_id,
            ],
        ),
    }
    .map_err(StoreError::unavailable)?;

    if updated == 0 {
        return not_next(connection, update);
    }
    if let ReadModelChange::Moved(movement) = &update.change {
        insert_movement(connection, &MovementRow::of(&update.account_id, movement)?)?;
    }
    Ok(ApplyOutcome::Applied)
}

/// The account row of an opening: inserted unless the account is there already.
fn insert_opening(
    connection: &Connection,
    update: &ReadModelUpdate,
    opening: &OpeningRow<'_>,
) -> Result<ApplyOutcome, StoreError> {
    let sequence = storable(update.sequence, "sequence")?;
    let inserted = execute_cached(
        connection,
        "INSERT INTO rm_accounts (account_id, owner, kind, currency, status, balance, \
             overdraft_limit, frozen_reason, last_sequence, opened_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL, ?8, ?9, ?9) \
             ON CONFLICT (account_id) DO NOTHING",
        params![
            update.account_id.as_str(),
            opening.owner,
            opening.kind,
            opening.currency,
            opening.status,
            opening.balance,
            opening.overdraft_limit,
            sequence,
            format_timestamp(update.occurred_at),
        ],
    )
    .map_err(StoreError::unavailable)?;
    // No row inserted: the account is already there, so this opening is not the next event.
    Ok(if inserted == 1 {
        ApplyOutcome::Applied
    } else {
        ApplyOutcome::Stale
    })
}

/// Why a conditional update matched no row. Usually another projector got there first (`Stale`). But
/// with no row at all, a first event that is not an opening is a stream this code cannot have written.
fn not_next(connection: &Connection, update: &ReadModelUpdate) -> Result<ApplyOutcome, StoreError> {
    let exists = connection
        .prepare_cached("SELECT 1 FROM rm_accounts WHERE account_id = ?1")
        .and_then(|mut statement| statement.exists(params![update.account_id.as_str()]))
        .map_err(StoreError::unavailable)?;
    if !exists && update.sequence == 1 {
        return Err(no_account_row(update));
    }
    Ok(ApplyOutcome::Stale)
}

/// The transaction row and the day's closing balance of a money movement.
fn insert_movement(connection: &Connection, movement: &MovementRow<'_>) -> Result<(), StoreError> {
    execute_cached(
        connection,
        "INSERT INTO rm_account_transactions (account_id, sequence, event_id, entry_type, \
             amount, balance_after, transfer_id, counterparty_account_id, description, \
             occurred_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            movement.account_id,
            movement.sequence,
            movement.event_id,
            movement.entry_type,
            movement.amount,
            movement.balance_after,
            movement.transfer_id,
            movement.counterparty_account_id,
            movement.description,
            format_timestamp(movement.occurred_at),
        ],
    )
    .map_err(|error| {
        if classify_rusqlite(&error).is_some() {
            movement_row_exists(movement.account_id, movement.sequence)
        } else {
            StoreError::unavailable(error)
        }
    })?;

    let day = days::stored(movement.day)?;
    execute_cached(
        connection,
        "INSERT INTO rm_daily_balances (account_id, day, closing_balance, last_sequence) \
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (account_id, day) DO UPDATE SET \
             closing_balance = excluded.closing_balance, last_sequence = excluded.last_sequence",
        params![
            movement.account_id,
            day,
            movement.balance_after,
            movement.sequence,
        ],
    )
    .map_err(StoreError::unavailable)?;
    Ok(())
}

#[async_trait]
impl HealthCheck for SqliteReadModel {
    fn name(&self) -> &'static str {
        "read_model"
    }

    async fn check(&self) -> Result<(), StoreError> {
        self.db.ping().await
    }
}
