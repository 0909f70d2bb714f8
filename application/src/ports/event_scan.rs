//! `EventStoreScan`: a consistent walk over every account of the event store, page by page, for the
//! rebuilder and the verifier. Not the feed: the feed is commit order across accounts and may be
//! trimmed (DynamoDB Streams keeps 24 hours); the scan reads the store itself, each account in
//! sequence order.

use async_trait::async_trait;
use ledger_domain::AccountId;

use crate::envelope::RecordedEvent;
use crate::ports::StoreError;

/// Where a walk over the accounts stopped: opaque to the application, stored as text so that an
/// interrupted rebuild can resume from the last page it finished.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ScanCursor(String);

impl ScanCursor {
    /// Wraps a cursor an adapter produced (or one read back from storage).
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One page of the walk over the accounts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AccountPage {
    /// Accounts in the store's own order (SQLite: by id; DynamoDB: by partition hash).
    pub accounts: Vec<AccountId>,
    /// Where the next page starts; `None` when this was the last one.
    pub next: Option<ScanCursor>,
}

/// A consistent, resumable walk over the event store. (No mock: the in-memory store serves unit tests.)
#[async_trait]
pub trait EventStoreScan: Send + Sync {
    /// At most `limit` accounts after `cursor` (`None`: from the start) and the cursor of the next
    /// page. MUST return every account whose opening committed before the walk began exactly once
    /// across the pages of one walk; an account opened during the walk MAY appear. A page MAY hold
    /// fewer than `limit` accounts (even none) while `next` is `Some`: only `next == None` ends it.
    async fn accounts_page(
        &self,
        cursor: Option<&ScanCursor>,
        limit: usize,
    ) -> Result<AccountPage, StoreError>;

    /// At most `limit` events of `account_id` with a sequence above `after_sequence`, in sequence
    /// order, read with the same consistency as [`crate::ports::EventStore::load`]; fewer than
    /// `limit` means the tail is whole. Bounded, unlike `load`, so a long stream never sits in memory.
    async fn events_page(
        &self,
        account_id: &AccountId,
        after_sequence: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;
}
