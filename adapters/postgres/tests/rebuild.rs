//! The rebuild on a real PostgreSQL (the events in the in-memory store: the read model is what is
//! under test): the fresh schema stays invisible to queries until the swap, which repairs a corrupted
//! live model and keeps the checkpoints; a rerun resumes; and a live projector keeps projecting across
//! the swap without a gap or a dead letter.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use ledger_application::memory::{InMemoryEventStore, InMemoryReadModel};
use ledger_application::ports::{
    AccountPage, EventStore, EventStoreScan, LiveSwap, Projection, ReadModelQuery,
    ReadModelRebuild, RebuildProgress, ScanCursor, StoreError, SystemClock,
};
use ledger_application::testkit::fixtures::account;
use ledger_application::testkit::rebuild::{
    AccountContent, append_deposits, model_content, project_accounts, seed_history,
};
use ledger_application::{
    FeedProjector, FeedProjectorConfig, NoObserver, RebuildError, RebuildLimits, Rebuilder,
    RecordedEvent,
};
use ledger_domain::AccountId;
use ledger_postgres::{FRESH_SCHEMA, PostgresReadModel, PostgresRebuild};
use support::FreshDatabase;
use tokio::sync::{Notify, watch};

const ACCOUNTS: usize = 6;
const DEPOSITS: u64 = 4;

fn small_pages() -> RebuildLimits {
    RebuildLimits {
        accounts_per_page: 2,
        events_per_page: 3,
        ..RebuildLimits::default()
    }
}

struct World {
    // Dropped last: the database goes with it.
    live: PostgresReadModel,
    store: Arc<InMemoryEventStore>,
    accounts: Vec<String>,
    _database: FreshDatabase,
}

/// A seeded history, projected into a live model on a fresh database.
async fn world() -> World {
    let database = FreshDatabase::create().await;
    let live = database.read_model().await;
    let store = Arc::new(InMemoryEventStore::new());
    let accounts = seed_history(store.as_ref(), ACCOUNTS, DEPOSITS).await;
    project_accounts(store.as_ref(), Arc::new(live.clone()), &accounts).await;
    World {
        live,
        store,
        accounts,
        _database: database,
    }
}

async fn reference(store: &dyn EventStore, accounts: &[String]) -> Vec<AccountContent> {
    let model = Arc::new(InMemoryReadModel::new());
    project_accounts(store, model.clone(), accounts).await;
    model_content(model.as_ref(), accounts).await
}

/// Behind the application's back: a wrong balance, a lost movement, a day's balance changed.
async fn corrupt_the_live_model(live: &PostgresReadModel, accounts: &[String]) {
    sqlx::query("UPDATE accounts SET balance = 999.00 WHERE account_id = $1")
        .bind(&accounts[0])
        .execute(live.pool())
        .await
        .expect("corrupt a balance");
    sqlx::query("DELETE FROM account_transactions WHERE account_id = $1 AND sequence = 3")
        .bind(&accounts[1])
        .execute(live.pool())
        .await
        .expect("lose a movement");
    sqlx::query("UPDATE daily_balances SET closing_balance = -1.00 WHERE account_id = $1")
        .bind(&accounts[2])
        .execute(live.pool())
        .await
        .expect("corrupt a day");
}

/// The PostgreSQL rebuild, looking at both models when the swap begins.
struct LookingAtTheSwap {
    inner: PostgresRebuild,
    live: PostgresReadModel,
    account_id: AccountId,
    seen: AtomicBool,
}

#[async_trait]
impl ReadModelRebuild for LookingAtTheSwap {
    fn fresh(&self) -> Arc<dyn Projection> {
        self.inner.fresh()
    }

    async fn progress(&self) -> Result<Option<RebuildProgress>, StoreError> {
        self.inner.progress().await
    }

    async fn save_progress(&self, progress: &RebuildProgress) -> Result<(), StoreError> {
        self.inner.save_progress(progress).await
    }

    async fn accounts_behind_live(
        &self,
        after: Option<&AccountId>,
        limit: usize,
    ) -> Result<Vec<AccountId>, StoreError> {
        self.inner.accounts_behind_live(after, limit).await
    }

    async fn begin_swap(&self) -> Result<Box<dyn LiveSwap>, StoreError> {
        let live = self.live.account(&self.account_id).await?;
        assert_eq!(
            live.expect("the live account").balance.to_string(),
            "999.00",
            "before the swap, queries answer from the live model"
        );
        let fresh = self.inner.fresh_model().account(&self.account_id).await?;
        assert_eq!(
            fresh.expect("the fresh account").balance.to_string(),
            "4.00"
        );
        self.seen.store(true, Ordering::SeqCst);
        self.inner.begin_swap().await
    }
}

