//! The port contract suites, run against the in-memory store and read model.

use std::sync::Arc;

use ledger_application::memory::{InMemoryEventStore, InMemoryReadModel};
use ledger_application::testkit::{EventStoreSubject, ReadModelSubject};

ledger_application::event_store_contract_tests!(|| async {
    let store = Arc::new(InMemoryEventStore::new());
    EventStoreSubject::new(store.clone(), store, ())
});

mod read_model {
    use super::*;

    ledger_application::read_model_contract_tests!(|| async {
        let read_model = Arc::new(InMemoryReadModel::new());
        ReadModelSubject::new(read_model.clone(), read_model, ())
    });
}
