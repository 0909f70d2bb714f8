//! The query function: API Gateway HTTP API (v2) requests answered like the actix service.
//!
//! Nothing here decides an answer: the path is resolved by `ledger_http::routes` (actix's own
//! matcher over the same templates), the work is `ledger_http::answers`, and every error becomes
//! its response in `ledger_http::problem`. This module only moves bytes between `lambda_http`'s
//! types and those framework-neutral answers, and does what actix's `correlate` middleware does.
//!
//! It serves the `GET` queries of `/v1/accounts/{id}` (account, transactions, balance, daily
//! balances), `/health/live`, `/health/ready` and `/openapi.json`. An unknown path is the same
//! `404 not_found`, another method on a known path the same `405` with `Allow`. A command (a `POST`
//! to a command path) is not this function's: API Gateway routes only `GET`s here, so one arriving
//! is a misconfiguration, and the client is told plainly that nothing was written
//! (`421 misdirected_request`) rather than `405` (which would say `POST` is wrong there) or `404`
//! (which would say the resource does not exist).
//!
//! Every request but health must carry a bearer token the configured keys verify, with the scope
//! its route needs (`ledger_http::routes`, checked by `ledger_http::auth::authorise`, as the
//! actix service checks it). The function always verifies: it has no unauthenticated mode.

use std::fmt;
use std::sync::Arc;

use lambda_http::http::{HeaderName, HeaderValue, Method, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use ledger_application::QueryService;
use ledger_application::ports::HealthCheck;
use ledger_http::answers::{answer_query, liveness, openapi_document, readiness};
use ledger_http::auth::{AUTHORIZATION, Authentication, JwtVerifier, authorise};
use ledger_http::headers::{
    CORRELATION_ID, TRACEPARENT, adopt_or_mint_correlation_id, http_request_span,
    record_http_status,
};
use ledger_http::routes::{Route, RouteMatch, resolve};
use ledger_http::{ApiError, PlainResponse};
use tracing::Instrument;

/// What the function needs, built once per execution environment: the query service over the
/// read model, the readiness checks (the read model's, as `ledger-api` has with PostgreSQL) and the
/// token verifier (required: the function never serves unauthenticated).
pub struct QueryFunctionState {
    queries: Arc<QueryService>,
    health_checks: Vec<Arc<dyn HealthCheck>>,
    authentication: Authentication,
}

impl QueryFunctionState {
    pub fn new(
        queries: Arc<QueryService>,
        health_checks: Vec<Arc<dyn HealthCheck>>,
        verifier: Arc<JwtVerifier>,
    ) -> Self {
        Self {
            queries,
            health_checks,
            authentication: Authentication::Jwt(verifier),
        }
    }
}

impl fmt::Debug for QueryFunctionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let checks: Vec<&'static str> = self.health_checks.iter().map(|c| c.name()).collect();
        f.debug_struct("QueryFunctionState")
            .field("queries", &self.queries)
            .field("health_checks", &checks)
            .field("authentication", &self.authentication)
            .finish()
    }
}

/// Answers one API Gateway request. Never fails: every failure is a problem+json response, as in
/// the actix service.
pub async fn handle_query_request(state: &QueryFunctionState, request: Request) -> Response<Body> {
    // The raw path (as the client sent it, before `lambda_http` normalised it into a URL), so that
    // `..` or odd escapes match exactly as they would at actix. The raw query string likewise:
    // API Gateway's decoded map loses the order and the repeated parameters a DTO refuses.
    let raw_path = match request.raw_http_path() {
        "" => request.uri().path(),
        raw => raw,
    };
    let raw_path = without_stage(raw_path, stage_of(&request)).to_owned();
    let raw_query = request.uri().query().unwrap_or_default().to_owned();
    let method = request.method().clone();
    let resolved = resolve(&raw_path);

    let span = http_request_span(
        method.as_str(),
        resolved.template,
        &raw_path,
        request
            .headers()
            .get(TRACEPARENT)
            .and_then(|value| value.to_str().ok()),
    );
    // As the `correlate` middleware, which wraps the `/v1` scope only: the client's id or a new one.
    let correlation_id = resolved.in_v1_scope.then(|| {
        adopt_or_mint_correlation_id(
            request
                .headers()
                .get(CORRELATION_ID)
                .and_then(|value| value.to_str().ok()),
        )
    });
    if let Some(id) = &correlation_id {
        span.record("correlation_id", id.as_str());
    }

    async move {
        let authorised = authorise(
            &state.authentication,
            request
                .headers()
                .get_all(AUTHORIZATION)
                .iter()
                .map(HeaderValue::as_bytes),
            resolved.access,
        )
        .await
        .map_err(ApiError::from);
        let plain = match authorised {
            Ok(_) => answer(state, &method, &resolved, &raw_query).await,
            Err(refused) => Err(refused),
        }
        .unwrap_or_else(|error| error.to_plain_response());
        record_http_status(&tracing::Span::current(), plain.status);
        into_lambda_response(plain, correlation_id.as_deref())
    }
    .instrument(span)
    .await
}

