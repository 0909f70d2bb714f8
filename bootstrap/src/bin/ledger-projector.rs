//! `ledger-projector`: the DynamoDB Streams poller as its own process (local runs and ECS), feeding the
//! read model in use (PostgreSQL at DATABASE_URL with LEDGER_READ_MODEL=postgres, the one consumer
//! every API task reads from; else the SQLite file at LEDGER_SQLITE_PATH) from the events table's
//! stream, its shard checkpoints beside it, until SIGINT or SIGTERM.

use std::process::ExitCode;

use ledger_bootstrap::startup::{ReadSide, dynamo_tables, stream_poller, wait_for_shutdown_signal};
use ledger_bootstrap::{LedgerConfig, telemetry};
use tokio::sync::watch;

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
    let (stop, stopped) = watch::channel(false);
    let running = tokio::spawn(async move { poller.run(stopped).await });
    tracing::info!(table = %tables.events, read_model = %database.describe(&config),
        "projecting the events stream");
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
