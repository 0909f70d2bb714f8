//! The deployable binaries as processes: the `ledger` admin tool against a real SQLite file and DynamoDB
//! Local, and `ledger-projector` projecting the events stream into a read model until SIGTERM.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs a binary of this package with `vars` added to the environment.
fn run(binary: &str, args: &[&str], vars: &[(&str, &str)]) -> Output {
    Command::new(binary)
        .args(args)
        .envs(vars.iter().copied())
        .env("RUST_LOG", "warn")
        .output()
        .expect("the binary runs")
}

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
    let pid = projector.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = projector.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "ledger-projector did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    handle.stop(true).await;
    server.await.expect("server task").expect("server stopped");
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
