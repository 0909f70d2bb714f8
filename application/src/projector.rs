//! The projector: folds recorded events into the read model, exactly once each, in stream order.
//!
//! `Projector` decides per event (apply only `last_sequence + 1`, skip duplicates, never apply past a
//! gap) and keeps the dead letters: a poison event (undecodable, or refused after bounded retries)
//! is recorded with its raw form, and the later events of its account wait behind it, recorded as
//! waiting, until an operator redrives it (`Projector::redrive`). `FeedProjector` drives it from an
//! `EventFeed` with a stored checkpoint. `ProjectionProgress` and the two health checks report what
//! readiness needs: the projection lag and whether dead letters are open.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ledger_domain::AccountId;
use tokio::sync::{Notify, watch};

use crate::codec;
use crate::envelope::RecordedEvent;
use crate::ports::{
    ApplyOutcome, Clock, DeadLetter, DeadLetterId, EventFeed, EventStore, FeedEntry, HealthCheck,
    Projection, ReadModelUpdate, StoreError, StoredDeadLetter, UndecodableEvent,
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
    /// Given up on (after bounded retries, or at once when it cannot be decoded) and recorded as a
    /// dead letter, so that other accounts go on.
    DeadLettered,
    /// An earlier event of its account is a dead letter: recorded as waiting behind it, at once and
    /// without retries, to be applied when that letter is redriven.
    WaitingBehindDeadLetter,
}

/// How far behind the projector is, as readiness sees it.
///
/// Caught up (the source had nothing more) means no lag. Otherwise the lag runs from the newest event
/// handled, or from the moment work was found if that is later: under writes that never stop this is
/// the age of the events being projected, and a projector that hangs or keeps failing sees it grow.
#[derive(Debug)]
pub struct ProjectionProgress {
    state: Mutex<ProgressState>,
}

#[derive(Debug, Clone, Copy)]
struct ProgressState {
    caught_up: bool,
    working_since: DateTime<Utc>,
    newest_handled: Option<DateTime<Utc>>,
}

impl ProjectionProgress {
    /// A projector that has just started: not caught up, working since `now`.
    pub fn new(now: DateTime<Utc>) -> Self {
        Self {
            state: Mutex::new(ProgressState {
                caught_up: false,
                working_since: now,
                newest_handled: None,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ProgressState> {
        // Plain values only: a poisoned lock still holds a usable state.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The source handed out events: if the projector was caught up, it is working from `now` on.
    pub fn found_work(&self, now: DateTime<Utc>) {
        let mut state = self.lock();
        if state.caught_up {
            state.caught_up = false;
            state.working_since = now;
        }
    }

    /// An event recorded at `recorded_at` was handled (applied, skipped or dead-lettered).
    pub fn handled(&self, recorded_at: DateTime<Utc>) {
        let mut state = self.lock();
        state.newest_handled = Some(
            state
                .newest_handled
                .map_or(recorded_at, |n| n.max(recorded_at)),
        );
    }

    /// The source had nothing more to hand out.
    pub fn caught_up(&self) {
        self.lock().caught_up = true;
    }

    /// The lag at `now`; zero when caught up.
    pub fn lag(&self, now: DateTime<Utc>) -> Duration {
        let state = *self.lock();
        if state.caught_up {
            return Duration::ZERO;
        }
        let since = state.newest_handled.map_or(state.working_since, |newest| {
            newest.max(state.working_since)
        });
        (now - since).to_std().unwrap_or(Duration::ZERO)
    }
}

/// The per-event rule of design §5, over any `Projection`, with bounded retries and dead letters.
/// Every event source (the embedded feed, the DynamoDB Streams reader, the Lambda) projects through it.
pub struct Projector {
    projection: Arc<dyn Projection>,
    clock: Arc<dyn Clock>,
    retry: ProjectionRetry,
    progress: Arc<ProjectionProgress>,
}

impl std::fmt::Debug for Projector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Projector").finish_non_exhaustive()
    }
}

/// How many times a conditional apply may find its expectation stale before the projector reports the
/// projection as unavailable; each stale answer means another projector advanced the account meanwhile.
const STALE_RETRIES_MAX: u32 = 3;

/// Rounds of a redrive: apply the account's tail, resolve its letters, and look again for events
/// that a running projector recorded as waiting meanwhile.
const REDRIVE_ROUNDS_MAX: u32 = 3;

/// What a redrive did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redriven {
    pub account_id: AccountId,
    /// Events applied: the dead letter's and those that waited behind it, in sequence order.
    pub applied: u64,
    /// Letters marked resolved.
    pub resolved: u64,
    /// The account's `last_sequence` afterwards.
    pub last_sequence: u64,
}

/// Why a dead letter could not be redriven. Nothing is resolved then: the letter stays open.
#[derive(Debug, thiserror::Error)]
pub enum RedriveError {
    #[error("no dead letter {0}")]
    NotFound(DeadLetterId),
    #[error("dead letter {0} is already resolved")]
    AlreadyResolved(DeadLetterId),
    #[error(
        "dead letter {0} does not say which account and sequence it belongs to (a record that \
         could not be read, or stream records lost to the 24-hour trim): it cannot be redriven; \
         rebuild the read model from the event store"
    )]
    NoIdentity(DeadLetterId),
    #[error("the account's events still cannot be projected: {0}")]
    StillFailing(#[source] StoreError),
    #[error(
        "the event store has no event {sequence} of account {account_id} after the read model's \
         last one: the store itself has a hole"
    )]
    MissingInStore {
        account_id: AccountId,
        sequence: u64,
    },
}

