//! `PostgresCheckpoints`: the `ProjectionCheckpoints` port on PostgreSQL. The feed projector's
//! positions in `projection_checkpoints`, the DynamoDB Streams reader's per-shard positions in
//! `stream_checkpoints`: in the database of the read model they describe, but not part of it (a
//! rebuild of the read model leaves these two tables alone).

use async_trait::async_trait;
use chrono::Utc;
use ledger_application::ports::{ProjectionCheckpoints, ShardCheckpoint, StoreError};
use sqlx::postgres::PgPool;

use crate::rows::{column, storable, unsigned};

/// The projectors' positions in one PostgreSQL database: `PostgresCheckpoints::from_pool(pool)` or
/// `read_model.checkpoints()`. Cheap to clone; clones share the pool.
#[derive(Debug, Clone)]
pub struct PostgresCheckpoints {
    pool: PgPool,
}

impl PostgresCheckpoints {
    pub fn from_pool(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[async_trait]
impl ProjectionCheckpoints for PostgresCheckpoints {
    async fn feed_checkpoint(&self, reader: &str) -> Result<Option<u64>, StoreError> {
        let row = sqlx::query("SELECT position FROM projection_checkpoints WHERE reader = $1")
            .bind(reader)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::unavailable)?;
        row.map(|row| unsigned(&row, "position")).transpose()
    }

    async fn save_feed_checkpoint(&self, reader: &str, position: u64) -> Result<(), StoreError> {
        // GREATEST in the statement itself: two savers racing cannot move the checkpoint backwards.
        // `updated_at` is when the reader last reported, moved or not: it shows the reader is alive.
        sqlx::query(
            "INSERT INTO projection_checkpoints (reader, position, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (reader) DO UPDATE SET \
             position = GREATEST(projection_checkpoints.position, excluded.position), \
             updated_at = excluded.updated_at",
        )
        .bind(reader)
        .bind(storable(position, "checkpoint position")?)
        .bind(Utc::now())
        .execute(&self.pool)
        .await
        .map_err(StoreError::unavailable)?;
        Ok(())
    }

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
