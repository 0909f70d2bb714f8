//! Command bodies (`POST`): garde-checked request DTOs that parse into a `CommandRequest`, and the
//! responses built from nothing but the `CommandOutcome`, so a replay answers byte for byte the same.

use garde::Validate;
use ledger_application::{CommandOutcome, CommandRequest, PostedEvent};
use ledger_domain::identity::{IDENTIFIER_MAX_LEN, NOTE_MAX_LEN, OWNER_MAX_LEN};
use ledger_domain::{
    AccountId, AccountKind, Amount, Currency, Description, FreezeReason, OverdraftLimit, OwnerName,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::fields::Fields;
use super::{AccountKindName, AccountStatusName};
use crate::openapi;
use crate::problem::ApiError;

use ledger_domain::money::DECIMAL_TEXT_MAX_LEN;
/// `CHECKING` and `SAVINGS` are eight characters.
const KIND_MAX_LEN: usize = 8;
/// ISO 4217 codes are three letters.
const CURRENCY_LEN: usize = 3;

/// `POST /v1/accounts`.
#[derive(Debug, Clone, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenAccountRequest {
    /// The new account's id: 1-64 of `[A-Za-z0-9_-]`. Generated (`acc_...`) when left out.
    #[garde(length(min = 1, max = IDENTIFIER_MAX_LEN))]
    #[schema(schema_with = openapi::optional_account_id_schema)]
    pub account_id: Option<String>,
    #[garde(length(chars, min = 1, max = OWNER_MAX_LEN))]
    #[schema(schema_with = openapi::owner_schema)]
    pub owner: String,
    #[garde(length(min = 1, max = KIND_MAX_LEN))]
    #[schema(value_type = AccountKindName)]
    pub kind: String,
    #[garde(length(min = CURRENCY_LEN, max = CURRENCY_LEN))]
    #[schema(schema_with = openapi::currency_schema)]
    pub currency: String,
    #[garde(length(min = 1, max = DECIMAL_TEXT_MAX_LEN))]
    #[schema(schema_with = openapi::overdraft_limit_schema)]
    pub overdraft_limit: Option<String>,
}

impl OpenAccountRequest {
    pub fn try_into_domain(self) -> Result<CommandRequest, ApiError> {
        let mut fields = Fields::validated(&self);
        let account_id =
            fields.parse_optional("account_id", self.account_id.as_deref(), AccountId::parse);
        let owner = fields.parse("owner", || OwnerName::parse(&self.owner));
        let kind = fields.parse("kind", || AccountKind::parse(&self.kind));
        let currency = fields.parse("currency", || Currency::parse(&self.currency));
        let overdraft_limit = fields.parse_optional(
            "overdraft_limit",
            self.overdraft_limit.as_deref(),
            OverdraftLimit::parse,
        );
        match (owner, kind, currency) {
            (Some(owner), Some(kind), Some(currency)) if fields.is_valid() => {
                Ok(CommandRequest::OpenAccount {
                    account_id,
                    owner,
                    kind,
                    currency,
                    overdraft_limit,
                })
            }
            _ => Err(fields.into_error()),
        }
    }
}

/// Which way a [`MoneyMovementRequest`] moves money.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoneyCommand {
    Deposit,
    Withdraw,
}

/// `POST /v1/accounts/{id}/deposits` and `/withdrawals`.
#[derive(Debug, Clone, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoneyMovementRequest {
    #[garde(length(min = 1, max = DECIMAL_TEXT_MAX_LEN))]
    #[schema(schema_with = openapi::amount_schema)]
    pub amount: String,
    #[garde(length(chars, min = 1, max = NOTE_MAX_LEN))]
    #[schema(schema_with = openapi::description_schema)]
    pub description: Option<String>,
}

impl MoneyMovementRequest {
    pub fn try_into_domain(
        self,
        account_id: &str,
        command: MoneyCommand,
    ) -> Result<CommandRequest, ApiError> {
        let mut fields = Fields::validated(&self);
        let account_id = fields.parse("account_id", || AccountId::parse(account_id));
        let amount = fields.parse("amount", || Amount::parse(&self.amount));
        let description = fields.parse_optional(
            "description",
            self.description.as_deref(),
            Description::parse,
        );
        match (account_id, amount) {
            (Some(account_id), Some(amount)) if fields.is_valid() => Ok(match command {
                MoneyCommand::Deposit => CommandRequest::Deposit {
                    account_id,
                    amount,
                    description,
                },
                MoneyCommand::Withdraw => CommandRequest::Withdraw {
                    account_id,
                    amount,
                    description,
                },
            }),
            _ => Err(fields.into_error()),
        }
    }
}

/// `POST /v1/transfers`.
#[derive(Debug, Clone, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferRequest {
    #[garde(length(min = 1, max = IDENTIFIER_MAX_LEN))]
    #[schema(schema_with = openapi::account_id_schema)]
    pub source_account_id: String,
    #[garde(length(min = 1, max = IDENTIFIER_MAX_LEN))]
    #[schema(schema_with = openapi::account_id_schema)]
    pub target_account_id: String,
    #[garde(length(min = 1, max = DECIMAL_TEXT_MAX_LEN))]
    #[schema(schema_with = openapi::amount_schema)]
    pub amount: String,
    #[garde(length(chars, min = 1, max = NOTE_MAX_LEN))]
    #[schema(schema_with = openapi::description_schema)]
    pub description: Option<String>,
}

