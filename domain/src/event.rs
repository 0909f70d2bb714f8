//! The events of the `Account` aggregate: immutable facts, past tense, each with a schema version.
//!
//! Balance-changing events carry `balance_after`, so a projection copies numbers instead of computing
//! them and a reader can check every event against the one before it.

use serde::{Deserialize, Serialize};

use crate::account::{AccountKind, AccountStatus};
use crate::identity::{AccountId, Description, FreezeReason, OwnerName, TransferId};
use crate::money::{Amount, Balance, Currency, OverdraftLimit};

/// One fact in an account's stream. The stream itself (the account id) and the position in it (the
/// sequence) live in the envelope the application wraps around the event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event_type", content = "payload")]
pub enum AccountEvent {
    AccountOpened(AccountOpened),
    MoneyDeposited(MoneyDeposited),
    MoneyWithdrawn(MoneyWithdrawn),
    TransferDebited(TransferDebited),
    TransferCredited(TransferCredited),
    AccountFrozen(AccountFrozen),
    AccountUnfrozen(AccountUnfrozen),
    AccountClosed(AccountClosed),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountOpened {
    pub owner: OwnerName,
    pub kind: AccountKind,
    pub currency: Currency,
    pub overdraft_limit: OverdraftLimit,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoneyDeposited {
    pub amount: Amount,
    pub balance_after: Balance,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<Description>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoneyWithdrawn {
    pub amount: Amount,
    pub balance_after: Balance,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<Description>,
}

/// The source side of a transfer; its twin `TransferCredited` is on the target's stream, written in
/// the same atomic append.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferDebited {
    pub transfer_id: TransferId,
    pub amount: Amount,
    pub balance_after: Balance,
    pub target_account_id: AccountId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<Description>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferCredited {
    pub transfer_id: TransferId,
    pub amount: Amount,
    pub balance_after: Balance,
    pub source_account_id: AccountId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<Description>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountFrozen {
    pub reason: FreezeReason,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountUnfrozen {}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountClosed {}

/// How an event moved money, for readers that list movements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Movement<'a> {
    pub entry_type: EntryType,
    pub amount: Amount,
    pub balance_after: Balance,
    pub transfer_id: Option<&'a TransferId>,
    pub counterparty_account_id: Option<&'a AccountId>,
    pub description: Option<&'a Description>,
}

/// The kind of a money movement as the read model lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EntryType {
    Deposit,
    Withdrawal,
    TransferOut,
    TransferIn,
}

impl EntryType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deposit => "DEPOSIT",
            Self::Withdrawal => "WITHDRAWAL",
            Self::TransferOut => "TRANSFER_OUT",
            Self::TransferIn => "TRANSFER_IN",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Deposit,
            Self::Withdrawal,
            Self::TransferOut,
            Self::TransferIn,
        ]
        .into_iter()
        .find(|entry| entry.as_str() == text)
    }
}

impl AccountEvent {
    /// The stable name stored with the event and used to decode it.
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::AccountOpened(_) => "AccountOpened",
            Self::MoneyDeposited(_) => "MoneyDeposited",
            Self::MoneyWithdrawn(_) => "MoneyWithdrawn",
            Self::TransferDebited(_) => "TransferDebited",
            Self::TransferCredited(_) => "TransferCredited",
            Self::AccountFrozen(_) => "AccountFrozen",
            Self::AccountUnfrozen(_) => "AccountUnfrozen",
            Self::AccountClosed(_) => "AccountClosed",
        }
    }

    /// The version of the payload's shape. Bump it (and keep decoding the old one) when a payload changes.
    pub fn schema_version(&self) -> u16 {
        1
    }

    /// The money this event moved, if it moved any.
    pub fn movement(&self) -> Option<Movement<'_>> {
        match self {
            Self::MoneyDeposited(e) => Some(Movement {
                entry_type: EntryType::Deposit,
                amount: e.amount,
                balance_after: e.balance_after,
                transfer_id: None,
                counterparty_account_id: None,
                description: e.description.as_ref(),
            }),
            Self::MoneyWithdrawn(e) => Some(Movement {
                entry_type: EntryType::Withdrawal,
                amount: e.amount,
                balance_after: e.balance_after,
                transfer_id: None,
                counterparty_account_id: None,
                description: e.description.as_ref(),
            }),
            Self::TransferDebited(e) => Some(Movement {
                entry_type: EntryType::TransferOut,
                amount: e.amount,
                balance_after: e.balance_after,
                transfer_id: Some(&e.transfer_id),
                counterparty_account_id: Some(&e.target_account_id),
                description: e.description.as_ref(),
            }),
            Self::TransferCredited(e) => Some(Movement {
                entry_type: EntryType::TransferIn,
                amount: e.amount,
                balance_after: e.balance_after,
                transfer_id: Some(&e.transfer_id),
                counterparty_account_id: Some(&e.source_account_id),
                description: e.description.as_ref(),
            }),
            Self::AccountOpened(_)
            | Self::AccountFrozen(_)
            | Self::AccountUnfrozen(_)
            | Self::AccountClosed(_) => None,
        }
    }

    /// The account status this event leaves behind, if it changes the status.
    pub fn status_after(&self) -> Option<AccountStatus> {
        match self {
            Self::AccountOpened(_) | Self::AccountUnfrozen(_) => Some(AccountStatus::Open),
            Self::AccountFrozen(_) => Some(AccountStatus::Frozen),
            Self::AccountClosed(_) => Some(AccountStatus::Closed),
            Self::MoneyDeposited(_)
            | Self::MoneyWithdrawn(_)
            | Self::TransferDebited(_)
            | Self::TransferCredited(_) => None,
        }
    }
}
