//! `SqliteReadModel`: the `Projection` port (this file) and the `ReadModelQuery` port (`query.rs`) on
//! the `rm_*` tables.
//!
//! Each apply is one `BEGIN IMMEDIATE` transaction whose account update is conditional on
//! `last_sequence = sequence - 1`: the database, not a read beforehand, decides whether the update is
//! the next one, so two projectors racing on one event apply it once. A batch (`apply_batch`) is the
//! same writes for many events in one such transaction: one commit, one fsync, for all of them.

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
use sqlx::sqlite::SqliteConnection;

use crate::constraint::classify;
use crate::database::{SqliteDatabase, roll_back};
use crate::rows::{storable, unsigned};

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
        let mut transaction = self.db.begin_write().await?;
        match apply_in(&mut transaction, update).await {
            Ok(ApplyOutcome::Applied) => {
                transaction
                    .commit()
                    .await
                    .map_err(StoreError::unavailable)?;
                Ok(ApplyOutcome::Applied)
            }
            // Stale writes nothing: the conditional update matched no row, and we roll back anyway.
            other => {
                roll_back(transaction).await;
                other
            }
        }
    }

    async fn apply_batch(&self, updates: &[ReadModelUpdate]) -> Result<bool, StoreError> {
        if updates.is_empty() {
            return Ok(true);
        }
        let mut transaction = self.db.begin_write().await?;
        for update in updates {
            // Each update's conditional writes see its predecessors' in the same transaction, so
            // several events of one account apply in turn, exactly as one `apply` each would.
            let outcome = if opening_out_of_place(update) {
                Ok(ApplyOutcome::Stale)
            } else {
                apply_in(&mut transaction, update).await
            };
            match outcome {
                Ok(ApplyOutcome::Applied) => {}
                Ok(ApplyOutcome::Stale) => {
                    roll_back(transaction).await;
                    return Ok(false);
                }
                Err(error) => {
                    roll_back(transaction).await;
                    return Err(error);
                }
            }
        }
        transaction
            .commit()
            .await
            .map_err(StoreError::unavailable)?;
        Ok(true)
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

/// The writes of one update, inside the caller's transaction.
pub(crate) async fn apply_in(
    conn: &mut SqliteConnection,
    update: &ReadModelUpdate,
) -> Result<ApplyOutcome, StoreError> {
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
            return insert_opening(conn, update, &opening).await;
        }
        ReadModelChange::Moved(movement) => {
            sqlx::query(
                "UPDATE rm_accounts SET balance = ?1, last_sequence = ?2, updated_at = ?3 \
             WHERE account_id = ?4 AND last_sequence = ?2 - 1",
            )
            .bind(movement.balance_after.to_string())
            .bind(sequence)
            .bind(&occurred_at)
            .bind(account_id)
            .execute(&mut *conn)
            .await
        }
        ReadModelChange::StatusChanged {
            status,
            frozen_reason,
        } => {
            sqlx::query(
                "UPDATE rm_accounts SET status = ?1, frozen_reason = ?2, last_sequence = ?3, \
             updated_at = ?4 WHERE account_id = ?5 AND last_sequence = ?3 - 1",
            )
            .bind(status.as_str())
            .bind(frozen_reason.as_ref().map(FreezeReason::as_str))
            .bind(sequence)
            .bind(&occurred_at)
            .bind(account_id)
            .execute(&mut *conn)
            .await
        }
    }
    .map_err(StoreError::unavailable)?;

    if updated.rows_affected() == 0 {
        return not_next(conn, update).await;
    }
    if let ReadModelChange::Moved(movement) = &update.change {
        insert_movement(conn, &MovementRow::of(&update.account_id, movement)?).await?;
    }
    Ok(ApplyOutcome::Applied)
}

/// The account row of an opening: inserted unless the account is there already.
async fn insert_opening(
    conn: &mut SqliteConnection,
    update: &ReadModelUpdate,
    opening: &OpeningRow<'_>,
) -> Result<ApplyOutcome, StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO rm_accounts (account_id, owner, kind, currency, status, balance, \
         overdraft_limit, frozen_reason, last_sequence, opened_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL, ?8, ?9, ?9) \
         ON CONFLICT (account_id) DO NOTHING",
    )
    .bind(update.account_id.as_str())
    .bind(opening.owner)
    .bind(opening.kind)
    .bind(opening.currency)
    .bind(opening.status)
    .bind(&opening.balance)
    .bind(&opening.overdraft_limit)
    .bind(storable(update.sequence, "sequence")?)
    .bind(format_timestamp(update.occurred_at))
    .execute(&mut *conn)
    .await
    .map_err(StoreError::unavailable)?;
    // No row inserted: the account is already there, so this opening is not the next event.
    Ok(if inserted.rows_affected() == 1 {
        ApplyOutcome::Applied
    } else {
        ApplyOutcome::Stale
    })
}

/// Why a conditional update matched no row. Usually another projector got there first (`Stale`). But
/// with no row at all, a first event that is not an opening is a stream this code cannot have written.
async fn not_next(
    conn: &mut SqliteConnection,
    update: &ReadModelUpdate,
) -> Result<ApplyOutcome, StoreError> {
    let exists = sqlx::query("SELECT 1 FROM rm_accounts WHERE account_id = ?1")
        .bind(update.account_id.as_str())
        .fetch_optional(&mut *conn)
        .await
        .map_err(StoreError::unavailable)?
        .is_some();
    if !exists && update.sequence == 1 {
        return Err(no_account_row(update));
    }
    Ok(ApplyOutcome::Stale)
}

/// The transaction row and the day's closing balance of a money movement.
async fn insert_movement(
    conn: &mut SqliteConnection,
    movement: &MovementRow<'_>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO rm_account_transactions (account_id, sequence, event_id, entry_type, amount, \
         balance_after, transfer_id, counterparty_account_id, description, occurred_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )
    .bind(movement.account_id)
    .bind(movement.sequence)
    .bind(&movement.event_id)
    .bind(movement.entry_type)
    .bind(&movement.amount)
    .bind(&movement.balance_after)
    .bind(movement.transfer_id)
    .bind(movement.counterparty_account_id)
    .bind(movement.description)
    .bind(format_timestamp(movement.occurred_at))
    .execute(&mut *conn)
    .await
    .map_err(|error| {
        if classify(&error).is_some() {
            movement_row_exists(movement.account_id, movement.sequence)
        } else {
            StoreError::unavailable(error)
        }
    })?;

    sqlx::query(
        "INSERT INTO rm_daily_balances (account_id, day, closing_balance, last_sequence) \
         VALUES (?1, ?2, ?3, ?4) ON CONFLICT (account_id, day) DO UPDATE SET \
         closing_balance = excluded.closing_balance, last_sequence = excluded.last_sequence",
    )
    .bind(movement.account_id)
    .bind(days::stored(movement.day)?)
    .bind(&movement.balance_after)
    .bind(movement.sequence)
    .execute(&mut *conn)
    .await
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
