//! Query handlers (`GET`): the path's account id and the raw query string handed to
//! `answers::answer_query`, which does the work for actix and the query Lambda alike. The utoipa
//! annotations describe the parameters `answer_query` parses.

use actix_web::{HttpRequest, HttpResponse, web};

use crate::HttpState;
use crate::answers::{QueryEndpoint, answer_query};
// Named by the utoipa annotations, which describe what `answer_query` parses and answers.
use crate::dto::{
    AccountParams, AccountResponse, BalanceParams, BalanceResponse, DailyBalancesParams,
    DailyBalancesResponse, TransactionPageResponse, TransactionsParams,
};
use crate::openapi::{AccountIdPathParams, QueryProblems};
use crate::problem::ApiError;

async fn answer(
    state: &HttpState,
    endpoint: QueryEndpoint,
    account_id: &str,
    request: &HttpRequest,
) -> Result<HttpResponse, ApiError> {
    answer_query(&state.queries, endpoint, account_id, request.query_string())
        .await
        .map(HttpResponse::from)
}

/// An account as the read model holds it, with `last_sequence` saying how fresh it is.
#[utoipa::path(
    get,
    path = "/v1/accounts/{id}",
    tag = "queries",
    params(AccountIdPathParams, AccountParams),
    responses(
        (status = 200, description = "The account.", body = AccountResponse),
        QueryProblems,
    )
)]
pub(crate) async fn get_account(
    state: web::Data<HttpState>,
    account_id: web::Path<String>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    answer(&state, QueryEndpoint::Account, &account_id, &request).await
}

/// The account's money movements in sequence order, one page at a time.
#[utoipa::path(
    get,
    path = "/v1/accounts/{id}/transactions",
    tag = "queries",
    params(AccountIdPathParams, TransactionsParams),
    responses(
        (status = 200, description = "A page of movements.", body = TransactionPageResponse),
        QueryProblems,
    )
)]
pub(crate) async fn list_transactions(
    state: web::Data<HttpState>,
    account_id: web::Path<String>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    answer(&state, QueryEndpoint::Transactions, &account_id, &request).await
}

/// The balance at an instant: that of the last movement at or before `as_of`.
#[utoipa::path(
    get,
    path = "/v1/accounts/{id}/balance",
    tag = "queries",
    params(AccountIdPathParams, BalanceParams),
    responses(
        (status = 200, description = "The balance at `as_of`.", body = BalanceResponse),
        QueryProblems,
    )
)]
pub(crate) async fn balance_as_of(
    state: web::Data<HttpState>,
    account_id: web::Path<String>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    answer(&state, QueryEndpoint::BalanceAsOf, &account_id, &request).await
}

/// Closing balances (UTC days) of the days in `from..=to` on which money moved.
#[utoipa::path(
    get,
    path = "/v1/accounts/{id}/daily-balances",
    tag = "queries",
    params(AccountIdPathParams, DailyBalancesParams),
    responses(
        (status = 200, description = "The days with movements, oldest first.", body = DailyBalancesResponse),
        QueryProblems,
    )
)]
pub(crate) async fn daily_balances(
    state: web::Data<HttpState>,
    account_id: web::Path<String>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    answer(&state, QueryEndpoint::DailyBalances, &account_id, &request).await
}
