//! `PostgresReadModel`: the `Projection` port (this file), `ReadModelQuery` (`query.rs`) and dead
//! letters (`dead_letters.rs`) on PostgreSQL.
//!
//! Each apply is one transaction whose account update is conditional on `last_sequence = sequence - 1`.
//! Under READ COMMITTED a second projector's UPDATE of the same row waits for the first to commit,
//! then re-checks its condition against the committed row, matches nothing and is `Stale`: the event
//! is applied once. A batch (`apply_batch`, `batch.rs`) writes the same rows for many events in
//! one transaction of a few multi-row statements: one commit and a handful of round trips for all.
//!
//! Money crosses the boundary as its exact decimal text (`$n::numeric` in, `column::text` out) and is
//! read back through the domain's parsers. Not as sqlx's `Decimal` mapping: that one drops the scale
//! of a zero (`0.00` is sent and read as `0`), and the read model must answer `"0.00"` exactly as
//! it was written, as the SQLite one does.

mod batch;
mod dead_letters;
mod query;

pub use query::LAST_TRANSACTION_AT_OR_BEFORE;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ledger_application::ports::{
    ApplyOutcome, DeadLetter, DeadLetterId, HealthCheck, Projection, ReadModelChange,
    ReadModelUpdate, StoreError, StoredDeadLetter,
};
use ledger_application::read_model_rows::{
    MovementRow, OpeningRow, movement_row_exists, no_account_row, opening_out_of_place,
};
use ledger_domain::{AccountId, FreezeReason};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};

use crate::rows::{storable, unsigned};

/// Connections per process: the projector applies one event at a time and queries are single
/// statements, so a few suffice, and many API tasks share one server's connection limit.
const MAX_CONNECTIONS: u32 = 8;

/// How long a caller waits for a free connection (or for the server to answer a new one) before
/// the port reports the read model unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// The read model in one PostgreSQL database. Cheap to clone; clones share the pool.
#[derive(Debug, Clone)]
pub struct PostgresReadModel {
    pool: PgPool,
    /// Pools on the same database with options of their own (the rebuild's fresh model), which
    /// must log in as this pool does: [`PostgresReadModel::set_credentials`] changes theirs too.
    /// The mutex also orders a derived pool's creation against a change of credentials, so that
    /// none is made with the old password and registered after the change.
    derived_pools: Arc<Mutex<Vec<PgPool>>>,
}

impl PostgresReadModel {
    /// Connects to `database_url` (`postgres://user@host:port/database`). Applies no migration:
    /// call [`PostgresReadModel::migrate`] (or `ledger migrate`) for that.
    pub async fn connect(database_url: &str) -> Result<Self, StoreError> {
        let options: PgConnectOptions = database_url.parse().map_err(StoreError::unavailable)?;
        Self::connect_with(options).await
    }

