//! The `ProjectionCheckpoints` port: how far each projector has read its source (an `EventFeed`
//! position, or per-shard positions in a change stream), kept beside the read model in use but not
//! part of it. A rebuild replaces the read model's tables; the checkpoints are the projector's, and
//! stay.

use async_trait::async_trait;

use crate::ports::StoreError;

/// How far a stream reader got in one shard of a change stream (DynamoDB Streams).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardCheckpoint {
    /// The sequence number of the last record projected, as the stream writes it (a decimal string
    /// that may exceed 64 bits); `None` if the reader has only seen the shard.
    pub sequence_number: Option<String>,
    /// The shard is closed and every record of it was projected: its children may be read.
    pub finished: bool,
}

/// The positions of the projectors: the feed projector's (one number per named reader) and the
/// stream poller's (one [`ShardCheckpoint`] per stream and shard). Stored in the same database as
/// the read model they feed, so that a restart resumes where the projected data ends, yet in tables
/// of their own, so that replacing the read model (a rebuild) leaves them alone.
#[async_trait]
pub trait ProjectionCheckpoints: Send + Sync {
    /// The stored position of the named feed reader, if it ever saved one.
    async fn feed_checkpoint(&self, reader: &str) -> Result<Option<u64>, StoreError>;

    /// Stores the position of the named feed reader. MUST never move it backwards: a lower
    /// position than the stored one leaves the stored one.
    async fn save_feed_checkpoint(&self, reader: &str, position: u64) -> Result<(), StoreError>;

    /// The stored position of one shard of `stream`, if the reader ever saved one.
    async fn shard_checkpoint(
        &self,
        stream: &str,
        shard_id: &str,
    ) -> Result<Option<ShardCheckpoint>, StoreError>;

    /// Stores the position of one shard. The reader only ever saves positions it has projected up to,
    /// in stream order; the store keeps what it is given.
    async fn save_shard_checkpoint(
        &self,
        stream: &str,
        shard_id: &str,
        checkpoint: &ShardCheckpoint,
    ) -> Result<(), StoreError>;
}
