//! The command service: load, decide, append — with optimistic-concurrency retries and idempotency.
//!
//! The idempotency record is written in the same atomic append as the events, so "did this request
//! happen" and "what did it write" can never disagree. The look-up before deciding is only a shortcut:
//! the append is what guards against duplicates.

use std::sync::Arc;
use std::time::Duration;

use ledger_domain::{
    Account, AccountCommand, AccountEvent, AccountId, AccountKind, AccountStatus, Amount, Currency,
    Description, DomainError, FreezeReason, HistoryError, OverdraftLimit, OwnerName,
    TransferCommand, decide, decide_transfer,
};
use serde::Serialize;

use crate::account_locks::AccountLocks;
use crate::envelope::{EventMetadata, RecordedEvent};
use crate::idempotency::{
    CommandOutcome, IdempotencyKey, IdempotencyRecord, PostedEvent, RequestFingerprint,
};
use crate::ports::{
    AppendError, AtomicAppend, Clock, EventStore, IdSource, Snapshot, SnapshotStore, StoreError,
    StreamAppend,
};

/// A command as the client asked for it. Its canonical JSON is the request fingerprint, so generated
/// ids (an account id left out, a transfer id) are not part of it: a retry generates new ones, which
/// must not make it a different request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum CommandRequest {
    OpenAccount {
        account_id: Option<AccountId>,
        owner: OwnerName,
        kind: AccountKind,
        currency: Currency,
        overdraft_limit: Option<OverdraftLimit>,
    },
    Deposit {
        account_id: AccountId,
        amount: Amount,
        description: Option<Description>,
    },
    Withdraw {
        account_id: AccountId,
        amount: Amount,
        description: Option<Description>,
    },
    Transfer {
        source_account_id: AccountId,
        target_account_id: AccountId,
        amount: Amount,
        description: Option<Description>,
    },
    Freeze {
        account_id: AccountId,
        reason: FreezeReason,
    },
    Unfreeze {
        account_id: AccountId,
    },
    Close {
        account_id: AccountId,
    },
}

impl CommandRequest {
    /// The domain command this request asks for, with any ids it generates drawn from `ids` once, so
    /// that every retry of the attempt writes the same ones.
    fn resolve(&self, ids: &dyn IdSource) -> Resolved {
        let single = |account_id: &AccountId, command| Resolved::Single {
            account_id: account_id.clone(),
            command,
        };
        match self {
            Self::OpenAccount {
                account_id,
                owner,
                kind,
                currency,
                overdraft_limit,
            } => Resolved::Single {
                account_id: account_id.clone().unwrap_or_else(|| ids.account_id()),
                command: AccountCommand::Open {
                    owner: owner.clone(),
                    kind: *kind,
                    currency: *currency,
                    overdraft_limit: overdraft_limit.unwrap_or(OverdraftLimit::NONE),
                },
            },
            Self::Deposit {
                account_id,
                amount,
                description,
            } => single(
                account_id,
                AccountCommand::Deposit {
                    amount: *amount,
                    description: description.clone(),
                },
            ),
            Self::Withdraw {
                account_id,
                amount,
                description,
            } => single(
                account_id,
                AccountCommand::Withdraw {
                    amount: *amount,
                    description: description.clone(),
                },
            ),
            Self::Freeze { account_id, reason } => single(
                account_id,
                AccountCommand::Freeze {
                    reason: reason.clone(),
                },
            ),
            Self::Unfreeze { account_id } => single(account_id, AccountCommand::Unfreeze),
            Self::Close { account_id } => single(account_id, AccountCommand::Close),
            Self::Transfer {
                source_account_id,
                target_account_id,
                amount,
                description,
            } => Resolved::Transfer(TransferCommand {
                transfer_id: ids.transfer_id(),
                source: source_account_id.clone(),
                target: target_account_id.clone(),
                amount: *amount,
                description: description.clone(),
            }),
        }
    }

