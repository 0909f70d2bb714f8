//! `StreamCheckpoints` on PostgreSQL: the DynamoDB Streams reader's per-shard positions, in
//! `stream_checkpoints`, beside the read model they describe.

use async_trait::async_trait;
use chrono::Utc;
use ledger_application::ports::{ShardCheckpoint, StoreError, StreamCheckpoints};

use super::PostgresReadModel;
use crate::rows::column;

#[async_trait]
impl StreamCheckpoints for PostgresReadModel {
    async fn shard_checkpoint(
        &self,
        stream: &str,
        shard_id: &str,
    ) -> Result<Option<ShardCheckpoint>, StoreError> {
        let row = sqlx::query(
            "SELECT sequence_number, finished FROM stream_checkpoints \
             WHERE stream = $1 AND shard_id = $2",
        )
        .bind(stream)
        .bind(shard_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::unavailable)?;
        row.map(|row| {
            Ok(ShardCheckpoint {
                sequence_number: column(&row, "sequence_number")?,
                finished: column(&row, "finished")?,
            })
        })
        .transpose()
    }

    async fn save_shard_checkpoint(
        &self,
        stream: &str,
        shard_id: &str,
        checkpoint: &ShardCheckpoint,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO stream_checkpoints \
             (stream, shard_id, sequence_number, finished, updated_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (stream, shard_id) DO UPDATE SET sequence_number = excluded.sequence_number, \
             finished = excluded.finished, updated_at = excluded.updated_at",
        )
        .bind(stream)
        .bind(shard_id)
        .bind(checkpoint.sequence_number.as_deref())
        .bind(checkpoint.finished)
        .bind(Utc::now())
        .execute(&self.pool)
        .await
        .map_err(StoreError::unavailable)?;
        Ok(())
    }
}
