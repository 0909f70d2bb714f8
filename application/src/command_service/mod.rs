//! The command service: load, decide, append — with optimistic-concurrency retries and idempotency.
//!
//! The idempotency record is written in the same atomic append as the events, so "did this request
//! happen" and "what did it write" can never disagree. A business rejection is recorded too (the record
//! alone), so every attempt of one key — after, during or in parallel with the first — ends in the
//! same answer: an attempt that finds the key taken answers from the record, never from its own
//! decision. There is no look-up before deciding: the store's atomic check is the only guard, and a
//! look-up would cost a read on every command for the benefit of the rare retry.
//!
//! # The state cache: constant-cost loads, validated by version
//!
//! Loading an account costs a replay of its history (or a snapshot plus a tail) on every command.
//! Instead the service keeps, per account, the state after the latest append it saw commit
//! ([`state_cache`], bounded, `with_state_cache`). A cached state may be stale — another process
//! (or a command that bypassed the account lock) may have appended since — and is validated before
//! anything decided against it takes effect, in one of two ways:
//!
//! - **An accepted command needs no read.** Its append carries the cached version as the expected
//!   version, and the store commits it only if no event follows that version (and the predecessor
//!   exists, and time does not run backwards). A stale cache therefore ends in `Conflict` (or
//!   `TimeRegression`): the involved accounts are dropped from the cache and the command is decided
//!   again from the store, as without a cache. This retry is not counted against the retry policy,
//!   since no writer raced this command; it happens at most once per command.
//! - **A rejection needs one read.** It is recorded as the idempotency record alone, with no stream
//!   append, so the store checks no version and would record a rejection decided against a stale
//!   state (an "insufficient funds" after a deposit elsewhere) as final. So before a rejection
//!   decided against the cache is recorded, the events after the cached version are read; if there
//!   are any, they are folded in and the command is decided again. Only a rejection decided against
//!   the store's current state is recorded.
//!
//! Opening an account the cache does not hold assumes it does not exist without reading: the append
//! at sequence 1 conflicts if it does, and a rejection decided on that assumption is validated by a
//! full load, as above. Every append that did not commit drops its accounts from the cache; every
//! committed append, and every state read from the store, refreshes them.

mod request;
pub mod state_cache;

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ledger_domain::{
    Account, AccountCommand, AccountEvent, AccountId, AccountStatus, DomainError, HistoryError,
    decide, decide_transfer,
};

pub use self::request::CommandRequest;
use self::request::Resolved;
use self::state_cache::{CachedAccount, DEFAULT_STATE_CACHE_ACCOUNTS, StateCache};

use tracing::Instrument;

use crate::account_locks::AccountLocks;
use crate::caller::Caller;
use crate::envelope::{EventMetadata, RecordedEvent};
use crate::idempotency::{
    CommandOutcome, IdempotencyKey, IdempotencyRecord, PostedEvent, RecordedOutcome,
    RequestFingerprint,
};
use crate::metrics::{self, CommandOutcomeLabel};
use crate::ports::{
    AppendError, AtomicAppend, Clock, EventStore, IdSource, Snapshot, SnapshotStore, StoreError,
    StreamAppend,
};
use crate::trace_context;

/// Who is asking, for idempotency and the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandContext {
    /// The authenticated caller: recorded on every event, and the scope of `idempotency_key`.
    pub caller: Caller,
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
    cache: StateCache,
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
    /// The accounts' states once the append committed, for the cache.
    states_after: Vec<CachedAccount>,
    /// Whether the decision rests on a cached (or assumed) state, which a refused append may
    /// merely have found stale.
    rests_on_cache: bool,
}

/// What the domain accepted: the streams to append, the outcome, the snapshots due, and when.
struct Decided {
    streams: Vec<StreamAppend>,
    outcome: RecordedOutcome,
    snapshots: Vec<Snapshot>,
    states_after: Vec<CachedAccount>,
    rests_on_cache: bool,
    recorded_at: DateTime<Utc>,
}

