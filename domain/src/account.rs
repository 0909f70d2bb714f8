//! The `Account` aggregate's state and how events evolve it (`apply`, `replay`).
//!
//! State changes only through events; the decisions that produce events live in `decide`.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{HistoryError, ParseError};
use crate::event::AccountEvent;
use crate::identity::{AccountId, OwnerName};
use crate::money::{Balance, Currency, OverdraftLimit};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AccountKind {
    Checking,
    Savings,
}

impl AccountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Checking => "CHECKING",
            Self::Savings => "SAVINGS",
        }
    }

    pub fn parse(text: &str) -> Result<Self, ParseError> {
        match text {
            "CHECKING" => Ok(Self::Checking),
            "SAVINGS" => Ok(Self::Savings),
            _ => Err(ParseError::InvalidAccountKind {
                text: text.chars().take(20).collect(),
            }),
        }
    }
}

impl fmt::Display for AccountKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AccountStatus {
    Open,
    Frozen,
    Closed,
}

impl AccountStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "OPEN",
            Self::Frozen => "FROZEN",
            Self::Closed => "CLOSED",
        }
    }

    pub fn parse(text: &str) -> Result<Self, ParseError> {
        match text {
            "OPEN" => Ok(Self::Open),
            "FROZEN" => Ok(Self::Frozen),
            "CLOSED" => Ok(Self::Closed),
            _ => Err(ParseError::InvalidAccountStatus {
                text: text.chars().take(20).collect(),
            }),
        }
    }
}

impl fmt::Display for AccountStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The state of an account at `version`, as plain data: what a snapshot stores so that loading an
/// account reads the snapshot plus the events after it instead of the whole history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountSnapshot {
    pub owner: OwnerName,
    pub kind: AccountKind,
    pub currency: Currency,
    pub status: AccountStatus,
    pub balance: Balance,
    pub overdraft_limit: OverdraftLimit,
    pub version: u64,
}

/// An opened account, as its events say it is. An account that was never opened has no state at all:
/// the aggregate is `Option<Account>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    id: AccountId,
    owner: OwnerName,
    kind: AccountKind,
    currency: Currency,
    status: AccountStatus,
    balance: Balance,
    overdraft_limit: OverdraftLimit,
    version: u64,
}

impl Account {
    pub fn id(&self) -> &AccountId {
        &self.id
    }

    pub fn owner(&self) -> &OwnerName {
        &self.owner
    }

    pub fn kind(&self) -> AccountKind {
        self.kind
    }

    pub fn currency(&self) -> Currency {
        self.currency
    }

    pub fn status(&self) -> AccountStatus {
        self.status
    }

    pub fn balance(&self) -> Balance {
        self.balance
    }

    pub fn overdraft_limit(&self) -> OverdraftLimit {
        self.overdraft_limit
    }

    /// The sequence of the last event applied: the expected version of the next append.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The most that may be taken out now: balance plus overdraft limit.
    pub fn available(&self) -> Balance {
        self.balance.plus_overdraft(self.overdraft_limit)
    }

    /// Folds a whole stream, oldest first. `Ok(None)` for an empty stream.
    pub fn replay<'a>(
        account_id: &AccountId,
        events: impl IntoIterator<Item = &'a AccountEvent>,
    ) -> Result<Option<Self>, HistoryError> {
        Self::replay_onto(account_id, None, events)
    }

    /// Folds the events that follow `state` (a snapshot's, or `None` for the start of the stream).
    pub fn replay_onto<'a>(
        account_id: &AccountId,
        state: Option<Self>,
        events: impl IntoIterator<Item = &'a AccountEvent>,
    ) -> Result<Option<Self>, HistoryError> {
        events.into_iter().try_fold(state, |state, event| {
            apply(account_id, state, event).map(Some)
        })
    }

    /// The state as plain data, to be stored as a snapshot and restored with [`Account::restore`].
    pub fn snapshot(&self) -> AccountSnapshot {
        AccountSnapshot {
            owner: self.owner.clone(),
            kind: self.kind,
            currency: self.currency,
            status: self.status,
            balance: self.balance,
            overdraft_limit: self.overdraft_limit,
            version: self.version,
        }
    }

    /// Rebuilds the state a snapshot recorded, refusing one the aggregate could not have reached.
    pub fn restore(
        account_id: &AccountId,
        snapshot: AccountSnapshot,
    ) -> Result<Self, HistoryError> {
        let minor_units = snapshot.currency.minor_units();
        let broken = if snapshot.version == 0 {
            Some("a snapshot follows at least the opening event")
        } else if snapshot.balance.value().scale() != minor_units
            || snapshot.overdraft_limit.value().scale() != minor_units
        {
            Some("money is written in the currency's minor units")
        } else if !snapshot.balance.within(snapshot.overdraft_limit) {
            Some("a balance never passes the overdraft limit")
        } else if snapshot.status == AccountStatus::Closed && !snapshot.balance.is_zero() {
            Some("only an open account at zero balance is closed")
        } else {
            None
        };
        if let Some(rule) = broken {
            return Err(HistoryError::ImpossibleEvent {
                event_type: "Snapshot",
                version: snapshot.version,
                rule,
            });
        }
        Ok(Self {
            id: account_id.clone(),
            owner: snapshot.owner,
            kind: snapshot.kind,
            currency: snapshot.currency,
            status: snapshot.status,
            balance: snapshot.balance,
            overdraft_limit: snapshot.overdraft_limit,
            version: snapshot.version,
        })
    }
}

