//! The request handlers, one module per side (commands, queries, operations), and the route
//! builders that guard every resource with the access its template has in `routes` and give it a
//! problem+json answer to a method it does not serve.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::HttpServiceFactory;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::{Next, from_fn};
use actix_web::{FromRequest, Handler, HttpMessage, HttpRequest, Responder, web};

use crate::HttpState;
use crate::auth::{AUTHORIZATION, Access, Authentication, authorise};
use crate::problem::ApiError;
use crate::routes;

pub(crate) mod commands;
pub(crate) mod operations;
pub(crate) mod queries;

/// A resource served by `POST` only, at `path` inside the scope `scope` (`""` for none).
pub(crate) fn post<F, Args>(scope: &str, path: &str, handler: F) -> impl HttpServiceFactory
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    guarded(scope, path, web::post().to(handler), "POST")
}

/// A resource served by `GET` only, at `path` inside the scope `scope` (`""` for none).
pub(crate) fn get<F, Args>(scope: &str, path: &str, handler: F) -> impl HttpServiceFactory
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    guarded(scope, path, web::get().to(handler), "GET")
}

/// The resource of `route`, answering any other method `405` with `allow`, behind the guard of the
/// access its full template has in `routes`.
fn guarded(
    scope: &str,
    path: &str,
    route: actix_web::Route,
    allow: &'static str,
) -> impl HttpServiceFactory {
    let access = routes::required_access(&format!("{scope}{path}"));
    web::resource(path)
        .route(route)
        .default_service(web::to(move || async move {
            Err::<&'static str, _>(ApiError::MethodNotAllowed { allow })
        }))
        .wrap(from_fn(move |req, next| guard(access, req, next)))
}

/// Resource middleware: lets the request through only if `authorise` does, with the caller's
/// `Principal` in the request's extensions (the command handlers take the subject from there);
/// otherwise answers the `401`/`403` itself. Before the method check and every extractor, as the
/// query Lambda checks before everything else.
async fn guard(
    access: Access,
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let outcome = check(req.request(), access).await;
    match outcome {
        Ok(principal) => {
            req.extensions_mut().insert(principal);
            Ok(next.call(req).await?.map_into_left_body())
        }
        Err(error) => Ok(req.error_response(error).map_into_right_body()),
    }
}

/// [`authorise`] over the request's `Authorization` headers and the application's authentication.
async fn check(req: &HttpRequest, access: Access) -> Result<crate::auth::Principal, ApiError> {
    let Some(state) = req.app_data::<web::Data<HttpState>>() else {
        return Err(ApiError::internal_message(
            "no HttpState registered: mount the API with ledger_http::configure",
        ));
    };
    let authentication: &Authentication = &state.authentication;
    let values = req
        .headers()
        .get_all(AUTHORIZATION)
        .map(actix_web::http::header::HeaderValue::as_bytes);
    Ok(authorise(authentication, values, access).await?)
}

/// The default service: no route matches the path. A caller must still be known, as the query
/// Lambda asks of a path it cannot resolve.
pub(crate) async fn not_found(req: HttpRequest) -> Result<&'static str, ApiError> {
    check(&req, routes::UNKNOWN_PATH_ACCESS).await?;
    Err(ApiError::NotFound)
}
