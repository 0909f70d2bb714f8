//! The AWS-shaped topology on DynamoDB Local and PostgreSQL: two `ledger-api` instances with the
//! shared PostgreSQL read model run no stream poller of their own, and one projector (the
//! `ledger-projector` poller, run here in the test) is what makes their queries converge.

use std::time::Duration;

use ledger_bootstrap::startup::{ReadSide, stream_poller};
use ledger_postgres::PostgresReadModel;
use ledger_postgres::testkit::FreshDatabase;
use ledger_tests::TestApp;
use tokio::sync::watch;

/// Asks `app` for `account_id` at `min_sequence` until it answers (each ask waits up to the short
/// read wait of these instances), within a bound.
async fn converged_balance(app: &TestApp, account_id: &str, min_sequence: u64) -> String {
    for _ in 0..60 {
        let reply = app.account_at(account_id, min_sequence).await;
        match reply.status {
            200 => return reply.body["balance"].as_str().expect("balance").to_owned(),
            503 => assert_eq!(reply.code(), "read_model_behind", "{}", reply.raw),
            other => panic!("unexpected {other}: {}", reply.raw),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{account_id} never reached sequence {min_sequence} in the PostgreSQL read model");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn api_instances_on_postgres_poll_nothing_and_converge_through_the_one_projector() {
    // Migrated as `ledger migrate` does; dropped when the guard goes.
    let database = FreshDatabase::migrated().await;
    let database_url = database.url();
    let prefix = format!("pgtopo_{}_", uuid::Uuid::now_v7().simple());
    let vars = [
        ("LEDGER_DYNAMODB_TABLE_PREFIX", prefix.as_str()),
        ("LEDGER_READ_MODEL", "postgres"),
        ("DATABASE_URL", database_url.as_str()),
        ("LEDGER_READ_WAIT_TIMEOUT_MS", "300"),
    ];
    let writer = TestApp::spawn_dynamodb(&vars).await;
    let reader = TestApp::spawn_dynamodb(&vars).await;

    // Readiness checks the event store, the read model and its dead letters; no lag (not theirs).
    for app in [&writer, &reader] {
        let ready = app.get("/health/ready").await;
        assert_eq!(ready.status, 200, "{}", ready.raw);
    }

    writer.open("pg-alice", "EUR", None).await;
    let deposit = writer.deposit("pg-alice", "12.50").await;
    assert_eq!(deposit.status, 200, "{}", deposit.raw);
    assert_eq!(deposit.body["sequence"], 2);
    // No projector runs yet, and neither API process polls the stream: nothing reaches PostgreSQL,
    // so both answer that the read model is behind, however long they are given.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for app in [&writer, &reader] {
        let behind = app.account_at("pg-alice", 2).await;
        assert_eq!(behind.status, 503, "{}", behind.raw);
        assert_eq!(behind.code(), "read_model_behind", "{}", behind.raw);
    }

    // The one consumer of the stream, as `ledger-projector` builds it.
    let read_side = ReadSide::Postgres(
        PostgresReadModel::connect(&database_url)
            .await
            .expect("the projector's connection"),
    );
    let clients = ledger_dynamodb::config::clients().await;
    let poller = stream_poller(&clients, &format!("{prefix}ledger_events"), &read_side)
        .await
        .expect("stream poller");
    let (stop, stopped) = watch::channel(false);
    let projector = tokio::spawn(async move { poller.run(stopped).await });

    assert_eq!(converged_balance(&reader, "pg-alice", 2).await, "12.50");
    assert_eq!(converged_balance(&writer, "pg-alice", 2).await, "12.50");
    // Written through one instance, read through the other, in both directions.
    let withdrawal = reader.withdraw("pg-alice", "2.25").await;
    assert_eq!(withdrawal.status, 200, "{}", withdrawal.raw);
    assert_eq!(withdrawal.body["sequence"], 3);
    assert_eq!(converged_balance(&writer, "pg-alice", 3).await, "10.25");
    let transactions = reader
        .get("/v1/accounts/pg-alice/transactions?limit=10")
        .await;
    assert_eq!(transactions.status, 200, "{}", transactions.raw);
    assert_eq!(
        transactions.body["items"].as_array().expect("items").len(),
        2
    );

    let _ = stop.send(true);
    projector.await.expect("projector task");
    read_side.close().await.expect("close the projector's pool");
    writer.stop().await;
    reader.stop().await;
    drop(database);
}
