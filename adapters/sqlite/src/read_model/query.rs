//! The `ReadModelQuery` port of `SqliteReadModel`: single-statement reads on the read pool, rows decoded
//! by the application's shared `read_model_rows`. No query adds anything up: each returns stored rows.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use ledger_application::ports::{
    AccountView, DailyBalanceView, ReadModelQuery, StoreError, TransactionView,
};
use ledger_application::read_model_rows::{account_view, daily_balance_view, transaction_view};
use ledger_domain::AccountId;

use super::{SqliteReadModel, days};
use crate::rows::{Columns, bound, limit};

/// The columns `transaction_view` reads; a macro so that `concat!` builds each query as a literal.
macro_rules! transaction_columns {
    () => {
        "sequence, event_id, entry_type, amount, balance_after, transfer_id, \
         counterparty_account_id, description, occurred_at"
    };
}

/// The last movement at or before an instant, found by one descent of the
/// `rm_account_transactions_by_time` index (account, time, sequence), whatever the account's history.
///
/// Within a stream time never runs backwards (every event store refuses an event recorded before its
/// predecessor), so the latest time at or before the instant, highest sequence first among equal
/// times, is the highest sequence at or before it. Stored timestamps are fixed-width UTC text, so `<=`
/// on text is `<=` on time, inclusive of the instant itself.
const LAST_TRANSACTION_AT_OR_BEFORE: &str = concat!(
    "SELECT ",
    transaction_columns!(),
    " FROM rm_account_transactions WHERE account_id = ?1 AND occurred_at <= ?2 \
      ORDER BY occurred_at DESC, sequence DESC LIMIT 1"
);

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
            " FROM rm_account_transactions WHERE account_id = ?1 AND sequence > ?2 \
              ORDER BY sequence LIMIT ?3"
        ))
        .bind(account_id.as_str())
        .bind(bound(after_sequence))
        .bind(limit(limit_to))
        .fetch_all(self.db.reader())
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
        let Some(at) = days::instant_bound(at) else {
            return Ok(None);
        };
        let row = sqlx::query(LAST_TRANSACTION_AT_OR_BEFORE)
            .bind(account_id.as_str())
            .bind(at)
            .fetch_optional(self.db.reader())
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
            .map(|row| daily_balance_view(&Columns(row)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    //! The as-of look-up on a long history: served by the index, and right at every instant.

    use chrono::TimeZone;
    use ledger_application::ports::ReadModelQuery;

    use super::*;
    use crate::SqliteDatabase;
    use crate::writer::execute_cached;

    const HISTORY: i64 = 10_000;

    fn instant(second: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap() + chrono::Duration::seconds(second)
    }

    /// An account with 10,000 movements, one per second (two per second from 5,000 on, so that
    /// equal instants occur), written in one transaction straight into the table.
    async fn long_history(db: &SqliteDatabase) {
        db.write_store(|connection| {
            for sequence in 1..=HISTORY {
                let second = if sequence > 5_000 {
                    5_000 + (sequence - 5_000) / 2
                } else {
                    sequence
                };
                execute_cached(
                    connection,
                    "INSERT INTO rm_account_transactions (account_id, sequence, event_id, \
                         entry_type, amount, balance_after, occurred_at) \
                         VALUES ('long', ?1, ?2, 'DEPOSIT', '1.00', ?3, ?4)",
                    rusqlite::params![
                        sequence,
                        uuid::Uuid::now_v7().to_string(),
                        format!("{sequence}.00"),
                        ledger_application::codec::format_timestamp(instant(second)),
                    ],
                )
                .map_err(StoreError::unavailable)?;
            }
            Ok(())
        })
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn the_balance_as_of_an_instant_is_one_index_search_on_a_long_history() {
        let dir = tempfile::tempdir().unwrap();
        let db = SqliteDatabase::open(&dir.path().join("ledger.db"))
            .await
            .unwrap();
        long_history(&db).await;

        let plan = sqlx::query(sqlx::AssertSqlSafe(format!(
            "EXPLAIN QUERY PLAN {LAST_TRANSACTION_AT_OR_BEFORE}"
        )))
        .bind("long")
        .bind("2026-03-01T01:00:00.000000Z")
        .fetch_all(db.reader())
        .await
        .unwrap()
        .iter()
        .map(|row| sqlx::Row::get::<String, _>(row, "detail"))
        .collect::<Vec<_>>()
        .join("; ");
        assert!(
            plan.contains("rm_account_transactions_by_time") && !plan.contains("TEMP B-TREE"),
            "the look-up must descend the time index, with no sort: {plan}"
        );

        let read_model = db.read_model();
        let account = AccountId::parse("long").unwrap();
        for (second, expected_sequence) in [(1, 1), (4_999, 4_999), (5_000, 5_001), (7_500, 10_000)]
        {
            let found = read_model
                .last_transaction_at_or_before(&account, instant(second))
                .await
                .unwrap()
                .expect("a movement");
            assert_eq!(found.sequence, expected_sequence, "as of second {second}");
            assert_eq!(
                found.balance_after.to_string(),
                format!("{expected_sequence}.00")
            );
        }
        let before_everything = read_model
            .last_transaction_at_or_before(&account, instant(0))
            .await
            .unwrap();
        assert!(before_everything.is_none());
    }
}
