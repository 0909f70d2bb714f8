//! `PostgresRebuild`: the `ReadModelRebuild` port on PostgreSQL. The fresh model is the same schema
//! in a schema of its own (`ledger_rebuild`), written through a `PostgresReadModel` whose connections
//! set `search_path` to it; the swap moves its tables into the live schema in one transaction.
//!
//! The swap's transaction first takes `SHARE ROW EXCLUSIVE` on the live model's tables: the live
//! projector's writes wait, queries go on reading the old model. After the rebuilder's last
//! catch-up it drops the live accounts, transactions and daily balances and moves the fresh ones in
//! with `ALTER TABLE ... SET SCHEMA` (indexes, constraints and owned sequences move with them; the
//! dropped tables' index names are free again by then). Dead letters are copied instead, so that the
//! live table's identity keeps counting and an id an operator once saw never names another letter.
//! The projector's checkpoints are not touched. Queries see the old model until COMMIT and the new
//! one after.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ledger_application::ports::{
    LiveSwap, Projection, ReadModelRebuild, RebuildProgress, ScanCursor, StoreError,
};
use ledger_domain::AccountId;
use sqlx::postgres::{PgPoolOptions, Postgres};
use sqlx::{AssertSqlSafe, Row, Transaction};

use crate::read_model::PostgresReadModel;
use crate::rows::{column, limit, storable, unsigned};

/// The schema that holds the fresh model until the swap.
pub const FRESH_SCHEMA: &str = "ledger_rebuild";

/// Connections of the fresh model's pool: the rebuilder writes one event at a time.
const FRESH_CONNECTIONS: u32 = 4;

/// How long the swap waits for the live projector's transaction in flight before giving up.
const LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// The rebuild's progress, one row, in the fresh schema only.
const CREATE_PROGRESS: &str = "CREATE TABLE IF NOT EXISTS rebuild_progress (\
     id            SMALLINT NOT NULL PRIMARY KEY CHECK (id = 1), \
     scan_cursor   TEXT, \
     scan_finished BOOLEAN  NOT NULL, \
     accounts_done BIGINT   NOT NULL, \
     events_done   BIGINT   NOT NULL)";

/// The live model's tables that the swap replaces, in the order the projector writes them (so that
/// taking the locks cannot deadlock with a projector's transaction). Not the checkpoints.
const MOVED_TABLES: [&str; 3] = ["accounts", "account_transactions", "daily_balances"];

/// The fresh model beside a live [`PostgresReadModel`], created empty or kept from an interrupted
/// rebuild.
#[derive(Debug, Clone)]
pub struct PostgresRebuild {
    live: PostgresReadModel,
    fresh: PostgresReadModel,
    /// The live model's schema (its connections' `current_schema()`), quoted.
    live_schema: String,
}

