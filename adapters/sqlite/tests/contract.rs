//! The port contract suites, run against the SQLite adapters, each case on a fresh database file.

use std::sync::Arc;

use ledger_application::testkit::{
    EventFeedSubject, EventScanSubject, EventStoreSubject, ReadModelSubject,
};
use ledger_sqlite::SqliteDatabase;
use tempfile::TempDir;

/// A fresh database in its own temporary directory; the directory goes with the subject's guard.
async fn fresh_database() -> (TempDir, SqliteDatabase) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let db = SqliteDatabase::open(&dir.path().join("ledger.db"))
        .await
        .expect("open a fresh database");
    (dir, db)
}

ledger_application::event_store_contract_tests!(|| async {
    let (dir, db) = fresh_database().await;
    EventStoreSubject::new(Arc::new(db.event_store()), (dir, db))
});

mod event_feed {
    use super::*;

    ledger_application::event_feed_contract_tests!(|| async {
        let (dir, db) = fresh_database().await;
        EventFeedSubject::new(Arc::new(db.event_store()), (dir, db))
    });
}

mod event_scan {
    use super::*;

    ledger_application::event_scan_contract_tests!(|| async {
        let (dir, db) = fresh_database().await;
        EventScanSubject::new(Arc::new(db.event_store()), (dir, db))
    });
}

mod read_model {
    use super::*;

    ledger_application::read_model_contract_tests!(|| async {
        let (dir, db) = fresh_database().await;
        ReadModelSubject::new(Arc::new(db.read_model()), (dir, db))
    });
}
