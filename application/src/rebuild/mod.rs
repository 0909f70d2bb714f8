//! The rebuilder: replays the whole event store into a fresh read model, through the projector's own
//! per-event rule, and swaps it in for the live model only once it is complete.
//!
//! The walk goes account by account ([`EventStoreScan`]), each account page by page, so memory
//! holds one page of accounts and one page of events at a time. After each page of accounts the
//! scan's cursor and the counts are stored in the fresh model: a rerun after an interruption goes on
//! from there, and re-applying an event is harmless because the rule skips what is applied.
//!
//! A live projector keeps applying new events to the live model meanwhile. Before the swap, bounded
//! catch-up passes replay, from the event store, the accounts where the live model is ahead of the
//! fresh one. The swap then holds the live model's writers back, catches up the last few accounts,
//! and replaces the live tables in one transaction. Every account of the new model is at least as
//! far as it was in the old one, so the live projector, going on from its own checkpoint, meets
//! duplicates (skipped), never a gap.

use std::sync::Arc;
use std::time::Duration;

use ledger_domain::AccountId;

use crate::envelope::RecordedEvent;
use crate::ports::{
    Clock, EventStoreScan, ReadModelRebuild, ReadModelUpdate, RebuildProgress, StoreError,
    UndecodableEvent,
};
use crate::projector::{Projected, ProjectionRetry, Projector};

/// How much the rebuilder holds and does at once. Everything it loops over is bounded by these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RebuildLimits {
    /// Accounts per page of the walk, and per page of the catch-up's account lists. Progress is
    /// stored once per page: an interruption repeats at most one page.
    pub accounts_per_page: usize,
    /// Events read at once from one account.
    pub events_per_page: usize,
    /// Catch-up passes before the swap, each over every account the live model is ahead on.
    pub catch_up_passes_max: u32,
    /// A pass that finds at most this many accounts behind ends the catch-up: the rest is done
    /// inside the swap, while the live projector waits.
    pub catch_up_accounts_small_enough: usize,
    /// The most accounts the swap catches up while the live projector waits; more means the live
    /// model runs away from the rebuild, and the swap is given up (nothing changes; run again).
    pub swap_catch_up_accounts_max: usize,
}

impl Default for RebuildLimits {
    fn default() -> Self {
        Self {
            accounts_per_page: 500,
            events_per_page: 1_000,
            catch_up_passes_max: 5,
            catch_up_accounts_small_enough: 100,
            swap_catch_up_accounts_max: 5_000,
        }
    }
}

/// How a rebuild went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebuildSummary {
    /// An earlier, interrupted rebuild's progress was found and continued.
    pub resumed: bool,
    pub accounts: u64,
    /// Events in the new model for the walked accounts.
    pub events: u64,
    /// Events applied by the catch-up (before and inside the swap), for events recorded meanwhile.
    pub caught_up_events: u64,
    pub catch_up_passes: u32,
    /// Open dead letters in the new model (at most the first 1,000 are counted).
    pub dead_letters: usize,
}

/// Told what the rebuild is doing, so that a front end can show progress; every method has a
/// default that does nothing.
pub trait RebuildObserver: Send + Sync {
    /// The rebuild starts from `progress` (all zero when it is a new one).
    fn started(&self, _progress: &RebuildProgress, _resumed: bool) {}
    /// One account of the walk is replayed; its `last_sequence` in the fresh model is `events`.
    fn account_replayed(&self, _events: u64) {}
    /// A page of accounts is replayed and `progress` is stored.
    fn page_stored(&self, _progress: &RebuildProgress) {}
    /// A catch-up pass (0 for the one inside the swap) found `accounts` accounts behind the live
    /// model and replayed them.
    fn caught_up(&self, _pass: u32, _accounts: usize) {}
    /// The live model's writers are held back; the swap is about to be committed.
    fn swapping(&self) {}
}

/// An observer that observes nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoObserver;

impl RebuildObserver for NoObserver {}

/// Why a rebuild stopped. The live model is unchanged in every case, and the fresh model keeps
/// what it has: running again resumes.
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    #[error("reading the event store failed: {0}")]
    EventStore(#[source] StoreError),
    #[error("writing the fresh read model failed: {0}")]
    FreshModel(#[source] StoreError),
    #[error("comparing the live read model with the fresh one failed: {0}")]
    Compare(#[source] StoreError),
    #[error("the swap failed, and the live read model is unchanged: {0}")]
    Swap(#[source] StoreError),
    #[error(
        "the live read model stayed ahead of the fresh one on more than {accounts_max} account(s) \
         while its writers were held back; nothing was swapped (run the rebuild again)"
    )]
    LiveRunsAway { accounts_max: usize },
    #[error(
        "account {account_id} is still behind the live read model after its events were \
         replayed: the event store lacks events the live model has; nothing was swapped"
    )]
    StillBehind { account_id: AccountId },
}

