//! The HTTP bodies and query strings: request DTOs that parse into domain types (`try_into_domain`)
//! and response DTOs built from command outcomes and read-model views.
//!
//! Amounts travel as JSON strings and are parsed by the domain's decimal parser: no JSON number,
//! and so no float, ever reaches a money type.

use std::fmt;
use std::marker::PhantomData;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::de::value::MapAccessDeserializer;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

mod commands;
mod fields;
mod queries;

pub use commands::{
    AccountOpenedResponse, EmptyRequest, FreezeRequest, MoneyCommand, MoneyMovementRequest,
    MoneyPostedResponse, OpenAccountRequest, StatusChangedResponse, StatusCommand,
    TransferLegResponse, TransferRequest, TransferResponse,
};
pub use queries::{
    AccountParams, AccountQuery, AccountResponse, BalanceParams, BalanceQuery, BalanceResponse,
    DAILY_BALANCE_DAYS_DEFAULT, DailyBalanceItem, DailyBalancesParams, DailyBalancesQuery,
    DailyBalancesResponse, HealthResponse, SEQUENCE_MAX, TransactionItem, TransactionPageResponse,
    TransactionsParams, TransactionsQuery,
};

/// A request body that must be a JSON object. Serde's derived structs also accept a JSON array of
/// the fields in order; a ledger does not take positional money orders, so this refuses them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonObject<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for JsonObject<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = T;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map))
            }
        }

        deserializer
            .deserialize_map(ObjectVisitor(PhantomData))
            .map(JsonObject)
    }
}

/// An instant as every response writes it: RFC 3339, UTC, microseconds.
pub(crate) fn timestamp(instant: DateTime<Utc>) -> String {
    instant.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The kinds of account, for the OpenAPI document.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AccountKindName {
    Checking,
    Savings,
}

/// The statuses of an account, for the OpenAPI document.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AccountStatusName {
    Open,
    Frozen,
    Closed,
}

/// The kinds of money movement, for the OpenAPI document.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EntryTypeName {
    Deposit,
    Withdrawal,
    TransferOut,
    TransferIn,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Pair {
        a: String,
        b: Option<String>,
    }

    #[test]
    fn only_objects_are_accepted() {
        let parsed: JsonObject<Pair> =
            serde_json::from_str(r#"{"a":"x"}"#).expect("an object parses");
        assert_eq!(
            parsed.0,
            Pair {
                a: "x".to_owned(),
                b: None
            }
        );
        for bad in [r#"["x", "y"]"#, r#""x""#, "1", "null", r#"{"a":"x","c":1}"#] {
            assert!(
                serde_json::from_str::<JsonObject<Pair>>(bad).is_err(),
                "{bad}"
            );
        }
    }
}
