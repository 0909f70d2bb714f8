//! The contract of `EventStore` and `EventFeed`: what every implementation MUST do, as test cases.

use std::sync::Arc;

use ledger_domain::DomainError;

use crate::idempotency::RecordedOutcome;
use crate::ports::{AppendError, EventStore, MAX_ACTIONS_PER_APPEND};
use crate::testkit::EventStoreSubject;
use crate::testkit::fixtures::{
    account, amount, at, balance, deposited_event, multi_append, opened_event, record_for,
    recorded, rejection_append, scoped_key, single_append, transfer_events,
};

/// Opens `account_id` (sequence 1) and deposits 100.00 (sequence 2).
pub(crate) async fn seed(store: &dyn EventStore, account_id: &str) {
    store
        .append(single_append(
            &format!("seed-open-{account_id}"),
            0,
            vec![recorded(account_id, 1, opened_event(), at(1, 9, 1))],
        ))
        .await
        .expect("seed open");
    store
        .append(single_append(
            &format!("seed-deposit-{account_id}"),
            1,
            vec![recorded(
                account_id,
                2,
                deposited_event("100.00", "100.00"),
                at(1, 10, 2),
            )],
        ))
        .await
        .expect("seed deposit");
}

/// How many events the stream of `account_id` holds.
async fn stream_len(store: &dyn EventStore, account_id: &str) -> usize {
    store
        .load(&account(account_id), 0)
        .await
        .expect("load")
        .len()
}

/// A deposit of 5.00 to `acc-1` (seeded with 100.00) after `expected_version`, under `key_text`.
fn deposit_of_5(
    key_text: &str,
    expected_version: u64,
    recorded_at: chrono::DateTime<chrono::Utc>,
) -> crate::ports::AtomicAppend {
    single_append(
        key_text,
        expected_version,
        vec![recorded(
            "acc-1",
            expected_version + 1,
            deposited_event("5.00", "105.00"),
            recorded_at,
        )],
    )
}

async fn no_record(store: &dyn EventStore, key_text: &str) {
    assert_eq!(
        store
            .idempotency_record(&scoped_key(key_text))
            .await
            .expect("read record"),
        None,
        "a refused append must not leave its idempotency record"
    );
}

pub async fn load_of_an_unknown_stream_is_empty(subject: EventStoreSubject) {
    let events = subject
        .store
        .load(&account("nobody"), 0)
        .await
        .expect("load");
    assert!(events.is_empty());
    no_record(subject.store.as_ref(), "never-used").await;
}

pub async fn appended_events_load_in_sequence_order_with_every_field(subject: EventStoreSubject) {
    let first = recorded("acc-1", 1, opened_event(), at(2, 8, 123_456));
    let second = recorded("acc-1", 2, deposited_event("10.50", "10.50"), at(2, 9, 1));
    let third = recorded("acc-1", 3, deposited_event("0.01", "10.51"), at(2, 9, 2));
    subject
        .store
        .append(single_append("k1", 0, vec![first.clone()]))
        .await
        .expect("first append");
    subject
        .store
        .append(single_append("k2", 1, vec![second.clone(), third.clone()]))
        .await
        .expect("second append");
    let loaded = subject
        .store
        .load(&account("acc-1"), 0)
        .await
        .expect("load");
    assert_eq!(
        loaded,
        vec![first, second, third],
        "every field survives the round trip"
    );
    assert!(
        subject
            .store
            .load(&account("acc-2"), 0)
            .await
            .expect("load")
            .is_empty()
    );
}

pub async fn load_after_a_sequence_returns_only_the_tail(subject: EventStoreSubject) {
    seed(subject.store.as_ref(), "acc-1").await;
    let tail = subject
        .store
        .load(&account("acc-1"), 1)
        .await
        .expect("load");
    assert_eq!(tail.iter().map(|e| e.sequence).collect::<Vec<_>>(), vec![2]);
    assert!(
        subject
            .store
            .load(&account("acc-1"), 2)
            .await
            .expect("load")
            .is_empty()
    );
}

pub async fn stale_expected_version_is_a_conflict_and_writes_nothing(subject: EventStoreSubject) {
    seed(subject.store.as_ref(), "acc-1").await;
    let stale = single_append(
        "late-writer",
        1,
        vec![recorded(
            "acc-1",
            2,
            deposited_event("5.00", "5.00"),
            at(3, 9, 0),
        )],
    );
    let error = subject
        .store
        .append(stale)
        .await
        .expect_err("stale version");
    assert!(
        matches!(&error, AppendError::Conflict { account_id } if *account_id == account("acc-1")),
        "{error:?}"
    );
    let events = subject
        .store
        .load(&account("acc-1"), 0)
        .await
        .expect("load");
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].event, deposited_event("100.00", "100.00"));
    no_record(subject.store.as_ref(), "late-writer").await;
}

