//! `PostgresReadModel::apply_batch`: many events in one transaction and five statements (openings,
//! account updates, transaction rows, daily balances, each one `UNNEST` of arrays; and the commit),
//! writing exactly the rows that applying the events one by one writes.
//!
//! The sequence rule is checked twice, both without a read beforehand: in the batch itself (each
//! account's updates must follow each other, an opening only first and at sequence 1), and by the
//! database, whose conditional writes (`ON CONFLICT DO NOTHING` for openings, `last_sequence =
//! expected` for updates) must touch one row per account. Anything short of that rolls back and
//! answers `false`, and the projector goes event by event, where `apply` says exactly why.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use ledger_application::ports::{ReadModelChange, ReadModelUpdate, StoreError};
use ledger_application::read_model_rows::{MovementRow, OpeningRow, opening_out_of_place};
use ledger_domain::FreezeReason;
use sqlx::postgres::{PgConnection, PgPool};

use crate::rows::storable;

const INSERT_OPENINGS: &str = "\
    INSERT INTO accounts (account_id, owner, kind, currency, status, balance, overdraft_limit, \
        frozen_reason, last_sequence, opened_at, updated_at) \
    SELECT u.account_id, u.owner, u.kind, u.currency, u.status, u.balance::numeric, \
        u.overdraft_limit::numeric, NULL, 1, u.opened_at, u.opened_at \
    FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
        $7::text[], $8::timestamptz[]) \
        AS u(account_id, owner, kind, currency, status, balance, overdraft_limit, opened_at) \
    ON CONFLICT (account_id) DO NOTHING";

/// An account's balance and status become those of its last movement and last status change in
/// the batch (either may be absent: the column keeps its value), as the updates one by one leave
/// them.
const UPDATE_ACCOUNTS: &str = "\
    UPDATE accounts AS a SET \
        balance = COALESCE(u.balance::numeric, a.balance), \
        status = COALESCE(u.status, a.status), \
        frozen_reason = CASE WHEN u.status IS NULL THEN a.frozen_reason ELSE u.frozen_reason END, \
        last_sequence = u.last_sequence, \
        updated_at = u.updated_at \
    FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::bigint[], \
        $7::timestamptz[]) \
        AS u(account_id, expected, balance, status, frozen_reason, last_sequence, updated_at) \
    WHERE a.account_id = u.account_id AND a.last_sequence = u.expected";

const INSERT_MOVEMENTS: &str = "\
    INSERT INTO account_transactions (account_id, sequence, event_id, entry_type, amount, \
        balance_after, transfer_id, counterparty_account_id, description, occurred_at) \
    SELECT u.account_id, u.sequence, u.event_id, u.entry_type, u.amount::numeric, \
        u.balance_after::numeric, u.transfer_id, u.counterparty_account_id, u.description, \
        u.occurred_at \
    FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], \
        $7::text[], $8::text[], $9::text[], $10::timestamptz[]) \
        AS u(account_id, sequence, event_id, entry_type, amount, balance_after, transfer_id, \
            counterparty_account_id, description, occurred_at)";

/// One row per account and day (the day's last movement in the batch): one statement may not
/// update a row twice.
const UPSERT_DAYS: &str = "\
    INSERT INTO daily_balances (account_id, day, closing_balance, last_sequence) \
    SELECT u.account_id, u.day, u.closing_balance::numeric, u.last_sequence \
    FROM UNNEST($1::text[], $2::date[], $3::text[], $4::bigint[]) \
        AS u(account_id, day, closing_balance, last_sequence) \
    ON CONFLICT (account_id, day) DO UPDATE SET \
        closing_balance = excluded.closing_balance, last_sequence = excluded.last_sequence";

/// PostgreSQL's `deadlock_detected` and `serialization_failure`: two writers of the same accounts
/// in different orders. Nothing of the batch stays, so it is a refusal, not an outage.
const CONTENDED: [&str; 2] = ["40P01", "40001"];

/// Applies `updates` all together or not at all; see the module documentation.
pub(super) async fn apply(pool: &PgPool, updates: &[ReadModelUpdate]) -> Result<bool, StoreError> {
    if updates.is_empty() {
        return Ok(true);
    }
    let Some(plan) = Plan::of(updates)? else {
        return Ok(false);
    };
    let mut transaction = pool.begin().await.map_err(StoreError::unavailable)?;
    let written = plan.write(&mut transaction).await;
    if let Ok(true) = written {
        return match transaction.commit().await {
            Ok(()) => Ok(true),
            Err(error) => refused_or(error),
        };
    }
    super::roll_back(transaction).await;
    match written {
        Ok(_) => Ok(false),
        Err(Failed::Store(error)) => Err(error),
        Err(Failed::Database(error)) => refused_or(error),
    }
}

