//! In-memory implementations of the store ports, with exactly the conflict semantics of the real ones.
//! They back unit tests and run the same contract suites as the SQLite, DynamoDB and PostgreSQL adapters.

mod event_store;
mod read_model;
mod rebuild;
mod snapshots;

pub use event_store::InMemoryEventStore;
pub use read_model::InMemoryReadModel;
pub use rebuild::InMemoryRebuild;
pub use snapshots::InMemorySnapshotStore;
