//! `InMemoryCheckpoints`: the projectors' positions as maps behind one mutex, apart from the read
//! model as in every adapter.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::ports::{ProjectionCheckpoints, ShardCheckpoint, StoreError};

#[derive(Debug, Default)]
struct Positions {
    feeds: HashMap<String, u64>,
    shards: HashMap<(String, String), ShardCheckpoint>,
}

#[derive(Debug, Default)]
pub struct InMemoryCheckpoints {
    positions: Mutex<Positions>,
}

impl InMemoryCheckpoints {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Positions> {
        // Every write is one map insert, so a poisoned lock still guards whole positions.
        self.positions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl ProjectionCheckpoints for InMemoryCheckpoints {
    async fn feed_checkpoint(&self, reader: &str) -> Result<Option<u64>, StoreError> {
        Ok(self.lock().feeds.get(reader).copied())
    }

    async fn save_feed_checkpoint(&self, reader: &str, position: u64) -> Result<(), StoreError> {
        let mut positions = self.lock();
        let stored = positions.feeds.entry(reader.to_owned()).or_insert(0);
        *stored = (*stored).max(position);
        Ok(())
    }

    async fn shard_checkpoint(
        &self,
        stream: &str,
        shard_id: &str,
    ) -> Result<Option<ShardCheckpoint>, StoreError> {
        Ok(self
            .lock()
            .shards
            .get(&(stream.to_owned(), shard_id.to_owned()))
            .cloned())
    }

    async fn save_shard_checkpoint(
        &self,
        stream: &str,
        shard_id: &str,
        checkpoint: &ShardCheckpoint,
    ) -> Result<(), StoreError> {
        self.lock()
            .shards
            .insert((stream.to_owned(), shard_id.to_owned()), checkpoint.clone());
        Ok(())
    }
}
