//! `ledger`: the admin tool. `ledger create-tables` provisions the DynamoDB tables (idempotently, for
//! local use; production tables come from Pulumi); `ledger migrate` brings the SQLite file's schema up
//! to date.

use std::process::ExitCode;

use ledger_bootstrap::startup::dynamo_tables;
use ledger_bootstrap::{LedgerConfig, telemetry};
use ledger_sqlite::SqliteDatabase;

const USAGE: &str = "usage: ledger <command>

commands:
  create-tables   create the DynamoDB tables (events with its stream, idempotency with TTL,
                  snapshots) if they do not exist; names from LEDGER_DYNAMODB_*, endpoint and
                  region from the standard AWS_* variables
  migrate         create or upgrade the SQLite database at LEDGER_SQLITE_PATH";

#[tokio::main]
async fn main() -> ExitCode {
    telemetry::init();
    let command = std::env::args().nth(1);
    let config = match LedgerConfig::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("invalid configuration: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = match command.as_deref() {
        Some("create-tables") => {
            let client = ledger_dynamodb::config::dynamodb_client().await;
            let tables = dynamo_tables(&config.dynamodb);
            ledger_dynamodb::tables::create_tables(&client, &tables)
                .await
                .map(|()| {
                    format!(
                        "tables ready: {}, {}, {}",
                        tables.events, tables.idempotency, tables.snapshots
                    )
                })
                .map_err(|e| e.to_string())
        }
        Some("migrate") => match SqliteDatabase::open(&config.sqlite_path).await {
            Ok(database) => {
                let closed = database.close().await;
                closed
                    .map(|()| {
                        format!(
                            "{} is at schema {}",
                            config.sqlite_path.display(),
                            ledger_sqlite::SCHEMA_VERSION
                        )
                    })
                    .map_err(|e| e.to_string())
            }
            Err(error) => Err(error.to_string()),
        },
        Some("help" | "--help" | "-h") => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(message) => {
            println!("{message}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
