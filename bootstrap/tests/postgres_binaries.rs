//! The binaries with the PostgreSQL read model, as processes: `ledger-api` refuses it beside the
//! SQLite event store, `ledger migrate` applies its schema (repeatably, never printing the URL's
//! password), `ledger-projector` projects the DynamoDB stream into it while the API polls nothing,
//! and of two `ledger-projector` processes one projects while the other stands by, taking over
//! within seconds of the first being killed.

mod aws_stack;
mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aws_stack::{FreshDatabase, Stack};
use support::{run, stop_with_sigterm};

#[test]
fn ledger_api_refuses_the_postgres_read_model_beside_the_sqlite_event_store() {
    let output = run(
        env!("CARGO_BIN_EXE_ledger-api"),
        &[],
        &[
            ("LEDGER_EVENT_STORE", "sqlite"),
            ("LEDGER_READ_MODEL", "postgres"),
            (
                "DATABASE_URL",
                "postgres://ledger:hunter2@127.0.0.1:1/ledger",
            ),
        ],
    );
    assert!(!output.status.success(), "{output:?}");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(said.contains("LEDGER_EVENT_STORE=dynamodb"), "{said}");
    assert!(!said.contains("hunter2"), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledger_migrate_and_ledger_projector_run_the_postgres_read_model() {
    assert!(
        std::env::var_os("AWS_ENDPOINT_URL").is_some(),
        "AWS_ENDPOINT_URL is not set: these tests need DynamoDB Local; run ./scripts/test.sh"
    );
    let unique = uuid::Uuid::now_v7().simple().to_string();
    let fresh = FreshDatabase::create().await;
    let database = fresh.name.clone();
    let prefix = format!("pgbin_{unique}_");
    let url = fresh.url.clone();
    let vars = [
        ("LEDGER_EVENT_STORE", "dynamodb"),
        ("LEDGER_READ_MODEL", "postgres"),
        ("DATABASE_URL", url.as_str()),
        ("LEDGER_DYNAMODB_TABLE_PREFIX", prefix.as_str()),
    ];
    for _ in 0..2 {
        let output = run(env!("CARGO_BIN_EXE_ledger"), &["migrate"], &vars);
        assert!(output.status.success(), "{output:?}");
        let said = String::from_utf8_lossy(&output.stdout);
        assert!(
            said.contains(&format!("schema {}", ledger_postgres::SCHEMA_VERSION)),
            "{said}"
        );
        assert!(
            said.contains(&database) && !said.contains("not-for-logs"),
            "{said}"
        );
    }
    let created = run(env!("CARGO_BIN_EXE_ledger"), &["create-tables"], &vars);
    assert!(created.status.success(), "{created:?}");

    let config = ledger_bootstrap::LedgerConfig::from_lookup(|name| match name {
        "LEDGER_HTTP_ADDR" => Some("127.0.0.1:0".to_owned()),
        "LEDGER_HTTP_WORKERS" => Some("1".to_owned()),
        "LEDGER_READ_WAIT_TIMEOUT_MS" => Some("300".to_owned()),
        other => vars
            .iter()
            .find(|(key, _)| *key == other)
            .map(|(_, value)| (*value).to_owned()),
    })
    .expect("config");
    let application = ledger_bootstrap::Application::build(&config)
        .await
        .expect("starts");
    let base_url = format!("http://127.0.0.1:{}", application.port());
    let handle = application.handle();
    let server = tokio::spawn(application.run_until_stopped());
    let client = reqwest::Client::new();
    let opened = client
        .post(format!("{base_url}/v1/accounts"))
        .header("Idempotency-Key", format!("pg-binaries-{unique}"))
        .json(
            &serde_json::json!({"account_id": "pgbin-1", "owner": "P", "kind": "CHECKING",
            "currency": "USD"}),
        )
        .send()
        .await
        .expect("open");
    assert_eq!(opened.status().as_u16(), 201);
    let query = format!("{base_url}/v1/accounts/pgbin-1?min_sequence=1");
    // The API polls no stream: without the projector the account never reaches PostgreSQL.
    let behind = client.get(&query).send().await.expect("query");
    assert_eq!(behind.status().as_u16(), 503);

    let mut projector = Command::new(env!("CARGO_BIN_EXE_ledger-projector"))
        .envs(vars.iter().copied())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("ledger-projector starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let reply = client.get(&query).send().await.expect("query");
        if reply.status().as_u16() == 200 {
            break;
        }
        assert_eq!(reply.status().as_u16(), 503);
        assert!(
            Instant::now() < deadline,
            "the projector never fed PostgreSQL"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    stop_with_sigterm(&mut projector);
    handle.stop(true).await;
    server.await.expect("server task").expect("server stopped");
    drop(fresh);
}

/// How soon a standby must take over once the holder is gone: a standby polls every second.
const TAKEOVER_WITHIN: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_ledger_projectors_one_projects_and_the_other_takes_over_when_it_is_killed() {
    let stack = Stack::create("lease").await;
    let api = stack.spawn_api("ledger-api");
    let mut first = stack.spawn_projector("first ledger-projector");
    first.wait_for_line("projector lease acquired", Duration::from_secs(30));
    let mut second = stack.spawn_projector("second ledger-projector");
    second.wait_for_line("standing by", Duration::from_secs(30));

    api.open("lease-1").await;
    let mut last = 1;
    for _ in 0..3 {
        last = api.deposit("lease-1", "1.00").await;
    }
    let view = api
        .account_at("lease-1", last, Duration::from_secs(30))
        .await;
    assert_eq!(view["balance"], "3.00", "{view}");
    assert_eq!(
        second.count("projector lease acquired"),
        0,
        "{}",
        second.log()
    );

    // A crash: no release, no checkpoint stored. The server ends the session of the dead process,
    // which frees the advisory lock; the standby's next poll takes it.
    first.kill_with_sigkill();
    let killed_at = Instant::now();
    for _ in 0..3 {
        last = api.deposit("lease-1", "1.00").await;
    }
    second.wait_for_line("projector lease acquired", TAKEOVER_WITHIN);
    assert!(killed_at.elapsed() <= TAKEOVER_WITHIN + Duration::from_secs(1));
    let view = api
        .account_at("lease-1", last, Duration::from_secs(30))
        .await;
    assert_eq!(view["balance"], "6.00", "{view}");
    assert_eq!(view["last_sequence"], last);

    // The second read the stream again from the checkpoints the first stored before dying: whatever
    // it was handed twice was skipped, one row per movement.
    let mut connection = stack.database.connect().await;
    let rows: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM account_transactions WHERE account_id = 'lease-1'",
    )
    .fetch_one(&mut connection)
    .await
    .expect("count rows");
    assert_eq!(rows, 6);
    drop(connection);
    let (status, body) = api.get("/health/ready").await;
    assert_eq!(status, 200, "no dead letter after the takeover: {body}");

    second.stop_with_sigterm();
    drop(api);
    drop(stack);
}
