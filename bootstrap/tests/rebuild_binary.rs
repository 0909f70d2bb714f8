//! `ledger rebuild` as a process on an embedded SQLite file: it replaces a corrupted read model with
//! one replayed from the events, keeps the projector's checkpoint, leaves no fresh file behind, says
//! what it did, and explains itself with `--help`; and it runs beside a serving `ledger-api`, whose
//! commands and projector go on across the swap without a gap or a dead letter; and a second
//! rebuild refuses to start while one runs.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ledger_application::memory::InMemoryReadModel;
use ledger_application::ports::{Projection, ProjectionCheckpoints, ProjectorLease};
use ledger_application::testkit::rebuild::{model_content, project_accounts, seed_history};
use ledger_bootstrap::admin::rebuild::ANOTHER_REBUILD_RUNS;
use ledger_sqlite::{SqliteDatabase, SqliteProjectorLease, SqliteRebuild};
use support::{run, stop_with_sigterm};

const ACCOUNTS: usize = 5;
const DEPOSITS: u64 = 6;

#[test]
fn ledger_rebuild_help_explains_the_command() {
    for flag in ["--help", "-h"] {
        let output = run(env!("CARGO_BIN_EXE_ledger"), &["rebuild", flag], &[]);
        assert!(output.status.success(), "{output:?}");
        let said = String::from_utf8_lossy(&output.stdout);
        assert!(said.contains("usage: ledger rebuild [--restart]"), "{said}");
        assert!(said.contains("ledger_rebuild"), "{said}");
    }
    let refused = run(env!("CARGO_BIN_EXE_ledger"), &["rebuild", "--bogus"], &[]);
    assert!(!refused.status.success());
    let overview = run(env!("CARGO_BIN_EXE_ledger"), &["--help"], &[]);
    assert!(String::from_utf8_lossy(&overview.stdout).contains("rebuild [--restart]"));
}

/// An embedded file with a history, projected, its checkpoint stored, then corrupted behind the
/// application's back.
async fn corrupted_embedded_file(path: &Path) -> Vec<String> {
    let db = SqliteDatabase::open(path).await.expect("open");
    let store = db.event_store();
    let accounts = seed_history(&store, ACCOUNTS, DEPOSITS).await;
    let projection: Arc<dyn Projection> = Arc::new(db.read_model());
    project_accounts(&store, projection.clone(), &accounts).await;
    db.checkpoints()
        .save_feed_checkpoint("embedded", 11)
        .await
        .expect("a checkpoint");
    db.close().await.expect("close");

    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path);
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect_with(&options)
        .await
        .expect("a connection of its own");
    sqlx::query(
        "UPDATE rm_accounts SET balance = '999.00', last_sequence = 2 WHERE account_id = ?1",
    )
    .bind(&accounts[0])
    .execute(&mut conn)
    .await
    .expect("corrupt an account");
    sqlx::query("DELETE FROM rm_account_transactions WHERE account_id = ?1")
        .bind(&accounts[1])
        .execute(&mut conn)
        .await
        .expect("lose movements");
    <sqlx::SqliteConnection as sqlx::Connection>::close(conn)
        .await
        .expect("close");
    accounts
}

/// Two rebuilds would write one fresh model and race to swap it in: while another holds the rebuild
/// lease (here the test, holding the same file lock a running `ledger rebuild` holds), `ledger
/// rebuild` refuses, writes nothing and says why; once it is released, the rebuild runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_ledger_rebuild_refuses_while_one_runs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("ledger.db");
    corrupted_embedded_file(&path).await;
    let path_text = path.display().to_string();
    let lease = SqliteProjectorLease::beside_for(&path, "rebuild");
    let held = lease
        .try_acquire()
        .await
        .expect("the lock file")
        .expect("the rebuild lease is free");

    let refused = run(
        env!("CARGO_BIN_EXE_ledger"),
        &["rebuild"],
        &[("LEDGER_SQLITE_PATH", &path_text)],
    );
    assert!(!refused.status.success(), "{refused:?}");
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains(ANOTHER_REBUILD_RUNS), "{said}");
    assert!(
        !SqliteRebuild::fresh_path(&path).exists(),
        "a refused rebuild writes no fresh model"
    );

    drop(held);
    let rebuilt = run(
        env!("CARGO_BIN_EXE_ledger"),
        &["rebuild"],
        &[("LEDGER_SQLITE_PATH", &path_text)],
    );
    assert!(rebuilt.status.success(), "{rebuilt:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledger_rebuild_replaces_a_corrupted_embedded_read_model() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("ledger.db");
    let accounts = corrupted_embedded_file(&path).await;
    let path_text = path.display().to_string();

    let output = run(
        env!("CARGO_BIN_EXE_ledger"),
        &["rebuild"],
        &[("LEDGER_SQLITE_PATH", &path_text)],
    );

    assert!(output.status.success(), "{output:?}");
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(said.contains("from the first account"), "{said}");
    assert!(said.contains(&format!("{ACCOUNTS} account(s)")), "{said}");
    assert!(
        said.contains(&format!("{} event(s)", ACCOUNTS as u64 * (DEPOSITS + 1))),
        "{said}"
    );
    assert!(said.contains("0 open dead letter(s)"), "{said}");
    assert!(!SqliteRebuild::fresh_path(&path).exists());

    let db = SqliteDatabase::open(&path).await.expect("reopen");
    let store = db.event_store();
    let reference = Arc::new(InMemoryReadModel::new());
    project_accounts(&store, reference.clone(), &accounts).await;
    assert_eq!(
        model_content(&db.read_model(), &accounts).await,
        model_content(reference.as_ref(), &accounts).await
    );
    assert_eq!(
        db.checkpoints().feed_checkpoint("embedded").await.unwrap(),
        Some(11)
    );
    db.close().await.expect("close");

    // A second run has nothing to resume and gives the same model.
    let again = run(
        env!("CARGO_BIN_EXE_ledger"),
        &["rebuild"],
        &[("LEDGER_SQLITE_PATH", &path_text)],
    );
    assert!(again.status.success(), "{again:?}");
    assert!(String::from_utf8_lossy(&again.stdout).contains("from the first account"));
}

