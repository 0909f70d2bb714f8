//! Commands and the pure decisions of the `Account` aggregate: `decide` for one account, `decide_transfer`
//! for the two accounts of a transfer, judged together as one decision.

use crate::account::{Account, AccountKind, AccountStatus};
use crate::error::DomainError;
use crate::event::{
    AccountClosed, AccountEvent, AccountFrozen, AccountOpened, AccountUnfrozen, MoneyDeposited,
    MoneyWithdrawn, TransferCredited, TransferDebited,
};
use crate::identity::{AccountId, Description, FreezeReason, OwnerName, TransferId};
use crate::money::{Amount, Balance, Currency, OverdraftLimit};

/// A command addressed to one account. The account id travels beside it, as the stream it targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountCommand {
    Open {
        owner: OwnerName,
        kind: AccountKind,
        currency: Currency,
        overdraft_limit: OverdraftLimit,
    },
    Deposit {
        amount: Amount,
        description: Option<Description>,
    },
    Withdraw {
        amount: Amount,
        description: Option<Description>,
    },
    Freeze {
        reason: FreezeReason,
    },
    Unfreeze,
    /// Only at a zero balance.
    Close,
}

/// Moves `amount` from `source` to `target`, both in the same currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferCommand {
    pub transfer_id: TransferId,
    pub source: AccountId,
    pub target: AccountId,
    pub amount: Amount,
    pub description: Option<Description>,
}

/// The two events of an accepted transfer, one for each stream. They are appended together or not at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferDecision {
    pub debit: AccountEvent,
    pub credit: AccountEvent,
}

/// Decides a single-account command against the account's current state (`None`: never opened).
pub fn decide(
    account_id: &AccountId,
    state: Option<&Account>,
    command: &AccountCommand,
) -> Result<Vec<AccountEvent>, DomainError> {
    let Some(account) = state else {
        return match command {
            AccountCommand::Open {
                owner,
                kind,
                currency,
                overdraft_limit,
            } => open(owner, *kind, *currency, *overdraft_limit),
            _ => Err(DomainError::AccountNotFound {
                account_id: account_id.clone(),
            }),
        };
    };
    let event = match command {
        AccountCommand::Open { .. } => {
            return Err(DomainError::AccountAlreadyExists {
                account_id: account_id.clone(),
            });
        }
        AccountCommand::Deposit {
            amount,
            description,
        } => {
            ensure_open(account)?;
            let amount = in_account_currency(account, *amount)?;
            AccountEvent::MoneyDeposited(MoneyDeposited {
                amount,
                balance_after: credited(account, amount)?,
                description: description.clone(),
            })
        }
        AccountCommand::Withdraw {
            amount,
            description,
        } => {
            ensure_open(account)?;
            let amount = in_account_currency(account, *amount)?;
            AccountEvent::MoneyWithdrawn(MoneyWithdrawn {
                amount,
                balance_after: debited(account, amount)?,
                description: description.clone(),
            })
        }
        AccountCommand::Freeze { reason } => {
            match account.status() {
                AccountStatus::Open => {}
                AccountStatus::Frozen => {
                    return Err(DomainError::AccountAlreadyFrozen {
                        account_id: account.id().clone(),
                    });
                }
                AccountStatus::Closed => return Err(closed(account)),
            }
            AccountEvent::AccountFrozen(AccountFrozen {
                reason: reason.clone(),
            })
        }
        AccountCommand::Unfreeze => {
            match account.status() {
                AccountStatus::Frozen => {}
                AccountStatus::Open => {
                    return Err(DomainError::AccountNotFrozen {
                        account_id: account.id().clone(),
                    });
                }
                AccountStatus::Closed => return Err(closed(account)),
            }
            AccountEvent::AccountUnfrozen(AccountUnfrozen {})
        }
        AccountCommand::Close => {
            // A frozen account stays open for its investigation: it has to be unfrozen before closing.
            ensure_open(account)?;
            if !account.balance().is_zero() {
                return Err(DomainError::NonZeroBalance {
                    account_id: account.id().clone(),
                    balance: account.balance(),
                });
            }
            AccountEvent::AccountClosed(AccountClosed {})
        }
    };
    Ok(vec![event])
}

