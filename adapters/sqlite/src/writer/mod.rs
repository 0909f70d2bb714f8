//! The writer of a `SqliteDatabase`: a dedicated OS thread that owns the one connection every write of
//! this process goes through, and runs the writes it is sent in group commits (`group_commit.rs`).
//!
//! Why a thread of its own and not sqlx's write connection: sqlx hands every statement to its SQLite
//! worker thread and back through channels, and commits each transaction on its own, with one fsync
//! each. Here a write is one job, sent once; the thread runs the job's statements itself, straight on
//! `rusqlite`, and commits every job that queued up during the previous commit in one transaction, so
//! one fsync covers them all. Each job runs in a savepoint of its own: its refusal (a conflict, a
//! duplicate key) rolls back its writes alone, decided alone.
//!
//! Durability is unchanged: no job is answered before the COMMIT of its batch has returned, on a
//! connection at `synchronous = FULL` (NORMAL only for a scratch database, as before).

mod checkpointer;
mod group_commit;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::oneshot;

use checkpointer::{Checkpointer, WRITER_AUTOCHECKPOINT_PAGES};
use group_commit::{Job, Message, TypedJob};

/// How many jobs may wait for the writer before a submitter waits to queue: a bound on memory, far
/// above what one batch takes.
const QUEUE_CAPACITY: usize = 4096;

/// Prepared statements kept per connection: every statement the writer runs, with room to spare.
const STATEMENT_CACHE_CAPACITY: usize = 64;

/// How the writer groups jobs into transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupCommit {
    /// The most jobs one transaction holds. 1 commits every job on its own (one fsync each).
    pub max_batch: usize,
    /// How long the writer waits for more jobs after the first one of a batch. Zero, the default,
    /// is natural batching: a batch holds what queued up while the previous one committed, so a lone
    /// write never waits and a busy writer fills its batches by itself.
    pub max_wait: Duration,
}

impl GroupCommit {
    pub const DEFAULT_MAX_BATCH: usize = 256;
}

impl Default for GroupCommit {
    fn default() -> Self {
        Self {
            max_batch: Self::DEFAULT_MAX_BATCH,
            max_wait: Duration::ZERO,
        }
    }
}

/// What the writer has committed since the database was opened: for tests and the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriteStats {
    /// Transactions committed.
    pub batches: u64,
    /// Jobs in those transactions, refused ones included (each is answered by its batch's commit).
    pub jobs: u64,
}

#[derive(Debug, Default)]
struct Counters {
    batches: AtomicU64,
    jobs: AtomicU64,
}

impl Counters {
    fn committed(&self, jobs: usize) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.jobs
            .fetch_add(u64::try_from(jobs).unwrap_or(u64::MAX), Ordering::Relaxed);
    }
}

