//! The deployable binaries as processes: the `ledger` admin tool against a real SQLite file and DynamoDB
//! Local (dead letters listed and redriven included), and `ledger-projector` projecting the events
//! stream into a read model until SIGTERM, one process at a time: a second stands by while the first
//! holds the file lock beside the SQLite read model, and takes over when the first is killed.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{LoggedProcess, run, stop_with_sigterm};

fn require_dynamodb_local() {
    assert!(
        std::env::var_os("AWS_ENDPOINT_URL").is_some(),
        "AWS_ENDPOINT_URL is not set: these tests need DynamoDB Local; run ./scripts/test.sh"
    );
}

/// A table prefix no other test or run uses.
fn unique_prefix(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{name}_{}_{nanos}_", std::process::id())
}

#[test]
fn ledger_migrate_creates_the_database_and_is_repeatable() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("nested/ledger.db");
    let path_text = path.display().to_string();
    for _ in 0..2 {
        let output = run(
            env!("CARGO_BIN_EXE_ledger"),
            &["migrate"],
            &[("LEDGER_SQLITE_PATH", &path_text)],
        );
        assert!(output.status.success(), "{output:?}");
        let said = String::from_utf8_lossy(&output.stdout);
        assert!(
            said.contains(&format!("schema {}", ledger_sqlite::SCHEMA_VERSION)),
            "{said}"
        );
    }
    assert!(Path::new(&path).exists());
}

#[test]
fn ledger_without_a_known_command_prints_usage_and_fails() {
    let output = run(env!("CARGO_BIN_EXE_ledger"), &["frobnicate"], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("create-tables"));
    let output = run(
        env!("CARGO_BIN_EXE_ledger"),
        &["migrate"],
        &[("LEDGER_SNAPSHOT_EVERY", "zero")],
    );
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("LEDGER_SNAPSHOT_EVERY"));
}

#[test]
fn ledger_create_tables_is_idempotent() {
    require_dynamodb_local();
    let prefix = unique_prefix("admin");
    let vars = [("LEDGER_DYNAMODB_TABLE_PREFIX", prefix.as_str())];
    for _ in 0..2 {
        let output = run(env!("CARGO_BIN_EXE_ledger"), &["create-tables"], &vars);
        assert!(output.status.success(), "{output:?}");
        let said = String::from_utf8_lossy(&output.stdout);
        assert!(said.contains(&format!("{prefix}ledger_events")), "{said}");
    }
}

