//! The ledger's REST adapter (actix-web): the v1 command and query endpoints, health and OpenAPI.
//!
//! Only this crate knows HTTP. Bodies are parsed into domain types at the edge (`dto`), every error
//! becomes `application/problem+json` in exactly one place (`problem`), and the handlers do nothing
//! but call the application's command and query services.
//!
//! The bootstrap mounts it with `App::new().configure(ledger_http::configure(state))`.

use std::fmt;
use std::sync::Arc;

use actix_web::middleware::from_fn;
use actix_web::web;
use ledger_application::ports::HealthCheck;
use ledger_application::{CommandService, QueryService};

use crate::auth::Authentication;

pub mod answers;
pub mod auth;
pub mod dto;
mod handlers;
pub mod headers;
pub mod openapi;
pub mod plain;
pub mod problem;
pub mod routes;

pub use openapi::ApiDoc;
pub use plain::PlainResponse;
pub use problem::{ApiError, FieldError, Problem};

/// The largest request body accepted, in bytes. The biggest valid command is well under 2 KiB; the
/// rest is headroom for whitespace, not an invitation.
pub const BODY_LIMIT_BYTES: usize = 16 * 1024;

/// What the handlers need: the two application services, the readiness checks, and how callers
/// are authenticated.
#[derive(Clone)]
pub struct HttpState {
    pub commands: Arc<CommandService>,
    pub queries: Arc<QueryService>,
    pub health_checks: Vec<Arc<dyn HealthCheck>>,
    /// `Authentication::Disabled` only on a loopback address (the bootstrap's rule).
    pub authentication: Authentication,
}

impl fmt::Debug for HttpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let checks: Vec<&'static str> = self.health_checks.iter().map(|c| c.name()).collect();
        f.debug_struct("HttpState")
            .field("commands", &self.commands)
            .field("queries", &self.queries)
            .field("health_checks", &checks)
            .field("authentication", &self.authentication)
            .finish()
    }
}

/// Registers every route (the templates of `routes`, which the query Lambda resolves alike), the shared state, the extractor configurations (body limit, problem+json
/// for malformed bodies, queries and paths) and the problem+json 404 for unknown routes.
///
/// Call it once per worker: `HttpServer::new(move || App::new().configure(configure(state.clone())))`.
pub fn configure(state: HttpState) -> impl FnOnce(&mut web::ServiceConfig) {
    move |config| {
        config
            .app_data(web::Data::new(state))
            .app_data(
                web::JsonConfig::default()
                    .limit(BODY_LIMIT_BYTES)
                    .error_handler(problem::json_error_handler),
            )
            // The body of the commands that may be sent without one (unfreeze, close).
            .app_data(web::PayloadConfig::new(BODY_LIMIT_BYTES))
            .app_data(web::PathConfig::default().error_handler(problem::path_error_handler))
            .app_data(web::QueryConfig::default().error_handler(problem::query_error_handler))
            .service(
                web::scope(routes::V1_SCOPE)
                    .wrap(from_fn(headers::correlate))
                    .service(handlers::post(
                        routes::V1_SCOPE,
                        routes::ACCOUNTS,
                        handlers::commands::open_account,
                    ))
                    .service(handlers::get(
                        routes::V1_SCOPE,
                        routes::ACCOUNT,
                        handlers::queries::get_account,
                    ))
                    .service(handlers::post(
                        routes::V1_SCOPE,
                        routes::DEPOSITS,
                        handlers::commands::deposit,
                    ))
                    .service(handlers::post(
                        routes::V1_SCOPE,
                        routes::WITHDRAWALS,
                        handlers::commands::withdraw,
                    ))
                    .service(handlers::post(
                        routes::V1_SCOPE,
                        routes::FREEZE,
                        handlers::commands::freeze,
                    ))
                    .service(handlers::post(
                        routes::V1_SCOPE,
                        routes::UNFREEZE,
                        handlers::commands::unfreeze,
                    ))
                    .service(handlers::post(
                        routes::V1_SCOPE,
                        routes::CLOSE,
                        handlers::commands::close,
                    ))
                    .service(handlers::get(
                        routes::V1_SCOPE,
                        routes::TRANSACTIONS,
                        handlers::queries::list_transactions,
                    ))
                    .service(handlers::get(
                        routes::V1_SCOPE,
                        routes::BALANCE,
                        handlers::queries::balance_as_of,
                    ))
                    .service(handlers::get(
                        routes::V1_SCOPE,
                        routes::DAILY_BALANCES,
                        handlers::queries::daily_balances,
                    ))
                    .service(handlers::post(
                        routes::V1_SCOPE,
                        routes::TRANSFERS,
                        handlers::commands::transfer,
                    )),
            )
            .service(handlers::get(
                "",
                routes::HEALTH_LIVE,
                handlers::operations::live,
            ))
            .service(handlers::get(
                "",
                routes::HEALTH_READY,
                handlers::operations::ready,
            ))
            .service(handlers::get(
                "",
                routes::OPENAPI,
                handlers::operations::openapi,
            ))
            .default_service(web::to(handlers::not_found));
    }
}
