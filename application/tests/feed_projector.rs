//! The feed projector under writes that never stop (checkpoint cadence and prompt shutdown, on
//! tokio's paused clock and a deterministic single-threaded schedule), and a poison entry in the
//! feed: dead-lettered with its raw form, its account's later events waiting behind it, every other
//! account flowing, and a redrive that applies them all in order.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use ledger_application::memory::{InMemoryCheckpoints, InMemoryEventStore, InMemoryReadModel};
use ledger_application::ports::{
    EventFeed, EventStore, FeedEntry, FeedEvent, HealthCheck, Projection, ProjectionCheckpoints,
    StoreError, SystemClock, UndecodableEvent,
};
use ledger_application::testkit::fixtures::{
    account, at, deposited_event, opened_event, recorded, single_append,
};
use ledger_application::{DeadLetterCheck, FeedProjector, FeedProjectorConfig, ProjectionRetry};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

const READER: &str = "sustained";

/// Scheduler turns the test grants the projector before giving up on what it waits for. Each turn
/// is one batch at most, so this is a bound, never a timing.
const TURNS_MAX: usize = 200;

/// A feed that yields to the scheduler before every read, so that the writer task appends between
/// any two batches: with the writer adding more per turn than a batch holds, the feed never drains.
struct YieldingFeed {
    store: Arc<InMemoryEventStore>,
}

#[async_trait]
impl EventFeed for YieldingFeed {
    async fn read_after(
        &self,
        after_position: u64,
        limit: usize,
    ) -> Result<Vec<FeedEvent>, StoreError> {
        tokio::task::yield_now().await;
        self.store.read_after(after_position, limit).await
    }
}

/// A writer that never stops until told: each turn opens `per_turn` new accounts, then yields.
struct Writer {
    stop: Arc<AtomicBool>,
    written: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl Writer {
    async fn start(store: Arc<InMemoryEventStore>, wake: Arc<Notify>, per_turn: u64) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let written = Arc::new(AtomicU64::new(0));
        // A first turn before the projector starts, so that it never finds the feed empty.
        write_turn(&store, &written, per_turn).await;
        let task = tokio::spawn({
            let (stop, written) = (Arc::clone(&stop), Arc::clone(&written));
            async move {
                while !stop.load(Ordering::Relaxed) {
                    write_turn(&store, &written, per_turn).await;
                    wake.notify_one();
                    tokio::task::yield_now().await;
                }
            }
        });
        Self {
            stop,
            written,
            task,
        }
    }

    fn is_writing(&self) -> bool {
        !self.task.is_finished()
    }

    async fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("writer");
        self.written.load(Ordering::Relaxed)
    }
}

async fn write_turn(store: &InMemoryEventStore, written: &AtomicU64, per_turn: u64) {
    for _ in 0..per_turn {
        let n = written.fetch_add(1, Ordering::Relaxed);
        let id = format!("w-{n}");
        store
            .append(single_append(
                &format!("open-{id}"),
                0,
                vec![recorded(&id, 1, opened_event(), at(1, 8, 0))],
            ))
            .await
            .expect("append");
    }
}

struct Running {
    checkpoints: Arc<InMemoryCheckpoints>,
    writer: Writer,
    stop_projector: watch::Sender<bool>,
    projector: JoinHandle<()>,
}

/// A projector following a feed that a writer keeps filling, `per_turn` events for each batch of
/// `config.batch_size`.
async fn running(config: FeedProjectorConfig) -> Running {
    let store = Arc::new(InMemoryEventStore::new());
    let read_model = Arc::new(InMemoryReadModel::new());
    let checkpoints = Arc::new(InMemoryCheckpoints::new());
    let wake = Arc::new(Notify::new());
    let per_turn = 2 * config.batch_size as u64;
    let writer = Writer::start(Arc::clone(&store), Arc::clone(&wake), per_turn).await;
    let projector = FeedProjector::new(
        READER,
        Arc::new(YieldingFeed { store }),
        read_model as Arc<dyn Projection>,
        Arc::clone(&checkpoints) as Arc<dyn ProjectionCheckpoints>,
        Arc::new(SystemClock),
        config,
        wake,
    );
    let (stop_projector, stopped) = watch::channel(false);
    let projector = tokio::spawn(async move { projector.run(stopped).await });
    Running {
        checkpoints,
        writer,
        stop_projector,
        projector,
    }
}

