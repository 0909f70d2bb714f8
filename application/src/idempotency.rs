//! Idempotency: the client's request key, the fingerprint of what was asked, and the stored outcome
//! that a retry of the same request gets back.

use std::fmt;

use chrono::{DateTime, Utc};
use ledger_domain::{AccountId, AccountStatus, Balance, DomainError, TransferId};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::envelope::EventId;

/// Longest `Idempotency-Key` we accept.
pub const IDEMPOTENCY_KEY_MAX_LEN: usize = 128;

/// The client-chosen id of one command (`Idempotency-Key`): 1-128 visible ASCII characters.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IdempotencyKey(String);

/// Why a text is not an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an Idempotency-Key must be 1 to {IDEMPOTENCY_KEY_MAX_LEN} visible ASCII characters")]
pub struct InvalidIdempotencyKey;

impl IdempotencyKey {
    pub fn parse(text: &str) -> Result<Self, InvalidIdempotencyKey> {
        let valid = !text.is_empty()
            && text.len() <= IDEMPOTENCY_KEY_MAX_LEN
            && text.bytes().all(|b| b.is_ascii_graphic());
        if valid {
            Ok(Self(text.to_owned()))
        } else {
            Err(InvalidIdempotencyKey)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdempotencyKey({:?})", self.0)
    }
}

impl TryFrom<String> for IdempotencyKey {
    type Error = InvalidIdempotencyKey;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<IdempotencyKey> for String {
    fn from(value: IdempotencyKey) -> Self {
        value.0
    }
}

/// A SHA-256 of the canonical form of a request: equal fingerprints mean the same request.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RequestFingerprint(String);

impl RequestFingerprint {
    pub fn of(canonical_request: &[u8]) -> Self {
        let digest = Sha256::digest(canonical_request);
        Self(
            digest
                .iter()
                .fold(String::with_capacity(64), |mut hex, byte| {
                    use fmt::Write;
                    let _ = write!(hex, "{byte:02x}");
                    hex
                }),
        )
    }

    /// Rebuilds a fingerprint read back from a store.
    pub fn from_stored(hex: String) -> Self {
        Self(hex)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where one event of a command landed, with the balance it left if it moved money.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostedEvent {
    pub account_id: AccountId,
    pub sequence: u64,
    pub event_id: EventId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balance_after: Option<Balance>,
}

/// The result of an accepted command, stored with its events so that a retry gets it back unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum CommandOutcome {
    AccountOpened {
        event: PostedEvent,
    },
    MoneyPosted {
        event: PostedEvent,
    },
    Transferred {
        transfer_id: TransferId,
        source: PostedEvent,
        target: PostedEvent,
    },
    StatusChanged {
        event: PostedEvent,
        status: AccountStatus,
    },
}

/// What a command came to, as recorded under its key: every retry of the request gets exactly this.
///
/// A business rejection is an outcome too (design §4): it is recorded alone, with no event, so that a
/// retry of a withdrawal that failed for lack of funds is refused again even after a deposit, and a
/// retry of one that succeeded is never refused because the first attempt spent the money.
///
/// Untagged, so that an accepted outcome is stored exactly as before (`{"outcome": "money_posted",
/// ...}`) and a rejection as `{"rejected": {"rejection": "insufficient_funds", ...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RecordedOutcome {
    Accepted(CommandOutcome),
    Rejected { rejected: DomainError },
}

impl RecordedOutcome {
    /// Whether the command wrote events (and the record with them).
    pub fn is_accepted(&self) -> bool {
        matches!(self, Self::Accepted(_))
    }
}

/// The idempotency record written in the same atomic append as a command's events (or alone, for a
/// rejection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    pub key: IdempotencyKey,
    pub fingerprint: RequestFingerprint,
    pub outcome: RecordedOutcome,
    pub recorded_at: DateTime<Utc>,
}
