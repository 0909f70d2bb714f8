//! The domain's errors: `ParseError` for values that cannot exist, `DomainError` for commands the
//! aggregate rejects, and `HistoryError` for an event stream that cannot have been produced by it.
//!
//! Every variant is specific and carries the values a client needs to understand it; none is a string bag.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::identity::AccountId;
use crate::money::{Amount, Balance, Currency};

/// A value that failed its constructor's checks. Raised at the edges, before any command exists.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    #[error(
        "`{text}` is not a plain decimal number (digits with an optional fraction, no exponent)"
    )]
    InvalidDecimal { text: String },
    #[error("amount must be greater than zero, got {value}")]
    NonPositiveAmount { value: String },
    #[error("amount {value} exceeds the largest amount the ledger moves")]
    AmountTooLarge { value: String },
    #[error("overdraft limit must not be negative, got {value}")]
    NegativeOverdraftLimit { value: String },
    #[error("`{code}` is not a supported ISO 4217 currency code")]
    UnsupportedCurrency { code: String },
    #[error(
        "an identifier must be 1 to {max_len} characters of letters, digits, `-` or `_`, got `{text}`"
    )]
    InvalidIdentifier { text: String, max_len: usize },
    #[error("{field} must be 1 to {max_len} characters of printable text")]
    InvalidText { field: &'static str, max_len: usize },
    #[error("`{text}` is not an account kind (CHECKING or SAVINGS)")]
    InvalidAccountKind { text: String },
    #[error("`{text}` is not an account status (OPEN, FROZEN or CLOSED)")]
    InvalidAccountStatus { text: String },
}

/// A command the `Account` aggregate refuses. No event is written for it; the rejection itself is an
/// outcome, stored under the command's idempotency key (hence serde), so a retry gets it again.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize, Deserialize)]
#[serde(tag = "rejection", rename_all = "snake_case")]
pub enum DomainError {
    #[error("account {account_id} does not exist")]
    AccountNotFound { account_id: AccountId },
    #[error("account {account_id} already exists")]
    AccountAlreadyExists { account_id: AccountId },
    #[error("amount {amount} has more decimal places than {currency} allows ({minor_units})")]
    InvalidAmount {
        amount: Amount,
        currency: Currency,
        minor_units: u32,
    },
    #[error(
        "overdraft limit {limit} has more decimal places than {currency} allows ({minor_units})"
    )]
    InvalidOverdraftLimit {
        limit: String,
        currency: Currency,
        minor_units: u32,
    },
    #[error("account {account_id} has {available} available, {requested} was requested")]
    InsufficientFunds {
        account_id: AccountId,
        /// Balance plus overdraft limit: the most that could have been taken out.
        available: Balance,
        requested: Amount,
    },
    #[error("account {account_id} is frozen")]
    AccountFrozen { account_id: AccountId },
    #[error("account {account_id} is closed")]
    AccountClosed { account_id: AccountId },
    #[error("account {account_id} is already frozen")]
    AccountAlreadyFrozen { account_id: AccountId },
    #[error("account {account_id} is not frozen")]
    AccountNotFrozen { account_id: AccountId },
    #[error("cannot transfer between {source_currency} and {target_currency} accounts")]
    CurrencyMismatch {
        source_currency: Currency,
        target_currency: Currency,
    },
    #[error("source and target of a transfer must differ (both are {account_id})")]
    SameAccountTransfer { account_id: AccountId },
    #[error("account {account_id} cannot be closed with a balance of {balance}")]
    NonZeroBalance {
        account_id: AccountId,
        balance: Balance,
    },
    #[error("the balance of account {account_id} would leave the range the ledger can represent")]
    BalanceOutOfRange { account_id: AccountId },
}

/// An event stream that the aggregate could not have produced: a corrupted or foreign history.
/// Loading such a stream is refused rather than guessed at.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HistoryError {
    #[error("the first event of a stream must be AccountOpened, got {event_type}")]
    NotOpenedFirst { event_type: &'static str },
    #[error("AccountOpened appears again at version {version}")]
    OpenedTwice { version: u64 },
    #[error(
        "{event_type} at version {version} says balance {recorded}, but the history gives {computed}"
    )]
    BalanceMismatch {
        event_type: &'static str,
        version: u64,
        recorded: Balance,
        computed: Balance,
    },
    #[error("{event_type} at version {version} breaks a rule of the aggregate: {rule}")]
    ImpossibleEvent {
        event_type: &'static str,
        version: u64,
        rule: &'static str,
    },
}