/// A loopback port nothing listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

async fn post(client: &reqwest::Client, url: String, key: String, body: serde_json::Value) {
    let response = client
        .post(url)
        .header("Idempotency-Key", key)
        .json(&body)
        .send()
        .await
        .expect("request");
    assert!(response.status().is_success(), "{}", response.status());
}

async fn last_sequence(client: &reqwest::Client, base_url: &str, id: &str) -> Option<u64> {
    let response = client
        .get(format!("{base_url}/v1/accounts/{id}"))
        .send()
        .await
        .ok()?;
    let body: serde_json::Value = response.json().await.ok()?;
    body["last_sequence"].as_u64()
}

/// `ledger-api` in embedded mode on the file at `path`, serving: the process and its base URL.
async fn start_api(path: &str) -> (std::process::Child, String) {
    let address = format!("127.0.0.1:{}", free_port());
    let base_url = format!("http://{address}");
    let api = Command::new(env!("CARGO_BIN_EXE_ledger-api"))
        .envs([
            ("LEDGER_SQLITE_PATH", path),
            ("LEDGER_HTTP_ADDR", address.as_str()),
            ("RUST_LOG", "warn"),
        ])
        .stdout(Stdio::null())
        .spawn()
        .expect("ledger-api starts");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while client
        .get(format!("{base_url}/health/live"))
        .send()
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "ledger-api did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    (api, base_url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledger_rebuild_runs_beside_a_serving_embedded_api_without_a_gap() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("ledger.db");
    let path_text = path.display().to_string();
    let (mut api, base_url) = start_api(&path_text).await;
    let client = reqwest::Client::new();

    let accounts: Vec<String> = (0..4).map(|index| format!("live-{index}")).collect();
    for id in &accounts {
        post(
            &client,
            format!("{base_url}/v1/accounts"),
            format!("open-{id}"),
            serde_json::json!({"account_id": id, "owner": "O", "kind": "CHECKING", "currency": "USD"}),
        )
        .await;
        for deposit in 0..3 {
            post(
                &client,
                format!("{base_url}/v1/accounts/{id}/deposits"),
                format!("seed-{id}-{deposit}"),
                serde_json::json!({"amount": "1.00"}),
            )
            .await;
        }
    }
    // Commands keep coming while the rebuild runs; each is answered (the swap's lock is brief).
    let writing = Arc::new(AtomicBool::new(true));
    let writer = tokio::spawn({
        let client = client.clone();
        let base_url = base_url.clone();
        let accounts = accounts.clone();
        let writing = writing.clone();
        async move {
            let mut written = vec![0_u64; accounts.len()];
            // Bounded: at most 400 commands.
            for round in 0..400_usize {
                if !writing.load(Ordering::SeqCst) && round > 4 {
                    break;
                }
                let index = round % accounts.len();
                let id = &accounts[index];
                post(
                    &client,
                    format!("{base_url}/v1/accounts/{id}/deposits"),
                    format!("during-{round}"),
                    serde_json::json!({"amount": "1.00"}),
                )
                .await;
                written[index] += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            written
        }
    });

    let rebuilt = tokio::task::spawn_blocking({
        let path_text = path_text.clone();
        move || {
            run(
                env!("CARGO_BIN_EXE_ledger"),
                &["rebuild"],
                &[("LEDGER_SQLITE_PATH", &path_text)],
            )
        }
    })
    .await
    .expect("the rebuild process");
    writing.store(false, Ordering::SeqCst);
    let written = writer.await.expect("the writer");
    assert!(rebuilt.status.success(), "{rebuilt:?}");

    // The API's projector reaches every command, across the swap (bounded wait).
    for (id, during) in accounts.iter().zip(&written) {
        let expected = 1 + 3 + during;
        let deadline = Instant::now() + Duration::from_secs(30);
        while last_sequence(&client, &base_url, id).await != Some(expected) {
            assert!(Instant::now() < deadline, "{id} never reached {expected}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    stop_with_sigterm(&mut api);

    let db = SqliteDatabase::open(&path).await.expect("reopen");
    let store = db.event_store();
    let reference = Arc::new(InMemoryReadModel::new());
    project_accounts(&store, reference.clone(), &accounts).await;
    assert_eq!(
        model_content(&db.read_model(), &accounts).await,
        model_content(reference.as_ref(), &accounts).await,
        "every event applied once, in order"
    );
    assert!(db.read_model().dead_letters(10).await.unwrap().is_empty());
    db.close().await.expect("close");
}
