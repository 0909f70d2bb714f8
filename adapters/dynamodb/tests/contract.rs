//! The port contract suites, unchanged, run against DynamoDB Local: each case gets tables of its own.
//!
//! The event-feed suite is not run here: on DynamoDB the feed is the table's stream, whose reader and
//! tests live with the streams module.

mod common;

use std::sync::Arc;

use ledger_application::testkit::{EventScanSubject, EventStoreSubject, SnapshotSubject};
use ledger_dynamodb::{DynamoEventStore, DynamoSettings, DynamoSnapshotStore};

/// Fresh tables with production's settings but for their names, and the guard that drops them.
async fn fresh_settings() -> (aws_sdk_dynamodb::Client, DynamoSettings, common::DropTables) {
    let client = common::client().await;
    let (tables, guard) = common::guarded_tables(&client).await;
    (client, DynamoSettings::with_tables(tables), guard)
}

ledger_application::event_store_contract_tests!(|| async {
    let (client, settings, guard) = fresh_settings().await;
    EventStoreSubject::new(Arc::new(DynamoEventStore::new(client, settings)), guard)
});

mod two_instances {
    use super::*;

    ledger_application::two_instance_command_tests!(|| async {
        let (client, settings, guard) = fresh_settings().await;
        EventStoreSubject::new(Arc::new(DynamoEventStore::new(client, settings)), guard)
    });
}

mod event_scan {
    use super::*;

    ledger_application::event_scan_contract_tests!(|| async {
        let (client, settings, guard) = fresh_settings().await;
        EventScanSubject::new(Arc::new(DynamoEventStore::new(client, settings)), guard)
    });
}

mod snapshots {
    use super::*;

    ledger_application::snapshot_store_contract_tests!(|| async {
        let (client, settings, guard) = fresh_settings().await;
        SnapshotSubject::new(Arc::new(DynamoSnapshotStore::new(client, settings)), guard)
    });
}
