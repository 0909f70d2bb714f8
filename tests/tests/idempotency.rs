//! Idempotent commands over real HTTP: a retry returns the original body and writes no event, and
//! every attempt under one key — after, queued behind, or racing from another instance — gets one answer.

use std::sync::Arc;

use ledger_tests::{TestApp, new_key, scenarios};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_command_returns_the_same_body_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let key = new_key();
    let open = json!({"owner": "Carol", "kind": "CHECKING", "currency": "GBP"});
    let first = app.command("/v1/accounts", &key, &open).await;
    assert_eq!(first.status, 201, "{}", first.raw);
    let again = app.command("/v1/accounts", &key, &open).await;
    assert_eq!(again.status, 201);
    assert_eq!(
        again.raw, first.raw,
        "the generated account id is not generated twice"
    );
    let account_id = first.body["account_id"].as_str().expect("id").to_owned();
    assert_eq!(app.event_count().await, 1);

    let key = new_key();
    let path = format!("/v1/accounts/{account_id}/deposits");
    let body = json!({"amount": "42.00", "description": "salary"});
    let first = app.command(&path, &key, &body).await;
    assert_eq!(first.status, 200, "{}", first.raw);
    let events = app.event_count().await;
    for _ in 0..3 {
        let again = app.command(&path, &key, &body).await;
        assert_eq!(again.status, 200);
        assert_eq!(again.raw, first.raw);
    }
    assert_eq!(app.event_count().await, events, "replays write no event");

    let key = new_key();
    let transfer =
        json!({"source_account_id": account_id, "target_account_id": account_id, "amount": "1.00"});
    let refused = app.command("/v1/transfers", &key, &transfer).await;
    assert_eq!(refused.code(), "same_account_transfer");
    app.stop().await;
}

/// Copies queued in one process behind the first attempt answer from its record.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_attempt_under_one_key_gets_the_one_answer() {
    let app = Arc::new(TestApp::spawn().await);
    scenarios::every_attempt_under_one_key_gets_the_one_answer(vec![app]).await;
}

/// Copies racing from two processes on one database: the store's check decides, not the locks.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_attempt_under_one_key_gets_the_one_answer_across_two_instances() {
    let (first, second) = TestApp::spawn_pair().await;
    scenarios::every_attempt_under_one_key_gets_the_one_answer(vec![
        Arc::new(first),
        Arc::new(second),
    ])
    .await;
}
