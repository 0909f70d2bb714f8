//! DynamoDB adapters: the production event store (`TransactWriteItems` appends, strongly consistent
//! paginated loads, the consistent scan of every account for rebuild and verify), account snapshots,
//! table provisioning for local use, and the DynamoDB Streams reader that feeds the projector.

pub mod config;
pub mod event_store;
pub mod items;
mod scan;
pub mod snapshots;
pub mod streams;
pub mod tables;

pub use config::{DynamoSettings, DynamoTables, dynamodb_client};
pub use event_store::{DynamoError, DynamoEventStore};
pub use snapshots::DynamoSnapshotStore;
pub use tables::{create_tables, events_stream_arn};
