//! The contract of `Projection` and `ReadModelQuery`: what every read model MUST do, as test cases.

use std::sync::Arc;

use chrono::NaiveDate;
use ledger_domain::{AccountStatus, EntryType, FreezeReason};

use crate::envelope::{EventId, RecordedEvent};
use crate::ports::{
    ApplyOutcome, DeadLetter, DeadLetterId, ReadModelChange, ReadModelUpdate, StoredDeadLetter,
};
use crate::testkit::ReadModelSubject;
use crate::testkit::fixtures::{
    account, amount, at, balance, deposited_event, frozen_event, opened_event, recorded,
    transfer_events, usd,
};

fn update(event: &RecordedEvent) -> ReadModelUpdate {
    ReadModelUpdate::from_event(event)
}

async fn apply(subject: &ReadModelSubject, event: &RecordedEvent) -> ApplyOutcome {
    subject
        .projection
        .apply(&update(event))
        .await
        .expect("apply")
}

/// acc-1: opened on day 1, deposits on day 1 (10.00, 25.00) and day 3 (5.00), a transfer out on day 3.
async fn seed(subject: &ReadModelSubject) -> Vec<RecordedEvent> {
    let (debit, _) = transfer_events("acc-1", "acc-2", "2.50", "37.50", "2.50");
    let events = vec![
        recorded("acc-1", 1, opened_event(), at(1, 8, 0)),
        recorded("acc-1", 2, deposited_event("10.00", "10.00"), at(1, 9, 0)),
        recorded(
            "acc-1",
            3,
            deposited_event("25.00", "35.00"),
            at(1, 23, 999_999),
        ),
        recorded("acc-1", 4, deposited_event("5.00", "40.00"), at(3, 7, 0)),
        recorded("acc-1", 5, debit, at(3, 8, 0)),
    ];
    for event in &events {
        assert_eq!(apply(subject, event).await, ApplyOutcome::Applied);
    }
    events
}

fn date(day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, day).expect("date")
}

pub async fn unknown_account_has_no_view_and_sequence_zero(subject: ReadModelSubject) {
    let id = account("nobody");
    assert_eq!(
        subject.projection.last_sequence(&id).await.expect("read"),
        0
    );
    assert_eq!(subject.query.account(&id).await.expect("read"), None);
    assert!(
        subject
            .query
            .transactions(&id, 0, 10)
            .await
            .expect("read")
            .is_empty()
    );
}

pub async fn opening_creates_the_account_view(subject: ReadModelSubject) {
    let opened = recorded("acc-1", 1, opened_event(), at(1, 8, 5));
    assert_eq!(apply(&subject, &opened).await, ApplyOutcome::Applied);
    let view = subject
        .query
        .account(&account("acc-1"))
        .await
        .expect("read")
        .expect("account exists");
    assert_eq!(view.owner.as_str(), "Ada Lovelace");
    assert_eq!(view.currency, usd());
    assert_eq!(view.status, AccountStatus::Open);
    assert_eq!(view.balance.to_string(), "0.00");
    assert_eq!(view.overdraft_limit.to_string(), "50.00");
    assert_eq!(view.last_sequence, 1);
    assert_eq!(view.opened_at, at(1, 8, 5));
    assert_eq!(view.updated_at, at(1, 8, 5));
    assert_eq!(view.frozen_reason, None);
    assert_eq!(
        subject
            .projection
            .last_sequence(&account("acc-1"))
            .await
            .expect("read"),
        1
    );
}