/// One stream's decided events, ready to append, with what follows from them once committed.
struct DecidedStream {
    append: StreamAppend,
    /// The snapshot to store, if the events cross the snapshot interval.
    snapshot: Option<Snapshot>,
    /// The account's state after the events, if the cache is on.
    state_after: Option<CachedAccount>,
}

/// An account as loaded for a decision: its state, when its latest event was recorded, and where
/// the state came from.
#[derive(Default)]
struct Loaded {
    account: Option<Account>,
    last_recorded_at: Option<DateTime<Utc>>,
    provenance: Provenance,
}

/// Where a loaded state came from, which decides what validates a decision taken against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Provenance {
    /// Read from the store in this attempt.
    #[default]
    Store,
    /// The cache's, possibly stale: an acceptance is validated by the append's expected version, a
    /// rejection by a read of the events after the cached version.
    Cache,
    /// Not cached and not read, assumed not to exist (only to open an account, whose append at
    /// sequence 1 conflicts if it does): a rejection is validated by a full load.
    AssumedMissing,
}

/// Where a load starts: the cache (the first attempt, when the cache is on), the latest snapshot
/// (the usual way without it, and after an append refused a cached state), or the first event
/// (after the store found a snapshot ahead of its events).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LoadFrom {
    Cache,
    Snapshot,
    Events,
}

/// Where one command's attempts stand.
struct Attempts {
    /// The attempt under way, from 1; a retry after a stale cache does not count.
    number: u32,
    /// Where the next attempt loads its accounts from.
    load: LoadFrom,
    /// Appends of unknown outcome so far.
    unknown_outcomes: u32,
    /// Decisions taken (each followed by an append), stale-cache retries included: the command
    /// span's `ledger.command.attempts`.
    decisions: u32,
    /// Whether the answer came from the idempotency record rather than this command's decision.
    replayed: bool,
}

