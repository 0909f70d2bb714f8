//! Moving values across the PostgreSQL boundary: columns out of rows, integers in and out of BIGINT,
//! text (NUMERIC's included) back through the domain's own constructors.
//!
//! Whatever comes back malformed is `StoreError::Corrupt`: this adapter wrote every row, so a value it
//! cannot read means the table was changed behind its back.

use std::fmt::Display;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use ledger_application::ports::StoreError;
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

/// Text column `name` parsed by a domain constructor such as `AccountId::parse`.
pub(crate) fn parsed<T, E: Display>(
    row: &PgRow,
    name: &str,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<T, StoreError> {
    let text: String = column(row, name)?;
    parse(&text).map_err(|e| StoreError::corrupt(format!("column `{name}` = `{text}`: {e}")))
}

/// Like [`parsed`] for a nullable column.
pub(crate) fn parsed_opt<T, E: Display>(
    row: &PgRow,
    name: &str,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<Option<T>, StoreError> {
    let text: Option<String> = column(row, name)?;
    text.map(|text| {
        parse(&text).map_err(|e| StoreError::corrupt(format!("column `{name}` = `{text}`: {e}")))
    })
    .transpose()
}

/// A sequence, position or count column: BIGINT, never negative.
pub(crate) fn unsigned(row: &PgRow, name: &str) -> Result<u64, StoreError> {
    let value: i64 = column(row, name)?;
    u64::try_from(value)
        .map_err(|_| StoreError::corrupt(format!("column `{name}` = {value} is negative")))
}

/// Like [`unsigned`] for a nullable column.
pub(crate) fn unsigned_opt(row: &PgRow, name: &str) -> Result<Option<u64>, StoreError> {
    let value: Option<i64> = column(row, name)?;
    value
        .map(|value| {
            u64::try_from(value)
                .map_err(|_| StoreError::corrupt(format!("column `{name}` = {value} is negative")))
        })
        .transpose()
}

/// A sequence or position to store. Above `i64::MAX` it cannot be stored; no stream or feed gets
/// anywhere near it, so such a value is a broken invariant rather than a request to refuse.
pub(crate) fn storable(value: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| {
        StoreError::corrupt(format!(
            "{what} {value} exceeds PostgreSQL's 64-bit signed integers"
        ))
    })
}

/// A bound to filter on. Nothing stored exceeds `i64::MAX`, so a larger bound means the same as
/// `i64::MAX`.
pub(crate) fn bound(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A `LIMIT`: saturates instead of wrapping into a negative (refused) limit.
pub(crate) fn limit(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
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
    fn bounds_and_limits_saturate_instead_of_wrapping() {
        assert_eq!(bound(7), 7);
        assert_eq!(bound(u64::MAX), i64::MAX);
        assert_eq!(limit(usize::MAX), i64::MAX);
        assert_eq!(limit(0), 0);
    }

    #[test]
    fn values_beyond_bigint_are_refused() {
        assert_eq!(storable(42, "sequence").unwrap(), 42);
        assert!(matches!(
            storable(u64::MAX, "sequence"),
            Err(StoreError::Corrupt { .. })
        ));
    }

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
