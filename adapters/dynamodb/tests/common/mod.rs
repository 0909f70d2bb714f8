//! Shared set-up of the tests against DynamoDB Local: the endpoint check, a client per test (optionally
//! with a request-counting interceptor) and a fresh set of uniquely named tables per test, so that the
//! tests run in parallel on one DynamoDB Local.

#![allow(dead_code, reason = "each test file uses a different part")]

use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::operation::get_item::{GetItemInput, GetItemOutput};
use aws_sdk_dynamodb::operation::put_item::{PutItemInput, PutItemOutput};
use aws_sdk_dynamodb::operation::query::{QueryInput, QueryOutput};
use aws_sdk_dynamodb::operation::transact_write_items::{
    TransactWriteItemsInput, TransactWriteItemsOutput,
};
use aws_sdk_dynamodb::types::ConsumedCapacity;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    AfterDeserializationInterceptorContextRef, BeforeSerializationInterceptorContextRef,
};
use ledger_dynamodb::config::dynamodb_config_builder;
use ledger_dynamodb::{DynamoTables, create_tables};

/// Panics (never skips) when the tests have no DynamoDB Local to talk to: without an endpoint they
/// would silently go to real AWS, or fail on credentials with a less helpful message.
pub fn require_dynamodb_local() {
    let endpoint = std::env::var_os("AWS_ENDPOINT_URL").unwrap_or_default();
    assert!(
        !endpoint.is_empty(),
        "these tests need DynamoDB Local: AWS_ENDPOINT_URL is not set. Run them through \
         scripts/test.sh, which starts DynamoDB Local and exports AWS_ENDPOINT_URL, AWS_REGION and \
         local credentials, or start it yourself and export AWS_ENDPOINT_URL=http://127.0.0.1:8000 \
         AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_REGION=us-east-1"
    );
}

/// A client for DynamoDB Local, configured exactly as production's (`dynamodb_client`).
pub async fn client() -> Client {
    require_dynamodb_local();
    Client::from_conf(dynamodb_config_builder().await.build())
}

/// A client whose every request is recorded by the returned counter.
pub async fn counted_client() -> (Client, RequestCounter) {
    require_dynamodb_local();
    let counter = RequestCounter::default();
    let config = dynamodb_config_builder()
        .await
        .interceptor(counter.clone())
        .build();
    (Client::from_conf(config), counter)
}

/// Three tables of its own for one test, created through the provisioning code under test. They
/// stay until DynamoDB Local stops; prefer [`guarded_tables`], which deletes them when the test ends.
pub async fn fresh_tables(client: &Client) -> DynamoTables {
    let prefix = format!("t{}_", uuid::Uuid::now_v7().simple());
    let tables = DynamoTables::with_prefix(&prefix);
    create_tables(client, &tables)
        .await
        .expect("create the tables on DynamoDB Local (is AWS_ENDPOINT_URL right?)");
    tables
}

/// [`fresh_tables`], and the guard that deletes them when dropped.
pub async fn guarded_tables(client: &Client) -> (DynamoTables, DropTables) {
    let tables = fresh_tables(client).await;
    (tables.clone(), DropTables(tables))
}

/// Deletes a test's tables when dropped (also when the test panics). DynamoDB Local slows down with
/// every table it holds (each events table keeps a stream), so a suite that left its tables behind
/// would make every later run against the same DynamoDB Local slower.
#[derive(Debug)]
pub struct DropTables(DynamoTables);

impl Drop for DropTables {
    fn drop(&mut self) {
        let names = [
            self.0.events.clone(),
            self.0.idempotency.clone(),
            self.0.snapshots.clone(),
        ];
        // `drop` cannot await, and the test's runtime may be busy or shutting down: delete from a
        // thread with a runtime and a client of its own, and wait for it, so nothing is left behind.
        let deleting = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                let client = Client::from_conf(dynamodb_config_builder().await.build());
                for name in names {
                    // Best effort: a table that is already gone is exactly what we want.
                    let _ = client.delete_table().table_name(name).send().await;
                }
            });
        });
        let _ = deleting.join();
    }
}

/// One request the SDK executed: its operation and the capacity DynamoDB said it consumed.
#[derive(Debug, Clone, PartialEq)]
pub struct SentRequest {
    pub operation: String,
    /// `table: units` per table, as reported with `ReturnConsumedCapacity::Total`.
    pub consumed: Vec<String>,
}

/// Counts the requests (executions, not retried attempts: `read_before_execution` runs once per
/// operation) of a client, and notes the consumed capacity each response reports.
#[derive(Debug, Clone, Default)]
pub struct RequestCounter {
    requests: Arc<Mutex<Vec<SentRequest>>>,
}

impl RequestCounter {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<SentRequest>> {
        self.requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Forgets what was counted so far.
    pub fn reset(&self) {
        self.lock().clear();
    }

    /// Everything counted since the last reset.
    pub fn requests(&self) -> Vec<SentRequest> {
        self.lock().clone()
    }

    /// The number of requests of `operation` since the last reset.
    pub fn count(&self, operation: &str) -> usize {
        self.lock()
            .iter()
            .filter(|request| request.operation == operation)
            .count()
    }

    pub fn total(&self) -> usize {
        self.lock().len()
    }
}

fn describe(capacity: &[ConsumedCapacity]) -> Vec<String> {
    capacity
        .iter()
        .map(|consumed| {
            format!(
                "{}: {} units",
                consumed.table_name().unwrap_or("?"),
                consumed
                    .capacity_units()
                    .map_or_else(|| "?".to_owned(), |units| units.to_string())
            )
        })
        .collect()
}

impl Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "RequestCounter"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // Client-level interceptors run this hook before the operation's own configuration (its
        // `Metadata`) is loaded, so the operation is told by its input's type.
        let input = context.input();
        let operation = if input.downcast_ref::<QueryInput>().is_some() {
            "Query"
        } else if input.downcast_ref::<GetItemInput>().is_some() {
            "GetItem"
        } else if input.downcast_ref::<PutItemInput>().is_some() {
            "PutItem"
        } else if input.downcast_ref::<TransactWriteItemsInput>().is_some() {
            "TransactWriteItems"
        } else {
            "other"
        }
        .to_owned();
        self.lock().push(SentRequest {
            operation,
            consumed: Vec::new(),
        });
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Ok(output) = context.output_or_error() else {
            return Ok(());
        };
        let consumed = if let Some(query) = output.downcast_ref::<QueryOutput>() {
            query.consumed_capacity().into_iter().collect::<Vec<_>>()
        } else if let Some(get) = output.downcast_ref::<GetItemOutput>() {
            get.consumed_capacity().into_iter().collect()
        } else if let Some(put) = output.downcast_ref::<PutItemOutput>() {
            put.consumed_capacity().into_iter().collect()
        } else if let Some(transaction) = output.downcast_ref::<TransactWriteItemsOutput>() {
            transaction.consumed_capacity().iter().collect()
        } else {
            Vec::new()
        };
        let consumed = describe(&consumed.into_iter().cloned().collect::<Vec<_>>());
        // Requests of one test run one after another, so the latest entry is this response's.
        if let Some(last) = self.lock().last_mut() {
            last.consumed = consumed;
        }
        Ok(())
    }
}
