//! DynamoDB items of the three tables: events, idempotency records and snapshots, to and from their
//! attribute maps.
//!
//! Events are encoded and decoded only through [`ledger_application::codec`], so a DynamoDB item holds
//! byte-for-byte the payload and metadata a SQLite row holds.
//!
//! # Reading event items from a DynamoDB Streams image
//!
//! [`decode_event`] reads any [`ItemAttributes`]. The trait is implemented here for both SDKs' maps:
//! `HashMap<String, aws_sdk_dynamodb::types::AttributeValue>` (Query results) and
//! `HashMap<String, aws_sdk_dynamodbstreams::types::AttributeValue>` (a stream record's `NewImage`),
//! so the streams reader calls `decode_event(image)` directly and needs no conversion. Anything else
//! that can name an attribute's text implements the trait's one method.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use ledger_application::codec::{self, EncodedEvent, format_timestamp, parse_timestamp};
use ledger_application::ports::{Snapshot, StoreError};
use ledger_application::{
    IdempotencyRecord, RecordedEvent, RecordedOutcome, RequestFingerprint, ScopedIdempotencyKey,
};
use ledger_domain::{AccountId, AccountSnapshot};

/// An item as the SDK hands it over.
pub type Item = HashMap<String, AttributeValue>;

/// Partition key of the events and snapshots tables (S).
pub const ACCOUNT_ID: &str = "account_id";
/// Sort key of the events table (N): 1, 2, 3, ... per account.
pub const SEQUENCE: &str = "sequence";
/// Event attributes (see [`ledger_application::codec::EncodedEvent`] for their meaning).
pub const EVENT_ID: &str = "event_id";
pub const EVENT_TYPE: &str = "event_type";
pub const SCHEMA_VERSION: &str = "schema_version";
pub const PAYLOAD: &str = "payload";
pub const METADATA: &str = "metadata";
/// When the event or record was written: [`codec::TIMESTAMP_FORMAT`] text, so text order is time
/// order.
pub const RECORDED_AT: &str = "recorded_at";

/// Partition key of the idempotency table (S): the client's `Idempotency-Key`.
pub const CLIENT_REQUEST_ID: &str = "client_request_id";
pub const FINGERPRINT: &str = "fingerprint";
/// The stored [`RecordedOutcome`] as JSON.
pub const OUTCOME: &str = "outcome";
/// The idempotency table's TTL attribute (N, epoch seconds).
pub const EXPIRES_AT: &str = "expires_at";

/// The snapshot's version (N): the sequence of the last event it folds.
pub const VERSION: &str = "version";
/// The snapshot's [`AccountSnapshot`] as JSON.
pub const STATE: &str = "state";
pub const TAKEN_AT: &str = "taken_at";

/// One attribute's value as text, whichever SDK's `AttributeValue` holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrText<'a> {
    /// A string attribute (`S`).
    S(&'a str),
    /// A number attribute (`N`), as DynamoDB's decimal text.
    N(&'a str),
    /// Present but of another type: an item this code did not write.
    Other,
}

/// Read access to one item's attributes by name. Implemented for the attribute maps of both the
/// DynamoDB and the DynamoDB Streams SDKs.
pub trait ItemAttributes {
    /// The attribute `name`, or `None` if the item lacks it.
    fn attribute(&self, name: &str) -> Option<AttrText<'_>>;
}

impl<H: std::hash::BuildHasher> ItemAttributes for HashMap<String, AttributeValue, H> {
    fn attribute(&self, name: &str) -> Option<AttrText<'_>> {
        self.get(name).map(|value| match value {
            AttributeValue::S(text) => AttrText::S(text),
            AttributeValue::N(text) => AttrText::N(text),
            _ => AttrText::Other,
        })
    }
}

impl<H: std::hash::BuildHasher> ItemAttributes
    for HashMap<String, aws_sdk_dynamodbstreams::types::AttributeValue, H>
{
    fn attribute(&self, name: &str) -> Option<AttrText<'_>> {
        use aws_sdk_dynamodbstreams::types::AttributeValue as StreamValue;
        self.get(name).map(|value| match value {
            StreamValue::S(text) => AttrText::S(text),
            StreamValue::N(text) => AttrText::N(text),
            _ => AttrText::Other,
        })
    }
}

