//! Builders of recorded events, appends and read-model updates for the contract suites.

use chrono::{DateTime, TimeZone, Utc};
use ledger_domain::{
    AccountEvent, AccountFrozen, AccountId, AccountKind, AccountOpened, Amount, Balance, Currency,
    DomainError, FreezeReason, MoneyDeposited, OverdraftLimit, OwnerName, TransferCredited,
    TransferDebited, TransferId,
};
use uuid::Uuid;

use crate::envelope::{EventId, EventMetadata, RecordedEvent};
use crate::idempotency::{
    CommandOutcome, IdempotencyKey, IdempotencyRecord, PostedEvent, RecordedOutcome,
    RequestFingerprint,
};
use crate::ports::{AtomicAppend, StreamAppend};

pub fn account(id: &str) -> AccountId {
    AccountId::parse(id).expect("fixture account id")
}

pub fn key(text: &str) -> IdempotencyKey {
    IdempotencyKey::parse(text).expect("fixture idempotency key")
}

pub fn usd() -> Currency {
    Currency::parse("USD").expect("USD")
}

pub fn amount(text: &str) -> Amount {
    Amount::parse(text).expect("fixture amount")
}

pub fn balance(text: &str) -> Balance {
    Balance::parse(text).expect("fixture balance")
}

/// A fixed instant with whole microseconds, the precision every store keeps.
pub fn at(day: u32, hour: u32, micros: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, hour, 0, 0)
        .single()
        .expect("valid fixture date")
        + chrono::Duration::microseconds(i64::from(micros))
}

pub fn metadata(key_text: &str, recorded_at: DateTime<Utc>) -> EventMetadata {
    EventMetadata {
        caller: crate::Caller::anonymous(),
        client_request_id: key(key_text),
        correlation_id: format!("corr-{key_text}"),
        causation_id: key_text.to_owned(),
        recorded_at,
        traceparent: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_owned()),
    }
}

pub fn recorded(
    account_id: &str,
    sequence: u64,
    event: AccountEvent,
    recorded_at: DateTime<Utc>,
) -> RecordedEvent {
    RecordedEvent {
        account_id: account(account_id),
        sequence,
        event_id: EventId::from_uuid(Uuid::now_v7()),
        event,
        metadata: metadata(&format!("req-{account_id}-{sequence}"), recorded_at),
    }
}

pub fn opened_event() -> AccountEvent {
    AccountEvent::AccountOpened(AccountOpened {
        owner: OwnerName::parse("Ada Lovelace").expect("owner"),
        kind: AccountKind::Checking,
        currency: usd(),
        overdraft_limit: OverdraftLimit::parse("50.00").expect("limit"),
    })
}

pub fn deposited_event(amount_text: &str, balance_after: &str) -> AccountEvent {
    AccountEvent::MoneyDeposited(MoneyDeposited {
        amount: amount(amount_text),
        balance_after: balance(balance_after),
        description: None,
    })
}

/// Events `from..=to` of a plain history of `account_id`: the opening at 1, then deposits of 10.00
/// each (so event N leaves (N - 1) * 10.00), event N recorded at `at(3, 9, N)`.
pub fn opening_and_deposits(account_id: &str, from: u64, to: u64) -> Vec<RecordedEvent> {
    (from..=to)
        .map(|sequence| {
            let event = if sequence == 1 {
                opened_event()
            } else {
                let after = format!("{}.00", (sequence - 1) * 10);
                deposited_event("10.00", &after)
            };
            let micros = u32::try_from(sequence).expect("small sequence");
            recorded(account_id, sequence, event, at(3, 9, micros))
        })
        .collect()
}

pub fn frozen_event(reason: &str) -> AccountEvent {
    AccountEvent::AccountFrozen(AccountFrozen {
        reason: FreezeReason::parse(reason).expect("reason"),
    })
}