/// Why the writer could not carry a job out, beyond the job's own refusal.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WriterError {
    #[error("the SQLite writer has stopped (the database was closed)")]
    Stopped,
    #[error("cannot start the SQLite writer's thread: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("cannot open the SQLite writer's connection: {0}")]
    Open(#[source] rusqlite::Error),
    #[error("the SQLite database {path} is in journal mode `{mode}` on the writer, not `wal`")]
    NotWal { path: String, mode: String },
    #[error("cannot begin the SQLite write transaction: {0}")]
    Begin(#[source] rusqlite::Error),
    #[error("a SQLite savepoint failed, so the batch was rolled back: {0}")]
    Savepoint(#[source] rusqlite::Error),
    #[error("SQLite rolled the write transaction back after a failed statement in the batch")]
    TransactionLost,
    #[error("the SQLite COMMIT failed: the batch may or may not be on disk: {0}")]
    Commit(#[source] rusqlite::Error),
}

/// Why a job submitted to the writer did not succeed.
#[derive(Debug)]
pub(crate) enum WriteFailure<E> {
    /// The job ran and returned this error: its writes were rolled back to its savepoint.
    Refused(E),
    /// Nothing of the job is written: the writer is gone, or its transaction never began or was
    /// rolled back.
    NotWritten(Arc<WriterError>),
    /// The job succeeded, but the COMMIT of its batch failed: it may or may not be on disk.
    OutcomeUnknown(Arc<WriterError>),
}

/// The synchronous mode of the writer's connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Durability {
    /// `synchronous = FULL`: a commit is on disk when it returns.
    Full,
    /// `synchronous = NORMAL`: for scratch files; a power loss forgets the latest commits only.
    Normal,
}

impl Durability {
    fn pragma(self) -> &'static str {
        match self {
            Self::Full => "FULL",
            Self::Normal => "NORMAL",
        }
    }
}

/// The handle on a database's writer thread. The thread stops once [`SqliteWriter::stop`] is called
/// or every handle is dropped, after finishing the batch in hand.
pub(crate) struct SqliteWriter {
    sender: flume::Sender<Message>,
    counters: Arc<Counters>,
    /// Resolves once the thread has ended (it drops the sender as it returns).
    ended: tokio::sync::Mutex<Option<oneshot::Receiver<()>>>,
    /// The thread that copies the WAL back into the database file (`checkpointer.rs`).
    checkpointer: tokio::sync::Mutex<Option<Checkpointer>>,
}

impl std::fmt::Debug for SqliteWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteWriter")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl SqliteWriter {
    /// Starts the thread and opens its connection to `path` (already migrated and in WAL), with the
    /// same settings as every connection of the database: foreign keys, the busy timeout, and
    /// `durability`.
    pub(crate) async fn start(
        path: &Path,
        durability: Durability,
        busy_timeout: Duration,
        group_commit: GroupCommit,
    ) -> Result<Self, WriterError> {
        let (sender, receiver) = flume::bounded(QUEUE_CAPACITY);
        let (ready_sender, ready) = oneshot::channel();
        let (ended_sender, ended) = oneshot::channel::<()>();
        let counters = Arc::new(Counters::default());
        let thread_counters = Arc::clone(&counters);
        let path_for_checkpointer = path.to_owned();
        let path = path.to_owned();
        let group_commit = GroupCommit {
            max_batch: group_commit.max_batch.max(1),
            ..group_commit
        };
        std::thread::Builder::new()
            .name("ledger-sqlite-writer".to_owned())
            .spawn(move || {
                let connection = match open_connection(&path, durability, busy_timeout) {
                    Ok(connection) => connection,
                    Err(error) => {
                        let _ = ready_sender.send(Err(error));
                        return;
                    }
                };
                if ready_sender.send(Ok(())).is_err() {
                    return;
                }
                group_commit::run(&connection, &receiver, group_commit, &thread_counters);
                drop(connection);
                drop(ended_sender);
            })
            .map_err(WriterError::Spawn)?;
        ready.await.map_err(|_| WriterError::Stopped)??;
        let checkpointer = Checkpointer::start(&path_for_checkpointer, busy_timeout)?;
        Ok(Self {
            sender,
            counters,
            ended: tokio::sync::Mutex::new(Some(ended)),
            checkpointer: tokio::sync::Mutex::new(Some(checkpointer)),
        })
    }

    /// Runs `work` in the writer's next transaction, in a savepoint of its own, and answers once
    /// that transaction has committed (or failed). `work` runs on the writer thread: it must not
    /// block on anything but SQLite.
    pub(crate) async fn write<T, E, F>(&self, work: F) -> Result<T, WriteFailure<E>>
    where
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Box<dyn Job> = Box::new(TypedJob::new(work, reply));
        let stopped = || WriteFailure::NotWritten(Arc::new(WriterError::Stopped));
        self.sender
            .send_async(Message::Job(job))
            .await
            .map_err(|_| stopped())?;
        // A dropped reply means the thread ended before running the job: nothing of it is written.
        answer.await.map_err(|_| stopped())?
    }

    /// Asks the thread to stop after the batch in hand and waits until it has. Jobs queued behind
    /// the request are answered as not written. Stopping again returns at once.
    pub(crate) async fn stop(&self) {
        let Some(ended) = self.ended.lock().await.take() else {
            return;
        };
        // A failed send means the thread has already ended.
        let _ = self.sender.send_async(Message::Stop).await;
        let _ = ended.await;
        if let Some(checkpointer) = self.checkpointer.lock().await.take() {
            checkpointer.stop().await;
        }
    }

    pub(crate) fn stats(&self) -> WriteStats {
        WriteStats {
            batches: self.counters.batches.load(Ordering::Relaxed),
            jobs: self.counters.jobs.load(Ordering::Relaxed),
        }
    }
}

fn open_connection(
    path: &Path,
    durability: Durability,
    busy_timeout: Duration,
) -> Result<Connection, WriterError> {
    let connection = Connection::open(path).map_err(WriterError::Open)?;
    connection
        .busy_timeout(busy_timeout)
        .and_then(|()| connection.pragma_update(None, "foreign_keys", true))
        .and_then(|()| connection.pragma_update(None, "synchronous", durability.pragma()))
        // The checkpointer thread copies the WAL back; the writer does it only past this bound.
        .and_then(|()| {
            connection.pragma_update(None, "wal_autocheckpoint", WRITER_AUTOCHECKPOINT_PAGES)
        })
        .map_err(WriterError::Open)?;
    // The file was switched to WAL (a property of the file) before the writer started; check it,
    // since readers alongside the writer rely on it.
    let mode: String = connection
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .map_err(WriterError::Open)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(WriterError::NotWal {
            path: path.display().to_string(),
            mode,
        });
    }
    connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
    Ok(connection)
}

/// Runs one statement of a job through the connection's statement cache (prepared once, then
/// reused by every job): the number of rows it changed.
pub(crate) fn execute_cached(
    connection: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<usize, rusqlite::Error> {
    connection.prepare_cached(sql)?.execute(params)
}
