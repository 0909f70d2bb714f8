//! The rebuilder over the in-memory store and read models: a whole rebuild, a resumed one, the
//! catch-up of events recorded meanwhile, and an undecodable event.

use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;

use super::*;
use crate::envelope::RecordedEvent;
use crate::memory::{InMemoryEventStore, InMemoryReadModel, InMemoryRebuild};
use crate::ports::{AccountPage, Projection, ReadModelQuery, ScanCursor, SystemClock};
use crate::testkit::fixtures::account;
use crate::testkit::rebuild::{
    ScanBreakingOff, append_deposits, model_content, project_accounts, seed_history,
};

const ACCOUNTS: usize = 7;
const DEPOSITS: u64 = 5;

/// Small pages, so that every path crosses page boundaries.
fn small_pages() -> RebuildLimits {
    RebuildLimits {
        accounts_per_page: 2,
        events_per_page: 2,
        ..RebuildLimits::default()
    }
}

struct World {
    store: Arc<InMemoryEventStore>,
    live: Arc<InMemoryReadModel>,
    accounts: Vec<String>,
}

async fn world() -> World {
    let store = Arc::new(InMemoryEventStore::new());
    let accounts = seed_history(store.as_ref(), ACCOUNTS, DEPOSITS).await;
    World {
        store,
        live: Arc::new(InMemoryReadModel::new()),
        accounts,
    }
}

/// The model the projector builds from the same store: what a rebuild must give.
async fn reference(world: &World) -> Vec<crate::testkit::rebuild::AccountContent> {
    let model = Arc::new(InMemoryReadModel::new());
    project_accounts(world.store.as_ref(), model.clone(), &world.accounts).await;
    model_content(model.as_ref(), &world.accounts).await
}

fn rebuilder(scan: Arc<dyn EventStoreScan>, rebuild: Arc<InMemoryRebuild>) -> Rebuilder {
    Rebuilder::new(scan, rebuild, Arc::new(SystemClock), small_pages())
}

#[tokio::test]
async fn a_rebuild_into_an_empty_live_model_gives_the_projected_model() {
    let world = world().await;
    let rebuild = Arc::new(InMemoryRebuild::new(world.live.clone()));

    let summary = rebuilder(world.store.clone(), rebuild)
        .run(&NoObserver)
        .await
        .expect("rebuild");

    assert_eq!(
        model_content(world.live.as_ref(), &world.accounts).await,
        reference(&world).await
    );
    assert_eq!(summary.accounts, ACCOUNTS as u64);
    assert_eq!(summary.events, ACCOUNTS as u64 * (DEPOSITS + 1));
    assert!(!summary.resumed);
    assert_eq!(summary.dead_letters, 0);
}

#[tokio::test]
async fn an_interrupted_rebuild_changes_nothing_and_a_rerun_resumes_without_duplicates() {
    let world = world().await;
    let rebuild = Arc::new(InMemoryRebuild::new(world.live.clone()));
    let failing = Arc::new(ScanBreakingOff::new(world.store.clone(), 2));

    let interrupted = rebuilder(failing, rebuild.clone()).run(&NoObserver).await;

    assert!(
        matches!(interrupted, Err(RebuildError::EventStore(_))),
        "{interrupted:?}"
    );
    let stored = rebuild.progress().await.unwrap().expect("progress stored");
    assert_eq!(stored.accounts_done, 4, "two pages of two accounts");
    assert!(!stored.scan_finished);
    assert!(
        world
            .live
            .account(&account(&world.accounts[0]))
            .await
            .unwrap()
            .is_none(),
        "the live model is untouched until the swap"
    );

    let summary = rebuilder(world.store.clone(), rebuild.clone())
        .run(&NoObserver)
        .await
        .expect("the rerun");

    assert!(summary.resumed);
    assert_eq!(summary.accounts, ACCOUNTS as u64);
    assert_eq!(summary.events, ACCOUNTS as u64 * (DEPOSITS + 1));
    let content = model_content(world.live.as_ref(), &world.accounts).await;
    assert_eq!(content, reference(&world).await);
    for account_content in &content {
        assert_eq!(
            account_content.transactions.len() as u64,
            DEPOSITS,
            "no duplicate rows"
        );
    }
}