/// Dead letters counted for the summary.
const COUNTED_DEAD_LETTERS_MAX: usize = 1_000;

/// Replays the event store into the fresh model of a [`ReadModelRebuild`] and swaps it in.
pub struct Rebuilder {
    scan: Arc<dyn EventStoreScan>,
    rebuild: Arc<dyn ReadModelRebuild>,
    /// The projector's per-event rule and dead letters, on the fresh model.
    projector: Projector,
    limits: RebuildLimits,
}

impl std::fmt::Debug for Rebuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rebuilder")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// What replaying one account came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Replayed {
    /// Events applied now.
    applied: u64,
    /// The account's `last_sequence` in the fresh model afterwards.
    last_sequence: u64,
}

impl Rebuilder {
    pub fn new(
        scan: Arc<dyn EventStoreScan>,
        rebuild: Arc<dyn ReadModelRebuild>,
        clock: Arc<dyn Clock>,
        limits: RebuildLimits,
    ) -> Self {
        // Events come from the store in order, so a gap cannot heal by waiting: one attempt, then a
        // dead letter (a refused event is dead-lettered the same way).
        let retry = ProjectionRetry {
            attempts_per_event_max: 1,
            retry_delay: Duration::ZERO,
        };
        let projector = Projector::new(rebuild.fresh(), clock, retry);
        Self {
            scan,
            rebuild,
            projector,
            limits,
        }
    }

    /// Rebuilds (or resumes rebuilding) the fresh model, catches it up with the live one and swaps
    /// it in.
    pub async fn run(
        &self,
        observer: &dyn RebuildObserver,
    ) -> Result<RebuildSummary, RebuildError> {
        let stored = self
            .rebuild
            .progress()
            .await
            .map_err(RebuildError::FreshModel)?;
        let resumed = stored.is_some();
        let mut progress = stored.unwrap_or_default();
        observer.started(&progress, resumed);
        self.walk(&mut progress, observer).await?;

        let mut caught_up_events = 0;
        let mut catch_up_passes = 0;
        for pass in 1..=self.limits.catch_up_passes_max {
            let (accounts, applied) = self.catch_up(usize::MAX).await?;
            caught_up_events += applied;
            catch_up_passes = pass;
            observer.caught_up(pass, accounts);
            if accounts <= self.limits.catch_up_accounts_small_enough {
                break;
            }
        }

        let swap = self
            .rebuild
            .begin_swap()
            .await
            .map_err(RebuildError::Swap)?;
        // The live model is still now: one pass brings every account of the fresh model level.
        let last_steps = async {
            let (accounts, applied) = self
                .catch_up(self.limits.swap_catch_up_accounts_max)
                .await?;
            observer.caught_up(0, accounts);
            self.check_level().await?;
            let dead_letters = self
                .rebuild
                .fresh()
                .dead_letters(COUNTED_DEAD_LETTERS_MAX)
                .await
                .map_err(RebuildError::FreshModel)?
                .len();
            Ok::<_, RebuildError>((applied, dead_letters))
        };
        let (applied, dead_letters) = match last_steps.await {
            Ok(done) => done,
            Err(error) => {
                swap.abort().await;
                return Err(error);
            }
        };
        caught_up_events += applied;
        observer.swapping();
        swap.commit().await.map_err(RebuildError::Swap)?;
        Ok(RebuildSummary {
            resumed,
            accounts: progress.accounts_done,
            events: progress.events_done,
            caught_up_events,
            catch_up_passes,
            dead_letters,
        })
    }

    /// The walk over every account of the event store, from the stored cursor on.
    async fn walk(
        &self,
        progress: &mut RebuildProgress,
        observer: &dyn RebuildObserver,
    ) -> Result<(), RebuildError> {
        // Bounded by the store: each page moves the cursor on, and the last one has no next.
        while !progress.scan_finished {
            let page = self
                .scan
                .accounts_page(progress.cursor.as_ref(), self.limits.accounts_per_page)
                .await
                .map_err(RebuildError::EventStore)?;
            for account_id in &page.accounts {
                let replayed = self.replay_account(account_id).await?;
                progress.accounts_done += 1;
                progress.events_done += replayed.last_sequence;
                observer.account_replayed(replayed.last_sequence);
            }
            progress.scan_finished = page.next.is_none();
            progress.cursor = page.next;
            self.rebuild
                .save_progress(progress)
                .await
                .map_err(RebuildError::FreshModel)?;
            observer.page_stored(progress);
        }
        Ok(())
    }

    /// One pass over the accounts the live model is ahead on, at most `accounts_max` of them:
    /// how many it found, and the events it applied.
    async fn catch_up(&self, accounts_max: usize) -> Result<(usize, u64), RebuildError> {
        let mut after: Option<AccountId> = None;
        let mut accounts = 0;
        let mut applied = 0;
        loop {
            let page = self
                .rebuild
                .accounts_behind_live(after.as_ref(), self.limits.accounts_per_page)
                .await
                .map_err(RebuildError::Compare)?;
            accounts += page.len();
            if accounts > accounts_max {
                return Err(RebuildError::LiveRunsAway { accounts_max });
            }
            for account_id in &page {
                applied += self.replay_account(account_id).await?.applied;
            }
            if page.len() < self.limits.accounts_per_page {
                return Ok((accounts, applied));
            }
            after = page.last().cloned();
        }
    }

