//! The command service: load, decide, append — with optimistic-concurrency retries and idempotency.
//!
//! The idempotency record is written in the same atomic append as the events, so "did this request
//! happen" and "what did it write" can never disagree. A business rejection is recorded too (the record
//! alone), so every attempt of one key — after, during or in parallel with the first — ends in the
//! same answer: an attempt that finds the key taken answers from the record, never from its own
//! decision. There is no look-up before deciding: the store's atomic check is the only guard, and a
//! look-up would cost a read on every command for the benefit of the rare retry.

mod request;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ledger_domain::{
    Account, AccountCommand, AccountEvent, AccountId, AccountStatus, DomainError, HistoryError,
    decide, decide_transfer,
};

pub use self::request::CommandRequest;
use self::request::Resolved;

use crate::account_locks::AccountLocks;
use crate::envelope::{EventMetadata, RecordedEvent};
use crate::idempotency::{
    CommandOutcome, IdempotencyKey, IdempotencyRecord, PostedEvent, RecordedOutcome,
    RequestFingerprint,
};
use crate::ports::{
    AppendError, AtomicAppend, Clock, EventStore, IdSource, Snapshot, SnapshotStore, StoreError,
    StreamAppend,
};

/// Who is asking, for idempotency and the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandContext {
    pub idempotency_key: IdempotencyKey,
    pub correlation_id: String,
    pub traceparent: Option<String>,
}

/// Why a command produced no new events.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Rejected(#[from] DomainError),
    #[error("idempotency key {key} was already used for a different request")]
    IdempotencyKeyReused { key: IdempotencyKey },
    #[error("gave up after {attempts} attempts lost to concurrent writers")]
    ConcurrencyConflict { attempts: u32 },
    /// An append may or may not have committed, and the idempotency record could not be read to tell.
    /// The client must retry with the same key: the retry answers from the record if it committed.
    #[error("the outcome of the command is unknown: {source}")]
    OutcomeUnknown {
        #[source]
        source: crate::ports::BoxError,
    },
    #[error("the command would write {actions} actions, more than the limit of {max}")]
    TooLarge { actions: usize, max: usize },
    #[error("account {account_id} has a history the aggregate cannot have written: {source}")]
    CorruptHistory {
        account_id: AccountId,
        #[source]
        source: HistoryError,
    },
    /// A store failed before anything of this command was written.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How often and how patiently to retry an append that lost an optimistic-concurrency race.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included. At least 1.
    pub attempts_max: u32,
    /// The backoff ceiling doubles from this after each lost attempt...
    pub backoff_base: Duration,
    /// ...up to this; the actual delay is uniformly random below the ceiling ("full jitter"), which
    /// spreads out writers that collided so they do not collide again.
    pub backoff_max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts_max: 10,
            backoff_base: Duration::from_millis(2),
            backoff_max: Duration::from_millis(100),
        }
    }
}

impl RetryPolicy {
    fn delay_before_retry(&self, attempts_done: u32) -> Duration {
        let ceiling = self
            .backoff_base
            .saturating_mul(1 << attempts_done.min(16))
            .min(self.backoff_max);
        let ceiling_us = u64::try_from(ceiling.as_micros()).unwrap_or(u64::MAX);
        Duration::from_micros(fastrand::u64(0..=ceiling_us))
    }
}

/// Longest a command queues behind others on the same account in this process before it goes ahead
/// unqueued (and lets optimistic locking decide).
const LOCK_WAIT_MAX: Duration = Duration::from_secs(10);

/// Reads of an idempotency record while the store is unavailable, before the answer is given up on.
const RECORD_READS_MAX: u32 = 4;

/// Appends of unknown outcome one command tolerates, each resolved from the record, before the client
/// is told the outcome is unknown.
const UNKNOWN_OUTCOMES_MAX: u32 = 3;

/// Executes commands against the event store.
pub struct CommandService {
    store: Arc<dyn EventStore>,
    snapshots: Option<Snapshotting>,
    locks: AccountLocks,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdSource>,
    retry: RetryPolicy,
}

impl std::fmt::Debug for CommandService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandService")
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// Where and how often to snapshot accounts.
struct Snapshotting {
    store: Arc<dyn SnapshotStore>,
    /// A snapshot is written when an append carries an account's version across a multiple of this.
    every: u64,
}

