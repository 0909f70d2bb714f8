//! The port contract suites, run against the in-memory store (with its feed and scan), snapshot store
//! and read model.

use std::sync::Arc;

use ledger_application::memory::{InMemoryEventStore, InMemoryReadModel, InMemorySnapshotStore};
use ledger_application::testkit::{
    EventFeedSubject, EventScanSubject, EventStoreSubject, ReadModelSubject, SnapshotSubject,
};

ledger_application::event_store_contract_tests!(|| async {
    EventStoreSubject::new(Arc::new(InMemoryEventStore::new()), ())
});

mod event_feed {
    use super::*;

    ledger_application::event_feed_contract_tests!(|| async {
        EventFeedSubject::new(Arc::new(InMemoryEventStore::new()), ())
    });
}

mod event_scan {
    use super::*;

    ledger_application::event_scan_contract_tests!(|| async {
        EventScanSubject::new(Arc::new(InMemoryEventStore::new()), ())
    });
}

mod read_model {
    use super::*;

    ledger_application::read_model_contract_tests!(|| async {
        ReadModelSubject::new(Arc::new(InMemoryReadModel::new()), ())
    });
}

mod snapshots {
    use super::*;

    ledger_application::snapshot_store_contract_tests!(|| async {
        SnapshotSubject::new(Arc::new(InMemorySnapshotStore::new()), ())
    });
}
