//! `Caller`: who asked for a command, as the edge authenticated them — the subject recorded in every
//! event's metadata (the audit trail says who did what) and the scope of their idempotency keys.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest subject we accept: OIDC allows any string, but an unbounded one would be stored with
/// every event and every idempotency record.
pub const CALLER_SUBJECT_MAX_LEN: usize = 256;

/// The subject recorded when the ledger serves without authentication (a loopback address with no
/// keys configured) and on events recorded before callers were recorded.
pub const ANONYMOUS_SUBJECT: &str = "anonymous";

/// An authenticated caller: the token's subject (`sub`), 1 to [`CALLER_SUBJECT_MAX_LEN`] bytes with
/// no control characters.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Caller(String);

/// Why a text is not a caller's subject.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "a caller's subject must be 1 to {CALLER_SUBJECT_MAX_LEN} bytes with no control characters"
)]
pub struct InvalidCaller;

impl Caller {
    pub fn parse(subject: &str) -> Result<Self, InvalidCaller> {
        let valid = !subject.is_empty()
            && subject.len() <= CALLER_SUBJECT_MAX_LEN
            && !subject.chars().any(char::is_control);
        if valid {
            Ok(Self(subject.to_owned()))
        } else {
            Err(InvalidCaller)
        }
    }

    /// The caller of an unauthenticated ledger (loopback only) — one caller for everyone.
    pub fn anonymous() -> Self {
        Self(ANONYMOUS_SUBJECT.to_owned())
    }

    pub fn subject(&self) -> &str {
        &self.0
    }
}

impl Default for Caller {
    /// Events recorded before callers were recorded read back as anonymous.
    fn default() -> Self {
        Self::anonymous()
    }
}

impl fmt::Display for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Caller({:?})", self.0)
    }
}

impl TryFrom<String> for Caller {
    type Error = InvalidCaller;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Caller> for String {
    fn from(caller: Caller) -> Self {
        caller.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subject_is_bounded_and_free_of_control_characters() {
        assert!(Caller::parse("auth0|5f1c").is_ok());
        assert!(Caller::parse(&"s".repeat(CALLER_SUBJECT_MAX_LEN)).is_ok());
        assert_eq!(
            Caller::parse(&"s".repeat(CALLER_SUBJECT_MAX_LEN + 1)),
            Err(InvalidCaller)
        );
        assert_eq!(Caller::parse(""), Err(InvalidCaller));
        assert_eq!(Caller::parse("alice\nbob"), Err(InvalidCaller));
    }

    #[test]
    fn metadata_without_a_caller_reads_back_as_anonymous() {
        #[derive(Deserialize)]
        struct Old {
            #[serde(default)]
            caller: Caller,
        }
        let old: Old = serde_json::from_str("{}").expect("decodes");
        assert_eq!(old.caller, Caller::anonymous());
        let bad = serde_json::from_str::<Caller>("\"\"");
        assert!(bad.is_err(), "an empty subject is refused on decode too");
    }
}