impl Running {
    async fn checkpoint(&self) -> Option<u64> {
        self.checkpoints
            .feed_checkpoint(READER)
            .await
            .expect("checkpoint")
    }

    /// Gives the other tasks turns until the stored checkpoint reaches `at_least`.
    async fn checkpoint_reaches(&self, at_least: u64) -> Option<u64> {
        for _ in 0..TURNS_MAX {
            tokio::task::yield_now().await;
            if self.checkpoint().await.is_some_and(|c| c >= at_least) {
                break;
            }
        }
        self.checkpoint().await
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn the_checkpoint_is_stored_every_thousand_events_while_writes_never_stop() {
    let config = FeedProjectorConfig {
        // Time stands still on the paused clock unless the test moves it: only the count can fire.
        checkpoint_interval: Duration::from_hours(1),
        ..FeedProjectorConfig::default()
    };
    assert_eq!(config.checkpoint_every_events, 1_000);
    let running = running(config).await;
    let stored = running.checkpoint_reaches(3_000).await;
    assert!(
        stored.is_some_and(|c| c >= 3_000),
        "the checkpoint follows the events while busy: {stored:?}"
    );
    assert!(running.writer.is_writing(), "the writes never stopped");
    let _ = running.stop_projector.send(true);
    running.projector.await.expect("projector");
    let written = running.writer.stop().await;
    assert!(
        written > stored.unwrap_or(0),
        "the feed was never drained: {written} written"
    );
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn the_checkpoint_is_stored_every_second_while_writes_never_stop() {
    let config = FeedProjectorConfig {
        checkpoint_every_events: u64::MAX,
        ..FeedProjectorConfig::default()
    };
    let running = running(config).await;
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
    assert_eq!(
        running.checkpoint().await,
        None,
        "neither the count nor the interval was reached, and the feed never fell idle"
    );
    tokio::time::advance(Duration::from_millis(1_100)).await;
    let stored = running.checkpoint_reaches(1).await;
    assert!(stored.is_some(), "a second passed while busy: stored");
    assert!(running.writer.is_writing());
    let _ = running.stop_projector.send(true);
    running.projector.await.expect("projector");
    running.writer.stop().await;
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn shutdown_returns_after_the_batch_in_hand_while_writes_never_stop() {
    let config = FeedProjectorConfig {
        checkpoint_interval: Duration::from_hours(1),
        checkpoint_every_events: u64::MAX,
        ..FeedProjectorConfig::default()
    };
    let running = running(config).await;
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
    let _ = running.stop_projector.send(true);
    let mut turns = 0;
    while !running.projector.is_finished() && turns < TURNS_MAX {
        tokio::task::yield_now().await;
        turns += 1;
    }
    assert!(
        running.projector.is_finished(),
        "shutdown did not wait for a feed that never drains"
    );
    assert!(running.writer.is_writing(), "writes went on meanwhile");
    let stored = running.checkpoint().await;
    assert!(
        stored.is_some_and(|c| c > 0),
        "the position reached was stored at shutdown: {stored:?}"
    );
    running.writer.stop().await;
}

/// The in-memory feed, except that one event is handed out as a row this build cannot decode.
struct PoisoningFeed {
    store: Arc<InMemoryEventStore>,
    poisoned: (String, u64),
}

#[async_trait]
impl EventFeed for PoisoningFeed {
    async fn read_after(
        &self,
        after_position: u64,
        limit: usize,
    ) -> Result<Vec<FeedEvent>, StoreError> {
        let mut entries = self.store.read_after(after_position, limit).await?;
        for entry in &mut entries {
            let poisoned = entry.event().is_some_and(|event| {
                event.account_id.as_str() == self.poisoned.0 && event.sequence == self.poisoned.1
            });
            if poisoned {
                entry.entry = FeedEntry::Undecodable(UndecodableEvent {
                    account_id: Some(account(&self.poisoned.0)),
                    sequence: Some(self.poisoned.1),
                    raw: r#"{"payload":"{not json"}"#.to_owned(),
                    error: "payload: expected value".to_owned(),
                });
            }
        }
        Ok(entries)
    }
}

/// acc-p: opened, then deposits at 2, 3 and 4; acc-q: opened, then a deposit at 2; interleaved.
async fn seed_two_accounts(store: &InMemoryEventStore) {
    let history = [
        ("acc-p", 1, opened_event()),
        ("acc-q", 1, opened_event()),
        ("acc-p", 2, deposited_event("1.00", "1.00")),
        ("acc-p", 3, deposited_event("2.00", "3.00")),
        ("acc-q", 2, deposited_event("5.00", "5.00")),
        ("acc-p", 4, deposited_event("4.00", "7.00")),
    ];
    for (index, (id, sequence, event)) in history.into_iter().enumerate() {
        let micros = u32::try_from(index).expect("small");
        store
            .append(single_append(
                &format!("k-{index}"),
                sequence - 1,
                vec![recorded(id, sequence, event, at(2, 9, micros))],
            ))
            .await
            .expect("append");
    }
}

#[tokio::test]
async fn a_poison_entry_waits_for_a_redrive_while_other_accounts_flow() {
    let store = Arc::new(InMemoryEventStore::new());
    let read_model = Arc::new(InMemoryReadModel::new());
    seed_two_accounts(&store).await;
    let projector = FeedProjector::new(
        "poison",
        Arc::new(PoisoningFeed {
            store: Arc::clone(&store),
            poisoned: ("acc-p".to_owned(), 2),
        }),
        Arc::clone(&read_model) as Arc<dyn Projection>,
        Arc::new(InMemoryCheckpoints::new()),
        Arc::new(SystemClock),
        FeedProjectorConfig {
            // Waiting events are not retried: an hour between retries would show if they were.
            retry: ProjectionRetry {
                attempts_per_event_max: 5,
                retry_delay: Duration::from_hours(1),
            },
            ..FeedProjectorConfig::default()
        },
        Arc::new(Notify::new()),
    );
    let read = tokio::time::timeout(Duration::from_secs(30), projector.catch_up())
        .await
        .expect("nothing was retried for an hour")
        .expect("catch up");
    assert_eq!(read, 6);
    assert_eq!(
        read_model.last_sequence(&account("acc-q")).await.unwrap(),
        2
    );
    assert_eq!(
        read_model.last_sequence(&account("acc-p")).await.unwrap(),
        1
    );

    let letters = read_model.dead_letters(10).await.expect("letters");
    let shape: Vec<_> = letters
        .iter()
        .map(|s| (s.letter.sequence, s.letter.waiting_behind))
        .collect();
    let head = letters[0].id;
    assert_eq!(
        shape,
        vec![
            (Some(2), None),
            (Some(3), Some(head)),
            (Some(4), Some(head))
        ]
    );
    assert_eq!(letters[0].letter.raw, r#"{"payload":"{not json"}"#);
    assert!(
        letters[0].letter.reason.contains("expected value"),
        "{letters:?}"
    );
    assert!(
        letters[1].letter.raw.contains("MoneyDeposited"),
        "{letters:?}"
    );
    let check = DeadLetterCheck::new(Arc::clone(&read_model) as Arc<dyn Projection>);
    assert_eq!(check.name(), "dead_letters");
    assert!(check.check().await.is_err(), "open dead letters: not ready");

    // The store's copy reads fine (only the feed's view was poisoned): the redrive applies it and
    // then the two that waited, in order.
    let redrive_projector = ledger_application::Projector::new(
        Arc::clone(&read_model) as Arc<dyn Projection>,
        Arc::new(SystemClock),
        ProjectionRetry::default(),
    );
    let redriven = redrive_projector
        .redrive(store.as_ref(), letters[1].id)
        .await
        .expect("redrive");
    assert_eq!((redriven.applied, redriven.resolved), (3, 3));
    assert_eq!(redriven.last_sequence, 4);
    let view =
        ledger_application::ports::ReadModelQuery::account(read_model.as_ref(), &account("acc-p"))
            .await
            .expect("read")
            .expect("exists");
    assert_eq!(view.balance.to_string(), "7.00");
    assert!(
        read_model
            .dead_letters(10)
            .await
            .expect("letters")
            .is_empty()
    );
    check.check().await.expect("no open dead letter: ready");
    let again = redrive_projector.redrive(store.as_ref(), head).await;
    assert!(
        matches!(
            again,
            Err(ledger_application::RedriveError::AlreadyResolved(_))
        ),
        "{again:?}"
    );
}
