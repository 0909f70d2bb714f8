//! Idempotency: the client's request key, the fingerprint of what was asked, and the stored outcome
//! that a retry of the same request gets back.

use std::fmt;

use chrono::{DateTime, Utc};
use ledger_domain::{AccountId, AccountStatus, Balance, DomainError, TransferId};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::caller::Caller;
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

/// The key an idempotency record is stored under: the client's `Idempotency-Key` scoped to the
/// caller who sent it (design §4: keys are scoped to the authenticated caller). Two callers who pick
/// the same key send two requests; neither gets the other's outcome, nor a `409` for it.
///
/// Its text is `<scope>:<client key>`, the scope being the first 128 bits of SHA-256 over the
/// caller's subject in hex: a fixed 32 digits whatever the subject's length (up to 256 bytes), so the
/// stored key stays short and the split at the first `:` is never ambiguous.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ScopedIdempotencyKey(String);

/// Hex digits of a [`ScopedIdempotencyKey`]'s caller scope.
const CALLER_SCOPE_HEX_LEN: usize = 32;

/// Why a stored text is not a scoped idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "a stored idempotency key must be {CALLER_SCOPE_HEX_LEN} lowercase hex digits, ':' and a client key"
)]
pub struct InvalidScopedIdempotencyKey;

impl ScopedIdempotencyKey {
    pub fn new(caller: &Caller, key: &IdempotencyKey) -> Self {
        let scope = hex(&Sha256::digest(caller.subject().as_bytes())[..CALLER_SCOPE_HEX_LEN / 2]);
        Self(format!("{scope}:{}", key.as_str()))
    }

    /// Rebuilds a key read back from a store, refusing anything [`Self::new`] cannot have made.
    pub fn parse_stored(text: &str) -> Result<Self, InvalidScopedIdempotencyKey> {
        let (scope, key) = text.split_once(':').ok_or(InvalidScopedIdempotencyKey)?;
        let scope_valid = scope.len() == CALLER_SCOPE_HEX_LEN
            && scope
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if scope_valid && IdempotencyKey::parse(key).is_ok() {
            Ok(Self(text.to_owned()))
        } else {
            Err(InvalidScopedIdempotencyKey)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key as its caller sent it, for answers to that caller.
    pub fn client_key(&self) -> IdempotencyKey {
        let client_text = &self.0[CALLER_SCOPE_HEX_LEN + 1..];
        IdempotencyKey(client_text.to_owned())
    }
}

impl fmt::Display for ScopedIdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ScopedIdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ScopedIdempotencyKey({:?})", self.0)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut hex, byte| {
            use fmt::Write;
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

/// A SHA-256 of the canonical form of a request: equal fingerprints mean the same request.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RequestFingerprint(String);

impl RequestFingerprint {
    pub fn of(canonical_request: &[u8]) -> Self {
        Self(hex(&Sha256::digest(canonical_request)))
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
    pub key: ScopedIdempotencyKey,
    pub fingerprint: RequestFingerprint,
    pub outcome: RecordedOutcome,
    pub recorded_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> IdempotencyKey {
        IdempotencyKey::parse(text).expect("key")
    }

    #[test]
    fn a_scoped_key_is_its_callers_and_reads_back_as_stored() {
        let alice = Caller::parse("alice").expect("subject");
        let bob = Caller::parse("bob").expect("subject");
        let alices = ScopedIdempotencyKey::new(&alice, &key("pay:1"));
        assert_ne!(alices, ScopedIdempotencyKey::new(&bob, &key("pay:1")));
        assert_eq!(alices, ScopedIdempotencyKey::new(&alice, &key("pay:1")));
        assert_eq!(alices.client_key(), key("pay:1"), "a ':' in the key stays");
        assert_eq!(
            ScopedIdempotencyKey::parse_stored(alices.as_str()),
            Ok(alices.clone())
        );
        // The longest subject and key still give a short, fixed-overhead stored key.
        let longest = Caller::parse(&"s".repeat(crate::caller::CALLER_SUBJECT_MAX_LEN)).expect("s");
        let stored =
            ScopedIdempotencyKey::new(&longest, &key(&"k".repeat(IDEMPOTENCY_KEY_MAX_LEN)));
        assert_eq!(stored.as_str().len(), 32 + 1 + IDEMPOTENCY_KEY_MAX_LEN);
    }

    #[test]
    fn a_stored_key_that_no_caller_can_have_made_is_refused() {
        for text in [
            "pay-1",
            ":pay-1",
            "0123456789abcdef0123456789abcde:pay-1",
            "0123456789ABCDEF0123456789ABCDEF:pay-1",
            "0123456789abcdef0123456789abcdef:",
            "0123456789abcdef0123456789abcdef:two words",
        ] {
            assert_eq!(
                ScopedIdempotencyKey::parse_stored(text),
                Err(InvalidScopedIdempotencyKey),
                "{text}"
            );
        }
    }
}