/// The scan of the in-memory store that, when the walk asks for its second page of accounts,
/// records `deposits` more on the first account (already walked) and projects them into the live
/// model, as commands and the live projector do during a rebuild.
struct MovingStore {
    store: Arc<InMemoryEventStore>,
    live: Arc<InMemoryReadModel>,
    first_account: String,
    deposits: u64,
    pages: AtomicUsize,
}

#[async_trait]
impl EventStoreScan for MovingStore {
    async fn accounts_page(
        &self,
        cursor: Option<&ScanCursor>,
        limit: usize,
    ) -> Result<AccountPage, StoreError> {
        if self.pages.fetch_add(1, Ordering::SeqCst) == 1 {
            append_deposits(
                self.store.as_ref(),
                &self.first_account,
                DEPOSITS + 1,
                self.deposits,
            )
            .await;
            let live: Arc<dyn Projection> = self.live.clone();
            project_accounts(
                self.store.as_ref(),
                live,
                std::slice::from_ref(&self.first_account),
            )
            .await;
        }
        self.store.accounts_page(cursor, limit).await
    }

    async fn events_page(
        &self,
        account_id: &AccountId,
        after_sequence: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.store
            .events_page(account_id, after_sequence, limit)
            .await
    }
}

#[tokio::test]
async fn events_the_live_projector_applied_during_the_rebuild_are_caught_up_before_the_swap() {
    let world = world().await;
    let live: Arc<dyn Projection> = world.live.clone();
    project_accounts(world.store.as_ref(), live, &world.accounts).await;
    let rebuild = Arc::new(InMemoryRebuild::new(world.live.clone()));
    let moving = Arc::new(MovingStore {
        store: world.store.clone(),
        live: world.live.clone(),
        first_account: world.accounts[0].clone(),
        deposits: 3,
        pages: AtomicUsize::new(0),
    });

    let summary = rebuilder(moving, rebuild)
        .run(&NoObserver)
        .await
        .expect("rebuild");

    assert_eq!(summary.caught_up_events, 3);
    assert!(summary.catch_up_passes >= 1);
    let first = account(&world.accounts[0]);
    assert_eq!(
        world.live.last_sequence(&first).await.unwrap(),
        DEPOSITS + 1 + 3,
        "the new model is as far as the old one was: the live projector meets no gap"
    );
    assert_eq!(
        model_content(world.live.as_ref(), &world.accounts).await,
        reference(&world).await
    );
}

/// The scan of the in-memory store, with event `sequence` of `account_id` undecodable.
struct PoisonedScan {
    store: Arc<InMemoryEventStore>,
    account_id: AccountId,
    sequence: u64,
}

#[async_trait]
impl EventStoreScan for PoisonedScan {
    async fn accounts_page(
        &self,
        cursor: Option<&ScanCursor>,
        limit: usize,
    ) -> Result<AccountPage, StoreError> {
        self.store.accounts_page(cursor, limit).await
    }

    async fn events_page(
        &self,
        account_id: &AccountId,
        after_sequence: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let page = self
            .store
            .events_page(account_id, after_sequence, limit)
            .await?;
        if *account_id == self.account_id && page.iter().any(|e| e.sequence == self.sequence) {
            return Err(StoreError::corrupt("payload is not JSON"));
        }
        Ok(page)
    }
}

#[tokio::test]
async fn an_undecodable_event_is_a_dead_letter_of_the_new_model_and_other_accounts_go_on() {
    let world = world().await;
    let rebuild = Arc::new(InMemoryRebuild::new(world.live.clone()));
    let poisoned_account = account(&world.accounts[1]);
    let poisoned = Arc::new(PoisonedScan {
        store: world.store.clone(),
        account_id: poisoned_account.clone(),
        sequence: 4,
    });

    let summary = rebuilder(poisoned, rebuild)
        .run(&NoObserver)
        .await
        .expect("rebuild");

    assert_eq!(summary.dead_letters, 1);
    assert_eq!(
        world.live.last_sequence(&poisoned_account).await.unwrap(),
        3
    );
    let letters = world.live.dead_letters(10).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(
        letters[0].letter.account_id.as_ref(),
        Some(&poisoned_account)
    );
    assert_eq!(letters[0].letter.sequence, Some(4));
    assert!(letters[0].letter.reason.contains("payload is not JSON"));
    let expected = reference(&world).await;
    let content = model_content(world.live.as_ref(), &world.accounts).await;
    for (index, (got, want)) in content.iter().zip(&expected).enumerate() {
        if index != 1 {
            assert_eq!(got, want, "account {index} is whole");
        }
    }
}
