//! The one storage encoding of events, shared by every adapter: an event becomes an `event_type` name, a
//! `schema_version` and a JSON `payload`; its metadata becomes a JSON document.
//!
//! Keeping it here means SQLite, DynamoDB and PostgreSQL rows hold byte-for-byte the same payloads, and a
//! schema change is made once.

use ledger_domain::{AccountEvent, AccountId};
use serde_json::{Map, Value};

use crate::envelope::{EventId, EventMetadata, RecordedEvent};
use crate::ports::StoreError;

/// The columns of one stored event, ready for any store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedEvent {
    pub account_id: String,
    pub sequence: u64,
    pub event_id: String,
    pub event_type: &'static str,
    pub schema_version: u16,
    pub payload: String,
    pub metadata: String,
    /// RFC 3339 with microseconds in UTC, so text order is time order.
    pub recorded_at: String,
}

/// The format of every stored timestamp: fixed width, UTC, so that comparing text compares time.
pub const TIMESTAMP_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.6fZ";

pub fn format_timestamp(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format(TIMESTAMP_FORMAT).to_string()
}

pub fn parse_timestamp(text: &str) -> Result<chrono::DateTime<chrono::Utc>, StoreError> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|at| at.with_timezone(&chrono::Utc))
        .map_err(|e| StoreError::corrupt(format!("bad timestamp `{text}`: {e}")))
}

pub fn encode(event: &RecordedEvent) -> Result<EncodedEvent, StoreError> {
    let tagged = serde_json::to_value(&event.event)
        .map_err(|e| StoreError::corrupt(format!("cannot encode event: {e}")))?;
    let payload = match tagged {
        Value::Object(mut fields) => fields
            .remove("payload")
            .unwrap_or(Value::Object(Map::new())),
        _ => return Err(StoreError::corrupt("event did not encode as an object")),
    };
    let metadata = serde_json::to_string(&event.metadata)
        .map_err(|e| StoreError::corrupt(format!("cannot encode metadata: {e}")))?;
    Ok(EncodedEvent {
        account_id: event.account_id.to_string(),
        sequence: event.sequence,
        event_id: event.event_id.to_string(),
        event_type: event.event.event_type(),
        schema_version: event.event.schema_version(),
        payload: payload.to_string(),
        metadata,
        recorded_at: format_timestamp(event.metadata.recorded_at),
    })
}

/// Rebuilds a recorded event from its stored columns. Any mismatch is `StoreError::Corrupt`: a store
/// that hands back what it cannot have been given must not be trusted silently.
pub fn decode(
    account_id: &str,
    sequence: u64,
    event_id: &str,
    event_type: &str,
    schema_version: u16,
    payload: &str,
    metadata: &str,
) -> Result<RecordedEvent, StoreError> {
    let corrupt =
        |what: &str| StoreError::corrupt(format!("event {account_id}/{sequence}: {what}"));
    if schema_version != 1 {
        return Err(corrupt(&format!(
            "unknown schema version {schema_version} of {event_type}"
        )));
    }
    let payload: Value =
        serde_json::from_str(payload).map_err(|e| corrupt(&format!("payload: {e}")))?;
    let mut tagged = Map::new();
    tagged.insert("event_type".into(), Value::String(event_type.to_owned()));
    tagged.insert("payload".into(), payload);
    let event: AccountEvent = serde_json::from_value(Value::Object(tagged))
        .map_err(|e| corrupt(&format!("payload of {event_type}: {e}")))?;
    let metadata: EventMetadata =
        serde_json::from_str(metadata).map_err(|e| corrupt(&format!("metadata: {e}")))?;
    Ok(RecordedEvent {
        account_id: AccountId::parse(account_id).map_err(|e| corrupt(&e.to_string()))?,
        sequence,
        event_id: EventId::parse(event_id).ok_or_else(|| corrupt("event id is not a UUID"))?,
        event,
        metadata,
    })
}
