//! `InMemorySnapshotStore`: the newest snapshot per account in a mutex-guarded map.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use ledger_domain::AccountId;

use crate::ports::{Snapshot, SnapshotStore, StoreError};

#[derive(Debug, Default)]
pub struct InMemorySnapshotStore {
    snapshots: Mutex<HashMap<AccountId, Snapshot>>,
}

impl InMemorySnapshotStore {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl SnapshotStore for InMemorySnapshotStore {
    async fn latest(&self, account_id: &AccountId) -> Result<Option<Snapshot>, StoreError> {
        Ok(self
            .snapshots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(account_id)
            .cloned())
    }

    async fn save(&self, snapshot: &Snapshot) -> Result<bool, StoreError> {
        let mut snapshots = self
            .snapshots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let newer_stored = snapshots
            .get(&snapshot.account_id)
            .is_some_and(|stored| stored.version() >= snapshot.version());
        if newer_stored {
            return Ok(false);
        }
        snapshots.insert(snapshot.account_id.clone(), snapshot.clone());
        Ok(true)
    }
}
