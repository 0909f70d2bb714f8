//! The projector: folds recorded events into the read model, exactly once each, in stream order.
//!
//! `Projector` decides per event (apply only `last_sequence + 1`, skip duplicates, never apply past a
//! gap) and keeps the dead letters: a poison event (undecodable, or refused after bounded retries)
//! is recorded with its raw form, and the later events of its account wait behind it, recorded as
//! waiting, until an operator redrives it (`Projector::redrive`). `FeedProjector` drives it from an
//! `EventFeed` with a stored checkpoint; `project_under_lease` keeps one of several projector
//! processes active and the others standing by. `ProjectionProgress` and the two health checks report what
//! readiness needs: the projection lag and whether dead letters are open.

mod feed;
mod health;
mod lease;

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;
use std::time::Duration;

use ledger_domain::AccountId;
use opentelemetry::trace::TraceContextExt;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

pub use self::feed::{FeedProjector, FeedProjectorConfig};
pub use self::health::{DeadLetterCheck, ProjectionLagCheck, ProjectionProgress};
pub use self::lease::{
    LeaseEnded, LeaseSchedule, acquire_lease, project_under_lease, project_while_held,
};
use crate::codec;
use crate::envelope::RecordedEvent;
use crate::metrics::{self, DeadLetterReason};
use crate::ports::{
    ApplyOutcome, Clock, DeadLetter, DeadLetterId, EventStore, Projection, ReadModelUpdate,
    StoreError, StoredDeadLetter, UndecodableEvent,
};
use crate::trace_context;

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

/// Most events one [`Projection::apply_batch`] of [`Projector::project_batch`] carries: one
/// transaction's worth, which keeps a batch's commit short beside the queries reading the model.
pub const BATCH_EVENTS_MAX: usize = 1_000;