/// What to do after an append that did not commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// At once and without counting an attempt: the append refused a cached state, which the next
    /// attempt no longer uses (so this happens at most once per command).
    StaleCache,
    /// At once, counting an attempt.
    Now,
    /// After the policy's backoff, counting an attempt.
    AfterBackoff,
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
            cache: StateCache::new(DEFAULT_STATE_CACHE_ACCOUNTS),
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

    /// Caches the state of at most `accounts` accounts (0: none), so that a command on a cached
    /// account reads nothing before its append (see the module docs). The default is
    /// [`DEFAULT_STATE_CACHE_ACCOUNTS`].
    pub fn with_state_cache(mut self, accounts: usize) -> Self {
        self.cache = StateCache::new(accounts);
        self
    }

    /// Carries out `request` once, whatever the number of times it is sent with the same key, and
    /// gives every attempt under that key the same answer.
    ///
    /// Inside a `command` span (a child of the current span, or of the incoming `traceparent` when
    /// there is none), which records the type, the outcome and the attempts; the events' stored
    /// `traceparent` names this span, so the projector continues the trace from it.
    pub async fn execute(
        &self,
        context: &CommandContext,
        request: &CommandRequest,
    ) -> Result<CommandOutcome, CommandError> {
        let command_type = request.command_type();
        let span = tracing::info_span!(
            "command",
            otel.name = format!("command {command_type}"),
            otel.kind = "internal",
            otel.status_code = tracing::field::Empty,
            "ledger.command.type" = command_type,
            ledger.command.outcome = tracing::field::Empty,
            ledger.command.attempts = tracing::field::Empty,
            idempotency_key = %context.idempotency_key,
        );
        // Under an HTTP request span the trace is already the caller's; without one (a Lambda, a
        // tool) the header's trace is continued here, so the command never starts a trace of its
        // own when the caller sent one.
        if trace_context::current_traceparent().is_none() {
            trace_context::continue_trace(&span, context.traceparent.as_deref());
        }
        let mut attempts = Attempts {
            number: 1,
            load: if self.cache.is_enabled() {
                LoadFrom::Cache
            } else {
                LoadFrom::Snapshot
            },
            unknown_outcomes: 0,
            decisions: 0,
            replayed: false,
        };
        let result = self
            .execute_in_span(context, request, command_type, &mut attempts)
            .instrument(span.clone())
            .await;
        let outcome = outcome_label(&result, attempts.replayed);
        span.record("ledger.command.outcome", outcome.as_str());
        span.record("ledger.command.attempts", attempts.decisions);
        if matches!(
            outcome,
            CommandOutcomeLabel::Failed | CommandOutcomeLabel::OutcomeUnknown
        ) {
            span.record("otel.status_code", "error");
        }
        metrics::count_command(command_type, outcome);
        result
    }

    async fn execute_in_span(
        &self,
        context: &CommandContext,
        request: &CommandRequest,
        command_type: &'static str,
        attempts: &mut Attempts,
    ) -> Result<CommandOutcome, CommandError> {
        // The events carry the command span's context (taken here, inside it), or the caller's
        // header when telemetry is off.
        let traced_context = CommandContext {
            traceparent: trace_context::current_traceparent()
                .or_else(|| context.traceparent.clone()),
            ..context.clone()
        };
        let context = &traced_context;
        let fingerprint = request.fingerprint();
        let resolved = request.resolve(self.ids.as_ref());
        let accounts = resolved.accounts();
        let _queued = self.locks.lock(&accounts).await;
        loop {
            attempts.decisions += 1;
            let prepared = self
                .prepare(context, &resolved, fingerprint.clone(), attempts.load)
                .await?;
            let refusal = match self.store.append(prepared.append).await {
                Ok(()) => {
                    self.save_snapshots(&prepared.snapshots).await;
                    for state in prepared.states_after {
                        self.cache.remember(state);
                    }
                    return answer(prepared.outcome);
                }
                Err(refusal) => refusal,
            };
            if matches!(refusal, AppendError::Conflict { .. }) {
                metrics::count_conflict(command_type);
            }
            // Whatever the refusal, a cached state may be what the store refused.
            for account_id in &accounts {
                self.cache.forget(account_id);
            }
            if attempts.load == LoadFrom::Cache {
                attempts.load = LoadFrom::Snapshot;
            }
            let retry = match self
                .after_refusal(
                    refusal,
                    prepared.rests_on_cache,
                    attempts,
                    context,
                    &fingerprint,
                )
                .await
            {
                ControlFlow::Continue(retry) => retry,
                ControlFlow::Break(answer) => return answer,
            };
            if retry == Retry::StaleCache {
                metrics::count_retry(command_type);
                continue;
            }
            if attempts.number >= self.retry.attempts_max {
                return Err(CommandError::ConcurrencyConflict {
                    attempts: self.retry.attempts_max,
                });
            }
            metrics::count_retry(command_type);
            if retry == Retry::AfterBackoff {
                tokio::time::sleep(self.retry.delay_before_retry(attempts.number)).await;
            }
            attempts.number += 1;
        }
    }

    /// What follows an append the store refused: a retry (of which kind), or the command's answer.
    /// `rests_on_cache`: the refused decision was taken against a cached (or assumed) state.
    async fn after_refusal(
        &self,
        refusal: AppendError,
        rests_on_cache: bool,
        attempts: &mut Attempts,
        context: &CommandContext,
        fingerprint: &RequestFingerprint,
    ) -> ControlFlow<Result<CommandOutcome, CommandError>, Retry> {
        let attempt = attempts.number;
        let retry = match refusal {
            AppendError::Conflict { account_id } if rests_on_cache => {
                tracing::debug!(%account_id, "the cached state was stale; reloading");
                Retry::StaleCache
            }
            AppendError::Conflict { account_id } => {
                tracing::debug!(%account_id, attempt, "lost an append race; retrying");
                Retry::AfterBackoff
            }
            AppendError::TimeRegression { account_id } if rests_on_cache => {
                tracing::debug!(%account_id,
                    "the cached state was older than the stream's latest event; reloading");
                Retry::StaleCache
            }
            AppendError::TimeRegression { account_id } => {
                tracing::warn!(%account_id, attempt,
                    "an event would have been recorded before its predecessor; retrying");
                Retry::AfterBackoff
            }
            AppendError::MissingPredecessor { account_id, .. } if rests_on_cache => {
                // A cached state is a committed one, so its event exists; reload all the same.
                tracing::warn!(%account_id, "the store lacks the cached version; reloading");
                Retry::StaleCache
            }
            AppendError::MissingPredecessor {
                account_id,
                expected_version,
            } => {
                if attempts.load == LoadFrom::Events {
                    return ControlFlow::Break(Err(StoreError::corrupt(format!(
                        "account {account_id} replays to version {expected_version}, but the \
                         store has no event {expected_version}"
                    ))
                    .into()));
                }
                // Only a snapshot ahead of its events can do this: decide again from the events.
                tracing::error!(%account_id, expected_version,
                    "snapshot ahead of the stored events; replaying the whole stream");
                attempts.load = LoadFrom::Events;
                Retry::Now
            }
            AppendError::DuplicateRequest { key } => {
                // This key's request was carried out (by an earlier attempt, or one running now
                // here or in another process): its record is the answer, whatever this attempt
                // decided.
                attempts.replayed = true;
                return ControlFlow::Break(self.answer_from_record(&key, fingerprint).await);
            }
            AppendError::OutcomeUnknown(source) => {
                tracing::warn!(attempt, error = %source,
                    "append outcome unknown; resolving it from the idempotency record");
                attempts.unknown_outcomes += 1;
                match self.read_record(&context.idempotency_key).await {
                    // It committed (or a concurrent attempt did): the record is the answer.
                    Ok(Some(record)) => {
                        attempts.replayed = true;
                        return ControlFlow::Break(replay(&record, fingerprint));
                    }
                    // It did not commit, or it is still in flight: appending again is safe, since
                    // the record's key lets at most one of the two commit.
                    Ok(None) if attempts.unknown_outcomes < UNKNOWN_OUTCOMES_MAX => Retry::Now,
                    Ok(None) => {
                        return ControlFlow::Break(Err(CommandError::OutcomeUnknown { source }));
                    }
                    Err(read_error) => {
                        tracing::warn!(error = %read_error, "idempotency record unreadable");
                        return ControlFlow::Break(Err(CommandError::OutcomeUnknown { source }));
                    }
                }
            }
            AppendError::TooLarge { actions, max } => {
                return ControlFlow::Break(Err(CommandError::TooLarge { actions, max }));
            }
            AppendError::Store(error) => return ControlFlow::Break(Err(error.into())),
        };
        ControlFlow::Continue(retry)
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
        let decided = match self.decide(context, resolved, load).await {
            Ok(decided) => decided,
            // Decided against the store's current state (see `validate_rejection`): recorded alone.
            Err(CommandError::Rejected(rejected)) => Decided {
                streams: Vec::new(),
                outcome: RecordedOutcome::Rejected { rejected },
                snapshots: Vec::new(),
                states_after: Vec::new(),
                rests_on_cache: false,
                recorded_at: self.clock.now(),
            },
            Err(other) => return Err(other),
        };
        let Decided {
            streams,
            outcome,
            snapshots,
            states_after,
            rests_on_cache,
            recorded_at,
        } = decided;
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
            states_after,
            rests_on_cache,
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
        let metadata = |after: &[&Loaded]| self.metadata(context, after);
        match resolved {
            Resolved::Transfer(transfer) => {
                // Refuse a self-transfer before loading anything: it would load one stream twice.
                let (mut source, mut target) = if transfer.source == transfer.target {
                    (Loaded::default(), Loaded::default())
                } else {
                    (
                        self.current(&transfer.source, load, false).await?,
                        self.current(&transfer.target, load, false).await?,
                    )
                };
                let decision = match decide_transfer(
                    source.account.as_ref(),
                    target.account.as_ref(),
                    transfer,
                ) {
                    Ok(decision) => decision,
                    Err(rejected) => {
                        let source_moved = self
                            .validate_rejection(&transfer.source, &mut source)
                            .await?;
                        let target_moved = self
                            .validate_rejection(&transfer.target, &mut target)
                            .await?;
                        if !source_moved && !target_moved {
                            return Err(rejected.into());
                        }
                        decide_transfer(source.account.as_ref(), target.account.as_ref(), transfer)?
                    }
                };
                let metadata = metadata(&[&source, &target]);
                let source_stream = self.stream(
                    &transfer.source,
                    source.account.as_ref(),
                    vec![decision.debit],
                    &metadata,
                );
                let target_stream = self.stream(
                    &transfer.target,
                    target.account.as_ref(),
                    vec![decision.credit],
                    &metadata,
                );
                let outcome = CommandOutcome::Transferred {
                    transfer_id: transfer.transfer_id.clone(),
                    source: posted(&source_stream.append),
                    target: posted(&target_stream.append),
                };
                Ok(Decided::accepted(
                    vec![source_stream, target_stream],
                    outcome,
                    [&source, &target]
                        .iter()
                        .any(|loaded| loaded.provenance != Provenance::Store),
                    metadata.recorded_at,
                ))
            }
            Resolved::Single {
                account_id,
                command,
            } => {
                let opening = matches!(command, AccountCommand::Open { .. });
                let mut loaded = self.current(account_id, load, opening).await?;
                let events = match decide(account_id, loaded.account.as_ref(), command) {
                    Ok(events) => events,
                    Err(rejected) => {
                        if !self.validate_rejection(account_id, &mut loaded).await? {
                            return Err(rejected.into());
                        }
                        decide(account_id, loaded.account.as_ref(), command)?
                    }
                };
                let metadata = metadata(&[&loaded]);
                let stream = self.stream(account_id, loaded.account.as_ref(), events, &metadata);
                let outcome = single_outcome(command, posted(&stream.append));
                Ok(Decided::accepted(
                    vec![stream],
                    outcome,
                    loaded.provenance != Provenance::Store,
                    metadata.recorded_at,
                ))
            }
        }
    }

    /// The metadata of the events of one command, recorded no earlier than any event they follow.
    fn metadata(&self, context: &CommandContext, after: &[&Loaded]) -> EventMetadata {
        EventMetadata {
            caller: context.caller.clone(),
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
        }
    }

    /// The state to decide against: the cached one if `from` allows and the cache holds it;
    /// for an account being opened that the cache does not hold, none (assumed, not read);
    /// otherwise loaded from the store (and then cached).
    async fn current(
        &self,
        account_id: &AccountId,
        from: LoadFrom,
        opening: bool,
    ) -> Result<Loaded, CommandError> {
        if from == LoadFrom::Cache {
            if let Some(cached) = self.cache.get(account_id) {
                return Ok(Loaded {
                    account: Some(cached.account),
                    last_recorded_at: Some(cached.last_recorded_at),
                    provenance: Provenance::Cache,
                });
            }
            if opening {
                return Ok(Loaded {
                    provenance: Provenance::AssumedMissing,
                    ..Loaded::default()
                });
            }
        }
        let loaded = self.load(account_id, from).await?;
        self.remember(&loaded);
        Ok(loaded)
    }

    /// Brings a state a rejection was decided against up to the store's current state, since a
    /// rejection is recorded without a version check: nothing to do for a state read from the
    /// store in this attempt; the events after the cached version for a cached one; a full load for
    /// one assumed missing. Whether the state changed (and the command must be decided again).
    async fn validate_rejection(
        &self,
        account_id: &AccountId,
        loaded: &mut Loaded,
    ) -> Result<bool, CommandError> {
        let (fresh, moved) = match loaded.provenance {
            Provenance::Store => return Ok(false),
            Provenance::Cache => {
                let cached_version = loaded.account.as_ref().map_or(0, Account::version);
                let base = loaded.account.take().zip(loaded.last_recorded_at);
                let fresh = self.load_after(account_id, base).await?;
                let moved = fresh.account.as_ref().map_or(0, Account::version) != cached_version;
                (fresh, moved)
            }
            Provenance::AssumedMissing => {
                let fresh = self.load(account_id, LoadFrom::Snapshot).await?;
                let moved = fresh.account.is_some();
                (fresh, moved)
            }
        };
        self.remember(&fresh);
        *loaded = fresh;
        Ok(moved)
    }

    /// Caches a state read from the store: it is committed, whatever follows.
    fn remember(&self, loaded: &Loaded) {
        if let (Some(account), Some(last_recorded_at)) = (&loaded.account, loaded.last_recorded_at)
        {
            self.cache.remember(CachedAccount {
                account: account.clone(),
                last_recorded_at,
            });
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
            LoadFrom::Cache | LoadFrom::Snapshot => self.snapshot_base(account_id).await,
            LoadFrom::Events => None,
        };
        self.load_after(account_id, base).await
    }

    /// `base` (a state with the time its latest event was recorded, or none for the start of the
    /// stream) with the stored events after it folded in.
    async fn load_after(
        &self,
        account_id: &AccountId,
        base: Option<(Account, DateTime<Utc>)>,
    ) -> Result<Loaded, CommandError> {
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
            provenance: Provenance::Store,
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
    /// with the snapshot to store once they are committed (if they cross the snapshot interval) and
    /// the state they lead to (if the cache is on).
    fn stream(
        &self,
        account_id: &AccountId,
        state: Option<&Account>,
        events: Vec<AccountEvent>,
        metadata: &EventMetadata,
    ) -> DecidedStream {
        let expected_version = state.map_or(0, Account::version);
        let after = if self.snapshots.is_some() || self.cache.is_enabled() {
            // The decided events apply cleanly to the state they were decided against.
            Account::replay_onto(account_id, state.cloned(), &events)
                .ok()
                .flatten()
        } else {
            None
        };
        let snapshot = after
            .as_ref()
            .filter(|after| self.crosses_snapshot_mark(state, after))
            .map(|after| Snapshot {
                account_id: account_id.clone(),
                state: after.snapshot(),
                taken_at: metadata.recorded_at,
            });
        let state_after = after
            .filter(|_| self.cache.is_enabled())
            .map(|account| CachedAccount {
                account,
                last_recorded_at: metadata.recorded_at,
            });
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
        DecidedStream {
            append: StreamAppend {
                account_id: account_id.clone(),
                expected_version,
                events,
            },
            snapshot,
            state_after,
        }
    }
}

