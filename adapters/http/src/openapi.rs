//! The OpenAPI document (`GET /openapi.json`), generated from the handlers' `#[utoipa::path]`
//! attributes and the DTOs' schemas, with the problem responses every endpoint shares.

use ledger_application::idempotency::IDEMPOTENCY_KEY_MAX_LEN;
use ledger_domain::identity::{IDENTIFIER_MAX_LEN, NOTE_MAX_LEN, OWNER_MAX_LEN};
use ledger_domain::money::DECIMAL_TEXT_MAX_LEN;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Required, ResponseBuilder};
use utoipa::{IntoParams, IntoResponses, Modify, OpenApi};

use crate::auth::Access;
use crate::dto::{
    AccountKindName, AccountOpenedResponse, AccountResponse, AccountStatusName, BalanceResponse,
    DailyBalanceItem, DailyBalancesResponse, EmptyRequest, EntryTypeName, FreezeRequest,
    HealthResponse, MoneyMovementRequest, MoneyPostedResponse, OpenAccountRequest,
    StatusChangedResponse, TransactionItem, TransactionPageResponse, TransferLegResponse,
    TransferRequest, TransferResponse,
};
use crate::handlers::{commands, operations, queries};
use crate::problem::{FieldError, PROBLEM_CONTENT_TYPE, Problem};
use crate::routes;

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
    modifiers(&OptionalBodies, &BearerSecurity)
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

/// The name of the bearer JWT security scheme in the document.
pub const BEARER_SCHEME: &str = "bearer";

/// Documents authentication from the route table (`routes::required_access`, the one the actix
/// service and the query Lambda enforce): the bearer JWT scheme, each operation's security
/// requirement with the scope it needs, and its `401 unauthenticated` and `403 insufficient_scope`
/// answers. Health asks for nothing and gets neither.
#[derive(Debug)]
struct BearerSecurity;

impl Modify for BearerSecurity {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                BEARER_SCHEME,
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .bearer_format("JWT")
                        .description(Some(
                            "A JWT (RS256 or ES256) from the configured issuer for the configured \
                             audience. Scopes in `scope` (space-separated) or `scp`: \
                             `ledger:read` for queries and this document, `ledger:write` for \
                             open, deposit, withdrawal, transfer and close, `ledger:admin` for \
                             freeze and unfreeze; admin implies read and write.",
                        ))
                        .build(),
                ),
            );
        for (path, item) in &mut openapi.paths.paths {
            let access = routes::required_access(path);
            for operation in [item.get.as_mut(), item.post.as_mut()]
                .into_iter()
                .flatten()
            {
                secure(operation, access);
            }
        }
    }
}

fn secure(operation: &mut Operation, access: Access) {
    let scopes: Vec<&str> = match access {
        Access::Public => return,
        Access::Authenticated => Vec::new(),
        Access::Scope(scope) => vec![scope.as_str()],
    };
    operation.security = Some(vec![SecurityRequirement::new(BEARER_SCHEME, scopes)]);
    let problem = |description: &str, challenge: &str| {
        ResponseBuilder::new()
            .description(description)
            .header(
                "WWW-Authenticate",
                HeaderBuilder::new()
                    .schema(Some(string_schema()))
                    .description(Some(challenge))
                    .build(),
            )
            .content(
                PROBLEM_CONTENT_TYPE,
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            )
            .build()
    };
    operation.responses.responses.insert(
        "401".to_owned(),
        RefOr::T(problem(
            "`unauthenticated`: no bearer token, a malformed `Authorization` header, or a token \
             that does not verify (signature, expiry, issuer, audience, key id).",
            "`Bearer realm=\"ledger\"`, with `error=\"invalid_token\"` when a token was sent",
        )),
    );
    operation.responses.responses.insert(
        "403".to_owned(),
        RefOr::T(problem(
            "`insufficient_scope`: the token is valid but lacks `required_scope`.",
            "`Bearer realm=\"ledger\", error=\"insufficient_scope\", scope=\"<needed>\"`",
        )),
    );
}

