//! `StreamPoller`: follows the events table's DynamoDB Stream, shard by shard, parents before
//! children, and hands every appended event to the application's `Projector`, resuming from per-shard
//! checkpoints stored beside the read model.
//!
//! Exactly-once effects come from two rules working together: a checkpoint is saved only after the
//! events before it were projected (so nothing is lost), and the projector applies an event only if it
//! is its account's next sequence (so a redelivered event is a skipped duplicate).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodbstreams::Client;
use aws_sdk_dynamodbstreams::error::DisplayErrorContext;
use aws_sdk_dynamodbstreams::operation::get_shard_iterator::GetShardIteratorError;
use aws_sdk_dynamodbstreams::types::{Record, ShardIteratorType, StreamViewType};
use ledger_application::ports::{ProjectionCheckpoints, ShardCheckpoint, StoreError};
use ledger_application::{Projected, ProjectionProgress, Projector};
use tokio::sync::{Mutex, watch};

use super::progress::{IteratorStart, checkpoint_after_batch};
use super::records::{StreamEntry, project_entries, read_record};
use super::shards::{ListedShard, is_readable, order_parents_first};

/// DynamoDB Streams' own ceiling on GetRecords' `Limit`.
pub const GET_RECORDS_LIMIT_MAX: i32 = 1_000;
/// DynamoDB Streams' own ceiling on DescribeStream's `Limit` (shards per page).
const DESCRIBE_STREAM_SHARDS_PER_PAGE: i32 = 100;
/// Fresh iterators one shard may need in one round (after an expired iterator or trimmed data)
/// before the round gives up on it: a second failure in a row means something else is wrong.
const ITERATOR_RECOVERIES_PER_SHARD_MAX: u32 = 2;

pub const DEFAULT_RECORDS_PER_REQUEST: i32 = GET_RECORDS_LIMIT_MAX;
/// Five GetRecords per shard per round: DynamoDB Streams allows about five per second per shard,
/// and a round that stops after five lets the other shards have their turn.
pub const DEFAULT_REQUESTS_PER_SHARD_PER_ROUND: u32 = 5;
/// 100 pages of 100 shards. A stream lists the shards of the last 24 hours; ten thousand of them
/// means a listing this poller cannot order with confidence, so it stops instead (see `describe`).
pub const DEFAULT_LISTING_PAGES_MAX: u32 = 100;
/// How long a shard listing is trusted. New shards appear when one closes, which the poller sees
/// itself and answers with a fresh listing at once; this age is only the safety net.
pub const DEFAULT_LISTING_MAX_AGE_SECS: u64 = 60;
/// Bound on one Streams request, whatever timeouts the client was built with.
pub const DEFAULT_REQUEST_TIMEOUT_SECS: u64 = 10;
pub const DEFAULT_IDLE_BACKOFF_FIRST_MS: u64 = 100;
pub const DEFAULT_IDLE_BACKOFF_MAX_MS: u64 = 1_000;
pub const DEFAULT_ERROR_BACKOFF_FIRST_MS: u64 = 250;
pub const DEFAULT_ERROR_BACKOFF_MAX_MS: u64 = 5_000;

/// The bounds of the poller. Every loop of a round is bounded by one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamPollerConfig {
    /// GetRecords' `Limit`; read as 1..=[`GET_RECORDS_LIMIT_MAX`].
    pub records_per_request: i32,
    /// GetRecords calls per shard per round (at least 1).
    pub requests_per_shard_per_round: u32,
    /// DescribeStream pages followed per listing; a longer listing fails the round.
    pub listing_pages_max: u32,
    /// A listing older than this is fetched again.
    pub listing_max_age: Duration,
    /// Bound on one Streams request.
    pub request_timeout: Duration,
    /// `run`'s first pause after a round that found nothing; it doubles up to `idle_backoff_max`.
    pub idle_backoff_first: Duration,
    pub idle_backoff_max: Duration,
    /// `run`'s first pause after a failed round; it doubles up to `error_backoff_max`.
    pub error_backoff_first: Duration,
    pub error_backoff_max: Duration,
}

