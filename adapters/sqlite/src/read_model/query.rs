//! The `ReadModelQuery` port of `SqliteReadModel`: single-statement reads on the read pool, rows parsed
//! back through the domain's constructors. No query adds anything up: each returns stored rows.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use ledger_application::EventId;
use ledger_application::ports::{
    AccountView, DailyBalanceView, ReadModelQuery, StoreError, TransactionView,
};
use ledger_domain::{
    AccountId, AccountKind, AccountStatus, Amount, Balance, Currency, Description, EntryType,
    FreezeReason, OverdraftLimit, OwnerName, TransferId,
};
use sqlx::sqlite::SqliteRow;

use super::{SqliteReadModel, days};
use crate::rows::{bound, limit, parsed, parsed_opt, timestamp, unsigned};

/// The columns `transaction_view` reads; a macro so that `concat!` builds each query as a literal.
macro_rules! transaction_columns {
    () => {
        "sequence, event_id, entry_type, amount, balance_after, transfer_id, \
         counterparty_account_id, description, occurred_at"
    };
}

#[async_trait]
impl ReadModelQuery for SqliteReadModel {
    async fn account(&self, account_id: &AccountId) -> Result<Option<AccountView>, StoreError> {
        let row = sqlx::query(
            "SELECT account_id, owner, kind, currency, status, balance, overdraft_limit, \
             frozen_reason, last_sequence, opened_at, updated_at \
             FROM rm_accounts WHERE account_id = ?1",
        )
        .bind(account_id.as_str())
        .fetch_optional(self.db.reader())
        .await
        .map_err(StoreError::unavailable)?;
        row.as_ref().map(account_view).transpose()
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
            " FROM rm_account_transactions WHERE account_id = ?1 AND sequence > ?2 \
              ORDER BY sequence LIMIT ?3"
        ))
        .bind(account_id.as_str())
        .bind(bound(after_sequence))
        .bind(limit(limit_to))
        .fetch_all(self.db.reader())
        .await
        .map_err(StoreError::unavailable)?;
        rows.iter().map(transaction_view).collect()
    }

    async fn last_transaction_at_or_before(
        &self,
        account_id: &AccountId,
        at: DateTime<Utc>,
    ) -> Result<Option<TransactionView>, StoreError> {
        let Some(at) = days::instant_bound(at) else {
            return Ok(None);
        };
        // The highest sequence among movements at or before `at`: stored timestamps are fixed-width
        // UTC text, so `<=` on text is `<=` on time, inclusive of the instant itself.
        let row = sqlx::query(concat!(
            "SELECT ",
            transaction_columns!(),
            " FROM rm_account_transactions WHERE account_id = ?1 AND occurred_at <= ?2 \
              ORDER BY sequence DESC LIMIT 1"
        ))
        .bind(account_id.as_str())
        .bind(at)
        .fetch_optional(self.db.reader())
        .await
        .map_err(StoreError::unavailable)?;
        row.as_ref().map(transaction_view).transpose()
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
            "SELECT day, closing_balance, last_sequence FROM rm_daily_balances \
             WHERE account_id = ?1 AND day >= ?2 AND day <= ?3 ORDER BY day LIMIT ?4",
        )
        .bind(account_id.as_str())
        .bind(days::bound(from))
        .bind(days::bound(to))
        .bind(limit(limit_to))
        .fetch_all(self.db.reader())
        .await
        .map_err(StoreError::unavailable)?;
        rows.iter()
            .map(|row| {
                Ok(DailyBalanceView {
                    date: parsed(row, "day", days::parse)?,
                    closing_balance: parsed(row, "closing_balance", Balance::parse)?,
                    last_sequence: unsigned(row, "last_sequence")?,
                })
            })
            .collect()
    }
}

fn account_view(row: &SqliteRow) -> Result<AccountView, StoreError> {
    Ok(AccountView {
        account_id: parsed(row, "account_id", AccountId::parse)?,
        owner: parsed(row, "owner", OwnerName::parse)?,
        kind: parsed(row, "kind", AccountKind::parse)?,
        currency: parsed(row, "currency", Currency::parse)?,
        status: parsed(row, "status", AccountStatus::parse)?,
        balance: parsed(row, "balance", Balance::parse)?,
        overdraft_limit: parsed(row, "overdraft_limit", OverdraftLimit::parse)?,
        frozen_reason: parsed_opt(row, "frozen_reason", FreezeReason::parse)?,
        last_sequence: unsigned(row, "last_sequence")?,
        opened_at: timestamp(row, "opened_at")?,
        updated_at: timestamp(row, "updated_at")?,
    })
}

fn transaction_view(row: &SqliteRow) -> Result<TransactionView, StoreError> {
    Ok(TransactionView {
        sequence: unsigned(row, "sequence")?,
        event_id: parsed(row, "event_id", |text| {
            EventId::parse(text).ok_or("not a UUID")
        })?,
        entry_type: parsed(row, "entry_type", |text| {
            EntryType::parse(text).ok_or("not an entry type")
        })?,
        amount: parsed(row, "amount", Amount::parse)?,
        balance_after: parsed(row, "balance_after", Balance::parse)?,
        transfer_id: parsed_opt(row, "transfer_id", TransferId::parse)?,
        counterparty_account_id: parsed_opt(row, "counterparty_account_id", AccountId::parse)?,
        description: parsed_opt(row, "description", Description::parse)?,
        occurred_at: timestamp(row, "occurred_at")?,
    })
}
