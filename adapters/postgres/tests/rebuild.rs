//! The rebuild on a real PostgreSQL (the events in the in-memory store: the read model is what is
//! under test): the fresh schema stays invisible to queries until the swap, which repairs a corrupted
//! live model and keeps the checkpoints; a rerun resumes; and a live projector keeps projecting across
//! the swap without a gap or a dead letter.

use std::sync::Arc;

use ledger_application::memory::{InMemoryEventStore, InMemoryReadModel};
use ledger_application::ports::{EventStore, Projection, ReadModelRebuild, SystemClock};
use ledger_application::testkit::rebuild::{
    AccountContent, LiveModel, ScanBreakingOff, live_projector_keeps_projecting_across_a_rebuild,
    model_content, project_accounts, rebuild_repairs_a_corrupted_live_model, seed_history,
};
use ledger_application::{NoObserver, RebuildError, RebuildLimits, Rebuilder};
use ledger_postgres::testkit::FreshDatabase;
use ledger_postgres::{FRESH_SCHEMA, PostgresReadModel, PostgresRebuild};

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
    corrupt_the_live_model(&world.live, &world.accounts).await;
    let rebuild = PostgresRebuild::open(&world.live)
        .await
        .expect("open the fresh model");
    rebuild_repairs_a_corrupted_live_model(
        world.store.clone(),
        LiveModel {
            model: Arc::new(world.live.clone()),
            checkpoints: Arc::new(world.live.checkpoints()),
        },
        Arc::new(rebuild.clone()),
        Arc::new(rebuild.fresh_model().clone()),
        &world.accounts,
        "999.00",
        small_pages(),
    )
    .await;
    assert!(!schema_exists(&world.live, FRESH_SCHEMA).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_rebuild_resumes_from_its_schema_without_duplicate_rows() {
    let world = world().await;
    let first = PostgresRebuild::open(&world.live)
        .await
        .expect("open the fresh model");
    let scan = Arc::new(ScanBreakingOff::new(world.store.clone(), 1));
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
    let rebuild = PostgresRebuild::open(&world.live)
        .await
        .expect("open the fresh model");
    live_projector_keeps_projecting_across_a_rebuild(
        world.store.clone(),
        LiveModel {
            model: Arc::new(world.live.clone()),
            checkpoints: Arc::new(world.live.checkpoints()),
        },
        Arc::new(rebuild),
        &world.accounts,
        DEPOSITS + 1,
        small_pages(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_the_fresh_schema_refuses_becomes_a_dead_letter_with_an_id_never_given_before() {
    let world = world().await;
    let old_letter = world
        .live
        .record_dead_letter(&ledger_application::ports::DeadLetter {
            account_id: None,
            sequence: None,
            event_id: None,
            event_type: None,
            raw: "{\"shard\":\"lost\"}".to_owned(),
            reason: "stream records trimmed".to_owned(),
            waiting_behind: None,
            recorded_at: chrono::Utc::now(),
        })
        .await
        .expect("a letter in the live model");
    let rebuild = Arc::new(
        PostgresRebuild::open(&world.live)
            .await
            .expect("open the fresh model"),
    );
    // A stray row where the refused account's third event goes: the page's one transaction is
    // refused as a whole, and event by event the third one is dead-lettered.
    sqlx::query(
        "INSERT INTO account_transactions (account_id, sequence, event_id, entry_type, amount, \
         balance_after, occurred_at) VALUES ($1, 3, 'stray', 'DEPOSIT', 1.00, 1.00, now())",
    )
    .bind(&world.accounts[3])
    .execute(rebuild.fresh_model().pool())
    .await
    .expect("a stray row in the fresh schema");

    let summary = Rebuilder::new(
        world.store.clone(),
        rebuild,
        Arc::new(SystemClock),
        small_pages(),
    )
    .run(&NoObserver)
    .await
    .expect("rebuild");

    assert_eq!(summary.dead_letters, 1);
    let letters = world.live.dead_letters(10).await.unwrap();
    assert_eq!(letters.len(), 1, "the old letter went with the old model");
    assert_eq!(letters[0].letter.sequence, Some(3));
    assert!(
        letters[0].id > old_letter,
        "{} reuses an old id",
        letters[0].id
    );
    let next = world
        .live
        .record_dead_letter(&ledger_application::ports::DeadLetter {
            account_id: None,
            sequence: None,
            raw: "{\"shard\":\"next\"}".to_owned(),
            ..letters[0].letter.clone()
        })
        .await
        .expect("a letter after the swap");
    assert!(
        next > letters[0].id,
        "the identity goes on after the copied letters"
    );
}
