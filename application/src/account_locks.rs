//! `AccountLocks`: in-process striped locks that queue commands on the same account instead of letting
//! them race.
//!
//! Optimistic locking in the store is what keeps the ledger correct, across any number of processes.
//! Within one process, though, letting a hundred requests for one account load the same version and
//! all but one lose is pure waste: they would retry, back off and finally fail with
//! `409 concurrency_conflict`. Queuing them here turns that contention into a short wait.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::Duration;

use ledger_domain::AccountId;
use tokio::sync::{Mutex, MutexGuard};

/// Enough stripes that unrelated accounts rarely share one; a stripe is a few bytes.
const STRIPES: usize = 1024;

/// The locks of one process. Stripes are taken in ascending order, so two commands that need the same
/// two stripes (a transfer and its reverse) can never deadlock.
#[derive(Debug)]
pub struct AccountLocks {
    stripes: Vec<Mutex<()>>,
    /// Longest wait for the locks; past it the caller proceeds optimistically, unqueued.
    wait_max: Duration,
}

/// Held for the duration of one command's load, decide and append.
#[derive(Debug)]
pub struct AccountGuard<'a> {
    _guards: Vec<MutexGuard<'a, ()>>,
}

impl AccountLocks {
    pub fn new(wait_max: Duration) -> Self {
        Self {
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
            wait_max,
        }
    }

    /// Locks the stripes of `accounts`. If they cannot be had within the bound, returns `None`: the
    /// command then runs unqueued, and the store's optimistic check still decides.
    pub async fn lock(&self, accounts: &[&AccountId]) -> Option<AccountGuard<'_>> {
        let mut stripes: Vec<usize> = accounts.iter().map(|id| stripe_of(id)).collect();
        stripes.sort_unstable();
        stripes.dedup();
        let acquire = async {
            let mut guards = Vec::with_capacity(stripes.len());
            for stripe in stripes {
                guards.push(self.stripes[stripe].lock().await);
            }
            AccountGuard { _guards: guards }
        };
        tokio::time::timeout(self.wait_max, acquire).await.ok()
    }
}

fn stripe_of(account_id: &AccountId) -> usize {
    let mut hasher = DefaultHasher::new();
    account_id.as_str().hash(&mut hasher);
    // The remainder is below STRIPES, so it always fits.
    usize::try_from(hasher.finish() % STRIPES as u64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn id(text: &str) -> AccountId {
        AccountId::parse(text).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_second_command_on_an_account_waits_for_the_first() {
        let locks = Arc::new(AccountLocks::new(Duration::from_secs(1)));
        let first = locks.lock(&[&id("a")]).await.expect("free");
        let waiting = {
            let locks = Arc::clone(&locks);
            tokio::spawn(async move { locks.lock(&[&id("a")]).await.is_some() })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(
            !waiting.is_finished(),
            "the second waits while the first holds the lock"
        );
        drop(first);
        assert!(waiting.await.unwrap());
    }

    #[tokio::test(start_paused = true)]
    async fn the_wait_is_bounded() {
        let locks = AccountLocks::new(Duration::from_millis(50));
        let _held = locks.lock(&[&id("a")]).await.expect("free");
        assert!(locks.lock(&[&id("a")]).await.is_none());
    }

    #[tokio::test]
    async fn opposite_transfers_do_not_deadlock() {
        let locks = Arc::new(AccountLocks::new(Duration::from_secs(5)));
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..200 {
            let locks = Arc::clone(&locks);
            tasks.spawn(async move {
                let (a, b) = (id("x"), id("y"));
                let pair = if i % 2 == 0 { [&a, &b] } else { [&b, &a] };
                locks.lock(&pair).await.is_some()
            });
        }
        while let Some(locked) = tasks.join_next().await {
            assert!(locked.unwrap(), "every transfer gets its locks");
        }
    }
}
