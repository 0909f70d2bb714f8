//! Helpers for the rebuild's tests on every adapter: a history of accounts in an event store, the
//! live projection of it, the read model's whole content (to compare one model with another), a
//! scan that breaks off, a rebuild that looks at both models when its swap begins, and the race of
//! a rebuild with a live projector.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use ledger_domain::AccountId;
use tokio::sync::{Notify, watch};

use crate::envelope::RecordedEvent;
use crate::memory::InMemoryReadModel;
use crate::ports::{
    AccountPage, AccountView, DailyBalanceView, EventFeed, EventStore, EventStoreScan, LiveSwap,
    Projection, ProjectionCheckpoints, ReadModelQuery, ReadModelRebuild, RebuildProgress,
    ScanCursor, StoreError, SystemClock, TransactionView,
};
use crate::projector::{FeedProjector, FeedProjectorConfig, ProjectionRetry, Projector};
use crate::rebuild::{NoObserver, RebuildLimits, Rebuilder};
use crate::testkit::fixtures::{
    account, at, deposited_event, opened_event, recorded, single_append,
};

/// The name of account `index` of a seeded history: ids sort in index order.
pub fn seeded_account(index: usize) -> String {
    format!("rebuild-{index:04}")
}

/// Appends `deposits` deposits of 1.00 to `account_id`, which has `after_sequence` events, with
/// instants an hour apart from `after_sequence` on (so that they fall on several days).
pub async fn append_deposits(
    store: &dyn EventStore,
    account_id: &str,
    after_sequence: u64,
    deposits: u64,
) -> Vec<RecordedEvent> {
    let mut appended = Vec::new();
    for sequence in after_sequence + 1..=after_sequence + deposits {
        let balance = format!("{}.00", sequence - 1);
        let day = u32::try_from(1 + sequence / 24).expect("a small history");
        let hour = u32::try_from(sequence % 24).expect("an hour");
        let event = recorded(
            account_id,
            sequence,
            deposited_event("1.00", &balance),
            at(day, hour, 0),
        );
        store
            .append(single_append(
                &format!("deposit-{account_id}-{sequence}"),
                sequence - 1,
                vec![event.clone()],
            ))
            .await
            .expect("append a deposit");
        appended.push(event);
    }
    appended
}

/// `accounts` accounts, each opened and given `deposits` deposits; their ids, in order.
pub async fn seed_history(store: &dyn EventStore, accounts: usize, deposits: u64) -> Vec<String> {
    let mut ids = Vec::new();
    for index in 0..accounts {
        let id = seeded_account(index);
        let opened = recorded(&id, 1, opened_event(), at(1, 0, 0));
        store
            .append(single_append(&format!("open-{id}"), 0, vec![opened]))
            .await
            .expect("append an opening");
        append_deposits(store, &id, 1, deposits).await;
        ids.push(id);
    }
    ids
}

/// Projects every event of `accounts` from `store` into `projection`, as the live projector would.
pub async fn project_accounts(
    store: &dyn EventStore,
    projection: Arc<dyn Projection>,
    accounts: &[String],
) {
    let projector = Projector::new(
        projection,
        Arc::new(SystemClock),
        ProjectionRetry::default(),
    );
    for id in accounts {
        for event in store.load(&account(id), 0).await.expect("load") {
            projector.project(&event).await.expect("project");
        }
    }
}

/// Everything the queries can see of one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountContent {
    pub account: Option<AccountView>,
    pub transactions: Vec<TransactionView>,
    pub daily_balances: Vec<DailyBalanceView>,
}

/// What the queries answer for each of `accounts` (at most 10,000 movements each).
pub async fn model_content(query: &dyn ReadModelQuery, accounts: &[String]) -> Vec<AccountContent> {
    let mut content = Vec::new();
    for id in accounts {
        let id = account(id);
        content.push(AccountContent {
            account: query.account(&id).await.expect("account"),
            transactions: query
                .transactions(&id, 0, 10_000)
                .await
                .expect("transactions"),
            daily_balances: query
                .daily_balances(&id, chrono::NaiveDate::MIN, chrono::NaiveDate::MAX, 10_000)
                .await
                .expect("daily balances"),
        });
    }
    content
}

/// The scan of `inner`, failing with an outage every call to `accounts_page` after the first
/// `pages_before_failure`: a rebuild interrupted part-way.
pub struct ScanBreakingOff {
    inner: Arc<dyn EventStoreScan>,
    pages_before_failure: usize,
    pages: AtomicUsize,
}

