//! Command handlers (`POST`): headers and body in, `CommandService::execute`, outcome out.
//!
//! A handler adds nothing to the answer that is not in the `CommandOutcome`, so the replay of a
//! request under the same `Idempotency-Key` gets the same status and the same bytes.

use actix_web::dev::Payload;
use actix_web::http::header::LOCATION;
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, web};
use ledger_application::CommandRequest;
use serde::de::DeserializeOwned;

use crate::HttpState;
use crate::dto::{
    AccountOpenedResponse, EmptyRequest, FreezeRequest, JsonObject, MoneyCommand,
    MoneyMovementRequest, MoneyPostedResponse, OpenAccountRequest, StatusChangedResponse,
    StatusCommand, TransferRequest, TransferResponse,
};
use crate::headers::CommandHeaders;
use crate::openapi::{AccountIdPathParams, CommandHeaderParams, CommandProblems};
use crate::problem::ApiError;

async fn execute(
    state: &HttpState,
    headers: &CommandHeaders,
    request: &CommandRequest,
) -> Result<ledger_application::CommandOutcome, ApiError> {
    Ok(state.commands.execute(&headers.0, request).await?)
}

/// Open an account.
///
/// `account_id` may be chosen by the client (then a second open of the same id is `409
/// account_already_exists`) or left out to have one generated.
#[utoipa::path(
    post,
    path = "/v1/accounts",
    tag = "commands",
    params(CommandHeaderParams),
    request_body = OpenAccountRequest,
    responses(
        (status = 201, description = "The account is open.", body = AccountOpenedResponse,
            headers(
                ("Location" = String, description = "`/v1/accounts/{account_id}`"),
                ("X-Correlation-Id" = String, description = "The request's correlation id"),
            )),
        CommandProblems,
    )
)]
pub(crate) async fn open_account(
    headers: CommandHeaders,
    state: web::Data<HttpState>,
    body: web::Json<JsonObject<OpenAccountRequest>>,
) -> Result<HttpResponse, ApiError> {
    let request = body.into_inner().0.try_into_domain()?;
    let outcome = execute(&state, &headers, &request).await?;
    let response = AccountOpenedResponse::from_outcome(&outcome)?;
    let location = format!("/v1/accounts/{}", response.account_id);
    Ok(HttpResponse::Created()
        .insert_header((LOCATION, location))
        .json(response))
}

/// Deposit money into an account.
#[utoipa::path(
    post,
    path = "/v1/accounts/{id}/deposits",
    tag = "commands",
    params(AccountIdPathParams, CommandHeaderParams),
    request_body = MoneyMovementRequest,
    responses(
        (status = 200, description = "The deposit is booked.", body = MoneyPostedResponse),
        CommandProblems,
    )
)]
pub(crate) async fn deposit(
    headers: CommandHeaders,
    state: web::Data<HttpState>,
    account_id: web::Path<String>,
    body: web::Json<JsonObject<MoneyMovementRequest>>,
) -> Result<HttpResponse, ApiError> {
    money_movement(&headers, &state, &account_id, body, MoneyCommand::Deposit).await
}

/// Withdraw money from an account, within its balance plus overdraft limit.
#[utoipa::path(
    post,
    path = "/v1/accounts/{id}/withdrawals",
    tag = "commands",
    params(AccountIdPathParams, CommandHeaderParams),
    request_body = MoneyMovementRequest,
    responses(
        (status = 200, description = "The withdrawal is booked.", body = MoneyPostedResponse),
        CommandProblems,
    )
)]
pub(crate) async fn withdraw(
    headers: CommandHeaders,
    state: web::Data<HttpState>,
    account_id: web::Path<String>,
    body: web::Json<JsonObject<MoneyMovementRequest>>,
) -> Result<HttpResponse, ApiError> {
    money_movement(&headers, &state, &account_id, body, MoneyCommand::Withdraw).await
}

async fn money_movement(
    headers: &CommandHeaders,
    state: &HttpState,
    account_id: &str,
    body: web::Json<JsonObject<MoneyMovementRequest>>,
    command: MoneyCommand,
) -> Result<HttpResponse, ApiError> {
    let request = body.into_inner().0.try_into_domain(account_id, command)?;
    let outcome = execute(state, headers, &request).await?;
    Ok(HttpResponse::Ok().json(MoneyPostedResponse::from_outcome(&outcome)?))
}

