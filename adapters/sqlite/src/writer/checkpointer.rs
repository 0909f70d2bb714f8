//! The WAL checkpointer: a thread of its own that copies committed WAL frames back into the database
//! file, so that the writer thread does not.
//!
//! Why: SQLite's automatic checkpoint runs inside the commit that takes the WAL past
//! `wal_autocheckpoint` pages, on the writer's thread. Every batch waiting behind that commit waits
//! for the copy and the database file's fsync as well. A `PASSIVE` checkpoint from another connection
//! takes no lock that writers or readers wait on: it copies what it can while the writer goes on
//! committing, on the other core. The writer keeps a bound of its own on the WAL's length
//! (`WRITER_AUTOCHECKPOINT_PAGES`), so a stalled checkpointer only brings back SQLite's usual behaviour,
//! never an unbounded WAL.

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::WriterError;

/// Between two checkpoints: short enough that each copies few pages.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(20);

/// The writer's own automatic checkpoint: only if the checkpointer falls this far behind (or is
/// gone) does the writer copy frames back itself, as SQLite does by default at 1,000 pages.
pub(super) const WRITER_AUTOCHECKPOINT_PAGES: i64 = 10_000;

/// The handle on the checkpointer thread: dropping or stopping it ends the thread.
pub(super) struct Checkpointer {
    stop: flume::Sender<()>,
    ended: oneshot::Receiver<()>,
}

impl Checkpointer {
    /// Starts the thread with a connection of its own to `path` (already in WAL).
    pub(super) fn start(path: &Path, busy_timeout: Duration) -> Result<Self, WriterError> {
        let connection = Connection::open(path).map_err(WriterError::Open)?;
        connection
            .busy_timeout(busy_timeout)
            .map_err(WriterError::Open)?;
        let (stop, stopped) = flume::bounded::<()>(1);
        let (ended_sender, ended) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("ledger-sqlite-checkpointer".to_owned())
            .spawn(move || {
                // A message or a dropped handle both mean stop.
                while let Err(flume::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(CHECKPOINT_INTERVAL)
                {
                    checkpoint(&connection);
                }
                drop(connection);
                drop(ended_sender);
            })
            .map_err(WriterError::Spawn)?;
        Ok(Self { stop, ended })
    }

    /// Stops the thread after the checkpoint in hand and waits until it has ended.
    pub(super) async fn stop(self) {
        let _ = self.stop.send_async(()).await;
        let _ = self.ended.await;
    }
}

/// One passive checkpoint. A failure (a busy database, an I/O error) only leaves the frames for the
/// next one, or for the writer's own bound: it is logged, never fatal.
fn checkpoint(connection: &Connection) {
    let outcome = connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
        Ok((row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
    });
    match outcome {
        Ok((wal_frames, checkpointed)) => {
            tracing::trace!(wal_frames, checkpointed, "WAL checkpointed");
        }
        Err(error) => tracing::debug!(%error, "WAL checkpoint failed; the next one retries"),
    }
}