pub async fn movements_set_balance_transactions_and_daily_closing(subject: ReadModelSubject) {
    let events = seed(&subject).await;
    let id = account("acc-1");
    let view = subject
        .query
        .account(&id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(view.balance.to_string(), "37.50");
    assert_eq!(view.last_sequence, 5);
    assert_eq!(view.updated_at, at(3, 8, 0));
    let rows = subject.query.transactions(&id, 0, 10).await.expect("read");
    assert_eq!(
        rows.iter().map(|r| r.sequence).collect::<Vec<_>>(),
        vec![2, 3, 4, 5]
    );
    let transfer = &rows[3];
    assert_eq!(transfer.entry_type, EntryType::TransferOut);
    assert_eq!(transfer.amount, amount("2.50"));
    assert_eq!(transfer.balance_after.to_string(), "37.50");
    assert_eq!(transfer.counterparty_account_id, Some(account("acc-2")));
    assert_eq!(
        transfer
            .transfer_id
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        Some("trf-fixture")
    );
    assert_eq!(transfer.event_id, events[4].event_id);
    assert_eq!(transfer.occurred_at, at(3, 8, 0));
    assert_eq!(rows[0].entry_type, EntryType::Deposit);
    assert_eq!(rows[0].counterparty_account_id, None);
    let days = subject
        .query
        .daily_balances(&id, date(1), date(31), 10)
        .await
        .expect("read");
    let closing: Vec<_> = days
        .iter()
        .map(|d| (d.date, d.closing_balance.to_string(), d.last_sequence))
        .collect();
    assert_eq!(
        closing,
        vec![
            (date(1), "35.00".to_owned(), 3),
            (date(3), "37.50".to_owned(), 5),
        ]
    );
}

pub async fn status_changes_set_status_and_freeze_reason(subject: ReadModelSubject) {
    let opened = recorded("acc-1", 1, opened_event(), at(1, 8, 0));
    let frozen = recorded("acc-1", 2, frozen_event("court order 17"), at(1, 9, 0));
    let unfrozen = recorded(
        "acc-1",
        3,
        ledger_domain::AccountEvent::AccountUnfrozen(ledger_domain::AccountUnfrozen {}),
        at(1, 10, 0),
    );
    apply(&subject, &opened).await;
    assert_eq!(apply(&subject, &frozen).await, ApplyOutcome::Applied);
    let view = subject
        .query
        .account(&account("acc-1"))
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(view.status, AccountStatus::Frozen);
    assert_eq!(
        view.frozen_reason,
        Some(FreezeReason::parse("court order 17").expect("reason"))
    );
    assert_eq!(apply(&subject, &unfrozen).await, ApplyOutcome::Applied);
    let view = subject
        .query
        .account(&account("acc-1"))
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(view.status, AccountStatus::Open);
    assert_eq!(view.frozen_reason, None);
    assert_eq!(view.last_sequence, 3);
    assert!(
        subject
            .query
            .transactions(&account("acc-1"), 0, 10)
            .await
            .expect("read")
            .is_empty(),
        "a status change is not a money movement"
    );
}

pub async fn out_of_order_updates_are_stale_and_write_nothing(subject: ReadModelSubject) {
    let opened = recorded("acc-1", 1, opened_event(), at(1, 8, 0));
    let second = recorded("acc-1", 2, deposited_event("10.00", "10.00"), at(1, 9, 0));
    let third = recorded("acc-1", 3, deposited_event("5.00", "15.00"), at(1, 10, 0));
    apply(&subject, &opened).await;
    assert_eq!(
        apply(&subject, &third).await,
        ApplyOutcome::Stale,
        "a gap is never applied"
    );
    assert_eq!(apply(&subject, &second).await, ApplyOutcome::Applied);
    assert_eq!(
        apply(&subject, &second).await,
        ApplyOutcome::Stale,
        "a duplicate is never applied twice"
    );
    let id = account("acc-1");
    let view = subject
        .query
        .account(&id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(view.balance.to_string(), "10.00");
    assert_eq!(view.last_sequence, 2);
    assert_eq!(
        subject
            .query
            .transactions(&id, 0, 10)
            .await
            .expect("read")
            .len(),
        1
    );
    let days = subject
        .query
        .daily_balances(&id, date(1), date(1), 10)
        .await
        .expect("read");
    assert_eq!(days[0].closing_balance.to_string(), "10.00");
}

pub async fn opening_twice_is_stale(subject: ReadModelSubject) {
    let opened = recorded("acc-1", 1, opened_event(), at(1, 8, 0));
    assert_eq!(apply(&subject, &opened).await, ApplyOutcome::Applied);
    let mut again = opened.clone();
    again.event_id = EventId::from_uuid(uuid::Uuid::now_v7());
    again.metadata.recorded_at = at(2, 8, 0);
    assert_eq!(apply(&subject, &again).await, ApplyOutcome::Stale);
    let view = subject
        .query
        .account(&account("acc-1"))
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(view.opened_at, at(1, 8, 0), "the first opening stands");
}

pub async fn transactions_page_by_sequence(subject: ReadModelSubject) {
    seed(&subject).await;
    let id = account("acc-1");
    let first = subject.query.transactions(&id, 0, 2).await.expect("read");
    assert_eq!(
        first.iter().map(|r| r.sequence).collect::<Vec<_>>(),
        vec![2, 3]
    );
    let second = subject.query.transactions(&id, 3, 2).await.expect("read");
    assert_eq!(
        second.iter().map(|r| r.sequence).collect::<Vec<_>>(),
        vec![4, 5]
    );
    assert!(
        subject
            .query
            .transactions(&id, 5, 2)
            .await
            .expect("read")
            .is_empty()
    );
}

pub async fn balance_lookup_is_inclusive_of_its_instant(subject: ReadModelSubject) {
    seed(&subject).await;
    let id = account("acc-1");
    let last = |at| {
        let query = Arc::clone(&subject.query);
        let id = id.clone();
        async move {
            query
                .last_transaction_at_or_before(&id, at)
                .await
                .expect("read")
                .map(|t| (t.sequence, t.balance_after))
        }
    };
    assert_eq!(
        last(at(1, 8, 30)).await,
        None,
        "opened, but nothing moved yet"
    );
    assert_eq!(
        last(at(1, 9, 0)).await,
        Some((2, balance("10.00"))),
        "the instant itself counts"
    );
    assert_eq!(last(at(1, 23, 999_998)).await, Some((2, balance("10.00"))));
    assert_eq!(last(at(1, 23, 999_999)).await, Some((3, balance("35.00"))));
    assert_eq!(last(at(2, 12, 0)).await, Some((3, balance("35.00"))));
    assert_eq!(last(at(30, 0, 0)).await, Some((5, balance("37.50"))));
}

pub async fn daily_balances_filter_by_inclusive_date_range(subject: ReadModelSubject) {
    seed(&subject).await;
    let id = account("acc-1");
    let dates = |from, to, limit| {
        let query = Arc::clone(&subject.query);
        let id = id.clone();
        async move {
            query
                .daily_balances(&id, from, to, limit)
                .await
                .expect("read")
                .into_iter()
                .map(|d| d.date)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(dates(date(1), date(3), 10).await, vec![date(1), date(3)]);
    assert_eq!(dates(date(2), date(3), 10).await, vec![date(3)]);
    assert_eq!(dates(date(1), date(2), 10).await, vec![date(1)]);
    assert_eq!(dates(date(1), date(3), 1).await, vec![date(1)]);
    assert!(dates(date(4), date(9), 10).await.is_empty());
}

fn letter(account_id: &str, sequence: u64, reason: &str) -> DeadLetter {
    DeadLetter {
        account_id: Some(account(account_id)),
        sequence: Some(sequence),
        event_id: Some(EventId::from_uuid(uuid::Uuid::now_v7())),
        event_type: Some("MoneyDeposited".to_owned()),
        raw: format!("{{\"account_id\":\"{account_id}\",\"sequence\":{sequence}}}"),
        reason: reason.to_owned(),
        waiting_behind: None,
        recorded_at: at(5, 5, 5),
    }
}

fn letters_of(stored: &[StoredDeadLetter]) -> Vec<DeadLetter> {
    stored.iter().map(|s| s.letter.clone()).collect()
}

pub async fn dead_letters_are_kept_once_per_event(subject: ReadModelSubject) {
    let first = letter("acc-1", 4, "gap: read model is at sequence 2, event is 4");
    let id = subject
        .projection
        .record_dead_letter(&first)
        .await
        .expect("record");
    let mut again = first.clone();
    "a later reason".clone_into(&mut again.reason);
    "{}".clone_into(&mut again.raw);
    let id_again = subject
        .projection
        .record_dead_letter(&again)
        .await
        .expect("record again");
    assert_eq!(id, id_again, "one event, one letter");
    let letters = subject.projection.dead_letters(10).await.expect("read");
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].id, id);
    assert_eq!(
        letters[0].letter, first,
        "the first reason and raw form stay"
    );
    assert_eq!(letters[0].resolved_at, None);
}

/// Letters list oldest first, each with its own id, and an undecodable record that names no account
/// is kept once per raw form.
pub async fn dead_letters_list_in_recorded_order_and_dedupe_unknown_events_by_raw_form(
    subject: ReadModelSubject,
) {
    let projection = &subject.projection;
    let unknown = |raw: &str| DeadLetter {
        account_id: None,
        sequence: None,
        event_id: None,
        event_type: None,
        raw: raw.to_owned(),
        reason: "undecodable: no account_id".to_owned(),
        waiting_behind: None,
        recorded_at: at(5, 5, 6),
    };
    let recorded = [
        letter("acc-1", 9, "poison 9"),
        unknown("{\"image\":1}"),
        letter("acc-1", 3, "poison 3"),
        unknown("{\"image\":2}"),
    ];
    let mut ids = Vec::new();
    for letter in &recorded {
        ids.push(projection.record_dead_letter(letter).await.expect("record"));
    }
    assert_eq!(
        projection
            .record_dead_letter(&unknown("{\"image\":1}"))
            .await
            .expect("record again"),
        ids[1]
    );
    let mut distinct = ids.clone();
    distinct.dedup();
    assert_eq!(distinct.len(), 4, "{ids:?}");
    let listed = projection.dead_letters(10).await.expect("read");
    assert_eq!(letters_of(&listed), recorded.to_vec());
    assert_eq!(listed.iter().map(|s| s.id).collect::<Vec<_>>(), ids);
    assert_eq!(
        letters_of(&projection.dead_letters(2).await.expect("read")),
        recorded[..2].to_vec()
    );
    let one = projection
        .dead_letter(ids[2])
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(one.letter, recorded[2]);
    let unknown_id = DeadLetterId::new(ids.iter().map(|id| id.get()).max().expect("ids") + 100);
    assert_eq!(
        projection.dead_letter(unknown_id).await.expect("read"),
        None
    );
}

/// The account's lowest open letter that is not itself waiting blocks it; resolving up to a
/// sequence closes the letters it covers (listed no more, still readable by id), and a resolved
/// letter recorded again is opened again.
pub async fn resolving_dead_letters_unblocks_the_account(subject: ReadModelSubject) {
    let projection = &subject.projection;
    let id_a = account("acc-a");
    assert_eq!(
        projection.blocking_dead_letter(&id_a).await.expect("read"),
        None
    );
    let head = projection
        .record_dead_letter(&letter("acc-a", 3, "undecodable: bad payload"))
        .await
        .expect("record");
    let mut waiting = letter("acc-a", 4, "waiting behind");
    waiting.waiting_behind = Some(head);
    let waiting_id = projection
        .record_dead_letter(&waiting)
        .await
        .expect("record");
    let other = projection
        .record_dead_letter(&letter("acc-b", 2, "gap"))
        .await
        .expect("record");
    let blocking = projection
        .blocking_dead_letter(&id_a)
        .await
        .expect("read")
        .expect("blocked");
    assert_eq!(blocking.id, head);
    let stored_waiting = projection
        .dead_letter(waiting_id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(stored_waiting.letter.waiting_behind, Some(head));

    let resolved = projection
        .resolve_dead_letters(&id_a, 4, at(6, 6, 6))
        .await
        .expect("resolve");
    assert_eq!(resolved, 2);
    assert_eq!(
        projection.blocking_dead_letter(&id_a).await.expect("read"),
        None
    );
    let open = projection.dead_letters(10).await.expect("read");
    assert_eq!(open.iter().map(|s| s.id).collect::<Vec<_>>(), vec![other]);
    let closed = projection
        .dead_letter(head)
        .await
        .expect("read")
        .expect("kept");
    assert_eq!(closed.resolved_at, Some(at(6, 6, 6)));
    assert_eq!(
        projection
            .resolve_dead_letters(&id_a, 4, at(7, 7, 7))
            .await
            .expect("resolve"),
        0,
        "nothing open is left to resolve"
    );

    let mut failing_anew = letter("acc-a", 3, "a new reason");
    "{\"new\":true}".clone_into(&mut failing_anew.raw);
    let reopened = projection
        .record_dead_letter(&failing_anew)
        .await
        .expect("record");
    assert_eq!(reopened, head);
    let stored = projection
        .dead_letter(head)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(stored.resolved_at, None);
    assert_eq!(stored.letter, failing_anew);
}

/// Several projectors delivering the same event at once: exactly one applies it.
pub async fn racing_applies_of_one_update_apply_it_once(subject: ReadModelSubject) {
    const PROJECTORS: usize = 8;
    apply(&subject, &recorded("acc-1", 1, opened_event(), at(1, 8, 0))).await;
    let deposit = update(&recorded(
        "acc-1",
        2,
        deposited_event("10.00", "10.00"),
        at(1, 9, 0),
    ));
    assert!(matches!(deposit.change, ReadModelChange::Moved(_)));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..PROJECTORS {
        let projection = Arc::clone(&subject.projection);
        let deposit = deposit.clone();
        tasks.spawn(async move { projection.apply(&deposit).await.expect("apply") });
    }
    let mut applied = 0;
    while let Some(outcome) = tasks.join_next().await {
        if outcome.expect("task") == ApplyOutcome::Applied {
            applied += 1;
        }
    }
    assert_eq!(applied, 1);
    let id = account("acc-1");
    assert_eq!(
        subject
            .query
            .transactions(&id, 0, 10)
            .await
            .expect("read")
            .len(),
        1
    );
    let view = subject
        .query
        .account(&id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(view.balance.to_string(), "10.00");
}

/// A movement for an account the read model never saw opened cannot be applied: it is refused as
/// corrupt, and nothing of it is written.
pub async fn a_movement_before_the_opening_is_corrupt_and_writes_nothing(
    subject: ReadModelSubject,
) {
    let orphan = recorded("acc-9", 1, deposited_event("10.00", "10.00"), at(1, 9, 0));
    let error = subject
        .projection
        .apply(&update(&orphan))
        .await
        .expect_err("no account to apply to");
    assert!(
        matches!(error, crate::ports::StoreError::Corrupt { .. }),
        "{error:?}"
    );
    let id = account("acc-9");
    assert_eq!(
        subject.projection.last_sequence(&id).await.expect("read"),
        0
    );
    assert!(
        subject
            .query
            .transactions(&id, 0, 10)
            .await
            .expect("read")
            .is_empty()
    );
    let days = subject
        .query
        .daily_balances(&id, date(1), date(1), 10)
        .await
        .expect("read");
    assert!(days.is_empty());
}

/// One account's history for the batch cases: an opening, two deposits on day 1, a transfer out and
/// a freeze on day 3, as events of `account_id`.
fn batch_history(account_id: &str) -> Vec<RecordedEvent> {
    let (debit, _) = transfer_events(account_id, "acc-0", "2.50", "32.50", "2.50");
    vec![
        recorded(account_id, 1, opened_event(), at(1, 8, 0)),
        recorded(
            account_id,
            2,
            deposited_event("10.00", "10.00"),
            at(1, 9, 0),
        ),
        recorded(
            account_id,
            3,
            deposited_event("25.00", "35.00"),
            at(1, 10, 0),
        ),
        recorded(account_id, 4, debit, at(3, 8, 0)),
        recorded(account_id, 5, frozen_event("audit"), at(3, 9, 0)),
    ]
}

/// Everything the read model shows of `account_id`: its view, its movements and its days.
async fn everything_of(
    subject: &ReadModelSubject,
    account_id: &str,
) -> (
    Option<crate::ports::AccountView>,
    Vec<crate::ports::TransactionView>,
    Vec<crate::ports::DailyBalanceView>,
) {
    let id = account(account_id);
    let view = subject.query.account(&id).await.expect("read");
    let rows = subject.query.transactions(&id, 0, 100).await.expect("read");
    let days = subject
        .query
        .daily_balances(&id, date(1), date(31), 100)
        .await
        .expect("read");
    (view, rows, days)
}

/// The batch's fast path writes what the events applied one by one write: a run across several
/// accounts, several events of each in order, new accounts and one that goes on from its
/// `last_sequence`, reads back exactly as the same events applied one at a time.
pub async fn a_batch_of_next_events_reads_back_as_the_events_applied_one_by_one(
    subject: ReadModelSubject,
) {
    let one_by_one = batch_history("acc-1");
    for event in &one_by_one {
        assert_eq!(apply(&subject, event).await, ApplyOutcome::Applied);
    }
    // acc-2 and acc-3 new, interleaved; acc-4 already at sequence 2.
    let (second, third, fourth) = (
        batch_history("acc-2"),
        batch_history("acc-3"),
        batch_history("acc-4"),
    );
    for event in &fourth[..2] {
        assert_eq!(apply(&subject, event).await, ApplyOutcome::Applied);
    }
    // Each account's events in its order, the accounts interleaved.
    let order = [
        (&second, 0),
        (&third, 0),
        (&second, 1),
        (&fourth, 2),
        (&third, 1),
        (&second, 2),
        (&third, 2),
        (&fourth, 3),
        (&second, 3),
        (&third, 3),
        (&fourth, 4),
        (&second, 4),
        (&third, 4),
    ];
    let batch: Vec<ReadModelUpdate> = order
        .iter()
        .map(|(history, index)| update(&history[*index]))
        .collect();
    assert!(
        subject.projection.apply_batch(&batch).await.expect("batch"),
        "every event is its account's next at its turn"
    );

    let (view, rows, days) = everything_of(&subject, "acc-1").await;
    let view = view.expect("acc-1 exists");
    assert_eq!(view.last_sequence, 5);
    assert_eq!(view.status, AccountStatus::Frozen);
    for (other, history) in [("acc-2", &second), ("acc-3", &third), ("acc-4", &fourth)] {
        let (other_view, other_rows, other_days) = everything_of(&subject, other).await;
        let other_view = other_view.expect("the batch opened or moved the account");
        assert_eq!(
            crate::ports::AccountView {
                account_id: view.account_id.clone(),
                ..other_view
            },
            view,
            "{other} reads as acc-1"
        );
        let event_ids: Vec<_> = other_rows.iter().map(|row| row.event_id).collect();
        let expected_ids: Vec<_> = history[1..4].iter().map(|event| event.event_id).collect();
        assert_eq!(event_ids, expected_ids, "{other}");
        let without_ids = |rows: &[crate::ports::TransactionView]| {
            rows.iter()
                .map(|row| crate::ports::TransactionView {
                    event_id: one_by_one[0].event_id,
                    ..row.clone()
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(without_ids(&other_rows), without_ids(&rows), "{other}");
        assert_eq!(other_days, days, "{other}");
    }
}

/// A batch with one event that is not its account's next at its turn (a duplicate, a gap, an
/// opening of an account that exists or at a later sequence) writes nothing at all, not even its
/// good events, and answers `false`.
pub async fn a_batch_with_one_event_out_of_turn_writes_nothing(subject: ReadModelSubject) {
    let history = batch_history("acc-1");
    for event in &history[..2] {
        assert_eq!(apply(&subject, event).await, ApplyOutcome::Applied);
    }
    let before = everything_of(&subject, "acc-1").await;
    let good = vec![
        update(&recorded("acc-2", 1, opened_event(), at(1, 8, 0))),
        update(&history[2]),
        update(&recorded(
            "acc-2",
            2,
            deposited_event("10.00", "10.00"),
            at(1, 9, 0),
        )),
    ];
    let out_of_turn = [
        ("a duplicate of an applied event", update(&history[1])),
        ("a duplicate within the batch", update(&history[2])),
        ("a gap", update(&history[4])),
        ("an opening of an existing account", update(&history[0])),
        (
            "an opening at a later sequence",
            update(&recorded("acc-3", 2, opened_event(), at(1, 8, 0))),
        ),
    ];
    for (what, bad) in out_of_turn {
        for at_index in [0, 1, good.len()] {
            let mut batch = good.clone();
            batch.insert(at_index, bad.clone());
            // A duplicate within the batch is one only after the event it repeats.
            if what == "a duplicate within the batch" && at_index <= 1 {
                continue;
            }
            let applied = subject.projection.apply_batch(&batch).await.expect("batch");
            assert!(!applied, "{what} at {at_index}: refused");
            assert_eq!(
                everything_of(&subject, "acc-1").await,
                before,
                "{what} at {at_index}: acc-1 untouched"
            );
            for untouched in ["acc-2", "acc-3"] {
                assert_eq!(
                    everything_of(&subject, untouched).await,
                    (None, Vec::new(), Vec::new()),
                    "{what} at {at_index}: {untouched} not written"
                );
                assert_eq!(
                    subject
                        .projection
                        .last_sequence(&account(untouched))
                        .await
                        .expect("read"),
                    0
                );
            }
        }
    }
    // The good events alone still go through: the refusals left nothing in their way.
    assert!(subject.projection.apply_batch(&good).await.expect("batch"));
    assert_eq!(
        subject
            .projection
            .last_sequence(&account("acc-1"))
            .await
            .expect("read"),
        3
    );
}

/// A batch holding a movement of an account never opened is refused, as `false` or as corrupt,
/// and writes nothing of its other events.
pub async fn a_batch_with_a_movement_before_the_opening_writes_nothing(subject: ReadModelSubject) {
    let batch = vec![
        update(&recorded("acc-1", 1, opened_event(), at(1, 8, 0))),
        update(&recorded(
            "acc-9",
            1,
            deposited_event("10.00", "10.00"),
            at(1, 9, 0),
        )),
    ];
    match subject.projection.apply_batch(&batch).await {
        Ok(applied) => assert!(!applied, "an orphan movement is not the next event"),
        Err(crate::ports::StoreError::Corrupt { .. }) => {}
        Err(other) => panic!("refused as neither stale nor corrupt: {other:?}"),
    }
    for untouched in ["acc-1", "acc-9"] {
        assert_eq!(
            everything_of(&subject, untouched).await,
            (None, Vec::new(), Vec::new()),
            "{untouched} not written"
        );
    }
}

/// An empty batch asks for nothing: it succeeds and writes nothing.
pub async fn an_empty_batch_writes_nothing(subject: ReadModelSubject) {
    let history = batch_history("acc-1");
    assert_eq!(apply(&subject, &history[0]).await, ApplyOutcome::Applied);
    let before = everything_of(&subject, "acc-1").await;
    subject
        .projection
        .apply_batch(&[])
        .await
        .expect("an empty batch is no error");
    assert_eq!(everything_of(&subject, "acc-1").await, before);
}

/// Several projectors delivering the same batch at once: exactly one applies it, once.
pub async fn racing_batches_of_the_same_events_apply_them_once(subject: ReadModelSubject) {
    const PROJECTORS: usize = 4;
    let history = batch_history("acc-1");
    assert_eq!(apply(&subject, &history[0]).await, ApplyOutcome::Applied);
    let batch: Vec<ReadModelUpdate> = history[1..]
        .iter()
        .map(update)
        .chain(batch_history("acc-2").iter().map(update))
        .collect();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..PROJECTORS {
        let projection = Arc::clone(&subject.projection);
        let batch = batch.clone();
        tasks.spawn(async move { projection.apply_batch(&batch).await.expect("batch") });
    }
    let mut applied = 0;
    while let Some(outcome) = tasks.join_next().await {
        if outcome.expect("task") {
            applied += 1;
        }
    }
    assert_eq!(applied, 1);
    for id in ["acc-1", "acc-2"] {
        let (view, rows, _) = everything_of(&subject, id).await;
        assert_eq!(view.expect("exists").last_sequence, 5, "{id}");
        assert_eq!(rows.len(), 3, "{id}");
    }
}
