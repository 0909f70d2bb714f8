//! Operations endpoints: liveness, readiness (every `HealthCheck`, each bounded in time) and the
//! OpenAPI document.

use std::time::Duration;

use actix_web::rt::time::timeout;
use actix_web::{HttpResponse, web};
use utoipa::OpenApi;

use crate::HttpState;
use crate::dto::HealthResponse;
use crate::openapi::{ApiDoc, ReadinessProblems};
use crate::problem::ApiError;

/// How long one readiness check may take before it counts as failed: a load balancer polling
/// readiness must get an answer, not a hung connection.
pub const HEALTH_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// The process is up and serving HTTP. Checks no dependency.
#[utoipa::path(
    get,
    path = "/health/live",
    tag = "operations",
    responses((status = 200, description = "Alive.", body = HealthResponse))
)]
pub(crate) async fn live() -> HttpResponse {
    HttpResponse::Ok().json(HealthResponse::ok())
}

/// Every dependency answers: the service can take traffic.
#[utoipa::path(
    get,
    path = "/health/ready",
    tag = "operations",
    responses(
        (status = 200, description = "Ready.", body = HealthResponse),
        ReadinessProblems,
    )
)]
pub(crate) async fn ready(state: web::Data<HttpState>) -> Result<HttpResponse, ApiError> {
    let mut failing_checks = Vec::new();
    for check in &state.health_checks {
        match timeout(HEALTH_CHECK_TIMEOUT, check.check()).await {
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
        Ok(HttpResponse::Ok().json(HealthResponse::ok()))
    } else {
        Err(ApiError::NotReady { failing_checks })
    }
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI document of this API.", content_type = "application/json"))
)]
pub(crate) async fn openapi() -> Result<HttpResponse, ApiError> {
    let document = ApiDoc::openapi()
        .to_json()
        .map_err(|error| ApiError::internal(&error))?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(document))
}
