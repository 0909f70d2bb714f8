//! The projection Lambda's handler, invoked with stream records as DynamoDB Local's stream produces
//! them (appended through the DynamoDB event store, read back with GetShardIterator/GetRecords, and
//! turned into the event JSON the Lambda service delivers), projecting into a fresh PostgreSQL
//! database: a batch lands exactly once, an undecodable image is a dead letter and not a batch item
//! failure, a failing account is reported at its first record and holds back only itself, and the
//! redelivery the ESM would make completes it in order. Also the checked-in fixture of the event's
//! documented shape.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::dynamodb::Event;
use aws_sdk_dynamodbstreams::types::{
    AttributeValue, OperationType, Record, ShardIteratorType, StreamViewType,
};
use ledger_application::ports::{
    EventStore, Projection, ReadModelQuery, StoredDeadLetter, SystemClock,
};
use ledger_application::testkit::fixtures::{
    account, at, deposited_event, multi_append, opening_and_deposits, recorded, single_append,
    transfer_events,
};
use ledger_application::{ProjectionRetry, Projector};
use ledger_dynamodb::config::{aws_sdk_config, dynamodb_config_builder};
use ledger_dynamodb::{DynamoEventStore, DynamoSettings, DynamoTables, create_tables};
use ledger_lambda::projection::{BatchOutcome, ProjectionFunction};
use ledger_postgres::PostgresReadModel;
use ledger_postgres::testkit::FreshDatabase;

/// GetRecords calls a test allows itself to see every record it appended. DynamoDB Local shows them
/// at once; the rest is headroom for a loaded machine.
const GET_RECORDS_CALLS_MAX: u32 = 50;
const GET_RECORDS_PAUSE: Duration = Duration::from_millis(100);

/// The account the failure test's trigger refuses to write.
const HELD_ACCOUNT: &str = "acc-held";

/// One test's world: tables (and so a stream) of its own on DynamoDB Local, a fresh PostgreSQL
/// database, and the function as its `main` builds it.
struct World {
    store: DynamoEventStore,
    /// To write an item behind the store's back, as a poison record needs.
    dynamodb: aws_sdk_dynamodb::Client,
    events_table: String,
    streams: aws_sdk_dynamodbstreams::Client,
    stream_arn: String,
    read_model: PostgresReadModel,
    function: ProjectionFunction,
    _database: FreshDatabase,
}

impl World {
    async fn new() -> Self {
        assert!(
            std::env::var_os("AWS_ENDPOINT_URL").is_some_and(|url| !url.is_empty()),
            "these tests need DynamoDB Local: run them through scripts/test.sh, or `source \
             scripts/dynamodb-local.sh && dynamodb_local_start` first"
        );
        let dynamodb = aws_sdk_dynamodb::Client::from_conf(dynamodb_config_builder().await.build());
        let tables = DynamoTables::with_prefix(&format!("t{}_", uuid::Uuid::now_v7().simple()));
        create_tables(&dynamodb, &tables)
            .await
            .expect("create the tables on DynamoDB Local");
        let stream_arn = ledger_dynamodb::events_stream_arn(&dynamodb, &tables.events)
            .await
            .expect("the events table has a stream");
        let database = FreshDatabase::migrated().await;
        let read_model = database.read_model().await;
        Self {
            events_table: tables.events.clone(),
            store: DynamoEventStore::new(dynamodb.clone(), DynamoSettings::with_tables(tables)),
            dynamodb,
            streams: aws_sdk_dynamodbstreams::Client::new(&aws_sdk_config().await),
            stream_arn,
            function: function_over(&read_model),
            read_model,
            _database: database,
        }
    }

    /// Appends `account_id`'s events `from..=to`: an opening at 1, then deposits of 10.00 each.
    async fn append_history(&self, account_id: &str, from: u64, to: u64) {
        let events = opening_and_deposits(account_id, from, to);
        self.store
            .append(single_append(
                &format!("append-{account_id}-{from}"),
                from - 1,
                events,
            ))
            .await
            .expect("append to DynamoDB Local");
    }

