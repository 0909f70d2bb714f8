//! Settings of the DynamoDB adapters (table names, idempotency TTL, snapshot interval, paging and
//! retry bounds) and the one way this crate builds its AWS clients.
//!
//! Endpoint, region and credentials come from the standard AWS environment (`AWS_ENDPOINT_URL`,
//! `AWS_REGION`, `AWS_ACCESS_KEY_ID`, ..., profiles, the ECS task role), never from our own variables,
//! so that the same binary talks to DynamoDB Local on a laptop and to DynamoDB in production.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;

/// Default name of the events table (partition key `account_id` S, sort key `sequence` N).
pub const DEFAULT_EVENTS_TABLE: &str = "ledger_events";
/// Default name of the idempotency table (partition key `client_request_id` S, TTL on `expires_at`).
pub const DEFAULT_IDEMPOTENCY_TABLE: &str = "ledger_idempotency";
/// Default name of the snapshots table (partition key `account_id` S, one snapshot per account).
pub const DEFAULT_SNAPSHOTS_TABLE: &str = "ledger_snapshots";

/// How long an idempotency record is kept by default: 7 days.
///
/// Clients retry within seconds or hours; 7 days also covers a retry after a long weekend's outage or
/// a batch job re-run the next business week. After it, DynamoDB's TTL deletes the record (lazily,
/// usually within a few days more), and the same key would then be judged as a new request. Records
/// cost a few hundred bytes each, so erring long is cheap; raise it if clients replay older batches.
pub const DEFAULT_IDEMPOTENCY_TTL: Duration = Duration::from_hours(7 * 24);

/// Default bound on the Query pages one `load` follows. A page holds up to 1 MB, so the default lets a
/// load return up to ~1 GB (well over a million events) before it refuses, rather than exhaust memory.
pub const DEFAULT_LOAD_PAGES_MAX: u32 = 1_000;

/// Default number of attempts of one append whose transaction DynamoDB cancelled for contention
/// (`TransactionConflict`) or throttling, before giving up.
pub const DEFAULT_TRANSACTION_ATTEMPTS_MAX: u32 = 4;

/// Attempts per request made by the SDK itself (standard mode: throttling, 5xx and transport errors,
/// with exponential backoff and jitter, drawing on the client's retry quota).
pub const SDK_MAX_ATTEMPTS: u32 = 5;

/// The names of the three tables. Deployments prefix or rename them; tests give each case its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamoTables {
    pub events: String,
    pub idempotency: String,
    pub snapshots: String,
}

impl Default for DynamoTables {
    fn default() -> Self {
        Self {
            events: DEFAULT_EVENTS_TABLE.to_owned(),
            idempotency: DEFAULT_IDEMPOTENCY_TABLE.to_owned(),
            snapshots: DEFAULT_SNAPSHOTS_TABLE.to_owned(),
        }
    }
}

impl DynamoTables {
    /// The default names behind `prefix`, e.g. `prod_` gives `prod_ledger_events`, ....
    pub fn with_prefix(prefix: &str) -> Self {
        Self {
            events: format!("{prefix}{DEFAULT_EVENTS_TABLE}"),
            idempotency: format!("{prefix}{DEFAULT_IDEMPOTENCY_TABLE}"),
            snapshots: format!("{prefix}{DEFAULT_SNAPSHOTS_TABLE}"),
        }
    }
}

/// Everything the DynamoDB adapters need besides a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamoSettings {
    pub tables: DynamoTables,
    /// How long an idempotency record is kept: its `expires_at` attribute (epoch seconds, DynamoDB's
    /// TTL format) is the record's `recorded_at` plus this. See [`DEFAULT_IDEMPOTENCY_TTL`].
    pub idempotency_ttl: Duration,
    /// Items per Query page of a load; `None` lets DynamoDB fill 1 MB pages (the production setting).
    /// Tests set a small value to exercise pagination. Values below 1 are read as 1.
    pub load_page_size: Option<i32>,
    /// The most Query pages one load follows before it fails (see [`DEFAULT_LOAD_PAGES_MAX`]).
    pub load_pages_max: u32,
    /// Attempts of one append cancelled for contention or throttling (at least 1).
    pub transaction_conflict_attempts_max: u32,
}

impl Default for DynamoSettings {
    fn default() -> Self {
        Self {
            tables: DynamoTables::default(),
            idempotency_ttl: DEFAULT_IDEMPOTENCY_TTL,
            load_page_size: None,
            load_pages_max: DEFAULT_LOAD_PAGES_MAX,
            transaction_conflict_attempts_max: DEFAULT_TRANSACTION_ATTEMPTS_MAX,
        }
    }
}

impl DynamoSettings {
    /// The default settings with these table names.
    pub fn with_tables(tables: DynamoTables) -> Self {
        Self {
            tables,
            ..Self::default()
        }
    }
}

/// The shared AWS configuration: the standard environment, plus bounded retries and timeouts.
///
/// Both the DynamoDB and the DynamoDB Streams clients are built from it, so `AWS_ENDPOINT_URL` sends
/// both to DynamoDB Local.
pub async fn aws_sdk_config() -> aws_config::SdkConfig {
    // Standard mode retries throttling (`ThrottlingException`, `ProvisionedThroughputExceeded`,
    // `RequestLimitExceeded`), 5xx and transport errors. The SDK's default first backoff of 1 s is
    // tuned for control planes; DynamoDB recommends starting in the tens of milliseconds.
    let retry = RetryConfig::standard()
        .with_max_attempts(SDK_MAX_ATTEMPTS)
        .with_initial_backoff(Duration::from_millis(50))
        .with_max_backoff(Duration::from_secs(5));
    // A hung connection must not hold a request (and the account locks behind it) forever.
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_attempt_timeout(Duration::from_secs(10))
        .operation_timeout(Duration::from_secs(30))
        .build();
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retry)
        .timeout_config(timeouts)
        .load()
        .await
}

/// A DynamoDB client configuration builder from [`aws_sdk_config`], for callers that add to it (tests
/// attach request-counting interceptors).
pub async fn dynamodb_config_builder() -> aws_sdk_dynamodb::config::Builder {
    aws_sdk_dynamodb::config::Builder::from(&aws_sdk_config().await)
}

/// The clients of one AWS configuration: DynamoDB for the tables, DynamoDB Streams for the poller.
#[derive(Debug, Clone)]
pub struct DynamoClients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub streams: aws_sdk_dynamodbstreams::Client,
}

/// Both clients from the standard AWS environment ([`aws_sdk_config`]), so that callers wiring the
/// adapters never handle an SDK configuration themselves.
pub async fn clients() -> DynamoClients {
    let sdk_config = aws_sdk_config().await;
    DynamoClients {
        dynamodb: aws_sdk_dynamodb::Client::new(&sdk_config),
        streams: aws_sdk_dynamodbstreams::Client::new(&sdk_config),
    }
}

/// The DynamoDB client the adapters use, configured from the standard AWS environment.
pub async fn dynamodb_client() -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::from_conf(dynamodb_config_builder().await.build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixed_tables_keep_the_default_names() {
        let tables = DynamoTables::with_prefix("t1_");
        assert_eq!(tables.events, "t1_ledger_events");
        assert_eq!(tables.idempotency, "t1_ledger_idempotency");
        assert_eq!(tables.snapshots, "t1_ledger_snapshots");
    }
}