/// The API writes to DynamoDB; a separate `ledger-projector` process follows the stream into its own
/// read model, and stops cleanly on SIGTERM with its checkpoints stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledger_projector_follows_the_stream_into_its_read_model() {
    require_dynamodb_local();
    let prefix = unique_prefix("projector");
    let dir = tempfile::tempdir().expect("temp dir");
    let api_db = dir.path().join("api.db").display().to_string();
    let projector_db = dir.path().join("projector.db").display().to_string();
    let created = run(
        env!("CARGO_BIN_EXE_ledger"),
        &["create-tables"],
        &[("LEDGER_DYNAMODB_TABLE_PREFIX", &prefix)],
    );
    assert!(created.status.success(), "{created:?}");

    // Commands through the real service start-up, with DynamoDB as the event store.
    let config = ledger_bootstrap::LedgerConfig::from_lookup(|name| match name {
        "LEDGER_EVENT_STORE" => Some("dynamodb".to_owned()),
        "LEDGER_DYNAMODB_TABLE_PREFIX" => Some(prefix.clone()),
        "LEDGER_SQLITE_PATH" => Some(api_db.clone()),
        "LEDGER_HTTP_ADDR" => Some("127.0.0.1:0".to_owned()),
        "LEDGER_HTTP_WORKERS" => Some("1".to_owned()),
        _ => None,
    })
    .expect("config");
    let application = ledger_bootstrap::Application::build(&config)
        .await
        .expect("starts");
    let base_url = format!("http://127.0.0.1:{}", application.port());
    let handle = application.handle();
    let server = tokio::spawn(application.run_until_stopped());

    let mut projector = Command::new(env!("CARGO_BIN_EXE_ledger-projector"))
        .envs([
            ("LEDGER_DYNAMODB_TABLE_PREFIX", prefix.as_str()),
            ("LEDGER_SQLITE_PATH", projector_db.as_str()),
            ("RUST_LOG", "warn"),
        ])
        .stdout(Stdio::null())
        .spawn()
        .expect("ledger-projector starts");

    assert_eq!(
        open_and_deposit(&base_url).await,
        3,
        "three commands accepted"
    );

    // The projector's own read model reaches the account's third event.
    let database = ledger_sqlite::SqliteDatabase::open(Path::new(&projector_db))
        .await
        .expect("open");
    let read_model = database.read_model();
    let id = ledger_domain::AccountId::parse("proj-1").expect("id");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        use ledger_application::ports::ReadModelQuery;
        let view = read_model.account(&id).await.expect("read");
        if view.as_ref().is_some_and(|v| v.last_sequence == 3) {
            assert_eq!(view.expect("view").balance.to_string(), "7.50");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the projector did not catch up: {view:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    database.close().await.expect("close");

    // SIGTERM: the projector finishes its round and exits successfully.
    stop_with_sigterm(&mut projector);
    handle.stop(true).await;
    server.await.expect("server task").expect("server stopped");
}

/// The file lock beside the SQLite read model is the lease: the kernel releases it when its holder is
/// killed, even by SIGKILL, and the standby takes over within seconds.
#[test]
fn a_second_ledger_projector_on_sqlite_stands_by_until_the_first_is_killed() {
    require_dynamodb_local();
    let prefix = unique_prefix("lease");
    let dir = tempfile::tempdir().expect("temp dir");
    let read_model = dir.path().join("projector.db").display().to_string();
    let vars = [
        ("LEDGER_DYNAMODB_TABLE_PREFIX", prefix.as_str()),
        ("LEDGER_SQLITE_PATH", read_model.as_str()),
    ];
    let created = run(env!("CARGO_BIN_EXE_ledger"), &["create-tables"], &vars);
    assert!(created.status.success(), "{created:?}");
    let projector = env!("CARGO_BIN_EXE_ledger-projector");
    let mut first = LoggedProcess::spawn("first ledger-projector", projector, &vars);
    first.wait_for_line("projector lease acquired", Duration::from_secs(30));
    let mut second = LoggedProcess::spawn("second ledger-projector", projector, &vars);
    second.wait_for_line("standing by", Duration::from_secs(30));
    // Standing by means not projecting: it keeps asking, it does not take the lease.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        second.count("projector lease acquired"),
        0,
        "{}",
        second.log()
    );

    first.kill_with_sigkill();
    second.wait_for_line("projector lease acquired", Duration::from_secs(5));
    second.stop_with_sigterm();
}

/// Opens `proj-1` and deposits 5.00 and 2.50 over HTTP, returning how many commands were accepted.
async fn open_and_deposit(base_url: &str) -> usize {
    let client = reqwest::Client::new();
    let commands = [
        (
            "/v1/accounts",
            serde_json::json!({"account_id": "proj-1", "owner": "P", "kind": "CHECKING", "currency": "USD"}),
        ),
        (
            "/v1/accounts/proj-1/deposits",
            serde_json::json!({"amount": "5.00"}),
        ),
        (
            "/v1/accounts/proj-1/deposits",
            serde_json::json!({"amount": "2.50"}),
        ),
    ];
    let mut accepted = 0;
    for (index, (path, body)) in commands.iter().enumerate() {
        let response = client
            .post(format!("{base_url}{path}"))
            .header("Idempotency-Key", format!("projector-test-{index}"))
            .json(body)
            .send()
            .await
            .expect("request");
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        accepted += 1;
    }
    accepted
}

/// A connection of its own to the file at `path`, as a `sqlite3` shell would have.
async fn other_connection(path: &Path) -> sqlx::SqliteConnection {
    use sqlx::Connection;
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .busy_timeout(Duration::from_secs(5));
    sqlx::SqliteConnection::connect_with(&options)
        .await
        .expect("a connection of its own")
}

