//! Moving values across the SQLite boundary: columns out of rows, and a row as the application's
//! [`StoredRow`], so that the read model's views are decoded by the code the PostgreSQL read model
//! shares (`ledger_application::read_model_rows`). Instants are stored as fixed-width UTC text
//! (`codec::format_timestamp`), days as `YYYY-MM-DD` text.
//!
//! Whatever comes back malformed is `StoreError::Corrupt`: this adapter wrote every row, so a value it
//! cannot read means the file was changed behind its back.

use chrono::{DateTime, NaiveDate, Utc};
use ledger_application::codec::parse_timestamp;
use ledger_application::ports::StoreError;
pub(crate) use ledger_application::read_model_rows::{StoredRow, bound, limit, storable};
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

/// A sequence, position or count column: stored as INTEGER, never negative.
pub(crate) fn unsigned(row: &SqliteRow, name: &str) -> Result<u64, StoreError> {
    Columns(row).unsigned(name)
}

/// A SQLite row read as the application's [`StoredRow`].
pub(crate) struct Columns<'r>(pub(crate) &'r SqliteRow);

impl StoredRow for Columns<'_> {
    fn text_opt(&self, name: &str) -> Result<Option<String>, StoreError> {
        column(self.0, name)
    }

    fn integer_opt(&self, name: &str) -> Result<Option<i64>, StoreError> {
        column(self.0, name)
    }

    fn instant_opt(&self, name: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.text_opt(name)?
            .as_deref()
            .map(parse_timestamp)
            .transpose()
    }

    fn day(&self, name: &str) -> Result<NaiveDate, StoreError> {
        self.parsed(name, crate::read_model::parse_day)
    }
}
