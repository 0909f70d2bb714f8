//! Table provisioning for local use (`ledger create-tables`, tests): creates the events, idempotency and
//! snapshots tables if they are missing, idempotently, and finds the events table's stream.
//!
//! Production tables are described by the Pulumi program, which also turns on point-in-time recovery
//! and deletion protection; this module deliberately does neither, since DynamoDB Local ignores them
//! and production must not depend on a binary's side effects for its backups.

use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::BuildError;
use aws_sdk_dynamodb::operation::create_table::CreateTableError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    StreamSpecification, StreamViewType, TableDescription, TableStatus, TimeToLiveSpecification,
    TimeToLiveStatus,
};
use ledger_application::ports::StoreError;

use crate::config::DynamoTables;
use crate::event_store::{DynamoError, request_error};
use crate::items::{ACCOUNT_ID, CLIENT_REQUEST_ID, EXPIRES_AT, SEQUENCE};

/// How often, and how many times, a table's status is polled while it becomes ACTIVE: two minutes,
/// ample for DynamoDB (seconds) and instant on DynamoDB Local.
const POLL_INTERVAL: Duration = Duration::from_millis(500);
const POLLS_MAX: u32 = 240;

/// Creates the three tables, each PAY_PER_REQUEST, and waits until they are ACTIVE:
///
/// - `events`: `account_id` (S, hash) + `sequence` (N, range), with a NEW_IMAGE stream for the
///   projector;
/// - `idempotency`: `client_request_id` (S, hash), TTL on `expires_at`;
/// - `snapshots`: `account_id` (S, hash).
///
/// Idempotent: an existing table is kept (and checked: a different key schema, or a stream or TTL
/// set up differently, is an error rather than silently tolerated); a missing stream or TTL is
/// switched on.
pub async fn create_tables(client: &Client, tables: &DynamoTables) -> Result<(), StoreError> {
    let events = ensure_table(
        client,
        &tables.events,
        &[
            (ACCOUNT_ID, ScalarAttributeType::S, KeyType::Hash),
            (SEQUENCE, ScalarAttributeType::N, KeyType::Range),
        ],
        true,
    )
    .await?;
    ensure_stream(client, &tables.events, &events).await?;
    ensure_table(
        client,
        &tables.idempotency,
        &[(CLIENT_REQUEST_ID, ScalarAttributeType::S, KeyType::Hash)],
        false,
    )
    .await?;
    ensure_ttl(client, &tables.idempotency).await?;
    ensure_table(
        client,
        &tables.snapshots,
        &[(ACCOUNT_ID, ScalarAttributeType::S, KeyType::Hash)],
        false,
    )
    .await?;
    Ok(())
}

/// The ARN of the events table's current stream, for the DynamoDB Streams reader.
pub async fn events_stream_arn(client: &Client, table: &str) -> Result<String, StoreError> {
    let description = describe(client, table).await?;
    let enabled = description
        .stream_specification()
        .is_some_and(StreamSpecification::stream_enabled);
    match description.latest_stream_arn() {
        Some(arn) if enabled => Ok(arn.to_owned()),
        _ => Err(misconfigured(
            table,
            "has no enabled stream; run `ledger create-tables`",
        )),
    }
}

fn misconfigured(table: &str, detail: impl Into<String>) -> StoreError {
    StoreError::unavailable(DynamoError::Misconfigured {
        table: table.to_owned(),
        detail: detail.into(),
    })
}

fn built<T>(result: Result<T, BuildError>) -> Result<T, StoreError> {
    result.map_err(StoreError::unavailable)
}

