//! Two command services, each with its own state cache, on one embedded SQLite file (two processes
//! on one database): the shared suite of `ledger_application::testkit::two_instances`.

use std::sync::Arc;

use ledger_application::testkit::EventStoreSubject;
use ledger_sqlite::SqliteDatabase;

ledger_application::two_instance_command_tests!(|| async {
    let dir = tempfile::tempdir().expect("temporary directory");
    let db = SqliteDatabase::open(&dir.path().join("ledger.db"))
        .await
        .expect("open a fresh database");
    EventStoreSubject::new(Arc::new(db.event_store()), (dir, db))
});
