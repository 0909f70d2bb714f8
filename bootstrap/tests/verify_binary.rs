//! `ledger verify` as a process, on an embedded SQLite ledger and on DynamoDB Local with the
//! PostgreSQL read model: it passes on a healthy ledger, and fails, naming the difference, once a
//! read-model row is changed behind the projector's back.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ledger_application::ports::{EventStore, Projection, SystemClock, UuidV7Ids};
use ledger_application::{
    CommandContext, CommandRequest, CommandService, FeedProjector, FeedProjectorConfig,
    IdempotencyKey, ProjectionRetry, Projector, RetryPolicy,
};
use ledger_domain::{AccountId, AccountKind, Amount, Currency, OwnerName};
use support::run;

/// The two accounts of [`write_history`].
const ACCOUNTS: [&str; 2] = ["verify-a", "verify-b"];

/// Two accounts written through the command service into `store`, a deposit and a transfer
/// between them: five events.
async fn write_history(store: Arc<dyn EventStore>) {
    let commands = CommandService::new(
        store,
        Arc::new(SystemClock),
        Arc::new(UuidV7Ids),
        RetryPolicy::default(),
    );
    let id = |text| AccountId::parse(text).expect("id");
    let amount = |text| Amount::parse(text).expect("amount");
    let requests = [
        CommandRequest::OpenAccount {
            account_id: Some(id("verify-a")),
            owner: OwnerName::parse("Ada").expect("owner"),
            kind: AccountKind::Checking,
            currency: Currency::parse("USD").expect("currency"),
            overdraft_limit: None,
        },
        CommandRequest::OpenAccount {
            account_id: Some(id("verify-b")),
            owner: OwnerName::parse("Bob").expect("owner"),
            kind: AccountKind::Savings,
            currency: Currency::parse("USD").expect("currency"),
            overdraft_limit: None,
        },
        CommandRequest::Deposit {
            account_id: id("verify-a"),
            amount: amount("100.00"),
            description: None,
        },
        CommandRequest::Transfer {
            source_account_id: id("verify-a"),
            target_account_id: id("verify-b"),
            amount: amount("30.00"),
            description: None,
        },
    ];
    for (index, request) in requests.iter().enumerate() {
        let context = CommandContext {
            caller: ledger_application::Caller::anonymous(),
            idempotency_key: IdempotencyKey::parse(&format!("verify-{index}")).expect("key"),
            correlation_id: format!("verify-{index}"),
            traceparent: None,
        };
        commands.execute(&context, request).await.expect("accepted");
    }
}

/// [`write_history`] on an embedded database, everything projected by the embedded feed projector.
async fn healthy_ledger(path: &Path) {
    let database = ledger_sqlite::SqliteDatabase::open(path)
        .await
        .expect("open");
    write_history(Arc::new(database.event_store())).await;
    let projector = FeedProjector::new(
        "verify-test",
        Arc::new(database.event_store()),
        Arc::new(database.read_model()) as Arc<dyn Projection>,
        Arc::new(database.checkpoints()),
        Arc::new(SystemClock),
        FeedProjectorConfig::default(),
        Arc::new(tokio::sync::Notify::new()),
    );
    assert_eq!(projector.catch_up().await.expect("projected"), 5);
    database.close().await.expect("close");
}

/// `ledger verify` on the ledger of [`write_history`] finds it clean.
fn verify_passes(vars: &[(&str, &str)]) {
    let output = run(env!("CARGO_BIN_EXE_ledger"), &["verify"], vars);
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert!(
        said.contains("verified 2 account(s), 5 event(s)")
            && said.contains("the read model agrees with the event store"),
        "{said}"
    );
}

/// `ledger verify` fails with exactly one difference, printed before the summary; returns its line.
fn verify_finds_one_difference(vars: &[(&str, &str)]) -> String {
    let output = run(env!("CARGO_BIN_EXE_ledger"), &["verify"], vars);
    let said = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let lines: Vec<&str> = said.lines().collect();
    assert_eq!(lines.len(), 2, "the difference, then the summary: {said}");
    assert!(
        lines[1].ends_with(": 1 difference(s) in 1 account(s)"),
        "{said}"
    );
    lines[0].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledger_verify_passes_on_a_healthy_ledger_and_names_a_tampered_row() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("ledger.db");
    let path_text = path.display().to_string();
    healthy_ledger(&path).await;
    let vars = [("LEDGER_SQLITE_PATH", path_text.as_str())];

    verify_passes(&vars);

    // Behind the projector's back, as a stray `sqlite3` session would.
    {
        use sqlx::Connection;
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&path)
            .busy_timeout(Duration::from_secs(5));
        let mut connection = sqlx::SqliteConnection::connect_with(&options)
            .await
            .expect("a connection of its own");
        sqlx::query("UPDATE rm_accounts SET balance = '75.00' WHERE account_id = 'verify-a'")
            .execute(&mut connection)
            .await
            .expect("tamper with the balance");
        connection.close().await.expect("close");
    }

    assert_eq!(
        verify_finds_one_difference(&vars),
        "verify-a balance: store 70.00, read model 75.00"
    );
}

