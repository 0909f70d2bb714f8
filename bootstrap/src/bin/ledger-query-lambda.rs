//! `ledger-query-lambda`: the query API as an AWS Lambda behind API Gateway (HTTP API, payload v2).
//! The pool and the query service are built once per execution environment, before the runtime
//! loop; each invocation only answers.

use std::convert::Infallible;
use std::process::ExitCode;

use lambda_http::{Request, service_fn};
use ledger_bootstrap::lambda_query::query_function_state;
use ledger_bootstrap::{LedgerConfig, telemetry};
use ledger_lambda::query::handle_query_request;

#[tokio::main]
async fn main() -> ExitCode {
    telemetry::init();
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
    let handler = service_fn(move |request: Request| async move {
        Ok::<_, Infallible>(handle_query_request(state, request).await)
    });
    match lambda_http::run(handler).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "the Lambda runtime stopped");
            ExitCode::FAILURE
        }
    }
}