impl Projector {
    pub fn new(
        projection: Arc<dyn Projection>,
        clock: Arc<dyn Clock>,
        retry: ProjectionRetry,
    ) -> Self {
        let progress = Arc::new(ProjectionProgress::new(clock.now()));
        Self {
            projection,
            clock,
            retry,
            progress,
        }
    }

    /// How far behind this projector is; shared with the readiness check.
    pub fn progress(&self) -> Arc<ProjectionProgress> {
        Arc::clone(&self.progress)
    }

    /// The source handed out events: if the projector was caught up, it is working from now on.
    pub fn note_work_found(&self) {
        self.progress.found_work(self.clock.now());
    }

    /// Projects one event, retrying a gap or a corrupt read model a bounded number of times before
    /// dead-lettering it. An event past a gap whose account has an open dead letter waits behind it
    /// at once (no retries: it cannot heal before the letter is redriven). An unavailable store is
    /// returned as an error, and nothing is dead-lettered for an outage: the caller retries later
    /// from its checkpoint.
    pub async fn project(&self, event: &RecordedEvent) -> Result<Projected, StoreError> {
        let projected = self.project_with_retries(event).await?;
        self.progress.handled(event.recorded_at());
        Ok(projected)
    }

    async fn project_with_retries(&self, event: &RecordedEvent) -> Result<Projected, StoreError> {
        let mut reason = String::new();
        for attempt in 1..=self.retry.attempts_per_event_max {
            match self.handle(event).await {
                Ok(Handled::Applied) => return Ok(Projected::Applied),
                Ok(Handled::Duplicate) => return Ok(Projected::Duplicate),
                Ok(Handled::Gap { last_sequence }) => {
                    if attempt == 1
                        && let Some(head) = self
                            .projection
                            .blocking_dead_letter(&event.account_id)
                            .await?
                        && let Some(projected) = self.behind(event, &head).await?
                    {
                        return Ok(projected);
                    }
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
        let id = self
            .projection
            .record_dead_letter(&self.letter(event, reason.clone(), None))
            .await?;
        tracing::warn!(dead_letter = %id, account_id = %event.account_id, sequence = event.sequence,
            %reason, "event dead-lettered; the account's later events wait behind it until \
            `ledger dead-letters retry {id}`");
        Ok(Projected::DeadLettered)
    }

    /// An event past a gap, given its account's blocking letter `head`: it waits behind `head` if it
    /// comes after it; it is `head` itself if the sequences match (a redelivery); an event before
    /// the head is a gap of its own (`None`), judged by the usual retries.
    async fn behind(
        &self,
        event: &RecordedEvent,
        head: &StoredDeadLetter,
    ) -> Result<Option<Projected>, StoreError> {
        let Some(head_sequence) = head.letter.sequence else {
            return Ok(None);
        };
        if event.sequence == head_sequence {
            return Ok(Some(Projected::DeadLettered));
        }
        if event.sequence < head_sequence {
            return Ok(None);
        }
        let reason = format!(
            "waiting behind dead letter {} (event {} of the account)",
            head.id, head_sequence
        );
        let id = self
            .projection
            .record_dead_letter(&self.letter(event, reason, Some(head.id)))
            .await?;
        tracing::warn!(dead_letter = %id, waiting_behind = %head.id, account_id = %event.account_id,
            sequence = event.sequence, "event waits behind a dead letter of its account");
        Ok(Some(Projected::WaitingBehindDeadLetter))
    }

    /// Dead-letters a stored event that cannot be decoded, with its raw form, at once: decoding is a
    /// pure function of the stored bytes, so retrying it cannot help; a fixed build or repaired data
    /// is what heals it, through `redrive`. If its account is known to have applied it already (a
    /// redelivery after a redrive), it is a duplicate.
    pub async fn project_undecodable(
        &self,
        undecodable: &UndecodableEvent,
    ) -> Result<Projected, StoreError> {
        if let (Some(account_id), Some(sequence)) = (&undecodable.account_id, undecodable.sequence)
            && self.projection.last_sequence(account_id).await? >= sequence
        {
            return Ok(Projected::Duplicate);
        }
        let letter = DeadLetter {
            account_id: undecodable.account_id.clone(),
            sequence: undecodable.sequence,
            event_id: None,
            event_type: None,
            raw: undecodable.raw.clone(),
            reason: format!("undecodable: {}", undecodable.error),
            waiting_behind: None,
            recorded_at: self.clock.now(),
        };
        let id = self.projection.record_dead_letter(&letter).await?;
        tracing::warn!(dead_letter = %id, account_id = ?undecodable.account_id,
            sequence = ?undecodable.sequence, error = %undecodable.error,
            "undecodable event dead-lettered; the account's later events wait behind it");
        Ok(Projected::DeadLettered)
    }

    /// Records a loss the projector cannot see event by event (stream records trimmed before they
    /// were read): a letter without an account, so that readiness fails until the read model is
    /// rebuilt. `raw` says where the loss is; recording the same loss again keeps one letter.
    pub async fn record_loss(
        &self,
        raw: String,
        reason: String,
    ) -> Result<DeadLetterId, StoreError> {
        let letter = DeadLetter {
            account_id: None,
            sequence: None,
            event_id: None,
            event_type: None,
            raw,
            reason,
            waiting_behind: None,
            recorded_at: self.clock.now(),
        };
        self.projection.record_dead_letter(&letter).await
    }

    fn letter(
        &self,
        event: &RecordedEvent,
        reason: String,
        waiting_behind: Option<DeadLetterId>,
    ) -> DeadLetter {
        DeadLetter {
            account_id: Some(event.account_id.clone()),
            sequence: Some(event.sequence),
            event_id: Some(event.event_id),
            event_type: Some(event.event.event_type().to_owned()),
            raw: raw_form(event),
            reason,
            waiting_behind,
            recorded_at: self.clock.now(),
        }
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

    /// Redrives dead letter `id` after a fix: re-reads its account's events from `events`, from the
    /// read model's `last_sequence` on, applies them through the sequence rule (the dead one first,
    /// then those that waited behind it, in order), and resolves every letter of the account they
    /// cover. A letter that waits behind another redrives that one. If the events still cannot be
    /// read or applied, nothing is resolved and the error says why.
    pub async fn redrive(
        &self,
        events: &dyn EventStore,
        id: DeadLetterId,
    ) -> Result<Redriven, RedriveError> {
        let stored = self
            .projection
            .dead_letter(id)
            .await
            .map_err(RedriveError::StillFailing)?
            .ok_or(RedriveError::NotFound(id))?;
        if stored.resolved_at.is_some() {
            return Err(RedriveError::AlreadyResolved(id));
        }
        let Some(account_id) = stored.letter.account_id.clone() else {
            return Err(RedriveError::NoIdentity(id));
        };
        if stored.letter.sequence.is_none() {
            return Err(RedriveError::NoIdentity(id));
        }
        let mut applied = 0;
        let mut resolved = 0;
        let mut last_sequence = 0;
        for _ in 0..REDRIVE_ROUNDS_MAX {
            last_sequence = self
                .projection
                .last_sequence(&account_id)
                .await
                .map_err(RedriveError::StillFailing)?;
            let tail = events
                .load(&account_id, last_sequence)
                .await
                .map_err(RedriveError::StillFailing)?;
            for event in &tail {
                match self
                    .handle(event)
                    .await
                    .map_err(RedriveError::StillFailing)?
                {
                    Handled::Applied => applied += 1,
                    Handled::Duplicate => {}
                    Handled::Gap { last_sequence } => {
                        return Err(RedriveError::MissingInStore {
                            account_id,
                            sequence: last_sequence + 1,
                        });
                    }
                }
                last_sequence = event.sequence;
            }
            resolved += self
                .projection
                .resolve_dead_letters(&account_id, last_sequence, self.clock.now())
                .await
                .map_err(RedriveError::StillFailing)?;
            if tail.is_empty() {
                break;
            }
        }
        if stored
            .letter
            .sequence
            .is_some_and(|sequence| sequence > last_sequence)
        {
            return Err(RedriveError::MissingInStore {
                account_id,
                sequence: last_sequence + 1,
            });
        }
        tracing::info!(dead_letter = %id, %account_id, applied, resolved, last_sequence,
            "dead letter redriven");
        Ok(Redriven {
            account_id,
            applied,
            resolved,
            last_sequence,
        })
    }
}

/// An event's raw form in a dead letter: its storage columns (the shared codec's), as JSON.
fn raw_form(event: &RecordedEvent) -> String {
    match codec::encode(event) {
        Ok(encoded) => serde_json::json!({
            "account_id": encoded.account_id,
            "sequence": encoded.sequence,
            "event_id": encoded.event_id,
            "event_type": encoded.event_type,
            "schema_version": encoded.schema_version,
            "payload": encoded.payload,
            "metadata": encoded.metadata,
            "recorded_at": encoded.recorded_at,
        })
        .to_string(),
        Err(error) => serde_json::json!({ "unencodable": error.to_string() }).to_string(),
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

/// Why readiness fails on the projector's account. Only in the logs: the body names the check.
#[derive(Debug, thiserror::Error)]
enum ProjectorUnready {
    #[error(
        "dead letter {oldest} is open ({reason}); list them with `ledger dead-letters list`, redrive \
         with `ledger dead-letters retry ID`"
    )]
    DeadLetters {
        oldest: DeadLetterId,
        reason: String,
    },
    #[error("projection lag {lag_ms} ms exceeds the bound of {lag_max_ms} ms")]
    Behind { lag_ms: u128, lag_max_ms: u128 },
}

/// Readiness fails while any dead letter is open (`dead_letters`): the read model is missing events.
pub struct DeadLetterCheck {
    projection: Arc<dyn Projection>,
}

impl DeadLetterCheck {
    pub fn new(projection: Arc<dyn Projection>) -> Self {
        Self { projection }
    }
}

impl std::fmt::Debug for DeadLetterCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetterCheck").finish_non_exhaustive()
    }
}

#[async_trait]
impl HealthCheck for DeadLetterCheck {
    fn name(&self) -> &'static str {
        "dead_letters"
    }

    async fn check(&self) -> Result<(), StoreError> {
        match self.projection.dead_letters(1).await?.into_iter().next() {
            None => Ok(()),
            Some(oldest) => Err(StoreError::unavailable(ProjectorUnready::DeadLetters {
                oldest: oldest.id,
                reason: oldest.letter.reason,
            })),
        }
    }
}

/// Readiness fails while the projection lag exceeds a bound (`projection_lag`).
pub struct ProjectionLagCheck {
    progress: Arc<ProjectionProgress>,
    clock: Arc<dyn Clock>,
    lag_max: Duration,
}

impl ProjectionLagCheck {
    pub fn new(
        progress: Arc<ProjectionProgress>,
        clock: Arc<dyn Clock>,
        lag_max: Duration,
    ) -> Self {
        Self {
            progress,
            clock,
            lag_max,
        }
    }
}

impl std::fmt::Debug for ProjectionLagCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectionLagCheck")
            .field("lag_max", &self.lag_max)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl HealthCheck for ProjectionLagCheck {
    fn name(&self) -> &'static str {
        "projection_lag"
    }

