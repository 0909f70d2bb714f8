//! The event store and event feed ports: append-only streams with multi-stream atomic appends, the
//! idempotency record written in the same atomic write, and a feed of all events in commit order.

use async_trait::async_trait;
use ledger_domain::AccountId;

use crate::envelope::RecordedEvent;
use crate::idempotency::{IdempotencyRecord, ScopedIdempotencyKey};
use crate::ports::BoxError;

/// The most actions (events plus the idempotency record) one atomic append may hold, on every store.
/// It is DynamoDB's `TransactWriteItems` limit; the embedded stores enforce it too, so that an append
/// accepted on a laptop is never refused in production.
pub const MAX_ACTIONS_PER_APPEND: usize = 100;

/// A failure to read or write that says nothing about the request itself.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store could not be reached or failed; the operation may be retried. Nothing changed: an
    /// append that may have committed reports `AppendError::OutcomeUnknown` instead.
    #[error("store unavailable: {0}")]
    Unavailable(#[source] BoxError),
    /// The store holds data this code cannot have written (undecodable event, broken invariant).
    #[error("store holds corrupt data: {detail}")]
    Corrupt { detail: String },
}

impl StoreError {
    pub fn unavailable(error: impl Into<BoxError>) -> Self {
        Self::Unavailable(error.into())
    }

    pub fn corrupt(detail: impl Into<String>) -> Self {
        Self::Corrupt {
            detail: detail.into(),
        }
    }
}

/// Why an append did not take effect. In every case but `OutcomeUnknown`, nothing at all was written.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// An event with one of the appended sequences already exists on `account_id`: another writer got
    /// there first. MUST be returned (never `Unavailable`) when the expected version is stale.
    #[error("concurrent append to account {account_id}")]
    Conflict { account_id: AccountId },
    /// An idempotency record with this key already exists. MUST take precedence over every other
    /// refusal when it holds, because the request has then already been carried out.
    #[error("a request with idempotency key {key} was already recorded")]
    DuplicateRequest { key: ScopedIdempotencyKey },
    /// The stream does not hold event `expected_version` (for an `expected_version` above 0): the
    /// writer decided against a state the store does not have (a snapshot ahead of its events), and
    /// appending would leave a hole. MUST be returned rather than committing sequence N+1 without N.
    #[error("account {account_id} has no event {expected_version} to append after")]
    MissingPredecessor {
        account_id: AccountId,
        expected_version: u64,
    },
    /// An appended event's `recorded_at` is earlier than that of the stream's event
    /// `expected_version`: time would run backwards within the stream (a clock step, or a writer
    /// that decided against a stale state). MUST be returned rather than committing.
    #[error("an event of account {account_id} would be recorded before its predecessor")]
    TimeRegression { account_id: AccountId },
    /// More than [`MAX_ACTIONS_PER_APPEND`] actions: refused before anything is sent.
    #[error("an atomic append of {actions} actions exceeds the limit of {max}")]
    TooLarge { actions: usize, max: usize },
    /// The store failed before anything was written: nothing was, and the append may be retried.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The store cannot tell whether the append committed: the request was sent, and then the answer
    /// was lost (a timeout, a dropped connection, a failed commit, a DynamoDB transaction in an
    /// unknown state). The idempotency record says what happened; an adapter MUST return this, never
    /// `Store`, for any failure that may have come after the write.
    #[error("the outcome of the append is unknown: {0}")]
    OutcomeUnknown(#[source] BoxError),
}

impl AppendError {
    pub fn outcome_unknown(error: impl Into<BoxError>) -> Self {
        Self::OutcomeUnknown(error.into())
    }
}

/// Why an [`AtomicAppend`] could not be built: a programming error in the caller, never a client's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidAppend {
    #[error("an accepted command's append needs at least one stream with at least one event")]
    Empty,
    #[error("a rejected command's append holds its idempotency record alone, never an event")]
    RejectionWithEvents,
    #[error("stream {account_id} appears twice in one append")]
    DuplicateStream { account_id: AccountId },
    #[error(
        "events of stream {account_id} must carry its id and sequences {expected_version}+1, +2, ..."
    )]
    BadSequence {
        account_id: AccountId,
        expected_version: u64,
    },
}

/// New events for one stream, to be accepted only if the stream is still at `expected_version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamAppend {
    pub account_id: AccountId,
    /// The version the writer decided against: events get sequences `expected_version + 1, + 2, ...`.
    pub expected_version: u64,
    pub events: Vec<RecordedEvent>,
}

/// Everything one command writes: its events on one or more streams and its idempotency record. A store
/// commits all of it or none of it. A rejected command writes its record alone (no stream).
///
/// Besides the key and the sequences, a store checks for each stream with an `expected_version` above
/// 0 that event `expected_version` exists and was not recorded after the new events (no holes, and
/// time never runs backwards within a stream), in the same atomic step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AtomicAppend {
    streams: Vec<StreamAppend>,
    idempotency: IdempotencyRecord,
}

impl AtomicAppend {
    pub fn new(
        streams: Vec<StreamAppend>,
        idempotency: IdempotencyRecord,
    ) -> Result<Self, InvalidAppend> {
        if !idempotency.outcome.is_accepted() {
            return if streams.is_empty() {
                Ok(Self {
                    streams,
                    idempotency,
                })
            } else {
                Err(InvalidAppend::RejectionWithEvents)
            };
        }
        if streams.is_empty() || streams.iter().any(|s| s.events.is_empty()) {
            return Err(InvalidAppend::Empty);
        }
        for (index, stream) in streams.iter().enumerate() {
            if streams[..index]
                .iter()
                .any(|earlier| earlier.account_id == stream.account_id)
            {
                return Err(InvalidAppend::DuplicateStream {
                    account_id: stream.account_id.clone(),
                });
            }
            let contiguous = stream.events.iter().zip(1..).all(|(event, offset)| {
                event.account_id == stream.account_id
                    && event.sequence == stream.expected_version + offset
            });
            if !contiguous {
                return Err(InvalidAppend::BadSequence {
                    account_id: stream.account_id.clone(),
                    expected_version: stream.expected_version,
                });
            }
        }
        Ok(Self {
            streams,
            idempotency,
        })
    }