impl ScanBreakingOff {
    pub fn new(inner: Arc<dyn EventStoreScan>, pages_before_failure: usize) -> Self {
        Self {
            inner,
            pages_before_failure,
            pages: AtomicUsize::new(0),
        }
    }
}

impl std::fmt::Debug for ScanBreakingOff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScanBreakingOff")
            .field("pages_before_failure", &self.pages_before_failure)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl EventStoreScan for ScanBreakingOff {
    async fn accounts_page(
        &self,
        cursor: Option<&ScanCursor>,
        limit: usize,
    ) -> Result<AccountPage, StoreError> {
        if self.pages.fetch_add(1, Ordering::SeqCst) >= self.pages_before_failure {
            return Err(StoreError::unavailable("the scan broke off"));
        }
        self.inner.accounts_page(cursor, limit).await
    }

    async fn events_page(
        &self,
        account_id: &AccountId,
        after_sequence: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner
            .events_page(account_id, after_sequence, limit)
            .await
    }
}

/// A rebuild that looks at both models when its swap begins: the live one must still answer
/// `live_balance` for `account_id` (queries see the old model), the fresh one `fresh_balance`.
pub struct LookingAtTheSwap {
    pub inner: Arc<dyn ReadModelRebuild>,
    pub live: Arc<dyn ReadModelQuery>,
    pub fresh: Arc<dyn ReadModelQuery>,
    pub account_id: AccountId,
    pub live_balance: String,
    pub fresh_balance: String,
    /// Set once the swap began and both answers were as expected.
    pub seen: AtomicBool,
}

impl std::fmt::Debug for LookingAtTheSwap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LookingAtTheSwap")
            .field("account_id", &self.account_id)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl ReadModelRebuild for LookingAtTheSwap {
    fn fresh(&self) -> Arc<dyn Projection> {
        self.inner.fresh()
    }

    async fn progress(&self) -> Result<Option<RebuildProgress>, StoreError> {
        self.inner.progress().await
    }

    async fn save_progress(&self, progress: &RebuildProgress) -> Result<(), StoreError> {
        self.inner.save_progress(progress).await
    }

    async fn accounts_behind_live(
        &self,
        after: Option<&AccountId>,
        limit: usize,
    ) -> Result<Vec<AccountId>, StoreError> {
        self.inner.accounts_behind_live(after, limit).await
    }

    async fn begin_swap(&self) -> Result<Box<dyn LiveSwap>, StoreError> {
        let live = self.live.account(&self.account_id).await?;
        assert_eq!(
            live.expect("the live account").balance.to_string(),
            self.live_balance,
            "before the swap, queries answer from the live model"
        );
        let fresh = self.fresh.account(&self.account_id).await?;
        assert_eq!(
            fresh.expect("the fresh account").balance.to_string(),
            self.fresh_balance
        );
        self.seen.store(true, Ordering::SeqCst);
        self.inner.begin_swap().await
    }
}

/// Deposits on `accounts` (each at `seeded_sequence` events to begin with), round-robin, until
/// `writing` turns false (at least three rounds, at most 40): how many in all.
pub async fn keep_depositing(
    store: Arc<dyn EventStore>,
    accounts: Vec<String>,
    seeded_sequence: u64,
    writing: Arc<AtomicBool>,
) -> u64 {
    let mut sequences = vec![seeded_sequence; accounts.len()];
    let mut written = 0_u64;
    for round in 0..40 {
        if !writing.load(Ordering::SeqCst) && round > 2 {
            break;
        }
        for (index, id) in accounts.iter().enumerate() {
            append_deposits(store.as_ref(), id, sequences[index], 1).await;
            sequences[index] += 1;
            written += 1;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    written
}

/// The live read model a scenario rebuilds, and the checkpoints beside it (which no swap touches).
pub struct LiveModel<L> {
    pub model: Arc<L>,
    pub checkpoints: Arc<dyn ProjectionCheckpoints>,
}

impl<L> std::fmt::Debug for LiveModel<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveModel").finish_non_exhaustive()
    }
}