/// A contended write is a refusal (rolled back); anything else, the read model is unavailable.
fn refused_or(error: sqlx::Error) -> Result<bool, StoreError> {
    let code = error
        .as_database_error()
        .and_then(sqlx::error::DatabaseError::code);
    if code.is_some_and(|code| CONTENDED.contains(&code.as_ref())) {
        tracing::debug!(%error, "read-model batch contended; refused");
        return Ok(false);
    }
    Err(StoreError::unavailable(error))
}

#[derive(Debug)]
enum Failed {
    Store(StoreError),
    Database(sqlx::Error),
}

impl From<StoreError> for Failed {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

/// The batch as columns, one vector per column of each statement.
#[derive(Debug, Default)]
struct Plan<'a> {
    openings: Openings<'a>,
    accounts: Accounts<'a>,
    movements: Movements<'a>,
    days: Days<'a>,
}

#[derive(Debug, Default)]
struct Openings<'a> {
    account_id: Vec<&'a str>,
    owner: Vec<&'a str>,
    kind: Vec<&'static str>,
    currency: Vec<&'a str>,
    status: Vec<&'static str>,
    balance: Vec<String>,
    overdraft_limit: Vec<String>,
    opened_at: Vec<DateTime<Utc>>,
}

#[derive(Debug, Default)]
struct Accounts<'a> {
    account_id: Vec<&'a str>,
    expected: Vec<i64>,
    balance: Vec<Option<String>>,
    status: Vec<Option<&'static str>>,
    frozen_reason: Vec<Option<&'a str>>,
    last_sequence: Vec<i64>,
    updated_at: Vec<DateTime<Utc>>,
}

#[derive(Debug, Default)]
struct Movements<'a> {
    account_id: Vec<&'a str>,
    sequence: Vec<i64>,
    event_id: Vec<String>,
    entry_type: Vec<&'static str>,
    amount: Vec<String>,
    balance_after: Vec<String>,
    transfer_id: Vec<Option<&'a str>>,
    counterparty_account_id: Vec<Option<&'a str>>,
    description: Vec<Option<&'a str>>,
    occurred_at: Vec<DateTime<Utc>>,
}

#[derive(Debug, Default)]
struct Days<'a> {
    account_id: Vec<&'a str>,
    day: Vec<NaiveDate>,
    closing_balance: Vec<String>,
    last_sequence: Vec<i64>,
}

/// Where one account of the batch is: the last sequence seen, and its row in `Accounts` once it
/// has an update beyond an opening.
#[derive(Debug, Clone, Copy)]
struct Run {
    last_sequence: u64,
    account_row: Option<usize>,
}

impl<'a> Plan<'a> {
    /// The columns of `updates`; `None` when the batch itself breaks the sequence rule (an
    /// account's updates not following each other, an opening other than an account's first).
    fn of(updates: &'a [ReadModelUpdate]) -> Result<Option<Self>, StoreError> {
        let mut plan = Self::default();
        let mut runs: HashMap<&str, Run> = HashMap::new();
        let mut days: HashMap<(&str, NaiveDate), usize> = HashMap::new();
        for update in updates {
            if opening_out_of_place(update) {
                return Ok(None);
            }
            let account_id = update.account_id.as_str();
            let run = match runs.get(account_id) {
                Some(run) if update.sequence != run.last_sequence + 1 => return Ok(None),
                Some(run) => Some(*run),
                None => None,
            };
            let mut run = run.unwrap_or(Run {
                last_sequence: update.sequence.saturating_sub(1),
                account_row: None,
            });
            if let ReadModelChange::Opened {
                owner,
                kind,
                currency,
                overdraft_limit,
            } = &update.change
            {
                // At sequence 1 (checked above) and so the account's first in the batch.
                plan.openings.push(
                    account_id,
                    &OpeningRow::new(owner, *kind, currency, overdraft_limit),
                    update.occurred_at,
                );
            } else {
                let row = match run.account_row {
                    Some(row) => row,
                    None => plan
                        .accounts
                        .push(account_id, storable(run.last_sequence, "sequence")?),
                };
                run.account_row = Some(row);
                plan.accounts.last_sequence[row] = storable(update.sequence, "sequence")?;
                plan.accounts.updated_at[row] = update.occurred_at;
                match &update.change {
                    ReadModelChange::Moved(movement) => {
                        let movement = MovementRow::of(&update.account_id, movement)?;
                        plan.accounts.balance[row] = Some(movement.balance_after.clone());
                        plan.days.set(&mut days, &movement);
                        plan.movements.push(movement);
                    }
                    ReadModelChange::StatusChanged {
                        status,
                        frozen_reason,
                    } => {
                        plan.accounts.status[row] = Some(status.as_str());
                        plan.accounts.frozen_reason[row] =
                            frozen_reason.as_ref().map(FreezeReason::as_str);
                    }
                    ReadModelChange::Opened { .. } => {}
                }
            }
            run.last_sequence = update.sequence;
            runs.insert(account_id, run);
        }
        Ok(Some(plan))
    }

