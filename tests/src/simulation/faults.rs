//! Fault-injecting wrappers of the ports: an event store that refuses, fails before or after a
//! commit and answers late; a feed that duplicates, replays and reorders deliveries across accounts;
//! a read model and a snapshot store that fail and stall. Every decision is drawn from the run's one
//! seeded generator.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ledger_application::ports::{
    AppendError, ApplyOutcome, AtomicAppend, DeadLetter, DeadLetterId, EventFeed, EventStore,
    FeedEvent, Projection, ProjectionCheckpoints, ReadModelUpdate, ShardCheckpoint, Snapshot,
    SnapshotStore, StoreError, StoredDeadLetter,
};
use ledger_application::{IdempotencyRecord, RecordedEvent, ScopedIdempotencyKey};
use ledger_domain::AccountId;

use super::rng::SimRng;

/// How often each fault strikes, per mille of the calls that can suffer it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultPlan {
    /// A port call first sleeps (virtual time), which lets other tasks overtake it.
    pub latency: u32,
    pub latency_max: Duration,
    /// `load` fails as unavailable.
    pub load_failure: u32,
    /// The idempotency-record read fails as unavailable.
    pub record_read_failure: u32,
    /// An append is refused as a conflict without writing, as if another writer had won.
    pub append_conflict: u32,
    /// An append fails as unavailable before anything is written.
    pub append_failure_before_write: u32,
    /// The append committed, but the caller is told its outcome is unknown (a timeout after sending).
    pub append_failure_after_commit: u32,
    /// Snapshot reads and writes fail (a snapshot is only a shortcut).
    pub snapshot_failure: u32,
    /// A feed read fails.
    pub feed_failure: u32,
    /// A delivered batch holds one event twice.
    pub feed_duplicate: u32,
    /// A feed read starts before the position asked for: events delivered again.
    pub feed_replay: u32,
    /// A batch is shuffled across accounts (each account's events keep their order).
    pub feed_reorder: u32,
    /// A read-model read or write fails before writing.
    pub projection_failure_before_write: u32,
    /// A read-model write commits, but the projector is told it failed.
    pub projection_failure_after_write: u32,
    /// A planted bug, never on in a real run: an append is acknowledged but not written. The test
    /// that proves the checks can fail turns it on.
    pub acknowledge_without_writing: u32,
}

impl FaultPlan {
    /// The faults of an ordinary run.
    pub fn standard() -> Self {
        Self {
            latency: 400,
            latency_max: Duration::from_millis(3),
            load_failure: 20,
            record_read_failure: 20,
            append_conflict: 40,
            append_failure_before_write: 30,
            append_failure_after_commit: 40,
            snapshot_failure: 50,
            feed_failure: 30,
            feed_duplicate: 80,
            feed_replay: 60,
            feed_reorder: 200,
            projection_failure_before_write: 15,
            projection_failure_after_write: 15,
            acknowledge_without_writing: 0,
        }
    }
}

/// The error every injected failure carries as its source.
#[derive(Debug, thiserror::Error)]
#[error("injected fault: {fault}")]
pub struct InjectedFault {
    pub fault: &'static str,
}

fn injected(fault: &'static str) -> StoreError {
    StoreError::unavailable(InjectedFault { fault })
}

/// The plan, the switch that stops all injection for the end of a run, and a count of what struck.
#[derive(Debug)]
pub struct Faults {
    plan: FaultPlan,
    rng: Arc<SimRng>,
    enabled: AtomicBool,
    injected: Mutex<BTreeMap<&'static str, u64>>,
}

impl Faults {
    pub fn new(plan: FaultPlan, rng: Arc<SimRng>) -> Self {
        Self {
            plan,
            rng,
            enabled: AtomicBool::new(true),
            injected: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// Stops every injected failure (latency stays: it only reorders).
    pub fn disable(&self) {
        self.enabled.store(false, Ordering::Relaxed);
    }

    /// How many times each fault struck.
    pub fn injected(&self) -> BTreeMap<&'static str, u64> {
        self.injected
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Whether the fault `name` strikes this call.
    fn strikes(&self, name: &'static str, per_mille: u32) -> bool {
        if !self.enabled() || !self.rng.chance(per_mille) {
            return false;
        }
        *self
            .injected
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(name)
            .or_insert(0) += 1;
        true
    }

    async fn latency(&self) {
        if self.rng.chance(self.plan.latency) {
            tokio::time::sleep(self.rng.duration_up_to(self.plan.latency_max)).await;
        }
    }
}

/// A port `P` behind faults: every wrapper below is one of these.
pub struct Faulty<P: ?Sized> {
    inner: Arc<P>,
    faults: Arc<Faults>,
}

impl<P: ?Sized> std::fmt::Debug for Faulty<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Faulty").finish_non_exhaustive()
    }
}

