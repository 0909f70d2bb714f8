//! Retry and idempotency decisions, against a mocked event store.

use std::sync::Mutex;

use chrono::{TimeZone, Utc};
use ledger_domain::{
    AccountKind, AccountOpened, Amount, Currency, MoneyDeposited, OverdraftLimit, OwnerName,
};
use mockall::predicate::always;

use super::*;
use crate::envelope::EventId;
use crate::ports::{MockEventStore, MockSnapshotStore, SystemClock, UuidV7Ids};

fn account_id() -> AccountId {
    AccountId::parse("acc-1").unwrap()
}

fn context(key: &str) -> CommandContext {
    CommandContext {
        caller: crate::Caller::anonymous(),
        idempotency_key: IdempotencyKey::parse(key).unwrap(),
        correlation_id: "corr-1".to_owned(),
        traceparent: None,
    }
}

fn deposit(amount: &str) -> CommandRequest {
    CommandRequest::Deposit {
        account_id: account_id(),
        amount: Amount::parse(amount).unwrap(),
        description: None,
    }
}

/// The history of an open USD account holding 100.00: two events.
fn history() -> Vec<RecordedEvent> {
    let metadata = EventMetadata {
        caller: crate::Caller::anonymous(),
        client_request_id: IdempotencyKey::parse("earlier").unwrap(),
        correlation_id: "c".to_owned(),
        causation_id: "earlier".to_owned(),
        recorded_at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        traceparent: None,
    };
    let events = [
        AccountEvent::AccountOpened(AccountOpened {
            owner: OwnerName::parse("Ada").unwrap(),
            kind: AccountKind::Checking,
            currency: Currency::parse("USD").unwrap(),
            overdraft_limit: OverdraftLimit::parse("0.00").unwrap(),
        }),
        AccountEvent::MoneyDeposited(MoneyDeposited {
            amount: Amount::parse("100.00").unwrap(),
            balance_after: ledger_domain::Balance::parse("100.00").unwrap(),
            description: None,
        }),
    ];
    events
        .into_iter()
        .zip(1..)
        .map(|(event, sequence)| RecordedEvent {
            account_id: account_id(),
            sequence,
            event_id: EventId::from_uuid(uuid::Uuid::now_v7()),
            event,
            metadata: metadata.clone(),
        })
        .collect()
}

fn service(store: MockEventStore, attempts_max: u32) -> CommandService {
    CommandService::new(
        Arc::new(store),
        Arc::new(SystemClock),
        Arc::new(UuidV7Ids),
        RetryPolicy {
            attempts_max,
            ..RetryPolicy::default()
        },
    )
}

fn stored(key: &str, request: &CommandRequest, outcome: RecordedOutcome) -> IdempotencyRecord {
    IdempotencyRecord {
        key: IdempotencyKey::parse(key).unwrap(),
        fingerprint: request.fingerprint(),
        outcome,
        recorded_at: Utc::now(),
    }
}

fn posted_outcome(sequence: u64) -> CommandOutcome {
    CommandOutcome::MoneyPosted {
        event: PostedEvent {
            account_id: account_id(),
            sequence,
            event_id: EventId::from_uuid(uuid::Uuid::now_v7()),
            balance_after: Some(ledger_domain::Balance::parse("150.00").unwrap()),
        },
    }
}

fn withdraw(amount: &str) -> CommandRequest {
    CommandRequest::Withdraw {
        account_id: account_id(),
        amount: Amount::parse(amount).unwrap(),
        description: None,
    }
}

/// What a store answers an append whose key another attempt already recorded.
#[expect(
    clippy::needless_pass_by_value,
    reason = "the signature mockall's returning() wants"
)]
fn key_taken(append: AtomicAppend) -> Result<(), AppendError> {
    Err(AppendError::DuplicateRequest {
        key: append.idempotency().key.clone(),
    })
}

fn accepted(outcome: CommandOutcome) -> RecordedOutcome {
    RecordedOutcome::Accepted(outcome)
}