/// A DynamoDB number attribute.
pub fn number(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// A DynamoDB string attribute.
pub fn string(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// The primary key of an event item.
pub fn event_key(account_id: &AccountId, sequence: u64) -> Item {
    HashMap::from([
        (ACCOUNT_ID.to_owned(), string(account_id.as_str())),
        (SEQUENCE.to_owned(), number(sequence)),
    ])
}

/// The primary key of an idempotency item.
pub fn idempotency_key(key: &ScopedIdempotencyKey) -> Item {
    HashMap::from([(CLIENT_REQUEST_ID.to_owned(), string(key.as_str()))])
}

/// The primary key of a snapshot item.
pub fn snapshot_key(account_id: &AccountId) -> Item {
    HashMap::from([(ACCOUNT_ID.to_owned(), string(account_id.as_str()))])
}

/// The item of one event, from the codec's encoding.
pub fn event_item(encoded: &EncodedEvent) -> Item {
    HashMap::from([
        (ACCOUNT_ID.to_owned(), string(encoded.account_id.as_str())),
        (SEQUENCE.to_owned(), number(encoded.sequence)),
        (EVENT_ID.to_owned(), string(encoded.event_id.as_str())),
        (EVENT_TYPE.to_owned(), string(encoded.event_type)),
        (
            SCHEMA_VERSION.to_owned(),
            number(u64::from(encoded.schema_version)),
        ),
        (PAYLOAD.to_owned(), string(encoded.payload.as_str())),
        (METADATA.to_owned(), string(encoded.metadata.as_str())),
        (RECORDED_AT.to_owned(), string(encoded.recorded_at.as_str())),
    ])
}

/// Rebuilds a recorded event from an event item (a Query result or a stream record's `NewImage`),
/// through the shared codec only.
///
/// Every attribute of [`event_item`] must be present with its type; a missing or mistyped attribute,
/// an undecodable payload, or a `recorded_at` that disagrees with the metadata's timestamp is
/// `StoreError::Corrupt`, because a store handing back what it cannot have been given must not be
/// trusted silently. Attributes this code does not know are ignored.
pub fn decode_event(item: &impl ItemAttributes) -> Result<RecordedEvent, StoreError> {
    let account_id = text(item, ACCOUNT_ID, "event")?;
    let what = format!("event of {account_id}");
    let sequence = unsigned(item, SEQUENCE, &what)?;
    let what = format!("event {account_id}/{sequence}");
    let schema_version = unsigned(item, SCHEMA_VERSION, &what)?;
    let schema_version = u16::try_from(schema_version).map_err(|_| {
        StoreError::corrupt(format!(
            "{what}: schema version {schema_version} out of range"
        ))
    })?;
    let event = codec::decode(
        account_id,
        sequence,
        text(item, EVENT_ID, &what)?,
        text(item, EVENT_TYPE, &what)?,
        schema_version,
        text(item, PAYLOAD, &what)?,
        text(item, METADATA, &what)?,
    )?;
    // The attribute duplicates the metadata's timestamp for people and tools reading the table; the
    // two disagreeing means one was changed behind the application's back.
    let recorded_at = text(item, RECORDED_AT, &what)?;
    if recorded_at != format_timestamp(event.recorded_at()) {
        return Err(StoreError::corrupt(format!(
            "{what}: recorded_at attribute `{recorded_at}` disagrees with its metadata"
        )));
    }
    Ok(event)
}

/// The item of an idempotency record, expiring (DynamoDB TTL) `ttl` after it is stored at `stored_at`
/// (or after its `recorded_at`, if that is later). The retention runs from the write, not from a
/// timestamp the record carries: a record written with an old `recorded_at` (a replayed import, a
/// skewed clock) must not be born expired, or TTL would delete it and let its key be used twice.
pub fn idempotency_item(
    record: &IdempotencyRecord,
    ttl: Duration,
    stored_at: chrono::DateTime<chrono::Utc>,
) -> Result<Item, StoreError> {
    let outcome = serde_json::to_string(&record.outcome)
        .map_err(|e| StoreError::corrupt(format!("cannot encode a command outcome: {e}")))?;
    Ok(HashMap::from([
        (CLIENT_REQUEST_ID.to_owned(), string(record.key.as_str())),
        (FINGERPRINT.to_owned(), string(record.fingerprint.as_str())),
        (OUTCOME.to_owned(), string(outcome)),
        (
            RECORDED_AT.to_owned(),
            string(format_timestamp(record.recorded_at)),
        ),
        (
            EXPIRES_AT.to_owned(),
            number(expires_at(record.recorded_at.max(stored_at), ttl)),
        ),
    ]))
}

/// Epoch seconds at which a record stored at `stored_at` may be deleted by DynamoDB's TTL. Saturating:
/// a clock before 1970 or a TTL of centuries must not turn into an early expiry.
fn expires_at(stored_at: chrono::DateTime<chrono::Utc>, ttl: Duration) -> u64 {
    u64::try_from(stored_at.timestamp())
        .unwrap_or(0)
        .saturating_add(ttl.as_secs())
}

/// Rebuilds an idempotency record from its item.
pub fn decode_idempotency_record(
    item: &impl ItemAttributes,
) -> Result<IdempotencyRecord, StoreError> {
    let key_text = text(item, CLIENT_REQUEST_ID, "idempotency record")?;
    let what = format!("idempotency record {key_text}");
    let key = ScopedIdempotencyKey::parse_stored(key_text)
        .map_err(|e| StoreError::corrupt(format!("{what}: {e}")))?;
    let outcome: RecordedOutcome = serde_json::from_str(text(item, OUTCOME, &what)?)
        .map_err(|e| StoreError::corrupt(format!("{what}: outcome: {e}")))?;
    Ok(IdempotencyRecord {
        key,
        fingerprint: RequestFingerprint::from_stored(text(item, FINGERPRINT, &what)?.to_owned()),
        outcome,
        recorded_at: parse_timestamp(text(item, RECORDED_AT, &what)?)?,
    })
}

/// The item of a snapshot. `version` is a top-level number so that the conditional write can compare
/// it; the state itself is JSON, the domain's own serde form of [`AccountSnapshot`].
pub fn snapshot_item(snapshot: &Snapshot) -> Result<Item, StoreError> {
    let state = serde_json::to_string(&snapshot.state).map_err(|e| {
        StoreError::corrupt(format!(
            "cannot encode the snapshot of {}: {e}",
            snapshot.account_id
        ))
    })?;
    Ok(HashMap::from([
        (ACCOUNT_ID.to_owned(), string(snapshot.account_id.as_str())),
        (VERSION.to_owned(), number(snapshot.version())),
        (STATE.to_owned(), string(state)),
        (
            TAKEN_AT.to_owned(),
            string(format_timestamp(snapshot.taken_at)),
        ),
    ]))
}

/// Rebuilds a snapshot from its item; a `version` attribute that disagrees with the state's is corrupt.
pub fn decode_snapshot(item: &impl ItemAttributes) -> Result<Snapshot, StoreError> {
    let account_text = text(item, ACCOUNT_ID, "snapshot")?;
    let what = format!("snapshot of {account_text}");
    let account_id =
        AccountId::parse(account_text).map_err(|e| StoreError::corrupt(format!("{what}: {e}")))?;
    let version = unsigned(item, VERSION, &what)?;
    let state: AccountSnapshot = serde_json::from_str(text(item, STATE, &what)?)
        .map_err(|e| StoreError::corrupt(format!("{what}: state: {e}")))?;
    if state.version != version {
        return Err(StoreError::corrupt(format!(
            "{what}: version attribute {version} disagrees with its state's {}",
            state.version
        )));
    }
    Ok(Snapshot {
        account_id,
        state,
        taken_at: parse_timestamp(text(item, TAKEN_AT, &what)?)?,
    })
}

/// A required string attribute.
fn text<'a>(item: &'a impl ItemAttributes, name: &str, what: &str) -> Result<&'a str, StoreError> {
    match item.attribute(name) {
        Some(AttrText::S(value)) => Ok(value),
        Some(_) => Err(StoreError::corrupt(format!(
            "{what}: attribute `{name}` is not a string"
        ))),
        None => Err(StoreError::corrupt(format!(
            "{what}: attribute `{name}` is missing"
        ))),
    }
}

