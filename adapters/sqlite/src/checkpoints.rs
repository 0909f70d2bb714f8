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
        let reader = reader.to_owned();
        let position = storable(position, "checkpoint position")?;
        let updated_at = format_timestamp(Utc::now());
        // On the writer, in the group commit of the projector's writes: a second connection
        // writing here would wait on SQLite's busy handler for the writer's lock.
        self.db
            .write_statement(
                "INSERT INTO rm_checkpoints (reader, position, updated_at) \
                         VALUES (?1, ?2, ?3) ON CONFLICT (reader) DO UPDATE SET \
                         position = max(position, excluded.position), \
                         updated_at = excluded.updated_at",
                (reader, position, updated_at),
            )
            .await
            .map(drop)
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
        let stream = stream.to_owned();
        let shard_id = shard_id.to_owned();
        let sequence_number = checkpoint.sequence_number.clone();
        let finished = i64::from(checkpoint.finished);
        let updated_at = format_timestamp(Utc::now());
        self.db
            .write_statement(
                "INSERT INTO rm_stream_checkpoints \
                         (stream, shard_id, sequence_number, finished, updated_at) \
                         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (stream, shard_id) DO UPDATE SET \
                         sequence_number = excluded.sequence_number, \
                         finished = excluded.finished, updated_at = excluded.updated_at",
                (stream, shard_id, sequence_number, finished, updated_at),
            )
            .await
            .map(drop)
    }
}
