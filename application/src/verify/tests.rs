//! The verifier against the in-memory stores: a faithful read model verifies clean, and each kind of
//! damage (projected from a doctored event, or left out) is found and named.

use ledger_domain::{AccountClosed, AccountEvent, AccountStatus, AccountUnfrozen};

use super::*;
use crate::envelope::RecordedEvent;
use crate::memory::{InMemoryEventStore, InMemoryReadModel};
use crate::ports::{EventStore, Projection, ReadModelUpdate};
use crate::testkit::fixtures::{
    account, at, balance, deposited_event, frozen_event, opened_event, recorded, single_append,
};

/// Small pages everywhere, so that every walk crosses page boundaries.
fn small_pages() -> VerifyConfig {
    VerifyConfig {
        accounts_page: 2,
        events_page: 3,
        read_model_page: 2,
        concurrency: 3,
        ..VerifyConfig::default()
    }
}

/// Opens `id`, then deposits 10.00 `deposits` times, three a day from March 1st.
fn history(id: &str, deposits: u32) -> Vec<RecordedEvent> {
    let mut events = vec![recorded(id, 1, opened_event(), at(1, 9, 0))];
    for deposit in 1..=deposits {
        events.push(recorded(
            id,
            u64::from(deposit) + 1,
            deposited_event("10.00", &format!("{}.00", deposit * 10)),
            at(1 + deposit / 3, 10, deposit),
        ));
    }
    events
}

/// An event store and a read model, written to separately so that a test can make them disagree.
#[derive(Default)]
struct Ledger {
    store: InMemoryEventStore,
    read_model: InMemoryReadModel,
}

impl Ledger {
    /// Appends `events` (one stream, in order, after what it holds) to the event store only.
    async fn store(&self, events: &[RecordedEvent]) {
        let first = events.first().expect("events");
        self.store
            .append(single_append(
                &format!("{}-{}", first.account_id, first.sequence),
                first.sequence - 1,
                events.to_vec(),
            ))
            .await
            .expect("append");
    }

    /// Applies `events` to the read model only, as the projector would.
    async fn project(&self, events: &[RecordedEvent]) {
        for event in events {
            self.read_model
                .apply(&ReadModelUpdate::from_event(event))
                .await
                .expect("apply");
        }
    }

    async fn store_and_project(&self, events: &[RecordedEvent]) {
        self.store(events).await;
        self.project(events).await;
    }

    async fn verify(&self, config: VerifyConfig) -> (Vec<Difference>, VerifySummary) {
        let mut differences = Vec::new();
        let summary = Verifier::new(&self.store, &self.read_model, config)
            .run(|difference| differences.push(difference.clone()))
            .await
            .expect("verify");
        differences.sort_by_key(ToString::to_string);
        (differences, summary)
    }
}

fn difference(id: &str, what: DifferenceKind) -> Difference {
    Difference {
        account_id: account(id),
        what,
    }
}

#[tokio::test]
async fn an_empty_ledger_verifies_clean() {
    let (differences, summary) = Ledger::default().verify(small_pages()).await;
    assert_eq!(differences, vec![]);
    assert_eq!(summary, VerifySummary::default());
}

#[tokio::test]
async fn a_faithful_read_model_verifies_clean_across_pages() {
    let ledger = Ledger::default();
    let mut events = 0;
    for n in 0..9 {
        let history = history(&format!("acc-{n}"), n * 3);
        events += history.len() as u64;
        ledger.store_and_project(&history).await;
    }
    // A status change after the money, and an account that never moved money.
    let frozen = recorded("acc-4", 14, frozen_event("audit"), at(9, 9, 0));
    ledger.store_and_project(&[frozen]).await;
    events += 1;
    for config in [small_pages(), VerifyConfig::default()] {
        let (differences, summary) = ledger.verify(config).await;
        assert_eq!(differences, vec![], "{config:?}");
        assert_eq!(
            summary,
            VerifySummary {
                accounts: 9,
                events,
                accounts_with_differences: 0,
                differences: 0,
            }
        );
    }
}

#[tokio::test]
async fn an_account_missing_from_the_read_model_is_a_difference() {
    let ledger = Ledger::default();
    ledger.store_and_project(&history("acc-1", 2)).await;
    ledger.store(&history("acc-2", 2)).await;
    let (differences, summary) = ledger.verify(small_pages()).await;
    assert_eq!(
        differences,
        vec![difference("acc-2", DifferenceKind::MissingFromReadModel)]
    );
    assert_eq!(summary.accounts_with_differences, 1);
    assert_eq!(
        summary.events, 6,
        "the missing account's events are folded too"
    );
}

#[tokio::test]
async fn a_doctored_movement_shows_in_balance_sum_and_closing_balance() {
    let ledger = Ledger::default();
    let events = history("acc-1", 4);
    ledger.store(&events).await;
    // Deposit 4 (March 2nd) projected as 12.00 instead of 10.00.
    let mut doctored = events.clone();
    doctored[4].event = deposited_event("12.00", "42.00");
    ledger.project(&doctored).await;
    let (differences, _) = ledger.verify(small_pages()).await;
    let march_2 = NaiveDate::from_ymd_opt(2026, 3, 2).expect("date");
    assert_eq!(
        differences,
        vec![
            difference(
                "acc-1",
                DifferenceKind::Balance {
                    store: balance("40.00"),
                    read_model: balance("42.00"),
                }
            ),
            difference(
                "acc-1",
                DifferenceKind::DailyClosingBalance {
                    date: march_2,
                    store: Some(balance("40.00")),
                    read_model: Some(balance("42.00")),
                }
            ),
            difference(
                "acc-1",
                DifferenceKind::TransactionSum {
                    store: balance("40.00"),
                    read_model: balance("42.00"),
                }
            ),
        ]
    );
    assert_eq!(
        differences[1].to_string(),
        "acc-1 closing balance of 2026-03-02: store 40.00, read model 42.00"
    );
}

