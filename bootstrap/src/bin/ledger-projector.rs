//! `ledger-projector`: the DynamoDB Streams poller as its own process (local runs and ECS), feeding the
//! read model in use (PostgreSQL at DATABASE_URL with LEDGER_READ_MODEL=postgres, the one consumer
//! every API task reads from; else the SQLite file at LEDGER_SQLITE_PATH) from the events table's
//! stream, its shard checkpoints beside it, until SIGINT or SIGTERM. Only the holder of the
//! projector lease polls; a second process stands by and takes over within seconds of the first
//! dying.

use std::process::ExitCode;

use ledger_application::{LeaseSchedule, project_under_lease};
use ledger_bootstrap::startup::{ReadSide, dynamo_tables, stream_poller, wait_for_shutdown_signal};
use ledger_bootstrap::{LedgerConfig, telemetry};
use tokio::sync::watch;

#[tokio::main]
async fn main() -> ExitCode {
    let telemetry = telemetry::init("ledger-projector");
    let code = run().await;
    // After the poller stopped: its last spans and the final metrics go out too.
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
    let database = match ReadSide::open(&config).await {
        Ok(database) => database,
        Err(error) => {
            tracing::error!(%error, "cannot open the read model");
            return ExitCode::FAILURE;
        }
    };
    let clients = ledger_dynamodb::config::clients().await;
    let tables = dynamo_tables(&config.dynamodb);
    let poller = match stream_poller(&clients, &tables.events, &database).await {
        Ok(poller) => poller,
        Err(error) => {
            tracing::error!(%error, "cannot start the stream poller");
            return ExitCode::FAILURE;
        }
    };
    let lease = database.projector_lease(&tables.events);
    let (stop, stopped) = watch::channel(false);
    // The poller runs only while this process holds the lease; it is told to stop at shutdown and
    // at once if the lease is lost (another process may then be projecting).
    let running = tokio::spawn(async move {
        project_under_lease(lease.as_ref(), LeaseSchedule::default(), stopped, |stop| {
            poller.run(stop)
        })
        .await;
    });
    tracing::info!(table = %tables.events, read_model = %database.describe(&config),
        "ledger-projector started; it projects the events stream while it holds the projector lease");
    wait_for_shutdown_signal().await;
    let _ = stop.send(true);
    if let Err(error) = running.await {
        tracing::error!(%error, "stream poller failed");
    }
    if let Err(error) = database.close().await {
        tracing::error!(%error, "closing the read model failed");
    }
    ExitCode::SUCCESS
}
