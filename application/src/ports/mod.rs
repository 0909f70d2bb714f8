//! The ports: what the application needs from the world, as traits. Adapters implement them; the
//! contract suites in `testkit` say, by test, what every implementation MUST do.

mod checkpoints;
mod event_scan;
mod event_store;
mod lease;
mod read_model;
mod rebuild;
mod snapshot;
mod system;

pub use checkpoints::{ProjectionCheckpoints, ShardCheckpoint};
pub use event_scan::{AccountPage, EventStoreScan, ScanCursor};
#[cfg(test)]
pub use event_store::MockEventStore;
pub use event_store::{
    AppendError, AtomicAppend, EventFeed, EventStore, FeedEntry, FeedEvent, InvalidAppend,
    MAX_ACTIONS_PER_APPEND, StoreError, StreamAppend, UndecodableEvent,
};
pub use lease::{CONFIRM_TIMEOUT, HeldLease, LeaseLost, ProjectorLease};
#[cfg(test)]
pub use read_model::MockProjection;
pub use read_model::{
    AccountView, ApplyOutcome, DailyBalanceView, DeadLetter, DeadLetterId, Projection,
    ReadModelChange, ReadModelQuery, ReadModelUpdate, StoredDeadLetter, TransactionView,
};
pub use rebuild::{LiveSwap, ReadModelRebuild, RebuildProgress};
#[cfg(test)]
pub use snapshot::MockSnapshotStore;
pub use snapshot::{Snapshot, SnapshotStore};
pub use system::{Clock, HealthCheck, IdSource, SystemClock, UuidV7Ids};

/// A boxed error from an adapter's driver, kept as the source of `Unavailable` errors.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;
