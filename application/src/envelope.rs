//! The envelope around a domain event once it is recorded: stream, sequence, identity and metadata.

use std::fmt;

use chrono::{DateTime, Utc};
use ledger_domain::{AccountEvent, AccountId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::caller::Caller;
use crate::idempotency::IdempotencyKey;

/// The identity of one recorded event: a UUIDv7, so ids sort roughly by creation time.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(Uuid);

impl EventId {
    pub fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }

    pub fn parse(text: &str) -> Option<Self> {
        Uuid::parse_str(text).ok().map(Self)
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventId({})", self.0.hyphenated())
    }
}

/// Who asked for an event and why: carried by every event for the audit trail and for tracing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMetadata {
    /// Who asked for the command (the token's subject), so the audit trail says who did what.
    /// Events recorded before callers were recorded read back as anonymous.
    #[serde(default)]
    pub caller: Caller,
    /// The `Idempotency-Key` of the command that produced the event.
    pub client_request_id: IdempotencyKey,
    /// Ties together everything done for one business interaction (the `X-Correlation-Id` header).
    pub correlation_id: String,
    /// The message that directly caused this event: the command, named by its client request id.
    pub causation_id: String,
    pub recorded_at: DateTime<Utc>,
    /// W3C trace context of the command, so a trace can follow the event into the projector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

/// A domain event as stored: the `sequence`-th event of the stream `account_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedEvent {
    pub account_id: AccountId,
    /// 1, 2, 3, ... within the account's stream; equals the account's version after the event.
    pub sequence: u64,
    pub event_id: EventId,
    pub event: AccountEvent,
    pub metadata: EventMetadata,
}

impl RecordedEvent {
    pub fn recorded_at(&self) -> DateTime<Utc> {
        self.metadata.recorded_at
    }
}
