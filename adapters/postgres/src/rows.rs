//! Moving values across the PostgreSQL boundary: columns out of rows, a row as the application's
//! [`StoredRow`] (so that the read model's views are decoded by the code the SQLite read model
//! shares, `ledger_application::read_model_rows`), and bounds clamped into PostgreSQL's calendar.
//! Money is read as NUMERIC's exact text (`column::text`), instants as TIMESTAMPTZ, days as DATE.
//!
//! Whatever comes back malformed is `StoreError::Corrupt`: this adapter wrote every row, so a value it
//! cannot read means the table was changed behind its back.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use ledger_application::ports::StoreError;
pub(crate) use ledger_application::read_model_rows::{StoredRow, bound, limit, storable};
use sqlx::Row;
use sqlx::postgres::{PgRow, Postgres};

/// The value of column `name`.
pub(crate) fn column<T>(row: &PgRow, name: &str) -> Result<T, StoreError>
where
    T: for<'r> sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>,
{
    row.try_get(name)
        .map_err(|e| StoreError::corrupt(format!("column `{name}`: {e}")))
}

/// A sequence, position or count column: BIGINT, never negative.
pub(crate) fn unsigned(row: &PgRow, name: &str) -> Result<u64, StoreError> {
    Columns(row).unsigned(name)
}

/// A PostgreSQL row read as the application's [`StoredRow`].
pub(crate) struct Columns<'r>(pub(crate) &'r PgRow);

impl StoredRow for Columns<'_> {
    fn text_opt(&self, name: &str) -> Result<Option<String>, StoreError> {
        column(self.0, name)
    }

    fn integer_opt(&self, name: &str) -> Result<Option<i64>, StoreError> {
        column(self.0, name)
    }

    fn instant_opt(&self, name: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        column(self.0, name)
    }

    fn day(&self, name: &str) -> Result<NaiveDate, StoreError> {
        column(self.0, name)
    }
}

/// PostgreSQL's earliest DATE and TIMESTAMPTZ: 4714-11-24 BC, year -4713 in chrono's numbering.
/// Nothing earlier can be stored, and an earlier bound is refused by the server, so bounds are
/// clamped to it.
const EARLIEST_DAY: NaiveDate = match NaiveDate::from_ymd_opt(-4713, 11, 24) {
    Some(day) => day,
    None => panic!("4714-11-24 BC is a date"),
};

/// `date` as a bound on stored days: clamping to the earliest storable day selects the same rows.
/// (chrono's latest date lies far before PostgreSQL's.)
pub(crate) fn day_bound(date: NaiveDate) -> NaiveDate {
    date.max(EARLIEST_DAY)
}

/// `at` as an upper bound on stored instants; `None` if it precedes every instant that can be stored.
pub(crate) fn instant_bound(at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let earliest = EARLIEST_DAY.and_time(NaiveTime::MIN).and_utc();
    (at >= earliest).then_some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_before_postgres_time_are_clamped_or_empty() {
        assert_eq!(day_bound(NaiveDate::MIN), EARLIEST_DAY);
        let day = NaiveDate::from_ymd_opt(2026, 3, 9).unwrap();
        assert_eq!(day_bound(day), day);
        assert_eq!(instant_bound(DateTime::<Utc>::MIN_UTC), None);
        let now = day.and_time(NaiveTime::MIN).and_utc();
        assert_eq!(instant_bound(now), Some(now));
    }
}