/// `name` as a quoted SQL identifier.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl PostgresRebuild {
    /// Opens the fresh model of `live`: creates the schema and its tables (by the same migrations
    /// as the live one) if they are missing, or keeps what an interrupted rebuild left.
    pub async fn open(live: &PostgresReadModel) -> Result<Self, StoreError> {
        let schema: Option<String> = sqlx::query_scalar("SELECT current_schema()")
            .fetch_one(live.pool())
            .await
            .map_err(StoreError::unavailable)?;
        let live_schema = schema.ok_or_else(|| {
            StoreError::unavailable("the live read model's connections have no current schema")
        })?;
        if live_schema == FRESH_SCHEMA {
            return Err(StoreError::unavailable(format!(
                "the live read model is in schema {FRESH_SCHEMA}, the rebuild's own"
            )));
        }
        sqlx::raw_sql(AssertSqlSafe(format!(
            "CREATE SCHEMA IF NOT EXISTS {}",
            quoted(FRESH_SCHEMA)
        )))
        .execute(live.pool())
        .await
        .map_err(StoreError::unavailable)?;
        // Derived from the live pool, so that a rebuild running across a password rotation keeps
        // connecting with the live pool's current credentials.
        let pool = live.derived_pool(
            PgPoolOptions::new().max_connections(FRESH_CONNECTIONS),
            |options| options.options([("search_path", FRESH_SCHEMA)]),
        );
        let fresh = PostgresReadModel::from_pool(pool);
        fresh.migrate().await?;
        sqlx::raw_sql(CREATE_PROGRESS)
            .execute(fresh.pool())
            .await
            .map_err(StoreError::unavailable)?;
        Ok(Self {
            live: live.clone(),
            fresh,
            live_schema: quoted(&live_schema),
        })
    }

    /// The fresh model, for tests to look into.
    pub fn fresh_model(&self) -> &PostgresReadModel {
        &self.fresh
    }

    /// Drops the fresh model: a rebuild that should start over.
    pub async fn discard(self) -> Result<(), StoreError> {
        self.fresh.close().await;
        sqlx::raw_sql(AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS {} CASCADE",
            quoted(FRESH_SCHEMA)
        )))
        .execute(self.live.pool())
        .await
        .map_err(StoreError::unavailable)?;
        Ok(())
    }

    /// Accounts where the live model is ahead of the fresh one (see the port): a higher
    /// `last_sequence`, or an open letter past the fresh `last_sequence`; not those the fresh model
    /// has an open letter for.
    fn accounts_behind_live_sql(&self) -> String {
        let live = &self.live_schema;
        let fresh = quoted(FRESH_SCHEMA);
        format!(
            "SELECT live.account_id FROM ( \
                 SELECT account_id, last_sequence AS live_sequence FROM {live}.accounts \
                 UNION ALL \
                 SELECT account_id, sequence FROM {live}.dead_letters \
                 WHERE resolved_at IS NULL AND account_id IS NOT NULL AND sequence IS NOT NULL \
             ) AS live \
             WHERE live.account_id > $1 \
               AND live.live_sequence > COALESCE( \
                   (SELECT f.last_sequence FROM {fresh}.accounts AS f \
                    WHERE f.account_id = live.account_id), 0) \
               AND NOT EXISTS ( \
                   SELECT 1 FROM {fresh}.dead_letters AS letter \
                   WHERE letter.account_id = live.account_id AND letter.resolved_at IS NULL) \
             GROUP BY live.account_id ORDER BY live.account_id LIMIT $2"
        )
    }
}

#[async_trait]
impl ReadModelRebuild for PostgresRebuild {
    fn fresh(&self) -> Arc<dyn Projection> {
        Arc::new(self.fresh.clone())
    }

    async fn progress(&self) -> Result<Option<RebuildProgress>, StoreError> {
        let row = sqlx::query(
            "SELECT scan_cursor, scan_finished, accounts_done, events_done FROM rebuild_progress",
        )
        .fetch_optional(self.fresh.pool())
        .await
        .map_err(StoreError::unavailable)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let cursor: Option<String> = column(&row, "scan_cursor")?;
        Ok(Some(RebuildProgress {
            cursor: cursor.map(ScanCursor::new),
            scan_finished: column(&row, "scan_finished")?,
            accounts_done: unsigned(&row, "accounts_done")?,
            events_done: unsigned(&row, "events_done")?,
        }))
    }

