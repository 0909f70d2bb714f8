//! Problem details (RFC 9457): the one place where an error becomes an HTTP status, a stable `code`
//! and an `application/problem+json` body.
//!
//! Clients branch on `code`; `title` is fixed per code and `detail` explains this occurrence. Errors
//! the client cannot act on become `internal_error` with a generic detail: what went wrong is logged
//! here, never sent.

use std::error::Error as StdError;
use std::fmt;

use actix_web::error::{JsonPayloadError, PathError, PayloadError, QueryPayloadError};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use ledger_application::ports::StoreError;
use ledger_application::{CommandError, QueryError};
use ledger_domain::DomainError;
use serde::Serialize;
use utoipa::ToSchema;

use crate::BODY_LIMIT_BYTES;
use crate::auth::{AuthError, REALM, Scope, Unauthenticated};
use crate::plain::PlainResponse;

/// The media type of every error body.
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// `type` is this prefix followed by the `code`.
const PROBLEM_TYPE_PREFIX: &str = "urn:ledger:problem:";

/// Seconds a client should wait before retrying a request refused for a transient reason.
const RETRY_AFTER_SECONDS: &str = "1";

/// Longest `detail` built from a parser's message: enough to point at the mistake, never a page.
const PARSER_DETAIL_MAX_CHARS: usize = 300;

/// One field of a request that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// The field's name in the body, path or query string, such as `amount` or `cursor`.
    #[schema(example = "amount")]
    pub field: String,
    #[schema(example = "`12,50` is not a plain decimal number")]
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// An error response body (`application/problem+json`). The members after `code` appear only with
/// the codes that carry them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Problem {
    /// `urn:ledger:problem:<code>`.
    #[serde(rename = "type")]
    #[schema(example = "urn:ledger:problem:insufficient_funds")]
    pub problem_type: String,
    /// A short summary, the same for every occurrence of the code.
    #[schema(example = "Insufficient funds")]
    pub title: String,
    /// The HTTP status code.
    #[schema(example = 422)]
    pub status: u16,
    /// What went wrong in this occurrence.
    pub detail: String,
    /// Stable, machine-readable error code.
    #[schema(example = "insufficient_funds")]
    pub code: String,
    /// The account the error is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// `insufficient_funds`: balance plus overdraft limit, a decimal string.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "10.00")]
    pub available: Option<String>,
    /// `insufficient_funds`: the amount asked for, a decimal string.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "25.00")]
    pub requested: Option<String>,
    /// `non_zero_balance`: the balance that prevents closing, a decimal string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub balance: Option<String>,
    /// `invalid_amount`: the amount that does not fit the currency, a decimal string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<String>,
    /// `invalid_overdraft_limit`: the limit that does not fit the currency, a decimal string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overdraft_limit: Option<String>,
    /// `invalid_amount`, `invalid_overdraft_limit`: the account's currency.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// `invalid_amount`, `invalid_overdraft_limit`: decimal places the currency allows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minor_units: Option<u32>,
    /// `currency_mismatch`: the source account's currency.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_currency: Option<String>,
    /// `currency_mismatch`: the target account's currency.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_currency: Option<String>,
    /// `read_model_behind`: the sequence the client asked to wait for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_sequence: Option<u64>,
    /// `read_model_behind`: the sequence the read model had reached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_sequence: Option<u64>,
    /// `payload_too_large`: the body limit in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_bytes: Option<usize>,
    /// `insufficient_scope`: the scope the request needs (`ledger:admin` also grants read and write).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "ledger:write")]
    pub required_scope: Option<String>,
    /// `not_ready`: the names of the readiness checks that failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failing_checks: Option<Vec<String>>,
    /// `validation_failed`: every field that failed, with why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
}

