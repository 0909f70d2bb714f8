//! The port contract suites, run against the in-memory store (with its feed and scan), snapshot store,
//! read model and checkpoints.

use std::sync::Arc;

use ledger_application::memory::{
    InMemoryCheckpoints, InMemoryEventStore, InMemoryReadModel, InMemorySnapshotStore,
};
use ledger_application::testkit::{
    CheckpointsSubject, EventFeedSubject, EventScanSubject, EventStoreSubject, ReadModelSubject,
    SnapshotSubject,
};

ledger_application::event_store_contract_tests!(|| async {
    EventStoreSubject::new(Arc::new(InMemoryEventStore::new()), ())
});

/// The same contract over the tracing decorator around the in-memory store: it forwards faithfully.
mod instrumented_event_store {
    use super::*;
    use ledger_application::InstrumentedEventStore;
    use ledger_application::ports::EventStore;

    ledger_application::event_store_contract_tests!(|| async {
        let inner: Arc<dyn EventStore> = Arc::new(InMemoryEventStore::new());
        EventStoreSubject::new(Arc::new(InstrumentedEventStore::new(inner)), ())
    });
}

mod two_instances {
    use super::*;

    ledger_application::two_instance_command_tests!(|| async {
        EventStoreSubject::new(Arc::new(InMemoryEventStore::new()), ())
    });
}

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

mod checkpoints {
    use super::*;

    ledger_application::projection_checkpoints_contract_tests!(|| async {
        CheckpointsSubject::new(Arc::new(InMemoryCheckpoints::new()), ())
    });
}

mod projector_lease {
    use std::sync::Arc;

    use ledger_application::memory::InMemoryProjectorLease;
    use ledger_application::ports::ProjectorLease;
    use ledger_application::testkit::LeaseSubject;

    /// Every contender is a clone of one lease; severing revokes it from its holder.
    fn subject() -> LeaseSubject {
        let lease = InMemoryProjectorLease::new();
        let contended = lease.clone();
        LeaseSubject::new(
            Box::new(move || {
                let lease: Arc<dyn ProjectorLease> = Arc::new(contended.clone());
                Box::pin(async move { lease })
            }),
            Some(Box::new(move || {
                lease.revoke();
                Box::pin(async {})
            })),
            (),
        )
    }

    ledger_application::projector_lease_contract_tests!(|| async { subject() });

    mod severing {
        ledger_application::projector_lease_severing_contract_tests!(|| async { super::subject() });
    }
}
