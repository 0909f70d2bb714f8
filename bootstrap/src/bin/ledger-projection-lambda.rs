//! `ledger-projection-lambda`: the DynamoDB Streams projection function (AWS Lambda, behind an event
//! source mapping with `ReportBatchItemFailures`), projecting the events table's stream into the
//! PostgreSQL read model at DATABASE_URL (LEDGER_READ_MODEL=postgres). The pool and the projector
//! are built once per execution environment, before the runtime loop.

use std::convert::Infallible;
use std::process::ExitCode;

use aws_lambda_events::event::dynamodb::Event;
use lambda_runtime::{LambdaEvent, service_fn};
use ledger_bootstrap::lambda_loop::serve_until_shutdown;
use ledger_bootstrap::lambda_projection::projection_function;
use ledger_bootstrap::{LedgerConfig, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    let telemetry = telemetry::init("ledger-projection-lambda");
    let config = match LedgerConfig::from_env() {
        Ok(config) => config,
        Err(error) => {
            tracing::error!(%error, "invalid configuration");
            return ExitCode::FAILURE;
        }
    };
    let function = match projection_function(&config).await {
        Ok(function) => function,
        Err(error) => {
            tracing::error!(%error, "cannot start the projection function");
            return ExitCode::FAILURE;
        }
    };
    let function = &function;
    let telemetry = &telemetry;
    // A batch the read model cannot take is answered with batch item failures, never an error; an
    // error here is only an event the runtime could not parse into a stream event.
    let handler = service_fn(move |event: LambdaEvent<Event>| async move {
        let response = function.handle(event.payload).await;
        // Before the answer is returned: the environment may be frozen right after it.
        telemetry.flush_off_runtime().await;
        Ok::<_, Infallible>(response)
    });
    serve_until_shutdown(telemetry, lambda_runtime::run(handler)).await
}
