//! Projection lag in-process: a decorator of the `Projection` port that notes, for every update the
//! read model applied, how long after the event's `recorded_at` (`update.occurred_at`) that was.
//!
//! Every method of the port is forwarded unchanged; `apply` and `apply_batch` are timed, once their
//! write has committed. When the port grows a method that applies updates, forward and time it here:
//! this is the one place the bench sees the read model's writes.

use std::sync::Arc;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ledger_application::ports::{
    ApplyOutcome, DeadLetter, DeadLetterId, Projection, ReadModelUpdate, StoreError,
    StoredDeadLetter,
};
use ledger_domain::AccountId;

use crate::stats::micros;

/// The most lag samples kept between two `take`s: a bound on memory under any run length.
const LAG_SAMPLES_MAX: usize = 10_000_000;

/// The lags noted since the last `take`, in microseconds.
#[derive(Debug, Default)]
pub struct LagSamples {
    samples_us: Mutex<Vec<u64>>,
}

impl LagSamples {
    /// Notes that an event recorded at `occurred_at` was applied now.
    pub fn note_applied(&self, occurred_at: DateTime<Utc>) {
        // A clock step can put `recorded_at` in the future: that lag is counted as zero.
        let lag = (Utc::now() - occurred_at).to_std().unwrap_or_default();
        let mut samples = self
            .samples_us
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if samples.len() < LAG_SAMPLES_MAX {
            samples.push(micros(lag));
        }
    }

    /// Notes that every update of a batch was applied now (one clock reading, one lock).
    pub fn note_batch_applied(&self, updates: &[ReadModelUpdate]) {
        let now = Utc::now();
        let mut samples = self
            .samples_us
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for update in updates {
            if samples.len() >= LAG_SAMPLES_MAX {
                break;
            }
            samples.push(micros(
                (now - update.occurred_at).to_std().unwrap_or_default(),
            ));
        }
    }

    /// The samples noted since the last call, which starts a new window.
    pub fn take(&self) -> Vec<u64> {
        std::mem::take(
            &mut *self
                .samples_us
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

/// `Projection` over `inner`, noting the lag of every applied update in `lags`.
pub struct TimedProjection {
    inner: Arc<dyn Projection>,
    lags: Arc<LagSamples>,
}

impl std::fmt::Debug for TimedProjection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimedProjection").finish_non_exhaustive()
    }
}

impl TimedProjection {
    pub fn new(inner: Arc<dyn Projection>, lags: Arc<LagSamples>) -> Self {
        Self { inner, lags }
    }
}

#[async_trait]
impl Projection for TimedProjection {
    async fn last_sequence(&self, account_id: &AccountId) -> Result<u64, StoreError> {
        self.inner.last_sequence(account_id).await
    }

    async fn apply(&self, update: &ReadModelUpdate) -> Result<ApplyOutcome, StoreError> {
        let outcome = self.inner.apply(update).await?;
        if outcome == ApplyOutcome::Applied {
            self.lags.note_applied(update.occurred_at);
        }
        Ok(outcome)
    }

    async fn apply_batch(&self, updates: &[ReadModelUpdate]) -> Result<bool, StoreError> {
        let applied = self.inner.apply_batch(updates).await?;
        if applied {
            self.lags.note_batch_applied(updates);
        }
        Ok(applied)
    }

    async fn record_dead_letter(&self, letter: &DeadLetter) -> Result<DeadLetterId, StoreError> {
        self.inner.record_dead_letter(letter).await
    }

    async fn dead_letters(&self, limit: usize) -> Result<Vec<StoredDeadLetter>, StoreError> {
        self.inner.dead_letters(limit).await
    }

    async fn dead_letter(&self, id: DeadLetterId) -> Result<Option<StoredDeadLetter>, StoreError> {
        self.inner.dead_letter(id).await
    }

    async fn blocking_dead_letter(
        &self,
        account_id: &AccountId,
    ) -> Result<Option<StoredDeadLetter>, StoreError> {
        self.inner.blocking_dead_letter(account_id).await
    }

    async fn resolve_dead_letters(
        &self,
        account_id: &AccountId,
        through_sequence: u64,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.inner
            .resolve_dead_letters(account_id, through_sequence, at)
            .await
    }
}