#[test]
fn ledger_verify_that_cannot_reach_its_stores_says_so_apart_from_a_difference() {
    let output = run(
        env!("CARGO_BIN_EXE_ledger"),
        &["verify"],
        &[
            ("LEDGER_READ_MODEL", "postgres"),
            ("DATABASE_URL", "postgres://nobody:secret@127.0.0.1:1/none"),
            ("LEDGER_EVENT_STORE", "dynamodb"),
        ],
    );
    assert_eq!(output.status.code(), Some(3), "{output:?}");
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.starts_with("error: "), "{said}");
    assert!(
        !said.contains("secret"),
        "the password is never printed: {said}"
    );
}

/// The AWS-shaped topology: events in DynamoDB Local, the read model in PostgreSQL (filled here by
/// the application's projector, as `ledger-projector` would from the stream).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledger_verify_on_dynamodb_and_postgres_names_a_tampered_daily_balance() {
    use sqlx::{AssertSqlSafe, Connection};

    let server_url = std::env::var("DATABASE_URL").expect(
        "DATABASE_URL is not set: this test needs PostgreSQL; run ./scripts/test.sh, or \
         `source scripts/postgres-local.sh && postgres_local_start` first",
    );
    assert!(
        std::env::var_os("AWS_ENDPOINT_URL").is_some(),
        "AWS_ENDPOINT_URL is not set: this test needs DynamoDB Local; run ./scripts/test.sh"
    );
    let unique = uuid::Uuid::now_v7().simple().to_string();
    let database = format!("ledger_verify_{unique}");
    let prefix = format!("verify_{unique}_");
    let mut admin = sqlx::postgres::PgConnection::connect(&server_url)
        .await
        .expect("connect to DATABASE_URL");
    sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {database}")))
        .execute(&mut admin)
        .await
        .expect("a database of its own");
    let (base, _) = server_url
        .rsplit_once('/')
        .expect("a database in DATABASE_URL");
    let url = format!("{base}/{database}");
    let vars = [
        ("LEDGER_EVENT_STORE", "dynamodb"),
        ("LEDGER_READ_MODEL", "postgres"),
        ("DATABASE_URL", url.as_str()),
        ("LEDGER_DYNAMODB_TABLE_PREFIX", prefix.as_str()),
    ];
    for command in ["migrate", "create-tables"] {
        let output = run(env!("CARGO_BIN_EXE_ledger"), &[command], &vars);
        assert!(output.status.success(), "{command}: {output:?}");
    }

    let client = ledger_dynamodb::config::dynamodb_client().await;
    let store = Arc::new(ledger_dynamodb::DynamoEventStore::new(
        client,
        ledger_dynamodb::DynamoSettings::with_tables(ledger_dynamodb::DynamoTables::with_prefix(
            &prefix,
        )),
    ));
    write_history(store.clone()).await;
    let read_model = ledger_postgres::PostgresReadModel::connect(&url)
        .await
        .expect("connect to the read model");
    let projector = Projector::new(
        Arc::new(read_model.clone()),
        Arc::new(SystemClock),
        ProjectionRetry::default(),
    );
    for id in ACCOUNTS {
        let account_id = AccountId::parse(id).expect("id");
        for event in store.load(&account_id, 0).await.expect("load") {
            projector.project(&event).await.expect("projected");
        }
    }

    verify_passes(&vars);

    let mut connection = sqlx::postgres::PgConnection::connect(&url)
        .await
        .expect("a connection of its own");
    sqlx::query("UPDATE daily_balances SET closing_balance = 1 WHERE account_id = 'verify-b'")
        .execute(&mut connection)
        .await
        .expect("tamper with a closing balance");
    connection.close().await.expect("close");

    let difference = verify_finds_one_difference(&vars);
    assert!(
        difference.starts_with("verify-b closing balance of ")
            && difference.ends_with(": store 30.00, read model 1"),
        "{difference}"
    );

    read_model.close().await;
    sqlx::raw_sql(AssertSqlSafe(format!(
        "DROP DATABASE {database} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await
    .expect("drop the database");
    admin.close().await.expect("close the admin connection");
}