    /// A deposit of 10.00 at `sequence`, leaving `balance_after`.
    async fn append_deposit(&self, account_id: &str, sequence: u64, balance_after: &str) {
        let micros = u32::try_from(sequence).expect("small sequence");
        let event = recorded(
            account_id,
            sequence,
            deposited_event("10.00", balance_after),
            at(3, 9, micros),
        );
        self.store
            .append(single_append(
                &format!("deposit-{account_id}-{sequence}"),
                sequence - 1,
                vec![event],
            ))
            .await
            .expect("append to DynamoDB Local");
    }

    /// A transfer of 5.00 from `source` (at `source_version`, balance `source_after` afterwards) to
    /// `target`: one atomic append to both streams.
    async fn append_transfer(
        &self,
        (source, source_version, source_after): (&str, u64, &str),
        (target, target_version, target_after): (&str, u64, &str),
    ) {
        let (debit, credit) = transfer_events(source, target, "5.00", source_after, target_after);
        // Recorded no earlier than either account's latest event, as the command service does.
        let micros = u32::try_from(source_version.max(target_version) + 1).expect("small");
        self.store
            .append(multi_append(
                &format!("transfer-{source}-{source_version}"),
                vec![
                    (
                        source_version,
                        recorded(source, source_version + 1, debit, at(3, 9, micros)),
                    ),
                    (
                        target_version,
                        recorded(target, target_version + 1, credit, at(3, 9, micros)),
                    ),
                ],
            ))
            .await
            .expect("append the transfer");
    }

    /// Every record of the stream, in stream order, once `count` are there: what the ESM would hand
    /// the function (one shard, read from its trim horizon).
    async fn stream_records(&self, count: usize) -> Vec<Record> {
        let description = self
            .streams
            .describe_stream()
            .stream_arn(&self.stream_arn)
            .send()
            .await
            .expect("describe the stream");
        let shards = description
            .stream_description()
            .map(|stream| stream.shards().to_vec())
            .unwrap_or_default();
        let mut records = Vec::new();
        for shard in &shards {
            let mut iterator = self
                .streams
                .get_shard_iterator()
                .stream_arn(&self.stream_arn)
                .shard_id(shard.shard_id().expect("a shard id"))
                .shard_iterator_type(ShardIteratorType::TrimHorizon)
                .send()
                .await
                .expect("a shard iterator")
                .shard_iterator;
            for _ in 0..GET_RECORDS_CALLS_MAX {
                let Some(current) = iterator.take() else {
                    break;
                };
                let page = self
                    .streams
                    .get_records()
                    .shard_iterator(current)
                    .send()
                    .await
                    .expect("GetRecords on DynamoDB Local");
                let empty = page.records().is_empty();
                records.extend(page.records().iter().cloned());
                iterator = page.next_shard_iterator;
                if records.len() >= count {
                    break;
                }
                if empty {
                    tokio::time::sleep(GET_RECORDS_PAUSE).await;
                }
            }
        }
        assert_eq!(
            records.len(),
            count,
            "every appended event is one stream record"
        );
        records
    }

    async fn balance_and_sequence(&self, account_id: &str) -> Option<(String, u64)> {
        self.read_model
            .account(&account(account_id))
            .await
            .expect("read model query")
            .map(|view| (view.balance.to_string(), view.last_sequence))
    }

    async fn transaction_count(&self, account_id: &str) -> usize {
        self.read_model
            .transactions(&account(account_id), 0, 1_000)
            .await
            .expect("read model query")
            .len()
    }

    async fn dead_letters(&self) -> Vec<StoredDeadLetter> {
        self.read_model
            .dead_letters(100)
            .await
            .expect("read model query")
    }
}

/// The function as `ledger-projection-lambda` builds it: one projector over the read model.
fn function_over(read_model: &PostgresReadModel) -> ProjectionFunction {
    ProjectionFunction::new(Projector::new(
        Arc::new(read_model.clone()),
        Arc::new(SystemClock),
        ProjectionRetry::default(),
    ))
}

/// The event JSON the Lambda service delivers for `records` (AWS's documented shape), parsed as the
/// runtime parses it.
fn lambda_event(records: &[Record], stream_arn: &str) -> Event {
    serde_json::from_value(lambda_event_json(records, stream_arn)).expect("a DynamoDB stream event")
}

