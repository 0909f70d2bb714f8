//! The snapshot port: the state of an account at a version, so that a load reads the snapshot plus the
//! events after it — O(1) requests however long the history — instead of the whole stream.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ledger_domain::{AccountId, AccountSnapshot};

use crate::ports::StoreError;

/// An account's state after the event with sequence `state.version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub account_id: AccountId,
    pub state: AccountSnapshot,
    pub taken_at: DateTime<Utc>,
}

impl Snapshot {
    pub fn version(&self) -> u64 {
        self.state.version
    }
}

/// Where snapshots are kept. A snapshot is only ever a shortcut: losing one costs a longer load, never
/// correctness, because the events stay the source of truth.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait SnapshotStore: Send + Sync {
    /// The newest snapshot of `account_id`, read with the consistency of `EventStore::load`.
    async fn latest(&self, account_id: &AccountId) -> Result<Option<Snapshot>, StoreError>;

    /// Stores `snapshot` unless one at the same or a newer version is already stored, so a slow,
    /// stale writer can never replace a newer snapshot. Returns whether it was stored.
    async fn save(&self, snapshot: &Snapshot) -> Result<bool, StoreError>;
}
