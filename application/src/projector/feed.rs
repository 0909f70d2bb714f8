//! `FeedProjector`: follows an `EventFeed` from its stored checkpoint and projects every event, one
//! batch a round (written to the read model in one transaction where the sequence rule allows),
//! storing the checkpoint on its cadence and stopping between batches.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};

use super::{ProjectionProgress, ProjectionRetry, Projector};
use crate::envelope::RecordedEvent;
use crate::ports::{Clock, EventFeed, FeedEntry, Projection, ProjectionCheckpoints, StoreError};

/// Bounds of the feed-following loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedProjectorConfig {
    /// Events read per feed request, and so the most the projector writes in one read-model
    /// transaction (see [`Projector::project_batch`]).
    pub batch_size: usize,
    /// Retries of one failing event before it is dead-lettered.
    pub retry: ProjectionRetry,
    /// Longest sleep when the feed is idle and nobody signals new events.
    pub idle_poll_max: Duration,
    /// Longest back-off while the read model or feed is unavailable.
    pub unavailable_backoff_max: Duration,
    /// While busy, the checkpoint is stored after at most this many events...
    pub checkpoint_every_events: u64,
    /// ...or this much time, whichever comes first (and always when the feed falls idle).
    pub checkpoint_interval: Duration,
}

impl Default for FeedProjectorConfig {
    fn default() -> Self {
        Self {
            // Large enough that one commit serves many events under load, small enough that a
            // batch's transaction stays short beside the queries (and below `BATCH_EVENTS_MAX`).
            batch_size: 512,
            retry: ProjectionRetry::default(),
            idle_poll_max: Duration::from_millis(500),
            unavailable_backoff_max: Duration::from_secs(5),
            checkpoint_every_events: 1_000,
            checkpoint_interval: Duration::from_secs(1),
        }
    }
}

/// Where a feed reader is: the position it has projected up to, and the one last stored.
#[derive(Debug, Clone, Copy)]
struct Cursor {
    position: u64,
    saved: u64,
    saved_at: tokio::time::Instant,
}

/// Follows an `EventFeed` from its stored checkpoint and projects every event.
pub struct FeedProjector {
    name: String,
    feed: Arc<dyn EventFeed>,
    checkpoints: Arc<dyn ProjectionCheckpoints>,
    projector: Projector,
    config: FeedProjectorConfig,
    wake: Arc<Notify>,
}