impl Default for StreamPollerConfig {
    fn default() -> Self {
        Self {
            records_per_request: DEFAULT_RECORDS_PER_REQUEST,
            requests_per_shard_per_round: DEFAULT_REQUESTS_PER_SHARD_PER_ROUND,
            listing_pages_max: DEFAULT_LISTING_PAGES_MAX,
            listing_max_age: Duration::from_secs(DEFAULT_LISTING_MAX_AGE_SECS),
            request_timeout: Duration::from_secs(DEFAULT_REQUEST_TIMEOUT_SECS),
            idle_backoff_first: Duration::from_millis(DEFAULT_IDLE_BACKOFF_FIRST_MS),
            idle_backoff_max: Duration::from_millis(DEFAULT_IDLE_BACKOFF_MAX_MS),
            error_backoff_first: Duration::from_millis(DEFAULT_ERROR_BACKOFF_FIRST_MS),
            error_backoff_max: Duration::from_millis(DEFAULT_ERROR_BACKOFF_MAX_MS),
        }
    }
}

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PollReport {
    /// Shards in the listing the round worked from.
    pub shards_listed: usize,
    /// Shards read from (at least one GetRecords).
    pub shards_read: usize,
    /// Shards not read because their parent is listed and not finished yet.
    pub shards_waiting: usize,
    /// Shards found closed and fully read in this round.
    pub shards_finished: usize,
    /// Stream records received.
    pub records: usize,
    pub applied: usize,
    pub duplicates: usize,
    /// Events dead-lettered, undecodable images included (with their image as raw form).
    pub dead_lettered: usize,
    /// Events recorded as waiting behind a dead letter of their account.
    pub waiting: usize,
    /// Records skipped with an error logged: MODIFY/REMOVE, records without a position. Each is a
    /// sign that the table was changed behind the application's back.
    pub skipped: usize,
    /// Times this round found stream records trimmed before they were projected: each recorded as a
    /// dead letter that needs a rebuild.
    pub trimmed: usize,
}

impl PollReport {
    /// Counts what became of one event.
    fn count(&mut self, projected: Projected) {
        match projected {
            Projected::Applied => self.applied += 1,
            Projected::Duplicate => self.duplicates += 1,
            Projected::DeadLettered => self.dead_lettered += 1,
            Projected::WaitingBehindDeadLetter => self.waiting += 1,
        }
    }

    /// Nothing arrived and no shard closed: the next round may wait.
    pub fn is_idle(&self) -> bool {
        self.records == 0 && self.shards_finished == 0
    }
}

/// The shard listing a round works from.
#[derive(Debug)]
struct Listing {
    /// Parents before children.
    shards: Vec<ListedShard>,
    fetched_at: Instant,
}

/// What the poller remembers between rounds. Nothing here is needed for correctness (the checkpoints
/// are); it saves requests and carries iterators across empty stretches of a shard.
#[derive(Debug, Default)]
struct RoundState {
    listing: Option<Listing>,
    /// A shard closed since the listing was fetched: its children may be missing from it.
    listing_stale: bool,
    /// Shards whose checkpoint says finished: final, so not looked up again.
    finished: HashSet<String>,
    /// Where the last round stopped in each open shard. DynamoDB Streams may answer an empty page
    /// before later records, so restarting from the checkpoint every round could never get past such
    /// a stretch; an iterator that was moved along does. Only ever set after its batch was handled
    /// and checkpointed.
    iterators: HashMap<String, String>,
}

/// Follows one DynamoDB Stream into a `Projector`. See the module documentation.
pub struct StreamPoller {
    client: Client,
    stream_arn: String,
    checkpoints: Arc<dyn ProjectionCheckpoints>,
    projector: Projector,
    config: StreamPollerConfig,
    /// Rounds never overlap: two concurrent readers of one shard could save checkpoints out of order.
    state: Mutex<RoundState>,
}

impl std::fmt::Debug for StreamPoller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamPoller")
            .field("stream_arn", &self.stream_arn)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Why a Streams request failed, kept as the source of `StoreError::Unavailable`.