#[tokio::test]
async fn a_read_model_behind_the_store_shows_in_last_sequence_and_count() {
    let ledger = Ledger::default();
    let events = history("acc-1", 3);
    ledger.store(&events).await;
    ledger.project(&events[..3]).await;
    let (differences, _) = ledger.verify(small_pages()).await;
    let whats: Vec<&DifferenceKind> = differences.iter().map(|d| &d.what).collect();
    assert!(whats.contains(&&DifferenceKind::LastSequence {
        store: 4,
        read_model: 3
    }));
    assert!(whats.contains(&&DifferenceKind::TransactionCount {
        store: 3,
        read_model: 2
    }));
    assert!(whats.contains(&&DifferenceKind::DailyClosingBalance {
        date: NaiveDate::from_ymd_opt(2026, 3, 2).expect("date"),
        store: Some(balance("30.00")),
        read_model: None,
    }));
}

#[tokio::test]
async fn a_wrong_status_is_a_difference() {
    let ledger = Ledger::default();
    let mut events = history("acc-1", 0);
    events.push(recorded("acc-1", 2, frozen_event("audit"), at(2, 9, 0)));
    ledger.store(&events).await;
    events[1].event = AccountEvent::AccountClosed(AccountClosed {});
    ledger.project(&events).await;
    let (differences, _) = ledger.verify(small_pages()).await;
    assert_eq!(
        differences,
        vec![difference(
            "acc-1",
            DifferenceKind::Status {
                store: AccountStatus::Frozen,
                read_model: AccountStatus::Closed,
            }
        )]
    );
}

#[tokio::test]
async fn a_movement_missing_from_the_transactions_is_counted() {
    let ledger = Ledger::default();
    let events = history("acc-1", 5);
    ledger.store(&events).await;
    // The last deposit projected as a status change: the sequence matches, the row is missing.
    let mut doctored = events.clone();
    doctored[5].event = AccountEvent::AccountUnfrozen(AccountUnfrozen {});
    ledger.project(&doctored).await;
    let (differences, _) = ledger.verify(small_pages()).await;
    let whats: Vec<&DifferenceKind> = differences.iter().map(|d| &d.what).collect();
    assert!(
        whats.contains(&&DifferenceKind::TransactionCount {
            store: 5,
            read_model: 4
        }),
        "{differences:?}"
    );
    assert!(
        !whats
            .iter()
            .any(|what| matches!(what, DifferenceKind::LastSequence { .. }))
    );
}

#[tokio::test]
async fn a_movement_on_the_wrong_day_shows_only_in_the_closing_balances() {
    let ledger = Ledger::default();
    let events = history("acc-1", 2);
    ledger.store(&events).await;
    // Deposit 2 (March 1st) projected as if it happened on March 3rd.
    let mut doctored = events.clone();
    doctored[2].metadata.recorded_at = at(3, 10, 2);
    ledger.project(&doctored).await;
    let (differences, _) = ledger.verify(small_pages()).await;
    let day = |d| NaiveDate::from_ymd_opt(2026, 3, d).expect("date");
    assert_eq!(
        differences,
        vec![
            difference(
                "acc-1",
                DifferenceKind::DailyClosingBalance {
                    date: day(1),
                    store: Some(balance("20.00")),
                    read_model: Some(balance("10.00")),
                }
            ),
            difference(
                "acc-1",
                DifferenceKind::DailyClosingBalance {
                    date: day(3),
                    store: None,
                    read_model: Some(balance("20.00")),
                }
            ),
        ]
    );
}

#[tokio::test]
async fn daily_differences_past_the_bound_are_counted_in_one_line() {
    let ledger = Ledger::default();
    let events = history("acc-1", 30);
    ledger.store(&events).await;
    // Every deposit projected one day late: every day of the store and of the read model differs.
    let mut doctored = events.clone();
    for (index, event) in doctored.iter_mut().enumerate().skip(1) {
        let deposit = u32::try_from(index).expect("small");
        event.metadata.recorded_at = at(2 + deposit / 3, 10, deposit);
    }
    ledger.project(&doctored).await;
    let config = VerifyConfig {
        daily_differences_per_account_max: 4,
        ..small_pages()
    };
    let (differences, summary) = ledger.verify(config).await;
    let daily = differences
        .iter()
        .filter(|d| matches!(d.what, DifferenceKind::DailyClosingBalance { .. }))
        .count();
    assert_eq!(daily, 4);
    assert!(
        differences.iter().any(
            |d| matches!(d.what, DifferenceKind::FurtherDailyDifferences { count } if count > 0)
        ),
        "{differences:?}"
    );
    assert_eq!(summary.differences, 5);
}

#[tokio::test]
async fn a_history_the_domain_refuses_is_a_difference() {
    let ledger = Ledger::default();
    let mut events = history("acc-1", 2);
    // The second deposit claims a balance its history does not give.
    events[2].event = deposited_event("10.00", "99.00");
    ledger.store_and_project(&events).await;
    let (differences, summary) = ledger.verify(small_pages()).await;
    assert_eq!(differences.len(), 1, "{differences:?}");
    assert!(matches!(
        differences[0].what,
        DifferenceKind::HistoryRefused { sequence: 3, .. }
    ));
    assert_eq!(summary.accounts, 1);
}