/// One attempt's work, ready to append: the append itself, the outcome it records, and the snapshots
/// to store once it committed.
struct Prepared {
    append: AtomicAppend,
    outcome: RecordedOutcome,
    snapshots: Vec<Snapshot>,
}

/// What the domain accepted: the streams to append, the outcome, the snapshots due, and when.
struct Decided {
    streams: Vec<StreamAppend>,
    outcome: CommandOutcome,
    snapshots: Vec<Snapshot>,
    recorded_at: DateTime<Utc>,
}

/// An account as loaded for a decision: its state, and when its latest event was recorded.
#[derive(Default)]
struct Loaded {
    account: Option<Account>,
    last_recorded_at: Option<DateTime<Utc>>,
}

/// Where a load starts: the latest snapshot (the usual way), or the first event (after the store
/// found a snapshot ahead of its events).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LoadFrom {
    Snapshot,
    Events,
}

impl CommandService {
    pub fn new(
        store: Arc<dyn EventStore>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdSource>,
        retry: RetryPolicy,
    ) -> Self {
        assert!(
            retry.attempts_max >= 1,
            "a command needs at least one attempt"
        );
        Self {
            store,
            snapshots: None,
            locks: AccountLocks::new(LOCK_WAIT_MAX),
            clock,
            ids,
            retry,
        }
    }

    /// Loads accounts from their latest snapshot plus the events after it, and snapshots an account
    /// whenever an append carries its version across a multiple of `every` (at least 1).
    pub fn with_snapshots(mut self, store: Arc<dyn SnapshotStore>, every: u64) -> Self {
        self.snapshots = Some(Snapshotting {
            store,
            every: every.max(1),
        });
        self
    }

    /// Carries out `request` once, whatever the number of times it is sent with the same key, and
    /// gives every attempt under that key the same answer.
    #[tracing::instrument(skip_all, fields(idempotency_key = %context.idempotency_key))]
    pub async fn execute(
        &self,
        context: &CommandContext,
        request: &CommandRequest,
    ) -> Result<CommandOutcome, CommandError> {
        let fingerprint = request.fingerprint();
        let resolved = request.resolve(self.ids.as_ref());
        let accounts = resolved.accounts();
        let _queued = self.locks.lock(&accounts).await;
        let mut load = LoadFrom::Snapshot;
        let mut unknown_outcomes = 0;
        for attempt in 1..=self.retry.attempts_max {
            let prepared = self
                .prepare(context, &resolved, fingerprint.clone(), load)
                .await?;
            match self.store.append(prepared.append).await {
                Ok(()) => {
                    self.save_snapshots(&prepared.snapshots).await;
                    return answer(prepared.outcome);
                }
                Err(AppendError::Conflict { account_id }) => {
                    tracing::debug!(%account_id, attempt, "lost an append race; retrying");
                }
                Err(AppendError::TimeRegression { account_id }) => {
                    tracing::warn!(%account_id, attempt,
                        "an event would have been recorded before its predecessor; retrying");
                }
                Err(AppendError::MissingPredecessor {
                    account_id,
                    expected_version,
                }) => {
                    if load == LoadFrom::Events {
                        return Err(StoreError::corrupt(format!(
                            "account {account_id} replays to version {expected_version}, but the \
                             store has no event {expected_version}"
                        ))
                        .into());
                    }
                    // Only a snapshot ahead of its events can do this: decide again from the events.
                    tracing::error!(%account_id, expected_version,
                        "snapshot ahead of the stored events; replaying the whole stream");
                    load = LoadFrom::Events;
                    continue;
                }
                Err(AppendError::DuplicateRequest { key }) => {
                    // This key's request was carried out (by an earlier attempt, or one running
                    // now here or in another process): its record is the answer, whatever this
                    // attempt decided.
                    return self.answer_from_record(&key, &fingerprint).await;
                }
                Err(AppendError::OutcomeUnknown(source)) => {
                    tracing::warn!(attempt, error = %source,
                        "append outcome unknown; resolving it from the idempotency record");
                    unknown_outcomes += 1;
                    match self.read_record(&context.idempotency_key).await {
                        // It committed (or a concurrent attempt did): the record is the answer.
                        Ok(Some(record)) => return replay(&record, &fingerprint),
                        // It did not commit, or it is still in flight: appending again is safe,
                        // since the record's key lets at most one of the two commit.
                        Ok(None) if unknown_outcomes < UNKNOWN_OUTCOMES_MAX => continue,
                        Ok(None) => return Err(CommandError::OutcomeUnknown { source }),
                        Err(read_error) => {
                            tracing::warn!(error = %read_error, "idempotency record unreadable");
                            return Err(CommandError::OutcomeUnknown { source });
                        }
                    }
                }
                Err(AppendError::TooLarge { actions, max }) => {
                    return Err(CommandError::TooLarge { actions, max });
                }
                Err(AppendError::Store(error)) => return Err(error.into()),
            }
            if attempt < self.retry.attempts_max {
                tokio::time::sleep(self.retry.delay_before_retry(attempt)).await;
            }
        }
        Err(CommandError::ConcurrencyConflict {
            attempts: self.retry.attempts_max,
        })
    }

