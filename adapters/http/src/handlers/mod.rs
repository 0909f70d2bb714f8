//! The request handlers, one module per side (commands, queries, operations), and the route
//! builders that give every resource a problem+json answer to a method it does not serve.

use actix_web::{FromRequest, Handler, Resource, Responder, web};

use crate::problem::ApiError;

pub(crate) mod commands;
pub(crate) mod operations;
pub(crate) mod queries;

/// A resource served by `POST` only.
pub(crate) fn post<F, Args>(path: &str, handler: F) -> Resource
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    web::resource(path)
        .route(web::post().to(handler))
        .default_service(web::to(post_only))
}

/// A resource served by `GET` only.
pub(crate) fn get<F, Args>(path: &str, handler: F) -> Resource
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    web::resource(path)
        .route(web::get().to(handler))
        .default_service(web::to(get_only))
}

async fn post_only() -> Result<&'static str, ApiError> {
    Err(ApiError::MethodNotAllowed { allow: "POST" })
}

async fn get_only() -> Result<&'static str, ApiError> {
    Err(ApiError::MethodNotAllowed { allow: "GET" })
}

/// The default service: no route matches the path.
pub(crate) async fn not_found() -> Result<&'static str, ApiError> {
    Err(ApiError::NotFound)
}
