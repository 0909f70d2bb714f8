//! Long histories, written fast and honestly: each account opened and then given deposits decided
//! by the domain itself (`decide`, folded with `apply`, so every `balance_after` adds up), appended
//! through the real `EventStore::append` in atomic appends of as many events as one may hold, each
//! with its idempotency record. What a command service would have written, without a round trip
//! per event.

use std::path::Path;
use std::sync::Arc;

use chrono::Utc;
use ledger_application::ports::{AtomicAppend, EventStore, MAX_ACTIONS_PER_APPEND, StreamAppend};
use ledger_application::{
    CommandOutcome, EventId, EventMetadata, IdempotencyKey, IdempotencyRecord, PostedEvent,
    RecordedEvent, RecordedOutcome, RequestFingerprint,
};
use ledger_domain::{
    Account, AccountCommand, AccountId, AccountKind, Amount, Currency, OverdraftLimit, OwnerName,
    apply, decide,
};
use ledger_sqlite::SqliteDatabase;
use rust_decimal::Decimal;

use crate::bounded::for_each_bounded;

/// Events per append: the limit less the idempotency record and the predecessor check.
const EVENTS_PER_APPEND: usize = MAX_ACTIONS_PER_APPEND - 2;

/// Accounts seeded at once: a few writers, so the store's own concurrency is used, not abused.
const SEED_WRITERS: usize = 4;

/// One account to seed: its id and how many events its history holds (the opening included).
#[derive(Debug, Clone)]
pub struct History {
    pub account_id: String,
    pub events: u64,
}

/// Writes `histories` into the SQLite file at `path` (created if missing, opened as `ledger-api`
/// opens it) and closes it. Returns the number of events written.
pub async fn seed(path: &Path, histories: Vec<History>) -> Result<u64, String> {
    let database = SqliteDatabase::open(path)
        .await
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let store: Arc<dyn EventStore> = Arc::new(database.event_store());
    let written = for_each_bounded(histories, SEED_WRITERS, |history| {
        let store = Arc::clone(&store);
        async move { seed_account(store.as_ref(), &history).await }
    })
    .await;
    let closed = database.close().await.map_err(|e| e.to_string());
    let written = written?;
    closed?;
    Ok(written)
}

async fn seed_account(store: &dyn EventStore, history: &History) -> Result<u64, String> {
    let account_id = AccountId::parse(&history.account_id)
        .map_err(|e| format!("bad account id {}: {e}", history.account_id))?;
    let open = AccountCommand::Open {
        owner: OwnerName::parse("Bench").map_err(|e| e.to_string())?,
        kind: AccountKind::Checking,
        currency: Currency::parse("USD").map_err(|e| e.to_string())?,
        overdraft_limit: OverdraftLimit::parse("0.00").map_err(|e| e.to_string())?,
    };
    let mut state: Option<Account> = None;
    let mut written = 0;
    let mut batch = 0_u64;
    while written < history.events {
        let expected_version = state.as_ref().map_or(0, Account::version);
        let count = (history.events - written).min(EVENTS_PER_APPEND as u64);
        let recorded_at = Utc::now();
        let key = IdempotencyKey::parse(&format!("seed-{account_id}-{batch}"))
            .map_err(|e| e.to_string())?;
        let mut events = Vec::new();
        for _ in 0..count {
            let command = if state.is_none() {
                open.clone()
            } else {
                AccountCommand::Deposit {
                    amount: random_amount(),
                    description: None,
                }
            };
            for event in decide(&account_id, state.as_ref(), &command).map_err(|e| e.to_string())? {
                let next = apply(&account_id, state, &event).map_err(|e| e.to_string())?;
                events.push(RecordedEvent {
                    account_id: account_id.clone(),
                    sequence: next.version(),
                    event_id: EventId::from_uuid(uuid::Uuid::now_v7()),
                    event,
                    metadata: EventMetadata {
                        caller: ledger_application::Caller::anonymous(),
                        client_request_id: key.clone(),
                        correlation_id: key.to_string(),
                        causation_id: key.to_string(),
                        recorded_at,
                        traceparent: None,
                    },
                });
                state = Some(next);
            }
        }
        let last = events
            .last()
            .ok_or_else(|| "an append of no event".to_owned())?;
        let outcome = CommandOutcome::MoneyPosted {
            event: PostedEvent {
                account_id: account_id.clone(),
                sequence: last.sequence,
                event_id: last.event_id,
                balance_after: state.as_ref().map(Account::balance),
            },
        };
        let appended = events.len() as u64;
        let append = AtomicAppend::new(
            vec![StreamAppend {
                account_id: account_id.clone(),
                expected_version,
                events,
            }],
            IdempotencyRecord {
                key: key.clone(),
                fingerprint: RequestFingerprint::of(key.as_str().as_bytes()),
                outcome: RecordedOutcome::Accepted(outcome),
                recorded_at,
            },
        )
        .map_err(|e| e.to_string())?;
        store
            .append(append)
            .await
            .map_err(|e| format!("seeding {account_id}: {e}"))?;
        written += appended;
        batch += 1;
    }
    Ok(written)
}

/// A deposit of 0.01 to 999.99, drawn afresh each time.
pub fn random_amount() -> Amount {
    Amount::new(Decimal::new(fastrand::i64(1..100_000), 2)).expect("a positive amount of cents")
}
