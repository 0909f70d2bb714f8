//! The DynamoDB Streams poller against DynamoDB Local, projecting into a real SQLite read model on a
//! temp file: everything appended is projected, a restart resumes at its checkpoints without applying
//! anything twice, a failure mid-batch loses nothing, an idle stream is not polled in a busy loop, and
//! shutdown is prompt. Each test has tables (and so a stream) of its own.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_dynamodbstreams::config::interceptors::BeforeSerializationInterceptorContextRef;
use aws_sdk_dynamodbstreams::config::{ConfigBag, Intercept};
use aws_sdk_dynamodbstreams::operation::describe_stream::DescribeStreamInput;
use aws_sdk_dynamodbstreams::operation::get_records::GetRecordsInput;
use aws_sdk_dynamodbstreams::operation::get_shard_iterator::GetShardIteratorInput;
use aws_smithy_runtime_api::box_error::BoxError;
use ledger_application::ports::{
    ApplyOutcome, DeadLetter, DeadLetterId, EventStore, Projection, ProjectionCheckpoints,
    ReadModelQuery, ReadModelUpdate, ShardCheckpoint, StoreError, StoredDeadLetter, SystemClock,
};
use ledger_application::testkit::fixtures::{
    account, at, balance, deposited_event, multi_append, opening_and_deposits, recorded,
    single_append, transfer_events,
};
use ledger_application::{ProjectionRetry, Projector};
use ledger_domain::AccountId;
use ledger_dynamodb::config::aws_sdk_config;
use ledger_dynamodb::streams::{PollReport, StreamPoller, StreamPollerConfig};
use ledger_dynamodb::{DynamoEventStore, DynamoSettings, events_stream_arn};
use ledger_sqlite::{SqliteCheckpoints, SqliteDatabase, SqliteReadModel};
use tokio::sync::watch;

/// Rounds a test allows the poller to catch up with what was appended. DynamoDB Local shows records
/// in the stream at once, so one or two rounds do; the rest is headroom for a loaded machine.
const CATCH_UP_ROUNDS_MAX: u32 = 50;
const CATCH_UP_PAUSE: Duration = Duration::from_millis(100);

/// Counts the requests of the Streams client by operation (executions, not retried attempts).
#[derive(Debug, Clone, Default)]
struct StreamsRequests {
    by_operation: Arc<Mutex<BTreeMap<String, usize>>>,
}

impl StreamsRequests {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, usize>> {
        self.by_operation
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn reset(&self) {
        self.lock().clear();
    }

    fn snapshot(&self) -> BTreeMap<String, usize> {
        self.lock().clone()
    }
}

impl Intercept for StreamsRequests {
    fn name(&self) -> &'static str {
        "StreamsRequests"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // Named by the input's type: the one operation-independent handle the context offers here.
        let input = context.input();
        let operation = if input.downcast_ref::<GetRecordsInput>().is_some() {
            "GetRecords"
        } else if input.downcast_ref::<GetShardIteratorInput>().is_some() {
            "GetShardIterator"
        } else if input.downcast_ref::<DescribeStreamInput>().is_some() {
            "DescribeStream"
        } else {
            "other"
        };
        *self.lock().entry(operation.to_owned()).or_default() += 1;
        Ok(())
    }
}

/// One test's world: its own tables and stream on DynamoDB Local, a read model on a temp file.
struct World {
    store: DynamoEventStore,
    /// To write items behind the store's back, as a poison record needs.
    client: aws_sdk_dynamodb::Client,
    events_table: String,
    streams: aws_sdk_dynamodbstreams::Client,
    requests: StreamsRequests,
    stream_arn: String,
    read_model: Arc<SqliteReadModel>,
    checkpoints: Arc<SqliteCheckpoints>,
    _db: SqliteDatabase,
    _dir: tempfile::TempDir,
}

