//! `ledger-query-lambda`: the query API as an AWS Lambda behind API Gateway (HTTP API, payload v2).
//! The pool and the query service are built once per execution environment, before the runtime
//! loop; each invocation only answers.

use std::convert::Infallible;
use std::process::ExitCode;

use lambda_http::{Request, service_fn};
use ledger_bootstrap::lambda_loop::serve_until_shutdown;
use ledger_bootstrap::lambda_query::query_function_state;
use ledger_bootstrap::{LedgerConfig, telemetry};
use ledger_lambda::query::handle_query_request;

#[tokio::main]
async fn main() -> ExitCode {
    let telemetry = telemetry::init("ledger-query-lambda");
    let config = match LedgerConfig::from_env() {
        Ok(config) => config,
        Err(error) => {
            tracing::error!(%error, "invalid configuration");
            return ExitCode::FAILURE;
        }
    };
    let state = match query_function_state(&config).await {
        Ok(state) => state,
        Err(error) => {
            tracing::error!(%error, "cannot start the query function");
            return ExitCode::FAILURE;
        }
    };
    let state = &state;
    let telemetry = &telemetry;
    let handler = service_fn(move |request: Request| async move {
        let response = handle_query_request(state, request).await;
        // Before the answer is returned: the environment may be frozen right after it.
        telemetry.flush_off_runtime().await;
        Ok::<_, Infallible>(response)
    });
    serve_until_shutdown(telemetry, lambda_http::run(handler)).await
}