/// `Idempotency-Key`: what `IdempotencyKey::parse` accepts, 1-128 visible ASCII characters.
pub const IDEMPOTENCY_KEY_PATTERN: &str = r"^[!-~]{1,128}$";

/// An account id: what `AccountId::parse` accepts.
pub const ACCOUNT_ID_PATTERN: &str = r"^[A-Za-z0-9_-]{1,64}$";

/// A positive decimal amount of at most 10^15 with at most 12 decimal places (the currency's minor
/// units are checked against the account, `422 invalid_amount`): every string matching it is one that
/// `Amount::parse` accepts. Leading zeros are allowed, as the parser allows them.
pub const AMOUNT_PATTERN: &str = r"^(0*[1-9][0-9]{0,14}(\.[0-9]{1,12})?|0*1000000000000000(\.0{1,12})?|0+\.[0-9]{0,11}[1-9][0-9]{0,11})$";

/// An overdraft limit: like [`AMOUNT_PATTERN`], zero included.
pub const OVERDRAFT_LIMIT_PATTERN: &str =
    r"^(0*[0-9]{1,15}(\.[0-9]{1,12})?|0*1000000000000000(\.0{1,12})?)$";

/// Free text as the domain's text types accept it: no control character, and something besides
/// white space (which is trimmed).
pub const FREE_TEXT_PATTERN: &str = concat!(
    r"^[^\u0000-\u001f\u007f-\u009f]*",
    r"[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]",
    r"[^\u0000-\u001f\u007f-\u009f]*$"
);

/// The headers of every command. `X-Correlation-Id` and `traceparent` take any value: one that is
/// not well-formed is replaced (a new correlation id) or dropped (the trace context), never refused.
#[derive(Debug)]
pub struct CommandHeaderParams;

impl IntoParams for CommandHeaderParams {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let header = |name: &str, required: Required, description: &str, schema: ObjectBuilder| {
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Header)
                .required(required)
                .description(Some(description))
                .schema(Some(schema))
                .build()
        };
        vec![
            header(
                "Idempotency-Key",
                Required::True,
                "1-128 visible ASCII characters, unique per request: a retry with the same key and \
                 body gets the original answer, with another body `409 idempotency_key_reused`.",
                string_schema()
                    .min_length(Some(1))
                    .max_length(Some(IDEMPOTENCY_KEY_MAX_LEN))
                    .pattern(Some(IDEMPOTENCY_KEY_PATTERN))
                    .examples(["8f14e45f-ceea-467f-a0e6-c9a1a1c7d3b4"]),
            ),
            header(
                "X-Correlation-Id",
                Required::False,
                "Ties this request to others; echoed in the response. Adopted when it is 1-128 \
                 visible ASCII characters, otherwise replaced by a generated one.",
                string_schema(),
            ),
            header(
                "traceparent",
                Required::False,
                "W3C trace context, recorded with the events the command writes; ignored when not \
                 well-formed.",
                string_schema(),
            ),
        ]
    }
}

/// The `{id}` of every `/v1/accounts/{id}/...` path.
#[derive(Debug)]
pub struct AccountIdPathParams;

impl IntoParams for AccountIdPathParams {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![
            ParameterBuilder::new()
                .name("id")
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .description(Some("The account id"))
                .schema(Some(account_id_schema()))
                .build(),
        ]
    }
}

fn string_schema() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

/// An account id, in a path or a body.
pub(crate) fn account_id_schema() -> ObjectBuilder {
    string_schema()
        .min_length(Some(1))
        .max_length(Some(IDENTIFIER_MAX_LEN))
        .pattern(Some(ACCOUNT_ID_PATTERN))
        .examples(["acc-alice-1"])
}

/// The optional, client-chosen id of a new account.
pub(crate) fn optional_account_id_schema() -> ObjectBuilder {
    account_id_schema()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .description(Some(
            "The new account's id: 1-64 of `[A-Za-z0-9_-]`. Generated (`acc_...`) when left out.",
        ))
}

