//! The work of every `GET` the ledger serves, once and framework-neutral: parse the raw query
//! string and the account id, ask the `QueryService`, build the response DTO, serialise it into a
//! [`PlainResponse`]. The actix handlers and the query Lambda both call these, so the two cannot
//! drift apart; errors stay [`ApiError`]s, which `problem` alone turns into responses.

use std::sync::Arc;
use std::time::Duration;

use actix_web::error::QueryPayloadError;
use chrono::Utc;
use ledger_application::QueryService;
use ledger_application::ports::HealthCheck;
use serde::de::DeserializeOwned;
use utoipa::OpenApi;

use crate::dto::{
    AccountParams, AccountResponse, BalanceParams, BalanceResponse, DailyBalanceItem,
    DailyBalancesParams, DailyBalancesResponse, HealthResponse, TransactionPageResponse,
    TransactionsParams,
};
use crate::openapi::ApiDoc;
use crate::plain::{JSON_CONTENT_TYPE, PlainResponse};
use crate::problem::ApiError;

/// How long one readiness check may take before it counts as failed: a load balancer polling
/// readiness must get an answer, not a hung connection.
pub const HEALTH_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// The four query endpoints of `/v1/accounts/{id}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryEndpoint {
    /// `GET /v1/accounts/{id}`.
    Account,
    /// `GET /v1/accounts/{id}/transactions`.
    Transactions,
    /// `GET /v1/accounts/{id}/balance`.
    BalanceAsOf,
    /// `GET /v1/accounts/{id}/daily-balances`.
    DailyBalances,
}

/// The query string parsed as actix's `web::Query` parses it (`serde_urlencoded`, which refuses
/// unknown and repeated parameters through the DTOs' `deny_unknown_fields`), with the same problem.
fn parse_query_string<T: DeserializeOwned>(raw_query: &str) -> Result<T, ApiError> {
    serde_urlencoded::from_str::<T>(raw_query)
        .map_err(|error| ApiError::from(QueryPayloadError::Deserialize(error)))
}

/// Answers `endpoint` for the account named by the path segment `account_id` (already decoded)
/// and the raw query string (`a=1&b=2`, without `?`; empty when there is none).
pub async fn answer_query(
    queries: &QueryService,
    endpoint: QueryEndpoint,
    account_id: &str,
    raw_query: &str,
) -> Result<PlainResponse, ApiError> {
    match endpoint {
        QueryEndpoint::Account => {
            let query =
                parse_query_string::<AccountParams>(raw_query)?.try_into_domain(account_id)?;
            let view = queries
                .account(&query.account_id, query.min_sequence)
                .await?;
            PlainResponse::json(200, &AccountResponse::from(view))
        }
        QueryEndpoint::Transactions => {
            let query =
                parse_query_string::<TransactionsParams>(raw_query)?.try_into_domain(account_id)?;
            let page = queries
                .transactions(
                    &query.account_id,
                    query.after_sequence,
                    query.limit,
                    query.min_sequence,
                )
                .await?;
            PlainResponse::json(200, &TransactionPageResponse::from(page))
        }
        QueryEndpoint::BalanceAsOf => {
            let query = parse_query_string::<BalanceParams>(raw_query)?
                .try_into_domain(account_id, Utc::now())?;
            let balance = queries
                .balance_as_of(&query.account_id, query.as_of, query.min_sequence)
                .await?;
            PlainResponse::json(200, &BalanceResponse::from(balance))
        }
        QueryEndpoint::DailyBalances => {
            let query = parse_query_string::<DailyBalancesParams>(raw_query)?
                .try_into_domain(account_id, Utc::now().date_naive())?;
            let days = queries
                .daily_balances(&query.account_id, query.from, query.to, query.min_sequence)
                .await?;
            PlainResponse::json(
                200,
                &DailyBalancesResponse {
                    account_id: query.account_id.to_string(),
                    items: days.into_iter().map(DailyBalanceItem::from).collect(),
                },
            )
        }
    }
}

/// `GET /health/live`: the process is up. Checks no dependency.
pub fn liveness() -> Result<PlainResponse, ApiError> {
    PlainResponse::json(200, &HealthResponse::ok())
}

/// `GET /health/ready`: every check answers within [`HEALTH_CHECK_TIMEOUT`]; the failing ones are
/// named in the `not_ready` problem, their reasons logged.
pub async fn readiness(health_checks: &[Arc<dyn HealthCheck>]) -> Result<PlainResponse, ApiError> {
    let mut failing_checks = Vec::new();
    for check in health_checks {
        match tokio::time::timeout(HEALTH_CHECK_TIMEOUT, check.check()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::warn!(check = check.name(), %error, "readiness check failed");
                failing_checks.push(check.name());
            }
            Err(_) => {
                tracing::warn!(
                    check = check.name(),
                    timeout_ms = HEALTH_CHECK_TIMEOUT.as_millis(),
                    "readiness check timed out"
                );
                failing_checks.push(check.name());
            }
        }
    }
    if failing_checks.is_empty() {
        PlainResponse::json(200, &HealthResponse::ok())
    } else {
        Err(ApiError::NotReady { failing_checks })
    }
}

/// `GET /openapi.json`: the OpenAPI document of the whole API.
pub fn openapi_document() -> Result<PlainResponse, ApiError> {
    let document = ApiDoc::openapi()
        .to_json()
        .map_err(|error| ApiError::internal(&error))?;
    Ok(PlainResponse {
        status: 200,
        headers: vec![("content-type", JSON_CONTENT_TYPE.to_owned())],
        body: document.into_bytes(),
    })
}
