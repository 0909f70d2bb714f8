//! What the port contract cannot say about DynamoDB: pagination, the 100-action limit on the wire,
//! request counts and consumed capacity of appends and loads (with and without a snapshot), table
//! provisioning, and how damaged or missing data is reported.
//!
//! Run with `--nocapture` to see the measured requests and consumed capacity.

mod common;

use std::sync::Arc;

use aws_sdk_dynamodb::types::{StreamViewType, TimeToLiveStatus};
use ledger_application::RecordedEvent;
use ledger_application::codec;
use ledger_application::ports::{
    AppendError, AtomicAppend, EventStore, HealthCheck, MAX_ACTIONS_PER_APPEND, Snapshot,
    SnapshotStore, StoreError, StreamAppend,
};
use ledger_application::testkit::fixtures::{
    account, at, deposited_event, multi_append, opened_event, recorded, scoped_key, single_append,
    transfer_events,
};
use ledger_domain::{Account, AccountId};
use ledger_dynamodb::items::{self, EXPIRES_AT, RECORDED_AT};
use ledger_dynamodb::{
    DynamoError, DynamoEventStore, DynamoSettings, DynamoSnapshotStore, DynamoTables,
    create_tables, events_stream_arn,
};

use common::RequestCounter;

/// The events of an account opened and then credited 1.00 `count - 1` times: sequences 1..=count.
fn history(account_id: &str, count: u64) -> Vec<RecordedEvent> {
    (1..=count)
        .map(|sequence| {
            let event = if sequence == 1 {
                opened_event()
            } else {
                deposited_event("1.00", &format!("{}.00", sequence - 1))
            };
            let micros = u32::try_from(sequence).expect("small");
            recorded(account_id, sequence, event, at(1, 9, micros))
        })
        .collect()
}

/// Appends `events` (one stream, from sequence 1) in appends of `per_append` events, each one
/// transaction with its own idempotency key. At most 98 per append: with the record and the check of
/// the predecessor, that is the transaction's limit of 100 actions.
async fn append_in_chunks(store: &dyn EventStore, events: &[RecordedEvent], per_append: usize) {
    for (index, chunk) in events.chunks(per_append).enumerate() {
        let expected_version = chunk[0].sequence - 1;
        let key = format!("seed-{}-{index}", chunk[0].account_id);
        store
            .append(single_append(&key, expected_version, chunk.to_vec()))
            .await
            .expect("seed append");
    }
}

/// What a command handler does to get an account: the newest snapshot, then the events after it.
async fn load_account(
    snapshots: &dyn SnapshotStore,
    store: &dyn EventStore,
    account_id: &AccountId,
) -> (Option<Account>, usize) {
    let snapshot = snapshots.latest(account_id).await.expect("snapshot");
    let (state, after) = match snapshot {
        Some(snapshot) => {
            let version = snapshot.version();
            let state = Account::restore(account_id, snapshot.state).expect("a valid snapshot");
            (Some(state), version)
        }
        None => (None, 0),
    };
    let tail = store.load(account_id, after).await.expect("tail");
    let account = Account::replay_onto(account_id, state, tail.iter().map(|e| &e.event))
        .expect("a valid history");
    (account, tail.len())
}

fn report(what: &str, counter: &RequestCounter) {
    let requests = counter.requests();
    println!("{what}: {} request(s)", requests.len());
    for request in requests {
        println!("    {} consumed {:?}", request.operation, request.consumed);
    }
}