/// Evolves the state by one event. Pure; refuses histories the aggregate cannot have produced: an event
/// before the opening, a status transition or money movement `decide` would have refused, an amount not
/// in the currency's minor units, and a recorded `balance_after` that the history's arithmetic contradicts.
pub fn apply(
    account_id: &AccountId,
    state: Option<Account>,
    event: &AccountEvent,
) -> Result<Account, HistoryError> {
    let Some(mut account) = state else {
        return match event {
            AccountEvent::AccountOpened(opened)
                if opened.overdraft_limit.value().scale() != opened.currency.minor_units() =>
            {
                Err(HistoryError::ImpossibleEvent {
                    event_type: event.event_type(),
                    version: 1,
                    rule: "money is written in the currency's minor units",
                })
            }
            AccountEvent::AccountOpened(opened) => Ok(Account {
                id: account_id.clone(),
                owner: opened.owner.clone(),
                kind: opened.kind,
                currency: opened.currency,
                status: AccountStatus::Open,
                balance: Balance::zero(opened.currency),
                overdraft_limit: opened.overdraft_limit,
                version: 1,
            }),
            other => Err(HistoryError::NotOpenedFirst {
                event_type: other.event_type(),
            }),
        };
    };
    let version = account.version + 1;
    if matches!(event, AccountEvent::AccountOpened(_)) {
        return Err(HistoryError::OpenedTwice { version });
    }
    let impossible = |rule| HistoryError::ImpossibleEvent {
        event_type: event.event_type(),
        version,
        rule,
    };
    // The same rules `decide` enforces, checked again on read: a stream that breaks them was not
    // written by this aggregate, and folding it would hide the damage.
    let rule_broken =
        match event {
            AccountEvent::AccountOpened(_) => None,
            AccountEvent::MoneyDeposited(_)
            | AccountEvent::MoneyWithdrawn(_)
            | AccountEvent::TransferDebited(_)
            | AccountEvent::TransferCredited(_) => (account.status != AccountStatus::Open)
                .then_some("money moves only on an open account"),
            AccountEvent::AccountFrozen(_) => {
                (account.status != AccountStatus::Open).then_some("only an open account is frozen")
            }
            AccountEvent::AccountUnfrozen(_) => (account.status != AccountStatus::Frozen)
                .then_some("only a frozen account is unfrozen"),
            AccountEvent::AccountClosed(_) => (account.status != AccountStatus::Open
                || !account.balance.is_zero())
            .then_some("only an open account at zero balance is closed"),
        };
    if let Some(rule) = rule_broken {
        return Err(impossible(rule));
    }
    if let Some(movement) = event.movement() {
        let minor_units = account.currency.minor_units();
        if movement.amount.value().scale() != minor_units
            || movement.balance_after.value().scale() != minor_units
        {
            return Err(impossible("money is written in the currency's minor units"));
        }
        let computed = match event {
            AccountEvent::MoneyDeposited(_) | AccountEvent::TransferCredited(_) => {
                account.balance.plus(movement.amount)
            }
            _ => account.balance.minus(movement.amount),
        };
        if computed != Some(movement.balance_after) {
            return Err(HistoryError::BalanceMismatch {
                event_type: event.event_type(),
                version,
                recorded: movement.balance_after,
                computed: computed.unwrap_or(account.balance),
            });
        }
        let debit = matches!(
            event,
            AccountEvent::MoneyWithdrawn(_) | AccountEvent::TransferDebited(_)
        );
        if debit && !movement.balance_after.within(account.overdraft_limit) {
            return Err(impossible("a debit never passes the overdraft limit"));
        }
        account.balance = movement.balance_after;
    }
    if let Some(status) = event.status_after() {
        account.status = status;
    }
    account.version = version;
    Ok(account)
}