/// Most links from one `projector.apply_batch` span to the traces of its events: the SDK's default
/// limit of links per span, so no context is parsed only to be dropped.
const BATCH_SPAN_LINKS_MAX: usize = 128;

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
    ///
    /// Inside a `projector.apply` span continuing the trace of the command that recorded the event.
    pub async fn project(&self, event: &RecordedEvent) -> Result<Projected, StoreError> {
        let span = apply_span(event);
        let projected = self
            .project_with_retries(event)
            .instrument(span.clone())
            .await;
        mark_apply_span(&span, &projected, Projected::as_str);
        let projected = projected?;
        if projected == Projected::Applied {
            record_lag(event, self.clock.now());
        }
        self.progress.handled(event.recorded_at());
        Ok(projected)
    }

    /// Projects a run of events in their order, with the outcome of each, in that order: the same
    /// outcomes as [`Projector::project`] on each in turn, for a fraction of the cost.
    ///
    /// The fast path writes the whole run (in chunks of at most [`BATCH_EVENTS_MAX`]) with one
    /// [`Projection::apply_batch`]: one transaction, no `last_sequence` read. The read model
    /// accepts it only if every event is its account's next at its turn, so the sequence rule is
    /// the read model's, exactly as for one event. A refused chunk (a duplicate after a restart, a
    /// gap, an account waiting behind a dead letter, or a read model that calls an event corrupt)
    /// has written nothing; its accounts' positions are read once and the events that are still
    /// each account's next, up to that account's first that is not, are offered as one batch again,
    /// and every other event goes through `project`, where duplicates, gaps, retries and dead
    /// letters are judged one at a time as they always were. An unavailable read model is returned
    /// as an error, as `project` does: the caller retries from its checkpoint.
    pub async fn project_batch(
        &self,
        events: &[RecordedEvent],
    ) -> Result<Vec<Projected>, StoreError> {
        let mut projected = Vec::with_capacity(events.len());
        for chunk in events.chunks(BATCH_EVENTS_MAX) {
            projected.extend(self.project_chunk(chunk).await?);
        }
        Ok(projected)
    }

    /// One chunk inside a `projector.apply_batch` span linked to the traces of its events (each
    /// event applied by a batch also gets a `projector.apply` span of its own in its trace).
    async fn project_chunk(&self, chunk: &[RecordedEvent]) -> Result<Vec<Projected>, StoreError> {
        let span = tracing::info_span!(
            "projector.apply_batch",
            otel.kind = "internal",
            ledger.batch.events = chunk.len(),
        );
        if !span.is_disabled() {
            for remote in chunk
                .iter()
                .filter_map(|event| event.metadata.traceparent.as_deref())
                .filter_map(trace_context::parse_traceparent)
                .take(BATCH_SPAN_LINKS_MAX)
            {
                span.add_link(remote);
            }
        }
        self.project_chunk_in_span(chunk).instrument(span).await
    }

    async fn project_chunk_in_span(
        &self,
        chunk: &[RecordedEvent],
    ) -> Result<Vec<Projected>, StoreError> {
        if self.applied_as_batch(chunk.iter()).await? {
            return Ok(self.handled_all(chunk.iter()));
        }
        let (batchable, one_by_one) = self.split_at_first_refusal(chunk).await?;
        let mut projected = vec![Projected::Applied; chunk.len()];
        if !batchable.is_empty()
            && self
                .applied_as_batch(batchable.iter().map(|&index| &chunk[index]))
                .await?
        {
            self.handled_all(batchable.iter().map(|&index| &chunk[index]));
            for index in one_by_one {
                projected[index] = self.project(&chunk[index]).await?;
            }
            return Ok(projected);
        }
        // Refused again (another projector moved an account meanwhile): every event on its own.
        for (index, event) in chunk.iter().enumerate() {
            projected[index] = self.project(event).await?;
        }
        Ok(projected)
    }

    /// One `apply_batch` of `events`. A corrupt refusal is a refusal too: nothing was written, and
    /// `project` meets the event alone, retries it and dead-letters it.
    async fn applied_as_batch<'a>(
        &self,
        events: impl Iterator<Item = &'a RecordedEvent>,
    ) -> Result<bool, StoreError> {
        let updates: Vec<ReadModelUpdate> = events.map(ReadModelUpdate::from_event).collect();
        if updates.is_empty() {
            return Ok(true);
        }
        let span = tracing::info_span!(
            "read_model.apply_batch",
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            ledger.batch.events = updates.len(),
            ledger.batch.applied = tracing::field::Empty,
        );
        let applied = self
            .projection
            .apply_batch(&updates)
            .instrument(span.clone())
            .await;
        match &applied {
            Ok(applied) => span.record("ledger.batch.applied", applied),
            Err(_) => span.record("otel.status_code", "error"),
        };
        match applied {
            Ok(applied) => Ok(applied),
            Err(StoreError::Corrupt { detail }) => {
                tracing::debug!(%detail, events = updates.len(),
                    "batch refused as corrupt; projecting its events one by one");
                Ok(false)
            }
            Err(unavailable @ StoreError::Unavailable(_)) => Err(unavailable),
        }
    }

    /// Every event of an applied batch is handled, for the lag as for the caller. Each gets a
    /// `projector.apply` span in its own trace, linked to the batch's span (the current one), so
    /// every command's trace reaches the read model also when its event was applied in a batch.
    fn handled_all<'a>(&self, events: impl Iterator<Item = &'a RecordedEvent>) -> Vec<Projected> {
        let applied_at = self.clock.now();
        let batch = tracing::Span::current()
            .context()
            .span()
            .span_context()
            .clone();
        events
            .map(|event| {
                let span = apply_span(event);
                span.record("ledger.projection.outcome", Projected::Applied.as_str());
                span.add_link(batch.clone());
                // Entered and closed at once: the span marks the event's application by the batch,
                // whose own span holds the time it took.
                drop(span.enter());
                record_lag(event, applied_at);
                self.progress.handled(event.recorded_at());
                Projected::Applied
            })
            .collect()
    }

    /// Splits a refused chunk by its accounts' positions, read once each: the indexes of the events
    /// that are their account's next in turn, and of those from each account's first that is not
    /// (a duplicate or a gap) on, which go one by one, after the others, in their order.
    async fn split_at_first_refusal(
        &self,
        chunk: &[RecordedEvent],
    ) -> Result<(Vec<usize>, Vec<usize>), StoreError> {
        let mut positions: HashMap<&AccountId, Option<u64>> = HashMap::new();
        let mut batchable = Vec::with_capacity(chunk.len());
        let mut one_by_one = Vec::new();
        for (index, event) in chunk.iter().enumerate() {
            let position = match positions.entry(&event.account_id) {
                Entry::Occupied(known) => known.into_mut(),
                Entry::Vacant(unknown) => unknown.insert(Some(
                    self.projection.last_sequence(&event.account_id).await?,
                )),
            };
            // `None`: the account met an event that is not its next; its later ones follow it.
            match *position {
                Some(last_sequence)
                    if classify(last_sequence, event.sequence) == Classification::Next =>
                {
                    *position = Some(event.sequence);
                    batchable.push(index);
                }
                _ => {
                    *position = None;
                    one_by_one.push(index);
                }
            }
        }
        Ok((batchable, one_by_one))
    }

    async fn project_with_retries(&self, event: &RecordedEvent) -> Result<Projected, StoreError> {
        let mut reason = String::new();
        let mut reason_kind = DeadLetterReason::Gap;
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
                    reason_kind = DeadLetterReason::Gap;
                }
                Err(StoreError::Corrupt { detail }) => {
                    reason = detail;
                    reason_kind = DeadLetterReason::Refused;
                }
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
        metrics::count_dead_letter(reason_kind);
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
        metrics::count_dead_letter(DeadLetterReason::Waiting);
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
        metrics::count_dead_letter(DeadLetterReason::Undecodable);
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
        let id = self.projection.record_dead_letter(&letter).await?;
        // Its one caller records stream records lost to the trim.
        metrics::count_dead_letter(DeadLetterReason::Trimmed);
        Ok(id)
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

    /// Applies `event` if and only if it is the next one of its stream, each write to the read model
    /// in a `read_model.apply` span (a child of the caller's `projector.apply`).
    pub async fn handle(&self, event: &RecordedEvent) -> Result<Handled, StoreError> {
        let update = ReadModelUpdate::from_event(event);
        for _ in 0..=STALE_RETRIES_MAX {
            let last_sequence = self.projection.last_sequence(&event.account_id).await?;
            match classify(last_sequence, event.sequence) {
                Classification::Next => {}
                Classification::Duplicate => return Ok(Handled::Duplicate),
                Classification::Gap => return Ok(Handled::Gap { last_sequence }),
            }
            let span = tracing::info_span!(
                "read_model.apply",
                otel.kind = "client",
                otel.status_code = tracing::field::Empty,
                ledger.account_id = event.account_id.as_str(),
                ledger.sequence = event.sequence,
            );
            let applied = self
                .projection
                .apply(&update)
                .instrument(span.clone())
                .await;
            if applied.is_err() {
                span.record("otel.status_code", "error");
            }
            match applied? {
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
                let span = apply_span(event);
                let handled = self.handle(event).instrument(span.clone()).await;
                mark_apply_span(&span, &handled, Handled::as_str);
                match handled.map_err(RedriveError::StillFailing)? {
                    Handled::Applied => {
                        record_lag(event, self.clock.now());
                        applied += 1;
                    }
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

/// The `projector.apply` span of one event: a consumer span continuing the trace of the command
/// that recorded it (from the event's stored `traceparent`), its outcome recorded by the caller.
fn apply_span(event: &RecordedEvent) -> tracing::Span {
    let span = tracing::info_span!(
        "projector.apply",
        otel.kind = "consumer",
        otel.status_code = tracing::field::Empty,
        ledger.account_id = event.account_id.as_str(),
        ledger.sequence = event.sequence,
        ledger.event_type = event.event.event_type(),
        ledger.projection.outcome = tracing::field::Empty,
    );
    trace_context::continue_trace(&span, event.metadata.traceparent.as_deref());
    span
}

/// Marks a `projector.apply` span with its event's outcome, or as an error.
fn mark_apply_span<T: Copy>(
    span: &tracing::Span,
    result: &Result<T, StoreError>,
    label: fn(T) -> &'static str,
) {
    match result {
        Ok(outcome) => span.record("ledger.projection.outcome", label(*outcome)),
        Err(_) => span.record("otel.status_code", "error"),
    };
}

/// The projection lag of one event applied at `applied_at`: zero if the clocks disagree so far that
/// it was applied "before" it was recorded.
fn record_lag(event: &RecordedEvent, applied_at: chrono::DateTime<chrono::Utc>) {
    let lag = applied_at
        .signed_duration_since(event.recorded_at())
        .to_std()
        .unwrap_or(Duration::ZERO);
    metrics::record_projection_lag(event.event.event_type(), lag);
}

impl Projected {
    /// The outcome as the `ledger.projection.outcome` span field says it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Duplicate => "duplicate",
            Self::DeadLettered => "dead_lettered",
            Self::WaitingBehindDeadLetter => "waiting",
        }
    }
}

impl Handled {
    /// The outcome as the `ledger.projection.outcome` span field says it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Duplicate => "duplicate",
            Self::Gap { .. } => "gap",
        }
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

#[cfg(test)]
mod tests;

#[cfg(test)]
mod batch_tests;
