//! Moving values across the SQLite boundary: columns out of rows, integers in and out of SQLite's
//! signed 64 bits, and stored text back through the domain's own constructors.
//!
//! Whatever comes back malformed is `StoreError::Corrupt`: this adapter wrote every row, so a value it
//! cannot read means the file was changed behind its back.

use std::fmt::Display;

use chrono::{DateTime, Utc};
use ledger_application::codec::parse_timestamp;
use ledger_application::ports::StoreError;
use sqlx::Row;
use sqlx::sqlite::{Sqlite, SqliteRow};

/// The value of column `name`.
pub(crate) fn column<T>(row: &SqliteRow, name: &str) -> Result<T, StoreError>
where
    T: for<'r> sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite>,
{
    row.try_get(name)
        .map_err(|e| StoreError::corrupt(format!("column `{name}`: {e}")))
}

/// Column `name` parsed by a domain constructor such as `Balance::parse`.
pub(crate) fn parsed<T, E: Display>(
    row: &SqliteRow,
    name: &str,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<T, StoreError> {
    let text: String = column(row, name)?;
    parse(&text).map_err(|e| StoreError::corrupt(format!("column `{name}` = `{text}`: {e}")))
}

/// Like [`parsed`] for a nullable column.
pub(crate) fn parsed_opt<T, E: Display>(
    row: &SqliteRow,
    name: &str,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<Option<T>, StoreError> {
    let text: Option<String> = column(row, name)?;
    text.map(|text| {
        parse(&text).map_err(|e| StoreError::corrupt(format!("column `{name}` = `{text}`: {e}")))
    })
    .transpose()
}

/// A timestamp column, written by `codec::format_timestamp`.
pub(crate) fn timestamp(row: &SqliteRow, name: &str) -> Result<DateTime<Utc>, StoreError> {
    parse_timestamp(&column::<String>(row, name)?)
}

/// A sequence, position or count column: stored as INTEGER, never negative.
pub(crate) fn unsigned(row: &SqliteRow, name: &str) -> Result<u64, StoreError> {
    let value: i64 = column(row, name)?;
    u64::try_from(value)
        .map_err(|_| StoreError::corrupt(format!("column `{name}` = {value} is negative")))
}

/// A sequence or position to store. Above `i64::MAX` it cannot be stored; no stream or feed gets
/// anywhere near it, so such a value is a broken invariant rather than a request to refuse.
pub(crate) fn storable(value: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| {
        StoreError::corrupt(format!(
            "{what} {value} exceeds SQLite's 64-bit signed integers"
        ))
    })
}

/// A lower bound to filter on ("above `value`"). Nothing stored exceeds `i64::MAX`, so a larger bound
/// means the same as `i64::MAX`: nothing above it.
pub(crate) fn bound(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A `LIMIT`. SQLite reads a negative limit as "no limit", so a huge `usize` must saturate, never wrap.
pub(crate) fn limit(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
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
    fn values_beyond_sqlite_integers_are_refused() {
        assert_eq!(storable(42, "sequence").unwrap(), 42);
        assert!(matches!(
            storable(u64::MAX, "sequence"),
            Err(StoreError::Corrupt { .. })
        ));
    }
}
