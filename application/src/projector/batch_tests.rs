//! The projector's batched path (`Projector::project_batch`): its cost on a run of next events,
//! against a mocked projection, and its fallback, against a counting in-memory read model, which
//! must end exactly where projecting the events one by one ends.

use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ledger_domain::AccountId;

use super::*;
use crate::memory::InMemoryReadModel;
use crate::ports::{MockProjection, SystemClock};
use crate::testkit::fixtures::{at, deposited_event, opened_event, recorded};

fn retry() -> ProjectionRetry {
    ProjectionRetry {
        attempts_per_event_max: 3,
        retry_delay: Duration::from_millis(1),
    }
}

/// Three accounts, opened and moved, interleaved: every event its account's next.
fn next_events() -> Vec<RecordedEvent> {
    let mut events = Vec::new();
    for sequence in 1..=4 {
        for id in ["acc-1", "acc-2", "acc-3"] {
            let event = if sequence == 1 {
                opened_event()
            } else {
                let balance = format!("{}.00", 10 * (sequence - 1));
                deposited_event("10.00", &balance)
            };
            events.push(recorded(
                id,
                sequence,
                event,
                at(1, 8, u32::try_from(sequence).unwrap()),
            ));
        }
    }
    events
}

#[tokio::test]
async fn a_run_of_next_events_costs_one_apply_batch_and_no_reads() {
    let events = next_events();
    let expected: Vec<u64> = events.iter().map(|event| event.sequence).collect();
    let mut projection = MockProjection::new();
    projection
        .expect_apply_batch()
        .withf(move |updates| {
            updates
                .iter()
                .map(|update| update.sequence)
                .collect::<Vec<_>>()
                == expected
        })
        .times(1)
        .returning(|_| Ok(true));
    projection.expect_last_sequence().never();
    projection.expect_apply().never();
    projection.expect_record_dead_letter().never();
    let projector = Projector::new(Arc::new(projection), Arc::new(SystemClock), retry());

    let projected = projector.project_batch(&events).await.unwrap();
    assert_eq!(projected, vec![Projected::Applied; events.len()]);
}

#[tokio::test]
async fn a_run_longer_than_the_bound_goes_in_bounded_batches() {
    let events: Vec<RecordedEvent> = (1..=u64::try_from(BATCH_EVENTS_MAX).unwrap() + 1)
        .map(|sequence| {
            let event = if sequence == 1 {
                opened_event()
            } else {
                deposited_event("1.00", &format!("{}.00", sequence - 1))
            };
            recorded("acc-1", sequence, event, at(1, 8, 0))
        })
        .collect();
    let mut projection = MockProjection::new();
    projection
        .expect_apply_batch()
        .withf(|updates| updates.len() == BATCH_EVENTS_MAX)
        .times(1)
        .returning(|_| Ok(true));
    projection
        .expect_apply_batch()
        .withf(|updates| updates.len() == 1)
        .times(1)
        .returning(|_| Ok(true));
    projection.expect_last_sequence().never();
    let projector = Projector::new(Arc::new(projection), Arc::new(SystemClock), retry());
    assert_eq!(
        projector.project_batch(&events).await.unwrap().len(),
        events.len()
    );
}

#[tokio::test]
async fn a_batch_the_read_model_cannot_reach_is_an_error_and_nothing_else() {
    let mut projection = MockProjection::new();
    projection
        .expect_apply_batch()
        .times(1)
        .returning(|_| Err(StoreError::unavailable("connection refused")));
    projection.expect_last_sequence().never();
    projection.expect_record_dead_letter().never();
    let projector = Projector::new(Arc::new(projection), Arc::new(SystemClock), retry());
    let error = projector.project_batch(&next_events()).await.unwrap_err();
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
}

