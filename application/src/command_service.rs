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

use crate::envelope::{EventMetadata, RecordedEvent};
use crate::idempotency::{
    CommandOutcome, IdempotencyKey, IdempotencyRecord, PostedEvent, RequestFingerprint,
};
use crate::ports::{
    AppendError, AtomicAppend, Clock, EventStore, IdSource, StoreError, StreamAppend,
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

/// Executes commands against the event store.
pub struct CommandService {
    store: Arc<dyn EventStore>,
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

/// The ids a command generates, fixed once per request so every retry writes the same ones.
struct GeneratedIds {
    account_id: Option<AccountId>,
    transfer_id: Option<ledger_domain::TransferId>,
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
            clock,
            ids,
            retry,
        }
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
        let generated = GeneratedIds {
            account_id: match request {
                CommandRequest::OpenAccount {
                    account_id: None, ..
                } => Some(self.ids.account_id()),
                _ => None,
            },
            transfer_id: match request {
                CommandRequest::Transfer { .. } => Some(self.ids.transfer_id()),
                _ => None,
            },
        };

        for attempt in 1..=self.retry.attempts_max {
            let (append, outcome) = self
                .prepare(context, request, &generated, fingerprint.clone())
                .await?;
            match self.store.append(append).await {
                Ok(()) => return Ok(outcome),
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
        request: &CommandRequest,
        generated: &GeneratedIds,
        fingerprint: RequestFingerprint,
    ) -> Result<(AtomicAppend, CommandOutcome), CommandError> {
        let recorded_at = self.clock.now();
        let metadata = EventMetadata {
            client_request_id: context.idempotency_key.clone(),
            correlation_id: context.correlation_id.clone(),
            causation_id: context.idempotency_key.to_string(),
            recorded_at,
            traceparent: context.traceparent.clone(),
        };

        let (streams, outcome) = if let CommandRequest::Transfer {
            source_account_id,
            target_account_id,
            amount,
            description,
        } = request
        {
            let transfer_id = generated
                .transfer_id
                .clone()
                .expect("a transfer id is generated for every transfer");
            let command = TransferCommand {
                transfer_id: transfer_id.clone(),
                source: source_account_id.clone(),
                target: target_account_id.clone(),
                amount: *amount,
                description: description.clone(),
            };
            // Refuse a self-transfer before loading anything: it would load one stream twice.
            let (source, target) = if source_account_id == target_account_id {
                (None, None)
            } else {
                (
                    self.load(source_account_id).await?,
                    self.load(target_account_id).await?,
                )
            };
            let decision = decide_transfer(source.as_ref(), target.as_ref(), &command)?;
            let source_stream = self.stream(
                source_account_id,
                source.as_ref(),
                vec![decision.debit],
                &metadata,
            );
            let target_stream = self.stream(
                target_account_id,
                target.as_ref(),
                vec![decision.credit],
                &metadata,
            );
            let outcome = CommandOutcome::Transferred {
                transfer_id,
                source: posted(&source_stream),
                target: posted(&target_stream),
            };
            (vec![source_stream, target_stream], outcome)
        } else {
            let (account_id, command) = single_account_command(request, generated);
            let state = self.load(&account_id).await?;
            let events = decide(&account_id, state.as_ref(), &command)?;
            let stream = self.stream(&account_id, state.as_ref(), events, &metadata);
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
            (vec![stream], outcome)
        };

        let record = IdempotencyRecord {
            key: context.idempotency_key.clone(),
            fingerprint,
            outcome: outcome.clone(),
            recorded_at,
        };
        let append = AtomicAppend::new(streams, record)
            .map_err(|e| StoreError::corrupt(format!("built an invalid append: {e}")))?;
        Ok((append, outcome))
    }

    async fn load(&self, account_id: &AccountId) -> Result<Option<Account>, CommandError> {
        let history = self.store.load(account_id, 0).await?;
        Account::replay(account_id, history.iter().map(|recorded| &recorded.event)).map_err(
            |source| CommandError::CorruptHistory {
                account_id: account_id.clone(),
                source,
            },
        )
    }

    /// Wraps decided events for one stream, numbering them after the state they were decided against.
    fn stream(
        &self,
        account_id: &AccountId,
        state: Option<&Account>,
        events: Vec<AccountEvent>,
        metadata: &EventMetadata,
    ) -> StreamAppend {
        let expected_version = state.map_or(0, Account::version);
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
        StreamAppend {
            account_id: account_id.clone(),
            expected_version,
            events,
        }
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

fn single_account_command(
    request: &CommandRequest,
    generated: &GeneratedIds,
) -> (AccountId, AccountCommand) {
    match request {
        CommandRequest::OpenAccount {
            account_id,
            owner,
            kind,
            currency,
            overdraft_limit,
        } => (
            account_id
                .clone()
                .or_else(|| generated.account_id.clone())
                .expect("an account id is given or generated"),
            AccountCommand::Open {
                owner: owner.clone(),
                kind: *kind,
                currency: *currency,
                overdraft_limit: overdraft_limit.unwrap_or(OverdraftLimit::NONE),
            },
        ),
        CommandRequest::Deposit {
            account_id,
            amount,
            description,
        } => (
            account_id.clone(),
            AccountCommand::Deposit {
                amount: *amount,
                description: description.clone(),
            },
        ),
        CommandRequest::Withdraw {
            account_id,
            amount,
            description,
        } => (
            account_id.clone(),
            AccountCommand::Withdraw {
                amount: *amount,
                description: description.clone(),
            },
        ),
        CommandRequest::Freeze { account_id, reason } => (
            account_id.clone(),
            AccountCommand::Freeze {
                reason: reason.clone(),
            },
        ),
        CommandRequest::Unfreeze { account_id } => (account_id.clone(), AccountCommand::Unfreeze),
        CommandRequest::Close { account_id } => (account_id.clone(), AccountCommand::Close),
        CommandRequest::Transfer { .. } => {
            unreachable!("transfers are decided by decide_transfer")
        }
    }
}
