//! In-memory implementations of the store ports, with exactly the conflict semantics of the real ones.
//! They back unit tests and run the same contract suites as the SQLite, DynamoDB and PostgreSQL adapters.

mod checkpoints;
mod event_store;
mod lease;
mod read_model;
mod rebuild;
mod snapshots;

pub use checkpoints::InMemoryCheckpoints;
pub use event_store::InMemoryEventStore;
pub use lease::InMemoryProjectorLease;
pub use read_model::InMemoryReadModel;
pub use rebuild::InMemoryRebuild;
pub use snapshots::InMemorySnapshotStore;