    async fn save_progress(&self, progress: &RebuildProgress) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO rebuild_progress \
             (id, scan_cursor, scan_finished, accounts_done, events_done) \
             VALUES (1, $1, $2, $3, $4) ON CONFLICT (id) DO UPDATE SET \
             scan_cursor = excluded.scan_cursor, scan_finished = excluded.scan_finished, \
             accounts_done = excluded.accounts_done, events_done = excluded.events_done",
        )
        .bind(progress.cursor.as_ref().map(ScanCursor::as_str))
        .bind(progress.scan_finished)
        .bind(storable(progress.accounts_done, "accounts done")?)
        .bind(storable(progress.events_done, "events done")?)
        .execute(self.fresh.pool())
        .await
        .map_err(StoreError::unavailable)?;
        Ok(())
    }

    async fn accounts_behind_live(
        &self,
        after: Option<&AccountId>,
        limit_to: usize,
    ) -> Result<Vec<AccountId>, StoreError> {
        // READ COMMITTED: each statement reads the latest commits of both schemas.
        let rows = sqlx::query(AssertSqlSafe(self.accounts_behind_live_sql()))
            .bind(after.map_or("", AccountId::as_str))
            .bind(limit(limit_to))
            .fetch_all(self.live.pool())
            .await
            .map_err(StoreError::unavailable)?;
        rows.iter()
            .map(|row| {
                let id: String = column(row, "account_id")?;
                AccountId::parse(&id)
                    .map_err(|e| StoreError::corrupt(format!("stored account id `{id}`: {e}")))
            })
            .collect()
    }

    async fn begin_swap(&self) -> Result<Box<dyn LiveSwap>, StoreError> {
        let mut transaction = self
            .live
            .pool()
            .begin()
            .await
            .map_err(StoreError::unavailable)?;
        let live = &self.live_schema;
        let lock = format!(
            "SET LOCAL lock_timeout = '{}ms'; \
             LOCK TABLE {live}.accounts, {live}.account_transactions, {live}.daily_balances, \
             {live}.dead_letters IN SHARE ROW EXCLUSIVE MODE",
            LOCK_TIMEOUT.as_millis()
        );
        if let Err(error) = sqlx::raw_sql(AssertSqlSafe(lock))
            .execute(&mut *transaction)
            .await
        {
            let _ = transaction.rollback().await;
            return Err(StoreError::unavailable(error));
        }
        Ok(Box::new(PostgresSwap {
            transaction,
            live_schema: self.live_schema.clone(),
            fresh: self.fresh.clone(),
        }))
    }
}

/// The swap's transaction, holding the live tables' locks.
#[derive(Debug)]
struct PostgresSwap {
    transaction: Transaction<'static, Postgres>,
    live_schema: String,
    fresh: PostgresReadModel,
}

impl PostgresSwap {
    async fn replace(&mut self) -> Result<(), sqlx::Error> {
        let live = &self.live_schema;
        let fresh = quoted(FRESH_SCHEMA);
        let mut sql = format!(
            "DROP TABLE {live}.{};",
            MOVED_TABLES.join(&format!(", {live}."))
        );
        for table in MOVED_TABLES {
            // Writing to a String cannot fail.
            let _ = write!(sql, " ALTER TABLE {fresh}.{table} SET SCHEMA {live};");
        }
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(&mut *self.transaction)
            .await?;
        // The letters: above the highest id the live table holds, its identity moved past them.
        let offset: i64 = sqlx::query(AssertSqlSafe(format!(
            "SELECT COALESCE(MAX(letter_id), 0) AS high FROM {live}.dead_letters"
        )))
        .fetch_one(&mut *self.transaction)
        .await?
        .try_get("high")?;
        let copy = format!(
            "DELETE FROM {live}.dead_letters; \
             INSERT INTO {live}.dead_letters (letter_id, deduplication_key, account_id, sequence, \
                 event_id, event_type, raw, reason, waiting_behind, recorded_at, resolved_at) \
             OVERRIDING SYSTEM VALUE \
             SELECT letter_id + {offset}, deduplication_key, account_id, sequence, event_id, \
                 event_type, raw, reason, waiting_behind + {offset}, recorded_at, resolved_at \
             FROM {fresh}.dead_letters ORDER BY letter_id; \
             SELECT setval(pg_get_serial_sequence('{live}.dead_letters', 'letter_id'), high) \
             FROM (SELECT MAX(letter_id) AS high FROM {live}.dead_letters) AS letters \
             WHERE high IS NOT NULL; \
             DROP SCHEMA {fresh} CASCADE;"
        );
        sqlx::raw_sql(AssertSqlSafe(copy))
            .execute(&mut *self.transaction)
            .await?;
        Ok(())
    }
}

#[async_trait]
impl LiveSwap for PostgresSwap {
    async fn commit(mut self: Box<Self>) -> Result<(), StoreError> {
        // The fresh pool's connections would hold locks on the fresh tables the swap moves.
        self.fresh.close().await;
        if let Err(error) = self.replace().await {
            let _ = self.transaction.rollback().await;
            return Err(StoreError::unavailable(error));
        }
        self.transaction
            .commit()
            .await
            .map_err(StoreError::unavailable)
    }

    async fn abort(self: Box<Self>) {
        if let Err(error) = self.transaction.rollback().await {
            tracing::warn!(%error, "rolling back the rebuild's swap failed");
        }
    }
}
