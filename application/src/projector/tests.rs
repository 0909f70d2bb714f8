//! The per-event decisions of the projector, against a mocked projection.

use chrono::Utc;
use ledger_domain::{AccountId, AccountUnfrozen};

use super::*;
use crate::envelope::{EventId, EventMetadata};
use crate::idempotency::IdempotencyKey;
use crate::ports::MockProjection;

fn event(sequence: u64) -> RecordedEvent {
    RecordedEvent {
        account_id: AccountId::parse("acc-1").unwrap(),
        sequence,
        event_id: EventId::from_uuid(uuid::Uuid::now_v7()),
        event: ledger_domain::AccountEvent::AccountUnfrozen(AccountUnfrozen {}),
        metadata: EventMetadata {
            caller: crate::Caller::anonymous(),
            client_request_id: IdempotencyKey::parse("k").unwrap(),
            correlation_id: "c".to_owned(),
            causation_id: "k".to_owned(),
            recorded_at: Utc::now(),
            traceparent: None,
        },
    }
}

fn projector(projection: MockProjection) -> Projector {
    Projector::new(
        Arc::new(projection),
        Arc::new(crate::ports::SystemClock),
        ProjectionRetry {
            attempts_per_event_max: 3,
            retry_delay: Duration::from_millis(1),
        },
    )
}

fn at_sequence(last_sequence: u64) -> MockProjection {
    let mut projection = MockProjection::new();
    projection
        .expect_last_sequence()
        .returning(move |_| Ok(last_sequence));
    projection
}

#[tokio::test]
async fn the_next_event_is_applied() {
    let mut projection = at_sequence(4);
    projection
        .expect_apply()
        .withf(|update| update.sequence == 5)
        .times(1)
        .returning(|_| Ok(ApplyOutcome::Applied));
    let handled = projector(projection).handle(&event(5)).await.unwrap();
    assert_eq!(handled, Handled::Applied);
}

#[tokio::test]
async fn an_old_event_is_a_duplicate_and_never_applied() {
    let mut projection = at_sequence(4);
    projection.expect_apply().never();
    let projector = projector(projection);
    assert_eq!(
        projector.handle(&event(4)).await.unwrap(),
        Handled::Duplicate
    );
    assert_eq!(
        projector.handle(&event(1)).await.unwrap(),
        Handled::Duplicate
    );
}

#[tokio::test]
async fn an_event_past_a_gap_is_never_applied() {
    let mut projection = at_sequence(4);
    projection.expect_apply().never();
    let handled = projector(projection).handle(&event(6)).await.unwrap();
    assert_eq!(handled, Handled::Gap { last_sequence: 4 });
}

#[tokio::test]
async fn a_stale_apply_is_judged_again_on_a_fresh_read() {
    let mut projection = MockProjection::new();
    let mut reads = 0;
    // Another projector applies sequence 5 between our read and our write.
    projection
        .expect_last_sequence()
        .times(2)
        .returning(move |_| {
            reads += 1;
            Ok(if reads == 1 { 4 } else { 5 })
        });
    projection
        .expect_apply()
        .times(1)
        .returning(|_| Ok(ApplyOutcome::Stale));
    let handled = projector(projection).handle(&event(5)).await.unwrap();
    assert_eq!(handled, Handled::Duplicate);
}

#[tokio::test]
async fn an_event_that_stays_past_a_gap_is_dead_lettered_after_bounded_retries() {
    let mut projection = at_sequence(1);
    projection.expect_apply().never();
    projection
        .expect_blocking_dead_letter()
        .times(1)
        .returning(|_| Ok(None));
    projection
        .expect_record_dead_letter()
        .withf(|letter| {
            letter.sequence == Some(3)
                && letter.reason.starts_with("gap")
                && letter.waiting_behind.is_none()
                && letter.raw.contains("\"sequence\":3")
        })
        .times(1)
        .returning(|_| Ok(DeadLetterId::new(7)));
    let projected = projector(projection).project(&event(3)).await.unwrap();
    assert_eq!(projected, Projected::DeadLettered);
}