/// Creates `table` with `keys` unless it exists, then waits for it and checks its key schema.
async fn ensure_table(
    client: &Client,
    table: &str,
    keys: &[(&str, ScalarAttributeType, KeyType)],
    with_stream: bool,
) -> Result<TableDescription, StoreError> {
    let mut request = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest);
    for (name, attribute_type, key_type) in keys {
        request = request
            .attribute_definitions(built(
                AttributeDefinition::builder()
                    .attribute_name(*name)
                    .attribute_type(attribute_type.clone())
                    .build(),
            )?)
            .key_schema(built(
                KeySchemaElement::builder()
                    .attribute_name(*name)
                    .key_type(key_type.clone())
                    .build(),
            )?);
    }
    if with_stream {
        request = request.stream_specification(new_image_stream()?);
    }
    match request.send().await {
        Ok(_) => tracing::info!(table, "created table"),
        Err(error)
            if matches!(
                error.as_service_error(),
                Some(CreateTableError::ResourceInUseException(_))
            ) =>
        {
            tracing::debug!(table, "table exists");
        }
        Err(error) => return Err(request_error("CreateTable", table, &error)),
    }
    let description = wait_active(client, table).await?;
    let schema_matches = description.key_schema().len() == keys.len()
        && keys.iter().all(|(name, _, key_type)| {
            description
                .key_schema()
                .iter()
                .any(|key| key.attribute_name() == *name && key.key_type() == key_type)
        });
    if !schema_matches {
        return Err(misconfigured(
            table,
            format!(
                "its key schema {:?} is not the expected {:?}",
                description.key_schema(),
                keys.iter()
                    .map(|(name, _, key_type)| (*name, key_type))
                    .collect::<Vec<_>>()
            ),
        ));
    }
    Ok(description)
}

fn new_image_stream() -> Result<StreamSpecification, StoreError> {
    built(
        StreamSpecification::builder()
            .stream_enabled(true)
            .stream_view_type(StreamViewType::NewImage)
            .build(),
    )
}

/// Switches the NEW_IMAGE stream on if the events table has none. A stream with another view type is
/// refused: changing it means disabling the stream, which loses unread records, so a human decides.
async fn ensure_stream(
    client: &Client,
    table: &str,
    description: &TableDescription,
) -> Result<(), StoreError> {
    match description.stream_specification() {
        Some(spec) if spec.stream_enabled() => {
            if spec.stream_view_type() == Some(&StreamViewType::NewImage) {
                Ok(())
            } else {
                Err(misconfigured(
                    table,
                    format!(
                        "its stream shows {:?}, the projector needs NEW_IMAGE",
                        spec.stream_view_type()
                    ),
                ))
            }
        }
        _ => {
            client
                .update_table()
                .table_name(table)
                .stream_specification(new_image_stream()?)
                .send()
                .await
                .map_err(|e| request_error("UpdateTable", table, &e))?;
            tracing::info!(table, "enabled the NEW_IMAGE stream");
            wait_active(client, table).await.map(|_| ())
        }
    }
}

/// Switches DynamoDB's TTL on `expires_at` on, unless it is already on (or being switched on).
async fn ensure_ttl(client: &Client, table: &str) -> Result<(), StoreError> {
    let current = client
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await
        .map_err(|e| request_error("DescribeTimeToLive", table, &e))?;
    if let Some(ttl) = current.time_to_live_description() {
        let on = matches!(
            ttl.time_to_live_status(),
            Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
        );
        match ttl.attribute_name() {
            Some(EXPIRES_AT) if on => return Ok(()),
            Some(other) if on => {
                return Err(misconfigured(
                    table,
                    format!("its TTL is on `{other}`, not `{EXPIRES_AT}`"),
                ));
            }
            _ => {}
        }
    }
    let specification = built(
        TimeToLiveSpecification::builder()
            .enabled(true)
            .attribute_name(EXPIRES_AT)
            .build(),
    )?;
    match client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(specification)
        .send()
        .await
    {
        Ok(_) => {
            tracing::info!(table, attribute = EXPIRES_AT, "enabled TTL");
            Ok(())
        }
        // Another `create-tables` may have switched it on between our look and our update.
        Err(error)
            if error
                .as_service_error()
                .and_then(|e| aws_sdk_dynamodb::error::ProvideErrorMetadata::message(e))
                .is_some_and(|message| message.contains("already enabled")) =>
        {
            Ok(())
        }
        Err(error) => Err(request_error("UpdateTimeToLive", table, &error)),
    }
}

async fn describe(client: &Client, table: &str) -> Result<TableDescription, StoreError> {
    client
        .describe_table()
        .table_name(table)
        .send()
        .await
        .map_err(|e| request_error("DescribeTable", table, &e))?
        .table
        .ok_or_else(|| misconfigured(table, "DescribeTable returned no description"))
}

/// Polls until `table` is ACTIVE (bounded), returning its description.
async fn wait_active(client: &Client, table: &str) -> Result<TableDescription, StoreError> {
    for _ in 0..POLLS_MAX {
        let description = describe(client, table).await?;
        if description.table_status() == Some(&TableStatus::Active) {
            return Ok(description);
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    Err(misconfigured(
        table,
        format!("not ACTIVE after {POLLS_MAX} polls {POLL_INTERVAL:?} apart"),
    ))
}
