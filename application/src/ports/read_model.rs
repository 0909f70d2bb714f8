//! The read-model ports: `Projection` (the projector's writes) and `ReadModelQuery` (the query side's
//! reads), with the flat views they exchange. Where the projector is in its source is not the read
//! model's: see `checkpoints.rs`. Views hold results, never history to add up.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use ledger_domain::{
    AccountEvent, AccountId, AccountKind, AccountStatus, Amount, Balance, Currency, Description,
    EntryType, FreezeReason, OverdraftLimit, OwnerName, TransferId,
};

use crate::envelope::{EventId, RecordedEvent};
use crate::ports::StoreError;

/// What one event changes in the read model, worked out once here so that every adapter only stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadModelUpdate {
    pub account_id: AccountId,
    /// The event's sequence: the account's `last_sequence` once this update is applied.
    pub sequence: u64,
    pub event_id: EventId,
    pub occurred_at: DateTime<Utc>,
    pub change: ReadModelChange,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadModelChange {
    /// Insert the account row (sequence 1).
    Opened {
        owner: OwnerName,
        kind: AccountKind,
        currency: Currency,
        overdraft_limit: OverdraftLimit,
    },
    /// Set the balance, add a transaction row, and set the day's closing balance.
    Moved(TransactionView),
    /// Set the status (and the freeze reason, cleared on any other status).
    StatusChanged {
        status: AccountStatus,
        frozen_reason: Option<FreezeReason>,
    },
}

impl ReadModelUpdate {
    pub fn from_event(recorded: &RecordedEvent) -> Self {
        let change = match &recorded.event {
            AccountEvent::AccountOpened(opened) => ReadModelChange::Opened {
                owner: opened.owner.clone(),
                kind: opened.kind,
                currency: opened.currency,
                overdraft_limit: opened.overdraft_limit,
            },
            AccountEvent::AccountFrozen(frozen) => ReadModelChange::StatusChanged {
                status: AccountStatus::Frozen,
                frozen_reason: Some(frozen.reason.clone()),
            },
            AccountEvent::AccountUnfrozen(_) => ReadModelChange::StatusChanged {
                status: AccountStatus::Open,
                frozen_reason: None,
            },
            AccountEvent::AccountClosed(_) => ReadModelChange::StatusChanged {
                status: AccountStatus::Closed,
                frozen_reason: None,
            },
            AccountEvent::MoneyDeposited(_)
            | AccountEvent::MoneyWithdrawn(_)
            | AccountEvent::TransferDebited(_)
            | AccountEvent::TransferCredited(_) => {
                let movement = recorded
                    .event
                    .movement()
                    .expect("every money event has a movement");
                ReadModelChange::Moved(TransactionView {
                    sequence: recorded.sequence,
                    event_id: recorded.event_id,
                    entry_type: movement.entry_type,
                    amount: movement.amount,
                    balance_after: movement.balance_after,
                    transfer_id: movement.transfer_id.cloned(),
                    counterparty_account_id: movement.counterparty_account_id.cloned(),
                    description: movement.description.cloned(),
                    occurred_at: recorded.recorded_at(),
                })
            }
        };
        Self {
            account_id: recorded.account_id.clone(),
            sequence: recorded.sequence,
            event_id: recorded.event_id,
            occurred_at: recorded.recorded_at(),
            change,
        }
    }
}

/// Whether a conditional apply happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyOutcome {
    Applied,
    /// The account's `last_sequence` was not `sequence - 1` any more (another projector moved it):
    /// nothing was written.
    Stale,
}

/// The identity of one recorded dead letter, as an operator names it (`ledger dead-letters retry ID`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeadLetterId(u64);

impl DeadLetterId {
    pub fn new(id: u64) -> Self {
        Self(id)
    }

    pub fn get(self) -> u64 {
        self.0
    }
}

impl std::fmt::Display for DeadLetterId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// An event the projector could not apply, kept for an operator instead of stalling every other
/// account: a poison event (undecodable, or refused by the read model after bounded retries), an event
/// past a gap, or an event held back because an earlier event of its account is a dead letter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The stream, when known: an undecodable record may not even say whose it is.
    pub account_id: Option<AccountId>,
    pub sequence: Option<u64>,
    pub event_id: Option<EventId>,
    pub event_type: Option<String>,
    /// The event as it was stored, as JSON text (the row's columns, or the stream record's image),
    /// so that an operator sees exactly what the projector saw.
    pub raw: String,
    /// Why it was not applied.
    pub reason: String,
    /// `Some(head)`: this event is not known to be bad itself; it waits behind the dead letter
    /// `head`, an earlier event of its account, and is applied when `head` is redriven.
    pub waiting_behind: Option<DeadLetterId>,
    pub recorded_at: DateTime<Utc>,
}

impl DeadLetter {
    /// What makes two letters one: the event's stream and sequence, or, when those are unknown, its
    /// raw form. Recording a letter again under the same key keeps the first.
    pub fn deduplication_key(&self) -> String {
        match (&self.account_id, self.sequence) {
            (Some(account_id), Some(sequence)) => format!("event:{account_id}/{sequence}"),
            _ => format!("raw:{}", self.raw),
        }
    }
}

