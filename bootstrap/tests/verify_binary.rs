//! `ledger verify` as a process on an embedded SQLite ledger: it passes on a healthy ledger, and
//! fails, naming the difference, once a read-model row is changed behind the projector's back.

#[allow(dead_code, reason = "these tests only run binaries to completion")]
mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ledger_application::ports::{Projection, SystemClock, UuidV7Ids};
use ledger_application::{
    CommandContext, CommandRequest, CommandService, FeedProjector, FeedProjectorConfig,
    IdempotencyKey, RetryPolicy,
};
use ledger_domain::{AccountId, AccountKind, Amount, Currency, OwnerName};
use support::run;

/// Two accounts written through the command service, a deposit and a transfer between them, and
/// everything projected by the embedded feed projector.
async fn healthy_ledger(path: &Path) {
    let database = ledger_sqlite::SqliteDatabase::open(path)
        .await
        .expect("open");
    let commands = CommandService::new(
        Arc::new(database.event_store()),
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
            idempotency_key: IdempotencyKey::parse(&format!("verify-{index}")).expect("key"),
            correlation_id: format!("verify-{index}"),
            traceparent: None,
        };
        commands.execute(&context, request).await.expect("accepted");
    }
    let projector = FeedProjector::new(
        "verify-test",
        Arc::new(database.event_store()),
        Arc::new(database.read_model()) as Arc<dyn Projection>,
        Arc::new(SystemClock),
        FeedProjectorConfig::default(),
        Arc::new(tokio::sync::Notify::new()),
    );
    assert_eq!(projector.catch_up().await.expect("projected"), 5);
    database.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledger_verify_passes_on_a_healthy_ledger_and_names_a_tampered_row() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("ledger.db");
    let path_text = path.display().to_string();
    healthy_ledger(&path).await;
    let vars = [("LEDGER_SQLITE_PATH", path_text.as_str())];

    let healthy = run(env!("CARGO_BIN_EXE_ledger"), &["verify"], &vars);
    let said = String::from_utf8_lossy(&healthy.stdout);
    assert!(healthy.status.success(), "{healthy:?}");
    assert!(
        said.contains("verified 2 account(s), 5 event(s)")
            && said.contains("the read model agrees with the event store"),
        "{said}"
    );

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

    let damaged = run(env!("CARGO_BIN_EXE_ledger"), &["verify"], &vars);
    let said = String::from_utf8_lossy(&damaged.stdout);
    assert_eq!(damaged.status.code(), Some(1), "{damaged:?}");
    let lines: Vec<&str> = said.lines().collect();
    assert_eq!(lines.len(), 2, "the difference, then the summary: {said}");
    assert_eq!(lines[0], "verify-a balance: store 70.00, read model 75.00");
    assert!(
        said.trim_end()
            .ends_with(": 1 difference(s) in 1 account(s)"),
        "{said}"
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