impl Problem {
    fn new(status: StatusCode, code: &'static str, title: &'static str, detail: String) -> Self {
        Self {
            problem_type: format!("{PROBLEM_TYPE_PREFIX}{code}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail,
            code: code.to_owned(),
            account_id: None,
            available: None,
            requested: None,
            balance: None,
            amount: None,
            overdraft_limit: None,
            currency: None,
            minor_units: None,
            source_currency: None,
            target_currency: None,
            min_sequence: None,
            last_sequence: None,
            limit_bytes: None,
            required_scope: None,
            failing_checks: None,
            errors: None,
        }
    }

    fn about(mut self, account_id: &impl ToString) -> Self {
        self.account_id = Some(account_id.to_string());
        self
    }
}

/// Every way a request can fail, as the client sees it.
#[derive(Debug)]
pub enum ApiError {
    /// The body is not JSON of the expected shape (syntax, type, unknown or missing field).
    MalformedBody {
        detail: String,
    },
    /// A body was sent with a media type other than JSON.
    UnsupportedMediaType,
    PayloadTooLarge {
        limit_bytes: usize,
    },
    /// The query string has an unknown or repeated parameter.
    MalformedQuery {
        detail: String,
    },
    /// Well-formed, but some fields hold values that cannot exist.
    ValidationFailed {
        errors: Vec<FieldError>,
    },
    MissingIdempotencyKey,
    InvalidIdempotencyKey,
    /// No acceptable bearer token: none, a malformed `Authorization` header, or a token that does
    /// not verify (the reason is a category; the token is never repeated).
    Unauthenticated(Unauthenticated),
    /// A valid token without the scope the route needs.
    InsufficientScope {
        needed: Scope,
    },
    /// No route matches the path.
    NotFound,
    /// The path exists, the method does not; `allow` lists the ones that do.
    MethodNotAllowed {
        allow: &'static str,
    },
    /// A command reached a deployable that serves only queries (the query Lambda, to which API
    /// Gateway routes `GET`s alone): it was not carried out, and the client must learn that.
    CommandNotServedHere,
    /// A query named an account the read model does not hold (or did not at the time asked).
    AccountNotFound {
        account_id: String,
        detail: String,
    },
    /// The domain refused the command.
    Rejected(DomainError),
    IdempotencyKeyReused,
    ConcurrencyConflict,
    ReadModelBehind {
        account_id: String,
        min_sequence: u64,
        last_sequence: u64,
    },
    /// A storage dependency failed before anything was written.
    ServiceUnavailable,
    /// A command's write may have committed, and the ledger could not find out: the client must
    /// retry with the same key to learn the outcome (and never book the payment elsewhere meanwhile).
    OutcomeUnknown,
    NotReady {
        failing_checks: Vec<&'static str>,
    },
    /// Anything unexpected. The cause was logged when this was built; the body says nothing about it.
    Internal,
}

impl ApiError {
    /// An unexpected failure: logs it with its whole source chain and hides it from the client.
    pub fn internal(error: &(dyn StdError + 'static)) -> Self {
        tracing::error!(error = %error_chain(error), "request failed unexpectedly");
        Self::Internal
    }

    /// An unexpected state of this adapter's own making (not an error value), logged and hidden.
    pub fn internal_message(message: &str) -> Self {
        tracing::error!(error = message, "request failed unexpectedly");
        Self::Internal
    }

    /// A malformed body, described by the parser's message (bounded in length).
    pub fn malformed_body(parser_message: &impl fmt::Display) -> Self {
        Self::MalformedBody {
            detail: bounded(&format!(
                "the request body is not the JSON this endpoint expects: {parser_message}"
            )),
        }
    }

    /// One invalid field.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        Self::ValidationFailed {
            errors: vec![FieldError::new(field, message)],
        }
    }

