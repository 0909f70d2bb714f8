//! The read model's rows without their database: the values an update writes (money as its exact
//! decimal text, enums as their names, sequences as signed 64-bit integers), the views decoded from
//! a stored row through the domain's constructors, and the errors both sides call a broken store.
//! The SQLite and PostgreSQL read models share all of it, so that they store and answer alike;
//! each only says how to read one column of its own row type ([`StoredRow`]) and writes its SQL.
//!
//! Whatever comes back malformed is `StoreError::Corrupt`: the adapter wrote every row, so a value
//! it cannot read means the table was changed behind its back.

use std::fmt::Display;

use chrono::{DateTime, NaiveDate, Utc};
use ledger_domain::{
    AccountId, AccountKind, AccountStatus, Amount, Balance, Currency, Description, EntryType,
    FreezeReason, OverdraftLimit, OwnerName, TransferId,
};

use crate::envelope::EventId;
use crate::ports::{
    AccountView, DailyBalanceView, DeadLetter, DeadLetterId, ReadModelChange, ReadModelUpdate,
    StoreError, StoredDeadLetter, TransactionView,
};

/// One row as its adapter reads it: a column by name, NULL as `None`. The adapter decides how its
/// database keeps instants and days (text or native types); everything above is shared.
pub trait StoredRow {
    fn text_opt(&self, name: &str) -> Result<Option<String>, StoreError>;
    fn integer_opt(&self, name: &str) -> Result<Option<i64>, StoreError>;
    fn instant_opt(&self, name: &str) -> Result<Option<DateTime<Utc>>, StoreError>;
    fn day(&self, name: &str) -> Result<NaiveDate, StoreError>;

    fn text(&self, name: &str) -> Result<String, StoreError> {
        self.text_opt(name)?.ok_or_else(|| null(name))
    }

    fn instant(&self, name: &str) -> Result<DateTime<Utc>, StoreError> {
        self.instant_opt(name)?.ok_or_else(|| null(name))
    }

    /// A sequence, position or count column: a signed 64-bit integer, never negative.
    fn unsigned(&self, name: &str) -> Result<u64, StoreError> {
        self.unsigned_opt(name)?.ok_or_else(|| null(name))
    }

    /// Like [`StoredRow::unsigned`] for a nullable column.
    fn unsigned_opt(&self, name: &str) -> Result<Option<u64>, StoreError> {
        self.integer_opt(name)?
            .map(|value| {
                u64::try_from(value).map_err(|_| {
                    StoreError::corrupt(format!("column `{name}` = {value} is negative"))
                })
            })
            .transpose()
    }

    /// Text column `name` parsed by a domain constructor such as `Balance::parse`.
    fn parsed<T, E: Display>(
        &self,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<T, StoreError>
    where
        Self: Sized,
    {
        let text = self.text(name)?;
        parse(&text).map_err(|e| malformed(name, &text, e))
    }

    /// Like [`StoredRow::parsed`] for a nullable column.
    fn parsed_opt<T, E: Display>(
        &self,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<Option<T>, StoreError>
    where
        Self: Sized,
    {
        self.text_opt(name)?
            .map(|text| parse(&text).map_err(|e| malformed(name, &text, e)))
            .transpose()
    }
}

fn null(name: &str) -> StoreError {
    StoreError::corrupt(format!("column `{name}` is NULL"))
}

fn malformed(name: &str, text: &str, error: impl Display) -> StoreError {
    StoreError::corrupt(format!("column `{name}` = `{text}`: {error}"))
}

pub fn account_view(row: &impl StoredRow) -> Result<AccountView, StoreError> {
    Ok(AccountView {
        account_id: row.parsed("account_id", AccountId::parse)?,
        owner: row.parsed("owner", OwnerName::parse)?,
        kind: row.parsed("kind", AccountKind::parse)?,
        currency: row.parsed("currency", Currency::parse)?,
        status: row.parsed("status", AccountStatus::parse)?,
        balance: row.parsed("balance", Balance::parse)?,
        overdraft_limit: row.parsed("overdraft_limit", OverdraftLimit::parse)?,
        frozen_reason: row.parsed_opt("frozen_reason", FreezeReason::parse)?,
        last_sequence: row.unsigned("last_sequence")?,
        opened_at: row.instant("opened_at")?,
        updated_at: row.instant("updated_at")?,
    })
}

pub fn transaction_view(row: &impl StoredRow) -> Result<TransactionView, StoreError> {
    Ok(TransactionView {
        sequence: row.unsigned("sequence")?,
        event_id: row.parsed("event_id", parse_event_id)?,
        entry_type: row.parsed("entry_type", |text| {
            EntryType::parse(text).ok_or("not an entry type")
        })?,
        amount: row.parsed("amount", Amount::parse)?,
        balance_after: row.parsed("balance_after", Balance::parse)?,
        transfer_id: row.parsed_opt("transfer_id", TransferId::parse)?,
        counterparty_account_id: row.parsed_opt("counterparty_account_id", AccountId::parse)?,
        description: row.parsed_opt("description", Description::parse)?,
        occurred_at: row.instant("occurred_at")?,
    })
}

/// A row of `day`, `closing_balance`, `last_sequence`.
pub fn daily_balance_view(row: &impl StoredRow) -> Result<DailyBalanceView, StoreError> {
    Ok(DailyBalanceView {
        date: row.day("day")?,
        closing_balance: row.parsed("closing_balance", Balance::parse)?,
        last_sequence: row.unsigned("last_sequence")?,
    })
}

/// A row of the dead-letter columns (`letter_id`, `account_id`, `sequence`, `event_id`,
/// `event_type`, `raw`, `reason`, `waiting_behind`, `recorded_at`, `resolved_at`).
pub fn stored_dead_letter(row: &impl StoredRow) -> Result<StoredDeadLetter, StoreError> {
    Ok(StoredDeadLetter {
        id: DeadLetterId::new(row.unsigned("letter_id")?),
        letter: DeadLetter {
            account_id: row.parsed_opt("account_id", AccountId::parse)?,
            sequence: row.unsigned_opt("sequence")?,
            event_id: row.parsed_opt("event_id", parse_event_id)?,
            event_type: row.text_opt("event_type")?,
            raw: row.text("raw")?,
            reason: row.text("reason")?,
            waiting_behind: row.unsigned_opt("waiting_behind")?.map(DeadLetterId::new),
            recorded_at: row.instant("recorded_at")?,
        },
        resolved_at: row.instant_opt("resolved_at")?,
    })
}

fn parse_event_id(text: &str) -> Result<EventId, &'static str> {
    EventId::parse(text).ok_or("not a UUID")
}

/// A sequence or position to store. Above `i64::MAX` it cannot be stored; no stream or feed gets
/// anywhere near it, so such a value is a broken invariant rather than a request to refuse.
pub fn storable(value: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| {
        StoreError::corrupt(format!(
            "{what} {value} exceeds the 64-bit signed integers it is stored as"
        ))
    })
}