    /// Inside the swap, after the last catch-up: no account may be left behind the live model, or
    /// the live projector would find a gap after the swap.
    async fn check_level(&self) -> Result<(), RebuildError> {
        let behind = self
            .rebuild
            .accounts_behind_live(None, 1)
            .await
            .map_err(RebuildError::Compare)?;
        match behind.into_iter().next() {
            Some(account_id) => Err(RebuildError::StillBehind { account_id }),
            None => Ok(()),
        }
    }

    /// Applies the account's events after the fresh model's `last_sequence`, page by page, until
    /// the store has no more or an event is dead-lettered (the account's later events wait in the
    /// store; `ledger dead-letters retry` applies them after a fix).
    async fn replay_account(&self, account_id: &AccountId) -> Result<Replayed, RebuildError> {
        let fresh = self.rebuild.fresh();
        let mut last_sequence = fresh
            .last_sequence(account_id)
            .await
            .map_err(RebuildError::FreshModel)?;
        let mut applied = 0;
        let mut page_limit = self.limits.events_per_page;
        // Bounded by the account's stream: every page moves `last_sequence` on or ends the loop.
        loop {
            let page = match self
                .scan
                .events_page(account_id, last_sequence, page_limit)
                .await
            {
                Ok(page) => page,
                // Some event of the page cannot be decoded: read on one at a time to meet it alone.
                Err(StoreError::Corrupt { detail }) if page_limit > 1 => {
                    tracing::debug!(%account_id, %detail, "undecodable page; reading one by one");
                    page_limit = 1;
                    continue;
                }
                Err(StoreError::Corrupt { detail }) => {
                    self.dead_letter_undecodable(account_id, last_sequence + 1, detail)
                        .await?;
                    break;
                }
                Err(unavailable) => return Err(RebuildError::EventStore(unavailable)),
            };
            let complete = page.len() < page_limit;
            if self.applied_as_batch(&page, last_sequence).await? {
                applied += page.len() as u64;
                last_sequence = page.last().map_or(last_sequence, |e| e.sequence);
                if complete {
                    break;
                }
                continue;
            }
            let mut stopped = false;
            for event in &page {
                match self
                    .projector
                    .project(event)
                    .await
                    .map_err(RebuildError::FreshModel)?
                {
                    Projected::Applied => applied += 1,
                    Projected::Duplicate => {}
                    Projected::DeadLettered | Projected::WaitingBehindDeadLetter => {
                        stopped = true;
                        break;
                    }
                }
                last_sequence = event.sequence;
            }
            if stopped || complete || page.is_empty() {
                break;
            }
        }
        let last_sequence = fresh
            .last_sequence(account_id)
            .await
            .map_err(RebuildError::FreshModel)?;
        Ok(Replayed {
            applied,
            last_sequence,
        })
    }

    /// The fast path: the whole page in one transaction of the fresh model
    /// ([`Projection::apply_batch`], the live projector's fast path too), if it continues the
    /// account without a hole and the adapter has one. `false` when nothing was written: the
    /// caller goes event by event (a corrupt refusal lands there as a dead letter).
    async fn applied_as_batch(
        &self,
        page: &[RecordedEvent],
        last_sequence: u64,
    ) -> Result<bool, RebuildError> {
        let consecutive = page
            .iter()
            .zip(last_sequence + 1..)
            .all(|(event, expected)| event.sequence == expected);
        if page.len() < 2 || !consecutive {
            return Ok(false);
        }
        let updates: Vec<ReadModelUpdate> = page.iter().map(ReadModelUpdate::from_event).collect();
        match self.rebuild.fresh().apply_batch(&updates).await {
            Ok(applied) => Ok(applied),
            Err(StoreError::Corrupt { .. }) => Ok(false),
            Err(unavailable) => Err(RebuildError::FreshModel(unavailable)),
        }
    }

    async fn dead_letter_undecodable(
        &self,
        account_id: &AccountId,
        sequence: u64,
        detail: String,
    ) -> Result<(), RebuildError> {
        // The scan hands out decoded events only: the letter says where the stored form is.
        let raw = serde_json::json!({
            "account_id": account_id.as_str(),
            "sequence": sequence,
            "stored_form": "in the event store, at this account and sequence",
        })
        .to_string();
        let undecodable = UndecodableEvent {
            account_id: Some(account_id.clone()),
            sequence: Some(sequence),
            raw,
            error: detail,
        };
        self.projector
            .project_undecodable(&undecodable)
            .await
            .map_err(RebuildError::FreshModel)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