    /// The stable, machine-readable code.
    pub fn code(&self) -> &'static str {
        self.problem().code_static
    }

    #[expect(
        clippy::too_many_lines,
        reason = "one arm per error code: a table, best read top to bottom in one place"
    )]
    fn problem(&self) -> Described {
        use StatusCode as S;
        match self {
            Self::MalformedBody { detail } => {
                Described::new(S::BAD_REQUEST, "malformed_body", "Malformed request body")
                    .detail(detail.clone())
            }
            Self::UnsupportedMediaType => Described::new(
                S::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Unsupported media type",
            )
            .detail("the request body must be sent as `Content-Type: application/json`"),
            Self::PayloadTooLarge { limit_bytes } => {
                let mut described = Described::new(
                    S::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "Request body too large",
                )
                .detail(format!(
                    "the request body exceeds the limit of {limit_bytes} bytes"
                ));
                described.problem.limit_bytes = Some(*limit_bytes);
                described
            }
            Self::MalformedQuery { detail } => {
                Described::new(S::BAD_REQUEST, "malformed_query", "Malformed query string")
                    .detail(detail.clone())
            }
            Self::ValidationFailed { errors } => {
                let mut described =
                    Described::new(S::BAD_REQUEST, "validation_failed", "Validation failed")
                        .detail(format!(
                            "{} field(s) of the request are invalid",
                            errors.len()
                        ));
                described.problem.errors = Some(errors.clone());
                described
            }
            Self::MissingIdempotencyKey => Described::new(
                S::BAD_REQUEST,
                "missing_idempotency_key",
                "Missing Idempotency-Key",
            )
            .detail("every command needs an `Idempotency-Key` header, unique per request"),
            Self::InvalidIdempotencyKey => Described::new(
                S::BAD_REQUEST,
                "invalid_idempotency_key",
                "Invalid Idempotency-Key",
            )
            .detail(
                "the `Idempotency-Key` header must appear once and hold 1 to 128 visible ASCII \
                 characters",
            ),
            Self::Unauthenticated(error) => {
                let detail = match error {
                    Unauthenticated::InvalidToken(rejection) => {
                        format!("the bearer token was refused: {rejection}")
                    }
                    Unauthenticated::MalformedHeader => "the `Authorization` header must be one \
                        `Bearer <token>`, the token a JWT"
                        .to_owned(),
                    Unauthenticated::MissingToken => {
                        "this endpoint needs a bearer token: `Authorization: Bearer <JWT>`"
                            .to_owned()
                    }
                };
                Described::new(S::UNAUTHORIZED, "unauthenticated", "Unauthenticated").detail(detail)
            }
            Self::InsufficientScope { needed } => {
                let mut described = Described::new(
                    S::FORBIDDEN,
                    "insufficient_scope",
                    "Insufficient scope",
                )
                .detail(format!(
                    "the bearer token does not grant the scope this request needs: {needed} \
                     (or ledger:admin)"
                ));
                described.problem.required_scope = Some(needed.as_str().to_owned());
                described
            }
            Self::NotFound => Described::new(S::NOT_FOUND, "not_found", "Not found")
                .detail("no resource exists at this path"),
            Self::MethodNotAllowed { allow } => Described::new(
                S::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "Method not allowed",
            )
            .detail(format!("this resource only accepts {allow}")),
            // 421: "directed at a server that is unable or unwilling to produce an authoritative
            // response for the target URI" (RFC 9110 15.5.20). Not 405: POST is this resource's
            // method, only not here; not 404: the resource exists.
            Self::CommandNotServedHere => Described::new(
                S::MISDIRECTED_REQUEST,
                "misdirected_request",
                "Misdirected request",
            )
            .detail(
                "this endpoint serves the ledger's queries only and did not carry out this \
                 command: nothing was written. Send commands to the ledger's command API; \
                 sending it there with the same Idempotency-Key is safe",
            ),
            Self::AccountNotFound { account_id, detail } => {
                let mut described =
                    Described::new(S::NOT_FOUND, "account_not_found", "Account not found")
                        .detail(detail.clone());
                described.problem = described.problem.about(account_id);
                described
            }
            Self::Rejected(rejection) => rejected(rejection),
            Self::IdempotencyKeyReused => Described::new(
                S::CONFLICT,
                "idempotency_key_reused",
                "Idempotency key reused",
            )
            .detail(
                "this Idempotency-Key was already used for a different request; use a new key \
                 for a new request",
            ),
            Self::ConcurrencyConflict => Described::new(
                S::CONFLICT,
                "concurrency_conflict",
                "Concurrent modification",
            )
            .detail("the account kept changing under concurrent requests; retry the request")
            .retry_after(),
            Self::ReadModelBehind {
                account_id,
                min_sequence,
                last_sequence,
            } => {
                let mut described = Described::new(
                    S::SERVICE_UNAVAILABLE,
                    "read_model_behind",
                    "Read model not yet consistent",
                )
                .detail(format!(
                    "the read model of account {account_id} has applied sequence {last_sequence}, \
                     not yet {min_sequence}; retry shortly"
                ))
                .retry_after();
                described.problem = described.problem.about(account_id);
                described.problem.min_sequence = Some(*min_sequence);
                described.problem.last_sequence = Some(*last_sequence);
                described
            }
            Self::ServiceUnavailable => Described::new(
                S::SERVICE_UNAVAILABLE,
                "service_unavailable",
                "Service unavailable",
            )
            .detail("a storage dependency is unavailable; nothing was written; retry shortly")
            .retry_after(),
            Self::OutcomeUnknown => Described::new(
                S::SERVICE_UNAVAILABLE,
                "outcome_unknown",
                "Outcome unknown",
            )
            .detail(
                "the ledger could not confirm whether this command was carried out: it may have \
                 been. Retry it with the same Idempotency-Key: the retry returns the original \
                 result if it was carried out, and carries it out once if it was not",
            )
            .retry_after(),
            Self::NotReady { failing_checks } => {
                let mut described =
                    Described::new(S::SERVICE_UNAVAILABLE, "not_ready", "Not ready").detail(
                        format!("readiness checks failed: {}", failing_checks.join(", ")),
                    );
                described.problem.failing_checks =
                    Some(failing_checks.iter().map(|&name| name.to_owned()).collect());
                described
            }
            Self::Internal => Described::new(
                S::INTERNAL_SERVER_ERROR,
                "internal_error",
                "Internal server error",
            )
            .detail("the request failed unexpectedly; it has been logged"),
        }
    }
}

