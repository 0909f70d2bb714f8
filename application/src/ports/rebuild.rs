//! `ReadModelRebuild`: the adapter's side of a rebuild — a fresh read model beside the live one, the
//! rebuild's stored progress, the accounts where the live model is ahead of the fresh one, and the
//! swap that replaces the live model with the fresh one in one step.

use std::sync::Arc;

use async_trait::async_trait;
use ledger_domain::AccountId;

use crate::ports::{Projection, ScanCursor, StoreError};

/// How far a rebuild got, stored in the fresh model after each page of accounts, so that a rerun
/// after an interruption continues from the last page it finished.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RebuildProgress {
    /// Where the walk over the event store's accounts continues; `None` before the first page (and
    /// after the last, when `scan_finished`).
    pub cursor: Option<ScanCursor>,
    /// Every account of the walk was replayed: what is left is catching up and the swap.
    pub scan_finished: bool,
    /// Accounts replayed by the walk so far.
    pub accounts_done: u64,
    /// Events in the fresh model for those accounts (their `last_sequence`s added up).
    pub events_done: u64,
}

/// The fresh model and its swap. One rebuild at a time per live model: the operator runs one
/// `ledger rebuild`.
#[async_trait]
pub trait ReadModelRebuild: Send + Sync {
    /// The fresh model, written through the same `Projection` port as the live one. Queries never
    /// read it: it is invisible until [`LiveSwap::commit`].
    fn fresh(&self) -> Arc<dyn Projection>;

    /// The progress an earlier, interrupted rebuild stored; `None` if the fresh model is new.
    async fn progress(&self) -> Result<Option<RebuildProgress>, StoreError>;

    /// Stores `progress`, replacing what was stored.
    async fn save_progress(&self, progress: &RebuildProgress) -> Result<(), StoreError>;

    /// At most `limit` accounts, in id order after `after`, where the live model is ahead of the
    /// fresh one: a higher `last_sequence`, or an open dead letter of the account past the fresh
    /// model's `last_sequence` (so that a poison event the live projector met during the rebuild is
    /// met in the fresh model too). Accounts with an open dead letter in the fresh model are left
    /// out: replaying cannot move them (the letter says why, and `ledger dead-letters retry` heals it
    /// after the swap). MUST read the latest committed state of both models at each call.
    async fn accounts_behind_live(
        &self,
        after: Option<&AccountId>,
        limit: usize,
    ) -> Result<Vec<AccountId>, StoreError>;

    /// Begins the swap: from now on the live projector's writes to the live model wait (queries
    /// still read the live model), until [`LiveSwap::commit`] or [`LiveSwap::abort`]. Waits a
    /// bounded time for the writes in flight, then fails with `Unavailable`.
    async fn begin_swap(&self) -> Result<Box<dyn LiveSwap>, StoreError>;
}

/// A swap in progress: the live model's writers are held back.
#[async_trait]
pub trait LiveSwap: Send {
    /// Replaces the live model's tables (accounts, transactions, daily balances, dead letters; not
    /// the projector's checkpoints) with the fresh model's, in one transaction, and removes the
    /// fresh model. Queries see the old model until this returns and the whole new one after. On an
    /// error nothing of the live model changed.
    async fn commit(self: Box<Self>) -> Result<(), StoreError>;

    /// Gives the swap up: the live model stays as it was, its writers go on, and the fresh model
    /// stays for a later attempt.
    async fn abort(self: Box<Self>);
}
