//! The query service: reads the read model, reports how fresh it is, and can wait (bounded) until the
//! read model has caught up with a sequence the client just wrote.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use ledger_domain::{AccountId, Balance};

use crate::ports::{AccountView, DailyBalanceView, ReadModelQuery, StoreError, TransactionView};

/// The most transactions or daily balances one page returns.
pub const PAGE_SIZE_MAX: usize = 200;
/// The page size when the client names none.
pub const PAGE_SIZE_DEFAULT: usize = 50;
/// The longest date range one daily-balances query covers (a leap year).
pub const DAILY_BALANCE_DAYS_MAX: usize = 366;

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("account {account_id} does not exist")]
    AccountNotFound { account_id: AccountId },
    #[error("account {account_id} did not exist at {as_of}")]
    NotYetOpened {
        account_id: AccountId,
        as_of: DateTime<Utc>,
    },
    #[error(
        "the read model of account {account_id} is at sequence {last_sequence}, not yet at {min_sequence}"
    )]
    NotYetConsistent {
        account_id: AccountId,
        min_sequence: u64,
        last_sequence: u64,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How long a query may wait for the read model to reach a requested sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FreshnessWait {
    pub timeout: Duration,
    pub poll_interval: Duration,
}

impl Default for FreshnessWait {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            poll_interval: Duration::from_millis(10),
        }
    }
}

/// A page of movements and where the next page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionPage {
    pub items: Vec<TransactionView>,
    /// The sequence to pass as `after_sequence` for the next page; `None` on the last page.
    pub next_after_sequence: Option<u64>,
}

/// The balance of an account at an instant, with the sequence of the event that set it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceAsOf {
    pub account_id: AccountId,
    pub as_of: DateTime<Utc>,
    pub balance: Balance,
    pub sequence: u64,
}

pub struct QueryService {
    read_model: Arc<dyn ReadModelQuery>,
    wait: FreshnessWait,
}

impl std::fmt::Debug for QueryService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryService")
            .field("wait", &self.wait)
            .finish_non_exhaustive()
    }
}

impl QueryService {
    pub fn new(read_model: Arc<dyn ReadModelQuery>, wait: FreshnessWait) -> Self {
        Self { read_model, wait }
    }

    /// The account, after waiting (bounded) until its read model reached `min_sequence`, if given.
    pub async fn account(
        &self,
        account_id: &AccountId,
        min_sequence: Option<u64>,
    ) -> Result<AccountView, QueryError> {
        let deadline = tokio::time::Instant::now() + self.wait.timeout;
        loop {
            let view = self.read_model.account(account_id).await?;
            let last_sequence = view.as_ref().map_or(0, |v| v.last_sequence);
            match (view, min_sequence) {
                (Some(view), None) => return Ok(view),
                (Some(view), Some(min)) if last_sequence >= min => return Ok(view),
                (None, None) => {
                    return Err(QueryError::AccountNotFound {
                        account_id: account_id.clone(),
                    });
                }
                (_, Some(min_sequence)) => {
                    if tokio::time::Instant::now() >= deadline {
                        return Err(QueryError::NotYetConsistent {
                            account_id: account_id.clone(),
                            min_sequence,
                            last_sequence,
                        });
                    }
                    tokio::time::sleep(self.wait.poll_interval).await;
                }
            }
        }
    }

    /// Movements after `after_sequence`, in sequence order, one page of at most `limit`.
    pub async fn transactions(
        &self,
        account_id: &AccountId,
        after_sequence: u64,
        limit: usize,
        min_sequence: Option<u64>,
    ) -> Result<TransactionPage, QueryError> {
        self.account(account_id, min_sequence).await?;
        let limit = limit.clamp(1, PAGE_SIZE_MAX);
        // One extra row tells whether another page follows, without a count query.
        let mut items = self
            .read_model
            .transactions(account_id, after_sequence, limit + 1)
            .await?;
        let next_after_sequence = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|item| item.sequence)
        } else {
            None
        };
        Ok(TransactionPage {
            items,
            next_after_sequence,
        })
    }

    /// The balance at `as_of`: the `balance_after` of the last movement at or before it, zero if the
    /// account was open but had not moved money yet.
    pub async fn balance_as_of(
        &self,
        account_id: &AccountId,
        as_of: DateTime<Utc>,
        min_sequence: Option<u64>,
    ) -> Result<BalanceAsOf, QueryError> {
        let account = self.account(account_id, min_sequence).await?;
        if account.opened_at > as_of {
            return Err(QueryError::NotYetOpened {
                account_id: account_id.clone(),
                as_of,
            });
        }
        let last = self
            .read_model
            .last_transaction_at_or_before(account_id, as_of)
            .await?;
        let (balance, sequence) = last.map_or((Balance::zero(account.currency), 1), |t| {
            (t.balance_after, t.sequence)
        });
        Ok(BalanceAsOf {
            account_id: account_id.clone(),
            as_of,
            balance,
            sequence,
        })
    }

    /// Closing balances of the days in `from..=to` on which money moved; the caller bounds the range
    /// to [`DAILY_BALANCE_DAYS_MAX`] days, so no day of it is cut off.
    pub async fn daily_balances(
        &self,
        account_id: &AccountId,
        from: NaiveDate,
        to: NaiveDate,
        min_sequence: Option<u64>,
    ) -> Result<Vec<DailyBalanceView>, QueryError> {
        self.account(account_id, min_sequence).await?;
        Ok(self
            .read_model
            .daily_balances(account_id, from, to, DAILY_BALANCE_DAYS_MAX)
            .await?)
    }
}