/// Move money between two accounts of the same currency, atomically.
#[utoipa::path(
    post,
    path = "/v1/transfers",
    tag = "commands",
    params(CommandHeaderParams),
    request_body = TransferRequest,
    responses(
        (status = 200, description = "Both sides of the transfer are booked.", body = TransferResponse),
        CommandProblems,
    )
)]
pub(crate) async fn transfer(
    headers: CommandHeaders,
    state: web::Data<HttpState>,
    body: web::Json<JsonObject<TransferRequest>>,
) -> Result<HttpResponse, ApiError> {
    let request = body.into_inner().0.try_into_domain()?;
    let outcome = execute(&state, &headers, &request).await?;
    Ok(HttpResponse::Ok().json(TransferResponse::from_outcome(&outcome)?))
}

/// Freeze an open account: no money moves in or out until it is unfrozen.
#[utoipa::path(
    post,
    path = "/v1/accounts/{id}/freeze",
    tag = "commands",
    params(AccountIdPathParams, CommandHeaderParams),
    request_body = FreezeRequest,
    responses(
        (status = 200, description = "The account is frozen.", body = StatusChangedResponse),
        CommandProblems,
    )
)]
pub(crate) async fn freeze(
    headers: CommandHeaders,
    state: web::Data<HttpState>,
    account_id: web::Path<String>,
    body: web::Json<JsonObject<FreezeRequest>>,
) -> Result<HttpResponse, ApiError> {
    let request = body.into_inner().0.try_into_domain(&account_id)?;
    let outcome = execute(&state, &headers, &request).await?;
    Ok(HttpResponse::Ok().json(StatusChangedResponse::from_outcome(&outcome)?))
}

/// Unfreeze a frozen account. The body is `{}` or empty.
#[utoipa::path(
    post,
    path = "/v1/accounts/{id}/unfreeze",
    tag = "commands",
    params(AccountIdPathParams, CommandHeaderParams),
    request_body(content = EmptyRequest, description = "`{}`, or no body at all"),
    responses(
        (status = 200, description = "The account is open again.", body = StatusChangedResponse),
        CommandProblems,
    )
)]
pub(crate) async fn unfreeze(
    headers: CommandHeaders,
    state: web::Data<HttpState>,
    account_id: web::Path<String>,
    body: OptionalJson<EmptyRequest>,
) -> Result<HttpResponse, ApiError> {
    status_command(&headers, &state, &account_id, body, StatusCommand::Unfreeze).await
}

/// Close an open account with a zero balance. The body is `{}` or empty.
#[utoipa::path(
    post,
    path = "/v1/accounts/{id}/close",
    tag = "commands",
    params(AccountIdPathParams, CommandHeaderParams),
    request_body(content = EmptyRequest, description = "`{}`, or no body at all"),
    responses(
        (status = 200, description = "The account is closed.", body = StatusChangedResponse),
        CommandProblems,
    )
)]
pub(crate) async fn close(
    headers: CommandHeaders,
    state: web::Data<HttpState>,
    account_id: web::Path<String>,
    body: OptionalJson<EmptyRequest>,
) -> Result<HttpResponse, ApiError> {
    status_command(&headers, &state, &account_id, body, StatusCommand::Close).await
}

async fn status_command(
    headers: &CommandHeaders,
    state: &HttpState,
    account_id: &str,
    body: OptionalJson<EmptyRequest>,
    command: StatusCommand,
) -> Result<HttpResponse, ApiError> {
    let request = body.0.try_into_domain(account_id, command)?;
    let outcome = execute(state, headers, &request).await?;
    Ok(HttpResponse::Ok().json(StatusChangedResponse::from_outcome(&outcome)?))
}

/// A JSON object body that may also be left out entirely (then `T::default()`). Bounded by the
/// app's `PayloadConfig`; refused like a `web::Json` body when present and malformed.
#[derive(Debug)]
pub(crate) struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Default + 'static> FromRequest for OptionalJson<T> {
    type Error = ApiError;
    type Future = std::pin::Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let body = web::Bytes::from_request(&req, payload);
        Box::pin(async move {
            let bytes = body
                .await
                .map_err(|error| ApiError::from_body_error(&error))?;
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok(Self(T::default()));
            }
            let is_json = req.mime_type().ok().flatten().is_some_and(|mime| {
                mime.subtype().as_str() == "json"
                    || mime
                        .suffix()
                        .is_some_and(|suffix| suffix.as_str() == "json")
            });
            if !is_json {
                return Err(ApiError::UnsupportedMediaType);
            }
            serde_json::from_slice::<JsonObject<T>>(&bytes)
                .map(|object| Self(object.0))
                .map_err(|error| ApiError::malformed_body(&error))
        })
    }
}
