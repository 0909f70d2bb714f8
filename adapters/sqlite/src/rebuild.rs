//! `SqliteRebuild`: the `ReadModelRebuild` port on SQLite. The fresh model is a database file of its
//! own next to the live one (`<path>.rebuild`), written through a `SqliteReadModel`; the swap copies
//! its tables into the live file in one write transaction.
//!
//! The swap runs on a dedicated connection that ATTACHes the fresh file, begins a deferred
//! transaction and takes the live file's write lock with its first statement (deleting the live
//! read model's rows, unseen by anyone until COMMIT). A `BEGIN IMMEDIATE` would take the write lock
//! of the attached fresh file too, and the final catch-up could not write it. While the swap holds
//! the lock, the live projector's writes wait (readers of the live file go on reading the old
//! model); in embedded mode the events share the file, so commands wait too, for as long as the
//! copy takes. Then the fresh rows are copied in and the transaction commits: readers see the old
//! model until then and the new one after. The projector's checkpoints are not touched.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use ledger_application::ports::{
    LiveSwap, Projection, ReadModelRebuild, RebuildProgress, ScanCursor, StoreError,
};
use ledger_domain::AccountId;
use sqlx::Connection;
use sqlx::sqlite::SqliteConnection;

use crate::database::SqliteDatabase;
use crate::rows::{column, limit, storable, unsigned};

/// What the fresh file is called: the live file's name with this appended.
const FRESH_SUFFIX: &str = ".rebuild";

/// The rebuild's progress, one row, in the fresh file only.
const CREATE_PROGRESS: &str = "CREATE TABLE IF NOT EXISTS rebuild_progress (\
     id            INTEGER NOT NULL PRIMARY KEY CHECK (id = 1), \
     cursor        TEXT, \
     scan_finished INTEGER NOT NULL CHECK (scan_finished IN (0, 1)), \
     accounts_done INTEGER NOT NULL, \
     events_done   INTEGER NOT NULL) STRICT";

/// Accounts where the live model (`main`) is ahead of the fresh one (`rebuild`): a higher
/// `last_sequence`, or an open letter past the fresh `last_sequence`; not those the fresh model has
/// an open letter for (replaying cannot move them).
const ACCOUNTS_BEHIND_LIVE: &str = "\
    SELECT live.account_id AS account_id FROM ( \
        SELECT account_id, last_sequence AS live_sequence FROM main.rm_accounts \
        UNION ALL \
        SELECT account_id, sequence FROM main.rm_dead_letters \
        WHERE resolved_at IS NULL AND account_id IS NOT NULL AND sequence IS NOT NULL \
    ) AS live \
    WHERE live.account_id > ?1 \
      AND live.live_sequence > COALESCE( \
          (SELECT fresh.last_sequence FROM rebuild.rm_accounts AS fresh \
           WHERE fresh.account_id = live.account_id), 0) \
      AND NOT EXISTS ( \
          SELECT 1 FROM rebuild.rm_dead_letters AS letter \
          WHERE letter.account_id = live.account_id AND letter.resolved_at IS NULL) \
    GROUP BY live.account_id ORDER BY live.account_id LIMIT ?2";

/// The swap's copy, after the live rows are deleted. Dead letters get ids above every id the live
/// file ever gave (its AUTOINCREMENT high-water mark), so that an id an operator once saw never
/// names another letter.
const COPY_FRESH_INTO_LIVE: &str = "\
    DELETE FROM main.rm_accounts; \
    DELETE FROM main.rm_account_transactions; \
    DELETE FROM main.rm_dead_letters; \
    INSERT INTO main.rm_accounts (account_id, owner, kind, currency, status, balance, \
        overdraft_limit, frozen_reason, last_sequence, opened_at, updated_at) \
    SELECT account_id, owner, kind, currency, status, balance, overdraft_limit, frozen_reason, \
        last_sequence, opened_at, updated_at FROM rebuild.rm_accounts; \
    INSERT INTO main.rm_account_transactions (account_id, sequence, event_id, entry_type, amount, \
        balance_after, transfer_id, counterparty_account_id, description, occurred_at) \
    SELECT account_id, sequence, event_id, entry_type, amount, balance_after, transfer_id, \
        counterparty_account_id, description, occurred_at FROM rebuild.rm_account_transactions; \
    INSERT INTO main.rm_daily_balances (account_id, day, closing_balance, last_sequence) \
    SELECT account_id, day, closing_balance, last_sequence FROM rebuild.rm_daily_balances; \
    INSERT INTO main.rm_dead_letters (letter_id, deduplication_key, account_id, sequence, \
        event_id, event_type, raw, reason, waiting_behind, recorded_at, resolved_at) \
    SELECT letter.letter_id + high.id_offset, letter.deduplication_key, letter.account_id, \
        letter.sequence, letter.event_id, letter.event_type, letter.raw, letter.reason, \
        letter.waiting_behind + high.id_offset, letter.recorded_at, letter.resolved_at \
    FROM rebuild.rm_dead_letters AS letter, \
        (SELECT COALESCE((SELECT seq FROM main.sqlite_sequence WHERE name = 'rm_dead_letters'), \
         0) AS id_offset) AS high \
    ORDER BY letter.letter_id;";