/// A bound to filter on ("above `value`"). Nothing stored exceeds `i64::MAX`, so a larger bound
/// means the same as `i64::MAX`: nothing above it.
pub fn bound(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A `LIMIT`: saturates instead of wrapping into a negative one (which SQLite reads as "no limit"
/// and PostgreSQL refuses).
pub fn limit(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// An opening is always an account's first event: at any other sequence it cannot be the next one,
/// and the adapter answers `Stale` without a write.
pub fn opening_out_of_place(update: &ReadModelUpdate) -> bool {
    matches!(update.change, ReadModelChange::Opened { .. }) && update.sequence != 1
}

/// A conditional update matched no row and the account has none: a first event that is not an
/// opening, a stream the ledger cannot have written.
pub fn no_account_row(update: &ReadModelUpdate) -> StoreError {
    StoreError::corrupt(format!(
        "account {}: event 1 is not an opening, so there is no account row to update",
        update.account_id
    ))
}

/// The account was at `sequence - 1`, yet a movement at `sequence` is already listed.
pub fn movement_row_exists(account_id: &str, sequence: i64) -> StoreError {
    StoreError::corrupt(format!(
        "account {account_id}: a transaction row at sequence {sequence} already exists beyond the \
         account's last_sequence"
    ))
}

/// The account row of an opening, as every read model writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpeningRow<'a> {
    pub owner: &'a str,
    pub kind: &'static str,
    pub currency: &'a str,
    pub status: &'static str,
    /// Zero in the currency's scale (`0.00`, `0`, `0.000`).
    pub balance: String,
    pub overdraft_limit: String,
}

impl<'a> OpeningRow<'a> {
    pub fn new(
        owner: &'a OwnerName,
        kind: AccountKind,
        currency: &'a Currency,
        overdraft_limit: &OverdraftLimit,
    ) -> Self {
        Self {
            owner: owner.as_str(),
            kind: kind.as_str(),
            currency: currency.code(),
            status: AccountStatus::Open.as_str(),
            balance: Balance::zero(*currency).to_string(),
            overdraft_limit: overdraft_limit.to_string(),
        }
    }
}

/// The transaction row of a money movement, and the day whose closing balance it sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovementRow<'a> {
    pub account_id: &'a str,
    pub sequence: i64,
    pub event_id: String,
    pub entry_type: &'static str,
    pub amount: String,
    pub balance_after: String,
    pub transfer_id: Option<&'a str>,
    pub counterparty_account_id: Option<&'a str>,
    pub description: Option<&'a str>,
    pub occurred_at: DateTime<Utc>,
    /// The UTC day of `occurred_at`: movements apply in sequence order, so the latest one of a day
    /// is its closing balance.
    pub day: NaiveDate,
}

impl<'a> MovementRow<'a> {
    pub fn of(
        account_id: &'a AccountId,
        movement: &'a TransactionView,
    ) -> Result<Self, StoreError> {
        Ok(Self {
            account_id: account_id.as_str(),
            sequence: storable(movement.sequence, "sequence")?,
            event_id: movement.event_id.to_string(),
            entry_type: movement.entry_type.as_str(),
            amount: movement.amount.to_string(),
            balance_after: movement.balance_after.to_string(),
            transfer_id: movement.transfer_id.as_ref().map(TransferId::as_str),
            counterparty_account_id: movement
                .counterparty_account_id
                .as_ref()
                .map(AccountId::as_str),
            description: movement.description.as_ref().map(Description::as_str),
            occurred_at: movement.occurred_at,
            day: movement.occurred_at.date_naive(),
        })
    }
}

/// A dead letter's row: its deduplication key and its fields as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterRow<'a> {
    pub deduplication_key: String,
    pub account_id: Option<&'a str>,
    pub sequence: Option<i64>,
    pub event_id: Option<String>,
    pub event_type: Option<&'a str>,
    pub raw: &'a str,
    pub reason: &'a str,
    pub waiting_behind: Option<i64>,
    pub recorded_at: DateTime<Utc>,
}