/// A required non-negative integer attribute.
fn unsigned(item: &impl ItemAttributes, name: &str, what: &str) -> Result<u64, StoreError> {
    match item.attribute(name) {
        Some(AttrText::N(value)) => value.parse().map_err(|_| {
            StoreError::corrupt(format!(
                "{what}: attribute `{name}` = {value} is not a non-negative integer"
            ))
        }),
        Some(_) => Err(StoreError::corrupt(format!(
            "{what}: attribute `{name}` is not a number"
        ))),
        None => Err(StoreError::corrupt(format!(
            "{what}: attribute `{name}` is missing"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use ledger_application::testkit::fixtures::{
        account, at, deposited_event, opened_event, record_for, recorded,
    };
    use ledger_domain::Account;

    use super::*;

    #[test]
    fn an_event_round_trips_through_its_item() {
        let event = recorded("acc-1", 7, deposited_event("12.50", "99.99"), at(3, 9, 42));
        let item = event_item(&codec::encode(&event).expect("encode"));
        assert_eq!(item.get(SEQUENCE), Some(&AttributeValue::N("7".into())));
        assert_eq!(decode_event(&item).expect("decode"), event);
    }

    #[test]
    fn a_stream_image_decodes_like_a_query_item() {
        use aws_sdk_dynamodbstreams::types::AttributeValue as StreamValue;
        let event = recorded("acc-1", 1, opened_event(), at(3, 9, 1));
        let image: HashMap<String, StreamValue> =
            event_item(&codec::encode(&event).expect("encode"))
                .into_iter()
                .map(|(name, value)| {
                    let value = match value {
                        AttributeValue::S(s) => StreamValue::S(s),
                        AttributeValue::N(n) => StreamValue::N(n),
                        other => panic!("unexpected attribute {other:?}"),
                    };
                    (name, value)
                })
                .collect();
        assert_eq!(decode_event(&image).expect("decode"), event);
    }

    #[test]
    fn a_damaged_event_item_is_corrupt() {
        let event = recorded("acc-1", 2, deposited_event("1.00", "1.00"), at(3, 9, 2));
        let good = event_item(&codec::encode(&event).expect("encode"));
        let damaged = [
            (SEQUENCE, None),
            (SEQUENCE, Some(AttributeValue::S("2".into()))),
            (SEQUENCE, Some(AttributeValue::N("-2".into()))),
            (SCHEMA_VERSION, Some(AttributeValue::N("70000".into()))),
            (PAYLOAD, Some(AttributeValue::S("{".into()))),
            (
                RECORDED_AT,
                Some(AttributeValue::S("2026-03-03T09:00:00.000003Z".into())),
            ),
        ];
        for (name, value) in damaged {
            let mut item = good.clone();
            match value {
                Some(value) => item.insert(name.to_owned(), value),
                None => item.remove(name),
            };
            let error = decode_event(&item).expect_err("damaged item");
            assert!(
                matches!(error, StoreError::Corrupt { .. }),
                "{name}: {error:?}"
            );
        }
    }

    #[test]
    fn an_idempotency_record_round_trips_and_expires_a_ttl_after_it_is_stored() {
        let event = recorded("acc-1", 1, opened_event(), at(4, 9, 42));
        let record = record_for("key-1", &[&event]);
        let stored_at = record.recorded_at + chrono::Duration::days(200);
        let item = idempotency_item(&record, Duration::from_hours(1), stored_at).expect("encode");
        let expected = u64::try_from(stored_at.timestamp()).expect("after 1970") + 3_600;
        assert_eq!(
            item.get(EXPIRES_AT),
            Some(&number(expected)),
            "not born expired"
        );
        assert_eq!(decode_idempotency_record(&item).expect("decode"), record);
        let early = idempotency_item(
            &record,
            Duration::from_hours(1),
            record.recorded_at - chrono::Duration::hours(5),
        )
        .expect("encode");
        let expected = u64::try_from(record.recorded_at.timestamp()).expect("after 1970") + 3_600;
        assert_eq!(
            early.get(EXPIRES_AT),
            Some(&number(expected)),
            "a slow clock never shortens it"
        );
    }

    #[test]
    fn a_snapshot_round_trips_and_checks_its_version() {
        let id = account("acc-1");
        let state = Account::replay(&id, &[opened_event(), deposited_event("1.00", "1.00")])
            .expect("valid")
            .expect("opened")
            .snapshot();
        let snapshot = Snapshot {
            account_id: id,
            state,
            taken_at: at(5, 9, 1),
        };
        let mut item = snapshot_item(&snapshot).expect("encode");
        assert_eq!(item.get(VERSION), Some(&number(2)));
        assert_eq!(decode_snapshot(&item).expect("decode"), snapshot);
        item.insert(VERSION.to_owned(), number(3));
        assert!(matches!(
            decode_snapshot(&item),
            Err(StoreError::Corrupt { .. })
        ));
    }
}