#[tokio::test]
async fn an_outage_is_never_dead_lettered() {
    let mut projection = MockProjection::new();
    projection
        .expect_last_sequence()
        .times(1)
        .returning(|_| Err(StoreError::unavailable("connection refused")));
    projection.expect_record_dead_letter().never();
    let error = projector(projection).project(&event(3)).await.unwrap_err();
    assert!(matches!(error, StoreError::Unavailable(_)));
}

fn open_letter(id: u64, sequence: u64) -> StoredDeadLetter {
    StoredDeadLetter {
        id: DeadLetterId::new(id),
        letter: DeadLetter {
            account_id: Some(AccountId::parse("acc-1").unwrap()),
            sequence: Some(sequence),
            event_id: None,
            event_type: None,
            raw: "{}".to_owned(),
            reason: "undecodable: test".to_owned(),
            waiting_behind: None,
            recorded_at: Utc::now(),
        },
        resolved_at: None,
    }
}

#[tokio::test]
async fn an_event_behind_a_dead_letter_waits_at_once_without_retries() {
    let mut projection = at_sequence(1);
    projection.expect_apply().never();
    projection
        .expect_blocking_dead_letter()
        .times(1)
        .returning(|_| Ok(Some(open_letter(4, 2))));
    projection
        .expect_record_dead_letter()
        .withf(|letter| {
            letter.sequence == Some(5) && letter.waiting_behind == Some(DeadLetterId::new(4))
        })
        .times(1)
        .returning(|_| Ok(DeadLetterId::new(9)));
    let projected = projector(projection).project(&event(5)).await.unwrap();
    assert_eq!(projected, Projected::WaitingBehindDeadLetter);
}

#[tokio::test]
async fn a_redelivered_dead_letter_is_not_recorded_again() {
    // Event 2 of acc-1 is the open letter; it arrives again past its own gap (1 is missing).
    let mut projection = at_sequence(0);
    projection
        .expect_blocking_dead_letter()
        .times(1)
        .returning(|_| Ok(Some(open_letter(4, 2))));
    projection.expect_record_dead_letter().never();
    projection.expect_apply().never();
    let projected = projector(projection).project(&event(2)).await.unwrap();
    assert_eq!(projected, Projected::DeadLettered);
}

#[tokio::test]
async fn an_undecodable_event_is_dead_lettered_at_once_with_its_raw_form() {
    let mut projection = at_sequence(1);
    projection
        .expect_record_dead_letter()
        .withf(|letter| {
            letter.raw == "{\"payload\":\"garbage\"}"
                && letter.sequence == Some(2)
                && letter.reason.contains("bad payload")
        })
        .times(1)
        .returning(|_| Ok(DeadLetterId::new(1)));
    let undecodable = UndecodableEvent {
        account_id: Some(AccountId::parse("acc-1").unwrap()),
        sequence: Some(2),
        raw: "{\"payload\":\"garbage\"}".to_owned(),
        error: "bad payload".to_owned(),
    };
    let projected = projector(projection)
        .project_undecodable(&undecodable)
        .await
        .unwrap();
    assert_eq!(projected, Projected::DeadLettered);
}

#[test]
fn progress_lags_from_the_newest_event_handled_until_caught_up() {
    let start = Utc::now();
    let progress = ProjectionProgress::new(start);
    let later = start + chrono::Duration::seconds(3);
    assert_eq!(progress.lag(later), Duration::from_secs(3));
    progress.handled(start + chrono::Duration::seconds(2));
    assert_eq!(progress.lag(later), Duration::from_secs(1));
    progress.caught_up();
    assert_eq!(progress.lag(later), Duration::ZERO);
    // Work found after a quiet spell counts from when it was found, not from the old event.
    let found = start + chrono::Duration::seconds(60);
    progress.found_work(found);
    assert_eq!(
        progress.lag(found + chrono::Duration::seconds(2)),
        Duration::from_secs(2)
    );
}

#[test]
fn classification_covers_every_ordering() {
    assert_eq!(classify(0, 1), Classification::Next);
    assert_eq!(classify(3, 3), Classification::Duplicate);
    assert_eq!(classify(3, 5), Classification::Gap);
}