/// The race of a rebuild with the live projector: a `FeedProjector` follows `store` into `live`
/// while commands keep coming and `rebuild` runs and swaps; afterwards the live model equals the
/// projection of the whole store (no gap, nothing twice) and holds no dead letter. `accounts` were
/// seeded with `seeded_sequence` events each and projected into `live`.
pub async fn live_projector_keeps_projecting_across_a_rebuild<S, L>(
    store: Arc<S>,
    LiveModel {
        model: live,
        checkpoints,
    }: LiveModel<L>,
    rebuild: Arc<dyn ReadModelRebuild>,
    accounts: &[String],
    seeded_sequence: u64,
    limits: RebuildLimits,
) where
    S: EventStore + EventFeed + EventStoreScan + 'static,
    L: Projection + ReadModelQuery + 'static,
{
    let projector = Arc::new(FeedProjector::new(
        "embedded",
        store.clone(),
        live.clone(),
        checkpoints,
        Arc::new(SystemClock),
        FeedProjectorConfig::default(),
        Arc::new(Notify::new()),
    ));
    projector
        .catch_up()
        .await
        .expect("the projector's first catch-up");
    let (stop_projector, stopped) = watch::channel(false);
    let running = tokio::spawn({
        let projector = projector.clone();
        async move { projector.run(stopped).await }
    });
    let writing = Arc::new(AtomicBool::new(true));
    let writer = tokio::spawn(keep_depositing(
        store.clone(),
        accounts.to_vec(),
        seeded_sequence,
        writing.clone(),
    ));

    let summary = Rebuilder::new(store.clone(), rebuild, Arc::new(SystemClock), limits)
        .run(&NoObserver)
        .await
        .expect("rebuild");
    writing.store(false, Ordering::SeqCst);
    assert!(writer.await.expect("the writer") > 0);
    assert_eq!(summary.accounts, accounts.len() as u64);

    let reference = Arc::new(InMemoryReadModel::new());
    project_accounts(store.as_ref(), reference.clone(), accounts).await;
    let expected = model_content(reference.as_ref(), accounts).await;
    let mut content = Vec::new();
    // Bounded wait for the live projector to apply what was written last.
    for _ in 0..200 {
        content = model_content(live.as_ref(), accounts).await;
        if content == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    stop_projector.send(true).expect("stop the projector");
    running.await.expect("the projector stops");
    assert_eq!(
        content, expected,
        "no gap: every event applied once, in order"
    );
    assert!(
        live.dead_letters(10)
            .await
            .expect("dead letters")
            .is_empty(),
        "no dead letter across the swap"
    );
}

/// A rebuild of a live model whose first account's balance was corrupted to `corrupted_balance`
/// (and whatever else the caller broke): until the swap queries answer from the live model, after it
/// from the whole rebuilt one, equal to the projection of the store; the feed checkpoint stays.
pub async fn rebuild_repairs_a_corrupted_live_model<S, L>(
    store: Arc<S>,
    LiveModel {
        model: live,
        checkpoints,
    }: LiveModel<L>,
    rebuild: Arc<dyn ReadModelRebuild>,
    fresh: Arc<dyn ReadModelQuery>,
    accounts: &[String],
    corrupted_balance: &str,
    limits: RebuildLimits,
) where
    S: EventStore + EventStoreScan + 'static,
    L: Projection + ReadModelQuery + 'static,
{
    checkpoints
        .save_feed_checkpoint("feed", 7)
        .await
        .expect("a checkpoint");
    let reference = Arc::new(InMemoryReadModel::new());
    project_accounts(store.as_ref(), reference.clone(), accounts).await;
    let expected = model_content(reference.as_ref(), accounts).await;
    let first = expected[0].account.as_ref().expect("the first account");
    let looking = Arc::new(LookingAtTheSwap {
        inner: rebuild,
        live: live.clone(),
        fresh,
        account_id: first.account_id.clone(),
        live_balance: corrupted_balance.to_owned(),
        fresh_balance: first.balance.to_string(),
        seen: AtomicBool::new(false),
    });

    let summary = Rebuilder::new(store, looking.clone(), Arc::new(SystemClock), limits)
        .run(&NoObserver)
        .await
        .expect("rebuild");

    assert!(
        looking.seen.load(Ordering::SeqCst),
        "the swap was looked at"
    );
    assert_eq!(summary.accounts, accounts.len() as u64);
    let events: u64 = expected
        .iter()
        .filter_map(|content| content.account.as_ref())
        .map(|view| view.last_sequence)
        .sum();
    assert_eq!(summary.events, events);
    assert_eq!(
        model_content(live.as_ref(), accounts).await,
        expected,
        "after the swap, queries answer from the rebuilt model"
    );
    assert_eq!(
        checkpoints
            .feed_checkpoint("feed")
            .await
            .expect("checkpoint"),
        Some(7),
        "the projector's checkpoint is not part of the swap"
    );
}