#[tokio::test]
async fn every_event_of_an_applied_batch_counts_for_the_lag() {
    let mut projection = MockProjection::new();
    projection.expect_apply_batch().returning(|_| Ok(true));
    let projector = Projector::new(Arc::new(projection), Arc::new(SystemClock), retry());
    // Recorded after the projector started, so the lag runs from the newest of them.
    let newest = Utc::now() + chrono::Duration::hours(1);
    let events = vec![
        recorded(
            "acc-1",
            1,
            opened_event(),
            newest - chrono::Duration::seconds(5),
        ),
        recorded("acc-2", 1, opened_event(), newest),
    ];
    projector.project_batch(&events).await.unwrap();
    assert_eq!(
        projector
            .progress()
            .lag(newest + chrono::Duration::seconds(2)),
        Duration::from_secs(2)
    );
}

/// The in-memory read model, counting what the projector asks of it.
#[derive(Default)]
struct Counting {
    inner: InMemoryReadModel,
    batches: AtomicUsize,
    reads: AtomicUsize,
}

#[async_trait]
impl Projection for Counting {
    async fn last_sequence(&self, account_id: &AccountId) -> Result<u64, StoreError> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.inner.last_sequence(account_id).await
    }

    async fn apply(&self, update: &ReadModelUpdate) -> Result<ApplyOutcome, StoreError> {
        self.inner.apply(update).await
    }

    async fn apply_batch(&self, updates: &[ReadModelUpdate]) -> Result<bool, StoreError> {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.inner.apply_batch(updates).await
    }

    async fn record_dead_letter(&self, letter: &DeadLetter) -> Result<DeadLetterId, StoreError> {
        self.inner.record_dead_letter(letter).await
    }

    async fn dead_letters(&self, limit: usize) -> Result<Vec<StoredDeadLetter>, StoreError> {
        self.inner.dead_letters(limit).await
    }

    async fn dead_letter(&self, id: DeadLetterId) -> Result<Option<StoredDeadLetter>, StoreError> {
        self.inner.dead_letter(id).await
    }

    async fn blocking_dead_letter(
        &self,
        account_id: &AccountId,
    ) -> Result<Option<StoredDeadLetter>, StoreError> {
        self.inner.blocking_dead_letter(account_id).await
    }

    async fn resolve_dead_letters(
        &self,
        account_id: &AccountId,
        through_sequence: u64,
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.inner
            .resolve_dead_letters(account_id, through_sequence, at)
            .await
    }
}

/// acc-1 applied up to 2 already; the run redelivers its 1 and 2 and brings 3; acc-2 is new and
/// flows; acc-3 starts past a gap (dead-lettered after the retries) and its next event waits
/// behind that letter; acc-9 moves money before any opening (corrupt, dead-lettered).
async fn a_troubled_run(read_model: &dyn Projection) -> Vec<RecordedEvent> {
    let history: Vec<RecordedEvent> = (1..=3)
        .map(|sequence| {
            let event = if sequence == 1 {
                opened_event()
            } else {
                deposited_event("10.00", &format!("{}.00", 10 * (sequence - 1)))
            };
            recorded("acc-1", sequence, event, at(1, 8, 0))
        })
        .collect();
    for event in &history[..2] {
        let applied = read_model
            .apply(&ReadModelUpdate::from_event(event))
            .await
            .unwrap();
        assert_eq!(applied, ApplyOutcome::Applied);
    }
    vec![
        history[0].clone(),
        recorded("acc-2", 1, opened_event(), at(1, 9, 0)),
        history[1].clone(),
        recorded("acc-3", 5, deposited_event("1.00", "41.00"), at(1, 9, 0)),
        recorded("acc-9", 1, deposited_event("1.00", "1.00"), at(1, 9, 0)),
        history[2].clone(),
        recorded("acc-2", 2, deposited_event("5.00", "5.00"), at(1, 10, 0)),
        recorded("acc-3", 6, deposited_event("1.00", "42.00"), at(1, 10, 0)),
    ]
}

