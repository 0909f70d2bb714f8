//! `SqliteDatabase`: one SQLite file in WAL mode, written through its writer thread (`writer/`: one
//! connection, group commits), read through a pool of read-only connections. A sqlx connection of
//! its own applies the migrations at open and checkpoints the WAL at close.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ledger_application::ports::{HealthCheck, StoreError};
use sqlx::sqlite::{
    Sqlite, SqliteConnectOptions, SqliteConnection, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, Transaction};

use crate::checkpoints::SqliteCheckpoints;
use crate::event_store::SqliteEventStore;
use crate::migrations;
use crate::read_model::SqliteReadModel;
use crate::writer::{Durability, GroupCommit, SqliteWriter, WriteFailure, WriteStats};

/// How long a statement waits for a lock held by another process before it fails with SQLITE_BUSY.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Between attempts to switch a new file to WAL while another process does the same.
const WAL_RETRY_PAUSE: Duration = Duration::from_millis(25);

/// Read-only connections: WAL lets them all read while the one writer writes.
const READ_CONNECTIONS: u32 = 4;

/// Every write transaction takes SQLite's write lock up front. A deferred `BEGIN` would start as a
/// reader and try to upgrade at its first write; if another process upgraded first, SQLite fails at
/// once with SQLITE_BUSY (the busy timeout cannot help), whereas `IMMEDIATE` waits for the lock.
pub(crate) const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

/// An open ledger database file. Cloning is cheap and shares the pools.
///
/// Build the stores on it with [`SqliteEventStore::new`] / [`SqliteDatabase::event_store`] and
/// [`SqliteReadModel::new`] / [`SqliteDatabase::read_model`]; call [`SqliteDatabase::close`] on
/// shutdown.
#[derive(Debug, Clone)]
pub struct SqliteDatabase {
    path: PathBuf,
    /// Exactly one connection, for the migrations at open and the WAL checkpoint at close: every
    /// other write goes through `writer`.
    write: SqlitePool,
    read: SqlitePool,
    /// The one connection every write of this process goes through: writers queue here instead of
    /// fighting over SQLite's write lock, which also serializes commits in `global_position` order.
    writer: Arc<SqliteWriter>,
}

/// The settings in force on the write connection, as SQLite reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteSettings {
    /// `wal` once the database is open.
    pub journal_mode: String,
    /// 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA; the ledger runs at 2 so that a commit survives power loss.
    pub synchronous: i64,
    pub foreign_keys: bool,
    pub busy_timeout_ms: i64,
    /// The schema version (`PRAGMA user_version`): the number of migrations applied.
    pub schema_version: i64,
}

/// Why the database could not be opened, kept as the source of `StoreError::Unavailable`.
#[derive(Debug, thiserror::Error)]
enum OpenError {
    #[error("cannot create the directory {path} for the SQLite database: {source}")]
    CreateDirectory {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the SQLite database {path}: {source}")]
    Connect {
        path: PathBuf,
        #[source]
        source: sqlx::Error,
    },
    #[error(
        "the SQLite database {path} is in journal mode `{mode}`, not `wal` (is it on a filesystem \
         without shared memory, or held open in another mode?)"
    )]
    NotWal { path: PathBuf, mode: String },
}

