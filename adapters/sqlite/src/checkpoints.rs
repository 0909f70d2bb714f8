//! `SqliteCheckpoints`: the `ProjectionCheckpoints` port on SQLite. The feed projector's positions
//! in `rm_checkpoints`, the DynamoDB Streams reader's per-shard positions in `rm_stream_checkpoints`:
//! in the file of the read model they describe, but not part of it (a rebuild of the read model
//! leaves these two tables alone).

use async_trait::async_trait;
use chrono::Utc;
use ledger_application::codec::format_timestamp;
use ledger_application::ports::{ProjectionCheckpoints, ShardCheckpoint, StoreError};

use crate::database::SqliteDatabase;
use crate::rows::{column, storable, unsigned};

/// The projectors' positions in a [`SqliteDatabase`]: `SqliteCheckpoints::new(&db)` or
/// `db.checkpoints()`. Cheap to clone; all clones share the database's pools.
#[derive(Debug, Clone)]
pub struct SqliteCheckpoints {
    db: SqliteDatabase,
}

impl SqliteCheckpoints {
    pub fn new(db: &SqliteDatabase) -> Self {
        Self { db: db.clone() }
    }
}

#[async_trait]
impl ProjectionCheckpoints for SqliteCheckpoints {
    async fn feed_checkpoint(&self, reader: &str) -> Result<Option<u64>, StoreError> {
        let row = sqlx::query("SELECT position FROM rm_checkpoints WHERE reader = ?1")
            .bind(reader)
            .fetch_optional(self.db.reader())
            .await
            .map_err(StoreError::unavailable)?;
        row.map(|row| unsigned(&row, "position")).transpose()
    }

    async fn save_feed_checkpoint(&self, reader: &str, position: u64) -> Result<(), StoreError> {
        // `max` in the statement itself: two savers racing cannot move the checkpoint backwards.
        // `updated_at` is when the reader last reported, moved or not: it shows the reader is alive.
        sqlx::query(
            "INSERT INTO rm_checkpoints (reader, position, updated_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (reader) DO UPDATE SET \
             position = max(position, excluded.position), updated_at = excluded.updated_at",
        )
        .bind(reader)
        .bind(storable(position, "checkpoint position")?)
        .bind(format_timestamp(Utc::now()))
        .execute(self.db.writer())
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
            "SELECT sequence_number, finished FROM rm_stream_checkpoints \
             WHERE stream = ?1 AND shard_id = ?2",
        )
        .bind(stream)
        .bind(shard_id)
        .fetch_optional(self.db.reader())
        .await
        .map_err(StoreError::unavailable)?;
        row.map(|row| {
            Ok(ShardCheckpoint {
                sequence_number: column(&row, "sequence_number")?,
                finished: column::<i64>(&row, "finished")? == 1,
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
            "INSERT INTO rm_stream_checkpoints \
             (stream, shard_id, sequence_number, finished, updated_at) VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (stream, shard_id) DO UPDATE SET sequence_number = excluded.sequence_number, \
             finished = excluded.finished, updated_at = excluded.updated_at",
        )
        .bind(stream)
        .bind(shard_id)
        .bind(checkpoint.sequence_number.as_deref())
        .bind(i64::from(checkpoint.finished))
        .bind(format_timestamp(Utc::now()))
        .execute(self.db.writer())
        .await
        .map_err(StoreError::unavailable)?;
        Ok(())
    }
}
