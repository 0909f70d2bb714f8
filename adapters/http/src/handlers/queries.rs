//! Query handlers (`GET`): parse the path and query string, ask the `QueryService`, shape the view.

use actix_web::{HttpResponse, web};
use chrono::Utc;

use crate::HttpState;
use crate::dto::{
    AccountParams, AccountResponse, BalanceParams, BalanceResponse, DailyBalanceItem,
    DailyBalancesParams, DailyBalancesResponse, TransactionPageResponse, TransactionsParams,
};
use crate::openapi::{AccountIdPathParams, QueryProblems};
use crate::problem::ApiError;

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
    params: web::Query<AccountParams>,
) -> Result<HttpResponse, ApiError> {
    let query = params.into_inner().try_into_domain(&account_id)?;
    let view = state
        .queries
        .account(&query.account_id, query.min_sequence)
        .await?;
    Ok(HttpResponse::Ok().json(AccountResponse::from(view)))
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
    params: web::Query<TransactionsParams>,
) -> Result<HttpResponse, ApiError> {
    let query = params.into_inner().try_into_domain(&account_id)?;
    let page = state
        .queries
        .transactions(
            &query.account_id,
            query.after_sequence,
            query.limit,
            query.min_sequence,
        )
        .await?;
    Ok(HttpResponse::Ok().json(TransactionPageResponse::from(page)))
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
    params: web::Query<BalanceParams>,
) -> Result<HttpResponse, ApiError> {
    let query = params
        .into_inner()
        .try_into_domain(&account_id, Utc::now())?;
    let balance = state
        .queries
        .balance_as_of(&query.account_id, query.as_of, query.min_sequence)
        .await?;
    Ok(HttpResponse::Ok().json(BalanceResponse::from(balance)))
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
    params: web::Query<DailyBalancesParams>,
) -> Result<HttpResponse, ApiError> {
    let query = params
        .into_inner()
        .try_into_domain(&account_id, Utc::now().date_naive())?;
    let days = state
        .queries
        .daily_balances(&query.account_id, query.from, query.to, query.min_sequence)
        .await?;
    Ok(HttpResponse::Ok().json(DailyBalancesResponse {
        account_id: query.account_id.to_string(),
        items: days.into_iter().map(DailyBalanceItem::from).collect(),
    }))
}