impl SqliteDatabase {
    /// Opens (creating it and its directory if missing) the database at `path`, switches it to WAL
    /// with fully synchronous commits, and applies the migrations it lacks. Opening again is harmless.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(path, Durability::Full, GroupCommit::default()).await
    }

    /// Opens like [`SqliteDatabase::open`], with the writer grouping its commits as `group_commit`
    /// says (`max_batch = 1`: one transaction, and one fsync, per write).
    pub async fn open_with_group_commit(
        path: &Path,
        group_commit: GroupCommit,
    ) -> Result<Self, StoreError> {
        Self::open_with(path, Durability::Full, group_commit).await
    }

    /// Opens like [`SqliteDatabase::open`], but commits without waiting for the disk
    /// (`synchronous = NORMAL`): for a scratch database that is rebuilt rather than recovered, such
    /// as the fresh model of a rebuild. Still consistent after a crash: the WAL keeps commits in
    /// order, so a power loss only forgets the latest ones.
    pub async fn open_scratch(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(path, Durability::Normal, GroupCommit::default()).await
    }

    async fn open_with(
        path: &Path,
        durability: Durability,
        group_commit: GroupCommit,
    ) -> Result<Self, StoreError> {
        let synchronous = match durability {
            Durability::Full => SqliteSynchronous::Full,
            Durability::Normal => SqliteSynchronous::Normal,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            // Blocking, but once at start-up and on a local path: not worth a runtime dependency.
            std::fs::create_dir_all(parent).map_err(|source| {
                StoreError::unavailable(OpenError::CreateDirectory {
                    path: parent.to_owned(),
                    source,
                })
            })?;
        }
        let connect_error = |source| {
            StoreError::unavailable(OpenError::Connect {
                path: path.to_owned(),
                source,
            })
        };

        // Per-connection settings, for both pools. Read connections never commit, but a shared base
        // keeps the two from drifting apart.
        let base = SqliteConnectOptions::new()
            .filename(path)
            .foreign_keys(true)
            .synchronous(synchronous)
            .busy_timeout(BUSY_TIMEOUT);

        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            // Keep the one writer for the life of the process: reopening it costs the pragmas and
            // the statement cache, and an idle writer holds no lock.
            .idle_timeout(None)
            .max_lifetime(None)
            // Not `.journal_mode(..)`: `prepare` switches to WAL itself, because that switch needs
            // a retry the connect options cannot give it.
            .connect_with(base.clone().create_if_missing(true))
            .await
            .map_err(connect_error)?;

        // On any failure from here on, close the writer before returning: a dropped pool closes its
        // connection only eventually, and a caller may retry the open at once.
        if let Err(error) = prepare(path, &write).await {
            write.close().await;
            return Err(error);
        }
        // Read-only: a query can never write by mistake, and readers take no write lock.
        let read = SqlitePoolOptions::new()
            .max_connections(READ_CONNECTIONS)
            .connect_with(base.read_only(true))
            .await;
        let read = match read {
            Ok(read) => read,
            Err(error) => {
                write.close().await;
                return Err(connect_error(error));
            }
        };
        // After the migrations: the writer's statements name the tables they create.
        match SqliteWriter::start(path, durability, BUSY_TIMEOUT, group_commit).await {
            Ok(writer) => Ok(Self {
                path: path.to_owned(),
                write,
                read,
                writer: Arc::new(writer),
            }),
            Err(error) => {
                read.close().await;
                write.close().await;
                Err(StoreError::unavailable(error))
            }
        }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A `SqliteEventStore` on this database (the same as `SqliteEventStore::new(self)`).
    pub fn event_store(&self) -> SqliteEventStore {
        SqliteEventStore::new(self)
    }

    /// A `SqliteReadModel` on this database (the same as `SqliteReadModel::new(self)`).
    pub fn read_model(&self) -> SqliteReadModel {
        SqliteReadModel::new(self)
    }

    /// The projectors' positions on this database (the same as `SqliteCheckpoints::new(self)`).
    pub fn checkpoints(&self) -> SqliteCheckpoints {
        SqliteCheckpoints::new(self)
    }

    /// The settings in force on the writer's connection (the one that commits every write), as
    /// SQLite reports them: for `ledger verify` and for tests.
    pub async fn settings(&self) -> Result<SqliteSettings, StoreError> {
        self.write_store(|connection| {
            let pragma = |sql: &str| connection.query_row(sql, [], |row| row.get::<_, i64>(0));
            let read = || {
                Ok(SqliteSettings {
                    journal_mode: connection
                        .query_row("PRAGMA journal_mode", [], |row| row.get(0))?,
                    synchronous: pragma("PRAGMA synchronous")?,
                    foreign_keys: pragma("PRAGMA foreign_keys")? != 0,
                    busy_timeout_ms: pragma("PRAGMA busy_timeout")?,
                    schema_version: pragma("PRAGMA user_version")?,
                })
            };
            read().map_err(|error: rusqlite::Error| StoreError::unavailable(error))
        })
        .await
    }

    /// One statement as a writer job (see [`SqliteDatabase::write_store`]): the number of rows it
    /// changed. `params` is owned (a tuple of values), since the job runs on the writer's thread.
    pub(crate) async fn write_statement<P>(
        &self,
        sql: &'static str,
        params: P,
    ) -> Result<usize, StoreError>
    where
        P: rusqlite::Params + Send + 'static,
    {
        self.write_store(move |connection| {
            crate::writer::execute_cached(connection, sql, params).map_err(StoreError::unavailable)
        })
        .await
    }

    /// What the writer has committed since the database was opened: transactions and the jobs in
    /// them. For tests and the benchmark; the counts are not persisted.
    pub fn write_stats(&self) -> WriteStats {
        self.writer.stats()
    }

    /// `SELECT 1` on a read connection: whether the database answers now.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .fetch_one(&self.read)
            .await
            .map(drop)
            .map_err(StoreError::unavailable)
    }

    /// Closes both pools, waiting for connections in use to come back. The write connection closes
    /// last, after a `wal_checkpoint(TRUNCATE)`, so the database file alone holds every commit.
    /// Closing again is harmless; every store on this database fails with `Unavailable` afterwards.
    pub async fn close(&self) -> Result<(), StoreError> {
        // Readers first: a checkpoint cannot truncate a WAL that a reader still uses. Then the
        // writer, once its batch in hand has committed and been answered.
        self.read.close().await;
        self.writer.stop().await;
        if self.write.is_closed() {
            return Ok(());
        }
        let checkpoint = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .fetch_one(&self.write)
            .await;
        self.write.close().await;
        let row = checkpoint.map_err(StoreError::unavailable)?;
        // Not an error: the commits are safe in the WAL, and the next open replays it. It only
        // means that another process was reading.
        let busy: i64 = first_column(&row)?;
        if busy != 0 {
            tracing::warn!(
                path = %self.path.display(),
                "WAL checkpoint on close was blocked by another connection; the WAL file remains"
            );
        }
        Ok(())
    }

    /// Runs `work` on the writer thread, in a savepoint of its own inside the writer's next group
    /// commit, and answers once that commit has returned: see `writer/`.
    pub(crate) async fn write<T, E, F>(&self, work: F) -> Result<T, WriteFailure<E>>
    where
        F: FnOnce(&rusqlite::Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: Send + 'static,
    {
        self.writer.write(work).await
    }

    /// Runs `work` on the writer like [`SqliteDatabase::write`], for a write whose every failure
    /// is a `StoreError` (a read-model or checkpoint write: judged again when retried, so a commit
    /// of unknown outcome is only `Unavailable`).
    pub(crate) async fn write_store<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        F: FnOnce(&rusqlite::Connection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        self.write(work).await.map_err(|failure| match failure {
            WriteFailure::Refused(error) => error,
            WriteFailure::NotWritten(error) | WriteFailure::OutcomeUnknown(error) => {
                StoreError::unavailable(error)
            }
        })
    }

    pub(crate) fn reader(&self) -> &SqlitePool {
        &self.read
    }

    /// A connection of its own to this database, outside both pools, with the same busy timeout:
    /// for work that must hold a transaction across other connections' work (the rebuild's swap).
    pub(crate) async fn dedicated_connection(
        &self,
        read_only: bool,
    ) -> Result<SqliteConnection, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(&self.path)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            .read_only(read_only);
        <SqliteConnection as sqlx::Connection>::connect_with(&options)
            .await
            .map_err(StoreError::unavailable)
    }
}