impl World {
    async fn new() -> Self {
        let client = common::client().await;
        let tables = common::fresh_tables(&client).await;
        let stream_arn = events_stream_arn(&client, &tables.events)
            .await
            .expect("the events table has a stream");
        let requests = StreamsRequests::default();
        let streams = aws_sdk_dynamodbstreams::Client::from_conf(
            aws_sdk_dynamodbstreams::config::Builder::from(&aws_sdk_config().await)
                .interceptor(requests.clone())
                .build(),
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let db = SqliteDatabase::open(&dir.path().join("read-model.db"))
            .await
            .expect("open the SQLite read model");
        Self {
            events_table: tables.events.clone(),
            store: DynamoEventStore::new(client.clone(), DynamoSettings::with_tables(tables)),
            client,
            streams,
            requests,
            stream_arn,
            read_model: Arc::new(db.read_model()),
            checkpoints: Arc::new(db.checkpoints()),
            _db: db,
            _dir: dir,
        }
    }

    /// A poller as a fresh process would build it: new projector, state only in the checkpoints.
    fn poller(&self) -> StreamPoller {
        self.poller_with(StreamPollerConfig::default())
    }

    fn poller_with(&self, config: StreamPollerConfig) -> StreamPoller {
        self.poller_over(self.read_model.clone(), self.checkpoints.clone(), config)
    }

    fn poller_over(
        &self,
        projection: Arc<dyn Projection>,
        checkpoints: Arc<dyn ProjectionCheckpoints>,
        config: StreamPollerConfig,
    ) -> StreamPoller {
        let projector = Projector::new(
            projection,
            Arc::new(SystemClock),
            ProjectionRetry {
                attempts_per_event_max: 3,
                retry_delay: Duration::from_millis(10),
            },
        );
        StreamPoller::new(
            self.streams.clone(),
            self.stream_arn.clone(),
            checkpoints,
            projector,
            config,
        )
    }

    /// Appends `account`'s events `from..=to`: an opening at 1, then deposits of 10.00 each.
    async fn append_history(&self, account_id: &str, from: u64, to: u64) {
        let events = opening_and_deposits(account_id, from, to);
        let key = format!("append-{account_id}-{from}");
        self.store
            .append(single_append(&key, from - 1, events))
            .await
            .expect("append to DynamoDB Local");
    }

    async fn balance_and_sequence(&self, account_id: &str) -> (String, u64) {
        let view = self
            .read_model
            .account(&account(account_id))
            .await
            .expect("read model query")
            .unwrap_or_else(|| panic!("{account_id} was projected"));
        (view.balance.to_string(), view.last_sequence)
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

/// The sum of `poller`'s rounds until `applied` events were applied, or the bound ran out.
async fn catch_up(poller: &StreamPoller, applied: usize) -> PollReport {
    let mut total = PollReport::default();
    for _ in 0..CATCH_UP_ROUNDS_MAX {
        let report = poller.poll_once().await.expect("a round on DynamoDB Local");
        total.records += report.records;
        total.applied += report.applied;
        total.duplicates += report.duplicates;
        total.dead_lettered += report.dead_lettered;
        total.waiting += report.waiting;
        total.skipped += report.skipped;
        if total.applied >= applied {
            return total;
        }
        tokio::time::sleep(CATCH_UP_PAUSE).await;
    }
    panic!("only {total:?} after {CATCH_UP_ROUNDS_MAX} rounds, expected {applied} applied");
}

/// Polls once more and checks that nothing new arrives: no event was held back for later.
async fn assert_drained(poller: &StreamPoller) {
    let report = poller.poll_once().await.expect("a round on DynamoDB Local");
    assert!(report.is_idle(), "nothing should be left: {report:?}");
}

#[tokio::test]
async fn every_event_of_several_accounts_is_projected() {
    let world = World::new().await;
    for account_id in ["acc-a", "acc-b", "acc-c"] {
        world.append_history(account_id, 1, 2).await;
        world.append_history(account_id, 3, 4).await;
    }
    // A transfer appends to two streams in one transaction: 30.00 - 5.00 and 30.00 + 5.00.
    let (debit, credit) = transfer_events("acc-a", "acc-b", "5.00", "25.00", "35.00");
    world
        .store
        .append(multi_append(
            "transfer-1",
            vec![
                (4, recorded("acc-a", 5, debit, at(3, 10, 1))),
                (4, recorded("acc-b", 5, credit, at(3, 10, 1))),
            ],
        ))
        .await
        .expect("append the transfer");

    let poller = world.poller();
    let total = catch_up(&poller, 14).await;
    assert_eq!(total.applied, 14, "{total:?}");
    assert_eq!(
        total.records, 14,
        "each event is one stream record: {total:?}"
    );
    assert_eq!(
        (total.duplicates, total.dead_lettered, total.skipped),
        (0, 0, 0)
    );
    assert_drained(&poller).await;

    assert_eq!(
        world.balance_and_sequence("acc-a").await,
        (balance("25.00").to_string(), 5)
    );
    assert_eq!(
        world.balance_and_sequence("acc-b").await,
        (balance("35.00").to_string(), 5)
    );
    assert_eq!(
        world.balance_and_sequence("acc-c").await,
        (balance("30.00").to_string(), 4)
    );
    assert_eq!(world.transaction_count("acc-a").await, 4);
    assert_eq!(world.transaction_count("acc-b").await, 4);
    assert_eq!(world.transaction_count("acc-c").await, 3);
    assert!(world.dead_letters().await.is_empty());
}

/// A record whose image cannot be decoded (an item put behind the store's back with a broken
/// payload): dead-lettered with its image, the account's next event waiting behind it, the other
/// account flowing; after the item is repaired, a redrive applies both in order.
#[tokio::test]
async fn a_poison_record_is_dead_lettered_with_its_image_and_redriven_after_a_fix() {
    let world = World::new().await;
    world.append_history("acc-p", 1, 1).await;
    let good = recorded("acc-p", 2, deposited_event("10.00", "10.00"), at(3, 9, 2));
    let mut item = ledger_dynamodb::items::event_item(
        &ledger_application::codec::encode(&good).expect("encode"),
    );
    let repaired = item.clone();
    item.insert(
        "payload".to_owned(),
        aws_sdk_dynamodb::types::AttributeValue::S("{not json".to_owned()),
    );
    world
        .client
        .put_item()
        .table_name(&world.events_table)
        .set_item(Some(item))
        .send()
        .await
        .expect("put the poison item");
    world.append_history("acc-p", 3, 3).await;
    world.append_history("acc-q", 1, 2).await;

    let poller = world.poller();
    let mut total = PollReport::default();
    for _ in 0..CATCH_UP_ROUNDS_MAX {
        let report = poller.poll_once().await.expect("a round on DynamoDB Local");
        total.applied += report.applied;
        total.dead_lettered += report.dead_lettered;
        total.waiting += report.waiting;
        if (total.applied, total.dead_lettered, total.waiting) == (3, 1, 1) {
            break;
        }
        tokio::time::sleep(CATCH_UP_PAUSE).await;
    }
    assert_eq!(
        (total.applied, total.dead_lettered, total.waiting),
        (3, 1, 1),
        "{total:?}"
    );
    assert_eq!(world.balance_and_sequence("acc-q").await.1, 2);
    assert_eq!(world.balance_and_sequence("acc-p").await.1, 1);
    let letters = world.dead_letters().await;
    assert_eq!(letters.len(), 2, "{letters:?}");
    let (head, waiting) = (&letters[0], &letters[1]);
    assert_eq!(head.letter.sequence, Some(2));
    assert!(
        head.letter.raw.contains(r#""payload":{"S":"{not json"}"#),
        "the image is kept as DynamoDB JSON: {}",
        head.letter.raw
    );
    assert!(head.letter.reason.starts_with("undecodable"), "{head:?}");
    assert_eq!(waiting.letter.sequence, Some(3));
    assert_eq!(waiting.letter.waiting_behind, Some(head.id));
    assert_drained(&poller).await;

    world
        .client
        .put_item()
        .table_name(&world.events_table)
        .set_item(Some(repaired))
        .send()
        .await
        .expect("repair the item");
    let redrive_projector = Projector::new(
        world.read_model.clone(),
        Arc::new(SystemClock),
        ProjectionRetry::default(),
    );
    let redriven = redrive_projector
        .redrive(&world.store, head.id)
        .await
        .expect("redrive");
    assert_eq!(
        (redriven.applied, redriven.resolved),
        (2, 2),
        "{redriven:?}"
    );
    assert_eq!(
        world.balance_and_sequence("acc-p").await,
        (balance("20.00").to_string(), 3)
    );
    assert!(world.dead_letters().await.is_empty());
}

#[tokio::test]
async fn a_restarted_poller_resumes_at_its_checkpoints_and_applies_nothing_twice() {
    let world = World::new().await;
    world.append_history("acc-a", 1, 3).await;
    world.append_history("acc-b", 1, 2).await;
    {
        let first = world.poller();
        catch_up(&first, 5).await;
        assert_drained(&first).await;
    } // The first process stops here; only its checkpoints remain.

    world.append_history("acc-a", 4, 6).await;
    world.append_history("acc-b", 3, 3).await;
    world.append_history("acc-c", 1, 2).await;
    let second = world.poller();
    let total = catch_up(&second, 6).await;
    // Resumed after the checkpoint: the old records were not even delivered again.
    assert_eq!(total.records, 6, "{total:?}");
    assert_eq!(total.applied, 6, "{total:?}");
    assert_eq!(total.duplicates, 0, "{total:?}");
    assert_drained(&second).await;

    assert_eq!(world.balance_and_sequence("acc-a").await.1, 6);
    assert_eq!(world.balance_and_sequence("acc-b").await.1, 3);
    assert_eq!(world.balance_and_sequence("acc-c").await.1, 2);
    assert_eq!(world.transaction_count("acc-a").await, 5);
    assert_eq!(world.transaction_count("acc-b").await, 2);
    assert_eq!(world.transaction_count("acc-c").await, 1);
    assert!(world.dead_letters().await.is_empty());
}

/// The read model with a switch that makes it unavailable after a number of applies.
struct FailingProjection {
    inner: Arc<SqliteReadModel>,
    applies_left: Mutex<Option<usize>>,
}

impl FailingProjection {
    fn failing_after(inner: Arc<SqliteReadModel>, applies: usize) -> Self {
        Self {
            inner,
            applies_left: Mutex::new(Some(applies)),
        }
    }

    fn heal(&self) {
        *self
            .applies_left
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }
}

#[async_trait]
impl Projection for FailingProjection {
    async fn last_sequence(&self, account_id: &AccountId) -> Result<u64, StoreError> {
        self.inner.last_sequence(account_id).await
    }

    async fn apply(&self, update: &ReadModelUpdate) -> Result<ApplyOutcome, StoreError> {
        {
            let mut left = self
                .applies_left
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match left.as_mut() {
                Some(0) => return Err(StoreError::unavailable("read model down (test)")),
                Some(n) => *n -= 1,
                None => {}
            }
        }
        self.inner.apply(update).await
    }

    /// While a failure is armed, batches are refused, so that the projector goes event by event
    /// and the outage strikes in the middle of a delivered batch, as the test means it to; once
    /// healed, batches pass through.
    async fn apply_batch(&self, updates: &[ReadModelUpdate]) -> Result<bool, StoreError> {
        let armed = self
            .applies_left
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some();
        if armed {
            return Ok(false);
        }
        self.inner.apply_batch(updates).await
    }

    async fn record_dead_letter(&self, letter: &DeadLetter) -> Result<DeadLetterId, StoreError> {
        self.inner.record_dead_letter(letter).await
    }

    async fn dead_letters(&self, limit: usize) -> Result<Vec<StoredDeadLetter>, StoreError> {
        self.inner.dead_letters(limit).await
    }

    async fn dead_letter(&self, id: DeadLetterId) -> Result<Option<StoredDeadLetter>, StoreError> {
        self.inner.dead_letter(id).await
    }

    async fn blocking_dead_letter(
        &self,
        account_id: &AccountId,
    ) -> Result<Option<StoredDeadLetter>, StoreError> {
        self.inner.blocking_dead_letter(account_id).await
    }

    async fn resolve_dead_letters(
        &self,
        account_id: &AccountId,
        through_sequence: u64,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64, StoreError> {
        self.inner
            .resolve_dead_letters(account_id, through_sequence, at)
            .await
    }
}

/// Checkpoints that record every save, to see what the poller claimed and when.
struct RecordingCheckpoints {
    inner: Arc<SqliteCheckpoints>,
    saved: Mutex<Vec<ShardCheckpoint>>,
}

#[async_trait]
impl ProjectionCheckpoints for RecordingCheckpoints {
    async fn feed_checkpoint(&self, reader: &str) -> Result<Option<u64>, StoreError> {
        self.inner.feed_checkpoint(reader).await
    }

    async fn save_feed_checkpoint(&self, reader: &str, position: u64) -> Result<(), StoreError> {
        self.inner.save_feed_checkpoint(reader, position).await
    }

    async fn shard_checkpoint(
        &self,
        stream: &str,
        shard_id: &str,
    ) -> Result<Option<ShardCheckpoint>, StoreError> {
        self.inner.shard_checkpoint(stream, shard_id).await
    }

    async fn save_shard_checkpoint(
        &self,
        stream: &str,
        shard_id: &str,
        checkpoint: &ShardCheckpoint,
    ) -> Result<(), StoreError> {
        self.saved
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(checkpoint.clone());
        self.inner
            .save_shard_checkpoint(stream, shard_id, checkpoint)
            .await
    }
}

#[tokio::test]
async fn a_projection_outage_mid_batch_saves_no_checkpoint_and_loses_nothing() {
    let world = World::new().await;
    world.append_history("acc-a", 1, 4).await;
    world.append_history("acc-b", 1, 2).await;
    let projection = Arc::new(FailingProjection::failing_after(
        world.read_model.clone(),
        3,
    ));
    let checkpoints = Arc::new(RecordingCheckpoints {
        inner: world.checkpoints.clone(),
        saved: Mutex::new(Vec::new()),
    });
    let poller = world.poller_over(
        projection.clone(),
        checkpoints.clone(),
        StreamPollerConfig::default(),
    );

    // Every record arrives in one batch; the fourth apply fails, so the round stops there.
    let error = poller
        .poll_once()
        .await
        .expect_err("the read model is down after three applies");
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
    assert!(
        checkpoints
            .saved
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_empty(),
        "no checkpoint may be saved for a batch that was not fully projected"
    );

    // The read model is back: the batch is delivered again; what was applied is skipped.
    projection.heal();
    let total = catch_up(&poller, 3).await;
    assert_eq!(total.records, 6, "{total:?}");
    assert_eq!((total.applied, total.duplicates), (3, 3), "{total:?}");
    assert_drained(&poller).await;
    assert_eq!(world.balance_and_sequence("acc-a").await.1, 4);
    assert_eq!(world.balance_and_sequence("acc-b").await.1, 2);
    assert_eq!(world.transaction_count("acc-a").await, 3);
    assert_eq!(world.transaction_count("acc-b").await, 1);
    assert!(world.dead_letters().await.is_empty());
}

#[tokio::test]
async fn an_idle_stream_is_not_polled_in_a_busy_loop() {
    let world = World::new().await;
    world.append_history("acc-a", 1, 2).await;
    let poller = Arc::new(world.poller());
    catch_up(&poller, 2).await;

    world.requests.reset();
    let (stop, shutdown) = watch::channel(false);
    let running = tokio::spawn({
        let poller = poller.clone();
        async move { poller.run(shutdown).await }
    });
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let during_idle = world.requests.snapshot();
    stop.send(true).expect("the poller listens");
    tokio::time::timeout(Duration::from_secs(2), running)
        .await
        .expect("run returns after shutdown")
        .expect("run does not panic");

    // Pauses of 0.1, 0.2, 0.4 and 0.8 s fit five rounds into 1.5 s, each one GetRecords on the one
    // shard (the listing is remembered). A busy loop would make hundreds.
    let total: usize = during_idle.values().sum();
    assert!(
        (1..=8).contains(&total),
        "{total} Streams requests in 1.5 s of idling: {during_idle:?}"
    );
    assert!(
        during_idle.get("GetRecords").copied().unwrap_or(0) <= 6,
        "{during_idle:?}"
    );
}

#[tokio::test]
async fn a_running_poller_projects_what_is_appended_while_it_idles() {
    let world = World::new().await;
    let poller = Arc::new(world.poller());
    let (stop, shutdown) = watch::channel(false);
    let running = tokio::spawn({
        let poller = poller.clone();
        async move { poller.run(shutdown).await }
    });

    // Appended after the poller has backed off on the empty stream: picked up all the same.
    tokio::time::sleep(Duration::from_millis(700)).await;
    world.append_history("acc-a", 1, 3).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let projected = world
            .read_model
            .account(&account("acc-a"))
            .await
            .expect("read model query")
            .is_some_and(|view| view.last_sequence == 3);
        if projected {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "events were not projected by the running poller"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(true).expect("the poller listens");
    tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .expect("run returns after shutdown")
        .expect("run does not panic");
    assert_eq!(world.transaction_count("acc-a").await, 2);
    let letters = world.dead_letters().await;
    assert!(letters.is_empty(), "{letters:?}");
}

#[tokio::test]
async fn shutdown_cuts_an_idle_pause_short() {
    let world = World::new().await;
    world.append_history("acc-a", 1, 1).await;
    // Idle pauses of ten seconds: a poller that slept them out could not pass the bound below.
    let poller = Arc::new(world.poller_with(StreamPollerConfig {
        idle_backoff_first: Duration::from_secs(10),
        idle_backoff_max: Duration::from_secs(10),
        ..StreamPollerConfig::default()
    }));
    let (stop, shutdown) = watch::channel(false);
    let running = tokio::spawn({
        let poller = poller.clone();
        async move { poller.run(shutdown).await }
    });
    // The first round projects the event, the second finds nothing and starts a long pause.
    let deadline = Instant::now() + Duration::from_secs(10);
    while world
        .read_model
        .account(&account("acc-a"))
        .await
        .expect("query")
        .is_none()
    {
        assert!(Instant::now() < deadline, "the event was not projected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    let asked = Instant::now();
    stop.send(true).expect("the poller listens");
    tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .expect("run returns after shutdown")
        .expect("run does not panic");
    let took = asked.elapsed();
    assert!(took < Duration::from_secs(1), "shutdown took {took:?}");
}

#[tokio::test]
async fn run_returns_when_the_shutdown_sender_is_dropped() {
    let world = World::new().await;
    let poller = world.poller();
    let (stop, shutdown) = watch::channel(false);
    drop(stop);
    tokio::time::timeout(Duration::from_secs(2), poller.run(shutdown))
        .await
        .expect("nobody can stop it any more, so it stops");
}

/// The paths DynamoDB Local cannot take (it never splits a shard, trims, or expires an iterator in a
/// test's time), against a scripted DynamoDB Streams: a fake HTTP client answering the three
/// operations from shards the test lays out. The read model is the in-memory one.
mod scripted {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use aws_sdk_dynamodbstreams::config::retry::RetryConfig;
    use aws_sdk_dynamodbstreams::config::{BehaviorVersion, Credentials, Region};
    use aws_smithy_runtime_api::client::http::{
        HttpConnector, HttpConnectorFuture, SharedHttpConnector, http_client_fn,
    };
    use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
    use aws_smithy_runtime_api::http::StatusCode;
    use ledger_application::codec;
    use ledger_application::memory::{InMemoryCheckpoints, InMemoryReadModel};
    use ledger_application::ports::{
        Projection, ProjectionCheckpoints, ReadModelQuery, ShardCheckpoint, SystemClock,
    };
    use ledger_application::testkit::fixtures::{account, opening_and_deposits};
    use ledger_application::{ProjectionRetry, Projector};
    use ledger_dynamodb::items::event_item;
    use ledger_dynamodb::streams::{PollReport, StreamPoller, StreamPollerConfig};
    use serde_json::{Value, json};

    const STREAM_ARN: &str = "arn:aws:dynamodb:us-east-1:000000000000:table/events/stream/x";

    #[derive(Debug)]
    struct FakeRecord {
        sequence_number: u64,
        event_name: &'static str,
        image: Value,
    }

    #[derive(Debug)]
    struct FakeShard {
        id: &'static str,
        parent: Option<&'static str>,
        closed: bool,
        records: Vec<FakeRecord>,
        /// Records before this index were trimmed away.
        trimmed_before: usize,
    }

    #[derive(Debug, Default)]
    struct FakeStream {
        /// In listing order.
        shards: Vec<FakeShard>,
        next_sequence_number: u64,
        /// Answer the next GetRecords with ExpiredIteratorException.
        expire_next_iterator: bool,
        /// Operations served, in order.
        calls: Vec<String>,
    }

    /// A scripted stream, shared by the test and the fake HTTP client.
    #[derive(Debug, Clone, Default)]
    struct Script(Arc<Mutex<FakeStream>>);

    fn image_of(account_id: &str, sequence: u64) -> Value {
        let event = opening_and_deposits(account_id, sequence, sequence)
            .pop()
            .expect("one event");
        let encoded = codec::encode(&event).expect("encode");
        let attributes = event_item(&encoded)
            .into_iter()
            .map(|(name, value)| {
                let value = match value {
                    aws_sdk_dynamodb::types::AttributeValue::S(s) => json!({ "S": s }),
                    aws_sdk_dynamodb::types::AttributeValue::N(n) => json!({ "N": n }),
                    other => panic!("unexpected attribute {other:?}"),
                };
                (name, value)
            })
            .collect::<serde_json::Map<_, _>>();
        Value::Object(attributes)
    }

    impl Script {
        fn lock(&self) -> std::sync::MutexGuard<'_, FakeStream> {
            self.0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        }

        fn shard(&self, id: &'static str, parent: Option<&'static str>) {
            self.lock().shards.push(FakeShard {
                id,
                parent,
                closed: false,
                records: Vec::new(),
                trimmed_before: 0,
            });
        }

        fn with_shard<T>(&self, id: &str, change: impl FnOnce(&mut FakeShard) -> T) -> T {
            let mut stream = self.lock();
            let shard = stream
                .shards
                .iter_mut()
                .find(|shard| shard.id == id)
                .expect("a scripted shard");
            change(shard)
        }

        /// Writes `account_id`'s events `from..=to` into `shard` (a new sequence number each).
        fn write(&self, shard_id: &str, account_id: &str, from: u64, to: u64) {
            for sequence in from..=to {
                self.record(shard_id, "INSERT", image_of(account_id, sequence));
            }
        }

        fn record(&self, shard_id: &str, event_name: &'static str, image: Value) {
            let sequence_number = {
                let mut stream = self.lock();
                stream.next_sequence_number += 100;
                stream.next_sequence_number
            };
            self.with_shard(shard_id, |shard| {
                assert!(!shard.closed, "no writes to a closed shard");
                shard.records.push(FakeRecord {
                    sequence_number,
                    event_name,
                    image,
                });
            });
        }

        fn close(&self, shard_id: &str) {
            self.with_shard(shard_id, |shard| shard.closed = true);
        }

        /// Drops the shard's oldest `count` records, as the 24-hour retention does.
        fn trim(&self, shard_id: &str, count: usize) {
            self.with_shard(shard_id, |shard| shard.trimmed_before += count);
        }

        fn expire_next_iterator(&self) {
            self.lock().expire_next_iterator = true;
        }

        fn calls(&self, operation: &str) -> usize {
            self.lock().calls.iter().filter(|c| *c == operation).count()
        }

        fn client(&self) -> aws_sdk_dynamodbstreams::Client {
            let script = self.clone();
            let config = aws_sdk_dynamodbstreams::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new("us-east-1"))
                .credentials_provider(Credentials::new("local", "local", None, None, "test"))
                // Every scripted error is meant for the poller, not for the SDK's retries.
                .retry_config(RetryConfig::disabled())
                .http_client(http_client_fn(move |_, _| {
                    SharedHttpConnector::new(script.clone())
                }))
                .build();
            aws_sdk_dynamodbstreams::Client::from_conf(config)
        }

        fn answer(&self, request: &HttpRequest) -> (u16, Value) {
            let target = request.headers().get("x-amz-target").unwrap_or_default();
            let operation = target.rsplit('.').next().unwrap_or_default().to_owned();
            let body: Value = serde_json::from_slice(request.body().bytes().unwrap_or_default())
                .expect("a JSON request");
            let mut stream = self.lock();
            stream.calls.push(operation.clone());
            match operation.as_str() {
                "DescribeStream" => (200, stream.describe()),
                "GetShardIterator" => stream.get_shard_iterator(&body),
                "GetRecords" => stream.get_records(&body),
                other => panic!("unscripted operation {other}"),
            }
        }
    }

    fn error(kind: &str) -> (u16, Value) {
        (
            400,
            json!({ "__type": format!("com.amazonaws.dynamodb.v20120810#{kind}"), "message": kind }),
        )
    }

    impl FakeStream {
        fn describe(&self) -> Value {
            let shards: Vec<Value> = self
                .shards
                .iter()
                .map(|shard| {
                    let mut range = json!({ "StartingSequenceNumber": "1" });
                    if shard.closed {
                        let end = shard.records.last().map_or(1, |r| r.sequence_number);
                        range["EndingSequenceNumber"] = json!(end.to_string());
                    }
                    let mut listed = json!({ "ShardId": shard.id, "SequenceNumberRange": range });
                    if let Some(parent) = shard.parent {
                        listed["ParentShardId"] = json!(parent);
                    }
                    listed
                })
                .collect();
            json!({ "StreamDescription": {
                "StreamArn": STREAM_ARN,
                "StreamStatus": "ENABLED",
                "StreamViewType": "NEW_IMAGE",
                "Shards": shards,
            }})
        }

        fn find(&self, id: &str) -> &FakeShard {
            self.shards
                .iter()
                .find(|s| s.id == id)
                .expect("a listed shard")
        }

        fn get_shard_iterator(&self, body: &Value) -> (u16, Value) {
            let shard = self.find(body["ShardId"].as_str().expect("ShardId"));
            let index = match body["ShardIteratorType"].as_str() {
                Some("TRIM_HORIZON") => shard.trimmed_before,
                Some("AFTER_SEQUENCE_NUMBER") => {
                    let after: u64 = body["SequenceNumber"]
                        .as_str()
                        .and_then(|s| s.parse().ok())
                        .expect("a sequence number");
                    let held = &shard.records[shard.trimmed_before..];
                    if held
                        .first()
                        .is_none_or(|first| after < first.sequence_number)
                    {
                        return error("TrimmedDataAccessException");
                    }
                    shard.trimmed_before + held.partition_point(|r| r.sequence_number <= after)
                }
                other => panic!("unscripted iterator type {other:?}"),
            };
            (
                200,
                json!({ "ShardIterator": format!("{}|{index}", shard.id) }),
            )
        }

        fn get_records(&mut self, body: &Value) -> (u16, Value) {
            if std::mem::take(&mut self.expire_next_iterator) {
                return error("ExpiredIteratorException");
            }
            let iterator = body["ShardIterator"].as_str().expect("ShardIterator");
            let (shard_id, index) = iterator.split_once('|').expect("a scripted iterator");
            let index: usize = index.parse().expect("an index");
            let limit = usize::try_from(body["Limit"].as_i64().unwrap_or(1_000)).expect("limit");
            let shard = self.find(shard_id);
            if index < shard.trimmed_before {
                return error("TrimmedDataAccessException");
            }
            let end = (index + limit).min(shard.records.len());
            let records: Vec<Value> = shard.records[index..end]
                .iter()
                .map(|record| {
                    json!({
                        "eventID": format!("e{}", record.sequence_number),
                        "eventName": record.event_name,
                        "eventSource": "aws:dynamodb",
                        "dynamodb": {
                            "SequenceNumber": record.sequence_number.to_string(),
                            "NewImage": record.image,
                            "StreamViewType": "NEW_IMAGE",
                        },
                    })
                })
                .collect();
            let mut answer = json!({ "Records": records });
            if !(shard.closed && end == shard.records.len()) {
                answer["NextShardIterator"] = json!(format!("{shard_id}|{end}"));
            }
            (200, answer)
        }
    }

    impl HttpConnector for Script {
        fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
            let (status, body) = self.answer(&request);
            let mut response = HttpResponse::new(
                StatusCode::try_from(status).expect("a status"),
                body.to_string().into(),
            );
            response
                .headers_mut()
                .insert("content-type", "application/x-amz-json-1.0");
            HttpConnectorFuture::ready(Ok(response))
        }
    }

    struct Setup {
        script: Script,
        read_model: Arc<InMemoryReadModel>,
        checkpoints: Arc<InMemoryCheckpoints>,
    }

    impl Setup {
        fn new() -> Self {
            Self {
                script: Script::default(),
                read_model: Arc::new(InMemoryReadModel::new()),
                checkpoints: Arc::new(InMemoryCheckpoints::new()),
            }
        }

        fn poller(&self, config: StreamPollerConfig) -> StreamPoller {
            let projection: Arc<dyn Projection> = self.read_model.clone();
            let projector = Projector::new(
                projection,
                Arc::new(SystemClock),
                ProjectionRetry {
                    attempts_per_event_max: 2,
                    retry_delay: Duration::from_millis(1),
                },
            );
            StreamPoller::new(
                self.script.client(),
                STREAM_ARN.to_owned(),
                self.checkpoints.clone(),
                projector,
                config,
            )
        }

        async fn last_sequence(&self, account_id: &str) -> u64 {
            self.read_model
                .account(&account(account_id))
                .await
                .expect("query")
                .map_or(0, |view| view.last_sequence)
        }

        async fn checkpoint(&self, shard_id: &str) -> Option<ShardCheckpoint> {
            self.checkpoints
                .shard_checkpoint(STREAM_ARN, shard_id)
                .await
                .expect("checkpoint")
        }

        async fn dead_letter_count(&self) -> usize {
            self.read_model
                .dead_letters(100)
                .await
                .expect("dead letters")
                .len()
        }
    }

    async fn round(poller: &StreamPoller) -> PollReport {
        poller.poll_once().await.expect("a scripted round")
    }

    #[tokio::test]
    async fn a_split_shard_is_read_to_its_end_before_its_children() {
        let setup = Setup::new();
        let script = &setup.script;
        // The children are listed first: the listing order must not decide the reading order.
        script.shard("child-a", Some("parent"));
        script.shard("child-b", Some("parent"));
        script.shard("parent", None);
        script.write("parent", "acc-a", 1, 2);
        script.write("parent", "acc-b", 1, 1);
        script.close("parent");
        script.write("child-a", "acc-a", 3, 4);
        script.write("child-b", "acc-b", 2, 2);

        let report = round(&setup.poller(StreamPollerConfig::default())).await;
        assert_eq!((report.applied, report.dead_lettered), (6, 0), "{report:?}");
        assert_eq!(report.shards_finished, 1, "{report:?}");
        assert_eq!(setup.last_sequence("acc-a").await, 4);
        assert_eq!(setup.last_sequence("acc-b").await, 2);
        assert_eq!(
            setup.checkpoint("parent").await,
            Some(ShardCheckpoint {
                sequence_number: Some("300".to_owned()),
                finished: true,
            })
        );
        assert_eq!(
            setup.checkpoint("child-a").await.map(|c| c.finished),
            Some(false)
        );
        assert_eq!(setup.dead_letter_count().await, 0);
    }

    #[tokio::test]
    async fn a_child_waits_for_a_parent_that_takes_several_rounds() {
        let setup = Setup::new();
        let script = &setup.script;
        script.shard("parent", None);
        script.shard("child", Some("parent"));
        script.write("parent", "acc-a", 1, 5);
        script.close("parent");
        script.write("child", "acc-a", 6, 6);
        // Two records per request, two requests per shard per round: the parent needs two rounds.
        let poller = setup.poller(StreamPollerConfig {
            records_per_request: 2,
            requests_per_shard_per_round: 2,
            ..StreamPollerConfig::default()
        });

        let first = round(&poller).await;
        assert_eq!((first.applied, first.shards_waiting), (4, 1), "{first:?}");
        assert_eq!(setup.last_sequence("acc-a").await, 4);
        let second = round(&poller).await;
        assert_eq!(
            (second.applied, second.shards_finished),
            (2, 1),
            "{second:?}"
        );
        assert_eq!(setup.last_sequence("acc-a").await, 6);
        assert_eq!(setup.dead_letter_count().await, 0);
        // The child was read in the same round as its parent's end. The closed parent makes the
        // next round list the stream again, for any child the listing did not know yet.
        assert_eq!(script.calls("DescribeStream"), 1);
        assert!(round(&poller).await.is_idle());
        assert_eq!(script.calls("DescribeStream"), 2);
    }

    #[tokio::test]
    async fn an_expired_iterator_is_renewed_at_the_checkpoint() {
        let setup = Setup::new();
        let script = &setup.script;
        script.shard("only", None);
        script.write("only", "acc-a", 1, 2);
        let poller = setup.poller(StreamPollerConfig::default());
        assert_eq!(round(&poller).await.applied, 2);

        script.write("only", "acc-a", 3, 4);
        script.expire_next_iterator();
        let report = round(&poller).await;
        assert_eq!((report.applied, report.duplicates), (2, 0), "{report:?}");
        assert_eq!(setup.last_sequence("acc-a").await, 4);
        // One at the start, one to replace the expired one.
        assert_eq!(script.calls("GetShardIterator"), 2);
    }

    #[tokio::test]
    async fn trimmed_records_are_reported_and_reading_goes_on_from_the_oldest_left() {
        let setup = Setup::new();
        let script = &setup.script;
        script.shard("only", None);
        script.write("only", "acc-a", 1, 2);
        assert_eq!(
            round(&setup.poller(StreamPollerConfig::default()))
                .await
                .applied,
            2
        );

        // While no poller ran, 3 and 4 were written and the retention trimmed 1 to 3: event 3 is
        // lost to the stream, so 4 can never be applied; acc-b is untouched by the loss.
        script.write("only", "acc-a", 3, 4);
        script.write("only", "acc-b", 1, 1);
        script.trim("only", 3);
        let report = round(&setup.poller(StreamPollerConfig::default())).await;
        assert_eq!(
            (report.applied, report.dead_lettered, report.trimmed),
            (1, 1, 1),
            "{report:?}"
        );
        assert_eq!(setup.last_sequence("acc-a").await, 2);
        assert_eq!(setup.last_sequence("acc-b").await, 1);
        let letters = setup.read_model.dead_letters(10).await.expect("letters");
        assert_eq!(letters.len(), 2, "{letters:?}");
        // The loss itself, named by shard and checkpoint: it needs a rebuild, and says so.
        let loss = &letters[0].letter;
        assert_eq!((loss.account_id.as_ref(), loss.sequence), (None, None));
        assert!(loss.reason.contains("trimmed"), "{loss:?}");
        assert!(loss.reason.contains("rebuild"), "{loss:?}");
        assert!(loss.raw.contains("\"shard_id\":\"only\""), "{loss:?}");
        // And the event that can no longer follow its account's last one.
        assert_eq!(letters[1].letter.sequence, Some(4));
        assert!(letters[1].letter.reason.starts_with("gap"), "{letters:?}");
        // The poller moved past the loss instead of stalling on it.
        assert_eq!(
            setup
                .checkpoint("only")
                .await
                .and_then(|c| c.sequence_number),
            Some("500".to_owned())
        );
    }

    #[tokio::test]
    async fn modifies_and_removes_are_skipped_and_checkpointed_past() {
        let setup = Setup::new();
        let script = &setup.script;
        script.shard("only", None);
        script.write("only", "acc-a", 1, 1);
        script.record("only", "MODIFY", image_of("acc-a", 1));
        script.record("only", "REMOVE", image_of("acc-a", 1));
        script.write("only", "acc-a", 2, 2);
        let report = round(&setup.poller(StreamPollerConfig::default())).await;
        assert_eq!((report.applied, report.skipped), (2, 2), "{report:?}");
        assert_eq!(setup.last_sequence("acc-a").await, 2);
        assert_eq!(
            setup
                .checkpoint("only")
                .await
                .and_then(|c| c.sequence_number),
            Some("400".to_owned())
        );
    }

    #[tokio::test]
    async fn an_idle_open_shard_costs_one_request_per_round() {
        let setup = Setup::new();
        setup.script.shard("only", None);
        let poller = setup.poller(StreamPollerConfig::default());
        for _ in 0..3 {
            assert!(round(&poller).await.is_idle());
        }
        // The listing and the iterator are remembered between rounds.
        assert_eq!(setup.script.calls("DescribeStream"), 1);
        assert_eq!(setup.script.calls("GetShardIterator"), 1);
        assert_eq!(setup.script.calls("GetRecords"), 3);
        assert_eq!(setup.checkpoint("only").await, None);
    }
}