/// An embedded database where acc-p's event 2 went in behind the application's back with a broken
/// payload (the rest of the row is what the codec writes), acc-p's event 3 and acc-q's opening
/// after it, all projected. Returns the payload the row should have had.
async fn embedded_with_a_poison_row(
    database: &ledger_sqlite::SqliteDatabase,
    path: &Path,
) -> String {
    use std::sync::Arc;

    use ledger_application::codec;
    use ledger_application::ports::{EventStore, Projection, SystemClock};
    use ledger_application::testkit::fixtures::{
        at, deposited_event, opened_event, recorded, single_append,
    };
    use ledger_application::{FeedProjector, FeedProjectorConfig};

    let store = database.event_store();
    for id in ["acc-p", "acc-q"] {
        store
            .append(single_append(
                &format!("open-{id}"),
                0,
                vec![recorded(id, 1, opened_event(), at(1, 8, 0))],
            ))
            .await
            .expect("open");
    }
    let good = codec::encode(&recorded(
        "acc-p",
        2,
        deposited_event("1.00", "1.00"),
        at(1, 9, 0),
    ))
    .expect("encode");
    sqlx::query(
        "INSERT INTO events (account_id, sequence, event_id, event_type, schema_version, payload, \
         metadata, recorded_at) VALUES (?1, ?2, ?3, ?4, ?5, '{not json', ?6, ?7)",
    )
    .bind(&good.account_id)
    .bind(2_i64)
    .bind(&good.event_id)
    .bind(good.event_type)
    .bind(i64::from(good.schema_version))
    .bind(&good.metadata)
    .bind(&good.recorded_at)
    .execute(&mut other_connection(path).await)
    .await
    .expect("the poison row");
    store
        .append(single_append(
            "p-3",
            2,
            vec![recorded(
                "acc-p",
                3,
                deposited_event("2.00", "3.00"),
                at(1, 10, 0),
            )],
        ))
        .await
        .expect("append behind the poison row");
    let projector = FeedProjector::new(
        "binaries-test",
        Arc::new(database.event_store()),
        Arc::new(database.read_model()) as Arc<dyn Projection>,
        Arc::new(database.checkpoints()),
        Arc::new(SystemClock),
        FeedProjectorConfig::default(),
        Arc::new(tokio::sync::Notify::new()),
    );
    assert_eq!(projector.catch_up().await.expect("not stalled"), 4);
    good.payload
}

/// The fix: the row repaired (the trigger that keeps events immutable is lifted for it only).
async fn repair_poison_row(path: &Path, payload: &str) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP TRIGGER events_refuse_update; \
         UPDATE events SET payload = '{}' WHERE account_id = 'acc-p' AND sequence = 2; \
         CREATE TRIGGER events_refuse_update BEFORE UPDATE ON events \
         BEGIN SELECT RAISE(ABORT, 'events are immutable: UPDATE refused'); END;",
        payload.replace('\'', "''")
    )))
    .execute(&mut other_connection(path).await)
    .await
    .expect("repair the row");
}

/// A poison row in the embedded store: `ledger dead-letters list` shows it with its raw form and the
/// account's next event waiting behind it; `retry` fails while the row is still bad, and after the
/// row is repaired applies both, in order, and the list is empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledger_dead_letters_lists_a_poison_row_and_redrives_it_after_a_fix() {
    use ledger_application::ports::{Projection, ReadModelQuery};

    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("ledger.db");
    let path_text = path.display().to_string();
    let database = ledger_sqlite::SqliteDatabase::open(&path)
        .await
        .expect("open");
    let good_payload = embedded_with_a_poison_row(&database, &path).await;
    let read_model = database.read_model();
    let letters = read_model.dead_letters(10).await.expect("letters");
    assert_eq!(letters.len(), 2, "{letters:?}");
    let head = letters[0].id.to_string();

    let vars = [("LEDGER_SQLITE_PATH", path_text.as_str())];
    let ledger = env!("CARGO_BIN_EXE_ledger");
    let listed = run(ledger, &["dead-letters", "list"], &vars);
    assert!(listed.status.success(), "{listed:?}");
    let said = String::from_utf8_lossy(&listed.stdout);
    assert!(said.contains("2 open dead letter(s)"), "{said}");
    assert!(
        said.contains(&format!("{head}\taccount=acc-p\tsequence=2\tstate=dead")),
        "{said}"
    );
    assert!(said.contains("{not json"), "the raw form is shown: {said}");
    assert!(
        said.contains(&format!("sequence=3\tstate=waiting behind {head}")),
        "{said}"
    );

    let refused = run(ledger, &["dead-letters", "retry", &head], &vars);
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("still cannot be projected"),
        "{refused:?}"
    );

    repair_poison_row(&path, &good_payload).await;
    let retried = run(ledger, &["dead-letters", "retry", &head], &vars);
    assert!(retried.status.success(), "{retried:?}");
    let said = String::from_utf8_lossy(&retried.stdout);
    assert!(
        said.contains("2 event(s) applied, 2 letter(s) resolved, last_sequence 3"),
        "{said}"
    );
    let view = read_model
        .account(&ledger_domain::AccountId::parse("acc-p").expect("id"))
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(
        (view.balance.to_string(), view.last_sequence),
        ("3.00".to_owned(), 3)
    );
    let listed = run(ledger, &["dead-letters", "list"], &vars);
    assert!(listed.status.success(), "{listed:?}");
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains("no open dead letters"),
        "{listed:?}"
    );
    let again = run(ledger, &["dead-letters", "retry", &head], &vars);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already resolved"));
    database.close().await.expect("close");
}