fn settings(tables: DynamoTables, page_size: Option<i32>) -> DynamoSettings {
    DynamoSettings {
        load_page_size: page_size,
        ..DynamoSettings::with_tables(tables)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_with_more_events_than_one_page_loads_completely() {
    let (client, counter) = common::counted_client().await;
    let (tables, _drop_tables) = common::guarded_tables(&client).await;
    let store = DynamoEventStore::new(client, settings(tables, Some(7)));
    let events = history("acc-paged", 50);
    append_in_chunks(&store, &events, 9).await;

    counter.reset();
    let loaded = store.load(&account("acc-paged"), 0).await.expect("load");
    assert_eq!(loaded, events, "every event of every page, in order");
    // 7 full pages of 7, then one of 1 without a LastEvaluatedKey.
    assert_eq!(counter.count("Query"), 8);

    counter.reset();
    let tail = store.load(&account("acc-paged"), 20).await.expect("tail");
    assert_eq!(tail, events[20..].to_vec());
    assert_eq!(counter.count("Query"), 5, "30 events in pages of 7");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_past_its_page_bound_fails_instead_of_growing_without_end() {
    let client = common::client().await;
    let (tables, _drop_tables) = common::guarded_tables(&client).await;
    let store = DynamoEventStore::new(
        client,
        DynamoSettings {
            load_page_size: Some(7),
            load_pages_max: 3,
            ..DynamoSettings::with_tables(tables)
        },
    );
    append_in_chunks(&store, &history("acc-long", 30), 30).await;
    let error = store
        .load(&account("acc-long"), 0)
        .await
        .expect_err("30 events do not fit in 3 pages of 7");
    let StoreError::Unavailable(source) = &error else {
        panic!("expected Unavailable, got {error:?}");
    };
    assert!(
        matches!(
            source.downcast_ref::<DynamoError>(),
            Some(DynamoError::LoadTooLong { pages_max: 3, .. })
        ),
        "{error:?}"
    );
    assert_eq!(
        store
            .load(&account("acc-long"), 20)
            .await
            .expect("a short tail")
            .len(),
        10,
        "a tail within the bound still loads"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_than_100_actions_are_too_large_and_nothing_is_sent() {
    let (client, counter) = common::counted_client().await;
    let (tables, _drop_tables) = common::guarded_tables(&client).await;
    let store = DynamoEventStore::new(client, settings(tables, None));
    let events = history("acc-big", 101);

    counter.reset();
    let error = store
        .append(single_append("too-many", 0, events[..100].to_vec()))
        .await
        .expect_err("101 actions");
    assert!(
        matches!(error, AppendError::TooLarge { actions: 101, max } if max == MAX_ACTIONS_PER_APPEND),
        "{error:?}"
    );
    // A transfer-shaped append over the limit: 50 + 50 events and the record.
    let other = history("acc-big-2", 50);
    let two_streams = AtomicAppend::new(
        vec![
            StreamAppend {
                account_id: account("acc-big"),
                expected_version: 0,
                events: events[..50].to_vec(),
            },
            StreamAppend {
                account_id: account("acc-big-2"),
                expected_version: 0,
                events: other,
            },
        ],
        single_append("two-streams", 0, events[..1].to_vec())
            .idempotency()
            .clone(),
    )
    .expect("well-formed");
    let error = store.append(two_streams).await.expect_err("101 actions");
    assert!(
        matches!(error, AppendError::TooLarge { actions: 101, .. }),
        "{error:?}"
    );
    assert_eq!(counter.total(), 0, "refused before any request is sent");

    assert!(
        store
            .load(&account("acc-big"), 0)
            .await
            .expect("load")
            .is_empty()
    );
    assert!(
        store
            .load(&account("acc-big-2"), 0)
            .await
            .expect("load")
            .is_empty()
    );
    store
        .append(single_append("at-limit", 0, events[..99].to_vec()))
        .await
        .expect("99 events and the record are exactly the limit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposit_and_a_transfer_are_one_transaction_each() {
    let (client, counter) = common::counted_client().await;
    let (tables, _drop_tables) = common::guarded_tables(&client).await;
    let store = DynamoEventStore::new(client, settings(tables, None));
    for id in ["acc-a", "acc-b"] {
        store
            .append(single_append(
                &format!("open-{id}"),
                0,
                vec![recorded(id, 1, opened_event(), at(2, 9, 0))],
            ))
            .await
            .expect("open");
    }

    counter.reset();
    let deposit = recorded("acc-a", 2, deposited_event("100.00", "100.00"), at(2, 9, 1));
    store
        .append(single_append("deposit-1", 1, vec![deposit]))
        .await
        .expect("deposit");
    report("deposit (1 event + record)", &counter);
    assert_eq!(counter.total(), 1);
    assert_eq!(counter.count("TransactWriteItems"), 1);

    counter.reset();
    let (debit, credit) = transfer_events("acc-a", "acc-b", "30.00", "70.00", "30.00");
    store
        .append(multi_append(
            "transfer-1",
            vec![
                (2, recorded("acc-a", 3, debit, at(2, 9, 2))),
                (1, recorded("acc-b", 2, credit, at(2, 9, 2))),
            ],
        ))
        .await
        .expect("transfer");
    report("transfer (2 events + record)", &counter);
    assert_eq!(counter.total(), 1);
    assert_eq!(counter.count("TransactWriteItems"), 1);

    counter.reset();
    let record = store
        .idempotency_record(&scoped_key("transfer-1"))
        .await
        .expect("read");
    assert!(record.is_some());
    report("idempotency record look-up", &counter);
    assert_eq!(counter.count("GetItem"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loading_1000_events_through_a_snapshot_takes_two_requests() {
    let (client, counter) = common::counted_client().await;
    let (tables, _drop_tables) = common::guarded_tables(&client).await;
    let paged = settings(tables.clone(), Some(100));
    let store = DynamoEventStore::new(client.clone(), paged.clone());
    let snapshots = DynamoSnapshotStore::new(client.clone(), paged.clone());

    let short = history("acc-short", 10);
    append_in_chunks(&store, &short, 98).await;
    let long = history("acc-long", 1_000);
    append_in_chunks(&store, &long, 98).await;
    let id = account("acc-long");
    let everything = Account::replay(&id, long.iter().map(|e| &e.event))
        .expect("valid")
        .expect("opened");
    // The newest snapshot 10 events behind the head, as a snapshot every 100 events may leave it.
    let at_990 = Account::replay(&id, long[..990].iter().map(|e| &e.event))
        .expect("valid")
        .expect("opened");
    assert!(
        snapshots
            .save(&Snapshot {
                account_id: id.clone(),
                state: at_990.snapshot(),
                taken_at: at(3, 9, 0),
            })
            .await
            .expect("save snapshot")
    );

    counter.reset();
    let (account_10, tail) = load_account(&snapshots, &store, &account("acc-short")).await;
    report("load of 10 events, no snapshot (GetItem + Query)", &counter);
    assert_eq!(account_10.map(|a| a.version()), Some(10));
    assert_eq!(tail, 10);
    assert_eq!(counter.total(), 2);

    counter.reset();
    let (account_1000, tail) = load_account(&snapshots, &store, &id).await;
    report("load of 1,000 events via snapshot at 990 + tail", &counter);
    assert_eq!(
        account_1000.as_ref(),
        Some(&everything),
        "snapshot + tail = full replay"
    );
    assert_eq!(tail, 10);
    assert!(
        counter.total() <= 2,
        "GetItem of the snapshot + one Query page, whatever the history's length"
    );
    assert_eq!(counter.count("GetItem"), 1);
    assert_eq!(counter.count("Query"), 1);

    counter.reset();
    assert_eq!(store.load(&id, 0).await.expect("load").len(), 1_000);
    report(
        "load of 1,000 events without snapshot, pages of 100",
        &counter,
    );
    // ceil(1000 / 100) full pages, plus the empty page that a full last page's key leads to.
    assert!(counter.count("Query") >= 10);
    assert!(counter.count("Query") <= 11);

    counter.reset();
    let one_megabyte_pages = DynamoEventStore::new(client, settings(tables, None));
    assert_eq!(
        one_megabyte_pages.load(&id, 0).await.expect("load").len(),
        1_000
    );
    report(
        "load of 1,000 events without snapshot, 1 MB pages",
        &counter,
    );
    assert!(counter.count("Query") >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_tables_is_idempotent_and_the_events_table_streams_new_images() {
    let client = common::client().await;
    let (tables, _drop_tables) = common::guarded_tables(&client).await;
    create_tables(&client, &tables)
        .await
        .expect("creating existing tables is fine");

    let events = client
        .describe_table()
        .table_name(&tables.events)
        .send()
        .await
        .expect("describe")
        .table
        .expect("a description");
    let stream = events.stream_specification().expect("a stream");
    assert!(stream.stream_enabled());
    assert_eq!(stream.stream_view_type(), Some(&StreamViewType::NewImage));
    assert_eq!(
        events_stream_arn(&client, &tables.events)
            .await
            .expect("arn"),
        events.latest_stream_arn().expect("a stream arn")
    );

    let ttl = client
        .describe_time_to_live()
        .table_name(&tables.idempotency)
        .send()
        .await
        .expect("describe ttl");
    let ttl = ttl.time_to_live_description().expect("a TTL description");
    assert_eq!(ttl.attribute_name(), Some(EXPIRES_AT));
    assert!(matches!(
        ttl.time_to_live_status(),
        Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
    ));

    let error = events_stream_arn(&client, &tables.snapshots)
        .await
        .expect_err("the snapshots table has no stream");
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_record_expires_one_ttl_after_it_was_recorded() {
    let client = common::client().await;
    let (tables, _drop_tables) = common::guarded_tables(&client).await;
    let settings = settings(tables.clone(), None);
    let ttl = settings.idempotency_ttl;
    let store = DynamoEventStore::new(client.clone(), settings);
    let append = single_append(
        "ttl-1",
        0,
        vec![recorded("acc-1", 1, opened_event(), at(4, 9, 0))],
    );
    // The fixture's recorded_at is months old: the retention must run from the write, or DynamoDB's
    // TTL could delete the record at once and let the key be used twice.
    let before = chrono::Utc::now();
    store.append(append).await.expect("append");
    let after = chrono::Utc::now();
    let item = client
        .get_item()
        .table_name(&tables.idempotency)
        .set_key(Some(items::idempotency_key(&scoped_key("ttl-1"))))
        .consistent_read(true)
        .send()
        .await
        .expect("get")
        .item
        .expect("the record");
    let expires_at: i64 = match item.get(EXPIRES_AT) {
        Some(aws_sdk_dynamodb::types::AttributeValue::N(n)) => n.parse().expect("epoch seconds"),
        other => panic!("expires_at is a number: {other:?}"),
    };
    let ttl = i64::try_from(ttl.as_secs()).expect("small");
    assert!(
        (before.timestamp() + ttl..=after.timestamp() + ttl).contains(&expires_at),
        "expires_at {expires_at} is the write time plus the TTL"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_items_and_gaps_are_corrupt_not_skipped() {
    let client = common::client().await;
    let (tables, _drop_tables) = common::guarded_tables(&client).await;
    let store = DynamoEventStore::new(client.clone(), settings(tables.clone(), None));
    let put = |event: &RecordedEvent, damage: Option<&str>| {
        let mut item = items::event_item(&codec::encode(event).expect("encode"));
        if let Some(text) = damage {
            item.insert(RECORDED_AT.to_owned(), items::string(text));
        }
        client
            .put_item()
            .table_name(&tables.events)
            .set_item(Some(item))
            .send()
    };
    let events = history("acc-gap", 3);
    put(&events[0], None).await.expect("put 1");
    put(&events[2], None).await.expect("put 3");
    let error = store.load(&account("acc-gap"), 0).await.expect_err("a gap");
    assert!(matches!(error, StoreError::Corrupt { .. }), "{error:?}");

    let damaged = history("acc-damaged", 1);
    put(&damaged[0], Some("not a time")).await.expect("put");
    let error = store
        .load(&account("acc-damaged"), 0)
        .await
        .expect_err("damaged");
    assert!(matches!(error, StoreError::Corrupt { .. }), "{error:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_tables_are_unavailable_not_a_panic() {
    let client = common::client().await;
    let missing = DynamoTables::with_prefix(&format!("missing{}_", uuid::Uuid::now_v7().simple()));
    let store = Arc::new(DynamoEventStore::new(
        client.clone(),
        settings(missing.clone(), None),
    ));
    let error = store
        .load(&account("acc-1"), 0)
        .await
        .expect_err("no table");
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
    let error = store
        .append(single_append(
            "k",
            0,
            vec![recorded("acc-1", 1, opened_event(), at(5, 9, 0))],
        ))
        .await
        .expect_err("no table");
    assert!(
        matches!(error, AppendError::Store(StoreError::Unavailable(_))),
        "{error:?}"
    );
    assert!(store.check().await.is_err(), "the health check fails");

    let snapshots = DynamoSnapshotStore::new(client.clone(), settings(missing, None));
    let error = snapshots
        .latest(&account("acc-1"))
        .await
        .expect_err("no table");
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");

    let (tables, _drop_tables) = common::guarded_tables(&client).await;
    let healthy = DynamoEventStore::new(client, settings(tables, None));
    healthy
        .check()
        .await
        .expect("a provisioned store is healthy");
}
