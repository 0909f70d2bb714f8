//! Operations endpoints: liveness, readiness and the OpenAPI document, answered by `answers` (the
//! query Lambda answers them the same way).

use actix_web::{HttpResponse, web};

use crate::HttpState;
use crate::answers;
// Named by the utoipa annotations.
use crate::dto::HealthResponse;
use crate::openapi::ReadinessProblems;
use crate::problem::ApiError;

/// The process is up and serving HTTP. Checks no dependency.
#[utoipa::path(
    get,
    path = "/health/live",
    tag = "operations",
    responses((status = 200, description = "Alive.", body = HealthResponse))
)]
pub(crate) async fn live() -> Result<HttpResponse, ApiError> {
    answers::liveness().map(HttpResponse::from)
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
    answers::readiness(&state.health_checks)
        .await
        .map(HttpResponse::from)
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI document of this API.", content_type = "application/json"))
)]
pub(crate) async fn openapi() -> Result<HttpResponse, ApiError> {
    answers::openapi_document().map(HttpResponse::from)
}