    /// The statements, in the transaction. `Ok(false)`: a conditional write found an account not
    /// where the batch expects it (another projector moved it, or it is missing).
    async fn write(self, conn: &mut PgConnection) -> Result<bool, Failed> {
        let Self {
            openings,
            accounts,
            movements,
            days,
        } = self;
        let expected_openings = openings.account_id.len() as u64;
        if expected_openings > 0 {
            let inserted = sqlx::query(INSERT_OPENINGS)
                .bind(openings.account_id)
                .bind(openings.owner)
                .bind(openings.kind)
                .bind(openings.currency)
                .bind(openings.status)
                .bind(openings.balance)
                .bind(openings.overdraft_limit)
                .bind(openings.opened_at)
                .execute(&mut *conn)
                .await
                .map_err(Failed::Database)?;
            if inserted.rows_affected() != expected_openings {
                return Ok(false);
            }
        }
        let expected_accounts = accounts.account_id.len() as u64;
        if expected_accounts > 0 {
            let updated = sqlx::query(UPDATE_ACCOUNTS)
                .bind(accounts.account_id)
                .bind(accounts.expected)
                .bind(accounts.balance)
                .bind(accounts.status)
                .bind(accounts.frozen_reason)
                .bind(accounts.last_sequence)
                .bind(accounts.updated_at)
                .execute(&mut *conn)
                .await
                .map_err(Failed::Database)?;
            if updated.rows_affected() != expected_accounts {
                return Ok(false);
            }
        }
        if !movements.account_id.is_empty() {
            sqlx::query(INSERT_MOVEMENTS)
                .bind(movements.account_id)
                .bind(movements.sequence)
                .bind(movements.event_id)
                .bind(movements.entry_type)
                .bind(movements.amount)
                .bind(movements.balance_after)
                .bind(movements.transfer_id)
                .bind(movements.counterparty_account_id)
                .bind(movements.description)
                .bind(movements.occurred_at)
                .execute(&mut *conn)
                .await
                .map_err(|error| {
                    if error
                        .as_database_error()
                        .is_some_and(sqlx::error::DatabaseError::is_unique_violation)
                    {
                        // Every account was at the sequence before its first movement, yet a row
                        // beyond it is listed: the table was changed behind the projector's back.
                        Failed::Store(StoreError::corrupt(
                            "a transaction row of the batch already exists beyond its account's \
                             last_sequence",
                        ))
                    } else {
                        Failed::Database(error)
                    }
                })?;
            sqlx::query(UPSERT_DAYS)
                .bind(days.account_id)
                .bind(days.day)
                .bind(days.closing_balance)
                .bind(days.last_sequence)
                .execute(&mut *conn)
                .await
                .map_err(Failed::Database)?;
        }
        Ok(true)
    }
}

impl<'a> Openings<'a> {
    fn push(&mut self, account_id: &'a str, opening: &OpeningRow<'a>, at: DateTime<Utc>) {
        self.account_id.push(account_id);
        self.owner.push(opening.owner);
        self.kind.push(opening.kind);
        self.currency.push(opening.currency);
        self.status.push(opening.status);
        self.balance.push(opening.balance.clone());
        self.overdraft_limit.push(opening.overdraft_limit.clone());
        self.opened_at.push(at);
    }
}

impl<'a> Accounts<'a> {
    /// A new row for `account_id`, expected at `expected`; its values are set as updates come.
    fn push(&mut self, account_id: &'a str, expected: i64) -> usize {
        self.account_id.push(account_id);
        self.expected.push(expected);
        self.balance.push(None);
        self.status.push(None);
        self.frozen_reason.push(None);
        self.last_sequence.push(expected);
        self.updated_at.push(DateTime::<Utc>::MIN_UTC);
        self.account_id.len() - 1
    }
}

impl<'a> Movements<'a> {
    fn push(&mut self, movement: MovementRow<'a>) {
        self.account_id.push(movement.account_id);
        self.sequence.push(movement.sequence);
        self.event_id.push(movement.event_id);
        self.entry_type.push(movement.entry_type);
        self.amount.push(movement.amount);
        self.balance_after.push(movement.balance_after);
        self.transfer_id.push(movement.transfer_id);
        self.counterparty_account_id
            .push(movement.counterparty_account_id);
        self.description.push(movement.description);
        self.occurred_at.push(movement.occurred_at);
    }
}

impl<'a> Days<'a> {
    /// The day of `movement` closes at it: movements of an account come in sequence order, so the
    /// last one of a day wins, as the upserts one by one leave it.
    fn set(&mut self, rows: &mut HashMap<(&'a str, NaiveDate), usize>, movement: &MovementRow<'a>) {
        if let Some(&row) = rows.get(&(movement.account_id, movement.day)) {
            self.closing_balance[row].clone_from(&movement.balance_after);
            self.last_sequence[row] = movement.sequence;
            return;
        }
        rows.insert((movement.account_id, movement.day), self.day.len());
        self.account_id.push(movement.account_id);
        self.day.push(movement.day);
        self.closing_balance.push(movement.balance_after.clone());
        self.last_sequence.push(movement.sequence);
    }
}