/// The two events of a transfer of `amount_text` from `source` (left at `source_after`) to `target`.
pub fn transfer_events(
    source: &str,
    target: &str,
    amount_text: &str,
    source_after: &str,
    target_after: &str,
) -> (AccountEvent, AccountEvent) {
    let transfer_id = TransferId::parse("trf-fixture").expect("transfer id");
    (
        AccountEvent::TransferDebited(TransferDebited {
            transfer_id: transfer_id.clone(),
            amount: amount(amount_text),
            balance_after: balance(source_after),
            target_account_id: account(target),
            description: None,
        }),
        AccountEvent::TransferCredited(TransferCredited {
            transfer_id,
            amount: amount(amount_text),
            balance_after: balance(target_after),
            source_account_id: account(source),
            description: None,
        }),
    )
}

/// An idempotency record for `key_text` whose outcome names the first event of the append.
pub fn record_for(key_text: &str, events: &[&RecordedEvent]) -> IdempotencyRecord {
    let first = events.first().expect("an append has events");
    IdempotencyRecord {
        key: key(key_text),
        fingerprint: RequestFingerprint::of(key_text.as_bytes()),
        outcome: RecordedOutcome::Accepted(CommandOutcome::MoneyPosted {
            event: PostedEvent {
                account_id: first.account_id.clone(),
                sequence: first.sequence,
                event_id: first.event_id,
                balance_after: first.event.movement().map(|m| m.balance_after),
            },
        }),
        recorded_at: first.metadata.recorded_at,
    }
}

/// The record-only append of a command rejected with `rejected`, under `key_text`.
pub fn rejection_append(key_text: &str, rejected: DomainError) -> AtomicAppend {
    AtomicAppend::new(
        Vec::new(),
        IdempotencyRecord {
            key: key(key_text),
            fingerprint: RequestFingerprint::of(key_text.as_bytes()),
            outcome: RecordedOutcome::Rejected { rejected },
            recorded_at: at(1, 12, 0),
        },
    )
    .expect("a rejection's append holds its record alone")
}

/// An append of `events` to one stream at `expected_version`, under `key_text`.
pub fn single_append(
    key_text: &str,
    expected_version: u64,
    events: Vec<RecordedEvent>,
) -> AtomicAppend {
    let record = record_for(key_text, &events.iter().collect::<Vec<_>>());
    let account_id = events.first().expect("events").account_id.clone();
    AtomicAppend::new(
        vec![StreamAppend {
            account_id,
            expected_version,
            events,
        }],
        record,
    )
    .expect("a well-formed fixture append")
}

/// An append of one event to each of several streams, under `key_text`.
pub fn multi_append(key_text: &str, streams: Vec<(u64, RecordedEvent)>) -> AtomicAppend {
    let record = record_for(
        key_text,
        &streams.iter().map(|(_, e)| e).collect::<Vec<_>>(),
    );
    AtomicAppend::new(
        streams
            .into_iter()
            .map(|(expected_version, event)| StreamAppend {
                account_id: event.account_id.clone(),
                expected_version,
                events: vec![event],
            })
            .collect(),
        record,
    )
    .expect("a well-formed fixture append")
}

/// A request to open `account_id`: a USD checking account of Ada's, no overdraft.
pub fn open_request(account_id: &str) -> crate::CommandRequest {
    crate::CommandRequest::OpenAccount {
        account_id: Some(account(account_id)),
        owner: ledger_domain::OwnerName::parse("Ada").expect("owner"),
        kind: ledger_domain::AccountKind::Checking,
        currency: usd(),
        overdraft_limit: None,
    }
}

/// A request to deposit `amount_text` into `account_id`.
pub fn deposit_request(account_id: &str, amount_text: &str) -> crate::CommandRequest {
    crate::CommandRequest::Deposit {
        account_id: account(account_id),
        amount: amount(amount_text),
        description: None,
    }
}

/// A request to withdraw `amount_text` from `account_id`.
pub fn withdraw_request(account_id: &str, amount_text: &str) -> crate::CommandRequest {
    crate::CommandRequest::Withdraw {
        account_id: account(account_id),
        amount: amount(amount_text),
        description: None,
    }
}