/// The business rule rejections. Exhaustive on purpose: a new `DomainError` variant must be given
/// its status and code here, or this stops compiling.
fn rejected(rejection: &DomainError) -> Described {
    use StatusCode as S;
    let detail = rejection.to_string();
    let unprocessable =
        |code, title| Described::new(S::UNPROCESSABLE_ENTITY, code, title).detail(detail.clone());
    match rejection {
        DomainError::AccountNotFound { account_id } => {
            Described::new(S::NOT_FOUND, "account_not_found", "Account not found")
                .detail(detail.clone())
                .about(account_id)
        }
        DomainError::AccountAlreadyExists { account_id } => Described::new(
            S::CONFLICT,
            "account_already_exists",
            "Account already exists",
        )
        .detail(detail.clone())
        .about(account_id),
        DomainError::InvalidAmount {
            amount,
            currency,
            minor_units,
        } => {
            let mut described = unprocessable("invalid_amount", "Invalid amount");
            described.problem.amount = Some(amount.to_string());
            described.problem.currency = Some(currency.to_string());
            described.problem.minor_units = Some(*minor_units);
            described
        }
        DomainError::InvalidOverdraftLimit {
            limit,
            currency,
            minor_units,
        } => {
            let mut described = unprocessable("invalid_overdraft_limit", "Invalid overdraft limit");
            described.problem.overdraft_limit = Some(limit.clone());
            described.problem.currency = Some(currency.to_string());
            described.problem.minor_units = Some(*minor_units);
            described
        }
        DomainError::InsufficientFunds {
            account_id,
            available,
            requested,
        } => {
            let mut described =
                unprocessable("insufficient_funds", "Insufficient funds").about(account_id);
            described.problem.available = Some(available.to_string());
            described.problem.requested = Some(requested.to_string());
            described
        }
        DomainError::AccountFrozen { account_id } => {
            unprocessable("account_frozen", "Account frozen").about(account_id)
        }
        DomainError::AccountClosed { account_id } => {
            unprocessable("account_closed", "Account closed").about(account_id)
        }
        DomainError::AccountAlreadyFrozen { account_id } => {
            unprocessable("account_already_frozen", "Account already frozen").about(account_id)
        }
        DomainError::AccountNotFrozen { account_id } => {
            unprocessable("account_not_frozen", "Account not frozen").about(account_id)
        }
        DomainError::CurrencyMismatch {
            source_currency,
            target_currency,
        } => {
            let mut described = unprocessable("currency_mismatch", "Currency mismatch");
            described.problem.source_currency = Some(source_currency.to_string());
            described.problem.target_currency = Some(target_currency.to_string());
            described
        }
        DomainError::SameAccountTransfer { account_id } => {
            unprocessable("same_account_transfer", "Same-account transfer").about(account_id)
        }
        DomainError::NonZeroBalance {
            account_id,
            balance,
        } => {
            let mut described =
                unprocessable("non_zero_balance", "Non-zero balance").about(account_id);
            described.problem.balance = Some(balance.to_string());
            described
        }
        DomainError::BalanceOutOfRange { account_id } => {
            unprocessable("balance_out_of_range", "Balance out of range").about(account_id)
        }
    }
}