    pub async fn connect_with(options: PgConnectOptions) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(StoreError::unavailable)?;
        Ok(Self::from_pool(pool))
    }

    /// A read model on a pool the caller built.
    pub fn from_pool(pool: PgPool) -> Self {
        Self {
            pool,
            derived_pools: Arc::default(),
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The projectors' positions, in this read model's database (and pool) but not part of it.
    pub fn checkpoints(&self) -> crate::PostgresCheckpoints {
        crate::PostgresCheckpoints::from_pool(self.pool.clone())
    }

    /// The projector lease `name` in this read model's database, on a connection of its own (not
    /// one of this pool's), opened with the pool's connect options of the moment (so with the
    /// credentials of the last [`PostgresReadModel::set_credentials`]).
    pub fn projector_lease(&self, name: impl Into<String>) -> crate::PostgresProjectorLease {
        crate::PostgresProjectorLease::new(self.pool.clone(), name)
    }

    /// A pool of `pool_options` on this database, with this pool's connect options as `adjust`
    /// changes them (e.g. another `search_path`), that follows this pool's credentials from now on.
    /// Lazy: its first use connects (and reports a failure to).
    pub fn derived_pool(
        &self,
        pool_options: PgPoolOptions,
        adjust: impl FnOnce(PgConnectOptions) -> PgConnectOptions,
    ) -> PgPool {
        let mut derived_pools = self
            .derived_pools
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let pool =
            pool_options.connect_lazy_with(adjust(self.pool.connect_options().as_ref().clone()));
        derived_pools.retain(|derived| !derived.is_closed());
        derived_pools.push(pool.clone());
        pool
    }

    /// Logs in as `username` with `password` from now on, on this pool and every derived one: each
    /// new connection uses them; those open stay as they are (the server does not end a session
    /// when its role's password changes) until they are retired. Everything else in the connect
    /// options (host, TLS, `search_path`, ...) is kept.
    pub fn set_credentials(&self, username: &str, password: &str) {
        let derived_pools = self
            .derived_pools
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for pool in std::iter::once(&self.pool).chain(derived_pools.iter()) {
            let options = pool.connect_options().as_ref().clone();
            pool.set_connect_options(options.username(username).password(password));
        }
    }

    /// Applies the embedded migrations the database lacks (see [`crate::migrate`]).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        crate::migrate(&self.pool).await
    }

    /// Closes every connection, waiting for those in use to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[async_trait]
impl Projection for PostgresReadModel {
    async fn last_sequence(&self, account_id: &AccountId) -> Result<u64, StoreError> {
        let row = sqlx::query("SELECT last_sequence FROM accounts WHERE account_id = $1")
            .bind(account_id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::unavailable)?;
        row.map_or(Ok(0), |row| unsigned(&row, "last_sequence"))
    }

    async fn apply(&self, update: &ReadModelUpdate) -> Result<ApplyOutcome, StoreError> {
        if opening_out_of_place(update) {
            return Ok(ApplyOutcome::Stale);
        }
        let mut transaction = self.pool.begin().await.map_err(StoreError::unavailable)?;
        match apply_in(&mut transaction, update).await {
            Ok(ApplyOutcome::Applied) => {
                transaction
                    .commit()
                    .await
                    .map_err(StoreError::unavailable)?;
                Ok(ApplyOutcome::Applied)
            }
            // Stale wrote nothing; an error may have written part: both roll back.
            other => {
                roll_back(transaction).await;
                other
            }
        }
    }

    async fn apply_batch(&self, updates: &[ReadModelUpdate]) -> Result<bool, StoreError> {
        batch::apply(&self.pool, updates).await
    }

    async fn record_dead_letter(&self, letter: &DeadLetter) -> Result<DeadLetterId, StoreError> {
        dead_letters::record(&self.pool, letter).await
    }

    async fn dead_letters(&self, limit_to: usize) -> Result<Vec<StoredDeadLetter>, StoreError> {
        dead_letters::open(&self.pool, limit_to).await
    }

    async fn dead_letter(&self, id: DeadLetterId) -> Result<Option<StoredDeadLetter>, StoreError> {
        dead_letters::by_id(&self.pool, id).await
    }

    async fn blocking_dead_letter(
        &self,
        account_id: &AccountId,
    ) -> Result<Option<StoredDeadLetter>, StoreError> {
        dead_letters::blocking(&self.pool, account_id).await
    }

    async fn resolve_dead_letters(
        &self,
        account_id: &AccountId,
        through_sequence: u64,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        dead_letters::resolve(&self.pool, account_id, through_sequence, at).await
    }
}

/// Ends a read-model write transaction that must leave nothing behind.
async fn roll_back(transaction: sqlx::Transaction<'static, sqlx::Postgres>) {
    if let Err(error) = transaction.rollback().await {
        tracing::warn!(%error, "rollback of a read-model apply failed");
    }
}

/// The writes of one update, inside the caller's transaction.
pub(crate) async fn apply_in(
    conn: &mut PgConnection,
    update: &ReadModelUpdate,
) -> Result<ApplyOutcome, StoreError> {
    let sequence = storable(update.sequence, "sequence")?;
    let account_id = update.account_id.as_str();
    let updated =
        match &update.change {
            ReadModelChange::Opened {
                owner,
                kind,
                currency,
                overdraft_limit,
            } => {
                let opening = OpeningRow::new(owner, *kind, currency, overdraft_limit);
                return insert_opening(conn, update, &opening).await;
            }
            ReadModelChange::Moved(movement) => sqlx::query(
                "UPDATE accounts SET balance = $1::numeric, last_sequence = $2, updated_at = $3 \
                 WHERE account_id = $4 AND last_sequence = $2 - 1",
            )
            .bind(movement.balance_after.to_string())
            .bind(sequence)
            .bind(update.occurred_at)
            .bind(account_id)
            .execute(&mut *conn)
            .await,
            ReadModelChange::StatusChanged {
                status,
                frozen_reason,
            } => {
                sqlx::query(
                    "UPDATE accounts SET status = $1, frozen_reason = $2, last_sequence = $3, \
                 updated_at = $4 WHERE account_id = $5 AND last_sequence = $3 - 1",
                )
                .bind(status.as_str())
                .bind(frozen_reason.as_ref().map(FreezeReason::as_str))
                .bind(sequence)
                .bind(update.occurred_at)
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
    conn: &mut PgConnection,
    update: &ReadModelUpdate,
    opening: &OpeningRow<'_>,
) -> Result<ApplyOutcome, StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO accounts (account_id, owner, kind, currency, status, balance, \
         overdraft_limit, frozen_reason, last_sequence, opened_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6::numeric, $7::numeric, NULL, $8, $9, $9) \
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
    .bind(update.occurred_at)
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
    conn: &mut PgConnection,
    update: &ReadModelUpdate,
) -> Result<ApplyOutcome, StoreError> {
    let exists = sqlx::query("SELECT 1 FROM accounts WHERE account_id = $1")
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
    conn: &mut PgConnection,
    movement: &MovementRow<'_>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO account_transactions (account_id, sequence, event_id, entry_type, amount, \
         balance_after, transfer_id, counterparty_account_id, description, occurred_at) \
         VALUES ($1, $2, $3, $4, $5::numeric, $6::numeric, $7, $8, $9, $10)",
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
    .bind(movement.occurred_at)
    .execute(&mut *conn)
    .await
    .map_err(|error| {
        if error
            .as_database_error()
            .is_some_and(sqlx::error::DatabaseError::is_unique_violation)
        {
            movement_row_exists(movement.account_id, movement.sequence)
        } else {
            StoreError::unavailable(error)
        }
    })?;

    sqlx::query(
        "INSERT INTO daily_balances (account_id, day, closing_balance, last_sequence) \
         VALUES ($1, $2, $3::numeric, $4) ON CONFLICT (account_id, day) DO UPDATE SET \
         closing_balance = excluded.closing_balance, last_sequence = excluded.last_sequence",
    )
    .bind(movement.account_id)
    .bind(movement.day)
    .bind(&movement.balance_after)
    .bind(movement.sequence)
    .execute(&mut *conn)
    .await
    .map_err(StoreError::unavailable)?;
    Ok(())
}

#[async_trait]
impl HealthCheck for PostgresReadModel {
    fn name(&self) -> &'static str {
        "read_model"
    }

    async fn check(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(StoreError::unavailable)?;
        Ok(())
    }
}