fn lambda_event_json(records: &[Record], stream_arn: &str) -> serde_json::Value {
    let records: Vec<serde_json::Value> = records
        .iter()
        .map(|record| {
            let change = record.dynamodb().expect("a stream record");
            serde_json::json!({
                "eventID": record.event_id(),
                "eventName": record.event_name().map(OperationType::as_str),
                "eventVersion": record.event_version().unwrap_or("1.1"),
                "eventSource": "aws:dynamodb",
                "awsRegion": record.aws_region().unwrap_or("us-east-1"),
                "dynamodb": {
                    "ApproximateCreationDateTime": change
                        .approximate_creation_date_time()
                        .map(aws_smithy_types_secs),
                    "Keys": dynamodb_json(change.keys()),
                    "NewImage": dynamodb_json(change.new_image()),
                    "SequenceNumber": change.sequence_number(),
                    "SizeBytes": change.size_bytes(),
                    "StreamViewType": change.stream_view_type().map(StreamViewType::as_str),
                },
                "eventSourceARN": stream_arn,
            })
        })
        .collect();
    serde_json::json!({ "Records": records })
}

/// Epoch seconds, as the Lambda service writes `ApproximateCreationDateTime`.
fn aws_smithy_types_secs(instant: &aws_sdk_dynamodbstreams::primitives::DateTime) -> i64 {
    instant.secs()
}

/// An image as DynamoDB JSON (`{"account_id": {"S": "acc-1"}, ...}`).
fn dynamodb_json(image: Option<&HashMap<String, AttributeValue>>) -> serde_json::Value {
    let item = serde_dynamo::Item::from(image.cloned().unwrap_or_default());
    serde_json::to_value(item).expect("an image as DynamoDB JSON")
}

/// The sequence number of every record, in order.
fn sequence_numbers(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .map(|record| {
            record
                .dynamodb()
                .and_then(|change| change.sequence_number())
                .expect("a positioned record")
                .to_owned()
        })
        .collect()
}

/// The account of every record, in order.
fn accounts_of(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .map(|record| {
            match record
                .dynamodb()
                .and_then(|change| change.new_image())
                .and_then(|image| image.get("account_id"))
            {
                Some(AttributeValue::S(account_id)) => account_id.clone(),
                other => panic!("no account id: {other:?}"),
            }
        })
        .collect()
}

#[tokio::test]
async fn a_batch_of_deposits_and_transfers_over_several_accounts_lands_exactly_once() {
    let world = World::new().await;
    for account_id in ["acc-a", "acc-b", "acc-c"] {
        world.append_history(account_id, 1, 2).await;
        world.append_history(account_id, 3, 4).await;
    }
    // Each holds 30.00; then a -> b and b -> c, 5.00 each.
    world
        .append_transfer(("acc-a", 4, "25.00"), ("acc-b", 4, "35.00"))
        .await;
    world
        .append_transfer(("acc-b", 5, "30.00"), ("acc-c", 4, "35.00"))
        .await;
    let records = world.stream_records(16).await;
    let event = lambda_event(&records, &world.stream_arn);

    let outcome = world.function.project(event.clone()).await;
    assert_eq!(
        outcome,
        BatchOutcome {
            records: 16,
            ..BatchOutcome::default()
        }
    );
    let expected = [
        ("acc-a", ("25.00", 5, 4)),
        ("acc-b", ("30.00", 6, 5)),
        ("acc-c", ("35.00", 5, 4)),
    ];
    let landed = async || {
        let mut landed = Vec::new();
        for (account_id, _) in expected {
            let (balance, sequence) = world
                .balance_and_sequence(account_id)
                .await
                .unwrap_or_else(|| panic!("{account_id} was projected"));
            landed.push((balance, sequence, world.transaction_count(account_id).await));
        }
        landed
    };
    let wanted: Vec<(String, u64, usize)> = expected
        .iter()
        .map(|(_, (balance, sequence, count))| ((*balance).to_owned(), *sequence, *count))
        .collect();
    assert_eq!(landed().await, wanted);

    // The ESM may deliver a batch again (a timeout, a retry): nothing changes, nothing fails.
    let response = world.function.handle(event).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    assert_eq!(landed().await, wanted, "redelivery applied nothing twice");
    assert!(world.dead_letters().await.is_empty());
}