impl<'a> DeadLetterRow<'a> {
    pub fn of(letter: &'a DeadLetter) -> Result<Self, StoreError> {
        Ok(Self {
            deduplication_key: letter.deduplication_key(),
            account_id: letter.account_id.as_ref().map(AccountId::as_str),
            sequence: letter
                .sequence
                .map(|sequence| storable(sequence, "sequence"))
                .transpose()?,
            event_id: letter.event_id.map(|id| id.to_string()),
            event_type: letter.event_type.as_deref(),
            raw: &letter.raw,
            reason: &letter.reason,
            waiting_behind: letter
                .waiting_behind
                .map(|id| storable(id.get(), "dead letter id"))
                .transpose()?,
            recorded_at: letter.recorded_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// A row of text and integer columns, as a test writes it.
    #[derive(Default)]
    struct Row {
        text: HashMap<&'static str, Option<String>>,
        integers: HashMap<&'static str, Option<i64>>,
    }

    impl StoredRow for Row {
        fn text_opt(&self, name: &str) -> Result<Option<String>, StoreError> {
            self.text
                .get(name)
                .cloned()
                .ok_or_else(|| StoreError::corrupt(format!("no column `{name}`")))
        }

        fn integer_opt(&self, name: &str) -> Result<Option<i64>, StoreError> {
            self.integers
                .get(name)
                .copied()
                .ok_or_else(|| StoreError::corrupt(format!("no column `{name}`")))
        }

        fn instant_opt(&self, name: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
            self.text_opt(name)?
                .map(|text| crate::codec::parse_timestamp(&text))
                .transpose()
        }

        fn day(&self, name: &str) -> Result<NaiveDate, StoreError> {
            self.parsed(name, |text| NaiveDate::parse_from_str(text, "%Y-%m-%d"))
        }
    }

    #[test]
    fn bounds_and_limits_saturate_instead_of_wrapping() {
        assert_eq!(bound(7), 7);
        assert_eq!(bound(u64::MAX), i64::MAX);
        assert_eq!(limit(usize::MAX), i64::MAX);
        assert_eq!(limit(0), 0);
    }

    #[test]
    fn values_beyond_signed_64_bits_are_refused() {
        assert_eq!(storable(42, "sequence").expect("storable"), 42);
        assert!(matches!(
            storable(u64::MAX, "sequence"),
            Err(StoreError::Corrupt { .. })
        ));
    }

    #[test]
    fn malformed_negative_and_null_columns_are_corrupt() {
        let mut row = Row::default();
        row.text.insert("day", Some("2026-03-09".to_owned()));
        row.text.insert("closing_balance", Some("12,50".to_owned()));
        row.integers.insert("last_sequence", Some(3));
        let error = daily_balance_view(&row).expect_err("a comma is no decimal point");
        assert!(error.to_string().contains("closing_balance"), "{error}");

        row.text.insert("closing_balance", Some("12.50".to_owned()));
        row.integers.insert("last_sequence", Some(-1));
        let error = daily_balance_view(&row).expect_err("negative");
        assert!(error.to_string().contains("is negative"), "{error}");

        row.integers.insert("last_sequence", None);
        let error = daily_balance_view(&row).expect_err("NULL");
        assert!(error.to_string().contains("is NULL"), "{error}");

        row.integers.insert("last_sequence", Some(3));
        let day = daily_balance_view(&row).expect("a whole row");
        assert_eq!(day.closing_balance.to_string(), "12.50");
        assert_eq!(day.last_sequence, 3);
    }
}
