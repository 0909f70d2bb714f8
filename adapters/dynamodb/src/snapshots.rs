//! `DynamoSnapshotStore`: the `SnapshotStore` port on the `snapshots` table, one item per account
//! holding its newest snapshot.
//!
//! A save is one `PutItem` conditioned on `attribute_not_exists(account_id) OR version < :v`: DynamoDB
//! evaluates the condition and the write as one step, so a slow writer holding an older state can never
//! replace a newer snapshot, however the writers interleave. A load of an account then costs one
//! `GetItem` here plus one Query of the events after the snapshot's version — O(1) requests however
//! long the history (the application decides how often to snapshot: `CommandService::with_snapshots`).

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::ReturnConsumedCapacity;
use ledger_application::ports::{Snapshot, SnapshotStore, StoreError};
use ledger_domain::AccountId;

use crate::config::DynamoSettings;
use crate::event_store::{get_item_consistent, log_capacity, request_error};
use crate::items::{self, ACCOUNT_ID, VERSION, decode_snapshot};

/// The snapshot store on DynamoDB. Cheap to clone: clones share the client's connection pool.
#[derive(Debug, Clone)]
pub struct DynamoSnapshotStore {
    client: Client,
    settings: Arc<DynamoSettings>,
}

impl DynamoSnapshotStore {
    pub fn new(client: Client, settings: DynamoSettings) -> Self {
        Self {
            client,
            settings: Arc::new(settings),
        }
    }

    pub fn settings(&self) -> &DynamoSettings {
        &self.settings
    }
}

#[async_trait]
impl SnapshotStore for DynamoSnapshotStore {
    async fn latest(&self, account_id: &AccountId) -> Result<Option<Snapshot>, StoreError> {
        // A stale snapshot would only cost a longer tail, but a consistent read keeps "newest"
        // meaning newest.
        let Some(item) = get_item_consistent(
            &self.client,
            &self.settings.tables.snapshots,
            items::snapshot_key(account_id),
        )
        .await?
        else {
            return Ok(None);
        };
        let snapshot = decode_snapshot(&item)?;
        if snapshot.account_id != *account_id {
            return Err(StoreError::corrupt(format!(
                "snapshot read for {account_id} belongs to {}",
                snapshot.account_id
            )));
        }
        Ok(Some(snapshot))
    }

    async fn save(&self, snapshot: &Snapshot) -> Result<bool, StoreError> {
        let table = &self.settings.tables.snapshots;
        let result = self
            .client
            .put_item()
            .table_name(table)
            .set_item(Some(items::snapshot_item(snapshot)?))
            .condition_expression("attribute_not_exists(#a) OR #v < :v")
            .expression_attribute_names("#a", ACCOUNT_ID)
            .expression_attribute_names("#v", VERSION)
            .expression_attribute_values(":v", items::number(snapshot.version()))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match result {
            Ok(output) => {
                log_capacity("PutItem", output.consumed_capacity());
                Ok(true)
            }
            // A snapshot at the same or a newer version is stored: ours is not needed.
            Err(error)
                if matches!(
                    error.as_service_error(),
                    Some(PutItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                tracing::debug!(
                    account_id = %snapshot.account_id,
                    version = snapshot.version(),
                    "a snapshot at the same or a newer version is stored"
                );
                Ok(false)
            }
            Err(error) => Err(request_error("PutItem", table, &error)),
        }
    }
}