/// An item put behind the store's back with a broken payload: its record is dead-lettered with its
/// image as DynamoDB JSON (the poller's raw form), it is not a batch item failure, its account's
/// next event waits behind it, and the other account flows.
#[tokio::test]
async fn an_undecodable_image_is_a_dead_letter_not_a_batch_item_failure() {
    let world = World::new().await;
    world.append_history("acc-p", 1, 1).await;
    let good = recorded("acc-p", 2, deposited_event("10.00", "10.00"), at(3, 9, 2));
    let mut item = ledger_dynamodb::items::event_item(
        &ledger_application::codec::encode(&good).expect("encode"),
    );
    item.insert(
        "payload".to_owned(),
        aws_sdk_dynamodb::types::AttributeValue::S("{".to_owned()),
    );
    world
        .dynamodb
        .put_item()
        .table_name(&world.events_table)
        .set_item(Some(item))
        .send()
        .await
        .expect("put the poison item");
    world.append_history("acc-p", 3, 3).await;
    world.append_history("acc-q", 1, 2).await;
    let records = world.stream_records(5).await;

    let response = world
        .function
        .handle(lambda_event(&records, &world.stream_arn))
        .await;
    assert!(
        response.batch_item_failures.is_empty(),
        "a dead letter lets the shard move on: {response:?}"
    );
    assert_eq!(
        world.balance_and_sequence("acc-q").await,
        Some(("10.00".to_owned(), 2))
    );
    assert_eq!(
        world.balance_and_sequence("acc-p").await.map(|(_, s)| s),
        Some(1)
    );
    let letters = world.dead_letters().await;
    assert_eq!(letters.len(), 2, "{letters:?}");
    let (head, waiting) = (&letters[0].letter, &letters[1].letter);
    assert_eq!((head.sequence, waiting.sequence), (Some(2), Some(3)));
    assert!(head.reason.starts_with("undecodable"), "{}", head.reason);
    assert!(
        head.raw
            .starts_with(r#"{"account_id":{"S":"acc-p"},"event_id":"#)
            && head.raw.contains(r#""payload":{"S":"{"}"#),
        "the image as sorted DynamoDB JSON: {}",
        head.raw
    );
    assert_eq!(waiting.waiting_behind, Some(letters[0].id));
}

/// A trigger refuses every write of one account's row: that account's first record is the one batch
/// item failure, its later records are not applied, every other account is; once the trigger is
/// gone, the redelivery the ESM makes (from the reported record on) completes it in order and
/// meets the others' records as duplicates.
#[tokio::test]
async fn a_failing_account_is_reported_at_its_first_record_and_holds_back_only_itself() {
    let world = World::new().await;
    world.append_history("acc-a", 1, 2).await;
    world.append_history(HELD_ACCOUNT, 1, 2).await;
    world.append_history("acc-c", 1, 3).await;
    world.append_history(HELD_ACCOUNT, 3, 3).await;
    // 10.00 and 20.00 before: the held account's credit lands after its own deposits.
    world
        .append_transfer(("acc-a", 2, "5.00"), (HELD_ACCOUNT, 3, "25.00"))
        .await;
    world.append_deposit("acc-a", 4, "15.00").await;
    let records = world.stream_records(11).await;
    let positions = sequence_numbers(&records);
    let accounts = accounts_of(&records);
    let first_held = accounts
        .iter()
        .position(|account_id| account_id == HELD_ACCOUNT)
        .expect("the held account has records");
    assert!(first_held > 0, "another account's record comes first");

    sqlx::raw_sql(
        "CREATE FUNCTION refuse_held_account() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN RAISE EXCEPTION 'the test refuses writes of account %', NEW.account_id; END $$; \
         CREATE TRIGGER refuse_held_account BEFORE INSERT OR UPDATE ON accounts FOR EACH ROW \
         WHEN (NEW.account_id = 'acc-held') EXECUTE FUNCTION refuse_held_account();",
    )
    .execute(world.read_model.pool())
    .await
    .expect("install the trigger");

    let outcome = world
        .function
        .project(lambda_event(&records, &world.stream_arn))
        .await;
    assert!(outcome.fell_back, "{outcome:?}");
    assert_eq!(
        outcome.failed_sequence_numbers,
        vec![positions[first_held].clone()],
        "exactly the held account's first record"
    );
    assert_eq!(world.balance_and_sequence(HELD_ACCOUNT).await, None);
    assert_eq!(world.transaction_count(HELD_ACCOUNT).await, 0);
    assert_eq!(
        world.balance_and_sequence("acc-a").await,
        Some(("15.00".to_owned(), 4))
    );
    assert_eq!(
        world.balance_and_sequence("acc-c").await,
        Some(("20.00".to_owned(), 3))
    );
    assert!(
        world.dead_letters().await.is_empty(),
        "an outage is no dead letter"
    );

    sqlx::raw_sql("DROP TRIGGER refuse_held_account ON accounts")
        .execute(world.read_model.pool())
        .await
        .expect("drop the trigger");
    // The ESM's retry: the batch from the lowest reported sequence number on.
    let redelivered = &records[first_held..];
    let outcome = world
        .function
        .project(lambda_event(redelivered, &world.stream_arn))
        .await;
    assert_eq!(
        outcome,
        BatchOutcome {
            records: redelivered.len(),
            ..BatchOutcome::default()
        }
    );
    assert_eq!(
        world.balance_and_sequence(HELD_ACCOUNT).await,
        Some(("25.00".to_owned(), 4))
    );
    assert_eq!(world.transaction_count(HELD_ACCOUNT).await, 3);
    assert_eq!(
        world.balance_and_sequence("acc-a").await,
        Some(("15.00".to_owned(), 4))
    );
    assert_eq!(world.transaction_count("acc-a").await, 3, "nothing twice");
    assert_eq!(world.transaction_count("acc-c").await, 2);
    assert!(world.dead_letters().await.is_empty());
}

/// The checked-in event in AWS's documented shape (`tests/events/dynamodb-stream.json`, records as
/// DynamoDB Local's stream produced them): accepted and projected.
#[tokio::test]
async fn the_checked_in_stream_event_is_projected() {
    let event: Event = serde_json::from_str(include_str!("events/dynamodb-stream.json"))
        .expect("the fixture parses as a DynamoDB stream event");
    let database = FreshDatabase::migrated().await;
    let read_model = database.read_model().await;
    let response = function_over(&read_model).handle(event).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let view = read_model
        .account(&account("acc-fixture"))
        .await
        .expect("read model query")
        .expect("the fixture's account was projected");
    assert_eq!(
        (view.balance.to_string(), view.last_sequence),
        ("10.00".to_owned(), 2)
    );
    assert_eq!(
        read_model
            .last_sequence(&account("acc-fixture"))
            .await
            .expect("read"),
        2
    );
}

/// Writes the fixture from a real stream when `LEDGER_WRITE_STREAM_FIXTURE` names a path: how
/// `tests/events/dynamodb-stream.json` was made. Without it, it checks that the fixture holds the
/// same records a fresh stream gives for the same appends (positions and ids aside).
#[tokio::test]
async fn the_fixture_is_what_dynamodb_local_streams_for_its_appends() {
    let world = World::new().await;
    world.append_history("acc-fixture", 1, 2).await;
    let records = world.stream_records(2).await;
    let produced = lambda_event_json(&records, &world.stream_arn);
    if let Some(path) = std::env::var_os("LEDGER_WRITE_STREAM_FIXTURE") {
        let text = serde_json::to_string_pretty(&produced).expect("json");
        std::fs::write(path, text + "\n").expect("write the fixture");
    }
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("events/dynamodb-stream.json")).expect("fixture json");
    // Event ids are fresh UUIDs and positions differ per stream: the rest is compared, together
    // with the shape (the field names of each record and of its `dynamodb` part).
    let comparable = |event: &serde_json::Value| -> Vec<serde_json::Value> {
        event["Records"]
            .as_array()
            .expect("records")
            .iter()
            .map(|record| {
                let mut image = record["dynamodb"]["NewImage"].clone();
                image.as_object_mut().expect("an image").remove("event_id");
                let names = |value: &serde_json::Value| -> Vec<String> {
                    let mut names: Vec<String> = value
                        .as_object()
                        .expect("an object")
                        .keys()
                        .cloned()
                        .collect();
                    names.sort();
                    names
                };
                serde_json::json!([
                    names(record),
                    names(&record["dynamodb"]),
                    record["eventName"],
                    record["dynamodb"]["Keys"],
                    image,
                ])
            })
            .collect()
    };
    assert_eq!(comparable(&fixture), comparable(&produced));
}