pub async fn recorded_idempotency_key_is_a_duplicate_and_writes_nothing(
    subject: EventStoreSubject,
) {
    seed(subject.store.as_ref(), "acc-1").await;
    let again = single_append(
        "seed-deposit-acc-1",
        2,
        vec![recorded(
            "acc-1",
            3,
            deposited_event("1.00", "101.00"),
            at(3, 9, 0),
        )],
    );
    let error = subject
        .store
        .append(again)
        .await
        .expect_err("duplicate key");
    assert!(
        matches!(&error, AppendError::DuplicateRequest { key: k } if *k == scoped_key("seed-deposit-acc-1")),
        "{error:?}"
    );
    assert_eq!(stream_len(subject.store.as_ref(), "acc-1").await, 2);
}

pub async fn duplicate_request_wins_over_conflict(subject: EventStoreSubject) {
    seed(subject.store.as_ref(), "acc-1").await;
    // Same key AND a taken sequence: the request already happened, which is what the caller must hear.
    let both = single_append(
        "seed-deposit-acc-1",
        1,
        vec![recorded(
            "acc-1",
            2,
            deposited_event("100.00", "100.00"),
            at(1, 10, 2),
        )],
    );
    let error = subject.store.append(both).await.expect_err("refused");
    assert!(
        matches!(error, AppendError::DuplicateRequest { .. }),
        "{error:?}"
    );
}

pub async fn idempotency_record_round_trips(subject: EventStoreSubject) {
    let event = recorded("acc-1", 1, opened_event(), at(4, 9, 42));
    let append = single_append("round-trip", 0, vec![event.clone()]);
    let expected = append.idempotency().clone();
    subject.store.append(append).await.expect("append");
    let stored = subject
        .store
        .idempotency_record(&scoped_key("round-trip"))
        .await
        .expect("read")
        .expect("record exists");
    assert_eq!(stored, expected);
    assert_eq!(stored, record_for("round-trip", &[&event]));
}

pub async fn multi_stream_append_commits_every_stream_and_the_record(subject: EventStoreSubject) {
    seed(subject.store.as_ref(), "acc-a").await;
    seed(subject.store.as_ref(), "acc-b").await;
    let (debit, credit) = transfer_events("acc-a", "acc-b", "30.00", "70.00", "130.00");
    let debit = recorded("acc-a", 3, debit, at(5, 9, 0));
    let credit = recorded("acc-b", 3, credit, at(5, 9, 0));
    subject
        .store
        .append(multi_append(
            "transfer-1",
            vec![(2, debit.clone()), (2, credit.clone())],
        ))
        .await
        .expect("transfer append");
    assert_eq!(
        subject
            .store
            .load(&account("acc-a"), 2)
            .await
            .expect("load"),
        vec![debit]
    );
    assert_eq!(
        subject
            .store
            .load(&account("acc-b"), 2)
            .await
            .expect("load"),
        vec![credit]
    );
    assert!(
        subject
            .store
            .idempotency_record(&scoped_key("transfer-1"))
            .await
            .expect("read")
            .is_some()
    );
}

pub async fn conflict_on_one_stream_writes_no_stream(subject: EventStoreSubject) {
    seed(subject.store.as_ref(), "acc-a").await;
    seed(subject.store.as_ref(), "acc-b").await;
    let (debit, credit) = transfer_events("acc-a", "acc-b", "30.00", "70.00", "130.00");
    // The source is current; the target's expected version is stale.
    let append = multi_append(
        "transfer-stale",
        vec![
            (2, recorded("acc-a", 3, debit, at(5, 9, 0))),
            (1, recorded("acc-b", 2, credit, at(5, 9, 0))),
        ],
    );
    let error = subject.store.append(append).await.expect_err("conflict");
    assert!(
        matches!(&error, AppendError::Conflict { account_id } if *account_id == account("acc-b")),
        "{error:?}"
    );
    assert_eq!(
        stream_len(subject.store.as_ref(), "acc-a").await,
        2,
        "the current stream must not keep its half of the transfer"
    );
    assert_eq!(stream_len(subject.store.as_ref(), "acc-b").await, 2);
    no_record(subject.store.as_ref(), "transfer-stale").await;
}

