//! What the port contracts cannot see: the SQLite file itself. Durability across reopening, the
//! migrations, the immutability triggers, the pragmas, atomicity on disk, another process holding the
//! write lock, corrupt rows, and the mapping of real constraint errors. No mocks: a real file each time.

use std::path::{Path, PathBuf};
use std::time::Duration;

use std::sync::Arc;

use ledger_application::ports::{
    AppendError, ApplyOutcome, EventFeed, EventStore, FeedEntry, HealthCheck, Projection,
    ProjectionCheckpoints, ReadModelQuery, ReadModelUpdate, StoreError, SystemClock,
};
use ledger_application::testkit::fixtures::{
    account, at, deposited_event, multi_append, opened_event, recorded, scoped_key, single_append,
};
use ledger_application::{FeedProjector, FeedProjectorConfig};
use ledger_sqlite::SqliteDatabase;
use ledger_sqlite::constraint::{Violation, classify};
use sqlx::query::Query;
use sqlx::sqlite::{Sqlite, SqliteArguments, SqliteConnectOptions, SqliteConnection};
use sqlx::{Connection, Row};
use tempfile::TempDir;
use tokio::sync::Notify;

fn db_path(dir: &TempDir) -> PathBuf {
    dir.path().join("ledger.db")
}

async fn open(path: &Path) -> SqliteDatabase {
    SqliteDatabase::open(path).await.expect("open the database")
}

/// A connection of its own, as the admin tool or a `sqlite3` shell in another process would have.
async fn other_process(path: &Path) -> SqliteConnection {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .busy_timeout(Duration::from_secs(5));
    SqliteConnection::connect_with(&options)
        .await
        .expect("a second connection")
}

/// Like [`other_process`], creating the file.
async fn other_process_creating(path: &Path) -> SqliteConnection {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .busy_timeout(Duration::from_secs(5));
    SqliteConnection::connect_with(&options)
        .await
        .expect("a new database")
}

async fn count(conn: &mut SqliteConnection, sql: &'static str) -> i64 {
    sqlx::query(sql)
        .fetch_one(conn)
        .await
        .expect("count")
        .get(0)
}

async fn open_account(db: &SqliteDatabase, id: &str) {
    let opened = recorded(id, 1, opened_event(), at(1, 8, 0));
    db.event_store()
        .append(single_append(&format!("open-{id}"), 0, vec![opened]))
        .await
        .expect("open the account");
}

#[tokio::test(flavor = "multi_thread")]
async fn open_creates_the_directories_and_sets_wal_and_full_sync() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested").join("data").join("ledger.db");
    let db = open(&path).await;
    assert!(path.is_file());
    let settings = db.settings().await.unwrap();
    assert_eq!(settings.journal_mode, "wal");
    assert_eq!(settings.synchronous, 2, "FULL: every commit is durable");
    assert!(settings.foreign_keys);
    assert_eq!(settings.busy_timeout_ms, 5000);
    assert_eq!(settings.schema_version, ledger_sqlite::SCHEMA_VERSION);
    db.close().await.unwrap();

    // WAL is a property of the file: another connection sees it too.
    let mut conn = other_process(&path).await;
    let mode: String = sqlx::query("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .unwrap()
        .get(0);
    assert_eq!(mode, "wal");
}