    pub fn fingerprint(&self) -> RequestFingerprint {
        let canonical = serde_json::to_vec(self).expect("a command request always serializes");
        RequestFingerprint::of(&canonical)
    }
}

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
    #[error("the command would write {actions} actions, more than the limit of {max}")]
    TooLarge { actions: usize, max: usize },
    #[error("account {account_id} has a history the aggregate cannot have written: {source}")]
    CorruptHistory {
        account_id: AccountId,
        #[source]
        source: HistoryError,
    },
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
    outcome: CommandOutcome,
    snapshots: Vec<Snapshot>,
}

/// A request resolved into the domain's commands, its generated ids fixed.
enum Resolved {
    Single {
        account_id: AccountId,
        command: AccountCommand,
    },
    Transfer(TransferCommand),
}

impl Resolved {
    /// The accounts whose streams the command appends to.
    fn accounts(&self) -> Vec<&AccountId> {
        match self {
            Self::Single { account_id, .. } => vec![account_id],
            Self::Transfer(transfer) => vec![&transfer.source, &transfer.target],
        }
    }
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

    /// Carries out `request` once, whatever the number of times it is sent with the same key.
    #[tracing::instrument(skip_all, fields(idempotency_key = %context.idempotency_key))]
    pub async fn execute(
        &self,
        context: &CommandContext,
        request: &CommandRequest,
    ) -> Result<CommandOutcome, CommandError> {
        let fingerprint = request.fingerprint();
        if let Some(record) = self
            .store
            .idempotency_record(&context.idempotency_key)
            .await?
        {
            return replay(&record, &fingerprint);
        }
        let resolved = request.resolve(self.ids.as_ref());
        let accounts = resolved.accounts();
        let _queued = self.locks.lock(&accounts).await;
        for attempt in 1..=self.retry.attempts_max {
            let prepared = self
                .prepare(context, &resolved, fingerprint.clone())
                .await?;
            match self.store.append(prepared.append).await {
                Ok(()) => {
                    self.save_snapshots(&prepared.snapshots).await;
                    return Ok(prepared.outcome);
                }
                Err(AppendError::Conflict { account_id }) => {
                    tracing::debug!(%account_id, attempt, "lost an append race; retrying");
                    if attempt < self.retry.attempts_max {
                        tokio::time::sleep(self.retry.delay_before_retry(attempt)).await;
                    }
                }
                Err(AppendError::DuplicateRequest { key }) => {
                    // A concurrent request with the same key won. Its record is committed, so a
                    // consistent read finds it.
                    let record = self.store.idempotency_record(&key).await?.ok_or_else(|| {
                        StoreError::corrupt(format!(
                            "append reported key {key} as recorded, but no record is stored"
                        ))
                    })?;
                    return replay(&record, &fingerprint);
                }
                Err(AppendError::TooLarge { actions, max }) => {
                    return Err(CommandError::TooLarge { actions, max });
                }
                Err(AppendError::Store(error)) => return Err(error.into()),
            }
        }
        Err(CommandError::ConcurrencyConflict {
            attempts: self.retry.attempts_max,
        })
    }

