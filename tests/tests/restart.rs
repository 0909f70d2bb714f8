//! Durability across restarts: a graceful stop keeps every event and the projector's checkpoint, and the
//! restarted ledger neither loses nor re-applies anything.

use ledger_tests::TestApp;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_ledger_resumes_exactly_where_it_stopped() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("ledger.db");

    let app = TestApp::start_on(path.clone(), &[]).await;
    app.open("keep", "USD", None).await;
    assert_eq!(app.deposit("keep", "10.00").await.status, 200);
    assert_eq!(app.deposit("keep", "5.00").await.status, 200);
    let view = app.account_at("keep", 3).await;
    assert_eq!(view.body["balance"], "15.00");
    app.stop().await;

    let app = TestApp::start_on(path.clone(), &[]).await;
    assert_eq!(app.event_count().await, 3, "every committed event survives");
    let view = app.account_at("keep", 3).await;
    assert_eq!(view.body["balance"], "15.00");
    assert_eq!(app.deposit("keep", "1.00").await.body["sequence"], 4);
    let view = app.account_at("keep", 4).await;
    assert_eq!(view.body["balance"], "16.00");
    let transactions = app.get("/v1/accounts/keep/transactions").await;
    assert_eq!(
        transactions.body["items"].as_array().expect("items").len(),
        3,
        "no movement is projected twice after a restart"
    );
    app.stop().await;
}