    /// The answer recorded under `key`, which the store just reported as taken. It is committed, so
    /// a consistent read finds it; if that read fails, the outcome is unknown to this attempt.
    async fn answer_from_record(
        &self,
        key: &IdempotencyKey,
        fingerprint: &RequestFingerprint,
    ) -> Result<CommandOutcome, CommandError> {
        match self.read_record(key).await {
            Ok(Some(record)) => replay(&record, fingerprint),
            Ok(None) => Err(StoreError::corrupt(format!(
                "append reported key {key} as recorded, but no record is stored"
            ))
            .into()),
            Err(source) => Err(CommandError::OutcomeUnknown {
                source: source.into(),
            }),
        }
    }

    /// The record under `key`, retrying a bounded number of times while the store is unavailable.
    async fn read_record(
        &self,
        key: &IdempotencyKey,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let mut attempt = 1;
        loop {
            match self.store.idempotency_record(key).await {
                Err(StoreError::Unavailable(error)) if attempt < RECORD_READS_MAX => {
                    tracing::debug!(%key, attempt, %error, "idempotency record unreadable; retrying");
                    tokio::time::sleep(self.retry.delay_before_retry(attempt)).await;
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    /// Loads the streams the request touches, decides, and builds the atomic append with its outcome:
    /// the events and the record if the domain accepts, the record alone if it rejects.
    async fn prepare(
        &self,
        context: &CommandContext,
        resolved: &Resolved,
        fingerprint: RequestFingerprint,
        load: LoadFrom,
    ) -> Result<Prepared, CommandError> {
        let (streams, outcome, snapshots, recorded_at) =
            match self.decide(context, resolved, load).await {
                Ok(Decided {
                    streams,
                    outcome,
                    snapshots,
                    recorded_at,
                }) => (
                    streams,
                    RecordedOutcome::Accepted(outcome),
                    snapshots,
                    recorded_at,
                ),
                Err(CommandError::Rejected(rejected)) => (
                    Vec::new(),
                    RecordedOutcome::Rejected { rejected },
                    Vec::new(),
                    self.clock.now(),
                ),
                Err(other) => return Err(other),
            };
        let record = IdempotencyRecord {
            key: context.idempotency_key.clone(),
            fingerprint,
            outcome: outcome.clone(),
            recorded_at,
        };
        let append = AtomicAppend::new(streams, record)
            .map_err(|e| StoreError::corrupt(format!("built an invalid append: {e}")))?;
        Ok(Prepared {
            append,
            outcome,
            snapshots,
        })
    }

    /// Loads the streams the request touches and decides; the events are numbered after the loaded
    /// versions and recorded no earlier than any event they follow.
    async fn decide(
        &self,
        context: &CommandContext,
        resolved: &Resolved,
        load: LoadFrom,
    ) -> Result<Decided, CommandError> {
        let metadata = |after: &[&Loaded]| EventMetadata {
            client_request_id: context.idempotency_key.clone(),
            correlation_id: context.correlation_id.clone(),
            causation_id: context.idempotency_key.to_string(),
            // Time runs forward within a stream, even if this clock stepped back or another
            // process's clock runs ahead: never before the latest event the new ones follow.
            recorded_at: after
                .iter()
                .filter_map(|loaded| loaded.last_recorded_at)
                .fold(self.clock.now(), DateTime::max),
            traceparent: context.traceparent.clone(),
        };

        match resolved {
            Resolved::Transfer(transfer) => {
                // Refuse a self-transfer before loading anything: it would load one stream twice.
                let (source, target) = if transfer.source == transfer.target {
                    (Loaded::default(), Loaded::default())
                } else {
                    (
                        self.load(&transfer.source, load).await?,
                        self.load(&transfer.target, load).await?,
                    )
                };
                let decision =
                    decide_transfer(source.account.as_ref(), target.account.as_ref(), transfer)?;
                let metadata = metadata(&[&source, &target]);
                let (source_stream, source_snapshot) = self.stream(
                    &transfer.source,
                    source.account.as_ref(),
                    vec![decision.debit],
                    &metadata,
                );
                let (target_stream, target_snapshot) = self.stream(
                    &transfer.target,
                    target.account.as_ref(),
                    vec![decision.credit],
                    &metadata,
                );
                let outcome = CommandOutcome::Transferred {
                    transfer_id: transfer.transfer_id.clone(),
                    source: posted(&source_stream),
                    target: posted(&target_stream),
                };
                Ok(Decided {
                    streams: vec![source_stream, target_stream],
                    outcome,
                    snapshots: source_snapshot.into_iter().chain(target_snapshot).collect(),
                    recorded_at: metadata.recorded_at,
                })
            }
            Resolved::Single {
                account_id,
                command,
            } => {
                let loaded = self.load(account_id, load).await?;
                let events = decide(account_id, loaded.account.as_ref(), command)?;
                let metadata = metadata(&[&loaded]);
                let (stream, snapshot) =
                    self.stream(account_id, loaded.account.as_ref(), events, &metadata);
                let event = posted(&stream);
                let outcome = match command {
                    AccountCommand::Open { .. } => CommandOutcome::AccountOpened { event },
                    AccountCommand::Deposit { .. } | AccountCommand::Withdraw { .. } => {
                        CommandOutcome::MoneyPosted { event }
                    }
                    AccountCommand::Freeze { .. } => CommandOutcome::StatusChanged {
                        event,
                        status: AccountStatus::Frozen,
                    },
                    AccountCommand::Unfreeze => CommandOutcome::StatusChanged {
                        event,
                        status: AccountStatus::Open,
                    },
                    AccountCommand::Close => CommandOutcome::StatusChanged {
                        event,
                        status: AccountStatus::Closed,
                    },
                };
                Ok(Decided {
                    streams: vec![stream],
                    outcome,
                    snapshots: snapshot.into_iter().collect(),
                    recorded_at: metadata.recorded_at,
                })
            }
        }
    }

    /// Whether going from `before` to `after` crosses a multiple of the snapshot interval.
    fn crosses_snapshot_mark(&self, before: Option<&Account>, after: &Account) -> bool {
        self.snapshots.as_ref().is_some_and(|snapshotting| {
            let before = before.map_or(0, Account::version);
            before / snapshotting.every < after.version() / snapshotting.every
        })
    }

    /// Stores snapshots after their events committed. A snapshot is only a shortcut, so a failure is
    /// logged and the command still succeeds: the next load just reads more events.
    async fn save_snapshots(&self, snapshots: &[Snapshot]) {
        let Some(snapshotting) = &self.snapshots else {
            return;
        };
        for snapshot in snapshots {
            if let Err(error) = snapshotting.store.save(snapshot).await {
                tracing::warn!(account_id = %snapshot.account_id, version = snapshot.version(),
                    %error, "snapshot not stored");
            }
        }
    }

    /// The account's current state: its latest snapshot (if snapshotting and `from` allows) plus the
    /// events after it, with the time its latest event was recorded.
    async fn load(&self, account_id: &AccountId, from: LoadFrom) -> Result<Loaded, CommandError> {
        let base = match from {
            LoadFrom::Snapshot => self.snapshot_base(account_id).await,
            LoadFrom::Events => None,
        };
        let after_sequence = base.as_ref().map_or(0, |(account, _)| account.version());
        let tail = self.store.load(account_id, after_sequence).await?;
        // The tail must continue the base without a hole, or the fold would skip money movements.
        let contiguous = tail
            .iter()
            .zip(after_sequence + 1..)
            .all(|(recorded, expected)| recorded.sequence == expected);
        if !contiguous {
            return Err(StoreError::corrupt(format!(
                "the events of {account_id} after sequence {after_sequence} are not contiguous"
            ))
            .into());
        }
        let last_recorded_at = tail
            .last()
            .map(RecordedEvent::recorded_at)
            .or(base.as_ref().map(|(_, taken_at)| *taken_at));
        let account = Account::replay_onto(
            account_id,
            base.map(|(account, _)| account),
            tail.iter().map(|recorded| &recorded.event),
        )
        .map_err(|source| CommandError::CorruptHistory {
            account_id: account_id.clone(),
            source,
        })?;
        Ok(Loaded {
            account,
            last_recorded_at,
        })
    }

    /// The state of the latest usable snapshot, with the time its last event was recorded (a snapshot
    /// is taken by the append of that event, at its `recorded_at`). A snapshot that cannot be read or
    /// restored only costs a full replay: it is logged and ignored, never trusted.
    async fn snapshot_base(&self, account_id: &AccountId) -> Option<(Account, DateTime<Utc>)> {
        let snapshotting = self.snapshots.as_ref()?;
        match snapshotting.store.latest(account_id).await {
            Ok(Some(snapshot)) => match Account::restore(account_id, snapshot.state) {
                Ok(account) => Some((account, snapshot.taken_at)),
                Err(error) => {
                    tracing::error!(%account_id, %error, "snapshot refused; replaying the whole stream");
                    None
                }
            },
            Ok(None) => None,
            Err(error) => {
                tracing::warn!(%account_id, %error, "snapshot unavailable; replaying the whole stream");
                None
            }
        }
    }

    /// Wraps decided events for one stream, numbering them after the state they were decided against,
    /// and the snapshot to store once they are committed, if they cross the snapshot interval.
    fn stream(
        &self,
        account_id: &AccountId,
        state: Option<&Account>,
        events: Vec<AccountEvent>,
        metadata: &EventMetadata,
    ) -> (StreamAppend, Option<Snapshot>) {
        let expected_version = state.map_or(0, Account::version);
        let snapshot = if self.snapshots.is_some() {
            // The decided events apply cleanly to the state they were decided against.
            let after = Account::replay_onto(account_id, state.cloned(), &events)
                .ok()
                .flatten();
            after
                .filter(|after| self.crosses_snapshot_mark(state, after))
                .map(|after| Snapshot {
                    account_id: account_id.clone(),
                    state: after.snapshot(),
                    taken_at: metadata.recorded_at,
                })
        } else {
            None
        };
        let events = events
            .into_iter()
            .zip(expected_version + 1..)
            .map(|(event, sequence)| RecordedEvent {
                account_id: account_id.clone(),
                sequence,
                event_id: self.ids.event_id(),
                event,
                metadata: metadata.clone(),
            })
            .collect();
        let stream = StreamAppend {
            account_id: account_id.clone(),
            expected_version,
            events,
        };
        (stream, snapshot)
    }
}

/// The stored result of the same request, or the refusal of a different one under the same key.
fn replay(
    record: &IdempotencyRecord,
    fingerprint: &RequestFingerprint,
) -> Result<CommandOutcome, CommandError> {
    if &record.fingerprint == fingerprint {
        answer(record.outcome.clone())
    } else {
        Err(CommandError::IdempotencyKeyReused {
            key: record.key.clone(),
        })
    }
}

/// A recorded outcome as the caller gets it: the accepted outcome, or the recorded rejection.
fn answer(outcome: RecordedOutcome) -> Result<CommandOutcome, CommandError> {
    match outcome {
        RecordedOutcome::Accepted(outcome) => Ok(outcome),
        RecordedOutcome::Rejected { rejected } => Err(CommandError::Rejected(rejected)),
    }
}

/// The last event of a stream append, as a command's response reports it.
fn posted(stream: &StreamAppend) -> PostedEvent {
    let last = stream
        .events
        .last()
        .expect("a decided stream append has events");
    PostedEvent {
        account_id: stream.account_id.clone(),
        sequence: last.sequence,
        event_id: last.event_id,
        balance_after: last.event.movement().map(|m| m.balance_after),
    }
}

#[cfg(test)]
mod tests;