impl std::fmt::Debug for FeedProjector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedProjector")
            .field("name", &self.name)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl FeedProjector {
    /// Projects `feed` into `projection`, keeping its position under `name` in `checkpoints`.
    /// `wake` is notified by whoever appends (see `SignallingEventStore`), so new events are projected
    /// at once instead of at the next idle poll.
    pub fn new(
        name: impl Into<String>,
        feed: Arc<dyn EventFeed>,
        projection: Arc<dyn Projection>,
        checkpoints: Arc<dyn ProjectionCheckpoints>,
        clock: Arc<dyn Clock>,
        config: FeedProjectorConfig,
        wake: Arc<Notify>,
    ) -> Self {
        Self {
            name: name.into(),
            feed,
            checkpoints,
            projector: Projector::new(projection, clock, config.retry),
            config,
            wake,
        }
    }

    /// How far behind this projector is; shared with the readiness check.
    pub fn progress(&self) -> Arc<ProjectionProgress> {
        self.projector.progress()
    }

    /// Projects everything the feed holds until a read finds nothing more, storing the checkpoint on
    /// the usual cadence and at the end. Returns the number of entries read. Meant for a feed that
    /// writers have stopped feeding (tools, tests); `run` is what follows a live one.
    pub async fn catch_up(&self) -> Result<usize, StoreError> {
        let mut cursor = self.load_cursor().await?;
        let mut read = 0;
        loop {
            let batch = self.project_batch(&mut cursor).await?;
            if batch == 0 {
                break;
            }
            read += batch;
            if self.checkpoint_due(&cursor) {
                self.save(&mut cursor).await?;
            }
        }
        self.save(&mut cursor).await?;
        Ok(read)
    }

    /// Runs until `shutdown` turns true, then returns after the batch in hand is projected and its
    /// checkpoint stored: a restart resumes exactly there.
    ///
    /// Each round is one batch, after which the checkpoint cadence and `shutdown` are looked at, so
    /// both hold under writes that never stop. While busy, the checkpoint is stored every
    /// `checkpoint_every_events` events or `checkpoint_interval`, whenever the feed falls idle, and at
    /// shutdown: not after every batch, which under load would cost a durable write per command. What
    /// a crash loses is only redelivery, which the sequence rule turns into skipped duplicates.
    /// A stop that comes while the projection is unavailable stores nothing (the position in hand
    /// was dropped to retry from the stored one); the restart then redelivers from there.
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>) {
        let mut cursor: Option<Cursor> = None;
        let mut idle_wait = Duration::from_millis(5);
        let mut unavailable_backoff = Duration::from_millis(50);
        while !*shutdown.borrow() {
            let round = async {
                let cursor = match cursor.as_mut() {
                    Some(cursor) => cursor,
                    None => cursor.insert(self.load_cursor().await?),
                };
                let read = self.project_batch(cursor).await?;
                if self.checkpoint_due(cursor) {
                    self.save(cursor).await?;
                }
                Ok::<_, StoreError>(read)
            };
            match round.await {
                Ok(0) => {
                    // `biased;`: branches are polled in order instead of at random, so a seeded
                    // simulation replays exactly; which of two ready branches wins is harmless here.
                    let fell_idle = tokio::select! {
                        biased;
                        () = self.wake.notified() => {
                            idle_wait = Duration::from_millis(5);
                            false
                        }
                        () = tokio::time::sleep(idle_wait) => {
                            idle_wait = (idle_wait * 2).min(self.config.idle_poll_max);
                            true
                        }
                        _ = shutdown.changed() => false,
                    };
                    // Nothing arrived for a while: a good moment to store the position.
                    if let (true, Some(cursor)) = (fell_idle, cursor.as_mut())
                        && let Err(error) = self.save(cursor).await
                    {
                        tracing::warn!(projector = %self.name, %error, "checkpoint not stored");
                    }
                }
                Ok(_) => {
                    unavailable_backoff = Duration::from_millis(50);
                }
                Err(error) => {
                    tracing::warn!(projector = %self.name, %error, "projection unavailable; backing off");
                    // Forget the in-memory position: the next round starts from the stored one.
                    cursor = None;
                    tokio::select! {
                        biased;
                        () = tokio::time::sleep(unavailable_backoff) => {}
                        _ = shutdown.changed() => {}
                    }
                    unavailable_backoff =
                        (unavailable_backoff * 2).min(self.config.unavailable_backoff_max);
                }
            }
        }
        if let Some(cursor) = cursor.as_mut()
            && let Err(error) = self.save(cursor).await
        {
            tracing::error!(projector = %self.name, %error, "checkpoint not stored at shutdown");
            return;
        }
        tracing::info!(projector = %self.name, "projector stopped with its checkpoint stored");
    }

    async fn load_cursor(&self) -> Result<Cursor, StoreError> {
        let stored = self
            .checkpoints
            .feed_checkpoint(&self.name)
            .await?
            .unwrap_or(0);
        Ok(Cursor {
            position: stored,
            saved: stored,
            saved_at: tokio::time::Instant::now(),
        })
    }

    /// Reads one batch after the cursor and projects it, moving the cursor (not the stored
    /// checkpoint) past the batch once all its entries are handled. Returns the number read; 0 means
    /// the feed is caught up.
    async fn project_batch(&self, cursor: &mut Cursor) -> Result<usize, StoreError> {
        let batch = self
            .feed
            .read_after(cursor.position, self.config.batch_size)
            .await?;
        let Some(last) = batch.last() else {
            self.projector.progress().caught_up();
            return Ok(0);
        };
        self.projector.note_work_found();
        let batch_end = last.position;
        // The decodable events between two undecodable entries go as one run through the
        // projector's batched path; an undecodable entry goes alone, in its place.
        let read = batch.len();
        let mut run: Vec<RecordedEvent> = Vec::with_capacity(read);
        for item in batch {
            match item.entry {
                FeedEntry::Event(event) => run.push(event),
                FeedEntry::Undecodable(undecodable) => {
                    self.projector.project_batch(&run).await?;
                    run.clear();
                    self.projector.project_undecodable(&undecodable).await?;
                }
            }
        }
        self.projector.project_batch(&run).await?;
        cursor.position = batch_end;
        Ok(read)
    }

    fn checkpoint_due(&self, cursor: &Cursor) -> bool {
        // Saturating: a feed that delivers again (a batch ending below the stored checkpoint) leaves
        // the cursor behind `saved`, which must mean "nothing new", not an overflow.
        cursor.position.saturating_sub(cursor.saved) >= self.config.checkpoint_every_events
            || cursor.saved_at.elapsed() >= self.config.checkpoint_interval
    }

    /// Stores the cursor's position as the checkpoint, if it moved since the last save.
    async fn save(&self, cursor: &mut Cursor) -> Result<(), StoreError> {
        if cursor.position > cursor.saved {
            self.checkpoints
                .save_feed_checkpoint(&self.name, cursor.position)
                .await?;
            cursor.saved = cursor.position;
        }
        cursor.saved_at = tokio::time::Instant::now();
        Ok(())
    }
}
