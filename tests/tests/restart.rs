//! Durability across restarts: a graceful stop keeps every event and the projector's checkpoint, and the
//! restarted ledger neither loses nor re-applies anything.

use ledger_application::ports::ProjectionCheckpoints;
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

    // The graceful stop stored the projector's checkpoint at the last event it projected.
    let database = ledger_sqlite::SqliteDatabase::open(&path)
        .await
        .expect("reopen");
    let checkpoint = database
        .checkpoints()
        .feed_checkpoint(ledger_bootstrap::startup::EMBEDDED_PROJECTOR)
        .await
        .expect("read checkpoint");
    assert_eq!(
        checkpoint,
        Some(3),
        "the checkpoint covers all three events"
    );
    database.close().await.expect("close");

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

/// A graceful stop lets a request already in flight finish with its real answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_finishes_requests_in_flight() {
    let app = TestApp::spawn_with(&[("LEDGER_READ_WAIT_TIMEOUT_MS", "1500")]).await;
    app.open("inflight", "USD", None).await;
    let client = app.client.clone();
    // This query waits (up to 1.5 s) for a sequence that never comes: it is in flight during the stop.
    let in_flight = tokio::spawn({
        let url = app.url("/v1/accounts/inflight?min_sequence=99");
        async move { client.get(url).send().await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let stopping = std::time::Instant::now();
    app.stop().await;
    let response = in_flight
        .await
        .expect("task")
        .expect("the in-flight request gets an answer, not a reset connection");
    assert_eq!(
        response.status().as_u16(),
        503,
        "its real answer: read_model_behind"
    );
    assert!(
        stopping.elapsed() >= std::time::Duration::from_millis(900),
        "the stop waited for the request to finish"
    );
}