/// What the read model ends with: positions, balances and dead letters (without the instant
/// they were recorded at, which is the clock's).
async fn end_state(read_model: &InMemoryReadModel) -> Vec<String> {
    use crate::ports::ReadModelQuery;
    let mut state = Vec::new();
    for id in ["acc-1", "acc-2", "acc-3", "acc-9"] {
        let account_id = AccountId::parse(id).unwrap();
        let view = read_model.account(&account_id).await.unwrap();
        let rows = read_model.transactions(&account_id, 0, 100).await.unwrap();
        state.push(format!(
            "{id}: {:?} {:?} {} movements",
            view.as_ref().map(|v| v.last_sequence),
            view.as_ref().map(|v| v.balance.to_string()),
            rows.len()
        ));
    }
    for letter in read_model.dead_letters(100).await.unwrap() {
        state.push(format!(
            "letter {}: {:?}/{:?} behind {:?}: {}",
            letter.id,
            letter.letter.account_id,
            letter.letter.sequence,
            letter.letter.waiting_behind,
            letter.letter.reason
        ));
    }
    state
}

#[tokio::test]
async fn a_refused_batch_falls_back_and_ends_exactly_where_one_by_one_does() {
    let one_by_one = Arc::new(InMemoryReadModel::new());
    let events = a_troubled_run(one_by_one.as_ref()).await;
    let reference = Projector::new(one_by_one.clone(), Arc::new(SystemClock), retry());
    let mut expected = Vec::new();
    for event in &events {
        expected.push(reference.project(event).await.unwrap());
    }

    let batched = Arc::new(Counting::default());
    let same_events = a_troubled_run(batched.as_ref()).await;
    let projector = Projector::new(batched.clone(), Arc::new(SystemClock), retry());
    let projected = projector.project_batch(&same_events).await.unwrap();

    assert_eq!(projected, expected);
    assert_eq!(
        expected,
        vec![
            Projected::Duplicate,
            Projected::Applied,
            Projected::Duplicate,
            Projected::DeadLettered,
            Projected::DeadLettered,
            Projected::Applied,
            Projected::Applied,
            Projected::WaitingBehindDeadLetter,
        ]
    );
    assert_eq!(
        end_state(&batched.inner).await,
        end_state(&one_by_one).await
    );
    // The whole run refused (duplicates, a gap, a corrupt event), then the events still next once
    // read (acc-2's two, acc-9's corrupt one) refused again for acc-9: every event on its own.
    assert_eq!(batched.batches.load(Ordering::Relaxed), 2);
}

#[tokio::test]
async fn after_a_refusal_the_accounts_that_flow_still_go_as_one_batch() {
    let read_model = Arc::new(Counting::default());
    // acc-1 was applied up to 1; a restart redelivers its 1 and brings 2, beside acc-2's run.
    read_model
        .apply(&ReadModelUpdate::from_event(&recorded(
            "acc-1",
            1,
            opened_event(),
            at(1, 8, 0),
        )))
        .await
        .unwrap();
    let events = vec![
        recorded("acc-1", 1, opened_event(), at(1, 8, 0)),
        recorded("acc-2", 1, opened_event(), at(1, 8, 0)),
        recorded("acc-1", 2, deposited_event("1.00", "1.00"), at(1, 9, 0)),
        recorded("acc-2", 2, deposited_event("1.00", "1.00"), at(1, 9, 0)),
        recorded("acc-2", 3, deposited_event("1.00", "2.00"), at(1, 9, 0)),
    ];
    let projector = Projector::new(read_model.clone(), Arc::new(SystemClock), retry());
    let projected = projector.project_batch(&events).await.unwrap();
    assert_eq!(
        projected,
        vec![
            Projected::Duplicate,
            Projected::Applied,
            Projected::Applied,
            Projected::Applied,
            Projected::Applied,
        ]
    );
    // The refused run, then acc-2's three events as one batch; acc-1's two on their own.
    assert_eq!(read_model.batches.load(Ordering::Relaxed), 2);
    // One read per account to split the run, then one per event on its own (acc-1's two).
    assert_eq!(read_model.reads.load(Ordering::Relaxed), 2 + 2);
}
