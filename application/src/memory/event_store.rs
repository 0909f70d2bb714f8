//! `InMemoryEventStore`: streams in a mutex-guarded map; one lock makes every append atomic.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Bound;
use std::sync::Mutex;

use async_trait::async_trait;
use ledger_domain::AccountId;

use crate::envelope::{EventId, RecordedEvent};
use crate::idempotency::{IdempotencyRecord, ScopedIdempotencyKey};
use crate::ports::{
    AccountPage, AppendError, AtomicAppend, EventFeed, EventStore, EventStoreScan, FeedEvent,
    ScanCursor, StoreError,
};

#[derive(Debug, Default)]
struct State {
    /// Per stream, events by sequence: like the real stores' unique (account_id, sequence) key, a
    /// sequence that exists refuses the append, whatever the others hold.
    streams: HashMap<AccountId, BTreeMap<u64, RecordedEvent>>,
    idempotency: HashMap<ScopedIdempotencyKey, IdempotencyRecord>,
    /// Event ids are unique across all streams, as the real stores' unique index makes them.
    event_ids: HashSet<EventId>,
    /// Every event in commit order; the feed position is the index plus one.
    log: Vec<RecordedEvent>,
}

#[derive(Debug, Default)]
pub struct InMemoryEventStore {
    state: Mutex<State>,
}

impl InMemoryEventStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-applied append (we check before we write),
        // so a poisoned lock still guards consistent data.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl EventStore for InMemoryEventStore {
    async fn load(
        &self,
        account_id: &AccountId,
        after_sequence: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        Ok(self
            .lock()
            .streams
            .get(account_id)
            .map_or_else(Vec::new, |stream| {
                stream
                    .range((Bound::Excluded(after_sequence), Bound::Unbounded))
                    .map(|(_, event)| event.clone())
                    .collect()
            }))
    }

    async fn append(&self, append: AtomicAppend) -> Result<(), AppendError> {
        append.check_size()?;
        let mut state = self.lock();
        let key = &append.idempotency().key;
        if state.idempotency.contains_key(key) {
            return Err(AppendError::DuplicateRequest { key: key.clone() });
        }
        for event in append.events() {
            let taken = state
                .streams
                .get(&event.account_id)
                .is_some_and(|stream| stream.contains_key(&event.sequence));
            if taken {
                return Err(AppendError::Conflict {
                    account_id: event.account_id.clone(),
                });
            }
        }
        for stream in append.predecessor_checks() {
            let predecessor = state
                .streams
                .get(&stream.account_id)
                .and_then(|events| events.get(&stream.expected_version));
            let Some(predecessor) = predecessor else {
                return Err(AppendError::MissingPredecessor {
                    account_id: stream.account_id.clone(),
                    expected_version: stream.expected_version,
                });
            };
            if stream
                .events
                .iter()
                .any(|event| event.recorded_at() < predecessor.recorded_at())
            {
                return Err(AppendError::TimeRegression {
                    account_id: stream.account_id.clone(),
                });
            }
        }
        if let Some(reused) = append
            .events()
            .find(|event| state.event_ids.contains(&event.event_id))
        {
            return Err(AppendError::Store(StoreError::unavailable(format!(
                "event id {} is already stored",
                reused.event_id
            ))));
        }
        // Every check passed: from here on nothing can fail, so the append is all-or-nothing.
        for event in append.events() {
            state
                .streams
                .entry(event.account_id.clone())
                .or_default()
                .insert(event.sequence, event.clone());
            state.event_ids.insert(event.event_id);
            state.log.push(event.clone());
        }
        state
            .idempotency
            .insert(key.clone(), append.idempotency().clone());
        Ok(())
    }

    async fn idempotency_record(
        &self,
        key: &ScopedIdempotencyKey,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        Ok(self.lock().idempotency.get(key).cloned())
    }
}

#[async_trait]
impl EventFeed for InMemoryEventStore {
    async fn read_after(
        &self,
        after_position: u64,
        limit: usize,
    ) -> Result<Vec<FeedEvent>, StoreError> {
        let state = self.lock();
        let start = usize::try_from(after_position).unwrap_or(usize::MAX);
        Ok(state
            .log
            .iter()
            .enumerate()
            .skip(start)
            .take(limit)
            .map(|(index, event)| FeedEvent::decoded(index as u64 + 1, event.clone()))
            .collect())
    }
}

/// The cursor is the last account id of the page: accounts come in id order, like SQLite's.
#[async_trait]
impl EventStoreScan for InMemoryEventStore {
    async fn accounts_page(
        &self,
        cursor: Option<&ScanCursor>,
        limit: usize,
    ) -> Result<AccountPage, StoreError> {
        let state = self.lock();
        let mut ids: Vec<&AccountId> = state
            .streams
            .keys()
            .filter(|id| cursor.is_none_or(|after| id.as_str() > after.as_str()))
            .collect();
        ids.sort_unstable();
        let more = ids.len() > limit;
        let accounts: Vec<AccountId> = ids.into_iter().take(limit).cloned().collect();
        let next = match accounts.last() {
            Some(last) if more => Some(ScanCursor::new(last.as_str())),
            _ => None,
        };
        Ok(AccountPage { accounts, next })
    }

    async fn events_page(
        &self,
        account_id: &AccountId,
        after_sequence: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        Ok(self
            .lock()
            .streams
            .get(account_id)
            .map_or_else(Vec::new, |stream| {
                stream
                    .range((Bound::Excluded(after_sequence), Bound::Unbounded))
                    .take(limit)
                    .map(|(_, event)| event.clone())
                    .collect()
            }))
    }
}