#[derive(Debug, thiserror::Error)]
enum StreamsError {
    #[error("DynamoDB Streams {operation} on {stream_arn} failed: {detail}")]
    Request {
        operation: &'static str,
        stream_arn: String,
        detail: String,
    },
    #[error("DynamoDB Streams {operation} on {stream_arn} did not answer within {timeout:?}")]
    TimedOut {
        operation: &'static str,
        stream_arn: String,
        timeout: Duration,
    },
    #[error("the shard listing of {stream_arn} is longer than {pages} pages")]
    ListingTooLong { stream_arn: String, pages: u32 },
    #[error(
        "the stream {stream_arn} carries {view:?} records, without new images; the events table's \
         stream must be NEW_IMAGE"
    )]
    NoNewImages { stream_arn: String, view: String },
    #[error("the answer holds no stream description")]
    NoDescription,
    #[error("shard {shard_id} was trimmed again at its trim horizon")]
    TrimmedAtHorizon { shard_id: String },
    #[error("DynamoDB Streams gave no shard iterator for open shard {shard_id} of {stream_arn}")]
    NoIterator {
        stream_arn: String,
        shard_id: String,
    },
}

/// How a failed GetRecords can be recovered from within the round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Recovery {
    /// The iterator is older than 15 minutes: take a fresh one at the checkpoint.
    ExpiredIterator,
    /// The iterator points at records trimmed away (older than 24 hours): start over at the oldest.
    TrimmedData,
}

/// GetShardIterator's answer, with the one error the poller recovers from set apart.
#[derive(Debug, Clone, PartialEq, Eq)]
enum IteratorReply {
    /// `None`: a closed shard with nothing after the requested position.
    Opened(Option<String>),
    /// The requested position is older than the shard's trim horizon.
    Trimmed,
}

/// What became of one shard in a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ShardRead {
    /// Caught up or out of budget for this round; more may come.
    Open,
    /// Closed and every record of it handled: checkpointed as finished.
    Finished,
}

impl StreamPoller {
    pub fn new(
        client: Client,
        stream_arn: String,
        checkpoints: Arc<dyn ProjectionCheckpoints>,
        projector: Projector,
        config: StreamPollerConfig,
    ) -> Self {
        let config = StreamPollerConfig {
            records_per_request: config.records_per_request.clamp(1, GET_RECORDS_LIMIT_MAX),
            requests_per_shard_per_round: config.requests_per_shard_per_round.max(1),
            listing_pages_max: config.listing_pages_max.max(1),
            ..config
        };
        Self {
            client,
            stream_arn,
            checkpoints,
            projector,
            config,
            state: Mutex::new(RoundState::default()),
        }
    }

    pub fn stream_arn(&self) -> &str {
        &self.stream_arn
    }

    /// One bounded round over every readable shard, parents before children. An `Err` means the
    /// stream or the read model is unavailable; every checkpoint saved stands for events already
    /// projected, so the next round (or process) resumes without loss or double effects.
    #[tracing::instrument(skip_all, fields(stream = %self.stream_arn))]
    /// How far behind this poller's projector is; shared with the readiness check.
    pub fn progress(&self) -> Arc<ProjectionProgress> {
        self.projector.progress()
    }

    pub async fn poll_once(&self) -> Result<PollReport, StoreError> {
        let mut guard = self.state.lock().await;
        let state = &mut *guard;
        let shards = self.listing(state).await?;
        let listed: HashSet<&str> = shards.iter().map(|s| s.shard_id.as_str()).collect();
        let mut report = PollReport {
            shards_listed: shards.len(),
            ..PollReport::default()
        };
        for shard in &shards {
            if state.finished.contains(&shard.shard_id) {
                continue;
            }
            let checkpoint = self
                .checkpoints
                .shard_checkpoint(&self.stream_arn, &shard.shard_id)
                .await?;
            if checkpoint.as_ref().is_some_and(|c| c.finished) {
                state.finished.insert(shard.shard_id.clone());
                continue;
            }
            // Parents come first in `shards`, so a parent finished earlier in this round already counts.
            if !is_readable(shard, &listed, &state.finished) {
                report.shards_waiting += 1;
                continue;
            }
            report.shards_read += 1;
            let position = checkpoint.and_then(|c| c.sequence_number);
            match self.read_shard(state, shard, position, &mut report).await {
                Ok(ShardRead::Open) => {}
                Ok(ShardRead::Finished) => {
                    report.shards_finished += 1;
                    state.finished.insert(shard.shard_id.clone());
                    state.listing_stale = true;
                }
                Err(error) => {
                    // The shard may have expired or closed since the listing: look again next round.
                    state.listing_stale = true;
                    return Err(error);
                }
            }
        }
        Ok(report)
    }

