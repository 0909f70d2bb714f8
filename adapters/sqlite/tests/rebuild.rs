//! The rebuild on SQLite, with real files: the fresh model stays invisible to queries until the
//! swap, which repairs a corrupted live model; an interrupted rebuild resumes from its file; and a
//! live projector keeps projecting across the swap without a gap or a dead letter.

use std::path::PathBuf;
use std::sync::Arc;

use ledger_application::memory::InMemoryReadModel;
use ledger_application::ports::{
    EventStore, Projection, ReadModelQuery, ReadModelRebuild, SystemClock,
};
use ledger_application::testkit::fixtures::account;
use ledger_application::testkit::rebuild::{
    AccountContent, LiveModel, ScanBreakingOff, live_projector_keeps_projecting_across_a_rebuild,
    model_content, project_accounts, rebuild_repairs_a_corrupted_live_model, seed_history,
};
use ledger_application::{NoObserver, RebuildError, RebuildLimits, Rebuilder};
use ledger_sqlite::{SqliteDatabase, SqliteEventStore, SqliteRebuild};
use tempfile::TempDir;

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
    _dir: TempDir,
    path: PathBuf,
    db: SqliteDatabase,
    store: Arc<SqliteEventStore>,
    accounts: Vec<String>,
}

/// An embedded database with a seeded history, projected into its live model.
async fn world() -> World {
    let dir = TempDir::new().expect("temp dir");
    let path = dir.path().join("ledger.db");
    let db = SqliteDatabase::open(&path).await.expect("open");
    let store = Arc::new(db.event_store());
    let accounts = seed_history(store.as_ref(), ACCOUNTS, DEPOSITS).await;
    project_accounts(store.as_ref(), Arc::new(db.read_model()), &accounts).await;
    World {
        _dir: dir,
        path,
        db,
        store,
        accounts,
    }
}

/// What the projector builds from the store: what a rebuild must give.
async fn reference(store: &dyn EventStore, accounts: &[String]) -> Vec<AccountContent> {
    let model = Arc::new(InMemoryReadModel::new());
    project_accounts(store, model.clone(), accounts).await;
    model_content(model.as_ref(), accounts).await
}

/// Behind the application's back: a wrong balance, a lost movement, a day's balance changed.
async fn corrupt_the_live_model(db: &SqliteDatabase, accounts: &[String]) {
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(db.path());
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect_with(&options)
        .await
        .expect("a connection of its own");
    sqlx::query("UPDATE rm_accounts SET balance = '999.00' WHERE account_id = ?1")
        .bind(&accounts[0])
        .execute(&mut conn)
        .await
        .expect("corrupt a balance");
    sqlx::query("DELETE FROM rm_account_transactions WHERE account_id = ?1 AND sequence = 3")
        .bind(&accounts[1])
        .execute(&mut conn)
        .await
        .expect("lose a movement");
    sqlx::query("UPDATE rm_daily_balances SET closing_balance = '-1.00' WHERE account_id = ?1")
        .bind(&accounts[2])
        .execute(&mut conn)
        .await
        .expect("corrupt a day");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_fresh_model_is_invisible_until_the_swap_and_repairs_a_corrupted_live_model() {
    let world = world().await;
    corrupt_the_live_model(&world.db, &world.accounts).await;
    let rebuild = SqliteRebuild::open(&world.db)
        .await
        .expect("open the fresh model");
    rebuild_repairs_a_corrupted_live_model(
        world.store.clone(),
        LiveModel {
            model: Arc::new(world.db.read_model()),
            checkpoints: Arc::new(world.db.checkpoints()),
        },
        Arc::new(rebuild.clone()),
        Arc::new(rebuild.fresh_database().read_model()),
        &world.accounts,
        "999.00",
        small_pages(),
    )
    .await;
    assert!(
        !SqliteRebuild::fresh_path(&world.path).exists(),
        "the fresh file is gone after the swap"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_rebuild_resumes_from_its_file_without_duplicate_rows() {
    let world = world().await;
    corrupt_the_live_model(&world.db, &world.accounts).await;
    let first = SqliteRebuild::open(&world.db)
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
    first
        .fresh_database()
        .close()
        .await
        .expect("close, as a killed process would leave it");
    let balance = world
        .db
        .read_model()
        .account(&account(&world.accounts[0]))
        .await
        .unwrap();
    assert_eq!(
        balance.unwrap().balance.to_string(),
        "999.00",
        "the live model is untouched"
    );

    let reopened = Arc::new(SqliteRebuild::open(&world.db).await.expect("reopen"));
    let stored = reopened
        .progress()
        .await
        .unwrap()
        .expect("the progress survived");
    assert_eq!(stored.accounts_done, 2);
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
    assert_eq!(summary.accounts, ACCOUNTS as u64);
    assert_eq!(summary.events, ACCOUNTS as u64 * (DEPOSITS + 1));
    let content = model_content(&world.db.read_model(), &world.accounts).await;
    assert_eq!(
        content,
        reference(world.store.as_ref(), &world.accounts).await
    );
    for account_content in &content {
        assert_eq!(
            account_content.transactions.len() as u64,
            DEPOSITS,
            "no duplicate rows"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_the_fresh_model_refuses_leaves_the_page_to_the_projector_and_becomes_a_dead_letter()
 {
    let world = world().await;
    // A letter the live model once gave an id to (a trimmed stream, say): the rebuild drops it,
    // and its id is never given to another letter.
    let old_letter = world
        .db
        .read_model()
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
        SqliteRebuild::open(&world.db)
            .await
            .expect("open the fresh model"),
    );
    // A stray row where the refused account's third event goes: the page's one transaction is
    // refused as a whole, and event by event the third one is dead-lettered.
    let options =
        sqlx::sqlite::SqliteConnectOptions::new().filename(rebuild.fresh_database().path());
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect_with(&options)
        .await
        .expect("a connection to the fresh file");
    sqlx::query(
        "INSERT INTO rm_account_transactions (account_id, sequence, event_id, entry_type, amount, \
         balance_after, occurred_at) VALUES (?1, 3, 'stray', 'DEPOSIT', '1.00', '1.00', 'x')",
    )
    .bind(&world.accounts[3])
    .execute(&mut conn)
    .await
    .expect("a stray row");
    <sqlx::SqliteConnection as sqlx::Connection>::close(conn)
        .await
        .expect("close");

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
    let refused = account(&world.accounts[3]);
    let live = world.db.read_model();
    assert_eq!(live.last_sequence(&refused).await.unwrap(), 2);
    let letters = live.dead_letters(10).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].letter.sequence, Some(3));
    assert!(
        letters[0].id > old_letter,
        "{} reuses an id the live model gave",
        letters[0].id
    );
    let others: Vec<String> = world
        .accounts
        .iter()
        .enumerate()
        .filter(|(index, _)| *index != 3)
        .map(|(_, id)| id.clone())
        .collect();
    assert_eq!(
        model_content(&live, &others).await,
        reference(world.store.as_ref(), &others).await,
        "the other accounts are whole"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_live_projector_keeps_projecting_across_the_swap_without_a_gap_or_a_dead_letter() {
    let world = world().await;
    let rebuild = SqliteRebuild::open(&world.db)
        .await
        .expect("open the fresh model");
    live_projector_keeps_projecting_across_a_rebuild(
        world.store.clone(),
        LiveModel {
            model: Arc::new(world.db.read_model()),
            checkpoints: Arc::new(world.db.checkpoints()),
        },
        Arc::new(rebuild),
        &world.accounts,
        DEPOSITS + 1,
        small_pages(),
    )
    .await;
}
