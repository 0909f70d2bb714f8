//! The ledger over real HTTP with DynamoDB Local as its event store and the stream poller feeding the
//! read model: the same concurrency scenarios as the embedded ledger, and a whole account life.

use std::sync::Arc;

use ledger_tests::{TestApp, scenarios};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_withdrawals_never_overdraw_on_dynamodb() {
    let app = Arc::new(TestApp::spawn_dynamodb(&[]).await);
    scenarios::concurrent_withdrawals_never_overdraw(app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_transfers_conserve_money_on_dynamodb() {
    let app = Arc::new(TestApp::spawn_dynamodb(&[]).await);
    scenarios::concurrent_transfers_conserve_money(app, 10, 300).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_key_sent_ten_times_in_parallel_has_one_effect_on_dynamodb() {
    let app = Arc::new(TestApp::spawn_dynamodb(&[]).await);
    scenarios::one_key_sent_ten_times_in_parallel_has_one_effect(app).await;
}

/// Issue 6's interleavings on DynamoDB, from two instances on the same tables.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_attempt_under_one_key_gets_the_one_answer_on_dynamodb() {
    let (first, second) = TestApp::spawn_dynamodb_pair().await;
    scenarios::every_attempt_under_one_key_gets_the_one_answer(vec![
        Arc::new(first),
        Arc::new(second),
    ])
    .await;
}

/// Snapshots every 3 events: a long-lived account keeps deciding correctly from snapshot plus tail.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_account_served_from_snapshots_keeps_its_balance() {
    let app = TestApp::spawn_dynamodb(&[("LEDGER_SNAPSHOT_EVERY", "3")]).await;
    app.open("snap", "EUR", Some("5.00")).await;
    for _ in 0..10 {
        assert_eq!(app.deposit("snap", "1.10").await.status, 200);
    }
    let withdrawal = app.withdraw("snap", "16.00").await;
    assert_eq!(withdrawal.status, 200, "{}", withdrawal.raw);
    assert_eq!(withdrawal.body["balance_after"], "-5.00");
    assert_eq!(
        app.withdraw("snap", "0.01").await.code(),
        "insufficient_funds"
    );
    let account = app.folded("snap").await;
    assert_eq!(account.version(), 12);
    let view = app.account_at("snap", 12).await;
    assert_eq!(view.status, 200, "{}", view.raw);
    assert_eq!(view.body["balance"], "-5.00");
    let transactions = app.get("/v1/accounts/snap/transactions?limit=200").await;
    assert_eq!(
        transactions.body["items"].as_array().expect("items").len(),
        11
    );
    app.stop().await;
}