/// The fresh model beside a live [`SqliteDatabase`], created empty or kept from an interrupted
/// rebuild.
#[derive(Debug, Clone)]
pub struct SqliteRebuild {
    live: SqliteDatabase,
    fresh: SqliteDatabase,
}

impl SqliteRebuild {
    /// The fresh file of the live database at `live_path`.
    pub fn fresh_path(live_path: &Path) -> PathBuf {
        let mut name = live_path.as_os_str().to_owned();
        name.push(FRESH_SUFFIX);
        PathBuf::from(name)
    }

    /// Opens the fresh model of `live` (creating it, or keeping what an interrupted rebuild left).
    /// Its commits do not wait for the disk: a crash leaves it consistent, and it is rebuilt anyway.
    pub async fn open(live: &SqliteDatabase) -> Result<Self, StoreError> {
        let fresh = SqliteDatabase::open_scratch(&Self::fresh_path(live.path())).await?;
        fresh
            .write_store(|connection| {
                connection
                    .execute_batch(CREATE_PROGRESS)
                    .map_err(StoreError::unavailable)
            })
            .await?;
        Ok(Self {
            live: live.clone(),
            fresh,
        })
    }

    /// The fresh database, for tests to look into.
    pub fn fresh_database(&self) -> &SqliteDatabase {
        &self.fresh
    }

    /// Closes the fresh model and deletes its files: a rebuild that should start over.
    pub async fn discard(self) -> Result<(), StoreError> {
        self.fresh.close().await?;
        remove_files(self.fresh.path())
    }

    /// A connection to the live file with the fresh one attached as `rebuild`.
    async fn attached(&self, read_only: bool) -> Result<SqliteConnection, StoreError> {
        let mut conn = self.live.dedicated_connection(read_only).await?;
        let path = self.fresh.path().to_str().ok_or_else(|| {
            StoreError::unavailable(format!(
                "the fresh model's path {} is not UTF-8",
                self.fresh.path().display()
            ))
        })?;
        // ATTACH is refused inside a transaction: this connection has none yet.
        sqlx::query("ATTACH DATABASE ?1 AS rebuild")
            .bind(path)
            .execute(&mut conn)
            .await
            .map_err(StoreError::unavailable)?;
        Ok(conn)
    }
}

/// Deletes the fresh file and its WAL companions; a file already gone is fine.
fn remove_files(path: &Path) -> Result<(), StoreError> {
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        match std::fs::remove_file(PathBuf::from(name)) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(StoreError::unavailable(error)),
        }
    }
    Ok(())
}

#[async_trait]
impl ReadModelRebuild for SqliteRebuild {
    fn fresh(&self) -> Arc<dyn Projection> {
        Arc::new(self.fresh.read_model())
    }

    async fn progress(&self) -> Result<Option<RebuildProgress>, StoreError> {
        let row = sqlx::query(
            "SELECT cursor, scan_finished, accounts_done, events_done FROM rebuild_progress",
        )
        .fetch_optional(self.fresh.reader())
        .await
        .map_err(StoreError::unavailable)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let cursor: Option<String> = column(&row, "cursor")?;
        Ok(Some(RebuildProgress {
            cursor: cursor.map(ScanCursor::new),
            scan_finished: unsigned(&row, "scan_finished")? == 1,
            accounts_done: unsigned(&row, "accounts_done")?,
            events_done: unsigned(&row, "events_done")?,
        }))
    }

