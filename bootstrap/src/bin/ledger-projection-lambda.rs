//! `ledger-projection-lambda`: the DynamoDB Streams projection function (AWS Lambda, behind an event
//! source mapping with `ReportBatchItemFailures`), projecting the events table's stream into the
//! PostgreSQL read model at DATABASE_URL (LEDGER_READ_MODEL=postgres). The pool and the projector
//! are built once per execution environment, before the runtime loop.

use std::process::ExitCode;

use ledger_bootstrap::lambda_projection::projection_function;
use ledger_bootstrap::{LedgerConfig, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    // Flushing after every invocation needs a hook in `ProjectionFunction::run` (adapters/lambda).
    let _telemetry = telemetry::init("ledger-projection-lambda");
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
    match function.run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "the Lambda runtime stopped");
            ExitCode::FAILURE
        }
    }
}