/// The API Gateway stage the request came through, if the request says.
fn stage_of(request: &Request) -> Option<&str> {
    match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context.stage.as_deref(),
        _ => None,
    }
}

/// `raw_path` without a named stage's prefix: an HTTP API serves stage `prod` at `/prod/...` and
/// puts that prefix in `rawPath`, which is no part of the ledger's routes. `$default` adds none.
fn without_stage<'path>(raw_path: &'path str, stage: Option<&str>) -> &'path str {
    let Some(stage) = stage.filter(|stage| *stage != "$default" && !stage.is_empty()) else {
        return raw_path;
    };
    match raw_path
        .strip_prefix('/')
        .and_then(|rest| rest.strip_prefix(stage))
    {
        Some("") => "/",
        Some(rest) if rest.starts_with('/') => rest,
        _ => raw_path,
    }
}

/// The answer to `method` on the resolved route, once the caller is authorised, as actix's
/// resources and default service give it.
async fn answer(
    state: &QueryFunctionState,
    method: &Method,
    resolved: &RouteMatch,
    raw_query: &str,
) -> Result<PlainResponse, ApiError> {
    let Some(allow) = resolved.route.method() else {
        return Err(ApiError::NotFound);
    };
    if method.as_str() != allow {
        return Err(ApiError::MethodNotAllowed { allow });
    }
    match &resolved.route {
        Route::Query {
            endpoint,
            account_id,
        } => answer_query(&state.queries, *endpoint, account_id, raw_query).await,
        Route::Live => liveness(),
        Route::Ready => readiness(&state.health_checks).await,
        Route::OpenApi => openapi_document(),
        Route::Command => Err(ApiError::CommandNotServedHere),
        Route::NotFound => Err(ApiError::NotFound),
    }
}

/// The plain answer as `lambda_http`'s response: JSON bodies as text (API Gateway sends them as
/// they are, not base64), and `X-Correlation-Id` set last, as the middleware sets it.
fn into_lambda_response(plain: PlainResponse, correlation_id: Option<&str>) -> Response<Body> {
    let mut response = Response::new(match String::from_utf8(plain.body) {
        Ok(text) => Body::Text(text),
        Err(not_text) => Body::Binary(not_text.into_bytes()),
    });
    *response.status_mut() =
        StatusCode::from_u16(plain.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    for (name, value) in plain.headers {
        // Every value is built by `ledger_http` from visible ASCII; one that is not is dropped
        // rather than sent malformed, exactly as the actix conversion does.
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            headers.append(name, value);
        }
    }
    if let Some(value) = correlation_id.and_then(|id| HeaderValue::from_str(id).ok()) {
        headers.insert(HeaderName::from_static(CORRELATION_ID), value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_stage_prefix_is_removed_and_nothing_else() {
        assert_eq!(
            without_stage("/prod/v1/accounts/a", Some("prod")),
            "/v1/accounts/a"
        );
        assert_eq!(without_stage("/prod", Some("prod")), "/");
        assert_eq!(
            without_stage("/production/v1", Some("prod")),
            "/production/v1"
        );
        assert_eq!(
            without_stage("/v1/accounts/a", Some("prod")),
            "/v1/accounts/a"
        );
        assert_eq!(
            without_stage("/v1/accounts/a", Some("$default")),
            "/v1/accounts/a"
        );
        assert_eq!(without_stage("/v1/accounts/a", None), "/v1/accounts/a");
    }
}
