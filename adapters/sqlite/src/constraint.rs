//! Which uniqueness constraint a failed insert broke, read from SQLite's error.
//!
//! Inside one append, the idempotency insert and the event inserts can each fail on a UNIQUE key, and
//! the answer differs: a taken key means the request was already carried out (`DuplicateRequest`); a
//! taken `(account_id, sequence)` means another writer got there first (`Conflict`). SQLite tells them
//! apart only in its message, `UNIQUE constraint failed: <table>.<column>[, <table>.<column>]`.
//!
//! Two drivers reach SQLite here (sqlx for reads and migrations, rusqlite on the writer thread); both
//! hand over SQLite's extended result code and message, and one classifier reads them.

/// A uniqueness constraint of the ledger's schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Violation {
    /// `idempotency.client_request_id`: a request with this key is already recorded.
    IdempotencyKey,
    /// `events(account_id, sequence)`: the stream already has an event at this sequence.
    StreamSequence,
    /// `events.event_id`: an event id was used twice.
    EventId,
    /// Any other uniqueness constraint, such as a read-model table's key.
    Other,
}

/// SQLITE_CONSTRAINT_PRIMARYKEY and SQLITE_CONSTRAINT_UNIQUE: the extended codes of a uniqueness
/// violation (a PRIMARY KEY or a UNIQUE key).
const UNIQUENESS_CODES: [i64; 2] = [1555, 2067];

/// The uniqueness constraint SQLite's error (its extended result code and message) reports, or
/// `None` if it is no uniqueness violation at all (a lost connection, a busy database, a trigger's
/// refusal, ...).
pub fn classify_sqlite(extended_code: i64, message: &str) -> Option<Violation> {
    UNIQUENESS_CODES
        .contains(&extended_code)
        .then(|| classify_message(message))
}

/// [`classify_sqlite`] on an error of sqlx.
pub fn classify(error: &sqlx::Error) -> Option<Violation> {
    match error {
        sqlx::Error::Database(db) => {
            let code = db.code()?.parse::<i64>().ok()?;
            classify_sqlite(code, db.message())
        }
        _ => None,
    }
}

/// [`classify_sqlite`] on an error of rusqlite (the writer thread's driver).
pub fn classify_rusqlite(error: &rusqlite::Error) -> Option<Violation> {
    match error {
        rusqlite::Error::SqliteFailure(failure, Some(message)) => {
            classify_sqlite(i64::from(failure.extended_code), message)
        }
        _ => None,
    }
}

/// The constraint named in a SQLite uniqueness message. The columns must match exactly: a lookalike
/// (another table's `account_id, sequence` key) must not pass for a stream conflict.
pub fn classify_message(message: &str) -> Violation {
    let Some(columns) = message.strip_prefix("UNIQUE constraint failed: ") else {
        return Violation::Other;
    };
    let columns: Vec<&str> = columns.split(',').map(str::trim).collect();
    match columns.as_slice() {
        ["idempotency.client_request_id"] => Violation::IdempotencyKey,
        ["events.account_id", "events.sequence"] => Violation::StreamSequence,
        ["events.event_id"] => Violation::EventId,
        _ => Violation::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_each_constraint_of_the_event_store() {
        assert_eq!(
            classify_message("UNIQUE constraint failed: idempotency.client_request_id"),
            Violation::IdempotencyKey
        );
        assert_eq!(
            classify_message("UNIQUE constraint failed: events.account_id, events.sequence"),
            Violation::StreamSequence
        );
        assert_eq!(
            classify_message("UNIQUE constraint failed: events.event_id"),
            Violation::EventId
        );
    }

    #[test]
    fn lookalikes_are_other() {
        for message in [
            "UNIQUE constraint failed: rm_account_transactions.account_id, rm_account_transactions.sequence",
            "UNIQUE constraint failed: events.account_id",
            "UNIQUE constraint failed: events.sequence, events.account_id, events.event_id",
            "NOT NULL constraint failed: events.payload",
            "",
        ] {
            assert_eq!(classify_message(message), Violation::Other, "{message}");
        }
    }

    #[test]
    fn only_uniqueness_codes_are_read() {
        let message = "UNIQUE constraint failed: events.event_id";
        assert_eq!(classify_sqlite(2067, message), Some(Violation::EventId));
        assert_eq!(classify_sqlite(1555, message), Some(Violation::EventId));
        // SQLITE_CONSTRAINT_NOTNULL and SQLITE_BUSY say nothing of a key, whatever the message.
        assert_eq!(classify_sqlite(1299, message), None);
        assert_eq!(classify_sqlite(5, message), None);
    }

    #[test]
    fn errors_other_than_database_errors_are_no_violation() {
        assert_eq!(
            classify_rusqlite(&rusqlite::Error::QueryReturnedNoRows),
            None
        );
        assert_eq!(classify(&sqlx::Error::PoolTimedOut), None);
        assert_eq!(classify(&sqlx::Error::RowNotFound), None);
    }
}