impl TransferRequest {
    pub fn try_into_domain(self) -> Result<CommandRequest, ApiError> {
        let mut fields = Fields::validated(&self);
        let source_account_id = fields.parse("source_account_id", || {
            AccountId::parse(&self.source_account_id)
        });
        let target_account_id = fields.parse("target_account_id", || {
            AccountId::parse(&self.target_account_id)
        });
        let amount = fields.parse("amount", || Amount::parse(&self.amount));
        let description = fields.parse_optional(
            "description",
            self.description.as_deref(),
            Description::parse,
        );
        match (source_account_id, target_account_id, amount) {
            (Some(source_account_id), Some(target_account_id), Some(amount))
                if fields.is_valid() =>
            {
                Ok(CommandRequest::Transfer {
                    source_account_id,
                    target_account_id,
                    amount,
                    description,
                })
            }
            _ => Err(fields.into_error()),
        }
    }
}

/// `POST /v1/accounts/{id}/freeze`.
#[derive(Debug, Clone, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FreezeRequest {
    #[garde(length(chars, min = 1, max = NOTE_MAX_LEN))]
    #[schema(schema_with = openapi::freeze_reason_schema)]
    pub reason: String,
}

impl FreezeRequest {
    pub fn try_into_domain(self, account_id: &str) -> Result<CommandRequest, ApiError> {
        let mut fields = Fields::validated(&self);
        let account_id = fields.parse("account_id", || AccountId::parse(account_id));
        let reason = fields.parse("reason", || FreezeReason::parse(&self.reason));
        match (account_id, reason) {
            (Some(account_id), Some(reason)) if fields.is_valid() => {
                Ok(CommandRequest::Freeze { account_id, reason })
            }
            _ => Err(fields.into_error()),
        }
    }
}

/// Which status command an [`EmptyRequest`] carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusCommand {
    Unfreeze,
    Close,
}

/// `POST /v1/accounts/{id}/unfreeze` and `/close`: `{}`, or no body at all.
#[derive(Debug, Clone, Default, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmptyRequest {}

impl EmptyRequest {
    pub fn try_into_domain(
        self,
        account_id: &str,
        command: StatusCommand,
    ) -> Result<CommandRequest, ApiError> {
        let mut fields = Fields::validated(&self);
        match fields.parse("account_id", || AccountId::parse(account_id)) {
            Some(account_id) if fields.is_valid() => Ok(match command {
                StatusCommand::Unfreeze => CommandRequest::Unfreeze { account_id },
                StatusCommand::Close => CommandRequest::Close { account_id },
            }),
            _ => Err(fields.into_error()),
        }
    }
}

/// `201` to `POST /v1/accounts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AccountOpenedResponse {
    #[schema(example = "acc-alice-1")]
    pub account_id: String,
    /// The sequence of the `AccountOpened` event: 1.
    #[schema(example = 1)]
    pub sequence: u64,
    #[schema(example = "01890a5d-ac96-774b-bcce-b302099a8057")]
    pub event_id: String,
}

/// `200` to a deposit or withdrawal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct MoneyPostedResponse {
    pub account_id: String,
    /// The sequence of the event written: the account's version after it.
    pub sequence: u64,
    pub event_id: String,
    /// The balance the movement left, a decimal string.
    #[schema(example = "112.50")]
    pub balance_after: String,
}

/// One side of a transfer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TransferLegResponse {
    pub account_id: String,
    pub sequence: u64,
    pub event_id: String,
    #[schema(example = "75.00")]
    pub balance_after: String,
}

/// `200` to `POST /v1/transfers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TransferResponse {
    #[schema(example = "trf_01890a5dac96774bbcceb302099a8057")]
    pub transfer_id: String,
    pub source: TransferLegResponse,
    pub target: TransferLegResponse,
}

/// `200` to freeze, unfreeze and close.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct StatusChangedResponse {
    pub account_id: String,
    pub sequence: u64,
    pub event_id: String,
    /// The account's status after the command.
    #[schema(value_type = AccountStatusName)]
    pub status: String,
}

/// The outcome does not match the command that produced it: a bug or a corrupt idempotency record.
fn unexpected(outcome: &CommandOutcome) -> ApiError {
    ApiError::internal_message(&format!(
        "a command produced an outcome of the wrong kind: {outcome:?}"
    ))
}

fn balance_after(event: &PostedEvent) -> Result<String, ApiError> {
    event.balance_after.map(|b| b.to_string()).ok_or_else(|| {
        ApiError::internal_message(&format!(
            "a money movement outcome has no balance_after: {event:?}"
        ))
    })
}