/// Decides a transfer against both accounts' states. The checks run in a fixed order so that the same
/// request always meets the same error: identity, existence, status, currency, amount, funds.
pub fn decide_transfer(
    source: Option<&Account>,
    target: Option<&Account>,
    command: &TransferCommand,
) -> Result<TransferDecision, DomainError> {
    if command.source == command.target {
        return Err(DomainError::SameAccountTransfer {
            account_id: command.source.clone(),
        });
    }
    let source = source.ok_or_else(|| DomainError::AccountNotFound {
        account_id: command.source.clone(),
    })?;
    let target = target.ok_or_else(|| DomainError::AccountNotFound {
        account_id: command.target.clone(),
    })?;
    ensure_open(source)?;
    ensure_open(target)?;
    if source.currency() != target.currency() {
        return Err(DomainError::CurrencyMismatch {
            source_currency: source.currency(),
            target_currency: target.currency(),
        });
    }
    let amount = in_account_currency(source, command.amount)?;
    let source_balance_after = debited(source, amount)?;
    let target_balance_after = credited(target, amount)?;
    Ok(TransferDecision {
        debit: AccountEvent::TransferDebited(TransferDebited {
            transfer_id: command.transfer_id.clone(),
            amount,
            balance_after: source_balance_after,
            target_account_id: target.id().clone(),
            description: command.description.clone(),
        }),
        credit: AccountEvent::TransferCredited(TransferCredited {
            transfer_id: command.transfer_id.clone(),
            amount,
            balance_after: target_balance_after,
            source_account_id: source.id().clone(),
            description: command.description.clone(),
        }),
    })
}

fn open(
    owner: &OwnerName,
    kind: AccountKind,
    currency: Currency,
    overdraft_limit: OverdraftLimit,
) -> Result<Vec<AccountEvent>, DomainError> {
    let overdraft_limit = overdraft_limit.in_currency(currency).ok_or_else(|| {
        DomainError::InvalidOverdraftLimit {
            limit: overdraft_limit.to_string(),
            currency,
            minor_units: currency.minor_units(),
        }
    })?;
    Ok(vec![AccountEvent::AccountOpened(AccountOpened {
        owner: owner.clone(),
        kind,
        currency,
        overdraft_limit,
    })])
}

fn closed(account: &Account) -> DomainError {
    DomainError::AccountClosed {
        account_id: account.id().clone(),
    }
}

/// Money moves only on open accounts: a frozen account neither pays nor receives.
fn ensure_open(account: &Account) -> Result<(), DomainError> {
    match account.status() {
        AccountStatus::Open => Ok(()),
        AccountStatus::Frozen => Err(DomainError::AccountFrozen {
            account_id: account.id().clone(),
        }),
        AccountStatus::Closed => Err(closed(account)),
    }
}

fn in_account_currency(account: &Account, amount: Amount) -> Result<Amount, DomainError> {
    let currency = account.currency();
    amount
        .in_currency(currency)
        .ok_or(DomainError::InvalidAmount {
            amount,
            currency,
            minor_units: currency.minor_units(),
        })
}

fn credited(account: &Account, amount: Amount) -> Result<Balance, DomainError> {
    account
        .balance()
        .plus(amount)
        .ok_or_else(|| DomainError::BalanceOutOfRange {
            account_id: account.id().clone(),
        })
}

/// The balance after taking `amount` out, if the overdraft limit allows it.
fn debited(account: &Account, amount: Amount) -> Result<Balance, DomainError> {
    let insufficient = || DomainError::InsufficientFunds {
        account_id: account.id().clone(),
        available: account.available(),
        requested: amount,
    };
    let after = account.balance().minus(amount).ok_or_else(insufficient)?;
    if after.within(account.overdraft_limit()) {
        Ok(after)
    } else {
        Err(insufficient())
    }
}