/// A problem body with the response headers that go with it.
struct Described {
    status: StatusCode,
    code_static: &'static str,
    problem: Problem,
    retry_after: bool,
}

impl Described {
    fn new(status: StatusCode, code: &'static str, title: &'static str) -> Self {
        Self {
            status,
            code_static: code,
            problem: Problem::new(status, code, title, String::new()),
            retry_after: false,
        }
    }

    fn detail(mut self, detail: impl Into<String>) -> Self {
        self.problem.detail = detail.into();
        self
    }

    fn about(mut self, account_id: &impl ToString) -> Self {
        self.problem = self.problem.about(account_id);
        self
    }

    fn retry_after(mut self) -> Self {
        self.retry_after = true;
        self
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let described = self.problem();
        write!(f, "{}: {}", described.code_static, described.problem.detail)
    }
}

impl ApiError {
    /// The response this error is: its status, `Content-Type: application/problem+json`,
    /// `Retry-After` for the transient ones, `Allow` for a method not allowed, and the problem body.
    /// Framework-neutral, so that actix ([`ResponseError`]) and the query Lambda send the same.
    pub fn to_plain_response(&self) -> PlainResponse {
        let described = self.problem();
        let mut headers = vec![("content-type", PROBLEM_CONTENT_TYPE.to_owned())];
        if described.retry_after {
            headers.push(("retry-after", RETRY_AFTER_SECONDS.to_owned()));
        }
        if let Self::MethodNotAllowed { allow } = self {
            headers.push(("allow", (*allow).to_owned()));
        }
        if let Some(challenge) = self.www_authenticate() {
            headers.push(("www-authenticate", challenge));
        }
        match serde_json::to_vec(&described.problem) {
            Ok(body) => PlainResponse {
                status: described.status.as_u16(),
                headers,
                body,
            },
            Err(error) => {
                // A struct of strings and numbers always serializes; if it ever does not, the client
                // still gets a well-formed problem rather than an empty body.
                tracing::error!(%error, "could not serialize a problem body");
                PlainResponse {
                    status: StatusCode::INTERNAL_SERVER_ERROR.as_u16(),
                    headers: vec![("content-type", PROBLEM_CONTENT_TYPE.to_owned())],
                    body: FALLBACK_INTERNAL_PROBLEM.as_bytes().to_vec(),
                }
            }
        }
    }
}

