//! Ledger domain: money, the event-sourced `Account` aggregate, its commands, events and errors.
//!
//! Pure by construction: no I/O, no async, no clock, no randomness. Ids and timestamps come in from the
//! application, so every decision here is a deterministic function of state and command.

pub mod account;
pub mod decide;
pub mod error;
pub mod event;
pub mod identity;
pub mod money;

pub use account::{Account, AccountKind, AccountSnapshot, AccountStatus, apply};
pub use decide::{AccountCommand, TransferCommand, TransferDecision, decide, decide_transfer};
pub use error::{DomainError, HistoryError, ParseError};
pub use event::{
    AccountClosed, AccountEvent, AccountFrozen, AccountOpened, AccountUnfrozen, EntryType,
    MoneyDeposited, MoneyWithdrawn, Movement, TransferCredited, TransferDebited,
};
pub use identity::{AccountId, Description, FreezeReason, OwnerName, TransferId};
pub use money::{Amount, Balance, Currency, OverdraftLimit};
