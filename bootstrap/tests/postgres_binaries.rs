//! The binaries with the PostgreSQL read model, as processes: `ledger-api` refuses it beside the
//! SQLite event store, `ledger migrate` applies its schema (repeatably, never printing the URL's
//! password), and `ledger-projector` projects the DynamoDB stream into it while the API polls nothing.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ledger_postgres::testkit::{FreshDatabase, server_url};
use support::{run, stop_with_sigterm};

/// `postgres://user@host:port/db` as `postgres://user:{password}@host:port/{database}`. The local
/// server trusts loopback, so the password is ignored by it; it is there to be looked for in output.
fn url_for(database: &str, password: &str) -> String {
    let server = server_url();
    let (scheme, rest) = server.split_once("://").expect("a URL with a scheme");
    let authority = rest
        .split_once('/')
        .map_or(rest, |(authority, _)| authority);
    let (user, host) = authority.split_once('@').expect("a user in DATABASE_URL");
    let user = user.split_once(':').map_or(user, |(user, _)| user);
    format!("{scheme}://{user}:{password}@{host}/{database}")
}

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
    // Empty: `ledger migrate` below is what creates the schema. Dropped when the guard goes.
    let fresh = FreshDatabase::create().await;
    let database = fresh.name.clone();
    let prefix = format!("pgbin_{unique}_");
    let url = url_for(&database, "not-for-logs");
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
