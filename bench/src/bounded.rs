//! Bounded concurrency without a new dependency: run a piece of work on every item, at most so many
//! at once, summing what they return.

use std::future::Future;

/// Runs `work` on every item, at most `concurrency` at once, and sums what they return; the first
/// error stops the rest (the tasks still running are aborted when the set is dropped).
pub async fn for_each_bounded<T, F, Fut>(
    items: Vec<T>,
    concurrency: usize,
    work: F,
) -> Result<u64, String>
where
    F: Fn(T) -> Fut,
    Fut: Future<Output = Result<u64, String>> + Send + 'static,
{
    let mut running = tokio::task::JoinSet::new();
    let mut total = 0;
    for item in items {
        if running.len() >= concurrency.max(1)
            && let Some(done) = running.join_next().await
        {
            total += done.map_err(|e| e.to_string())??;
        }
        running.spawn(work(item));
    }
    while let Some(done) = running.join_next().await {
        total += done.map_err(|e| e.to_string())??;
    }
    Ok(total)
}