/// Rolls back a write transaction whose work failed or turned out stale. A failed rollback is only
/// logged: SQLite rolls the transaction back anyway when the connection next begins or closes, and the
/// caller already has the error that matters.
pub(crate) async fn roll_back(transaction: Transaction<'static, Sqlite>) {
    if let Err(error) = transaction.rollback().await {
        tracing::warn!(%error, "rolling back a SQLite write transaction failed");
    }
}

/// Switches the database to WAL and brings its schema up to date.
async fn prepare(path: &Path, write: &SqlitePool) -> Result<(), StoreError> {
    let mut conn = write.acquire().await.map_err(StoreError::unavailable)?;
    let mode = enable_wal(&mut conn).await?;
    drop(conn);
    // `PRAGMA journal_mode = WAL` reports the mode it ended in instead of failing: check it, since the
    // read pool and the single-writer design both rely on WAL.
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::unavailable(OpenError::NotWal {
            path: path.to_owned(),
            mode,
        }));
    }
    migrations::apply(write).await
}

/// Sets `journal_mode = WAL` (persistent: a property of the file) and returns the mode in force.
///
/// Leaving rollback-journal mode needs an exclusive lock that SQLite takes without calling the busy
/// handler, so when two processes open the same new file at once, one gets SQLITE_BUSY at once. Retry
/// it for as long as any other statement would wait. Once the file is in WAL this is a no-op.
async fn enable_wal(conn: &mut SqliteConnection) -> Result<String, StoreError> {
    let deadline = Instant::now() + BUSY_TIMEOUT;
    loop {
        match sqlx::query("PRAGMA journal_mode = WAL")
            .fetch_one(&mut *conn)
            .await
        {
            Ok(row) => return first_column(&row),
            Err(error) if is_busy(&error) && Instant::now() < deadline => {
                tokio::time::sleep(WAL_RETRY_PAUSE).await;
            }
            Err(error) => return Err(StoreError::unavailable(error)),
        }
    }
}

/// SQLITE_BUSY or one of its extended codes (the primary code is the low byte).
fn is_busy(error: &sqlx::Error) -> bool {
    const SQLITE_BUSY: i64 = 5;
    match error {
        sqlx::Error::Database(db) => db
            .code()
            .and_then(|code| code.parse::<i64>().ok())
            .is_some_and(|code| code & 0xff == SQLITE_BUSY),
        _ => false,
    }
}

fn first_column<T>(row: &SqliteRow) -> Result<T, StoreError>
where
    T: for<'r> sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite>,
{
    row.try_get::<T, _>(0)
        .map_err(|e| StoreError::corrupt(format!("unexpected PRAGMA result: {e}")))
}

#[async_trait]
impl HealthCheck for SqliteDatabase {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    async fn check(&self) -> Result<(), StoreError> {
        self.ping().await
    }
}
