//! The `ReadModelQuery` port of `PostgresReadModel`: single-statement reads, rows decoded by the
//! application's shared `read_model_rows` (money as NUMERIC's exact text: see `mod.rs`). No query adds anything up: each returns stored rows.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use ledger_application::ports::{
    AccountView, DailyBalanceView, ReadModelQuery, StoreError, TransactionView,
};
use ledger_application::read_model_rows::{account_view, daily_balance_view, transaction_view};
use ledger_domain::AccountId;

use super::PostgresReadModel;
use crate::rows::{Columns, bound, day_bound, instant_bound, limit};

/// The columns `transaction_view` reads; a macro so that `concat!` builds each query as a literal.
macro_rules! transaction_columns {
    () => {
        "sequence, event_id, entry_type, amount::text AS amount, \
         balance_after::text AS balance_after, transfer_id, \
         counterparty_account_id, description, occurred_at"
    };
}

/// The last movement at or before an instant, found by one descent of the
/// `account_transactions_by_time` index (account, time DESC, sequence DESC), whatever the history.
///
/// Within a stream time never runs backwards (every event store refuses an event recorded before its
/// predecessor), so the latest time at or before the instant, highest sequence first among equal
/// times, is the highest sequence at or before it. Public so that a test can check its plan.
pub const LAST_TRANSACTION_AT_OR_BEFORE: &str = concat!(
    "SELECT ",
    transaction_columns!(),
    " FROM account_transactions WHERE account_id = $1 AND occurred_at <= $2 \
      ORDER BY occurred_at DESC, sequence DESC LIMIT 1"
);

#[async_trait]
impl ReadModelQuery for PostgresReadModel {
    async fn account(&self, account_id: &AccountId) -> Result<Option<AccountView>, StoreError> {
        let row = sqlx::query(
            "SELECT account_id, owner, kind, currency, status, balance::text AS balance, \
             overdraft_limit::text AS overdraft_limit, \
             frozen_reason, last_sequence, opened_at, updated_at \
             FROM accounts WHERE account_id = $1",
        )
        .bind(account_id.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::unavailable)?;
        row.map(|row| account_view(&Columns(&row))).transpose()
    }

    async fn transactions(
        &self,
        account_id: &AccountId,
        after_sequence: u64,
        limit_to: usize,
    ) -> Result<Vec<TransactionView>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            transaction_columns!(),
            " FROM account_transactions WHERE account_id = $1 AND sequence > $2 \
              ORDER BY sequence LIMIT $3"
        ))
        .bind(account_id.as_str())
        .bind(bound(after_sequence))
        .bind(limit(limit_to))
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::unavailable)?;
        rows.iter()
            .map(|row| transaction_view(&Columns(row)))
            .collect()
    }

    async fn last_transaction_at_or_before(
        &self,
        account_id: &AccountId,
        at: DateTime<Utc>,
    ) -> Result<Option<TransactionView>, StoreError> {
        let Some(at) = instant_bound(at) else {
            return Ok(None);
        };
        let row = sqlx::query(LAST_TRANSACTION_AT_OR_BEFORE)
            .bind(account_id.as_str())
            .bind(at)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::unavailable)?;
        row.map(|row| transaction_view(&Columns(&row))).transpose()
    }

    async fn daily_balances(
        &self,
        account_id: &AccountId,
        from: NaiveDate,
        to: NaiveDate,
        limit_to: usize,
    ) -> Result<Vec<DailyBalanceView>, StoreError> {
        if from > to {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(
            "SELECT day, closing_balance::text AS closing_balance, last_sequence FROM daily_balances \
             WHERE account_id = $1 AND day >= $2 AND day <= $3 ORDER BY day LIMIT $4",
        )
        .bind(account_id.as_str())
        .bind(day_bound(from))
        .bind(day_bound(to))
        .bind(limit(limit_to))
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::unavailable)?;
        rows.iter()
            .map(|row| daily_balance_view(&Columns(row)))
            .collect()
    }
}
