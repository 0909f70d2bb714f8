//! The SQLite writer's group commits on a real file: concurrent writes share one transaction, each
//! keeping its own result; `max_batch = 1` commits one write per transaction; a failed COMMIT answers
//! every write of its batch as of unknown outcome; a read-model batch is all or nothing. No mocks.
//!
//! To make the writer gather a batch deterministically, a second connection (another process, as
//! far as SQLite can tell) holds the write lock: the writer's first job then waits in `BEGIN
//! IMMEDIATE`, and everything submitted meanwhile queues up for the next batch.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ledger_application::ports::{
    AppendError, ApplyOutcome, EventStore, Projection, ReadModelUpdate, StoreError,
};
use ledger_application::testkit::fixtures::{
    account, at, deposited_event, opened_event, recorded, scoped_key, single_append,
};
use ledger_sqlite::{GroupCommit, SqliteDatabase, WriteStats};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{Connection, Row};
use tempfile::TempDir;

/// Long enough for submitted jobs to reach the writer's queue, or for the writer to reach its wait
/// on the lock. Only orders the test's steps; nothing asserts on time.
const SETTLE: Duration = Duration::from_millis(300);

fn db_path(dir: &TempDir) -> PathBuf {
    dir.path().join("ledger.db")
}

/// Another connection to the file, holding SQLite's write lock until [`release`].
async fn hold_write_lock(path: &Path) -> SqliteConnection {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .busy_timeout(Duration::from_secs(5));
    let mut other = SqliteConnection::connect_with(&options)
        .await
        .expect("a second connection");
    sqlx::raw_sql("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .expect("take the write lock");
    other
}

async fn release(mut other: SqliteConnection) {
    sqlx::raw_sql("COMMIT")
        .execute(&mut other)
        .await
        .expect("release the write lock");
    other.close().await.expect("close");
}

async fn count(path: &Path, sql: &'static str) -> i64 {
    let mut conn = SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(path))
        .await
        .expect("a reader");
    let row = sqlx::query(sql).fetch_one(&mut conn).await.expect("count");
    let counted: i64 = row.get(0);
    conn.close().await.expect("close");
    counted
}

fn since(before: WriteStats, after: WriteStats) -> WriteStats {
    WriteStats {
        batches: after.batches - before.batches,
        jobs: after.jobs - before.jobs,
    }
}

/// An append opening `account_id` under `key_text`.
fn opening(key_text: &str, account_id: &str) -> ledger_application::ports::AtomicAppend {
    single_append(
        key_text,
        0,
        vec![recorded(account_id, 1, opened_event(), at(1, 8, 0))],
    )
}

/// Spawns `accounts` appends at once, each opening an account of its own under a key of its own.
fn spawn_openings(
    db: &SqliteDatabase,
    accounts: usize,
) -> Vec<tokio::task::JoinHandle<Result<(), AppendError>>> {
    (0..accounts)
        .map(|index| {
            let store = db.event_store();
            tokio::spawn(async move {
                store
                    .append(opening(&format!("k-{index}"), &format!("acc-{index}")))
                    .await
            })
        })
        .collect()
}

/// Awaits `submitted` (whose jobs queue up behind the held lock meanwhile) and releases the lock
/// once they have had the time to queue.
async fn release_while<F: std::future::Future>(lock: SqliteConnection, submitted: F) -> F::Output {
    let releasing = async {
        tokio::time::sleep(SETTLE).await;
        release(lock).await;
    };
    let (output, ()) = tokio::join!(submitted, releasing);
    output
}

