//! The projector: folds recorded events into the read model, exactly once each, in stream order.
//!
//! `Projector` decides per event (apply only `last_sequence + 1`, skip duplicates, never apply past a
//! gap). `FeedProjector` drives it from an `EventFeed` with a stored checkpoint, dead-lettering an event
//! only after bounded retries so that one bad event does not stall every other account.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};

use crate::envelope::RecordedEvent;
use crate::ports::{
    ApplyOutcome, Clock, DeadLetter, EventFeed, Projection, ReadModelUpdate, StoreError,
};

/// What became of one delivered event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    Applied,
    /// Already applied (a redelivery): skipped, harmless.
    Duplicate,
    /// An earlier event of the stream has not been applied yet: not applied, to be delivered again.
    Gap {
        last_sequence: u64,
    },
}

/// How patiently the projector treats one event that keeps failing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProjectionRetry {
    /// Attempts at an event that keeps failing (a gap or a poison payload) before it is dead-lettered.
    pub attempts_per_event_max: u32,
    /// Pause between those attempts.
    pub retry_delay: Duration,
}

impl Default for ProjectionRetry {
    fn default() -> Self {
        Self {
            attempts_per_event_max: 5,
            retry_delay: Duration::from_millis(20),
        }
    }
}

/// What finally became of one event handed to [`Projector::project`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Projected {
    Applied,
    Duplicate,
    /// Given up on after bounded retries and recorded as a dead letter, so that other accounts go on.
    DeadLettered,
}

/// The per-event rule of design §5, over any `Projection`, with bounded retries and dead letters.
/// Every event source (the embedded feed, the DynamoDB Streams reader, the Lambda) projects through it.
pub struct Projector {
    projection: Arc<dyn Projection>,
    clock: Arc<dyn Clock>,
    retry: ProjectionRetry,
}

impl std::fmt::Debug for Projector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Projector").finish_non_exhaustive()
    }
}

/// How many times a conditional apply may find its expectation stale before the projector reports the
/// projection as unavailable; each stale answer means another projector advanced the account meanwhile.
const STALE_RETRIES_MAX: u32 = 3;

impl Projector {
    pub fn new(
        projection: Arc<dyn Projection>,
        clock: Arc<dyn Clock>,
        retry: ProjectionRetry,
    ) -> Self {
        Self {
            projection,
            clock,
            retry,
        }
    }

    /// Projects one event, retrying a gap or a corrupt read model a bounded number of times before
    /// dead-lettering it. An unavailable store is returned as an error, and nothing is dead-lettered
    /// for an outage: the caller retries later from its checkpoint.
    pub async fn project(&self, event: &RecordedEvent) -> Result<Projected, StoreError> {
        let mut reason = String::new();
        for attempt in 1..=self.retry.attempts_per_event_max {
            match self.handle(event).await {
                Ok(Handled::Applied) => return Ok(Projected::Applied),
                Ok(Handled::Duplicate) => return Ok(Projected::Duplicate),
                Ok(Handled::Gap { last_sequence }) => {
                    reason = format!(
                        "gap: read model is at sequence {last_sequence}, event is {}",
                        event.sequence
                    );
                }
                Err(StoreError::Corrupt { detail }) => reason = detail,
                Err(unavailable @ StoreError::Unavailable(_)) => return Err(unavailable),
            }
            if attempt < self.retry.attempts_per_event_max {
                tokio::time::sleep(self.retry.retry_delay).await;
            }
        }
        tracing::error!(account_id = %event.account_id, sequence = event.sequence, %reason,
            "event dead-lettered");
        self.projection
            .record_dead_letter(&DeadLetter {
                account_id: event.account_id.clone(),
                sequence: event.sequence,
                event_id: event.event_id,
                event_type: event.event.event_type().to_owned(),
                reason,
                recorded_at: self.clock.now(),
            })
            .await?;
        Ok(Projected::DeadLettered)
    }

