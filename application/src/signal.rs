//! `SignallingEventStore`: an event-store decorator that wakes the in-process projector after each
//! successful append, so the read model follows writes within milliseconds instead of a poll interval.

use std::sync::Arc;

use async_trait::async_trait;
use ledger_domain::AccountId;
use tokio::sync::Notify;

use crate::envelope::RecordedEvent;
use crate::idempotency::{IdempotencyRecord, ScopedIdempotencyKey};
use crate::ports::{AppendError, AtomicAppend, EventStore, StoreError};

pub struct SignallingEventStore {
    inner: Arc<dyn EventStore>,
    appended: Arc<Notify>,
}

impl std::fmt::Debug for SignallingEventStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignallingEventStore")
            .finish_non_exhaustive()
    }
}

impl SignallingEventStore {
    pub fn new(inner: Arc<dyn EventStore>, appended: Arc<Notify>) -> Self {
        Self { inner, appended }
    }
}

#[async_trait]
impl EventStore for SignallingEventStore {
    async fn load(
        &self,
        account_id: &AccountId,
        after_sequence: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.load(account_id, after_sequence).await
    }

    async fn append(&self, append: AtomicAppend) -> Result<(), AppendError> {
        self.inner.append(append).await?;
        // notify_one stores a permit when nobody waits, so a wake-up is never lost.
        self.appended.notify_one();
        Ok(())
    }

    async fn idempotency_record(
        &self,
        key: &ScopedIdempotencyKey,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        self.inner.idempotency_record(key).await
    }
}