impl Decided {
    /// What an accepted command appends, and what follows once that committed.
    fn accepted(
        streams: Vec<DecidedStream>,
        outcome: CommandOutcome,
        rests_on_cache: bool,
        recorded_at: DateTime<Utc>,
    ) -> Self {
        let mut appends = Vec::with_capacity(streams.len());
        let mut snapshots = Vec::new();
        let mut states_after = Vec::new();
        for stream in streams {
            appends.push(stream.append);
            snapshots.extend(stream.snapshot);
            states_after.extend(stream.state_after);
        }
        Self {
            streams: appends,
            outcome: RecordedOutcome::Accepted(outcome),
            snapshots,
            states_after,
            rests_on_cache,
            recorded_at,
        }
    }
}

/// How a command's result is counted and marked on its span. `replayed`: the answer came from the
/// idempotency record (of an earlier or concurrent attempt), whether accepted or rejected.
fn outcome_label(
    result: &Result<CommandOutcome, CommandError>,
    replayed: bool,
) -> CommandOutcomeLabel {
    match result {
        Ok(_) | Err(CommandError::Rejected(_)) if replayed => CommandOutcomeLabel::Replayed,
        Ok(_) => CommandOutcomeLabel::Accepted,
        Err(
            CommandError::Rejected(_)
            | CommandError::IdempotencyKeyReused { .. }
            | CommandError::TooLarge { .. },
        ) => CommandOutcomeLabel::Rejected,
        Err(CommandError::ConcurrencyConflict { .. }) => CommandOutcomeLabel::Conflict,
        Err(CommandError::OutcomeUnknown { .. }) => CommandOutcomeLabel::OutcomeUnknown,
        Err(CommandError::CorruptHistory { .. } | CommandError::Store(_)) => {
            CommandOutcomeLabel::Failed
        }
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

/// What a single-account command answers once its event is posted.
fn single_outcome(command: &AccountCommand, event: PostedEvent) -> CommandOutcome {
    match command {
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