    /// Loads the streams the request touches, decides, and builds the atomic append with its outcome.
    async fn prepare(
        &self,
        context: &CommandContext,
        resolved: &Resolved,
        fingerprint: RequestFingerprint,
    ) -> Result<Prepared, CommandError> {
        let recorded_at = self.clock.now();
        let metadata = EventMetadata {
            client_request_id: context.idempotency_key.clone(),
            correlation_id: context.correlation_id.clone(),
            causation_id: context.idempotency_key.to_string(),
            recorded_at,
            traceparent: context.traceparent.clone(),
        };

        let (streams, outcome, snapshots) = match resolved {
            Resolved::Transfer(transfer) => {
                // Refuse a self-transfer before loading anything: it would load one stream twice.
                let (source, target) = if transfer.source == transfer.target {
                    (None, None)
                } else {
                    (
                        self.load(&transfer.source).await?,
                        self.load(&transfer.target).await?,
                    )
                };
                let decision = decide_transfer(source.as_ref(), target.as_ref(), transfer)?;
                let (source_stream, source_snapshot) = self.stream(
                    &transfer.source,
                    source.as_ref(),
                    vec![decision.debit],
                    &metadata,
                );
                let (target_stream, target_snapshot) = self.stream(
                    &transfer.target,
                    target.as_ref(),
                    vec![decision.credit],
                    &metadata,
                );
                let outcome = CommandOutcome::Transferred {
                    transfer_id: transfer.transfer_id.clone(),
                    source: posted(&source_stream),
                    target: posted(&target_stream),
                };
                let snapshots = source_snapshot.into_iter().chain(target_snapshot).collect();
                (vec![source_stream, target_stream], outcome, snapshots)
            }
            Resolved::Single {
                account_id,
                command,
            } => {
                let state = self.load(account_id).await?;
                let events = decide(account_id, state.as_ref(), command)?;
                let (stream, snapshot) = self.stream(account_id, state.as_ref(), events, &metadata);
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
                (vec![stream], outcome, snapshot.into_iter().collect())
            }
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

    /// The account's current state: its latest snapshot (if snapshotting) plus the events after it.
    async fn load(&self, account_id: &AccountId) -> Result<Option<Account>, CommandError> {
        let base = self.snapshot_base(account_id).await;
        let after_sequence = base.as_ref().map_or(0, Account::version);
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
        Account::replay_onto(
            account_id,
            base,
            tail.iter().map(|recorded| &recorded.event),
        )
        .map_err(|source| CommandError::CorruptHistory {
            account_id: account_id.clone(),
            source,
        })
    }

    /// The state of the latest usable snapshot. A snapshot that cannot be read or restored only costs
    /// a full replay: it is logged and ignored, never trusted.
    async fn snapshot_base(&self, account_id: &AccountId) -> Option<Account> {
        let snapshotting = self.snapshots.as_ref()?;
        match snapshotting.store.latest(account_id).await {
            Ok(Some(snapshot)) => match Account::restore(account_id, snapshot.state) {
                Ok(account) => Some(account),
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
        Ok(record.outcome.clone())
    } else {
        Err(CommandError::IdempotencyKeyReused {
            key: record.key.clone(),
        })
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
mod tests {
    //! Retry and idempotency decisions, against a mocked event store.

    use std::sync::Mutex;

    use chrono::{TimeZone, Utc};
    use ledger_domain::{AccountOpened, MoneyDeposited};
    use mockall::predicate::always;

    use super::*;
    use crate::envelope::EventId;
    use crate::ports::{MockEventStore, MockSnapshotStore, SystemClock, UuidV7Ids};

    fn account_id() -> AccountId {
        AccountId::parse("acc-1").unwrap()
    }

    fn context(key: &str) -> CommandContext {
        CommandContext {
            idempotency_key: IdempotencyKey::parse(key).unwrap(),
            correlation_id: "corr-1".to_owned(),
            traceparent: None,
        }
    }

    fn deposit(amount: &str) -> CommandRequest {
        CommandRequest::Deposit {
            account_id: account_id(),
            amount: Amount::parse(amount).unwrap(),
            description: None,
        }
    }

    /// The history of an open USD account holding 100.00: two events.
    fn history() -> Vec<RecordedEvent> {
        let metadata = EventMetadata {
            client_request_id: IdempotencyKey::parse("earlier").unwrap(),
            correlation_id: "c".to_owned(),
            causation_id: "earlier".to_owned(),
            recorded_at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
            traceparent: None,
        };
        let events = [
            AccountEvent::AccountOpened(AccountOpened {
                owner: OwnerName::parse("Ada").unwrap(),
                kind: AccountKind::Checking,
                currency: Currency::parse("USD").unwrap(),
                overdraft_limit: OverdraftLimit::parse("0.00").unwrap(),
            }),
            AccountEvent::MoneyDeposited(MoneyDeposited {
                amount: Amount::parse("100.00").unwrap(),
                balance_after: ledger_domain::Balance::parse("100.00").unwrap(),
                description: None,
            }),
        ];
        events
            .into_iter()
            .zip(1..)
            .map(|(event, sequence)| RecordedEvent {
                account_id: account_id(),
                sequence,
                event_id: EventId::from_uuid(uuid::Uuid::now_v7()),
                event,
                metadata: metadata.clone(),
            })
            .collect()
    }

    fn service(store: MockEventStore, attempts_max: u32) -> CommandService {
        CommandService::new(
            Arc::new(store),
            Arc::new(SystemClock),
            Arc::new(UuidV7Ids),
            RetryPolicy {
                attempts_max,
                ..RetryPolicy::default()
            },
        )
    }

    fn stored(key: &str, request: &CommandRequest, outcome: CommandOutcome) -> IdempotencyRecord {
        IdempotencyRecord {
            key: IdempotencyKey::parse(key).unwrap(),
            fingerprint: request.fingerprint(),
            outcome,
            recorded_at: Utc::now(),
        }
    }

    fn posted_outcome(sequence: u64) -> CommandOutcome {
        CommandOutcome::MoneyPosted {
            event: PostedEvent {
                account_id: account_id(),
                sequence,
                event_id: EventId::from_uuid(uuid::Uuid::now_v7()),
                balance_after: Some(ledger_domain::Balance::parse("150.00").unwrap()),
            },
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_lost_race_is_retried_against_a_fresh_load() {
        let mut store = MockEventStore::new();
        store
            .expect_idempotency_record()
            .times(1)
            .returning(|_| Ok(None));
        store.expect_load().times(2).returning(|_, _| Ok(history()));
        let mut calls = 0;
        store.expect_append().times(2).returning(move |append| {
            calls += 1;
            assert_eq!(append.streams()[0].expected_version, 2);
            assert_eq!(
                append.action_count(),
                2,
                "one event plus the idempotency record"
            );
            if calls == 1 {
                Err(AppendError::Conflict {
                    account_id: account_id(),
                })
            } else {
                Ok(())
            }
        });
        let outcome = service(store, 3)
            .execute(&context("k"), &deposit("50.00"))
            .await
            .unwrap();
        let CommandOutcome::MoneyPosted { event } = outcome else {
            panic!("a deposit posts money");
        };
        assert_eq!(event.sequence, 3);
        assert_eq!(event.balance_after.unwrap().to_string(), "150.00");
    }

    #[tokio::test(start_paused = true)]
    async fn retries_are_bounded_and_end_in_a_concurrency_conflict() {
        let mut store = MockEventStore::new();
        store.expect_idempotency_record().returning(|_| Ok(None));
        store.expect_load().times(4).returning(|_, _| Ok(history()));
        store.expect_append().times(4).returning(|_| {
            Err(AppendError::Conflict {
                account_id: account_id(),
            })
        });
        let error = service(store, 4)
            .execute(&context("k"), &deposit("1.00"))
            .await
            .unwrap_err();
        assert!(
            matches!(error, CommandError::ConcurrencyConflict { attempts: 4 }),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn a_recorded_request_is_replayed_without_loading_or_appending() {
        let request = deposit("50.00");
        let record = stored("k", &request, posted_outcome(3));
        let expected = record.outcome.clone();
        let mut store = MockEventStore::new();
        store
            .expect_idempotency_record()
            .times(1)
            .returning(move |_| Ok(Some(record.clone())));
        store.expect_load().never();
        store.expect_append().never();
        let outcome = service(store, 3)
            .execute(&context("k"), &request)
            .await
            .unwrap();
        assert_eq!(outcome, expected);
    }

    #[tokio::test]
    async fn a_different_request_under_a_used_key_is_refused() {
        let record = stored("k", &deposit("50.00"), posted_outcome(3));
        let mut store = MockEventStore::new();
        store
            .expect_idempotency_record()
            .returning(move |_| Ok(Some(record.clone())));
        store.expect_append().never();
        let error = service(store, 3)
            .execute(&context("k"), &deposit("50.01"))
            .await
            .unwrap_err();
        assert!(
            matches!(&error, CommandError::IdempotencyKeyReused { key } if key.as_str() == "k"),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn losing_the_key_race_returns_the_winners_outcome() {
        let request = deposit("50.00");
        let record = stored("k", &request, posted_outcome(3));
        let expected = record.outcome.clone();
        let mut store = MockEventStore::new();
        let mut lookups = 0;
        store
            .expect_idempotency_record()
            .times(2)
            .returning(move |_| {
                lookups += 1;
                Ok((lookups == 2).then(|| record.clone()))
            });
        store.expect_load().returning(|_, _| Ok(history()));
        store.expect_append().times(1).returning(|_| {
            Err(AppendError::DuplicateRequest {
                key: IdempotencyKey::parse("k").unwrap(),
            })
        });
        let outcome = service(store, 3)
            .execute(&context("k"), &request)
            .await
            .unwrap();
        assert_eq!(outcome, expected);
    }

    #[tokio::test]
    async fn a_rejected_command_writes_nothing() {
        let mut store = MockEventStore::new();
        store.expect_idempotency_record().returning(|_| Ok(None));
        store.expect_load().returning(|_, _| Ok(history()));
        store.expect_append().never();
        let withdraw = CommandRequest::Withdraw {
            account_id: account_id(),
            amount: Amount::parse("100.01").unwrap(),
            description: None,
        };
        let error = service(store, 3)
            .execute(&context("k"), &withdraw)
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                CommandError::Rejected(DomainError::InsufficientFunds { .. })
            ),
            "{error:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn generated_ids_stay_the_same_across_retries() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut store = MockEventStore::new();
        store.expect_idempotency_record().returning(|_| Ok(None));
        store.expect_load().returning(|_, _| Ok(Vec::new()));
        let recorded_ids = Arc::clone(&seen);
        store
            .expect_append()
            .with(always())
            .times(2)
            .returning(move |append| {
                let mut ids = recorded_ids.lock().unwrap();
                ids.push(append.streams()[0].account_id.clone());
                if ids.len() == 1 {
                    Err(AppendError::Conflict {
                        account_id: append.streams()[0].account_id.clone(),
                    })
                } else {
                    Ok(())
                }
            });
        let open = CommandRequest::OpenAccount {
            account_id: None,
            owner: OwnerName::parse("Ada").unwrap(),
            kind: AccountKind::Savings,
            currency: Currency::parse("EUR").unwrap(),
            overdraft_limit: None,
        };
        let outcome = service(store, 3)
            .execute(&context("open"), &open)
            .await
            .unwrap();
        let ids = seen.lock().unwrap().clone();
        assert_eq!(ids.len(), 2);
        assert_eq!(ids[0], ids[1], "a retry must not open a second account");
        let CommandOutcome::AccountOpened { event } = outcome else {
            panic!("open answers AccountOpened");
        };
        assert_eq!(event.account_id, ids[0]);
        assert_eq!(event.sequence, 1);
    }

    fn snapshot_of_history() -> Snapshot {
        let events: Vec<_> = history()
            .into_iter()
            .map(|recorded| recorded.event)
            .collect();
        Snapshot {
            account_id: account_id(),
            state: Account::replay(&account_id(), &events)
                .unwrap()
                .unwrap()
                .snapshot(),
            taken_at: Utc::now(),
        }
    }

    fn snapshotting(
        store: MockEventStore,
        snapshots: MockSnapshotStore,
        every: u64,
    ) -> CommandService {
        service(store, 3).with_snapshots(Arc::new(snapshots), every)
    }

    #[tokio::test]
    async fn a_load_reads_the_snapshot_plus_only_the_events_after_it() {
        let mut snapshots = MockSnapshotStore::new();
        snapshots
            .expect_latest()
            .returning(|_| Ok(Some(snapshot_of_history())));
        snapshots.expect_save().never();
        let mut store = MockEventStore::new();
        store.expect_idempotency_record().returning(|_| Ok(None));
        store
            .expect_load()
            .withf(|_, after_sequence| *after_sequence == 2)
            .times(1)
            .returning(|_, _| Ok(Vec::new()));
        store
            .expect_append()
            .withf(|append| append.streams()[0].expected_version == 2)
            .times(1)
            .returning(|_| Ok(()));
        let outcome = snapshotting(store, snapshots, 100)
            .execute(&context("k"), &deposit("1.00"))
            .await
            .unwrap();
        let CommandOutcome::MoneyPosted { event } = outcome else {
            panic!("a deposit posts money");
        };
        assert_eq!(event.balance_after.unwrap().to_string(), "101.00");
    }

    #[tokio::test]
    async fn a_snapshot_is_stored_when_an_append_crosses_the_interval() {
        let mut snapshots = MockSnapshotStore::new();
        snapshots.expect_latest().returning(|_| Ok(None));
        snapshots
            .expect_save()
            .withf(|snapshot| {
                snapshot.version() == 3 && snapshot.state.balance.to_string() == "101.00"
            })
            .times(1)
            .returning(|_| Ok(true));
        let mut store = MockEventStore::new();
        store.expect_idempotency_record().returning(|_| Ok(None));
        store.expect_load().returning(|_, _| Ok(history()));
        store.expect_append().times(1).returning(|_| Ok(()));
        snapshotting(store, snapshots, 3)
            .execute(&context("k"), &deposit("1.00"))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn an_impossible_snapshot_is_ignored_for_a_full_replay() {
        let mut snapshots = MockSnapshotStore::new();
        snapshots.expect_latest().returning(|_| {
            let mut snapshot = snapshot_of_history();
            snapshot.state.balance = ledger_domain::Balance::parse("-5.00").unwrap();
            Ok(Some(snapshot))
        });
        snapshots.expect_save().never();
        let mut store = MockEventStore::new();
        store.expect_idempotency_record().returning(|_| Ok(None));
        store
            .expect_load()
            .withf(|_, after_sequence| *after_sequence == 0)
            .returning(|_, _| Ok(history()));
        store.expect_append().times(1).returning(|_| Ok(()));
        snapshotting(store, snapshots, 100)
            .execute(&context("k"), &deposit("1.00"))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_tail_with_a_hole_is_refused_as_corrupt() {
        let mut store = MockEventStore::new();
        store.expect_idempotency_record().returning(|_| Ok(None));
        store.expect_load().returning(|_, _| {
            let mut events = history();
            events[1].sequence = 3;
            Ok(events)
        });
        store.expect_append().never();
        let error = service(store, 3)
            .execute(&context("k"), &deposit("1.00"))
            .await
            .unwrap_err();
        assert!(
            matches!(error, CommandError::Store(StoreError::Corrupt { .. })),
            "{error:?}"
        );
    }

    #[test]
    fn the_fingerprint_ignores_nothing_the_client_sent() {
        assert_eq!(deposit("1.00").fingerprint(), deposit("1.00").fingerprint());
        assert_ne!(deposit("1.00").fingerprint(), deposit("1.01").fingerprint());
        let withdraw = CommandRequest::Withdraw {
            account_id: account_id(),
            amount: Amount::parse("1.00").unwrap(),
            description: None,
        };
        assert_ne!(deposit("1.00").fingerprint(), withdraw.fingerprint());
    }
}