    /// Runs rounds until `shutdown` turns true (or its sender is dropped: nobody could stop us any
    /// more), then returns after the round in hand, whose checkpoints are saved. Rounds that find
    /// nothing are spaced by a doubling pause up to `idle_backoff_max`; failed rounds likewise up to
    /// `error_backoff_max`. Rounds that found records follow each other at once.
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>) {
        let mut idle_backoff = self.config.idle_backoff_first;
        let mut error_backoff = self.config.error_backoff_first;
        while !*shutdown.borrow_and_update() {
            let pause = match self.poll_once().await {
                Ok(report) if report.is_idle() => {
                    self.projector.progress().caught_up();
                    error_backoff = self.config.error_backoff_first;
                    let pause = idle_backoff;
                    idle_backoff = idle_backoff
                        .saturating_mul(2)
                        .min(self.config.idle_backoff_max);
                    Some(pause)
                }
                Ok(report) => {
                    tracing::debug!(stream = %self.stream_arn, ?report, "stream round");
                    idle_backoff = self.config.idle_backoff_first;
                    error_backoff = self.config.error_backoff_first;
                    None
                }
                Err(error) => {
                    tracing::warn!(stream = %self.stream_arn, %error, retry_in = ?error_backoff,
                        "stream round failed; resuming from the saved checkpoints");
                    let pause = error_backoff;
                    error_backoff = error_backoff
                        .saturating_mul(2)
                        .min(self.config.error_backoff_max);
                    Some(pause)
                }
            };
            if let Some(pause) = pause {
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    changed = shutdown.changed() => {
                        if changed.is_err() {
                            break;
                        }
                    }
                }
            }
        }
        tracing::info!(stream = %self.stream_arn, "stream poller stopped with its checkpoints saved");
    }

    /// The shards to work from, parents first: the remembered listing while it is fresh, else a new
    /// one. Iterators and finished marks of shards gone from the stream are forgotten with it.
    async fn listing(&self, state: &mut RoundState) -> Result<Vec<ListedShard>, StoreError> {
        let fresh = state.listing.as_ref().is_some_and(|listing| {
            listing.fetched_at.elapsed() < self.config.listing_max_age
                // A stream without an open shard gets one with its next write: look again.
                && listing.shards.iter().any(|shard| !shard.closed)
        });
        if let Some(listing) = state
            .listing
            .as_ref()
            .filter(|_| fresh && !state.listing_stale)
        {
            return Ok(listing.shards.clone());
        }
        let shards = order_parents_first(&self.describe().await?);
        let listed: HashSet<&str> = shards.iter().map(|s| s.shard_id.as_str()).collect();
        state.finished.retain(|id| listed.contains(id.as_str()));
        state.iterators.retain(|id, _| listed.contains(id.as_str()));
        state.listing = Some(Listing {
            shards: shards.clone(),
            fetched_at: Instant::now(),
        });
        state.listing_stale = false;
        Ok(shards)
    }

    /// Every shard of the stream, following `LastEvaluatedShardId` for at most `listing_pages_max`
    /// pages. A listing cut short is an error, not a partial answer: a parent missing from it would be
    /// taken for expired and its children read too early.
    async fn describe(&self) -> Result<Vec<ListedShard>, StoreError> {
        let mut shards = Vec::new();
        let mut start_after: Option<String> = None;
        for _ in 0..self.config.listing_pages_max {
            let request = self
                .client
                .describe_stream()
                .stream_arn(&self.stream_arn)
                .limit(DESCRIBE_STREAM_SHARDS_PER_PAGE)
                .set_exclusive_start_shard_id(start_after.take())
                .send();
            let output = self
                .within("DescribeStream", request)
                .await?
                .map_err(|e| self.request_failed("DescribeStream", &e))?;
            let Some(description) = output.stream_description else {
                return Err(self.request_failed("DescribeStream", &StreamsError::NoDescription));
            };
            match description.stream_view_type() {
                Some(StreamViewType::NewImage | StreamViewType::NewAndOldImages) | None => {}
                Some(other) => {
                    return Err(StoreError::unavailable(StreamsError::NoNewImages {
                        stream_arn: self.stream_arn.clone(),
                        view: other.as_str().to_owned(),
                    }));
                }
            }
            for shard in description.shards() {
                let Some(shard_id) = shard.shard_id() else {
                    tracing::error!(stream = %self.stream_arn, "DescribeStream listed a shard without an id");
                    continue;
                };
                shards.push(ListedShard {
                    shard_id: shard_id.to_owned(),
                    parent_shard_id: shard.parent_shard_id().map(str::to_owned),
                    closed: shard
                        .sequence_number_range()
                        .and_then(|range| range.ending_sequence_number())
                        .is_some(),
                });
            }
            match description.last_evaluated_shard_id() {
                Some(last) => start_after = Some(last.to_owned()),
                None => return Ok(shards),
            }
        }
        Err(StoreError::unavailable(StreamsError::ListingTooLong {
            stream_arn: self.stream_arn.clone(),
            pages: self.config.listing_pages_max,
        }))
    }

    /// Reads one readable shard for at most `requests_per_shard_per_round` GetRecords, projecting each
    /// batch and then checkpointing it. Stops early at an empty batch (caught up).
    async fn read_shard(
        &self,
        state: &mut RoundState,
        shard: &ListedShard,
        mut position: Option<String>,
        report: &mut PollReport,
    ) -> Result<ShardRead, StoreError> {
        let shard_id = shard.shard_id.as_str();
        // Taken out, and put back only once its batch is handled: after any error the next round
        // starts again from the checkpoint.
        let remembered = state.iterators.remove(shard_id);
        let mut iterator = match remembered {
            Some(iterator) => iterator,
            None => match self
                .fresh_iterator(shard, position.as_deref(), report)
                .await?
            {
                Some(iterator) => iterator,
                None => return self.finish_without_records(shard_id, position).await,
            },
        };
        let mut recoveries = 0_u32;
        for _ in 0..self.config.requests_per_shard_per_round {
            let request = self
                .client
                .get_records()
                .shard_iterator(&iterator)
                .limit(self.config.records_per_request)
                .send();
            let output = match self.within("GetRecords", request).await? {
                Ok(output) => output,
                Err(error) => {
                    let recovery = error.as_service_error().and_then(|e| {
                        if e.is_expired_iterator_exception() {
                            Some(Recovery::ExpiredIterator)
                        } else if e.is_trimmed_data_access_exception() {
                            Some(Recovery::TrimmedData)
                        } else {
                            None
                        }
                    });
                    let Some(recovery) =
                        recovery.filter(|_| recoveries < ITERATOR_RECOVERIES_PER_SHARD_MAX)
                    else {
                        return Err(self.request_failed("GetRecords", &error));
                    };
                    recoveries += 1;
                    let fresh = match recovery {
                        Recovery::ExpiredIterator => {
                            tracing::debug!(stream = %self.stream_arn, shard_id,
                                "shard iterator expired; taking a fresh one at the checkpoint");
                            self.fresh_iterator(shard, position.as_deref(), report)
                                .await?
                        }
                        Recovery::TrimmedData => {
                            self.report_trimmed(shard_id, position.as_deref(), report)
                                .await?;
                            self.oldest_iterator(shard).await?
                        }
                    };
                    match fresh {
                        Some(fresh) => iterator = fresh,
                        None => return self.finish_without_records(shard_id, position).await,
                    }
                    continue;
                }
            };
            let records = output.records();
            let last_handled = self.project_batch(shard_id, records, report).await?;
            let closed = output.next_shard_iterator().is_none();
            if let Some(checkpoint) =
                checkpoint_after_batch(position.as_deref(), last_handled.as_deref(), closed)
            {
                self.save(shard_id, &checkpoint).await?;
                position = checkpoint.sequence_number;
            }
            let caught_up = records.is_empty();
            match output.next_shard_iterator {
                None => return Ok(ShardRead::Finished),
                Some(next) => iterator = next,
            }
            if caught_up {
                break;
            }
        }
        state.iterators.insert(shard_id.to_owned(), iterator);
        Ok(ShardRead::Open)
    }

    /// Hands the batch's records to the projector in stream order ([`project_entries`]: runs of
    /// decodable events through the batched path, an undecodable one dead-lettered alone in its
    /// place). Returns the sequence number of the last record handled (projected or deliberately
    /// skipped), to be checkpointed. A projector error ends the round here: nothing of this batch is
    /// checkpointed, so it is delivered again.
    async fn project_batch(
        &self,
        shard_id: &str,
        records: &[Record],
        report: &mut PollReport,
    ) -> Result<Option<String>, StoreError> {
        if !records.is_empty() {
            self.projector.note_work_found();
        }
        let origin = format!("shard {shard_id} of {}", self.stream_arn);
        let entries: Vec<StreamEntry<'_>> = records
            .iter()
            .map(|record| read_record(record, &origin))
            .collect();
        report.records += entries.len();
        report.skipped += entries
            .iter()
            .filter(|entry| matches!(entry, StreamEntry::Skipped { .. }))
            .count();
        let last_handled = entries
            .iter()
            .rev()
            .find_map(StreamEntry::sequence_number)
            .map(str::to_owned);
        for projected in project_entries(&self.projector, entries).await? {
            report.count(projected);
        }
        Ok(last_handled)
    }

    /// An iterator just after `position`, or at the oldest record if the shard was never read. If the
    /// records after `position` were trimmed, starts at the oldest record still there. `None`: the
    /// closed shard has nothing after `position`.
    async fn fresh_iterator(
        &self,
        shard: &ListedShard,
        position: Option<&str>,
        report: &mut PollReport,
    ) -> Result<Option<String>, StoreError> {
        match self
            .iterator_at(shard, &IteratorStart::after(position))
            .await?
        {
            IteratorReply::Opened(iterator) => Ok(iterator),
            IteratorReply::Trimmed => {
                self.report_trimmed(&shard.shard_id, position, report)
                    .await?;
                self.oldest_iterator(shard).await
            }
        }
    }

    /// An iterator at the oldest record the shard still holds.
    async fn oldest_iterator(&self, shard: &ListedShard) -> Result<Option<String>, StoreError> {
        match self.iterator_at(shard, &IteratorStart::TrimHorizon).await? {
            IteratorReply::Opened(iterator) => Ok(iterator),
            // The horizon moved between the two requests; the next round tries again.
            IteratorReply::Trimmed => Err(self.request_failed(
                "GetShardIterator",
                &StreamsError::TrimmedAtHorizon {
                    shard_id: shard.shard_id.clone(),
                },
            )),
        }
    }

    /// One GetShardIterator, bounded by the request timeout; trimmed data is told apart because the
    /// caller recovers from it.
    async fn iterator_at(
        &self,
        shard: &ListedShard,
        start: &IteratorStart,
    ) -> Result<IteratorReply, StoreError> {
        let request = self
            .client
            .get_shard_iterator()
            .stream_arn(&self.stream_arn)
            .shard_id(&shard.shard_id);
        let request = match start {
            IteratorStart::AfterSequenceNumber(sequence_number) => request
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .sequence_number(sequence_number),
            IteratorStart::TrimHorizon => {
                request.shard_iterator_type(ShardIteratorType::TrimHorizon)
            }
        };
        match self.within("GetShardIterator", request.send()).await? {
            Ok(output) => Ok(IteratorReply::Opened(
                self.opened_iterator(shard, output.shard_iterator)?,
            )),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(GetShardIteratorError::is_trimmed_data_access_exception) =>
            {
                Ok(IteratorReply::Trimmed)
            }
            Err(error) => Err(self.request_failed("GetShardIterator", &error)),
        }
    }

    /// A missing iterator means "nothing more to read" only for a closed shard; for an open one it is
    /// the service misbehaving, and the listing is looked at again by the next round's error path.
    fn opened_iterator(
        &self,
        shard: &ListedShard,
        iterator: Option<String>,
    ) -> Result<Option<String>, StoreError> {
        match iterator {
            Some(iterator) => Ok(Some(iterator)),
            None if shard.closed => Ok(None),
            None => Err(StoreError::unavailable(StreamsError::NoIterator {
                stream_arn: self.stream_arn.clone(),
                shard_id: shard.shard_id.clone(),
            })),
        }
    }

    /// Marks a closed shard that has no records after `position` as finished.
    async fn finish_without_records(
        &self,
        shard_id: &str,
        position: Option<String>,
    ) -> Result<ShardRead, StoreError> {
        let checkpoint = ShardCheckpoint {
            sequence_number: position,
            finished: true,
        };
        self.save(shard_id, &checkpoint).await?;
        Ok(ShardRead::Finished)
    }

    async fn save(&self, shard_id: &str, checkpoint: &ShardCheckpoint) -> Result<(), StoreError> {
        self.checkpoints
            .save_shard_checkpoint(&self.stream_arn, shard_id, checkpoint)
            .await
    }

    /// Records after the checkpoint were trimmed (older than 24 hours) before they were projected:
    /// events may be lost to the read model. Logged as an error and recorded as a dead letter
    /// without an account (one per shard and checkpoint), so that readiness fails until the read
    /// model is rebuilt from the event store. Reading goes on from the oldest record left, and any
    /// event that no longer follows its account's last one is dead-lettered as a gap.
    ///
    /// A shard with no checkpoint was never read from: its iterator started at the trim horizon, and
    /// a trim reported there (DynamoDB Local does so for an idle shard's old iterator) says nothing
    /// about records this reader missed; a real loss there still shows, as gaps of the accounts.
    async fn report_trimmed(
        &self,
        shard_id: &str,
        position: Option<&str>,
        report: &mut PollReport,
    ) -> Result<(), StoreError> {
        let Some(position) = position else {
            tracing::warn!(stream = %self.stream_arn, shard_id,
                "records at the trim horizon of a shard never read were trimmed; reading on from \
                 the oldest record left");
            return Ok(());
        };
        let reason = format!(
            "gap: stream records of shard {shard_id} after checkpoint {position} were trimmed \
             (older than 24 hours) before they were projected; the read model may miss events and \
             needs a rebuild from the event store"
        );
        tracing::error!(stream = %self.stream_arn, shard_id, checkpoint = ?position, %reason,
            "stream records lost to the 24-hour trim");
        let raw = serde_json::json!({
            "stream": self.stream_arn,
            "shard_id": shard_id,
            "checkpoint": position,
            "lost": "records after the checkpoint were trimmed before they were projected",
        });
        self.projector.record_loss(raw.to_string(), reason).await?;
        report.trimmed += 1;
        Ok(())
    }

    /// Awaits one Streams request for at most `request_timeout`. The outer error is the timeout; the
    /// inner result is the SDK's, for the caller to match on recoverable service errors.
    async fn within<T, E>(
        &self,
        operation: &'static str,
        request: impl Future<Output = Result<T, E>>,
    ) -> Result<Result<T, E>, StoreError> {
        tokio::time::timeout(self.config.request_timeout, request)
            .await
            .map_err(|_| {
                StoreError::unavailable(StreamsError::TimedOut {
                    operation,
                    stream_arn: self.stream_arn.clone(),
                    timeout: self.config.request_timeout,
                })
            })
    }

    fn request_failed(
        &self,
        operation: &'static str,
        error: &(dyn std::error::Error + 'static),
    ) -> StoreError {
        StoreError::unavailable(StreamsError::Request {
            operation,
            stream_arn: self.stream_arn.clone(),
            // The SDK's own Display is one word ("service error"); the context names the cause.
            detail: DisplayErrorContext(error).to_string(),
        })
    }
}