    async fn save_progress(&self, progress: &RebuildProgress) -> Result<(), StoreError> {
        let cursor = progress
            .cursor
            .as_ref()
            .map(|cursor| cursor.as_str().to_owned());
        let scan_finished = i64::from(progress.scan_finished);
        let accounts_done = storable(progress.accounts_done, "accounts done")?;
        let events_done = storable(progress.events_done, "events done")?;
        self.fresh
            .write_statement(
                "INSERT INTO rebuild_progress \
                         (id, cursor, scan_finished, accounts_done, events_done) \
                         VALUES (1, ?1, ?2, ?3, ?4) ON CONFLICT (id) DO UPDATE SET \
                         cursor = excluded.cursor, scan_finished = excluded.scan_finished, \
                         accounts_done = excluded.accounts_done, \
                         events_done = excluded.events_done",
                (cursor, scan_finished, accounts_done, events_done),
            )
            .await
            .map(drop)
    }

    async fn accounts_behind_live(
        &self,
        after: Option<&AccountId>,
        limit_to: usize,
    ) -> Result<Vec<AccountId>, StoreError> {
        // A connection of its own, in autocommit: each call reads the latest commits of both files.
        let mut conn = self.attached(true).await?;
        let rows: Result<Vec<(String,)>, _> = sqlx::query_as(ACCOUNTS_BEHIND_LIVE)
            .bind(after.map_or("", AccountId::as_str))
            .bind(limit(limit_to))
            .fetch_all(&mut conn)
            .await;
        let closed = conn.close().await;
        let rows = rows.map_err(StoreError::unavailable)?;
        closed.map_err(StoreError::unavailable)?;
        rows.into_iter()
            .map(|(id,)| {
                AccountId::parse(&id)
                    .map_err(|e| StoreError::corrupt(format!("stored account id `{id}`: {e}")))
            })
            .collect()
    }

    async fn begin_swap(&self) -> Result<Box<dyn LiveSwap>, StoreError> {
        let mut conn = self.attached(false).await?;
        // A deferred BEGIN, then a write to `main` only: the live file's write lock (waiting the
        // busy timeout for a writer in flight), and none on the attached fresh file.
        let locked = async {
            sqlx::raw_sql("BEGIN; DELETE FROM main.rm_daily_balances;")
                .execute(&mut conn)
                .await
        }
        .await;
        if let Err(error) = locked {
            let _ = sqlx::raw_sql("ROLLBACK").execute(&mut conn).await;
            let _ = conn.close().await;
            return Err(StoreError::unavailable(error));
        }
        Ok(Box::new(SqliteSwap {
            conn,
            fresh: self.fresh.clone(),
        }))
    }
}

/// The swap's connection, holding the live file's write lock.
#[derive(Debug)]
struct SqliteSwap {
    conn: SqliteConnection,
    fresh: SqliteDatabase,
}

#[async_trait]
impl LiveSwap for SqliteSwap {
    async fn commit(mut self: Box<Self>) -> Result<(), StoreError> {
        let copied = sqlx::raw_sql(COPY_FRESH_INTO_LIVE)
            .execute(&mut self.conn)
            .await;
        if let Err(error) = copied {
            self.abort().await;
            return Err(StoreError::unavailable(error));
        }
        sqlx::raw_sql("COMMIT")
            .execute(&mut self.conn)
            .await
            .map_err(StoreError::unavailable)?;
        let Self { mut conn, fresh } = *self;
        // The live file holds the new model now; what follows only tidies up.
        let detached = sqlx::raw_sql("DETACH DATABASE rebuild")
            .execute(&mut conn)
            .await;
        let _ = conn.close().await;
        detached.map_err(StoreError::unavailable)?;
        fresh.close().await?;
        remove_files(fresh.path())
    }

    async fn abort(mut self: Box<Self>) {
        if let Err(error) = sqlx::raw_sql("ROLLBACK").execute(&mut self.conn).await {
            tracing::warn!(%error, "rolling back the rebuild's swap failed; closing its connection");
        }
        let _ = self.conn.close().await;
    }
}