    pub fn streams(&self) -> &[StreamAppend] {
        &self.streams
    }

    pub fn idempotency(&self) -> &IdempotencyRecord {
        &self.idempotency
    }

    /// All events of the append, stream by stream, in sequence order.
    pub fn events(&self) -> impl Iterator<Item = &RecordedEvent> {
        self.streams.iter().flat_map(|s| s.events.iter())
    }

    /// The streams whose predecessor event (`expected_version`, above 0) the store must find.
    pub fn predecessor_checks(&self) -> impl Iterator<Item = &StreamAppend> {
        self.streams.iter().filter(|s| s.expected_version > 0)
    }

    /// Events, the idempotency record and one predecessor check per stream that has one: what a store
    /// counts against [`MAX_ACTIONS_PER_APPEND`] (each is an action of DynamoDB's transaction).
    pub fn action_count(&self) -> usize {
        self.events().count() + 1 + self.predecessor_checks().count()
    }

    /// The `TooLarge` error if this append exceeds [`MAX_ACTIONS_PER_APPEND`]. Stores call it first.
    pub fn check_size(&self) -> Result<(), AppendError> {
        let actions = self.action_count();
        if actions > MAX_ACTIONS_PER_APPEND {
            Err(AppendError::TooLarge {
                actions,
                max: MAX_ACTIONS_PER_APPEND,
            })
        } else {
            Ok(())
        }
    }
}

/// The write side's source of truth: append-only event streams, one per account.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait EventStore: Send + Sync {
    /// The events of `account_id` with a sequence above `after_sequence`, in sequence order; empty if
    /// there are none. MUST read its own writes: every event of an append that returned `Ok` is seen,
    /// and MUST return the whole tail, however many pages it takes.
    async fn load(
        &self,
        account_id: &AccountId,
        after_sequence: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Commits all events of all streams and the idempotency record atomically, or nothing.
    /// MUST return, in this order of precedence: `TooLarge` above [`MAX_ACTIONS_PER_APPEND`] (before
    /// sending anything); `DuplicateRequest` if the key is recorded; `Conflict` if any appended
    /// sequence already exists; `MissingPredecessor` if event `expected_version` of a stream is
    /// missing; `TimeRegression` if it was recorded after the appended events. `Store` for any other
    /// failure known to have written nothing — including an `event_id` that is already stored (ids are
    /// fresh UUIDv7s, so a retry heals it) — and `OutcomeUnknown` when the write may have committed.
    async fn append(&self, append: AtomicAppend) -> Result<(), AppendError>;

    /// The idempotency record stored under `key`, read with the same consistency as `load`. A store
    /// MAY forget records after a retention period (DynamoDB's TTL: 7 days by default); a key sent
    /// again after that is a new request.
    async fn idempotency_record(
        &self,
        key: &ScopedIdempotencyKey,
    ) -> Result<Option<IdempotencyRecord>, StoreError>;
}

/// One entry of the feed at its position: an event, or a stored event this build cannot decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedEvent {
    /// Strictly increasing in commit order across all streams; never reused.
    pub position: u64,
    pub entry: FeedEntry,
}

impl FeedEvent {
    /// A decoded event at `position`.
    pub fn decoded(position: u64, event: RecordedEvent) -> Self {
        Self {
            position,
            entry: FeedEntry::Event(event),
        }
    }

    /// The event, if it could be decoded.
    pub fn event(&self) -> Option<&RecordedEvent> {
        match &self.entry {
            FeedEntry::Event(event) => Some(event),
            FeedEntry::Undecodable(_) => None,
        }
    }
}

/// What the feed holds at one position.
// Nearly every entry is an event: boxing it to shrink the rare undecodable one would cost an
// allocation per event fed to the projector, for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedEntry {
    Event(RecordedEvent),
    /// Handed out on its own, so that one bad row neither fails the read of its neighbours nor
    /// vanishes: the projector dead-letters it with its raw form.
    Undecodable(UndecodableEvent),
}

/// A stored event that cannot be decoded, in the form it was stored in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UndecodableEvent {
    /// The stream it belongs to, when at least that could be read.
    pub account_id: Option<AccountId>,
    /// Its sequence in that stream, when that could be read.
    pub sequence: Option<u64>,
    /// The stored form as JSON text: the row's columns, or the stream record's image.
    pub raw: String,
    /// Why it could not be decoded.
    pub error: String,
}

/// All events of all streams in commit order: what a projector follows in embedded mode.
#[async_trait]
pub trait EventFeed: Send + Sync {
    /// Up to `limit` entries with a position above `after_position`, in position order. MUST never
    /// later reveal an entry at a position lower than one it has already returned, so a reader that
    /// remembers the last position it saw misses nothing. A stored event that cannot be decoded MUST
    /// be returned as [`FeedEntry::Undecodable`] at its position, never fail the whole read: one bad
    /// row must not stall every account.
    async fn read_after(
        &self,
        after_position: u64,
        limit: usize,
    ) -> Result<Vec<FeedEvent>, StoreError>;
}