impl ApiError {
    /// The `WWW-Authenticate` challenge of a `401` or `403` (RFC 6750 section 3): the realm, and
    /// `invalid_token` when a token was given, or `insufficient_scope` with the scope needed.
    fn www_authenticate(&self) -> Option<String> {
        match self {
            Self::Unauthenticated(Unauthenticated::MissingToken) => {
                Some(format!("Bearer realm=\"{REALM}\""))
            }
            Self::Unauthenticated(_) => {
                Some(format!("Bearer realm=\"{REALM}\", error=\"invalid_token\""))
            }
            Self::InsufficientScope { needed } => Some(format!(
                "Bearer realm=\"{REALM}\", error=\"insufficient_scope\", scope=\"{needed}\""
            )),
            _ => None,
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Unauthenticated(why) => Self::Unauthenticated(why),
            AuthError::InsufficientScope { needed } => Self::InsufficientScope { needed },
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.problem().status
    }

    fn error_response(&self) -> HttpResponse {
        self.to_plain_response().into()
    }
}

const FALLBACK_INTERNAL_PROBLEM: &str = r#"{"type":"urn:ledger:problem:internal_error","title":"Internal server error","status":500,"detail":"the request failed unexpectedly; it has been logged","code":"internal_error"}"#;

impl From<DomainError> for ApiError {
    fn from(rejection: DomainError) -> Self {
        Self::Rejected(rejection)
    }
}

impl From<CommandError> for ApiError {
    fn from(error: CommandError) -> Self {
        match error {
            CommandError::Rejected(rejection) => Self::Rejected(rejection),
            CommandError::IdempotencyKeyReused { .. } => Self::IdempotencyKeyReused,
            CommandError::ConcurrencyConflict { attempts } => {
                tracing::warn!(attempts, "command lost every optimistic-concurrency retry");
                Self::ConcurrencyConflict
            }
            CommandError::Store(store) => Self::from(store),
            CommandError::OutcomeUnknown { ref source } => {
                tracing::warn!(error = %error_chain(source.as_ref()), "command outcome unknown");
                Self::OutcomeUnknown
            }
            error @ (CommandError::TooLarge { .. } | CommandError::CorruptHistory { .. }) => {
                Self::internal(&error)
            }
        }
    }
}

impl From<QueryError> for ApiError {
    fn from(error: QueryError) -> Self {
        match error {
            QueryError::AccountNotFound { ref account_id }
            | QueryError::NotYetOpened { ref account_id, .. } => Self::AccountNotFound {
                account_id: account_id.to_string(),
                detail: error.to_string(),
            },
            QueryError::NotYetConsistent {
                account_id,
                min_sequence,
                last_sequence,
            } => Self::ReadModelBehind {
                account_id: account_id.to_string(),
                min_sequence,
                last_sequence,
            },
            QueryError::Store(store) => Self::from(store),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(_) => {
                tracing::warn!(error = %error_chain(&error), "storage unavailable");
                Self::ServiceUnavailable
            }
            StoreError::Corrupt { .. } => Self::internal(&error),
        }
    }
}

impl From<JsonPayloadError> for ApiError {
    fn from(error: JsonPayloadError) -> Self {
        match error {
            JsonPayloadError::OverflowKnownLength { limit, .. }
            | JsonPayloadError::Overflow { limit } => Self::PayloadTooLarge { limit_bytes: limit },
            JsonPayloadError::ContentType => Self::UnsupportedMediaType,
            JsonPayloadError::Deserialize(parse) => Self::malformed_body(&parse),
            JsonPayloadError::Payload(payload) => Self::from(payload),
            // Serialization is the response side; anything else is a new actix variant.
            other => Self::internal(&other),
        }
    }
}

impl From<PayloadError> for ApiError {
    fn from(error: PayloadError) -> Self {
        match error {
            PayloadError::Overflow => Self::PayloadTooLarge {
                limit_bytes: BODY_LIMIT_BYTES,
            },
            other => Self::malformed_body(&format_args!("the body could not be read ({other})")),
        }
    }
}

impl ApiError {
    /// The failure of a raw body extractor (`web::Bytes`): too large, or unreadable.
    pub(crate) fn from_body_error(error: &actix_web::Error) -> Self {
        match error.as_error::<PayloadError>() {
            Some(PayloadError::Overflow) => Self::PayloadTooLarge {
                limit_bytes: BODY_LIMIT_BYTES,
            },
            _ => Self::malformed_body(&format_args!("the body could not be read ({error})")),
        }
    }
}

impl From<QueryPayloadError> for ApiError {
    fn from(error: QueryPayloadError) -> Self {
        Self::MalformedQuery {
            detail: bounded(&format!("the query string is not valid here: {error}")),
        }
    }
}

/// `JsonConfig` error handler: malformed JSON, wrong media type and oversized bodies as problems.
pub(crate) fn json_error_handler(error: JsonPayloadError, _: &HttpRequest) -> actix_web::Error {
    ApiError::from(error).into()
}

/// `QueryConfig` error handler: an unknown or repeated query parameter.
pub(crate) fn query_error_handler(error: QueryPayloadError, _: &HttpRequest) -> actix_web::Error {
    ApiError::from(error).into()
}

/// `PathConfig` error handler: a path segment that cannot be decoded names no resource.
pub(crate) fn path_error_handler(_: PathError, _: &HttpRequest) -> actix_web::Error {
    ApiError::NotFound.into()
}

/// `error` and its sources, outermost first, for the log.
fn error_chain(error: &(dyn StdError + 'static)) -> String {
    let mut chain = error.to_string();
    let mut source = error.source();
    // Bounded: a cyclic or absurdly deep chain must not hang the error path.
    for _ in 0..16 {
        let Some(cause) = source else { break };
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    chain
}

/// `text` cut to [`PARSER_DETAIL_MAX_CHARS`] characters.
fn bounded(text: &str) -> String {
    if text.chars().count() <= PARSER_DETAIL_MAX_CHARS {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(PARSER_DETAIL_MAX_CHARS).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::to_bytes;
    use actix_web::http::header::{CONTENT_TYPE, RETRY_AFTER};
    use ledger_domain::{AccountId, Amount, Balance, Currency};

    fn account() -> AccountId {
        AccountId::parse("acc-1").expect("valid id")
    }

    fn usd() -> Currency {
        Currency::parse("USD").expect("valid currency")
    }

    /// Every domain rejection, with the status and code the API promises for it.
    fn rejections() -> Vec<(DomainError, u16, &'static str)> {
        let account_id = account();
        vec![
            (
                DomainError::AccountNotFound {
                    account_id: account_id.clone(),
                },
                404,
                "account_not_found",
            ),
            (
                DomainError::AccountAlreadyExists {
                    account_id: account_id.clone(),
                },
                409,
                "account_already_exists",
            ),
            (
                DomainError::InvalidAmount {
                    amount: Amount::parse("1.234").expect("valid amount"),
                    currency: usd(),
                    minor_units: 2,
                },
                422,
                "invalid_amount",
            ),
            (
                DomainError::InvalidOverdraftLimit {
                    limit: "1.5".to_owned(),
                    currency: Currency::parse("JPY").expect("valid currency"),
                    minor_units: 0,
                },
                422,
                "invalid_overdraft_limit",
            ),
            (
                DomainError::InsufficientFunds {
                    account_id: account_id.clone(),
                    available: Balance::parse("10.00").expect("valid balance"),
                    requested: Amount::parse("25.00").expect("valid amount"),
                },
                422,
                "insufficient_funds",
            ),
            (
                DomainError::AccountFrozen {
                    account_id: account_id.clone(),
                },
                422,
                "account_frozen",
            ),
            (
                DomainError::AccountClosed {
                    account_id: account_id.clone(),
                },
                422,
                "account_closed",
            ),
            (
                DomainError::AccountAlreadyFrozen {
                    account_id: account_id.clone(),
                },
                422,
                "account_already_frozen",
            ),
            (
                DomainError::AccountNotFrozen {
                    account_id: account_id.clone(),
                },
                422,
                "account_not_frozen",
            ),
            (
                DomainError::CurrencyMismatch {
                    source_currency: usd(),
                    target_currency: Currency::parse("EUR").expect("valid currency"),
                },
                422,
                "currency_mismatch",
            ),
            (
                DomainError::SameAccountTransfer {
                    account_id: account_id.clone(),
                },
                422,
                "same_account_transfer",
            ),
            (
                DomainError::NonZeroBalance {
                    account_id: account_id.clone(),
                    balance: Balance::parse("3.00").expect("valid balance"),
                },
                422,
                "non_zero_balance",
            ),
            (
                DomainError::BalanceOutOfRange { account_id },
                422,
                "balance_out_of_range",
            ),
        ]
    }

    async fn body_of(error: &ApiError) -> serde_json::Value {
        let response = error.error_response();
        assert_eq!(
            response
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
            Some(PROBLEM_CONTENT_TYPE)
        );
        let bytes = to_bytes(response.into_body()).await.expect("body");
        serde_json::from_slice(&bytes).expect("problem is JSON")
    }

    #[actix_web::test]
    async fn every_domain_rejection_has_its_status_and_code() {
        for (rejection, status, code) in rejections() {
            let detail = rejection.to_string();
            let error = ApiError::from(CommandError::Rejected(rejection));
            assert_eq!(error.status_code().as_u16(), status, "{code}");
            let body = body_of(&error).await;
            assert_eq!(body["code"], code);
            assert_eq!(body["status"], status);
            assert_eq!(body["type"], format!("urn:ledger:problem:{code}"));
            assert_eq!(body["detail"], detail);
        }
    }

    #[actix_web::test]
    async fn rejections_carry_the_values_a_client_needs() {
        let body = body_of(&ApiError::from(DomainError::InsufficientFunds {
            account_id: account(),
            available: Balance::parse("10.00").expect("valid balance"),
            requested: Amount::parse("25.00").expect("valid amount"),
        }))
        .await;
        assert_eq!(body["available"], "10.00");
        assert_eq!(body["requested"], "25.00");
        assert_eq!(body["account_id"], "acc-1");

        let body = body_of(&ApiError::from(DomainError::NonZeroBalance {
            account_id: account(),
            balance: Balance::parse("-3.50").expect("valid balance"),
        }))
        .await;
        assert_eq!(body["balance"], "-3.50");
    }

    #[actix_web::test]
    async fn internal_errors_hide_their_cause() {
        for error in [
            ApiError::from(StoreError::corrupt("row 42 of table events: secret")),
            ApiError::from(CommandError::TooLarge {
                actions: 101,
                max: 100,
            }),
        ] {
            assert_eq!(error.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
            let body = body_of(&error).await;
            assert_eq!(body["code"], "internal_error");
            let text = body.to_string();
            assert!(!text.contains("secret") && !text.contains("101"), "{text}");
        }
    }

    #[actix_web::test]
    async fn transient_failures_ask_to_retry_after_a_second() {
        for error in [
            ApiError::ConcurrencyConflict,
            ApiError::ServiceUnavailable,
            ApiError::OutcomeUnknown,
            ApiError::from(QueryError::NotYetConsistent {
                account_id: account(),
                min_sequence: 5,
                last_sequence: 3,
            }),
        ] {
            let response = error.error_response();
            assert_eq!(
                response
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok()),
                Some("1"),
                "{error}"
            );
        }
    }

    #[actix_web::test]
    async fn an_unknown_outcome_says_it_may_have_committed_and_asks_for_the_same_key() {
        let error = ApiError::from(CommandError::OutcomeUnknown {
            source: "timed out after sending: secret-host:8000".into(),
        });
        assert_eq!(error.status_code(), StatusCode::SERVICE_UNAVAILABLE);
        let body = body_of(&error).await;
        assert_eq!(body["code"], "outcome_unknown");
        let detail = body["detail"].as_str().expect("detail");
        assert!(detail.contains("may have been"), "{detail}");
        assert!(detail.contains("same Idempotency-Key"), "{detail}");
        assert!(!detail.contains("nothing was written"), "{detail}");
        assert!(!body.to_string().contains("secret-host"), "{body}");
    }

    #[test]
    fn long_parser_messages_are_cut() {
        let error = ApiError::malformed_body(&"x".repeat(10_000));
        let ApiError::MalformedBody { detail } = error else {
            panic!("expected a malformed body");
        };
        assert!(detail.chars().count() <= PARSER_DETAIL_MAX_CHARS + 1);
    }
}
