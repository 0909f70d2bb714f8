//! The OpenAPI document (`GET /openapi.json`), generated from the handlers' `#[utoipa::path]`
//! attributes and the DTOs' schemas, with the problem responses every endpoint shares.

use utoipa::openapi::RefOr;
use utoipa::openapi::Required;
use utoipa::{IntoParams, IntoResponses, Modify, OpenApi};

use crate::dto::{
    AccountKindName, AccountOpenedResponse, AccountResponse, AccountStatusName, BalanceResponse,
    DailyBalanceItem, DailyBalancesResponse, EmptyRequest, EntryTypeName, FreezeRequest,
    HealthResponse, MoneyMovementRequest, MoneyPostedResponse, OpenAccountRequest,
    StatusChangedResponse, TransactionItem, TransactionPageResponse, TransferLegResponse,
    TransferRequest, TransferResponse,
};
use crate::handlers::{commands, operations, queries};
use crate::problem::{FieldError, Problem};

#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "Ledger",
        description = "An event-sourced bank ledger. Amounts are decimal strings; errors are \
                       `application/problem+json` with a stable `code`."
    ),
    paths(
        commands::open_account,
        commands::deposit,
        commands::withdraw,
        commands::transfer,
        commands::freeze,
        commands::unfreeze,
        commands::close,
        queries::get_account,
        queries::list_transactions,
        queries::balance_as_of,
        queries::daily_balances,
        operations::live,
        operations::ready,
        operations::openapi,
    ),
    components(schemas(
        Problem,
        FieldError,
        AccountKindName,
        AccountStatusName,
        EntryTypeName,
        OpenAccountRequest,
        MoneyMovementRequest,
        TransferRequest,
        FreezeRequest,
        EmptyRequest,
        AccountOpenedResponse,
        MoneyPostedResponse,
        TransferResponse,
        TransferLegResponse,
        StatusChangedResponse,
        AccountResponse,
        TransactionItem,
        TransactionPageResponse,
        BalanceResponse,
        DailyBalanceItem,
        DailyBalancesResponse,
        HealthResponse,
    )),
    tags(
        (name = "commands", description = "Writes. Each needs an `Idempotency-Key` header; a \
                                           retry with the same key and body gets the original answer."),
        (name = "queries", description = "Reads from the read model. `min_sequence` waits (bounded) \
                                          until the read model has caught up with a write."),
        (name = "operations", description = "Health and this document."),
    ),
    modifiers(&OptionalBodies)
)]
pub struct ApiDoc;

/// The commands whose body may be left out entirely.
const OPTIONAL_BODY_PATHS: [&str; 2] = ["/v1/accounts/{id}/unfreeze", "/v1/accounts/{id}/close"];

/// Marks the bodies of [`OPTIONAL_BODY_PATHS`] as not required. (Declaring them `Option<_>` instead
/// would document a JSON `null`, which is refused.)
#[derive(Debug)]
struct OptionalBodies;

impl Modify for OptionalBodies {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for path in OPTIONAL_BODY_PATHS {
            let body = openapi
                .paths
                .paths
                .get_mut(path)
                .and_then(|item| item.post.as_mut())
                .and_then(|operation| operation.request_body.as_mut());
            if let Some(RefOr::T(body)) = body {
                body.required = Some(Required::False);
            }
        }
    }
}

/// The headers of every command.
#[derive(Debug, IntoParams)]
#[into_params(
    names("Idempotency-Key", "X-Correlation-Id", "traceparent"),
    parameter_in = Header
)]
pub struct CommandHeaderParams(
    /// Required. 1-128 visible ASCII characters, unique per request: a retry with the same key and
    /// body gets the original answer, with another body `409 idempotency_key_reused`.
    pub String,
    /// Optional. 1-128 visible ASCII characters tying this request to others; generated when absent.
    /// Echoed in the response.
    pub Option<String>,
    /// Optional W3C trace context, recorded with the events the command writes.
    pub Option<String>,
);

/// The problems a command can answer with.
#[derive(Debug, IntoResponses)]
pub enum CommandProblems {
    /// `malformed_body` (not JSON, JSON number for an amount, unknown or missing field),
    /// `validation_failed` (with `errors`), `missing_idempotency_key`, `invalid_idempotency_key`.
    #[response(status = 400, content_type = "application/problem+json")]
    BadRequest(Problem),
    /// `account_not_found`.
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(Problem),
    /// `account_already_exists`, `idempotency_key_reused`, `concurrency_conflict` (with
    /// `Retry-After`).
    #[response(status = 409, content_type = "application/problem+json")]
    Conflict(Problem),
    /// `payload_too_large`: the body exceeds 16 KiB.
    #[response(status = 413, content_type = "application/problem+json")]
    PayloadTooLarge(Problem),
    /// `unsupported_media_type`: a body that is not `application/json`.
    #[response(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(Problem),
    /// A business rule refused the command: `insufficient_funds` (`available`, `requested`),
    /// `account_frozen`, `account_closed`, `currency_mismatch`, `non_zero_balance` (`balance`),
    /// `invalid_amount`, `invalid_overdraft_limit`, `same_account_transfer`,
    /// `account_already_frozen`, `account_not_frozen`, `balance_out_of_range`.
    #[response(status = 422, content_type = "application/problem+json")]
    Unprocessable(Problem),
    /// `internal_error`: details are logged, never returned.
    #[response(status = 500, content_type = "application/problem+json")]
    Internal(Problem),
    /// `service_unavailable` (with `Retry-After`): nothing was written.
    #[response(status = 503, content_type = "application/problem+json")]
    Unavailable(Problem),
}

/// The problems a query can answer with.
#[derive(Debug, IntoResponses)]
pub enum QueryProblems {
    /// `validation_failed` (with `errors`), `malformed_query` (unknown or repeated parameter).
    #[response(status = 400, content_type = "application/problem+json")]
    BadRequest(Problem),
    /// `account_not_found`, also when the account did not yet exist at `as_of`.
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(Problem),
    /// `internal_error`: details are logged, never returned.
    #[response(status = 500, content_type = "application/problem+json")]
    Internal(Problem),
    /// `read_model_behind` (`min_sequence` not reached in time; `min_sequence`, `last_sequence`)
    /// or `service_unavailable`; both with `Retry-After`.
    #[response(status = 503, content_type = "application/problem+json")]
    Unavailable(Problem),
}

/// The problem readiness answers with.
#[derive(Debug, IntoResponses)]
pub enum ReadinessProblems {
    /// `not_ready`: `failing_checks` names the checks that failed: `event_store` or `read_model` (did
    /// not answer), `dead_letters` (events the projector could not apply are waiting for an
    /// operator), `projection_lag` (the read model is further behind than its bound).
    #[response(status = 503, content_type = "application/problem+json")]
    NotReady(Problem),
}
