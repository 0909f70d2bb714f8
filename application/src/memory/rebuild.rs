//! `InMemoryRebuild`: the `ReadModelRebuild` port over two in-memory read models, for the rebuilder's
//! unit tests. It cannot hold a live projector back the way a database lock does, so its swap
//! refuses to commit (and changes nothing) if the live model moved ahead of the fresh one meanwhile.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use ledger_domain::AccountId;

use crate::memory::InMemoryReadModel;
use crate::ports::{LiveSwap, Projection, ReadModelRebuild, RebuildProgress, StoreError};

/// A fresh in-memory model beside `live`, swapped into it by copying its tables.
#[derive(Debug)]
pub struct InMemoryRebuild {
    live: Arc<InMemoryReadModel>,
    fresh: Arc<InMemoryReadModel>,
    progress: Mutex<Option<RebuildProgress>>,
}

impl InMemoryRebuild {
    pub fn new(live: Arc<InMemoryReadModel>) -> Self {
        Self {
            live,
            fresh: Arc::new(InMemoryReadModel::new()),
            progress: Mutex::new(None),
        }
    }

    /// The fresh model itself, for tests to look into.
    pub fn fresh_model(&self) -> Arc<InMemoryReadModel> {
        Arc::clone(&self.fresh)
    }
}

/// The accounts where `live` is ahead of `fresh` (see [`ReadModelRebuild::accounts_behind_live`]).
fn behind(live: &InMemoryReadModel, fresh: &InMemoryReadModel) -> BTreeSet<AccountId> {
    let (live_accounts, live_letters) = live.positions();
    let (fresh_accounts, fresh_letters) = fresh.positions();
    let stuck: BTreeSet<&AccountId> = fresh_letters.iter().map(|(id, _)| id).collect();
    let fresh_sequence = |id: &AccountId| fresh_accounts.get(id).copied().unwrap_or(0);
    live_accounts
        .into_iter()
        .chain(live_letters)
        .filter(|(id, live_sequence)| *live_sequence > fresh_sequence(id) && !stuck.contains(id))
        .map(|(id, _)| id)
        .collect()
}

#[async_trait]
impl ReadModelRebuild for InMemoryRebuild {
    fn fresh(&self) -> Arc<dyn Projection> {
        Arc::clone(&self.fresh) as Arc<dyn Projection>
    }

    async fn progress(&self) -> Result<Option<RebuildProgress>, StoreError> {
        Ok(self
            .progress
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone())
    }

    async fn save_progress(&self, progress: &RebuildProgress) -> Result<(), StoreError> {
        *self.progress.lock().unwrap_or_else(PoisonError::into_inner) = Some(progress.clone());
        Ok(())
    }

    async fn accounts_behind_live(
        &self,
        after: Option<&AccountId>,
        limit: usize,
    ) -> Result<Vec<AccountId>, StoreError> {
        Ok(behind(&self.live, &self.fresh)
            .into_iter()
            .filter(|id| after.is_none_or(|after| id > after))
            .take(limit)
            .collect())
    }

    async fn begin_swap(&self) -> Result<Box<dyn LiveSwap>, StoreError> {
        Ok(Box::new(InMemorySwap {
            live: Arc::clone(&self.live),
            fresh: Arc::clone(&self.fresh),
        }))
    }
}

#[derive(Debug)]
struct InMemorySwap {
    live: Arc<InMemoryReadModel>,
    fresh: Arc<InMemoryReadModel>,
}

#[async_trait]
impl LiveSwap for InMemorySwap {
    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        let ahead = behind(&self.live, &self.fresh);
        if let Some(first) = ahead.first() {
            return Err(StoreError::unavailable(format!(
                "the live model moved ahead of the fresh one during the swap ({} account(s), \
                 first {first}); nothing was swapped",
                ahead.len()
            )));
        }
        self.live.replace_model_with(&self.fresh);
        Ok(())
    }

    async fn abort(self: Box<Self>) {}
}