async fn schema_exists(live: &PostgresReadModel, schema: &str) -> bool {
    sqlx::query_scalar::<_, bool>(
        "SELECT EXISTS (SELECT 1 FROM information_schema.schemata WHERE schema_name = $1)",
    )
    .bind(schema)
    .fetch_one(live.pool())
    .await
    .expect("look the schema up")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_fresh_schema_is_invisible_until_the_swap_and_repairs_a_corrupted_live_model() {
    let world = world().await;
    world.live.save_checkpoint("feed", 7).await.unwrap();
    corrupt_the_live_model(&world.live, &world.accounts).await;
    let rebuild = Arc::new(LookingAtTheSwap {
        inner: PostgresRebuild::open(&world.live)
            .await
            .expect("open the fresh model"),
        live: world.live.clone(),
        account_id: account(&world.accounts[0]),
        seen: AtomicBool::new(false),
    });

    let summary = Rebuilder::new(
        world.store.clone(),
        rebuild.clone(),
        Arc::new(SystemClock),
        small_pages(),
    )
    .run(&NoObserver)
    .await
    .expect("rebuild");

    assert!(rebuild.seen.load(Ordering::SeqCst));
    assert_eq!(summary.accounts, ACCOUNTS as u64);
    assert_eq!(summary.events, ACCOUNTS as u64 * (DEPOSITS + 1));
    assert_eq!(
        model_content(&world.live, &world.accounts).await,
        reference(world.store.as_ref(), &world.accounts).await,
        "after the swap, queries (on the same pool) answer from the rebuilt model"
    );
    assert_eq!(
        world.live.checkpoint("feed").await.unwrap(),
        Some(7),
        "the projector's checkpoint is not part of the swap"
    );
    assert!(!schema_exists(&world.live, FRESH_SCHEMA).await);
}

/// The in-memory store's scan, failing after its first page of accounts.
struct BreaksOff {
    store: Arc<InMemoryEventStore>,
    broken: AtomicBool,
}

#[async_trait]
impl EventStoreScan for BreaksOff {
    async fn accounts_page(
        &self,
        cursor: Option<&ScanCursor>,
        limit: usize,
    ) -> Result<AccountPage, StoreError> {
        if self.broken.swap(true, Ordering::SeqCst) {
            return Err(StoreError::unavailable("the scan broke off"));
        }
        self.store.accounts_page(cursor, limit).await
    }

    async fn events_page(
        &self,
        account_id: &AccountId,
        after_sequence: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.store
            .events_page(account_id, after_sequence, limit)
            .await
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_rebuild_resumes_from_its_schema_without_duplicate_rows() {
    let world = world().await;
    let first = PostgresRebuild::open(&world.live)
        .await
        .expect("open the fresh model");
    let scan = Arc::new(BreaksOff {
        store: world.store.clone(),
        broken: AtomicBool::new(false),
    });
    let interrupted = Rebuilder::new(
        scan,
        Arc::new(first.clone()),
        Arc::new(SystemClock),
        small_pages(),
    )
    .run(&NoObserver)
    .await;
    assert!(
        matches!(interrupted, Err(RebuildError::EventStore(_))),
        "{interrupted:?}"
    );
    first.fresh_model().close().await;

    let reopened = Arc::new(PostgresRebuild::open(&world.live).await.expect("reopen"));
    assert_eq!(
        reopened
            .progress()
            .await
            .unwrap()
            .expect("stored")
            .accounts_done,
        2
    );
    let summary = Rebuilder::new(
        world.store.clone(),
        reopened,
        Arc::new(SystemClock),
        small_pages(),
    )
    .run(&NoObserver)
    .await
    .expect("the rerun");

    assert!(summary.resumed);
    assert_eq!(summary.events, ACCOUNTS as u64 * (DEPOSITS + 1));
    let content = model_content(&world.live, &world.accounts).await;
    assert_eq!(
        content,
        reference(world.store.as_ref(), &world.accounts).await
    );
    for account_content in &content {
        assert_eq!(account_content.transactions.len() as u64, DEPOSITS);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_live_projector_keeps_projecting_across_the_swap_without_a_gap_or_a_dead_letter() {
    let world = world().await;
    let projection: Arc<dyn Projection> = Arc::new(world.live.clone());
    let projector = Arc::new(FeedProjector::new(
        "embedded",
        world.store.clone(),
        projection.clone(),
        Arc::new(SystemClock),
        FeedProjectorConfig::default(),
        Arc::new(Notify::new()),
    ));
    projector
        .catch_up()
        .await
        .expect("the projector's first catch-up");
    let (stop_projector, stopped) = watch::channel(false);
    let running = tokio::spawn({
        let projector = projector.clone();
        async move { projector.run(stopped).await }
    });
    let writing = Arc::new(AtomicBool::new(true));
    let writer = tokio::spawn({
        let store = world.store.clone();
        let accounts = world.accounts.clone();
        let writing = writing.clone();
        async move {
            let mut sequences = vec![DEPOSITS + 1; accounts.len()];
            let mut written = 0_u64;
            // Bounded: at most 40 rounds, well inside the fixtures' calendar.
            for round in 0..40 {
                if !writing.load(Ordering::SeqCst) && round > 2 {
                    break;
                }
                for (index, id) in accounts.iter().enumerate() {
                    append_deposits(store.as_ref(), id, sequences[index], 1).await;
                    sequences[index] += 1;
                    written += 1;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            written
        }
    });

    let rebuild = Arc::new(
        PostgresRebuild::open(&world.live)
            .await
            .expect("open the fresh model"),
    );
    let summary = Rebuilder::new(
        world.store.clone(),
        rebuild,
        Arc::new(SystemClock),
        small_pages(),
    )
    .run(&NoObserver)
    .await
    .expect("rebuild");
    writing.store(false, Ordering::SeqCst);
    assert!(writer.await.expect("the writer") > 0);

    let expected = reference(world.store.as_ref(), &world.accounts).await;
    let mut content = Vec::new();
    // Bounded wait for the live projector to apply what was written last.
    for _ in 0..200 {
        content = model_content(&world.live, &world.accounts).await;
        if content == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    stop_projector.send(true).expect("stop the projector");
    running.await.expect("the projector stops");
    assert_eq!(
        content, expected,
        "no gap: every event applied once, in order"
    );
    assert!(projection.dead_letters(10).await.unwrap().is_empty());
    assert_eq!(summary.accounts, ACCOUNTS as u64);
}
