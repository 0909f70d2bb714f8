//! Concurrency over real HTTP on the embedded SQLite ledger: races on one account, conservation of
//! money across many transfers, one key sent many times at once.

use std::sync::Arc;

use ledger_tests::{TestApp, scenarios};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_withdrawals_never_overdraw() {
    scenarios::concurrent_withdrawals_never_overdraw(Arc::new(TestApp::spawn().await)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_transfers_conserve_money_and_the_read_model_converges() {
    scenarios::concurrent_transfers_conserve_money(Arc::new(TestApp::spawn().await), 10, 300).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_key_sent_ten_times_in_parallel_has_one_effect() {
    scenarios::one_key_sent_ten_times_in_parallel_has_one_effect(Arc::new(TestApp::spawn().await))
        .await;
}