impl<P: ?Sized> Faulty<P> {
    pub fn new(inner: Arc<P>, faults: Arc<Faults>) -> Self {
        Self { inner, faults }
    }

    /// A read-model-side call (the projection, or the checkpoints beside it) failing before it
    /// writes.
    async fn before(&self, fault: &'static str) -> Result<(), StoreError> {
        self.may_fail(fault, self.faults.plan.projection_failure_before_write)
            .await
    }

    /// A read-model-side call failing after it wrote: a projector killed here has applied an
    /// event but not stored its checkpoint, or stored a checkpoint it never heard back about.
    async fn after(&self, fault: &'static str) -> Result<(), StoreError> {
        self.may_fail(fault, self.faults.plan.projection_failure_after_write)
            .await
    }

    /// A call that may be slow and may fail as unavailable (`fault`, at `per_mille`) before it
    /// reaches the port.
    async fn may_fail(&self, fault: &'static str, per_mille: u32) -> Result<(), StoreError> {
        self.faults.latency().await;
        if self.faults.strikes(fault, per_mille) {
            return Err(injected(fault));
        }
        Ok(())
    }
}

/// The event store as the command services see it.
pub type FaultyEventStore = Faulty<dyn EventStore>;

/// What a store says when it cannot tell whether an append committed.
fn outcome_unknown() -> AppendError {
    AppendError::outcome_unknown(InjectedFault {
        fault: "append_failure_after_commit",
    })
}

#[async_trait]
impl EventStore for FaultyEventStore {
    async fn load(
        &self,
        account_id: &AccountId,
        after_sequence: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.may_fail("load_failure", self.faults.plan.load_failure)
            .await?;
        self.inner.load(account_id, after_sequence).await
    }

    async fn append(&self, append: AtomicAppend) -> Result<(), AppendError> {
        let plan = self.faults.plan;
        self.faults.latency().await;
        // A rejection's record-only append has no stream to conflict on.
        if let Some(stream) = append.streams().first()
            && self.faults.strikes("append_conflict", plan.append_conflict)
        {
            return Err(AppendError::Conflict {
                account_id: stream.account_id.clone(),
            });
        }
        if self.faults.strikes(
            "append_failure_before_write",
            plan.append_failure_before_write,
        ) {
            return Err(AppendError::Store(injected("append_failure_before_write")));
        }
        if self.faults.strikes(
            "acknowledge_without_writing",
            plan.acknowledge_without_writing,
        ) {
            return Ok(());
        }
        self.inner.append(append).await?;
        // Committed; the answer may still be slow, and a process restart meanwhile loses it.
        self.faults.latency().await;
        if self.faults.strikes(
            "append_failure_after_commit",
            plan.append_failure_after_commit,
        ) {
            return Err(outcome_unknown());
        }
        Ok(())
    }

    async fn idempotency_record(
        &self,
        key: &ScopedIdempotencyKey,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        self.may_fail("record_read_failure", self.faults.plan.record_read_failure)
            .await?;
        self.inner.idempotency_record(key).await
    }
}

/// The feed as the projector sees it: at-least-once, and ordered only within an account, like
/// DynamoDB Streams (per item key) and unlike the embedded feed's strict commit order.
pub type FaultyFeed = Faulty<dyn EventFeed>;

/// Interleaves the accounts' events at random, keeping each account's own order, and ends with the
/// batch's highest position (the last event of its account), where a reader resumes.
fn reorder_across_accounts(batch: Vec<FeedEvent>, rng: &SimRng) -> Vec<FeedEvent> {
    let highest = batch.iter().map(|item| item.position).max();
    // An undecodable entry (never in the in-memory feed) keeps its place among the unknown ones.
    let mut queues: Vec<(Option<AccountId>, VecDeque<FeedEvent>)> = Vec::new();
    for item in batch {
        let account_id = item.event().map(|event| event.account_id.clone());
        match queues
            .iter_mut()
            .find(|(queue_of, _)| *queue_of == account_id)
        {
            Some((_, queue)) => queue.push_back(item),
            None => queues.push((account_id, VecDeque::from([item]))),
        }
    }
    let mut reordered = Vec::new();
    while !queues.is_empty() {
        let chosen = rng.index(queues.len());
        if let Some(item) = queues[chosen].1.pop_front() {
            reordered.push(item);
        }
        if queues[chosen].1.is_empty() {
            queues.remove(chosen);
        }
    }
    if let Some(at) = reordered
        .iter()
        .position(|item| Some(item.position) == highest)
    {
        let last = reordered.remove(at);
        reordered.push(last);
    }
    reordered
}

