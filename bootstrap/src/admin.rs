//! Wiring shared by the `ledger` admin commands: the configured event store, with the consistent
//! scan over it, beside the configured read model; and the commands built on them.

pub mod rebuild;
pub mod verify;

use std::sync::Arc;

use ledger_application::ports::{EventStore, EventStoreScan};
use ledger_dynamodb::config::DynamoSettings;
use ledger_dynamodb::event_store::DynamoEventStore;

use crate::config::{EventStoreKind, LedgerConfig};
use crate::startup::{ReadSide, StartupError, dynamo_tables};

/// The event store in use, seen as a store (load an account) and as a scan (walk every account).
#[derive(Clone)]
pub struct EventSource {
    pub store: Arc<dyn EventStore>,
    pub scan: Arc<dyn EventStoreScan>,
}

impl std::fmt::Debug for EventSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventSource").finish_non_exhaustive()
    }
}

/// The configured event store: on SQLite the read side's own database (one file holds both), on
/// DynamoDB the configured tables. The SQLite event store beside the PostgreSQL read model is
/// refused with the message start-up gives, since no process could have written that pair.
pub async fn event_source(
    config: &LedgerConfig,
    read_side: &ReadSide,
) -> Result<EventSource, String> {
    match (config.event_store, read_side) {
        (EventStoreKind::Sqlite, ReadSide::Sqlite(database)) => {
            let store = Arc::new(database.event_store());
            Ok(EventSource {
                store: store.clone(),
                scan: store,
            })
        }
        (EventStoreKind::Sqlite, ReadSide::Postgres(_)) => {
            Err(StartupError::PostgresNeedsDynamodb.to_string())
        }
        (EventStoreKind::Dynamodb, _) => {
            let client = ledger_dynamodb::config::dynamodb_client().await;
            let store = Arc::new(DynamoEventStore::new(
                client,
                DynamoSettings::with_tables(dynamo_tables(&config.dynamodb)),
            ));
            Ok(EventSource {
                store: store.clone(),
                scan: store,
            })
        }
    }
}