#[tokio::test(flavor = "multi_thread")]
async fn data_survives_closing_and_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let opened = recorded("acc-1", 1, opened_event(), at(1, 8, 0));
    let deposit = recorded("acc-1", 2, deposited_event("10.50", "10.50"), at(1, 9, 0));
    let db = open(&path).await;
    let store = db.event_store();
    store
        .append(single_append("k-open", 0, vec![opened.clone()]))
        .await
        .unwrap();
    store
        .append(single_append("k-deposit", 1, vec![deposit.clone()]))
        .await
        .unwrap();
    for event in [&opened, &deposit] {
        let outcome = db
            .read_model()
            .apply(&ReadModelUpdate::from_event(event))
            .await
            .unwrap();
        assert_eq!(outcome, ApplyOutcome::Applied);
    }
    db.checkpoints()
        .save_feed_checkpoint("feed", 2)
        .await
        .unwrap();
    let feed_before = store.read_after(0, 10).await.unwrap();
    db.close().await.unwrap();
    let wal = dir.path().join("ledger.db-wal");
    assert!(
        !wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0,
        "close checkpoints the WAL into the database file"
    );

    let db = open(&path).await;
    let store = db.event_store();
    assert_eq!(
        store.load(&account("acc-1"), 0).await.unwrap(),
        vec![opened, deposit]
    );
    assert!(
        store
            .idempotency_record(&scoped_key("k-deposit"))
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(store.read_after(0, 10).await.unwrap(), feed_before);
    let view = db
        .read_model()
        .account(&account("acc-1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.balance.to_string(), "10.50");
    assert_eq!(view.last_sequence, 2);
    assert_eq!(
        db.checkpoints().feed_checkpoint("feed").await.unwrap(),
        Some(2)
    );

    // Positions go on from where they were; none is handed out twice.
    open_account(&db, "acc-2").await;
    let feed = store.read_after(0, 10).await.unwrap();
    assert_eq!(feed.len(), 3);
    assert!(feed[2].position > feed_before[1].position);
    db.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn migrations_are_idempotent_even_when_two_opens_race() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    // Two handles opening a new file at once, as two processes would.
    let (first, second) = tokio::join!(SqliteDatabase::open(&path), SqliteDatabase::open(&path));
    let (first, second) = (first.unwrap(), second.unwrap());
    open_account(&first, "acc-1").await;
    second.close().await.unwrap();
    first.close().await.unwrap();

    let again = open(&path).await;
    assert_eq!(
        again.settings().await.unwrap().schema_version,
        ledger_sqlite::SCHEMA_VERSION
    );
    assert_eq!(
        again
            .event_store()
            .load(&account("acc-1"), 0)
            .await
            .unwrap()
            .len(),
        1,
        "re-running the migrations must not touch the data"
    );
    again.close().await.unwrap();

    let mut conn = other_process(&path).await;
    let tables = count(
        &mut conn,
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('events', \
         'idempotency', 'rm_accounts', 'rm_account_transactions', 'rm_daily_balances', \
         'rm_checkpoints', 'rm_dead_letters')",
    )
    .await;
    assert_eq!(tables, 7);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_schema_newer_than_this_build_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    open(&path).await.close().await.unwrap();
    let mut conn = other_process(&path).await;
    sqlx::query("PRAGMA user_version = 99")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let error = SqliteDatabase::open(&path).await.expect_err("refused");
    assert!(matches!(error, StoreError::Corrupt { .. }), "{error:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn events_refuse_update_and_delete_from_any_connection() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let db = open(&path).await;
    open_account(&db, "acc-1").await;
    let before = db.event_store().load(&account("acc-1"), 0).await.unwrap();

    let mut conn = other_process(&path).await;
    for statement in [
        "UPDATE events SET payload = '{}' WHERE account_id = 'acc-1'",
        "UPDATE events SET sequence = 7",
        "DELETE FROM events WHERE account_id = 'acc-1'",
        "DELETE FROM events",
    ] {
        let error = sqlx::query(statement)
            .execute(&mut conn)
            .await
            .expect_err(statement);
        assert!(
            error.to_string().contains("events are immutable"),
            "{statement}: {error}"
        );
    }
    assert_eq!(
        db.event_store().load(&account("acc-1"), 0).await.unwrap(),
        before
    );
    db.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_conflict_on_the_second_stream_leaves_nothing_of_the_first_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let db = open(&path).await;
    open_account(&db, "acc-b").await;
    let append = multi_append(
        "two-streams",
        vec![
            (0, recorded("acc-a", 1, opened_event(), at(2, 8, 0))),
            // acc-b already has sequence 1: this stream conflicts, after acc-a's insert succeeded.
            (0, recorded("acc-b", 1, opened_event(), at(2, 8, 0))),
        ],
    );
    let error = db.event_store().append(append).await.expect_err("conflict");
    assert!(
        matches!(&error, AppendError::Conflict { account_id } if *account_id == account("acc-b")),
        "{error:?}"
    );

    let store = db.event_store();
    assert!(store.load(&account("acc-a"), 0).await.unwrap().is_empty());
    assert!(
        store
            .idempotency_record(&scoped_key("two-streams"))
            .await
            .unwrap()
            .is_none()
    );
    let mut conn = other_process(&path).await;
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) FROM events WHERE account_id = 'acc-a'"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) FROM idempotency WHERE client_request_id LIKE '%:two-streams'"
        )
        .await,
        0
    );
    assert_eq!(count(&mut conn, "SELECT count(*) FROM events").await, 1);
    db.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reused_event_id_is_a_store_error_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(&db_path(&dir)).await;
    let first = recorded("acc-1", 1, opened_event(), at(1, 8, 0));
    let mut copy = recorded("acc-2", 1, opened_event(), at(1, 8, 0));
    copy.event_id = first.event_id;
    let store = db.event_store();
    store
        .append(single_append("k1", 0, vec![first]))
        .await
        .unwrap();
    let error = store
        .append(single_append("k2", 0, vec![copy]))
        .await
        .expect_err("refused");
    assert!(
        matches!(error, AppendError::Store(StoreError::Unavailable(_))),
        "{error:?}"
    );
    assert!(store.load(&account("acc-2"), 0).await.unwrap().is_empty());
    assert!(
        store
            .idempotency_record(&scoped_key("k2"))
            .await
            .unwrap()
            .is_none()
    );
    db.close().await.unwrap();
}

