//! Identifier and text value types: `AccountId`, `TransferId`, `OwnerName`, `Description`, `FreezeReason`.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::ParseError;

/// Longest identifier we accept; long enough for a UUID with a prefix, short enough for every key column.
pub const IDENTIFIER_MAX_LEN: usize = 64;

fn parse_identifier(text: &str) -> Result<String, ParseError> {
    let valid = !text.is_empty()
        && text.len() <= IDENTIFIER_MAX_LEN
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid {
        Ok(text.to_owned())
    } else {
        Err(ParseError::InvalidIdentifier {
            text: text.chars().take(IDENTIFIER_MAX_LEN + 1).collect(),
            max_len: IDENTIFIER_MAX_LEN,
        })
    }
}

/// Checks free text: trimmed of surrounding space, non-empty, at most `max_len` characters, no control
/// characters (they have no place in an audit trail and break log lines).
fn parse_text(field: &'static str, text: &str, max_len: usize) -> Result<String, ParseError> {
    let trimmed = text.trim();
    let valid = !trimmed.is_empty()
        && trimmed.chars().count() <= max_len
        && !trimmed.chars().any(char::is_control);
    if valid {
        Ok(trimmed.to_owned())
    } else {
        Err(ParseError::InvalidText { field, max_len })
    }
}

macro_rules! text_newtype {
    ($(#[$doc:meta])* $name:ident, $parse:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(text: &str) -> Result<Self, ParseError> {
                let parse: fn(&str) -> Result<String, ParseError> = $parse;
                parse(text).map(Self)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = ParseError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

text_newtype!(
    /// The identity of an account and of its event stream: 1-64 of `[A-Za-z0-9_-]`, client-chosen or generated.
    AccountId,
    parse_identifier
);

text_newtype!(
    /// The identity of one transfer, shared by its debit and credit events.
    TransferId,
    parse_identifier
);

/// Longest owner name we store.
pub const OWNER_MAX_LEN: usize = 200;
/// Longest description or freeze reason we store.
pub const NOTE_MAX_LEN: usize = 500;

text_newtype!(
    /// The account holder's name as given at opening.
    OwnerName,
    |text| parse_text("owner", text, OWNER_MAX_LEN)
);

text_newtype!(
    /// A free-text note on a money movement, shown in the account's transactions.
    Description,
    |text| parse_text("description", text, NOTE_MAX_LEN)
);

text_newtype!(
    /// Why an account was frozen; required, because a freeze must be explainable in an audit.
    FreezeReason,
    |text| parse_text("reason", text, NOTE_MAX_LEN)
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_accept_only_safe_characters() {
        assert!(AccountId::parse("acc-1_A").is_ok());
        for bad in ["", "a b", "a/b", "ä", &"x".repeat(IDENTIFIER_MAX_LEN + 1)] {
            assert!(
                matches!(
                    AccountId::parse(bad),
                    Err(ParseError::InvalidIdentifier { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn text_is_trimmed_bounded_and_free_of_control_characters() {
        assert_eq!(OwnerName::parse("  Ada  ").unwrap().as_str(), "Ada");
        assert!(OwnerName::parse("   ").is_err());
        assert!(OwnerName::parse("Ada\nLovelace").is_err());
        assert!(Description::parse(&"é".repeat(NOTE_MAX_LEN)).is_ok());
        assert_eq!(
            Description::parse(&"é".repeat(NOTE_MAX_LEN + 1)),
            Err(ParseError::InvalidText {
                field: "description",
                max_len: NOTE_MAX_LEN
            })
        );
    }
}