/// An amount in a request body.
pub(crate) fn amount_schema() -> ObjectBuilder {
    string_schema()
        .description(Some(
            "A positive decimal string (at most 10^15) with no more decimal places than the \
             account's currency has (`422 invalid_amount`). Never a JSON number.",
        ))
        .min_length(Some(1))
        .max_length(Some(DECIMAL_TEXT_MAX_LEN))
        .pattern(Some(AMOUNT_PATTERN))
        .examples(["12.50"])
}

/// The overdraft limit of a new account.
pub(crate) fn overdraft_limit_schema() -> ObjectBuilder {
    string_schema()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .description(Some(
            "How far below zero the balance may go: a decimal string from 0 to 10^15 with no more \
             decimal places than the currency has (`422 invalid_overdraft_limit`). Zero when left \
             out.",
        ))
        .min_length(Some(1))
        .max_length(Some(DECIMAL_TEXT_MAX_LEN))
        .pattern(Some(OVERDRAFT_LIMIT_PATTERN))
        .examples(["100.00"])
}

/// A currency the ledger books: the closed list of [`CURRENCY_CODES`].
pub(crate) fn currency_schema() -> ObjectBuilder {
    string_schema()
        .description(Some("An ISO 4217 code the ledger supports, upper case."))
        .enum_values(Some(CURRENCY_CODES))
        .examples(["USD"])
}

/// The currencies `Currency::parse` accepts (a test checks the list against it, both ways).
pub const CURRENCY_CODES: [&str; 36] = [
    "AED", "AUD", "BHD", "BRL", "CAD", "CHF", "CLP", "CNY", "CZK", "DKK", "EUR", "GBP", "HKD",
    "HUF", "IDR", "ILS", "INR", "ISK", "JOD", "JPY", "KRW", "KWD", "MXN", "NOK", "NZD", "OMR",
    "PLN", "SAR", "SEK", "SGD", "THB", "TND", "TRY", "USD", "VND", "ZAR",
];

fn free_text_schema(max_len: usize, description: &str, example: &str) -> ObjectBuilder {
    string_schema()
        .description(Some(description))
        .min_length(Some(1))
        .max_length(Some(max_len))
        .pattern(Some(FREE_TEXT_PATTERN))
        .examples([example])
}

/// The owner of a new account.
pub(crate) fn owner_schema() -> ObjectBuilder {
    free_text_schema(
        OWNER_MAX_LEN,
        "The holder's name, 1-200 characters, no control characters (surrounding space is trimmed).",
        "Alice Example",
    )
}

/// The optional note of a money movement.
pub(crate) fn description_schema() -> ObjectBuilder {
    free_text_schema(
        NOTE_MAX_LEN,
        "A note shown with the transaction, 1-500 characters, no control characters.",
        "salary",
    )
    .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
}

/// Why an account is frozen.
pub(crate) fn freeze_reason_schema() -> ObjectBuilder {
    free_text_schema(
        NOTE_MAX_LEN,
        "Why the account is frozen, for the audit trail: 1-500 characters, no control characters.",
        "suspected fraud, case 1234",
    )
}

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
    /// `service_unavailable` (with `Retry-After`): nothing was written. `outcome_unknown` (with
    /// `Retry-After`): the store could not tell whether the command was applied; retry with the same
    /// `Idempotency-Key` to learn its outcome.
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

#[cfg(test)]
mod tests {
    use ledger_domain::Currency;

    use super::CURRENCY_CODES;

    #[test]
    fn the_documented_currencies_are_exactly_the_ones_the_domain_books() {
        // Every three-letter upper-case code: documented if and only if the domain parses it.
        for first in b'A'..=b'Z' {
            for second in b'A'..=b'Z' {
                for third in b'A'..=b'Z' {
                    let code = String::from_utf8(vec![first, second, third]).expect("ASCII");
                    assert_eq!(
                        CURRENCY_CODES.contains(&code.as_str()),
                        Currency::parse(&code).is_ok(),
                        "{code}"
                    );
                }
            }
        }
    }
}