    async fn check(&self) -> Result<(), StoreError> {
        let lag = self.progress.lag(self.clock.now());
        if lag > self.lag_max {
            return Err(StoreError::unavailable(ProjectorUnready::Behind {
                lag_ms: lag.as_millis(),
                lag_max_ms: self.lag_max.as_millis(),
            }));
        }
        Ok(())
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
        let stored = self.projection.checkpoint(&self.name).await?.unwrap_or(0);
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
        for item in &batch {
            match &item.entry {
                FeedEntry::Event(event) => self.projector.project(event).await?,
                FeedEntry::Undecodable(undecodable) => {
                    self.projector.project_undecodable(undecodable).await?
                }
            };
        }
        cursor.position = batch_end;
        Ok(batch.len())
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
            .expect_blocking_dead_letter()
            .times(1)
            .returning(|_| Ok(None));
        projection
            .expect_record_dead_letter()
            .withf(|letter| {
                letter.sequence == Some(3)
                    && letter.reason.starts_with("gap")
                    && letter.waiting_behind.is_none()
                    && letter.raw.contains("\"sequence\":3")
            })
            .times(1)
            .returning(|_| Ok(DeadLetterId::new(7)));
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

    fn open_letter(id: u64, sequence: u64) -> StoredDeadLetter {
        StoredDeadLetter {
            id: DeadLetterId::new(id),
            letter: DeadLetter {
                account_id: Some(AccountId::parse("acc-1").unwrap()),
                sequence: Some(sequence),
                event_id: None,
                event_type: None,
                raw: "{}".to_owned(),
                reason: "undecodable: test".to_owned(),
                waiting_behind: None,
                recorded_at: Utc::now(),
            },
            resolved_at: None,
        }
    }

    #[tokio::test]
    async fn an_event_behind_a_dead_letter_waits_at_once_without_retries() {
        let mut projection = at_sequence(1);
        projection.expect_apply().never();
        projection
            .expect_blocking_dead_letter()
            .times(1)
            .returning(|_| Ok(Some(open_letter(4, 2))));
        projection
            .expect_record_dead_letter()
            .withf(|letter| {
                letter.sequence == Some(5) && letter.waiting_behind == Some(DeadLetterId::new(4))
            })
            .times(1)
            .returning(|_| Ok(DeadLetterId::new(9)));
        let projected = projector(projection).project(&event(5)).await.unwrap();
        assert_eq!(projected, Projected::WaitingBehindDeadLetter);
    }

    #[tokio::test]
    async fn a_redelivered_dead_letter_is_not_recorded_again() {
        // Event 2 of acc-1 is the open letter; it arrives again past its own gap (1 is missing).
        let mut projection = at_sequence(0);
        projection
            .expect_blocking_dead_letter()
            .times(1)
            .returning(|_| Ok(Some(open_letter(4, 2))));
        projection.expect_record_dead_letter().never();
        projection.expect_apply().never();
        let projected = projector(projection).project(&event(2)).await.unwrap();
        assert_eq!(projected, Projected::DeadLettered);
    }

    #[tokio::test]
    async fn an_undecodable_event_is_dead_lettered_at_once_with_its_raw_form() {
        let mut projection = at_sequence(1);
        projection
            .expect_record_dead_letter()
            .withf(|letter| {
                letter.raw == "{\"payload\":\"garbage\"}"
                    && letter.sequence == Some(2)
                    && letter.reason.contains("bad payload")
            })
            .times(1)
            .returning(|_| Ok(DeadLetterId::new(1)));
        let undecodable = UndecodableEvent {
            account_id: Some(AccountId::parse("acc-1").unwrap()),
            sequence: Some(2),
            raw: "{\"payload\":\"garbage\"}".to_owned(),
            error: "bad payload".to_owned(),
        };
        let projected = projector(projection)
            .project_undecodable(&undecodable)
            .await
            .unwrap();
        assert_eq!(projected, Projected::DeadLettered);
    }

    #[test]
    fn progress_lags_from_the_newest_event_handled_until_caught_up() {
        let start = Utc::now();
        let progress = ProjectionProgress::new(start);
        let later = start + chrono::Duration::seconds(3);
        assert_eq!(progress.lag(later), Duration::from_secs(3));
        progress.handled(start + chrono::Duration::seconds(2));
        assert_eq!(progress.lag(later), Duration::from_secs(1));
        progress.caught_up();
        assert_eq!(progress.lag(later), Duration::ZERO);
        // Work found after a quiet spell counts from when it was found, not from the old event.
        let found = start + chrono::Duration::seconds(60);
        progress.found_work(found);
        assert_eq!(
            progress.lag(found + chrono::Duration::seconds(2)),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn classification_covers_every_ordering() {
        assert_eq!(classify(0, 1), Classification::Next);
        assert_eq!(classify(3, 3), Classification::Duplicate);
        assert_eq!(classify(3, 5), Classification::Gap);
    }
}