impl AccountOpenedResponse {
    pub fn from_outcome(outcome: &CommandOutcome) -> Result<Self, ApiError> {
        match outcome {
            CommandOutcome::AccountOpened { event } => Ok(Self {
                account_id: event.account_id.to_string(),
                sequence: event.sequence,
                event_id: event.event_id.to_string(),
            }),
            other => Err(unexpected(other)),
        }
    }
}

impl MoneyPostedResponse {
    pub fn from_outcome(outcome: &CommandOutcome) -> Result<Self, ApiError> {
        match outcome {
            CommandOutcome::MoneyPosted { event } => Ok(Self {
                account_id: event.account_id.to_string(),
                sequence: event.sequence,
                event_id: event.event_id.to_string(),
                balance_after: balance_after(event)?,
            }),
            other => Err(unexpected(other)),
        }
    }
}

impl TransferLegResponse {
    fn from_event(event: &PostedEvent) -> Result<Self, ApiError> {
        Ok(Self {
            account_id: event.account_id.to_string(),
            sequence: event.sequence,
            event_id: event.event_id.to_string(),
            balance_after: balance_after(event)?,
        })
    }
}

impl TransferResponse {
    pub fn from_outcome(outcome: &CommandOutcome) -> Result<Self, ApiError> {
        match outcome {
            CommandOutcome::Transferred {
                transfer_id,
                source,
                target,
            } => Ok(Self {
                transfer_id: transfer_id.to_string(),
                source: TransferLegResponse::from_event(source)?,
                target: TransferLegResponse::from_event(target)?,
            }),
            other => Err(unexpected(other)),
        }
    }
}

impl StatusChangedResponse {
    pub fn from_outcome(outcome: &CommandOutcome) -> Result<Self, ApiError> {
        match outcome {
            CommandOutcome::StatusChanged { event, status } => Ok(Self {
                account_id: event.account_id.to_string(),
                sequence: event.sequence,
                event_id: event.event_id.to_string(),
                status: status.as_str().to_owned(),
            }),
            other => Err(unexpected(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(json: &str) -> Result<CommandRequest, ApiError> {
        serde_json::from_str::<OpenAccountRequest>(json)
            .expect("well-formed body")
            .try_into_domain()
    }

    fn fields_of(error: ApiError) -> Vec<String> {
        match error {
            ApiError::ValidationFailed { errors } => errors.into_iter().map(|e| e.field).collect(),
            other => panic!("expected validation_failed, got {other:?}"),
        }
    }

    #[test]
    fn a_valid_open_request_parses_into_domain_types() {
        let request = open(
            r#"{"account_id":"acc-1","owner":" Ada ","kind":"SAVINGS","currency":"JPY","overdraft_limit":"500"}"#,
        )
        .expect("valid");
        let CommandRequest::OpenAccount {
            account_id,
            owner,
            kind,
            currency,
            overdraft_limit,
        } = request
        else {
            panic!("expected an open request");
        };
        assert_eq!(account_id.map(String::from).as_deref(), Some("acc-1"));
        assert_eq!(owner.as_str(), "Ada");
        assert_eq!(kind, AccountKind::Savings);
        assert_eq!(currency.code(), "JPY");
        assert_eq!(
            overdraft_limit.map(|l| l.to_string()).as_deref(),
            Some("500")
        );
    }

    #[test]
    fn every_invalid_field_is_reported_at_once() {
        let error = open(
            r#"{"account_id":"a b","owner":"","kind":"LOAN","currency":"usd","overdraft_limit":"-1"}"#,
        )
        .expect_err("invalid");
        let mut fields = fields_of(error);
        fields.sort();
        assert_eq!(
            fields,
            ["account_id", "currency", "kind", "overdraft_limit", "owner"]
        );
    }

    #[test]
    fn garde_and_the_domain_do_not_report_one_field_twice() {
        let long = "x".repeat(IDENTIFIER_MAX_LEN + 1);
        let body = format!(
            r#"{{"account_id":"{long}","owner":"Ada","kind":"CHECKING","currency":"USD"}}"#
        );
        let error = open(&body).expect_err("too long");
        assert_eq!(fields_of(error), ["account_id"]);
    }

    #[test]
    fn amounts_must_be_plain_positive_decimals() {
        for bad in ["", "0", "-1", "1e3", "1,5", " 1", "NaN", "1.", ".5"] {
            let request = MoneyMovementRequest {
                amount: bad.to_owned(),
                description: None,
            };
            let error = request
                .try_into_domain("acc-1", MoneyCommand::Deposit)
                .expect_err(bad);
            assert_eq!(fields_of(error), ["amount"], "{bad:?}");
        }
    }

    #[test]
    fn a_json_number_is_not_an_amount() {
        for body in [
            r#"{"amount":12.5}"#,
            r#"{"amount":12}"#,
            r#"{"amount":1e2}"#,
        ] {
            assert!(
                serde_json::from_str::<MoneyMovementRequest>(body).is_err(),
                "{body}"
            );
        }
    }

    #[test]
    fn the_path_account_id_is_validated_with_the_body() {
        let error = FreezeRequest {
            reason: "  ".to_owned(),
        }
        .try_into_domain("no/such")
        .expect_err("invalid");
        assert_eq!(fields_of(error), ["account_id", "reason"]);
    }
}
