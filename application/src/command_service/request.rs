//! `CommandRequest`: a command as the client asked for it, its canonical fingerprint, and its
//! resolution into the domain's commands with any generated ids fixed once.

use ledger_domain::{
    AccountCommand, AccountId, AccountKind, Amount, Currency, Description, FreezeReason,
    OverdraftLimit, OwnerName, TransferCommand,
};
use serde::Serialize;

use crate::idempotency::RequestFingerprint;
use crate::ports::IdSource;

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
    /// The command's type as telemetry names it (`ledger.command.type`): the `command` tag of its
    /// JSON form.
    pub fn command_type(&self) -> &'static str {
        match self {
            Self::OpenAccount { .. } => "open_account",
            Self::Deposit { .. } => "deposit",
            Self::Withdraw { .. } => "withdraw",
            Self::Transfer { .. } => "transfer",
            Self::Freeze { .. } => "freeze",
            Self::Unfreeze { .. } => "unfreeze",
            Self::Close { .. } => "close",
        }
    }

    /// The domain command this request asks for, with any ids it generates drawn from `ids` once, so
    /// that every retry of the attempt writes the same ones.
    pub(super) fn resolve(&self, ids: &dyn IdSource) -> Resolved {
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

    /// The SHA-256 of the request's canonical JSON: two spellings of one amount (`"12.5"`,
    /// `"12.50"`) are one request.
    pub fn fingerprint(&self) -> RequestFingerprint {
        let canonical =
            serde_json::to_vec(&self.canonical()).expect("a command request always serializes");
        RequestFingerprint::of(&canonical)
    }

    /// The same request with every decimal in its canonical form.
    fn canonical(&self) -> Self {
        let mut canonical = self.clone();
        match &mut canonical {
            Self::OpenAccount {
                overdraft_limit, ..
            } => *overdraft_limit = overdraft_limit.map(OverdraftLimit::normalized),
            Self::Deposit { amount, .. }
            | Self::Withdraw { amount, .. }
            | Self::Transfer { amount, .. } => *amount = amount.normalized(),
            Self::Freeze { .. } | Self::Unfreeze { .. } | Self::Close { .. } => {}
        }
        canonical
    }
}

/// A request resolved into the domain's commands, its generated ids fixed.
pub(super) enum Resolved {
    Single {
        account_id: AccountId,
        command: AccountCommand,
    },
    Transfer(TransferCommand),
}

impl Resolved {
    /// The accounts whose streams the command appends to.
    pub(super) fn accounts(&self) -> Vec<&AccountId> {
        match self {
            Self::Single { account_id, .. } => vec![account_id],
            Self::Transfer(transfer) => vec![&transfer.source, &transfer.target],
        }
    }
}
