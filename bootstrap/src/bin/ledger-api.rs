//! `ledger-api`: the ledger's HTTP service. With no configuration it runs embedded on SQLite.

use std::process::ExitCode;

use ledger_bootstrap::{Application, LedgerConfig, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    let telemetry = telemetry::init("ledger-api");
    let code = run().await;
    // After the server drained: the last requests' spans and the final metrics go out too.
    telemetry.shutdown();
    code
}

async fn run() -> ExitCode {
    let config = match LedgerConfig::from_env() {
        Ok(config) => config,
        Err(error) => {
            tracing::error!(%error, "invalid configuration");
            return ExitCode::FAILURE;
        }
    };
    let application = match Application::build(&config).await {
        Ok(application) => application,
        Err(error) => {
            tracing::error!(%error, "cannot start");
            return ExitCode::FAILURE;
        }
    };
    match application.run_until_stopped().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "server failed");
            ExitCode::FAILURE
        }
    }
}