pub async fn appends_above_the_action_limit_are_refused_whole(subject: EventStoreSubject) {
    let opened = recorded("acc-big", 1, opened_event(), at(6, 9, 0));
    subject
        .store
        .append(single_append("big-open", 0, vec![opened]))
        .await
        .expect("open");
    let deposits = |count: u64| {
        (0..count)
            .map(|i| {
                let cents = i64::try_from(i + 1).expect("small") * 100;
                let balance = rust_decimal::Decimal::new(cents, 2).to_string();
                recorded(
                    "acc-big",
                    i + 2,
                    deposited_event("1.00", &balance),
                    at(6, 10, 0),
                )
            })
            .collect::<Vec<_>>()
    };
    // After sequence 1 the append also checks its predecessor: the events, the record and that check.
    let too_many = single_append("too-many", 1, deposits(MAX_ACTIONS_PER_APPEND as u64 - 1));
    let error = subject.store.append(too_many).await.expect_err("too large");
    assert!(
        matches!(error, AppendError::TooLarge { actions, max }
            if actions == MAX_ACTIONS_PER_APPEND + 1 && max == MAX_ACTIONS_PER_APPEND),
        "{error:?}"
    );
    assert_eq!(stream_len(subject.store.as_ref(), "acc-big").await, 1);
    no_record(subject.store.as_ref(), "too-many").await;
    let at_limit = single_append("at-limit", 1, deposits(MAX_ACTIONS_PER_APPEND as u64 - 2));
    subject
        .store
        .append(at_limit)
        .await
        .expect("exactly the limit is accepted");
    assert_eq!(
        stream_len(subject.store.as_ref(), "acc-big").await,
        MAX_ACTIONS_PER_APPEND - 1
    );
}