/// How `classify` reads the error of a statement that SQLite refuses.
async fn violation(
    conn: &mut SqliteConnection,
    query: Query<'static, Sqlite, SqliteArguments>,
) -> Option<Violation> {
    let error = query.execute(conn).await.expect_err("refused");
    classify(&error)
}

#[tokio::test(flavor = "multi_thread")]
async fn constraint_errors_from_sqlite_are_classified() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    open(&path).await.close().await.unwrap();
    let mut conn = other_process(&path).await;
    let event = |sequence: i64, event_id: &'static str| {
        sqlx::query(
            "INSERT INTO events (account_id, sequence, event_id, event_type, schema_version, \
             payload, metadata, recorded_at) VALUES ('acc-1', ?1, ?2, 'AccountOpened', 1, '{}', \
             '{}', '2026-03-01T08:00:00.000000Z')",
        )
        .bind(sequence)
        .bind(event_id)
    };
    let idempotency = sqlx::query(
        "INSERT INTO idempotency (client_request_id, fingerprint, outcome, recorded_at) \
         VALUES ('k1', 'f', '{}', '2026-03-01T08:00:00.000000Z')",
    );
    event(1, "e1").execute(&mut conn).await.unwrap();
    idempotency.execute(&mut conn).await.unwrap();

    assert_eq!(
        violation(&mut conn, event(1, "e2")).await,
        Some(Violation::StreamSequence)
    );
    assert_eq!(
        violation(&mut conn, event(2, "e1")).await,
        Some(Violation::EventId)
    );
    let again = sqlx::query(
        "INSERT INTO idempotency (client_request_id, fingerprint, outcome, recorded_at) \
         VALUES ('k1', 'g', '{}', '2026-03-01T09:00:00.000000Z')",
    );
    assert_eq!(
        violation(&mut conn, again).await,
        Some(Violation::IdempotencyKey)
    );
    let checkpoint =
        "INSERT INTO rm_checkpoints (reader, position, updated_at) VALUES ('r', 1, 'now')";
    sqlx::query(checkpoint).execute(&mut conn).await.unwrap();
    assert_eq!(
        violation(&mut conn, sqlx::query(checkpoint)).await,
        Some(Violation::Other)
    );
    // Refusals that are not uniqueness violations are none of the above.
    assert_eq!(
        violation(&mut conn, sqlx::query("DELETE FROM events")).await,
        None
    );
    assert_eq!(
        violation(
            &mut conn,
            sqlx::query("INSERT INTO events (account_id, sequence) VALUES ('acc-9', 1)")
        )
        .await,
        None
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn appends_wait_for_another_process_holding_the_write_lock() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let db = open(&path).await;
    let mut admin = other_process(&path).await;
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut admin)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO rm_checkpoints (reader, position, updated_at) VALUES ('admin', 1, 'x')",
    )
    .execute(&mut admin)
    .await
    .unwrap();

    let store = db.event_store();
    let append = tokio::spawn(async move {
        let opened = recorded("acc-1", 1, opened_event(), at(1, 8, 0));
        store.append(single_append("k1", 0, vec![opened])).await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!append.is_finished(), "the append waits for the lock");
    sqlx::query("COMMIT").execute(&mut admin).await.unwrap();
    append
        .await
        .unwrap()
        .expect("the append goes through once the lock is free");
    assert_eq!(
        db.event_store()
            .load(&account("acc-1"), 0)
            .await
            .unwrap()
            .len(),
        1
    );
    db.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn rows_this_code_cannot_read_are_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let db = open(&path).await;
    let mut conn = other_process(&path).await;
    sqlx::query(
        "INSERT INTO events (account_id, sequence, event_id, event_type, schema_version, payload, \
         metadata, recorded_at) VALUES ('acc-1', 1, '0190f5c2-7d7e-7a4c-9b7e-1c2d3e4f5a6b', \
         'AccountOpened', 1, '{\"owner\": 12}', '{}', '2026-03-01T08:00:00.000000Z')",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO rm_accounts (account_id, owner, kind, currency, status, balance, \
         overdraft_limit, frozen_reason, last_sequence, opened_at, updated_at) VALUES ('acc-1', \
         'Ada', 'CHECKING', 'USD', 'OPEN', '1e3', '0.00', NULL, 1, \
         '2026-03-01T08:00:00.000000Z', '2026-03-01T08:00:00.000000Z')",
    )
    .execute(&mut conn)
    .await
    .unwrap();

    let corrupt = |result: Result<_, StoreError>| matches!(result, Err(StoreError::Corrupt { .. }));
    assert!(corrupt(
        db.event_store().load(&account("acc-1"), 0).await.map(drop)
    ));
    let feed = db
        .event_store()
        .read_after(0, 10)
        .await
        .expect("the feed reads around it");
    let [entry] = feed.as_slice() else {
        panic!("one entry: {feed:?}")
    };
    let FeedEntry::Undecodable(undecodable) = &entry.entry else {
        panic!("undecodable: {entry:?}")
    };
    assert_eq!(undecodable.account_id, Some(account("acc-1")));
    assert_eq!(undecodable.sequence, Some(1));
    assert!(
        undecodable.raw.contains(r#"{\"owner\": 12}"#),
        "{undecodable:?}"
    );
    assert!(
        corrupt(db.read_model().account(&account("acc-1")).await.map(drop)),
        "a balance in exponent notation is not one this code wrote"
    );
    db.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn money_is_stored_as_decimal_text() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let db = open(&path).await;
    for event in [
        recorded("acc-1", 1, opened_event(), at(1, 8, 0)),
        recorded("acc-1", 2, deposited_event("10.50", "10.50"), at(1, 9, 0)),
    ] {
        db.read_model()
            .apply(&ReadModelUpdate::from_event(&event))
            .await
            .unwrap();
    }
    let mut conn = other_process(&path).await;
    let row = sqlx::query(
        "SELECT typeof(a.balance), a.balance, typeof(t.amount), t.amount, d.closing_balance \
         FROM rm_accounts a JOIN rm_account_transactions t USING (account_id) \
         JOIN rm_daily_balances d USING (account_id)",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    let columns: Vec<String> = (0..5).map(|i| row.get(i)).collect();
    assert_eq!(columns, ["text", "10.50", "text", "10.50", "10.50"]);
    db.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn health_checks_answer_until_the_database_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(&db_path(&dir)).await;
    let checks: [Box<dyn HealthCheck>; 3] = [
        Box::new(db.clone()),
        Box::new(db.event_store()),
        Box::new(db.read_model()),
    ];
    let names: Vec<_> = checks.iter().map(|c| c.name()).collect();
    assert_eq!(names, ["sqlite", "event_store", "read_model"]);
    for check in &checks {
        check.check().await.unwrap();
    }
    db.close().await.unwrap();
    db.close().await.expect("closing twice is harmless");
    for check in &checks {
        let error = check.check().await.expect_err("closed");
        assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_movement_on_an_account_never_opened_is_corrupt_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let db = open(&path).await;
    let deposit = recorded("acc-1", 1, deposited_event("1.00", "1.00"), at(1, 9, 0));
    let error = db
        .read_model()
        .apply(&ReadModelUpdate::from_event(&deposit))
        .await
        .expect_err("no account row");
    assert!(matches!(error, StoreError::Corrupt { .. }), "{error:?}");
    let mut conn = other_process(&path).await;
    let rows = count(
        &mut conn,
        "SELECT (SELECT count(*) FROM rm_account_transactions) \
         + (SELECT count(*) FROM rm_daily_balances) + (SELECT count(*) FROM rm_accounts)",
    )
    .await;
    assert_eq!(rows, 0);
    db.close().await.unwrap();
}

/// A payload this build cannot decode, inserted behind the application's back (INSERT is all the
/// triggers allow, and all it takes): the feed hands it out alone, the projector dead-letters it with
/// its raw form, its account's later events wait behind it, and every other account keeps flowing.
#[tokio::test(flavor = "multi_thread")]
async fn a_poison_row_is_dead_lettered_while_other_accounts_keep_projecting() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let db = open(&path).await;
    open_account(&db, "acc-p").await;
    open_account(&db, "acc-q").await;
    let mut conn = other_process(&path).await;
    sqlx::query(
        "INSERT INTO events (account_id, sequence, event_id, event_type, schema_version, payload, \
         metadata, recorded_at) VALUES ('acc-p', 2, '0190f5c2-7d7e-7a4c-9b7e-1c2d3e4f5a6b', \
         'MoneyDeposited', 1, '{not json', '{}', '2026-03-01T09:00:00.000000Z')",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let store = db.event_store();
    for (key, id, sequence, deposit, micros) in [
        ("p-3", "acc-p", 3, deposited_event("1.00", "2.00"), 0),
        ("q-2", "acc-q", 2, deposited_event("4.00", "4.00"), 1),
    ] {
        store
            .append(single_append(
                key,
                sequence - 1,
                vec![recorded(id, sequence, deposit, at(1, 10, micros))],
            ))
            .await
            .unwrap();
    }

    let read_model = Arc::new(db.read_model());
    let projector = FeedProjector::new(
        "poison",
        Arc::new(store),
        Arc::clone(&read_model) as Arc<dyn Projection>,
        Arc::new(db.checkpoints()),
        Arc::new(SystemClock),
        FeedProjectorConfig::default(),
        Arc::new(Notify::new()),
    );
    assert_eq!(
        projector.catch_up().await.expect("the feed is not stalled"),
        5
    );
    assert_eq!(
        read_model.last_sequence(&account("acc-q")).await.unwrap(),
        2
    );
    assert_eq!(
        read_model.last_sequence(&account("acc-p")).await.unwrap(),
        1
    );
    let letters = read_model.dead_letters(10).await.unwrap();
    assert_eq!(letters.len(), 2, "{letters:?}");
    let (head, waiting) = (&letters[0], &letters[1]);
    assert_eq!(
        (head.letter.account_id.clone(), head.letter.sequence),
        (Some(account("acc-p")), Some(2))
    );
    assert!(head.letter.raw.contains("{not json"), "{head:?}");
    assert!(head.letter.reason.starts_with("undecodable"), "{head:?}");
    assert_eq!(waiting.letter.sequence, Some(3));
    assert_eq!(waiting.letter.waiting_behind, Some(head.id));

    // A restart redelivers everything after the checkpoint: still one letter each.
    assert_eq!(projector.catch_up().await.unwrap(), 0);
    db.checkpoints()
        .save_feed_checkpoint("poison-again", 0)
        .await
        .unwrap();
    let again = FeedProjector::new(
        "poison-again",
        Arc::new(db.event_store()),
        Arc::clone(&read_model) as Arc<dyn Projection>,
        Arc::new(db.checkpoints()),
        Arc::new(SystemClock),
        FeedProjectorConfig::default(),
        Arc::new(Notify::new()),
    );
    assert_eq!(again.catch_up().await.unwrap(), 5);
    assert_eq!(read_model.dead_letters(10).await.unwrap(), letters);
    db.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn dead_letters_recorded_before_schema_4_are_kept_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    // A database at schema 3, with the old table and two letters in it.
    let mut conn = other_process_creating(&path).await;
    for (version, sql) in [
        (1, include_str!("../src/migrations/0001_event_store.sql")),
        (2, include_str!("../src/migrations/0002_read_model.sql")),
        (
            3,
            include_str!("../src/migrations/0003_stream_checkpoints.sql"),
        ),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "PRAGMA user_version = {version}"
        )))
        .execute(&mut conn)
        .await
        .unwrap();
    }
    sqlx::raw_sql(
        "INSERT INTO rm_dead_letters VALUES \
         ('acc-1', 9, '0190f5c2-7d7e-7a4c-9b7e-1c2d3e4f5a61', 'MoneyDeposited', 'gap 9', \
          '2026-03-01T08:00:00.000000Z'), \
         ('acc-1', 3, '0190f5c2-7d7e-7a4c-9b7e-1c2d3e4f5a62', 'MoneyDeposited', 'gap 3', \
          '2026-03-01T08:00:01.000000Z')",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();

    let db = open(&path).await;
    let letters = db.read_model().dead_letters(10).await.unwrap();
    let kept: Vec<_> = letters
        .iter()
        .map(|s| (s.letter.sequence, s.letter.reason.as_str()))
        .collect();
    assert_eq!(kept, vec![(Some(9), "gap 9"), (Some(3), "gap 3")]);
    let again = db
        .read_model()
        .record_dead_letter(&letters[1].letter)
        .await
        .unwrap();
    assert_eq!(
        again, letters[1].id,
        "the old letters keep their deduplication key"
    );
    db.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unusable_path_is_unavailable_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not-a-directory");
    std::fs::write(&blocker, b"a file where a directory should be").unwrap();
    let error = SqliteDatabase::open(&blocker.join("ledger.db"))
        .await
        .expect_err("cannot open");
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
    assert!(
        error.to_string().contains("not-a-directory"),
        "the message names the path: {error}"
    );
}