#[async_trait]
impl EventFeed for FaultyFeed {
    async fn read_after(
        &self,
        after_position: u64,
        limit: usize,
    ) -> Result<Vec<FeedEvent>, StoreError> {
        let plan = self.faults.plan;
        self.may_fail("feed_failure", plan.feed_failure).await?;
        let from = if after_position > 0 && self.faults.strikes("feed_replay", plan.feed_replay) {
            let back_max = after_position.min(u64::try_from(limit).unwrap_or(u64::MAX) * 2);
            after_position - self.faults.rng.between(1..=back_max)
        } else {
            after_position
        };
        let mut batch = self.inner.read_after(from, limit).await?;
        if batch.len() > 1 && self.faults.strikes("feed_reorder", plan.feed_reorder) {
            batch = reorder_across_accounts(batch, &self.faults.rng);
        }
        if !batch.is_empty() && self.faults.strikes("feed_duplicate", plan.feed_duplicate) {
            let original = self.faults.rng.index(batch.len());
            let copy = batch[original].clone();
            // After the original, so the account's order holds; a copy last makes the reader resume
            // from an earlier position, which is a replay.
            let at = original + 1 + self.faults.rng.index(batch.len() - original);
            batch.insert(at, copy);
        }
        Ok(batch)
    }
}

/// The read model as the projector sees it.
pub type FaultyProjection = Faulty<dyn Projection>;

#[async_trait]
impl Projection for FaultyProjection {
    async fn last_sequence(&self, account_id: &AccountId) -> Result<u64, StoreError> {
        self.before("projection_read_failure").await?;
        self.inner.last_sequence(account_id).await
    }

    async fn apply(&self, update: &ReadModelUpdate) -> Result<ApplyOutcome, StoreError> {
        self.before("projection_apply_failure_before_write").await?;
        let outcome = self.inner.apply(update).await?;
        self.after("projection_apply_failure_after_write").await?;
        Ok(outcome)
    }

    // The same faults as one apply: before anything is written, or after the whole batch is.
    async fn apply_batch(&self, updates: &[ReadModelUpdate]) -> Result<bool, StoreError> {
        self.before("projection_apply_failure_before_write").await?;
        let applied = self.inner.apply_batch(updates).await?;
        self.after("projection_apply_failure_after_write").await?;
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
        self.before("dead_letter_read_failure").await?;
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

/// The snapshot store as the command services see it.
pub type FaultySnapshots = Faulty<dyn SnapshotStore>;

#[async_trait]
impl SnapshotStore for FaultySnapshots {
    async fn latest(&self, account_id: &AccountId) -> Result<Option<Snapshot>, StoreError> {
        self.may_fail("snapshot_read_failure", self.faults.plan.snapshot_failure)
            .await?;
        self.inner.latest(account_id).await
    }

    async fn save(&self, snapshot: &Snapshot) -> Result<bool, StoreError> {
        self.may_fail("snapshot_save_failure", self.faults.plan.snapshot_failure)
            .await?;
        self.inner.save(snapshot).await
    }
}

/// The projector's positions as the projector sees them: failing as the read model they live beside
/// does (one plan of faults for both), so a save can fail before or after it is written.
pub type FaultyCheckpoints = Faulty<dyn ProjectionCheckpoints>;

#[async_trait]
impl ProjectionCheckpoints for FaultyCheckpoints {
    async fn feed_checkpoint(&self, reader: &str) -> Result<Option<u64>, StoreError> {
        self.before("checkpoint_read_failure").await?;
        self.inner.feed_checkpoint(reader).await
    }

    async fn save_feed_checkpoint(&self, reader: &str, position: u64) -> Result<(), StoreError> {
        self.before("checkpoint_save_failure_before_write").await?;
        self.inner.save_feed_checkpoint(reader, position).await?;
        self.after("checkpoint_save_failure_after_write").await
    }

    // The simulation follows a feed, not a change stream: shard positions pass through untouched.
    async fn shard_checkpoint(
        &self,
        stream: &str,
        shard_id: &str,
    ) -> Result<Option<ShardCheckpoint>, StoreError> {
        self.inner.shard_checkpoint(stream, shard_id).await
    }

    async fn save_shard_checkpoint(
        &self,
        stream: &str,
        shard_id: &str,
        checkpoint: &ShardCheckpoint,
    ) -> Result<(), StoreError> {
        self.inner
            .save_shard_checkpoint(stream, shard_id, checkpoint)
            .await
    }
}