/// The optimistic-locking race: many writers append at one expected version; exactly one wins.
pub async fn racing_appends_at_one_version_have_exactly_one_winner(subject: EventStoreSubject) {
    const WRITERS: u64 = 16;
    seed(subject.store.as_ref(), "acc-race").await;
    let store = Arc::clone(&subject.store);
    let mut tasks = tokio::task::JoinSet::new();
    for writer in 0..WRITERS {
        let store = Arc::clone(&store);
        tasks.spawn(async move {
            let event = recorded(
                "acc-race",
                3,
                deposited_event("1.00", "101.00"),
                at(8, 9, 0),
            );
            let event_id = event.event_id;
            let result = store
                .append(single_append(&format!("racer-{writer}"), 2, vec![event]))
                .await;
            (event_id, result)
        });
    }
    let mut winners = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (event_id, result) = joined.expect("task");
        match result {
            Ok(()) => winners.push(event_id),
            Err(AppendError::Conflict { .. }) => {}
            Err(other) => panic!("a lost race must be a Conflict, got {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one writer wins");
    let events = store.load(&account("acc-race"), 0).await.expect("load");
    assert_eq!(events.len(), 3);
    assert_eq!(
        events[2].event_id, winners[0],
        "the stored event is the winner's"
    );
}

/// The idempotency race: many appends under one key, to different streams; exactly one is recorded.
pub async fn racing_requests_with_one_key_have_exactly_one_winner(subject: EventStoreSubject) {
    const WRITERS: u64 = 16;
    let store = Arc::clone(&subject.store);
    let mut tasks = tokio::task::JoinSet::new();
    for writer in 0..WRITERS {
        let store = Arc::clone(&store);
        tasks.spawn(async move {
            let stream = format!("acc-key-{writer}");
            let event = recorded(&stream, 1, opened_event(), at(9, 9, 0));
            store.append(single_append("one-key", 0, vec![event])).await
        });
    }
    let mut accepted = 0;
    while let Some(joined) = tasks.join_next().await {
        match joined.expect("task") {
            Ok(()) => accepted += 1,
            Err(AppendError::DuplicateRequest { key: k }) => {
                assert_eq!(k, scoped_key("one-key"));
            }
            Err(other) => panic!("a repeated key must be a DuplicateRequest, got {other:?}"),
        }
    }
    assert_eq!(accepted, 1);
    let mut written = 0;
    for writer in 0..WRITERS {
        let stream = account(&format!("acc-key-{writer}"));
        written += store.load(&stream, 0).await.expect("load").len();
    }
    assert_eq!(written, 1, "only the winner's event was written");
}

fn insufficient_funds() -> DomainError {
    DomainError::InsufficientFunds {
        account_id: account("acc-1"),
        available: balance("100.00"),
        requested: amount("180.00"),
    }
}

/// A rejection is an outcome: its record is stored alone (no event) and takes the key for good.
pub async fn a_rejection_is_recorded_alone_and_takes_its_key(subject: EventStoreSubject) {
    seed(subject.store.as_ref(), "acc-1").await;
    subject
        .store
        .append(rejection_append("refused", insufficient_funds()))
        .await
        .expect("a rejection's record is stored");
    let record = subject
        .store
        .idempotency_record(&scoped_key("refused"))
        .await
        .expect("read record")
        .expect("the rejection is recorded");
    assert_eq!(
        record.outcome,
        RecordedOutcome::Rejected {
            rejected: insufficient_funds()
        },
        "the rejection round-trips with every value the client was told"
    );
    let again = subject
        .store
        .append(rejection_append("refused", insufficient_funds()))
        .await
        .expect_err("the key is taken");
    assert!(
        matches!(again, AppendError::DuplicateRequest { .. }),
        "{again:?}"
    );
    let accepted_later = deposit_of_5("refused", 2, at(3, 9, 0));
    let error = subject
        .store
        .append(accepted_later)
        .await
        .expect_err("the key is taken by the rejection");
    assert!(
        matches!(error, AppendError::DuplicateRequest { .. }),
        "{error:?}"
    );
    assert_eq!(
        stream_len(subject.store.as_ref(), "acc-1").await,
        2,
        "neither the rejection nor the later attempt wrote an event"
    );
}

/// No holes: an append after version N commits only if event N exists.
pub async fn an_append_after_a_missing_event_is_refused_and_writes_nothing(
    subject: EventStoreSubject,
) {
    seed(subject.store.as_ref(), "acc-1").await;
    let past_the_end = deposit_of_5("past-the-end", 3, at(3, 9, 0));
    let error = subject
        .store
        .append(past_the_end)
        .await
        .expect_err("event 3 does not exist");
    assert!(
        matches!(&error, AppendError::MissingPredecessor { account_id, expected_version: 3 }
            if *account_id == account("acc-1")),
        "{error:?}"
    );
    let on_empty = single_append(
        "on-empty",
        5,
        vec![recorded(
            "acc-empty",
            6,
            deposited_event("5.00", "5.00"),
            at(3, 9, 0),
        )],
    );
    let error = subject
        .store
        .append(on_empty)
        .await
        .expect_err("an empty stream has no event 5");
    assert!(
        matches!(error, AppendError::MissingPredecessor { .. }),
        "{error:?}"
    );
    assert_eq!(stream_len(subject.store.as_ref(), "acc-1").await, 2);
    assert!(
        subject
            .store
            .load(&account("acc-empty"), 0)
            .await
            .expect("load")
            .is_empty()
    );
    no_record(subject.store.as_ref(), "past-the-end").await;
    no_record(subject.store.as_ref(), "on-empty").await;
}

/// Time runs forward within a stream: an event is never recorded before its predecessor (at the
/// same instant is fine).
pub async fn an_event_recorded_before_its_predecessor_is_refused(subject: EventStoreSubject) {
    // The seed's second event is recorded at `at(1, 10, 2)`.
    seed(subject.store.as_ref(), "acc-1").await;
    let earlier = deposit_of_5("earlier", 2, at(1, 10, 1));
    let error = subject
        .store
        .append(earlier)
        .await
        .expect_err("time would run backwards");
    assert!(
        matches!(&error, AppendError::TimeRegression { account_id } if *account_id == account("acc-1")),
        "{error:?}"
    );
    no_record(subject.store.as_ref(), "earlier").await;
    let same_instant = deposit_of_5("same-instant", 2, at(1, 10, 2));
    subject
        .store
        .append(same_instant)
        .await
        .expect("the same instant does not run backwards");
    assert_eq!(stream_len(subject.store.as_ref(), "acc-1").await, 3);
}

/// Accepted and rejected outcomes racing under one key: exactly one is recorded, and it is the only
/// thing written.
pub async fn racing_outcomes_under_one_key_have_exactly_one_winner(subject: EventStoreSubject) {
    const WRITERS: u64 = 16;
    seed(subject.store.as_ref(), "acc-1").await;
    let store = Arc::clone(&subject.store);
    let mut tasks = tokio::task::JoinSet::new();
    for writer in 0..WRITERS {
        let store = Arc::clone(&store);
        tasks.spawn(async move {
            let accepted = writer % 2 == 0;
            let append = if accepted {
                deposit_of_5("one-outcome", 2, at(3, 9, 0))
            } else {
                rejection_append("one-outcome", insufficient_funds())
            };
            (accepted, store.append(append).await)
        });
    }
    let mut winners = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (accepted, result) = joined.expect("task");
        match result {
            Ok(()) => winners.push(accepted),
            Err(AppendError::DuplicateRequest { .. } | AppendError::Conflict { .. }) => {}
            Err(other) => panic!("a lost race is a duplicate or a conflict, got {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one outcome is recorded");
    let record = store
        .idempotency_record(&scoped_key("one-outcome"))
        .await
        .expect("read")
        .expect("recorded");
    assert_eq!(record.outcome.is_accepted(), winners[0]);
    let events = store.load(&account("acc-1"), 0).await.expect("load");
    assert_eq!(events.len(), if winners[0] { 3 } else { 2 });
}