/// Submits a lone append while the lock is held and waits until the writer has taken it into a
/// batch of its own (blocked in `BEGIN IMMEDIATE`): what is submitted next forms the next batch.
async fn occupy_writer(db: &SqliteDatabase) -> tokio::task::JoinHandle<Result<(), AppendError>> {
    let store = db.event_store();
    let blocker = tokio::spawn(async move { store.append(opening("blocker", "acc-0")).await });
    tokio::time::sleep(SETTLE).await;
    blocker
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_appends_commit_together_each_with_its_own_result() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let db = SqliteDatabase::open(&path).await.unwrap();
    let before = db.write_stats();

    let lock = hold_write_lock(&path).await;
    let appends = spawn_openings(&db, 50);
    tokio::time::sleep(SETTLE).await;
    assert_eq!(
        since(before, db.write_stats()),
        WriteStats::default(),
        "nothing commits, and nothing is answered, while another connection holds the lock"
    );
    assert!(appends.iter().all(|append| !append.is_finished()));
    release(lock).await;

    for append in appends {
        append.await.unwrap().expect("every append commits");
    }
    let committed = since(before, db.write_stats());
    println!("write_stats after 50 concurrent appends: {committed:?}");
    assert_eq!(committed.jobs, 50);
    assert!(
        committed.batches <= 3,
        "50 appends queued behind the lock commit in at most 3 transactions: {committed:?}"
    );
    assert_eq!(count(&path, "SELECT count(*) FROM events").await, 50);
    assert_eq!(count(&path, "SELECT count(*) FROM idempotency").await, 50);
    db.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_conflict_and_a_duplicate_in_a_batch_fail_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let db = SqliteDatabase::open(&path).await.unwrap();
    let before = db.write_stats();
    let lock = hold_write_lock(&path).await;
    let blocker = occupy_writer(&db).await;

    let store = db.event_store();
    let first = opening("k-a", "acc-1");
    let first_event_id = first.events().next().unwrap().event_id;
    // `join!` polls its futures in order, so the jobs queue in this order and run in it.
    let answers = async {
        tokio::join!(
            store.append(first),
            // acc-1's sequence 1 is taken by the job before: a conflict.
            store.append(opening("k-b", "acc-1")),
            // k-a is taken by the first job: a duplicate, before any other refusal.
            store.append(opening("k-a", "acc-2")),
            store.append(opening("k-c", "acc-3")),
        )
    };
    let (first, conflict, duplicate, last) = release_while(lock, answers).await;
    blocker.await.unwrap().expect("the blocker commits");

    first.expect("the first opening of acc-1 commits");
    last.expect("an unrelated append in the same batch commits");
    assert!(
        matches!(&conflict, Err(AppendError::Conflict { account_id }) if *account_id == account("acc-1")),
        "{conflict:?}"
    );
    assert!(
        matches!(&duplicate, Err(AppendError::DuplicateRequest { key: taken }) if *taken == scoped_key("k-a")),
        "{duplicate:?}"
    );
    assert_eq!(
        since(before, db.write_stats()),
        WriteStats {
            batches: 2,
            jobs: 5
        },
        "the blocker alone, then the four appends in one transaction"
    );

    // Nothing of the refused appends is written: acc-1 holds the first opening only, acc-2 nothing,
    // and neither k-b nor a second k-a record exists.
    let acc_1 = store.load(&account("acc-1"), 0).await.unwrap();
    assert_eq!(acc_1.len(), 1);
    assert_eq!(acc_1[0].event_id, first_event_id);
    assert!(store.load(&account("acc-2"), 0).await.unwrap().is_empty());
    assert_eq!(store.load(&account("acc-3"), 0).await.unwrap().len(), 1);
    assert!(
        store
            .idempotency_record(&scoped_key("k-b"))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(count(&path, "SELECT count(*) FROM idempotency").await, 3);
    assert_eq!(count(&path, "SELECT count(*) FROM events").await, 3);
    db.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn max_batch_one_commits_every_write_on_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let db = SqliteDatabase::open_with_group_commit(
        &path,
        GroupCommit {
            max_batch: 1,
            max_wait: Duration::ZERO,
        },
    )
    .await
    .unwrap();
    let before = db.write_stats();
    let lock = hold_write_lock(&path).await;
    let appends = spawn_openings(&db, 20);
    tokio::time::sleep(SETTLE).await;
    release(lock).await;
    for append in appends {
        append.await.unwrap().expect("every append commits");
    }
    assert_eq!(
        since(before, db.write_stats()),
        WriteStats {
            batches: 20,
            jobs: 20
        }
    );
    db.close().await.unwrap();
}

/// A deferred foreign key is checked at COMMIT, not at a statement: a trigger (added by "another
/// process") that breaks one makes the batch's COMMIT fail, the one failure the writer meets only
/// after every job of the batch has succeeded.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_commit_answers_every_write_of_its_batch_as_unknown_and_writes_none() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let db = SqliteDatabase::open(&path).await.unwrap();
    let mut other = SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(&path))
        .await
        .unwrap();
    sqlx::raw_sql(
        "CREATE TABLE poison_parent (id INTEGER PRIMARY KEY); \
         CREATE TABLE poison_child (parent_id INTEGER \
             REFERENCES poison_parent (id) DEFERRABLE INITIALLY DEFERRED); \
         CREATE TRIGGER poison AFTER INSERT ON events WHEN NEW.account_id = 'acc-poison' \
         BEGIN INSERT INTO poison_child (parent_id) VALUES (42); END;",
    )
    .execute(&mut other)
    .await
    .unwrap();
    other.close().await.unwrap();

    let before = db.write_stats();
    let lock = hold_write_lock(&path).await;
    let blocker = occupy_writer(&db).await;
    let store = db.event_store();
    let answers = async {
        tokio::join!(
            store.append(opening("k-fine", "acc-fine")),
            store.append(opening("k-poison", "acc-poison")),
        )
    };
    let (fine, poisoned) = release_while(lock, answers).await;
    blocker.await.unwrap().expect("the blocker's batch commits");

    assert!(
        matches!(fine, Err(AppendError::OutcomeUnknown(_))),
        "{fine:?}"
    );
    assert!(
        matches!(poisoned, Err(AppendError::OutcomeUnknown(_))),
        "{poisoned:?}"
    );
    assert_eq!(
        since(before, db.write_stats()),
        WriteStats {
            batches: 1,
            jobs: 1
        },
        "only the blocker's batch committed"
    );
    // The failed COMMIT was rolled back: none of the batch is on disk.
    assert!(
        store
            .idempotency_record(&scoped_key("k-fine"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .load(&account("acc-fine"), 0)
            .await
            .unwrap()
            .is_empty()
    );
    // And the writer goes on: the same append, retried, commits.
    store
        .append(opening("k-fine", "acc-fine"))
        .await
        .expect("the retry commits");
    db.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn writes_after_close_are_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let db = SqliteDatabase::open(&db_path(&dir)).await.unwrap();
    db.close().await.unwrap();
    let appended = db.event_store().append(opening("k-late", "acc-late")).await;
    assert!(
        matches!(
            appended,
            Err(AppendError::Store(StoreError::Unavailable(_)))
        ),
        "{appended:?}"
    );
    let update = ReadModelUpdate::from_event(&recorded("acc-late", 1, opened_event(), at(1, 8, 0)));
    let applied = db.read_model().apply(&update).await;
    assert!(
        matches!(applied, Err(StoreError::Unavailable(_))),
        "{applied:?}"
    );
}

fn update(account_id: &str, sequence: u64) -> ReadModelUpdate {
    let event = if sequence == 1 {
        opened_event()
    } else {
        let balance = format!("{}.00", (sequence - 1) * 10);
        deposited_event("10.00", &balance)
    };
    ReadModelUpdate::from_event(&recorded(account_id, sequence, event, at(1, 8, 0)))
}

async fn last_sequences(model: &impl Projection) -> (u64, u64) {
    (
        model.last_sequence(&account("acc-a")).await.expect("read"),
        model.last_sequence(&account("acc-b")).await.expect("read"),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_of_next_updates_applies_whole_and_any_other_applies_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let db = SqliteDatabase::open(&path).await.unwrap();
    let model = db.read_model();

    let run = [
        update("acc-a", 1),
        update("acc-b", 1),
        update("acc-a", 2),
        update("acc-b", 2),
        update("acc-a", 3),
    ];
    let before = db.write_stats();
    assert!(
        model.apply_batch(&run).await.unwrap(),
        "every update is next"
    );
    assert_eq!(
        since(before, db.write_stats()),
        WriteStats {
            batches: 1,
            jobs: 1
        },
        "one job, one transaction"
    );
    assert_eq!(last_sequences(&model).await, (3, 2));
    assert_eq!(
        count(&path, "SELECT count(*) FROM rm_account_transactions").await,
        3
    );

    let refused: [(&str, Vec<ReadModelUpdate>); 4] = [
        // acc-b's 4 after its 2: a gap, behind a next update of acc-a.
        ("a gap", vec![update("acc-a", 4), update("acc-b", 4)]),
        // acc-a's 3 again: stale, after a next update of acc-b.
        (
            "a stale update",
            vec![update("acc-b", 3), update("acc-a", 3)],
        ),
        // The same update twice: next at its first turn only.
        ("a repeat", vec![update("acc-b", 3), update("acc-b", 3)]),
        // An opening is only ever sequence 1.
        (
            "an opening out of place",
            vec![
                update("acc-b", 3),
                ReadModelUpdate {
                    sequence: 4,
                    ..update("acc-b", 1)
                },
            ],
        ),
    ];
    for (what, batch) in refused {
        assert!(
            !model.apply_batch(&batch).await.unwrap(),
            "{what} refuses the batch"
        );
        assert_eq!(
            last_sequences(&model).await,
            (3, 2),
            "{what} writes nothing"
        );
        assert_eq!(
            count(&path, "SELECT count(*) FROM rm_account_transactions").await,
            3,
            "{what} writes no transaction row"
        );
    }

    // A movement on an account never opened is for the projector to judge alone: refused, not an
    // error.
    assert!(!model.apply_batch(&[update("acc-c", 2)]).await.unwrap());
    assert!(model.apply_batch(&[]).await.unwrap(), "nothing to apply");
    // The single apply still answers as before.
    assert_eq!(
        model.apply(&update("acc-b", 3)).await.unwrap(),
        ApplyOutcome::Applied
    );
    assert_eq!(
        model.apply(&update("acc-b", 3)).await.unwrap(),
        ApplyOutcome::Stale
    );
    db.close().await.unwrap();
}

/// The database file's length: it grows only when WAL frames are copied back into it.
fn file_length(path: &Path) -> u64 {
    std::fs::metadata(path).expect("the database file").len()
}

/// The checkpointer thread copies committed frames back into the database file while the database
/// is open; the writer's own automatic checkpoint (at 10,000 pages) is far from reached by these few
/// writes, so without the checkpointer the file would not grow before `close`.
#[tokio::test(flavor = "multi_thread")]
async fn the_checkpointer_copies_the_wal_back_while_the_writer_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let db = SqliteDatabase::open(&path).await.unwrap();
    // Let the checkpointer copy back what the migrations wrote, then measure from there.
    tokio::time::sleep(SETTLE).await;
    let before = file_length(&path);
    for appended in spawn_openings(&db, 300) {
        appended
            .await
            .expect("the append task")
            .expect("the append");
    }
    let mut grown = false;
    for _ in 0..50 {
        if file_length(&path) > before {
            grown = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        grown,
        "the database file stayed at {before} bytes: nothing was checkpointed while open"
    );
    assert_eq!(
        count(&path, "SELECT COUNT(*) FROM events").await,
        300,
        "every append is readable"
    );
    db.close().await.unwrap();
}