    /// Applies `event` if and only if it is the next one of its stream.
    #[tracing::instrument(skip_all, fields(account_id = %event.account_id, sequence = event.sequence))]
    pub async fn handle(&self, event: &RecordedEvent) -> Result<Handled, StoreError> {
        let update = ReadModelUpdate::from_event(event);
        for _ in 0..=STALE_RETRIES_MAX {
            let last_sequence = self.projection.last_sequence(&event.account_id).await?;
            match classify(last_sequence, event.sequence) {
                Classification::Next => {}
                Classification::Duplicate => return Ok(Handled::Duplicate),
                Classification::Gap => return Ok(Handled::Gap { last_sequence }),
            }
            match self.projection.apply(&update).await? {
                ApplyOutcome::Applied => return Ok(Handled::Applied),
                // Someone moved last_sequence between our read and our write; look again.
                ApplyOutcome::Stale => {}
            }
        }
        Err(StoreError::unavailable(format!(
            "apply of {}/{} stayed stale after {STALE_RETRIES_MAX} retries",
            event.account_id, event.sequence
        )))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Classification {
    Next,
    Duplicate,
    Gap,
}

fn classify(last_sequence: u64, sequence: u64) -> Classification {
    match sequence.cmp(&(last_sequence + 1)) {
        std::cmp::Ordering::Equal => Classification::Next,
        std::cmp::Ordering::Less => Classification::Duplicate,
        std::cmp::Ordering::Greater => Classification::Gap,
    }
}

/// Bounds of the feed-following loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedProjectorConfig {
    /// Events read per feed request.
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
            batch_size: 256,
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
    projection: Arc<dyn Projection>,
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
    /// `wake` is notified by whoever appends (see `SignallingEventStore`), so new events are projected
    /// at once instead of at the next idle poll.
    pub fn new(
        name: impl Into<String>,
        feed: Arc<dyn EventFeed>,
        projection: Arc<dyn Projection>,
        clock: Arc<dyn Clock>,
        config: FeedProjectorConfig,
        wake: Arc<Notify>,
    ) -> Self {
        Self {
            name: name.into(),
            feed,
            projector: Projector::new(Arc::clone(&projection), clock, config.retry),
            projection,
            config,
            wake,
        }
    }

    /// Projects everything the feed holds now and stores the checkpoint. Returns the number of events
    /// read.
    pub async fn catch_up(&self) -> Result<usize, StoreError> {
        let mut cursor = self.load_cursor().await?;
        let read = self.project_available(&mut cursor).await?;
        self.save(&mut cursor).await?;
        Ok(read)
    }

    /// Runs until `shutdown` turns true, then returns after the batch in hand is projected and its
    /// checkpoint stored: a restart resumes exactly there.
    ///
    /// While busy, the checkpoint is stored every `checkpoint_every_events` events or
    /// `checkpoint_interval`, whenever the feed falls idle, and at shutdown: not after every batch, which under load
    /// would cost a durable write per command. What a crash loses is only redelivery, which the
    /// sequence rule turns into skipped duplicates.
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
                let read = self.project_available(cursor).await?;
                if self.checkpoint_due(cursor) {
                    self.save(cursor).await?;
                }
                Ok::<_, StoreError>(read)
            };
            match round.await {
                Ok(0) => {
                    let fell_idle = tokio::select! {
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
        let stored = self.projection.checkpoint(&self.name).await?.unwrap_or(0);
        Ok(Cursor {
            position: stored,
            saved: stored,
            saved_at: tokio::time::Instant::now(),
        })
    }

    /// Projects every event the feed holds after the cursor, moving the cursor (not the stored
    /// checkpoint) past each batch once all its events are projected.
    async fn project_available(&self, cursor: &mut Cursor) -> Result<usize, StoreError> {
        let mut read = 0;
        loop {
            let batch = self
                .feed
                .read_after(cursor.position, self.config.batch_size)
                .await?;
            let Some(last) = batch.last() else {
                return Ok(read);
            };
            let batch_end = last.position;
            for item in &batch {
                self.projector.project(&item.event).await?;
            }
            read += batch.len();
            cursor.position = batch_end;
        }
    }

    fn checkpoint_due(&self, cursor: &Cursor) -> bool {
        cursor.position - cursor.saved >= self.config.checkpoint_every_events
            || cursor.saved_at.elapsed() >= self.config.checkpoint_interval
    }

    /// Stores the cursor's position as the checkpoint, if it moved since the last save.
    async fn save(&self, cursor: &mut Cursor) -> Result<(), StoreError> {
        if cursor.position > cursor.saved {
            self.projection
                .save_checkpoint(&self.name, cursor.position)
                .await?;
            cursor.saved = cursor.position;
        }
        cursor.saved_at = tokio::time::Instant::now();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! The per-event decisions of the projector, against a mocked projection.

    use chrono::Utc;
    use ledger_domain::{AccountId, AccountUnfrozen};

    use super::*;
    use crate::envelope::{EventId, EventMetadata};
    use crate::idempotency::IdempotencyKey;
    use crate::ports::MockProjection;

    fn event(sequence: u64) -> RecordedEvent {
        RecordedEvent {
            account_id: AccountId::parse("acc-1").unwrap(),
            sequence,
            event_id: EventId::from_uuid(uuid::Uuid::now_v7()),
            event: ledger_domain::AccountEvent::AccountUnfrozen(AccountUnfrozen {}),
            metadata: EventMetadata {
                client_request_id: IdempotencyKey::parse("k").unwrap(),
                correlation_id: "c".to_owned(),
                causation_id: "k".to_owned(),
                recorded_at: Utc::now(),
                traceparent: None,
            },
        }
    }

    fn projector(projection: MockProjection) -> Projector {
        Projector::new(
            Arc::new(projection),
            Arc::new(crate::ports::SystemClock),
            ProjectionRetry {
                attempts_per_event_max: 3,
                retry_delay: Duration::from_millis(1),
            },
        )
    }

    fn at_sequence(last_sequence: u64) -> MockProjection {
        let mut projection = MockProjection::new();
        projection
            .expect_last_sequence()
            .returning(move |_| Ok(last_sequence));
        projection
    }

    #[tokio::test]
    async fn the_next_event_is_applied() {
        let mut projection = at_sequence(4);
        projection
            .expect_apply()
            .withf(|update| update.sequence == 5)
            .times(1)
            .returning(|_| Ok(ApplyOutcome::Applied));
        let handled = projector(projection).handle(&event(5)).await.unwrap();
        assert_eq!(handled, Handled::Applied);
    }

    #[tokio::test]
    async fn an_old_event_is_a_duplicate_and_never_applied() {
        let mut projection = at_sequence(4);
        projection.expect_apply().never();
        let projector = projector(projection);
        assert_eq!(
            projector.handle(&event(4)).await.unwrap(),
            Handled::Duplicate
        );
        assert_eq!(
            projector.handle(&event(1)).await.unwrap(),
            Handled::Duplicate
        );
    }

    #[tokio::test]
    async fn an_event_past_a_gap_is_never_applied() {
        let mut projection = at_sequence(4);
        projection.expect_apply().never();
        let handled = projector(projection).handle(&event(6)).await.unwrap();
        assert_eq!(handled, Handled::Gap { last_sequence: 4 });
    }

    #[tokio::test]
    async fn a_stale_apply_is_judged_again_on_a_fresh_read() {
        let mut projection = MockProjection::new();
        let mut reads = 0;
        // Another projector applies sequence 5 between our read and our write.
        projection
            .expect_last_sequence()
            .times(2)
            .returning(move |_| {
                reads += 1;
                Ok(if reads == 1 { 4 } else { 5 })
            });
        projection
            .expect_apply()
            .times(1)
            .returning(|_| Ok(ApplyOutcome::Stale));
        let handled = projector(projection).handle(&event(5)).await.unwrap();
        assert_eq!(handled, Handled::Duplicate);
    }

    #[tokio::test]
    async fn an_event_that_stays_past_a_gap_is_dead_lettered_after_bounded_retries() {
        let mut projection = at_sequence(1);
        projection.expect_apply().never();
        projection
            .expect_record_dead_letter()
            .withf(|letter| letter.sequence == 3 && letter.reason.starts_with("gap"))
            .times(1)
            .returning(|_| Ok(()));
        let projected = projector(projection).project(&event(3)).await.unwrap();
        assert_eq!(projected, Projected::DeadLettered);
    }

    #[tokio::test]
    async fn an_outage_is_never_dead_lettered() {
        let mut projection = MockProjection::new();
        projection
            .expect_last_sequence()
            .times(1)
            .returning(|_| Err(StoreError::unavailable("connection refused")));
        projection.expect_record_dead_letter().never();
        let error = projector(projection).project(&event(3)).await.unwrap_err();
        assert!(matches!(error, StoreError::Unavailable(_)));
    }

    #[test]
    fn classification_covers_every_ordering() {
        assert_eq!(classify(0, 1), Classification::Next);
        assert_eq!(classify(3, 3), Classification::Duplicate);
        assert_eq!(classify(3, 5), Classification::Gap);
    }
}