/// A dead letter as the read model keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDeadLetter {
    pub id: DeadLetterId,
    pub letter: DeadLetter,
    /// When it was redriven and applied (or found applied); `None` while it is open.
    pub resolved_at: Option<DateTime<Utc>>,
}

/// The projector's side of the read model.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait Projection: Send + Sync {
    /// The sequence of the last event applied to `account_id`; 0 if none.
    async fn last_sequence(&self, account_id: &AccountId) -> Result<u64, StoreError>;

    /// Applies `update` and sets the account's `last_sequence` to `update.sequence` in ONE transaction,
    /// and only if `last_sequence` is `update.sequence - 1` at that moment; otherwise writes nothing
    /// and returns `Stale`. For `Opened`, "no account row yet" plays the part of `last_sequence == 0`.
    async fn apply(&self, update: &ReadModelUpdate) -> Result<ApplyOutcome, StoreError>;

    /// Applies `updates` in order (several may be of one account) in one atomic write, each by the
    /// rule of [`Projection::apply`]: all of them if every one is its account's next event at its
    /// turn, and none otherwise (`Ok(false)`, nothing written). The projector's fast path: a refused
    /// batch goes event by event, where duplicates, gaps and dead letters are judged one at a time.
    /// Refusing is always correct, so this default, which writes nothing, is too; every read model
    /// that is written to under load implements it.
    async fn apply_batch(&self, updates: &[ReadModelUpdate]) -> Result<bool, StoreError> {
        let _ = updates;
        Ok(false)
    }

    /// Records a letter and returns its id. A letter with the same
    /// [`DeadLetter::deduplication_key`] as an open one keeps the open one (and its first reason); as
    /// a resolved one, it opens that one again with the new letter's fields, so that an event failing
    /// anew is never hidden behind an old resolution.
    async fn record_dead_letter(&self, letter: &DeadLetter) -> Result<DeadLetterId, StoreError>;

    /// The open dead letters, oldest first, at most `limit`.
    async fn dead_letters(&self, limit: usize) -> Result<Vec<StoredDeadLetter>, StoreError>;

    /// One letter by id, open or resolved.
    async fn dead_letter(&self, id: DeadLetterId) -> Result<Option<StoredDeadLetter>, StoreError>;

    /// The open letter of `account_id` with the lowest sequence that is not itself waiting: the one
    /// the account's later events wait behind.
    async fn blocking_dead_letter(
        &self,
        account_id: &AccountId,
    ) -> Result<Option<StoredDeadLetter>, StoreError>;

    /// Marks every open letter of `account_id` with a sequence up to `through_sequence` resolved at
    /// `at` (their events are applied now). Returns how many it resolved.
    async fn resolve_dead_letters(
        &self,
        account_id: &AccountId,
        through_sequence: u64,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError>;
}

/// An account as the read model shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountView {
    pub account_id: AccountId,
    pub owner: OwnerName,
    pub kind: AccountKind,
    pub currency: Currency,
    pub status: AccountStatus,
    pub balance: Balance,
    pub overdraft_limit: OverdraftLimit,
    pub frozen_reason: Option<FreezeReason>,
    pub last_sequence: u64,
    pub opened_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One money movement of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionView {
    pub sequence: u64,
    pub event_id: EventId,
    pub entry_type: EntryType,
    pub amount: Amount,
    pub balance_after: Balance,
    pub transfer_id: Option<TransferId>,
    pub counterparty_account_id: Option<AccountId>,
    pub description: Option<Description>,
    pub occurred_at: DateTime<Utc>,
}

/// The balance at the end of a day (UTC) on which the account moved money.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailyBalanceView {
    pub date: NaiveDate,
    pub closing_balance: Balance,
    /// The sequence of the day's last movement.
    pub last_sequence: u64,
}

/// The query side's reads. Every method returns stored values only: no arithmetic over history.
#[async_trait]
pub trait ReadModelQuery: Send + Sync {
    async fn account(&self, account_id: &AccountId) -> Result<Option<AccountView>, StoreError>;

    /// Up to `limit` movements with a sequence above `after_sequence`, in sequence order.
    async fn transactions(
        &self,
        account_id: &AccountId,
        after_sequence: u64,
        limit: usize,
    ) -> Result<Vec<TransactionView>, StoreError>;

    /// The last movement that occurred at or before `at`, if any.
    async fn last_transaction_at_or_before(
        &self,
        account_id: &AccountId,
        at: DateTime<Utc>,
    ) -> Result<Option<TransactionView>, StoreError>;

    /// Closing balances of the days in `from..=to` on which money moved, oldest first, at most `limit`.
    async fn daily_balances(
        &self,
        account_id: &AccountId,
        from: NaiveDate,
        to: NaiveDate,
        limit: usize,
    ) -> Result<Vec<DailyBalanceView>, StoreError>;
}