#[tokio::test(start_paused = true)]
async fn a_lost_race_is_retried_against_a_fresh_load() {
    let mut store = MockEventStore::new();
    store.expect_idempotency_record().never();
    store.expect_load().times(2).returning(|_, _| Ok(history()));
    let mut calls = 0;
    store.expect_append().times(2).returning(move |append| {
        calls += 1;
        assert_eq!(append.streams()[0].expected_version, 2);
        assert_eq!(
            append.action_count(),
            3,
            "one event, the idempotency record and the predecessor check"
        );
        if calls == 1 {
            Err(AppendError::Conflict {
                account_id: account_id(),
            })
        } else {
            Ok(())
        }
    });
    let outcome = service(store, 3)
        .execute(&context("k"), &deposit("50.00"))
        .await
        .unwrap();
    let CommandOutcome::MoneyPosted { event } = outcome else {
        panic!("a deposit posts money");
    };
    assert_eq!(event.sequence, 3);
    assert_eq!(event.balance_after.unwrap().to_string(), "150.00");
}

#[tokio::test(start_paused = true)]
async fn retries_are_bounded_and_end_in_a_concurrency_conflict() {
    let mut store = MockEventStore::new();
    store.expect_idempotency_record().never();
    store.expect_load().times(4).returning(|_, _| Ok(history()));
    store.expect_append().times(4).returning(|_| {
        Err(AppendError::Conflict {
            account_id: account_id(),
        })
    });
    let error = service(store, 4)
        .execute(&context("k"), &deposit("1.00"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, CommandError::ConcurrencyConflict { attempts: 4 }),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_retry_is_answered_from_the_record_not_from_its_own_decision() {
    // The first attempt withdrew 80.00 of 100.00 and recorded it; the history now holds 20.00
    // (here: 100.00, and the retry asks for more than that). Decided afresh, the retry would be
    // refused for lack of funds; the store says the key is taken, so it answers the original.
    let request = withdraw("180.00");
    let record = stored("k", &request, accepted(posted_outcome(3)));
    let expected = posted_outcome_of(&record);
    let mut store = MockEventStore::new();
    store.expect_load().times(1).returning(|_, _| Ok(history()));
    store
        .expect_append()
        .withf(|append| append.streams().is_empty())
        .times(1)
        .returning(key_taken);
    store
        .expect_idempotency_record()
        .times(1)
        .returning(move |_| Ok(Some(record.clone())));
    let outcome = service(store, 3)
        .execute(&context("k"), &request)
        .await
        .unwrap();
    assert_eq!(outcome, expected);
}

#[tokio::test]
async fn a_recorded_rejection_is_answered_again_even_when_the_retry_would_succeed() {
    let request = deposit("50.00");
    let rejection = DomainError::AccountFrozen {
        account_id: account_id(),
    };
    let record = stored(
        "k",
        &request,
        RecordedOutcome::Rejected {
            rejected: rejection.clone(),
        },
    );
    let mut store = MockEventStore::new();
    store.expect_load().returning(|_, _| Ok(history()));
    store.expect_append().times(1).returning(key_taken);
    store
        .expect_idempotency_record()
        .returning(move |_| Ok(Some(record.clone())));
    let error = service(store, 3)
        .execute(&context("k"), &request)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, CommandError::Rejected(rejected) if *rejected == rejection),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_different_request_under_a_used_key_is_refused() {
    let record = stored("k", &deposit("50.00"), accepted(posted_outcome(3)));
    let mut store = MockEventStore::new();
    store.expect_load().returning(|_, _| Ok(history()));
    store.expect_append().times(1).returning(key_taken);
    store
        .expect_idempotency_record()
        .returning(move |_| Ok(Some(record.clone())));
    let error = service(store, 3)
        .execute(&context("k"), &deposit("50.01"))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, CommandError::IdempotencyKeyReused { key } if key.as_str() == "k"),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_rejected_command_records_its_rejection_alone() {
    let mut store = MockEventStore::new();
    store.expect_idempotency_record().never();
    store.expect_load().returning(|_, _| Ok(history()));
    store
        .expect_append()
        .withf(|append| {
            append.streams().is_empty()
                && append.action_count() == 1
                && matches!(
                    &append.idempotency().outcome,
                    RecordedOutcome::Rejected {
                        rejected: DomainError::InsufficientFunds { .. }
                    }
                )
        })
        .times(1)
        .returning(|_| Ok(()));
    let error = service(store, 3)
        .execute(&context("k"), &withdraw("100.01"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            CommandError::Rejected(DomainError::InsufficientFunds { .. })
        ),
        "{error:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_unknown_outcome_that_committed_is_answered_from_the_record() {
    let request = deposit("50.00");
    let record = stored("k", &request, accepted(posted_outcome(3)));
    let expected = posted_outcome_of(&record);
    let mut store = MockEventStore::new();
    store.expect_load().times(1).returning(|_, _| Ok(history()));
    store
        .expect_append()
        .times(1)
        .returning(|_| Err(AppendError::outcome_unknown("timed out after sending")));
    let mut reads = 0;
    store
        .expect_idempotency_record()
        .times(2)
        .returning(move |_| {
            reads += 1;
            if reads == 1 {
                Err(StoreError::unavailable("connection reset"))
            } else {
                Ok(Some(record.clone()))
            }
        });
    let outcome = service(store, 3)
        .execute(&context("k"), &request)
        .await
        .unwrap();
    assert_eq!(outcome, expected);
}

#[tokio::test(start_paused = true)]
async fn an_unknown_outcome_that_did_not_commit_is_appended_again() {
    let mut store = MockEventStore::new();
    store.expect_load().times(2).returning(|_, _| Ok(history()));
    let mut appends = 0;
    store.expect_append().times(2).returning(move |_| {
        appends += 1;
        if appends == 1 {
            Err(AppendError::outcome_unknown("connection lost"))
        } else {
            Ok(())
        }
    });
    store
        .expect_idempotency_record()
        .times(1)
        .returning(|_| Ok(None));
    let outcome = service(store, 3)
        .execute(&context("k"), &deposit("50.00"))
        .await
        .unwrap();
    assert!(matches!(outcome, CommandOutcome::MoneyPosted { .. }));
}

#[tokio::test(start_paused = true)]
async fn an_unknown_outcome_that_cannot_be_resolved_is_reported_as_unknown() {
    let mut store = MockEventStore::new();
    store.expect_load().returning(|_, _| Ok(history()));
    store
        .expect_append()
        .times(1)
        .returning(|_| Err(AppendError::outcome_unknown("timed out after sending")));
    store
        .expect_idempotency_record()
        .times(usize::try_from(RECORD_READS_MAX).unwrap())
        .returning(|_| Err(StoreError::unavailable("still down")));
    let error = service(store, 3)
        .execute(&context("k"), &deposit("50.00"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, CommandError::OutcomeUnknown { .. }),
        "{error:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn unknown_outcomes_are_bounded() {
    let mut store = MockEventStore::new();
    store.expect_load().returning(|_, _| Ok(history()));
    store
        .expect_append()
        .times(usize::try_from(UNKNOWN_OUTCOMES_MAX).unwrap())
        .returning(|_| Err(AppendError::outcome_unknown("timed out")));
    store.expect_idempotency_record().returning(|_| Ok(None));
    let error = service(store, 10)
        .execute(&context("k"), &deposit("50.00"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, CommandError::OutcomeUnknown { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_failure_before_the_write_is_not_an_unknown_outcome() {
    let mut store = MockEventStore::new();
    store.expect_load().returning(|_, _| Ok(history()));
    store
        .expect_append()
        .times(1)
        .returning(|_| Err(StoreError::unavailable("connection refused").into()));
    store.expect_idempotency_record().never();
    let error = service(store, 3)
        .execute(&context("k"), &deposit("50.00"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, CommandError::Store(StoreError::Unavailable(_))),
        "{error:?}"
    );
}

/// A clock stopped at one instant.
struct FixedClock(chrono::DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> chrono::DateTime<Utc> {
        self.0
    }
}

#[tokio::test]
async fn time_runs_forward_within_a_stream_even_when_the_clock_steps_back() {
    let last_recorded_at = history().last().unwrap().recorded_at();
    let mut store = MockEventStore::new();
    store.expect_load().returning(|_, _| Ok(history()));
    store
        .expect_append()
        .withf(move |append| {
            append
                .events()
                .all(|event| event.recorded_at() == last_recorded_at)
        })
        .times(1)
        .returning(|_| Ok(()));
    let early = last_recorded_at - chrono::Duration::hours(1);
    let service = CommandService::new(
        Arc::new(store),
        Arc::new(FixedClock(early)),
        Arc::new(UuidV7Ids),
        RetryPolicy::default(),
    );
    service
        .execute(&context("k"), &deposit("1.00"))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_snapshot_ahead_of_its_events_is_abandoned_for_a_full_replay() {
    let mut snapshots = MockSnapshotStore::new();
    snapshots
        .expect_latest()
        .returning(|_| Ok(Some(snapshot_ahead())));
    snapshots.expect_save().returning(|_| Ok(true));
    let mut store = MockEventStore::new();
    store.expect_load().returning(|_, after_sequence| {
        Ok(if after_sequence == 0 {
            history()
        } else {
            Vec::new()
        })
    });
    store.expect_append().times(2).returning(|append| {
        let stream = &append.streams()[0];
        if stream.expected_version == 3 {
            Err(AppendError::MissingPredecessor {
                account_id: stream.account_id.clone(),
                expected_version: 3,
            })
        } else {
            assert_eq!(stream.expected_version, 2, "decided again on the events");
            Ok(())
        }
    });
    let outcome = snapshotting(store, snapshots, 100)
        .execute(&context("k"), &deposit("1.00"))
        .await
        .unwrap();
    let CommandOutcome::MoneyPosted { event } = outcome else {
        panic!("a deposit posts money");
    };
    assert_eq!(event.sequence, 3);
    assert_eq!(event.balance_after.unwrap().to_string(), "101.00");
}

fn posted_outcome_of(record: &IdempotencyRecord) -> CommandOutcome {
    match &record.outcome {
        RecordedOutcome::Accepted(outcome) => outcome.clone(),
        RecordedOutcome::Rejected { .. } => panic!("an accepted record"),
    }
}

#[tokio::test(start_paused = true)]
async fn generated_ids_stay_the_same_across_retries() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut store = MockEventStore::new();
    store.expect_idempotency_record().returning(|_| Ok(None));
    store.expect_load().returning(|_, _| Ok(Vec::new()));
    let recorded_ids = Arc::clone(&seen);
    store
        .expect_append()
        .with(always())
        .times(2)
        .returning(move |append| {
            let mut ids = recorded_ids.lock().unwrap();
            ids.push(append.streams()[0].account_id.clone());
            if ids.len() == 1 {
                Err(AppendError::Conflict {
                    account_id: append.streams()[0].account_id.clone(),
                })
            } else {
                Ok(())
            }
        });
    let open = CommandRequest::OpenAccount {
        account_id: None,
        owner: OwnerName::parse("Ada").unwrap(),
        kind: AccountKind::Savings,
        currency: Currency::parse("EUR").unwrap(),
        overdraft_limit: None,
    };
    let outcome = service(store, 3)
        .execute(&context("open"), &open)
        .await
        .unwrap();
    let ids = seen.lock().unwrap().clone();
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], ids[1], "a retry must not open a second account");
    let CommandOutcome::AccountOpened { event } = outcome else {
        panic!("open answers AccountOpened");
    };
    assert_eq!(event.account_id, ids[0]);
    assert_eq!(event.sequence, 1);
}

fn snapshot_of_history() -> Snapshot {
    let events: Vec<_> = history()
        .into_iter()
        .map(|recorded| recorded.event)
        .collect();
    Snapshot {
        account_id: account_id(),
        state: Account::replay(&account_id(), &events)
            .unwrap()
            .unwrap()
            .snapshot(),
        taken_at: Utc::now(),
    }
}

/// A snapshot at version 3 of an account whose store holds only 2 events.
fn snapshot_ahead() -> Snapshot {
    let mut events: Vec<_> = history()
        .into_iter()
        .map(|recorded| recorded.event)
        .collect();
    events.push(AccountEvent::MoneyDeposited(MoneyDeposited {
        amount: Amount::parse("5.00").unwrap(),
        balance_after: ledger_domain::Balance::parse("105.00").unwrap(),
        description: None,
    }));
    Snapshot {
        account_id: account_id(),
        state: Account::replay(&account_id(), &events)
            .unwrap()
            .unwrap()
            .snapshot(),
        taken_at: Utc::now(),
    }
}

fn snapshotting(store: MockEventStore, snapshots: MockSnapshotStore, every: u64) -> CommandService {
    service(store, 3).with_snapshots(Arc::new(snapshots), every)
}

#[tokio::test]
async fn a_load_reads_the_snapshot_plus_only_the_events_after_it() {
    let mut snapshots = MockSnapshotStore::new();
    snapshots
        .expect_latest()
        .returning(|_| Ok(Some(snapshot_of_history())));
    snapshots.expect_save().never();
    let mut store = MockEventStore::new();
    store.expect_idempotency_record().returning(|_| Ok(None));
    store
        .expect_load()
        .withf(|_, after_sequence| *after_sequence == 2)
        .times(1)
        .returning(|_, _| Ok(Vec::new()));
    store
        .expect_append()
        .withf(|append| append.streams()[0].expected_version == 2)
        .times(1)
        .returning(|_| Ok(()));
    let outcome = snapshotting(store, snapshots, 100)
        .execute(&context("k"), &deposit("1.00"))
        .await
        .unwrap();
    let CommandOutcome::MoneyPosted { event } = outcome else {
        panic!("a deposit posts money");
    };
    assert_eq!(event.balance_after.unwrap().to_string(), "101.00");
}

#[tokio::test]
async fn a_snapshot_is_stored_when_an_append_crosses_the_interval() {
    let mut snapshots = MockSnapshotStore::new();
    snapshots.expect_latest().returning(|_| Ok(None));
    snapshots
        .expect_save()
        .withf(|snapshot| snapshot.version() == 3 && snapshot.state.balance.to_string() == "101.00")
        .times(1)
        .returning(|_| Ok(true));
    let mut store = MockEventStore::new();
    store.expect_idempotency_record().returning(|_| Ok(None));
    store.expect_load().returning(|_, _| Ok(history()));
    store.expect_append().times(1).returning(|_| Ok(()));
    snapshotting(store, snapshots, 3)
        .execute(&context("k"), &deposit("1.00"))
        .await
        .unwrap();
}

#[tokio::test]
async fn an_impossible_snapshot_is_ignored_for_a_full_replay() {
    let mut snapshots = MockSnapshotStore::new();
    snapshots.expect_latest().returning(|_| {
        let mut snapshot = snapshot_of_history();
        snapshot.state.balance = ledger_domain::Balance::parse("-5.00").unwrap();
        Ok(Some(snapshot))
    });
    snapshots.expect_save().never();
    let mut store = MockEventStore::new();
    store.expect_idempotency_record().returning(|_| Ok(None));
    store
        .expect_load()
        .withf(|_, after_sequence| *after_sequence == 0)
        .returning(|_, _| Ok(history()));
    store.expect_append().times(1).returning(|_| Ok(()));
    snapshotting(store, snapshots, 100)
        .execute(&context("k"), &deposit("1.00"))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_tail_with_a_hole_is_refused_as_corrupt() {
    let mut store = MockEventStore::new();
    store.expect_idempotency_record().returning(|_| Ok(None));
    store.expect_load().returning(|_, _| {
        let mut events = history();
        events[1].sequence = 3;
        Ok(events)
    });
    store.expect_append().never();
    let error = service(store, 3)
        .execute(&context("k"), &deposit("1.00"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, CommandError::Store(StoreError::Corrupt { .. })),
        "{error:?}"
    );
}

#[test]
fn two_spellings_of_one_amount_are_one_request() {
    assert_eq!(
        deposit("12.5").fingerprint(),
        deposit("12.50").fingerprint()
    );
    assert_eq!(deposit("12").fingerprint(), deposit("12.00").fingerprint());
    assert_ne!(
        deposit("12.5").fingerprint(),
        deposit("12.05").fingerprint()
    );
    let open = |limit: &str| CommandRequest::OpenAccount {
        account_id: Some(account_id()),
        owner: OwnerName::parse("Ada").unwrap(),
        kind: AccountKind::Checking,
        currency: Currency::parse("USD").unwrap(),
        overdraft_limit: Some(OverdraftLimit::parse(limit).unwrap()),
    };
    assert_eq!(open("100").fingerprint(), open("100.00").fingerprint());
}

#[test]
fn the_fingerprint_ignores_nothing_the_client_sent() {
    assert_eq!(deposit("1.00").fingerprint(), deposit("1.00").fingerprint());
    assert_ne!(deposit("1.00").fingerprint(), deposit("1.01").fingerprint());
    let withdraw = CommandRequest::Withdraw {
        account_id: account_id(),
        amount: Amount::parse("1.00").unwrap(),
        description: None,
    };
    assert_ne!(deposit("1.00").fingerprint(), withdraw.fingerprint());
}

/// A deposit of 100.00 at `sequence`, leaving `balance_after`.
fn deposited_at(sequence: u64, balance_after: &str) -> RecordedEvent {
    let mut event = history().pop().unwrap();
    event.sequence = sequence;
    event.event = AccountEvent::MoneyDeposited(MoneyDeposited {
        amount: Amount::parse("100.00").unwrap(),
        balance_after: ledger_domain::Balance::parse(balance_after).unwrap(),
        description: None,
    });
    event
}

#[tokio::test(start_paused = true)]
async fn a_deposit_on_a_cached_account_reads_nothing_before_its_append() {
    let mut store = MockEventStore::new();
    store.expect_idempotency_record().never();
    // The first command loads (the cache is cold); the second reads nothing.
    store.expect_load().times(1).returning(|_, _| Ok(history()));
    let mut appends = 0;
    store.expect_append().times(2).returning(move |append| {
        appends += 1;
        let expected_version = if appends == 1 { 2 } else { 3 };
        assert_eq!(append.streams()[0].expected_version, expected_version);
        Ok(())
    });
    let service = service(store, 3);
    service
        .execute(&context("k1"), &deposit("50.00"))
        .await
        .unwrap();
    let outcome = service
        .execute(&context("k2"), &deposit("25.00"))
        .await
        .unwrap();
    assert_eq!(
        outcome_balance(&outcome),
        ledger_domain::Balance::parse("175.00").unwrap(),
        "decided against the state the first append left"
    );
}

fn outcome_balance(outcome: &CommandOutcome) -> ledger_domain::Balance {
    match outcome {
        CommandOutcome::MoneyPosted { event } => event.balance_after.unwrap(),
        other => panic!("expected a money movement, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_rejection_on_a_cached_account_reads_the_tail_once_before_it_is_recorded() {
    let mut store = MockEventStore::new();
    store.expect_idempotency_record().never();
    let mut loads = 0;
    store
        .expect_load()
        .times(2)
        .returning(move |_, after_sequence| {
            loads += 1;
            if loads == 1 {
                assert_eq!(after_sequence, 0, "cold: the whole stream");
                Ok(history())
            } else {
                assert_eq!(after_sequence, 3, "the events after the cached version");
                Ok(Vec::new())
            }
        });
    let mut appends = 0;
    store.expect_append().times(2).returning(move |append| {
        appends += 1;
        if appends == 2 {
            assert!(append.streams().is_empty(), "the rejection's record alone");
            assert!(!append.idempotency().outcome.is_accepted());
        }
        Ok(())
    });
    let service = service(store, 3);
    service
        .execute(&context("k1"), &deposit("50.00"))
        .await
        .unwrap();
    let error = service
        .execute(&context("k2"), &withdraw("150.01"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            CommandError::Rejected(DomainError::InsufficientFunds { .. })
        ),
        "{error:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_rejection_of_a_stale_cached_state_is_decided_again_on_the_tail() {
    let mut store = MockEventStore::new();
    store.expect_idempotency_record().never();
    let mut loads = 0;
    store
        .expect_load()
        .times(2)
        .returning(move |_, after_sequence| {
            loads += 1;
            if loads == 1 {
                Ok(history())
            } else {
                // Another process deposited 100.00 after this one's append at 3.
                assert_eq!(after_sequence, 3);
                Ok(vec![deposited_at(4, "250.00")])
            }
        });
    let mut appends = 0;
    store.expect_append().times(2).returning(move |append| {
        appends += 1;
        if appends == 2 {
            assert!(append.idempotency().outcome.is_accepted(), "no rejection");
            assert_eq!(append.streams()[0].expected_version, 4);
        }
        Ok(())
    });
    let service = service(store, 3);
    service
        .execute(&context("k1"), &deposit("50.00"))
        .await
        .unwrap();
    let outcome = service
        .execute(&context("k2"), &withdraw("200.00"))
        .await
        .expect("the current state holds 250.00");
    assert_eq!(
        outcome_balance(&outcome),
        ledger_domain::Balance::parse("50.00").unwrap()
    );
}

#[tokio::test(start_paused = true)]
async fn a_conflict_on_a_stale_cached_state_reloads_without_spending_an_attempt() {
    let mut store = MockEventStore::new();
    store.expect_idempotency_record().never();
    let mut loads = 0;
    store.expect_load().times(2).returning(move |_, _| {
        loads += 1;
        let mut events = history();
        if loads == 2 {
            // Another process appended event 4 after this one's event 3.
            events.push(deposited_at(3, "200.00"));
            events.push(deposited_at(4, "300.00"));
        }
        Ok(events)
    });
    let mut appends = 0;
    store.expect_append().times(3).returning(move |append| {
        appends += 1;
        match appends {
            // The first command, cold: it leaves version 3 in the cache.
            1 => Ok(()),
            // Decided against the cached version 3, which is stale.
            2 => Err(AppendError::Conflict {
                account_id: append.streams()[0].account_id.clone(),
            }),
            _ => {
                assert_eq!(append.streams()[0].expected_version, 4);
                Ok(())
            }
        }
    });
    // One attempt only: the stale cache's refusal must not count as a lost race.
    let service = service(store, 1);
    service
        .execute(&context("k1"), &deposit("50.00"))
        .await
        .unwrap();
    service
        .execute(&context("k2"), &deposit("1.00"))
        .await
        .expect("reloaded and appended within the one attempt");
}

#[tokio::test(start_paused = true)]
async fn opening_an_account_reads_nothing_and_an_existing_one_is_refused_after_a_load() {
    let mut store = MockEventStore::new();
    store.expect_idempotency_record().never();
    store.expect_load().times(1).returning(|_, _| Ok(history()));
    let mut appends = 0;
    store.expect_append().times(2).returning(move |append| {
        appends += 1;
        if appends == 1 {
            // Assumed missing, but the store has the account: sequence 1 is taken.
            assert_eq!(append.streams()[0].expected_version, 0);
            Err(AppendError::Conflict {
                account_id: append.streams()[0].account_id.clone(),
            })
        } else {
            assert!(append.streams().is_empty(), "the rejection's record alone");
            Ok(())
        }
    });
    let open = CommandRequest::OpenAccount {
        account_id: Some(account_id()),
        owner: OwnerName::parse("Ada").unwrap(),
        kind: AccountKind::Checking,
        currency: Currency::parse("USD").unwrap(),
        overdraft_limit: None,
    };
    let error = service(store, 1)
        .execute(&context("open"), &open)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            CommandError::Rejected(DomainError::AccountAlreadyExists { .. })
        ),
        "{error:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn without_the_cache_every_command_loads() {
    let mut store = MockEventStore::new();
    store.expect_idempotency_record().never();
    store.expect_load().times(2).returning(|_, _| Ok(history()));
    store.expect_append().times(2).returning(|_| Ok(()));
    let service = service(store, 3).with_state_cache(0);
    for key in ["k1", "k2"] {
        service
            .execute(&context(key), &deposit("1.00"))
            .await
            .unwrap();
    }
}

#[test]
fn the_command_type_telemetry_names_is_the_requests_json_tag() {
    let other = AccountId::parse("acc-2").unwrap();
    let requests = [
        crate::testkit::fixtures::open_request("acc-1"),
        deposit("1.00"),
        CommandRequest::Withdraw {
            account_id: account_id(),
            amount: Amount::parse("1.00").unwrap(),
            description: None,
        },
        CommandRequest::Transfer {
            source_account_id: account_id(),
            target_account_id: other,
            amount: Amount::parse("1.00").unwrap(),
            description: None,
        },
        CommandRequest::Freeze {
            account_id: account_id(),
            reason: ledger_domain::FreezeReason::parse("audit").unwrap(),
        },
        CommandRequest::Unfreeze {
            account_id: account_id(),
        },
        CommandRequest::Close {
            account_id: account_id(),
        },
    ];
    for request in requests {
        let json = serde_json::to_value(&request).unwrap();
        assert_eq!(json["command"], request.command_type(), "{request:?}");
    }
}
