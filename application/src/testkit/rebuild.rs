//! Helpers for the rebuild's tests on every adapter: a history of accounts in an event store, the
//! live projection of it, and the read model's whole content, to compare one model with another.

use std::sync::Arc;

use crate::envelope::RecordedEvent;
use crate::ports::{
    AccountView, DailyBalanceView, EventStore, Projection, ReadModelQuery, SystemClock,
    TransactionView,
};
use crate::projector::{ProjectionRetry, Projector};
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
